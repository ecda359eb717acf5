#include "tests/support/sim_api_fixture.h"

#include <check.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simulator/api.h"
#include "simulator/certs.h"
#include "simulator/state.h"

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void sim_api_fixture_path(const sim_api_fixture *f, const char *leaf, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", f->dir, leaf);
}

static void configure(sim_api_fixture *f, sim_api_config *cfg, const char *const *options)
{
	char creds[128], ca[128], ca_key[128];
	pl_errmsg e = { "" };

	sim_api_fixture_path(f, "credentials", creds, sizeof(creds));
	sim_api_fixture_path(f, "ca.pem", ca, sizeof(ca));
	sim_api_fixture_path(f, "ca.key", ca_key, sizeof(ca_key));
	ck_assert_msg(sim_certs_create_ca(ca, ca_key, "policylag test CA", 30, &e) == PL_OK, "%s",
		      e.msg);
	ck_assert_int_eq(sim_api_config_option(cfg, "api_credentials_file", creds, &e), PL_OK);
	ck_assert_int_eq(sim_api_config_option(cfg, "api_ca_cert", ca, &e), PL_OK);
	ck_assert_int_eq(sim_api_config_option(cfg, "api_ca_key", ca_key, &e), PL_OK);
	for (size_t i = 0; options != NULL && options[i] != NULL; i += 2)
		ck_assert_msg(sim_api_config_option(cfg, options[i], options[i + 1], &e) == PL_OK,
			      "%s", e.msg);
}

void sim_api_fixture_start(sim_api_fixture *f, const char *const *options)
{
	char creds[128], state[128];
	sim_state_config scfg = { .region = "us-east-1", .account = "123456789012" };
	sim_api_config *cfg = NULL;
	pl_errmsg e = { "" };

	memset(f, 0, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/policylag-simapi.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(f->dir));
	sim_api_fixture_path(f, "state.json", state, sizeof(state));
	scfg.path = state;
	ck_assert_msg(sim_state_create(&f->state, &scfg, &e) == PL_OK, "%s", e.msg);
	ck_assert_int_eq(sim_api_config_create(&cfg), PL_OK);
	configure(f, cfg, options);
	ck_assert_msg(sim_api_start(&f->api, cfg, f->state, &e) == PL_OK, "%s", e.msg);
	sim_api_config_free(cfg);
	snprintf(f->endpoint, sizeof(f->endpoint), "http://127.0.0.1:%u",
		 sim_api_listen_port(f->api));
	sim_api_fixture_path(f, "credentials", creds, sizeof(creds));
	ck_assert_msg(credentials_read_file(&f->creds, creds, "policylag-sim", 0, &e) == PL_OK,
		      "%s", e.msg);
}

void sim_api_fixture_stop(sim_api_fixture *f)
{
	sim_api_stop(f->api);
	sim_state_free(f->state);
	credentials_clear(&f->creds);
	nftw(f->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

size_t sim_api_fixture_certificates(sim_api_fixture *f)
{
	size_t n;

	sim_state_lock(f->state);
	n = sim_state_cert_count(f->state);
	sim_state_unlock(f->state);
	return n;
}
