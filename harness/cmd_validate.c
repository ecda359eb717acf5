/*
 * policylag validate PROFILE: loads a profile exactly as "run" would, with
 * the policy documents checked by the policy engine, and prints a short
 * summary, or every error found with its file, line and column.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/parse.h"
#include "harness/commands.h"
#include "profiles/profile.h"

#define VALIDATE_MAX_SETS 64

enum { OPT_SET = 1, OPT_RESOLVED, OPT_QUIET };

static const cli_option validate_options[] = {
	{ OPT_SET, "set", 's', "KEY=VALUE",
	  "Override a profile key (dotted path, groups by name); repeatable.", NULL },
	{ OPT_RESOLVED, "resolved", 0, NULL,
	  "Print the resolved profile (defaults filled in, secrets left as ${env:NAME}) instead of the summary.",
	  NULL },
	{ OPT_QUIET, "quiet", 'q', NULL, "Print nothing on success; errors still go to stderr.",
	  NULL },
	CLI_OPTIONS_END,
};

typedef struct validate_args {
	const char *sets[VALIDATE_MAX_SETS];
	size_t set_count;
	int resolved;
	int quiet;
	const char *profile;
} validate_args;

static pl_err on_option(void *ctx, int id, const char *value, pl_errmsg *e)
{
	validate_args *a = ctx;

	switch (id) {
	case OPT_SET:
		if (a->set_count == VALIDATE_MAX_SETS)
			return pl_errmsg_set(e, PL_ERR_LIMIT, "too many --set options (at most %d)",
					     VALIDATE_MAX_SETS);
		a->sets[a->set_count++] = value;
		return PL_OK;
	case OPT_RESOLVED:
		a->resolved = 1;
		return PL_OK;
	case OPT_QUIET:
		a->quiet = 1;
		return PL_OK;
	default:
		return pl_errmsg_set(e, PL_ERR_INTERNAL, "unhandled option %d", id);
	}
}

/*
 * Parses options before and after PROFILE: cli_parse stops at the first
 * operand, so parsing resumes after it.
 */
static pl_err parse_args(const cli_command *self, int argc, char **argv, validate_args *args,
			 int *shown, pl_errmsg *e)
{
	char **rest = argv;
	int count = argc;

	while (count > 1) {
		int first = 1;
		pl_err rc = cli_parse(self, count, rest, on_option, args, &first, shown, e);

		if (rc != PL_OK || *shown || first >= count)
			return rc;
		if (args->profile != NULL)
			return pl_errmsg_set(e, PL_ERR_INVALID, "expected exactly one PROFILE, got '%s' too",
					     rest[first]);
		args->profile = rest[first];
		/* The operand's slot becomes the program name of the next round. */
		rest += first;
		count -= first;
	}
	return PL_OK;
}

static void seconds_text(double seconds, char *buf, size_t len)
{
	pl_format_duration((int64_t)(seconds * 1e9 + 0.5), buf, len);
}

static void print_group(const profile_group *g, int first)
{
	char a[32];
	char b[32];

	printf("  %-10s %-10s %6lld  %-22s MQTT %s, QoS %d", first ? "groups:" : "", g->name,
	       (long long)g->devices, profile_strategy_name(g->strategy),
	       g->mqtt_version == PROFILE_MQTT_5 ? "5" : "3.1.1", g->qos);
	if (g->strategy == PROFILE_STRATEGY_RECONNECT_PER_ATTEMPT) {
		pl_format_duration(g->attempt_interval_ns, a, sizeof(a));
		pl_format_duration(g->attempt_window_ns, b, sizeof(b));
		printf(", attempt every %s, window %s, %s client id", a, b,
		       g->client_id_scheme == PROFILE_CLIENT_ID_FIXED ? "fixed" : "fresh");
	}
	printf("\n");
}

static void print_policies(const char *label, const profile_policy *list, size_t count)
{
	printf("  %-10s", label);
	for (size_t i = 0; i < count; i++)
		printf(" %s%s", list[i].name, i + 1 < count ? "," : "");
	printf("\n");
}

static void print_target(const profile *p)
{
	const profile_propagation *prop = &p->target.simulator.propagation;
	char low[32];
	char high[32];

	if (p->target.kind == PROFILE_TARGET_AWS) {
		printf("  %-10s aws, region %s, port %d\n", "target:", p->target.aws.region,
		       p->target.aws.port);
		return;
	}
	pl_format_duration(prop->min_ns, low, sizeof(low));
	pl_format_duration(prop->max_ns, high, sizeof(high));
	if (prop->kind == PROFILE_PROPAGATION_IMMEDIATE)
		printf("  %-10s simulator, policy changes seen immediately\n", "target:");
	else if (prop->kind == PROFILE_PROPAGATION_FIXED)
		printf("  %-10s simulator, policy refresh every %s\n", "target:", low);
	else
		printf("  %-10s simulator, policy refresh every %s to %s\n", "target:", low, high);
}

static void print_duration(const profile *p)
{
	char total[32];
	char connect[32];
	char swap[32];
	char observe[32];

	/* Whole seconds, rounded up: the bound is an estimate. */
	pl_format_duration((profile_expected_duration(p) + PL_NS_PER_S - 1) / PL_NS_PER_S *
				   PL_NS_PER_S,
			   total, sizeof(total));
	seconds_text((double)p->fleet.devices / p->fleet.connect_rate, connect, sizeof(connect));
	seconds_text((double)profile_swap_calls(p) / p->swap.rate, swap, sizeof(swap));
	pl_format_duration(p->timing.observe_timeout_ns, observe, sizeof(observe));
	printf("  %-10s at most %s (connect %s, swap %s, observe up to %s, plus timeouts, settle and drain)\n",
	       "run time:", total, connect, swap, observe);
}

static void print_summary(const profile *p)
{
	char interval[32];
	int64_t workers = (p->fleet.devices + p->fleet.worker_devices - 1) / p->fleet.worker_devices;

	printf("%s: valid, profile '%s', hash %.16s\n", p->path, p->name, p->hash);
	print_target(p);
	printf("  %-10s %lld devices, %s, %lld worker process%s\n", "fleet:",
	       (long long)p->fleet.devices,
	       p->fleet.certificates == PROFILE_CERTIFICATES_SHARED ? "one shared certificate"
								    : "one certificate per device",
	       (long long)workers, workers == 1 ? "" : "es");
	for (size_t i = 0; i < p->group_count; i++)
		print_group(&p->groups[i], i == 0);
	print_policies("before:", p->before, p->before_count);
	print_policies("after:", p->after, p->after_count);
	printf("  %-10s %s, %s, %lld control-plane call%s at up to %g/s\n", "swap:",
	       profile_swap_kind_name(p->swap.kind),
	       p->swap.direction == PROFILE_SWAP_GRANT ? "grant" : "revoke",
	       (long long)profile_swap_calls(p), profile_swap_calls(p) == 1 ? "" : "s", p->swap.rate);
	pl_format_duration(p->probe.interval_ns, interval, sizeof(interval));
	printf("  %-10s %s on %s every %s, QoS %d\n", "probe:",
	       p->probe.kind == PROFILE_PROBE_ECHO ? "echo" : "prober", p->probe.topic, interval,
	       p->probe.qos);
	printf("  %-10s %zu\n", "expect:", p->expect_count);
	print_duration(p);
}

static void print_issues(const profile_issues *issues)
{
	for (size_t i = 0; i < issues->count; i++) {
		const profile_issue *issue = &issues->items[i];

		fprintf(stderr, "%s%s\n",
			issue->severity == PROFILE_SEVERITY_WARNING ? "warning: " : "",
			issue->message);
	}
}

static int print_resolved(const profile *p)
{
	char *text = NULL;
	size_t len = 0;
	pl_errmsg e;

	if (profile_format(p, &text, &len, &e) != PL_OK) {
		fprintf(stderr, "policylag validate: %s\n", e.msg);
		return PL_EXIT_RUNTIME;
	}
	fwrite(text, 1, len, stdout);
	free(text);
	return PL_EXIT_OK;
}

static int run_validate(const cli_command *self, int argc, char **argv)
{
	validate_args args;
	profile_issues issues = { 0 };
	profile_load_opts opts = { 0 };
	profile *p = NULL;
	pl_errmsg e = { "" };
	int shown = 0;
	int status;

	memset(&args, 0, sizeof(args));
	if (parse_args(self, argc, argv, &args, &shown, &e) != PL_OK)
		return cli_usage_error(self, e.msg);
	if (shown)
		return PL_EXIT_OK;
	if (args.profile == NULL)
		return cli_usage_error(self, "expected exactly one PROFILE");
	opts.overrides = args.sets;
	opts.override_count = args.set_count;
	opts.issues = &issues;
	profile_load(&p, args.profile, &opts, &e);
	print_issues(&issues);
	if (p == NULL) {
		if (issues.count == 0)
			fprintf(stderr, "%s\n", e.msg);
		fprintf(stderr, "%s: %zu error%s\n", args.profile, issues.errors ? issues.errors : 1,
			issues.errors == 1 ? "" : "s");
		profile_issues_clear(&issues);
		return PL_EXIT_USAGE;
	}
	status = PL_EXIT_OK;
	if (args.resolved)
		status = print_resolved(p);
	else if (!args.quiet)
		print_summary(p);
	if (!args.quiet && !args.resolved && issues.warnings > 0)
		printf("  %-10s %zu, listed on stderr\n", "warnings:", issues.warnings);
	profile_free(p);
	profile_issues_clear(&issues);
	return status;
}

const cli_command cmd_validate = {
	"validate",
	"validate PROFILE [--set KEY=VALUE]... [--resolved]",
	"Check a profile and its policy documents without connecting anything.",
	"Loads PROFILE as 'policylag run' would: fills in defaults, applies --set overrides, "
	"substitutes ${env:NAME}, reads every policy document and checks it with the policy "
	"engine, and checks the combination of keys. Prints a summary (devices per group, swap, "
	"probe, expected run time) and exits 0, or prints every error with its file, line and "
	"column and exits 2. Warnings do not change the exit status.",
	validate_options,
	"policylag validate profiles/seed-verification.yaml\n"
	"policylag validate profiles/revoke.yaml --set fleet.devices=1000 --set probe.interval=500ms\n"
	"policylag validate profiles/scale-10k.yaml --resolved > resolved.yaml",
	run_validate,
	NULL,
};
