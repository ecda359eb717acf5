/*
 * The run directory: the files one run leaves behind, written as the run
 * goes so that an interrupted run still leaves valid files.
 *
 *   profile.yaml   the resolved profile (written once by the caller)
 *   run.json       run metadata, rewritten atomically (temporary file and
 *                  rename) at the start, on each phase change and at the end
 *   samples.csv    one row per device and swap, appended as devices finish
 *   events.jsonl   the timeline, one JSON object per line, flushed per line
 *
 * The column set of samples.csv and the event fields are documented in
 * docs/run-directory.md. Callers pass CLOCK_MONOTONIC nanoseconds; the
 * files hold them relative to the run's anchor (rundir_set_anchor), which
 * run.json records with its CLOCK_REALTIME counterpart. An unknown time is
 * written as an empty CSV field.
 *
 * Thread-safe: one mutex guards both appenders, so the swap pool's threads
 * may log events while the coordinator thread appends samples.
 */
#ifndef PL_RUNDIR_H
#define PL_RUNDIR_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

/* Marks an unknown time in rundir_sample. */
#define RUNDIR_TIME_UNKNOWN INT64_MIN

/* One row of samples.csv: one device and one swap. */
typedef struct rundir_sample {
	const char *device;     /* device id, unique in the run */
	const char *client_id;  /* MQTT client id of the first connection */
	const char *cert_id;    /* certificate id (SHA-256 of the DER) the device used */
	const char *group;      /* device group name */
	const char *strategy;   /* keep-connection | reconnect-per-attempt */
	const char *direction;  /* grant | revoke */
	const char *swap;       /* attach-detach | policy-version | trigger-topic */
	int swap_index;         /* 0 for the first swap of the run */
	int worker;             /* index of the worker process that ran the device */
	int64_t t_connect_ns;   /* first successful CONNACK, or unknown */
	int64_t t_swap_start_ns;
	int64_t t_swap_ns;      /* unknown for trigger-topic swaps */
	int64_t t_effect_ns;    /* written empty when censored */
	int64_t latency_ns;     /* t_effect - t_swap, or censoring time - t_swap; unknown
				 * when the device was never measured */
	int64_t t_censor_ns;    /* when observation ended, for censored rows */
	int censored;
	const char *censor_reason; /* "timeout", "interrupted", "worker-died", ... or NULL */
	const char *excluded;   /* lifecycle reason of a confounding disconnect, or NULL */
	uint32_t attempts;      /* connection attempts since the one in use at the swap */
	uint32_t connects;      /* successful CONNACKs */
	uint32_t connect_failures;
	uint32_t throttled;     /* throttled connects, subscribes and publishes */
	uint32_t errors;
	int64_t truth_effect_ns; /* simulator's recorded refresh, or unknown */
	int64_t truth_error_ns;  /* t_effect - truth_effect, or unknown */
} rundir_sample;

typedef struct rundir rundir;

/*
 * Creates dir (and missing parents, mode 0755), then creates samples.csv
 * with its header line and an empty events.jsonl. An existing non-empty
 * samples.csv is an error (PL_ERR_EXISTS), so that a second run never mixes
 * its rows into an earlier one.
 */
pl_err rundir_create(rundir **out, const char *dir, pl_errmsg *e);

/*
 * Sets the CLOCK_MONOTONIC time that file times count from. Times inside
 * an event's fields_json are the caller's to convert (rundir_relative).
 */
void rundir_set_anchor(rundir *rd, int64_t anchor_mono_ns);

/* t relative to the anchor; RUNDIR_TIME_UNKNOWN stays unknown. */
int64_t rundir_relative(const rundir *rd, int64_t t);

/* Flushes and closes the files. NULL is a no-op. */
void rundir_free(rundir *rd);

const char *rundir_path(const rundir *rd);

/*
 * Joins the run directory and name into buf. Returns PL_ERR_RANGE when the
 * path does not fit.
 */
pl_err rundir_file(const rundir *rd, const char *name, char *buf, size_t len, pl_errmsg *e);

/* Appends one row to samples.csv and flushes it. */
pl_err rundir_append_sample(rundir *rd, const rundir_sample *s, pl_errmsg *e);

/*
 * Appends one event to events.jsonl and flushes it. fields_json is either
 * NULL or the inside of a JSON object (`"reason":"AUTH_ERROR","worker":2`)
 * that is written after the common fields t_ns, type and device (device is
 * omitted when NULL).
 */
pl_err rundir_append_event(rundir *rd, int64_t t_ns, const char *type, const char *device,
			   const char *fields_json, pl_errmsg *e);

/*
 * Writes text to name inside the run directory through a temporary file and
 * rename(2), so readers see the old or the new file, never a partial one.
 * mode is the file's permission bits.
 */
pl_err rundir_write_atomic(const rundir *rd, const char *name, const char *text, size_t len,
			   unsigned mode, pl_errmsg *e);

/* Number of rows and events appended so far. Thread-safe. */
uint64_t rundir_samples_written(rundir *rd);
uint64_t rundir_events_written(rundir *rd);

/*
 * Writes s into buf as a JSON string literal with quotes, escaping what
 * JSON requires. Truncates (keeping the literal valid) when buf is small.
 */
void rundir_json_string(char *buf, size_t len, const char *s);

#endif
