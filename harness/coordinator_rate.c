/*
 * The coordinator's adaptive connect pacing: one controller (connrate.h)
 * for the whole shard, because the limits it reacts to are shared by every
 * worker (AWS's connect quota is per account, a simulator or broker has one
 * CPU budget). Each worker gets an equal share of the rate, in HELLO and
 * then in RATE whenever the rate changes.
 */
#include "harness/coordinator.h"

#include <stdio.h>

#include "common/clock.h"
#include "common/log.h"

#define COMPONENT "coordinator"

/* Rate changes are logged at INFO at most this often; the others at DEBUG. */
#define RATE_LOG_INTERVAL_NS (10 * PL_NS_PER_S)

uint32_t coord_rate_share_milli(const coordinator *c, double rate)
{
	double share = rate * 1000.0 / (c->nworkers > 0 ? c->nworkers : 1) + 0.5;

	if (share < 1.0)
		return 1; /* 0 would mean no limit */
	return share > (double)UINT32_MAX ? UINT32_MAX : (uint32_t)share;
}

double coord_rate_current(const coordinator *c)
{
	return c->rate_on ? c->rate.rate : c->prof->fleet.connect_rate;
}

/* The connect timeout the workers use (HELLO connect_timeout_s). */
static int64_t worker_connect_timeout(const coordinator *c)
{
	int64_t s = c->prof->timing.connect_timeout_ns / PL_NS_PER_S;

	return (s > 0 ? s : 10) * PL_NS_PER_S;
}

void coord_rate_start(coordinator *c)
{
	const profile_fleet *f = &c->prof->fleet;
	int64_t now = pl_mono_ns();
	char fields[160];

	if (!f->connect_rate_adaptive || f->connect_rate <= 0 || c->rate_on)
		return;
	connrate_init(&c->rate, f->connect_rate, f->connect_rate_floor, now);
	c->rate_on = 1;
	snprintf(fields, sizeof(fields),
		 "\"old\":%.3f,\"new\":%.3f,\"why\":\"start\",\"floor\":%.3f", c->rate.rate,
		 c->rate.rate, c->rate.floor);
	coord_event(c, now, "connect_rate", NULL, fields);
}

void coord_rate_on_event(coordinator *c, const coord_device *d, const wp_event *ev)
{
	connrate_outcome outcome;

	if (!c->rate_on || ev->connect_ns < 0)
		return;
	if (ev->kind == WP_EV_CONNECTED)
		outcome = CONNRATE_CONNECTED;
	else if (ev->kind == WP_EV_CONNECT_FAILED)
		/* NOTE: after the swap started, a close without CONNACK may be a
		 * throttle as well as the measured denial; it is ignored either way. */
		outcome = connrate_classify_failure(ev->code, ev->connect_ns,
						    worker_connect_timeout(c), d->swap_started);
	else
		return;
	connrate_note(&c->rate, outcome, ev->t_ns - ev->connect_ns, ev->connect_ns);
}

/* Writes the change to events.jsonl. */
static void rate_event(coordinator *c, int64_t now, const connrate_change *ch)
{
	char fields[320];

	snprintf(fields, sizeof(fields),
		 "\"old\":%.3f,\"new\":%.3f,\"why\":\"%s\",\"connected\":%u,\"throttled\":%u,"
		 "\"timed_out\":%u,\"failed\":%u,\"latency_median_ns\":%lld,"
		 "\"latency_limit_ns\":%lld,\"pending\":%u,\"pending_limit\":%.0f",
		 ch->old_rate, ch->new_rate, ch->reason, ch->connected, ch->throttled,
		 ch->timed_out, ch->failed, (long long)ch->latency_median_ns,
		 (long long)ch->latency_limit_ns, ch->pending, ch->pending_limit);
	coord_event(c, now, "connect_rate", NULL, fields);
}

/* Logs a decrease at INFO unless one was logged recently; everything else at DEBUG. */
static void rate_log(coordinator *c, int64_t now, const connrate_change *ch)
{
	int lowered = ch->new_rate < ch->old_rate;

	if (!lowered || now - c->t_rate_log_ns < RATE_LOG_INTERVAL_NS) {
		c->rate_unlogged++;
		PL_DEBUG(COMPONENT, "connect rate %.1f/s -> %.1f/s (%s)", ch->old_rate,
			 ch->new_rate, ch->reason);
		return;
	}
	COORD_LOG(c, PL_LOG_INFO,
		  "connect rate lowered from %.1f/s to %.1f/s (%s: %u accepted, %u throttled, "
		  "%u timed out, %u failed in the last round; %u earlier changes not logged)",
		  ch->old_rate, ch->new_rate, ch->reason, ch->connected, ch->throttled,
		  ch->timed_out, ch->failed, c->rate_unlogged);
	c->t_rate_log_ns = now;
	c->rate_unlogged = 0;
}

void coord_rate_update(coordinator *c)
{
	int64_t now = pl_mono_ns();
	connrate_change ch;
	wp_msg m = { .type = WP_MSG_RATE };
	uint64_t pending = 0;

	if (!c->rate_on)
		return;
	for (int i = 0; i < c->nworkers; i++)
		if (!c->workers[i].dead)
			pending += c->workers[i].heartbeat.connecting;
	connrate_note_pending(&c->rate, pending > UINT32_MAX ? UINT32_MAX : (uint32_t)pending);
	if (!connrate_update(&c->rate, now, &ch))
		return;
	m.u.rate.connect_rate_milli = coord_rate_share_milli(c, ch.new_rate);
	m.u.rate.t_ns = now;
	coord_broadcast(c, &m);
	rate_event(c, now, &ch);
	rate_log(c, now, &ch);
}
