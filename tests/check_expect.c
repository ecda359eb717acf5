/*
 * Expectation parsing (errors with their column) and evaluation over a
 * summary built from samples in memory.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "results/expect.h"
#include "results/run.h"
#include "results/summary.h"

static void assert_parses(const char *text)
{
	expect_expr *x = NULL;
	pl_errmsg e = { "" };
	size_t column = 99;

	ck_assert_msg(expect_parse(&x, text, &column, &e) == PL_OK, "%s: %s", text, e.msg);
	ck_assert_str_eq(expect_text(x), text);
	expect_free(x);
}

/* Parses text, expects an error at column with a message containing needle. */
static void assert_rejects(const char *text, size_t column, const char *needle)
{
	expect_expr *x = NULL;
	pl_errmsg e = { "" };
	size_t got = 999;

	ck_assert_int_eq(expect_parse(&x, text, &got, &e), PL_ERR_PARSE);
	ck_assert_ptr_null(x);
	ck_assert_msg(got == column, "%s: column %zu, expected %zu (%s)", text, got, column, e.msg);
	ck_assert_msg(strstr(e.msg, needle) != NULL, "%s: message '%s' lacks '%s'", text, e.msg,
		      needle);
}

START_TEST(test_expect_parse_examples)
{
	assert_parses("reconnect.p99 < 30s");
	assert_parses("keep.censored == 0");
	assert_parses("compare(reconnect, keep).p < 0.001");
	assert_parses("throttled.connect == 0");
	assert_parses("  all.censored_ratio<=5%  ");
	assert_parses("reconnect-per-attempt.p50_hi >= 250ms");
	assert_parses("errors.total != 3");
	assert_parses("compare(a,b).shift_hi < -1.5s");
	assert_parses("compare(keep:revoke, reconnect:revoke).p < 0.01");
}
END_TEST

START_TEST(test_expect_group_names)
{
	expect_expr *x = NULL;
	size_t column = 0;

	ck_assert_int_eq(expect_parse(&x, "compare( fast:grant ,slow).p < 0.01", NULL, NULL), PL_OK);
	ck_assert_uint_eq(expect_group_count(x), 2);
	ck_assert_str_eq(expect_group_name(x, 0, &column), "fast:grant");
	ck_assert_uint_eq(column, 9);
	ck_assert_str_eq(expect_group_name(x, 1, &column), "slow");
	ck_assert_uint_eq(column, 21);
	expect_free(x);
	ck_assert_int_eq(expect_parse(&x, "  keep.p99 < 1s", NULL, NULL), PL_OK);
	ck_assert_uint_eq(expect_group_count(x), 1);
	ck_assert_str_eq(expect_group_name(x, 0, &column), "keep");
	ck_assert_uint_eq(column, 2);
	expect_free(x);
	ck_assert_int_eq(expect_parse(&x, "throttled.total == 0", NULL, NULL), PL_OK);
	ck_assert_uint_eq(expect_group_count(x), 0);
	expect_free(x);
}
END_TEST

START_TEST(test_expect_parse_errors)
{
	assert_rejects("reconnect.p99 < 30", 16, "unit");
	assert_rejects("reconnect.p42 < 1s", 10, "unknown metric 'p42'");
	assert_rejects("reconnect p99 < 1s", 10, "expected '.'");
	assert_rejects("compare(a b).p < 1", 10, "expected ','");
	assert_rejects("compare(a, b.p < 1", 12, "expected ')'");
	assert_rejects("keep.censored = 0", 14, "comparison operator");
	assert_rejects("keep.censored == 0 extra", 19, "unexpected text");
	assert_rejects("keep.censored == ", 17, "expected a value");
	assert_rejects("keep.censored == 5%", 17, "percentage");
	assert_rejects("keep.censored == 1s", 17, "1s");
	assert_rejects("", 0, "expected a group name");
	assert_rejects("throttled.everything == 0", 10, "unknown metric");
}
END_TEST

/* Two groups: fast has latencies 1..10 s, slow 101..110 s with 2 censored at 600 s. */
static summary *build_summary(const char *const *texts, size_t n, int with_events)
{
	run_samples *rs = NULL;
	run_events *ev = NULL;
	summary *s = NULL;
	pl_errmsg e = { "" };
	char name[32];

	ck_assert_int_eq(run_samples_create(&rs, &e), PL_OK);
	for (int i = 0; i < 24; i++) {
		int slow = i >= 12, k = i % 12;
		run_sample row = { 0 };
		snprintf(name, sizeof(name), "dev-%02d", i);
		row.device = name;
		row.client_id = name;
		row.cert_id = "";
		row.censored = slow && k >= 10;
		row.latency_ns = (row.censored ? 600 : (slow ? 101 : 1) + k) * PL_NS_PER_S;
		row.connects = 1;
		row.throttled = slow ? 1 : 0;
		row.t_swap_ns = row.t_swap_start_ns = 0;
		row.t_effect_ns = row.censored ? RUN_UNKNOWN : row.latency_ns;
		row.truth_effect_ns = row.truth_error_ns = RUN_UNKNOWN;
		ck_assert_int_eq(run_samples_append(rs, &row, slow ? "slow" : "fast",
						    slow ? "keep" : "reconnect", &e),
				 PL_OK);
	}
	if (with_events) {
		ev = calloc(1, sizeof(*ev));
		ck_assert_ptr_nonnull(ev);
		ev->items = calloc(3, sizeof(*ev->items));
		ev->items[0] = (run_event){ 1, RUN_EVENT_THROTTLE, RUN_OP_CONNECT };
		ev->items[1] = (run_event){ 2, RUN_EVENT_THROTTLE, RUN_OP_PUBLISH };
		ev->items[2] = (run_event){ 3, RUN_EVENT_ERROR, RUN_OP_NONE };
		ev->count = ev->cap = 3;
	}
	ck_assert_int_eq(summary_build_from(&s, NULL, rs, ev, texts, n, &e), PL_OK);
	return s;
}

START_TEST(test_expect_evaluate_values)
{
	static const char *const texts[] = {
		"fast.p50 <= 6s",      /* KM median of 1..12 with S = 0.5 exactly at 6: 6.5 s */
		"fast.p50 == 6.5s",
		"slow.censored == 2",
		"slow.n == 12",
		"all.censored_ratio < 10%",
		"compare(fast, slow).p < 0.001",
		"compare(slow, fast).shift > 90s",
		"compare(fast, slow).cliff_delta == -1",
		"throttled.connect == 0",
		"throttled.total == 2",
		"errors.total == 1",
		"slow.throttled == 12",
	};
	static const int passed[] = { 0, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1 };
	summary *s = build_summary(texts, 12, 1);

	ck_assert_uint_eq(s->nchecks, 12);
	for (size_t i = 0; i < 12; i++)
		ck_assert_msg(s->checks[i].result.passed == passed[i], "%s: %s", texts[i],
			      s->checks[i].result.message);
	ck_assert_uint_eq(s->nchecks_failed, 2);
	ck_assert_double_eq(s->checks[1].result.actual, 6.5);
	ck_assert_str_eq(s->checks[0].result.message, "value 6.5 s, expected <= 6s");
	summary_free(s);
}
END_TEST

START_TEST(test_expect_evaluate_unknowns_fail)
{
	static const char *const texts[] = {
		"missing.p50 < 1s",              /* no such group */
		"slow.p99 < 1000s",              /* KM never reaches 0.01 */
		"compare(fast, missing).p < 1",
		"throttled.connect == 0",        /* no events.jsonl */
		"fast.p50 < 30",                 /* invalid: no unit */
	};
	summary *s = build_summary(texts, 5, 0);

	ck_assert_uint_eq(s->nchecks_failed, 5);
	ck_assert_ptr_nonnull(strstr(s->checks[0].result.message, "group 'missing' not found"));
	ck_assert_ptr_nonnull(strstr(s->checks[1].result.message, "unknown"));
	ck_assert(isnan(s->checks[1].result.actual));
	ck_assert_ptr_nonnull(strstr(s->checks[2].result.message, "no comparison of 'fast' and 'missing'"));
	ck_assert_ptr_nonnull(strstr(s->checks[3].result.message, "no events.jsonl"));
	ck_assert_ptr_nonnull(strstr(s->checks[4].result.message, "column 12"));
	summary_free(s);
}
END_TEST

static Suite *expect_suite(void)
{
	Suite *s = suite_create("expect");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_expect_parse_examples);
	tcase_add_test(tc, test_expect_parse_errors);
	tcase_add_test(tc, test_expect_group_names);
	tcase_add_test(tc, test_expect_evaluate_values);
	tcase_add_test(tc, test_expect_evaluate_unknowns_fail);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(expect_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
