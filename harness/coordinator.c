/* The coordinator's worker processes: spawning, the message pump, reaping. */
#include "harness/coordinator.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"

#define COMPONENT "coordinator"

/* The worker's end of the socketpair is this descriptor in the worker. */
#define WORKER_FD 3
/* Bytes of output a channel may queue: DEVICE messages for a few hundred devices. */
#define CHAN_OUT_CAP (4u << 20)
/* Limit for one blocking send to a worker during setup. */
#define SEND_TIMEOUT_NS (10 * PL_NS_PER_S)

volatile int coord_signal_count;
volatile int coord_last_signal;
int coord_signal_wake_fd = -1;

static const char *const phase_names[] = {
	[COORD_PHASE_PREPARE] = "prepare", [COORD_PHASE_CONNECT] = "connect",
	[COORD_PHASE_SETTLE] = "settle",   [COORD_PHASE_SWAP] = "swap",
	[COORD_PHASE_OBSERVE] = "observe", [COORD_PHASE_DRAIN] = "drain",
	[COORD_PHASE_DONE] = "done",
};

const char *coord_phase_name(coord_phase p)
{
	return phase_names[p];
}

/* The device range [*first, *first + *count) of shard index (1-based) of count. */
static void shard_range(int64_t devices, int index, int count, int64_t *first, int64_t *n)
{
	int64_t lo = devices * (index - 1) / count;
	int64_t hi = devices * index / count;

	*first = lo;
	*n = hi - lo;
}

static pl_err init_device(coordinator *c, coord_device *d, int64_t index, pl_errmsg *e)
{
	const profile *p = c->prof;
	const profile_group *g = profile_group_of(p, index);
	pl_err err;

	d->index = (uint32_t)index;
	d->group = (uint16_t)(g - p->groups);
	d->t_connect_ns = RUNDIR_TIME_UNKNOWN;
	d->t_swap_start_ns = RUNDIR_TIME_UNKNOWN;
	d->t_swap_ns = RUNDIR_TIME_UNKNOWN;
	d->t_change_ns = RUNDIR_TIME_UNKNOWN;
	d->t_effect_ns = RUNDIR_TIME_UNKNOWN;
	err = profile_device_name(p, index, d->name, sizeof(d->name));
	if (err == PL_OK)
		err = profile_expand_topic(p->probe.topic, d->name, d->name, d->probe_topic,
					   sizeof(d->probe_topic));
	if (err != PL_OK)
		return pl_errmsg_set(e, err, "device %lld: name or probe topic too long",
				     (long long)index);
	return PL_OK;
}

pl_err coord_init_devices(coordinator *c, int shard_index, int shard_count, pl_errmsg *e)
{
	int64_t first, n, per_worker = c->prof->fleet.worker_devices;
	pl_err err;

	shard_range(c->prof->fleet.devices, shard_index, shard_count, &first, &n);
	if (n <= 0)
		return pl_errmsg_set(e, PL_ERR_INVALID, "shard %d/%d has no devices (fleet of %lld)",
				     shard_index, shard_count, (long long)c->prof->fleet.devices);
	c->devices = calloc((size_t)n, sizeof(*c->devices));
	if (c->devices == NULL)
		return pl_errmsg_set(e, PL_ERR_NOMEM, "device table: out of memory");
	c->ndevices = (uint32_t)n;
	c->first_index = (uint32_t)first;
	if (per_worker <= 0)
		per_worker = 250;
	c->nworkers = (int)((n + per_worker - 1) / per_worker);
	c->workers = calloc((size_t)c->nworkers, sizeof(*c->workers));
	if (c->workers == NULL)
		return pl_errmsg_set(e, PL_ERR_NOMEM, "worker table: out of memory");
	for (uint32_t i = 0; i < c->ndevices; i++) {
		err = init_device(c, &c->devices[i], first + i, e);
		if (err != PL_OK)
			return err;
		c->devices[i].worker = (int)(i / (uint32_t)per_worker);
	}
	for (int w = 0; w < c->nworkers; w++) {
		c->workers[w].index = w;
		c->workers[w].fd = -1;
		c->workers[w].first = (uint32_t)(w * per_worker);
		c->workers[w].count = (uint32_t)(w + 1 == c->nworkers ? n - w * per_worker
								: per_worker);
	}
	return PL_OK;
}

/* In the child: move the socket to WORKER_FD, leave the terminal's group, exec. */
static void exec_worker(const coordinator *c, int fd)
{
	char level[16];
	char fd_text[16];
	char *argv[8];

	if (fd != WORKER_FD) {
		if (dup2(fd, WORKER_FD) < 0)
			_exit(127);
		close(fd);
	} else {
		fcntl(fd, F_SETFD, 0);
	}
	/* Ctrl-C reaches only the coordinator, which then drains the workers. */
	setpgid(0, 0);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	snprintf(level, sizeof(level), "%s", pl_log_level_name((pl_log_level)pl_log_threshold));
	snprintf(fd_text, sizeof(fd_text), "%d", WORKER_FD);
	argv[0] = (char *)"policylag";
	argv[1] = (char *)"--log-level";
	argv[2] = level;
	argv[3] = (char *)"worker";
	argv[4] = (char *)"--fd";
	argv[5] = fd_text;
	argv[6] = NULL;
	execv(c->self_exe, argv);
	_exit(127);
}

static pl_err start_worker(coordinator *c, coord_worker *w, pl_errmsg *e)
{
	int sv[2];
	pid_t pid;
	pl_err err;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		return pl_errmsg_set(e, PL_ERR_IO, "socketpair: %s", strerror(errno));
	pid = fork();
	if (pid < 0) {
		close(sv[0]);
		close(sv[1]);
		return pl_errmsg_set(e, PL_ERR_CHILD, "fork: %s", strerror(errno));
	}
	if (pid == 0) {
		close(sv[0]);
		exec_worker(c, sv[1]);
	}
	close(sv[1]);
	w->pid = pid;
	w->fd = sv[0];
	err = wp_chan_create(&w->chan, w->fd, CHAN_OUT_CAP, e);
	if (err != PL_OK)
		return err;
	PL_DEBUG(COMPONENT, "worker %d started: pid %d, %u devices", w->index, (int)pid,
		 w->count);
	return PL_OK;
}

/*
 * Publishes per second of one prober connection: 80% of the per-connection
 * publish quota (AWS: 100/s), so that throttling never looks like a denial.
 */
static uint16_t prober_rate(const profile *p)
{
	double quota = p->target.kind == PROFILE_TARGET_SIMULATOR
			       ? p->target.simulator.quotas.publish_per_connection
			       : 100.0;

	if (quota <= 0)
		quota = 100.0;
	return (uint16_t)(quota * 0.8 < 1 ? 1 : quota * 0.8);
}

static void fill_hello(const coordinator *c, const coord_worker *w, wp_hello *h)
{
	const profile *p = c->prof;
	int64_t keep_alive = p->groups[0].keep_alive_ns / PL_NS_PER_S;
	int64_t connect_timeout = p->timing.connect_timeout_ns / PL_NS_PER_S;

	memset(h, 0, sizeof(*h));
	h->version = WP_VERSION;
	h->worker_index = (uint32_t)w->index;
	h->log_level = (uint8_t)pl_log_threshold;
	snprintf(h->host, sizeof(h->host), "%s", c->mqtt_host);
	h->port = (uint16_t)c->mqtt_port;
	snprintf(h->ca_path, sizeof(h->ca_path), "%s", c->ca_path);
	if (p->fleet.connect_rate > 0)
		h->connect_rate_milli = coord_rate_share_milli(c, p->fleet.connect_rate);
	h->keepalive_s = (uint16_t)(keep_alive > 0 ? keep_alive : 30);
	h->connect_timeout_s = (uint16_t)(connect_timeout > 0 ? connect_timeout : 10);
	if (c->have_prober) {
		snprintf(h->prober_client_id, sizeof(h->prober_client_id), "%sprober-%d",
			 p->fleet.client_id_prefix, w->index);
		snprintf(h->prober_cert, sizeof(h->prober_cert), "%s", c->prober.cert_path);
		snprintf(h->prober_key, sizeof(h->prober_key), "%s", c->prober.key_path);
	}
	if (p->probe.shared_topic)
		snprintf(h->prober_topic, sizeof(h->prober_topic), "%s", p->probe.topic);
	h->prober_rate_max = prober_rate(p);
	h->max_devices = w->count;
}

static void fill_group(const coordinator *c, size_t i, wp_group *g)
{
	const profile *p = c->prof;
	const profile_group *pg = &p->groups[i];

	memset(g, 0, sizeof(*g));
	g->id = (uint16_t)i;
	snprintf(g->name, sizeof(g->name), "%s", pg->name);
	g->strategy = pg->strategy == PROFILE_STRATEGY_KEEP_CONNECTION ? WP_STRATEGY_KEEP
								     : WP_STRATEGY_RECONNECT;
	g->direction = p->swap.direction == PROFILE_SWAP_GRANT ? WP_DIRECTION_GRANT
							       : WP_DIRECTION_REVOKE;
	g->mqtt_version = (uint8_t)pg->mqtt_version;
	g->qos = (uint8_t)pg->qos;
	g->probe_mode = p->probe.kind == PROFILE_PROBE_PROBER ? WP_PROBE_PROBER : WP_PROBE_ECHO;
	g->client_ids = pg->client_id_scheme == PROFILE_CLIENT_ID_FRESH_PER_ATTEMPT
				? WP_CLIENT_ID_FRESH
				: WP_CLIENT_ID_FIXED;
	g->probe_interval_ns = p->probe.interval_ns;
	g->attempt_window_ns = pg->attempt_window_ns;
	g->attempt_interval_ns = pg->attempt_interval_ns;
	g->observe_timeout_ns = p->timing.observe_timeout_ns;
	g->confirm_ns = profile_revoke_confirm_ns(p);
}

/*
 * Writes the probe topic of d's DEVICE message. Echo devices of
 * fresh-per-attempt groups get the template with ${device} expanded and
 * ${client_id} kept, so that each attempt subscribes and probes on the topic
 * of its own client id, as policies written with ${iot:ClientId} require.
 * Every other device gets d->probe_topic, whose ${client_id} is the device
 * name (validation rejects a prober with per-attempt topics).
 */
static void fill_probe_topic(const coordinator *c, const coord_device *d, wp_device *out)
{
	const profile *p = c->prof;
	const profile_group *pg = &p->groups[d->group];

	if (pg->strategy == PROFILE_STRATEGY_RECONNECT_PER_ATTEMPT &&
	    pg->client_id_scheme == PROFILE_CLIENT_ID_FRESH_PER_ATTEMPT &&
	    p->probe.kind == PROFILE_PROBE_ECHO &&
	    profile_expand_topic(p->probe.topic, d->name, "${client_id}", out->probe_topic,
				 sizeof(out->probe_topic)) == PL_OK)
		return;
	snprintf(out->probe_topic, sizeof(out->probe_topic), "%s", d->probe_topic);
}

static void fill_device(const coordinator *c, const coord_device *d, wp_device *out)
{
	memset(out, 0, sizeof(*out));
	out->index = d->index;
	out->group = d->group;
	snprintf(out->client_id, sizeof(out->client_id), "%s", d->name);
	snprintf(out->cert_path, sizeof(out->cert_path), "%s", d->identity->cert_path);
	snprintf(out->key_path, sizeof(out->key_path), "%s", d->identity->key_path);
	snprintf(out->cert_id, sizeof(out->cert_id), "%s", d->identity->cert_id);
	fill_probe_topic(c, d, out);
}

/* Sends HELLO, GROUPs and DEVICEs, then waits for READY. */
static pl_err greet_worker(coordinator *c, coord_worker *w, pl_errmsg *e)
{
	wp_msg m;
	pl_err err;

	memset(&m, 0, sizeof(m));
	m.type = WP_MSG_HELLO;
	fill_hello(c, w, &m.u.hello);
	err = wp_chan_send_wait(w->chan, &m, SEND_TIMEOUT_NS, e);
	for (size_t g = 0; err == PL_OK && g < c->prof->group_count; g++) {
		m.type = WP_MSG_GROUP;
		fill_group(c, g, &m.u.group);
		err = wp_chan_send_wait(w->chan, &m, SEND_TIMEOUT_NS, e);
	}
	for (uint32_t i = 0; err == PL_OK && i < w->count; i++) {
		m.type = WP_MSG_DEVICE;
		fill_device(c, &c->devices[w->first + i], &m.u.device);
		err = wp_chan_send_wait(w->chan, &m, SEND_TIMEOUT_NS, e);
	}
	if (err != PL_OK) {
		pl_errmsg_prefix(e, "worker %d (pid %d)", w->index, (int)w->pid);
		return err;
	}
	return PL_OK;
}

/* Waits until every worker has sent READY, handling other messages meanwhile. */
static pl_err wait_ready(coordinator *c, pl_errmsg *e)
{
	int64_t deadline = pl_mono_ns() + SEND_TIMEOUT_NS + c->nworkers * PL_NS_PER_S / 4;

	for (;;) {
		int ready = 0;

		for (int i = 0; i < c->nworkers; i++) {
			if (c->workers[i].dead)
				return pl_errmsg_set(e, PL_ERR_CHILD,
						     "worker %d (pid %d) exited during start-up",
						     i, (int)c->workers[i].pid);
			ready += c->workers[i].ready;
		}
		if (ready == c->nworkers)
			return PL_OK;
		if (coord_signal_count > 0)
			return pl_errmsg_set(e, PL_ERR_INTERRUPTED, "interrupted during start-up");
		if (pl_mono_ns() > deadline)
			return pl_errmsg_set(e, PL_ERR_TIMEOUT,
					     "%d of %d workers did not answer READY", c->nworkers - ready,
					     c->nworkers);
		coord_pump(c, 100 * PL_NS_PER_MS);
	}
}

pl_err coord_spawn_workers(coordinator *c, pl_errmsg *e)
{
	pl_err err;

	for (int i = 0; i < c->nworkers; i++) {
		err = start_worker(c, &c->workers[i], e);
		if (err != PL_OK)
			return err;
	}
	for (int i = 0; i < c->nworkers; i++) {
		char fields[96];

		err = greet_worker(c, &c->workers[i], e);
		if (err != PL_OK)
			return err;
		snprintf(fields, sizeof(fields), "\"worker\":%d,\"pid\":%d,\"devices\":%u", i,
			 (int)c->workers[i].pid, c->workers[i].count);
		coord_event(c, pl_mono_ns(), "worker_start", NULL, fields);
	}
	return wait_ready(c, e);
}

void coord_send_to_worker(coordinator *c, coord_worker *w, const wp_msg *m)
{
	pl_errmsg e = { "" };

	if (w->dead || w->chan == NULL)
		return;
	if (wp_chan_send_wait(w->chan, m, SEND_TIMEOUT_NS, &e) != PL_OK) {
		COORD_LOG(c, PL_LOG_WARN, "worker %d: cannot send %s: %s", w->index,
			wp_type_name(m->type), e.msg);
		coord_worker_died(c, w, "its socket failed");
	}
}

void coord_broadcast(coordinator *c, const wp_msg *m)
{
	for (int i = 0; i < c->nworkers; i++)
		coord_send_to_worker(c, &c->workers[i], m);
}

void coord_send_phase(coordinator *c, wp_phase phase)
{
	wp_msg m;

	memset(&m, 0, sizeof(m));
	m.type = WP_MSG_PHASE;
	m.u.phase.phase = (uint8_t)phase;
	m.u.phase.t_ns = pl_mono_ns();
	for (int i = 0; i < c->nworkers; i++)
		coord_send_to_worker(c, &c->workers[i], &m);
}

void coord_send_swap(coordinator *c, uint32_t device, wp_swap_kind kind, int64_t t_ns)
{
	wp_msg m;

	memset(&m, 0, sizeof(m));
	m.type = WP_MSG_SWAP;
	m.u.swap.kind = (uint8_t)kind;
	m.u.swap.swap_index = 0;
	m.u.swap.t_ns = t_ns;
	if (device == UINT32_MAX) {
		m.u.swap.first = 0;
		m.u.swap.count = WP_ALL_DEVICES;
		for (int i = 0; i < c->nworkers; i++)
			coord_send_to_worker(c, &c->workers[i], &m);
		return;
	}
	m.u.swap.first = c->devices[device].index;
	m.u.swap.count = 1;
	coord_send_to_worker(c, &c->workers[c->devices[device].worker], &m);
}

/* Reads everything a worker sent and handles each message. */
static void read_worker(coordinator *c, coord_worker *w)
{
	pl_errmsg e = { "" };
	pl_err err = wp_chan_fill(w->chan, &e);
	wp_msg m;
	int got;

	while ((got = wp_chan_next(w->chan, &m, &e)) == 1)
		coord_handle_msg(c, w, &m);
	if (got < 0) {
		COORD_LOG(c, PL_LOG_ERROR, "worker %d sent a malformed message: %s", w->index, e.msg);
		coord_worker_died(c, w, "it sent a malformed message");
	} else if (err == PL_ERR_NOT_FOUND) {
		coord_worker_died(c, w, w->done ? NULL : "its socket closed");
	} else if (err != PL_OK) {
		coord_worker_died(c, w, "reading its socket failed");
	}
}

/* Reaps exited workers without blocking. */
static void reap_children(coordinator *c)
{
	for (int i = 0; i < c->nworkers; i++) {
		coord_worker *w = &c->workers[i];
		int status;

		if (w->reaped || w->pid <= 0)
			continue;
		if (waitpid(w->pid, &status, WNOHANG) != w->pid)
			continue;
		w->reaped = 1;
		w->exit_status = status;
		if (!w->dead)
			read_worker(c, w); /* take what it wrote before exiting */
		if (!w->dead || !w->done)
			coord_worker_died(c, w, "the process exited");
	}
}

static void drain_wake_pipe(coordinator *c)
{
	char buf[64];

	while (read(c->wake_pipe[0], buf, sizeof(buf)) > 0) {
	}
}

static void drain_notes(coordinator *c);

void coord_pump(coordinator *c, int64_t timeout_ns)
{
	struct pollfd fds[1 + 4096];
	coord_worker *owner[1 + 4096];
	nfds_t n = 0;

	fds[n].fd = c->wake_pipe[0];
	fds[n].events = POLLIN;
	owner[n++] = NULL;
	for (int i = 0; i < c->nworkers && n < sizeof(fds) / sizeof(fds[0]); i++) {
		coord_worker *w = &c->workers[i];

		if (w->dead || w->chan == NULL)
			continue;
		fds[n].fd = w->fd;
		fds[n].events = (short)(POLLIN | (wp_chan_pending(w->chan) > 0 ? POLLOUT : 0));
		owner[n++] = w;
	}
	if (poll(fds, n, (int)(timeout_ns / PL_NS_PER_MS)) > 0) {
		if (fds[0].revents != 0)
			drain_wake_pipe(c);
		for (nfds_t i = 1; i < n; i++) {
			if (fds[i].revents & POLLOUT)
				wp_chan_flush(owner[i]->chan, NULL);
			if (fds[i].revents & (POLLIN | POLLHUP | POLLERR))
				read_worker(c, owner[i]);
		}
	}
	reap_children(c);
	drain_notes(c);
	coord_flush_pending(c, 0);
	coord_rate_update(c);
	if (coord_signal_count > 0 && !c->interrupted) {
		char reason[64];

		snprintf(reason, sizeof(reason), "%s received",
			 coord_last_signal == SIGTERM ? "SIGTERM" : "SIGINT");
		coord_request_stop(c, reason);
	}
	coord_show_progress(c, 0);
}

void coord_push_note(coordinator *c, const coord_swap_note *n)
{
	char one = 1;

	pthread_mutex_lock(&c->notes_lock);
	if (c->nnotes == c->notes_cap) {
		size_t cap = c->notes_cap ? c->notes_cap * 2 : 256;
		coord_swap_note *grown = realloc(c->notes, cap * sizeof(*grown));

		if (grown == NULL) {
			pthread_mutex_unlock(&c->notes_lock);
			PL_ERROR(COMPONENT, "swap notes: out of memory; a device's swap is lost");
			return;
		}
		c->notes = grown;
		c->notes_cap = cap;
	}
	c->notes[c->nnotes++] = *n;
	pthread_mutex_unlock(&c->notes_lock);
	if (write(c->wake_pipe[1], &one, 1) < 0) {
		/* The pipe is full, so the coordinator is already due to wake. */
	}
}

static void apply_note(coordinator *c, coord_device *d, const coord_swap_note *n)
{
	if (n->kind == WP_SWAP_STARTED) {
		d->swap_started = 1;
		d->t_swap_start_ns = n->t_ns;
		d->t_change_ns = n->t_change_ns;
	} else if (n->kind == WP_SWAP_DONE || n->kind == COORD_NOTE_FINISHED) {
		d->swapped = 1;
		if (n->kind == WP_SWAP_DONE)
			d->t_swap_ns = n->t_ns;
		if (n->t_change_ns != RUNDIR_TIME_UNKNOWN)
			d->t_change_ns = n->t_change_ns;
		c->counts.swapped++;
	} else {
		d->swap_failed = 1;
		d->errors++;
		c->counts.errors++;
	}
}

/*
 * Applies the swap notes and forwards them to the workers, except those of
 * trigger publishes, whose workers started the detection themselves.
 */
static void drain_notes(coordinator *c)
{
	coord_swap_note *batch;
	size_t n;

	pthread_mutex_lock(&c->notes_lock);
	batch = c->notes;
	n = c->nnotes;
	c->notes = NULL;
	c->nnotes = 0;
	c->notes_cap = 0;
	pthread_mutex_unlock(&c->notes_lock);
	for (size_t i = 0; i < n; i++) {
		const coord_swap_note *note = &batch[i];

		if (note->device == UINT32_MAX) {
			for (uint32_t d = 0; d < c->ndevices; d++)
				apply_note(c, &c->devices[d], note);
		} else {
			apply_note(c, &c->devices[note->device], note);
		}
		if (note->kind == WP_SWAP_STARTED) {
			if (c->t_swap_first_ns == 0 || note->t_ns < c->t_swap_first_ns)
				c->t_swap_first_ns = note->t_ns;
			if (note->t_ns > c->t_swap_last_ns)
				c->t_swap_last_ns = note->t_ns;
		}
		if (note->kind != WP_SWAP_STARTED)
			c->swap_jobs_finished++;
		if ((note->kind == WP_SWAP_STARTED || note->kind == WP_SWAP_DONE) &&
		    !note->worker_started)
			coord_send_swap(c, note->device, (wp_swap_kind)note->kind, note->t_ns);
	}
	free(batch);
}

void coord_kill_workers(coordinator *c, int64_t timeout_ns)
{
	for (int i = 0; i < c->nworkers; i++)
		if (!c->workers[i].reaped && c->workers[i].pid > 0)
			kill(c->workers[i].pid, SIGKILL);
	coord_reap_workers(c, timeout_ns);
}

void coord_reap_workers(coordinator *c, int64_t timeout_ns)
{
	int64_t deadline = pl_mono_ns() + timeout_ns;

	for (;;) {
		int running = 0;

		for (int i = 0; i < c->nworkers; i++)
			running += !c->workers[i].reaped && c->workers[i].pid > 0;
		if (running == 0)
			return;
		if (pl_mono_ns() > deadline) {
			for (int i = 0; i < c->nworkers; i++) {
				coord_worker *w = &c->workers[i];

				if (w->reaped || w->pid <= 0)
					continue;
				COORD_LOG(c, PL_LOG_WARN, "worker %d (pid %d) did not exit; killing it",
					w->index, (int)w->pid);
				kill(w->pid, SIGKILL);
				waitpid(w->pid, &w->exit_status, 0);
				w->reaped = 1;
				if (!w->dead)
					coord_worker_died(c, w, "it did not exit after the run");
			}
			return;
		}
		coord_pump(c, 50 * PL_NS_PER_MS);
	}
}
