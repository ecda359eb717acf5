/*
 * Profiles: one YAML file that describes a measurement (target, fleet,
 * device groups with strategies, policies before and after the swap, the
 * swap, the probe, timing and expectations). docs/profiles.md lists every
 * key with its type, default and unit.
 *
 * profile_load reads and validates a profile and returns it resolved:
 * defaults filled in, "--set key=value" overrides applied, "${env:NAME}"
 * substituted, group shares turned into device counts, policy documents
 * read and checked. The returned struct is immutable and may be read from
 * any thread; free it with profile_free.
 *
 * Times are int64 nanoseconds; rates are events per second (0 = unlimited).
 * Errors name the file, line and column ("profiles/x.yaml:12:5: ...") or,
 * for an override, the override ("--set probe.interval=10q: ...").
 *
 * Fields are only ever added to these structs, never renamed or removed.
 */
#ifndef PL_PROFILE_H
#define PL_PROFILE_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

struct expect_expr;

/* A position in the profile file, both 1-based; 0/0 when the value is a default. */
typedef struct profile_pos {
	unsigned line;
	unsigned column;
} profile_pos;

typedef enum profile_target_kind {
	PROFILE_TARGET_SIMULATOR = 0, /* the embedded mosquitto plugin on loopback */
	PROFILE_TARGET_AWS,           /* real AWS IoT Core */
} profile_target_kind;

/*
 * How often an established connection refreshes its snapshot of its
 * principal's policies; a change is seen at the next refresh. These are the
 * simulator's propagation models (simulator/propagation.h).
 */
typedef enum profile_propagation_kind {
	PROFILE_PROPAGATION_IMMEDIATE = 0, /* "immediate": every check sees the current policies */
	PROFILE_PROPAGATION_FIXED,         /* "ttl:30s": refresh every min_ns */
	PROFILE_PROPAGATION_UNIFORM,       /* "uniform:6m-8m": each period uniform in [min_ns, max_ns] */
	PROFILE_PROPAGATION_TTL = PROFILE_PROPAGATION_FIXED,
} profile_propagation_kind;

typedef struct profile_propagation {
	profile_propagation_kind kind;
	int64_t min_ns;
	int64_t max_ns; /* equal to min_ns unless uniform */
} profile_propagation;

/* Where a connection's first refresh period starts ("refresh_phase"). */
typedef enum profile_phase {
	PROFILE_PHASE_CONNECT = 0, /* at the connection's CONNECT */
	PROFILE_PHASE_RANDOM,      /* at a random point within the first period */
} profile_phase;

/* MQTT 3.1.1 reaction to a denied SUBSCRIBE (AWS's current behaviour is unconfirmed). */
typedef enum profile_subscribe_denied {
	PROFILE_SUBSCRIBE_DENIED_DISCONNECT = 0, /* "disconnect": close the connection */
	PROFILE_SUBSCRIBE_DENIED_SUBACK,         /* "suback_failure": SUBACK 0x80 for that filter */
} profile_subscribe_denied;

/* MQTT 5 reaction to a denied QoS 0 PUBLISH (AWS's behaviour is unconfirmed). */
typedef enum profile_qos0_denied {
	PROFILE_QOS0_DENIED_DROP = 0,   /* "drop": discard it silently */
	PROFILE_QOS0_DENIED_DISCONNECT, /* "disconnect": DISCONNECT with reason 0x87 */
} profile_qos0_denied;

/*
 * Simulator quotas, AWS's defaults unless set. Rates are per second and 0
 * switches the quota off; counts are 0 for off. The profile keys are the
 * simulator's option names (connect_rate_per_account, ...).
 */
typedef struct profile_quotas {
	double connect_per_account;           /* connect_rate_per_account, 500/s */
	double connect_per_client_id;         /* connect_rate_per_client, 1/s */
	double publish_per_connection;        /* publish_rate_per_connection, 100/s, in plus out */
	double inbound_publish_per_account;   /* AWS's 20000/s; no key, the simulator has no such quota */
	double outbound_publish_per_account;  /* AWS's 20000/s; no key, as above */
	double subscribe_per_account;         /* AWS's 500/s; no key, as above */
	int64_t subscriptions_per_connection; /* 50 */
	int64_t filters_per_subscribe;        /* subscriptions_per_request, 8 */
	double attach_detach_policy;          /* 15/s: AttachPolicy, DetachPolicy */
	double policy_write;                  /* 10/s: CreatePolicy(Version), SetDefault..., Delete... */
	double create_keys_and_certificate;   /* 10/s */
	double create_certificate_from_csr;   /* 15/s */
	int throttling_status;                /* HTTP status of ThrottlingException: 400 or 429 */
} profile_quotas;

typedef struct profile_simulator {
	profile_propagation propagation;
	profile_phase phase;
	int fresh_snapshot_on_connect;        /* a new connection is authorized with the current policies */
	profile_subscribe_denied subscribe_denied_mqtt311;
	profile_quotas quotas;
	int mqtt_port;                        /* loopback TLS port; 0 = pick a free one */
	int control_port;                     /* loopback HTTP port; 0 = pick a free one */
	uint64_t seed;                        /* random seed for delays; 0 = chosen at start */
	char *region;                         /* region in ARNs the simulator evaluates */
	char *account;                        /* 12-digit account id in those ARNs */
	profile_qos0_denied publish_qos0_denied_mqtt5;
} profile_simulator;

typedef struct profile_aws {
	char *region;                /* e.g. "eu-west-1"; required for the aws target */
	char *mqtt_endpoint;         /* host name; "" = DescribeEndpoint(iot:Data-ATS) */
	char *control_endpoint;      /* base URL; "" = https://iot.<region>.amazonaws.com */
	char *data_endpoint;         /* base URL of the data plane; "" = https://<MQTT endpoint> */
	char *credentials_profile;   /* profile in ~/.aws/credentials; "default" */
	char *access_key_id;         /* "" = from credentials_profile; secret */
	char *secret_access_key;     /* "" = from credentials_profile; secret */
	char *session_token;         /* "" = none; secret */
	char *root_ca;               /* absolute path of the CA bundle (trustStore) */
	int port;                    /* 8883, or 443 with ALPN "x-amzn-mqtt-ca" */
} profile_aws;

typedef struct profile_target {
	profile_target_kind kind;
	profile_simulator simulator;
	profile_aws aws;
} profile_target;

typedef enum profile_certificates {
	PROFILE_CERTIFICATES_PER_DEVICE = 0,
	PROFILE_CERTIFICATES_SHARED, /* one certificate for the whole fleet */
} profile_certificates;

typedef enum profile_provisioning {
	PROFILE_PROVISIONING_CSR = 0,                   /* CreateCertificateFromCsr, key stays local */
	PROFILE_PROVISIONING_CREATE_KEYS_AND_CERTIFICATE, /* CreateKeysAndCertificate */
} profile_provisioning;

typedef struct profile_fleet {
	int64_t devices;             /* total over all groups */
	profile_certificates certificates;
	profile_provisioning provisioning;
	char *inventory;             /* absolute path of the fleet directory, "" = fleets/<name> */
	char *client_id_prefix;      /* device i is "<prefix><i, 6 digits>" */
	double connect_rate;         /* CONNECTs per second over the fleet; the adaptive ceiling */
	int connect_rate_adaptive;   /* lower the rate while connects fail or are throttled */
	double connect_rate_floor;   /* the adaptive rate never goes below this, per second */
	int64_t worker_devices;      /* devices per worker process */
} profile_fleet;

typedef enum profile_strategy {
	PROFILE_STRATEGY_KEEP_CONNECTION = 0,
	PROFILE_STRATEGY_RECONNECT_PER_ATTEMPT,
} profile_strategy;

typedef enum profile_client_id_scheme {
	PROFILE_CLIENT_ID_FIXED = 0,             /* the device name on every attempt */
	PROFILE_CLIENT_ID_FRESH_PER_ATTEMPT,     /* "<device>-a<attempt>" after the first */
} profile_client_id_scheme;

/* MQTT protocol levels as sent in CONNECT (and as paho's MQTTVERSION_* values). */
enum { PROFILE_MQTT_3_1_1 = 4, PROFILE_MQTT_5 = 5 };

typedef struct profile_group {
	char *name;                  /* [A-Za-z0-9_-]+, unique; used in expectations */
	int64_t devices;             /* resolved from share */
	int64_t first_device;        /* groups are contiguous ranges of device indexes */
	char *share;                 /* the share as written ("50%", "120"), or "" if defaulted */
	profile_strategy strategy;
	int mqtt_version;            /* PROFILE_MQTT_3_1_1 or PROFILE_MQTT_5 */
	int qos;                     /* 0 or 1, for subscriptions and probes */
	int64_t keep_alive_ns;
	int clean_session;           /* MQTT 5: clean start */
	/* reconnect-per-attempt only */
	int64_t attempt_interval_ns; /* from one attempt's CONNECT to the next */
	int64_t attempt_window_ns;   /* how long an attempt waits for the effect */
	profile_client_id_scheme client_id_scheme;
	/* keep-connection only: reconnecting after an unexpected disconnect */
	int64_t backoff_initial_ns;
	int64_t backoff_max_ns;
	int64_t backoff_reset_after_ns; /* the backoff resets only after a connection lasted this long */
	profile_pos pos;             /* the group's entry in the profile */
} profile_group;

typedef struct profile_policy {
	char *name;                  /* AWS policy name, [A-Za-z0-9+=,.@_-]{1,128} */
	char *path;                  /* absolute path of the JSON document */
	char *document;              /* the document's text, NUL-terminated */
	size_t document_len;
	char sha256[65];             /* lowercase hex of the document */
	profile_pos pos;             /* where the profile names the file */
} profile_policy;

typedef enum profile_swap_kind {
	PROFILE_SWAP_ATTACH_DETACH = 0, /* attach "after" policies, detach "before" ones, per certificate */
	PROFILE_SWAP_POLICY_VERSION,    /* CreatePolicyVersion(setAsDefault) on the one "before" policy */
	PROFILE_SWAP_TRIGGER_TOPIC,     /* each device publishes a trigger; a rule swaps its policies */
} profile_swap_kind;

typedef enum profile_swap_direction {
	PROFILE_SWAP_GRANT = 0,      /* the after policies allow what the before ones deny */
	PROFILE_SWAP_REVOKE,         /* the after policies deny what the before ones allow */
} profile_swap_direction;

typedef struct profile_swap {
	profile_swap_kind kind;
	profile_swap_direction direction;
	double rate;                 /* control-plane calls per second */
	int max_retries;             /* per call, after ThrottlingException, with jitter */
	char *trigger_topic;         /* trigger-topic only; may contain ${client_id}, ${device} */
	char *response_topic;        /* trigger-topic only; "" = the probe topic */
} profile_swap;

typedef enum profile_probe_kind {
	PROFILE_PROBE_ECHO = 0,      /* each device publishes probes to a topic it subscribes to */
	PROFILE_PROBE_PROBER,        /* a separate prober with its own policy publishes to devices */
} profile_probe_kind;

typedef enum profile_probe_via {
	PROFILE_PROBE_VIA_MQTT = 0,  /* prober publishes over its own MQTT connection */
	PROFILE_PROBE_VIA_HTTP,      /* prober uses the data-plane Publish API */
} profile_probe_via;

typedef struct profile_probe {
	profile_probe_kind kind;
	char *topic;                 /* template with ${client_id} and/or ${device} */
	int shared_topic;            /* all devices use one topic (probe payload names the device) */
	int64_t interval_ns;         /* between probes, per device */
	int qos;
	profile_probe_via via;
	int64_t payload_size;        /* bytes per probe, at least the probe header */
} profile_probe;

/*
 * The lifecycle-event observer: one extra MQTT connection of the
 * coordinator, subscribed to $aws/events/presence/disconnected/+, whose
 * events tag devices disconnected for reasons other than authorization.
 */
typedef struct profile_observer {
	int enabled;                 /* default on */
	char *certificate;           /* absolute path; "" = the run creates one */
	char *private_key;           /* absolute path; "" = the run creates one */
} profile_observer;

typedef struct profile_timing {
	int64_t connect_timeout_ns;  /* per CONNECT until CONNACK */
	int64_t settle_ns;           /* after the last device connected, before the swap */
	int64_t observe_timeout_ns;  /* after the swap; devices without an effect are censored */
	int64_t drain_ns;            /* after observing, before disconnecting */
} profile_timing;

typedef struct profile_expectation {
	char *text;                  /* as written, e.g. "reconnect.p99 < 30s" */
	struct expect_expr *expr;    /* parsed with results/expect.h; owned by the profile */
	profile_pos pos;             /* where the string starts in the profile */
} profile_expectation;

typedef struct profile {
	char *path;                  /* the profile file as given to profile_load */
	char *dir;                   /* its directory; relative paths are resolved against it */
	char *name;
	char *description;
	profile_target target;
	profile_fleet fleet;
	profile_group *groups;
	size_t group_count;
	profile_policy *before;      /* attached while connecting and settling */
	size_t before_count;
	profile_policy *after;       /* in force after the swap */
	size_t after_count;
	profile_swap swap;
	profile_probe probe;
	profile_timing timing;
	profile_observer observer;
	profile_expectation *expect;
	size_t expect_count;
	char hash[65];               /* profile_hash of the resolved profile */
} profile;

typedef enum profile_severity {
	PROFILE_SEVERITY_ERROR = 0,
	PROFILE_SEVERITY_WARNING,
} profile_severity;

typedef struct profile_issue {
	profile_severity severity;
	char message[PL_ERRMSG_MAX]; /* "file:line:column: ..." or "--set k=v: ..." */
	profile_pos pos;             /* 0/0 for overrides and whole-profile issues */
	pl_err code;                 /* PL_ERR_IO for unreadable files, PL_ERR_PARSE, PL_ERR_INVALID */
} profile_issue;

/* Every error and warning found while loading, in file order. Caller-owned. */
typedef struct profile_issues {
	profile_issue *items;
	size_t count;
	size_t capacity;
	size_t errors;               /* items with PROFILE_SEVERITY_ERROR */
	size_t warnings;
} profile_issues;

/* Frees the items (not the struct itself) and zeroes it; NULL is a no-op. */
void profile_issues_clear(profile_issues *issues);

typedef struct profile_load_opts {
	const char *const *overrides; /* "key=value" strings, applied in order after the file */
	size_t override_count;
	profile_issues *issues;       /* optional: receives every error and warning */
	int skip_policy_files;        /* nonzero: do not read or check policy documents (the
				       * hash then differs, because it covers their SHA-256) */
} profile_load_opts;

/*
 * Loads, resolves and validates the profile at path. opts may be NULL.
 * Returns PL_OK and sets *out, or an error code with the first error in e
 * (every error goes to opts->issues when given) and *out NULL:
 * PL_ERR_IO when the file cannot be read, PL_ERR_PARSE for YAML syntax
 * errors, PL_ERR_INVALID for everything else.
 */
pl_err profile_load(profile **out, const char *path, const profile_load_opts *opts,
		    pl_errmsg *e);

/*
 * Like profile_load, from text in memory. name is used in messages and as
 * the profile's path; relative policy paths resolve against base_dir
 * (NULL = the current directory).
 */
pl_err profile_load_text(profile **out, const char *text, size_t len, const char *name,
			 const char *base_dir, const profile_load_opts *opts, pl_errmsg *e);

/* Frees p and everything it owns; NULL is a no-op. */
void profile_free(profile *p);

/*
 * Writes the resolved profile as YAML that profile_load accepts: every key
 * with its value, defaults included, durations with units, paths absolute,
 * and secrets replaced by the "${env:NAME}" they came from (or removed).
 * *out is malloc'd and NUL-terminated; the caller frees it.
 */
pl_err profile_format(const profile *p, char **out, size_t *len, pl_errmsg *e);

/* Writes profile_format's text to path atomically (temporary file, rename). */
pl_err profile_write_file(const profile *p, const char *path, pl_errmsg *e);

/*
 * Stable SHA-256 (lowercase hex) of the resolved profile: the same settings
 * and policy documents give the same hash on every host, whatever the file
 * paths, comments, key order or formatting. Shards with different hashes
 * belong to different experiments. Also stored in p->hash.
 */
void profile_hash(const profile *p, char out[65]);

/*
 * Upper bound of a run's length in ns: connecting at fleet.connect_rate,
 * settle, the swap's control-plane calls at swap.rate, observe_timeout and
 * drain.
 */
int64_t profile_expected_duration(const profile *p);

/*
 * Control-plane calls the swap makes: attaches plus detaches per
 * certificate (once for a shared certificate), or 1 for a policy-version
 * swap.
 */
int64_t profile_swap_calls(const profile *p);

/*
 * The confirmation window of a revoke: how long a probe must stay
 * undelivered before it counts as lost. Two probe intervals, at least 1 s,
 * so that delivery delays are not taken for the effect.
 */
int64_t profile_revoke_confirm_ns(const profile *p);

/* The group named name, or NULL. */
const profile_group *profile_find_group(const profile *p, const char *name);

/* The group that device index belongs to, or NULL when index is out of range. */
const profile_group *profile_group_of(const profile *p, int64_t index);

/* Device name of index: "<client_id_prefix><index, zero-padded to 6 digits>". */
pl_err profile_device_name(const profile *p, int64_t index, char *buf, size_t len);

/*
 * Client id of device index for attempt (1-based): the device name, or
 * "<device name>-a<attempt>" for the second and later attempts of groups with
 * fresh-per-attempt client ids.
 */
pl_err profile_client_id(const profile *p, int64_t index, int64_t attempt, char *buf,
			 size_t len);

/*
 * Expands ${client_id} and ${device} in a topic template (probe.topic,
 * swap.trigger_topic). Returns PL_ERR_RANGE when buf is too small.
 */
pl_err profile_expand_topic(const char *template_text, const char *device, const char *client_id,
			    char *buf, size_t len);

/* One simulator plugin option ("plugin_opt_<key> <value>"), in the simulator's syntax. */
typedef struct profile_sim_option {
	char key[64];
	char value[128];
} profile_sim_option;

#define PROFILE_SIM_OPTIONS_MAX 32

/*
 * Fills out (room for max entries, PROFILE_SIM_OPTIONS_MAX is always
 * enough) with the simulator plugin options that target.simulator sets:
 * the reactions to denials, the MQTT quotas, region and account, the seed,
 * and the control-plane throttles (api_throttle_<Operation>,
 * api_throttle_status). Pass each to sim_options_add. propagation,
 * refresh_phase and connect_fresh_snapshot are sim_options fields instead;
 * profile_propagation_text formats the first. Returns the number of entries.
 */
size_t profile_simulator_options(const profile *p, profile_sim_option *out, size_t max);

/* Formats target.simulator.propagation as the simulator parses it ("uniform:20s-40s"). */
void profile_propagation_text(const profile_propagation *prop, char *buf, size_t len);

/*
 * Checks a name (profile, group): 1 to 64 of the characters A-Z, a-z, 0-9,
 * '-' and '_', so that `--set` paths and expectations can name it. The
 * message shows the name.
 */
pl_err profile_check_name(const char *text, pl_errmsg *e);

/* Names for the enums, as written in profiles ("keep-connection", "attach-detach", ...). */
const char *profile_strategy_name(profile_strategy s);
const char *profile_swap_kind_name(profile_swap_kind k);
const char *profile_target_kind_name(profile_target_kind k);

#endif
