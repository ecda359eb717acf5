/*
 * The worker process: the coordinator channel, the driver loop and the
 * message handlers. One driver thread (the process's main thread) owns every
 * device, paho handle and the timer queue; paho's threads only enqueue
 * events (workers/mqtt.c).
 */
#include "workers/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/parse.h"
#include "workers/tlsreuse.h"
#include "workers/worker_internal.h"

#define COMPONENT "worker"
#define CHAN_OUT_CAP (4u << 20)
#define EVENT_QUEUE_CAP 65536
#define EVENT_BATCH 256
#define MUST_SEND_TIMEOUT_NS (10 * PL_NS_PER_S)
#define DRAIN_TIMEOUT_NS (15 * PL_NS_PER_S)
#define HEARTBEAT_NS PL_NS_PER_S
/*
 * While no connect is pending or scheduled, the driver runs on a tick: it
 * wakes at most every tick (coalescing the probe timers of many devices into
 * one pass) and at least every IDLE_WAIT_NS or tick, whichever is longer, and
 * paho's callbacks only queue.
 * The tick is a fifth of the shortest probe interval, between TICK_MIN_NS and
 * TICK_MAX_NS, so a probe is sent at most a fifth of an interval late. Every
 * event is timestamped in its callback, so the tick delays only reactions
 * (for example the first probe after a SUBACK), never a measured time.
 */
#define TICK_MIN_NS PL_NS_PER_MS
/* A late probe widens the measurement error by up to one tick, so 40 ms keeps
 * it within the interval plus 50 ms. Reconnect attempts start on timers, so
 * their workers keep TICK_MAX_RECONNECT_NS. */
#define TICK_MAX_NS (40 * PL_NS_PER_MS)
#define TICK_MAX_RECONNECT_NS (20 * PL_NS_PER_MS)
#define IDLE_WAIT_NS (20 * PL_NS_PER_MS) /* or the tick, when that is longer */
#define DEFAULT_FD 3
#define WK_EXIT_RUNTIME 3 /* runtime failure, as for every policylag command */

/* Sending --------------------------------------------------------------- */

void wk_send_event(worker *w, const wk_device *d, wp_event_kind kind, int32_t code,
		   const char *text)
{
	wk_send_connect_event(w, d, kind, code, text, -1);
}

void wk_send_connect_event(worker *w, const wk_device *d, wp_event_kind kind, int32_t code,
			   const char *text, int64_t connect_ns)
{
	wp_msg m = { .type = WP_MSG_EVENT };

	m.u.event.device = d != NULL ? d->cfg.index : UINT32_MAX;
	m.u.event.kind = (uint8_t)kind;
	m.u.event.attempt = d != NULL ? d->total.attempts : 0;
	m.u.event.t_ns = pl_mono_ns();
	m.u.event.code = code;
	m.u.event.connect_ns = connect_ns;
	snprintf(m.u.event.text, sizeof(m.u.event.text), "%s", text != NULL ? text : "");
	if (wp_chan_send(w->chan, &m, NULL) != PL_OK)
		w->hb.events_dropped++;
}

/* Sends a message that must not be dropped (EFFECT, RECORD, DONE, READY). */
void wk_send_must(worker *w, const wp_msg *m)
{
	pl_errmsg e;

	if (w->fatal)
		return;
	if (wp_chan_send_wait(w->chan, m, MUST_SEND_TIMEOUT_NS, &e) != PL_OK) {
		PL_ERROR(COMPONENT, "worker %u: sending %s to the coordinator failed: %s",
			 w->hello.worker_index, wp_type_name(m->type), e.msg);
		w->fatal = 1;
	}
}

void wk_send_triggered(worker *w, const wp_triggered *r)
{
	wp_msg m = { .type = WP_MSG_TRIGGERED };

	m.u.triggered = *r;
	wk_send_must(w, &m);
}

static uint32_t rss_kb(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	unsigned long size = 0;
	unsigned long resident = 0;

	if (f == NULL)
		return 0;
	if (fscanf(f, "%lu %lu", &size, &resident) != 2)
		resident = 0;
	fclose(f);
	return (uint32_t)(resident * (unsigned long)sysconf(_SC_PAGESIZE) / 1024);
}

static void send_heartbeat(worker *w, uint32_t ping_seq)
{
	wp_msg m = { .type = WP_MSG_HEARTBEAT };

	w->hb.ping_seq = ping_seq;
	w->hb.t_ns = pl_mono_ns();
	w->hb.devices = w->ndevices;
	w->hb.connecting = w->connecting;
	w->hb.rss_kb = rss_kb();
	m.u.heartbeat = w->hb;
	m.u.heartbeat.events_dropped += mq_queue_dropped(w->events);
	if (wp_chan_send(w->chan, &m, NULL) != PL_OK)
		w->hb.events_dropped++;
}

/* Timers ---------------------------------------------------------------- */

static int timer_stale(void *ctx, const timerq_entry *e)
{
	const worker *w = ctx;

	return e->owner >= w->ndevices || w->devices[e->owner].timer_tag != e->tag;
}

void wk_schedule(worker *w, wk_device *d, int64_t t)
{
	if (t == d->t_timer)
		return;
	d->timer_tag++;
	d->t_timer = t == INT64_MAX ? 0 : t;
	if (t == INT64_MAX)
		return;
	if (timerq_push(w->timers, t, d->slot, d->timer_tag) != PL_OK) {
		/* Cannot happen with one live entry per device and 4 slots each. */
		PL_ERROR(COMPONENT, "timer queue full at %zu entries", timerq_size(w->timers));
		w->fatal = 1;
	}
}

static void run_timers(worker *w, int64_t now)
{
	timerq_entry e;

	while (timerq_pop_due(w->timers, now, &e)) {
		wk_device *d;

		if (timer_stale(w, &e))
			continue;
		d = &w->devices[e.owner];
		d->t_timer = 0;
		dev_on_timer(w, d, now);
	}
	if (w->started)
		prober_on_timer(w, now);
}

/* Connection parameters ------------------------------------------------- */

static int dest_port(const char *host_port)
{
	const char *colon = strrchr(host_port, ':');
	int64_t port = 0;

	if (colon == NULL || pl_parse_int64(colon + 1, 1, 65535, &port, NULL) != PL_OK)
		return 0;
	return (int)port;
}

void wk_conn_params(const worker *w, uint32_t dest_slot, const char *client_id,
		    const char *cert, const char *key, int mqtt_version, mq_params *p,
		    char *uri, size_t uri_len)
{
	const wp_hello *h = &w->hello;
	int port = h->port;

	if (h->dest_count > 0) {
		const char *dest = h->dest[dest_slot % h->dest_count];

		snprintf(uri, uri_len, "ssl://%s", dest);
		port = dest_port(dest);
	} else {
		snprintf(uri, uri_len, "ssl://%s:%u", h->host, (unsigned)h->port);
	}
	*p = (mq_params){ 0 };
	p->uri = uri;
	p->client_id = client_id;
	p->mqtt_version = mqtt_version;
	p->keepalive_s = h->keepalive_s != 0 ? h->keepalive_s : 60;
	p->connect_timeout_s = h->connect_timeout_s != 0 ? h->connect_timeout_s : 10;
	p->ca_path = h->ca_path;
	p->cert_path = cert;
	p->key_path = key;
	p->alpn = port == 443;
}

/* AWS's certificate id: lowercase hex SHA-256 of the certificate's DER. */
static pl_err cert_id_of(const char *path, char out[WP_CERT_ID_MAX], pl_errmsg *e)
{
	FILE *f = fopen(path, "r");
	X509 *x;
	unsigned char *der = NULL;
	unsigned char md[SHA256_DIGEST_LENGTH];
	int len;

	if (f == NULL)
		return pl_errmsg_set(e, PL_ERR_IO, "certificate %s: %s", path, strerror(errno));
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (x == NULL)
		return pl_errmsg_set(e, PL_ERR_PARSE, "certificate %s: not a PEM certificate",
				     path);
	len = i2d_X509(x, &der);
	X509_free(x);
	if (len <= 0)
		return pl_errmsg_set(e, PL_ERR_PARSE, "certificate %s: cannot encode DER", path);
	SHA256(der, (size_t)len, md);
	OPENSSL_free(der);
	for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	return PL_OK;
}

/* Message handlers ------------------------------------------------------ */

static const char *paho_version(void)
{
	MQTTAsync_nameValue *info = MQTTAsync_getVersionInfo();

	for (int i = 0; info != NULL && info[i].name != NULL; i++)
		if (strcmp(info[i].name, "Version") == 0)
			return info[i].value;
	return "unknown";
}

/* The spacing of connect slots for a rate in CONNECTs per second x 1000; 0 = no limit. */
static int64_t connect_period(uint32_t rate_milli)
{
	return rate_milli != 0 ? PL_NS_PER_S * 1000 / rate_milli : 0;
}

static void on_hello(worker *w, const wp_hello *h)
{
	wp_msg m = { .type = WP_MSG_READY };
	struct rlimit rl = { 0 };

	w->hello = *h;
	w->have_hello = 1;
	if (h->log_level <= PL_LOG_DEBUG)
		pl_log_set_level((pl_log_level)h->log_level);
	w->connect_period_ns = connect_period(h->connect_rate_milli);
	getrlimit(RLIMIT_NOFILE, &rl);
	m.u.ready.worker_index = h->worker_index;
	m.u.ready.pid = (uint32_t)getpid();
	m.u.ready.nofile_limit = rl.rlim_cur > UINT32_MAX ? UINT32_MAX : (uint32_t)rl.rlim_cur;
	snprintf(m.u.ready.paho_version, sizeof(m.u.ready.paho_version), "%s", paho_version());
	wk_send_must(w, &m);
}

static void on_group(worker *w, const wp_group *g)
{
	if (g->id >= WK_GROUPS_MAX || g->probe_interval_ns <= 0 || g->observe_timeout_ns <= 0 ||
	    (g->direction == WP_DIRECTION_REVOKE && g->confirm_ns <= 0)) {
		PL_ERROR(COMPONENT, "group %u (%s): invalid settings, rejected", (unsigned)g->id,
			 g->name);
		wk_send_event(w, NULL, WP_EV_ERROR, g->id, "invalid group settings");
		return;
	}
	w->groups[g->id] = *g;
	w->group_known[g->id] = 1;
}

/* Returns the worker's copy of text, made on first use, or NULL when out of memory. */
static const char *string_store(worker *w, const char *text)
{
	uint64_t hash = 1469598103934665603ull;
	size_t len = strlen(text);
	wk_string **bucket;
	wk_string *entry;

	for (size_t i = 0; i < len; i++)
		hash = (hash ^ (uint8_t)text[i]) * 1099511628211ull;
	bucket = &w->strings[hash % WK_STRING_BUCKETS];
	for (entry = *bucket; entry != NULL; entry = entry->next)
		if (strcmp(entry->text, text) == 0)
			return entry->text;
	entry = malloc(sizeof(*entry) + len + 1);
	if (entry == NULL)
		return NULL;
	memcpy(entry->text, text, len + 1);
	entry->next = *bucket;
	*bucket = entry;
	return entry->text;
}

static void strings_free(worker *w)
{
	for (size_t b = 0; b < WK_STRING_BUCKETS; b++) {
		while (w->strings[b] != NULL) {
			wk_string *next = w->strings[b]->next;

			free(w->strings[b]);
			w->strings[b] = next;
		}
	}
}

static pl_err add_device(worker *w, const wp_device *dv, pl_errmsg *e)
{
	uint32_t limit = w->hello.max_devices != 0 && w->hello.max_devices < WK_DEVICES_MAX
				 ? w->hello.max_devices : WK_DEVICES_MAX;
	wk_device *d;

	if (!w->have_hello || w->started)
		return pl_errmsg_set(e, PL_ERR_STATE, "device %u: sent before HELLO or after "
				     "PHASE connect", dv->index);
	if (dv->group >= WK_GROUPS_MAX || !w->group_known[dv->group])
		return pl_errmsg_set(e, PL_ERR_NOT_FOUND, "device %u: unknown group %u",
				     dv->index, (unsigned)dv->group);
	if (w->ndevices >= limit)
		return pl_errmsg_set(e, PL_ERR_LIMIT, "device %u: worker limit of %u devices",
				     dv->index, limit);
	if (w->ndevices == w->cap_devices) {
		uint32_t cap = w->cap_devices != 0 ? w->cap_devices * 2 : 64;
		wk_device *grown = realloc(w->devices, cap * sizeof(*grown));

		if (grown == NULL)
			return pl_errmsg_set(e, PL_ERR_NOMEM, "device table: out of memory");
		w->devices = grown;
		w->cap_devices = cap;
	}
	d = &w->devices[w->ndevices];
	memset(d, 0, sizeof(*d));
	d->cfg.index = dv->index;
	d->cfg.group = dv->group;
	snprintf(d->cfg.client_id, sizeof(d->cfg.client_id), "%s", dv->client_id);
	snprintf(d->cfg.cert_id, sizeof(d->cfg.cert_id), "%s", dv->cert_id);
	d->cfg.cert_path = string_store(w, dv->cert_path);
	d->cfg.key_path = string_store(w, dv->key_path);
	d->cfg.probe_topic = string_store(w, dv->probe_topic);
	if (d->cfg.cert_path == NULL || d->cfg.key_path == NULL || d->cfg.probe_topic == NULL)
		return pl_errmsg_set(e, PL_ERR_NOMEM, "device %u: out of memory", dv->index);
	d->group = &w->groups[dv->group];
	d->slot = w->ndevices;
	if (d->cfg.cert_id[0] == '\0' && cert_id_of(dv->cert_path, d->cfg.cert_id, e) != PL_OK)
		return PL_ERR_INVALID;
	w->ndevices++;
	return PL_OK;
}

/* The driver tick: a fifth of the shortest probe interval of any device's group, clamped. */
static int64_t driver_tick(const worker *w)
{
	int64_t tick = TICK_MAX_NS;

	for (uint32_t i = 0; i < w->ndevices; i++) {
		const wp_group *g = w->devices[i].group;

		if (g->probe_interval_ns / 5 < tick)
			tick = g->probe_interval_ns / 5;
		if (g->strategy != WP_STRATEGY_KEEP && tick > TICK_MAX_RECONNECT_NS)
			tick = TICK_MAX_RECONNECT_NS;
	}
	return tick < TICK_MIN_NS ? TICK_MIN_NS : tick;
}

static void on_phase(worker *w, const wp_phase_msg *p, int64_t now)
{
	pl_errmsg e;

	switch (p->phase) {
	case WP_PHASE_CONNECT:
		if (w->started)
			return;
		if (timerq_create(&w->timers, (size_t)w->ndevices * 4 + 16, timer_stale, w, &e) !=
		    PL_OK) {
			PL_ERROR(COMPONENT, "%s", e.msg);
			w->fatal = 1;
			return;
		}
		w->started = 1;
		w->tick_ns = driver_tick(w);
		w->next_connect_slot = now;
		prober_init(w);
		for (uint32_t i = 0; i < w->ndevices; i++)
			dev_start(w, &w->devices[i], now);
		break;
	case WP_PHASE_PROBE:
		w->probing = 1;
		w->prober_next = now;
		/* Spread the devices' probes over one interval. */
		for (uint32_t i = 0; i < w->ndevices; i++) {
			wk_device *d = &w->devices[i];

			d->t_next_probe = now + d->group->probe_interval_ns * i / w->ndevices;
			if (w->started)
				dev_on_timer(w, d, now);
		}
		break;
	case WP_PHASE_DRAIN:
		w->draining = 1;
		w->t_drain = now;
		for (uint32_t i = 0; i < w->ndevices && w->started; i++)
			dev_drain(w, &w->devices[i], now);
		prober_drain(w);
		break;
	default:
		PL_WARN(COMPONENT, "unknown phase %u ignored", (unsigned)p->phase);
	}
}

static void on_swap(worker *w, const wp_swap *s)
{
	uint64_t end = s->count == WP_ALL_DEVICES ? UINT64_MAX : (uint64_t)s->first + s->count;

	for (uint32_t i = 0; i < w->ndevices && w->started; i++) {
		wk_device *d = &w->devices[i];

		if (d->cfg.index < s->first || d->cfg.index >= end)
			continue;
		if (s->kind == WP_SWAP_STARTED)
			dev_swap_started(w, d, s->swap_index, s->t_ns);
		else
			dev_swap_done(w, d, s->swap_index, s->t_ns);
	}
}

static wk_device *find_device(worker *w, uint32_t index)
{
	for (uint32_t i = 0; i < w->ndevices; i++)
		if (w->devices[i].cfg.index == index)
			return &w->devices[i];
	return NULL;
}

/* Hands a TRIGGER to its device, or replies NOT_SENT when it cannot be published. */
static void on_trigger(worker *w, const wp_trigger *t)
{
	wk_device *d = find_device(w, t->device);
	const char *why = NULL;
	wp_triggered r = { .device = t->device, .swap_index = t->swap_index,
			   .outcome = WP_TRIGGER_NOT_SENT, .code = -1 };

	if (d == NULL)
		why = "the device is not assigned to this worker";
	else if (!w->started || w->draining)
		why = "TRIGGER sent outside the connect-to-drain phases";
	else if (t->qos > 1)
		why = "TRIGGER with a QoS other than 0 or 1";
	else if (d->trigger != NULL)
		why = "the device's previous TRIGGER is not finished";
	if (why == NULL) {
		dev_trigger(w, d, t);
		return;
	}
	PL_WARN(COMPONENT, "worker %u: trigger for device %u rejected: %s", w->hello.worker_index,
		t->device, why);
	r.t_done_ns = pl_mono_ns();
	snprintf(r.text, sizeof(r.text), "%s", why);
	wk_send_triggered(w, &r);
}

/*
 * Takes a new connect-rate share. Slots reserved at the old spacing but not
 * yet reached are rescaled around now, so the devices keep their order and
 * the queue ahead drains at the new rate.
 */
static void on_rate(worker *w, const wp_rate *r, int64_t now)
{
	int64_t old_period = w->connect_period_ns;
	int64_t new_period = connect_period(r->connect_rate_milli);
	double scale;

	if (r->connect_rate_milli == 0) {
		/* 0 would lift the limit, which the coordinator never sends. */
		PL_WARN(COMPONENT, "worker %u: RATE with connect rate 0 ignored",
			w->hello.worker_index);
		return;
	}
	if (new_period == old_period)
		return;
	w->connect_period_ns = new_period;
	PL_DEBUG(COMPONENT, "worker %u: connect rate %.3f/s", w->hello.worker_index,
		 (double)r->connect_rate_milli / 1000.0);
	if (!w->started || old_period == 0)
		return;
	scale = (double)new_period / (double)old_period;
	for (uint32_t i = 0; i < w->ndevices; i++)
		dev_rescale_slot(w, &w->devices[i], now, scale);
	if (w->next_connect_slot > now)
		w->next_connect_slot = now + (int64_t)((double)(w->next_connect_slot - now) * scale);
}

static void handle_msg(worker *w, const wp_msg *m, int64_t now)
{
	pl_errmsg e;

	switch (m->type) {
	case WP_MSG_HELLO: on_hello(w, &m->u.hello); break;
	case WP_MSG_GROUP: on_group(w, &m->u.group); break;
	case WP_MSG_DEVICE:
		if (add_device(w, &m->u.device, &e) != PL_OK) {
			PL_ERROR(COMPONENT, "%s", e.msg);
			wk_send_event(w, NULL, WP_EV_ERROR, (int32_t)m->u.device.index, e.msg);
		}
		break;
	case WP_MSG_PHASE: on_phase(w, &m->u.phase, now); break;
	case WP_MSG_SWAP: on_swap(w, &m->u.swap); break;
	case WP_MSG_PING:
		send_heartbeat(w, m->u.ping.seq);
		break;
	case WP_MSG_RATE: on_rate(w, &m->u.rate, now); break;
	case WP_MSG_TRIGGER: on_trigger(w, &m->u.trigger); break;
	default:
		PL_WARN(COMPONENT, "unexpected %s message ignored", wp_type_name(m->type));
	}
}

/* Reads and handles the coordinator's messages; returns -1 when the channel ended. */
static int read_channel(worker *w, int64_t now)
{
	pl_errmsg e;
	wp_msg m;
	int got;
	pl_err rc = wp_chan_fill(w->chan, &e);

	while ((got = wp_chan_next(w->chan, &m, &e)) > 0)
		handle_msg(w, &m, now);
	if (got < 0 || (rc != PL_OK && rc != PL_ERR_NOT_FOUND)) {
		PL_ERROR(COMPONENT, "coordinator channel: %s", e.msg);
		return -1;
	}
	return rc == PL_ERR_NOT_FOUND ? -1 : 0;
}

static void on_sentinel_event(worker *w, const mq_event *ev)
{
	if (ev->kind == MQ_CONNECTED)
		w->waker.connected = 1;
	else if (ev->kind == MQ_CONNECTION_LOST)
		PL_WARN(COMPONENT, "the sentinel client lost its connection");
}

static void dispatch_events(worker *w)
{
	mq_event batch[EVENT_BATCH];
	size_t n;

	while ((n = mq_queue_drain(w->events, batch, EVENT_BATCH)) > 0) {
		for (size_t i = 0; i < n; i++) {
			const mq_event *ev = &batch[i];

			if (ev->owner == WK_OWNER_PROBER)
				prober_on_event(w, ev);
			else if (ev->owner == WK_OWNER_SENTINEL)
				on_sentinel_event(w, ev);
			else if (ev->owner < w->ndevices && w->started)
				dev_on_event(w, &w->devices[ev->owner], ev);
		}
		if (n < EVENT_BATCH)
			break;
	}
}

/* Driver loop ----------------------------------------------------------- */

static int all_idle(const worker *w)
{
	for (uint32_t i = 0; i < w->ndevices; i++)
		if (!dev_is_idle(&w->devices[i]))
			return 0;
	return prober_is_idle(w);
}

static int64_t next_deadline(const worker *w, int64_t now)
{
	int64_t t = w->next_heartbeat;
	int64_t x;

	if (w->timers != NULL && (x = timerq_next(w->timers)) < t)
		t = x;
	if ((x = waker_next_kick(w, now)) < t)
		t = x;
	if (w->started && (x = prober_next_time(w)) < t)
		t = x;
	return t;
}

/*
 * Fast mode (wake on every event and at every deadline) while connects are
 * pending or draining, and while connect-rate slots lie ahead: a tick would
 * otherwise start two slots' connects together, and the second handshake
 * would wait for the first in paho's receive thread.
 */
static int fast_mode(const worker *w, int64_t now)
{
	int slots_ahead = w->connect_period_ns > 0 &&
			  now < w->next_connect_slot - w->connect_period_ns;

	return w->connecting > 0 || w->draining || now < w->kick_until || !w->started ||
	       slots_ahead;
}

static int64_t wait_ns(worker *w, int64_t now)
{
	int64_t wait = next_deadline(w, now) - now;
	int fast = fast_mode(w, now);

	if (fast != w->notify_on) {
		mq_queue_set_notify(w->events, fast);
		w->notify_on = fast;
	}
	if (!fast) {
		int64_t min = w->last_wake + w->tick_ns - now;
		int64_t idle = w->tick_ns > IDLE_WAIT_NS ? w->tick_ns : IDLE_WAIT_NS;

		if (wait > idle)
			wait = idle;
		if (wait < min)
			wait = min;
	}
	return wait < 0 ? 0 : wait;
}

static void wait_for_work(worker *w, int64_t now)
{
	struct pollfd p[3];
	int64_t wait = wait_ns(w, now);
	struct timespec ts;
	int n = 0;

	ts.tv_sec = (time_t)(wait / PL_NS_PER_S);
	ts.tv_nsec = (long)(wait % PL_NS_PER_S);
	p[n++] = (struct pollfd){ wp_chan_fd(w->chan),
				  (short)(POLLIN | (wp_chan_pending(w->chan) ? POLLOUT : 0)), 0 };
	p[n++] = (struct pollfd){ mq_queue_fd(w->events), POLLIN, 0 };
	p[n++] = (struct pollfd){ w->waker.conn_fd >= 0 ? w->waker.conn_fd : w->waker.listen_fd,
				  POLLIN, 0 };
	if (ppoll(p, (nfds_t)n, &ts, NULL) < 0 && errno != EINTR)
		PL_WARN(COMPONENT, "ppoll: %s", strerror(errno));
	if (p[2].revents & POLLIN)
		waker_on_readable(w);
}

/* One pass: channel, paho events, timers, kicks, heartbeat. Returns 1 to stop. */
static int drive_once(worker *w)
{
	int64_t now;

	wait_for_work(w, pl_mono_ns());
	now = pl_mono_ns();
	w->last_wake = now;
	if (read_channel(w, now) < 0)
		return 1;
	dispatch_events(w);
	now = pl_mono_ns();
	if (w->timers != NULL)
		run_timers(w, now);
	waker_kick(w, now);
	if (now >= w->next_heartbeat) {
		send_heartbeat(w, 0);
		w->next_heartbeat = now + HEARTBEAT_NS;
	}
	if (wp_chan_pending(w->chan) > 0 && wp_chan_flush(w->chan, NULL) != PL_OK)
		return 1;
	return w->fatal;
}

/*
 * Waits (up to 3 s) until the sentinel is connected, so that the waker works
 * from the first device connect on. The sentinel's own connect still goes
 * through paho's slow first cycles.
 */
static void wait_for_sentinel(worker *w)
{
	int64_t deadline = pl_mono_ns() + 3 * PL_NS_PER_S;

	while (!w->waker.connected && pl_mono_ns() < deadline) {
		struct pollfd p[2] = {
			{ mq_queue_fd(w->events), POLLIN, 0 },
			{ w->waker.conn_fd >= 0 ? w->waker.conn_fd : w->waker.listen_fd, POLLIN, 0 },
		};

		if (poll(p, 2, 10) > 0 && (p[1].revents & POLLIN))
			waker_on_readable(w);
		dispatch_events(w);
	}
	if (!w->waker.connected)
		PL_WARN(COMPONENT, "the sentinel client did not connect within 3 s; connect "
			"latencies may include paho's poll delay");
}

static void finish(worker *w)
{
	wp_msg m = { .type = WP_MSG_DONE };

	if (!all_idle(w))
		PL_WARN(COMPONENT, "worker %u: drain timed out with connections still open",
			w->hello.worker_index);
	m.u.done.records = w->records_sent;
	wk_send_must(w, &m);
}

static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			PL_WARN(COMPONENT, "raising RLIMIT_NOFILE failed: %s", strerror(errno));
	}
}

static void worker_cleanup(worker *w)
{
	wk_tls_reuse_stats st;

	wk_tls_reuse_stats_get(&st);
	PL_INFO(COMPONENT,
		"worker %u: TLS credential files parsed %zu times, reused %zu times; "
		"%zu connections used a shared SSL_CTX",
		w->hello.worker_index, st.parsed, st.reused, wk_tls_share_count());
	for (uint32_t i = 0; i < w->ndevices; i++)
		dev_free(&w->devices[i]);
	if (w->prober.h != NULL)
		MQTTAsync_destroy(&w->prober.h);
	waker_stop(w);
	timerq_free(w->timers);
	free(w->devices);
	strings_free(w);
}

/*
 * Turns on the shared SSL_CTX (tlsreuse.h) only under the paho releases whose
 * SSLSocket.c was read for it, 1.3.11 and 1.3.12 (the same file). They
 * configure each context with setters that tlsshare.c compares or records,
 * call SSL_new once and then only SSL_CTX_free it. Another release could set
 * something tlsshare.c cannot see. Debian's 1.3.12 package reports "1.3.11".
 */
static void enable_tls_share(void)
{
	const char *version = paho_version();

	if (strcmp(version, "1.3.11") == 0 || strcmp(version, "1.3.12") == 0)
		wk_tls_share_enable();
	else
		PL_INFO(COMPONENT, "paho %s is not 1.3.11 or 1.3.12: one SSL_CTX per connection",
			version);
}

int worker_run(int fd)
{
	worker *w = calloc(1, sizeof(*w));
	pl_errmsg e;
	int status = WK_EXIT_RUNTIME;

	if (w == NULL)
		return WK_EXIT_RUNTIME;
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	wk_tls_reuse_enable();
	enable_tls_share();
	if (wp_chan_create(&w->chan, fd, CHAN_OUT_CAP, &e) != PL_OK ||
	    mq_queue_create(&w->events, EVENT_QUEUE_CAP, &e) != PL_OK)
		goto fail;
	mq_set_queue(w->events);
	if (waker_start(w, &e) != PL_OK)
		goto fail;
	wait_for_sentinel(w);
	w->next_heartbeat = pl_mono_ns() + HEARTBEAT_NS;
	w->notify_on = 1;
	for (;;) {
		if (drive_once(w))
			break;
		if (w->draining && (all_idle(w) || pl_mono_ns() - w->t_drain > DRAIN_TIMEOUT_NS)) {
			finish(w);
			status = w->fatal ? WK_EXIT_RUNTIME : 0;
			break;
		}
	}
	goto cleanup;
fail:
	PL_ERROR(COMPONENT, "worker start failed: %s", e.msg);
cleanup:
	worker_cleanup(w);
	/* The queue outlives every handle, so it goes after them. */
	mq_queue_free(w->events);
	wp_chan_free(w->chan);
	free(w);
	return status;
}

int worker_main(int argc, char **argv)
{
	int64_t fd = DEFAULT_FD;
	pl_errmsg e;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--fd") == 0 && i + 1 < argc) {
			if (pl_parse_int64(argv[++i], 0, 65535, &fd, &e) != PL_OK) {
				fprintf(stderr, "policylag worker: --fd: %s\n", e.msg);
				return 2;
			}
		} else {
			fprintf(stderr, "policylag worker: unknown argument '%s' (this subcommand "
				"is started by 'policylag run')\n", argv[i]);
			return 2;
		}
	}
	if (fcntl((int)fd, F_GETFD) < 0) {
		fprintf(stderr, "policylag worker: descriptor %d is not open; it must be the "
			"coordinator's socket (this subcommand is started by 'policylag run')\n",
			(int)fd);
		return WK_EXIT_RUNTIME;
	}
	return worker_run((int)fd);
}
