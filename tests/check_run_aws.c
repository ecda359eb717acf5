/*
 * `policylag run` with target.kind aws against the simulator: the control
 * and data endpoints are the simulator's API on 127.0.0.1, the credentials
 * its generated [policylag-sim] profile, the root CA its CA. The run takes
 * the same code path as against AWS IoT: target resolution in
 * harness/target.c, DescribeEndpoint when no MQTT endpoint is given, and
 * data-plane probes through the Publish API (probe.via http).
 *
 * One case has no simulator: its control plane is a listener on 127.0.0.1
 * that never responds, and the run gets Ctrl-C during DescribeEndpoint.
 *
 * The aws target connects to port 8883 only, so the simulator listens
 * there. Each test runs in a network namespace of its own when the kernel
 * allows one, so that no other program on the machine can be listening on that port.
 */
#include "tests/check_run_support.h"

#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "harness/awsapi.h"
#include "harness/credentials.h"
#include "tests/support/sim_fixture.h"

#define AWS_MQTT_PORT 8883
#define DEVICES 4
#define RUN_TIMEOUT_S 90

static int write_proc(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* Enters a new network namespace, as root or through a user namespace. */
static int enter_network_namespace(void)
{
	char map[64];
	unsigned uid = (unsigned)getuid(), gid = (unsigned)getgid();

	if (unshare(CLONE_NEWNET) == 0)
		return 0;
	if (unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0)
		return -1;
	/* Map the user to itself, so that file modes and owners still apply. */
	snprintf(map, sizeof(map), "%u %u 1", uid, uid);
	if (write_proc("/proc/self/setgroups", "deny") != 0 ||
	    write_proc("/proc/self/uid_map", map) != 0)
		return -1;
	snprintf(map, sizeof(map), "%u %u 1", gid, gid);
	return write_proc("/proc/self/gid_map", map);
}

/*
 * Gives the test process (and the simulator and run it starts) a loopback
 * interface of its own. Without the privilege for a namespace the test uses
 * the machine's loopback, where port 8883 must be free.
 */
static void use_private_loopback(void)
{
	struct ifreq ifr;
	int fd;

	if (enter_network_namespace() != 0) {
		fprintf(stderr, "cannot create a network namespace (%s), so the test uses the shared loopback\n",
			strerror(errno));
		return;
	}
	/* A new namespace's loopback interface starts down. */
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	ck_assert_int_ge(fd, 0);
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	ck_assert_int_eq(ioctl(fd, SIOCGIFFLAGS, &ifr), 0);
	ifr.ifr_flags = (short)(ifr.ifr_flags | IFF_UP);
	ck_assert_int_eq(ioctl(fd, SIOCSIFFLAGS, &ifr), 0);
	close(fd);
}

/*
 * Simulators the tests started, one "<pid> <state dir>" line each. A failed
 * check ends the forked test process at once, without its cleanup, so the
 * suite's teardown stops those still running.
 */
static char started_list[512];

static void record_started(const tsim *t)
{
	FILE *f = fopen(started_list, "a");

	ck_assert_ptr_nonnull(f);
	fprintf(f, "%d %s\n", sim_pid(t->sim), t->dir);
	fclose(f);
}

/* Whether pid is still the mosquitto that runs on state_dir (a pid can be reused). */
static int runs_on(int pid, const char *state_dir)
{
	char path[64], cmdline[4096];
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
	f = fopen(path, "r");
	if (f == NULL)
		return 0;
	n = fread(cmdline, 1, sizeof(cmdline) - 1, f);
	fclose(f);
	for (size_t i = 0; i < n; i++)
		if (cmdline[i] == '\0')
			cmdline[i] = ' ';
	cmdline[n] = '\0';
	return strstr(cmdline, "mosquitto") != NULL && strstr(cmdline, state_dir) != NULL;
}

static void suite_setup(void)
{
	snprintf(started_list, sizeof(started_list), "%s/policylag-run-aws-%d.pids",
		 getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp", (int)getpid());
}

static void suite_teardown(void)
{
	char dir[PATH_MAX];
	int pid;
	FILE *f = fopen(started_list, "r");

	while (f != NULL && fscanf(f, "%d %4095s", &pid, dir) == 2) {
		if (!runs_on(pid, dir))
			continue;
		fprintf(stderr, "stopping simulator %d left by a failed test\n", pid);
		kill(pid, SIGTERM);
	}
	if (f != NULL)
		fclose(f);
	remove(started_list);
}

/*
 * Starts the simulator on port 8883 with a 2 s snapshot lifetime.
 * describe_endpoint is the address its DescribeEndpoint returns.
 */
static void start_simulator(tsim *t, const char *describe_endpoint)
{
	use_private_loopback();
	tsim_init(t);
	t->options.mqtt_port = AWS_MQTT_PORT;
	t->options.propagation = "ttl:2s";
	t->options.refresh_phase = "connect";
	tsim_option(t, "api_endpoint", describe_endpoint);
	tsim_start(t);
	record_started(t);
	/* The run finds its keys as the AWS CLI would, in the simulator's file. */
	setenv("AWS_SHARED_CREDENTIALS_FILE", sim_credentials_path(t->sim), 1);
	setenv("AWS_CONFIG_FILE", "/dev/null", 1);
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	unsetenv("AWS_SESSION_TOKEN");
	unsetenv("AWS_PROFILE");
}

/*
 * Writes an aws-target profile whose control and data endpoints are
 * http://127.0.0.1:api_port: DEVICES devices that keep their connection, a
 * grant by the swap kind swap_kind, and probes published through the data
 * plane. mqtt_endpoint NULL leaves the MQTT endpoint to DescribeEndpoint.
 */
static void aws_profile_for(char *buf, size_t len, int api_port, const char *root_ca,
			    const char *mqtt_endpoint, const char *swap_kind)
{
	const char *src = run_env("POLICYLAG_SOURCE_DIR");
	char mqtt_line[128] = "";
	int n;

	if (mqtt_endpoint != NULL)
		snprintf(mqtt_line, sizeof(mqtt_line), "    mqtt_endpoint: %s\n", mqtt_endpoint);
	n = snprintf(buf, len,
		     "name: aws-on-simulator\n"
		     "target:\n"
		     "  kind: aws\n"
		     "  aws:\n"
		     "    region: us-east-1\n"
		     "    control_endpoint: http://127.0.0.1:%d\n"
		     "    data_endpoint: http://127.0.0.1:%d\n"
		     "%s"
		     "    credentials_profile: policylag-sim\n"
		     "    root_ca: %s\n"
		     "fleet:\n"
		     "  devices: %d\n"
		     "  connect_rate: 100/s\n"
		     "groups:\n"
		     "  - name: keep\n"
		     "    strategy: keep-connection\n"
		     "policies:\n"
		     "  before: [%s/profiles/policies/probe-no-receive.json]\n"
		     "  after: [%s/profiles/policies/probe-full.json]\n"
		     "swap:\n"
		     "  kind: %s\n"
		     "  direction: grant\n"
		     "probe:\n"
		     "  kind: prober\n"
		     "  via: http\n"
		     "  interval: 250ms\n"
		     "timing:\n"
		     "  settle: 1s\n"
		     "  observe_timeout: 15s\n"
		     "  drain: 1s\n",
		     api_port, api_port, mqtt_line, root_ca, DEVICES, src, src, swap_kind);
	ck_assert(n > 0 && (size_t)n < len);
}

/* The profile of aws_profile_for with the simulator t as the target. */
static void aws_profile_text(char *buf, size_t len, const tsim *t, const char *mqtt_endpoint,
			     const char *swap_kind)
{
	aws_profile_for(buf, len, sim_api_port(t->sim), sim_ca_path(t->sim), mqtt_endpoint,
			swap_kind);
}

/* Starts the case with its log written to <case dir>/stderr.txt. */
static void start_logged(run_case *rc)
{
	char path[400];
	int saved = dup(STDERR_FILENO);
	int fd;

	snprintf(path, sizeof(path), "%s/stderr.txt", rc->dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_ge(saved, 0);
	dup2(fd, STDERR_FILENO);
	close(fd);
	run_case_start(rc, NULL);
	dup2(saved, STDERR_FILENO);
	close(saved);
}

/* Runs the case with its log written to <case dir>/stderr.txt and returns the exit status. */
static int run_logged(run_case *rc)
{
	start_logged(rc);
	return run_case_wait(rc, RUN_TIMEOUT_S);
}

/* Whether the run's log contains needle. */
static int log_contains(const run_case *rc, const char *needle)
{
	char path[400];
	char line[4096];
	int found = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/stderr.txt", rc->dir);
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	while (!found && fgets(line, sizeof(line), f) != NULL)
		found = strstr(line, needle) != NULL;
	fclose(f);
	return found;
}

/* Every device saw the grant: not censored, an effect after the swap. */
static void assert_all_effective(const run_case *rc)
{
	run_csv *csv = run_read_samples(rc);

	ck_assert_uint_eq(csv->nrows, DEVICES);
	for (size_t r = 0; r < csv->nrows; r++) {
		const char *device = run_csv_get(csv, r, "device");

		ck_assert_msg(strcmp(run_csv_get(csv, r, "censored"), "0") == 0,
			      "device %s is censored", device);
		ck_assert_msg(run_csv_int(csv, r, "latency_ns") > 0,
			      "device %s has no positive latency", device);
		ck_assert_msg(run_csv_int(csv, r, "t_effect_ns") > run_csv_int(csv, r, "t_swap_ns"),
			      "device %s: effect before the swap", device);
	}
	free(csv);
}

/* run.json: the aws target, and probes sent through the data plane without failures. */
static void assert_http_probes(const run_case *rc)
{
	json_t *run = run_read_json(rc);
	json_t *counts = json_object_get(run, "counts");

	ck_assert_str_eq(json_string_value(json_object_get(run, "target")), "aws");
	ck_assert_ptr_nonnull(counts);
	ck_assert_int_gt(json_integer_value(json_object_get(counts, "http_probes_sent")), 0);
	ck_assert_int_eq(json_integer_value(json_object_get(counts, "http_probe_failures")), 0);
	ck_assert_int_eq(json_integer_value(json_object_get(counts, "effective")), DEVICES);
	json_decref(run);
}

/* The number of certificates in the simulator's state file. */
static size_t state_certificates(const tsim *t)
{
	json_t *state = json_load_file(sim_state_path(t->sim), 0, NULL);
	size_t n;

	ck_assert_ptr_nonnull(state);
	n = json_array_size(json_object_get(state, "certificates"));
	json_decref(state);
	return n;
}

START_TEST(test_run_aws_http_probes)
{
	char yaml[4096];
	run_case rc = { .pid = -1 };
	tsim t;

	start_simulator(&t, "127.0.0.1");
	aws_profile_text(yaml, sizeof(yaml), &t, "127.0.0.1", "attach-detach");
	run_case_init(&rc, yaml);
	ck_assert_int_eq(run_logged(&rc), 0);
	assert_all_effective(&rc);
	assert_http_probes(&rc);
	/* The run deletes the certificates it made, as it does on AWS. */
	ck_assert_uint_eq(state_certificates(&t), 0);
	run_case_cleanup(&rc);
	tsim_cleanup(&t);
}
END_TEST

/*
 * No MQTT endpoint in the profile: the run calls DescribeEndpoint, for which
 * the simulator returns "localhost", and every device connects there.
 */
START_TEST(test_run_aws_describe_endpoint)
{
	char yaml[4096];
	run_case rc = { .pid = -1 };
	tsim t;

	start_simulator(&t, "localhost");
	aws_profile_text(yaml, sizeof(yaml), &t, NULL, "attach-detach");
	run_case_init(&rc, yaml);
	ck_assert_int_eq(run_logged(&rc), 0);
	ck_assert_msg(log_contains(&rc, "MQTT localhost:8883"),
		      "the run's target line does not name the endpoint DescribeEndpoint returned");
	ck_assert(log_contains(&rc, "data plane http://127.0.0.1:"));
	assert_all_effective(&rc);
	assert_http_probes(&rc);
	run_case_cleanup(&rc);
	tsim_cleanup(&t);
}
END_TEST

/* A client of the simulator's API with its generated credentials. */
static void open_api(const tsim *t, awsapi_ctx **ctx, awsapi_client **client)
{
	aws_credentials creds;
	awsapi_config cfg;
	char endpoint[64];
	pl_errmsg e = { "" };

	ck_assert_msg(credentials_read_file(&creds, sim_credentials_path(t->sim), "policylag-sim",
					    0, &e) == PL_OK,
		      "%s", e.msg);
	snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", sim_api_port(t->sim));
	awsapi_config_init(&cfg);
	cfg.control_endpoint = endpoint;
	cfg.region = "us-east-1";
	cfg.credentials = &creds;
	ck_assert_msg(awsapi_ctx_create(ctx, &cfg, &e) == PL_OK, "%s", e.msg);
	credentials_clear(&creds);
	ck_assert_int_eq(awsapi_client_create(client, *ctx, &e), PL_OK);
}

/* Reads profiles/policies/<file> as JSON. */
static json_t *shipped_policy(const char *file)
{
	char path[1024];
	json_t *doc;

	snprintf(path, sizeof(path), "%s/profiles/policies/%s", run_env("POLICYLAG_SOURCE_DIR"),
		 file);
	doc = json_load_file(path, 0, NULL);
	ck_assert_msg(doc != NULL, "cannot read %s", path);
	return doc;
}

/* Whether the policy's default version is the JSON of profiles/policies/<file>. */
static int default_document_is(awsapi_client *client, const char *policy, const char *file)
{
	awsapi_policy got;
	json_t *want = shipped_policy(file);
	json_t *have;
	pl_errmsg e = { "" };
	int same;

	ck_assert_msg(awsapi_get_policy(client, policy, &got, NULL, &e) == PL_OK, "%s", e.msg);
	have = json_loads(got.document, 0, NULL);
	ck_assert_ptr_nonnull(have);
	same = json_equal(have, want);
	json_decref(have);
	json_decref(want);
	awsapi_policy_clear(&got);
	return same;
}

/*
 * Leaves policy with AWS's maximum of 5 versions, the default one with the
 * document of profiles/policies/<file>, as earlier runs would.
 */
static void put_five_versions(awsapi_client *client, const char *policy, const char *file)
{
	json_t *doc = shipped_policy(file);
	char *text = json_dumps(doc, JSON_INDENT(2));
	char version[16];
	pl_errmsg e = { "" };

	ck_assert_ptr_nonnull(text);
	ck_assert_msg(awsapi_create_policy(client, policy, text, NULL, NULL, &e) == PL_OK, "%s",
		      e.msg);
	for (int i = 0; i < 4; i++)
		ck_assert_msg(awsapi_create_policy_version(client, policy, text, 1, version,
							   sizeof(version), NULL, &e) == PL_OK,
			      "%s", e.msg);
	free(text);
	json_decref(doc);
}

static size_t version_count(awsapi_client *client, const char *policy)
{
	awsapi_policy_version *versions = NULL;
	size_t count = 0;
	pl_errmsg e = { "" };

	ck_assert_msg(awsapi_list_policy_versions(client, policy, &versions, &count, NULL, &e) ==
			      PL_OK,
		      "%s", e.msg);
	free(versions);
	return count;
}

/* A run whose "before" policy exists before it starts, and a client to inspect it. */
typedef struct existing_case {
	tsim t;
	run_case rc;
	awsapi_ctx *ctx;
	awsapi_client *client;
} existing_case;

/*
 * Gives the "before" policy probe-no-receive 5 versions with the document
 * of profiles/policies/<file>, then runs a swap of swap_kind to the end.
 */
static void existing_case_run(existing_case *x, const char *file, const char *swap_kind)
{
	char yaml[4096];

	memset(x, 0, sizeof(*x));
	start_simulator(&x->t, "127.0.0.1");
	open_api(&x->t, &x->ctx, &x->client);
	put_five_versions(x->client, "probe-no-receive", file);
	aws_profile_text(yaml, sizeof(yaml), &x->t, "127.0.0.1", swap_kind);
	run_case_init(&x->rc, yaml);
	ck_assert_int_eq(run_logged(&x->rc), 0);
	assert_all_effective(&x->rc);
}

static void existing_case_cleanup(existing_case *x)
{
	awsapi_client_free(x->client);
	awsapi_ctx_free(x->ctx);
	run_case_cleanup(&x->rc);
	tsim_cleanup(&x->t);
}

/*
 * A policy-version swap on a "before" policy that a previous run left at 5
 * versions with the "after" document as its default. The run restores the
 * profile's document after deleting old versions to make room for it and for
 * the swap's own version, and the grant is measured.
 */
START_TEST(test_run_aws_existing_policy_restored)
{
	existing_case x;

	existing_case_run(&x, "probe-full.json", "policy-version");
	ck_assert(log_contains(&x.rc, "policy probe-no-receive already existed with another document"));
	ck_assert(log_contains(&x.rc, "deleted its oldest version 1,"));
	ck_assert(log_contains(&x.rc, "deleted its oldest version 2,"));
	/* 5 - 2 deleted + the restored "before" version + the swap's "after" version. */
	ck_assert_uint_eq(version_count(x.client, "probe-no-receive"), 5);
	ck_assert(default_document_is(x.client, "probe-no-receive", "probe-full.json"));
	existing_case_cleanup(&x);
}
END_TEST

/* A "before" policy that already has the profile's document is used as it is. */
START_TEST(test_run_aws_existing_policy_kept)
{
	existing_case x;

	existing_case_run(&x, "probe-no-receive.json", "attach-detach");
	ck_assert(log_contains(&x.rc, "policy probe-no-receive already exists with the profile's document"));
	ck_assert_uint_eq(version_count(x.client, "probe-no-receive"), 5);
	ck_assert(default_document_is(x.client, "probe-no-receive", "probe-no-receive.json"));
	existing_case_cleanup(&x);
}
END_TEST

/* A TCP listener on 127.0.0.1 that never accepts, so a request to it never gets a response. */
static int silent_listener(int *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(fd, 8), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

/* Connections waiting in the listener's queue, taken without blocking. */
static int take_connections(int listener)
{
	int n = 0;
	int fd;

	fcntl(listener, F_SETFL, O_NONBLOCK);
	while ((fd = accept(listener, NULL, NULL)) >= 0) {
		close(fd);
		n++;
	}
	return n;
}

/*
 * Ctrl-C while DescribeEndpoint waits for a control plane that never
 * responds: the call is cancelled in flight, so the run stops as
 * interrupted long before the call's 10 s timeout, without a retry.
 * The credentials are placeholders, because the endpoint never responds.
 */
START_TEST(test_run_aws_sigint_during_describe_endpoint)
{
	char yaml[4096];
	char creds[400];
	run_case rc = { .pid = -1 };
	struct pollfd p;
	json_t *run;
	int port = 0;
	int listener = silent_listener(&port);
	FILE *f;

	aws_profile_for(yaml, sizeof(yaml), port, "/dev/null", NULL, "attach-detach");
	run_case_init(&rc, yaml);
	snprintf(creds, sizeof(creds), "%s/credentials", rc.dir);
	f = fopen(creds, "w");
	ck_assert_ptr_nonnull(f);
	fputs("[policylag-sim]\naws_access_key_id = AKIDEXAMPLE\n"
	      "aws_secret_access_key = placeholder-secret-never-sent\n", f);
	fclose(f);
	chmod(creds, 0600);
	setenv("AWS_SHARED_CREDENTIALS_FILE", creds, 1);
	setenv("AWS_CONFIG_FILE", "/dev/null", 1);
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	unsetenv("AWS_SESSION_TOKEN");
	unsetenv("AWS_PROFILE");
	start_logged(&rc);
	p = (struct pollfd){ listener, POLLIN, 0 };
	ck_assert_msg(poll(&p, 1, 60 * 1000) == 1, "the run never connected to the control plane");
	ck_assert_int_eq(kill(rc.pid, SIGINT), 0);
	/* The call's own timeout is 10 s: a run still waiting for it fails here. */
	ck_assert_int_eq(run_case_wait(&rc, 8), 3);
	ck_assert_int_eq(take_connections(listener), 1);
	ck_assert(!log_contains(&rc, "timed out"));
	run = run_read_json(&rc);
	ck_assert_str_eq(json_string_value(json_object_get(run, "status")), "interrupted");
	json_decref(run);
	close(listener);
	run_case_cleanup(&rc);
}
END_TEST

static Suite *run_aws_suite(void)
{
	Suite *s = suite_create("run_aws");
	TCase *tc = tcase_create("simulator");
	TCase *interrupt = tcase_create("interrupt");

	tcase_set_timeout(tc, 150);
	tcase_add_unchecked_fixture(tc, suite_setup, suite_teardown);
	tcase_add_test(tc, test_run_aws_http_probes);
	tcase_add_test(tc, test_run_aws_describe_endpoint);
	tcase_add_test(tc, test_run_aws_existing_policy_restored);
	tcase_add_test(tc, test_run_aws_existing_policy_kept);
	suite_add_tcase(s, tc);
	tcase_set_timeout(interrupt, 90);
	tcase_add_test(interrupt, test_run_aws_sigint_during_describe_endpoint);
	suite_add_tcase(s, interrupt);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(run_aws_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
