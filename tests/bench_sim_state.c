/*
 * Benchmark: what saving the simulator's state costs each control-plane
 * change. CreateCertificateFromCsr calls go through the simulator's API in
 * this process over loopback HTTP, with 500 and then 2,000 certificates
 * already in the store. The state directory is under /tmp.
 *
 * Prints, for each store size N:
 *   sim_state_N_file_bytes     size of the state file holding the N certificates
 *   sim_state_N_full_write_ms  one save that writes the whole store (the first
 *                              save of a store does)
 *   sim_state_N_call_p50_ms, _mean_ms, _max_ms
 *                              send-to-response time of CALLS calls, with the
 *                              store growing from N to N + CALLS certificates
 *   sim_state_N_journal_bytes  size of the state journal after those calls (0
 *                              without one), to estimate the share of a
 *                              compaction each call carries
 *   sim_state_N_load_ms        loading those files into a new store, as a
 *                              restart does
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/clock.h"
#include "harness/awsapi.h"
#include "simulator/certs.h"
#include "simulator/state.h"
#include "tests/support/sim_api_fixture.h"

#define CALLS 100

static int by_value(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/*
 * Adds count certificates straight into the store, each for a new P-256 key
 * and signed by the fixture's CA, as CreateCertificateFromCsr makes them.
 */
static int fill_store(sim_api_fixture *f, int count)
{
	char ca_path[128], key_path[128], ca_id[SIM_CERTS_ID_LEN + 1];
	pl_errmsg e = { "" };
	sim_ca *ca = NULL;
	int rc = 0;

	sim_api_fixture_path(f, "ca.pem", ca_path, sizeof(ca_path));
	sim_api_fixture_path(f, "ca.key", key_path, sizeof(key_path));
	if (sim_ca_load(&ca, ca_path, key_path, &e) != PL_OK)
		rc = -1;
	else
		sim_ca_id(ca, ca_id);
	for (int i = 0; rc == 0 && i < count; i++) {
		char *pem = NULL, *key = NULL, *csr = NULL;

		if (sim_certs_create_ec_csr("fill", &key, &csr, &e) != PL_OK ||
		    sim_certs_sign_csr(ca, csr, 30, &pem, &e) != PL_OK)
			rc = -1;
		sim_state_lock(f->state);
		if (rc == 0 &&
		    sim_state_cert_add(f->state, pem, SIM_CERT_ACTIVE, ca_id, NULL, &e) != PL_OK)
			rc = -1;
		sim_state_unlock(f->state);
		free(pem);
		free(key);
		free(csr);
	}
	if (rc != 0)
		fprintf(stderr, "bench_sim_state: %s\n", e.msg);
	sim_ca_free(ca);
	return rc;
}

/* Times the save that writes the whole store and prints it with the file size. */
static int full_write(sim_api_fixture *f, int count)
{
	char path[128];
	pl_errmsg e = { "" };
	struct stat st;
	int64_t start;
	pl_err rc;

	sim_api_fixture_path(f, "state.json", path, sizeof(path));
	sim_state_lock(f->state);
	start = pl_mono_ns();
	rc = sim_state_save(f->state, &e);
	printf("sim_state_%d_full_write_ms %.2f\n", count, (double)(pl_mono_ns() - start) / 1e6);
	sim_state_unlock(f->state);
	if (rc != PL_OK || stat(path, &st) != 0) {
		fprintf(stderr, "bench_sim_state: %s\n", rc != PL_OK ? e.msg : "no state file");
		return -1;
	}
	printf("sim_state_%d_file_bytes %lld\n", count, (long long)st.st_size);
	return 0;
}

static int make_csrs(char *csrs[CALLS])
{
	pl_errmsg e = { "" };

	for (int i = 0; i < CALLS; i++) {
		char *key = NULL;

		if (sim_certs_create_ec_csr("bench", &key, &csrs[i], &e) != PL_OK) {
			fprintf(stderr, "bench_sim_state: %s\n", e.msg);
			return -1;
		}
		free(key);
	}
	return 0;
}

static int time_calls(sim_api_fixture *f, char *csrs[CALLS], int64_t ns[CALLS])
{
	awsapi_client *client = NULL;
	awsapi_ctx *ctx = NULL;
	awsapi_config cfg;
	pl_errmsg e = { "" };
	int rc = 0;

	awsapi_config_init(&cfg);
	cfg.control_endpoint = f->endpoint;
	cfg.region = "us-east-1";
	cfg.credentials = &f->creds;
	for (int op = 0; op < AWSAPI_OP__COUNT; op++)
		cfg.tps[op] = -1;
	if (awsapi_ctx_create(&ctx, &cfg, &e) != PL_OK ||
	    awsapi_client_create(&client, ctx, &e) != PL_OK)
		rc = -1;
	for (int i = 0; rc == 0 && i < CALLS; i++) {
		awsapi_certificate cert;
		int64_t start = pl_mono_ns();

		if (awsapi_create_certificate_from_csr(client, csrs[i], 1, &cert, NULL, &e) != PL_OK) {
			rc = -1;
			break;
		}
		ns[i] = pl_mono_ns() - start;
		awsapi_certificate_clear(&cert);
	}
	if (rc != 0)
		fprintf(stderr, "bench_sim_state: %s\n", e.msg);
	awsapi_client_free(client);
	awsapi_ctx_free(ctx);
	return rc;
}

static void print_calls(sim_api_fixture *f, int count, int64_t ns[CALLS])
{
	char path[128];
	struct stat st;
	double sum = 0;

	for (int i = 0; i < CALLS; i++)
		sum += (double)ns[i];
	qsort(ns, CALLS, sizeof(*ns), by_value);
	printf("sim_state_%d_call_p50_ms %.2f\n", count, (double)ns[CALLS / 2] / 1e6);
	printf("sim_state_%d_call_mean_ms %.2f\n", count, sum / CALLS / 1e6);
	printf("sim_state_%d_call_max_ms %.2f\n", count, (double)ns[CALLS - 1] / 1e6);
	sim_api_fixture_path(f, "state.json.journal", path, sizeof(path));
	printf("sim_state_%d_journal_bytes %lld\n", count,
	       stat(path, &st) == 0 ? (long long)st.st_size : 0LL);
}

/* Times loading the saved files into a second store. */
static int time_load(sim_api_fixture *f, int count)
{
	char path[128];
	sim_state_config cfg = { .path = path };
	pl_errmsg e = { "" };
	sim_state *s = NULL;
	int64_t start;
	pl_err rc;

	sim_api_fixture_path(f, "state.json", path, sizeof(path));
	if (sim_state_create(&s, &cfg, &e) != PL_OK) {
		fprintf(stderr, "bench_sim_state: %s\n", e.msg);
		return -1;
	}
	sim_state_lock(s);
	start = pl_mono_ns();
	rc = sim_state_load(s, &e);
	if (rc == PL_OK)
		printf("sim_state_%d_load_ms %.2f\n", count, (double)(pl_mono_ns() - start) / 1e6);
	else
		fprintf(stderr, "bench_sim_state: %s\n", e.msg);
	sim_state_unlock(s);
	sim_state_free(s);
	return rc == PL_OK ? 0 : -1;
}

static int bench_store_size(int count)
{
	char *csrs[CALLS] = { NULL };
	int64_t ns[CALLS];
	sim_api_fixture f;
	int rc;

	sim_api_fixture_start(&f, (const char *const[]){ "api_throttle", "off", NULL, NULL });
	rc = fill_store(&f, count);
	if (rc == 0)
		rc = full_write(&f, count);
	if (rc == 0)
		rc = make_csrs(csrs);
	if (rc == 0)
		rc = time_calls(&f, csrs, ns);
	if (rc == 0)
		print_calls(&f, count, ns);
	if (rc == 0)
		rc = time_load(&f, count);
	for (int i = 0; i < CALLS; i++)
		free(csrs[i]);
	sim_api_fixture_stop(&f);
	return rc;
}

/* Runs inside a Check test because the simulator fixture reports through Check. */
START_TEST(bench_sim_state_save_cost)
{
	ck_assert_int_eq(bench_store_size(500), 0);
	ck_assert_int_eq(bench_store_size(2000), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("bench_sim_state");
	TCase *tc = tcase_create("bench");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, bench_sim_state_save_cost);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_SILENT);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
