/*
 * Things, thing groups and effective-policy snapshots of the state store.
 * See state.h for the locking rule.
 */
#include "simulator/state_internal.h"

#include <stdlib.h>
#include <string.h>

#include "common/clock.h"

static int strings_has(char *const *list, size_t count, const char *value)
{
	for (size_t i = 0; i < count; i++)
		if (strcmp(list[i], value) == 0)
			return 1;
	return 0;
}

static int strings_add(char ***list, size_t *count, const char *value)
{
	char **grown = realloc(*list, (*count + 1) * sizeof(**list));

	if (!grown)
		return -1;
	*list = grown;
	grown[*count] = sim_strdup(value);
	if (!grown[*count])
		return -1;
	(*count)++;
	return 0;
}

static int strings_remove(char **list, size_t *count, const char *value)
{
	for (size_t i = 0; i < *count; i++) {
		if (strcmp(list[i], value) == 0) {
			free(list[i]);
			list[i] = list[--*count];
			return 0;
		}
	}
	return -1;
}

static void strings_free(char **list, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(list[i]);
	free(list);
}

/* ---- things ------------------------------------------------------------ */

void sim_thing_free(sim_thing *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->attribute_count; i++) {
		free(t->attributes[i].name);
		free(t->attributes[i].value);
	}
	free(t->attributes);
	strings_free(t->principals, t->principal_count);
	free(t->name);
	free(t->arn);
	free(t->type_name);
	free(t);
}

sim_thing *sim_state_thing_find(sim_state *s, const char *name) { return sim_coll_find(&s->things, name); }
size_t sim_state_thing_count(const sim_state *s) { return s->things.count; }
sim_thing *sim_state_thing_at(sim_state *s, size_t i) { return i < s->things.count ? s->things.items[i] : NULL; }

static int copy_attributes(sim_attribute **out, const sim_attribute *in, size_t count)
{
	*out = count ? calloc(count, sizeof(**out)) : NULL;
	if (count && !*out)
		return -1;
	for (size_t i = 0; i < count; i++) {
		(*out)[i].name = sim_strdup(in[i].name);
		(*out)[i].value = sim_strdup(in[i].value);
		if (!(*out)[i].name || !(*out)[i].value)
			return -1;
	}
	return 0;
}

pl_err sim_state_thing_create(sim_state *s, const char *name, const char *type_name,
			      const sim_attribute *attributes, size_t attribute_count,
			      sim_thing **out, pl_errmsg *e)
{
	sim_thing *t;

	if (sim_coll_find(&s->things, name))
		return pl_errmsg_set(e, PL_ERR_EXISTS, "thing %s already exists", name);
	t = calloc(1, sizeof(*t));
	if (!t)
		return pl_errmsg_set(e, PL_ERR_NOMEM, "thing: out of memory");
	t->name = sim_strdup(name);
	t->arn = sim_make_arn(s, "thing", name);
	t->type_name = sim_strdup(type_name);
	t->attribute_count = attribute_count;
	t->version = 1;
	if (!t->name || !t->arn || (type_name && !t->type_name) ||
	    copy_attributes(&t->attributes, attributes, attribute_count) != 0 ||
	    sim_coll_add(&s->things, t) != 0) {
		sim_thing_free(t);
		return pl_errmsg_set(e, PL_ERR_NOMEM, "thing: out of memory");
	}
	sim_state_changed(s, SIM_REC_THING, name);
	if (out)
		*out = t;
	return PL_OK;
}

pl_err sim_state_thing_delete(sim_state *s, const char *name, pl_errmsg *e)
{
	sim_thing *t = sim_coll_find(&s->things, name);

	if (!t)
		return pl_errmsg_set(e, PL_ERR_NOT_FOUND, "thing %s not found", name);
	for (size_t i = 0; i < s->groups.count; i++) {
		sim_thing_group *g = s->groups.items[i];
		if (strings_remove(g->things, &g->thing_count, name) == 0)
			sim_state_changed(s, SIM_REC_GROUP, g->name);
	}
	/* Record the change first, because the key may be the record's own name. */
	sim_state_changed(s, SIM_REC_THING, name);
	sim_coll_remove(&s->things, t);
	sim_thing_free(t);
	return PL_OK;
}

pl_err sim_state_thing_attach_principal(sim_state *s, const char *thing_name,
					const char *principal_arn, pl_errmsg *e)
{
	sim_thing *t = sim_coll_find(&s->things, thing_name);

	if (!t)
		return pl_errmsg_set(e, PL_ERR_NOT_FOUND, "thing %s not found", thing_name);
	if (strings_has(t->principals, t->principal_count, principal_arn))
		return PL_OK;
	if (strings_add(&t->principals, &t->principal_count, principal_arn) != 0)
		return pl_errmsg_set(e, PL_ERR_NOMEM, "thing principal: out of memory");
	sim_state_changed(s, SIM_REC_THING, thing_name);
	return PL_OK;
}

pl_err sim_state_thing_detach_principal(sim_state *s, const char *thing_name,
					const char *principal_arn, pl_errmsg *e)
{
	sim_thing *t = sim_coll_find(&s->things, thing_name);

	if (!t)
		return pl_errmsg_set(e, PL_ERR_NOT_FOUND, "thing %s not found", thing_name);
	if (strings_remove(t->principals, &t->principal_count, principal_arn) != 0)
		return pl_errmsg_set(e, PL_ERR_NOT_FOUND, "%s is not a principal of thing %s",
				     principal_arn, thing_name);
	sim_state_changed(s, SIM_REC_THING, thing_name);
	return PL_OK;
}

/* ---- thing groups ------------------------------------------------------ */

void sim_group_free(sim_thing_group *g)
{
	if (!g)
		return;
	for (size_t i = 0; i < g->policies.count; i++)
		free(g->policies.names[i]);
	strings_free(g->things, g->thing_count);
	free(g->name);
	free(g->arn);
	free(g);
}

sim_thing_group *sim_state_group_find(sim_state *s, const char *name) { return sim_coll_find(&s->groups, name); }
size_t sim_state_group_count(const sim_state *s) { return s->groups.count; }
sim_thing_group *sim_state_group_at(sim_state *s, size_t i) { return i < s->groups.count ? s->groups.items[i] : NULL; }

pl_err sim_state_group_create(sim_state *s, const char *name, sim_thing_group **out,
			      pl_errmsg *e)
{
	sim_thing_group *g;

	if (sim_coll_find(&s->groups, name))
		return pl_errmsg_set(e, PL_ERR_EXISTS, "thing group %s already exists", name);
	g = calloc(1, sizeof(*g));
	if (!g)
		return pl_errmsg_set(e, PL_ERR_NOMEM, "thing group: out of memory");
	g->name = sim_strdup(name);
	g->arn = sim_make_arn(s, "thinggroup", name);
	g->create_ms = sim_now_ms();
	if (!g->name || !g->arn || sim_coll_add(&s->groups, g) != 0) {
		sim_group_free(g);
		return pl_errmsg_set(e, PL_ERR_NOMEM, "thing group: out of memory");
	}
	sim_state_changed(s, SIM_REC_GROUP, name);
	if (out)
		*out = g;
	return PL_OK;
}

pl_err sim_state_group_delete(sim_state *s, const char *name, pl_errmsg *e)
{
	sim_thing_group *g = sim_coll_find(&s->groups, name);

	if (!g)
		return pl_errmsg_set(e, PL_ERR_NOT_FOUND, "thing group %s not found", name);
	/* Record the change first, because the key may be the record's own name. */
	sim_state_changed(s, SIM_REC_GROUP, name);
	sim_coll_remove(&s->groups, g);
	sim_group_free(g);
	return PL_OK;
}

pl_err sim_state_group_add_thing(sim_state *s, const char *group_name, const char *thing_name,
				 pl_errmsg *e)
{
	sim_thing_group *g = sim_coll_find(&s->groups, group_name);

	if (!g)
		return pl_errmsg_set(e, PL_ERR_NOT_FOUND, "thing group %s not found", group_name);
	if (!sim_coll_find(&s->things, thing_name))
		return pl_errmsg_set(e, PL_ERR_NOT_FOUND, "thing %s not found", thing_name);
	if (strings_has(g->things, g->thing_count, thing_name))
		return PL_OK;
	if (strings_add(&g->things, &g->thing_count, thing_name) != 0)
		return pl_errmsg_set(e, PL_ERR_NOMEM, "thing group: out of memory");
	sim_state_changed(s, SIM_REC_GROUP, group_name);
	return PL_OK;
}

pl_err sim_state_group_remove_thing(sim_state *s, const char *group_name,
				    const char *thing_name, pl_errmsg *e)
{
	sim_thing_group *g = sim_coll_find(&s->groups, group_name);

	if (!g)
		return pl_errmsg_set(e, PL_ERR_NOT_FOUND, "thing group %s not found", group_name);
	if (strings_remove(g->things, &g->thing_count, thing_name) != 0)
		return pl_errmsg_set(e, PL_ERR_NOT_FOUND, "thing %s is not in group %s",
				     thing_name, group_name);
	sim_state_changed(s, SIM_REC_GROUP, group_name);
	return PL_OK;
}

/* ---- snapshots --------------------------------------------------------- */

sim_snapshot *sim_snapshot_ref(sim_snapshot *snap)
{
	snap->refs++;
	return snap;
}

void sim_snapshot_free(sim_snapshot *snap)
{
	if (!snap || --snap->refs > 0)
		return;
	for (size_t i = 0; i < snap->entry_count; i++) {
		free(snap->entries[i].policy_name);
		free(snap->entries[i].version_id);
		sim_doc_unref(snap->entries[i].doc);
	}
	free(snap->entries);
	for (size_t i = 0; i < snap->thing_attribute_count; i++) {
		free(snap->thing_attributes[i].name);
		free(snap->thing_attributes[i].value);
	}
	free(snap->thing_attributes);
	free(snap->thing_name);
	free(snap->thing_type);
	free(snap);
}

/* Adds the default versions of the attached policies not yet in snap. */
static int snapshot_add(sim_state *s, sim_snapshot *snap, const sim_attachments *a)
{
	for (size_t i = 0; i < a->count; i++) {
		sim_policy_rec *p = sim_coll_find(&s->policies, a->names[i]);
		sim_snapshot_entry *entry;
		int seen = 0;

		for (size_t j = 0; j < snap->entry_count; j++)
			seen |= strcmp(snap->entries[j].policy_name, a->names[i]) == 0;
		if (!p || seen)
			continue;
		entry = &snap->entries[snap->entry_count];
		entry->policy_name = sim_strdup(p->name);
		entry->version_id = sim_strdup(p->versions[p->default_index].id);
		entry->doc = p->versions[p->default_index].doc;
		sim_doc_ref(entry->doc);
		snap->entry_count++;
		if (!entry->policy_name || !entry->version_id)
			return -1;
	}
	return 0;
}

/* Counts the attachments a snapshot may need, for one allocation. */
static size_t snapshot_capacity(sim_state *s, const sim_cert *c, const sim_thing *t)
{
	size_t n = c->policies.count;

	for (size_t i = 0; t && i < s->groups.count; i++) {
		sim_thing_group *g = s->groups.items[i];
		if (strings_has(g->things, g->thing_count, t->name))
			n += g->policies.count;
	}
	return n;
}

static int snapshot_thing(sim_state *s, sim_snapshot *snap, const sim_thing *t)
{
	snap->thing_attached = 1;
	snap->thing_name = sim_strdup(t->name);
	snap->thing_type = sim_strdup(t->type_name);
	snap->thing_attribute_count = t->attribute_count;
	if (!snap->thing_name || (t->type_name && !snap->thing_type) ||
	    copy_attributes(&snap->thing_attributes, t->attributes, t->attribute_count) != 0)
		return -1;
	for (size_t i = 0; i < s->groups.count; i++) {
		sim_thing_group *g = s->groups.items[i];
		if (strings_has(g->things, g->thing_count, t->name) &&
		    snapshot_add(s, snap, &g->policies) != 0)
			return -1;
	}
	return 0;
}

static int snapshot_fill(sim_state *s, sim_snapshot *snap, const char *cert_id,
			 const char *client_id)
{
	sim_cert *c = sim_coll_find(&s->certs, cert_id);
	sim_thing *t;

	snap->generation = s->generation;
	snap->taken_ns = pl_mono_ns();
	if (!c)
		return 0;
	snap->cert_found = 1;
	snap->cert_status = c->status;
	/* Thing-group policies and thing variables apply only when the client
	 * id is the name of a thing that has this certificate as a principal. */
	t = client_id ? sim_coll_find(&s->things, client_id) : NULL;
	if (t && !strings_has(t->principals, t->principal_count, c->arn))
		t = NULL;
	snap->entries = calloc(snapshot_capacity(s, c, t) + 1, sizeof(*snap->entries));
	if (!snap->entries || snapshot_add(s, snap, &c->policies) != 0)
		return -1;
	return t ? snapshot_thing(s, snap, t) : 0;
}

pl_err sim_state_snapshot_take(sim_state *s, const char *cert_id, const char *client_id,
			       sim_snapshot **out)
{
	sim_snapshot *snap = calloc(1, sizeof(*snap));
	int rc;

	if (!snap)
		return PL_ERR_NOMEM;
	snap->refs = 1;
	pthread_mutex_lock(&s->lock);
	rc = snapshot_fill(s, snap, cert_id, client_id);
	pthread_mutex_unlock(&s->lock);
	if (rc != 0) {
		sim_snapshot_free(snap);
		return PL_ERR_NOMEM;
	}
	*out = snap;
	return PL_OK;
}

int sim_snapshot_same_policies(const sim_snapshot *a, const sim_snapshot *b)
{
	if (!a || !b)
		return a == b;
	if (a->entry_count != b->entry_count || a->cert_found != b->cert_found ||
	    a->cert_status != b->cert_status || a->thing_attached != b->thing_attached)
		return 0;
	for (size_t i = 0; i < a->entry_count; i++)
		if (a->entries[i].doc != b->entries[i].doc ||
		    strcmp(a->entries[i].policy_name, b->entries[i].policy_name) != 0)
			return 0;
	return 1;
}
