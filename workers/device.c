/*
 * The device strategies as state machines on the driver thread.
 *
 * keep-connection: connect once, subscribe, probe at the interval until the
 * effect is seen, stay connected. A lost connection is re-established after
 * a backoff of 1 s doubling to 30 s, reset only once a connection has lasted
 * 30 s. So takeovers and denials cannot become a reconnect storm, and the
 * same client id never sends two CONNECTs within a second.
 *
 * reconnect-per-attempt: attempts start interval apart (start to start);
 * each connects with a clean session, subscribes, probes, and disconnects at
 * the end of the attempt window. Attempts stop once the effect is seen and
 * resume at the next swap. With fixed client ids, CONNECTs of one id are at
 * least 1 s apart (AWS allows one CONNECT per second per client id).
 *
 * A trigger-topic swap's TRIGGER is published on the device's connection
 * once it has a SUBACK: at once, or on the next connection. Its publish
 * call starts the detection, and its TRIGGERED is sent at the PUBACK, at a
 * rejection, when the connection ends first, or at the drain if it was never
 * published.
 *
 * Each connection gets a fresh paho handle, destroyed only here on the driver
 * thread after its last callback (CONNACK failure, connection lost or the
 * DISCONNECT completion) has been handled.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "workers/worker_internal.h"

#define COMPONENT "worker"

#define BACKOFF_MIN_NS PL_NS_PER_S
#define BACKOFF_MAX_NS (30 * PL_NS_PER_S)
#define STABLE_NS (30 * PL_NS_PER_S)
#define SAME_ID_SPACING_NS PL_NS_PER_S
/* Paho answers a DISCONNECT within its 1 s timeout, and fails a connect at
 * connectTimeout; these bounds only catch a callback that never comes. */
#define DISCONNECT_STUCK_NS (5 * PL_NS_PER_S)
#define CONNECT_STUCK_EXTRA_NS (15 * PL_NS_PER_S)

static void reschedule(worker *w, wk_device *d);

static int is_keep(const wk_device *d)
{
	return d->group->strategy == WP_STRATEGY_KEEP;
}

static int is_revoke(const wk_device *d)
{
	return d->group->direction == WP_DIRECTION_REVOKE;
}

/* Probing runs in the probe phase until the current detection has finished. */
static int probing(const worker *w, const wk_device *d)
{
	return w->probing && !w->draining && !(d->swap_active && d->swap_done);
}

static int trigger_pending(const wk_device *d)
{
	return d->trigger != NULL && d->trigger->t_sent == 0;
}

/* Whether a reconnect-per-attempt device should start more attempts. */
static int wants_attempts(const worker *w, const wk_device *d)
{
	return d->active && !w->draining &&
	       (!(d->swap_active && d->swap_done) || trigger_pending(d));
}

/*
 * Writes template_text with each ${client_id} replaced by client_id to buf
 * (WP_TOPIC_MAX bytes). Returns whether the result fits.
 */
static int expand_client_id(const char *template_text, const char *client_id, char *buf)
{
	static const char placeholder[] = "${client_id}";
	size_t used = 0;

	for (const char *s = template_text; *s != '\0';) {
		const char *piece = s;
		size_t n = 1;

		if (strncmp(s, placeholder, sizeof(placeholder) - 1) == 0) {
			piece = client_id;
			n = strlen(client_id);
			s += sizeof(placeholder) - 1;
		} else {
			s++;
		}
		if (used + n >= WP_TOPIC_MAX)
			return 0;
		memcpy(buf + used, piece, n);
		used += n;
	}
	buf[used] = '\0';
	return 1;
}

/*
 * The topic d's connection subscribes to and echo-probes on, or NULL when
 * too long. A ${client_id} that the coordinator kept in the device's topic
 * (echo groups with fresh-per-attempt ids) becomes this connection's
 * client id, so each attempt uses the topic that ${iot:ClientId} allows.
 */
static const char *probe_topic(const worker *w, const wk_device *d, char buf[WP_TOPIC_MAX])
{
	if (d->group->probe_mode == WP_PROBE_PROBER && w->hello.prober_topic[0] != '\0')
		return w->hello.prober_topic;
	if (strstr(d->cfg.probe_topic, "${client_id}") == NULL)
		return d->cfg.probe_topic;
	return expand_client_id(d->cfg.probe_topic, d->conn.client_id, buf) ? buf : NULL;
}

static int is_throttle_code(int32_t code)
{
	return code == 0x97 || code == 0x9F || code == 0x89;
}

static void timing_reset(wk_conn *c, const wk_device *d, uint32_t attempt)
{
	c->timing = (wp_timing){ .device = d->cfg.index, .attempt = attempt,
				 .connect_ns = -1, .subscribe_ns = -1, .probe_rtt_ns = -1,
				 .suback_code = -1 };
}

static void send_timing(worker *w, wk_device *d)
{
	wp_msg m = { .type = WP_MSG_TIMING };

	if (d->conn.timing.t_connect_call_ns == 0)
		return;
	m.u.timing = d->conn.timing;
	if (wp_chan_send(w->chan, &m, NULL) != PL_OK)
		w->hb.events_dropped++;
	d->conn.timing.t_connect_call_ns = 0;
}

/* Ends the detection: EFFECT (unless censored) and the RECORD. */
static void finish_detection(worker *w, wk_device *d)
{
	wp_msg m = { .type = WP_MSG_RECORD };
	wp_record *r = &m.u.record;
	int censored = d->det.state == DETECT_CENSORED;

	d->swap_done = 1;
	if (!censored) {
		wp_msg ef = { .type = WP_MSG_EFFECT };

		ef.u.effect = (wp_effect){ d->cfg.index, d->swap_index, detect_effect_ns(&d->det) };
		wk_send_must(w, &ef);
	}
	r->device = d->cfg.index;
	snprintf(r->client_id, sizeof(r->client_id), "%s", d->cfg.client_id);
	snprintf(r->group, sizeof(r->group), "%s", d->group->name);
	snprintf(r->cert_id, sizeof(r->cert_id), "%s", d->cfg.cert_id);
	r->strategy = d->group->strategy;
	r->direction = d->group->direction;
	r->swap_index = d->swap_index;
	r->worker = w->hello.worker_index;
	r->t_swap_start_ns = d->det.t_swap_start;
	r->t_swap_ns = d->det.t_swap;
	r->t_effect_ns = detect_effect_ns(&d->det);
	r->latency_ns = detect_latency_ns(&d->det);
	r->censored = (uint8_t)censored;
	r->attempts = d->total.attempts - d->at_swap.attempts;
	r->connects = d->total.connects - d->at_swap.connects;
	r->connect_failures = d->total.connect_failures - d->at_swap.connect_failures;
	r->throttled = d->total.throttled - d->at_swap.throttled;
	r->errors = d->total.errors - d->at_swap.errors;
	wk_send_must(w, &m);
	w->records_sent++;
}

/* Whether the coordinator publishes d's probes (probe.via http): no prober identity. */
static int http_probed(const worker *w, const wk_device *d)
{
	return d->group->probe_mode == WP_PROBE_PROBER && w->hello.prober_client_id[0] == '\0';
}

/* The send time of the coordinator's probe after http_fed, one interval per round. */
static int64_t http_next_send(const wk_device *d)
{
	return d->http_t_send +
	       (int64_t)(d->http_fed + 1 - d->http_seq) * d->group->probe_interval_ns;
}

static int http_feeding(const worker *w, const wk_device *d)
{
	return http_probed(w, d) && d->http_seq != 0 && is_revoke(d) && d->swap_active &&
	       !d->swap_done;
}

/*
 * A revoke is dated by the send time of the first lost probe. The worker
 * does not see the coordinator's probes leave, so it dates each one from
 * the last delivered probe's payload time plus one interval per round.
 */
static void http_feed(const worker *w, wk_device *d, int64_t now)
{
	if (!http_feeding(w, d))
		return;
	while (http_next_send(d) <= now) {
		int64_t t_send = http_next_send(d);

		d->http_fed++;
		if (d->conn.state == CONN_READY)
			detect_on_sent(&d->det, d->http_fed, t_send);
	}
}

static void poll_detection(worker *w, wk_device *d, int64_t now)
{
	if (!d->swap_active || d->swap_done)
		return;
	http_feed(w, d, now);
	if (detect_poll(&d->det, now) != DETECT_PENDING)
		finish_detection(w, d);
}

/* A refused SUBSCRIBE or CONNECT under revoke: the device tried to use the
 * topic at t and could not, which counts as a probe sent then and never
 * delivered. */
static void lost_attempt(const worker *w, wk_device *d, int64_t t)
{
	uint64_t seq;

	if (!d->swap_active || d->swap_done || !is_revoke(d))
		return;
	/* The sequence must order with the probes this device is fed: the
	 * coordinator's rounds with probe.via http, the prober's numbering in
	 * prober mode, its own otherwise. */
	if (http_probed(w, d))
		seq = d->http_fed + 1;
	else
		seq = d->group->probe_mode == WP_PROBE_PROBER ? w->prober_seq : d->seq++;
	detect_on_sent(&d->det, seq, t);
}

/* Trigger-topic swaps ---------------------------------------------------- */

/* Sends the TRIGGERED of d's trigger and frees the trigger. */
static void trigger_finish(worker *w, wk_device *d, wp_trigger_outcome outcome, int32_t code,
			   const char *text)
{
	wk_trigger *t = d->trigger;
	wp_triggered r = { .device = d->cfg.index, .swap_index = t->msg.swap_index,
			   .outcome = (uint8_t)outcome, .t_sent_ns = t->t_sent,
			   .t_done_ns = pl_mono_ns(), .attempt = t->attempt, .code = code };

	snprintf(r.client_id, sizeof(r.client_id), "%s", t->client_id);
	snprintf(r.text, sizeof(r.text), "%s", text);
	d->trigger = NULL;
	free(t);
	wk_send_triggered(w, &r);
}

/*
 * Publishes d's pending trigger on its connection, which has its SUBACK.
 * The publish call's time is the device's t_swap_start, so the detection
 * starts there, as a SWAP STARTED would start it.
 */
static void trigger_publish(worker *w, wk_device *d)
{
	wk_trigger *t = d->trigger;
	wk_conn *c = &d->conn;
	int64_t t_call = pl_mono_ns();
	int rc = mq_publish_trigger(c->h, d->group->mqtt_version, t->msg.topic, t->msg.payload,
				    (int)strlen(t->msg.payload), t->msg.qos, d->slot, c->gen);

	if (rc == MQTTASYNC_DISCONNECTED)
		return; /* the connection has just ended: the next one publishes */
	t->attempt = d->total.attempts;
	snprintf(t->client_id, sizeof(t->client_id), "%s", c->client_id);
	if (rc != MQTTASYNC_SUCCESS) {
		d->total.errors++;
		trigger_finish(w, d, WP_TRIGGER_NOT_SENT, rc, "MQTTAsync_send failed");
		return;
	}
	t->t_sent = t_call;
	dev_swap_started(w, d, t->msg.swap_index, t_call);
	if (t->msg.qos == 0)
		trigger_finish(w, d, WP_TRIGGER_ACKED, 0, "");
}

/*
 * Ends a trigger with a PUBACK rejection (code >= 0x80), or with a paho
 * failure, which does not tell whether the broker got the trigger.
 */
static void trigger_failed(worker *w, wk_device *d, const mq_event *ev)
{
	if (d->trigger == NULL || d->trigger->t_sent == 0)
		return;
	if (is_throttle_code(ev->code))
		d->total.throttled++;
	trigger_finish(w, d, ev->code >= 0x80 ? WP_TRIGGER_REJECTED : WP_TRIGGER_UNCONFIRMED,
		       ev->code, mq_code_text(ev->code));
}

void dev_trigger(worker *w, wk_device *d, const wp_trigger *t)
{
	d->trigger = calloc(1, sizeof(*d->trigger));
	if (d->trigger == NULL) {
		wp_triggered r = { .device = t->device, .swap_index = t->swap_index,
				   .outcome = WP_TRIGGER_NOT_SENT, .t_done_ns = pl_mono_ns(),
				   .code = -1 };

		snprintf(r.text, sizeof(r.text), "out of memory");
		wk_send_triggered(w, &r);
		return;
	}
	d->trigger->msg = *t;
	if (d->conn.state == CONN_READY)
		trigger_publish(w, d);
	reschedule(w, d);
}

/* Destroys the handle; the connection is then idle. */
static void conn_close(worker *w, wk_device *d)
{
	if (d->trigger != NULL && d->trigger->t_sent != 0)
		trigger_finish(w, d, WP_TRIGGER_UNCONFIRMED, -1,
			       "the connection ended before the PUBACK");
	if (d->conn.state == CONN_CONNECTING && w->connecting > 0)
		w->connecting--;
	send_timing(w, d);
	if (d->conn.h != NULL)
		MQTTAsync_destroy(&d->conn.h);
	d->conn.h = NULL;
	d->conn.state = CONN_IDLE;
	d->conn.sub_ok = 0;
	d->conn.stop_after_connect = 0;
	w->hb.connected -= d->conn.t_connected != 0 ? 1 : 0;
	d->conn.t_connected = 0;
}

static void choose_client_id(wk_device *d)
{
	wk_conn *c = &d->conn;

	if (!is_keep(d) && d->group->client_ids == WP_CLIENT_ID_FRESH && d->total.attempts > 1)
		snprintf(c->client_id, sizeof(c->client_id), "%.*s-a%u", WP_ID_MAX - 16,
			 d->cfg.client_id, d->total.attempts);
	else
		snprintf(c->client_id, sizeof(c->client_id), "%s", d->cfg.client_id);
}

/* Takes the device's place in the worker's connect-rate schedule. */
static int64_t reserve_slot(worker *w, wk_device *d, int64_t now)
{
	if (d->t_slot == 0) {
		int64_t slot = now > w->next_connect_slot ? now : w->next_connect_slot;

		d->t_slot = slot;
		w->next_connect_slot = slot + w->connect_period_ns;
	}
	return d->t_slot;
}

static void start_connect(worker *w, wk_device *d, int64_t now)
{
	wk_conn *c = &d->conn;
	char uri[WP_HOST_MAX + 16];
	mq_params p;
	pl_errmsg e;
	int rc;

	d->t_slot = 0;
	d->total.attempts++;
	choose_client_id(d);
	c->gen++;
	wk_conn_params(w, d->slot, c->client_id, d->cfg.cert_path, d->cfg.key_path,
		       d->group->mqtt_version, &p, uri, sizeof(uri));
	timing_reset(c, d, d->total.attempts);
	if (mq_create(&c->h, &p, d->slot, c->gen, &e) != PL_OK) {
		d->total.errors++;
		wk_send_event(w, d, WP_EV_ERROR, -1, e.msg);
		d->t_next_connect = now + BACKOFF_MAX_NS;
		return;
	}
	c->t_connect_call = pl_mono_ns();
	c->timing.t_connect_call_ns = c->t_connect_call;
	rc = mq_connect(c->h, &p, d->slot, c->gen);
	if (rc != MQTTASYNC_SUCCESS) {
		d->total.errors++;
		wk_send_event(w, d, WP_EV_ERROR, rc, "MQTTAsync_connect failed");
		conn_close(w, d);
		d->t_next_connect = now + BACKOFF_MAX_NS;
		return;
	}
	c->state = CONN_CONNECTING;
	w->connecting++;
	d->t_next_connect = c->t_connect_call + SAME_ID_SPACING_NS;
	if (!is_keep(d)) {
		int64_t next = c->t_connect_call + d->group->attempt_interval_ns;

		if (d->group->client_ids == WP_CLIENT_ID_FIXED && next < d->t_next_connect)
			next = d->t_next_connect;
		d->t_next_connect = next;
		d->t_attempt_end = c->t_connect_call + d->group->attempt_window_ns;
	}
	waker_connect_started(w, now);
	waker_kick(w, now);
}

static void topic_too_long(worker *w, wk_device *d)
{
	d->total.errors++;
	wk_send_event(w, d, WP_EV_ERROR, -1,
		      "probe topic with this attempt's client id is longer than 256 bytes");
}

static void start_subscribe(worker *w, wk_device *d)
{
	wk_conn *c = &d->conn;
	char buf[WP_TOPIC_MAX];
	const char *topic = probe_topic(w, d, buf);
	int rc;

	c->t_subscribe_call = pl_mono_ns();
	if (topic == NULL) {
		topic_too_long(w, d);
		c->state = CONN_READY;
		return;
	}
	rc = mq_subscribe(c->h, d->group->mqtt_version, topic, d->group->qos, d->slot, c->gen);
	if (rc != MQTTASYNC_SUCCESS) {
		d->total.errors++;
		wk_send_event(w, d, WP_EV_ERROR, rc, "MQTTAsync_subscribe failed");
		c->state = CONN_READY; /* retried at the next probe tick */
		return;
	}
	c->state = CONN_SUBSCRIBING;
}

static void start_disconnect(worker *w, wk_device *d)
{
	wk_conn *c = &d->conn;

	if (c->state == CONN_CONNECTING) {
		c->stop_after_connect = 1; /* disconnecting a pending connect is unsafe in paho */
		return;
	}
	if (c->state == CONN_IDLE || c->state == CONN_DISCONNECTING)
		return;
	if (mq_disconnect(c->h, d->group->mqtt_version, d->slot, c->gen) != MQTTASYNC_SUCCESS) {
		conn_close(w, d);
		return;
	}
	c->state = CONN_DISCONNECTING;
	c->t_disconnect_call = pl_mono_ns();
}

/*
 * Ends a connection whose final callback never came. A handle that is still
 * disconnecting can be destroyed; one with a pending connect cannot (paho
 * has crashed destroying pending connects), so it is left allocated.
 */
static void conn_watchdog(worker *w, wk_device *d, int64_t now)
{
	wk_conn *c = &d->conn;
	int64_t connect_limit = (int64_t)w->hello.connect_timeout_s * PL_NS_PER_S +
				CONNECT_STUCK_EXTRA_NS;

	if (c->state == CONN_DISCONNECTING && now - c->t_disconnect_call > DISCONNECT_STUCK_NS) {
		conn_close(w, d);
	} else if (c->state == CONN_CONNECTING && now - c->t_connect_call > connect_limit) {
		/* NOTE: the abandoned handle stays allocated until the process ends. */
		d->total.errors++;
		wk_send_event(w, d, WP_EV_ERROR, -1, "connect never completed; handle abandoned");
		c->h = NULL;
		c->gen++;
		conn_close(w, d);
	}
}

static void send_probe(worker *w, wk_device *d, int64_t now)
{
	wk_conn *c = &d->conn;
	int64_t interval = d->group->probe_interval_ns;
	char buf[WP_TOPIC_MAX];
	const char *topic;
	int rc;

	if (now > d->t_next_probe + interval / 2) {
		w->hb.probes_late++;
		d->t_next_probe = now;
	}
	d->t_next_probe += interval;
	if (!c->sub_ok && is_keep(d)) {
		start_subscribe(w, d); /* the last SUBACK refused the filter: try again */
		return;
	}
	if (d->group->probe_mode != WP_PROBE_ECHO)
		return;
	topic = probe_topic(w, d, buf);
	if (topic == NULL) {
		topic_too_long(w, d);
		return;
	}
	rc = mq_publish_probe(c->h, d->group->mqtt_version, topic, d->group->qos, d->cfg.index,
			      d->seq, now, d->slot, c->gen);
	if (rc != MQTTASYNC_SUCCESS) {
		d->total.errors++;
		wk_send_event(w, d, WP_EV_PUBLISH_FAILED, rc, "MQTTAsync_send failed");
		return;
	}
	if (d->swap_active && !d->swap_done)
		detect_on_sent(&d->det, d->seq, now);
	d->seq++;
	w->hb.probes_sent++;
}

/* The next time this device needs the driver, or INT64_MAX. */
static int64_t next_wake(const worker *w, const wk_device *d)
{
	int64_t t = INT64_MAX;
	const wk_conn *c = &d->conn;

#define AT(x) do { if ((x) < t) t = (x); } while (0)
	if (d->swap_active && !d->swap_done)
		AT(detect_next_deadline(&d->det));
	if (http_feeding(w, d))
		AT(http_next_send(d));
	if (c->state == CONN_IDLE && d->active && !w->draining &&
	    (is_keep(d) || wants_attempts(w, d)))
		AT(d->t_slot != 0 ? d->t_slot : d->t_next_connect);
	if (c->state == CONN_READY && probing(w, d))
		AT(d->t_next_probe);
	if (!is_keep(d) && (c->state == CONN_READY || c->state == CONN_SUBSCRIBING))
		AT(d->t_attempt_end);
	if (c->state == CONN_DISCONNECTING)
		AT(c->t_disconnect_call + DISCONNECT_STUCK_NS + 1);
	if (c->state == CONN_CONNECTING)
		AT(c->t_connect_call + (int64_t)w->hello.connect_timeout_s * PL_NS_PER_S +
		   CONNECT_STUCK_EXTRA_NS + 1);
#undef AT
	return t;
}

static void reschedule(worker *w, wk_device *d)
{
	wk_schedule(w, d, next_wake(w, d));
}

void dev_start(worker *w, wk_device *d, int64_t now)
{
	d->active = 1;
	d->backoff_ns = BACKOFF_MIN_NS;
	d->t_next_connect = now;
	reschedule(w, d);
}

void dev_on_timer(worker *w, wk_device *d, int64_t now)
{
	wk_conn *c = &d->conn;

	poll_detection(w, d, now);
	conn_watchdog(w, d, now);
	if (c->state == CONN_IDLE && d->active && !w->draining &&
	    (is_keep(d) || wants_attempts(w, d)) && now >= d->t_next_connect) {
		if (reserve_slot(w, d, now) <= now)
			start_connect(w, d, now);
	}
	if (!is_keep(d) && now >= d->t_attempt_end &&
	    (c->state == CONN_READY || c->state == CONN_SUBSCRIBING))
		start_disconnect(w, d);
	if (c->state == CONN_READY && probing(w, d) && now >= d->t_next_probe)
		send_probe(w, d, now);
	reschedule(w, d);
}

static void on_connected(worker *w, wk_device *d, const mq_event *ev)
{
	wk_conn *c = &d->conn;

	if (w->connecting > 0)
		w->connecting--;
	c->t_connected = ev->t_ns;
	c->timing.connect_ns = ev->t_ns - c->t_connect_call;
	d->total.connects++;
	w->hb.connects++;
	w->hb.connected++;
	wk_send_connect_event(w, d, WP_EV_CONNECTED, ev->code, "", c->timing.connect_ns);
	c->state = CONN_READY; /* until subscribe is called */
	if (c->stop_after_connect || w->draining) {
		start_disconnect(w, d);
		return;
	}
	start_subscribe(w, d);
}

static void on_suback(worker *w, wk_device *d, const mq_event *ev, int granted)
{
	wk_conn *c = &d->conn;
	int64_t now = ev->t_ns;

	c->state = CONN_READY;
	c->sub_ok = (uint8_t)granted;
	if (c->timing.subscribe_ns < 0) {
		c->timing.subscribe_ns = now - c->t_subscribe_call;
		c->timing.suback_code = ev->code;
	}
	if (granted) {
		wk_send_event(w, d, WP_EV_SUBSCRIBED, ev->code, "");
	} else {
		wk_send_event(w, d, WP_EV_SUBSCRIBE_FAILED, ev->code, mq_code_text(ev->code));
		if (is_throttle_code(ev->code))
			d->total.throttled++;
		lost_attempt(w, d, c->t_subscribe_call);
	}
	if (d->t_next_probe < now)
		d->t_next_probe = now;
	if (trigger_pending(d))
		trigger_publish(w, d);
}

/* The connection ended without our DISCONNECT: backoff for keep, next attempt for reconnect. */
static void on_lost(worker *w, wk_device *d, const mq_event *ev)
{
	wk_conn *c = &d->conn;
	int64_t lasted = c->t_connected != 0 ? ev->t_ns - c->t_connected : 0;

	if (c->state == CONN_SUBSCRIBING)
		lost_attempt(w, d, c->t_subscribe_call); /* MQTT 3.1.1 denial closes the connection */
	if (ev->kind == MQ_SERVER_DISCONNECT && is_throttle_code(ev->code)) {
		d->total.throttled++;
		wk_send_event(w, d, WP_EV_THROTTLED, ev->code, mq_code_text(ev->code));
	}
	wk_send_event(w, d, WP_EV_DISCONNECTED, ev->kind == MQ_SERVER_DISCONNECT ? ev->code : -1,
		      ev->kind == MQ_SERVER_DISCONNECT ? mq_code_text(ev->code) : "connection lost");
	conn_close(w, d);
	if (is_keep(d)) {
		if (lasted >= STABLE_NS)
			d->backoff_ns = BACKOFF_MIN_NS;
		if (d->t_next_connect < ev->t_ns + d->backoff_ns)
			d->t_next_connect = ev->t_ns + d->backoff_ns;
		d->backoff_ns = d->backoff_ns * 2 > BACKOFF_MAX_NS ? BACKOFF_MAX_NS : d->backoff_ns * 2;
	}
}

static void on_connect_failed(worker *w, wk_device *d, const mq_event *ev)
{
	d->total.connect_failures++;
	w->hb.connect_failures++;
	if (is_throttle_code(ev->code)) {
		d->total.throttled++;
		wk_send_event(w, d, WP_EV_THROTTLED, ev->code, mq_code_text(ev->code));
	}
	wk_send_connect_event(w, d, WP_EV_CONNECT_FAILED, ev->code, mq_code_text(ev->code),
			      ev->t_ns - d->conn.t_connect_call);
	if (ev->code == 5 || ev->code == 0x87)
		lost_attempt(w, d, d->conn.t_connect_call);
	conn_close(w, d);
	if (is_keep(d)) {
		d->t_next_connect = ev->t_ns + d->backoff_ns;
		d->backoff_ns = d->backoff_ns * 2 > BACKOFF_MAX_NS ? BACKOFF_MAX_NS : d->backoff_ns * 2;
	}
}

static void on_message(worker *w, wk_device *d, const mq_event *ev)
{
	wk_conn *c = &d->conn;

	if (ev->probe_device != d->cfg.index && ev->probe_device != MQ_SHARED_PROBE)
		return;
	w->hb.probes_received++;
	if (c->timing.probe_rtt_ns < 0)
		c->timing.probe_rtt_ns = ev->t_ns - ev->t_send;
	if (http_probed(w, d) && ev->seq >= d->http_seq) {
		d->http_seq = ev->seq;
		d->http_t_send = ev->t_send;
		if (d->http_fed < ev->seq)
			d->http_fed = ev->seq;
	}
	if (d->swap_active && !d->swap_done)
		detect_on_delivered(&d->det, ev->seq, ev->t_send, ev->t_ns);
}

void dev_on_event(worker *w, wk_device *d, const mq_event *ev)
{
	if (ev->gen != d->conn.gen || d->conn.state == CONN_IDLE)
		return; /* an event of a handle already destroyed */
	switch (ev->kind) {
	case MQ_CONNECTED: on_connected(w, d, ev); break;
	case MQ_CONNECT_FAILED: on_connect_failed(w, d, ev); break;
	case MQ_SUBACK: on_suback(w, d, ev, 1); break;
	case MQ_SUBSCRIBE_FAILED: on_suback(w, d, ev, 0); break;
	case MQ_PUBACK: break;
	case MQ_PUBLISH_FAILED:
		if (is_throttle_code(ev->code))
			d->total.throttled++;
		wk_send_event(w, d, WP_EV_PUBLISH_FAILED, ev->code, mq_code_text(ev->code));
		break;
	case MQ_MESSAGE: on_message(w, d, ev); break;
	case MQ_CONNECTION_LOST:
	case MQ_SERVER_DISCONNECT:
		on_lost(w, d, ev);
		break;
	case MQ_DISCONNECTED: conn_close(w, d); break;
	case MQ_TRIGGER_ACKED:
		if (d->trigger != NULL && d->trigger->t_sent != 0)
			trigger_finish(w, d, WP_TRIGGER_ACKED, 0, "");
		break;
	case MQ_TRIGGER_FAILED: trigger_failed(w, d, ev); break;
	default: break;
	}
	poll_detection(w, d, ev->t_ns);
	if (d->swap_active && d->swap_done && !is_keep(d))
		start_disconnect(w, d);
	reschedule(w, d);
}

void dev_swap_started(worker *w, wk_device *d, uint32_t swap_index, int64_t t)
{
	int64_t now = pl_mono_ns();

	if (d->swap_active && !d->swap_done) {
		detect_finish(&d->det, now);
		finish_detection(w, d);
	}
	detect_init(&d->det, is_revoke(d), t, 0, d->group->confirm_ns,
		    d->group->observe_timeout_ns);
	d->swap_active = 1;
	d->swap_done = 0;
	d->swap_index = swap_index;
	d->at_swap = d->total;
	/* The row's counts include the attempt and connection in use at the swap. */
	if (d->conn.state != CONN_IDLE && d->conn.state != CONN_DISCONNECTING)
		d->at_swap.attempts--;
	if (d->conn.state == CONN_SUBSCRIBING || d->conn.state == CONN_READY)
		d->at_swap.connects--;
	if (d->t_next_probe < now)
		d->t_next_probe = now;
	reschedule(w, d);
}

void dev_swap_done(worker *w, wk_device *d, uint32_t swap_index, int64_t t)
{
	(void)w;
	if (d->swap_active && d->swap_index == swap_index)
		detect_set_swap(&d->det, t);
}

void dev_prober_sent(worker *w, wk_device *d, uint64_t seq, int64_t t_send)
{
	(void)w;
	/* Only probes that the device could receive count, so it must have a
	 * SUBACK (granted or refused) on a live connection. */
	if (d->conn.state != CONN_READY || !d->swap_active || d->swap_done)
		return;
	detect_on_sent(&d->det, seq, t_send);
}

void dev_drain(worker *w, wk_device *d, int64_t now)
{
	if (trigger_pending(d))
		trigger_finish(w, d, WP_TRIGGER_NOT_SENT, -1,
			       "no connection got a SUBACK between the TRIGGER and the drain");
	if (d->swap_active && !d->swap_done) {
		detect_finish(&d->det, now);
		finish_detection(w, d);
	}
	start_disconnect(w, d);
	reschedule(w, d);
}

void dev_rescale_slot(worker *w, wk_device *d, int64_t now, double scale)
{
	if (d->t_slot <= now)
		return;
	d->t_slot = now + (int64_t)((double)(d->t_slot - now) * scale);
	reschedule(w, d);
}

int dev_is_idle(const wk_device *d)
{
	return d->conn.state == CONN_IDLE;
}

void dev_free(wk_device *d)
{
	free(d->trigger);
	d->trigger = NULL;
	/* A handle with a pending connect is left to the process exit: destroying
	 * one is where paho crashes. */
	if (d->conn.h != NULL && d->conn.state != CONN_CONNECTING)
		MQTTAsync_destroy(&d->conn.h);
}
