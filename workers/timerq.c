#include "workers/timerq.h"

#include <stdlib.h>

struct timerq {
	timerq_entry *heap;
	size_t len;
	size_t cap;
	timerq_stale_fn stale;
	void *ctx;
};

pl_err timerq_create(timerq **out, size_t capacity, timerq_stale_fn stale, void *ctx,
		     pl_errmsg *e)
{
	timerq *q = calloc(1, sizeof(*q));

	if (q == NULL || capacity == 0)
		goto fail;
	q->heap = calloc(capacity, sizeof(*q->heap));
	if (q->heap == NULL)
		goto fail;
	q->cap = capacity;
	q->stale = stale;
	q->ctx = ctx;
	*out = q;
	return PL_OK;
fail:
	free(q);
	return pl_errmsg_set(e, PL_ERR_NOMEM, "timer queue: out of memory for %zu entries",
			     capacity);
}

void timerq_free(timerq *q)
{
	if (q == NULL)
		return;
	free(q->heap);
	free(q);
}

static void swap_entries(timerq_entry *a, timerq_entry *b)
{
	timerq_entry t = *a;

	*a = *b;
	*b = t;
}

static void sift_up(timerq *q, size_t i)
{
	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (q->heap[parent].t_ns <= q->heap[i].t_ns)
			break;
		swap_entries(&q->heap[parent], &q->heap[i]);
		i = parent;
	}
}

static void sift_down(timerq *q, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1;
		size_t r = l + 1;
		size_t min = i;

		if (l < q->len && q->heap[l].t_ns < q->heap[min].t_ns)
			min = l;
		if (r < q->len && q->heap[r].t_ns < q->heap[min].t_ns)
			min = r;
		if (min == i)
			return;
		swap_entries(&q->heap[min], &q->heap[i]);
		i = min;
	}
}

/* Drops stale entries and rebuilds the heap. */
static void compact(timerq *q)
{
	size_t kept = 0;

	for (size_t i = 0; i < q->len; i++)
		if (q->stale == NULL || !q->stale(q->ctx, &q->heap[i]))
			q->heap[kept++] = q->heap[i];
	q->len = kept;
	for (size_t i = q->len / 2; i-- > 0;)
		sift_down(q, i);
}

pl_err timerq_push(timerq *q, int64_t t_ns, uint32_t owner, uint32_t tag)
{
	if (q->len == q->cap)
		compact(q);
	if (q->len == q->cap)
		return PL_ERR_LIMIT;
	q->heap[q->len] = (timerq_entry){ t_ns, owner, tag };
	sift_up(q, q->len);
	q->len++;
	return PL_OK;
}

int64_t timerq_next(const timerq *q)
{
	return q->len > 0 ? q->heap[0].t_ns : INT64_MAX;
}

int timerq_pop_due(timerq *q, int64_t now, timerq_entry *out)
{
	if (q->len == 0 || q->heap[0].t_ns > now)
		return 0;
	*out = q->heap[0];
	q->len--;
	if (q->len > 0) {
		q->heap[0] = q->heap[q->len];
		sift_down(q, 0);
	}
	return 1;
}

size_t timerq_size(const timerq *q)
{
	return q->len;
}
