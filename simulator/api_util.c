/* Response, parameter and name helpers shared by the API handlers. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/parse.h"
#include "simulator/api_internal.h"
#include "simulator/state.h"

static void set_body(api_response *res, json_t *obj)
{
	free(res->body);
	res->body = json_dumps(obj, JSON_COMPACT);
	res->body_len = res->body != NULL ? strlen(res->body) : 0;
	json_decref(obj);
}

void api_error(api_response *res, unsigned status, const char *type, const char *fmt, ...)
{
	char message[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	res->status = status;
	res->error_type = type;
	set_body(res, json_pack("{s:s}", "message", message));
}

void api_error_exists(api_response *res, const char *message, const char *id, const char *arn)
{
	res->status = 409;
	res->error_type = "ResourceAlreadyExistsException";
	set_body(res, json_pack("{s:s,s:s,s:s}", "message", message, "resourceId", id,
				"resourceArn", arn));
}

void api_error_validation(api_response *res, const char *member, const char *value,
			  const char *constraint)
{
	/* AWS's request validation wording, so that SDK users see familiar text. */
	api_error(res, 400, "InvalidRequestException",
		  "1 validation error detected: Value '%.200s' at '%s' failed to satisfy "
		  "constraint: %s",
		  value, member, constraint);
}

void api_json(api_response *res, json_t *obj)
{
	res->status = 200;
	res->error_type = NULL;
	if (obj == NULL) {
		free(res->body);
		res->body = NULL;
		res->body_len = 0;
		return;
	}
	set_body(res, obj);
}

const char *api_query(const api_request *req, const char *key)
{
	for (size_t i = 0; i < req->query_count; i++)
		if (strcmp(req->query[i].key, key) == 0)
			return req->query[i].value;
	return NULL;
}

int api_query_bool(const api_request *req, api_response *res, const char *key, int def,
		   int *out)
{
	const char *v = api_query(req, key);

	if (v == NULL) {
		*out = def;
		return 1;
	}
	if (strcmp(v, "true") == 0 || strcmp(v, "false") == 0) {
		*out = v[0] == 't';
		return 1;
	}
	api_error(res, 400, "InvalidRequestException",
		  "Invalid value '%.100s' for query parameter %s: expected true or false", v, key);
	return 0;
}

int api_body_object(const api_request *req, api_response *res, json_t **out)
{
	json_error_t jerr;
	json_t *obj;

	if (req->body_len == 0) {
		api_error(res, 400, "InvalidRequestException", "The request body is missing");
		return 0;
	}
	obj = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
	if (obj == NULL || !json_is_object(obj)) {
		json_decref(obj);
		api_error(res, 400, "InvalidRequestException",
			  "The request body is not a valid JSON object");
		return 0;
	}
	*out = obj;
	return 1;
}

int api_member_string(json_t *obj, api_response *res, const char *member, int required,
		      const char **out)
{
	json_t *v = json_object_get(obj, member);

	*out = NULL;
	if (v == NULL || json_is_null(v)) {
		if (!required)
			return 1;
		api_error_validation(res, member, "null", "Member must not be null");
		return 0;
	}
	if (!json_is_string(v)) {
		api_error(res, 400, "InvalidRequestException",
			  "Member %s must be a string", member);
		return 0;
	}
	*out = json_string_value(v);
	return 1;
}

/* 1 when every byte of s is in the class chars or is alphanumeric/underscore (when word). */
static int only_chars(const char *s, int word, const char *chars)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (word && (isalnum(c) || c == '_'))
			continue;
		if (strchr(chars, c) == NULL)
			return 0;
	}
	return 1;
}

int api_check_policy_name(api_response *res, const char *name)
{
	size_t len = strlen(name);

	if (len < 1 || len > 128) {
		api_error_validation(res, "policyName", name,
				     "Member must have length between 1 and 128");
		return 0;
	}
	if (!only_chars(name, 1, "+=,.@-")) {
		api_error_validation(res, "policyName", name,
				     "Member must satisfy regular expression pattern: [\\w+=,.@-]+");
		return 0;
	}
	return 1;
}

int api_check_thing_name(api_response *res, const char *member, const char *name)
{
	size_t len = strlen(name);

	if (len < 1 || len > 128) {
		api_error_validation(res, member, name,
				     "Member must have length between 1 and 128");
		return 0;
	}
	if (!only_chars(name, 0,
			"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:_-")) {
		api_error_validation(res, member, name,
				     "Member must satisfy regular expression pattern: "
				     "[a-zA-Z0-9:_-]+");
		return 0;
	}
	return 1;
}

int api_check_cert_id(api_response *res, const char *id)
{
	if (strlen(id) != SIM_CERT_ID_LEN) {
		api_error_validation(res, "certificateId", id,
				     "Member must have length greater than or equal to 64");
		return 0;
	}
	if (!only_chars(id, 0, "0123456789abcdefABCDEF")) {
		api_error_validation(res, "certificateId", id,
				     "Member must satisfy regular expression pattern: "
				     "(0x)?[a-fA-F0-9]+");
		return 0;
	}
	return 1;
}

int api_check_version_id(api_response *res, const char *id)
{
	if (id[0] == '\0' || strlen(id) > 20 || !only_chars(id, 0, "0123456789")) {
		api_error_validation(res, "policyVersionId", id,
				     "Member must satisfy regular expression pattern: [0-9]+");
		return 0;
	}
	return 1;
}

json_t *api_time(int64_t ms)
{
	return json_real((double)ms / 1000.0);
}

int api_save(sim_api *api, api_response *res)
{
	pl_errmsg e;

	/* The save appends one journal line and fsyncs it before the response is sent.
	 * A save that leaves the journal larger than the state file also
	 * rewrites the state file (simulator/state.h). */
	pl_errmsg_clear(&e);
	if (sim_state_save(api->state, &e) == PL_OK)
		return 1;
	PL_ERROR("api", "saving the state failed: %s", e.msg);
	api_error(res, 500, "InternalFailureException",
		  "The change could not be saved; it may be lost on restart");
	return 0;
}

int api_queue(sim_api *api, api_response *res, sim_broker_action *a)
{
	if (sim_broker_queue_push(api->queue, a) == PL_OK)
		return 1;
	sim_broker_action_clear(a);
	PL_WARN("api", "broker action queue full (%llu refused so far)",
		(unsigned long long)sim_broker_queue_dropped(api->queue));
	api_error(res, 503, "ServiceUnavailableException",
		  "The broker work queue is full; retry later");
	return 0;
}

void api_store_error(api_response *res, pl_err err, const pl_errmsg *e, const char *conflict)
{
	const char *msg = e != NULL && e->msg[0] != '\0' ? e->msg : pl_strerror(err);

	switch (err) {
	case PL_ERR_NOT_FOUND:
		api_error(res, 404, "ResourceNotFoundException", "%s", msg);
		break;
	case PL_ERR_EXISTS:
	case PL_ERR_STATE:
		api_error(res, 409, conflict, "%s", msg);
		break;
	case PL_ERR_LIMIT:
		api_error(res, 410, "LimitExceededException", "%s", msg);
		break;
	case PL_ERR_INVALID:
	case PL_ERR_PARSE:
	case PL_ERR_RANGE:
		api_error(res, 400, "InvalidRequestException", "%s", msg);
		break;
	default:
		PL_ERROR("api", "store operation failed: %s", msg);
		api_error(res, 500, "InternalFailureException", "An internal error occurred");
		break;
	}
}

int api_page(const api_request *req, api_response *res, const char *marker_key,
	     const char *size_key, size_t *start, size_t *size)
{
	const char *marker = api_query(req, marker_key);
	const char *page = api_query(req, size_key);
	int64_t n;

	*start = 0;
	*size = 250;
	if (marker != NULL) {
		if (pl_parse_int64(marker, 0, INT64_C(1) << 40, &n, NULL) != PL_OK) {
			api_error(res, 400, "InvalidRequestException", "Invalid %s '%.100s'",
				  marker_key, marker);
			return 0;
		}
		*start = (size_t)n;
	}
	if (page != NULL) {
		if (pl_parse_int64(page, 1, 250, &n, NULL) != PL_OK) {
			api_error_validation(res, size_key, page,
					     "Member must have value between 1 and 250");
			return 0;
		}
		*size = (size_t)n;
	}
	return 1;
}

void api_page_marker(json_t *obj, const char *key, size_t next, size_t total)
{
	char text[32];

	if (next >= total)
		return;
	snprintf(text, sizeof(text), "%zu", next);
	json_object_set_new(obj, key, json_string(text));
}
