/*
 * The coordinator <-> worker protocol: length-prefixed binary frames over a
 * stream socket (one end of a socketpair per worker).
 *
 * Frame: u32 body length (little endian, at most WP_FRAME_MAX), then the body:
 * u16 message type, then the fields of that message in the order of its struct
 * below. Integers are little endian (i64 as two's complement); a string is a
 * u16 length followed by that many bytes without a terminator, and must fit
 * the field's buffer. Both processes are the same binary, but nothing relies
 * on struct layout: every field is encoded on its own.
 *
 * Conversation:
 *   coordinator                         worker
 *   HELLO, GROUP x G, DEVICE x N  -->
 *                                 <--   READY (after HELLO)
 *   PHASE connect                 -->
 *                                 <--   EVENT (connected, subscribed, failures...), TIMING
 *   PHASE probe                   -->
 *   SWAP started / SWAP done      -->
 *                                 <--   EFFECT (as each device sees it), EVENT, TIMING
 *   TRIGGER (trigger-topic swaps) -->
 *                                 <--   TRIGGERED (once the publish's outcome is known)
 *   RATE                          -->   (any time: a new connect-rate share)
 *   PING                          -->
 *                                 <--   HEARTBEAT (once a second, and in reply to PING)
 *   PHASE drain                   -->
 *                                 <--   RECORD x (devices x swaps), DONE
 *
 * The coordinator never recomputes what a worker measured: latencies,
 * censoring and counters arrive ready in RECORD. The simulator's ground truth
 * (truth_effect_ns, truth_error_ns) is not known to workers and is added by
 * the coordinator.
 *
 * Flow control: both ends keep a bounded output buffer (wp_chan). When a
 * worker's buffer is full it drops EVENT, TIMING and HEARTBEAT messages and
 * counts them (HEARTBEAT events_dropped). READY, TRIGGERED, EFFECT, RECORD and DONE wait
 * up to 10 s for room instead, so the coordinator must keep reading.
 *
 * Thread safety: a wp_chan is used by one thread at a time.
 */
#ifndef PL_WORKER_PROTOCOL_H
#define PL_WORKER_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define WP_VERSION 1
#define WP_FRAME_MAX 16384 /* bytes of one frame body */

#define WP_HOST_MAX 256
#define WP_PATH_MAX 1024
#define WP_ID_MAX 129    /* client id: AWS allows 128 bytes, plus the NUL */
#define WP_TOPIC_MAX 257 /* AWS topics: 256 bytes, plus the NUL */
#define WP_NAME_MAX 64
#define WP_CERT_ID_MAX 65 /* lowercase hex SHA-256, plus the NUL */
#define WP_TEXT_MAX 200
#define WP_DEST_MAX 16 /* destination addresses one worker spreads connections over */
#define WP_PAYLOAD_MAX 257 /* trigger payload, plus the NUL */

typedef enum wp_type {
	/* coordinator -> worker */
	WP_MSG_HELLO = 1,
	WP_MSG_GROUP = 2,
	WP_MSG_DEVICE = 3,
	WP_MSG_PHASE = 4,
	WP_MSG_SWAP = 5,
	WP_MSG_PING = 6,
	WP_MSG_RATE = 7,
	WP_MSG_TRIGGER = 8,
	/* worker -> coordinator */
	WP_MSG_READY = 100,
	WP_MSG_EVENT = 101,
	WP_MSG_TIMING = 102,
	WP_MSG_EFFECT = 103,
	WP_MSG_RECORD = 104,
	WP_MSG_HEARTBEAT = 105,
	WP_MSG_DONE = 106,
	WP_MSG_TRIGGERED = 107,
} wp_type;

typedef enum wp_strategy {
	WP_STRATEGY_KEEP = 0,      /* keep-connection */
	WP_STRATEGY_RECONNECT = 1, /* reconnect-per-attempt */
} wp_strategy;

typedef enum wp_direction {
	WP_DIRECTION_GRANT = 0,  /* the swap allows the probe topic */
	WP_DIRECTION_REVOKE = 1, /* the swap denies the probe topic */
} wp_direction;

typedef enum wp_probe_mode {
	WP_PROBE_ECHO = 0,   /* each device publishes to its own probe topic */
	WP_PROBE_PROBER = 1, /* one prober connection per worker publishes */
} wp_probe_mode;

typedef enum wp_client_ids {
	WP_CLIENT_ID_FIXED = 0, /* the assigned id for every attempt, >= 1 s apart */
	WP_CLIENT_ID_FRESH = 1, /* "<id>-a<attempt>" for attempt 2 onwards */
} wp_client_ids;

/*
 * HELLO: run-wide settings. Sent once, first. The URI host is `host`, which
 * paho also sends as the TLS SNI name. `dest` lists extra "address:port"
 * destinations (loopback only) that devices are spread over round-robin when
 * one address pair cannot carry the run (about 28k connections); with no
 * entries every device connects to host:port. ALPN x-amzn-mqtt-ca is set
 * exactly when the destination port is 443.
 */
typedef struct wp_hello {
	uint16_t version;          /* WP_VERSION */
	uint32_t worker_index;     /* 0-based, shown in records as "worker" */
	uint8_t log_level;         /* pl_log_level */
	char host[WP_HOST_MAX];    /* endpoint host name, e.g. "localhost" */
	uint16_t port;             /* 8883 or 443 */
	char ca_path[WP_PATH_MAX]; /* PEM trust store, always set */
	uint8_t dest_count;
	char dest[WP_DEST_MAX][WP_HOST_MAX]; /* "127.0.0.2:8883" */
	uint32_t connect_rate_milli; /* this worker's share of CONNECTs per second x 1000; 0 = no limit */
	uint16_t keepalive_s;      /* MQTT keep-alive, seconds; 0 = 60 */
	uint16_t connect_timeout_s; /* paho connectTimeout, seconds; 0 = 10 */
	/* prober mode: one connection per worker with its own identity */
	char prober_client_id[WP_ID_MAX];
	char prober_cert[WP_PATH_MAX];
	char prober_key[WP_PATH_MAX];
	char prober_topic[WP_TOPIC_MAX]; /* shared probe topic for large fleets, "" = per device */
	uint16_t prober_rate_max;        /* publishes per second per prober connection; 0 = 20 */
	uint32_t max_devices;            /* bound on DEVICE messages this worker accepts; 0 = 5000 */
} wp_hello;

/* GROUP: one device group; devices name their group by id. */
typedef struct wp_group {
	uint16_t id;
	char name[WP_NAME_MAX];
	uint8_t strategy;     /* wp_strategy */
	uint8_t direction;    /* wp_direction */
	uint8_t mqtt_version; /* 4 = MQTT 3.1.1, 5 = MQTT 5 */
	uint8_t qos;          /* 0 or 1, for both SUBSCRIBE and probe PUBLISH */
	uint8_t probe_mode;   /* wp_probe_mode */
	uint8_t client_ids;   /* wp_client_ids, reconnect-per-attempt only */
	int64_t probe_interval_ns;   /* the measurement resolution */
	int64_t attempt_window_ns;   /* reconnect: how long one attempt stays connected */
	int64_t attempt_interval_ns; /* reconnect: start-to-start spacing of attempts */
	int64_t observe_timeout_ns;  /* after t_swap_start; no effect by then = censored */
	int64_t confirm_ns;          /* revoke: a probe not delivered within this is lost */
} wp_group;

/* DEVICE: one device assigned to this worker. */
typedef struct wp_device {
	uint32_t index; /* fleet-wide device index */
	uint16_t group;
	char client_id[WP_ID_MAX];
	char cert_path[WP_PATH_MAX];
	char key_path[WP_PATH_MAX];
	char cert_id[WP_CERT_ID_MAX]; /* "" = the worker hashes the certificate */
	char probe_topic[WP_TOPIC_MAX]; /* a ${client_id} left in it is each connection's id */
} wp_device;

typedef enum wp_phase {
	WP_PHASE_CONNECT = 0, /* start each device's strategy (connect, subscribe) */
	WP_PHASE_PROBE = 1,   /* start sending probes */
	WP_PHASE_DRAIN = 2,   /* finish detection, send RECORDs and DONE, disconnect */
} wp_phase;

/* PHASE: a phase command for every device of the worker. */
typedef struct wp_phase_msg {
	uint8_t phase; /* wp_phase */
	int64_t t_ns;  /* coordinator's CLOCK_MONOTONIC when sent */
} wp_phase_msg;

typedef enum wp_swap_kind {
	WP_SWAP_STARTED = 0, /* the first control-plane call was sent: t_swap_start */
	WP_SWAP_DONE = 1,    /* the last call returned success: t_swap */
} wp_swap_kind;

#define WP_ALL_DEVICES UINT32_MAX

/*
 * SWAP: devices [first, first + count) of the fleet index space (count
 * WP_ALL_DEVICES = every device of the worker). A STARTED with a new
 * swap_index starts a new detection; t_ns is CLOCK_MONOTONIC.
 */
typedef struct wp_swap {
	uint8_t kind; /* wp_swap_kind */
	uint32_t swap_index;
	uint32_t first;
	uint32_t count;
	int64_t t_ns;
} wp_swap;

typedef struct wp_ping {
	uint32_t seq;
	int64_t t_ns;
} wp_ping;

/*
 * RATE: this worker's new share of the run's CONNECT rate, sent whenever the
 * coordinator's adaptive pacing changes the rate. It replaces HELLO's
 * connect_rate_milli; connect slots already reserved but not reached are
 * stretched or compressed to the new spacing.
 */
typedef struct wp_rate {
	uint32_t connect_rate_milli; /* CONNECTs per second x 1000, at least 1 */
	int64_t t_ns;                /* coordinator's CLOCK_MONOTONIC when sent */
} wp_rate;

/*
 * TRIGGER: the device publishes the trigger of a trigger-topic swap on its
 * own connection, so that the rule gets the device's client id and
 * certificate. A device connected and subscribed publishes at once. Any
 * other device publishes right after its next SUBACK (a reconnect-per-attempt
 * device between attempts, a device waiting to reconnect). The publish
 * time is the device's t_swap_start: the worker starts the detection there
 * itself, and the coordinator sends no SWAP for the device.
 */
typedef struct wp_trigger {
	uint32_t device; /* fleet-wide device index */
	uint32_t swap_index;
	uint8_t qos;     /* 0 or 1 */
	char topic[WP_TOPIC_MAX];
	char payload[WP_PAYLOAD_MAX];
} wp_trigger;

typedef enum wp_trigger_outcome {
	WP_TRIGGER_ACKED = 0,       /* QoS 1: PUBACK success; QoS 0: handed to paho */
	WP_TRIGGER_UNCONFIRMED = 1, /* sent, but no PUBACK: connection ended or paho failed it */
	WP_TRIGGER_REJECTED = 2,     /* sent and rejected: PUBACK reason code >= 0x80 */
	WP_TRIGGER_NOT_SENT = 3,    /* never sent: send call failed, draining, or rejected */
} wp_trigger_outcome;

/*
 * TRIGGERED: the outcome of one TRIGGER. t_sent_ns is the publish call
 * (CLOCK_MONOTONIC), 0 when outcome is NOT_SENT; client_id and attempt name
 * the connection it went out on.
 */
typedef struct wp_triggered {
	uint32_t device;
	uint32_t swap_index;
	uint8_t outcome; /* wp_trigger_outcome */
	int64_t t_sent_ns;
	int64_t t_done_ns; /* when the outcome was known */
	uint32_t attempt;
	int32_t code;    /* paho rc or PUBACK reason code; 0 on success */
	char client_id[WP_ID_MAX];
	char text[WP_TEXT_MAX];
} wp_triggered;

/* READY: reply to HELLO once the worker can accept DEVICEs. */
typedef struct wp_ready {
	uint32_t worker_index;
	uint32_t pid;
	uint32_t nofile_limit;      /* RLIMIT_NOFILE soft limit after raising it */
	char paho_version[WP_NAME_MAX];
} wp_ready;

typedef enum wp_event_kind {
	WP_EV_CONNECTED = 0,      /* CONNACK success; code = session present */
	WP_EV_CONNECT_FAILED = 1, /* code = paho rc or CONNACK reason code */
	WP_EV_SUBSCRIBED = 2,     /* code = granted QoS / reason code of the filter */
	WP_EV_SUBSCRIBE_FAILED = 3, /* code = SUBACK 0x80 or MQTT 5 reason code */
	WP_EV_DISCONNECTED = 4,   /* code = MQTT 5 reason (0x8E takeover, 0x87 not
				   * authorized, 0x97 quota), -1 when unknown (3.1.1) */
	WP_EV_THROTTLED = 5,      /* code = reason code that showed a quota */
	WP_EV_ERROR = 6,          /* code = paho rc; text says what failed */
	WP_EV_PROBE_LATE = 7,     /* the prober cannot meet the probe interval (device
				   * UINT32_MAX, code = its publish rate cap); a device's
				   * own late probes are only counted (HEARTBEAT) */
	WP_EV_PUBLISH_FAILED = 8, /* code = paho rc or PUBACK reason code */
} wp_event_kind;

/* EVENT: one device progress event; text may be "". device UINT32_MAX = the
 * worker itself (prober, invalid GROUP or DEVICE: code = the group id or device
 * index). */
typedef struct wp_event {
	uint32_t device;
	uint8_t kind; /* wp_event_kind */
	uint32_t attempt;
	int64_t t_ns;
	int32_t code;
	int64_t connect_ns; /* CONNECTED and CONNECT_FAILED: MQTTAsync_connect call ->
			     * callback; -1 for other kinds */
	char text[WP_TEXT_MAX];
} wp_event;

/* TIMING: one attempt's timings, sent when the attempt ends. -1 = not reached. */
typedef struct wp_timing {
	uint32_t device;
	uint32_t attempt;
	int64_t t_connect_call_ns;
	int64_t connect_ns;   /* MQTTAsync_connect call -> CONNACK */
	int64_t subscribe_ns; /* MQTTAsync_subscribe call -> SUBACK */
	int64_t probe_rtt_ns; /* first echo probe of the attempt: publish call -> delivery */
	int32_t suback_code;  /* granted QoS or reason code of the probe filter */
} wp_timing;

/* EFFECT: a device saw the swap take effect (also carried in RECORD). */
typedef struct wp_effect {
	uint32_t device;
	uint32_t swap_index;
	int64_t t_effect_ns;
} wp_effect;

/* RECORD: the samples.csv row of one device and one swap, as measured. */
typedef struct wp_record {
	uint32_t device;
	char client_id[WP_ID_MAX];
	char group[WP_NAME_MAX];
	uint8_t strategy;  /* wp_strategy */
	uint8_t direction; /* wp_direction */
	uint32_t swap_index;
	char cert_id[WP_CERT_ID_MAX];
	uint32_t worker;
	int64_t t_swap_start_ns;
	int64_t t_swap_ns;   /* 0 = unknown (trigger-topic swap) */
	int64_t t_effect_ns; /* when censored: the end of the observation window */
	int64_t latency_ns;  /* t_effect - t_swap (t_swap_start when t_swap is unknown) */
	uint8_t censored;
	uint32_t attempts;
	uint32_t connects;
	uint32_t connect_failures;
	uint32_t throttled;
	uint32_t errors;
} wp_record;

/* HEARTBEAT: counters since start; ping_seq echoes the last PING (0 = none). */
typedef struct wp_heartbeat {
	uint32_t ping_seq;
	int64_t t_ns;
	uint32_t devices;
	uint32_t connected;
	uint32_t connecting;      /* connects in flight: called, no CONNACK or failure yet */
	uint64_t connects;
	uint64_t connect_failures;
	uint64_t probes_sent;
	uint64_t probes_received;
	uint64_t events_dropped;  /* EVENT/TIMING dropped because the channel was full */
	uint64_t probes_late;     /* probes sent later than their interval allowed */
	uint32_t rss_kb;
} wp_heartbeat;

/* DONE: drain finished; every RECORD has been sent. */
typedef struct wp_done {
	uint32_t records;
} wp_done;

/* Any one message. */
typedef struct wp_msg {
	uint16_t type; /* wp_type */
	union {
		wp_hello hello;
		wp_group group;
		wp_device device;
		wp_phase_msg phase;
		wp_swap swap;
		wp_ping ping;
		wp_rate rate;
		wp_trigger trigger;
		wp_ready ready;
		wp_event event;
		wp_timing timing;
		wp_effect effect;
		wp_record record;
		wp_heartbeat heartbeat;
		wp_done done;
		wp_triggered triggered;
	} u;
} wp_msg;

/*
 * Encodes msg as one frame (length prefix included) into buf. Returns PL_OK
 * with *len set, PL_ERR_RANGE when it does not fit, PL_ERR_INVALID for an
 * unknown type.
 */
pl_err wp_encode(const wp_msg *msg, uint8_t *buf, size_t cap, size_t *len, pl_errmsg *e);

/*
 * Decodes one frame body (without the length prefix) into msg. Returns
 * PL_ERR_PARSE for a truncated body, a string too long for its field, trailing
 * bytes or an unknown type.
 */
pl_err wp_decode(const uint8_t *body, size_t len, wp_msg *msg, pl_errmsg *e);

/* Returns the message type's name, e.g. "HELLO", or "?" when unknown. */
const char *wp_type_name(uint16_t type);

/* A buffered, non-blocking frame channel over one stream socket. */
typedef struct wp_chan wp_chan;

/*
 * Creates a channel over fd (set non-blocking here; the caller keeps
 * ownership of fd). out_cap bounds the bytes waiting to be written.
 */
pl_err wp_chan_create(wp_chan **out, int fd, size_t out_cap, pl_errmsg *e);
void wp_chan_free(wp_chan *c);
int wp_chan_fd(const wp_chan *c);

/*
 * Queues msg for writing and tries to write. Returns PL_ERR_LIMIT, queuing
 * nothing, when the output buffer has no room for the frame.
 */
pl_err wp_chan_send(wp_chan *c, const wp_msg *msg, pl_errmsg *e);

/* Writes as much queued output as the socket takes. PL_ERR_IO on a write error. */
pl_err wp_chan_flush(wp_chan *c, pl_errmsg *e);

/* Bytes queued but not yet written. */
size_t wp_chan_pending(const wp_chan *c);

/*
 * Reads what the socket has. Returns PL_OK, PL_ERR_IO on a read error, or
 * PL_ERR_NOT_FOUND when the peer closed the socket and no input remains.
 */
pl_err wp_chan_fill(wp_chan *c, pl_errmsg *e);

/*
 * Takes the next complete message from the input. Returns 1 with *msg set,
 * 0 when no complete frame is buffered, or -1 with e set on a malformed frame
 * (the channel is then unusable).
 */
int wp_chan_next(wp_chan *c, wp_msg *msg, pl_errmsg *e);

/*
 * Sends msg, waiting (poll, up to timeout_ns) for room and then for the
 * output to drain. For the coordinator and for messages that must not drop.
 */
pl_err wp_chan_send_wait(wp_chan *c, const wp_msg *msg, int64_t timeout_ns, pl_errmsg *e);

/*
 * Waits (poll, up to timeout_ns) for the next message, reading as needed.
 * Returns PL_OK with *msg set, PL_ERR_TIMEOUT, PL_ERR_NOT_FOUND on end of
 * stream, or PL_ERR_IO / PL_ERR_PARSE.
 */
pl_err wp_chan_recv_wait(wp_chan *c, wp_msg *msg, int64_t timeout_ns, pl_errmsg *e);

#endif
