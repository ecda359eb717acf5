/*
 * The plugin's two JSON-lines files in the state directory:
 *   ground-truth.jsonl  one line per policy snapshot taken or refreshed
 *   denials.jsonl       one CloudWatch-like line per rejected operation
 * Lines are buffered and flushed once per broker tick, so a reader sees a
 * line at most one tick (100 ms when idle) after the event.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "common/clock.h"
#include "common/log.h"
#include "simulator/plugin_internal.h"

static FILE *open_log(const char *dir, const char *name, pl_errmsg *e)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "a");
	if (!f)
		pl_errmsg_set(e, PL_ERR_IO, "%s: %s", path, strerror(errno));
	return f;
}

pl_err plugin_logs_open(plugin *p, pl_errmsg *e)
{
	p->ground_truth = open_log(p->cfg.state_dir, "ground-truth.jsonl", e);
	if (!p->ground_truth)
		return PL_ERR_IO;
	p->denials = open_log(p->cfg.state_dir, "denials.jsonl", e);
	if (!p->denials) {
		fclose(p->ground_truth);
		p->ground_truth = NULL;
		return PL_ERR_IO;
	}
	return PL_OK;
}

void plugin_logs_flush(plugin *p)
{
	if (!p->logs_dirty)
		return;
	fflush(p->ground_truth);
	fflush(p->denials);
	p->logs_dirty = 0;
}

void plugin_logs_close(plugin *p)
{
	if (p->ground_truth)
		fclose(p->ground_truth);
	if (p->denials)
		fclose(p->denials);
	p->ground_truth = p->denials = NULL;
}

static void write_line(plugin *p, FILE *f, json_t *obj)
{
	if (obj && f) {
		json_dumpf(obj, f, JSON_COMPACT);
		fputc('\n', f);
		p->logs_dirty = 1;
	}
	json_decref(obj);
}

void plugin_log_snapshot(plugin *p, const plugin_conn *c, const char *reason, int changed,
			 int64_t scheduled_ns, int64_t now)
{
	json_t *policies = json_array();
	const sim_snapshot *snap = c->snapshot;

	for (size_t i = 0; i < snap->entry_count; i++)
		json_array_append_new(policies, json_pack("{s:s, s:s}", "name",
							  snap->entries[i].policy_name, "version",
							  snap->entries[i].version_id));
	write_line(p, p->ground_truth,
		   json_pack("{s:I, s:s, s:s, s:s, s:I, s:I, s:I, s:b, s:I, s:o}", "connection",
			     (json_int_t)c->id, "clientId", c->client_id, "certificateId",
			     c->cert_id, "event", reason, "monoNs", (json_int_t)now, "wallNs",
			     (json_int_t)pl_mono_to_wall(now, p->anchor_mono_ns, p->anchor_wall_ns),
			     "scheduledMonoNs", (json_int_t)scheduled_ns, "changed", changed,
			     "generation", (json_int_t)snap->generation, "policies", policies));
}

/* AWS's CloudWatch timestamp form, "YYYY-MM-DD HH:MM:SS.mmm" (UTC). */
static void cloudwatch_time(int64_t wall_ns, char *buf, size_t len)
{
	char iso[32];

	pl_wall_format(wall_ns, iso, sizeof(iso));
	snprintf(buf, len, "%.10s %.12s", iso, iso + 11);
}

void plugin_log_denial(plugin *p, const plugin_conn *c, const struct mosquitto *client,
		       const char *event_type, sim_action action, const char *name,
		       const char *reason, const sim_policy_explanation *why)
{
	int64_t wall = pl_wall_ns();
	char stamp[40];
	json_t *line;

	cloudwatch_time(wall, stamp, sizeof(stamp));
	line = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s?, s:s, s:s, s:s, s:I, s:I}",
			 "timestamp", stamp, "logLevel", "ERROR", "accountId", p->cfg.account,
			 "status", "Failure", "eventType", event_type, "protocol", "MQTT",
			 "clientId", c->client_id, "principalId", c->cert_id, "sourceIp",
			 mosquitto_client_address(client), "action", sim_action_name(action),
			 "reason", reason, "details",
			 strcmp(reason, "AUTHORIZATION_FAILURE") == 0 ? "Authorization Failure"
								       : reason,
			 "connection", (json_int_t)c->id, "monoNs", (json_int_t)pl_mono_ns());
	if (line && action != SIM_ACTION_CONNECT)
		json_object_set_new(line, "topicName", json_string(name));
	if (line && why) {
		json_object_set_new(line, "resource", json_string(why->resource));
		json_object_set_new(line, "decision", json_string(sim_decision_name(why->decision)));
		json_object_set_new(line, "explanation", json_string(why->detail));
	}
	write_line(p, p->denials, line);
}
