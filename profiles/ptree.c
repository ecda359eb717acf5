#include "profiles/ptree.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* Bounds the tree that aliases can blow up ("billion laughs"). */
#define PTREE_MAX_NODES 200000
#define PTREE_MAX_DEPTH 64

typedef struct build_ctx {
	yaml_document_t *doc;
	size_t nodes;
	const char *name;
	pl_errmsg *e;
} build_ctx;

static ptree *node_new(ptree_type type, unsigned line, unsigned column, const char *origin)
{
	ptree *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	t->type = type;
	t->line = line;
	t->column = column;
	t->origin = origin;
	return t;
}

void ptree_free(ptree *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->count; i++) {
		if (t->keys != NULL)
			ptree_free(t->keys[i]);
		ptree_free(t->items[i]);
	}
	free(t->keys);
	free(t->items);
	free(t->value);
	free(t->template_text);
	free(t);
}

static pl_err append_item(ptree *t, ptree *key, ptree *item)
{
	ptree **items = realloc(t->items, (t->count + 1) * sizeof(*items));

	if (items == NULL)
		return PL_ERR_NOMEM;
	t->items = items;
	if (t->type == PTREE_MAP) {
		ptree **keys = realloc(t->keys, (t->count + 1) * sizeof(*keys));

		if (keys == NULL)
			return PL_ERR_NOMEM;
		t->keys = keys;
		t->keys[t->count] = key;
	}
	t->items[t->count++] = item;
	return PL_OK;
}

static ptree *build_node(build_ctx *c, yaml_node_t *n, int depth);

/* Moves the entries of one "<<" source map into t, skipping keys t already has. */
static int merge_one(ptree *t, ptree *source)
{
	for (size_t i = 0; i < source->count; i++) {
		if (ptree_get(t, source->keys[i]->value) != NULL)
			continue;
		if (append_item(t, source->keys[i], source->items[i]) != PL_OK)
			return -1;
		source->keys[i] = NULL;
		source->items[i] = NULL;
	}
	return 0;
}

/*
 * Applies YAML merge keys ("<<: *defaults" or "<<: [*a, *b]"): the merged
 * maps' keys are added unless the map sets them itself, and earlier
 * sources win over later ones.
 */
static int merge_keys(build_ctx *c, ptree *t)
{
	size_t i = 0;

	while (i < t->count) {
		ptree *key = t->keys[i];
		ptree *value = t->items[i];
		int failed = 0;

		if (!key->plain || strcmp(key->value, "<<") != 0) {
			i++;
			continue;
		}
		/* Take the entry out first, so that its own keys do not block the merge. */
		memmove(&t->keys[i], &t->keys[i + 1], (t->count - i - 1) * sizeof(*t->keys));
		memmove(&t->items[i], &t->items[i + 1], (t->count - i - 1) * sizeof(*t->items));
		t->count--;
		if (value->type == PTREE_MAP) {
			failed = merge_one(t, value);
		} else if (value->type == PTREE_SEQ) {
			for (size_t j = 0; j < value->count && !failed; j++)
				failed = value->items[j]->type != PTREE_MAP ||
					 merge_one(t, value->items[j]) != 0;
		} else {
			failed = 1;
		}
		if (failed && c->e != NULL && c->e->msg[0] == '\0')
			pl_errmsg_set(c->e, PL_ERR_PARSE, "%s:%u:%u: invalid merge key: '<<' takes a map or a list of maps",
				      c->name, key->line, key->column);
		ptree_free(key);
		ptree_free(value);
		if (failed)
			return -1;
	}
	return 0;
}

static pl_err build_error(build_ctx *c, const yaml_node_t *n, pl_err code, const char *why)
{
	return pl_errmsg_set(c->e, code, "%s:%zu:%zu: %s", c->name, n->start_mark.line + 1,
			     n->start_mark.column + 1, why);
}

static ptree *build_scalar(const yaml_node_t *n, unsigned line, unsigned column)
{
	ptree *t = node_new(PTREE_SCALAR, line, column, NULL);

	if (t == NULL)
		return NULL;
	t->value = strndup((const char *)n->data.scalar.value, n->data.scalar.length);
	if (t->value == NULL) {
		free(t);
		return NULL;
	}
	t->plain = n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
	return t;
}

static int build_children(build_ctx *c, ptree *t, yaml_node_t *n, int depth)
{
	if (n->type == YAML_SEQUENCE_NODE) {
		for (yaml_node_item_t *it = n->data.sequence.items.start;
		     it < n->data.sequence.items.top; it++) {
			ptree *item = build_node(c, yaml_document_get_node(c->doc, *it), depth + 1);

			if (item == NULL || append_item(t, NULL, item) != PL_OK) {
				ptree_free(item);
				return -1;
			}
		}
		return 0;
	}
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *kn = yaml_document_get_node(c->doc, p->key);
		ptree *key;
		ptree *value;

		if (kn->type != YAML_SCALAR_NODE) {
			build_error(c, kn, PL_ERR_PARSE, "invalid key: expected a plain name, not a list or map");
			return -1;
		}
		key = build_node(c, kn, depth + 1);
		value = key ? build_node(c, yaml_document_get_node(c->doc, p->value), depth + 1) : NULL;
		if (value == NULL || append_item(t, key, value) != PL_OK) {
			ptree_free(key);
			ptree_free(value);
			return -1;
		}
	}
	return merge_keys(c, t);
}

static ptree *build_node(build_ctx *c, yaml_node_t *n, int depth)
{
	unsigned line = (unsigned)n->start_mark.line + 1;
	unsigned column = (unsigned)n->start_mark.column + 1;
	ptree *t;

	if (++c->nodes > PTREE_MAX_NODES || depth > PTREE_MAX_DEPTH) {
		build_error(c, n, PL_ERR_LIMIT, "document too large or too deeply nested");
		return NULL;
	}
	if (n->type == YAML_SCALAR_NODE)
		return build_scalar(n, line, column);
	t = node_new(n->type == YAML_SEQUENCE_NODE ? PTREE_SEQ : PTREE_MAP, line, column, NULL);
	if (t == NULL)
		return NULL;
	if (build_children(c, t, n, depth) != 0) {
		ptree_free(t);
		return NULL;
	}
	return t;
}

static pl_err syntax_error(const yaml_parser_t *p, const char *name, pl_errmsg *e)
{
	const yaml_mark_t *m = &p->problem_mark;

	if (p->error == YAML_MEMORY_ERROR)
		return pl_errmsg_set(e, PL_ERR_NOMEM, "%s: out of memory", name);
	if (p->context != NULL)
		return pl_errmsg_set(e, PL_ERR_PARSE, "%s:%zu:%zu: invalid YAML: %s %s", name,
				     m->line + 1, m->column + 1, p->problem, p->context);
	return pl_errmsg_set(e, PL_ERR_PARSE, "%s:%zu:%zu: invalid YAML: %s", name, m->line + 1,
			     m->column + 1, p->problem ? p->problem : "syntax error");
}

/*
 * Rejects collections nested deeper than build_node accepts before the whole
 * document is loaded. libyaml's scanner slows down quadratically or worse
 * with flow nesting ("[[[[..."), so a 600 kB profile of brackets would keep
 * yaml_parser_load busy for minutes. Stopping at the first collection past
 * the limit keeps the cost bounded. A syntax error is left to load_document.
 */
static pl_err check_nesting(const char *text, size_t len, const char *name, pl_errmsg *e)
{
	yaml_parser_t parser;
	yaml_event_t event;
	int depth = 0, done = 0;
	pl_err rc = PL_OK;

	if (!yaml_parser_initialize(&parser))
		return pl_errmsg_set(e, PL_ERR_NOMEM, "%s: out of memory", name);
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	while (!done && rc == PL_OK && yaml_parser_parse(&parser, &event)) {
		if (event.type == YAML_SEQUENCE_START_EVENT || event.type == YAML_MAPPING_START_EVENT)
			depth++;
		else if (event.type == YAML_SEQUENCE_END_EVENT || event.type == YAML_MAPPING_END_EVENT)
			depth--;
		done = event.type == YAML_STREAM_END_EVENT;
		/* The root collection is depth 1 here and depth 0 in build_node. */
		if (depth > PTREE_MAX_DEPTH + 1)
			rc = pl_errmsg_set(e, PL_ERR_LIMIT,
					   "%s:%zu:%zu: document too large or too deeply nested", name,
					   event.start_mark.line + 1, event.start_mark.column + 1);
		yaml_event_delete(&event);
	}
	yaml_parser_delete(&parser);
	return rc;
}

/* Loads the first document; a second document in the stream is an error. */
static pl_err load_document(yaml_parser_t *parser, yaml_document_t *doc, const char *name,
			    pl_errmsg *e)
{
	yaml_document_t extra;
	yaml_node_t *extra_root;

	if (!yaml_parser_load(parser, doc))
		return syntax_error(parser, name, e);
	if (yaml_document_get_root_node(doc) == NULL)
		return PL_OK;
	if (!yaml_parser_load(parser, &extra)) {
		yaml_document_delete(doc);
		return syntax_error(parser, name, e);
	}
	extra_root = yaml_document_get_root_node(&extra);
	if (extra_root != NULL) {
		pl_err rc = pl_errmsg_set(e, PL_ERR_PARSE,
					  "%s:%zu:%zu: invalid YAML: a profile is one document, found a second one",
					  name, extra_root->start_mark.line + 1,
					  extra_root->start_mark.column + 1);

		yaml_document_delete(&extra);
		yaml_document_delete(doc);
		return rc;
	}
	yaml_document_delete(&extra);
	return PL_OK;
}

pl_err ptree_parse(ptree **out, const char *text, size_t len, const char *name, pl_errmsg *e)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	yaml_node_t *root;
	build_ctx c = { &doc, 0, name, e };
	pl_err rc;

	*out = NULL;
	pl_errmsg_clear(e);
	rc = check_nesting(text, len, name, e);
	if (rc != PL_OK)
		return rc;
	if (!yaml_parser_initialize(&parser))
		return pl_errmsg_set(e, PL_ERR_NOMEM, "%s: out of memory", name);
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	rc = load_document(&parser, &doc, name, e);
	if (rc != PL_OK)
		goto delete_parser;
	root = yaml_document_get_root_node(&doc);
	if (root == NULL)
		*out = node_new(PTREE_MAP, 1, 1, NULL);
	else
		*out = build_node(&c, root, 0);
	if (*out == NULL && e != NULL && e->msg[0] == '\0')
		pl_errmsg_set(e, PL_ERR_NOMEM, "%s: out of memory", name);
	if (*out == NULL)
		rc = root != NULL && c.nodes > PTREE_MAX_NODES ? PL_ERR_LIMIT : PL_ERR_PARSE;
	yaml_document_delete(&doc);
delete_parser:
	yaml_parser_delete(&parser);
	return rc;
}

ptree *ptree_get(const ptree *t, const char *key)
{
	if (t == NULL || t->type != PTREE_MAP)
		return NULL;
	for (size_t i = 0; i < t->count; i++) {
		if (strcmp(t->keys[i]->value, key) == 0)
			return t->items[i];
	}
	return NULL;
}

int ptree_is_null(const ptree *t)
{
	static const char *const nulls[] = { "", "~", "null", "Null", "NULL" };

	if (t == NULL || t->type != PTREE_SCALAR || !t->plain)
		return 0;
	for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++) {
		if (strcmp(t->value, nulls[i]) == 0)
			return 1;
	}
	return 0;
}

/* Marks every node of t as coming from override. */
static void set_origin(ptree *t, const char *origin)
{
	t->origin = origin;
	t->line = 0;
	t->column = 0;
	for (size_t i = 0; i < t->count; i++) {
		if (t->keys != NULL)
			set_origin(t->keys[i], origin);
		set_origin(t->items[i], origin);
	}
}

static ptree *scalar_new(const char *text, const char *origin)
{
	ptree *t = node_new(PTREE_SCALAR, 0, 0, origin);

	if (t == NULL)
		return NULL;
	t->value = strdup(text);
	t->plain = 1;
	if (t->value == NULL) {
		free(t);
		return NULL;
	}
	return t;
}

/* Finds the element of sequence t named segment (by "name" or by index). */
static ptree *find_element(ptree *t, const char *segment)
{
	char *end;
	unsigned long index;

	for (size_t i = 0; i < t->count; i++) {
		const ptree *name = ptree_get(t->items[i], "name");

		if (name != NULL && name->type == PTREE_SCALAR && strcmp(name->value, segment) == 0)
			return t->items[i];
	}
	if (segment[0] < '0' || segment[0] > '9')
		return NULL;
	index = strtoul(segment, &end, 10);
	if (*end != '\0' || index >= t->count)
		return NULL;
	return t->items[index];
}

const ptree *ptree_find(const ptree *root, const char *path)
{
	char segment[128];
	const ptree *t = root;

	while (t != NULL && *path != '\0') {
		const char *dot = strchr(path, '.');
		size_t n = dot ? (size_t)(dot - path) : strlen(path);

		if (n >= sizeof(segment))
			return NULL;
		memcpy(segment, path, n);
		segment[n] = '\0';
		if (t->type == PTREE_SEQ)
			t = find_element((ptree *)t, segment);
		else
			t = ptree_get(t, segment);
		path += n + (dot ? 1 : 0);
	}
	return t;
}

/* Replaces or adds key in map t with value (which t then owns). */
static pl_err map_put(ptree *t, const char *key, ptree *value, const char *origin)
{
	ptree *key_node;

	for (size_t i = 0; i < t->count; i++) {
		if (strcmp(t->keys[i]->value, key) == 0) {
			ptree_free(t->items[i]);
			t->items[i] = value;
			return PL_OK;
		}
	}
	key_node = scalar_new(key, origin);
	if (key_node == NULL || append_item(t, key_node, value) != PL_OK) {
		ptree_free(key_node);
		return PL_ERR_NOMEM;
	}
	return PL_OK;
}

/* Parses an override's value as a YAML node. */
static pl_err parse_override_value(ptree **out, const char *value, const char *override,
				   pl_errmsg *e)
{
	pl_errmsg inner = { "" };
	pl_err rc;

	if (value[0] == '\0') {
		*out = scalar_new("", override);
		if (*out == NULL)
			return PL_ERR_NOMEM;
		(*out)->override_value = 1;
		return PL_OK;
	}
	rc = ptree_parse(out, value, strlen(value), "value", &inner);
	if (rc != PL_OK)
		return pl_errmsg_set(e, rc, "--set %s: %s", override, inner.msg);
	set_origin(*out, override);
	(*out)->override_value = 1;
	return PL_OK;
}

/* Walks to the parent of the last path segment, creating maps on the way. */
static pl_err walk_path(ptree *root, char *path, const char *override, ptree **parent,
			char **last, pl_errmsg *e)
{
	ptree *t = root;
	char *segment = path;
	char *dot;

	while ((dot = strchr(segment, '.')) != NULL) {
		ptree *next;

		*dot = '\0';
		if (segment[0] == '\0')
			return pl_errmsg_set(e, PL_ERR_INVALID, "--set %s: empty key segment", override);
		if (t->type == PTREE_SCALAR)
			return pl_errmsg_set(e, PL_ERR_INVALID,
					     "--set %s: cannot set a key below '%s', which is a single value",
					     override, t->value);
		if (t->type == PTREE_SEQ) {
			next = find_element(t, segment);
			if (next == NULL)
				return pl_errmsg_set(e, PL_ERR_NOT_FOUND,
						     "--set %s: no element named '%s' (use a name or an index from 0 to %zu)",
						     override, segment, t->count ? t->count - 1 : 0);
		} else {
			next = ptree_get(t, segment);
			if (next == NULL || next->type == PTREE_SCALAR) {
				next = node_new(PTREE_MAP, 0, 0, override);
				if (next == NULL || map_put(t, segment, next, override) != PL_OK)
					return PL_ERR_NOMEM;
			}
		}
		t = next;
		segment = dot + 1;
	}
	if (segment[0] == '\0')
		return pl_errmsg_set(e, PL_ERR_INVALID, "--set %s: empty key segment", override);
	if (t->type == PTREE_SCALAR)
		return pl_errmsg_set(e, PL_ERR_INVALID,
				     "--set %s: cannot set a key below '%s', which is a single value",
				     override, t->value);
	*parent = t;
	*last = segment;
	return PL_OK;
}

static pl_err put_value(ptree *parent, const char *key, ptree *value, const char *override,
			pl_errmsg *e)
{
	ptree *element;

	if (parent->type == PTREE_MAP)
		return map_put(parent, key, value, override);
	element = find_element(parent, key);
	if (element == NULL)
		return pl_errmsg_set(e, PL_ERR_NOT_FOUND,
				     "--set %s: no element named '%s' (use a name or an index from 0 to %zu)",
				     override, key, parent->count ? parent->count - 1 : 0);
	for (size_t i = 0; i < parent->count; i++) {
		if (parent->items[i] == element) {
			ptree_free(element);
			parent->items[i] = value;
			break;
		}
	}
	return PL_OK;
}

pl_err ptree_apply_override(ptree *root, const char *override, pl_errmsg *e)
{
	const char *eq = strchr(override, '=');
	char *path;
	char *last = NULL;
	ptree *parent = NULL;
	ptree *value = NULL;
	pl_err rc;

	if (eq == NULL || eq == override)
		return pl_errmsg_set(e, PL_ERR_INVALID,
				     "--set %s: expected KEY=VALUE, for example probe.interval=500ms",
				     override);
	path = strndup(override, (size_t)(eq - override));
	if (path == NULL)
		return PL_ERR_NOMEM;
	/* Reject empty segments before walk_path creates any map on the way. */
	if (path[0] == '.' || strstr(path, "..") != NULL || path[strlen(path) - 1] == '.') {
		rc = pl_errmsg_set(e, PL_ERR_INVALID, "--set %s: empty key segment", override);
		goto free_path;
	}
	rc = walk_path(root, path, override, &parent, &last, e);
	if (rc != PL_OK)
		goto free_path;
	rc = parse_override_value(&value, eq + 1, override, e);
	if (rc != PL_OK)
		goto free_path;
	rc = put_value(parent, last, value, override, e);
	if (rc != PL_OK)
		ptree_free(value);
free_path:
	free(path);
	return rc;
}

typedef struct env_ctx {
	void (*on_error)(void *ctx, const ptree *node, const char *path, const char *message);
	void *ctx;
	size_t errors;
	char path[256];  /* dotted key path of the node being substituted */
} env_ctx;

/* Appends n bytes to a growing buffer. */
static int buf_append(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
	if (*len + n + 1 > *cap) {
		size_t new_cap = (*len + n + 1) * 2;
		char *p = realloc(*buf, new_cap);

		if (p == NULL)
			return -1;
		*buf = p;
		*cap = new_cap;
	}
	memcpy(*buf + *len, s, n);
	*len += n;
	(*buf)[*len] = '\0';
	return 0;
}

/* Returns the length of the "${env:NAME}" reference at s, or 0 if s does not start with one. */
static size_t env_reference(const char *s, char *name, size_t name_len)
{
	const char *close;
	size_t n;

	if (strncmp(s, "${env:", 6) != 0)
		return 0;
	close = strchr(s + 6, '}');
	if (close == NULL)
		return 0;
	n = (size_t)(close - (s + 6));
	if (n == 0 || n >= name_len)
		return 0;
	memcpy(name, s + 6, n);
	name[n] = '\0';
	return (size_t)(close - s) + 1;
}

static void substitute_scalar(env_ctx *c, ptree *t)
{
	char *out = NULL;
	size_t len = 0;
	size_t cap = 0;
	int changed = 0;
	char name[256];
	char message[PL_ERRMSG_MAX];

	for (const char *s = t->value; *s != '\0';) {
		size_t ref = env_reference(s, name, sizeof(name));
		const char *value;

		if (strncmp(s, "$${", 3) == 0) {
			if (buf_append(&out, &len, &cap, "${", 2) != 0)
				goto oom;
			s += 3;
			changed = 1;
			continue;
		}
		if (ref == 0) {
			if (buf_append(&out, &len, &cap, s, 1) != 0)
				goto oom;
			s++;
			continue;
		}
		value = getenv(name);
		if (value == NULL) {
			snprintf(message, sizeof(message),
				 "environment variable '%s' is not set (referenced as ${env:%s})", name,
				 name);
			c->on_error(c->ctx, t, c->path, message);
			c->errors++;
			value = "";
		}
		if (buf_append(&out, &len, &cap, value, strlen(value)) != 0)
			goto oom;
		s += ref;
		changed = 1;
	}
	if (!changed) {
		free(out);
		return;
	}
	t->template_text = t->value;
	t->value = out ? out : strdup("");
	return;
oom:
	free(out);
	c->on_error(c->ctx, t, c->path, "out of memory while substituting environment variables");
	c->errors++;
}

static void substitute_tree(env_ctx *c, ptree *t)
{
	size_t len = strlen(c->path);

	if (t->type == PTREE_SCALAR) {
		substitute_scalar(c, t);
		return;
	}
	for (size_t i = 0; i < t->count; i++) {
		const ptree *name = t->type == PTREE_SEQ ? ptree_get(t->items[i], "name") : NULL;

		if (t->type == PTREE_MAP)
			snprintf(c->path + len, sizeof(c->path) - len, "%s%s", len ? "." : "",
				 t->keys[i]->value);
		else if (name != NULL && name->type == PTREE_SCALAR)
			snprintf(c->path + len, sizeof(c->path) - len, ".%s", name->value);
		else
			snprintf(c->path + len, sizeof(c->path) - len, ".%zu", i);
		substitute_tree(c, t->items[i]);
		c->path[len] = '\0';
	}
}

size_t ptree_substitute_env(ptree *root,
			    void (*on_error)(void *ctx, const ptree *node, const char *path,
					     const char *message),
			    void *ctx)
{
	env_ctx c = { on_error, ctx, 0, "" };

	substitute_tree(&c, root);
	return c.errors;
}
