/*
 * Unit tests of the simulator's state store, its state file, and the
 * certificate helpers. Expected values come from AWS IoT's documented
 * rules: 5 versions per policy, 10 policies per target, the default version
 * cannot be deleted, thing-group policies apply only when the client id is
 * the thing's name, and the certificate id is the SHA-256 of the DER.
 */
#include <check.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "common/clock.h"
#include "simulator/certs.h"
#include "simulator/state.h"

static const char *const doc_a =
	"{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\","
	"\"Action\":\"iot:Connect\",\"Resource\":\"*\"}]}";
static const char *const doc_b =
	"{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\","
	"\"Action\":\"iot:Publish\",\"Resource\":\"*\"}]}";

static char dir[PATH_MAX];
static char state_path[PATH_MAX + 16];
static char journal_path[PATH_MAX + 32];
static char *cert_pem;
static sim_ca *ca;

static void setup(void)
{
	char ca_path[PATH_MAX + 16], key_path[PATH_MAX + 16];
	char *key;
	pl_errmsg e;

	snprintf(dir, sizeof(dir), "/tmp/policylag-state-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(state_path, sizeof(state_path), "%s/state.json", dir);
	snprintf(journal_path, sizeof(journal_path), "%s.journal", state_path);
	snprintf(ca_path, sizeof(ca_path), "%s/ca.pem", dir);
	snprintf(key_path, sizeof(key_path), "%s/ca.key", dir);
	ck_assert_int_eq(sim_certs_create_ca(ca_path, key_path, "test CA", 1, &e), PL_OK);
	ck_assert_int_eq(sim_ca_load(&ca, ca_path, key_path, &e), PL_OK);
	ck_assert_int_eq(sim_certs_create_keys_and_cert(ca, "dev", 1, &cert_pem, &key, NULL, &e),
			 PL_OK);
	free(key);
}

static void teardown(void)
{
	char cmd[PATH_MAX + 16];

	free(cert_pem);
	sim_ca_free(ca);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* Each test starts without a state file and journal. */
static void reset_state(void)
{
	unlink(state_path);
	unlink(journal_path);
}

static sim_state *new_state(void)
{
	sim_state_config cfg = { .path = state_path };
	sim_state *s;
	pl_errmsg e;

	ck_assert_int_eq(sim_state_create(&s, &cfg, &e), PL_OK);
	sim_state_lock(s);
	return s;
}

static void close_state(sim_state *s)
{
	sim_state_unlock(s);
	sim_state_free(s);
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

START_TEST(test_sim_state_missing_file_is_empty)
{
	sim_state *s = new_state();
	pl_errmsg e;

	ck_assert_int_eq(sim_state_load(s, &e), PL_OK);
	ck_assert_uint_eq(sim_state_policy_count(s), 0);
	close_state(s);
}
END_TEST

START_TEST(test_sim_state_truncated_file_fails)
{
	sim_state *s = new_state();
	pl_errmsg e;

	write_text(state_path, "{\"format\":\"policylag-sim-state\",\"formatVersion\":1,\"polic");
	ck_assert_int_eq(sim_state_load(s, &e), PL_ERR_PARSE);
	ck_assert_ptr_nonnull(strstr(e.msg, state_path));
	close_state(s);
}
END_TEST

/* jansson reports column 0 for an empty document; columns count from 1. */
START_TEST(test_sim_state_empty_file_column_1)
{
	sim_state *s = new_state();
	pl_errmsg e;

	write_text(state_path, "\n");
	ck_assert_int_eq(sim_state_load(s, &e), PL_ERR_PARSE);
	ck_assert_ptr_nonnull(strstr(e.msg, state_path));
	ck_assert_msg(strstr(e.msg, "column 0") == NULL, "%s", e.msg);
	ck_assert_msg(strstr(e.msg, "column 1") != NULL, "%s", e.msg);
	close_state(s);
}
END_TEST

START_TEST(test_sim_state_foreign_file_fails)
{
	sim_state *s = new_state();
	pl_errmsg e;

	write_text(state_path, "{\"hello\":1}");
	ck_assert_int_eq(sim_state_load(s, &e), PL_ERR_PARSE);
	ck_assert_ptr_nonnull(strstr(e.msg, "not a policylag simulator state file"));
	close_state(s);
}
END_TEST

START_TEST(test_sim_state_round_trip)
{
	sim_state *s = new_state();
	sim_cert *c;
	sim_attribute attr = { "room", "12" };
	char cert_id[SIM_CERT_ID_LEN + 1];
	pl_errmsg e;

	ck_assert_int_eq(sim_state_policy_create(s, "A", doc_a, NULL, &e), PL_OK);
	ck_assert_int_eq(sim_state_policy_version_create(s, "A", doc_b, 1, NULL, &e), PL_OK);
	ck_assert_int_eq(sim_state_cert_add(s, cert_pem, SIM_CERT_ACTIVE, NULL, &c, &e), PL_OK);
	snprintf(cert_id, sizeof(cert_id), "%s", c->id);
	ck_assert_int_eq(sim_state_attach(s, "A", c->arn, &e), PL_OK);
	ck_assert_int_eq(sim_state_thing_create(s, "t1", "sensor", &attr, 1, NULL, &e), PL_OK);
	ck_assert_int_eq(sim_state_save(s, &e), PL_OK);
	close_state(s);

	s = new_state();
	ck_assert_int_eq(sim_state_load(s, &e), PL_OK);
	ck_assert_uint_eq(sim_state_policy_count(s), 1);
	ck_assert_uint_eq(sim_state_policy_find(s, "A")->version_count, 2);
	ck_assert_str_eq(sim_state_policy_find(s, "A")->versions[1].id, "2");
	ck_assert_uint_eq(sim_state_policy_find(s, "A")->default_index, 1);
	ck_assert_uint_eq(sim_state_cert_find(s, cert_id)->policies.count, 1);
	ck_assert_str_eq(sim_state_thing_find(s, "t1")->attributes[0].value, "12");
	close_state(s);
}
END_TEST

START_TEST(test_sim_state_save_is_private)
{
	sim_state *s = new_state();
	struct stat st;
	pl_errmsg e;

	ck_assert_int_eq(sim_state_save(s, &e), PL_OK);
	ck_assert_int_eq(stat(state_path, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	close_state(s);
}
END_TEST

START_TEST(test_sim_state_version_limit)
{
	sim_state *s = new_state();
	pl_errmsg e;

	ck_assert_int_eq(sim_state_policy_create(s, "A", doc_a, NULL, &e), PL_OK);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(sim_state_policy_version_create(s, "A", doc_b, 0, NULL, &e), PL_OK);
	ck_assert_int_eq(sim_state_policy_version_create(s, "A", doc_b, 0, NULL, &e), PL_ERR_LIMIT);
	close_state(s);
}
END_TEST

START_TEST(test_sim_state_default_version_kept)
{
	sim_state *s = new_state();
	pl_errmsg e;

	ck_assert_int_eq(sim_state_policy_create(s, "A", doc_a, NULL, &e), PL_OK);
	ck_assert_int_eq(sim_state_policy_version_delete(s, "A", "1", &e), PL_ERR_STATE);
	close_state(s);
}
END_TEST

START_TEST(test_sim_state_attached_policy_not_deleted)
{
	sim_state *s = new_state();
	sim_cert *c;
	pl_errmsg e;

	ck_assert_int_eq(sim_state_policy_create(s, "A", doc_a, NULL, &e), PL_OK);
	ck_assert_int_eq(sim_state_cert_add(s, cert_pem, SIM_CERT_ACTIVE, NULL, &c, &e), PL_OK);
	ck_assert_int_eq(sim_state_attach(s, "A", c->arn, &e), PL_OK);
	ck_assert_int_eq(sim_state_policy_delete(s, "A", &e), PL_ERR_STATE);
	close_state(s);
}
END_TEST

START_TEST(test_sim_state_ten_policies_per_target)
{
	sim_state *s = new_state();
	sim_cert *c;
	char name[16];
	pl_errmsg e;

	ck_assert_int_eq(sim_state_cert_add(s, cert_pem, SIM_CERT_ACTIVE, NULL, &c, &e), PL_OK);
	for (int i = 0; i < 11; i++) {
		snprintf(name, sizeof(name), "P%d", i);
		ck_assert_int_eq(sim_state_policy_create(s, name, doc_a, NULL, &e), PL_OK);
		ck_assert_int_eq(sim_state_attach(s, name, c->arn, &e), i < 10 ? PL_OK : PL_ERR_LIMIT);
	}
	close_state(s);
}
END_TEST

START_TEST(test_sim_state_bad_document_rejected)
{
	sim_state *s = new_state();
	pl_errmsg e;

	ck_assert_int_ne(sim_state_policy_create(s, "A", "{not json", NULL, &e), PL_OK);
	ck_assert_ptr_null(sim_state_policy_find(s, "A"));
	close_state(s);
}
END_TEST

/* A certificate with policy A, a thing "t1" with it as principal, and a
 * group G (policy B) containing t1. */
static sim_state *group_fixture(char cert_id[SIM_CERT_ID_LEN + 1])
{
	sim_state *s = new_state();
	sim_thing_group *g;
	sim_cert *c;
	pl_errmsg e;

	ck_assert_int_eq(sim_state_policy_create(s, "A", doc_a, NULL, &e), PL_OK);
	ck_assert_int_eq(sim_state_policy_create(s, "B", doc_b, NULL, &e), PL_OK);
	ck_assert_int_eq(sim_state_cert_add(s, cert_pem, SIM_CERT_ACTIVE, NULL, &c, &e), PL_OK);
	ck_assert_int_eq(sim_state_attach(s, "A", c->arn, &e), PL_OK);
	ck_assert_int_eq(sim_state_thing_create(s, "t1", NULL, NULL, 0, NULL, &e), PL_OK);
	ck_assert_int_eq(sim_state_thing_attach_principal(s, "t1", c->arn, &e), PL_OK);
	ck_assert_int_eq(sim_state_group_create(s, "G", &g, &e), PL_OK);
	ck_assert_int_eq(sim_state_attach(s, "B", g->arn, &e), PL_OK);
	ck_assert_int_eq(sim_state_group_add_thing(s, "G", "t1", &e), PL_OK);
	snprintf(cert_id, SIM_CERT_ID_LEN + 1, "%s", c->id);
	sim_state_unlock(s);
	return s;
}

START_TEST(test_sim_state_group_policy_for_thing_client)
{
	char cert_id[SIM_CERT_ID_LEN + 1];
	sim_state *s = group_fixture(cert_id);
	sim_snapshot *snap;

	ck_assert_int_eq(sim_state_snapshot_take(s, cert_id, "t1", &snap), PL_OK);
	ck_assert_uint_eq(snap->entry_count, 2);
	ck_assert_int_eq(snap->thing_attached, 1);
	sim_snapshot_free(snap);
	sim_state_free(s);
}
END_TEST

START_TEST(test_sim_state_group_policy_not_for_other_client)
{
	char cert_id[SIM_CERT_ID_LEN + 1];
	sim_state *s = group_fixture(cert_id);
	sim_snapshot *snap;

	ck_assert_int_eq(sim_state_snapshot_take(s, cert_id, "other", &snap), PL_OK);
	ck_assert_uint_eq(snap->entry_count, 1);
	ck_assert_str_eq(snap->entries[0].policy_name, "A");
	ck_assert_int_eq(snap->thing_attached, 0);
	sim_snapshot_free(snap);
	sim_state_free(s);
}
END_TEST

START_TEST(test_sim_state_snapshot_sees_new_default)
{
	char cert_id[SIM_CERT_ID_LEN + 1];
	sim_state *s = group_fixture(cert_id);
	sim_snapshot *before, *after;
	pl_errmsg e;

	ck_assert_int_eq(sim_state_snapshot_take(s, cert_id, "x", &before), PL_OK);
	sim_state_lock(s);
	ck_assert_int_eq(sim_state_policy_version_create(s, "A", doc_b, 1, NULL, &e), PL_OK);
	sim_state_unlock(s);
	ck_assert_int_eq(sim_state_snapshot_take(s, cert_id, "x", &after), PL_OK);
	ck_assert_int_eq(sim_snapshot_same_policies(before, after), 0);
	ck_assert_str_eq(after->entries[0].version_id, "2");
	sim_snapshot_free(before);
	sim_snapshot_free(after);
	sim_state_free(s);
}
END_TEST

typedef struct snapshot_job {
	sim_state *state;
	const char *cert_id;
	sim_snapshot *snap;
	pl_err err;
} snapshot_job;

static void *take_snapshot(void *arg)
{
	snapshot_job *job = arg;

	job->err = sim_state_snapshot_take(job->state, job->cert_id, "x", &job->snap);
	return NULL;
}

/*
 * The broker thread can wait for the store's lock while a control-plane call
 * changes a policy. The snapshot it then takes contains that change, so its
 * time must not be earlier than the change, or the ground truth would date
 * the change before the call that made it.
 */
START_TEST(test_sim_state_snapshot_dated_after_change)
{
	char cert_id[SIM_CERT_ID_LEN + 1];
	sim_state *s = group_fixture(cert_id);
	snapshot_job job = { s, cert_id, NULL, PL_OK };
	struct timespec pause = { 0, 20 * 1000 * 1000 };
	pthread_t thread;
	int64_t t_changed;
	pl_errmsg e;

	sim_state_lock(s);
	ck_assert_int_eq(pthread_create(&thread, NULL, take_snapshot, &job), 0);
	/* Gives the thread time to block on the lock; the assertions hold either way. */
	nanosleep(&pause, NULL);
	ck_assert_int_eq(sim_state_policy_version_create(s, "A", doc_b, 1, NULL, &e), PL_OK);
	t_changed = pl_mono_ns();
	sim_state_unlock(s);
	ck_assert_int_eq(pthread_join(thread, NULL), 0);
	ck_assert_int_eq(job.err, PL_OK);
	ck_assert_str_eq(job.snap->entries[0].version_id, "2");
	ck_assert_int_ge(job.snap->taken_ns, t_changed);
	sim_snapshot_free(job.snap);
	sim_state_free(s);
}
END_TEST

START_TEST(test_sim_state_unknown_cert_snapshot)
{
	sim_state *s = new_state();
	sim_snapshot *snap;

	sim_state_unlock(s);
	ck_assert_int_eq(sim_state_snapshot_take(s, "00", "c", &snap), PL_OK);
	ck_assert_int_eq(snap->cert_found, 0);
	sim_snapshot_free(snap);
	sim_state_free(s);
}
END_TEST

START_TEST(test_sim_certs_id_is_sha256_of_der)
{
	char id[SIM_CERTS_ID_LEN + 1], expected[SIM_CERTS_ID_LEN + 1];
	unsigned char digest[SHA256_DIGEST_LENGTH], *der = NULL;
	BIO *bio = BIO_new_mem_buf(cert_pem, -1);
	X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	int len = i2d_X509(x, &der);
	pl_errmsg e;

	SHA256(der, (size_t)len, digest);
	for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
		snprintf(expected + 2 * i, 3, "%02x", digest[i]);
	ck_assert_int_eq(sim_certs_id_from_pem(cert_pem, id, &e), PL_OK);
	ck_assert_str_eq(id, expected);
	OPENSSL_free(der);
	X509_free(x);
	BIO_free(bio);
}
END_TEST

START_TEST(test_sim_certs_csr_signed_by_ca)
{
	char *key = NULL, *csr = NULL, *cert = NULL;
	char ca_path[PATH_MAX + 16];
	pl_errmsg e;
	FILE *f;
	X509 *ca_cert, *x;
	BIO *bio;

	ck_assert_int_eq(sim_certs_create_ec_csr("fleet-1", &key, &csr, &e), PL_OK);
	ck_assert_int_eq(sim_certs_sign_csr(ca, csr, 1, &cert, &e), PL_OK);
	snprintf(ca_path, sizeof(ca_path), "%s/ca.pem", dir);
	f = fopen(ca_path, "r");
	ca_cert = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	bio = BIO_new_mem_buf(cert, -1);
	x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	ck_assert_int_eq(X509_verify(x, X509_get0_pubkey(ca_cert)), 1);
	X509_free(x);
	X509_free(ca_cert);
	BIO_free(bio);
	free(key);
	free(csr);
	free(cert);
}
END_TEST

START_TEST(test_sim_certs_bad_csr_rejected)
{
	char *cert = NULL;
	pl_errmsg e;

	ck_assert_int_eq(sim_certs_sign_csr(ca, "not a csr", 1, &cert, &e), PL_ERR_PARSE);
}
END_TEST

START_TEST(test_sim_certs_key_file_mode)
{
	char path[PATH_MAX + 16];
	struct stat st;
	pl_errmsg e;

	snprintf(path, sizeof(path), "%s/k.pem", dir);
	ck_assert_int_eq(sim_certs_write_file(path, "secret", 0600, &e), PL_OK);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
}
END_TEST

START_TEST(test_sim_state_deletes_keep_lookups)
{
	sim_state *s = new_state();
	char name[16];
	pl_errmsg e;

	for (int i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "thing-%d", i);
		ck_assert_int_eq(sim_state_thing_create(s, name, NULL, NULL, 0, NULL, &e), PL_OK);
	}
	/* Delete every third thing, from the end, so the last item moves often. */
	for (int i = 299; i >= 0; i--) {
		snprintf(name, sizeof(name), "thing-%d", i);
		if (i % 3 == 0)
			ck_assert_int_eq(sim_state_thing_delete(s, name, &e), PL_OK);
	}
	ck_assert_uint_eq(sim_state_thing_count(s), 200);
	for (int i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "thing-%d", i);
		if (i % 3 == 0)
			ck_assert_ptr_null(sim_state_thing_find(s, name));
		else
			ck_assert_str_eq(sim_state_thing_find(s, name)->name, name);
	}
	for (size_t i = 0; i < sim_state_thing_count(s); i++) {
		sim_thing *t = sim_state_thing_at(s, i);
		ck_assert_ptr_eq(sim_state_thing_find(s, t->name), t);
	}
	close_state(s);
}
END_TEST

/* ---- journal ------------------------------------------------------------ */

/* A step run in a child process. It returns 0, or the line of the call that failed. */
typedef int (*store_step)(sim_state *s);

#define TRY(call)                                                                  \
	do {                                                                        \
		if ((call) != PL_OK)                                                \
			return __LINE__;                                            \
	} while (0)

/*
 * Loads the store from the files in a child process, runs step and exits
 * without freeing the store, so the files stay as a crash right after the
 * last save leaves them. journal_max is the compaction bound, 0 the default.
 */
static void run_and_crash(store_step step, size_t journal_max)
{
	pid_t pid = fork();
	int status;

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		sim_state_config cfg = { .path = state_path, .journal_max_bytes = journal_max };
		sim_state *s;
		pl_errmsg e;

		if (sim_state_create(&s, &cfg, &e) != PL_OK)
			_exit(1);
		sim_state_lock(s);
		if (sim_state_load(s, &e) != PL_OK)
			_exit(2);
		_exit(step(s) & 0xff);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_msg(WEXITSTATUS(status) == 0, "step failed (exit %d: 1 create, 2 load, else a line)",
		      WEXITSTATUS(status));
}

/*
 * Creates policy A with a second, default version, a certificate with A
 * attached, a thing t1 with the certificate as principal, and a group G
 * containing t1. Each step is saved, as the API does.
 */
static int step_populate(sim_state *s)
{
	sim_cert *c;
	pl_errmsg e;

	TRY(sim_state_policy_create(s, "A", doc_a, NULL, &e));
	TRY(sim_state_save(s, &e));
	TRY(sim_state_policy_version_create(s, "A", doc_b, 1, NULL, &e));
	TRY(sim_state_save(s, &e));
	TRY(sim_state_cert_add(s, cert_pem, SIM_CERT_ACTIVE, NULL, &c, &e));
	TRY(sim_state_save(s, &e));
	TRY(sim_state_attach(s, "A", c->arn, &e));
	TRY(sim_state_save(s, &e));
	TRY(sim_state_thing_create(s, "t1", NULL, NULL, 0, NULL, &e));
	TRY(sim_state_thing_attach_principal(s, "t1", c->arn, &e));
	TRY(sim_state_save(s, &e));
	TRY(sim_state_group_create(s, "G", NULL, &e));
	TRY(sim_state_group_add_thing(s, "G", "t1", &e));
	TRY(sim_state_save(s, &e));
	return 0;
}

/* Deletes t1 (which leaves G empty), then detaches, deactivates and deletes the certificate. */
static int step_delete(sim_state *s)
{
	sim_cert *c = sim_state_cert_at(s, 0);
	char id[SIM_CERT_ID_LEN + 1], arn[256];
	pl_errmsg e;

	if (!c)
		return __LINE__;
	snprintf(id, sizeof(id), "%s", c->id);
	snprintf(arn, sizeof(arn), "%s", c->arn);
	TRY(sim_state_thing_delete(s, "t1", &e));
	TRY(sim_state_save(s, &e));
	TRY(sim_state_detach(s, "A", arn, &e));
	TRY(sim_state_save(s, &e));
	TRY(sim_state_cert_set_status(s, id, SIM_CERT_INACTIVE, &e));
	TRY(sim_state_save(s, &e));
	TRY(sim_state_cert_delete(s, id, &e));
	TRY(sim_state_save(s, &e));
	return 0;
}

static sim_state *load_state(void)
{
	sim_state *s = new_state();
	pl_errmsg e;

	ck_assert_msg(sim_state_load(s, &e) == PL_OK, "%s", e.msg);
	return s;
}

static off_t file_size(const char *path)
{
	struct stat st;

	ck_assert_int_eq(stat(path, &st), 0);
	return st.st_size;
}

/* Reads the whole file into a string that the caller frees. */
static char *read_text(const char *path)
{
	char *text = NULL;
	pl_errmsg e;

	ck_assert_msg(sim_certs_read_file(path, &text, &e) == PL_OK, "%s", e.msg);
	return text;
}

static int count_char(const char *text, char c)
{
	int n = 0;

	for (; *text; text++)
		n += *text == c;
	return n;
}

static void append_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "a");

	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

static void appendf(char *buf, size_t size, const char *fmt, ...)
{
	size_t len = strlen(buf);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf + len, size - len, fmt, ap);
	va_end(ap);
}

static int by_string(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every record with its fields, one sorted line each, to compare two stores. */
static char *describe_store(sim_state *s)
{
	size_t n = sim_state_policy_count(s) + sim_state_cert_count(s) +
		   sim_state_thing_count(s) + sim_state_group_count(s);
	char **lines = calloc(n + 1, sizeof(*lines));
	char *out = calloc(n + 1, 8192);
	size_t k = 0;

	ck_assert_ptr_nonnull(lines);
	ck_assert_ptr_nonnull(out);
	for (size_t i = 0; i < n; i++) {
		lines[i] = calloc(1, 8192);
		ck_assert_ptr_nonnull(lines[i]);
	}
	for (size_t i = 0; i < sim_state_policy_count(s); i++, k++) {
		sim_policy_rec *p = sim_state_policy_at(s, i);
		appendf(lines[k], 8192, "policy %s default=%zu next=%llu", p->name, p->default_index,
			(unsigned long long)p->next_version_id);
		for (size_t v = 0; v < p->version_count; v++)
			appendf(lines[k], 8192, " %s:%s", p->versions[v].id,
				sim_doc_text(p->versions[v].doc));
	}
	for (size_t i = 0; i < sim_state_cert_count(s); i++, k++) {
		sim_cert *c = sim_state_cert_at(s, i);
		appendf(lines[k], 8192, "cert %s %s", c->id, sim_cert_status_name(c->status));
		for (size_t j = 0; j < c->policies.count; j++)
			appendf(lines[k], 8192, " %s", c->policies.names[j]);
	}
	for (size_t i = 0; i < sim_state_thing_count(s); i++, k++) {
		sim_thing *t = sim_state_thing_at(s, i);
		appendf(lines[k], 8192, "thing %s v%llu", t->name, (unsigned long long)t->version);
		for (size_t j = 0; j < t->principal_count; j++)
			appendf(lines[k], 8192, " %s", t->principals[j]);
	}
	for (size_t i = 0; i < sim_state_group_count(s); i++, k++) {
		sim_thing_group *g = sim_state_group_at(s, i);
		appendf(lines[k], 8192, "group %s", g->name);
		for (size_t j = 0; j < g->policies.count; j++)
			appendf(lines[k], 8192, " policy:%s", g->policies.names[j]);
		for (size_t j = 0; j < g->thing_count; j++)
			appendf(lines[k], 8192, " thing:%s", g->things[j]);
	}
	qsort(lines, n, sizeof(*lines), by_string);
	for (size_t i = 0; i < n; i++) {
		appendf(out, (n + 1) * 8192, "%s\n", lines[i]);
		free(lines[i]);
	}
	free(lines);
	return out;
}

START_TEST(test_sim_state_journal_replays_saves)
{
	sim_state *s;
	sim_policy_rec *p;
	sim_cert *c;
	char *journal;

	run_and_crash(step_populate, 0);
	/* The first save writes the state file, and each later one appends one line. */
	journal = read_text(journal_path);
	ck_assert_int_eq(count_char(journal, '\n'), 5);
	free(journal);
	s = load_state();
	p = sim_state_policy_find(s, "A");
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(p->version_count, 2);
	ck_assert_str_eq(p->versions[p->default_index].id, "2");
	ck_assert_uint_eq(sim_state_cert_count(s), 1);
	c = sim_state_cert_at(s, 0);
	ck_assert_uint_eq(c->policies.count, 1);
	ck_assert_str_eq(c->policies.names[0], "A");
	ck_assert_uint_eq(sim_state_thing_find(s, "t1")->principal_count, 1);
	ck_assert_str_eq(sim_state_thing_find(s, "t1")->principals[0], c->arn);
	ck_assert_uint_eq(sim_state_group_find(s, "G")->thing_count, 1);
	ck_assert_uint_gt(sim_state_generation(s), 0);
	close_state(s);
}
END_TEST

START_TEST(test_sim_state_journal_replays_deletes)
{
	sim_state *s;

	run_and_crash(step_populate, 0);
	run_and_crash(step_delete, 0);
	s = load_state();
	ck_assert_ptr_null(sim_state_thing_find(s, "t1"));
	ck_assert_uint_eq(sim_state_group_find(s, "G")->thing_count, 0);
	ck_assert_uint_eq(sim_state_cert_count(s), 0);
	ck_assert_ptr_nonnull(sim_state_policy_find(s, "A"));
	close_state(s);
}
END_TEST

START_TEST(test_sim_state_journal_torn_tail_ignored)
{
	sim_state *s;
	pl_errmsg e;

	run_and_crash(step_populate, 0);
	/* An append cut short by a crash: a line without its end. */
	append_text(journal_path, "{\"generation\":999,\"put\":{\"things\":[{\"name\":\"t2\",\"pri");
	s = load_state();
	ck_assert_ptr_null(sim_state_thing_find(s, "t2"));
	ck_assert_ptr_nonnull(sim_state_thing_find(s, "t1"));
	ck_assert_uint_eq(sim_state_group_find(s, "G")->thing_count, 1);
	/* The next save writes a snapshot, so no line ever follows the torn one. */
	ck_assert_int_eq(sim_state_thing_create(s, "t3", NULL, NULL, 0, NULL, &e), PL_OK);
	ck_assert_int_eq(sim_state_save(s, &e), PL_OK);
	ck_assert_int_eq(file_size(journal_path), 0);
	close_state(s);
	s = load_state();
	ck_assert_ptr_nonnull(sim_state_thing_find(s, "t3"));
	close_state(s);
}
END_TEST

START_TEST(test_sim_state_journal_corrupt_middle_fails)
{
	sim_state *s = new_state();
	char *journal, *second;
	pl_errmsg e;

	close_state(s);
	run_and_crash(step_populate, 0);
	journal = read_text(journal_path);
	second = strchr(journal, '\n') + 1;
	memcpy(second + 10, "#####", 5);
	write_text(journal_path, journal);
	free(journal);
	s = new_state();
	ck_assert_int_eq(sim_state_load(s, &e), PL_ERR_PARSE);
	ck_assert_ptr_nonnull(strstr(e.msg, journal_path));
	ck_assert_ptr_nonnull(strstr(e.msg, "line 2"));
	close_state(s);
}
END_TEST

START_TEST(test_sim_state_journal_bad_record_fails)
{
	sim_state *s;
	pl_errmsg e;

	run_and_crash(step_populate, 0);
	/* Valid JSON, so not an append cut short, but not a journal line. */
	append_text(journal_path, "{\"generation\":1000,\"put\":{\"gadgets\":[]}}\n");
	s = new_state();
	ck_assert_int_eq(sim_state_load(s, &e), PL_ERR_PARSE);
	ck_assert_ptr_nonnull(strstr(e.msg, journal_path));
	ck_assert_ptr_nonnull(strstr(e.msg, "line 6"));
	close_state(s);
}
END_TEST

START_TEST(test_sim_state_journal_empty_line_column_1)
{
	sim_state *s;
	pl_errmsg e;

	run_and_crash(step_populate, 0);
	append_text(journal_path, "\n");
	s = new_state();
	ck_assert_int_eq(sim_state_load(s, &e), PL_ERR_PARSE);
	ck_assert_ptr_nonnull(strstr(e.msg, "line 6"));
	ck_assert_msg(strstr(e.msg, "column 0") == NULL, "%s", e.msg);
	ck_assert_msg(strstr(e.msg, "column 1") != NULL, "%s", e.msg);
	close_state(s);
}
END_TEST

START_TEST(test_sim_state_journal_corrupt_last_line_fails)
{
	sim_state *s;
	pl_errmsg e;

	run_and_crash(step_populate, 0);
	/* A crash cuts an append before its line feed, so a last line that has
	 * its line feed but is not JSON was damaged after it was acknowledged. */
	append_text(journal_path, "{\"generation\":1000,\"put\":{\"things\":[{\"name\"#t2\"}]}}\n");
	s = new_state();
	ck_assert_int_eq(sim_state_load(s, &e), PL_ERR_PARSE);
	ck_assert_ptr_nonnull(strstr(e.msg, journal_path));
	ck_assert_ptr_nonnull(strstr(e.msg, "line 6"));
	close_state(s);
}
END_TEST

START_TEST(test_sim_state_journal_without_state_fails)
{
	sim_state *s;
	pl_errmsg e;

	run_and_crash(step_populate, 0);
	/* The journal's lines change the state file's records and cannot
	 * stand alone: replayed on an empty store they would lose policy A's
	 * first version and everything else the state file held. */
	ck_assert_int_eq(unlink(state_path), 0);
	s = new_state();
	ck_assert_int_eq(sim_state_load(s, &e), PL_ERR_PARSE);
	ck_assert_ptr_nonnull(strstr(e.msg, journal_path));
	ck_assert_ptr_nonnull(strstr(e.msg, "is missing"));
	close_state(s);
}
END_TEST

START_TEST(test_sim_state_compaction_keeps_state)
{
	char *before, *after, *snapshot;
	sim_state *s;
	pl_errmsg e;

	run_and_crash(step_populate, 0);
	ck_assert_int_gt(file_size(journal_path), 0);
	s = load_state();
	before = describe_store(s);
	ck_assert_int_eq(sim_state_compact(s, &e), PL_OK);
	ck_assert_int_eq(file_size(journal_path), 0);
	close_state(s);
	snapshot = read_text(state_path);
	ck_assert_ptr_nonnull(strstr(snapshot, "\"G\""));
	free(snapshot);
	s = load_state();
	after = describe_store(s);
	ck_assert_str_eq(after, before);
	ck_assert_ptr_nonnull(strstr(after, "group G thing:t1"));
	free(before);
	free(after);
	close_state(s);
}
END_TEST

#define JOURNAL_BOUND 2048
#define MANY_THINGS 40

static int step_many_things(sim_state *s)
{
	char name[16];
	pl_errmsg e;

	for (int i = 0; i < MANY_THINGS; i++) {
		snprintf(name, sizeof(name), "t%02d", i);
		TRY(sim_state_thing_create(s, name, "sensor", NULL, 0, NULL, &e));
		TRY(sim_state_save(s, &e));
	}
	return 0;
}

static int step_more_changes(sim_state *s)
{
	pl_errmsg e;

	TRY(sim_state_thing_delete(s, "t03", &e));
	TRY(sim_state_save(s, &e));
	TRY(sim_state_thing_create(s, "t99", NULL, NULL, 0, NULL, &e));
	TRY(sim_state_save(s, &e));
	TRY(sim_state_group_create(s, "late", NULL, &e));
	TRY(sim_state_group_add_thing(s, "late", "t99", &e));
	TRY(sim_state_save(s, &e));
	return 0;
}

START_TEST(test_sim_state_compaction_then_restart)
{
	sim_state *s;
	char *snapshot;

	run_and_crash(step_many_things, JOURNAL_BOUND);
	/* The bound kept the journal short and moved the things into the state file. */
	ck_assert_int_le(file_size(journal_path), JOURNAL_BOUND);
	snapshot = read_text(state_path);
	ck_assert_ptr_nonnull(strstr(snapshot, "\"t20\""));
	free(snapshot);
	s = load_state();
	ck_assert_uint_eq(sim_state_thing_count(s), MANY_THINGS);
	close_state(s);
	run_and_crash(step_more_changes, JOURNAL_BOUND);
	s = load_state();
	ck_assert_uint_eq(sim_state_thing_count(s), MANY_THINGS);
	ck_assert_ptr_null(sim_state_thing_find(s, "t03"));
	ck_assert_ptr_nonnull(sim_state_thing_find(s, "t39"));
	ck_assert_str_eq(sim_state_group_find(s, "late")->things[0], "t99");
	close_state(s);
}
END_TEST

START_TEST(test_sim_state_journal_skips_compacted_lines)
{
	char *journal;
	sim_state *s;
	pl_errmsg e;

	run_and_crash(step_populate, 0);
	run_and_crash(step_delete, 0);
	journal = read_text(journal_path);
	s = load_state();
	ck_assert_int_eq(sim_state_compact(s, &e), PL_OK);
	close_state(s);
	/*
	 * A crash after the snapshot's rename but before the journal was
	 * emptied leaves the old lines. Replayed, the line that puts t1 into G
	 * would fail, because the snapshot no longer has t1.
	 */
	write_text(journal_path, journal);
	free(journal);
	s = load_state();
	ck_assert_ptr_null(sim_state_thing_find(s, "t1"));
	ck_assert_uint_eq(sim_state_group_find(s, "G")->thing_count, 0);
	close_state(s);
}
END_TEST

START_TEST(test_sim_state_close_writes_snapshot)
{
	sim_state *s;
	char *snapshot;

	run_and_crash(step_populate, 0);
	s = load_state();
	close_state(s);
	/* A store that never saved leaves the files as they were. */
	ck_assert_int_gt(file_size(journal_path), 0);
	s = load_state();
	{
		pl_errmsg e;
		ck_assert_int_eq(sim_state_thing_create(s, "t7", NULL, NULL, 0, NULL, &e), PL_OK);
		ck_assert_int_eq(sim_state_save(s, &e), PL_OK);
		ck_assert_int_eq(sim_state_thing_create(s, "t8", NULL, NULL, 0, NULL, &e), PL_OK);
		ck_assert_int_eq(sim_state_save(s, &e), PL_OK);
	}
	close_state(s);
	/* After a clean stop the state file alone contains every record. */
	ck_assert_int_eq(file_size(journal_path), 0);
	snapshot = read_text(state_path);
	ck_assert_ptr_nonnull(strstr(snapshot, "\"t8\""));
	free(snapshot);
}
END_TEST

START_TEST(test_sim_state_journal_removed_recreated)
{
	sim_state *s = load_state();
	char *snapshot;
	pl_errmsg e;

	ck_assert_int_eq(sim_state_thing_create(s, "t1", NULL, NULL, 0, NULL, &e), PL_OK);
	ck_assert_int_eq(sim_state_save(s, &e), PL_OK);
	ck_assert_int_eq(unlink(journal_path), 0);
	ck_assert_int_eq(sim_state_thing_create(s, "t2", NULL, NULL, 0, NULL, &e), PL_OK);
	ck_assert_int_eq(sim_state_save(s, &e), PL_OK);
	/* The save noticed the removal and wrote a snapshot and a new journal. */
	ck_assert_int_eq(file_size(journal_path), 0);
	snapshot = read_text(state_path);
	ck_assert_ptr_nonnull(strstr(snapshot, "\"t2\""));
	free(snapshot);
	close_state(s);
}
END_TEST

static Suite *sim_state_suite(void)
{
	Suite *s = suite_create("sim_state");
	TCase *tc = tcase_create("store");
	TCase *tcc = tcase_create("certs");

	/* One CA and certificate for all tests: RSA key generation is slow. */
	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_add_checked_fixture(tc, reset_state, NULL);
	tcase_add_test(tc, test_sim_state_missing_file_is_empty);
	tcase_add_test(tc, test_sim_state_truncated_file_fails);
	tcase_add_test(tc, test_sim_state_empty_file_column_1);
	tcase_add_test(tc, test_sim_state_foreign_file_fails);
	tcase_add_test(tc, test_sim_state_round_trip);
	tcase_add_test(tc, test_sim_state_save_is_private);
	tcase_add_test(tc, test_sim_state_version_limit);
	tcase_add_test(tc, test_sim_state_default_version_kept);
	tcase_add_test(tc, test_sim_state_attached_policy_not_deleted);
	tcase_add_test(tc, test_sim_state_ten_policies_per_target);
	tcase_add_test(tc, test_sim_state_bad_document_rejected);
	tcase_add_test(tc, test_sim_state_group_policy_for_thing_client);
	tcase_add_test(tc, test_sim_state_group_policy_not_for_other_client);
	tcase_add_test(tc, test_sim_state_snapshot_sees_new_default);
	tcase_add_test(tc, test_sim_state_snapshot_dated_after_change);
	tcase_add_test(tc, test_sim_state_unknown_cert_snapshot);
	tcase_add_test(tc, test_sim_state_deletes_keep_lookups);
	tcase_add_test(tc, test_sim_state_journal_replays_saves);
	tcase_add_test(tc, test_sim_state_journal_replays_deletes);
	tcase_add_test(tc, test_sim_state_journal_torn_tail_ignored);
	tcase_add_test(tc, test_sim_state_journal_corrupt_last_line_fails);
	tcase_add_test(tc, test_sim_state_journal_without_state_fails);
	tcase_add_test(tc, test_sim_state_journal_corrupt_middle_fails);
	tcase_add_test(tc, test_sim_state_journal_bad_record_fails);
	tcase_add_test(tc, test_sim_state_journal_empty_line_column_1);
	tcase_add_test(tc, test_sim_state_compaction_keeps_state);
	tcase_add_test(tc, test_sim_state_compaction_then_restart);
	tcase_add_test(tc, test_sim_state_journal_skips_compacted_lines);
	tcase_add_test(tc, test_sim_state_close_writes_snapshot);
	tcase_add_test(tc, test_sim_state_journal_removed_recreated);
	suite_add_tcase(s, tc);
	tcase_add_unchecked_fixture(tcc, setup, teardown);
	tcase_add_test(tcc, test_sim_certs_id_is_sha256_of_der);
	tcase_add_test(tcc, test_sim_certs_csr_signed_by_ca);
	tcase_add_test(tcc, test_sim_certs_bad_csr_rejected);
	tcase_add_test(tcc, test_sim_certs_key_file_mode);
	suite_add_tcase(s, tcc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(sim_state_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
