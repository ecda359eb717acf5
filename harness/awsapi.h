/*
 * AWS IoT REST client: the control-plane operations the harness needs
 * (policies, attachments, certificates, endpoint) and the data-plane Publish
 * and DeleteConnection, signed with SigV4 by libcurl (CURLOPT_AWS_SIGV4),
 * bodies in JSON (jansson). libcurl before 8.8 signs percent-encoded paths
 * differently from AWS, so the client signs those requests itself there.
 * The same client talks to AWS IoT over HTTPS and to the simulator's
 * control plane over plain HTTP on loopback.
 *
 * Objects:
 *   awsapi_ctx     shared and thread-safe: endpoints, credentials, per-operation
 *                  rate limiters (token buckets) and counters, retry policy.
 *   awsapi_client  one libcurl easy handle; use from one thread at a time.
 *   awsapi_pool    N worker threads, one client each, and a bounded queue of
 *                  requests with completion callbacks.
 *
 * Every call waits for its operation's rate limiter, then sends. Throttled
 * responses (ThrottlingException at any status, HTTP 429, any 5xx) and
 * connections that never reached the server are retried with exponential
 * backoff and full jitter, up to cfg.max_attempts attempts. Each retry and
 * each throttled response is counted per operation. An awsapi_call records when
 * the call was sent and when it returned, in CLOCK_MONOTONIC nanoseconds.
 *
 * Errors: AWS error names map to pl_err (ThrottlingException ->
 * PL_ERR_THROTTLED, ResourceNotFoundException -> PL_ERR_NOT_FOUND,
 * ResourceAlreadyExistsException -> PL_ERR_EXISTS, VersionsLimitExceeded and
 * LimitExceeded -> PL_ERR_LIMIT, Unauthorized/Forbidden/AccessDenied ->
 * PL_ERR_DENIED, CertificateState/DeleteConflict -> PL_ERR_STATE,
 * InvalidRequest/MalformedPolicy/CertificateValidation -> PL_ERR_INVALID,
 * other 5xx -> PL_ERR_NETWORK); the message keeps the AWS name and message,
 * e.g. "AttachPolicy p1: ResourceNotFoundException: Policy not found".
 */
#ifndef PL_AWSAPI_H
#define PL_AWSAPI_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "harness/credentials.h"

typedef enum awsapi_op {
	AWSAPI_CREATE_POLICY = 0,
	AWSAPI_GET_POLICY,
	AWSAPI_DELETE_POLICY,
	AWSAPI_CREATE_POLICY_VERSION,
	AWSAPI_SET_DEFAULT_POLICY_VERSION,
	AWSAPI_LIST_POLICY_VERSIONS,
	AWSAPI_DELETE_POLICY_VERSION,
	AWSAPI_ATTACH_POLICY,
	AWSAPI_DETACH_POLICY,
	AWSAPI_LIST_ATTACHED_POLICIES,
	AWSAPI_LIST_TARGETS_FOR_POLICY,
	AWSAPI_CREATE_CERTIFICATE_FROM_CSR,
	AWSAPI_CREATE_KEYS_AND_CERTIFICATE,
	AWSAPI_DESCRIBE_CERTIFICATE,
	AWSAPI_UPDATE_CERTIFICATE,
	AWSAPI_DELETE_CERTIFICATE,
	AWSAPI_DESCRIBE_ENDPOINT,
	AWSAPI_PUBLISH,           /* data plane */
	AWSAPI_DELETE_CONNECTION, /* data plane */
	AWSAPI_OP__COUNT
} awsapi_op;

/* AWS's operation name, e.g. "AttachPolicy". */
const char *awsapi_op_name(awsapi_op op);

/* Nonzero for control-plane operations, zero for Publish and DeleteConnection. */
int awsapi_op_is_control(awsapi_op op);

/* AWS's default TPS quota for op (AttachPolicy 15, CreatePolicyVersion 10, ...). */
double awsapi_op_default_tps(awsapi_op op);

/* Settings for awsapi_ctx_create; awsapi_config_init fills the defaults. */
typedef struct awsapi_config {
	/* "https://iot.<region>.amazonaws.com" or "http://127.0.0.1:<port>"; required. */
	const char *control_endpoint;
	/* "https://<prefix>-ats.iot.<region>.amazonaws.com" (from DescribeEndpoint) or
	 * "http://127.0.0.1:<port>"; NULL leaves the data plane unavailable. */
	const char *data_endpoint;
	const char *region;                  /* SigV4 scope, e.g. "us-east-1"; required */
	const aws_credentials *credentials;  /* copied; required */
	const char *ca_file;                 /* CA bundle for HTTPS; NULL: libcurl's default */
	/* SigV4 service names. AWS's SDK models sign the control plane as
	 * "execute-api" (botocore's and aws-sdk-js-v3's iot metadata) and the data
	 * plane as "iotdata". */
	const char *control_signing_name;    /* "execute-api" */
	const char *data_signing_name;       /* "iotdata" */
	/* Client-side rate per operation in calls per second: 0 keeps AWS's
	 * default quota (awsapi_op_default_tps), a negative value disables it. */
	double tps[AWSAPI_OP__COUNT];
	double tps_scale;        /* multiplies every rate, e.g. 0.9 to stay below quota (1.0) */
	unsigned burst;          /* calls a limiter lets through at once after idling (1) */
	int max_attempts;        /* attempts per call including the first (8) */
	int64_t backoff_base_ns; /* first retry waits up to this, doubling each time (100 ms) */
	int64_t backoff_max_ns;  /* cap of one backoff (5 s) */
	int64_t timeout_ns;      /* limit for one attempt, connect included (10 s) */
} awsapi_config;

void awsapi_config_init(awsapi_config *cfg);

typedef struct awsapi_ctx awsapi_ctx;
typedef struct awsapi_client awsapi_client;
typedef struct awsapi_pool awsapi_pool;

/*
 * Creates the shared context; copies every string in cfg. Returns
 * PL_ERR_INVALID for a missing endpoint, region or credentials, or an
 * endpoint that is neither http:// nor https://.
 */
pl_err awsapi_ctx_create(awsapi_ctx **out, const awsapi_config *cfg, pl_errmsg *e);

/* Frees ctx (NULL is a no-op). Every client and pool using it must be freed first. */
void awsapi_ctx_free(awsapi_ctx *ctx);

/*
 * Replaces the data-plane endpoint (found with DescribeEndpoint after the
 * context was created). Set-up only: no data-plane call may be in flight.
 */
pl_err awsapi_ctx_set_data_endpoint(awsapi_ctx *ctx, const char *url, pl_errmsg *e);

/*
 * Makes waiting calls (rate limiter, backoff) return PL_ERR_INTERRUPTED and
 * stops further retries. Thread-safe and async-signal-safe; permanent.
 */
void awsapi_ctx_cancel(awsapi_ctx *ctx);

/* Per-operation counters, cumulative since awsapi_ctx_create. */
typedef struct awsapi_op_stats {
	uint64_t calls;      /* calls started */
	uint64_t succeeded;  /* calls that ended in success */
	uint64_t failed;     /* calls that ended in an error (after any retries) */
	uint64_t attempts;   /* HTTP requests sent */
	uint64_t throttled;  /* responses that were ThrottlingException or HTTP 429 */
	uint64_t server_errors; /* responses with HTTP 5xx */
	uint64_t retries;    /* attempts after the first */
	int64_t limiter_wait_ns; /* total time spent waiting for the rate limiter */
} awsapi_op_stats;

/* Copies the counters of op. Thread-safe. */
void awsapi_ctx_stats(awsapi_ctx *ctx, awsapi_op op, awsapi_op_stats *out);

/* Sum of throttled responses over all control-plane operations (throttled.control). */
uint64_t awsapi_ctx_throttled_control(awsapi_ctx *ctx);

/* What happened to one call. Times are CLOCK_MONOTONIC nanoseconds. */
typedef struct awsapi_call {
	awsapi_op op;
	int64_t t_first_sent_ns; /* the first attempt's request started */
	int64_t t_sent_ns;       /* the last attempt's request started */
	int64_t t_done_ns;       /* the last attempt's response arrived */
	int attempts;            /* HTTP requests sent for this call */
	int throttled;           /* of which got a throttling response */
	long http_status;        /* of the last attempt, 0 when none arrived */
	char error_code[64];     /* AWS error name of the last response, "" on success */
} awsapi_call;

/* Creates a client with its own libcurl handle. Not thread-safe: one thread at a time. */
pl_err awsapi_client_create(awsapi_client **out, awsapi_ctx *ctx, pl_errmsg *e);
void awsapi_client_free(awsapi_client *c);

/*
 * Operations. Each returns PL_OK or an error as described at the top, fills
 * *call when call is not NULL (also on failure), and fills the outputs only
 * on success. Names and ids are passed as AWS takes them; a target is a
 * certificate ARN (or a thing-group ARN or Cognito identity id).
 */
typedef struct awsapi_policy {
	char name[129];
	char arn[256];
	char version_id[16];     /* CreatePolicy: "1"; GetPolicy: the default version */
	char *document;          /* malloc'd JSON policy document; free with awsapi_policy_clear */
} awsapi_policy;

void awsapi_policy_clear(awsapi_policy *p);

pl_err awsapi_create_policy(awsapi_client *c, const char *name, const char *document,
			    awsapi_policy *out, awsapi_call *call, pl_errmsg *e);
pl_err awsapi_get_policy(awsapi_client *c, const char *name, awsapi_policy *out,
			 awsapi_call *call, pl_errmsg *e);
pl_err awsapi_delete_policy(awsapi_client *c, const char *name, awsapi_call *call,
			    pl_errmsg *e);

/* version_id (at least 16 bytes) receives the new version's id. */
pl_err awsapi_create_policy_version(awsapi_client *c, const char *name, const char *document,
				    int set_as_default, char *version_id, size_t version_id_len,
				    awsapi_call *call, pl_errmsg *e);
pl_err awsapi_set_default_policy_version(awsapi_client *c, const char *name,
					 const char *version_id, awsapi_call *call, pl_errmsg *e);
pl_err awsapi_delete_policy_version(awsapi_client *c, const char *name, const char *version_id,
				    awsapi_call *call, pl_errmsg *e);

typedef struct awsapi_policy_version {
	char version_id[16];
	int is_default;
	double create_date; /* seconds since the epoch, as AWS returns it */
} awsapi_policy_version;

/* *out is malloc'd (free()), *count its length. */
pl_err awsapi_list_policy_versions(awsapi_client *c, const char *name,
				   awsapi_policy_version **out, size_t *count,
				   awsapi_call *call, pl_errmsg *e);

pl_err awsapi_attach_policy(awsapi_client *c, const char *name, const char *target,
			    awsapi_call *call, pl_errmsg *e);
pl_err awsapi_detach_policy(awsapi_client *c, const char *name, const char *target,
			    awsapi_call *call, pl_errmsg *e);

/* A malloc'd list of strings; free with awsapi_strlist_clear. */
typedef struct awsapi_strlist {
	char **items;
	size_t count;
} awsapi_strlist;

void awsapi_strlist_clear(awsapi_strlist *l);

/* Policy names attached to target, following nextMarker over all pages.
 * *call describes the last page's request. */
pl_err awsapi_list_attached_policies(awsapi_client *c, const char *target, awsapi_strlist *out,
				     awsapi_call *call, pl_errmsg *e);
/* Targets (ARNs) a policy is attached to, over all pages. */
pl_err awsapi_list_targets_for_policy(awsapi_client *c, const char *name, awsapi_strlist *out,
				      awsapi_call *call, pl_errmsg *e);

typedef struct awsapi_certificate {
	char id[65];             /* 64 lowercase hex characters */
	char arn[256];
	char status[32];         /* DescribeCertificate: "ACTIVE", "INACTIVE", ... */
	char *pem;               /* malloc'd certificate PEM, or NULL */
	char *private_key_pem;   /* CreateKeysAndCertificate only: malloc'd; a secret */
} awsapi_certificate;

/* Frees the PEMs, zeroing the private key first. */
void awsapi_certificate_clear(awsapi_certificate *cert);

pl_err awsapi_create_certificate_from_csr(awsapi_client *c, const char *csr_pem,
					  int set_as_active, awsapi_certificate *out,
					  awsapi_call *call, pl_errmsg *e);
pl_err awsapi_create_keys_and_certificate(awsapi_client *c, int set_as_active,
					  awsapi_certificate *out, awsapi_call *call,
					  pl_errmsg *e);
pl_err awsapi_describe_certificate(awsapi_client *c, const char *certificate_id,
				   awsapi_certificate *out, awsapi_call *call, pl_errmsg *e);
/* new_status: "ACTIVE", "INACTIVE" or "REVOKED". */
pl_err awsapi_update_certificate(awsapi_client *c, const char *certificate_id,
				 const char *new_status, awsapi_call *call, pl_errmsg *e);
pl_err awsapi_delete_certificate(awsapi_client *c, const char *certificate_id, int force,
				 awsapi_call *call, pl_errmsg *e);

/* endpoint_type: "iot:Data-ATS" (NULL means that), "iot:Data", ... */
pl_err awsapi_describe_endpoint(awsapi_client *c, const char *endpoint_type, char *address,
				size_t address_len, awsapi_call *call, pl_errmsg *e);

/* Data plane. The topic is sent URL-encoded as one path segment ("a/b" -> "a%2Fb"). */
pl_err awsapi_publish(awsapi_client *c, const char *topic, const void *payload, size_t len,
		      int qos, int retain, awsapi_call *call, pl_errmsg *e);
pl_err awsapi_delete_connection(awsapi_client *c, const char *client_id, int clean_session,
				int prevent_will_message, awsapi_call *call, pl_errmsg *e);

/*
 * Parses an AWS error response: the name from the x-amzn-ErrorType header
 * (text before ':'), else the body's "code" or "__type" (text after '#'),
 * the message from "message" or "Message". header and body may be NULL.
 * Returns the mapped pl_err; for a response with no recognizable name, the
 * status decides (429 -> PL_ERR_THROTTLED, 404 -> PL_ERR_NOT_FOUND, ...)
 * and name is "HTTP <status>".
 */
pl_err awsapi_parse_error(long status, const char *error_type_header, const char *body,
			  size_t body_len, char *name, size_t name_len, char *message,
			  size_t message_len);

/*
 * Pool. A request names one operation and its arguments; submit copies the
 * strings and the payload. Operations that return lists or documents
 * (List*, GetPolicy, Describe*) are not accepted here: use
 * awsapi_pool_submit_fn with a function that calls them.
 */
typedef struct awsapi_request {
	awsapi_op op;
	const char *policy_name;
	const char *document;       /* CreatePolicy, CreatePolicyVersion */
	const char *target;         /* AttachPolicy, DetachPolicy */
	const char *version_id;     /* SetDefaultPolicyVersion, DeletePolicyVersion */
	const char *certificate_id; /* UpdateCertificate, DeleteCertificate */
	const char *status;         /* UpdateCertificate */
	const char *csr_pem;        /* CreateCertificateFromCsr */
	const char *topic;          /* Publish */
	const void *payload;        /* Publish */
	size_t payload_len;
	const char *client_id;      /* DeleteConnection */
	const char *endpoint_type;  /* DescribeEndpoint */
	const char *marker;         /* List*: nextMarker of the previous page, or NULL */
	int qos;                    /* Publish */
	int flag; /* setAsDefault, setAsActive, forceDelete, retain or cleanSession */
	int prevent_will_message;   /* DeleteConnection */
} awsapi_request;

typedef struct awsapi_result {
	pl_err err;
	pl_errmsg msg;            /* empty on success */
	awsapi_call call;
	char version_id[16];      /* CreatePolicy, CreatePolicyVersion */
	char certificate_id[65];  /* CreateCertificateFromCsr */
	char certificate_arn[256];
} awsapi_result;

/*
 * Completion callback, run on a pool thread after the call ends. req points to
 * the pool's copy (valid only during the callback). Must not block for long or
 * submit to the same pool while the queue may be full.
 */
typedef void (*awsapi_done_fn)(void *arg, const awsapi_request *req, const awsapi_result *res);

/* Free-form work: runs fn(client, arg) on a pool thread; client is NULL when
 * the pool was cancelled before the work started (fn then only cleans up). */
typedef void (*awsapi_work_fn)(awsapi_client *client, void *arg);

/*
 * Starts threads (1..256) workers, each with its own client, sharing ctx and
 * its limiters, with a queue of queue_capacity entries (>= 1).
 */
pl_err awsapi_pool_create(awsapi_pool **out, awsapi_ctx *ctx, unsigned threads,
			  size_t queue_capacity, pl_errmsg *e);

/*
 * Queues a request; blocks while the queue is full. Returns PL_ERR_INVALID
 * for an operation the pool does not run, PL_ERR_INTERRUPTED after
 * awsapi_pool_cancel or awsapi_ctx_cancel. done may be NULL. Thread-safe.
 */
pl_err awsapi_pool_submit(awsapi_pool *p, const awsapi_request *req, awsapi_done_fn done,
			  void *arg, pl_errmsg *e);

/* As awsapi_pool_submit but returns PL_ERR_LIMIT at once when the queue is full. */
pl_err awsapi_pool_try_submit(awsapi_pool *p, const awsapi_request *req, awsapi_done_fn done,
			      void *arg, pl_errmsg *e);

/* Queues fn(client, arg); blocks while the queue is full. */
pl_err awsapi_pool_submit_fn(awsapi_pool *p, awsapi_work_fn fn, void *arg, pl_errmsg *e);

/* Waits until the queue is empty and no worker is running a call. */
void awsapi_pool_wait(awsapi_pool *p);

/*
 * Stops taking requests; queued requests that have not started complete with
 * PL_ERR_INTERRUPTED (their done callbacks still run, and queued work
 * functions run with a NULL client). Calls in flight finish normally.
 */
void awsapi_pool_cancel(awsapi_pool *p);

/* Waits for queued work to finish, stops the threads and frees p. NULL is a no-op. */
void awsapi_pool_free(awsapi_pool *p);

#endif
