/*
 * The plugin's options, parsed with the checked parsers. One table gives
 * each key its parser; the defaults and the AWS basis of each value are in
 * docs/simulator.md. Built into the plugin and into libpolicylag, so that
 * the launcher checks options with the plugin's own parsers.
 */
#include "simulator/options.h"

#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/parse.h"
#include "simulator/api.h"
#include "simulator/rules.h"

void plugin_config_defaults(plugin_config *c)
{
	memset(c, 0, sizeof(*c));
	c->propagation.kind = SIM_PROP_UNIFORM;
	c->propagation.min_ns = 360 * PL_NS_PER_S;
	c->propagation.max_ns = 480 * PL_NS_PER_S;
	c->propagation.phase = SIM_PHASE_CONNECT;
	c->connect_fresh_snapshot = 1;
	c->mqtt311_subscribe_denied = SUB_DENY_DISCONNECT;
	c->mqtt5_publish_qos0_denied = QOS0_DENY_DROP;
	c->connect_rate_per_client = 1;
	c->connect_rate_per_account = 500;
	c->publish_rate_per_connection = 100;
	c->subscriptions_per_connection = 50;
	c->subscriptions_per_request = 8;
	c->client_id_max = 128;
	c->topic_max_bytes = 256;
	c->topic_max_slashes = 7;
	c->payload_max = 128 * 1024;
	c->lifecycle_events = 1;
}

void plugin_config_free(plugin_config *c)
{
	free(c->state_dir);
	free(c->region);
	free(c->account);
}

static pl_err set_string(char **field, const char *value, pl_errmsg *e)
{
	char *copy = strdup(value);

	if (!copy)
		return pl_errmsg_set(e, PL_ERR_NOMEM, "out of memory");
	free(*field);
	*field = copy;
	return PL_OK;
}

/* "0" or "off" disables a limit; anything else is a non-negative number. */
static int is_off(const char *value)
{
	return strcmp(value, "off") == 0;
}

static pl_err parse_rate(const char *value, double *out, pl_errmsg *e)
{
	if (is_off(value)) {
		*out = 0;
		return PL_OK;
	}
	return pl_parse_double(value, 0, 1e9, out, e);
}

static pl_err parse_count(const char *value, int64_t off_value, int64_t *out, pl_errmsg *e)
{
	if (is_off(value)) {
		*out = off_value;
		return PL_OK;
	}
	return pl_parse_int64(value, 0, 1000000000, out, e);
}

static pl_err parse_sub_deny(const char *value, plugin_sub_deny *out, pl_errmsg *e)
{
	if (strcmp(value, "disconnect") == 0)
		*out = SUB_DENY_DISCONNECT;
	else if (strcmp(value, "suback_failure") == 0)
		*out = SUB_DENY_SUBACK_FAILURE;
	else
		return pl_errmsg_set(e, PL_ERR_INVALID, "expected disconnect or suback_failure");
	return PL_OK;
}

static pl_err parse_qos0_deny(const char *value, plugin_qos0_deny *out, pl_errmsg *e)
{
	if (strcmp(value, "drop") == 0)
		*out = QOS0_DENY_DROP;
	else if (strcmp(value, "disconnect") == 0)
		*out = QOS0_DENY_DISCONNECT;
	else
		return pl_errmsg_set(e, PL_ERR_INVALID, "expected drop or disconnect");
	return PL_OK;
}

pl_err plugin_config_set(plugin_config *c, const char *key, const char *value, pl_errmsg *e)
{
	if (strcmp(key, "state_dir") == 0)
		return set_string(&c->state_dir, value, e);
	if (strcmp(key, "region") == 0)
		return set_string(&c->region, value, e);
	if (strcmp(key, "account") == 0)
		return set_string(&c->account, value, e);
	if (strcmp(key, "propagation") == 0)
		return sim_propagation_parse(value, &c->propagation, e);
	if (strcmp(key, "refresh_phase") == 0)
		return sim_refresh_phase_parse(value, &c->propagation.phase, e);
	if (strcmp(key, "connect_fresh_snapshot") == 0)
		return pl_parse_bool(value, &c->connect_fresh_snapshot, e);
	if (strcmp(key, "state_watch") == 0)
		return is_off(value) ? (c->state_watch_ns = 0, PL_OK)
				     : pl_parse_duration(value, PL_NS_PER_MS, 3600 * PL_NS_PER_S,
							 &c->state_watch_ns, e);
	if (strcmp(key, "mqtt311_subscribe_denied") == 0)
		return parse_sub_deny(value, &c->mqtt311_subscribe_denied, e);
	if (strcmp(key, "mqtt5_publish_qos0_denied") == 0)
		return parse_qos0_deny(value, &c->mqtt5_publish_qos0_denied, e);
	if (strcmp(key, "connect_rate_per_client") == 0)
		return parse_rate(value, &c->connect_rate_per_client, e);
	if (strcmp(key, "connect_rate_per_account") == 0)
		return parse_rate(value, &c->connect_rate_per_account, e);
	if (strcmp(key, "publish_rate_per_connection") == 0)
		return parse_rate(value, &c->publish_rate_per_connection, e);
	if (strcmp(key, "subscriptions_per_connection") == 0)
		return parse_count(value, 0, &c->subscriptions_per_connection, e);
	if (strcmp(key, "subscriptions_per_request") == 0)
		return parse_count(value, 0, &c->subscriptions_per_request, e);
	if (strcmp(key, "client_id_max") == 0)
		return parse_count(value, 0, &c->client_id_max, e);
	if (strcmp(key, "topic_max_bytes") == 0)
		return parse_count(value, 0, &c->topic_max_bytes, e);
	if (strcmp(key, "topic_max_slashes") == 0)
		return parse_count(value, -1, &c->topic_max_slashes, e);
	if (strcmp(key, "payload_max") == 0)
		return is_off(value) ? (c->payload_max = 0, PL_OK)
				     : pl_parse_size(value, 0, UINT64_C(1) << 32, &c->payload_max, e);
	if (strcmp(key, "lifecycle_events") == 0)
		return pl_parse_bool(value, &c->lifecycle_events, e);
	if (strcmp(key, "seed") == 0)
		return pl_parse_uint64(value, 0, UINT64_MAX, &c->seed, e);
	return pl_errmsg_set(e, PL_ERR_INVALID, "unknown option (see docs/simulator.md)");
}

/* Keys and values become one `plugin_opt_<key> <value>` line of mosquitto.conf. */
static pl_err check_syntax(const char *key, const char *value, pl_errmsg *e)
{
	if (key[0] == '\0' ||
	    strspn(key, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") !=
		    strlen(key))
		return pl_errmsg_set(e, PL_ERR_INVALID, "invalid key (expected letters, digits and '_')");
	if (value[0] == '\0')
		return pl_errmsg_set(e, PL_ERR_INVALID, "missing value");
	if (strpbrk(value, "\r\n") != NULL)
		return pl_errmsg_set(e, PL_ERR_INVALID, "value contains a line break");
	return PL_OK;
}

/* The parsers of the plugin's three option groups, as plugin.c and plugin_actions.c route them. */
typedef struct option_parsers {
	plugin_config config;
	sim_api_config *api;
	sim_rules *rules;
} option_parsers;

static pl_err check_one(option_parsers *p, const char *key, const char *value, pl_errmsg *e)
{
	pl_err rc = check_syntax(key, value, e);

	if (rc == PL_OK) {
		if (strncmp(key, "api_", 4) == 0)
			rc = sim_api_config_option(p->api, key, value, e);
		else if (strncmp(key, "rule_", 5) == 0)
			rc = sim_rules_option(p->rules, key, value, e);
		else
			rc = plugin_config_set(&p->config, key, value, e);
	}
	if (rc == PL_ERR_NOMEM)
		return pl_errmsg_set(e, rc, "plugin options: out of memory");
	if (rc != PL_OK)
		pl_errmsg_prefix(e, "plugin option %s=%s", key, value);
	return rc;
}

pl_err plugin_options_check(const sim_options *o, pl_errmsg *e)
{
	option_parsers p;
	pl_err rc;

	memset(&p, 0, sizeof(p));
	plugin_config_defaults(&p.config);
	rc = sim_api_config_create(&p.api);
	if (rc == PL_OK)
		rc = sim_rules_create(&p.rules);
	if (rc != PL_OK) {
		pl_errmsg_set(e, rc, "plugin options: out of memory");
		goto cleanup;
	}
	if (o->propagation)
		rc = check_one(&p, "propagation", o->propagation, e);
	if (rc == PL_OK && o->refresh_phase)
		rc = check_one(&p, "refresh_phase", o->refresh_phase, e);
	for (int i = 0; i < o->extra_count && rc == PL_OK; i++)
		rc = check_one(&p, o->extra[i].key, o->extra[i].value, e);
cleanup:
	sim_rules_free(p.rules);
	sim_api_config_free(p.api);
	plugin_config_free(&p.config);
	return rc;
}
