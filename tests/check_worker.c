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
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"
#include "workers/protocol.h"

extern char **environ;

#define WAIT_NS (20 * PL_NS_PER_S)

typedef struct broker {
	char dir[256];
	char ca[300];
	char conf[300];
	char acl[300];
	int port;
	pid_t pid;
} broker;

static broker B;

static int run_quiet(const char *cmd)
{
	return system(cmd);
}

/* Runs argv[0] with argv, stdout and stderr to log; returns the pid. */
static pid_t spawn(char *const argv[], const char *log, int child_fd)
{
	posix_spawn_file_actions_t fa;
	pid_t pid = -1;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0644);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	if (child_fd >= 0)
		posix_spawn_file_actions_adddup2(&fa, child_fd, 3);
	if (posix_spawn(&pid, argv[0], &fa, NULL, argv, environ) != 0)
		pid = -1;
	posix_spawn_file_actions_destroy(&fa);
	return pid;
}

static int free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int port;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

/* One ACL for devices dev0..devN-1 on probe/<name>: "readwrite" or "write". */
static void write_acl(const char *access)
{
	char text[256];

	snprintf(text, sizeof(text), "pattern %s probe/%%u\npattern readwrite prober/%%u\n"
		 "user prober\ntopic write probe/#\n", access);
	write_text(B.acl, text);
}

/* Creates a CA, a server certificate for localhost and client certificates
 * dev0..dev3 and prober, with the openssl command (EC P-256 keys). */
static void make_certs(void)
{
	char cmd[2048];
	static const char *names[] = { "dev0", "dev1", "dev2", "dev3", "prober" };

	snprintf(cmd, sizeof(cmd),
		 "cd %s && umask 077 && "
		 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
		 "-keyout ca.key -out ca.pem -days 2 -subj /CN=test-ca >/dev/null 2>&1 && "
		 "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
		 "-keyout server.key -out server.csr -subj /CN=localhost >/dev/null 2>&1 && "
		 "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > san.ext && "
		 "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
		 "-out server.pem -days 2 -extfile san.ext >/dev/null 2>&1",
		 B.dir);
	ck_assert_int_eq(run_quiet(cmd), 0);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(cmd, sizeof(cmd),
			 "cd %s && umask 077 && "
			 "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
			 "-keyout %s.key -out %s.csr -subj /CN=%s >/dev/null 2>&1 && "
			 "openssl x509 -req -in %s.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
			 "-out %s.pem -days 2 >/dev/null 2>&1",
			 B.dir, names[i], names[i], names[i], names[i], names[i]);
		ck_assert_int_eq(run_quiet(cmd), 0);
	}
}

static int port_open(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int ok;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)port);
	ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

static void broker_start(const char *initial_access)
{
	char conf[2048];
	char log[320];
	struct passwd *pw = getpwuid(geteuid());
	char *argv[] = { (char *)"/usr/sbin/mosquitto", (char *)"-c", B.conf, NULL };

	snprintf(B.dir, sizeof(B.dir), "%s/plworker.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(B.dir));
	snprintf(B.ca, sizeof(B.ca), "%s/ca.pem", B.dir);
	snprintf(B.conf, sizeof(B.conf), "%s/mosquitto.conf", B.dir);
	snprintf(B.acl, sizeof(B.acl), "%s/acl", B.dir);
	snprintf(log, sizeof(log), "%s/mosquitto.log", B.dir);
	make_certs();
	write_acl(initial_access);
	B.port = free_port();
	snprintf(conf, sizeof(conf),
		 "per_listener_settings false\nallow_anonymous false\nacl_file %s\n"
		 "set_tcp_nodelay true\nlog_dest stderr\nlog_type error\nlog_type warning\n"
		 "listener %d 127.0.0.1\ncafile %s\ncertfile %s/server.pem\nkeyfile %s/server.key\n"
		 "require_certificate true\nuse_identity_as_username true\n"
		 /* mosquitto started as root drops to user mosquitto, which
		  * cannot read the 0600 keys; stay the user that made them */
		 "user %s\n",
		 B.acl, B.port, B.ca, B.dir, B.dir, pw != NULL ? pw->pw_name : "root");
	write_text(B.conf, conf);
	B.pid = spawn(argv, log, -1);
	ck_assert_int_gt(B.pid, 0);
	for (int i = 0; i < 200 && !port_open(B.port); i++)
		pl_sleep_ns(25 * PL_NS_PER_MS);
	ck_assert(port_open(B.port));
}

static void broker_stop(void)
{
	char cmd[400];

	if (B.pid > 0) {
		kill(B.pid, SIGTERM);
		waitpid(B.pid, NULL, 0);
		B.pid = 0;
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", B.dir);
	run_quiet(cmd);
}

/* Rewrites the ACL and makes mosquitto reload it. */
static void broker_set_access(const char *access)
{
	write_acl(access);
	ck_assert_int_eq(kill(B.pid, SIGHUP), 0);
}

/* The coordinator side of one worker. */
typedef struct coord {
	wp_chan *chan;
	int fd;
	pid_t pid;
	uint32_t connected;
	uint32_t subscribed;
	uint32_t effects;
	uint32_t records;
	uint32_t done;
	uint32_t connect_failures;
	uint32_t timings;
	wp_record rec[8];
	wp_timing last_timing;
} coord;

static coord C;

static void coord_send(const wp_msg *m)
{
	ck_assert_int_eq(wp_chan_send_wait(C.chan, m, 5 * PL_NS_PER_S, NULL), PL_OK);
}

static void worker_start(void)
{
	const char *bin = getenv("POLICYLAG_BIN");
	int sv[2];
	char log[320];
	char *argv[] = { NULL, (char *)"--log-level", (char *)"info", (char *)"worker",
			 (char *)"--fd", (char *)"3", NULL };
	wp_msg m;

	ck_assert_ptr_nonnull(bin);
	argv[0] = (char *)bin;
	memset(&C, 0, sizeof(C));
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	snprintf(log, sizeof(log), "%s/worker.log", B.dir);
	/* The child's end must survive exec: dup2 onto 3 clears FD_CLOEXEC. */
	C.pid = spawn(argv, log, sv[1]);
	ck_assert_int_gt(C.pid, 0);
	close(sv[1]);
	C.fd = sv[0];
	ck_assert_int_eq(wp_chan_create(&C.chan, C.fd, 1 << 20, NULL), PL_OK);
	memset(&m, 0, sizeof(m));
	m.type = WP_MSG_HELLO;
	m.u.hello.version = WP_VERSION;
	m.u.hello.log_level = 2;
	snprintf(m.u.hello.host, sizeof(m.u.hello.host), "localhost");
	m.u.hello.port = (uint16_t)B.port;
	snprintf(m.u.hello.ca_path, sizeof(m.u.hello.ca_path), "%s", B.ca);
	m.u.hello.keepalive_s = 30;
	m.u.hello.connect_timeout_s = 10;
	snprintf(m.u.hello.prober_client_id, sizeof(m.u.hello.prober_client_id), "prober");
	snprintf(m.u.hello.prober_cert, sizeof(m.u.hello.prober_cert), "%s/prober.pem", B.dir);
	snprintf(m.u.hello.prober_key, sizeof(m.u.hello.prober_key), "%s/prober.key", B.dir);
	m.u.hello.prober_rate_max = 20;
	coord_send(&m);
	ck_assert_int_eq(wp_chan_recv_wait(C.chan, &m, WAIT_NS, NULL), PL_OK);
	ck_assert_uint_eq(m.type, WP_MSG_READY);
	ck_assert_uint_eq(m.u.ready.pid, (uint32_t)C.pid);
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
	wp_msg m = { .type = WP_MSG_DEVICE };

	m.u.device.index = index;
	m.u.device.group = group;
	snprintf(m.u.device.client_id, sizeof(m.u.device.client_id), "dev%u", index);
	snprintf(m.u.device.cert_path, sizeof(m.u.device.cert_path), "%s/dev%u.pem", B.dir, index);
	snprintf(m.u.device.key_path, sizeof(m.u.device.key_path), "%s/dev%u.key", B.dir, index);
	snprintf(m.u.device.probe_topic, sizeof(m.u.device.probe_topic), "probe/dev%u", index);
	coord_send(&m);
}

static void send_phase(wp_phase phase)
{
	wp_msg m = { .type = WP_MSG_PHASE };

	m.u.phase.phase = (uint8_t)phase;
	m.u.phase.t_ns = pl_mono_ns();
	coord_send(&m);
}

static int64_t send_swap(wp_swap_kind kind)
{
	wp_msg m = { .type = WP_MSG_SWAP };

	m.u.swap.kind = (uint8_t)kind;
	m.u.swap.swap_index = 1;
	m.u.swap.first = 0;
	m.u.swap.count = WP_ALL_DEVICES;
	m.u.swap.t_ns = pl_mono_ns();
	coord_send(&m);
	return m.u.swap.t_ns;
}

static void count(const wp_msg *m)
{
	switch (m->type) {
	case WP_MSG_EVENT:
		if (getenv("CHECK_WORKER_VERBOSE") != NULL)
			fprintf(stderr, "event device=%u kind=%u code=%d %s\n", m->u.event.device,
				m->u.event.kind, m->u.event.code, m->u.event.text);
		C.connected += m->u.event.kind == WP_EV_CONNECTED;
		C.subscribed += m->u.event.kind == WP_EV_SUBSCRIBED;
		C.connect_failures += m->u.event.kind == WP_EV_CONNECT_FAILED;
		break;
	case WP_MSG_EFFECT: C.effects++; break;
	case WP_MSG_TIMING:
		if (getenv("CHECK_WORKER_VERBOSE") != NULL)
			fprintf(stderr, "timing device=%u attempt=%u connect_ms=%.2f subscribe_ms=%.2f "
				"rtt_ms=%.2f suback=%d\n", m->u.timing.device, m->u.timing.attempt,
				(double)m->u.timing.connect_ns / 1e6,
				(double)m->u.timing.subscribe_ns / 1e6,
				(double)m->u.timing.probe_rtt_ns / 1e6, m->u.timing.suback_code);
		C.timings++;
		C.last_timing = m->u.timing;
		break;
	case WP_MSG_RECORD:
		if (getenv("CHECK_WORKER_VERBOSE") != NULL)
			fprintf(stderr, "record device=%u censored=%u latency_ms=%.1f attempts=%u "
				"connects=%u failures=%u errors=%u\n", m->u.record.device,
				m->u.record.censored, (double)m->u.record.latency_ns / 1e6,
				m->u.record.attempts, m->u.record.connects,
				m->u.record.connect_failures, m->u.record.errors);
		if (C.records < 8)
			C.rec[C.records] = m->u.record;
		C.records++;
		break;
	case WP_MSG_DONE: C.done++; break;
	default: break;
	}
}

/* Pumps messages until *counter reaches target or WAIT_NS passes. */
static void pump_until(const uint32_t *counter, uint32_t target)
{
	int64_t deadline = pl_mono_ns() + WAIT_NS;
	wp_msg m;

	while (*counter < target && pl_mono_ns() < deadline) {
		pl_err rc = wp_chan_recv_wait(C.chan, &m, 200 * PL_NS_PER_MS, NULL);

		if (rc == PL_OK)
			count(&m);
		else if (rc != PL_ERR_TIMEOUT)
			break;
	}
}

/* Pumps messages for ns nanoseconds. */
static void pump_for(int64_t ns)
{
	int64_t deadline = pl_mono_ns() + ns;
	wp_msg m;

	while (pl_mono_ns() < deadline)
		if (wp_chan_recv_wait(C.chan, &m, 50 * PL_NS_PER_MS, NULL) == PL_OK)
			count(&m);
}

static int worker_finish(void)
{
	int status = -1;

	send_phase(WP_PHASE_DRAIN);
	pump_until(&C.done, 1);
	waitpid(C.pid, &status, 0);
	wp_chan_free(C.chan);
	close(C.fd);
	return status;
}

static void setup(void)
{
	memset(&B, 0, sizeof(B));
}

static void teardown(void)
{
	if (C.pid > 0 && waitpid(C.pid, NULL, WNOHANG) == 0) {
		kill(C.pid, SIGKILL);
		waitpid(C.pid, NULL, 0);
	}
	broker_stop();
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
	ck_assert_uint_eq(C.rec[0].connects, 0); /* stayed on its first connection */
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
	ck_assert_int_eq(run_quiet(cmd), 0);
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
