#include "harness/fleet_target.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/log.h"
#include "simulator/sim.h"

#define LOG_TAG "fleet"

pl_err fleet_target_dir(const profile *p, const char *dir, char *out, size_t len, pl_errmsg *e)
{
	const char *inv = p->fleet.inventory;
	int w;

	if (dir != NULL && dir[0] != '\0')
		w = snprintf(out, len, "%s", dir);
	else if (inv != NULL && inv[0] != '\0')
		w = snprintf(out, len, "%s", inv);
	else
		w = snprintf(out, len, "fleets/%s", p->name);
	if (w < 0 || (size_t)w >= len)
		return pl_errmsg_set(e, PL_ERR_RANGE, "fleet directory path is too long");
	return PL_OK;
}

static pl_err make_dirs(const char *path, pl_errmsg *e)
{
	char buf[PATH_MAX];

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0700) != 0 && errno != EEXIST)
			return pl_errmsg_set(e, PL_ERR_IO, "cannot create %s: %s", buf, strerror(errno));
		*p = '/';
	}
	if (mkdir(buf, 0700) != 0 && errno != EEXIST)
		return pl_errmsg_set(e, PL_ERR_IO, "cannot create %s: %s", buf, strerror(errno));
	return PL_OK;
}

/* Starts the simulator on <fleet dir>/sim. */
static pl_err start_simulator(fleet_target *ft, const profile *p, const char *fleet_dir,
			      pl_errmsg *e)
{
	const profile_simulator *ps = &p->target.simulator;
	char state_dir[PATH_MAX];
	profile_sim_option options[PROFILE_SIM_OPTIONS_MAX];
	size_t count = profile_simulator_options(p, options, PROFILE_SIM_OPTIONS_MAX);
	sim_options o;
	pl_err err = PL_OK;

	if (snprintf(state_dir, sizeof(state_dir), "%s/sim", fleet_dir) >= (int)sizeof(state_dir))
		return pl_errmsg_set(e, PL_ERR_RANGE, "fleet directory path is too long");
	sim_options_init(&o);
	o.state_dir = state_dir;
	o.mqtt_port = ps->mqtt_port;
	o.api_port = ps->control_port;
	/* The profile's quotas, region and account, so that the fleet's certificates
	 * are made under the same limits and ARNs as in a run. */
	for (size_t i = 0; err == PL_OK && i < count; i++)
		err = sim_options_add(&o, options[i].key, options[i].value, e);
	if (err == PL_OK)
		err = sim_start(&ft->sim, &o, e);
	return err;
}

pl_err fleet_target_open(fleet_target *ft, const profile *p, const char *fleet_dir,
			 pl_errmsg *e)
{
	awsapi_config cfg;
	char line[1024];
	pl_err err;

	memset(ft, 0, sizeof(*ft));
	err = make_dirs(fleet_dir, e);
	if (err == PL_OK && p->target.kind == PROFILE_TARGET_SIMULATOR)
		err = start_simulator(ft, p, fleet_dir, e);
	if (err == PL_OK)
		err = target_from_profile(&ft->target, p, ft->sim, e);
	if (err != PL_OK) {
		fleet_target_close(ft);
		return err;
	}
	target_describe(&ft->target, line, sizeof(line));
	PL_INFO(LOG_TAG, "%s", line);
	awsapi_config_init(&cfg);
	target_api_config(&ft->target, &cfg);
	target_api_rates(p, &cfg);
	err = awsapi_ctx_create(&ft->api, &cfg, e);
	if (err != PL_OK)
		fleet_target_close(ft);
	return err;
}

void fleet_target_close(fleet_target *ft)
{
	pl_errmsg e;

	awsapi_ctx_free(ft->api);
	ft->api = NULL;
	if (ft->sim != NULL && sim_stop(ft->sim, &e) != PL_OK)
		PL_WARN(LOG_TAG, "simulator: %s", e.msg);
	sim_free(ft->sim);
	ft->sim = NULL;
	target_clear(&ft->target);
}
