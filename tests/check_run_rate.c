/*
 * Adaptive connect pacing in `policylag run` against the simulator: the
 * simulator's CONNECT quota per account (20/s, a token bucket of 20)
 * is far below the configured fleet.connect_rate (100/s), so the first
 * second of connects is throttled. The simulator closes a throttled CONNECT
 * without CONNACK, which the worker reports as a failed connect.
 *
 * With adaptive pacing the run must lower its rate to at most the quota,
 * connect every device and finish; with pacing off the same profile must
 * show failed connects, which proves that the scenario throttles.
 */
#include "tests/check_run_support.h"

#define DEVICES 100
#define QUOTA 20.0
#define RUN_TIMEOUT_S 90

static const char groups_keep[] =
	"  - name: keep\n"
	"    strategy: keep-connection\n";

static const char *const sets_on[] = {
	"target.simulator.quotas.connect_rate_per_account=20/s",
	NULL,
};

static const char *const sets_off[] = {
	"target.simulator.quotas.connect_rate_per_account=20/s",
	"fleet.connect_rate_adaptive=false",
	NULL,
};

/* A quota a twentieth of the configured 100/s, so a step of a twentieth
 * of the configured rate alone would reach it. */
#define LOW_QUOTA 5.0
#define LOW_QUOTA_DEVICES 40

static const char *const sets_low[] = {
	"target.simulator.quotas.connect_rate_per_account=5/s",
	"fleet.connect_rate_floor=1/s",
	NULL,
};

static void start_case(run_case *rc, const char *name, int devices)
{
	char yaml[4096];

	run_profile_text(yaml, sizeof(yaml), name, devices, "ttl:1s", "shared", groups_keep,
			 "probe-no-receive.json", "probe-full.json",
			 "  kind: attach-detach\n  direction: grant\n", "250ms", "10s");
	run_case_init(rc, yaml);
}

/* The lowest "new" rate of the connect_rate events, or -1 when there are none. */
static double lowest_event_rate(const run_case *rc, size_t *changes)
{
	char path[400];
	char line[8192];
	double lowest = -1.0;
	FILE *f;

	*changes = 0;
	run_case_path(rc, "events.jsonl", path, sizeof(path));
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		json_t *ev = json_loads(line, 0, NULL);
		const char *type = json_string_value(json_object_get(ev, "type"));
		const char *reason = json_string_value(json_object_get(ev, "why"));

		ck_assert_msg(ev != NULL, "events.jsonl: not JSON: %s", line);
		if (type != NULL && strcmp(type, "connect_rate") == 0 && reason != NULL &&
		    strcmp(reason, "start") != 0) {
			double rate = json_number_value(json_object_get(ev, "new"));

			ck_assert_msg(json_is_number(json_object_get(ev, "old")),
				      "connect_rate event without old: %s", line);
			if (lowest < 0 || rate < lowest)
				lowest = rate;
			(*changes)++;
		}
		json_decref(ev);
	}
	fclose(f);
	return lowest;
}

/* The number of rows of samples.csv whose device connected (t_connect_ns known). */
static size_t connected_rows(const run_case *rc)
{
	run_csv *csv = run_read_samples(rc);
	size_t n = 0;

	for (size_t r = 0; r < csv->nrows; r++)
		n += strcmp(run_csv_get(csv, r, "t_connect_ns"), "") != 0;
	free(csv);
	return n;
}

START_TEST(test_run_rate_lowers_to_quota)
{
	run_case rc = { .pid = -1 };
	size_t changes;
	double lowest;
	json_t *run, *rate;

	start_case(&rc, "rate-adaptive", DEVICES);
	ck_assert_int_eq(run_case_run(&rc, sets_on, RUN_TIMEOUT_S), 0);
	lowest = lowest_event_rate(&rc, &changes);
	ck_assert_uint_ge(changes, 1);
	ck_assert_msg(lowest > 0 && lowest <= QUOTA,
		      "lowest connect rate %.3f/s, expected at most the quota %.0f/s", lowest,
		      QUOTA);
	run = run_read_json(&rc);
	ck_assert_str_eq(json_string_value(json_object_get(run, "status")), "completed");
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(run, "counts"),
							    "subscribed")),
			 DEVICES);
	rate = json_object_get(run, "connect_rate");
	ck_assert(json_is_true(json_object_get(rate, "adaptive")));
	ck_assert_double_eq_tol(json_number_value(json_object_get(rate, "lowest")), lowest, 1e-3);
	ck_assert_double_eq(json_number_value(json_object_get(rate, "configured")), 100.0);
	json_decref(run);
	ck_assert_uint_eq(connected_rows(&rc), DEVICES);
	run_case_cleanup(&rc);
}
END_TEST

START_TEST(test_run_rate_off_is_throttled)
{
	run_case rc = { .pid = -1 };
	size_t changes;
	json_t *run;

	start_case(&rc, "rate-fixed", DEVICES);
	ck_assert_int_eq(run_case_run(&rc, sets_off, RUN_TIMEOUT_S), 0);
	ck_assert_double_eq(lowest_event_rate(&rc, &changes), -1.0);
	ck_assert_uint_eq(changes, 0);
	ck_assert_uint_gt(run_count_events(&rc, "connect_failed"), 0);
	run = run_read_json(&rc);
	ck_assert_int_gt(json_integer_value(json_object_get(json_object_get(run, "counts"),
							    "connect_failures")),
			 0);
	ck_assert(json_is_false(json_object_get(json_object_get(run, "connect_rate"),
						"adaptive")));
	ck_assert_ptr_null(json_object_get(json_object_get(run, "connect_rate"), "lowest"));
	json_decref(run);
	run_case_cleanup(&rc);
}
END_TEST

/*
 * With a quota far below the configured rate, the rate must come down to
 * the quota and stay there while devices are still connecting. So the
 * lowest rate is at most the quota, and every device is connected. The
 * rate at the end of the run (no connects after the connect phase) is at
 * most one increase, a tenth of the rate, above the quota.
 */
START_TEST(test_run_rate_settles_below_low_quota)
{
	run_case rc = { .pid = -1 };
	size_t changes;
	double lowest, current;
	json_t *run, *rate;

	start_case(&rc, "rate-low-quota", LOW_QUOTA_DEVICES);
	ck_assert_int_eq(run_case_run(&rc, sets_low, RUN_TIMEOUT_S), 0);
	lowest = lowest_event_rate(&rc, &changes);
	ck_assert_uint_ge(changes, 1);
	ck_assert_msg(lowest > 0 && lowest <= LOW_QUOTA,
		      "lowest connect rate %.3f/s, expected at most the quota %.0f/s", lowest,
		      LOW_QUOTA);
	run = run_read_json(&rc);
	ck_assert_str_eq(json_string_value(json_object_get(run, "status")), "completed");
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(run, "counts"),
							    "subscribed")),
			 LOW_QUOTA_DEVICES);
	rate = json_object_get(run, "connect_rate");
	current = json_number_value(json_object_get(rate, "current"));
	ck_assert_msg(current > 0 && current <= LOW_QUOTA * 1.1,
		      "connect rate %.3f/s at the end, expected at most a tenth above the quota "
		      "%.0f/s", current, LOW_QUOTA);
	json_decref(run);
	ck_assert_uint_eq(connected_rows(&rc), LOW_QUOTA_DEVICES);
	run_case_cleanup(&rc);
}
END_TEST

static Suite *run_rate_suite(void)
{
	Suite *s = suite_create("run_rate");
	TCase *tc = tcase_create("pacing");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_run_rate_lowers_to_quota);
	tcase_add_test(tc, test_run_rate_off_is_throttled);
	tcase_add_test(tc, test_run_rate_settles_below_low_quota);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(run_rate_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
