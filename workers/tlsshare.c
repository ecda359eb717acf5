/*
 * One shared SSL_CTX behind paho's per-connect contexts (see tlsreuse.h).
 *
 * Paho 1.3.12 builds an SSL_CTX for each connect, configures it, calls
 * SSL_new on it and keeps it until the connection closes, when it calls
 * SSL_CTX_free. An empty SSL_CTX from OpenSSL 3.0.22's TLS_client_method
 * takes about 13 kB of heap, so every idle connection carried one.
 *
 * Once sharing is on, SSL_new(ctx) compares ctx with the shared contexts
 * made so far. Everything that SSL_new copies into the SSL, or that the
 * handshake reads from the context, must be equal. Getters show most of it:
 * method, options, mode, versions, verify mode and callback, security
 * level, callbacks, cipher list and the CA store's certificates. The
 * setters paho calls record the rest (message callback, ALPN), or mark the
 * context unshareable (PSK callback, ex_data, default verify paths, a
 * credential that was not served from the cache).
 *
 * The SSL is then made from the equal shared context, its certificates are
 * cleared, and the connection's own certificate, chain and key are set on
 * it, so it contains exactly what SSL_new would have copied from ctx. The
 * unused ctx is freed at once and its address is "retired": paho's later
 * SSL_CTX_free of that address does nothing. A new context that malloc
 * places at a retired address is held back until the retirement ends, so a
 * free never reaches the wrong object.
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

#define SHARED_MAX 16    /* distinct shared contexts; with more, SSL_new works as libssl's */
#define RETIRED_BUCKETS 1024
#define ALPN_MAX 255

typedef void (*msg_cb_fn)(int, int, int, const void *, size_t, SSL *, void *);

/* What a context's getters do not show, recorded by the setters paho calls. */
typedef struct share_record {
	int unshareable;
	unsigned cert_loads; /* certificate chain files loaded into the context */
	unsigned key_loads;  /* private key files loaded into the context */
	msg_cb_fn msg_cb;
	unsigned alpn_len;
	unsigned char alpn[ALPN_MAX];
} share_record;

typedef struct retired_addr {
	struct retired_addr *next;
	const SSL_CTX *ctx;
} retired_addr;

/* A new context held back because malloc placed it at a retired address. */
typedef struct held_ctx {
	struct held_ctx *next;
	SSL_CTX *ctx;
} held_ctx;

static atomic_int g_share_enabled;
static pthread_mutex_t g_share_lock = PTHREAD_MUTEX_INITIALIZER;
static SSL_CTX *g_shared[SHARED_MAX];
static size_t g_nshared;
static retired_addr *g_retired[RETIRED_BUCKETS];
static held_ctx *g_held;
static size_t g_shared_ssl; /* SSLs made from a shared context */

static pthread_once_t g_share_once = PTHREAD_ONCE_INIT;
static int g_record_index = -1;
static SSL_CTX *(*g_real_ctx_new_ex)(OSSL_LIB_CTX *, const char *, const SSL_METHOD *);
static void (*g_real_ctx_free)(SSL_CTX *);
static SSL *(*g_real_ssl_new)(SSL_CTX *);
static int (*g_real_set_ex_data)(SSL_CTX *, int, void *);
static void (*g_real_set_msg_callback)(SSL_CTX *, msg_cb_fn);
static int (*g_real_set_alpn)(SSL_CTX *, const unsigned char *, unsigned int);
static void (*g_real_set_psk)(SSL_CTX *, SSL_psk_client_cb_func);
static int (*g_real_default_paths)(SSL_CTX *);

static void record_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
			void *argp)
{
	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	free(ptr);
}

static void share_init(void)
{
	g_real_ctx_new_ex = (SSL_CTX * (*)(OSSL_LIB_CTX *, const char *, const SSL_METHOD *))
		wk_tls_real_fn("SSL_CTX_new_ex");
	g_real_ctx_free = (void (*)(SSL_CTX *))wk_tls_real_fn("SSL_CTX_free");
	g_real_ssl_new = (SSL * (*)(SSL_CTX *)) wk_tls_real_fn("SSL_new");
	g_real_set_ex_data = (int (*)(SSL_CTX *, int, void *))wk_tls_real_fn("SSL_CTX_set_ex_data");
	g_real_set_msg_callback =
		(void (*)(SSL_CTX *, msg_cb_fn))wk_tls_real_fn("SSL_CTX_set_msg_callback");
	g_real_set_alpn = (int (*)(SSL_CTX *, const unsigned char *, unsigned int))wk_tls_real_fn(
		"SSL_CTX_set_alpn_protos");
	g_real_set_psk = (void (*)(SSL_CTX *, SSL_psk_client_cb_func))wk_tls_real_fn(
		"SSL_CTX_set_psk_client_callback");
	g_real_default_paths = (int (*)(SSL_CTX *))wk_tls_real_fn("SSL_CTX_set_default_verify_paths");
	g_record_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, record_free);
}

void wk_tls_share_enable(void)
{
	pthread_once(&g_share_once, share_init);
	atomic_store(&g_share_enabled, 1);
}

size_t wk_tls_share_count(void)
{
	size_t n;

	pthread_mutex_lock(&g_share_lock);
	n = g_shared_ssl;
	pthread_mutex_unlock(&g_share_lock);
	return n;
}

static int share_on(void)
{
	return atomic_load_explicit(&g_share_enabled, memory_order_relaxed);
}

static share_record *record_of(const SSL_CTX *ctx)
{
	if (!share_on() || ctx == NULL || g_record_index < 0)
		return NULL;
	return SSL_CTX_get_ex_data(ctx, g_record_index);
}

void wk_tls_share_forbid(SSL_CTX *ctx)
{
	share_record *r = record_of(ctx);

	if (r != NULL)
		r->unshareable = 1;
}

void wk_tls_share_note_load(SSL_CTX *ctx, wk_tls_load kind, int cached)
{
	share_record *r = record_of(ctx);

	if (r == NULL)
		return;
	if (!cached)
		r->unshareable = 1;
	if (kind == WK_TLS_LOAD_CHAIN)
		r->cert_loads++;
	else if (kind == WK_TLS_LOAD_KEY)
		r->key_loads++;
}

/* ---- retired addresses (under g_share_lock) ---- */

static size_t retired_bucket(const SSL_CTX *ctx)
{
	return (size_t)(((uintptr_t)ctx >> 4) % RETIRED_BUCKETS);
}

static int retired_has(const SSL_CTX *ctx)
{
	for (retired_addr *r = g_retired[retired_bucket(ctx)]; r != NULL; r = r->next)
		if (r->ctx == ctx)
			return 1;
	return 0;
}

/* Retires ctx's address; returns 0 when out of memory (ctx must then stay). */
static int retired_add(const SSL_CTX *ctx)
{
	retired_addr *r = malloc(sizeof(*r));
	size_t b = retired_bucket(ctx);

	if (r == NULL)
		return 0;
	r->ctx = ctx;
	r->next = g_retired[b];
	g_retired[b] = r;
	return 1;
}

/* Ends one retirement of ctx's address; returns 0 when it was not retired. */
static int retired_take(const SSL_CTX *ctx)
{
	for (retired_addr **p = &g_retired[retired_bucket(ctx)]; *p != NULL; p = &(*p)->next) {
		retired_addr *r = *p;

		if (r->ctx == ctx) {
			*p = r->next;
			free(r);
			return 1;
		}
	}
	return 0;
}

/* Frees the held-back contexts whose addresses are no longer retired. */
static void held_release(void)
{
	held_ctx **p = &g_held;

	while (*p != NULL) {
		held_ctx *h = *p;

		if (retired_has(h->ctx)) {
			p = &h->next;
			continue;
		}
		*p = h->next;
		g_real_ctx_free(h->ctx);
		free(h);
	}
}

/* ---- interposed context lifetime ---- */

static SSL_CTX *ctx_new(OSSL_LIB_CTX *libctx, const char *propq, const SSL_METHOD *method)
{
	SSL_CTX *ctx;
	share_record *r;

	pthread_once(&g_share_once, share_init);
	ctx = g_real_ctx_new_ex(libctx, propq, method);
	if (ctx == NULL || !share_on())
		return ctx;
	pthread_mutex_lock(&g_share_lock);
	while (ctx != NULL && retired_has(ctx)) {
		held_ctx *h = malloc(sizeof(*h));

		if (h == NULL) {
			/* Cannot hold it back: leak it rather than reuse a retired address. */
			ctx = g_real_ctx_new_ex(libctx, propq, method);
			continue;
		}
		h->ctx = ctx;
		h->next = g_held;
		g_held = h;
		ctx = g_real_ctx_new_ex(libctx, propq, method);
	}
	pthread_mutex_unlock(&g_share_lock);
	r = ctx != NULL ? calloc(1, sizeof(*r)) : NULL;
	if (r != NULL && g_real_set_ex_data(ctx, g_record_index, r) != 1)
		free(r);
	return ctx;
}

SSL_CTX *SSL_CTX_new_ex(OSSL_LIB_CTX *libctx, const char *propq, const SSL_METHOD *method)
{
	return ctx_new(libctx, propq, method);
}

SSL_CTX *SSL_CTX_new(const SSL_METHOD *method)
{
	return ctx_new(NULL, NULL, method);
}

void SSL_CTX_free(SSL_CTX *ctx)
{
	pthread_once(&g_share_once, share_init);
	if (ctx != NULL && share_on()) {
		int was_retired;

		pthread_mutex_lock(&g_share_lock);
		was_retired = retired_take(ctx);
		if (was_retired)
			held_release();
		pthread_mutex_unlock(&g_share_lock);
		if (was_retired)
			return; /* already freed when its SSL was made from a shared context */
	}
	g_real_ctx_free(ctx);
}

/* ---- setters whose effect no getter shows ---- */

void SSL_CTX_set_msg_callback(SSL_CTX *ctx, msg_cb_fn cb)
{
	share_record *r;

	pthread_once(&g_share_once, share_init);
	g_real_set_msg_callback(ctx, cb);
	if ((r = record_of(ctx)) != NULL)
		r->msg_cb = cb;
}

int SSL_CTX_set_alpn_protos(SSL_CTX *ctx, const unsigned char *protos, unsigned int len)
{
	share_record *r;
	int rc;

	pthread_once(&g_share_once, share_init);
	rc = g_real_set_alpn(ctx, protos, len);
	if ((r = record_of(ctx)) == NULL)
		return rc;
	if (rc != 0 || len > ALPN_MAX) {
		r->unshareable = 1;
		return rc;
	}
	r->alpn_len = protos != NULL ? len : 0;
	if (r->alpn_len > 0)
		memcpy(r->alpn, protos, len);
	return rc;
}

void SSL_CTX_set_psk_client_callback(SSL_CTX *ctx, SSL_psk_client_cb_func cb)
{
	pthread_once(&g_share_once, share_init);
	g_real_set_psk(ctx, cb);
	wk_tls_share_forbid(ctx);
}

int SSL_CTX_set_ex_data(SSL_CTX *ctx, int idx, void *data)
{
	pthread_once(&g_share_once, share_init);
	/* SSL_get_SSL_CTX(ssl) of a shared SSL would return another context's data. */
	wk_tls_share_forbid(ctx);
	return g_real_set_ex_data(ctx, idx, data);
}

int SSL_CTX_set_default_verify_paths(SSL_CTX *ctx)
{
	pthread_once(&g_share_once, share_init);
	/* Adds lookup methods to the store, which no getter lists. */
	wk_tls_share_forbid(ctx);
	return g_real_default_paths(ctx);
}

/* ---- equality of two contexts ---- */

static int same_ciphers(SSL_CTX *a, SSL_CTX *b)
{
	STACK_OF(SSL_CIPHER) *ca = SSL_CTX_get_ciphers(a);
	STACK_OF(SSL_CIPHER) *cb = SSL_CTX_get_ciphers(b);
	int n = sk_SSL_CIPHER_num(ca);

	if (n != sk_SSL_CIPHER_num(cb))
		return 0;
	for (int i = 0; i < n; i++)
		if (sk_SSL_CIPHER_value(ca, i) != sk_SSL_CIPHER_value(cb, i))
			return 0;
	return 1;
}

/* The same certificate objects, and nothing but certificates, in both stores. */
static int same_store(SSL_CTX *a, SSL_CTX *b)
{
	STACK_OF(X509_OBJECT) *oa = X509_STORE_get0_objects(SSL_CTX_get_cert_store(a));
	STACK_OF(X509_OBJECT) *ob = X509_STORE_get0_objects(SSL_CTX_get_cert_store(b));
	int n = sk_X509_OBJECT_num(oa);

	if (n != sk_X509_OBJECT_num(ob))
		return 0;
	for (int i = 0; i < n; i++) {
		X509 *xa = X509_OBJECT_get0_X509(sk_X509_OBJECT_value(oa, i));

		if (xa == NULL || xa != X509_OBJECT_get0_X509(sk_X509_OBJECT_value(ob, i)))
			return 0;
	}
	return 1;
}

static int same_records(const share_record *a, const share_record *b)
{
	return a->msg_cb == b->msg_cb && a->alpn_len == b->alpn_len &&
	       memcmp(a->alpn, b->alpn, a->alpn_len) == 0;
}

/* Whether an SSL made from b is what SSL_new(a) would make, credentials aside. */
static int same_settings(SSL_CTX *a, const share_record *ra, SSL_CTX *b, const share_record *rb)
{
	return SSL_CTX_get_ssl_method(a) == SSL_CTX_get_ssl_method(b) &&
	       SSL_CTX_get_security_level(a) == SSL_CTX_get_security_level(b) &&
	       SSL_CTX_get_options(a) == SSL_CTX_get_options(b) &&
	       SSL_CTX_get_mode(a) == SSL_CTX_get_mode(b) &&
	       SSL_CTX_get_min_proto_version(a) == SSL_CTX_get_min_proto_version(b) &&
	       SSL_CTX_get_max_proto_version(a) == SSL_CTX_get_max_proto_version(b) &&
	       SSL_CTX_get_verify_mode(a) == SSL_CTX_get_verify_mode(b) &&
	       SSL_CTX_get_verify_callback(a) == SSL_CTX_get_verify_callback(b) &&
	       SSL_CTX_get_verify_depth(a) == SSL_CTX_get_verify_depth(b) &&
	       SSL_CTX_get_info_callback(a) == SSL_CTX_get_info_callback(b) &&
	       SSL_CTX_get_client_cert_cb(a) == SSL_CTX_get_client_cert_cb(b) &&
	       SSL_CTX_get_keylog_callback(a) == SSL_CTX_get_keylog_callback(b) &&
	       SSL_CTX_get_max_cert_list(a) == SSL_CTX_get_max_cert_list(b) &&
	       SSL_CTX_get_session_cache_mode(a) == SSL_CTX_get_session_cache_mode(b) &&
	       SSL_CTX_get_default_passwd_cb(a) == NULL && SSL_CTX_get_default_passwd_cb(b) == NULL &&
	       SSL_CTX_get_default_passwd_cb_userdata(a) == NULL &&
	       SSL_CTX_get_default_passwd_cb_userdata(b) == NULL && same_records(ra, rb) &&
	       same_ciphers(a, b) && same_store(a, b);
}

/* ---- SSL_new ---- */

/* Gives ssl exactly the certificate, chain and key that ctx holds. */
static int copy_credentials(SSL *ssl, SSL_CTX *ctx)
{
	X509 *leaf = SSL_CTX_get0_certificate(ctx);
	EVP_PKEY *key = SSL_CTX_get0_privatekey(ctx);
	STACK_OF(X509) *chain = NULL;

	SSL_certs_clear(ssl);
	if (leaf != NULL && SSL_use_certificate(ssl, leaf) != 1)
		return 0;
	if (key != NULL && SSL_use_PrivateKey(ssl, key) != 1)
		return 0;
	if (leaf != NULL && SSL_CTX_get0_chain_certs(ctx, &chain) == 1 && chain != NULL &&
	    SSL_set1_chain(ssl, chain) != 1)
		return 0;
	return 1;
}

/*
 * Finds the shared context equal to ctx, or adopts ctx as a new one (then
 * returns NULL: ctx itself makes the SSL). Under g_share_lock.
 */
static SSL_CTX *shared_for(SSL_CTX *ctx, const share_record *r)
{
	for (size_t i = 0; i < g_nshared; i++) {
		SSL_CTX *s = g_shared[i];

		if (same_settings(ctx, r, s, SSL_CTX_get_ex_data(s, g_record_index)))
			return s;
	}
	if (g_nshared < SHARED_MAX && SSL_CTX_up_ref(ctx) == 1)
		g_shared[g_nshared++] = ctx;
	return NULL;
}

SSL *SSL_new(SSL_CTX *ctx)
{
	share_record *r;
	SSL_CTX *shared;
	SSL *ssl;
	int retire;

	pthread_once(&g_share_once, share_init);
	r = record_of(ctx);
	/* Paho loads at most one chain and one key; copy_credentials copies one. */
	if (r == NULL || r->unshareable || r->cert_loads > 1 || r->key_loads > 1)
		return g_real_ssl_new(ctx);
	pthread_mutex_lock(&g_share_lock);
	shared = shared_for(ctx, r);
	if (shared == NULL || shared == ctx) {
		pthread_mutex_unlock(&g_share_lock);
		return g_real_ssl_new(ctx);
	}
	ssl = g_real_ssl_new(shared);
	if (ssl != NULL && !copy_credentials(ssl, ctx)) {
		SSL_free(ssl);
		ssl = NULL;
	}
	if (ssl == NULL) {
		pthread_mutex_unlock(&g_share_lock);
		return g_real_ssl_new(ctx);
	}
	g_shared_ssl++;
	retire = retired_add(ctx);
	pthread_mutex_unlock(&g_share_lock);
	/* The caller holds the only reference: free ctx now, ignore its SSL_CTX_free later. */
	if (retire)
		g_real_ctx_free(ctx);
	return ssl;
}
