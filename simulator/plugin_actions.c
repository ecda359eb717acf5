/*
 * Work done on the broker's tick: snapshot refreshes that fell due,
 * delayed certificate disconnects, reloading a state file changed by
 * another program (state_watch), and the actions the HTTP API queues
 * (publish, disconnect, propagation change), since mosquitto's broker
 * calls are allowed only on the broker thread.
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "common/clock.h"
#include "common/log.h"
#include "simulator/plugin_internal.h"

#include "simulator/api.h"
#include "simulator/rules.h"

void plugin_schedule_cert_kick(plugin *p, const char *cert_id, int64_t delay_ns)
{
	plugin_cert_kick *k;

	if (p->kick_count == PLUGIN_MAX_CERT_KICKS) {
		PL_WARN("sim", "certificate disconnect queue full (%d); disconnecting %s now",
			PLUGIN_MAX_CERT_KICKS, cert_id);
		delay_ns = 0;
		k = &p->kicks[0];
	} else {
		k = &p->kicks[p->kick_count++];
	}
	snprintf(k->cert_id, sizeof(k->cert_id), "%s", cert_id);
	k->due_ns = pl_mono_ns() + delay_ns;
}

/* Disconnects every connection that uses cert_id. */
static void kick_cert(plugin *p, const char *cert_id)
{
	plugin_conn *c = p->conns;

	while (c) {
		plugin_conn *next = c->next;
		/* mosquitto_kick_client_by_clientid fires the disconnect event,
		 * which frees c, so copy what is needed first. */
		if (c->authorized && strcmp(c->cert_id, cert_id) == 0 && c->client_id) {
			char id[1024];
			snprintf(id, sizeof(id), "%s", c->client_id);
			mosquitto_kick_client_by_clientid(id, true);
			next = p->conns; /* the list may have changed; restart */
		}
		c = next;
	}
}

static void run_cert_kicks(plugin *p, int64_t now)
{
	size_t i = 0;

	while (i < p->kick_count) {
		if (p->kicks[i].due_ns <= now) {
			char cert_id[SIM_CERT_ID_LEN + 1];
			memcpy(cert_id, p->kicks[i].cert_id, sizeof(cert_id));
			p->kicks[i] = p->kicks[--p->kick_count];
			kick_cert(p, cert_id);
		} else {
			i++;
		}
	}
}

/* Reloads the state file when its modification time changed. */
static void watch_state(plugin *p, int64_t now)
{
	char path[4096];
	struct stat st;
	int64_t mtime;
	pl_errmsg e;

	if (p->cfg.state_watch_ns == 0 || now - p->state_checked_ns < p->cfg.state_watch_ns)
		return;
	p->state_checked_ns = now;
	snprintf(path, sizeof(path), "%s/state.json", p->cfg.state_dir);
	if (stat(path, &st) != 0)
		return;
	mtime = (int64_t)st.st_mtim.tv_sec * PL_NS_PER_S + st.st_mtim.tv_nsec;
	if (mtime == p->state_mtime_ns)
		return;
	p->state_mtime_ns = mtime;
	if (sim_state_reload(p->state, &e) != PL_OK)
		PL_WARN("sim", "state file reload failed, keeping the old state: %s", e.msg);
	else
		PL_INFO("sim", "state file reloaded");
}

/* Performs one action the HTTP API queued (its delay has already passed). */
static void perform_action(void *ctx, const sim_broker_action *a)
{
	plugin *p = ctx;
	pl_errmsg e;

	switch (a->kind) {
	case SIM_BROKER_PUBLISH:
		mosquitto_broker_publish_copy(NULL, a->topic, (int)a->payload_len, a->payload,
					      a->qos, a->retain, NULL);
		break;
	case SIM_BROKER_DISCONNECT_CLIENT:
		/* NOTE: mosquitto 2.0 cannot discard a session on kick, so cleanSession
		 * has no effect here. */
		mosquitto_kick_client_by_clientid(a->client_id, !a->prevent_will);
		break;
	case SIM_BROKER_DISCONNECT_CERT:
		kick_cert(p, a->cert_id);
		break;
	case SIM_BROKER_SET_PROPAGATION:
		if (sim_propagation_parse(a->propagation, &p->cfg.propagation, &e) != PL_OK) {
			PL_WARN("sim", "propagation %s rejected: %s", a->propagation, e.msg);
			break;
		}
		PL_INFO("sim", "propagation model set to %s", a->propagation);
		plugin_reschedule_all(p, pl_mono_ns());
		break;
	}
}

int plugin_on_tick(int event, void *event_data, void *userdata)
{
	plugin *p = userdata;
	int64_t now = pl_mono_ns();

	(void)event;
	(void)event_data;
	p->tick_number++;
	watch_state(p, now);
	if (p->api)
		sim_api_drain(p->api, perform_action, p);
	run_cert_kicks(p, now);
	plugin_refresh_due(p, now);
	plugin_logs_flush(p);
	return MOSQ_ERR_SUCCESS;
}

/* Sets key to <state_dir>/<file> unless an option already set it. */
static pl_err default_path(sim_api_config *cfg, const plugin *p, struct mosquitto_opt *opts,
			   int opt_count, const char *key, const char *file, pl_errmsg *e)
{
	char path[4096];

	for (int i = 0; i < opt_count; i++)
		if (strcmp(opts[i].key, key) == 0)
			return PL_OK;
	snprintf(path, sizeof(path), "%s/%s", p->cfg.state_dir, file);
	return sim_api_config_option(cfg, key, path, e);
}

static pl_err api_defaults(sim_api_config *cfg, const plugin *p, struct mosquitto_opt *opts,
			   int n, pl_errmsg *e)
{
	char trusted[4096];
	pl_err rc = sim_api_config_option(cfg, "api_region", p->cfg.region, e);

	if (rc == PL_OK)
		rc = sim_api_config_option(cfg, "api_account_id", p->cfg.account, e);
	if (rc == PL_OK)
		rc = default_path(cfg, p, opts, n, "api_credentials_file", "credentials", e);
	if (rc == PL_OK)
		rc = default_path(cfg, p, opts, n, "api_ground_truth_file", "ground-truth.jsonl", e);
	if (rc == PL_OK)
		rc = default_path(cfg, p, opts, n, "api_ca_cert", "ca.pem", e);
	if (rc == PL_OK)
		rc = default_path(cfg, p, opts, n, "api_ca_key", "ca.key", e);
	/* Registered certificates go where mosquitto's capath looks (see sim.c). */
	snprintf(trusted, sizeof(trusted), "%s/trusted", p->cfg.state_dir);
	if (rc == PL_OK && mkdir(trusted, 0755) != 0 && errno != EEXIST)
		rc = pl_errmsg_set(e, PL_ERR_IO, "%s: %s", trusted, strerror(errno));
	if (rc == PL_OK)
		rc = default_path(cfg, p, opts, n, "api_trust_dir", "trusted", e);
	return rc;
}

/* Parses the "rule_*" options; creates the rule only when some are given. */
static pl_err rules_start(plugin *p, struct mosquitto_opt *opts, int opt_count, pl_errmsg *e)
{
	sim_rules *r = NULL;
	pl_err rc = PL_OK;

	for (int i = 0; rc == PL_OK && i < opt_count; i++) {
		if (strncmp(opts[i].key, "rule_", 5) != 0)
			continue;
		if (r == NULL && (rc = sim_rules_create(&r)) != PL_OK)
			break;
		rc = sim_rules_option(r, opts[i].key, opts[i].value, e);
		if (rc != PL_OK)
			pl_errmsg_prefix(e, "plugin_opt_%s %s", opts[i].key, opts[i].value);
	}
	if (rc != PL_OK) {
		sim_rules_free(r);
		return rc;
	}
	p->rules = r;
	return PL_OK;
}

/*
 * Starts the HTTP API when an api_port option is given (the launcher omits
 * it for "no API"), and the topic rule when rule_* options are given.
 */
pl_err plugin_api_start(plugin *p, struct mosquitto_opt *opts, int opt_count, pl_errmsg *e)
{
	sim_api_config *cfg = NULL;
	sim_api *api = NULL;
	int wanted = 0;
	pl_err rc = rules_start(p, opts, opt_count, e);

	for (int i = 0; i < opt_count; i++)
		wanted |= strcmp(opts[i].key, "api_port") == 0;
	if (rc != PL_OK || !wanted)
		return rc;
	rc = sim_api_config_create(&cfg);
	if (rc == PL_OK)
		rc = api_defaults(cfg, p, opts, opt_count, e);
	for (int i = 0; rc == PL_OK && i < opt_count; i++) {
		if (strncmp(opts[i].key, "api_", 4) != 0)
			continue;
		rc = sim_api_config_option(cfg, opts[i].key, opts[i].value, e);
		if (rc != PL_OK)
			pl_errmsg_prefix(e, "plugin_opt_%s %s", opts[i].key, opts[i].value);
	}
	if (rc == PL_OK)
		rc = sim_api_start(&api, cfg, p->state, e);
	sim_api_config_free(cfg);
	p->api = api;
	return rc;
}

void plugin_api_stop(plugin *p)
{
	sim_api_stop(p->api);
	p->api = NULL;
	sim_rules_free(p->rules);
	p->rules = NULL;
}

static void rule_publish(void *ctx, const char *topic, const void *payload, size_t len, int qos)
{
	(void)ctx;
	mosquitto_broker_publish_copy(NULL, topic, (int)len, payload, qos, false, NULL);
}

/* MESSAGE event: runs the topic rule for an authorized publish. */
int plugin_on_message(int event, void *event_data, void *userdata)
{
	plugin *p = userdata;
	struct mosquitto_evt_message *m = event_data;
	plugin_conn *c;

	(void)event;
	if (p->rules == NULL || m->client == NULL)
		return MOSQ_ERR_SUCCESS;
	c = plugin_conn_find(p, m->client);
	if (c != NULL && c->authorized)
		sim_rules_on_publish(p->rules, p->state, m->topic, c->cert_id, c->client_id,
				     rule_publish, p);
	return MOSQ_ERR_SUCCESS;
}
