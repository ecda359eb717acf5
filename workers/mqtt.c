#include "workers/mqtt.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/parse.h"

/* The paho context pointer carries owner and generation, so no per-handle
 * allocation has to outlive a handle whose events are still queued. */
_Static_assert(sizeof(void *) >= sizeof(uint64_t), "context needs 64-bit pointers");

struct mq_queue {
	pthread_mutex_t lock;
	mq_event *ring;
	size_t cap;
	size_t head;
	size_t len;
	uint64_t dropped;
	int efd;
	atomic_int notify;
};

static mq_queue *g_queue;

pl_err mq_queue_create(mq_queue **out, size_t capacity, pl_errmsg *e)
{
	mq_queue *q = calloc(1, sizeof(*q));

	if (q == NULL)
		return pl_errmsg_set(e, PL_ERR_NOMEM, "event queue: out of memory");
	q->ring = calloc(capacity, sizeof(*q->ring));
	if (q->ring == NULL)
		goto free_queue;
	q->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (q->efd < 0)
		goto free_ring;
	pthread_mutex_init(&q->lock, NULL);
	atomic_init(&q->notify, 1);
	q->cap = capacity;
	*out = q;
	return PL_OK;
free_ring:
	free(q->ring);
free_queue:
	free(q);
	return pl_errmsg_set(e, PL_ERR_NOMEM, "event queue: cannot allocate %zu events",
			     capacity);
}

void mq_queue_free(mq_queue *q)
{
	if (q == NULL)
		return;
	close(q->efd);
	pthread_mutex_destroy(&q->lock);
	free(q->ring);
	free(q);
}

int mq_queue_fd(const mq_queue *q)
{
	return q->efd;
}

static void queue_push(const mq_event *ev)
{
	mq_queue *q = g_queue;
	int wake;
	uint64_t one = 1;

	pthread_mutex_lock(&q->lock);
	if (q->len == q->cap) {
		q->dropped++;
		pthread_mutex_unlock(&q->lock);
		return;
	}
	q->ring[(q->head + q->len) % q->cap] = *ev;
	wake = q->len == 0 && atomic_load_explicit(&q->notify, memory_order_relaxed);
	q->len++;
	pthread_mutex_unlock(&q->lock);
	/* Only the first event of a batch needs a wake-up; the driver drains all. */
	if (wake && write(q->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		abort(); /* only a bad descriptor fails; EAGAIN still leaves it readable */
}

size_t mq_queue_drain(mq_queue *q, mq_event *out, size_t max)
{
	uint64_t count;
	size_t n = 0;

	if (read(q->efd, &count, sizeof(count)) < 0)
		count = 0;
	pthread_mutex_lock(&q->lock);
	while (n < max && q->len > 0) {
		out[n++] = q->ring[q->head];
		q->head = (q->head + 1) % q->cap;
		q->len--;
	}
	/* Restart an empty ring at slot 0, so the slots touched (and the resident
	 * memory) follow the longest backlog. Otherwise a long run cycles through
	 * all 3 MB of the ring. */
	if (q->len == 0)
		q->head = 0;
	/* Events left behind need another wake-up. */
	if (q->len > 0) {
		uint64_t one = 1;

		if (write(q->efd, &one, sizeof(one)) < 0)
			count = 0;
	}
	pthread_mutex_unlock(&q->lock);
	return n;
}

void mq_queue_set_notify(mq_queue *q, int on)
{
	uint64_t one = 1;

	atomic_store_explicit(&q->notify, on != 0, memory_order_relaxed);
	/* Events queued while notification was off would otherwise wait for the tick. */
	if (on && write(q->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		abort();
}

uint64_t mq_queue_dropped(mq_queue *q)
{
	uint64_t d;

	pthread_mutex_lock(&q->lock);
	d = q->dropped;
	pthread_mutex_unlock(&q->lock);
	return d;
}

void mq_set_queue(mq_queue *q)
{
	g_queue = q;
}

static void *ctx_make(uint32_t owner, uint32_t gen)
{
	return (void *)(uintptr_t)(((uint64_t)gen << 32) | owner);
}

static void push(void *ctx, mq_kind kind, int32_t code)
{
	uint64_t v = (uint64_t)(uintptr_t)ctx;
	mq_event ev = { 0 };

	ev.kind = (uint8_t)kind;
	ev.owner = (uint32_t)v;
	ev.gen = (uint32_t)(v >> 32);
	ev.t_ns = pl_mono_ns();
	ev.code = code;
	queue_push(&ev);
}

/* Callbacks: take the time, copy, enqueue, return. ---------------------- */

static void on_connect_ok(void *ctx, MQTTAsync_successData *r)
{
	push(ctx, MQ_CONNECTED, r != NULL ? r->alt.connect.sessionPresent : 0);
}

static void on_connect_ok5(void *ctx, MQTTAsync_successData5 *r)
{
	push(ctx, MQ_CONNECTED, r != NULL ? r->alt.connect.sessionPresent : 0);
}

static void on_connect_fail(void *ctx, MQTTAsync_failureData *r)
{
	push(ctx, MQ_CONNECT_FAILED, r != NULL ? r->code : MQTTASYNC_FAILURE);
}

/* MQTT 5: a CONNACK refusal carries a reason code; otherwise the paho rc. */
static int32_t failure5_code(const MQTTAsync_failureData5 *r)
{
	if (r == NULL)
		return MQTTASYNC_FAILURE;
	return r->reasonCode != MQTTREASONCODE_SUCCESS ? (int32_t)r->reasonCode : r->code;
}

static void on_connect_fail5(void *ctx, MQTTAsync_failureData5 *r)
{
	push(ctx, MQ_CONNECT_FAILED, failure5_code(r));
}

/* A granted QoS of 0x80 or more is a refusal even when paho calls onSuccess. */
static void on_sub_ok(void *ctx, MQTTAsync_successData *r)
{
	int qos = r != NULL ? r->alt.qos : 0;

	push(ctx, qos >= 0x80 ? MQ_SUBSCRIBE_FAILED : MQ_SUBACK, qos);
}

static void on_sub_ok5(void *ctx, MQTTAsync_successData5 *r)
{
	int rc = r != NULL ? (int)r->reasonCode : 0;

	push(ctx, rc >= 0x80 ? MQ_SUBSCRIBE_FAILED : MQ_SUBACK, rc);
}

static void on_sub_fail(void *ctx, MQTTAsync_failureData *r)
{
	push(ctx, MQ_SUBSCRIBE_FAILED, r != NULL ? r->code : MQTTASYNC_FAILURE);
}

static void on_sub_fail5(void *ctx, MQTTAsync_failureData5 *r)
{
	push(ctx, MQ_SUBSCRIBE_FAILED, failure5_code(r));
}

static void on_pub_ok(void *ctx, MQTTAsync_successData *r)
{
	(void)r;
	push(ctx, MQ_PUBACK, 0);
}

static void on_pub_ok5(void *ctx, MQTTAsync_successData5 *r)
{
	int rc = r != NULL ? (int)r->reasonCode : 0;

	push(ctx, rc >= 0x80 ? MQ_PUBLISH_FAILED : MQ_PUBACK, rc);
}

static void on_pub_fail(void *ctx, MQTTAsync_failureData *r)
{
	push(ctx, MQ_PUBLISH_FAILED, r != NULL ? r->code : MQTTASYNC_FAILURE);
}

static void on_pub_fail5(void *ctx, MQTTAsync_failureData5 *r)
{
	push(ctx, MQ_PUBLISH_FAILED, failure5_code(r));
}

static void on_trigger_ok(void *ctx, MQTTAsync_successData *r)
{
	(void)r;
	push(ctx, MQ_TRIGGER_ACKED, 0);
}

static void on_trigger_ok5(void *ctx, MQTTAsync_successData5 *r)
{
	int rc = r != NULL ? (int)r->reasonCode : 0;

	push(ctx, rc >= 0x80 ? MQ_TRIGGER_FAILED : MQ_TRIGGER_ACKED, rc);
}

static void on_trigger_fail(void *ctx, MQTTAsync_failureData *r)
{
	push(ctx, MQ_TRIGGER_FAILED, r != NULL ? r->code : MQTTASYNC_FAILURE);
}

static void on_trigger_fail5(void *ctx, MQTTAsync_failureData5 *r)
{
	push(ctx, MQ_TRIGGER_FAILED, failure5_code(r));
}

static void on_disc_ok(void *ctx, MQTTAsync_successData *r)
{
	(void)r;
	push(ctx, MQ_DISCONNECTED, 0);
}

static void on_disc_ok5(void *ctx, MQTTAsync_successData5 *r)
{
	(void)r;
	push(ctx, MQ_DISCONNECTED, 0);
}

static void on_disc_fail(void *ctx, MQTTAsync_failureData *r)
{
	push(ctx, MQ_DISCONNECTED, r != NULL ? r->code : MQTTASYNC_FAILURE);
}

static void on_disc_fail5(void *ctx, MQTTAsync_failureData5 *r)
{
	push(ctx, MQ_DISCONNECTED, failure5_code(r));
}

static void on_connection_lost(void *ctx, char *cause)
{
	(void)cause; /* paho passes NULL or a static string; nothing to free */
	push(ctx, MQ_CONNECTION_LOST, -1);
}

static void on_server_disconnect(void *ctx, MQTTProperties *props, enum MQTTReasonCodes rc)
{
	(void)props;
	push(ctx, MQ_SERVER_DISCONNECT, (int32_t)rc);
}

static int on_message(void *ctx, char *topic, int topic_len, MQTTAsync_message *m)
{
	uint64_t v = (uint64_t)(uintptr_t)ctx;
	mq_event ev = { 0 };

	(void)topic_len;
	ev.t_ns = pl_mono_ns();
	ev.kind = MQ_MESSAGE;
	ev.owner = (uint32_t)v;
	ev.gen = (uint32_t)(v >> 32);
	if (mq_parse_probe(m->payload, (size_t)m->payloadlen, &ev.probe_device, &ev.seq,
			   &ev.t_send) == 0)
		queue_push(&ev);
	MQTTAsync_freeMessage(&m);
	MQTTAsync_free(topic);
	return 1;
}

/* Operations (driver thread only) --------------------------------------- */

pl_err mq_create(MQTTAsync *out, const mq_params *p, uint32_t owner, uint32_t gen,
		 pl_errmsg *e)
{
	MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer;
	void *ctx = ctx_make(owner, gen);
	int rc;

	co.MQTTVersion = p->mqtt_version == 5 ? MQTTVERSION_5 : MQTTVERSION_3_1_1;
	co.sendWhileDisconnected = 0;
	rc = MQTTAsync_createWithOptions(out, p->uri, p->client_id, MQTTCLIENT_PERSISTENCE_NONE,
					 NULL, &co);
	if (rc != MQTTASYNC_SUCCESS)
		return pl_errmsg_set(e, PL_ERR_INVALID, "MQTTAsync_createWithOptions(%s): %s",
				     p->uri, mq_code_text(rc));
	rc = MQTTAsync_setCallbacks(*out, ctx, on_connection_lost, on_message, NULL);
	if (rc == MQTTASYNC_SUCCESS && p->mqtt_version == 5)
		rc = MQTTAsync_setDisconnected(*out, ctx, on_server_disconnect);
	if (rc != MQTTASYNC_SUCCESS) {
		MQTTAsync_destroy(out);
		return pl_errmsg_set(e, PL_ERR_INTERNAL, "MQTTAsync_setCallbacks: %s",
				     mq_code_text(rc));
	}
	return PL_OK;
}

/* ALPN protocol list in wire format: length byte, then the name. */
static const unsigned char alpn_aws[] = "\x0ex-amzn-mqtt-ca";

int mq_connect(MQTTAsync h, const mq_params *p, uint32_t owner, uint32_t gen)
{
	MQTTAsync_connectOptions o = MQTTAsync_connectOptions_initializer;
	MQTTAsync_connectOptions o5 = MQTTAsync_connectOptions_initializer5;
	MQTTAsync_connectOptions *opts = p->mqtt_version == 5 ? &o5 : &o;
	MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;

	opts->keepAliveInterval = p->keepalive_s;
	opts->connectTimeout = p->connect_timeout_s;
	opts->automaticReconnect = 0; /* the strategies reconnect explicitly and time it */
	opts->MQTTVersion = p->mqtt_version == 5 ? MQTTVERSION_5 : MQTTVERSION_3_1_1;
	opts->context = ctx_make(owner, gen);
	if (p->mqtt_version == 5) {
		opts->cleanstart = 1;
		opts->onSuccess5 = on_connect_ok5;
		opts->onFailure5 = on_connect_fail5;
	} else {
		opts->cleansession = 1;
		opts->onSuccess = on_connect_ok;
		opts->onFailure = on_connect_fail;
	}
	if (p->ca_path != NULL) {
		/* NOTE: paho builds a new SSL_CTX from these files on every connect.
		 * tlsreuse.c saves the parsing of the files, and tlsshare.c makes
		 * the SSL from one shared context and frees paho's at once, so an
		 * idle connection no longer keeps one. Building the context (about
		 * 0.1 ms) and the full handshake remain, which keep CPU per connect
		 * above its target (docs/known-issues.md). Always a trust store:
		 * without one paho loads the system CA bundle on every connect. */
		ssl.trustStore = p->ca_path;
		ssl.keyStore = p->cert_path;
		ssl.privateKey = p->key_path;
		ssl.enableServerCertAuth = 1;
		ssl.verify = 1;
		/* Paho 1.3.12 built against OpenSSL >= 1.1 ignores sslVersion and
		 * negotiates the highest version both sides support (TLS 1.3 here). */
		ssl.sslVersion = MQTT_SSL_VERSION_DEFAULT;
		ssl.disableDefaultTrustStore = 1;
		if (p->alpn) {
			ssl.protos = alpn_aws;
			ssl.protos_len = sizeof(alpn_aws) - 1;
		}
		opts->ssl = &ssl;
	}
	return MQTTAsync_connect(h, opts);
}

int mq_subscribe(MQTTAsync h, int mqtt_version, const char *topic, int qos, uint32_t owner,
		 uint32_t gen)
{
	MQTTAsync_responseOptions r = MQTTAsync_responseOptions_initializer;

	r.context = ctx_make(owner, gen);
	if (mqtt_version == 5) {
		r.onSuccess5 = on_sub_ok5;
		r.onFailure5 = on_sub_fail5;
	} else {
		r.onSuccess = on_sub_ok;
		r.onFailure = on_sub_fail;
	}
	return MQTTAsync_subscribe(h, topic, qos, &r);
}

int mq_publish_probe(MQTTAsync h, int mqtt_version, const char *topic, int qos,
		     uint32_t probe_device, uint64_t seq, int64_t t_send, uint32_t owner,
		     uint32_t gen)
{
	MQTTAsync_responseOptions r = MQTTAsync_responseOptions_initializer;
	char payload[MQ_PROBE_MAX];
	int n = snprintf(payload, sizeof(payload), "pl1 %u %llu %lld", probe_device,
			 (unsigned long long)seq, (long long)t_send);

	r.context = ctx_make(owner, gen);
	if (qos > 0 && mqtt_version == 5) {
		r.onSuccess5 = on_pub_ok5;
		r.onFailure5 = on_pub_fail5;
	} else if (qos > 0) {
		r.onSuccess = on_pub_ok;
		r.onFailure = on_pub_fail;
	}
	return MQTTAsync_send(h, topic, n, payload, qos, 0, &r);
}

int mq_publish_trigger(MQTTAsync h, int mqtt_version, const char *topic, const void *payload,
		       int len, int qos, uint32_t owner, uint32_t gen)
{
	MQTTAsync_responseOptions r = MQTTAsync_responseOptions_initializer;

	r.context = ctx_make(owner, gen);
	if (qos > 0 && mqtt_version == 5) {
		r.onSuccess5 = on_trigger_ok5;
		r.onFailure5 = on_trigger_fail5;
	} else if (qos > 0) {
		r.onSuccess = on_trigger_ok;
		r.onFailure = on_trigger_fail;
	}
	return MQTTAsync_send(h, topic, len, payload, qos, 0, &r);
}

int mq_disconnect(MQTTAsync h, int mqtt_version, uint32_t owner, uint32_t gen)
{
	MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer;
	MQTTAsync_disconnectOptions d5 = MQTTAsync_disconnectOptions_initializer5;
	MQTTAsync_disconnectOptions *opts = mqtt_version == 5 ? &d5 : &d;

	opts->timeout = 1000; /* ms for in-flight QoS 1 probes to finish */
	opts->context = ctx_make(owner, gen);
	if (mqtt_version == 5) {
		opts->onSuccess5 = on_disc_ok5;
		opts->onFailure5 = on_disc_fail5;
	} else {
		opts->onSuccess = on_disc_ok;
		opts->onFailure = on_disc_fail;
	}
	return MQTTAsync_disconnect(h, opts);
}

int mq_parse_probe(const void *payload, size_t len, uint32_t *device, uint64_t *seq,
		   int64_t *t_send)
{
	char text[MQ_PROBE_MAX];
	char *fields[3];
	char *p;
	uint64_t dev;
	int64_t t;

	if (len < 5 || len >= sizeof(text) || memcmp(payload, "pl1 ", 4) != 0)
		return -1;
	memcpy(text, payload, len);
	text[len] = '\0';
	p = text + 4;
	for (int i = 0; i < 3; i++) {
		fields[i] = p;
		p = strchr(p, ' ');
		if ((p == NULL) != (i == 2))
			return -1;
		if (p != NULL)
			*p++ = '\0';
	}
	if (pl_parse_uint64(fields[0], 0, UINT32_MAX, &dev, NULL) != PL_OK ||
	    pl_parse_uint64(fields[1], 0, UINT64_MAX, seq, NULL) != PL_OK ||
	    pl_parse_int64(fields[2], INT64_MIN, INT64_MAX, &t, NULL) != PL_OK)
		return -1;
	*device = (uint32_t)dev;
	*t_send = t;
	return 0;
}

const char *mq_code_text(int code)
{
	switch (code) {
	case MQTTASYNC_SUCCESS: return "success";
	case MQTTASYNC_FAILURE: return "failure";
	case MQTTASYNC_DISCONNECTED: return "client disconnected";
	case MQTTASYNC_MAX_MESSAGES_INFLIGHT: return "too many messages in flight";
	case MQTTASYNC_BAD_UTF8_STRING: return "invalid UTF-8 string";
	case MQTTASYNC_NULL_PARAMETER: return "NULL parameter";
	case MQTTASYNC_BAD_STRUCTURE: return "invalid structure";
	case MQTTASYNC_BAD_QOS: return "invalid QoS";
	case MQTTASYNC_NO_MORE_MSGIDS: return "no more message ids";
	case MQTTASYNC_OPERATION_INCOMPLETE: return "operation incomplete";
	case MQTTASYNC_SSL_NOT_SUPPORTED: return "TLS not supported by this paho build";
	case MQTTASYNC_BAD_PROTOCOL: return "invalid protocol in URI";
	case MQTTASYNC_BAD_MQTT_OPTION: return "invalid MQTT option";
	case MQTTASYNC_WRONG_MQTT_VERSION: return "wrong MQTT version";
	case 1: return "unacceptable protocol version";
	case 2: return "identifier rejected";
	case 3: return "server unavailable";
	case 4: return "bad user name or password";
	case 5: return "not authorized";
	case 0x80: return "unspecified error";
	case 0x87: return "not authorized";
	case 0x89: return "server busy";
	case 0x8E: return "session taken over";
	case 0x97: return "quota exceeded";
	case 0x9F: return "connection rate exceeded";
	default: return "unknown code";
	}
}
