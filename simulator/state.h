/*
 * The simulator's registry: policies with their versions, certificates,
 * things and thing groups, and which policies are attached to which target.
 * One store is shared by the broker plugin (broker thread) and the HTTP
 * control-plane API (its own threads).
 *
 * Locking rule: one mutex guards the whole store. Every function in this
 * header that reads or changes records must be called with the lock held
 * (sim_state_lock / sim_state_unlock), except sim_state_create,
 * sim_state_free, sim_state_snapshot_take and the snapshot functions, which
 * take the lock themselves or need none. Pointers returned by the getters
 * stay valid only until the lock is released. The store has no other lock,
 * so no lock order applies. Callers must not call into the broker while
 * holding it.
 *
 * Persistence: the store lives in two files. The state file is a snapshot
 * of the whole store as one JSON document, written atomically (temporary
 * file, fsync, rename, fsync of the directory). The journal next to it
 * ("<state file>.journal") has one JSON line per save since that snapshot,
 * holding the records that changed. The API calls sim_state_save after each
 * acknowledged change, and the save appends one line and fsyncs it, so its
 * cost does not grow with the store. When the journal outgrows its bound,
 * the save writes a new snapshot and empties the journal (compaction).
 * sim_state_load reads the snapshot and replays the journal. It ignores an
 * incomplete last line, the trace of a crash during an append, with a
 * warning, and rejects any other corrupt content with a message naming the
 * file and the line or field.
 *
 * Times are milliseconds since the Unix epoch (AWS returns dates in seconds
 * with a fraction; the API converts).
 */
#ifndef SIM_STATE_H
#define SIM_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "simulator/policy.h"

#define SIM_POLICY_MAX_VERSIONS 5      /* AWS: 5 named versions per policy */
#define SIM_MAX_POLICIES_PER_TARGET 10 /* AWS: 10 policies per certificate */
#define SIM_CERT_ID_LEN 64             /* lowercase hex SHA-256 of the DER */

typedef struct sim_state sim_state;

typedef struct sim_state_config {
	const char *path;    /* state file; NULL keeps the store in memory only */
	const char *region;  /* for ARNs, default "us-east-1" */
	const char *account; /* for ARNs, default "123456789012" */
	/* Journal size in bytes that triggers a compaction. 0 selects the
	 * default, the state file's size but at least SIM_JOURNAL_MIN_BYTES. */
	size_t journal_max_bytes;
} sim_state_config;

#define SIM_JOURNAL_MIN_BYTES (256 * 1024)

/*
 * One policy document text and its compiled form (simulator/policy.h),
 * reference-counted so that a connection's snapshot keeps it alive after
 * the version is deleted. Immutable after creation. The store compiles
 * every document when it is added or loaded, so a document the policy
 * engine rejects never enters the store.
 */
typedef struct sim_doc sim_doc;
const char *sim_doc_text(const sim_doc *d);
const sim_policy *sim_doc_compiled(const sim_doc *d);
void sim_doc_ref(sim_doc *d);
void sim_doc_unref(sim_doc *d); /* NULL is a no-op; needs no lock */

typedef enum sim_cert_status {
	SIM_CERT_ACTIVE = 0,
	SIM_CERT_INACTIVE,
	SIM_CERT_REVOKED,
	SIM_CERT_PENDING_TRANSFER,
	SIM_CERT_REGISTER_INACTIVE,
	SIM_CERT_PENDING_ACTIVATION,
} sim_cert_status;

/* AWS's spelling ("ACTIVE", ...). */
const char *sim_cert_status_name(sim_cert_status s);
pl_err sim_cert_status_parse(const char *text, sim_cert_status *out, pl_errmsg *e);

typedef struct sim_policy_version {
	char *id;        /* decimal string, "1" for the first */
	sim_doc *doc;
	int64_t create_ms;
} sim_policy_version;

typedef struct sim_policy_rec {
	char *name;
	char *arn;
	sim_policy_version versions[SIM_POLICY_MAX_VERSIONS];
	size_t version_count;
	size_t default_index;     /* index into versions */
	uint64_t next_version_id; /* the next CreatePolicyVersion gets this id */
	int64_t create_ms;
	int64_t modify_ms;
	char generation_id[65];   /* changes on every modification */
} sim_policy_rec;

/* A target that carries policies: a certificate or a thing group. */
typedef struct sim_attachments {
	char *names[SIM_MAX_POLICIES_PER_TARGET]; /* policy names */
	size_t count;
} sim_attachments;

typedef struct sim_cert {
	char id[SIM_CERT_ID_LEN + 1];
	char *arn;
	char *pem;
	char *ca_id;           /* certificate id of the issuing CA, or NULL */
	sim_cert_status status;
	int64_t create_ms;
	int64_t modify_ms;
	sim_attachments policies;
} sim_cert;

typedef struct sim_attribute {
	char *name;
	char *value;
} sim_attribute;

typedef struct sim_thing {
	char *name;
	char *arn;
	char *type_name;        /* NULL when the thing has no type */
	sim_attribute *attributes;
	size_t attribute_count;
	char **principals;      /* certificate ARNs */
	size_t principal_count;
	uint64_t version;
} sim_thing;

typedef struct sim_thing_group {
	char *name;
	char *arn;
	sim_attachments policies;
	char **things;          /* member thing names */
	size_t thing_count;
	int64_t create_ms;
} sim_thing_group;

/* Creates an empty store; loads nothing (call sim_state_load). */
pl_err sim_state_create(sim_state **out, const sim_state_config *cfg, pl_errmsg *e);

/*
 * Frees the store. A store that saved since its load and has a non-empty
 * journal first writes a snapshot, so after a clean stop the state file
 * alone contains everything. A failure there is logged, and the journal
 * keeps the changes. Call it without the lock, with no other user left.
 */
void sim_state_free(sim_state *s);

void sim_state_lock(sim_state *s);
void sim_state_unlock(sim_state *s);

/*
 * Loads the state file and replays its journal into an empty store. Missing
 * files are an empty store and an empty journal (PL_OK). An unreadable,
 * corrupt or truncated state file, or a corrupt journal line other than an
 * incomplete last one, is PL_ERR_PARSE or PL_ERR_IO with the file name (and
 * the journal's line number) in the message. The lock must be held.
 */
pl_err sim_state_load(sim_state *s, pl_errmsg *e);

/*
 * Replaces the whole content with the files' (state file and journal), for
 * files changed by another program. They are parsed into a new store first,
 * so a bad file leaves the content unchanged. Takes the lock itself.
 */
pl_err sim_state_reload(sim_state *s, pl_errmsg *e);

/*
 * Makes the changes since the last save durable before returning (no-op
 * without a path). It appends one journal line with the changed records and
 * fsyncs it. The first save of a store, a save after a failed one and a
 * save that finds the journal past its bound write a new snapshot instead
 * or afterwards (see sim_state_compact). PL_ERR_IO or PL_ERR_NOMEM when the
 * changes are not durable. Lock held.
 */
pl_err sim_state_save(sim_state *s, pl_errmsg *e);

/*
 * Writes the whole store as a new snapshot atomically, then empties the
 * journal. A crash between the two steps is harmless, because every
 * journal line carries its generation and a load skips lines the snapshot
 * already contains. PL_ERR_IO or PL_ERR_NOMEM when the snapshot was not written. Lock
 * held.
 */
pl_err sim_state_compact(sim_state *s, pl_errmsg *e);

/* Increases on every change; snapshots record it. Lock held. */
uint64_t sim_state_generation(const sim_state *s);

/* The same, for callers that do not hold the lock (takes it itself). */
uint64_t sim_state_generation_locked(sim_state *s);

/* "arn:aws:iot:<region>:<account>:<kind>/<name>" into buf. Lock not needed. */
void sim_state_arn(const sim_state *s, const char *kind, const char *name, char *buf,
		   size_t len);

/* --- policies (lock held) ------------------------------------------- */

sim_policy_rec *sim_state_policy_find(sim_state *s, const char *name);
size_t sim_state_policy_count(const sim_state *s);
sim_policy_rec *sim_state_policy_at(sim_state *s, size_t index);

/* Creates a policy with version "1" as default. PL_ERR_EXISTS, or the
 * policy engine's error for a rejected document (PL_ERR_PARSE,
 * PL_ERR_LIMIT, PL_ERR_UNSUPPORTED). */
pl_err sim_state_policy_create(sim_state *s, const char *name, const char *document,
			       sim_policy_rec **out, pl_errmsg *e);

/* Adds a version; PL_ERR_LIMIT when 5 exist. set_default makes it operative. */
pl_err sim_state_policy_version_create(sim_state *s, const char *name, const char *document,
				       int set_default, sim_policy_version **out, pl_errmsg *e);

/* PL_ERR_NOT_FOUND, or PL_ERR_STATE for the default version. */
pl_err sim_state_policy_version_delete(sim_state *s, const char *name, const char *version_id,
				       pl_errmsg *e);

pl_err sim_state_policy_set_default(sim_state *s, const char *name, const char *version_id,
				    pl_errmsg *e);

/* PL_ERR_STATE while attached or while non-default versions exist. */
pl_err sim_state_policy_delete(sim_state *s, const char *name, pl_errmsg *e);

sim_policy_version *sim_state_policy_version_find(sim_policy_rec *p, const char *version_id);

/* --- attachments (lock held) ---------------------------------------- */

/*
 * Attaches or detaches a policy to a target given by ARN: a certificate
 * ("...:cert/<id>") or a thing group ("...:thinggroup/<name>"). Attaching
 * twice is a no-op. PL_ERR_NOT_FOUND for an unknown policy or target,
 * PL_ERR_LIMIT beyond 10 policies, PL_ERR_INVALID for another ARN kind.
 */
pl_err sim_state_attach(sim_state *s, const char *policy_name, const char *target_arn,
			pl_errmsg *e);
pl_err sim_state_detach(sim_state *s, const char *policy_name, const char *target_arn,
			pl_errmsg *e);

/* The attachment list of a target ARN, or NULL when the target is unknown. */
sim_attachments *sim_state_target_policies(sim_state *s, const char *target_arn);

/* Calls fn for each target ARN the policy is attached to. */
void sim_state_policy_targets(sim_state *s, const char *policy_name,
			      void (*fn)(void *ctx, const char *target_arn), void *ctx);

/* --- certificates (lock held) --------------------------------------- */

sim_cert *sim_state_cert_find(sim_state *s, const char *cert_id);
size_t sim_state_cert_count(const sim_state *s);
sim_cert *sim_state_cert_at(sim_state *s, size_t index);

/* Registers a PEM certificate; its id is computed from the DER. */
pl_err sim_state_cert_add(sim_state *s, const char *pem, sim_cert_status status,
			  const char *ca_id, sim_cert **out, pl_errmsg *e);
pl_err sim_state_cert_set_status(sim_state *s, const char *cert_id, sim_cert_status status,
				 pl_errmsg *e);
/* PL_ERR_STATE while ACTIVE, attached to policies or to things. */
pl_err sim_state_cert_delete(sim_state *s, const char *cert_id, pl_errmsg *e);

/* --- things and thing groups (lock held) ---------------------------- */

sim_thing *sim_state_thing_find(sim_state *s, const char *name);
size_t sim_state_thing_count(const sim_state *s);
sim_thing *sim_state_thing_at(sim_state *s, size_t index);
pl_err sim_state_thing_create(sim_state *s, const char *name, const char *type_name,
			      const sim_attribute *attributes, size_t attribute_count,
			      sim_thing **out, pl_errmsg *e);
pl_err sim_state_thing_delete(sim_state *s, const char *name, pl_errmsg *e);
pl_err sim_state_thing_attach_principal(sim_state *s, const char *thing_name,
					const char *principal_arn, pl_errmsg *e);
pl_err sim_state_thing_detach_principal(sim_state *s, const char *thing_name,
					const char *principal_arn, pl_errmsg *e);

sim_thing_group *sim_state_group_find(sim_state *s, const char *name);
size_t sim_state_group_count(const sim_state *s);
sim_thing_group *sim_state_group_at(sim_state *s, size_t index);
pl_err sim_state_group_create(sim_state *s, const char *name, sim_thing_group **out,
			      pl_errmsg *e);
pl_err sim_state_group_delete(sim_state *s, const char *name, pl_errmsg *e);
pl_err sim_state_group_add_thing(sim_state *s, const char *group_name, const char *thing_name,
				 pl_errmsg *e);
pl_err sim_state_group_remove_thing(sim_state *s, const char *group_name,
				    const char *thing_name, pl_errmsg *e);

/* --- effective policies of a connection ------------------------------- */

/* One policy version a snapshot saw. */
typedef struct sim_snapshot_entry {
	char *policy_name;
	char *version_id;
	sim_doc *doc;
} sim_snapshot_entry;

/*
 * An immutable copy of what a connection may use: the certificate's status,
 * the default versions of its policies, and, when the client id names a
 * thing that has this certificate as a principal, that thing's type and
 * attributes and the policies of its groups. Owned by the caller.
 */
typedef struct sim_snapshot {
	int refs;                     /* see sim_snapshot_ref; one owner thread */
	uint64_t generation;
	/* Time the store was read (CLOCK_MONOTONIC ns, under its lock), so every
	 * change the snapshot contains was applied before it. */
	int64_t taken_ns;
	int cert_found;               /* 0 when the certificate is unknown */
	sim_cert_status cert_status;
	sim_snapshot_entry *entries;
	size_t entry_count;
	int thing_attached;           /* iot:Connection.Thing.IsAttached */
	char *thing_name;             /* NULL unless thing_attached */
	char *thing_type;             /* NULL when none */
	sim_attribute *thing_attributes;
	size_t thing_attribute_count;
} sim_snapshot;

/* Takes the lock itself. PL_ERR_NOMEM only. */
pl_err sim_state_snapshot_take(sim_state *s, const char *cert_id, const char *client_id,
			       sim_snapshot **out);
/* Adds a reference (the broker thread shares snapshots between connections
 * of one certificate). Not atomic: use from one thread. */
sim_snapshot *sim_snapshot_ref(sim_snapshot *snap);
/* Drops a reference; the last one frees. NULL is a no-op. */
void sim_snapshot_free(sim_snapshot *snap);

/* Whether two snapshots saw the same policy names and versions. */
int sim_snapshot_same_policies(const sim_snapshot *a, const sim_snapshot *b);

#endif
