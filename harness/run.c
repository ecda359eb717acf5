/* `policylag run`: set-up, the run itself, and the results. */
#include "harness/run.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/parse.h"
#include "harness/awsapi.h"
#include "harness/cli.h"
#include "harness/coordinator.h"
#include "harness/fleet.h"
#include "harness/run_fleet.h"
#include "harness/run_phases.h"
#include "harness/run_report.h"
#include "harness/run_sim.h"
#include "harness/truth.h"
#include "simulator/sim.h"

#define COMPONENT "run"

void run_options_init(run_options *o)
{
	memset(o, 0, sizeof(*o));
	o->shard_index = 1;
	o->shard_count = 1;
	o->tty = -1;
}

pl_err run_parse_shard(const char *text, int *index, int *count, pl_errmsg *e)
{
	const char *slash = strchr(text, '/');
	char left[32];
	int64_t i, n;

	if (slash == NULL || (size_t)(slash - text) >= sizeof(left))
		return pl_errmsg_set(e, PL_ERR_INVALID, "--shard '%s': expected I/N, e.g. 2/4", text);
	memcpy(left, text, (size_t)(slash - text));
	left[slash - text] = '\0';
	if (pl_parse_int64(slash + 1, 1, 10000, &n, e) != PL_OK ||
	    pl_parse_int64(left, 1, n, &i, e) != PL_OK) {
		pl_errmsg_prefix(e, "--shard '%s'", text);
		return PL_ERR_INVALID;
	}
	*index = (int)i;
	*count = (int)n;
	return PL_OK;
}

/* ---- signals ---- */

/* Cancelled by a second signal; written only while signals are blocked. */
static struct awsapi_ctx *volatile signal_api;
/* Set during set-up (DescribeEndpoint, fleet): nothing is measured yet, so one signal cancels. */
static volatile sig_atomic_t cancel_on_first_signal;

static void on_signal(int sig)
{
	char one = 1;
	int saved = errno;

	coord_signal_count++;
	coord_last_signal = sig;
	if (coord_signal_wake_fd >= 0 && write(coord_signal_wake_fd, &one, 1) < 0) {
		/* The pipe is full: the coordinator wakes anyway. */
	}
	if ((coord_signal_count >= 2 || cancel_on_first_signal) && signal_api != NULL)
		awsapi_ctx_cancel(signal_api);
	errno = saved;
}

/*
 * Gives the signal handler the API context before its first request. A
 * signal that came before the context existed cancels it here.
 */
static void arm_signal_cancel(struct awsapi_ctx *api)
{
	sigset_t block, saved;

	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &block, &saved);
	signal_api = api;
	if (api != NULL && coord_signal_count > 0 && cancel_on_first_signal)
		awsapi_ctx_cancel(api);
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
}

static void install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* ---- set-up ---- */

static void print_issues(const profile_issues *issues)
{
	for (size_t i = 0; i < issues->count; i++)
		fprintf(stderr, "policylag: %s: %s\n",
			issues->items[i].severity == PROFILE_SEVERITY_ERROR ? "error" : "warning",
			issues->items[i].message);
}

static int load_profile(const run_options *o, profile **out)
{
	profile_issues issues = { 0 };
	profile_load_opts opts = { o->overrides, o->override_count, &issues, 0 };
	pl_errmsg e = { "" };
	pl_err err = profile_load(out, o->profile_path, &opts, &e);

	print_issues(&issues);
	if (err != PL_OK && issues.errors == 0)
		fprintf(stderr, "policylag: %s\n", e.msg);
	profile_issues_clear(&issues);
	if (err == PL_OK)
		return PL_EXIT_OK;
	/* A profile that cannot be read is a profile error, as in 'validate'. */
	return err == PL_ERR_NOMEM ? PL_EXIT_RUNTIME : PL_EXIT_USAGE;
}

/* runs/<profile name>-<UTC timestamp>, or the --out directory. */
static void choose_dir(const run_options *o, const profile *p, char *buf, size_t len)
{
	time_t now = time(NULL);
	struct tm tm;

	if (o->out_dir != NULL) {
		snprintf(buf, len, "%s", o->out_dir);
		return;
	}
	gmtime_r(&now, &tm);
	if (o->shard_count > 1)
		snprintf(buf, len, "runs/%s-%04d%02d%02dT%02d%02d%02dZ-shard%d", p->name,
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			 tm.tm_sec, o->shard_index);
	else
		snprintf(buf, len, "runs/%s-%04d%02d%02dT%02d%02d%02dZ", p->name, tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static pl_err write_profile_copy(coordinator *c, pl_errmsg *e)
{
	char *text = NULL;
	size_t len = 0;
	pl_err err = profile_format(c->prof, &text, &len, e);

	if (err == PL_OK)
		err = rundir_write_atomic(c->rd, "profile.yaml", text, len, 0644, e);
	free(text);
	return err;
}

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash != NULL && slash[1] != '\0' ? slash + 1 : path;
}

/*
 * The path workers are started from: this program's file, so that ps and top
 * show "policylag". When a rebuild has replaced the file since this process
 * started, /proc/self/exe still names the original.
 */
static const char *self_path(void)
{
	static char exe[PATH_MAX];
	static const char deleted[] = " (deleted)";
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	size_t len;

	if (n <= 0)
		return "/proc/self/exe";
	exe[n] = '\0';
	len = (size_t)n;
	if (len >= sizeof(deleted) - 1 && strcmp(exe + len - (sizeof(deleted) - 1), deleted) == 0)
		return "/proc/self/exe";
	return exe;
}

static pl_err init_coordinator(coordinator *c, const run_options *o, const profile *p,
			       const char *dir, pl_errmsg *e)
{
	memset(c, 0, sizeof(*c));
	c->prof = p;
	c->t_start_ns = pl_mono_ns();
	c->anchor_wall_ns = pl_wall_ns();
	c->shard_index = o->shard_index;
	c->shard_count = o->shard_count;
	c->wake_pipe[0] = c->wake_pipe[1] = -1;
	snprintf(c->run_id, sizeof(c->run_id), "%s", base_name(dir));
	if (gethostname(c->host, sizeof(c->host)) != 0)
		snprintf(c->host, sizeof(c->host), "unknown");
	pthread_mutex_init(&c->notes_lock, NULL);
	if (pipe2(c->wake_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
		return pl_errmsg_set(e, PL_ERR_IO, "pipe: %s", strerror(errno));
	coord_signal_wake_fd = c->wake_pipe[1];
	c->self_exe = o->self_exe != NULL ? o->self_exe : self_path();
	return PL_OK;
}

/* Removes the run's temporary files: simulator state, certificates and keys. */
static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

/* POLICYLAG_KEEP_TMP=1 keeps the directory (simulator logs, state) for debugging. */
static void remove_tree(const char *dir)
{
	const char *keep = getenv("POLICYLAG_KEEP_TMP");

	if (keep != NULL && strcmp(keep, "1") == 0) {
		PL_INFO(COMPONENT, "keeping %s (POLICYLAG_KEEP_TMP=1); it holds private keys", dir);
		return;
	}
	if (dir[0] != '\0')
		nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* The target id fleet.inventory must name: as `policylag fleet` writes it (harness/target.c). */
static void inventory_target_id(const profile *p, const char *sim_dir, char *buf, size_t len)
{
	char real[PATH_MAX];
	const profile_aws *a = &p->target.aws;

	if (p->target.kind == PROFILE_TARGET_SIMULATOR) {
		if (realpath(sim_dir, real) == NULL)
			snprintf(real, sizeof(real), "%s", sim_dir);
		snprintf(buf, len, "simulator:%s", real);
	} else if (a->control_endpoint[0] != '\0') {
		snprintf(buf, len, "aws:%s:%s", a->region, a->control_endpoint);
	} else {
		snprintf(buf, len, "aws:%s:https://iot.%s.amazonaws.com", a->region, a->region);
	}
}

/*
 * Loads fleet.inventory when it exists and fits the run (same target,
 * client id prefix and certificate sharing); *out stays NULL otherwise and
 * the run creates its own certificates. For the simulator target,
 * sim_dir becomes the fleet's simulator state directory.
 */
static pl_err load_inventory(const profile *p, fleet_inventory **out, char *sim_dir,
			     size_t len, pl_errmsg *e)
{
	const char *dir = p->fleet.inventory;
	char fleet_sim[WP_PATH_MAX];
	char want[WP_PATH_MAX + 16];
	fleet_inventory *inv = NULL;
	pl_err err;

	*out = NULL;
	if (dir == NULL || dir[0] == '\0')
		return PL_OK;
	err = fleet_inventory_load(&inv, dir, e);
	if (err == PL_ERR_NOT_FOUND) {
		PL_INFO(COMPONENT, "no fleet in %s; creating certificates for this run", dir);
		pl_errmsg_clear(e);
		return PL_OK;
	}
	if (err != PL_OK)
		return err;
	snprintf(fleet_sim, sizeof(fleet_sim), "%s/sim", dir);
	inventory_target_id(p, fleet_sim, want, sizeof(want));
	if (strcmp(fleet_inventory_target(inv), want) != 0 ||
	    strcmp(fleet_inventory_prefix(inv), p->fleet.client_id_prefix) != 0 ||
	    fleet_inventory_shared(inv) != (p->fleet.certificates == PROFILE_CERTIFICATES_SHARED)) {
		PL_WARN(COMPONENT, "the fleet in %s is for %s with prefix '%s'; creating certificates for this run instead",
			dir, fleet_inventory_target(inv), fleet_inventory_prefix(inv));
		fleet_inventory_free(inv);
		return PL_OK;
	}
	if (p->target.kind == PROFILE_TARGET_SIMULATOR)
		snprintf(sim_dir, len, "%s", fleet_sim);
	*out = inv;
	return PL_OK;
}

/* Certificates that outlive the run are deleted at its end, unless they belong to a fleet. */
static void plan_cleanup(coordinator *c, int persistent_sim)
{
	int aws = c->prof->target.kind == PROFILE_TARGET_AWS;

	c->delete_identities = aws && !c->fleet_reused;
	c->delete_prober = aws || persistent_sim;
	c->delete_observer = aws || persistent_sim;
}

/* Everything between loading the profile and the phases. */
static pl_err prepare(coordinator *c, const run_options *o, char *work_dir, sim **s,
		      pl_errmsg *e)
{
	char sim_dir[WP_PATH_MAX];
	char fleet_dir[WP_PATH_MAX];
	fleet_inventory *inv = NULL;
	pl_err err;

	snprintf(work_dir, WP_PATH_MAX, "%s/policylag-run-XXXXXX",
		 getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(work_dir) == NULL)
		return pl_errmsg_set(e, PL_ERR_IO, "cannot create a temporary directory: %s",
				     strerror(errno));
	snprintf(sim_dir, sizeof(sim_dir), "%s/sim", work_dir);
	snprintf(fleet_dir, sizeof(fleet_dir), "%s/fleet", work_dir);
	if (mkdir(fleet_dir, 0700) != 0)
		return pl_errmsg_set(e, PL_ERR_IO, "cannot create '%s': %s", fleet_dir,
				     strerror(errno));
	err = load_inventory(c->prof, &inv, sim_dir, sizeof(sim_dir), e);
	if (err == PL_OK)
		err = coord_init_devices(c, o->shard_index, o->shard_count, e);
	if (err == PL_OK && c->prof->target.kind == PROFILE_TARGET_SIMULATOR) {
		err = run_sim_start(c, sim_dir, s, e);
		if (err == PL_OK)
			err = truth_create(&c->truth, e);
		if (err == PL_OK)
			c->truth_path = sim_ground_truth_path(*s);
	}
	cancel_on_first_signal = 1;
	if (err == PL_OK)
		err = run_api_create(c, *s, arm_signal_cancel, e);
	if (err == PL_OK && coord_signal_count == 0)
		err = run_fleet_prepare(c, fleet_dir, inv, e);
	plan_cleanup(c, inv != NULL && c->prof->target.kind == PROFILE_TARGET_SIMULATOR);
	fleet_inventory_free(inv);
	cancel_on_first_signal = 0;
	if (err == PL_OK && coord_signal_count == 0)
		err = coord_observer_start(c, e);
	if (err == PL_OK)
		err = coord_write_run_json(c, "running", -1, e);
	if (err == PL_OK)
		err = coord_spawn_workers(c, e);
	return err;
}

static void release(coordinator *c, sim *s, const char *work_dir)
{
	pl_errmsg e = { "" };

	coord_kill_workers(c, PL_NS_PER_S);
	coord_observer_stop(c);
	if (c->api != NULL)
		run_fleet_cleanup(c);
	arm_signal_cancel(NULL);
	awsapi_pool_free(c->pool);
	awsapi_ctx_free(c->api);
	if (s != NULL && sim_stop(s, &e) != PL_OK)
		PL_WARN(COMPONENT, "simulator: %s", e.msg);
	sim_free(s);
	remove_tree(work_dir);
	free(c->swap_job_array);
	truth_free(c->truth);
	for (int i = 0; i < c->nworkers; i++)
		wp_chan_free(c->workers[i].chan);
	free(c->workers);
	free(c->devices);
	free(c->identities);
	free(c->notes);
	free(c->pending);
	free(c->pending_since);
	coord_signal_wake_fd = -1;
	if (c->wake_pipe[0] >= 0)
		close(c->wake_pipe[0]);
	if (c->wake_pipe[1] >= 0)
		close(c->wake_pipe[1]);
	pthread_mutex_destroy(&c->notes_lock);
	progress_free(c->progress);
}

/*
 * Reports a simulator that stopped before the end of the run, for example
 * on a signal from outside or a crash, because the drain then had no broker.
 */
static void check_simulator(coordinator *c, sim *s)
{
	if (s == NULL || sim_running(s))
		return;
	PL_WARN(COMPONENT, "the simulator stopped before the run ended "
		"(POLICYLAG_KEEP_TMP=1 keeps its mosquitto.log)");
	coord_event(c, pl_mono_ns(), "simulator_exited", NULL, NULL);
}

static int use_tty(const run_options *o)
{
	return o->tty >= 0 ? o->tty : isatty(STDERR_FILENO);
}

/* Runs a loaded profile in run directory rd; returns the exit status. */
static int run_loaded(const run_options *o, const profile *p, rundir *rd)
{
	coordinator c;
	char work_dir[WP_PATH_MAX] = "";
	sim *s = NULL;
	pl_errmsg e = { "" };
	pl_err err;
	int status;

	err = init_coordinator(&c, o, p, rundir_path(rd), &e);
	c.rd = rd;
	rundir_set_anchor(rd, c.t_start_ns);
	if (err == PL_OK)
		err = progress_create(&c.progress, stderr, use_tty(o), 5 * PL_NS_PER_S,
				      c.t_start_ns);
	if (err == PL_OK)
		err = write_profile_copy(&c, &e);
	if (err == PL_OK)
		err = prepare(&c, o, work_dir, &s, &e);
	if (err == PL_ERR_INTERRUPTED || (err != PL_OK && coord_signal_count > 0)) {
		coord_request_stop(&c, "interrupted during set-up");
	} else if (err != PL_OK) {
		c.failed = 1;
		snprintf(c.failure, sizeof(c.failure), "%s", e.msg);
		PL_ERROR(COMPONENT, "%s", e.msg);
	} else {
		run_phases(&c);
	}
	/* Without workers there is nothing to drain and no device to report. */
	if (c.nworkers > 0 && c.workers[0].pid > 0)
		run_drain(&c);
	check_simulator(&c, s);
	status = run_report(&c);
	release(&c, s, work_dir);
	return status;
}

int run_execute(const run_options *o)
{
	profile *p = NULL;
	rundir *rd = NULL;
	char dir[WP_PATH_MAX];
	pl_errmsg e = { "" };
	int status = load_profile(o, &p);

	if (status != PL_EXIT_OK)
		return status;
	choose_dir(o, p, dir, sizeof(dir));
	if (rundir_create(&rd, dir, &e) != PL_OK) {
		fprintf(stderr, "policylag: %s\n", e.msg);
		profile_free(p);
		return PL_EXIT_RUNTIME;
	}
	install_signals();
	PL_INFO(COMPONENT, "run %s: %lld devices, writing %s", p->name,
		(long long)p->fleet.devices, dir);
	status = run_loaded(o, p, rd);
	rundir_free(rd);
	profile_free(p);
	return status;
}
