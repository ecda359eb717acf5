/*
 * Propagation model of the simulator: when an established connection
 * refreshes its snapshot of its principal's policies.
 *
 *   immediate           every check sees the current policies
 *   ttl:<duration>      refresh every <duration> (for example "ttl:2s")
 *   uniform:<a>-<b>     refresh after a delay drawn uniformly from [a, b]
 *                       for each period (default "uniform:360s-480s", AWS's
 *                       documented 6 to 8 minutes)
 *
 * The phase says where a connection's first period starts: at its connect
 * time ("connect") or at a random point within the first period
 * ("random"). Pure functions; thread-safe.
 */
#ifndef SIM_PROPAGATION_H
#define SIM_PROPAGATION_H

#include <stdint.h>

#include "common/error.h"

typedef enum sim_propagation_kind {
	SIM_PROP_IMMEDIATE,
	SIM_PROP_TTL,
	SIM_PROP_UNIFORM,
} sim_propagation_kind;

typedef enum sim_refresh_phase {
	SIM_PHASE_CONNECT,
	SIM_PHASE_RANDOM,
} sim_refresh_phase;

typedef struct sim_propagation {
	sim_propagation_kind kind;
	int64_t min_ns; /* TTL for SIM_PROP_TTL, lower bound for SIM_PROP_UNIFORM */
	int64_t max_ns; /* equals min_ns for SIM_PROP_TTL */
	sim_refresh_phase phase;
} sim_propagation;

#define SIM_PROPAGATION_DEFAULT "uniform:360s-480s"

/* Parses a model string; the phase is left unchanged. */
pl_err sim_propagation_parse(const char *text, sim_propagation *out, pl_errmsg *e);

/* Parses "connect" or "random". */
pl_err sim_refresh_phase_parse(const char *text, sim_refresh_phase *out, pl_errmsg *e);

/* Formats the model as it is parsed ("ttl:2s"). */
void sim_propagation_format(const sim_propagation *p, char *buf, unsigned long len);

/*
 * Returns the length of the next refresh period in nanoseconds (0 for
 * immediate). first selects the first period of a connection, to which a
 * random phase applies. rng is a caller-owned xorshift state, nonzero.
 */
int64_t sim_propagation_next_delay(const sim_propagation *p, int first, uint64_t *rng);

/* A uniform 64-bit draw from the xorshift state. */
uint64_t sim_rng_next(uint64_t *rng);

#endif
