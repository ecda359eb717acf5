/*
 * Evaluation of compiled AWS IoT policies: default deny, an explicit Deny
 * in any policy wins, otherwise an Allow in any policy allows.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simulator/policy_internal.h"

static const struct {
	const char *name;
	const char *resource_type; /* NULL: the resource is "*" */
} action_table[SIM_ACTION__COUNT] = {
	[SIM_ACTION_CONNECT] = { "iot:Connect", "client" },
	[SIM_ACTION_PUBLISH] = { "iot:Publish", "topic" },
	[SIM_ACTION_RETAIN_PUBLISH] = { "iot:RetainPublish", "topic" },
	[SIM_ACTION_SUBSCRIBE] = { "iot:Subscribe", "topicfilter" },
	[SIM_ACTION_RECEIVE] = { "iot:Receive", "topic" },
	[SIM_ACTION_GET_RETAINED_MESSAGE] = { "iot:GetRetainedMessage", "topic" },
	[SIM_ACTION_LIST_RETAINED_MESSAGES] = { "iot:ListRetainedMessages", NULL },
	[SIM_ACTION_DELETE_CONNECTION] = { "iot:DeleteConnection", "client" },
};

const char *sim_action_name(sim_action action)
{
	return (unsigned)action < SIM_ACTION__COUNT ? action_table[action].name : "unknown";
}

const char *sim_decision_name(sim_decision decision)
{
	switch (decision) {
	case SIM_DECISION_IMPLICIT_DENY:
		return "implicit-deny";
	case SIM_DECISION_ALLOW:
		return "allow";
	case SIM_DECISION_EXPLICIT_DENY:
		return "explicit-deny";
	}
	return "unknown";
}

/* Action names are case-insensitive in IAM, so the match folds case. */
uint32_t sim_action_mask(const char *pattern)
{
	sim_var_table table = { .count = 0 };
	sim_pattern compiled;
	uint32_t mask = 0;
	if (sim_pattern_compile(pattern, 1, &table, &compiled, NULL) != PL_OK)
		return 0;
	for (int a = 0; a < SIM_ACTION__COUNT; a++) {
		const char *name = action_table[a].name;
		if (sim_pattern_match(&compiled, NULL, name, strlen(name), 1))
			mask |= 1u << a;
	}
	sim_pattern_clear(&compiled);
	return mask;
}

sim_policy *sim_policy_retain(sim_policy *p)
{
	atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
	return p;
}

void sim_policy_free(sim_policy *p)
{
	if (!p)
		return;
	if (atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) != 1)
		return;
	for (size_t i = 0; i < p->count; i++)
		sim_statement_clear(&p->statements[i]);
	free(p->statements);
	free(p);
}

size_t sim_policy_statement_count(const sim_policy *p)
{
	return p->count;
}

/* The request's resource: "arn:aws:iot:REGION:ACCOUNT:TYPE/NAME" or "*". */
typedef struct request_arn {
	char stack[1024];
	char *text;
	size_t len;
} request_arn;

static void copy_part(char *dst, size_t *len, const char *part, size_t n)
{
	memcpy(dst + *len, part, n);
	*len += n;
}

static int request_arn_build(request_arn *arn, sim_action action, const char *name,
			     const sim_auth_context *ctx)
{
	const char *type = action_table[action].resource_type;
	arn->text = arn->stack;
	if (!type) {
		memcpy(arn->stack, "*", 2);
		arn->len = 1;
		return 0;
	}
	size_t region = strlen(ctx->region), account = strlen(ctx->account);
	size_t type_len = strlen(type), name_len = strlen(name);
	size_t need = strlen("arn:aws:iot:::/") + region + account + type_len + name_len + 1;
	if (need > sizeof(arn->stack)) {
		arn->text = malloc(need);
		if (!arn->text)
			return -1;
	}
	/* memcpy rather than snprintf: this runs on every check. */
	size_t len = 0;
	copy_part(arn->text, &len, "arn:aws:iot:", strlen("arn:aws:iot:"));
	copy_part(arn->text, &len, ctx->region, region);
	copy_part(arn->text, &len, ":", 1);
	copy_part(arn->text, &len, ctx->account, account);
	copy_part(arn->text, &len, ":", 1);
	copy_part(arn->text, &len, type, type_len);
	copy_part(arn->text, &len, "/", 1);
	copy_part(arn->text, &len, name, name_len);
	arn->text[len] = '\0';
	arn->len = len;
	return 0;
}

static void request_arn_release(request_arn *arn)
{
	if (arn->text != arn->stack)
		free(arn->text);
}

typedef enum statement_result {
	STATEMENT_APPLIES,
	STATEMENT_UNRESOLVED,   /* a variable has no value: the statement is ignored */
	STATEMENT_NO_RESOURCE,  /* Resource did not match, or NotResource did */
	STATEMENT_CONDITION,    /* a condition does not hold */
} statement_result;

static statement_result statement_check(const sim_statement *s, const request_arn *arn,
					const sim_auth_context *ctx, const char **vals)
{
	if (s->vars) {
		for (size_t i = 0; i < s->vars->count; i++) {
			vals[i] = sim_var_resolve(&s->vars->vars[i], ctx);
			if (!vals[i])
				return STATEMENT_UNRESOLVED;
		}
	}

	int matched = 0;
	for (size_t i = 0; i < s->resource_count && !matched; i++)
		matched = sim_pattern_match(&s->resources[i], vals, arn->text, arn->len, 0);
	if (matched == s->not_resource)
		return STATEMENT_NO_RESOURCE;
	if (!sim_conditions_hold(s, vals, ctx))
		return STATEMENT_CONDITION;
	return STATEMENT_APPLIES;
}

static void detail_append(sim_policy_explanation *out, const char *text)
{
	size_t len = strlen(out->detail);
	snprintf(out->detail + len, sizeof(out->detail) - len, "%s", text);
}

/* Appends "policy P statement S (Sid) Effect: resources [why]" to the explanation. */
static void explain_statement(sim_policy_explanation *out, size_t pi, size_t si,
			      const sim_statement *s, const char *const *vals,
			      statement_result result)
{
	static const char *const why[] = {
		[STATEMENT_APPLIES] = "applies",
		[STATEMENT_UNRESOLVED] = "ignored: a policy variable has no value",
		[STATEMENT_NO_RESOURCE] = "resource does not match",
		[STATEMENT_CONDITION] = "condition not met",
	};
	char line[256];
	snprintf(line, sizeof(line), "%spolicy %zu statement %zu%s%s%s %s %s",
		 out->detail[0] ? "; " : "", pi, si, s->sid ? " (" : "", s->sid ? s->sid : "",
		 s->sid ? ")" : "", s->deny ? "Deny" : "Allow",
		 s->not_resource ? "NotResource" : "Resource");
	detail_append(out, line);
	for (size_t i = 0; i < s->resource_count; i++) {
		char rendered[256];
		sim_pattern_render(&s->resources[i], s->vars, vals, rendered, sizeof(rendered));
		detail_append(out, i ? ", " : " ");
		detail_append(out, rendered);
	}
	snprintf(line, sizeof(line), ": %s", why[result]);
	detail_append(out, line);
}

static void explanation_init(sim_policy_explanation *out, const request_arn *arn)
{
	out->decision = SIM_DECISION_IMPLICIT_DENY;
	out->policy_index = -1;
	out->statement_index = -1;
	snprintf(out->resource, sizeof(out->resource), "%s", arn->text);
	out->detail[0] = '\0';
}

static void explanation_decide(sim_policy_explanation *out, sim_decision d, size_t pi,
			       size_t si)
{
	out->decision = d;
	out->policy_index = (int)pi;
	out->statement_index = (int)si;
	out->detail[0] = '\0';
}

/*
 * The one evaluation loop behind evaluate and explain. Without out, Allow
 * statements are skipped once something allowed, because only a Deny can
 * change the result then.
 */
static sim_decision decide(const sim_policy *const *set, size_t count, sim_action action,
			   const request_arn *arn, const sim_auth_context *ctx,
			   sim_policy_explanation *out)
{
	uint32_t bit = 1u << action;
	int allowed = 0;
	const char *vals[SIM_POLICY_MAX_VARS];

	for (size_t pi = 0; pi < count; pi++) {
		const sim_policy *p = set[pi];
		if (!p)
			continue;
		for (size_t si = 0; si < p->count; si++) {
			const sim_statement *s = &p->statements[si];
			if (!(s->actions & bit) || (allowed && !s->deny && !out))
				continue;
			statement_result r = statement_check(s, arn, ctx, vals);
			if (out && out->decision == SIM_DECISION_IMPLICIT_DENY)
				explain_statement(out, pi, si, s, r == STATEMENT_UNRESOLVED ? NULL : vals, r);
			if (r != STATEMENT_APPLIES)
				continue;
			if (s->deny) {
				if (out) {
					explanation_decide(out, SIM_DECISION_EXPLICIT_DENY, pi, si);
					explain_statement(out, pi, si, s, vals, r);
				}
				return SIM_DECISION_EXPLICIT_DENY;
			}
			if (out && !allowed) {
				explanation_decide(out, SIM_DECISION_ALLOW, pi, si);
				explain_statement(out, pi, si, s, vals, r);
			}
			allowed = 1;
		}
	}
	return allowed ? SIM_DECISION_ALLOW : SIM_DECISION_IMPLICIT_DENY;
}

sim_decision sim_policy_evaluate(const sim_policy *const *set, size_t count, sim_action action,
				 const char *name, const sim_auth_context *ctx)
{
	assert((unsigned)action < SIM_ACTION__COUNT);
	assert(ctx);
	assert(ctx->region);
	assert(ctx->account);
	request_arn arn;
	if (request_arn_build(&arn, action, name ? name : "", ctx) != 0)
		return SIM_DECISION_IMPLICIT_DENY;
	sim_decision d = decide(set, count, action, &arn, ctx, NULL);
	request_arn_release(&arn);
	return d;
}

sim_decision sim_policy_explain(const sim_policy *const *set, size_t count, sim_action action,
				const char *name, const sim_auth_context *ctx,
				sim_policy_explanation *out)
{
	assert((unsigned)action < SIM_ACTION__COUNT);
	assert(ctx);
	assert(ctx->region);
	assert(ctx->account);
	assert(out);
	request_arn arn;
	if (request_arn_build(&arn, action, name ? name : "", ctx) != 0) {
		memset(out, 0, sizeof(*out));
		out->policy_index = -1;
		out->statement_index = -1;
		snprintf(out->detail, sizeof(out->detail), "out of memory building the resource ARN");
		return SIM_DECISION_IMPLICIT_DENY;
	}
	explanation_init(out, &arn);
	sim_decision d = decide(set, count, action, &arn, ctx, out);
	if (d == SIM_DECISION_IMPLICIT_DENY && out->detail[0] == '\0')
		snprintf(out->detail, sizeof(out->detail), "no statement covers %s",
			 sim_action_name(action));
	request_arn_release(&arn);
	return d;
}
