/*
 * Test fixture: the simulator's control-plane API (simulator/api.h) running
 * in the test process on a free loopback port, with its own state file, CA
 * and generated credentials in a temporary directory.
 */
#ifndef PL_TEST_SIM_API_FIXTURE_H
#define PL_TEST_SIM_API_FIXTURE_H

#include <stddef.h>

#include "harness/credentials.h"

typedef struct sim_state sim_state;
typedef struct sim_api sim_api;

typedef struct sim_api_fixture {
	char dir[64];            /* temporary directory, removed by sim_api_fixture_stop */
	sim_state *state;
	sim_api *api;
	aws_credentials creds;   /* read from the API's credentials file */
	char endpoint[64];       /* "http://127.0.0.1:<port>" */
} sim_api_fixture;

/*
 * Starts the API with extra plugin options given as key, value pairs ending
 * with NULL (options may be NULL). Fails the running test on any error.
 */
void sim_api_fixture_start(sim_api_fixture *f, const char *const *options);

/* Stops the API, frees the store and removes the directory. */
void sim_api_fixture_stop(sim_api_fixture *f);

/* Writes "<dir>/<leaf>" into buf. */
void sim_api_fixture_path(const sim_api_fixture *f, const char *leaf, char *buf, size_t len);

/* Number of certificates in the simulator's store. */
size_t sim_api_fixture_certificates(sim_api_fixture *f);

#endif
