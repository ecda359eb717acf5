/*
 * The AWS CLI v2 (Debian's awscli) against the simulator's API with
 * --endpoint-url: the wire format must satisfy botocore's rest-json parser
 * and SigV4 signer, not only libcurl. Uses the generated credentials file.
 */
#include "tests/check_api_fixture.h"

#define AWS_BIN "/usr/bin/aws"
#define POLICY_DOC                                                                          \
	"'{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\","                  \
	"\"Action\":\"iot:Connect\",\"Resource\":\"*\"}]}'"

/*
 * Runs "aws ARGS" against the API; the combined output goes to out. Returns
 * the exit status. The metadata service is disabled so that the CLI never
 * looks beyond loopback for credentials or a region.
 */
static int aws(const char *args, char *out, size_t len)
{
	char cmd[4096];
	size_t n = 0;
	FILE *p;
	int status;

	snprintf(cmd, sizeof(cmd),
		 "env -i PATH=/usr/bin:/bin HOME=%s AWS_SHARED_CREDENTIALS_FILE=%s "
		 "AWS_CONFIG_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true AWS_PAGER= "
		 AWS_BIN " --profile policylag-sim --region us-east-1 --output json "
		 "--endpoint-url http://127.0.0.1:%u %s 2>&1",
		 fx.dir, fx.creds_path, fx.port, args);
	p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	while (n + 1 < len && (status = (int)fread(out + n, 1, len - n - 1, p)) > 0)
		n += (size_t)status;
	out[n] = '\0';
	status = pclose(p);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

START_TEST(test_api_cli_create_and_get_policy)
{
	char out[8192];

	ck_assert_msg(aws("iot create-policy --policy-name cli-1 --policy-document " POLICY_DOC,
			  out, sizeof(out)) == 0, "%s", out);
	ck_assert_ptr_nonnull(strstr(out, "\"policyVersionId\": \"1\""));
	ck_assert_msg(aws("iot get-policy --policy-name cli-1", out, sizeof(out)) == 0, "%s", out);
	ck_assert_ptr_nonnull(strstr(out, "\"defaultVersionId\": \"1\""));
	ck_assert_msg(aws("iot create-policy-version --policy-name cli-1 --set-as-default "
			  "--policy-document " POLICY_DOC,
			  out, sizeof(out)) == 0, "%s", out);
	ck_assert_ptr_nonnull(strstr(out, "\"isDefaultVersion\": true"));
	ck_assert_msg(aws("iot list-policy-versions --policy-name cli-1", out, sizeof(out)) == 0,
		      "%s", out);
	ck_assert_ptr_nonnull(strstr(out, "\"versionId\": \"2\""));
}
END_TEST

START_TEST(test_api_cli_errors)
{
	char out[8192];

	/* The CLI exits with 254 for a service error and names the exception. */
	ck_assert_int_eq(aws("iot get-policy --policy-name nope", out, sizeof(out)), 254);
	ck_assert_ptr_nonnull(strstr(out, "ResourceNotFoundException"));
	ck_assert_int_eq(aws("iot create-policy --policy-name bad --policy-document '{x'", out,
			     sizeof(out)),
			 254);
	ck_assert_ptr_nonnull(strstr(out, "MalformedPolicyException"));
}
END_TEST

START_TEST(test_api_cli_certificate_and_attach)
{
	char out[16384], args[512], arn[256];
	const char *p;
	size_t n;

	ck_assert_int_eq(aws("iot create-policy --policy-name cli-2 --policy-document " POLICY_DOC,
			     out, sizeof(out)),
			 0);
	ck_assert_msg(aws("iot create-keys-and-certificate --set-as-active", out, sizeof(out)) == 0,
		      "%s", out);
	p = strstr(out, "\"certificateArn\": \"");
	ck_assert_ptr_nonnull(p);
	p += strlen("\"certificateArn\": \"");
	n = strcspn(p, "\"");
	ck_assert_uint_lt(n, sizeof(arn));
	memcpy(arn, p, n);
	arn[n] = '\0';
	snprintf(args, sizeof(args), "iot attach-policy --policy-name cli-2 --target %s", arn);
	ck_assert_msg(aws(args, out, sizeof(out)) == 0, "%s", out);
	snprintf(args, sizeof(args), "iot list-attached-policies --target %s", arn);
	ck_assert_msg(aws(args, out, sizeof(out)) == 0, "%s", out);
	ck_assert_ptr_nonnull(strstr(out, "\"policyName\": \"cli-2\""));
	ck_assert_msg(aws("iot list-targets-for-policy --policy-name cli-2", out, sizeof(out)) == 0,
		      "%s", out);
	ck_assert_ptr_nonnull(strstr(out, arn));
}
END_TEST

START_TEST(test_api_cli_endpoint_and_publish)
{
	char out[8192];

	ck_assert_msg(aws("iot describe-endpoint --endpoint-type iot:Data-ATS", out, sizeof(out)) ==
			      0,
		      "%s", out);
	ck_assert_ptr_nonnull(strstr(out, "\"endpointAddress\": \"127.0.0.1\""));
	ck_assert_msg(aws("iot-data publish --topic hoge/res --qos 1 --payload aGVsbG8=", out,
			  sizeof(out)) == 0,
		      "%s", out);
}
END_TEST

static Suite *cli_suite(void)
{
	Suite *s = suite_create("api_cli");
	TCase *tc = tcase_create("aws");

	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, fixture_start, fixture_stop);
	tcase_add_test(tc, test_api_cli_create_and_get_policy);
	tcase_add_test(tc, test_api_cli_errors);
	tcase_add_test(tc, test_api_cli_certificate_and_attach);
	tcase_add_test(tc, test_api_cli_endpoint_and_publish);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(cli_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
