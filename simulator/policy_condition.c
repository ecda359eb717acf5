/*
 * The Condition block of a policy statement: operator parsing, value
 * compilation and evaluation with IAM's rules for absent and multi-valued
 * keys.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "simulator/policy_internal.h"

typedef struct op_info {
	const char *name;
	sim_cond_op op;
	int negate;
	int ignore_case;
} op_info;

static const op_info supported_ops[] = {
	{ "StringEquals", SIM_COND_STRING_EQUALS, 0, 0 },
	{ "StringNotEquals", SIM_COND_STRING_EQUALS, 1, 0 },
	{ "StringEqualsIgnoreCase", SIM_COND_STRING_EQUALS, 0, 1 },
	{ "StringNotEqualsIgnoreCase", SIM_COND_STRING_EQUALS, 1, 1 },
	{ "StringLike", SIM_COND_STRING_LIKE, 0, 0 },
	{ "StringNotLike", SIM_COND_STRING_LIKE, 1, 0 },
	{ "Bool", SIM_COND_BOOL, 0, 1 },
	{ "Null", SIM_COND_NULL, 0, 0 },
	{ "IpAddress", SIM_COND_IP_ADDRESS, 0, 0 },
	{ "NotIpAddress", SIM_COND_IP_ADDRESS, 1, 0 },
};

/* IAM operators this engine does not evaluate, listed so that the error names them. */
static const char *const unsupported_ops[] = {
	"NumericEquals", "NumericNotEquals", "NumericLessThan", "NumericLessThanEquals",
	"NumericGreaterThan", "NumericGreaterThanEquals", "DateEquals", "DateNotEquals",
	"DateLessThan", "DateLessThanEquals", "DateGreaterThan", "DateGreaterThanEquals",
	"BinaryEquals", "ArnEquals", "ArnNotEquals", "ArnLike", "ArnNotLike",
};

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

static int has_suffix(const char *text, size_t len, const char *suffix)
{
	size_t slen = strlen(suffix);
	return len >= slen && memcmp(text + len - slen, suffix, slen) == 0;
}

/* Splits "ForAnyValue:StringLikeIfExists" into its parts; operator names are case-sensitive. */
static pl_err parse_operator(const char *name, sim_condition *c, pl_errmsg *e)
{
	const char *base = name;
	if (strncmp(base, "ForAnyValue:", 12) == 0) {
		c->set = SIM_SET_ANY;
		base += 12;
	} else if (strncmp(base, "ForAllValues:", 13) == 0) {
		c->set = SIM_SET_ALL;
		base += 13;
	}
	size_t len = strlen(base);
	if (has_suffix(base, len, "IfExists")) {
		c->if_exists = 1;
		len -= strlen("IfExists");
	}

	for (size_t i = 0; i < COUNT_OF(supported_ops); i++) {
		const op_info *op = &supported_ops[i];
		if (strlen(op->name) != len || memcmp(op->name, base, len) != 0)
			continue;
		if (op->op == SIM_COND_NULL && (c->set != SIM_SET_NONE || c->if_exists))
			return pl_errmsg_set(e, PL_ERR_PARSE,
					     "condition operator %s: Null takes no set prefix or IfExists",
					     name);
		c->op = op->op;
		c->negate = op->negate;
		c->ignore_case = op->ignore_case;
		return PL_OK;
	}
	for (size_t i = 0; i < COUNT_OF(unsupported_ops); i++) {
		if (strlen(unsupported_ops[i]) == len && memcmp(unsupported_ops[i], base, len) == 0)
			return pl_errmsg_set(e, PL_ERR_UNSUPPORTED,
					     "condition operator %s is valid IAM but not supported by "
					     "this simulator (supported: String*, Bool, Null, IpAddress, "
					     "NotIpAddress)",
					     name);
	}
	return pl_errmsg_set(e, PL_ERR_PARSE,
			     "unknown condition operator \"%s\" (operator names are case-sensitive)",
			     name);
}

/* Parses "192.0.2.0/24", "2001:db8::/32" or a single address. */
static pl_err parse_cidr(const char *text, sim_cidr *out, pl_errmsg *e)
{
	char addr[64];
	const char *slash = strchr(text, '/');
	size_t addr_len = slash ? (size_t)(slash - text) : strlen(text);
	if (addr_len >= sizeof(addr))
		goto invalid;
	memcpy(addr, text, addr_len);
	addr[addr_len] = '\0';

	unsigned max;
	if (inet_pton(AF_INET, addr, out->addr) == 1) {
		out->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, addr, out->addr) == 1) {
		out->family = AF_INET6;
		max = 128;
	} else {
		goto invalid;
	}

	out->prefix = max;
	if (slash) {
		const char *digits = slash + 1;
		size_t n = strlen(digits);
		if (n == 0 || n > 3 || strspn(digits, "0123456789") != n)
			goto invalid;
		unsigned prefix = 0;
		for (size_t i = 0; i < n; i++)
			prefix = prefix * 10 + (unsigned)(digits[i] - '0');
		if (prefix > max)
			goto invalid;
		out->prefix = prefix;
	}
	return PL_OK;

invalid:
	return pl_errmsg_set(e, PL_ERR_PARSE, "\"%s\" is not an IP address or CIDR block", text);
}

static int cidr_contains(const sim_cidr *c, int family, const unsigned char *addr)
{
	if (c->family != family)
		return 0;
	unsigned full = c->prefix / 8;
	unsigned rest = c->prefix % 8;
	if (memcmp(c->addr, addr, full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	unsigned char mask = (unsigned char)(0xFF << (8 - rest));
	return (c->addr[full] & mask) == (addr[full] & mask);
}

/* Converts one JSON condition value to text: strings, booleans and integers. */
static pl_err value_text(json_t *v, char *buf, size_t size, const char **out, pl_errmsg *e)
{
	if (json_is_string(v)) {
		*out = json_string_value(v);
	} else if (json_is_boolean(v)) {
		*out = json_is_true(v) ? "true" : "false";
	} else if (json_is_integer(v)) {
		snprintf(buf, size, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		*out = buf;
	} else {
		return pl_errmsg_set(e, PL_ERR_PARSE, "condition value must be a string or a list of strings");
	}
	return PL_OK;
}

static pl_err compile_value(sim_condition *c, size_t i, const char *text, sim_var_table *table,
			    pl_errmsg *e)
{
	if (c->op == SIM_COND_IP_ADDRESS)
		return parse_cidr(text, &c->cidrs[i], e);
	if ((c->op == SIM_COND_BOOL || c->op == SIM_COND_NULL) && strcasecmp(text, "true") != 0 &&
	    strcasecmp(text, "false") != 0)
		return pl_errmsg_set(e, PL_ERR_PARSE, "value \"%s\" is not true or false", text);
	if (c->op == SIM_COND_NULL) {
		c->null_expect_absent = strcasecmp(text, "true") == 0;
		return PL_OK;
	}
	int wildcards = c->op == SIM_COND_STRING_LIKE;
	return sim_pattern_compile(text, wildcards, table, &c->values[i], e);
}

/* Compiles the value (a scalar or a non-empty list) given for one key. */
static pl_err compile_values(sim_condition *c, json_t *json, sim_var_table *table, pl_errmsg *e)
{
	size_t count = json_is_array(json) ? json_array_size(json) : 1;
	if (count == 0)
		return pl_errmsg_set(e, PL_ERR_PARSE, "empty list of condition values");
	if (c->op == SIM_COND_NULL && count != 1)
		return pl_errmsg_set(e, PL_ERR_PARSE, "Null takes one value, true or false");

	if (c->op == SIM_COND_IP_ADDRESS)
		c->cidrs = calloc(count, sizeof(*c->cidrs));
	else
		c->values = calloc(count, sizeof(*c->values));
	if (!c->cidrs && !c->values)
		return pl_errmsg_set(e, PL_ERR_NOMEM, "condition: out of memory");

	for (size_t i = 0; i < count; i++) {
		json_t *item = json_is_array(json) ? json_array_get(json, i) : json;
		char number[32];
		const char *text = NULL;
		pl_err err = value_text(item, number, sizeof(number), &text, e);
		if (err == PL_OK)
			err = compile_value(c, i, text, table, e);
		if (err != PL_OK)
			return err;
		c->value_count = i + 1;
	}
	return PL_OK;
}

static void condition_clear(sim_condition *c)
{
	if (c->values) {
		for (size_t i = 0; i < c->value_count; i++)
			sim_pattern_clear(&c->values[i]);
	}
	free(c->values);
	free(c->cidrs);
	sim_var_clear(&c->key);
}

static pl_err compile_condition(const char *op_name, const char *key, json_t *values,
				sim_condition *c, sim_var_table *table, pl_errmsg *e)
{
	pl_err err = parse_operator(op_name, c, e);
	if (err == PL_OK)
		err = sim_var_parse(key, strlen(key), &c->key, e);
	if (err == PL_OK)
		err = compile_values(c, values, table, e);
	if (err != PL_OK)
		sim_errmsg_path(e, "%s.%s", op_name, key);
	return err;
}

pl_err sim_conditions_compile(json_t *cond, sim_statement *s, sim_var_table *table, pl_errmsg *e)
{
	if (!json_is_object(cond))
		return pl_errmsg_set(e, PL_ERR_PARSE, "must be an object of operators");

	size_t total = 0;
	const char *op_name;
	json_t *keys;
	json_object_foreach(cond, op_name, keys) {
		if (!json_is_object(keys) || json_object_size(keys) == 0)
			return pl_errmsg_set(e, PL_ERR_PARSE,
					     "%s: must be a non-empty object of condition keys", op_name);
		total += json_object_size(keys);
	}
	if (total == 0)
		return PL_OK;
	s->conditions = calloc(total, sizeof(*s->conditions));
	if (!s->conditions)
		return pl_errmsg_set(e, PL_ERR_NOMEM, "condition: out of memory");

	json_object_foreach(cond, op_name, keys) {
		const char *key;
		json_t *values;
		json_object_foreach(keys, key, values) {
			sim_condition *c = &s->conditions[s->condition_count++];
			pl_err err = compile_condition(op_name, key, values, c, table, e);
			if (err != PL_OK)
				return err;
		}
	}
	return PL_OK;
}

void sim_statement_clear(sim_statement *s)
{
	for (size_t i = 0; i < s->resource_count; i++)
		sim_pattern_clear(&s->resources[i]);
	free(s->resources);
	for (size_t i = 0; i < s->condition_count; i++)
		condition_clear(&s->conditions[i]);
	free(s->conditions);
	if (s->vars) {
		for (size_t i = 0; i < s->vars->count; i++)
			sim_var_clear(&s->vars->vars[i]);
	}
	free(s->vars);
	free(s->sid);
	memset(s, 0, sizeof(*s));
}

/*
 * Parses a client address into addr and returns its family, or -1. An
 * IPv4-mapped IPv6 address ("::ffff:192.0.2.1", as a dual-stack listener
 * reports IPv4 clients) becomes the IPv4 address the client really has.
 */
static int parse_address(const char *text, unsigned char *addr)
{
	if (!strchr(text, ':'))
		return inet_pton(AF_INET, text, addr) == 1 ? AF_INET : -1;
	struct in6_addr v6;
	if (inet_pton(AF_INET6, text, &v6) != 1)
		return -1;
	if (IN6_IS_ADDR_V4MAPPED(&v6)) {
		memcpy(addr, v6.s6_addr + 12, 4);
		return AF_INET;
	}
	memcpy(addr, v6.s6_addr, 16);
	return AF_INET6;
}

/* Returns whether one value of the key matches any of the condition's values. */
static int any_value_matches(const sim_condition *c, const char *value, const char *const *vals)
{
	if (c->op == SIM_COND_IP_ADDRESS) {
		unsigned char addr[16];
		int family = parse_address(value, addr);
		if (family < 0)
			return 0;
		for (size_t i = 0; i < c->value_count; i++) {
			if (cidr_contains(&c->cidrs[i], family, addr))
				return 1;
		}
		return 0;
	}
	size_t len = strlen(value);
	for (size_t i = 0; i < c->value_count; i++) {
		if (sim_pattern_match(&c->values[i], vals, value, len, c->ignore_case))
			return 1;
	}
	return 0;
}

/*
 * IAM rules: an absent key makes a condition false, except for negated
 * operators, ForAllValues and IfExists, which hold. A multi-valued key
 * without a set prefix behaves as ForAnyValue for a positive operator and
 * as "no value matches" for a negated one.
 */
static int condition_holds(const sim_condition *c, const char *const *vals,
			   const sim_auth_context *ctx)
{
	const char *const *key_values;
	const char *scratch;
	size_t count = sim_var_values(&c->key, ctx, &key_values, &scratch);

	if (c->op == SIM_COND_NULL)
		return c->null_expect_absent ? count == 0 : count > 0;
	if (count == 0)
		return c->if_exists || c->set == SIM_SET_ALL || (c->set == SIM_SET_NONE && c->negate);

	int need_all = c->set == SIM_SET_ALL || (c->set == SIM_SET_NONE && c->negate);
	for (size_t i = 0; i < count; i++) {
		int holds = any_value_matches(c, key_values[i], vals) != c->negate;
		if (holds && !need_all)
			return 1;
		if (!holds && need_all)
			return 0;
	}
	return need_all;
}

int sim_conditions_hold(const sim_statement *s, const char *const *vals,
			const sim_auth_context *ctx)
{
	for (size_t i = 0; i < s->condition_count; i++) {
		if (!condition_holds(&s->conditions[i], vals, ctx))
			return 0;
	}
	return 1;
}
