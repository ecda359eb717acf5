/*
 * Unit tests of the simulator's state store, its state file, and the
 * certificate helpers. Expected values come from AWS IoT's documented
 * rules: 5 versions per policy, 10 policies per target, the default version
 * cannot be deleted, thing-group policies apply only when the client id is
 * the thing's name, and the certificate id is the SHA-256 of the DER.
 */
#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

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

/* Each test starts without a state file. */
static void reset_state(void)
{
	unlink(state_path);
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
	tcase_add_test(tc, test_sim_state_unknown_cert_snapshot);
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
