/*
 * Benchmark: the API client's pool against the simulator's control plane
 * (in this process, loopback HTTP).
 *
 * Prints:
 *   awsapi_pool_calls_per_second   AttachPolicy and DetachPolicy calls per
 *                                  second through 8 pool threads, with every
 *                                  rate limit off (client and simulator)
 *   awsapi_call_p50_ms, _p99_ms    send-to-response time of those calls
 *   awsapi_paced_calls_per_second  AttachPolicy at the client's default
 *                                  limiter (AWS's 15/s quota) against the
 *                                  simulator's 15/s bucket
 *   awsapi_paced_throttled         throttled responses in that run (target 0)
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "harness/awsapi.h"
#include "simulator/certs.h"
#include "tests/support/sim_api_fixture.h"

#define CERTS 200
#define CYCLES 5
#define PACED_CALLS 60

static const char *const policy_doc =
	"{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\","
	"\"Action\":\"iot:Connect\",\"Resource\":\"*\"}]}";

typedef struct latencies {
	pthread_mutex_t lock;
	int64_t *ns;
	size_t count;
	size_t failed;
} latencies;

static void on_done(void *arg, const awsapi_request *req, const awsapi_result *res)
{
	latencies *l = arg;

	(void)req;
	pthread_mutex_lock(&l->lock);
	if (res->err == PL_OK)
		l->ns[l->count++] = res->call.t_done_ns - res->call.t_sent_ns;
	else
		l->failed++;
	pthread_mutex_unlock(&l->lock);
}

static int by_value(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static int open_ctx(sim_api_fixture *f, double tps, awsapi_ctx **ctx)
{
	awsapi_config cfg;
	pl_errmsg e = { "" };

	awsapi_config_init(&cfg);
	cfg.control_endpoint = f->endpoint;
	cfg.region = "us-east-1";
	cfg.credentials = &f->creds;
	for (int op = 0; op < AWSAPI_OP__COUNT; op++)
		cfg.tps[op] = tps;
	if (awsapi_ctx_create(ctx, &cfg, &e) != PL_OK) {
		fprintf(stderr, "bench_awsapi: %s\n", e.msg);
		return -1;
	}
	return 0;
}

static int make_certs(awsapi_ctx *ctx, char arns[][256], int count)
{
	awsapi_client *c = NULL;
	pl_errmsg e = { "" };
	int rc = 0;

	if (awsapi_client_create(&c, ctx, &e) != PL_OK ||
	    awsapi_create_policy(c, "bench", policy_doc, NULL, NULL, &e) != PL_OK)
		rc = -1;
	for (int i = 0; rc == 0 && i < count; i++) {
		char *key = NULL, *csr = NULL;
		awsapi_certificate cert;

		if (sim_certs_create_ec_csr("bench", &key, &csr, &e) != PL_OK ||
		    awsapi_create_certificate_from_csr(c, csr, 1, &cert, NULL, &e) != PL_OK)
			rc = -1;
		else
			snprintf(arns[i], 256, "%s", cert.arn);
		if (rc == 0)
			awsapi_certificate_clear(&cert);
		free(key);
		free(csr);
	}
	if (rc != 0)
		fprintf(stderr, "bench_awsapi: %s\n", e.msg);
	awsapi_client_free(c);
	return rc;
}

static int submit_cycles(awsapi_pool *pool, char arns[][256], latencies *l)
{
	pl_errmsg e = { "" };

	for (int cycle = 0; cycle < CYCLES; cycle++) {
		for (int pass = 0; pass < 2; pass++) {
			for (int i = 0; i < CERTS; i++) {
				awsapi_request req = { .op = pass ? AWSAPI_DETACH_POLICY
								  : AWSAPI_ATTACH_POLICY,
						       .policy_name = "bench", .target = arns[i] };

				if (awsapi_pool_submit(pool, &req, on_done, l, &e) != PL_OK)
					return -1;
			}
			awsapi_pool_wait(pool);
		}
	}
	return 0;
}

static void print_latencies(latencies *l, double secs)
{
	qsort(l->ns, l->count, sizeof(*l->ns), by_value);
	printf("awsapi_pool_calls_per_second %.0f\n", (double)l->count / secs);
	printf("awsapi_call_p50_ms %.2f\n", (double)l->ns[l->count / 2] / 1e6);
	printf("awsapi_call_p99_ms %.2f\n", (double)l->ns[l->count * 99 / 100] / 1e6);
	printf("awsapi_failed_calls %zu\n", l->failed);
}

static int bench_unlimited(sim_api_fixture *f, char arns[][256])
{
	latencies l = { PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0 };
	awsapi_ctx *ctx = NULL;
	awsapi_pool *pool = NULL;
	pl_errmsg e = { "" };
	int64_t start;
	int rc = -1;

	l.ns = calloc(2 * CERTS * CYCLES, sizeof(*l.ns));
	if (l.ns == NULL || open_ctx(f, -1, &ctx) != 0 || make_certs(ctx, arns, CERTS) != 0 ||
	    awsapi_pool_create(&pool, ctx, 8, 64, &e) != PL_OK)
		goto cleanup;
	start = pl_mono_ns();
	if (submit_cycles(pool, arns, &l) == 0) {
		print_latencies(&l, (double)(pl_mono_ns() - start) / 1e9);
		rc = 0;
	}
cleanup:
	awsapi_pool_free(pool);
	awsapi_ctx_free(ctx);
	free(l.ns);
	return rc;
}

static int bench_paced(sim_api_fixture *f, char arns[][256])
{
	latencies l = { PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0 };
	awsapi_ctx *setup = NULL, *ctx = NULL;
	awsapi_pool *pool = NULL;
	awsapi_op_stats stats;
	pl_errmsg e = { "" };
	int64_t start;
	int rc = -1;

	l.ns = calloc(PACED_CALLS, sizeof(*l.ns));
	if (l.ns == NULL || open_ctx(f, -1, &setup) != 0 ||
	    make_certs(setup, arns, PACED_CALLS) != 0 || open_ctx(f, 0, &ctx) != 0 ||
	    awsapi_pool_create(&pool, ctx, 8, 64, &e) != PL_OK)
		goto cleanup;
	start = pl_mono_ns();
	for (int i = 0; i < PACED_CALLS; i++) {
		awsapi_request req = { .op = AWSAPI_ATTACH_POLICY, .policy_name = "bench",
				       .target = arns[i] };

		if (awsapi_pool_submit(pool, &req, on_done, &l, &e) != PL_OK)
			goto cleanup;
	}
	awsapi_pool_wait(pool);
	printf("awsapi_paced_calls_per_second %.1f\n",
	       (double)l.count / ((double)(pl_mono_ns() - start) / 1e9));
	awsapi_ctx_stats(ctx, AWSAPI_ATTACH_POLICY, &stats);
	printf("awsapi_paced_throttled %llu\n", (unsigned long long)stats.throttled);
	printf("awsapi_paced_failed_calls %zu\n", l.failed);
	rc = 0;
cleanup:
	awsapi_pool_free(pool);
	awsapi_ctx_free(ctx);
	awsapi_ctx_free(setup);
	free(l.ns);
	return rc;
}

/* Runs inside a Check test because the simulator fixture reports through Check. */
START_TEST(bench_awsapi_pool)
{
	static char arns[CERTS][256];
	sim_api_fixture f;
	int rc;

	sim_api_fixture_start(&f, (const char *const[]){ "api_throttle", "off", NULL, NULL });
	rc = bench_unlimited(&f, arns);
	sim_api_fixture_stop(&f);
	ck_assert_int_eq(rc, 0);
	/* AWS's quotas, except certificate and policy creation, which only set the bench up. */
	sim_api_fixture_start(&f, (const char *const[]){ "api_throttle_CreateCertificateFromCsr", "0",
							 "api_throttle_CreatePolicy", "0", NULL, NULL });
	rc = bench_paced(&f, arns);
	sim_api_fixture_stop(&f);
	ck_assert_int_eq(rc, 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("bench_awsapi");
	TCase *tc = tcase_create("bench");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, bench_awsapi_pool);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_SILENT);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
