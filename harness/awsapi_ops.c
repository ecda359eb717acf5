/*
 * The AWS IoT operations: paths, query strings and bodies as in AWS's REST
 * API (the botocore "iot" and "iot-data" models), responses parsed with jansson.
 */
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

pl_err awsapi_create_policy(awsapi_client *c, const char *name, const char *document,
			    awsapi_policy *out, awsapi_call *call, pl_errmsg *e)
{
	const awsapi_op op = AWSAPI_CREATE_POLICY;
	char seg[AWSAPI_SEGMENT_MAX];
	awsapi_http req;
	json_t *response = NULL;
	pl_err err = awsapi_encode_segment(op, "policy name", name, seg, sizeof(seg), e);

	if (err == PL_OK)
		err = awsapi_http_init(&req, op, "POST", e, "/policies/%s", seg);
	if (err != PL_OK)
		return err;
	req.subject = name;
	err = awsapi_execute_json(c, &req, json_pack("{s:s}", "policyDocument", document ? document : ""),
			   &response, call, e);
	if (err == PL_OK && out != NULL)
		err = fill_policy(response, "policyVersionId", out, op, e);
	json_decref(response);
	return err;
}

pl_err awsapi_get_policy(awsapi_client *c, const char *name, awsapi_policy *out,
			 awsapi_call *call, pl_errmsg *e)
{
	const awsapi_op op = AWSAPI_GET_POLICY;
	char seg[AWSAPI_SEGMENT_MAX];
	awsapi_http req;
	json_t *response = NULL;
	pl_err err = awsapi_encode_segment(op, "policy name", name, seg, sizeof(seg), e);

	if (err == PL_OK)
		err = awsapi_http_init(&req, op, "GET", e, "/policies/%s", seg);
	if (err != PL_OK)
		return err;
	req.subject = name;
	err = awsapi_execute(c, &req, &response, call, e);
	if (err == PL_OK && out != NULL)
		err = fill_policy(response, "defaultVersionId", out, op, e);
	json_decref(response);
	return err;
}

/* A request with no body and no response: op, method, path "/prefix/<name>[/suffix]". */
static pl_err simple_call(awsapi_client *c, awsapi_http *req, awsapi_call *call, pl_errmsg *e)
{
	return awsapi_execute(c, req, NULL, call, e);
}

pl_err awsapi_delete_policy(awsapi_client *c, const char *name, awsapi_call *call,
			    pl_errmsg *e)
{
	const awsapi_op op = AWSAPI_DELETE_POLICY;
	char seg[AWSAPI_SEGMENT_MAX];
	awsapi_http req;
	pl_err err = awsapi_encode_segment(op, "policy name", name, seg, sizeof(seg), e);

	if (err == PL_OK)
		err = awsapi_http_init(&req, op, "DELETE", e, "/policies/%s", seg);
	if (err != PL_OK)
		return err;
	req.subject = name;
	return simple_call(c, &req, call, e);
}

pl_err awsapi_create_policy_version(awsapi_client *c, const char *name, const char *document,
				    int set_as_default, char *version_id, size_t version_id_len,
				    awsapi_call *call, pl_errmsg *e)
{
	const awsapi_op op = AWSAPI_CREATE_POLICY_VERSION;
	char seg[AWSAPI_SEGMENT_MAX];
	awsapi_http req;
	json_t *response = NULL;
	pl_err err = awsapi_encode_segment(op, "policy name", name, seg, sizeof(seg), e);

	if (err == PL_OK)
		err = awsapi_http_init(&req, op, "POST", e, "/policies/%s/version", seg);
	if (err == PL_OK)
		err = awsapi_http_query(&req, "setAsDefault", awsapi_bool_text(set_as_default), e);
	if (err != PL_OK)
		return err;
	req.subject = name;
	err = awsapi_execute_json(c, &req, json_pack("{s:s}", "policyDocument", document ? document : ""),
			   &response, call, e);
	if (err == PL_OK && version_id != NULL)
		err = awsapi_json_copy(response, "policyVersionId", version_id, version_id_len, op, e);
	json_decref(response);
	return err;
}

/* PATCH or DELETE /policies/{name}/version/{versionId}. */
static pl_err version_call(awsapi_client *c, awsapi_op op, const char *method, const char *name,
			   const char *version_id, awsapi_call *call, pl_errmsg *e)
{
	char seg[AWSAPI_SEGMENT_MAX], ver[64];
	awsapi_http req;
	pl_err err = awsapi_encode_segment(op, "policy name", name, seg, sizeof(seg), e);

	if (err == PL_OK)
		err = awsapi_encode_segment(op, "policy version id", version_id, ver, sizeof(ver), e);
	if (err == PL_OK)
		err = awsapi_http_init(&req, op, method, e, "/policies/%s/version/%s", seg, ver);
	if (err != PL_OK)
		return err;
	req.subject = name;
	return simple_call(c, &req, call, e);
}

pl_err awsapi_set_default_policy_version(awsapi_client *c, const char *name,
					 const char *version_id, awsapi_call *call, pl_errmsg *e)
{
	return version_call(c, AWSAPI_SET_DEFAULT_POLICY_VERSION, "PATCH", name, version_id, call,
			    e);
}

pl_err awsapi_delete_policy_version(awsapi_client *c, const char *name, const char *version_id,
				    awsapi_call *call, pl_errmsg *e)
{
	return version_call(c, AWSAPI_DELETE_POLICY_VERSION, "DELETE", name, version_id, call, e);
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
	const awsapi_op op = AWSAPI_LIST_POLICY_VERSIONS;
	char seg[AWSAPI_SEGMENT_MAX];
	awsapi_http req;
	json_t *response = NULL;
	pl_err err = awsapi_encode_segment(op, "policy name", name, seg, sizeof(seg), e);

	*out = NULL;
	*count = 0;
	if (err == PL_OK)
		err = awsapi_http_init(&req, op, "GET", e, "/policies/%s/version", seg);
	if (err != PL_OK)
		return err;
	req.subject = name;
	err = awsapi_execute(c, &req, &response, call, e);
	if (err == PL_OK)
		err = parse_versions(response, out, count, e);
	json_decref(response);
	return err;
}

/* ---- attachments ---- */

/* PUT (attach) or POST (detach) /target-policies/{name} with {"target": ...}. */
static pl_err target_call(awsapi_client *c, awsapi_op op, const char *method, const char *name,
			  const char *target, awsapi_call *call, pl_errmsg *e)
{
	char seg[AWSAPI_SEGMENT_MAX];
	awsapi_http req;
	pl_err err = awsapi_encode_segment(op, "policy name", name, seg, sizeof(seg), e);

	if (err == PL_OK && (target == NULL || target[0] == '\0'))
		err = pl_errmsg_set(e, PL_ERR_INVALID, "%s: target missing", awsapi_op_name(op));
	if (err == PL_OK)
		err = awsapi_http_init(&req, op, method, e, "/target-policies/%s", seg);
	if (err != PL_OK)
		return err;
	req.subject = name;
	return awsapi_execute_json(c, &req, json_pack("{s:s}", "target", target), NULL, call, e);
}

pl_err awsapi_attach_policy(awsapi_client *c, const char *name, const char *target,
			    awsapi_call *call, pl_errmsg *e)
{
	return target_call(c, AWSAPI_ATTACH_POLICY, "PUT", name, target, call, e);
}

pl_err awsapi_detach_policy(awsapi_client *c, const char *name, const char *target,
			    awsapi_call *call, pl_errmsg *e)
{
	return target_call(c, AWSAPI_DETACH_POLICY, "POST", name, target, call, e);
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

/* Describes one paginated list operation. */
typedef struct list_spec {
	awsapi_op op;
	const char *path_prefix; /* "/attached-policies/" */
	const char *array_key;
	const char *member_key;  /* NULL: the array contains strings */
	int recursive_param;     /* sends recursive=false */
} list_spec;

static pl_err list_page(awsapi_client *c, const list_spec *spec, const char *seg,
			const char *subject, const char *marker, json_t **response,
			awsapi_call *call, pl_errmsg *e)
{
	awsapi_http req;
	pl_err err = awsapi_http_init(&req, spec->op, "POST", e, "%s%s", spec->path_prefix, seg);

	if (err == PL_OK && marker != NULL)
		err = awsapi_http_query(&req, "marker", marker, e);
	if (err == PL_OK)
		err = awsapi_http_query(&req, "pageSize", PAGE_SIZE, e);
	if (err == PL_OK && spec->recursive_param)
		err = awsapi_http_query(&req, "recursive", "false", e);
	if (err != PL_OK)
		return err;
	req.subject = subject;
	return awsapi_execute(c, &req, response, call, e);
}

static pl_err list_all(awsapi_client *c, const list_spec *spec, const char *subject,
		       awsapi_strlist *out, awsapi_call *call, pl_errmsg *e)
{
	char seg[AWSAPI_SEGMENT_MAX], *marker = NULL;
	pl_err err = awsapi_encode_segment(spec->op, "name", subject, seg, sizeof(seg), e);

	out->items = NULL;
	out->count = 0;
	for (int page = 0; err == PL_OK; page++) {
		json_t *response = NULL;
		const char *next;

		if (page == PAGES_MAX) {
			err = pl_errmsg_set(e, PL_ERR_PROTOCOL, "%s: more than %d pages",
					    awsapi_op_name(spec->op), PAGES_MAX);
			break;
		}
		err = list_page(c, spec, seg, subject, marker, &response, call, e);
		if (err == PL_OK)
			err = collect_page(response, spec->array_key, spec->member_key, out, spec->op, e);
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
	static const list_spec spec = { AWSAPI_LIST_ATTACHED_POLICIES, "/attached-policies/",
					"policies", "policyName", 1 };

	return list_all(c, &spec, target, out, call, e);
}

pl_err awsapi_list_targets_for_policy(awsapi_client *c, const char *name, awsapi_strlist *out,
				      awsapi_call *call, pl_errmsg *e)
{
	static const list_spec spec = { AWSAPI_LIST_TARGETS_FOR_POLICY, "/policy-targets/",
					"targets", NULL, 0 };

	return list_all(c, &spec, name, out, call, e);
}
