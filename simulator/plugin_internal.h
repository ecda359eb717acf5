/*
 * Internals of the mosquitto plugin (simulator/plugin*.c). Everything here
 * runs on mosquitto's broker thread unless a comment says otherwise; the
 * only state shared with other threads is the sim_state store (its own
 * mutex) and the API's action queue.
 */
#ifndef SIM_PLUGIN_INTERNAL_H
#define SIM_PLUGIN_INTERNAL_H

#include <stdint.h>
#include <stdio.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#include "simulator/options.h"
#include "simulator/policy.h"
#include "simulator/presence.h"
#include "simulator/propagation.h"
#include "simulator/quota.h"
#include "simulator/state.h"

/*
 * A remembered Allow for one action and resource name. Decisions depend only
 * on the snapshot and on connection-fixed values (client id, certificate,
 * address), so they stay valid until the connection's snapshot changes.
 */
typedef struct plugin_decision {
	uint64_t hash;   /* 0 = empty */
	sim_action action;
	char *name;
} plugin_decision;

#define PLUGIN_DECISION_SLOTS 8

/* One MQTT connection the plugin has seen at CONNECT. */
typedef struct plugin_conn {
	struct mosquitto *client;
	struct plugin_conn *hash_next;
	struct plugin_conn *prev, *next; /* list of all connections */
	uint64_t id;                     /* connection number, from 1 */
	char *client_id;
	char cert_id[SIM_CERT_ID_LEN + 1];
	int protocol_version;            /* 3, 4 or 5 as mosquitto reports */
	sim_cert_fields *cert_fields;
	sim_snapshot *snapshot;
	const sim_policy **set;          /* compiled policies of snapshot */
	int64_t connect_mono_ns;
	int64_t next_refresh_ns;         /* INT64_MAX = never (immediate model) */
	sim_quota_bucket publish_bucket;
	int64_t sub_burst_tick;          /* tick number of the last SUBSCRIBE check */
	int64_t sub_burst_count;
	plugin_decision decisions[PLUGIN_DECISION_SLOTS]; /* Allows under snapshot */
	int authorized;                  /* passed CONNECT */
	int kicked;                      /* disconnected by the plugin */
	int closed;                      /* disconnected; freed on the next tick */
	/* Lifecycle events (plugin_events.c). */
	char session_id[33];             /* sessionIdentifier: 128 random bits in hex */
	int64_t version;                 /* versionNumber of this connection */
	int present;                     /* counted in the presence registry */
	int announced;                   /* the connected event was published */
	int disconnect_pending;          /* closed; the disconnected event waits for the tick */
	int will_checked;                /* mosquitto sent (checked) the will after the close */
	const char *close_reason;        /* disconnectReason the plugin caused, or NULL */
} plugin_conn;

typedef struct plugin_cache_entry plugin_cache_entry;

typedef struct plugin_counters {
	uint64_t connects, connect_denied, unknown_cert, inactive_cert;
	uint64_t publish_denied, subscribe_denied, receive_denied;
	uint64_t throttled_connect, throttled_publish, throttled_subscribe;
	uint64_t size_rejected, snapshots, refreshes, refresh_changes;
} plugin_counters;

typedef struct plugin {
	mosquitto_plugin_id_t *id;
	plugin_config cfg;
	sim_state *state;
	struct sim_api *api;             /* NULL without api_* options */
	struct sim_rules *rules;         /* NULL without a rule_topic */
	sim_presence *presence;          /* connected client ids, shared with the API */
	plugin_conn **table;             /* hash of connections by client pointer */
	size_t table_size;
	plugin_conn *conns;              /* list head */
	size_t conn_count;
	uint64_t next_conn_id;
	int64_t next_scan_ns;            /* earliest refresh deadline */
	plugin_cache_entry **cache;      /* principal cache, connect_fresh_snapshot false */
	plugin_conn **closed;            /* closed connections to free on the next tick */
	size_t closed_count, closed_cap;
	uint64_t rng;                    /* propagation delays; seeded by the seed option */
	uint64_t session_rng;            /* lifecycle sessionIdentifier values */
	sim_quota_bucket account_connect_bucket;
	sim_quota_table *client_connect_table;
	int64_t tick_number;
	FILE *ground_truth;
	FILE *denials;
	int logs_dirty;
	int64_t anchor_mono_ns, anchor_wall_ns;
	int64_t state_checked_ns;
	int64_t state_mtime_ns;
	plugin_counters counters;
} plugin;

/* plugin_options.c */
pl_err plugin_config_option(plugin *p, const char *key, const char *value, pl_errmsg *e);

/* plugin_conn.c */
plugin_conn *plugin_conn_find(plugin *p, const struct mosquitto *client);
pl_err plugin_conn_add(plugin *p, struct mosquitto *client, plugin_conn **out);
void plugin_conn_remove(plugin *p, plugin_conn *c);
void plugin_conns_free(plugin *p);
void plugin_cache_free(plugin *p);
pl_err plugin_conn_snapshot(plugin *p, plugin_conn *c, const char *reason);
void plugin_conn_maybe_refresh(plugin *p, plugin_conn *c, int64_t now);
void plugin_refresh_due(plugin *p, int64_t now);
void plugin_reschedule_all(plugin *p, int64_t now);
void plugin_decisions_clear(plugin_conn *c);
void plugin_conn_close(plugin *p, plugin_conn *c);
/* Removes c now, closed or not. */
void plugin_conn_discard(plugin *p, plugin_conn *c);
void plugin_conns_sweep(plugin *p);

/* plugin_auth.c */
int plugin_on_basic_auth(int event, void *event_data, void *userdata);
int plugin_on_acl_check(int event, void *event_data, void *userdata);
int plugin_on_disconnect(int event, void *event_data, void *userdata);

/* plugin_log.c */
pl_err plugin_logs_open(plugin *p, pl_errmsg *e);
void plugin_logs_close(plugin *p);
void plugin_log_snapshot(plugin *p, const plugin_conn *c, const char *reason, int changed,
			 int64_t scheduled_ns, int64_t now);
void plugin_log_denial(plugin *p, const plugin_conn *c, const struct mosquitto *client,
		       const char *event_type, sim_action action, const char *name,
		       const char *reason, const sim_policy_explanation *why);
void plugin_logs_flush(plugin *p);

/* plugin_events.c: AWS IoT lifecycle events */
extern const char PLUGIN_AUTH_ERROR[], PLUGIN_CLIENT_ERROR[], PLUGIN_DUPLICATE_CLIENTID[];
extern const char PLUGIN_API_INITIATED_DISCONNECT[];
void plugin_event_connected(plugin *p, plugin_conn *c, const struct mosquitto *client);
void plugin_event_connect_failed(plugin *p, plugin_conn *c, const struct mosquitto *client);
void plugin_event_disconnect(plugin *p, plugin_conn *c, int mosquitto_reason);
void plugin_event_closed_flush(plugin_conn *c);
plugin_conn *plugin_conn_find_client_id(plugin *p, const char *client_id);

/* plugin_actions.c */
int plugin_on_tick(int event, void *event_data, void *userdata);
int plugin_on_message(int event, void *event_data, void *userdata);
pl_err plugin_api_start(plugin *p, struct mosquitto_opt *opts, int opt_count, pl_errmsg *e);
void plugin_api_stop(plugin *p);

#endif
