/*
 * Tests of credential resolution (environment, shared credentials file,
 * config file, profiles) and of target resolution. Every file lives in a
 * temporary directory, and HOME points there so that no real ~/.aws is read.
 */
#include <check.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness/credentials.h"
#include "harness/target.h"

static char dir[64];

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void write_text(const char *leaf, const char *text)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, leaf);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

/* Clears every AWS variable and points HOME at an empty temporary directory. */
static void setup(void)
{
	static const char *const vars[] = {
		"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
		"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE",
	};

	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		unsetenv(vars[i]);
	snprintf(dir, sizeof(dir), "/tmp/policylag-target.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	setenv("HOME", dir, 1);
}

static void teardown(void)
{
	nftw(dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static void use_credentials_file(const char *text)
{
	char path[128];

	write_text("credentials", text);
	snprintf(path, sizeof(path), "%s/credentials", dir);
	setenv("AWS_SHARED_CREDENTIALS_FILE", path, 1);
}

static const char *const two_profiles =
	"# comment\n"
	"[default]\n"
	"aws_access_key_id = AKIADEFAULT00000000\n"
	"aws_secret_access_key = default-secret\n"
	"\n"
	"[ci]\n"
	"aws_access_key_id=AKIACI0000000000000\n"
	"aws_secret_access_key=ci-secret\n"
	"aws_session_token = ci-token\n"
	"region = eu-west-1\n";

START_TEST(test_target_credentials_env)
{
	aws_credentials c;
	pl_errmsg e = { "" };

	setenv("AWS_ACCESS_KEY_ID", "AKIAENV000000000000", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "env-secret", 1);
	setenv("AWS_SESSION_TOKEN", "env-token", 1);
	setenv("AWS_DEFAULT_REGION", "ap-south-1", 1);
	ck_assert_msg(credentials_resolve(&c, NULL, &e) == PL_OK, "%s", e.msg);
	ck_assert_str_eq(c.access_key_id, "AKIAENV000000000000");
	ck_assert_str_eq(c.secret_access_key, "env-secret");
	ck_assert_str_eq(c.session_token, "env-token");
	ck_assert_str_eq(c.region, "ap-south-1");
	ck_assert_str_eq(c.source, "environment");
}
END_TEST

START_TEST(test_target_credentials_region_precedence)
{
	aws_credentials c;
	pl_errmsg e = { "" };

	setenv("AWS_ACCESS_KEY_ID", "AKIAENV000000000000", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "env-secret", 1);
	setenv("AWS_DEFAULT_REGION", "ap-south-1", 1);
	setenv("AWS_REGION", "us-west-2", 1);
	ck_assert_int_eq(credentials_resolve(&c, NULL, &e), PL_OK);
	ck_assert_str_eq(c.region, "us-west-2");
}
END_TEST

START_TEST(test_target_credentials_default_profile)
{
	aws_credentials c;
	pl_errmsg e = { "" };

	use_credentials_file(two_profiles);
	ck_assert_msg(credentials_resolve(&c, NULL, &e) == PL_OK, "%s", e.msg);
	ck_assert_str_eq(c.access_key_id, "AKIADEFAULT00000000");
	ck_assert_str_eq(c.secret_access_key, "default-secret");
	ck_assert_str_eq(c.session_token, "");
}
END_TEST

START_TEST(test_target_credentials_aws_profile)
{
	aws_credentials c;
	pl_errmsg e = { "" };

	use_credentials_file(two_profiles);
	setenv("AWS_PROFILE", "ci", 1);
	ck_assert_int_eq(credentials_resolve(&c, NULL, &e), PL_OK);
	ck_assert_str_eq(c.access_key_id, "AKIACI0000000000000");
	ck_assert_str_eq(c.session_token, "ci-token");
	ck_assert_str_eq(c.region, "eu-west-1");
}
END_TEST

/* The environment's keys win over AWS_PROFILE, but a profile named by the caller wins over them. */
START_TEST(test_target_credentials_precedence)
{
	aws_credentials c;
	pl_errmsg e = { "" };

	use_credentials_file(two_profiles);
	setenv("AWS_PROFILE", "ci", 1);
	setenv("AWS_ACCESS_KEY_ID", "AKIAENV000000000000", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "env-secret", 1);
	ck_assert_int_eq(credentials_resolve(&c, NULL, &e), PL_OK);
	ck_assert_str_eq(c.access_key_id, "AKIAENV000000000000");
	ck_assert_int_eq(credentials_resolve(&c, "default", &e), PL_OK);
	ck_assert_str_eq(c.access_key_id, "AKIADEFAULT00000000");
}
END_TEST

START_TEST(test_target_credentials_home_file)
{
	aws_credentials c;
	char aws_dir[128];
	pl_errmsg e = { "" };

	snprintf(aws_dir, sizeof(aws_dir), "%s/.aws", dir);
	ck_assert_int_eq(mkdir(aws_dir, 0700), 0);
	write_text(".aws/credentials", "[ci]\naws_access_key_id = AKIACI0000000000000\n"
					"aws_secret_access_key = ci-secret\n");
	write_text(".aws/config", "[ci]\nregion = eu-north-1\n[profile ci]\nregion = sa-east-1\n");
	ck_assert_int_eq(credentials_resolve(&c, "ci", &e), PL_OK);
	ck_assert_str_eq(c.access_key_id, "AKIACI0000000000000");
	/* The config file names non-default profiles "[profile NAME]". */
	ck_assert_str_eq(c.region, "sa-east-1");
}
END_TEST

START_TEST(test_target_credentials_config_region)
{
	aws_credentials c;
	char path[128];
	pl_errmsg e = { "" };

	use_credentials_file("[default]\naws_access_key_id=AKIA0000000000000000\n"
			     "aws_secret_access_key=s\n");
	write_text("config", "[default]\nregion = ca-central-1\n[profile x]\nregion = us-east-2\n");
	snprintf(path, sizeof(path), "%s/config", dir);
	setenv("AWS_CONFIG_FILE", path, 1);
	ck_assert_int_eq(credentials_resolve(&c, NULL, &e), PL_OK);
	ck_assert_str_eq(c.region, "ca-central-1");
}
END_TEST

START_TEST(test_target_credentials_missing)
{
	aws_credentials c;
	pl_errmsg e = { "" };

	ck_assert_int_eq(credentials_resolve(&c, NULL, &e), PL_ERR_NOT_FOUND);
	ck_assert_ptr_nonnull(strstr(e.msg, "AWS_ACCESS_KEY_ID"));
}
END_TEST

START_TEST(test_target_credentials_unknown_profile)
{
	aws_credentials c;
	pl_errmsg e = { "" };

	use_credentials_file(two_profiles);
	ck_assert_int_eq(credentials_resolve(&c, "nope", &e), PL_ERR_NOT_FOUND);
	ck_assert_ptr_nonnull(strstr(e.msg, "[nope]"));
}
END_TEST

START_TEST(test_target_credentials_malformed)
{
	aws_credentials c;
	pl_errmsg e = { "" };

	use_credentials_file("[default\naws_access_key_id=x\n");
	ck_assert_int_eq(credentials_resolve(&c, NULL, &e), PL_ERR_PARSE);
	ck_assert_ptr_nonnull(strstr(e.msg, "credentials:1:"));
}
END_TEST

START_TEST(test_target_credentials_mask)
{
	char buf[32];

	credentials_mask("AKIAIOSFODNN7EXAMPLE", buf, sizeof(buf));
	ck_assert_str_eq(buf, "AKIA****MPLE");
	credentials_mask("short", buf, sizeof(buf));
	ck_assert_str_eq(buf, "****");
}
END_TEST

START_TEST(test_target_aws_defaults)
{
	target_aws_settings s = { .region = "eu-central-1", .access_key_id = "AKIA0000000000000000",
				  .secret_access_key = "very-secret-value" };
	target_info t;
	char line[512];
	pl_errmsg e = { "" };

	ck_assert_msg(target_from_aws(&t, &s, &e) == PL_OK, "%s", e.msg);
	ck_assert_str_eq(t.control_endpoint, "https://iot.eu-central-1.amazonaws.com");
	ck_assert_int_eq(t.mqtt_port, 8883);
	ck_assert_str_eq(t.alpn, "");
	ck_assert_str_eq(t.mqtt_host, "");
	target_describe(&t, line, sizeof(line));
	ck_assert_ptr_null(strstr(line, "very-secret-value"));
	ck_assert_ptr_null(strstr(line, "AKIA0000000000000000"));
	target_clear(&t);
}
END_TEST

START_TEST(test_target_aws_port_443)
{
	target_aws_settings s = { .region = "us-east-1", .access_key_id = "AKIA0000000000000000",
				  .secret_access_key = "x", .port = 443,
				  .mqtt_endpoint = "abc-ats.iot.us-east-1.amazonaws.com" };
	target_info t;
	pl_errmsg e = { "" };

	ck_assert_int_eq(target_from_aws(&t, &s, &e), PL_OK);
	ck_assert_str_eq(t.alpn, "x-amzn-mqtt-ca");
	ck_assert_str_eq(t.sni, "abc-ats.iot.us-east-1.amazonaws.com");
	ck_assert_str_eq(t.data_endpoint, "https://abc-ats.iot.us-east-1.amazonaws.com");
}
END_TEST

START_TEST(test_target_aws_data_endpoint)
{
	target_aws_settings s = { .region = "us-east-1", .access_key_id = "AKIA0000000000000000",
				  .secret_access_key = "x",
				  .mqtt_endpoint = "abc-ats.iot.us-east-1.amazonaws.com",
				  .data_endpoint = "https://vpce-1.data.iot.us-east-1.vpce.amazonaws.com" };
	target_info t;
	awsapi_config cfg;
	pl_errmsg e = { "" };

	ck_assert_msg(target_from_aws(&t, &s, &e) == PL_OK, "%s", e.msg);
	ck_assert_str_eq(t.data_endpoint, "https://vpce-1.data.iot.us-east-1.vpce.amazonaws.com");
	ck_assert_str_eq(t.mqtt_host, "abc-ats.iot.us-east-1.amazonaws.com");
	ck_assert_str_eq(t.sni, "abc-ats.iot.us-east-1.amazonaws.com");
	awsapi_config_init(&cfg);
	target_api_config(&t, &cfg);
	ck_assert_str_eq(cfg.data_endpoint, t.data_endpoint);
	target_clear(&t);
}
END_TEST

START_TEST(test_target_aws_data_endpoint_not_url)
{
	target_aws_settings s = { .region = "us-east-1", .access_key_id = "AKIA0000000000000000",
				  .secret_access_key = "x", .data_endpoint = "data.example" };
	target_info t;
	pl_errmsg e = { "" };

	ck_assert_int_eq(target_from_aws(&t, &s, &e), PL_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(e.msg, "data endpoint 'data.example' is not a URL"));
}
END_TEST

START_TEST(test_target_aws_no_data_endpoint_yet)
{
	target_aws_settings s = { .region = "us-east-1", .access_key_id = "AKIA0000000000000000",
				  .secret_access_key = "x" };
	target_info t;
	awsapi_config cfg;
	pl_errmsg e = { "" };

	ck_assert_int_eq(target_from_aws(&t, &s, &e), PL_OK);
	awsapi_config_init(&cfg);
	target_api_config(&t, &cfg);
	/* Known only after DescribeEndpoint (target_discover). */
	ck_assert_ptr_null(cfg.data_endpoint);
	target_clear(&t);
}
END_TEST

/* The rates for a profile of kind whose simulator quotas are 200/s, 0 and 40/s. */
static void rates_for(profile_target_kind kind, awsapi_config *cfg)
{
	profile p;

	memset(&p, 0, sizeof(p));
	p.target.kind = kind;
	p.target.simulator.quotas.attach_detach_policy = 200;
	p.target.simulator.quotas.policy_write = 0;
	p.target.simulator.quotas.create_certificate_from_csr = 40;
	awsapi_config_init(cfg);
	target_api_rates(&p, cfg);
}

START_TEST(test_target_rates_simulator_quotas)
{
	awsapi_config cfg;

	rates_for(PROFILE_TARGET_SIMULATOR, &cfg);
	ck_assert_double_eq(cfg.tps[AWSAPI_ATTACH_POLICY], 200);
	ck_assert_double_eq(cfg.tps[AWSAPI_DETACH_POLICY], 200);
	ck_assert_double_eq(cfg.tps[AWSAPI_CREATE_CERTIFICATE_FROM_CSR], 40);
	/* A quota of 0 is off in the simulator, so the client does not limit it either. */
	ck_assert_double_lt(cfg.tps[AWSAPI_CREATE_POLICY_VERSION], 0);
	ck_assert_double_eq(cfg.tps_scale, 0.95);
}
END_TEST

START_TEST(test_target_rates_aws_defaults)
{
	awsapi_config cfg;

	rates_for(PROFILE_TARGET_AWS, &cfg);
	/* 0 keeps AWS's default quota (awsapi_op_default_tps). */
	ck_assert_double_eq(cfg.tps[AWSAPI_ATTACH_POLICY], 0);
	ck_assert_double_eq(cfg.tps[AWSAPI_CREATE_POLICY_VERSION], 0);
	ck_assert_double_eq(cfg.tps_scale, 0.95);
}
END_TEST

START_TEST(test_target_aws_bad_port)
{
	target_aws_settings s = { .region = "us-east-1", .access_key_id = "AKIA0000000000000000",
				  .secret_access_key = "x", .port = 1883 };
	target_info t;
	pl_errmsg e = { "" };

	ck_assert_int_eq(target_from_aws(&t, &s, &e), PL_ERR_INVALID);
}
END_TEST

START_TEST(test_target_aws_region_from_env)
{
	target_aws_settings s = { 0 };
	target_info t;
	pl_errmsg e = { "" };

	setenv("AWS_ACCESS_KEY_ID", "AKIAENV000000000000", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "env-secret", 1);
	ck_assert_int_eq(target_from_aws(&t, &s, &e), PL_ERR_INVALID);
	setenv("AWS_REGION", "me-south-1", 1);
	ck_assert_int_eq(target_from_aws(&t, &s, &e), PL_OK);
	ck_assert_str_eq(t.region, "me-south-1");
}
END_TEST

START_TEST(test_target_aws_keys_env_region)
{
	target_aws_settings s = { .access_key_id = "AKIA0000000000000000",
				  .secret_access_key = "x" };
	target_info t;
	pl_errmsg e = { "" };

	setenv("AWS_DEFAULT_REGION", "af-south-1", 1);
	ck_assert_msg(target_from_aws(&t, &s, &e) == PL_OK, "%s", e.msg);
	ck_assert_str_eq(t.region, "af-south-1");
	ck_assert_str_eq(t.credentials.access_key_id, "AKIA0000000000000000");
}
END_TEST

START_TEST(test_target_simulator)
{
	target_info t;
	awsapi_config cfg;
	pl_errmsg e = { "" };

	write_text("credentials", "[policylag-sim]\naws_access_key_id = AKIASIM000000000000\n"
				  "aws_secret_access_key = sim-secret\n");
	ck_assert_msg(target_from_simulator(&t, dir, 8080, "eu-west-3", 8883, "/x/ca.pem", &e) == PL_OK, "%s",
		      e.msg);
	ck_assert_str_eq(t.control_endpoint, "http://127.0.0.1:8080");
	ck_assert_str_eq(t.credentials.secret_access_key, "sim-secret");
	awsapi_config_init(&cfg);
	target_api_config(&t, &cfg);
	ck_assert_str_eq(cfg.data_endpoint, "http://127.0.0.1:8080");
	ck_assert_ptr_null(cfg.ca_file);
	ck_assert_str_eq(cfg.region, "eu-west-3");
}
END_TEST

START_TEST(test_target_simulator_no_credentials)
{
	target_info t;
	pl_errmsg e = { "" };

	ck_assert_int_eq(target_from_simulator(&t, dir, 8080, NULL, 0, NULL, &e), PL_ERR_NOT_FOUND);
	ck_assert_ptr_nonnull(strstr(e.msg, "simulator credentials"));
}
END_TEST

static Suite *target_suite(void)
{
	Suite *s = suite_create("target");
	TCase *tc = tcase_create("target");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_target_credentials_env);
	tcase_add_test(tc, test_target_credentials_region_precedence);
	tcase_add_test(tc, test_target_credentials_default_profile);
	tcase_add_test(tc, test_target_credentials_aws_profile);
	tcase_add_test(tc, test_target_credentials_precedence);
	tcase_add_test(tc, test_target_credentials_home_file);
	tcase_add_test(tc, test_target_credentials_config_region);
	tcase_add_test(tc, test_target_credentials_missing);
	tcase_add_test(tc, test_target_credentials_unknown_profile);
	tcase_add_test(tc, test_target_credentials_malformed);
	tcase_add_test(tc, test_target_credentials_mask);
	tcase_add_test(tc, test_target_aws_defaults);
	tcase_add_test(tc, test_target_aws_port_443);
	tcase_add_test(tc, test_target_aws_data_endpoint);
	tcase_add_test(tc, test_target_aws_data_endpoint_not_url);
	tcase_add_test(tc, test_target_aws_no_data_endpoint_yet);
	tcase_add_test(tc, test_target_rates_simulator_quotas);
	tcase_add_test(tc, test_target_rates_aws_defaults);
	tcase_add_test(tc, test_target_aws_bad_port);
	tcase_add_test(tc, test_target_aws_region_from_env);
	tcase_add_test(tc, test_target_aws_keys_env_region);
	tcase_add_test(tc, test_target_simulator);
	tcase_add_test(tc, test_target_simulator_no_credentials);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(target_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
