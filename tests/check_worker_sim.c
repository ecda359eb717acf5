/*
 * Integration tests of the worker against the simulator (mosquitto with the
 * policylag plugin): AWS IoT policy evaluation, per-connection policy
 * snapshots refreshed every 3 s (propagation ttl:3s), a new connection
 * authorized with the current policy at once, and the default CONNECT quota
 * of one per second per client id left on.
 *
 * The swap makes a new default version of the devices' policy. Expected:
 * every device sees the effect (keep-connection at its connection's next
 * refresh, reconnect-per-attempt at its next attempt), the reconnect devices
 * are never throttled, and the worker's certificate ids equal AWS's
 * (SHA-256 of the DER) as the simulator computes them.
 *
 * The trigger-topic case runs the simulator's rule instead: a publish to
 * hoge/req/<id> swaps the publishing certificate's policies and publishes a
 * response on hoge/res/<publisher's client id>, so a watcher subscribed to hoge/res/#
 * learns from the broker which client id published each trigger.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "common/clock.h"
#include "tests/check_worker_coord.h"
#include "tests/support/sim_fixture.h"
#include "workers/protocol.h"

#define WAIT_NS (30 * PL_NS_PER_S)
#define DEVICES 4

static tsim fx;
static tsim_device dev[DEVICES];
static wcoord C;
static uint32_t throttled;

/* Connect, publish and subscribe anywhere; receive only where allowed. */
static const char *const policy_no_receive =
	"{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\","
	"\"Action\":[\"iot:Connect\",\"iot:Publish\",\"iot:Subscribe\"],\"Resource\":\"*\"}]}";

static const char *const policy_receive =
	"{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\","
	"\"Action\":[\"iot:Connect\",\"iot:Publish\",\"iot:Subscribe\",\"iot:Receive\"],"
	"\"Resource\":\"*\"}]}";

/* As policy_no_receive, but iot:Connect only for the client ids dev0 to dev2. */
static const char *const policy_no_connect_dev3 =
	"{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\","
	"\"Action\":[\"iot:Publish\",\"iot:Subscribe\"],\"Resource\":\"*\"},"
	"{\"Effect\":\"Allow\",\"Action\":\"iot:Connect\",\"Resource\":["
	"\"arn:aws:iot:*:*:client/dev0\",\"arn:aws:iot:*:*:client/dev1\","
	"\"arn:aws:iot:*:*:client/dev2\"]}]}";

static void count_throttles(wcoord *c, const wp_msg *m)
{
	(void)c;
	if (m->type == WP_MSG_EVENT && m->u.event.kind == WP_EV_THROTTLED)
		throttled++;
}

static void setup_sim(const char *initial_policy)
{
	char name[16];

	tsim_init(&fx);
	tsim_policy_put(&fx, "probe", initial_policy);
	for (int i = 0; i < DEVICES; i++) {
		snprintf(name, sizeof(name), "dev%d", i);
		tsim_device_create(&fx, name, &dev[i]);
		tsim_attach(&fx, "probe", &dev[i]);
	}
	fx.options.propagation = "ttl:3s";
	tsim_start(&fx);
}

/* The TRIGGERED replies, by device, and the last one for an index beyond them. */
static wp_triggered triggered[DEVICES];
static wp_triggered triggered_other;
static uint32_t triggered_count;

static void count_replies(wcoord *c, const wp_msg *m)
{
	count_throttles(c, m);
	if (m->type != WP_MSG_TRIGGERED)
		return;
	if (m->u.triggered.device < DEVICES)
		triggered[m->u.triggered.device] = m->u.triggered;
	else
		triggered_other = m->u.triggered;
	triggered_count++;
}

static void teardown(void)
{
	wcoord_kill(&C);
	tsim_cleanup(&fx);
}

static void start_worker(void)
{
	wp_msg m = { .type = WP_MSG_HELLO };
	wbroker log_dir = { 0 };

	m.u.hello.version = WP_VERSION;
	m.u.hello.log_level = 2;
	/* SNI "localhost": the simulator's server certificate names it. */
	snprintf(m.u.hello.host, sizeof(m.u.hello.host), "localhost");
	m.u.hello.port = (uint16_t)sim_mqtt_port(fx.sim);
	snprintf(m.u.hello.ca_path, sizeof(m.u.hello.ca_path), "%s", sim_ca_path(fx.sim));
	m.u.hello.keepalive_s = 60;
	m.u.hello.connect_timeout_s = 10;
	snprintf(log_dir.dir, sizeof(log_dir.dir), "%s", fx.dir);
	throttled = 0;
	ck_assert_int_eq(wcoord_start(&C, &log_dir, &m), 0);
	C.on_msg = count_throttles;
}

static void send_group(uint16_t id, wp_strategy strategy, wp_direction direction, int version)
{
	wp_msg m = { .type = WP_MSG_GROUP };

	m.u.group.id = id;
	snprintf(m.u.group.name, sizeof(m.u.group.name), "%s",
		 strategy == WP_STRATEGY_KEEP ? "keep" : "reconnect");
	m.u.group.strategy = (uint8_t)strategy;
	m.u.group.direction = (uint8_t)direction;
	m.u.group.mqtt_version = (uint8_t)version;
	m.u.group.qos = 1;
	m.u.group.probe_mode = WP_PROBE_ECHO;
	m.u.group.client_ids = WP_CLIENT_ID_FIXED;
	m.u.group.probe_interval_ns = 250 * PL_NS_PER_MS;
	m.u.group.attempt_window_ns = 1000 * PL_NS_PER_MS;
	m.u.group.attempt_interval_ns = 1500 * PL_NS_PER_MS;
	m.u.group.observe_timeout_ns = 20 * PL_NS_PER_S;
	m.u.group.confirm_ns = 1000 * PL_NS_PER_MS;
	ck_assert_int_eq(wcoord_send(&C, &m), 0);
}

/* Devices 0-1 keep their connection, 2-3 reconnect per attempt. */
static void send_devices(void)
{
	for (uint32_t i = 0; i < DEVICES; i++) {
		wp_msg m = { .type = WP_MSG_DEVICE };

		m.u.device.index = i;
		m.u.device.group = i < 2 ? 0 : 1;
		snprintf(m.u.device.client_id, sizeof(m.u.device.client_id), "%s", dev[i].name);
		snprintf(m.u.device.cert_path, sizeof(m.u.device.cert_path), "%s", dev[i].cert_path);
		snprintf(m.u.device.key_path, sizeof(m.u.device.key_path), "%s", dev[i].key_path);
		snprintf(m.u.device.probe_topic, sizeof(m.u.device.probe_topic), "probe/%s",
			 dev[i].name);
		ck_assert_int_eq(wcoord_send(&C, &m), 0);
	}
}

/* Runs one swap from the current policy to `after`; checks the records. */
static void run_swap(wp_direction direction, int version, const char *after)
{
	int64_t t_start;
	int status;

	start_worker();
	send_group(0, WP_STRATEGY_KEEP, direction, version);
	send_group(1, WP_STRATEGY_RECONNECT, direction, version);
	send_devices();
	ck_assert_int_eq(wcoord_phase(&C, WP_PHASE_CONNECT), 0);
	wcoord_pump_until(&C, &C.connected, DEVICES, WAIT_NS);
	ck_assert_uint_ge(C.connected, DEVICES);
	ck_assert_int_eq(wcoord_phase(&C, WP_PHASE_PROBE), 0);
	wcoord_pump_for(&C, 1500 * PL_NS_PER_MS);
	t_start = wcoord_swap(&C, WP_SWAP_STARTED);
	tsim_policy_put(&fx, "probe", after);
	wcoord_swap(&C, WP_SWAP_DONE);
	wcoord_pump_until(&C, &C.effects, DEVICES, WAIT_NS);
	ck_assert_uint_eq(C.effects, DEVICES);
	status = wcoord_finish(&C, WAIT_NS);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	ck_assert_uint_eq(C.records, DEVICES);
	ck_assert_uint_eq(throttled, 0);
	for (uint32_t i = 0; i < DEVICES; i++) {
		const wp_record *r = &C.rec[i];

		ck_assert_uint_eq(r->censored, 0);
		ck_assert_int_ge(r->t_effect_ns, t_start);
		ck_assert_str_eq(r->cert_id, dev[r->device].cert_id);
		if (r->strategy == WP_STRATEGY_KEEP)
			ck_assert_uint_eq(r->connects, 1); /* the connection in use at the swap */
	}
}

START_TEST(test_worker_sim_grant_mqtt5)
{
	setup_sim(policy_no_receive);
	run_swap(WP_DIRECTION_GRANT, 5, policy_receive);
}
END_TEST

START_TEST(test_worker_sim_revoke_mqtt311)
{
	setup_sim(policy_receive);
	run_swap(WP_DIRECTION_REVOKE, 4, policy_no_receive);
}
END_TEST

/* Starts the simulator with the trigger rule, and a watcher subscribed to its responses. */
static tmqtt *setup_trigger_rule(tsim_device *watcher)
{
	tmqtt_options o;
	tmqtt *c = NULL;
	int code = -1;

	tsim_init(&fx);
	tsim_policy_put(&fx, "probe", policy_no_receive);
	tsim_policy_put(&fx, "after", policy_receive);
	tsim_policy_put(&fx, "watch", policy_receive);
	for (int i = 0; i < DEVICES; i++) {
		char name[16];

		snprintf(name, sizeof(name), "dev%d", i);
		tsim_device_create(&fx, name, &dev[i]);
		tsim_attach(&fx, "probe", &dev[i]);
	}
	tsim_device_create(&fx, "watcher", watcher);
	tsim_attach(&fx, "watch", watcher);
	fx.options.propagation = "ttl:3s";
	tsim_option(&fx, "rule_topic", "hoge/req/+");
	tsim_option(&fx, "rule_attach", "after");
	tsim_option(&fx, "rule_detach", "probe");
	tsim_option(&fx, "rule_response_topic", "hoge/res/${clientid}");
	tsim_start(&fx);
	o = tsim_client_options(&fx, watcher, "watcher", 4);
	ck_assert_int_eq(tmqtt_connect(&c, &o, &code), TMQTT_OK);
	ck_assert_int_eq(tmqtt_subscribe(c, "hoge/res/#", 1, &code), TMQTT_OK);
	return c;
}

static void send_trigger(uint32_t device)
{
	wp_msg m = { .type = WP_MSG_TRIGGER };

	m.u.trigger.device = device;
	m.u.trigger.qos = 1;
	snprintf(m.u.trigger.topic, sizeof(m.u.trigger.topic), "hoge/req/%s", dev[device].name);
	snprintf(m.u.trigger.payload, sizeof(m.u.trigger.payload), "{\"trigger\":true}");
	ck_assert_int_eq(wcoord_send(&C, &m), 0);
}

/*
 * Each device publishes its trigger on its own connection, with its own
 * client id: keep-connection devices at once, reconnect-per-attempt devices
 * (idle between attempts part of the time) after their next SUBACK. The
 * rule's responses name those client ids, the swap reaches every device,
 * and each record's t_swap_start is the reported publish time.
 */
START_TEST(test_worker_sim_trigger_own_connection)
{
	tsim_device watcher;
	tmqtt *watch = setup_trigger_rule(&watcher);
	int status;

	triggered_count = 0;
	memset(triggered, 0, sizeof(triggered));
	start_worker();
	C.on_msg = count_replies;
	send_group(0, WP_STRATEGY_KEEP, WP_DIRECTION_GRANT, 4);
	send_group(1, WP_STRATEGY_RECONNECT, WP_DIRECTION_GRANT, 5);
	send_devices();
	ck_assert_int_eq(wcoord_phase(&C, WP_PHASE_CONNECT), 0);
	wcoord_pump_until(&C, &C.connected, DEVICES, WAIT_NS);
	ck_assert_uint_ge(C.connected, DEVICES);
	ck_assert_int_eq(wcoord_phase(&C, WP_PHASE_PROBE), 0);
	wcoord_pump_for(&C, 1000 * PL_NS_PER_MS);
	for (uint32_t i = 0; i < DEVICES; i++)
		send_trigger(i);
	wcoord_pump_until(&C, &triggered_count, DEVICES, WAIT_NS);
	ck_assert_uint_eq(triggered_count, DEVICES);
	for (uint32_t i = 0; i < DEVICES; i++) {
		char topic[64];

		ck_assert_uint_eq(triggered[i].outcome, WP_TRIGGER_ACKED);
		ck_assert_str_eq(triggered[i].client_id, dev[i].name);
		ck_assert_int_gt(triggered[i].t_sent_ns, 0);
		snprintf(topic, sizeof(topic), "hoge/res/%s", dev[i].name);
		ck_assert_msg(tmqtt_wait_message(watch, topic, 10 * PL_NS_PER_S),
			      "the rule did not answer a trigger from client id %s", dev[i].name);
	}
	wcoord_pump_until(&C, &C.effects, DEVICES, WAIT_NS);
	ck_assert_uint_eq(C.effects, DEVICES);
	status = wcoord_finish(&C, WAIT_NS);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	ck_assert_uint_eq(C.records, DEVICES);
	/* Every response went to a device's own client id, none to another one. */
	ck_assert_int_eq(tmqtt_received_total(watch), DEVICES);
	for (uint32_t i = 0; i < DEVICES; i++) {
		const wp_record *r = &C.rec[i];

		ck_assert_uint_eq(r->censored, 0);
		ck_assert_int_eq(r->t_swap_start_ns, triggered[r->device].t_sent_ns);
		ck_assert_int_eq(r->t_swap_ns, 0);
		ck_assert_int_ge(r->t_effect_ns, r->t_swap_start_ns);
		if (r->strategy == WP_STRATEGY_KEEP)
			ck_assert_uint_eq(r->connects, 1); /* never taken over */
	}
	tmqtt_free(watch);
}
END_TEST

/*
 * A device whose policy denies iot:Connect never gets a connection, so its
 * trigger waits for a SUBACK until the drain and is reported as not sent,
 * and no detection starts for it. A TRIGGER for a device the worker does
 * not have is rejected at once.
 */
START_TEST(test_worker_sim_trigger_never_sent)
{
	int status;

	setup_sim(policy_no_connect_dev3);
	triggered_count = 0;
	memset(triggered, 0, sizeof(triggered));
	memset(&triggered_other, 0, sizeof(triggered_other));
	start_worker();
	C.on_msg = count_replies;
	send_group(0, WP_STRATEGY_KEEP, WP_DIRECTION_GRANT, 5);
	send_group(1, WP_STRATEGY_RECONNECT, WP_DIRECTION_GRANT, 4);
	send_devices();
	ck_assert_int_eq(wcoord_phase(&C, WP_PHASE_CONNECT), 0);
	wcoord_pump_until(&C, &C.connected, DEVICES - 1, WAIT_NS);
	ck_assert_int_eq(wcoord_phase(&C, WP_PHASE_PROBE), 0);
	send_trigger(3);
	{
		wp_msg m = { .type = WP_MSG_TRIGGER };

		m.u.trigger.device = 99;
		m.u.trigger.qos = 1;
		snprintf(m.u.trigger.topic, sizeof(m.u.trigger.topic), "hoge/req/nobody");
		ck_assert_int_eq(wcoord_send(&C, &m), 0);
	}
	wcoord_pump_until(&C, &triggered_count, 1, WAIT_NS);
	ck_assert_uint_eq(triggered_other.device, 99);
	ck_assert_uint_eq(triggered_other.outcome, WP_TRIGGER_NOT_SENT);
	wcoord_pump_for(&C, 2 * PL_NS_PER_S);
	/* Device 3 is still waiting for a SUBACK. */
	ck_assert_msg(triggered_count == 1, "device 3's trigger ended before the drain: %s",
		      triggered[3].text);
	status = wcoord_finish(&C, WAIT_NS);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	ck_assert_uint_eq(triggered_count, 2);
	ck_assert_uint_eq(triggered[3].device, 3);
	ck_assert_uint_eq(triggered[3].outcome, WP_TRIGGER_NOT_SENT);
	ck_assert_int_eq(triggered[3].t_sent_ns, 0);
	ck_assert_uint_eq(C.records, 0);
}
END_TEST

static Suite *sim_suite(void)
{
	Suite *s = suite_create("worker_sim");
	TCase *tc = tcase_create("simulator");

	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_worker_sim_grant_mqtt5);
	tcase_add_test(tc, test_worker_sim_revoke_mqtt311);
	tcase_add_test(tc, test_worker_sim_trigger_own_connection);
	tcase_add_test(tc, test_worker_sim_trigger_never_sent);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(sim_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
