/*
 * Connections seen by the plugin and their policy snapshots: each
 * connection authorizes against its own snapshot of its certificate's
 * effective policies, refreshed on the schedule of the propagation model.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "simulator/plugin_internal.h"

static size_t hash_ptr(const void *ptr, size_t size)
{
	uint64_t x = (uint64_t)(uintptr_t)ptr;

	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return (size_t)x & (size - 1);
}

plugin_conn *plugin_conn_find(plugin *p, const struct mosquitto *client)
{
	if (!p->table)
		return NULL;
	for (plugin_conn *c = p->table[hash_ptr(client, p->table_size)]; c; c = c->hash_next)
		if (c->client == client)
			return c;
	return NULL;
}

static int table_grow(plugin *p)
{
	size_t size = p->table_size ? p->table_size * 2 : 1024;
	plugin_conn **table = calloc(size, sizeof(*table));

	if (!table)
		return -1;
	for (plugin_conn *c = p->conns; c; c = c->next) {
		size_t h = hash_ptr(c->client, size);
		c->hash_next = table[h];
		table[h] = c;
	}
	free(p->table);
	p->table = table;
	p->table_size = size;
	return 0;
}

pl_err plugin_conn_add(plugin *p, struct mosquitto *client, plugin_conn **out)
{
	plugin_conn *c = calloc(1, sizeof(*c));
	size_t h;

	if (!c)
		return PL_ERR_NOMEM;
	if (p->conn_count + 1 > p->table_size && table_grow(p) != 0) {
		free(c);
		return PL_ERR_NOMEM;
	}
	c->client = client;
	c->id = ++p->next_conn_id;
	c->connect_mono_ns = pl_mono_ns();
	c->next_refresh_ns = INT64_MAX;
	sim_quota_bucket_init(&c->publish_bucket, p->cfg.publish_rate_per_connection,
			      c->connect_mono_ns);
	c->sub_burst_tick = -1;
	c->next = p->conns;
	if (p->conns)
		p->conns->prev = c;
	p->conns = c;
	h = hash_ptr(client, p->table_size);
	c->hash_next = p->table[h];
	p->table[h] = c;
	p->conn_count++;
	*out = c;
	return PL_OK;
}

void plugin_decisions_clear(plugin_conn *c)
{
	for (size_t i = 0; i < PLUGIN_DECISION_SLOTS; i++) {
		free(c->decisions[i].name);
		c->decisions[i].name = NULL;
		c->decisions[i].hash = 0;
	}
}

static void conn_free(plugin_conn *c)
{
	plugin_decisions_clear(c);
	sim_snapshot_free(c->snapshot);
	sim_cert_fields_free(c->cert_fields);
	free(c->set);
	free(c->client_id);
	free(c);
}

void plugin_conn_remove(plugin *p, plugin_conn *c)
{
	plugin_conn **link = &p->table[hash_ptr(c->client, p->table_size)];

	while (*link != c)
		link = &(*link)->hash_next;
	*link = c->hash_next;
	if (c->prev)
		c->prev->next = c->next;
	else
		p->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	p->conn_count--;
	conn_free(c);
}

/*
 * Marks c closed. mosquitto 2.0.11 runs the disconnect event before it
 * checks and sends the client's will, so the entry (and its snapshot) must
 * live until the next tick to authorize the will's publish.
 */
void plugin_conn_close(plugin *p, plugin_conn *c)
{
	if (c->closed)
		return;
	if (p->closed_count == p->closed_cap) {
		size_t cap = p->closed_cap ? p->closed_cap * 2 : 64;
		plugin_conn **grown = realloc(p->closed, cap * sizeof(*grown));
		if (!grown) {
			plugin_event_closed_flush(c);
			plugin_conn_remove(p, c);
			return;
		}
		p->closed = grown;
		p->closed_cap = cap;
	}
	c->closed = 1;
	p->closed[p->closed_count++] = c;
}

void plugin_conn_discard(plugin *p, plugin_conn *c)
{
	plugin_event_closed_flush(c);
	for (size_t i = 0; c->closed && i < p->closed_count; i++) {
		if (p->closed[i] == c) {
			p->closed[i] = p->closed[--p->closed_count];
			break;
		}
	}
	plugin_conn_remove(p, c);
}

void plugin_conns_sweep(plugin *p)
{
	for (size_t i = 0; i < p->closed_count; i++) {
		plugin_event_closed_flush(p->closed[i]);
		plugin_conn_remove(p, p->closed[i]);
	}
	p->closed_count = 0;
}

void plugin_conns_free(plugin *p)
{
	free(p->closed);
	p->closed = NULL;
	p->closed_count = p->closed_cap = 0;
	while (p->conns) {
		plugin_conn *next = p->conns->next;
		conn_free(p->conns);
		p->conns = next;
	}
	free(p->table);
	p->table = NULL;
	p->table_size = 0;
	p->conn_count = 0;
}

/* Points c at snap (taking a reference) and rebuilds its policy set. */
static int conn_use_snapshot(plugin_conn *c, sim_snapshot *snap)
{
	const sim_policy **set = calloc(snap->entry_count + 1, sizeof(*set));

	if (!set)
		return -1;
	for (size_t i = 0; i < snap->entry_count; i++)
		set[i] = sim_doc_compiled(snap->entries[i].doc);
	free(c->set);
	c->set = set;
	plugin_decisions_clear(c);
	sim_snapshot_free(c->snapshot);
	c->snapshot = sim_snapshot_ref(snap);
	return 0;
}

/* ---- principal cache (connect_fresh_snapshot false) ---------------------
 *
 * The latest snapshot of each certificate and client id pair with its
 * refresh deadline, kept after the connection closes, so that a reconnect
 * within the deadline authorizes with the cached policies.
 */
struct plugin_cache_entry {
	struct plugin_cache_entry *next;
	sim_snapshot *snapshot;
	int64_t deadline_ns;
	char key[]; /* "<cert id>/<client id>" */
};

#define CACHE_BUCKETS 4096

static size_t cache_hash(const char *cert_id, const char *client_id)
{
	uint64_t h = 1469598103934665603ULL;

	for (const char *s = cert_id; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	h = (h ^ '/') * 1099511628211ULL;
	for (const char *s = client_id; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return (size_t)h & (CACHE_BUCKETS - 1);
}

static int cache_key_is(const plugin_cache_entry *entry, const plugin_conn *c)
{
	size_t n = strlen(c->cert_id);

	return strncmp(entry->key, c->cert_id, n) == 0 && entry->key[n] == '/' &&
	       strcmp(entry->key + n + 1, c->client_id) == 0;
}

static plugin_cache_entry **cache_slot(plugin *p, const plugin_conn *c)
{
	plugin_cache_entry **link = &p->cache[cache_hash(c->cert_id, c->client_id)];

	while (*link && !cache_key_is(*link, c))
		link = &(*link)->next;
	return link;
}

/* Remembers c's snapshot and deadline for later connections. */
static void cache_store(plugin *p, const plugin_conn *c)
{
	plugin_cache_entry **link;
	plugin_cache_entry *entry;
	size_t len;

	if (p->cfg.connect_fresh_snapshot || !c->snapshot)
		return;
	if (!p->cache && !(p->cache = calloc(CACHE_BUCKETS, sizeof(*p->cache))))
		return;
	link = cache_slot(p, c);
	entry = *link;
	if (!entry) {
		len = strlen(c->cert_id) + strlen(c->client_id) + 2;
		entry = calloc(1, sizeof(*entry) + len);
		if (!entry)
			return;
		snprintf(entry->key, len, "%s/%s", c->cert_id, c->client_id);
		*link = entry;
	}
	sim_snapshot_free(entry->snapshot);
	entry->snapshot = sim_snapshot_ref(c->snapshot);
	entry->deadline_ns = c->next_refresh_ns;
}

/* The cached entry for c's certificate and client id, if still valid. */
static plugin_cache_entry *cache_lookup(plugin *p, const plugin_conn *c, int64_t now)
{
	plugin_cache_entry *entry;

	if (p->cfg.connect_fresh_snapshot || !p->cache ||
	    p->cfg.propagation.kind == SIM_PROP_IMMEDIATE)
		return NULL;
	entry = *cache_slot(p, c);
	return entry && now < entry->deadline_ns ? entry : NULL;
}

void plugin_cache_free(plugin *p)
{
	for (size_t i = 0; p->cache && i < CACHE_BUCKETS; i++) {
		while (p->cache[i]) {
			plugin_cache_entry *next = p->cache[i]->next;
			sim_snapshot_free(p->cache[i]->snapshot);
			free(p->cache[i]);
			p->cache[i] = next;
		}
	}
	free(p->cache);
	p->cache = NULL;
}

static void schedule_first(plugin *p, plugin_conn *c, int64_t now)
{
	int64_t delay = sim_propagation_next_delay(&p->cfg.propagation, 1, &p->rng);

	c->next_refresh_ns = delay > 0 ? now + delay : INT64_MAX;
	if (c->next_refresh_ns < p->next_scan_ns)
		p->next_scan_ns = c->next_refresh_ns;
}

pl_err plugin_conn_snapshot(plugin *p, plugin_conn *c, const char *reason)
{
	int64_t now = pl_mono_ns();
	plugin_cache_entry *cached = cache_lookup(p, c, now);
	sim_snapshot *snap;

	if (cached) {
		/* Inherit the cached view and its schedule instead of a fresh one. */
		if (conn_use_snapshot(c, cached->snapshot) != 0)
			return PL_ERR_NOMEM;
		c->next_refresh_ns = cached->deadline_ns;
		if (c->next_refresh_ns < p->next_scan_ns)
			p->next_scan_ns = c->next_refresh_ns;
		plugin_log_snapshot(p, c, "inherit", 0, now, now);
		return PL_OK;
	}
	if (sim_state_snapshot_take(p->state, c->cert_id, c->client_id, &snap) != PL_OK)
		return PL_ERR_NOMEM;
	if (conn_use_snapshot(c, snap) != 0) {
		sim_snapshot_free(snap);
		return PL_ERR_NOMEM;
	}
	sim_snapshot_free(snap);
	p->counters.snapshots++;
	schedule_first(p, c, now);
	cache_store(p, c);
	plugin_log_snapshot(p, c, reason, 1, c->snapshot->taken_ns, c->snapshot->taken_ns);
	return PL_OK;
}

/* Refreshes c's snapshot at its deadline and schedules the next one. */
static void conn_refresh(plugin *p, plugin_conn *c, int64_t now)
{
	int64_t scheduled = c->next_refresh_ns;
	int64_t delay = sim_propagation_next_delay(&p->cfg.propagation, 0, &p->rng);
	sim_snapshot *snap;
	int changed;

	c->next_refresh_ns = delay > 0 ? scheduled + delay : INT64_MAX;
	/* A deadline missed by more than a period (a stalled broker) restarts
	 * the schedule from now instead of refreshing in a burst. */
	if (c->next_refresh_ns <= now)
		c->next_refresh_ns = now + delay;
	if (sim_state_snapshot_take(p->state, c->cert_id, c->client_id, &snap) != PL_OK) {
		PL_WARN("sim", "policy refresh of connection %llu skipped: out of memory",
			(unsigned long long)c->id);
		return;
	}
	changed = !sim_snapshot_same_policies(c->snapshot, snap);
	if (!changed || conn_use_snapshot(c, snap) == 0) {
		p->counters.refreshes++;
		p->counters.refresh_changes += (uint64_t)changed;
		/* Dated when the store was read, not when the refresh began, because a
		 * control-plane call may hold the store's lock in between. The ground
		 * truth must not date that call's change before the call was sent. */
		plugin_log_snapshot(p, c, "refresh", changed, scheduled, snap->taken_ns);
	}
	cache_store(p, c);
	sim_snapshot_free(snap);
}

void plugin_conn_maybe_refresh(plugin *p, plugin_conn *c, int64_t now)
{
	if (p->cfg.propagation.kind == SIM_PROP_IMMEDIATE) {
		sim_snapshot *snap;
		/* Every check uses the store as it is, and only changes are logged.
		 * An unchanged generation means an unchanged store. */
		if (sim_state_generation_locked(p->state) == c->snapshot->generation)
			return;
		if (sim_state_snapshot_take(p->state, c->cert_id, c->client_id, &snap) != PL_OK)
			return;
		if (!sim_snapshot_same_policies(c->snapshot, snap) && conn_use_snapshot(c, snap) == 0)
			plugin_log_snapshot(p, c, "refresh", 1, snap->taken_ns, snap->taken_ns);
		sim_snapshot_free(snap);
		return;
	}
	if (now >= c->next_refresh_ns)
		conn_refresh(p, c, now);
}

void plugin_refresh_due(plugin *p, int64_t now)
{
	int64_t earliest = INT64_MAX;

	if (now < p->next_scan_ns || p->cfg.propagation.kind == SIM_PROP_IMMEDIATE)
		return;
	for (plugin_conn *c = p->conns; c; c = c->next) {
		if (!c->authorized || c->closed)
			continue;
		if (now >= c->next_refresh_ns)
			conn_refresh(p, c, now);
		if (c->next_refresh_ns < earliest)
			earliest = c->next_refresh_ns;
	}
	p->next_scan_ns = earliest;
}

void plugin_reschedule_all(plugin *p, int64_t now)
{
	p->next_scan_ns = INT64_MAX;
	for (plugin_conn *c = p->conns; c; c = c->next)
		if (c->authorized)
			schedule_first(p, c, now);
}
