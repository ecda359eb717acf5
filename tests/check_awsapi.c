/*
 * Tests of the AWS IoT API client against the simulator's real control-plane
 * API (simulator/api.h, started in this process on a loopback port with its
 * own state store and CA), plus error parsing and SigV4 signing on their own.
 * A small libmicrohttpd server covers responses the simulator never gives
 * (HTTP 5xx).
 */
#include <check.h>
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "harness/awsapi.h"
#include "harness/awsapi_internal.h"
#include "harness/credentials.h"
#include "simulator/certs.h"
#include "tests/support/sim_api_fixture.h"

static const char *const allow_all =
	"{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\","
	"\"Action\":\"iot:*\",\"Resource\":\"*\"}]}";
static const char *const allow_connect =
	"{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\","
	"\"Action\":\"iot:Connect\",\"Resource\":\"*\"}]}";

/* ---- fixture: the simulator API in this process, and a client for it ---- */

typedef struct sim_fixture {
	sim_api_fixture sim;
	awsapi_ctx *ctx;
	awsapi_client *client;
} sim_fixture;

static void open_client(sim_fixture *f, const awsapi_config *base)
{
	awsapi_config cfg;
	pl_errmsg e = { "" };

	if (base != NULL)
		cfg = *base;
	else
		awsapi_config_init(&cfg);
	cfg.control_endpoint = f->sim.endpoint;
	cfg.data_endpoint = f->sim.endpoint;
	cfg.region = "us-east-1";
	cfg.credentials = &f->sim.creds;
	ck_assert_msg(awsapi_ctx_create(&f->ctx, &cfg, &e) == PL_OK, "%s", e.msg);
	ck_assert_int_eq(awsapi_client_create(&f->client, f->ctx, &e), PL_OK);
}

/* Starts the API with options (key, value pairs, NULL-terminated) and a client with cfg. */
static void fixture_start(sim_fixture *f, const char *const *options, const awsapi_config *cfg)
{
	memset(f, 0, sizeof(*f));
	sim_api_fixture_start(&f->sim, options);
	open_client(f, cfg);
}

static void fixture_stop(sim_fixture *f)
{
	awsapi_client_free(f->client);
	awsapi_ctx_free(f->ctx);
	sim_api_fixture_stop(&f->sim);
}

/* Creates a certificate from a fresh EC key's CSR and returns it in *cert. */
static void create_certificate(sim_fixture *f, int active, awsapi_certificate *cert)
{
	char *key = NULL, *csr = NULL;
	pl_errmsg e = { "" };

	ck_assert_int_eq(sim_certs_create_ec_csr("device-0", &key, &csr, &e), PL_OK);
	ck_assert_msg(awsapi_create_certificate_from_csr(f->client, csr, active, cert, NULL, &e) ==
			      PL_OK,
		      "%s", e.msg);
	free(key);
	free(csr);
}

/* ---- policies ---- */

START_TEST(test_awsapi_policy_create_get)
{
	sim_fixture f;
	awsapi_policy created, got;
	awsapi_call call;
	pl_errmsg e = { "" };

	fixture_start(&f, NULL, NULL);
	ck_assert_msg(awsapi_create_policy(f.client, "p1", allow_all, &created, &call, &e) == PL_OK,
		      "%s", e.msg);
	ck_assert_str_eq(created.version_id, "1");
	ck_assert_str_eq(created.arn, "arn:aws:iot:us-east-1:123456789012:policy/p1");
	ck_assert_int_eq(call.attempts, 1);
	ck_assert_int_eq(call.http_status, 200);
	ck_assert(call.t_sent_ns > 0 && call.t_done_ns >= call.t_sent_ns);
	ck_assert_int_eq(awsapi_get_policy(f.client, "p1", &got, NULL, &e), PL_OK);
	ck_assert_str_eq(got.name, "p1");
	ck_assert_str_eq(got.version_id, "1");
	ck_assert_ptr_nonnull(got.document);
	awsapi_policy_clear(&created);
	awsapi_policy_clear(&got);
	fixture_stop(&f);
}
END_TEST

START_TEST(test_awsapi_policy_not_found)
{
	sim_fixture f;
	awsapi_policy got;
	awsapi_call call;
	pl_errmsg e = { "" };
	pl_err err;

	fixture_start(&f, NULL, NULL);
	err = awsapi_get_policy(f.client, "missing", &got, &call, &e);
	ck_assert_int_eq(err, PL_ERR_NOT_FOUND);
	ck_assert_str_eq(call.error_code, "ResourceNotFoundException");
	ck_assert_int_eq(call.http_status, 404);
	ck_assert_ptr_nonnull(strstr(e.msg, "GetPolicy missing: ResourceNotFoundException"));
	fixture_stop(&f);
}
END_TEST

START_TEST(test_awsapi_policy_exists)
{
	sim_fixture f;
	awsapi_call call;
	pl_errmsg e = { "" };

	fixture_start(&f, NULL, NULL);
	ck_assert_int_eq(awsapi_create_policy(f.client, "p1", allow_all, NULL, NULL, &e), PL_OK);
	ck_assert_int_eq(awsapi_create_policy(f.client, "p1", allow_all, NULL, &call, &e),
			 PL_ERR_EXISTS);
	ck_assert_str_eq(call.error_code, "ResourceAlreadyExistsException");
	ck_assert_int_eq(call.http_status, 409);
	fixture_stop(&f);
}
END_TEST

START_TEST(test_awsapi_policy_versions)
{
	sim_fixture f;
	char version[16];
	awsapi_policy_version *versions = NULL;
	size_t count = 0;
	awsapi_policy got;
	pl_errmsg e = { "" };

	fixture_start(&f, NULL, NULL);
	ck_assert_int_eq(awsapi_create_policy(f.client, "p1", allow_connect, NULL, NULL, &e), PL_OK);
	ck_assert_msg(awsapi_create_policy_version(f.client, "p1", allow_all, 1, version,
						   sizeof(version), NULL, &e) == PL_OK,
		      "%s", e.msg);
	ck_assert_str_eq(version, "2");
	ck_assert_int_eq(awsapi_list_policy_versions(f.client, "p1", &versions, &count, NULL, &e),
			 PL_OK);
	ck_assert_uint_eq(count, 2);
	for (size_t i = 0; i < count; i++)
		ck_assert_int_eq(versions[i].is_default, strcmp(versions[i].version_id, "2") == 0);
	free(versions);
	ck_assert_int_eq(awsapi_set_default_policy_version(f.client, "p1", "1", NULL, &e), PL_OK);
	ck_assert_int_eq(awsapi_get_policy(f.client, "p1", &got, NULL, &e), PL_OK);
	ck_assert_str_eq(got.version_id, "1");
	awsapi_policy_clear(&got);
	ck_assert_int_eq(awsapi_delete_policy_version(f.client, "p1", "2", NULL, &e), PL_OK);
	ck_assert_int_eq(awsapi_list_policy_versions(f.client, "p1", &versions, &count, NULL, &e),
			 PL_OK);
	ck_assert_uint_eq(count, 1);
	free(versions);
	ck_assert_int_eq(awsapi_delete_policy(f.client, "p1", NULL, &e), PL_OK);
	ck_assert_int_eq(awsapi_get_policy(f.client, "p1", &got, NULL, &e), PL_ERR_NOT_FOUND);
	fixture_stop(&f);
}
END_TEST

/* AWS rejects deleting the default version with DeleteConflictException. */
START_TEST(test_awsapi_policy_default_version_delete)
{
	sim_fixture f;
	awsapi_call call;
	pl_errmsg e = { "" };

	fixture_start(&f, NULL, NULL);
	ck_assert_int_eq(awsapi_create_policy(f.client, "p1", allow_connect, NULL, NULL, &e), PL_OK);
	ck_assert_int_eq(awsapi_delete_policy_version(f.client, "p1", "1", &call, &e),
			 PL_ERR_STATE);
	ck_assert_str_eq(call.error_code, "DeleteConflictException");
	fixture_stop(&f);
}
END_TEST

/* ---- certificates and attachments ---- */

START_TEST(test_awsapi_certificate_from_csr)
{
	sim_fixture f;
	awsapi_certificate cert, desc;
	char id[SIM_CERTS_ID_LEN + 1];
	pl_errmsg e = { "" };

	fixture_start(&f, NULL, NULL);
	create_certificate(&f, 1, &cert);
	ck_assert_int_eq(sim_certs_id_from_pem(cert.pem, id, &e), PL_OK);
	ck_assert_str_eq(cert.id, id);
	ck_assert_ptr_null(cert.private_key_pem);
	ck_assert_int_eq(awsapi_describe_certificate(f.client, cert.id, &desc, NULL, &e), PL_OK);
	ck_assert_str_eq(desc.status, "ACTIVE");
	ck_assert_str_eq(desc.arn, cert.arn);
	awsapi_certificate_clear(&desc);
	awsapi_certificate_clear(&cert);
	fixture_stop(&f);
}
END_TEST

START_TEST(test_awsapi_keys_and_certificate)
{
	sim_fixture f;
	awsapi_certificate cert;
	pl_errmsg e = { "" };

	fixture_start(&f, NULL, NULL);
	ck_assert_msg(awsapi_create_keys_and_certificate(f.client, 0, &cert, NULL, &e) == PL_OK,
		      "%s", e.msg);
	ck_assert_uint_eq(strlen(cert.id), 64);
	ck_assert_ptr_nonnull(cert.private_key_pem);
	ck_assert_ptr_nonnull(strstr(cert.private_key_pem, "PRIVATE KEY"));
	awsapi_certificate_clear(&cert);
	fixture_stop(&f);
}
END_TEST

/* ListAttachedPolicies puts an ARN (':' and '/') in the path, which must be signed as AWS does. */
START_TEST(test_awsapi_attach_list_detach)
{
	sim_fixture f;
	awsapi_certificate cert;
	awsapi_strlist list;
	pl_errmsg e = { "" };

	fixture_start(&f, NULL, NULL);
	create_certificate(&f, 1, &cert);
	ck_assert_int_eq(awsapi_create_policy(f.client, "p1", allow_all, NULL, NULL, &e), PL_OK);
	ck_assert_msg(awsapi_attach_policy(f.client, "p1", cert.arn, NULL, &e) == PL_OK, "%s", e.msg);
	ck_assert_msg(awsapi_list_attached_policies(f.client, cert.arn, &list, NULL, &e) == PL_OK,
		      "%s", e.msg);
	ck_assert_uint_eq(list.count, 1);
	ck_assert_str_eq(list.items[0], "p1");
	awsapi_strlist_clear(&list);
	ck_assert_int_eq(awsapi_list_targets_for_policy(f.client, "p1", &list, NULL, &e), PL_OK);
	ck_assert_uint_eq(list.count, 1);
	ck_assert_str_eq(list.items[0], cert.arn);
	awsapi_strlist_clear(&list);
	ck_assert_int_eq(awsapi_detach_policy(f.client, "p1", cert.arn, NULL, &e), PL_OK);
	ck_assert_int_eq(awsapi_list_attached_policies(f.client, cert.arn, &list, NULL, &e), PL_OK);
	ck_assert_uint_eq(list.count, 0);
	awsapi_certificate_clear(&cert);
	fixture_stop(&f);
}
END_TEST

/* AWS deletes only certificates that are not ACTIVE (CertificateStateException otherwise). */
START_TEST(test_awsapi_certificate_delete_rules)
{
	sim_fixture f;
	awsapi_certificate cert, desc;
	awsapi_call call;
	pl_errmsg e = { "" };

	fixture_start(&f, NULL, NULL);
	create_certificate(&f, 1, &cert);
	ck_assert_int_eq(awsapi_delete_certificate(f.client, cert.id, 0, &call, &e), PL_ERR_STATE);
	ck_assert_str_eq(call.error_code, "CertificateStateException");
	ck_assert_int_eq(awsapi_update_certificate(f.client, cert.id, "INACTIVE", NULL, &e), PL_OK);
	ck_assert_int_eq(awsapi_describe_certificate(f.client, cert.id, &desc, NULL, &e), PL_OK);
	ck_assert_str_eq(desc.status, "INACTIVE");
	awsapi_certificate_clear(&desc);
	ck_assert_msg(awsapi_delete_certificate(f.client, cert.id, 0, NULL, &e) == PL_OK, "%s",
		      e.msg);
	ck_assert_int_eq(awsapi_describe_certificate(f.client, cert.id, &desc, NULL, &e),
			 PL_ERR_NOT_FOUND);
	awsapi_certificate_clear(&cert);
	fixture_stop(&f);
}
END_TEST

START_TEST(test_awsapi_describe_endpoint)
{
	sim_fixture f;
	char address[256];
	pl_errmsg e = { "" };

	fixture_start(&f, NULL, NULL);
	ck_assert_msg(awsapi_describe_endpoint(f.client, NULL, address, sizeof(address), NULL, &e) ==
			      PL_OK,
		      "%s", e.msg);
	ck_assert_str_eq(address, "127.0.0.1");
	fixture_stop(&f);
}
END_TEST

/* The topic travels as one encoded path segment ("a/b" -> "a%2Fb"), signed for iotdata. */
START_TEST(test_awsapi_publish)
{
	sim_fixture f;
	awsapi_call call;
	pl_errmsg e = { "" };

	fixture_start(&f, NULL, NULL);
	ck_assert_msg(awsapi_publish(f.client, "swap/trigger/1", "{}", 2, 1, 0, &call, &e) == PL_OK,
		      "%s", e.msg);
	ck_assert_int_eq(call.http_status, 200);
	ck_assert_int_eq(awsapi_publish(f.client, "t", "x", 1, 2, 0, NULL, &e), PL_ERR_INVALID);
	fixture_stop(&f);
}
END_TEST

/* DeleteConnection is a data-plane DELETE; AWS rejects client ids that start with '$'. */
START_TEST(test_awsapi_delete_connection)
{
	sim_fixture f;
	awsapi_call call;
	pl_errmsg e = { "" };

	fixture_start(&f, NULL, NULL);
	ck_assert_msg(awsapi_delete_connection(f.client, "device/1", 1, 1, &call, &e) == PL_OK, "%s",
		      e.msg);
	ck_assert_int_eq(call.http_status, 200);
	ck_assert_int_eq(awsapi_delete_connection(f.client, "$aws", 0, 0, NULL, &e), PL_ERR_INVALID);
	fixture_stop(&f);
}
END_TEST

START_TEST(test_awsapi_bad_signature)
{
	sim_fixture f;
	awsapi_call call;
	pl_errmsg e = { "" };

	fixture_start(&f, NULL, NULL);
	awsapi_client_free(f.client);
	awsapi_ctx_free(f.ctx);
	snprintf(f.sim.creds.secret_access_key, sizeof(f.sim.creds.secret_access_key),
		 "wrong-secret");
	open_client(&f, NULL);
	ck_assert_int_eq(awsapi_get_policy(f.client, "p1", NULL, &call, &e), PL_ERR_DENIED);
	ck_assert_int_eq(call.http_status, 403);
	ck_assert_ptr_null(strstr(e.msg, "wrong-secret"));
	fixture_stop(&f);
}
END_TEST

/* A session token travels in X-Amz-Security-Token, which both signers include in the signature. */
START_TEST(test_awsapi_session_token)
{
	sim_fixture f;
	awsapi_certificate cert;
	awsapi_strlist list;
	awsapi_call call;
	pl_errmsg e = { "" };

	fixture_start(&f, NULL, NULL);
	awsapi_client_free(f.client);
	awsapi_ctx_free(f.ctx);
	snprintf(f.sim.creds.session_token, sizeof(f.sim.creds.session_token), "session-token");
	open_client(&f, NULL);
	ck_assert_int_eq(awsapi_get_policy(f.client, "p1", NULL, &call, &e), PL_ERR_NOT_FOUND);
	ck_assert_int_eq(call.http_status, 404);
	create_certificate(&f, 1, &cert);
	ck_assert_int_eq(awsapi_create_policy(f.client, "p1", allow_all, NULL, NULL, &e), PL_OK);
	ck_assert_int_eq(awsapi_attach_policy(f.client, "p1", cert.arn, NULL, &e), PL_OK);
	ck_assert_msg(awsapi_list_attached_policies(f.client, cert.arn, &list, &call, &e) == PL_OK,
		      "%s", e.msg);
	ck_assert_uint_eq(list.count, 1);
	awsapi_strlist_clear(&list);
	awsapi_certificate_clear(&cert);
	fixture_stop(&f);
}
END_TEST

/* ---- throttling, retries and counters ---- */

static const char *const throttle_get_policy[] = {
	"api_throttle_GetPolicy", "1/1", NULL, NULL,
};

static void fast_retry_config(awsapi_config *cfg, int attempts)
{
	awsapi_config_init(cfg);
	cfg->tps[AWSAPI_GET_POLICY] = -1; /* no client-side limit: let the server throttle */
	cfg->max_attempts = attempts;
	cfg->backoff_base_ns = 200 * PL_NS_PER_MS;
	cfg->backoff_max_ns = 1500 * PL_NS_PER_MS;
}

START_TEST(test_awsapi_throttle_retried)
{
	sim_fixture f;
	awsapi_config cfg;
	awsapi_op_stats stats;
	awsapi_call call;
	int throttled = 0;
	pl_errmsg e = { "" };

	fast_retry_config(&cfg, 20);
	fixture_start(&f, throttle_get_policy, &cfg);
	ck_assert_int_eq(awsapi_create_policy(f.client, "p1", allow_all, NULL, NULL, &e), PL_OK);
	for (int i = 0; i < 3; i++) {
		ck_assert_msg(awsapi_get_policy(f.client, "p1", NULL, &call, &e) == PL_OK, "%s", e.msg);
		throttled += call.throttled;
	}
	awsapi_ctx_stats(f.ctx, AWSAPI_GET_POLICY, &stats);
	ck_assert_uint_eq(stats.calls, 3);
	ck_assert_uint_eq(stats.succeeded, 3);
	ck_assert_uint_eq(stats.failed, 0);
	ck_assert_uint_ge(stats.throttled, 1);
	ck_assert_uint_eq(stats.throttled, (uint64_t)throttled);
	ck_assert_uint_eq(stats.retries, stats.throttled);
	ck_assert_uint_eq(stats.attempts, 3 + stats.retries);
	ck_assert_uint_eq(awsapi_ctx_throttled_control(f.ctx), stats.throttled);
	fixture_stop(&f);
}
END_TEST

START_TEST(test_awsapi_throttle_exhausted)
{
	sim_fixture f;
	awsapi_config cfg;
	awsapi_call call;
	pl_errmsg e = { "" };

	fast_retry_config(&cfg, 1);
	fixture_start(&f, throttle_get_policy, &cfg);
	ck_assert_int_eq(awsapi_create_policy(f.client, "p1", allow_all, NULL, NULL, &e), PL_OK);
	ck_assert_int_eq(awsapi_get_policy(f.client, "p1", NULL, NULL, &e), PL_OK);
	ck_assert_int_eq(awsapi_get_policy(f.client, "p1", NULL, &call, &e), PL_ERR_THROTTLED);
	ck_assert_str_eq(call.error_code, "ThrottlingException");
	ck_assert_int_eq(call.http_status, 400);
	ck_assert_int_eq(call.attempts, 1);
	fixture_stop(&f);
}
END_TEST

START_TEST(test_awsapi_throttle_429)
{
	static const char *const options[] = {
		"api_throttle_GetPolicy", "1/1", "api_throttle_status", "429", NULL, NULL,
	};
	sim_fixture f;
	awsapi_config cfg;
	awsapi_call call;
	pl_errmsg e = { "" };

	fast_retry_config(&cfg, 1);
	fixture_start(&f, options, &cfg);
	ck_assert_int_eq(awsapi_create_policy(f.client, "p1", allow_all, NULL, NULL, &e), PL_OK);
	ck_assert_int_eq(awsapi_get_policy(f.client, "p1", NULL, NULL, &e), PL_OK);
	ck_assert_int_eq(awsapi_get_policy(f.client, "p1", NULL, &call, &e), PL_ERR_THROTTLED);
	ck_assert_int_eq(call.http_status, 429);
	fixture_stop(&f);
}
END_TEST

/*
 * A client limiter at half the server's rate keeps every call under the
 * quota. The server's burst of 2 absorbs scheduling delays on a busy
 * machine, while five unpaced calls would still exceed it.
 */
START_TEST(test_awsapi_limiter_avoids_throttling)
{
	static const char *const options[] = { "api_throttle_GetPolicy", "4/2", NULL, NULL };
	sim_fixture f;
	awsapi_config cfg;
	awsapi_op_stats stats;
	pl_errmsg e = { "" };

	fast_retry_config(&cfg, 1);
	cfg.tps[AWSAPI_GET_POLICY] = 2;
	fixture_start(&f, options, &cfg);
	ck_assert_int_eq(awsapi_create_policy(f.client, "p1", allow_all, NULL, NULL, &e), PL_OK);
	for (int i = 0; i < 5; i++)
		ck_assert_msg(awsapi_get_policy(f.client, "p1", NULL, NULL, &e) == PL_OK, "%s", e.msg);
	awsapi_ctx_stats(f.ctx, AWSAPI_GET_POLICY, &stats);
	ck_assert_uint_eq(stats.throttled, 0);
	ck_assert_int_gt(stats.limiter_wait_ns, 0);
	fixture_stop(&f);
}
END_TEST

/* ---- pool ---- */

typedef struct pool_tally {
	pthread_mutex_t lock;
	int ok;
	int interrupted;
	int other;
	int timed; /* results with t_done >= t_sent > 0 */
} pool_tally;

static void tally_done(void *arg, const awsapi_request *req, const awsapi_result *res)
{
	pool_tally *t = arg;

	(void)req;
	pthread_mutex_lock(&t->lock);
	if (res->err == PL_OK)
		t->ok++;
	else if (res->err == PL_ERR_INTERRUPTED)
		t->interrupted++;
	else
		t->other++;
	t->timed += res->call.t_sent_ns > 0 && res->call.t_done_ns >= res->call.t_sent_ns;
	pthread_mutex_unlock(&t->lock);
}

START_TEST(test_awsapi_pool_attach)
{
	enum { N = 12 };
	sim_fixture f;
	awsapi_config cfg;
	awsapi_certificate certs[N];
	awsapi_pool *pool = NULL;
	pool_tally tally = { PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, 0 };
	awsapi_strlist list;
	pl_errmsg e = { "" };

	awsapi_config_init(&cfg);
	cfg.tps_scale = 10; /* the simulator's throttling is off here */
	fixture_start(&f, (const char *const[]){ "api_throttle", "off", NULL, NULL }, &cfg);
	ck_assert_int_eq(awsapi_create_policy(f.client, "p1", allow_all, NULL, NULL, &e), PL_OK);
	for (int i = 0; i < N; i++)
		create_certificate(&f, 1, &certs[i]);
	ck_assert_int_eq(awsapi_pool_create(&pool, f.ctx, 4, 4, &e), PL_OK);
	for (int i = 0; i < N; i++) {
		awsapi_request req = { .op = AWSAPI_ATTACH_POLICY, .policy_name = "p1",
				       .target = certs[i].arn };

		ck_assert_int_eq(awsapi_pool_submit(pool, &req, tally_done, &tally, &e), PL_OK);
	}
	awsapi_pool_wait(pool);
	ck_assert_int_eq(tally.ok, N);
	ck_assert_int_eq(tally.timed, N);
	awsapi_pool_free(pool);
	ck_assert_int_eq(awsapi_list_targets_for_policy(f.client, "p1", &list, NULL, &e), PL_OK);
	ck_assert_uint_eq(list.count, N);
	awsapi_strlist_clear(&list);
	for (int i = 0; i < N; i++)
		awsapi_certificate_clear(&certs[i]);
	fixture_stop(&f);
}
END_TEST

START_TEST(test_awsapi_pool_rejects_list_ops)
{
	sim_fixture f;
	awsapi_pool *pool = NULL;
	awsapi_request req = { .op = AWSAPI_LIST_TARGETS_FOR_POLICY, .policy_name = "p1" };
	pl_errmsg e = { "" };

	fixture_start(&f, NULL, NULL);
	ck_assert_int_eq(awsapi_pool_create(&pool, f.ctx, 1, 1, &e), PL_OK);
	ck_assert_int_eq(awsapi_pool_submit(pool, &req, NULL, NULL, &e), PL_ERR_INVALID);
	awsapi_pool_free(pool);
	fixture_stop(&f);
}
END_TEST

typedef struct gate {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int entered;
	int open;
} gate;

static void wait_at_gate(awsapi_client *client, void *arg)
{
	gate *g = arg;

	(void)client;
	pthread_mutex_lock(&g->lock);
	g->entered = 1;
	pthread_cond_broadcast(&g->cond);
	while (!g->open)
		pthread_cond_wait(&g->cond, &g->lock);
	pthread_mutex_unlock(&g->lock);
}

/* Requests still queued at cancel complete with PL_ERR_INTERRUPTED, unsent. */
START_TEST(test_awsapi_pool_cancel)
{
	sim_fixture f;
	awsapi_pool *pool = NULL;
	gate g = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0 };
	pool_tally tally = { PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, 0 };
	awsapi_request req = { .op = AWSAPI_DELETE_POLICY, .policy_name = "p1" };
	awsapi_op_stats stats;
	pl_errmsg e = { "" };

	fixture_start(&f, NULL, NULL);
	ck_assert_int_eq(awsapi_pool_create(&pool, f.ctx, 1, 8, &e), PL_OK);
	ck_assert_int_eq(awsapi_pool_submit_fn(pool, wait_at_gate, &g, &e), PL_OK);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(awsapi_pool_submit(pool, &req, tally_done, &tally, &e), PL_OK);
	pthread_mutex_lock(&g.lock);
	while (!g.entered)
		pthread_cond_wait(&g.cond, &g.lock);
	pthread_mutex_unlock(&g.lock);
	awsapi_pool_cancel(pool);
	ck_assert_int_eq(awsapi_pool_submit(pool, &req, tally_done, &tally, &e), PL_ERR_INTERRUPTED);
	pthread_mutex_lock(&g.lock);
	g.open = 1;
	pthread_cond_broadcast(&g.cond);
	pthread_mutex_unlock(&g.lock);
	awsapi_pool_free(pool);
	ck_assert_int_eq(tally.interrupted, 3);
	awsapi_ctx_stats(f.ctx, AWSAPI_DELETE_POLICY, &stats);
	ck_assert_uint_eq(stats.attempts, 0);
	fixture_stop(&f);
}
END_TEST

START_TEST(test_awsapi_ctx_cancel)
{
	sim_fixture f;
	awsapi_call call;
	pl_errmsg e = { "" };

	fixture_start(&f, NULL, NULL);
	awsapi_ctx_cancel(f.ctx);
	ck_assert_int_eq(awsapi_get_policy(f.client, "p1", NULL, &call, &e), PL_ERR_INTERRUPTED);
	ck_assert_int_eq(call.attempts, 0);
	fixture_stop(&f);
}
END_TEST

/* ---- responses the simulator never gives: a scripted libmicrohttpd server ---- */

typedef struct script_server {
	struct MHD_Daemon *daemon;
	int failures_left; /* response 503 this many times, then 200 */
	int requests;
} script_server;

static enum MHD_Result answer_script(void *cls, struct MHD_Connection *conn, const char *url,
				     const char *method, const char *version, const char *data,
				     size_t *size, void **state)
{
	static int marker;
	script_server *s = cls;
	struct MHD_Response *res;
	enum MHD_Result ret;
	unsigned status = 200;
	const char *body = "{\"policyName\":\"p\",\"policyArn\":\"a\",\"defaultVersionId\":\"1\"}";

	(void)url, (void)method, (void)version, (void)data;
	if (*state == NULL) {
		*state = &marker;
		return MHD_YES;
	}
	*size = 0;
	s->requests++;
	if (s->failures_left > 0) {
		s->failures_left--;
		status = 503;
		body = "{\"message\":\"try later\"}";
	}
	res = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
	if (status == 503)
		MHD_add_response_header(res, "x-amzn-ErrorType",
					"ServiceUnavailableException:http://internal.amazon.com/");
	ret = MHD_queue_response(conn, status, res);
	MHD_destroy_response(res);
	return ret;
}

START_TEST(test_awsapi_server_error_retried)
{
	script_server s = { NULL, 2, 0 };
	aws_credentials creds = { "AKIDEXAMPLE", "secret", "", "", "" };
	awsapi_config cfg;
	awsapi_ctx *ctx = NULL;
	awsapi_client *client = NULL;
	awsapi_op_stats stats;
	awsapi_call call;
	char endpoint[64];
	pl_errmsg e = { "" };

	s.daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, answer_script,
				    &s, MHD_OPTION_SOCK_ADDR,
				    (struct sockaddr *)&(struct sockaddr_in){
					    .sin_family = AF_INET,
					    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) },
				    MHD_OPTION_END);
	ck_assert_ptr_nonnull(s.daemon);
	snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%u",
		 MHD_get_daemon_info(s.daemon, MHD_DAEMON_INFO_BIND_PORT)->port);
	awsapi_config_init(&cfg);
	cfg.control_endpoint = endpoint;
	cfg.region = "us-east-1";
	cfg.credentials = &creds;
	cfg.backoff_base_ns = 10 * PL_NS_PER_MS;
	ck_assert_int_eq(awsapi_ctx_create(&ctx, &cfg, &e), PL_OK);
	ck_assert_int_eq(awsapi_client_create(&client, ctx, &e), PL_OK);
	ck_assert_msg(awsapi_get_policy(client, "p", NULL, &call, &e) == PL_OK, "%s", e.msg);
	ck_assert_int_eq(call.attempts, 3);
	ck_assert_int_eq(call.throttled, 0);
	ck_assert_int_eq(s.requests, 3);
	awsapi_ctx_stats(ctx, AWSAPI_GET_POLICY, &stats);
	ck_assert_uint_eq(stats.server_errors, 2);
	ck_assert_uint_eq(stats.retries, 2);
	awsapi_client_free(client);
	awsapi_ctx_free(ctx);
	MHD_stop_daemon(s.daemon);
}
END_TEST

/* ---- the wire format of every operation: a recording libmicrohttpd server ---- */

#define CERT_ID "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"
#define CERT_ARN "arn:aws:iot:us-east-1:123456789012:cert/" CERT_ID

/* One response that contains every member any operation reads. */
static const char wire_response[] =
	"{\"policyName\":\"p1\",\"policyArn\":\"arn:p1\",\"policyVersionId\":\"1\","
	"\"defaultVersionId\":\"1\",\"policyDocument\":\"{}\","
	"\"certificateId\":\"" CERT_ID "\",\"certificateArn\":\"" CERT_ARN "\","
	"\"certificatePem\":\"PEM\",\"keyPair\":{\"PrivateKey\":\"KEY\"},"
	"\"certificateDescription\":{\"certificateId\":\"" CERT_ID "\",\"certificateArn\":\""
	CERT_ARN "\",\"certificatePem\":\"PEM\",\"status\":\"ACTIVE\"},"
	"\"endpointAddress\":\"abc-ats.iot.us-east-1.amazonaws.com\","
	"\"policyVersions\":[],\"policies\":[],\"targets\":[]}";

/* The last request the server received, as sent: nothing is decoded. */
typedef struct wire_server {
	struct MHD_Daemon *daemon;
	pthread_mutex_t lock;
	int requests;
	char method[16];
	char path[512];
	char query[512];
	char body[512];
} wire_server;

typedef struct wire_upload {
	char body[512];
	size_t len;
} wire_upload;

/* Keeps URLs and arguments percent-encoded, so that the test compares the wire format. */
static size_t keep_escaped(void *cls, struct MHD_Connection *conn, char *uri)
{
	(void)cls, (void)conn;
	return strlen(uri);
}

static enum MHD_Result append_argument(void *cls, enum MHD_ValueKind kind, const char *key,
				       const char *value)
{
	char *query = cls;
	size_t used = strlen(query);

	(void)kind;
	snprintf(query + used, 512 - used, "%s%s=%s", used ? "&" : "", key, value ? value : "");
	return MHD_YES;
}

static enum MHD_Result answer_wire(void *cls, struct MHD_Connection *conn, const char *url,
				   const char *method, const char *version, const char *data,
				   size_t *size, void **state)
{
	wire_server *s = cls;
	wire_upload *up = *state;
	struct MHD_Response *res;
	enum MHD_Result ret;

	(void)version;
	if (up == NULL) {
		*state = calloc(1, sizeof(wire_upload));
		return *state != NULL ? MHD_YES : MHD_NO;
	}
	if (*size > 0) {
		size_t n = *size < sizeof(up->body) - 1 - up->len ? *size : sizeof(up->body) - 1 - up->len;

		memcpy(up->body + up->len, data, n);
		up->len += n;
		*size = 0;
		return MHD_YES;
	}
	pthread_mutex_lock(&s->lock);
	s->requests++;
	snprintf(s->method, sizeof(s->method), "%s", method);
	snprintf(s->path, sizeof(s->path), "%s", url);
	s->query[0] = '\0';
	MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, append_argument, s->query);
	snprintf(s->body, sizeof(s->body), "%.*s", (int)up->len, up->body);
	pthread_mutex_unlock(&s->lock);
	res = MHD_create_response_from_buffer(strlen(wire_response), (void *)wire_response,
					      MHD_RESPMEM_PERSISTENT);
	ret = MHD_queue_response(conn, 200, res);
	MHD_destroy_response(res);
	return ret;
}

static void free_upload(void *cls, struct MHD_Connection *conn, void **state,
			enum MHD_RequestTerminationCode code)
{
	(void)cls, (void)conn, (void)code;
	free(*state);
	*state = NULL;
}

typedef struct wire_fixture {
	wire_server server;
	awsapi_ctx *ctx;
	awsapi_client *client;
} wire_fixture;

static void wire_start(wire_fixture *f)
{
	static const aws_credentials creds = { "AKIDEXAMPLE", "secret", "", "", "" };
	awsapi_config cfg;
	char endpoint[64];
	pl_errmsg e = { "" };

	memset(f, 0, sizeof(*f));
	pthread_mutex_init(&f->server.lock, NULL);
	f->server.daemon = MHD_start_daemon(
		MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, answer_wire, &f->server,
		MHD_OPTION_SOCK_ADDR,
		(struct sockaddr *)&(struct sockaddr_in){ .sin_family = AF_INET,
							  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) },
		MHD_OPTION_UNESCAPE_CALLBACK, keep_escaped, NULL, MHD_OPTION_NOTIFY_COMPLETED,
		free_upload, NULL, MHD_OPTION_END);
	ck_assert_ptr_nonnull(f->server.daemon);
	snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%u",
		 MHD_get_daemon_info(f->server.daemon, MHD_DAEMON_INFO_BIND_PORT)->port);
	awsapi_config_init(&cfg);
	cfg.control_endpoint = endpoint;
	cfg.data_endpoint = endpoint;
	cfg.region = "us-east-1";
	cfg.credentials = &creds;
	for (int op = 0; op < AWSAPI_OP__COUNT; op++)
		cfg.tps[op] = -1;
	ck_assert_int_eq(awsapi_ctx_create(&f->ctx, &cfg, &e), PL_OK);
	ck_assert_int_eq(awsapi_client_create(&f->client, f->ctx, &e), PL_OK);
}

static void wire_stop(wire_fixture *f)
{
	awsapi_client_free(f->client);
	awsapi_ctx_free(f->ctx);
	MHD_stop_daemon(f->server.daemon);
	pthread_mutex_destroy(&f->server.lock);
}

/* Calls op through its public function with fixed arguments. */
static pl_err call_op(awsapi_client *c, awsapi_op op, pl_errmsg *e)
{
	const char *target = CERT_ARN;
	awsapi_policy policy = { .document = NULL };
	awsapi_certificate cert = { .pem = NULL };
	awsapi_policy_version *versions = NULL;
	awsapi_strlist list = { NULL, 0 };
	char text[128];
	size_t count = 0;
	pl_err err;

	switch (op) {
	case AWSAPI_CREATE_POLICY:
		err = awsapi_create_policy(c, "p1", "{}", &policy, NULL, e);
		break;
	case AWSAPI_GET_POLICY:
		err = awsapi_get_policy(c, "p1", &policy, NULL, e);
		break;
	case AWSAPI_DELETE_POLICY:
		err = awsapi_delete_policy(c, "p1", NULL, e);
		break;
	case AWSAPI_CREATE_POLICY_VERSION:
		err = awsapi_create_policy_version(c, "p1", "{}", 1, text, sizeof(text), NULL, e);
		break;
	case AWSAPI_SET_DEFAULT_POLICY_VERSION:
		err = awsapi_set_default_policy_version(c, "p1", "2", NULL, e);
		break;
	case AWSAPI_LIST_POLICY_VERSIONS:
		err = awsapi_list_policy_versions(c, "p1", &versions, &count, NULL, e);
		break;
	case AWSAPI_DELETE_POLICY_VERSION:
		err = awsapi_delete_policy_version(c, "p1", "2", NULL, e);
		break;
	case AWSAPI_ATTACH_POLICY:
		err = awsapi_attach_policy(c, "p1", target, NULL, e);
		break;
	case AWSAPI_DETACH_POLICY:
		err = awsapi_detach_policy(c, "p1", target, NULL, e);
		break;
	case AWSAPI_LIST_ATTACHED_POLICIES:
		err = awsapi_list_attached_policies(c, target, &list, NULL, e);
		break;
	case AWSAPI_LIST_TARGETS_FOR_POLICY:
		err = awsapi_list_targets_for_policy(c, "p1", &list, NULL, e);
		break;
	case AWSAPI_CREATE_CERTIFICATE_FROM_CSR:
		err = awsapi_create_certificate_from_csr(c, "CSR", 1, &cert, NULL, e);
		break;
	case AWSAPI_CREATE_KEYS_AND_CERTIFICATE:
		err = awsapi_create_keys_and_certificate(c, 0, &cert, NULL, e);
		break;
	case AWSAPI_DESCRIBE_CERTIFICATE:
		err = awsapi_describe_certificate(c, CERT_ID, &cert, NULL, e);
		break;
	case AWSAPI_UPDATE_CERTIFICATE:
		err = awsapi_update_certificate(c, CERT_ID, "INACTIVE", NULL, e);
		break;
	case AWSAPI_DELETE_CERTIFICATE:
		err = awsapi_delete_certificate(c, CERT_ID, 1, NULL, e);
		break;
	case AWSAPI_DESCRIBE_ENDPOINT:
		err = awsapi_describe_endpoint(c, NULL, text, sizeof(text), NULL, e);
		break;
	case AWSAPI_PUBLISH:
		err = awsapi_publish(c, "a/b", "hello", 5, 1, 0, NULL, e);
		break;
	case AWSAPI_DELETE_CONNECTION:
		err = awsapi_delete_connection(c, "device-1", 1, 0, NULL, e);
		break;
	default:
		err = PL_ERR_INTERNAL;
		break;
	}
	awsapi_policy_clear(&policy);
	awsapi_certificate_clear(&cert);
	awsapi_strlist_clear(&list);
	free(versions);
	return err;
}

/* Each operation as AWS IoT's REST API defines it (the botocore "iot" and "iot-data" models). */
static const struct {
	awsapi_op op;
	const char *method, *path, *query, *body;
} wire_cases[] = {
	{ AWSAPI_CREATE_POLICY, "POST", "/policies/p1", "", "{\"policyDocument\":\"{}\"}" },
	{ AWSAPI_GET_POLICY, "GET", "/policies/p1", "", "" },
	{ AWSAPI_DELETE_POLICY, "DELETE", "/policies/p1", "", "" },
	{ AWSAPI_CREATE_POLICY_VERSION, "POST", "/policies/p1/version", "setAsDefault=true",
	  "{\"policyDocument\":\"{}\"}" },
	{ AWSAPI_SET_DEFAULT_POLICY_VERSION, "PATCH", "/policies/p1/version/2", "", "" },
	{ AWSAPI_LIST_POLICY_VERSIONS, "GET", "/policies/p1/version", "", "" },
	{ AWSAPI_DELETE_POLICY_VERSION, "DELETE", "/policies/p1/version/2", "", "" },
	{ AWSAPI_ATTACH_POLICY, "PUT", "/target-policies/p1", "",
	  "{\"target\":\"" CERT_ARN "\"}" },
	{ AWSAPI_DETACH_POLICY, "POST", "/target-policies/p1", "",
	  "{\"target\":\"" CERT_ARN "\"}" },
	{ AWSAPI_LIST_ATTACHED_POLICIES, "POST",
	  "/attached-policies/arn%3Aaws%3Aiot%3Aus-east-1%3A123456789012%3Acert%2F" CERT_ID,
	  "pageSize=250&recursive=false", "" },
	{ AWSAPI_LIST_TARGETS_FOR_POLICY, "POST", "/policy-targets/p1", "pageSize=250", "" },
	{ AWSAPI_CREATE_CERTIFICATE_FROM_CSR, "POST", "/certificates", "setAsActive=true",
	  "{\"certificateSigningRequest\":\"CSR\"}" },
	{ AWSAPI_CREATE_KEYS_AND_CERTIFICATE, "POST", "/keys-and-certificate",
	  "setAsActive=false", "" },
	{ AWSAPI_DESCRIBE_CERTIFICATE, "GET", "/certificates/" CERT_ID, "", "" },
	{ AWSAPI_UPDATE_CERTIFICATE, "PUT", "/certificates/" CERT_ID, "newStatus=INACTIVE", "" },
	{ AWSAPI_DELETE_CERTIFICATE, "DELETE", "/certificates/" CERT_ID, "forceDelete=true", "" },
	{ AWSAPI_DESCRIBE_ENDPOINT, "GET", "/endpoint", "endpointType=iot%3AData-ATS", "" },
	{ AWSAPI_PUBLISH, "POST", "/topics/a%2Fb", "qos=1&retain=false", "hello" },
	{ AWSAPI_DELETE_CONNECTION, "DELETE", "/connections/device-1",
	  "cleanSession=true&preventWillMessage=false", "" },
};

START_TEST(test_awsapi_wire_format)
{
	wire_fixture f;
	pl_errmsg e = { "" };

	ck_assert_uint_eq(sizeof(wire_cases) / sizeof(wire_cases[0]), AWSAPI_OP__COUNT);
	wire_start(&f);
	for (size_t i = 0; i < sizeof(wire_cases) / sizeof(wire_cases[0]); i++) {
		const char *name = awsapi_op_name(wire_cases[i].op);

		ck_assert_msg(call_op(f.client, wire_cases[i].op, &e) == PL_OK, "%s: %s", name,
			      e.msg);
		ck_assert_int_eq(f.server.requests, (int)i + 1);
		ck_assert_msg(strcmp(f.server.method, wire_cases[i].method) == 0, "%s: method %s",
			      name, f.server.method);
		ck_assert_msg(strcmp(f.server.path, wire_cases[i].path) == 0, "%s: path %s", name,
			      f.server.path);
		ck_assert_msg(strcmp(f.server.query, wire_cases[i].query) == 0, "%s: query %s",
			      name, f.server.query);
		ck_assert_msg(strcmp(f.server.body, wire_cases[i].body) == 0, "%s: body %s", name,
			      f.server.body);
	}
	wire_stop(&f);
}
END_TEST

/* Missing or invalid arguments are rejected before anything is sent. */
START_TEST(test_awsapi_arguments_checked)
{
	wire_fixture f;
	pl_errmsg e = { "" };

	wire_start(&f);
	ck_assert_int_eq(awsapi_create_policy(f.client, "", "{}", NULL, NULL, &e), PL_ERR_INVALID);
	ck_assert_str_eq(e.msg, "CreatePolicy: policy name missing");
	ck_assert_int_eq(awsapi_create_policy(f.client, "p1", NULL, NULL, NULL, &e),
			 PL_ERR_INVALID);
	ck_assert_str_eq(e.msg, "CreatePolicy: policy document missing");
	ck_assert_int_eq(awsapi_delete_policy_version(f.client, "p1", NULL, NULL, &e),
			 PL_ERR_INVALID);
	ck_assert_str_eq(e.msg, "DeletePolicyVersion: policy version id missing");
	ck_assert_int_eq(awsapi_attach_policy(f.client, "p1", "", NULL, &e), PL_ERR_INVALID);
	ck_assert_str_eq(e.msg, "AttachPolicy: target missing");
	ck_assert_int_eq(awsapi_create_certificate_from_csr(f.client, NULL, 1, NULL, NULL, &e),
			 PL_ERR_INVALID);
	ck_assert_str_eq(e.msg, "CreateCertificateFromCsr: CSR missing");
	ck_assert_int_eq(awsapi_update_certificate(f.client, CERT_ID, NULL, NULL, &e),
			 PL_ERR_INVALID);
	ck_assert_str_eq(e.msg, "UpdateCertificate: new status missing");
	ck_assert_int_eq(awsapi_publish(f.client, "t", "x", 1, 2, 0, NULL, &e), PL_ERR_INVALID);
	ck_assert_str_eq(e.msg, "Publish: QoS 2 is not 0 or 1");
	ck_assert_int_eq(awsapi_delete_connection(f.client, "$aws", 0, 0, NULL, &e),
			 PL_ERR_INVALID);
	ck_assert_str_eq(e.msg, "DeleteConnection: client id $aws starts with '$'");
	ck_assert_int_eq(f.server.requests, 0);
	wire_stop(&f);
}
END_TEST

/* ---- error parsing and signing ---- */

START_TEST(test_awsapi_parse_error_header)
{
	char name[64], message[128];
	const char *body = "{\"message\":\"Rate exceeded\",\"traceId\":\"t\"}";

	ck_assert_int_eq(awsapi_parse_error(400, "ThrottlingException:http://internal.amazon.com/",
					    body, strlen(body), name, sizeof(name), message,
					    sizeof(message)),
			 PL_ERR_THROTTLED);
	ck_assert_str_eq(name, "ThrottlingException");
	ck_assert_str_eq(message, "Rate exceeded");
}
END_TEST

START_TEST(test_awsapi_parse_error_body_type)
{
	char name[64], message[128];
	const char *body = "{\"__type\":\"com.amazonaws.iot#ResourceNotFoundException\","
			   "\"Message\":\"gone\"}";

	ck_assert_int_eq(awsapi_parse_error(404, NULL, body, strlen(body), name, sizeof(name),
					    message, sizeof(message)),
			 PL_ERR_NOT_FOUND);
	ck_assert_str_eq(name, "ResourceNotFoundException");
	ck_assert_str_eq(message, "gone");
}
END_TEST

START_TEST(test_awsapi_parse_error_body_code)
{
	char name[64], message[128];
	const char *body = "{\"code\":\"VersionsLimitExceededException\",\"message\":\"five\"}";

	ck_assert_int_eq(awsapi_parse_error(409, NULL, body, strlen(body), name, sizeof(name),
					    message, sizeof(message)),
			 PL_ERR_LIMIT);
	ck_assert_str_eq(name, "VersionsLimitExceededException");
}
END_TEST

START_TEST(test_awsapi_parse_error_status_only)
{
	char name[64], message[128];

	ck_assert_int_eq(awsapi_parse_error(429, NULL, "<html>", 6, name, sizeof(name), message,
					    sizeof(message)),
			 PL_ERR_THROTTLED);
	ck_assert_str_eq(name, "HTTP 429");
	ck_assert_str_eq(message, "");
	ck_assert_int_eq(awsapi_parse_error(503, NULL, NULL, 0, name, sizeof(name), message,
					    sizeof(message)),
			 PL_ERR_NETWORK);
}
END_TEST

/* AWS's published SigV4 test vector "get-vanilla". */
START_TEST(test_awsapi_sigv4_vector)
{
	awsapi_sigv4_input in = {
		.method = "GET", .host = "example.amazonaws.com", .path = "/", .query = "",
		.amz_date = "20150830T123600Z", .region = "us-east-1", .service = "service",
		.access_key_id = "AKIDEXAMPLE",
		.secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
	};
	char auth[512];

	ck_assert_int_eq(awsapi_sigv4_authorization(&in, auth, sizeof(auth)), PL_OK);
	ck_assert_str_eq(auth, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/"
			       "aws4_request, SignedHeaders=host;x-amz-date, Signature="
			       "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}
END_TEST

/*
 * AWS encodes an already-encoded path once more for every service but S3, so
 * "/topics/a%2Fb" is signed as "/topics/a%252Fb". The expected signature was
 * computed with Python's hmac and hashlib following AWS's SigV4 steps.
 */
START_TEST(test_awsapi_sigv4_encoded_path)
{
	awsapi_sigv4_input in = {
		.method = "POST", .host = "127.0.0.1:8443", .path = "/topics/a%2Fb",
		.query = "qos=1&retain=false", .content_type = "application/octet-stream",
		.amz_date = "20261204T120000Z", .session_token = "TOKEN", .body = "{}",
		.body_len = 2, .region = "us-east-1", .service = "iotdata",
		.access_key_id = "AKIDEXAMPLE",
		.secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
	};
	char auth[512];

	ck_assert_int_eq(awsapi_sigv4_authorization(&in, auth, sizeof(auth)), PL_OK);
	ck_assert_ptr_nonnull(strstr(auth, "SignedHeaders=content-type;host;x-amz-date;"
					   "x-amz-security-token,"));
	ck_assert_ptr_nonnull(strstr(auth, "Signature=fa7f46213ee0bf96bdf17f272679ae051da68092d3f94"
					   "dd4827e9192103026c8"));
}
END_TEST

START_TEST(test_awsapi_uri_encode)
{
	char out[64];

	ck_assert_int_eq(awsapi_uri_encode("a/b c:~_.-", out, sizeof(out)), PL_OK);
	ck_assert_str_eq(out, "a%2Fb%20c%3A~_.-");
	ck_assert_int_eq(awsapi_uri_encode("abcdef", out, 4), PL_ERR_RANGE);
}
END_TEST

START_TEST(test_awsapi_config_signing_names)
{
	awsapi_config cfg;

	awsapi_config_init(&cfg);
	ck_assert_str_eq(cfg.control_signing_name, "execute-api");
	ck_assert_str_eq(cfg.data_signing_name, "iotdata");
}
END_TEST

START_TEST(test_awsapi_config_rejects_missing)
{
	awsapi_config cfg;
	awsapi_ctx *ctx = NULL;
	aws_credentials creds = { "AKID", "secret", "", "", "" };
	pl_errmsg e = { "" };

	awsapi_config_init(&cfg);
	cfg.control_endpoint = "ftp://127.0.0.1";
	cfg.region = "us-east-1";
	cfg.credentials = &creds;
	ck_assert_int_eq(awsapi_ctx_create(&ctx, &cfg, &e), PL_ERR_INVALID);
	ck_assert_ptr_null(ctx);
	cfg.control_endpoint = "http://127.0.0.1:1";
	cfg.region = NULL;
	ck_assert_int_eq(awsapi_ctx_create(&ctx, &cfg, &e), PL_ERR_INVALID);
}
END_TEST

static Suite *awsapi_suite(void)
{
	Suite *s = suite_create("awsapi");
	TCase *sim = tcase_create("simulator");
	TCase *unit = tcase_create("unit");

	tcase_set_timeout(sim, 60);
	tcase_add_test(sim, test_awsapi_policy_create_get);
	tcase_add_test(sim, test_awsapi_policy_not_found);
	tcase_add_test(sim, test_awsapi_policy_exists);
	tcase_add_test(sim, test_awsapi_policy_versions);
	tcase_add_test(sim, test_awsapi_policy_default_version_delete);
	tcase_add_test(sim, test_awsapi_certificate_from_csr);
	tcase_add_test(sim, test_awsapi_keys_and_certificate);
	tcase_add_test(sim, test_awsapi_attach_list_detach);
	tcase_add_test(sim, test_awsapi_certificate_delete_rules);
	tcase_add_test(sim, test_awsapi_describe_endpoint);
	tcase_add_test(sim, test_awsapi_publish);
	tcase_add_test(sim, test_awsapi_delete_connection);
	tcase_add_test(sim, test_awsapi_bad_signature);
	tcase_add_test(sim, test_awsapi_session_token);
	tcase_add_test(sim, test_awsapi_throttle_retried);
	tcase_add_test(sim, test_awsapi_throttle_exhausted);
	tcase_add_test(sim, test_awsapi_throttle_429);
	tcase_add_test(sim, test_awsapi_limiter_avoids_throttling);
	tcase_add_test(sim, test_awsapi_pool_attach);
	tcase_add_test(sim, test_awsapi_pool_rejects_list_ops);
	tcase_add_test(sim, test_awsapi_pool_cancel);
	tcase_add_test(sim, test_awsapi_ctx_cancel);
	tcase_add_test(unit, test_awsapi_server_error_retried);
	tcase_add_test(unit, test_awsapi_wire_format);
	tcase_add_test(unit, test_awsapi_arguments_checked);
	tcase_add_test(unit, test_awsapi_parse_error_header);
	tcase_add_test(unit, test_awsapi_parse_error_body_type);
	tcase_add_test(unit, test_awsapi_parse_error_body_code);
	tcase_add_test(unit, test_awsapi_parse_error_status_only);
	tcase_add_test(unit, test_awsapi_sigv4_vector);
	tcase_add_test(unit, test_awsapi_sigv4_encoded_path);
	tcase_add_test(unit, test_awsapi_uri_encode);
	tcase_add_test(unit, test_awsapi_config_signing_names);
	tcase_add_test(unit, test_awsapi_config_rejects_missing);
	suite_add_tcase(s, sim);
	suite_add_tcase(s, unit);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(awsapi_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
