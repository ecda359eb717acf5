/*
 * The phases of a run, driven on the coordinator thread:
 *
 *   connect  PHASE connect to the workers, which connect their devices at
 *            the fleet's connect rate; ends when every keep-connection
 *            device is subscribed, or after the pacing time plus the
 *            connect timeout
 *   settle   PHASE probe (probing starts), then settle_ns of quiet
 *   swap     the control-plane calls (harness/swap.h); ends when they return
 *   observe  until every device has an effect or the observation timeout
 *            (plus the revoke confirmation window) passed
 *   drain    PHASE drain; the workers send their RECORDs and DONE and exit
 */
#ifndef PL_RUN_PHASES_H
#define PL_RUN_PHASES_H

#include "harness/coordinator.h"

/* Runs connect, settle, swap and observe; returns early when the run is stopped. */
void run_phases(coordinator *c);

/*
 * Drains the workers, writes the rows still waiting for ground truth, and
 * writes a censored row for every device without one.
 */
void run_drain(coordinator *c);

/* Whether a second signal asked to stop at once. */
int run_stop_now(const coordinator *c);

#endif
