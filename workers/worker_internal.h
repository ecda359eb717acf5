/*
 * Worker internals shared by worker.c (process, channel, driver loop),
 * device.c (the strategies as state machines) and waker.c. Everything here
 * runs on the driver thread except what mqtt.c's callbacks enqueue.
 */
#ifndef PL_WORKER_INTERNAL_H
#define PL_WORKER_INTERNAL_H

#include <MQTTAsync.h>
#include <stdint.h>

#include "workers/detect.h"
#include "workers/mqtt.h"
#include "workers/protocol.h"
#include "workers/timerq.h"

#define WK_GROUPS_MAX 64
#define WK_DEVICES_MAX 5000 /* per worker; designs use a few hundred */

/* Owners that are not devices. */
#define WK_OWNER_SENTINEL (UINT32_MAX - 1)
#define WK_OWNER_PROBER (UINT32_MAX - 2)

typedef enum wk_conn_state {
	CONN_IDLE = 0,      /* no handle */
	CONN_CONNECTING,    /* connect called, waiting for CONNACK */
	CONN_SUBSCRIBING,   /* subscribe called, waiting for SUBACK */
	CONN_READY,         /* SUBACK received (granted or refused) */
	CONN_DISCONNECTING, /* disconnect called, waiting for its completion */
} wk_conn_state;

typedef struct wk_counters {
	uint32_t attempts;
	uint32_t connects;
	uint32_t connect_failures;
	uint32_t throttled;
	uint32_t errors;
} wk_counters;

/* One MQTT connection: a device's, or the prober's. */
typedef struct wk_conn {
	MQTTAsync h;
	uint32_t gen;
	uint8_t state;        /* wk_conn_state */
	uint8_t sub_ok;       /* the last SUBACK granted the probe filter */
	uint8_t stop_after_connect; /* disconnect as soon as CONNACK arrives */
	char client_id[WP_ID_MAX];
	int64_t t_connect_call;
	int64_t t_connected;
	int64_t t_subscribe_call;
	int64_t t_disconnect_call;
	wp_timing timing;     /* the current attempt's timings */
} wk_conn;

/* A TRIGGER the device has not finished: waiting for a connection, or for its PUBACK. */
typedef struct wk_trigger {
	wp_trigger msg;
	int64_t t_sent;   /* publish call, 0 = not sent yet */
	uint32_t attempt; /* the attempt it was sent on */
	char client_id[WP_ID_MAX]; /* the connection's client id */
} wk_trigger;

/*
 * A device's DEVICE message as the worker keeps it. The paths and the probe
 * topic point into the worker's string table, one copy each, so devices with
 * the same certificate share it. wp_device's fixed-size path fields took
 * 2 kB of every device.
 */
typedef struct wk_device_cfg {
	uint32_t index; /* fleet-wide device index */
	uint16_t group;
	char client_id[WP_ID_MAX];
	char cert_id[WP_CERT_ID_MAX];
	const char *cert_path;
	const char *key_path;
	const char *probe_topic;
} wk_device_cfg;

/* Strings stored once per worker (see wk_device_cfg). */
#define WK_STRING_BUCKETS 1024
typedef struct wk_string {
	struct wk_string *next;
	char text[];
} wk_string;

typedef struct wk_device {
	wk_device_cfg cfg;
	const wp_group *group;
	uint32_t slot; /* index in the worker's device array = paho owner */
	wk_conn conn;
	uint8_t active;       /* the strategy runs (from PHASE connect) */
	uint8_t swap_active;  /* a detection has been started */
	uint8_t swap_done;    /* the current detection has finished */
	uint32_t swap_index;
	int64_t t_slot;       /* reserved connect-rate slot, 0 = none */
	int64_t t_next_connect;  /* earliest next CONNECT (backoff, attempt spacing) */
	int64_t t_attempt_end;   /* reconnect: end of the current attempt window */
	int64_t t_next_probe;
	int64_t backoff_ns;      /* keep: current reconnect backoff */
	uint64_t seq;            /* echo probes sent */
	wk_counters total;
	wk_counters at_swap;
	/* probe.via http: the coordinator's probes, numbered by round */
	uint64_t http_seq;       /* sequence of the last delivered probe, 0 = none yet */
	int64_t http_t_send;     /* its send time, from the payload */
	uint64_t http_fed;       /* the last sequence given to detection as sent */
	wk_trigger *trigger;     /* allocated at TRIGGER, freed with its TRIGGERED; NULL = none */
	int64_t t_timer;         /* the time of the pending timer entry, 0 = none */
	uint32_t timer_tag;
	detect det;
} wk_device;

typedef struct worker worker;

/* The loopback waker: a sentinel paho client connected to an in-process listener. */
typedef struct wk_waker {
	int listen_fd;
	int conn_fd;
	int connack_sent;
	int connected; /* the sentinel's CONNACK arrived */
	MQTTAsync sentinel;
	int64_t t_last_kick;
} wk_waker;

struct worker {
	wp_chan *chan;
	wp_hello hello;
	int have_hello;
	wp_group groups[WK_GROUPS_MAX];
	uint8_t group_known[WK_GROUPS_MAX];
	wk_device *devices;
	uint32_t ndevices;
	uint32_t cap_devices;
	wk_string *strings[WK_STRING_BUCKETS];
	timerq *timers;
	mq_queue *events;
	wk_waker waker;
	/* phases */
	uint8_t started;   /* PHASE connect received */
	uint8_t probing;   /* PHASE probe received */
	uint8_t draining;  /* PHASE drain received */
	int64_t t_drain;
	/* connect rate */
	int64_t connect_period_ns; /* 0 = no limit */
	int64_t next_connect_slot;
	uint32_t connecting;       /* connections between connect call and CONNACK */
	int64_t kick_until;        /* kick paho every millisecond until then */
	int64_t last_wake;         /* driver: start of the last loop pass */
	int64_t tick_ns;           /* driver tick outside fast mode (worker.c) */
	int notify_on;             /* the event queue signals its eventfd */
	/* prober */
	wk_conn prober;
	int64_t prober_next;       /* next prober publish */
	uint32_t prober_cursor;    /* next device for per-device prober topics */
	uint64_t prober_seq;
	int64_t prober_backoff_ns;
	int64_t prober_retry_at;
	uint8_t prober_needed;
	const wp_group *prober_group; /* the first prober-mode group, NULL = no prober */
	uint32_t prober_devices;      /* devices in prober-mode groups */
	/* counters for HEARTBEAT */
	wp_heartbeat hb;
	uint32_t records_sent;
	int64_t next_heartbeat;
	int fatal;                 /* the channel failed: stop */
};

/* worker.c */
void wk_send_event(worker *w, const wk_device *d, wp_event_kind kind, int32_t code,
		   const char *text);
/* An EVENT of a connect's outcome, with its connect call -> callback time. */
void wk_send_connect_event(worker *w, const wk_device *d, wp_event_kind kind, int32_t code,
			   const char *text, int64_t connect_ns);
void wk_send_must(worker *w, const wp_msg *m);
/* Sends a TRIGGERED, which must not be dropped: the coordinator counts the swap's jobs. */
void wk_send_triggered(worker *w, const wp_triggered *r);
void wk_schedule(worker *w, wk_device *d, int64_t t);

/* device.c */
void dev_start(worker *w, wk_device *d, int64_t now);
void dev_on_timer(worker *w, wk_device *d, int64_t now);
void dev_on_event(worker *w, wk_device *d, const mq_event *ev);
void dev_swap_started(worker *w, wk_device *d, uint32_t swap_index, int64_t t);
void dev_swap_done(worker *w, wk_device *d, uint32_t swap_index, int64_t t);
/* Publishes t now when d is connected and subscribed, else after its next SUBACK. */
void dev_trigger(worker *w, wk_device *d, const wp_trigger *t);
void dev_drain(worker *w, wk_device *d, int64_t now);
/* Moves d's reserved connect slot, if still ahead of now, to now + (slot - now) * scale. */
void dev_rescale_slot(worker *w, wk_device *d, int64_t now, double scale);
/* Records a prober probe addressed to d (or every device for a shared topic). */
void dev_prober_sent(worker *w, wk_device *d, uint64_t seq, int64_t t_send);
int dev_is_idle(const wk_device *d);
void dev_free(wk_device *d);

/* prober.c */
void prober_init(worker *w);
void prober_on_timer(worker *w, int64_t now);
void prober_on_event(worker *w, const mq_event *ev);
int64_t prober_next_time(const worker *w);
void prober_drain(worker *w);
int prober_is_idle(const worker *w);

/* waker.c */
pl_err waker_start(worker *w, pl_errmsg *e);
void waker_on_readable(worker *w);
void waker_kick(worker *w, int64_t now);
void waker_stop(worker *w);
/* When the next kick is due: soon while a connect is pending, else within 500 ms. */
int64_t waker_next_kick(const worker *w, int64_t now);
/* Starts the short window of fast kicks that a new connect needs. */
void waker_connect_started(worker *w, int64_t now);

/* Builds the connection parameters of a device (or prober) connection. */
void wk_conn_params(const worker *w, uint32_t dest_slot, const char *client_id,
		    const char *cert, const char *key, int mqtt_version, mq_params *p,
		    char *uri, size_t uri_len);

#endif
