/*
 * Policy variables and IAM wildcard patterns: parsing ${...} references,
 * splitting resources and condition values into tokens once, and matching
 * request strings against them without building substituted copies.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "simulator/policy_internal.h"

/* Returns whether text[0..len) starts with prefix, ignoring ASCII case. */
static int has_prefix(const char *text, size_t len, const char *prefix)
{
	size_t plen = strlen(prefix);
	return len >= plen && strncasecmp(text, prefix, plen) == 0;
}

static int equals(const char *text, size_t len, const char *word)
{
	return strlen(word) == len && strncasecmp(text, word, len) == 0;
}

/* Parses "Subject.CommonName", "Issuer.OrganizationalUnit.1" or "...List". */
static void parse_cert_var(const char *name, size_t len, sim_var *v)
{
	int issuer;
	size_t skip;
	if (has_prefix(name, len, "Subject.")) {
		issuer = 0;
		skip = strlen("Subject.");
	} else if (has_prefix(name, len, "Issuer.")) {
		issuer = 1;
		skip = strlen("Issuer.");
	} else {
		return;
	}
	name += skip;
	len -= skip;

	const char *dot = memchr(name, '.', len);
	size_t field_len = dot ? (size_t)(dot - name) : len;
	int field = sim_cert_field_lookup(name, field_len);
	if (field < 0)
		return;

	int index = 0;
	if (dot) {
		const char *suffix = dot + 1;
		size_t suffix_len = len - field_len - 1;
		if (equals(suffix, suffix_len, "List")) {
			index = SIM_CERT_INDEX_LIST;
		} else {
			if (suffix_len == 0 || suffix_len > 4)
				return;
			for (size_t i = 0; i < suffix_len; i++) {
				if (suffix[i] < '0' || suffix[i] > '9')
					return;
				index = index * 10 + (suffix[i] - '0');
			}
		}
	}
	v->kind = SIM_VAR_CERT;
	v->issuer = issuer;
	v->field = (sim_cert_field)field;
	v->index = index;
}

/* Parses the name after "iot:Connection.Thing."; returns PL_ERR_NOMEM only. */
static pl_err parse_thing_var(const char *name, size_t len, sim_var *v)
{
	if (equals(name, len, "ThingName")) {
		v->kind = SIM_VAR_THING_NAME;
	} else if (equals(name, len, "ThingTypeName")) {
		v->kind = SIM_VAR_THING_TYPE;
	} else if (equals(name, len, "IsAttached")) {
		v->kind = SIM_VAR_THING_ATTACHED;
	} else if (has_prefix(name, len, "Attributes[") && len > strlen("Attributes[]") &&
		   name[len - 1] == ']') {
		size_t skip = strlen("Attributes[");
		v->attribute = strndup(name + skip, len - skip - 1);
		if (!v->attribute)
			return PL_ERR_NOMEM;
		v->kind = SIM_VAR_THING_ATTRIBUTE;
	}
	return PL_OK;
}

/*
 * NOTE: iot:ConnectAttributes, iot:LastWillTopic and the certificate
 * variables outside Subject and Issuer (serial number, validity,
 * subject alternative names) parse as SIM_VAR_UNKNOWN: they never
 * resolve, so conditions on them see an absent key.
 */
pl_err sim_var_parse(const char *name, size_t len, sim_var *out, pl_errmsg *e)
{
	memset(out, 0, sizeof(*out));
	out->kind = SIM_VAR_UNKNOWN;
	out->name = strndup(name, len);
	if (!out->name)
		return pl_errmsg_set(e, PL_ERR_NOMEM, "policy variable: out of memory");

	if (equals(name, len, "iot:ClientId")) {
		out->kind = SIM_VAR_CLIENT_ID;
	} else if (equals(name, len, "aws:SourceIp")) {
		out->kind = SIM_VAR_SOURCE_IP;
	} else if (has_prefix(name, len, "iot:Connection.Thing.")) {
		size_t skip = strlen("iot:Connection.Thing.");
		if (parse_thing_var(name + skip, len - skip, out) != PL_OK) {
			sim_var_clear(out);
			return pl_errmsg_set(e, PL_ERR_NOMEM, "policy variable: out of memory");
		}
	} else if (has_prefix(name, len, "iot:Certificate.")) {
		size_t skip = strlen("iot:Certificate.");
		parse_cert_var(name + skip, len - skip, out);
	}
	return PL_OK;
}

void sim_var_clear(sim_var *v)
{
	free(v->attribute);
	free(v->name);
	v->attribute = NULL;
	v->name = NULL;
}

static const char *thing_attribute(const sim_auth_context *ctx, const char *name)
{
	for (size_t i = 0; i < ctx->thing_attribute_count; i++) {
		if (strcmp(ctx->thing_attributes[i].name, name) == 0)
			return ctx->thing_attributes[i].value;
	}
	return NULL;
}

/* Returns the value of a single-valued variable, or NULL when absent. */
static const char *single_value(const sim_var *v, const sim_auth_context *ctx)
{
	switch (v->kind) {
	case SIM_VAR_CLIENT_ID:
		return ctx->client_id;
	case SIM_VAR_SOURCE_IP:
		return ctx->source_ip;
	case SIM_VAR_THING_NAME:
		return ctx->thing_name;
	case SIM_VAR_THING_TYPE:
		return ctx->thing_name ? ctx->thing_type : NULL;
	case SIM_VAR_THING_ATTRIBUTE:
		return ctx->thing_name ? thing_attribute(ctx, v->attribute) : NULL;
	case SIM_VAR_THING_ATTACHED:
		return ctx->thing_attached ? "true" : "false";
	case SIM_VAR_CERT:
	case SIM_VAR_UNKNOWN:
		break;
	}
	return NULL;
}

size_t sim_var_values(const sim_var *v, const sim_auth_context *ctx, const char *const **values,
		      const char **scratch)
{
	if (v->kind == SIM_VAR_CERT) {
		const char *const *all;
		size_t count = sim_cert_field_values(ctx->cert, v->issuer, v->field, &all);
		if (v->index == SIM_CERT_INDEX_LIST) {
			*values = all;
			return count;
		}
		if ((size_t)v->index >= count)
			return 0;
		*values = all + v->index;
		return 1;
	}
	*scratch = single_value(v, ctx);
	*values = scratch;
	return *scratch ? 1 : 0;
}

const char *sim_var_resolve(const sim_var *v, const sim_auth_context *ctx)
{
	/* A ".List" variable has no single value to substitute. */
	if (v->kind == SIM_VAR_CERT && v->index == SIM_CERT_INDEX_LIST)
		return NULL;
	const char *const *values;
	const char *scratch;
	return sim_var_values(v, ctx, &values, &scratch) ? values[0] : NULL;
}

/* Returns the table index of the variable named name[0..len), adding it if new. */
static pl_err table_add(sim_var_table *table, const char *name, size_t len, uint32_t *index,
			pl_errmsg *e)
{
	for (size_t i = 0; i < table->count; i++) {
		if (strlen(table->vars[i].name) == len && memcmp(table->vars[i].name, name, len) == 0) {
			*index = (uint32_t)i;
			return PL_OK;
		}
	}
	if (table->count == SIM_POLICY_MAX_VARS)
		return pl_errmsg_set(e, PL_ERR_LIMIT,
				     "more than %d distinct policy variables in one statement",
				     SIM_POLICY_MAX_VARS);
	pl_err err = sim_var_parse(name, len, &table->vars[table->count], e);
	if (err != PL_OK)
		return err;
	*index = (uint32_t)table->count++;
	return PL_OK;
}

/* Appends a literal character, extending the previous literal token. */
static void push_literal(sim_pattern *p, size_t *text_len, char c)
{
	sim_token *last = p->count ? &p->tokens[p->count - 1] : NULL;
	if (!last || last->kind != SIM_TOKEN_LITERAL) {
		last = &p->tokens[p->count++];
		last->kind = SIM_TOKEN_LITERAL;
		last->off = (uint32_t)*text_len;
		last->len = 0;
	}
	p->text[(*text_len)++] = c;
	last->len++;
}

static void push_token(sim_pattern *p, sim_token_kind kind, uint32_t var)
{
	/* Consecutive stars match the same strings as one. */
	if (kind == SIM_TOKEN_STAR && p->count && p->tokens[p->count - 1].kind == SIM_TOKEN_STAR)
		return;
	sim_token *t = &p->tokens[p->count++];
	t->kind = kind;
	t->off = 0;
	t->len = 0;
	t->var = var;
}

/* Handles "${...}" at src[i]; returns the index after the closing brace. */
static pl_err compile_reference(const char *src, size_t i, sim_var_table *table, sim_pattern *p,
				size_t *text_len, size_t *next, pl_errmsg *e)
{
	const char *close = strchr(src + i + 2, '}');
	if (!close)
		return pl_errmsg_set(e, PL_ERR_PARSE,
				     "unterminated policy variable at character %zu of \"%s\"", i + 1,
				     src);
	const char *name = src + i + 2;
	size_t len = (size_t)(close - name);
	*next = (size_t)(close - src) + 1;

	if (len == 0)
		return pl_errmsg_set(e, PL_ERR_PARSE, "empty policy variable \"${}\" in \"%s\"", src);
	if (len == 1 && (name[0] == '*' || name[0] == '?' || name[0] == '$')) {
		push_literal(p, text_len, name[0]);
		return PL_OK;
	}
	uint32_t index = 0;
	pl_err err = table_add(table, name, len, &index, e);
	if (err != PL_OK)
		return err;
	push_token(p, SIM_TOKEN_VAR, index);
	return PL_OK;
}

pl_err sim_pattern_compile(const char *src, int wildcards, sim_var_table *table,
			   sim_pattern *out, pl_errmsg *e)
{
	size_t n = strlen(src);
	memset(out, 0, sizeof(*out));
	out->source = strdup(src);
	out->text = malloc(n + 1);
	out->tokens = calloc(n + 1, sizeof(*out->tokens));
	if (!out->source || !out->text || !out->tokens) {
		sim_pattern_clear(out);
		return pl_errmsg_set(e, PL_ERR_NOMEM, "pattern: out of memory");
	}

	size_t text_len = 0;
	size_t i = 0;
	while (i < n) {
		char c = src[i];
		if (c == '$' && src[i + 1] == '{') {
			pl_err err = compile_reference(src, i, table, out, &text_len, &i, e);
			if (err != PL_OK) {
				sim_pattern_clear(out);
				return err;
			}
			continue;
		}
		if (wildcards && c == '*')
			push_token(out, SIM_TOKEN_STAR, 0);
		else if (wildcards && c == '?')
			push_token(out, SIM_TOKEN_QMARK, 0);
		else
			push_literal(out, &text_len, c);
		i++;
	}
	out->text[text_len] = '\0';
	return PL_OK;
}

void sim_pattern_clear(sim_pattern *p)
{
	free(p->tokens);
	free(p->text);
	free(p->source);
	memset(p, 0, sizeof(*p));
}

/* Length of the UTF-8 sequence starting at s[i], never past n. */
static size_t char_len(const char *s, size_t i, size_t n)
{
	size_t len = 1;
	while (i + len < n && ((unsigned char)s[i + len] & 0xC0) == 0x80)
		len++;
	return len;
}

static int same_char(char a, char b, int ignore_case)
{
	if (a == b)
		return 1;
	if (!ignore_case)
		return 0;
	if (a >= 'A' && a <= 'Z')
		a = (char)(a - 'A' + 'a');
	if (b >= 'A' && b <= 'Z')
		b = (char)(b - 'A' + 'a');
	return a == b;
}

/*
 * Greedy glob matching with one backtrack point, the last star seen: on a
 * mismatch the star absorbs one more character. This is exact for patterns
 * made of '*', '?' and literals, and runs in O(pattern * subject) at worst.
 */
int sim_pattern_match(const sim_pattern *p, const char *const *vals, const char *s, size_t n,
		      int ignore_case)
{
	size_t ti = 0, off = 0, si = 0;
	size_t star_ti = SIZE_MAX, star_si = 0;
	size_t var_ti = SIZE_MAX, var_len = 0; /* length of the variable token at var_ti */

	for (;;) {
		if (ti < p->count) {
			const sim_token *t = &p->tokens[ti];
			if (t->kind == SIM_TOKEN_STAR) {
				ti++;
				off = 0;
				star_ti = ti;
				star_si = si;
				continue;
			}
			if (t->kind == SIM_TOKEN_QMARK) {
				if (si < n) {
					si += char_len(s, si, n);
					ti++;
					continue;
				}
			} else {
				const char *lit = p->text + t->off;
				size_t len = t->len;
				if (t->kind == SIM_TOKEN_VAR) {
					lit = vals[t->var];
					if (var_ti != ti) {
						var_ti = ti;
						var_len = strlen(lit);
					}
					len = var_len;
				}
				if (off == len) {
					ti++;
					off = 0;
					continue;
				}
				if (si < n && same_char(lit[off], s[si], ignore_case)) {
					off++;
					si++;
					continue;
				}
			}
		} else if (si == n) {
			return 1;
		}

		if (star_ti == SIZE_MAX || star_si >= n)
			return 0;
		star_si += char_len(s, star_si, n);
		ti = star_ti;
		off = 0;
		si = star_si;
	}
}

static void append(char *buf, size_t size, size_t *len, const char *text, size_t n)
{
	if (*len + 1 >= size)
		return;
	size_t room = size - 1 - *len;
	if (n > room)
		n = room;
	memcpy(buf + *len, text, n);
	*len += n;
	buf[*len] = '\0';
}

size_t sim_pattern_render(const sim_pattern *p, const sim_var_table *table,
			  const char *const *vals, char *buf, size_t size)
{
	size_t len = 0;
	if (size)
		buf[0] = '\0';
	for (size_t i = 0; i < p->count; i++) {
		const sim_token *t = &p->tokens[i];
		switch (t->kind) {
		case SIM_TOKEN_STAR:
			append(buf, size, &len, "*", 1);
			break;
		case SIM_TOKEN_QMARK:
			append(buf, size, &len, "?", 1);
			break;
		case SIM_TOKEN_LITERAL:
			append(buf, size, &len, p->text + t->off, t->len);
			break;
		case SIM_TOKEN_VAR:
			if (vals && vals[t->var]) {
				append(buf, size, &len, vals[t->var], strlen(vals[t->var]));
			} else {
				const char *name = table->vars[t->var].name;
				append(buf, size, &len, "${", 2);
				append(buf, size, &len, name, strlen(name));
				append(buf, size, &len, "}", 1);
			}
			break;
		}
	}
	return len;
}
