/*
 * Checks the policies against the measurement before anything connects:
 * devices must be able to connect and subscribe with the before policies,
 * and the swap must open (grant) or close (revoke) the probe's path. A
 * profile whose swap changes nothing would only ever report censored
 * devices.
 *
 * The checks evaluate the first device of every group with the simulator's
 * policy engine. Certificate and thing variables cannot be known before
 * the fleet exists, and the account of a real AWS target is unknown, so in
 * those cases the findings are warnings instead of errors.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "profiles/internal.h"
#include "simulator/policy.h"

typedef struct effect_ctx {
	loader *l;
	const ptree *node;         /* where findings are reported */
	int certain;               /* findings are errors (else warnings) */
	sim_auth_context auth;
	char device[160];
	char client_id[160];
	char probe_topic[1024];
	char trigger_topic[1024];
	const profile_group *group;
} effect_ctx;

static void report(effect_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void report(effect_ctx *c, const char *fmt, ...)
{
	char text[PL_ERRMSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (c->certain)
		loader_error(c->l, c->node, "policies: %s (group %s, client id '%s')", text,
			     c->group->name, c->client_id);
	else
		loader_warning(c->l, c->node,
			       "policies: %s (group %s, client id '%s'; unchecked variables or account, so this may be wrong)",
			       text, c->group->name, c->client_id);
}

static int allows(const effect_ctx *c, sim_policy *const *set, size_t count, sim_action action,
		  const char *name)
{
	return sim_policy_evaluate((const sim_policy *const *)set, count, action, name, &c->auth) ==
	       SIM_DECISION_ALLOW;
}

/* Whether a probe on the device's topic reaches it: published (echo only) and received. */
static int probe_path_open(const effect_ctx *c, sim_policy *const *set, size_t count)
{
	const profile *p = &c->l->impl->pub;

	if (p->probe.kind == PROFILE_PROBE_ECHO &&
	    !allows(c, set, count, SIM_ACTION_PUBLISH, c->probe_topic))
		return 0;
	return allows(c, set, count, SIM_ACTION_RECEIVE, c->probe_topic);
}

static void check_session(effect_ctx *c, sim_policy *const *set, size_t count, const char *side)
{
	const profile *p = &c->l->impl->pub;

	if (!allows(c, set, count, SIM_ACTION_CONNECT, c->client_id))
		report(c, "the %s policies do not allow iot:Connect for this client id", side);
	if (!allows(c, set, count, SIM_ACTION_SUBSCRIBE, c->probe_topic))
		report(c, "the %s policies do not allow iot:Subscribe to '%s'", side, c->probe_topic);
	if (p->swap.kind == PROFILE_SWAP_TRIGGER_TOPIC && c->trigger_topic[0] != '\0' &&
	    strcmp(side, "before") == 0 && !allows(c, set, count, SIM_ACTION_PUBLISH, c->trigger_topic))
		report(c, "the before policies do not allow iot:Publish to the trigger topic '%s'",
		       c->trigger_topic);
}

static void check_group(effect_ctx *c)
{
	loader *l = c->l;
	const profile *p = &l->impl->pub;
	int before_open;
	int after_open;

	check_session(c, l->before_compiled, p->before_count, "before");
	if (c->group->strategy == PROFILE_STRATEGY_RECONNECT_PER_ATTEMPT)
		check_session(c, l->after_compiled, p->after_count, "after");
	before_open = probe_path_open(c, l->before_compiled, p->before_count);
	after_open = probe_path_open(c, l->after_compiled, p->after_count);
	if (p->swap.direction == PROFILE_SWAP_GRANT && before_open)
		report(c, "swap.direction is grant, but the before policies already let probes on '%s' reach the device",
		       c->probe_topic);
	if (p->swap.direction == PROFILE_SWAP_GRANT && !after_open)
		report(c, "swap.direction is grant, but the after policies do not let probes on '%s' reach the device (iot:Receive%s)",
		       c->probe_topic, p->probe.kind == PROFILE_PROBE_ECHO ? " and iot:Publish" : "");
	if (p->swap.direction == PROFILE_SWAP_REVOKE && !before_open)
		report(c, "swap.direction is revoke, but the before policies do not let probes on '%s' reach the device (iot:Receive%s)",
		       c->probe_topic, p->probe.kind == PROFILE_PROBE_ECHO ? " and iot:Publish" : "");
	if (p->swap.direction == PROFILE_SWAP_REVOKE && after_open)
		report(c, "swap.direction is revoke, but the after policies still let probes on '%s' reach the device",
		       c->probe_topic);
}

/* Whether any document uses variables that need the certificate or the thing. */
static int uses_unknown_variables(const profile *p)
{
	const profile_policy *lists[2] = { p->before, p->after };
	size_t counts[2] = { p->before_count, p->after_count };

	for (size_t k = 0; k < 2; k++) {
		for (size_t i = 0; i < counts[k]; i++) {
			const char *doc = lists[k][i].document;

			if (doc != NULL && (strstr(doc, "${iot:Certificate") != NULL ||
					    strstr(doc, "${iot:Connection.Thing") != NULL))
				return 1;
		}
	}
	return 0;
}

static int all_compiled(sim_policy *const *set, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		if (set == NULL || set[i] == NULL)
			return 0;
	}
	return 1;
}

static void prepare_group(effect_ctx *c, const profile_group *g)
{
	const profile *p = &c->l->impl->pub;

	c->group = g;
	profile_device_name(p, g->first_device, c->device, sizeof(c->device));
	/* Attempts after the swap are never the first, so check a second
	 * attempt's client id. Echo devices subscribe and probe on the topic
	 * of each attempt's client id. The prober publishes to the topic of the
	 * device name, and the trigger topic is checked with the device name. */
	profile_client_id(p, g->first_device, 2, c->client_id, sizeof(c->client_id));
	profile_expand_topic(p->probe.topic, c->device,
			     p->probe.kind == PROFILE_PROBE_ECHO ? c->client_id : c->device,
			     c->probe_topic, sizeof(c->probe_topic));
	profile_expand_topic(p->swap.trigger_topic, c->device, c->device, c->trigger_topic,
			     sizeof(c->trigger_topic));
	c->auth.client_id = c->client_id;
}

void policy_effect_check(loader *l, const ptree *root)
{
	const profile *p = &l->impl->pub;
	effect_ctx c;

	if (p->before_count == 0 || p->after_count == 0 ||
	    !all_compiled(l->before_compiled, p->before_count) ||
	    !all_compiled(l->after_compiled, p->after_count))
		return;
	memset(&c, 0, sizeof(c));
	c.l = l;
	c.node = ptree_find(root, "policies");
	c.certain = p->target.kind == PROFILE_TARGET_SIMULATOR && !uses_unknown_variables(p);
	c.auth.region = p->target.kind == PROFILE_TARGET_SIMULATOR ? p->target.simulator.region
								   : p->target.aws.region;
	c.auth.account = p->target.kind == PROFILE_TARGET_SIMULATOR ? p->target.simulator.account
								    : "123456789012";
	c.auth.source_ip = "127.0.0.1";
	for (size_t i = 0; i < p->group_count; i++) {
		prepare_group(&c, &p->groups[i]);
		check_group(&c);
	}
}
