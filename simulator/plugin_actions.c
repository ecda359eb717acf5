/*
 * Work done on the broker's tick: snapshot refreshes that fell due,
 * reloading a state file changed by another program (state_watch), and the
 * actions the HTTP API queues (publish, disconnect a client or every
 * connection of a certificate, propagation change), since mosquitto's
 * broker calls are allowed only on the broker thread. Also the topic rule,
 * run from the MESSAGE event.
 */
#include <string.h>
#include <sys/stat.h>

#include "common/clock.h"
#include "common/log.h"
#include "simulator/plugin_internal.h"

#include "simulator/api.h"
#include "simulator/rules.h"

/* Disconnects every connection that uses cert_id. */
static void kick_cert(plugin *p, const char *cert_id)
{
	plugin_conn *c = p->conns;

	while (c) {
		plugin_conn *next = c->next;
		/* mosquitto_kick_client_by_clientid fires the disconnect event,
		 * which frees c, so copy what is needed first. */
		if (c->authorized && !c->kicked && !c->closed && strcmp(c->cert_id, cert_id) == 0) {
			char id[1024];
			snprintf(id, sizeof(id), "%s", c->client_id);
			/* Marked first: should mosquitto not find the client id,
			 * the restarted scan must not pick c again. */
			c->kicked = 1;
			/* The certificate no longer authenticates the connection. */
			c->close_reason = PLUGIN_AUTH_ERROR;
			mosquitto_kick_client_by_clientid(id, true);
			next = p->conns; /* the kick may have freed c; restart */
		}
		c = next;
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

/* Publishes from the broker thread with the broker as the sender. */
static void broker_publish(void *ctx, const char *topic, const void *payload, size_t len,
			   int qos)
{
	(void)ctx;
	if (len > INT32_MAX)
		return;
	mosquitto_broker_publish_copy(NULL, topic, (int)len, payload, qos, false, NULL);
}

static void set_propagation(plugin *p, const char *text)
{
	sim_propagation model = p->cfg.propagation;
	pl_errmsg e;

	if (sim_propagation_parse(text, &model, &e) != PL_OK) {
		PL_WARN("sim", "propagation change ignored: %s", e.msg);
		return;
	}
	p->cfg.propagation = model;
	/* Every connection starts a new schedule under the new model. */
	plugin_reschedule_all(p, pl_mono_ns());
	PL_INFO("sim", "propagation model set to %s", text);
}

/* Closes one client's connection for DeleteConnection or /_sim/disconnect. */
static void disconnect_client(plugin *p, const sim_broker_action *a)
{
	plugin_conn *c = plugin_conn_find_client_id(p, a->client_id);

	if (c)
		c->close_reason = a->disconnect_reason ? a->disconnect_reason
						       : PLUGIN_API_INITIATED_DISCONNECT;
	/* NOTE: mosquitto 2.0.11 has no call to discard a session, so
	 * clean_session is not applied. */
	mosquitto_kick_client_by_clientid(a->client_id, !a->prevent_will);
}

/* Performs one action queued by the HTTP API. */
static void perform_action(void *ctx, const sim_broker_action *a)
{
	plugin *p = ctx;

	switch (a->kind) {
	case SIM_BROKER_PUBLISH:
		if (a->payload_len <= INT32_MAX)
			mosquitto_broker_publish_copy(NULL, a->topic, (int)a->payload_len,
						      a->payload, a->qos, a->retain, NULL);
		break;
	case SIM_BROKER_DISCONNECT_CLIENT:
		disconnect_client(p, a);
		break;
	case SIM_BROKER_DISCONNECT_CERT:
		/* The queue already waited for the delay the API asked for. */
		kick_cert(p, a->cert_id);
		break;
	case SIM_BROKER_SET_PROPAGATION:
		set_propagation(p, a->propagation);
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
	plugin_conns_sweep(p);
	watch_state(p, now);
	if (p->api)
		sim_api_drain(p->api, perform_action, p);
	plugin_refresh_due(p, now);
	plugin_logs_flush(p);
	return MOSQ_ERR_SUCCESS;
}

int plugin_on_message(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_message *ev = event_data;
	plugin *p = userdata;
	plugin_conn *c;

	(void)event;
	if (!p->rules)
		return MOSQ_ERR_SUCCESS;
	c = plugin_conn_find(p, ev->client);
	sim_rules_on_publish(p->rules, p->state, ev->topic, c ? c->cert_id : NULL,
			     mosquitto_client_id(ev->client), broker_publish, p);
	return MOSQ_ERR_SUCCESS;
}

/* Applies the api_* and rule_* options to their modules. */
static pl_err module_options(plugin *p, sim_api_config *cfg, struct mosquitto_opt *opts,
			     int count, int *api_wanted, pl_errmsg *e)
{
	for (int i = 0; i < count; i++) {
		pl_err rc = PL_OK;
		if (strncmp(opts[i].key, "api_", 4) == 0) {
			*api_wanted = 1;
			rc = sim_api_config_option(cfg, opts[i].key, opts[i].value, e);
		} else if (strncmp(opts[i].key, "rule_", 5) == 0) {
			if (!p->rules && (rc = sim_rules_create(&p->rules)) != PL_OK)
				return pl_errmsg_set(e, rc, "rules: out of memory");
			rc = sim_rules_option(p->rules, opts[i].key, opts[i].value, e);
		}
		if (rc != PL_OK)
			return rc;
	}
	return PL_OK;
}

pl_err plugin_api_start(plugin *p, struct mosquitto_opt *opts, int opt_count, pl_errmsg *e)
{
	sim_api_config *cfg;
	int api_wanted = 0;
	pl_err rc = sim_api_config_create(&cfg);

	if (rc != PL_OK)
		return pl_errmsg_set(e, rc, "API configuration: out of memory");
	rc = module_options(p, cfg, opts, opt_count, &api_wanted, e);
	if (rc == PL_OK && p->rules && !sim_rules_enabled(p->rules)) {
		sim_rules_free(p->rules);
		p->rules = NULL;
	}
	sim_api_config_presence(cfg, p->presence);
	if (rc == PL_OK && api_wanted)
		rc = sim_api_start((sim_api **)&p->api, cfg, p->state, e);
	sim_api_config_free(cfg);
	return rc;
}

void plugin_api_stop(plugin *p)
{
	sim_api_stop(p->api);
	p->api = NULL;
	sim_rules_free(p->rules);
	p->rules = NULL;
}
