/*
 * The API under throttling, bad input and crashes: refused calls match the
 * token bucket, malformed requests get a clean AWS-style error, and every
 * acknowledged change survives a restart and a kill -9.
 */
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>

#include "tests/check_api_fixture.h"

START_TEST(test_api_robust_throttle_control_plane)
{
	static const char *const opts[] = {"api_throttle_CreatePolicy", "0.001/3", NULL};
	int ok = 0, throttled = 0;
	char path[64];
	reply r;

	fixture_start_with(opts);
	for (int i = 0; i < 10; i++) {
		snprintf(path, sizeof(path), "/policies/t%d", i);
		call("POST", path, DOC_ALLOW("iot:Connect"), &r);
		if (r.status == 200)
			ok++;
		if (r.status == 400 && strcmp(r.error_type, "ThrottlingException") == 0 &&
		    strstr(r.body, "Rate exceeded") != NULL)
			throttled++;
		reply_free(&r);
	}
	ck_assert_int_eq(ok, 3);
	ck_assert_int_eq(throttled, 7);
	ck_assert_uint_eq(sim_api_throttled(fx.api, "CreatePolicy"), 7);
	ck_assert_uint_eq(sim_api_throttled(fx.api, "GetPolicy"), 0);
	/* Another operation has its own bucket. */
	ck_assert_int_eq(call_status("GET", "/policies/t0", NULL), 200);
	fixture_stop();
}
END_TEST

START_TEST(test_api_robust_throttle_status_429)
{
	static const char *const opts[] = {"api_throttle_GetPolicy", "0.001/1",
					   "api_throttle_status", "429", NULL};
	reply r;

	fixture_start_with(opts);
	ck_assert_int_eq(call_status("GET", "/policies/none", NULL), 404);
	ck_assert_int_eq(call("GET", "/policies/none", NULL, &r), 429);
	ck_assert_str_eq(r.error_type, "ThrottlingException");
	reply_free(&r);
	fixture_stop();
}
END_TEST

START_TEST(test_api_robust_throttle_data_plane)
{
	static const char *const opts[] = {"api_throttle_Publish", "0.001/1", NULL};
	reply r;

	fixture_start_with(opts);
	ck_assert_int_eq(call_full("POST", "/topics/t", "x", 1, "iotdata", NULL, NULL, &r), 200);
	reply_free(&r);
	ck_assert_int_eq(call_full("POST", "/topics/t", "x", 1, "iotdata", NULL, NULL, &r), 429);
	ck_assert_str_eq(r.error_type, "ThrottlingException");
	reply_free(&r);
	fixture_stop();
}
END_TEST

START_TEST(test_api_robust_throttle_options)
{
	sim_api_config *cfg;
	pl_errmsg e;

	ck_assert_int_eq(sim_api_config_create(&cfg), PL_OK);
	ck_assert_int_eq(sim_api_config_option(cfg, "api_throttle_Nope", "1", &e), PL_ERR_INVALID);
	ck_assert_int_eq(sim_api_config_option(cfg, "api_throttle_AttachPolicy", "x", &e),
			 PL_ERR_INVALID);
	ck_assert_int_eq(sim_api_config_option(cfg, "api_throttle_status", "418", &e),
			 PL_ERR_INVALID);
	ck_assert_int_eq(sim_api_config_option(cfg, "api_bind", "0.0.0.0", &e), PL_ERR_INVALID);
	ck_assert_int_eq(sim_api_config_option(cfg, "api_account_id", "12", &e), PL_ERR_INVALID);
	ck_assert_int_eq(sim_api_config_option(cfg, "api_unknown", "1", &e), PL_ERR_INVALID);
	ck_assert_int_eq(sim_api_config_option(cfg, "api_throttle_AttachPolicy", "0", &e), PL_OK);
	sim_api_config_free(cfg);
}
END_TEST

/* Each bad request gets the given status and an AWS error type; the server keeps serving. */
static void expect_clean_error(const char *method, const char *path, const char *body,
			       long status)
{
	reply r;

	ck_assert_int_eq(call(method, path, body, &r), status);
	ck_assert(r.error_type[0] != '\0');
	ck_assert_ptr_nonnull(r.body);
	ck_assert_ptr_nonnull(strstr(r.body, "\"message\""));
	reply_free(&r);
}

START_TEST(test_api_robust_malformed_bodies)
{
	expect_clean_error("POST", "/policies/p", "{", 400);
	expect_clean_error("POST", "/policies/p", "[1,2]", 400);
	expect_clean_error("POST", "/policies/p", "", 400);
	expect_clean_error("POST", "/policies/p", "{\"policyDocument\":7}", 400);
	expect_clean_error("POST", "/policies/p", "{\"policyDocument\":\"[]\"}", 400);
	expect_clean_error("PUT", "/target-policies/p", "{\"target\":null}", 400);
	expect_clean_error("PUT", "/thing-groups/addThingToThingGroup", "{\"thingName\":5}", 400);
	expect_clean_error("POST", "/things/t", "{\"attributePayload\":{\"attributes\":[1]}}", 400);
	expect_clean_error("PUT", "/_sim/propagation", "{\"propagation\":\"ttl:-5s\"}", 400);
	ck_assert_int_eq(call_status("GET", "/policies", NULL), 200);
}
END_TEST

START_TEST(test_api_robust_oversized_body)
{
	size_t len = 200 * 1024;
	char *big = malloc(len + 1);
	reply r;

	memset(big, 'a', len);
	big[len] = '\0';
	ck_assert_int_eq(call_full("POST", "/policies/p", big, len, "iot", NULL, NULL, &r), 413);
	ck_assert_str_eq(r.error_type, "RequestEntityTooLargeException");
	reply_free(&r);
	free(big);
	ck_assert_int_eq(call_status("GET", "/policies", NULL), 200);
}
END_TEST

START_TEST(test_api_robust_bad_query_values)
{
	expect_clean_error("POST", "/policies/p/version?setAsDefault=maybe", DOC_ALLOW("iot:Connect"),
			   400);
	expect_clean_error("GET", "/policies?pageSize=abc", NULL, 400);
	expect_clean_error("GET", "/policies?pageSize=251", NULL, 400);
	expect_clean_error("GET", "/policies?marker=-3", NULL, 400);
	expect_clean_error("PUT", "/certificates/" "0000000000000000000000000000000000000000000000000000000000000000?newStatus=", NULL, 400);
	expect_clean_error("GET", "/_sim/ground-truth?until_ns=soon", NULL, 400);
}
END_TEST

START_TEST(test_api_robust_path_traversal)
{
	expect_clean_error("GET", "/policies/..%2F..%2Fetc%2Fpasswd", NULL, 400);
	expect_clean_error("GET", "/things/..%2Fstate.json", NULL, 400);
	expect_clean_error("GET", "/certificates/..%2F..%2F..", NULL, 400);
	expect_clean_error("POST", "/thing-groups/%2E%2E", NULL, 400);
	expect_clean_error("GET", "/policies/a%00b", NULL, 400);
	expect_clean_error("GET", "/policies/%zz", NULL, 400);
	expect_clean_error("GET", "/a/b/c/d/e/f/g/h/i/j", NULL, 400);
}
END_TEST

START_TEST(test_api_robust_wrong_methods)
{
	expect_clean_error("PATCH", "/things/t", NULL, 405);
	expect_clean_error("DELETE", "/keys-and-certificate", NULL, 405);
	expect_clean_error("GET", "/target-policies/p", NULL, 405);
	expect_clean_error("OPTIONS", "/policies", NULL, 405);
	expect_clean_error("GET", "/", NULL, 404);
}
END_TEST

/* Creates a policy with a second default version, a certificate and an attachment. */
static void populate(char *cert_id, size_t len)
{
	reply r;
	json_t *j;
	char body[256];

	ck_assert_int_eq(call_status("POST", "/policies/keep", DOC_ALLOW("iot:Connect")), 200);
	ck_assert_int_eq(call_status("POST", "/policies/keep/version?setAsDefault=true",
				     DOC_ALLOW("iot:Publish")),
			 200);
	ck_assert_int_eq(call("POST", "/keys-and-certificate?setAsActive=true", NULL, &r), 200);
	j = json_loads(r.body, 0, NULL);
	snprintf(cert_id, len, "%s", json_string_value(json_object_get(j, "certificateId")));
	json_decref(j);
	reply_free(&r);
	snprintf(body, sizeof(body), "{\"target\":\"arn:aws:iot:us-east-1:123456789012:cert/%s\"}",
		 cert_id);
	ck_assert_int_eq(call_status("PUT", "/target-policies/keep", body), 200);
}

/* Stops the API and the store, then loads the state file into a new store and API. */
static void restart(void)
{
	sim_state_config scfg = {0};
	sim_api_config *cfg;
	pl_errmsg e;
	char ca_cert[300], ca_key[300];

	sim_api_stop(fx.api);
	sim_state_free(fx.state);
	scfg.path = fx.state_path;
	ck_assert_int_eq(sim_state_create(&fx.state, &scfg, &e), PL_OK);
	sim_state_lock(fx.state);
	ck_assert_msg(sim_state_load(fx.state, &e) == PL_OK, "%s", e.msg);
	sim_state_unlock(fx.state);
	snprintf(ca_cert, sizeof(ca_cert), "%s/ca.pem", fx.dir);
	snprintf(ca_key, sizeof(ca_key), "%s/ca.key", fx.dir);
	ck_assert_int_eq(sim_api_config_create(&cfg), PL_OK);
	ck_assert_int_eq(sim_api_config_option(cfg, "api_credentials_file", fx.creds_path, &e), PL_OK);
	ck_assert_int_eq(sim_api_config_option(cfg, "api_throttle", "off", &e), PL_OK);
	ck_assert_int_eq(sim_api_start(&fx.api, cfg, fx.state, &e), PL_OK);
	sim_api_config_free(cfg);
	fx.port = sim_api_listen_port(fx.api);
}

START_TEST(test_api_robust_restart_restores_state)
{
	char cert[65], path[300];
	reply r;
	json_t *j;

	populate(cert, sizeof(cert));
	restart();
	ck_assert_int_eq(call("GET", "/policies/keep", NULL, &r), 200);
	j = json_loads(r.body, 0, NULL);
	ck_assert_str_eq(json_string_value(json_object_get(j, "defaultVersionId")), "2");
	json_decref(j);
	reply_free(&r);
	ck_assert_int_eq(call("GET", "/policies/keep/version", NULL, &r), 200);
	j = json_loads(r.body, 0, NULL);
	ck_assert_int_eq(json_array_size(json_object_get(j, "policyVersions")), 2);
	json_decref(j);
	reply_free(&r);
	snprintf(path, sizeof(path), "/attached-policies/arn:aws:iot:us-east-1:123456789012:cert%%2F%s",
		 cert);
	ck_assert_int_eq(call("POST", path, NULL, &r), 200);
	ck_assert_ptr_nonnull(strstr(r.body, "\"keep\""));
	reply_free(&r);
	snprintf(path, sizeof(path), "/certificates/%s", cert);
	ck_assert_int_eq(call("GET", path, NULL, &r), 200);
	ck_assert_ptr_nonnull(strstr(r.body, "\"ACTIVE\""));
	reply_free(&r);
}
END_TEST

START_TEST(test_api_robust_corrupt_state_refused)
{
	sim_state_config scfg = {0};
	sim_state *s;
	pl_errmsg e;
	FILE *f;

	ck_assert_int_eq(call_status("POST", "/policies/keep", DOC_ALLOW("iot:Connect")), 200);
	f = fopen(fx.state_path, "r+");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(ftruncate(fileno(f), 20), 0);
	fclose(f);
	scfg.path = fx.state_path;
	ck_assert_int_eq(sim_state_create(&s, &scfg, &e), PL_OK);
	sim_state_lock(s);
	ck_assert_int_eq(sim_state_load(s, &e), PL_ERR_PARSE);
	sim_state_unlock(s);
	ck_assert_ptr_nonnull(strstr(e.msg, fx.state_path));
	sim_state_free(s);
}
END_TEST

/* --- kill -9 during a burst ------------------------------------------------ */

#define BURST 120
#define KILL_AFTER 40

static atomic_int acked_count;
static pid_t server_pid;

static void *killer(void *arg)
{
	(void)arg;
	while (atomic_load(&acked_count) < KILL_AFTER)
		usleep(1000);
	kill(server_pid, SIGKILL);
	return NULL;
}

/* Runs the API in a child process; the parent learns its directory, port and key. */
static void start_server_child(void)
{
	int fds[2];

	ck_assert_int_eq(pipe(fds), 0);
	server_pid = fork();
	ck_assert_int_ge(server_pid, 0);
	if (server_pid == 0) {
		close(fds[0]);
		fixture_start();
		if (write(fds[1], &fx, sizeof(fx)) != (ssize_t)sizeof(fx))
			_exit(1);
		for (;;)
			pause();
	}
	close(fds[1]);
	ck_assert_int_eq(read(fds[0], &fx, sizeof(fx)), (ssize_t)sizeof(fx));
	close(fds[0]);
	fx.api = NULL;
	fx.state = NULL;
}

START_TEST(test_api_robust_kill9_keeps_acknowledged)
{
	int acked[BURST] = {0};
	pthread_t t;
	sim_state_config scfg = {0};
	sim_state *s;
	pl_errmsg e;
	char name[32];
	int status;

	start_server_child();
	atomic_store(&acked_count, 0);
	ck_assert_int_eq(pthread_create(&t, NULL, killer, NULL), 0);
	for (int i = 0; i < BURST; i++) {
		snprintf(name, sizeof(name), "/policies/burst%d", i);
		if (call_status("POST", name, DOC_ALLOW("iot:Connect")) == 200) {
			acked[i] = 1;
			atomic_fetch_add(&acked_count, 1);
		}
	}
	pthread_join(t, NULL);
	waitpid(server_pid, &status, 0);
	ck_assert(WIFSIGNALED(status));
	ck_assert_int_ge(atomic_load(&acked_count), KILL_AFTER);
	ck_assert_int_lt(atomic_load(&acked_count), BURST);
	scfg.path = fx.state_path;
	ck_assert_int_eq(sim_state_create(&s, &scfg, &e), PL_OK);
	sim_state_lock(s);
	ck_assert_msg(sim_state_load(s, &e) == PL_OK, "%s", e.msg);
	for (int i = 0; i < BURST; i++) {
		snprintf(name, sizeof(name), "burst%d", i);
		if (acked[i])
			ck_assert_msg(sim_state_policy_find(s, name) != NULL, "%s lost", name);
	}
	sim_state_unlock(s);
	sim_state_free(s);
	nftw(fx.dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}
END_TEST

static Suite *robust_suite(void)
{
	Suite *s = suite_create("api_robust");
	TCase *own = tcase_create("own_fixture");
	TCase *tc = tcase_create("shared_fixture");

	tcase_add_test(own, test_api_robust_throttle_control_plane);
	tcase_add_test(own, test_api_robust_throttle_status_429);
	tcase_add_test(own, test_api_robust_throttle_data_plane);
	tcase_add_test(own, test_api_robust_throttle_options);
	tcase_add_test(own, test_api_robust_kill9_keeps_acknowledged);
	tcase_add_checked_fixture(tc, fixture_start, fixture_stop);
	tcase_add_test(tc, test_api_robust_malformed_bodies);
	tcase_add_test(tc, test_api_robust_oversized_body);
	tcase_add_test(tc, test_api_robust_bad_query_values);
	tcase_add_test(tc, test_api_robust_path_traversal);
	tcase_add_test(tc, test_api_robust_wrong_methods);
	tcase_add_test(tc, test_api_robust_restart_restores_state);
	tcase_add_test(tc, test_api_robust_corrupt_state_refused);
	suite_add_tcase(s, own);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(robust_suite());
	int failed;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	curl_global_cleanup();
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
