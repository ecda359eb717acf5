/*
 * The coordinator: the parent process of a run. It owns the worker
 * processes, the per-device state the terminal and the run directory need,
 * and the phase machine connect -> settle -> swap -> observe -> drain.
 *
 * Internal to harness/run*.c, harness/coordinator*.c, harness/swap.c and
 * harness/truth.c. Everything here runs on the coordinator thread except
 * where a comment names the swap pool.
 */
#ifndef PL_COORDINATOR_H
#define PL_COORDINATOR_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/error.h"
#include "common/log.h"
#include "harness/connrate.h"
#include "harness/progress.h"
#include "harness/rundir.h"
#include "profiles/profile.h"
#include "workers/protocol.h"

struct awsapi_ctx;
struct awsapi_pool;

typedef enum coord_phase {
	COORD_PHASE_PREPARE = 0,
	COORD_PHASE_CONNECT,
	COORD_PHASE_SETTLE,
	COORD_PHASE_SWAP,
	COORD_PHASE_OBSERVE,
	COORD_PHASE_DRAIN,
	COORD_PHASE_DONE,
} coord_phase;

const char *coord_phase_name(coord_phase p);

/* What a device needs to connect: its identity in the fleet. */
typedef struct coord_identity {
	char cert_path[WP_PATH_MAX];
	char key_path[WP_PATH_MAX];
	char cert_id[WP_CERT_ID_MAX];
	char cert_arn[256];
} coord_identity;

/* Cap on the confounding disconnects kept per device. Later ones replace the oldest. */
#define COORD_CONFOUNDERS_MAX 4

/* A lifecycle disconnect whose reason is not about authorization. */
typedef struct coord_confounder {
	int64_t t_ns;             /* the event's timestamp as CLOCK_MONOTONIC */
	int64_t version;          /* versionNumber, or -1 */
	char reason[32];          /* disconnectReason */
} coord_confounder;

/* One device of this shard. */
typedef struct coord_device {
	uint32_t index;      /* fleet-wide device index */
	uint16_t group;      /* index into profile->groups */
	int worker;          /* index into coordinator workers */
	char name[WP_ID_MAX];
	char probe_topic[WP_TOPIC_MAX];
	const coord_identity *identity;
	unsigned connected : 1;
	unsigned ever_connected : 1;
	unsigned subscribed : 1;
	unsigned swap_started : 1;
	unsigned swapped : 1;     /* the swap's last call returned success */
	unsigned swap_failed : 1;
	unsigned effective : 1;
	unsigned recorded : 1;    /* its samples.csv row is written */
	unsigned failed : 1;      /* connect or subscribe failed and the worker gave up */
	unsigned censored : 1;    /* its row is censored */
	unsigned excluded : 1;    /* its row is excluded from the statistics */
	uint8_t nconfounders;     /* entries of confounders in use */
	uint8_t confounder_next;  /* the entry the next confounder replaces once full */
	coord_confounder confounders[COORD_CONFOUNDERS_MAX];
	uint32_t errors;
	int64_t t_connect_ns;
	int64_t t_swap_start_ns;
	int64_t t_swap_ns;
	int64_t t_change_ns;      /* when the call that changes the device's access was sent */
	int64_t t_effect_ns;
	int64_t latency_ns;       /* as written to samples.csv, or unknown */
} coord_device;

/* One worker process. */
typedef struct coord_worker {
	int index;
	pid_t pid;
	int fd;              /* coordinator's end of the socketpair, -1 once closed */
	wp_chan *chan;
	uint32_t first;      /* index into coordinator devices */
	uint32_t count;
	int ready;
	int done;            /* DONE received */
	int dead;            /* exited or its socket closed */
	int exit_status;     /* wait status once reaped */
	int reaped;
	int64_t t_dead_ns;
	wp_heartbeat heartbeat;
} coord_worker;

/* A swap note that ends a job whose t_swap is unknown (trigger-topic). */
#define COORD_NOTE_FINISHED 2

/* Swap progress reported from the swap pool's threads to the coordinator thread. */
typedef struct coord_swap_note {
	uint32_t device;     /* index into coordinator devices, or UINT32_MAX for all */
	int kind;            /* wp_swap_kind, COORD_NOTE_FINISHED, or -1 for a failed swap */
	int64_t t_ns;
	int64_t t_change_ns;
	int worker_started; /* the worker started the detection itself (trigger publish): no SWAP */
} coord_swap_note;

typedef struct coord_counts {
	uint64_t connected, subscribed, swapped, effective, censored, errors;
	uint64_t connects, connect_failures, throttled, disconnects;
} coord_counts;

typedef struct coordinator {
	const profile *prof;
	rundir *rd;
	progress *progress;
	coord_phase phase;
	int64_t t_start_ns;
	int64_t t_phase_ns;
	int64_t t_swap_first_ns; /* first t_swap_start of the run */
	int64_t t_swap_last_ns;  /* last t_swap_start of the run */

	/* the shard's devices: fleet indexes [first_index, first_index + ndevices) */
	coord_device *devices;
	uint32_t ndevices;
	uint32_t first_index;
	coord_identity *identities; /* one per device, or one when the certificate is shared */
	size_t nidentities;
	coord_identity prober;      /* the prober connections' identity (probe.kind prober) */
	int have_prober;
	int fleet_reused;           /* the identities come from fleet.inventory */
	int delete_identities;      /* delete c->identities' certificates at the end */
	int delete_prober;          /* delete the prober's certificate at the end */

	/* the lifecycle-event observer (harness/coordinator_observer.c) */
	struct observer *observer;  /* NULL when off or not started */
	coord_identity observer_id; /* its certificate when the run created it */
	int have_observer_id;
	int delete_observer;        /* delete observer_id's certificate at the end */
	const char *observer_status; /* "off", "ready", "not ready" */
	uint64_t observer_events;   /* disconnected events received */
	uint64_t observer_dropped;  /* events lost to a full queue */
	uint64_t observer_outages;  /* times its connection was lost */
	int64_t observer_outage_ns; /* total time without a connection, open outage included */
	int64_t observer_lost_ns;   /* start of the open outage, or 0 while connected */
	int observer_gap_after_swap; /* an outage overlapped the time after the first swap */
	uint64_t excluded;          /* rows written with an exclusion */

	/* probe.via http: probes published through the data-plane Publish API */
	pthread_t http_prober;
	int http_prober_running;
	_Atomic int http_prober_stop; /* set by the coordinator thread, read by the prober */
	_Atomic uint64_t http_probes_sent, http_probe_failures;

	coord_worker *workers;
	int nworkers;
	const char *self_exe;

	/* the endpoint the workers connect to */
	char mqtt_host[WP_HOST_MAX];
	int mqtt_port;
	char ca_path[WP_PATH_MAX];

	struct awsapi_ctx *api;
	struct awsapi_pool *pool;

	/* swap notes, pushed by pool threads and drained by the coordinator thread */
	pthread_mutex_t notes_lock;
	coord_swap_note *notes;
	size_t nnotes, notes_cap;
	int wake_pipe[2]; /* written by pool threads and the signal handler to end poll early */

	uint32_t swap_jobs;          /* control-plane jobs of the swap */
	uint32_t swap_jobs_finished; /* of which ended (DONE or failed) */

	coord_counts counts;
	int interrupted;          /* a stop was requested (signal, fatal error) */
	char interrupt_reason[128];
	int64_t t_interrupt_ns;
	int failed;               /* a runtime failure happened */
	char failure[PL_ERRMSG_MAX];
	uint64_t samples_written;
	/* ground truth, followed while the simulator writes it */
	const char *truth_path;      /* NULL when the target has none */
	struct truth_table *truth;
	int64_t t_truth_read_ns;
	wp_record *pending;          /* RECORDs waiting for their ground-truth line */
	int64_t *pending_since;
	size_t npending, pending_cap;
	void *swap_job_array;     /* owned; freed after the pool */

	/* run.json */
	char run_id[256];
	char host[256];
	int64_t anchor_wall_ns;   /* CLOCK_REALTIME at t_start_ns */
	int64_t t_end_ns;         /* 0 while running */
	int shard_index, shard_count;
	int sim_pid, sim_mqtt_port, sim_api_port;
	const char *propagation;  /* the simulator's propagation model, or NULL */
	uint64_t truth_rows;      /* rows that got ground truth */
	int64_t truth_error_sum;  /* of |truth_error_ns| over those rows */
	int64_t truth_error_max;

	/* adaptive connect pacing (coordinator_rate.c) */
	connrate rate;
	int rate_on;               /* the controller runs: adaptive pacing, connect phase begun */
	int64_t t_rate_log_ns;     /* the last INFO line about a rate change */
	uint32_t rate_unlogged;    /* changes since that line */
} coordinator;

/*
 * Logs from the coordinator thread: ends the live progress line first, so
 * that the message starts on a line of its own. Other threads use PL_* and
 * may share a line with the progress display.
 */
#define COORD_LOG(c, level, ...)                                             \
	do {                                                                 \
		if ((int)(level) <= pl_log_threshold) {                      \
			progress_end_line((c)->progress);                    \
			pl_log_write((level), COMPONENT, __VA_ARGS__);       \
		}                                                            \
	} while (0)

/* Allocates the device table for the shard and assigns devices to workers. */
pl_err coord_init_devices(coordinator *c, int shard_index, int shard_count, pl_errmsg *e);

/* Starts the worker processes and sends HELLO, GROUPs and DEVICEs. */
pl_err coord_spawn_workers(coordinator *c, pl_errmsg *e);

/*
 * Starts the data-plane prober thread when the profile's probe is a prober
 * via http: it publishes "pl1 <device> <seq> <t_send>" probes to every
 * device's probe topic (or once to the shared topic) each probe interval.
 * A no-op for other probes.
 */
pl_err coord_http_prober_start(coordinator *c, pl_errmsg *e);

/* Stops and joins the prober thread; a no-op when it is not running. */
void coord_http_prober_stop(coordinator *c);

/* Sends m to every live worker. */
void coord_broadcast(coordinator *c, const wp_msg *m);

/* Sends m to worker w (a no-op when it is dead); a failed send marks it dead. */
void coord_send_to_worker(coordinator *c, coord_worker *w, const wp_msg *m);

/* Sends a PHASE message to every live worker. */
void coord_send_phase(coordinator *c, wp_phase phase);

/* Sends SWAP (STARTED or DONE) for one device, or for all with device UINT32_MAX. */
void coord_send_swap(coordinator *c, uint32_t device, wp_swap_kind kind, int64_t t_ns);

/*
 * Waits up to timeout_ns for worker messages, swap notes, signals and
 * child exits, and handles them. Returns early when woken.
 */
void coord_pump(coordinator *c, int64_t timeout_ns);

/* Handles one message from worker w. */
void coord_handle_msg(coordinator *c, coord_worker *w, const wp_msg *m);

/* Marks a worker dead: logs it, writes an event, censors its devices. */
void coord_worker_died(coordinator *c, coord_worker *w, const char *why);

/* Sends SIGKILL to every live worker and reaps them (at most timeout_ns). */
void coord_kill_workers(coordinator *c, int64_t timeout_ns);

/* Waits for workers to exit after DONE; kills those still running at the deadline. */
void coord_reap_workers(coordinator *c, int64_t timeout_ns);

/* Writes a row for every device without one, censored with reason at t_ns. */
void coord_censor_remaining(coordinator *c, const char *reason, int64_t t_ns);

/*
 * Writes one samples.csv row from a worker's RECORD, adding the ground
 * truth. A row whose ground-truth line is not in the file yet (the
 * simulator flushes it on its next tick) waits for it, at most a few
 * seconds, in a pending list that coord_flush_pending empties.
 */
void coord_write_record(coordinator *c, const wp_record *r);

/* Writes pending rows whose truth arrived or that waited long enough; all when force. */
void coord_flush_pending(coordinator *c, int force);

/*
 * Starts the lifecycle-event observer when the profile enables it and waits
 * up to 15 s for its subscription. A failure to connect or subscribe is
 * logged and the run goes on while the observer keeps retrying. Only
 * invalid settings return an error.
 */
pl_err coord_observer_start(coordinator *c, pl_errmsg *e);

/* Handles the observer's queued events: writes them and keeps the confounding disconnects. */
void coord_observer_poll(coordinator *c);

/* Ends an open observer outage at now_ns, e.g. when the run stops. */
void coord_observer_outage_end(coordinator *c, int64_t now_ns);

/* Disconnects and frees the observer. A no-op when it is not running. */
void coord_observer_stop(coordinator *c);

/*
 * The reason of the first disconnect not about authorization that device d
 * had between from and to (CLOCK_MONOTONIC, inclusive), or NULL.
 */
const char *coord_observer_confounder(const coordinator *c, const coord_device *d, int64_t from,
				      int64_t to);

/* Appends an event line; fields_json may be NULL. Errors are logged once. */
void coord_event(coordinator *c, int64_t t_ns, const char *type, const char *device,
		 const char *fields_json);

/* Pushes a swap note from any thread and wakes the coordinator thread. */
void coord_push_note(coordinator *c, const coord_swap_note *n);

/* Requests a stop from the coordinator thread (not the signal handler). */
void coord_request_stop(coordinator *c, const char *reason);

/* Refreshes the progress line. */
void coord_show_progress(coordinator *c, int force);

/* Sets the phase, writes a "phase" event and rewrites run.json. */
void coord_set_phase(coordinator *c, coord_phase phase);

/* Rewrites run.json from the coordinator's state; status is "running", ... */
pl_err coord_write_run_json(coordinator *c, const char *status, int exit_code, pl_errmsg *e);

/*
 * Starts adaptive connect pacing at fleet.connect_rate when the profile
 * enables it; a no-op otherwise. Call once, before PHASE connect.
 */
void coord_rate_start(coordinator *c);

/* Feeds the connect outcome in a worker EVENT of device d to the pacing. */
void coord_rate_on_event(coordinator *c, const coord_device *d, const wp_event *ev);

/*
 * Ends the pacing round when it is due. A new rate is sent to the workers
 * (RATE), written to events.jsonl as "connect_rate" and logged.
 */
void coord_rate_update(coordinator *c);

/* The connect rate in use, per second: the configured one when pacing is off. */
double coord_rate_current(const coordinator *c);

/* A worker's share of rate (per second) as HELLO and RATE carry it: x 1000, at least 1. */
uint32_t coord_rate_share_milli(const coordinator *c, double rate);

/* Signal state shared with the handler installed by run.c. */
extern volatile int coord_signal_count;
extern volatile int coord_last_signal;
extern int coord_signal_wake_fd;

#endif
