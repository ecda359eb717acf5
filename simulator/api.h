/*
 * The simulator's AWS IoT REST API: control plane (policies, certificates,
 * things, thing groups, attachments), data plane (Publish, DeleteConnection)
 * and the simulator-only /_sim endpoints (ground truth, propagation model,
 * simulated server-side disconnect).
 *
 * The API runs its own libmicrohttpd thread on a loopback address inside the
 * plugin. Every request is SigV4-verified (simulator/sigv4.h) with the
 * simulator's generated credentials. Handlers change the store under the
 * store's own lock and save it before they answer, so an acknowledged change
 * survives a crash. Anything that needs the broker (publish, disconnect,
 * propagation model) is queued as a sim_broker_action (simulator/actions.h) and
 * performed by the broker thread when the plugin calls sim_api_drain from its
 * tick event.
 *
 * Threads: sim_api_config_* are single-threaded set-up calls. sim_api_start
 * and sim_api_stop run on the broker thread at plugin init and cleanup.
 * sim_api_drain must be called only from the broker thread.
 */
#ifndef SIM_API_H
#define SIM_API_H

#include <stdint.h>

#include "common/error.h"
#include "simulator/actions.h"

typedef struct sim_state sim_state;
typedef struct sim_api_config sim_api_config;
typedef struct sim_api sim_api;
typedef struct sim_presence sim_presence;

/* Creates a configuration with the defaults listed at sim_api_config_option. */
pl_err sim_api_config_create(sim_api_config **out);
void sim_api_config_free(sim_api_config *cfg);

/*
 * Applies one plugin option. Keys start with "api_"; an unknown key or a bad
 * value is PL_ERR_INVALID with a message naming both. Keys (default):
 *   api_port              TCP port, 0 picks a free one (0)
 *   api_bind              loopback address to bind (127.0.0.1); only 127.0.0.1 or ::1
 *   api_credentials_file  where the generated access key is written, mode 0600,
 *                         profile [policylag-sim] (required)
 *   api_region            region in ARNs, endpoints and the SigV4 scope (us-east-1)
 *   api_account_id        12-digit account id in ARNs (123456789012)
 *   api_ground_truth_file JSON-lines file of snapshot refreshes (unset: 404)
 *   api_throttle          on|off: the per-operation token buckets (on)
 *   api_throttle_<Operation>  RATE[/BURST]: tokens per second and bucket size
 *                         for one operation; "0" turns that bucket off. Defaults
 *                         are AWS's quotas with BURST = RATE (AttachPolicy 15)
 *   api_throttle_status   400|429: HTTP status of a control-plane ThrottlingException (400)
 *   api_cert_disconnect_delay  duration before a non-ACTIVE certificate's
 *                         connections are dropped, e.g. "90s" (0)
 *   api_skew              accepted request-time skew, duration (15m)
 *   api_max_body          largest request body in bytes (131072)
 *   api_queue             capacity of the broker action queue (4096)
 *   api_endpoint          address DescribeEndpoint returns (127.0.0.1)
 *   api_ca_cert, api_ca_key  the simulator CA that signs CreateKeysAndCertificate
 *                         and CreateCertificateFromCsr certificates (unset: those
 *                         operations fail with InternalFailureException)
 *   api_trust_dir         directory (mosquitto "capath") where registered
 *                         certificates are written under OpenSSL hash names (unset: not written)
 */
pl_err sim_api_config_option(sim_api_config *cfg, const char *key, const char *value,
			     pl_errmsg *e);

/*
 * Gives the API the plugin's registry of connected client ids (not owned;
 * it must outlive the API). With it, DeleteConnection and /_sim/disconnect
 * return 404 ResourceNotFoundException for a client id that is not
 * connected. Without it (NULL, the default) they queue the disconnect and
 * return 200.
 */
void sim_api_config_presence(sim_api_config *cfg, sim_presence *presence);

/*
 * Loads or creates the credentials file and starts listening. state is the
 * plugin's store, already loaded (sim_state_load) with its file path set:
 * the API saves it (sim_state_save) before acknowledging each change. state
 * stays owned by the caller and must outlive the API.
 */
pl_err sim_api_start(sim_api **out, const sim_api_config *cfg, sim_state *state,
		     pl_errmsg *e);

/* The TCP port the API listens on (the chosen one when api_port was 0). */
uint16_t sim_api_listen_port(const sim_api *api);

/*
 * Requests refused by the throttle so far for one operation ("AttachPolicy")
 * or, with NULL, for all of them. Thread-safe.
 */
uint64_t sim_api_throttled(sim_api *api, const char *operation);

/*
 * Hands every due queued action to fn and frees it afterwards. Broker thread
 * only (the plugin's tick event). fn must not call back into the API.
 */
void sim_api_drain(sim_api *api, void (*fn)(void *ctx, const sim_broker_action *a), void *ctx);

/* Stops the HTTP thread, frees queued actions and the API. NULL is a no-op. */
void sim_api_stop(sim_api *api);

#endif
