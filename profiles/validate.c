/*
 * Cross-field checks: combinations of keys that would make a run measure
 * something else than policy propagation (throttling, shared topics,
 * policies that change nothing). Each check reports at the key it names.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "profiles/internal.h"
#include "workers/detect.h"

/* AWS limits (AWS IoT Core quotas page): topic size and slashes, client id size. */
#define AWS_TOPIC_MAX_BYTES 256
#define AWS_TOPIC_MAX_SLASHES 7
#define AWS_CLIENT_ID_MAX_BYTES 128
#define AWS_PUBLISH_PER_CONNECTION 100.0
#define AWS_CONNECT_PER_CLIENT_ID 1.0
#define AWS_KEEP_ALIVE_MIN (30 * PL_NS_PER_S)
#define AWS_KEEP_ALIVE_MAX (1200 * PL_NS_PER_S)
/* Probe rates above this leave too little room under the 100/s per-connection quota. */
#define SAFE_PUBLISH_PER_CONNECTION 20.0

static const ptree *at(const ptree *root, const char *path)
{
	return ptree_find(root, path);
}

static const ptree *group_key(const ptree *root, const profile_group *g, const char *key)
{
	char path[128];

	snprintf(path, sizeof(path), "groups.%s.%s", g->name, key);
	return at(root, path);
}

/* The per-client-id CONNECT quota in force: the simulator's setting, or AWS's 1/s. */
static double connect_per_client_id(const profile *p)
{
	if (p->target.kind == PROFILE_TARGET_SIMULATOR)
		return p->target.simulator.quotas.connect_per_client_id;
	return AWS_CONNECT_PER_CLIENT_ID;
}

static void check_reconnect_group(loader *l, const ptree *root, const profile_group *g)
{
	const profile *p = &l->impl->pub;
	double quota = connect_per_client_id(p);
	char interval[32];
	char window[32];

	schema_format_duration(g->attempt_interval_ns, interval, sizeof(interval));
	schema_format_duration(g->attempt_window_ns, window, sizeof(window));
	if (g->attempt_window_ns >= g->attempt_interval_ns)
		loader_error(l, group_key(root, g, "attempt_window"),
			     "groups.%s.attempt_window: %s must be shorter than attempt_interval (%s), because each attempt disconnects before the next one connects",
			     g->name, window, interval);
	if (g->client_id_scheme == PROFILE_CLIENT_ID_FIXED && quota > 0.0 &&
	    (double)g->attempt_interval_ns < 2e9 / quota)
		loader_error(l, group_key(root, g, "attempt_interval"),
			     "groups.%s.attempt_interval: %s with a fixed client id is too close to the quota of %g CONNECT/s per client id, so throttling would be measured as policy delay; use at least %gs or client_id_scheme: fresh-per-attempt",
			     g->name, interval, quota, 2.0 / quota);
	if (g->attempt_window_ns < p->probe.interval_ns)
		loader_warning(l, group_key(root, g, "attempt_window"),
			       "groups.%s.attempt_window: %s is shorter than probe.interval, so some attempts send no probe",
			       g->name, window);
}

static void check_keep_group(loader *l, const ptree *root, const profile_group *g)
{
	const profile *p = &l->impl->pub;
	double quota = connect_per_client_id(p);

	if (g->backoff_max_ns < g->backoff_initial_ns)
		loader_error(l, group_key(root, g, "backoff_max"),
			     "groups.%s.backoff_max: must not be shorter than backoff_initial", g->name);
	if (quota > 0.0 && (double)g->backoff_initial_ns < 1e9 / quota)
		loader_warning(l, group_key(root, g, "backoff_initial"),
			       "groups.%s.backoff_initial: reconnecting sooner than the %g CONNECT/s per client id quota allows gets throttled",
			       g->name, quota);
}

static void check_groups(loader *l, const ptree *root)
{
	const profile *p = &l->impl->pub;

	for (size_t i = 0; i < p->group_count; i++) {
		const profile_group *g = &p->groups[i];

		if (g->strategy == PROFILE_STRATEGY_RECONNECT_PER_ATTEMPT)
			check_reconnect_group(l, root, g);
		else
			check_keep_group(l, root, g);
		if (g->keep_alive_ns < AWS_KEEP_ALIVE_MIN || g->keep_alive_ns > AWS_KEEP_ALIVE_MAX)
			loader_warning(l, group_key(root, g, "keep_alive"),
				       "groups.%s.keep_alive: AWS IoT accepts 30s to 1200s and changes other values (0 and above 1200s become 1200s, below 30s becomes 30s)",
				       g->name);
	}
}

/*
 * Checks the ${...} placeholders of a topic template and sets
 * *has_device_part. Returns whether the placeholders are valid.
 */
static int check_placeholders(loader *l, const ptree *node, const char *key, const char *topic,
			      int *has_device_part)
{
	*has_device_part = 0;
	for (const char *s = strstr(topic, "${"); s != NULL; s = strstr(s + 2, "${")) {
		if (strncmp(s, "${client_id}", 12) == 0 || strncmp(s, "${device}", 9) == 0) {
			*has_device_part = 1;
			continue;
		}
		if (strncmp(s, "${iot:", 6) == 0)
			loader_error(l, node,
				     "%s: '%s' uses a policy variable; in profiles write ${client_id} or ${device} (policy documents use ${iot:ClientId})",
				     key, topic);
		else
			loader_error(l, node,
				     "%s: unknown placeholder in '%s': expected ${client_id} or ${device}",
				     key, topic);
		return 0;
	}
	return 1;
}

/* Checks topic limits after expansion with the fleet's longest client id; returns whether they hold. */
static int check_topic_limits(loader *l, const ptree *node, const char *key, const char *topic,
			      int is_publish_topic)
{
	const profile *p = &l->impl->pub;
	char device[160];
	char client_id[160];
	char expanded[1024];
	size_t slashes = 0;
	int valid = 1;

	if (topic[0] == '\0') {
		loader_error(l, node, "%s: missing topic", key);
		return 0;
	}
	if (is_publish_topic && strpbrk(topic, "+#") != NULL) {
		loader_error(l, node, "%s: '%s' contains a wildcard (+ or #), but probes are published to it",
			     key, topic);
		valid = 0;
	}
	profile_device_name(p, p->fleet.devices - 1, device, sizeof(device));
	snprintf(client_id, sizeof(client_id), "%s-999999", device);
	if (profile_expand_topic(topic, device, client_id, expanded, sizeof(expanded)) != PL_OK ||
	    strlen(expanded) > AWS_TOPIC_MAX_BYTES) {
		loader_error(l, node, "%s: '%s' is longer than AWS IoT's %d bytes for a device's topic",
			     key, topic, AWS_TOPIC_MAX_BYTES);
		return 0;
	}
	for (const char *s = expanded; *s != '\0'; s++)
		slashes += *s == '/';
	if (slashes > AWS_TOPIC_MAX_SLASHES) {
		loader_error(l, node, "%s: '%s' has %zu slashes; AWS IoT allows at most %d", key, topic,
			     slashes, AWS_TOPIC_MAX_SLASHES);
		valid = 0;
	}
	return valid;
}

/* Checks a topic template's placeholders and AWS's limits; returns whether it is valid. */
static int check_topic(loader *l, const ptree *root, const char *key, const char *topic,
		       int *per_device)
{
	const ptree *node = at(root, key);
	int placeholders_valid = check_placeholders(l, node, key, topic, per_device);
	int limits_valid = check_topic_limits(l, node, key, topic, 1);

	return placeholders_valid && limits_valid;
}

/*
 * Checks probe.topic, then its combination with probe.shared_topic. Returns
 * whether probe.topic is valid on its own.
 */
static int check_probe_topic(loader *l, const ptree *root)
{
	const profile *p = &l->impl->pub;
	const ptree *node = at(root, "probe.topic");
	int per_device;

	if (!check_topic(l, root, "probe.topic", p->probe.topic, &per_device))
		return 0;
	if (!per_device && !p->probe.shared_topic)
		loader_error(l, node,
			     "probe.topic: '%s' is the same for every device, so each device would receive every other device's probes; add ${client_id} or ${device}, or set probe.shared_topic: true",
			     p->probe.topic);
	if (per_device && p->probe.shared_topic)
		loader_error(l, at(root, "probe.shared_topic"),
			     "probe.shared_topic: true, but probe.topic '%s' differs per device; remove ${client_id} and ${device} or set shared_topic: false",
			     p->probe.topic);
	return 1;
}

/*
 * Rejects a prober with per-attempt probe topics: the prober publishes to
 * each device's topic built once from the device name, so it cannot follow
 * the client id of every attempt of a fresh-per-attempt group.
 */
static void check_prober_client_ids(loader *l, const ptree *root)
{
	const profile *p = &l->impl->pub;

	if (p->probe.kind != PROFILE_PROBE_PROBER || strstr(p->probe.topic, "${client_id}") == NULL)
		return;
	for (size_t i = 0; i < p->group_count; i++) {
		const profile_group *g = &p->groups[i];

		if (g->strategy != PROFILE_STRATEGY_RECONNECT_PER_ATTEMPT ||
		    g->client_id_scheme != PROFILE_CLIENT_ID_FRESH_PER_ATTEMPT)
			continue;
		loader_error(l, at(root, "probe.topic"),
			     "probe.topic: '%s' uses ${client_id}, but group %s has fresh-per-attempt client ids and the prober publishes to one topic per device; write ${device} instead (with policies that allow it for every attempt's client id), or use probe.kind echo or client_id_scheme: fixed",
			     p->probe.topic, g->name);
		return;
	}
}

/*
 * Checks the trigger-topic swap's keys; returns whether swap.trigger_topic
 * is valid or unused. The comparison with probe.topic runs only when
 * probe.topic is valid.
 */
static int check_swap_topics(loader *l, const ptree *root, int probe_topic_valid)
{
	const profile *p = &l->impl->pub;
	int per_device;
	int trigger_valid;

	if (p->swap.kind != PROFILE_SWAP_TRIGGER_TOPIC) {
		if (p->swap.trigger_topic[0] != '\0')
			loader_error(l, at(root, "swap.trigger_topic"),
				     "swap.trigger_topic: applies only to swap.kind trigger-topic");
		return 1;
	}
	if (p->probe.kind != PROFILE_PROBE_PROBER)
		loader_error(l, at(root, "probe.kind"),
			     "probe.kind: a trigger-topic swap answers each trigger on the probe topic, so probe.kind must be prober");
	if (p->swap.trigger_topic[0] == '\0') {
		loader_error(l, at(root, "swap"),
			     "swap.trigger_topic: required for swap.kind trigger-topic: the topic each device publishes to so that the rule swaps its policies");
		return 1;
	}
	trigger_valid = check_topic(l, root, "swap.trigger_topic", p->swap.trigger_topic, &per_device);
	if (probe_topic_valid && p->swap.response_topic[0] != '\0' &&
	    strcmp(p->swap.response_topic, p->probe.topic) != 0)
		loader_error(l, at(root, "swap.response_topic"),
			     "swap.response_topic: the rule's response is the probe, so it must equal probe.topic ('%s'); leave it empty",
			     p->probe.topic);
	return trigger_valid;
}

/* Publishes per second on one device connection: probes sent and received, plus triggers. */
static double device_publish_rate(const profile *p)
{
	double per_interval = p->probe.kind == PROFILE_PROBE_ECHO ? 2.0 : 1.0;

	if (p->swap.kind == PROFILE_SWAP_TRIGGER_TOPIC)
		per_interval += 1.0;
	return per_interval * 1e9 / (double)p->probe.interval_ns;
}

static void check_probe_rate(loader *l, const ptree *root)
{
	const profile *p = &l->impl->pub;
	const ptree *node = at(root, "probe.interval");
	double rate = device_publish_rate(p);
	char interval[32];

	schema_format_duration(p->probe.interval_ns, interval, sizeof(interval));
	if (rate > AWS_PUBLISH_PER_CONNECTION)
		loader_error(l, node,
			     "probe.interval: %s gives %.4g publishes/s per connection (sent and received), above AWS IoT's %.0f/s, so throttling would be measured as denial; use a longer interval",
			     interval, rate, AWS_PUBLISH_PER_CONNECTION);
	else if (rate > SAFE_PUBLISH_PER_CONNECTION)
		loader_warning(l, node,
			       "probe.interval: %s gives %.4g publishes/s per connection; keep it under %.0f/s to stay clear of the 100/s quota",
			       interval, rate, SAFE_PUBLISH_PER_CONNECTION);
	if (p->probe.kind == PROFILE_PROBE_ECHO && p->probe.via == PROFILE_PROBE_VIA_HTTP)
		loader_error(l, at(root, "probe.via"),
			     "probe.via: http applies only to probe.kind prober; echo probes are published by the devices");
	if (p->probe.shared_topic && p->probe.kind == PROFILE_PROBE_ECHO)
		loader_error(l, at(root, "probe.shared_topic"),
			     "probe.shared_topic: echo probes on one shared topic reach every device; use a per-device topic or probe.kind prober");
}

/* A revoke's detection tracks a bounded number of undelivered probes per device. */
static void check_revoke_window(loader *l, const ptree *root)
{
	const profile *p = &l->impl->pub;
	int64_t confirm = profile_revoke_confirm_ns(p);
	int64_t shortest = confirm / (DETECT_WINDOW - 1) + 1;
	char interval[32];
	char window[32];
	char minimum[32];

	if (p->swap.direction != PROFILE_SWAP_REVOKE ||
	    detect_window_fits(confirm, p->probe.interval_ns))
		return;
	/* Round the suggestion up to a whole millisecond. */
	shortest = (shortest + PL_NS_PER_MS - 1) / PL_NS_PER_MS * PL_NS_PER_MS;
	schema_format_duration(p->probe.interval_ns, interval, sizeof(interval));
	schema_format_duration(confirm, window, sizeof(window));
	schema_format_duration(shortest, minimum, sizeof(minimum));
	loader_error(l, at(root, "probe.interval"),
		     "probe.interval: %s is too short for a revoke: a probe counts as lost after %s without delivery, and each device tracks at most %d undelivered probes, so the effect could be reported late; use at least %s",
		     interval, window, DETECT_WINDOW, minimum);
}

/*
 * Publishes per second over the fleet while probing: inbound (sent by
 * devices or the prober, plus triggers) and outbound (delivered to devices).
 */
static void fleet_publish_rates(const profile *p, double *inbound, double *outbound)
{
	double per_device = 1e9 / (double)p->probe.interval_ns;
	double devices = (double)p->fleet.devices;

	*outbound = devices * per_device;
	*inbound = p->probe.shared_topic ? per_device : devices * per_device;
	if (p->swap.kind == PROFILE_SWAP_TRIGGER_TOPIC)
		*inbound += devices * per_device;
}

static void check_account_rates(loader *l, const ptree *root)
{
	const profile *p = &l->impl->pub;
	const profile_quotas *q = &p->target.simulator.quotas;
	double inbound_quota = q->inbound_publish_per_account;
	double outbound_quota = q->outbound_publish_per_account;
	double inbound;
	double outbound;

	fleet_publish_rates(p, &inbound, &outbound);
	if ((inbound_quota > 0.0 && inbound > inbound_quota) ||
	    (outbound_quota > 0.0 && outbound > outbound_quota))
		loader_warning(l, at(root, "probe.interval"),
			       "probe.interval: %lld devices probing at this interval publish about %.0f/s and receive about %.0f/s, above AWS's account quotas (%.0f/s in, %.0f/s out), so probes will be throttled",
			       (long long)p->fleet.devices, inbound, outbound, inbound_quota,
			       outbound_quota);
}

/*
 * Warns when one worker's prober round does not fit into probe.interval. The
 * prober publishes its devices' probes in turn at 80% of the per-connection
 * quota (the coordinator's rate), so a longer round spaces each device's
 * probes, and the measurement error, further apart than the interval.
 */
static void check_prober_load(loader *l, const ptree *root)
{
	const profile *p = &l->impl->pub;
	double quota = AWS_PUBLISH_PER_CONNECTION;
	int64_t per_worker = p->fleet.worker_devices < p->fleet.devices ? p->fleet.worker_devices
									 : p->fleet.devices;
	double round_s;
	char interval[32];

	if (p->probe.kind != PROFILE_PROBE_PROBER || p->probe.via != PROFILE_PROBE_VIA_MQTT ||
	    p->probe.shared_topic)
		return;
	if (p->target.kind == PROFILE_TARGET_SIMULATOR &&
	    p->target.simulator.quotas.publish_per_connection > 0)
		quota = p->target.simulator.quotas.publish_per_connection;
	round_s = (double)per_worker / (quota * 0.8);
	if (round_s * 1e9 <= (double)p->probe.interval_ns)
		return;
	schema_format_duration(p->probe.interval_ns, interval, sizeof(interval));
	loader_warning(l, at(root, "fleet.worker_devices"),
		       "fleet.worker_devices: one prober connection publishes the probes of %lld devices at up to %.0f/s, so each device is probed every %.3g s, not every %s; use at most %lld devices per worker",
		       (long long)per_worker, quota * 0.8, round_s, interval,
		       (long long)(quota * 0.8 * (double)p->probe.interval_ns / 1e9));
}

static void check_swap(loader *l, const ptree *root)
{
	const profile *p = &l->impl->pub;
	const ptree *kind = at(root, "swap.kind");
	const ptree *policies = at(root, "policies");

	if (p->before_count == 0)
		loader_error(l, policies, "policies.before: at least one policy is required: devices need iot:Connect to connect");
	if (p->after_count == 0)
		loader_error(l, policies, "policies.after: at least one policy is required: the policies in force after the swap");
	if (p->swap.kind == PROFILE_SWAP_POLICY_VERSION && (p->before_count != 1 || p->after_count != 1))
		loader_error(l, kind,
			     "swap.kind: policy-version makes the one policies.after document the new default version of the one policies.before policy, so each list needs exactly one entry (found %zu and %zu)",
			     p->before_count, p->after_count);
	if (p->before_count > 10 || p->after_count > 10)
		loader_error(l, policies, "policies: AWS IoT attaches at most 10 policies to a certificate");
	if (p->fleet.certificates == PROFILE_CERTIFICATES_SHARED &&
	    p->swap.kind == PROFILE_SWAP_TRIGGER_TOPIC)
		loader_error(l, at(root, "fleet.certificates"),
			     "fleet.certificates: shared, but a trigger-topic swap changes the policies of the triggering device's certificate: the first trigger would swap every device at once and the other devices' swap times would be wrong; use per-device certificates or swap.kind attach-detach");
}

static void check_simulator_account(loader *l, const ptree *root)
{
	const profile_simulator *sim = &l->impl->pub.target.simulator;
	size_t digits = strspn(sim->account, "0123456789");

	if (digits != 12 || sim->account[digits] != '\0')
		loader_error(l, at(root, "target.simulator.account"),
			     "target.simulator.account: '%s' is not an AWS account id: expected 12 digits",
			     sim->account);
	if (sim->region[0] == '\0')
		loader_error(l, at(root, "target.simulator.region"),
			     "target.simulator.region: missing region, for example us-east-1");
}

/* Rates the run drives that the simulator's quotas would throttle. */
static void check_simulator_quotas(loader *l, const ptree *root)
{
	const profile *p = &l->impl->pub;
	const profile_quotas *q = &p->target.simulator.quotas;
	double swap_quota = p->swap.kind == PROFILE_SWAP_POLICY_VERSION ? q->policy_write
									: q->attach_detach_policy;

	if (q->connect_per_account > 0.0 && p->fleet.connect_rate > q->connect_per_account)
		loader_warning(l, at(root, "fleet.connect_rate"),
			       "fleet.connect_rate: above the simulator's connect_rate_per_account quota (%g/s), so connects will be throttled%s",
			       q->connect_per_account,
			       p->fleet.connect_rate_adaptive
				       ? " until the adaptive pacing lowers the rate" : "");
	if (swap_quota > 0.0 && p->swap.rate > swap_quota && profile_swap_calls(p) > 1)
		loader_warning(l, at(root, "swap.rate"),
			       "swap.rate: above the simulator's %s quota (%g/s), so swap calls will be throttled and retried",
			       p->swap.kind == PROFILE_SWAP_POLICY_VERSION ? "policy_write"
									   : "attach_detach_policy",
			       swap_quota);
}

static void check_target(loader *l, const ptree *root)
{
	const profile *p = &l->impl->pub;
	const profile_simulator *sim = &p->target.simulator;
	char observe[32];
	char longest[32];

	if (p->target.kind == PROFILE_TARGET_AWS) {
		if (p->target.aws.region[0] == '\0')
			loader_error(l, at(root, "target"), "target.aws.region: required for target.kind aws");
		if (p->target.aws.root_ca[0] == '\0')
			loader_error(l, at(root, "target"),
				     "target.aws.root_ca: required for target.kind aws: the path of the Amazon root CA (AmazonRootCA1.pem)");
		else if (access(p->target.aws.root_ca, R_OK) != 0)
			loader_error(l, at(root, "target.aws.root_ca"),
				     "target.aws.root_ca: cannot read '%s': %s", p->target.aws.root_ca,
				     strerror(errno));
		return;
	}
	check_simulator_quotas(l, root);
	check_simulator_account(l, root);
	schema_format_duration(p->timing.observe_timeout_ns, observe, sizeof(observe));
	schema_format_duration(sim->propagation.max_ns, longest, sizeof(longest));
	if (p->timing.observe_timeout_ns <= sim->propagation.max_ns)
		loader_warning(l, at(root, "timing.observe_timeout"),
			       "timing.observe_timeout: %s is not longer than the simulator's longest policy refresh period (%s), so some keep-connection devices will be censored",
			       observe, longest);
}

/* Checks fleet.client_id_prefix; returns whether the fleet's client ids are valid. */
static int check_client_ids(loader *l, const ptree *root)
{
	const profile *p = &l->impl->pub;
	char device[256];
	int valid = 1;

	if (profile_device_name(p, p->fleet.devices - 1, device, sizeof(device)) != PL_OK ||
	    strlen(device) + 7 > AWS_CLIENT_ID_MAX_BYTES) {
		loader_error(l, at(root, "fleet.client_id_prefix"),
			     "fleet.client_id_prefix: too long: client ids would exceed AWS IoT's %d bytes",
			     AWS_CLIENT_ID_MAX_BYTES);
		valid = 0;
	}
	for (const char *c = p->fleet.client_id_prefix; *c != '\0'; c++) {
		if (*c == '/' || *c == '+' || *c == '#' || *c <= ' ') {
			loader_error(l, at(root, "fleet.client_id_prefix"),
				     "fleet.client_id_prefix: '%s' contains '%c', which would break topics built from client ids",
				     p->fleet.client_id_prefix, *c);
			return 0;
		}
	}
	return valid;
}

static void check_connect_rate(loader *l, const ptree *root)
{
	const profile_fleet *f = &l->impl->pub.fleet;

	if (f->connect_rate_adaptive && f->connect_rate_floor > f->connect_rate)
		loader_error(l, at(root, "fleet.connect_rate_floor"),
			     "fleet.connect_rate_floor: %g/s is above fleet.connect_rate (%g/s); the floor must not exceed the configured rate",
			     f->connect_rate_floor, f->connect_rate);
}

/* A given observer identity needs both files; one alone is a typo, not a request. */
static void check_observer(loader *l, const ptree *root)
{
	const profile_observer *o = &l->impl->pub.observer;
	int has_cert = o->certificate[0] != '\0', has_key = o->private_key[0] != '\0';

	if (has_cert != has_key)
		loader_error(l, at(root, has_cert ? "observer.certificate" : "observer.private_key"),
			     "observer.%s: given without observer.%s; set both to use an existing observer certificate, or neither to let the run create one",
			     has_cert ? "certificate" : "private_key",
			     has_cert ? "private_key" : "certificate");
}

void profile_validate(loader *l, const ptree *root)
{
	int probe_topic_valid;
	int trigger_topic_valid;
	int client_ids_valid;

	check_connect_rate(l, root);
	check_groups(l, root);
	probe_topic_valid = check_probe_topic(l, root);
	trigger_topic_valid = check_swap_topics(l, root, probe_topic_valid);
	check_prober_client_ids(l, root);
	check_probe_rate(l, root);
	check_revoke_window(l, root);
	check_account_rates(l, root);
	check_prober_load(l, root);
	check_swap(l, root);
	check_target(l, root);
	client_ids_valid = check_client_ids(l, root);
	check_observer(l, root);
	/* The policy checks evaluate the expanded topics and client ids, so with an
	 * invalid one they would only report follow-on errors. */
	if (probe_topic_valid && trigger_topic_valid && client_ids_valid)
		policy_effect_check(l, root);
}

/* Control-plane calls for one principal's swap: attaches plus detaches. */
static int64_t calls_per_principal(const profile *p)
{
	int64_t calls = 0;

	for (size_t i = 0; i < p->after_count; i++) {
		int kept = 0;

		for (size_t j = 0; j < p->before_count; j++)
			kept |= strcmp(p->after[i].name, p->before[j].name) == 0;
		calls += !kept;
	}
	for (size_t j = 0; j < p->before_count; j++) {
		int kept = 0;

		for (size_t i = 0; i < p->after_count; i++)
			kept |= strcmp(p->after[i].name, p->before[j].name) == 0;
		calls += !kept;
	}
	return calls;
}

int64_t profile_swap_calls(const profile *p)
{
	int64_t principals = p->fleet.certificates == PROFILE_CERTIFICATES_SHARED ? 1
										 : p->fleet.devices;

	if (p->swap.kind == PROFILE_SWAP_POLICY_VERSION)
		return 1;
	return principals * calls_per_principal(p);
}

int64_t profile_expected_duration(const profile *p)
{
	double connect_s = (double)p->fleet.devices / p->fleet.connect_rate;
	double swap_s = (double)profile_swap_calls(p) / p->swap.rate;
	double total_ns = (connect_s + swap_s) * 1e9;

	total_ns += (double)(p->timing.connect_timeout_ns + p->timing.settle_ns +
			     p->timing.observe_timeout_ns + p->timing.drain_ns);
	return (int64_t)ceil(total_ns);
}

int64_t profile_revoke_confirm_ns(const profile *p)
{
	int64_t confirm = 2 * p->probe.interval_ns;

	return confirm > PL_NS_PER_S ? confirm : PL_NS_PER_S;
}
