/*
 * Trigger publishes for trigger-topic swaps. In AWS the change is made by a
 * topic rule when a device publishes to the trigger topic; the rule swaps
 * the policies of the publishing certificate. Here the coordinator makes
 * that publish for each certificate: a short MQTT 3.1.1 connection with the
 * device's certificate and the client id "<device>-trigger" (a second client
 * id, so the device's own connection is not taken over), one QoS 1 PUBLISH,
 * and a disconnect.
 *
 * t_swap_start is the PUBLISH's send time; t_swap stays unknown, because
 * only the rule knows when the change was made.
 */
#ifndef PL_SWAP_TRIGGER_H
#define PL_SWAP_TRIGGER_H

#include "harness/coordinator.h"

/*
 * Publishes the trigger for one device (or for the shared certificate when
 * device is UINT32_MAX) and reports it as swap notes. Runs on a pool thread.
 */
void swap_trigger_publish(coordinator *c, uint32_t device);

/*
 * Keeps one paho handle alive for the whole swap, so that paho's global
 * state is never torn down between two trigger connections (paho.mqtt.c
 * frees it when its last client is destroyed, and re-creating it while other
 * threads create clients races). Call begin before the first trigger and
 * end after the pool has finished.
 */
void swap_trigger_begin(coordinator *c);
void swap_trigger_end(coordinator *c);

#endif
