#include "workers/protocol.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"

/*
 * One walker per message serves both directions: when encoding it reads the
 * fields, when decoding it writes them, so the two can never disagree on the
 * field order.
 */
typedef struct codec {
	uint8_t *buf;
	size_t cap;
	size_t pos;
	int decode;
	int failed; /* out of room (encode) or truncated/bad string (decode) */
} codec;

static void c_bytes(codec *c, void *v, size_t n)
{
	if (c->failed || c->cap - c->pos < n) {
		c->failed = 1;
		return;
	}
	if (c->decode)
		memcpy(v, c->buf + c->pos, n);
	else
		memcpy(c->buf + c->pos, v, n);
	c->pos += n;
}

/* Integers are little endian on the wire. */
static void c_uint(codec *c, uint64_t *v, size_t width)
{
	uint8_t b[8];

	if (!c->decode)
		for (size_t i = 0; i < width; i++)
			b[i] = (uint8_t)(*v >> (8 * i));
	c_bytes(c, b, width);
	if (c->decode && !c->failed) {
		*v = 0;
		for (size_t i = 0; i < width; i++)
			*v |= (uint64_t)b[i] << (8 * i);
	}
}

#define DEFINE_FIELD(name, type, width)            \
	static void name(codec *c, type *v)        \
	{                                          \
		uint64_t x = (uint64_t)*v;         \
		c_uint(c, &x, width);              \
		if (c->decode)                     \
			*v = (type)x;              \
	}

DEFINE_FIELD(c_u8, uint8_t, 1)
DEFINE_FIELD(c_u16, uint16_t, 2)
DEFINE_FIELD(c_u32, uint32_t, 4)
DEFINE_FIELD(c_i32, int32_t, 4)
DEFINE_FIELD(c_u64, uint64_t, 8)
DEFINE_FIELD(c_i64, int64_t, 8)

/* A string: u16 length, then the bytes. It must fit cap with its NUL. */
static void c_str(codec *c, char *s, size_t cap)
{
	uint16_t len = 0;

	if (!c->decode) {
		size_t n = strnlen(s, cap);

		if (n >= cap || n > UINT16_MAX) {
			c->failed = 1;
			return;
		}
		len = (uint16_t)n;
	}
	c_u16(c, &len);
	if (c->failed)
		return;
	if (c->decode && (size_t)len >= cap) {
		c->failed = 1;
		return;
	}
	c_bytes(c, s, len);
	if (c->decode && !c->failed)
		s[len] = '\0';
}

#define C_STR(c, field) c_str((c), (field), sizeof(field))

static void walk_hello(codec *c, wp_hello *m)
{
	c_u16(c, &m->version);
	c_u32(c, &m->worker_index);
	c_u8(c, &m->log_level);
	C_STR(c, m->host);
	c_u16(c, &m->port);
	C_STR(c, m->ca_path);
	c_u8(c, &m->dest_count);
	if (m->dest_count > WP_DEST_MAX) {
		c->failed = 1;
		return;
	}
	for (unsigned i = 0; i < m->dest_count; i++)
		C_STR(c, m->dest[i]);
	c_u32(c, &m->connect_rate_milli);
	c_u16(c, &m->keepalive_s);
	c_u16(c, &m->connect_timeout_s);
	C_STR(c, m->prober_client_id);
	C_STR(c, m->prober_cert);
	C_STR(c, m->prober_key);
	C_STR(c, m->prober_topic);
	c_u16(c, &m->prober_rate_max);
	c_u32(c, &m->max_devices);
}

static void walk_group(codec *c, wp_group *m)
{
	c_u16(c, &m->id);
	C_STR(c, m->name);
	c_u8(c, &m->strategy);
	c_u8(c, &m->direction);
	c_u8(c, &m->mqtt_version);
	c_u8(c, &m->qos);
	c_u8(c, &m->probe_mode);
	c_u8(c, &m->client_ids);
	c_i64(c, &m->probe_interval_ns);
	c_i64(c, &m->attempt_window_ns);
	c_i64(c, &m->attempt_interval_ns);
	c_i64(c, &m->observe_timeout_ns);
	c_i64(c, &m->confirm_ns);
}

static void walk_device(codec *c, wp_device *m)
{
	c_u32(c, &m->index);
	c_u16(c, &m->group);
	C_STR(c, m->client_id);
	C_STR(c, m->cert_path);
	C_STR(c, m->key_path);
	C_STR(c, m->cert_id);
	C_STR(c, m->probe_topic);
}

static void walk_phase(codec *c, wp_phase_msg *m)
{
	c_u8(c, &m->phase);
	c_i64(c, &m->t_ns);
}

static void walk_swap(codec *c, wp_swap *m)
{
	c_u8(c, &m->kind);
	c_u32(c, &m->swap_index);
	c_u32(c, &m->first);
	c_u32(c, &m->count);
	c_i64(c, &m->t_ns);
}

static void walk_ping(codec *c, wp_ping *m)
{
	c_u32(c, &m->seq);
	c_i64(c, &m->t_ns);
}

static void walk_rate(codec *c, wp_rate *m)
{
	c_u32(c, &m->connect_rate_milli);
	c_i64(c, &m->t_ns);
}

static void walk_trigger(codec *c, wp_trigger *m)
{
	c_u32(c, &m->device);
	c_u32(c, &m->swap_index);
	c_u8(c, &m->qos);
	C_STR(c, m->topic);
	C_STR(c, m->payload);
}

static void walk_ready(codec *c, wp_ready *m)
{
	c_u32(c, &m->worker_index);
	c_u32(c, &m->pid);
	c_u32(c, &m->nofile_limit);
	C_STR(c, m->paho_version);
}

static void walk_event(codec *c, wp_event *m)
{
	c_u32(c, &m->device);
	c_u8(c, &m->kind);
	c_u32(c, &m->attempt);
	c_i64(c, &m->t_ns);
	c_i32(c, &m->code);
	c_i64(c, &m->connect_ns);
	C_STR(c, m->text);
}

static void walk_timing(codec *c, wp_timing *m)
{
	c_u32(c, &m->device);
	c_u32(c, &m->attempt);
	c_i64(c, &m->t_connect_call_ns);
	c_i64(c, &m->connect_ns);
	c_i64(c, &m->subscribe_ns);
	c_i64(c, &m->probe_rtt_ns);
	c_i32(c, &m->suback_code);
}

static void walk_effect(codec *c, wp_effect *m)
{
	c_u32(c, &m->device);
	c_u32(c, &m->swap_index);
	c_i64(c, &m->t_effect_ns);
}

static void walk_record(codec *c, wp_record *m)
{
	c_u32(c, &m->device);
	C_STR(c, m->client_id);
	C_STR(c, m->group);
	c_u8(c, &m->strategy);
	c_u8(c, &m->direction);
	c_u32(c, &m->swap_index);
	C_STR(c, m->cert_id);
	c_u32(c, &m->worker);
	c_i64(c, &m->t_swap_start_ns);
	c_i64(c, &m->t_swap_ns);
	c_i64(c, &m->t_effect_ns);
	c_i64(c, &m->latency_ns);
	c_u8(c, &m->censored);
	c_u32(c, &m->attempts);
	c_u32(c, &m->connects);
	c_u32(c, &m->connect_failures);
	c_u32(c, &m->throttled);
	c_u32(c, &m->errors);
}

static void walk_heartbeat(codec *c, wp_heartbeat *m)
{
	c_u32(c, &m->ping_seq);
	c_i64(c, &m->t_ns);
	c_u32(c, &m->devices);
	c_u32(c, &m->connected);
	c_u32(c, &m->connecting);
	c_u64(c, &m->connects);
	c_u64(c, &m->connect_failures);
	c_u64(c, &m->probes_sent);
	c_u64(c, &m->probes_received);
	c_u64(c, &m->events_dropped);
	c_u64(c, &m->probes_late);
	c_u32(c, &m->rss_kb);
}

static void walk_done(codec *c, wp_done *m)
{
	c_u32(c, &m->records);
}

static void walk_triggered(codec *c, wp_triggered *m)
{
	c_u32(c, &m->device);
	c_u32(c, &m->swap_index);
	c_u8(c, &m->outcome);
	c_i64(c, &m->t_sent_ns);
	c_i64(c, &m->t_done_ns);
	c_u32(c, &m->attempt);
	c_i32(c, &m->code);
	C_STR(c, m->client_id);
	C_STR(c, m->text);
}

/* Walks the body of msg after its type. Returns 0 for an unknown type. */
static int walk_body(codec *c, wp_msg *m)
{
	switch (m->type) {
	case WP_MSG_HELLO: walk_hello(c, &m->u.hello); break;
	case WP_MSG_GROUP: walk_group(c, &m->u.group); break;
	case WP_MSG_DEVICE: walk_device(c, &m->u.device); break;
	case WP_MSG_PHASE: walk_phase(c, &m->u.phase); break;
	case WP_MSG_SWAP: walk_swap(c, &m->u.swap); break;
	case WP_MSG_PING: walk_ping(c, &m->u.ping); break;
	case WP_MSG_RATE: walk_rate(c, &m->u.rate); break;
	case WP_MSG_TRIGGER: walk_trigger(c, &m->u.trigger); break;
	case WP_MSG_READY: walk_ready(c, &m->u.ready); break;
	case WP_MSG_EVENT: walk_event(c, &m->u.event); break;
	case WP_MSG_TIMING: walk_timing(c, &m->u.timing); break;
	case WP_MSG_EFFECT: walk_effect(c, &m->u.effect); break;
	case WP_MSG_RECORD: walk_record(c, &m->u.record); break;
	case WP_MSG_HEARTBEAT: walk_heartbeat(c, &m->u.heartbeat); break;
	case WP_MSG_DONE: walk_done(c, &m->u.done); break;
	case WP_MSG_TRIGGERED: walk_triggered(c, &m->u.triggered); break;
	default: return 0;
	}
	return 1;
}

const char *wp_type_name(uint16_t type)
{
	switch (type) {
	case WP_MSG_HELLO: return "HELLO";
	case WP_MSG_GROUP: return "GROUP";
	case WP_MSG_DEVICE: return "DEVICE";
	case WP_MSG_PHASE: return "PHASE";
	case WP_MSG_SWAP: return "SWAP";
	case WP_MSG_PING: return "PING";
	case WP_MSG_RATE: return "RATE";
	case WP_MSG_TRIGGER: return "TRIGGER";
	case WP_MSG_READY: return "READY";
	case WP_MSG_EVENT: return "EVENT";
	case WP_MSG_TIMING: return "TIMING";
	case WP_MSG_EFFECT: return "EFFECT";
	case WP_MSG_RECORD: return "RECORD";
	case WP_MSG_HEARTBEAT: return "HEARTBEAT";
	case WP_MSG_DONE: return "DONE";
	case WP_MSG_TRIGGERED: return "TRIGGERED";
	default: return "?";
	}
}

pl_err wp_encode(const wp_msg *msg, uint8_t *buf, size_t cap, size_t *len, pl_errmsg *e)
{
	codec c = { buf, cap, 4, 0, 0 };
	/* The walkers take non-const pointers; when encoding they only read. */
	wp_msg *m = (wp_msg *)msg;
	uint16_t type = msg->type;
	uint64_t body;

	if (cap < 4)
		return pl_errmsg_set(e, PL_ERR_RANGE, "encode: buffer too small");
	c_u16(&c, &type);
	if (!walk_body(&c, m))
		return pl_errmsg_set(e, PL_ERR_INVALID, "encode: unknown message type %u",
				     (unsigned)msg->type);
	body = c.pos - 4;
	if (c.failed || body > WP_FRAME_MAX)
		return pl_errmsg_set(e, PL_ERR_RANGE,
				     "encode: %s message too large or has an overlong string",
				     wp_type_name(msg->type));
	c.pos = 0;
	c_u32(&c, &(uint32_t){ (uint32_t)body });
	*len = (size_t)body + 4;
	return PL_OK;
}

pl_err wp_decode(const uint8_t *body, size_t len, wp_msg *msg, pl_errmsg *e)
{
	codec c = { (uint8_t *)body, len, 0, 1, 0 };

	memset(msg, 0, sizeof(*msg));
	c_u16(&c, &msg->type);
	if (c.failed)
		return pl_errmsg_set(e, PL_ERR_PARSE, "decode: frame shorter than its type");
	if (!walk_body(&c, msg))
		return pl_errmsg_set(e, PL_ERR_PARSE, "decode: unknown message type %u",
				     (unsigned)msg->type);
	if (c.failed)
		return pl_errmsg_set(e, PL_ERR_PARSE,
				     "decode: %s frame truncated or has an overlong string",
				     wp_type_name(msg->type));
	if (c.pos != len)
		return pl_errmsg_set(e, PL_ERR_PARSE, "decode: %zu trailing bytes after %s",
				     len - c.pos, wp_type_name(msg->type));
	return PL_OK;
}

/* Channel ------------------------------------------------------------------ */

#define WP_IN_CAP (4 * (WP_FRAME_MAX + 4))

struct wp_chan {
	int fd;
	int eof;
	uint8_t *out;
	size_t out_cap;
	size_t out_len;
	uint8_t in[WP_IN_CAP];
	size_t in_len;
};

pl_err wp_chan_create(wp_chan **out, int fd, size_t out_cap, pl_errmsg *e)
{
	wp_chan *c;
	int flags = fcntl(fd, F_GETFL);

	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
		return pl_errmsg_set(e, PL_ERR_IO, "channel: set O_NONBLOCK: %s", strerror(errno));
	if (out_cap < WP_FRAME_MAX + 4)
		out_cap = WP_FRAME_MAX + 4;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return pl_errmsg_set(e, PL_ERR_NOMEM, "channel: out of memory");
	c->out = malloc(out_cap);
	if (c->out == NULL) {
		free(c);
		return pl_errmsg_set(e, PL_ERR_NOMEM, "channel: out of memory");
	}
	c->fd = fd;
	c->out_cap = out_cap;
	*out = c;
	return PL_OK;
}

void wp_chan_free(wp_chan *c)
{
	if (c == NULL)
		return;
	free(c->out);
	free(c);
}

int wp_chan_fd(const wp_chan *c)
{
	return c->fd;
}

size_t wp_chan_pending(const wp_chan *c)
{
	return c->out_len;
}

pl_err wp_chan_flush(wp_chan *c, pl_errmsg *e)
{
	size_t done = 0;

	while (done < c->out_len) {
		ssize_t n = send(c->fd, c->out + done, c->out_len - done, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n < 0) {
			int err = errno;

			memmove(c->out, c->out + done, c->out_len - done);
			c->out_len -= done;
			return pl_errmsg_set(e, PL_ERR_IO, "channel: write: %s", strerror(err));
		}
		done += (size_t)n;
	}
	memmove(c->out, c->out + done, c->out_len - done);
	c->out_len -= done;
	return PL_OK;
}

pl_err wp_chan_send(wp_chan *c, const wp_msg *msg, pl_errmsg *e)
{
	uint8_t frame[WP_FRAME_MAX + 4];
	size_t len;
	pl_err rc = wp_encode(msg, frame, sizeof(frame), &len, e);

	if (rc != PL_OK)
		return rc;
	if (c->out_cap - c->out_len < len) {
		rc = wp_chan_flush(c, e);
		if (rc != PL_OK)
			return rc;
		if (c->out_cap - c->out_len < len)
			return pl_errmsg_set(e, PL_ERR_LIMIT, "channel: output buffer full");
	}
	memcpy(c->out + c->out_len, frame, len);
	c->out_len += len;
	return wp_chan_flush(c, e);
}

pl_err wp_chan_fill(wp_chan *c, pl_errmsg *e)
{
	while (c->in_len < sizeof(c->in)) {
		ssize_t n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n < 0)
			return pl_errmsg_set(e, PL_ERR_IO, "channel: read: %s", strerror(errno));
		if (n == 0) {
			c->eof = 1;
			break;
		}
		c->in_len += (size_t)n;
	}
	if (c->eof && c->in_len == 0)
		return pl_errmsg_set(e, PL_ERR_NOT_FOUND, "channel: peer closed the connection");
	return PL_OK;
}

int wp_chan_next(wp_chan *c, wp_msg *msg, pl_errmsg *e)
{
	uint32_t body = 0;
	pl_err rc;

	if (c->in_len < 4)
		return 0;
	for (int i = 0; i < 4; i++)
		body |= (uint32_t)c->in[i] << (8 * i);
	if (body > WP_FRAME_MAX) {
		pl_errmsg_set(e, PL_ERR_PARSE, "channel: frame of %u bytes exceeds %d", body,
			      WP_FRAME_MAX);
		return -1;
	}
	if (c->in_len < 4 + (size_t)body)
		return 0;
	rc = wp_decode(c->in + 4, body, msg, e);
	memmove(c->in, c->in + 4 + body, c->in_len - 4 - body);
	c->in_len -= 4 + body;
	return rc == PL_OK ? 1 : -1;
}

/* Polls fd for events until deadline; returns 0 on timeout, 1 when ready. */
static int wait_fd(int fd, short events, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - pl_mono_ns();
		struct pollfd p = { fd, events, 0 };
		int n;

		if (left <= 0)
			return 0;
		n = poll(&p, 1, (int)((left + PL_NS_PER_MS - 1) / PL_NS_PER_MS));
		if (n > 0)
			return 1;
		if (n < 0 && errno != EINTR)
			return 1; /* let the following read or write report the error */
	}
}

pl_err wp_chan_send_wait(wp_chan *c, const wp_msg *msg, int64_t timeout_ns, pl_errmsg *e)
{
	int64_t deadline = pl_mono_ns() + timeout_ns;
	pl_err rc;

	while ((rc = wp_chan_send(c, msg, e)) == PL_ERR_LIMIT)
		if (!wait_fd(c->fd, POLLOUT, deadline))
			return pl_errmsg_set(e, PL_ERR_TIMEOUT, "channel: send timed out");
	if (rc != PL_OK)
		return rc;
	while (c->out_len > 0) {
		if (!wait_fd(c->fd, POLLOUT, deadline))
			return pl_errmsg_set(e, PL_ERR_TIMEOUT, "channel: send timed out");
		rc = wp_chan_flush(c, e);
		if (rc != PL_OK)
			return rc;
	}
	return PL_OK;
}

pl_err wp_chan_recv_wait(wp_chan *c, wp_msg *msg, int64_t timeout_ns, pl_errmsg *e)
{
	int64_t deadline = pl_mono_ns() + timeout_ns;

	for (;;) {
		int got = wp_chan_next(c, msg, e);
		pl_err rc;

		if (got > 0)
			return PL_OK;
		if (got < 0)
			return PL_ERR_PARSE;
		if (c->eof)
			return pl_errmsg_set(e, PL_ERR_NOT_FOUND,
					     "channel: peer closed the connection");
		if (!wait_fd(c->fd, POLLIN, deadline))
			return pl_errmsg_set(e, PL_ERR_TIMEOUT, "channel: receive timed out");
		rc = wp_chan_fill(c, e);
		if (rc != PL_OK)
			return rc;
	}
}
