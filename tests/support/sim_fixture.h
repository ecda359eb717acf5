/*
 * Test fixture around the simulator: a temporary state directory with the
 * simulator CA, device certificates registered in the state file, policies
 * and attachments, and a running mosquitto with the plugin. Changes made
 * while the broker runs are saved to the state file, which the plugin
 * reloads (plugin option state_watch, set by the fixture to 50 ms). The
 * change functions return once the plugin has logged the reload.
 *
 * Every function aborts the test (ck_abort) on failure.
 */
#ifndef TEST_SIM_FIXTURE_H
#define TEST_SIM_FIXTURE_H

#include <limits.h>

#include "simulator/sim.h"
#include "tests/support/mqtt_client.h"

typedef struct tsim_device {
	char name[64];
	char cert_path[PATH_MAX];
	char key_path[PATH_MAX];
	char cert_id[65];
	char cert_arn[256];
} tsim_device;

typedef struct tsim {
	char dir[PATH_MAX];
	sim_options options;
	sim *sim;
} tsim;

/* Creates the state directory and CA; the broker is not started yet. */
void tsim_init(tsim *t);

/* Adds a plugin option for the next tsim_start (strings must outlive it). */
void tsim_option(tsim *t, const char *key, const char *value);

void tsim_start(tsim *t);

/* Stops the broker and removes the state directory. */
void tsim_cleanup(tsim *t);

/* Creates a key and certificate signed by the CA and registers it ACTIVE. */
void tsim_device_create(tsim *t, const char *name, tsim_device *d);

/* Creates a policy, or a new default version when it exists. */
void tsim_policy_put(tsim *t, const char *name, const char *document);
void tsim_attach(tsim *t, const char *policy, const tsim_device *d);
void tsim_detach(tsim *t, const char *policy, const tsim_device *d);
void tsim_cert_status(tsim *t, const tsim_device *d, const char *status);

/* Connect options for a device. */
tmqtt_options tsim_client_options(const tsim *t, const tsim_device *d, const char *client_id,
				  int mqtt_version);

/*
 * Sends one request to the simulator's HTTP API, SigV4-signed by libcurl
 * with the simulator's generated credentials for service ("iot" or
 * "iotdata"). Returns the HTTP status, 0 when no response came.
 */
long tsim_api_request(const tsim *t, const char *method, const char *path, const char *service,
		      const char *body);

/* Counts lines of a file in the state directory that contain needle. */
int tsim_count_lines(const tsim *t, const char *file, const char *needle);

#endif
