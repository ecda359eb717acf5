/*
 * policylag_sim.so: a mosquitto 2.0.11 plugin (plugin API version 5) that
 * makes the broker behave like AWS IoT Core for what policylag measures:
 * certificate identity, policy authorization with per-connection policy
 * snapshots, AWS's reactions to denials, and data-plane quotas.
 *
 * All state lives in the user data (struct plugin). Options are
 * `plugin_opt_<key> <value>` lines; see docs/simulator.md.
 */
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "simulator/plugin_internal.h"

int mosquitto_plugin_version(int supported_version_count, const int *supported_versions);
int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata,
			  struct mosquitto_opt *options, int option_count);
int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *options, int option_count);

int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
	for (int i = 0; i < supported_version_count; i++)
		if (supported_versions[i] == 5)
			return 5;
	return -1;
}

static pl_err parse_options(plugin *p, struct mosquitto_opt *opts, int count, pl_errmsg *e)
{
	plugin_config_defaults(&p->cfg);
	for (int i = 0; i < count; i++) {
		pl_err rc = plugin_config_option(p, opts[i].key, opts[i].value, e);
		if (rc != PL_OK)
			return rc;
	}
	if (!p->cfg.state_dir)
		return pl_errmsg_set(e, PL_ERR_INVALID, "plugin_opt_state_dir is required");
	if ((!p->cfg.region && !(p->cfg.region = strdup("us-east-1"))) ||
	    (!p->cfg.account && !(p->cfg.account = strdup("123456789012"))))
		return pl_errmsg_set(e, PL_ERR_NOMEM, "out of memory");
	return PL_OK;
}

static pl_err open_state(plugin *p, pl_errmsg *e)
{
	char path[4096];
	sim_state_config cfg = { .path = path, .region = p->cfg.region,
				 .account = p->cfg.account };
	pl_err rc;

	snprintf(path, sizeof(path), "%s/state.json", p->cfg.state_dir);
	rc = sim_state_create(&p->state, &cfg, e);
	if (rc != PL_OK)
		return rc;
	sim_state_lock(p->state);
	rc = sim_state_load(p->state, e);
	sim_state_unlock(p->state);
	return rc;
}

static pl_err setup(plugin *p, struct mosquitto_opt *opts, int count, pl_errmsg *e)
{
	int64_t now = pl_mono_ns();
	pl_err rc = parse_options(p, opts, count, e);

	if (rc != PL_OK)
		return rc;
	p->anchor_mono_ns = now;
	p->anchor_wall_ns = pl_wall_ns();
	p->rng = p->cfg.seed ? p->cfg.seed : (uint64_t)p->anchor_wall_ns | 1;
	p->session_rng = (uint64_t)p->anchor_wall_ns | 1;
	p->next_scan_ns = INT64_MAX;
	sim_quota_bucket_init(&p->account_connect_bucket, p->cfg.connect_rate_per_account, now);
	if (p->cfg.connect_rate_per_client > 0) {
		rc = sim_quota_table_create(&p->client_connect_table, p->cfg.connect_rate_per_client,
					    65536, e);
		if (rc != PL_OK)
			return rc;
	}
	if (sim_presence_create(&p->presence) != PL_OK)
		return pl_errmsg_set(e, PL_ERR_NOMEM, "out of memory");
	rc = open_state(p, e);
	if (rc == PL_OK)
		rc = plugin_logs_open(p, e);
	if (rc == PL_OK)
		rc = plugin_api_start(p, opts, count, e);
	return rc;
}

static const struct {
	int event;
	MOSQ_FUNC_generic_callback fn;
} callbacks[] = {
	{ MOSQ_EVT_BASIC_AUTH, plugin_on_basic_auth },
	{ MOSQ_EVT_ACL_CHECK, plugin_on_acl_check },
	{ MOSQ_EVT_DISCONNECT, plugin_on_disconnect },
	{ MOSQ_EVT_TICK, plugin_on_tick },
	{ MOSQ_EVT_MESSAGE, plugin_on_message },
};

#define CALLBACK_COUNT (sizeof(callbacks) / sizeof(callbacks[0]))

static void plugin_free(plugin *p)
{
	plugin_api_stop(p);
	plugin_logs_close(p);
	plugin_conns_free(p);
	plugin_cache_free(p);
	sim_quota_table_free(p->client_connect_table);
	sim_state_free(p->state);
	sim_presence_free(p->presence);
	plugin_config_free(&p->cfg);
	free(p);
}

int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata,
			  struct mosquitto_opt *options, int option_count)
{
	plugin *p = calloc(1, sizeof(*p));
	pl_errmsg e;

	pl_errmsg_clear(&e);
	if (!p)
		return MOSQ_ERR_NOMEM;
	p->id = identifier;
	if (setup(p, options, option_count, &e) != PL_OK) {
		mosquitto_log_printf(MOSQ_LOG_ERR, "policylag_sim: %s", e.msg);
		PL_ERROR("sim", "plugin start failed: %s", e.msg);
		plugin_free(p);
		return MOSQ_ERR_INVAL;
	}
	for (size_t i = 0; i < CALLBACK_COUNT; i++) {
		/* Without a topic rule the MESSAGE event has nothing to do. */
		if (callbacks[i].event == MOSQ_EVT_MESSAGE && !p->rules)
			continue;
		if (mosquitto_callback_register(identifier, callbacks[i].event, callbacks[i].fn,
						NULL, p) != MOSQ_ERR_SUCCESS) {
			for (size_t j = 0; j < i; j++)
				mosquitto_callback_unregister(identifier, callbacks[j].event,
							      callbacks[j].fn, NULL);
			plugin_free(p);
			return MOSQ_ERR_UNKNOWN;
		}
	}
	*userdata = p;
	mosquitto_log_printf(MOSQ_LOG_INFO, "policylag_sim: started, state in %s",
			     p->cfg.state_dir);
	return MOSQ_ERR_SUCCESS;
}

static void log_counters(const plugin *p)
{
	const plugin_counters *n = &p->counters;

	PL_INFO("sim",
		"stopped: %llu connects, denied: %llu connect, %llu publish, %llu subscribe, "
		"%llu receive; %llu unknown and %llu inactive certificates; throttled: %llu "
		"connect, %llu publish, %llu subscribe; %llu size limits; %llu snapshots, "
		"%llu refreshes (%llu changed)",
		(unsigned long long)n->connects, (unsigned long long)n->connect_denied,
		(unsigned long long)n->publish_denied, (unsigned long long)n->subscribe_denied,
		(unsigned long long)n->receive_denied, (unsigned long long)n->unknown_cert,
		(unsigned long long)n->inactive_cert, (unsigned long long)n->throttled_connect,
		(unsigned long long)n->throttled_publish,
		(unsigned long long)n->throttled_subscribe, (unsigned long long)n->size_rejected,
		(unsigned long long)n->snapshots, (unsigned long long)n->refreshes,
		(unsigned long long)n->refresh_changes);
}

int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *options, int option_count)
{
	plugin *p = userdata;

	(void)options;
	(void)option_count;
	if (!p)
		return MOSQ_ERR_SUCCESS;
	for (size_t i = 0; i < CALLBACK_COUNT; i++)
		if (callbacks[i].event != MOSQ_EVT_MESSAGE || p->rules)
			mosquitto_callback_unregister(p->id, callbacks[i].event, callbacks[i].fn,
						      NULL);
	log_counters(p);
	plugin_free(p);
	return MOSQ_ERR_SUCCESS;
}
