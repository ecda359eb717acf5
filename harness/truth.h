/*
 * The simulator's ground truth: when each connection's policy snapshot was
 * really taken or refreshed. The plugin appends one JSON object per line to
 * ground-truth.jsonl (simulator/sim.h); the same lines are served by the
 * control plane at GET /_sim/ground-truth.
 *
 * A device's true effect time is the first snapshot of one of its
 * connections taken at or after the control-plane call that changed its
 * access, because from that snapshot on the broker authorizes the device
 * with the new policies. A device's connections are the lines whose client
 * id is the device name, or "<device>-a<attempt>" (the workers' fresh client
 * ids per attempt).
 *
 * Immutable after loading; safe to read from any thread.
 */
#ifndef PL_TRUTH_H
#define PL_TRUTH_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

typedef struct truth_table truth_table;

/*
 * Reads a ground-truth JSON-lines file. Each line is an object with the
 * client id ("clientId") and the CLOCK_MONOTONIC time of the snapshot
 * ("monoNs"), an "event" (why the snapshot was taken) and "changed"
 * (whether a refresh found different policies). Refreshes that changed
 * nothing are ignored; lines without an id or time are skipped and counted.
 * A line that is not JSON is an error naming the line; a last line without
 * its newline is ignored.
 */
pl_err truth_load_file(truth_table **out, const char *path, pl_errmsg *e);

/* Creates an empty table for truth_update. */
pl_err truth_create(truth_table **out, pl_errmsg *e);

/*
 * Reads the lines appended to path since the previous call, so a table can
 * follow the file while the simulator writes it. A last line without its
 * newline is kept for the next call. A missing file is not an error (the
 * simulator creates it with its first snapshot).
 */
pl_err truth_update(truth_table *t, const char *path, pl_errmsg *e);

/* Same as truth_load_file, from text in memory (the body of GET /_sim/ground-truth). */
pl_err truth_load_text(truth_table **out, const char *text, size_t len, pl_errmsg *e);

void truth_free(truth_table *t);

/* Number of snapshot lines loaded, and lines skipped for missing fields. */
size_t truth_count(const truth_table *t);
size_t truth_skipped(const truth_table *t);

/*
 * The first snapshot time at or after from_ns of a connection of device,
 * or INT64_MIN when there is none. When the lines list the snapshot's
 * "policies", a snapshot with the same policies and versions as the
 * device's last one before from_ns does not count: it was taken before the
 * change was applied (a trigger-topic rule runs after its trigger). With
 * revoke set, a snapshot that still has every old policy does not count
 * either (taken between the attach and the detach of a swap).
 */
int64_t truth_effect(const truth_table *t, const char *device, int64_t from_ns, int revoke);

#endif
