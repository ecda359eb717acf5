#include "simulator/sigv4.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define ALGORITHM "AWS4-HMAC-SHA256"

static void hex_encode(const unsigned char *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

static void sha256_hex(const void *data, size_t len, char hex[65])
{
	unsigned char md[SHA256_DIGEST_LENGTH];

	SHA256(data, len, md);
	hex_encode(md, sizeof(md), hex);
}

static void hmac(const unsigned char *key, size_t key_len, const char *msg, unsigned char out[32])
{
	unsigned int out_len = 32;

	HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)msg, strlen(msg), out,
	     &out_len);
}

void sim_sigv4_signing_key(const char *secret, const char *date8, const char *region,
			   const char *service, unsigned char out[32])
{
	char first[256];
	unsigned char k[32];

	snprintf(first, sizeof(first), "AWS4%s", secret);
	hmac((const unsigned char *)first, strlen(first), date8, k);
	OPENSSL_cleanse(first, sizeof(first));
	hmac(k, 32, region, k);
	hmac(k, 32, service, k);
	hmac(k, 32, "aws4_request", out);
	OPENSSL_cleanse(k, sizeof(k));
}

void sim_sigv4_sign(const unsigned char key[32], const char *string_to_sign, char hex[65])
{
	unsigned char mac[32];

	hmac(key, 32, string_to_sign, mac);
	hex_encode(mac, sizeof(mac), hex);
}

static int is_unreserved(unsigned char c)
{
	return isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~';
}

pl_err sim_sigv4_uri_encode(const char *src, size_t len, int keep_slash, char **out)
{
	static const char digits[] = "0123456789ABCDEF";
	char *dst = malloc(3 * len + 1);
	size_t n = 0;

	if (dst == NULL)
		return PL_ERR_NOMEM;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)src[i];
		if (is_unreserved(c) || (keep_slash && c == '/')) {
			dst[n++] = (char)c;
		} else {
			dst[n++] = '%';
			dst[n++] = digits[c >> 4];
			dst[n++] = digits[c & 15];
		}
	}
	dst[n] = '\0';
	*out = dst;
	return PL_OK;
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

pl_err sim_sigv4_uri_decode(const char *src, size_t len, char **out)
{
	char *dst = malloc(len + 1);
	size_t n = 0;

	if (dst == NULL)
		return PL_ERR_NOMEM;
	for (size_t i = 0; i < len; i++) {
		int hi, lo;
		if (src[i] != '%') {
			dst[n++] = src[i];
			continue;
		}
		hi = i + 2 < len ? hex_value(src[i + 1]) : -1;
		lo = i + 2 < len ? hex_value(src[i + 2]) : -1;
		if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
			free(dst);
			return PL_ERR_PARSE;
		}
		dst[n++] = (char)(hi * 16 + lo);
		i += 2;
	}
	dst[n] = '\0';
	*out = dst;
	return PL_OK;
}

typedef struct query_pair {
	char *key;
	char *value;
} query_pair;

static int compare_pairs(const void *a, const void *b)
{
	const query_pair *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	return c != 0 ? c : strcmp(x->value, y->value);
}

static void free_pairs(query_pair *pairs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(pairs[i].key);
		free(pairs[i].value);
	}
	free(pairs);
}

/* Decodes then re-encodes one query component, so any signer's encoding compares equal. */
static pl_err normalise_component(const char *s, size_t len, char **out)
{
	char *plain;
	pl_err err = sim_sigv4_uri_decode(s, len, &plain);

	if (err != PL_OK)
		return err;
	err = sim_sigv4_uri_encode(plain, strlen(plain), 0, out);
	free(plain);
	return err;
}

static pl_err split_pair(const char *s, size_t len, query_pair *pair)
{
	const char *eq = memchr(s, '=', len);
	size_t key_len = eq != NULL ? (size_t)(eq - s) : len;
	pl_err err = normalise_component(s, key_len, &pair->key);

	if (err != PL_OK)
		return err;
	if (eq == NULL)
		err = normalise_component("", 0, &pair->value);
	else
		err = normalise_component(eq + 1, len - key_len - 1, &pair->value);
	if (err != PL_OK) {
		free(pair->key);
		pair->key = NULL;
	}
	return err;
}

/* Writes the canonical query string: pairs encoded, sorted by key then value. */
static pl_err write_canonical_query(FILE *f, const char *raw_query)
{
	query_pair *pairs = NULL;
	size_t n = 0, cap = 0;
	const char *p = raw_query;
	pl_err err = PL_OK;

	while (p != NULL && *p != '\0') {
		const char *amp = strchr(p, '&');
		size_t len = amp != NULL ? (size_t)(amp - p) : strlen(p);
		if (len > 0) {
			if (n == cap) {
				size_t ncap = cap ? 2 * cap : 8;
				query_pair *grown = realloc(pairs, ncap * sizeof(*pairs));
				if (grown == NULL) {
					err = PL_ERR_NOMEM;
					goto out;
				}
				pairs = grown;
				cap = ncap;
			}
			err = split_pair(p, len, &pairs[n]);
			if (err != PL_OK)
				goto out;
			n++;
		}
		p = amp != NULL ? amp + 1 : NULL;
	}
	if (n > 1)
		qsort(pairs, n, sizeof(*pairs), compare_pairs);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%s%s=%s", i ? "&" : "", pairs[i].key, pairs[i].value);
out:
	free_pairs(pairs, n);
	return err;
}

/* Header value with leading/trailing spaces trimmed and inner runs collapsed. */
static void write_header_value(FILE *f, const char *v)
{
	int pending_space = 0, started = 0;

	for (; *v != '\0'; v++) {
		if (*v == ' ' || *v == '\t') {
			pending_space = started;
			continue;
		}
		if (pending_space)
			fputc(' ', f);
		pending_space = 0;
		started = 1;
		fputc(*v, f);
	}
}

static pl_err write_canonical_headers(FILE *f, const sim_sigv4_request *req,
				      const char *signed_headers)
{
	const char *p = signed_headers;

	while (*p != '\0') {
		const char *semi = strchr(p, ';');
		size_t len = semi != NULL ? (size_t)(semi - p) : strlen(p);
		char name[128];
		const char *value;

		if (len == 0 || len >= sizeof(name))
			return PL_ERR_PARSE;
		memcpy(name, p, len);
		name[len] = '\0';
		value = req->header(req->header_ctx, name);
		if (value == NULL)
			return PL_ERR_PARSE;
		fprintf(f, "%s:", name);
		write_header_value(f, value);
		fputc('\n', f);
		p = semi != NULL ? semi + 1 : p + len;
	}
	return PL_OK;
}

/* As sim_sigv4_canonical_request; raw_query != 0 keeps the query exactly as sent. */
static pl_err build_canonical(const sim_sigv4_request *req, const char *canonical_uri,
			      const char *signed_headers, int raw_query, char **out)
{
	char *text = NULL;
	size_t size = 0;
	char payload_hex[65];
	const char *payload_hash = req->header(req->header_ctx, "x-amz-content-sha256");
	FILE *f = open_memstream(&text, &size);
	pl_err err = PL_OK;

	if (f == NULL)
		return PL_ERR_NOMEM;
	fprintf(f, "%s\n%s\n", req->method, canonical_uri);
	if (raw_query)
		fputs(req->raw_query != NULL ? req->raw_query : "", f);
	else
		err = write_canonical_query(f, req->raw_query);
	fputc('\n', f);
	if (err == PL_OK)
		err = write_canonical_headers(f, req, signed_headers);
	if (payload_hash == NULL) {
		sha256_hex(req->body != NULL ? req->body : "", req->body_len, payload_hex);
		payload_hash = payload_hex;
	}
	fprintf(f, "\n%s\n%s", signed_headers, payload_hash);
	if (fclose(f) != 0 && err == PL_OK)
		err = PL_ERR_NOMEM;
	if (err != PL_OK) {
		free(text);
		return err;
	}
	*out = text;
	return PL_OK;
}

pl_err sim_sigv4_canonical_request(const sim_sigv4_request *req, const char *canonical_uri,
				   const char *signed_headers, char **out)
{
	return build_canonical(req, canonical_uri, signed_headers, 0, out);
}

/* The parts of "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...". */
typedef struct auth_fields {
	char key_id[129];
	char date8[9];
	char region[33];
	char service[33];
	char signed_headers[1024];
	char signature[65];
} auth_fields;

/* Copies the value of "name=" up to ',' or the end into dst; 0 when absent or too long. */
static int auth_value(const char *auth, const char *name, char *dst, size_t dst_len)
{
	size_t name_len = strlen(name);
	const char *p = auth;

	while ((p = strstr(p, name)) != NULL) {
		if ((p == auth || p[-1] == ' ' || p[-1] == ',') && p[name_len] == '=') {
			const char *v = p + name_len + 1;
			size_t len = strcspn(v, ", ");
			if (len == 0 || len >= dst_len)
				return 0;
			memcpy(dst, v, len);
			dst[len] = '\0';
			return 1;
		}
		p += name_len;
	}
	return 0;
}

static int parse_credential(const char *cred, auth_fields *a)
{
	/* AKID/20150830/us-east-1/iot/aws4_request */
	const char *parts[5];
	size_t lens[5];
	const char *p = cred;

	for (int i = 0; i < 5; i++) {
		const char *slash = strchr(p, '/');
		parts[i] = p;
		lens[i] = slash != NULL ? (size_t)(slash - p) : strlen(p);
		if ((slash == NULL) != (i == 4))
			return 0;
		p = slash != NULL ? slash + 1 : p;
	}
	if (lens[0] == 0 || lens[0] >= sizeof(a->key_id) || lens[1] != 8 ||
	    lens[2] >= sizeof(a->region) || lens[3] >= sizeof(a->service) ||
	    lens[4] != strlen("aws4_request") || strncmp(parts[4], "aws4_request", lens[4]) != 0)
		return 0;
	memcpy(a->key_id, parts[0], lens[0]);
	a->key_id[lens[0]] = '\0';
	memcpy(a->date8, parts[1], 8);
	a->date8[8] = '\0';
	memcpy(a->region, parts[2], lens[2]);
	a->region[lens[2]] = '\0';
	memcpy(a->service, parts[3], lens[3]);
	a->service[lens[3]] = '\0';
	return 1;
}

static int parse_authorization(const char *auth, auth_fields *a)
{
	char cred[256];
	size_t alg_len = strlen(ALGORITHM);

	if (strncmp(auth, ALGORITHM, alg_len) != 0 || auth[alg_len] != ' ')
		return 0;
	auth += alg_len + 1;
	if (!auth_value(auth, "Credential", cred, sizeof(cred)) ||
	    !auth_value(auth, "SignedHeaders", a->signed_headers, sizeof(a->signed_headers)) ||
	    !auth_value(auth, "Signature", a->signature, sizeof(a->signature)))
		return 0;
	return parse_credential(cred, a);
}

/* Parses "20150830T123600Z" into wall nanoseconds; 0 on a malformed value. */
static int parse_amz_date(const char *text, int64_t *out_ns)
{
	struct tm tm;
	const char *end;

	if (text == NULL || strlen(text) != 16)
		return 0;
	memset(&tm, 0, sizeof(tm));
	end = strptime(text, "%Y%m%dT%H%M%SZ", &tm);
	if (end == NULL || *end != '\0')
		return 0;
	*out_ns = (int64_t)timegm(&tm) * INT64_C(1000000000);
	return 1;
}

static int service_accepted(const sim_sigv4_key *key, const char *service)
{
	for (const char *const *s = key->services; *s != NULL; s++)
		if (strcmp(*s, service) == 0)
			return 1;
	return 0;
}

/* Signature over one candidate canonical request; 1 when it matches. */
static int signature_matches_form(const sim_sigv4_request *req, const auth_fields *a,
				  const char *amz_date, const unsigned char key[32],
				  const char *uri, int raw_query)
{
	char *creq = NULL, hash[65], sig[65], sts[512];
	int ok;

	if (build_canonical(req, uri, a->signed_headers, raw_query, &creq) != PL_OK)
		return 0;
	sha256_hex(creq, strlen(creq), hash);
	free(creq);
	snprintf(sts, sizeof(sts), "%s\n%s\n%s/%s/%s/aws4_request\n%s", ALGORITHM, amz_date,
		 a->date8, a->region, a->service, hash);
	sim_sigv4_sign(key, sts, sig);
	ok = CRYPTO_memcmp(sig, a->signature, 64) == 0 && strlen(a->signature) == 64;
	return ok;
}

/*
 * Tries the query canonicalised (sorted, encoded) and, when it differs, as
 * sent: libcurl 7.88 signs the query string exactly as it appears in the URL.
 */
static int signature_matches(const sim_sigv4_request *req, const auth_fields *a,
			     const char *amz_date, const unsigned char key[32], const char *uri)
{
	if (signature_matches_form(req, a, amz_date, key, uri, 0))
		return 1;
	return req->raw_query != NULL && signature_matches_form(req, a, amz_date, key, uri, 1);
}

/*
 * Tries the canonical URIs different signers produce: the path as sent
 * (libcurl), the path encoded once more (AWS SDKs for non-S3 services), and
 * the decoded path encoded once (SDKs that normalise).
 */
static int any_uri_matches(const sim_sigv4_request *req, const auth_fields *a,
			   const char *amz_date, const unsigned char key[32])
{
	const char *path = req->raw_path;
	char *twice = NULL, *plain = NULL, *once = NULL;
	int ok = signature_matches(req, a, amz_date, key, path);

	if (!ok && sim_sigv4_uri_encode(path, strlen(path), 1, &twice) == PL_OK)
		ok = signature_matches(req, a, amz_date, key, twice);
	if (!ok && sim_sigv4_uri_decode(path, strlen(path), &plain) == PL_OK &&
	    sim_sigv4_uri_encode(plain, strlen(plain), 1, &once) == PL_OK)
		ok = signature_matches(req, a, amz_date, key, once);
	free(twice);
	free(plain);
	free(once);
	return ok;
}

static sim_sigv4_result fail(sim_sigv4_result r, char *why, size_t why_len, const char *msg)
{
	if (why != NULL && why_len > 0)
		snprintf(why, why_len, "%s", msg);
	return r;
}

static sim_sigv4_result check_time(const sim_sigv4_request *req, const sim_sigv4_key *key,
				   const auth_fields *a, int64_t now_ns, char *why,
				   size_t why_len)
{
	const char *amz_date = req->header(req->header_ctx, "x-amz-date");
	int64_t t_ns;

	if (!parse_amz_date(amz_date, &t_ns) || strncmp(amz_date, a->date8, 8) != 0)
		return fail(SIM_SIGV4_MALFORMED, why, why_len,
			    "Authorization header requires existence of either a 'X-Amz-Date' "
			    "or a 'Date' header.");
	if (t_ns < now_ns - key->skew_ns || t_ns > now_ns + key->skew_ns) {
		if (why != NULL && why_len > 0)
			snprintf(why, why_len,
				 "Signature expired: %s is now outside the accepted window of "
				 "%lld seconds around the server time.",
				 amz_date, (long long)(key->skew_ns / INT64_C(1000000000)));
		return SIM_SIGV4_EXPIRED;
	}
	return SIM_SIGV4_OK;
}

sim_sigv4_result sim_sigv4_verify(const sim_sigv4_request *req, const sim_sigv4_key *key,
				  int64_t now_ns, char *service, size_t service_len, char *why,
				  size_t why_len)
{
	const char *auth = req->header(req->header_ctx, "authorization");
	auth_fields a;
	unsigned char signing_key[32];
	sim_sigv4_result r;
	int ok;

	if (auth == NULL)
		return fail(SIM_SIGV4_MISSING, why, why_len, "Missing Authentication Token");
	memset(&a, 0, sizeof(a));
	if (!parse_authorization(auth, &a))
		return fail(SIM_SIGV4_MALFORMED, why, why_len,
			    "Authorization header is not a valid AWS Signature Version 4 "
			    "authorization.");
	if (strcmp(a.key_id, key->access_key_id) != 0)
		return fail(SIM_SIGV4_UNKNOWN_KEY, why, why_len,
			    "The security token included in the request is invalid.");
	if (strcmp(a.region, key->region) != 0 || !service_accepted(key, a.service))
		return fail(SIM_SIGV4_BAD_SCOPE, why, why_len,
			    "Credential should be scoped to a valid region and service.");
	r = check_time(req, key, &a, now_ns, why, why_len);
	if (r != SIM_SIGV4_OK)
		return r;
	sim_sigv4_signing_key(key->secret, a.date8, a.region, a.service, signing_key);
	ok = any_uri_matches(req, &a, req->header(req->header_ctx, "x-amz-date"), signing_key);
	OPENSSL_cleanse(signing_key, sizeof(signing_key));
	if (!ok)
		return fail(SIM_SIGV4_BAD_SIGNATURE, why, why_len,
			    "The request signature we calculated does not match the signature "
			    "you provided. Check your AWS Secret Access Key and signing method. "
			    "Consult the service documentation for details.");
	if (service != NULL && service_len > 0)
		snprintf(service, service_len, "%s", a.service);
	return SIM_SIGV4_OK;
}

const char *sim_sigv4_error_type(sim_sigv4_result r)
{
	switch (r) {
	case SIM_SIGV4_OK:
		return NULL;
	case SIM_SIGV4_MISSING:
		return "MissingAuthenticationTokenException";
	case SIM_SIGV4_MALFORMED:
		return "IncompleteSignatureException";
	case SIM_SIGV4_UNKNOWN_KEY:
		return "UnrecognizedClientException";
	case SIM_SIGV4_BAD_SCOPE:
	case SIM_SIGV4_EXPIRED:
	case SIM_SIGV4_BAD_SIGNATURE:
		return "InvalidSignatureException";
	}
	return "InvalidSignatureException";
}

int sim_sigv4_http_status(sim_sigv4_result r)
{
	/* AWS returns 403 for every authentication failure. */
	return r == SIM_SIGV4_OK ? 200 : 403;
}
