#include "harness/target.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simulator/sim.h"

static int given(const char *s)
{
	return s != NULL && s[0] != '\0';
}

static pl_err copy_field(char *dst, size_t len, const char *value, const char *what,
			 pl_errmsg *e)
{
	if (strlen(value) >= len)
		return pl_errmsg_set(e, PL_ERR_RANGE, "target: %s is longer than %zu bytes", what,
				     len - 1);
	memcpy(dst, value, strlen(value) + 1);
	return PL_OK;
}

/* Keys from the settings win over the environment and the files. */
static pl_err aws_credentials_of(target_info *t, const target_aws_settings *s, pl_errmsg *e)
{
	aws_credentials *c = &t->credentials;
	pl_err err;

	if (!given(s->access_key_id))
		return credentials_resolve(c, s->credentials_profile, e);
	if (!given(s->secret_access_key))
		return pl_errmsg_set(e, PL_ERR_INVALID,
				     "target: an access key id is set without a secret access key");
	memset(c, 0, sizeof(*c));
	err = copy_field(c->access_key_id, sizeof(c->access_key_id), s->access_key_id,
			 "access key id", e);
	if (err == PL_OK)
		err = copy_field(c->secret_access_key, sizeof(c->secret_access_key),
				 s->secret_access_key, "secret access key", e);
	if (err == PL_OK && given(s->session_token))
		err = copy_field(c->session_token, sizeof(c->session_token), s->session_token,
				 "session token", e);
	snprintf(c->source, sizeof(c->source), "profile settings");
	return err;
}

static pl_err aws_region_of(target_info *t, const target_aws_settings *s, pl_errmsg *e)
{
	const char *region = given(s->region) ? s->region : t->credentials.region;

	/* Keys from the settings skip credentials_resolve, which reads these otherwise. */
	if (!given(region))
		region = getenv("AWS_REGION");
	if (!given(region))
		region = getenv("AWS_DEFAULT_REGION");

	if (!given(region))
		return pl_errmsg_set(e, PL_ERR_INVALID,
				     "target: no AWS region; set target.aws.region, AWS_REGION or "
				     "the profile's region");
	return copy_field(t->region, sizeof(t->region), region, "region", e);
}

/* Copies a base URL setting, which must start with http:// or https://. */
static pl_err copy_url(char *dst, size_t len, const char *url, const char *what, pl_errmsg *e)
{
	if (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0)
		return pl_errmsg_set(e, PL_ERR_INVALID, "target: %s '%s' is not a URL", what, url);
	return copy_field(dst, len, url, what, e);
}

/* Sets the MQTT host, the SNI and, unless the settings gave one, the data plane. */
static pl_err set_mqtt_host(target_info *t, const char *host, pl_errmsg *e)
{
	pl_err err = copy_field(t->mqtt_host, sizeof(t->mqtt_host), host, "MQTT endpoint", e);

	if (err != PL_OK)
		return err;
	snprintf(t->sni, sizeof(t->sni), "%s", t->mqtt_host);
	if (t->data_endpoint[0] == '\0')
		snprintf(t->data_endpoint, sizeof(t->data_endpoint), "https://%s", t->mqtt_host);
	return PL_OK;
}

static pl_err aws_endpoints_of(target_info *t, const target_aws_settings *s, pl_errmsg *e)
{
	pl_err err = PL_OK;

	if (given(s->control_endpoint))
		err = copy_url(t->control_endpoint, sizeof(t->control_endpoint),
			       s->control_endpoint, "control endpoint", e);
	else
		snprintf(t->control_endpoint, sizeof(t->control_endpoint),
			 "https://iot.%s.amazonaws.com", t->region);
	if (err == PL_OK && given(s->data_endpoint))
		err = copy_url(t->data_endpoint, sizeof(t->data_endpoint), s->data_endpoint,
			       "data endpoint", e);
	if (err == PL_OK && given(s->mqtt_endpoint))
		err = set_mqtt_host(t, s->mqtt_endpoint, e);
	return err;
}

pl_err target_from_aws(target_info *t, const target_aws_settings *s, pl_errmsg *e)
{
	pl_err err;

	memset(t, 0, sizeof(*t));
	t->mqtt_port = s->port == 0 ? 8883 : s->port;
	if (t->mqtt_port != 8883 && t->mqtt_port != TARGET_ALPN_PORT)
		return pl_errmsg_set(e, PL_ERR_INVALID,
				     "target: AWS IoT takes MQTT over TLS on port 8883 or 443, not %d",
				     t->mqtt_port);
	if (t->mqtt_port == TARGET_ALPN_PORT)
		snprintf(t->alpn, sizeof(t->alpn), "%s", TARGET_ALPN_MQTT);
	err = aws_credentials_of(t, s, e);
	if (err == PL_OK)
		err = aws_region_of(t, s, e);
	if (err == PL_OK)
		err = aws_endpoints_of(t, s, e);
	if (err == PL_OK && given(s->root_ca))
		err = copy_field(t->ca_file, sizeof(t->ca_file), s->root_ca, "root CA path", e);
	if (err == PL_OK)
		snprintf(t->id, sizeof(t->id), "aws:%s:%s", t->region, t->control_endpoint);
	if (err != PL_OK)
		target_clear(t);
	return err;
}

pl_err target_from_simulator(target_info *t, const char *state_dir, int api_port,
			     const char *region, int mqtt_port, const char *ca_file, pl_errmsg *e)
{
	char path[TARGET_PATH_MAX];
	pl_err err;

	memset(t, 0, sizeof(*t));
	if (api_port <= 0 || api_port > 65535)
		return pl_errmsg_set(e, PL_ERR_INVALID, "target: simulator API port %d is invalid",
				     api_port);
	t->simulator = 1;
	err = copy_field(t->region, sizeof(t->region), given(region) ? region : "us-east-1",
			 "region", e);
	if (err != PL_OK)
		return err;
	snprintf(t->control_endpoint, sizeof(t->control_endpoint), "http://127.0.0.1:%d",
		 api_port);
	snprintf(t->data_endpoint, sizeof(t->data_endpoint), "%s", t->control_endpoint);
	snprintf(t->mqtt_host, sizeof(t->mqtt_host), "127.0.0.1");
	snprintf(t->sni, sizeof(t->sni), "localhost");
	t->mqtt_port = mqtt_port;
	if (ca_file != NULL)
		snprintf(t->ca_file, sizeof(t->ca_file), "%s", ca_file);
	snprintf(path, sizeof(path), "%s/credentials", state_dir);
	err = credentials_read_file(&t->credentials, path, "policylag-sim", 0, e);
	if (err != PL_OK) {
		pl_errmsg_prefix(e, "simulator credentials");
		target_clear(t);
		return err;
	}
	snprintf(t->credentials.source, sizeof(t->credentials.source), "%s [policylag-sim]", path);
	snprintf(t->id, sizeof(t->id), "simulator:%s", state_dir);
	return PL_OK;
}

pl_err target_from_profile(target_info *t, const profile *p, const struct sim *s,
			   pl_errmsg *e)
{
	const profile_aws *a = &p->target.aws;
	target_aws_settings settings = {
		.region = a->region,
		.control_endpoint = a->control_endpoint,
		.mqtt_endpoint = a->mqtt_endpoint,
		.data_endpoint = a->data_endpoint,
		.credentials_profile = a->credentials_profile,
		.access_key_id = a->access_key_id,
		.secret_access_key = a->secret_access_key,
		.session_token = a->session_token,
		.root_ca = a->root_ca,
		.port = a->port,
	};
	char real[PATH_MAX];

	if (p->target.kind != PROFILE_TARGET_SIMULATOR)
		return target_from_aws(t, &settings, e);
	if (realpath(sim_state_dir(s), real) == NULL)
		snprintf(real, sizeof(real), "%s", sim_state_dir(s));
	return target_from_simulator(t, real, sim_api_port(s), p->target.simulator.region,
				     sim_mqtt_port(s), sim_ca_path(s), e);
}

void target_api_config(const target_info *t, awsapi_config *cfg)
{
	cfg->control_endpoint = t->control_endpoint;
	cfg->data_endpoint = t->data_endpoint[0] ? t->data_endpoint : NULL;
	cfg->region = t->region;
	cfg->credentials = &t->credentials;
	/* The simulator's API is plain HTTP; AWS's uses the system's CA bundle, which
	 * contains Amazon's roots, unless a bundle is named. */
	cfg->ca_file = !t->simulator && t->ca_file[0] ? t->ca_file : NULL;
}

void target_api_rates(const profile *p, awsapi_config *cfg)
{
	const profile_quotas *q = &p->target.simulator.quotas;
	const struct {
		awsapi_op op;
		double rate;
	} quotas[] = {
		{ AWSAPI_ATTACH_POLICY, q->attach_detach_policy },
		{ AWSAPI_DETACH_POLICY, q->attach_detach_policy },
		{ AWSAPI_CREATE_POLICY_VERSION, q->policy_write },
		{ AWSAPI_SET_DEFAULT_POLICY_VERSION, q->policy_write },
		{ AWSAPI_CREATE_POLICY, q->policy_write },
		{ AWSAPI_CREATE_CERTIFICATE_FROM_CSR, q->create_certificate_from_csr },
		{ AWSAPI_CREATE_KEYS_AND_CERTIFICATE, q->create_keys_and_certificate },
	};

	cfg->tps_scale = 0.95;
	if (p->target.kind != PROFILE_TARGET_SIMULATOR)
		return;
	for (size_t i = 0; i < sizeof(quotas) / sizeof(quotas[0]); i++)
		cfg->tps[quotas[i].op] = quotas[i].rate > 0 ? quotas[i].rate : -1;
}

pl_err target_discover(target_info *t, awsapi_ctx *ctx, pl_errmsg *e)
{
	char host[TARGET_HOST_MAX];
	int data_known = t->data_endpoint[0] != '\0';
	awsapi_client *client = NULL;
	pl_err err;

	if (t->simulator || t->mqtt_host[0] != '\0')
		return PL_OK;
	err = awsapi_client_create(&client, ctx, e);
	if (err == PL_OK)
		err = awsapi_describe_endpoint(client, "iot:Data-ATS", host, sizeof(host), NULL, e);
	awsapi_client_free(client);
	if (err == PL_OK)
		err = set_mqtt_host(t, host, e);
	if (err == PL_OK && !data_known)
		err = awsapi_ctx_set_data_endpoint(ctx, t->data_endpoint, e);
	if (err != PL_OK)
		pl_errmsg_prefix(e, "finding the MQTT endpoint");
	return err;
}

void target_describe(const target_info *t, char *buf, size_t len)
{
	char key[32];

	credentials_mask(t->credentials.access_key_id, key, sizeof(key));
	snprintf(buf, len,
		 "%s target, region %s, control plane %s, data plane %s, MQTT %s:%d%s%s, key %s from %s",
		 t->simulator ? "simulator" : "aws", t->region, t->control_endpoint,
		 t->data_endpoint[0] ? t->data_endpoint : "(DescribeEndpoint)",
		 t->mqtt_host[0] ? t->mqtt_host : "(DescribeEndpoint)", t->mqtt_port,
		 t->alpn[0] ? " ALPN " : "", t->alpn, key, t->credentials.source);
}

void target_clear(target_info *t)
{
	if (t != NULL)
		credentials_clear(&t->credentials);
}
