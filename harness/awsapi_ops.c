/*
 * The AWS IoT operations: one table gives each operation's method, path,
 * query string and body as in AWS's REST API (the botocore "iot" and
 * "iot-data" models), and awsapi_run builds and sends any of them.
 * Responses are parsed with jansson.
 */
#include <assert.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/awsapi.h"
#include "harness/awsapi_internal.h"

#define PAGE_SIZE "250" /* the largest pageSize AWS accepts for these lists */
#define PAGES_MAX 10000 /* guards against a server that repeats a marker forever */

const char *awsapi_bool_text(int v)
{
	return v ? "true" : "false";
}

pl_err awsapi_encode_segment(awsapi_op op, const char *what, const char *name, char *buf,
			     size_t len, pl_errmsg *e)
{
	if (name == NULL || name[0] == '\0')
		return pl_errmsg_set(e, PL_ERR_INVALID, "%s: %s missing", awsapi_op_name(op), what);
	if (awsapi_uri_encode(name, buf, len) != PL_OK)
		return pl_errmsg_set(e, PL_ERR_RANGE, "%s: %s longer than %zu bytes encoded",
				     awsapi_op_name(op), what, len - 1);
	return PL_OK;
}

/*
 * Runs a request whose body is the JSON object body (consumed; NULL means
 * json_pack failed for lack of memory). The response goes to *response.
 */
pl_err awsapi_execute_json(awsapi_client *c, awsapi_http *req, json_t *body, json_t **response,
			   awsapi_call *call, pl_errmsg *e)
{
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	pl_err err;

	json_decref(body);
	if (text == NULL)
		return pl_errmsg_set(e, PL_ERR_NOMEM, "%s: out of memory", awsapi_op_name(req->op));
	req->body = text;
	req->body_len = strlen(text);
	err = awsapi_execute(c, req, response, call, e);
	req->body = NULL;
	free(text);
	return err;
}

/* ---- the operation table ---- */

typedef enum arg_kind {
	ARG_NONE = 0,
	ARG_TEXT,     /* a const char * member */
	ARG_BOOL,     /* an int member, sent as "true" or "false" */
	ARG_INT,      /* an int member, sent in decimal */
	ARG_CONSTANT, /* the value in what */
} arg_kind;

/* One argument of a request and the awsapi_request member it comes from. */
typedef struct op_arg {
	const char *key;  /* query parameter or JSON member, NULL for a path segment */
	arg_kind kind;
	size_t offset;    /* of the member in awsapi_request */
	const char *what; /* names a missing text in errors, or is the ARG_CONSTANT value */
	int optional;     /* a NULL text is left out instead of rejected */
} op_arg;

/* The HTTP request of one operation, which awsapi_run builds. */
typedef struct op_route {
	const char *method;
	const char *path[3];    /* the path before, between and after the segments */
	op_arg segment[2];
	op_arg query[3];        /* in ascending key order, as the canonical query needs */
	op_arg body;            /* one JSON string member, or ARG_NONE for no JSON body */
	int payload;            /* the body is the request's payload (Publish) */
	pl_err (*check)(const awsapi_request *r, pl_errmsg *e); /* other checks, or NULL */
} op_route;

#define TEXT(key, member, what) { key, ARG_TEXT, offsetof(awsapi_request, member), what, 0 }
#define OPTIONAL(key, member) { key, ARG_TEXT, offsetof(awsapi_request, member), NULL, 1 }
#define BOOL(key, member) { key, ARG_BOOL, offsetof(awsapi_request, member), NULL, 0 }
#define INT(key, member) { key, ARG_INT, offsetof(awsapi_request, member), NULL, 0 }
#define CONSTANT(key, value) { key, ARG_CONSTANT, 0, value, 0 }
#define POLICY_NAME TEXT(NULL, policy_name, "policy name")
#define CERTIFICATE_ID TEXT(NULL, certificate_id, "certificate id")
#define DOCUMENT TEXT("policyDocument", document, "policy document")

static pl_err check_publish(const awsapi_request *r, pl_errmsg *e)
{
	if (r->qos != 0 && r->qos != 1)
		return pl_errmsg_set(e, PL_ERR_INVALID, "%s: QoS %d is not 0 or 1",
				     awsapi_op_name(r->op), r->qos);
	return PL_OK;
}

static pl_err check_client_id(const awsapi_request *r, pl_errmsg *e)
{
	if (r->client_id != NULL && r->client_id[0] == '$')
		return pl_errmsg_set(e, PL_ERR_INVALID, "%s: client id %s starts with '$'",
				     awsapi_op_name(r->op), r->client_id);
	return PL_OK;
}

static const op_route routes[AWSAPI_OP__COUNT] = {
	[AWSAPI_CREATE_POLICY] = { "POST", { "/policies/" }, { POLICY_NAME }, { { 0 } }, DOCUMENT },
	[AWSAPI_GET_POLICY] = { "GET", { "/policies/" }, { POLICY_NAME } },
	[AWSAPI_DELETE_POLICY] = { "DELETE", { "/policies/" }, { POLICY_NAME } },
	[AWSAPI_CREATE_POLICY_VERSION] = { "POST", { "/policies/", "/version" }, { POLICY_NAME },
					   { BOOL("setAsDefault", flag) }, DOCUMENT },
	[AWSAPI_SET_DEFAULT_POLICY_VERSION] = {
		"PATCH", { "/policies/", "/version/" },
		{ POLICY_NAME, TEXT(NULL, version_id, "policy version id") } },
	[AWSAPI_LIST_POLICY_VERSIONS] = { "GET", { "/policies/", "/version" }, { POLICY_NAME } },
	[AWSAPI_DELETE_POLICY_VERSION] = {
		"DELETE", { "/policies/", "/version/" },
		{ POLICY_NAME, TEXT(NULL, version_id, "policy version id") } },
	[AWSAPI_ATTACH_POLICY] = { "PUT", { "/target-policies/" }, { POLICY_NAME }, { { 0 } },
				   TEXT("target", target, "target") },
	[AWSAPI_DETACH_POLICY] = { "POST", { "/target-policies/" }, { POLICY_NAME }, { { 0 } },
				   TEXT("target", target, "target") },
	[AWSAPI_LIST_ATTACHED_POLICIES] = {
		"POST", { "/attached-policies/" }, { TEXT(NULL, target, "target") },
		{ OPTIONAL("marker", marker), CONSTANT("pageSize", PAGE_SIZE),
		  CONSTANT("recursive", "false") } },
	[AWSAPI_LIST_TARGETS_FOR_POLICY] = {
		"POST", { "/policy-targets/" }, { POLICY_NAME },
		{ OPTIONAL("marker", marker), CONSTANT("pageSize", PAGE_SIZE) } },
	[AWSAPI_CREATE_CERTIFICATE_FROM_CSR] = {
		"POST", { "/certificates" }, { { 0 } }, { BOOL("setAsActive", flag) },
		TEXT("certificateSigningRequest", csr_pem, "CSR") },
	[AWSAPI_CREATE_KEYS_AND_CERTIFICATE] = { "POST", { "/keys-and-certificate" }, { { 0 } },
						 { BOOL("setAsActive", flag) } },
	[AWSAPI_DESCRIBE_CERTIFICATE] = { "GET", { "/certificates/" }, { CERTIFICATE_ID } },
	[AWSAPI_UPDATE_CERTIFICATE] = { "PUT", { "/certificates/" }, { CERTIFICATE_ID },
					{ TEXT("newStatus", status, "new status") } },
	[AWSAPI_DELETE_CERTIFICATE] = { "DELETE", { "/certificates/" }, { CERTIFICATE_ID },
					{ BOOL("forceDelete", flag) } },
	[AWSAPI_DESCRIBE_ENDPOINT] = { "GET", { "/endpoint" }, { { 0 } },
				       { OPTIONAL("endpointType", endpoint_type) } },
	[AWSAPI_PUBLISH] = { "POST", { "/topics/" }, { TEXT(NULL, topic, "topic") },
			     { INT("qos", qos), BOOL("retain", flag) }, { 0 }, 1, check_publish },
	[AWSAPI_DELETE_CONNECTION] = {
		"DELETE", { "/connections/" }, { TEXT(NULL, client_id, "client id") },
		{ BOOL("cleanSession", flag), BOOL("preventWillMessage", prevent_will_message) },
		{ 0 }, 0, check_client_id },
};

/*
 * Returns the text of argument a of r, formatting a number into buf.
 * Returns NULL for a NULL or empty text, which a required argument rejects.
 */
static const char *arg_text(const awsapi_request *r, const op_arg *a, char *buf, size_t len)
{
	const char *member = (const char *)r + a->offset;
	const char *text;
	int value;

	switch (a->kind) {
	case ARG_TEXT:
		memcpy(&text, member, sizeof(text));
		return text != NULL && text[0] != '\0' ? text : NULL;
	case ARG_BOOL:
		memcpy(&value, member, sizeof(value));
		return awsapi_bool_text(value);
	case ARG_INT:
		memcpy(&value, member, sizeof(value));
		snprintf(buf, len, "%d", value);
		return buf;
	case ARG_CONSTANT:
		return a->what;
	default:
		return NULL;
	}
}

static pl_err missing(const awsapi_request *r, const op_arg *a, pl_errmsg *e)
{
	return pl_errmsg_set(e, PL_ERR_INVALID, "%s: %s missing", awsapi_op_name(r->op), a->what);
}

/* Starts req with the route's method and path, each segment percent-encoded. */
static pl_err build_path(const op_route *rt, const awsapi_request *r, awsapi_http *req,
			 pl_errmsg *e)
{
	char seg[2][AWSAPI_SEGMENT_MAX] = { "", "" };
	char digits[16];
	pl_err err = PL_OK;

	for (int i = 0; i < 2 && err == PL_OK && rt->segment[i].kind != ARG_NONE; i++)
		err = awsapi_encode_segment(r->op, rt->segment[i].what,
					    arg_text(r, &rt->segment[i], digits, sizeof(digits)),
					    seg[i], sizeof(seg[i]), e);
	if (err != PL_OK)
		return err;
	err = awsapi_http_init(req, r->op, rt->method, e, "%s%s%s%s%s", rt->path[0], seg[0],
			       rt->path[1] ? rt->path[1] : "", seg[1],
			       rt->path[2] ? rt->path[2] : "");
	if (rt->segment[0].kind != ARG_NONE)
		req->subject = arg_text(r, &rt->segment[0], digits, sizeof(digits));
	return err;
}

static pl_err build_query(const op_route *rt, const awsapi_request *r, awsapi_http *req,
			  pl_errmsg *e)
{
	pl_err err = PL_OK;

	for (size_t i = 0; i < 3 && err == PL_OK && rt->query[i].key != NULL; i++) {
		char digits[16];
		const char *value = arg_text(r, &rt->query[i], digits, sizeof(digits));

		if (value != NULL)
			err = awsapi_http_query(req, rt->query[i].key, value, e);
		else if (!rt->query[i].optional)
			err = missing(r, &rt->query[i], e);
	}
	return err;
}

/* Builds the JSON body {"<key>": <text>}, or leaves *body NULL for a route without one. */
static pl_err build_body(const op_route *rt, const awsapi_request *r, json_t **body,
			 pl_errmsg *e)
{
	char digits[16];
	const char *value;

	*body = NULL;
	if (rt->body.kind == ARG_NONE)
		return PL_OK;
	value = arg_text(r, &rt->body, digits, sizeof(digits));
	if (value == NULL)
		return missing(r, &rt->body, e);
	*body = json_pack("{s:s}", rt->body.key, value);
	if (*body == NULL)
		return pl_errmsg_set(e, PL_ERR_NOMEM, "%s: out of memory", awsapi_op_name(r->op));
	return PL_OK;
}

pl_err awsapi_run(awsapi_client *c, const awsapi_request *r, json_t **response,
		  awsapi_call *call, pl_errmsg *e)
{
	const op_route *rt;
	awsapi_http req;
	json_t *body = NULL;
	pl_err err;

	assert((unsigned)r->op < AWSAPI_OP__COUNT);
	rt = &routes[r->op];
	err = rt->check != NULL ? rt->check(r, e) : PL_OK;
	if (err == PL_OK)
		err = build_body(rt, r, &body, e);
	if (err == PL_OK)
		err = build_path(rt, r, &req, e);
	if (err == PL_OK)
		err = build_query(rt, r, &req, e);
	if (err != PL_OK) {
		json_decref(body);
		return err;
	}
	if (body != NULL)
		return awsapi_execute_json(c, &req, body, response, call, e);
	if (rt->payload) {
		req.body = r->payload ? (const char *)r->payload : "";
		req.body_len = r->payload ? r->payload_len : 0;
		req.content_type = "application/octet-stream";
	}
	return awsapi_execute(c, &req, response, call, e);
}

/* ---- policies ---- */

void awsapi_policy_clear(awsapi_policy *p)
{
	if (p == NULL)
		return;
	free(p->document);
	memset(p, 0, sizeof(*p));
}

static pl_err fill_policy(json_t *response, const char *version_key, awsapi_policy *out,
			  awsapi_op op, pl_errmsg *e)
{
	pl_err err;

	memset(out, 0, sizeof(*out));
	err = awsapi_json_copy(response, "policyName", out->name, sizeof(out->name), op, e);
	if (err == PL_OK)
		err = awsapi_json_copy(response, "policyArn", out->arn, sizeof(out->arn), op, e);
	if (err == PL_OK)
		err = awsapi_json_copy(response, version_key, out->version_id,
				       sizeof(out->version_id), op, e);
	if (err == PL_OK)
		out->document = awsapi_json_strdup(response, "policyDocument");
	return err;
}

/* Runs CreatePolicy or GetPolicy and fills *out (when not NULL) from the response. */
static pl_err policy_call(awsapi_client *c, const awsapi_request *r, const char *version_key,
			  awsapi_policy *out, awsapi_call *call, pl_errmsg *e)
{
	json_t *response = NULL;
	pl_err err = awsapi_run(c, r, &response, call, e);

	if (err == PL_OK && out != NULL)
		err = fill_policy(response, version_key, out, r->op, e);
	json_decref(response);
	return err;
}

pl_err awsapi_create_policy(awsapi_client *c, const char *name, const char *document,
			    awsapi_policy *out, awsapi_call *call, pl_errmsg *e)
{
	const awsapi_request r = { .op = AWSAPI_CREATE_POLICY, .policy_name = name,
				   .document = document };

	return policy_call(c, &r, "policyVersionId", out, call, e);
}

pl_err awsapi_get_policy(awsapi_client *c, const char *name, awsapi_policy *out,
			 awsapi_call *call, pl_errmsg *e)
{
	const awsapi_request r = { .op = AWSAPI_GET_POLICY, .policy_name = name };

	return policy_call(c, &r, "defaultVersionId", out, call, e);
}

pl_err awsapi_delete_policy(awsapi_client *c, const char *name, awsapi_call *call,
			    pl_errmsg *e)
{
	const awsapi_request r = { .op = AWSAPI_DELETE_POLICY, .policy_name = name };

	return awsapi_run(c, &r, NULL, call, e);
}

pl_err awsapi_create_policy_version(awsapi_client *c, const char *name, const char *document,
				    int set_as_default, char *version_id, size_t version_id_len,
				    awsapi_call *call, pl_errmsg *e)
{
	const awsapi_request r = { .op = AWSAPI_CREATE_POLICY_VERSION, .policy_name = name,
				   .document = document, .flag = set_as_default };
	json_t *response = NULL;
	pl_err err = awsapi_run(c, &r, &response, call, e);

	if (err == PL_OK && version_id != NULL)
		err = awsapi_json_copy(response, "policyVersionId", version_id, version_id_len,
				       r.op, e);
	json_decref(response);
	return err;
}

pl_err awsapi_set_default_policy_version(awsapi_client *c, const char *name,
					 const char *version_id, awsapi_call *call, pl_errmsg *e)
{
	const awsapi_request r = { .op = AWSAPI_SET_DEFAULT_POLICY_VERSION, .policy_name = name,
				   .version_id = version_id };

	return awsapi_run(c, &r, NULL, call, e);
}

pl_err awsapi_delete_policy_version(awsapi_client *c, const char *name, const char *version_id,
				    awsapi_call *call, pl_errmsg *e)
{
	const awsapi_request r = { .op = AWSAPI_DELETE_POLICY_VERSION, .policy_name = name,
				   .version_id = version_id };

	return awsapi_run(c, &r, NULL, call, e);
}

static pl_err parse_versions(json_t *response, awsapi_policy_version **out, size_t *count,
			     pl_errmsg *e)
{
	const awsapi_op op = AWSAPI_LIST_POLICY_VERSIONS;
	json_t *list = json_object_get(response, "policyVersions");
	awsapi_policy_version *v;
	size_t i;
	json_t *item;

	if (!json_is_array(list))
		return pl_errmsg_set(e, PL_ERR_PROTOCOL, "%s: response has no \"policyVersions\" array",
				     awsapi_op_name(op));
	v = calloc(json_array_size(list) + 1, sizeof(*v));
	if (v == NULL)
		return pl_errmsg_set(e, PL_ERR_NOMEM, "%s: out of memory", awsapi_op_name(op));
	json_array_foreach(list, i, item) {
		pl_err err = awsapi_json_copy(item, "versionId", v[i].version_id,
					      sizeof(v[i].version_id), op, e);

		if (err != PL_OK) {
			free(v);
			return err;
		}
		v[i].is_default = json_is_true(json_object_get(item, "isDefaultVersion"));
		v[i].create_date = json_number_value(json_object_get(item, "createDate"));
	}
	*out = v;
	*count = json_array_size(list);
	return PL_OK;
}

pl_err awsapi_list_policy_versions(awsapi_client *c, const char *name,
				   awsapi_policy_version **out, size_t *count,
				   awsapi_call *call, pl_errmsg *e)
{
	const awsapi_request r = { .op = AWSAPI_LIST_POLICY_VERSIONS, .policy_name = name };
	json_t *response = NULL;
	pl_err err;

	*out = NULL;
	*count = 0;
	err = awsapi_run(c, &r, &response, call, e);
	if (err == PL_OK)
		err = parse_versions(response, out, count, e);
	json_decref(response);
	return err;
}

/* ---- attachments ---- */

pl_err awsapi_attach_policy(awsapi_client *c, const char *name, const char *target,
			    awsapi_call *call, pl_errmsg *e)
{
	const awsapi_request r = { .op = AWSAPI_ATTACH_POLICY, .policy_name = name,
				   .target = target };

	return awsapi_run(c, &r, NULL, call, e);
}

pl_err awsapi_detach_policy(awsapi_client *c, const char *name, const char *target,
			    awsapi_call *call, pl_errmsg *e)
{
	const awsapi_request r = { .op = AWSAPI_DETACH_POLICY, .policy_name = name,
				   .target = target };

	return awsapi_run(c, &r, NULL, call, e);
}

void awsapi_strlist_clear(awsapi_strlist *l)
{
	if (l == NULL)
		return;
	for (size_t i = 0; i < l->count; i++)
		free(l->items[i]);
	free(l->items);
	l->items = NULL;
	l->count = 0;
}

static pl_err strlist_push(awsapi_strlist *l, const char *s)
{
	char **items = realloc(l->items, (l->count + 1) * sizeof(*items));

	if (items == NULL)
		return PL_ERR_NOMEM;
	l->items = items;
	l->items[l->count] = strdup(s);
	if (l->items[l->count] == NULL)
		return PL_ERR_NOMEM;
	l->count++;
	return PL_OK;
}

/* Appends the strings (or objects' member_key strings) of response[array_key] to out. */
static pl_err collect_page(json_t *response, const char *array_key, const char *member_key,
			   awsapi_strlist *out, awsapi_op op, pl_errmsg *e)
{
	json_t *list = json_object_get(response, array_key);
	json_t *item;
	size_t i;

	if (!json_is_array(list))
		return pl_errmsg_set(e, PL_ERR_PROTOCOL, "%s: response has no \"%s\" array",
				     awsapi_op_name(op), array_key);
	json_array_foreach(list, i, item) {
		json_t *v = member_key ? json_object_get(item, member_key) : item;

		if (!json_is_string(v))
			return pl_errmsg_set(e, PL_ERR_PROTOCOL, "%s: item %zu of \"%s\" is not valid",
					     awsapi_op_name(op), i, array_key);
		if (strlist_push(out, json_string_value(v)) != PL_OK)
			return pl_errmsg_set(e, PL_ERR_NOMEM, "%s: out of memory",
					     awsapi_op_name(op));
	}
	return PL_OK;
}

/* The response array of a paginated list operation. */
typedef struct list_spec {
	const char *array_key;
	const char *member_key;  /* NULL: the array contains strings */
} list_spec;

/* Runs the list request r page by page, marker by marker, collecting every page. */
static pl_err list_all(awsapi_client *c, awsapi_request *r, const list_spec *spec,
		       awsapi_strlist *out, awsapi_call *call, pl_errmsg *e)
{
	char *marker = NULL;
	pl_err err = PL_OK;

	out->items = NULL;
	out->count = 0;
	for (int page = 0; err == PL_OK; page++) {
		json_t *response = NULL;
		const char *next;

		if (page == PAGES_MAX) {
			err = pl_errmsg_set(e, PL_ERR_PROTOCOL, "%s: more than %d pages",
					    awsapi_op_name(r->op), PAGES_MAX);
			break;
		}
		r->marker = marker;
		err = awsapi_run(c, r, &response, call, e);
		if (err == PL_OK)
			err = collect_page(response, spec->array_key, spec->member_key, out, r->op, e);
		next = json_string_value(json_object_get(response, "nextMarker"));
		free(marker);
		marker = next && next[0] ? strdup(next) : NULL;
		json_decref(response);
		if (marker == NULL)
			break;
	}
	free(marker);
	if (err != PL_OK)
		awsapi_strlist_clear(out);
	return err;
}

pl_err awsapi_list_attached_policies(awsapi_client *c, const char *target, awsapi_strlist *out,
				     awsapi_call *call, pl_errmsg *e)
{
	static const list_spec spec = { "policies", "policyName" };
	awsapi_request r = { .op = AWSAPI_LIST_ATTACHED_POLICIES, .target = target };

	return list_all(c, &r, &spec, out, call, e);
}

pl_err awsapi_list_targets_for_policy(awsapi_client *c, const char *name, awsapi_strlist *out,
				      awsapi_call *call, pl_errmsg *e)
{
	static const list_spec spec = { "targets", NULL };
	awsapi_request r = { .op = AWSAPI_LIST_TARGETS_FOR_POLICY, .policy_name = name };

	return list_all(c, &r, &spec, out, call, e);
}
