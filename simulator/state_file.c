/*
 * The state file: the whole store as one JSON document (format in
 * docs/simulator.md), written atomically and loaded strictly. The journal
 * (state_journal.c) uses the same JSON form for each record.
 */
#include "simulator/state_internal.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "simulator/certs.h"

#define STATE_FORMAT "policylag-sim-state"
#define STATE_FORMAT_VERSION 1

/* ---- save -------------------------------------------------------------- */

static json_t *names_json(char *const *names, size_t count)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < count; i++)
		json_array_append_new(a, json_string(names[i]));
	return a;
}

static json_t *policy_json(const void *record)
{
	const sim_policy_rec *p = record;
	json_t *versions = json_array();

	for (size_t i = 0; i < p->version_count; i++)
		json_array_append_new(versions,
				      json_pack("{s:s, s:I, s:s}", "id", p->versions[i].id,
						"createMs", (json_int_t)p->versions[i].create_ms,
						"document", sim_doc_text(p->versions[i].doc)));
	return json_pack("{s:s, s:s, s:I, s:I, s:s, s:I, s:s, s:o}", "name", p->name,
			 "arn", p->arn, "createMs", (json_int_t)p->create_ms, "modifyMs",
			 (json_int_t)p->modify_ms, "generationId", p->generation_id,
			 "nextVersionId", (json_int_t)p->next_version_id, "defaultVersion",
			 p->versions[p->default_index].id, "versions", versions);
}

static json_t *cert_json(const void *record)
{
	const sim_cert *c = record;

	return json_pack("{s:s, s:s, s:s, s:s*, s:I, s:I, s:s, s:o}", "id", c->id, "arn", c->arn,
			 "status", sim_cert_status_name(c->status), "caId", c->ca_id, "createMs",
			 (json_int_t)c->create_ms, "modifyMs", (json_int_t)c->modify_ms, "pem",
			 c->pem, "policies", names_json(c->policies.names, c->policies.count));
}

static json_t *thing_json(const void *record)
{
	const sim_thing *t = record;
	json_t *attrs = json_object();

	for (size_t i = 0; i < t->attribute_count; i++)
		json_object_set_new(attrs, t->attributes[i].name,
				    json_string(t->attributes[i].value));
	return json_pack("{s:s, s:s, s:s*, s:o, s:o, s:I}", "name", t->name, "arn", t->arn,
			 "type", t->type_name, "attributes", attrs, "principals",
			 names_json(t->principals, t->principal_count), "version",
			 (json_int_t)t->version);
}

static json_t *group_json(const void *record)
{
	const sim_thing_group *g = record;

	return json_pack("{s:s, s:s, s:I, s:o, s:o}", "name", g->name, "arn", g->arn, "createMs",
			 (json_int_t)g->create_ms, "policies",
			 names_json(g->policies.names, g->policies.count), "things",
			 names_json(g->things, g->thing_count));
}

static json_t *state_json(sim_state *s)
{
	json_t *root = json_pack("{s:s, s:i, s:s, s:s, s:I}", "format", STATE_FORMAT,
				 "formatVersion", STATE_FORMAT_VERSION, "region", s->region,
				 "account", s->account, "generation", (json_int_t)s->generation);

	for (int kind = 0; root && kind < SIM_REC__COUNT; kind++) {
		const sim_coll *c = sim_state_coll(s, (sim_rec_kind)kind);
		json_t *records = json_array();

		for (size_t i = 0; records && i < c->count; i++)
			json_array_append_new(records, sim_rec_json((sim_rec_kind)kind, c->items[i]));
		if (json_object_set_new(root, sim_rec_array_name((sim_rec_kind)kind), records) != 0) {
			json_decref(root);
			root = NULL;
		}
	}
	return root;
}

pl_err sim_state_snapshot_write(sim_state *s, size_t *bytes, pl_errmsg *e)
{
	json_t *root;
	char *text;
	pl_err rc;

	root = state_json(s);
	text = root ? json_dumps(root, JSON_INDENT(1) | JSON_SORT_KEYS) : NULL;
	json_decref(root);
	if (!text)
		return pl_errmsg_set(e, PL_ERR_NOMEM, "state file %s: out of memory", s->path);
	*bytes = strlen(text);
	rc = sim_certs_write_file(s->path, text, 0600, e);
	free(text);
	return rc;
}

/* ---- load -------------------------------------------------------------- */

/* Sets a load error. where names the file and the record ("state file X: things[2]"). */
static pl_err bad(pl_errmsg *e, const char *where, const char *why)
{
	return pl_errmsg_set(e, PL_ERR_PARSE, "%s: %s", where, why);
}

static int load_names(json_t *array, sim_attachments *a)
{
	size_t i;
	json_t *v;

	if (!json_is_array(array))
		return -1;
	json_array_foreach(array, i, v) {
		if (!json_is_string(v) || sim_attachments_add(a, json_string_value(v), NULL) != PL_OK)
			return -1;
	}
	return 0;
}

static pl_err load_versions(sim_policy_rec *p, json_t *versions,
			    const char *default_id, pl_errmsg *e)
{
	size_t i;
	json_t *v;

	json_array_foreach(versions, i, v) {
		const char *id = NULL, *doc = NULL;
		json_int_t created = 0;
		if (json_unpack(v, "{s:s, s:I, s:s}", "id", &id, "createMs", &created, "document",
				&doc) != 0)
			return PL_ERR_PARSE;
		pl_err rc = sim_policy_rec_add_version(p, id, doc, created, e);
		if (rc != PL_OK)
			return rc;
		if (strcmp(id, default_id) == 0)
			p->default_index = p->version_count - 1;
	}
	return p->version_count > 0 && sim_state_policy_version_find(p, default_id)
		       ? PL_OK
		       : PL_ERR_PARSE;
}

static pl_err load_policy(sim_state *s, json_t *j, const char *where, pl_errmsg *e)
{
	const char *name, *generation_id, *default_id;
	json_int_t created, modified, next;
	json_t *versions;
	sim_policy_rec *p;
	pl_errmsg inner;
	pl_err rc;

	if (json_unpack(j, "{s:s, s:I, s:I, s:s, s:I, s:s, s:o}", "name", &name, "createMs",
			&created, "modifyMs", &modified, "generationId", &generation_id,
			"nextVersionId", &next, "defaultVersion", &default_id, "versions",
			&versions) != 0 || !json_is_array(versions))
		return bad(e, where, "missing or mistyped field");
	rc = sim_policy_rec_new(s, name, &p, e);
	if (rc != PL_OK)
		return rc;
	p->create_ms = created;
	p->modify_ms = modified;
	p->next_version_id = (uint64_t)next;
	snprintf(p->generation_id, sizeof(p->generation_id), "%s", generation_id);
	pl_errmsg_clear(&inner);
	rc = load_versions(p, versions, default_id, &inner);
	if (rc == PL_OK)
		rc = sim_state_policy_insert(s, p, &inner);
	if (rc != PL_OK) {
		sim_policy_rec_free(p);
		return bad(e, where,
			   inner.msg[0] ? inner.msg : "bad versions or default version");
	}
	return PL_OK;
}

static pl_err load_cert(sim_state *s, json_t *j, const char *where, pl_errmsg *e)
{
	const char *id, *status, *ca_id = NULL, *pem;
	json_int_t created, modified;
	json_t *policies;
	sim_cert *c;

	if (json_unpack(j, "{s:s, s:s, s?s, s:I, s:I, s:s, s:o}", "id", &id, "status", &status,
			"caId", &ca_id, "createMs", &created, "modifyMs", &modified, "pem", &pem,
			"policies", &policies) != 0)
		return bad(e, where, "missing or mistyped field");
	if (sim_cert_new(s, pem, ca_id, &c, NULL) != PL_OK)
		return bad(e, where, "pem is not a certificate");
	c->create_ms = created;
	c->modify_ms = modified;
	if (strcmp(c->id, id) != 0 || sim_cert_status_parse(status, &c->status, NULL) != PL_OK ||
	    load_names(policies, &c->policies) != 0 || sim_state_cert_insert(s, c, NULL) != PL_OK) {
		sim_cert_free(c);
		return bad(e, where,
			   "id does not match the pem, or bad status or policies");
	}
	return PL_OK;
}

static pl_err load_thing(sim_state *s, json_t *j, const char *where, pl_errmsg *e)
{
	const char *name, *type = NULL, *key;
	json_t *attrs, *principals, *v;
	json_int_t version = 1;
	sim_attribute *list;
	sim_thing *t = NULL;
	size_t n = 0, i;
	pl_err rc;

	if (json_unpack(j, "{s:s, s?s, s:o, s:o, s?I}", "name", &name, "type", &type,
			"attributes", &attrs, "principals", &principals, "version",
			&version) != 0 || !json_is_object(attrs) || !json_is_array(principals))
		return bad(e, where, "missing or mistyped field");
	json_object_foreach(attrs, key, v) {
		if (!json_is_string(v))
			return bad(e, where, "attribute values must be strings");
	}
	list = calloc(json_object_size(attrs) + 1, sizeof(*list));
	if (!list)
		return pl_errmsg_set(e, PL_ERR_NOMEM, "state file: out of memory");
	json_object_foreach(attrs, key, v) {
		list[n].name = (char *)key;
		list[n++].value = (char *)json_string_value(v);
	}
	rc = sim_state_thing_create(s, name, type, list, n, &t, NULL);
	free(list);
	if (rc != PL_OK)
		return bad(e, where, "duplicate thing name");
	t->version = (uint64_t)version;
	json_array_foreach(principals, i, v) {
		if (!json_is_string(v) ||
		    sim_state_thing_attach_principal(s, name, json_string_value(v), NULL) != PL_OK)
			return bad(e, where, "bad principals");
	}
	return PL_OK;
}

static pl_err load_group(sim_state *s, json_t *j, const char *where, pl_errmsg *e)
{
	const char *name;
	json_int_t created;
	json_t *policies, *things, *v;
	sim_thing_group *g;
	size_t i;

	if (json_unpack(j, "{s:s, s:I, s:o, s:o}", "name", &name, "createMs", &created,
			"policies", &policies, "things", &things) != 0 || !json_is_array(things))
		return bad(e, where, "missing or mistyped field");
	if (sim_state_group_create(s, name, &g, NULL) != PL_OK ||
	    load_names(policies, &g->policies) != 0)
		return bad(e, where, "duplicate name or bad policies");
	g->create_ms = created;
	json_array_foreach(things, i, v) {
		if (!json_is_string(v) ||
		    sim_state_group_add_thing(s, name, json_string_value(v), NULL) != PL_OK)
			return bad(e, where, "member is not a thing");
	}
	return PL_OK;
}

/* ---- one record, by kind ---------------------------------------------- */

typedef struct rec_format {
	const char *array;  /* member of the state file holding the records */
	const char *key;    /* member holding the record's key */
	json_t *(*to_json)(const void *record);
	pl_err (*load)(sim_state *s, json_t *j, const char *where, pl_errmsg *e);
} rec_format;

static const rec_format formats[SIM_REC__COUNT] = {
	[SIM_REC_POLICY] = { "policies", "name", policy_json, load_policy },
	[SIM_REC_CERT] = { "certificates", "id", cert_json, load_cert },
	[SIM_REC_THING] = { "things", "name", thing_json, load_thing },
	[SIM_REC_GROUP] = { "thingGroups", "name", group_json, load_group },
};

const char *sim_rec_array_name(sim_rec_kind kind) { return formats[kind].array; }
const char *sim_rec_key_member(sim_rec_kind kind) { return formats[kind].key; }
json_t *sim_rec_json(sim_rec_kind kind, const void *record) { return formats[kind].to_json(record); }

pl_err sim_rec_load(sim_state *s, sim_rec_kind kind, json_t *j, const char *where,
		    pl_errmsg *e)
{
	return formats[kind].load(s, j, where, e);
}

static pl_err load_array(sim_state *s, json_t *root, sim_rec_kind kind, pl_errmsg *e)
{
	const char *key = formats[kind].array;
	json_t *array = json_object_get(root, key);
	char where[PATH_MAX + 64];
	json_t *v;
	size_t i;

	if (!json_is_array(array))
		return pl_errmsg_set(e, PL_ERR_PARSE, "state file %s: '%s' missing or not an array",
				     s->path, key);
	json_array_foreach(array, i, v) {
		snprintf(where, sizeof(where), "state file %s: %s[%zu]", s->path, key, i);
		pl_err rc = formats[kind].load(s, v, where, e);
		if (rc != PL_OK)
			return rc;
	}
	return PL_OK;
}

static pl_err load_root(sim_state *s, json_t *root, pl_errmsg *e)
{
	const char *format = NULL;
	json_int_t version = 0, generation = 0;
	pl_err rc;

	if (json_unpack(root, "{s:s, s:I, s:I}", "format", &format, "formatVersion", &version,
			"generation", &generation) != 0 || strcmp(format, STATE_FORMAT) != 0 ||
	    version != STATE_FORMAT_VERSION)
		return pl_errmsg_set(e, PL_ERR_PARSE,
				     "state file %s: not a policylag simulator state file "
				     "(format version %d expected)", s->path, STATE_FORMAT_VERSION);
	/* Groups refer to things, so the kinds load in their enum order. */
	rc = PL_OK;
	for (int kind = 0; rc == PL_OK && kind < SIM_REC__COUNT; kind++)
		rc = load_array(s, root, (sim_rec_kind)kind, e);
	s->generation = (uint64_t)generation;
	return rc;
}

pl_err sim_state_snapshot_read(sim_state *s, pl_errmsg *e)
{
	json_error_t jerr;
	struct stat st;
	json_t *root;
	pl_err rc;

	if (stat(s->path, &st) != 0) {
		if (errno == ENOENT)
			return PL_OK;
		return pl_errmsg_set(e, PL_ERR_IO, "state file %s: %s", s->path, strerror(errno));
	}
	root = json_load_file(s->path, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return pl_errmsg_set(e, PL_ERR_PARSE,
				     "state file %s: line %d column %d: %s (the file is corrupt "
				     "or truncated; restore it, or remove it and its journal to start "
				     "empty)",
				     s->path, jerr.line, jerr.column > 0 ? jerr.column : 1, jerr.text);
	rc = load_root(s, root, e);
	json_decref(root);
	s->snapshot_bytes = (size_t)st.st_size;
	return rc;
}
