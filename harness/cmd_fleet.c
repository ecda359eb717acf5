/*
 * policylag fleet create|list|delete PROFILE: provisions the profile's
 * devices (keys and certificates) ahead of runs, shows them, and deletes
 * them again.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/parse.h"
#include "harness/commands.h"
#include "harness/fleet.h"
#include "harness/fleet_target.h"
#include "profiles/profile.h"

#define FLEET_MAX_SETS 64

enum { OPT_SET = 1, OPT_DIR, OPT_THREADS, OPT_DEVICES };

static const cli_option fleet_options[] = {
	{ OPT_SET, "set", 's', "KEY=VALUE",
	  "Override a profile key (dotted path, as in 'run'); repeatable.", NULL },
	{ OPT_DIR, "dir", 'd', "DIR",
	  "Fleet directory holding inventory.json and keys/.",
	  "the profile's fleet.inventory, else fleets/<profile name>" },
	{ OPT_THREADS, "threads", 't', "N", "Concurrent API calls (1 to 64).", "4" },
	{ OPT_DEVICES, "devices", 0, NULL, "With list: print one line per device.", NULL },
	CLI_OPTIONS_END,
};

typedef struct fleet_args {
	const char *sets[FLEET_MAX_SETS];
	size_t set_count;
	const char *dir;
	unsigned threads;
	int devices;
	const char *operands[2]; /* action, profile */
	size_t operand_count;
} fleet_args;

static volatile sig_atomic_t stop_flag;
static awsapi_ctx *volatile signal_api;

/* First signal: finish the calls in flight and save. Second: cancel waits and retries too. */
static void on_signal(int sig)
{
	(void)sig;
	if (stop_flag && signal_api != NULL)
		awsapi_ctx_cancel(signal_api);
	stop_flag = 1;
}

static void install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

static pl_err on_option(void *ctx, int id, const char *value, pl_errmsg *e)
{
	fleet_args *a = ctx;
	uint64_t n;

	switch (id) {
	case OPT_SET:
		if (a->set_count == FLEET_MAX_SETS)
			return pl_errmsg_set(e, PL_ERR_LIMIT, "too many --set options (at most %d)",
					     FLEET_MAX_SETS);
		a->sets[a->set_count++] = value;
		return PL_OK;
	case OPT_DIR:
		a->dir = value;
		return PL_OK;
	case OPT_THREADS:
		if (pl_parse_uint64(value, 1, 64, &n, e) != PL_OK) {
			pl_errmsg_prefix(e, "--threads");
			return PL_ERR_INVALID;
		}
		a->threads = (unsigned)n;
		return PL_OK;
	case OPT_DEVICES:
		a->devices = 1;
		return PL_OK;
	default:
		return pl_errmsg_set(e, PL_ERR_INTERNAL, "unhandled option %d", id);
	}
}

/* Options may come before, between and after the two operands. */
static pl_err parse_args(const cli_command *self, int argc, char **argv, fleet_args *args,
			 int *shown, pl_errmsg *e)
{
	char **rest = argv;
	int count = argc;

	while (count > 1) {
		int first = 1;
		pl_err rc = cli_parse(self, count, rest, on_option, args, &first, shown, e);

		if (rc != PL_OK || *shown || first >= count)
			return rc;
		if (args->operand_count == 2)
			return pl_errmsg_set(e, PL_ERR_INVALID, "unexpected argument '%s'", rest[first]);
		args->operands[args->operand_count++] = rest[first];
		rest += first;
		count -= first;
	}
	return PL_OK;
}

static pl_err load_profile(const fleet_args *args, profile **out, pl_errmsg *e)
{
	profile_load_opts opts;

	memset(&opts, 0, sizeof(opts));
	opts.overrides = args->sets;
	opts.override_count = args->set_count;
	opts.skip_policy_files = 1; /* the fleet needs no policy documents */
	return profile_load(out, args->operands[1], &opts, e);
}

/* ---- list ---- */

static void print_device(const fleet_device *d)
{
	char when[32];

	pl_wall_format(d->created_ns, when, sizeof(when));
	printf("  %6lld  %-24s %.12s  %s  %s\n", (long long)d->index, d->client_id,
	       d->certificate_id, when, d->key_path);
}

static int run_list(const fleet_args *args, const char *dir)
{
	fleet_inventory *inv = NULL;
	char when[32];
	pl_errmsg e = { "" };
	pl_err err = fleet_inventory_load(&inv, dir, &e);

	if (err != PL_OK) {
		fprintf(stderr, "policylag fleet list: %s\n", e.msg);
		return err == PL_ERR_NOT_FOUND ? PL_EXIT_USAGE : PL_EXIT_RUNTIME;
	}
	pl_wall_format(fleet_inventory_created_ns(inv), when, sizeof(when));
	printf("fleet %s\n  target       %s\n  devices      %zu, client ids %s<index>\n"
	       "  certificates %s, %s\n  created      %s\n",
	       dir, fleet_inventory_target(inv), fleet_inventory_count(inv),
	       fleet_inventory_prefix(inv), fleet_inventory_shared(inv) ? "shared" : "one per device",
	       fleet_inventory_provisioning(inv) == FLEET_PROVISION_CSR
		       ? "from local EC P-256 keys (CreateCertificateFromCsr)"
		       : "with keys made by AWS (CreateKeysAndCertificate)",
	       when);
	if (args->devices) {
		printf("  %6s  %-24s %-12s  %-24s  %s\n", "index", "client id", "certificate",
		       "created", "key");
		for (size_t i = 0; i < fleet_inventory_count(inv); i++)
			print_device(fleet_inventory_device(inv, i));
	}
	fleet_inventory_free(inv);
	return PL_EXIT_OK;
}

/* ---- create and delete ---- */

static void settings_from_profile(fleet_settings *s, const profile *p, const fleet_args *args,
				  const char *dir, const char *target_id)
{
	fleet_settings_init(s);
	s->dir = dir;
	s->target_id = target_id;
	s->client_id_prefix = p->fleet.client_id_prefix;
	s->devices = p->fleet.devices;
	s->shared_certificate = p->fleet.certificates == PROFILE_CERTIFICATES_SHARED;
	s->provisioning = p->fleet.provisioning == PROFILE_PROVISIONING_CSR
				  ? FLEET_PROVISION_CSR
				  : FLEET_PROVISION_KEYS_AND_CERTIFICATE;
	if (args->threads > 0)
		s->threads = args->threads;
	s->progress_tty = isatty(STDERR_FILENO);
	s->stop = &stop_flag;
}

static void print_result(const char *action, const char *dir, const fleet_result *r)
{
	if (strcmp(action, "create") == 0)
		printf("fleet %s: %zu devices (%zu reused, %zu certificates created, %zu failed), "
		       "%llu throttled responses\n",
		       dir, r->devices, r->reused, r->created, r->failed,
		       (unsigned long long)r->throttled);
	else
		printf("fleet %s: %zu certificates deleted, %zu failed, %zu devices left, "
		       "%llu throttled responses\n",
		       dir, r->deleted, r->failed, r->devices, (unsigned long long)r->throttled);
}

static int run_change(const fleet_args *args, const profile *p, const char *dir)
{
	const char *action = args->operands[0];
	fleet_target ft;
	fleet_settings s;
	fleet_result r;
	pl_errmsg e = { "" };
	pl_err err = fleet_target_open(&ft, p, dir, &e);

	if (err != PL_OK) {
		fprintf(stderr, "policylag fleet %s: %s\n", action, e.msg);
		return PL_EXIT_RUNTIME;
	}
	signal_api = ft.api;
	install_signals();
	settings_from_profile(&s, p, args, dir, ft.target.id);
	memset(&r, 0, sizeof(r));
	if (strcmp(action, "create") == 0)
		err = fleet_create(&s, ft.api, &r, &e);
	else
		err = fleet_delete(&s, ft.api, &r, &e);
	signal_api = NULL;
	fleet_target_close(&ft);
	print_result(action, dir, &r);
	if (err != PL_OK) {
		fprintf(stderr, "policylag fleet %s: %s\n", action, e.msg);
		return PL_EXIT_RUNTIME;
	}
	return PL_EXIT_OK;
}

static int fleet_run(const cli_command *self, int argc, char **argv)
{
	fleet_args args;
	profile *p = NULL;
	char dir[FLEET_PATH_MAX];
	pl_errmsg e = { "" };
	int shown = 0, status;

	memset(&args, 0, sizeof(args));
	if (parse_args(self, argc, argv, &args, &shown, &e) != PL_OK)
		return cli_usage_error(self, e.msg);
	if (shown)
		return PL_EXIT_OK;
	if (args.operand_count != 2)
		return cli_usage_error(self, "expected an action (create, list or delete) and PROFILE");
	if (strcmp(args.operands[0], "create") != 0 && strcmp(args.operands[0], "list") != 0 &&
	    strcmp(args.operands[0], "delete") != 0)
		return cli_usage_error(self, "the action must be create, list or delete");
	if (load_profile(&args, &p, &e) != PL_OK) {
		fprintf(stderr, "policylag fleet: %s\n", e.msg);
		return PL_EXIT_USAGE;
	}
	if (fleet_target_dir(p, args.dir, dir, sizeof(dir), &e) != PL_OK)
		status = cli_usage_error(self, e.msg);
	else if (strcmp(args.operands[0], "list") == 0)
		status = run_list(&args, dir);
	else
		status = run_change(&args, p, dir);
	profile_free(p);
	return status;
}

const cli_command cmd_fleet = {
	"fleet",
	"fleet create|list|delete PROFILE [--set KEY=VALUE]... [--dir DIR] [--threads N]",
	"Create, show or delete a profile's device certificates ahead of runs.",
	"create makes a key pair and certificate for each of the profile's fleet.devices (one "
	"shared certificate when fleet.certificates is shared) and records them in DIR/"
	"inventory.json, with keys in DIR/keys (mode 0600). It keeps under the control-plane "
	"rate limits, retries throttled calls, and saves as it goes: an interrupted create "
	"(Ctrl-C) keeps every device made so far, and running it again creates only the rest. "
	"An inventory for another target is refused. On the simulator target, the simulator "
	"runs for the command's duration with its state in DIR/sim. delete detaches every "
	"policy from each certificate, deactivates and deletes it, then removes the files. "
	"list prints the inventory without contacting the target.",
	fleet_options,
	"policylag fleet create profiles/scale-10k.yaml\n"
	"policylag fleet list profiles/scale-10k.yaml --devices\n"
	"policylag fleet delete profiles/scale-10k.yaml --dir /var/lib/policylag/fleet-a\n",
	fleet_run,
	NULL,
};
