/*
 * The API inside the real plugin in a real mosquitto, with TLS and paho
 * clients. A policy swap through the API reaches a new connection at once
 * and an old one only at its snapshot refresh (recorded in the ground
 * truth). UpdateCertificate and DeleteConnection drop clients, the topic
 * rule reproduces the background experiment, and the running broker trusts
 * a certificate registered without a CA.
 */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <time.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "common/clock.h"
#include "tests/check_api_fixture.h"
#include "tests/support/sim_fixture.h"

#define SECOND INT64_C(1000000000)
#define ARN "arn:aws:iot:us-east-1:123456789012:"

static tsim ts;
static tsim_device dev;

/* Connect, subscribe to hoge/res, publish to hoge/req; no receive. */
#define STATEMENTS_A                                                                       \
	"{\"Effect\":\"Allow\",\"Action\":\"iot:Connect\",\"Resource\":\"*\"},"              \
	"{\"Effect\":\"Allow\",\"Action\":\"iot:Subscribe\",\"Resource\":\"" ARN             \
	"topicfilter/hoge/res\"},"                                                         \
	"{\"Effect\":\"Allow\",\"Action\":\"iot:Publish\",\"Resource\":\"" ARN "topic/hoge/req\"}"
static const char *const policy_a =
	"{\"Version\":\"2012-10-17\",\"Statement\":[" STATEMENTS_A "]}";
/* A plus receive on hoge/res. */
static const char *const policy_b =
	"{\"Version\":\"2012-10-17\",\"Statement\":[" STATEMENTS_A ",{\"Effect\":\"Allow\","
	"\"Action\":\"iot:Receive\",\"Resource\":\"" ARN "topic/hoge/res\"}]}";

/* Starts the simulator with dev holding policy A; extra is a NULL-ended key/value list. */
static void start_sim(const char *const *extra)
{
	char creds[PATH_MAX + 16];
	pl_errmsg e;

	tsim_init(&ts);
	ts.options.propagation = "ttl:1h";
	tsim_device_create(&ts, "dev", &dev);
	tsim_policy_put(&ts, "A", policy_a);
	tsim_policy_put(&ts, "B", policy_b);
	tsim_attach(&ts, "A", &dev);
	for (size_t i = 0; extra != NULL && extra[i] != NULL; i += 2)
		tsim_option(&ts, extra[i], extra[i + 1]);
	tsim_option(&ts, "api_cert_disconnect_delay", "0");
	tsim_option(&ts, "api_throttle", "off");
	tsim_start(&ts);
	fx.port = (uint16_t)sim_api_port(ts.sim);
	snprintf(creds, sizeof(creds), "%s/credentials", ts.dir);
	ck_assert_int_eq(sim_api_creds_load(creds, &fx.creds, &e), PL_OK);
}

static void setup(void)
{
	start_sim(NULL);
}

static void teardown(void)
{
	tsim_cleanup(&ts);
}

static tmqtt *connect_subscribed(const char *client_id)
{
	tmqtt_options o = tsim_client_options(&ts, &dev, client_id, 4);
	tmqtt *c = NULL;
	int code;

	ck_assert_int_eq(tmqtt_connect(&c, &o, &code), TMQTT_OK);
	ck_assert_int_eq(tmqtt_subscribe(c, "hoge/res", 1, &code), TMQTT_OK);
	return c;
}

static void api_publish_res(void)
{
	reply r;

	ck_assert_int_eq(call_full("POST", "/topics/hoge%2Fres?qos=1", "ping", 4, "iotdata", NULL,
				   NULL, &r),
			 200);
	reply_free(&r);
}

static void swap_a_to_b(void)
{
	char body[256];

	snprintf(body, sizeof(body), "{\"target\":\"%s\"}", dev.cert_arn);
	ck_assert_int_eq(call_status("PUT", "/target-policies/B", body), 200);
	ck_assert_int_eq(call_status("POST", "/target-policies/A", body), 200);
}

/* Publishes through the API every 200 ms until c receives, up to limit_ns. */
static int receives_within(tmqtt *c, int64_t limit_ns)
{
	int64_t end = pl_mono_ns() + limit_ns;

	while (pl_mono_ns() < end) {
		api_publish_res();
		if (tmqtt_wait_message(c, "hoge/res", 200 * PL_NS_PER_MS))
			return 1;
	}
	return 0;
}

START_TEST(test_api_sim_swap_new_connection_sees_it)
{
	tmqtt *old = connect_subscribed("old"), *fresh;

	swap_a_to_b();
	fresh = connect_subscribed("fresh");
	api_publish_res();
	ck_assert_int_eq(tmqtt_wait_message(fresh, "hoge/res", 5 * SECOND), 1);
	/* The old connection keeps its snapshot (ttl 1 h): the same message is not delivered. */
	ck_assert_int_eq(tmqtt_wait_message(old, "hoge/res", SECOND), 0);
	tmqtt_free(fresh);
	tmqtt_free(old);
}
END_TEST

START_TEST(test_api_sim_swap_reaches_old_at_refresh)
{
	tmqtt *old = connect_subscribed("old");
	reply r;
	json_t *j, *rec;
	size_t i;
	int changed_to_b = 0;

	swap_a_to_b();
	ck_assert_int_eq(call_status("PUT", "/_sim/propagation", "{\"propagation\":\"ttl:1s\"}"),
			 200);
	ck_assert_int_eq(receives_within(old, 20 * SECOND), 1);
	ck_assert_int_eq(call("GET", "/_sim/ground-truth?clientId=old", NULL, &r), 200);
	j = json_loads(r.body, 0, NULL);
	ck_assert_ptr_nonnull(j);
	json_array_foreach(json_object_get(j, "refreshes"), i, rec) {
		json_t *pol = json_array_get(json_object_get(rec, "policies"), 0);
		if (json_is_true(json_object_get(rec, "changed")) && pol != NULL &&
		    strcmp(json_string_value(json_object_get(pol, "name")), "B") == 0)
			changed_to_b = 1;
	}
	ck_assert_int_eq(changed_to_b, 1);
	json_decref(j);
	reply_free(&r);
	tmqtt_free(old);
}
END_TEST

START_TEST(test_api_sim_update_certificate_disconnects)
{
	tmqtt *c = connect_subscribed("c1"), *again = NULL;
	tmqtt_options o = tsim_client_options(&ts, &dev, "c2", 4);
	char path[128];
	int code;

	snprintf(path, sizeof(path), "/certificates/%s?newStatus=INACTIVE", dev.cert_id);
	ck_assert_int_eq(call_status("PUT", path, NULL), 200);
	ck_assert_int_eq(tmqtt_wait_closed(c, 10 * SECOND), 1);
	ck_assert_int_ne(tmqtt_connect(&again, &o, &code), TMQTT_OK);
	tmqtt_free(again);
	tmqtt_free(c);
}
END_TEST

START_TEST(test_api_sim_delete_connection)
{
	tmqtt *c = connect_subscribed("victim"), *other = connect_subscribed("bystander");
	reply r;

	ck_assert_int_eq(call_full("DELETE", "/connections/victim", NULL, 0, "iotdata", NULL, NULL,
				   &r),
			 200);
	reply_free(&r);
	ck_assert_int_eq(tmqtt_wait_closed(c, 10 * SECOND), 1);
	ck_assert_int_eq(tmqtt_connected(other), 1);
	tmqtt_free(other);
	tmqtt_free(c);
}
END_TEST

/* AWS returns 404 for DeleteConnection of a client id that is not connected. */
START_TEST(test_api_sim_delete_connection_unknown)
{
	tmqtt *c = connect_subscribed("present");
	reply r;

	ck_assert_int_eq(call_full("DELETE", "/connections/absent", NULL, 0, "iotdata", NULL, NULL,
				   &r),
			 404);
	ck_assert_str_eq(r.error_type, "ResourceNotFoundException");
	reply_free(&r);
	ck_assert_int_eq(tmqtt_connected(c), 1);
	tmqtt_free(c);
	/* Once the broker has handled the DISCONNECT, the id is unknown again.
	 * The client may return before the broker has read the packet, so the
	 * call is retried for a while. */
	for (int i = 0; i < 50; i++) {
		struct timespec pause = { 0, 100000000L };
		ck_assert_int_ne(call_full("DELETE", "/connections/present", NULL, 0, "iotdata",
					   NULL, NULL, &r),
				 0);
		if (r.status == 404)
			break;
		reply_free(&r);
		nanosleep(&pause, NULL);
	}
	ck_assert_int_eq(r.status, 404);
	ck_assert_str_eq(r.error_type, "ResourceNotFoundException");
	reply_free(&r);
}
END_TEST

START_TEST(test_api_sim_disconnect_hook)
{
	const char *body = "{\"clientId\":\"maintained\"}";
	tmqtt *c = connect_subscribed("maintained");
	reply r;

	ck_assert_int_eq(call_full("POST", "/_sim/disconnect", body, strlen(body), "iot", NULL,
				   NULL, &r),
			 200);
	reply_free(&r);
	ck_assert_int_eq(tmqtt_wait_closed(c, 10 * SECOND), 1);
	tmqtt_free(c);
	ck_assert_int_eq(call_full("POST", "/_sim/disconnect", body, strlen(body), "iot", NULL,
				   NULL, &r),
			 404);
	ck_assert_str_eq(r.error_type, "ResourceNotFoundException");
	reply_free(&r);
}
END_TEST

START_TEST(test_api_sim_rule_reproduces_experiment)
{
	static const char *const rule[] = {"rule_topic", "hoge/req", "rule_attach", "B",
					   "rule_detach", "A", "rule_response_topic", "hoge/res",
					   NULL};
	tmqtt *keep, *fresh;
	reply r;
	int code;

	tsim_cleanup(&ts);
	start_sim(rule);
	keep = connect_subscribed("keep");
	ck_assert_int_eq(tmqtt_publish(keep, "hoge/req", "{}", 1, 0, &code), TMQTT_OK);
	/* The keeping client's snapshot still has A: the rule's response is not delivered. */
	ck_assert_int_eq(tmqtt_wait_message(keep, "hoge/res", SECOND), 0);
	ck_assert_int_eq(call("POST", "/policy-targets/B", NULL, &r), 200);
	ck_assert_ptr_nonnull(strstr(r.body, dev.cert_id));
	reply_free(&r);
	fresh = connect_subscribed("fresh");
	ck_assert_int_eq(tmqtt_publish(keep, "hoge/req", "{}", 1, 0, &code), TMQTT_OK);
	ck_assert_int_eq(tmqtt_wait_message(fresh, "hoge/res", 5 * SECOND), 1);
	tmqtt_free(fresh);
	tmqtt_free(keep);
}
END_TEST

/* Writes a self-signed EC certificate (no extensions) and its key into the state dir. */
static void self_signed(const char *cert_path, const char *key_path, char **pem)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();
	FILE *f;
	int fd;
	BIO *mem = BIO_new(BIO_s_mem());
	char *data;
	long len;

	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"own-device",
				   -1, -1, 0);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 4242);
	X509_set_subject_name(x, name);
	X509_set_issuer_name(x, name);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, key);
	ck_assert_int_gt(X509_sign(x, key, EVP_sha256()), 0);
	fd = open(key_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	f = fdopen(fd, "w");
	ck_assert_int_eq(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL), 1);
	fclose(f);
	f = fopen(cert_path, "w");
	ck_assert_int_eq(PEM_write_X509(f, x), 1);
	fclose(f);
	PEM_write_bio_X509(mem, x);
	len = BIO_get_mem_data(mem, &data);
	*pem = strndup(data, (size_t)len);
	BIO_free(mem);
	X509_NAME_free(name);
	X509_free(x);
	EVP_PKEY_free(key);
}

START_TEST(test_api_sim_registered_certificate_trusted)
{
	tsim_device own = dev;
	tmqtt_options o;
	tmqtt *c = NULL;
	char *pem, *body;
	json_t *req, *j;
	reply r;
	int code;

	snprintf(own.cert_path, sizeof(own.cert_path), "%s/own.pem", ts.dir);
	snprintf(own.key_path, sizeof(own.key_path), "%s/own.key", ts.dir);
	self_signed(own.cert_path, own.key_path, &pem);
	o = tsim_client_options(&ts, &own, "own", 4);
	/* Before registration the broker does not trust the certificate. */
	ck_assert_int_ne(tmqtt_connect(&c, &o, &code), TMQTT_OK);
	tmqtt_free(c);
	c = NULL;
	req = json_pack("{s:s,s:s}", "certificatePem", pem, "status", "ACTIVE");
	body = json_dumps(req, 0);
	ck_assert_int_eq(call("POST", "/certificate/register-no-ca", body, &r), 200);
	j = json_loads(r.body, 0, NULL);
	snprintf(own.cert_arn, sizeof(own.cert_arn), "{\"target\":\"%s\"}",
		 json_string_value(json_object_get(j, "certificateArn")));
	json_decref(j);
	reply_free(&r);
	ck_assert_int_eq(call_status("PUT", "/target-policies/B", own.cert_arn), 200);
	/* Same broker process: the capath lookup finds the new file. */
	ck_assert_int_eq(tmqtt_connect(&c, &o, &code), TMQTT_OK);
	tmqtt_free(c);
	free(body);
	json_decref(req);
	free(pem);
}
END_TEST

/* Makes thing "dev" with dev's certificate as principal, in group "fleet". */
static void make_thing_in_group(void)
{
	char header[512];
	reply r;

	ck_assert_int_eq(call_status("POST", "/things/dev", NULL), 200);
	snprintf(header, sizeof(header), "x-amzn-principal: %s", dev.cert_arn);
	ck_assert_int_eq(call_full("PUT", "/things/dev/principals", "", 0, "iot", NULL, header, &r),
			 200);
	reply_free(&r);
	ck_assert_int_eq(call_status("POST", "/thing-groups/fleet", NULL), 200);
	ck_assert_int_eq(call_status("PUT", "/thing-groups/addThingToThingGroup",
				     "{\"thingGroupName\":\"fleet\",\"thingName\":\"dev\"}"),
			 200);
}

START_TEST(test_api_sim_thing_group_policy)
{
	tmqtt *thing, *other;

	make_thing_in_group();
	ck_assert_int_eq(call_status("PUT", "/target-policies/B",
				     "{\"target\":\"" ARN "thinggroup/fleet\"}"),
			 200);
	/* AWS applies a thing group's policies only when the client id is the thing's name. */
	thing = connect_subscribed("dev");
	other = connect_subscribed("other");
	api_publish_res();
	ck_assert_int_eq(tmqtt_wait_message(thing, "hoge/res", 5 * SECOND), 1);
	ck_assert_int_eq(tmqtt_wait_message(other, "hoge/res", SECOND), 0);
	tmqtt_free(other);
	tmqtt_free(thing);
}
END_TEST

/* Subscribe and receive on hoge/<thing name> only. */
#define DOC_THING_TOPIC                                                                    \
	"{\"policyDocument\":\"{\\\"Version\\\":\\\"2012-10-17\\\",\\\"Statement\\\":["        \
	"{\\\"Effect\\\":\\\"Allow\\\",\\\"Action\\\":\\\"iot:Subscribe\\\",\\\"Resource\\\":" \
	"\\\"" ARN "topicfilter/hoge/${iot:Connection.Thing.ThingName}\\\"},"                     \
	"{\\\"Effect\\\":\\\"Allow\\\",\\\"Action\\\":\\\"iot:Receive\\\",\\\"Resource\\\":"   \
	"\\\"" ARN "topic/hoge/${iot:Connection.Thing.ThingName}\\\"}]}\"}"

START_TEST(test_api_sim_thing_name_variable)
{
	tmqtt_options o = tsim_client_options(&ts, &dev, "other", 4);
	tmqtt *thing, *other = NULL;
	char body[256];
	int code = -1;
	tmqtt_outcome outcome;
	reply r;

	make_thing_in_group();
	ck_assert_int_eq(call_status("POST", "/policies/C", DOC_THING_TOPIC), 200);
	snprintf(body, sizeof(body), "{\"target\":\"%s\"}", dev.cert_arn);
	ck_assert_int_eq(call_status("PUT", "/target-policies/C", body), 200);
	thing = connect_subscribed("dev");
	ck_assert_int_eq(tmqtt_subscribe(thing, "hoge/dev", 1, &code), TMQTT_OK);
	ck_assert_int_eq(code, 1);
	/* A client id that is not the thing's name resolves no thing variable. */
	ck_assert_int_eq(tmqtt_connect(&other, &o, &code), TMQTT_OK);
	outcome = tmqtt_subscribe(other, "hoge/dev", 1, &code);
	ck_assert(outcome != TMQTT_OK || code == 0x80);
	ck_assert_int_eq(call_full("POST", "/topics/hoge%2Fdev", "x", 1, "iotdata", NULL, NULL, &r),
			 200);
	reply_free(&r);
	ck_assert_int_eq(tmqtt_wait_message(thing, "hoge/dev", 5 * SECOND), 1);
	tmqtt_free(other);
	tmqtt_free(thing);
}
END_TEST

#define BURST 80
#define KILL_AFTER 25

static atomic_int acked_count;
static atomic_int burst_done;

static void *kill_broker(void *arg)
{
	(void)arg;
	while (atomic_load(&acked_count) < KILL_AFTER && !atomic_load(&burst_done))
		usleep(1000);
	kill(sim_pid(ts.sim), SIGKILL);
	return NULL;
}

START_TEST(test_api_sim_kill9_broker_keeps_acknowledged)
{
	int acked[BURST] = {0};
	char path[64];
	pl_errmsg e;
	pthread_t t;
	reply r;

	atomic_store(&acked_count, 0);
	atomic_store(&burst_done, 0);
	ck_assert_int_eq(pthread_create(&t, NULL, kill_broker, NULL), 0);
	for (int i = 0; i < BURST; i++) {
		snprintf(path, sizeof(path), "/policies/burst%d", i);
		if (call_status("POST", path, DOC_ALLOW("iot:Connect")) == 200) {
			acked[i] = 1;
			atomic_fetch_add(&acked_count, 1);
		}
	}
	atomic_store(&burst_done, 1);
	pthread_join(t, NULL);
	ck_assert_int_ge(atomic_load(&acked_count), KILL_AFTER);
	ck_assert_int_lt(atomic_load(&acked_count), BURST);
	sim_free(ts.sim);
	ts.sim = NULL;
	ck_assert_msg(sim_start(&ts.sim, &ts.options, &e) == PL_OK, "%s", e.msg);
	fx.port = (uint16_t)sim_api_port(ts.sim);
	for (int i = 0; i < BURST; i++) {
		snprintf(path, sizeof(path), "/policies/burst%d", i);
		if (!acked[i])
			continue;
		ck_assert_msg(call("GET", path, NULL, &r) == 200, "%s lost: %ld %s", path, r.status,
			      r.body ? r.body : "");
		reply_free(&r);
	}
}
END_TEST

/* Counts occurrences of needle in a file of the state directory. */
static int file_contains(const char *dir, const char *file, const char *needle)
{
	char path[PATH_MAX + 64], line[4096];
	FILE *f;
	int found = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	f = fopen(path, "r");
	while (f != NULL && fgets(line, sizeof(line), f) != NULL)
		found += strstr(line, needle) != NULL;
	if (f != NULL)
		fclose(f);
	return found;
}

START_TEST(test_api_sim_corrupt_state_stops_start)
{
	char path[PATH_MAX + 16];
	sim *second = NULL;
	struct stat st;
	pl_errmsg e;
	FILE *f;

	ck_assert_int_eq(call_status("POST", "/policies/keep", DOC_ALLOW("iot:Connect")), 200);
	sim_free(ts.sim);
	ts.sim = NULL;
	/* Truncate the file the way a crash in a non-atomic writer would. */
	snprintf(path, sizeof(path), "%s/state.json", ts.dir);
	f = fopen(path, "r+");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(ftruncate(fileno(f), 40), 0);
	fclose(f);
	ck_assert_int_ne(sim_start(&second, &ts.options, &e), PL_OK);
	sim_free(second);
	ck_assert_int_ge(file_contains(ts.dir, "mosquitto.log", path), 1);
	/* The file is left for the operator as it was, never replaced. */
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_size, 40);
}
END_TEST

/* A broker killed by a signal is reported with the signal, not as an exit status. */
START_TEST(test_api_sim_killed_broker_names_signal)
{
	pl_errmsg e = { "" };

	ck_assert_int_eq(kill(sim_pid(ts.sim), SIGKILL), 0);
	for (int i = 0; i < 500 && sim_running(ts.sim); i++)
		usleep(10000);
	ck_assert(!sim_running(ts.sim));
	ck_assert_int_ne(sim_stop(ts.sim, &e), PL_OK);
	ck_assert_msg(strstr(e.msg, "killed by signal 9") != NULL, "%s", e.msg);
}
END_TEST

static Suite *api_sim_suite(void)
{
	Suite *s = suite_create("api_sim");
	TCase *tc = tcase_create("broker");

	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_api_sim_swap_new_connection_sees_it);
	tcase_add_test(tc, test_api_sim_swap_reaches_old_at_refresh);
	tcase_add_test(tc, test_api_sim_update_certificate_disconnects);
	tcase_add_test(tc, test_api_sim_delete_connection);
	tcase_add_test(tc, test_api_sim_delete_connection_unknown);
	tcase_add_test(tc, test_api_sim_disconnect_hook);
	tcase_add_test(tc, test_api_sim_rule_reproduces_experiment);
	tcase_add_test(tc, test_api_sim_registered_certificate_trusted);
	tcase_add_test(tc, test_api_sim_thing_group_policy);
	tcase_add_test(tc, test_api_sim_thing_name_variable);
	tcase_add_test(tc, test_api_sim_kill9_broker_keeps_acknowledged);
	tcase_add_test(tc, test_api_sim_corrupt_state_stops_start);
	tcase_add_test(tc, test_api_sim_killed_broker_names_signal);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(api_sim_suite());
	int failed;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	curl_global_cleanup();
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
