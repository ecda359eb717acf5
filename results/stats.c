/*
 * Kaplan-Meier, log-rank, Mann-Whitney, Hodges-Lehmann and Cliff's delta on
 * sorted samples. The methods and their references are in docs/statistics.md.
 */
#include "results/stats.h"

#include <assert.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

const double stats_quantile_levels[STATS_NQUANTILES] = { 0.50, 0.90, 0.95, 0.99 };

/* R's wilcox.test switches to the normal approximation at 50 values per group. */
#define STATS_EXACT_MAX 50
/* Survival values closer than this are treated as equal when inverting the curve. */
#define STATS_SURV_EPS 1e-9

typedef struct stats_obs {
	double v;
	unsigned char censored;
} stats_obs;

struct stats_sample {
	stats_obs *obs;
	size_t n;
};

struct stats_km {
	stats_km_step *steps;
	size_t nsteps;
};

static int obs_order(const void *pa, const void *pb)
{
	const stats_obs *a = pa;
	const stats_obs *b = pb;

	if (a->v < b->v)
		return -1;
	if (a->v > b->v)
		return 1;
	return (int)a->censored - (int)b->censored;
}

/* Order-preserving map from doubles to unsigned integers (no NaNs here). */
static uint64_t double_key(double x)
{
	uint64_t bits;

	memcpy(&bits, &x, sizeof(bits));
	return bits & UINT64_C(0x8000000000000000) ? ~bits : bits | UINT64_C(0x8000000000000000);
}

/* Below this size qsort is as fast as the radix sort and needs no buffer. */
#define STATS_RADIX_MIN 4096

/*
 * Sorts by value, uncensored before censored at equal values: a stable
 * partition by the flag, then a stable LSD radix sort on the ordered keys,
 * one pass per byte, skipping bytes that are equal everywhere. Falls back
 * to qsort when the buffer cannot be allocated.
 */
static void sort_obs(stats_obs *obs, size_t n)
{
	size_t hist[8][256] = { { 0 } };
	stats_obs *tmp = n >= STATS_RADIX_MIN ? malloc(n * sizeof(*tmp)) : NULL;
	stats_obs *src = tmp, *dst = obs;
	size_t uncensored = 0, next_censored;

	if (tmp == NULL) {
		qsort(obs, n, sizeof(*obs), obs_order);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		uint64_t key = double_key(obs[i].v);
		uncensored += !obs[i].censored;
		for (int d = 0; d < 8; d++)
			hist[d][(key >> (8 * d)) & 0xff]++;
	}
	next_censored = uncensored;
	uncensored = 0;
	for (size_t i = 0; i < n; i++)
		tmp[obs[i].censored ? next_censored++ : uncensored++] = obs[i];
	for (int d = 0; d < 8; d++) {
		size_t pos[256], sum = 0;
		if (hist[d][(double_key(src[0].v) >> (8 * d)) & 0xff] == n)
			continue; /* every key has the same byte here */
		for (int b = 0; b < 256; b++) {
			pos[b] = sum;
			sum += hist[d][b];
		}
		for (size_t i = 0; i < n; i++)
			dst[pos[(double_key(src[i].v) >> (8 * d)) & 0xff]++] = src[i];
		stats_obs *swap = src;
		src = dst;
		dst = swap;
	}
	if (src != obs)
		memcpy(obs, src, n * sizeof(*obs));
	free(tmp);
}

pl_err stats_sample_create(stats_sample **out, const double *values,
			   const unsigned char *censored, size_t n, pl_errmsg *e)
{
	stats_sample *s;

	assert(out != NULL && (values != NULL || n == 0));
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return pl_errmsg_set(e, PL_ERR_NOMEM, "statistics: out of memory");
	if (n > 0) {
		s->obs = malloc(n * sizeof(*s->obs));
		if (s->obs == NULL) {
			free(s);
			return pl_errmsg_set(e, PL_ERR_NOMEM, "statistics: out of memory for %zu values", n);
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (!isfinite(values[i])) {
			stats_sample_free(s);
			return pl_errmsg_set(e, PL_ERR_INVALID,
					     "statistics: value %zu is not a finite number", i);
		}
		s->obs[i].v = values[i];
		s->obs[i].censored = censored != NULL && censored[i] ? 1 : 0;
	}
	s->n = n;
	if (n > 1)
		sort_obs(s->obs, n);
	*out = s;
	return PL_OK;
}

void stats_sample_free(stats_sample *s)
{
	if (s == NULL)
		return;
	free(s->obs);
	free(s);
}

size_t stats_sample_count(const stats_sample *s)
{
	return s->n;
}

double stats_sample_value(const stats_sample *s, size_t i)
{
	assert(i < s->n);
	return s->obs[i].v;
}

int stats_sample_censored(const stats_sample *s, size_t i)
{
	assert(i < s->n);
	return s->obs[i].censored;
}

/* ---- distributions ---- */

double stats_normal_cdf(double z)
{
	return 0.5 * erfc(-z / sqrt(2.0));
}

double stats_chisq1_sf(double x)
{
	if (isnan(x))
		return NAN;
	if (x <= 0)
		return 1.0;
	return erfc(sqrt(x / 2.0));
}

/*
 * Acklam's rational approximation (relative error 1.15e-9) refined by one
 * Halley step against erfc, which brings it to double precision.
 */
double stats_normal_quantile(double p)
{
	static const double a[] = { -3.969683028665376e+01, 2.209460984245205e+02,
				    -2.759285104469687e+02, 1.383577518672690e+02,
				    -3.066479806614716e+01, 2.506628277459239e+00 };
	static const double b[] = { -5.447609879822406e+01, 1.615858368580409e+02,
				    -1.556989798598866e+02, 6.680131188771972e+01,
				    -1.328068155288572e+01 };
	static const double c[] = { -7.784894002430293e-03, -3.223964580411365e-01,
				    -2.400758277161838e+00, -2.549732539343734e+00,
				    4.374664141464968e+00, 2.938163982698783e+00 };
	static const double d[] = { 7.784695709041462e-03, 3.224671290700398e-01,
				    2.445134137142996e+00, 3.754408661907416e+00 };
	double q, r, x;

	if (p == 0)
		return -INFINITY;
	if (p == 1)
		return INFINITY;
	if (!(p > 0 && p < 1))
		return NAN;
	if (p < 0.02425) {
		q = sqrt(-2 * log(p));
		x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
		    ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
	} else if (p <= 1 - 0.02425) {
		q = p - 0.5;
		r = q * q;
		x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
		    (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
	} else {
		q = sqrt(-2 * log(1 - p));
		x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
		    ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
	}
	double err = stats_normal_cdf(x) - p;
	double u = err * sqrt(2 * M_PI) * exp(x * x / 2);
	return x - u / (1 + x * u / 2);
}

/* ---- Kaplan-Meier ---- */

static void km_band(stats_km_step *st, double greenwood, double z)
{
	st->se = st->surv * sqrt(greenwood);
	if (st->surv <= 0 || !isfinite(greenwood)) {
		/* S = 0 has no log-scale band; the curve is certain to be below any level. */
		st->lo = 0;
		st->hi = 0;
		return;
	}
	double half = z * sqrt(greenwood);
	st->lo = exp(log(st->surv) - half);
	st->hi = fmin(1.0, exp(log(st->surv) + half));
}

pl_err stats_km_create(stats_km **out, const stats_sample *s, double level, pl_errmsg *e)
{
	stats_km *km;
	double surv = 1.0, greenwood = 0.0;
	double z = stats_normal_quantile(1 - (1 - level) / 2);
	size_t at_risk = s->n;

	assert(out != NULL);
	assert(level > 0 && level < 1);
	km = calloc(1, sizeof(*km));
	if (km == NULL)
		return pl_errmsg_set(e, PL_ERR_NOMEM, "statistics: out of memory");
	if (s->n > 0) {
		km->steps = malloc(s->n * sizeof(*km->steps));
		if (km->steps == NULL) {
			free(km);
			return pl_errmsg_set(e, PL_ERR_NOMEM, "statistics: out of memory for a curve of %zu values", s->n);
		}
	}
	for (size_t i = 0; i < s->n;) {
		stats_km_step *st = &km->steps[km->nsteps++];
		double t = s->obs[i].v;
		size_t events = 0, censors = 0;

		for (; i < s->n && s->obs[i].v == t; i++) {
			if (s->obs[i].censored)
				censors++;
			else
				events++;
		}
		st->t = t;
		st->n_risk = at_risk;
		st->n_event = events;
		st->n_censor = censors;
		if (events > 0) {
			surv *= 1.0 - (double)events / (double)at_risk;
			greenwood += events == at_risk ? INFINITY
					: (double)events / ((double)at_risk * (double)(at_risk - events));
		}
		st->surv = surv;
		km_band(st, greenwood, z);
		at_risk -= events + censors;
	}
	*out = km;
	return PL_OK;
}

void stats_km_free(stats_km *km)
{
	if (km == NULL)
		return;
	free(km->steps);
	free(km);
}

size_t stats_km_nsteps(const stats_km *km)
{
	return km->nsteps;
}

const stats_km_step *stats_km_step_at(const stats_km *km, size_t i)
{
	assert(i < km->nsteps);
	return &km->steps[i];
}

double stats_km_survival(const stats_km *km, double t)
{
	double surv = 1.0;

	for (size_t i = 0; i < km->nsteps && km->steps[i].t <= t; i++)
		surv = km->steps[i].surv;
	return surv;
}

/* Curve that stats_km_quantile inverts: the estimate or one edge of its band. */
enum km_curve { KM_ESTIMATE, KM_LOWER, KM_UPPER };

static double km_curve_value(const stats_km_step *st, enum km_curve which)
{
	switch (which) {
	case KM_LOWER:
		return st->lo;
	case KM_UPPER:
		return st->hi;
	case KM_ESTIMATE:
	default:
		return st->surv;
	}
}

/*
 * Time at which the curve, from step first on, sits at or below target.
 * When it sits exactly on target, the result is the midpoint to the next
 * time the curve drops, as in R's quantile.survfit. *index receives the
 * step, or nsteps when the curve never gets there (NaN is returned).
 */
static double km_crossing(const stats_km *km, size_t first, double target,
			  enum km_curve which, size_t *index)
{
	for (size_t i = first; i < km->nsteps; i++) {
		double v = km_curve_value(&km->steps[i], which);

		if (v > target + STATS_SURV_EPS)
			continue;
		*index = i;
		if (fabs(v - target) > STATS_SURV_EPS)
			return km->steps[i].t;
		for (size_t j = i + 1; j < km->nsteps; j++) {
			if (km_curve_value(&km->steps[j], which) < v - STATS_SURV_EPS)
				return (km->steps[i].t + km->steps[j].t) / 2;
		}
		return km->steps[i].t;
	}
	*index = km->nsteps;
	return NAN;
}

/*
 * First step of a nonincreasing curve (the estimate or its lower band) at
 * or below target, by binary search; nsteps when there is none.
 */
static size_t km_first_at_or_below(const stats_km *km, double target, enum km_curve which)
{
	size_t lo = 0, hi = km->nsteps;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (km_curve_value(&km->steps[mid], which) > target + STATS_SURV_EPS)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * The estimate and the lower band never rise, so their crossings are found
 * by binary search. The upper band may rise, but it is never below the
 * estimate, so its first crossing is scanned for from the estimate's.
 */
stats_estimate stats_km_quantile(const stats_km *km, double p)
{
	stats_estimate est;
	double target = 1.0 - p;
	size_t at, unused;

	est.value = km_crossing(km, km_first_at_or_below(km, target, KM_ESTIMATE), target,
				KM_ESTIMATE, &at);
	est.lo = km_crossing(km, km_first_at_or_below(km, target, KM_LOWER), target, KM_LOWER,
			     &unused);
	est.hi = km_crossing(km, at, target, KM_UPPER, &unused);
	return est;
}

void stats_group_describe(const stats_sample *s, const stats_km *km, stats_group *out)
{
	double sum = 0;

	memset(out, 0, sizeof(*out));
	out->n = s->n;
	out->min = out->mean = out->max = NAN;
	for (size_t i = 0; i < s->n; i++) {
		if (s->obs[i].censored) {
			out->n_censored++;
			continue;
		}
		if (out->n_effect == 0)
			out->min = s->obs[i].v;
		out->max = s->obs[i].v;
		out->n_effect++;
		sum += s->obs[i].v;
	}
	if (out->n_effect > 0)
		out->mean = sum / (double)out->n_effect;
	for (size_t q = 0; q < STATS_NQUANTILES; q++)
		out->quantile[q] = stats_km_quantile(km, stats_quantile_levels[q]);
}

/* ---- log-rank ---- */

void stats_logrank_test(const stats_sample *a, const stats_sample *b, stats_logrank *out)
{
	size_t ia = 0, ib = 0;
	double risk_a = (double)a->n, risk_b = (double)b->n;

	memset(out, 0, sizeof(*out));
	while (ia < a->n || ib < b->n) {
		double t = ia < a->n ? a->obs[ia].v : INFINITY;
		double d_a = 0, d_b = 0, c_a = 0, c_b = 0;

		if (ib < b->n && b->obs[ib].v < t)
			t = b->obs[ib].v;
		for (; ia < a->n && a->obs[ia].v == t; ia++)
			*(a->obs[ia].censored ? &c_a : &d_a) += 1;
		for (; ib < b->n && b->obs[ib].v == t; ib++)
			*(b->obs[ib].censored ? &c_b : &d_b) += 1;

		double risk = risk_a + risk_b, d = d_a + d_b;
		if (d > 0) {
			out->observed[0] += d_a;
			out->observed[1] += d_b;
			out->expected[0] += d * risk_a / risk;
			out->expected[1] += d * risk_b / risk;
			if (risk > 1)
				out->variance += d * (risk_a / risk) * (risk_b / risk) *
						 (risk - d) / (risk - 1);
		}
		risk_a -= d_a + c_a;
		risk_b -= d_b + c_b;
	}
	if (out->variance > 0) {
		double diff = out->observed[0] - out->expected[0];
		out->chisq = diff * diff / out->variance;
		out->p = stats_chisq1_sf(out->chisq);
	} else {
		out->chisq = NAN;
		out->p = NAN;
	}
}

/* ---- ranks: Mann-Whitney U, Cliff's delta ---- */

typedef struct rank_sums {
	double u_a;       /* pairs with a > b plus half of the ties */
	double tie_term;  /* sum over tie groups of t^3 - t */
	int has_ties;
} rank_sums;

/* One merge pass over both sorted samples, giving midranks to tie groups. */
static void rank_merge(const stats_sample *a, const stats_sample *b, rank_sums *out)
{
	size_t ia = 0, ib = 0;
	double rank_sum_a = 0, next_rank = 1;

	memset(out, 0, sizeof(*out));
	while (ia < a->n || ib < b->n) {
		double t = ia < a->n ? a->obs[ia].v : INFINITY;
		double c_a = 0, c_b = 0;

		if (ib < b->n && b->obs[ib].v < t)
			t = b->obs[ib].v;
		for (; ia < a->n && a->obs[ia].v == t; ia++)
			c_a++;
		for (; ib < b->n && b->obs[ib].v == t; ib++)
			c_b++;

		double tied = c_a + c_b;
		rank_sum_a += c_a * (next_rank + (tied - 1) / 2);
		next_rank += tied;
		if (tied > 1) {
			out->has_ties = 1;
			out->tie_term += tied * tied * tied - tied;
		}
	}
	out->u_a = rank_sum_a - (double)a->n * ((double)a->n + 1) / 2;
}

/*
 * Distribution of U without ties: the coefficients of the Gaussian binomial
 * [m+n choose m]_q = prod_{i=1..m} (1 - q^(n+i)) / (1 - q^i), divided by
 * C(m+n, m). Returns a malloc'ed array of m*n+1 probabilities, or NULL.
 */
static double *wilcox_distribution(size_t m, size_t n)
{
	size_t top = m * n;
	double *c = calloc(top + 1, sizeof(*c));
	double total = 0;

	if (c == NULL)
		return NULL;
	c[0] = 1;
	for (size_t i = 1; i <= m; i++) {
		for (size_t k = top; k >= n + i; k--)
			c[k] -= c[k - (n + i)];
		for (size_t k = i; k <= top; k++)
			c[k] += c[k - i];
	}
	for (size_t k = 0; k <= top; k++)
		total += c[k];
	for (size_t k = 0; k <= top; k++)
		c[k] /= total;
	return c;
}

static double wilcox_cdf(const double *dist, size_t top, double q)
{
	double sum = 0;

	for (size_t k = 0; k <= top && (double)k <= q; k++)
		sum += dist[k];
	return fmin(sum, 1.0);
}

static int use_exact(const stats_sample *a, const stats_sample *b, const rank_sums *r)
{
	return a->n < STATS_EXACT_MAX && b->n < STATS_EXACT_MAX && !r->has_ties;
}

static double u_variance(size_t m, size_t n, const rank_sums *r)
{
	double dm = (double)m, dn = (double)n, total = dm + dn;

	return dm * dn / 12.0 * ((total + 1) - r->tie_term / (total * (total - 1)));
}

void stats_mann_whitney_test(const stats_sample *a, const stats_sample *b,
			     stats_mann_whitney *out)
{
	rank_sums r;
	double mean;

	memset(out, 0, sizeof(*out));
	out->z = out->p = NAN;
	if (a->n == 0 || b->n == 0) {
		out->u = NAN;
		return;
	}
	rank_merge(a, b, &r);
	out->u = r.u_a;
	mean = (double)a->n * (double)b->n / 2;
	if (use_exact(a, b, &r)) {
		double *dist = wilcox_distribution(a->n, b->n);
		size_t top = a->n * b->n;

		if (dist != NULL) {
			double p = out->u > mean ? 1 - wilcox_cdf(dist, top, out->u - 1)
						 : wilcox_cdf(dist, top, out->u);
			out->p = fmin(2 * p, 1.0);
			out->exact = 1;
			free(dist);
			return;
		}
	}
	double var = u_variance(a->n, b->n, &r);
	if (var <= 0)
		return; /* every value tied: no information */
	double diff = out->u - mean;
	double correction = 0;
	if (diff > 0)
		correction = 0.5;
	else if (diff < 0)
		correction = -0.5;
	out->z = (diff - correction) / sqrt(var);
	out->p = fmin(1.0, 2 * fmin(stats_normal_cdf(out->z), stats_normal_cdf(-out->z)));
}

double stats_cliff_delta(const stats_sample *a, const stats_sample *b)
{
	rank_sums r;

	if (a->n == 0 || b->n == 0)
		return NAN;
	rank_merge(a, b, &r);
	return 2 * r.u_a / ((double)a->n * (double)b->n) - 1;
}

/* ---- Hodges-Lehmann ---- */


static double key_double(uint64_t key)
{
	uint64_t bits = key & UINT64_C(0x8000000000000000) ? key & ~UINT64_C(0x8000000000000000)
							   : ~key;
	double x;

	memcpy(&x, &bits, sizeof(x));
	return x;
}

/* Order statistics the Hodges-Lehmann estimate needs: two for the median, two for the interval. */
#define HL_TARGETS 4

/*
 * Counts, for each of nt values v[t], the pairs with a_i - b_j <= v[t]. For
 * fixed i the difference falls as j grows, and for fixed j it rises with i
 * (floating-point subtraction is monotone too), so the first j that
 * qualifies only moves right. One pass serves every value, which keeps the
 * memory traffic of a pass to one read of each array.
 */
static void count_differences_le(const double *a, size_t na, const double *b, size_t nb,
				 const double *v, size_t nt, uint64_t *count)
{
	size_t j[HL_TARGETS] = { 0 };

	for (size_t t = 0; t < nt; t++)
		count[t] = 0;
	for (size_t i = 0; i < na; i++) {
		for (size_t t = 0; t < nt; t++) {
			while (j[t] < nb && a[i] - b[j[t]] > v[t])
				j[t]++;
			count[t] += nb - j[t];
		}
	}
}

/* Rearranges v so that v[k] is the value of rank k (0-based) in sorted order. */
static void select_rank(double *v, size_t n, size_t k)
{
	size_t lo = 0, hi = n - 1;

	while (lo < hi) {
		double pivot = v[lo + (hi - lo) / 2];
		size_t i = lo, j = hi;
		while (i <= j) {
			while (v[i] < pivot)
				i++;
			while (v[j] > pivot)
				j--;
			if (i <= j) {
				double tmp = v[i];
				v[i] = v[j];
				v[j] = tmp;
				i++;
				if (j == 0)
					break;
				j--;
			}
		}
		if (k <= j)
			hi = j;
		else if (k >= i)
			lo = i;
		else
			return;
	}
}

/* The differences a_i - b_j in (lo, hi], appended to out (which has room for them). */
static size_t collect_differences(const double *a, size_t na, const double *b, size_t nb,
				  double lo, double hi, double *out)
{
	size_t j_hi = 0, j_lo = 0, n = 0;

	for (size_t i = 0; i < na; i++) {
		while (j_hi < nb && a[i] - b[j_hi] > hi)
			j_hi++;
		while (j_lo < nb && a[i] - b[j_lo] > lo)
			j_lo++;
		for (size_t j = j_hi; j < j_lo; j++)
			out[n++] = a[i] - b[j];
	}
	return n;
}

/* Bisection state of one order statistic, which lies in (lo, hi] (ordered keys). */
typedef struct kth_search {
	uint64_t k, lo, hi;
	uint64_t count_lo, count_hi; /* differences <= lo and <= hi: count_lo < k <= count_hi */
	int done;
	double result;
} kth_search;

/*
 * Finishes a search when one value remains, or when few enough differences
 * lie in (lo, hi] to select among them directly. Returns 0 when neither
 * applies or the buffer cannot be allocated.
 */
static int kth_finish(kth_search *ks, const double *a, size_t na, const double *b, size_t nb,
		      uint64_t limit)
{
	if (ks->hi - ks->lo == 1) {
		ks->result = key_double(ks->hi);
		return ks->done = 1;
	}
	if (ks->count_hi - ks->count_lo > limit)
		return 0;
	double *buf = malloc((size_t)(ks->count_hi - ks->count_lo) * sizeof(*buf));
	if (buf == NULL)
		return 0;
	size_t n = collect_differences(a, na, b, nb, key_double(ks->lo), key_double(ks->hi), buf);
	size_t rank = (size_t)(ks->k - ks->count_lo - 1);
	assert(n == ks->count_hi - ks->count_lo);
	assert(rank < n);
	select_rank(buf, n, rank);
	ks->result = buf[rank];
	free(buf);
	return ks->done = 1;
}

/*
 * The k[t]-th smallest (1-based) differences a_i - b_j of sorted a and b:
 * for each, the smallest double v with at least k[t] differences <= v.
 * Bisection over the ordered 64-bit keys of doubles takes at most 64
 * passes; it stops earlier once at most na + nb differences remain in the
 * bracket, which are then collected and selected directly. Typical data
 * need about 30 passes.
 */
static void kth_differences(const double *a, size_t na, const double *b, size_t nb,
			    const uint64_t *k, size_t nt, double *out)
{
	kth_search ks[HL_TARGETS];
	uint64_t count[HL_TARGETS], limit = na + nb > 1024 ? na + nb : 1024;
	double mid[HL_TARGETS];
	size_t pending = nt;

	assert(nt <= HL_TARGETS);
	for (size_t t = 0; t < nt; t++) {
		ks[t] = (kth_search){ .k = k[t], .lo = double_key(a[0] - b[nb - 1]) - 1,
				      .hi = double_key(a[na - 1] - b[0]), .count_lo = 0,
				      .count_hi = (uint64_t)na * nb };
		pending -= (size_t)kth_finish(&ks[t], a, na, b, nb, limit);
	}
	while (pending > 0) {
		for (size_t t = 0; t < nt; t++)
			mid[t] = key_double(ks[t].lo + (ks[t].hi - ks[t].lo) / 2);
		count_differences_le(a, na, b, nb, mid, nt, count);
		for (size_t t = 0; t < nt; t++) {
			if (ks[t].done)
				continue;
			uint64_t m = ks[t].lo + (ks[t].hi - ks[t].lo) / 2;
			if (count[t] >= ks[t].k) {
				ks[t].hi = m;
				ks[t].count_hi = count[t];
			} else {
				ks[t].lo = m;
				ks[t].count_lo = count[t];
			}
			pending -= (size_t)kth_finish(&ks[t], a, na, b, nb, limit);
		}
	}
	for (size_t t = 0; t < nt; t++)
		out[t] = ks[t].result;
}

/* Order statistic of the differences that bounds the interval from below (1-based). */
static uint64_t hl_interval_rank(const stats_sample *a, const stats_sample *b, double level)
{
	rank_sums r;
	uint64_t total = (uint64_t)a->n * b->n;
	double alpha = 1 - level;

	rank_merge(a, b, &r);
	if (use_exact(a, b, &r)) {
		double *dist = wilcox_distribution(a->n, b->n);

		if (dist != NULL) {
			/* R: qu <- qwilcox(alpha/2, m, n), the smallest q with P(U <= q) >= alpha/2. */
			double cum = 0;
			uint64_t q = 0;

			for (; q < total; q++) {
				cum += dist[q];
				if (cum >= alpha / 2 - 1e-12)
					break;
			}
			free(dist);
			return q == 0 ? 1 : q;
		}
	}
	double c = (double)total / 2 - stats_normal_quantile(1 - alpha / 2) *
					   sqrt(u_variance(a->n, b->n, &r));
	return c < 1 ? 1 : (uint64_t)floor(c);
}

/* Copies the values of a sample into a plain array: half the memory traffic of stats_obs. */
static double *sample_values(const stats_sample *s)
{
	double *v = malloc(s->n * sizeof(*v));

	if (v != NULL)
		for (size_t i = 0; i < s->n; i++)
			v[i] = s->obs[i].v;
	return v;
}

void stats_hodges_lehmann(const stats_sample *a, const stats_sample *b, double level,
			  stats_estimate *out)
{
	uint64_t total, k[HL_TARGETS];
	double d[HL_TARGETS];
	double *va, *vb;

	out->value = out->lo = out->hi = NAN;
	if (a->n == 0 || b->n == 0)
		return;
	va = sample_values(a);
	vb = sample_values(b);
	if (va != NULL && vb != NULL) {
		total = (uint64_t)a->n * b->n;
		k[0] = (total + 1) / 2;   /* lower median */
		k[1] = total / 2 + 1;     /* upper median (the same one when total is odd) */
		k[2] = hl_interval_rank(a, b, level);
		if (k[2] > total)
			k[2] = total;
		k[3] = total - k[2] + 1;
		kth_differences(va, a->n, vb, b->n, k, HL_TARGETS, d);
		out->value = (d[0] + d[1]) / 2;
		out->lo = d[2];
		out->hi = d[3];
	}
	free(va);
	free(vb);
}

void stats_compare(const stats_sample *a, const stats_sample *b, double level,
		   stats_comparison *out)
{
	stats_logrank_test(a, b, &out->logrank);
	stats_mann_whitney_test(a, b, &out->mann_whitney);
	stats_hodges_lehmann(a, b, level, &out->shift);
	out->cliff_delta = stats_cliff_delta(a, b);
}
