/*
 * Effect detection for one device and one swap. Pure: no clocks, no I/O; the
 * caller feeds probe sends and deliveries with their CLOCK_MONOTONIC times and
 * polls with the current time.
 *
 * Grant: t_effect is the receive time of the first probe delivered at or
 * after t_swap_start.
 *
 * Revoke: t_effect is the send time of the first probe, sent at or after
 * t_swap_start, that is never delivered while no later probe is delivered
 * either. "Never delivered" needs a confirmation window: a probe counts as
 * lost when it has not been delivered within confirm_ns of its sending. The
 * candidate is the first probe sent after the last delivered one; the effect
 * is confirmed at candidate.t_send + confirm_ns if no probe from the
 * candidate onwards was delivered by then. A later delivery of the candidate
 * or any newer probe before confirmation moves the candidate past it.
 *
 * Censoring: with no effect by t_swap_start + observe_timeout_ns (for revoke,
 * no candidate sent by then and confirmed), the result is censored and
 * t_effect is that deadline.
 *
 * latency = t_effect - t_swap; when t_swap is unknown (0), t_swap_start is
 * used. t_swap may be set after detection began (SWAP done arrives late).
 *
 * Probes are numbered by the caller with increasing sequence numbers. A
 * revoke tracks at most DETECT_WINDOW undelivered probes, which bounds
 * memory: the candidate and the probes sent after it, within one
 * confirmation window. detect_window_fits returns whether a confirmation
 * window and probe interval stay within that, and profile validation
 * rejects revoke profiles where they do not. A delivery of an untracked probe is
 * counted as late and otherwise ignored.
 */
#ifndef PL_WORKER_DETECT_H
#define PL_WORKER_DETECT_H

#include <stdint.h>

#define DETECT_WINDOW 64

typedef enum detect_state {
	DETECT_PENDING = 0,
	DETECT_EFFECT = 1,
	DETECT_CENSORED = 2,
} detect_state;

typedef struct detect_probe {
	uint64_t seq;
	int64_t t_send;
	int delivered;
} detect_probe;

/* One detection. Plain data so that devices embed it; use the functions only. */
typedef struct detect {
	int revoke;
	int64_t t_swap_start;
	int64_t t_swap;
	int64_t confirm_ns;
	int64_t deadline;
	detect_state state;
	int64_t t_effect;
	/* revoke: ring of probes sent at or after t_swap_start */
	detect_probe ring[DETECT_WINDOW];
	uint32_t head;  /* index of the oldest tracked probe */
	uint32_t count; /* tracked probes */
	uint64_t late_deliveries;  /* deliveries after the effect or of untracked probes */
	uint64_t early_deliveries; /* grant: deliveries before t_swap_start */
} detect;

/*
 * Starts a detection. revoke selects the direction; t_swap is 0 when not yet
 * known; confirm_ns > 0 is used for revoke only; observe_timeout_ns > 0.
 */
void detect_init(detect *d, int revoke, int64_t t_swap_start, int64_t t_swap,
		 int64_t confirm_ns, int64_t observe_timeout_ns);

/* Sets t_swap when the last control-plane call has returned. */
void detect_set_swap(detect *d, int64_t t_swap);

/* Records a probe sent at t_send with sequence seq (increasing). */
void detect_on_sent(detect *d, uint64_t seq, int64_t t_send);

/* Records the delivery at t_recv of probe seq, sent at t_send. */
void detect_on_delivered(detect *d, uint64_t seq, int64_t t_send, int64_t t_recv);

/*
 * Advances the detection to time now and returns its state. Once not
 * PENDING, the state and t_effect no longer change.
 */
detect_state detect_poll(detect *d, int64_t now);

/*
 * Ends a pending detection at time now (the run is draining): it becomes
 * censored at min(now, deadline). No-op when no longer PENDING.
 */
void detect_finish(detect *d, int64_t now);

/* The time at which detect_poll can next change the state (INT64_MAX = only on input). */
int64_t detect_next_deadline(const detect *d);

/*
 * Returns whether a revoke detection tracks every probe it needs when probes are
 * sent every interval_ns and a probe counts as lost after confirm_ns.
 * Within one window after the candidate, confirm_ns / interval_ns probes
 * follow it, plus one more because a sender that falls behind by up to half
 * an interval sends two probes closer together (workers/device.c).
 */
int detect_window_fits(int64_t confirm_ns, int64_t interval_ns);

/* t_effect (the deadline when censored); valid once not PENDING. */
int64_t detect_effect_ns(const detect *d);

/* t_effect - t_swap, or - t_swap_start when t_swap is unknown. */
int64_t detect_latency_ns(const detect *d);

#endif
