/*
 * Tests of the worker's TLS credential cache (workers/tlsreuse.c): with the
 * cache on, OpenSSL's file-loading functions must give every SSL_CTX the
 * same credentials libssl would load from the files, and reuse them only
 * while the files are unchanged.
 */
#include <check.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "workers/tlsreuse.h"

static char g_dir[256];

static void path_in_dir(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s/%s", g_dir, name);
}

/* Makes a certificate for key, signed by signer (self-signed when signer is NULL). */
static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *signer)
{
	X509 *x = X509_new();

	ck_assert_ptr_nonnull(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, key);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
				   (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(issuer != NULL ? issuer : x));
	ck_assert_int_gt(X509_sign(x, signer != NULL ? signer : key, EVP_sha256()), 0);
	return x;
}

static void write_key(const char *name, EVP_PKEY *key)
{
	char path[320];
	FILE *f;

	path_in_dir(path, sizeof(path), name);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL), 1);
	fclose(f);
}

/* Writes the certificates to name in order (leaf first for a chain file). */
static void write_certs(const char *name, X509 *first, X509 *second)
{
	char path[320];
	FILE *f;

	path_in_dir(path, sizeof(path), name);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(PEM_write_X509(f, first), 1);
	if (second != NULL)
		ck_assert_int_eq(PEM_write_X509(f, second), 1);
	fclose(f);
}

/* Makes an SSL_CTX loaded as paho loads it: chain file, key file, CA file. */
static SSL_CTX *load_ctx(const char *chain, const char *key, const char *ca, int *chain_rc,
			 int *key_rc, int *ca_rc)
{
	char path[320];
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	ck_assert_ptr_nonnull(ctx);
	path_in_dir(path, sizeof(path), chain);
	*chain_rc = SSL_CTX_use_certificate_chain_file(ctx, path);
	path_in_dir(path, sizeof(path), key);
	*key_rc = SSL_CTX_use_PrivateKey_file(ctx, path, SSL_FILETYPE_PEM);
	path_in_dir(path, sizeof(path), ca);
	*ca_rc = SSL_CTX_load_verify_locations(ctx, path, NULL);
	return ctx;
}

static EVP_PKEY *g_ca_key;
static EVP_PKEY *g_dev_key;
static EVP_PKEY *g_other_key;
static X509 *g_ca;
static X509 *g_dev;

static void setup(void)
{
	const char *tmp = getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp";

	snprintf(g_dir, sizeof(g_dir), "%s/pltls.XXXXXX", tmp);
	ck_assert_ptr_nonnull(mkdtemp(g_dir));
	g_ca_key = EVP_EC_gen("P-256");
	g_dev_key = EVP_EC_gen("P-256");
	g_other_key = EVP_EC_gen("P-256");
	g_ca = make_cert(g_ca_key, "test-ca", NULL, NULL);
	g_dev = make_cert(g_dev_key, "dev", g_ca, g_ca_key);
	write_certs("ca.pem", g_ca, NULL);
	write_certs("dev.pem", g_dev, g_ca);
	write_key("dev.key", g_dev_key);
	write_key("other.key", g_other_key);
	wk_tls_reuse_enable();
}

static void teardown(void)
{
	const char *names[] = { "ca.pem", "dev.pem", "dev.key", "other.key" };
	char path[320];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		path_in_dir(path, sizeof(path), names[i]);
		unlink(path);
	}
	rmdir(g_dir);
	X509_free(g_ca);
	X509_free(g_dev);
	EVP_PKEY_free(g_ca_key);
	EVP_PKEY_free(g_dev_key);
	EVP_PKEY_free(g_other_key);
}

START_TEST(test_worker_tls_second_load_reuses)
{
	int c1, k1, a1, c2, k2, a2;
	wk_tls_reuse_stats before, after;
	SSL_CTX *first = load_ctx("dev.pem", "dev.key", "ca.pem", &c1, &k1, &a1);
	SSL_CTX *second;

	wk_tls_reuse_stats_get(&before);
	second = load_ctx("dev.pem", "dev.key", "ca.pem", &c2, &k2, &a2);
	wk_tls_reuse_stats_get(&after);
	ck_assert_int_eq(c2, 1);
	ck_assert_int_eq(k2, 1);
	ck_assert_int_eq(a2, 1);
	ck_assert_uint_eq(after.reused - before.reused, 3);
	ck_assert_ptr_eq(SSL_CTX_get0_privatekey(second), SSL_CTX_get0_privatekey(first));
	ck_assert_int_eq(X509_cmp(SSL_CTX_get0_certificate(second), g_dev), 0);
	SSL_CTX_free(first);
	SSL_CTX_free(second);
}
END_TEST

START_TEST(test_worker_tls_reused_ctx_matches_files)
{
	int c, k, a;
	STACK_OF(X509) *chain = NULL;
	SSL_CTX *ctx;

	SSL_CTX_free(load_ctx("dev.pem", "dev.key", "ca.pem", &c, &k, &a));
	ctx = load_ctx("dev.pem", "dev.key", "ca.pem", &c, &k, &a);
	ck_assert_int_eq(EVP_PKEY_eq(SSL_CTX_get0_privatekey(ctx), g_dev_key), 1);
	ck_assert_int_eq(SSL_CTX_check_private_key(ctx), 1);
	ck_assert_int_eq(SSL_CTX_get0_chain_certs(ctx, &chain), 1);
	ck_assert_int_eq(sk_X509_num(chain), 1);
	ck_assert_int_eq(X509_cmp(sk_X509_value(chain, 0), g_ca), 0);
	ck_assert_int_eq(sk_X509_OBJECT_num(X509_STORE_get0_objects(SSL_CTX_get_cert_store(ctx))),
			 1);
	SSL_CTX_free(ctx);
}
END_TEST

START_TEST(test_worker_tls_changed_key_reparsed)
{
	int c, k, a;
	SSL_CTX *ctx;

	SSL_CTX_free(load_ctx("dev.pem", "dev.key", "ca.pem", &c, &k, &a));
	/* A different key in the same file: its size or time changes with it. */
	sleep(1);
	write_key("dev.key", g_other_key);
	ctx = load_ctx("dev.pem", "dev.key", "ca.pem", &c, &k, &a);
	/* The new key does not match the certificate, as libssl would report. */
	ck_assert_int_eq(k, 0);
	SSL_CTX_free(ctx);
}
END_TEST

START_TEST(test_worker_tls_mismatched_key_rejected)
{
	char path[320];
	int c, k, a;
	wk_tls_reuse_stats before, after;
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	/* Cache other.key through a context without a certificate, where it loads. */
	ck_assert_ptr_nonnull(ctx);
	path_in_dir(path, sizeof(path), "other.key");
	ck_assert_int_eq(SSL_CTX_use_PrivateKey_file(ctx, path, SSL_FILETYPE_PEM), 1);
	SSL_CTX_free(ctx);
	wk_tls_reuse_stats_get(&before);
	ctx = load_ctx("dev.pem", "other.key", "ca.pem", &c, &k, &a);
	wk_tls_reuse_stats_get(&after);
	ck_assert_uint_gt(after.reused, before.reused);
	ck_assert_int_eq(k, 0);
	SSL_CTX_free(ctx);
}
END_TEST

static int password_cb(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return 0;
}

START_TEST(test_worker_tls_password_callback_bypasses)
{
	char path[320];
	wk_tls_reuse_stats before, after;
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	ck_assert_ptr_nonnull(ctx);
	SSL_CTX_set_default_passwd_cb(ctx, password_cb);
	path_in_dir(path, sizeof(path), "dev.key");
	wk_tls_reuse_stats_get(&before);
	ck_assert_int_eq(SSL_CTX_use_PrivateKey_file(ctx, path, SSL_FILETYPE_PEM), 1);
	ck_assert_int_eq(SSL_CTX_use_PrivateKey_file(ctx, path, SSL_FILETYPE_PEM), 1);
	wk_tls_reuse_stats_get(&after);
	ck_assert_uint_eq(after.reused, before.reused);
	ck_assert_uint_eq(after.parsed, before.parsed);
	SSL_CTX_free(ctx);
}
END_TEST

START_TEST(test_worker_tls_missing_file_fails)
{
	char path[320];
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	ck_assert_ptr_nonnull(ctx);
	path_in_dir(path, sizeof(path), "absent.key");
	ck_assert_int_eq(SSL_CTX_use_PrivateKey_file(ctx, path, SSL_FILETYPE_PEM), 0);
	path_in_dir(path, sizeof(path), "absent.pem");
	ck_assert_int_eq(SSL_CTX_use_certificate_chain_file(ctx, path), 0);
	ck_assert_int_eq(SSL_CTX_load_verify_locations(ctx, path, NULL), 0);
	SSL_CTX_free(ctx);
}
END_TEST

static Suite *tls_suite(void)
{
	Suite *s = suite_create("worker_tls");
	TCase *tc = tcase_create("reuse");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_worker_tls_second_load_reuses);
	tcase_add_test(tc, test_worker_tls_reused_ctx_matches_files);
	tcase_add_test(tc, test_worker_tls_changed_key_reparsed);
	tcase_add_test(tc, test_worker_tls_mismatched_key_rejected);
	tcase_add_test(tc, test_worker_tls_password_callback_bypasses);
	tcase_add_test(tc, test_worker_tls_missing_file_fails);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(tls_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
