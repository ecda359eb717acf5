/*
 * Internal representation of compiled AWS IoT policies, shared by the
 * policy_*.c files only. Nothing here is part of the engine's interface.
 */
#ifndef SIM_POLICY_INTERNAL_H
#define SIM_POLICY_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/error.h"
#include "simulator/policy.h"

/* Distinct policy variables one statement may use (a compile-time limit). */
#define SIM_POLICY_MAX_VARS 64

/* Certificate name fields AWS exposes as policy variables. */
typedef enum sim_cert_field {
	SIM_CERT_COUNTRY,
	SIM_CERT_ORGANIZATION,
	SIM_CERT_ORGANIZATIONAL_UNIT,
	SIM_CERT_DN_QUALIFIER,
	SIM_CERT_STATE,
	SIM_CERT_COMMON_NAME,
	SIM_CERT_SERIAL_NUMBER,
	SIM_CERT_TITLE,
	SIM_CERT_SURNAME,
	SIM_CERT_GIVEN_NAME,
	SIM_CERT_INITIALS,
	SIM_CERT_PSEUDONYM,
	SIM_CERT_GENERATION_QUALIFIER,
	SIM_CERT_FIELD__COUNT
} sim_cert_field;

/* Returns the field whose AWS name ("CommonName") is name[0..len), or -1. */
int sim_cert_field_lookup(const char *name, size_t len);

/*
 * Stores in *values the values of a subject (issuer == 0) or issuer field
 * in certificate order and returns their count. fields may be NULL.
 */
size_t sim_cert_field_values(const sim_cert_fields *fields, int issuer, sim_cert_field field,
			     const char *const **values);

typedef enum sim_var_kind {
	SIM_VAR_UNKNOWN, /* a name this engine does not know: never resolves */
	SIM_VAR_CLIENT_ID,
	SIM_VAR_THING_NAME,
	SIM_VAR_THING_TYPE,
	SIM_VAR_THING_ATTRIBUTE,
	SIM_VAR_THING_ATTACHED,
	SIM_VAR_SOURCE_IP,
	SIM_VAR_CERT,
} sim_var_kind;

/* Value index of a certificate variable ending in ".List" (all values). */
#define SIM_CERT_INDEX_LIST (-1)

/* A policy variable or condition key, parsed once. */
typedef struct sim_var {
	sim_var_kind kind;
	int issuer;       /* SIM_VAR_CERT: 0 subject, 1 issuer */
	sim_cert_field field;
	int index;        /* SIM_VAR_CERT: value index or SIM_CERT_INDEX_LIST */
	char *attribute;  /* SIM_VAR_THING_ATTRIBUTE: the attribute name */
	char *name;       /* the name as written, for explanations */
} sim_var;

/* Parses a variable name or condition key (case-insensitive except attribute names). */
pl_err sim_var_parse(const char *name, size_t len, sim_var *out, pl_errmsg *e);
void sim_var_clear(sim_var *v);

/*
 * Stores the values of v for ctx in *values and returns their count; 0
 * means the key is absent. scratch receives a single value when there is
 * no array to point to.
 */
size_t sim_var_values(const sim_var *v, const sim_auth_context *ctx, const char *const **values,
		      const char **scratch);

/* Returns the single value of v for ctx, or NULL when it does not resolve. */
const char *sim_var_resolve(const sim_var *v, const sim_auth_context *ctx);

typedef enum sim_token_kind {
	SIM_TOKEN_LITERAL, /* text[off, off + len) of the pattern */
	SIM_TOKEN_STAR,    /* IAM '*': any run of characters, '/' included */
	SIM_TOKEN_QMARK,   /* IAM '?': exactly one character */
	SIM_TOKEN_VAR,     /* the value of the statement's var-th variable, literally */
} sim_token_kind;

typedef struct sim_token {
	sim_token_kind kind;
	uint32_t off;
	uint32_t len;
	uint32_t var;
} sim_token;

/* A resource or condition value split into tokens at compile time. */
typedef struct sim_pattern {
	sim_token *tokens;
	size_t count;
	char *text;   /* literal characters, escapes already replaced */
	char *source; /* the string as written in the document */
} sim_pattern;

/* The distinct variables of one statement, filled while its patterns compile. */
typedef struct sim_var_table {
	sim_var vars[SIM_POLICY_MAX_VARS];
	size_t count;
} sim_var_table;

/*
 * Compiles src. The wildcards flag selects whether '*' and '?' are
 * wildcards (resources, StringLike) or literal characters (StringEquals).
 * Variables are added to table. Errors: PL_ERR_PARSE (unterminated or empty
 * ${}), PL_ERR_LIMIT, PL_ERR_NOMEM. The message does not name the field,
 * because the caller prefixes it.
 */
pl_err sim_pattern_compile(const char *src, int wildcards, sim_var_table *table,
			   sim_pattern *out, pl_errmsg *e);
void sim_pattern_clear(sim_pattern *p);

/*
 * Matches s[0..n) against p, variable tokens taking vals[var] literally.
 * ignore_case folds ASCII letters only.
 */
int sim_pattern_match(const sim_pattern *p, const char *const *vals, const char *s, size_t n,
		      int ignore_case);

/*
 * Writes p with variables replaced by vals (or "${name}" where vals[var]
 * is NULL) into buf, truncating; returns the length written.
 */
size_t sim_pattern_render(const sim_pattern *p, const sim_var_table *table,
			  const char *const *vals, char *buf, size_t size);

typedef enum sim_cond_op {
	SIM_COND_STRING_EQUALS, /* also the IgnoreCase and Not variants */
	SIM_COND_STRING_LIKE,   /* also StringNotLike */
	SIM_COND_BOOL,
	SIM_COND_NULL,
	SIM_COND_IP_ADDRESS,    /* also NotIpAddress */
} sim_cond_op;

typedef enum sim_cond_set {
	SIM_SET_NONE,
	SIM_SET_ANY, /* ForAnyValue: */
	SIM_SET_ALL, /* ForAllValues: */
} sim_cond_set;

typedef struct sim_cidr {
	int family; /* AF_INET or AF_INET6 */
	unsigned char addr[16];
	unsigned prefix;
} sim_cidr;

/* One key of one operator in a Condition block. */
typedef struct sim_condition {
	sim_cond_op op;
	sim_cond_set set;
	int negate;
	int ignore_case;
	int if_exists;
	int null_expect_absent; /* SIM_COND_NULL: the value was true */
	sim_var key;
	sim_pattern *values;    /* string operators and Bool */
	sim_cidr *cidrs;        /* IpAddress */
	size_t value_count;
} sim_condition;

typedef struct sim_statement {
	int deny;
	uint32_t actions;     /* bit per sim_action the Action/NotAction selects */
	int not_resource;
	sim_pattern *resources;
	size_t resource_count;
	sim_condition *conditions;
	size_t condition_count;
	sim_var_table *vars;  /* NULL when the statement uses no variable */
	char *sid;            /* NULL when absent */
} sim_statement;

struct sim_policy {
	atomic_size_t refs;
	sim_statement *statements;
	size_t count;
};

/* Frees everything a statement owns. */
void sim_statement_clear(sim_statement *s);

/* Returns whether all conditions of s hold for ctx, vals being its resolved variables. */
int sim_conditions_hold(const sim_statement *s, const char *const *vals,
			const sim_auth_context *ctx);

/*
 * Compiles the Condition object cond of a statement. Errors name the
 * operator and key; the caller prefixes the statement.
 */
pl_err sim_conditions_compile(json_t *cond, sim_statement *s, sim_var_table *table,
			      pl_errmsg *e);

/*
 * Prepends a field path segment to the message in e: joined with '.' when
 * the message already starts with a field path ("Action: ..." becomes
 * "Statement[0].Action: ..."), otherwise with ": ". No-op when e is NULL.
 */
void sim_errmsg_path(pl_errmsg *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Returns the bit mask of sim_action values that an Action pattern matches. */
uint32_t sim_action_mask(const char *pattern);

#endif
