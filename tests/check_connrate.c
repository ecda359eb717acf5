/*
 * Unit tests for harness/connrate.c: the adaptive connect pacing on
 * hand-made sequences of connect outcomes (times in ms). The expected rates
 * follow the rules in connrate.h: halve on a throttled round, never below
 * the floor, add a twentieth of the ceiling (at most a tenth of the rate)
 * after CONNRATE_CLEAN_ROUNDS accepted rounds in a row, never above the
 * ceiling.
 */
#include <check.h>
#include <stdlib.h>

#include "common/clock.h"
#include "harness/connrate.h"

#define MS(x) ((int64_t)(x) * PL_NS_PER_MS)

static connrate r;
static connrate_change ch;

/* Records n outcomes of connects called at call_ms with latency latency_ms. */
static void note_n(connrate_outcome o, int n, int64_t call_ms, int64_t latency_ms)
{
	for (int i = 0; i < n; i++)
		connrate_note(&r, o, MS(call_ms), MS(latency_ms));
}

START_TEST(test_connrate_starts_at_ceiling)
{
	connrate_init(&r, 100.0, 10.0, 0);
	ck_assert_double_eq(r.rate, 100.0);
	ck_assert_double_eq(r.lowest, 100.0);
	ck_assert_double_eq(r.floor, 10.0);
}
END_TEST

START_TEST(test_connrate_throttle_halves_rate)
{
	connrate_init(&r, 100.0, 10.0, 0);
	note_n(CONNRATE_CONNECTED, 60, 100, 5);
	note_n(CONNRATE_THROTTLED, 1, 200, 5);
	ck_assert_int_eq(connrate_update(&r, MS(999), &ch), 0);
	ck_assert_int_eq(connrate_update(&r, MS(1000), &ch), 1);
	ck_assert_double_eq(ch.old_rate, 100.0);
	ck_assert_double_eq(ch.new_rate, 50.0);
	ck_assert_str_eq(ch.reason, "throttled");
	ck_assert_uint_eq(ch.throttled, 1);
	ck_assert_uint_eq(ch.connected, 60);
	ck_assert_double_eq(r.rate, 50.0);
}
END_TEST

/* 8 of 40 connects accepted in a throttled second: the quota lets about 8/s through. */
START_TEST(test_connrate_throttle_drops_to_accepted)
{
	connrate_init(&r, 50.0, 1.0, 0);
	note_n(CONNRATE_CONNECTED, 8, 100, 5);
	note_n(CONNRATE_FAILED, 32, 100, 5);
	ck_assert_int_eq(connrate_update(&r, MS(1000), &ch), 1);
	ck_assert_str_eq(ch.reason, "failures");
	ck_assert_double_eq(ch.new_rate, 12.5);
	note_n(CONNRATE_CONNECTED, 6, 1100, 5);
	note_n(CONNRATE_THROTTLED, 4, 1200, 5);
	ck_assert_int_eq(connrate_update(&r, MS(2000), &ch), 1);
	ck_assert_double_eq(ch.new_rate, 6.0);
}
END_TEST

/* A round with fewer than CONNRATE_LATENCY_MIN_SAMPLES accepted connects only halves. */
START_TEST(test_connrate_few_accepted_halves)
{
	connrate_init(&r, 50.0, 1.0, 0);
	note_n(CONNRATE_CONNECTED, 2, 100, 5);
	note_n(CONNRATE_FAILED, 8, 100, 5);
	ck_assert_int_eq(connrate_update(&r, MS(1000), &ch), 1);
	ck_assert_double_eq(ch.new_rate, 25.0);
}
END_TEST

START_TEST(test_connrate_stops_at_floor)
{
	connrate_init(&r, 100.0, 10.0, 0);
	for (int round = 1; round <= 3; round++) {
		note_n(CONNRATE_THROTTLED, 5, round * 1000 - 500, 5);
		ck_assert_int_eq(connrate_update(&r, MS(round * 1000), &ch), 1);
	}
	ck_assert_double_eq(r.rate, 12.5);
	note_n(CONNRATE_THROTTLED, 5, 3500, 5);
	ck_assert_int_eq(connrate_update(&r, MS(4000), &ch), 1);
	ck_assert_double_eq(ch.new_rate, 10.0);
	note_n(CONNRATE_THROTTLED, 5, 4500, 5);
	ck_assert_int_eq(connrate_update(&r, MS(5000), &ch), 0);
	ck_assert_double_eq(r.rate, 10.0);
	ck_assert_double_eq(r.lowest, 10.0);
}
END_TEST

/* Runs one round ending at end_ms with n accepted connects called 500 ms before; returns the update. */
static int clean_round(int64_t end_ms, int n)
{
	note_n(CONNRATE_CONNECTED, n, end_ms - 500, 5);
	return connrate_update(&r, MS(end_ms), &ch);
}

START_TEST(test_connrate_recovery_needs_clean_rounds)
{
	connrate_init(&r, 100.0, 10.0, 0);
	note_n(CONNRATE_THROTTLED, 1, 500, 5);
	ck_assert_int_eq(connrate_update(&r, MS(1000), &ch), 1);
	ck_assert_int_eq(clean_round(2000, 10), 0);
	ck_assert_int_eq(clean_round(3000, 10), 0);
	ck_assert_int_eq(clean_round(4000, 10), 1);
	ck_assert_double_eq(ch.old_rate, 50.0);
	ck_assert_double_eq(ch.new_rate, 55.0);
	ck_assert_str_eq(ch.reason, "recovery");
	ck_assert_int_eq(clean_round(5000, 10), 0);
	ck_assert_int_eq(clean_round(6000, 10), 0);
	ck_assert_int_eq(clean_round(7000, 10), 1);
	ck_assert_double_eq(ch.new_rate, 60.0);
	ck_assert_double_eq(r.lowest, 50.0);
}
END_TEST

START_TEST(test_connrate_recovery_stops_at_ceiling)
{
	int64_t end_ms = 1000;

	connrate_init(&r, 100.0, 10.0, 0);
	note_n(CONNRATE_THROTTLED, 1, 500, 5);
	ck_assert_int_eq(connrate_update(&r, MS(end_ms), &ch), 1);
	/* 10 steps of 5/s, each after CONNRATE_CLEAN_ROUNDS clean rounds. */
	for (int round = 0; round < 10 * CONNRATE_CLEAN_ROUNDS; round++) {
		end_ms += 1000;
		clean_round(end_ms, 10);
	}
	ck_assert_double_eq(r.rate, 100.0);
	for (int round = 0; round < CONNRATE_CLEAN_ROUNDS; round++) {
		end_ms += 1000;
		ck_assert_int_eq(clean_round(end_ms, 10), 0);
	}
	ck_assert_double_eq(r.rate, 100.0);
}
END_TEST

START_TEST(test_connrate_step_at_most_tenth_of_rate)
{
	connrate_init(&r, 100.0, 1.0, 0);
	for (int round = 1; round <= 4; round++) {
		note_n(CONNRATE_THROTTLED, 1, round * 1000 - 500, 5);
		ck_assert_int_eq(connrate_update(&r, MS(round * 1000), &ch), 1);
	}
	ck_assert_double_eq(r.rate, 6.25);
	/* A twentieth of 100/s is 5/s, above a tenth of 6.25/s. */
	clean_round(5000, 3);
	clean_round(6000, 3);
	ck_assert_int_eq(clean_round(7000, 3), 1);
	ck_assert_double_eq(ch.new_rate, 6.875);
}
END_TEST

/*
 * A quota keeps throttling some connects every other round: the rate set by
 * each decrease is never exceeded, and it only goes down.
 */
START_TEST(test_connrate_repeated_throttles_never_climb)
{
	double limit;

	connrate_init(&r, 50.0, 2.0, 0);
	note_n(CONNRATE_THROTTLED, 20, 500, 5);
	ck_assert_int_eq(connrate_update(&r, MS(1000), &ch), 1);
	limit = r.rate;
	for (int round = 2; round <= 30; round++) {
		int64_t end_ms = round * 1000;

		note_n(CONNRATE_CONNECTED, 5, end_ms - 500, 5);
		if (round % 2 == 0)
			note_n(CONNRATE_THROTTLED, 1, end_ms - 400, 5);
		connrate_update(&r, MS(end_ms), &ch);
		ck_assert_msg(r.rate <= limit, "round %d: rate %.3f/s above %.3f/s", round, r.rate,
			      limit);
		limit = r.rate;
	}
	ck_assert_double_eq(r.rate, 2.0);
}
END_TEST

/* Throttles every third round (as often as increases could come) still keep the rate down. */
START_TEST(test_connrate_throttles_every_third_round_hold)
{
	connrate_init(&r, 50.0, 1.0, 0);
	note_n(CONNRATE_THROTTLED, 1, 500, 5);
	ck_assert_int_eq(connrate_update(&r, MS(1000), &ch), 1);
	for (int round = 2; round <= 4; round++) {
		note_n(CONNRATE_THROTTLED, 1, round * 1000 - 500, 5);
		connrate_update(&r, MS(round * 1000), &ch);
	}
	ck_assert_double_eq(r.rate, 3.125);
	for (int round = 5; round <= 16; round++) {
		note_n(CONNRATE_CONNECTED, 3, round * 1000 - 500, 5);
		if (round % CONNRATE_CLEAN_ROUNDS == 0) {
			double before = r.rate;

			note_n(CONNRATE_FAILED, 1, round * 1000 - 400, 5);
			connrate_update(&r, MS(round * 1000), &ch);
			ck_assert_double_le(r.rate, before);
			continue;
		}
		ck_assert_int_eq(connrate_update(&r, MS(round * 1000), &ch), 0);
	}
	ck_assert_double_le(r.rate, 3.125);
}
END_TEST

/* Once the throttles stop, the rate climbs back to the ceiling. */
START_TEST(test_connrate_recovers_after_throttles_stop)
{
	int64_t end_ms = 0;

	connrate_init(&r, 50.0, 2.0, 0);
	for (int round = 0; round < 4; round++) {
		end_ms += 1000;
		note_n(CONNRATE_THROTTLED, 3, end_ms - 500, 5);
		connrate_update(&r, MS(end_ms), &ch);
	}
	ck_assert_double_eq(r.rate, 3.125);
	for (int round = 0; round < 200 && r.rate < 50.0; round++) {
		end_ms += 1000;
		clean_round(end_ms, 3);
	}
	ck_assert_double_eq(r.rate, 50.0);
	ck_assert_double_eq(r.lowest, 3.125);
}
END_TEST

START_TEST(test_connrate_idle_round_keeps_rate)
{
	connrate_init(&r, 100.0, 10.0, 0);
	note_n(CONNRATE_THROTTLED, 1, 500, 5);
	ck_assert_int_eq(connrate_update(&r, MS(1000), &ch), 1);
	ck_assert_int_eq(connrate_update(&r, MS(2000), &ch), 0);
	ck_assert_double_eq(r.rate, 50.0);
}
END_TEST

START_TEST(test_connrate_ignores_calls_before_decrease)
{
	connrate_init(&r, 100.0, 10.0, 0);
	note_n(CONNRATE_THROTTLED, 3, 500, 5);
	ck_assert_int_eq(connrate_update(&r, MS(1000), &ch), 1);
	/* Connects called at the old rate fail after the decrease: no new signal. */
	note_n(CONNRATE_TIMED_OUT, 30, 900, 10000);
	note_n(CONNRATE_THROTTLED, 3, 990, 5);
	ck_assert_int_eq(connrate_update(&r, MS(2000), &ch), 0);
	ck_assert_double_eq(r.rate, 50.0);
}
END_TEST

START_TEST(test_connrate_few_failures_tolerated)
{
	connrate_init(&r, 100.0, 10.0, 0);
	note_n(CONNRATE_CONNECTED, 100, 500, 5);
	note_n(CONNRATE_FAILED, 4, 500, 5);
	ck_assert_int_eq(connrate_update(&r, MS(1000), &ch), 0);
	ck_assert_double_eq(r.rate, 100.0);
}
END_TEST

START_TEST(test_connrate_failures_lower_rate)
{
	connrate_init(&r, 100.0, 10.0, 0);
	note_n(CONNRATE_CONNECTED, 100, 500, 5);
	note_n(CONNRATE_FAILED, 6, 500, 5);
	ck_assert_int_eq(connrate_update(&r, MS(1000), &ch), 1);
	ck_assert_str_eq(ch.reason, "failures");
	ck_assert_double_eq(ch.new_rate, 50.0);
}
END_TEST

START_TEST(test_connrate_timeouts_lower_rate)
{
	connrate_init(&r, 100.0, 10.0, 0);
	note_n(CONNRATE_CONNECTED, 10, 500, 5);
	note_n(CONNRATE_TIMED_OUT, 5, 200, 10000);
	ck_assert_int_eq(connrate_update(&r, MS(1000), &ch), 1);
	ck_assert_str_eq(ch.reason, "timeouts");
	ck_assert_uint_eq(ch.timed_out, 5);
}
END_TEST

START_TEST(test_connrate_ignored_outcomes_count_nothing)
{
	connrate_init(&r, 100.0, 10.0, 0);
	note_n(CONNRATE_IGNORED, 50, 500, 5);
	ck_assert_int_eq(connrate_update(&r, MS(1000), &ch), 0);
	ck_assert_double_eq(r.rate, 100.0);
}
END_TEST

START_TEST(test_connrate_latency_rise_lowers_rate)
{
	connrate_init(&r, 100.0, 10.0, 0);
	note_n(CONNRATE_CONNECTED, CONNRATE_BASELINE_SAMPLES, 100, 5);
	ck_assert_int_eq(connrate_update(&r, MS(1000), &ch), 0);
	/* The limit is max(10 x 5 ms, 5 ms + 1 s) = 1.005 s. */
	note_n(CONNRATE_CONNECTED, 10, 1500, 1200);
	ck_assert_int_eq(connrate_update(&r, MS(2000), &ch), 1);
	ck_assert_str_eq(ch.reason, "latency");
	ck_assert_int_eq(ch.latency_limit_ns, MS(1005));
	ck_assert_int_eq(ch.latency_median_ns, MS(1200));
	ck_assert_double_eq(ch.new_rate, 50.0);
}
END_TEST

START_TEST(test_connrate_latency_below_limit_kept)
{
	connrate_init(&r, 100.0, 10.0, 0);
	note_n(CONNRATE_CONNECTED, CONNRATE_BASELINE_SAMPLES, 100, 5);
	ck_assert_int_eq(connrate_update(&r, MS(1000), &ch), 0);
	note_n(CONNRATE_CONNECTED, 10, 1500, 900);
	ck_assert_int_eq(connrate_update(&r, MS(2000), &ch), 0);
	ck_assert_double_eq(r.rate, 100.0);
}
END_TEST

START_TEST(test_connrate_latency_falling_holds_rate)
{
	connrate_init(&r, 100.0, 10.0, 0);
	note_n(CONNRATE_CONNECTED, CONNRATE_BASELINE_SAMPLES, 100, 5);
	ck_assert_int_eq(connrate_update(&r, MS(1000), &ch), 0);
	note_n(CONNRATE_CONNECTED, 10, 1500, 1200);
	ck_assert_int_eq(connrate_update(&r, MS(2000), &ch), 1);
	/* Still above the limit, but lower than the round before: queued connects draining. */
	note_n(CONNRATE_CONNECTED, 10, 2100, 1100);
	ck_assert_int_eq(connrate_update(&r, MS(3000), &ch), 0);
	ck_assert_double_eq(r.rate, 50.0);
}
END_TEST

START_TEST(test_connrate_growing_backlog_lowers_rate)
{
	connrate_init(&r, 100.0, 10.0, 0);
	/* No CONNACK yet, so no baseline: the limit is 100/s x 1 s. */
	connrate_note_pending(&r, 150);
	ck_assert_int_eq(connrate_update(&r, MS(1000), &ch), 1);
	ck_assert_str_eq(ch.reason, "backlog");
	ck_assert_uint_eq(ch.pending, 150);
	ck_assert_double_eq(ch.pending_limit, 100.0);
	ck_assert_double_eq(ch.new_rate, 50.0);
}
END_TEST

START_TEST(test_connrate_shrinking_backlog_holds_rate)
{
	connrate_init(&r, 100.0, 10.0, 0);
	connrate_note_pending(&r, 150);
	ck_assert_int_eq(connrate_update(&r, MS(1000), &ch), 1);
	connrate_note_pending(&r, 140);
	note_n(CONNRATE_CONNECTED, 10, 1500, 5);
	ck_assert_int_eq(connrate_update(&r, MS(2000), &ch), 0);
	ck_assert_double_eq(r.rate, 50.0);
	connrate_note_pending(&r, 160);
	ck_assert_int_eq(connrate_update(&r, MS(3000), &ch), 1);
	ck_assert_str_eq(ch.reason, "backlog");
	ck_assert_double_eq(ch.new_rate, 25.0);
}
END_TEST

START_TEST(test_connrate_classify_load_codes)
{
	ck_assert_int_eq(connrate_classify_failure(0x97, MS(20), MS(10000), 0), CONNRATE_THROTTLED);
	ck_assert_int_eq(connrate_classify_failure(0x9F, MS(20), MS(10000), 0), CONNRATE_THROTTLED);
	ck_assert_int_eq(connrate_classify_failure(0x89, MS(20), MS(10000), 0), CONNRATE_THROTTLED);
	ck_assert_int_eq(connrate_classify_failure(3, MS(20), MS(10000), 0), CONNRATE_THROTTLED);
	/* Measured devices' throttles still count: the code is unambiguous. */
	ck_assert_int_eq(connrate_classify_failure(0x97, MS(20), MS(10000), 1), CONNRATE_THROTTLED);
}
END_TEST

START_TEST(test_connrate_classify_denials_ignored)
{
	ck_assert_int_eq(connrate_classify_failure(5, MS(20), MS(10000), 0), CONNRATE_IGNORED);
	ck_assert_int_eq(connrate_classify_failure(0x87, MS(20), MS(10000), 0), CONNRATE_IGNORED);
	ck_assert_int_eq(connrate_classify_failure(0x85, MS(20), MS(10000), 0), CONNRATE_IGNORED);
}
END_TEST

START_TEST(test_connrate_classify_no_connack)
{
	ck_assert_int_eq(connrate_classify_failure(-1, MS(20), MS(10000), 0), CONNRATE_FAILED);
	ck_assert_int_eq(connrate_classify_failure(-1, MS(10003), MS(10000), 0),
			 CONNRATE_TIMED_OUT);
	ck_assert_int_eq(connrate_classify_failure(-1, MS(10003), MS(10000), 1),
			 CONNRATE_TIMED_OUT);
	/* After the swap started, a close without CONNACK may be the measured denial. */
	ck_assert_int_eq(connrate_classify_failure(-1, MS(20), MS(10000), 1), CONNRATE_IGNORED);
}
END_TEST

static Suite *connrate_suite(void)
{
	Suite *s = suite_create("connrate");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_connrate_starts_at_ceiling);
	tcase_add_test(tc, test_connrate_throttle_halves_rate);
	tcase_add_test(tc, test_connrate_throttle_drops_to_accepted);
	tcase_add_test(tc, test_connrate_few_accepted_halves);
	tcase_add_test(tc, test_connrate_stops_at_floor);
	tcase_add_test(tc, test_connrate_recovery_needs_clean_rounds);
	tcase_add_test(tc, test_connrate_recovery_stops_at_ceiling);
	tcase_add_test(tc, test_connrate_step_at_most_tenth_of_rate);
	tcase_add_test(tc, test_connrate_repeated_throttles_never_climb);
	tcase_add_test(tc, test_connrate_throttles_every_third_round_hold);
	tcase_add_test(tc, test_connrate_recovers_after_throttles_stop);
	tcase_add_test(tc, test_connrate_idle_round_keeps_rate);
	tcase_add_test(tc, test_connrate_ignores_calls_before_decrease);
	tcase_add_test(tc, test_connrate_few_failures_tolerated);
	tcase_add_test(tc, test_connrate_failures_lower_rate);
	tcase_add_test(tc, test_connrate_timeouts_lower_rate);
	tcase_add_test(tc, test_connrate_ignored_outcomes_count_nothing);
	tcase_add_test(tc, test_connrate_latency_rise_lowers_rate);
	tcase_add_test(tc, test_connrate_latency_below_limit_kept);
	tcase_add_test(tc, test_connrate_latency_falling_holds_rate);
	tcase_add_test(tc, test_connrate_growing_backlog_lowers_rate);
	tcase_add_test(tc, test_connrate_shrinking_backlog_holds_rate);
	tcase_add_test(tc, test_connrate_classify_load_codes);
	tcase_add_test(tc, test_connrate_classify_denials_ignored);
	tcase_add_test(tc, test_connrate_classify_no_connack);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(connrate_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
