#include "harness/swap_trigger.h"

#include <MQTTAsync.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"

#define COMPONENT "swap"
#define TRIGGER_TIMEOUT_NS (15 * PL_NS_PER_S)
#define TRIGGER_PAYLOAD "{\"trigger\":true}"

static MQTTAsync sentinel;

/* A paho completion, waited for by the pool thread that started it. */
typedef struct trigger_wait {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int done;
	int ok;
	int code;
} trigger_wait;

static void wait_init(trigger_wait *tw)
{
	pthread_mutex_init(&tw->lock, NULL);
	pthread_cond_init(&tw->cond, NULL);
	tw->done = tw->ok = tw->code = 0;
}

static void wait_destroy(trigger_wait *tw)
{
	pthread_mutex_destroy(&tw->lock);
	pthread_cond_destroy(&tw->cond);
}

/* Paho callbacks run under paho's lock: they only record and signal. */
static void complete(trigger_wait *tw, int ok, int code)
{
	pthread_mutex_lock(&tw->lock);
	tw->done = 1;
	tw->ok = ok;
	tw->code = code;
	pthread_cond_signal(&tw->cond);
	pthread_mutex_unlock(&tw->lock);
}

static void on_success(void *ctx, MQTTAsync_successData *r)
{
	(void)r;
	complete(ctx, 1, 0);
}

static void on_failure(void *ctx, MQTTAsync_failureData *r)
{
	complete(ctx, 0, r != NULL ? r->code : -1);
}

/* Waits for the completion; returns 1 when it succeeded in time. */
static int wait_for(trigger_wait *tw, int64_t timeout_ns)
{
	struct timespec until;
	int ok;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += (time_t)(timeout_ns / PL_NS_PER_S);
	pthread_mutex_lock(&tw->lock);
	while (!tw->done)
		if (pthread_cond_timedwait(&tw->cond, &tw->lock, &until) != 0)
			break;
	ok = tw->done && tw->ok;
	tw->done = 0;
	pthread_mutex_unlock(&tw->lock);
	return ok;
}

static void note(coordinator *c, uint32_t device, int kind, int64_t t_ns)
{
	coord_swap_note n = { device, kind, t_ns, t_ns };

	coord_push_note(c, &n);
}

static int connect_trigger(coordinator *c, MQTTAsync h, const coord_identity *id,
			   trigger_wait *tw)
{
	MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer;
	MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;

	ssl.trustStore = c->ca_path;
	ssl.keyStore = id->cert_path;
	ssl.privateKey = id->key_path;
	ssl.enableServerCertAuth = 1;
	co.ssl = &ssl;
	co.MQTTVersion = MQTTVERSION_3_1_1;
	co.keepAliveInterval = 30;
	co.cleansession = 1;
	co.connectTimeout = (int)(TRIGGER_TIMEOUT_NS / PL_NS_PER_S);
	co.onSuccess = on_success;
	co.onFailure = on_failure;
	co.context = tw;
	if (MQTTAsync_connect(h, &co) != MQTTASYNC_SUCCESS)
		return 0;
	return wait_for(tw, TRIGGER_TIMEOUT_NS);
}

/* Sends the trigger PUBLISH; *t_sent is its send time. */
static int publish_trigger(MQTTAsync h, const char *topic, trigger_wait *tw, int64_t *t_sent)
{
	MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;

	ro.onSuccess = on_success;
	ro.onFailure = on_failure;
	ro.context = tw;
	*t_sent = pl_mono_ns();
	if (MQTTAsync_send(h, topic, (int)strlen(TRIGGER_PAYLOAD), TRIGGER_PAYLOAD, 1, 0, &ro) !=
	    MQTTASYNC_SUCCESS)
		return 0;
	return wait_for(tw, TRIGGER_TIMEOUT_NS);
}

static void disconnect_trigger(MQTTAsync h, trigger_wait *tw)
{
	MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer;

	d.timeout = 1000;
	d.onSuccess = on_success;
	d.onFailure = on_failure;
	d.context = tw;
	if (MQTTAsync_disconnect(h, &d) == MQTTASYNC_SUCCESS)
		wait_for(tw, 2 * PL_NS_PER_S);
}

static void trigger_event(coordinator *c, const char *device, const char *topic, int64_t t_sent,
			  int ok, int code)
{
	char fields[WP_TOPIC_MAX * 2 + 128];
	char topic_json[WP_TOPIC_MAX * 2];

	rundir_json_string(topic_json, sizeof(topic_json), topic);
	snprintf(fields, sizeof(fields), "\"op\":\"TriggerPublish\",\"topic\":%s,\"t_sent_ns\":%lld,"
		 "\"ok\":%s,\"code\":%d",
		 topic_json, (long long)rundir_relative(c->rd, t_sent), ok ? "true" : "false", code);
	coord_event(c, t_sent, "swap_call", device, fields);
}

void swap_trigger_publish(coordinator *c, uint32_t device)
{
	coord_device *d = &c->devices[device == UINT32_MAX ? 0 : device];
	const coord_identity *id = device == UINT32_MAX ? &c->identities[0] : d->identity;
	char uri[WP_HOST_MAX + 32];
	char client_id[WP_ID_MAX];
	char topic[WP_TOPIC_MAX];
	trigger_wait tw;
	MQTTAsync h = NULL;
	int64_t t_sent = pl_mono_ns();
	int ok = 0;

	wait_init(&tw);
	snprintf(uri, sizeof(uri), "ssl://%s:%d", c->mqtt_host, c->mqtt_port);
	snprintf(client_id, sizeof(client_id), "%.*s-trigger", WP_ID_MAX - 10, d->name);
	if (profile_expand_topic(c->prof->swap.trigger_topic, d->name, d->name, topic,
				 sizeof(topic)) != PL_OK)
		goto report;
	if (MQTTAsync_create(&h, uri, client_id, MQTTCLIENT_PERSISTENCE_NONE, NULL) !=
	    MQTTASYNC_SUCCESS)
		goto report;
	if (!connect_trigger(c, h, id, &tw))
		goto report;
	ok = publish_trigger(h, topic, &tw, &t_sent);
	disconnect_trigger(h, &tw);
report:
	trigger_event(c, device == UINT32_MAX ? NULL : d->name, topic, t_sent, ok, tw.code);
	if (h != NULL)
		MQTTAsync_destroy(&h);
	wait_destroy(&tw);
	if (!ok) {
		PL_ERROR(COMPONENT, "trigger publish for %s to %s failed (code %d)", d->name, uri,
			 tw.code);
		note(c, device, -1, pl_mono_ns());
		return;
	}
	note(c, device, WP_SWAP_STARTED, t_sent);
	note(c, device, COORD_NOTE_FINISHED, t_sent);
}

void swap_trigger_begin(coordinator *c)
{
	char uri[WP_HOST_MAX + 32];

	snprintf(uri, sizeof(uri), "ssl://%s:%d", c->mqtt_host, c->mqtt_port);
	if (sentinel == NULL &&
	    MQTTAsync_create(&sentinel, uri, "policylag-sentinel", MQTTCLIENT_PERSISTENCE_NONE,
			     NULL) != MQTTASYNC_SUCCESS)
		sentinel = NULL;
}

void swap_trigger_end(coordinator *c)
{
	(void)c;
	if (sentinel != NULL)
		MQTTAsync_destroy(&sentinel);
	sentinel = NULL;
}
