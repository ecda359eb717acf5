#include "harness/observer.h"

#include <MQTTAsync.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"

#define COMPONENT "observer"

/*
 * Queue bounds: a lifecycle event is about 300 to 500 bytes of JSON. 8192
 * slots (8.5 MB) take most of a 10,000-device drain between two polls of
 * the coordinator (at most 100 ms apart). NOTE: an estimate, not measured
 * at that scale; losses are counted and reported as observer_dropped.
 */
#define OBSERVER_QUEUE_SLOTS 8192
#define OBSERVER_PAYLOAD_MAX 1024
#define OBSERVER_TOPIC_MAX 256
#define OBSERVER_CONNECT_TIMEOUT_S 10
#define OBSERVER_KEEP_ALIVE_S 30
#define BACKOFF_INITIAL_NS PL_NS_PER_S
#define BACKOFF_MAX_NS (30 * PL_NS_PER_S)

/* ALPN protocol list in wire format (length byte, then the name): MQTT on port 443 of AWS IoT. */
static const unsigned char alpn_aws[] = "\x0ex-amzn-mqtt-ca";

typedef struct observer_slot {
	int64_t t_received_ns;
	size_t len;
	char topic[OBSERVER_TOPIC_MAX];
	char payload[OBSERVER_PAYLOAD_MAX];
} observer_slot;

typedef enum observer_state {
	STATE_CONNECTING,  /* MQTTAsync_connect called, waiting for its callback */
	STATE_SUBSCRIBING, /* SUBSCRIBE sent, waiting for SUBACK */
	STATE_READY,
	STATE_WAITING,     /* lost, and the next connect is due at t_retry_ns */
} observer_state;

struct observer {
	MQTTAsync client;
	char uri[300];
	char ca_path[4096], cert_path[4096], key_path[4096];
	int alpn;           /* send ALPN x-amzn-mqtt-ca (port 443) */

	/* Written by paho's threads under lock, read by observer_poll. */
	pthread_mutex_t lock;
	int connect_done, connect_ok, connect_code;
	int subscribe_done, subscribe_ok, subscribe_code;
	int lost;
	observer_slot *slots;
	size_t head, count;
	uint64_t dropped;

	/* The owner's thread only. */
	observer_state state;
	int64_t t_retry_ns;
	int64_t backoff_ns;
	uint64_t invalid;  /* messages that were not JSON objects */
};

int observer_reason_confounds(const char *reason)
{
	static const char *const authorization[] = { "AUTH_ERROR", "FORBIDDEN_ACCESS",
						     "CLIENT_INITIATED_DISCONNECT" };

	if (reason == NULL || reason[0] == '\0')
		return 0; /* without a reason, the disconnect cannot be classified */
	for (size_t i = 0; i < sizeof(authorization) / sizeof(authorization[0]); i++)
		if (strcmp(reason, authorization[i]) == 0)
			return 0;
	return 1;
}

/* ---- paho callbacks: record, enqueue, return ---- */

static void on_connect_success(void *ctx, MQTTAsync_successData *r)
{
	observer *o = ctx;

	(void)r;
	pthread_mutex_lock(&o->lock);
	o->connect_done = 1;
	o->connect_ok = 1;
	pthread_mutex_unlock(&o->lock);
}

static void on_connect_failure(void *ctx, MQTTAsync_failureData *r)
{
	observer *o = ctx;

	pthread_mutex_lock(&o->lock);
	o->connect_done = 1;
	o->connect_ok = 0;
	o->connect_code = r != NULL ? r->code : -1;
	pthread_mutex_unlock(&o->lock);
}

/* A SUBACK code of 0x80 or above rejects the subscription, whichever callback paho calls. */
static void on_subscribe_success(void *ctx, MQTTAsync_successData *r)
{
	observer *o = ctx;
	int code = r != NULL ? r->alt.qos : 0;

	pthread_mutex_lock(&o->lock);
	o->subscribe_done = 1;
	o->subscribe_ok = code < 0x80;
	o->subscribe_code = code;
	pthread_mutex_unlock(&o->lock);
}

static void on_subscribe_failure(void *ctx, MQTTAsync_failureData *r)
{
	observer *o = ctx;

	pthread_mutex_lock(&o->lock);
	o->subscribe_done = 1;
	o->subscribe_ok = 0;
	o->subscribe_code = r != NULL ? r->code : -1;
	pthread_mutex_unlock(&o->lock);
}

static void on_connection_lost(void *ctx, char *cause)
{
	observer *o = ctx;

	(void)cause;
	pthread_mutex_lock(&o->lock);
	o->lost = 1;
	pthread_mutex_unlock(&o->lock);
}

static int on_message(void *ctx, char *topic, int topic_len, MQTTAsync_message *m)
{
	observer *o = ctx;
	int64_t now = pl_mono_ns();
	size_t tlen = topic_len > 0 ? (size_t)topic_len : strlen(topic);

	pthread_mutex_lock(&o->lock);
	if (o->count == OBSERVER_QUEUE_SLOTS || m->payloadlen < 0 ||
	    (size_t)m->payloadlen >= OBSERVER_PAYLOAD_MAX) {
		o->dropped++;
	} else {
		observer_slot *s = &o->slots[(o->head + o->count++) % OBSERVER_QUEUE_SLOTS];

		s->t_received_ns = now;
		s->len = (size_t)m->payloadlen;
		memcpy(s->payload, m->payload, s->len);
		s->payload[s->len] = '\0';
		if (tlen >= sizeof(s->topic))
			tlen = sizeof(s->topic) - 1;
		memcpy(s->topic, topic, tlen);
		s->topic[tlen] = '\0';
	}
	pthread_mutex_unlock(&o->lock);
	MQTTAsync_freeMessage(&m);
	MQTTAsync_free(topic);
	return 1;
}

/* ---- connection state machine (owner's thread) ---- */

static int start_connect(observer *o)
{
	MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer;
	MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;

	ssl.trustStore = o->ca_path;
	ssl.keyStore = o->cert_path;
	ssl.privateKey = o->key_path;
	ssl.enableServerCertAuth = 1;
	ssl.verify = 1; /* check the host name, as the workers do */
	ssl.disableDefaultTrustStore = 1;
	if (o->alpn) {
		ssl.protos = alpn_aws;
		ssl.protos_len = sizeof(alpn_aws) - 1;
	}
	co.ssl = &ssl;
	co.MQTTVersion = MQTTVERSION_3_1_1;
	co.keepAliveInterval = OBSERVER_KEEP_ALIVE_S;
	co.cleansession = 1;
	co.connectTimeout = OBSERVER_CONNECT_TIMEOUT_S;
	co.onSuccess = on_connect_success;
	co.onFailure = on_connect_failure;
	co.context = o;
	pthread_mutex_lock(&o->lock);
	o->connect_done = o->connect_ok = o->connect_code = 0;
	o->subscribe_done = o->subscribe_ok = o->subscribe_code = 0;
	o->lost = 0;
	pthread_mutex_unlock(&o->lock);
	o->state = STATE_CONNECTING;
	return MQTTAsync_connect(o->client, &co);
}

static int start_subscribe(observer *o)
{
	MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;

	ro.onSuccess = on_subscribe_success;
	ro.onFailure = on_subscribe_failure;
	ro.context = o;
	o->state = STATE_SUBSCRIBING;
	return MQTTAsync_subscribe(o->client, OBSERVER_TOPIC_FILTER, 1, &ro);
}

/* Schedules the next connect and fills a LOST event. */
static void fail(observer *o, int64_t now, observer_event *ev, const char *what, int code)
{
	memset(ev, 0, sizeof(*ev));
	ev->kind = OBSERVER_EV_LOST;
	ev->t_received_ns = now;
	snprintf(ev->text, sizeof(ev->text), "%s (code %d); retrying in %lld s", what, code,
		 (long long)(o->backoff_ns / PL_NS_PER_S));
	o->state = STATE_WAITING;
	o->t_retry_ns = now + o->backoff_ns;
	o->backoff_ns = o->backoff_ns * 2 > BACKOFF_MAX_NS ? BACKOFF_MAX_NS : o->backoff_ns * 2;
}

/* Moves the state machine one step. Returns 1 when it filled *ev. */
static int advance(observer *o, int64_t now, observer_event *ev)
{
	int connect_done, connect_ok, connect_code, sub_done, sub_ok, sub_code, lost;
	int rc;

	pthread_mutex_lock(&o->lock);
	connect_done = o->connect_done;
	connect_ok = o->connect_ok;
	connect_code = o->connect_code;
	sub_done = o->subscribe_done;
	sub_ok = o->subscribe_ok;
	sub_code = o->subscribe_code;
	lost = o->lost;
	pthread_mutex_unlock(&o->lock);

	switch (o->state) {
	case STATE_WAITING:
		if (now < o->t_retry_ns)
			return 0;
		rc = start_connect(o);
		if (rc != MQTTASYNC_SUCCESS) {
			fail(o, now, ev, "connect could not start", rc);
			return 1;
		}
		return 0;
	case STATE_CONNECTING:
		if (!connect_done)
			return 0;
		if (!connect_ok) {
			fail(o, now, ev, "connect failed", connect_code);
			return 1;
		}
		rc = start_subscribe(o);
		if (rc != MQTTASYNC_SUCCESS) {
			fail(o, now, ev, "subscribe could not start", rc);
			return 1;
		}
		return 0;
	case STATE_SUBSCRIBING:
		if (lost) {
			fail(o, now, ev, "connection lost while subscribing", 0);
			return 1;
		}
		if (!sub_done)
			return 0;
		if (!sub_ok) {
			fail(o, now, ev, "SUBSCRIBE to " OBSERVER_TOPIC_FILTER " refused", sub_code);
			return 1;
		}
		o->state = STATE_READY;
		o->backoff_ns = BACKOFF_INITIAL_NS;
		memset(ev, 0, sizeof(*ev));
		ev->kind = OBSERVER_EV_READY;
		ev->t_received_ns = now;
		return 1;
	case STATE_READY:
		if (!lost)
			return 0;
		fail(o, now, ev, "connection lost", 0);
		return 1;
	}
	return 0;
}

/* ---- parsing ---- */

static void copy_string(char *dst, size_t len, json_t *v)
{
	const char *s = json_string_value(v);

	snprintf(dst, len, "%s", s != NULL ? s : "");
}

int observer_parse(const char *topic, const char *payload, size_t len, int64_t t_received_ns,
		   observer_event *ev)
{
	json_t *root = json_loadb(payload, len, 0, NULL);
	const char *type;
	const char *slash = strrchr(topic, '/');

	if (root == NULL || !json_is_object(root)) {
		json_decref(root);
		return -1;
	}
	type = json_string_value(json_object_get(root, "eventType"));
	if (type != NULL && strcmp(type, "disconnected") != 0) {
		json_decref(root);
		return 0;
	}
	memset(ev, 0, sizeof(*ev));
	ev->kind = OBSERVER_EV_DISCONNECTED;
	ev->t_received_ns = t_received_ns;
	copy_string(ev->client_id, sizeof(ev->client_id), json_object_get(root, "clientId"));
	if (ev->client_id[0] == '\0' && slash != NULL)
		snprintf(ev->client_id, sizeof(ev->client_id), "%s", slash + 1);
	copy_string(ev->reason, sizeof(ev->reason), json_object_get(root, "disconnectReason"));
	copy_string(ev->session, sizeof(ev->session), json_object_get(root, "sessionIdentifier"));
	ev->timestamp_ms = json_is_integer(json_object_get(root, "timestamp"))
				   ? json_integer_value(json_object_get(root, "timestamp"))
				   : -1;
	ev->version = json_is_integer(json_object_get(root, "versionNumber"))
			      ? json_integer_value(json_object_get(root, "versionNumber"))
			      : -1;
	ev->client_initiated = json_is_true(json_object_get(root, "clientInitiatedDisconnect"));
	json_decref(root);
	return 1;
}

/* Parses one queued message into ev. Returns 1 for a disconnected event. */
static int parse_slot(observer *o, const observer_slot *s, observer_event *ev)
{
	int rc = observer_parse(s->topic, s->payload, s->len, s->t_received_ns, ev);

	if (rc < 0 && o->invalid++ == 0)
		PL_WARN(COMPONENT, "message on %s is not a JSON object; ignored (later ones are "
			"not logged)", s->topic);
	return rc > 0;
}

/* Whether text is one or more decimal digits. */
static int all_digits(const char *text)
{
	if (*text == '\0')
		return 0;
	for (; *text != '\0'; text++)
		if (*text < '0' || *text > '9')
			return 0;
	return 1;
}

int observer_client_index(const char *client_id, const char *prefix, uint64_t *index)
{
	size_t plen = strlen(prefix);
	const char *digits = client_id + plen;
	const char *dash;
	char number[24];
	size_t len;

	if (strncmp(client_id, prefix, plen) != 0)
		return 0;
	dash = strchr(digits, '-');
	len = dash != NULL ? (size_t)(dash - digits) : strlen(digits);
	if (len == 0 || len >= sizeof(number))
		return 0;
	if (dash != NULL && !all_digits(dash[1] == 'a' ? dash + 2 : dash + 1))
		return 0;
	memcpy(number, digits, len);
	number[len] = '\0';
	if (!all_digits(number))
		return 0;
	*index = strtoull(number, NULL, 10);
	return 1;
}

size_t observer_poll(observer *o, int64_t now_ns, observer_event *out, size_t max)
{
	size_t n = 0;
	uint64_t dropped;

	if (max > 0 && advance(o, now_ns, &out[n]))
		n++;
	pthread_mutex_lock(&o->lock);
	dropped = o->dropped;
	o->dropped = 0;
	pthread_mutex_unlock(&o->lock);
	if (dropped > 0 && n < max) {
		memset(&out[n], 0, sizeof(out[n]));
		out[n].kind = OBSERVER_EV_DROPPED;
		out[n].t_received_ns = now_ns;
		out[n++].count = dropped;
	}
	while (n < max) {
		observer_slot slot;

		pthread_mutex_lock(&o->lock);
		if (o->count == 0) {
			pthread_mutex_unlock(&o->lock);
			break;
		}
		slot = o->slots[o->head];
		o->head = (o->head + 1) % OBSERVER_QUEUE_SLOTS;
		o->count--;
		pthread_mutex_unlock(&o->lock);
		n += (size_t)parse_slot(o, &slot, &out[n]);
	}
	return n;
}

int observer_ready(const observer *o)
{
	return o != NULL && o->state == STATE_READY;
}

/* ---- lifecycle ---- */

static pl_err copy_config(observer *o, const observer_config *cfg, pl_errmsg *e)
{
	int n = snprintf(o->uri, sizeof(o->uri), "ssl://%s:%d", cfg->host, cfg->port);

	if (n < 0 || (size_t)n >= sizeof(o->uri) || strlen(cfg->ca_path) >= sizeof(o->ca_path) ||
	    strlen(cfg->cert_path) >= sizeof(o->cert_path) ||
	    strlen(cfg->key_path) >= sizeof(o->key_path))
		return pl_errmsg_set(e, PL_ERR_RANGE, "observer: endpoint or file path too long");
	snprintf(o->ca_path, sizeof(o->ca_path), "%s", cfg->ca_path);
	snprintf(o->cert_path, sizeof(o->cert_path), "%s", cfg->cert_path);
	snprintf(o->key_path, sizeof(o->key_path), "%s", cfg->key_path);
	o->alpn = cfg->port == 443;
	return PL_OK;
}

pl_err observer_create(observer **out, const observer_config *cfg, pl_errmsg *e)
{
	observer *o = calloc(1, sizeof(*o));
	pl_err err;
	int rc;

	*out = NULL;
	if (o == NULL || (o->slots = calloc(OBSERVER_QUEUE_SLOTS, sizeof(*o->slots))) == NULL) {
		free(o);
		return pl_errmsg_set(e, PL_ERR_NOMEM, "observer: out of memory");
	}
	pthread_mutex_init(&o->lock, NULL);
	o->backoff_ns = BACKOFF_INITIAL_NS;
	err = copy_config(o, cfg, e);
	if (err != PL_OK)
		goto free_observer;
	rc = MQTTAsync_create(&o->client, o->uri, cfg->client_id, MQTTCLIENT_PERSISTENCE_NONE, NULL);
	if (rc != MQTTASYNC_SUCCESS) {
		err = pl_errmsg_set(e, PL_ERR_INTERNAL, "observer: MQTTAsync_create failed (code %d)",
				    rc);
		goto free_observer;
	}
	MQTTAsync_setCallbacks(o->client, o, on_connection_lost, on_message, NULL);
	rc = start_connect(o);
	if (rc != MQTTASYNC_SUCCESS) {
		o->state = STATE_WAITING;
		o->t_retry_ns = pl_mono_ns() + o->backoff_ns;
		PL_WARN(COMPONENT, "connect to %s could not start (code %d); retrying", o->uri, rc);
	}
	*out = o;
	return PL_OK;

free_observer:
	if (o->client != NULL)
		MQTTAsync_destroy(&o->client);
	pthread_mutex_destroy(&o->lock);
	free(o->slots);
	free(o);
	return err;
}

void observer_free(observer *o)
{
	MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer;

	if (o == NULL)
		return;
	d.timeout = 1000;
	/* Destroying a handle whose connect is pending has crashed paho: wait for the callback. */
	for (int i = 0; i < 1200 && o->state == STATE_CONNECTING; i++) {
		int done;

		pthread_mutex_lock(&o->lock);
		done = o->connect_done;
		pthread_mutex_unlock(&o->lock);
		if (done)
			break;
		pl_sleep_ns(10 * PL_NS_PER_MS);
	}
	if (MQTTAsync_isConnected(o->client))
		MQTTAsync_disconnect(o->client, &d);
	/* Give the DISCONNECT its timeout; destroy then closes the socket. */
	for (int i = 0; i < 100 && MQTTAsync_isConnected(o->client); i++)
		pl_sleep_ns(10 * PL_NS_PER_MS);
	MQTTAsync_destroy(&o->client);
	pthread_mutex_destroy(&o->lock);
	free(o->slots);
	free(o);
}
