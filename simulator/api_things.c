/* Thing and thing-group operations of the control plane. */
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simulator/api_internal.h"
#include "simulator/state.h"

#define MAX_ATTRIBUTES 50

/* A stable id in UUID form derived from the name, so that it survives restarts. */
static void name_id(const char *kind, const char *name, char out[37])
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	char hex[65], text[512];
	static const char digits[] = "0123456789abcdef";

	snprintf(text, sizeof(text), "%s/%s", kind, name);
	SHA256((const unsigned char *)text, strlen(text), md);
	for (int i = 0; i < 32; i++) {
		hex[2 * i] = digits[md[i] >> 4];
		hex[2 * i + 1] = digits[md[i] & 15];
	}
	snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
}

static sim_thing *find_thing(sim_api *api, api_response *res, const char *name)
{
	sim_thing *t = sim_state_thing_find(api->state, name);

	if (t == NULL)
		api_error(res, 404, "ResourceNotFoundException", "Thing %s cannot be found.", name);
	return t;
}

/* Reads attributePayload.attributes into attrs (pointers into body); 0 with an error. */
static int read_attributes(json_t *body, api_response *res, sim_attribute *attrs, size_t *n)
{
	json_t *payload = json_object_get(body, "attributePayload");
	json_t *map = payload != NULL ? json_object_get(payload, "attributes") : NULL;
	const char *key;
	json_t *value;

	*n = 0;
	if (map == NULL)
		return 1;
	if (!json_is_object(map) || json_object_size(map) > MAX_ATTRIBUTES) {
		api_error(res, 400, "InvalidRequestException",
			  "attributePayload.attributes must be an object of at most %d strings",
			  MAX_ATTRIBUTES);
		return 0;
	}
	json_object_foreach(map, key, value) {
		if (!json_is_string(value) || strlen(key) > 128 ||
		    json_string_length(value) > 800) {
			api_error_validation(res, "attributePayload.attributes", key,
					     "Attribute names are at most 128 and values at "
					     "most 800 characters of text");
			return 0;
		}
		attrs[*n].name = (char *)key;
		attrs[*n].value = (char *)json_string_value(value);
		(*n)++;
	}
	return 1;
}

/* Whether an existing thing has exactly this type and these attributes. */
static int same_configuration(const sim_thing *t, const char *type, const sim_attribute *attrs,
			      size_t n)
{
	if ((t->type_name == NULL) != (type == NULL) ||
	    (type != NULL && strcmp(t->type_name, type) != 0) || t->attribute_count != n)
		return 0;
	for (size_t i = 0; i < n; i++) {
		size_t j = 0;
		while (j < n && strcmp(t->attributes[j].name, attrs[i].name) != 0)
			j++;
		if (j == n || strcmp(t->attributes[j].value, attrs[i].value) != 0)
			return 0;
	}
	return 1;
}

static json_t *thing_created_json(const sim_thing *t)
{
	char id[37];

	name_id("thing", t->name, id);
	return json_pack("{s:s,s:s,s:s}", "thingName", t->name, "thingArn", t->arn, "thingId", id);
}

void api_create_thing(sim_api *api, const api_request *req, api_response *res)
{
	const char *name = req->segments[1], *type = NULL;
	sim_attribute attrs[MAX_ATTRIBUTES];
	size_t n = 0;
	json_t *body = NULL;
	sim_thing *t;
	pl_errmsg e;
	pl_err err;

	if (!api_check_thing_name(res, "thingName", name))
		return;
	if (req->body_len > 0 &&
	    (!api_body_object(req, res, &body) ||
	     !api_member_string(body, res, "thingTypeName", 0, &type) ||
	     !read_attributes(body, res, attrs, &n)))
		goto out_body;
	pl_errmsg_clear(&e);
	sim_state_lock(api->state);
	t = sim_state_thing_find(api->state, name);
	if (t != NULL) {
		/* AWS: repeating CreateThing with the same configuration succeeds. */
		if (same_configuration(t, type, attrs, n))
			api_json(res, thing_created_json(t));
		else
			api_error_exists(res, "Thing already exists with a different configuration",
					 name, t->arn);
		goto out;
	}
	err = sim_state_thing_create(api->state, name, type, attrs, n, &t, &e);
	if (err != PL_OK)
		api_store_error(res, err, &e, "ResourceAlreadyExistsException");
	else if (api_save(api, res))
		api_json(res, thing_created_json(t));
out:
	sim_state_unlock(api->state);
out_body:
	json_decref(body);
}

void api_describe_thing(sim_api *api, const api_request *req, api_response *res)
{
	const char *name = req->segments[1];
	sim_thing *t;
	char id[37];

	if (!api_check_thing_name(res, "thingName", name))
		return;
	sim_state_lock(api->state);
	t = find_thing(api, res, name);
	if (t != NULL) {
		json_t *attrs = json_object();
		json_t *obj;
		for (size_t i = 0; i < t->attribute_count; i++)
			json_object_set_new(attrs, t->attributes[i].name,
					    json_string(t->attributes[i].value));
		name_id("thing", t->name, id);
		obj = json_pack("{s:s,s:s,s:s,s:s,s:o,s:I}", "defaultClientId", t->name,
				"thingName", t->name, "thingId", id, "thingArn", t->arn,
				"attributes", attrs, "version", (json_int_t)t->version);
		if (t->type_name != NULL)
			json_object_set_new(obj, "thingTypeName", json_string(t->type_name));
		api_json(res, obj);
	}
	sim_state_unlock(api->state);
}

void api_delete_thing(sim_api *api, const api_request *req, api_response *res)
{
	const char *name = req->segments[1], *expected = api_query(req, "expectedVersion");
	char version[32];
	sim_thing *t;
	pl_errmsg e;
	pl_err err;

	if (!api_check_thing_name(res, "thingName", name))
		return;
	pl_errmsg_clear(&e);
	sim_state_lock(api->state);
	t = sim_state_thing_find(api->state, name);
	if (t == NULL) {
		/* AWS: deleting a thing that does not exist succeeds. */
		api_json(res, NULL);
		goto out;
	}
	snprintf(version, sizeof(version), "%llu", (unsigned long long)t->version);
	if (expected != NULL && strcmp(expected, version) != 0) {
		api_error(res, 409, "VersionConflictException",
			  "The version for thing %s does not match the expected version.", name);
		goto out;
	}
	err = sim_state_thing_delete(api->state, name, &e);
	if (err != PL_OK)
		api_store_error(res, err, &e, "InvalidRequestException");
	else if (api_save(api, res))
		api_json(res, NULL);
out:
	sim_state_unlock(api->state);
}

static void change_principal(sim_api *api, const api_request *req, api_response *res,
			     int attach)
{
	const char *name = req->segments[1];
	const char *principal = req->header(req->header_ctx, "x-amzn-principal");
	pl_errmsg e;
	pl_err err;

	if (!api_check_thing_name(res, "thingName", name))
		return;
	if (principal == NULL || principal[0] == '\0') {
		api_error_validation(res, "principal", "null", "Member must not be null");
		return;
	}
	pl_errmsg_clear(&e);
	sim_state_lock(api->state);
	if (find_thing(api, res, name) != NULL) {
		err = attach ? sim_state_thing_attach_principal(api->state, name, principal, &e)
			     : sim_state_thing_detach_principal(api->state, name, principal, &e);
		if (err != PL_OK)
			api_store_error(res, err, &e, "ResourceAlreadyExistsException");
		else if (api_save(api, res))
			api_json(res, json_object());
	}
	sim_state_unlock(api->state);
}

void api_attach_thing_principal(sim_api *api, const api_request *req, api_response *res)
{
	change_principal(api, req, res, 1);
}

void api_detach_thing_principal(sim_api *api, const api_request *req, api_response *res)
{
	change_principal(api, req, res, 0);
}

void api_list_thing_principals(sim_api *api, const api_request *req, api_response *res)
{
	const char *name = req->segments[1];
	size_t start, size, i = 0;
	sim_thing *t;

	if (!api_check_thing_name(res, "thingName", name) ||
	    !api_page(req, res, "nextToken", "maxResults", &start, &size))
		return;
	sim_state_lock(api->state);
	t = find_thing(api, res, name);
	if (t != NULL) {
		json_t *list = json_array(), *obj;
		for (i = start; i < t->principal_count && i < start + size; i++)
			json_array_append_new(list, json_string(t->principals[i]));
		obj = json_pack("{s:o}", "principals", list);
		api_page_marker(obj, "nextToken", i, t->principal_count);
		api_json(res, obj);
	}
	sim_state_unlock(api->state);
}

void api_create_thing_group(sim_api *api, const api_request *req, api_response *res)
{
	const char *name = req->segments[1];
	json_t *body = NULL;
	sim_thing_group *g;
	char id[37];
	pl_errmsg e;
	pl_err err;

	if (!api_check_thing_name(res, "thingGroupName", name))
		return;
	if (req->body_len > 0 && !api_body_object(req, res, &body))
		return;
	json_decref(body);
	pl_errmsg_clear(&e);
	sim_state_lock(api->state);
	/* NOTE: group properties, parents and tags are not stored, so a repeated
	 * CreateThingGroup always counts as the same configuration and succeeds. */
	g = sim_state_group_find(api->state, name);
	if (g == NULL) {
		err = sim_state_group_create(api->state, name, &g, &e);
		if (err != PL_OK) {
			api_store_error(res, err, &e, "ResourceAlreadyExistsException");
			goto out;
		}
		if (!api_save(api, res))
			goto out;
	}
	name_id("thinggroup", g->name, id);
	api_json(res, json_pack("{s:s,s:s,s:s}", "thingGroupName", g->name, "thingGroupArn",
				g->arn, "thingGroupId", id));
out:
	sim_state_unlock(api->state);
}

/* The name from "name" or from the last path element of "arn"; NULL when neither. */
static const char *name_or_arn(json_t *body, const char *name_key, const char *arn_key)
{
	const char *name = json_string_value(json_object_get(body, name_key));
	const char *arn = json_string_value(json_object_get(body, arn_key));
	const char *slash;

	if (name != NULL)
		return name;
	slash = arn != NULL ? strrchr(arn, '/') : NULL;
	return slash != NULL ? slash + 1 : NULL;
}

void api_add_thing_to_thing_group(sim_api *api, const api_request *req, api_response *res)
{
	const char *group, *thing;
	json_t *body;
	pl_errmsg e;
	pl_err err;

	if (!api_body_object(req, res, &body))
		return;
	group = name_or_arn(body, "thingGroupName", "thingGroupArn");
	thing = name_or_arn(body, "thingName", "thingArn");
	if (group == NULL || thing == NULL) {
		api_error(res, 400, "InvalidRequestException",
			  "Both a thing group (name or ARN) and a thing (name or ARN) are required");
		goto out_body;
	}
	pl_errmsg_clear(&e);
	sim_state_lock(api->state);
	if (sim_state_group_find(api->state, group) == NULL)
		api_error(res, 404, "ResourceNotFoundException", "Thing group %s cannot be found.",
			  group);
	else if (find_thing(api, res, thing) != NULL) {
		err = sim_state_group_add_thing(api->state, group, thing, &e);
		if (err != PL_OK)
			api_store_error(res, err, &e, "ResourceAlreadyExistsException");
		else if (api_save(api, res))
			api_json(res, json_object());
	}
	sim_state_unlock(api->state);
out_body:
	json_decref(body);
}
