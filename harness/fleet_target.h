/*
 * The target a fleet command talks to, opened from a profile: for the
 * simulator target, a simulator started on the fleet's own state directory
 * (<fleet dir>/sim, so that its certificates persist with the inventory);
 * for the aws target, AWS IoT with credentials as the AWS CLI finds them.
 */
#ifndef PL_FLEET_TARGET_H
#define PL_FLEET_TARGET_H

#include "common/error.h"
#include "harness/awsapi.h"
#include "harness/target.h"
#include "profiles/profile.h"

struct sim;

typedef struct fleet_target {
	target_info target;
	struct sim *sim;   /* the simulator started for the command, or NULL */
	awsapi_ctx *api;
} fleet_target;

/*
 * Resolves the fleet directory: dir when given, else the profile's
 * fleet.inventory, else "fleets/<profile name>".
 */
pl_err fleet_target_dir(const profile *p, const char *dir, char *out, size_t len, pl_errmsg *e);

/* Opens the profile's target for the fleet in fleet_dir (created 0700 when missing). */
pl_err fleet_target_open(fleet_target *ft, const profile *p, const char *fleet_dir,
			 pl_errmsg *e);

/* Frees the API context, stops a simulator this module started, clears secrets. */
void fleet_target_close(fleet_target *ft);

#endif
