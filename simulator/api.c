/*
 * The API's HTTP plumbing: libmicrohttpd set-up, request collection,
 * parsing of the path and query as sent, SigV4, throttling and dispatch.
 */
#include "simulator/api.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/clock.h"
#include "common/log.h"
#include "simulator/api_creds.h"
#include "simulator/api_internal.h"
#include "simulator/api_routes.h"
#include "simulator/certs.h"
#include "simulator/sigv4.h"

/* One request while its body arrives; created by the URI callback. */
typedef struct pending {
	char *uri;
	char *body;
	size_t body_len;
	size_t body_cap;
	int started;
	int too_large;
} pending;

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	pending *p = calloc(1, sizeof(*p));

	(void)cls;
	(void)conn;
	if (p != NULL)
		p->uri = strdup(uri);
	return p;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode code)
{
	pending *p = *con_cls;

	(void)cls;
	(void)conn;
	(void)code;
	if (p == NULL)
		return;
	free(p->uri);
	free(p->body);
	free(p);
	*con_cls = NULL;
}

/* Appends a body chunk, up to max bytes; beyond that the request is marked too large. */
static void collect_body(pending *p, const char *data, size_t len, size_t max)
{
	if (p->too_large || p->body_len + len > max) {
		p->too_large = 1;
		return;
	}
	if (p->body_len + len + 1 > p->body_cap) {
		size_t cap = p->body_cap ? p->body_cap : 1024;
		char *grown;
		while (cap < p->body_len + len + 1)
			cap *= 2;
		grown = realloc(p->body, cap);
		if (grown == NULL) {
			p->too_large = 1;
			return;
		}
		p->body = grown;
		p->body_cap = cap;
	}
	memcpy(p->body + p->body_len, data, len);
	p->body_len += len;
	p->body[p->body_len] = '\0';
}

static const char *lookup_header(void *ctx, const char *name)
{
	return MHD_lookup_connection_value(ctx, MHD_HEADER_KIND, name);
}

static void request_free(api_request *req)
{
	free(req->raw_path);
	free(req->raw_query);
	free(req->rest_after_first);
	for (size_t i = 0; i < req->segment_count; i++)
		free(req->segments[i]);
	for (size_t i = 0; i < req->query_count; i++) {
		free(req->query[i].key);
		free(req->query[i].value);
	}
}

static int parse_query(api_request *req)
{
	const char *p = req->raw_query;

	while (p != NULL && *p != '\0') {
		const char *amp = strchr(p, '&');
		size_t len = amp != NULL ? (size_t)(amp - p) : strlen(p);
		const char *eq = memchr(p, '=', len);
		size_t key_len = eq != NULL ? (size_t)(eq - p) : len;
		api_query_pair *q;

		if (len > 0) {
			if (req->query_count == API_MAX_QUERY)
				return 0;
			q = &req->query[req->query_count];
			if (sim_sigv4_uri_decode(p, key_len, &q->key) != PL_OK)
				return 0;
			if (sim_sigv4_uri_decode(eq != NULL ? eq + 1 : "",
						 eq != NULL ? len - key_len - 1 : 0,
						 &q->value) != PL_OK) {
				free(q->key);
				return 0;
			}
			req->query_count++;
		}
		p = amp != NULL ? amp + 1 : NULL;
	}
	return 1;
}

/* Splits the path as sent into decoded segments; 0 on a bad escape or too many segments. */
static int parse_path(api_request *req)
{
	const char *p = req->raw_path + 1;
	const char *slash = strchr(p, '/');

	if (*p != '\0' && slash != NULL &&
	    sim_sigv4_uri_decode(slash + 1, strlen(slash + 1), &req->rest_after_first) != PL_OK)
		return 0;
	while (*p != '\0') {
		size_t len;
		slash = strchr(p, '/');
		len = slash != NULL ? (size_t)(slash - p) : strlen(p);
		if (req->segment_count == API_MAX_SEGMENTS)
			return 0;
		if (sim_sigv4_uri_decode(p, len, &req->segments[req->segment_count]) != PL_OK)
			return 0;
		req->segment_count++;
		if (slash == NULL)
			break;
		p = slash + 1;
	}
	return 1;
}

static int parse_request(api_request *req, const char *uri)
{
	const char *q = strchr(uri, '?');
	size_t path_len = q != NULL ? (size_t)(q - uri) : strlen(uri);

	if (path_len == 0 || uri[0] != '/')
		return 0;
	req->raw_path = strndup(uri, path_len);
	req->raw_query = q != NULL ? strdup(q + 1) : NULL;
	if (req->raw_path == NULL || (q != NULL && req->raw_query == NULL))
		return 0;
	return parse_path(req) && parse_query(req);
}

static int service_allowed(api_service s, const char *signed_as)
{
	/* botocore's iot model signs the control plane as "execute-api". */
	int control = strcmp(signed_as, "iot") == 0 || strcmp(signed_as, "execute-api") == 0;
	int data = strcmp(signed_as, "iotdata") == 0 || strcmp(signed_as, "iotdevicegateway") == 0;

	switch (s) {
	case API_SERVICE_CONTROL:
		return control;
	case API_SERVICE_DATA:
		return data;
	case API_SERVICE_SIM:
		return control || data;
	}
	return 0;
}

static int authenticate(sim_api *api, const api_request *req, const api_route *route,
			api_response *res)
{
	static const char *const services[] = {"iot", "execute-api", "iotdata", "iotdevicegateway",
					       NULL};
	sim_sigv4_key key = {api->access_key_id, api->secret, api->cfg.region, services,
			     api->cfg.skew_ns};
	sim_sigv4_request sreq = {req->method, req->raw_path, req->raw_query, req->header,
				  req->header_ctx, req->body, req->body_len};
	char service[32], why[512];
	sim_sigv4_result r = sim_sigv4_verify(&sreq, &key, pl_wall_ns(), service,
					      sizeof(service), why, sizeof(why));

	if (r != SIM_SIGV4_OK) {
		api_error(res, (unsigned)sim_sigv4_http_status(r), sim_sigv4_error_type(r), "%s",
			  why);
		return 0;
	}
	if (route != NULL && !service_allowed(route->service, service)) {
		api_error(res, 403, "InvalidSignatureException",
			  "Credential should be scoped to correct service: '%s'.",
			  route->service == API_SERVICE_DATA ? "iotdata" : "iot");
		return 0;
	}
	return 1;
}

/* Takes one token from the operation's bucket; 0 (and counts a refusal) when empty. */
static int throttle_take(sim_api *api, api_op op)
{
	api_throttle_bucket *b = &api->buckets[op];
	int64_t now = pl_mono_ns();
	int ok = 1;

	if (!api->cfg.throttle_on || b->rate <= 0)
		return 1;
	pthread_mutex_lock(&api->throttle_lock);
	b->tokens += (double)(now - b->last_ns) / 1e9 * b->rate;
	if (b->tokens > b->burst)
		b->tokens = b->burst;
	b->last_ns = now;
	if (b->tokens >= 1) {
		b->tokens -= 1;
	} else {
		b->refused++;
		ok = 0;
	}
	pthread_mutex_unlock(&api->throttle_lock);
	return ok;
}

static void dispatch(sim_api *api, api_request *req, api_response *res)
{
	int path_known;
	const api_route *route = api_route_find(req, &path_known);

	if (!authenticate(api, req, route, res))
		return;
	if (route == NULL) {
		if (path_known)
			api_error(res, 405, "MethodNotAllowedException",
				  "The method %s is not allowed on this resource", req->method);
		else
			api_error(res, 404, "UnknownOperationException",
				  "No operation matches %s %s", req->method, req->raw_path);
		return;
	}
	if (!throttle_take(api, route->op)) {
		unsigned status = route->service == API_SERVICE_DATA ? 429 : api->cfg.throttle_status;
		api_error(res, status, "ThrottlingException", "Rate exceeded");
		return;
	}
	route->handler(api, req, res);
}

static void request_id(char out[37])
{
	unsigned char b[16];
	char hex[33];
	static const char digits[] = "0123456789abcdef";

	RAND_bytes(b, sizeof(b));
	for (int i = 0; i < 16; i++) {
		hex[2 * i] = digits[b[i] >> 4];
		hex[2 * i + 1] = digits[b[i] & 15];
	}
	snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
}

static enum MHD_Result send_response(struct MHD_Connection *conn, api_response *res)
{
	struct MHD_Response *r;
	enum MHD_Result ret;
	char id[37], type[128];

	r = MHD_create_response_from_buffer(res->body_len, res->body, MHD_RESPMEM_MUST_FREE);
	if (r == NULL) {
		free(res->body);
		return MHD_NO;
	}
	res->body = NULL;
	request_id(id);
	MHD_add_response_header(r, "Content-Type", "application/json");
	MHD_add_response_header(r, "x-amzn-RequestId", id);
	if (res->error_type != NULL) {
		/* AWS appends ':' and sometimes more; SDKs take the text before the colon. */
		snprintf(type, sizeof(type), "%s:", res->error_type);
		MHD_add_response_header(r, "x-amzn-ErrorType", type);
	}
	ret = MHD_queue_response(conn, res->status, r);
	MHD_destroy_response(r);
	return ret;
}

static void handle(sim_api *api, struct MHD_Connection *conn, const char *method, pending *p,
		   api_response *res)
{
	api_request req;

	memset(&req, 0, sizeof(req));
	req.method = method;
	req.header = lookup_header;
	req.header_ctx = conn;
	req.body = p->body != NULL ? p->body : (char *)"";
	req.body_len = p->body_len;
	if (p->too_large)
		api_error(res, 413, "RequestEntityTooLargeException",
			  "The request body is larger than %zu bytes", api->cfg.max_body);
	else if (p->uri == NULL || !parse_request(&req, p->uri))
		api_error(res, 400, "InvalidRequestException",
			  "The request path or query is malformed");
	else
		dispatch(api, &req, res);
	/* Client errors are routine (validation, throttling), so only server errors warn. */
	if (res->error_type != NULL && res->status >= 500)
		PL_WARN("api", "%s %s: %u %s", method, req.raw_path ? req.raw_path : "?",
			res->status, res->error_type);
	else if (res->error_type != NULL)
		PL_DEBUG("api", "%s %s: %u %s", method, req.raw_path ? req.raw_path : "?",
			 res->status, res->error_type);
	request_free(&req);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_data_size,
				  void **con_cls)
{
	sim_api *api = cls;
	pending *p = *con_cls;
	api_response res = {500, NULL, 0, NULL};

	(void)url;
	(void)version;
	if (p == NULL)
		return MHD_NO;
	if (!p->started) {
		p->started = 1;
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		collect_body(p, upload_data, *upload_data_size, api->cfg.max_body);
		*upload_data_size = 0;
		return MHD_YES;
	}
	handle(api, conn, method, p, &res);
	return send_response(conn, &res);
}

/* Keeps the URL as sent: the API decodes path segments itself. */
static size_t keep_escaped(void *cls, struct MHD_Connection *conn, char *s)
{
	(void)cls;
	(void)conn;
	return strlen(s);
}

static pl_err start_daemon(sim_api *api, pl_errmsg *e)
{
	struct sockaddr_in6 a6;
	struct sockaddr_in a4;
	struct sockaddr *addr;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL;
	const union MHD_DaemonInfo *info;

	memset(&a4, 0, sizeof(a4));
	memset(&a6, 0, sizeof(a6));
	if (strcmp(api->cfg.bind, "::1") == 0) {
		a6.sin6_family = AF_INET6;
		a6.sin6_port = htons(api->cfg.port);
		a6.sin6_addr = in6addr_loopback;
		addr = (struct sockaddr *)&a6;
		flags |= MHD_USE_IPv6;
	} else {
		a4.sin_family = AF_INET;
		a4.sin_port = htons(api->cfg.port);
		a4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		addr = (struct sockaddr *)&a4;
	}
	api->daemon = MHD_start_daemon(
		flags, api->cfg.port, NULL, NULL, on_request, api, MHD_OPTION_SOCK_ADDR, addr,
		MHD_OPTION_URI_LOG_CALLBACK, on_uri, api, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
		api, MHD_OPTION_UNESCAPE_CALLBACK, keep_escaped, api, MHD_OPTION_THREAD_POOL_SIZE,
		2u, MHD_OPTION_CONNECTION_LIMIT, 256u, MHD_OPTION_CONNECTION_TIMEOUT, 30u,
		MHD_OPTION_END);
	if (api->daemon == NULL)
		return pl_errmsg_set(e, PL_ERR_NETWORK, "api: cannot listen on %s port %u",
				     api->cfg.bind, api->cfg.port);
	info = MHD_get_daemon_info(api->daemon, MHD_DAEMON_INFO_BIND_PORT);
	api->port = info != NULL ? info->port : api->cfg.port;
	return PL_OK;
}

static pl_err copy_config(sim_api_config *dst, const sim_api_config *src)
{
	*dst = *src;
	dst->credentials_file = src->credentials_file ? strdup(src->credentials_file) : NULL;
	dst->ground_truth_file = src->ground_truth_file ? strdup(src->ground_truth_file) : NULL;
	dst->ca_cert = src->ca_cert ? strdup(src->ca_cert) : NULL;
	dst->ca_key = src->ca_key ? strdup(src->ca_key) : NULL;
	dst->trust_dir = src->trust_dir ? strdup(src->trust_dir) : NULL;
	if ((src->credentials_file && !dst->credentials_file) ||
	    (src->ground_truth_file && !dst->ground_truth_file) || (src->ca_cert && !dst->ca_cert) ||
	    (src->ca_key && !dst->ca_key) || (src->trust_dir && !dst->trust_dir))
		return PL_ERR_NOMEM;
	return PL_OK;
}

static void free_config_strings(sim_api_config *c)
{
	free(c->credentials_file);
	free(c->ground_truth_file);
	free(c->ca_cert);
	free(c->ca_key);
	free(c->trust_dir);
}

static void init_buckets(sim_api *api)
{
	int64_t now = pl_mono_ns();

	for (int op = 0; op < API_OP__COUNT; op++) {
		api->buckets[op].rate = api->cfg.rate[op];
		api->buckets[op].burst = api->cfg.burst[op];
		api->buckets[op].tokens = api->cfg.burst[op];
		api->buckets[op].last_ns = now;
	}
}

static pl_err load_keys(sim_api *api, pl_errmsg *e)
{
	sim_api_creds creds;
	pl_err err;

	if (api->cfg.credentials_file == NULL)
		return pl_errmsg_set(e, PL_ERR_INVALID, "api: api_credentials_file is not set");
	err = sim_api_creds_load(api->cfg.credentials_file, &creds, e);
	if (err != PL_OK)
		return err;
	memcpy(api->access_key_id, creds.access_key_id, sizeof(api->access_key_id));
	memcpy(api->secret, creds.secret, sizeof(api->secret));
	OPENSSL_cleanse(&creds, sizeof(creds));
	if (api->cfg.ca_cert != NULL && api->cfg.ca_key != NULL)
		err = sim_ca_load(&api->ca, api->cfg.ca_cert, api->cfg.ca_key, e);
	return err;
}

pl_err sim_api_start(sim_api **out, const sim_api_config *cfg, sim_state *state, pl_errmsg *e)
{
	sim_api *api = calloc(1, sizeof(*api));
	pl_err err;

	if (api == NULL)
		return PL_ERR_NOMEM;
	pthread_mutex_init(&api->throttle_lock, NULL);
	api->state = state;
	err = copy_config(&api->cfg, cfg);
	if (err == PL_OK)
		err = load_keys(api, e);
	if (err == PL_OK)
		err = sim_broker_queue_create(&api->queue, api->cfg.queue_capacity);
	if (err != PL_OK)
		goto fail;
	init_buckets(api);
	err = start_daemon(api, e);
	if (err != PL_OK)
		goto fail;
	PL_INFO("api", "listening on %s port %u", api->cfg.bind, api->port);
	*out = api;
	return PL_OK;
fail:
	sim_api_stop(api);
	return err;
}

uint16_t sim_api_listen_port(const sim_api *api)
{
	return api->port;
}

void sim_api_drain(sim_api *api, void (*fn)(void *ctx, const sim_broker_action *a), void *ctx)
{
	sim_broker_queue_drain(api->queue, fn, ctx);
}

void sim_api_stop(sim_api *api)
{
	if (api == NULL)
		return;
	if (api->daemon != NULL)
		MHD_stop_daemon(api->daemon);
	if (api->queue != NULL && sim_broker_queue_dropped(api->queue) > 0)
		PL_WARN("api", "%llu broker actions were rejected because the queue was full",
			(unsigned long long)sim_broker_queue_dropped(api->queue));
	if (api->daemon != NULL && sim_api_throttled(api, NULL) > 0)
		PL_INFO("api", "%llu requests were throttled",
			(unsigned long long)sim_api_throttled(api, NULL));
	sim_broker_queue_free(api->queue);
	sim_ca_free(api->ca);
	OPENSSL_cleanse(api->secret, sizeof(api->secret));
	free_config_strings(&api->cfg);
	pthread_mutex_destroy(&api->throttle_lock);
	free(api);
}

uint64_t sim_api_throttled(sim_api *api, const char *operation)
{
	uint64_t n = 0;

	pthread_mutex_lock(&api->throttle_lock);
	for (int op = 0; op < API_OP__COUNT; op++)
		if (operation == NULL || strcmp(api_op_name((api_op)op), operation) == 0)
			n += api->buckets[op].refused;
	pthread_mutex_unlock(&api->throttle_lock);
	return n;
}
