/*
 * Adaptive connect pacing: an AIMD controller of the run's CONNECT rate.
 * Pure: no clocks, no I/O. The coordinator feeds each connect's outcome
 * with its CLOCK_MONOTONIC call time and calls connrate_update often. The
 * rate changes at most once per round.
 *
 * Every CONNRATE_ROUND_NS the outcomes of the round decide:
 *   - any throttled connect (a quota or "server busy" reason code), or
 *     failures and timeouts making up at least 1/CONNRATE_FAILURE_SHARE of
 *     the outcomes, or a median CONNACK latency above the latency limit and
 *     above the last round's, or more connects in flight than the rate
 *     times the latency limit and more than at the last round, halve the
 *     rate, never below the floor;
 *   - otherwise a round with at least one accepted connect, a latency
 *     within the limit and no more connects in flight than the rate times
 *     the latency limit is clean. CONNRATE_CLEAN_ROUNDS clean rounds in a
 *     row raise the rate by the step: a twentieth of the ceiling, but at
 *     most a tenth of the rate, never above the ceiling, which is the
 *     configured fleet.connect_rate.
 * A quota that throttled at some rate lies anywhere below it, so the rate
 * climbs back slowly: while throttles come at least every
 * CONNRATE_CLEAN_ROUNDS rounds, the rate never rises above the one the
 * last decrease set, and each halving brings it closer to the quota. Once
 * it is at or below the quota, it overshoots by at most a tenth, once per
 * CONNRATE_CLEAN_ROUNDS rounds, before the next throttle halves it again.
 * A round without outcomes neither counts as clean nor breaks the series.
 * Outcomes of connects called before the last decrease are ignored: they
 * were paced at the old rate, and counting them would halve the rate again
 * for a load that is already gone.
 *
 * The latency limit is max(CONNRATE_LATENCY_FACTOR x baseline, baseline +
 * CONNRATE_LATENCY_RISE_NS), where the baseline is the median CONNACK
 * latency of the run's first CONNRATE_BASELINE_SAMPLES accepted connects.
 */
#ifndef PL_CONNRATE_H
#define PL_CONNRATE_H

#include <stdint.h>

#include "common/clock.h"

#define CONNRATE_ROUND_NS PL_NS_PER_S
#define CONNRATE_FAILURE_SHARE 20 /* failures >= 1/20 of a round's outcomes */
#define CONNRATE_DECREASE 0.5
#define CONNRATE_DECREASE_MAX 0.25 /* no round cuts the rate below a quarter of it */
#define CONNRATE_STEP_SHARE 20 /* the increase step is the ceiling / 20 */
#define CONNRATE_STEP_RATE_SHARE 10 /* and at most the rate / 10 */
#define CONNRATE_CLEAN_ROUNDS 3     /* clean rounds in a row before each increase */
#define CONNRATE_LATENCY_FACTOR 10
#define CONNRATE_LATENCY_RISE_NS PL_NS_PER_S
#define CONNRATE_BASELINE_SAMPLES 16
#define CONNRATE_LATENCY_MIN_SAMPLES 5 /* of a round, for its median to count */
#define CONNRATE_ROUND_SAMPLES 256     /* latencies kept per round: the first ones */

/* The outcome of one connect, as the controller classifies it. */
typedef enum connrate_outcome {
	CONNRATE_CONNECTED = 0, /* CONNACK accepted */
	CONNRATE_THROTTLED,     /* CONNACK or close with a quota or "busy" reason code */
	CONNRATE_TIMED_OUT,     /* no CONNACK within the connect timeout */
	CONNRATE_FAILED,        /* closed without CONNACK before the timeout */
	CONNRATE_IGNORED,       /* no load signal: a refusal the broker decided on (not authorized) */
} connrate_outcome;

/* A decision of connrate_update. */
typedef struct connrate_change {
	double old_rate;  /* CONNECTs per second */
	double new_rate;
	const char *reason; /* "throttled", "timeouts", "failures", "latency", "backlog" or
			     * "recovery" */
	/* the round's counts, of connects called after the last decrease */
	uint32_t connected, throttled, timed_out, failed;
	int64_t latency_median_ns; /* of the round's accepted connects; -1 = too few */
	int64_t latency_limit_ns;  /* -1 = no baseline yet */
	uint32_t pending;          /* connects in flight at the round's end */
	double pending_limit;      /* the backlog limit: rate x latency limit */
} connrate_change;

/* One controller. Plain data so that the coordinator embeds it; use the functions only. */
typedef struct connrate {
	double ceiling; /* CONNECTs per second */
	double floor;
	double rate;
	double lowest;  /* the lowest rate set so far */
	uint32_t changes;
	uint32_t clean_rounds; /* clean rounds in a row since the last change */
	int64_t t_decrease; /* outcomes of connects called before this are ignored */
	int64_t t_round;
	uint32_t connected, throttled, timed_out, failed;
	int64_t latencies[CONNRATE_ROUND_SAMPLES];
	uint32_t nlatencies;
	int64_t baseline_samples[CONNRATE_BASELINE_SAMPLES];
	uint32_t nbaseline;
	int64_t baseline_ns; /* set once CONNRATE_BASELINE_SAMPLES connects were accepted */
	uint32_t pending;         /* connects in flight, from connrate_note_pending */
	uint32_t prev_pending;    /* at the end of the last round */
	int64_t prev_median_ns;   /* the last round's median latency, -1 = none */
} connrate;

/*
 * Starts at the ceiling (> 0) at time now. A floor above the ceiling is
 * taken as the ceiling; a floor of 0 or less as 1/1000 of it.
 */
void connrate_init(connrate *r, double ceiling, double floor, int64_t now);

/*
 * Classifies a failed connect: code is the worker's CONNECT_FAILED code (a
 * CONNACK reason code, or a negative paho code when no CONNACK came),
 * connect_ns the time from the connect call to the failure, timeout_ns the
 * connect timeout. measured is nonzero when the device's swap has started:
 * a close without CONNACK may then be the measured denial itself (MQTT
 * 3.1.1 has no CONNACK code for a denied iot:Connect), so it is ignored.
 */
connrate_outcome connrate_classify_failure(int32_t code, int64_t connect_ns, int64_t timeout_ns,
					   int measured);

/* Records an outcome of a connect called at t_call; connect_ns is its latency. */
void connrate_note(connrate *r, connrate_outcome outcome, int64_t t_call, int64_t connect_ns);

/* Records the connects in flight (called, no CONNACK or failure yet) over the whole run. */
void connrate_note_pending(connrate *r, uint32_t pending);

/*
 * Ends the round when it is CONNRATE_ROUND_NS old. Returns 1 with *out set
 * when the rate changed, else 0.
 */
int connrate_update(connrate *r, int64_t now, connrate_change *out);

#endif
