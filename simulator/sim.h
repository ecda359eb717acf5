/*
 * Launcher of the AWS-IoT-like simulator: mosquitto 2.0.11 with the
 * policylag plugin, on loopback, with its own CA and state directory.
 * Used by `policylag sim`, the harness (target "simulator") and the tests.
 *
 * sim_start creates (once) the CA and the loopback server certificate in
 * the state directory, writes mosquitto.conf there, starts mosquitto as a
 * child process and returns when the broker accepts TLS connections.
 * sim_stop sends SIGTERM and waits; sim_free also stops a running broker.
 *
 * Files in the state directory:
 *   ca.pem, ca.key (0600)           simulator CA; device certificates chain to it
 *   server.pem, server.key (0600)   loopback server certificate
 *   state.json                      registry (policies, certificates, things)
 *   mosquitto.conf                  generated on every start
 *   ground-truth.jsonl              one line per policy snapshot taken or refreshed
 *   denials.jsonl                   one CloudWatch-like line per authorization failure
 *   credentials (0600)              access key of the HTTP API, profile [policylag-sim]
 *   mosquitto.log                   broker output
 *
 * Not thread-safe: one thread starts and stops a sim.
 */
#ifndef SIM_SIM_H
#define SIM_SIM_H

#include <stdint.h>

#include "common/error.h"

typedef struct sim sim;

/* An extra `plugin_opt_<key> <value>` line for the plugin. */
typedef struct sim_plugin_opt {
	const char *key;
	const char *value;
} sim_plugin_opt;

#define SIM_MAX_EXTRA_OPTS 64

typedef struct sim_options {
	const char *state_dir;      /* required; created if missing */
	const char *mosquitto_path; /* default /usr/sbin/mosquitto */
	/* default: $POLICYLAG_PLUGIN, else policylag_sim.so next to the running
	 * binary, else the install path */
	const char *plugin_path;
	int mqtt_port;              /* 0 = a free port */
	int api_port;               /* 0 = a free port; -1 = no HTTP API */
	/* "immediate" | "ttl:30s" | "uniform:360s-480s" (the default) */
	const char *propagation;
	const char *refresh_phase;  /* "connect" (default) | "random" */
	int connect_fresh_snapshot; /* 1 (default): a new connection takes a fresh snapshot */
	/* Every other plugin option (quotas, reactions), as documented in
	 * docs/simulator.md; passed through unchanged. */
	sim_plugin_opt extra[SIM_MAX_EXTRA_OPTS];
	int extra_count;
	int64_t start_timeout_ns;   /* default 10 s */
} sim_options;

void sim_options_init(sim_options *o);

/* Appends a plugin option; PL_ERR_LIMIT when the table is full. */
pl_err sim_options_add(sim_options *o, const char *key, const char *value, pl_errmsg *e);

/* Starts the simulator; returns when the broker accepts TLS connections. */
pl_err sim_start(sim **out, const sim_options *o, pl_errmsg *e);

const char *sim_mqtt_host(const sim *s);      /* "127.0.0.1" */
int sim_mqtt_port(const sim *s);
int sim_api_port(const sim *s);               /* -1 without the API */
const char *sim_ca_path(const sim *s);        /* CA certificate (PEM) */
const char *sim_ca_key_path(const sim *s);    /* CA private key (PEM, 0600) */
const char *sim_state_dir(const sim *s);
const char *sim_state_path(const sim *s);     /* state.json */
const char *sim_ground_truth_path(const sim *s);
const char *sim_denials_path(const sim *s);
/* AWS-style credentials file of the HTTP API (profile [policylag-sim]). */
const char *sim_credentials_path(const sim *s);
int sim_pid(const sim *s);

/* Whether the broker process is still running. */
int sim_running(sim *s);

/* Stops the broker (SIGTERM, then SIGKILL after 5 s). PL_ERR_CHILD when it
 * had exited on its own with a failure. */
pl_err sim_stop(sim *s, pl_errmsg *e);

/* Stops the broker if it runs and frees s. NULL is a no-op. */
void sim_free(sim *s);

#endif
