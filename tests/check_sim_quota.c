/*
 * Integration tests of the simulator's data-plane quotas (AWS IoT Core
 * message broker limits): CONNECT per client id per second, client id
 * length, topic depth, payload size, subscriptions per connection and per
 * SUBSCRIBE, publishes per connection per second, QoS 2 not granted, and
 * the takeover of a duplicate client id. Some limits are lowered through
 * plugin options so that the tests stay small.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "tests/support/sim_fixture.h"

#define SECOND 1000000000LL

static tsim fx;
static tsim_device dev;

static const char *const policy_full =
	"{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"iot:*\","
	"\"Resource\":\"*\"}]}";

static void setup(void)
{
	tsim_init(&fx);
	tsim_device_create(&fx, "quota", &dev);
	tsim_policy_put(&fx, "full", policy_full);
	tsim_attach(&fx, "full", &dev);
	tsim_option(&fx, "subscriptions_per_connection", "10");
	tsim_option(&fx, "payload_max", "1KiB");
	tsim_option(&fx, "publish_rate_per_connection", "5");
	/* One CONNECT per client id every 4 s instead of AWS's 1 s, so that a
	 * slow (sanitizer) build still reconnects within the window. */
	tsim_option(&fx, "connect_rate_per_client", "0.25");
	tsim_start(&fx);
}

static void teardown(void)
{
	tsim_cleanup(&fx);
}

static tmqtt_outcome try_connect(const char *client_id, int version, tmqtt **out)
{
	tmqtt_options o = tsim_client_options(&fx, &dev, client_id, version);
	int code;

	return tmqtt_connect(out, &o, &code);
}

static tmqtt *connect_ok(const char *client_id, int version)
{
	tmqtt *c = NULL;

	ck_assert_str_eq(tmqtt_outcome_name(try_connect(client_id, version, &c)), "ok");
	return c;
}

START_TEST(test_sim_quota_connect_rate_per_client)
{
	tmqtt *first = connect_ok("rate-1", 4);
	tmqtt *second = NULL;

	tmqtt_free(first);
	/* A second CONNECT for the client id within the window is rejected. */
	ck_assert_str_eq(tmqtt_outcome_name(try_connect("rate-1", 4, &second)), "closed");
	tmqtt_free(second);
	second = connect_ok("rate-2", 4);
	tmqtt_free(second);
}
END_TEST

START_TEST(test_sim_quota_client_id_length)
{
	char id[130];
	tmqtt *c = NULL;

	memset(id, 'a', 129);
	id[129] = '\0';
	ck_assert_str_eq(tmqtt_outcome_name(try_connect(id, 4, &c)), "closed");
	tmqtt_free(c);
	id[128] = '\0';
	c = connect_ok(id, 4);
	tmqtt_free(c);
}
END_TEST

START_TEST(test_sim_quota_topic_depth)
{
	tmqtt *c = connect_ok("depth", 4);
	int code;

	ck_assert_str_eq(tmqtt_outcome_name(tmqtt_publish(c, "a/b/c/d/e/f/g/h", "x", 1, 0, &code)),
			 "ok");
	/* Eight slashes: one more than AWS allows. */
	ck_assert_str_eq(tmqtt_outcome_name(tmqtt_publish(c, "a/b/c/d/e/f/g/h/i", "x", 1, 0,
							  &code)),
			 "closed");
	tmqtt_free(c);
}
END_TEST

START_TEST(test_sim_quota_payload_size)
{
	tmqtt *c = connect_ok("payload", 4);
	char big[2048];
	int code;

	memset(big, 'p', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	big[1000] = '\0';
	ck_assert_str_eq(tmqtt_outcome_name(tmqtt_publish(c, "p/ok", big, 1, 0, &code)), "ok");
	big[1000] = 'p';
	ck_assert_str_eq(tmqtt_outcome_name(tmqtt_publish(c, "p/big", big, 1, 0, &code)),
			 "closed");
	tmqtt_free(c);
}
END_TEST

START_TEST(test_sim_quota_subscriptions_per_request)
{
	static const char *const filters[] = { "f/1", "f/2", "f/3", "f/4", "f/5",
					       "f/6", "f/7", "f/8", "f/9" };
	tmqtt *c = connect_ok("per-request", 5);
	int codes[9];

	ck_assert_str_eq(tmqtt_outcome_name(tmqtt_subscribe_many(c, filters, 9, 1, codes)), "ok");
	for (int i = 0; i < 8; i++)
		ck_assert_int_eq(codes[i], 1);
	ck_assert_int_ge(codes[8], 0x80);
	tmqtt_free(c);
}
END_TEST

START_TEST(test_sim_quota_subscriptions_per_connection)
{
	tmqtt *c = connect_ok("per-connection", 5);
	char filter[16];
	int code;

	for (int i = 0; i < 10; i++) {
		snprintf(filter, sizeof(filter), "s/%d", i);
		ck_assert_str_eq(tmqtt_outcome_name(tmqtt_subscribe(c, filter, 1, &code)), "ok");
	}
	ck_assert_str_eq(tmqtt_outcome_name(tmqtt_subscribe(c, "s/10", 1, &code)), "refused");
	ck_assert_int_ge(code, 0x80);
	tmqtt_free(c);
}
END_TEST

START_TEST(test_sim_quota_publish_rate)
{
	tmqtt *c = connect_ok("rate-pub", 5);
	int refused = 0, code;

	/* Ten QoS 1 publishes back to back against a limit of five per second. */
	for (int i = 0; i < 10; i++) {
		tmqtt_outcome out = tmqtt_publish(c, "rate/x", "x", 1, 0, &code);
		ck_assert(out == TMQTT_OK || out == TMQTT_REFUSED);
		refused += out == TMQTT_REFUSED;
	}
	ck_assert_int_ge(refused, 1);
	ck_assert_int_eq(tmqtt_connected(c), 1);
	tmqtt_free(c);
}
END_TEST

START_TEST(test_sim_quota_qos2_not_granted)
{
	tmqtt *c = connect_ok("qos2", 4);
	int code;

	ck_assert_str_eq(tmqtt_outcome_name(tmqtt_subscribe(c, "q/2", 2, &code)), "ok");
	ck_assert_int_eq(code, 1);
	tmqtt_free(c);
}
END_TEST

START_TEST(test_sim_quota_duplicate_client_id)
{
	tmqtt *older = connect_ok("dup", 5);
	tmqtt *newer;

	pl_sleep_ns(4100 * PL_NS_PER_MS); /* outside the CONNECT rate window */
	newer = connect_ok("dup", 5);
	ck_assert_int_eq(tmqtt_wait_closed(older, 3 * SECOND), 1);
	ck_assert_int_eq(tmqtt_connected(newer), 1);
	tmqtt_free(newer);
	tmqtt_free(older);
}
END_TEST

static Suite *sim_quota_suite(void)
{
	Suite *s = suite_create("sim_quota");
	TCase *tc = tcase_create("limits");

	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_sim_quota_connect_rate_per_client);
	tcase_add_test(tc, test_sim_quota_client_id_length);
	tcase_add_test(tc, test_sim_quota_topic_depth);
	tcase_add_test(tc, test_sim_quota_payload_size);
	tcase_add_test(tc, test_sim_quota_subscriptions_per_request);
	tcase_add_test(tc, test_sim_quota_subscriptions_per_connection);
	tcase_add_test(tc, test_sim_quota_publish_rate);
	tcase_add_test(tc, test_sim_quota_qos2_not_granted);
	tcase_add_test(tc, test_sim_quota_duplicate_client_id);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(sim_quota_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
