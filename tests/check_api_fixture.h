/*
 * Shared set-up for the API tests: a temporary state directory with a
 * simulator CA, a store, and the API started in-process on a free loopback
 * port. Requests are signed by libcurl's CURLOPT_AWS_SIGV4, the signer the
 * harness uses. Included by tests/check_api*.c only.
 */
#ifndef CHECK_API_FIXTURE_H
#define CHECK_API_FIXTURE_H

#include <check.h>
#include <curl/curl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "simulator/api.h"
#include "simulator/api_creds.h"
#include "simulator/certs.h"
#include "simulator/state.h"

/* Not every test program uses every helper. */
#define FIXTURE_FN static __attribute__((unused))

typedef struct fixture {
	char dir[256];
	char state_path[300];
	char creds_path[300];
	char truth_path[300];
	char trust_dir[300];
	sim_state *state;
	sim_api *api;
	sim_api_creds creds;
	uint16_t port;
} fixture;

static fixture fx;

typedef struct reply {
	long status;
	char error_type[128];
	char *body;
	size_t body_len;
} reply;

FIXTURE_FN size_t on_body(char *data, size_t size, size_t n, void *ctx)
{
	reply *r = ctx;
	char *grown = realloc(r->body, r->body_len + size * n + 1);

	if (grown == NULL)
		return 0;
	memcpy(grown + r->body_len, data, size * n);
	r->body = grown;
	r->body_len += size * n;
	r->body[r->body_len] = '\0';
	return size * n;
}

FIXTURE_FN size_t on_header(char *data, size_t size, size_t n, void *ctx)
{
	reply *r = ctx;
	size_t len = size * n;
	const char *name = "x-amzn-ErrorType:";

	if (len > strlen(name) && strncasecmp(data, name, strlen(name)) == 0) {
		const char *v = data + strlen(name);
		size_t vlen;
		while (*v == ' ')
			v++;
		vlen = strcspn(v, ":\r\n");
		if (vlen < sizeof(r->error_type)) {
			memcpy(r->error_type, v, vlen);
			r->error_type[vlen] = '\0';
		}
	}
	return len;
}

FIXTURE_FN void reply_free(reply *r)
{
	free(r->body);
	memset(r, 0, sizeof(*r));
}

/*
 * Sends one request signed for service ("iot", "iotdata", or NULL for no
 * signature) with an optional extra header line. Returns the HTTP status.
 */
FIXTURE_FN long call_full(const char *method, const char *path, const char *body, size_t body_len,
		      const char *service, const char *secret, const char *extra_header,
		      reply *r)
{
	CURL *c = curl_easy_init();
	struct curl_slist *headers = NULL;
	char url[4096], sigv4[128], userpwd[256];

	memset(r, 0, sizeof(*r));
	snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", fx.port, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (body != NULL) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)body_len);
	}
	headers = curl_slist_append(headers, "Content-Type: application/json");
	if (extra_header != NULL)
		headers = curl_slist_append(headers, extra_header);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	if (service != NULL) {
		snprintf(sigv4, sizeof(sigv4), "aws:amz:us-east-1:%s", service);
		snprintf(userpwd, sizeof(userpwd), "%s:%s", fx.creds.access_key_id,
			 secret != NULL ? secret : fx.creds.secret);
		curl_easy_setopt(c, CURLOPT_AWS_SIGV4, sigv4);
		curl_easy_setopt(c, CURLOPT_USERPWD, userpwd);
	}
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	curl_slist_free_all(headers);
	curl_easy_cleanup(c);
	return r->status;
}

/* A control-plane call signed as the harness signs it. */
FIXTURE_FN long call(const char *method, const char *path, const char *body, reply *r)
{
	return call_full(method, path, body, body != NULL ? strlen(body) : 0, "iot", NULL, NULL,
			 r);
}

/* Status of a call whose reply is not needed. */
FIXTURE_FN long call_status(const char *method, const char *path, const char *body)
{
	reply r;
	long status = call(method, path, body, &r);

	reply_free(&r);
	return status;
}

FIXTURE_FN int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Starts the store and the API with extra "api_*" options (key, value pairs, NULL-ended). */
FIXTURE_FN void fixture_start_with(const char *const *options)
{
	char ca_cert[300], ca_key[300];
	sim_state_config scfg = {0};
	sim_api_config *cfg;
	pl_errmsg e;

	snprintf(fx.dir, sizeof(fx.dir), "/tmp/policylag-api.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(fx.dir));
	snprintf(fx.state_path, sizeof(fx.state_path), "%s/state.json", fx.dir);
	snprintf(fx.creds_path, sizeof(fx.creds_path), "%s/credentials", fx.dir);
	snprintf(fx.truth_path, sizeof(fx.truth_path), "%s/ground-truth.jsonl", fx.dir);
	snprintf(fx.trust_dir, sizeof(fx.trust_dir), "%s/trusted", fx.dir);
	snprintf(ca_cert, sizeof(ca_cert), "%s/ca.pem", fx.dir);
	snprintf(ca_key, sizeof(ca_key), "%s/ca.key", fx.dir);
	ck_assert_int_eq(mkdir(fx.trust_dir, 0755), 0);
	ck_assert_int_eq(sim_certs_create_ca(ca_cert, ca_key, "policylag test CA", 30, &e), PL_OK);
	scfg.path = fx.state_path;
	ck_assert_int_eq(sim_state_create(&fx.state, &scfg, &e), PL_OK);
	sim_state_lock(fx.state);
	ck_assert_int_eq(sim_state_load(fx.state, &e), PL_OK);
	sim_state_unlock(fx.state);
	ck_assert_int_eq(sim_api_config_create(&cfg), PL_OK);
	ck_assert_int_eq(sim_api_config_option(cfg, "api_credentials_file", fx.creds_path, &e), PL_OK);
	ck_assert_int_eq(sim_api_config_option(cfg, "api_ground_truth_file", fx.truth_path, &e),
			 PL_OK);
	ck_assert_int_eq(sim_api_config_option(cfg, "api_ca_cert", ca_cert, &e), PL_OK);
	ck_assert_int_eq(sim_api_config_option(cfg, "api_ca_key", ca_key, &e), PL_OK);
	ck_assert_int_eq(sim_api_config_option(cfg, "api_trust_dir", fx.trust_dir, &e), PL_OK);
	for (size_t i = 0; options != NULL && options[i] != NULL; i += 2)
		ck_assert_int_eq(sim_api_config_option(cfg, options[i], options[i + 1], &e), PL_OK);
	ck_assert_msg(sim_api_start(&fx.api, cfg, fx.state, &e) == PL_OK, "%s", e.msg);
	sim_api_config_free(cfg);
	ck_assert_int_eq(sim_api_creds_load(fx.creds_path, &fx.creds, &e), PL_OK);
	fx.port = sim_api_listen_port(fx.api);
}

FIXTURE_FN void fixture_start(void)
{
	static const char *const no_throttle[] = {"api_throttle", "off", NULL};

	fixture_start_with(no_throttle);
}

FIXTURE_FN void fixture_stop(void)
{
	sim_api_stop(fx.api);
	fx.api = NULL;
	sim_state_free(fx.state);
	fx.state = NULL;
	nftw(fx.dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* A document that allows everything on the given action. */
#define DOC_ALLOW(action)                                                                  \
	"{\"policyDocument\":\"{\\\"Version\\\":\\\"2012-10-17\\\",\\\"Statement\\\":[{"       \
	"\\\"Effect\\\":\\\"Allow\\\",\\\"Action\\\":\\\"" action "\\\",\\\"Resource\\\":\\\"*\\\"}]}\"}"

#endif
