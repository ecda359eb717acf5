/*
 * The profile's key tables: one row per key with its type, default and
 * bounds. The same rows drive decoding, defaults, the writer and the key
 * list that tests compare against docs/profiles.md.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/parse.h"
#include "profiles/internal.h"

#define S PL_NS_PER_S
#define MS PL_NS_PER_MS
#define MIN (60 * S)
#define HOUR (3600 * S)

/* Rates above this (per second) are treated as typos. */
#define RATE_MAX 1000000.0

#define ROW(key, type, st, member, def, min, max) \
	{ key, type, offsetof(st, member), def, min, max, NULL, NULL, NULL }
#define ENUM_ROW(key, st, member, def, names, values) \
	{ key, FIELD_ENUM, offsetof(st, member), def, 0, 0, names, values, NULL }
#define SECTION_ROW(key, st, member, sec) \
	{ key, FIELD_SECTION, offsetof(st, member), NULL, 0, 0, NULL, NULL, &sec }
#define CUSTOM_ROW(key) { key, FIELD_CUSTOM, 0, NULL, 0, 0, NULL, NULL, NULL }
#define SECTION(name, path, rows) \
	const section name = { path, rows, sizeof(rows) / sizeof(rows[0]) }

static const char *const target_kinds[] = { "simulator", "aws", NULL };
static const char *const phases[] = { "connect", "random", NULL };
static const char *const subscribe_denied[] = { "disconnect", "suback_failure", NULL };
static const char *const qos0_denied[] = { "drop", "disconnect", NULL };
static const char *const throttling_statuses[] = { "400", "429", NULL };
static const int throttling_status_values[] = { 400, 429 };
static const char *const aws_ports[] = { "8883", "443", NULL };
static const int aws_port_values[] = { 8883, 443 };
static const char *const certificates[] = { "per-device", "shared", NULL };
static const char *const provisionings[] = { "csr", "create-keys-and-certificate", NULL };
static const char *const strategies[] = { "keep-connection", "reconnect-per-attempt", NULL };
static const char *const mqtt_versions[] = { "3.1.1", "5", NULL };
static const int mqtt_version_values[] = { PROFILE_MQTT_3_1_1, PROFILE_MQTT_5 };
static const char *const client_id_schemes[] = { "fixed", "fresh-per-attempt", NULL };
static const char *const swap_kinds[] = { "attach-detach", "policy-version", "trigger-topic",
					  NULL };
static const char *const swap_directions[] = { "grant", "revoke", NULL };
static const char *const probe_kinds[] = { "echo", "prober", NULL };
static const char *const probe_vias[] = { "mqtt", "http", NULL };

static const field quota_rows[] = {
	ROW("connect_rate_per_account", FIELD_RATE, profile_quotas, connect_per_account, "500/s", 0,
	    0),
	ROW("connect_rate_per_client", FIELD_RATE, profile_quotas, connect_per_client_id, "1/s", 0,
	    0),
	ROW("publish_rate_per_connection", FIELD_RATE, profile_quotas, publish_per_connection,
	    "100/s", 0, 0),
	ROW("subscriptions_per_connection", FIELD_INT, profile_quotas, subscriptions_per_connection,
	    "50", 0, 100000),
	ROW("subscriptions_per_request", FIELD_INT, profile_quotas, filters_per_subscribe, "8", 0,
	    1000),
	ROW("attach_detach_policy", FIELD_RATE, profile_quotas, attach_detach_policy, "15/s", 0, 0),
	ROW("policy_write", FIELD_RATE, profile_quotas, policy_write, "10/s", 0, 0),
	ROW("create_keys_and_certificate", FIELD_RATE, profile_quotas, create_keys_and_certificate,
	    "10/s", 0, 0),
	ROW("create_certificate_from_csr", FIELD_RATE, profile_quotas, create_certificate_from_csr,
	    "15/s", 0, 0),
	ENUM_ROW("throttling_status", profile_quotas, throttling_status, "400", throttling_statuses,
		 throttling_status_values),
};
static SECTION(schema_quotas, "target.simulator.quotas", quota_rows);

static const field simulator_rows[] = {
	ROW("propagation", FIELD_PROPAGATION, profile_simulator, propagation, "uniform:6m-8m", 0, 0),
	ENUM_ROW("refresh_phase", profile_simulator, phase, "connect", phases, NULL),
	ROW("connect_fresh_snapshot", FIELD_BOOL, profile_simulator, fresh_snapshot_on_connect,
	    "true", 0, 0),
	ENUM_ROW("mqtt311_subscribe_denied", profile_simulator, subscribe_denied_mqtt311,
		 "disconnect", subscribe_denied, NULL),
	ENUM_ROW("mqtt5_publish_qos0_denied", profile_simulator, publish_qos0_denied_mqtt5, "drop",
		 qos0_denied, NULL),
	SECTION_ROW("quotas", profile_simulator, quotas, schema_quotas),
	ROW("mqtt_port", FIELD_INT32, profile_simulator, mqtt_port, "0", 0, 65535),
	ROW("control_port", FIELD_INT32, profile_simulator, control_port, "0", 0, 65535),
	ROW("seed", FIELD_SEED, profile_simulator, seed, "0", 0, 0),
	ROW("region", FIELD_STRING, profile_simulator, region, "us-east-1", 0, 0),
	ROW("account", FIELD_STRING, profile_simulator, account, "123456789012", 0, 0),
};
static SECTION(schema_simulator, "target.simulator", simulator_rows);

static const field aws_rows[] = {
	ROW("region", FIELD_STRING, profile_aws, region, "", 0, 0),
	ROW("mqtt_endpoint", FIELD_STRING, profile_aws, mqtt_endpoint, "", 0, 0),
	ROW("control_endpoint", FIELD_STRING, profile_aws, control_endpoint, "", 0, 0),
	ROW("data_endpoint", FIELD_STRING, profile_aws, data_endpoint, "", 0, 0),
	ROW("credentials_profile", FIELD_STRING, profile_aws, credentials_profile, "default", 0, 0),
	ROW("access_key_id", FIELD_SECRET, profile_aws, access_key_id, "", 0, 0),
	ROW("secret_access_key", FIELD_SECRET, profile_aws, secret_access_key, "", 0, 0),
	ROW("session_token", FIELD_SECRET, profile_aws, session_token, "", 0, 0),
	ROW("root_ca", FIELD_PATH, profile_aws, root_ca, "", 0, 0),
	ENUM_ROW("port", profile_aws, port, "8883", aws_ports, aws_port_values),
};
static SECTION(schema_aws, "target.aws", aws_rows);

static const field target_rows[] = {
	ENUM_ROW("kind", profile_target, kind, "simulator", target_kinds, NULL),
	SECTION_ROW("simulator", profile_target, simulator, schema_simulator),
	SECTION_ROW("aws", profile_target, aws, schema_aws),
};
static SECTION(schema_target, "target", target_rows);

static const field fleet_rows[] = {
	ROW("devices", FIELD_INT, profile_fleet, devices, "100", 1, 999999),
	ENUM_ROW("certificates", profile_fleet, certificates, "per-device", certificates, NULL),
	ENUM_ROW("provisioning", profile_fleet, provisioning, "csr", provisionings, NULL),
	ROW("inventory", FIELD_PATH, profile_fleet, inventory, "", 0, 0),
	ROW("client_id_prefix", FIELD_STRING, profile_fleet, client_id_prefix, "pl-", 0, 0),
	ROW("connect_rate", FIELD_RATE, profile_fleet, connect_rate, "50/s", 1, 0),
	ROW("connect_rate_adaptive", FIELD_BOOL, profile_fleet, connect_rate_adaptive, "true", 0,
	    0),
	ROW("connect_rate_floor", FIELD_RATE, profile_fleet, connect_rate_floor, "1/s", 1, 0),
	ROW("worker_devices", FIELD_INT, profile_fleet, worker_devices, "250", 1, 5000),
};
static SECTION(schema_fleet, "fleet", fleet_rows);

static const field group_rows[] = {
	ROW("name", FIELD_NAME, profile_group, name, "", 0, 0),
	CUSTOM_ROW("share"),
	ENUM_ROW("strategy", profile_group, strategy, "keep-connection", strategies, NULL),
	ENUM_ROW("mqtt_version", profile_group, mqtt_version, "3.1.1", mqtt_versions,
		 mqtt_version_values),
	ROW("qos", FIELD_INT32, profile_group, qos, "1", 0, 1),
	ROW("keep_alive", FIELD_DURATION, profile_group, keep_alive_ns, "60s", 0, 65535 * S),
	ROW("clean_session", FIELD_BOOL, profile_group, clean_session, "true", 0, 0),
	ROW("attempt_interval", FIELD_DURATION, profile_group, attempt_interval_ns, "10s", 10 * MS,
	    HOUR),
	ROW("attempt_window", FIELD_DURATION, profile_group, attempt_window_ns, "7s", 10 * MS, HOUR),
	ENUM_ROW("client_id_scheme", profile_group, client_id_scheme, "fixed", client_id_schemes,
		 NULL),
	ROW("backoff_initial", FIELD_DURATION, profile_group, backoff_initial_ns, "1s", 0, HOUR),
	ROW("backoff_max", FIELD_DURATION, profile_group, backoff_max_ns, "30s", 0, HOUR),
	ROW("backoff_reset_after", FIELD_DURATION, profile_group, backoff_reset_after_ns, "30s", 0,
	    HOUR),
};
SECTION(schema_group, "groups", group_rows);

static const field policy_entry_rows[] = {
	CUSTOM_ROW("name"),
	CUSTOM_ROW("file"),
	CUSTOM_ROW("sha256"),
};
SECTION(schema_policy_entry, "policies", policy_entry_rows);

static const field policies_rows[] = {
	CUSTOM_ROW("before"),
	CUSTOM_ROW("after"),
};
static SECTION(schema_policies, "policies", policies_rows);

static const field swap_rows[] = {
	ENUM_ROW("kind", profile_swap, kind, "attach-detach", swap_kinds, NULL),
	ENUM_ROW("direction", profile_swap, direction, "grant", swap_directions, NULL),
	ROW("rate", FIELD_RATE, profile_swap, rate, "10/s", 1, 0),
	ROW("max_retries", FIELD_INT32, profile_swap, max_retries, "5", 0, 100),
	ROW("trigger_topic", FIELD_STRING, profile_swap, trigger_topic, "", 0, 0),
	ROW("response_topic", FIELD_STRING, profile_swap, response_topic, "", 0, 0),
};
static SECTION(schema_swap, "swap", swap_rows);

static const field probe_rows[] = {
	ENUM_ROW("kind", profile_probe, kind, "echo", probe_kinds, NULL),
	ROW("topic", FIELD_STRING, profile_probe, topic, "pl/probe/${client_id}", 0, 0),
	ROW("shared_topic", FIELD_BOOL, profile_probe, shared_topic, "false", 0, 0),
	ROW("interval", FIELD_DURATION, profile_probe, interval_ns, "1s", 10 * MS, HOUR),
	ROW("qos", FIELD_INT32, profile_probe, qos, "1", 0, 1),
	ENUM_ROW("via", profile_probe, via, "mqtt", probe_vias, NULL),
	ROW("payload_size", FIELD_INT, profile_probe, payload_size, "64", 32, 131072),
};
static SECTION(schema_probe, "probe", probe_rows);

static const field timing_rows[] = {
	ROW("connect_timeout", FIELD_DURATION, profile_timing, connect_timeout_ns, "10s", 100 * MS,
	    5 * MIN),
	ROW("settle", FIELD_DURATION, profile_timing, settle_ns, "5s", 0, HOUR),
	ROW("observe_timeout", FIELD_DURATION, profile_timing, observe_timeout_ns, "10m", S,
	    24 * HOUR),
	ROW("drain", FIELD_DURATION, profile_timing, drain_ns, "5s", 0, HOUR),
};
static SECTION(schema_timing, "timing", timing_rows);

static const field observer_rows[] = {
	ROW("enabled", FIELD_BOOL, profile_observer, enabled, "true", 0, 0),
	ROW("certificate", FIELD_PATH, profile_observer, certificate, "", 0, 0),
	ROW("private_key", FIELD_PATH, profile_observer, private_key, "", 0, 0),
};
static SECTION(schema_observer, "observer", observer_rows);

static const field root_rows[] = {
	ROW("name", FIELD_NAME, profile, name, "", 0, 0),
	ROW("description", FIELD_STRING, profile, description, "", 0, 0),
	SECTION_ROW("target", profile, target, schema_target),
	SECTION_ROW("fleet", profile, fleet, schema_fleet),
	CUSTOM_ROW("groups"),
	{ "policies", FIELD_SECTION, 0, NULL, 0, 0, NULL, NULL, &schema_policies },
	SECTION_ROW("swap", profile, swap, schema_swap),
	SECTION_ROW("probe", profile, probe, schema_probe),
	SECTION_ROW("timing", profile, timing, schema_timing),
	SECTION_ROW("observer", profile, observer, schema_observer),
	CUSTOM_ROW("expect"),
};
SECTION(schema_root, "", root_rows);

const field *schema_find(const section *s, const char *key)
{
	for (size_t i = 0; i < s->count; i++) {
		if (strcmp(s->fields[i].key, key) == 0)
			return &s->fields[i];
	}
	return NULL;
}

const char *schema_enum_name(const field *f, int v)
{
	for (size_t i = 0; f->names[i] != NULL; i++) {
		int value = f->values ? f->values[i] : (int)i;

		if (value == v)
			return f->names[i];
	}
	return "?";
}

void schema_format_duration(int64_t ns, char *buf, size_t len)
{
	static const struct {
		const char *unit;
		int64_t scale;
	} units[] = { { "h", HOUR }, { "m", MIN }, { "s", S }, { "ms", MS }, { "us", 1000 } };

	if (ns == 0) {
		snprintf(buf, len, "0s");
		return;
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (ns % units[i].scale == 0) {
			snprintf(buf, len, "%lld%s", (long long)(ns / units[i].scale), units[i].unit);
			return;
		}
	}
	snprintf(buf, len, "%lldns", (long long)ns);
}

void schema_format_rate(double per_second, char *buf, size_t len)
{
	if (per_second == 0.0)
		snprintf(buf, len, "off");
	else
		snprintf(buf, len, "%.10g/s", per_second);
}

/* Edit distance for suggesting the nearest known key. */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a);
	size_t lb = strlen(b);
	size_t row[64];

	if (la >= 63 || lb >= 63)
		return 64;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diagonal = row[0];

		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t above = row[j];
			size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
			size_t best = diagonal + cost;

			if (above + 1 < best)
				best = above + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diagonal = above;
		}
	}
	return row[lb];
}

static const char *nearest_key(const section *s, const char *key)
{
	const char *best = NULL;
	size_t best_distance = (strlen(key) + 2) / 3 + 1;

	for (size_t i = 0; i < s->count; i++) {
		size_t d = edit_distance(key, s->fields[i].key);

		if (d < best_distance) {
			best = s->fields[i].key;
			best_distance = d;
		}
	}
	return best;
}

static void join_path(char *buf, size_t len, const char *path, const char *key)
{
	if (path[0] == '\0')
		snprintf(buf, len, "%s", key);
	else
		snprintf(buf, len, "%s.%s", path, key);
}

/* Lists the known keys of s, for "expected one of ..." messages. */
static void list_keys(const section *s, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < s->count && used < len; i++) {
		int n = snprintf(buf + used, len - used, "%s%s", i ? ", " : "", s->fields[i].key);

		if (n < 0)
			break;
		used += (size_t)n;
	}
}

static void report_unknown_key(loader *l, const section *s, const char *path, const ptree *key)
{
	const char *suggestion = nearest_key(s, key->value);
	char where[160];
	char known[512];

	join_path(where, sizeof(where), path, key->value);
	if (suggestion != NULL) {
		loader_error(l, key, "unknown key '%s': did you mean '%s'?", where, suggestion);
		return;
	}
	list_keys(s, known, sizeof(known));
	loader_error(l, key, "unknown key '%s': expected one of %s", where, known);
}

static void check_keys(loader *l, const section *s, const char *path, const ptree *map)
{
	for (size_t i = 0; i < map->count; i++) {
		const ptree *key = map->keys[i];
		char where[160];

		if (schema_find(s, key->value) == NULL) {
			/* Top-level "x-..." keys hold YAML anchors for reuse and are ignored. */
			if (s == &schema_root && strncmp(key->value, "x-", 2) == 0)
				continue;
			report_unknown_key(l, s, path, key);
			continue;
		}
		for (size_t j = 0; j < i; j++) {
			if (strcmp(map->keys[j]->value, key->value) != 0)
				continue;
			join_path(where, sizeof(where), path, key->value);
			if (key->origin == NULL)
				loader_error(l, key, "duplicate key '%s' (first given at line %u)", where,
					     map->keys[j]->line);
			break;
		}
	}
}

/* Parses "N/s", "N/m" or "N/h" (or "off" when allowed) into events per second. */
static pl_err parse_rate(const char *text, int allow_off, double *out, pl_errmsg *e)
{
	static const struct {
		const char *suffix;
		double seconds;
	} units[] = { { "/s", 1.0 }, { "/m", 60.0 }, { "/h", 3600.0 } };
	const char *slash = strchr(text, '/');
	char number[64];
	double v;
	pl_err rc;

	if (allow_off && (strcmp(text, "off") == 0 || strcmp(text, "0") == 0)) {
		*out = 0.0;
		return PL_OK;
	}
	if (slash == NULL || (size_t)(slash - text) >= sizeof(number))
		return pl_errmsg_set(e, PL_ERR_INVALID,
				     "invalid rate '%s': expected a number per unit, for example '10/s', '600/m' or '1000/h'%s",
				     text, allow_off ? ", or 'off'" : "");
	memcpy(number, text, (size_t)(slash - text));
	number[slash - text] = '\0';
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(slash, units[i].suffix) != 0)
			continue;
		rc = pl_parse_double(number, 0.0, RATE_MAX * units[i].seconds, &v, e);
		if (rc != PL_OK)
			return pl_errmsg_set(e, rc, "invalid rate '%s': expected %s %g per second",
					     text, allow_off ? "0 (off) to" : "above 0 and at most",
					     RATE_MAX);
		if (v == 0.0 && !allow_off)
			return pl_errmsg_set(e, PL_ERR_RANGE, "invalid rate '%s': must be above zero",
					     text);
		*out = v / units[i].seconds;
		return PL_OK;
	}
	return pl_errmsg_set(e, PL_ERR_INVALID,
			     "invalid rate '%s': unknown unit '%s' (expected /s, /m or /h)", text, slash);
}

/* Parses "immediate", "ttl:D" or "uniform:D1-D2", the simulator's propagation models. */
static pl_err parse_propagation(const char *text, profile_propagation *out, pl_errmsg *e)
{
	char buf[128];
	char *dash;
	profile_propagation p = { PROFILE_PROPAGATION_IMMEDIATE, 0, 0 };
	pl_err rc;

	if (strcmp(text, "immediate") == 0) {
		*out = p;
		return PL_OK;
	}
	if (strncmp(text, "ttl:", 4) == 0) {
		p.kind = PROFILE_PROPAGATION_TTL;
		rc = pl_parse_duration(text + 4, MS, 24 * HOUR, &p.min_ns, e);
		p.max_ns = p.min_ns;
	} else if (strncmp(text, "uniform:", 8) == 0 && strlen(text + 8) < sizeof(buf)) {
		snprintf(buf, sizeof(buf), "%s", text + 8);
		dash = strchr(buf, '-');
		if (dash == NULL)
			return pl_errmsg_set(e, PL_ERR_INVALID,
					     "invalid propagation '%s': expected uniform:MIN-MAX, for example uniform:6m-8m",
					     text);
		*dash = '\0';
		p.kind = PROFILE_PROPAGATION_UNIFORM;
		rc = pl_parse_duration(buf, MS, 24 * HOUR, &p.min_ns, e);
		if (rc == PL_OK)
			rc = pl_parse_duration(dash + 1, MS, 24 * HOUR, &p.max_ns, e);
		if (rc == PL_OK && p.max_ns < p.min_ns)
			return pl_errmsg_set(e, PL_ERR_RANGE,
					     "invalid propagation '%s': the maximum is below the minimum",
					     text);
	} else {
		return pl_errmsg_set(e, PL_ERR_INVALID,
				     "invalid propagation '%s': expected immediate, ttl:DURATION or uniform:MIN-MAX",
				     text);
	}
	if (rc != PL_OK)
		return rc;
	*out = p;
	return PL_OK;
}

pl_err profile_check_name(const char *text, pl_errmsg *e)
{
	if (text[0] == '\0')
		return pl_errmsg_set(e, PL_ERR_INVALID, "missing name: the value is empty");
	if (strlen(text) > 64)
		return pl_errmsg_set(e, PL_ERR_RANGE, "name '%s' is longer than 64 characters", text);
	for (const char *c = text; *c != '\0'; c++) {
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || *c == '-' || *c == '_'))
			return pl_errmsg_set(e, PL_ERR_INVALID,
					     "invalid name '%s': use letters, digits, '-' and '_'", text);
	}
	return PL_OK;
}

static pl_err parse_enum(const field *f, const char *text, int *out, pl_errmsg *e)
{
	char known[256];
	size_t used = 0;

	for (size_t i = 0; f->names[i] != NULL; i++) {
		if (strcmp(text, f->names[i]) == 0) {
			*out = f->values ? f->values[i] : (int)i;
			return PL_OK;
		}
	}
	known[0] = '\0';
	for (size_t i = 0; f->names[i] != NULL && used < sizeof(known); i++) {
		int n = snprintf(known + used, sizeof(known) - used, "%s%s", i ? ", " : "",
				 f->names[i]);

		if (n < 0)
			break;
		used += (size_t)n;
	}
	return pl_errmsg_set(e, PL_ERR_INVALID, "invalid value '%s': expected one of %s", text,
			     known);
}

static pl_err store_string(char **slot, const char *text)
{
	char *copy = strdup(text);

	if (copy == NULL)
		return PL_ERR_NOMEM;
	free(*slot);
	*slot = copy;
	return PL_OK;
}

static pl_err decode_int(const field *f, const char *text, void *slot, pl_errmsg *e)
{
	int64_t v;
	pl_err rc = pl_parse_int64(text, f->min, f->max, &v, e);

	if (rc != PL_OK)
		return rc;
	if (f->type == FIELD_INT32)
		*(int *)slot = (int)v;
	else
		*(int64_t *)slot = v;
	return PL_OK;
}

/* Decodes text into the field's slot; decode_scalar resolves relative paths. */
static pl_err decode_text(const field *f, const char *text, void *slot, pl_errmsg *e)
{
	pl_err rc;

	switch (f->type) {
	case FIELD_NAME:
		rc = profile_check_name(text, e);
		return rc != PL_OK ? rc : store_string(slot, text);
	case FIELD_STRING:
	case FIELD_SECRET:
	case FIELD_PATH:
		return store_string(slot, text);
	case FIELD_BOOL:
		return pl_parse_bool(text, slot, e);
	case FIELD_INT:
	case FIELD_INT32:
		return decode_int(f, text, slot, e);
	case FIELD_SEED:
		return pl_parse_uint64(text, 0, UINT64_MAX, slot, e);
	case FIELD_DURATION:
		return pl_parse_duration(text, f->min, f->max, slot, e);
	case FIELD_RATE:
		return parse_rate(text, f->min == 0, slot, e);
	case FIELD_ENUM:
		return parse_enum(f, text, slot, e);
	case FIELD_PROPAGATION:
		return parse_propagation(text, slot, e);
	case FIELD_SECTION:
	case FIELD_CUSTOM:
		break;
	}
	return PL_ERR_INTERNAL;
}

void schema_set_fixed_values(profile *p)
{
	profile_quotas *q = &p->target.simulator.quotas;

	q->inbound_publish_per_account = 20000.0;
	q->outbound_publish_per_account = 20000.0;
	q->subscribe_per_account = 500.0;
}

void schema_set_defaults(loader *l, const section *s, void *base)
{
	for (size_t i = 0; i < s->count; i++) {
		const field *f = &s->fields[i];
		char *slot = (char *)base + f->offset;
		pl_errmsg e;

		if (f->type == FIELD_SECTION) {
			schema_set_defaults(l, f->section, slot);
			continue;
		}
		if (f->type == FIELD_CUSTOM)
			continue;
		if (decode_text(f, f->default_text, slot, &e) == PL_ERR_NOMEM)
			l->oom = 1;
	}
}

/* Makes a relative path absolute against the profile's folder. */
static void resolve_relative_path(loader *l, char **slot)
{
	const char *dir = l->impl->pub.dir;
	size_t len;
	char *joined;

	if (*slot == NULL || (*slot)[0] == '\0' || (*slot)[0] == '/' || dir == NULL)
		return;
	len = strlen(dir) + strlen(*slot) + 2;
	joined = malloc(len);
	if (joined == NULL) {
		l->oom = 1;
		return;
	}
	snprintf(joined, len, "%s/%s", dir, *slot);
	free(*slot);
	*slot = joined;
}

static void decode_scalar(loader *l, const field *f, const char *where, const ptree *value,
			  void *slot)
{
	pl_errmsg e;
	pl_err rc;

	if (value->type != PTREE_SCALAR) {
		loader_error(l, value, "%s: expected a single value, not a %s", where,
			     value->type == PTREE_MAP ? "map" : "list");
		return;
	}
	rc = decode_text(f, value->value, slot, &e);
	if (rc == PL_ERR_NOMEM) {
		l->oom = 1;
		return;
	}
	if (rc != PL_OK) {
		loader_error(l, value, "%s: %s", where, e.msg);
		return;
	}
	if (f->type == FIELD_PATH)
		resolve_relative_path(l, slot);
	if (value->template_text != NULL &&
	    (f->type == FIELD_STRING || f->type == FIELD_SECRET || f->type == FIELD_PATH))
		loader_remember_secret(l, slot, value->template_text);
	if (f->type == FIELD_SECRET && value->template_text == NULL && value->value[0] != '\0')
		loader_error(l, value,
			     "%s: secrets must not be written into a profile: use ${env:NAME} and set NAME in the environment",
			     where);
}

/* An empty value is "" for strings and paths; elsewhere it is an error, not the default. */
static void decode_null(loader *l, const field *f, const char *where, const ptree *value,
			void *slot)
{
	if (f->type == FIELD_STRING || f->type == FIELD_PATH || f->type == FIELD_SECRET) {
		if (store_string(slot, "") != PL_OK)
			l->oom = 1;
		return;
	}
	if (strcmp(where, "name") == 0)
		loader_error(l, value,
			     "name: missing value (remove the key to name the profile after its file)");
	else
		loader_error(l, value, "%s: missing value (remove the key to use the default, %s)",
			     where, f->default_text);
}

int schema_check_override(loader *l, const field *f, const char *where, const ptree *value)
{
	if (!value->override_value)
		return 1;
	/* Other values of a section get decode's type error. */
	if (f->type == FIELD_SECTION && (value->type == PTREE_MAP || ptree_is_null(value))) {
		loader_error(l, value,
			     "%s: a map cannot be set with --set; set its keys one at a time, for example --set %s.%s=VALUE",
			     where, where, f->section->fields[0].key);
		return 0;
	}
	if (f->type == FIELD_CUSTOM && ptree_is_null(value)) {
		loader_error(l, value,
			     "%s: missing value (remove this --set to keep the profile's value; '[]' is an empty list)",
			     where);
		return 0;
	}
	return 1;
}

void schema_decode(loader *l, const section *s, const char *path, const ptree *map, void *base)
{
	if (map == NULL || ptree_is_null(map))
		return;
	if (map->type != PTREE_MAP && path[0] == '\0') {
		loader_error(l, map, "expected a map of keys at the top level (name, target, fleet, groups, ...), not a %s",
			     map->type == PTREE_SEQ ? "list" : "single value");
		return;
	}
	if (map->type != PTREE_MAP) {
		loader_error(l, map, "%s: expected a map of keys, not a %s", path,
			     map->type == PTREE_SEQ ? "list" : "single value");
		return;
	}
	check_keys(l, s, path, map);
	for (size_t i = 0; i < map->count; i++) {
		const field *f = schema_find(s, map->keys[i]->value);
		char where[160];

		if (f == NULL)
			continue;
		join_path(where, sizeof(where), path, f->key);
		if (!schema_check_override(l, f, where, map->items[i]) || f->type == FIELD_CUSTOM)
			continue;
		if (f->type == FIELD_SECTION)
			schema_decode(l, f->section, where, map->items[i], (char *)base + f->offset);
		else if (!ptree_is_null(map->items[i]))
			decode_scalar(l, f, where, map->items[i], (char *)base + f->offset);
		else
			decode_null(l, f, where, map->items[i], (char *)base + f->offset);
	}
}

static void visit_section(const section *s, const char *path,
			  void (*fn)(void *ctx, const char *path, const field *f), void *ctx)
{
	for (size_t i = 0; i < s->count; i++) {
		char where[160];

		join_path(where, sizeof(where), path, s->fields[i].key);
		if (s->fields[i].type == FIELD_SECTION) {
			visit_section(s->fields[i].section, where, fn, ctx);
			continue;
		}
		fn(ctx, where, &s->fields[i]);
	}
}

void schema_visit_keys(void (*fn)(void *ctx, const char *path, const field *f), void *ctx)
{
	visit_section(&schema_root, "", fn, ctx);
	visit_section(&schema_group, "groups[]", fn, ctx);
	visit_section(&schema_policy_entry, "policies.before[]", fn, ctx);
}
