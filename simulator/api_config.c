/* The API's plugin options ("api_*") and their defaults. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/parse.h"
#include "simulator/api_internal.h"

pl_err sim_api_config_create(sim_api_config **out)
{
	sim_api_config *cfg = calloc(1, sizeof(*cfg));

	if (cfg == NULL)
		return PL_ERR_NOMEM;
	snprintf(cfg->bind, sizeof(cfg->bind), "127.0.0.1");
	snprintf(cfg->region, sizeof(cfg->region), "us-east-1");
	snprintf(cfg->account, sizeof(cfg->account), "123456789012");
	snprintf(cfg->endpoint, sizeof(cfg->endpoint), "127.0.0.1");
	cfg->throttle_on = 1;
	for (int op = 0; op < API_OP__COUNT; op++) {
		cfg->rate[op] = api_op_default_tps((api_op)op);
		cfg->burst[op] = cfg->rate[op];
	}
	cfg->throttle_status = 400;
	cfg->skew_ns = 15 * 60 * PL_NS_PER_S;
	cfg->max_body = 128 * 1024;
	cfg->queue_capacity = 4096;
	*out = cfg;
	return PL_OK;
}

void sim_api_config_presence(sim_api_config *cfg, sim_presence *presence)
{
	cfg->presence = presence;
}

void sim_api_config_free(sim_api_config *cfg)
{
	if (cfg == NULL)
		return;
	free(cfg->credentials_file);
	free(cfg->ground_truth_file);
	free(cfg->ca_cert);
	free(cfg->ca_key);
	free(cfg->trust_dir);
	free(cfg);
}

static pl_err set_string(char **dst, const char *value)
{
	char *copy = strdup(value);

	if (copy == NULL)
		return PL_ERR_NOMEM;
	free(*dst);
	*dst = copy;
	return PL_OK;
}

static pl_err set_fixed(char *dst, size_t len, const char *key, const char *value,
			pl_errmsg *e)
{
	if (value[0] == '\0' || strlen(value) >= len)
		return pl_errmsg_set(e, PL_ERR_INVALID, "%s: value must be 1 to %zu characters",
				     key, len - 1);
	memcpy(dst, value, strlen(value) + 1);
	return PL_OK;
}

/* "api_throttle_<Operation> RATE[/BURST]": tokens per second and bucket size. */
static pl_err set_throttle(sim_api_config *cfg, const char *key, const char *value,
			   pl_errmsg *e)
{
	const char *op_name = key + strlen("api_throttle_");
	char rate_text[64];
	const char *slash = strchr(value, '/');
	size_t rate_len = slash != NULL ? (size_t)(slash - value) : strlen(value);
	double rate, burst;

	for (int op = 0; op < API_OP__COUNT; op++) {
		if (strcmp(api_op_name((api_op)op), op_name) != 0)
			continue;
		if (rate_len >= sizeof(rate_text))
			return pl_errmsg_set(e, PL_ERR_INVALID, "%s: invalid rate '%s'", key, value);
		memcpy(rate_text, value, rate_len);
		rate_text[rate_len] = '\0';
		if (pl_parse_double(rate_text, 0, 1e6, &rate, e) != PL_OK) {
			pl_errmsg_prefix(e, "%s", key);
			return PL_ERR_INVALID;
		}
		burst = rate < 1 ? 1 : rate;
		if (slash != NULL && pl_parse_double(slash + 1, 1, 1e6, &burst, e) != PL_OK) {
			pl_errmsg_prefix(e, "%s burst", key);
			return PL_ERR_INVALID;
		}
		cfg->rate[op] = rate;
		cfg->burst[op] = burst;
		return PL_OK;
	}
	return pl_errmsg_set(e, PL_ERR_INVALID, "%s: unknown operation '%s'", key, op_name);
}

static pl_err set_number(const char *key, const char *value, int64_t min, int64_t max,
			 int64_t *out, pl_errmsg *e)
{
	if (pl_parse_int64(value, min, max, out, e) != PL_OK) {
		pl_errmsg_prefix(e, "%s", key);
		return PL_ERR_INVALID;
	}
	return PL_OK;
}

static pl_err set_duration(const char *key, const char *value, int64_t *out, pl_errmsg *e)
{
	if (pl_parse_duration(value, 0, 24 * 3600 * PL_NS_PER_S, out, e) != PL_OK) {
		pl_errmsg_prefix(e, "%s", key);
		return PL_ERR_INVALID;
	}
	return PL_OK;
}

static pl_err set_numeric_option(sim_api_config *cfg, const char *key, const char *value,
				 pl_errmsg *e)
{
	int64_t n;
	pl_err err;

	if (strcmp(key, "api_port") == 0) {
		err = set_number(key, value, 0, 65535, &n, e);
		cfg->port = err == PL_OK ? (uint16_t)n : cfg->port;
	} else if (strcmp(key, "api_throttle_status") == 0) {
		err = set_number(key, value, 400, 429, &n, e);
		if (err == PL_OK && n != 400 && n != 429)
			err = pl_errmsg_set(e, PL_ERR_INVALID, "%s: must be 400 or 429", key);
		cfg->throttle_status = err == PL_OK ? (unsigned)n : cfg->throttle_status;
	} else if (strcmp(key, "api_max_body") == 0) {
		err = set_number(key, value, 1024, 16 * 1024 * 1024, &n, e);
		cfg->max_body = err == PL_OK ? (size_t)n : cfg->max_body;
	} else if (strcmp(key, "api_queue") == 0) {
		err = set_number(key, value, 1, 1000000, &n, e);
		cfg->queue_capacity = err == PL_OK ? (size_t)n : cfg->queue_capacity;
	} else if (strcmp(key, "api_cert_disconnect_delay") == 0) {
		err = set_duration(key, value, &cfg->cert_disconnect_delay_ns, e);
	} else if (strcmp(key, "api_skew") == 0) {
		err = set_duration(key, value, &cfg->skew_ns, e);
	} else {
		err = PL_ERR_NOT_FOUND;
	}
	return err;
}

pl_err sim_api_config_option(sim_api_config *cfg, const char *key, const char *value,
			     pl_errmsg *e)
{
	pl_err err = set_numeric_option(cfg, key, value, e);

	if (err != PL_ERR_NOT_FOUND)
		return err;
	if (strcmp(key, "api_bind") == 0) {
		/* Only loopback: the API accepts anyone holding the generated key. */
		if (strcmp(value, "127.0.0.1") != 0 && strcmp(value, "::1") != 0)
			return pl_errmsg_set(e, PL_ERR_INVALID,
					     "%s: '%s' is not 127.0.0.1 or ::1", key, value);
		return set_fixed(cfg->bind, sizeof(cfg->bind), key, value, e);
	}
	if (strcmp(key, "api_region") == 0)
		return set_fixed(cfg->region, sizeof(cfg->region), key, value, e);
	if (strcmp(key, "api_account_id") == 0) {
		if (strlen(value) != 12 || strspn(value, "0123456789") != 12)
			return pl_errmsg_set(e, PL_ERR_INVALID, "%s: '%s' is not 12 digits", key,
					     value);
		return set_fixed(cfg->account, sizeof(cfg->account), key, value, e);
	}
	if (strcmp(key, "api_endpoint") == 0)
		return set_fixed(cfg->endpoint, sizeof(cfg->endpoint), key, value, e);
	if (strcmp(key, "api_credentials_file") == 0)
		return set_string(&cfg->credentials_file, value);
	if (strcmp(key, "api_ground_truth_file") == 0)
		return set_string(&cfg->ground_truth_file, value);
	if (strcmp(key, "api_ca_cert") == 0)
		return set_string(&cfg->ca_cert, value);
	if (strcmp(key, "api_ca_key") == 0)
		return set_string(&cfg->ca_key, value);
	if (strcmp(key, "api_trust_dir") == 0)
		return set_string(&cfg->trust_dir, value);
	if (strcmp(key, "api_throttle") == 0) {
		if (pl_parse_bool(value, &cfg->throttle_on, e) != PL_OK) {
			pl_errmsg_prefix(e, "%s", key);
			return PL_ERR_INVALID;
		}
		return PL_OK;
	}
	if (strncmp(key, "api_throttle_", strlen("api_throttle_")) == 0)
		return set_throttle(cfg, key, value, e);
	return pl_errmsg_set(e, PL_ERR_INVALID, "unknown option '%s'", key);
}
