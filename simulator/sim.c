/*
 * Launcher of mosquitto with the policylag plugin. See sim.h.
 */
#include "simulator/sim.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "simulator/certs.h"
#include "simulator/options.h"

#ifndef POLICYLAG_PREFIX
#define POLICYLAG_PREFIX "/usr/local"
#endif

#define CERT_DAYS 3650
#define STOP_GRACE_NS (5 * PL_NS_PER_S)

struct sim {
	pid_t pid;
	int mqtt_port;
	int api_port;
	int exit_status; /* valid after the child was reaped */
	int reaped;
	char state_dir[PATH_MAX];
	char ca_path[PATH_MAX];
	char ca_key_path[PATH_MAX];
	char server_path[PATH_MAX];
	char server_key_path[PATH_MAX];
	char state_path[PATH_MAX];
	char conf_path[PATH_MAX];
	char log_path[PATH_MAX];
	char ground_truth_path[PATH_MAX];
	char denials_path[PATH_MAX];
	char credentials_path[PATH_MAX];
};

void sim_options_init(sim_options *o)
{
	memset(o, 0, sizeof(*o));
	o->mosquitto_path = "/usr/sbin/mosquitto";
	o->propagation = "uniform:360s-480s";
	o->refresh_phase = "connect";
	o->connect_fresh_snapshot = 1;
	o->start_timeout_ns = 10 * PL_NS_PER_S;
}

pl_err sim_options_add(sim_options *o, const char *key, const char *value, pl_errmsg *e)
{
	if (o->extra_count == SIM_MAX_EXTRA_OPTS)
		return pl_errmsg_set(e, PL_ERR_LIMIT, "too many simulator options (maximum %d)",
				     SIM_MAX_EXTRA_OPTS);
	o->extra[o->extra_count].key = key;
	o->extra[o->extra_count].value = value;
	o->extra_count++;
	return PL_OK;
}

const char *sim_mqtt_host(const sim *s) { (void)s; return "127.0.0.1"; }
int sim_mqtt_port(const sim *s) { return s->mqtt_port; }
int sim_api_port(const sim *s) { return s->api_port; }
const char *sim_ca_path(const sim *s) { return s->ca_path; }
const char *sim_ca_key_path(const sim *s) { return s->ca_key_path; }
const char *sim_state_dir(const sim *s) { return s->state_dir; }
const char *sim_state_path(const sim *s) { return s->state_path; }
const char *sim_ground_truth_path(const sim *s) { return s->ground_truth_path; }
const char *sim_denials_path(const sim *s) { return s->denials_path; }
const char *sim_credentials_path(const sim *s) { return s->credentials_path; }
int sim_pid(const sim *s) { return (int)s->pid; }

/* Asks the kernel for a free loopback port. The port is released again, so
 * another process could take it before mosquitto binds; sim_start then
 * fails with the broker's log. */
static pl_err free_port(int *out, pl_errmsg *e)
{
	struct sockaddr_in addr = { .sin_family = AF_INET };
	socklen_t len = sizeof(addr);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
	    getsockname(fd, (struct sockaddr *)&addr, &len) != 0) {
		if (fd >= 0)
			close(fd);
		return pl_errmsg_set(e, PL_ERR_NETWORK, "no free loopback port: %s",
				     strerror(errno));
	}
	close(fd);
	*out = ntohs(addr.sin_port);
	return PL_OK;
}

static int file_exists(const char *path)
{
	return access(path, F_OK) == 0;
}

static pl_err join(char *buf, const char *dir, const char *name, pl_errmsg *e)
{
	if ((size_t)snprintf(buf, PATH_MAX, "%s/%s", dir, name) >= PATH_MAX)
		return pl_errmsg_set(e, PL_ERR_INVALID, "%s: path too long", dir);
	return PL_OK;
}

static pl_err set_paths(sim *s, const char *dir, pl_errmsg *e)
{
	if ((size_t)snprintf(s->state_dir, sizeof(s->state_dir), "%s", dir) >= sizeof(s->state_dir))
		return pl_errmsg_set(e, PL_ERR_INVALID, "%s: path too long", dir);
	if (join(s->ca_path, dir, "ca.pem", e) || join(s->ca_key_path, dir, "ca.key", e) ||
	    join(s->server_path, dir, "server.pem", e) ||
	    join(s->server_key_path, dir, "server.key", e) ||
	    join(s->state_path, dir, "state.json", e) ||
	    join(s->conf_path, dir, "mosquitto.conf", e) ||
	    join(s->log_path, dir, "mosquitto.log", e) ||
	    join(s->ground_truth_path, dir, "ground-truth.jsonl", e) ||
	    join(s->denials_path, dir, "denials.jsonl", e) ||
	    join(s->credentials_path, dir, "credentials", e))
		return PL_ERR_INVALID;
	return PL_OK;
}

/* Creates the CA and the server certificate unless they exist already. */
static pl_err ensure_certs(sim *s, pl_errmsg *e)
{
	sim_ca *ca;
	pl_err rc;

	if (!file_exists(s->ca_path) || !file_exists(s->ca_key_path)) {
		PL_INFO("sim", "creating the simulator CA in %s", s->state_dir);
		rc = sim_certs_create_ca(s->ca_path, s->ca_key_path, "policylag simulator CA",
					 CERT_DAYS, e);
		if (rc != PL_OK)
			return rc;
		unlink(s->server_path);
	}
	if (file_exists(s->server_path) && file_exists(s->server_key_path))
		return PL_OK;
	rc = sim_ca_load(&ca, s->ca_path, s->ca_key_path, e);
	if (rc != PL_OK)
		return rc;
	rc = sim_certs_create_server(ca, s->server_path, s->server_key_path, CERT_DAYS, e);
	sim_ca_free(ca);
	return rc;
}

/* The plugin next to the running binary, for a build tree or an install. */
static void default_plugin_path(char *buf, size_t len)
{
	const char *env = getenv("POLICYLAG_PLUGIN");
	char exe[PATH_MAX];
	ssize_t n;

	if (env && *env) {
		snprintf(buf, len, "%s", env);
		return;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		char *slash;
		exe[n] = '\0';
		slash = strrchr(exe, '/');
		if (slash) {
			*slash = '\0';
			snprintf(buf, len, "%s/policylag_sim.so", exe);
			if (file_exists(buf))
				return;
			/* An installed tree: PREFIX/bin/policylag next to PREFIX/lib/policylag. */
			snprintf(buf, len, "%s/../lib/policylag/policylag_sim.so", exe);
			if (file_exists(buf))
				return;
		}
	}
	snprintf(buf, len, "%s/lib/policylag/policylag_sim.so", POLICYLAG_PREFIX);
}

static void write_opt(FILE *f, const char *key, const char *value)
{
	fprintf(f, "plugin_opt_%s %s\n", key, value);
}

static pl_err write_config(const sim *s, const sim_options *o, const char *plugin_path,
			   pl_errmsg *e)
{
	struct passwd *pw = getpwuid(getuid());
	char port[16], trust_dir[PATH_MAX + 16];
	FILE *f = fopen(s->conf_path, "w");

	if (!f)
		return pl_errmsg_set(e, PL_ERR_IO, "%s: %s", s->conf_path, strerror(errno));
	fprintf(f, "# Generated by policylag on every simulator start; edits are lost.\n");
	/* mosquitto started as root switches to this user; keep the caller's,
	 * who can read the 0600 keys. */
	fprintf(f, "user %s\n", pw ? pw->pw_name : "root");
	fprintf(f, "per_listener_settings false\nallow_anonymous false\npersistence false\n");
	fprintf(f, "log_dest file %s\nlog_type error\nlog_type warning\nlog_type notice\n",
		s->log_path);
	fprintf(f, "connection_messages false\n");
	fprintf(f, "listener %d 127.0.0.1\n", s->mqtt_port);
	fprintf(f, "cafile %s\ncertfile %s\nkeyfile %s\n", s->ca_path, s->server_path,
		s->server_key_path);
	/* Certificates registered without a CA (RegisterCertificateWithoutCA) are
	 * written here by the API under OpenSSL hash names; OpenSSL looks this
	 * directory up on each handshake, so new files count without a restart. */
	fprintf(f, "capath %s/trusted\n", s->state_dir);
	fprintf(f, "require_certificate true\n");
	/* Without it every CONNACK under TLS 1.3 waits about 40 ms for the
	 * client's delayed ACK (Nagle's algorithm on mosquitto 2.0.11). */
	fprintf(f, "set_tcp_nodelay true\n");
	/* AWS IoT Core grants at most QoS 1 (MQTT 5 CONNACK Maximum QoS 1). */
	fprintf(f, "max_qos 1\n");
	/* AWS uses 1200 s for a keep-alive of 0 or above 1200 s. mosquitto
	 * 2.0.11 applies this to MQTT 5 clients only (Server Keep Alive). */
	fprintf(f, "max_keepalive 1200\n");
	fprintf(f, "plugin %s\n", plugin_path);
	write_opt(f, "state_dir", s->state_dir);
	write_opt(f, "propagation", o->propagation ? o->propagation : "uniform:360s-480s");
	write_opt(f, "refresh_phase", o->refresh_phase ? o->refresh_phase : "connect");
	write_opt(f, "connect_fresh_snapshot", o->connect_fresh_snapshot ? "true" : "false");
	if (s->api_port > 0) {
		snprintf(port, sizeof(port), "%d", s->api_port);
		write_opt(f, "api_port", port);
		write_opt(f, "api_credentials_file", s->credentials_path);
		write_opt(f, "api_ca_cert", s->ca_path);
		write_opt(f, "api_ca_key", s->ca_key_path);
		write_opt(f, "api_ground_truth_file", s->ground_truth_path);
		/* Where RegisterCertificateWithoutCA writes for the capath above. */
		snprintf(trust_dir, sizeof(trust_dir), "%s/trusted", s->state_dir);
		write_opt(f, "api_trust_dir", trust_dir);
	}
	for (int i = 0; i < o->extra_count; i++)
		write_opt(f, o->extra[i].key, o->extra[i].value);
	if (fclose(f) != 0)
		return pl_errmsg_set(e, PL_ERR_IO, "%s: write failed", s->conf_path);
	return PL_OK;
}

/* The sanitizer runtime the plugin was built with, for LD_PRELOAD. */
static void sanitizer_runtime(char *buf, size_t len)
{
	const char *san = getenv("POLICYLAG_SANITIZER");
	const char *lib = NULL;
	char cmd[128];
	FILE *p;

	buf[0] = '\0';
	if (!san || !*san)
		return;
	if (strcmp(san, "address") == 0)
		lib = "libasan.so";
	else if (strcmp(san, "undefined") == 0)
		lib = "libubsan.so";
	else if (strcmp(san, "thread") == 0)
		lib = "libtsan.so";
	if (!lib)
		return;
	snprintf(cmd, sizeof(cmd), "gcc -print-file-name=%s", lib);
	p = popen(cmd, "r");
	if (!p)
		return;
	if (!fgets(buf, (int)len, p))
		buf[0] = '\0';
	pclose(p);
	buf[strcspn(buf, "\n")] = '\0';
}

static void child_exec(const sim *s, const char *mosquitto, const char *preload)
{
	int fd = open(s->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

	/*
	 * A process group of its own keeps the terminal's Ctrl-C away from
	 * mosquitto: the parent stops it (sim_stop) once it has drained.
	 */
	setpgid(0, 0);
	if (fd >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
	}
	if (preload[0]) {
		setenv("LD_PRELOAD", preload, 1);
		setenv("ASAN_OPTIONS", "detect_leaks=0", 0);
	}
	execl(mosquitto, mosquitto, "-c", s->conf_path, (char *)NULL);
	_exit(127);
}

static int port_accepts(int port)
{
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int ok;

	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0)
		return 0;
	ok = connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0;
	close(fd);
	return ok;
}

int sim_running(sim *s)
{
	int status;

	if (s->reaped || s->pid <= 0)
		return 0;
	if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
		s->reaped = 1;
		s->exit_status = status;
		return 0;
	}
	return 1;
}

/* The last line of the broker log that names the plugin, for start errors. */
static void plugin_error(const sim *s, char *buf, size_t len)
{
	char line[512];
	FILE *f = fopen(s->log_path, "r");

	buf[0] = '\0';
	while (f && fgets(line, sizeof(line), f)) {
		const char *at = strstr(line, "policylag_sim: ");
		if (at) {
			snprintf(buf, len, "%s", at);
			buf[strcspn(buf, "\n")] = '\0';
		}
	}
	if (f)
		fclose(f);
}

static pl_err wait_ready(sim *s, int64_t timeout_ns, pl_errmsg *e)
{
	char why[512];

	int64_t deadline = pl_mono_ns() + timeout_ns;

	while (pl_mono_ns() < deadline) {
		if (!sim_running(s)) {
			plugin_error(s, why, sizeof(why));
			return pl_errmsg_set(e, PL_ERR_CHILD,
					     "mosquitto exited during start-up: %s (see %s)",
					     why[0] ? why : "no plugin error logged", s->log_path);
		}
		if (port_accepts(s->mqtt_port) && (s->api_port <= 0 || port_accepts(s->api_port)))
			return PL_OK;
		pl_sleep_ns(20 * PL_NS_PER_MS);
	}
	return pl_errmsg_set(e, PL_ERR_TIMEOUT,
			     "mosquitto did not accept connections on port %d in time; see %s",
			     s->mqtt_port, s->log_path);
}

/* The capath directory for registered certificates; it must exist when mosquitto starts. */
static pl_err ensure_trust_dir(const char *state_dir, pl_errmsg *e)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/trusted", state_dir);
	if (mkdir(path, 0755) != 0 && errno != EEXIST)
		return pl_errmsg_set(e, PL_ERR_IO, "%s: %s", path, strerror(errno));
	return PL_OK;
}

static pl_err prepare(sim *s, const sim_options *o, pl_errmsg *e)
{
	pl_err rc;

	if (!o->state_dir)
		return pl_errmsg_set(e, PL_ERR_INVALID, "simulator: no state directory given");
	if (mkdir(o->state_dir, 0700) != 0 && errno != EEXIST)
		return pl_errmsg_set(e, PL_ERR_IO, "%s: %s", o->state_dir, strerror(errno));
	rc = set_paths(s, o->state_dir, e);
	if (rc == PL_OK)
		rc = ensure_trust_dir(o->state_dir, e);
	if (rc == PL_OK)
		rc = ensure_certs(s, e);
	if (rc != PL_OK)
		return rc;
	s->mqtt_port = o->mqtt_port;
	if (s->mqtt_port == 0 && (rc = free_port(&s->mqtt_port, e)) != PL_OK)
		return rc;
	s->api_port = o->api_port;
	if (s->api_port == 0 && (rc = free_port(&s->api_port, e)) != PL_OK)
		return rc;
	return PL_OK;
}

pl_err sim_start(sim **out, const sim_options *o, pl_errmsg *e)
{
	char plugin_path[PATH_MAX], preload[PATH_MAX];
	sim *s = calloc(1, sizeof(*s));
	pl_err rc;

	if (!s)
		return pl_errmsg_set(e, PL_ERR_NOMEM, "simulator: out of memory");
	/* Invalid options would otherwise surface only as a broker that fails to start. */
	rc = plugin_options_check(o, e);
	if (rc != PL_OK)
		goto fail;
	rc = prepare(s, o, e);
	if (rc != PL_OK)
		goto fail;
	if (o->plugin_path)
		snprintf(plugin_path, sizeof(plugin_path), "%s", o->plugin_path);
	else
		default_plugin_path(plugin_path, sizeof(plugin_path));
	if (!file_exists(plugin_path)) {
		rc = pl_errmsg_set(e, PL_ERR_NOT_FOUND,
				   "simulator plugin %s not found (set POLICYLAG_PLUGIN)",
				   plugin_path);
		goto fail;
	}
	rc = write_config(s, o, plugin_path, e);
	if (rc != PL_OK)
		goto fail;
	sanitizer_runtime(preload, sizeof(preload));
	s->pid = fork();
	if (s->pid < 0) {
		rc = pl_errmsg_set(e, PL_ERR_CHILD, "fork failed: %s", strerror(errno));
		goto fail;
	}
	if (s->pid == 0)
		child_exec(s, o->mosquitto_path ? o->mosquitto_path : "/usr/sbin/mosquitto", preload);
	setpgid(s->pid, s->pid); /* also here, so no signal reaches it before the child's call */
	rc = wait_ready(s, o->start_timeout_ns > 0 ? o->start_timeout_ns : 10 * PL_NS_PER_S, e);
	if (rc != PL_OK)
		goto fail_child;
	PL_DEBUG("sim", "mosquitto %d on 127.0.0.1:%d", (int)s->pid, s->mqtt_port);
	*out = s;
	return PL_OK;

fail_child:
	sim_stop(s, NULL);
fail:
	free(s);
	return rc;
}

pl_err sim_stop(sim *s, pl_errmsg *e)
{
	int64_t deadline;

	if (!s || s->pid <= 0)
		return PL_OK;
	if (sim_running(s)) {
		kill(s->pid, SIGTERM);
		deadline = pl_mono_ns() + STOP_GRACE_NS;
		while (sim_running(s) && pl_mono_ns() < deadline)
			pl_sleep_ns(10 * PL_NS_PER_MS);
		if (sim_running(s)) {
			kill(s->pid, SIGKILL);
			waitpid(s->pid, &s->exit_status, 0);
			s->reaped = 1;
		}
		s->pid = 0;
		return PL_OK;
	}
	s->pid = 0;
	if (WIFEXITED(s->exit_status) && WEXITSTATUS(s->exit_status) == 0)
		return PL_OK;
	if (WIFSIGNALED(s->exit_status))
		return pl_errmsg_set(e, PL_ERR_CHILD, "mosquitto was killed by signal %d (%s); see %s",
				     WTERMSIG(s->exit_status), strsignal(WTERMSIG(s->exit_status)),
				     s->log_path);
	return pl_errmsg_set(e, PL_ERR_CHILD, "mosquitto had exited with status %d; see %s",
			     WIFEXITED(s->exit_status) ? WEXITSTATUS(s->exit_status) : -1,
			     s->log_path);
}

void sim_free(sim *s)
{
	if (!s)
		return;
	sim_stop(s, NULL);
	free(s);
}
