/*
 * Work the HTTP API thread hands to the broker thread.
 *
 * mosquitto's broker API (publish, kick) may only be called from the broker
 * thread, so the control-plane and data-plane handlers never call it. They
 * push a sim_broker_action onto a bounded queue, and the plugin's tick event
 * drains the queue and performs each action. The queue is thread-safe; one producer
 * lock guards it. When the queue is full the push fails with PL_ERR_LIMIT and
 * the refusal is counted (sim_broker_queue_dropped), never silently grown.
 *
 * Delays: an action pushed with delay_ns > 0 is held in the queue and handed
 * out by sim_broker_queue_drain only once that much monotonic time has passed
 * since the push (used for "a non-ACTIVE certificate's connections are dropped
 * within a few minutes"). The consumer therefore never waits on delay_ns.
 */
#ifndef SIM_ACTIONS_H
#define SIM_ACTIONS_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

typedef enum {
	SIM_BROKER_PUBLISH,           /* topic, payload, payload_len, qos, retain */
	SIM_BROKER_DISCONNECT_CLIENT, /* client_id, clean_session, prevent_will, disconnect_reason */
	SIM_BROKER_DISCONNECT_CERT,   /* cert_id: drop every connection using it */
	SIM_BROKER_SET_PROPAGATION,   /* propagation: "immediate" | "ttl:30s" | "uniform:360s-480s" */
} sim_broker_action_kind;

/*
 * One unit of broker work. Strings are NUL-terminated and owned by the
 * action; fields a kind does not use are NULL or 0. payload may be NULL when
 * payload_len is 0.
 */
typedef struct sim_broker_action {
	sim_broker_action_kind kind;
	char *topic;
	void *payload;
	size_t payload_len;
	int qos;
	int retain;
	char *client_id;
	char *cert_id;
	int64_t delay_ns; /* requested delay before the broker performs it */
	char *propagation;
	int clean_session; /* DeleteConnection cleanSession=true: discard the session */
	int prevent_will;  /* DeleteConnection preventWillMessage=true: no will message */
	/* AWS lifecycle disconnectReason, a static string (not freed); NULL means
	 * API_INITIATED_DISCONNECT, the reason of DeleteConnection. */
	const char *disconnect_reason;
} sim_broker_action;

/* Frees the strings and payload an action owns and zeroes it. NULL is a no-op. */
void sim_broker_action_clear(sim_broker_action *a);

typedef struct sim_broker_queue sim_broker_queue;

/* Creates a queue holding at most capacity (>= 1) actions. */
pl_err sim_broker_queue_create(sim_broker_queue **out, size_t capacity);

/* Frees the queue and every action still in it. NULL is a no-op. */
void sim_broker_queue_free(sim_broker_queue *q);

/*
 * Moves *a into the queue: on success the queue owns its strings and payload
 * and *a is zeroed. Returns PL_ERR_LIMIT (and counts a drop) when the queue
 * is full; then *a is left unchanged and still owned by the caller.
 * Thread-safe.
 */
pl_err sim_broker_queue_push(sim_broker_queue *q, sim_broker_action *a);

/*
 * Calls fn for each action whose delay has passed, in push order among
 * actions that are due, then frees it. fn must not push onto the same queue
 * (the lock is not held while fn runs, but the drained batch is fixed before
 * fn runs). Returns the number of actions handed to fn. Thread-safe.
 */
size_t sim_broker_queue_drain(sim_broker_queue *q,
			      void (*fn)(void *ctx, const sim_broker_action *a), void *ctx);

/* Number of pushes refused because the queue was full. Thread-safe. */
uint64_t sim_broker_queue_dropped(sim_broker_queue *q);

/* Number of actions waiting, due or not. Thread-safe. */
size_t sim_broker_queue_length(sim_broker_queue *q);

#endif
