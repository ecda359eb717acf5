/*
 * Shared between tlsreuse.c (the credential cache) and tlsshare.c (the
 * shared SSL_CTX). Not for other modules.
 */
#ifndef PL_WORKER_TLSREUSE_INTERNAL_H
#define PL_WORKER_TLSREUSE_INTERNAL_H

#include <openssl/ssl.h>

typedef enum wk_tls_load { WK_TLS_LOAD_CHAIN = 0, WK_TLS_LOAD_KEY, WK_TLS_LOAD_CA } wk_tls_load;

/* Returns libssl's own definition of name; aborts when libssl lacks it. */
void *wk_tls_real_fn(const char *name);

/*
 * Records that a credential file was loaded into ctx; cached = 0 when libssl
 * parsed it outside the cache, which makes ctx unshareable.
 */
void wk_tls_share_note_load(SSL_CTX *ctx, wk_tls_load kind, int cached);

/* Makes ctx unshareable: it was given something SSL_new cannot compare. */
void wk_tls_share_forbid(SSL_CTX *ctx);

#endif
