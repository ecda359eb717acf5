/*
 * The lifecycle-event observer in `policylag run` against the embedded
 * simulator, with keep-connection devices.
 *
 * In the grant runs the policy cache refreshes 6 s after connect, so no
 * connection takes the new policy before the test closes connections
 * through the simulator's POST /_sim/disconnect, which also publishes the
 * lifecycle disconnected event with the chosen reason. A closed device
 * reconnects after its 1 s backoff, and its new connection takes the new
 * policy at once. A disconnect for maintenance (SERVER_INITIATED_DISCONNECT)
 * confounds the measurement, so that device is excluded from the
 * statistics. AUTH_ERROR is an authorization disconnect, the effect being
 * measured, so that device stays in.
 *
 * The revoke run has the simulator itself close connections for an
 * unauthorized PUBLISH, which must not exclude anyone either.
 */
#include <curl/curl.h>
#include <glob.h>

#include "harness/credentials.h"
#include "tests/check_run_support.h"

#define RUN_TIMEOUT_S 90

static const char groups_keep[] =
	"  - name: keep\n"
	"    strategy: keep-connection\n";

/* The simulator's API credentials, from the run's temporary directory under case_dir. */
static void read_sim_credentials(const char *case_dir, aws_credentials *creds)
{
	char pattern[400];
	glob_t g;
	pl_errmsg e = { "" };

	snprintf(pattern, sizeof(pattern), "%s/policylag-run-*/sim/credentials", case_dir);
	ck_assert_int_eq(glob(pattern, 0, NULL, &g), 0);
	ck_assert_uint_eq(g.gl_pathc, 1);
	memset(creds, 0, sizeof(*creds));
	ck_assert_msg(credentials_read_file(creds, g.gl_pathv[0], "policylag-sim", 0, &e) == PL_OK,
		      "%s", e.msg);
	globfree(&g);
}

/* Discards a response body, so that it stays out of the test's output. */
static size_t discard_body(char *data, size_t size, size_t n, void *ctx)
{
	(void)data;
	(void)ctx;
	return size * n;
}

/* POSTs /_sim/disconnect for client_id with reason. Returns the HTTP status. */
static long sim_disconnect(const run_case *rc, const char *client_id, const char *reason)
{
	json_t *run = run_read_json(rc);
	long port = (long)json_integer_value(
		json_object_get(json_object_get(run, "simulator"), "api_port"));
	aws_credentials creds;
	char url[128], body[256], userpwd[512];
	struct curl_slist *headers = NULL;
	long status = 0;
	CURL *c = curl_easy_init();

	json_decref(run);
	ck_assert_int_gt(port, 0);
	read_sim_credentials(rc->dir, &creds);
	snprintf(url, sizeof(url), "http://127.0.0.1:%ld/_sim/disconnect", port);
	snprintf(body, sizeof(body), "{\"clientId\":\"%s\",\"reason\":\"%s\"}", client_id, reason);
	snprintf(userpwd, sizeof(userpwd), "%s:%s", creds.access_key_id, creds.secret_access_key);
	headers = curl_slist_append(headers, "Content-Type: application/json");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c, CURLOPT_AWS_SIGV4, "aws:amz:us-east-1:iot");
	curl_easy_setopt(c, CURLOPT_USERPWD, userpwd);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard_body);
	ck_assert_int_eq(curl_easy_perform(c), CURLE_OK);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(headers);
	curl_easy_cleanup(c);
	credentials_clear(&creds);
	return status;
}

/* Starts a 4-device grant run whose temporary files go to the case directory. */
static void start_run(run_case *rc, const char *observer_enabled)
{
	char yaml[4096];
	char set[64];
	const char *sets[] = { set, NULL };

	run_profile_text(yaml, sizeof(yaml), "observer", 4, "ttl:6s", "per-device", groups_keep,
			 "probe-no-receive.json", "probe-full.json",
			 "  kind: attach-detach\n  direction: grant\n", "250ms", "10s");
	run_case_init(rc, yaml);
	snprintf(set, sizeof(set), "observer.enabled=%s", observer_enabled);
	/* The run's work directory (simulator credentials) lands in the case directory. */
	ck_assert_int_eq(setenv("TMPDIR", rc->dir, 1), 0);
	run_case_start(rc, sets);
	ck_assert_msg(run_wait_phase(rc, "observe", 60), "the run never reached the observe phase");
}

static size_t row_of(const run_csv *csv, const char *device)
{
	for (size_t r = 0; r < csv->nrows; r++)
		if (strcmp(run_csv_get(csv, r, "device"), device) == 0)
			return r;
	ck_abort_msg("samples.csv has no row for %s", device);
	return 0;
}

/* The first events.jsonl line of type for device, parsed; NULL when there is none. */
static json_t *find_event(const run_case *rc, const char *type, const char *device)
{
	char path[400];
	char line[8192];
	json_t *found = NULL;
	FILE *f;

	run_case_path(rc, "events.jsonl", path, sizeof(path));
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	while (found == NULL && fgets(line, sizeof(line), f) != NULL) {
		json_t *ev = json_loads(line, 0, NULL);
		const char *t = json_string_value(json_object_get(ev, "type"));
		const char *d = json_string_value(json_object_get(ev, "device"));

		if (t != NULL && d != NULL && strcmp(t, type) == 0 && strcmp(d, device) == 0)
			found = json_incref(ev);
		json_decref(ev);
	}
	fclose(f);
	return found;
}

/* The "keep" group of summary.json. */
static json_t *keep_group(const run_case *rc)
{
	char path[400];
	json_t *root, *g;

	run_case_path(rc, "summary.json", path, sizeof(path));
	root = json_load_file(path, 0, NULL);
	ck_assert_ptr_nonnull(root);
	g = json_incref(json_array_get(json_object_get(root, "groups"), 0));
	json_decref(root);
	ck_assert_str_eq(json_string_value(json_object_get(g, "name")), "keep");
	return g;
}

/* Whether summary.json's verdict contains text. */
static int verdict_contains(const run_case *rc, const char *text)
{
	char path[400];
	json_t *root;
	const char *verdict;
	int found;

	run_case_path(rc, "summary.json", path, sizeof(path));
	root = json_load_file(path, 0, NULL);
	ck_assert_ptr_nonnull(root);
	verdict = json_string_value(json_object_get(root, "verdict"));
	ck_assert_ptr_nonnull(verdict);
	found = strstr(verdict, text) != NULL;
	json_decref(root);
	return found;
}

START_TEST(test_run_observer_excludes_server_disconnect)
{
	run_case rc = { .pid = -1 };
	run_csv *csv;
	json_t *ev, *g;
	char *out;

	start_run(&rc, "true");
	ck_assert_int_eq(sim_disconnect(&rc, "pl-000000", "SERVER_INITIATED_DISCONNECT"), 200);
	ck_assert_int_eq(sim_disconnect(&rc, "pl-000001", "AUTH_ERROR"), 200);
	ck_assert_int_eq(run_case_wait(&rc, RUN_TIMEOUT_S), 0);

	csv = run_read_samples(&rc);
	ck_assert_uint_eq(csv->nrows, 4);
	ck_assert_str_eq(run_csv_get(csv, row_of(csv, "pl-000000"), "excluded"),
			 "SERVER_INITIATED_DISCONNECT");
	ck_assert_str_eq(run_csv_get(csv, row_of(csv, "pl-000001"), "excluded"), "");
	ck_assert_str_eq(run_csv_get(csv, row_of(csv, "pl-000002"), "excluded"), "");
	ck_assert_str_eq(run_csv_get(csv, row_of(csv, "pl-000003"), "excluded"), "");
	/* Both closed devices reconnected and took the new policy at once. */
	ck_assert_int_ge(run_csv_int(csv, row_of(csv, "pl-000000"), "connects"), 2);
	ck_assert_int_ge(run_csv_int(csv, row_of(csv, "pl-000001"), "connects"), 2);

	ev = find_event(&rc, "lifecycle_disconnect", "pl-000000");
	ck_assert_ptr_nonnull(ev);
	ck_assert_str_eq(json_string_value(json_object_get(ev, "reason")),
			 "SERVER_INITIATED_DISCONNECT");
	ck_assert(json_is_true(json_object_get(ev, "confounds")));
	json_decref(ev);
	ev = find_event(&rc, "lifecycle_disconnect", "pl-000001");
	ck_assert_ptr_nonnull(ev);
	ck_assert_str_eq(json_string_value(json_object_get(ev, "reason")), "AUTH_ERROR");
	ck_assert(json_is_false(json_object_get(ev, "confounds")));
	json_decref(ev);

	g = keep_group(&rc);
	ck_assert_int_eq(json_integer_value(json_object_get(g, "excluded")), 1);
	ck_assert_int_eq(json_integer_value(json_object_get(g, "n")), 3);
	json_decref(g);
	ck_assert(verdict_contains(&rc, "(1 more excluded)"));
	out = run_read_stdout(&rc);
	ck_assert_msg(strstr(out, "excluded") != NULL, "no excluded column in:\n%s", out);
	ck_assert_msg(strstr(out, "may be incomplete") == NULL, "outage warning in:\n%s", out);
	free(out);
	free(csv);
	run_case_cleanup(&rc);
}
END_TEST

/* probe-full.json without iot:Publish: a revoke of the echo probe's PUBLISH. */
static const char no_publish_policy[] =
	"{\"Version\": \"2012-10-17\", \"Statement\": ["
	"{\"Effect\": \"Allow\", \"Action\": \"iot:Connect\","
	" \"Resource\": \"arn:aws:iot:*:*:client/pl-*\"},"
	"{\"Effect\": \"Allow\", \"Action\": \"iot:Subscribe\","
	" \"Resource\": \"arn:aws:iot:*:*:topicfilter/pl/probe/${iot:ClientId}\"},"
	"{\"Effect\": \"Allow\", \"Action\": \"iot:Receive\","
	" \"Resource\": \"arn:aws:iot:*:*:topic/pl/probe/${iot:ClientId}\"}]}\n";

/*
 * MQTT 3.1.1: AWS closes a connection whose PUBLISH is not authorized
 * (lifecycle reason AUTH_ERROR). That close is the revoke's effect, so no
 * device is excluded.
 */
START_TEST(test_run_observer_keeps_auth_error)
{
	run_case rc = { .pid = -1 };
	char yaml[4096], from[512], path[400];
	run_csv *csv;
	json_t *ev, *g;
	FILE *f;

	run_profile_text(yaml, sizeof(yaml), "observer-revoke", 3, "ttl:2s", "per-device",
			 groups_keep, "probe-full.json", "probe-no-receive.json",
			 "  kind: attach-detach\n  direction: revoke\n", "250ms", "10s");
	snprintf(from, sizeof(from), "%s/profiles/policies/probe-no-receive.json",
		 run_env("POLICYLAG_SOURCE_DIR"));
	run_replace(yaml, sizeof(yaml), from, "no-publish.json");
	run_case_init(&rc, yaml);
	snprintf(path, sizeof(path), "%s/no-publish.json", rc.dir);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(no_publish_policy, f);
	fclose(f);
	ck_assert_int_eq(run_case_run(&rc, NULL, RUN_TIMEOUT_S), 0);

	csv = run_read_samples(&rc);
	ck_assert_uint_eq(csv->nrows, 3);
	for (size_t r = 0; r < csv->nrows; r++) {
		ck_assert_str_eq(run_csv_get(csv, r, "censored"), "0");
		ck_assert_str_eq(run_csv_get(csv, r, "excluded"), "");
	}
	ev = find_event(&rc, "lifecycle_disconnect", "pl-000000");
	ck_assert_ptr_nonnull(ev);
	ck_assert_str_eq(json_string_value(json_object_get(ev, "reason")), "AUTH_ERROR");
	ck_assert(json_is_false(json_object_get(ev, "confounds")));
	json_decref(ev);
	g = keep_group(&rc);
	ck_assert_int_eq(json_integer_value(json_object_get(g, "excluded")), 0);
	ck_assert_int_eq(json_integer_value(json_object_get(g, "n")), 3);
	json_decref(g);
	free(csv);
	run_case_cleanup(&rc);
}
END_TEST

START_TEST(test_run_observer_off_keeps_every_device)
{
	run_case rc = { .pid = -1 };
	run_csv *csv;
	json_t *g, *run;

	start_run(&rc, "false");
	ck_assert_int_eq(sim_disconnect(&rc, "pl-000000", "SERVER_INITIATED_DISCONNECT"), 200);
	ck_assert_int_eq(run_case_wait(&rc, RUN_TIMEOUT_S), 0);

	csv = run_read_samples(&rc);
	ck_assert_uint_eq(csv->nrows, 4);
	ck_assert_str_eq(run_csv_get(csv, row_of(csv, "pl-000000"), "excluded"), "");
	ck_assert_uint_eq(run_count_events(&rc, "lifecycle_disconnect"), 0);
	g = keep_group(&rc);
	ck_assert_int_eq(json_integer_value(json_object_get(g, "excluded")), 0);
	ck_assert_int_eq(json_integer_value(json_object_get(g, "n")), 4);
	json_decref(g);
	run = run_read_json(&rc);
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(run, "observer"),
							   "status")),
			 "off");
	json_decref(run);
	free(csv);
	run_case_cleanup(&rc);
}
END_TEST

/*
 * Closing the observer's own connection after the swap loses the lifecycle
 * events of its reconnect backoff (1 s at least), so run.json counts the
 * outage and the result table warns that exclusions may be incomplete.
 */
START_TEST(test_run_observer_outage_reported)
{
	run_case rc = { .pid = -1 };
	json_t *run, *obs;
	char *out;
	char path[400];
	static char page[1 << 20];
	FILE *html;
	size_t n;

	start_run(&rc, "true");
	ck_assert_int_eq(sim_disconnect(&rc, "pl-observer-1", "SERVER_INITIATED_DISCONNECT"), 200);
	ck_assert_int_eq(run_case_wait(&rc, RUN_TIMEOUT_S), 0);

	run = run_read_json(&rc);
	obs = json_object_get(run, "observer");
	ck_assert_ptr_nonnull(obs);
	ck_assert_int_ge(json_integer_value(json_object_get(obs, "outages")), 1);
	ck_assert_int_gt(json_integer_value(json_object_get(obs, "outage_ns")), 0);
	ck_assert(json_is_true(json_object_get(obs, "outage_after_swap")));
	json_decref(run);
	out = run_read_stdout(&rc);
	ck_assert_msg(strstr(out, "excluded counts may be incomplete") != NULL,
		      "no observer outage warning in:\n%s", out);
	free(out);
	run_case_path(&rc, "report.html", path, sizeof(path));
	html = fopen(path, "r");
	ck_assert_ptr_nonnull(html);
	n = fread(page, 1, sizeof(page) - 1, html);
	page[n] = '\0';
	fclose(html);
	ck_assert_msg(strstr(page, "excluded counts may be incomplete") != NULL,
		      "no observer outage warning in report.html");
	run_case_cleanup(&rc);
}
END_TEST

static Suite *run_observer_suite(void)
{
	Suite *s = suite_create("run_observer");
	TCase *tc = tcase_create("observer");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_run_observer_excludes_server_disconnect);
	tcase_add_test(tc, test_run_observer_keeps_auth_error);
	tcase_add_test(tc, test_run_observer_off_keeps_every_device);
	tcase_add_test(tc, test_run_observer_outage_reported);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(run_observer_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
