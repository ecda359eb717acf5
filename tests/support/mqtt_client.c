/*
 * Synchronous test client on paho MQTTAsync. Paho calls the callbacks on
 * its own threads; they only record the result under the client's mutex
 * and signal the waiting test thread.
 */
#include "tests/support/mqtt_client.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <MQTTAsync.h>

#define MAX_TOPICS 128
#define MAX_CODES 16
#define SETTLE_NS (300 * 1000000LL)

typedef struct op {
	int done;
	int success;
	int code;            /* paho error code (failure) or 3.1.1 SUBACK/CONNACK code */
	int reason;          /* MQTT 5 reason code, -1 when none */
	int codes[MAX_CODES];
	int code_count;
} op;

typedef struct topic_count {
	char *topic;
	int count;
	char *last_payload; /* NUL-terminated copy of the latest message */
} topic_count;

struct tmqtt {
	MQTTAsync handle;
	int version;
	int64_t timeout_ns;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	op op;
	int connected;
	int lost;
	int disconnect_reason;
	topic_count topics[MAX_TOPICS];
	int topic_count;
	const char *wanted; /* topic tmqtt_wait_message waits for */
	long received;      /* messages on all topics */
};

const char *tmqtt_outcome_name(tmqtt_outcome o)
{
	static const char *const names[] = { "ok", "refused", "closed", "timeout", "error" };

	return (unsigned)o < 5 ? names[o] : "?";
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Waits (lock held) until pred(c) or the deadline; returns pred(c). */
static int wait_until(tmqtt *c, int (*pred)(tmqtt *), int64_t timeout_ns)
{
	int64_t deadline = now_ns() + timeout_ns;

	while (!pred(c)) {
		struct timespec ts;
		int64_t left = deadline - now_ns();
		if (left <= 0)
			break;
		if (left > 50000000LL)
			left = 50000000LL;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += (long)left;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&c->cond, &c->lock, &ts);
	}
	return pred(c);
}

static int op_done_or_lost(tmqtt *c) { return c->op.done || c->lost; }
static int is_lost(tmqtt *c) { return c->lost; }

static void signal_locked(tmqtt *c)
{
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

/* ---- paho callbacks ---------------------------------------------------- */

static void on_lost(void *ctx, char *cause)
{
	tmqtt *c = ctx;

	(void)cause;
	pthread_mutex_lock(&c->lock);
	c->lost = 1;
	c->connected = 0;
	signal_locked(c);
}

static void on_disconnected(void *ctx, MQTTProperties *props, enum MQTTReasonCodes reason)
{
	tmqtt *c = ctx;

	(void)props;
	pthread_mutex_lock(&c->lock);
	c->disconnect_reason = (int)reason;
	c->lost = 1;
	c->connected = 0;
	signal_locked(c);
}

static int on_message(void *ctx, char *topic, int topic_len, MQTTAsync_message *m)
{
	tmqtt *c = ctx;
	size_t len = topic_len > 0 ? (size_t)topic_len : strlen(topic);

	topic_count *t = NULL;

	pthread_mutex_lock(&c->lock);
	c->received++;
	for (int i = 0; i < c->topic_count && !t; i++)
		if (strlen(c->topics[i].topic) == len && memcmp(c->topics[i].topic, topic, len) == 0)
			t = &c->topics[i];
	if (!t && c->topic_count < MAX_TOPICS) {
		t = &c->topics[c->topic_count];
		t->topic = strndup(topic, len);
		t->count = 0;
		c->topic_count += t->topic != NULL;
		if (!t->topic)
			t = NULL;
	}
	if (t) {
		t->count++;
		free(t->last_payload);
		t->last_payload = strndup(m->payload, (size_t)(m->payloadlen > 0 ? m->payloadlen : 0));
	}
	signal_locked(c);
	MQTTAsync_freeMessage(&m);
	MQTTAsync_free(topic);
	return 1;
}

static void finish(tmqtt *c, int success, int code, int reason)
{
	pthread_mutex_lock(&c->lock);
	c->op.done = 1;
	c->op.success = success;
	c->op.code = code;
	c->op.reason = reason;
	signal_locked(c);
}

static void on_success(void *ctx, MQTTAsync_successData *r)
{
	tmqtt *c = ctx;

	pthread_mutex_lock(&c->lock);
	c->op.code_count = 1;
	c->op.codes[0] = r ? r->alt.qos : 0;
	pthread_mutex_unlock(&c->lock);
	finish(c, 1, r ? r->alt.qos : 0, -1);
}

static void on_success_many(void *ctx, MQTTAsync_successData *r)
{
	tmqtt *c = ctx;

	pthread_mutex_lock(&c->lock);
	for (int i = 0; i < c->op.code_count; i++)
		c->op.codes[i] = r->alt.qosList[i];
	pthread_mutex_unlock(&c->lock);
	finish(c, 1, 0, -1);
}

static void on_failure(void *ctx, MQTTAsync_failureData *r)
{
	finish(ctx, 0, r ? r->code : -1, -1);
}

static void on_success5(void *ctx, MQTTAsync_successData5 *r)
{
	tmqtt *c = ctx;

	pthread_mutex_lock(&c->lock);
	if (r && r->alt.sub.reasonCodeCount > 0 && c->op.code_count > 1) {
		for (int i = 0; i < r->alt.sub.reasonCodeCount && i < MAX_CODES; i++)
			c->op.codes[i] = (int)r->alt.sub.reasonCodes[i];
	} else {
		c->op.codes[0] = r ? (int)r->reasonCode : 0;
	}
	pthread_mutex_unlock(&c->lock);
	finish(c, 1, 0, r ? (int)r->reasonCode : 0);
}

static void on_failure5(void *ctx, MQTTAsync_failureData5 *r)
{
	finish(ctx, 0, r ? r->code : -1, r ? (int)r->reasonCode : -1);
}

/* ---- calls ------------------------------------------------------------- */

static void set_callbacks(tmqtt *c, MQTTAsync_responseOptions *ro, int many)
{
	ro->context = c;
	if (c->version == 5) {
		ro->onSuccess5 = on_success5;
		ro->onFailure5 = on_failure5;
	} else {
		ro->onSuccess = many ? on_success_many : on_success;
		ro->onFailure = on_failure;
	}
}

static void op_reset(tmqtt *c, int code_count)
{
	pthread_mutex_lock(&c->lock);
	memset(&c->op, 0, sizeof(c->op));
	c->op.reason = -1;
	c->op.code_count = code_count;
	for (int i = 0; i < MAX_CODES; i++)
		c->op.codes[i] = -1;
	pthread_mutex_unlock(&c->lock);
}

/*
 * Turns the finished (or not) operation into an outcome. A failure without
 * an MQTT 5 reason may be the client noticing a closed connection, so it
 * waits a moment for the loss to be reported before calling it a refusal.
 */
static tmqtt_outcome op_outcome(tmqtt *c, int *code)
{
	tmqtt_outcome out;

	pthread_mutex_lock(&c->lock);
	wait_until(c, op_done_or_lost, c->timeout_ns);
	if (c->op.done && !c->op.success && c->op.reason < 0x80)
		wait_until(c, is_lost, SETTLE_NS);
	if (c->op.done && c->op.success) {
		out = TMQTT_OK;
		*code = c->version == 5 ? c->op.reason : c->op.code;
	} else if (c->op.done && !c->lost) {
		out = TMQTT_REFUSED;
		*code = c->version == 5 ? c->op.reason : c->op.code;
	} else if (c->lost) {
		out = TMQTT_CLOSED;
		*code = -1;
	} else {
		out = TMQTT_TIMEOUT;
		*code = -1;
	}
	pthread_mutex_unlock(&c->lock);
	return out;
}

static tmqtt *client_new(const tmqtt_options *o)
{
	MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer;
	char uri[128];
	tmqtt *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->version = o->mqtt_version == 5 ? 5 : 4;
	c->timeout_ns = o->timeout_ns > 0 ? o->timeout_ns : 5000000000LL;
	c->disconnect_reason = -1;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	snprintf(uri, sizeof(uri), "ssl://%s:%d", o->host ? o->host : "127.0.0.1", o->port);
	co.MQTTVersion = c->version == 5 ? MQTTVERSION_5 : MQTTVERSION_3_1_1;
	if (MQTTAsync_createWithOptions(&c->handle, uri, o->client_id, MQTTCLIENT_PERSISTENCE_NONE,
					NULL, &co) != MQTTASYNC_SUCCESS) {
		free(c);
		return NULL;
	}
	MQTTAsync_setCallbacks(c->handle, c, on_lost, on_message, NULL);
	MQTTAsync_setDisconnected(c->handle, c, on_disconnected);
	return c;
}

tmqtt_outcome tmqtt_connect(tmqtt **out, const tmqtt_options *o, int *code)
{
	MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer;
	MQTTAsync_connectOptions co5 = MQTTAsync_connectOptions_initializer5;
	MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;
	MQTTAsync_willOptions will = MQTTAsync_willOptions_initializer;
	MQTTAsync_connectOptions *opts;
	tmqtt_outcome result;
	tmqtt *c = client_new(o);

	*code = -1;
	if (!c)
		return TMQTT_ERROR;
	opts = c->version == 5 ? &co5 : &co;
	/* The default version makes paho retry a failed 3.1.1 CONNECT as 3.1. */
	opts->MQTTVersion = c->version == 5 ? MQTTVERSION_5 : MQTTVERSION_3_1_1;
	ssl.trustStore = o->ca_path;
	ssl.keyStore = o->cert_path;
	ssl.privateKey = o->key_path;
	ssl.enableServerCertAuth = 1;
	ssl.verify = 1;
	opts->ssl = &ssl;
	if (o->will_topic) {
		will.topicName = o->will_topic;
		will.message = o->will_payload ? o->will_payload : "";
		opts->will = &will;
	}
	opts->keepAliveInterval = o->keepalive_s > 0 ? o->keepalive_s : 60;
	opts->connectTimeout = (int)(c->timeout_ns / 1000000000LL);
	if (c->version == 5)
		opts->cleanstart = 1;
	else
		opts->cleansession = 1;
	opts->context = c;
	if (c->version == 5) {
		opts->onSuccess5 = on_success5;
		opts->onFailure5 = on_failure5;
	} else {
		opts->onSuccess = on_success;
		opts->onFailure = on_failure;
	}
	op_reset(c, 1);
	*out = c;
	if (MQTTAsync_connect(c->handle, opts) != MQTTASYNC_SUCCESS)
		return TMQTT_ERROR;
	pthread_mutex_lock(&c->lock);
	wait_until(c, op_done_or_lost, c->timeout_ns + 1000000000LL);
	if (getenv("TMQTT_DEBUG"))
		fprintf(stderr, "connect %s: done %d success %d code %d reason %d lost %d\n",
			o->client_id, c->op.done, c->op.success, c->op.code, c->op.reason, c->lost);
	if (!c->op.done) {
		result = TMQTT_TIMEOUT;
	} else if (c->op.success) {
		c->connected = 1;
		*code = 0;
		result = TMQTT_OK;
	} else if (c->version == 5 && (c->op.reason >= 0x80 || c->op.code >= 0x80)) {
		/* Paho 1.3 reports a refusing CONNACK's reason in code. */
		*code = c->op.reason >= 0x80 ? c->op.reason : c->op.code;
		result = TMQTT_REFUSED;
	} else if (c->version == 4 && c->op.code > 0) {
		*code = c->op.code;
		result = TMQTT_REFUSED;
	} else {
		result = TMQTT_CLOSED;
	}
	pthread_mutex_unlock(&c->lock);
	return result;
}

tmqtt_outcome tmqtt_subscribe(tmqtt *c, const char *filter, int qos, int *code)
{
	MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
	tmqtt_outcome out;

	set_callbacks(c, &ro, 0);
	op_reset(c, 1);
	if (MQTTAsync_subscribe(c->handle, filter, qos, &ro) != MQTTASYNC_SUCCESS)
		return TMQTT_ERROR;
	out = op_outcome(c, code);
	/* 3.1.1 reports a refused filter as a failure without a code. */
	if (out == TMQTT_REFUSED && c->version == 4)
		*code = 0x80;
	return out;
}

tmqtt_outcome tmqtt_subscribe_many(tmqtt *c, const char *const *filters, int count, int qos,
				   int *codes)
{
	MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
	int qoss[MAX_CODES];
	tmqtt_outcome out;
	int code;

	if (count < 2 || count > MAX_CODES)
		return TMQTT_ERROR;
	for (int i = 0; i < count; i++)
		qoss[i] = qos;
	set_callbacks(c, &ro, 1);
	op_reset(c, count);
	if (MQTTAsync_subscribeMany(c->handle, count, (char *const *)filters, qoss, &ro) !=
	    MQTTASYNC_SUCCESS)
		return TMQTT_ERROR;
	out = op_outcome(c, &code);
	pthread_mutex_lock(&c->lock);
	for (int i = 0; i < count; i++)
		codes[i] = c->op.codes[i];
	pthread_mutex_unlock(&c->lock);
	return out;
}

tmqtt_outcome tmqtt_publish(tmqtt *c, const char *topic, const char *payload, int qos,
			    int retain, int *code)
{
	MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
	tmqtt_outcome out;

	set_callbacks(c, &ro, 0);
	op_reset(c, 1);
	if (MQTTAsync_send(c->handle, topic, (int)strlen(payload), payload, qos, retain, &ro) !=
	    MQTTASYNC_SUCCESS)
		return TMQTT_ERROR;
	out = op_outcome(c, code);
	if (out == TMQTT_OK && qos == 0) {
		/* No acknowledgement for QoS 0: give the broker time to close. */
		pthread_mutex_lock(&c->lock);
		if (wait_until(c, is_lost, SETTLE_NS))
			out = TMQTT_CLOSED;
		pthread_mutex_unlock(&c->lock);
	}
	if (out == TMQTT_OK && c->version == 4)
		*code = 0;
	return out;
}

int tmqtt_publish_nowait(tmqtt *c, const char *topic, const void *payload, int len, int qos)
{
	MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;

	return MQTTAsync_send(c->handle, topic, len, payload, qos, 0, &ro) == MQTTASYNC_SUCCESS
		       ? 0
		       : -1;
}

long tmqtt_received_total(tmqtt *c)
{
	long n;

	pthread_mutex_lock(&c->lock);
	n = c->received;
	pthread_mutex_unlock(&c->lock);
	return n;
}

static int has_topic(tmqtt *c)
{
	for (int i = 0; i < c->topic_count; i++)
		if (strcmp(c->topics[i].topic, c->wanted) == 0 && c->topics[i].count > 0)
			return 1;
	return 0;
}

int tmqtt_message_count(tmqtt *c, const char *topic)
{
	int n = 0;

	pthread_mutex_lock(&c->lock);
	for (int i = 0; i < c->topic_count; i++)
		if (strcmp(c->topics[i].topic, topic) == 0)
			n = c->topics[i].count;
	pthread_mutex_unlock(&c->lock);
	return n;
}

char *tmqtt_last_payload(tmqtt *c, const char *topic)
{
	char *copy = NULL;

	pthread_mutex_lock(&c->lock);
	for (int i = 0; i < c->topic_count; i++)
		if (strcmp(c->topics[i].topic, topic) == 0 && c->topics[i].last_payload)
			copy = strdup(c->topics[i].last_payload);
	pthread_mutex_unlock(&c->lock);
	return copy;
}

int tmqtt_wait_message(tmqtt *c, const char *topic, int64_t timeout_ns)
{
	int got;

	pthread_mutex_lock(&c->lock);
	c->wanted = topic;
	got = wait_until(c, has_topic, timeout_ns);
	pthread_mutex_unlock(&c->lock);
	return got;
}

int tmqtt_wait_closed(tmqtt *c, int64_t timeout_ns)
{
	int lost;

	pthread_mutex_lock(&c->lock);
	lost = wait_until(c, is_lost, timeout_ns);
	pthread_mutex_unlock(&c->lock);
	return lost;
}

int tmqtt_connected(tmqtt *c)
{
	return MQTTAsync_isConnected(c->handle);
}

int tmqtt_disconnect_reason(tmqtt *c)
{
	int reason;

	pthread_mutex_lock(&c->lock);
	reason = c->disconnect_reason;
	pthread_mutex_unlock(&c->lock);
	return reason;
}

void tmqtt_free(tmqtt *c)
{
	if (!c)
		return;
	if (MQTTAsync_isConnected(c->handle)) {
		MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer;
		d.timeout = 1000;
		MQTTAsync_disconnect(c->handle, &d);
		for (int i = 0; i < 100 && MQTTAsync_isConnected(c->handle); i++) {
			struct timespec ts = { 0, 10000000L };
			nanosleep(&ts, NULL);
		}
	}
	MQTTAsync_destroy(&c->handle);
	for (int i = 0; i < c->topic_count; i++) {
		free(c->topics[i].topic);
		free(c->topics[i].last_payload);
	}
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/*
 * Sanitizer hooks, used only in sanitizer builds. OpenSSL keeps a random
 * generator per thread and frees it when the thread exits; paho's threads
 * can still be running when a test process exits, so LeakSanitizer reports
 * those generators. Full unwinding lets the suppression see paho's frames.
 */
const char *__asan_default_options(void);
const char *__lsan_default_suppressions(void);

const char *__asan_default_options(void)
{
	return "fast_unwind_on_malloc=0";
}

const char *__lsan_default_suppressions(void)
{
	return "leak:libpaho-mqtt3as.so\n";
}
