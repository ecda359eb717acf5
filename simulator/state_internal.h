/*
 * Internals shared by the state store's source files (state.c, state_things.c,
 * state_file.c, state_journal.c). Not for other modules.
 */
#ifndef SIM_STATE_INTERNAL_H
#define SIM_STATE_INTERNAL_H

#include <pthread.h>

#include <jansson.h>

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

/* The kinds of records, in the order a load inserts them (groups refer to things). */
typedef enum sim_rec_kind {
	SIM_REC_POLICY = 0,
	SIM_REC_CERT,
	SIM_REC_THING,
	SIM_REC_GROUP,
	SIM_REC__COUNT
} sim_rec_kind;

/* One record changed since the last save: its kind and key (name or certificate id). */
typedef struct sim_change {
	sim_rec_kind kind;
	char *key;
} sim_change;

struct sim_state {
	pthread_mutex_t lock;
	char *path;
	char *journal_path;      /* path + ".journal", NULL without a path */
	char *region;
	char *account;
	uint64_t generation;
	sim_coll policies; /* sim_policy_rec * */
	sim_coll certs;    /* sim_cert * */
	sim_coll things;   /* sim_thing * */
	sim_coll groups;   /* sim_thing_group * */

	/* Changes since the last save, one entry per record. */
	sim_change *changes;
	size_t change_count;
	int changes_overflow;    /* too many to list, so the next save writes a snapshot */
	int loading;             /* set while a load inserts records, which need no journal line */

	int journal_fd;          /* open for appends after the first snapshot, -1 before */
	size_t journal_bytes;    /* journal size after the last append or snapshot */
	size_t journal_max_bytes; /* configured bound, 0 for the default */
	size_t snapshot_bytes;   /* state file size at the last load or snapshot */
};

char *sim_strdup(const char *s);
int64_t sim_now_ms(void);

/* Counts a change (the generation) and records which record changed, for the journal. */
void sim_state_changed(sim_state *s, sim_rec_kind kind, const char *key);
void sim_state_changes_clear(sim_state *s);
sim_coll *sim_state_coll(sim_state *s, sim_rec_kind kind);
void sim_state_record_remove(sim_state *s, sim_rec_kind kind, const char *key);

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

/* state_file.c: the snapshot and the JSON form of one record. */
const char *sim_rec_array_name(sim_rec_kind kind);  /* "policies", "certificates", ... */
const char *sim_rec_key_member(sim_rec_kind kind);  /* "name", or "id" for certificates */
json_t *sim_rec_json(sim_rec_kind kind, const void *record);
/* Inserts the record j describes. where prefixes error messages ("state file X: things[2]"). */
pl_err sim_rec_load(sim_state *s, sim_rec_kind kind, json_t *j, const char *where,
		    pl_errmsg *e);
/* Writes the whole store to the state file atomically and sets *bytes to its size. */
pl_err sim_state_snapshot_write(sim_state *s, size_t *bytes, pl_errmsg *e);
/* Loads the state file into an empty store. A missing file is an empty store. */
pl_err sim_state_snapshot_read(sim_state *s, pl_errmsg *e);

/* state_journal.c */
void sim_state_journal_close(sim_state *s);

#endif
