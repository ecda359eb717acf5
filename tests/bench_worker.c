/*
 * Benchmark of one worker process against a local mosquitto with TLS
 * (loopback only, bounded: BENCH_WORKER_DEVICES devices, default 200, and
 * about 15 s in all). Prints:
 *
 * Each device has its own EC P-256 key and certificate, as a provisioned
 * fleet has, so every connect of the first run parses its own credentials.
 * A second worker then runs the same devices all with one certificate, as a
 * device's reconnects are (its credentials already parsed).
 *
 *   worker_cpu_per_connect_us   worker CPU (user + system, all threads) from
 *                               PHASE connect until every device has its
 *                               SUBACK, per device: TLS, CONNECT, SUBSCRIBE
 *   worker_shared_cert_cpu_per_connect_us
 *                               the same with one certificate for all devices
 *   worker_cpu_per_probe_us     worker CPU while probing, per delivered echo
 *                               probe (one PUBLISH out and one in)
 *   worker_rss_per_device_kb    RSS growth from before the connect phase to
 *                               all devices connected and idle, per device
 *   worker_connack_median_ms    median MQTTAsync_connect call -> CONNACK
 *   minimal_connack_median_ms   median TCP connect -> CONNACK of a minimal
 *                               client (OpenSSL and a hand-written CONNECT)
 *                               with the same certificate, one at a time
 *   minimal_cpu_per_connect_us  that client's CPU per connect, one SSL_CTX
 *                               for all connects
 *   minimal_fresh_ctx_cpu_per_connect_us
 *                               the same with a new SSL_CTX per connect that
 *                               loads the CA, certificate and key again, as
 *                               paho does on every connect
 *
 * Targets: 1.2 ms CPU per connect, 30 us per probe, 40 kB per idle device,
 * CONNACK within 5 ms of the minimal client's median.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/parse.h"
#include "tests/check_worker_broker.h"
#include "tests/check_worker_coord.h"
#include "workers/protocol.h"

#define DEVICES_DEFAULT 200
#define DEVICES_MAX 2000
#define MINIMAL_CONNECTS 50
#define PROBE_SECONDS 5

static const char *const cert_names[] = { "dev0", "prober" };

typedef struct samples {
	int64_t *v;
	size_t n;
	size_t cap;
} samples;

static samples connack;

static void collect(wcoord *c, const wp_msg *m)
{
	(void)c;
	if (m->type == WP_MSG_TIMING && m->u.timing.connect_ns >= 0 && connack.n < connack.cap)
		connack.v[connack.n++] = m->u.timing.connect_ns;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a;
	int64_t y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static double median_ms(int64_t *v, size_t n)
{
	if (n == 0)
		return -1;
	qsort(v, n, sizeof(*v), cmp_i64);
	return (double)v[n / 2] / 1e6;
}

/* CPU time of a process (user + system, every thread) in nanoseconds. */
static int64_t proc_cpu_ns(pid_t pid)
{
	char path[64];
	char buf[1024];
	unsigned long utime = 0;
	unsigned long stime = 0;
	FILE *f;
	char *p;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	p = fgets(buf, sizeof(buf), f);
	fclose(f);
	if (p == NULL || (p = strrchr(buf, ')')) == NULL)
		return -1;
	/* Fields after the command: state is field 3, utime 14, stime 15. */
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime,
		   &stime) != 2)
		return -1;
	return (int64_t)(utime + stime) * PL_NS_PER_S / sysconf(_SC_CLK_TCK);
}

static long proc_rss_kb(pid_t pid)
{
	char path[64];
	unsigned long size = 0;
	unsigned long resident = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/statm", (int)pid);
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	if (fscanf(f, "%lu %lu", &size, &resident) != 2)
		resident = 0;
	fclose(f);
	return (long)(resident * (unsigned long)sysconf(_SC_PAGESIZE) / 1024);
}

/* Reads exactly n bytes from ssl; returns 0 on success. */
static int ssl_read_all(SSL *ssl, unsigned char *buf, int n)
{
	int got = 0;

	while (got < n) {
		int r = SSL_read(ssl, buf + got, n - got);

		if (r <= 0)
			return -1;
		got += r;
	}
	return 0;
}

/* One minimal connect: TCP, TLS, MQTT 3.1.1 CONNECT, CONNACK. Returns ns or -1. */
static int64_t minimal_connect(SSL_CTX *ctx, int port, const char *client_id)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	unsigned char pkt[128];
	unsigned char ack[4];
	size_t id_len = strlen(client_id);
	int64_t t0;
	int64_t t = -1;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	SSL *ssl = NULL;

	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	/* CONNECT: fixed header, "MQTT", level 4, clean session, keep-alive 60, client id */
	pkt[0] = 0x10;
	pkt[1] = (unsigned char)(10 + 2 + id_len);
	memcpy(pkt + 2, "\x00\x04MQTT\x04\x02\x00\x3c", 10);
	pkt[12] = 0;
	pkt[13] = (unsigned char)id_len;
	memcpy(pkt + 14, client_id, id_len);
	t0 = pl_mono_ns();
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
		goto out;
	ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	SSL_set_tlsext_host_name(ssl, "localhost");
	if (SSL_connect(ssl) != 1 || SSL_write(ssl, pkt, (int)(14 + id_len)) <= 0 ||
	    ssl_read_all(ssl, ack, 4) != 0 || ack[0] != 0x20 || ack[3] != 0)
		goto out;
	t = pl_mono_ns() - t0;
	SSL_write(ssl, "\xe0\x00", 2);
out:
	if (ssl != NULL) {
		SSL_shutdown(ssl);
		SSL_free(ssl);
	}
	if (fd >= 0)
		close(fd);
	return t;
}

/* A client context with the CA, the device certificate and key loaded. */
static SSL_CTX *minimal_ctx(const wbroker *b)
{
	char cert[320];
	char key[320];
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	snprintf(cert, sizeof(cert), "%s/dev0.pem", b->dir);
	snprintf(key, sizeof(key), "%s/dev0.key", b->dir);
	if (ctx == NULL || SSL_CTX_load_verify_locations(ctx, b->ca, NULL) != 1 ||
	    SSL_CTX_use_certificate_file(ctx, cert, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	return ctx;
}

static int64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * PL_NS_PER_S + ts.tv_nsec;
}

/*
 * Connects MINIMAL_CONNECTS times, one at a time; fresh_ctx builds a new
 * context for each. Prints the CONNACK median (shared context only) and the
 * CPU per connect.
 */
static int minimal_run(const wbroker *b, int fresh_ctx)
{
	int64_t v[MINIMAL_CONNECTS];
	int64_t cpu = 0;
	size_t n = 0;
	SSL_CTX *ctx = fresh_ctx ? NULL : minimal_ctx(b);

	if (!fresh_ctx && ctx == NULL)
		return -1;
	for (int i = 0; i < MINIMAL_CONNECTS; i++) {
		char id[32];
		int64_t t0 = thread_cpu_ns();
		SSL_CTX *use = fresh_ctx ? minimal_ctx(b) : ctx;
		int64_t t;

		snprintf(id, sizeof(id), "minimal%d", i);
		t = use != NULL ? minimal_connect(use, b->port, id) : -1;
		if (fresh_ctx)
			SSL_CTX_free(use);
		cpu += thread_cpu_ns() - t0;
		if (t >= 0)
			v[n++] = t;
		pl_sleep_ns(10 * PL_NS_PER_MS);
	}
	SSL_CTX_free(ctx);
	if (n == 0)
		return -1;
	if (fresh_ctx) {
		printf("minimal_fresh_ctx_cpu_per_connect_us %.0f\n", (double)cpu / (double)n / 1e3);
	} else {
		printf("minimal_connack_median_ms %.2f\n", median_ms(v, n));
		printf("minimal_cpu_per_connect_us %.0f\n", (double)cpu / (double)n / 1e3);
	}
	return 0;
}

/* Writes a PEM private key readable by the owner only. */
static int write_key(const char *path, EVP_PKEY *key)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	int ok;

	if (f == NULL) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	ok = PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) == 1;
	return fclose(f) == 0 && ok ? 0 : -1;
}

/* Makes dev<i>.key (EC P-256) and dev<i>.pem (CN bench<i>) signed by the broker's CA. */
static int make_device_cert(const wbroker *b, X509 *ca, EVP_PKEY *ca_key, uint32_t i)
{
	char path[320];
	char cn[32];
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	FILE *f;
	int rc = -1;

	snprintf(cn, sizeof(cn), "bench%u", i);
	if (key == NULL || x == NULL || X509_set_version(x, 2) != 1 ||
	    ASN1_INTEGER_set(X509_get_serialNumber(x), 1000 + (long)i) != 1 ||
	    X509_gmtime_adj(X509_getm_notBefore(x), -3600) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x), 2 * 86400) == NULL ||
	    X509_set_pubkey(x, key) != 1 ||
	    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
				       (const unsigned char *)cn, -1, -1, 0) != 1 ||
	    X509_set_issuer_name(x, X509_get_subject_name(ca)) != 1 ||
	    X509_sign(x, ca_key, EVP_sha256()) <= 0)
		goto out;
	snprintf(path, sizeof(path), "%s/dev%u.key", b->dir, i);
	if (write_key(path, key) != 0)
		goto out;
	snprintf(path, sizeof(path), "%s/dev%u.pem", b->dir, i);
	f = fopen(path, "w");
	if (f == NULL)
		goto out;
	rc = PEM_write_X509(f, x) == 1 ? 0 : -1;
	if (fclose(f) != 0)
		rc = -1;
out:
	X509_free(x);
	EVP_PKEY_free(key);
	return rc;
}

/* Makes one key and certificate per device (dev0 exists already). */
static int make_device_certs(const wbroker *b, uint32_t devices)
{
	char path[320];
	FILE *f;
	X509 *ca = NULL;
	EVP_PKEY *ca_key = NULL;
	int rc = 0;

	snprintf(path, sizeof(path), "%s/ca.key", b->dir);
	if ((f = fopen(path, "r")) != NULL) {
		ca_key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
		fclose(f);
	}
	if ((f = fopen(b->ca, "r")) != NULL) {
		ca = PEM_read_X509(f, NULL, NULL, NULL);
		fclose(f);
	}
	if (ca == NULL || ca_key == NULL)
		rc = -1;
	for (uint32_t i = 1; i < devices && rc == 0; i++)
		rc = make_device_cert(b, ca, ca_key, i);
	X509_free(ca);
	EVP_PKEY_free(ca_key);
	return rc;
}

static int send_setup(wcoord *c, const wbroker *b, uint32_t devices, int distinct)
{
	wp_msg m = { .type = WP_MSG_GROUP };

	m.u.group.id = 0;
	snprintf(m.u.group.name, sizeof(m.u.group.name), "bench");
	m.u.group.strategy = WP_STRATEGY_KEEP;
	m.u.group.mqtt_version = 4;
	m.u.group.probe_interval_ns = 100 * PL_NS_PER_MS;
	m.u.group.observe_timeout_ns = 60 * PL_NS_PER_S;
	m.u.group.confirm_ns = PL_NS_PER_S;
	if (wcoord_send(c, &m) != 0)
		return -1;
	for (uint32_t i = 0; i < devices; i++) {
		memset(&m, 0, sizeof(m));
		m.type = WP_MSG_DEVICE;
		m.u.device.index = i;
		snprintf(m.u.device.client_id, sizeof(m.u.device.client_id), "bench%u", i);
		snprintf(m.u.device.cert_path, sizeof(m.u.device.cert_path), "%s/dev%u.pem", b->dir,
			 distinct ? i : 0);
		snprintf(m.u.device.key_path, sizeof(m.u.device.key_path), "%s/dev%u.key", b->dir,
			 distinct ? i : 0);
		snprintf(m.u.device.probe_topic, sizeof(m.u.device.probe_topic), "probe/b%u", i);
		if (wcoord_send(c, &m) != 0)
			return -1;
	}
	return 0;
}

/* Asks for a heartbeat and waits for it, so the counters are current. */
static void fresh_heartbeat(wcoord *c)
{
	wp_msg m = { .type = WP_MSG_PING };
	uint32_t seen = c->heartbeat.ping_seq;

	m.u.ping.seq = seen + 1;
	wcoord_send(c, &m);
	for (int i = 0; i < 40 && c->heartbeat.ping_seq != seen + 1; i++)
		wcoord_pump_for(c, 50 * PL_NS_PER_MS);
}

/*
 * Starts a worker, connects every device, probes for PROBE_SECONDS and
 * drains. Prints the connect CPU under name; the other figures only for the
 * distinct-certificate run.
 */
static int run_worker(wbroker *b, wcoord *c, uint32_t devices, int distinct)
{
	wp_msg hello;
	int64_t cpu0, cpu1, cpu2, cpu3;
	long rss0, rss1;
	uint64_t received0;

	memset(c, 0, sizeof(*c));
	connack.n = 0;
	wcoord_hello(b, &hello);
	hello.u.hello.connect_rate_milli = 100 * 1000; /* 100 connects/s: one at a time */
	if (wcoord_start(c, b, &hello) != 0 || send_setup(c, b, devices, distinct) != 0)
		return -1;
	c->on_msg = collect;
	wcoord_pump_for(c, 500 * PL_NS_PER_MS);
	rss0 = proc_rss_kb(c->pid);
	cpu0 = proc_cpu_ns(c->pid);
	wcoord_phase(c, WP_PHASE_CONNECT);
	if (wcoord_pump_until(c, &c->subscribed, devices, 60 * PL_NS_PER_S) != 0) {
		fprintf(stderr, "bench_worker: only %u of %u devices subscribed\n", c->subscribed,
			devices);
		return -1;
	}
	cpu1 = proc_cpu_ns(c->pid);
	if (!distinct) {
		printf("worker_shared_cert_cpu_per_connect_us %.0f\n",
		       (double)(cpu1 - cpu0) / devices / 1e3);
		wcoord_finish(c, 30 * PL_NS_PER_S);
		return 0;
	}
	wcoord_pump_for(c, PL_NS_PER_S);
	rss1 = proc_rss_kb(c->pid);

	fresh_heartbeat(c);
	received0 = c->heartbeat.probes_received;
	cpu2 = proc_cpu_ns(c->pid);
	wcoord_phase(c, WP_PHASE_PROBE);
	wcoord_pump_for(c, PROBE_SECONDS * PL_NS_PER_S);
	cpu3 = proc_cpu_ns(c->pid);
	fresh_heartbeat(c);

	printf("worker_devices %u\n", devices);
	printf("worker_cpu_per_connect_us %.0f\n", (double)(cpu1 - cpu0) / devices / 1e3);
	printf("worker_cpu_per_probe_us %.1f\n",
	       (double)(cpu3 - cpu2) / (double)(c->heartbeat.probes_received - received0 + 1) / 1e3);
	printf("worker_rss_per_device_kb %.1f\n", (double)(rss1 - rss0) / devices);
	printf("worker_probes_delivered %llu\n",
	       (unsigned long long)(c->heartbeat.probes_received - received0));
	wcoord_finish(c, 30 * PL_NS_PER_S);
	printf("worker_connack_median_ms %.2f\n", median_ms(connack.v, connack.n));
	return 0;
}

static int run(wbroker *b, wcoord *c, uint32_t devices)
{
	if (run_worker(b, c, devices, 1) != 0 || run_worker(b, c, devices, 0) != 0)
		return -1;
	if (minimal_run(b, 0) != 0 || minimal_run(b, 1) != 0) {
		fprintf(stderr, "bench_worker: the minimal client could not connect\n");
		return -1;
	}
	return 0;
}

int main(void)
{
	wbroker b;
	wcoord c;
	uint64_t devices = DEVICES_DEFAULT;
	const char *env = getenv("BENCH_WORKER_DEVICES");
	int rc;

	if (env != NULL && pl_parse_uint64(env, 1, DEVICES_MAX, &devices, NULL) != PL_OK) {
		fprintf(stderr, "bench_worker: BENCH_WORKER_DEVICES must be 1..%d\n", DEVICES_MAX);
		return 2;
	}
	connack.cap = (size_t)devices;
	connack.v = calloc(connack.cap, sizeof(*connack.v));
	memset(&c, 0, sizeof(c));
	if (connack.v == NULL || wbroker_start(&b, "readwrite", cert_names, 2) != 0) {
		fprintf(stderr, "bench_worker: starting mosquitto with TLS failed\n");
		wbroker_stop(&b);
		return 1;
	}
	/* Any device may use any probe topic, whichever certificate it has. */
	if (make_device_certs(&b, (uint32_t)devices) != 0 ||
	    wbroker_write(b.acl, "pattern readwrite probe/#\n") != 0 || kill(b.pid, SIGHUP) != 0) {
		fprintf(stderr, "bench_worker: making the device certificates failed\n");
		wbroker_stop(&b);
		return 1;
	}
	pl_sleep_ns(200 * PL_NS_PER_MS);
	rc = run(&b, &c, (uint32_t)devices);
	wcoord_kill(&c);
	wbroker_stop(&b);
	free(connack.v);
	return rc == 0 ? 0 : 1;
}
