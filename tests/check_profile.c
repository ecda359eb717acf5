/*
 * Unit tests for profiles/: the loader's error messages with their exact
 * line and column, defaults, overrides, ${env:...}, share rounding, the
 * cross-field checks, the writer and hash, and the shipped profiles.
 * Policy documents come from profiles/policies in the source tree
 * (POLICYLAG_SOURCE_DIR, set by make check).
 */
#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"
#include "profiles/internal.h"
#include "profiles/profile.h"

static char profiles_dir[PATH_MAX];

static void find_profiles_dir(void)
{
	const char *source = getenv("POLICYLAG_SOURCE_DIR");

	snprintf(profiles_dir, sizeof(profiles_dir), "%s/profiles", source ? source : ".");
}

/* A valid profile; tests append or replace lines. Line numbers matter below. */
static const char base_profile[] =
	"name: t\n"                                          /* 1 */
	"fleet:\n"                                           /* 2 */
	"  devices: 10\n"                                    /* 3 */
	"groups:\n"                                          /* 4 */
	"  - name: keep\n"                                   /* 5 */
	"    share: 50%\n"                                   /* 6 */
	"  - name: re\n"                                     /* 7 */
	"    share: 50%\n"                                   /* 8 */
	"    strategy: reconnect-per-attempt\n"              /* 9 */
	"policies:\n"                                        /* 10 */
	"  before: [policies/probe-no-receive.json]\n"       /* 11 */
	"  after: [policies/probe-full.json]\n";             /* 12 */

typedef struct load_result {
	profile *p;
	pl_err rc;
	pl_errmsg e;
	profile_issues issues;
} load_result;

static void load_with(load_result *r, const char *text, const char *const *sets, size_t n)
{
	profile_load_opts opts = { sets, n, &r->issues, 0 };

	memset(r, 0, sizeof(*r));
	opts.issues = &r->issues;
	r->rc = profile_load_text(&r->p, text, strlen(text), "t.yaml", profiles_dir, &opts, &r->e);
}

static void load(load_result *r, const char *text)
{
	load_with(r, text, NULL, 0);
}

static void done(load_result *r)
{
	profile_free(r->p);
	profile_issues_clear(&r->issues);
}

/* Returns the first error message that contains needle, or NULL. */
static const char *find_issue(const load_result *r, const char *needle)
{
	for (size_t i = 0; i < r->issues.count; i++) {
		if (strstr(r->issues.items[i].message, needle) != NULL)
			return r->issues.items[i].message;
	}
	return NULL;
}

static int starts_with(const char *s, const char *prefix)
{
	return s != NULL && strncmp(s, prefix, strlen(prefix)) == 0;
}

/* base_profile with extra lines appended. */
static char *with_lines(const char *extra)
{
	size_t len = strlen(base_profile) + strlen(extra) + 1;
	char *text = malloc(len);

	snprintf(text, len, "%s%s", base_profile, extra);
	return text;
}

START_TEST(test_profile_base_loads)
{
	load_result r;

	load(&r, base_profile);
	ck_assert_int_eq(r.rc, PL_OK);
	ck_assert_ptr_nonnull(r.p);
	ck_assert_uint_eq(r.issues.errors, 0);
	done(&r);
}
END_TEST

START_TEST(test_profile_syntax_error_position)
{
	load_result r;

	load(&r, "name: t\nfleet: devices: 10\n");
	ck_assert_int_eq(r.rc, PL_ERR_PARSE);
	ck_assert_ptr_null(r.p);
	/* The second ':' on line 2 is at column 15. */
	ck_assert_msg(starts_with(r.e.msg, "t.yaml:2:15: invalid YAML: mapping values are not allowed"),
		      "got: %s", r.e.msg);
	ck_assert_uint_eq(r.issues.errors, 1);
	done(&r);
}
END_TEST

START_TEST(test_profile_deep_nesting_rejected)
{
	/* 200,000 nested flow sequences (400 kB, under the 1 MB file limit):
	 * libyaml alone needs minutes to load them, beyond the test timeout. */
	const size_t depth = 200000;
	size_t len = depth * 2 + 32;
	char *text = malloc(len);
	load_result r;
	size_t n;

	ck_assert_ptr_nonnull(text);
	n = (size_t)snprintf(text, len, "name: t\nx-deep: ");
	memset(text + n, '[', depth);
	memset(text + n + depth, ']', depth);
	text[n + 2 * depth] = '\0';
	load(&r, text);
	ck_assert_int_eq(r.rc, PL_ERR_LIMIT);
	ck_assert_msg(strstr(r.e.msg, "too deeply nested") != NULL, "got: %s", r.e.msg);
	done(&r);
	free(text);
}
END_TEST

START_TEST(test_profile_unknown_key_suggests)
{
	load_result r;
	char *text = with_lines("probe:\n  intervall: 1s\n");

	load(&r, text);
	ck_assert_int_eq(r.rc, PL_ERR_INVALID);
	ck_assert_str_eq(r.e.msg, "t.yaml:14:3: unknown key 'probe.intervall': did you mean 'interval'?");
	done(&r);
	free(text);
}
END_TEST

START_TEST(test_profile_unknown_key_lists_known)
{
	load_result r;
	char *text = with_lines("timing:\n  zzzzzzzz: 1s\n");

	load(&r, text);
	ck_assert_msg(starts_with(r.e.msg, "t.yaml:14:3: unknown key 'timing.zzzzzzzz': expected one of connect_timeout, settle, observe_timeout, drain"),
		      "got: %s", r.e.msg);
	done(&r);
	free(text);
}
END_TEST

START_TEST(test_profile_bad_type_list_for_number)
{
	load_result r;

	load(&r, "fleet:\n  devices: [1, 2]\n");
	ck_assert_str_eq(r.e.msg, "t.yaml:2:12: fleet.devices: expected a single value, not a list");
	done(&r);
}
END_TEST

START_TEST(test_profile_bad_type_word_for_number)
{
	load_result r;

	load(&r, "fleet:\n  devices: ten\n");
	ck_assert_str_eq(r.e.msg, "t.yaml:2:12: fleet.devices: invalid integer 'ten'");
	done(&r);
}
END_TEST

START_TEST(test_profile_bad_enum_lists_choices)
{
	load_result r;

	load(&r, "swap:\n  kind: detach\n");
	ck_assert_str_eq(r.e.msg,
			 "t.yaml:2:9: swap.kind: invalid value 'detach': expected one of attach-detach, policy-version, trigger-topic");
	done(&r);
}
END_TEST

START_TEST(test_profile_bad_duration)
{
	load_result r;
	char *text = with_lines("probe:\n  interval: 10q\n");

	load(&r, text);
	ck_assert_str_eq(r.e.msg,
			 "t.yaml:14:13: probe.interval: invalid duration '10q': unknown unit 'q' (expected ns, us, ms, s, m or h)");
	done(&r);
	free(text);
}
END_TEST

START_TEST(test_profile_duration_out_of_range)
{
	load_result r;
	char *text = with_lines("probe:\n  interval: 1ms\n");

	load(&r, text);
	ck_assert_msg(starts_with(r.e.msg, "t.yaml:14:13: probe.interval: duration '1ms' is out of range"),
		      "got: %s", r.e.msg);
	done(&r);
	free(text);
}
END_TEST

START_TEST(test_profile_missing_policy_file)
{
	load_result r;

	load(&r, "policies:\n  before: [policies/nope.json]\n  after: [policies/probe-full.json]\n");
	ck_assert_int_eq(r.rc, PL_ERR_IO);
	ck_assert_msg(starts_with(r.e.msg, "t.yaml:2:12: policies.before.0: cannot open '"),
		      "got: %s", r.e.msg);
	ck_assert_ptr_nonnull(strstr(r.e.msg, "policies/nope.json': No such file or directory"));
	done(&r);
}
END_TEST

START_TEST(test_profile_invalid_policy_document)
{
	char dir[] = "/tmp/check_profile.XXXXXX";
	char path[PATH_MAX];
	char text[PATH_MAX + 256];
	FILE *f;
	load_result r;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/broken.json", dir);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	/* An AWS policy statement needs a Resource (or NotResource). */
	fputs("{\"Version\": \"2012-10-17\", \"Statement\": [{\"Effect\": \"Allow\", \"Action\": \"iot:Connect\"}]}",
	      f);
	fclose(f);
	snprintf(text, sizeof(text), "policies:\n  before:\n    - %s\n  after: [policies/probe-full.json]\n",
		 path);
	load(&r, text);
	ck_assert_int_eq(r.rc, PL_ERR_INVALID);
	ck_assert_msg(starts_with(r.e.msg, "t.yaml:3:7: policies.before.0: invalid policy document '"),
		      "got: %s", r.e.msg);
	ck_assert_ptr_nonnull(strstr(r.e.msg, "Resource"));
	done(&r);
	unlink(path);
	rmdir(dir);
}
END_TEST

START_TEST(test_profile_bad_override_value)
{
	load_result r;
	const char *sets[] = { "probe.interval=10q" };

	load_with(&r, base_profile, sets, 1);
	ck_assert_int_eq(r.rc, PL_ERR_INVALID);
	ck_assert_str_eq(r.e.msg,
			 "--set probe.interval=10q: probe.interval: invalid duration '10q': unknown unit 'q' (expected ns, us, ms, s, m or h)");
	done(&r);
}
END_TEST

START_TEST(test_profile_override_map_rejected)
{
	static const char *const cases[] = { "fleet=", "fleet={devices: 5}", "target.simulator=",
					     "policies=" };
	load_result r;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		load_with(&r, base_profile, &cases[i], 1);
		ck_assert_msg(r.rc == PL_ERR_INVALID, "%s: rc %d", cases[i], r.rc);
		ck_assert_msg(strstr(r.e.msg, "a map cannot be set with --set") != NULL, "%s: %s",
			      cases[i], r.e.msg);
		ck_assert_uint_eq(r.issues.errors, 1);
		done(&r);
	}
}
END_TEST

START_TEST(test_profile_override_map_message)
{
	load_result r;
	const char *sets[] = { "fleet=" };

	load_with(&r, base_profile, sets, 1);
	ck_assert_str_eq(r.e.msg,
			 "--set fleet=: fleet: a map cannot be set with --set; set its keys one at a time, for example --set fleet.devices=VALUE");
	done(&r);
}
END_TEST

START_TEST(test_profile_override_group_rejected)
{
	load_result r;
	const char *sets[] = { "groups.keep={name: keep}" };

	load_with(&r, base_profile, sets, 1);
	ck_assert_int_eq(r.rc, PL_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(r.e.msg, "groups.0: a group cannot be replaced with --set"));
	ck_assert_uint_eq(r.issues.errors, 1);
	done(&r);
}
END_TEST

START_TEST(test_profile_override_empty_list_key)
{
	load_result r;
	const char *sets[] = { "groups=" };
	const char *cleared[] = { "expect=[]" };
	char *text = with_lines("expect: [\"keep.p50 < 1m\"]\n");

	/* An empty --set for groups would fall back to one group 'default' and
	 * make the expectation's group unknown. */
	load_with(&r, text, sets, 1);
	ck_assert_int_eq(r.rc, PL_ERR_INVALID);
	ck_assert_str_eq(r.e.msg,
			 "--set groups=: groups: missing value (remove this --set to keep the profile's value; '[]' is an empty list)");
	ck_assert_uint_eq(r.issues.errors, 1);
	done(&r);
	load_with(&r, text, cleared, 1);
	ck_assert_msg(r.rc == PL_OK, "%s", r.e.msg);
	ck_assert_uint_eq(r.p->expect_count, 0);
	done(&r);
	free(text);
}
END_TEST

START_TEST(test_profile_override_empty_name)
{
	load_result r;
	const char *sets[] = { "name=" };

	load_with(&r, base_profile, sets, 1);
	ck_assert_str_eq(r.e.msg,
			 "--set name=: name: missing value (remove the key to name the profile after its file)");
	done(&r);
}
END_TEST

START_TEST(test_profile_duration_exponent_rejected)
{
	load_result r;
	const char *sets[] = { "probe.interval=1e3s" };
	char *text = with_lines("timing:\n  settle: 1.5E1s\n");

	load_with(&r, base_profile, sets, 1);
	ck_assert_int_eq(r.rc, PL_ERR_INVALID);
	ck_assert_str_eq(r.e.msg,
			 "--set probe.interval=1e3s: probe.interval: invalid duration '1e3s': exponents are not accepted; write '1000s'");
	done(&r);
	load(&r, text);
	ck_assert_str_eq(r.e.msg,
			 "t.yaml:14:11: timing.settle: invalid duration '1.5E1s': exponents are not accepted; write '15s'");
	done(&r);
	free(text);
}
END_TEST

START_TEST(test_profile_bad_override_unknown_key)
{
	load_result r;
	const char *sets[] = { "probe.intervall=1s" };

	load_with(&r, base_profile, sets, 1);
	ck_assert_str_eq(r.e.msg,
			 "--set probe.intervall=1s: unknown key 'probe.intervall': did you mean 'interval'?");
	done(&r);
}
END_TEST

START_TEST(test_profile_bad_override_syntax)
{
	load_result r;
	const char *sets[] = { "probe.interval" };

	load_with(&r, base_profile, sets, 1);
	ck_assert_str_eq(r.e.msg,
			 "--set probe.interval: expected KEY=VALUE, for example probe.interval=500ms");
	done(&r);
}
END_TEST

START_TEST(test_profile_bad_override_group_name)
{
	load_result r;
	const char *sets[] = { "groups.nope.share=10%" };

	load_with(&r, base_profile, sets, 1);
	ck_assert_str_eq(r.e.msg,
			 "--set groups.nope.share=10%: no element named 'nope' (use a name or an index from 0 to 1)");
	done(&r);
}
END_TEST

START_TEST(test_profile_bad_override_below_value)
{
	load_result r;
	const char *sets[] = { "policies.before.0.file=x.json" };

	load_with(&r, base_profile, sets, 1);
	ck_assert_str_eq(r.e.msg,
			 "--set policies.before.0.file=x.json: cannot set a key below 'policies/probe-no-receive.json', which is a single value");
	done(&r);
}
END_TEST

START_TEST(test_profile_bad_override_empty_segment)
{
	load_result r;
	const char *sets[] = { "probe..interval=1s" };

	load_with(&r, base_profile, sets, 1);
	ck_assert_str_eq(r.e.msg, "--set probe..interval=1s: empty key segment");
	ck_assert_uint_eq(r.issues.errors, 1);
	done(&r);
}
END_TEST

START_TEST(test_profile_bad_group_no_cascade)
{
	load_result r;
	char *text = with_lines("expect: [\"keep.p99 < 30s\", \"re.p99 < 30s\"]\n");
	const char *sets[] = { "groups.0=5" };

	load_with(&r, text, sets, 1);
	ck_assert_uint_eq(r.issues.errors, 1);
	ck_assert_str_eq(r.e.msg,
			 "--set groups.0=5: groups.0: expected a map of group keys (name, share, strategy, ...)");
	done(&r);
	free(text);
}
END_TEST

/* fleet.connect_rate rejects 0 as well as negative rates, so the message must not offer 0. */
START_TEST(test_profile_negative_rate_range)
{
	load_result r;
	const char *sets[] = { "fleet.connect_rate=-1/s" };

	load_with(&r, base_profile, sets, 1);
	ck_assert_uint_eq(r.issues.errors, 1);
	ck_assert_msg(strstr(r.e.msg, "invalid rate '-1/s': expected above 0 and at most 1e+06 "
				      "per second") != NULL,
		      "%s", r.e.msg);
	done(&r);
}
END_TEST

START_TEST(test_profile_unset_env_var)
{
	load_result r;
	char *text = with_lines("target:\n  aws:\n    secret_access_key: \"${env:PL_TEST_UNSET}\"\n");

	unsetenv("PL_TEST_UNSET");
	load(&r, text);
	ck_assert_str_eq(r.e.msg,
			 "t.yaml:15:24: target.aws.secret_access_key: environment variable 'PL_TEST_UNSET' is not set (referenced as ${env:PL_TEST_UNSET})");
	done(&r);
	free(text);
}
END_TEST

START_TEST(test_profile_shares_not_adding_up)
{
	load_result r;
	const char *sets[] = { "groups.re.share=40%" };

	load_with(&r, base_profile, sets, 1);
	ck_assert_str_eq(r.e.msg,
			 "t.yaml:5:3: groups: the shares add up to 9 devices (90% of the fleet), but fleet.devices is 10; make them add up to exactly 10 or 100%");
	done(&r);
}
END_TEST

START_TEST(test_profile_share_count_above_fleet)
{
	load_result r;
	const char *sets[] = { "groups.re.share=11" };

	load_with(&r, base_profile, sets, 1);
	ck_assert_msg(starts_with(r.e.msg, "--set groups.re.share=11: groups.re.share: invalid share '11'"),
		      "got: %s", r.e.msg);
	done(&r);
}
END_TEST

START_TEST(test_profile_duplicate_key)
{
	load_result r;

	load(&r, "fleet:\n  devices: 10\n  devices: 20\n");
	ck_assert_str_eq(r.e.msg, "t.yaml:3:3: duplicate key 'fleet.devices' (first given at line 2)");
	done(&r);
}
END_TEST

START_TEST(test_profile_every_error_reported)
{
	load_result r;

	load(&r, "fleet:\n  devices: ten\n  devcies: 3\nprobe:\n  interval: 10q\n  qos: 2\n");
	ck_assert_ptr_null(r.p);
	ck_assert_uint_eq(r.issues.errors, 4);
	ck_assert_msg(starts_with(r.issues.items[0].message, "t.yaml:2:12: "), "%s", r.issues.items[0].message);
	ck_assert_msg(starts_with(r.issues.items[1].message, "t.yaml:3:3: "), "%s", r.issues.items[1].message);
	ck_assert_msg(starts_with(r.issues.items[2].message, "t.yaml:5:13: "), "%s", r.issues.items[2].message);
	ck_assert_msg(starts_with(r.issues.items[3].message, "t.yaml:6:8: "), "%s", r.issues.items[3].message);
	done(&r);
}
END_TEST

START_TEST(test_profile_defaults_filled_in)
{
	load_result r;
	const profile *p;

	load(&r, base_profile);
	p = r.p;
	ck_assert_ptr_nonnull(p);
	ck_assert_str_eq(p->name, "t");
	ck_assert_int_eq(p->target.kind, PROFILE_TARGET_SIMULATOR);
	ck_assert_int_eq(p->target.simulator.propagation.kind, PROFILE_PROPAGATION_UNIFORM);
	ck_assert_int_eq(p->target.simulator.propagation.min_ns, 6 * 60 * PL_NS_PER_S);
	ck_assert_int_eq(p->target.simulator.propagation.max_ns, 8 * 60 * PL_NS_PER_S);
	ck_assert_double_eq(p->target.simulator.quotas.connect_per_client_id, 1.0);
	ck_assert_double_eq(p->target.simulator.quotas.publish_per_connection, 100.0);
	ck_assert_int_eq(p->target.simulator.quotas.subscriptions_per_connection, 50);
	ck_assert_int_eq(p->target.aws.port, 8883);
	ck_assert_str_eq(p->target.aws.credentials_profile, "default");
	ck_assert_str_eq(p->fleet.client_id_prefix, "pl-");
	ck_assert_double_eq(p->fleet.connect_rate, 50.0);
	ck_assert_int_eq(p->groups[0].strategy, PROFILE_STRATEGY_KEEP_CONNECTION);
	ck_assert_int_eq(p->groups[0].mqtt_version, PROFILE_MQTT_3_1_1);
	ck_assert_int_eq(p->groups[0].keep_alive_ns, 60 * PL_NS_PER_S);
	ck_assert_int_eq(p->groups[1].attempt_interval_ns, 10 * PL_NS_PER_S);
	ck_assert_int_eq(p->groups[1].attempt_window_ns, 7 * PL_NS_PER_S);
	ck_assert_int_eq(p->swap.kind, PROFILE_SWAP_ATTACH_DETACH);
	ck_assert_double_eq(p->swap.rate, 10.0);
	ck_assert_str_eq(p->probe.topic, "pl/probe/${client_id}");
	ck_assert_int_eq(p->probe.interval_ns, PL_NS_PER_S);
	ck_assert_int_eq(p->timing.connect_timeout_ns, 10 * PL_NS_PER_S);
	ck_assert_int_eq(p->timing.observe_timeout_ns, 10 * 60 * PL_NS_PER_S);
	done(&r);
}
END_TEST

START_TEST(test_profile_default_group_when_absent)
{
	load_result r;

	load(&r, "policies:\n  before: [policies/probe-no-receive.json]\n  after: [policies/probe-full.json]\n");
	ck_assert_ptr_nonnull(r.p);
	ck_assert_uint_eq(r.p->group_count, 1);
	ck_assert_str_eq(r.p->groups[0].name, "default");
	ck_assert_int_eq(r.p->groups[0].devices, 100);
	done(&r);
}
END_TEST

START_TEST(test_profile_overrides_applied)
{
	load_result r;
	const char *sets[] = { "probe.interval=500ms", "groups.keep.share=70%", "groups.re.share=3",
			       "groups.1.attempt_interval=20s", "expect=[\"keep.p99 < 1m\"]" };

	load_with(&r, base_profile, sets, 5);
	ck_assert_ptr_nonnull(r.p);
	ck_assert_int_eq(r.p->probe.interval_ns, 500 * PL_NS_PER_MS);
	ck_assert_int_eq(r.p->groups[0].devices, 7);
	ck_assert_int_eq(r.p->groups[1].devices, 3);
	ck_assert_int_eq(r.p->groups[1].first_device, 7);
	ck_assert_int_eq(r.p->groups[1].attempt_interval_ns, 20 * PL_NS_PER_S);
	ck_assert_uint_eq(r.p->expect_count, 1);
	ck_assert_str_eq(r.p->expect[0].text, "keep.p99 < 1m");
	done(&r);
}
END_TEST

START_TEST(test_profile_override_creates_section)
{
	load_result r;
	const char *sets[] = { "target.simulator.propagation=ttl:30s" };

	load_with(&r, base_profile, sets, 1);
	ck_assert_ptr_nonnull(r.p);
	ck_assert_int_eq(r.p->target.simulator.propagation.kind, PROFILE_PROPAGATION_FIXED);
	ck_assert_int_eq(r.p->target.simulator.propagation.min_ns, 30 * PL_NS_PER_S);
	done(&r);
}
END_TEST

START_TEST(test_profile_observer_defaults)
{
	load_result r;

	load_with(&r, base_profile, NULL, 0);
	ck_assert_ptr_nonnull(r.p);
	ck_assert_int_eq(r.p->observer.enabled, 1);
	ck_assert_str_eq(r.p->observer.certificate, "");
	ck_assert_str_eq(r.p->observer.private_key, "");
	done(&r);
}
END_TEST

START_TEST(test_profile_observer_off)
{
	load_result r;
	const char *sets[] = { "observer.enabled=false" };

	load_with(&r, base_profile, sets, 1);
	ck_assert_ptr_nonnull(r.p);
	ck_assert_int_eq(r.p->observer.enabled, 0);
	done(&r);
}
END_TEST

START_TEST(test_profile_observer_bad_bool)
{
	load_result r;
	const char *sets[] = { "observer.enabled=maybe" };

	load_with(&r, base_profile, sets, 1);
	ck_assert_int_eq(r.rc, PL_ERR_INVALID);
	ck_assert_msg(strstr(r.e.msg, "observer.enabled") != NULL, "got: %s", r.e.msg);
	done(&r);
}
END_TEST

START_TEST(test_profile_observer_needs_key)
{
	load_result r;
	const char *sets[] = { "observer.certificate=/tmp/observer.crt" };

	load_with(&r, base_profile, sets, 1);
	ck_assert_int_eq(r.rc, PL_ERR_INVALID);
	ck_assert_msg(strstr(r.e.msg, "observer.certificate: given without observer.private_key") !=
			      NULL,
		      "got: %s", r.e.msg);
	done(&r);
}
END_TEST

START_TEST(test_profile_shares_largest_remainder)
{
	load_result r;
	/* Exact quotas 3.33, 3.33 and 3.34 devices: floors 3, 3, 3, and the
	 * one device left goes to the largest remainder, the third group. */
	const char *text =
		"fleet: {devices: 10}\n"
		"groups:\n"
		"  - {name: a, share: 33.3%}\n"
		"  - {name: b, share: 33.3%}\n"
		"  - {name: c, share: 33.4%}\n"
		"policies: {before: [policies/probe-no-receive.json], after: [policies/probe-full.json]}\n";

	load(&r, text);
	ck_assert_ptr_nonnull(r.p);
	ck_assert_int_eq(r.p->groups[0].devices, 3);
	ck_assert_int_eq(r.p->groups[1].devices, 3);
	ck_assert_int_eq(r.p->groups[2].devices, 4);
	ck_assert_int_eq(r.p->groups[2].first_device, 6);
	done(&r);
}
END_TEST

START_TEST(test_profile_shares_default_split)
{
	load_result r;
	/* 11 devices: a gets 1 by count; b, c and d split the other 10 equally,
	 * 3.33 each, and the device left over goes to the earliest tied group. */
	const char *text =
		"fleet: {devices: 11}\n"
		"groups:\n"
		"  - {name: a, share: 1}\n"
		"  - {name: b}\n"
		"  - {name: c}\n"
		"  - {name: d}\n"
		"policies: {before: [policies/probe-no-receive.json], after: [policies/probe-full.json]}\n";

	load(&r, text);
	ck_assert_ptr_nonnull(r.p);
	ck_assert_int_eq(r.p->groups[0].devices, 1);
	ck_assert_int_eq(r.p->groups[1].devices, 4);
	ck_assert_int_eq(r.p->groups[2].devices, 3);
	ck_assert_int_eq(r.p->groups[3].devices, 3);
	done(&r);
}
END_TEST

START_TEST(test_profile_env_substituted_and_hidden)
{
	load_result r;
	char *text = with_lines("target:\n  aws:\n    secret_access_key: \"${env:PL_TEST_SECRET}\"\n");
	char *out = NULL;
	size_t len = 0;

	setenv("PL_TEST_SECRET", "s3cr3t-value", 1);
	load(&r, text);
	ck_assert_ptr_nonnull(r.p);
	ck_assert_str_eq(r.p->target.aws.secret_access_key, "s3cr3t-value");
	ck_assert_int_eq(profile_format(r.p, &out, &len, NULL), PL_OK);
	ck_assert_ptr_null(strstr(out, "s3cr3t-value"));
	ck_assert_ptr_nonnull(strstr(out, "secret_access_key: \"${env:PL_TEST_SECRET}\""));
	free(out);
	done(&r);
	free(text);
	unsetenv("PL_TEST_SECRET");
}
END_TEST

START_TEST(test_profile_literal_secret_rejected)
{
	load_result r;
	char *text = with_lines("target:\n  aws:\n    secret_access_key: abc\n");

	load(&r, text);
	ck_assert_msg(starts_with(r.e.msg, "t.yaml:15:24: target.aws.secret_access_key: secrets must not be written into a profile"),
		      "got: %s", r.e.msg);
	done(&r);
	free(text);
}
END_TEST

START_TEST(test_profile_env_escape)
{
	load_result r;
	char *text = with_lines("description: \"cost $${env:X}\"\n");

	load(&r, text);
	ck_assert_ptr_nonnull(r.p);
	ck_assert_str_eq(r.p->description, "cost ${env:X}");
	done(&r);
	free(text);
}
END_TEST

START_TEST(test_profile_window_not_shorter_than_interval)
{
	load_result r;
	const char *sets[] = { "groups.re.attempt_window=10s" };

	load_with(&r, base_profile, sets, 1);
	ck_assert_msg(starts_with(r.e.msg, "--set groups.re.attempt_window=10s: groups.re.attempt_window: 10s must be shorter than attempt_interval (10s)"),
		      "got: %s", r.e.msg);
	done(&r);
}
END_TEST

START_TEST(test_profile_fixed_client_id_too_fast)
{
	load_result r;
	const char *sets[] = { "groups.re.attempt_interval=1s", "groups.re.attempt_window=500ms" };
	const char *fresh[] = { "groups.re.attempt_interval=1s", "groups.re.attempt_window=500ms",
				"groups.re.client_id_scheme=fresh-per-attempt" };

	load_with(&r, base_profile, sets, 2);
	ck_assert_ptr_nonnull(find_issue(&r, "too close to the quota of 1 CONNECT/s per client id"));
	done(&r);
	load_with(&r, base_profile, fresh, 3);
	ck_assert_ptr_null(find_issue(&r, "too close to the quota"));
	done(&r);
}
END_TEST

START_TEST(test_profile_reconnect_key_on_keep_group)
{
	load_result r;
	const char *sets[] = { "groups.keep.attempt_window=1s" };

	load_with(&r, base_profile, sets, 1);
	ck_assert_str_eq(r.e.msg,
			 "--set groups.keep.attempt_window=1s: groups.keep.attempt_window: applies only to strategy reconnect-per-attempt, but this group uses keep-connection");
	done(&r);
}
END_TEST

START_TEST(test_profile_topic_needs_client_id)
{
	load_result r;
	const char *sets[] = { "probe.topic=pl/probe" };
	const char *shared[] = { "probe.topic=pl/probe", "probe.shared_topic=true", "probe.kind=prober" };

	load_with(&r, base_profile, sets, 1);
	ck_assert_ptr_nonnull(find_issue(&r, "probe.topic: 'pl/probe' is the same for every device"));
	done(&r);
	load_with(&r, base_profile, shared, 3);
	ck_assert_ptr_null(find_issue(&r, "the same for every device"));
	done(&r);
}
END_TEST

/* An invalid probe.topic is reported once, without the checks that use it. */
START_TEST(test_profile_invalid_topic_no_cascade)
{
	static const char *const cases[] = { "probe.topic=a/#/b", "probe.topic=",
					     "probe.topic=pl/${bogus}" };
	load_result r;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		load_with(&r, base_profile, &cases[i], 1);
		ck_assert_msg(r.issues.errors == 1, "%s: %zu errors, first: %s", cases[i],
			      r.issues.errors, r.e.msg);
		ck_assert_msg(find_issue(&r, "policies:") == NULL, "%s: policy check ran", cases[i]);
		ck_assert_msg(find_issue(&r, "the same for every device") == NULL,
			      "%s: shared-topic check ran", cases[i]);
		done(&r);
	}
}
END_TEST

START_TEST(test_profile_invalid_prefix_no_cascade)
{
	load_result r;
	const char *sets[] = { "fleet.client_id_prefix=a/b" };

	load_with(&r, base_profile, sets, 1);
	ck_assert_uint_eq(r.issues.errors, 1);
	ck_assert_ptr_nonnull(find_issue(&r, "fleet.client_id_prefix: 'a/b' contains '/'"));
	ck_assert_ptr_null(find_issue(&r, "policies:"));
	done(&r);
}
END_TEST

START_TEST(test_profile_revoke_interval_too_short)
{
	load_result r;
	const char *sets[] = { "swap.direction=revoke", "policies.before=[policies/probe-full.json]",
			       "policies.after=[policies/probe-no-receive.json]", "probe.kind=prober",
			       "probe.interval=10ms" };

	/* A probe counts as lost after 1 s, which spans 100 probes at 10 ms. */
	load_with(&r, base_profile, sets, 5);
	ck_assert_uint_eq(r.issues.errors, 1);
	ck_assert_str_eq(r.e.msg,
			 "--set probe.interval=10ms: probe.interval: 10ms is too short for a revoke: a probe counts as lost after 1s without delivery, and each device tracks at most 64 undelivered probes, so the effect could be reported late; use at least 16ms");
	done(&r);
	sets[4] = "probe.interval=16ms";
	load_with(&r, base_profile, sets, 5);
	ck_assert_msg(r.rc == PL_OK, "%s", r.e.msg);
	done(&r);
	/* A grant needs no confirmation window. */
	load_with(&r, base_profile, (const char *[]){ "probe.kind=prober", "probe.interval=10ms" },
		  2);
	ck_assert_msg(r.rc == PL_OK, "%s", r.e.msg);
	done(&r);
}
END_TEST

START_TEST(test_profile_topic_policy_variable)
{
	load_result r;
	const char *sets[] = { "probe.topic=pl/${iot:ClientId}" };

	load_with(&r, base_profile, sets, 1);
	ck_assert_ptr_nonnull(find_issue(&r, "uses a policy variable"));
	done(&r);
}
END_TEST

START_TEST(test_profile_probe_rate_over_quota)
{
	load_result r;
	/* Echo probes every 10 ms: 100 sent plus 100 received per second, over AWS's 100/s. */
	const char *sets[] = { "probe.interval=10ms" };

	load_with(&r, base_profile, sets, 1);
	ck_assert_ptr_nonnull(find_issue(&r, "gives 200 publishes/s per connection"));
	done(&r);
}
END_TEST

START_TEST(test_profile_shared_certificate_trigger_rejected)
{
	load_result r;
	const char *sets[] = { "fleet.certificates=shared", "swap.kind=trigger-topic",
			       "swap.trigger_topic=pl/req", "probe.kind=prober" };

	load_with(&r, base_profile, sets, 4);
	ck_assert_ptr_nonnull(find_issue(&r, "--set fleet.certificates=shared: fleet.certificates: shared, but a trigger-topic swap"));
	done(&r);
}
END_TEST

START_TEST(test_profile_grant_that_changes_nothing)
{
	load_result r;
	const char *sets[] = { "policies.before=[policies/probe-full.json]" };

	load_with(&r, base_profile, sets, 1);
	ck_assert_ptr_nonnull(find_issue(&r, "swap.direction is grant, but the before policies already let probes on 'pl/probe/pl-000000' reach the device"));
	done(&r);
}
END_TEST

START_TEST(test_profile_policy_version_needs_one_each)
{
	load_result r;
	const char *sets[] = { "swap.kind=policy-version",
			       "policies.after=[policies/probe-full.json, policies/seed-b.json]" };

	load_with(&r, base_profile, sets, 2);
	ck_assert_ptr_nonnull(find_issue(&r, "each list needs exactly one entry (found 1 and 2)"));
	done(&r);
}
END_TEST

START_TEST(test_profile_expectation_unknown_group)
{
	load_result r;
	char *text = with_lines("expect:\n  - \"keep.p99 < 1m\"\n  - \"compare(re, kep).p < 0.01\"\n");

	load(&r, text);
	/* The quote is at column 5, so the string starts at 6 and "kep", 12 bytes in, at 18. */
	ck_assert_str_eq(r.e.msg,
			 "t.yaml:15:18: expect: unknown group 'kep' in 'compare(re, kep).p < 0.01': expected one of the group names or all");
	done(&r);
	free(text);
}
END_TEST

START_TEST(test_profile_expectation_syntax_error)
{
	load_result r;
	char *text = with_lines("expect:\n  - keep.p99 ~ 1m\n");

	load(&r, text);
	/* A plain scalar at column 5; the operator is expected 9 bytes in. */
	ck_assert_msg(starts_with(r.e.msg, "t.yaml:14:14: expect: invalid expectation 'keep.p99 ~ 1m': expected a comparison operator"),
		      "got: %s", r.e.msg);
	done(&r);
	free(text);
}
END_TEST

START_TEST(test_profile_expectations_parsed)
{
	load_result r;
	char *text = with_lines("expect: [\"keep.p99 < 30s\", \"compare(re, keep).p < 0.001\"]\n");

	load(&r, text);
	ck_assert_ptr_nonnull(r.p);
	ck_assert_uint_eq(r.p->expect_count, 2);
	ck_assert_ptr_nonnull(r.p->expect[0].expr);
	ck_assert_ptr_nonnull(r.p->expect[1].expr);
	ck_assert_uint_eq(r.p->expect[1].pos.line, 13);
	done(&r);
	free(text);
}
END_TEST

START_TEST(test_profile_extension_key_for_anchors)
{
	load_result r;
	const char *text =
		"x-common: &common {strategy: reconnect-per-attempt, attempt_interval: 20s, qos: 0}\n"
		"fleet: {devices: 4}\n"
		"groups:\n"
		"  - {<<: *common, name: a, qos: 1}\n"
		"  - {<<: *common, name: b}\n"
		"policies: {before: [policies/probe-no-receive.json], after: [policies/probe-full.json]}\n";

	load(&r, text);
	ck_assert_msg(r.p != NULL, "%s", r.e.msg);
	ck_assert_int_eq(r.p->groups[0].qos, 1);
	ck_assert_int_eq(r.p->groups[1].qos, 0);
	ck_assert_int_eq(r.p->groups[1].attempt_interval_ns, 20 * PL_NS_PER_S);
	done(&r);
}
END_TEST

START_TEST(test_profile_merge_key_needs_map)
{
	load_result r;

	load(&r, "fleet:\n  <<: 5\n");
	ck_assert_int_eq(r.rc, PL_ERR_PARSE);
	ck_assert_str_eq(r.e.msg, "t.yaml:2:3: invalid merge key: '<<' takes a map or a list of maps");
	done(&r);
}
END_TEST

START_TEST(test_profile_merge_keys_applied)
{
	load_result r;
	const char *text =
		"fleet: {devices: 4}\n"
		"groups:\n"
		"  - &first {name: a, strategy: reconnect-per-attempt, attempt_interval: 20s, qos: 0}\n"
		"  - {<<: *first, name: b, qos: 1}\n"
		"policies: {before: [policies/probe-no-receive.json], after: [policies/probe-full.json]}\n";

	load(&r, text);
	ck_assert_msg(r.p != NULL, "%s", r.e.msg);
	ck_assert_str_eq(r.p->groups[1].name, "b");
	ck_assert_int_eq(r.p->groups[1].strategy, PROFILE_STRATEGY_RECONNECT_PER_ATTEMPT);
	ck_assert_int_eq(r.p->groups[1].attempt_interval_ns, 20 * PL_NS_PER_S);
	ck_assert_int_eq(r.p->groups[1].qos, 1);
	ck_assert_int_eq(r.p->groups[0].qos, 0);
	done(&r);
}
END_TEST

START_TEST(test_profile_top_level_list_rejected)
{
	load_result r;

	load(&r, "- a\n- b\n");
	ck_assert_str_eq(r.e.msg, "t.yaml:1:1: expected a map of keys at the top level (name, target, fleet, groups, ...), not a list");
	done(&r);
}
END_TEST

START_TEST(test_profile_account_rate_warning)
{
	load_result r;
	/* 1000 devices echoing every 20 ms publish 50,000/s, above AWS's 20,000/s. */
	const char *sets[] = { "probe.interval=20ms", "fleet.devices=1000" };
	const char *message;

	load_with(&r, base_profile, sets, 2);
	ck_assert_msg(r.p != NULL, "%s", r.e.msg);
	ck_assert_uint_eq(r.issues.errors, 0);
	message = find_issue(&r, "publish about 50000/s and receive about 50000/s, above AWS's account quotas (20000/s in, 20000/s out)");
	ck_assert_ptr_nonnull(message);
	ck_assert_int_eq(r.issues.items[0].severity, PROFILE_SEVERITY_WARNING);
	done(&r);
}
END_TEST

/* A prober publishes at 80% of AWS's 100/s per connection: 80 devices per worker fit 1 s. */
START_TEST(test_profile_prober_load_warning)
{
	load_result r;
	const char *slow[] = { "probe.kind=prober", "fleet.devices=200", "probe.interval=1s" };
	const char *fits[] = { "probe.kind=prober", "fleet.devices=200", "probe.interval=1s",
			       "fleet.worker_devices=50" };

	load_with(&r, base_profile, slow, 3);
	ck_assert_msg(r.p != NULL, "%s", r.e.msg);
	ck_assert_ptr_nonnull(find_issue(&r, "each device is probed every 2.5 s, not every 1s"));
	done(&r);
	load_with(&r, base_profile, fits, 4);
	ck_assert_msg(r.p != NULL, "%s", r.e.msg);
	ck_assert_ptr_null(find_issue(&r, "fleet.worker_devices"));
	done(&r);
}
END_TEST

START_TEST(test_profile_resolved_round_trip)
{
	load_result r;
	load_result again;
	char *out = NULL;
	size_t len = 0;

	load(&r, base_profile);
	ck_assert_int_eq(profile_format(r.p, &out, &len, NULL), PL_OK);
	load(&again, out);
	ck_assert_msg(again.p != NULL, "resolved profile does not load: %s", again.e.msg);
	ck_assert_str_eq(again.p->hash, r.p->hash);
	ck_assert_int_eq(again.p->groups[1].devices, 5);
	free(out);
	done(&again);
	done(&r);
}
END_TEST

START_TEST(test_profile_hash_ignores_layout)
{
	load_result a;
	load_result b;
	load_result c;
	const char *reordered =
		"# comment\n"
		"policies: {after: [policies/probe-full.json], before: [policies/probe-no-receive.json]}\n"
		"groups: [{name: keep, share: 5}, {strategy: reconnect-per-attempt, name: re}]\n"
		"fleet: {devices: 10}\n"
		"name: t\n"
		"description: other words\n";
	const char *sets[] = { "probe.interval=2s" };

	load(&a, base_profile);
	load(&b, reordered);
	load_with(&c, base_profile, sets, 1);
	ck_assert_ptr_nonnull(b.p);
	ck_assert_uint_eq(strlen(a.p->hash), 64);
	ck_assert_str_eq(a.p->hash, b.p->hash);
	ck_assert_str_ne(a.p->hash, c.p->hash);
	done(&a);
	done(&b);
	done(&c);
}
END_TEST

START_TEST(test_profile_write_file)
{
	char dir[] = "/tmp/check_profile.XXXXXX";
	char path[PATH_MAX];
	profile *again = NULL;
	load_result r;
	pl_errmsg e;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/profile.yaml", dir);
	load(&r, base_profile);
	ck_assert_int_eq(profile_write_file(r.p, path, &e), PL_OK);
	ck_assert_int_eq(profile_load(&again, path, NULL, &e), PL_OK);
	ck_assert_str_eq(again->hash, r.p->hash);
	profile_free(again);
	done(&r);
	unlink(path);
	rmdir(dir);
}
END_TEST

/*
 * A fresh-per-attempt device connects as "<device>-a<attempt>" after its
 * first attempt, and an echo device subscribes and probes on the topic of
 * that client id, which policies written with ${iot:ClientId} allow.
 */
START_TEST(test_profile_fresh_ids_echo_valid)
{
	load_result r;
	const char *sets[] = { "groups.re.client_id_scheme=fresh-per-attempt" };

	load_with(&r, base_profile, sets, 1);
	ck_assert_int_eq(r.rc, PL_OK);
	ck_assert_ptr_null(find_issue(&r, "iot:Subscribe"));
	ck_assert_ptr_null(find_issue(&r, "iot:Connect"));
	done(&r);
}
END_TEST

/* The prober publishes to one topic per device, so it cannot follow per-attempt ids. */
START_TEST(test_profile_fresh_ids_prober_rejected)
{
	load_result r;
	const char *sets[] = { "groups.re.client_id_scheme=fresh-per-attempt",
			       "probe.kind=prober" };

	load_with(&r, base_profile, sets, 2);
	ck_assert_int_eq(r.rc, PL_ERR_INVALID);
	ck_assert_ptr_nonnull(find_issue(&r, "probe.topic: 'pl/probe/${client_id}' uses ${client_id}, "
					     "but group re has fresh-per-attempt client ids"));
	ck_assert_ptr_nonnull(find_issue(&r, "write ${device} instead"));
	done(&r);
}
END_TEST

START_TEST(test_profile_fresh_ids_prober_device_topic)
{
	load_result r;
	const char *sets[] = { "groups.re.client_id_scheme=fresh-per-attempt",
			       "probe.kind=prober", "probe.topic=pl/probe/${device}" };

	load_with(&r, base_profile, sets, 3);
	ck_assert_ptr_null(find_issue(&r, "fresh-per-attempt client ids and the prober"));
	/* The policies allow only the topic of ${iot:ClientId}, which differs
	 * from the device's topic from the second attempt on. */
	ck_assert_ptr_nonnull(find_issue(&r, "do not allow iot:Subscribe to 'pl/probe/pl-000005' "
					     "(group re, client id 'pl-000005-a2')"));
	done(&r);
}
END_TEST

START_TEST(test_profile_fresh_ids_fixed_prober_valid)
{
	load_result r;
	const char *sets[] = { "probe.kind=prober" };

	load_with(&r, base_profile, sets, 1);
	ck_assert_int_eq(r.rc, PL_OK);
	ck_assert_ptr_null(find_issue(&r, "fresh-per-attempt client ids and the prober"));
	done(&r);
}
END_TEST

START_TEST(test_profile_client_ids_and_topics)
{
	load_result r;
	/* On the aws target the policy findings about fresh ids are warnings. */
	const char *sets[] = { "groups.re.client_id_scheme=fresh-per-attempt", "target.kind=aws",
			       "target.aws.region=us-east-1",
			       /* validate only checks that this file is readable */
			       "target.aws.root_ca=policies/probe-full.json" };
	char id[64];
	char topic[64];

	load_with(&r, base_profile, sets, 4);
	ck_assert_ptr_nonnull(r.p);
	ck_assert_int_eq(profile_device_name(r.p, 7, id, sizeof(id)), PL_OK);
	ck_assert_str_eq(id, "pl-000007");
	ck_assert_int_eq(profile_client_id(r.p, 2, 3, id, sizeof(id)), PL_OK);
	ck_assert_str_eq(id, "pl-000002");
	ck_assert_int_eq(profile_client_id(r.p, 7, 1, id, sizeof(id)), PL_OK);
	ck_assert_str_eq(id, "pl-000007");
	ck_assert_int_eq(profile_client_id(r.p, 7, 3, id, sizeof(id)), PL_OK);
	ck_assert_str_eq(id, "pl-000007-a3");
	ck_assert_int_eq(profile_client_id(r.p, 10, 0, id, sizeof(id)), PL_ERR_RANGE);
	ck_assert_int_eq(profile_expand_topic("a/${device}/${client_id}", "d", "c", topic,
					      sizeof(topic)), PL_OK);
	ck_assert_str_eq(topic, "a/d/c");
	ck_assert_int_eq(profile_expand_topic("abcdef", "d", "c", topic, 4), PL_ERR_RANGE);
	ck_assert_ptr_eq(profile_group_of(r.p, 5), &r.p->groups[1]);
	done(&r);
}
END_TEST

static const char *sim_option(const profile_sim_option *options, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(options[i].key, key) == 0)
			return options[i].value;
	}
	return NULL;
}

START_TEST(test_profile_simulator_options)
{
	load_result r;
	const char *sets[] = { "target.simulator.quotas.connect_rate_per_account=off",
			       "target.simulator.quotas.attach_detach_policy=100/s",
			       "target.simulator.mqtt311_subscribe_denied=suback_failure",
			       "target.simulator.seed=42" };
	profile_sim_option options[PROFILE_SIM_OPTIONS_MAX];
	size_t n;
	char text[64];

	load_with(&r, base_profile, sets, 4);
	ck_assert_msg(r.p != NULL, "%s", r.e.msg);
	n = profile_simulator_options(r.p, options, PROFILE_SIM_OPTIONS_MAX);
	ck_assert_uint_lt(n, PROFILE_SIM_OPTIONS_MAX);
	ck_assert_str_eq(sim_option(options, n, "connect_rate_per_account"), "off");
	ck_assert_str_eq(sim_option(options, n, "connect_rate_per_client"), "1");
	ck_assert_str_eq(sim_option(options, n, "publish_rate_per_connection"), "100");
	ck_assert_str_eq(sim_option(options, n, "subscriptions_per_request"), "8");
	ck_assert_str_eq(sim_option(options, n, "mqtt311_subscribe_denied"), "suback_failure");
	ck_assert_str_eq(sim_option(options, n, "mqtt5_publish_qos0_denied"), "drop");
	ck_assert_str_eq(sim_option(options, n, "api_throttle_AttachPolicy"), "100");
	ck_assert_str_eq(sim_option(options, n, "api_throttle_DetachPolicy"), "100");
	ck_assert_str_eq(sim_option(options, n, "api_throttle_CreatePolicyVersion"), "10");
	ck_assert_str_eq(sim_option(options, n, "api_throttle_status"), "400");
	ck_assert_str_eq(sim_option(options, n, "account"), "123456789012");
	ck_assert_str_eq(sim_option(options, n, "seed"), "42");
	ck_assert_uint_eq(profile_simulator_options(r.p, options, 3), 3);
	profile_propagation_text(&r.p->target.simulator.propagation, text, sizeof(text));
	ck_assert_str_eq(text, "uniform:6m-8m");
	done(&r);
}
END_TEST

START_TEST(test_profile_simulator_account_checked)
{
	load_result r;
	const char *sets[] = { "target.simulator.account=12345" };

	load_with(&r, base_profile, sets, 1);
	ck_assert_str_eq(r.e.msg,
			 "--set target.simulator.account=12345: target.simulator.account: '12345' is not an AWS account id: expected 12 digits");
	done(&r);
}
END_TEST

START_TEST(test_profile_shipped_profiles_validate)
{
	static const char *const names[] = { "seed-verification", "revoke", "policy-version",
					      "shared-certificate", "scale-10k" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char path[PATH_MAX];
		profile *p = NULL;
		pl_errmsg e = { "" };

		snprintf(path, sizeof(path), "%s/%s.yaml", profiles_dir, names[i]);
		ck_assert_msg(profile_load(&p, path, NULL, &e) == PL_OK, "%s: %s", path, e.msg);
		ck_assert_str_eq(p->name, names[i]);
		profile_free(p);
	}
}
END_TEST

START_TEST(test_profile_seed_matches_background)
{
	char path[PATH_MAX];
	profile *p = NULL;
	pl_errmsg e = { "" };

	snprintf(path, sizeof(path), "%s/seed-verification.yaml", profiles_dir);
	ck_assert_int_eq(profile_load(&p, path, NULL, &e), PL_OK);
	ck_assert_int_eq(p->fleet.devices, 200);
	ck_assert_int_eq(p->groups[0].devices, 100);
	ck_assert_int_eq(p->groups[1].strategy, PROFILE_STRATEGY_RECONNECT_PER_ATTEMPT);
	ck_assert_int_eq(p->groups[1].attempt_window_ns, 7 * PL_NS_PER_S);
	ck_assert_int_eq(p->swap.kind, PROFILE_SWAP_TRIGGER_TOPIC);
	ck_assert_str_eq(p->swap.trigger_topic, "hoge/req");
	ck_assert_str_eq(p->probe.topic, "hoge/res/${client_id}");
	ck_assert_int_le(profile_expected_duration(p), 150 * PL_NS_PER_S);
	profile_free(p);
}
END_TEST

/* Runs "policylag validate ARGS 2>&1" and returns its exit status; output goes to out. */
static int run_validate(const char *args, char *out, size_t len)
{
	const char *bin = getenv("POLICYLAG_BIN");
	char command[PATH_MAX * 3];
	size_t used = 0;
	FILE *pipe;
	int status;

	ck_assert_msg(bin != NULL, "POLICYLAG_BIN is not set (run through make check)");
	snprintf(command, sizeof(command), "cd '%s' && '%s' validate %s 2>&1", profiles_dir, bin,
		 args);
	pipe = popen(command, "r");
	ck_assert_ptr_nonnull(pipe);
	while (used + 1 < len) {
		size_t n = fread(out + used, 1, len - 1 - used, pipe);

		if (n == 0)
			break;
		used += n;
	}
	out[used] = '\0';
	status = pclose(pipe);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

START_TEST(test_profile_validate_command_valid)
{
	char out[8192];

	ck_assert_int_eq(run_validate("seed-verification.yaml", out, sizeof(out)), 0);
	ck_assert_msg(strstr(out, "seed-verification.yaml: valid") != NULL, "output: %s", out);
	ck_assert_ptr_nonnull(strstr(out, "keep"));
	ck_assert_ptr_nonnull(strstr(out, "run time:"));
}
END_TEST

START_TEST(test_profile_validate_command_errors)
{
	char out[8192];

	/* Two bad overrides: both are reported and the exit status is 2. */
	ck_assert_int_eq(run_validate("revoke.yaml --set probe.interval=10q --set fleet.devices=0", out,
				      sizeof(out)),
			 2);
	ck_assert_msg(strstr(out, "--set probe.interval=10q: probe.interval: invalid duration") != NULL,
		      "output: %s", out);
	ck_assert_msg(strstr(out, "--set fleet.devices=0: fleet.devices: integer '0' is out of range") != NULL,
		      "output: %s", out);
	ck_assert_ptr_nonnull(strstr(out, "revoke.yaml: 2 errors"));
}
END_TEST

START_TEST(test_profile_validate_command_resolved)
{
	char out[16384];

	ck_assert_int_eq(run_validate("--resolved policy-version.yaml", out, sizeof(out)), 0);
	ck_assert_ptr_nonnull(strstr(out, "observe_timeout: 90s"));
	ck_assert_ptr_nonnull(strstr(out, "sha256: \""));
}
END_TEST

typedef struct docs_check {
	const char *docs;
	char missing[2048];
} docs_check;

static void check_documented(void *ctx, const char *path, const field *f)
{
	docs_check *c = ctx;
	char quoted[200];
	size_t used = strlen(c->missing);

	(void)f;
	snprintf(quoted, sizeof(quoted), "`%s`", path);
	if (strstr(c->docs, quoted) == NULL)
		snprintf(c->missing + used, sizeof(c->missing) - used, " %s", path);
}

START_TEST(test_profile_docs_list_every_key)
{
	char path[PATH_MAX];
	char *docs = NULL;
	size_t len = 0;
	docs_check c;

	snprintf(path, sizeof(path), "%s/../docs/profiles.md", profiles_dir);
	ck_assert_int_eq(profile_read_file(path, 1 << 20, &docs, &len, NULL), PL_OK);
	c.docs = docs;
	c.missing[0] = '\0';
	schema_visit_keys(check_documented, &c);
	ck_assert_msg(c.missing[0] == '\0', "keys missing from docs/profiles.md:%s", c.missing);
	free(docs);
}
END_TEST

static Suite *profile_suite(void)
{
	Suite *s = suite_create("profile");
	TCase *errors = tcase_create("errors");
	TCase *resolve = tcase_create("resolve");
	TCase *checks = tcase_create("checks");
	TCase *output = tcase_create("output");

	tcase_add_test(errors, test_profile_base_loads);
	tcase_add_test(errors, test_profile_negative_rate_range);
	tcase_add_test(errors, test_profile_syntax_error_position);
	tcase_add_test(errors, test_profile_deep_nesting_rejected);
	tcase_add_test(errors, test_profile_unknown_key_suggests);
	tcase_add_test(errors, test_profile_unknown_key_lists_known);
	tcase_add_test(errors, test_profile_bad_type_list_for_number);
	tcase_add_test(errors, test_profile_bad_type_word_for_number);
	tcase_add_test(errors, test_profile_bad_enum_lists_choices);
	tcase_add_test(errors, test_profile_bad_duration);
	tcase_add_test(errors, test_profile_duration_out_of_range);
	tcase_add_test(errors, test_profile_missing_policy_file);
	tcase_add_test(errors, test_profile_invalid_policy_document);
	tcase_add_test(errors, test_profile_bad_override_value);
	tcase_add_test(errors, test_profile_bad_override_unknown_key);
	tcase_add_test(errors, test_profile_override_map_rejected);
	tcase_add_test(errors, test_profile_override_map_message);
	tcase_add_test(errors, test_profile_override_group_rejected);
	tcase_add_test(errors, test_profile_override_empty_list_key);
	tcase_add_test(errors, test_profile_override_empty_name);
	tcase_add_test(errors, test_profile_duration_exponent_rejected);
	tcase_add_test(errors, test_profile_bad_override_syntax);
	tcase_add_test(errors, test_profile_bad_override_group_name);
	tcase_add_test(errors, test_profile_bad_override_below_value);
	tcase_add_test(errors, test_profile_bad_override_empty_segment);
	tcase_add_test(errors, test_profile_bad_group_no_cascade);
	tcase_add_test(errors, test_profile_unset_env_var);
	tcase_add_test(errors, test_profile_shares_not_adding_up);
	tcase_add_test(errors, test_profile_share_count_above_fleet);
	tcase_add_test(errors, test_profile_duplicate_key);
	tcase_add_test(errors, test_profile_every_error_reported);
	tcase_add_test(errors, test_profile_merge_key_needs_map);
	tcase_add_test(errors, test_profile_top_level_list_rejected);
	suite_add_tcase(s, errors);

	tcase_add_test(resolve, test_profile_defaults_filled_in);
	tcase_add_test(resolve, test_profile_default_group_when_absent);
	tcase_add_test(resolve, test_profile_overrides_applied);
	tcase_add_test(resolve, test_profile_override_creates_section);
	tcase_add_test(resolve, test_profile_observer_defaults);
	tcase_add_test(resolve, test_profile_observer_off);
	tcase_add_test(resolve, test_profile_observer_bad_bool);
	tcase_add_test(resolve, test_profile_observer_needs_key);
	tcase_add_test(resolve, test_profile_shares_largest_remainder);
	tcase_add_test(resolve, test_profile_shares_default_split);
	tcase_add_test(resolve, test_profile_env_substituted_and_hidden);
	tcase_add_test(resolve, test_profile_literal_secret_rejected);
	tcase_add_test(resolve, test_profile_env_escape);
	tcase_add_test(resolve, test_profile_merge_keys_applied);
	tcase_add_test(resolve, test_profile_extension_key_for_anchors);
	suite_add_tcase(s, resolve);

	tcase_add_test(checks, test_profile_window_not_shorter_than_interval);
	tcase_add_test(checks, test_profile_fixed_client_id_too_fast);
	tcase_add_test(checks, test_profile_reconnect_key_on_keep_group);
	tcase_add_test(checks, test_profile_topic_needs_client_id);
	tcase_add_test(checks, test_profile_topic_policy_variable);
	tcase_add_test(checks, test_profile_invalid_topic_no_cascade);
	tcase_add_test(checks, test_profile_revoke_interval_too_short);
	tcase_add_test(checks, test_profile_invalid_prefix_no_cascade);
	tcase_add_test(checks, test_profile_probe_rate_over_quota);
	tcase_add_test(checks, test_profile_shared_certificate_trigger_rejected);
	tcase_add_test(checks, test_profile_grant_that_changes_nothing);
	tcase_add_test(checks, test_profile_policy_version_needs_one_each);
	tcase_add_test(checks, test_profile_expectation_unknown_group);
	tcase_add_test(checks, test_profile_expectation_syntax_error);
	tcase_add_test(checks, test_profile_expectations_parsed);
	tcase_add_test(checks, test_profile_account_rate_warning);
	tcase_add_test(checks, test_profile_prober_load_warning);
	suite_add_tcase(s, checks);

	tcase_add_test(output, test_profile_resolved_round_trip);
	tcase_add_test(output, test_profile_hash_ignores_layout);
	tcase_add_test(output, test_profile_write_file);
	tcase_add_test(output, test_profile_client_ids_and_topics);
	tcase_add_test(output, test_profile_fresh_ids_echo_valid);
	tcase_add_test(output, test_profile_fresh_ids_prober_rejected);
	tcase_add_test(output, test_profile_fresh_ids_prober_device_topic);
	tcase_add_test(output, test_profile_fresh_ids_fixed_prober_valid);
	tcase_add_test(output, test_profile_simulator_options);
	tcase_add_test(checks, test_profile_simulator_account_checked);
	tcase_add_test(output, test_profile_shipped_profiles_validate);
	tcase_add_test(output, test_profile_seed_matches_background);
	tcase_add_test(output, test_profile_docs_list_every_key);
	tcase_add_test(output, test_profile_validate_command_valid);
	tcase_add_test(output, test_profile_validate_command_errors);
	tcase_add_test(output, test_profile_validate_command_resolved);
	suite_add_tcase(s, output);
	return s;
}

int main(void)
{
	SRunner *runner = srunner_create(profile_suite());
	int failed;

	find_profiles_dir();
	srunner_run_all(runner, CK_NORMAL);
	failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
