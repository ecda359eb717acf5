/*
 * Tests of the worker's TLS credential cache (workers/tlsreuse.c): with the
 * cache on, OpenSSL's file-loading functions must give every SSL_CTX the
 * same credentials libssl would load from the files, and reuse them only
 * while the files are unchanged. With the shared SSL_CTX on
 * (workers/tlsshare.c), an SSL must get its own context's certificate, key
 * and settings, and come from an earlier context only when all else is
 * equal.
 */
#include <check.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdint.h>
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
static X509 *g_dev2; /* certificate of g_other_key */

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
	g_dev2 = make_cert(g_other_key, "dev2", g_ca, g_ca_key);
	write_certs("dev2.pem", g_dev2, g_ca);
	wk_tls_reuse_enable();
}

static void teardown(void)
{
	const char *names[] = { "ca.pem", "dev.pem", "dev.key", "other.key", "dev2.pem",
				"rsa.pem", "rsa.key" };
	char path[320];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		path_in_dir(path, sizeof(path), names[i]);
		unlink(path);
	}
	rmdir(g_dir);
	X509_free(g_ca);
	X509_free(g_dev);
	X509_free(g_dev2);
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

static void info_cb(const SSL *ssl, int where, int ret)
{
	(void)ssl;
	(void)where;
	(void)ret;
}

static void msg_cb(int write_p, int version, int content_type, const void *buf, size_t len,
		   SSL *ssl, void *arg)
{
	(void)write_p;
	(void)version;
	(void)content_type;
	(void)buf;
	(void)len;
	(void)ssl;
	(void)arg;
}

static unsigned int psk_cb(SSL *ssl, const char *hint, char *identity, unsigned int max_identity,
			   unsigned char *psk, unsigned int max_psk)
{
	(void)ssl;
	(void)hint;
	(void)identity;
	(void)max_identity;
	(void)psk;
	(void)max_psk;
	return 0;
}

static const unsigned char alpn_aws[] = "\x0ex-amzn-mqtt-ca";

enum { WITH_ALPN = 1, WITHOUT_VERIFY = 2, WITH_PSK = 4 };

/* Configures a context in paho 1.3.12's order (SSLSocket_setSocketForSSL) and makes its SSL. */
static SSL *paho_ssl(const char *chain, const char *key, int options, SSL_CTX **ctx_out)
{
	char path[320];
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl;

	ck_assert_ptr_nonnull(ctx);
	SSL_CTX_set_security_level(ctx, 1);
	path_in_dir(path, sizeof(path), chain);
	ck_assert_int_eq(SSL_CTX_use_certificate_chain_file(ctx, path), 1);
	path_in_dir(path, sizeof(path), key);
	ck_assert_int_eq(SSL_CTX_use_PrivateKey_file(ctx, path, SSL_FILETYPE_PEM), 1);
	path_in_dir(path, sizeof(path), "ca.pem");
	ck_assert_int_eq(SSL_CTX_load_verify_locations(ctx, path, NULL), 1);
	if (options & WITH_PSK)
		SSL_CTX_set_psk_client_callback(ctx, psk_cb);
	if (options & WITH_ALPN)
		ck_assert_int_eq(SSL_CTX_set_alpn_protos(ctx, alpn_aws, sizeof(alpn_aws) - 1), 0);
	SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_info_callback(ctx, info_cb);
	SSL_CTX_set_msg_callback(ctx, msg_cb);
	if (!(options & WITHOUT_VERIFY))
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	ssl = SSL_new(ctx);
	ck_assert_ptr_nonnull(ssl);
	*ctx_out = ctx;
	return ssl;
}

START_TEST(test_worker_tls_share_equal_settings)
{
	SSL_CTX *first_ctx, *second_ctx;
	SSL *first, *second;
	STACK_OF(X509) *chain = NULL;
	size_t before;

	wk_tls_share_enable();
	first = paho_ssl("dev.pem", "dev.key", 0, &first_ctx);
	before = wk_tls_share_count();
	second = paho_ssl("dev2.pem", "other.key", 0, &second_ctx);
	ck_assert_uint_eq(wk_tls_share_count(), before + 1);
	ck_assert_ptr_eq(SSL_get_SSL_CTX(second), first_ctx);
	ck_assert_int_eq(X509_cmp(SSL_get_certificate(second), g_dev2), 0);
	ck_assert_int_eq(EVP_PKEY_eq(SSL_get_privatekey(second), g_other_key), 1);
	ck_assert_int_eq(SSL_check_private_key(second), 1);
	ck_assert_int_eq(SSL_get0_chain_certs(second, &chain), 1);
	ck_assert_int_eq(sk_X509_num(chain), 1);
	ck_assert_int_eq(X509_cmp(sk_X509_value(chain, 0), g_ca), 0);
	ck_assert_int_eq(SSL_get_verify_mode(second), SSL_VERIFY_PEER);
	ck_assert_int_eq(SSL_get_security_level(second), 1);
	/* The first SSL keeps its own credentials. */
	ck_assert_int_eq(X509_cmp(SSL_get_certificate(first), g_dev), 0);
	ck_assert_int_eq(EVP_PKEY_eq(SSL_get_privatekey(first), g_dev_key), 1);
	SSL_free(second);
	SSL_CTX_free(second_ctx); /* retired: must do nothing */
	SSL_free(first);
	SSL_CTX_free(first_ctx);
}
END_TEST

START_TEST(test_worker_tls_share_needs_same_alpn)
{
	SSL_CTX *first_ctx, *second_ctx;
	SSL *first, *second;

	wk_tls_share_enable();
	first = paho_ssl("dev.pem", "dev.key", 0, &first_ctx);
	second = paho_ssl("dev2.pem", "other.key", WITH_ALPN, &second_ctx);
	ck_assert_ptr_eq(SSL_get_SSL_CTX(second), second_ctx);
	SSL_free(second);
	SSL_CTX_free(second_ctx);
	SSL_free(first);
	SSL_CTX_free(first_ctx);
}
END_TEST

START_TEST(test_worker_tls_share_needs_same_verify)
{
	SSL_CTX *first_ctx, *second_ctx;
	SSL *first, *second;

	wk_tls_share_enable();
	first = paho_ssl("dev.pem", "dev.key", 0, &first_ctx);
	second = paho_ssl("dev2.pem", "other.key", WITHOUT_VERIFY, &second_ctx);
	ck_assert_ptr_eq(SSL_get_SSL_CTX(second), second_ctx);
	ck_assert_int_eq(SSL_get_verify_mode(second), SSL_VERIFY_NONE);
	SSL_free(second);
	SSL_CTX_free(second_ctx);
	SSL_free(first);
	SSL_CTX_free(first_ctx);
}
END_TEST

START_TEST(test_worker_tls_share_skips_psk)
{
	SSL_CTX *first_ctx, *second_ctx, *third_ctx;
	SSL *first, *second, *third;

	wk_tls_share_enable();
	first = paho_ssl("dev.pem", "dev.key", WITH_PSK, &first_ctx);
	second = paho_ssl("dev2.pem", "other.key", WITH_PSK, &second_ctx);
	/* Equal settings, but the PSK callback reads the context's ex_data. */
	ck_assert_ptr_eq(SSL_get_SSL_CTX(second), second_ctx);
	third = paho_ssl("dev2.pem", "other.key", 0, &third_ctx);
	ck_assert_ptr_eq(SSL_get_SSL_CTX(third), third_ctx);
	SSL_free(third);
	SSL_CTX_free(third_ctx);
	SSL_free(second);
	SSL_CTX_free(second_ctx);
	SSL_free(first);
	SSL_CTX_free(first_ctx);
}
END_TEST

START_TEST(test_worker_tls_share_retired_address_unused)
{
	enum { NEW_CTXS = 64 };
	SSL_CTX *first_ctx, *second_ctx;
	SSL_CTX *fresh[NEW_CTXS];
	SSL *first, *second;
	uintptr_t retired;

	wk_tls_share_enable();
	first = paho_ssl("dev.pem", "dev.key", 0, &first_ctx);
	second = paho_ssl("dev2.pem", "other.key", 0, &second_ctx);
	ck_assert_ptr_eq(SSL_get_SSL_CTX(second), first_ctx);
	retired = (uintptr_t)second_ctx;
	/* Until paho's SSL_CTX_free of the retired context, no new context takes its address. */
	for (int i = 0; i < NEW_CTXS; i++) {
		fresh[i] = SSL_CTX_new(TLS_client_method());
		ck_assert_ptr_nonnull(fresh[i]);
		ck_assert_uint_ne((uintptr_t)fresh[i], retired);
	}
	for (int i = 0; i < NEW_CTXS; i++)
		SSL_CTX_free(fresh[i]);
	SSL_free(second);
	SSL_CTX_free(second_ctx);
	SSL_free(first);
	SSL_CTX_free(first_ctx);
}
END_TEST

START_TEST(test_worker_tls_share_clears_other_key_type)
{
	EVP_PKEY *rsa_key = EVP_RSA_gen(2048);
	X509 *rsa_cert;
	SSL_CTX *first_ctx, *second_ctx;
	SSL *first, *second;
	int slots = 0;

	ck_assert_ptr_nonnull(rsa_key);
	rsa_cert = make_cert(rsa_key, "rsa-dev", g_ca, g_ca_key);
	write_certs("rsa.pem", rsa_cert, g_ca);
	write_key("rsa.key", rsa_key);
	wk_tls_share_enable();
	first = paho_ssl("rsa.pem", "rsa.key", 0, &first_ctx);
	second = paho_ssl("dev2.pem", "other.key", 0, &second_ctx);
	ck_assert_ptr_eq(SSL_get_SSL_CTX(second), first_ctx);
	/* Only the EC certificate: the shared context's RSA one must not remain. */
	if (SSL_set_current_cert(second, SSL_CERT_SET_FIRST) == 1)
		do
			slots++;
		while (SSL_set_current_cert(second, SSL_CERT_SET_NEXT) == 1);
	ck_assert_int_eq(slots, 1);
	ck_assert_int_eq(X509_cmp(SSL_get_certificate(second), g_dev2), 0);
	SSL_free(second);
	SSL_CTX_free(second_ctx);
	SSL_free(first);
	SSL_CTX_free(first_ctx);
	X509_free(rsa_cert);
	EVP_PKEY_free(rsa_key);
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
	tcase_add_test(tc, test_worker_tls_share_equal_settings);
	tcase_add_test(tc, test_worker_tls_share_needs_same_alpn);
	tcase_add_test(tc, test_worker_tls_share_needs_same_verify);
	tcase_add_test(tc, test_worker_tls_share_skips_psk);
	tcase_add_test(tc, test_worker_tls_share_retired_address_unused);
	tcase_add_test(tc, test_worker_tls_share_clears_other_key_type);
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
