/*
 * Simulator test fixture. See sim_fixture.h.
 */
#include "tests/support/sim_fixture.h"

#include <check.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "simulator/certs.h"
#include "simulator/state.h"

static void fail_on(pl_err rc, const pl_errmsg *e, const char *what)
{
	if (rc != PL_OK)
		ck_abort_msg("%s: %s (%s)", what, e->msg, pl_strerror(rc));
}

void tsim_init(tsim *t)
{
	char ca[PATH_MAX + 16], key[PATH_MAX + 16];
	const char *tmp = getenv("TMPDIR");
	pl_errmsg e;

	memset(t, 0, sizeof(*t));
	snprintf(t->dir, sizeof(t->dir), "%s/policylag-sim-XXXXXX", tmp ? tmp : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(t->dir));
	snprintf(ca, sizeof(ca), "%s/ca.pem", t->dir);
	snprintf(key, sizeof(key), "%s/ca.key", t->dir);
	fail_on(sim_certs_create_ca(ca, key, "policylag test CA", 30, &e), &e, "create CA");
	sim_options_init(&t->options);
	t->options.state_dir = t->dir;
	t->options.propagation = "immediate";
	tsim_option(t, "state_watch", "50ms");
}

void tsim_option(tsim *t, const char *key, const char *value)
{
	pl_errmsg e;

	fail_on(sim_options_add(&t->options, key, value, &e), &e, "simulator option");
}

void tsim_start(tsim *t)
{
	pl_errmsg e;
	pl_err rc = sim_start(&t->sim, &t->options, &e);

	/* A failing unchecked fixture gets no teardown, so clean up here. */
	if (rc != PL_OK)
		tsim_cleanup(t);
	fail_on(rc, &e, "start simulator");
}

void tsim_cleanup(tsim *t)
{
	char cmd[PATH_MAX + 32];

	sim_free(t->sim);
	t->sim = NULL;
	if (getenv("POLICYLAG_KEEP_TEST_DIRS"))
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", t->dir);
}

/* Waits until the plugin logged more state reloads than before. */
static void wait_reload(const tsim *t, int before)
{
	for (int i = 0; i < 200; i++) {
		if (tsim_count_lines(t, "mosquitto.log", "state file reloaded") > before)
			return;
		pl_sleep_ns(50 * PL_NS_PER_MS);
	}
	ck_abort_msg("the plugin did not reload the state file within 10 s");
}

/*
 * Opens the state file, applies fn and saves. When the broker runs, waits
 * until the plugin has reloaded the file, so the change is in its store.
 */
static void with_state(tsim *t, void (*fn)(sim_state *s, void *ctx), void *ctx)
{
	char path[PATH_MAX + 16];
	sim_state_config cfg = { .path = path };
	int reloads = t->sim ? tsim_count_lines(t, "mosquitto.log", "state file reloaded") : 0;
	sim_state *s;
	pl_errmsg e;

	snprintf(path, sizeof(path), "%s/state.json", t->dir);
	fail_on(sim_state_create(&s, &cfg, &e), &e, "state");
	sim_state_lock(s);
	fail_on(sim_state_load(s, &e), &e, "load state");
	fn(s, ctx);
	fail_on(sim_state_save(s, &e), &e, "save state");
	sim_state_unlock(s);
	sim_state_free(s);
	if (t->sim)
		wait_reload(t, reloads);
}

static void register_cert(sim_state *s, void *ctx)
{
	const char *pem = ctx;
	pl_errmsg e;

	fail_on(sim_state_cert_add(s, pem, SIM_CERT_ACTIVE, NULL, NULL, &e), &e, "register cert");
}

void tsim_device_create(tsim *t, const char *name, tsim_device *d)
{
	char ca_path[PATH_MAX + 16], key_path[PATH_MAX + 16];
	char *cert = NULL, *key = NULL;
	sim_ca *ca;
	pl_errmsg e;

	memset(d, 0, sizeof(*d));
	snprintf(d->name, sizeof(d->name), "%s", name);
	snprintf(ca_path, sizeof(ca_path), "%s/ca.pem", t->dir);
	snprintf(key_path, sizeof(key_path), "%s/ca.key", t->dir);
	fail_on(sim_ca_load(&ca, ca_path, key_path, &e), &e, "load CA");
	fail_on(sim_certs_create_keys_and_cert(ca, name, 30, &cert, &key, NULL, &e), &e,
		"device certificate");
	sim_ca_free(ca);
	snprintf(d->cert_path, sizeof(d->cert_path), "%s/%s.pem", t->dir, name);
	snprintf(d->key_path, sizeof(d->key_path), "%s/%s.key", t->dir, name);
	fail_on(sim_certs_write_file(d->cert_path, cert, 0644, &e), &e, "write cert");
	fail_on(sim_certs_write_file(d->key_path, key, 0600, &e), &e, "write key");
	fail_on(sim_certs_id_from_pem(cert, d->cert_id, &e), &e, "cert id");
	snprintf(d->cert_arn, sizeof(d->cert_arn), "arn:aws:iot:us-east-1:123456789012:cert/%s",
		 d->cert_id);
	with_state(t, register_cert, cert);
	free(cert);
	free(key);
}

typedef struct change {
	const char *a, *b;
} change;

static void put_policy(sim_state *s, void *ctx)
{
	const change *c = ctx;
	pl_errmsg e;
	sim_policy_rec *p = sim_state_policy_find(s, c->a);

	if (!p) {
		fail_on(sim_state_policy_create(s, c->a, c->b, NULL, &e), &e, "create policy");
		return;
	}
	/* Keep within AWS's five versions: drop the oldest non-default one. */
	if (p->version_count == SIM_POLICY_MAX_VERSIONS)
		fail_on(sim_state_policy_version_delete(s, c->a,
							p->versions[p->default_index == 0 ? 1 : 0].id,
							&e),
			&e, "delete policy version");
	fail_on(sim_state_policy_version_create(s, c->a, c->b, 1, NULL, &e), &e,
		"create policy version");
}

void tsim_policy_put(tsim *t, const char *name, const char *document)
{
	change c = { name, document };

	with_state(t, put_policy, &c);
}

static void attach(sim_state *s, void *ctx)
{
	const change *c = ctx;
	pl_errmsg e;

	fail_on(sim_state_attach(s, c->a, c->b, &e), &e, "attach policy");
}

static void detach(sim_state *s, void *ctx)
{
	const change *c = ctx;
	pl_errmsg e;

	fail_on(sim_state_detach(s, c->a, c->b, &e), &e, "detach policy");
}

void tsim_attach(tsim *t, const char *policy, const tsim_device *d)
{
	change c = { policy, d->cert_arn };

	with_state(t, attach, &c);
}

void tsim_detach(tsim *t, const char *policy, const tsim_device *d)
{
	change c = { policy, d->cert_arn };

	with_state(t, detach, &c);
}

static void set_status(sim_state *s, void *ctx)
{
	const change *c = ctx;
	sim_cert_status st;
	pl_errmsg e;

	fail_on(sim_cert_status_parse(c->b, &st, &e), &e, "status");
	fail_on(sim_state_cert_set_status(s, c->a, st, &e), &e, "set status");
}

void tsim_cert_status(tsim *t, const tsim_device *d, const char *status)
{
	change c = { d->cert_id, status };

	with_state(t, set_status, &c);
}

tmqtt_options tsim_client_options(const tsim *t, const tsim_device *d, const char *client_id,
				  int mqtt_version)
{
	tmqtt_options o;

	memset(&o, 0, sizeof(o));
	o.port = sim_mqtt_port(t->sim);
	o.ca_path = sim_ca_path(t->sim);
	o.cert_path = d->cert_path;
	o.key_path = d->key_path;
	o.client_id = client_id;
	o.mqtt_version = mqtt_version;
	/* Generous, because the test machines are shared and often loaded. */
	o.timeout_ns = 10000000000LL;
	return o;
}

int tsim_count_lines(const tsim *t, const char *file, const char *needle)
{
	char path[PATH_MAX + 64], line[8192];
	int n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", t->dir, file);
	f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		n += strstr(line, needle) != NULL;
	fclose(f);
	return n;
}

/* Reads "name = value" from the simulator's credentials file. */
static void read_credential(const tsim *t, const char *name, char *out, size_t len)
{
	char line[256];
	FILE *f = fopen(sim_credentials_path(t->sim), "r");

	ck_assert_ptr_nonnull(f);
	out[0] = '\0';
	while (fgets(line, sizeof(line), f)) {
		char *eq = strchr(line, '=');
		if (eq && strncmp(line, name, strlen(name)) == 0) {
			eq += strspn(eq + 1, " ") + 1;
			eq[strcspn(eq, "\r\n")] = '\0';
			snprintf(out, len, "%s", eq);
		}
	}
	fclose(f);
	ck_assert_int_gt(strlen(out), 0);
}

long tsim_api_request(const tsim *t, const char *method, const char *path, const char *service,
		      const char *body)
{
	struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
	char url[512], sigv4[64], userpwd[256], access_key[64], secret_key[128];
	CURL *c = curl_easy_init();
	FILE *sink = fopen("/dev/null", "w");
	long status = 0;

	ck_assert_ptr_nonnull(c);
	ck_assert_ptr_nonnull(sink);
	read_credential(t, "aws_access_key_id", access_key, sizeof(access_key));
	read_credential(t, "aws_secret_access_key", secret_key, sizeof(secret_key));
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", sim_api_port(t->sim), path);
	snprintf(sigv4, sizeof(sigv4), "aws:amz:us-east-1:%s", service);
	snprintf(userpwd, sizeof(userpwd), "%s:%s", access_key, secret_key);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c, CURLOPT_AWS_SIGV4, sigv4);
	curl_easy_setopt(c, CURLOPT_USERPWD, userpwd);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
	curl_easy_setopt(c, CURLOPT_WRITEDATA, sink);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	fclose(sink);
	curl_slist_free_all(headers);
	curl_easy_cleanup(c);
	return status;
}
