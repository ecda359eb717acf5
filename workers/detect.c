#include "workers/detect.h"

#include <assert.h>
#include <string.h>

void detect_init(detect *d, int revoke, int64_t t_swap_start, int64_t t_swap,
		 int64_t confirm_ns, int64_t observe_timeout_ns)
{
	assert(observe_timeout_ns > 0);
	assert(!revoke || confirm_ns > 0);
	memset(d, 0, sizeof(*d));
	d->revoke = revoke != 0;
	d->t_swap_start = t_swap_start;
	d->t_swap = t_swap;
	d->confirm_ns = confirm_ns;
	d->deadline = t_swap_start + observe_timeout_ns;
	d->state = DETECT_PENDING;
}

void detect_set_swap(detect *d, int64_t t_swap)
{
	d->t_swap = t_swap;
}

static detect_probe *ring_at(detect *d, uint32_t i)
{
	return &d->ring[(d->head + i) % DETECT_WINDOW];
}

void detect_on_sent(detect *d, uint64_t seq, int64_t t_send)
{
	if (d->state != DETECT_PENDING || !d->revoke || t_send < d->t_swap_start)
		return;
	/* The ring contains the candidate and the probes after it, all undelivered.
	 * It fills only when probes come faster than detect_window_fits assumes,
	 * and a probe dropped here can no longer become the candidate. */
	if (d->count == DETECT_WINDOW)
		return;
	*ring_at(d, d->count) = (detect_probe){ seq, t_send, 0 };
	d->count++;
}

/* Drops tracked probes up to and including seq: a later one was delivered. */
static void revoke_delivered(detect *d, uint64_t seq)
{
	while (d->count > 0 && ring_at(d, 0)->seq <= seq) {
		d->head = (d->head + 1) % DETECT_WINDOW;
		d->count--;
	}
}

void detect_on_delivered(detect *d, uint64_t seq, int64_t t_send, int64_t t_recv)
{
	if (d->state != DETECT_PENDING) {
		d->late_deliveries++;
		return;
	}
	if (!d->revoke) {
		if (t_recv < d->t_swap_start) {
			d->early_deliveries++;
			return;
		}
		d->state = DETECT_EFFECT;
		d->t_effect = t_recv;
		return;
	}
	(void)t_send;
	revoke_delivered(d, seq);
}

detect_state detect_poll(detect *d, int64_t now)
{
	if (d->state != DETECT_PENDING)
		return d->state;
	if (d->revoke && d->count > 0) {
		const detect_probe *candidate = ring_at(d, 0);

		if (candidate->t_send <= d->deadline && now >= candidate->t_send + d->confirm_ns) {
			d->state = DETECT_EFFECT;
			d->t_effect = candidate->t_send;
			return d->state;
		}
	}
	/* Revoke waits one confirmation window past the deadline, so that a
	 * candidate sent just before it can still be confirmed. */
	if (now >= d->deadline + (d->revoke ? d->confirm_ns : 0)) {
		d->state = DETECT_CENSORED;
		d->t_effect = d->deadline;
	}
	return d->state;
}

void detect_finish(detect *d, int64_t now)
{
	if (detect_poll(d, now) != DETECT_PENDING)
		return;
	d->state = DETECT_CENSORED;
	d->t_effect = now < d->deadline ? now : d->deadline;
}

int64_t detect_next_deadline(const detect *d)
{
	int64_t end;

	if (d->state != DETECT_PENDING)
		return INT64_MAX;
	end = d->deadline + (d->revoke ? d->confirm_ns : 0);
	if (d->revoke && d->count > 0) {
		int64_t confirm = d->ring[d->head].t_send + d->confirm_ns;

		if (d->ring[d->head].t_send <= d->deadline && confirm < end)
			return confirm;
	}
	return end;
}

int detect_window_fits(int64_t confirm_ns, int64_t interval_ns)
{
	assert(interval_ns > 0);
	/* The candidate, the probes sent within confirm_ns after it, and one early probe. */
	return confirm_ns / interval_ns + 2 <= DETECT_WINDOW;
}

int64_t detect_effect_ns(const detect *d)
{
	return d->t_effect;
}

int64_t detect_latency_ns(const detect *d)
{
	return d->t_effect - (d->t_swap != 0 ? d->t_swap : d->t_swap_start);
}
