/*
 * `policylag run` when things go wrong. Devices that never see the change
 * are censored at the observation timeout. SIGINT leaves valid partial
 * files that mark the run as interrupted. A worker killed with SIGKILL is
 * reported with its devices while the others finish.
 */
#include "tests/check_run_support.h"

#define RUN_TIMEOUT_S 90

static const char groups_keep[] =
	"  - name: keep\n"
	"    strategy: keep-connection\n";

static const char swap_grant[] = "  kind: attach-detach\n  direction: grant\n";

/* A grant run with n keep-connection devices and the given propagation. */
static void start_keep_run(run_case *rc, const char *name, int devices, const char *propagation,
			   const char *observe_timeout)
{
	char yaml[4096];

	run_profile_text(yaml, sizeof(yaml), name, devices, propagation, "per-device",
			 groups_keep, "probe-no-receive.json", "probe-full.json", swap_grant,
			 "250ms", observe_timeout);
	run_case_init(rc, yaml);
	run_case_start(rc, NULL);
}

START_TEST(test_run_censored_at_timeout)
{
	run_case rc = { .pid = -1 };
	run_csv *csv;

	/* The snapshot refreshes every 60 s, far beyond the 3 s observation. */
	start_keep_run(&rc, "censored", 10, "ttl:60s", "3s");
	ck_assert_int_eq(run_case_wait(&rc, RUN_TIMEOUT_S), 0);
	csv = run_read_samples(&rc);
	ck_assert_uint_eq(csv->nrows, 10);
	for (size_t r = 0; r < csv->nrows; r++) {
		long long start = run_csv_int(csv, r, "t_swap_start_ns");
		long long end = run_csv_int(csv, r, "t_censor_ns");
		long long swap = run_csv_int(csv, r, "t_swap_ns");

		ck_assert_str_eq(run_csv_get(csv, r, "censored"), "1");
		ck_assert_str_eq(run_csv_get(csv, r, "t_effect_ns"), "");
		ck_assert_int_eq(end - start, 3000000000LL);
		ck_assert_int_eq(run_csv_int(csv, r, "latency_ns"), end - swap);
		ck_assert_str_eq(run_csv_get(csv, r, "censor_reason"), "timeout");
	}
	free(csv);
	run_case_cleanup(&rc);
}
END_TEST

START_TEST(test_run_sigint_leaves_partial_files)
{
	run_case rc = { .pid = -1 };
	run_csv *csv;
	json_t *run;
	char *out;

	start_keep_run(&rc, "sigint", 10, "ttl:60s", "60s");
	ck_assert_msg(run_wait_phase(&rc, "observe", 60), "the run never reached observe");
	kill(rc.pid, SIGINT);
	ck_assert_int_eq(run_case_wait(&rc, 30), 3);
	run = run_read_json(&rc);
	ck_assert_str_eq(json_string_value(json_object_get(run, "status")), "interrupted");
	ck_assert(json_is_true(json_object_get(run, "interrupted")));
	ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(run, "reason")), "SIGINT"));
	ck_assert_int_eq(json_integer_value(json_object_get(run, "exit_status")), 3);
	json_decref(run);
	csv = run_read_samples(&rc);
	ck_assert_uint_eq(csv->nrows, 10);
	for (size_t r = 0; r < csv->nrows; r++) {
		ck_assert_str_eq(run_csv_get(csv, r, "censored"), "1");
		ck_assert_str_eq(run_csv_get(csv, r, "censor_reason"), "interrupted");
	}
	ck_assert_uint_eq(run_count_events(&rc, "interrupt"), 1);
	free(csv);
	/* The devices were censored at the interruption, right after the swap,
	 * so the table must not claim they waited the 60 s observation timeout. */
	out = run_read_stdout(&rc);
	ck_assert_ptr_nonnull(strstr(out, "keep"));
	ck_assert_ptr_null(strstr(out, ">60s"));
	free(out);
	run_case_cleanup(&rc);
}
END_TEST

/*
 * Ctrl-C in a terminal signals the whole foreground process group. The
 * simulator must survive it until the coordinator has drained, so devices
 * that saw the change before the interrupt still get their ground truth.
 */
START_TEST(test_run_sigint_to_group_keeps_truth)
{
	char yaml[4096];
	run_case rc = { .pid = -1 };
	run_csv *csv;
	size_t effective = 0;

	/* Refreshes spread over 1 to 20 s: some devices see the change, most do not yet. */
	run_profile_text(yaml, sizeof(yaml), "sigint-group", 10, "uniform:1s-20s", "per-device",
			 groups_keep, "probe-no-receive.json", "probe-full.json", swap_grant,
			 "250ms", "60s");
	run_case_init(&rc, yaml);
	rc.own_group = 1;
	run_case_start(&rc, NULL);
	ck_assert_msg(run_wait_phase(&rc, "observe", 60), "the run never reached observe");
	for (int i = 0; i < 300 && run_count_rows(&rc) == 0; i++)
		usleep(100000);
	ck_assert_int_eq(kill(-rc.pid, SIGINT), 0);
	ck_assert_int_eq(run_case_wait(&rc, 30), 3);
	/* The coordinator, not the signal, stopped the simulator. */
	ck_assert_uint_eq(run_count_events(&rc, "simulator_exited"), 0);
	csv = run_read_samples(&rc);
	ck_assert_uint_eq(csv->nrows, 10);
	for (size_t r = 0; r < csv->nrows; r++) {
		if (strcmp(run_csv_get(csv, r, "censored"), "0") != 0)
			continue;
		effective++;
		ck_assert_msg(run_csv_get(csv, r, "truth_effect_ns")[0] != '\0',
			      "device %s had an effect but no ground truth",
			      run_csv_get(csv, r, "device"));
	}
	ck_assert_uint_ge(effective, 1);
	free(csv);
	run_case_cleanup(&rc);
}
END_TEST

/* The pid of worker index in run.json, or -1. */
static pid_t worker_pid(const run_case *rc, size_t index)
{
	json_t *run = run_read_json(rc);
	json_t *w = json_array_get(json_object_get(run, "workers"), index);
	pid_t pid = w != NULL ? (pid_t)json_integer_value(json_object_get(w, "pid")) : -1;

	json_decref(run);
	return pid;
}

START_TEST(test_run_killed_worker_reported)
{
	run_case rc = { .pid = -1 };
	run_csv *csv;
	json_t *run;
	pid_t victim;
	size_t dead_rows = 0;

	/* worker_devices is 10, so 20 devices run in two workers. */
	start_keep_run(&rc, "killed-worker", 20, "ttl:2s", "15s");
	ck_assert_msg(run_wait_phase(&rc, "settle", 60), "the run never reached settle");
	victim = worker_pid(&rc, 0);
	ck_assert_int_gt(victim, 0);
	ck_assert_int_eq(kill(victim, SIGKILL), 0);
	ck_assert_int_eq(run_case_wait(&rc, RUN_TIMEOUT_S), 0);
	run = run_read_json(&rc);
	ck_assert_str_eq(json_string_value(json_object_get(run, "status")), "completed");
	json_decref(run);
	ck_assert_uint_eq(run_count_events(&rc, "worker_died"), 1);
	csv = run_read_samples(&rc);
	ck_assert_uint_eq(csv->nrows, 20);
	for (size_t r = 0; r < csv->nrows; r++) {
		int in_dead_worker = strcmp(run_csv_get(csv, r, "worker"), "0") == 0;

		dead_rows += in_dead_worker;
		ck_assert_str_eq(run_csv_get(csv, r, "censored"), in_dead_worker ? "1" : "0");
		if (in_dead_worker)
			ck_assert_str_eq(run_csv_get(csv, r, "censor_reason"), "worker-died");
	}
	ck_assert_uint_eq(dead_rows, 10);
	free(csv);
	run_case_cleanup(&rc);
}
END_TEST

static Suite *run_faults_suite(void)
{
	Suite *s = suite_create("run_faults");
	TCase *tc = tcase_create("faults");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_run_censored_at_timeout);
	tcase_add_test(tc, test_run_sigint_leaves_partial_files);
	tcase_add_test(tc, test_run_sigint_to_group_keeps_truth);
	tcase_add_test(tc, test_run_killed_worker_reported);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(run_faults_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
