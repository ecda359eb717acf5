#include "harness/connrate.h"

#include <stdlib.h>
#include <string.h>

void connrate_init(connrate *r, double ceiling, double floor, int64_t now)
{
	memset(r, 0, sizeof(*r));
	r->ceiling = ceiling;
	r->floor = floor > ceiling ? ceiling : floor > 0 ? floor : ceiling / 1000.0;
	r->rate = ceiling;
	r->lowest = ceiling;
	r->t_decrease = now;
	r->t_round = now;
}

/* Reason codes that say the server refused for load, not for who the client is. */
static int is_load_code(int32_t code)
{
	switch (code) {
	case 3:    /* MQTT 3.1.1 CONNACK: server unavailable */
	case 0x88: /* MQTT 5: server unavailable */
	case 0x89: /* server busy */
	case 0x97: /* quota exceeded: AWS's answer to a throttled CONNECT */
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

/* Why the round calls for a lower rate, or NULL. */
static const char *decrease_reason(const connrate_change *c)
{
	uint32_t bad = c->timed_out + c->failed;
	uint32_t outcomes = c->connected + c->throttled + bad;

	if (c->throttled > 0)
		return "throttled";
	if (bad > 0 && (uint64_t)bad * CONNRATE_FAILURE_SHARE >= outcomes)
		return c->timed_out >= c->failed ? "timeouts" : "failures";
	if (c->latency_median_ns >= 0 && c->latency_limit_ns >= 0 &&
	    c->latency_median_ns > c->latency_limit_ns)
		return "latency";
	return NULL;
}

/* The rate the round's counts call for; sets c->why when it differs. */
static double decide(const connrate *r, connrate_change *c)
{
	double step = r->ceiling / CONNRATE_STEP_SHARE;

	c->why = decrease_reason(c);
	if (c->why != NULL) {
		double lower = r->rate * CONNRATE_DECREASE;

		return lower < r->floor ? r->floor : lower;
	}
	if (c->connected == 0 || r->rate >= r->ceiling)
		return r->rate;
	c->why = "recovery";
	if (step < 1.0)
		step = 1.0;
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
	next = decide(r, &c);
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
