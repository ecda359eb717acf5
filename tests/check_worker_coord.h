/*
 * The coordinator's side of one worker, for the worker tests and benchmark
 * (header-only): starts `policylag worker` ($POLICYLAG_BIN) with a socketpair
 * as its fd 3, sends protocol messages and counts what comes back. Functions
 * return 0 on success and -1 on failure.
 */
#ifndef TEST_CHECK_WORKER_COORD_H
#define TEST_CHECK_WORKER_COORD_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"
#include "tests/check_worker_broker.h"
#include "workers/protocol.h"

#define WCOORD_RECORDS 8

typedef struct wcoord wcoord;

/* Called for every message received, after counting. */
typedef void (*wcoord_fn)(wcoord *c, const wp_msg *m);

struct wcoord {
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
	wp_record rec[WCOORD_RECORDS];
	wp_heartbeat heartbeat;
	wcoord_fn on_msg;
	void *user;
};

static inline int wcoord_send(wcoord *c, const wp_msg *m)
{
	return wp_chan_send_wait(c->chan, m, 5 * PL_NS_PER_S, NULL) == PL_OK ? 0 : -1;
}

static inline void wcoord_count(wcoord *c, const wp_msg *m)
{
	int verbose = getenv("CHECK_WORKER_VERBOSE") != NULL;

	switch (m->type) {
	case WP_MSG_EVENT:
		c->connected += m->u.event.kind == WP_EV_CONNECTED;
		c->subscribed += m->u.event.kind == WP_EV_SUBSCRIBED;
		c->connect_failures += m->u.event.kind == WP_EV_CONNECT_FAILED;
		if (verbose)
			fprintf(stderr, "event device=%u kind=%u code=%d %s\n", m->u.event.device,
				m->u.event.kind, m->u.event.code, m->u.event.text);
		break;
	case WP_MSG_EFFECT: c->effects++; break;
	case WP_MSG_TIMING:
		c->timings++;
		if (verbose)
			fprintf(stderr, "timing device=%u attempt=%u connect_ms=%.2f "
				"subscribe_ms=%.2f rtt_ms=%.2f suback=%d\n", m->u.timing.device,
				m->u.timing.attempt, (double)m->u.timing.connect_ns / 1e6,
				(double)m->u.timing.subscribe_ns / 1e6,
				(double)m->u.timing.probe_rtt_ns / 1e6, m->u.timing.suback_code);
		break;
	case WP_MSG_RECORD:
		if (c->records < WCOORD_RECORDS)
			c->rec[c->records] = m->u.record;
		c->records++;
		if (verbose)
			fprintf(stderr, "record device=%u censored=%u latency_ms=%.1f attempts=%u "
				"connects=%u\n", m->u.record.device, m->u.record.censored,
				(double)m->u.record.latency_ns / 1e6, m->u.record.attempts,
				m->u.record.connects);
		break;
	case WP_MSG_HEARTBEAT: c->heartbeat = m->u.heartbeat; break;
	case WP_MSG_DONE: c->done++; break;
	default: break;
	}
	if (c->on_msg != NULL)
		c->on_msg(c, m);
}

/* Pumps messages until *counter reaches target or timeout_ns passes; returns 0 if reached. */
static inline int wcoord_pump_until(wcoord *c, const uint32_t *counter, uint32_t target,
				    int64_t timeout_ns)
{
	int64_t deadline = pl_mono_ns() + timeout_ns;
	wp_msg m;

	while (*counter < target && pl_mono_ns() < deadline) {
		pl_err rc = wp_chan_recv_wait(c->chan, &m, 200 * PL_NS_PER_MS, NULL);

		if (rc == PL_OK)
			wcoord_count(c, &m);
		else if (rc != PL_ERR_TIMEOUT)
			break;
	}
	return *counter >= target ? 0 : -1;
}

/* Pumps messages for ns nanoseconds. */
static inline void wcoord_pump_for(wcoord *c, int64_t ns)
{
	int64_t deadline = pl_mono_ns() + ns;
	wp_msg m;

	while (pl_mono_ns() < deadline)
		if (wp_chan_recv_wait(c->chan, &m, 50 * PL_NS_PER_MS, NULL) == PL_OK)
			wcoord_count(c, &m);
}

/* Fills a HELLO for broker b. */
static inline void wcoord_hello(const wbroker *b, wp_msg *m)
{
	memset(m, 0, sizeof(*m));
	m->type = WP_MSG_HELLO;
	m->u.hello.version = WP_VERSION;
	m->u.hello.log_level = 2;
	snprintf(m->u.hello.host, sizeof(m->u.hello.host), "localhost");
	m->u.hello.port = (uint16_t)b->port;
	snprintf(m->u.hello.ca_path, sizeof(m->u.hello.ca_path), "%s", b->ca);
	m->u.hello.keepalive_s = 60;
	m->u.hello.connect_timeout_s = 10;
	snprintf(m->u.hello.prober_client_id, sizeof(m->u.hello.prober_client_id), "prober");
	snprintf(m->u.hello.prober_cert, sizeof(m->u.hello.prober_cert), "%s/prober.pem", b->dir);
	snprintf(m->u.hello.prober_key, sizeof(m->u.hello.prober_key), "%s/prober.key", b->dir);
	m->u.hello.prober_rate_max = 20;
}

/* Starts the worker and exchanges HELLO (as given) and READY. */
static inline int wcoord_start(wcoord *c, const wbroker *b, wp_msg *hello)
{
	const char *bin = getenv("POLICYLAG_BIN");
	int sv[2];
	char log[320];
	char *argv[] = { NULL, (char *)"--log-level", (char *)"info", (char *)"worker",
			 (char *)"--fd", (char *)"3", NULL };
	wp_msg m;

	memset(c, 0, sizeof(*c));
	if (bin == NULL || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		return -1;
	argv[0] = (char *)bin;
	snprintf(log, sizeof(log), "%s/worker.log", b->dir);
	/* dup2 onto fd 3 clears FD_CLOEXEC, so the child keeps its end. */
	c->pid = wbroker_spawn(argv, log, sv[1]);
	close(sv[1]);
	c->fd = sv[0];
	if (c->pid <= 0 || wp_chan_create(&c->chan, c->fd, 1 << 20, NULL) != PL_OK ||
	    wcoord_send(c, hello) != 0 ||
	    wp_chan_recv_wait(c->chan, &m, 20 * PL_NS_PER_S, NULL) != PL_OK ||
	    m.type != WP_MSG_READY || m.u.ready.pid != (uint32_t)c->pid)
		return -1;
	return 0;
}

static inline int wcoord_phase(wcoord *c, wp_phase phase)
{
	wp_msg m = { .type = WP_MSG_PHASE };

	m.u.phase.phase = (uint8_t)phase;
	m.u.phase.t_ns = pl_mono_ns();
	return wcoord_send(c, &m);
}

/* Sends a SWAP for every device; returns its time. */
static inline int64_t wcoord_swap(wcoord *c, wp_swap_kind kind)
{
	wp_msg m = { .type = WP_MSG_SWAP };

	m.u.swap.kind = (uint8_t)kind;
	m.u.swap.swap_index = 1;
	m.u.swap.first = 0;
	m.u.swap.count = WP_ALL_DEVICES;
	m.u.swap.t_ns = pl_mono_ns();
	return wcoord_send(c, &m) == 0 ? m.u.swap.t_ns : -1;
}

/* Sends a device using certificate <cert_name>.pem and topic probe/<cert_name>. */
static inline int wcoord_device(wcoord *c, const wbroker *b, uint32_t index, uint16_t group,
				const char *cert_name)
{
	wp_msg m = { .type = WP_MSG_DEVICE };

	m.u.device.index = index;
	m.u.device.group = group;
	snprintf(m.u.device.client_id, sizeof(m.u.device.client_id), "dev%u", index);
	snprintf(m.u.device.cert_path, sizeof(m.u.device.cert_path), "%s/%s.pem", b->dir,
		 cert_name);
	snprintf(m.u.device.key_path, sizeof(m.u.device.key_path), "%s/%s.key", b->dir,
		 cert_name);
	snprintf(m.u.device.probe_topic, sizeof(m.u.device.probe_topic), "probe/%s", cert_name);
	return wcoord_send(c, &m);
}

/* Sends PHASE drain, waits for DONE and the exit; returns the wait status. */
static inline int wcoord_finish(wcoord *c, int64_t timeout_ns)
{
	int status = -1;

	wcoord_phase(c, WP_PHASE_DRAIN);
	wcoord_pump_until(c, &c->done, 1, timeout_ns);
	if (c->done == 0)
		kill(c->pid, SIGKILL);
	waitpid(c->pid, &status, 0);
	c->pid = 0;
	wp_chan_free(c->chan);
	c->chan = NULL;
	close(c->fd);
	return status;
}

/* Kills a worker still running (after a failed test). */
static inline void wcoord_kill(wcoord *c)
{
	if (c->pid > 0) {
		kill(c->pid, SIGKILL);
		waitpid(c->pid, NULL, 0);
		c->pid = 0;
	}
	wp_chan_free(c->chan);
	c->chan = NULL;
}

#endif
