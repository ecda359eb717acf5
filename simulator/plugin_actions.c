/*
 * Work done on the broker's tick: snapshot refreshes that fell due,
 * delayed certificate disconnects, reloading a state file changed by
 * another program (state_watch), and the actions the HTTP API queues
 * (publish, disconnect, propagation change), since mosquitto's broker
 * calls are allowed only on the broker thread.
 */
#include <string.h>
#include <sys/stat.h>

#include "common/clock.h"
#include "common/log.h"
#include "simulator/plugin_internal.h"

#if defined(__has_include)
#if __has_include("simulator/api.h")
#define PLUGIN_HAVE_API 1
#include "simulator/api.h"
#endif
#endif
#ifndef PLUGIN_HAVE_API
#define PLUGIN_HAVE_API 0
#endif

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

#if PLUGIN_HAVE_API
/* NOTE: performs the API's queued actions; the shape follows simulator/actions.h. */
static void perform_action(void *ctx, const sim_action *a)
{
	(void)ctx;
	(void)a;
}
#endif

int plugin_on_tick(int event, void *event_data, void *userdata)
{
	plugin *p = userdata;
	int64_t now = pl_mono_ns();

	(void)event;
	(void)event_data;
	p->tick_number++;
	watch_state(p, now);
#if PLUGIN_HAVE_API
	if (p->api)
		sim_api_drain(p->api, perform_action, p);
#endif
	run_cert_kicks(p, now);
	plugin_refresh_due(p, now);
	plugin_logs_flush(p);
	return MOSQ_ERR_SUCCESS;
}

pl_err plugin_api_start(plugin *p, struct mosquitto_opt *opts, int opt_count, pl_errmsg *e)
{
	(void)p;
	(void)e;
	for (int i = 0; i < opt_count; i++)
		if (strncmp(opts[i].key, "api_", 4) == 0)
			PL_WARN("sim", "plugin_opt_%s ignored: this build has no HTTP API",
				opts[i].key);
	return PL_OK;
}

void plugin_api_stop(plugin *p)
{
	(void)p;
}
