/*
 * `policylag sim`: runs the AWS-IoT-like simulator (mosquitto with the
 * policylag plugin) in the foreground until SIGINT or SIGTERM.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/parse.h"
#include "harness/commands.h"
#include "simulator/options.h"
#include "simulator/sim.h"

enum {
	OPT_STATE_DIR = 1,
	OPT_PORT,
	OPT_API_PORT,
	OPT_NO_API,
	OPT_PROPAGATION,
	OPT_REFRESH_PHASE,
	OPT_CACHED_CONNECT,
	OPT_OPTION,
	OPT_CONFIG,
	OPT_PLUGIN,
	OPT_MOSQUITTO,
};

static const cli_option sim_options_table[] = {
	{ OPT_STATE_DIR, "state-dir", 'd', "DIR",
	  "Keep the CA, server certificate, state file and logs in DIR, created if "
	  "missing.",
	  "./policylag-sim" },
	{ OPT_PORT, "port", 'p', "PORT", "Listen for MQTT over TLS on this port of 127.0.0.1; 0 picks a free port.",
	  "0" },
	{ OPT_API_PORT, "api-port", 0, "PORT",
	  "Serve the HTTP control-plane API on this port of 127.0.0.1; 0 picks a "
	  "free port.", "0" },
	{ OPT_NO_API, "no-api", 0, NULL, "Run without the HTTP API.", NULL },
	{ OPT_PROPAGATION, "propagation", 0, "MODEL",
	  "When connections see policy changes: immediate, ttl:DURATION or "
	  "uniform:DURATION-DURATION.",
	  "uniform:360s-480s" },
	{ OPT_REFRESH_PHASE, "refresh-phase", 0, "PHASE",
	  "Start of each connection's refresh schedule: connect or random.", "connect" },
	{ OPT_CACHED_CONNECT, "cached-connect", 0, NULL,
	  "Let a new connection reuse the cached policies of its certificate and "
	  "client id until their refresh is due, instead of taking a fresh snapshot.",
	  NULL },
	{ OPT_OPTION, "option", 'o', "KEY=VALUE",
	  "Set one plugin option (see docs/simulator.md); repeatable.", NULL },
	{ OPT_CONFIG, "config", 'c', "FILE",
	  "Read plugin options from FILE, one \"KEY VALUE\" per line, # starts a "
	  "comment.", NULL },
	{ OPT_PLUGIN, "plugin", 0, "PATH", "Load this plugin.",
	  "$POLICYLAG_PLUGIN, else policylag_sim.so next to this program" },
	{ OPT_MOSQUITTO, "mosquitto", 0, "PATH", "Run this mosquitto broker.", "/usr/sbin/mosquitto" },
	CLI_OPTIONS_END,
};

#define MAX_CONFIG_LINES SIM_MAX_EXTRA_OPTS

typedef struct sim_cli {
	sim_options opts;
	char *owned[2 * MAX_CONFIG_LINES]; /* strings the options point to */
	int owned_count;
	int no_api;        /* --no-api was given */
	int api_port_given; /* --api-port was given */
} sim_cli;

static char *keep(sim_cli *c, const char *text, size_t len)
{
	char *copy;

	if (c->owned_count == (int)(sizeof(c->owned) / sizeof(c->owned[0])))
		return NULL;
	copy = strndup(text, len);
	if (copy)
		c->owned[c->owned_count++] = copy;
	return copy;
}

static pl_err add_option(sim_cli *c, const char *key, size_t key_len, const char *value,
			 pl_errmsg *e)
{
	char *k = keep(c, key, key_len);
	char *v = keep(c, value, strlen(value));

	if (!k || !v)
		return pl_errmsg_set(e, PL_ERR_LIMIT, "too many plugin options (maximum %d)",
				     MAX_CONFIG_LINES);
	return sim_options_add(&c->opts, k, v, e);
}

static pl_err add_key_value(sim_cli *c, const char *text, pl_errmsg *e)
{
	const char *eq = strchr(text, '=');

	if (!eq || eq == text)
		return pl_errmsg_set(e, PL_ERR_INVALID, "--option '%s': expected KEY=VALUE", text);
	return add_option(c, text, (size_t)(eq - text), eq + 1, e);
}

static pl_err read_config(sim_cli *c, const char *path, pl_errmsg *e)
{
	char line[1024];
	int number = 0;
	FILE *f = fopen(path, "r");

	if (!f)
		return pl_errmsg_set(e, PL_ERR_IO, "%s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		char *key = line + strspn(line, " \t");
		size_t key_len = strcspn(key, " \t\r\n");
		char *value = key + key_len + strspn(key + key_len, " \t");
		number++;
		value[strcspn(value, "\r\n")] = '\0';
		if (*key == '#' || key_len == 0)
			continue;
		if (*value == '\0' || add_option(c, key, key_len, value, e) != PL_OK) {
			fclose(f);
			if (*value == '\0')
				return pl_errmsg_set(e, PL_ERR_INVALID, "%s:%d: expected KEY VALUE",
						     path, number);
			pl_errmsg_prefix(e, "%s:%d", path, number);
			return PL_ERR_INVALID;
		}
	}
	fclose(f);
	return PL_OK;
}

static pl_err parse_port(const char *value, int *out, pl_errmsg *e)
{
	int64_t port;
	pl_err rc = pl_parse_int64(value, 0, 65535, &port, e);

	if (rc == PL_OK)
		*out = (int)port;
	return rc;
}

static pl_err on_option(void *ctx, int id, const char *value, pl_errmsg *e)
{
	sim_cli *c = ctx;

	switch (id) {
	case OPT_STATE_DIR: c->opts.state_dir = value; return PL_OK;
	case OPT_PORT: return parse_port(value, &c->opts.mqtt_port, e);
	case OPT_API_PORT:
		c->api_port_given = 1;
		return parse_port(value, &c->opts.api_port, e);
	case OPT_NO_API:
		c->no_api = 1;
		return PL_OK;
	case OPT_PROPAGATION: c->opts.propagation = value; return PL_OK;
	case OPT_REFRESH_PHASE: c->opts.refresh_phase = value; return PL_OK;
	case OPT_CACHED_CONNECT: c->opts.connect_fresh_snapshot = 0; return PL_OK;
	case OPT_OPTION: return add_key_value(c, value, e);
	case OPT_CONFIG: return read_config(c, value, e);
	case OPT_PLUGIN: c->opts.plugin_path = value; return PL_OK;
	case OPT_MOSQUITTO: c->opts.mosquitto_path = value; return PL_OK;
	default: return pl_errmsg_set(e, PL_ERR_INTERNAL, "unhandled option %d", id);
	}
}

static volatile sig_atomic_t stop_requested;

static void on_signal(int signo)
{
	(void)signo;
	stop_requested = 1;
}

static void print_endpoints(const sim *s)
{
	printf("mqtt_endpoint %s:%d\n", sim_mqtt_host(s), sim_mqtt_port(s));
	if (sim_api_port(s) > 0) {
		printf("api_endpoint http://%s:%d\n", sim_mqtt_host(s), sim_api_port(s));
		printf("credentials %s\n", sim_credentials_path(s));
	}
	printf("ca %s\n", sim_ca_path(s));
	printf("state_dir %s\n", sim_state_dir(s));
	printf("ground_truth %s\n", sim_ground_truth_path(s));
	fflush(stdout);
}

/* Runs the simulator until a signal arrives or mosquitto exits. */
static int serve(const sim_options *o)
{
	struct sigaction sa = { .sa_handler = on_signal };
	pl_errmsg e;
	sim *s;
	int status = PL_EXIT_OK;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (sim_start(&s, o, &e) != PL_OK) {
		fprintf(stderr, "policylag sim: %s\n", e.msg);
		return PL_EXIT_RUNTIME;
	}
	print_endpoints(s);
	PL_INFO("sim", "simulator running (pid %d); stop with Ctrl-C", sim_pid(s));
	while (!stop_requested && sim_running(s))
		pl_sleep_ns(100 * PL_NS_PER_MS);
	if (sim_stop(s, &e) != PL_OK) {
		fprintf(stderr, "policylag sim: %s\n", e.msg);
		status = PL_EXIT_RUNTIME;
	}
	sim_free(s);
	PL_INFO("sim", "simulator stopped");
	return status;
}

static int run_sim(const cli_command *self, int argc, char **argv)
{
	sim_cli c;
	pl_errmsg e;
	int first, help = 0, status;

	memset(&c, 0, sizeof(c));
	sim_options_init(&c.opts);
	c.opts.state_dir = "./policylag-sim";
	if (cli_parse(self, argc, argv, on_option, &c, &first, &help, &e) != PL_OK) {
		status = cli_usage_error(self, e.msg);
		goto out;
	}
	if (help) {
		status = PL_EXIT_OK;
		goto out;
	}
	if (first < argc) {
		pl_errmsg_set(&e, PL_ERR_INVALID, "unexpected argument '%s'", argv[first]);
		status = cli_usage_error(self, e.msg);
		goto out;
	}
	if (c.no_api && c.api_port_given) {
		status = cli_usage_error(self, "--no-api and --api-port conflict: "
					       "give either one, not both");
		goto out;
	}
	if (c.no_api)
		c.opts.api_port = -1;
	if (plugin_options_check(&c.opts, &e) != PL_OK) {
		status = cli_usage_error(self, e.msg);
		goto out;
	}
	/* Checked here because the simulator creates its CA and state directory first. */
	if (c.opts.plugin_path != NULL && access(c.opts.plugin_path, R_OK) != 0) {
		pl_errmsg_set(&e, PL_ERR_NOT_FOUND, "--plugin %s: %s", c.opts.plugin_path,
			      strerror(errno));
		status = cli_usage_error(self, e.msg);
		goto out;
	}
	status = serve(&c.opts);
out:
	for (int i = 0; i < c.owned_count; i++)
		free(c.owned[i]);
	return status;
}

const cli_command cmd_sim = {
	.name = "sim",
	.synopsis = "sim [options]",
	.summary = "Run the AWS-IoT-like simulator in the foreground.",
	.description =
		"Starts mosquitto with the policylag plugin on 127.0.0.1: MQTT over TLS with "
		"client certificates, AWS IoT policy authorization with delayed propagation, "
		"AWS's quotas, and the AWS IoT control-plane HTTP API. Creates the simulator CA "
		"and server certificate in the state directory on first use. Prints the "
		"endpoints, then runs until SIGINT or SIGTERM.",
	.options = sim_options_table,
	.examples = "policylag sim\n"
		    "policylag sim --state-dir /tmp/sim --propagation ttl:30s\n"
		    "policylag sim -o mqtt311_subscribe_denied=suback_failure -o "
		    "publish_rate_per_connection=off",
	.run = run_sim,
	.exit_status = "0 stopped by SIGINT or SIGTERM, 2 usage error, 3 the simulator could not start or failed.",
};
