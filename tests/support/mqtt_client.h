/*
 * A small synchronous MQTT client for tests, on paho MQTTAsync over TLS
 * with a client certificate. Each call waits for the broker's answer (or a
 * closed connection, or a timeout) and reports what came back, so tests can
 * assert the exact reaction: CONNACK, SUBACK and PUBACK codes, a closed
 * connection, or a delivery that never arrives.
 */
#ifndef TEST_MQTT_CLIENT_H
#define TEST_MQTT_CLIENT_H

#include <stdint.h>

typedef struct tmqtt tmqtt;

typedef struct tmqtt_options {
	const char *host;      /* default 127.0.0.1 */
	int port;
	const char *ca_path;
	const char *cert_path;
	const char *key_path;
	const char *client_id;
	int mqtt_version;      /* 4 = MQTT 3.1.1 (default), 5 = MQTT 5 */
	int keepalive_s;       /* default 60 */
	int64_t timeout_ns;    /* per call, default 5 s */
	const char *will_topic;   /* NULL: no will */
	const char *will_payload; /* QoS 0, not retained */
} tmqtt_options;

/* What a call saw. */
typedef enum tmqtt_outcome {
	TMQTT_OK,        /* the broker acknowledged; see *code */
	TMQTT_REFUSED,   /* the broker acknowledged with a failure code; see *code */
	TMQTT_CLOSED,    /* the connection was closed without an answer */
	TMQTT_TIMEOUT,   /* no answer and the connection still open */
	TMQTT_ERROR,     /* local failure (bad arguments, paho error) */
} tmqtt_outcome;

const char *tmqtt_outcome_name(tmqtt_outcome o);

/*
 * Connects. *code is the CONNACK return code (3.1.1) or reason code (5),
 * -1 when no CONNACK arrived. On TMQTT_OK *out is a connected client; in
 * every other case *out is still created (free it) unless TMQTT_ERROR.
 */
tmqtt_outcome tmqtt_connect(tmqtt **out, const tmqtt_options *o, int *code);

/* Subscribes to one filter; *code is the SUBACK return or reason code. */
tmqtt_outcome tmqtt_subscribe(tmqtt *c, const char *filter, int qos, int *code);

/*
 * Subscribes to count filters in one SUBSCRIBE; codes[i] gets each SUBACK
 * code (-1 when none arrived).
 */
tmqtt_outcome tmqtt_subscribe_many(tmqtt *c, const char *const *filters, int count, int qos,
				   int *codes);

/*
 * Publishes. For QoS 1 it waits for the PUBACK (*code = its reason code,
 * 0 on 3.1.1); for QoS 0 it waits until the packet is written, then
 * settle_ns for the broker to react (a close), *code = 0.
 */
tmqtt_outcome tmqtt_publish(tmqtt *c, const char *topic, const char *payload, int qos,
			    int retain, int *code);

/*
 * Queues a publish without waiting for anything (for load generation);
 * returns 0 when paho accepted it.
 */
int tmqtt_publish_nowait(tmqtt *c, const char *topic, const void *payload, int len, int qos);

/* Total number of messages received on all topics. */
long tmqtt_received_total(tmqtt *c);

/* Waits up to timeout_ns for a message on topic; returns 1 when one came. */
int tmqtt_wait_message(tmqtt *c, const char *topic, int64_t timeout_ns);

/* Number of messages received so far on topic. */
int tmqtt_message_count(tmqtt *c, const char *topic);

/* A malloc'd copy of the latest message on topic (free it), or NULL when none came. */
char *tmqtt_last_payload(tmqtt *c, const char *topic);

/* Waits up to timeout_ns for the connection to be lost; returns 1 if so. */
int tmqtt_wait_closed(tmqtt *c, int64_t timeout_ns);

int tmqtt_connected(tmqtt *c);

/* Reason code of a server DISCONNECT (MQTT 5), -1 when none came. */
int tmqtt_disconnect_reason(tmqtt *c);

/* Disconnects when connected and frees. NULL is a no-op. */
void tmqtt_free(tmqtt *c);

#endif
