/*
 * AWS IoT policy engine: compiles AWS IoT policy documents (IAM-style JSON)
 * and authorizes MQTT operations against a set of compiled policies the way
 * AWS IoT Core does. Everything is denied by default, an explicit Deny in
 * any policy wins, and otherwise an Allow in any policy of the set allows.
 *
 * Supported grammar, limits and the choices made where AWS documents
 * nothing are listed in docs/policies.md.
 *
 * Thread safety: a compiled sim_policy and a sim_cert_fields are immutable;
 * any number of threads may evaluate them at once. sim_policy_retain and
 * sim_policy_free use an atomic reference count, so a compiled policy can be
 * shared between connection snapshots that end at different times.
 */
#ifndef SIM_POLICY_H
#define SIM_POLICY_H

#include <stddef.h>

#include <openssl/x509.h>

#include "common/error.h"

/* Maximum document size in characters, whitespace excluded (AWS quota). */
#define SIM_POLICY_MAX_CHARS 2048

/* Maximum number of policies attached to one certificate (AWS quota). */
#define SIM_POLICY_MAX_PER_PRINCIPAL 10

typedef struct sim_policy sim_policy;

/*
 * Actions whose resource the engine builds. Other action names (shadow and
 * jobs actions, other services) are accepted by the parser and never match
 * one of these.
 */
typedef enum sim_action {
	SIM_ACTION_CONNECT,                /* iot:Connect, client/<client id> */
	SIM_ACTION_PUBLISH,                /* iot:Publish, topic/<topic> */
	SIM_ACTION_RETAIN_PUBLISH,         /* iot:RetainPublish, topic/<topic> */
	SIM_ACTION_SUBSCRIBE,              /* iot:Subscribe, topicfilter/<filter as sent> */
	SIM_ACTION_RECEIVE,                /* iot:Receive, topic/<topic of the message> */
	SIM_ACTION_GET_RETAINED_MESSAGE,   /* iot:GetRetainedMessage, topic/<topic> */
	SIM_ACTION_LIST_RETAINED_MESSAGES, /* iot:ListRetainedMessages, resource "*" */
	SIM_ACTION_DELETE_CONNECTION,      /* iot:DeleteConnection, client/<client id> */
	SIM_ACTION__COUNT
} sim_action;

/* "iot:Connect" and so on; never NULL. */
const char *sim_action_name(sim_action action);

typedef enum sim_decision {
	SIM_DECISION_IMPLICIT_DENY, /* no statement allowed and none denied */
	SIM_DECISION_ALLOW,
	SIM_DECISION_EXPLICIT_DENY, /* a matching Deny statement */
} sim_decision;

/* "implicit-deny", "allow" or "explicit-deny"; never NULL. */
const char *sim_decision_name(sim_decision decision);

/*
 * Certificate subject and issuer fields, the values of the
 * ${iot:Certificate.Subject.*} and ${iot:Certificate.Issuer.*} variables.
 */
typedef struct sim_cert_fields sim_cert_fields;

/*
 * Reads the subject and issuer names of cert (not retained) into a new
 * sim_cert_fields, each multi-valued field in certificate order.
 * Errors: PL_ERR_NOMEM, PL_ERR_PARSE (a name entry that is not valid text).
 */
pl_err sim_cert_fields_from_x509(X509 *cert, sim_cert_fields **out, pl_errmsg *e);

void sim_cert_fields_free(sim_cert_fields *fields);

/* One thing attribute, the value of ${iot:Connection.Thing.Attributes[name]}. */
typedef struct sim_thing_attribute {
	const char *name;
	const char *value;
} sim_thing_attribute;

/*
 * Everything a request is authorized with. The caller owns all pointers;
 * they must stay valid during the call. A NULL field is a value AWS would
 * not have, so variables and condition keys that need it do not resolve.
 */
typedef struct sim_auth_context {
	const char *region;     /* required, "us-east-1" */
	const char *account;    /* required, "123456789012" */
	const char *client_id;  /* the MQTT client id exactly as sent */
	const sim_cert_fields *cert;
	/*
	 * The thing attached to the certificate whose name equals the client
	 * id; AWS resolves thing variables only in that case, so set these
	 * only then.
	 */
	const char *thing_name;
	const char *thing_type; /* NULL when the thing has no type */
	const sim_thing_attribute *thing_attributes;
	size_t thing_attribute_count;
	int thing_attached;     /* value of iot:Connection.Thing.IsAttached */
	const char *source_ip;  /* aws:SourceIp, textual IPv4 or IPv6 */
} sim_auth_context;

/*
 * Parses, validates and compiles one policy document of len bytes (need
 * not be NUL-terminated). On success *out holds one reference.
 * Errors: PL_ERR_PARSE (not JSON, or a field with a wrong type or value;
 * the message names the statement index and field, for example
 * "Statement[1].Resource[0]: ..."), PL_ERR_LIMIT (more than
 * SIM_POLICY_MAX_CHARS characters), PL_ERR_UNSUPPORTED (valid AWS grammar
 * this engine does not implement, such as NumericEquals), PL_ERR_NOMEM.
 */
pl_err sim_policy_compile(const char *json, size_t len, sim_policy **out, pl_errmsg *e);

/* Adds a reference to p and returns p. */
sim_policy *sim_policy_retain(sim_policy *p);

/* Drops a reference; the last one frees p. NULL is a no-op. */
void sim_policy_free(sim_policy *p);

/* Number of statements in p. */
size_t sim_policy_statement_count(const sim_policy *p);

/*
 * Authorizes action on name (client id, topic or topic filter as sent,
 * ignored for SIM_ACTION_LIST_RETAINED_MESSAGES) against the union of the
 * count policies in set. NULL entries are skipped. Allocates nothing
 * unless the resource ARN exceeds 1 KiB.
 */
sim_decision sim_policy_evaluate(const sim_policy *const *set, size_t count, sim_action action,
				 const char *name, const sim_auth_context *ctx);

#define SIM_POLICY_EXPLAIN_MAX 512

/* Why a decision was made, for deny logs. */
typedef struct sim_policy_explanation {
	sim_decision decision;
	/*
	 * The deciding policy (index into set) and statement, or -1 for an
	 * implicit deny. For an allow, the first allowing statement.
	 */
	int policy_index;
	int statement_index;
	char resource[SIM_POLICY_EXPLAIN_MAX]; /* the request ARN, truncated */
	/*
	 * The deciding statement's resources with variables substituted, or
	 * for an implicit deny those of every statement whose action matched,
	 * each with why it did not apply. Truncated to fit.
	 */
	char detail[SIM_POLICY_EXPLAIN_MAX];
} sim_policy_explanation;

/*
 * Same decision as sim_policy_evaluate, and fills *out. Slower: meant for
 * the deny path and for tools, not for every check.
 */
sim_decision sim_policy_explain(const sim_policy *const *set, size_t count, sim_action action,
				const char *name, const sim_auth_context *ctx,
				sim_policy_explanation *out);

#endif
