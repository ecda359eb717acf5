#include "simulator/actions.h"

#include <assert.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"

/* A queued action and the monotonic time at which it becomes due. */
typedef struct queued_action {
	sim_broker_action action;
	int64_t due_ns;
} queued_action;

struct sim_broker_queue {
	pthread_mutex_t lock;
	queued_action *slots;
	size_t capacity;
	size_t length;
	uint64_t dropped;
};

void sim_broker_action_clear(sim_broker_action *a)
{
	if (a == NULL)
		return;
	free(a->topic);
	free(a->payload);
	free(a->client_id);
	free(a->cert_id);
	free(a->propagation);
	memset(a, 0, sizeof(*a));
}

pl_err sim_broker_queue_create(sim_broker_queue **out, size_t capacity)
{
	sim_broker_queue *q;

	assert(capacity >= 1);
	q = calloc(1, sizeof(*q));
	if (q == NULL)
		return PL_ERR_NOMEM;
	q->slots = calloc(capacity, sizeof(*q->slots));
	if (q->slots == NULL) {
		free(q);
		return PL_ERR_NOMEM;
	}
	q->capacity = capacity;
	pthread_mutex_init(&q->lock, NULL);
	*out = q;
	return PL_OK;
}

void sim_broker_queue_free(sim_broker_queue *q)
{
	if (q == NULL)
		return;
	for (size_t i = 0; i < q->length; i++)
		sim_broker_action_clear(&q->slots[i].action);
	pthread_mutex_destroy(&q->lock);
	free(q->slots);
	free(q);
}

pl_err sim_broker_queue_push(sim_broker_queue *q, sim_broker_action *a)
{
	pl_err err = PL_OK;

	pthread_mutex_lock(&q->lock);
	if (q->length == q->capacity) {
		q->dropped++;
		err = PL_ERR_LIMIT;
	} else {
		queued_action *slot = &q->slots[q->length++];
		slot->action = *a;
		slot->due_ns = pl_mono_ns() + (a->delay_ns > 0 ? a->delay_ns : 0);
		memset(a, 0, sizeof(*a));
	}
	pthread_mutex_unlock(&q->lock);
	return err;
}

/*
 * Moves the due actions out of the queue into batch (keeping the order of the
 * rest) so that fn can run without the lock held. Returns how many moved.
 */
static size_t take_due(sim_broker_queue *q, queued_action *batch, size_t max)
{
	int64_t now = pl_mono_ns();
	size_t taken = 0, kept = 0;

	for (size_t i = 0; i < q->length; i++) {
		if (q->slots[i].due_ns <= now && taken < max)
			batch[taken++] = q->slots[i];
		else
			q->slots[kept++] = q->slots[i];
	}
	q->length = kept;
	return taken;
}

size_t sim_broker_queue_drain(sim_broker_queue *q,
			      void (*fn)(void *ctx, const sim_broker_action *a), void *ctx)
{
	queued_action batch[64];
	size_t total = 0, n;

	/* Bounded batches keep the stack small; a push during fn waits for the next drain. */
	do {
		pthread_mutex_lock(&q->lock);
		n = take_due(q, batch, sizeof(batch) / sizeof(batch[0]));
		pthread_mutex_unlock(&q->lock);
		for (size_t i = 0; i < n; i++) {
			fn(ctx, &batch[i].action);
			sim_broker_action_clear(&batch[i].action);
		}
		total += n;
	} while (n == sizeof(batch) / sizeof(batch[0]));
	return total;
}

uint64_t sim_broker_queue_dropped(sim_broker_queue *q)
{
	uint64_t n;

	pthread_mutex_lock(&q->lock);
	n = q->dropped;
	pthread_mutex_unlock(&q->lock);
	return n;
}

size_t sim_broker_queue_length(sim_broker_queue *q)
{
	size_t n;

	pthread_mutex_lock(&q->lock);
	n = q->length;
	pthread_mutex_unlock(&q->lock);
	return n;
}
