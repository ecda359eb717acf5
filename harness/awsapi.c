/*
 * AWS IoT REST client core: the shared context (endpoints, credentials, rate
 * limiters, counters), clients, and the request executor with retries. The
 * operations are in awsapi_ops.c, the pool in awsapi_pool.c.
 */
#include "harness/awsapi.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "common/clock.h"
#include "common/log.h"
#include "harness/awsapi_internal.h"

#define LOG_TAG "awsapi"
#define RESPONSE_MAX (4u * 1024u * 1024u) /* larger responses are an error */
#define BACKOFF_SLICE_NS (50 * PL_NS_PER_MS) /* how often a wait checks for cancel */

typedef struct op_info {
	const char *name;
	int control;
	double default_tps;
} op_info;

/* TPS quotas from AWS's "AWS IoT Core endpoints and quotas" page (control-plane API
 * throttling). The data plane has no per-operation TPS quota; 0 means unlimited. */
static const op_info op_table[AWSAPI_OP__COUNT] = {
	[AWSAPI_CREATE_POLICY] = { "CreatePolicy", 1, 10 },
	[AWSAPI_GET_POLICY] = { "GetPolicy", 1, 10 },
	[AWSAPI_DELETE_POLICY] = { "DeletePolicy", 1, 10 },
	[AWSAPI_CREATE_POLICY_VERSION] = { "CreatePolicyVersion", 1, 10 },
	[AWSAPI_SET_DEFAULT_POLICY_VERSION] = { "SetDefaultPolicyVersion", 1, 10 },
	[AWSAPI_LIST_POLICY_VERSIONS] = { "ListPolicyVersions", 1, 10 },
	[AWSAPI_DELETE_POLICY_VERSION] = { "DeletePolicyVersion", 1, 10 },
	[AWSAPI_ATTACH_POLICY] = { "AttachPolicy", 1, 15 },
	[AWSAPI_DETACH_POLICY] = { "DetachPolicy", 1, 15 },
	[AWSAPI_LIST_ATTACHED_POLICIES] = { "ListAttachedPolicies", 1, 15 },
	[AWSAPI_LIST_TARGETS_FOR_POLICY] = { "ListTargetsForPolicy", 1, 10 },
	[AWSAPI_CREATE_CERTIFICATE_FROM_CSR] = { "CreateCertificateFromCsr", 1, 15 },
	[AWSAPI_CREATE_KEYS_AND_CERTIFICATE] = { "CreateKeysAndCertificate", 1, 10 },
	[AWSAPI_DESCRIBE_CERTIFICATE] = { "DescribeCertificate", 1, 10 },
	[AWSAPI_UPDATE_CERTIFICATE] = { "UpdateCertificate", 1, 10 },
	[AWSAPI_DELETE_CERTIFICATE] = { "DeleteCertificate", 1, 10 },
	[AWSAPI_DESCRIBE_ENDPOINT] = { "DescribeEndpoint", 1, 10 },
	[AWSAPI_PUBLISH] = { "Publish", 0, 0 },
	[AWSAPI_DELETE_CONNECTION] = { "DeleteConnection", 0, 0 },
};

/* A GCRA token bucket: tat_ns is the theoretical arrival time of the next call. */
typedef struct limiter {
	pthread_mutex_t lock;
	int64_t interval_ns; /* 0: unlimited */
	int64_t tat_ns;
} limiter;

struct awsapi_ctx {
	char *control_endpoint;
	char *data_endpoint;
	char *region;
	char *ca_file;
	char *control_signing_name;
	char *data_signing_name;
	aws_credentials credentials;
	unsigned burst;
	int max_attempts;
	int64_t backoff_base_ns;
	int64_t backoff_max_ns;
	int64_t timeout_ns;
	int path_signing_fallback; /* libcurl signs percent-encoded paths unlike AWS */
	volatile sig_atomic_t cancelled;
	limiter limiters[AWSAPI_OP__COUNT];
	pthread_mutex_t stats_lock;
	awsapi_op_stats stats[AWSAPI_OP__COUNT];
};

struct awsapi_client {
	awsapi_ctx *ctx;
	CURL *curl;
	uint64_t rng;
	char *body;        /* response body of the current attempt */
	size_t body_len;
	size_t body_cap;
	int body_overflow;
	char error_type[128]; /* x-amzn-ErrorType of the current attempt */
	char curl_error[CURL_ERROR_SIZE];
};

const char *awsapi_op_name(awsapi_op op)
{
	if ((unsigned)op >= AWSAPI_OP__COUNT)
		return "UnknownOperation";
	return op_table[op].name;
}

int awsapi_op_is_control(awsapi_op op)
{
	return (unsigned)op < AWSAPI_OP__COUNT && op_table[op].control;
}

double awsapi_op_default_tps(awsapi_op op)
{
	if ((unsigned)op >= AWSAPI_OP__COUNT)
		return 0;
	return op_table[op].default_tps;
}

void awsapi_config_init(awsapi_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->control_signing_name = "execute-api";
	cfg->data_signing_name = "iotdata";
	cfg->tps_scale = 1.0;
	cfg->burst = 1;
	cfg->max_attempts = 8;
	cfg->backoff_base_ns = 100 * PL_NS_PER_MS;
	cfg->backoff_max_ns = 5 * PL_NS_PER_S;
	cfg->timeout_ns = 10 * PL_NS_PER_S;
}

/* ---- shared context ---- */

static int endpoint_scheme_ok(const char *url)
{
	return strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0;
}

static pl_err check_config(const awsapi_config *cfg, pl_errmsg *e)
{
	if (cfg->control_endpoint == NULL || !endpoint_scheme_ok(cfg->control_endpoint))
		return pl_errmsg_set(e, PL_ERR_INVALID,
				     "AWS API: control endpoint %s is not an http:// or https:// URL",
				     cfg->control_endpoint ? cfg->control_endpoint : "(missing)");
	if (cfg->data_endpoint != NULL && !endpoint_scheme_ok(cfg->data_endpoint))
		return pl_errmsg_set(e, PL_ERR_INVALID,
				     "AWS API: data endpoint %s is not an http:// or https:// URL",
				     cfg->data_endpoint);
	if (cfg->region == NULL || cfg->region[0] == '\0')
		return pl_errmsg_set(e, PL_ERR_INVALID, "AWS API: region missing");
	if (cfg->credentials == NULL || cfg->credentials->access_key_id[0] == '\0' ||
	    cfg->credentials->secret_access_key[0] == '\0')
		return pl_errmsg_set(e, PL_ERR_INVALID, "AWS API: credentials missing");
	if (cfg->max_attempts < 1 || cfg->tps_scale <= 0 || cfg->burst < 1 ||
	    cfg->backoff_base_ns < 0 || cfg->backoff_max_ns < cfg->backoff_base_ns ||
	    cfg->timeout_ns <= 0)
		return pl_errmsg_set(e, PL_ERR_INVALID,
				     "AWS API: invalid retry or rate settings (attempts %d, "
				     "tps scale %g, burst %u)",
				     cfg->max_attempts, cfg->tps_scale, cfg->burst);
	return PL_OK;
}

static char *strdup_or_null(const char *s)
{
	return s == NULL ? NULL : strdup(s);
}

/* Percent-encoded paths are signed the AWS way by libcurl from 8.8.0 on. */
static int curl_needs_path_fallback(void)
{
	const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);

	return v->version_num < 0x080800;
}

static void init_limiters(awsapi_ctx *ctx, const awsapi_config *cfg)
{
	for (int i = 0; i < AWSAPI_OP__COUNT; i++) {
		double tps = cfg->tps[i] == 0 ? op_table[i].default_tps : cfg->tps[i];

		pthread_mutex_init(&ctx->limiters[i].lock, NULL);
		ctx->limiters[i].tat_ns = 0;
		ctx->limiters[i].interval_ns = 0;
		if (tps > 0)
			ctx->limiters[i].interval_ns =
				(int64_t)((double)PL_NS_PER_S / (tps * cfg->tps_scale));
	}
}

pl_err awsapi_ctx_create(awsapi_ctx **out, const awsapi_config *cfg, pl_errmsg *e)
{
	awsapi_ctx *ctx;
	pl_err err = check_config(cfg, e);

	*out = NULL;
	if (err != PL_OK)
		return err;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return pl_errmsg_set(e, PL_ERR_INTERNAL, "AWS API: libcurl initialization failed");
	ctx = calloc(1, sizeof(*ctx));
	if (ctx == NULL)
		return pl_errmsg_set(e, PL_ERR_NOMEM, "AWS API: out of memory");
	ctx->control_endpoint = strdup_or_null(cfg->control_endpoint);
	ctx->data_endpoint = strdup_or_null(cfg->data_endpoint);
	ctx->region = strdup_or_null(cfg->region);
	ctx->ca_file = strdup_or_null(cfg->ca_file);
	ctx->control_signing_name = strdup_or_null(
		cfg->control_signing_name ? cfg->control_signing_name : "execute-api");
	ctx->data_signing_name = strdup_or_null(cfg->data_signing_name ? cfg->data_signing_name
									: "iotdata");
	if (ctx->control_endpoint == NULL || ctx->region == NULL || ctx->data_signing_name == NULL ||
	    ctx->control_signing_name == NULL ||
	    (cfg->data_endpoint && !ctx->data_endpoint) || (cfg->ca_file && !ctx->ca_file)) {
		awsapi_ctx_free(ctx);
		return pl_errmsg_set(e, PL_ERR_NOMEM, "AWS API: out of memory");
	}
	ctx->credentials = *cfg->credentials;
	ctx->burst = cfg->burst;
	ctx->max_attempts = cfg->max_attempts;
	ctx->backoff_base_ns = cfg->backoff_base_ns;
	ctx->backoff_max_ns = cfg->backoff_max_ns;
	ctx->timeout_ns = cfg->timeout_ns;
	ctx->path_signing_fallback = curl_needs_path_fallback();
	init_limiters(ctx, cfg);
	pthread_mutex_init(&ctx->stats_lock, NULL);
	*out = ctx;
	return PL_OK;
}

void awsapi_ctx_free(awsapi_ctx *ctx)
{
	if (ctx == NULL)
		return;
	credentials_clear(&ctx->credentials);
	free(ctx->control_endpoint);
	free(ctx->data_endpoint);
	free(ctx->region);
	free(ctx->ca_file);
	free(ctx->control_signing_name);
	free(ctx->data_signing_name);
	free(ctx);
}

pl_err awsapi_ctx_set_data_endpoint(awsapi_ctx *ctx, const char *url, pl_errmsg *e)
{
	char *copy;

	if (url == NULL || !endpoint_scheme_ok(url))
		return pl_errmsg_set(e, PL_ERR_INVALID,
				     "AWS API: data endpoint %s is not an http:// or https:// URL",
				     url ? url : "(missing)");
	copy = strdup(url);
	if (copy == NULL)
		return pl_errmsg_set(e, PL_ERR_NOMEM, "AWS API: out of memory");
	free(ctx->data_endpoint);
	ctx->data_endpoint = copy;
	return PL_OK;
}

void awsapi_ctx_cancel(awsapi_ctx *ctx)
{
	ctx->cancelled = 1;
}

void awsapi_ctx_stats(awsapi_ctx *ctx, awsapi_op op, awsapi_op_stats *out)
{
	if ((unsigned)op >= AWSAPI_OP__COUNT) {
		memset(out, 0, sizeof(*out));
		return;
	}
	pthread_mutex_lock(&ctx->stats_lock);
	*out = ctx->stats[op];
	pthread_mutex_unlock(&ctx->stats_lock);
}

uint64_t awsapi_ctx_throttled_control(awsapi_ctx *ctx)
{
	uint64_t total = 0;

	pthread_mutex_lock(&ctx->stats_lock);
	for (int i = 0; i < AWSAPI_OP__COUNT; i++)
		if (op_table[i].control)
			total += ctx->stats[i].throttled;
	pthread_mutex_unlock(&ctx->stats_lock);
	return total;
}

/* ---- waiting: rate limiter and backoff ---- */

/* Sleeps until deadline in slices so that a cancel is seen; returns PL_ERR_INTERRUPTED then. */
static pl_err sleep_until(awsapi_ctx *ctx, int64_t deadline_ns)
{
	for (;;) {
		int64_t left = deadline_ns - pl_mono_ns();

		if (ctx->cancelled)
			return PL_ERR_INTERRUPTED;
		if (left <= 0)
			return PL_OK;
		pl_sleep_ns(left < BACKOFF_SLICE_NS ? left : BACKOFF_SLICE_NS);
	}
}

/*
 * Reserves the next send slot of op's bucket and waits for it. The
 * reservation is taken under the lock and the wait happens outside it, so
 * concurrent callers queue up at interval_ns spacing (burst calls at once
 * after an idle period).
 */
static pl_err limiter_acquire(awsapi_ctx *ctx, awsapi_op op)
{
	limiter *l = &ctx->limiters[op];
	int64_t now = pl_mono_ns();
	int64_t send_at;
	pl_err err;

	if (l->interval_ns == 0)
		return ctx->cancelled ? PL_ERR_INTERRUPTED : PL_OK;
	pthread_mutex_lock(&l->lock);
	if (l->tat_ns < now)
		l->tat_ns = now;
	send_at = l->tat_ns - (int64_t)(ctx->burst - 1) * l->interval_ns;
	if (send_at < now)
		send_at = now;
	l->tat_ns += l->interval_ns;
	pthread_mutex_unlock(&l->lock);
	err = sleep_until(ctx, send_at);
	pthread_mutex_lock(&ctx->stats_lock);
	ctx->stats[op].limiter_wait_ns += send_at - now;
	pthread_mutex_unlock(&ctx->stats_lock);
	return err;
}

static uint64_t next_random(awsapi_client *c)
{
	/* xorshift64*: enough for jitter; each client has its own state. */
	c->rng ^= c->rng >> 12;
	c->rng ^= c->rng << 25;
	c->rng ^= c->rng >> 27;
	return c->rng * UINT64_C(2685821657736338717);
}

/* Full jitter: a uniform wait in [0, min(max, base * 2^(retry-1))]. */
static int64_t backoff_ns(awsapi_client *c, int retry)
{
	awsapi_ctx *ctx = c->ctx;
	int64_t ceiling = ctx->backoff_base_ns;

	for (int i = 1; i < retry && ceiling < ctx->backoff_max_ns; i++)
		ceiling *= 2;
	if (ceiling > ctx->backoff_max_ns)
		ceiling = ctx->backoff_max_ns;
	if (ceiling <= 0)
		return 0;
	return (int64_t)(next_random(c) % (uint64_t)(ceiling + 1));
}

/* ---- clients ---- */

pl_err awsapi_client_create(awsapi_client **out, awsapi_ctx *ctx, pl_errmsg *e)
{
	awsapi_client *c = calloc(1, sizeof(*c));

	*out = NULL;
	if (c == NULL)
		return pl_errmsg_set(e, PL_ERR_NOMEM, "AWS API client: out of memory");
	c->ctx = ctx;
	c->curl = curl_easy_init();
	if (c->curl == NULL) {
		free(c);
		return pl_errmsg_set(e, PL_ERR_NOMEM, "AWS API client: curl_easy_init failed");
	}
	c->rng = (uint64_t)pl_mono_ns() ^ (uint64_t)(uintptr_t)c ^ UINT64_C(0x9e3779b97f4a7c15);
	if (c->rng == 0)
		c->rng = 1;
	*out = c;
	return PL_OK;
}

void awsapi_client_free(awsapi_client *c)
{
	if (c == NULL)
		return;
	curl_easy_cleanup(c->curl);
	awsapi_client_wipe_response(c);
	free(c->body);
	free(c);
}

void awsapi_client_wipe_response(awsapi_client *c)
{
	if (c->body != NULL)
		explicit_bzero(c->body, c->body_cap);
	c->body_len = 0;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	awsapi_client *c = arg;
	size_t n = size * nmemb;

	if (c->body_len + n + 1 > RESPONSE_MAX) {
		c->body_overflow = 1;
		return 0; /* aborts the transfer */
	}
	if (c->body_len + n + 1 > c->body_cap) {
		size_t cap = c->body_cap ? c->body_cap : 4096;
		char *p;

		while (cap < c->body_len + n + 1)
			cap *= 2;
		/* Not realloc: the old buffer may hold a private key and is wiped first. */
		p = malloc(cap);
		if (p == NULL)
			return 0;
		if (c->body != NULL) {
			memcpy(p, c->body, c->body_len);
			explicit_bzero(c->body, c->body_cap);
			free(c->body);
		}
		c->body = p;
		c->body_cap = cap;
	}
	memcpy(c->body + c->body_len, data, n);
	c->body_len += n;
	c->body[c->body_len] = '\0';
	return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *arg)
{
	static const char name[] = "x-amzn-ErrorType:";
	awsapi_client *c = arg;
	size_t n = size * nmemb;
	size_t len;

	if (n <= sizeof(name) - 1 || strncasecmp(data, name, sizeof(name) - 1) != 0)
		return n;
	data += sizeof(name) - 1;
	len = n - (sizeof(name) - 1);
	while (len > 0 && (*data == ' ' || *data == '\t')) {
		data++;
		len--;
	}
	while (len > 0 && (data[len - 1] == '\r' || data[len - 1] == '\n' || data[len - 1] == ' '))
		len--;
	if (len >= sizeof(c->error_type))
		len = sizeof(c->error_type) - 1;
	memcpy(c->error_type, data, len);
	c->error_type[len] = '\0';
	return n;
}

/* ---- one attempt ---- */

/* The outcome of one HTTP request. */
typedef struct attempt {
	CURLcode code;
	long status;
	int64_t t_sent_ns;
	int64_t t_done_ns;
} attempt;

static const char *base_url(const awsapi_ctx *ctx, awsapi_op op)
{
	return op_table[op].control ? ctx->control_endpoint : ctx->data_endpoint;
}

static pl_err build_url(const awsapi_ctx *ctx, const awsapi_http *req, char *url, size_t len,
			pl_errmsg *e)
{
	const char *base = base_url(ctx, req->op);
	size_t base_len;
	int n;

	if (base == NULL)
		return pl_errmsg_set(e, PL_ERR_UNSUPPORTED,
				     "%s: no data endpoint is configured for this target",
				     awsapi_op_name(req->op));
	base_len = strlen(base);
	while (base_len > 0 && base[base_len - 1] == '/')
		base_len--;
	n = snprintf(url, len, "%.*s%s%s%s", (int)base_len, base, req->path,
		     req->query[0] ? "?" : "", req->query);
	if (n < 0 || (size_t)n >= len)
		return pl_errmsg_set(e, PL_ERR_RANGE, "%s: URL longer than %zu bytes",
				     awsapi_op_name(req->op), len);
	return PL_OK;
}

/* The Host header curl sends for url: the authority without a default port. */
static void host_of(const char *url, char *host, size_t len)
{
	int https = strncmp(url, "https://", 8) == 0;
	const char *start = url + (https ? 8 : 7);
	size_t n = strcspn(start, "/?");
	const char *default_port = https ? ":443" : ":80";
	size_t dp = strlen(default_port);

	if (n > dp && memcmp(start + n - dp, default_port, dp) == 0)
		n -= dp;
	snprintf(host, len, "%.*s", (int)n, start);
}

static const char *signing_service(const awsapi_ctx *ctx, awsapi_op op)
{
	return op_table[op].control ? ctx->control_signing_name : ctx->data_signing_name;
}

static const char *content_type_of(const awsapi_http *req)
{
	if (req->body == NULL)
		return NULL;
	return req->content_type ? req->content_type : "application/json";
}

/* Appends one header line; on failure the list is left as it was. */
static pl_err append_header(struct curl_slist **headers, const char *line, pl_errmsg *e)
{
	struct curl_slist *h = curl_slist_append(*headers, line);

	if (h == NULL)
		return pl_errmsg_set(e, PL_ERR_NOMEM, "out of memory");
	*headers = h;
	return PL_OK;
}

/*
 * Signs the request in this process. Used only when libcurl would sign a
 * percent-encoded path once where AWS encodes it twice (libcurl before 8.8).
 */
static pl_err add_own_signature(awsapi_client *c, const awsapi_http *req, const char *url,
				struct curl_slist **headers, pl_errmsg *e)
{
	awsapi_ctx *ctx = c->ctx;
	char host[256], amz_date[32], auth[512], line[600];
	time_t now = time(NULL);
	struct tm tm;
	awsapi_sigv4_input in;

	gmtime_r(&now, &tm);
	strftime(amz_date, sizeof(amz_date), "%Y%m%dT%H%M%SZ", &tm);
	host_of(url, host, sizeof(host));
	memset(&in, 0, sizeof(in));
	in.method = req->method;
	in.host = host;
	in.path = req->path;
	in.query = req->query;
	in.content_type = content_type_of(req);
	in.amz_date = amz_date;
	in.session_token = ctx->credentials.session_token;
	in.body = req->body;
	in.body_len = req->body_len;
	in.region = ctx->region;
	in.service = signing_service(ctx, req->op);
	in.access_key_id = ctx->credentials.access_key_id;
	in.secret_access_key = ctx->credentials.secret_access_key;
	if (awsapi_sigv4_authorization(&in, auth, sizeof(auth)) != PL_OK)
		return pl_errmsg_set(e, PL_ERR_RANGE, "%s: signature does not fit",
				     awsapi_op_name(req->op));
	snprintf(line, sizeof(line), "X-Amz-Date: %s", amz_date);
	if (append_header(headers, line, e) != PL_OK)
		return PL_ERR_NOMEM;
	snprintf(line, sizeof(line), "Authorization: %s", auth);
	return append_header(headers, line, e);
}

static pl_err build_headers(awsapi_client *c, const awsapi_http *req, const char *url,
			    struct curl_slist **out, pl_errmsg *e)
{
	const char *token = c->ctx->credentials.session_token;
	const char *type = content_type_of(req);
	struct curl_slist *headers = NULL;
	char line[CREDENTIALS_TOKEN_MAX + 64];
	pl_err err = PL_OK;

	if (type != NULL) {
		snprintf(line, sizeof(line), "Content-Type: %s", type);
		err = append_header(&headers, line, e);
	}
	if (err == PL_OK && token[0] != '\0') {
		/* Secret: this list is never logged. */
		snprintf(line, sizeof(line), "X-Amz-Security-Token: %s", token);
		err = append_header(&headers, line, e);
	}
	if (err == PL_OK && c->ctx->path_signing_fallback && strchr(req->path, '%') != NULL)
		err = add_own_signature(c, req, url, &headers, e);
	explicit_bzero(line, sizeof(line));
	if (err != PL_OK) {
		curl_slist_free_all(headers);
		return err;
	}
	*out = headers;
	return PL_OK;
}

static void set_method(CURL *curl, const awsapi_http *req)
{
	int has_body = req->body != NULL || strcmp(req->method, "POST") == 0 ||
		       strcmp(req->method, "PUT") == 0 || strcmp(req->method, "PATCH") == 0;

	if (strcmp(req->method, "GET") == 0) {
		curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
		return;
	}
	if (has_body) {
		/* POSTFIELDS also feeds libcurl's SigV4 payload hash. */
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)(req->body ? req->body_len : 0));
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, req->body ? req->body : "");
	}
	if (strcmp(req->method, "POST") != 0)
		curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, req->method);
}

static void set_signing(awsapi_client *c, const awsapi_http *req)
{
	awsapi_ctx *ctx = c->ctx;
	char sigv4[160];

	if (ctx->path_signing_fallback && strchr(req->path, '%') != NULL)
		return; /* signed by add_own_signature */
	snprintf(sigv4, sizeof(sigv4), "aws:amz:%s:%s", ctx->region,
		 signing_service(ctx, req->op));
	curl_easy_setopt(c->curl, CURLOPT_AWS_SIGV4, sigv4);
	curl_easy_setopt(c->curl, CURLOPT_USERNAME, ctx->credentials.access_key_id);
	curl_easy_setopt(c->curl, CURLOPT_PASSWORD, ctx->credentials.secret_access_key);
}

/*
 * Aborts a transfer in flight once the context is cancelled. While no data
 * moves, libcurl calls this about once a second (CURLOPT_XFERINFOFUNCTION
 * in its documentation), so a request waiting for its response ends about
 * a second after the cancel.
 */
static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	const awsapi_ctx *ctx = arg;

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return ctx->cancelled ? 1 : 0;
}

static void set_transport(awsapi_client *c, const char *url, struct curl_slist *headers)
{
	CURL *curl = c->curl;
	long timeout_ms = (long)(c->ctx->timeout_ns / PL_NS_PER_MS);

	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "policylag/" POLICYLAG_VERSION);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, c);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, c);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, c->curl_error);
	curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(curl, CURLOPT_XFERINFODATA, c->ctx);
	curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
	if (c->ctx->ca_file != NULL)
		curl_easy_setopt(curl, CURLOPT_CAINFO, c->ctx->ca_file);
}

/* Sends req once; the response is left in c->body, c->error_type and *a. */
static pl_err send_once(awsapi_client *c, const awsapi_http *req, attempt *a, pl_errmsg *e)
{
	char url[AWSAPI_PATH_MAX + AWSAPI_QUERY_MAX + 256];
	struct curl_slist *headers = NULL;
	curl_off_t connect_us = 0;
	curl_off_t tls_us = 0;
	int64_t t_start;
	pl_err err;

	memset(a, 0, sizeof(*a));
	err = build_url(c->ctx, req, url, sizeof(url), e);
	if (err == PL_OK)
		err = build_headers(c, req, url, &headers, e);
	if (err != PL_OK)
		return err;
	c->body_len = 0;
	c->body_overflow = 0;
	c->error_type[0] = '\0';
	c->curl_error[0] = '\0';
	if (c->body != NULL)
		c->body[0] = '\0';
	curl_easy_reset(c->curl); /* keeps the connection cache */
	set_transport(c, url, headers);
	set_method(c->curl, req);
	set_signing(c, req);
	t_start = pl_mono_ns();
	a->code = curl_easy_perform(c->curl);
	a->t_done_ns = pl_mono_ns();
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &a->status);
	/*
	 * The request left after the connection (and its TLS handshake) was
	 * ready, so that moment is the latest time known to precede the send.
	 * libcurl records PRETRANSFER on entering its DID state, after the DO
	 * phase has written the request (lib/multi.c, before_perform), and with
	 * libcurl 7.88.1 the simulator was seen to apply a change before it.
	 */
	curl_easy_getinfo(c->curl, CURLINFO_CONNECT_TIME_T, &connect_us);
	curl_easy_getinfo(c->curl, CURLINFO_APPCONNECT_TIME_T, &tls_us);
	a->t_sent_ns = t_start + (int64_t)(tls_us > connect_us ? tls_us : connect_us) * PL_NS_PER_US;
	curl_slist_free_all(headers);
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, NULL);
	return PL_OK;
}

/* ---- the retry loop ---- */

/* How an attempt ended, for the retry decision. */
typedef enum verdict {
	VERDICT_OK,
	VERDICT_RETRY,
	VERDICT_FAIL,
} verdict;

static pl_err transport_error(awsapi_client *c, const awsapi_http *req, const attempt *a,
			      pl_errmsg *e)
{
	pl_err err = PL_ERR_NETWORK;

	if (c->body_overflow)
		return pl_errmsg_set(e, PL_ERR_PROTOCOL, "%s: response larger than %u bytes",
				     awsapi_op_name(req->op), RESPONSE_MAX);
	if (a->code == CURLE_ABORTED_BY_CALLBACK)
		return pl_errmsg_set(e, PL_ERR_INTERRUPTED, "%s: cancelled while in flight",
				     awsapi_op_name(req->op));
	if (a->code == CURLE_OPERATION_TIMEDOUT)
		err = PL_ERR_TIMEOUT;
	else if (a->code == CURLE_SSL_CONNECT_ERROR || a->code == CURLE_PEER_FAILED_VERIFICATION ||
		 a->code == CURLE_SSL_CACERT_BADFILE)
		err = PL_ERR_TLS;
	return pl_errmsg_set(e, err, "%s%s%s: %s", awsapi_op_name(req->op),
			     req->subject ? " " : "", req->subject ? req->subject : "",
			     c->curl_error[0] ? c->curl_error : curl_easy_strerror(a->code));
}

/*
 * Classifies one attempt: success, a throttled or failed response worth
 * retrying, or a final error. Only requests that never reached the server
 * (connection refused) are retried among transport errors, because a
 * timed-out request may already have changed something.
 */
static verdict judge(awsapi_client *c, const awsapi_http *req, const attempt *a,
		     awsapi_call *call, pl_err *err, pl_errmsg *e)
{
	char name[sizeof(call->error_code)], message[256];
	int throttled;

	if (a->code != CURLE_OK) {
		*err = transport_error(c, req, a, e);
		snprintf(call->error_code, sizeof(call->error_code), "%s",
			 curl_easy_strerror(a->code));
		return a->code == CURLE_COULDNT_CONNECT ? VERDICT_RETRY : VERDICT_FAIL;
	}
	if (a->status >= 200 && a->status < 300) {
		call->error_code[0] = '\0';
		*err = PL_OK;
		return VERDICT_OK;
	}
	*err = awsapi_parse_error(a->status, c->error_type[0] ? c->error_type : NULL, c->body,
				  c->body_len, name, sizeof(name), message, sizeof(message));
	snprintf(call->error_code, sizeof(call->error_code), "%s", name);
	pl_errmsg_set(e, *err, "%s%s%s: %s%s%s", awsapi_op_name(req->op),
		      req->subject ? " " : "", req->subject ? req->subject : "", name,
		      message[0] ? ": " : "", message);
	throttled = *err == PL_ERR_THROTTLED;
	call->throttled += throttled;
	pthread_mutex_lock(&c->ctx->stats_lock);
	c->ctx->stats[req->op].throttled += (uint64_t)throttled;
	c->ctx->stats[req->op].server_errors += a->status >= 500;
	pthread_mutex_unlock(&c->ctx->stats_lock);
	return throttled || a->status >= 500 ? VERDICT_RETRY : VERDICT_FAIL;
}

static pl_err parse_success(awsapi_client *c, const awsapi_http *req, json_t **out_json,
			    pl_errmsg *e)
{
	json_error_t jerr;
	json_t *root;

	if (out_json == NULL)
		return PL_OK;
	*out_json = NULL;
	if (c->body_len == 0)
		return PL_OK;
	root = json_loadb(c->body, c->body_len, 0, &jerr);
	if (root == NULL)
		return pl_errmsg_set(e, PL_ERR_PROTOCOL, "%s: response is not JSON: %s",
				     awsapi_op_name(req->op), jerr.text);
	*out_json = root;
	return PL_OK;
}

static void count(awsapi_ctx *ctx, awsapi_op op, size_t field_offset)
{
	pthread_mutex_lock(&ctx->stats_lock);
	*(uint64_t *)((char *)&ctx->stats[op] + field_offset) += 1;
	pthread_mutex_unlock(&ctx->stats_lock);
}

/* Runs attempts until one succeeds, fails for good, or attempts run out. */
static pl_err run_attempts(awsapi_client *c, const awsapi_http *req, awsapi_call *call,
			   pl_errmsg *e)
{
	awsapi_ctx *ctx = c->ctx;
	pl_err err = PL_OK;

	for (int i = 0; i < ctx->max_attempts; i++) {
		attempt a;
		verdict v;

		if (i > 0) {
			count(ctx, req->op, offsetof(awsapi_op_stats, retries));
			PL_DEBUG(LOG_TAG, "%s: retry %d after %s", awsapi_op_name(req->op), i,
				 call->error_code);
			if (sleep_until(ctx, pl_mono_ns() + backoff_ns(c, i)) != PL_OK)
				break;
		}
		if (limiter_acquire(ctx, req->op) != PL_OK)
			break;
		err = send_once(c, req, &a, e);
		if (err != PL_OK)
			return err;
		count(ctx, req->op, offsetof(awsapi_op_stats, attempts));
		call->attempts++;
		if (call->attempts == 1)
			call->t_first_sent_ns = a.t_sent_ns;
		call->t_sent_ns = a.t_sent_ns;
		call->t_done_ns = a.t_done_ns;
		call->http_status = a.status;
		v = judge(c, req, &a, call, &err, e);
		if (v != VERDICT_RETRY)
			return err;
	}
	if (ctx->cancelled)
		return pl_errmsg_set(e, PL_ERR_INTERRUPTED, "%s: cancelled",
				     awsapi_op_name(req->op));
	return err; /* the last attempt's error, message already set */
}

pl_err awsapi_execute(awsapi_client *c, const awsapi_http *req, json_t **out_json,
		      awsapi_call *call, pl_errmsg *e)
{
	awsapi_call local;
	pl_err err;

	if (call == NULL)
		call = &local;
	memset(call, 0, sizeof(*call));
	call->op = req->op;
	if (out_json != NULL)
		*out_json = NULL;
	count(c->ctx, req->op, offsetof(awsapi_op_stats, calls));
	err = run_attempts(c, req, call, e);
	if (err == PL_OK)
		err = parse_success(c, req, out_json, e);
	count(c->ctx, req->op,
	      err == PL_OK ? offsetof(awsapi_op_stats, succeeded) : offsetof(awsapi_op_stats, failed));
	return err;
}
