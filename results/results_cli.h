/*
 * Command-line helpers shared by the report, compare and merge commands.
 */
#ifndef PL_RESULTS_CLI_H
#define PL_RESULTS_CLI_H

#include <stddef.h>

#include "harness/cli.h"
#include "results/summary.h"

/*
 * Parses argv like cli_parse, but accepts options after operands too
 * ("merge A B --out DIR"): operands are collected into operands[] (at most
 * max; more is an error). Returns PL_OK with *help_shown set after --help.
 */
pl_err results_cli_parse(const cli_command *cmd, int argc, char **argv, cli_option_fn on_option,
			 void *ctx, char **operands, size_t max, size_t *noperands,
			 int *help_shown, pl_errmsg *e);

/* Prints the verdict, the groups and the expectation results to stdout. */
void results_cli_print_summary(const summary *s);

#endif
