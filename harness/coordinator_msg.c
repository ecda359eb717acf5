/* The coordinator's handling of worker messages, device rows and worker deaths. */
#include "harness/coordinator.h"

#include <assert.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "harness/observer.h"
#include "harness/swap_trigger.h"
#include "harness/truth.h"

#define COMPONENT "coordinator"

void coord_event(coordinator *c, int64_t t_ns, const char *type, const char *device,
		 const char *fields_json)
{
	static int reported;
	pl_errmsg e = { "" };

	if (rundir_append_event(c->rd, t_ns, type, device, fields_json, &e) != PL_OK &&
	    !reported) {
		reported = 1;
		COORD_LOG(c, PL_LOG_ERROR, "%s; later event write errors are not logged", e.msg);
	}
}

void coord_request_stop(coordinator *c, const char *reason)
{
	char fields[192];
	char reason_json[160];

	if (c->interrupted)
		return;
	c->interrupted = 1;
	c->t_interrupt_ns = pl_mono_ns();
	snprintf(c->interrupt_reason, sizeof(c->interrupt_reason), "%s", reason);
	progress_end_line(c->progress);
	PL_WARN(COMPONENT, "stopping the run: %s (a second Ctrl-C stops at once)", reason);
	rundir_json_string(reason_json, sizeof(reason_json), reason);
	snprintf(fields, sizeof(fields), "\"reason\":%s,\"phase\":\"%s\"", reason_json,
		 coord_phase_name(c->phase));
	coord_event(c, c->t_interrupt_ns, "interrupt", NULL, fields);
}

/* Finds the coordinator's device for a fleet index, or NULL. */
static coord_device *find_device(coordinator *c, uint32_t index)
{
	if (index < c->first_index || index - c->first_index >= c->ndevices)
		return NULL;
	return &c->devices[index - c->first_index];
}

/* AWS's lifecycle disconnect reason for an MQTT 5 DISCONNECT reason code. */
static const char *disconnect_reason(int32_t code)
{
	switch (code) {
	case 0x8E:
		return "DUPLICATE_CLIENTID";
	case 0x87:
		return "FORBIDDEN_ACCESS";
	case 0x97:
		return "THROTTLED";
	case 0x8D:
		return "MQTT_KEEP_ALIVE_TIMEOUT";
	case 0x8B:
		return "SERVER_INITIATED_DISCONNECT";
	case 0x00:
		return "CLIENT_INITIATED_DISCONNECT";
	default:
		return "UNKNOWN";
	}
}

/* The operation a throttle event names in its text: connect, subscribe or publish. */
static const char *throttle_op(const char *text)
{
	if (strstr(text, "subscribe") != NULL)
		return "subscribe";
	if (strstr(text, "publish") != NULL)
		return "publish";
	if (strstr(text, "connect") != NULL)
		return "connect";
	return "other";
}

static const char *const event_types[] = {
	[WP_EV_CONNECTED] = "connect",
	[WP_EV_CONNECT_FAILED] = "connect_failed",
	[WP_EV_SUBSCRIBED] = "subscribe",
	[WP_EV_SUBSCRIBE_FAILED] = "subscribe_failed",
	[WP_EV_DISCONNECTED] = "disconnect",
	[WP_EV_THROTTLED] = "throttle",
	[WP_EV_ERROR] = "error",
	[WP_EV_PROBE_LATE] = "probe_late",
	[WP_EV_PUBLISH_FAILED] = "publish_failed",
};

/* Updates the device and the counters for one worker event. */
static void count_event(coordinator *c, coord_device *d, const wp_event *ev)
{
	switch (ev->kind) {
	case WP_EV_CONNECTED:
		c->counts.connects++;
		if (!d->connected)
			c->counts.connected++;
		d->connected = 1;
		if (!d->ever_connected)
			d->t_connect_ns = ev->t_ns;
		d->ever_connected = 1;
		break;
	case WP_EV_CONNECT_FAILED:
		c->counts.connect_failures++;
		break;
	case WP_EV_SUBSCRIBED:
		if (!d->subscribed)
			c->counts.subscribed++;
		d->subscribed = 1;
		break;
	case WP_EV_DISCONNECTED:
		c->counts.disconnects++;
		if (d->connected)
			c->counts.connected--;
		d->connected = 0;
		break;
	case WP_EV_THROTTLED:
		c->counts.throttled++;
		break;
	case WP_EV_ERROR:
	case WP_EV_SUBSCRIBE_FAILED:
	case WP_EV_PUBLISH_FAILED:
		if (d->errors++ == 0)
			c->counts.errors++;
		break;
	default:
		break;
	}
}

static void handle_event(coordinator *c, coord_worker *w, const wp_event *ev)
{
	coord_device *d = find_device(c, ev->device);
	char fields[WP_TEXT_MAX * 2 + 160];
	char text_json[WP_TEXT_MAX * 2];
	int n;

	if (ev->kind < sizeof(event_types) / sizeof(event_types[0]) && ev->device == UINT32_MAX) {
		/* An event of the worker itself, e.g. its prober falling behind. */
		rundir_json_string(text_json, sizeof(text_json), ev->text);
		snprintf(fields, sizeof(fields), "\"worker\":%d,\"code\":%d,\"text\":%s", w->index,
			 ev->code, text_json);
		coord_event(c, ev->t_ns, event_types[ev->kind], NULL, fields);
		return;
	}
	if (d == NULL || ev->kind >= sizeof(event_types) / sizeof(event_types[0])) {
		COORD_LOG(c, PL_LOG_WARN, "worker %d: event for unknown device %u or kind %u", w->index,
			ev->device, ev->kind);
		return;
	}
	count_event(c, d, ev);
	coord_rate_on_event(c, d, ev);
	rundir_json_string(text_json, sizeof(text_json), ev->text);
	n = snprintf(fields, sizeof(fields),
		     "\"worker\":%d,\"attempt\":%u,\"code\":%d,\"%s\":%s", w->index,
		     ev->attempt, ev->code, ev->kind == WP_EV_ERROR ? "message" : "text", text_json);
	if (ev->kind == WP_EV_DISCONNECTED && n > 0 && (size_t)n < sizeof(fields))
		snprintf(fields + n, sizeof(fields) - (size_t)n, ",\"reason\":\"%s\"",
			 disconnect_reason(ev->code));
	else if (ev->kind == WP_EV_THROTTLED && n > 0 && (size_t)n < sizeof(fields))
		snprintf(fields + n, sizeof(fields) - (size_t)n, ",\"op\":\"%s\"",
			 throttle_op(ev->text));
	else if (ev->connect_ns >= 0 && n > 0 && (size_t)n < sizeof(fields))
		snprintf(fields + n, sizeof(fields) - (size_t)n, ",\"connect_ns\":%lld",
			 (long long)ev->connect_ns);
	coord_event(c, ev->t_ns, event_types[ev->kind], d->name, fields);
}

static void handle_timing(coordinator *c, coord_worker *w, const wp_timing *t)
{
	coord_device *d = find_device(c, t->device);
	char fields[256];

	if (d == NULL)
		return;
	snprintf(fields, sizeof(fields),
		 "\"worker\":%d,\"attempt\":%u,\"connect_ns\":%lld,\"subscribe_ns\":%lld,"
		 "\"probe_rtt_ns\":%lld,\"suback_code\":%d",
		 w->index, t->attempt, (long long)t->connect_ns, (long long)t->subscribe_ns,
		 (long long)t->probe_rtt_ns, t->suback_code);
	coord_event(c, t->t_connect_call_ns, "attempt", d->name, fields);
}

static void handle_effect(coordinator *c, coord_worker *w, const wp_effect *ef)
{
	coord_device *d = find_device(c, ef->device);
	char fields[64];

	if (d == NULL || d->effective)
		return;
	d->effective = 1;
	d->t_effect_ns = ef->t_effect_ns;
	c->counts.effective++;
	snprintf(fields, sizeof(fields), "\"worker\":%d,\"swap_index\":%u", w->index,
		 ef->swap_index);
	coord_event(c, ef->t_effect_ns, "effect", d->name, fields);
}

void coord_handle_msg(coordinator *c, coord_worker *w, const wp_msg *m)
{
	switch (m->type) {
	case WP_MSG_READY:
		w->ready = 1;
		PL_DEBUG(COMPONENT, "worker %d ready: pid %u, nofile %u, paho %s", w->index,
			 m->u.ready.pid, m->u.ready.nofile_limit, m->u.ready.paho_version);
		break;
	case WP_MSG_EVENT:
		handle_event(c, w, &m->u.event);
		break;
	case WP_MSG_TIMING:
		handle_timing(c, w, &m->u.timing);
		break;
	case WP_MSG_EFFECT:
		handle_effect(c, w, &m->u.effect);
		break;
	case WP_MSG_RECORD:
		coord_write_record(c, &m->u.record);
		break;
	case WP_MSG_HEARTBEAT:
		w->heartbeat = m->u.heartbeat;
		break;
	case WP_MSG_TRIGGERED:
		swap_trigger_on_reply(c, w, &m->u.triggered);
		break;
	case WP_MSG_DONE:
		w->done = 1;
		PL_DEBUG(COMPONENT, "worker %d done: %u records", w->index, m->u.done.records);
		break;
	default:
		COORD_LOG(c, PL_LOG_WARN, "worker %d sent unexpected %s", w->index,
			wp_type_name(m->type));
		break;
	}
}

/* The device's true effect time from the simulator's snapshots, or RUNDIR_TIME_UNKNOWN. */
static int64_t device_truth(const coordinator *c, const coord_device *d, int64_t from)
{
	return truth_effect(c->truth, d->name, from, c->prof->swap.direction != PROFILE_SWAP_GRANT);
}

/* Adds the simulator's ground truth to a row, when it is loaded. */
static void add_truth(coordinator *c, const coord_device *d, rundir_sample *s)
{
	int64_t from = d->t_change_ns != RUNDIR_TIME_UNKNOWN ? d->t_change_ns : s->t_swap_start_ns;
	int64_t truth;

	if (c->truth == NULL || s->censored || from == RUNDIR_TIME_UNKNOWN)
		return;
	truth = device_truth(c, d, from);
	if (truth == RUNDIR_TIME_UNKNOWN)
		return;
	s->truth_effect_ns = truth;
	s->truth_error_ns = s->t_effect_ns - truth;
	c->truth_rows++;
	c->truth_error_sum += llabs(s->truth_error_ns);
	if (llabs(s->truth_error_ns) > c->truth_error_max)
		c->truth_error_max = llabs(s->truth_error_ns);
}

static void write_row(coordinator *c, coord_device *d, rundir_sample *s)
{
	pl_errmsg e = { "" };

	/* A censored row's t_effect_ns holds when observation ended. */
	if (s->censored)
		s->t_censor_ns = s->t_effect_ns;

	/* The measurement window ends at the effect or at the censoring. */
	if (s->latency_ns != RUNDIR_TIME_UNKNOWN)
		s->excluded = coord_observer_confounder(c, d, s->t_swap_start_ns, s->t_effect_ns);
	add_truth(c, d, s);
	if (rundir_append_sample(c->rd, s, &e) != PL_OK) {
		COORD_LOG(c, PL_LOG_ERROR, "%s", e.msg);
		c->failed = 1;
		snprintf(c->failure, sizeof(c->failure), "%s", e.msg);
		return;
	}
	d->recorded = 1;
	d->censored = s->censored ? 1 : 0;
	d->latency_ns = s->latency_ns;
	d->excluded = s->excluded != NULL;
	c->excluded += s->excluded != NULL;
	c->samples_written++;
	if (s->censored)
		c->counts.censored++;
}

/* Fills the columns every row takes from the profile and the device. */
static void base_sample(const coordinator *c, const coord_device *d, rundir_sample *s)
{
	const profile *p = c->prof;

	memset(s, 0, sizeof(*s));
	s->device = d->name;
	s->client_id = d->name;
	s->cert_id = d->identity != NULL ? d->identity->cert_id : "";
	s->group = p->groups[d->group].name;
	s->strategy = profile_strategy_name(p->groups[d->group].strategy);
	s->direction = p->swap.direction == PROFILE_SWAP_GRANT ? "grant" : "revoke";
	s->swap = profile_swap_kind_name(p->swap.kind);
	s->worker = d->worker;
	s->t_connect_ns = d->t_connect_ns;
	s->t_swap_start_ns = d->t_swap_start_ns;
	s->t_swap_ns = d->t_swap_ns;
	s->truth_effect_ns = RUNDIR_TIME_UNKNOWN;
	s->truth_error_ns = RUNDIR_TIME_UNKNOWN;
	s->t_censor_ns = RUNDIR_TIME_UNKNOWN;
	s->t_effect_ns = RUNDIR_TIME_UNKNOWN;
	s->latency_ns = RUNDIR_TIME_UNKNOWN;
}

/* The time latencies count from: t_swap, or t_swap_start when t_swap is unknown. */
static int64_t latency_origin(int64_t t_swap_start, int64_t t_swap)
{
	return t_swap != RUNDIR_TIME_UNKNOWN ? t_swap : t_swap_start;
}

/* Converts a worker's RECORD into a row for device d. */
static void record_sample(coordinator *c, const coord_device *d, const wp_record *r,
			  rundir_sample *s)
{
	base_sample(c, d, s);
	s->client_id = r->client_id;
	if (r->cert_id[0] != '\0')
		s->cert_id = r->cert_id;
	s->swap_index = (int)r->swap_index;
	s->worker = (int)r->worker;
	s->t_swap_start_ns = r->t_swap_start_ns;
	s->t_swap_ns = r->t_swap_ns != 0 ? r->t_swap_ns : RUNDIR_TIME_UNKNOWN;
	s->t_effect_ns = r->t_effect_ns;
	s->latency_ns = r->latency_ns;
	s->censored = r->censored;
	s->censor_reason = "timeout";
	s->attempts = r->attempts;
	s->connects = r->connects;
	s->connect_failures = r->connect_failures;
	s->throttled = r->throttled;
	s->errors = r->errors + d->errors;
	/* A device whose swap never started was never measured. */
	if (r->t_swap_start_ns == 0) {
		s->t_swap_start_ns = RUNDIR_TIME_UNKNOWN;
		s->latency_ns = RUNDIR_TIME_UNKNOWN;
		s->censored = 1;
		s->t_effect_ns = c->interrupted ? c->t_interrupt_ns : pl_mono_ns();
		s->censor_reason = c->interrupted ? "interrupted"
				   : d->swap_failed ? "swap-failed" : "no-swap";
		return;
	}
	/* A device still waiting when the run was stopped is censored at the stop. */
	if (c->interrupted && r->censored && r->t_effect_ns > c->t_interrupt_ns) {
		s->t_effect_ns = c->t_interrupt_ns;
		s->latency_ns = c->t_interrupt_ns - latency_origin(s->t_swap_start_ns, s->t_swap_ns);
		s->censor_reason = "interrupted";
	}
}

/* How long a row waits for its ground-truth line before it is written without. */
#define TRUTH_WAIT_NS (3 * PL_NS_PER_S)
/*
 * How long every row waits while the observer runs, so that a lifecycle
 * event published before the effect but delivered after it still excludes
 * the row. NOTE: an estimate of the delivery delay; AWS documents none.
 */
#define OBSERVER_WAIT_NS (2 * PL_NS_PER_S)
#define TRUTH_READ_INTERVAL_NS (200 * PL_NS_PER_MS)

static void read_truth(coordinator *c, int force)
{
	int64_t now = pl_mono_ns();
	pl_errmsg e = { "" };

	if (c->truth == NULL || c->truth_path == NULL)
		return;
	if (!force && now - c->t_truth_read_ns < TRUTH_READ_INTERVAL_NS)
		return;
	c->t_truth_read_ns = now;
	if (truth_update(c->truth, c->truth_path, &e) != PL_OK)
		COORD_LOG(c, PL_LOG_WARN, "ground truth: %s", e.msg);
}

/* Whether the row of r should wait for a ground-truth line not read yet. */
static int wants_truth(coordinator *c, const coord_device *d, const wp_record *r)
{
	int64_t from = d->t_change_ns != RUNDIR_TIME_UNKNOWN ? d->t_change_ns : r->t_swap_start_ns;

	if (c->truth == NULL || r->censored)
		return 0;
	read_truth(c, 0);
	return device_truth(c, d, from) == RUNDIR_TIME_UNKNOWN;
}

static void push_pending(coordinator *c, coord_device *d, const wp_record *r)
{
	if (c->npending == c->pending_cap) {
		size_t cap = c->pending_cap ? c->pending_cap * 2 : 64;
		wp_record *rows = realloc(c->pending, cap * sizeof(*rows));
		int64_t *since = rows != NULL ? realloc(c->pending_since, cap * sizeof(*since))
					      : NULL;

		if (rows != NULL)
			c->pending = rows;
		if (since == NULL) {
			rundir_sample s;

			COORD_LOG(c, PL_LOG_WARN, "out of memory for pending rows; writing %s without truth",
				d->name);
			record_sample(c, d, r, &s);
			write_row(c, d, &s);
			return;
		}
		c->pending_since = since;
		c->pending_cap = cap;
	}
	c->pending[c->npending] = *r;
	c->pending_since[c->npending] = pl_mono_ns();
	c->npending++;
	d->recorded = 1; /* the row is owned by the pending list now */
}

void coord_write_record(coordinator *c, const wp_record *r)
{
	coord_device *d = find_device(c, r->device);
	rundir_sample s;

	if (d == NULL || d->recorded)
		return;
	if (!r->censored && !d->effective) {
		d->effective = 1;
		d->t_effect_ns = r->t_effect_ns;
		c->counts.effective++;
	}
	if (wants_truth(c, d, r) || c->observer != NULL) {
		push_pending(c, d, r);
		return;
	}
	record_sample(c, d, r, &s);
	write_row(c, d, &s);
}

/* Whether a pending row, waiting for waited_ns so far, should wait longer. */
static int row_waits(coordinator *c, const coord_device *d, const wp_record *r,
		     int64_t waited_ns)
{
	int64_t from = d->t_change_ns != RUNDIR_TIME_UNKNOWN ? d->t_change_ns : r->t_swap_start_ns;

	if (c->observer != NULL && waited_ns < OBSERVER_WAIT_NS)
		return 1;
	return waited_ns < TRUTH_WAIT_NS && c->truth != NULL && !r->censored &&
	       device_truth(c, d, from) == RUNDIR_TIME_UNKNOWN;
}

void coord_flush_pending(coordinator *c, int force)
{
	int64_t now;
	size_t kept = 0;

	coord_observer_poll(c);
	if (c->npending == 0)
		return;
	now = pl_mono_ns();
	read_truth(c, force);
	for (size_t i = 0; i < c->npending; i++) {
		const wp_record *r = &c->pending[i];
		coord_device *d = find_device(c, r->device); /* not NULL: checked on arrival */
		rundir_sample s;

		assert(d != NULL);
		if (!force && row_waits(c, d, r, now - c->pending_since[i])) {
			c->pending[kept] = *r;
			c->pending_since[kept++] = c->pending_since[i];
			continue;
		}
		record_sample(c, d, r, &s);
		write_row(c, d, &s);
	}
	c->npending = kept;
}

/* Writes the row of a device whose worker sent no RECORD. */
static void write_coordinator_row(coordinator *c, coord_device *d, const char *reason,
				  int64_t t_ns)
{
	rundir_sample s;
	int64_t origin;

	base_sample(c, d, &s);
	s.errors = d->errors;
	s.connects = d->ever_connected ? 1 : 0;
	s.attempts = s.connects; /* at least; the worker's own count is lost */
	origin = latency_origin(d->t_swap_start_ns, d->t_swap_ns);
	if (d->effective) {
		s.t_effect_ns = d->t_effect_ns;
	} else {
		s.censored = 1;
		s.censor_reason = reason;
		s.t_effect_ns = t_ns;
	}
	if (origin != RUNDIR_TIME_UNKNOWN)
		s.latency_ns = s.t_effect_ns - origin;
	write_row(c, d, &s);
}

void coord_censor_remaining(coordinator *c, const char *reason, int64_t t_ns)
{
	for (uint32_t i = 0; i < c->ndevices; i++)
		if (!c->devices[i].recorded)
			write_coordinator_row(c, &c->devices[i],
					      c->devices[i].swap_failed ? "swap-failed" : reason, t_ns);
}

/* Describes how a worker ended, e.g. "killed by signal 9". */
static void describe_exit(const coord_worker *w, char *buf, size_t len)
{
	if (!w->reaped)
		snprintf(buf, len, "still running");
	else if (WIFSIGNALED(w->exit_status))
		snprintf(buf, len, "killed by signal %d", WTERMSIG(w->exit_status));
	else
		snprintf(buf, len, "exit status %d", WEXITSTATUS(w->exit_status));
}

void coord_worker_died(coordinator *c, coord_worker *w, const char *why)
{
	char how[64];
	char fields[256];
	int64_t now = pl_mono_ns();

	if (w->dead) {
		return;
	}
	w->dead = 1;
	w->t_dead_ns = now;
	if (w->chan != NULL) {
		wp_chan_free(w->chan);
		w->chan = NULL;
	}
	if (w->fd >= 0) {
		close(w->fd);
		w->fd = -1;
	}
	if (why == NULL)
		return; /* a normal exit after DONE */
	describe_exit(w, how, sizeof(how));
	COORD_LOG(c, PL_LOG_ERROR, "worker %d (pid %d) died: %s (%s); its %u devices are censored",
		 w->index, (int)w->pid, why, how, w->count);
	snprintf(fields, sizeof(fields),
		 "\"worker\":%d,\"pid\":%d,\"why\":\"%s\",\"exit\":\"%s\",\"devices\":%u",
		 w->index, (int)w->pid, why, how, w->count);
	coord_event(c, now, "worker_died", NULL, fields);
	for (uint32_t i = 0; i < w->count; i++) {
		coord_device *d = &c->devices[w->first + i];

		if (d->recorded)
			continue;
		if (d->connected)
			c->counts.connected--;
		d->connected = 0;
		write_coordinator_row(c, d, "worker-died", now);
	}
}

void coord_show_progress(coordinator *c, int force)
{
	progress_counts pc = {
		.phase = coord_phase_name(c->phase),
		.devices = c->ndevices,
		.connected = c->counts.connected,
		.subscribed = c->counts.subscribed,
		.swapped = c->counts.swapped,
		.effective = c->counts.effective,
		.censored = c->counts.censored,
		.errors = c->counts.errors,
		.connect_rate = coord_rate_current(c),
	};

	if (c->progress != NULL)
		progress_update(c->progress, &pc, pl_mono_ns(), force);
}

void coord_set_phase(coordinator *c, coord_phase phase)
{
	pl_errmsg e = { "" };
	char fields[64];

	c->phase = phase;
	c->t_phase_ns = pl_mono_ns();
	snprintf(fields, sizeof(fields), "\"phase\":\"%s\"", coord_phase_name(phase));
	coord_event(c, c->t_phase_ns, "phase", NULL, fields);
	PL_DEBUG(COMPONENT, "phase %s", coord_phase_name(phase));
	if (coord_write_run_json(c, "running", -1, &e) != PL_OK)
		COORD_LOG(c, PL_LOG_ERROR, "%s", e.msg);
	coord_show_progress(c, 1);
}
