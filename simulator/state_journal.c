/*
 * The state journal, "<state file>.journal": one JSON line per save since
 * the last snapshot (the state file), so that a save costs one append and
 * one fdatasync instead of rewriting the whole store.
 *
 * A line is {"generation":G,"put":{...},"delete":{...}} (format in
 * docs/simulator.md). "put" maps the state file's record arrays
 * ("policies", "certificates", "things", "thingGroups") to the records that
 * were created or changed, whole and in the state file's form. "delete" maps
 * them to the keys of removed records. G is the store's generation after the
 * change. A load applies the lines whose generation is above the snapshot's
 * and skips older ones, which a crash during a compaction can leave behind.
 */
#include "simulator/state_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"

/*
 * Maximum number of changed records listed between saves. An API call
 * changes a few. Longer lists come from bulk changes without saves (tests,
 * stores without a file), and the next save writes a snapshot for them.
 */
#define CHANGES_MAX 1024

/* ---- change tracking --------------------------------------------------- */

void sim_state_changes_clear(sim_state *s)
{
	for (size_t i = 0; i < s->change_count; i++)
		free(s->changes[i].key);
	free(s->changes);
	s->changes = NULL;
	s->change_count = 0;
	s->changes_overflow = 0;
}

static void changes_overflow(sim_state *s)
{
	sim_state_changes_clear(s);
	s->changes_overflow = 1;
}

void sim_state_changed(sim_state *s, sim_rec_kind kind, const char *key)
{
	sim_change *grown;

	s->generation++;
	if (s->loading || s->changes_overflow)
		return;
	for (size_t i = 0; i < s->change_count; i++)
		if (s->changes[i].kind == kind && strcmp(s->changes[i].key, key) == 0)
			return;
	if (s->change_count == CHANGES_MAX) {
		changes_overflow(s);
		return;
	}
	grown = realloc(s->changes, (s->change_count + 1) * sizeof(*grown));
	if (!grown) {
		changes_overflow(s);
		return;
	}
	s->changes = grown;
	grown[s->change_count].kind = kind;
	grown[s->change_count].key = sim_strdup(key);
	if (!grown[s->change_count].key) {
		changes_overflow(s);
		return;
	}
	s->change_count++;
}

/* ---- append ------------------------------------------------------------ */

/* Appends value to the array obj[member], creating it. Steals value. */
static int json_list_append(json_t *obj, const char *member, json_t *value)
{
	json_t *list = json_object_get(obj, member);

	if (!value)
		return -1;
	if (!list) {
		list = json_array();
		if (!list || json_object_set_new(obj, member, list) != 0) {
			json_decref(value);
			return -1;
		}
	}
	return json_array_append_new(list, value);
}

/* Formats the recorded changes as one journal line ending in '\n'. NULL when out of memory. */
static char *format_journal_line(sim_state *s, size_t *len)
{
	json_t *put = json_object(), *del = json_object(), *root = NULL;
	char *text = NULL, *line;
	int failed = !put || !del;

	for (size_t i = 0; !failed && i < s->change_count; i++) {
		const sim_change *c = &s->changes[i];
		const char *member = sim_rec_array_name(c->kind);
		void *record = sim_coll_find(sim_state_coll(s, c->kind), c->key);

		if (record)
			failed = json_list_append(put, member, sim_rec_json(c->kind, record)) != 0;
		else
			failed = json_list_append(del, member, json_string(c->key)) != 0;
	}
	if (!failed)
		root = json_pack("{s:I, s:O, s:O}", "generation", (json_int_t)s->generation, "put",
				 put, "delete", del);
	json_decref(put);
	json_decref(del);
	if (root)
		text = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(root);
	if (!text)
		return NULL;
	*len = strlen(text);
	line = realloc(text, *len + 2);
	if (!line) {
		free(text);
		return NULL;
	}
	line[(*len)++] = '\n';
	line[*len] = '\0';
	return line;
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static void journal_fd_close(sim_state *s)
{
	if (s->journal_fd >= 0)
		close(s->journal_fd);
	s->journal_fd = -1;
}

/* Appends the recorded changes as one line and fsyncs it. */
static pl_err journal_append(sim_state *s, pl_errmsg *e)
{
	struct stat st;
	size_t len = 0;
	char *line = format_journal_line(s, &len);
	int err;

	if (!line)
		return pl_errmsg_set(e, PL_ERR_NOMEM, "state journal %s: out of memory",
				     s->journal_path);
	if (fstat(s->journal_fd, &st) != 0) {
		err = errno;
		free(line);
		journal_fd_close(s);
		return pl_errmsg_set(e, PL_ERR_IO, "state journal %s: %s", s->journal_path,
				     strerror(err));
	}
	if (st.st_nlink == 0) {
		/* Someone removed the journal: lines appended to it would be lost. */
		free(line);
		journal_fd_close(s);
		return sim_state_compact(s, e);
	}
	if (write_all(s->journal_fd, line, len) == 0 && fdatasync(s->journal_fd) == 0) {
		free(line);
		s->journal_bytes = (size_t)st.st_size + len;
		sim_state_changes_clear(s);
		return PL_OK;
	}
	err = errno;
	free(line);
	/* Cut a partial line so that no later line follows it. The next save
	 * writes a snapshot, which contains this change too. */
	if (ftruncate(s->journal_fd, st.st_size) != 0)
		PL_WARN("state", "state journal %s: removing a partial line failed: %s",
			s->journal_path, strerror(errno));
	journal_fd_close(s);
	return pl_errmsg_set(e, PL_ERR_IO, "state journal %s: append failed: %s", s->journal_path,
			     strerror(err));
}

/* ---- compaction -------------------------------------------------------- */

static size_t journal_bound(const sim_state *s)
{
	if (s->journal_max_bytes > 0)
		return s->journal_max_bytes;
	return s->snapshot_bytes > SIM_JOURNAL_MIN_BYTES ? s->snapshot_bytes
							  : SIM_JOURNAL_MIN_BYTES;
}

pl_err sim_state_compact(sim_state *s, pl_errmsg *e)
{
	size_t bytes = 0;
	pl_err rc;

	if (!s->path)
		return PL_OK;
	/* Create the journal before the snapshot: the snapshot's fsync of the
	 * directory then makes the journal's directory entry durable too. */
	if (s->journal_fd < 0) {
		s->journal_fd = open(s->journal_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (s->journal_fd < 0)
			PL_WARN("state", "state journal %s: %s; every save writes the state file",
				s->journal_path, strerror(errno));
	}
	rc = sim_state_snapshot_write(s, &bytes, e);
	if (rc != PL_OK)
		return rc;
	s->snapshot_bytes = bytes;
	s->journal_bytes = 0;
	sim_state_changes_clear(s);
	if (s->journal_fd >= 0 && (ftruncate(s->journal_fd, 0) != 0 || fsync(s->journal_fd) != 0)) {
		/* Its lines are in the snapshot and a load skips them. */
		PL_WARN("state", "state journal %s: emptying it failed: %s", s->journal_path,
			strerror(errno));
		journal_fd_close(s);
	}
	return PL_OK;
}

pl_err sim_state_save(sim_state *s, pl_errmsg *e)
{
	pl_errmsg compact_error;
	pl_err rc;

	if (!s->path) {
		sim_state_changes_clear(s);
		return PL_OK;
	}
	if (s->journal_fd < 0 || s->changes_overflow)
		return sim_state_compact(s, e);
	if (s->change_count == 0)
		return PL_OK;
	rc = journal_append(s, e);
	if (rc != PL_OK || s->journal_bytes <= journal_bound(s))
		return rc;
	/* The change is durable in the journal whatever the compaction does.
	 * NOTE: the compaction runs under the store's lock, so this call and
	 * the broker thread's snapshots wait for a whole-store write. */
	pl_errmsg_clear(&compact_error);
	if (sim_state_compact(s, &compact_error) != PL_OK)
		PL_WARN("state", "compaction failed, the journal keeps the changes: %s",
			compact_error.msg);
	return PL_OK;
}

void sim_state_journal_close(sim_state *s)
{
	pl_errmsg e;

	if (s->journal_fd < 0)
		return;
	if (s->journal_bytes > 0 || s->change_count > 0 || s->changes_overflow) {
		pl_errmsg_clear(&e);
		if (sim_state_compact(s, &e) != PL_OK)
			PL_WARN("state", "writing the state file at close failed, the journal keeps "
				"the changes: %s", e.msg);
	}
	journal_fd_close(s);
}

/* ---- load -------------------------------------------------------------- */

/* Reads the whole journal. *text is NULL when there is none. */
static pl_err journal_read(const sim_state *s, char **text, size_t *len, pl_errmsg *e)
{
	FILE *f = fopen(s->journal_path, "rb");
	struct stat st;
	pl_err rc = PL_OK;

	*text = NULL;
	*len = 0;
	if (!f)
		return errno == ENOENT ? PL_OK
				       : pl_errmsg_set(e, PL_ERR_IO, "state journal %s: %s",
						       s->journal_path, strerror(errno));
	if (fstat(fileno(f), &st) != 0)
		rc = pl_errmsg_set(e, PL_ERR_IO, "state journal %s: %s", s->journal_path,
				   strerror(errno));
	else if (!(*text = malloc((size_t)st.st_size + 1)))
		rc = pl_errmsg_set(e, PL_ERR_NOMEM, "state journal %s: out of memory",
				   s->journal_path);
	else if ((*len = fread(*text, 1, (size_t)st.st_size, f)) != (size_t)st.st_size)
		rc = pl_errmsg_set(e, PL_ERR_IO, "state journal %s: read failed", s->journal_path);
	fclose(f);
	if (rc != PL_OK) {
		free(*text);
		*text = NULL;
	}
	return rc;
}

/* Applies one array of "put" or "delete" of a journal line. */
static pl_err apply_list(sim_state *s, sim_rec_kind kind, json_t *list, int put,
			 const char *where, pl_errmsg *e)
{
	const char *member = sim_rec_array_name(kind);
	char at[PATH_MAX + 128];
	json_t *v;
	size_t i;

	if (!json_is_array(list))
		return pl_errmsg_set(e, PL_ERR_PARSE, "%s: %s.%s is not an array", where,
				     put ? "put" : "delete", member);
	json_array_foreach(list, i, v) {
		const char *key = json_string_value(put ? json_object_get(v, sim_rec_key_member(kind))
						       : v);
		pl_err rc;

		snprintf(at, sizeof(at), "%s: %s.%s[%zu]", where, put ? "put" : "delete", member, i);
		if (!put && !key)
			return pl_errmsg_set(e, PL_ERR_PARSE, "%s: not a string", at);
		/* A put replaces the whole record. The loader reports a missing key. */
		if (key)
			sim_state_record_remove(s, kind, key);
		if (!put)
			continue;
		rc = sim_rec_load(s, kind, v, at, e);
		if (rc != PL_OK)
			return rc;
	}
	return PL_OK;
}

/* Whether every member of obj names a record array. */
static int has_only_record_arrays(json_t *obj)
{
	const char *member;
	json_t *v;

	json_object_foreach(obj, member, v) {
		int known = 0;

		for (int kind = 0; kind < SIM_REC__COUNT; kind++)
			known |= strcmp(member, sim_rec_array_name((sim_rec_kind)kind)) == 0;
		if (!known)
			return 0;
	}
	return 1;
}

/*
 * Applies one line's changes. Puts go first, in load order because groups
 * refer to things, and the removals of the same line come after them.
 */
static pl_err apply_changes(sim_state *s, json_t *put, json_t *del, const char *where,
			    pl_errmsg *e)
{
	pl_err rc = PL_OK;

	for (int kind = 0; rc == PL_OK && put && kind < SIM_REC__COUNT; kind++) {
		json_t *list = json_object_get(put, sim_rec_array_name((sim_rec_kind)kind));
		if (list)
			rc = apply_list(s, (sim_rec_kind)kind, list, 1, where, e);
	}
	for (int kind = SIM_REC__COUNT - 1; rc == PL_OK && del && kind >= 0; kind--) {
		json_t *list = json_object_get(del, sim_rec_array_name((sim_rec_kind)kind));
		if (list)
			rc = apply_list(s, (sim_rec_kind)kind, list, 0, where, e);
	}
	return rc;
}

/*
 * Applies one parsed line unless the snapshot already contains it. *applied
 * becomes 1 after the first applied line; from then on generations must rise.
 */
static pl_err apply_line(sim_state *s, json_t *root, uint64_t snapshot_generation,
			 int *applied, const char *where, pl_errmsg *e)
{
	json_int_t generation = -1;
	json_t *put = NULL, *del = NULL;
	pl_err rc;

	if (json_unpack(root, "{s:I, s?o, s?o !}", "generation", &generation, "put", &put,
			"delete", &del) != 0 || generation < 0)
		return pl_errmsg_set(e, PL_ERR_PARSE,
				     "%s: not a journal line (generation, put and delete expected)",
				     where);
	if ((put && (!json_is_object(put) || !has_only_record_arrays(put))) ||
	    (del && (!json_is_object(del) || !has_only_record_arrays(del))))
		return pl_errmsg_set(e, PL_ERR_PARSE,
				     "%s: put and delete must be objects of record arrays", where);
	if (!*applied && (uint64_t)generation <= snapshot_generation)
		return PL_OK;
	if ((uint64_t)generation <= s->generation)
		return pl_errmsg_set(e, PL_ERR_PARSE,
				     "%s: generation %lld does not follow the previous line's %llu",
				     where, (long long)generation,
				     (unsigned long long)s->generation);
	rc = apply_changes(s, put, del, where, e);
	s->generation = (uint64_t)generation;
	*applied = 1;
	return rc;
}

static pl_err journal_replay(sim_state *s, int have_snapshot, pl_errmsg *e)
{
	uint64_t snapshot_generation = s->generation;
	char where[PATH_MAX + 64];
	size_t len, line_no = 0;
	int applied = 0;
	char *text;
	pl_err rc = journal_read(s, &text, &len, e);

	/* Every journal line follows a state file, because the first save
	 * after a start writes one. Without it the lines would rebuild only
	 * the records changed since, and lose the rest silently. */
	if (rc == PL_OK && text && len > 0 && !have_snapshot)
		rc = pl_errmsg_set(e, PL_ERR_PARSE,
				   "state journal %s: contains changes, but the state file %s "
				   "they apply to is missing. Restore it, or remove both files to "
				   "start empty",
				   s->journal_path, s->path);

	for (char *line = text; rc == PL_OK && line && line < text + len;) {
		char *end = memchr(line, '\n', (size_t)(text + len - line));
		json_error_t jerr;
		json_t *root;

		line_no++;
		snprintf(where, sizeof(where), "state journal %s: line %zu", s->journal_path, line_no);
		root = end ? json_loadb(line, (size_t)(end - line), JSON_REJECT_DUPLICATES, &jerr)
			   : NULL;
		if (!root && !end) {
			/* Only an append cut short by a crash leaves a line without
			 * its line feed (the last byte written), and its change was
			 * never acknowledged. */
			PL_WARN("state", "%s: incomplete last line ignored (the simulator stopped "
				"while saving a change it had not yet acknowledged)", where);
			break;
		}
		if (!root)
			rc = pl_errmsg_set(e, PL_ERR_PARSE, "%s: column %d: %s (the journal is "
					   "corrupt; restore it or remove it to lose its changes)",
					   where, jerr.column > 0 ? jerr.column : 1, jerr.text);
		else
			rc = apply_line(s, root, snapshot_generation, &applied, where, e);
		json_decref(root);
		line = end + 1;
	}
	free(text);
	return rc;
}

pl_err sim_state_load(sim_state *s, pl_errmsg *e)
{
	int have_snapshot;
	pl_err rc;

	if (!s->path)
		return PL_OK;
	s->loading = 1;
	have_snapshot = access(s->path, F_OK) == 0;
	rc = sim_state_snapshot_read(s, e);
	if (rc == PL_OK)
		rc = journal_replay(s, have_snapshot, e);
	s->loading = 0;
	sim_state_changes_clear(s);
	return rc;
}
