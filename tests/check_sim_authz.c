/*
 * Integration tests of the simulator's authorization: a real mosquitto with
 * the plugin, real TLS and paho clients. Each action is tried allowed and
 * denied under MQTT 3.1.1 and 5, and the reaction must be AWS IoT Core's:
 *   CONNECT denied    3.1.1: closed without CONNACK; 5: CONNACK 0x87
 *   unknown or inactive certificate: no CONNACK (AWS fails the TLS handshake)
 *   PUBLISH denied    3.1.1: connection closed; 5: PUBACK 0x87 (QoS 1),
 *                     dropped with the connection kept (QoS 0)
 *   SUBSCRIBE denied  3.1.1: connection closed; 5: SUBACK 0x87
 *   delivery denied   message not delivered, connection kept
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "simulator/certs.h"
#include "tests/support/sim_fixture.h"

#define SECOND 1000000000LL

static tsim fx;
static tsim_device dev_full, dev_limited, dev_none, dev_inactive, dev_unknown;

/* Everything for client ids full-*. */
static const char *const policy_full =
	"{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"iot:*\","
	"\"Resource\":\"*\"}]}";

/* Connect as lim-*, publish, subscribe and receive under ok/, retain nothing. */
static const char *const policy_limited =
	"{\"Version\":\"2012-10-17\",\"Statement\":["
	"{\"Effect\":\"Allow\",\"Action\":\"iot:Connect\","
	"\"Resource\":\"arn:aws:iot:us-east-1:123456789012:client/lim-*\"},"
	"{\"Effect\":\"Allow\",\"Action\":\"iot:Publish\","
	"\"Resource\":\"arn:aws:iot:us-east-1:123456789012:topic/ok/*\"},"
	"{\"Effect\":\"Allow\",\"Action\":\"iot:Subscribe\","
	"\"Resource\":\"arn:aws:iot:us-east-1:123456789012:topicfilter/ok/*\"},"
	"{\"Effect\":\"Allow\",\"Action\":\"iot:Receive\","
	"\"Resource\":\"arn:aws:iot:us-east-1:123456789012:topic/ok/*\"},"
	"{\"Effect\":\"Deny\",\"Action\":\"iot:Receive\","
	"\"Resource\":\"arn:aws:iot:us-east-1:123456789012:topic/ok/secret\"}]}";

static int alternative_reactions;

static void setup(void)
{
	char ca[PATH_MAX + 16], key[PATH_MAX + 16];
	pl_errmsg e;
	sim_ca *ca_handle;
	char *cert, *pkey;

	tsim_init(&fx);
	tsim_device_create(&fx, "full", &dev_full);
	tsim_device_create(&fx, "limited", &dev_limited);
	tsim_device_create(&fx, "none", &dev_none);
	tsim_device_create(&fx, "inactive", &dev_inactive);
	tsim_policy_put(&fx, "full", policy_full);
	tsim_policy_put(&fx, "limited", policy_limited);
	tsim_attach(&fx, "full", &dev_full);
	tsim_attach(&fx, "limited", &dev_limited);
	tsim_attach(&fx, "full", &dev_inactive);
	tsim_cert_status(&fx, &dev_inactive, "INACTIVE");

	/* Signed by the simulator CA but never registered. */
	snprintf(ca, sizeof(ca), "%s/ca.pem", fx.dir);
	snprintf(key, sizeof(key), "%s/ca.key", fx.dir);
	ck_assert_int_eq(sim_ca_load(&ca_handle, ca, key, &e), PL_OK);
	ck_assert_int_eq(sim_certs_create_keys_and_cert(ca_handle, "unknown", 30, &cert, &pkey,
							NULL, &e), PL_OK);
	sim_ca_free(ca_handle);
	snprintf(dev_unknown.cert_path, sizeof(dev_unknown.cert_path), "%s/unknown.pem", fx.dir);
	snprintf(dev_unknown.key_path, sizeof(dev_unknown.key_path), "%s/unknown.key", fx.dir);
	ck_assert_int_eq(sim_certs_write_file(dev_unknown.cert_path, cert, 0644, &e), PL_OK);
	ck_assert_int_eq(sim_certs_write_file(dev_unknown.key_path, pkey, 0600, &e), PL_OK);
	free(cert);
	free(pkey);

	/* The per-client-id connect quota is tested in check_sim_quota. */
	tsim_option(&fx, "connect_rate_per_client", "off");
	if (alternative_reactions) {
		tsim_option(&fx, "mqtt311_subscribe_denied", "suback_failure");
		tsim_option(&fx, "mqtt5_publish_qos0_denied", "disconnect");
	}
	tsim_start(&fx);
}

static void teardown(void)
{
	tsim_cleanup(&fx);
}

static tmqtt *connect_ok(const tsim_device *d, const char *client_id, int version)
{
	tmqtt_options o = tsim_client_options(&fx, d, client_id, version);
	tmqtt *c = NULL;
	int code;

	ck_assert_str_eq(tmqtt_outcome_name(tmqtt_connect(&c, &o, &code)), "ok");
	return c;
}

static void expect_connect(const tsim_device *d, const char *client_id, int version,
			   const char *outcome, int code_expected)
{
	tmqtt_options o = tsim_client_options(&fx, d, client_id, version);
	tmqtt *c = NULL;
	int code;
	tmqtt_outcome out = tmqtt_connect(&c, &o, &code);

	ck_assert_str_eq(tmqtt_outcome_name(out), outcome);
	ck_assert_int_eq(code, code_expected);
	tmqtt_free(c);
}

START_TEST(test_sim_authz_connect_allowed)
{
	expect_connect(&dev_full, "full-1", 4, "ok", 0);
	expect_connect(&dev_full, "full-2", 5, "ok", 0);
	expect_connect(&dev_limited, "lim-1", 4, "ok", 0);
}
END_TEST

START_TEST(test_sim_authz_connect_denied_311)
{
	/* No CONNACK: the broker closes the connection after CONNECT. */
	expect_connect(&dev_limited, "other-1", 4, "closed", -1);
	expect_connect(&dev_none, "none-1", 4, "closed", -1);
}
END_TEST

START_TEST(test_sim_authz_connect_denied_5)
{
	expect_connect(&dev_limited, "other-2", 5, "refused", 0x87);
	expect_connect(&dev_none, "none-2", 5, "refused", 0x87);
}
END_TEST

START_TEST(test_sim_authz_unknown_cert)
{
	expect_connect(&dev_unknown, "full-u1", 4, "closed", -1);
	expect_connect(&dev_unknown, "full-u2", 5, "closed", -1);
}
END_TEST

START_TEST(test_sim_authz_inactive_cert)
{
	expect_connect(&dev_inactive, "full-i1", 4, "closed", -1);
	expect_connect(&dev_inactive, "full-i2", 5, "closed", -1);
}
END_TEST

START_TEST(test_sim_authz_publish_allowed)
{
	tmqtt *c = connect_ok(&dev_limited, "lim-pa", 5);
	int code;

	ck_assert_str_eq(tmqtt_outcome_name(tmqtt_publish(c, "ok/x", "p", 1, 0, &code)), "ok");
	ck_assert_int_lt(code, 0x80);
	tmqtt_free(c);
}
END_TEST

START_TEST(test_sim_authz_publish_denied_311_qos0)
{
	tmqtt *c = connect_ok(&dev_limited, "lim-p0", 4);
	int code;

	ck_assert_str_eq(tmqtt_outcome_name(tmqtt_publish(c, "no/x", "p", 0, 0, &code)), "closed");
	tmqtt_free(c);
}
END_TEST

START_TEST(test_sim_authz_publish_denied_311_qos1)
{
	tmqtt *c = connect_ok(&dev_limited, "lim-p1", 4);
	int code;

	ck_assert_str_eq(tmqtt_outcome_name(tmqtt_publish(c, "no/x", "p", 1, 0, &code)), "closed");
	tmqtt_free(c);
}
END_TEST

START_TEST(test_sim_authz_publish_denied_5_qos1)
{
	tmqtt *c = connect_ok(&dev_limited, "lim-p51", 5);
	int code;

	ck_assert_str_eq(tmqtt_outcome_name(tmqtt_publish(c, "no/x", "p", 1, 0, &code)),
			 "refused");
	ck_assert_int_eq(code, 0x87);
	ck_assert_int_eq(tmqtt_connected(c), 1);
	tmqtt_free(c);
}
END_TEST

START_TEST(test_sim_authz_publish_denied_5_qos0)
{
	tmqtt *c = connect_ok(&dev_limited, "lim-p50", 5);
	int code;

	ck_assert_str_eq(tmqtt_outcome_name(tmqtt_publish(c, "no/x", "p", 0, 0, &code)), "ok");
	ck_assert_int_eq(tmqtt_connected(c), 1);
	tmqtt_free(c);
}
END_TEST

START_TEST(test_sim_authz_retain_needs_retain_publish)
{
	tmqtt *c = connect_ok(&dev_limited, "lim-r5", 5);
	int code;

	ck_assert_str_eq(tmqtt_outcome_name(tmqtt_publish(c, "ok/r", "p", 1, 1, &code)),
			 "refused");
	ck_assert_int_eq(code, 0x87);
	tmqtt_free(c);
}
END_TEST

START_TEST(test_sim_authz_subscribe_allowed)
{
	tmqtt *c = connect_ok(&dev_limited, "lim-sa", 4);
	int code;

	ck_assert_str_eq(tmqtt_outcome_name(tmqtt_subscribe(c, "ok/#", 1, &code)), "ok");
	ck_assert_int_eq(code, 1);
	tmqtt_free(c);
}
END_TEST

START_TEST(test_sim_authz_subscribe_denied_311)
{
	tmqtt *c = connect_ok(&dev_limited, "lim-s3", 4);
	int code;

	ck_assert_str_eq(tmqtt_outcome_name(tmqtt_subscribe(c, "no/#", 1, &code)), "closed");
	tmqtt_free(c);
}
END_TEST

START_TEST(test_sim_authz_subscribe_denied_5)
{
	tmqtt *c = connect_ok(&dev_limited, "lim-s5", 5);
	int code;

	ck_assert_str_eq(tmqtt_outcome_name(tmqtt_subscribe(c, "no/#", 1, &code)), "refused");
	ck_assert_int_eq(code, 0x87);
	ck_assert_int_eq(tmqtt_connected(c), 1);
	tmqtt_free(c);
}
END_TEST

START_TEST(test_sim_authz_receive_denied)
{
	tmqtt *sub = connect_ok(&dev_limited, "lim-rcv", 4);
	tmqtt *pub = connect_ok(&dev_full, "full-pub", 4);
	int code;

	ck_assert_str_eq(tmqtt_outcome_name(tmqtt_subscribe(sub, "ok/#", 1, &code)), "ok");
	ck_assert_str_eq(tmqtt_outcome_name(tmqtt_publish(pub, "ok/secret", "s", 1, 0, &code)),
			 "ok");
	ck_assert_str_eq(tmqtt_outcome_name(tmqtt_publish(pub, "ok/open", "o", 1, 0, &code)),
			 "ok");
	/* Deliveries keep their order, so once ok/open arrived ok/secret
	 * would have arrived before it. */
	ck_assert_int_eq(tmqtt_wait_message(sub, "ok/open", 3 * SECOND), 1);
	ck_assert_int_eq(tmqtt_message_count(sub, "ok/secret"), 0);
	ck_assert_int_eq(tmqtt_connected(sub), 1);
	tmqtt_free(pub);
	tmqtt_free(sub);
}
END_TEST

START_TEST(test_sim_authz_denials_logged)
{
	tmqtt *c = connect_ok(&dev_limited, "lim-log", 5);
	int code;

	tmqtt_publish(c, "no/logged", "p", 1, 0, &code);
	tmqtt_free(c);
	/* The plugin flushes its logs on every broker tick (at most 100 ms). */
	for (int i = 0; i < 20 && tsim_count_lines(&fx, "denials.jsonl", "no/logged") == 0; i++)
		pl_sleep_ns(100000000LL);
	ck_assert_int_eq(tsim_count_lines(&fx, "denials.jsonl", "\"topicName\":\"no/logged\""), 1);
	ck_assert_int_ge(tsim_count_lines(&fx, "denials.jsonl", "\"reason\":\"AUTHORIZATION_FAILURE\""), 1);
	ck_assert_int_ge(tsim_count_lines(&fx, "denials.jsonl", dev_limited.cert_id), 1);
}
END_TEST

/* The same broker with the alternative reactions AWS may use today. */
static void setup_alternative(void)
{
	alternative_reactions = 1;
	setup();
}

START_TEST(test_sim_authz_subscribe_suback_failure_311)
{
	tmqtt *c = connect_ok(&dev_limited, "lim-alt-s", 4);
	int code;

	ck_assert_str_eq(tmqtt_outcome_name(tmqtt_subscribe(c, "no/#", 1, &code)), "refused");
	ck_assert_int_eq(code, 0x80);
	ck_assert_int_eq(tmqtt_connected(c), 1);
	tmqtt_free(c);
}
END_TEST

START_TEST(test_sim_authz_publish_qos0_disconnect_5)
{
	tmqtt *c = connect_ok(&dev_limited, "lim-alt-p", 5);
	int code;

	ck_assert_str_eq(tmqtt_outcome_name(tmqtt_publish(c, "no/x", "p", 0, 0, &code)), "closed");
	tmqtt_free(c);
}
END_TEST

static Suite *sim_authz_suite(void)
{
	Suite *s = suite_create("sim_authz");
	TCase *tc = tcase_create("broker");
	TCase *alt = tcase_create("alternative_reactions");

	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_sim_authz_connect_allowed);
	tcase_add_test(tc, test_sim_authz_connect_denied_311);
	tcase_add_test(tc, test_sim_authz_connect_denied_5);
	tcase_add_test(tc, test_sim_authz_unknown_cert);
	tcase_add_test(tc, test_sim_authz_inactive_cert);
	tcase_add_test(tc, test_sim_authz_publish_allowed);
	tcase_add_test(tc, test_sim_authz_publish_denied_311_qos0);
	tcase_add_test(tc, test_sim_authz_publish_denied_311_qos1);
	tcase_add_test(tc, test_sim_authz_publish_denied_5_qos1);
	tcase_add_test(tc, test_sim_authz_publish_denied_5_qos0);
	tcase_add_test(tc, test_sim_authz_retain_needs_retain_publish);
	tcase_add_test(tc, test_sim_authz_subscribe_allowed);
	tcase_add_test(tc, test_sim_authz_subscribe_denied_311);
	tcase_add_test(tc, test_sim_authz_subscribe_denied_5);
	tcase_add_test(tc, test_sim_authz_receive_denied);
	tcase_add_test(tc, test_sim_authz_denials_logged);
	suite_add_tcase(s, tc);
	tcase_add_unchecked_fixture(alt, setup_alternative, teardown);
	tcase_set_timeout(alt, 30);
	tcase_add_test(alt, test_sim_authz_subscribe_suback_failure_311);
	tcase_add_test(alt, test_sim_authz_publish_qos0_disconnect_5);
	suite_add_tcase(s, alt);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(sim_authz_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
