/*
 * "expect": a list of strings such as "reconnect.p99 < 30s", checked after
 * the run. Each string is parsed with results/expect.h and its group names
 * are checked against the profile's groups. An error points at the column
 * inside the string where the problem starts.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "profiles/internal.h"
#include "results/expect.h"

/* Operands that are not group names. */
static const char *const reserved_operands[] = { "all", "throttled", "errors", NULL };

/* Line and column of byte offset in the string of node (quotes and escapes aside). */
static ptree offset_node(const ptree *node, size_t offset)
{
	ptree at = *node;

	if (node->origin == NULL)
		at.column = node->column + (unsigned)offset + (node->plain ? 0 : 1);
	return at;
}

static int is_known_group(const profile *p, const char *name, size_t len)
{
	for (size_t i = 0; reserved_operands[i] != NULL; i++) {
		if (strlen(reserved_operands[i]) == len && strncmp(reserved_operands[i], name, len) == 0)
			return 1;
	}
	for (size_t i = 0; i < p->group_count; i++) {
		if (strlen(p->groups[i].name) == len && strncmp(p->groups[i].name, name, len) == 0)
			return 1;
	}
	return 0;
}

static size_t name_length(const char *s)
{
	size_t n = 0;

	while (isalnum((unsigned char)s[n]) || s[n] == '_' || s[n] == '-')
		n++;
	return n;
}

static void check_group_at(loader *l, const ptree *node, const char *text, size_t offset)
{
	const profile *p = &l->impl->pub;
	size_t len = name_length(text + offset);
	ptree at = offset_node(node, offset);

	if (len == 0 || is_known_group(p, text + offset, len))
		return;
	loader_error(l, &at,
		     "expect: unknown group '%.*s' in '%s': expected one of the group names or all",
		     (int)len, text + offset, text);
}

/* Checks the group names an expectation refers to: "G.metric" or "compare(G1, G2).metric". */
static void check_groups_named(loader *l, const ptree *node, const char *text)
{
	size_t i = 0;

	while (text[i] == ' ' || text[i] == '\t')
		i++;
	if (strncmp(text + i, "compare(", 8) != 0) {
		check_group_at(l, node, text, i);
		return;
	}
	i += 8;
	while (text[i] == ' ')
		i++;
	check_group_at(l, node, text, i);
	i += name_length(text + i);
	while (text[i] == ' ' || text[i] == ',')
		i++;
	check_group_at(l, node, text, i);
}

/* Parses x->text with the results module's grammar; errors point at the offending column. */
static int parse_text(loader *l, const ptree *node, profile_expectation *x)
{
	size_t column = 0;
	pl_errmsg e = { "" };
	pl_err rc = expect_parse(&x->expr, x->text, &column, &e);
	ptree at;

	if (rc == PL_OK)
		return 1;
	if (rc == PL_ERR_NOMEM) {
		l->oom = 1;
		return 0;
	}
	at = offset_node(node, column);
	loader_error(l, &at, "expect: invalid expectation '%s': %s", x->text, e.msg);
	return 0;
}

static void decode_one(loader *l, const ptree *node, profile_expectation *x)
{
	x->pos.line = node->line;
	x->pos.column = node->column;
	if (node->type != PTREE_SCALAR) {
		loader_error(l, node, "expect: expected a string such as \"reconnect.p99 < 30s\"");
		return;
	}
	x->text = strdup(node->value);
	if (x->text == NULL) {
		l->oom = 1;
		return;
	}
	/* With broken groups every name would look unknown, so only the syntax is checked. */
	if (parse_text(l, node, x) && l->groups_valid)
		check_groups_named(l, node, x->text);
}

void expectations_decode(loader *l, const ptree *expect)
{
	profile *p = &l->impl->pub;

	if (expect == NULL || ptree_is_null(expect))
		return;
	if (expect->type != PTREE_SEQ) {
		loader_error(l, expect, "expect: expected a list of strings");
		return;
	}
	if (expect->count == 0)
		return;
	p->expect = calloc(expect->count, sizeof(*p->expect));
	if (p->expect == NULL) {
		l->oom = 1;
		return;
	}
	p->expect_count = expect->count;
	for (size_t i = 0; i < expect->count; i++)
		decode_one(l, expect->items[i], &p->expect[i]);
}

void expectation_free_parsed(profile_expectation *x)
{
	expect_free(x->expr);
	x->expr = NULL;
}
