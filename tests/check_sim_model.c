/*
 * Unit tests of the simulator's propagation model parser and schedule and
 * of its token buckets.
 */
#include <check.h>
#include <stdlib.h>

#include "common/clock.h"
#include "simulator/propagation.h"
#include "simulator/quota.h"

START_TEST(test_sim_model_parse_ttl)
{
	sim_propagation p = { 0 };
	pl_errmsg e;

	ck_assert_int_eq(sim_propagation_parse("ttl:2s", &p, &e), PL_OK);
	ck_assert_int_eq(p.kind, SIM_PROP_TTL);
	ck_assert_int_eq(p.min_ns, 2 * PL_NS_PER_S);
}
END_TEST

START_TEST(test_sim_model_parse_uniform)
{
	sim_propagation p = { 0 };
	pl_errmsg e;

	ck_assert_int_eq(sim_propagation_parse("uniform:360s-480s", &p, &e), PL_OK);
	ck_assert_int_eq(p.kind, SIM_PROP_UNIFORM);
	ck_assert_int_eq(p.min_ns, 360 * PL_NS_PER_S);
	ck_assert_int_eq(p.max_ns, 480 * PL_NS_PER_S);
}
END_TEST

START_TEST(test_sim_model_parse_rejects)
{
	static const char *const bad[] = { "", "ttl:", "ttl:5", "uniform:5s-1s", "uniform:5s",
					   "later", "ttl:-1s" };
	sim_propagation p = { 0 };
	pl_errmsg e;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_int_ne(sim_propagation_parse(bad[i], &p, &e), PL_OK);
}
END_TEST

START_TEST(test_sim_model_uniform_delay_in_range)
{
	sim_propagation p = { 0 };
	uint64_t rng = 42;
	pl_errmsg e;

	ck_assert_int_eq(sim_propagation_parse("uniform:360s-480s", &p, &e), PL_OK);
	for (int i = 0; i < 1000; i++) {
		int64_t d = sim_propagation_next_delay(&p, 0, &rng);
		ck_assert_int_ge(d, 360 * PL_NS_PER_S);
		ck_assert_int_le(d, 480 * PL_NS_PER_S);
	}
}
END_TEST

START_TEST(test_sim_model_random_phase_within_first_period)
{
	sim_propagation p = { 0 };
	uint64_t rng = 7;
	pl_errmsg e;

	ck_assert_int_eq(sim_propagation_parse("ttl:10s", &p, &e), PL_OK);
	p.phase = SIM_PHASE_RANDOM;
	for (int i = 0; i < 1000; i++) {
		int64_t d = sim_propagation_next_delay(&p, 1, &rng);
		ck_assert_int_ge(d, 1);
		ck_assert_int_le(d, 10 * PL_NS_PER_S);
	}
	ck_assert_int_eq(sim_propagation_next_delay(&p, 0, &rng), 10 * PL_NS_PER_S);
}
END_TEST

START_TEST(test_sim_model_immediate_has_no_delay)
{
	sim_propagation p = { 0 };
	uint64_t rng = 1;
	pl_errmsg e;

	ck_assert_int_eq(sim_propagation_parse("immediate", &p, &e), PL_OK);
	ck_assert_int_eq(sim_propagation_next_delay(&p, 1, &rng), 0);
}
END_TEST

START_TEST(test_sim_model_bucket_rate)
{
	sim_quota_bucket b;

	sim_quota_bucket_init(&b, 2, 0);
	ck_assert_int_eq(sim_quota_take(&b, 0), 1);
	ck_assert_int_eq(sim_quota_take(&b, 0), 1);
	ck_assert_int_eq(sim_quota_take(&b, 0), 0);
	/* Half a second refills one token at two per second. */
	ck_assert_int_eq(sim_quota_take(&b, PL_NS_PER_S / 2), 1);
	ck_assert_int_eq(sim_quota_take(&b, PL_NS_PER_S / 2), 0);
}
END_TEST

START_TEST(test_sim_model_bucket_below_one_per_second)
{
	sim_quota_bucket b;

	sim_quota_bucket_init(&b, 0.25, 0);
	ck_assert_int_eq(sim_quota_take(&b, 0), 1);
	ck_assert_int_eq(sim_quota_take(&b, 3 * PL_NS_PER_S), 0);
	ck_assert_int_eq(sim_quota_take(&b, 4 * PL_NS_PER_S), 1);
}
END_TEST

START_TEST(test_sim_model_table_per_key)
{
	sim_quota_table *t;
	pl_errmsg e;

	ck_assert_int_eq(sim_quota_table_create(&t, 1, 64, &e), PL_OK);
	ck_assert_int_eq(sim_quota_table_take(t, "a", 0), 1);
	ck_assert_int_eq(sim_quota_table_take(t, "a", PL_NS_PER_S / 2), 0);
	ck_assert_int_eq(sim_quota_table_take(t, "b", PL_NS_PER_S / 2), 1);
	ck_assert_int_eq(sim_quota_table_take(t, "a", PL_NS_PER_S + 1), 1);
	sim_quota_table_free(t);
}
END_TEST

static Suite *sim_model_suite(void)
{
	Suite *s = suite_create("sim_model");
	TCase *tc = tcase_create("model");

	tcase_add_test(tc, test_sim_model_parse_ttl);
	tcase_add_test(tc, test_sim_model_parse_uniform);
	tcase_add_test(tc, test_sim_model_parse_rejects);
	tcase_add_test(tc, test_sim_model_uniform_delay_in_range);
	tcase_add_test(tc, test_sim_model_random_phase_within_first_period);
	tcase_add_test(tc, test_sim_model_immediate_has_no_delay);
	tcase_add_test(tc, test_sim_model_bucket_rate);
	tcase_add_test(tc, test_sim_model_bucket_below_one_per_second);
	tcase_add_test(tc, test_sim_model_table_per_key);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(sim_model_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
