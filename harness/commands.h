/*
 * Subcommand descriptors, one per harness/cmd_<name>.c, for example
 * "extern const cli_command cmd_sim;". Each is listed in commands.c.
 */
#ifndef PL_COMMANDS_H
#define PL_COMMANDS_H

#include "harness/cli.h"

extern const cli_command cmd_run;
extern const cli_command cmd_sim;
extern const cli_command cmd_validate;
extern const cli_command cmd_report;
extern const cli_command cmd_compare;
extern const cli_command cmd_merge;
extern const cli_command cmd_fleet;

#endif
