/* The simulator's generated access key (internal to simulator/api*.c). */
#ifndef SIM_API_CREDS_H
#define SIM_API_CREDS_H

#include "common/error.h"

typedef struct sim_api_creds {
	char access_key_id[32];
	char secret[64];
} sim_api_creds;

/*
 * Reads the [policylag-sim] profile from the shared-credentials file at
 * path, or generates a new key pair and writes the file (mode 0600) when
 * it does not exist. A file without the profile is an error, never replaced.
 */
pl_err sim_api_creds_load(const char *path, sim_api_creds *out, pl_errmsg *e);

#endif
