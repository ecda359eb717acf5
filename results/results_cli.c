/*
 * Command-line helpers shared by the report, compare and merge commands.
 */
#include "results/results_cli.h"

#include <stdio.h>

#include "results/run.h"

pl_err results_cli_parse(const cli_command *cmd, int argc, char **argv, cli_option_fn on_option,
			 void *ctx, char **operands, size_t max, size_t *noperands,
			 int *help_shown, pl_errmsg *e)
{
	int base = 0;

	*noperands = 0;
	*help_shown = 0;
	/*
	 * cli_parse stops at the first operand. Parse again from there, with
	 * the operand in the argv[0] position that getopt skips.
	 */
	while (base < argc) {
		int first = 1;
		pl_err err = cli_parse(cmd, argc - base, argv + base, on_option, ctx, &first,
				       help_shown, e);
		if (err != PL_OK || *help_shown)
			return err;
		if (base + first >= argc)
			break;
		if (*noperands == max)
			return pl_errmsg_set(e, PL_ERR_INVALID, "too many operands: '%s'",
					     argv[base + first]);
		operands[(*noperands)++] = argv[base + first];
		base += first;
	}
	return PL_OK;
}

void results_cli_print_summary(const summary *s)
{
	char p50[32], p99[32];

	printf("%s\n\n", s->verdict);
	printf("%-28s %9s %9s %9s %12s %12s\n", "group", "devices", "effective", "censored", "p50",
	       "p99");
	for (size_t i = 0; i < s->ngroups; i++) {
		const summary_group *g = &s->groups[i];
		summary_format_seconds(p50, sizeof(p50), g->stats.quantile[0].value);
		summary_format_seconds(p99, sizeof(p99), g->stats.quantile[3].value);
		printf("%-28s %9zu %9zu %9zu %12s %12s\n", g->name, g->stats.n, g->stats.n_effect,
		       g->stats.n_censored, p50, p99);
	}
	if (s->run != NULL && s->run->observer_outage_after_swap) {
		char text[256];

		run_observer_gap_text(text, sizeof(text), s->run->observer_outages,
				      s->run->observer_outage_ns);
		printf("warning: %s\n", text);
	}
	if (s->nchecks > 0)
		printf("\nexpectations: %zu of %zu passed\n", s->nchecks - s->nchecks_failed,
		       s->nchecks);
	for (size_t i = 0; i < s->nchecks; i++)
		printf("  %s  %s: %s\n", s->checks[i].result.passed ? "pass" : "FAIL",
		       s->checks[i].text, s->checks[i].result.message);
}
