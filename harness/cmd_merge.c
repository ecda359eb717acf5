/*
 * policylag merge RUN_DIR... --out DIR: combines the shards of one profile
 * run into one run directory, then writes its summary and report.
 *
 * Shards may come from different machines, whose monotonic clocks share no
 * origin. Times are moved onto the earliest shard's anchor with the wall-clock
 * anchors of run.json, so cross-shard alignment is as good as the machines'
 * clock synchronisation. Latencies do not change.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness/commands.h"
#include "results/results_cli.h"
#include "results/run.h"
#include "results/summary.h"

#define MERGE_SHARDS_MAX 256

enum { OPT_OUT = 1, OPT_QUIET };

static const cli_option merge_options[] = {
	{ OPT_OUT, "out", 'o', "DIR", "Write the merged run to DIR, which is created and must not contain a run.",
	  NULL },
	{ OPT_QUIET, "quiet", 'q', NULL, "Print nothing but errors and warnings.", NULL },
	CLI_OPTIONS_END
};

typedef struct merge_args {
	const char *out_dir;
	int quiet;
} merge_args;

typedef struct shard {
	const char *dir;
	run_info *info;
	run_samples *samples;
	int64_t shift_ns; /* added to every time of this shard */
} shard;

static pl_err on_merge_option(void *ctx, int id, const char *value, pl_errmsg *e)
{
	merge_args *args = ctx;

	if (id == OPT_QUIET) {
		args->quiet = 1;
		return PL_OK;
	}
	if (args->out_dir != NULL)
		return pl_errmsg_set(e, PL_ERR_INVALID,
				     "--out given twice ('%s' and '%s'); give one output directory",
				     args->out_dir, value);
	args->out_dir = value;
	return PL_OK;
}

static pl_err shard_load(shard *sh, pl_errmsg *e)
{
	char path[4096];
	pl_err err = run_path(path, sizeof(path), sh->dir, "run.json", e);

	if (err == PL_OK)
		err = run_info_read(&sh->info, path, e);
	if (err == PL_OK)
		err = run_path(path, sizeof(path), sh->dir, "samples.csv", e);
	if (err == PL_OK)
		err = run_samples_read(&sh->samples, path, e);
	if (err != PL_OK)
		pl_errmsg_prefix(e, "%s", sh->dir);
	return err;
}

/* Same profile, same shard count, no shard twice. */
static pl_err shards_check(const shard *sh, size_t n, pl_errmsg *e)
{
	for (size_t i = 1; i < n; i++) {
		if (strcmp(sh[i].info->profile_hash, sh[0].info->profile_hash) != 0)
			return pl_errmsg_set(e, PL_ERR_INVALID,
					     "%s and %s are runs of different profiles (profile_hash %s "
					     "and %s); only shards of one profile run can be merged",
					     sh[0].dir, sh[i].dir, sh[0].info->profile_hash,
					     sh[i].info->profile_hash);
		if (sh[i].info->shard_count != sh[0].info->shard_count)
			return pl_errmsg_set(e, PL_ERR_INVALID,
					     "%s has %" PRId64 " shards but %s has %" PRId64, sh[0].dir,
					     sh[0].info->shard_count, sh[i].dir, sh[i].info->shard_count);
		for (size_t j = 0; j < i; j++)
			if (sh[i].info->shard_index == sh[j].info->shard_index)
				return pl_errmsg_set(e, PL_ERR_INVALID,
						     "%s and %s are both shard %" PRId64, sh[j].dir,
						     sh[i].dir, sh[i].info->shard_index);
	}
	return PL_OK;
}

/*
 * Warns on stderr about shard indexes that no RUN_DIR has. A partial merge is
 * allowed, for looking at the shards that finished, but its statistics cover
 * only part of the fleet.
 */
static void shards_warn_missing(const shard *sh, size_t n)
{
	int64_t count = sh[0].info->shard_count;
	size_t missing = 0;

	for (int64_t k = 1; k <= count; k++) {
		size_t i = 0;

		while (i < n && sh[i].info->shard_index != k)
			i++;
		if (i < n)
			continue;
		if (missing++ == 0)
			fprintf(stderr, "policylag merge: warning: shards missing of %" PRId64 ":",
				count);
		fprintf(stderr, " %" PRId64, k);
	}
	if (missing > 0)
		fprintf(stderr, "; the merged run covers %zu of %" PRId64 " shards\n", n, count);
}

typedef struct device_ref {
	const char *device;
	size_t shard;
} device_ref;

static int device_ref_order(const void *a, const void *b)
{
	const device_ref *x = a, *y = b;
	int c = strcmp(x->device, y->device);

	if (c != 0)
		return c;
	return (x->shard > y->shard) - (x->shard < y->shard);
}

/* A device may appear once per swap in its shard, but never in two shards. */
static pl_err devices_check(const shard *sh, size_t n, pl_errmsg *e)
{
	size_t total = 0, k = 0;
	device_ref *refs;
	pl_err err = PL_OK;

	for (size_t i = 0; i < n; i++)
		total += sh[i].samples->nrows;
	refs = malloc((total ? total : 1) * sizeof(*refs));
	if (refs == NULL)
		return pl_errmsg_set(e, PL_ERR_NOMEM, "merge: out of memory for %zu rows", total);
	for (size_t i = 0; i < n; i++)
		for (size_t r = 0; r < sh[i].samples->nrows; r++)
			refs[k++] = (device_ref){ sh[i].samples->rows[r].device, i };
	qsort(refs, total, sizeof(*refs), device_ref_order);
	for (size_t i = 1; i < total && err == PL_OK; i++)
		if (refs[i].shard != refs[i - 1].shard &&
		    strcmp(refs[i].device, refs[i - 1].device) == 0)
			err = pl_errmsg_set(e, PL_ERR_INVALID,
					    "device '%s' is in both %s and %s; shards must not overlap",
					    refs[i].device, sh[refs[i - 1].shard].dir, sh[refs[i].shard].dir);
	free(refs);
	return err;
}

static int64_t shifted(int64_t t, int64_t shift)
{
	return t == RUN_UNKNOWN ? t : t + shift;
}

static pl_err samples_merge(const shard *sh, size_t n, const char *out_dir, pl_errmsg *e)
{
	char path[4096];
	run_samples *all = NULL;
	pl_err err = run_samples_create(&all, e);

	for (size_t i = 0; i < n && err == PL_OK; i++) {
		const run_samples *rs = sh[i].samples;
		for (size_t r = 0; r < rs->nrows && err == PL_OK; r++) {
			run_sample row = rs->rows[r];
			row.t_swap_start_ns = shifted(row.t_swap_start_ns, sh[i].shift_ns);
			row.t_swap_ns = shifted(row.t_swap_ns, sh[i].shift_ns);
			row.t_effect_ns = shifted(row.t_effect_ns, sh[i].shift_ns);
			row.truth_effect_ns = shifted(row.truth_effect_ns, sh[i].shift_ns);
			err = run_samples_append(all, &row, rs->groups[row.group].name,
						 rs->groups[row.group].strategy, e);
		}
	}
	if (err == PL_OK)
		err = run_path(path, sizeof(path), out_dir, "samples.csv", e);
	if (err == PL_OK)
		err = run_samples_write(all, path, e);
	run_samples_free(all);
	return err;
}

/*
 * events.jsonl of a merged run is in t_ns order. A shard's file is not: its
 * lines are written as events reach the coordinator, and workers report
 * their own times. So each shard's lines are sorted on their own into an
 * unlinked temporary file, and those files are merged by a k-way merge.
 * Only one shard's lines are in memory at a time.
 */

/* One event line of a shard, already shifted and tagged with its shard. */
typedef struct event_line {
	int64_t t_ns;
	size_t seq; /* position in the shard's file, so equal times keep their order */
	char *json;
} event_line;

typedef struct event_lines {
	event_line *items;
	size_t count, cap;
} event_lines;

static void event_lines_free(event_lines *lines)
{
	for (size_t i = 0; i < lines->count; i++)
		free(lines->items[i].json);
	free(lines->items);
	memset(lines, 0, sizeof(*lines));
}

static pl_err event_lines_add(event_lines *lines, int64_t t_ns, char *json, pl_errmsg *e)
{
	if (lines->count == lines->cap) {
		size_t cap = lines->cap ? lines->cap * 2 : 1024;
		event_line *grown = realloc(lines->items, cap * sizeof(*grown));

		if (grown == NULL) {
			free(json);
			return pl_errmsg_set(e, PL_ERR_NOMEM, "merge: out of memory for %zu events", cap);
		}
		lines->items = grown;
		lines->cap = cap;
	}
	lines->items[lines->count] = (event_line){ t_ns, lines->count, json };
	lines->count++;
	return PL_OK;
}

static int event_line_order(const void *a, const void *b)
{
	const event_line *x = a, *y = b;

	if (x->t_ns != y->t_ns)
		return x->t_ns < y->t_ns ? -1 : 1;
	return (x->seq > y->seq) - (x->seq < y->seq);
}

/* Parses one line, shifts its t_ns and adds the "shard" field. */
static pl_err event_convert(const shard *sh, const char *path, long line_no, const char *line,
			    event_lines *lines, pl_errmsg *e)
{
	json_error_t jerr;
	json_t *obj = json_loads(line, 0, &jerr);
	json_int_t t;
	char *json;

	if (!json_is_integer(json_object_get(obj, "t_ns"))) {
		json_decref(obj);
		return pl_errmsg_set(e, PL_ERR_PARSE,
				     "%s:%ld: expected an object with integer \"t_ns\"", path, line_no);
	}
	t = json_integer_value(json_object_get(obj, "t_ns")) + sh->shift_ns;
	json_object_set_new(obj, "t_ns", json_integer(t));
	json_object_set_new(obj, "shard", json_integer(sh->info->shard_index));
	json = json_dumps(obj, JSON_COMPACT);
	json_decref(obj);
	if (json == NULL)
		return pl_errmsg_set(e, PL_ERR_NOMEM, "merge: out of memory for an event");
	return event_lines_add(lines, t, json, e);
}

/* Reads one shard's events.jsonl; a shard without the file has no events. */
static pl_err shard_events_read(const shard *sh, event_lines *lines, pl_errmsg *e)
{
	char path[4096], *line = NULL;
	size_t cap = 0;
	long line_no = 0;
	pl_err err = run_path(path, sizeof(path), sh->dir, "events.jsonl", e);
	FILE *in;

	if (err != PL_OK)
		return err;
	in = fopen(path, "r");
	if (in == NULL)
		return errno == ENOENT ? PL_OK
				       : pl_errmsg_set(e, PL_ERR_IO, "cannot open %s: %s", path,
						       strerror(errno));
	while (err == PL_OK && getline(&line, &cap, in) >= 0) {
		line_no++;
		if (strspn(line, " \t\r\n") != strlen(line))
			err = event_convert(sh, path, line_no, line, lines, e);
	}
	if (err == PL_OK && ferror(in))
		err = pl_errmsg_set(e, PL_ERR_IO, "reading %s failed", path);
	free(line);
	fclose(in);
	return err;
}

/* Creates an unlinked temporary file in dir, so the system removes it when it is closed. */
static pl_err temp_file_open(const char *dir, FILE **out, pl_errmsg *e)
{
	char path[4096];
	int fd;

	if (snprintf(path, sizeof(path), "%s/.events-merge.XXXXXX", dir) >= (int)sizeof(path))
		return pl_errmsg_set(e, PL_ERR_RANGE, "path too long: %s", dir);
	fd = mkstemp(path);
	if (fd < 0)
		return pl_errmsg_set(e, PL_ERR_IO, "cannot create a temporary file in %s: %s", dir,
				     strerror(errno));
	unlink(path);
	*out = fdopen(fd, "w+");
	if (*out == NULL) {
		close(fd);
		return pl_errmsg_set(e, PL_ERR_IO, "cannot open a temporary file in %s: %s", dir,
				     strerror(errno));
	}
	return PL_OK;
}

/* Sorts one shard's events into a temporary file of "T_NS JSON" lines, rewound for reading. */
static pl_err shard_events_sort(const shard *sh, const char *out_dir, FILE **out, pl_errmsg *e)
{
	event_lines lines = { NULL, 0, 0 };
	pl_err err = shard_events_read(sh, &lines, e);

	*out = NULL;
	if (err == PL_OK)
		err = temp_file_open(out_dir, out, e);
	if (err == PL_OK) {
		qsort(lines.items, lines.count, sizeof(*lines.items), event_line_order);
		for (size_t i = 0; i < lines.count; i++)
			fprintf(*out, "%" PRId64 " %s\n", lines.items[i].t_ns, lines.items[i].json);
		if (fflush(*out) != 0 || ferror(*out) || fseek(*out, 0, SEEK_SET) != 0)
			err = pl_errmsg_set(e, PL_ERR_IO, "writing a temporary file in %s failed: %s",
					    out_dir, strerror(errno));
	}
	event_lines_free(&lines);
	return err;
}

/* The next line of one shard's sorted temporary file. */
typedef struct merge_source {
	FILE *f;
	char *line;
	size_t cap;
	int64_t t_ns;
	const char *json; /* within line */
	int64_t shard;    /* shard index of run.json, the tie-break */
} merge_source;

/* Reads the source's next line; returns 0 at the end of its file. */
static int source_next(merge_source *src)
{
	char *space;

	if (getline(&src->line, &src->cap, src->f) < 0)
		return 0;
	src->t_ns = strtoll(src->line, &space, 10);
	src->json = space + 1;
	return 1;
}

static int source_before(const merge_source *a, const merge_source *b)
{
	return a->t_ns < b->t_ns || (a->t_ns == b->t_ns && a->shard < b->shard);
}

/* Restores the min-heap order of heap[0..n) below index i. */
static void heap_sift_down(merge_source **heap, size_t n, size_t i)
{
	for (;;) {
		size_t least = i, left = 2 * i + 1, right = 2 * i + 2;
		merge_source *swap;

		if (left < n && source_before(heap[left], heap[least]))
			least = left;
		if (right < n && source_before(heap[right], heap[least]))
			least = right;
		if (least == i)
			return;
		swap = heap[i];
		heap[i] = heap[least];
		heap[least] = swap;
		i = least;
	}
}

/* Writes the sources' lines to out in (t_ns, shard) order. */
static pl_err sources_merge(merge_source *src, size_t n, FILE *out, pl_errmsg *e)
{
	merge_source *heap[MERGE_SHARDS_MAX];
	size_t live = 0;

	for (size_t i = 0; i < n; i++)
		if (source_next(&src[i]))
			heap[live++] = &src[i];
	for (size_t i = live; i-- > 0;)
		heap_sift_down(heap, live, i);
	while (live > 0) {
		if (fputs(heap[0]->json, out) == EOF)
			return pl_errmsg_set(e, PL_ERR_IO, "writing merged events failed: %s",
					     strerror(errno));
		if (!source_next(heap[0]))
			heap[0] = heap[--live];
		heap_sift_down(heap, live, 0);
	}
	return PL_OK;
}

static pl_err events_merge(const shard *sh, size_t n, const char *out_dir, pl_errmsg *e)
{
	merge_source src[MERGE_SHARDS_MAX];
	char path[4096];
	pl_err err = run_path(path, sizeof(path), out_dir, "events.jsonl", e);
	FILE *out = NULL;

	memset(src, 0, sizeof(src));
	for (size_t i = 0; i < n && err == PL_OK; i++) {
		src[i].shard = sh[i].info->shard_index;
		err = shard_events_sort(&sh[i], out_dir, &src[i].f, e);
	}
	if (err == PL_OK) {
		out = fopen(path, "w");
		if (out == NULL)
			err = pl_errmsg_set(e, PL_ERR_IO, "cannot create %s: %s", path, strerror(errno));
	}
	if (err == PL_OK)
		err = sources_merge(src, n, out, e);
	if (out != NULL && fclose(out) != 0 && err == PL_OK)
		err = pl_errmsg_set(e, PL_ERR_IO, "writing %s failed: %s", path, strerror(errno));
	for (size_t i = 0; i < n; i++) {
		if (src[i].f != NULL)
			fclose(src[i].f);
		free(src[i].line);
	}
	return err;
}

/* failed > interrupted > completed: the merged run is as bad as its worst shard. */
static int status_rank(const char *status)
{
	if (strcmp(status, "completed") == 0)
		return 0;
	if (strcmp(status, "interrupted") == 0)
		return 1;
	return 2;
}

static pl_err info_merge(const shard *sh, size_t n, size_t base, const char *out_dir,
			 pl_errmsg *e)
{
	char path[4096], run_id[512];
	json_t *root = json_deep_copy(sh[base].info->json), *from = json_array();
	const run_info *first = sh[base].info;
	const char *start = first->start_wall, *end = first->end_wall, *status = first->status;
	pl_err err;

	for (size_t i = 0; i < n; i++) {
		const run_info *ri = sh[i].info;
		if (strcmp(ri->start_wall, start) < 0)
			start = ri->start_wall;
		if (strcmp(ri->end_wall, end) > 0)
			end = ri->end_wall;
		if (status_rank(ri->status) > status_rank(status))
			status = ri->status;
		json_array_append_new(from, json_pack("{s:s, s:I, s:s}", "run_id", ri->run_id,
						      "shard", (json_int_t)ri->shard_index, "dir",
						      sh[i].dir));
	}
	snprintf(run_id, sizeof(run_id), "%s-merged", first->run_id);
	json_object_set_new(root, "run_id", json_string(run_id));
	json_object_set_new(root, "shard", json_string("1/1"));
	json_object_set_new(root, "start_wall", json_string(start));
	json_object_set_new(root, "end_wall", json_string(end));
	json_object_set_new(root, "status", json_string(status));
	json_object_set_new(root, "merged_from", from);
	err = run_path(path, sizeof(path), out_dir, "run.json", e);
	if (err == PL_OK)
		err = run_json_write(root, path, e);
	json_decref(root);
	return err;
}

static pl_err out_dir_prepare(const char *dir, pl_errmsg *e)
{
	char path[4096];
	struct stat st;
	pl_err err;

	if (mkdir(dir, 0755) != 0 && errno != EEXIST)
		return pl_errmsg_set(e, PL_ERR_IO, "cannot create %s: %s", dir, strerror(errno));
	err = run_path(path, sizeof(path), dir, "samples.csv", e);
	if (err == PL_OK && stat(path, &st) == 0)
		return pl_errmsg_set(e, PL_ERR_EXISTS,
				     "%s already holds a run (samples.csv); choose an empty --out "
				     "directory", dir);
	return err;
}

/* Every shard needs its wall-clock anchor, which aligns its times with the others'. */
static pl_err anchors_check(const shard *sh, size_t n, pl_errmsg *e)
{
	for (size_t i = 0; n > 1 && i < n; i++)
		if (sh[i].info->anchor_wall_ns <= 0)
			return pl_errmsg_set(e, PL_ERR_INVALID,
					     "%s/run.json: anchor_wall_ns is missing or not a positive "
					     "integer, so its times cannot be aligned with the other "
					     "shards",
					     sh[i].dir);
	return PL_OK;
}

static int shard_index_order(const void *a, const void *b)
{
	int64_t x = ((const shard *)a)->info->shard_index;
	int64_t y = ((const shard *)b)->info->shard_index;

	return (x > y) - (x < y);
}

/* Checks the shards, aligns their clocks and writes the merged run. */
static pl_err merge_shards(shard *sh, size_t n, const char *out_dir, pl_errmsg *e)
{
	size_t base = 0;
	pl_err err = shards_check(sh, n, e);

	if (err == PL_OK)
		err = devices_check(sh, n, e);
	if (err == PL_OK)
		err = anchors_check(sh, n, e);
	if (err != PL_OK)
		return err;
	shards_warn_missing(sh, n);
	/* Shard order, so that the output does not depend on the argument order. */
	qsort(sh, n, sizeof(*sh), shard_index_order);
	for (size_t i = 1; i < n; i++)
		if (sh[i].info->anchor_wall_ns < sh[base].info->anchor_wall_ns)
			base = i;
	for (size_t i = 0; i < n; i++)
		sh[i].shift_ns = sh[i].info->anchor_wall_ns - sh[base].info->anchor_wall_ns;
	err = out_dir_prepare(out_dir, e);
	if (err == PL_OK)
		err = samples_merge(sh, n, out_dir, e);
	if (err == PL_OK)
		err = events_merge(sh, n, out_dir, e);
	if (err == PL_OK)
		err = info_merge(sh, n, base, out_dir, e);
	return err;
}

static int run_merge(const cli_command *self, int argc, char **argv)
{
	char *dirs[MERGE_SHARDS_MAX];
	shard sh[MERGE_SHARDS_MAX];
	merge_args args = { NULL, 0 };
	size_t n = 0, failed = 0;
	int help = 0, status = PL_EXIT_OK;
	pl_errmsg e = { "" };
	pl_err err = PL_OK;

	if (results_cli_parse(self, argc, argv, on_merge_option, &args, dirs, MERGE_SHARDS_MAX,
			      &n, &help, &e) != PL_OK)
		return cli_usage_error(self, e.msg);
	if (help)
		return PL_EXIT_OK;
	if (n == 0 || args.out_dir == NULL)
		return cli_usage_error(self, "expected one or more run directories and --out DIR");
	memset(sh, 0, sizeof(sh));
	for (size_t i = 0; i < n && err == PL_OK; i++) {
		sh[i].dir = dirs[i];
		err = shard_load(&sh[i], &e);
	}
	if (err == PL_OK)
		err = merge_shards(sh, n, args.out_dir, &e);
	if (err == PL_OK)
		err = summary_finish_run(args.out_dir, NULL, 0, &failed, &e);
	if (err != PL_OK) {
		fprintf(stderr, "policylag merge: %s\n", e.msg);
		status = err == PL_ERR_INVALID ? PL_EXIT_USAGE : PL_EXIT_RUNTIME;
	} else {
		if (!args.quiet)
			printf("merged %zu shards into %s\n", n, args.out_dir);
		status = failed > 0 ? PL_EXIT_EXPECTATION : PL_EXIT_OK;
	}
	for (size_t i = 0; i < n; i++) {
		run_info_free(sh[i].info);
		run_samples_free(sh[i].samples);
	}
	return status;
}

const cli_command cmd_merge = {
	.name = "merge",
	.synopsis = "merge RUN_DIR... --out DIR [-q]",
	.summary = "Combine the shards of one profile run into one run directory.",
	.description =
		"Checks that every RUN_DIR is a shard of the same profile (profile_hash), that no "
		"shard index repeats and that no device appears in two shards, then writes the "
		"combined run.json, samples.csv and events.jsonl (sorted by time) into DIR, moves all "
		"times onto the earliest shard's clock anchor using the wall-clock anchors, and writes "
		"summary.json, report.html and junit.xml. A shard index that no RUN_DIR has gets a "
		"warning on stderr, and the merge goes on with the shards given. Exit status 1 when an expectation "
		"fails, 2 when the shards cannot be merged, 3 on a file error.",
	.options = merge_options,
	.examples = "policylag merge host1/run host2/run host3/run --out runs/merged",
	.run = run_merge,
	.exit_status = "0 success, 1 an expectation failed, 2 usage error or the shards cannot be merged, 3 a file could not be read or written.",
};
