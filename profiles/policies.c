/*
 * "policies": the AWS IoT policy documents attached before and after the
 * swap. Each entry is a path relative to the profile ("policies/a.json",
 * named "a") or a map {name, file, sha256}. Every document is read and
 * compiled with the simulator's policy engine while loading, so that a bad
 * document stops the run before anything connects.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "profiles/internal.h"
#include "simulator/policy.h"

/* Far above AWS's 2048-character limit; a bigger file is not a policy. */
#define POLICY_FILE_MAX (64 * 1024)

static int valid_policy_name(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > 128)
		return 0;
	for (const char *c = name; *c != '\0'; c++) {
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || strchr("+=,.@_-", *c) != NULL))
			return 0;
	}
	return 1;
}

/* "policies/seed-a.json" -> "seed-a". */
static char *name_from_file(const char *file)
{
	const char *base = strrchr(file, '/');
	const char *dot;

	base = base ? base + 1 : file;
	dot = strrchr(base, '.');
	if (dot == NULL || dot == base)
		return strdup(base);
	return strndup(base, (size_t)(dot - base));
}

static char *resolve_path(const char *dir, const char *file)
{
	char joined[PATH_MAX];
	char real[PATH_MAX];
	int n;

	if (file[0] == '/')
		n = snprintf(joined, sizeof(joined), "%s", file);
	else
		n = snprintf(joined, sizeof(joined), "%s/%s", dir, file);
	if (n < 0 || (size_t)n >= sizeof(joined))
		return NULL;
	if (realpath(joined, real) != NULL)
		return strdup(real);
	return strdup(joined);
}

/* The scalar entry's node, or the map entry's "file" value. */
static const ptree *entry_file_node(loader *l, const char *where, const ptree *entry)
{
	const ptree *file;

	if (entry->type == PTREE_SCALAR)
		return entry;
	if (entry->type != PTREE_MAP) {
		loader_error(l, entry, "%s: expected a file name or a map {name: ..., file: ...}", where);
		return NULL;
	}
	schema_decode(l, &schema_policy_entry, where, entry, NULL);
	file = ptree_get(entry, "file");
	if (file == NULL || file->type != PTREE_SCALAR || file->value[0] == '\0') {
		loader_error(l, entry, "%s: missing 'file': the path of the policy document", where);
		return NULL;
	}
	return file;
}

static void set_name(loader *l, const char *where, const ptree *entry, const ptree *file,
		     profile_policy *policy)
{
	const ptree *name = entry->type == PTREE_MAP ? ptree_get(entry, "name") : NULL;

	if (name != NULL && name->type == PTREE_SCALAR)
		policy->name = strdup(name->value);
	else
		policy->name = name_from_file(file->value);
	if (policy->name == NULL) {
		l->oom = 1;
		return;
	}
	if (!valid_policy_name(policy->name))
		loader_error(l, name ? name : file,
			     "%s: invalid policy name '%s': use 1 to 128 letters, digits and +=,.@_-%s",
			     where, policy->name,
			     name ? "" : " (the name comes from the file name; set 'name' to choose another)");
}

static void check_digest(loader *l, const char *where, const ptree *entry, profile_policy *policy)
{
	const ptree *expected = entry->type == PTREE_MAP ? ptree_get(entry, "sha256") : NULL;

	if (expected == NULL || ptree_is_null(expected))
		return;
	if (expected->type != PTREE_SCALAR || strcmp(expected->value, policy->sha256) != 0)
		loader_error(l, expected,
			     "%s: the document '%s' has changed: its SHA-256 is %s, the profile expects %s",
			     where, policy->path, policy->sha256,
			     expected->type == PTREE_SCALAR ? expected->value : "a hex string");
}

/* Reads and compiles the document; *compiled gets the engine's policy. */
static void load_document(loader *l, const char *where, const ptree *file, profile_policy *policy,
			  sim_policy **compiled)
{
	pl_errmsg e;
	pl_err rc;

	rc = profile_read_file(policy->path, POLICY_FILE_MAX, &policy->document,
			       &policy->document_len, &e);
	if (rc == PL_ERR_NOMEM) {
		l->oom = 1;
		return;
	}
	if (rc != PL_OK) {
		loader_error_code(l, PL_ERR_IO, file, "%s: %s", where, e.msg);
		return;
	}
	profile_sha256_hex(policy->document, policy->document_len, policy->sha256);
	rc = sim_policy_compile(policy->document, policy->document_len, compiled, &e);
	if (rc == PL_ERR_NOMEM)
		l->oom = 1;
	else if (rc != PL_OK)
		loader_error(l, file, "%s: invalid policy document '%s': %s", where, file->value,
			     e.msg);
}

static void decode_entry(loader *l, const char *where, const ptree *entry, int skip_files,
			 profile_policy *policy, sim_policy **compiled)
{
	const ptree *file = entry_file_node(l, where, entry);

	policy->pos.line = entry->line;
	policy->pos.column = entry->column;
	if (file == NULL)
		return;
	policy->pos.line = file->line;
	policy->pos.column = file->column;
	set_name(l, where, entry, file, policy);
	policy->path = resolve_path(l->impl->pub.dir, file->value);
	if (policy->path == NULL) {
		l->oom = 1;
		return;
	}
	if (skip_files)
		return;
	load_document(l, where, file, policy, compiled);
	if (policy->document != NULL)
		check_digest(l, where, entry, policy);
}

static void check_duplicates(loader *l, const char *list, const ptree *node,
			     const profile_policy *policies, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		for (size_t j = 0; j < i; j++) {
			if (policies[i].name == NULL || policies[j].name == NULL ||
			    strcmp(policies[i].name, policies[j].name) != 0)
				continue;
			loader_error(l, node->type == PTREE_SEQ ? node->items[i] : node,
				     "%s.%zu: policy name '%s' is already used by entry %zu; give one of them a different 'name'",
				     list, i, policies[i].name, j);
		}
	}
}

static void decode_list(loader *l, const char *list, const ptree *node, int skip_files,
			profile_policy **out, size_t *count, sim_policy ***compiled)
{
	size_t n;

	if (node == NULL || ptree_is_null(node))
		return;
	if (node->type == PTREE_MAP) {
		loader_error(l, node, "%s: expected a list of policy files", list);
		return;
	}
	n = node->type == PTREE_SEQ ? node->count : 1;
	*out = calloc(n ? n : 1, sizeof(**out));
	*compiled = calloc(n ? n : 1, sizeof(**compiled));
	if (*out == NULL || *compiled == NULL) {
		l->oom = 1;
		return;
	}
	*count = n;
	for (size_t i = 0; i < n; i++) {
		char where[64];

		snprintf(where, sizeof(where), "%s.%zu", list, i);
		decode_entry(l, where, node->type == PTREE_SEQ ? node->items[i] : node, skip_files,
			     &(*out)[i], &(*compiled)[i]);
	}
	check_duplicates(l, list, node, *out, n);
}

/* The same name on both sides must be the same document, since AWS names policies uniquely. */
static void check_same_names(loader *l, const ptree *policies)
{
	const profile *p = &l->impl->pub;

	if (p->swap.kind == PROFILE_SWAP_POLICY_VERSION)
		return;
	for (size_t i = 0; i < p->after_count; i++) {
		for (size_t j = 0; j < p->before_count; j++) {
			const profile_policy *a = &p->after[i];
			const profile_policy *b = &p->before[j];

			if (a->name == NULL || b->name == NULL || strcmp(a->name, b->name) != 0 ||
			    a->document == NULL || b->document == NULL)
				continue;
			if (strcmp(a->sha256, b->sha256) != 0)
				loader_error(l, ptree_get(policies, "after"),
					     "policies.after.%zu: policy '%s' is also in policies.before with a different document; use another name, or swap.kind policy-version to change a policy's document",
					     i, a->name);
		}
	}
}

void policies_decode(loader *l, const ptree *policies, int skip_files)
{
	profile *p = &l->impl->pub;

	if (policies == NULL || ptree_is_null(policies))
		return;
	schema_decode(l, schema_find(&schema_root, "policies")->section, "policies", policies, p);
	if (policies->type != PTREE_MAP)
		return;
	decode_list(l, "policies.before", ptree_get(policies, "before"), skip_files, &p->before,
		    &p->before_count, &l->before_compiled);
	decode_list(l, "policies.after", ptree_get(policies, "after"), skip_files, &p->after,
		    &p->after_count, &l->after_compiled);
	check_same_names(l, policies);
}
