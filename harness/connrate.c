#include "harness/connrate.h"

#include <stdlib.h>
#include <string.h>

void connrate_init(connrate *r, double ceiling, double floor, int64_t now)
{
	memset(r, 0, sizeof(*r));
	r->ceiling = ceiling;
	r->floor = floor;
	if (floor > ceiling)
		r->floor = ceiling;
	else if (floor <= 0)
		r->floor = ceiling / 1000.0;
	r->rate = ceiling;
	r->lowest = ceiling;
	r->t_decrease = now;
	r->t_round = now;
	r->prev_median_ns = -1;
}

void connrate_note_pending(connrate *r, uint32_t pending)
{
	r->pending = pending;
}

/* Whether code is a refusal for load (quota, busy, unavailable), not for the client's rights. */
static int is_load_code(int32_t code)
{
	switch (code) {
	case 3:    /* MQTT 3.1.1 CONNACK: server unavailable */
	case 0x88: /* MQTT 5: server unavailable */
	case 0x89: /* server busy */
	case 0x97: /* quota exceeded: AWS's CONNACK code for a throttled MQTT 5 CONNECT */
	case 0x9F: /* connection rate exceeded */
		return 1;
	default:
		return 0;
	}
}

connrate_outcome connrate_classify_failure(int32_t code, int64_t connect_ns, int64_t timeout_ns,
					   int measured)
{
	if (is_load_code(code))
		return CONNRATE_THROTTLED;
	if (code >= 0)
		return CONNRATE_IGNORED; /* a CONNACK refusal: the broker processed the CONNECT */
	/* Paho fails a connect at its connectTimeout; allow for the driver's lag. */
	if (connect_ns >= timeout_ns - timeout_ns / 10)
		return CONNRATE_TIMED_OUT;
	return measured ? CONNRATE_IGNORED : CONNRATE_FAILED;
}

static int compare_int64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a;
	int64_t y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* The median of n values (n > 0), sorting them in place. */
static int64_t median(int64_t *values, uint32_t n)
{
	qsort(values, n, sizeof(*values), compare_int64);
	return values[n / 2];
}

void connrate_note(connrate *r, connrate_outcome outcome, int64_t t_call, int64_t connect_ns)
{
	/* The baseline takes the run's first accepted connects, whenever called. */
	if (outcome == CONNRATE_CONNECTED && connect_ns >= 0 &&
	    r->nbaseline < CONNRATE_BASELINE_SAMPLES) {
		r->baseline_samples[r->nbaseline++] = connect_ns;
		if (r->nbaseline == CONNRATE_BASELINE_SAMPLES)
			r->baseline_ns = median(r->baseline_samples, r->nbaseline);
	}
	if (t_call < r->t_decrease)
		return;
	switch (outcome) {
	case CONNRATE_CONNECTED:
		r->connected++;
		if (connect_ns >= 0 && r->nlatencies < CONNRATE_ROUND_SAMPLES)
			r->latencies[r->nlatencies++] = connect_ns;
		break;
	case CONNRATE_THROTTLED: r->throttled++; break;
	case CONNRATE_TIMED_OUT: r->timed_out++; break;
	case CONNRATE_FAILED: r->failed++; break;
	case CONNRATE_IGNORED: break;
	}
}

static int64_t latency_limit(const connrate *r)
{
	int64_t by_factor = r->baseline_ns * CONNRATE_LATENCY_FACTOR;
	int64_t by_rise = r->baseline_ns + CONNRATE_LATENCY_RISE_NS;

	if (r->nbaseline < CONNRATE_BASELINE_SAMPLES)
		return -1;
	return by_factor > by_rise ? by_factor : by_rise;
}

/*
 * The connects in flight above which the target is falling behind: the
 * rate times the latency limit (Little's law), or times
 * CONNRATE_LATENCY_RISE_NS before the baseline is known.
 */
static double backlog_limit(const connrate *r, int64_t latency_limit_ns)
{
	int64_t limit = latency_limit_ns >= 0 ? latency_limit_ns : CONNRATE_LATENCY_RISE_NS;

	return r->rate * (double)limit / (double)PL_NS_PER_S;
}

/* Whether the round's median latency is above the limit. */
static int latency_high(const connrate_change *c)
{
	return c->latency_median_ns >= 0 && c->latency_limit_ns >= 0 &&
	       c->latency_median_ns > c->latency_limit_ns;
}

/*
 * The reason the round calls for a lower rate, or NULL. Latency and backlog
 * count only while they still grow, because connects queued behind an
 * earlier overload stay slow for a while after the rate has dropped.
 */
static const char *decrease_reason(const connrate *r, const connrate_change *c)
{
	uint32_t bad = c->timed_out + c->failed;
	uint32_t outcomes = c->connected + c->throttled + bad;

	if (c->throttled > 0)
		return "throttled";
	if (bad > 0 && (uint64_t)bad * CONNRATE_FAILURE_SHARE >= outcomes)
		return c->timed_out >= c->failed ? "timeouts" : "failures";
	if (latency_high(c) && c->latency_median_ns > r->prev_median_ns)
		return "latency";
	if (c->pending > c->pending_limit && c->pending > r->prev_pending)
		return "backlog";
	return NULL;
}

/*
 * The rate after a decrease: half the rate, or, when connects were
 * throttled, failed or timed out, the connects the target accepted in the
 * round if fewer. Those are what a quota or an overloaded broker let
 * through in one second, so the rate lands at the limit in one step
 * instead of several halvings. A round with fewer than
 * CONNRATE_LATENCY_MIN_SAMPLES accepted connects measures too little for
 * this, and no round cuts the rate below CONNRATE_DECREASE_MAX of it.
 */
static double lowered_rate(const connrate *r, const connrate_change *c)
{
	double lower = r->rate * CONNRATE_DECREASE;
	double accepted = (double)c->connected / ((double)CONNRATE_ROUND_NS / PL_NS_PER_S);
	int loss = c->connected >= CONNRATE_LATENCY_MIN_SAMPLES &&
		   c->throttled + c->timed_out + c->failed > 0 &&
		   strcmp(c->reason, "latency") != 0 && strcmp(c->reason, "backlog") != 0;

	if (loss && accepted < lower)
		lower = accepted;
	if (lower < r->rate * CONNRATE_DECREASE_MAX)
		lower = r->rate * CONNRATE_DECREASE_MAX;
	return lower;
}

/* Whether the round calls for no change because a high latency or backlog no longer grows. */
static int holding(const connrate_change *c)
{
	return latency_high(c) || c->pending > c->pending_limit;
}

/*
 * The rate the round's counts call for. Sets c->reason when it differs.
 * Counts clean rounds: a round with a reason to hold resets the series, an
 * idle round (no accepted connect) leaves it as it is.
 */
static double decide(connrate *r, connrate_change *c)
{
	double step = r->ceiling / CONNRATE_STEP_SHARE;

	c->reason = decrease_reason(r, c);
	if (c->reason != NULL) {
		double lower = lowered_rate(r, c);

		r->clean_rounds = 0;
		return lower < r->floor ? r->floor : lower;
	}
	if (holding(c)) {
		r->clean_rounds = 0;
		return r->rate;
	}
	if (c->connected == 0 || r->rate >= r->ceiling)
		return r->rate;
	if (++r->clean_rounds < CONNRATE_CLEAN_ROUNDS)
		return r->rate;
	r->clean_rounds = 0;
	c->reason = "recovery";
	if (step > r->rate / CONNRATE_STEP_RATE_SHARE)
		step = r->rate / CONNRATE_STEP_RATE_SHARE;
	return r->rate + step > r->ceiling ? r->ceiling : r->rate + step;
}

int connrate_update(connrate *r, int64_t now, connrate_change *out)
{
	connrate_change c = { .old_rate = r->rate };
	double next;

	if (now - r->t_round < CONNRATE_ROUND_NS)
		return 0;
	c.connected = r->connected;
	c.throttled = r->throttled;
	c.timed_out = r->timed_out;
	c.failed = r->failed;
	c.latency_median_ns = r->nlatencies >= CONNRATE_LATENCY_MIN_SAMPLES
				      ? median(r->latencies, r->nlatencies) : -1;
	c.latency_limit_ns = latency_limit(r);
	c.pending = r->pending;
	c.pending_limit = backlog_limit(r, c.latency_limit_ns);
	next = decide(r, &c);
	r->prev_median_ns = c.latency_median_ns;
	r->prev_pending = c.pending;
	r->connected = r->throttled = r->timed_out = r->failed = 0;
	r->nlatencies = 0;
	r->t_round = now;
	if (next == r->rate)
		return 0;
	if (next < r->rate)
		r->t_decrease = now;
	r->rate = next;
	if (next < r->lowest)
		r->lowest = next;
	r->changes++;
	c.new_rate = next;
	*out = c;
	return 1;
}
