/*
 * policylag report RUN_DIR: rebuilds summary.json, report.html and
 * junit.xml of a run directory from its samples.
 */
#include <stdio.h>
#include <stdlib.h>

#include "harness/commands.h"
#include "results/expect.h"
#include "results/results_cli.h"
#include "results/summary.h"

#define REPORT_EXPECT_MAX 256

enum { OPT_EXPECT = 1, OPT_QUIET };

static const cli_option report_options[] = {
	{ OPT_EXPECT, "expect", 'e', "EXPR",
	  "Check this expectation instead of those stored in run.json, e.g. "
	  "'reconnect.p99 < 30s'; repeatable.", NULL },
	{ OPT_QUIET, "quiet", 'q', NULL, "Print nothing but errors.", NULL },
	CLI_OPTIONS_END
};

typedef struct report_args {
	const char *expect[REPORT_EXPECT_MAX];
	size_t nexpect;
	int quiet;
} report_args;

/* Parses an --expect value, so that a typo is a usage error before any file is rewritten. */
static pl_err expect_check(const char *text, pl_errmsg *e)
{
	expect_expr *x = NULL;
	size_t column = 0;
	pl_errmsg why;

	if (expect_parse(&x, text, &column, &why) != PL_OK)
		return pl_errmsg_set(e, PL_ERR_INVALID, "--expect '%s': column %zu: %s", text,
				     column + 1, why.msg);
	expect_free(x);
	return PL_OK;
}

static pl_err on_report_option(void *ctx, int id, const char *value, pl_errmsg *e)
{
	report_args *args = ctx;

	if (id == OPT_QUIET) {
		args->quiet = 1;
		return PL_OK;
	}
	if (args->nexpect == REPORT_EXPECT_MAX)
		return pl_errmsg_set(e, PL_ERR_LIMIT, "more than %d --expect options",
				     REPORT_EXPECT_MAX);
	if (expect_check(value, e) != PL_OK)
		return PL_ERR_INVALID;
	args->expect[args->nexpect++] = value;
	return PL_OK;
}

static int run_report(const cli_command *self, int argc, char **argv)
{
	report_args args = { .nexpect = 0 };
	char *dirs[1];
	size_t ndirs, failed = 0;
	int help = 0;
	pl_errmsg e = { "" };
	summary *s = NULL;

	if (results_cli_parse(self, argc, argv, on_report_option, &args, dirs, 1, &ndirs, &help,
			      &e) != PL_OK)
		return cli_usage_error(self, e.msg);
	if (help)
		return PL_EXIT_OK;
	if (ndirs != 1)
		return cli_usage_error(self, "expected one run directory");
	if (summary_build(&s, dirs[0], args.nexpect ? args.expect : NULL, args.nexpect, &e) !=
		    PL_OK ||
	    summary_write_all(s, dirs[0], &e) != PL_OK) {
		fprintf(stderr, "policylag report: %s\n", e.msg);
		summary_free(s);
		return PL_EXIT_RUNTIME;
	}
	failed = s->nchecks_failed;
	if (!args.quiet) {
		results_cli_print_summary(s);
		printf("\nwrote summary.json, report.html and junit.xml into %s\n", dirs[0]);
	}
	summary_free(s);
	return failed > 0 ? PL_EXIT_EXPECTATION : PL_EXIT_OK;
}

const cli_command cmd_report = {
	.name = "report",
	.synopsis = "report RUN_DIR [--expect EXPR]...",
	.summary = "Rebuild summary.json, report.html and junit.xml from a run's samples.",
	.description =
		"Reads run.json, samples.csv and events.jsonl of RUN_DIR, computes the statistics "
		"(Kaplan-Meier quantiles, log-rank and Mann-Whitney tests between groups), checks "
		"the expectations and writes summary.json, report.html and junit.xml into RUN_DIR. "
		"Exit status 1 when an expectation fails, 3 when the run directory cannot be read.",
	.options = report_options,
	.examples = "policylag report runs/seed-verification-20261204T213000Z\n"
		    "policylag report runs/seed-verification-20261204T213000Z "
		    "--expect 'reconnect.p99 < 30s' --expect 'compare(reconnect, keep).p < 0.001'\n",
	.run = run_report,
	.exit_status = "0 success, 1 an expectation failed, 2 usage error, 3 the run directory could not be read or written.",
};
