/*
 * Statistics of right-censored latencies: Kaplan-Meier estimates with
 * Greenwood confidence bands and quantiles, and two-sample comparisons
 * (log-rank, Mann-Whitney U, Hodges-Lehmann shift, Cliff's delta).
 *
 * No logging and no I/O. Values are doubles in any unit (the results module
 * passes seconds); every result is in the unit of the input. A value that
 * cannot be estimated (a quantile the curve never reaches, a statistic of an
 * empty group) is NaN. Functions are thread-safe on distinct objects.
 *
 * Censoring: a censored value is the time at which observation ended
 * without an effect, so the true latency is larger than it.
 *  - Kaplan-Meier and the log-rank test use the censoring properly. At a
 *    tied time, events count before censorings (the usual convention).
 *  - Mann-Whitney U, the Hodges-Lehmann shift and Cliff's delta use censored
 *    values at their censoring time, ranked with ties like any other value.
 *    In policylag every device of a run is observed for the same timeout,
 *    so a censored value is at least as large as every observed latency and
 *    its rank among the observed values is right; only its distance to them
 *    is understated, which makes the shift conservative (biased towards 0)
 *    when one group has more censored devices. Dropping censored values
 *    instead would make a group that mostly never saw the change look fast.
 *    The log-rank test is the primary test; see docs/statistics.md.
 */
#ifndef PL_STATS_H
#define PL_STATS_H

#include <stddef.h>

#include "common/error.h"

/* Quantile levels reported for every group: p50, p90, p95, p99. */
#define STATS_NQUANTILES 4
extern const double stats_quantile_levels[STATS_NQUANTILES];

/* A point estimate with a two-sided confidence interval; NaN where unknown. */
typedef struct stats_estimate {
	double value;
	double lo;
	double hi;
} stats_estimate;

/*
 * One group's observations, sorted by value (events before censorings at
 * equal values). Created once and shared by every routine below.
 */
typedef struct stats_sample stats_sample;

/*
 * Copies n values and censoring flags (nonzero = censored) into a sorted
 * sample. n may be 0. censored may be NULL (nothing censored). Values must
 * be finite (PL_ERR_INVALID names the index otherwise).
 */
pl_err stats_sample_create(stats_sample **out, const double *values,
			   const unsigned char *censored, size_t n, pl_errmsg *e);
void stats_sample_free(stats_sample *s);
size_t stats_sample_count(const stats_sample *s);
/* Value i of the sorted sample and its censoring flag. */
double stats_sample_value(const stats_sample *s, size_t i);
int stats_sample_censored(const stats_sample *s, size_t i);

/* One step of a Kaplan-Meier curve: the curve after all events at t. */
typedef struct stats_km_step {
	double t;
	size_t n_risk;   /* at risk just before t */
	size_t n_event;  /* effects at t */
	size_t n_censor; /* censored at t */
	double surv;     /* S(t): fraction not yet effective */
	double se;       /* Greenwood standard error of S(t) */
	double lo, hi;   /* pointwise confidence band of S(t) */
} stats_km_step;

/*
 * Kaplan-Meier curve of a sample, one step per distinct value that has an
 * event or a censoring. The pointwise band uses the Greenwood variance on
 * the log scale, exp(log S +- z * se / S) capped at 1 (R survfit's default
 * conf.type "log"). level is the confidence level, e.g. 0.95.
 */
typedef struct stats_km stats_km;
pl_err stats_km_create(stats_km **out, const stats_sample *s, double level, pl_errmsg *e);
void stats_km_free(stats_km *km);
size_t stats_km_nsteps(const stats_km *km);
const stats_km_step *stats_km_step_at(const stats_km *km, size_t i);
/* S(t), the fraction of the group without an effect at time t. */
double stats_km_survival(const stats_km *km, double t);
/*
 * Time by which a fraction p of the group saw the effect: the smallest t
 * with S(t) <= 1 - p (the midpoint to the next step when S(t) equals
 * 1 - p exactly), and its Brookmeyer-Crowley interval found by inverting
 * the pointwise band: lo is the time the lower band reaches 1 - p, hi the
 * time the upper band does (NaN when it never does). As in R's
 * quantile.survfit.
 */
stats_estimate stats_km_quantile(const stats_km *km, double p);

/* Per-group description. */
typedef struct stats_group {
	size_t n;
	size_t n_effect;
	size_t n_censored;
	double min, mean, max;                    /* over effective values; NaN if none */
	stats_estimate quantile[STATS_NQUANTILES]; /* Kaplan-Meier, at stats_quantile_levels */
} stats_group;

/* Describes a sample; km must be the sample's curve (its level sets the intervals). */
void stats_group_describe(const stats_sample *s, const stats_km *km, stats_group *out);

/* Log-rank (Mantel-Cox) test of equal time-to-effect distributions. */
typedef struct stats_logrank {
	double observed[2]; /* effects in a, b */
	double expected[2]; /* expected effects under equal hazards */
	double variance;
	double chisq;       /* 1 degree of freedom */
	double p;           /* two-sided; NaN when the test is undefined */
} stats_logrank;
void stats_logrank_test(const stats_sample *a, const stats_sample *b, stats_logrank *out);

/*
 * Mann-Whitney U test (R wilcox.test conventions). u is the statistic of a:
 * the number of pairs with a > b plus half the ties. The p-value is exact
 * when both groups have fewer than 50 values and there are no ties;
 * otherwise it uses the normal approximation with the tie-corrected variance
 * and a continuity correction of 0.5.
 */
typedef struct stats_mann_whitney {
	double u;
	double z;    /* NaN when exact */
	double p;    /* two-sided */
	int exact;
} stats_mann_whitney;
void stats_mann_whitney_test(const stats_sample *a, const stats_sample *b,
			     stats_mann_whitney *out);

/*
 * Hodges-Lehmann shift: the median of all differences a_i - b_j, with the
 * distribution-free interval from order statistics of the differences
 * (exact Wilcoxon quantiles for small samples without ties, normal
 * approximation otherwise). O((na + nb) * 64) time and O(na + nb) extra
 * space: the k-th difference is found by bisecting over the 64-bit ordered
 * representation of doubles, counting the differences below a value in one
 * merge pass; the four order statistics needed share each pass.
 */
/* out is NaN when a group is empty, or when memory for the copies runs out. */
void stats_hodges_lehmann(const stats_sample *a, const stats_sample *b, double level,
			  stats_estimate *out);

/* Cliff's delta, P(a > b) - P(a < b), in [-1, 1]; NaN for an empty group. */
double stats_cliff_delta(const stats_sample *a, const stats_sample *b);

/* All comparisons of a against b. */
typedef struct stats_comparison {
	stats_logrank logrank;
	stats_mann_whitney mann_whitney;
	stats_estimate shift; /* Hodges-Lehmann a - b */
	double cliff_delta;
} stats_comparison;
void stats_compare(const stats_sample *a, const stats_sample *b, double level,
		   stats_comparison *out);

/* Distributions used above, exposed for tests. */
double stats_normal_cdf(double z);
double stats_normal_quantile(double p);
double stats_chisq1_sf(double x); /* upper tail of chi-square with 1 df */

#endif
