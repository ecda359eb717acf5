#include "harness/run_sim.h"

#include <stdio.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "harness/awsapi.h"
#include "harness/credentials.h"
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
	snprintf(c->mqtt_host, sizeof(c->mqtt_host), "%s", sim_mqtt_host(*out));
	c->mqtt_port = c->sim_mqtt_port;
	snprintf(c->ca_path, sizeof(c->ca_path), "%s", sim_ca_path(*out));
	PL_INFO(COMPONENT, "simulator running: mqtts://%s:%d, control plane http://127.0.0.1:%d, "
		"propagation %s", c->mqtt_host, c->mqtt_port, c->sim_api_port, c->propagation);
	return PL_OK;
}

/* Client-side rates for the simulator: its quotas, and no client-side limit for a 0/s quota. */
static void sim_rates(const profile_quotas *q, awsapi_config *cfg)
{
	const struct {
		awsapi_op op;
		double rate;
	} rates[] = {
		{ AWSAPI_ATTACH_POLICY, q->attach_detach_policy },
		{ AWSAPI_DETACH_POLICY, q->attach_detach_policy },
		{ AWSAPI_CREATE_POLICY_VERSION, q->policy_write },
		{ AWSAPI_SET_DEFAULT_POLICY_VERSION, q->policy_write },
		{ AWSAPI_CREATE_POLICY, q->policy_write },
		{ AWSAPI_CREATE_CERTIFICATE_FROM_CSR, q->create_certificate_from_csr },
		{ AWSAPI_CREATE_KEYS_AND_CERTIFICATE, q->create_keys_and_certificate },
	};

	for (size_t i = 0; i < sizeof(rates) / sizeof(rates[0]); i++)
		cfg->tps[rates[i].op] = rates[i].rate > 0 ? rates[i].rate : -1;
	/* Keep just below the simulator's buckets so pacing, not throttling, sets the rate. */
	cfg->tps_scale = 0.95;
}

static pl_err sim_api_config(coordinator *c, const sim *s, aws_credentials *creds,
			     char *endpoint, size_t len, awsapi_config *cfg, pl_errmsg *e)
{
	char path[WP_PATH_MAX];
	pl_err err;

	snprintf(path, sizeof(path), "%s/credentials", sim_state_dir(s));
	err = credentials_read_file(creds, path, "policylag-sim", 0, e);
	if (err != PL_OK) {
		pl_errmsg_prefix(e, "simulator credentials");
		return err;
	}
	snprintf(endpoint, len, "http://127.0.0.1:%d", sim_api_port(s));
	cfg->control_endpoint = endpoint;
	cfg->data_endpoint = endpoint;
	cfg->region = "us-east-1";
	sim_rates(&c->prof->target.simulator.quotas, cfg);
	return PL_OK;
}

static pl_err aws_api_config(coordinator *c, aws_credentials *creds, char *endpoint,
			     size_t len, awsapi_config *cfg, pl_errmsg *e)
{
	const profile_aws *a = &c->prof->target.aws;
	pl_err err = PL_OK;

	if (a->access_key_id[0] != '\0') {
		snprintf(creds->access_key_id, sizeof(creds->access_key_id), "%s", a->access_key_id);
		snprintf(creds->secret_access_key, sizeof(creds->secret_access_key), "%s",
			 a->secret_access_key);
		snprintf(creds->session_token, sizeof(creds->session_token), "%s", a->session_token);
	} else {
		err = credentials_resolve(creds, a->credentials_profile, e);
	}
	if (err != PL_OK)
		return err;
	if (a->control_endpoint[0] != '\0')
		snprintf(endpoint, len, "%s", a->control_endpoint);
	else
		snprintf(endpoint, len, "https://iot.%s.amazonaws.com", a->region);
	cfg->control_endpoint = endpoint;
	/* NOTE: no data-plane endpoint yet, so probe.via http fails against AWS. */
	cfg->region = a->region;
	cfg->ca_file = a->root_ca[0] != '\0' ? a->root_ca : NULL;
	cfg->tps_scale = 0.9;
	return PL_OK;
}

pl_err run_api_create(coordinator *c, const sim *s, pl_errmsg *e)
{
	aws_credentials creds;
	char endpoint[512];
	awsapi_config cfg;
	pl_err err;

	memset(&creds, 0, sizeof(creds));
	awsapi_config_init(&cfg);
	cfg.credentials = &creds;
	cfg.max_attempts = c->prof->swap.max_retries + 1;
	if (s != NULL)
		err = sim_api_config(c, s, &creds, endpoint, sizeof(endpoint), &cfg, e);
	else
		err = aws_api_config(c, &creds, endpoint, sizeof(endpoint), &cfg, e);
	if (err == PL_OK)
		err = awsapi_ctx_create(&c->api, &cfg, e);
	credentials_clear(&creds);
	if (err == PL_OK)
		err = awsapi_pool_create(&c->pool, c->api, API_THREADS, API_QUEUE, e);
	return err;
}
