#include "harness/run_report.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "harness/cli.h"
#include "results/run.h"
#include "results/summary.h"

#define COMPONENT "run"

static const char *run_status(const coordinator *c)
{
	if (c->interrupted && !c->failed)
		return "interrupted";
	if (c->failed)
		return "failed";
	return "completed";
}

/*
 * Fills one table row for the measured devices of group g (all groups when
 * g < 0): those with a row and a latency, censored or not. The ">" bound is
 * the shortest censoring latency of the row, not the observation timeout:
 * an interrupted run censors its devices long before the timeout.
 */
static void fill_row(const coordinator *c, int g, progress_row *row, int64_t *latencies)
{
	memset(row, 0, sizeof(*row));
	row->group = g < 0 ? "all" : c->prof->groups[g].name;
	row->latencies = latencies;
	row->censor_ns = c->prof->timing.observe_timeout_ns;
	for (uint32_t i = 0; i < c->ndevices; i++) {
		const coord_device *d = &c->devices[i];

		if (g >= 0 && d->group != (uint16_t)g)
			continue;
		if (!d->recorded || d->latency_ns == RUNDIR_TIME_UNKNOWN)
			continue; /* never measured: no row, or a row without a latency */
		if (d->excluded) {
			row->excluded++; /* counted, but left out of devices and quantiles */
			continue;
		}
		row->devices++;
		if (!d->censored) {
			latencies[row->effective++] = d->latency_ns;
			continue;
		}
		if (row->censored == 0 || d->latency_ns < row->censor_ns)
			row->censor_ns = d->latency_ns;
		row->censored++;
	}
}

/* Lifecycle events sent while the observer was disconnected are lost, so exclusions may be missing. */
static void print_observer_gap(const coordinator *c)
{
	char text[256];

	if (!c->observer_gap_after_swap)
		return;
	run_observer_gap_text(text, sizeof(text), (int64_t)c->observer_outages,
			      c->observer_outage_ns);
	printf("warning: %s\n", text);
}

static void print_table(const coordinator *c)
{
	size_t ngroups = c->prof->group_count;
	size_t nrows = ngroups > 1 ? ngroups + 1 : ngroups;
	progress_row *rows = calloc(nrows, sizeof(*rows));
	int64_t *latencies = calloc((size_t)c->ndevices * 2 + 1, sizeof(int64_t));

	if (rows == NULL || latencies == NULL) {
		PL_ERROR(COMPONENT, "out of memory for the result table");
		goto free_memory;
	}
	/* Groups are disjoint, so they share the first half of the array; "all" uses the second. */
	for (size_t g = 0, used = 0; g < ngroups; g++) {
		fill_row(c, (int)g, &rows[g], latencies + used);
		used += rows[g].devices;
	}
	if (nrows > ngroups)
		fill_row(c, -1, &rows[ngroups], latencies + c->ndevices);
	printf("\n");
	progress_print_table(stdout, rows, nrows);
	print_observer_gap(c);
free_memory:
	free(rows);
	free(latencies);
}

/* Mean and max of |measured - true| over the rows that have ground truth. */
static void print_truth(const coordinator *c)
{
	if (c->prof->target.kind != PROFILE_TARGET_SIMULATOR)
		return;
	if (c->truth_rows == 0) {
		printf("\nground truth: none matched (no simulator refresh after the swap)\n");
		return;
	}
	printf("\nmeasurement error against the simulator's ground truth (%" PRIu64 " of %" PRIu64
	       " rows): mean %.1f ms, max %.1f ms (probe interval %.0f ms)\n",
	       c->truth_rows, c->samples_written,
	       (double)c->truth_error_sum / (double)c->truth_rows / (double)PL_NS_PER_MS,
	       (double)c->truth_error_max / (double)PL_NS_PER_MS,
	       (double)c->prof->probe.interval_ns / (double)PL_NS_PER_MS);
}

static void print_paths(const coordinator *c, int with_summary)
{
	const char *dir = rundir_path(c->rd);

	printf("\nrun directory: %s\n", dir);
	printf("  %s/samples.csv   %" PRIu64 " rows\n", dir, c->samples_written);
	printf("  %s/events.jsonl\n", dir);
	printf("  %s/run.json       status %s%s%s\n", dir, run_status(c),
	       c->interrupted ? ": " : "", c->interrupted ? c->interrupt_reason : "");
	if (with_summary) {
		printf("  %s/summary.json\n", dir);
		printf("  %s/report.html\n", dir);
		printf("  %s/junit.xml\n", dir);
	}
}

/* Builds summary.json, report.html and junit.xml; returns failed expectations or -1. */
static long write_summary(const coordinator *c)
{
	pl_errmsg e = { "" };
	size_t failed = 0;

	if (summary_finish_run(rundir_path(c->rd), NULL, 0, &failed, &e) != PL_OK) {
		PL_ERROR(COMPONENT, "summary: %s", e.msg);
		return -1;
	}
	return (long)failed;
}

int run_report(coordinator *c)
{
	pl_errmsg e = { "" };
	int status = c->interrupted || c->failed ? PL_EXIT_RUNTIME : PL_EXIT_OK;
	long failed_expectations = -1;

	c->t_end_ns = pl_mono_ns();
	progress_end_line(c->progress);
	c->phase = COORD_PHASE_DONE;
	coord_event(c, c->t_end_ns, "end", NULL, NULL);
	if (coord_write_run_json(c, run_status(c), status, &e) != PL_OK)
		PL_ERROR(COMPONENT, "%s", e.msg);
	if (coord_signal_count < 2 && c->samples_written > 0)
		failed_expectations = write_summary(c);
	if (failed_expectations > 0 && status == PL_EXIT_OK) {
		status = PL_EXIT_EXPECTATION;
		if (coord_write_run_json(c, run_status(c), status, &e) != PL_OK)
			PL_ERROR(COMPONENT, "%s", e.msg);
	}
	if (c->samples_written > 0) {
		print_table(c);
		print_truth(c);
	}
	print_paths(c, failed_expectations >= 0);
	if (failed_expectations > 0)
		printf("\n%ld expectation%s failed (see junit.xml)\n", failed_expectations,
		       failed_expectations == 1 ? "" : "s");
	return status;
}
