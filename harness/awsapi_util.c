/*
 * AWS IoT REST client helpers: error responses, URI encoding, request
 * building, JSON members, and a SigV4 signer.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "harness/awsapi.h"
#include "harness/awsapi_internal.h"

/* ---- error responses ---- */

typedef struct error_map {
	const char *name;
	pl_err err;
} error_map;

static const error_map error_names[] = {
	{ "ThrottlingException", PL_ERR_THROTTLED },
	{ "TooManyRequestsException", PL_ERR_THROTTLED },
	{ "ResourceNotFoundException", PL_ERR_NOT_FOUND },
	{ "ResourceAlreadyExistsException", PL_ERR_EXISTS },
	{ "VersionsLimitExceededException", PL_ERR_LIMIT },
	{ "LimitExceededException", PL_ERR_LIMIT },
	{ "UnauthorizedException", PL_ERR_DENIED },
	{ "ForbiddenException", PL_ERR_DENIED },
	{ "AccessDeniedException", PL_ERR_DENIED },
	{ "InvalidSignatureException", PL_ERR_DENIED },
	{ "SignatureDoesNotMatch", PL_ERR_DENIED },
	{ "UnrecognizedClientException", PL_ERR_DENIED },
	{ "CertificateStateException", PL_ERR_STATE },
	{ "DeleteConflictException", PL_ERR_STATE },
	{ "ConflictException", PL_ERR_STATE },
	{ "InvalidRequestException", PL_ERR_INVALID },
	{ "MalformedPolicyException", PL_ERR_INVALID },
	{ "CertificateValidationException", PL_ERR_INVALID },
	{ "MethodNotAllowedException", PL_ERR_INVALID },
	{ "UnsupportedDocumentEncodingException", PL_ERR_INVALID },
	{ "InternalFailureException", PL_ERR_NETWORK },
	{ "InternalException", PL_ERR_NETWORK },
	{ "ServiceUnavailableException", PL_ERR_NETWORK },
};

static pl_err error_from_status(long status)
{
	if (status == 429)
		return PL_ERR_THROTTLED;
	if (status == 404)
		return PL_ERR_NOT_FOUND;
	if (status == 401 || status == 403)
		return PL_ERR_DENIED;
	if (status == 409)
		return PL_ERR_EXISTS;
	if (status == 410)
		return PL_ERR_LIMIT;
	if (status >= 500)
		return PL_ERR_NETWORK;
	return PL_ERR_INVALID;
}

/* Copies the name in text up to the first ':' (and after a '#' namespace). */
static void copy_error_name(const char *text, char *name, size_t name_len)
{
	const char *hash = strchr(text, '#');
	size_t n;

	if (hash != NULL)
		text = hash + 1;
	n = strcspn(text, ":");
	while (n > 0 && (text[n - 1] == ' ' || text[n - 1] == '\t'))
		n--;
	snprintf(name, name_len, "%.*s", (int)n, text);
}

static void name_from_body(json_t *root, char *name, size_t name_len)
{
	const char *keys[] = { "code", "__type", "Code" };

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		json_t *v = json_object_get(root, keys[i]);

		if (json_is_string(v) && json_string_value(v)[0] != '\0') {
			copy_error_name(json_string_value(v), name, name_len);
			return;
		}
	}
}

static void message_from_body(json_t *root, char *message, size_t message_len)
{
	json_t *v = json_object_get(root, "message");

	if (!json_is_string(v))
		v = json_object_get(root, "Message");
	if (json_is_string(v))
		snprintf(message, message_len, "%s", json_string_value(v));
}

pl_err awsapi_parse_error(long status, const char *error_type_header, const char *body,
			  size_t body_len, char *name, size_t name_len, char *message,
			  size_t message_len)
{
	json_t *root = NULL;

	name[0] = '\0';
	message[0] = '\0';
	if (body != NULL && body_len > 0)
		root = json_loadb(body, body_len, 0, NULL);
	if (error_type_header != NULL && error_type_header[0] != '\0')
		copy_error_name(error_type_header, name, name_len);
	if (name[0] == '\0' && json_is_object(root))
		name_from_body(root, name, name_len);
	if (json_is_object(root))
		message_from_body(root, message, message_len);
	json_decref(root);
	for (size_t i = 0; name[0] != '\0' && i < sizeof(error_names) / sizeof(error_names[0]); i++)
		if (strcmp(name, error_names[i].name) == 0)
			return error_names[i].err;
	if (name[0] == '\0')
		snprintf(name, name_len, "HTTP %ld", status);
	return error_from_status(status);
}

/* ---- URI encoding and request building ---- */

static int is_unreserved(unsigned char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
	       ch == '-' || ch == '_' || ch == '.' || ch == '~';
}

/* Encodes text, leaving '/' alone when keep_slash is set. */
static pl_err uri_encode(const char *text, int keep_slash, char *out, size_t out_len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
		if (is_unreserved(*p) || (keep_slash && *p == '/')) {
			if (o + 1 >= out_len)
				return PL_ERR_RANGE;
			out[o++] = (char)*p;
			continue;
		}
		if (o + 3 >= out_len)
			return PL_ERR_RANGE;
		out[o++] = '%';
		out[o++] = hex[*p >> 4];
		out[o++] = hex[*p & 0xf];
	}
	if (o >= out_len)
		return PL_ERR_RANGE;
	out[o] = '\0';
	return PL_OK;
}

pl_err awsapi_uri_encode(const char *text, char *out, size_t out_len)
{
	return uri_encode(text, 0, out, out_len);
}

pl_err awsapi_http_init(awsapi_http *req, awsapi_op op, const char *method, pl_errmsg *e,
			const char *path_fmt, ...)
{
	va_list ap;
	int n;

	memset(req, 0, sizeof(*req));
	req->op = op;
	req->method = method;
	va_start(ap, path_fmt);
	n = vsnprintf(req->path, sizeof(req->path), path_fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(req->path))
		return pl_errmsg_set(e, PL_ERR_RANGE, "%s: request path longer than %zu bytes",
				     awsapi_op_name(op), sizeof(req->path) - 1);
	return PL_OK;
}

pl_err awsapi_http_query(awsapi_http *req, const char *key, const char *value, pl_errmsg *e)
{
	char encoded[AWSAPI_QUERY_MAX];
	size_t used = strlen(req->query);
	int n;

	if (uri_encode(value, 0, encoded, sizeof(encoded)) != PL_OK)
		goto too_long;
	n = snprintf(req->query + used, sizeof(req->query) - used, "%s%s=%s", used ? "&" : "",
		     key, encoded);
	if (n < 0 || (size_t)n >= sizeof(req->query) - used)
		goto too_long;
	return PL_OK;
too_long:
	req->query[used] = '\0';
	return pl_errmsg_set(e, PL_ERR_RANGE, "%s: query longer than %zu bytes",
			     awsapi_op_name(req->op), sizeof(req->query) - 1);
}

/* ---- JSON members ---- */

pl_err awsapi_json_copy(json_t *obj, const char *key, char *buf, size_t len, awsapi_op op,
			pl_errmsg *e)
{
	json_t *v = json_object_get(obj, key);

	if (!json_is_string(v))
		return pl_errmsg_set(e, PL_ERR_PROTOCOL, "%s: response has no string \"%s\"",
				     awsapi_op_name(op), key);
	if (json_string_length(v) >= len)
		return pl_errmsg_set(e, PL_ERR_PROTOCOL, "%s: \"%s\" in the response is longer than %zu bytes",
				     awsapi_op_name(op), key, len - 1);
	memcpy(buf, json_string_value(v), json_string_length(v) + 1);
	return PL_OK;
}

char *awsapi_json_strdup(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	return json_is_string(v) ? strdup(json_string_value(v)) : NULL;
}

/* ---- SigV4 ---- */

static void hex_encode(const unsigned char *in, size_t len, char *out)
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = hex[in[i] >> 4];
		out[2 * i + 1] = hex[in[i] & 0xf];
	}
	out[2 * len] = '\0';
}

static void sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char digest[SHA256_DIGEST_LENGTH];

	SHA256(data ? data : (const void *)"", len, digest);
	hex_encode(digest, sizeof(digest), out);
}

static void hmac(const unsigned char *key, size_t key_len, const char *data, unsigned char out[32])
{
	unsigned int out_len = 32;

	HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)data, strlen(data), out,
	     &out_len);
}

/* Canonical request per AWS: the path is encoded once more (every service but S3). */
static pl_err canonical_request(const awsapi_sigv4_input *in, char *out, size_t len,
				char *signed_headers, size_t sh_len)
{
	char path[AWSAPI_PATH_MAX * 3], headers[CREDENTIALS_TOKEN_MAX + 512], payload[65];
	int n;

	if (uri_encode(in->path, 1, path, sizeof(path)) != PL_OK)
		return PL_ERR_RANGE;
	n = snprintf(headers, sizeof(headers), "%s%s%shost:%s\nx-amz-date:%s\n%s%s%s",
		     in->content_type ? "content-type:" : "",
		     in->content_type ? in->content_type : "", in->content_type ? "\n" : "",
		     in->host, in->amz_date,
		     in->session_token && in->session_token[0] ? "x-amz-security-token:" : "",
		     in->session_token ? in->session_token : "",
		     in->session_token && in->session_token[0] ? "\n" : "");
	if (n < 0 || (size_t)n >= sizeof(headers))
		return PL_ERR_RANGE;
	snprintf(signed_headers, sh_len, "%shost;x-amz-date%s",
		 in->content_type ? "content-type;" : "",
		 in->session_token && in->session_token[0] ? ";x-amz-security-token" : "");
	sha256_hex(in->body, in->body_len, payload);
	n = snprintf(out, len, "%s\n%s\n%s\n%s\n%s\n%s", in->method, path, in->query, headers,
		     signed_headers, payload);
	explicit_bzero(headers, sizeof(headers));
	return n < 0 || (size_t)n >= len ? PL_ERR_RANGE : PL_OK;
}

static void signing_key(const awsapi_sigv4_input *in, unsigned char key[32])
{
	char secret[CREDENTIALS_KEY_MAX + 8], date[9];

	snprintf(secret, sizeof(secret), "AWS4%s", in->secret_access_key);
	snprintf(date, sizeof(date), "%.8s", in->amz_date);
	hmac((const unsigned char *)secret, strlen(secret), date, key);
	hmac(key, 32, in->region, key);
	hmac(key, 32, in->service, key);
	hmac(key, 32, "aws4_request", key);
	explicit_bzero(secret, sizeof(secret));
}

pl_err awsapi_sigv4_authorization(const awsapi_sigv4_input *in, char *out, size_t out_len)
{
	char request[AWSAPI_PATH_MAX * 3 + AWSAPI_QUERY_MAX + CREDENTIALS_TOKEN_MAX + 1024];
	char signed_headers[128], request_hash[65], scope[160], to_sign[512], signature[65];
	unsigned char key[32], sig[32];
	int n;

	if (canonical_request(in, request, sizeof(request), signed_headers,
			      sizeof(signed_headers)) != PL_OK)
		return PL_ERR_RANGE;
	sha256_hex(request, strlen(request), request_hash);
	explicit_bzero(request, sizeof(request));
	snprintf(scope, sizeof(scope), "%.8s/%s/%s/aws4_request", in->amz_date, in->region,
		 in->service);
	snprintf(to_sign, sizeof(to_sign), "AWS4-HMAC-SHA256\n%s\n%s\n%s", in->amz_date, scope,
		 request_hash);
	signing_key(in, key);
	hmac(key, sizeof(key), to_sign, sig);
	explicit_bzero(key, sizeof(key));
	hex_encode(sig, sizeof(sig), signature);
	n = snprintf(out, out_len, "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s",
		     in->access_key_id, scope, signed_headers, signature);
	return n < 0 || (size_t)n >= out_len ? PL_ERR_RANGE : PL_OK;
}
