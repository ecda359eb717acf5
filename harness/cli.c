#include "harness/cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "workers/worker.h"

#define CLI_MAX_OPTIONS 64

enum { GLOBAL_VERSION = 1, GLOBAL_LOG_LEVEL };

/* --help is not listed: cli_parse handles it for every command. */
static const cli_option global_options[] = {
	{ GLOBAL_VERSION, "version", 'V', NULL, "Show the version and exit.", NULL },
	{ GLOBAL_LOG_LEVEL, "log-level", 0, "LEVEL",
	  "Log messages up to LEVEL: error, warn, info or debug.", "info" },
	CLI_OPTIONS_END,
};

static const cli_command global_command = {
	"policylag", "policylag [--log-level LEVEL] COMMAND [ARGS]", NULL, NULL, global_options,
	NULL, NULL, NULL,
};

static size_t count_options(const cli_option *options)
{
	size_t n = 0;

	while (options != NULL && options[n].id != 0)
		n++;
	return n;
}

#define HELP_WIDTH 79
#define HELP_OPTION_COLUMN 31

/*
 * Prints text word-wrapped to HELP_WIDTH columns. The first line continues
 * at column `column` (the cursor is already there); later lines start with
 * `indent` spaces. Embedded newlines are kept.
 */
static void print_wrapped(const char *text, int column, int indent)
{
	const char *p = text;

	while (*p != '\0') {
		size_t word = strcspn(p, " \n");

		if (column > indent && column + 1 + (int)word > HELP_WIDTH) {
			printf("\n%*s", indent, "");
			column = indent;
		} else if (column > indent) {
			putchar(' ');
			column++;
		}
		printf("%.*s", (int)word, p);
		column += (int)word;
		p += word;
		if (*p == '\n') {
			printf("\n%*s", indent, "");
			column = indent;
			p++;
		}
		while (*p == ' ')
			p++;
	}
	putchar('\n');
}

static void print_option(const char *left, const char *help, const char *default_text)
{
	char text[1024];

	printf("  %s", left);
	if ((int)strlen(left) + 2 >= HELP_OPTION_COLUMN - 1)
		printf("\n%*s", HELP_OPTION_COLUMN, "");
	else
		printf("%*s", HELP_OPTION_COLUMN - 2 - (int)strlen(left), "");
	if (default_text != NULL)
		snprintf(text, sizeof(text), "%s (default: %s)", help, default_text);
	else
		snprintf(text, sizeof(text), "%s", help);
	print_wrapped(text, HELP_OPTION_COLUMN, HELP_OPTION_COLUMN);
}

static void print_options(const cli_option *options)
{
	char left[64];

	print_option("-h, --help", "Show this help and exit.", NULL);
	for (size_t i = 0; options != NULL && options[i].id != 0; i++) {
		const cli_option *o = &options[i];

		if (o->short_name != 0)
			snprintf(left, sizeof(left), "-%c, --%s%s%s", o->short_name, o->long_name,
				 o->value_name ? " " : "", o->value_name ? o->value_name : "");
		else
			snprintf(left, sizeof(left), "    --%s%s%s", o->long_name,
				 o->value_name ? " " : "", o->value_name ? o->value_name : "");
		print_option(left, o->help, o->default_text);
	}
}

/* Prints each line of the examples indented by two spaces. */
static void print_examples(const char *examples)
{
	const char *p = examples;

	while (*p != '\0') {
		size_t len = strcspn(p, "\n");

		while (len > 0 && *p == ' ') {
			p++;
			len--;
		}
		if (len > 0)
			printf("  %.*s\n", (int)len, p);
		p += len;
		if (*p == '\n')
			p++;
	}
}

void cli_print_command_help(const cli_command *cmd)
{
	if (cmd == &global_command) {
		cli_print_main_help();
		return;
	}
	printf("Usage: policylag %s\n\n", cmd->synopsis);
	if (cmd->description != NULL)
		print_wrapped(cmd->description, 0, 0);
	else if (cmd->summary != NULL)
		print_wrapped(cmd->summary, 0, 0);
	printf("\nOptions:\n");
	print_options(cmd->options);
	if (cmd->examples != NULL) {
		printf("\nExamples:\n");
		print_examples(cmd->examples);
	}
	if (cmd->exit_status != NULL) {
		printf("\nExit status:");
		print_wrapped(cmd->exit_status, 12, 0);
		return;
	}
	printf("\nExit status: 0 success, 1 an expectation failed, 2 usage or profile error,\n"
	       "3 runtime failure.\n");
}

void cli_print_main_help(void)
{
	printf("Usage: %s\n\n", global_command.synopsis);
	printf("Measures how long an AWS IoT Core policy change takes to reach MQTT clients,\n"
	       "with many clients at once, against AWS IoT or the embedded simulator.\n\n");
	printf("Commands:\n");
	for (size_t i = 0; cli_commands[i] != NULL; i++)
		printf("  %-12s %s\n", cli_commands[i]->name, cli_commands[i]->summary);
	if (cli_commands[0] == NULL)
		printf("  (none yet in this build)\n");
	printf("\nGlobal options (before COMMAND):\n");
	print_options(global_options);
	printf("\nRun 'policylag COMMAND --help' for the options of one command.\n");
	printf("\nExit status:\n"
	       "  0  success\n"
	       "  1  the run finished but an expectation in the profile failed\n"
	       "  2  usage error or invalid profile\n"
	       "  3  runtime failure (network, files, simulator, worker processes)\n");
}

const cli_command *cli_find_command(const char *name)
{
	for (size_t i = 0; cli_commands[i] != NULL; i++)
		if (strcmp(cli_commands[i]->name, name) == 0)
			return cli_commands[i];
	return NULL;
}

int cli_usage_error(const cli_command *cmd, const char *message)
{
	fprintf(stderr, "policylag: %s\n", message);
	if (cmd != NULL && cmd != &global_command)
		fprintf(stderr, "Run 'policylag %s --help' for usage.\n", cmd->name);
	else
		fprintf(stderr, "Run 'policylag --help' for usage.\n");
	return PL_EXIT_USAGE;
}

/* Builds the getopt_long tables for options plus --help. */
static void build_getopt(const cli_option *options, int stop_at_operand, struct option *longs,
			 char *shorts, size_t shorts_len)
{
	size_t n = 0;
	size_t s = 0;

	/* The global options stop at the command name, so that each subcommand
	 * parses its own options. A subcommand accepts options on either side
	 * of its operands, because getopt_long moves the operands to the end. */
	if (stop_at_operand)
		shorts[s++] = '+';
	shorts[s++] = ':'; /* report a missing value as ':' */
	longs[n++] = (struct option){ "help", no_argument, NULL, 'h' };
	shorts[s++] = 'h';
	for (size_t i = 0; options != NULL && options[i].id != 0; i++) {
		const cli_option *o = &options[i];

		longs[n++] = (struct option){ o->long_name,
					      o->value_name ? required_argument : no_argument, NULL,
					      256 + o->id };
		if (o->short_name != 0 && s + 3 < shorts_len) {
			shorts[s++] = o->short_name;
			if (o->value_name)
				shorts[s++] = ':';
		}
	}
	longs[n] = (struct option){ NULL, 0, NULL, 0 };
	shorts[s] = '\0';
}

static const cli_option *find_short(const cli_option *options, int c)
{
	for (size_t i = 0; options != NULL && options[i].id != 0; i++)
		if (options[i].short_name == c)
			return &options[i];
	return NULL;
}

pl_err cli_parse(const cli_command *cmd, int argc, char **argv, cli_option_fn on_option,
		 void *ctx, int *first_operand, int *help_shown, pl_errmsg *e)
{
	struct option longs[CLI_MAX_OPTIONS + 2];
	char shorts[3 * CLI_MAX_OPTIONS + 4];
	int c;

	if (count_options(cmd->options) > CLI_MAX_OPTIONS)
		return pl_errmsg_set(e, PL_ERR_INTERNAL, "too many options for '%s'", cmd->name);
	build_getopt(cmd->options, cmd == &global_command, longs, shorts, sizeof(shorts));
	*help_shown = 0;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, shorts, longs, NULL)) != -1) {
		const cli_option *o;
		pl_err rc;

		if (c == 'h') {
			cli_print_command_help(cmd);
			*help_shown = 1;
			return PL_OK;
		}
		if (c == ':')
			return pl_errmsg_set(e, PL_ERR_INVALID, "option '%s' requires a value",
					     argv[optind - 1]);
		if (c == '?')
			return pl_errmsg_set(e, PL_ERR_INVALID, "unknown option '%s'",
					     argv[optind - 1]);
		if (c >= 256)
			rc = on_option(ctx, c - 256, optarg, e);
		else if ((o = find_short(cmd->options, c)) != NULL)
			rc = on_option(ctx, o->id, optarg, e);
		else
			return pl_errmsg_set(e, PL_ERR_INTERNAL, "unhandled option '%c'", c);
		if (rc != PL_OK)
			return rc;
	}
	*first_operand = optind;
	return PL_OK;
}

static pl_err on_global_option(void *ctx, int id, const char *value, pl_errmsg *e)
{
	int *show_version = ctx;
	pl_log_level level;
	pl_err rc;

	switch (id) {
	case GLOBAL_VERSION:
		*show_version = 1;
		return PL_OK;
	case GLOBAL_LOG_LEVEL:
		rc = pl_log_level_parse(value, &level, e);
		if (rc == PL_OK)
			pl_log_set_level(level);
		return rc;
	default:
		return pl_errmsg_set(e, PL_ERR_INTERNAL, "unhandled global option %d", id);
	}
}

int cli_main(int argc, char **argv)
{
	const cli_command *cmd;
	pl_errmsg e = { "" };
	int first = 1;
	int shown = 0;
	int show_version = 0;
	char message[PL_ERRMSG_MAX + 64];

	if (cli_parse(&global_command, argc, argv, on_global_option, &show_version, &first,
		      &shown, &e) != PL_OK)
		return cli_usage_error(&global_command, e.msg);
	if (shown)
		return PL_EXIT_OK;
	if (show_version) {
		printf("policylag %s\n", POLICYLAG_VERSION);
		return PL_EXIT_OK;
	}
	if (first >= argc)
		return cli_usage_error(&global_command, "missing command");
	/* The hidden worker subcommand is started by 'policylag run' only, so it
	 * is not in the table that --help lists. */
	if (strcmp(argv[first], "worker") == 0)
		return worker_main(argc - first, argv + first);
	cmd = cli_find_command(argv[first]);
	if (cmd == NULL) {
		snprintf(message, sizeof(message), "unknown command '%s'", argv[first]);
		return cli_usage_error(&global_command, message);
	}
	return cmd->run(cmd, argc - first, argv + first);
}
