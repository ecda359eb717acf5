/*
 * Integration tests of the simulator's AWS IoT lifecycle events, with a real
 * mosquitto, the plugin, TLS and paho clients. An observer subscribed to
 * $aws/events/presence/# must see what AWS IoT Core documents:
 *   connected/<id>       clientId, timestamp (ms), eventType "connected",
 *                        sessionIdentifier, principalIdentifier (certificate
 *                        id), ipAddress, versionNumber
 *   disconnected/<id>    the same sessionIdentifier and versionNumber,
 *                        clientInitiatedDisconnect, disconnectReason, no ipAddress
 *   connect_failed/<id>  connectFailureReason AUTHORIZATION_FAILED when the
 *                        policy does not allow iot:Connect
 * disconnectReason follows the cause: CLIENT_INITIATED_DISCONNECT,
 * CONNECTION_LOST, AUTH_ERROR (a denial or a deactivated certificate),
 * CLIENT_ERROR, DUPLICATE_CLIENTID, API_INITIATED_DISCONNECT
 * (DeleteConnection) or the reason given to /_sim/disconnect.
 * Client ids containing '+' or '#' get no events, and a subscriber needs
 * iot:Receive on the event topic like for any other message.
 */
#include <check.h>
#include <curl/curl.h>
#include <dirent.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "tests/support/sim_fixture.h"

#define SECOND 1000000000LL
#define EVENT_WAIT (5 * SECOND)

static tsim fx;
static tsim_device dev_full, dev_observer, dev_blind, dev_limited, dev_refused, dev_revoked;
static tmqtt *observer;

static const char *const policy_full =
	"{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"iot:*\","
	"\"Resource\":\"*\"}]}";

/* May subscribe to and receive the presence topics, nothing else. */
static const char *const policy_observer =
	"{\"Version\":\"2012-10-17\",\"Statement\":["
	"{\"Effect\":\"Allow\",\"Action\":\"iot:Connect\",\"Resource\":\"*\"},"
	"{\"Effect\":\"Allow\",\"Action\":\"iot:Subscribe\","
	"\"Resource\":\"arn:aws:iot:us-east-1:123456789012:topicfilter/$aws/events/presence/*\"},"
	"{\"Effect\":\"Allow\",\"Action\":\"iot:Receive\","
	"\"Resource\":\"arn:aws:iot:us-east-1:123456789012:topic/$aws/events/presence/*\"}]}";

/* May subscribe to the presence topics but receive only under other/. */
static const char *const policy_blind =
	"{\"Version\":\"2012-10-17\",\"Statement\":["
	"{\"Effect\":\"Allow\",\"Action\":\"iot:Connect\",\"Resource\":\"*\"},"
	"{\"Effect\":\"Allow\",\"Action\":\"iot:Subscribe\",\"Resource\":\"*\"},"
	"{\"Effect\":\"Allow\",\"Action\":\"iot:Receive\","
	"\"Resource\":\"arn:aws:iot:us-east-1:123456789012:topic/other/*\"}]}";

/* Connect and subscribe under ok/ only. */
static const char *const policy_limited =
	"{\"Version\":\"2012-10-17\",\"Statement\":["
	"{\"Effect\":\"Allow\",\"Action\":\"iot:Connect\",\"Resource\":\"*\"},"
	"{\"Effect\":\"Allow\",\"Action\":\"iot:Subscribe\","
	"\"Resource\":\"arn:aws:iot:us-east-1:123456789012:topicfilter/ok/*\"}]}";

/* Everything but iot:Connect. */
static const char *const policy_no_connect =
	"{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":"
	"[\"iot:Publish\",\"iot:Subscribe\",\"iot:Receive\"],\"Resource\":\"*\"}]}";

static tmqtt *connect_ok(const tsim_device *d, const char *client_id, int version)
{
	tmqtt_options o = tsim_client_options(&fx, d, client_id, version);
	tmqtt *c = NULL;
	int code;

	ck_assert_str_eq(tmqtt_outcome_name(tmqtt_connect(&c, &o, &code)), "ok");
	return c;
}

static void setup(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	tsim_init(&fx);
	tsim_device_create(&fx, "full", &dev_full);
	tsim_device_create(&fx, "observer", &dev_observer);
	tsim_device_create(&fx, "blind", &dev_blind);
	tsim_device_create(&fx, "limited", &dev_limited);
	tsim_device_create(&fx, "refused", &dev_refused);
	tsim_device_create(&fx, "revoked", &dev_revoked);
	tsim_policy_put(&fx, "full", policy_full);
	tsim_policy_put(&fx, "observer", policy_observer);
	tsim_policy_put(&fx, "blind", policy_blind);
	tsim_policy_put(&fx, "limited", policy_limited);
	tsim_policy_put(&fx, "no-connect", policy_no_connect);
	tsim_attach(&fx, "full", &dev_full);
	tsim_attach(&fx, "observer", &dev_observer);
	tsim_attach(&fx, "blind", &dev_blind);
	tsim_attach(&fx, "limited", &dev_limited);
	tsim_attach(&fx, "no-connect", &dev_refused);
	tsim_attach(&fx, "full", &dev_revoked);
	/* Tests reconnect with one client id within a second. */
	tsim_option(&fx, "connect_rate_per_client", "off");
	tsim_start(&fx);
}

static void teardown(void)
{
	tsim_cleanup(&fx);
	curl_global_cleanup();
}

/* Runs in each test's process, because Check forks every test and a forked
 * child has none of the parent's paho threads. */
static void observer_start(void)
{
	int code;

	observer = connect_ok(&dev_observer, "observer", 5);
	ck_assert_str_eq(
		tmqtt_outcome_name(tmqtt_subscribe(observer, "$aws/events/presence/#", 1, &code)),
		"ok");
}

static void observer_stop(void)
{
	tmqtt_free(observer);
	observer = NULL;
}

static int64_t wall_ms(void)
{
	return pl_wall_ns() / 1000000;
}

/*
 * Waits until the observer has count events of kind for client_id and
 * returns the latest one, parsed.
 */
static json_t *wait_event(const char *kind, const char *client_id, int count)
{
	char topic[256];
	char *text;
	json_t *event;
	int64_t deadline = pl_mono_ns() + EVENT_WAIT;

	snprintf(topic, sizeof(topic), "$aws/events/presence/%s/%s", kind, client_id);
	while (tmqtt_message_count(observer, topic) < count && pl_mono_ns() < deadline) {
		struct timespec pause = { 0, 20000000L };
		nanosleep(&pause, NULL);
	}
	ck_assert_msg(tmqtt_message_count(observer, topic) >= count, "no event %d on %s", count,
		      topic);
	text = tmqtt_last_payload(observer, topic);
	ck_assert_ptr_nonnull(text);
	event = json_loads(text, 0, NULL);
	ck_assert_msg(json_is_object(event), "event is not a JSON object: %s", text);
	free(text);
	return event;
}

static const char *member_string(const json_t *event, const char *key)
{
	const json_t *v = json_object_get(event, key);

	ck_assert_msg(json_is_string(v), "%s is not a string", key);
	return json_string_value(v);
}

static json_int_t member_integer(const json_t *event, const char *key)
{
	const json_t *v = json_object_get(event, key);

	ck_assert_msg(json_is_integer(v), "%s is not an integer", key);
	return json_integer_value(v);
}

/* Checks the fields of a connected event and returns it. */
static json_t *expect_connected(const char *client_id, int count, const tsim_device *d,
				int64_t since_ms)
{
	json_t *ev = wait_event("connected", client_id, count);

	ck_assert_str_eq(member_string(ev, "clientId"), client_id);
	ck_assert_str_eq(member_string(ev, "eventType"), "connected");
	ck_assert_str_eq(member_string(ev, "principalIdentifier"), d->cert_id);
	ck_assert_str_eq(member_string(ev, "ipAddress"), "127.0.0.1");
	ck_assert_int_gt(strlen(member_string(ev, "sessionIdentifier")), 0);
	ck_assert_int_ge(member_integer(ev, "timestamp"), since_ms);
	ck_assert_int_le(member_integer(ev, "timestamp"), wall_ms());
	ck_assert_int_ge(member_integer(ev, "versionNumber"), 0);
	ck_assert_ptr_null(json_object_get(ev, "disconnectReason"));
	return ev;
}

/* Checks a disconnected event against the connected event of its connection. */
static void expect_disconnected(const char *client_id, int count, const json_t *connected,
				const char *reason, int client_initiated)
{
	json_t *ev = wait_event("disconnected", client_id, count);

	ck_assert_str_eq(member_string(ev, "clientId"), client_id);
	ck_assert_str_eq(member_string(ev, "eventType"), "disconnected");
	ck_assert_str_eq(member_string(ev, "disconnectReason"), reason);
	ck_assert(json_is_boolean(json_object_get(ev, "clientInitiatedDisconnect")));
	ck_assert_int_eq(json_is_true(json_object_get(ev, "clientInitiatedDisconnect")),
			 client_initiated);
	ck_assert_str_eq(member_string(ev, "sessionIdentifier"),
			 member_string(connected, "sessionIdentifier"));
	ck_assert_str_eq(member_string(ev, "principalIdentifier"),
			 member_string(connected, "principalIdentifier"));
	ck_assert_int_eq(member_integer(ev, "versionNumber"),
			 member_integer(connected, "versionNumber"));
	ck_assert_int_ge(member_integer(ev, "timestamp"), member_integer(connected, "timestamp"));
	ck_assert_ptr_null(json_object_get(ev, "ipAddress"));
	json_decref(ev);
}

START_TEST(test_lifecycle_client_disconnect)
{
	int64_t since = wall_ms();
	tmqtt *c = connect_ok(&dev_full, "lc-clean", 4);
	json_t *connected = expect_connected("lc-clean", 1, &dev_full, since);

	tmqtt_free(c);
	expect_disconnected("lc-clean", 1, connected, "CLIENT_INITIATED_DISCONNECT", 1);
	json_decref(connected);
}
END_TEST

START_TEST(test_lifecycle_version_grows)
{
	int64_t since = wall_ms();
	tmqtt *c = connect_ok(&dev_full, "lc-again", 5);
	json_t *first = expect_connected("lc-again", 1, &dev_full, since);
	json_t *second;

	tmqtt_free(c);
	expect_disconnected("lc-again", 1, first, "CLIENT_INITIATED_DISCONNECT", 1);
	c = connect_ok(&dev_full, "lc-again", 5);
	second = expect_connected("lc-again", 2, &dev_full, since);
	ck_assert_int_gt(member_integer(second, "versionNumber"),
			 member_integer(first, "versionNumber"));
	ck_assert_str_ne(member_string(second, "sessionIdentifier"),
			 member_string(first, "sessionIdentifier"));
	tmqtt_free(c);
	expect_disconnected("lc-again", 2, second, "CLIENT_INITIATED_DISCONNECT", 1);
	json_decref(first);
	json_decref(second);
}
END_TEST

/* The sockets of this process connected to the broker's MQTT port. */
static int broker_sockets(int port, int *fds, int max)
{
	DIR *dir = opendir("/proc/self/fd");
	struct dirent *entry;
	int n = 0;

	ck_assert_ptr_nonnull(dir);
	while ((entry = readdir(dir)) != NULL && n < max) {
		struct sockaddr_in peer;
		socklen_t len = sizeof(peer);
		struct stat st;
		int fd = (int)strtol(entry->d_name, NULL, 10);

		if (entry->d_name[0] == '.' || fd == dirfd(dir) || fstat(fd, &st) != 0 ||
		    !S_ISSOCK(st.st_mode))
			continue;
		if (getpeername(fd, (struct sockaddr *)&peer, &len) == 0 &&
		    peer.sin_family == AF_INET && ntohs(peer.sin_port) == port)
			fds[n++] = fd;
	}
	closedir(dir);
	return n;
}

static int contains(const int *fds, int n, int fd)
{
	for (int i = 0; i < n; i++)
		if (fds[i] == fd)
			return 1;
	return 0;
}

START_TEST(test_lifecycle_connection_lost)
{
	tmqtt_options o = tsim_client_options(&fx, &dev_full, "lc-lost", 4);
	int before[64], after[64], n_before, n_after, dropped = -1, code;
	int64_t since = wall_ms();
	tmqtt *c = NULL;
	json_t *connected;

	/* Devices set a will to learn of lost connections; mosquitto sends it
	 * only when the client did not send DISCONNECT. */
	o.will_topic = "lc/lost/will";
	o.will_payload = "gone";
	n_before = broker_sockets(o.port, before, 64);
	ck_assert_str_eq(tmqtt_outcome_name(tmqtt_connect(&c, &o, &code)), "ok");
	n_after = broker_sockets(o.port, after, 64);
	for (int i = 0; i < n_after; i++)
		if (!contains(before, n_before, after[i]))
			dropped = after[i];
	ck_assert_int_ge(dropped, 0);
	connected = expect_connected("lc-lost", 1, &dev_full, since);
	/* Ends the TCP connection under paho without an MQTT DISCONNECT. */
	ck_assert_int_eq(shutdown(dropped, SHUT_RDWR), 0);
	expect_disconnected("lc-lost", 1, connected, "CONNECTION_LOST", 0);
	ck_assert_int_eq(tmqtt_wait_closed(c, 3 * SECOND), 1);
	tmqtt_free(c);
	json_decref(connected);
}
END_TEST

START_TEST(test_lifecycle_authorization_disconnect)
{
	int64_t since = wall_ms();
	tmqtt *c = connect_ok(&dev_limited, "lc-denied", 4);
	json_t *connected = expect_connected("lc-denied", 1, &dev_limited, since);
	int code;

	/* MQTT 3.1.1: AWS closes the connection on an unauthorized SUBSCRIBE. */
	ck_assert_str_eq(tmqtt_outcome_name(tmqtt_subscribe(c, "secret/x", 1, &code)), "closed");
	expect_disconnected("lc-denied", 1, connected, "AUTH_ERROR", 0);
	tmqtt_free(c);
	json_decref(connected);
}
END_TEST

START_TEST(test_lifecycle_certificate_deactivated)
{
	int64_t since = wall_ms();
	tmqtt *c = connect_ok(&dev_revoked, "lc-revoked", 5);
	json_t *connected = expect_connected("lc-revoked", 1, &dev_revoked, since);
	char path[160];

	/* The certificate no longer authenticates, so the connection ends with AUTH_ERROR. */
	snprintf(path, sizeof(path), "/certificates/%s?newStatus=INACTIVE", dev_revoked.cert_id);
	ck_assert_int_eq(tsim_api_request(&fx, "PUT", path, "iot", NULL), 200);
	expect_disconnected("lc-revoked", 1, connected, "AUTH_ERROR", 0);
	ck_assert_int_eq(tmqtt_wait_closed(c, 3 * SECOND), 1);
	tmqtt_free(c);
	json_decref(connected);
}
END_TEST

START_TEST(test_lifecycle_size_violation)
{
	int64_t since = wall_ms();
	tmqtt *c = connect_ok(&dev_full, "lc-deep", 4);
	json_t *connected = expect_connected("lc-deep", 1, &dev_full, since);
	int code;

	/* AWS allows at most 7 slashes in a topic and closes the connection. */
	tmqtt_publish(c, "a/b/c/d/e/f/g/h/i", "x", 1, 0, &code);
	expect_disconnected("lc-deep", 1, connected, "CLIENT_ERROR", 0);
	ck_assert_int_eq(tmqtt_wait_closed(c, 3 * SECOND), 1);
	tmqtt_free(c);
	json_decref(connected);
}
END_TEST

START_TEST(test_lifecycle_takeover)
{
	int64_t since = wall_ms();
	tmqtt *older = connect_ok(&dev_full, "lc-dup", 5);
	json_t *first = expect_connected("lc-dup", 1, &dev_full, since);
	tmqtt *newer = connect_ok(&dev_full, "lc-dup", 5);
	json_t *second = expect_connected("lc-dup", 2, &dev_full, since);

	ck_assert_int_gt(member_integer(second, "versionNumber"),
			 member_integer(first, "versionNumber"));
	/* The older connection ends with DUPLICATE_CLIENTID under its own version. */
	expect_disconnected("lc-dup", 1, first, "DUPLICATE_CLIENTID", 0);
	ck_assert_int_eq(tmqtt_wait_closed(older, 3 * SECOND), 1);
	ck_assert_int_eq(tmqtt_connected(newer), 1);
	tmqtt_free(newer);
	expect_disconnected("lc-dup", 2, second, "CLIENT_INITIATED_DISCONNECT", 1);
	tmqtt_free(older);
	json_decref(first);
	json_decref(second);
}
END_TEST

START_TEST(test_lifecycle_delete_connection)
{
	int64_t since = wall_ms();
	tmqtt *c = connect_ok(&dev_full, "lc-api", 5);
	json_t *connected = expect_connected("lc-api", 1, &dev_full, since);

	ck_assert_int_eq(tsim_api_request(&fx, "DELETE", "/connections/lc-api", "iotdata", NULL),
			 200);
	expect_disconnected("lc-api", 1, connected, "API_INITIATED_DISCONNECT", 0);
	ck_assert_int_eq(tmqtt_wait_closed(c, 3 * SECOND), 1);
	tmqtt_free(c);
	json_decref(connected);
}
END_TEST

START_TEST(test_lifecycle_delete_unknown_404)
{
	ck_assert_int_eq(
		tsim_api_request(&fx, "DELETE", "/connections/lc-nobody", "iotdata", NULL), 404);
}
END_TEST

START_TEST(test_lifecycle_sim_disconnect_default)
{
	int64_t since = wall_ms();
	tmqtt *c = connect_ok(&dev_full, "lc-maint", 4);
	json_t *connected = expect_connected("lc-maint", 1, &dev_full, since);

	ck_assert_int_eq(tsim_api_request(&fx, "POST", "/_sim/disconnect", "iot",
					  "{\"clientId\":\"lc-maint\"}"),
			 200);
	expect_disconnected("lc-maint", 1, connected, "SERVER_INITIATED_DISCONNECT", 0);
	ck_assert_int_eq(tmqtt_wait_closed(c, 3 * SECOND), 1);
	tmqtt_free(c);
	json_decref(connected);
}
END_TEST

START_TEST(test_lifecycle_sim_disconnect_reason)
{
	int64_t since = wall_ms();
	tmqtt *c = connect_ok(&dev_full, "lc-throttle", 5);
	json_t *connected = expect_connected("lc-throttle", 1, &dev_full, since);

	ck_assert_int_eq(tsim_api_request(&fx, "POST", "/_sim/disconnect", "iotdata",
					  "{\"clientId\":\"lc-throttle\",\"reason\":\"THROTTLED\"}"),
			 200);
	expect_disconnected("lc-throttle", 1, connected, "THROTTLED", 0);
	tmqtt_free(c);
	json_decref(connected);
}
END_TEST

START_TEST(test_lifecycle_sim_disconnect_errors)
{
	tmqtt *c = connect_ok(&dev_full, "lc-keep", 5);

	ck_assert_int_eq(tsim_api_request(&fx, "POST", "/_sim/disconnect", "iot",
					  "{\"clientId\":\"lc-nobody\"}"),
			 404);
	/* A client's own DISCONNECT is no reason a server can give. */
	ck_assert_int_eq(tsim_api_request(&fx, "POST", "/_sim/disconnect", "iot",
					  "{\"clientId\":\"lc-keep\","
					  "\"reason\":\"CLIENT_INITIATED_DISCONNECT\"}"),
			 400);
	ck_assert_int_eq(tsim_api_request(&fx, "POST", "/_sim/disconnect", "iot",
					  "{\"reason\":\"SERVER_INITIATED_DISCONNECT\"}"),
			 400);
	ck_assert_int_eq(tmqtt_connected(c), 1);
	tmqtt_free(c);
}
END_TEST

START_TEST(test_lifecycle_wildcard_client_id_silent)
{
	int64_t since = wall_ms();
	tmqtt *c = connect_ok(&dev_full, "lc+plus", 5);
	json_t *marker;

	tmqtt_free(c);
	/* Events are published in order, so once a later client's event has
	 * arrived, any event for lc+plus would have arrived too. */
	c = connect_ok(&dev_full, "lc-marker", 5);
	marker = expect_connected("lc-marker", 1, &dev_full, since);
	ck_assert_int_eq(tmqtt_message_count(observer, "$aws/events/presence/connected/lc+plus"),
			 0);
	ck_assert_int_eq(
		tmqtt_message_count(observer, "$aws/events/presence/disconnected/lc+plus"), 0);
	tmqtt_free(c);
	json_decref(marker);
}
END_TEST

START_TEST(test_lifecycle_connect_failed)
{
	tmqtt_options o = tsim_client_options(&fx, &dev_refused, "lc-refused", 5);
	int64_t since = wall_ms();
	tmqtt *c = NULL;
	json_t *ev;
	int code;

	ck_assert_str_eq(tmqtt_outcome_name(tmqtt_connect(&c, &o, &code)), "refused");
	ev = wait_event("connect_failed", "lc-refused", 1);
	ck_assert_str_eq(member_string(ev, "clientId"), "lc-refused");
	ck_assert_str_eq(member_string(ev, "eventType"), "connect_failed");
	ck_assert_str_eq(member_string(ev, "connectFailureReason"), "AUTHORIZATION_FAILED");
	ck_assert_str_eq(member_string(ev, "principalIdentifier"), dev_refused.cert_id);
	ck_assert_str_eq(member_string(ev, "ipAddress"), "127.0.0.1");
	ck_assert_int_gt(strlen(member_string(ev, "sessionIdentifier")), 0);
	ck_assert_int_ge(member_integer(ev, "timestamp"), since);
	ck_assert_int_eq(tmqtt_message_count(observer, "$aws/events/presence/connected/lc-refused"),
			 0);
	tmqtt_free(c);
	json_decref(ev);
}
END_TEST

START_TEST(test_lifecycle_receive_denied)
{
	tmqtt *blind = connect_ok(&dev_blind, "lc-blind", 5);
	int64_t since = wall_ms();
	tmqtt *c;
	json_t *connected;
	int code;

	ck_assert_str_eq(
		tmqtt_outcome_name(tmqtt_subscribe(blind, "$aws/events/presence/#", 1, &code)),
		"ok");
	c = connect_ok(&dev_full, "lc-seen", 5);
	connected = expect_connected("lc-seen", 1, &dev_full, since);
	tmqtt_free(c);
	json_decref(connected);
	json_decref(wait_event("disconnected", "lc-seen", 1));
	/* The observer got both events; the subscriber without iot:Receive on
	 * the presence topics got none. */
	ck_assert_int_eq(tmqtt_received_total(blind), 0);
	ck_assert_int_eq(tmqtt_connected(blind), 1);
	tmqtt_free(blind);
}
END_TEST

/* A broker with lifecycle_events off publishes nothing on the presence topics. */
START_TEST(test_lifecycle_events_off)
{
	tsim quiet;
	tsim_device dev;
	tmqtt_options o;
	tmqtt *watcher = NULL, *c = NULL;
	int code;

	tsim_init(&quiet);
	tsim_device_create(&quiet, "full", &dev);
	tsim_policy_put(&quiet, "full", policy_full);
	tsim_attach(&quiet, "full", &dev);
	tsim_option(&quiet, "lifecycle_events", "off");
	tsim_start(&quiet);
	o = tsim_client_options(&quiet, &dev, "off-watcher", 5);
	ck_assert_str_eq(tmqtt_outcome_name(tmqtt_connect(&watcher, &o, &code)), "ok");
	ck_assert_str_eq(
		tmqtt_outcome_name(tmqtt_subscribe(watcher, "$aws/events/presence/#", 1, &code)),
		"ok");
	ck_assert_str_eq(tmqtt_outcome_name(tmqtt_subscribe(watcher, "off/done", 1, &code)), "ok");
	o.client_id = "off-device";
	ck_assert_str_eq(tmqtt_outcome_name(tmqtt_connect(&c, &o, &code)), "ok");
	/* A message published after the connect arrives after any event would. */
	ck_assert_str_eq(tmqtt_outcome_name(tmqtt_publish(c, "off/done", "x", 1, 0, &code)), "ok");
	ck_assert_int_eq(tmqtt_wait_message(watcher, "off/done", 3 * SECOND), 1);
	ck_assert_int_eq(tmqtt_received_total(watcher), 1);
	tmqtt_free(c);
	tmqtt_free(watcher);
	tsim_cleanup(&quiet);
}
END_TEST

static Suite *lifecycle_suite(void)
{
	Suite *s = suite_create("sim_lifecycle");
	TCase *tc = tcase_create("events");
	TCase *off = tcase_create("off");

	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_add_checked_fixture(tc, observer_start, observer_stop);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_lifecycle_client_disconnect);
	tcase_add_test(tc, test_lifecycle_version_grows);
	tcase_add_test(tc, test_lifecycle_connection_lost);
	tcase_add_test(tc, test_lifecycle_authorization_disconnect);
	tcase_add_test(tc, test_lifecycle_certificate_deactivated);
	tcase_add_test(tc, test_lifecycle_size_violation);
	tcase_add_test(tc, test_lifecycle_takeover);
	tcase_add_test(tc, test_lifecycle_delete_connection);
	tcase_add_test(tc, test_lifecycle_delete_unknown_404);
	tcase_add_test(tc, test_lifecycle_sim_disconnect_default);
	tcase_add_test(tc, test_lifecycle_sim_disconnect_reason);
	tcase_add_test(tc, test_lifecycle_sim_disconnect_errors);
	tcase_add_test(tc, test_lifecycle_wildcard_client_id_silent);
	tcase_add_test(tc, test_lifecycle_connect_failed);
	tcase_add_test(tc, test_lifecycle_receive_denied);
	suite_add_tcase(s, tc);
	tcase_set_timeout(off, 60);
	tcase_add_test(off, test_lifecycle_events_off);
	suite_add_tcase(s, off);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(lifecycle_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
