/*
 * A plain mosquitto 2.0 on loopback with TLS and client certificates, for
 * the worker tests and benchmark (header-only: both programs include it).
 *
 * Identities are the certificates' CNs (use_identity_as_username), and
 * access comes from an ACL file that wbroker_set_access rewrites; a SIGHUP
 * makes mosquitto reload it and apply it to every later delivery on existing
 * connections. Certificates (EC P-256) are made with the openssl command in a
 * temporary directory that wbroker_stop removes (unless CHECK_WORKER_KEEP is
 * set, for reading the logs). Functions return 0 on
 * success and -1 on failure, so that tests can assert and benchmarks can
 * report.
 */
#ifndef TEST_CHECK_WORKER_BROKER_H
#define TEST_CHECK_WORKER_BROKER_H

#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"

extern char **environ;

typedef struct wbroker {
	char dir[256];
	char ca[300];
	char conf[300];
	char acl[300];
	int port;
	pid_t pid;
} wbroker;

/* Runs argv with stdout and stderr appended to log, and child_fd as fd 3 (-1: none). */
static inline pid_t wbroker_spawn(char *const argv[], const char *log, int child_fd)
{
	posix_spawn_file_actions_t fa;
	pid_t pid = -1;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0644);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	if (child_fd >= 0)
		posix_spawn_file_actions_adddup2(&fa, child_fd, 3);
	if (posix_spawn(&pid, argv[0], &fa, NULL, argv, environ) != 0)
		pid = -1;
	posix_spawn_file_actions_destroy(&fa);
	return pid;
}

static inline int wbroker_free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int port = -1;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static inline int wbroker_write(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (f == NULL)
		return -1;
	fputs(text, f);
	return fclose(f) == 0 ? 0 : -1;
}

/*
 * Writes the ACL: each device may use probe/<its CN> with access "read",
 * "write" or "readwrite"; the CN "prober" may publish to probe/#.
 */
static inline int wbroker_write_acl(const wbroker *b, const char *access)
{
	char text[256];

	snprintf(text, sizeof(text), "pattern %s probe/%%u\nuser prober\ntopic write probe/#\n",
		 access);
	return wbroker_write(b->acl, text);
}

/* Makes a client key and certificate <name>.key/.pem signed by the CA. */
static inline int wbroker_client_cert(const wbroker *b, const char *name)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && umask 077 && "
		 "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
		 "-keyout %s.key -out %s.csr -subj /CN=%s >/dev/null 2>&1 && "
		 "openssl x509 -req -in %s.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
		 "-out %s.pem -days 2 >/dev/null 2>&1",
		 b->dir, name, name, name, name, name);
	return system(cmd) == 0 ? 0 : -1;
}

/* Makes the CA, the server certificate (localhost, 127.0.0.1) and client certificates. */
static inline int wbroker_certs(const wbroker *b, const char *const *names, size_t count)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && umask 077 && "
		 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
		 "-keyout ca.key -out ca.pem -days 2 -subj /CN=test-ca >/dev/null 2>&1 && "
		 "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
		 "-keyout server.key -out server.csr -subj /CN=localhost >/dev/null 2>&1 && "
		 "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > san.ext && "
		 "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
		 "-out server.pem -days 2 -extfile san.ext >/dev/null 2>&1",
		 b->dir);
	if (system(cmd) != 0)
		return -1;
	for (size_t i = 0; i < count; i++)
		if (wbroker_client_cert(b, names[i]) != 0)
			return -1;
	return 0;
}

static inline int wbroker_port_open(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int ok;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)port);
	ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

static inline int wbroker_write_conf(const wbroker *b)
{
	char conf[2048];
	struct passwd *pw = getpwuid(geteuid());

	snprintf(conf, sizeof(conf),
		 "per_listener_settings false\nallow_anonymous false\nacl_file %s\n"
		 "set_tcp_nodelay true\nmax_keepalive 1200\nlog_dest stderr\n"
		 "log_type error\nlog_type warning\n"
		 "listener %d 127.0.0.1\ncafile %s\ncertfile %s/server.pem\nkeyfile %s/server.key\n"
		 "require_certificate true\nuse_identity_as_username true\n"
		 /* mosquitto started as root drops to user mosquitto, which cannot
		  * read the 0600 keys; it stays the user that made them */
		 "user %s\n",
		 b->acl, b->port, b->ca, b->dir, b->dir, pw != NULL ? pw->pw_name : "root");
	return wbroker_write(b->conf, conf);
}

/* Creates the directory, certificates and ACL, and starts mosquitto. */
static inline int wbroker_start(wbroker *b, const char *access, const char *const *names,
				size_t count)
{
	char log[320];
	char *argv[] = { (char *)"/usr/sbin/mosquitto", (char *)"-c", b->conf, NULL };
	const char *tmp = getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp";

	memset(b, 0, sizeof(*b));
	snprintf(b->dir, sizeof(b->dir), "%s/plworker.XXXXXX", tmp);
	if (mkdtemp(b->dir) == NULL)
		return -1;
	snprintf(b->ca, sizeof(b->ca), "%s/ca.pem", b->dir);
	snprintf(b->conf, sizeof(b->conf), "%s/mosquitto.conf", b->dir);
	snprintf(b->acl, sizeof(b->acl), "%s/acl", b->dir);
	snprintf(log, sizeof(log), "%s/mosquitto.log", b->dir);
	if (wbroker_certs(b, names, count) != 0 || wbroker_write_acl(b, access) != 0)
		return -1;
	/* Another program may take the free port before mosquitto binds it; then
	 * mosquitto exits, and the start is retried on a new port. */
	for (int attempt = 0; attempt < 5; attempt++) {
		b->port = wbroker_free_port();
		if (b->port < 0 || wbroker_write_conf(b) != 0)
			return -1;
		b->pid = wbroker_spawn(argv, log, -1);
		if (b->pid <= 0)
			return -1;
		for (int i = 0; i < 200 && !wbroker_port_open(b->port); i++)
			pl_sleep_ns(25 * PL_NS_PER_MS);
		pl_sleep_ns(50 * PL_NS_PER_MS);
		if (waitpid(b->pid, NULL, WNOHANG) == 0 && wbroker_port_open(b->port))
			return 0;
		kill(b->pid, SIGTERM);
		waitpid(b->pid, NULL, 0);
		b->pid = 0;
	}
	return -1;
}

/* Rewrites the ACL and makes mosquitto reload it. */
static inline int wbroker_set_access(const wbroker *b, const char *access)
{
	if (wbroker_write_acl(b, access) != 0)
		return -1;
	return kill(b->pid, SIGHUP);
}

/* Stops mosquitto and removes the directory. */
static inline void wbroker_stop(wbroker *b)
{
	char cmd[400];

	if (b->pid > 0) {
		kill(b->pid, SIGTERM);
		waitpid(b->pid, NULL, 0);
		b->pid = 0;
	}
	if (b->dir[0] != '\0' && getenv("CHECK_WORKER_KEEP") != NULL) {
		fprintf(stderr, "kept %s (CHECK_WORKER_KEEP)\n", b->dir);
		b->dir[0] = '\0';
	}
	if (b->dir[0] != '\0') {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", b->dir);
		if (system(cmd) != 0)
			fprintf(stderr, "removing %s failed\n", b->dir);
		b->dir[0] = '\0';
	}
}

#endif
