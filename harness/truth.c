#include "harness/truth.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TRUTH_ID_MAX 129
/* AWS allows 10 policies per certificate; thing groups can add more. */
#define TRUTH_MAX_REFS 16

typedef struct truth_entry {
	char client_id[TRUTH_ID_MAX];
	int64_t t_ns;
	uint64_t policies; /* hash of the snapshot's policies and versions; 0: not given */
	uint64_t refs[TRUTH_MAX_REFS]; /* hash of each policy name and version */
	unsigned nrefs;                /* TRUTH_MAX_REFS + 1 when the list did not fit */
} truth_entry;

struct truth_table {
	truth_entry *entries; /* sorted by client id, then time */
	size_t count;
	size_t cap;
	size_t skipped;
	size_t ignored;
	long offset;     /* bytes of the file consumed by truth_update */
	size_t lineno;   /* lines consumed, for messages */
};

static const char *const time_keys[] = { "monoNs", "t_ns", "mono_ns", NULL };
static const char *const id_keys[] = { "clientId", "client_id", NULL };

static json_t *first_member(json_t *obj, const char *const *keys)
{
	for (size_t i = 0; keys[i] != NULL; i++) {
		json_t *v = json_object_get(obj, keys[i]);

		if (v != NULL)
			return v;
	}
	return NULL;
}

/*
 * Whether a snapshot line can carry a policy change: a connection's first
 * snapshot, or a refresh whose content changed. A refresh that found the
 * same policies (the change was not yet applied) is not the effect.
 */
static int takes_effect(json_t *obj)
{
	json_t *changed = json_object_get(obj, "changed");
	json_t *event = json_object_get(obj, "event");

	if (json_is_string(event) && strstr(json_string_value(event), "connect") != NULL)
		return 1;
	return changed == NULL || json_is_true(changed);
}

static uint64_t hash_text(const char *text)
{
	uint64_t h = 1469598103934665603ULL;

	for (const char *c = text; *c != '\0'; c++)
		h = (h ^ (unsigned char)*c) * 1099511628211ULL;
	return h != 0 ? h : 1;
}

static uint64_t hash_json(json_t *value)
{
	char *text = json_dumps(value, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	uint64_t h;

	if (text == NULL)
		return 0;
	h = hash_text(text);
	free(text);
	return h;
}

/*
 * Reads the "policies" member into en: a hash of the whole list (0 when it
 * is absent) and one hash per policy name and version.
 */
static void read_policies(json_t *obj, truth_entry *en)
{
	json_t *policies = json_object_get(obj, "policies");
	en->policies = policies != NULL ? hash_json(policies) : 0;
	en->nrefs = 0;
	if (!json_is_array(policies))
		return;
	if (json_array_size(policies) > TRUTH_MAX_REFS) {
		en->nrefs = TRUTH_MAX_REFS + 1;
		return;
	}
	for (size_t i = 0; i < json_array_size(policies); i++)
		en->refs[en->nrefs++] = hash_json(json_array_get(policies, i));
}

static pl_err add_entry(truth_table *t, const char *id, int64_t t_ns, json_t *obj,
			pl_errmsg *e)
{
	if (t->count == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 1024;
		truth_entry *grown = realloc(t->entries, cap * sizeof(*grown));

		if (grown == NULL)
			return pl_errmsg_set(e, PL_ERR_NOMEM, "ground truth: out of memory");
		t->entries = grown;
		t->cap = cap;
	}
	snprintf(t->entries[t->count].client_id, TRUTH_ID_MAX, "%s", id);
	t->entries[t->count].t_ns = t_ns;
	read_policies(obj, &t->entries[t->count]);
	t->count++;
	return PL_OK;
}

static pl_err parse_line(truth_table *t, const char *line, size_t len, size_t lineno,
			 pl_errmsg *e)
{
	json_error_t jerr;
	json_t *obj = json_loadb(line, len, 0, &jerr);
	json_t *id, *tv;
	pl_err err = PL_OK;

	if (obj == NULL || !json_is_object(obj)) {
		json_decref(obj);
		return pl_errmsg_set(e, PL_ERR_PARSE, "ground truth line %zu: %s", lineno,
				     obj == NULL ? jerr.text : "not a JSON object");
	}
	id = first_member(obj, id_keys);
	tv = first_member(obj, time_keys);
	if (!takes_effect(obj))
		t->ignored++;
	else if (json_is_string(id) && json_is_integer(tv))
		err = add_entry(t, json_string_value(id), (int64_t)json_integer_value(tv), obj, e);
	else
		t->skipped++;
	json_decref(obj);
	return err;
}

static int compare_entries(const void *a, const void *b)
{
	const truth_entry *x = a;
	const truth_entry *y = b;
	int c = strcmp(x->client_id, y->client_id);

	if (c != 0)
		return c;
	return (x->t_ns > y->t_ns) - (x->t_ns < y->t_ns);
}

/* Parses the complete lines of text; returns the bytes consumed. */
static pl_err append_lines(truth_table *t, const char *text, size_t len, size_t *used,
			   pl_errmsg *e)
{
	size_t pos = 0;
	pl_err err = PL_OK;

	while (pos < len && err == PL_OK) {
		const char *nl = memchr(text + pos, '\n', len - pos);

		if (nl == NULL)
			break;
		t->lineno++;
		if ((size_t)(nl - text) > pos)
			err = parse_line(t, text + pos, (size_t)(nl - text) - pos, t->lineno, e);
		pos = (size_t)(nl - text) + 1;
	}
	*used = pos;
	return err;
}

pl_err truth_create(truth_table **out, pl_errmsg *e)
{
	*out = calloc(1, sizeof(**out));
	if (*out == NULL)
		return pl_errmsg_set(e, PL_ERR_NOMEM, "ground truth: out of memory");
	return PL_OK;
}

pl_err truth_load_text(truth_table **out, const char *text, size_t len, pl_errmsg *e)
{
	truth_table *t;
	size_t used;
	pl_err err = truth_create(&t, e);

	if (err != PL_OK)
		return err;
	err = append_lines(t, text, len, &used, e);
	if (err == PL_OK && used < len)
		err = parse_line(t, text + used, len - used, t->lineno + 1, e);
	if (err != PL_OK) {
		truth_free(t);
		return err;
	}
	qsort(t->entries, t->count, sizeof(*t->entries), compare_entries);
	*out = t;
	return PL_OK;
}

pl_err truth_update(truth_table *t, const char *path, pl_errmsg *e)
{
	FILE *f = fopen(path, "rb");
	char buf[1 << 16];
	size_t have = 0;
	size_t before = t->count;
	pl_err err = PL_OK;

	if (f == NULL)
		return errno == ENOENT ? PL_OK
				       : pl_errmsg_set(e, PL_ERR_IO, "cannot open ground truth '%s': %s",
						       path, strerror(errno));
	if (fseek(f, t->offset, SEEK_SET) != 0)
		err = pl_errmsg_set(e, PL_ERR_IO, "%s: %s", path, strerror(errno));
	while (err == PL_OK) {
		size_t n = fread(buf + have, 1, sizeof(buf) - have, f);
		size_t used;

		if (n == 0)
			break;
		have += n;
		err = append_lines(t, buf, have, &used, e);
		t->offset += (long)used;
		memmove(buf, buf + used, have - used);
		have -= used;
		if (have == sizeof(buf))
			err = pl_errmsg_set(e, PL_ERR_PARSE, "%s: line %zu is longer than %zu bytes",
					    path, t->lineno + 1, sizeof(buf));
	}
	fclose(f);
	if (t->count != before)
		qsort(t->entries, t->count, sizeof(*t->entries), compare_entries);
	return err;
}

pl_err truth_load_file(truth_table **out, const char *path, pl_errmsg *e)
{
	truth_table *t;
	pl_err err = truth_create(&t, e);

	if (err == PL_OK && access(path, R_OK) != 0)
		err = pl_errmsg_set(e, PL_ERR_IO, "cannot read ground truth '%s': %s", path,
				    strerror(errno));
	if (err == PL_OK)
		err = truth_update(t, path, e);
	if (err != PL_OK) {
		truth_free(t);
		return err;
	}
	*out = t;
	return PL_OK;
}

void truth_free(truth_table *t)
{
	if (t == NULL)
		return;
	free(t->entries);
	free(t);
}

size_t truth_count(const truth_table *t)
{
	return t->count;
}

size_t truth_skipped(const truth_table *t)
{
	return t->skipped;
}

/* Index of the first entry whose client id is not below key. */
static size_t lower_bound(const truth_table *t, const char *key)
{
	size_t lo = 0;
	size_t hi = t->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(t->entries[mid].client_id, key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * Whether id is one of the device's own connections: the device name, or
 * the worker's fresh client id "<device>-a<attempt>". Other suffixes, such
 * as the coordinator's "<device>-trigger" connection, are not the device.
 */
static int is_connection_of(const char *id, const char *device, size_t dlen)
{
	const char *rest = id + dlen;

	if (strncmp(id, device, dlen) != 0)
		return 0;
	if (rest[0] == '\0')
		return 1;
	if (rest[0] != '-' || rest[1] != 'a' || rest[2] == '\0')
		return 0;
	return strspn(rest + 2, "0123456789") == strlen(rest + 2);
}

/*
 * The device's last snapshot before from_ns, or NULL. Entries of the device
 * and of "<device>-..." follow each other in sort order, mixed only with
 * other ids that share the prefix.
 */
static const truth_entry *snapshot_before(const truth_table *t, const char *device,
					  size_t dlen, int64_t from_ns)
{
	const truth_entry *latest = NULL;

	for (size_t i = lower_bound(t, device); i < t->count; i++) {
		const truth_entry *en = &t->entries[i];

		if (strncmp(en->client_id, device, dlen) != 0)
			break;
		if (is_connection_of(en->client_id, device, dlen) && en->t_ns < from_ns &&
		    (latest == NULL || en->t_ns > latest->t_ns))
			latest = en;
	}
	return latest;
}

/* Whether every policy (name and version) of old is also in en. */
static int contains_all(const truth_entry *en, const truth_entry *old)
{
	if (old->nrefs == 0 || old->nrefs > TRUTH_MAX_REFS || en->nrefs > TRUTH_MAX_REFS)
		return 0;
	for (unsigned i = 0; i < old->nrefs; i++) {
		unsigned j = 0;

		while (j < en->nrefs && en->refs[j] != old->refs[i])
			j++;
		if (j == en->nrefs)
			return 0;
	}
	return 1;
}

/*
 * Whether a snapshot after the change cannot be the effect: it has the same
 * policies as before the change (a trigger-topic rule runs after its
 * trigger), or, for a revoke, it still has every old policy. The second case
 * is the moment between AttachPolicy(after) and DetachPolicy(before), when
 * the union of both policies still allows what the revoke takes away.
 * NOTE: this assumes a revoke removes an Allow. A revoke made by adding an
 * explicit Deny policy takes effect while the old policies are still there,
 * so its ground truth would be reported late.
 */
static int before_change(const truth_entry *en, const truth_entry *old, int revoke)
{
	if (old == NULL || old->policies == 0)
		return 0;
	if (en->policies == old->policies)
		return 1;
	return revoke && contains_all(en, old);
}

int64_t truth_effect(const truth_table *t, const char *device, int64_t from_ns, int revoke)
{
	size_t dlen = strlen(device);
	const truth_entry *old = snapshot_before(t, device, dlen, from_ns);
	int64_t best = INT64_MIN;

	for (size_t i = lower_bound(t, device); i < t->count; i++) {
		const truth_entry *en = &t->entries[i];

		if (strncmp(en->client_id, device, dlen) != 0)
			break;
		if (!is_connection_of(en->client_id, device, dlen) || en->t_ns < from_ns)
			continue;
		if (before_change(en, old, revoke))
			continue;
		if (best == INT64_MIN || en->t_ns < best)
			best = en->t_ns;
	}
	return best;
}
