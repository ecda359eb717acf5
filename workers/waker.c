/*
 * The waker: paho's wake-up latency fix and its sentinel client in one.
 *
 * Paho 1.3.12 (Debian's libpaho-mqtt3as, built with poll) has one receive
 * thread that polls a saved copy of its socket set for reading, with a
 * 1000 ms timeout, and sleeps another 100 ms whenever a poll times out. A
 * socket created by MQTTAsync_connect joins the saved set only when the
 * current poll returns, and the completion of its TCP connect (writability)
 * is only checked at the start of a cycle. With no other traffic a new
 * connection's handshake therefore waits up to about 1.1 s per step, which
 * would be measured as connect latency.
 *
 * The fix: the worker runs a minimal MQTT listener on 127.0.0.1 and keeps one
 * paho client (the sentinel) connected to it over plain TCP. While any
 * connection has just called connect (for 5 ms after each call), the driver
 * writes a 2-byte PINGRESP to the sentinel's socket every millisecond. Each one
 * ends paho's poll, so new sockets join the set and connects progress within
 * about a millisecond. While nothing connects it kicks every 500 ms, so the
 * poll never times out and paho never starts its 100 ms sleep. Paho ignores an unsolicited PINGRESP apart from
 * clearing its ping-outstanding flag. No traffic goes to the broker under
 * test, so the kicks count against no AWS quota.
 *
 * The sentinel stays connected for the life of the process, so paho's global
 * client count never drops to 0 while devices create and destroy handles:
 * when it does, paho tears down its library-wide state, and a handle created
 * at that moment can crash.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "workers/worker_internal.h"

#define COMPONENT "worker"
#define KICK_PERIOD_NS PL_NS_PER_MS
/* Kicks while nothing connects keep paho's poll from ever timing out, so it
 * never takes its extra 100 ms sleep right when a connect arrives. */
#define IDLE_KICK_PERIOD_NS (500 * PL_NS_PER_MS)

/* A connect needs kicks only until its socket is in paho's poll set and its
 * TCP connect has completed. Later handshake steps wake paho through the
 * device's own socket. */
#define CONNECT_KICK_WINDOW_NS (5 * PL_NS_PER_MS)

static int64_t kick_period(const worker *w, int64_t now)
{
	return now < w->kick_until ? KICK_PERIOD_NS : IDLE_KICK_PERIOD_NS;
}

void waker_connect_started(worker *w, int64_t now)
{
	w->kick_until = now + CONNECT_KICK_WINDOW_NS;
}

static int listen_loopback(int *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (fd < 0)
		return -1;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 1) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
		close(fd);
		return -1;
	}
	*port = ntohs(a.sin_port);
	return fd;
}

pl_err waker_start(worker *w, pl_errmsg *e)
{
	wk_waker *k = &w->waker;
	char uri[64];
	char id[64];
	mq_params p = { 0 };
	int port = 0;
	int rc;

	k->conn_fd = -1;
	k->listen_fd = listen_loopback(&port);
	if (k->listen_fd < 0)
		return pl_errmsg_set(e, PL_ERR_NETWORK, "waker: listen on 127.0.0.1: %s",
				     strerror(errno));
	snprintf(uri, sizeof(uri), "tcp://127.0.0.1:%d", port);
	snprintf(id, sizeof(id), "policylag-sentinel-%d", (int)getpid());
	p.uri = uri;
	p.client_id = id;
	p.mqtt_version = 4;
	p.keepalive_s = 0; /* the listener replies to CONNECT only, never to PINGREQ */
	p.connect_timeout_s = 10;
	if (mq_create(&k->sentinel, &p, WK_OWNER_SENTINEL, 1, e) != PL_OK)
		goto close_listener;
	rc = mq_connect(k->sentinel, &p, WK_OWNER_SENTINEL, 1);
	if (rc != MQTTASYNC_SUCCESS) {
		pl_errmsg_set(e, PL_ERR_INTERNAL, "waker: sentinel connect: %s", mq_code_text(rc));
		goto destroy_sentinel;
	}
	return PL_OK;
destroy_sentinel:
	MQTTAsync_destroy(&k->sentinel);
close_listener:
	close(k->listen_fd);
	k->listen_fd = -1;
	return PL_ERR_INTERNAL;
}

/* Accepts the sentinel, replies to its CONNECT with a CONNACK, discards the rest. */
void waker_on_readable(worker *w)
{
	wk_waker *k = &w->waker;
	uint8_t buf[256];
	static const uint8_t connack[4] = { 0x20, 0x02, 0x00, 0x00 };
	ssize_t n;

	if (k->conn_fd < 0) {
		int one = 1;

		k->conn_fd = accept4(k->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (k->conn_fd >= 0)
			setsockopt(k->conn_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		return;
	}
	while ((n = read(k->conn_fd, buf, sizeof(buf))) > 0) {
		if (!k->connack_sent && buf[0] == 0x10 &&
		    write(k->conn_fd, connack, sizeof(connack)) == (ssize_t)sizeof(connack))
			k->connack_sent = 1;
	}
	if (n == 0) {
		PL_WARN(COMPONENT, "waker: the sentinel client closed its connection");
		close(k->conn_fd);
		k->conn_fd = -1;
	}
}

void waker_kick(worker *w, int64_t now)
{
	wk_waker *k = &w->waker;
	static const uint8_t pingresp[2] = { 0xD0, 0x00 };

	if (k->conn_fd < 0 || !k->connack_sent || now - k->t_last_kick < kick_period(w, now))
		return;
	k->t_last_kick = now;
	/* A full socket buffer means paho is awake and reading anyway. */
	if (write(k->conn_fd, pingresp, sizeof(pingresp)) < 0 && errno != EAGAIN)
		PL_DEBUG(COMPONENT, "waker: write: %s", strerror(errno));
}

void waker_stop(worker *w)
{
	wk_waker *k = &w->waker;

	if (k->sentinel != NULL)
		MQTTAsync_destroy(&k->sentinel);
	if (k->conn_fd >= 0)
		close(k->conn_fd);
	if (k->listen_fd >= 0)
		close(k->listen_fd);
	k->conn_fd = k->listen_fd = -1;
}

int64_t waker_next_kick(const worker *w, int64_t now)
{
	if (w->waker.conn_fd < 0 || !w->waker.connack_sent)
		return INT64_MAX;
	return w->waker.t_last_kick + kick_period(w, now);
}
