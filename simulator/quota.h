/*
 * Token buckets for the simulator's data-plane quotas (AWS IoT Core's
 * message broker limits: CONNECT per client id and per account, publishes
 * per connection). A bucket holds up to `rate` tokens (one second's worth,
 * at least one, so that rates below 1 per second work) and refills
 * continuously. Not thread-safe: the broker thread owns them.
 */
#ifndef SIM_QUOTA_H
#define SIM_QUOTA_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

typedef struct sim_quota_bucket {
	double rate;      /* tokens per second; 0 = unlimited */
	double burst;     /* capacity: max(rate, 1) */
	double tokens;
	int64_t last_ns;  /* monotonic time of the last refill */
} sim_quota_bucket;

void sim_quota_bucket_init(sim_quota_bucket *b, double rate, int64_t now_ns);

/* Takes one token; returns 1 when allowed, 0 when over the rate. */
int sim_quota_take(sim_quota_bucket *b, int64_t now_ns);

/*
 * Buckets keyed by a string (the client id), in a fixed-size table so that
 * memory stays bounded however many client ids appear. An entry idle for
 * longer than two seconds is reused. When every probed slot is busy with
 * other keys the request is allowed and counted (sim_quota_table_overflows).
 */
typedef struct sim_quota_table sim_quota_table;

pl_err sim_quota_table_create(sim_quota_table **out, double rate, size_t slots, pl_errmsg *e);
void sim_quota_table_free(sim_quota_table *t);
int sim_quota_table_take(sim_quota_table *t, const char *key, int64_t now_ns);
uint64_t sim_quota_table_overflows(const sim_quota_table *t);

#endif
