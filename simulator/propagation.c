/*
 * Propagation model parsing and refresh scheduling. See propagation.h.
 */
#include "simulator/propagation.h"

#include <stdio.h>
#include <string.h>

#include "common/clock.h"
#include "common/parse.h"

/* Refresh periods between 1 ms and 30 days; shorter or longer is a typo. */
#define MIN_PERIOD_NS PL_NS_PER_MS
#define MAX_PERIOD_NS (30 * 86400 * PL_NS_PER_S)

static pl_err parse_range(const char *text, sim_propagation *out, pl_errmsg *e)
{
	char low[64];
	const char *dash = strchr(text, '-');
	size_t len = dash ? (size_t)(dash - text) : 0;

	if (!dash || len == 0 || len >= sizeof(low))
		return pl_errmsg_set(e, PL_ERR_INVALID,
				     "invalid uniform range '%s' (expected for example 360s-480s)",
				     text);
	memcpy(low, text, len);
	low[len] = '\0';
	if (pl_parse_duration(low, MIN_PERIOD_NS, MAX_PERIOD_NS, &out->min_ns, e) != PL_OK ||
	    pl_parse_duration(dash + 1, MIN_PERIOD_NS, MAX_PERIOD_NS, &out->max_ns, e) != PL_OK)
		return PL_ERR_INVALID;
	if (out->max_ns < out->min_ns)
		return pl_errmsg_set(e, PL_ERR_INVALID,
				     "invalid uniform range '%s': the upper bound is below the lower",
				     text);
	return PL_OK;
}

pl_err sim_propagation_parse(const char *text, sim_propagation *out, pl_errmsg *e)
{
	sim_propagation p = *out;

	if (strcmp(text, "immediate") == 0) {
		p.kind = SIM_PROP_IMMEDIATE;
		p.min_ns = p.max_ns = 0;
	} else if (strncmp(text, "ttl:", 4) == 0) {
		p.kind = SIM_PROP_TTL;
		if (pl_parse_duration(text + 4, MIN_PERIOD_NS, MAX_PERIOD_NS, &p.min_ns, e) != PL_OK)
			return PL_ERR_INVALID;
		p.max_ns = p.min_ns;
	} else if (strncmp(text, "uniform:", 8) == 0) {
		p.kind = SIM_PROP_UNIFORM;
		if (parse_range(text + 8, &p, e) != PL_OK)
			return PL_ERR_INVALID;
	} else {
		return pl_errmsg_set(e, PL_ERR_INVALID,
				     "invalid propagation model '%s' (expected immediate, "
				     "ttl:DURATION or uniform:DURATION-DURATION)", text);
	}
	*out = p;
	return PL_OK;
}

pl_err sim_refresh_phase_parse(const char *text, sim_refresh_phase *out, pl_errmsg *e)
{
	if (strcmp(text, "connect") == 0)
		*out = SIM_PHASE_CONNECT;
	else if (strcmp(text, "random") == 0)
		*out = SIM_PHASE_RANDOM;
	else
		return pl_errmsg_set(e, PL_ERR_INVALID,
				     "invalid refresh phase '%s' (expected connect or random)", text);
	return PL_OK;
}

void sim_propagation_format(const sim_propagation *p, char *buf, unsigned long len)
{
	char a[32], b[32];

	pl_format_duration(p->min_ns, a, sizeof(a));
	pl_format_duration(p->max_ns, b, sizeof(b));
	if (p->kind == SIM_PROP_IMMEDIATE)
		snprintf(buf, len, "immediate");
	else if (p->kind == SIM_PROP_TTL)
		snprintf(buf, len, "ttl:%s", a);
	else
		snprintf(buf, len, "uniform:%s-%s", a, b);
}

uint64_t sim_rng_next(uint64_t *rng)
{
	uint64_t x = *rng; /* xorshift64* */

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*rng = x;
	return x * 2685821657736338717ULL;
}

static int64_t draw(int64_t low, int64_t high, uint64_t *rng)
{
	uint64_t span = (uint64_t)(high - low) + 1;

	return low + (int64_t)(sim_rng_next(rng) % span);
}

int64_t sim_propagation_next_delay(const sim_propagation *p, int first, uint64_t *rng)
{
	int64_t period;

	if (p->kind == SIM_PROP_IMMEDIATE)
		return 0;
	period = p->kind == SIM_PROP_TTL ? p->min_ns : draw(p->min_ns, p->max_ns, rng);
	/* A random phase puts the first refresh anywhere in the first period,
	 * so connections made together do not refresh together. */
	if (first && p->phase == SIM_PHASE_RANDOM)
		period = draw(1, period, rng);
	return period;
}
