/*
 * The control-plane and data-plane operations of the simulator's API, driven
 * through libcurl's SigV4 signer against the API started in-process. Expected
 * statuses, error types and fields are AWS's (botocore's iot model).
 */
#include <jansson.h>

#include "tests/check_api_fixture.h"

#define ARN_PREFIX "arn:aws:iot:us-east-1:123456789012:"

static json_t *body_json(const reply *r)
{
	json_t *j = json_loads(r->body != NULL ? r->body : "", 0, NULL);

	ck_assert_ptr_nonnull(j);
	return j;
}

static const char *field(json_t *j, const char *key)
{
	return json_string_value(json_object_get(j, key));
}

/* Asserts status and error type and that the body carries a message. */
static void expect_error(const char *method, const char *path, const char *body, long status,
			 const char *type)
{
	reply r;
	json_t *j;

	ck_assert_int_eq(call(method, path, body, &r), status);
	ck_assert_str_eq(r.error_type, type);
	j = body_json(&r);
	ck_assert_ptr_nonnull(field(j, "message"));
	json_decref(j);
	reply_free(&r);
}

static void create_policy(const char *name)
{
	char path[256];

	snprintf(path, sizeof(path), "/policies/%s", name);
	ck_assert_int_eq(call_status("POST", path, DOC_ALLOW("iot:Connect")), 200);
}

/* Creates an active certificate and returns its id (static buffer). */
static const char *create_cert(void)
{
	static char id[65];
	reply r;
	json_t *j;

	ck_assert_int_eq(call("POST", "/keys-and-certificate?setAsActive=true", NULL, &r), 200);
	j = body_json(&r);
	snprintf(id, sizeof(id), "%s", field(j, "certificateId"));
	json_decref(j);
	reply_free(&r);
	return id;
}

static void attach_body(char *buf, size_t len, const char *cert_id)
{
	snprintf(buf, len, "{\"target\":\"" ARN_PREFIX "cert/%s\"}", cert_id);
}

typedef struct drained {
	int count;
	sim_broker_action_kind kind;
	char topic[128];
	char payload[128];
	char client_id[128];
	char cert_id[65];
	char propagation[64];
	int qos;
} drained;

static void on_action(void *ctx, const sim_broker_action *a)
{
	drained *d = ctx;

	d->count++;
	d->kind = a->kind;
	d->qos = a->qos;
	snprintf(d->topic, sizeof(d->topic), "%s", a->topic ? a->topic : "");
	snprintf(d->payload, sizeof(d->payload), "%.*s", (int)a->payload_len,
		 a->payload ? (const char *)a->payload : "");
	snprintf(d->client_id, sizeof(d->client_id), "%s", a->client_id ? a->client_id : "");
	snprintf(d->cert_id, sizeof(d->cert_id), "%s", a->cert_id ? a->cert_id : "");
	snprintf(d->propagation, sizeof(d->propagation), "%s",
		 a->propagation ? a->propagation : "");
}

static drained drain(void)
{
	drained d;

	memset(&d, 0, sizeof(d));
	sim_api_drain(fx.api, on_action, &d);
	return d;
}

START_TEST(test_api_create_policy)
{
	reply r;
	json_t *j;

	ck_assert_int_eq(call("POST", "/policies/p1", DOC_ALLOW("iot:Connect"), &r), 200);
	j = body_json(&r);
	ck_assert_str_eq(field(j, "policyName"), "p1");
	ck_assert_str_eq(field(j, "policyArn"), ARN_PREFIX "policy/p1");
	ck_assert_str_eq(field(j, "policyVersionId"), "1");
	ck_assert_ptr_nonnull(strstr(field(j, "policyDocument"), "iot:Connect"));
	json_decref(j);
	reply_free(&r);
}
END_TEST

START_TEST(test_api_create_policy_duplicate)
{
	reply r;
	json_t *j;

	create_policy("p1");
	ck_assert_int_eq(call("POST", "/policies/p1", DOC_ALLOW("iot:Connect"), &r), 409);
	ck_assert_str_eq(r.error_type, "ResourceAlreadyExistsException");
	j = body_json(&r);
	ck_assert_str_eq(field(j, "resourceId"), "p1");
	ck_assert_str_eq(field(j, "resourceArn"), ARN_PREFIX "policy/p1");
	json_decref(j);
	reply_free(&r);
}
END_TEST

START_TEST(test_api_create_policy_bad_name)
{
	expect_error("POST", "/policies/a%20b", DOC_ALLOW("iot:Connect"), 400,
		     "InvalidRequestException");
	expect_error("POST", "/policies/..%2F..%2Fetc", DOC_ALLOW("iot:Connect"), 400,
		     "InvalidRequestException");
}
END_TEST

START_TEST(test_api_create_policy_malformed)
{
	expect_error("POST", "/policies/p1", "{\"policyDocument\":\"{not json\"}", 400,
		     "MalformedPolicyException");
	expect_error("POST", "/policies/p1", "{\"policyDocument\":\"{\\\"Statement\\\":7}\"}",
		     400, "MalformedPolicyException");
	expect_error("POST", "/policies/p1", "{}", 400, "InvalidRequestException");
}
END_TEST

START_TEST(test_api_create_policy_too_large)
{
	/* AWS: at most 2048 characters, whitespace excluded. */
	char body[4096];
	char resource[2100];

	memset(resource, 'a', sizeof(resource) - 1);
	resource[sizeof(resource) - 1] = '\0';
	snprintf(body, sizeof(body),
		 "{\"policyDocument\":\"{\\\"Version\\\":\\\"2012-10-17\\\",\\\"Statement\\\":[{"
		 "\\\"Effect\\\":\\\"Allow\\\",\\\"Action\\\":\\\"iot:Connect\\\","
		 "\\\"Resource\\\":\\\"%s\\\"}]}\"}",
		 resource);
	expect_error("POST", "/policies/p1", body, 400, "MalformedPolicyException");
	expect_error("GET", "/policies/p1", NULL, 404, "ResourceNotFoundException");
}
END_TEST

START_TEST(test_api_get_policy)
{
	reply r;
	json_t *j;

	create_policy("p1");
	ck_assert_int_eq(call("GET", "/policies/p1", NULL, &r), 200);
	j = body_json(&r);
	ck_assert_str_eq(field(j, "defaultVersionId"), "1");
	ck_assert_ptr_nonnull(field(j, "generationId"));
	ck_assert(json_is_number(json_object_get(j, "creationDate")));
	json_decref(j);
	reply_free(&r);
	expect_error("GET", "/policies/nope", NULL, 404, "ResourceNotFoundException");
}
END_TEST

START_TEST(test_api_list_policies)
{
	reply r;
	json_t *j;

	create_policy("p1");
	create_policy("p2");
	create_policy("p3");
	ck_assert_int_eq(call("GET", "/policies?pageSize=2", NULL, &r), 200);
	j = body_json(&r);
	ck_assert_int_eq(json_array_size(json_object_get(j, "policies")), 2);
	ck_assert_str_eq(field(j, "nextMarker"), "2");
	json_decref(j);
	reply_free(&r);
	ck_assert_int_eq(call("GET", "/policies?marker=2", NULL, &r), 200);
	j = body_json(&r);
	ck_assert_int_eq(json_array_size(json_object_get(j, "policies")), 1);
	ck_assert_ptr_null(json_object_get(j, "nextMarker"));
	json_decref(j);
	reply_free(&r);
	ck_assert_int_eq(call("GET", "/policies?isAscendingOrder=false&pageSize=1", NULL, &r), 200);
	j = body_json(&r);
	ck_assert_str_eq(field(json_array_get(json_object_get(j, "policies"), 0), "policyName"),
			 "p3");
	json_decref(j);
	reply_free(&r);
	expect_error("GET", "/policies?pageSize=0", NULL, 400, "InvalidRequestException");
}
END_TEST

START_TEST(test_api_policy_version_default)
{
	reply r;
	json_t *j;

	create_policy("p1");
	ck_assert_int_eq(call("POST", "/policies/p1/version?setAsDefault=true",
			      DOC_ALLOW("iot:Publish"), &r),
			 200);
	j = body_json(&r);
	ck_assert_str_eq(field(j, "policyVersionId"), "2");
	ck_assert(json_is_true(json_object_get(j, "isDefaultVersion")));
	json_decref(j);
	reply_free(&r);
	ck_assert_int_eq(call("GET", "/policies/p1", NULL, &r), 200);
	j = body_json(&r);
	ck_assert_str_eq(field(j, "defaultVersionId"), "2");
	json_decref(j);
	reply_free(&r);
}
END_TEST

START_TEST(test_api_policy_version_not_default)
{
	reply r;
	json_t *j;

	create_policy("p1");
	ck_assert_int_eq(call("POST", "/policies/p1/version", DOC_ALLOW("iot:Publish"), &r), 200);
	j = body_json(&r);
	ck_assert(json_is_false(json_object_get(j, "isDefaultVersion")));
	json_decref(j);
	reply_free(&r);
	ck_assert_int_eq(call("GET", "/policies/p1/version/2", NULL, &r), 200);
	j = body_json(&r);
	ck_assert(json_is_false(json_object_get(j, "isDefaultVersion")));
	ck_assert_str_eq(field(j, "policyName"), "p1");
	json_decref(j);
	reply_free(&r);
	ck_assert_int_eq(call_status("PATCH", "/policies/p1/version/2", NULL), 200);
	ck_assert_int_eq(call("GET", "/policies/p1/version", NULL, &r), 200);
	j = body_json(&r);
	ck_assert_int_eq(json_array_size(json_object_get(j, "policyVersions")), 2);
	json_decref(j);
	reply_free(&r);
}
END_TEST

START_TEST(test_api_policy_versions_limit)
{
	create_policy("p1");
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(call_status("POST", "/policies/p1/version",
					     DOC_ALLOW("iot:Publish")),
				 200);
	expect_error("POST", "/policies/p1/version", DOC_ALLOW("iot:Publish"), 409,
		     "VersionsLimitExceededException");
}
END_TEST

START_TEST(test_api_delete_policy_version)
{
	create_policy("p1");
	ck_assert_int_eq(call_status("POST", "/policies/p1/version", DOC_ALLOW("iot:Publish")),
			 200);
	expect_error("DELETE", "/policies/p1/version/1", NULL, 409, "DeleteConflictException");
	expect_error("DELETE", "/policies/p1", NULL, 409, "DeleteConflictException");
	ck_assert_int_eq(call_status("DELETE", "/policies/p1/version/2", NULL), 200);
	expect_error("GET", "/policies/p1/version/2", NULL, 404, "ResourceNotFoundException");
	expect_error("PATCH", "/policies/p1/version/9", NULL, 404, "ResourceNotFoundException");
	expect_error("GET", "/policies/p1/version/x", NULL, 400, "InvalidRequestException");
	ck_assert_int_eq(call_status("DELETE", "/policies/p1", NULL), 200);
	expect_error("GET", "/policies/p1", NULL, 404, "ResourceNotFoundException");
}
END_TEST

START_TEST(test_api_attach_policy)
{
	char body[256], path[512];
	const char *cert;
	reply r;
	json_t *j;

	create_policy("p1");
	cert = create_cert();
	attach_body(body, sizeof(body), cert);
	ck_assert_int_eq(call_status("PUT", "/target-policies/p1", body), 200);
	snprintf(path, sizeof(path),
		 "/attached-policies/arn%%3Aaws%%3Aiot%%3Aus-east-1%%3A123456789012%%3Acert%%2F%s",
		 cert);
	ck_assert_int_eq(call("POST", path, NULL, &r), 200);
	j = body_json(&r);
	ck_assert_str_eq(field(json_array_get(json_object_get(j, "policies"), 0), "policyName"),
			 "p1");
	json_decref(j);
	reply_free(&r);
	ck_assert_int_eq(call("POST", "/policy-targets/p1", NULL, &r), 200);
	j = body_json(&r);
	ck_assert_ptr_nonnull(strstr(json_string_value(json_array_get(
					     json_object_get(j, "targets"), 0)),
				     cert));
	json_decref(j);
	reply_free(&r);
	expect_error("DELETE", "/policies/p1", NULL, 409, "DeleteConflictException");
	ck_assert_int_eq(call_status("POST", "/target-policies/p1", body), 200);
	ck_assert_int_eq(call_status("DELETE", "/policies/p1", NULL), 200);
}
END_TEST

START_TEST(test_api_attach_policy_errors)
{
	char body[256], name[32];
	const char *cert;

	cert = create_cert();
	attach_body(body, sizeof(body), cert);
	expect_error("PUT", "/target-policies/nope", body, 404, "ResourceNotFoundException");
	create_policy("p0");
	expect_error("PUT", "/target-policies/p0", "{\"target\":\"" ARN_PREFIX "cert/"
		     "0000000000000000000000000000000000000000000000000000000000000000\"}",
		     404, "ResourceNotFoundException");
	expect_error("PUT", "/target-policies/p0", "{}", 400, "InvalidRequestException");
	for (int i = 0; i < 10; i++) {
		snprintf(name, sizeof(name), "q%d", i);
		create_policy(name);
		snprintf(name, sizeof(name), "/target-policies/q%d", i);
		ck_assert_int_eq(call_status("PUT", name, body), 200);
	}
	expect_error("PUT", "/target-policies/p0", body, 410, "LimitExceededException");
}
END_TEST

START_TEST(test_api_create_keys_and_certificate)
{
	reply r;
	json_t *j, *keys;
	char path[128];

	ck_assert_int_eq(call("POST", "/keys-and-certificate?setAsActive=true", NULL, &r), 200);
	j = body_json(&r);
	ck_assert_int_eq(strlen(field(j, "certificateId")), 64);
	ck_assert_ptr_nonnull(strstr(field(j, "certificateArn"), ARN_PREFIX "cert/"));
	ck_assert_ptr_nonnull(strstr(field(j, "certificatePem"), "BEGIN CERTIFICATE"));
	keys = json_object_get(j, "keyPair");
	ck_assert_ptr_nonnull(strstr(field(keys, "PrivateKey"), "PRIVATE KEY"));
	snprintf(path, sizeof(path), "/certificates/%s", field(j, "certificateId"));
	json_decref(j);
	reply_free(&r);
	ck_assert_int_eq(call("GET", path, NULL, &r), 200);
	j = body_json(&r);
	keys = json_object_get(j, "certificateDescription");
	ck_assert_str_eq(field(keys, "status"), "ACTIVE");
	ck_assert_str_eq(field(keys, "ownedBy"), "123456789012");
	ck_assert(json_is_number(json_object_get(json_object_get(keys, "validity"), "notAfter")));
	json_decref(j);
	reply_free(&r);
}
END_TEST

START_TEST(test_api_certificate_inactive_by_default)
{
	reply r;
	json_t *j, *d;
	char path[128];

	ck_assert_int_eq(call("POST", "/keys-and-certificate", NULL, &r), 200);
	j = body_json(&r);
	snprintf(path, sizeof(path), "/certificates/%s", field(j, "certificateId"));
	json_decref(j);
	reply_free(&r);
	ck_assert_int_eq(call("GET", path, NULL, &r), 200);
	j = body_json(&r);
	d = json_object_get(j, "certificateDescription");
	ck_assert_str_eq(field(d, "status"), "INACTIVE");
	json_decref(j);
	reply_free(&r);
}
END_TEST

START_TEST(test_api_create_certificate_from_csr)
{
	char *key = NULL, *csr = NULL;
	json_t *req, *j;
	char *body;
	reply r;
	pl_errmsg e;

	ck_assert_int_eq(sim_certs_create_ec_csr("device-1", &key, &csr, &e), PL_OK);
	req = json_pack("{s:s}", "certificateSigningRequest", csr);
	body = json_dumps(req, 0);
	ck_assert_int_eq(call("POST", "/certificates?setAsActive=true", body, &r), 200);
	j = body_json(&r);
	ck_assert_int_eq(strlen(field(j, "certificateId")), 64);
	ck_assert_ptr_nonnull(strstr(field(j, "certificatePem"), "BEGIN CERTIFICATE"));
	json_decref(j);
	reply_free(&r);
	expect_error("POST", "/certificates", "{\"certificateSigningRequest\":\"garbage\"}", 400,
		     "InvalidRequestException");
	free(body);
	json_decref(req);
	free(key);
	free(csr);
}
END_TEST

/* A self-signed certificate from a throwaway CA, as a device maker would register. */
static char *self_signed_pem(void)
{
	char cert_path[400], key_path[400], *pem = NULL;
	pl_errmsg e;

	snprintf(cert_path, sizeof(cert_path), "%s/own.pem", fx.dir);
	snprintf(key_path, sizeof(key_path), "%s/own.key", fx.dir);
	ck_assert_int_eq(sim_certs_create_ca(cert_path, key_path, "own device", 30, &e), PL_OK);
	ck_assert_int_eq(sim_certs_read_file(cert_path, &pem, &e), PL_OK);
	return pem;
}

START_TEST(test_api_register_certificate_without_ca)
{
	char *pem = self_signed_pem();
	json_t *req = json_pack("{s:s,s:s}", "certificatePem", pem, "status", "ACTIVE");
	char *body = json_dumps(req, 0);
	char expected_id[65], cmd[600];
	reply r;
	json_t *j;
	pl_errmsg e;

	ck_assert_int_eq(sim_certs_id_from_pem(pem, expected_id, &e), PL_OK);
	ck_assert_int_eq(call("POST", "/certificate/register-no-ca", body, &r), 200);
	j = body_json(&r);
	ck_assert_str_eq(field(j, "certificateId"), expected_id);
	json_decref(j);
	reply_free(&r);
	expect_error("POST", "/certificate/register-no-ca", body, 409,
		     "ResourceAlreadyExistsException");
	expect_error("POST", "/certificate/register-no-ca", "{\"certificatePem\":\"junk\"}", 400,
		     "CertificateValidationException");
	expect_error("POST", "/certificate/register-no-ca",
		     "{\"certificatePem\":\"junk\",\"status\":\"REVOKED\"}", 400,
		     "InvalidRequestException");
	/* The trust directory now contains the certificate under an OpenSSL hash name. */
	snprintf(cmd, sizeof(cmd), "ls %s | grep -Eq '^[0-9a-f]{8}\\.0$'", fx.trust_dir);
	ck_assert_int_eq(system(cmd), 0);
	free(body);
	json_decref(req);
	free(pem);
}
END_TEST

START_TEST(test_api_update_certificate)
{
	const char *cert = create_cert();
	char path[200];
	drained d;

	snprintf(path, sizeof(path), "/certificates/%s?newStatus=INACTIVE", cert);
	ck_assert_int_eq(call_status("PUT", path, NULL), 200);
	d = drain();
	ck_assert_int_eq(d.count, 1);
	ck_assert_int_eq(d.kind, SIM_BROKER_DISCONNECT_CERT);
	ck_assert_str_eq(d.cert_id, cert);
	snprintf(path, sizeof(path), "/certificates/%s?newStatus=BOGUS", cert);
	expect_error("PUT", path, NULL, 400, "InvalidRequestException");
	snprintf(path, sizeof(path), "/certificates/%s?newStatus=PENDING_TRANSFER", cert);
	expect_error("PUT", path, NULL, 400, "InvalidRequestException");
	snprintf(path, sizeof(path), "/certificates/%s?newStatus=REVOKED", cert);
	ck_assert_int_eq(call_status("PUT", path, NULL), 200);
	snprintf(path, sizeof(path), "/certificates/%s?newStatus=ACTIVE", cert);
	expect_error("PUT", path, NULL, 406, "CertificateStateException");
}
END_TEST

START_TEST(test_api_delete_certificate)
{
	const char *cert = create_cert();
	char path[200], body[256];

	create_policy("p1");
	attach_body(body, sizeof(body), cert);
	ck_assert_int_eq(call_status("PUT", "/target-policies/p1", body), 200);
	snprintf(path, sizeof(path), "/certificates/%s", cert);
	expect_error("DELETE", path, NULL, 406, "CertificateStateException");
	snprintf(path, sizeof(path), "/certificates/%s?newStatus=INACTIVE", cert);
	ck_assert_int_eq(call_status("PUT", path, NULL), 200);
	snprintf(path, sizeof(path), "/certificates/%s", cert);
	expect_error("DELETE", path, NULL, 409, "DeleteConflictException");
	snprintf(path, sizeof(path), "/certificates/%s?forceDelete=true", cert);
	ck_assert_int_eq(call_status("DELETE", path, NULL), 200);
	snprintf(path, sizeof(path), "/certificates/%s", cert);
	expect_error("GET", path, NULL, 404, "ResourceNotFoundException");
	expect_error("GET", "/certificates/abc", NULL, 400, "InvalidRequestException");
}
END_TEST

START_TEST(test_api_describe_endpoint)
{
	reply r;
	json_t *j;

	ck_assert_int_eq(call("GET", "/endpoint?endpointType=iot:Data-ATS", NULL, &r), 200);
	j = body_json(&r);
	ck_assert_str_eq(field(j, "endpointAddress"), "127.0.0.1");
	json_decref(j);
	reply_free(&r);
	expect_error("GET", "/endpoint?endpointType=iot:Nope", NULL, 400,
		     "InvalidRequestException");
}
END_TEST

START_TEST(test_api_things)
{
	const char *cert = create_cert();
	char header[256];
	reply r;
	json_t *j;

	ck_assert_int_eq(call("POST", "/things/dev-1",
			      "{\"attributePayload\":{\"attributes\":{\"room\":\"7\"}}}", &r),
			 200);
	j = body_json(&r);
	ck_assert_str_eq(field(j, "thingArn"), ARN_PREFIX "thing/dev-1");
	ck_assert_int_eq(strlen(field(j, "thingId")), 36);
	json_decref(j);
	reply_free(&r);
	/* Same configuration again succeeds; a different one is a conflict. */
	ck_assert_int_eq(call_status("POST", "/things/dev-1",
				     "{\"attributePayload\":{\"attributes\":{\"room\":\"7\"}}}"),
			 200);
	expect_error("POST", "/things/dev-1", NULL, 409, "ResourceAlreadyExistsException");
	expect_error("POST", "/things/bad%20name", NULL, 400, "InvalidRequestException");
	snprintf(header, sizeof(header), "x-amzn-principal: " ARN_PREFIX "cert/%s", cert);
	ck_assert_int_eq(call_full("PUT", "/things/dev-1/principals", "", 0, "iot", NULL, header,
				   &r),
			 200);
	reply_free(&r);
	ck_assert_int_eq(call("GET", "/things/dev-1/principals", NULL, &r), 200);
	j = body_json(&r);
	ck_assert_ptr_nonnull(strstr(json_string_value(json_array_get(
					     json_object_get(j, "principals"), 0)),
				     cert));
	json_decref(j);
	reply_free(&r);
	ck_assert_int_eq(call("GET", "/things/dev-1", NULL, &r), 200);
	j = body_json(&r);
	ck_assert_str_eq(field(json_object_get(j, "attributes"), "room"), "7");
	ck_assert_str_eq(field(j, "defaultClientId"), "dev-1");
	json_decref(j);
	reply_free(&r);
	expect_error("PUT", "/things/dev-1/principals", "", 400, "InvalidRequestException");
	expect_error("GET", "/things/nope", NULL, 404, "ResourceNotFoundException");
	ck_assert_int_eq(call_status("DELETE", "/things/nope", NULL), 200);
}
END_TEST

START_TEST(test_api_thing_groups)
{
	reply r;
	json_t *j;

	ck_assert_int_eq(call_status("POST", "/things/dev-1", NULL), 200);
	ck_assert_int_eq(call("POST", "/thing-groups/fleet", NULL, &r), 200);
	j = body_json(&r);
	ck_assert_str_eq(field(j, "thingGroupArn"), ARN_PREFIX "thinggroup/fleet");
	json_decref(j);
	reply_free(&r);
	ck_assert_int_eq(call_status("POST", "/thing-groups/fleet", NULL), 200);
	ck_assert_int_eq(call_status("PUT", "/thing-groups/addThingToThingGroup",
				     "{\"thingGroupName\":\"fleet\",\"thingName\":\"dev-1\"}"),
			 200);
	expect_error("PUT", "/thing-groups/addThingToThingGroup",
		     "{\"thingGroupName\":\"nope\",\"thingName\":\"dev-1\"}", 404,
		     "ResourceNotFoundException");
	create_policy("p1");
	ck_assert_int_eq(call_status("PUT", "/target-policies/p1",
				     "{\"target\":\"" ARN_PREFIX "thinggroup/fleet\"}"),
			 200);
	ck_assert_int_eq(call("POST", "/attached-policies/" ARN_PREFIX "thinggroup%2Ffleet", NULL,
			      &r),
			 200);
	j = body_json(&r);
	ck_assert_int_eq(json_array_size(json_object_get(j, "policies")), 1);
	json_decref(j);
	reply_free(&r);
}
END_TEST

START_TEST(test_api_publish)
{
	reply r;
	json_t *j;
	drained d;

	ck_assert_int_eq(call_full("POST", "/topics/hoge%2Fres?qos=1", "hello", 5, "iotdata", NULL,
				   NULL, &r),
			 200);
	j = body_json(&r);
	ck_assert_str_eq(field(j, "message"), "OK");
	json_decref(j);
	reply_free(&r);
	d = drain();
	ck_assert_int_eq(d.count, 1);
	ck_assert_int_eq(d.kind, SIM_BROKER_PUBLISH);
	ck_assert_str_eq(d.topic, "hoge/res");
	ck_assert_str_eq(d.payload, "hello");
	ck_assert_int_eq(d.qos, 1);
	ck_assert_int_eq(call_full("POST", "/topics/a/b", "x", 1, "iotdevicegateway", NULL, NULL,
				   &r),
			 200);
	reply_free(&r);
	ck_assert_str_eq(drain().topic, "a/b");
}
END_TEST

START_TEST(test_api_publish_errors)
{
	reply r;

	ck_assert_int_eq(call_full("POST", "/topics/t?qos=2", "x", 1, "iotdata", NULL, NULL, &r),
			 400);
	ck_assert_str_eq(r.error_type, "InvalidRequestException");
	reply_free(&r);
	ck_assert_int_eq(call_full("POST", "/topics/a%2B", "x", 1, "iotdata", NULL, NULL, &r), 400);
	reply_free(&r);
	/* AWS allows at most 7 slashes in a topic; 8 is one too many. */
	ck_assert_int_eq(call_full("POST", "/topics/1%2F2%2F3%2F4%2F5%2F6%2F7%2F8%2F9", "x", 1,
				   "iotdata", NULL, NULL, &r),
			 400);
	ck_assert_str_eq(r.error_type, "InvalidRequestException");
	reply_free(&r);
	ck_assert_int_eq(call_full("POST", "/topics/1%2F2%2F3%2F4%2F5%2F6%2F7%2F8", "x", 1,
				   "iotdata", NULL, NULL, &r),
			 200);
	reply_free(&r);
	ck_assert_str_eq(drain().topic, "1/2/3/4/5/6/7/8");
	/* Signed for the control plane: the data plane rejects the credential scope. */
	ck_assert_int_eq(call_full("POST", "/topics/t", "x", 1, "iot", NULL, NULL, &r), 403);
	ck_assert_str_eq(r.error_type, "InvalidSignatureException");
	reply_free(&r);
	ck_assert_int_eq(drain().count, 0);
}
END_TEST

START_TEST(test_api_delete_connection)
{
	reply r;
	drained d;

	ck_assert_int_eq(call_full("DELETE", "/connections/dev-1?cleanSession=true", NULL, 0,
				   "iotdata", NULL, NULL, &r),
			 200);
	reply_free(&r);
	d = drain();
	ck_assert_int_eq(d.kind, SIM_BROKER_DISCONNECT_CLIENT);
	ck_assert_str_eq(d.client_id, "dev-1");
	ck_assert_int_eq(call_full("DELETE", "/connections/%24sys", NULL, 0, "iotdata", NULL, NULL,
				   &r),
			 400);
	ck_assert_str_eq(r.error_type, "InvalidRequestException");
	reply_free(&r);
}
END_TEST

START_TEST(test_api_sim_propagation)
{
	drained d;

	ck_assert_int_eq(call_status("PUT", "/_sim/propagation", "{\"propagation\":\"ttl:30s\"}"),
			 200);
	d = drain();
	ck_assert_int_eq(d.kind, SIM_BROKER_SET_PROPAGATION);
	ck_assert_str_eq(d.propagation, "ttl:30s");
	ck_assert_int_eq(call_status("PUT", "/_sim/propagation",
				     "{\"propagation\":\"uniform:360s-480s\"}"),
			 200);
	expect_error("PUT", "/_sim/propagation", "{\"propagation\":\"uniform:9s-1s\"}", 400,
		     "InvalidRequestException");
	expect_error("PUT", "/_sim/propagation", "{\"propagation\":\"sometimes\"}", 400,
		     "InvalidRequestException");
}
END_TEST

START_TEST(test_api_sim_ground_truth)
{
	FILE *f = fopen(fx.truth_path, "w");
	reply r;
	json_t *j;

	ck_assert_ptr_nonnull(f);
	fputs("{\"clientId\":\"a\",\"monoNs\":100}\n{\"clientId\":\"b\",\"monoNs\":200}\n"
	      "{\"clientId\":\"a\",\"monoNs\":300}\n{\"clientId\":\"a\",\"mono",
	      f);
	fclose(f);
	ck_assert_int_eq(call("GET", "/_sim/ground-truth?clientId=a&since_ns=150", NULL, &r), 200);
	j = body_json(&r);
	ck_assert_int_eq(json_array_size(json_object_get(j, "refreshes")), 1);
	json_decref(j);
	reply_free(&r);
	expect_error("GET", "/_sim/ground-truth?since_ns=-1", NULL, 400, "InvalidRequestException");
}
END_TEST

START_TEST(test_api_auth_errors)
{
	reply r;

	ck_assert_int_eq(call_full("GET", "/policies", NULL, 0, NULL, NULL, NULL, &r), 403);
	ck_assert_str_eq(r.error_type, "MissingAuthenticationTokenException");
	reply_free(&r);
	ck_assert_int_eq(call_full("GET", "/policies", NULL, 0, "iot",
				   "wrongwrongwrongwrongwrongwrongwrongwrong", NULL, &r),
			 403);
	ck_assert_str_eq(r.error_type, "InvalidSignatureException");
	reply_free(&r);
	ck_assert_int_eq(call_full("GET", "/policies", NULL, 0, "iot", NULL,
				   "Authorization: AWS4-HMAC-SHA256 Credential=AKIAOTHER/20260101/"
				   "us-east-1/iot/aws4_request, SignedHeaders=host, Signature=00",
				   &r),
			 403);
	reply_free(&r);
	expect_error("GET", "/nothing/here", NULL, 404, "UnknownOperationException");
	expect_error("PUT", "/policies/p1", NULL, 405, "MethodNotAllowedException");
}
END_TEST

START_TEST(test_api_credentials_file_mode)
{
	struct stat st;

	ck_assert_int_eq(stat(fx.creds_path, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	ck_assert_int_eq(strncmp(fx.creds.access_key_id, "AKIA", 4), 0);
}
END_TEST

static Suite *api_suite(void)
{
	Suite *s = suite_create("api");
	TCase *tc = tcase_create("operations");

	tcase_add_checked_fixture(tc, fixture_start, fixture_stop);
	tcase_add_test(tc, test_api_create_policy);
	tcase_add_test(tc, test_api_create_policy_duplicate);
	tcase_add_test(tc, test_api_create_policy_bad_name);
	tcase_add_test(tc, test_api_create_policy_malformed);
	tcase_add_test(tc, test_api_create_policy_too_large);
	tcase_add_test(tc, test_api_get_policy);
	tcase_add_test(tc, test_api_list_policies);
	tcase_add_test(tc, test_api_policy_version_default);
	tcase_add_test(tc, test_api_policy_version_not_default);
	tcase_add_test(tc, test_api_policy_versions_limit);
	tcase_add_test(tc, test_api_delete_policy_version);
	tcase_add_test(tc, test_api_attach_policy);
	tcase_add_test(tc, test_api_attach_policy_errors);
	tcase_add_test(tc, test_api_create_keys_and_certificate);
	tcase_add_test(tc, test_api_certificate_inactive_by_default);
	tcase_add_test(tc, test_api_create_certificate_from_csr);
	tcase_add_test(tc, test_api_register_certificate_without_ca);
	tcase_add_test(tc, test_api_update_certificate);
	tcase_add_test(tc, test_api_delete_certificate);
	tcase_add_test(tc, test_api_describe_endpoint);
	tcase_add_test(tc, test_api_things);
	tcase_add_test(tc, test_api_thing_groups);
	tcase_add_test(tc, test_api_publish);
	tcase_add_test(tc, test_api_publish_errors);
	tcase_add_test(tc, test_api_delete_connection);
	tcase_add_test(tc, test_api_sim_propagation);
	tcase_add_test(tc, test_api_sim_ground_truth);
	tcase_add_test(tc, test_api_auth_errors);
	tcase_add_test(tc, test_api_credentials_file_mode);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(api_suite());
	int failed;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	curl_global_cleanup();
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
