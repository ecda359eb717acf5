/*
 * Credential cache behind paho's per-connect SSL_CTX (see tlsreuse.h).
 *
 * The three exported functions keep OpenSSL's prototypes and results. A
 * cache miss calls libssl's function (found with dlsym(RTLD_NEXT)) and then
 * takes references to what it loaded, so no parsing code is duplicated here.
 * Calls that the cache cannot reproduce exactly go straight to libssl: a
 * context with a password callback, a CA directory, a CA file with CRLs, or
 * a store that already contains objects.
 */
#include "workers/tlsreuse.h"
#include "workers/tlsreuse_internal.h"

#include <dlfcn.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define BUCKETS 4096
#define ENTRIES_MAX 65536 /* beyond this, files are parsed on every call */

typedef enum cred_kind { CRED_KEY = 0, CRED_CHAIN, CRED_CA } cred_kind;

typedef struct cred_entry {
	struct cred_entry *next;
	uint8_t kind; /* cred_kind */
	int type;     /* SSL_FILETYPE_* for keys */
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
	EVP_PKEY *key;          /* CRED_KEY */
	X509 *leaf;             /* CRED_CHAIN */
	STACK_OF(X509) *certs;  /* CRED_CHAIN: the chain; CRED_CA: the CA certificates */
	char path[];
} cred_entry;

typedef int (*use_file_fn)(SSL_CTX *, const char *, int);
typedef int (*load_verify_fn)(SSL_CTX *, const char *, const char *);

static atomic_int g_enabled;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static cred_entry *g_buckets[BUCKETS];
static size_t g_entries;
static wk_tls_reuse_stats g_stats;

void wk_tls_reuse_enable(void)
{
	atomic_store(&g_enabled, 1);
}

void wk_tls_reuse_stats_get(wk_tls_reuse_stats *out)
{
	pthread_mutex_lock(&g_lock);
	*out = g_stats;
	pthread_mutex_unlock(&g_lock);
}

/* libssl's own functions, resolved once (dlsym(RTLD_NEXT) skips this executable). */
static pthread_once_t g_resolve_once = PTHREAD_ONCE_INIT;
static use_file_fn g_real_use_key_file;
static int (*g_real_use_chain_file)(SSL_CTX *, const char *);
static load_verify_fn g_real_load_verify;

void *wk_tls_real_fn(const char *name)
{
	void *fn = dlsym(RTLD_NEXT, name);

	if (fn == NULL)
		abort(); /* libssl is linked; a missing symbol means a broken install */
	return fn;
}

static void resolve_real(void)
{
	g_real_use_key_file = (use_file_fn)wk_tls_real_fn("SSL_CTX_use_PrivateKey_file");
	g_real_use_chain_file =
		(int (*)(SSL_CTX *, const char *))wk_tls_real_fn("SSL_CTX_use_certificate_chain_file");
	g_real_load_verify = (load_verify_fn)wk_tls_real_fn("SSL_CTX_load_verify_locations");
}

static int real_use_key_file(SSL_CTX *ctx, const char *file, int type)
{
	pthread_once(&g_resolve_once, resolve_real);
	return g_real_use_key_file(ctx, file, type);
}

static int real_use_chain_file(SSL_CTX *ctx, const char *file)
{
	pthread_once(&g_resolve_once, resolve_real);
	return g_real_use_chain_file(ctx, file);
}

static int real_load_verify(SSL_CTX *ctx, const char *file, const char *dir)
{
	pthread_once(&g_resolve_once, resolve_real);
	return g_real_load_verify(ctx, file, dir);
}

static size_t bucket_of(cred_kind kind, const char *path)
{
	uint64_t h = 1469598103934665603ull ^ (uint64_t)kind;

	for (const char *p = path; *p != '\0'; p++)
		h = (h ^ (uint8_t)*p) * 1099511628211ull;
	return (size_t)(h % BUCKETS);
}

static int same_file(const cred_entry *e, const struct stat *st)
{
	return e->dev == st->st_dev && e->ino == st->st_ino && e->size == st->st_size &&
	       e->mtime.tv_sec == st->st_mtim.tv_sec && e->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

static void entry_clear(cred_entry *e)
{
	EVP_PKEY_free(e->key);
	X509_free(e->leaf);
	sk_X509_pop_free(e->certs, X509_free);
	e->key = NULL;
	e->leaf = NULL;
	e->certs = NULL;
}

/*
 * Finds the entry of (kind, type, path) under g_lock. A hit needs the file
 * unchanged since it was parsed; a stale entry is emptied and returned for
 * refilling. Returns NULL when the cache is full or out of memory.
 */
static cred_entry *entry_find(cred_kind kind, int type, const char *path, const struct stat *st,
			      int *hit)
{
	size_t b = bucket_of(kind, path);
	size_t len = strlen(path);
	cred_entry *e;

	*hit = 0;
	for (e = g_buckets[b]; e != NULL; e = e->next) {
		if (e->kind != kind || e->type != type || strcmp(e->path, path) != 0)
			continue;
		if (same_file(e, st) && (e->key != NULL || e->leaf != NULL || e->certs != NULL)) {
			*hit = 1;
			return e;
		}
		entry_clear(e);
		break;
	}
	if (e == NULL) {
		if (g_entries >= ENTRIES_MAX || (e = calloc(1, sizeof(*e) + len + 1)) == NULL)
			return NULL;
		e->kind = (uint8_t)kind;
		e->type = type;
		memcpy(e->path, path, len + 1);
		e->next = g_buckets[b];
		g_buckets[b] = e;
		g_entries++;
	}
	e->dev = st->st_dev;
	e->ino = st->st_ino;
	e->size = st->st_size;
	e->mtime = st->st_mtim;
	return e;
}

/* Whether a call may use the cache: enabled, no password callback, a readable file. */
static int cacheable(SSL_CTX *ctx, const char *file, struct stat *st)
{
	if (!atomic_load_explicit(&g_enabled, memory_order_relaxed) || ctx == NULL || file == NULL)
		return 0;
	if (SSL_CTX_get_default_passwd_cb(ctx) != NULL)
		return 0;
	if (stat(file, st) != 0)
		return 0;
	/* Idle connections then free their TLS record buffers (see tlsreuse.h). */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	return 1;
}

int SSL_CTX_use_PrivateKey_file(SSL_CTX *ctx, const char *file, int type)
{
	struct stat st;
	cred_entry *e;
	int hit;
	int cached;
	int rc;

	if (!cacheable(ctx, file, &st)) {
		wk_tls_share_note_load(ctx, WK_TLS_LOAD_KEY, 0);
		return real_use_key_file(ctx, file, type);
	}
	pthread_mutex_lock(&g_lock);
	e = entry_find(CRED_KEY, type, file, &st, &hit);
	if (e != NULL && hit) {
		rc = SSL_CTX_use_PrivateKey(ctx, e->key);
		g_stats.reused++;
		pthread_mutex_unlock(&g_lock);
		wk_tls_share_note_load(ctx, WK_TLS_LOAD_KEY, 1);
		return rc;
	}
	rc = real_use_key_file(ctx, file, type);
	g_stats.parsed++;
	if (e != NULL && rc == 1 && SSL_CTX_get0_privatekey(ctx) != NULL) {
		e->key = SSL_CTX_get0_privatekey(ctx);
		EVP_PKEY_up_ref(e->key);
	}
	cached = e != NULL && e->key != NULL;
	pthread_mutex_unlock(&g_lock);
	wk_tls_share_note_load(ctx, WK_TLS_LOAD_KEY, cached);
	return rc;
}

int SSL_CTX_use_certificate_chain_file(SSL_CTX *ctx, const char *file)
{
	struct stat st;
	cred_entry *e;
	STACK_OF(X509) *chain = NULL;
	int hit;
	int cached;
	int rc;

	if (!cacheable(ctx, file, &st)) {
		wk_tls_share_note_load(ctx, WK_TLS_LOAD_CHAIN, 0);
		return real_use_chain_file(ctx, file);
	}
	pthread_mutex_lock(&g_lock);
	e = entry_find(CRED_CHAIN, 0, file, &st, &hit);
	if (e != NULL && hit) {
		/* As libssl does: the first certificate, then the rest as the chain. */
		rc = SSL_CTX_use_certificate(ctx, e->leaf) == 1 &&
		     SSL_CTX_set1_chain(ctx, e->certs) == 1;
		g_stats.reused++;
		pthread_mutex_unlock(&g_lock);
		wk_tls_share_note_load(ctx, WK_TLS_LOAD_CHAIN, 1);
		return rc;
	}
	rc = real_use_chain_file(ctx, file);
	g_stats.parsed++;
	if (e != NULL && rc == 1 && SSL_CTX_get0_certificate(ctx) != NULL &&
	    SSL_CTX_get0_chain_certs(ctx, &chain) == 1) {
		e->leaf = SSL_CTX_get0_certificate(ctx);
		X509_up_ref(e->leaf);
		e->certs = chain != NULL ? X509_chain_up_ref(chain) : NULL;
	}
	cached = e != NULL && e->leaf != NULL;
	pthread_mutex_unlock(&g_lock);
	wk_tls_share_note_load(ctx, WK_TLS_LOAD_CHAIN, cached);
	return rc;
}

/* Adds each certificate of certs to store (each gets a reference). */
static int store_add_all(X509_STORE *store, STACK_OF(X509) *certs)
{
	for (int i = 0; i < sk_X509_num(certs); i++)
		if (X509_STORE_add_cert(store, sk_X509_value(certs, i)) != 1)
			return 0;
	return 1;
}

int SSL_CTX_load_verify_locations(SSL_CTX *ctx, const char *file, const char *dir)
{
	struct stat st;
	X509_STORE *store = ctx != NULL ? SSL_CTX_get_cert_store(ctx) : NULL;
	cred_entry *e;
	int hit;
	int cached;
	int rc;

	/* Only a CA file into an empty store can be reproduced from certificates alone. */
	if (dir != NULL || store == NULL ||
	    sk_X509_OBJECT_num(X509_STORE_get0_objects(store)) != 0 || !cacheable(ctx, file, &st)) {
		/* A CA directory adds a lookup method, which no getter shows. */
		wk_tls_share_note_load(ctx, WK_TLS_LOAD_CA, 0);
		return real_load_verify(ctx, file, dir);
	}
	pthread_mutex_lock(&g_lock);
	e = entry_find(CRED_CA, 0, file, &st, &hit);
	if (e != NULL && hit) {
		rc = store_add_all(store, e->certs);
		g_stats.reused++;
		pthread_mutex_unlock(&g_lock);
		wk_tls_share_note_load(ctx, WK_TLS_LOAD_CA, 1);
		return rc;
	}
	rc = real_load_verify(ctx, file, dir);
	g_stats.parsed++;
	if (e != NULL && rc == 1) {
		STACK_OF(X509) *certs = X509_STORE_get1_all_certs(store);

		/* A file with CRLs or other objects is parsed on every call. */
		if (certs != NULL &&
		    sk_X509_num(certs) == sk_X509_OBJECT_num(X509_STORE_get0_objects(store)))
			e->certs = certs;
		else
			sk_X509_pop_free(certs, X509_free);
	}
	cached = e != NULL && e->certs != NULL;
	pthread_mutex_unlock(&g_lock);
	wk_tls_share_note_load(ctx, WK_TLS_LOAD_CA, cached);
	return rc;
}
