/*
 * The observer's pure parts: which lifecycle disconnect reasons exclude a
 * device, the parsing of AWS IoT's disconnected event, and the mapping of
 * client ids to fleet indexes. The event texts follow the JSON that AWS IoT
 * Core documents for $aws/events/presence/disconnected/<clientId>.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "harness/observer.h"

START_TEST(test_observer_reasons_that_confound)
{
	static const char *const confounding[] = {
		"SERVER_INITIATED_DISCONNECT", "CONNECTION_LOST", "MQTT_KEEP_ALIVE_TIMEOUT",
		"DUPLICATE_CLIENTID", "THROTTLED", "SERVER_ERROR", "API_INITIATED_DISCONNECT",
		"CLIENT_ERROR", "WEBSOCKET_TTL_EXPIRATION", "CUSTOMAUTH_TTL_EXPIRATION",
	};

	for (size_t i = 0; i < sizeof(confounding) / sizeof(confounding[0]); i++)
		ck_assert_msg(observer_reason_confounds(confounding[i]), "%s should confound",
			      confounding[i]);
}
END_TEST

START_TEST(test_observer_reasons_that_do_not_confound)
{
	ck_assert_int_eq(observer_reason_confounds("AUTH_ERROR"), 0);
	ck_assert_int_eq(observer_reason_confounds("FORBIDDEN_ACCESS"), 0);
	ck_assert_int_eq(observer_reason_confounds("CLIENT_INITIATED_DISCONNECT"), 0);
	ck_assert_int_eq(observer_reason_confounds(""), 0);
	ck_assert_int_eq(observer_reason_confounds(NULL), 0);
}
END_TEST

START_TEST(test_observer_parses_disconnected_event)
{
	static const char payload[] =
		"{\"clientId\":\"pl-000007\",\"timestamp\":1460065214626,"
		"\"eventType\":\"disconnected\",\"sessionIdentifier\":\"00000000-0000-0000-0000-000000000000\","
		"\"principalIdentifier\":\"000000000000/ABCDEFGHIJKLMNOPQRSTU:some-user/ABCDEFGHIJKLMNOPQRSTU:some-user\","
		"\"clientInitiatedDisconnect\":false,\"disconnectReason\":\"SERVER_INITIATED_DISCONNECT\","
		"\"versionNumber\":3}";
	observer_event ev;

	ck_assert_int_eq(observer_parse("$aws/events/presence/disconnected/pl-000007", payload,
					strlen(payload), 42, &ev),
			 1);
	ck_assert_int_eq(ev.kind, OBSERVER_EV_DISCONNECTED);
	ck_assert_str_eq(ev.client_id, "pl-000007");
	ck_assert_str_eq(ev.reason, "SERVER_INITIATED_DISCONNECT");
	ck_assert_str_eq(ev.session, "00000000-0000-0000-0000-000000000000");
	ck_assert_int_eq(ev.timestamp_ms, 1460065214626LL);
	ck_assert_int_eq(ev.version, 3);
	ck_assert_int_eq(ev.client_initiated, 0);
	ck_assert_int_eq(ev.t_received_ns, 42);
}
END_TEST

START_TEST(test_observer_parse_missing_fields)
{
	static const char payload[] = "{\"eventType\":\"disconnected\"}";
	observer_event ev;

	ck_assert_int_eq(observer_parse("$aws/events/presence/disconnected/pl-000002", payload,
					strlen(payload), 0, &ev),
			 1);
	ck_assert_str_eq(ev.client_id, "pl-000002");
	ck_assert_str_eq(ev.reason, "");
	ck_assert_int_eq(ev.timestamp_ms, -1);
	ck_assert_int_eq(ev.version, -1);
}
END_TEST

START_TEST(test_observer_parse_ignores_others)
{
	static const char connected[] = "{\"clientId\":\"a\",\"eventType\":\"connected\"}";
	static const char array[] = "[1,2]";
	static const char broken[] = "{\"clientId\":";
	observer_event ev;

	ck_assert_int_eq(observer_parse("t/a", connected, strlen(connected), 0, &ev), 0);
	ck_assert_int_eq(observer_parse("t/a", array, strlen(array), 0, &ev), -1);
	ck_assert_int_eq(observer_parse("t/a", broken, strlen(broken), 0, &ev), -1);
}
END_TEST

START_TEST(test_observer_client_index_devices)
{
	uint64_t index = 0;

	ck_assert_int_eq(observer_client_index("pl-000003", "pl-", &index), 1);
	ck_assert_uint_eq(index, 3);
	ck_assert_int_eq(observer_client_index("pl-000012-a4", "pl-", &index), 1);
	ck_assert_uint_eq(index, 12);
	ck_assert_int_eq(observer_client_index("pl-000013-2", "pl-", &index), 1);
	ck_assert_uint_eq(index, 13);
	ck_assert_int_eq(observer_client_index("pl-1234567", "pl-", &index), 1);
	ck_assert_uint_eq(index, 1234567);
}
END_TEST

START_TEST(test_observer_client_index_others)
{
	uint64_t index = 99;

	ck_assert_int_eq(observer_client_index("pl-000003-trigger", "pl-", &index), 0);
	ck_assert_int_eq(observer_client_index("pl-prober-0", "pl-", &index), 0);
	ck_assert_int_eq(observer_client_index("pl-observer-1", "pl-", &index), 0);
	ck_assert_int_eq(observer_client_index("other-000001", "pl-", &index), 0);
	ck_assert_int_eq(observer_client_index("pl-", "pl-", &index), 0);
	ck_assert_int_eq(observer_client_index("pl-000003-a", "pl-", &index), 0);
	ck_assert_uint_eq(index, 99);
}
END_TEST

static Suite *observer_suite(void)
{
	Suite *s = suite_create("observer");
	TCase *tc = tcase_create("pure");

	tcase_add_test(tc, test_observer_reasons_that_confound);
	tcase_add_test(tc, test_observer_reasons_that_do_not_confound);
	tcase_add_test(tc, test_observer_parses_disconnected_event);
	tcase_add_test(tc, test_observer_parse_missing_fields);
	tcase_add_test(tc, test_observer_parse_ignores_others);
	tcase_add_test(tc, test_observer_client_index_devices);
	tcase_add_test(tc, test_observer_client_index_others);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(observer_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
