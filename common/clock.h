/*
 * Clock helpers. All times are int64_t nanoseconds.
 *
 * Monotonic time (CLOCK_MONOTONIC) is the same clock in every process on one
 * host, so workers and the coordinator can compare timestamps directly. Wall
 * time (CLOCK_REALTIME) is for display and for anchoring a run to a date.
 */
#ifndef PL_CLOCK_H
#define PL_CLOCK_H

#include <stddef.h>
#include <stdint.h>

#define PL_NS_PER_US INT64_C(1000)
#define PL_NS_PER_MS INT64_C(1000000)
#define PL_NS_PER_S  INT64_C(1000000000)

int64_t pl_mono_ns(void);
int64_t pl_wall_ns(void);

/* Sleeps for ns nanoseconds, resuming after signals; ns <= 0 returns at once. */
void pl_sleep_ns(int64_t ns);

/*
 * Formats wall time as RFC 3339 UTC with milliseconds,
 * "2026-12-04T21:30:00.123Z". buf must hold at least 25 bytes.
 */
void pl_wall_format(int64_t wall_ns, char *buf, size_t len);

/* Converts a monotonic timestamp to wall time using one anchor pair. */
int64_t pl_mono_to_wall(int64_t mono_ns, int64_t anchor_mono_ns, int64_t anchor_wall_ns);

#endif
