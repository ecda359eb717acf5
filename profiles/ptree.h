/*
 * The profile loader's YAML tree (internal to profiles/): every node keeps
 * where it came from, either a line and column in the profile file or the
 * "--set key=value" override that produced it, so that every error can
 * point at its source. Built with libyaml's document API.
 */
#ifndef PL_PTREE_H
#define PL_PTREE_H

#include <stddef.h>

#include "common/error.h"

typedef enum ptree_type {
	PTREE_SCALAR = 0,
	PTREE_MAP,
	PTREE_SEQ,
} ptree_type;

typedef struct ptree ptree;

struct ptree {
	ptree_type type;
	char *value;            /* scalars: the text after ${env:NAME} substitution */
	char *template_text;    /* scalars with ${env:...}: the text as written, else NULL */
	int plain;              /* scalar written without quotes (so "null", "~" mean null) */
	ptree **keys;           /* maps: key scalars, parallel to items */
	ptree **items;          /* maps: values; sequences: elements */
	size_t count;
	unsigned line;          /* 1-based; 0 for nodes made by an override */
	unsigned column;
	const char *origin;     /* the override text ("probe.interval=1s") or NULL for the file */
	int override_value;     /* the value of a --set override, not a map made on its path */
};

/*
 * Parses YAML text (one document) into *out. An empty document gives an
 * empty map. On a syntax error returns PL_ERR_PARSE with
 * "name:line:column: ..." in e.
 */
pl_err ptree_parse(ptree **out, const char *text, size_t len, const char *name, pl_errmsg *e);

void ptree_free(ptree *t);

/* Returns the value of key in map t, or NULL (also when t is not a map). */
ptree *ptree_get(const ptree *t, const char *key);

/*
 * Returns the node at a dotted path ("probe.topic", "groups.keep.share"),
 * where a segment picks a sequence element by its "name" or index, or NULL.
 */
const ptree *ptree_find(const ptree *root, const char *path);

/* Returns nonzero for a plain null scalar: "", "~", "null", "Null", "NULL". */
int ptree_is_null(const ptree *t);

/*
 * Applies one "key=value" override to root. The key is a dotted path; a
 * path segment addresses a sequence element by its "name" value or by a
 * 0-based index. The value is parsed as YAML (so "[a, b]" is a list).
 * Missing maps on the path are created. Errors are "--set key=value: ...".
 */
pl_err ptree_apply_override(ptree *root, const char *override, pl_errmsg *e);

/*
 * Replaces every "${env:NAME}" in scalars with the environment variable's
 * value and keeps the original text in template_text; "$${" stands for a
 * literal "${". Calls on_error with the node and its dotted key path for
 * each unset variable and returns the number of errors.
 */
size_t ptree_substitute_env(ptree *root,
			    void (*on_error)(void *ctx, const ptree *node, const char *path,
					     const char *message),
			    void *ctx);

#endif
