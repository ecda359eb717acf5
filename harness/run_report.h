/*
 * The end of a run: the final run.json, the results module's summary,
 * report and JUnit files, and the table and file list on the terminal.
 */
#ifndef PL_RUN_REPORT_H
#define PL_RUN_REPORT_H

#include "harness/coordinator.h"

/* Writes the final files and prints the results; returns the exit status. */
int run_report(coordinator *c);

#endif
