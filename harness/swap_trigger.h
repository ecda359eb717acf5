/*
 * Trigger publishes for trigger-topic swaps. In AWS the change is made by a
 * topic rule when a device publishes to the trigger topic; the rule swaps
 * the policies of the publishing certificate. The coordinator sends each
 * device's worker a TRIGGER, and the device publishes one QoS 1 PUBLISH on
 * its own connection: at once when it is connected and subscribed, else
 * right after the SUBACK of its next connection (workers/protocol.h).
 *
 * t_swap_start is the publish call's time, which the worker reports in
 * TRIGGERED and uses itself to start the device's detection. t_swap stays
 * unknown, because the rule does not report when it made the change.
 */
#ifndef PL_SWAP_TRIGGER_H
#define PL_SWAP_TRIGGER_H

#include "harness/coordinator.h"

/*
 * Sends the TRIGGER of device (an index into c->devices) to its worker.
 * A trigger that cannot be sent (topic too long, worker dead) ends the
 * device's swap as failed. Coordinator thread only.
 */
void swap_trigger_send(coordinator *c, uint32_t device);

/*
 * Handles a worker's TRIGGERED: writes the swap_call event and the swap
 * notes. A trigger that was sent starts the device's swap at its send time.
 * One rejected or never sent fails the swap. One whose connection ended
 * before the PUBACK counts as sent, because the rule may have run.
 */
void swap_trigger_on_reply(coordinator *c, const coord_worker *w, const wp_triggered *r);

#endif
