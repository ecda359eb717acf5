/*
 * Which MQTT client ids are connected, and each client id's lifecycle
 * versionNumber. The plugin records connects and disconnects on the broker
 * thread, and the HTTP API thread checks whether a client id is connected
 * (DeleteConnection, /_sim/disconnect). Every call is thread-safe.
 *
 * An entry stays after its client id disconnects, so that the next
 * connection continues the version numbers; memory grows with the number of
 * distinct client ids seen since the broker started.
 */
#ifndef SIM_PRESENCE_H
#define SIM_PRESENCE_H

#include <stdint.h>

#include "common/error.h"

typedef struct sim_presence sim_presence;

pl_err sim_presence_create(sim_presence **out);

/* Frees the registry. NULL is a no-op. */
void sim_presence_free(sim_presence *pr);

/*
 * Counts a new connection of client_id. *version gets its versionNumber:
 * 0 for the client id's first connection, one more for each later one.
 * *others gets how many other connections of client_id are still counted
 * (a takeover whose older connection has not closed yet).
 */
pl_err sim_presence_connect(sim_presence *pr, const char *client_id, int64_t *version,
			    int64_t *others);

/* Counts the end of one connection of client_id; unknown ids are ignored. */
void sim_presence_disconnect(sim_presence *pr, const char *client_id);

/* Returns 1 when client_id has at least one open connection. */
int sim_presence_connected(sim_presence *pr, const char *client_id);

#endif
