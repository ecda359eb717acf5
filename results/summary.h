/*
 * Run summary: per-group statistics, comparisons between groups, event
 * counts and expectation results, built from a run directory (run.json,
 * samples.csv, events.jsonl; see docs/run-directory.md) and written as
 * summary.json, report.html and junit.xml.
 *
 * Times in the summary are seconds (double). Not thread-safe; one summary
 * belongs to one thread.
 */
#ifndef PL_SUMMARY_H
#define PL_SUMMARY_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "results/expect.h"
#include "results/stats.h"

#define SUMMARY_NAME_MAX 128
/* Distinct exclusion reasons counted per group; AWS documents 13 disconnect reasons. */
#define SUMMARY_REASONS_MAX 16

/* How many rows of a group one exclusion reason left out. */
typedef struct summary_reason {
	char name[48];  /* e.g. "SERVER_INITIATED_DISCONNECT"; "OTHER" once the table is full */
	size_t count;
} summary_reason;

/* One group of devices: a device group, optionally one direction of it. */
typedef struct summary_group {
	char name[SUMMARY_NAME_MAX];      /* "reconnect", "reconnect:revoke", "all" */
	char strategy[SUMMARY_NAME_MAX];  /* empty when the group mixes strategies */
	stats_group stats;                /* latency in seconds */
	stats_sample *sample;             /* owned; latency in seconds */
	stats_km *km;                     /* owned */
	uint64_t attempts, connects, connect_failures, throttled, errors;
	size_t n_unmeasured;              /* rows without a latency, left out of stats */
	size_t n_excluded;                /* measured rows confounded by a disconnect that
					   * is not about authorization, left out of stats */
	summary_reason excluded_reasons[SUMMARY_REASONS_MAX]; /* n_excluded by reason */
	size_t n_excluded_reasons;
	size_t n_truth;                   /* rows with simulator ground truth */
	double truth_error_mean, truth_error_max; /* seconds; NaN without truth */
} summary_group;

/* Comparison of two groups (a minus b). */
typedef struct summary_pair {
	size_t a, b; /* indexes into groups */
	stats_comparison cmp;
	char verdict[512]; /* plain words, e.g. "reconnect saw the change 212 s sooner ..." */
} summary_pair;

typedef struct summary_check {
	char text[256];
	expect_result result;
} summary_check;

typedef struct summary {
	double level;             /* confidence level, 0.95 */
	summary_group *groups;    /* device groups first, then per-direction, then "all" */
	size_t ngroups;
	summary_pair *pairs;      /* every pair of device groups (not directions or "all") */
	size_t npairs;
	summary_check *checks;
	size_t nchecks;
	size_t nchecks_failed;
	/* events.jsonl counts; have_events is 0 when the run has no events.jsonl */
	int have_events;
	uint64_t events_connect, events_disconnect, events_swap, events_error;
	uint64_t events_throttle_connect, events_throttle_subscribe,
		events_throttle_publish, events_throttle_control, events_throttle_other;
	char verdict[1024];       /* the headline: the strongest pair verdict or a description */
	struct run_info *run;     /* owned; run.json contents */
	struct run_samples *samples; /* owned; may be NULL once built */
	struct run_events *events;   /* owned; may be NULL */
} summary;

/*
 * Builds the summary of a run directory: reads run.json, samples.csv and
 * events.jsonl (missing events.jsonl is allowed), computes the statistics
 * and evaluates expectations. Expectation texts come from the expectations
 * argument, or from run.json's "expectations" array when it is NULL.
 */
pl_err summary_build(summary **out, const char *run_dir, const char *const *expectations,
		     size_t nexpectations, pl_errmsg *e);
/*
 * Builds a summary from records already in memory and takes ownership of
 * them (also on error). samples is required; info and events may be NULL.
 */
pl_err summary_build_from(summary **out, struct run_info *info, struct run_samples *samples,
			  struct run_events *events, const char *const *expectations,
			  size_t nexpectations, pl_errmsg *e);
void summary_free(summary *s);

/* Finds a group by name, or returns NULL. */
const summary_group *summary_find_group(const summary *s, const char *name);
/* Finds the comparison of a against b; *swapped is set when stored as b against a. */
const summary_pair *summary_find_pair(const summary *s, const char *a, const char *b,
				      int *swapped);

/* Writes summary.json; NaN values are written as null. */
pl_err summary_write_json(const summary *s, const char *path, pl_errmsg *e);
/* Writes junit.xml: one test case per expectation. */
pl_err summary_write_junit(const summary *s, const char *path, pl_errmsg *e);

/* Formats seconds for people: "850 us", "12.3 ms", "4.56 s", "212 s". */
void summary_format_seconds(char *buf, size_t len, double seconds);
/* Formats a p-value: "p = 0.043", "p < 1e-9". */
void summary_format_p(char *buf, size_t len, double p);

/* Writes summary.json, junit.xml and report.html into run_dir. */
pl_err summary_write_all(const summary *s, const char *run_dir, pl_errmsg *e);

/*
 * The call the coordinator makes after a run, and `policylag report`:
 * builds the summary of run_dir and writes summary.json, report.html and
 * junit.xml into it. *failed_expectations receives the number of failed
 * expectations (exit status 1 when nonzero).
 */
pl_err summary_finish_run(const char *run_dir, const char *const *expectations,
			  size_t nexpectations, size_t *failed_expectations, pl_errmsg *e);

#endif
