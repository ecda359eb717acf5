/*
 * Token buckets and the per-key bucket table. See quota.h.
 */
#include "simulator/quota.h"

#include <stdlib.h>

#include "common/clock.h"

#define TABLE_PROBES 8
#define IDLE_REUSE_NS (2 * PL_NS_PER_S)

void sim_quota_bucket_init(sim_quota_bucket *b, double rate, int64_t now_ns)
{
	b->rate = rate;
	b->burst = rate < 1 ? 1 : rate;
	b->tokens = b->burst;
	b->last_ns = now_ns;
}

int sim_quota_take(sim_quota_bucket *b, int64_t now_ns)
{
	if (b->rate <= 0)
		return 1;
	if (now_ns > b->last_ns) {
		b->tokens += (double)(now_ns - b->last_ns) * b->rate / (double)PL_NS_PER_S;
		if (b->tokens > b->burst)
			b->tokens = b->burst;
		b->last_ns = now_ns;
	}
	if (b->tokens < 1.0)
		return 0;
	b->tokens -= 1.0;
	return 1;
}

typedef struct slot {
	uint64_t hash; /* 0 = empty */
	sim_quota_bucket bucket;
} slot;

struct sim_quota_table {
	double rate;
	size_t size; /* power of two */
	uint64_t overflows;
	slot *slots;
};

pl_err sim_quota_table_create(sim_quota_table **out, double rate, size_t slots, pl_errmsg *e)
{
	sim_quota_table *t = calloc(1, sizeof(*t));
	size_t size = 16;

	while (size < slots)
		size *= 2;
	if (!t || !(t->slots = calloc(size, sizeof(*t->slots)))) {
		free(t);
		return pl_errmsg_set(e, PL_ERR_NOMEM, "quota table: out of memory");
	}
	t->rate = rate;
	t->size = size;
	*out = t;
	return PL_OK;
}

void sim_quota_table_free(sim_quota_table *t)
{
	if (!t)
		return;
	free(t->slots);
	free(t);
}

static uint64_t key_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h ? h : 1;
}

int sim_quota_table_take(sim_quota_table *t, const char *key, int64_t now_ns)
{
	uint64_t h = key_hash(key);
	slot *reusable = NULL;

	if (t->rate <= 0)
		return 1;
	for (size_t i = 0; i < TABLE_PROBES; i++) {
		slot *s = &t->slots[(h + i) & (t->size - 1)];
		if (s->hash == h)
			return sim_quota_take(&s->bucket, now_ns);
		if (!reusable && (s->hash == 0 || now_ns - s->bucket.last_ns > IDLE_REUSE_NS))
			reusable = s;
	}
	if (!reusable) {
		t->overflows++;
		return 1;
	}
	reusable->hash = h;
	sim_quota_bucket_init(&reusable->bucket, t->rate, now_ns);
	return sim_quota_take(&reusable->bucket, now_ns);
}

uint64_t sim_quota_table_overflows(const sim_quota_table *t)
{
	return t->overflows;
}
