/*
 * Benchmark of one authorization check: a device's realistic policy set
 * (3 policies, 10 statements, client id and thing variables, one
 * condition, Deny statements) evaluated for a mix of connects, publishes,
 * subscribes and deliveries, some allowed and some denied.
 *
 * Prints "policy_check_ns <mean>" and one sentence, and exits 0; exits 1
 * if a policy fails to compile or a decision differs from the expected one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "simulator/policy.h"

#define ROUNDS 200000

static const char device_policy[] =
	"{\"Version\":\"2012-10-17\",\"Statement\":["
	"{\"Effect\":\"Allow\",\"Action\":\"iot:Connect\","
	"\"Resource\":\"arn:aws:iot:us-east-1:123456789012:client/${iot:ClientId}\","
	"\"Condition\":{\"Bool\":{\"iot:Connection.Thing.IsAttached\":\"true\"}}},"
	"{\"Effect\":\"Allow\",\"Action\":\"iot:Publish\","
	"\"Resource\":\"arn:aws:iot:us-east-1:123456789012:topic/fleet/${iot:ClientId}/*\"},"
	"{\"Effect\":\"Allow\",\"Action\":\"iot:Subscribe\","
	"\"Resource\":[\"arn:aws:iot:us-east-1:123456789012:topicfilter/fleet/${iot:ClientId}/*\","
	"\"arn:aws:iot:us-east-1:123456789012:topicfilter/fleet/broadcast/*\"]},"
	"{\"Effect\":\"Allow\",\"Action\":\"iot:Receive\","
	"\"Resource\":[\"arn:aws:iot:us-east-1:123456789012:topic/fleet/${iot:ClientId}/*\","
	"\"arn:aws:iot:us-east-1:123456789012:topic/fleet/broadcast/*\"]}]}";

static const char shadow_policy[] =
	"{\"Version\":\"2012-10-17\",\"Statement\":["
	"{\"Effect\":\"Allow\",\"Action\":[\"iot:Publish\",\"iot:Receive\"],"
	"\"Resource\":\"arn:aws:iot:us-east-1:123456789012:topic/$aws/things/"
	"${iot:Connection.Thing.ThingName}/shadow/*\"},"
	"{\"Effect\":\"Allow\",\"Action\":\"iot:Subscribe\","
	"\"Resource\":\"arn:aws:iot:us-east-1:123456789012:topicfilter/$aws/things/"
	"${iot:Connection.Thing.ThingName}/shadow/*\"},"
	"{\"Effect\":\"Allow\",\"Action\":\"iot:RetainPublish\","
	"\"Resource\":\"arn:aws:iot:us-east-1:123456789012:topic/fleet/${iot:ClientId}/state\"}]}";

static const char guard_policy[] =
	"{\"Version\":\"2012-10-17\",\"Statement\":["
	"{\"Effect\":\"Deny\",\"Action\":\"iot:Publish\","
	"\"Resource\":\"arn:aws:iot:us-east-1:123456789012:topic/fleet/*/admin/*\"},"
	"{\"Effect\":\"Deny\",\"Action\":[\"iot:Subscribe\",\"iot:Receive\"],"
	"\"Resource\":[\"arn:aws:iot:us-east-1:123456789012:topicfilter/fleet/*/secret/*\","
	"\"arn:aws:iot:us-east-1:123456789012:topic/fleet/*/secret/*\"]},"
	"{\"Effect\":\"Deny\",\"Action\":\"iot:Connect\","
	"\"Resource\":\"arn:aws:iot:us-east-1:123456789012:client/${iot:ClientId}\","
	"\"Condition\":{\"NotIpAddress\":{\"aws:SourceIp\":[\"127.0.0.0/8\",\"192.0.2.0/24\"]}}}]}";

typedef struct check {
	sim_action action;
	const char *name;
	sim_decision expected;
} check;

static const check checks[] = {
	{ SIM_ACTION_CONNECT, "device-0042", SIM_DECISION_ALLOW },
	{ SIM_ACTION_PUBLISH, "fleet/device-0042/telemetry", SIM_DECISION_ALLOW },
	{ SIM_ACTION_PUBLISH, "fleet/device-0042/admin/reset", SIM_DECISION_EXPLICIT_DENY },
	{ SIM_ACTION_PUBLISH, "fleet/device-0043/telemetry", SIM_DECISION_IMPLICIT_DENY },
	{ SIM_ACTION_SUBSCRIBE, "fleet/device-0042/#", SIM_DECISION_ALLOW },
	{ SIM_ACTION_SUBSCRIBE, "fleet/broadcast/+", SIM_DECISION_ALLOW },
	{ SIM_ACTION_RECEIVE, "fleet/device-0042/cmd", SIM_DECISION_ALLOW },
	{ SIM_ACTION_RECEIVE, "fleet/broadcast/firmware", SIM_DECISION_ALLOW },
	{ SIM_ACTION_RECEIVE, "fleet/device-0042/secret/key", SIM_DECISION_EXPLICIT_DENY },
	{ SIM_ACTION_RECEIVE, "$aws/things/device-0042/shadow/update/accepted",
	  SIM_DECISION_ALLOW },
	{ SIM_ACTION_RETAIN_PUBLISH, "fleet/device-0042/state", SIM_DECISION_ALLOW },
	{ SIM_ACTION_RECEIVE, "other/topic", SIM_DECISION_IMPLICIT_DENY },
};

#define CHECK_COUNT (sizeof(checks) / sizeof(checks[0]))

static int compile_all(sim_policy **set)
{
	const char *docs[] = { device_policy, shadow_policy, guard_policy };
	for (size_t i = 0; i < 3; i++) {
		pl_errmsg e = { "" };
		if (sim_policy_compile(docs[i], strlen(docs[i]), &set[i], &e) != PL_OK) {
			fprintf(stderr, "bench_policy: policy %zu: %s\n", i, e.msg);
			return -1;
		}
	}
	return 0;
}

int main(void)
{
	sim_policy *set[3] = { NULL, NULL, NULL };
	int status = EXIT_FAILURE;
	if (compile_all(set) != 0)
		goto free_set;

	sim_auth_context ctx = {
		.region = "us-east-1",
		.account = "123456789012",
		.client_id = "device-0042",
		.thing_name = "device-0042",
		.thing_type = "sensor",
		.thing_attached = 1,
		.source_ip = "192.0.2.17",
	};
	const sim_policy *const *policies = (const sim_policy *const *)set;

	for (size_t i = 0; i < CHECK_COUNT; i++) {
		sim_decision got = sim_policy_evaluate(policies, 3, checks[i].action, checks[i].name, &ctx);
		if (got != checks[i].expected) {
			fprintf(stderr, "bench_policy: %s %s: got %s, expected %s\n",
				sim_action_name(checks[i].action), checks[i].name, sim_decision_name(got),
				sim_decision_name(checks[i].expected));
			goto free_set;
		}
	}

	/* The sum keeps the compiler from dropping the calls. */
	unsigned long sum = 0;
	int64_t start = pl_mono_ns();
	for (int r = 0; r < ROUNDS; r++) {
		for (size_t i = 0; i < CHECK_COUNT; i++)
			sum += (unsigned long)sim_policy_evaluate(policies, 3, checks[i].action,
								  checks[i].name, &ctx);
	}
	int64_t elapsed = pl_mono_ns() - start;
	double mean = (double)elapsed / ((double)ROUNDS * (double)CHECK_COUNT);

	printf("policy_check_ns %.1f\n", mean);
	printf("Mean time of one authorization check over %d checks (3 policies, 10 statements, "
	       "a mix of %zu connect, publish, subscribe and receive requests; checksum %lu).\n",
	       ROUNDS * (int)CHECK_COUNT, CHECK_COUNT, sum);
	status = EXIT_SUCCESS;

free_set:
	for (size_t i = 0; i < 3; i++)
		sim_policy_free(set[i]);
	return status;
}
