/*
 * Tests of fleet provisioning against the simulator's real control-plane API
 * (running in the test process on loopback): create, reuse, delete, file
 * modes, an interrupted create resumed, and a crash recovered from the
 * journal.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"
#include "harness/awsapi.h"
#include "harness/fleet.h"
#include "simulator/certs.h"
#include "tests/support/sim_api_fixture.h"

typedef struct fleet_fixture {
	sim_api_fixture sim;
	awsapi_ctx *ctx;
	char dir[160];
	fleet_settings settings;
} fleet_fixture;

static void fixture_start(fleet_fixture *f, int64_t devices)
{
	awsapi_config cfg;
	pl_errmsg e = { "" };

	memset(f, 0, sizeof(*f));
	sim_api_fixture_start(&f->sim, NULL);
	awsapi_config_init(&cfg);
	cfg.control_endpoint = f->sim.endpoint;
	cfg.region = "us-east-1";
	cfg.credentials = &f->sim.creds;
	ck_assert_msg(awsapi_ctx_create(&f->ctx, &cfg, &e) == PL_OK, "%s", e.msg);
	sim_api_fixture_path(&f->sim, "fleet", f->dir, sizeof(f->dir));
	fleet_settings_init(&f->settings);
	f->settings.dir = f->dir;
	f->settings.target_id = "simulator:test";
	f->settings.client_id_prefix = "dev-";
	f->settings.devices = devices;
	f->settings.progress_interval_ns = 0;
}

static void fixture_stop(fleet_fixture *f)
{
	awsapi_ctx_free(f->ctx);
	sim_api_fixture_stop(&f->sim);
}

static fleet_inventory *load(const fleet_fixture *f)
{
	fleet_inventory *inv = NULL;
	pl_errmsg e = { "" };

	ck_assert_msg(fleet_inventory_load(&inv, f->dir, &e) == PL_OK, "%s", e.msg);
	return inv;
}

static unsigned file_mode(const char *path)
{
	struct stat st;

	ck_assert_int_eq(stat(path, &st), 0);
	return (unsigned)(st.st_mode & 0777);
}

static int exists(const char *path)
{
	return access(path, F_OK) == 0;
}

START_TEST(test_fleet_create)
{
	fleet_fixture f;
	fleet_result r;
	fleet_inventory *inv;
	pl_errmsg e = { "" };

	fixture_start(&f, 5);
	ck_assert_msg(fleet_create(&f.settings, f.ctx, &r, &e) == PL_OK, "%s", e.msg);
	ck_assert_uint_eq(r.created, 5);
	ck_assert_uint_eq(r.reused, 0);
	ck_assert_uint_eq(r.devices, 5);
	ck_assert_uint_eq(sim_api_fixture_certificates(&f.sim), 5);
	inv = load(&f);
	ck_assert_uint_eq(fleet_inventory_count(inv), 5);
	ck_assert_str_eq(fleet_inventory_target(inv), "simulator:test");
	for (size_t i = 0; i < 5; i++) {
		const fleet_device *d = fleet_inventory_device(inv, i);
		char expected[32], id[SIM_CERTS_ID_LEN + 1], *pem = NULL;

		snprintf(expected, sizeof(expected), "dev-%06zu", i);
		ck_assert_int_eq(d->index, (int64_t)i);
		ck_assert_str_eq(d->client_id, expected);
		ck_assert_uint_eq(file_mode(d->key_path), 0600);
		ck_assert_int_eq(sim_certs_read_file(d->cert_path, &pem, &e), PL_OK);
		ck_assert_int_eq(sim_certs_id_from_pem(pem, id, &e), PL_OK);
		ck_assert_str_eq(d->certificate_id, id);
		ck_assert_ptr_nonnull(strstr(d->certificate_arn, id));
		ck_assert(d->created_ns > 0);
		free(pem);
	}
	fleet_inventory_free(inv);
	fixture_stop(&f);
}
END_TEST

START_TEST(test_fleet_reuse)
{
	fleet_fixture f;
	fleet_result r;
	pl_errmsg e = { "" };

	fixture_start(&f, 3);
	ck_assert_int_eq(fleet_create(&f.settings, f.ctx, &r, &e), PL_OK);
	ck_assert_int_eq(fleet_create(&f.settings, f.ctx, &r, &e), PL_OK);
	ck_assert_uint_eq(r.created, 0);
	ck_assert_uint_eq(r.reused, 3);
	ck_assert_uint_eq(sim_api_fixture_certificates(&f.sim), 3);
	f.settings.devices = 4; /* a grown fleet creates only the new device */
	ck_assert_int_eq(fleet_create(&f.settings, f.ctx, &r, &e), PL_OK);
	ck_assert_uint_eq(r.created, 1);
	ck_assert_uint_eq(sim_api_fixture_certificates(&f.sim), 4);
	fixture_stop(&f);
}
END_TEST

START_TEST(test_fleet_other_target)
{
	fleet_fixture f;
	fleet_result r;
	pl_errmsg e = { "" };

	fixture_start(&f, 1);
	ck_assert_int_eq(fleet_create(&f.settings, f.ctx, &r, &e), PL_OK);
	f.settings.target_id = "aws:eu-west-1:https://iot.eu-west-1.amazonaws.com";
	ck_assert_int_eq(fleet_create(&f.settings, f.ctx, &r, &e), PL_ERR_STATE);
	ck_assert_ptr_nonnull(strstr(e.msg, "simulator:test"));
	ck_assert_int_eq(fleet_delete(&f.settings, f.ctx, &r, &e), PL_ERR_STATE);
	ck_assert_uint_eq(sim_api_fixture_certificates(&f.sim), 1);
	fixture_stop(&f);
}
END_TEST

START_TEST(test_fleet_other_prefix)
{
	fleet_fixture f;
	fleet_result r;
	pl_errmsg e = { "" };

	fixture_start(&f, 1);
	ck_assert_int_eq(fleet_create(&f.settings, f.ctx, &r, &e), PL_OK);
	f.settings.client_id_prefix = "other-";
	ck_assert_int_eq(fleet_create(&f.settings, f.ctx, &r, &e), PL_ERR_STATE);
	fixture_stop(&f);
}
END_TEST

/* Delete detaches policies first: AWS refuses to delete a certificate with a policy attached. */
START_TEST(test_fleet_delete)
{
	static const char *const doc =
		"{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\","
		"\"Action\":\"iot:Connect\",\"Resource\":\"*\"}]}";
	fleet_fixture f;
	fleet_result r;
	fleet_inventory *inv;
	awsapi_client *client = NULL;
	char key[FLEET_PATH_MAX], inventory[200];
	pl_errmsg e = { "" };

	fixture_start(&f, 4);
	ck_assert_int_eq(fleet_create(&f.settings, f.ctx, &r, &e), PL_OK);
	inv = load(&f);
	snprintf(key, sizeof(key), "%s", fleet_inventory_device(inv, 2)->key_path);
	ck_assert_int_eq(awsapi_client_create(&client, f.ctx, &e), PL_OK);
	ck_assert_int_eq(awsapi_create_policy(client, "p1", doc, NULL, NULL, &e), PL_OK);
	ck_assert_int_eq(awsapi_attach_policy(client, "p1",
					      fleet_inventory_device(inv, 2)->certificate_arn, NULL,
					      &e),
			 PL_OK);
	fleet_inventory_free(inv);
	ck_assert_msg(fleet_delete(&f.settings, f.ctx, &r, &e) == PL_OK, "%s", e.msg);
	ck_assert_uint_eq(r.deleted, 4);
	ck_assert_uint_eq(r.devices, 0);
	ck_assert_uint_eq(sim_api_fixture_certificates(&f.sim), 0);
	ck_assert(!exists(key));
	snprintf(inventory, sizeof(inventory), "%s/inventory.json", f.dir);
	ck_assert(!exists(inventory));
	ck_assert_int_eq(fleet_inventory_load(&inv, f.dir, &e), PL_ERR_NOT_FOUND);
	awsapi_client_free(client);
	fixture_stop(&f);
}
END_TEST

/* A certificate already deleted outside the fleet counts as deleted. */
START_TEST(test_fleet_delete_gone)
{
	fleet_fixture f;
	fleet_result r;
	fleet_inventory *inv;
	awsapi_client *client = NULL;
	pl_errmsg e = { "" };

	fixture_start(&f, 2);
	ck_assert_int_eq(fleet_create(&f.settings, f.ctx, &r, &e), PL_OK);
	inv = load(&f);
	ck_assert_int_eq(awsapi_client_create(&client, f.ctx, &e), PL_OK);
	ck_assert_int_eq(awsapi_update_certificate(client, fleet_inventory_device(inv, 0)->certificate_id,
						   "INACTIVE", NULL, &e),
			 PL_OK);
	ck_assert_int_eq(awsapi_delete_certificate(client, fleet_inventory_device(inv, 0)->certificate_id,
						   0, NULL, &e),
			 PL_OK);
	fleet_inventory_free(inv);
	ck_assert_msg(fleet_delete(&f.settings, f.ctx, &r, &e) == PL_OK, "%s", e.msg);
	ck_assert_uint_eq(r.deleted, 2);
	ck_assert_uint_eq(sim_api_fixture_certificates(&f.sim), 0);
	awsapi_client_free(client);
	fixture_stop(&f);
}
END_TEST

START_TEST(test_fleet_shared_certificate)
{
	fleet_fixture f;
	fleet_result r;
	fleet_inventory *inv;
	pl_errmsg e = { "" };

	fixture_start(&f, 4);
	f.settings.shared_certificate = 1;
	ck_assert_msg(fleet_create(&f.settings, f.ctx, &r, &e) == PL_OK, "%s", e.msg);
	ck_assert_uint_eq(r.created, 1);
	ck_assert_uint_eq(sim_api_fixture_certificates(&f.sim), 1);
	inv = load(&f);
	ck_assert_uint_eq(fleet_inventory_count(inv), 4);
	ck_assert_str_eq(fleet_inventory_device(inv, 3)->client_id, "dev-000003");
	ck_assert_str_eq(fleet_inventory_device(inv, 3)->certificate_id,
			 fleet_inventory_device(inv, 0)->certificate_id);
	fleet_inventory_free(inv);
	ck_assert_int_eq(fleet_delete(&f.settings, f.ctx, &r, &e), PL_OK);
	ck_assert_uint_eq(r.deleted, 1);
	ck_assert_uint_eq(sim_api_fixture_certificates(&f.sim), 0);
	fixture_stop(&f);
}
END_TEST

START_TEST(test_fleet_keys_and_certificate)
{
	fleet_fixture f;
	fleet_result r;
	fleet_inventory *inv;
	char *key = NULL;
	pl_errmsg e = { "" };

	fixture_start(&f, 2);
	f.settings.provisioning = FLEET_PROVISION_KEYS_AND_CERTIFICATE;
	ck_assert_msg(fleet_create(&f.settings, f.ctx, &r, &e) == PL_OK, "%s", e.msg);
	inv = load(&f);
	ck_assert_uint_eq(file_mode(fleet_inventory_device(inv, 1)->key_path), 0600);
	ck_assert_int_eq(sim_certs_read_file(fleet_inventory_device(inv, 1)->key_path, &key, &e),
			 PL_OK);
	ck_assert_ptr_nonnull(strstr(key, "PRIVATE KEY"));
	free(key);
	fleet_inventory_free(inv);
	fixture_stop(&f);
}
END_TEST

/* ---- interruption ---- */

typedef struct stopper {
	volatile sig_atomic_t stop;
	size_t after;
} stopper;

static void stop_after(void *arg, size_t done, size_t total)
{
	stopper *s = arg;

	(void)total;
	if (done >= s->after)
		__atomic_store_n(&s->stop, 1, __ATOMIC_RELAXED);
}

START_TEST(test_fleet_interrupted_resumed)
{
	fleet_fixture f;
	fleet_result r;
	fleet_inventory *inv;
	stopper st = { 0, 3 };
	pl_errmsg e = { "" };

	fixture_start(&f, 8);
	f.settings.threads = 1;
	f.settings.stop = &st.stop;
	f.settings.progress = stop_after;
	f.settings.progress_arg = &st;
	ck_assert_int_eq(fleet_create(&f.settings, f.ctx, &r, &e), PL_ERR_INTERRUPTED);
	inv = load(&f);
	ck_assert_uint_eq(fleet_inventory_count(inv), r.created);
	ck_assert_uint_ge(r.created, 3);
	ck_assert_uint_lt(r.created, 8);
	ck_assert_uint_eq(sim_api_fixture_certificates(&f.sim), r.created);
	fleet_inventory_free(inv);
	f.settings.stop = NULL;
	f.settings.progress = NULL;
	ck_assert_msg(fleet_create(&f.settings, f.ctx, &r, &e) == PL_OK, "%s", e.msg);
	ck_assert_uint_eq(r.devices, 8);
	ck_assert_uint_eq(r.created + r.reused, 8);
	ck_assert_uint_eq(sim_api_fixture_certificates(&f.sim), 8);
	fixture_stop(&f);
}
END_TEST

static void exit_after_three(void *arg, size_t done, size_t total)
{
	(void)arg;
	(void)total;
	if (done >= 3)
		_exit(0); /* a crash right after the third device reached the journal */
}

/*
 * Runs in a child process forked before any thread existed (ThreadSanitizer
 * supports no threads after a multi-threaded fork): receives the parent's
 * fixture through fd, then creates the fleet until exit_after_three ends it.
 */
static void crashing_child(int fd)
{
	fleet_fixture f;
	awsapi_config cfg;
	fleet_result r;
	pl_errmsg e = { "" };

	if (read(fd, &f, sizeof(f)) != (ssize_t)sizeof(f))
		_exit(2);
	awsapi_config_init(&cfg);
	cfg.control_endpoint = f.sim.endpoint;
	cfg.region = "us-east-1";
	cfg.credentials = &f.sim.creds;
	if (awsapi_ctx_create(&f.ctx, &cfg, &e) != PL_OK)
		_exit(3);
	f.settings.dir = f.dir;
	f.settings.client_id_prefix = "dev-";
	f.settings.target_id = "simulator:test";
	f.settings.progress = exit_after_three;
	fleet_create(&f.settings, f.ctx, &r, &e);
	_exit(1); /* the callback should have exited first */
}

/*
 * A process killed mid-create never rewrote inventory.json; the journal
 * still contains every device, so the next create makes only the rest and no
 * certificate is created twice.
 */
START_TEST(test_fleet_crash_recovered)
{
	fleet_fixture f;
	fleet_result r;
	fleet_inventory *inv;
	int fds[2], status = 0;
	pid_t pid;
	pl_errmsg e = { "" };

	ck_assert_int_eq(pipe(fds), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(fds[1]);
		crashing_child(fds[0]);
	}
	close(fds[0]);
	fixture_start(&f, 6);
	f.settings.threads = 1;
	f.settings.save_interval_ns = INT64_MAX / 2;
	ck_assert_int_eq(write(fds[1], &f, sizeof(f)), (ssize_t)sizeof(f));
	close(fds[1]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	ck_assert_uint_eq(sim_api_fixture_certificates(&f.sim), 3);
	inv = load(&f);
	ck_assert_uint_eq(fleet_inventory_count(inv), 3);
	fleet_inventory_free(inv);
	ck_assert_msg(fleet_create(&f.settings, f.ctx, &r, &e) == PL_OK, "%s", e.msg);
	ck_assert_uint_eq(r.reused, 3);
	ck_assert_uint_eq(r.created, 3);
	ck_assert_uint_eq(sim_api_fixture_certificates(&f.sim), 6);
	fixture_stop(&f);
}
END_TEST

START_TEST(test_fleet_torn_journal_line)
{
	fleet_fixture f;
	fleet_result r;
	fleet_inventory *inv;
	char journal[200];
	FILE *file;
	pl_errmsg e = { "" };

	fixture_start(&f, 2);
	ck_assert_int_eq(fleet_create(&f.settings, f.ctx, &r, &e), PL_OK);
	snprintf(journal, sizeof(journal), "%s/inventory.journal", f.dir);
	file = fopen(journal, "a");
	ck_assert_ptr_nonnull(file);
	fputs("{\"device\":{\"index\":7,\"client_id\":\"dev-0", file); /* no newline: torn */
	fclose(file);
	inv = load(&f);
	ck_assert_uint_eq(fleet_inventory_count(inv), 2);
	fleet_inventory_free(inv);
	fixture_stop(&f);
}
END_TEST

START_TEST(test_fleet_corrupt_inventory)
{
	fleet_fixture f;
	fleet_inventory *inv = NULL;
	char path[200];
	FILE *file;
	pl_errmsg e = { "" };

	fixture_start(&f, 1);
	ck_assert_int_eq(mkdir(f.dir, 0700), 0);
	snprintf(path, sizeof(path), "%s/inventory.json", f.dir);
	file = fopen(path, "w");
	ck_assert_ptr_nonnull(file);
	fputs("{\"format\":1,\"devices\":[", file);
	fclose(file);
	ck_assert_int_eq(fleet_inventory_load(&inv, f.dir, &e), PL_ERR_PARSE);
	ck_assert_ptr_nonnull(strstr(e.msg, "inventory.json"));
	fixture_stop(&f);
}
END_TEST

/* ---- the fleet command against the simulator (mosquitto with the plugin) ---- */

/* Runs the policylag binary with args through the shell; returns its exit status. */
static int run_policylag(const char *args)
{
	const char *bin = getenv("POLICYLAG_BIN");
	const char *src = getenv("POLICYLAG_SOURCE_DIR");
	char cmd[1024];
	int status;

	ck_assert_msg(bin != NULL && src != NULL,
		      "POLICYLAG_BIN and POLICYLAG_SOURCE_DIR must be set (make check sets them)");
	snprintf(cmd, sizeof(cmd), "cd '%s' && '%s' --log-level warn %s >/dev/null 2>&1", src, bin,
		 args);
	status = system(cmd);
	ck_assert(WIFEXITED(status));
	return WEXITSTATUS(status);
}

START_TEST(test_fleet_command_round_trip)
{
	char dir[] = "/tmp/policylag-fleetcmd.XXXXXX", args[512], inventory[128];
	fleet_inventory *inv = NULL;
	pl_errmsg e = { "" };

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(args, sizeof(args),
		 "fleet create profiles/policy-version.yaml --dir %s/fleet --set fleet.devices=3",
		 dir);
	ck_assert_int_eq(run_policylag(args), 0);
	snprintf(inventory, sizeof(inventory), "%s/fleet", dir);
	ck_assert_msg(fleet_inventory_load(&inv, inventory, &e) == PL_OK, "%s", e.msg);
	ck_assert_uint_eq(fleet_inventory_count(inv), 3);
	ck_assert_uint_eq(file_mode(fleet_inventory_device(inv, 0)->key_path), 0600);
	ck_assert_ptr_nonnull(strstr(fleet_inventory_target(inv), "simulator:"));
	fleet_inventory_free(inv);
	snprintf(args, sizeof(args), "fleet list profiles/policy-version.yaml --dir %s/fleet", dir);
	ck_assert_int_eq(run_policylag(args), 0);
	snprintf(args, sizeof(args), "fleet delete profiles/policy-version.yaml --dir %s/fleet", dir);
	ck_assert_int_eq(run_policylag(args), 0);
	ck_assert_int_eq(fleet_inventory_load(&inv, inventory, &e), PL_ERR_NOT_FOUND);
	snprintf(args, sizeof(args), "fleet list profiles/policy-version.yaml --dir %s/fleet", dir);
	ck_assert_int_eq(run_policylag(args), 2);
	ck_assert_int_eq(run_policylag("fleet rotate profiles/policy-version.yaml"), 2);
	snprintf(args, sizeof(args), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(args), 0);
}
END_TEST

START_TEST(test_fleet_client_id)
{
	char buf[16];

	ck_assert_int_eq(fleet_client_id("d-", 42, buf, sizeof(buf)), PL_OK);
	ck_assert_str_eq(buf, "d-000042");
	ck_assert_int_eq(fleet_client_id("d-", 1234567, buf, sizeof(buf)), PL_OK);
	ck_assert_str_eq(buf, "d-1234567");
	ck_assert_int_eq(fleet_client_id("long-prefix-", 1, buf, sizeof(buf)), PL_ERR_RANGE);
}
END_TEST

static Suite *fleet_suite(void)
{
	Suite *s = suite_create("fleet");
	TCase *tc = tcase_create("fleet");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_fleet_create);
	tcase_add_test(tc, test_fleet_reuse);
	tcase_add_test(tc, test_fleet_other_target);
	tcase_add_test(tc, test_fleet_other_prefix);
	tcase_add_test(tc, test_fleet_delete);
	tcase_add_test(tc, test_fleet_delete_gone);
	tcase_add_test(tc, test_fleet_shared_certificate);
	tcase_add_test(tc, test_fleet_keys_and_certificate);
	tcase_add_test(tc, test_fleet_interrupted_resumed);
	tcase_add_test(tc, test_fleet_crash_recovered);
	tcase_add_test(tc, test_fleet_torn_journal_line);
	tcase_add_test(tc, test_fleet_corrupt_inventory);
	tcase_add_test(tc, test_fleet_client_id);
	tcase_add_test(tc, test_fleet_command_round_trip);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(fleet_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
