/* run.json: the run's metadata, rewritten atomically as the run goes. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "common/clock.h"
#include "harness/coordinator.h"

static void set_wall(json_t *obj, const char *key, const coordinator *c, int64_t mono_ns)
{
	char buf[32];

	if (mono_ns == 0) {
		json_object_set_new(obj, key, json_null());
		return;
	}
	pl_wall_format(pl_mono_to_wall(mono_ns, c->t_start_ns, c->anchor_wall_ns), buf,
		       sizeof(buf));
	json_object_set_new(obj, key, json_string(buf));
}

static const char *worker_state(const coord_worker *w)
{
	if (!w->dead)
		return w->pid > 0 ? "running" : "not started";
	if (w->done)
		return "finished";
	if (w->reaped && WIFSIGNALED(w->exit_status))
		return "killed";
	return "died";
}

static json_t *workers_json(const coordinator *c)
{
	json_t *arr = json_array();

	for (int i = 0; i < c->nworkers; i++) {
		const coord_worker *w = &c->workers[i];
		json_t *o = json_pack("{s:i, s:i, s:i, s:i, s:s, s:I}", "index", w->index, "pid",
				      (int)w->pid, "first_device",
				      (int)(c->first_index + w->first), "devices", (int)w->count,
				      "state", worker_state(w), "rss_kb",
				      (json_int_t)w->heartbeat.rss_kb);

		if (w->dead && !w->done)
			json_object_set_new(o, "t_dead_ns", json_integer(rundir_relative(c->rd, w->t_dead_ns)));
		json_array_append_new(arr, o);
	}
	return arr;
}

static json_t *counts_json(const coordinator *c)
{
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
			 "http_probes_sent", (json_int_t)c->http_probes_sent,
			 "http_probe_failures", (json_int_t)c->http_probe_failures, "devices",
			 (json_int_t)c->ndevices, "connected", (json_int_t)c->counts.connected,
			 "subscribed", (json_int_t)c->counts.subscribed, "swapped",
			 (json_int_t)c->counts.swapped, "effective",
			 (json_int_t)c->counts.effective, "censored",
			 (json_int_t)c->counts.censored, "errors", (json_int_t)c->counts.errors,
			 "connects", (json_int_t)c->counts.connects, "connect_failures",
			 (json_int_t)c->counts.connect_failures, "samples",
			 (json_int_t)c->samples_written);
}

static json_t *expectations_json(const profile *p)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < p->expect_count; i++)
		json_array_append_new(arr, json_string(p->expect[i].text));
	return arr;
}

static json_t *simulator_json(const coordinator *c)
{
	if (c->prof->target.kind != PROFILE_TARGET_SIMULATOR)
		return json_null();
	return json_pack("{s:i, s:i, s:i, s:s?, s:I}", "pid", c->sim_pid, "mqtt_port",
			 c->sim_mqtt_port, "api_port", c->sim_api_port, "propagation",
			 c->propagation, "truth_rows", (json_int_t)c->truth_rows);
}

static json_t *swap_json(const coordinator *c)
{
	const profile *p = c->prof;
	json_t *o = json_pack("{s:s, s:s, s:I, s:I}", "kind", profile_swap_kind_name(p->swap.kind),
			      "direction", p->swap.direction == PROFILE_SWAP_GRANT ? "grant" : "revoke",
			      "jobs", (json_int_t)c->swap_jobs, "jobs_finished",
			      (json_int_t)c->swap_jobs_finished);

	json_object_set_new(o, "t_swap_first_ns",
			    c->t_swap_first_ns ? json_integer(rundir_relative(c->rd, c->t_swap_first_ns))
						: json_null());
	json_object_set_new(o, "t_swap_last_ns",
			    c->t_swap_last_ns ? json_integer(rundir_relative(c->rd, c->t_swap_last_ns))
					       : json_null());
	return o;
}

/* The configured connect rate and, with adaptive pacing, the rates it used. */
static json_t *connect_rate_json(const coordinator *c)
{
	const profile_fleet *f = &c->prof->fleet;
	json_t *o = json_pack("{s:f, s:b, s:f}", "configured", f->connect_rate, "adaptive",
			      f->connect_rate_adaptive, "floor", f->connect_rate_floor);

	if (c->rate_on) {
		json_object_set_new(o, "current", json_real(c->rate.rate));
		json_object_set_new(o, "lowest", json_real(c->rate.lowest));
		json_object_set_new(o, "changes", json_integer(c->rate.changes));
	}
	return o;
}

/*
 * The lifecycle-event observer: its state, the events it received, the rows
 * they excluded and its own outages. An open outage counts up to now.
 */
static json_t *observer_json(const coordinator *c)
{
	int64_t outage_ns = c->observer_outage_ns;

	if (c->observer_lost_ns != 0)
		outage_ns += pl_mono_ns() - c->observer_lost_ns;
	return json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:b}", "status",
			 c->observer_status != NULL ? c->observer_status : "off", "events",
			 (json_int_t)c->observer_events, "dropped", (json_int_t)c->observer_dropped,
			 "excluded", (json_int_t)c->excluded, "outages",
			 (json_int_t)c->observer_outages, "outage_ns", (json_int_t)outage_ns,
			 "outage_after_swap",
			 c->observer_gap_after_swap ||
				 (c->observer_lost_ns != 0 && c->t_swap_first_ns != 0));
}

static json_t *build_run_json(const coordinator *c, const char *status, int exit_code)
{
	const profile *p = c->prof;
	char shard[32];
	json_t *o;

	snprintf(shard, sizeof(shard), "%d/%d", c->shard_index, c->shard_count);
	o = json_pack("{s:s, s:s, s:s, s:s?, s:s?, s:s, s:s, s:s, s:i, s:i, s:I, s:I, s:s, s:s}",
		      "tool", "policylag", "tool_version", POLICYLAG_VERSION, "run_id", c->run_id,
		      "profile_name", p->name, "profile_path", p->path, "profile_hash", p->hash,
		      "target", profile_target_kind_name(p->target.kind), "shard", shard,
		      "shard_index", c->shard_index, "shard_count", c->shard_count,
		      "anchor_mono_ns", (json_int_t)c->t_start_ns, "anchor_wall_ns",
		      (json_int_t)c->anchor_wall_ns, "host", c->host, "status", status);
	set_wall(o, "start_wall", c, c->t_start_ns);
	set_wall(o, "end_wall", c, c->t_end_ns);
	json_object_set_new(o, "reason", json_string(c->interrupted ? c->interrupt_reason
							 : c->failed  ? c->failure
								      : ""));
	json_object_set_new(o, "interrupted", json_boolean(c->interrupted));
	json_object_set_new(o, "exit_status", exit_code >= 0 ? json_integer(exit_code) : json_null());
	json_object_set_new(o, "phase", json_string(coord_phase_name(c->phase)));
	json_object_set_new(o, "devices", json_integer(c->ndevices));
	json_object_set_new(o, "first_device", json_integer(c->first_index));
	json_object_set_new(o, "probe_interval_ns", json_integer(p->probe.interval_ns));
	json_object_set_new(o, "observe_timeout_ns", json_integer(p->timing.observe_timeout_ns));
	json_object_set_new(o, "connect_rate", connect_rate_json(c));
	json_object_set_new(o, "swap", swap_json(c));
	json_object_set_new(o, "counts", counts_json(c));
	json_object_set_new(o, "workers", workers_json(c));
	json_object_set_new(o, "simulator", simulator_json(c));
	json_object_set_new(o, "observer", observer_json(c));
	json_object_set_new(o, "expectations", expectations_json(p));
	return o;
}

pl_err coord_write_run_json(coordinator *c, const char *status, int exit_code, pl_errmsg *e)
{
	json_t *o = build_run_json(c, status, exit_code);
	char *text;
	pl_err err;

	if (o == NULL)
		return pl_errmsg_set(e, PL_ERR_NOMEM, "run.json: out of memory");
	text = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(o);
	if (text == NULL)
		return pl_errmsg_set(e, PL_ERR_NOMEM, "run.json: out of memory");
	err = rundir_write_atomic(c->rd, "run.json", text, strlen(text), 0644, e);
	free(text);
	return err;
}
