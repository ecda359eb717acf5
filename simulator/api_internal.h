/*
 * Shared between the API's source files (simulator/api*.c); not a public
 * interface. Handlers get a parsed request and fill a response; api.c does
 * the HTTP plumbing, SigV4, throttling and routing.
 */
#ifndef SIM_API_INTERNAL_H
#define SIM_API_INTERNAL_H

#include <jansson.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "simulator/actions.h"
#include "simulator/api.h"

#define API_MAX_SEGMENTS 8
#define API_MAX_QUERY 16

/* Every operation the API routes; each has its own throttle bucket. */
typedef enum api_op {
	API_OP_CREATE_POLICY,
	API_OP_GET_POLICY,
	API_OP_LIST_POLICIES,
	API_OP_DELETE_POLICY,
	API_OP_CREATE_POLICY_VERSION,
	API_OP_SET_DEFAULT_POLICY_VERSION,
	API_OP_LIST_POLICY_VERSIONS,
	API_OP_GET_POLICY_VERSION,
	API_OP_DELETE_POLICY_VERSION,
	API_OP_ATTACH_POLICY,
	API_OP_DETACH_POLICY,
	API_OP_LIST_ATTACHED_POLICIES,
	API_OP_LIST_TARGETS_FOR_POLICY,
	API_OP_CREATE_KEYS_AND_CERTIFICATE,
	API_OP_CREATE_CERTIFICATE_FROM_CSR,
	API_OP_REGISTER_CERTIFICATE_WITHOUT_CA,
	API_OP_DESCRIBE_CERTIFICATE,
	API_OP_UPDATE_CERTIFICATE,
	API_OP_DELETE_CERTIFICATE,
	API_OP_DESCRIBE_ENDPOINT,
	API_OP_CREATE_THING,
	API_OP_DESCRIBE_THING,
	API_OP_DELETE_THING,
	API_OP_ATTACH_THING_PRINCIPAL,
	API_OP_DETACH_THING_PRINCIPAL,
	API_OP_LIST_THING_PRINCIPALS,
	API_OP_CREATE_THING_GROUP,
	API_OP_ADD_THING_TO_THING_GROUP,
	API_OP_PUBLISH,
	API_OP_DELETE_CONNECTION,
	API_OP_SIM_GROUND_TRUTH,
	API_OP_SIM_PROPAGATION,
	API_OP_SIM_DISCONNECT,
	API_OP__COUNT
} api_op;

/* AWS's operation name ("CreatePolicy"), used in option keys and logs. */
const char *api_op_name(api_op op);

/* AWS's default TPS for an operation (0: no bucket). */
double api_op_default_tps(api_op op);

typedef struct api_query_pair {
	char *key;
	char *value;
} api_query_pair;

/* One request, parsed by api.c before the handler runs. Strings are decoded. */
typedef struct api_request {
	const char *method;
	char *raw_path;               /* as sent, still percent-encoded */
	char *raw_query;              /* as sent without '?', or NULL */
	char *segments[API_MAX_SEGMENTS]; /* decoded path segments */
	size_t segment_count;
	char *rest_after_first;       /* decoded path after the first segment, for topics */
	api_query_pair query[API_MAX_QUERY];
	size_t query_count;
	char *body;                   /* NUL-terminated; body_len excludes the NUL */
	size_t body_len;
	const char *(*header)(void *ctx, const char *name);
	void *header_ctx;
} api_request;

typedef struct api_response {
	unsigned status;
	char *body;                   /* malloc'd, or NULL for an empty body */
	size_t body_len;
	const char *error_type;       /* static string, or NULL on success */
} api_response;

/* One operation's token bucket; guarded by sim_api.throttle_lock. */
typedef struct api_throttle_bucket {
	double rate;  /* tokens per second; 0 disables the bucket */
	double burst; /* capacity */
	double tokens;
	int64_t last_ns;
	uint64_t refused;
} api_throttle_bucket;

struct sim_api_config {
	uint16_t port;
	char bind[64];
	char *credentials_file;
	char region[32];
	char account[16];
	char *ground_truth_file;
	char *ca_cert;
	char *ca_key;
	char *trust_dir;
	int throttle_on;
	double rate[API_OP__COUNT];
	double burst[API_OP__COUNT];
	unsigned throttle_status;
	int64_t cert_disconnect_delay_ns;
	int64_t skew_ns;
	size_t max_body;
	size_t queue_capacity;
	char endpoint[256];
	struct sim_presence *presence; /* connected client ids; not owned, NULL: unknown */
};

struct sim_ca;

struct sim_api {
	sim_api_config cfg; /* deep copy */
	sim_state *state;
	struct sim_ca *ca;  /* NULL when no CA is configured */
	sim_broker_queue *queue;
	struct MHD_Daemon *daemon;
	uint16_t port;
	char access_key_id[32];
	char secret[64];
	pthread_mutex_t throttle_lock;
	api_throttle_bucket buckets[API_OP__COUNT];
};

/* --- responses (api_util.c) ---------------------------------------- */

/* Sets an AWS-style error: status, x-amzn-ErrorType and {"message": ...}. */
void api_error(api_response *res, unsigned status, const char *type, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Like api_error, adding "resourceId" and "resourceArn" (ResourceAlreadyExistsException). */
void api_error_exists(api_response *res, const char *message, const char *id, const char *arn);

/* A 400 InvalidRequestException for a member that fails a pattern or length rule. */
void api_error_validation(api_response *res, const char *member, const char *value,
			  const char *constraint);

/* Sets a 200 JSON body from obj (reference stolen); NULL gives an empty body. */
void api_json(api_response *res, json_t *obj);

/* The decoded value of a query parameter, or NULL. */
const char *api_query(const api_request *req, const char *key);

/*
 * Parses a "true"/"false" query parameter into *out (def when absent).
 * Returns 0 and sets a 400 InvalidRequestException when the value is bad.
 */
int api_query_bool(const api_request *req, api_response *res, const char *key, int def,
		   int *out);

/* Parses the body as a JSON object; 0 with a 400 error when it is not one. */
int api_body_object(const api_request *req, api_response *res, json_t **out);

/* A string member of obj, or NULL (a 400 error when present but not a string). */
int api_member_string(json_t *obj, api_response *res, const char *member, int required,
		      const char **out);

/* Name validation with AWS's patterns; 0 with a 400 error when invalid. */
int api_check_policy_name(api_response *res, const char *name);
int api_check_thing_name(api_response *res, const char *member, const char *name);
int api_check_cert_id(api_response *res, const char *id);
int api_check_version_id(api_response *res, const char *id);

/* Seconds since the epoch as AWS's JSON timestamps (a number with a fraction). */
json_t *api_time(int64_t ms);

/* Saves the store (lock held); on failure sets a 500 and returns 0. */
int api_save(sim_api *api, api_response *res);

/*
 * Maps a store error to AWS's: NOT_FOUND 404 ResourceNotFoundException,
 * EXISTS and STATE 409 conflict (the type the operation documents), LIMIT
 * 410 LimitExceededException, INVALID/PARSE 400, anything else 500.
 */
void api_store_error(api_response *res, pl_err err, const pl_errmsg *e, const char *conflict);

/*
 * Reads a decimal marker (an index) and a page size (1-250, default 250)
 * from the query. 0 with a 400 error when either is bad.
 */
int api_page(const api_request *req, api_response *res, const char *marker_key,
	     const char *size_key, size_t *start, size_t *size);

/* Sets obj[key] to the marker of the next page when next < total. */
void api_page_marker(json_t *obj, const char *key, size_t next, size_t total);

/* Queues a broker action; on a full queue sets a 503 and returns 0. */
int api_queue(sim_api *api, api_response *res, sim_broker_action *a);

/* --- handlers (api_policies.c, api_certs.c, api_things.c, api_data.c) --- */

typedef void (*api_handler)(sim_api *api, const api_request *req, api_response *res);

void api_create_policy(sim_api *api, const api_request *req, api_response *res);
void api_get_policy(sim_api *api, const api_request *req, api_response *res);
void api_list_policies(sim_api *api, const api_request *req, api_response *res);
void api_delete_policy(sim_api *api, const api_request *req, api_response *res);
void api_create_policy_version(sim_api *api, const api_request *req, api_response *res);
void api_set_default_policy_version(sim_api *api, const api_request *req, api_response *res);
void api_list_policy_versions(sim_api *api, const api_request *req, api_response *res);
void api_get_policy_version(sim_api *api, const api_request *req, api_response *res);
void api_delete_policy_version(sim_api *api, const api_request *req, api_response *res);
void api_attach_policy(sim_api *api, const api_request *req, api_response *res);
void api_detach_policy(sim_api *api, const api_request *req, api_response *res);
void api_list_attached_policies(sim_api *api, const api_request *req, api_response *res);
void api_list_targets_for_policy(sim_api *api, const api_request *req, api_response *res);

void api_create_keys_and_certificate(sim_api *api, const api_request *req, api_response *res);
void api_create_certificate_from_csr(sim_api *api, const api_request *req, api_response *res);
void api_register_certificate_without_ca(sim_api *api, const api_request *req,
					 api_response *res);
void api_describe_certificate(sim_api *api, const api_request *req, api_response *res);
void api_update_certificate(sim_api *api, const api_request *req, api_response *res);
void api_delete_certificate(sim_api *api, const api_request *req, api_response *res);
void api_describe_endpoint(sim_api *api, const api_request *req, api_response *res);

void api_create_thing(sim_api *api, const api_request *req, api_response *res);
void api_describe_thing(sim_api *api, const api_request *req, api_response *res);
void api_delete_thing(sim_api *api, const api_request *req, api_response *res);
void api_attach_thing_principal(sim_api *api, const api_request *req, api_response *res);
void api_detach_thing_principal(sim_api *api, const api_request *req, api_response *res);
void api_list_thing_principals(sim_api *api, const api_request *req, api_response *res);
void api_create_thing_group(sim_api *api, const api_request *req, api_response *res);
void api_add_thing_to_thing_group(sim_api *api, const api_request *req, api_response *res);

void api_publish(sim_api *api, const api_request *req, api_response *res);
void api_delete_connection(sim_api *api, const api_request *req, api_response *res);
void api_sim_ground_truth(sim_api *api, const api_request *req, api_response *res);
void api_sim_propagation(sim_api *api, const api_request *req, api_response *res);
void api_sim_disconnect(sim_api *api, const api_request *req, api_response *res);

/* Validates "immediate" | "ttl:<duration>" | "uniform:<duration>-<duration>". */
int api_propagation_valid(const char *text);

#endif
