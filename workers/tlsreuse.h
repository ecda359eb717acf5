/*
 * Reuse of parsed TLS credentials across paho connections.
 *
 * Paho 1.3.12 builds a new SSL_CTX for every connect and fills it with
 * SSL_CTX_use_certificate_chain_file, SSL_CTX_use_PrivateKey_file and
 * SSL_CTX_load_verify_locations, so OpenSSL 3.0 parses each PEM file again.
 * Callgrind counted about 7.8 million instructions per connect for that on
 * the development machine (EC P-256 key 4.7 M, certificate 1.6 M, CA 1.5 M),
 * against 8.3 M for the whole handshake.
 *
 * tlsreuse.c defines those three functions in the policylag executable, so
 * the dynamic linker binds paho's calls (and every other library's) to them
 * ahead of libssl's. Until wk_tls_reuse_enable is called they only forward
 * to libssl. Once enabled, each file is parsed once with libssl's own
 * function and later calls put the cached, reference-counted objects into
 * the new SSL_CTX. A file whose size, inode or modification time changes is
 * parsed again. Enabled, they also set SSL_MODE_RELEASE_BUFFERS on the
 * SSL_CTX, so an idle connection frees its TLS record buffers.
 * Cached objects live until the process ends: a worker's devices are fixed,
 * and a connected device's SSL_CTX holds references to them anyway.
 */
#ifndef PL_WORKER_TLSREUSE_H
#define PL_WORKER_TLSREUSE_H

#include <stddef.h>

/* Enables the cache for the rest of the process. Thread-safe. */
void wk_tls_reuse_enable(void);

/*
 * Enables the shared SSL_CTX of tlsshare.c for the rest of the process:
 * SSL_new on a context equal to an earlier one, credentials aside, makes the
 * SSL from that earlier context and frees the new one at once. Only for
 * callers that, like paho 1.3.12, configure each context with the setters
 * tlsshare.c compares or records, call SSL_new once, and then only
 * SSL_CTX_free it. Thread-safe.
 */
void wk_tls_share_enable(void);

/* SSLs made from a shared context so far. */
size_t wk_tls_share_count(void);

/* Cache counters: calls that parsed a file, calls served from the cache. */
typedef struct wk_tls_reuse_stats {
	size_t parsed;
	size_t reused;
} wk_tls_reuse_stats;

void wk_tls_reuse_stats_get(wk_tls_reuse_stats *out);

#endif
