/* `policylag run PROFILE`: the command-line front of harness/run.c. */
#include <stdio.h>
#include <string.h>

#include "harness/commands.h"
#include "harness/run.h"

enum { OPT_SET = 1, OPT_OUT, OPT_SHARD, OPT_PROGRESS };

static const cli_option run_options_table[] = {
	{ OPT_SET, "set", 's', "KEY=VALUE",
	  "Override one profile key, e.g. fleet.devices=200 or probe.interval=500ms; repeatable.",
	  NULL },
	{ OPT_OUT, "out", 'o', "DIR", "Write the run directory to DIR.",
	  "runs/<profile name>-<UTC timestamp>" },
	{ OPT_SHARD, "shard", 0, "I/N",
	  "Run only the I-th of N equal slices of the devices (1-based), for runs over several "
	  "machines; combine the run directories with 'policylag merge'.",
	  "1/1" },
	{ OPT_PROGRESS, "progress", 0, "MODE",
	  "Progress display: auto, line (live line) or log (a line every 5 s).", "auto" },
	CLI_OPTIONS_END,
};

static pl_err on_run_option(void *ctx, int id, const char *value, pl_errmsg *e)
{
	run_options *o = ctx;

	switch (id) {
	case OPT_SET:
		if (strchr(value, '=') == NULL)
			return pl_errmsg_set(e, PL_ERR_INVALID,
					     "--set '%s': expected KEY=VALUE", value);
		if (o->override_count >= RUN_MAX_OVERRIDES)
			return pl_errmsg_set(e, PL_ERR_LIMIT, "--set: at most %d overrides",
					     RUN_MAX_OVERRIDES);
		o->overrides[o->override_count++] = value;
		return PL_OK;
	case OPT_OUT:
		o->out_dir = value;
		return PL_OK;
	case OPT_SHARD:
		return run_parse_shard(value, &o->shard_index, &o->shard_count, e);
	case OPT_PROGRESS:
		if (strcmp(value, "auto") == 0)
			o->tty = -1;
		else if (strcmp(value, "line") == 0)
			o->tty = 1;
		else if (strcmp(value, "log") == 0)
			o->tty = 0;
		else
			return pl_errmsg_set(e, PL_ERR_INVALID,
					     "--progress '%s': expected auto, line or log", value);
		return PL_OK;
	default:
		return pl_errmsg_set(e, PL_ERR_INTERNAL, "unhandled option %d", id);
	}
}

/*
 * Options may come before and after PROFILE. cli_parse stops at the first
 * operand, so parsing resumes after each operand, with the operand in the
 * place of argv[0].
 */
static int run_command(const cli_command *self, int argc, char **argv)
{
	run_options o;
	pl_errmsg e = { "" };
	int base = 0;

	run_options_init(&o);
	while (base < argc) {
		int first = 1;
		int help = 0;

		if (cli_parse(self, argc - base, argv + base, on_run_option, &o, &first, &help,
			      &e) != PL_OK)
			return cli_usage_error(self, e.msg);
		if (help)
			return PL_EXIT_OK;
		if (base + first >= argc)
			break;
		if (o.profile_path != NULL)
			return cli_usage_error(self, "expected one PROFILE");
		o.profile_path = argv[base + first];
		base += first;
	}
	if (o.profile_path == NULL)
		return cli_usage_error(self, "missing PROFILE");
	return run_execute(&o);
}

const cli_command cmd_run = {
	"run",
	"run PROFILE [--set KEY=VALUE]... [--out DIR] [--shard I/N]",
	"Measure how fast a policy change reaches the devices of a profile.",
	"Loads PROFILE, prepares the fleet, starts the embedded simulator when the\n"
	"target is 'simulator', connects the devices from worker processes, swaps\n"
	"the policies, observes until every device saw the change or the observation\n"
	"timeout passed, and writes the run directory (profile.yaml, run.json,\n"
	"samples.csv, events.jsonl, summary.json, report.html, junit.xml).\n"
	"Ctrl-C stops the run and keeps valid partial files; a second Ctrl-C stops\n"
	"at once.",
	run_options_table,
	"  policylag run profiles/seed-verification.yaml\n"
	"  policylag run profiles/scale-10k.yaml --set fleet.devices=2000 --out runs/2k\n"
	"  policylag run profiles/scale-10k.yaml --shard 2/4\n",
	run_command,
	NULL,
};
