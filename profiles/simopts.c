/*
 * target.simulator as simulator plugin options: the keys and value syntax
 * of the plugin's option parser and of its HTTP API's throttles, so that the
 * harness passes a profile to the simulator without translating names.
 */
#include <stdarg.h>
#include <stdio.h>

#include "profiles/profile.h"

typedef struct option_list {
	profile_sim_option *items;
	size_t count;
	size_t max;
} option_list;

static void add(option_list *list, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void add(option_list *list, const char *key, const char *fmt, ...)
{
	profile_sim_option *option;
	va_list ap;

	if (list->count == list->max)
		return;
	option = &list->items[list->count++];
	snprintf(option->key, sizeof(option->key), "%s", key);
	va_start(ap, fmt);
	vsnprintf(option->value, sizeof(option->value), fmt, ap);
	va_end(ap);
}

/* The plugin reads rates as plain numbers per second and "off" for no limit. */
static void add_rate(option_list *list, const char *key, double per_second)
{
	if (per_second == 0.0)
		add(list, key, "off");
	else
		add(list, key, "%.10g", per_second);
}

/* The HTTP API reads "RATE[/BURST]" per operation; 0 means no throttle. */
static void add_throttle(option_list *list, const char *operation, double per_second)
{
	char key[64];

	snprintf(key, sizeof(key), "api_throttle_%s", operation);
	add(list, key, "%.10g", per_second);
}

static void add_control_plane(option_list *list, const profile_quotas *q)
{
	static const char *const policy_writes[] = { "CreatePolicy", "CreatePolicyVersion",
						     "SetDefaultPolicyVersion", "DeletePolicy",
						     "DeletePolicyVersion" };

	add_throttle(list, "AttachPolicy", q->attach_detach_policy);
	add_throttle(list, "DetachPolicy", q->attach_detach_policy);
	for (size_t i = 0; i < sizeof(policy_writes) / sizeof(policy_writes[0]); i++)
		add_throttle(list, policy_writes[i], q->policy_write);
	add_throttle(list, "CreateKeysAndCertificate", q->create_keys_and_certificate);
	add_throttle(list, "CreateCertificateFromCsr", q->create_certificate_from_csr);
	add(list, "api_throttle_status", "%d", q->throttling_status);
}

size_t profile_simulator_options(const profile *p, profile_sim_option *out, size_t max)
{
	const profile_simulator *sim = &p->target.simulator;
	const profile_quotas *q = &sim->quotas;
	option_list list = { out, 0, max };

	add(&list, "mqtt311_subscribe_denied", "%s",
	    sim->subscribe_denied_mqtt311 == PROFILE_SUBSCRIBE_DENIED_SUBACK ? "suback_failure"
									   : "disconnect");
	add(&list, "mqtt5_publish_qos0_denied", "%s",
	    sim->publish_qos0_denied_mqtt5 == PROFILE_QOS0_DENIED_DISCONNECT ? "disconnect" : "drop");
	add_rate(&list, "connect_rate_per_client", q->connect_per_client_id);
	add_rate(&list, "connect_rate_per_account", q->connect_per_account);
	add_rate(&list, "publish_rate_per_connection", q->publish_per_connection);
	add(&list, "subscriptions_per_connection", "%lld", (long long)q->subscriptions_per_connection);
	add(&list, "subscriptions_per_request", "%lld", (long long)q->filters_per_subscribe);
	add(&list, "region", "%s", sim->region);
	add(&list, "account", "%s", sim->account);
	add(&list, "api_region", "%s", sim->region);
	add(&list, "api_account_id", "%s", sim->account);
	if (sim->seed != 0)
		add(&list, "seed", "%llu", (unsigned long long)sim->seed);
	add_control_plane(&list, q);
	return list.count;
}
