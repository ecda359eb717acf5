/*
 * Where the harness sends its API calls and MQTT connections: real AWS IoT
 * Core, or the embedded simulator on loopback.
 *
 * AWS: credentials as the AWS CLI resolves them (harness/credentials.h)
 * unless the settings carry keys; region from the settings, else the
 * environment or the profile's "region"; control plane
 * https://iot.<region>.amazonaws.com unless given; MQTT endpoint from the
 * settings, else DescribeEndpoint(iot:Data-ATS) through target_discover;
 * data plane https://<MQTT endpoint> unless given; port 8883, or 443 with
 * ALPN "x-amzn-mqtt-ca"; SNI is the endpoint's host name (AWS rejects TLS
 * connections without it).
 *
 * Simulator: control and data plane http://127.0.0.1:<api port>, the
 * simulator's region, credentials from the [policylag-sim] profile of the
 * "credentials" file in the simulator's state directory.
 *
 * A target_info contains secrets: clear it with target_clear, and show it only
 * through target_describe, which masks them.
 */
#ifndef PL_TARGET_H
#define PL_TARGET_H

#include <stddef.h>

#include "common/error.h"
#include "harness/awsapi.h"
#include "harness/credentials.h"
#include "profiles/profile.h"

struct sim;

#define TARGET_URL_MAX 512
#define TARGET_HOST_MAX 256
#define TARGET_PATH_MAX 1024

/* The AWS IoT port for MQTT over TLS with ALPN "x-amzn-mqtt-ca". */
#define TARGET_ALPN_PORT 443
#define TARGET_ALPN_MQTT "x-amzn-mqtt-ca"

/* Settings of the aws target; NULL or "" means "not given". */
typedef struct target_aws_settings {
	const char *region;
	const char *control_endpoint;    /* base URL of the control plane */
	const char *mqtt_endpoint;       /* host name of MQTT (and of the data plane) */
	const char *data_endpoint;       /* base URL of the data plane, else https://<MQTT host> */
	const char *credentials_profile; /* profile in the shared credentials file */
	const char *access_key_id;       /* with secret_access_key: overrides the files */
	const char *secret_access_key;
	const char *session_token;
	const char *root_ca;             /* CA bundle for MQTT and HTTPS (AmazonRootCA1.pem) */
	int port;                        /* 8883 or 443; 0 means 8883 */
} target_aws_settings;

typedef struct target_info {
	int simulator;                        /* 1 for the simulator, 0 for AWS */
	char id[TARGET_URL_MAX];              /* names the target in inventories, no secrets */
	char region[CREDENTIALS_REGION_MAX + 1];
	char control_endpoint[TARGET_URL_MAX];
	char data_endpoint[TARGET_URL_MAX];   /* "" until known */
	aws_credentials credentials;
	char ca_file[TARGET_PATH_MAX];        /* trust store for MQTT (and HTTPS); "" = system */
	char mqtt_host[TARGET_HOST_MAX];      /* "" until known */
	int mqtt_port;
	char alpn[32];                        /* "" or "x-amzn-mqtt-ca" */
	char sni[TARGET_HOST_MAX];            /* server name sent in the TLS handshake */
} target_info;

/*
 * Resolves the aws target without network access. Returns PL_ERR_INVALID
 * for a missing region, a port other than 8883 or 443, or an endpoint that
 * is not a URL; PL_ERR_NOT_FOUND when no credentials exist.
 */
pl_err target_from_aws(target_info *t, const target_aws_settings *s, pl_errmsg *e);

/*
 * Resolves the simulator target from its state directory (credentials file
 * "credentials", profile policylag-sim), its API port, its region (the
 * simulator's api_region; NULL means us-east-1), and its MQTT port and CA
 * file (mqtt_port 0 and ca_file NULL when not known yet).
 */
pl_err target_from_simulator(target_info *t, const char *state_dir, int api_port,
			     const char *region, int mqtt_port, const char *ca_file, pl_errmsg *e);

/*
 * Resolves the profile's target. The simulator target is the running
 * simulator s (its state directory, ports, CA and credentials), and its id
 * names the real path of the state directory, as fleet inventories record
 * it. The aws target comes from the profile's target.aws settings through
 * target_from_aws, and s is ignored.
 */
pl_err target_from_profile(target_info *t, const profile *p, const struct sim *s,
			   pl_errmsg *e);

/*
 * Fills the target's fields of cfg (endpoints, region, credentials, CA).
 * cfg points into t, and awsapi_ctx_create copies what it needs.
 */
void target_api_config(const target_info *t, awsapi_config *cfg);

/*
 * Sets cfg's client-side rates for the profile's target: the simulator's
 * configured quotas (no client-side limit for a quota of 0), or AWS's
 * default quotas, each scaled to 95% so that pacing, not throttling, sets
 * the rate.
 */
void target_api_rates(const profile *p, awsapi_config *cfg);

/*
 * Finds the MQTT endpoint with DescribeEndpoint(iot:Data-ATS), through a
 * client of ctx, when it is not known. Sets the SNI and, unless the
 * settings gave one, the data-plane endpoint https://<host> in t and in
 * ctx. A no-op for the simulator and when the host is set. Set-up only:
 * no data-plane call of ctx may be in flight.
 */
pl_err target_discover(target_info *t, awsapi_ctx *ctx, pl_errmsg *e);

/* One line for logs: kind, region, endpoints and the masked access key id. */
void target_describe(const target_info *t, char *buf, size_t len);

/* Zeroes the secrets in t. */
void target_clear(target_info *t);

#endif
