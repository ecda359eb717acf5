/*
 * Run set-up around the coordinator: the embedded simulator for the
 * simulator target, and the control-plane client for either target.
 */
#ifndef PL_RUN_SIM_H
#define PL_RUN_SIM_H

#include "common/error.h"
#include "harness/coordinator.h"

struct sim;

/*
 * Starts the simulator with the profile's propagation model, quotas and (for
 * trigger-topic swaps) the rule, with its state in state_dir. Fills the
 * coordinator's endpoint and simulator fields.
 */
pl_err run_sim_start(coordinator *c, const char *state_dir, struct sim **out, pl_errmsg *e);

/*
 * Creates c->api and c->pool for the target: the simulator's loopback API
 * with its generated credentials, or AWS IoT with the profile's endpoints
 * and the resolved AWS credentials.
 */
pl_err run_api_create(coordinator *c, const struct sim *s, pl_errmsg *e);

#endif
