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

enum { PLAIN, PLUGIN, PLUGIN_NO_API, BROKERS };

static const char *const broker_names[BROKERS] = { "plain", "plugin", "plugin_without_api" };

static void print_results(double cpu[BROKERS][ROUNDS], double wall[BROKERS][ROUNDS])
{
	double ratios[ROUNDS];

	for (int b = PLUGIN; b < BROKERS; b++) {
		for (int i = 0; i < ROUNDS; i++)
			ratios[i] = cpu[b][i] / cpu[PLAIN][i];
		printf(b == PLUGIN ? "broker_throughput_ratio %.3f\n"
				   : "broker_throughput_ratio_without_api %.3f\n",
		       median(ratios, ROUNDS));
	}
	for (int b = 0; b < BROKERS; b++)
		printf("broker_throughput_%s_msgs_per_cpu_s %.0f\n", broker_names[b],
		       median(cpu[b], ROUNDS));
	for (int b = 0; b < BROKERS; b++)
		printf("broker_wall_rate_%s_msgs_per_s %.0f\n", broker_names[b],
		       median(wall[b], ROUNDS));
	printf("QoS 0, %d messages of 64 bytes per round, one publisher and one subscriber over "
	       "TLS; medians of %d rounds over the three brokers in rotating order; throughput per second "
	       "of the broker thread's CPU time. \"without_api\" runs the plugin with no HTTP "
	       "API thread.\n",
	       MESSAGES, ROUNDS);
}

/* A Check test only so that the simulator fixture's assertions work. */
START_TEST(bench_broker_throughput)
{
	double cpu[BROKERS][ROUNDS], wall[BROKERS][ROUNDS];
	int ports[BROKERS];
	pid_t pids[BROKERS];
	sim_options no_api_options;
	sim *no_api = NULL;
	tsim_device dev;
	pl_errmsg e;
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
	ports[PLAIN] = free_port();
	pids[PLAIN] = start_plain(&t, ports[PLAIN]);
	/* A second plugin broker on the same state directory, without the API. */
	no_api_options = t.options;
	no_api_options.api_port = -1;
	if (pids[PLAIN] <= 0 || !port_open(ports[PLAIN]) ||
	    sim_start(&no_api, &no_api_options, &e) != PL_OK) {
		fprintf(stderr, "bench_broker: a broker did not start\n");
		goto out;
	}
	ports[PLUGIN] = sim_mqtt_port(t.sim);
	pids[PLUGIN] = (pid_t)sim_pid(t.sim);
	ports[PLUGIN_NO_API] = sim_mqtt_port(no_api);
	pids[PLUGIN_NO_API] = (pid_t)sim_pid(no_api);
	for (int i = 0; i < ROUNDS; i++) {
		/* Each round starts with another broker, so that an order effect
		 * (caches, CPU frequency) does not favour one of them. */
		for (int k = 0; k < BROKERS; k++) {
			int b = (i + k) % BROKERS;
			rates r;
			if (measure(&t, &dev, ports[b], pids[b], &r) != 0) {
				fprintf(stderr, "bench_broker: a run lost messages or failed to "
						"connect\n");
				goto out;
			}
			cpu[b][i] = r.per_cpu_s;
			wall[b][i] = r.per_wall_s;
		}
		if (getenv("BENCH_VERBOSE"))
			fprintf(stderr, "round %d: plain %.0f plugin %.0f without API %.0f\n", i,
				cpu[PLAIN][i], cpu[PLUGIN][i], cpu[PLUGIN_NO_API][i]);
	}
	print_results(cpu, wall);
	bench_status = 0;
out:
	sim_free(no_api);
	if (pids[PLAIN] > 0) {
		kill(pids[PLAIN], SIGTERM);
		waitpid(pids[PLAIN], NULL, 0);
	}
	tsim_cleanup(&t);
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
