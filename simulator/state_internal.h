/*
 * Internals shared by the state store's source files (state.c, state_things.c,
 * state_file.c). Not for other modules.
 */
#ifndef SIM_STATE_INTERNAL_H
#define SIM_STATE_INTERNAL_H

#include <pthread.h>

#include "simulator/state.h"

/* An array of records plus an open-addressing hash index on their names. */
typedef struct sim_coll {
	void **items;
	size_t count;
	size_t cap;
	size_t *slots;      /* item index + 1, 0 = empty; slot_count is a power of two */
	size_t slot_count;
	const char *(*key)(const void *item);
} sim_coll;

struct sim_state {
	pthread_mutex_t lock;
	char *path;
	char *region;
	char *account;
	uint64_t generation;
	sim_coll policies; /* sim_policy_rec * */
	sim_coll certs;    /* sim_cert * */
	sim_coll things;   /* sim_thing * */
	sim_coll groups;   /* sim_thing_group * */
};

char *sim_strdup(const char *s);
int64_t sim_now_ms(void);
void sim_state_changed(sim_state *s);

void *sim_coll_find(const sim_coll *c, const char *key);
int sim_coll_add(sim_coll *c, void *item);
void sim_coll_remove(sim_coll *c, void *item);

void sim_policy_rec_free(sim_policy_rec *p);
void sim_cert_free(sim_cert *c);
void sim_thing_free(sim_thing *t);
void sim_group_free(sim_thing_group *g);

pl_err sim_policy_rec_new(sim_state *s, const char *name, sim_policy_rec **out, pl_errmsg *e);
pl_err sim_policy_rec_add_version(sim_policy_rec *p, const char *id, const char *document,
			      int64_t create_ms, pl_errmsg *e);
pl_err sim_state_policy_insert(sim_state *s, sim_policy_rec *p, pl_errmsg *e);
pl_err sim_cert_new(sim_state *s, const char *pem, const char *ca_id, sim_cert **out,
		    pl_errmsg *e);
pl_err sim_state_cert_insert(sim_state *s, sim_cert *c, pl_errmsg *e);
pl_err sim_attachments_add(sim_attachments *a, const char *policy_name, pl_errmsg *e);
char *sim_make_arn(const sim_state *s, const char *kind, const char *name);

#endif
