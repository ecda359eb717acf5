/*
 * `policylag run` against the embedded simulator. The ground truth is the
 * moment a device's connection really refreshed its policy snapshot, and
 * every device's measured latency must agree with it to within one probe
 * interval plus 100 ms. The cases cover both strategies, both directions, a
 * shared certificate, policy-version and trigger-topic swaps, and
 * data-plane probes.
 *
 * Why that bound: a grant is seen at the first probe delivered after the
 * refresh, and probes leave every interval; a revoke is dated by the send
 * time of the first probe lost, which is at most one interval after the
 * refresh. 100 ms covers loopback delivery and scheduling on a busy machine.
 * NOTE: a probe published through the HTTP API waits in the simulator's
 * queue until the broker's next tick, at most 100 ms later when idle. So
 * those cases have little of the slack left: their first probes took 80 to
 * 87 ms from send to receipt on a 2-core machine with other jobs running.
 */
#include "tests/check_run_support.h"

#include "harness/truth.h"

#define PROBE_INTERVAL "250ms"
#define PROBE_INTERVAL_NS 250000000LL
#define SLACK_NS 100000000LL
#define RUN_TIMEOUT_S 90

static const char groups_both[] =
	"  - name: keep\n"
	"    share: 50%\n"
	"    strategy: keep-connection\n"
	"  - name: reconnect\n"
	"    share: 50%\n"
	"    strategy: reconnect-per-attempt\n"
	"    attempt_interval: 2s\n"
	"    attempt_window: 1500ms\n";

static const char groups_keep[] =
	"  - name: keep\n"
	"    strategy: keep-connection\n";

/*
 * Returns the slowest probe round trip in the device's attempt events, or -1
 * when none has one, and counts those events in *attempts. Each event has the
 * round trip of its connection's first delivered probe, so a value above
 * SLACK_NS shows that the broker delivered probes late during the run.
 */
static long long max_probe_rtt(const run_case *rc, const char *device, size_t *attempts)
{
	char path[400];
	char line[8192];
	long long max = -1;
	FILE *f;

	*attempts = 0;
	run_case_path(rc, "events.jsonl", path, sizeof(path));
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		json_t *ev = json_loads(line, 0, NULL);
		const char *type = json_string_value(json_object_get(ev, "type"));
		const char *name = json_string_value(json_object_get(ev, "device"));
		json_t *rtt = json_object_get(ev, "probe_rtt_ns");

		if (type != NULL && strcmp(type, "attempt") == 0 && name != NULL &&
		    strcmp(name, device) == 0) {
			(*attempts)++;
			if (json_is_integer(rtt) && json_integer_value(rtt) > max)
				max = json_integer_value(rtt);
		}
		json_decref(ev);
	}
	fclose(f);
	return max;
}

/* Names the failure that a measurement outside the bound shows, from its sign and the round trips. */
static const char *bound_verdict(const run_csv *csv, size_t r, long long error, long long rtt)
{
	if (error < 0 && strcmp(run_csv_get(csv, r, "direction"), "grant") == 0)
		return "the ground truth is wrong (a probe cannot be received before the refresh "
		       "that allows it)";
	if (rtt > SLACK_NS)
		return "the broker delivered probes late: the machine is too loaded for the bound";
	return "the first probes arrived in time: check the ground truth and the detection, "
	       "unless a high load average shows that probes were sent late";
}

/* Writes the 1-minute load average from /proc/loadavg, or "unknown", into buf. */
static void read_load_average(char *buf, size_t len)
{
	FILE *f = fopen("/proc/loadavg", "r");

	snprintf(buf, len, "unknown");
	if (f == NULL)
		return;
	if (fscanf(f, "%15s", buf) != 1)
		snprintf(buf, len, "unknown");
	fclose(f);
}

/* Asserts that every row has an effect and agrees with the ground truth. */
static void assert_rows_match_truth(const run_case *rc, const run_csv *csv,
				    size_t expected_rows)
{
	ck_assert_uint_eq(csv->nrows, expected_rows);
	for (size_t r = 0; r < csv->nrows; r++) {
		const char *device = run_csv_get(csv, r, "device");
		long long truth = run_csv_int(csv, r, "truth_effect_ns");
		long long error = run_csv_int(csv, r, "truth_error_ns");
		long long bound = PROBE_INTERVAL_NS + SLACK_NS;
		long long rtt;
		size_t attempts;
		char rtt_text[32];
		char load[16];

		ck_assert_msg(strcmp(run_csv_get(csv, r, "censored"), "0") == 0,
			      "device %s is censored", device);
		ck_assert_msg(truth != (long long)INT64_MIN,
			      "device %s (%s) has no ground truth: no snapshot of its connections "
			      "with the new policies was recorded after the change",
			      device, run_csv_get(csv, r, "strategy"));
		if (error >= -bound && error <= bound)
			continue;
		rtt = max_probe_rtt(rc, device, &attempts);
		if (rtt >= 0)
			snprintf(rtt_text, sizeof(rtt_text), "%lld ms", rtt / 1000000);
		else
			snprintf(rtt_text, sizeof(rtt_text), "not recorded");
		read_load_average(load, sizeof(load));
		ck_abort_msg("device %s (%s): measured effect %lld ms %s the ground truth, bound "
			     "%lld ms; the slowest first-probe round trip of its %zu attempts: %s; "
			     "load average %s; so %s",
			     device, run_csv_get(csv, r, "strategy"), llabs(error) / 1000000,
			     error < 0 ? "before" : "after", bound / 1000000, attempts, rtt_text,
			     load, bound_verdict(csv, r, error, rtt));
	}
}

static size_t count_strategy(const run_csv *csv, const char *strategy)
{
	size_t n = 0;

	for (size_t r = 0; r < csv->nrows; r++)
		n += strcmp(run_csv_get(csv, r, "strategy"), strategy) == 0;
	return n;
}

/*
 * attempts and connects count the connection in use at the swap and every
 * one after it: a keep-connection device that stayed connected has 1 and 1,
 * a reconnecting device at least one successful attempt before its effect.
 */
static void assert_row_counts(const run_csv *csv)
{
	for (size_t r = 0; r < csv->nrows; r++) {
		long long attempts = run_csv_int(csv, r, "attempts");
		long long connects = run_csv_int(csv, r, "connects");

		if (strcmp(run_csv_get(csv, r, "strategy"), "keep-connection") == 0) {
			ck_assert_int_eq(attempts, 1);
			ck_assert_int_eq(connects, 1);
		} else {
			ck_assert_int_ge(connects, 1);
			ck_assert_int_ge(attempts, connects);
		}
	}
}

static void run_and_check(const char *name, const char *groups, const char *certificates,
			  const char *before, const char *after, const char *swap, int devices,
			  run_csv **out, run_case *rc)
{
	char yaml[4096];

	run_profile_text(yaml, sizeof(yaml), name, devices, "ttl:2s", certificates, groups,
			 before, after, swap, PROBE_INTERVAL, "15s");
	run_case_init(rc, yaml);
	ck_assert_int_eq(run_case_run(rc, NULL, RUN_TIMEOUT_S), 0);
	*out = run_read_samples(rc);
}

START_TEST(test_run_grant_both_strategies)
{
	run_case rc = { .pid = -1 };
	run_csv *csv;

	run_and_check("grant-both", groups_both, "per-device", "probe-no-receive.json",
		      "probe-full.json", "  kind: attach-detach\n  direction: grant\n", 12, &csv,
		      &rc);
	assert_rows_match_truth(&rc, csv, 12);
	assert_row_counts(csv);
	ck_assert_uint_eq(count_strategy(csv, "keep-connection"), 6);
	ck_assert_uint_eq(count_strategy(csv, "reconnect-per-attempt"), 6);
	ck_assert_str_eq(run_csv_get(csv, 0, "direction"), "grant");
	free(csv);
	run_case_cleanup(&rc);
}
END_TEST

START_TEST(test_run_revoke_both_strategies)
{
	run_case rc = { .pid = -1 };
	run_csv *csv;

	run_and_check("revoke-both", groups_both, "per-device", "probe-full.json",
		      "probe-no-receive.json", "  kind: attach-detach\n  direction: revoke\n", 12,
		      &csv, &rc);
	assert_rows_match_truth(&rc, csv, 12);
	assert_row_counts(csv);
	ck_assert_uint_eq(count_strategy(csv, "reconnect-per-attempt"), 6);
	ck_assert_str_eq(run_csv_get(csv, 0, "direction"), "revoke");
	free(csv);
	run_case_cleanup(&rc);
}
END_TEST

/*
 * Counts events.jsonl's lifecycle disconnects: *auth_errors of reason
 * AUTH_ERROR (the broker closed a connection it did not authorize) and
 * *fresh_ids of client ids "<device>-a<attempt>".
 */
static void count_lifecycle(const run_case *rc, size_t *auth_errors, size_t *fresh_ids)
{
	char path[400];
	char line[8192];
	FILE *f;

	*auth_errors = 0;
	*fresh_ids = 0;
	run_case_path(rc, "events.jsonl", path, sizeof(path));
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		json_t *ev = json_loads(line, 0, NULL);
		const char *type = json_string_value(json_object_get(ev, "type"));
		const char *client_id = json_string_value(json_object_get(ev, "client_id"));
		const char *reason = json_string_value(json_object_get(ev, "reason"));

		if (type != NULL && strcmp(type, "lifecycle_disconnect") == 0) {
			*auth_errors += reason != NULL && strcmp(reason, "AUTH_ERROR") == 0;
			*fresh_ids += client_id != NULL && strstr(client_id, "-a") != NULL;
		}
		json_decref(ev);
	}
	fclose(f);
}

/*
 * Fresh-per-attempt client ids with policies that allow only the topic of
 * ${iot:ClientId}: each attempt subscribes and probes on the topic of its
 * own client id, so no attempt is denied and the grant is measured.
 */
START_TEST(test_run_fresh_client_id_topics)
{
	static const char groups_fresh[] =
		"  - name: fresh\n"
		"    strategy: reconnect-per-attempt\n"
		"    attempt_interval: 2s\n"
		"    attempt_window: 1500ms\n"
		"    client_id_scheme: fresh-per-attempt\n";
	run_case rc = { .pid = -1 };
	char yaml[4096];
	run_csv *csv;
	size_t auth_errors;
	size_t fresh_ids;

	run_profile_text(yaml, sizeof(yaml), "fresh-ids", 4, "ttl:2s", "per-device", groups_fresh,
			 "probe-no-receive.json", "probe-full.json",
			 "  kind: attach-detach\n  direction: grant\n", PROBE_INTERVAL, "15s");
	/* 5 s before the swap: every device makes two or three attempts, all
	 * but the first with a fresh client id. */
	run_replace(yaml, sizeof(yaml), "settle: 1s", "settle: 5s");
	run_case_init(&rc, yaml);
	ck_assert_int_eq(run_case_run(&rc, NULL, RUN_TIMEOUT_S), 0);
	csv = run_read_samples(&rc);
	assert_rows_match_truth(&rc, csv, 4);
	count_lifecycle(&rc, &auth_errors, &fresh_ids);
	ck_assert_uint_eq(auth_errors, 0);
	ck_assert_uint_ge(fresh_ids, 8);
	free(csv);
	run_case_cleanup(&rc);
}
END_TEST

START_TEST(test_run_shared_certificate)
{
	run_case rc = { .pid = -1 };
	run_csv *csv;

	run_and_check("shared-cert", groups_keep, "shared", "probe-no-receive.json",
		      "probe-full.json", "  kind: attach-detach\n  direction: grant\n", 10, &csv,
		      &rc);
	assert_rows_match_truth(&rc, csv, 10);
	for (size_t r = 1; r < csv->nrows; r++) {
		ck_assert_str_eq(run_csv_get(csv, r, "cert_id"), run_csv_get(csv, 0, "cert_id"));
		ck_assert_str_eq(run_csv_get(csv, r, "t_swap_ns"), run_csv_get(csv, 0, "t_swap_ns"));
	}
	free(csv);
	run_case_cleanup(&rc);
}
END_TEST

START_TEST(test_run_policy_version)
{
	run_case rc = { .pid = -1 };
	run_csv *csv;

	run_and_check("policy-version", groups_keep, "per-device", "probe-no-receive.json",
		      "probe-full.json", "  kind: policy-version\n  direction: grant\n", 10, &csv,
		      &rc);
	assert_rows_match_truth(&rc, csv, 10);
	for (size_t r = 1; r < csv->nrows; r++) {
		ck_assert_str_eq(run_csv_get(csv, r, "t_swap_start_ns"),
				 run_csv_get(csv, 0, "t_swap_start_ns"));
		ck_assert_str_eq(run_csv_get(csv, r, "t_swap_ns"), run_csv_get(csv, 0, "t_swap_ns"));
	}
	ck_assert_str_ne(run_csv_get(csv, 0, "t_swap_ns"), "");
	free(csv);
	run_case_cleanup(&rc);
}
END_TEST

START_TEST(test_run_prober_via_http)
{
	char yaml[4096];
	run_case rc = { .pid = -1 };
	run_csv *csv;

	run_profile_text(yaml, sizeof(yaml), "prober-http", 10, "ttl:2s", "per-device",
			 groups_keep, "probe-no-receive.json", "probe-full.json",
			 "  kind: attach-detach\n  direction: grant\n", PROBE_INTERVAL, "15s");
	/* The probes come from the data-plane Publish API instead of the devices. */
	run_replace(yaml, sizeof(yaml), "  kind: echo\n", "  kind: prober\n  via: http\n");
	run_case_init(&rc, yaml);
	ck_assert_int_eq(run_case_run(&rc, NULL, RUN_TIMEOUT_S), 0);
	csv = run_read_samples(&rc);
	assert_rows_match_truth(&rc, csv, 10);
	free(csv);
	run_case_cleanup(&rc);
}
END_TEST

/*
 * A revoke with data-plane probes: the workers date the first lost probe
 * from the payload times of the probes they received before it.
 */
START_TEST(test_run_prober_via_http_revoke)
{
	char yaml[4096];
	run_case rc = { .pid = -1 };
	run_csv *csv;

	run_profile_text(yaml, sizeof(yaml), "prober-http-revoke", 10, "ttl:2s", "per-device",
			 groups_keep, "probe-full.json", "probe-no-receive.json",
			 "  kind: attach-detach\n  direction: revoke\n", PROBE_INTERVAL, "15s");
	run_replace(yaml, sizeof(yaml), "  kind: echo\n", "  kind: prober\n  via: http\n");
	run_case_init(&rc, yaml);
	ck_assert_int_eq(run_case_run(&rc, NULL, RUN_TIMEOUT_S), 0);
	csv = run_read_samples(&rc);
	assert_rows_match_truth(&rc, csv, 10);
	ck_assert_str_eq(run_csv_get(csv, 0, "direction"), "revoke");
	free(csv);
	run_case_cleanup(&rc);
}
END_TEST

/*
 * The background experiment in small: a publish to hoge/req makes the
 * simulator's rule attach seed-b (which adds iot:Receive on the device's
 * response topic) and detach seed-a for the publishing certificate, and a
 * prober connection publishes the probes.
 * NOTE: under heavy load one reconnecting device received its first probe
 * two intervals after its SUBACK, outside the bound, with a correct truth.
 */
START_TEST(test_run_trigger_topic)
{
	char yaml[4096];
	run_case rc = { .pid = -1 };
	run_csv *csv;

	run_profile_text(yaml, sizeof(yaml), "trigger", 10, "ttl:2s", "per-device", groups_both,
			 "seed-a.json", "seed-b.json",
			 "  kind: trigger-topic\n  direction: grant\n  trigger_topic: hoge/req\n",
			 PROBE_INTERVAL, "15s");
	run_replace(yaml, sizeof(yaml), "  kind: echo\n",
		    "  kind: prober\n  topic: \"hoge/res/${client_id}\"\n");
	run_case_init(&rc, yaml);
	ck_assert_int_eq(run_case_run(&rc, NULL, RUN_TIMEOUT_S), 0);
	csv = run_read_samples(&rc);
	assert_rows_match_truth(&rc, csv, 10);
	/* Only the rule knows when it changed the policies. */
	ck_assert_str_eq(run_csv_get(csv, 0, "t_swap_ns"), "");
	ck_assert_uint_eq(count_strategy(csv, "reconnect-per-attempt"), 5);
	free(csv);
	run_case_cleanup(&rc);
}
END_TEST

/*
 * A reconnecting device can connect just after a trigger was published but
 * before the rule changed its policies; that connection's snapshot still
 * has the old policies and is not the effect.
 */
START_TEST(test_run_truth_skips_unchanged_snapshot)
{
	static const char lines[] =
		"{\"clientId\":\"d1\",\"event\":\"connect\",\"monoNs\":100,\"policies\":[{\"name\":\"a\",\"version\":\"1\"}]}\n"
		"{\"clientId\":\"d1\",\"event\":\"connect\",\"monoNs\":200,\"policies\":[{\"name\":\"a\",\"version\":\"1\"}]}\n"
		"{\"clientId\":\"d1\",\"event\":\"connect\",\"monoNs\":300,\"policies\":[{\"name\":\"b\",\"version\":\"1\"}]}\n"
		"{\"clientId\":\"d2\",\"event\":\"connect\",\"monoNs\":200}\n";
	truth_table *t = NULL;
	pl_errmsg e;

	ck_assert_int_eq(truth_load_text(&t, lines, strlen(lines), &e), PL_OK);
	ck_assert_int_eq(truth_effect(t, "d1", 150, 0), 300);
	ck_assert_int_eq(truth_effect(t, "d1", 50, 0), 100);
	/* Without policies in the lines, the first snapshot counts. */
	ck_assert_int_eq(truth_effect(t, "d2", 150, 0), 200);
	truth_free(t);
}
END_TEST

/*
 * An attach-detach swap attaches the new policy before it detaches the old
 * one. A refresh between the two calls sees both policies: for a grant that
 * union already allows the new access, so it is the effect; for a revoke the
 * old policy still allows everything, so the effect is the next snapshot
 * without it.
 */
START_TEST(test_run_truth_revoke_skips_union_snapshot)
{
	static const char lines[] =
		"{\"clientId\":\"d1\",\"event\":\"connect\",\"monoNs\":100,\"policies\":[{\"name\":\"full\",\"version\":\"1\"}]}\n"
		"{\"clientId\":\"d1\",\"event\":\"refresh\",\"changed\":true,\"monoNs\":200,\"policies\":[{\"name\":\"full\",\"version\":\"1\"},{\"name\":\"no-receive\",\"version\":\"1\"}]}\n"
		"{\"clientId\":\"d1\",\"event\":\"refresh\",\"changed\":true,\"monoNs\":300,\"policies\":[{\"name\":\"no-receive\",\"version\":\"1\"}]}\n";
	truth_table *t = NULL;
	pl_errmsg e;

	ck_assert_int_eq(truth_load_text(&t, lines, strlen(lines), &e), PL_OK);
	ck_assert_int_eq(truth_effect(t, "d1", 150, 1), 300);
	ck_assert_int_eq(truth_effect(t, "d1", 150, 0), 200);
	truth_free(t);
}
END_TEST

/*
 * A fleet made by `policylag fleet create` is reused: both runs connect
 * with the inventory's certificates, and the second run still measures a
 * grant, because each certificate's policies are reset to the "before" ones
 * that the first run's swap replaced. The prober's certificate, made per
 * run, is deleted again, so the fleet's simulator keeps only the fleet's.
 */
START_TEST(test_run_reuses_fleet_inventory)
{
	char yaml[4096];
	run_case rc = { .pid = -1 };
	run_csv *first;
	run_csv *second;
	char state[400];
	json_t *sim_state;

	run_profile_text(yaml, sizeof(yaml), "fleet-reuse", 4, "ttl:2s", "per-device",
			 groups_keep, "probe-no-receive.json", "probe-full.json",
			 "  kind: attach-detach\n  direction: grant\n", PROBE_INTERVAL, "15s");
	run_replace(yaml, sizeof(yaml), "  worker_devices: 10\n",
		    "  worker_devices: 10\n  inventory: fleet\n");
	run_replace(yaml, sizeof(yaml), "  kind: echo\n", "  kind: prober\n");
	run_case_init(&rc, yaml);
	ck_assert_int_eq(run_case_command(&rc, "fleet", "create"), 0);
	ck_assert_int_eq(run_case_run(&rc, NULL, RUN_TIMEOUT_S), 0);
	first = run_read_samples(&rc);
	assert_rows_match_truth(&rc, first, 4);
	snprintf(rc.out, sizeof(rc.out), "%s/run2", rc.dir);
	ck_assert_int_eq(run_case_run(&rc, NULL, RUN_TIMEOUT_S), 0);
	second = run_read_samples(&rc);
	assert_rows_match_truth(&rc, second, 4);
	for (size_t r = 0; r < 4; r++) {
		const char *device = run_csv_get(first, r, "device");
		size_t r2 = 0;

		while (r2 < 4 && strcmp(run_csv_get(second, r2, "device"), device) != 0)
			r2++;
		ck_assert_uint_lt(r2, 4);
		ck_assert_str_ne(run_csv_get(first, r, "cert_id"), "");
		ck_assert_str_eq(run_csv_get(second, r2, "cert_id"), run_csv_get(first, r, "cert_id"));
	}
	snprintf(state, sizeof(state), "%s/fleet/sim/state.json", rc.dir);
	sim_state = json_load_file(state, 0, NULL);
	ck_assert_ptr_nonnull(sim_state);
	ck_assert_uint_eq(json_array_size(json_object_get(sim_state, "certificates")), 4);
	json_decref(sim_state);
	free(first);
	free(second);
	run_case_cleanup(&rc);
}
END_TEST

static Suite *run_suite(void)
{
	Suite *s = suite_create("run");
	TCase *tc = tcase_create("accuracy");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_run_truth_skips_unchanged_snapshot);
	tcase_add_test(tc, test_run_truth_revoke_skips_union_snapshot);
	tcase_add_test(tc, test_run_grant_both_strategies);
	tcase_add_test(tc, test_run_revoke_both_strategies);
	tcase_add_test(tc, test_run_shared_certificate);
	tcase_add_test(tc, test_run_fresh_client_id_topics);
	tcase_add_test(tc, test_run_policy_version);
	tcase_add_test(tc, test_run_prober_via_http);
	tcase_add_test(tc, test_run_prober_via_http_revoke);
	tcase_add_test(tc, test_run_trigger_topic);
	tcase_add_test(tc, test_run_reuses_fleet_inventory);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(run_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
