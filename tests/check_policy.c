/*
 * Unit tests for the AWS IoT policy engine (simulator/policy.h).
 *
 * Expected decisions come from AWS's documented behaviour: the AWS IoT
 * developer guide pages on policy evaluation, actions and resources,
 * publish/subscribe policy examples, wildcards and policy variables, and
 * IAM's condition operator rules. Rows that test a choice AWS does not
 * document say "engine choice" (docs/policies.md lists them).
 *
 * Policy JSON in this file is written with single quotes, which
 * compile_doc turns into double quotes, so that the tables stay readable.
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "common/error.h"
#include "simulator/policy.h"

#define ARN "arn:aws:iot:us-east-1:123456789012:"
#define DOC(statements) "{'Version':'2012-10-17','Statement':[" statements "]}"
#define STMT(effect, action, resource) \
	"{'Effect':'" effect "','Action':'" action "','Resource':'" ARN resource "'}"
#define ALLOW(action, resource) STMT("Allow", action, resource)
#define DENY(action, resource) STMT("Deny", action, resource)
#define ALLOW_IF(action, resource, condition)                                             \
	"{'Effect':'Allow','Action':'" action "','Resource':'" ARN resource "','Condition':" \
	condition "}"

#define IMPLICIT SIM_DECISION_IMPLICIT_DENY
#define ALLOWED SIM_DECISION_ALLOW
#define EXPLICIT SIM_DECISION_EXPLICIT_DENY

/* Replaces every ' by " in a copy of text. */
static char *to_json(const char *text)
{
	char *json = strdup(text);
	ck_assert_ptr_nonnull(json);
	for (char *c = json; *c; c++) {
		if (*c == '\'')
			*c = '"';
	}
	return json;
}

static sim_policy *compile_doc(const char *text)
{
	char *json = to_json(text);
	sim_policy *p = NULL;
	pl_errmsg e = { "" };
	pl_err err = sim_policy_compile(json, strlen(json), &p, &e);

	ck_assert_msg(err == PL_OK, "compile failed: %s\n  document: %s", e.msg, json);
	free(json);
	return p;
}

/* The request contexts the tables refer to. */
typedef enum ctx_kind {
	CTX_DEFAULT,  /* client dev-001 from 192.0.2.10, no thing, no certificate */
	CTX_THING,    /* client dev-001 attached to thing dev-001 of type sensor, color=blue */
	CTX_THING_NO_TYPE, /* thing dev-001 without a thing type */
	CTX_STAR,     /* client id "dev*" */
	CTX_STAR_THING, /* client id "dev*", thing dev-001 */
	CTX_PLUS,     /* client id "+" */
	CTX_QMARK,    /* client id "a?c" */
	CTX_UTF8,     /* client id "dév 1" */
	CTX_NO_IP,    /* client dev-001, no source address */
	CTX_IPV6,     /* client dev-001 from 2001:db8::5 */
	CTX_MAPPED,   /* client dev-001 from ::ffff:192.0.2.10 */
} ctx_kind;

static const sim_thing_attribute thing_attributes[] = { { "color", "blue" } };

static sim_auth_context make_ctx(ctx_kind kind)
{
	sim_auth_context ctx = {
		.region = "us-east-1",
		.account = "123456789012",
		.client_id = "dev-001",
		.source_ip = "192.0.2.10",
	};
	switch (kind) {
	case CTX_DEFAULT:
		break;
	case CTX_THING:
		ctx.thing_type = "sensor";
		/* fall through */
	case CTX_THING_NO_TYPE:
		ctx.thing_name = "dev-001";
		ctx.thing_attributes = thing_attributes;
		ctx.thing_attribute_count = 1;
		ctx.thing_attached = 1;
		break;
	case CTX_STAR:
		ctx.client_id = "dev*";
		break;
	case CTX_STAR_THING:
		ctx.client_id = "dev*";
		ctx.thing_name = "dev-001";
		break;
	case CTX_PLUS:
		ctx.client_id = "+";
		break;
	case CTX_QMARK:
		ctx.client_id = "a?c";
		break;
	case CTX_UTF8:
		ctx.client_id = "d\xc3\xa9v 1";
		break;
	case CTX_NO_IP:
		ctx.source_ip = NULL;
		break;
	case CTX_IPV6:
		ctx.source_ip = "2001:db8::5";
		break;
	case CTX_MAPPED:
		ctx.source_ip = "::ffff:192.0.2.10";
		break;
	}
	return ctx;
}

typedef struct eval_case {
	const char *policies[3]; /* documents; NULL ends the set */
	sim_action action;
	const char *name;
	ctx_kind ctx;
	sim_decision expected;
} eval_case;

static const eval_case eval_cases[] = {
	/* Everything not allowed is implicitly denied. */
	{ { DOC(ALLOW("iot:Publish", "topic/a")) }, SIM_ACTION_PUBLISH, "b", CTX_DEFAULT, IMPLICIT },
	{ { DOC(ALLOW("iot:Publish", "topic/a")) }, SIM_ACTION_PUBLISH, "a", CTX_DEFAULT, ALLOWED },
	/* An explicit Deny in any attached policy overrides every Allow. */
	{ { DOC(ALLOW("iot:*", "*")), DOC(DENY("iot:Publish", "topic/secret")) },
	  SIM_ACTION_PUBLISH, "secret", CTX_DEFAULT, EXPLICIT },
	{ { DOC(ALLOW("iot:*", "*")), DOC(DENY("iot:Publish", "topic/secret")) },
	  SIM_ACTION_PUBLISH, "open", CTX_DEFAULT, ALLOWED },
	{ { DOC(DENY("iot:Publish", "topic/secret") "," ALLOW("iot:Publish", "*")) },
	  SIM_ACTION_PUBLISH, "secret", CTX_DEFAULT, EXPLICIT },
	/* The effective permissions are the union of all attached policies. */
	{ { DOC(ALLOW("iot:Publish", "topic/a")), DOC(ALLOW("iot:Publish", "topic/b")) },
	  SIM_ACTION_PUBLISH, "b", CTX_DEFAULT, ALLOWED },
	/* A Deny for another action does not deny this one. */
	{ { DOC(ALLOW("iot:*", "*") "," DENY("iot:Publish", "topic/a")) },
	  SIM_ACTION_RECEIVE, "a", CTX_DEFAULT, ALLOWED },

	/* Subscribe is matched against topicfilter/ ARNs, a topic/ ARN never matches it. */
	{ { DOC(ALLOW("iot:Subscribe", "topic/mytopic/mysubtopic")) },
	  SIM_ACTION_SUBSCRIBE, "mytopic/mysubtopic", CTX_DEFAULT, IMPLICIT },
	{ { DOC(ALLOW("iot:Subscribe", "topicfilter/mytopic/mysubtopic")) },
	  SIM_ACTION_SUBSCRIBE, "mytopic/mysubtopic", CTX_DEFAULT, ALLOWED },
	/* Publish and Receive use topic/ ARNs, so a topicfilter/ ARN does not match. */
	{ { DOC(ALLOW("iot:Publish", "topicfilter/t")) }, SIM_ACTION_PUBLISH, "t", CTX_DEFAULT,
	  IMPLICIT },
	{ { DOC(ALLOW("iot:Receive", "topicfilter/t")) }, SIM_ACTION_RECEIVE, "t", CTX_DEFAULT,
	  IMPLICIT },
	/* Connect uses client/ ARNs named by the client id. */
	{ { DOC(ALLOW("iot:Connect", "topic/dev-001")) }, SIM_ACTION_CONNECT, "dev-001",
	  CTX_DEFAULT, IMPLICIT },
	{ { DOC(ALLOW("iot:Connect", "client/dev-001")) }, SIM_ACTION_CONNECT, "dev-001",
	  CTX_DEFAULT, ALLOWED },
	/* Subscribing without Receive: SUBACK succeeds but no delivery is authorized. */
	{ { DOC(ALLOW("iot:Subscribe", "topicfilter/t/*") "," ALLOW("iot:Publish", "topic/t/*")) },
	  SIM_ACTION_SUBSCRIBE, "t/a", CTX_DEFAULT, ALLOWED },
	{ { DOC(ALLOW("iot:Subscribe", "topicfilter/t/*") "," ALLOW("iot:Publish", "topic/t/*")) },
	  SIM_ACTION_RECEIVE, "t/a", CTX_DEFAULT, IMPLICIT },
	/* Restricting iot:* to a topic ARN also restricts Connect, which then fails. */
	{ { DOC(ALLOW("iot:*", "topic/my-topic")) }, SIM_ACTION_CONNECT, "dev-001", CTX_DEFAULT,
	  IMPLICIT },

	/* Policy '*' matches any run of characters, including '/'. */
	{ { DOC(ALLOW("iot:Publish", "topic/a/*")) }, SIM_ACTION_PUBLISH, "a/b/c", CTX_DEFAULT,
	  ALLOWED },
	{ { DOC(ALLOW("iot:Publish", "topic/a/*")) }, SIM_ACTION_PUBLISH, "b/a/c", CTX_DEFAULT,
	  IMPLICIT },
	{ { DOC(ALLOW("iot:Publish", "topic/*/status")) }, SIM_ACTION_PUBLISH, "x/y/status",
	  CTX_DEFAULT, ALLOWED },
	/* Policy '?' matches exactly one character. */
	{ { DOC(ALLOW("iot:Publish", "topic/a/?")) }, SIM_ACTION_PUBLISH, "a/b", CTX_DEFAULT,
	  ALLOWED },
	{ { DOC(ALLOW("iot:Publish", "topic/a/?")) }, SIM_ACTION_PUBLISH, "a/bc", CTX_DEFAULT,
	  IMPLICIT },
	{ { DOC(ALLOW("iot:Publish", "topic/a/?")) }, SIM_ACTION_PUBLISH, "a/", CTX_DEFAULT,
	  IMPLICIT },
	/* Engine choice: '?' is one character, so one two-byte UTF-8 character matches. */
	{ { DOC(ALLOW("iot:Publish", "topic/a/?")) }, SIM_ACTION_PUBLISH, "a/\xc3\xa9",
	  CTX_DEFAULT, ALLOWED },
	// MQTT '#' and '+' are literal in policies: topicfilter/a/* covers the filter a/#.
	{ { DOC(ALLOW("iot:Subscribe", "topicfilter/a/*")) }, SIM_ACTION_SUBSCRIBE, "a/#",
	  CTX_DEFAULT, ALLOWED },
	{ { DOC(ALLOW("iot:Subscribe", "topicfilter/a/#")) }, SIM_ACTION_SUBSCRIBE, "a/#",
	  CTX_DEFAULT, ALLOWED },
	{ { DOC(ALLOW("iot:Subscribe", "topicfilter/a/#")) }, SIM_ACTION_SUBSCRIBE, "a/b",
	  CTX_DEFAULT, IMPLICIT },
	{ { DOC(ALLOW("iot:Subscribe", "topicfilter/a/+")) }, SIM_ACTION_SUBSCRIBE, "a/b",
	  CTX_DEFAULT, IMPLICIT },
	{ { DOC(ALLOW("iot:Receive", "topic/a/#")) }, SIM_ACTION_RECEIVE, "a/b", CTX_DEFAULT,
	  IMPLICIT },
	/* Subscribe authorizes the literal filter string: my-topic/# is not my-topic/a. */
	{ { DOC(ALLOW("iot:Subscribe", "topicfilter/my-topic/a")) }, SIM_ACTION_SUBSCRIBE,
	  "my-topic/#", CTX_DEFAULT, IMPLICIT },
	{ { DOC(ALLOW("iot:Subscribe", "topicfilter/my-topic/a")) }, SIM_ACTION_SUBSCRIBE,
	  "my-topic/+/something-else", CTX_DEFAULT, IMPLICIT },
	// Allow topicfilter/a/* and Deny topicfilter/a/restricted/* still allows subscribing a/#.
	{ { DOC(ALLOW("iot:Subscribe", "topicfilter/a/*") "," DENY("iot:Subscribe",
								     "topicfilter/a/restricted/*")) },
	  SIM_ACTION_SUBSCRIBE, "a/#", CTX_DEFAULT, ALLOWED },
	{ { DOC(ALLOW("iot:Subscribe", "topicfilter/a/*") "," DENY("iot:Subscribe",
								     "topicfilter/a/restricted/*")) },
	  SIM_ACTION_SUBSCRIBE, "a/restricted/x", CTX_DEFAULT, EXPLICIT },
	// AWS's fix: Allow Receive with NotResource topic/a/restricted/*.
	{ { DOC("{'Effect':'Allow','Action':'iot:Receive','NotResource':'" ARN
		"topic/a/restricted/*'}") },
	  SIM_ACTION_RECEIVE, "a/restricted/x", CTX_DEFAULT, IMPLICIT },
	{ { DOC("{'Effect':'Allow','Action':'iot:Receive','NotResource':'" ARN
		"topic/a/restricted/*'}") },
	  SIM_ACTION_RECEIVE, "a/open", CTX_DEFAULT, ALLOWED },
	/* ${*}, ${?} and ${$} stand for literal '*', '?' and '$'. */
	{ { DOC(ALLOW("iot:Publish", "topic/a/${*}")) }, SIM_ACTION_PUBLISH, "a/*", CTX_DEFAULT,
	  ALLOWED },
	{ { DOC(ALLOW("iot:Publish", "topic/a/${*}")) }, SIM_ACTION_PUBLISH, "a/b", CTX_DEFAULT,
	  IMPLICIT },
	{ { DOC(ALLOW("iot:Publish", "topic/a/${?}")) }, SIM_ACTION_PUBLISH, "a/x", CTX_DEFAULT,
	  IMPLICIT },
	{ { DOC(ALLOW("iot:Publish", "topic/a/${?}")) }, SIM_ACTION_PUBLISH, "a/?", CTX_DEFAULT,
	  ALLOWED },
	{ { DOC(ALLOW("iot:Publish", "topic/${$}aws/things/x")) }, SIM_ACTION_PUBLISH,
	  "$aws/things/x", CTX_DEFAULT, ALLOWED },
	/* A '$' not followed by '{' is an ordinary character. */
	{ { DOC(ALLOW("iot:Publish", "topic/$aws/things/x/shadow/update")) }, SIM_ACTION_PUBLISH,
	  "$aws/things/x/shadow/update", CTX_DEFAULT, ALLOWED },
	/* Engine choice: resource matching is case-sensitive, like IAM ARNs. */
	{ { DOC(ALLOW("iot:Publish", "topic/A")) }, SIM_ACTION_PUBLISH, "a", CTX_DEFAULT, IMPLICIT },
	/* Region and account are part of the ARN; wildcards may cover them. */
	{ { DOC("{'Effect':'Allow','Action':'iot:Publish','Resource':"
		"'arn:aws:iot:us-east-1:999999999999:topic/a'}") },
	  SIM_ACTION_PUBLISH, "a", CTX_DEFAULT, IMPLICIT },
	{ { DOC("{'Effect':'Allow','Action':'iot:Publish','Resource':'arn:aws:iot:*:*:topic/a'}") },
	  SIM_ACTION_PUBLISH, "a", CTX_DEFAULT, ALLOWED },
	{ { DOC("{'Effect':'Allow','Action':'iot:Connect','Resource':'*'}") }, SIM_ACTION_CONNECT,
	  "dev-001", CTX_DEFAULT, ALLOWED },
	/* A list of resources matches when any of them matches. */
	{ { DOC("{'Effect':'Allow','Action':'iot:Publish','Resource':['" ARN "topic/a','" ARN
		"topic/b']}") },
	  SIM_ACTION_PUBLISH, "b", CTX_DEFAULT, ALLOWED },
	/* ListRetainedMessages takes resource "*" only. */
	{ { DOC("{'Effect':'Allow','Action':'iot:ListRetainedMessages','Resource':'*'}") },
	  SIM_ACTION_LIST_RETAINED_MESSAGES, NULL, CTX_DEFAULT, ALLOWED },
	{ { DOC(ALLOW("iot:ListRetainedMessages", "topic/*")) }, SIM_ACTION_LIST_RETAINED_MESSAGES,
	  NULL, CTX_DEFAULT, IMPLICIT },

	/* Action wildcards: iot:*, * and prefixes such as iot:Pub*. */
	{ { DOC(ALLOW("iot:*", "client/*")) }, SIM_ACTION_CONNECT, "dev-001", CTX_DEFAULT, ALLOWED },
	{ { DOC(ALLOW("*", "topicfilter/*")) }, SIM_ACTION_SUBSCRIBE, "a", CTX_DEFAULT, ALLOWED },
	{ { DOC(ALLOW("iot:Pub*", "topic/*")) }, SIM_ACTION_PUBLISH, "a", CTX_DEFAULT, ALLOWED },
	{ { DOC(ALLOW("iot:Pub*", "topic/*")) }, SIM_ACTION_RETAIN_PUBLISH, "a", CTX_DEFAULT,
	  IMPLICIT },
	{ { DOC(ALLOW("iot:Pub*", "topic/*")) }, SIM_ACTION_RECEIVE, "a", CTX_DEFAULT, IMPLICIT },
	{ { DOC(ALLOW("iot:*Publish", "topic/*")) }, SIM_ACTION_RETAIN_PUBLISH, "a", CTX_DEFAULT,
	  ALLOWED },
	{ { DOC(ALLOW("iot:Re?eive", "topic/*")) }, SIM_ACTION_RECEIVE, "a", CTX_DEFAULT, ALLOWED },
	/* Action names are case-insensitive, as in IAM. */
	{ { DOC(ALLOW("IOT:PUBLISH", "topic/a")) }, SIM_ACTION_PUBLISH, "a", CTX_DEFAULT, ALLOWED },
	{ { DOC(ALLOW("iot:publish", "topic/a")) }, SIM_ACTION_PUBLISH, "a", CTX_DEFAULT, ALLOWED },
	/* Actions of other kinds are accepted and grant nothing here. */
	{ { DOC(ALLOW("iot:UpdateThingShadow", "*")) }, SIM_ACTION_PUBLISH, "a", CTX_DEFAULT,
	  IMPLICIT },
	{ { DOC(ALLOW("s3:*", "*")) }, SIM_ACTION_CONNECT, "dev-001", CTX_DEFAULT, IMPLICIT },
	/* NotAction (IAM semantics; AWS IoT support unconfirmed): every action except the listed ones. */
	{ { DOC("{'Effect':'Allow','NotAction':'iot:Publish','Resource':'*'}") },
	  SIM_ACTION_SUBSCRIBE, "a", CTX_DEFAULT, ALLOWED },
	{ { DOC("{'Effect':'Allow','NotAction':'iot:Publish','Resource':'*'}") },
	  SIM_ACTION_PUBLISH, "a", CTX_DEFAULT, IMPLICIT },
	{ { DOC(ALLOW("iot:*", "*") ",{'Effect':'Deny','NotAction':['iot:Connect','iot:Receive'],"
				    "'Resource':'*'}") },
	  SIM_ACTION_CONNECT, "dev-001", CTX_DEFAULT, ALLOWED },
	{ { DOC(ALLOW("iot:*", "*") ",{'Effect':'Deny','NotAction':['iot:Connect','iot:Receive'],"
				    "'Resource':'*'}") },
	  SIM_ACTION_PUBLISH, "a", CTX_DEFAULT, EXPLICIT },

	/* ${iot:ClientId} is the client id as sent. */
	{ { DOC(ALLOW("iot:Connect", "client/${iot:ClientId}")) }, SIM_ACTION_CONNECT, "dev-001",
	  CTX_DEFAULT, ALLOWED },
	{ { DOC(ALLOW("iot:Publish", "topic/dev/${iot:ClientId}/*")) }, SIM_ACTION_PUBLISH,
	  "dev/dev-001/x", CTX_DEFAULT, ALLOWED },
	{ { DOC(ALLOW("iot:Publish", "topic/dev/${iot:ClientId}/*")) }, SIM_ACTION_PUBLISH,
	  "dev/dev-002/x", CTX_DEFAULT, IMPLICIT },
	/* A substituted value is literal: client id "dev*" does not act as a wildcard. */
	{ { DOC(ALLOW("iot:Publish", "topic/${iot:ClientId}/t")) }, SIM_ACTION_PUBLISH, "devX/t",
	  CTX_STAR, IMPLICIT },
	{ { DOC(ALLOW("iot:Publish", "topic/${iot:ClientId}/t")) }, SIM_ACTION_PUBLISH, "dev*/t",
	  CTX_STAR, ALLOWED },
	{ { DOC(ALLOW("iot:Connect", "client/${iot:ClientId}")) }, SIM_ACTION_CONNECT, "dev-999",
	  CTX_STAR, IMPLICIT },
	{ { DOC(ALLOW("iot:Publish", "topic/${iot:ClientId}")) }, SIM_ACTION_PUBLISH, "abc",
	  CTX_QMARK, IMPLICIT },
	{ { DOC(ALLOW("iot:Publish", "topic/${iot:ClientId}")) }, SIM_ACTION_PUBLISH, "a?c",
	  CTX_QMARK, ALLOWED },
	/* AWS's warning: client id "+" turns topicfilter/my/${iot:ClientId}/topic into my/+/topic. */
	{ { DOC(ALLOW("iot:Subscribe", "topicfilter/my/${iot:ClientId}/topic")) },
	  SIM_ACTION_SUBSCRIBE, "my/+/topic", CTX_PLUS, ALLOWED },
	/* The substitution is byte for byte, UTF-8 and spaces included. */
	{ { DOC(ALLOW("iot:Publish", "topic/t/${iot:ClientId}")) }, SIM_ACTION_PUBLISH,
	  "t/d\xc3\xa9v 1", CTX_UTF8, ALLOWED },
	{ { DOC(ALLOW("iot:Publish", "topic/t/${iot:ClientId}")) }, SIM_ACTION_PUBLISH, "t/dev 1",
	  CTX_UTF8, IMPLICIT },
	/* Thing variables resolve from the thing attached to the certificate. */
	{ { DOC(ALLOW("iot:Publish", "topic/${iot:Connection.Thing.ThingName}/x")) },
	  SIM_ACTION_PUBLISH, "dev-001/x", CTX_THING, ALLOWED },
	{ { DOC(ALLOW("iot:Publish", "topic/${iot:Connection.Thing.ThingTypeName}/x")) },
	  SIM_ACTION_PUBLISH, "sensor/x", CTX_THING, ALLOWED },
	{ { DOC(ALLOW("iot:Publish", "topic/${iot:Connection.Thing.Attributes[color]}/x")) },
	  SIM_ACTION_PUBLISH, "blue/x", CTX_THING, ALLOWED },
	/* Without an attached thing the variable does not resolve and access is denied. */
	{ { DOC(ALLOW("iot:Publish", "topic/${iot:Connection.Thing.ThingName}/x")) },
	  SIM_ACTION_PUBLISH, "dev-001/x", CTX_DEFAULT, IMPLICIT },
	{ { DOC(ALLOW("iot:Publish", "topic/${iot:Connection.Thing.Attributes[size]}/x")) },
	  SIM_ACTION_PUBLISH, "/x", CTX_THING, IMPLICIT },
	{ { DOC(ALLOW("iot:Publish", "topic/${iot:Connection.Thing.ThingTypeName}/x")) },
	  SIM_ACTION_PUBLISH, "/x", CTX_THING_NO_TYPE, IMPLICIT },
	/* A statement with an unresolvable variable is ignored as a whole. */
	{ { DOC("{'Effect':'Allow','Action':'iot:Publish','Resource':['" ARN "topic/a','" ARN
		"topic/${iot:Connection.Thing.ThingName}']}") },
	  SIM_ACTION_PUBLISH, "a", CTX_DEFAULT, IMPLICIT },
	/* Engine choice: an unresolvable variable makes a Deny deny nothing too. */
	{ { DOC(ALLOW("iot:Publish", "*") "," DENY("iot:Publish",
						  "topic/${iot:Connection.Thing.ThingName}/*")) },
	  SIM_ACTION_PUBLISH, "dev-001/x", CTX_DEFAULT, ALLOWED },
	{ { DOC(ALLOW("iot:Publish", "*") "," DENY("iot:Publish",
						  "topic/${iot:Connection.Thing.ThingName}/*")) },
	  SIM_ACTION_PUBLISH, "dev-001/x", CTX_THING, EXPLICIT },
	/* Engine choice: a variable name this engine does not know never resolves. */
	{ { DOC(ALLOW("iot:Publish", "topic/${iot:NoSuchVariable}")) }, SIM_ACTION_PUBLISH, "",
	  CTX_DEFAULT, IMPLICIT },
	/* Engine choice: variable names are case-insensitive, like IAM condition keys. */
	{ { DOC(ALLOW("iot:Publish", "topic/${IOT:clientid}")) }, SIM_ACTION_PUBLISH, "dev-001",
	  CTX_DEFAULT, ALLOWED },

	/* StringEquals: the key's value equals one of the listed values. */
	{ { DOC(ALLOW_IF("iot:Connect", "client/*", "{'StringEquals':{'iot:ClientId':'dev-001'}}")) },
	  SIM_ACTION_CONNECT, "dev-001", CTX_DEFAULT, ALLOWED },
	{ { DOC(ALLOW_IF("iot:Connect", "client/*", "{'StringEquals':{'iot:ClientId':'dev-001'}}")) },
	  SIM_ACTION_CONNECT, "dev*", CTX_STAR, IMPLICIT },
	{ { DOC(ALLOW_IF("iot:Connect", "client/*",
			 "{'StringEquals':{'iot:ClientId':['x','dev-001']}}")) },
	  SIM_ACTION_CONNECT, "dev-001", CTX_DEFAULT, ALLOWED },
	/* StringEquals compares literally: '*' in its value is no wildcard. */
	{ { DOC(ALLOW_IF("iot:Connect", "client/*", "{'StringEquals':{'iot:ClientId':'dev-*'}}")) },
	  SIM_ACTION_CONNECT, "dev-001", CTX_DEFAULT, IMPLICIT },
	{ { DOC(ALLOW_IF("iot:Connect", "client/*", "{'StringLike':{'iot:ClientId':'dev-*'}}")) },
	  SIM_ACTION_CONNECT, "dev-001", CTX_DEFAULT, ALLOWED },
	{ { DOC(ALLOW_IF("iot:Connect", "client/*", "{'StringNotLike':{'iot:ClientId':'dev-*'}}")) },
	  SIM_ACTION_CONNECT, "dev-001", CTX_DEFAULT, IMPLICIT },
	{ { DOC(ALLOW_IF("iot:Connect", "client/*",
			 "{'StringNotEquals':{'iot:ClientId':'dev-002'}}")) },
	  SIM_ACTION_CONNECT, "dev-001", CTX_DEFAULT, ALLOWED },
	{ { DOC(ALLOW_IF("iot:Connect", "client/*",
			 "{'StringEqualsIgnoreCase':{'iot:ClientId':'DEV-001'}}")) },
	  SIM_ACTION_CONNECT, "dev-001", CTX_DEFAULT, ALLOWED },
	{ { DOC(ALLOW_IF("iot:Connect", "client/*",
			 "{'StringNotEqualsIgnoreCase':{'iot:ClientId':'DEV-001'}}")) },
	  SIM_ACTION_CONNECT, "dev-001", CTX_DEFAULT, IMPLICIT },
	/* Condition keys are case-insensitive in IAM. */
	{ { DOC(ALLOW_IF("iot:Connect", "client/*", "{'StringEquals':{'IOT:CLIENTID':'dev-001'}}")) },
	  SIM_ACTION_CONNECT, "dev-001", CTX_DEFAULT, ALLOWED },
	/* Condition values may use variables. */
	{ { DOC(ALLOW_IF("iot:Connect", "client/*",
			 "{'StringEquals':{'iot:ClientId':'${iot:Connection.Thing.ThingName}'}}")) },
	  SIM_ACTION_CONNECT, "dev-001", CTX_THING, ALLOWED },
	{ { DOC(ALLOW_IF("iot:Connect", "client/*",
			 "{'StringEquals':{'iot:ClientId':'${iot:Connection.Thing.ThingName}'}}")) },
	  SIM_ACTION_CONNECT, "dev-001", CTX_DEFAULT, IMPLICIT },
	/* A variable in a StringLike value is literal too: "dev*" does not cover "dev-001". */
	{ { DOC(ALLOW_IF("iot:Connect", "client/*",
			 "{'StringLike':{'iot:Connection.Thing.ThingName':'${iot:ClientId}'}}")) },
	  SIM_ACTION_CONNECT, "dev*", CTX_STAR_THING, IMPLICIT },
	{ { DOC(ALLOW_IF("iot:Connect", "client/*",
			 "{'StringLike':{'iot:Connection.Thing.ThingName':'${iot:ClientId}*'}}")) },
	  SIM_ACTION_CONNECT, "dev*", CTX_STAR_THING, IMPLICIT },
	/* Engine choice: an unresolvable variable in a condition value makes a Deny inert. */
	{ { DOC(ALLOW("iot:*", "*") ",{'Effect':'Deny','Action':'iot:Connect','Resource':'*',"
				    "'Condition':{'StringNotEquals':{'iot:ClientId':"
				    "'${iot:Connection.Thing.ThingName}'}}}") },
	  SIM_ACTION_CONNECT, "dev-001", CTX_DEFAULT, ALLOWED },
	{ { DOC(ALLOW("iot:*", "*") ",{'Effect':'Deny','Action':'iot:Connect','Resource':'*',"
				    "'Condition':{'StringNotEquals':{'iot:ClientId':"
				    "'${iot:Connection.Thing.ThingName}'}}}") },
	  SIM_ACTION_CONNECT, "dev*", CTX_STAR_THING, EXPLICIT },
	/* Several operators and keys must all hold. */
	{ { DOC(ALLOW_IF("iot:Connect", "client/*",
			 "{'StringLike':{'iot:ClientId':'dev-*'},"
			 "'IpAddress':{'aws:SourceIp':'198.51.100.0/24'}}")) },
	  SIM_ACTION_CONNECT, "dev-001", CTX_DEFAULT, IMPLICIT },
	/* Bool on iot:Connection.Thing.IsAttached. */
	{ { DOC(ALLOW_IF("iot:Connect", "client/*",
			 "{'Bool':{'iot:Connection.Thing.IsAttached':'true'}}")) },
	  SIM_ACTION_CONNECT, "dev-001", CTX_THING, ALLOWED },
	{ { DOC(ALLOW_IF("iot:Connect", "client/*",
			 "{'Bool':{'iot:Connection.Thing.IsAttached':true}}")) },
	  SIM_ACTION_CONNECT, "dev-001", CTX_DEFAULT, IMPLICIT },
	/* Null: true when the key is absent from the request. */
	{ { DOC(ALLOW("iot:*", "*") ",{'Effect':'Deny','Action':'iot:Connect','Resource':'*',"
				    "'Condition':{'Null':{'iot:Connection.Thing.ThingName':'true'}}}") },
	  SIM_ACTION_CONNECT, "dev-001", CTX_DEFAULT, EXPLICIT },
	{ { DOC(ALLOW("iot:*", "*") ",{'Effect':'Deny','Action':'iot:Connect','Resource':'*',"
				    "'Condition':{'Null':{'iot:Connection.Thing.ThingName':'true'}}}") },
	  SIM_ACTION_CONNECT, "dev-001", CTX_THING, ALLOWED },
	/* IpAddress and NotIpAddress on aws:SourceIp, IPv4 and IPv6. */
	{ { DOC(ALLOW_IF("iot:Connect", "client/*", "{'IpAddress':{'aws:SourceIp':'192.0.2.0/24'}}")) },
	  SIM_ACTION_CONNECT, "dev-001", CTX_DEFAULT, ALLOWED },
	{ { DOC(ALLOW_IF("iot:Connect", "client/*", "{'IpAddress':{'aws:SourceIp':'192.0.2.8/29'}}")) },
	  SIM_ACTION_CONNECT, "dev-001", CTX_DEFAULT, ALLOWED },
	{ { DOC(ALLOW_IF("iot:Connect", "client/*", "{'IpAddress':{'aws:SourceIp':'192.0.2.0/29'}}")) },
	  SIM_ACTION_CONNECT, "dev-001", CTX_DEFAULT, IMPLICIT },
	{ { DOC(ALLOW_IF("iot:Connect", "client/*", "{'IpAddress':{'aws:SourceIp':'192.0.2.10'}}")) },
	  SIM_ACTION_CONNECT, "dev-001", CTX_DEFAULT, ALLOWED },
	{ { DOC(ALLOW_IF("iot:Connect", "client/*",
			 "{'NotIpAddress':{'aws:SourceIp':'192.0.2.0/24'}}")) },
	  SIM_ACTION_CONNECT, "dev-001", CTX_DEFAULT, IMPLICIT },
	{ { DOC(ALLOW_IF("iot:Connect", "client/*",
			 "{'IpAddress':{'aws:SourceIp':['10.0.0.0/8','2001:db8::/32']}}")) },
	  SIM_ACTION_CONNECT, "dev-001", CTX_IPV6, ALLOWED },
	{ { DOC(ALLOW_IF("iot:Connect", "client/*", "{'IpAddress':{'aws:SourceIp':'0.0.0.0/0'}}")) },
	  SIM_ACTION_CONNECT, "dev-001", CTX_IPV6, IMPLICIT },
	/* Engine choice: an IPv4-mapped IPv6 address is matched as the IPv4 address. */
	{ { DOC(ALLOW_IF("iot:Connect", "client/*", "{'IpAddress':{'aws:SourceIp':'192.0.2.0/24'}}")) },
	  SIM_ACTION_CONNECT, "dev-001", CTX_MAPPED, ALLOWED },
	/* IAM: an absent key makes a condition false, but a negated operator true. */
	{ { DOC(ALLOW_IF("iot:Connect", "client/*", "{'IpAddress':{'aws:SourceIp':'0.0.0.0/0'}}")) },
	  SIM_ACTION_CONNECT, "dev-001", CTX_NO_IP, IMPLICIT },
	{ { DOC(ALLOW_IF("iot:Connect", "client/*", "{'NotIpAddress':{'aws:SourceIp':'10.0.0.0/8'}}")) },
	  SIM_ACTION_CONNECT, "dev-001", CTX_NO_IP, ALLOWED },
	{ { DOC(ALLOW_IF("iot:Connect", "client/*",
			 "{'StringNotEquals':{'iot:Connection.Thing.ThingName':'x'}}")) },
	  SIM_ACTION_CONNECT, "dev-001", CTX_DEFAULT, ALLOWED },
	/* IAM: ...IfExists holds when the key is absent. */
	{ { DOC(ALLOW_IF("iot:Connect", "client/*",
			 "{'StringEqualsIfExists':{'iot:Connection.Thing.ThingName':'x'}}")) },
	  SIM_ACTION_CONNECT, "dev-001", CTX_DEFAULT, ALLOWED },
	{ { DOC(ALLOW_IF("iot:Connect", "client/*",
			 "{'StringEqualsIfExists':{'iot:Connection.Thing.ThingName':'x'}}")) },
	  SIM_ACTION_CONNECT, "dev-001", CTX_THING, IMPLICIT },
	/* Thing attributes as a condition key. */
	{ { DOC(ALLOW_IF("iot:Connect", "client/*",
			 "{'StringEquals':{'iot:Connection.Thing.Attributes[color]':'blue'}}")) },
	  SIM_ACTION_CONNECT, "dev-001", CTX_THING, ALLOWED },
};

START_TEST(test_policy_evaluate_table)
{
	const eval_case *c = &eval_cases[_i];
	sim_policy *set[3] = { NULL, NULL, NULL };
	size_t count = 0;
	while (count < 3 && c->policies[count]) {
		set[count] = compile_doc(c->policies[count]);
		count++;
	}
	sim_auth_context ctx = make_ctx(c->ctx);

	sim_decision got = sim_policy_evaluate((const sim_policy *const *)set, count, c->action,
					       c->name, &ctx);
	ck_assert_msg(got == c->expected, "row %d: %s on \"%s\": got %s, expected %s\n  policy: %s",
		      _i, sim_action_name(c->action), c->name ? c->name : "(none)",
		      sim_decision_name(got), sim_decision_name(c->expected), c->policies[0]);

	sim_policy_explanation explanation;
	sim_decision explained = sim_policy_explain((const sim_policy *const *)set, count,
						    c->action, c->name, &ctx, &explanation);
	ck_assert_msg(explained == got, "row %d: explain gives %s, evaluate %s", _i,
		      sim_decision_name(explained), sim_decision_name(got));
	for (size_t i = 0; i < count; i++)
		sim_policy_free(set[i]);
}
END_TEST

/* Every action checked against every resource type: only its own type matches. */
START_TEST(test_policy_resource_type_pairs)
{
	static const struct {
		sim_action action;
		const char *type;
	} owners[] = {
		{ SIM_ACTION_CONNECT, "client" },       { SIM_ACTION_PUBLISH, "topic" },
		{ SIM_ACTION_RETAIN_PUBLISH, "topic" }, { SIM_ACTION_SUBSCRIBE, "topicfilter" },
		{ SIM_ACTION_RECEIVE, "topic" },        { SIM_ACTION_GET_RETAINED_MESSAGE, "topic" },
		{ SIM_ACTION_DELETE_CONNECTION, "client" },
	};
	static const char *const types[] = { "client", "topic", "topicfilter" };
	sim_auth_context ctx = make_ctx(CTX_DEFAULT);

	for (size_t a = 0; a < sizeof(owners) / sizeof(owners[0]); a++) {
		for (size_t t = 0; t < 3; t++) {
			char doc[256];
			snprintf(doc, sizeof(doc), DOC(ALLOW("%s", "%s/x")),
				 sim_action_name(owners[a].action), types[t]);
			sim_policy *p = compile_doc(doc);
			const sim_policy *set[] = { p };
			sim_decision expected = strcmp(types[t], owners[a].type) == 0 ? ALLOWED : IMPLICIT;

			sim_decision got = sim_policy_evaluate(set, 1, owners[a].action, "x", &ctx);
			ck_assert_msg(got == expected, "%s on %s/x: got %s",
				      sim_action_name(owners[a].action), types[t], sim_decision_name(got));
			sim_policy_free(p);
		}
	}
}
END_TEST

typedef struct compile_case {
	const char *doc;
	pl_err expected;
	const char *message; /* a substring the error message must contain */
} compile_case;

static const compile_case compile_cases[] = {
	{ "{'Version':'2012-10-17','Statement':", PL_ERR_PARSE, "not valid JSON: line 1" },
	{ "[]", PL_ERR_PARSE, "must be a JSON object" },
	{ "{'Statement':[" ALLOW("iot:*", "*") "]}", PL_ERR_PARSE, "Version: missing" },
	/* Engine choice: only 2012-10-17, the version with policy variables. */
	{ "{'Version':'2008-10-17','Statement':[" ALLOW("iot:*", "*") "]}", PL_ERR_PARSE,
	  "Version: must be \"2012-10-17\"" },
	{ "{'Version':'2012-10-17','Statement':[],'Extra':1}", PL_ERR_PARSE,
	  "unknown top-level field \"Extra\"" },
	{ "{'Version':'2012-10-17','Id':5,'Statement':[" ALLOW("iot:*", "*") "]}", PL_ERR_PARSE,
	  "Id: must be a string" },
	{ "{'Version':'2012-10-17'}", PL_ERR_PARSE, "Statement: missing" },
	{ DOC(""), PL_ERR_PARSE, "Statement: must not be an empty list" },
	{ "{'Version':'2012-10-17','Statement':'x'}", PL_ERR_PARSE,
	  "Statement: must be an object or a list" },
	{ DOC(ALLOW("iot:*", "*") ",7"), PL_ERR_PARSE, "Statement[1]: must be an object" },
	/* Duplicate keys are rejected instead of silently keeping one. */
	{ DOC("{'Effect':'Allow','Effect':'Deny','Action':'iot:*','Resource':'*'}"), PL_ERR_PARSE,
	  "duplicate object key" },
	{ DOC("{'Action':'iot:*','Resource':'*'}"), PL_ERR_PARSE, "Statement[0].Effect: missing" },
	{ DOC(STMT("allow", "iot:*", "*")), PL_ERR_PARSE,
	  "Statement[0].Effect: must be \"Allow\" or \"Deny\"" },
	{ DOC(ALLOW("iot:*", "*") "," STMT("Permit", "iot:*", "*")), PL_ERR_PARSE,
	  "Statement[1].Effect" },
	{ DOC("{'Effect':'Allow','Resource':'*'}"), PL_ERR_PARSE,
	  "Statement[0]: missing Action (or NotAction)" },
	{ DOC("{'Effect':'Allow','Action':'iot:*','NotAction':'iot:Publish','Resource':'*'}"),
	  PL_ERR_PARSE, "Statement[0]: has both Action and NotAction" },
	{ DOC("{'Effect':'Allow','Action':[],'Resource':'*'}"), PL_ERR_PARSE,
	  "Statement[0].Action: must not be an empty list" },
	{ DOC("{'Effect':'Allow','Action':42,'Resource':'*'}"), PL_ERR_PARSE,
	  "Statement[0].Action: must be a string or a list of strings" },
	{ DOC("{'Effect':'Allow','Action':'Publish','Resource':'*'}"), PL_ERR_PARSE,
	  "Statement[0].Action: \"Publish\" is not an action" },
	{ DOC("{'Effect':'Allow','Action':['iot:Publish','iot:'],'Resource':'*'}"), PL_ERR_PARSE,
	  "Statement[0].Action[1]: \"iot:\" is not an action" },
	{ DOC("{'Effect':'Allow','Action':['iot:Publish',3],'Resource':'*'}"), PL_ERR_PARSE,
	  "Statement[0].Action[1]: must be a string" },
	/* Variables are allowed in Resource and Condition only. */
	{ DOC("{'Effect':'Allow','Action':'iot:${iot:ClientId}','Resource':'*'}"), PL_ERR_PARSE,
	  "Statement[0].Action: \"iot:${iot:ClientId}\" is not an action" },
	{ DOC("{'Effect':'Allow','Action':'iot:*'}"), PL_ERR_PARSE,
	  "Statement[0]: missing Resource (or NotResource)" },
	{ DOC("{'Effect':'Allow','Action':'iot:*','Resource':'*','NotResource':'*'}"), PL_ERR_PARSE,
	  "Statement[0]: has both Resource and NotResource" },
	{ DOC("{'Effect':'Allow','Action':'iot:*','Resource':'topic/a'}"), PL_ERR_PARSE,
	  "Statement[0].Resource: \"topic/a\" is not \"*\" or an ARN" },
	{ DOC("{'Effect':'Allow','Action':'iot:*','Resource':['*','arn:aws:iot']}"), PL_ERR_PARSE,
	  "Statement[0].Resource[1]: \"arn:aws:iot\" is not \"*\" or an ARN" },
	{ DOC("{'Effect':'Allow','Action':'iot:*','NotResource':[]}"), PL_ERR_PARSE,
	  "Statement[0].NotResource: must not be an empty list" },
	{ DOC(ALLOW("iot:*", "topic/${iot:ClientId")), PL_ERR_PARSE,
	  "Statement[0].Resource: unterminated policy variable" },
	{ DOC(ALLOW("iot:*", "topic/${}")), PL_ERR_PARSE, "Statement[0].Resource: empty policy variable" },
	{ DOC("{'Effect':'Allow','Principal':'*','Action':'iot:*','Resource':'*'}"), PL_ERR_PARSE,
	  "Statement[0].Principal: not allowed in an AWS IoT policy" },
	{ DOC("{'Effect':'Allow','Actions':'iot:*','Resource':'*'}"), PL_ERR_PARSE,
	  "Statement[0]: unknown field \"Actions\"" },
	{ DOC("{'Sid':1,'Effect':'Allow','Action':'iot:*','Resource':'*'}"), PL_ERR_PARSE,
	  "Statement[0].Sid: must be a string" },
	{ DOC(ALLOW_IF("iot:*", "*", "[]")), PL_ERR_PARSE,
	  "Statement[0].Condition: must be an object of operators" },
	{ DOC(ALLOW_IF("iot:*", "*", "{'StringEquals':'x'}")), PL_ERR_PARSE,
	  "Statement[0].Condition.StringEquals: must be a non-empty object" },
	{ DOC(ALLOW_IF("iot:*", "*", "{'StringEqual':{'iot:ClientId':'a'}}")), PL_ERR_PARSE,
	  "Statement[0].Condition.StringEqual.iot:ClientId: unknown condition operator" },
	{ DOC(ALLOW_IF("iot:*", "*", "{'stringequals':{'iot:ClientId':'a'}}")), PL_ERR_PARSE,
	  "unknown condition operator \"stringequals\"" },
	{ DOC(ALLOW_IF("iot:*", "*", "{'NumericEquals':{'iot:ClientId':'1'}}")), PL_ERR_UNSUPPORTED,
	  "Statement[0].Condition.NumericEquals.iot:ClientId: condition operator NumericEquals "
	  "is valid IAM but not supported" },
	{ DOC(ALLOW_IF("iot:*", "*", "{'StringEquals':{'iot:ClientId':[]}}")), PL_ERR_PARSE,
	  "StringEquals.iot:ClientId: empty list of condition values" },
	{ DOC(ALLOW_IF("iot:*", "*", "{'StringEquals':{'iot:ClientId':{'a':1}}}")), PL_ERR_PARSE,
	  "StringEquals.iot:ClientId: condition value must be a string" },
	{ DOC(ALLOW_IF("iot:*", "*", "{'Bool':{'iot:Connection.Thing.IsAttached':'yes'}}")),
	  PL_ERR_PARSE, "Bool.iot:Connection.Thing.IsAttached: value \"yes\" is not true or false" },
	{ DOC(ALLOW_IF("iot:*", "*", "{'Null':{'aws:SourceIp':['true','false']}}")), PL_ERR_PARSE,
	  "Null.aws:SourceIp: Null takes one value" },
	{ DOC(ALLOW_IF("iot:*", "*", "{'ForAnyValue:Null':{'aws:SourceIp':'true'}}")), PL_ERR_PARSE,
	  "Null takes no set prefix or IfExists" },
	{ DOC(ALLOW_IF("iot:*", "*", "{'IpAddress':{'aws:SourceIp':'300.1.1.1/8'}}")), PL_ERR_PARSE,
	  "IpAddress.aws:SourceIp: \"300.1.1.1/8\" is not an IP address or CIDR block" },
	{ DOC(ALLOW_IF("iot:*", "*", "{'IpAddress':{'aws:SourceIp':'10.0.0.0/33'}}")), PL_ERR_PARSE,
	  "\"10.0.0.0/33\" is not an IP address or CIDR block" },
	{ DOC(ALLOW_IF("iot:*", "*", "{'StringLike':{'iot:ClientId':'${iot:ClientId'}}")),
	  PL_ERR_PARSE, "StringLike.iot:ClientId: unterminated policy variable" },
};

START_TEST(test_policy_compile_rejects)
{
	const compile_case *c = &compile_cases[_i];
	char *json = to_json(c->doc);
	sim_policy *p = NULL;
	pl_errmsg e = { "" };
	pl_err err = sim_policy_compile(json, strlen(json), &p, &e);
	char expected[256];
	snprintf(expected, sizeof(expected), "%s", c->message);
	for (char *ch = expected; *ch; ch++) {
		if (*ch == '\'')
			*ch = '"';
	}

	ck_assert_msg(err == c->expected, "row %d: got %s (%s), expected %s\n  document: %s", _i,
		      pl_strerror(err), e.msg, pl_strerror(c->expected), json);
	ck_assert_ptr_null(p);
	ck_assert_msg(strstr(e.msg, expected) != NULL, "row %d: message \"%s\" lacks \"%s\"", _i,
		      e.msg, expected);
	free(json);
}
END_TEST

/* Forms AWS accepts: Statement as one object, Action and Resource as strings, Sid, Id. */
START_TEST(test_policy_compile_accepts_forms)
{
	static const char *const docs[] = {
		"{'Version':'2012-10-17','Statement':" ALLOW("iot:Connect", "client/a") "}",
		"{'Version':'2012-10-17','Id':'p1','Statement':[{'Sid':'s1','Effect':'Deny',"
		"'Action':['iot:Publish'],'Resource':['*']}]}",
		DOC(ALLOW_IF("iot:Connect", "client/*",
			     "{'ForAnyValue:StringLikeIfExists':{'iot:ClientId':['a*','b?']}}")),
		DOC(ALLOW_IF("iot:Connect", "client/*", "{}")),
	};
	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		sim_policy *p = compile_doc(docs[i]);
		ck_assert_uint_eq(sim_policy_statement_count(p), 1);
		sim_policy_free(p);
	}
}
END_TEST

/* Builds a document of exactly chars non-whitespace characters, padded with spaces. */
static char *sized_doc(size_t chars, size_t spaces)
{
	static const char head[] = "{\"Version\":\"2012-10-17\",\"Statement\":{\"Sid\":\"";
	static const char tail[] = "\",\"Effect\":\"Allow\",\"Action\":\"iot:*\",\"Resource\":\"*\"}}";
	size_t fixed = strlen(head) + strlen(tail);
	ck_assert_uint_gt(chars, fixed);
	size_t sid = chars - fixed;
	char *doc = malloc(fixed + sid + spaces + 1);
	ck_assert_ptr_nonnull(doc);

	size_t n = 0;
	memset(doc + n, ' ', spaces);
	n += spaces;
	memcpy(doc + n, head, strlen(head));
	n += strlen(head);
	memset(doc + n, 'x', sid);
	n += sid;
	memcpy(doc + n, tail, strlen(tail) + 1);
	return doc;
}

/* The document size quota is 2048 characters, whitespace excluded. */
START_TEST(test_policy_compile_size_limit)
{
	sim_policy *p = NULL;
	pl_errmsg e = { "" };
	char *at_limit = sized_doc(SIM_POLICY_MAX_CHARS, 3000);
	char *over = sized_doc(SIM_POLICY_MAX_CHARS + 1, 0);

	ck_assert_int_eq(sim_policy_compile(at_limit, strlen(at_limit), &p, &e), PL_OK);
	sim_policy_free(p);
	p = NULL;
	ck_assert_int_eq(sim_policy_compile(over, strlen(over), &p, &e), PL_ERR_LIMIT);
	ck_assert_ptr_null(p);
	ck_assert_ptr_nonnull(strstr(e.msg, "2049 characters excluding whitespace"));
	free(at_limit);
	free(over);
}
END_TEST

/* The length argument bounds the document; it need not be NUL-terminated. */
START_TEST(test_policy_compile_uses_length)
{
	char *json = to_json(DOC(ALLOW("iot:*", "*")) "garbage");
	sim_policy *p = NULL;
	pl_errmsg e = { "" };

	ck_assert_int_eq(sim_policy_compile(json, strlen(json) - strlen("garbage"), &p, &e), PL_OK);
	sim_policy_free(p);
	free(json);
}
END_TEST

START_TEST(test_policy_retain_and_free)
{
	sim_policy *p = compile_doc(DOC(ALLOW("iot:*", "*")));
	sim_auth_context ctx = make_ctx(CTX_DEFAULT);

	ck_assert_ptr_eq(sim_policy_retain(p), p);
	sim_policy_free(p);
	const sim_policy *set[] = { p };
	ck_assert_int_eq(sim_policy_evaluate(set, 1, SIM_ACTION_PUBLISH, "a", &ctx), ALLOWED);
	sim_policy_free(p);
	sim_policy_free(NULL);
}
END_TEST

/* NULL entries in a set are skipped; an empty set denies. */
START_TEST(test_policy_empty_and_null_sets)
{
	sim_policy *p = compile_doc(DOC(ALLOW("iot:*", "*")));
	const sim_policy *set[] = { NULL, p };
	sim_auth_context ctx = make_ctx(CTX_DEFAULT);

	ck_assert_int_eq(sim_policy_evaluate(set, 2, SIM_ACTION_PUBLISH, "a", &ctx), ALLOWED);
	ck_assert_int_eq(sim_policy_evaluate(set, 0, SIM_ACTION_PUBLISH, "a", &ctx), IMPLICIT);
	ck_assert_int_eq(sim_policy_evaluate(set, 1, SIM_ACTION_PUBLISH, "a", &ctx), IMPLICIT);
	sim_policy_free(p);
}
END_TEST

/* A resource ARN longer than the stack buffer still matches. */
START_TEST(test_policy_long_topic)
{
	sim_policy *p = compile_doc(DOC(ALLOW("iot:Publish", "topic/long/*/end")));
	const sim_policy *set[] = { p };
	sim_auth_context ctx = make_ctx(CTX_DEFAULT);
	char topic[4096];
	memset(topic, 'x', sizeof(topic) - 1);
	topic[sizeof(topic) - 1] = '\0';
	memcpy(topic, "long/", 5);
	memcpy(topic + sizeof(topic) - 5, "/end", 4);

	ck_assert_int_eq(sim_policy_evaluate(set, 1, SIM_ACTION_PUBLISH, topic, &ctx), ALLOWED);
	topic[sizeof(topic) - 2] = 'x';
	ck_assert_int_eq(sim_policy_evaluate(set, 1, SIM_ACTION_PUBLISH, topic, &ctx), IMPLICIT);
	sim_policy_free(p);
}
END_TEST

/* A deny log must show the resolved resources and the client id actually used. */
START_TEST(test_policy_explain_implicit_deny)
{
	sim_policy *p = compile_doc(DOC(ALLOW("iot:Subscribe",
					      "topicfilter/my/${iot:ClientId}/topic")));
	const sim_policy *set[] = { p };
	sim_auth_context ctx = make_ctx(CTX_DEFAULT);
	sim_policy_explanation explanation;

	sim_decision d = sim_policy_explain(set, 1, SIM_ACTION_SUBSCRIBE, "my/dev-002/topic", &ctx,
					    &explanation);
	ck_assert_int_eq(d, IMPLICIT);
	ck_assert_int_eq(explanation.decision, IMPLICIT);
	ck_assert_int_eq(explanation.policy_index, -1);
	ck_assert_int_eq(explanation.statement_index, -1);
	ck_assert_str_eq(explanation.resource, ARN "topicfilter/my/dev-002/topic");
	ck_assert_ptr_nonnull(strstr(explanation.detail, ARN "topicfilter/my/dev-001/topic"));
	ck_assert_ptr_nonnull(strstr(explanation.detail, "resource does not match"));
	sim_policy_free(p);
}
END_TEST

START_TEST(test_policy_explain_explicit_deny)
{
	sim_policy *allow = compile_doc(DOC(ALLOW("iot:*", "*")));
	sim_policy *deny = compile_doc(DOC(ALLOW("iot:Connect", "client/*") ",{'Sid':'no-secret',"
					   "'Effect':'Deny','Action':'iot:Publish','Resource':'" ARN
					   "topic/secret/*'}"));
	const sim_policy *set[] = { allow, deny };
	sim_auth_context ctx = make_ctx(CTX_DEFAULT);
	sim_policy_explanation explanation;

	ck_assert_int_eq(sim_policy_explain(set, 2, SIM_ACTION_PUBLISH, "secret/x", &ctx, &explanation),
			 EXPLICIT);
	ck_assert_int_eq(explanation.policy_index, 1);
	ck_assert_int_eq(explanation.statement_index, 1);
	ck_assert_ptr_nonnull(strstr(explanation.detail, "(no-secret) Deny"));
	ck_assert_ptr_nonnull(strstr(explanation.detail, ARN "topic/secret/*"));

	ck_assert_int_eq(sim_policy_explain(set, 2, SIM_ACTION_PUBLISH, "open", &ctx, &explanation), ALLOWED);
	ck_assert_int_eq(explanation.policy_index, 0);
	ck_assert_int_eq(explanation.statement_index, 0);
	sim_policy_free(allow);
	sim_policy_free(deny);
}
END_TEST

START_TEST(test_policy_explain_unresolved_variable)
{
	sim_policy *p = compile_doc(DOC(ALLOW("iot:Publish",
					      "topic/${iot:Connection.Thing.ThingName}/x")));
	const sim_policy *set[] = { p };
	sim_auth_context ctx = make_ctx(CTX_DEFAULT);
	sim_policy_explanation explanation;

	ck_assert_int_eq(sim_policy_explain(set, 1, SIM_ACTION_PUBLISH, "t/x", &ctx, &explanation), IMPLICIT);
	ck_assert_ptr_nonnull(strstr(explanation.detail, "${iot:Connection.Thing.ThingName}"));
	ck_assert_ptr_nonnull(strstr(explanation.detail, "a policy variable has no value"));

	ck_assert_int_eq(sim_policy_explain(set, 1, SIM_ACTION_CONNECT, "dev-001", &ctx, &explanation),
			 IMPLICIT);
	ck_assert_ptr_nonnull(strstr(explanation.detail, "no statement covers iot:Connect"));
	sim_policy_free(p);
}
END_TEST

START_TEST(test_policy_names)
{
	ck_assert_str_eq(sim_action_name(SIM_ACTION_CONNECT), "iot:Connect");
	ck_assert_str_eq(sim_action_name(SIM_ACTION_RETAIN_PUBLISH), "iot:RetainPublish");
	ck_assert_str_eq(sim_action_name(SIM_ACTION_SUBSCRIBE), "iot:Subscribe");
	ck_assert_str_eq(sim_action_name(SIM_ACTION__COUNT), "unknown");
	ck_assert_str_eq(sim_decision_name(SIM_DECISION_EXPLICIT_DENY), "explicit-deny");
}
END_TEST

/* Certificate variables, read from real X509 objects. */

static void add_entry(X509_NAME *name, const char *field, const char *value)
{
	int ok = X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
					    (const unsigned char *)value, -1, -1, 0);
	ck_assert_int_eq(ok, 1);
}

/*
 * A signed certificate for subject C=US, O=Acme, OU=Engineering, OU=Fleet,
 * CN=dev-001 (the CN UTF-8 when utf8_cn), issued by O=Acme CA, CN=Test CA.
 */
static X509 *make_cert(int utf8_cn)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *cert = X509_new();
	ck_assert_ptr_nonnull(key);
	ck_assert_ptr_nonnull(cert);

	X509_NAME *subject = X509_NAME_new();
	add_entry(subject, "C", "US");
	add_entry(subject, "O", "Acme");
	add_entry(subject, "OU", "Engineering");
	add_entry(subject, "OU", "Fleet");
	add_entry(subject, "CN", utf8_cn ? "d\xc3\xa9v-001" : "dev-001");
	X509_NAME *issuer = X509_NAME_new();
	add_entry(issuer, "O", "Acme CA");
	add_entry(issuer, "CN", "Test CA");

	ck_assert_int_eq(X509_set_version(cert, 2), 1);
	ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
	X509_gmtime_adj(X509_getm_notBefore(cert), 0);
	X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
	ck_assert_int_eq(X509_set_subject_name(cert, subject), 1);
	ck_assert_int_eq(X509_set_issuer_name(cert, issuer), 1);
	ck_assert_int_eq(X509_set_pubkey(cert, key), 1);
	ck_assert_int_gt(X509_sign(cert, key, EVP_sha256()), 0);

	X509_NAME_free(subject);
	X509_NAME_free(issuer);
	EVP_PKEY_free(key);
	return cert;
}

typedef struct cert_case {
	const char *doc;
	const char *topic;
	sim_decision expected;
} cert_case;

#define CERT_PUBLISH(resource) DOC(ALLOW("iot:Publish", resource))
#define CERT_CONDITION(condition) DOC(ALLOW_IF("iot:Publish", "topic/*", condition))

static const cert_case cert_cases[] = {
	{ CERT_PUBLISH("topic/${iot:Certificate.Subject.CommonName}/x"), "dev-001/x", ALLOWED },
	{ CERT_PUBLISH("topic/${iot:Certificate.Subject.Country}"), "US", ALLOWED },
	{ CERT_PUBLISH("topic/${iot:Certificate.Issuer.CommonName}"), "Test CA", ALLOWED },
	{ CERT_PUBLISH("topic/${iot:Certificate.Issuer.Organization}"), "Acme CA", ALLOWED },
	/* A multi-valued field gives its first value. */
	{ CERT_PUBLISH("topic/${iot:Certificate.Subject.OrganizationalUnit}"), "Engineering",
	  ALLOWED },
	{ CERT_PUBLISH("topic/${iot:Certificate.Subject.OrganizationalUnit}"), "Fleet", IMPLICIT },
	/* A numeric suffix picks a value: .1 is the second one. */
	{ CERT_PUBLISH("topic/${iot:Certificate.Subject.OrganizationalUnit.0}"), "Engineering",
	  ALLOWED },
	{ CERT_PUBLISH("topic/${iot:Certificate.Subject.OrganizationalUnit.1}"), "Fleet", ALLOWED },
	/* A missing index means no substitution, and authorization fails. */
	{ CERT_PUBLISH("topic/${iot:Certificate.Subject.OrganizationalUnit.2}"), "", IMPLICIT },
	{ CERT_PUBLISH("topic/${iot:Certificate.Subject.Title}"), "", IMPLICIT },
	/* Engine choice: a .List variable has no single value for a resource. */
	{ CERT_PUBLISH("topic/${iot:Certificate.Subject.OrganizationalUnit.List}"), "Engineering",
	  IMPLICIT },
	/* Field names are matched without case, as condition keys are. */
	{ CERT_PUBLISH("topic/${iot:certificate.subject.commonname}"), "dev-001", ALLOWED },
	/* ForAnyValue: at least one value of the multi-valued key matches. */
	{ CERT_CONDITION("{'ForAnyValue:StringEquals':"
			 "{'iot:Certificate.Subject.OrganizationalUnit.List':'Fleet'}}"),
	  "t", ALLOWED },
	{ CERT_CONDITION("{'ForAnyValue:StringEquals':"
			 "{'iot:Certificate.Subject.OrganizationalUnit.List':['Sales','HR']}}"),
	  "t", IMPLICIT },
	{ CERT_CONDITION("{'ForAnyValue:StringLike':"
			 "{'iot:Certificate.Subject.OrganizationalUnit.List':'Fl*'}}"),
	  "t", ALLOWED },
	/* ForAllValues: every value of the key must be in the listed set. */
	{ CERT_CONDITION("{'ForAllValues:StringEquals':{'iot:Certificate.Subject."
			 "OrganizationalUnit.List':['Engineering','Fleet','Sales']}}"),
	  "t", ALLOWED },
	{ CERT_CONDITION("{'ForAllValues:StringEquals':"
			 "{'iot:Certificate.Subject.OrganizationalUnit.List':['Engineering']}}"),
	  "t", IMPLICIT },
	/* IAM: ForAllValues holds for an absent key, ForAnyValue does not. */
	{ CERT_CONDITION("{'ForAllValues:StringEquals':{'iot:Certificate.Subject.Title.List':'x'}}"),
	  "t", ALLOWED },
	{ CERT_CONDITION("{'ForAnyValue:StringEquals':{'iot:Certificate.Subject.Title.List':'x'}}"),
	  "t", IMPLICIT },
	/* A negated operator holds only when no value of the key matches. */
	{ CERT_CONDITION("{'StringNotEquals':"
			 "{'iot:Certificate.Subject.OrganizationalUnit.List':'Fleet'}}"),
	  "t", IMPLICIT },
	{ CERT_CONDITION("{'StringEquals':{'iot:Certificate.Subject.CommonName':'${iot:ClientId}'}}"),
	  "t", ALLOWED },
};

START_TEST(test_policy_cert_variables)
{
	const cert_case *c = &cert_cases[_i];
	X509 *cert = make_cert(0);
	sim_cert_fields *fields = NULL;
	pl_errmsg e = { "" };
	ck_assert_int_eq(sim_cert_fields_from_x509(cert, &fields, &e), PL_OK);
	sim_policy *p = compile_doc(c->doc);
	const sim_policy *set[] = { p };
	sim_auth_context ctx = make_ctx(CTX_DEFAULT);
	ctx.cert = fields;

	sim_decision got = sim_policy_evaluate(set, 1, SIM_ACTION_PUBLISH, c->topic, &ctx);
	ck_assert_msg(got == c->expected, "row %d: publish \"%s\": got %s, expected %s\n  %s", _i,
		      c->topic, sim_decision_name(got), sim_decision_name(c->expected), c->doc);

	sim_policy_free(p);
	sim_cert_fields_free(fields);
	X509_free(cert);
}
END_TEST

/* Without certificate fields in the context, certificate variables do not resolve. */
START_TEST(test_policy_cert_absent)
{
	sim_policy *p = compile_doc(CERT_PUBLISH("topic/${iot:Certificate.Subject.CommonName}"));
	const sim_policy *set[] = { p };
	sim_auth_context ctx = make_ctx(CTX_DEFAULT);

	ck_assert_int_eq(sim_policy_evaluate(set, 1, SIM_ACTION_PUBLISH, "", &ctx), IMPLICIT);
	sim_policy_free(p);
}
END_TEST

START_TEST(test_policy_cert_utf8_common_name)
{
	X509 *cert = make_cert(1);
	sim_cert_fields *fields = NULL;
	ck_assert_int_eq(sim_cert_fields_from_x509(cert, &fields, NULL), PL_OK);
	sim_policy *p = compile_doc(CERT_PUBLISH("topic/${iot:Certificate.Subject.CommonName}"));
	const sim_policy *set[] = { p };
	sim_auth_context ctx = make_ctx(CTX_DEFAULT);
	ctx.cert = fields;

	ck_assert_int_eq(sim_policy_evaluate(set, 1, SIM_ACTION_PUBLISH, "d\xc3\xa9v-001", &ctx),
			 ALLOWED);
	ck_assert_int_eq(sim_policy_evaluate(set, 1, SIM_ACTION_PUBLISH, "dev-001", &ctx), IMPLICIT);
	sim_policy_free(p);
	sim_cert_fields_free(fields);
	X509_free(cert);
}
END_TEST

/* Compiled policies are shared read-only between threads. */
typedef struct thread_job {
	const sim_policy *const *set;
	size_t count;
	sim_cert_fields *cert;
	int wrong;
} thread_job;

static void *evaluate_many(void *arg)
{
	thread_job *job = arg;
	sim_auth_context ctx = make_ctx(CTX_DEFAULT);
	ctx.cert = job->cert;
	for (int i = 0; i < 20000; i++) {
		const char *topic = (i % 2) ? "dev/dev-001/data" : "dev/dev-001/secret";
		sim_decision expected = (i % 2) ? ALLOWED : EXPLICIT;
		if (sim_policy_evaluate(job->set, job->count, SIM_ACTION_PUBLISH, topic, &ctx) !=
		    expected)
			job->wrong++;
	}
	return NULL;
}

START_TEST(test_policy_concurrent_evaluation)
{
	sim_policy *allow = compile_doc(DOC(ALLOW("iot:Publish", "topic/dev/${iot:ClientId}/*")));
	sim_policy *deny = compile_doc(DOC(DENY("iot:Publish", "topic/*/secret")));
	const sim_policy *set[] = { allow, deny };
	X509 *cert = make_cert(0);
	sim_cert_fields *fields = NULL;
	ck_assert_int_eq(sim_cert_fields_from_x509(cert, &fields, NULL), PL_OK);
	thread_job jobs[4];
	pthread_t threads[4];

	for (int t = 0; t < 4; t++) {
		jobs[t] = (thread_job){ set, 2, fields, 0 };
		ck_assert_int_eq(pthread_create(&threads[t], NULL, evaluate_many, &jobs[t]), 0);
	}
	for (int t = 0; t < 4; t++) {
		ck_assert_int_eq(pthread_join(threads[t], NULL), 0);
		ck_assert_int_eq(jobs[t].wrong, 0);
	}
	sim_policy_free(allow);
	sim_policy_free(deny);
	sim_cert_fields_free(fields);
	X509_free(cert);
}
END_TEST

#define ROWS(table) ((int)(sizeof(table) / sizeof((table)[0])))

static Suite *policy_suite(void)
{
	Suite *s = suite_create("policy");
	TCase *evaluate = tcase_create("evaluate");
	TCase *compile = tcase_create("compile");
	TCase *explain = tcase_create("explain");
	TCase *cert = tcase_create("cert");

	tcase_add_loop_test(evaluate, test_policy_evaluate_table, 0, ROWS(eval_cases));
	tcase_add_test(evaluate, test_policy_resource_type_pairs);
	tcase_add_test(evaluate, test_policy_retain_and_free);
	tcase_add_test(evaluate, test_policy_empty_and_null_sets);
	tcase_add_test(evaluate, test_policy_long_topic);
	tcase_add_test(evaluate, test_policy_names);
	tcase_add_test(evaluate, test_policy_concurrent_evaluation);
	tcase_add_loop_test(compile, test_policy_compile_rejects, 0, ROWS(compile_cases));
	tcase_add_test(compile, test_policy_compile_accepts_forms);
	tcase_add_test(compile, test_policy_compile_size_limit);
	tcase_add_test(compile, test_policy_compile_uses_length);
	tcase_add_test(explain, test_policy_explain_implicit_deny);
	tcase_add_test(explain, test_policy_explain_explicit_deny);
	tcase_add_test(explain, test_policy_explain_unresolved_variable);
	tcase_add_loop_test(cert, test_policy_cert_variables, 0, ROWS(cert_cases));
	tcase_add_test(cert, test_policy_cert_absent);
	tcase_add_test(cert, test_policy_cert_utf8_common_name);
	suite_add_tcase(s, evaluate);
	suite_add_tcase(s, compile);
	suite_add_tcase(s, explain);
	suite_add_tcase(s, cert);
	return s;
}

int main(void)
{
	SRunner *runner = srunner_create(policy_suite());
	int failed;

	srunner_run_all(runner, CK_NORMAL);
	failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
