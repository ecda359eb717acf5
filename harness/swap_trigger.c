#include "harness/swap_trigger.h"

#include <stdio.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"

#define COMPONENT "swap"
#define TRIGGER_PAYLOAD "{\"trigger\":true}"
#define TRIGGER_QOS 1

static const char *const outcome_names[] = {
	[WP_TRIGGER_ACKED] = "acked",
	[WP_TRIGGER_UNCONFIRMED] = "unconfirmed",
	[WP_TRIGGER_REJECTED] = "rejected",
	[WP_TRIGGER_NOT_SENT] = "not-sent",
};

static void note(coordinator *c, uint32_t device, int kind, int64_t t_ns)
{
	coord_swap_note n = { device, kind, t_ns, t_ns, 1 };

	coord_push_note(c, &n);
}

static void fail_unsent(coordinator *c, uint32_t device, const char *why)
{
	COORD_LOG(c, PL_LOG_ERROR, "trigger for %s not sent: %s", c->devices[device].name, why);
	note(c, device, -1, pl_mono_ns());
}

static pl_err trigger_topic(const coordinator *c, const coord_device *d, char *buf, size_t len)
{
	return profile_expand_topic(c->prof->swap.trigger_topic, d->name, d->name, buf, len);
}

void swap_trigger_send(coordinator *c, uint32_t device)
{
	coord_device *d = &c->devices[device];
	coord_worker *w = &c->workers[d->worker];
	wp_msg m;

	memset(&m, 0, sizeof(m));
	m.type = WP_MSG_TRIGGER;
	m.u.trigger.device = d->index;
	m.u.trigger.swap_index = 0;
	m.u.trigger.qos = TRIGGER_QOS;
	snprintf(m.u.trigger.payload, sizeof(m.u.trigger.payload), "%s", TRIGGER_PAYLOAD);
	if (trigger_topic(c, d, m.u.trigger.topic, sizeof(m.u.trigger.topic)) != PL_OK) {
		fail_unsent(c, device, "the expanded swap.trigger_topic exceeds 256 bytes");
		return;
	}
	coord_send_to_worker(c, w, &m);
	if (w->dead)
		fail_unsent(c, device, "its worker has died");
}

/* Writes the swap_call event of one trigger publish. */
static void trigger_event(coordinator *c, const coord_worker *w, const coord_device *d,
			  const wp_triggered *r)
{
	char fields[WP_TOPIC_MAX * 2 + WP_ID_MAX * 2 + WP_TEXT_MAX * 2 + 256];
	char topic[WP_TOPIC_MAX] = "";
	char topic_json[WP_TOPIC_MAX * 2];
	char client_json[WP_ID_MAX * 2];
	char text_json[WP_TEXT_MAX * 2];
	int n;

	trigger_topic(c, d, topic, sizeof(topic));
	rundir_json_string(topic_json, sizeof(topic_json), topic);
	rundir_json_string(client_json, sizeof(client_json), r->client_id);
	rundir_json_string(text_json, sizeof(text_json), r->text);
	n = snprintf(fields, sizeof(fields),
		     "\"op\":\"TriggerPublish\",\"topic\":%s,\"worker\":%d,\"client_id\":%s,"
		     "\"attempt\":%u,\"outcome\":\"%s\",\"ok\":%s,\"code\":%d,\"error\":%s,"
		     "\"t_done_ns\":%lld",
		     topic_json, w->index, client_json, r->attempt, outcome_names[r->outcome],
		     r->outcome <= WP_TRIGGER_UNCONFIRMED ? "true" : "false", r->code, text_json,
		     (long long)rundir_relative(c->rd, r->t_done_ns));
	if (r->t_sent_ns != 0 && n > 0 && (size_t)n < sizeof(fields))
		snprintf(fields + n, sizeof(fields) - (size_t)n, ",\"t_sent_ns\":%lld",
			 (long long)rundir_relative(c->rd, r->t_sent_ns));
	coord_event(c, r->t_sent_ns != 0 ? r->t_sent_ns : r->t_done_ns, "swap_call", d->name,
		    fields);
}

void swap_trigger_on_reply(coordinator *c, const coord_worker *w, const wp_triggered *r)
{
	uint32_t device = r->device - c->first_index;
	const coord_device *d;

	if (r->device < c->first_index || device >= c->ndevices ||
	    r->outcome > WP_TRIGGER_NOT_SENT) {
		COORD_LOG(c, PL_LOG_WARN, "worker %d: TRIGGERED for unknown device %u or outcome %u",
			  w->index, r->device, r->outcome);
		return;
	}
	d = &c->devices[device];
	trigger_event(c, w, d, r);
	if (r->outcome != WP_TRIGGER_NOT_SENT)
		note(c, device, WP_SWAP_STARTED, r->t_sent_ns);
	switch (r->outcome) {
	case WP_TRIGGER_ACKED:
		note(c, device, COORD_NOTE_FINISHED, r->t_sent_ns);
		break;
	case WP_TRIGGER_UNCONFIRMED:
		COORD_LOG(c, PL_LOG_WARN, "trigger of %s (client id %s): %s; counted as sent",
			  d->name, r->client_id, r->text);
		note(c, device, COORD_NOTE_FINISHED, r->t_sent_ns);
		break;
	default:
		COORD_LOG(c, PL_LOG_ERROR, "trigger of %s %s (code %d): %s", d->name,
			  r->outcome == WP_TRIGGER_REJECTED ? "rejected" : "not sent", r->code,
			  r->text);
		note(c, device, -1, r->t_done_ns);
		break;
	}
}
