/*
 * Integration tests of policy propagation with a fixed refresh period
 * (ttl:4s): a grant or a revoke reaches an established connection only at
 * its next snapshot refresh, which the ground-truth file records, while a
 * new connection is authorized with the new policy at once.
 *
 * The policy changes go through the state file, and the fixture returns once
 * the plugin has reloaded it. The checks of the old view run within about a
 * second of the subscriber's connect, well before its first refresh at 4 s.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "tests/support/sim_fixture.h"

#define SECOND 1000000000LL

static tsim fx;
static tsim_device dev_pub, dev_grant, dev_revoke;

static const char *const policy_full =
	"{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"iot:*\","
	"\"Resource\":\"*\"}]}";

/* Connect, subscribe anything, receive the topics matching receive_arn. */
static char *receive_policy(const char *receive_resource)
{
	char *doc = malloc(1024);

	snprintf(doc, 1024,
		 "{\"Version\":\"2012-10-17\",\"Statement\":["
		 "{\"Effect\":\"Allow\",\"Action\":[\"iot:Connect\",\"iot:Subscribe\"],"
		 "\"Resource\":\"*\"},"
		 "{\"Effect\":\"Allow\",\"Action\":\"iot:Receive\","
		 "\"Resource\":\"arn:aws:iot:us-east-1:123456789012:topic/%s\"}]}",
		 receive_resource);
	return doc;
}

static void put_receive_policy(const char *name, const char *resource)
{
	char *doc = receive_policy(resource);

	tsim_policy_put(&fx, name, doc);
	free(doc);
}

static int setup_with_cache;

static void setup(void)
{
	tsim_init(&fx);
	tsim_device_create(&fx, "pub", &dev_pub);
	tsim_device_create(&fx, "grant", &dev_grant);
	tsim_device_create(&fx, "revoke", &dev_revoke);
	tsim_policy_put(&fx, "full", policy_full);
	tsim_attach(&fx, "full", &dev_pub);
	put_receive_policy("grant", "g/a");
	tsim_attach(&fx, "grant", &dev_grant);
	put_receive_policy("revoke", "r/*");
	tsim_attach(&fx, "revoke", &dev_revoke);
	fx.options.propagation = "ttl:4s";
	tsim_option(&fx, "connect_rate_per_client", "off");
	if (setup_with_cache)
		fx.options.connect_fresh_snapshot = 0;
	tsim_start(&fx);
}

static void teardown(void)
{
	tsim_cleanup(&fx);
}

static tmqtt *subscriber(const tsim_device *d, const char *client_id, const char *filter)
{
	tmqtt_options o = tsim_client_options(&fx, d, client_id, 4);
	tmqtt *c = NULL;
	int code;

	ck_assert_str_eq(tmqtt_outcome_name(tmqtt_connect(&c, &o, &code)), "ok");
	ck_assert_str_eq(tmqtt_outcome_name(tmqtt_subscribe(c, filter, 1, &code)), "ok");
	return c;
}

static void publish(tmqtt *pub, const char *topic)
{
	int code;

	ck_assert_str_eq(tmqtt_outcome_name(tmqtt_publish(pub, topic, "x", 1, 0, &code)), "ok");
}

/* Waits for the ground-truth line of client_id's refresh that changed. */
static int wait_refresh_changed(const char *client_id, int64_t timeout_ns)
{
	char needle[128];
	int64_t deadline = pl_mono_ns() + timeout_ns;

	snprintf(needle, sizeof(needle), "\"clientId\":\"%s\"", client_id);
	while (pl_mono_ns() < deadline) {
		char path[PATH_MAX + 32], line[4096];
		FILE *f;
		snprintf(path, sizeof(path), "%s/ground-truth.jsonl", fx.dir);
		f = fopen(path, "r");
		while (f && fgets(line, sizeof(line), f)) {
			if (strstr(line, needle) && strstr(line, "\"event\":\"refresh\"") &&
			    strstr(line, "\"changed\":true")) {
				fclose(f);
				return 1;
			}
		}
		if (f)
			fclose(f);
		pl_sleep_ns(100 * PL_NS_PER_MS);
	}
	return 0;
}

START_TEST(test_sim_propagation_grant)
{
	tmqtt *pub = subscriber(&dev_pub, "pub-g", "unused/x");
	tmqtt *old = subscriber(&dev_grant, "grant-old", "g/#");
	tmqtt *fresh;

	put_receive_policy("grant", "g/*");
	fresh = subscriber(&dev_grant, "grant-new", "g/#");
	publish(pub, "g/b");
	/* A new connection is authorized with the grant at once. */
	ck_assert_int_eq(tmqtt_wait_message(fresh, "g/b", 2 * SECOND), 1);
	/* The established one still has its connect-time snapshot. */
	ck_assert_int_eq(tmqtt_message_count(old, "g/b"), 0);
	ck_assert_int_eq(wait_refresh_changed("grant-old", 6 * SECOND), 1);
	publish(pub, "g/c");
	ck_assert_int_eq(tmqtt_wait_message(old, "g/c", 2 * SECOND), 1);
	tmqtt_free(fresh);
	tmqtt_free(old);
	tmqtt_free(pub);
}
END_TEST

START_TEST(test_sim_propagation_revoke)
{
	tmqtt *pub = subscriber(&dev_pub, "pub-r", "unused/y");
	tmqtt *old = subscriber(&dev_revoke, "revoke-old", "r/#");
	tmqtt *fresh;

	put_receive_policy("revoke", "nothing/*");
	fresh = subscriber(&dev_revoke, "revoke-new", "r/#");
	publish(pub, "r/a");
	/* The established connection keeps receiving until its refresh. */
	ck_assert_int_eq(tmqtt_wait_message(old, "r/a", 2 * SECOND), 1);
	ck_assert_int_eq(tmqtt_message_count(fresh, "r/a"), 0);
	ck_assert_int_eq(wait_refresh_changed("revoke-old", 6 * SECOND), 1);
	publish(pub, "r/b");
	publish(pub, "unused/y");
	/* pub's own subscription receives unused/y after r/b was routed. */
	ck_assert_int_eq(tmqtt_wait_message(pub, "unused/y", 2 * SECOND), 1);
	ck_assert_int_eq(tmqtt_message_count(old, "r/b"), 0);
	ck_assert_int_eq(tmqtt_connected(old), 1);
	tmqtt_free(fresh);
	tmqtt_free(old);
	tmqtt_free(pub);
}
END_TEST

START_TEST(test_sim_propagation_ground_truth_connect)
{
	tmqtt *c = subscriber(&dev_grant, "gt-conn", "g/#");
	char needle[128];

	tmqtt_free(c);
	snprintf(needle, sizeof(needle), "\"certificateId\":\"%s\"", dev_grant.cert_id);
	for (int i = 0; i < 20 && tsim_count_lines(&fx, "ground-truth.jsonl", "gt-conn") == 0; i++)
		pl_sleep_ns(100 * PL_NS_PER_MS);
	ck_assert_int_eq(tsim_count_lines(&fx, "ground-truth.jsonl", "\"clientId\":\"gt-conn\""), 1);
	ck_assert_int_ge(tsim_count_lines(&fx, "ground-truth.jsonl", needle), 1);
	ck_assert_int_ge(tsim_count_lines(&fx, "ground-truth.jsonl", "\"name\":\"grant\""), 1);
}
END_TEST

/* Same registry, but a new connection reuses the cached snapshot of its
 * certificate and client id until that snapshot's refresh is due. */
static void setup_cached(void)
{
	setup_with_cache = 1;
	setup();
}

START_TEST(test_sim_propagation_cached_reconnect)
{
	tmqtt *pub = subscriber(&dev_pub, "pub-c", "unused/z");
	tmqtt *first = subscriber(&dev_grant, "cache-1", "g/#");
	tmqtt *again;

	tmqtt_free(first);
	put_receive_policy("grant", "g/*");
	/* The reconnect inherits the cached view: g/d is still not received. */
	again = subscriber(&dev_grant, "cache-1", "g/#");
	publish(pub, "g/d");
	publish(pub, "unused/z");
	ck_assert_int_eq(tmqtt_wait_message(pub, "unused/z", 2 * SECOND), 1);
	ck_assert_int_eq(tmqtt_message_count(again, "g/d"), 0);
	ck_assert_int_ge(tsim_count_lines(&fx, "ground-truth.jsonl", "\"event\":\"inherit\""), 1);
	ck_assert_int_eq(wait_refresh_changed("cache-1", 6 * SECOND), 1);
	publish(pub, "g/e");
	ck_assert_int_eq(tmqtt_wait_message(again, "g/e", 2 * SECOND), 1);
	tmqtt_free(again);
	tmqtt_free(pub);
}
END_TEST

static Suite *sim_propagation_suite(void)
{
	Suite *s = suite_create("sim_propagation");
	TCase *tc = tcase_create("ttl");
	TCase *cached = tcase_create("cached_connect");

	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_sim_propagation_grant);
	tcase_add_test(tc, test_sim_propagation_revoke);
	tcase_add_test(tc, test_sim_propagation_ground_truth_connect);
	suite_add_tcase(s, tc);
	tcase_add_unchecked_fixture(cached, setup_cached, teardown);
	tcase_set_timeout(cached, 30);
	tcase_add_test(cached, test_sim_propagation_cached_reconnect);
	suite_add_tcase(s, cached);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(sim_propagation_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
