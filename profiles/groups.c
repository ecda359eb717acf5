/*
 * Device groups and their shares of the fleet.
 *
 * A share is a count ("120") or a percentage of fleet.devices ("37.5%",
 * up to 6 decimals). Groups without a share split what the others leave
 * equally. Percentages and equal splits rarely give whole devices, so they
 * are apportioned by the largest remainder method. Each group first gets
 * the whole part of its exact quota. The devices left over then go one at
 * a time to the groups with the largest fractional parts, the earlier group
 * first on a tie. Every device belongs to exactly one group, in profile
 * order.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/parse.h"
#include "profiles/internal.h"

/* Percentages are exact to 1e-6 %, so they are kept as integers in units of 1e-8 of the fleet. */
#define SHARE_UNITS INT64_C(100000000)
#define MAX_GROUPS 64

typedef enum share_kind { SHARE_DEFAULT = 0, SHARE_COUNT, SHARE_PERCENT } share_kind;

typedef struct share {
	share_kind kind;
	int64_t value;      /* devices for COUNT, units of 1e-8 of the fleet for PERCENT */
	int64_t quota;      /* exact quota in units of 1/scale device */
	const ptree *node;  /* the share's value, or the group's map when defaulted */
} share;

static pl_err parse_share(const char *text, int64_t devices, share *out, pl_errmsg *e)
{
	size_t len = strlen(text);
	double fraction;
	pl_err rc;

	if (len > 0 && text[len - 1] == '%') {
		rc = pl_parse_percent(text, &fraction, e);
		if (rc != PL_OK)
			return rc;
		out->kind = SHARE_PERCENT;
		out->value = llround(fraction * (double)SHARE_UNITS);
		if (fabs(fraction * (double)SHARE_UNITS - (double)out->value) > 1e-3)
			return pl_errmsg_set(e, PL_ERR_INVALID,
					     "invalid share '%s': use at most 6 decimals", text);
		return PL_OK;
	}
	rc = pl_parse_int64(text, 0, devices, &out->value, e);
	if (rc != PL_OK)
		return pl_errmsg_set(e, rc,
				     "invalid share '%s': expected a device count from 0 to %lld (fleet.devices) or a percentage such as '50%%'",
				     text, (long long)devices);
	out->kind = SHARE_COUNT;
	return PL_OK;
}

static int applies_to(const char *key, profile_strategy strategy)
{
	static const char *const reconnect_only[] = { "attempt_interval", "attempt_window",
						      "client_id_scheme" };
	static const char *const keep_only[] = { "backoff_initial", "backoff_max",
						 "backoff_reset_after" };

	for (size_t i = 0; i < 3; i++) {
		if (strcmp(key, reconnect_only[i]) == 0)
			return strategy == PROFILE_STRATEGY_RECONNECT_PER_ATTEMPT;
		if (strcmp(key, keep_only[i]) == 0)
			return strategy == PROFILE_STRATEGY_KEEP_CONNECTION;
	}
	return 1;
}

/* Rejects keys that the group's strategy ignores, so that a typo in strategy is caught. */
static void check_strategy_keys(loader *l, const profile_group *g, const ptree *map)
{
	for (size_t i = 0; i < map->count; i++) {
		if (applies_to(map->keys[i]->value, g->strategy))
			continue;
		loader_error(l, map->keys[i],
			     "groups.%s.%s: applies only to strategy %s, but this group uses %s",
			     g->name, map->keys[i]->value,
			     profile_strategy_name(g->strategy == PROFILE_STRATEGY_KEEP_CONNECTION
							   ? PROFILE_STRATEGY_RECONNECT_PER_ATTEMPT
							   : PROFILE_STRATEGY_KEEP_CONNECTION),
			     profile_strategy_name(g->strategy));
	}
}

static void decode_share(loader *l, profile_group *g, const ptree *map, share *s)
{
	const ptree *node = ptree_get(map, "share");
	pl_errmsg e;

	s->node = map;
	if (node == NULL || ptree_is_null(node))
		return;
	s->node = node;
	if (node->type != PTREE_SCALAR) {
		loader_error(l, node, "groups.%s.share: expected a count or a percentage", g->name);
		return;
	}
	if (parse_share(node->value, l->impl->pub.fleet.devices, s, &e) != PL_OK) {
		loader_error(l, node, "groups.%s.share: %s", g->name, e.msg);
		return;
	}
	g->share = strdup(node->value);
	if (g->share == NULL)
		l->oom = 1;
}

/* Names an unnamed group "group-N" (1-based). */
static pl_err set_fallback_name(loader *l, profile_group *g, size_t index)
{
	char fallback[32];

	if (g->name != NULL && g->name[0] != '\0')
		return PL_OK;
	snprintf(fallback, sizeof(fallback), "group-%zu", index + 1);
	free(g->name);
	g->name = strdup(fallback);
	if (g->name != NULL)
		return PL_OK;
	l->oom = 1;
	return PL_ERR_NOMEM;
}

static void decode_group(loader *l, size_t index, const ptree *map, share *s)
{
	profile_group *g = &l->impl->pub.groups[index];
	const ptree *name = ptree_get(map, "name");
	char path[96];

	schema_set_defaults(l, &schema_group, g);
	g->pos.line = map->line;
	g->pos.column = map->column;
	if (name != NULL && name->type == PTREE_SCALAR)
		snprintf(path, sizeof(path), "groups.%s", name->value);
	else
		snprintf(path, sizeof(path), "groups.%zu", index);
	schema_decode(l, &schema_group, path, map, g);
	if (set_fallback_name(l, g, index) != PL_OK)
		return;
	check_strategy_keys(l, g, map);
	decode_share(l, g, map, s);
}

static void check_names(loader *l, const ptree *groups)
{
	const profile *p = &l->impl->pub;

	for (size_t i = 0; i < p->group_count; i++) {
		const ptree *node = ptree_get(groups->items[i], "name");

		if (strcmp(p->groups[i].name, "all") == 0)
			loader_error(l, node, "groups.all: the name 'all' is reserved for the whole fleet in expectations");
		for (size_t j = 0; j < i; j++) {
			if (strcmp(p->groups[i].name, p->groups[j].name) == 0)
				loader_error(l, node ? node : groups->items[i],
					     "groups: duplicate group name '%s' (group names must be unique)",
					     p->groups[i].name);
		}
	}
}

/* Gives each group its count: whole quotas first, then the leftovers by largest remainder. */
static void apportion(profile *p, share *shares, int64_t scale)
{
	int64_t assigned = 0;
	int64_t left;

	for (size_t i = 0; i < p->group_count; i++) {
		p->groups[i].devices = shares[i].quota / scale;
		assigned += p->groups[i].devices;
	}
	for (left = p->fleet.devices - assigned; left > 0; left--) {
		size_t best = 0;
		int64_t best_remainder = -1;

		for (size_t i = 0; i < p->group_count; i++) {
			int64_t remainder = shares[i].quota % scale;

			if (remainder > best_remainder) {
				best = i;
				best_remainder = remainder;
			}
		}
		p->groups[best].devices++;
		shares[best].quota -= shares[best].quota % scale;
	}
	for (size_t i = 0, first = 0; i < p->group_count; i++) {
		p->groups[i].first_device = (int64_t)first;
		first += (size_t)p->groups[i].devices;
	}
}

static void report_total(loader *l, const ptree *groups, int64_t total_units, int64_t devices)
{
	double total = (double)total_units / (double)SHARE_UNITS;

	loader_error(l, groups,
		     "groups: the shares add up to %.6g devices (%.6g%% of the fleet), but fleet.devices is %lld; make them add up to exactly %lld or 100%%",
		     total, total * 100.0 / (double)devices, (long long)devices, (long long)devices);
}

/*
 * Turns shares into counts. Quotas are exact integers in units of
 * 1/(SHARE_UNITS * defaulted groups) of a device, so no rounding happens
 * before apportion.
 */
static void resolve_shares(loader *l, const ptree *groups, share *shares)
{
	profile *p = &l->impl->pub;
	int64_t devices = p->fleet.devices;
	int64_t given = 0;
	int64_t defaulted = 0;
	int64_t scale;

	for (size_t i = 0; i < p->group_count; i++) {
		if (shares[i].kind == SHARE_COUNT)
			given += shares[i].value * SHARE_UNITS;
		else if (shares[i].kind == SHARE_PERCENT)
			given += shares[i].value * devices;
		else
			defaulted++;
	}
	if (given > devices * SHARE_UNITS || (defaulted == 0 && given != devices * SHARE_UNITS)) {
		report_total(l, groups, given, devices);
		return;
	}
	scale = SHARE_UNITS * (defaulted ? defaulted : 1);
	for (size_t i = 0; i < p->group_count; i++) {
		if (shares[i].kind == SHARE_COUNT)
			shares[i].quota = shares[i].value * scale;
		else if (shares[i].kind == SHARE_PERCENT)
			shares[i].quota = shares[i].value * devices * (defaulted ? defaulted : 1);
		else
			shares[i].quota = devices * SHARE_UNITS - given;
	}
	apportion(p, shares, scale);
	for (size_t i = 0; i < p->group_count; i++) {
		if (p->groups[i].devices == 0)
			loader_error(l, shares[i].node,
				     "groups.%s: the share gives this group no devices out of %lld; raise the share or fleet.devices",
				     p->groups[i].name, (long long)devices);
	}
}

/* The default when "groups" is absent: every device keeps its connection. */
static void default_group(loader *l)
{
	profile *p = &l->impl->pub;

	p->groups = calloc(1, sizeof(*p->groups));
	if (p->groups == NULL) {
		l->oom = 1;
		return;
	}
	p->group_count = 1;
	schema_set_defaults(l, &schema_group, p->groups);
	free(p->groups[0].name);
	p->groups[0].name = strdup("default");
	p->groups[0].devices = p->fleet.devices;
	if (p->groups[0].name == NULL)
		l->oom = 1;
}

void groups_decode(loader *l, const ptree *groups)
{
	profile *p = &l->impl->pub;
	share shares[MAX_GROUPS];
	size_t errors_before = l->issues->errors;

	if (groups != NULL && groups->override_value && ptree_is_null(groups)) {
		/* schema_check_override reported it; leave the group names unchecked. */
		l->groups_valid = 0;
		return;
	}
	if (groups == NULL || ptree_is_null(groups)) {
		default_group(l);
		l->groups_valid = !l->oom;
		return;
	}
	if (groups->type != PTREE_SEQ || groups->count == 0 || groups->count > MAX_GROUPS) {
		loader_error(l, groups, "groups: expected a list of 1 to %d groups (- name: ..., share: ...)",
			     MAX_GROUPS);
		return;
	}
	p->groups = calloc(groups->count, sizeof(*p->groups));
	if (p->groups == NULL) {
		l->oom = 1;
		return;
	}
	p->group_count = groups->count;
	memset(shares, 0, sizeof(shares));
	for (size_t i = 0; i < groups->count; i++) {
		if (groups->items[i]->override_value && groups->items[i]->type == PTREE_MAP) {
			schema_set_defaults(l, &schema_group, &p->groups[i]);
			set_fallback_name(l, &p->groups[i], i);
			loader_error(l, groups->items[i],
				     "groups.%zu: a group cannot be replaced with --set; set its keys one at a time, for example --set groups.%zu.share=VALUE",
				     i, i);
			continue;
		}
		if (groups->items[i]->type != PTREE_MAP) {
			schema_set_defaults(l, &schema_group, &p->groups[i]);
			set_fallback_name(l, &p->groups[i], i);
			loader_error(l, groups->items[i], "groups.%zu: expected a map of group keys (name, share, strategy, ...)", i);
			continue;
		}
		decode_group(l, i, groups->items[i], &shares[i]);
	}
	if (l->oom)
		return;
	check_names(l, groups);
	if (l->issues->errors == errors_before)
		resolve_shares(l, groups, shares);
	l->groups_valid = l->issues->errors == errors_before;
}
