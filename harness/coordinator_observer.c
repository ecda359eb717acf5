/*
 * The coordinator's side of the lifecycle-event observer. It maps each
 * disconnected event to a device and writes it to events.jsonl. It keeps
 * the disconnects whose reason is not about authorization, because such a
 * disconnect between a device's swap and its effect excludes the row.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "harness/coordinator.h"
#include "harness/observer.h"

#define COMPONENT "observer"
#define OBSERVER_START_WAIT_NS (15 * PL_NS_PER_S)
#define OBSERVER_BATCH 64
/* Batches handled per poll, so that a flood of events cannot starve the workers. */
#define OBSERVER_BATCHES_PER_POLL 128

/*
 * The device a client id belongs to, or NULL for ids of no device of this
 * shard. Device names are "<prefix><index, at least 6 digits>".
 */
static coord_device *device_of_client(coordinator *c, const char *client_id)
{
	uint64_t index;
	coord_device *d;

	if (!observer_client_index(client_id, c->prof->fleet.client_id_prefix, &index))
		return NULL;
	if (index < c->first_index || index - c->first_index >= c->ndevices)
		return NULL;
	d = &c->devices[index - c->first_index];
	/* "pl-0005" has index 5 but is not the name of device 5, "pl-000005". */
	return strncmp(client_id, d->name, strlen(d->name)) == 0 &&
			       (client_id[strlen(d->name)] == '\0' || client_id[strlen(d->name)] == '-')
		       ? d
		       : NULL;
}

/* Converts an event's Unix-ms timestamp to CLOCK_MONOTONIC, or returns the receive time without one. */
static int64_t event_time(const coordinator *c, const observer_event *ev)
{
	if (ev->timestamp_ms < 0)
		return ev->t_received_ns;
	return c->t_start_ns + ev->timestamp_ms * PL_NS_PER_MS - c->anchor_wall_ns;
}

/* Keeps a confounding disconnect. Returns 1 when the device already had it (a duplicate). */
static int remember(coord_device *d, int64_t t_ns, const observer_event *ev)
{
	coord_confounder *slot;

	for (uint8_t i = 0; i < d->nconfounders; i++) {
		const coord_confounder *k = &d->confounders[i];

		if (k->t_ns == t_ns && k->version == ev->version &&
		    strncmp(k->reason, ev->reason, sizeof(k->reason) - 1) == 0)
			return 1;
	}
	if (d->nconfounders < COORD_CONFOUNDERS_MAX) {
		slot = &d->confounders[d->nconfounders++];
	} else {
		slot = &d->confounders[d->confounder_next];
		d->confounder_next = (uint8_t)((d->confounder_next + 1) % COORD_CONFOUNDERS_MAX);
	}
	slot->t_ns = t_ns;
	slot->version = ev->version;
	snprintf(slot->reason, sizeof(slot->reason), "%s", ev->reason);
	return 0;
}

static void handle_disconnected(coordinator *c, const observer_event *ev)
{
	coord_device *d = device_of_client(c, ev->client_id);
	int64_t t_ns = event_time(c, ev);
	int confounds = observer_reason_confounds(ev->reason);
	int duplicate = d != NULL && confounds && remember(d, t_ns, ev);
	char client_json[OBSERVER_CLIENT_ID_MAX * 2 + 2];
	char reason_json[OBSERVER_REASON_MAX * 2 + 2];
	char session_json[OBSERVER_SESSION_MAX * 2 + 2];
	char fields[1024];

	c->observer_events++;
	rundir_json_string(client_json, sizeof(client_json), ev->client_id);
	rundir_json_string(reason_json, sizeof(reason_json), ev->reason);
	rundir_json_string(session_json, sizeof(session_json), ev->session);
	snprintf(fields, sizeof(fields),
		 "\"source\":\"lifecycle\",\"client_id\":%s,\"reason\":%s,\"session\":%s,"
		 "\"version\":%lld,\"client_initiated\":%s,\"t_received_ns\":%lld,"
		 "\"confounds\":%s,\"duplicate\":%s",
		 client_json, reason_json, session_json, (long long)ev->version,
		 ev->client_initiated ? "true" : "false",
		 (long long)rundir_relative(c->rd, ev->t_received_ns), confounds ? "true" : "false",
		 duplicate ? "true" : "false");
	coord_event(c, t_ns, "lifecycle_disconnect", d != NULL ? d->name : NULL, fields);
}

void coord_observer_outage_end(coordinator *c, int64_t now_ns)
{
	if (c->observer_lost_ns == 0)
		return;
	c->observer_outage_ns += now_ns - c->observer_lost_ns;
	if (c->t_swap_first_ns != 0 && now_ns >= c->t_swap_first_ns)
		c->observer_gap_after_swap = 1;
	c->observer_lost_ns = 0;
}

/*
 * Starts an outage. A second loss before a reconnect belongs to the same outage.
 * NOTE: now_ns is when the observer noticed the loss, which after a silent
 * network failure is when the MQTT keep-alive check (30 s interval) fails,
 * well after events began to be lost.
 */
static void outage_start(coordinator *c, int64_t now_ns)
{
	if (c->observer_lost_ns != 0)
		return;
	c->observer_outages++;
	c->observer_lost_ns = now_ns;
}

static void handle_event(coordinator *c, const observer_event *ev)
{
	char text_json[sizeof(ev->text) * 2 + 2];
	char fields[sizeof(text_json) + 64];

	switch (ev->kind) {
	case OBSERVER_EV_DISCONNECTED:
		handle_disconnected(c, ev);
		break;
	case OBSERVER_EV_READY:
		c->observer_status = "ready";
		coord_observer_outage_end(c, ev->t_received_ns);
		COORD_LOG(c, PL_LOG_INFO, "subscribed to %s", OBSERVER_TOPIC_FILTER);
		coord_event(c, ev->t_received_ns, "observer_ready", NULL, NULL);
		break;
	case OBSERVER_EV_LOST:
		c->observer_status = "not ready";
		outage_start(c, ev->t_received_ns);
		COORD_LOG(c, PL_LOG_WARN, "%s; lifecycle events are lost until it reconnects",
			  ev->text);
		rundir_json_string(text_json, sizeof(text_json), ev->text);
		snprintf(fields, sizeof(fields), "\"text\":%s", text_json);
		coord_event(c, ev->t_received_ns, "observer_lost", NULL, fields);
		break;
	case OBSERVER_EV_DROPPED:
		if (c->observer_dropped == 0)
			COORD_LOG(c, PL_LOG_WARN, "the event queue was full; %llu lifecycle events "
				  "lost (later losses are counted in run.json)",
				  (unsigned long long)ev->count);
		c->observer_dropped += ev->count;
		snprintf(fields, sizeof(fields), "\"count\":%llu", (unsigned long long)ev->count);
		coord_event(c, ev->t_received_ns, "observer_dropped", NULL, fields);
		break;
	}
}

void coord_observer_poll(coordinator *c)
{
	observer_event batch[OBSERVER_BATCH];

	if (c->observer == NULL)
		return;
	for (int round = 0; round < OBSERVER_BATCHES_PER_POLL; round++) {
		size_t n = observer_poll(c->observer, pl_mono_ns(), batch, OBSERVER_BATCH);

		for (size_t i = 0; i < n; i++)
			handle_event(c, &batch[i]);
		if (n < OBSERVER_BATCH)
			break;
	}
}

/* The observer's certificate and key: the profile's, or the one the run created. */
static pl_err observer_files(const coordinator *c, const char **cert, const char **key,
			     pl_errmsg *e)
{
	const profile_observer *po = &c->prof->observer;

	if (po->certificate[0] != '\0') {
		*cert = po->certificate;
		*key = po->private_key;
		return PL_OK;
	}
	if (!c->have_observer_id)
		return pl_errmsg_set(e, PL_ERR_STATE, "observer: no certificate was created");
	*cert = c->observer_id.cert_path;
	*key = c->observer_id.key_path;
	return PL_OK;
}

pl_err coord_observer_start(coordinator *c, pl_errmsg *e)
{
	char client_id[WP_ID_MAX];
	observer_config cfg;
	int64_t deadline;
	pl_err err;

	c->observer_status = "off";
	if (!c->prof->observer.enabled)
		return PL_OK;
	memset(&cfg, 0, sizeof(cfg));
	err = observer_files(c, &cfg.cert_path, &cfg.key_path, e);
	if (err != PL_OK)
		return err;
	snprintf(client_id, sizeof(client_id), "%sobserver-%d", c->prof->fleet.client_id_prefix,
		 c->shard_index);
	cfg.host = c->mqtt_host;
	cfg.port = c->mqtt_port;
	cfg.ca_path = c->ca_path;
	cfg.client_id = client_id;
	err = observer_create(&c->observer, &cfg, e);
	if (err != PL_OK)
		return err;
	c->observer_status = "not ready";
	deadline = pl_mono_ns() + OBSERVER_START_WAIT_NS;
	while (!observer_ready(c->observer) && pl_mono_ns() < deadline && coord_signal_count == 0) {
		pl_sleep_ns(20 * PL_NS_PER_MS);
		coord_observer_poll(c);
	}
	if (!observer_ready(c->observer))
		COORD_LOG(c, PL_LOG_WARN, "observer %s is not subscribed after %lld s; the run goes "
			  "on and disconnects it misses exclude no device", client_id,
			  (long long)(OBSERVER_START_WAIT_NS / PL_NS_PER_S));
	return PL_OK;
}

void coord_observer_stop(coordinator *c)
{
	if (c->observer == NULL)
		return;
	coord_observer_poll(c);
	coord_observer_outage_end(c, pl_mono_ns());
	observer_free(c->observer);
	c->observer = NULL;
}

const char *coord_observer_confounder(const coordinator *c, const coord_device *d, int64_t from,
				      int64_t to)
{
	const coord_confounder *first = NULL;

	(void)c;
	if (from == RUNDIR_TIME_UNKNOWN || to == RUNDIR_TIME_UNKNOWN)
		return NULL;
	for (uint8_t i = 0; i < d->nconfounders; i++) {
		const coord_confounder *k = &d->confounders[i];

		if (k->t_ns >= from && k->t_ns <= to && (first == NULL || k->t_ns < first->t_ns))
			first = k;
	}
	return first != NULL ? first->reason : NULL;
}
