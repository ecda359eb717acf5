/*
 * The topic rule that reproduces the background experiment's cloud side:
 * on a publish to hoge/req, attach B and detach A for the publishing
 * certificate, then publish to hoge/res.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simulator/certs.h"
#include "simulator/rules.h"
#include "simulator/state.h"

#define DOC "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\"," \
	    "\"Action\":\"iot:Connect\",\"Resource\":\"*\"}]}"

static sim_state *st;
static sim_rules *rules;
static char cert_id[65];
static char cert_arn[512];

typedef struct published {
	int count;
	char topic[128];
	char payload[128];
	int qos;
} published;

static void on_publish(void *ctx, const char *topic, const void *payload, size_t len, int qos)
{
	published *p = ctx;

	p->count++;
	p->qos = qos;
	snprintf(p->topic, sizeof(p->topic), "%s", topic);
	snprintf(p->payload, sizeof(p->payload), "%.*s", (int)len, (const char *)payload);
}

static void setup(void)
{
	sim_state_config cfg = {0};
	char *pem = NULL, *key = NULL;
	sim_ca *ca = NULL;
	sim_cert *c;
	sim_policy_rec *p;
	pl_errmsg e;
	char dir[] = "/tmp/policylag-rules.XXXXXX", ca_cert[64], ca_key[64];

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(ca_cert, sizeof(ca_cert), "%s/ca.pem", dir);
	snprintf(ca_key, sizeof(ca_key), "%s/ca.key", dir);
	ck_assert_int_eq(sim_certs_create_ca(ca_cert, ca_key, "rules CA", 30, &e), PL_OK);
	ck_assert_int_eq(sim_ca_load(&ca, ca_cert, ca_key, &e), PL_OK);
	ck_assert_int_eq(sim_certs_create_keys_and_cert(ca, "dev", 30, &pem, &key, NULL, &e), PL_OK);
	ck_assert_int_eq(sim_state_create(&st, &cfg, &e), PL_OK);
	sim_state_lock(st);
	ck_assert_int_eq(sim_state_policy_create(st, "A", DOC, &p, &e), PL_OK);
	ck_assert_int_eq(sim_state_policy_create(st, "B", DOC, &p, &e), PL_OK);
	ck_assert_int_eq(sim_state_cert_add(st, pem, SIM_CERT_ACTIVE, NULL, &c, &e), PL_OK);
	snprintf(cert_id, sizeof(cert_id), "%s", c->id);
	snprintf(cert_arn, sizeof(cert_arn), "%s", c->arn);
	ck_assert_int_eq(sim_state_attach(st, "A", cert_arn, &e), PL_OK);
	sim_state_unlock(st);
	remove(ca_cert);
	remove(ca_key);
	remove(dir);
	sim_ca_free(ca);
	free(pem);
	free(key);
	ck_assert_int_eq(sim_rules_create(&rules), PL_OK);
	ck_assert_int_eq(sim_rules_option(rules, "rule_topic", "hoge/req", &e), PL_OK);
	ck_assert_int_eq(sim_rules_option(rules, "rule_attach", "B", &e), PL_OK);
	ck_assert_int_eq(sim_rules_option(rules, "rule_detach", "A", &e), PL_OK);
	ck_assert_int_eq(sim_rules_option(rules, "rule_response_topic", "hoge/res", &e), PL_OK);
}

static void teardown(void)
{
	sim_rules_free(rules);
	sim_state_free(st);
}

/* The names attached to the certificate, comma-separated. */
static void attached(char *buf, size_t len)
{
	sim_attachments *a;

	buf[0] = '\0';
	sim_state_lock(st);
	a = sim_state_target_policies(st, cert_arn);
	for (size_t i = 0; a != NULL && i < a->count; i++)
		snprintf(buf + strlen(buf), len - strlen(buf), "%s%s", i ? "," : "", a->names[i]);
	sim_state_unlock(st);
}

START_TEST(test_api_rules_swap_and_respond)
{
	published p = {0};
	char names[64];

	ck_assert_int_eq(sim_rules_on_publish(rules, st, "hoge/req", cert_id, "c1", on_publish, &p),
			 1);
	attached(names, sizeof(names));
	ck_assert_str_eq(names, "B");
	ck_assert_int_eq(p.count, 1);
	ck_assert_str_eq(p.topic, "hoge/res");
	ck_assert_str_eq(p.payload, "{\"swapped\":true}");
}
END_TEST

START_TEST(test_api_rules_repeat_responds_again)
{
	published p = {0};
	char names[64];

	ck_assert_int_eq(sim_rules_on_publish(rules, st, "hoge/req", cert_id, "c1", on_publish, &p),
			 1);
	ck_assert_int_eq(sim_rules_on_publish(rules, st, "hoge/req", cert_id, "c1", on_publish, &p),
			 1);
	ck_assert_int_eq(p.count, 2);
	attached(names, sizeof(names));
	ck_assert_str_eq(names, "B");
}
END_TEST

START_TEST(test_api_rules_repeat_without_once)
{
	published p = {0};
	pl_errmsg e;

	ck_assert_int_eq(sim_rules_option(rules, "rule_once", "off", &e), PL_OK);
	ck_assert_int_eq(sim_rules_on_publish(rules, st, "hoge/req", cert_id, "c1", on_publish, &p),
			 1);
	ck_assert_int_eq(sim_rules_on_publish(rules, st, "hoge/req", cert_id, "c1", on_publish, &p),
			 1);
	ck_assert_int_eq(p.count, 2);
}
END_TEST

START_TEST(test_api_rules_other_topic)
{
	published p = {0};
	char names[64];

	ck_assert_int_eq(sim_rules_on_publish(rules, st, "hoge/other", cert_id, "c1", on_publish,
					      &p),
			 0);
	ck_assert_int_eq(sim_rules_on_publish(rules, st, "hoge/req", NULL, "c1", on_publish, &p), 0);
	ck_assert_int_eq(p.count, 0);
	attached(names, sizeof(names));
	ck_assert_str_eq(names, "A");
}
END_TEST

START_TEST(test_api_rules_wildcard_and_client_topic)
{
	published p = {0};
	pl_errmsg e;

	ck_assert_int_eq(sim_rules_option(rules, "rule_topic", "dev/+/req", &e), PL_OK);
	ck_assert_int_eq(sim_rules_option(rules, "rule_response_topic", "dev/${clientid}/res", &e),
			 PL_OK);
	ck_assert_int_eq(sim_rules_on_publish(rules, st, "dev/c7/req", cert_id, "c7", on_publish,
					      &p),
			 1);
	ck_assert_str_eq(p.topic, "dev/c7/res");
	ck_assert_int_eq(sim_rules_on_publish(rules, st, "dev/c7/x/req", cert_id, "c7", on_publish,
					      &p),
			 0);
}
END_TEST

START_TEST(test_api_rules_unknown_policy)
{
	published p = {0};
	pl_errmsg e;

	ck_assert_int_eq(sim_rules_option(rules, "rule_attach", "Nope", &e), PL_OK);
	ck_assert_int_eq(sim_rules_on_publish(rules, st, "hoge/req", cert_id, "c1", on_publish, &p),
			 -1);
	ck_assert_int_eq(p.count, 0);
}
END_TEST

START_TEST(test_api_rules_bad_options)
{
	pl_errmsg e;

	ck_assert_int_eq(sim_rules_option(rules, "rule_attach", "a,,b", &e), PL_ERR_INVALID);
	ck_assert_int_eq(sim_rules_option(rules, "rule_response_qos", "2", &e), PL_ERR_INVALID);
	ck_assert_int_eq(sim_rules_option(rules, "rule_bogus", "1", &e), PL_ERR_INVALID);
}
END_TEST

static Suite *rules_suite(void)
{
	Suite *s = suite_create("rules");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_api_rules_swap_and_respond);
	tcase_add_test(tc, test_api_rules_repeat_responds_again);
	tcase_add_test(tc, test_api_rules_repeat_without_once);
	tcase_add_test(tc, test_api_rules_other_topic);
	tcase_add_test(tc, test_api_rules_wildcard_and_client_topic);
	tcase_add_test(tc, test_api_rules_unknown_policy);
	tcase_add_test(tc, test_api_rules_bad_options);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(rules_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
