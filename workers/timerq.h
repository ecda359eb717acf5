/*
 * A bounded timer queue: a binary min-heap of (time, owner, tag) entries.
 *
 * Owners reschedule by pushing a new entry with a new tag; the caller keeps
 * the current tag per owner and ignores popped entries whose tag is stale,
 * so nothing is ever searched for or removed from the middle. When the heap
 * is full, timerq_push compacts it with the caller's staleness test before
 * giving up. Not thread-safe: the driver thread owns it.
 */
#ifndef PL_WORKER_TIMERQ_H
#define PL_WORKER_TIMERQ_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

typedef struct timerq_entry {
	int64_t t_ns;
	uint32_t owner;
	uint32_t tag;
} timerq_entry;

/* Returns nonzero when entry e no longer matters (its owner has rescheduled). */
typedef int (*timerq_stale_fn)(void *ctx, const timerq_entry *e);

typedef struct timerq timerq;

pl_err timerq_create(timerq **out, size_t capacity, timerq_stale_fn stale, void *ctx,
		     pl_errmsg *e);
void timerq_free(timerq *q);

/* Adds an entry. PL_ERR_LIMIT when full even after dropping stale entries. */
pl_err timerq_push(timerq *q, int64_t t_ns, uint32_t owner, uint32_t tag);

/* The earliest entry's time, or INT64_MAX when empty. */
int64_t timerq_next(const timerq *q);

/* Removes the earliest entry into *out if its time is <= now; returns 1, else 0. */
int timerq_pop_due(timerq *q, int64_t now, timerq_entry *out);

size_t timerq_size(const timerq *q);

#endif
