/*
 * The subcommands of policylag, in the order --help lists them. Add a row
 * only when the subcommand works end to end.
 */
#include <stddef.h>

#include "harness/commands.h"

const cli_command *const cli_commands[] = {
	&cmd_run,
	&cmd_validate,
	&cmd_report,
	&cmd_compare,
	&cmd_merge,
	&cmd_fleet,
	&cmd_sim,
	NULL,
};
