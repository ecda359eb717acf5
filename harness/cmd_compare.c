/*
 * policylag compare RUN_A RUN_B: for each group in both runs, has the
 * latency distribution changed from A to B? Prints a table, writes JSON and
 * exits 1 when a configured threshold is crossed.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/parse.h"
#include "harness/commands.h"
#include "results/results_cli.h"
#include "results/run.h"
#include "results/summary.h"

enum { OPT_MAX_P50 = 1, OPT_MAX_P99, OPT_MIN_P, OPT_JSON };

static const cli_option compare_options[] = {
	{ OPT_MAX_P50, "max-p50-increase", 0, "PERCENT",
	  "Fail when a group's median latency grew by more than PERCENT from A to B, e.g. 10%.", NULL },
	{ OPT_MAX_P99, "max-p99-increase", 0, "PERCENT",
	  "Fail when a group's p99 latency grew by more than PERCENT from A to B.", NULL },
	{ OPT_MIN_P, "min-logrank-p", 0, "P",
	  "Fail when the log-rank test of a group gives a p-value below P (the "
	  "distribution changed), e.g. 0.001.", NULL },
	{ OPT_JSON, "json", 'j', "FILE", "Write the comparison as JSON to FILE.",
	  "RUN_B/compare.json" },
	CLI_OPTIONS_END
};

typedef struct compare_args {
	double max_p50, max_p99, min_p; /* NaN when not set */
	const char *json;
} compare_args;

static pl_err on_compare_option(void *ctx, int id, const char *value, pl_errmsg *e)
{
	compare_args *args = ctx;

	switch (id) {
	case OPT_MAX_P50:
		return pl_parse_percent_max(value, 1e6, &args->max_p50, e);
	case OPT_MAX_P99:
		return pl_parse_percent_max(value, 1e6, &args->max_p99, e);
	case OPT_MIN_P:
		return pl_parse_double(value, 0, 1, &args->min_p, e);
	case OPT_JSON:
		args->json = value;
		return PL_OK;
	default:
		return pl_errmsg_set(e, PL_ERR_INTERNAL, "unhandled option %d", id);
	}
}

/* Relative change from a to b; +inf when b is unknown (never reached) but a is known. */
static double relative_change(double a, double b)
{
	if (isnan(a))
		return NAN;
	if (isnan(b))
		return INFINITY;
	if (a == 0)
		return b == 0 ? 0 : INFINITY;
	return (b - a) / a;
}

static void format_change(char *buf, size_t len, double change)
{
	if (isnan(change))
		snprintf(buf, len, "n/a");
	else if (isinf(change))
		snprintf(buf, len, "unbounded");
	else
		snprintf(buf, len, "%+.1f%%", 100 * change);
}

static json_t *number(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

static json_t *side_json(const summary_group *g)
{
	return json_pack("{s:I, s:I, s:I, s:o, s:o}", "n", (json_int_t)g->stats.n, "effective",
			 (json_int_t)g->stats.n_effect, "censored", (json_int_t)g->stats.n_censored,
			 "p50_s", number(g->stats.quantile[0].value), "p99_s",
			 number(g->stats.quantile[3].value));
}

/* Compares one group; appends the JSON entry; returns 1 when a threshold is crossed. */
static int compare_group(const summary_group *ga, const summary_group *gb,
			 const compare_args *args, json_t *list)
{
	stats_comparison c;
	double p50 = relative_change(ga->stats.quantile[0].value, gb->stats.quantile[0].value);
	double p99 = relative_change(ga->stats.quantile[3].value, gb->stats.quantile[3].value);
	char shown[3][32], p[32], change[2][32];
	json_t *crossed = json_array();

	stats_compare(gb->sample, ga->sample, 0.95, &c);
	if (!isnan(args->max_p50) && !isnan(p50) && p50 > args->max_p50)
		json_array_append_new(crossed, json_string("max-p50-increase"));
	if (!isnan(args->max_p99) && !isnan(p99) && p99 > args->max_p99)
		json_array_append_new(crossed, json_string("max-p99-increase"));
	if (!isnan(args->min_p) && !isnan(c.logrank.p) && c.logrank.p < args->min_p)
		json_array_append_new(crossed, json_string("min-logrank-p"));

	summary_format_seconds(shown[0], sizeof(shown[0]), ga->stats.quantile[0].value);
	summary_format_seconds(shown[1], sizeof(shown[1]), gb->stats.quantile[0].value);
	summary_format_seconds(shown[2], sizeof(shown[2]), c.shift.value);
	summary_format_p(p, sizeof(p), c.logrank.p);
	format_change(change[0], sizeof(change[0]), p50);
	format_change(change[1], sizeof(change[1]), p99);
	printf("%-24s %10s %10s %10s %10s %12s  %-14s %s\n", ga->name, shown[0], shown[1], change[0],
	       change[1], shown[2], p, json_array_size(crossed) ? "THRESHOLD" : "ok");

	size_t ncrossed = json_array_size(crossed);
	json_array_append_new(list, json_pack(
		"{s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:{s:o, s:o, s:o}, s:o, s:o}", "group",
		ga->name, "a", side_json(ga), "b", side_json(gb), "p50_change", number(p50),
		"p99_change", number(p99), "logrank_p", number(c.logrank.p), "mann_whitney_p",
		number(c.mann_whitney.p), "shift_b_minus_a_s", "value", number(c.shift.value), "lo",
		number(c.shift.lo), "hi", number(c.shift.hi), "cliff_delta", number(c.cliff_delta),
		"crossed", crossed));
	return ncrossed > 0;
}

static void list_missing(const summary *from, const summary *other, json_t *out)
{
	for (size_t i = 0; i < from->ngroups; i++)
		if (summary_find_group(other, from->groups[i].name) == NULL)
			json_array_append_new(out, json_string(from->groups[i].name));
}

static json_t *thresholds_json(const compare_args *args)
{
	return json_pack("{s:o, s:o, s:o}", "max_p50_increase", number(args->max_p50),
			 "max_p99_increase", number(args->max_p99), "min_logrank_p",
			 number(args->min_p));
}

static int thresholds_given(const compare_args *args)
{
	return !isnan(args->max_p50) || !isnan(args->max_p99) || !isnan(args->min_p);
}

/*
 * Compares every group found in both runs. Returns the number of groups over
 * a threshold, counting each group of A that B lacks when a threshold is given.
 */
static size_t compare_runs(const summary *a, const summary *b, const compare_args *args,
			   json_t *root)
{
	json_t *groups = json_array(), *only_a = json_array(), *only_b = json_array();
	size_t crossed = 0;

	printf("%-24s %10s %10s %10s %10s %12s  %-14s %s\n", "group", "p50 A", "p50 B", "p50",
	       "p99", "shift B-A", "log-rank", "status");
	for (size_t i = 0; i < a->ngroups; i++) {
		const summary_group *gb = summary_find_group(b, a->groups[i].name);
		if (gb != NULL)
			crossed += (size_t)compare_group(&a->groups[i], gb, args, groups);
	}
	list_missing(a, b, only_a);
	list_missing(b, a, only_b);
	if (json_array_size(only_a) + json_array_size(only_b) > 0)
		printf("groups in only one run: %zu in A, %zu in B\n", json_array_size(only_a),
		       json_array_size(only_b));
	/* A group that B lost (a run that measured nothing, say) must not pass a
	 * regression check just because nothing is left to compare. */
	if (thresholds_given(args)) {
		for (size_t i = 0; i < json_array_size(only_a); i++)
			printf("%-24s missing in B: THRESHOLD\n",
			       json_string_value(json_array_get(only_a, i)));
		crossed += json_array_size(only_a);
	}
	json_object_set_new(root, "groups", groups);
	json_object_set_new(root, "only_in_a", only_a);
	json_object_set_new(root, "only_in_b", only_b);
	json_object_set_new(root, "thresholds", thresholds_json(args));
	json_object_set_new(root, "groups_over_threshold", json_integer((json_int_t)crossed));
	return crossed;
}

static int finish(const cli_command *self, const compare_args *args, char **dirs,
		  const summary *a, const summary *b)
{
	char path[4096];
	pl_errmsg e = { "" };
	json_t *root = json_pack("{s:s, s:s, s:s, s:s}", "run_a", dirs[0], "run_b", dirs[1],
				 "run_a_id", a->run->run_id, "run_b_id", b->run->run_id);
	size_t crossed = compare_runs(a, b, args, root);
	pl_err err = PL_OK;

	(void)self;
	if (args->json != NULL)
		snprintf(path, sizeof(path), "%s", args->json);
	else
		err = run_path(path, sizeof(path), dirs[1], "compare.json", &e);
	if (err == PL_OK)
		err = run_json_write(root, path, &e);
	json_decref(root);
	if (err != PL_OK) {
		fprintf(stderr, "policylag compare: %s\n", e.msg);
		return PL_EXIT_RUNTIME;
	}
	printf("wrote %s\n", path);
	return crossed > 0 ? PL_EXIT_EXPECTATION : PL_EXIT_OK;
}

static int run_compare(const cli_command *self, int argc, char **argv)
{
	compare_args args = { NAN, NAN, NAN, NULL };
	static const char *const no_expectations[1] = { NULL };
	char *dirs[2];
	size_t ndirs;
	int help = 0, status;
	pl_errmsg e = { "" };
	summary *a = NULL, *b = NULL;

	if (results_cli_parse(self, argc, argv, on_compare_option, &args, dirs, 2, &ndirs, &help,
			      &e) != PL_OK)
		return cli_usage_error(self, e.msg);
	if (help)
		return PL_EXIT_OK;
	if (ndirs != 2)
		return cli_usage_error(self, "expected two run directories, RUN_A and RUN_B");
	if (summary_build(&a, dirs[0], no_expectations, 0, &e) != PL_OK ||
	    summary_build(&b, dirs[1], no_expectations, 0, &e) != PL_OK) {
		fprintf(stderr, "policylag compare: %s\n", e.msg);
		summary_free(a);
		return PL_EXIT_RUNTIME;
	}
	if (strcmp(a->run->profile_hash, b->run->profile_hash) != 0)
		printf("note: the runs used different profiles (%s and %s)\n", a->run->profile_name,
		       b->run->profile_name);
	status = finish(self, &args, dirs, a, b);
	summary_free(a);
	summary_free(b);
	return status;
}

const cli_command cmd_compare = {
	.name = "compare",
	.synopsis = "compare RUN_A RUN_B [--max-p50-increase PERCENT] [--max-p99-increase PERCENT] "
		    "[--min-logrank-p P] [--json FILE]",
	.summary = "Compare two runs group by group: has the latency distribution changed?",
	.description =
		"For every group present in both runs, prints the median and p99 latency of A and "
		"B, their relative change, the Hodges-Lehmann shift B - A and the log-rank p-value, "
		"and writes the same as JSON. Exit status 1 when a group crosses a threshold given "
		"on the command line, 0 otherwise, 3 when a run cannot be read. A quantile that B "
		"never reaches (too many censored devices) counts as an unbounded increase, and a "
		"group of A that B lacks crosses every threshold given.",
	.options = compare_options,
	.examples = "policylag compare runs/baseline runs/tonight --max-p50-increase 10%\n"
		    "policylag compare runs/a runs/b --min-logrank-p 0.001 --json diff.json",
	.run = run_compare,
	.exit_status = "0 no threshold crossed, 1 a group crossed a threshold (or is missing from RUN_B while a threshold is set), 2 usage error, 3 a run could not be read.",
};
