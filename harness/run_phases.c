/* The phases of a run: connect -> settle -> swap -> observe -> drain. */
#include "harness/run_phases.h"

#include <stdio.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "harness/awsapi.h"
#include "harness/swap.h"

#define COMPONENT "run"

/* Extra time for stragglers beyond each phase's computed length. */
#define CONNECT_GRACE_NS (10 * PL_NS_PER_S)
#define OBSERVE_GRACE_NS (2 * PL_NS_PER_S)
#define DRAIN_GRACE_NS (30 * PL_NS_PER_S)
#define INTERRUPT_DRAIN_NS (5 * PL_NS_PER_S)
#define PUMP_NS (100 * PL_NS_PER_MS)

int run_stop_now(const coordinator *c)
{
	(void)c;
	return coord_signal_count >= 2;
}

/* Whether every live worker has died: the run cannot go on. */
static int all_workers_dead(const coordinator *c)
{
	for (int i = 0; i < c->nworkers; i++)
		if (!c->workers[i].dead)
			return 0;
	return 1;
}

/* Pumps until done(c) or the deadline; returns 0 when stopped or all workers died. */
static int pump_until(coordinator *c, int (*done)(const coordinator *), int64_t deadline)
{
	while (!done(c)) {
		int64_t now = pl_mono_ns();

		if (c->interrupted || run_stop_now(c))
			return 0;
		if (all_workers_dead(c)) {
			coord_request_stop(c, "every worker process died");
			return 0;
		}
		if (now >= deadline)
			return 1;
		coord_pump(c, deadline - now < PUMP_NS ? deadline - now : PUMP_NS);
	}
	return 1;
}

/* Keep-connection devices must be connected and subscribed before the swap. */
static int all_connected(const coordinator *c)
{
	for (uint32_t i = 0; i < c->ndevices; i++) {
		const coord_device *d = &c->devices[i];
		const profile_group *g = &c->prof->groups[d->group];

		if (c->workers[d->worker].dead)
			continue;
		if (g->strategy == PROFILE_STRATEGY_KEEP_CONNECTION && !d->subscribed)
			return 0;
	}
	return 1;
}

static int never(const coordinator *c)
{
	(void)c;
	return 0;
}

static int64_t connect_phase_length(const coordinator *c)
{
	const profile *p = c->prof;
	int64_t pacing = 0;

	if (p->fleet.connect_rate > 0)
		pacing = (int64_t)((double)c->ndevices / p->fleet.connect_rate * (double)PL_NS_PER_S);
	return pacing + p->timing.connect_timeout_ns + CONNECT_GRACE_NS;
}

/* Keep-connection devices of live workers, only those still to connect and subscribe if waiting. */
static uint64_t count_keep_devices(const coordinator *c, int waiting)
{
	uint64_t n = 0;

	for (uint32_t i = 0; i < c->ndevices; i++) {
		const coord_device *d = &c->devices[i];

		if (c->prof->groups[d->group].strategy != PROFILE_STRATEGY_KEEP_CONNECTION ||
		    c->workers[d->worker].dead)
			continue;
		if (!waiting || !d->subscribed)
			n++;
	}
	return n;
}

static uint64_t devices_waiting(const coordinator *c)
{
	return count_keep_devices(c, 1);
}

static uint64_t keep_devices(const coordinator *c)
{
	return count_keep_devices(c, 0);
}

/*
 * A later end for the connect phase when adaptive pacing has lowered the
 * rate and devices subscribed since the last end was set: the waiting
 * devices at the current rate, plus the connect timeout and grace. Returns
 * deadline unchanged otherwise, so a phase without progress still ends.
 */
static int64_t extend_connect_phase(const coordinator *c, int64_t deadline,
				    uint64_t *subscribed_before)
{
	uint64_t waiting = devices_waiting(c);
	double rate = coord_rate_current(c);
	int64_t later;

	if (!c->rate_on || c->rate.lowest >= c->rate.ceiling || waiting == 0 ||
	    c->counts.subscribed <= *subscribed_before)
		return deadline;
	*subscribed_before = c->counts.subscribed;
	later = pl_mono_ns() + (int64_t)((double)waiting / rate * (double)PL_NS_PER_S) +
		c->prof->timing.connect_timeout_ns + CONNECT_GRACE_NS;
	return later > deadline ? later : deadline;
}

static int phase_connect(coordinator *c)
{
	int64_t deadline;
	uint64_t waiting, subscribed_before = 0;
	double waited_s;

	coord_set_phase(c, COORD_PHASE_CONNECT);
	coord_rate_start(c);
	coord_send_phase(c, WP_PHASE_CONNECT);
	deadline = pl_mono_ns() + connect_phase_length(c);
	for (;;) {
		int64_t later;

		if (!pump_until(c, all_connected, deadline))
			return 0;
		later = all_connected(c) ? deadline
					 : extend_connect_phase(c, deadline, &subscribed_before);
		if (later == deadline)
			break;
		COORD_LOG(c, PL_LOG_INFO, "the connect phase is extended by %.0f s: the adaptive "
			  "pacing slowed connects to %.1f/s and devices are still connecting",
			  (double)(later - deadline) / (double)PL_NS_PER_S, coord_rate_current(c));
		deadline = later;
	}
	waiting = devices_waiting(c);
	waited_s = (double)(pl_mono_ns() - c->t_phase_ns) / (double)PL_NS_PER_S;
	if (waiting > 0)
		COORD_LOG(c, PL_LOG_WARN, "%llu of %llu keep-connection devices are not connected "
			  "and subscribed after waiting %.1f s in the connect phase (connect rate "
			  "now %.1f/s, %llu connect failures so far); they stay in the run and are "
			  "probably censored", (unsigned long long)waiting,
			  (unsigned long long)keep_devices(c), waited_s, coord_rate_current(c),
			  (unsigned long long)c->counts.connect_failures);
	COORD_LOG(c, PL_LOG_INFO, "connected and subscribed %llu of %llu keep-connection "
		  "devices in %.1f s; %llu of %u devices connected in all (reconnect-per-attempt "
		  "devices connect per attempt)",
		  (unsigned long long)(keep_devices(c) - waiting), (unsigned long long)keep_devices(c),
		  waited_s, (unsigned long long)c->counts.connected, c->ndevices);
	if (c->rate_on)
		COORD_LOG(c, PL_LOG_INFO, "connect rate: configured %.1f/s, now %.1f/s, lowest "
			  "%.1f/s after %u changes", c->rate.ceiling, c->rate.rate, c->rate.lowest,
			  c->rate.changes);
	return 1;
}

static int phase_settle(coordinator *c)
{
	pl_errmsg e = { "" };
	pl_err err;

	coord_set_phase(c, COORD_PHASE_SETTLE);
	/* Probing starts now so that a revoke has deliveries to lose and a grant has
	 * refusals before the swap. */
	coord_send_phase(c, WP_PHASE_PROBE);
	err = coord_http_prober_start(c, &e);
	if (err != PL_OK) {
		COORD_LOG(c, PL_LOG_ERROR, "%s", e.msg);
		c->failed = 1;
		snprintf(c->failure, sizeof(c->failure), "%s", e.msg);
		coord_request_stop(c, "the prober failed to start");
		return 0;
	}
	return pump_until(c, never, pl_mono_ns() + c->prof->timing.settle_ns);
}

static int swap_calls_done(const coordinator *c)
{
	return c->swap_jobs_finished >= c->swap_jobs;
}

static int phase_swap(coordinator *c)
{
	pl_errmsg e = { "" };
	pl_err err;

	coord_set_phase(c, COORD_PHASE_SWAP);
	err = swap_start(c, &e);
	if (err == PL_ERR_INTERRUPTED)
		return 0;
	if (err != PL_OK) {
		COORD_LOG(c, PL_LOG_ERROR, "%s", e.msg);
		c->failed = 1;
		snprintf(c->failure, sizeof(c->failure), "swap: %s", e.msg);
		coord_request_stop(c, "the swap failed");
		return 0;
	}
	/* Calls are bounded by their retries; the observation timeout bounds the wait. */
	return pump_until(c, swap_calls_done, pl_mono_ns() + c->prof->timing.observe_timeout_ns);
}

/* Every device has an effect, a failed swap or a dead worker. */
static int all_observed(const coordinator *c)
{
	for (uint32_t i = 0; i < c->ndevices; i++) {
		const coord_device *d = &c->devices[i];

		if (!d->effective && !d->swap_failed && !d->recorded &&
		    !c->workers[d->worker].dead)
			return 0;
	}
	return 1;
}

static int phase_observe(coordinator *c)
{
	const profile *p = c->prof;
	int64_t confirm = 2 * p->probe.interval_ns > PL_NS_PER_S ? 2 * p->probe.interval_ns
								   : PL_NS_PER_S;
	int64_t from = c->t_swap_last_ns != 0 ? c->t_swap_last_ns : pl_mono_ns();
	int64_t deadline = from + p->timing.observe_timeout_ns + confirm + OBSERVE_GRACE_NS;

	coord_set_phase(c, COORD_PHASE_OBSERVE);
	return pump_until(c, all_observed, deadline);
}

static int all_done(const coordinator *c)
{
	for (int i = 0; i < c->nworkers; i++)
		if (!c->workers[i].dead && !c->workers[i].done)
			return 0;
	return 1;
}

/* Waits for DONE from every live worker, then for the processes to exit. */
static void wait_workers(coordinator *c, int64_t deadline)
{
	while (!all_done(c) && !run_stop_now(c)) {
		int64_t now = pl_mono_ns();

		if (now >= deadline) {
			COORD_LOG(c, PL_LOG_WARN, "workers did not finish draining in time; stopping them");
			break;
		}
		coord_pump(c, deadline - now < PUMP_NS ? deadline - now : PUMP_NS);
	}
	if (run_stop_now(c))
		coord_kill_workers(c, PL_NS_PER_S);
	else
		coord_reap_workers(c, 5 * PL_NS_PER_S);
}

void run_drain(coordinator *c)
{
	int64_t budget = c->interrupted ? INTERRUPT_DRAIN_NS
					: c->prof->timing.drain_ns + DRAIN_GRACE_NS;

	if (c->pool != NULL)
		awsapi_pool_cancel(c->pool);
	coord_http_prober_stop(c);
	coord_set_phase(c, COORD_PHASE_DRAIN);
	coord_send_phase(c, WP_PHASE_DRAIN);
	wait_workers(c, pl_mono_ns() + budget);
	coord_flush_pending(c, 1);
	if (c->interrupted)
		coord_censor_remaining(c, "interrupted", c->t_interrupt_ns);
	else
		coord_censor_remaining(c, "no-record", pl_mono_ns());
}

void run_phases(coordinator *c)
{
	if (!phase_connect(c))
		return;
	if (!phase_settle(c))
		return;
	if (!phase_swap(c))
		return;
	phase_observe(c);
}
