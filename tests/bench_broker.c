/*
 * Benchmark of the plugin's cost on the broker's message path: QoS 0
 * messages from one publisher to one subscriber through mosquitto with the
 * policylag plugin (every publish and every delivery authorized against the
 * connection's policy snapshot) and through a plain mosquitto with the same
 * TLS listener and certificates.
 *
 * Throughput is messages per second of the broker thread's CPU time (from
 * /proc/<pid>/schedstat), which is what limits a single-threaded mosquitto.
 * The wall-clock rate is printed as well, but on a shared machine it mostly
 * measures the paho clients and the neighbours. Rounds alternate between the
 * two brokers, and the ratio is the median of the rounds' ratios.
 *
 * Prints "broker_throughput_ratio <plugin/plain>" and both throughputs.
 * Exits 1 when a run loses messages or fails to start.
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

#define MESSAGES 50000
#define WARMUP 2000
#define ROUNDS 7
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

/*
 * Writes the simulator's generated mosquitto.conf without the plugin lines,
 * on another port and with anonymous access, so that the two brokers differ
 * only in the plugin.
 */
static int write_plain_config(const tsim *t, int port, const char *conf)
{
	char path[PATH_MAX + 32], line[PATH_MAX + 64];
	FILE *in, *out;

	snprintf(path, sizeof(path), "%s/mosquitto.conf", t->dir);
	in = fopen(path, "r");
	out = fopen(conf, "w");
	if (!in || !out) {
		if (in)
			fclose(in);
		if (out)
			fclose(out);
		return -1;
	}
	while (fgets(line, sizeof(line), in)) {
		if (strncmp(line, "plugin", 6) == 0 || strncmp(line, "allow_anonymous", 15) == 0 ||
		    strncmp(line, "log_dest", 8) == 0)
			continue;
		if (strncmp(line, "listener ", 9) == 0)
			snprintf(line, sizeof(line), "listener %d 127.0.0.1\n", port);
		fputs(line, out);
	}
	fprintf(out, "allow_anonymous true\nlog_dest file %s/plain.log\n", t->dir);
	fclose(in);
	return fclose(out) == 0 ? 0 : -1;
}

/* Starts mosquitto without the plugin, otherwise configured as the simulator. */
static pid_t start_plain(const tsim *t, int port)
{
	char conf[PATH_MAX + 32];
	pid_t pid;

	snprintf(conf, sizeof(conf), "%s/plain.conf", t->dir);
	if (write_plain_config(t, port, conf) != 0)
		return -1;
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

/* Nanoseconds the process's main thread has run on a CPU, or -1. */
static int64_t cpu_ns(pid_t pid)
{
	char path[64];
	long long ns = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/schedstat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (fscanf(f, "%lld", &ns) != 1)
		ns = -1;
	fclose(f);
	return ns;
}

typedef struct rates {
	double per_cpu_s;  /* messages per second of broker CPU time */
	double per_wall_s; /* messages per second of wall-clock time */
} rates;

/* Sends MESSAGES from one publisher to one subscriber through the broker
 * pid listening on port; returns 0, or -1 when messages were lost. */
static int measure(const tsim *t, const tsim_device *d, int port, pid_t pid, rates *out)
{
	tmqtt *sub = client(t, d, port, "bench-sub");
	tmqtt *pub = client(t, d, port, "bench-pub");
	int64_t start, cpu_start;
	int rc = -1;
	int code;

	if (!sub || !pub || tmqtt_subscribe(sub, "bench/t", 0, &code) != TMQTT_OK)
		goto out;
	if (send_all(pub, WARMUP) != 0 || wait_received(sub, WARMUP) != 0)
		goto out;
	start = pl_mono_ns();
	cpu_start = cpu_ns(pid);
	if (send_all(pub, MESSAGES) != 0 || wait_received(sub, WARMUP + MESSAGES) != 0)
		goto out;
	out->per_cpu_s = MESSAGES / ((double)(cpu_ns(pid) - cpu_start) / PL_NS_PER_S);
	out->per_wall_s = MESSAGES / ((double)(pl_mono_ns() - start) / PL_NS_PER_S);
	rc = cpu_start >= 0 ? 0 : -1;
out:
	tmqtt_free(pub);
	tmqtt_free(sub);
	return rc;
}

static int compare_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static int bench_status = 1;

static double median(double *values, int count)
{
	qsort(values, (size_t)count, sizeof(double), compare_double);
	return values[count / 2];
}

/* A Check test only so that the simulator fixture's assertions work. */
START_TEST(bench_broker_throughput)
{
	double cpu_plugin[ROUNDS], cpu_plain[ROUNDS], wall_plugin[ROUNDS], wall_plain[ROUNDS];
	double ratios[ROUNDS];
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
	t.options.propagation = "uniform:360s-480s"; /* the default, not the fixture's */
	tsim_start(&t);
	plain = start_plain(&t, plain_port);
	if (plain <= 0 || !port_open(plain_port)) {
		fprintf(stderr, "bench_broker: the plain mosquitto did not start\n");
		tsim_cleanup(&t);
		return;
	}
	for (int i = 0; i < ROUNDS; i++) {
		rates a, b;
		if (measure(&t, &dev, plain_port, plain, &a) != 0 ||
		    measure(&t, &dev, sim_mqtt_port(t.sim), (pid_t)sim_pid(t.sim), &b) != 0) {
			fprintf(stderr, "bench_broker: a run lost messages or failed to connect\n");
			break;
		}
		cpu_plain[i] = a.per_cpu_s;
		wall_plain[i] = a.per_wall_s;
		cpu_plugin[i] = b.per_cpu_s;
		wall_plugin[i] = b.per_wall_s;
		ratios[i] = b.per_cpu_s / a.per_cpu_s;
		if (getenv("BENCH_VERBOSE"))
			fprintf(stderr, "round %d: plain %.0f plugin %.0f ratio %.3f\n", i, a.per_cpu_s, b.per_cpu_s, ratios[i]);
		if (i == ROUNDS - 1)
			bench_status = 0;
	}
	kill(plain, SIGTERM);
	waitpid(plain, NULL, 0);
	tsim_cleanup(&t);
	if (bench_status != 0)
		return;
	printf("broker_throughput_ratio %.3f\n", median(ratios, ROUNDS));
	printf("broker_throughput_plugin_msgs_per_cpu_s %.0f\n", median(cpu_plugin, ROUNDS));
	printf("broker_throughput_plain_msgs_per_cpu_s %.0f\n", median(cpu_plain, ROUNDS));
	printf("broker_wall_rate_plugin_msgs_per_s %.0f\n", median(wall_plugin, ROUNDS));
	printf("broker_wall_rate_plain_msgs_per_s %.0f\n", median(wall_plain, ROUNDS));
	printf("QoS 0, %d messages of 64 bytes per round, one publisher and one subscriber over "
	       "TLS; medians of %d alternating rounds; throughput per second of the broker "
	       "thread's CPU time.\n",
	       MESSAGES, ROUNDS);
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
