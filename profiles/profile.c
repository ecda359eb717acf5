/*
 * Profile loading: YAML text -> tree -> overrides -> ${env:...} -> decoded
 * struct -> groups, policies, expectations -> cross-field checks -> hash.
 * Every stage records its errors and the loader goes on, so that one run of
 * "policylag validate" lists every problem it can find.
 */
#include "profiles/profile.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "profiles/internal.h"
#include "simulator/policy.h"

/* Profiles are small; anything bigger is a wrong path. */
#define PROFILE_MAX_BYTES (1024 * 1024)

/* Appends a zeroed issue to issues, or returns NULL when out of memory. */
static profile_issue *new_issue(profile_issues *issues)
{
	profile_issue *issue;

	if (issues->count == issues->capacity) {
		size_t capacity = issues->capacity ? issues->capacity * 2 : 8;
		profile_issue *items = realloc(issues->items, capacity * sizeof(*items));

		if (items == NULL)
			return NULL;
		issues->items = items;
		issues->capacity = capacity;
	}
	issue = &issues->items[issues->count++];
	memset(issue, 0, sizeof(*issue));
	return issue;
}

/* Records an error whose message already has its position (syntax errors, unreadable files). */
static void add_plain_error(profile_issues *issues, pl_err code, const char *message)
{
	profile_issue *issue = new_issue(issues);

	if (issue == NULL)
		return;
	issue->severity = PROFILE_SEVERITY_ERROR;
	issue->code = code;
	snprintf(issue->message, sizeof(issue->message), "%s", message);
	issues->errors++;
}

static void add_issue(loader *l, profile_severity severity, pl_err code, const ptree *node,
		      const char *fmt, va_list ap)
{
	profile_issues *issues = l->issues;
	profile_issue *issue = new_issue(issues);
	char text[PL_ERRMSG_MAX];

	if (issue == NULL) {
		l->oom = 1;
		return;
	}
	issue->severity = severity;
	issue->code = code;
	vsnprintf(text, sizeof(text), fmt, ap);
	if (node == NULL)
		snprintf(issue->message, sizeof(issue->message), "%s: %s", l->name, text);
	else if (node->origin != NULL)
		snprintf(issue->message, sizeof(issue->message), "--set %s: %s", node->origin, text);
	else
		snprintf(issue->message, sizeof(issue->message), "%s:%u:%u: %s", l->name, node->line,
			 node->column, text);
	if (node != NULL && node->origin == NULL) {
		issue->pos.line = node->line;
		issue->pos.column = node->column;
	}
	if (severity == PROFILE_SEVERITY_WARNING) {
		issues->warnings++;
		return;
	}
	issues->errors++;
}

void loader_error(loader *l, const ptree *node, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	add_issue(l, PROFILE_SEVERITY_ERROR, PL_ERR_INVALID, node, fmt, ap);
	va_end(ap);
}

void loader_error_code(loader *l, pl_err code, const ptree *node, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	add_issue(l, PROFILE_SEVERITY_ERROR, code, node, fmt, ap);
	va_end(ap);
}

void loader_warning(loader *l, const ptree *node, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	add_issue(l, PROFILE_SEVERITY_WARNING, PL_OK, node, fmt, ap);
	va_end(ap);
}

void profile_issues_clear(profile_issues *issues)
{
	if (issues == NULL)
		return;
	free(issues->items);
	memset(issues, 0, sizeof(*issues));
}

void loader_remember_secret(loader *l, const void *field_address, const char *template_text)
{
	profile_impl *impl = l->impl;
	secret_ref *refs;

	for (size_t i = 0; i < impl->secret_count; i++) {
		if (impl->secrets[i].field == field_address) {
			char *copy = strdup(template_text);

			if (copy == NULL) {
				l->oom = 1;
				return;
			}
			free(impl->secrets[i].template_text);
			impl->secrets[i].template_text = copy;
			return;
		}
	}
	refs = realloc(impl->secrets, (impl->secret_count + 1) * sizeof(*refs));
	if (refs == NULL) {
		l->oom = 1;
		return;
	}
	impl->secrets = refs;
	refs[impl->secret_count].field = field_address;
	refs[impl->secret_count].template_text = strdup(template_text);
	if (refs[impl->secret_count].template_text == NULL) {
		l->oom = 1;
		return;
	}
	impl->secret_count++;
}

const char *profile_secret_template(const profile *p, const void *field_address)
{
	const profile_impl *impl = (const profile_impl *)p;

	for (size_t i = 0; i < impl->secret_count; i++) {
		if (impl->secrets[i].field == field_address)
			return impl->secrets[i].template_text;
	}
	return NULL;
}

static void free_strings_of(const section *s, void *base)
{
	for (size_t i = 0; i < s->count; i++) {
		const field *f = &s->fields[i];
		char *slot = (char *)base + f->offset;

		switch (f->type) {
		case FIELD_STRING:
		case FIELD_NAME:
		case FIELD_SECRET:
		case FIELD_PATH:
			free(*(char **)slot);
			*(char **)slot = NULL;
			break;
		case FIELD_SECTION:
			if (f->offset != 0)
				free_strings_of(f->section, slot);
			break;
		default:
			break;
		}
	}
}

static void free_policies(profile_policy *policies, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		free(policies[i].name);
		free(policies[i].path);
		free(policies[i].document);
	}
	free(policies);
}

void profile_free(profile *p)
{
	profile_impl *impl = (profile_impl *)p;

	if (p == NULL)
		return;
	free_strings_of(&schema_root, p);
	for (size_t i = 0; i < p->group_count; i++) {
		free_strings_of(&schema_group, &p->groups[i]);
		free(p->groups[i].share);
	}
	free(p->groups);
	free_policies(p->before, p->before_count);
	free_policies(p->after, p->after_count);
	for (size_t i = 0; i < p->expect_count; i++) {
		expectation_free_parsed(&p->expect[i]);
		free(p->expect[i].text);
	}
	free(p->expect);
	for (size_t i = 0; i < impl->secret_count; i++)
		free(impl->secrets[i].template_text);
	free(impl->secrets);
	free(p->path);
	free(p->dir);
	free(impl);
}

static void record_env_error(void *ctx, const ptree *node, const char *path,
			     const char *message)
{
	loader_error(ctx, node, "%s: %s", path, message);
}

/* Sort key: file positions in order, overrides and whole-profile issues last. */
static unsigned long issue_key(const profile_issue *issue)
{
	if (issue->pos.line == 0)
		return ULONG_MAX;
	return (unsigned long)issue->pos.line * 100000UL + issue->pos.column;
}

/* Sorts issues by position with a stable insertion sort, so ties keep discovery order. */
static void sort_issues(profile_issues *issues, size_t from)
{
	for (size_t i = from + 1; i < issues->count; i++) {
		profile_issue moving = issues->items[i];
		size_t j = i;

		while (j > from && issue_key(&issues->items[j - 1]) > issue_key(&moving)) {
			issues->items[j] = issues->items[j - 1];
			j--;
		}
		issues->items[j] = moving;
	}
}

static pl_err set_paths(profile *p, const char *name, const char *base_dir)
{
	char cwd[PATH_MAX];

	p->path = strdup(name);
	if (base_dir == NULL) {
		if (getcwd(cwd, sizeof(cwd)) == NULL)
			return PL_ERR_IO;
		base_dir = cwd;
	}
	p->dir = strdup(base_dir);
	return p->path && p->dir ? PL_OK : PL_ERR_NOMEM;
}

/* Names the profile after its file ("profiles/revoke.yaml" -> "revoke") when no name is given. */
static void default_name(loader *l, profile *p)
{
	const char *base = strrchr(p->path, '/');
	const char *dot;
	size_t len;

	if (p->name != NULL && p->name[0] != '\0')
		return;
	base = base ? base + 1 : p->path;
	dot = strrchr(base, '.');
	len = dot && dot != base ? (size_t)(dot - base) : strlen(base);
	free(p->name);
	p->name = strndup(base, len);
	if (p->name == NULL)
		l->oom = 1;
}

/* Runs every stage on the parsed tree; errors accumulate in l. */
static void resolve(loader *l, ptree *root, const profile_load_opts *opts)
{
	profile *p = &l->impl->pub;
	size_t errors_before = l->issues->errors;

	for (size_t i = 0; i < opts->override_count; i++) {
		pl_errmsg e;

		if (ptree_apply_override(root, opts->overrides[i], &e) == PL_OK)
			continue;
		add_plain_error(l->issues, PL_ERR_INVALID, e.msg);
	}
	ptree_substitute_env(root, record_env_error, l);
	schema_set_defaults(l, &schema_root, p);
	schema_set_fixed_values(p);
	schema_decode(l, &schema_root, "", root, p);
	default_name(l, p);
	groups_decode(l, ptree_get(root, "groups"));
	policies_decode(l, ptree_get(root, "policies"), opts->skip_policy_files);
	expectations_decode(l, ptree_get(root, "expect"));
	if (l->issues->errors == errors_before)
		profile_validate(l, root);
}

static void free_compiled(sim_policy **compiled, size_t count)
{
	for (size_t i = 0; compiled != NULL && i < count; i++)
		sim_policy_free(compiled[i]);
	free(compiled);
}

/* Moves the first error into e and returns the load's result code. */
static pl_err finish(loader *l, size_t first_issue, pl_errmsg *e)
{
	if (l->oom) {
		return pl_errmsg_set(e, PL_ERR_NOMEM, "%s: out of memory while loading the profile",
				     l->name);
	}
	for (size_t i = first_issue; i < l->issues->count; i++) {
		const profile_issue *issue = &l->issues->items[i];

		if (issue->severity == PROFILE_SEVERITY_ERROR)
			return pl_errmsg_set(e, issue->code ? issue->code : PL_ERR_INVALID, "%s",
					     issue->message);
	}
	return PL_OK;
}

pl_err profile_load_text(profile **out, const char *text, size_t len, const char *name,
			 const char *base_dir, const profile_load_opts *opts, pl_errmsg *e)
{
	static const profile_load_opts no_opts;
	profile_issues own_issues = { 0 };
	loader l = { 0 };
	ptree *root = NULL;
	size_t first_issue;
	pl_err rc;

	*out = NULL;
	pl_errmsg_clear(e);
	opts = opts ? opts : &no_opts;
	l.name = name;
	l.issues = opts->issues ? opts->issues : &own_issues;
	first_issue = l.issues->count;
	l.impl = calloc(1, sizeof(*l.impl));
	if (l.impl == NULL)
		return pl_errmsg_set(e, PL_ERR_NOMEM, "%s: out of memory", name);
	rc = set_paths(&l.impl->pub, name, base_dir);
	if (rc != PL_OK) {
		pl_errmsg_set(e, rc, "%s: cannot determine the current folder: %s", name,
			      strerror(errno));
		goto free_profile;
	}
	rc = ptree_parse(&root, text, len, name, &l.first);
	if (rc != PL_OK) {
		add_plain_error(l.issues, rc, l.first.msg);
		pl_errmsg_set(e, rc, "%s", l.first.msg);
		goto free_profile;
	}
	resolve(&l, root, opts);
	sort_issues(l.issues, first_issue);
	rc = finish(&l, first_issue, e);
	free_compiled(l.before_compiled, l.impl->pub.before_count);
	free_compiled(l.after_compiled, l.impl->pub.after_count);
	ptree_free(root);
	if (rc == PL_OK) {
		profile_hash(&l.impl->pub, l.impl->pub.hash);
		*out = &l.impl->pub;
		l.impl = NULL;
	}
free_profile:
	profile_free(l.impl ? &l.impl->pub : NULL);
	profile_issues_clear(&own_issues);
	return rc;
}

/* Reads a whole file (at most max bytes) into a NUL-terminated buffer. */
pl_err profile_read_file(const char *path, size_t max, char **out, size_t *len, pl_errmsg *e)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n;
	pl_err rc = PL_OK;

	if (f == NULL)
		return pl_errmsg_set(e, errno == ENOENT ? PL_ERR_NOT_FOUND : PL_ERR_IO,
				     "cannot open '%s': %s", path, strerror(errno));
	buf = malloc(max + 1);
	if (buf == NULL) {
		rc = PL_ERR_NOMEM;
		goto close_file;
	}
	n = fread(buf, 1, max + 1, f);
	if (ferror(f)) {
		rc = pl_errmsg_set(e, PL_ERR_IO, "cannot read '%s': %s", path, strerror(errno));
		goto close_file;
	}
	if (n > max) {
		rc = pl_errmsg_set(e, PL_ERR_LIMIT, "cannot read '%s': larger than %zu bytes", path,
				   max);
		goto close_file;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	buf = NULL;
close_file:
	free(buf);
	fclose(f);
	return rc;
}

/* Returns the absolute folder of path, so that resolved policy paths are absolute. */
static char *folder_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *folder;
	char *absolute;

	if (slash == NULL)
		folder = strdup(".");
	else if (slash == path)
		folder = strdup("/");
	else
		folder = strndup(path, (size_t)(slash - path));
	if (folder == NULL)
		return NULL;
	absolute = realpath(folder, NULL);
	if (absolute == NULL)
		return folder;
	free(folder);
	return absolute;
}

pl_err profile_load(profile **out, const char *path, const profile_load_opts *opts,
		    pl_errmsg *e)
{
	char *text = NULL;
	char *dir;
	size_t len = 0;
	pl_err rc;

	*out = NULL;
	rc = profile_read_file(path, PROFILE_MAX_BYTES, &text, &len, e);
	if (rc != PL_OK) {
		if (opts != NULL && opts->issues != NULL)
			add_plain_error(opts->issues, PL_ERR_IO, e ? e->msg : "cannot read the profile");
		return rc == PL_ERR_NOT_FOUND ? PL_ERR_IO : rc;
	}
	dir = folder_of(path);
	if (dir == NULL) {
		free(text);
		return pl_errmsg_set(e, PL_ERR_NOMEM, "%s: out of memory", path);
	}
	rc = profile_load_text(out, text, len, path, dir, opts, e);
	free(dir);
	free(text);
	return rc;
}

const profile_group *profile_find_group(const profile *p, const char *name)
{
	for (size_t i = 0; i < p->group_count; i++) {
		if (strcmp(p->groups[i].name, name) == 0)
			return &p->groups[i];
	}
	return NULL;
}

const profile_group *profile_group_of(const profile *p, int64_t index)
{
	for (size_t i = 0; i < p->group_count; i++) {
		const profile_group *g = &p->groups[i];

		if (index >= g->first_device && index < g->first_device + g->devices)
			return g;
	}
	return NULL;
}

pl_err profile_device_name(const profile *p, int64_t index, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s%06lld", p->fleet.client_id_prefix, (long long)index);

	if (n < 0 || (size_t)n >= len)
		return PL_ERR_RANGE;
	return PL_OK;
}

pl_err profile_client_id(const profile *p, int64_t index, int64_t attempt, char *buf,
			 size_t len)
{
	const profile_group *g = profile_group_of(p, index);
	int n;

	if (g == NULL)
		return PL_ERR_RANGE;
	if (g->strategy != PROFILE_STRATEGY_RECONNECT_PER_ATTEMPT ||
	    g->client_id_scheme != PROFILE_CLIENT_ID_FRESH_PER_ATTEMPT || attempt <= 1)
		return profile_device_name(p, index, buf, len);
	/* The form workers/device.c connects with. */
	n = snprintf(buf, len, "%s%06lld-a%lld", p->fleet.client_id_prefix, (long long)index,
		     (long long)attempt);
	if (n < 0 || (size_t)n >= len)
		return PL_ERR_RANGE;
	return PL_OK;
}

pl_err profile_expand_topic(const char *template_text, const char *device, const char *client_id,
			    char *buf, size_t len)
{
	size_t used = 0;

	for (const char *s = template_text; *s != '\0';) {
		const char *insert = NULL;
		size_t skip = 1;
		size_t n;

		if (strncmp(s, "${client_id}", 12) == 0) {
			insert = client_id;
			skip = 12;
		} else if (strncmp(s, "${device}", 9) == 0) {
			insert = device;
			skip = 9;
		}
		n = insert ? strlen(insert) : 1;
		if (used + n >= len)
			return PL_ERR_RANGE;
		memcpy(buf + used, insert ? insert : s, n);
		used += n;
		s += skip;
	}
	if (len == 0)
		return PL_ERR_RANGE;
	buf[used] = '\0';
	return PL_OK;
}

const char *profile_strategy_name(profile_strategy s)
{
	return s == PROFILE_STRATEGY_RECONNECT_PER_ATTEMPT ? "reconnect-per-attempt"
							   : "keep-connection";
}

const char *profile_swap_kind_name(profile_swap_kind k)
{
	switch (k) {
	case PROFILE_SWAP_ATTACH_DETACH:
		return "attach-detach";
	case PROFILE_SWAP_POLICY_VERSION:
		return "policy-version";
	case PROFILE_SWAP_TRIGGER_TOPIC:
		return "trigger-topic";
	}
	return "?";
}

const char *profile_target_kind_name(profile_target_kind k)
{
	return k == PROFILE_TARGET_AWS ? "aws" : "simulator";
}
