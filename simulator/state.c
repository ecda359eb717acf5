/*
 * The simulator's registry. See state.h for the locking rule. The state
 * file's format is in state_file.c, the journal in state_journal.c.
 */
#include "simulator/state_internal.h"

#include <assert.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "simulator/certs.h"

struct sim_doc {
	atomic_int refs;
	char *text;
	sim_policy *compiled;
};

/* ---- small helpers ----------------------------------------------------- */

char *sim_strdup(const char *s)
{
	size_t len;
	char *out;

	if (!s)
		return NULL;
	len = strlen(s) + 1;
	out = malloc(len);
	if (out)
		memcpy(out, s, len);
	return out;
}

int64_t sim_now_ms(void)
{
	return pl_wall_ns() / PL_NS_PER_MS;
}

static uint64_t hash_string(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

/* ---- collections: an array plus a string hash index ------------------- */

void *sim_coll_find(const sim_coll *c, const char *key)
{
	if (c->slot_count == 0)
		return NULL;
	for (size_t i = hash_string(key) & (c->slot_count - 1);; i = (i + 1) & (c->slot_count - 1)) {
		size_t slot = c->slots[i];
		if (slot == 0)
			return NULL;
		if (strcmp(c->key(c->items[slot - 1]), key) == 0)
			return c->items[slot - 1];
	}
}

static void coll_index(sim_coll *c, size_t item)
{
	size_t i = hash_string(c->key(c->items[item])) & (c->slot_count - 1);

	while (c->slots[i] != 0)
		i = (i + 1) & (c->slot_count - 1);
	c->slots[i] = item + 1;
}

static int coll_rebuild(sim_coll *c, size_t slot_count)
{
	size_t *slots = calloc(slot_count, sizeof(*slots));

	if (!slots)
		return -1;
	free(c->slots);
	c->slots = slots;
	c->slot_count = slot_count;
	for (size_t i = 0; i < c->count; i++)
		coll_index(c, i);
	return 0;
}

int sim_coll_add(sim_coll *c, void *item)
{
	if (c->count == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 16;
		void **items = realloc(c->items, cap * sizeof(*items));
		if (!items)
			return -1;
		c->items = items;
		c->cap = cap;
	}
	c->items[c->count++] = item;
	/* Keep the load factor at or below one half so probes stay short. */
	if (c->count * 2 > c->slot_count)
		return coll_rebuild(c, c->slot_count ? c->slot_count * 2 : 32) == 0 ? 0 : (c->count--, -1);
	coll_index(c, c->count - 1);
	return 0;
}

/* Whether k lies in the cyclic slot range (i, j]. */
static int slot_between(size_t i, size_t k, size_t j)
{
	return i <= j ? (i < k && k <= j) : (i < k || k <= j);
}

/*
 * Empties slot hole and moves later entries of its probe run back into it
 * (backward-shift deletion), so lookups need no tombstones. An entry moves
 * unless its home slot lies between the hole and its position.
 */
static void coll_slot_clear(sim_coll *c, size_t hole)
{
	size_t mask = c->slot_count - 1;

	c->slots[hole] = 0;
	for (size_t j = (hole + 1) & mask; c->slots[j] != 0; j = (j + 1) & mask) {
		size_t home = hash_string(c->key(c->items[c->slots[j] - 1])) & mask;

		if (slot_between(hole, home, j))
			continue;
		c->slots[hole] = c->slots[j];
		c->slots[j] = 0;
		hole = j;
	}
}

/* The slot that refers to items[index]. */
static size_t coll_slot_of(const sim_coll *c, size_t index)
{
	size_t mask = c->slot_count - 1;
	size_t i = hash_string(c->key(c->items[index])) & mask;

	while (c->slots[i] != index + 1)
		i = (i + 1) & mask;
	return i;
}

void sim_coll_remove(sim_coll *c, void *item)
{
	size_t mask = c->slot_count - 1;
	size_t pos, index, last;

	if (c->slot_count == 0)
		return;
	pos = hash_string(c->key(item)) & mask;
	while (c->slots[pos] != 0 && c->items[c->slots[pos] - 1] != item)
		pos = (pos + 1) & mask;
	if (c->slots[pos] == 0)
		return;
	index = c->slots[pos] - 1;
	coll_slot_clear(c, pos);
	/* Fill the gap in items with the last item and point its slot there. */
	last = c->count - 1;
	if (index != last) {
		c->slots[coll_slot_of(c, last)] = index + 1;
		c->items[index] = c->items[last];
	}
	c->count--;
}

static void coll_free(sim_coll *c)
{
	free(c->items);
	free(c->slots);
	memset(c, 0, sizeof(*c));
}

static const char *policy_key(const void *p) { return ((const sim_policy_rec *)p)->name; }
static const char *cert_key(const void *p) { return ((const sim_cert *)p)->id; }
static const char *thing_key(const void *p) { return ((const sim_thing *)p)->name; }
static const char *group_key(const void *p) { return ((const sim_thing_group *)p)->name; }

/* ---- documents --------------------------------------------------------- */

const char *sim_doc_text(const sim_doc *d) { return d->text; }
const sim_policy *sim_doc_compiled(const sim_doc *d) { return d->compiled; }

void sim_doc_ref(sim_doc *d)
{
	atomic_fetch_add(&d->refs, 1);
}

void sim_doc_unref(sim_doc *d)
{
	if (!d || atomic_fetch_sub(&d->refs, 1) != 1)
		return;
	sim_policy_free(d->compiled);
	free(d->text);
	free(d);
}

static pl_err doc_create(const char *text, sim_doc **out, pl_errmsg *e)
{
	sim_doc *d = calloc(1, sizeof(*d));
	pl_err rc;

	if (!d || !(d->text = sim_strdup(text))) {
		free(d);
		return pl_errmsg_set(e, PL_ERR_NOMEM, "policy document: out of memory");
	}
	atomic_init(&d->refs, 1);
	rc = sim_policy_compile(text, strlen(text), &d->compiled, e);
	if (rc != PL_OK) {
		free(d->text);
		free(d);
		return rc;
	}
	*out = d;
	return PL_OK;
}

/* ---- store ------------------------------------------------------------- */

static void state_clear(sim_state *s);

static char *journal_path_for(const char *path)
{
	size_t len = strlen(path) + sizeof(".journal");
	char *out = malloc(len);

	if (out)
		snprintf(out, len, "%s.journal", path);
	return out;
}

pl_err sim_state_create(sim_state **out, const sim_state_config *cfg, pl_errmsg *e)
{
	sim_state *s = calloc(1, sizeof(*s));

	if (!s)
		return pl_errmsg_set(e, PL_ERR_NOMEM, "state: out of memory");
	s->path = sim_strdup(cfg->path);
	s->journal_path = cfg->path ? journal_path_for(cfg->path) : NULL;
	s->journal_fd = -1;
	s->journal_max_bytes = cfg->journal_max_bytes;
	s->region = sim_strdup(cfg->region ? cfg->region : "us-east-1");
	s->account = sim_strdup(cfg->account ? cfg->account : "123456789012");
	s->policies.key = policy_key;
	s->certs.key = cert_key;
	s->things.key = thing_key;
	s->groups.key = group_key;
	if ((cfg->path && (!s->path || !s->journal_path)) || !s->region || !s->account) {
		sim_state_free(s);
		return pl_errmsg_set(e, PL_ERR_NOMEM, "state: out of memory");
	}
	pthread_mutex_init(&s->lock, NULL);
	*out = s;
	return PL_OK;
}

void sim_state_free(sim_state *s)
{
	if (!s)
		return;
	sim_state_journal_close(s);
	state_clear(s);
	sim_state_changes_clear(s);
	pthread_mutex_destroy(&s->lock);
	free(s->path);
	free(s->journal_path);
	free(s->region);
	free(s->account);
	free(s);
}

/* Frees every record and resets the collections. */
static void state_clear(sim_state *s)
{
	for (size_t i = 0; i < s->policies.count; i++)
		sim_policy_rec_free(s->policies.items[i]);
	for (size_t i = 0; i < s->certs.count; i++)
		sim_cert_free(s->certs.items[i]);
	for (size_t i = 0; i < s->things.count; i++)
		sim_thing_free(s->things.items[i]);
	for (size_t i = 0; i < s->groups.count; i++)
		sim_group_free(s->groups.items[i]);
	coll_free(&s->policies);
	coll_free(&s->certs);
	coll_free(&s->things);
	coll_free(&s->groups);
}

static void swap_coll(sim_coll *a, sim_coll *b)
{
	sim_coll t = *a;

	*a = *b;
	*b = t;
}

pl_err sim_state_reload(sim_state *s, pl_errmsg *e)
{
	sim_state_config cfg = { .path = s->path, .region = s->region, .account = s->account };
	sim_state *fresh;
	pl_err rc = sim_state_create(&fresh, &cfg, e);

	if (rc != PL_OK)
		return rc;
	/*
	 * Read the file under the store's lock: the API saves under the same
	 * lock, so a file read outside it could predate a change the API has
	 * already acknowledged, and the swap below would drop that change.
	 */
	pthread_mutex_lock(&s->lock);
	rc = sim_state_load(fresh, e);
	if (rc == PL_OK) {
		/* The reload overwrites unsaved changes along with the rest. */
		sim_state_changes_clear(s);
		swap_coll(&s->policies, &fresh->policies);
		swap_coll(&s->certs, &fresh->certs);
		swap_coll(&s->things, &fresh->things);
		swap_coll(&s->groups, &fresh->groups);
		/* Generations only grow, so snapshots notice the change. */
		s->generation = (fresh->generation > s->generation ? fresh->generation
								   : s->generation) + 1;
		s->snapshot_bytes = fresh->snapshot_bytes;
	}
	pthread_mutex_unlock(&s->lock);
	sim_state_free(fresh);
	return rc;
}

void sim_state_lock(sim_state *s) { pthread_mutex_lock(&s->lock); }
void sim_state_unlock(sim_state *s) { pthread_mutex_unlock(&s->lock); }
uint64_t sim_state_generation(const sim_state *s) { return s->generation; }

uint64_t sim_state_generation_locked(sim_state *s)
{
	uint64_t generation;

	pthread_mutex_lock(&s->lock);
	generation = s->generation;
	pthread_mutex_unlock(&s->lock);
	return generation;
}

sim_coll *sim_state_coll(sim_state *s, sim_rec_kind kind)
{
	switch (kind) {
	case SIM_REC_POLICY:
		return &s->policies;
	case SIM_REC_CERT:
		return &s->certs;
	case SIM_REC_THING:
		return &s->things;
	case SIM_REC_GROUP:
	default:
		assert(kind == SIM_REC_GROUP);
		return &s->groups;
	}
}

/* Removes a record without the checks and side effects of the delete calls. */
void sim_state_record_remove(sim_state *s, sim_rec_kind kind, const char *key)
{
	sim_coll *c = sim_state_coll(s, kind);
	void *item = sim_coll_find(c, key);

	if (!item)
		return;
	sim_coll_remove(c, item);
	switch (kind) {
	case SIM_REC_POLICY:
		sim_policy_rec_free(item);
		break;
	case SIM_REC_CERT:
		sim_cert_free(item);
		break;
	case SIM_REC_THING:
		sim_thing_free(item);
		break;
	default:
		sim_group_free(item);
		break;
	}
}

void sim_state_arn(const sim_state *s, const char *kind, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "arn:aws:iot:%s:%s:%s/%s", s->region, s->account, kind, name);
}

char *sim_make_arn(const sim_state *s, const char *kind, const char *name)
{
	size_t len = strlen(s->region) + strlen(s->account) + strlen(kind) + strlen(name) + 32;
	char *arn = malloc(len);

	if (arn)
		sim_state_arn(s, kind, name, arn, len);
	return arn;
}

/* ---- policies ---------------------------------------------------------- */

void sim_policy_rec_free(sim_policy_rec *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->version_count; i++) {
		free(p->versions[i].id);
		sim_doc_unref(p->versions[i].doc);
	}
	free(p->name);
	free(p->arn);
	free(p);
}

static void policy_touch(sim_state *s, sim_policy_rec *p)
{
	p->modify_ms = sim_now_ms();
	snprintf(p->generation_id, sizeof(p->generation_id), "%016llx%016llx%032llx",
		 (unsigned long long)s->generation, (unsigned long long)p->modify_ms,
		 (unsigned long long)hash_string(p->name));
	sim_state_changed(s, SIM_REC_POLICY, p->name);
}

sim_policy_rec *sim_state_policy_find(sim_state *s, const char *name) { return sim_coll_find(&s->policies, name); }
size_t sim_state_policy_count(const sim_state *s) { return s->policies.count; }
sim_policy_rec *sim_state_policy_at(sim_state *s, size_t i) { return i < s->policies.count ? s->policies.items[i] : NULL; }

sim_policy_version *sim_state_policy_version_find(sim_policy_rec *p, const char *version_id)
{
	for (size_t i = 0; i < p->version_count; i++)
		if (strcmp(p->versions[i].id, version_id) == 0)
			return &p->versions[i];
	return NULL;
}

pl_err sim_policy_rec_add_version(sim_policy_rec *p, const char *id, const char *document,
			      int64_t create_ms, pl_errmsg *e)
{
	sim_policy_version *v;
	pl_err rc;

	if (p->version_count == SIM_POLICY_MAX_VERSIONS)
		return pl_errmsg_set(e, PL_ERR_LIMIT,
				     "policy %s already has the maximum number of versions (%d)",
				     p->name, SIM_POLICY_MAX_VERSIONS);
	v = &p->versions[p->version_count];
	rc = doc_create(document, &v->doc, e);
	if (rc != PL_OK)
		return rc;
	v->id = sim_strdup(id);
	if (!v->id) {
		sim_doc_unref(v->doc);
		v->doc = NULL;
		return pl_errmsg_set(e, PL_ERR_NOMEM, "policy version: out of memory");
	}
	v->create_ms = create_ms;
	p->version_count++;
	return PL_OK;
}

pl_err sim_policy_rec_new(sim_state *s, const char *name, sim_policy_rec **out, pl_errmsg *e)
{
	sim_policy_rec *p = calloc(1, sizeof(*p));

	if (!p || !(p->name = sim_strdup(name)) || !(p->arn = sim_make_arn(s, "policy", name))) {
		sim_policy_rec_free(p);
		return pl_errmsg_set(e, PL_ERR_NOMEM, "policy: out of memory");
	}
	p->next_version_id = 1;
	*out = p;
	return PL_OK;
}

pl_err sim_state_policy_insert(sim_state *s, sim_policy_rec *p, pl_errmsg *e)
{
	if (sim_coll_find(&s->policies, p->name))
		return pl_errmsg_set(e, PL_ERR_EXISTS, "policy %s already exists", p->name);
	if (sim_coll_add(&s->policies, p) != 0)
		return pl_errmsg_set(e, PL_ERR_NOMEM, "policy: out of memory");
	return PL_OK;
}

pl_err sim_state_policy_create(sim_state *s, const char *name, const char *document,
			       sim_policy_rec **out, pl_errmsg *e)
{
	sim_policy_rec *p;
	pl_err rc;

	if (sim_coll_find(&s->policies, name))
		return pl_errmsg_set(e, PL_ERR_EXISTS, "policy %s already exists", name);
	rc = sim_policy_rec_new(s, name, &p, e);
	if (rc != PL_OK)
		return rc;
	p->create_ms = sim_now_ms();
	rc = sim_policy_rec_add_version(p, "1", document, p->create_ms, e);
	if (rc == PL_OK)
		rc = sim_state_policy_insert(s, p, e);
	if (rc != PL_OK) {
		sim_policy_rec_free(p);
		return rc;
	}
	p->next_version_id = 2;
	p->default_index = 0;
	policy_touch(s, p);
	if (out)
		*out = p;
	return PL_OK;
}

static pl_err policy_lookup(sim_state *s, const char *name, sim_policy_rec **out, pl_errmsg *e)
{
	*out = sim_coll_find(&s->policies, name);
	if (!*out)
		return pl_errmsg_set(e, PL_ERR_NOT_FOUND, "policy %s not found", name);
	return PL_OK;
}

pl_err sim_state_policy_version_create(sim_state *s, const char *name, const char *document,
				       int set_default, sim_policy_version **out, pl_errmsg *e)
{
	char id[24];
	sim_policy_rec *p;
	pl_err rc = policy_lookup(s, name, &p, e);

	if (rc != PL_OK)
		return rc;
	snprintf(id, sizeof(id), "%llu", (unsigned long long)p->next_version_id);
	rc = sim_policy_rec_add_version(p, id, document, sim_now_ms(), e);
	if (rc != PL_OK)
		return rc;
	p->next_version_id++;
	if (set_default)
		p->default_index = p->version_count - 1;
	policy_touch(s, p);
	if (out)
		*out = &p->versions[p->version_count - 1];
	return PL_OK;
}

pl_err sim_state_policy_version_delete(sim_state *s, const char *name, const char *version_id,
				       pl_errmsg *e)
{
	sim_policy_rec *p;
	sim_policy_version *v;
	size_t index;
	pl_err rc = policy_lookup(s, name, &p, e);

	if (rc != PL_OK)
		return rc;
	v = sim_state_policy_version_find(p, version_id);
	if (!v)
		return pl_errmsg_set(e, PL_ERR_NOT_FOUND, "policy %s has no version %s", name,
				     version_id);
	index = (size_t)(v - p->versions);
	if (index == p->default_index)
		return pl_errmsg_set(e, PL_ERR_STATE,
				     "version %s is the default version of policy %s", version_id,
				     name);
	free(v->id);
	sim_doc_unref(v->doc);
	memmove(v, v + 1, (p->version_count - index - 1) * sizeof(*v));
	p->version_count--;
	if (p->default_index > index)
		p->default_index--;
	policy_touch(s, p);
	return PL_OK;
}

pl_err sim_state_policy_set_default(sim_state *s, const char *name, const char *version_id,
				    pl_errmsg *e)
{
	sim_policy_rec *p;
	sim_policy_version *v;
	pl_err rc = policy_lookup(s, name, &p, e);

	if (rc != PL_OK)
		return rc;
	v = sim_state_policy_version_find(p, version_id);
	if (!v)
		return pl_errmsg_set(e, PL_ERR_NOT_FOUND, "policy %s has no version %s", name,
				     version_id);
	p->default_index = (size_t)(v - p->versions);
	policy_touch(s, p);
	return PL_OK;
}

static int attachments_has(const sim_attachments *a, const char *name)
{
	for (size_t i = 0; i < a->count; i++)
		if (strcmp(a->names[i], name) == 0)
			return 1;
	return 0;
}

static int policy_attached_anywhere(sim_state *s, const char *name)
{
	for (size_t i = 0; i < s->certs.count; i++)
		if (attachments_has(&((sim_cert *)s->certs.items[i])->policies, name))
			return 1;
	for (size_t i = 0; i < s->groups.count; i++)
		if (attachments_has(&((sim_thing_group *)s->groups.items[i])->policies, name))
			return 1;
	return 0;
}

pl_err sim_state_policy_delete(sim_state *s, const char *name, pl_errmsg *e)
{
	sim_policy_rec *p;
	pl_err rc = policy_lookup(s, name, &p, e);

	if (rc != PL_OK)
		return rc;
	if (p->version_count > 1)
		return pl_errmsg_set(e, PL_ERR_STATE,
				     "policy %s has non-default versions; delete them first", name);
	if (policy_attached_anywhere(s, name))
		return pl_errmsg_set(e, PL_ERR_STATE, "policy %s is attached to a target", name);
	/* Record the change first, because the key may be the record's own name. */
	sim_state_changed(s, SIM_REC_POLICY, name);
	sim_coll_remove(&s->policies, p);
	sim_policy_rec_free(p);
	return PL_OK;
}

/* ---- attachments ------------------------------------------------------- */

/* Splits "arn:aws:iot:region:account:kind/name" into kind and name. */
static int arn_split(const char *arn, char *kind, size_t kind_len, const char **name)
{
	const char *p = arn;
	const char *slash;

	if (strncmp(p, "arn:", 4) != 0)
		return -1;
	for (int colons = 0; colons < 5; colons++) {
		p = strchr(p, ':');
		if (!p)
			return -1;
		p++;
	}
	slash = strchr(p, '/');
	if (!slash || (size_t)(slash - p) >= kind_len || slash[1] == '\0')
		return -1;
	memcpy(kind, p, (size_t)(slash - p));
	kind[slash - p] = '\0';
	*name = slash + 1;
	return 0;
}

sim_attachments *sim_state_target_policies(sim_state *s, const char *target_arn)
{
	char kind[32];
	const char *name;

	if (arn_split(target_arn, kind, sizeof(kind), &name) != 0)
		return NULL;
	if (strcmp(kind, "cert") == 0) {
		sim_cert *c = sim_coll_find(&s->certs, name);
		return c ? &c->policies : NULL;
	}
	if (strcmp(kind, "thinggroup") == 0) {
		sim_thing_group *g = sim_coll_find(&s->groups, name);
		return g ? &g->policies : NULL;
	}
	return NULL;
}

/* Records a change of the certificate or thing group a target ARN names. */
static void target_changed(sim_state *s, const char *target_arn)
{
	char kind[32];
	const char *name;

	if (arn_split(target_arn, kind, sizeof(kind), &name) != 0)
		return;
	sim_state_changed(s, strcmp(kind, "cert") == 0 ? SIM_REC_CERT : SIM_REC_GROUP, name);
}

pl_err sim_attachments_add(sim_attachments *a, const char *policy_name, pl_errmsg *e)
{
	if (attachments_has(a, policy_name))
		return PL_OK;
	if (a->count == SIM_MAX_POLICIES_PER_TARGET)
		return pl_errmsg_set(e, PL_ERR_LIMIT,
				     "the target already has the maximum of %d policies",
				     SIM_MAX_POLICIES_PER_TARGET);
	a->names[a->count] = sim_strdup(policy_name);
	if (!a->names[a->count])
		return pl_errmsg_set(e, PL_ERR_NOMEM, "attachment: out of memory");
	a->count++;
	return PL_OK;
}

static void attachments_clear(sim_attachments *a)
{
	for (size_t i = 0; i < a->count; i++)
		free(a->names[i]);
	a->count = 0;
}

pl_err sim_state_attach(sim_state *s, const char *policy_name, const char *target_arn,
			pl_errmsg *e)
{
	sim_attachments *a;
	pl_err rc;

	if (!sim_coll_find(&s->policies, policy_name))
		return pl_errmsg_set(e, PL_ERR_NOT_FOUND, "policy %s not found", policy_name);
	a = sim_state_target_policies(s, target_arn);
	if (!a)
		return pl_errmsg_set(e, PL_ERR_NOT_FOUND, "target %s not found", target_arn);
	if (attachments_has(a, policy_name))
		return PL_OK;
	rc = sim_attachments_add(a, policy_name, e);
	if (rc == PL_OK)
		target_changed(s, target_arn);
	return rc;
}

pl_err sim_state_detach(sim_state *s, const char *policy_name, const char *target_arn,
			pl_errmsg *e)
{
	sim_attachments *a = sim_state_target_policies(s, target_arn);

	if (!a)
		return pl_errmsg_set(e, PL_ERR_NOT_FOUND, "target %s not found", target_arn);
	for (size_t i = 0; i < a->count; i++) {
		if (strcmp(a->names[i], policy_name) == 0) {
			free(a->names[i]);
			a->names[i] = a->names[--a->count];
			target_changed(s, target_arn);
			return PL_OK;
		}
	}
	return pl_errmsg_set(e, PL_ERR_NOT_FOUND, "policy %s is not attached to %s", policy_name,
			     target_arn);
}

void sim_state_policy_targets(sim_state *s, const char *policy_name,
			      void (*fn)(void *ctx, const char *target_arn), void *ctx)
{
	for (size_t i = 0; i < s->certs.count; i++) {
		sim_cert *c = s->certs.items[i];
		if (attachments_has(&c->policies, policy_name))
			fn(ctx, c->arn);
	}
	for (size_t i = 0; i < s->groups.count; i++) {
		sim_thing_group *g = s->groups.items[i];
		if (attachments_has(&g->policies, policy_name))
			fn(ctx, g->arn);
	}
}

/* ---- certificates ------------------------------------------------------ */

void sim_cert_free(sim_cert *c)
{
	if (!c)
		return;
	attachments_clear(&c->policies);
	free(c->arn);
	free(c->pem);
	free(c->ca_id);
	free(c);
}

sim_cert *sim_state_cert_find(sim_state *s, const char *id) { return sim_coll_find(&s->certs, id); }
size_t sim_state_cert_count(const sim_state *s) { return s->certs.count; }
sim_cert *sim_state_cert_at(sim_state *s, size_t i) { return i < s->certs.count ? s->certs.items[i] : NULL; }

pl_err sim_cert_new(sim_state *s, const char *pem, const char *ca_id, sim_cert **out,
		    pl_errmsg *e)
{
	sim_cert *c = calloc(1, sizeof(*c));
	pl_err rc;

	if (!c)
		return pl_errmsg_set(e, PL_ERR_NOMEM, "certificate: out of memory");
	rc = sim_certs_id_from_pem(pem, c->id, e);
	if (rc != PL_OK) {
		free(c);
		return rc;
	}
	c->pem = sim_strdup(pem);
	c->arn = sim_make_arn(s, "cert", c->id);
	c->ca_id = sim_strdup(ca_id);
	if (!c->pem || !c->arn || (ca_id && !c->ca_id)) {
		sim_cert_free(c);
		return pl_errmsg_set(e, PL_ERR_NOMEM, "certificate: out of memory");
	}
	*out = c;
	return PL_OK;
}

pl_err sim_state_cert_insert(sim_state *s, sim_cert *c, pl_errmsg *e)
{
	if (sim_coll_find(&s->certs, c->id))
		return pl_errmsg_set(e, PL_ERR_EXISTS, "certificate %s already exists", c->id);
	if (sim_coll_add(&s->certs, c) != 0)
		return pl_errmsg_set(e, PL_ERR_NOMEM, "certificate: out of memory");
	return PL_OK;
}

pl_err sim_state_cert_add(sim_state *s, const char *pem, sim_cert_status status,
			  const char *ca_id, sim_cert **out, pl_errmsg *e)
{
	sim_cert *c;
	pl_err rc = sim_cert_new(s, pem, ca_id, &c, e);

	if (rc != PL_OK)
		return rc;
	c->status = status;
	c->create_ms = c->modify_ms = sim_now_ms();
	rc = sim_state_cert_insert(s, c, e);
	if (rc != PL_OK) {
		sim_cert_free(c);
		return rc;
	}
	sim_state_changed(s, SIM_REC_CERT, c->id);
	if (out)
		*out = c;
	return PL_OK;
}

pl_err sim_state_cert_set_status(sim_state *s, const char *cert_id, sim_cert_status status,
				 pl_errmsg *e)
{
	sim_cert *c = sim_coll_find(&s->certs, cert_id);

	if (!c)
		return pl_errmsg_set(e, PL_ERR_NOT_FOUND, "certificate %s not found", cert_id);
	c->status = status;
	c->modify_ms = sim_now_ms();
	sim_state_changed(s, SIM_REC_CERT, c->id);
	return PL_OK;
}

static int thing_has_principal(const sim_thing *t, const char *arn)
{
	for (size_t i = 0; i < t->principal_count; i++)
		if (strcmp(t->principals[i], arn) == 0)
			return 1;
	return 0;
}

pl_err sim_state_cert_delete(sim_state *s, const char *cert_id, pl_errmsg *e)
{
	sim_cert *c = sim_coll_find(&s->certs, cert_id);

	if (!c)
		return pl_errmsg_set(e, PL_ERR_NOT_FOUND, "certificate %s not found", cert_id);
	if (c->status == SIM_CERT_ACTIVE)
		return pl_errmsg_set(e, PL_ERR_STATE, "certificate %s is ACTIVE", cert_id);
	if (c->policies.count > 0)
		return pl_errmsg_set(e, PL_ERR_STATE, "certificate %s has policies attached",
				     cert_id);
	for (size_t i = 0; i < s->things.count; i++)
		if (thing_has_principal(s->things.items[i], c->arn))
			return pl_errmsg_set(e, PL_ERR_STATE,
					     "certificate %s is attached to a thing", cert_id);
	/* Record the change first, because the key may be the record's own name. */
	sim_state_changed(s, SIM_REC_CERT, cert_id);
	sim_coll_remove(&s->certs, c);
	sim_cert_free(c);
	return PL_OK;
}

static const char *const status_names[] = {
	[SIM_CERT_ACTIVE] = "ACTIVE",
	[SIM_CERT_INACTIVE] = "INACTIVE",
	[SIM_CERT_REVOKED] = "REVOKED",
	[SIM_CERT_PENDING_TRANSFER] = "PENDING_TRANSFER",
	[SIM_CERT_REGISTER_INACTIVE] = "REGISTER_INACTIVE",
	[SIM_CERT_PENDING_ACTIVATION] = "PENDING_ACTIVATION",
};

const char *sim_cert_status_name(sim_cert_status st)
{
	assert((size_t)st < sizeof(status_names) / sizeof(status_names[0]));
	return status_names[st];
}

pl_err sim_cert_status_parse(const char *text, sim_cert_status *out, pl_errmsg *e)
{
	for (size_t i = 0; i < sizeof(status_names) / sizeof(status_names[0]); i++) {
		if (strcmp(text, status_names[i]) == 0) {
			*out = (sim_cert_status)i;
			return PL_OK;
		}
	}
	return pl_errmsg_set(e, PL_ERR_INVALID,
			     "invalid certificate status '%s' (expected ACTIVE, INACTIVE, REVOKED, "
			     "PENDING_TRANSFER, REGISTER_INACTIVE or PENDING_ACTIVATION)", text);
}
