/*
 * Data-plane operations (Publish, DeleteConnection) and the simulator-only
 * /_sim endpoints. Everything that needs the broker is queued for its thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/parse.h"
#include "simulator/api_internal.h"
#include "simulator/presence.h"

/* AWS's limits on a topic name in a publish (the broker's quotas apply to HTTP too). */
#define TOPIC_MAX_BYTES 256
#define TOPIC_MAX_SLASHES 7

/* Most ground-truth records one request returns; narrow the range for more. */
#define MAX_RECORDS 100000

static size_t count_slashes(const char *topic)
{
	size_t n = 0;

	for (const char *c = topic; *c != '\0'; c++)
		n += *c == '/';
	return n;
}

static int topic_valid(api_response *res, const char *topic)
{
	if (topic == NULL || topic[0] == '\0' || strlen(topic) > TOPIC_MAX_BYTES) {
		api_error(res, 400, "InvalidRequestException",
			  "The topic must be 1 to %d bytes", TOPIC_MAX_BYTES);
		return 0;
	}
	if (strpbrk(topic, "+#") != NULL) {
		api_error(res, 400, "InvalidRequestException",
			  "The topic must not contain the wildcards + or #");
		return 0;
	}
	if (count_slashes(topic) > TOPIC_MAX_SLASHES) {
		api_error(res, 400, "InvalidRequestException",
			  "The topic must have at most %d forward slashes", TOPIC_MAX_SLASHES);
		return 0;
	}
	return 1;
}

static int read_qos(const api_request *req, api_response *res, int *qos)
{
	const char *text = api_query(req, "qos");

	*qos = 0;
	if (text == NULL)
		return 1;
	if (strcmp(text, "0") == 0 || strcmp(text, "1") == 0) {
		*qos = text[0] - '0';
		return 1;
	}
	api_error_validation(res, "qos", text, "Member must have value between 0 and 1");
	return 0;
}

void api_publish(sim_api *api, const api_request *req, api_response *res)
{
	const char *topic = req->rest_after_first;
	sim_broker_action a;
	int qos, retain;
	char trace[40];

	if (!topic_valid(res, topic) || !read_qos(req, res, &qos) ||
	    !api_query_bool(req, res, "retain", 0, &retain))
		return;
	memset(&a, 0, sizeof(a));
	a.kind = SIM_BROKER_PUBLISH;
	a.topic = strdup(topic);
	a.payload = req->body_len > 0 ? malloc(req->body_len) : NULL;
	if (a.topic == NULL || (req->body_len > 0 && a.payload == NULL)) {
		sim_broker_action_clear(&a);
		api_error(res, 500, "InternalFailureException", "Out of memory");
		return;
	}
	if (req->body_len > 0)
		memcpy(a.payload, req->body, req->body_len);
	a.payload_len = req->body_len;
	a.qos = qos;
	a.retain = retain;
	if (!api_queue(api, res, &a))
		return;
	snprintf(trace, sizeof(trace), "%016llx", (unsigned long long)pl_mono_ns());
	api_json(res, json_pack("{s:s,s:s}", "message", "OK", "traceId", trace));
}

/*
 * Returns 1 when client_id has an open connection, or when the API has no
 * registry to ask; otherwise sets AWS's 404 and returns 0. The client may
 * still disconnect before the broker thread acts, which then does nothing.
 */
static int client_connected(sim_api *api, api_response *res, const char *client_id)
{
	if (api->cfg.presence == NULL || sim_presence_connected(api->cfg.presence, client_id))
		return 1;
	api_error(res, 404, "ResourceNotFoundException", "No connection with client id '%.128s'",
		  client_id);
	return 0;
}

void api_delete_connection(sim_api *api, const api_request *req, api_response *res)
{
	const char *client_id = req->segments[1];
	sim_broker_action a;
	int clean, no_will;

	if (client_id[0] == '\0' || client_id[0] == '$' || strlen(client_id) > 128) {
		api_error_validation(res, "clientId", client_id,
				     "Member must be 1 to 128 characters and not start with $");
		return;
	}
	if (!api_query_bool(req, res, "cleanSession", 0, &clean) ||
	    !api_query_bool(req, res, "preventWillMessage", 0, &no_will))
		return;
	memset(&a, 0, sizeof(a));
	a.kind = SIM_BROKER_DISCONNECT_CLIENT;
	a.client_id = strdup(client_id);
	a.clean_session = clean;
	a.prevent_will = no_will;
	if (a.client_id == NULL) {
		api_error(res, 500, "InternalFailureException", "Out of memory");
		return;
	}
	if (!client_connected(api, res, client_id)) {
		sim_broker_action_clear(&a);
		return;
	}
	if (api_queue(api, res, &a))
		api_json(res, NULL);
}

/* disconnectReason values of AWS lifecycle events that the server side causes. */
static const char *const server_reasons[] = {
	"SERVER_INITIATED_DISCONNECT", "API_INITIATED_DISCONNECT", "AUTH_ERROR",
	"CLIENT_ERROR", "CONNECTION_LOST", "DUPLICATE_CLIENTID", "FORBIDDEN_ACCESS",
	"MQTT_KEEP_ALIVE_TIMEOUT", "SERVER_ERROR", "THROTTLED", "WEBSOCKET_TTL_EXPIRATION",
	"CUSTOMAUTH_TTL_EXPIRATION",
};

/* The static copy of reason from server_reasons, or NULL when it is not one. */
static const char *server_reason(const char *reason)
{
	for (size_t i = 0; i < sizeof(server_reasons) / sizeof(server_reasons[0]); i++)
		if (strcmp(server_reasons[i], reason) == 0)
			return server_reasons[i];
	return NULL;
}

void api_sim_disconnect(sim_api *api, const api_request *req, api_response *res)
{
	const char *client_id, *reason_text = NULL, *reason;
	sim_broker_action a;
	json_t *body;

	if (!api_body_object(req, res, &body))
		return;
	if (!api_member_string(body, res, "clientId", 1, &client_id) ||
	    !api_member_string(body, res, "reason", 0, &reason_text))
		goto out;
	reason = server_reason(reason_text ? reason_text : "SERVER_INITIATED_DISCONNECT");
	if (client_id[0] == '\0') {
		api_error_validation(res, "clientId", client_id, "Member must not be empty");
		goto out;
	}
	if (reason == NULL) {
		api_error(res, 400, "InvalidRequestException",
			  "reason must be a server-side disconnectReason such as "
			  "SERVER_INITIATED_DISCONNECT, not '%.100s'",
			  reason_text);
		goto out;
	}
	if (!client_connected(api, res, client_id))
		goto out;
	memset(&a, 0, sizeof(a));
	a.kind = SIM_BROKER_DISCONNECT_CLIENT;
	a.client_id = strdup(client_id);
	a.disconnect_reason = reason;
	if (a.client_id == NULL)
		api_error(res, 500, "InternalFailureException", "Out of memory");
	else if (api_queue(api, res, &a))
		api_json(res, json_pack("{s:s,s:s}", "clientId", client_id, "reason", reason));
out:
	json_decref(body);
}

int api_propagation_valid(const char *text)
{
	int64_t lo, hi;
	char first[64];
	const char *dash;

	if (strcmp(text, "immediate") == 0)
		return 1;
	if (strncmp(text, "ttl:", 4) == 0)
		return pl_parse_duration(text + 4, 0, 86400 * PL_NS_PER_S, &lo, NULL) == PL_OK;
	if (strncmp(text, "uniform:", 8) != 0)
		return 0;
	text += 8;
	dash = strchr(text, '-');
	if (dash == NULL || (size_t)(dash - text) >= sizeof(first))
		return 0;
	memcpy(first, text, (size_t)(dash - text));
	first[dash - text] = '\0';
	return pl_parse_duration(first, 0, 86400 * PL_NS_PER_S, &lo, NULL) == PL_OK &&
	       pl_parse_duration(dash + 1, 0, 86400 * PL_NS_PER_S, &hi, NULL) == PL_OK && lo <= hi;
}

void api_sim_propagation(sim_api *api, const api_request *req, api_response *res)
{
	const char *model;
	json_t *body;
	sim_broker_action a;

	if (!api_body_object(req, res, &body))
		return;
	if (!api_member_string(body, res, "propagation", 1, &model))
		goto out;
	if (!api_propagation_valid(model)) {
		api_error(res, 400, "InvalidRequestException",
			  "propagation must be \"immediate\", \"ttl:<duration>\" or "
			  "\"uniform:<duration>-<duration>\", not '%.100s'",
			  model);
		goto out;
	}
	memset(&a, 0, sizeof(a));
	a.kind = SIM_BROKER_SET_PROPAGATION;
	a.propagation = strdup(model);
	if (a.propagation == NULL)
		api_error(res, 500, "InternalFailureException", "Out of memory");
	else if (api_queue(api, res, &a))
		api_json(res, json_pack("{s:s}", "propagation", model));
out:
	json_decref(body);
}

/* Whether a ground-truth line (plugin_log.c: clientId, monoNs) is in the request's range. */
static int record_matches(json_t *rec, const char *client_id, int64_t since, int64_t until)
{
	const char *cid = json_string_value(json_object_get(rec, "clientId"));
	json_t *t = json_object_get(rec, "monoNs");
	int64_t v;

	if (client_id != NULL && (cid == NULL || strcmp(cid, client_id) != 0))
		return 0;
	if (!json_is_integer(t))
		return since == 0 && until == INT64_MAX;
	v = (int64_t)json_integer_value(t);
	return v >= since && v <= until;
}

static int read_range(const api_request *req, api_response *res, const char *key, int64_t def,
		      int64_t *out)
{
	const char *text = api_query(req, key);

	*out = def;
	if (text == NULL || pl_parse_int64(text, 0, INT64_MAX, out, NULL) == PL_OK)
		return 1;
	api_error(res, 400, "InvalidRequestException",
		  "%s must be a non-negative integer of nanoseconds, not '%.100s'", key, text);
	return 0;
}

void api_sim_ground_truth(sim_api *api, const api_request *req, api_response *res)
{
	const char *client_id = api_query(req, "clientId");
	int64_t since, until;
	char *line = NULL;
	size_t cap = 0;
	json_t *list;
	FILE *f;

	if (!read_range(req, res, "since_ns", 0, &since) ||
	    !read_range(req, res, "until_ns", INT64_MAX, &until))
		return;
	if (api->cfg.ground_truth_file == NULL) {
		api_error(res, 404, "ResourceNotFoundException", "No ground-truth file is configured");
		return;
	}
	f = fopen(api->cfg.ground_truth_file, "r");
	list = json_array();
	/* A missing file means no refresh was recorded yet. A partial last line is skipped. */
	while (f != NULL && getline(&line, &cap, f) > 0 && json_array_size(list) < MAX_RECORDS) {
		json_t *rec = json_loads(line, 0, NULL);
		if (rec != NULL && json_is_object(rec) && record_matches(rec, client_id, since, until))
			json_array_append(list, rec);
		json_decref(rec);
	}
	free(line);
	if (f != NULL)
		fclose(f);
	api_json(res, json_pack("{s:o}", "refreshes", list));
}
