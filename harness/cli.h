/*
 * Table-driven command line. One option table per command drives both
 * getopt_long parsing and the --help text, so the two never disagree.
 *
 * Subcommands live in their own files (harness/cmd_<name>.c) and are listed
 * in the table in harness/commands.c; only working subcommands are listed.
 */
#ifndef PL_CLI_H
#define PL_CLI_H

#include "common/error.h"

/* Process exit codes, shared by every subcommand. */
enum pl_exit {
	PL_EXIT_OK = 0,          /* success */
	PL_EXIT_EXPECTATION = 1, /* the run worked but an expectation failed */
	PL_EXIT_USAGE = 2,       /* bad command line or invalid profile */
	PL_EXIT_RUNTIME = 3,     /* runtime failure: network, files, simulator, workers */
};

/* One option: id is returned by cli_parse for the option's occurrences. */
typedef struct cli_option {
	int id;                   /* nonzero, unique within the table */
	const char *long_name;    /* without "--" */
	char short_name;          /* 0 for none */
	const char *value_name;   /* NULL when the option takes no value, e.g. "DURATION" */
	const char *help;         /* one sentence: what it sets, and the unit */
	const char *default_text; /* shown as "(default: ...)", or NULL */
} cli_option;

/* A subcommand: run receives argv with argv[0] set to the subcommand name. */
typedef struct cli_command {
	const char *name;
	const char *synopsis;         /* e.g. "run PROFILE [options]" */
	const char *summary;          /* one line for the command list */
	const char *description;      /* paragraph for "policylag NAME --help", or NULL */
	const cli_option *options;    /* terminated by an entry with id 0 */
	const char *examples;         /* lines for the Examples section, or NULL */
	int (*run)(const struct cli_command *self, int argc, char **argv);
	const char *exit_status;      /* the command's own "Exit status:" text, or NULL for the
				       * project-wide codes */
} cli_command;

/* Terminates every option table. */
#define CLI_OPTIONS_END { 0, NULL, 0, NULL, NULL, NULL }

/* Called by cli_parse for each option found; value is NULL for flags. */
typedef pl_err (*cli_option_fn)(void *ctx, int id, const char *value, pl_errmsg *e);

/*
 * Parses argv against cmd->options, calling on_option for each option, and
 * handles --help (prints help, sets *help_shown). On return, *first_operand
 * is the index of the first non-option argument. Returns PL_OK, or an error
 * with a message naming the option.
 */
pl_err cli_parse(const cli_command *cmd, int argc, char **argv, cli_option_fn on_option,
		 void *ctx, int *first_operand, int *help_shown, pl_errmsg *e);

/* Prints the help of one subcommand to stdout. */
void cli_print_command_help(const cli_command *cmd);

/* Prints the program help (synopsis, subcommands, global options) to stdout. */
void cli_print_main_help(void);

/* Entry point used by main(): parses global options and dispatches. */
int cli_main(int argc, char **argv);

/* Subcommand table from commands.c, terminated by NULL. */
extern const cli_command *const cli_commands[];

/* Finds a subcommand by name, or returns NULL. */
const cli_command *cli_find_command(const char *name);

/* Reports a usage error for cmd on stderr and returns PL_EXIT_USAGE. */
int cli_usage_error(const cli_command *cmd, const char *message);

#endif
