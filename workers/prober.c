/*
 * The prober: one keep-connection per worker, with its own identity, that
 * publishes the probes of every device in a prober-mode group.
 *
 * With per-device topics it publishes to one device after another, so a
 * round over n devices takes n publishes per probe interval. AWS allows 100
 * publishes per second per connection; the prober stays at or under
 * hello.prober_rate_max (default 20/s). When a round cannot fit the interval
 * at that rate the effective interval grows, which the worker reports once
 * as a PROBE_LATE event (device UINT32_MAX) and counts in probes_late. With a
 * shared topic (hello.prober_topic) one publish per interval reaches every
 * device subscribed to it.
 */
#include <stdio.h>

#include "common/clock.h"
#include "common/log.h"
#include "workers/worker_internal.h"

#define COMPONENT "worker"
#define PROBER_RATE_DEFAULT 20
#define PROBER_BACKOFF_MAX_NS (30 * PL_NS_PER_S)

/* Finds the prober-mode devices once, when the devices are known. */
void prober_init(worker *w)
{
	w->prober_group = NULL;
	w->prober_devices = 0;
	for (uint32_t i = 0; i < w->ndevices; i++) {
		if (w->devices[i].group->probe_mode != WP_PROBE_PROBER)
			continue;
		if (w->prober_group == NULL)
			w->prober_group = w->devices[i].group;
		w->prober_devices++;
	}
}

/* Time between two prober publishes. */
static int64_t prober_period(worker *w, const wp_group *g)
{
	uint32_t rate = w->hello.prober_rate_max != 0 ? w->hello.prober_rate_max
						     : PROBER_RATE_DEFAULT;
	int64_t min_period = PL_NS_PER_S / rate;
	uint32_t n = w->hello.prober_topic[0] != '\0' ? 1 : w->prober_devices;
	int64_t period = n > 0 ? g->probe_interval_ns / n : g->probe_interval_ns;

	if (period < min_period) {
		if (!w->prober_needed) {
			PL_WARN(COMPONENT, "prober: %u probe topics at %d/s cannot meet the %lld ms "
				"probe interval; probes are spaced %lld ms apart per device", n,
				(int)rate, (long long)(g->probe_interval_ns / PL_NS_PER_MS),
				(long long)(min_period * n / PL_NS_PER_MS));
			wk_send_event(w, NULL, WP_EV_PROBE_LATE, (int32_t)rate,
				      "prober rate cap exceeds the probe interval");
		}
		period = min_period;
	}
	return period;
}

static void prober_connect(worker *w, const wp_group *g, int64_t now)
{
	wk_conn *c = &w->prober;
	char uri[WP_HOST_MAX + 16];
	mq_params p;
	pl_errmsg e;

	c->gen++;
	snprintf(c->client_id, sizeof(c->client_id), "%s", w->hello.prober_client_id);
	wk_conn_params(w, 0, c->client_id, w->hello.prober_cert, w->hello.prober_key,
		       g->mqtt_version, &p, uri, sizeof(uri));
	if (mq_create(&c->h, &p, WK_OWNER_PROBER, c->gen, &e) != PL_OK) {
		PL_ERROR(COMPONENT, "prober: %s", e.msg);
		w->prober_retry_at = now + PROBER_BACKOFF_MAX_NS;
		return;
	}
	c->t_connect_call = now;
	if (mq_connect(c->h, &p, WK_OWNER_PROBER, c->gen) != MQTTASYNC_SUCCESS) {
		MQTTAsync_destroy(&c->h);
		c->h = NULL;
		w->prober_retry_at = now + PROBER_BACKOFF_MAX_NS;
		return;
	}
	c->state = CONN_CONNECTING;
	w->connecting++;
	waker_connect_started(w, now);
	waker_kick(w, now);
}

/* Publishes the next probe and feeds it to the detections of its device(s). */
static void prober_publish(worker *w, const wp_group *g, int64_t now)
{
	wk_conn *c = &w->prober;
	int shared = w->hello.prober_topic[0] != '\0';
	wk_device *target = NULL;
	const char *topic = w->hello.prober_topic;
	int rc;

	if (!shared) {
		for (uint32_t i = 0; i < w->ndevices && target == NULL; i++) {
			wk_device *d = &w->devices[(w->prober_cursor + i) % w->ndevices];

			if (d->group->probe_mode == WP_PROBE_PROBER)
				target = d;
		}
		if (target == NULL)
			return;
		w->prober_cursor = target->slot + 1;
		topic = target->cfg.probe_topic;
	}
	rc = mq_publish_probe(c->h, g->mqtt_version, topic, g->qos,
			      shared ? MQ_SHARED_PROBE : target->cfg.index, w->prober_seq, now,
			      WK_OWNER_PROBER, c->gen);
	if (rc != MQTTASYNC_SUCCESS) {
		wk_send_event(w, NULL, WP_EV_PUBLISH_FAILED, rc, "prober: MQTTAsync_send failed");
		return;
	}
	w->hb.probes_sent++;
	if (shared) {
		for (uint32_t i = 0; i < w->ndevices; i++)
			if (w->devices[i].group->probe_mode == WP_PROBE_PROBER)
				dev_prober_sent(w, &w->devices[i], w->prober_seq, now);
	} else {
		dev_prober_sent(w, target, w->prober_seq, now);
	}
	w->prober_seq++;
}

void prober_on_timer(worker *w, int64_t now)
{
	const wp_group *g = w->prober_group;
	int64_t period;

	/* No prober identity: the coordinator publishes the probes (probe.via http). */
	if (g == NULL || w->draining || w->hello.prober_client_id[0] == '\0')
		return;
	period = prober_period(w, g);
	w->prober_needed = 1;
	if (w->prober.state == CONN_IDLE && now >= w->prober_retry_at)
		prober_connect(w, g, now);
	if (w->prober.state != CONN_READY || !w->probing || now < w->prober_next)
		return;
	/* After a stall of more than one interval, restart the schedule instead of
	 * sending a burst. */
	if (now - w->prober_next > g->probe_interval_ns)
		w->prober_next = now;
	/* The driver wakes once per tick, which can be longer than the period, so
	 * every probe due by now goes out in this pass. NOTE: only the demo run
	 * checks this pacing; no test has a period shorter than the tick. */
	while (now >= w->prober_next) {
		w->prober_next += period;
		prober_publish(w, g, now);
	}
}

int64_t prober_next_time(const worker *w)
{
	if (!w->prober_needed || w->draining)
		return INT64_MAX;
	if (w->prober.state == CONN_IDLE)
		return w->prober_retry_at;
	if (w->prober.state == CONN_READY && w->probing)
		return w->prober_next;
	return INT64_MAX;
}

static void prober_close(worker *w)
{
	wk_conn *c = &w->prober;

	if (c->state == CONN_CONNECTING && w->connecting > 0)
		w->connecting--;
	if (c->h != NULL)
		MQTTAsync_destroy(&c->h);
	c->h = NULL;
	c->state = CONN_IDLE;
}

void prober_on_event(worker *w, const mq_event *ev)
{
	wk_conn *c = &w->prober;

	if (ev->gen != c->gen || c->state == CONN_IDLE)
		return;
	switch (ev->kind) {
	case MQ_CONNECTED:
		if (w->connecting > 0)
			w->connecting--;
		c->state = CONN_READY;
		w->prober_backoff_ns = PL_NS_PER_S;
		if (w->draining)
			prober_drain(w);
		break;
	case MQ_CONNECT_FAILED:
	case MQ_CONNECTION_LOST:
	case MQ_SERVER_DISCONNECT:
		PL_WARN(COMPONENT, "prober: %s (%d, %s)",
			ev->kind == MQ_CONNECT_FAILED ? "connect failed" : "connection lost",
			(int)ev->code, mq_code_text(ev->code));
		prober_close(w);
		if (w->prober_backoff_ns < PL_NS_PER_S)
			w->prober_backoff_ns = PL_NS_PER_S;
		w->prober_retry_at = ev->t_ns + w->prober_backoff_ns;
		w->prober_backoff_ns *= 2;
		if (w->prober_backoff_ns > PROBER_BACKOFF_MAX_NS)
			w->prober_backoff_ns = PROBER_BACKOFF_MAX_NS;
		break;
	case MQ_PUBLISH_FAILED:
		wk_send_event(w, NULL, WP_EV_PUBLISH_FAILED, ev->code, mq_code_text(ev->code));
		break;
	case MQ_DISCONNECTED:
		prober_close(w);
		break;
	default:
		break;
	}
}

void prober_drain(worker *w)
{
	wk_conn *c = &w->prober;

	if (c->state == CONN_READY) {
		const wp_group *g = w->prober_group;

		if (g != NULL &&
		    mq_disconnect(c->h, g->mqtt_version, WK_OWNER_PROBER, c->gen) == 0)
			c->state = CONN_DISCONNECTING;
		else
			prober_close(w);
	}
}

int prober_is_idle(const worker *w)
{
	return w->prober.state == CONN_IDLE;
}
