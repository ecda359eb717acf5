/*
 * Parsing and validation of AWS IoT policy documents into compiled
 * statements. Every error names the statement index and the field.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "simulator/policy_internal.h"

#define POLICY_VERSION "2012-10-17"

/* Returns whether msg starts with "Name: " or "Name[0].Key: ": a field path. */
static int starts_with_path(const char *msg)
{
	if (msg[0] < 'A' || msg[0] > 'Z')
		return 0;
	const char *end = strstr(msg, ": ");
	return end && memchr(msg, ' ', (size_t)(end - msg)) == NULL;
}

void sim_errmsg_path(pl_errmsg *e, const char *fmt, ...)
{
	if (!e)
		return;
	char segment[PL_ERRMSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(segment, sizeof(segment), fmt, ap);
	va_end(ap);

	char rest[PL_ERRMSG_MAX];
	snprintf(rest, sizeof(rest), "%s", e->msg);
	snprintf(e->msg, sizeof(e->msg), "%s%s%s", segment, starts_with_path(rest) ? "." : ": ",
		 rest);
}

static int is_json_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Counts characters (UTF-8 code points) that are not whitespace. */
static size_t count_chars(const char *json, size_t len)
{
	size_t count = 0;
	for (size_t i = 0; i < len; i++) {
		char c = json[i];
		if (!is_json_space(c) && ((unsigned char)c & 0xC0) != 0x80)
			count++;
	}
	return count;
}

/* Calls check(item) for the string or each string of a non-empty list. */
static pl_err for_each_string(json_t *value, const char *field,
			      pl_err (*check)(const char *, size_t, void *, pl_errmsg *),
			      void *arg, pl_errmsg *e)
{
	if (json_is_string(value)) {
		pl_err err = check(json_string_value(value), 0, arg, e);
		if (err != PL_OK)
			sim_errmsg_path(e, "%s", field);
		return err;
	}
	if (!json_is_array(value))
		return pl_errmsg_set(e, PL_ERR_PARSE, "%s: must be a string or a list of strings",
				     field);
	if (json_array_size(value) == 0)
		return pl_errmsg_set(e, PL_ERR_PARSE, "%s: must not be an empty list", field);

	size_t i;
	json_t *item;
	json_array_foreach(value, i, item) {
		if (!json_is_string(item))
			return pl_errmsg_set(e, PL_ERR_PARSE, "%s[%zu]: must be a string", field, i);
		pl_err err = check(json_string_value(item), i, arg, e);
		if (err != PL_OK) {
			sim_errmsg_path(e, "%s[%zu]", field, i);
			return err;
		}
	}
	return PL_OK;
}

static int valid_action(const char *action)
{
	if (strcmp(action, "*") == 0)
		return 1;
	const char *colon = strchr(action, ':');
	if (!colon || colon == action || colon[1] == '\0')
		return 0;
	size_t service_len = (size_t)(colon - action);
	if (strspn(action, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-*?") !=
	    service_len)
		return 0;
	const char *name = colon + 1;
	return strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789*?") ==
	       strlen(name);
}

static pl_err add_action(const char *action, size_t index, void *arg, pl_errmsg *e)
{
	(void)index;
	if (!valid_action(action))
		return pl_errmsg_set(e, PL_ERR_PARSE,
				     "\"%s\" is not an action (\"*\" or \"service:Name\", for "
				     "example \"iot:Publish\")",
				     action);
	*(uint32_t *)arg |= sim_action_mask(action);
	return PL_OK;
}

typedef struct resource_builder {
	sim_statement *statement;
	sim_var_table *table;
} resource_builder;

/* Accepts "*" or an ARN with at least partition, service, region, account and resource. */
static int valid_resource(const char *resource)
{
	if (strcmp(resource, "*") == 0)
		return 1;
	if (strncmp(resource, "arn:", 4) != 0)
		return 0;
	int colons = 0;
	for (const char *c = resource; *c; c++)
		colons += *c == ':';
	return colons >= 5;
}

static pl_err add_resource(const char *resource, size_t index, void *arg, pl_errmsg *e)
{
	resource_builder *b = arg;
	if (!valid_resource(resource))
		return pl_errmsg_set(e, PL_ERR_PARSE,
				     "\"%s\" is not \"*\" or an ARN "
				     "(arn:aws:iot:REGION:ACCOUNT:TYPE/NAME)",
				     resource);
	pl_err err = sim_pattern_compile(resource, 1, b->table, &b->statement->resources[index], e);
	if (err == PL_OK)
		b->statement->resource_count = index + 1;
	return err;
}

/* Returns the one member of the pair present, or NULL after setting e. */
static json_t *one_of(json_t *stmt, const char *name, const char *negated, int *is_negated,
		      pl_errmsg *e)
{
	json_t *plain = json_object_get(stmt, name);
	json_t *neg = json_object_get(stmt, negated);
	if (plain && neg) {
		pl_errmsg_set(e, PL_ERR_PARSE, "has both %s and %s; use one", name, negated);
		return NULL;
	}
	if (!plain && !neg) {
		pl_errmsg_set(e, PL_ERR_PARSE, "missing %s (or %s)", name, negated);
		return NULL;
	}
	*is_negated = neg != NULL;
	return plain ? plain : neg;
}

static pl_err check_statement_fields(json_t *stmt, pl_errmsg *e)
{
	static const char *const known[] = { "Sid", "Effect", "Action", "NotAction",
					     "Resource", "NotResource", "Condition" };
	const char *key;
	json_t *value;
	json_object_foreach(stmt, key, value) {
		size_t i = 0;
		while (i < sizeof(known) / sizeof(known[0]) && strcmp(known[i], key) != 0)
			i++;
		if (i < sizeof(known) / sizeof(known[0]))
			continue;
		if (strcmp(key, "Principal") == 0 || strcmp(key, "NotPrincipal") == 0)
			return pl_errmsg_set(e, PL_ERR_PARSE,
					     "%s: not allowed in an AWS IoT policy (the principal "
					     "is the certificate it is attached to)",
					     key);
		return pl_errmsg_set(e, PL_ERR_PARSE,
				     "unknown field \"%s\" (field names are case-sensitive)", key);
	}
	return PL_OK;
}

static pl_err parse_effect(json_t *stmt, sim_statement *s, pl_errmsg *e)
{
	json_t *effect = json_object_get(stmt, "Effect");
	if (!effect)
		return pl_errmsg_set(e, PL_ERR_PARSE, "Effect: missing (\"Allow\" or \"Deny\")");
	const char *text = json_string_value(effect);
	if (text && strcmp(text, "Allow") == 0)
		s->deny = 0;
	else if (text && strcmp(text, "Deny") == 0)
		s->deny = 1;
	else
		return pl_errmsg_set(e, PL_ERR_PARSE, "Effect: must be \"Allow\" or \"Deny\"");
	return PL_OK;
}

static pl_err parse_actions(json_t *stmt, sim_statement *s, pl_errmsg *e)
{
	int negated;
	json_t *actions = one_of(stmt, "Action", "NotAction", &negated, e);
	if (!actions)
		return PL_ERR_PARSE;
	uint32_t mask = 0;
	pl_err err = for_each_string(actions, negated ? "NotAction" : "Action", add_action, &mask, e);
	if (err != PL_OK)
		return err;
	uint32_t all = (1u << SIM_ACTION__COUNT) - 1;
	s->actions = negated ? all & ~mask : mask;
	return PL_OK;
}

static pl_err parse_resources(json_t *stmt, sim_statement *s, sim_var_table *table, pl_errmsg *e)
{
	json_t *resources = one_of(stmt, "Resource", "NotResource", &s->not_resource, e);
	if (!resources)
		return PL_ERR_PARSE;
	size_t count = json_is_array(resources) ? json_array_size(resources) : 1;
	s->resources = calloc(count ? count : 1, sizeof(*s->resources));
	if (!s->resources)
		return pl_errmsg_set(e, PL_ERR_NOMEM, "policy: out of memory");
	resource_builder b = { s, table };
	return for_each_string(resources, s->not_resource ? "NotResource" : "Resource", add_resource,
			       &b, e);
}

static pl_err parse_sid(json_t *stmt, sim_statement *s, pl_errmsg *e)
{
	json_t *sid = json_object_get(stmt, "Sid");
	if (!sid)
		return PL_OK;
	if (!json_is_string(sid))
		return pl_errmsg_set(e, PL_ERR_PARSE, "Sid: must be a string");
	s->sid = strdup(json_string_value(sid));
	return s->sid ? PL_OK : pl_errmsg_set(e, PL_ERR_NOMEM, "policy: out of memory");
}

static pl_err parse_statement(json_t *stmt, sim_statement *s, pl_errmsg *e)
{
	if (!json_is_object(stmt))
		return pl_errmsg_set(e, PL_ERR_PARSE, "must be an object");
	sim_var_table *table = calloc(1, sizeof(*table));
	if (!table)
		return pl_errmsg_set(e, PL_ERR_NOMEM, "policy: out of memory");
	s->vars = table;

	pl_err err = check_statement_fields(stmt, e);
	if (err == PL_OK)
		err = parse_sid(stmt, s, e);
	if (err == PL_OK)
		err = parse_effect(stmt, s, e);
	if (err == PL_OK)
		err = parse_actions(stmt, s, e);
	if (err == PL_OK)
		err = parse_resources(stmt, s, table, e);
	json_t *cond = json_object_get(stmt, "Condition");
	if (err == PL_OK && cond) {
		err = sim_conditions_compile(cond, s, table, e);
		if (err != PL_OK)
			sim_errmsg_path(e, "Condition");
	}
	if (err == PL_OK && table->count == 0) {
		free(table);
		s->vars = NULL;
	}
	return err;
}

static pl_err check_top_level(json_t *root, pl_errmsg *e)
{
	const char *key;
	json_t *value;
	json_object_foreach(root, key, value) {
		if (strcmp(key, "Version") != 0 && strcmp(key, "Statement") != 0 &&
		    strcmp(key, "Id") != 0)
			return pl_errmsg_set(e, PL_ERR_PARSE,
					     "unknown top-level field \"%s\" (expected Version, "
					     "Statement and optionally Id)",
					     key);
	}

	json_t *version = json_object_get(root, "Version");
	if (!version)
		return pl_errmsg_set(e, PL_ERR_PARSE, "Version: missing; use \"" POLICY_VERSION "\"");
	const char *text = json_string_value(version);
	if (!text || strcmp(text, POLICY_VERSION) != 0)
		return pl_errmsg_set(e, PL_ERR_PARSE,
				     "Version: must be \"" POLICY_VERSION "\" (the version with "
				     "policy variables)");
	json_t *id = json_object_get(root, "Id");
	if (id && !json_is_string(id))
		return pl_errmsg_set(e, PL_ERR_PARSE, "Id: must be a string");
	return PL_OK;
}

static pl_err parse_statements(json_t *root, sim_policy *p, pl_errmsg *e)
{
	json_t *stmts = json_object_get(root, "Statement");
	if (!stmts)
		return pl_errmsg_set(e, PL_ERR_PARSE, "Statement: missing");
	if (!json_is_object(stmts) && !json_is_array(stmts))
		return pl_errmsg_set(e, PL_ERR_PARSE, "Statement: must be an object or a list of objects");
	size_t count = json_is_array(stmts) ? json_array_size(stmts) : 1;
	if (count == 0)
		return pl_errmsg_set(e, PL_ERR_PARSE, "Statement: must not be an empty list");

	p->statements = calloc(count, sizeof(*p->statements));
	if (!p->statements)
		return pl_errmsg_set(e, PL_ERR_NOMEM, "policy: out of memory");
	for (size_t i = 0; i < count; i++) {
		json_t *stmt = json_is_array(stmts) ? json_array_get(stmts, i) : stmts;
		p->count = i + 1;
		pl_err err = parse_statement(stmt, &p->statements[i], e);
		if (err != PL_OK) {
			sim_errmsg_path(e, "Statement[%zu]", i);
			return err;
		}
	}
	return PL_OK;
}

pl_err sim_policy_compile(const char *json, size_t len, sim_policy **out, pl_errmsg *e)
{
	size_t chars = count_chars(json, len);
	if (chars > SIM_POLICY_MAX_CHARS)
		return pl_errmsg_set(e, PL_ERR_LIMIT,
				     "policy document has %zu characters excluding whitespace; "
				     "AWS IoT allows at most %d",
				     chars, SIM_POLICY_MAX_CHARS);

	json_error_t jerr;
	json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return pl_errmsg_set(e, PL_ERR_PARSE,
				     "policy document is not valid JSON: line %d column %d: %s",
				     jerr.line, jerr.column, jerr.text);

	pl_err err;
	sim_policy *p = NULL;
	if (!json_is_object(root)) {
		err = pl_errmsg_set(e, PL_ERR_PARSE, "policy document must be a JSON object");
		goto free_root;
	}
	err = check_top_level(root, e);
	if (err != PL_OK)
		goto free_root;

	p = calloc(1, sizeof(*p));
	if (!p) {
		err = pl_errmsg_set(e, PL_ERR_NOMEM, "policy: out of memory");
		goto free_root;
	}
	atomic_init(&p->refs, 1);
	err = parse_statements(root, p, e);
	if (err != PL_OK) {
		sim_policy_free(p);
		goto free_root;
	}
	*out = p;

free_root:
	json_decref(root);
	return err;
}
