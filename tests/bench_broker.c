/*
 * Benchmark of the plugin's cost on the broker's message path: QoS 0
 * throughput from one publisher to one subscriber through mosquitto with
 * the policylag plugin (every publish and every delivery authorized against
 * the connection's policy snapshot) and through a plain mosquitto with the
 * same TLS listener and certificates. Rounds alternate between the two
 * brokers, and the ratio is the median of the rounds' ratios, so that load
 * from other processes on a shared machine affects both sides of a round.
 *
 * Prints "broker_throughput_ratio <plugin/plain>" and both rates in
 * messages per second. Exits 1 when a run loses messages or fails to start.
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"
#include "tests/support/sim_fixture.h"

#define MESSAGES 20000
#define WARMUP 2000
#define ROUNDS 5
#define RUN_TIMEOUT_NS (60 * PL_NS_PER_S)

static const char *const policy_full =
	"{\"Version\":\"2012-10-17\",\"Statement\":["
	"{\"Effect\":\"Allow\",\"Action\":\"iot:Connect\",\"Resource\":"
	"\"arn:aws:iot:us-east-1:123456789012:client/bench-*\"},"
	"{\"Effect\":\"Allow\",\"Action\":[\"iot:Publish\",\"iot:Receive\"],\"Resource\":"
	"\"arn:aws:iot:us-east-1:123456789012:topic/bench/*\"},"
	"{\"Effect\":\"Allow\",\"Action\":\"iot:Subscribe\",\"Resource\":"
	"\"arn:aws:iot:us-east-1:123456789012:topicfilter/bench/*\"}]}";

static int free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) != 0)
		return -1;
	close(fd);
	return ntohs(a.sin_port);
}

static int port_open(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int ok;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

/* Starts mosquitto without the plugin on the simulator's certificates. */
static pid_t start_plain(const tsim *t, int port)
{
	char conf[PATH_MAX + 32];
	pid_t pid;
	FILE *f;

	snprintf(conf, sizeof(conf), "%s/plain.conf", t->dir);
	f = fopen(conf, "w");
	if (!f)
		return -1;
	fprintf(f, "user root\npersistence false\nallow_anonymous true\nlog_dest none\n"
		   "listener %d 127.0.0.1\ncafile %s/ca.pem\ncertfile %s/server.pem\n"
		   "keyfile %s/server.key\nrequire_certificate true\nset_tcp_nodelay true\n"
		   "max_qos 1\n",
		port, t->dir, t->dir, t->dir);
	fclose(f);
	pid = fork();
	if (pid == 0) {
		execl("/usr/sbin/mosquitto", "mosquitto", "-c", conf, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 250 && pid > 0 && !port_open(port); i++)
		pl_sleep_ns(20 * PL_NS_PER_MS);
	return pid;
}

static tmqtt *client(const tsim *t, const tsim_device *d, int port, const char *id)
{
	tmqtt_options o = tsim_client_options(t, d, id, 4);
	tmqtt *c = NULL;
	int code;

	o.port = port;
	if (tmqtt_connect(&c, &o, &code) != TMQTT_OK) {
		tmqtt_free(c);
		return NULL;
	}
	return c;
}

static int send_all(tmqtt *pub, long count)
{
	static const char payload[64] = "policylag broker benchmark payload";

	for (long i = 0; i < count; i++) {
		int tries = 0;
		while (tmqtt_publish_nowait(pub, "bench/t", payload, sizeof(payload), 0) != 0) {
			if (++tries > 5000)
				return -1;
			pl_sleep_ns(PL_NS_PER_MS);
		}
	}
	return 0;
}

static int wait_received(tmqtt *sub, long count)
{
	int64_t deadline = pl_mono_ns() + RUN_TIMEOUT_NS;

	while (tmqtt_received_total(sub) < count) {
		if (pl_mono_ns() > deadline)
			return -1;
		pl_sleep_ns(PL_NS_PER_MS);
	}
	return 0;
}

/* Messages per second from one publisher to one subscriber, or -1. */
static double measure(const tsim *t, const tsim_device *d, int port)
{
	tmqtt *sub = client(t, d, port, "bench-sub");
	tmqtt *pub = client(t, d, port, "bench-pub");
	double rate = -1;
	int64_t start;
	int code;

	if (!sub || !pub || tmqtt_subscribe(sub, "bench/t", 0, &code) != TMQTT_OK)
		goto out;
	if (send_all(pub, WARMUP) != 0 || wait_received(sub, WARMUP) != 0)
		goto out;
	start = pl_mono_ns();
	if (send_all(pub, MESSAGES) != 0 || wait_received(sub, WARMUP + MESSAGES) != 0)
		goto out;
	rate = MESSAGES / ((double)(pl_mono_ns() - start) / PL_NS_PER_S);
out:
	tmqtt_free(pub);
	tmqtt_free(sub);
	return rate;
}

static int compare_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static int bench_status = 1;

/* A Check test only so that the simulator fixture's assertions work. */
START_TEST(bench_broker_throughput)
{
	double plugin_rates[ROUNDS], plain_rates[ROUNDS], ratios[ROUNDS];
	int plain_port = free_port();
	tsim_device dev;
	pid_t plain;
	tsim t;

	tsim_init(&t);
	tsim_device_create(&t, "bench", &dev);
	tsim_policy_put(&t, "bench", policy_full);
	tsim_attach(&t, "bench", &dev);
	/* The per-connection limit (100/s in AWS) would measure the quota. */
	tsim_option(&t, "publish_rate_per_connection", "off");
	tsim_option(&t, "connect_rate_per_client", "off");
	tsim_start(&t);
	plain = start_plain(&t, plain_port);
	if (plain <= 0 || !port_open(plain_port)) {
		fprintf(stderr, "bench_broker: the plain mosquitto did not start\n");
		tsim_cleanup(&t);
		return;
	}
	for (int i = 0; i < ROUNDS; i++) {
		plain_rates[i] = measure(&t, &dev, plain_port);
		plugin_rates[i] = measure(&t, &dev, sim_mqtt_port(t.sim));
		ratios[i] = plugin_rates[i] / plain_rates[i];
	}
	kill(plain, SIGTERM);
	waitpid(plain, NULL, 0);
	tsim_cleanup(&t);
	qsort(plain_rates, ROUNDS, sizeof(double), compare_double);
	qsort(plugin_rates, ROUNDS, sizeof(double), compare_double);
	qsort(ratios, ROUNDS, sizeof(double), compare_double);
	if (plain_rates[0] <= 0 || plugin_rates[0] <= 0) {
		fprintf(stderr, "bench_broker: a run lost messages or failed to connect\n");
		return;
	}
	printf("broker_throughput_ratio %.3f\n", ratios[ROUNDS / 2]);
	printf("broker_throughput_plugin_msgs_per_s %.0f\n", plugin_rates[ROUNDS / 2]);
	printf("broker_throughput_plain_msgs_per_s %.0f\n", plain_rates[ROUNDS / 2]);
	printf("QoS 0, %d messages of 64 bytes per round, one publisher and one subscriber over "
	       "TLS; rates and ratio are medians of %d alternating rounds.\n",
	       MESSAGES, ROUNDS);
	bench_status = 0;
}
END_TEST

int main(void)
{
	Suite *s = suite_create("bench_broker");
	TCase *tc = tcase_create("throughput");
	SRunner *sr;

	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, bench_broker_throughput);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_SILENT);
	if (srunner_ntests_failed(sr) > 0)
		bench_status = 1;
	srunner_free(sr);
	return bench_status;
}
