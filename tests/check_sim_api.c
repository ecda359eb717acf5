/*
 * End-to-end tests of the broker actions the HTTP API queues for the
 * plugin: a propagation model change, the disconnect of a deactivated
 * certificate's connections, and a data-plane publish. Requests are signed
 * with libcurl's SigV4 signer and the simulator's generated credentials,
 * against mosquitto with the plugin as `sim_start` runs it.
 */
#include <check.h>
#include <curl/curl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "simulator/state.h"
#include "tests/support/sim_fixture.h"

#define SECOND 1000000000LL

static tsim fx;
static tsim_device dev_pub, dev_sub, dev_off, dev_swap;

static const char *const policy_full =
	"{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"iot:*\","
	"\"Resource\":\"*\"}]}";

/* Before the rule runs: publish the request, receive the response. */
static const char *const policy_swap_before =
	"{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":"
	"[\"iot:Connect\",\"iot:Publish\",\"iot:Subscribe\",\"iot:Receive\"],\"Resource\":\"*\"}]}";

static const char *const policy_no_receive =
	"{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":"
	"[\"iot:Connect\",\"iot:Subscribe\"],\"Resource\":\"*\"}]}";

static void setup(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	tsim_init(&fx);
	tsim_device_create(&fx, "pub", &dev_pub);
	tsim_device_create(&fx, "sub", &dev_sub);
	tsim_device_create(&fx, "off", &dev_off);
	tsim_policy_put(&fx, "full", policy_full);
	tsim_policy_put(&fx, "narrow", policy_no_receive);
	tsim_attach(&fx, "full", &dev_pub);
	tsim_attach(&fx, "narrow", &dev_sub);
	tsim_attach(&fx, "full", &dev_off);
	tsim_device_create(&fx, "swap", &dev_swap);
	tsim_policy_put(&fx, "swap-before", policy_swap_before);
	tsim_policy_put(&fx, "swap-after", policy_full);
	tsim_attach(&fx, "swap-before", &dev_swap);
	tsim_option(&fx, "rule_topic", "swap/req");
	tsim_option(&fx, "rule_attach", "swap-after");
	tsim_option(&fx, "rule_detach", "swap-before");
	tsim_option(&fx, "rule_response_topic", "swap/res/${clientid}");
	fx.options.propagation = "ttl:60s";
	tsim_option(&fx, "connect_rate_per_client", "off");
	tsim_start(&fx);
}

static void teardown(void)
{
	tsim_cleanup(&fx);
	curl_global_cleanup();
}

/* Sends one SigV4-signed request; returns the HTTP status. */
static long request(const char *method, const char *path, const char *service, const char *body)
{
	return tsim_api_request(&fx, method, path, service, body);
}

static tmqtt *connect_ok(const tsim_device *d, const char *client_id)
{
	tmqtt_options o = tsim_client_options(&fx, d, client_id, 5);
	tmqtt *c = NULL;
	int code;

	ck_assert_str_eq(tmqtt_outcome_name(tmqtt_connect(&c, &o, &code)), "ok");
	return c;
}

START_TEST(test_sim_api_propagation_change)
{
	tmqtt *pub = connect_ok(&dev_pub, "api-pub");
	tmqtt *sub = connect_ok(&dev_sub, "api-sub");
	int code;
	char doc[512];

	ck_assert_str_eq(tmqtt_outcome_name(tmqtt_subscribe(sub, "a/#", 1, &code)), "ok");
	ck_assert_str_eq(tmqtt_outcome_name(tmqtt_subscribe(pub, "a/#", 1, &code)), "ok");
	/* Grant iot:Receive through the control plane; with ttl:60s the
	 * established subscriber keeps its snapshot. */
	snprintf(doc, sizeof(doc), "{\"policyDocument\":\"%s\"}",
		 "{\\\"Version\\\":\\\"2012-10-17\\\",\\\"Statement\\\":[{\\\"Effect\\\":"
		 "\\\"Allow\\\",\\\"Action\\\":\\\"iot:*\\\",\\\"Resource\\\":\\\"*\\\"}]}");
	ck_assert_int_eq(request("POST", "/policies/narrow/version?setAsDefault=true", "iot", doc),
			 200);
	ck_assert_str_eq(tmqtt_outcome_name(tmqtt_publish(pub, "a/1", "x", 1, 0, &code)), "ok");
	ck_assert_int_eq(tmqtt_wait_message(pub, "a/1", 2 * SECOND), 1);
	ck_assert_int_eq(tmqtt_message_count(sub, "a/1"), 0);
	/* Switching to immediate applies the grant at the next check. */
	ck_assert_int_eq(request("PUT", "/_sim/propagation", "iot",
				 "{\"propagation\":\"immediate\"}"),
			 200);
	/* The change reaches the broker on one of its next ticks. */
	for (int i = 0; i < 20 && tmqtt_message_count(sub, "a/2") == 0; i++) {
		ck_assert_str_eq(tmqtt_outcome_name(tmqtt_publish(pub, "a/2", "x", 1, 0, &code)),
				 "ok");
		tmqtt_wait_message(sub, "a/2", SECOND / 2);
	}
	ck_assert_int_eq(tmqtt_message_count(sub, "a/2") > 0, 1);
	tmqtt_free(sub);
	tmqtt_free(pub);
}
END_TEST

START_TEST(test_sim_api_inactive_cert_disconnected)
{
	tmqtt *c = connect_ok(&dev_off, "api-off");
	tmqtt *again = NULL;
	tmqtt_options o;
	char path[256];
	int code;

	snprintf(path, sizeof(path), "/certificates/%s?newStatus=INACTIVE", dev_off.cert_id);
	ck_assert_int_eq(request("PUT", path, "iot", NULL), 200);
	ck_assert_int_eq(tmqtt_wait_closed(c, 3 * SECOND), 1);
	o = tsim_client_options(&fx, &dev_off, "api-off-2", 5);
	ck_assert_str_eq(tmqtt_outcome_name(tmqtt_connect(&again, &o, &code)), "closed");
	tmqtt_free(again);
	tmqtt_free(c);
}
END_TEST

START_TEST(test_sim_api_data_plane_publish)
{
	tmqtt *sub = connect_ok(&dev_pub, "api-listener");
	int code;

	ck_assert_str_eq(tmqtt_outcome_name(tmqtt_subscribe(sub, "d/#", 1, &code)), "ok");
	ck_assert_int_eq(request("POST", "/topics/d/hello?qos=1", "iotdata", "{\"hi\":1}"), 200);
	ck_assert_int_eq(tmqtt_wait_message(sub, "d/hello", 2 * SECOND), 1);
	tmqtt_free(sub);
}
END_TEST

/* The certificate's policies in the saved state (state file and journal), comma-separated. */
static void saved_cert_policies(const char *cert_id, char *out, size_t len)
{
	char path[PATH_MAX + 16];
	sim_state_config cfg = { .path = path };
	sim_state *s;
	sim_cert *c;
	pl_errmsg e;

	snprintf(path, sizeof(path), "%s/state.json", fx.dir);
	ck_assert_int_eq(sim_state_create(&s, &cfg, &e), PL_OK);
	sim_state_lock(s);
	ck_assert_msg(sim_state_load(s, &e) == PL_OK, "%s", e.msg);
	c = sim_state_cert_find(s, cert_id);
	ck_assert_ptr_nonnull(c);
	out[0] = '\0';
	for (size_t i = 0; i < c->policies.count; i++)
		snprintf(out + strlen(out), len - strlen(out), "%s%s", i > 0 ? "," : "",
			 c->policies.names[i]);
	sim_state_unlock(s);
	sim_state_free(s);
}

START_TEST(test_sim_api_topic_rule_swaps)
{
	char policies[256];
	tmqtt *c = connect_ok(&dev_swap, "swapper");
	int code;

	ck_assert_str_eq(tmqtt_outcome_name(tmqtt_subscribe(c, "swap/res/#", 1, &code)), "ok");
	ck_assert_str_eq(tmqtt_outcome_name(tmqtt_publish(c, "swap/req", "{}", 1, 0, &code)), "ok");
	ck_assert_int_eq(tmqtt_wait_message(c, "swap/res/swapper", 2 * SECOND), 1);
	/* The rule saved the swap: the certificate now has swap-after only. */
	saved_cert_policies(dev_swap.cert_id, policies, sizeof(policies));
	ck_assert_str_eq(policies, "swap-after");
	tmqtt_free(c);
}
END_TEST

START_TEST(test_sim_api_delete_connection_sends_will)
{
	tmqtt *listener = connect_ok(&dev_pub, "will-listener");
	tmqtt_options o = tsim_client_options(&fx, &dev_pub, "will-owner", 5);
	tmqtt *owner = NULL;
	int code;

	o.will_topic = "will/owner";
	o.will_payload = "gone";
	ck_assert_str_eq(tmqtt_outcome_name(tmqtt_connect(&owner, &o, &code)), "ok");
	ck_assert_str_eq(tmqtt_outcome_name(tmqtt_subscribe(listener, "will/#", 1, &code)), "ok");
	/* DeleteConnection sends the will unless preventWillMessage=true, and
	 * the will needs iot:Publish on its topic, which the plugin checks
	 * after the connection is gone. */
	ck_assert_int_eq(request("DELETE", "/connections/will-owner", "iotdata", NULL), 200);
	ck_assert_int_eq(tmqtt_wait_closed(owner, 3 * SECOND), 1);
	ck_assert_int_eq(tmqtt_wait_message(listener, "will/owner", 3 * SECOND), 1);
	tmqtt_free(owner);
	tmqtt_free(listener);
}
END_TEST

static Suite *sim_api_suite(void)
{
	Suite *s = suite_create("sim_api");
	TCase *tc = tcase_create("actions");

	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_sim_api_propagation_change);
	tcase_add_test(tc, test_sim_api_inactive_cert_disconnected);
	tcase_add_test(tc, test_sim_api_data_plane_publish);
	tcase_add_test(tc, test_sim_api_topic_rule_swaps);
	tcase_add_test(tc, test_sim_api_delete_connection_sends_will);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(sim_api_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
