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

#include "harness/commands.h"
#include "results/results_cli.h"
#include "results/run.h"
#include "results/summary.h"

#define MERGE_SHARDS_MAX 256

enum { OPT_OUT = 1 };

static const cli_option merge_options[] = {
	{ OPT_OUT, "out", 'o', "DIR", "Write the merged run to DIR, which is created and must not contain a run.",
	  NULL },
	CLI_OPTIONS_END
};

typedef struct shard {
	const char *dir;
	run_info *info;
	run_samples *samples;
	int64_t shift_ns; /* added to every time of this shard */
} shard;

static pl_err on_merge_option(void *ctx, int id, const char *value, pl_errmsg *e)
{
	(void)id;
	(void)e;
	*(const char **)ctx = value;
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

/* Copies one shard's events.jsonl lines with t_ns shifted and a "shard" field added. */
static pl_err events_copy(const shard *sh, FILE *out, pl_errmsg *e)
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
		json_error_t jerr;
		json_t *obj;

		line_no++;
		if (strspn(line, " \t\r\n") == strlen(line))
			continue;
		obj = json_loads(line, 0, &jerr);
		if (!json_is_integer(json_object_get(obj, "t_ns"))) {
			err = pl_errmsg_set(e, PL_ERR_PARSE, "%s:%ld: expected an object with integer "
							     "\"t_ns\"", path, line_no);
		} else {
			json_int_t t = json_integer_value(json_object_get(obj, "t_ns"));
			json_object_set_new(obj, "t_ns", json_integer(t + sh->shift_ns));
			json_object_set_new(obj, "shard", json_integer(sh->info->shard_index));
			if (json_dumpf(obj, out, JSON_COMPACT) != 0 || fputc('\n', out) == EOF)
				err = pl_errmsg_set(e, PL_ERR_IO, "writing merged events failed");
		}
		json_decref(obj);
	}
	free(line);
	fclose(in);
	return err;
}

static pl_err events_merge(const shard *sh, size_t n, const char *out_dir, pl_errmsg *e)
{
	char path[4096];
	pl_err err = run_path(path, sizeof(path), out_dir, "events.jsonl", e);
	FILE *out;

	if (err != PL_OK)
		return err;
	out = fopen(path, "w");
	if (out == NULL)
		return pl_errmsg_set(e, PL_ERR_IO, "cannot create %s: %s", path, strerror(errno));
	/* NOTE: lines stay in shard order, not sorted by t_ns; the report does not need it. */
	for (size_t i = 0; i < n && err == PL_OK; i++)
		err = events_copy(&sh[i], out, e);
	if ((fclose(out) != 0) && err == PL_OK)
		err = pl_errmsg_set(e, PL_ERR_IO, "writing %s failed: %s", path, strerror(errno));
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

/* Checks the shards, aligns their clocks and writes the merged run. */
static pl_err merge_shards(shard *sh, size_t n, const char *out_dir, pl_errmsg *e)
{
	size_t base = 0;
	pl_err err = shards_check(sh, n, e);

	if (err == PL_OK)
		err = devices_check(sh, n, e);
	if (err != PL_OK)
		return err;
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
	const char *out_dir = NULL;
	size_t n = 0, failed = 0;
	int help = 0, status = PL_EXIT_OK;
	pl_errmsg e = { "" };
	pl_err err = PL_OK;

	if (results_cli_parse(self, argc, argv, on_merge_option, &out_dir, dirs, MERGE_SHARDS_MAX,
			      &n, &help, &e) != PL_OK)
		return cli_usage_error(self, e.msg);
	if (help)
		return PL_EXIT_OK;
	if (n == 0 || out_dir == NULL)
		return cli_usage_error(self, "expected one or more run directories and --out DIR");
	memset(sh, 0, sizeof(sh));
	for (size_t i = 0; i < n && err == PL_OK; i++) {
		sh[i].dir = dirs[i];
		err = shard_load(&sh[i], &e);
	}
	if (err == PL_OK)
		err = merge_shards(sh, n, out_dir, &e);
	if (err == PL_OK)
		err = summary_finish_run(out_dir, NULL, 0, &failed, &e);
	if (err != PL_OK) {
		fprintf(stderr, "policylag merge: %s\n", e.msg);
		status = err == PL_ERR_INVALID ? PL_EXIT_USAGE : PL_EXIT_RUNTIME;
	} else {
		printf("merged %zu shards into %s\n", n, out_dir);
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
	.synopsis = "merge RUN_DIR... --out DIR",
	.summary = "Combine the shards of one profile run into one run directory.",
	.description =
		"Checks that every RUN_DIR is a shard of the same profile (profile_hash), that no "
		"shard index repeats and that no device appears in two shards, then writes the "
		"combined run.json, samples.csv and events.jsonl into DIR, moves all times onto the "
		"earliest shard's clock anchor using the wall-clock anchors, and writes "
		"summary.json, report.html and junit.xml. Exit status 1 when an expectation "
		"fails, 2 when the shards cannot be merged, 3 on a file error.",
	.options = merge_options,
	.examples = "policylag merge host1/run host2/run host3/run --out runs/merged",
	.run = run_merge,
	.exit_status = "0 success, 1 an expectation failed, 2 usage error or the shards cannot be merged, 3 a file could not be read or written.",
};
