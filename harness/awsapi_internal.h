/*
 * Private to harness/awsapi*.c: the request executor that the operations are
 * written on, URL encoding, and the SigV4 signer used where libcurl's own
 * signing differs from AWS's canonical form.
 */
#ifndef PL_AWSAPI_INTERNAL_H
#define PL_AWSAPI_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "harness/awsapi.h"

#define AWSAPI_PATH_MAX 2048
#define AWSAPI_QUERY_MAX 1024

/* One HTTP request of an operation, before signing. */
typedef struct awsapi_http {
	awsapi_op op;
	const char *method;       /* "GET", "POST", "PUT", "PATCH" or "DELETE" */
	char path[AWSAPI_PATH_MAX];   /* already percent-encoded, starts with '/' */
	char query[AWSAPI_QUERY_MAX]; /* "a=1&b=2", keys sorted and encoded, or "" */
	const char *body;         /* NULL: no body */
	size_t body_len;
	const char *content_type; /* NULL: application/json when there is a body */
	const char *subject;      /* named in error messages, e.g. the policy name; may be NULL */
} awsapi_http;

/*
 * Sends req with rate limiting, signing and retries; on success (HTTP 2xx)
 * *out_json receives the parsed body (NULL for an empty body; caller frees
 * with json_decref) when out_json is not NULL. Fills *call when not NULL.
 */
pl_err awsapi_execute(awsapi_client *c, const awsapi_http *req, json_t **out_json,
		      awsapi_call *call, pl_errmsg *e);

/* Zeroes the client's copy of the last response body (it may contain a private key). */
void awsapi_client_wipe_response(awsapi_client *c);

/* Starts req: method and path with a printf-style format. */
pl_err awsapi_http_init(awsapi_http *req, awsapi_op op, const char *method, pl_errmsg *e,
			const char *path_fmt, ...) __attribute__((format(printf, 5, 6)));

/*
 * Appends "key=value" to req->query, percent-encoding the value. Keys must
 * be added in ascending byte order so that the query is already canonical.
 */
pl_err awsapi_http_query(awsapi_http *req, const char *key, const char *value, pl_errmsg *e);

/*
 * Percent-encodes text as one URI component (everything except A-Z a-z 0-9
 * - _ . ~), as SigV4 requires. Returns PL_ERR_RANGE when out is too small.
 */
pl_err awsapi_uri_encode(const char *text, char *out, size_t out_len);

/*
 * Computes the SigV4 "Authorization" header value for a request, encoding
 * the path once more as AWS does for every service except S3. amz_date is
 * "YYYYMMDDTHHMMSSZ"; signed header values are given already trimmed.
 * Writes at most out_len bytes; returns PL_ERR_RANGE when it does not fit.
 */
typedef struct awsapi_sigv4_input {
	const char *method;
	const char *host;          /* as in the Host header, with ":port" when not default */
	const char *path;          /* as sent */
	const char *query;         /* canonical (sorted, encoded), or "" */
	const char *content_type;  /* NULL: not signed */
	const char *amz_date;
	const char *session_token; /* NULL or "": not signed */
	const void *body;
	size_t body_len;
	const char *region;
	const char *service;
	const char *access_key_id;
	const char *secret_access_key;
} awsapi_sigv4_input;

pl_err awsapi_sigv4_authorization(const awsapi_sigv4_input *in, char *out, size_t out_len);

/*
 * Builds the HTTP request of r->op from the operation table (method, path
 * segments, query and body, from the members of r that the operation
 * uses), checks r's arguments and runs the request as awsapi_execute does.
 * Returns PL_ERR_INVALID, before sending anything, for a missing or invalid
 * argument ("AttachPolicy: target missing").
 */
pl_err awsapi_run(awsapi_client *c, const awsapi_request *r, json_t **response,
		  awsapi_call *call, pl_errmsg *e);

/* Runs a request with the JSON object body (consumed; NULL reports out of memory). */
pl_err awsapi_execute_json(awsapi_client *c, awsapi_http *req, json_t *body, json_t **response,
			   awsapi_call *call, pl_errmsg *e);

/* Encodes name into buf as one path segment; what names it in errors ("policy name"). */
pl_err awsapi_encode_segment(awsapi_op op, const char *what, const char *name, char *buf,
			     size_t len, pl_errmsg *e);

/* "true" or "false", as AWS's query strings spell booleans. */
const char *awsapi_bool_text(int v);

#define AWSAPI_SEGMENT_MAX 1024

/* Copies a JSON string member into buf; PL_ERR_PROTOCOL when missing or too long. */
pl_err awsapi_json_copy(json_t *obj, const char *key, char *buf, size_t len, awsapi_op op,
			pl_errmsg *e);

/* Returns a malloc'd copy of a JSON string member, or NULL when it is missing. */
char *awsapi_json_strdup(json_t *obj, const char *key);

#endif
