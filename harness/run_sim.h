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
 * coordinator's simulator fields; run_api_create sets the MQTT endpoint.
 */
pl_err run_sim_start(coordinator *c, const char *state_dir, struct sim **out, pl_errmsg *e);

struct awsapi_ctx;

/* Receives c->api as soon as it exists, before its first request. */
typedef void (*run_api_created_fn)(struct awsapi_ctx *api);

/*
 * Creates c->api and c->pool for the profile's target as harness/target.h
 * resolves it: the simulator s, or AWS IoT with the profile's settings.
 * Calls DescribeEndpoint when the aws target names no MQTT endpoint, and
 * points the coordinator's MQTT endpoint and trust store at the target.
 * on_created (may be NULL) gets c->api before DescribeEndpoint, so that a
 * signal handler can cancel that call.
 */
pl_err run_api_create(coordinator *c, const struct sim *s, run_api_created_fn on_created,
		      pl_errmsg *e);

#endif
