/*
 * `policylag run`: one measurement run from a profile.
 *
 * run_execute loads the profile, prepares the fleet, starts the embedded
 * simulator for the simulator target, spawns the worker processes, drives
 * the phases connect -> settle -> swap -> observe -> drain, writes the run
 * directory as it goes (harness/rundir.h) and prints the summary. See
 * docs/running.md for what a user sees.
 */
#ifndef PL_HARNESS_RUN_H
#define PL_HARNESS_RUN_H

#include <stddef.h>

#include "common/error.h"

#define RUN_MAX_OVERRIDES 128

typedef struct run_options {
	const char *profile_path;
	const char *overrides[RUN_MAX_OVERRIDES]; /* "key=value", applied in order */
	size_t override_count;
	const char *out_dir;  /* NULL: runs/<profile name>-<UTC timestamp> */
	int shard_index;      /* 1-based slice of the devices this process runs */
	int shard_count;      /* number of slices; 1 runs every device */
	int tty;              /* -1: detect from stderr; 0: log lines; 1: live line */
	const char *self_exe; /* the binary workers are started from; NULL: this program */
} run_options;

void run_options_init(run_options *o);

/* Parses "I/N" with 1 <= I <= N <= 10000. */
pl_err run_parse_shard(const char *text, int *index, int *count, pl_errmsg *e);

/*
 * Runs the measurement and returns the process exit status: 0 success,
 * 1 an expectation failed, 2 a profile or usage error, 3 a runtime failure
 * (including an interrupted run).
 */
int run_execute(const run_options *o);

#endif
