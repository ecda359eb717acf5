/*
 * Shared by the profile loader's files (the .c files in profiles/) only: the key tables
 * that drive decoding, defaults and the writer, and the loader context that
 * collects errors with their positions.
 */
#ifndef PL_PROFILE_INTERNAL_H
#define PL_PROFILE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "profiles/profile.h"
#include "profiles/ptree.h"

/* How a key's value is decoded, stored and written. */
typedef enum field_type {
	FIELD_STRING = 0, /* char *, any scalar */
	FIELD_NAME,       /* char *, [A-Za-z0-9_-]+ */
	FIELD_SECRET,     /* char *, "" or written as ${env:NAME} */
	FIELD_PATH,       /* char *, resolved against the profile's folder, "" allowed */
	FIELD_BOOL,       /* int */
	FIELD_INT,        /* int64_t in [min, max] */
	FIELD_INT32,      /* int in [min, max] */
	FIELD_SEED,       /* uint64_t */
	FIELD_DURATION,   /* int64_t ns in [min, max] */
	FIELD_RATE,       /* double per second, "off" = 0 when min is 0 */
	FIELD_ENUM,       /* int, one of names (stored as values[i], or i when values is NULL) */
	FIELD_PROPAGATION, /* profile_propagation */
	FIELD_SECTION,    /* a nested map with its own table */
	FIELD_CUSTOM,     /* decoded by the loader's own code (groups, shares, policies) */
} field_type;

struct section;

typedef struct field {
	const char *key;
	field_type type;
	size_t offset;               /* within the section's struct */
	const char *default_text;    /* as it would be written in a profile; NULL for CUSTOM */
	int64_t min;                 /* INT, INT32, DURATION (ns), RATE (0 allows "off") */
	int64_t max;
	const char *const *names;    /* ENUM, NULL-terminated */
	const int *values;           /* ENUM, parallel to names; NULL = index */
	const struct section *section; /* SECTION */
} field;

typedef struct section {
	const char *path;            /* dotted path for messages, "" for the root */
	const field *fields;
	size_t count;
} section;

extern const section schema_root;
extern const section schema_group;
extern const section schema_policy_entry;

/* A string field whose value came from ${env:...}; the writer puts back the template. */
typedef struct secret_ref {
	const void *field;
	char *template_text;
} secret_ref;

typedef struct profile_impl {
	profile pub;
	secret_ref *secrets;
	size_t secret_count;
} profile_impl;

typedef struct loader {
	const char *name;            /* file name used in messages */
	profile_impl *impl;
	profile_issues *issues;      /* never NULL while loading */
	pl_errmsg first;             /* a syntax error from the YAML parser */
	int oom;
	int groups_valid;            /* groups decoded without errors, so names can be checked */
	struct sim_policy **before_compiled; /* parallel to before; entries may be NULL */
	struct sim_policy **after_compiled;
} loader;

/* Records an error (or warning) at node: "name:line:column: " or "--set k=v: ". */
void loader_error(loader *l, const ptree *node, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void loader_warning(loader *l, const ptree *node, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Like loader_error with an explicit error code for the first error. */
void loader_error_code(loader *l, pl_err code, const ptree *node, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Sets the struct fields that have no key: AWS quotas the simulator does not enforce. */
void schema_set_fixed_values(profile *p);

/* Sets every field of s in base to its default. */
void schema_set_defaults(loader *l, const section *s, void *base);

/*
 * Decodes map into base by the table s: checks for unknown and duplicate
 * keys (suggesting the nearest known key) and decodes every known key but
 * the CUSTOM ones. path prefixes key names in messages ("groups.keep").
 */
void schema_decode(loader *l, const section *s, const char *path, const ptree *map, void *base);

/*
 * Rejects a --set value that replaces a whole map (a section such as fleet)
 * and an empty --set value for a key the loader decodes itself (groups,
 * expect, shares), which would otherwise fall back to the default. Returns 0
 * after reporting it, 1 when value may be decoded.
 */
int schema_check_override(loader *l, const field *f, const char *where, const ptree *value);

/* Finds a field of s by key, or NULL. */
const field *schema_find(const section *s, const char *key);

/* Calls fn for every key of every section as a dotted path ("probe.interval"). */
void schema_visit_keys(void (*fn)(void *ctx, const char *path, const field *f), void *ctx);

/* Formats a duration exactly, with the largest unit that divides it ("90s", "1500ms"). */
void schema_format_duration(int64_t ns, char *buf, size_t len);

/* Formats a rate as "50/s" (or "off" for 0). */
void schema_format_rate(double per_second, char *buf, size_t len);

/* Returns the name of enum value v of field f, or "?". */
const char *schema_enum_name(const field *f, int v);

/* Stores a copy of a string field's env template for the writer. */
void loader_remember_secret(loader *l, const void *field_address, const char *template_text);

/* Returns the template remembered for field_address, or NULL. */
const char *profile_secret_template(const profile *p, const void *field_address);

/* Decodes "groups" and turns shares into device counts. */
void groups_decode(loader *l, const ptree *groups);

/* Decodes "policies", reads each document and compiles it with the policy engine. */
void policies_decode(loader *l, const ptree *policies, int skip_files);

/* Decodes "expect" and parses each expectation. */
void expectations_decode(loader *l, const ptree *expect);

/* Frees the parsed form of x (not its text). */
void expectation_free_parsed(profile_expectation *x);

/* Writes the SHA-256 of data as 64 lowercase hex digits and a NUL. */
void profile_sha256_hex(const void *data, size_t len, char out[65]);

/* Reads a whole file of at most max bytes into a NUL-terminated malloc'd buffer. */
pl_err profile_read_file(const char *path, size_t max, char **out, size_t *len, pl_errmsg *e);

/*
 * Checks with the policy engine that the before policies let devices
 * connect and subscribe, and that the swap opens (grant) or closes (revoke)
 * the probe's path for the first device of every group.
 */
void policy_effect_check(loader *l, const ptree *root);

/* Cross-field checks on a decoded profile; each failure becomes an error or warning. */
void profile_validate(loader *l, const ptree *root);

#endif
