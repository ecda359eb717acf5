/* Policy, policy-version and attachment operations of the control plane. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simulator/api_internal.h"
#include "simulator/state.h"

/*
 * Checks that a document is a JSON object before the store compiles it, so
 * that a document that is not JSON gets the JSON parser's message.
 */
static int document_valid(api_response *res, const char *doc)
{
	json_error_t jerr;
	json_t *obj = json_loads(doc, JSON_REJECT_DUPLICATES, &jerr);
	int ok = obj != NULL && json_is_object(obj);

	json_decref(obj);
	if (!ok)
		api_error(res, 400, "MalformedPolicyException",
			  "Policy document is malformed: %s", obj == NULL ? jerr.text : "not an object");
	return ok;
}

/* Reads {"policyDocument": "..."} from the body; 0 with an error set. */
static int read_document(const api_request *req, api_response *res, json_t **body,
			 const char **doc)
{
	if (!api_body_object(req, res, body))
		return 0;
	if (!api_member_string(*body, res, "policyDocument", 1, doc) || !document_valid(res, *doc)) {
		json_decref(*body);
		return 0;
	}
	return 1;
}

/* Store errors for policy documents: the compiler's refusals are malformed policies. */
static void document_error(api_response *res, pl_err err, const pl_errmsg *e)
{
	if (err == PL_ERR_PARSE || err == PL_ERR_LIMIT || err == PL_ERR_UNSUPPORTED ||
	    err == PL_ERR_INVALID)
		api_error(res, 400, "MalformedPolicyException", "%s", e->msg);
	else
		api_store_error(res, err, e, "ResourceAlreadyExistsException");
}

static sim_policy_rec *find_policy(sim_api *api, api_response *res, const char *name)
{
	sim_policy_rec *p = sim_state_policy_find(api->state, name);

	if (p == NULL)
		api_error(res, 404, "ResourceNotFoundException", "Policy not found (name=%s)", name);
	return p;
}

void api_create_policy(sim_api *api, const api_request *req, api_response *res)
{
	const char *name = req->segments[1], *doc;
	json_t *body;
	sim_policy_rec *p;
	pl_errmsg e;
	pl_err err;

	if (!api_check_policy_name(res, name) || !read_document(req, res, &body, &doc))
		return;
	pl_errmsg_clear(&e);
	sim_state_lock(api->state);
	if (sim_state_policy_find(api->state, name) != NULL) {
		char arn[512];
		sim_state_arn(api->state, "policy", name, arn, sizeof(arn));
		api_error_exists(res, "Policy cannot be created - name already exists", name, arn);
		goto out;
	}
	err = sim_state_policy_create(api->state, name, doc, &p, &e);
	if (err != PL_OK) {
		document_error(res, err, &e);
		goto out;
	}
	if (api_save(api, res))
		api_json(res, json_pack("{s:s,s:s,s:s,s:s}", "policyName", p->name, "policyArn",
					p->arn, "policyDocument", sim_doc_text(p->versions[0].doc),
					"policyVersionId", p->versions[0].id));
out:
	sim_state_unlock(api->state);
	json_decref(body);
}

static json_t *policy_json(const sim_policy_rec *p)
{
	const sim_policy_version *v = &p->versions[p->default_index];

	return json_pack("{s:s,s:s,s:s,s:s,s:o,s:o,s:s}", "policyName", p->name, "policyArn",
			 p->arn, "policyDocument", sim_doc_text(v->doc), "defaultVersionId", v->id,
			 "creationDate", api_time(p->create_ms), "lastModifiedDate",
			 api_time(p->modify_ms), "generationId", p->generation_id);
}

void api_get_policy(sim_api *api, const api_request *req, api_response *res)
{
	const char *name = req->segments[1];
	sim_policy_rec *p;

	if (!api_check_policy_name(res, name))
		return;
	sim_state_lock(api->state);
	p = find_policy(api, res, name);
	if (p != NULL)
		api_json(res, policy_json(p));
	sim_state_unlock(api->state);
}

void api_list_policies(sim_api *api, const api_request *req, api_response *res)
{
	size_t start, size, total, i;
	int ascending;
	json_t *list, *obj;

	if (!api_page(req, res, "marker", "pageSize", &start, &size) ||
	    !api_query_bool(req, res, "isAscendingOrder", 1, &ascending))
		return;
	list = json_array();
	sim_state_lock(api->state);
	total = sim_state_policy_count(api->state);
	for (i = start; i < total && i < start + size; i++) {
		/* The store keeps creation order, which is AWS's ascending order. */
		sim_policy_rec *p = sim_state_policy_at(api->state, ascending ? i : total - 1 - i);
		json_array_append_new(list, json_pack("{s:s,s:s}", "policyName", p->name,
						      "policyArn", p->arn));
	}
	sim_state_unlock(api->state);
	obj = json_pack("{s:o}", "policies", list);
	api_page_marker(obj, "nextMarker", i, total);
	api_json(res, obj);
}

void api_delete_policy(sim_api *api, const api_request *req, api_response *res)
{
	const char *name = req->segments[1];
	pl_errmsg e;
	pl_err err;

	if (!api_check_policy_name(res, name))
		return;
	pl_errmsg_clear(&e);
	sim_state_lock(api->state);
	if (find_policy(api, res, name) != NULL) {
		err = sim_state_policy_delete(api->state, name, &e);
		if (err != PL_OK)
			api_store_error(res, err, &e, "DeleteConflictException");
		else if (api_save(api, res))
			api_json(res, NULL);
	}
	sim_state_unlock(api->state);
}

void api_create_policy_version(sim_api *api, const api_request *req, api_response *res)
{
	const char *name = req->segments[1], *doc;
	int set_default;
	json_t *body;
	sim_policy_version *v;
	pl_errmsg e;
	pl_err err;

	if (!api_check_policy_name(res, name) ||
	    !api_query_bool(req, res, "setAsDefault", 0, &set_default) ||
	    !read_document(req, res, &body, &doc))
		return;
	pl_errmsg_clear(&e);
	sim_state_lock(api->state);
	if (find_policy(api, res, name) == NULL)
		goto out;
	err = sim_state_policy_version_create(api->state, name, doc, set_default, &v, &e);
	if (err == PL_ERR_LIMIT) {
		api_error(res, 409, "VersionsLimitExceededException",
			  "The policy %s already has the maximum number of versions (5)", name);
		goto out;
	}
	if (err != PL_OK) {
		document_error(res, err, &e);
		goto out;
	}
	if (api_save(api, res)) {
		sim_policy_rec *p = sim_state_policy_find(api->state, name);
		api_json(res, json_pack("{s:s,s:s,s:s,s:b}", "policyArn", p->arn, "policyDocument",
					sim_doc_text(v->doc), "policyVersionId", v->id,
					"isDefaultVersion", set_default));
	}
out:
	sim_state_unlock(api->state);
	json_decref(body);
}

void api_set_default_policy_version(sim_api *api, const api_request *req, api_response *res)
{
	const char *name = req->segments[1], *vid = req->segments[3];
	pl_errmsg e;
	pl_err err;

	if (!api_check_policy_name(res, name) || !api_check_version_id(res, vid))
		return;
	pl_errmsg_clear(&e);
	sim_state_lock(api->state);
	if (find_policy(api, res, name) != NULL) {
		err = sim_state_policy_set_default(api->state, name, vid, &e);
		if (err != PL_OK)
			api_store_error(res, err, &e, "DeleteConflictException");
		else if (api_save(api, res))
			api_json(res, NULL);
	}
	sim_state_unlock(api->state);
}

void api_list_policy_versions(sim_api *api, const api_request *req, api_response *res)
{
	const char *name = req->segments[1];
	sim_policy_rec *p;

	if (!api_check_policy_name(res, name))
		return;
	sim_state_lock(api->state);
	p = find_policy(api, res, name);
	if (p != NULL) {
		json_t *list = json_array();
		for (size_t i = 0; i < p->version_count; i++)
			json_array_append_new(
				list, json_pack("{s:s,s:b,s:o}", "versionId", p->versions[i].id,
						"isDefaultVersion", i == p->default_index,
						"createDate", api_time(p->versions[i].create_ms)));
		api_json(res, json_pack("{s:o}", "policyVersions", list));
	}
	sim_state_unlock(api->state);
}

static sim_policy_version *find_version(api_response *res, sim_policy_rec *p, const char *vid)
{
	sim_policy_version *v = sim_state_policy_version_find(p, vid);

	if (v == NULL)
		api_error(res, 404, "ResourceNotFoundException",
			  "Policy version not found (name=%s, versionId=%s)", p->name, vid);
	return v;
}

void api_get_policy_version(sim_api *api, const api_request *req, api_response *res)
{
	const char *name = req->segments[1], *vid = req->segments[3];
	sim_policy_rec *p;
	sim_policy_version *v;

	if (!api_check_policy_name(res, name) || !api_check_version_id(res, vid))
		return;
	sim_state_lock(api->state);
	p = find_policy(api, res, name);
	v = p != NULL ? find_version(res, p, vid) : NULL;
	if (v != NULL)
		api_json(res, json_pack("{s:s,s:s,s:s,s:s,s:b,s:o,s:o,s:s}", "policyArn", p->arn,
					"policyName", p->name, "policyDocument",
					sim_doc_text(v->doc), "policyVersionId", v->id,
					"isDefaultVersion", v == &p->versions[p->default_index],
					"creationDate", api_time(v->create_ms), "lastModifiedDate",
					api_time(v->create_ms), "generationId", p->generation_id));
	sim_state_unlock(api->state);
}

void api_delete_policy_version(sim_api *api, const api_request *req, api_response *res)
{
	const char *name = req->segments[1], *vid = req->segments[3];
	sim_policy_rec *p;
	pl_errmsg e;
	pl_err err;

	if (!api_check_policy_name(res, name) || !api_check_version_id(res, vid))
		return;
	pl_errmsg_clear(&e);
	sim_state_lock(api->state);
	p = find_policy(api, res, name);
	if (p != NULL && find_version(res, p, vid) != NULL) {
		/* NOTE: AWS's error type for deleting the default version is not documented;
		 * DeleteConflictException (409) is assumed. */
		err = sim_state_policy_version_delete(api->state, name, vid, &e);
		if (err != PL_OK)
			api_store_error(res, err, &e, "DeleteConflictException");
		else if (api_save(api, res))
			api_json(res, NULL);
	}
	sim_state_unlock(api->state);
}

/* Attach (attach != 0) or detach the policy named in the path to body.target. */
static void change_attachment(sim_api *api, const api_request *req, api_response *res,
			      int attach)
{
	const char *name = req->segments[1], *target;
	json_t *body;
	pl_errmsg e;
	pl_err err;

	if (!api_check_policy_name(res, name) || !api_body_object(req, res, &body))
		return;
	if (!api_member_string(body, res, "target", 1, &target))
		goto out_body;
	pl_errmsg_clear(&e);
	sim_state_lock(api->state);
	if (find_policy(api, res, name) == NULL)
		goto out;
	err = attach ? sim_state_attach(api->state, name, target, &e)
		     : sim_state_detach(api->state, name, target, &e);
	if (err == PL_ERR_LIMIT)
		api_error(res, 410, "LimitExceededException",
			  "The target already has the maximum number of attached policies (10)");
	else if (err != PL_OK)
		api_store_error(res, err, &e, "ResourceAlreadyExistsException");
	else if (api_save(api, res))
		api_json(res, NULL);
out:
	sim_state_unlock(api->state);
out_body:
	json_decref(body);
}

void api_attach_policy(sim_api *api, const api_request *req, api_response *res)
{
	change_attachment(api, req, res, 1);
}

void api_detach_policy(sim_api *api, const api_request *req, api_response *res)
{
	change_attachment(api, req, res, 0);
}

void api_list_attached_policies(sim_api *api, const api_request *req, api_response *res)
{
	const char *target = req->rest_after_first;
	size_t start, size, i = 0, total = 0;
	sim_attachments *att;
	int recursive;
	json_t *list, *obj;

	if (target == NULL || !api_page(req, res, "marker", "pageSize", &start, &size) ||
	    !api_query_bool(req, res, "recursive", 0, &recursive)) {
		if (target == NULL)
			api_error(res, 400, "InvalidRequestException", "The target is missing");
		return;
	}
	list = json_array();
	sim_state_lock(api->state);
	att = sim_state_target_policies(api->state, target);
	if (att == NULL) {
		api_error(res, 404, "ResourceNotFoundException", "Target not found (target=%s)",
			  target);
		json_decref(list);
		goto out;
	}
	total = att->count;
	for (i = start; i < total && i < start + size; i++) {
		char arn[512];
		sim_state_arn(api->state, "policy", att->names[i], arn, sizeof(arn));
		json_array_append_new(list, json_pack("{s:s,s:s}", "policyName", att->names[i],
						      "policyArn", arn));
	}
	obj = json_pack("{s:o}", "policies", list);
	api_page_marker(obj, "nextMarker", i, total);
	api_json(res, obj);
out:
	sim_state_unlock(api->state);
}

typedef struct target_list {
	json_t *list;
	size_t index;
	size_t start;
	size_t size;
} target_list;

static void add_target(void *ctx, const char *target_arn)
{
	target_list *t = ctx;

	if (t->index >= t->start && t->index < t->start + t->size)
		json_array_append_new(t->list, json_string(target_arn));
	t->index++;
}

void api_list_targets_for_policy(sim_api *api, const api_request *req, api_response *res)
{
	const char *name = req->segments[1];
	target_list t;
	json_t *obj;

	if (!api_check_policy_name(res, name) ||
	    !api_page(req, res, "marker", "pageSize", &t.start, &t.size))
		return;
	t.list = json_array();
	t.index = 0;
	sim_state_lock(api->state);
	if (find_policy(api, res, name) == NULL) {
		json_decref(t.list);
	} else {
		sim_state_policy_targets(api->state, name, add_target, &t);
		obj = json_pack("{s:o}", "targets", t.list);
		api_page_marker(obj, "nextMarker", t.start + t.size, t.index);
		api_json(res, obj);
	}
	sim_state_unlock(api->state);
}
