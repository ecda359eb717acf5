/* The connected-client registry (simulator/presence.h): a chained hash table under one mutex. */
#include "simulator/presence.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct presence_entry {
	struct presence_entry *next;
	int64_t next_version; /* versionNumber of the client id's next connection */
	int64_t open;         /* open connections */
	char client_id[];
} presence_entry;

struct sim_presence {
	pthread_mutex_t lock;
	presence_entry **buckets;
	size_t bucket_count; /* a power of two */
	size_t entry_count;
};

#define INITIAL_BUCKETS 1024

static uint64_t hash_string(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

pl_err sim_presence_create(sim_presence **out)
{
	sim_presence *pr = calloc(1, sizeof(*pr));

	if (pr == NULL)
		return PL_ERR_NOMEM;
	pr->buckets = calloc(INITIAL_BUCKETS, sizeof(*pr->buckets));
	if (pr->buckets == NULL) {
		free(pr);
		return PL_ERR_NOMEM;
	}
	pr->bucket_count = INITIAL_BUCKETS;
	pthread_mutex_init(&pr->lock, NULL);
	*out = pr;
	return PL_OK;
}

void sim_presence_free(sim_presence *pr)
{
	if (pr == NULL)
		return;
	for (size_t i = 0; i < pr->bucket_count; i++) {
		while (pr->buckets[i] != NULL) {
			presence_entry *next = pr->buckets[i]->next;
			free(pr->buckets[i]);
			pr->buckets[i] = next;
		}
	}
	pthread_mutex_destroy(&pr->lock);
	free(pr->buckets);
	free(pr);
}

static presence_entry *find(const sim_presence *pr, const char *client_id)
{
	presence_entry *e = pr->buckets[hash_string(client_id) & (pr->bucket_count - 1)];

	while (e != NULL && strcmp(e->client_id, client_id) != 0)
		e = e->next;
	return e;
}

/* Doubles the table when it has more entries than buckets. A failed grow keeps the old table. */
static void maybe_grow(sim_presence *pr)
{
	size_t count = pr->bucket_count * 2;
	presence_entry **buckets;

	if (pr->entry_count < pr->bucket_count)
		return;
	buckets = calloc(count, sizeof(*buckets));
	if (buckets == NULL)
		return;
	for (size_t i = 0; i < pr->bucket_count; i++) {
		while (pr->buckets[i] != NULL) {
			presence_entry *e = pr->buckets[i];
			size_t slot = hash_string(e->client_id) & (count - 1);
			pr->buckets[i] = e->next;
			e->next = buckets[slot];
			buckets[slot] = e;
		}
	}
	free(pr->buckets);
	pr->buckets = buckets;
	pr->bucket_count = count;
}

static presence_entry *insert(sim_presence *pr, const char *client_id)
{
	size_t len = strlen(client_id) + 1;
	presence_entry *e = calloc(1, sizeof(*e) + len);
	size_t slot;

	if (e == NULL)
		return NULL;
	memcpy(e->client_id, client_id, len);
	maybe_grow(pr);
	slot = hash_string(client_id) & (pr->bucket_count - 1);
	e->next = pr->buckets[slot];
	pr->buckets[slot] = e;
	pr->entry_count++;
	return e;
}

pl_err sim_presence_connect(sim_presence *pr, const char *client_id, int64_t *version,
			    int64_t *others)
{
	presence_entry *e;
	pl_err err = PL_OK;

	pthread_mutex_lock(&pr->lock);
	e = find(pr, client_id);
	if (e == NULL)
		e = insert(pr, client_id);
	if (e == NULL) {
		err = PL_ERR_NOMEM;
	} else {
		*version = e->next_version++;
		*others = e->open++;
	}
	pthread_mutex_unlock(&pr->lock);
	return err;
}

void sim_presence_disconnect(sim_presence *pr, const char *client_id)
{
	presence_entry *e;

	pthread_mutex_lock(&pr->lock);
	e = find(pr, client_id);
	if (e != NULL && e->open > 0)
		e->open--;
	pthread_mutex_unlock(&pr->lock);
}

int sim_presence_connected(sim_presence *pr, const char *client_id)
{
	presence_entry *e;
	int connected;

	pthread_mutex_lock(&pr->lock);
	e = find(pr, client_id);
	connected = e != NULL && e->open > 0;
	pthread_mutex_unlock(&pr->lock);
	return connected;
}
