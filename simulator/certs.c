/*
 * X.509 helpers on OpenSSL 3: CA, loopback server certificate, CSR signing,
 * key generation and AWS certificate ids. See certs.h.
 */
#include "simulator/certs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

struct sim_ca {
	X509 *cert;
	EVP_PKEY *key;
};

/* Adds OpenSSL's last queued error to a failure message. */
static pl_err ssl_fail(pl_errmsg *e, const char *what)
{
	unsigned long code = ERR_get_error();
	char reason[256] = "unknown OpenSSL error";

	if (code != 0)
		ERR_error_string_n(code, reason, sizeof(reason));
	ERR_clear_error();
	return pl_errmsg_set(e, PL_ERR_TLS, "%s: %s", what, reason);
}

void sim_certs_id_from_der(const unsigned char *der, size_t len, char out[SIM_CERTS_ID_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char digest[SHA256_DIGEST_LENGTH];

	SHA256(der, len, digest);
	for (size_t i = 0; i < sizeof(digest); i++) {
		out[2 * i] = hex[digest[i] >> 4];
		out[2 * i + 1] = hex[digest[i] & 0x0f];
	}
	out[SIM_CERTS_ID_LEN] = '\0';
}

static void x509_id(X509 *cert, char out[SIM_CERTS_ID_LEN + 1])
{
	unsigned char *der = NULL;
	int len = i2d_X509(cert, &der);

	if (len <= 0) {
		out[0] = '\0';
		return;
	}
	sim_certs_id_from_der(der, (size_t)len, out);
	OPENSSL_free(der);
}

pl_err sim_certs_id_from_pem(const char *pem, char out[SIM_CERTS_ID_LEN + 1], pl_errmsg *e)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	X509 *cert;

	if (!bio)
		return pl_errmsg_set(e, PL_ERR_NOMEM, "certificate id: out of memory");
	cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (!cert) {
		ERR_clear_error();
		return pl_errmsg_set(e, PL_ERR_PARSE, "certificate id: not a PEM certificate");
	}
	x509_id(cert, out);
	X509_free(cert);
	return PL_OK;
}

pl_err sim_certs_read_file(const char *path, char **out, pl_errmsg *e)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long size;

	if (!f)
		return pl_errmsg_set(e, PL_ERR_IO, "%s: %s", path, strerror(errno));
	if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
		goto io_error;
	buf = malloc((size_t)size + 1);
	if (!buf) {
		fclose(f);
		return pl_errmsg_set(e, PL_ERR_NOMEM, "%s: out of memory", path);
	}
	if (fread(buf, 1, (size_t)size, f) != (size_t)size)
		goto io_error;
	buf[size] = '\0';
	fclose(f);
	*out = buf;
	return PL_OK;

io_error:
	free(buf);
	fclose(f);
	return pl_errmsg_set(e, PL_ERR_IO, "%s: read failed", path);
}

/* Makes a rename durable: fsync of the directory that contains path. */
static pl_err fsync_parent(const char *path, pl_errmsg *e)
{
	char dir[4096];
	const char *slash = strrchr(path, '/');
	size_t len = slash ? (size_t)(slash - path) : 0;
	int fd;

	if (len == 0) {
		dir[0] = slash ? '/' : '.';
		dir[1] = '\0';
	} else if (len < sizeof(dir)) {
		memcpy(dir, path, len);
		dir[len] = '\0';
	} else {
		return pl_errmsg_set(e, PL_ERR_INVALID, "%s: path too long", path);
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return pl_errmsg_set(e, PL_ERR_IO, "%s: %s", dir, strerror(errno));
	if (fsync(fd) != 0) {
		close(fd);
		return pl_errmsg_set(e, PL_ERR_IO, "%s: fsync failed: %s", dir, strerror(errno));
	}
	close(fd);
	return PL_OK;
}

pl_err sim_certs_write_file(const char *path, const char *text, unsigned mode, pl_errmsg *e)
{
	char tmp[4096];
	size_t len = strlen(text);
	int fd;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= sizeof(tmp))
		return pl_errmsg_set(e, PL_ERR_INVALID, "%s: path too long", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, (mode_t)mode);
	if (fd < 0)
		return pl_errmsg_set(e, PL_ERR_IO, "%s: %s", tmp, strerror(errno));
	/* open() applies the umask; keys must end up exactly at mode. */
	if (fchmod(fd, (mode_t)mode) != 0)
		goto write_error;
	for (size_t off = 0; off < len;) {
		ssize_t n = write(fd, text + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			goto write_error;
		off += (size_t)n;
	}
	if (fsync(fd) != 0)
		goto write_error;
	close(fd);
	if (rename(tmp, path) != 0) {
		unlink(tmp);
		return pl_errmsg_set(e, PL_ERR_IO, "%s: rename failed: %s", path, strerror(errno));
	}
	return fsync_parent(path, e);

write_error:
	pl_errmsg_set(e, PL_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
	close(fd);
	unlink(tmp);
	return PL_ERR_IO;
}

/* Serializes with a PEM writer into a heap string. */
static char *bio_to_string(BIO *bio)
{
	char *data;
	long len = BIO_get_mem_data(bio, &data);
	char *out;

	if (len < 0)
		return NULL;
	out = malloc((size_t)len + 1);
	if (!out)
		return NULL;
	memcpy(out, data, (size_t)len);
	out[len] = '\0';
	return out;
}

static char *cert_to_pem(X509 *cert)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *out = NULL;

	if (bio && PEM_write_bio_X509(bio, cert))
		out = bio_to_string(bio);
	BIO_free(bio);
	return out;
}

static char *key_to_pem(EVP_PKEY *key, int private_part)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *out = NULL;
	int ok;

	if (!bio)
		return NULL;
	if (private_part)
		ok = PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL);
	else
		ok = PEM_write_bio_PUBKEY(bio, key);
	if (ok)
		out = bio_to_string(bio);
	BIO_free(bio);
	return out;
}

/* A fresh 159-bit random serial number, as RFC 5280 allows up to 20 octets. */
static int set_random_serial(X509 *cert)
{
	unsigned char bytes[20];
	BIGNUM *bn;
	int ok;

	if (RAND_bytes(bytes, sizeof(bytes)) != 1)
		return 0;
	bytes[0] &= 0x7f;
	bn = BN_bin2bn(bytes, sizeof(bytes), NULL);
	if (!bn)
		return 0;
	ok = BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) != NULL;
	BN_free(bn);
	return ok;
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!ext)
		return 0;
	ok = X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
	return ok;
}

/*
 * Builds a certificate for key with subject and the given issuer (NULL
 * issuer = self-signed), signs it with signer and adds the extensions.
 */
static X509 *build_cert(EVP_PKEY *key, const X509_NAME *subject, X509 *issuer,
			EVP_PKEY *signer, int days, const char *const *exts, const int *nids,
			size_t ext_count)
{
	X509 *cert = X509_new();

	if (!cert)
		return NULL;
	if (!X509_set_version(cert, 2) || !set_random_serial(cert) ||
	    !X509_set_subject_name(cert, subject) ||
	    !X509_set_issuer_name(cert, issuer ? X509_get_subject_name(issuer) : subject) ||
	    !X509_gmtime_adj(X509_getm_notBefore(cert), -3600) ||
	    !X509_gmtime_adj(X509_getm_notAfter(cert), (long)days * 86400L) ||
	    !X509_set_pubkey(cert, key))
		goto fail;
	for (size_t i = 0; i < ext_count; i++)
		if (!add_ext(cert, issuer ? issuer : cert, nids[i], exts[i]))
			goto fail;
	if (X509_sign(cert, signer, EVP_sha256()) <= 0)
		goto fail;
	return cert;

fail:
	X509_free(cert);
	return NULL;
}

static X509_NAME *name_with_cn(const char *common_name)
{
	X509_NAME *name = X509_NAME_new();

	if (name && !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
						 (const unsigned char *)common_name, -1, -1, 0)) {
		X509_NAME_free(name);
		return NULL;
	}
	return name;
}

static pl_err write_cert_and_key(X509 *cert, EVP_PKEY *key, const char *cert_path,
				 const char *key_path, pl_errmsg *e)
{
	char *cert_pem = cert_to_pem(cert);
	char *key_pem = key_to_pem(key, 1);
	pl_err rc;

	if (!cert_pem || !key_pem) {
		rc = ssl_fail(e, "PEM encoding failed");
		goto out;
	}
	rc = sim_certs_write_file(key_path, key_pem, 0600, e);
	if (rc == PL_OK)
		rc = sim_certs_write_file(cert_path, cert_pem, 0644, e);
out:
	if (key_pem)
		OPENSSL_cleanse(key_pem, strlen(key_pem));
	free(key_pem);
	free(cert_pem);
	return rc;
}

pl_err sim_certs_create_ca(const char *cert_path, const char *key_path, const char *common_name,
			   int days, pl_errmsg *e)
{
	static const int nids[] = { NID_basic_constraints, NID_key_usage,
				    NID_subject_key_identifier };
	static const char *const exts[] = { "critical,CA:TRUE", "critical,keyCertSign,cRLSign",
					    "hash" };
	EVP_PKEY *key = EVP_RSA_gen(2048);
	X509_NAME *name = name_with_cn(common_name);
	X509 *cert = NULL;
	pl_err rc;

	if (!key || !name) {
		rc = ssl_fail(e, "CA key generation failed");
		goto out;
	}
	cert = build_cert(key, name, NULL, key, days, exts, nids, 3);
	if (!cert) {
		rc = ssl_fail(e, "CA certificate creation failed");
		goto out;
	}
	rc = write_cert_and_key(cert, key, cert_path, key_path, e);
out:
	X509_free(cert);
	X509_NAME_free(name);
	EVP_PKEY_free(key);
	return rc;
}

pl_err sim_ca_load(sim_ca **out, const char *cert_path, const char *key_path, pl_errmsg *e)
{
	sim_ca *ca = calloc(1, sizeof(*ca));
	FILE *f;

	if (!ca)
		return pl_errmsg_set(e, PL_ERR_NOMEM, "CA: out of memory");
	f = fopen(cert_path, "r");
	if (f) {
		ca->cert = PEM_read_X509(f, NULL, NULL, NULL);
		fclose(f);
	}
	f = fopen(key_path, "r");
	if (f) {
		ca->key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
		fclose(f);
	}
	if (!ca->cert || !ca->key) {
		ERR_clear_error();
		sim_ca_free(ca);
		return pl_errmsg_set(e, PL_ERR_PARSE, "CA: cannot load %s and %s", cert_path,
				     key_path);
	}
	*out = ca;
	return PL_OK;
}

void sim_ca_free(sim_ca *ca)
{
	if (!ca)
		return;
	X509_free(ca->cert);
	EVP_PKEY_free(ca->key);
	free(ca);
}

void sim_ca_id(const sim_ca *ca, char out[SIM_CERTS_ID_LEN + 1])
{
	x509_id(ca->cert, out);
}

pl_err sim_certs_create_server(const sim_ca *ca, const char *cert_path, const char *key_path,
			       int days, pl_errmsg *e)
{
	static const int nids[] = { NID_basic_constraints, NID_key_usage, NID_ext_key_usage,
				    NID_subject_alt_name };
	static const char *const exts[] = { "critical,CA:FALSE",
					    "critical,digitalSignature,keyEncipherment",
					    "serverAuth",
					    "IP:127.0.0.1,IP:::1,DNS:localhost" };
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509_NAME *name = name_with_cn("localhost");
	X509 *cert = NULL;
	pl_err rc;

	if (!key || !name) {
		rc = ssl_fail(e, "server key generation failed");
		goto out;
	}
	cert = build_cert(key, name, ca->cert, ca->key, days, exts, nids, 4);
	if (!cert) {
		rc = ssl_fail(e, "server certificate creation failed");
		goto out;
	}
	rc = write_cert_and_key(cert, key, cert_path, key_path, e);
out:
	X509_free(cert);
	X509_NAME_free(name);
	EVP_PKEY_free(key);
	return rc;
}

static const int client_nids[] = { NID_basic_constraints, NID_key_usage, NID_ext_key_usage };
static const char *const client_exts[] = { "critical,CA:FALSE",
					   "critical,digitalSignature,keyEncipherment",
					   "clientAuth" };

pl_err sim_certs_sign_csr(const sim_ca *ca, const char *csr_pem, int days, char **cert_pem,
			  pl_errmsg *e)
{
	BIO *bio = BIO_new_mem_buf(csr_pem, -1);
	X509_REQ *req = bio ? PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL) : NULL;
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	pl_err rc = PL_OK;

	BIO_free(bio);
	if (!req) {
		ERR_clear_error();
		return pl_errmsg_set(e, PL_ERR_PARSE, "CSR: not a PEM certificate signing request");
	}
	key = X509_REQ_get_pubkey(req);
	if (!key || X509_REQ_verify(req, key) != 1) {
		rc = ssl_fail(e, "CSR: signature verification failed");
		goto out;
	}
	cert = build_cert(key, X509_REQ_get_subject_name(req), ca->cert, ca->key, days,
			  client_exts, client_nids, 3);
	if (!cert || !(*cert_pem = cert_to_pem(cert)))
		rc = ssl_fail(e, "CSR: signing failed");
out:
	X509_free(cert);
	EVP_PKEY_free(key);
	X509_REQ_free(req);
	return rc;
}

pl_err sim_certs_create_keys_and_cert(const sim_ca *ca, const char *common_name, int days,
				      char **cert_pem, char **private_key_pem,
				      char **public_key_pem, pl_errmsg *e)
{
	EVP_PKEY *key = EVP_RSA_gen(2048);
	X509_NAME *name = name_with_cn(common_name);
	X509 *cert = NULL;
	char *c = NULL, *priv = NULL, *pub = NULL;
	pl_err rc = PL_OK;

	if (!key || !name) {
		rc = ssl_fail(e, "key generation failed");
		goto out;
	}
	cert = build_cert(key, name, ca->cert, ca->key, days, client_exts, client_nids, 3);
	if (cert) {
		c = cert_to_pem(cert);
		priv = key_to_pem(key, 1);
		pub = public_key_pem ? key_to_pem(key, 0) : NULL;
	}
	if (!c || !priv || (public_key_pem && !pub)) {
		rc = ssl_fail(e, "certificate creation failed");
		free(c);
		free(priv);
		free(pub);
		goto out;
	}
	*cert_pem = c;
	*private_key_pem = priv;
	if (public_key_pem)
		*public_key_pem = pub;
out:
	X509_free(cert);
	X509_NAME_free(name);
	EVP_PKEY_free(key);
	return rc;
}

pl_err sim_certs_create_ec_csr(const char *common_name, char **private_key_pem, char **csr_pem,
			       pl_errmsg *e)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509_NAME *name = name_with_cn(common_name);
	X509_REQ *req = X509_REQ_new();
	BIO *bio = BIO_new(BIO_s_mem());
	char *csr = NULL, *priv = NULL;
	pl_err rc = PL_OK;

	if (!key || !name || !req || !bio || !X509_REQ_set_version(req, 0) ||
	    !X509_REQ_set_subject_name(req, name) || !X509_REQ_set_pubkey(req, key) ||
	    X509_REQ_sign(req, key, EVP_sha256()) <= 0 || !PEM_write_bio_X509_REQ(bio, req)) {
		rc = ssl_fail(e, "CSR creation failed");
		goto out;
	}
	csr = bio_to_string(bio);
	priv = key_to_pem(key, 1);
	if (!csr || !priv) {
		free(csr);
		free(priv);
		rc = pl_errmsg_set(e, PL_ERR_NOMEM, "CSR creation: out of memory");
		goto out;
	}
	*csr_pem = csr;
	*private_key_pem = priv;
out:
	BIO_free(bio);
	X509_REQ_free(req);
	X509_NAME_free(name);
	EVP_PKEY_free(key);
	return rc;
}
