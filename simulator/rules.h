/*
 * An optional topic rule that reproduces the cloud side of the background
 * experiment: on a publish to the rule's topic, attach and detach the
 * configured policies for the publishing certificate, then publish a
 * response. AWS runs this as a topic rule with a Lambda action. Here it runs
 * on the broker thread from the plugin's MESSAGE event, because the response
 * goes out through mosquitto's broker API.
 *
 * Options (plugin options starting with "rule_"):
 *   rule_topic             MQTT topic filter that triggers the rule (unset: no rule)
 *   rule_attach            comma-separated policy names to attach to the certificate
 *   rule_detach            comma-separated policy names to detach from it
 *   rule_response_topic    topic of the response publish (unset: none);
 *                          "${clientid}" in it is replaced by the publisher's client id
 *   rule_response_payload  payload of the response ("{\"swapped\":true}")
 *   rule_response_qos      0 or 1 (0)
 *   rule_once              on|off: change the policies only on the first matching
 *                          publish of each certificate (on); the response is
 *                          published on every matching publish, as the
 *                          experiment's function did
 *
 * Threads: created and configured at plugin init; sim_rules_on_publish only
 * from the broker thread.
 */
#ifndef SIM_RULES_H
#define SIM_RULES_H

#include <stddef.h>

#include "common/error.h"

typedef struct sim_state sim_state;
typedef struct sim_rules sim_rules;

pl_err sim_rules_create(sim_rules **out);
void sim_rules_free(sim_rules *r);

/* Applies one "rule_*" option; unknown keys and bad values are PL_ERR_INVALID. */
pl_err sim_rules_option(sim_rules *r, const char *key, const char *value, pl_errmsg *e);

/* Nonzero when a rule topic is configured. */
int sim_rules_enabled(const sim_rules *r);

/*
 * Runs the rule for one publish. When topic matches the rule's filter and
 * cert_id is not NULL, attaches and detaches the configured policies for the
 * certificate in st and saves st; then calls publish for the response. Takes
 * the store's lock, so the caller must not hold it. Returns 1 when the rule
 * fired, 0 when it did not match, -1 when the store rejected a change (logged,
 * and the response is not sent).
 */
int sim_rules_on_publish(sim_rules *r, sim_state *st, const char *topic, const char *cert_id,
			 const char *client_id,
			 void (*publish)(void *ctx, const char *topic, const void *payload,
					 size_t len, int qos),
			 void *ctx);

#endif
