/*
 * What the terminal shows during and after a run.
 *
 * On a TTY, one progress line is rewritten in place (at most 4 times a
 * second); otherwise one log line is printed every few seconds, so CI logs
 * stay short. After the run, a table per group gives devices, effective,
 * censored, excluded and the latency quantiles.
 *
 * Not thread-safe: the coordinator thread owns the progress handle.
 */
#ifndef PL_PROGRESS_H
#define PL_PROGRESS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/error.h"

/* Counters shown on the progress line; every count is in devices. */
typedef struct progress_counts {
	const char *phase;   /* "connect", "settle", "swap", "observe", "drain" */
	uint64_t devices;
	uint64_t connected;  /* currently connected */
	uint64_t subscribed; /* subscriptions acknowledged */
	uint64_t swapped;    /* swap calls returned (or trigger sent) */
	uint64_t effective;
	uint64_t censored;
	uint64_t errors;     /* devices or calls with an error */
	double connect_rate; /* CONNECTs per second the run paces at now; 0 = not shown */
} progress_counts;

typedef struct progress progress;

/*
 * Creates a progress display on out. tty selects the in-place line; when 0,
 * a line is printed every log_interval_ns. start_ns is the monotonic time
 * elapsed counts from.
 */
pl_err progress_create(progress **out, FILE *stream, int tty, int64_t log_interval_ns,
		       int64_t start_ns);
void progress_free(progress *p);

/* Shows c when the display is due (rate-limited), or always when force is set. */
void progress_update(progress *p, const progress_counts *c, int64_t now_ns, int force);

/* Ends the in-place line so that the next output starts on a fresh line; NULL is a no-op. */
void progress_end_line(progress *p);

/* One row of the final table. Latencies are nanoseconds. */
typedef struct progress_row {
	const char *group;
	size_t devices;
	size_t effective;
	size_t censored;
	size_t excluded;    /* left out of devices: a disconnect not about authorization */
	int64_t *latencies; /* the effective devices' latencies; sorted in place */
	int64_t censor_ns;  /* shortest censoring latency of the row, for the ">" entries */
} progress_row;

/*
 * Prints the table: one line per row with p50, p90, p99 and max. A quantile
 * that falls among the censored devices is printed as ">" and the censoring
 * time, because every censored device is known only to be slower than that.
 */
void progress_print_table(FILE *stream, progress_row *rows, size_t nrows);

/*
 * The p-quantile (0 < p <= 1) by the nearest-rank rule over devices, where
 * censored devices rank after every effective one. Returns 1 and sets *out
 * when the rank falls on an effective device, 0 otherwise. sorted contains the
 * effective devices' latencies in ascending order.
 */
int progress_quantile(const int64_t *sorted, size_t neffective, size_t ndevices, double p,
		      int64_t *out);

#endif
