/*
 * The simulator plugin's options (`plugin_opt_<key> <value>` in
 * mosquitto.conf) and their parser. The plugin parses its options with it
 * when mosquitto loads it. The launcher (sim_start, `policylag sim`) checks
 * the same options with it before it starts mosquitto, so an invalid option
 * becomes a usage error instead of a broker that fails to start. Keys,
 * defaults and the AWS basis of each value are in docs/simulator.md.
 */
#ifndef SIM_OPTIONS_H
#define SIM_OPTIONS_H

#include <stdint.h>

#include "common/error.h"
#include "simulator/propagation.h"
#include "simulator/sim.h"

/* Reactions to a denial where AWS's behaviour is a choice (docs/simulator.md). */
typedef enum plugin_sub_deny {
	SUB_DENY_DISCONNECT,     /* close the connection (AWS staff, 2017-2018) */
	SUB_DENY_SUBACK_FAILURE, /* SUBACK 0x80 for the filter */
} plugin_sub_deny;

typedef enum plugin_qos0_deny {
	QOS0_DENY_DROP,       /* drop silently, keep the connection */
	QOS0_DENY_DISCONNECT, /* close the connection */
} plugin_qos0_deny;

/* Every plugin option outside the api_ and rule_ groups. */
typedef struct plugin_config {
	char *state_dir;
	char *region;
	char *account;
	sim_propagation propagation;
	int connect_fresh_snapshot;
	int64_t state_watch_ns;           /* 0 = off */
	plugin_sub_deny mqtt311_subscribe_denied;
	plugin_qos0_deny mqtt5_publish_qos0_denied;
	double connect_rate_per_client;   /* per second, 0 = off */
	double connect_rate_per_account;
	double publish_rate_per_connection;
	int64_t subscriptions_per_connection; /* 0 = off */
	int64_t subscriptions_per_request;
	int64_t client_id_max;
	int64_t topic_max_bytes;
	int64_t topic_max_slashes;        /* -1 = off */
	uint64_t payload_max;             /* 0 = off */
	uint64_t seed;
	int lifecycle_events;             /* publish $aws/events/presence/... */
} plugin_config;

void plugin_config_defaults(plugin_config *c);

/*
 * Parses one option outside the api_ and rule_ groups into c. PL_ERR_INVALID
 * (or the parser's range error) for an unknown key or an invalid value; the
 * message gives the reason without the key.
 */
pl_err plugin_config_set(plugin_config *c, const char *key, const char *value, pl_errmsg *e);

/* Frees the strings of c; the other fields stay. */
void plugin_config_free(plugin_config *c);

/*
 * Checks the options o gives the plugin (propagation, refresh_phase and
 * every extra option, api_ and rule_ included) with the parsers the plugin
 * uses. The message names the option: "plugin option KEY=VALUE: reason".
 */
pl_err plugin_options_check(const sim_options *o, pl_errmsg *e);

#endif
