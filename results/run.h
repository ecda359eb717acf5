/*
 * Reader (and the writer used by merge and tests) of a run directory:
 * run.json, samples.csv and events.jsonl. The format is specified in
 * docs/run-directory.md. Parse errors name the file and line:
 * "samples.csv:12: field latency_ns: ...".
 *
 * Objects are not thread-safe; each belongs to one thread.
 */
#ifndef PL_RUN_H
#define PL_RUN_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

/* Value of an empty (unknown) time or count field. */
#define RUN_UNKNOWN INT64_MIN

/* Cap on the length of one samples.csv record and one events.jsonl line. */
#define RUN_RECORD_MAX 65536

typedef enum run_direction { RUN_GRANT = 0, RUN_REVOKE = 1 } run_direction;

/* One device and swap: one row of samples.csv. Strings point into the run_samples. */
typedef struct run_sample {
	const char *device;
	const char *client_id;
	const char *cert_id;
	/* Non-empty when a disconnect that is not about authorization (its
	 * lifecycle reason, e.g. SERVER_INITIATED_DISCONNECT) confounded the
	 * measurement. Such rows are counted and left out of the statistics. */
	const char *excluded;
	size_t group;          /* index into run_samples groups */
	run_direction direction;
	int censored;
	int64_t swap_index, worker;
	int64_t t_swap_start_ns, t_swap_ns, t_effect_ns, latency_ns;
	int64_t attempts, connects, connect_failures, throttled, errors;
	int64_t truth_effect_ns, truth_error_ns;
} run_sample;

/* A device group seen in samples.csv, in order of first appearance. */
typedef struct run_group {
	char *name;
	char *strategy; /* of the group's first row */
} run_group;

typedef struct run_samples {
	run_sample *rows;
	size_t nrows;
	run_group *groups;
	size_t ngroups;
	struct run_chunk *strings; /* owns the row strings; they never move */
	size_t row_cap;
} run_samples;

/* Column names of samples.csv in order, NULL-terminated. Every column is
 * required except the last, "excluded", which older files lack. */
extern const char *const run_samples_columns[];

/* Reads path; an empty file or a missing required column is an error. */
pl_err run_samples_read(run_samples **out, const char *path, pl_errmsg *e);
/* Creates an empty set, for writers. */
pl_err run_samples_create(run_samples **out, pl_errmsg *e);
/* Appends a copy of row, with the group named group/strategy (added if new). */
pl_err run_samples_append(run_samples *rs, const run_sample *row, const char *group,
			  const char *strategy, pl_errmsg *e);
pl_err run_samples_write(const run_samples *rs, const char *path, pl_errmsg *e);
void run_samples_free(run_samples *rs);

/* Kinds of events.jsonl lines that the report counts; others are RUN_EVENT_OTHER. */
typedef enum run_event_type {
	RUN_EVENT_CONNECT,
	RUN_EVENT_DISCONNECT,
	RUN_EVENT_THROTTLE,
	RUN_EVENT_SWAP,
	RUN_EVENT_ERROR,
	RUN_EVENT_OTHER,
	RUN_EVENT__COUNT
} run_event_type;

/* The operation a throttle event rejected (its "op" field; "control" is the policy API). */
typedef enum run_throttle_op {
	RUN_OP_NONE, RUN_OP_CONNECT, RUN_OP_SUBSCRIBE, RUN_OP_PUBLISH, RUN_OP_CONTROL, RUN_OP_OTHER
} run_throttle_op;

typedef struct run_event {
	int64_t t_ns;
	run_event_type type;
	run_throttle_op op;
} run_event;

typedef struct run_events {
	run_event *items;
	size_t count, cap;
} run_events;

/* Reads events.jsonl (each line one JSON object with "t_ns" and "type"). */
pl_err run_events_read(run_events **out, const char *path, pl_errmsg *e);
void run_events_free(run_events *ev);
const char *run_event_type_name(run_event_type type);

/* run.json. Strings are owned; absent optional strings are empty. */
typedef struct run_info {
	char *tool_version, *profile_name, *profile_hash, *run_id, *target;
	char *start_wall, *end_wall, *status, *reason;
	int64_t shard_index, shard_count; /* "I/N", 1-based */
	int64_t anchor_mono_ns, anchor_wall_ns;
	/* from the optional "observer" object; 0 when absent */
	int64_t observer_outages, observer_outage_ns;
	int observer_outage_after_swap;
	char **expectations;              /* optional "expectations" array */
	size_t nexpectations;
	void *json;                       /* the whole document (json_t *), for merge */
} run_info;

/*
 * Formats the warning, without a "warning:" prefix or final period, that a
 * lifecycle-observer outage after the swap may have lost exclusions.
 */
void run_observer_gap_text(char *buf, size_t len, int64_t outages, int64_t outage_ns);

pl_err run_info_read(run_info **out, const char *path, pl_errmsg *e);
void run_info_free(run_info *ri);
/* Writes json (a json_t *) to path with 2-space indentation. */
pl_err run_json_write(const void *json, const char *path, pl_errmsg *e);

/* Joins dir and name into buf; PL_ERR_RANGE when it does not fit. */
pl_err run_path(char *buf, size_t len, const char *dir, const char *name, pl_errmsg *e);

#endif
