/*
 * Paho MQTTAsync glue for the worker: one function per MQTT operation, and
 * callbacks that only take the time, copy what they need into an event and
 * enqueue it for the driver thread.
 *
 * Paho runs every callback on its own threads while holding its global
 * mutex, so a callback must never call MQTTAsync_destroy, isConnected or
 * waitForCompletion (those take the same mutex or wait for the thread that
 * runs the callback). Everything else happens on the driver thread, which
 * owns the handles.
 *
 * Each paho handle carries an opaque context: the owner (device index in the
 * worker, or a special owner) and a generation that the owner bumps for each
 * new handle, so events of a destroyed handle are recognized as stale.
 */
#ifndef PL_WORKER_MQTT_H
#define PL_WORKER_MQTT_H

#include <MQTTAsync.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

typedef enum mq_kind {
	MQ_CONNECTED = 0,        /* code: session present */
	MQ_CONNECT_FAILED,       /* code: CONNACK reason code, else paho rc */
	MQ_SUBACK,               /* code: granted QoS or MQTT 5 reason code (< 0x80) */
	MQ_SUBSCRIBE_FAILED,     /* code: 0x80 or MQTT 5 reason code, else paho rc */
	MQ_PUBACK,               /* QoS 1 probe acknowledged */
	MQ_PUBLISH_FAILED,       /* code: PUBACK reason code, else paho rc */
	MQ_MESSAGE,              /* a probe arrived: probe_device, seq, t_send */
	MQ_CONNECTION_LOST,      /* socket closed without a DISCONNECT from the server */
	MQ_SERVER_DISCONNECT,    /* MQTT 5 DISCONNECT from the server; code: reason */
	MQ_DISCONNECTED,         /* our own DISCONNECT finished (or failed) */
	MQ_TRIGGER_ACKED,        /* QoS 1 trigger acknowledged */
	MQ_TRIGGER_FAILED,       /* code: PUBACK reason code, else paho rc */
} mq_kind;

typedef struct mq_event {
	uint8_t kind;    /* mq_kind */
	uint32_t owner;
	uint32_t gen;
	int64_t t_ns;
	int32_t code;
	uint32_t probe_device; /* MQ_MESSAGE: device named in the probe, MQ_SHARED_PROBE for all */
	uint64_t seq;
	int64_t t_send;
} mq_event;

#define MQ_SHARED_PROBE UINT32_MAX
#define MQ_PROBE_MAX 64 /* bytes of a probe payload */

/* A bounded multi-producer queue of events with an eventfd for waking the driver. */
typedef struct mq_queue mq_queue;

pl_err mq_queue_create(mq_queue **out, size_t capacity, pl_errmsg *e);
void mq_queue_free(mq_queue *q);

/* The eventfd that becomes readable when events are queued. */
int mq_queue_fd(const mq_queue *q);

/* Moves up to max events into out and clears the eventfd; returns the count. */
size_t mq_queue_drain(mq_queue *q, mq_event *out, size_t max);

/*
 * Sets whether callbacks signal the eventfd (on) or only queue (off, the
 * driver then drains on its own tick). Saves a write(2) per callback batch
 * and a driver wake-up per event while nothing is latency-sensitive.
 */
void mq_queue_set_notify(mq_queue *q, int on);

/* Events dropped because the queue was full. */
uint64_t mq_queue_dropped(mq_queue *q);

/* Connection settings for one handle. Strings are copied by paho or must outlive the call. */
typedef struct mq_params {
	const char *uri;       /* "ssl://host:port" or "tcp://127.0.0.1:port" */
	const char *client_id;
	int mqtt_version;      /* 4 = MQTT 3.1.1, 5 = MQTT 5 */
	int keepalive_s;
	int connect_timeout_s;
	const char *ca_path;   /* NULL for tcp:// */
	const char *cert_path;
	const char *key_path;
	int alpn;              /* send ALPN x-amzn-mqtt-ca (port 443) */
} mq_params;

/*
 * Sets the queue that the callbacks feed. Call once before the first
 * mq_create; the queue must outlive every handle.
 */
void mq_set_queue(mq_queue *q);

/* Creates a handle (no persistence, MQTTVersion set) with callbacks bound to owner/gen. */
pl_err mq_create(MQTTAsync *out, const mq_params *p, uint32_t owner, uint32_t gen,
		 pl_errmsg *e);

/* Starts a clean-session connect; returns the paho rc of the call. */
int mq_connect(MQTTAsync h, const mq_params *p, uint32_t owner, uint32_t gen);

int mq_subscribe(MQTTAsync h, int mqtt_version, const char *topic, int qos, uint32_t owner,
		 uint32_t gen);

/* Publishes a probe "pl1 <device> <seq> <t_send>" to topic. */
int mq_publish_probe(MQTTAsync h, int mqtt_version, const char *topic, int qos,
		     uint32_t probe_device, uint64_t seq, int64_t t_send, uint32_t owner,
		     uint32_t gen);

/*
 * Publishes a trigger-topic swap's trigger (payload of len bytes). A QoS 1
 * outcome arrives as MQ_TRIGGER_ACKED or MQ_TRIGGER_FAILED, apart from the
 * probes' PUBACK events.
 */
int mq_publish_trigger(MQTTAsync h, int mqtt_version, const char *topic, const void *payload,
		       int len, int qos, uint32_t owner, uint32_t gen);

int mq_disconnect(MQTTAsync h, int mqtt_version, uint32_t owner, uint32_t gen);

/*
 * Parses a probe payload. Returns 0 on success, -1 when the payload is not
 * a probe.
 */
int mq_parse_probe(const void *payload, size_t len, uint32_t *device, uint64_t *seq,
		   int64_t *t_send);

/* Returns a short description of a paho return code or MQTT 5 reason code. */
const char *mq_code_text(int code);

#endif
