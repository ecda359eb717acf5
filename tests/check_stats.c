/*
 * Statistics against published reference values and hand-computed cases.
 *
 * Freireich et al. (1963) 6-MP leukemia remission data (weeks; "+" marks
 * censored): 6-MP 6 6 6 6+ 7 9+ 10 10+ 11+ 13 16 17+ 19+ 20+ 22 23 25+ 32+
 * 32+ 34+ 35+; placebo 1 1 2 2 3 4 4 5 5 8 8 8 8 11 11 12 12 15 17 22 23.
 * Reference values: the Kaplan-Meier table of the 6-MP group (survival and
 * Greenwood standard errors as in Kleinbaum & Klein, Survival Analysis,
 * and R survival's summary(survfit(...)) with conf.type = "log"), the medians
 * with their intervals from print(survfit(...)) (6-MP 23, 16 to NA; placebo
 * 8, 4 to 12) and the log-rank chi-square 16.79 (p = 4.17e-5, observed 9
 * and 21, expected 19.25 and 10.75) from survdiff.
 *
 * Mann-Whitney: the example of R's wilcox.test help page (Hollander & Wolfe,
 * permeability constants): W = 35, one-sided p = 0.1272, so two-sided
 * 0.2544; the Hodges-Lehmann estimate is the median of the 50 differences.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>

#include "results/stats.h"

static const double mp_time[] = { 6, 6, 6, 6, 7, 9, 10, 10, 11, 13, 16,
				  17, 19, 20, 22, 23, 25, 32, 32, 34, 35 };
static const unsigned char mp_cens[] = { 0, 0, 0, 1, 0, 1, 0, 1, 1, 0, 0,
					 1, 1, 1, 0, 0, 1, 1, 1, 1, 1 };
static const double placebo[] = { 1, 1, 2, 2, 3, 4, 4, 5, 5, 8, 8, 8, 8, 11, 11,
				  12, 12, 15, 17, 22, 23 };

static const double hw_x[] = { 0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46 };
static const double hw_y[] = { 1.15, 0.88, 0.90, 0.74, 1.21 };

static stats_sample *sample(const double *v, const unsigned char *c, size_t n)
{
	stats_sample *s = NULL;

	ck_assert_int_eq(stats_sample_create(&s, v, c, n, NULL), PL_OK);
	return s;
}

static stats_km *curve(const stats_sample *s)
{
	stats_km *km = NULL;

	ck_assert_int_eq(stats_km_create(&km, s, 0.95, NULL), PL_OK);
	return km;
}

START_TEST(test_stats_km_freireich_table)
{
	/* Event times of the 6-MP group: t, at risk, S, se, lower, upper (95%, log). */
	static const double expected[][6] = {
		{ 6, 21, 0.857, 0.0764, 0.720, 1.000 }, { 7, 17, 0.807, 0.0869, 0.653, 0.996 },
		{ 10, 15, 0.753, 0.0963, 0.586, 0.968 }, { 13, 12, 0.690, 0.1068, 0.510, 0.935 },
		{ 16, 11, 0.627, 0.1141, 0.439, 0.896 }, { 22, 7, 0.538, 0.1282, 0.337, 0.858 },
		{ 23, 6, 0.448, 0.1346, 0.249, 0.807 },
	};
	stats_sample *s = sample(mp_time, mp_cens, 21);
	stats_km *km = curve(s);
	size_t row = 0;

	for (size_t i = 0; i < stats_km_nsteps(km); i++) {
		const stats_km_step *st = stats_km_step_at(km, i);
		if (st->n_event == 0)
			continue;
		ck_assert_uint_lt(row, 7);
		ck_assert_double_eq_tol(st->t, expected[row][0], 1e-12);
		ck_assert_uint_eq(st->n_risk, (size_t)expected[row][1]);
		ck_assert_double_eq_tol(st->surv, expected[row][2], 5e-4);
		ck_assert_double_eq_tol(st->se, expected[row][3], 5e-5);
		ck_assert_double_eq_tol(st->lo, expected[row][4], 5e-4);
		ck_assert_double_eq_tol(st->hi, expected[row][5], 5e-4);
		row++;
	}
	ck_assert_uint_eq(row, 7);
	stats_km_free(km);
	stats_sample_free(s);
}
END_TEST

START_TEST(test_stats_km_freireich_medians)
{
	stats_sample *a = sample(mp_time, mp_cens, 21), *b = sample(placebo, NULL, 21);
	stats_km *ka = curve(a), *kb = curve(b);
	stats_estimate ma = stats_km_quantile(ka, 0.5), mb = stats_km_quantile(kb, 0.5);

	ck_assert_double_eq(ma.value, 23);
	ck_assert_double_eq(ma.lo, 16);
	ck_assert(isnan(ma.hi));
	ck_assert_double_eq(mb.value, 8);
	ck_assert_double_eq(mb.lo, 4);
	ck_assert_double_eq(mb.hi, 12);
	stats_km_free(ka);
	stats_km_free(kb);
	stats_sample_free(a);
	stats_sample_free(b);
}
END_TEST

START_TEST(test_stats_logrank_freireich)
{
	stats_sample *a = sample(mp_time, mp_cens, 21), *b = sample(placebo, NULL, 21);
	stats_logrank lr;

	stats_logrank_test(a, b, &lr);
	ck_assert_double_eq_tol(lr.chisq, 16.79, 0.005);
	ck_assert_double_eq_tol(lr.p, 4.17e-5, 0.01e-5);
	ck_assert_double_eq(lr.observed[0], 9);
	ck_assert_double_eq(lr.observed[1], 21);
	ck_assert_double_eq_tol(lr.expected[0], 19.25, 0.005);
	ck_assert_double_eq_tol(lr.expected[1], 10.75, 0.005);
	stats_sample_free(a);
	stats_sample_free(b);
}
END_TEST

START_TEST(test_stats_mann_whitney_r_example)
{
	stats_sample *x = sample(hw_x, NULL, 10), *y = sample(hw_y, NULL, 5);
	stats_mann_whitney mw;

	stats_mann_whitney_test(x, y, &mw);
	ck_assert_double_eq(mw.u, 35);
	ck_assert_int_eq(mw.exact, 1);
	ck_assert_double_eq_tol(mw.p, 0.2544, 1e-4);
	stats_sample_free(x);
	stats_sample_free(y);
}
END_TEST

START_TEST(test_stats_mann_whitney_ties_normal)
{
	/*
	 * a = {1, 2, 3}, b = {2, 4}: midranks 1, 2.5, 4 for a, so U = 7.5 - 6 =
	 * 1.5; tie term 2^3 - 2 = 6; var = 3*2/12 * (6 - 6/20) = 2.85;
	 * z = (1.5 - 3 + 0.5) / sqrt(2.85) = -0.5923; p = 2 * Phi(z) = 0.5536.
	 */
	static const double a_v[] = { 1, 2, 3 }, b_v[] = { 2, 4 };
	stats_sample *a = sample(a_v, NULL, 3), *b = sample(b_v, NULL, 2);
	stats_mann_whitney mw;

	stats_mann_whitney_test(a, b, &mw);
	ck_assert_double_eq(mw.u, 1.5);
	ck_assert_int_eq(mw.exact, 0);
	ck_assert_double_eq_tol(mw.z, -0.5923, 1e-4);
	ck_assert_double_eq_tol(mw.p, 0.5536, 1e-4);
	ck_assert_double_eq_tol(stats_cliff_delta(a, b), -0.5, 1e-12);
	stats_sample_free(a);
	stats_sample_free(b);
}
END_TEST

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* All differences a_i - b_j sorted, the O(n*m) definition the fast code must match. */
static double *all_differences(const double *a, size_t na, const double *b, size_t nb)
{
	double *d = malloc(na * nb * sizeof(*d));

	ck_assert_ptr_nonnull(d);
	for (size_t i = 0; i < na; i++)
		for (size_t j = 0; j < nb; j++)
			d[i * nb + j] = a[i] - b[j];
	qsort(d, na * nb, sizeof(*d), cmp_double);
	return d;
}

START_TEST(test_stats_hodges_lehmann_r_example)
{
	stats_sample *x = sample(hw_x, NULL, 10), *y = sample(hw_y, NULL, 5);
	double *d = all_differences(hw_x, 10, hw_y, 5);
	stats_estimate hl;

	stats_hodges_lehmann(x, y, 0.95, &hl);
	ck_assert_double_eq_tol(hl.value, 0.305, 1e-12);
	ck_assert_double_eq_tol(hl.value, (d[24] + d[25]) / 2, 1e-12);
	/*
	 * Exact interval: the Mann-Whitney critical value for 10 and 5 values at
	 * a two-sided 0.05 is U = 8, so R's qwilcox(0.025, 10, 5) is 9 and the
	 * interval runs from the 9th to the 42nd smallest difference.
	 */
	ck_assert_double_eq(hl.lo, d[8]);
	ck_assert_double_eq(hl.hi, d[41]);
	free(d);
	stats_sample_free(x);
	stats_sample_free(y);
}
END_TEST

START_TEST(test_stats_hodges_lehmann_brute_force)
{
	enum { NA = 301, NB = 180 };
	double a[NA], b[NB];
	stats_estimate hl;

	srand(7);
	for (size_t i = 0; i < NA; i++)
		a[i] = (double)(rand() % 500) / 10; /* many ties */
	for (size_t i = 0; i < NB; i++)
		b[i] = (double)(rand() % 300) / 7;
	stats_sample *sa = sample(a, NULL, NA), *sb = sample(b, NULL, NB);
	double *d = all_differences(a, NA, b, NB);
	size_t total = (size_t)NA * NB;

	stats_hodges_lehmann(sa, sb, 0.95, &hl);
	ck_assert_double_eq(hl.value, (d[total / 2 - 1] + d[total / 2]) / 2);
	/* Normal approximation: C = mn/2 - 1.96 * sqrt(var); the bounds are differences. */
	ck_assert(hl.lo <= hl.value);
	ck_assert(hl.hi >= hl.value);
	ck_assert(bsearch(&hl.lo, d, total, sizeof(*d), cmp_double) != NULL);
	ck_assert(bsearch(&hl.hi, d, total, sizeof(*d), cmp_double) != NULL);
	free(d);
	stats_sample_free(sa);
	stats_sample_free(sb);
}
END_TEST

START_TEST(test_stats_hodges_lehmann_all_tied)
{
	/* 4,000,000 differences, all 0: the bisection ends on adjacent doubles. */
	enum { N = 2000 };
	static double a[N], b[N];
	stats_estimate hl;

	for (size_t i = 0; i < N; i++)
		a[i] = b[i] = 600;
	stats_sample *sa = sample(a, NULL, N), *sb = sample(b, NULL, N);

	stats_hodges_lehmann(sa, sb, 0.95, &hl);
	ck_assert_double_eq(hl.value, 0);
	ck_assert_double_eq(hl.lo, 0);
	ck_assert_double_eq(hl.hi, 0);
	stats_sample_free(sa);
	stats_sample_free(sb);
}
END_TEST

START_TEST(test_stats_sort_large_sample)
{
	/* Above the radix-sort threshold: values ascending, events before censorings. */
	enum { N = 10000 };
	static double v[N];
	static unsigned char c[N];

	for (size_t i = 0; i < N; i++) {
		v[i] = (double)((i * 7919) % 1000) - 500.5;
		c[i] = (unsigned char)(i % 3 == 0);
	}
	stats_sample *s = sample(v, c, N);
	for (size_t i = 1; i < N; i++) {
		double prev = stats_sample_value(s, i - 1), cur = stats_sample_value(s, i);
		ck_assert(prev <= cur);
		if (prev == cur)
			ck_assert_int_le(stats_sample_censored(s, i - 1), stats_sample_censored(s, i));
	}
	stats_sample_free(s);
}
END_TEST

START_TEST(test_stats_km_tie_event_before_censor)
{
	/* At t = 2 one event and one censoring: 3 at risk, S = 2/3; at t = 3, 1 at risk, S = 0. */
	static const double v[] = { 3, 2, 2 };
	static const unsigned char c[] = { 0, 1, 0 };
	stats_sample *s = sample(v, c, 3);
	stats_km *km = curve(s);

	ck_assert_uint_eq(stats_km_nsteps(km), 2);
	ck_assert_uint_eq(stats_km_step_at(km, 0)->n_risk, 3);
	ck_assert_uint_eq(stats_km_step_at(km, 0)->n_censor, 1);
	ck_assert_double_eq_tol(stats_km_step_at(km, 0)->surv, 2.0 / 3, 1e-12);
	ck_assert_uint_eq(stats_km_step_at(km, 1)->n_risk, 1);
	ck_assert_double_eq(stats_km_step_at(km, 1)->surv, 0);
	ck_assert_double_eq_tol(stats_km_survival(km, 2.5), 2.0 / 3, 1e-12);
	stats_km_free(km);
	stats_sample_free(s);
}
END_TEST

START_TEST(test_stats_median_midpoint)
{
	/* S is exactly 0.5 between 2 and 3, so the median is 2.5 (as R reports). */
	static const double v[] = { 4, 1, 3, 2 };
	stats_sample *s = sample(v, NULL, 4);
	stats_km *km = curve(s);

	ck_assert_double_eq(stats_km_quantile(km, 0.5).value, 2.5);
	ck_assert_double_eq(stats_km_quantile(km, 0.9).value, 4);
	stats_km_free(km);
	stats_sample_free(s);
}
END_TEST

START_TEST(test_stats_all_censored)
{
	static const double v[] = { 600, 600, 600 }, other[] = { 1, 2, 3 };
	static const unsigned char c[] = { 1, 1, 1 };
	stats_sample *s = sample(v, c, 3), *o = sample(other, NULL, 3);
	stats_group g;
	stats_comparison cmp;

	stats_km *km = curve(s);

	stats_group_describe(s, km, &g);
	stats_km_free(km);
	ck_assert_uint_eq(g.n, 3);
	ck_assert_uint_eq(g.n_censored, 3);
	ck_assert_uint_eq(g.n_effect, 0);
	ck_assert(isnan(g.min));
	ck_assert(isnan(g.quantile[0].value));
	stats_compare(o, s, 0.95, &cmp);
	ck_assert_double_eq(cmp.logrank.observed[1], 0);
	ck_assert(cmp.logrank.p < 0.05);
	ck_assert_double_eq(cmp.cliff_delta, -1);
	stats_sample_free(s);
	stats_sample_free(o);
}
END_TEST

START_TEST(test_stats_single_device)
{
	static const double v[] = { 5 };
	stats_sample *s = sample(v, NULL, 1);
	stats_group g;

	stats_km *km = curve(s);

	stats_group_describe(s, km, &g);
	stats_km_free(km);
	ck_assert_uint_eq(g.n_effect, 1);
	ck_assert_double_eq(g.min, 5);
	ck_assert_double_eq(g.mean, 5);
	ck_assert_double_eq(g.quantile[0].value, 5);
	ck_assert_double_eq(g.quantile[3].value, 5);
	stats_sample_free(s);
}
END_TEST

START_TEST(test_stats_empty_group)
{
	static const double other[] = { 1, 2 };
	stats_sample *s = sample(NULL, NULL, 0), *o = sample(other, NULL, 2);
	stats_group g;
	stats_comparison cmp;

	stats_km *km = curve(s);

	stats_group_describe(s, km, &g);
	stats_km_free(km);
	ck_assert_uint_eq(g.n, 0);
	ck_assert(isnan(g.mean));
	ck_assert(isnan(g.quantile[0].value));
	stats_compare(s, o, 0.95, &cmp);
	ck_assert(isnan(cmp.logrank.p));
	ck_assert(isnan(cmp.mann_whitney.p));
	ck_assert(isnan(cmp.shift.value));
	ck_assert(isnan(cmp.cliff_delta));
	stats_sample_free(s);
	stats_sample_free(o);
}
END_TEST

START_TEST(test_stats_rejects_nan)
{
	static const double v[] = { 1, NAN };
	stats_sample *s = NULL;
	pl_errmsg e;

	ck_assert_int_eq(stats_sample_create(&s, v, NULL, 2, &e), PL_ERR_INVALID);
	ck_assert_ptr_null(s);
}
END_TEST

START_TEST(test_stats_normal_quantile)
{
	ck_assert_double_eq_tol(stats_normal_quantile(0.975), 1.959963984540054, 1e-12);
	ck_assert_double_eq_tol(stats_normal_quantile(0.5), 0, 1e-15);
	ck_assert_double_eq_tol(stats_normal_quantile(0.001), -3.090232306167813, 1e-11);
	ck_assert_double_eq_tol(stats_chisq1_sf(3.841458820694124), 0.05, 1e-12);
}
END_TEST

static Suite *stats_suite(void)
{
	Suite *s = suite_create("stats");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_stats_km_freireich_table);
	tcase_add_test(tc, test_stats_km_freireich_medians);
	tcase_add_test(tc, test_stats_logrank_freireich);
	tcase_add_test(tc, test_stats_mann_whitney_r_example);
	tcase_add_test(tc, test_stats_mann_whitney_ties_normal);
	tcase_add_test(tc, test_stats_hodges_lehmann_r_example);
	tcase_add_test(tc, test_stats_hodges_lehmann_brute_force);
	tcase_add_test(tc, test_stats_hodges_lehmann_all_tied);
	tcase_add_test(tc, test_stats_sort_large_sample);
	tcase_add_test(tc, test_stats_km_tie_event_before_censor);
	tcase_add_test(tc, test_stats_median_midpoint);
	tcase_add_test(tc, test_stats_all_censored);
	tcase_add_test(tc, test_stats_single_device);
	tcase_add_test(tc, test_stats_empty_group);
	tcase_add_test(tc, test_stats_rejects_nan);
	tcase_add_test(tc, test_stats_normal_quantile);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(stats_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
