/*
 * AWS Signature Version 4 verification for the simulator's HTTP API.
 *
 * The verifier rebuilds the canonical request from what arrived on the wire
 * (method, the path and query exactly as sent, the signed headers, the body),
 * derives the signing key from the secret with the HMAC-SHA256 chain
 * ("AWS4" + secret -> date -> region -> service -> "aws4_request") and
 * compares signatures in constant time.
 *
 * Path canonicalisation differs between signers: AWS's SDKs for services
 * other than S3 percent-encode the already-encoded path a second time, while
 * libcurl's CURLOPT_AWS_SIGV4 signs the path as sent. The verifier accepts a
 * signature made over either form.
 *
 * Thread-safe: no shared state.
 */
#ifndef SIM_SIGV4_H
#define SIM_SIGV4_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

/* Looks up a request header by lowercase name; NULL when absent. */
typedef const char *(*sim_sigv4_header_fn)(void *ctx, const char *lower_name);

typedef struct sim_sigv4_request {
	const char *method;    /* "GET", "POST", ... */
	const char *raw_path;  /* percent-encoded path as sent, starting with '/' */
	const char *raw_query; /* query as sent without '?', or NULL */
	sim_sigv4_header_fn header;
	void *header_ctx;
	const void *body;
	size_t body_len;
} sim_sigv4_request;

typedef struct sim_sigv4_key {
	const char *access_key_id;
	const char *secret;
	const char *region;
	const char *const *services; /* accepted signing names, NULL-terminated */
	int64_t skew_ns;             /* accepted distance between request time and now */
} sim_sigv4_key;

typedef enum sim_sigv4_result {
	SIM_SIGV4_OK = 0,
	SIM_SIGV4_MISSING,      /* no Authorization header */
	SIM_SIGV4_MALFORMED,    /* header present but not a SigV4 authorization */
	SIM_SIGV4_UNKNOWN_KEY,  /* access key id is not ours */
	SIM_SIGV4_BAD_SCOPE,    /* region or service in the credential scope is wrong */
	SIM_SIGV4_EXPIRED,      /* request time outside the skew window */
	SIM_SIGV4_BAD_SIGNATURE /* signature does not match */
} sim_sigv4_result;

/*
 * Verifies req against key at wall time now_ns. On success the matched
 * signing name is copied to service (at least 32 bytes). why (may be NULL)
 * receives a message in AWS's wording for the client.
 */
sim_sigv4_result sim_sigv4_verify(const sim_sigv4_request *req, const sim_sigv4_key *key,
				  int64_t now_ns, char *service, size_t service_len, char *why,
				  size_t why_len);

/* AWS's error type and HTTP status for a failed verification. */
const char *sim_sigv4_error_type(sim_sigv4_result r);
int sim_sigv4_http_status(sim_sigv4_result r);

/*
 * Building blocks, exposed for tests. sim_sigv4_canonical_request writes the
 * canonical request for the given canonical URI (already encoded as the
 * signer encodes it) into a malloc'd string (*out, caller frees).
 */
pl_err sim_sigv4_canonical_request(const sim_sigv4_request *req, const char *canonical_uri,
				   const char *signed_headers, char **out);
void sim_sigv4_signing_key(const char *secret, const char *date8, const char *region,
			   const char *service, unsigned char out[32]);
/* Hex of the signature of string_to_sign under key (65 bytes with the NUL). */
void sim_sigv4_sign(const unsigned char key[32], const char *string_to_sign, char hex[65]);

/* URI-encodes src the SigV4 way (unreserved kept; '/' kept when keep_slash). */
pl_err sim_sigv4_uri_encode(const char *src, size_t len, int keep_slash, char **out);

/* Decodes %XX escapes into a malloc'd string; PL_ERR_PARSE on a bad escape or NUL. */
pl_err sim_sigv4_uri_decode(const char *src, size_t len, char **out);

#endif
