/*
 * The policy swap: the control-plane calls that change what the devices may
 * do, issued from the awsapi pool at the profile's swap.rate.
 *
 *   attach-detach   per certificate: AttachPolicy for each "after" policy,
 *                   then DetachPolicy for each "before" policy, in that order
 *                   (as in the background experiment). With a shared
 *                   certificate this is one sequence for the whole fleet.
 *   policy-version  CreatePolicyVersion of the "before" policy with the
 *                   "after" document, then SetDefaultPolicyVersion: one
 *                   global change, so t_swap_start and t_swap are global.
 *   trigger-topic   one TRIGGER per device, sent from the coordinator thread at
 *                   the same pace: the device publishes it on its own
 *                   connection (harness/swap_trigger.h), and the rule that
 *                   receives it swaps the certificate's policies, so t_swap
 *                   is unknown.
 *
 * For each device, t_swap_start is when its first call was sent and t_swap
 * when its last call returned success (CLOCK_MONOTONIC). Calls that fail
 * after their retries mark the device's swap as failed; its row is then
 * censored with the reason "swap-failed". The pool threads
 * report both as swap notes; the coordinator thread forwards them to the
 * workers as SWAP STARTED and SWAP DONE. A trigger-topic device's
 * t_swap_start is its trigger's publish time, which its worker reports in
 * TRIGGERED after starting the detection itself, so nothing is forwarded.
 */
#ifndef PL_SWAP_H
#define PL_SWAP_H

#include "common/error.h"
#include "harness/coordinator.h"

/*
 * Submits the swap's calls, pacing submissions so the fleet-wide call rate
 * stays at swap.rate, and pumps worker messages while it waits. Returns once
 * every call is submitted (not finished: c->swap_jobs_finished counts those),
 * or PL_ERR_INTERRUPTED when the run is stopped meanwhile.
 */
pl_err swap_start(coordinator *c, pl_errmsg *e);

/* Control-plane calls one swap job makes. */
unsigned swap_calls_per_job(const profile *p);

#endif
