/*
 * The lifecycle-event observer: one MQTT 3.1.1 connection with its own
 * certificate and client id, subscribed to AWS IoT's
 * $aws/events/presence/disconnected/+ topic. Each message there names a
 * client id and its disconnectReason (AUTH_ERROR, CONNECTION_LOST,
 * SERVER_INITIATED_DISCONNECT, ...). AWS may send an event twice or out
 * of order; this module passes every message on and leaves deduplication
 * to the caller.
 *
 * Paho's callbacks only copy the payload into a bounded queue; parsing,
 * reconnecting and subscribing happen in observer_poll on the owner's
 * thread. A lost observer connection is re-established after a backoff
 * of 1 s doubling to 30 s; events published while it is down are lost.
 *
 * Not thread-safe: one thread (the coordinator's) owns the handle.
 */
#ifndef PL_OBSERVER_H
#define PL_OBSERVER_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

/* The topic filter the observer subscribes to. */
#define OBSERVER_TOPIC_FILTER "$aws/events/presence/disconnected/+"

#define OBSERVER_CLIENT_ID_MAX 129 /* AWS allows 128 bytes */
#define OBSERVER_REASON_MAX 48
#define OBSERVER_SESSION_MAX 80

typedef struct observer_config {
	const char *host;       /* MQTT endpoint host name */
	int port;
	const char *ca_path;    /* trust store of the server certificate */
	const char *cert_path;  /* the observer's certificate */
	const char *key_path;   /* and its private key */
	const char *client_id;
} observer_config;

typedef enum observer_event_kind {
	OBSERVER_EV_DISCONNECTED, /* a lifecycle disconnected event */
	OBSERVER_EV_READY,        /* the observer is connected and subscribed */
	OBSERVER_EV_LOST,         /* the observer's own connection failed or was lost */
	OBSERVER_EV_DROPPED,      /* the queue was full, and count messages were lost */
} observer_event_kind;

typedef struct observer_event {
	observer_event_kind kind;
	int64_t t_received_ns;    /* CLOCK_MONOTONIC when paho delivered the message */
	char client_id[OBSERVER_CLIENT_ID_MAX];
	char reason[OBSERVER_REASON_MAX];   /* disconnectReason, or "" when absent */
	char session[OBSERVER_SESSION_MAX]; /* sessionIdentifier, or "" */
	int64_t timestamp_ms;     /* the event's "timestamp" (Unix ms), or -1 when absent */
	int64_t version;          /* versionNumber, or -1 */
	int client_initiated;     /* clientInitiatedDisconnect */
	uint64_t count;           /* OBSERVER_EV_DROPPED only */
	char text[160];           /* OBSERVER_EV_LOST: what failed */
} observer_event;

typedef struct observer observer;

/*
 * Creates the observer and starts its first connect. Returns PL_ERR_RANGE
 * for a path or host name too long, PL_ERR_NOMEM, or PL_ERR_INTERNAL when
 * paho rejects the handle. Connection errors come later as
 * OBSERVER_EV_LOST events.
 */
pl_err observer_create(observer **out, const observer_config *cfg, pl_errmsg *e);

/*
 * Advances the connection (subscribe after CONNACK, reconnect after a
 * loss) and moves up to max queued events into out. Returns how many were
 * written. now_ns is CLOCK_MONOTONIC.
 */
size_t observer_poll(observer *o, int64_t now_ns, observer_event *out, size_t max);

/* Whether the observer is connected and its subscription was granted. */
int observer_ready(const observer *o);

/*
 * Disconnects and frees the observer. A connect still pending is waited for
 * first (at most 12 s), then the DISCONNECT (at most 1 s). NULL is a no-op.
 */
void observer_free(observer *o);

/*
 * Whether a lifecycle disconnect reason is not about authorization:
 * every reason except AUTH_ERROR and FORBIDDEN_ACCESS (the effect of a
 * revoke) and CLIENT_INITIATED_DISCONNECT (the normal end of an attempt).
 * Such a disconnect confounds a latency measurement, because the device's
 * next connection takes a fresh copy of its policies.
 */
int observer_reason_confounds(const char *reason);

/*
 * Parses one message of the lifecycle topics into ev (kind
 * OBSERVER_EV_DISCONNECTED, t_received_ns set) and returns 1. Returns 0
 * for another eventType and -1 for a payload that is not a JSON object. A
 * missing clientId is taken from the topic's last level.
 */
int observer_parse(const char *topic, const char *payload, size_t len, int64_t t_received_ns,
		   observer_event *ev);

/*
 * Finds the fleet index in a device's client id: "<prefix><digits>", or
 * "<prefix><digits>-a<n>" and "<prefix><digits>-<n>" for fresh client ids
 * per attempt. Returns 0 for any other id (the prober, trigger
 * connections, the observer itself).
 */
int observer_client_index(const char *client_id, const char *prefix, uint64_t *index);

#endif
