/*
 * Unit tests for workers/detect.c: the grant, revoke and censoring rules of
 * the measurement definition, with hand-made probe timelines (times in ms).
 */
#include <check.h>
#include <stdlib.h>

#include "common/clock.h"
#include "workers/detect.h"

#define MS(x) ((int64_t)(x) * PL_NS_PER_MS)

static detect d;

/* Sends probe seq at time ms, one per second from ms = 0 (seq = ms / 1000). */
static void send_at(int64_t ms)
{
	detect_on_sent(&d, (uint64_t)(ms / 1000), MS(ms));
}

static void deliver(int64_t sent_ms, int64_t recv_ms)
{
	detect_on_delivered(&d, (uint64_t)(sent_ms / 1000), MS(sent_ms), MS(recv_ms));
}

START_TEST(test_detect_grant_first_delivery)
{
	detect_init(&d, 0, MS(10000), MS(10500), 0, MS(60000));
	send_at(11000);
	ck_assert_int_eq(detect_poll(&d, MS(11500)), DETECT_PENDING);
	send_at(12000);
	deliver(12000, 12020);
	send_at(13000);
	deliver(13000, 13010);
	ck_assert_int_eq(detect_poll(&d, MS(13100)), DETECT_EFFECT);
	ck_assert_int_eq(detect_effect_ns(&d), MS(12020));
	ck_assert_int_eq(detect_latency_ns(&d), MS(12020 - 10500));
}
END_TEST

START_TEST(test_detect_grant_ignores_early_delivery)
{
	detect_init(&d, 0, MS(10000), MS(10500), 0, MS(60000));
	deliver(9000, 9010);
	ck_assert_int_eq(detect_poll(&d, MS(9500)), DETECT_PENDING);
	ck_assert_uint_eq(d.early_deliveries, 1);
}
END_TEST

START_TEST(test_detect_grant_censored_at_timeout)
{
	detect_init(&d, 0, MS(10000), MS(10500), 0, MS(5000));
	ck_assert_int_eq(detect_poll(&d, MS(14999)), DETECT_PENDING);
	ck_assert_int_eq(detect_poll(&d, MS(15000)), DETECT_CENSORED);
	ck_assert_int_eq(detect_effect_ns(&d), MS(15000));
	ck_assert_int_eq(detect_latency_ns(&d), MS(4500));
}
END_TEST

START_TEST(test_detect_grant_state_final)
{
	detect_init(&d, 0, MS(10000), 0, 0, MS(60000));
	deliver(11000, 11005);
	deliver(12000, 12005);
	ck_assert_int_eq(detect_poll(&d, MS(80000)), DETECT_EFFECT);
	ck_assert_int_eq(detect_effect_ns(&d), MS(11005));
	ck_assert_uint_eq(d.late_deliveries, 1);
}
END_TEST

START_TEST(test_detect_unknown_swap_uses_start)
{
	detect_init(&d, 0, MS(10000), 0, 0, MS(60000));
	deliver(11000, 11005);
	detect_poll(&d, MS(11010));
	ck_assert_int_eq(detect_latency_ns(&d), MS(1005));
	detect_set_swap(&d, MS(10800));
	ck_assert_int_eq(detect_latency_ns(&d), MS(205));
}
END_TEST

/* Probes 10..12 delivered, 13 onwards lost: t_effect = send time of 13. */
START_TEST(test_detect_revoke_first_lost_probe)
{
	detect_init(&d, 1, MS(10000), MS(10200), MS(3000), MS(60000));
	for (int64_t t = 10000; t <= 20000; t += 1000) {
		send_at(t);
		if (t <= 12000)
			deliver(t, t + 20);
		detect_poll(&d, MS(t + 50));
	}
	ck_assert_int_eq(detect_poll(&d, MS(20100)), DETECT_EFFECT);
	ck_assert_int_eq(detect_effect_ns(&d), MS(13000));
	ck_assert_int_eq(detect_latency_ns(&d), MS(2800));
}
END_TEST

START_TEST(test_detect_revoke_waits_for_confirmation)
{
	detect_init(&d, 1, MS(10000), MS(10200), MS(3000), MS(60000));
	send_at(10000);
	ck_assert_int_eq(detect_poll(&d, MS(12999)), DETECT_PENDING);
	ck_assert_int_eq(detect_next_deadline(&d), MS(13000));
	ck_assert_int_eq(detect_poll(&d, MS(13000)), DETECT_EFFECT);
}
END_TEST

/* A probe delivered late but within the window is not the effect. */
START_TEST(test_detect_revoke_late_delivery_moves_candidate)
{
	detect_init(&d, 1, MS(10000), MS(10200), MS(3000), MS(60000));
	send_at(10000);
	send_at(11000);
	deliver(10000, 12500);
	send_at(12000);
	ck_assert_int_eq(detect_poll(&d, MS(13000)), DETECT_PENDING);
	ck_assert_int_eq(detect_poll(&d, MS(14000)), DETECT_EFFECT);
	ck_assert_int_eq(detect_effect_ns(&d), MS(11000));
}
END_TEST

/* A newer probe delivered means earlier losses were not the revoke. */
START_TEST(test_detect_revoke_later_delivery_clears_loss)
{
	detect_init(&d, 1, MS(10000), MS(10200), MS(3000), MS(60000));
	send_at(10000);
	send_at(11000);
	deliver(11000, 11010);
	send_at(12000);
	ck_assert_int_eq(detect_poll(&d, MS(13500)), DETECT_PENDING);
	ck_assert_int_eq(detect_poll(&d, MS(15000)), DETECT_EFFECT);
	ck_assert_int_eq(detect_effect_ns(&d), MS(12000));
}
END_TEST

START_TEST(test_detect_revoke_ignores_probes_before_swap)
{
	detect_init(&d, 1, MS(10000), MS(10200), MS(3000), MS(60000));
	send_at(9000);
	ck_assert_int_eq(detect_poll(&d, MS(12500)), DETECT_PENDING);
	send_at(13000);
	ck_assert_int_eq(detect_poll(&d, MS(16000)), DETECT_EFFECT);
	ck_assert_int_eq(detect_effect_ns(&d), MS(13000));
}
END_TEST

START_TEST(test_detect_revoke_censored_when_delivered)
{
	detect_init(&d, 1, MS(10000), MS(10200), MS(3000), MS(5000));
	for (int64_t t = 10000; t <= 15000; t += 1000) {
		send_at(t);
		deliver(t, t + 10);
	}
	ck_assert_int_eq(detect_poll(&d, MS(17999)), DETECT_PENDING);
	ck_assert_int_eq(detect_poll(&d, MS(18000)), DETECT_CENSORED);
	ck_assert_int_eq(detect_effect_ns(&d), MS(15000));
}
END_TEST

/* A probe sent at the deadline and lost is still confirmed after it. */
START_TEST(test_detect_revoke_candidate_at_deadline)
{
	detect_init(&d, 1, MS(10000), MS(10200), MS(3000), MS(5000));
	send_at(14000);
	deliver(14000, 14010);
	send_at(15000);
	ck_assert_int_eq(detect_poll(&d, MS(17000)), DETECT_PENDING);
	ck_assert_int_eq(detect_poll(&d, MS(18000)), DETECT_EFFECT);
	ck_assert_int_eq(detect_effect_ns(&d), MS(15000));
}
END_TEST

START_TEST(test_detect_revoke_after_deadline_not_counted)
{
	detect_init(&d, 1, MS(10000), MS(10200), MS(3000), MS(5000));
	send_at(16000);
	ck_assert_int_eq(detect_poll(&d, MS(19000)), DETECT_CENSORED);
}
END_TEST

START_TEST(test_detect_revoke_late_after_effect_counted)
{
	detect_init(&d, 1, MS(10000), MS(10200), MS(1000), MS(60000));
	send_at(10000);
	ck_assert_int_eq(detect_poll(&d, MS(11000)), DETECT_EFFECT);
	deliver(10000, 11500);
	ck_assert_uint_eq(d.late_deliveries, 1);
	ck_assert_int_eq(detect_effect_ns(&d), MS(10000));
}
END_TEST

START_TEST(test_detect_window_fits_bound)
{
	/* 1 s window: 62 probes after the candidate at 16 ms, 66 at 15 ms. */
	ck_assert_int_eq(detect_window_fits(MS(1000), MS(16)), 1);
	ck_assert_int_eq(detect_window_fits(MS(1000), MS(15)), 0);
	ck_assert_int_eq(detect_window_fits(MS(1000), MS(10)), 0);
	ck_assert_int_eq(detect_window_fits(MS(2000), MS(1000)), 1);
}
END_TEST

/*
 * At the largest window that fits (62 intervals of 16 ms in 1 s), the
 * candidate is delivered late just before its confirmation, so the probe
 * after it must become the effect: every probe of the window was tracked.
 */
START_TEST(test_detect_revoke_full_window_exact)
{
	const int64_t interval = MS(16);
	const int64_t confirm = MS(1000);
	int64_t t = MS(10000);
	uint64_t seq = 0;

	detect_init(&d, 1, t, t, confirm, MS(60000));
	/* The candidate (seq 0) and every later probe until just before its confirmation. */
	for (; t + interval < MS(10000) + confirm; t += interval)
		detect_on_sent(&d, seq++, t);
	detect_on_sent(&d, seq++, t);
	ck_assert_uint_eq(d.count, seq);
	ck_assert_int_eq(detect_poll(&d, MS(10000) + confirm - 1), DETECT_PENDING);
	detect_on_delivered(&d, 0, MS(10000), MS(10000) + confirm - 1);
	ck_assert_int_eq(detect_poll(&d, MS(10016) + confirm), DETECT_EFFECT);
	ck_assert_int_eq(detect_effect_ns(&d), MS(10016));
}
END_TEST

static Suite *detect_suite(void)
{
	Suite *s = suite_create("detect");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_detect_grant_first_delivery);
	tcase_add_test(tc, test_detect_grant_ignores_early_delivery);
	tcase_add_test(tc, test_detect_grant_censored_at_timeout);
	tcase_add_test(tc, test_detect_grant_state_final);
	tcase_add_test(tc, test_detect_unknown_swap_uses_start);
	tcase_add_test(tc, test_detect_revoke_first_lost_probe);
	tcase_add_test(tc, test_detect_revoke_waits_for_confirmation);
	tcase_add_test(tc, test_detect_revoke_late_delivery_moves_candidate);
	tcase_add_test(tc, test_detect_revoke_later_delivery_clears_loss);
	tcase_add_test(tc, test_detect_revoke_ignores_probes_before_swap);
	tcase_add_test(tc, test_detect_revoke_censored_when_delivered);
	tcase_add_test(tc, test_detect_revoke_candidate_at_deadline);
	tcase_add_test(tc, test_detect_revoke_after_deadline_not_counted);
	tcase_add_test(tc, test_detect_revoke_late_after_effect_counted);
	tcase_add_test(tc, test_detect_window_fits_bound);
	tcase_add_test(tc, test_detect_revoke_full_window_exact);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(detect_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
