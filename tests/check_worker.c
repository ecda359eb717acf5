/*
 * Integration tests for the worker process: the test plays the coordinator,
 * drives `policylag worker` over a socketpair with the protocol, against a
 * real mosquitto 2.0 with TLS and client certificates on loopback.
 *
 * The policy change is made with mosquitto's ACL file: identities come from
 * the certificate's CN (use_identity_as_username), and a SIGHUP reloads the
 * ACL, which mosquitto then applies to every later delivery of existing
 * connections. A grant allows read on the probe topics, a revoke denies it,
 * so the expected effects follow from mosquitto's documented ACL behaviour.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "common/clock.h"
#include "tests/check_worker_broker.h"
#include "tests/check_worker_coord.h"
#include "workers/protocol.h"

#define WAIT_NS (20 * PL_NS_PER_S)

static const char *const cert_names[] = { "dev0", "dev1", "dev2", "prober" };

static wbroker B;
static wcoord C;

static void broker_start(const char *access)
{
	ck_assert_int_eq(wbroker_start(&B, access, cert_names, 4), 0);
}

static void worker_start(void)
{
	wp_msg hello;

	wcoord_hello(&B, &hello);
	ck_assert_int_eq(wcoord_start(&C, &B, &hello), 0);
}

static void coord_send(const wp_msg *m)
{
	ck_assert_int_eq(wcoord_send(&C, m), 0);
}

static void send_group(uint16_t id, wp_strategy strategy, wp_direction direction, int version,
		       int qos, wp_probe_mode mode)
{
	wp_msg m = { .type = WP_MSG_GROUP };

	m.u.group.id = id;
	snprintf(m.u.group.name, sizeof(m.u.group.name), "g%u", (unsigned)id);
	m.u.group.strategy = (uint8_t)strategy;
	m.u.group.direction = (uint8_t)direction;
	m.u.group.mqtt_version = (uint8_t)version;
	m.u.group.qos = (uint8_t)qos;
	m.u.group.probe_mode = (uint8_t)mode;
	m.u.group.client_ids = WP_CLIENT_ID_FIXED;
	m.u.group.probe_interval_ns = 200 * PL_NS_PER_MS;
	m.u.group.attempt_window_ns = 1200 * PL_NS_PER_MS;
	m.u.group.attempt_interval_ns = 1500 * PL_NS_PER_MS;
	m.u.group.observe_timeout_ns = 15 * PL_NS_PER_S;
	m.u.group.confirm_ns = 1000 * PL_NS_PER_MS;
	coord_send(&m);
}

static void send_device(uint32_t index, uint16_t group)
{
	char name[16];

	snprintf(name, sizeof(name), "dev%u", index);
	ck_assert_int_eq(wcoord_device(&C, &B, index, group, name), 0);
}

static void send_phase(wp_phase phase)
{
	ck_assert_int_eq(wcoord_phase(&C, phase), 0);
}

static int64_t send_swap(wp_swap_kind kind)
{
	int64_t t = wcoord_swap(&C, kind);

	ck_assert_int_gt(t, 0);
	return t;
}

static void pump_until(const uint32_t *counter, uint32_t target)
{
	wcoord_pump_until(&C, counter, target, WAIT_NS);
}

static void pump_for(int64_t ns)
{
	wcoord_pump_for(&C, ns);
}

static int worker_finish(void)
{
	return wcoord_finish(&C, WAIT_NS);
}

static void broker_set_access(const char *access)
{
	ck_assert_int_eq(wbroker_set_access(&B, access), 0);
}

static void setup(void)
{
	memset(&B, 0, sizeof(B));
	memset(&C, 0, sizeof(C));
}

static void teardown(void)
{
	wcoord_kill(&C);
	wbroker_stop(&B);
}

/* Runs the grant scenario for two devices of one group; returns after DONE. */
static void run_grant(wp_strategy strategy, int version, int qos, wp_probe_mode mode)
{
	int64_t t_start;
	int64_t t_done;
	int status;

	broker_start("write");
	worker_start();
	send_group(0, strategy, WP_DIRECTION_GRANT, version, qos, mode);
	send_device(0, 0);
	send_device(1, 0);
	send_phase(WP_PHASE_CONNECT);
	pump_until(&C.connected, 2);
	ck_assert_uint_ge(C.connected, 2);
	send_phase(WP_PHASE_PROBE);
	pump_for(1000 * PL_NS_PER_MS);
	/* Before the grant nothing may be delivered: no early effect. */
	ck_assert_uint_eq(C.effects, 0);
	t_start = send_swap(WP_SWAP_STARTED);
	broker_set_access("readwrite");
	t_done = send_swap(WP_SWAP_DONE);
	pump_until(&C.effects, 2);
	ck_assert_uint_eq(C.effects, 2);
	status = worker_finish();
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	ck_assert_uint_eq(C.records, 2);
	for (int i = 0; i < 2; i++) {
		ck_assert_uint_eq(C.rec[i].censored, 0);
		ck_assert_uint_eq(C.rec[i].direction, WP_DIRECTION_GRANT);
		ck_assert_int_eq(C.rec[i].t_swap_start_ns, t_start);
		ck_assert_int_eq(C.rec[i].t_swap_ns, t_done);
		ck_assert_int_ge(C.rec[i].t_effect_ns, t_start);
		ck_assert_int_eq(C.rec[i].latency_ns, C.rec[i].t_effect_ns - t_done);
		ck_assert_str_eq(C.rec[i].group, "g0");
		ck_assert_uint_eq(strlen(C.rec[i].cert_id), 64);
	}
	ck_assert_uint_gt(C.timings, 0);
}

START_TEST(test_worker_keep_grant_mqtt311)
{
	run_grant(WP_STRATEGY_KEEP, 4, 0, WP_PROBE_ECHO);
	/* It stayed on its first connection, which the counts include. */
	ck_assert_uint_eq(C.rec[0].connects, 1);
	ck_assert_uint_eq(C.rec[0].attempts, 1);
}
END_TEST

START_TEST(test_worker_keep_grant_mqtt5_qos1)
{
	run_grant(WP_STRATEGY_KEEP, 5, 1, WP_PROBE_ECHO);
}
END_TEST

START_TEST(test_worker_reconnect_grant_mqtt5)
{
	run_grant(WP_STRATEGY_RECONNECT, 5, 0, WP_PROBE_ECHO);
	ck_assert_uint_ge(C.rec[0].attempts + C.rec[1].attempts, 1);
}
END_TEST

START_TEST(test_worker_prober_grant_mqtt311)
{
	run_grant(WP_STRATEGY_KEEP, 4, 0, WP_PROBE_PROBER);
}
END_TEST

static void run_revoke(wp_strategy strategy, int version)
{
	int64_t t_start;
	int status;

	broker_start("readwrite");
	worker_start();
	send_group(0, strategy, WP_DIRECTION_REVOKE, version, 0, WP_PROBE_ECHO);
	send_device(0, 0);
	send_device(1, 0);
	send_phase(WP_PHASE_CONNECT);
	pump_until(&C.connected, 2);
	send_phase(WP_PHASE_PROBE);
	pump_for(1500 * PL_NS_PER_MS);
	t_start = send_swap(WP_SWAP_STARTED);
	broker_set_access("write");
	send_swap(WP_SWAP_DONE);
	pump_until(&C.effects, 2);
	ck_assert_uint_eq(C.effects, 2);
	status = worker_finish();
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	ck_assert_uint_eq(C.records, 2);
	for (int i = 0; i < 2; i++) {
		ck_assert_uint_eq(C.rec[i].censored, 0);
		ck_assert_uint_eq(C.rec[i].direction, WP_DIRECTION_REVOKE);
		ck_assert_int_ge(C.rec[i].t_effect_ns, t_start);
	}
}

START_TEST(test_worker_keep_revoke_mqtt5)
{
	run_revoke(WP_STRATEGY_KEEP, 5);
}
END_TEST

START_TEST(test_worker_reconnect_revoke_mqtt311)
{
	run_revoke(WP_STRATEGY_RECONNECT, 4);
}
END_TEST

/* With no policy change, the detection ends censored at the drain. */
START_TEST(test_worker_no_change_censored)
{
	int status;

	broker_start("write");
	worker_start();
	send_group(0, WP_STRATEGY_KEEP, WP_DIRECTION_GRANT, 4, 0, WP_PROBE_ECHO);
	send_device(0, 0);
	send_phase(WP_PHASE_CONNECT);
	pump_until(&C.connected, 1);
	send_phase(WP_PHASE_PROBE);
	send_swap(WP_SWAP_STARTED);
	pump_for(1000 * PL_NS_PER_MS);
	status = worker_finish();
	ck_assert(WIFEXITED(status));
	ck_assert_uint_eq(C.effects, 0);
	ck_assert_uint_eq(C.records, 1);
	ck_assert_uint_eq(C.rec[0].censored, 1);
	ck_assert_int_eq(C.rec[0].t_swap_ns, 0);
}
END_TEST

/* A certificate the broker's CA did not sign cannot connect: failures are reported. */
START_TEST(test_worker_connect_failure_reported)
{
	char cmd[600];
	int status;

	broker_start("readwrite");
	snprintf(cmd, sizeof(cmd),
		 "cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
		 "-keyout dev2.key -out dev2.pem -days 2 -subj /CN=dev2 >/dev/null 2>&1", B.dir);
	ck_assert_int_eq(system(cmd), 0);
	worker_start();
	send_group(0, WP_STRATEGY_KEEP, WP_DIRECTION_GRANT, 5, 0, WP_PROBE_ECHO);
	send_device(2, 0);
	send_phase(WP_PHASE_CONNECT);
	pump_until(&C.connect_failures, 1);
	ck_assert_uint_ge(C.connect_failures, 1);
	ck_assert_uint_eq(C.connected, 0);
	status = worker_finish();
	ck_assert(WIFEXITED(status));
}
END_TEST

/* With a shared prober topic, one publish per interval reaches every device. */
START_TEST(test_worker_prober_shared_topic)
{
	static const char *const before = "user prober\ntopic write probe/#\n";
	static const char *const after =
		"pattern read probe/shared\nuser prober\ntopic write probe/#\n";
	wp_msg m;
	int status;

	broker_start("write");
	ck_assert_int_eq(wbroker_write(B.acl, before), 0);
	ck_assert_int_eq(kill(B.pid, SIGHUP), 0);
	wcoord_hello(&B, &m);
	snprintf(m.u.hello.prober_topic, sizeof(m.u.hello.prober_topic), "probe/shared");
	ck_assert_int_eq(wcoord_start(&C, &B, &m), 0);
	send_group(0, WP_STRATEGY_KEEP, WP_DIRECTION_GRANT, 5, 1, WP_PROBE_PROBER);
	send_device(0, 0);
	send_device(1, 0);
	send_phase(WP_PHASE_CONNECT);
	pump_until(&C.connected, 2);
	send_phase(WP_PHASE_PROBE);
	pump_for(1000 * PL_NS_PER_MS);
	ck_assert_uint_eq(C.effects, 0);
	send_swap(WP_SWAP_STARTED);
	ck_assert_int_eq(wbroker_write(B.acl, after), 0);
	ck_assert_int_eq(kill(B.pid, SIGHUP), 0);
	send_swap(WP_SWAP_DONE);
	pump_until(&C.effects, 2);
	ck_assert_uint_eq(C.effects, 2);
	status = worker_finish();
	ck_assert(WIFEXITED(status));
	ck_assert_uint_eq(C.records, 2);
	ck_assert_uint_eq(C.rec[0].censored, 0);
	ck_assert_uint_eq(C.rec[1].censored, 0);
}
END_TEST

/*
 * Devices spread over HELLO destinations round-robin. Both forms reach the
 * same broker here: a host name (SNI "localhost") and a loopback address
 * (paho then sends "127.0.0.1" as SNI, which mosquitto does not check).
 */
START_TEST(test_worker_destinations_spread)
{
	wp_msg m;
	int status;

	broker_start("readwrite");
	wcoord_hello(&B, &m);
	m.u.hello.dest_count = 2;
	snprintf(m.u.hello.dest[0], sizeof(m.u.hello.dest[0]), "localhost:%d", B.port);
	snprintf(m.u.hello.dest[1], sizeof(m.u.hello.dest[1]), "127.0.0.1:%d", B.port);
	ck_assert_int_eq(wcoord_start(&C, &B, &m), 0);
	send_group(0, WP_STRATEGY_KEEP, WP_DIRECTION_GRANT, 5, 0, WP_PROBE_ECHO);
	send_device(0, 0);
	send_device(1, 0);
	send_phase(WP_PHASE_CONNECT);
	pump_until(&C.subscribed, 2);
	ck_assert_uint_eq(C.subscribed, 2);
	ck_assert_uint_eq(C.connect_failures, 0);
	status = worker_finish();
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
}
END_TEST

/* A destination that nothing listens on is reported as a connect failure. */
START_TEST(test_worker_destination_refused)
{
	wp_msg m;

	broker_start("readwrite");
	wcoord_hello(&B, &m);
	m.u.hello.dest_count = 1;
	snprintf(m.u.hello.dest[0], sizeof(m.u.hello.dest[0]), "127.0.0.1:%d",
		 wbroker_free_port());
	ck_assert_int_eq(wcoord_start(&C, &B, &m), 0);
	send_group(0, WP_STRATEGY_KEEP, WP_DIRECTION_GRANT, 4, 0, WP_PROBE_ECHO);
	send_device(0, 0);
	send_phase(WP_PHASE_CONNECT);
	pump_until(&C.connect_failures, 1);
	ck_assert_uint_ge(C.connect_failures, 1);
	ck_assert_uint_eq(C.connected, 0);
}
END_TEST

static int64_t last_connect_ns = -2;

static void note_connect_ns(wcoord *c, const wp_msg *m)
{
	(void)c;
	if (m->type == WP_MSG_EVENT && m->u.event.kind == WP_EV_CONNECTED)
		last_connect_ns = m->u.event.connect_ns;
}

/*
 * RATE replaces HELLO's connect rate and moves the slots already reserved:
 * at HELLO's 0.1/s the second device's slot is 10 s after the first, so
 * both later devices can connect within 8 s only at RATE's 100/s.
 */
START_TEST(test_worker_rate_moves_reserved_slots)
{
	wp_msg m;

	broker_start("readwrite");
	wcoord_hello(&B, &m);
	m.u.hello.connect_rate_milli = 100;
	ck_assert_int_eq(wcoord_start(&C, &B, &m), 0);
	C.on_msg = note_connect_ns;
	send_group(0, WP_STRATEGY_KEEP, WP_DIRECTION_GRANT, 4, 0, WP_PROBE_ECHO);
	send_device(0, 0);
	send_device(1, 0);
	send_device(2, 0);
	send_phase(WP_PHASE_CONNECT);
	pump_until(&C.connected, 1);
	ck_assert_uint_eq(C.connected, 1);
	ck_assert_int_ge(last_connect_ns, 0);
	memset(&m, 0, sizeof(m));
	m.type = WP_MSG_RATE;
	m.u.rate.connect_rate_milli = 100 * 1000;
	m.u.rate.t_ns = pl_mono_ns();
	coord_send(&m);
	wcoord_pump_until(&C, &C.connected, 3, 8 * PL_NS_PER_S);
	ck_assert_uint_eq(C.connected, 3);
	ck_assert_uint_eq(C.connect_failures, 0);
}
END_TEST

static Suite *worker_suite(void)
{
	Suite *s = suite_create("worker");
	TCase *tc = tcase_create("mosquitto");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 90);
	tcase_add_test(tc, test_worker_keep_grant_mqtt311);
	tcase_add_test(tc, test_worker_keep_grant_mqtt5_qos1);
	tcase_add_test(tc, test_worker_reconnect_grant_mqtt5);
	tcase_add_test(tc, test_worker_prober_grant_mqtt311);
	tcase_add_test(tc, test_worker_keep_revoke_mqtt5);
	tcase_add_test(tc, test_worker_reconnect_revoke_mqtt311);
	tcase_add_test(tc, test_worker_no_change_censored);
	tcase_add_test(tc, test_worker_connect_failure_reported);
	tcase_add_test(tc, test_worker_prober_shared_topic);
	tcase_add_test(tc, test_worker_destinations_spread);
	tcase_add_test(tc, test_worker_destination_refused);
	tcase_add_test(tc, test_worker_rate_moves_reserved_slots);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(worker_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
