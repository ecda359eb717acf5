#include "harness/run_sim.h"

#include <stdio.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "harness/awsapi.h"
#include "harness/target.h"
#include "simulator/sim.h"

#define COMPONENT "run"

/* Pool threads for control-plane calls: enough to keep AWS's quotas busy. */
#define API_THREADS 8
#define API_QUEUE 256

/* Option values must outlive sim_start, so they live in this buffer. */
typedef struct sim_values {
	profile_sim_option options[PROFILE_SIM_OPTIONS_MAX];
	char propagation[96];
	char rule[3][512];
} sim_values;

/* Joins policy names with commas, as the rule options take them. */
static void join_names(const profile_policy *pols, size_t n, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n && used < len; i++) {
		int w = snprintf(buf + used, len - used, "%s%s", i ? "," : "", pols[i].name);

		if (w < 0)
			break;
		used += (size_t)w;
	}
}

/*
 * The trigger-topic rule: a publish to the trigger topic attaches the
 * "after" policies to the publisher's certificate and detaches the "before"
 * ones. Template variables become the single-level wildcard '+'.
 */
static pl_err add_rule(sim_options *o, const profile *p, sim_values *v, pl_errmsg *e)
{
	pl_err err;

	err = profile_expand_topic(p->swap.trigger_topic, "+", "+", v->rule[0], sizeof(v->rule[0]));
	if (err != PL_OK)
		return pl_errmsg_set(e, err, "swap.trigger_topic too long");
	join_names(p->after, p->after_count, v->rule[1], sizeof(v->rule[1]));
	join_names(p->before, p->before_count, v->rule[2], sizeof(v->rule[2]));
	err = sim_options_add(o, "rule_topic", v->rule[0], e);
	if (err == PL_OK)
		err = sim_options_add(o, "rule_attach", v->rule[1], e);
	if (err == PL_OK)
		err = sim_options_add(o, "rule_detach", v->rule[2], e);
	return err;
}

/* Logs the last lines of the broker's log, which goes away with the temporary directory. */
static void log_broker_tail(const char *state_dir)
{
	char path[WP_PATH_MAX];
	char lines[5][512];
	size_t n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/mosquitto.log", state_dir);
	f = fopen(path, "r");
	if (f == NULL)
		return;
	while (fgets(lines[n % 5], sizeof(lines[0]), f) != NULL)
		n++;
	fclose(f);
	for (size_t i = n > 5 ? n - 5 : 0; i < n; i++) {
		lines[i % 5][strcspn(lines[i % 5], "\n")] = '\0';
		PL_ERROR(COMPONENT, "mosquitto.log: %s", lines[i % 5]);
	}
}

pl_err run_sim_start(coordinator *c, const char *state_dir, sim **out, pl_errmsg *e)
{
	const profile_simulator *ps = &c->prof->target.simulator;
	static sim_values values;
	size_t noptions = profile_simulator_options(c->prof, values.options,
						    PROFILE_SIM_OPTIONS_MAX);
	sim_options o;
	pl_err err = PL_OK;

	sim_options_init(&o);
	o.state_dir = state_dir;
	o.mqtt_port = ps->mqtt_port;
	o.api_port = ps->control_port;
	profile_propagation_text(&ps->propagation, values.propagation, sizeof(values.propagation));
	o.propagation = values.propagation;
	o.refresh_phase = ps->phase == PROFILE_PHASE_RANDOM ? "random" : "connect";
	o.connect_fresh_snapshot = ps->fresh_snapshot_on_connect;
	for (size_t i = 0; i < noptions && err == PL_OK; i++)
		err = sim_options_add(&o, values.options[i].key, values.options[i].value, e);
	if (err == PL_OK && c->prof->swap.kind == PROFILE_SWAP_TRIGGER_TOPIC)
		err = add_rule(&o, c->prof, &values, e);
	if (err == PL_OK)
		err = sim_start(out, &o, e);
	if (err != PL_OK) {
		log_broker_tail(state_dir);
		pl_errmsg_prefix(e, "starting the simulator");
		return err;
	}
	c->propagation = values.propagation;
	c->sim_pid = sim_pid(*out);
	c->sim_mqtt_port = sim_mqtt_port(*out);
	c->sim_api_port = sim_api_port(*out);
	PL_INFO(COMPONENT, "simulator running: mqtts://%s:%d, control plane http://127.0.0.1:%d, "
		"propagation %s", sim_mqtt_host(*out), c->sim_mqtt_port, c->sim_api_port,
		c->propagation);
	return PL_OK;
}

/* Points the workers at the target's MQTT endpoint. */
static void set_mqtt_endpoint(coordinator *c, const target_info *t)
{
	snprintf(c->mqtt_host, sizeof(c->mqtt_host), "%s", t->mqtt_host);
	c->mqtt_port = t->mqtt_port;
	snprintf(c->ca_path, sizeof(c->ca_path), "%s", t->ca_file);
}

/* Creates c->api for the resolved target t and completes t's endpoints. */
static pl_err create_context(coordinator *c, target_info *t, run_api_created_fn on_created,
			     pl_errmsg *e)
{
	awsapi_config cfg;
	char line[1024];
	pl_err err;

	awsapi_config_init(&cfg);
	target_api_config(t, &cfg);
	target_api_rates(c->prof, &cfg);
	cfg.max_attempts = c->prof->swap.max_retries + 1;
	err = awsapi_ctx_create(&c->api, &cfg, e);
	if (err == PL_OK && on_created != NULL)
		on_created(c->api);
	if (err == PL_OK)
		err = target_discover(t, c->api, e);
	if (err != PL_OK)
		return err;
	target_describe(t, line, sizeof(line));
	PL_INFO(COMPONENT, "%s", line);
	return PL_OK;
}

pl_err run_api_create(coordinator *c, const sim *s, run_api_created_fn on_created,
		      pl_errmsg *e)
{
	target_info t;
	pl_err err;

	err = target_from_profile(&t, c->prof, s, e);
	if (err != PL_OK)
		return err;
	err = create_context(c, &t, on_created, e);
	if (err == PL_OK)
		set_mqtt_endpoint(c, &t);
	target_clear(&t);
	if (err == PL_OK)
		err = awsapi_pool_create(&c->pool, c->api, API_THREADS, API_QUEUE, e);
	return err;
}
