/*
 * Helpers of the `policylag run` integration tests: write a small profile,
 * run $POLICYLAG_BIN as a subprocess, and read the files it writes.
 *
 * The profiles use the shipped probe policies (profiles/policies under
 * $POLICYLAG_SOURCE_DIR): probe-no-receive.json lets a device connect,
 * publish and subscribe to its probe topic but not receive on it, and
 * probe-full.json adds iot:Receive. A grant swaps the first for the second,
 * a revoke the second for the first.
 */
#ifndef CHECK_RUN_SUPPORT_H
#define CHECK_RUN_SUPPORT_H

#include <check.h>
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RUN_MAX_ROWS 256
#define RUN_MAX_COLS 32
#define RUN_FIELD_MAX 160

/* One samples.csv, read into fixed-size fields. */
typedef struct run_csv {
	char header[RUN_MAX_COLS][RUN_FIELD_MAX];
	size_t ncols;
	char cells[RUN_MAX_ROWS][RUN_MAX_COLS][RUN_FIELD_MAX];
	size_t nrows;
} run_csv;

/* A temporary directory with the profile and the run directory inside it. */
typedef struct run_case {
	char dir[256];
	char profile[320];
	char out[320];
	pid_t pid;
	int status;    /* exit status, or 128 + signal */
	int own_group; /* start the run in a process group of its own, as a shell does */
} run_case;

static inline const char *run_env(const char *name)
{
	const char *v = getenv(name);

	ck_assert_msg(v != NULL && v[0] != '\0', "%s is not set; run through make check", name);
	return v;
}

/* Creates the case directory and writes the profile text into it. */
static inline void run_case_init(run_case *rc, const char *yaml)
{
	FILE *f;

	snprintf(rc->dir, sizeof(rc->dir), "%s/policylag-check-run-XXXXXX",
		 getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(rc->dir));
	snprintf(rc->profile, sizeof(rc->profile), "%s/profile.yaml", rc->dir);
	snprintf(rc->out, sizeof(rc->out), "%s/run", rc->dir);
	f = fopen(rc->profile, "w");
	ck_assert_ptr_nonnull(f);
	fputs(yaml, f);
	fclose(f);
	rc->pid = -1;
	rc->status = -1;
	rc->own_group = 0;
}

/* Starts `policylag run` on the case's profile with extra --set arguments. */
static inline void run_case_start(run_case *rc, const char *const *sets)
{
	const char *bin = run_env("POLICYLAG_BIN");
	char *argv[32];
	int n = 0;

	argv[n++] = (char *)bin;
	argv[n++] = (char *)"run";
	argv[n++] = rc->profile;
	argv[n++] = (char *)"--out";
	argv[n++] = rc->out;
	argv[n++] = (char *)"--progress";
	argv[n++] = (char *)"log";
	for (size_t i = 0; sets != NULL && sets[i] != NULL && n < 28; i++) {
		argv[n++] = (char *)"--set";
		argv[n++] = (char *)sets[i];
	}
	argv[n] = NULL;
	rc->pid = fork();
	ck_assert_int_ge(rc->pid, 0);
	if (rc->pid == 0) {
		char path[400];
		FILE *out;

		if (rc->own_group)
			setpgid(0, 0);
		/* The result table goes to <case dir>/stdout.txt (run_read_stdout). */
		snprintf(path, sizeof(path), "%s/stdout.txt", rc->dir);
		out = freopen(path, "w", stdout);
		if (out == NULL)
			_exit(127);
		execv(bin, argv);
		_exit(127);
	}
	if (rc->own_group)
		setpgid(rc->pid, rc->pid);
}

/* Waits for the run to end (at most timeout_s), killing it when it overruns. */
static inline int run_case_wait(run_case *rc, int timeout_s)
{
	int status;

	for (int i = 0; i < timeout_s * 10; i++) {
		if (waitpid(rc->pid, &status, WNOHANG) == rc->pid) {
			rc->status = WIFEXITED(status) ? WEXITSTATUS(status)
						       : 128 + WTERMSIG(status);
			return rc->status;
		}
		usleep(100000);
	}
	kill(rc->pid, SIGKILL);
	waitpid(rc->pid, &status, 0);
	ck_abort_msg("policylag run did not finish within %d s", timeout_s);
	return -1;
}

static inline int run_case_run(run_case *rc, const char *const *sets, int timeout_s)
{
	run_case_start(rc, sets);
	return run_case_wait(rc, timeout_s);
}

static inline void run_case_path(const run_case *rc, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", rc->out, name);
}

/* Splits one CSV line (no quoted fields in these tests) into row. */
static inline size_t run_csv_split(char *line, char fields[][RUN_FIELD_MAX])
{
	size_t n = 0;
	char *p = line;

	line[strcspn(line, "\r\n")] = '\0';
	for (;;) {
		char *comma = strchr(p, ',');
		size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);

		ck_assert_uint_lt(len, RUN_FIELD_MAX);
		ck_assert_uint_lt(n, RUN_MAX_COLS);
		memcpy(fields[n], p, len);
		fields[n][len] = '\0';
		n++;
		if (comma == NULL)
			return n;
		p = comma + 1;
	}
}

/* Reads samples.csv; every row must have as many fields as the header. */
static inline run_csv *run_read_samples(const run_case *rc)
{
	run_csv *csv = calloc(1, sizeof(*csv));
	char path[400];
	char line[4096];
	FILE *f;

	ck_assert_ptr_nonnull(csv);
	run_case_path(rc, "samples.csv", path, sizeof(path));
	f = fopen(path, "r");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	ck_assert_ptr_nonnull(fgets(line, sizeof(line), f));
	csv->ncols = run_csv_split(line, csv->header);
	while (fgets(line, sizeof(line), f) != NULL) {
		ck_assert_uint_lt(csv->nrows, RUN_MAX_ROWS);
		ck_assert_msg(line[strlen(line) - 1] == '\n', "samples.csv: row without newline");
		ck_assert_uint_eq(run_csv_split(line, csv->cells[csv->nrows]), csv->ncols);
		csv->nrows++;
	}
	fclose(f);
	return csv;
}

static inline size_t run_csv_col(const run_csv *csv, const char *name)
{
	for (size_t i = 0; i < csv->ncols; i++)
		if (strcmp(csv->header[i], name) == 0)
			return i;
	ck_abort_msg("samples.csv has no column %s", name);
	return 0;
}

static inline const char *run_csv_get(const run_csv *csv, size_t row, const char *name)
{
	return csv->cells[row][run_csv_col(csv, name)];
}

/* An integer cell; an empty cell is INT64_MIN. */
static inline long long run_csv_int(const run_csv *csv, size_t row, const char *name)
{
	const char *v = run_csv_get(csv, row, name);

	return v[0] == '\0' ? (long long)INT64_MIN : strtoll(v, NULL, 10);
}

/* Runs `policylag ARG1 ARG2 PROFILE` for the case to completion; returns its exit status. */
static inline int run_case_command(const run_case *rc, const char *arg1, const char *arg2)
{
	const char *bin = run_env("POLICYLAG_BIN");
	int status;
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		execl(bin, bin, arg1, arg2, rc->profile, (char *)NULL);
		_exit(127);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* The number of rows in samples.csv so far (0 while it does not exist). */
static inline size_t run_count_rows(const run_case *rc)
{
	char path[400];
	char line[4096];
	size_t n = 0;
	FILE *f;

	run_case_path(rc, "samples.csv", path, sizeof(path));
	f = fopen(path, "r");
	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		n++;
	fclose(f);
	return n > 0 ? n - 1 : 0;
}

/* Reads run.json. */
static inline json_t *run_read_json(const run_case *rc)
{
	char path[400];
	json_error_t err;
	json_t *j;

	run_case_path(rc, "run.json", path, sizeof(path));
	j = json_load_file(path, 0, &err);
	ck_assert_msg(j != NULL, "run.json: %s", err.text);
	return j;
}

/* Counts events.jsonl lines of type (NULL: all), asserting each line is JSON. */
static inline size_t run_count_events(const run_case *rc, const char *type)
{
	char path[400];
	char line[8192];
	size_t n = 0;
	FILE *f;

	run_case_path(rc, "events.jsonl", path, sizeof(path));
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		json_t *ev = json_loads(line, 0, NULL);
		const char *t;

		ck_assert_msg(ev != NULL, "events.jsonl: not JSON: %s", line);
		t = json_string_value(json_object_get(ev, "type"));
		ck_assert_ptr_nonnull(t);
		if (type == NULL || strcmp(t, type) == 0)
			n++;
		json_decref(ev);
	}
	fclose(f);
	return n;
}

/* Waits until events.jsonl has an event of type with "phase" equal to phase. */
static inline int run_wait_phase(const run_case *rc, const char *phase, int timeout_s)
{
	char path[400];
	char needle[64];
	char line[8192];

	run_case_path(rc, "events.jsonl", path, sizeof(path));
	snprintf(needle, sizeof(needle), "\"phase\":\"%s\"", phase);
	for (int i = 0; i < timeout_s * 10; i++) {
		FILE *f = fopen(path, "r");
		int found = 0;

		while (f != NULL && !found && fgets(line, sizeof(line), f) != NULL)
			found = strstr(line, "\"type\":\"phase\"") != NULL && strstr(line, needle);
		if (f != NULL)
			fclose(f);
		if (found)
			return 1;
		usleep(100000);
	}
	return 0;
}

/* Replaces the first occurrence of from in text (of capacity cap) with to. */
static inline void run_replace(char *text, size_t cap, const char *from, const char *to)
{
	char *at = strstr(text, from);
	size_t tail;

	ck_assert_ptr_nonnull(at);
	tail = strlen(at + strlen(from));
	ck_assert_uint_lt(strlen(text) - strlen(from) + strlen(to), cap);
	memmove(at + strlen(to), at + strlen(from), tail + 1);
	memcpy(at, to, strlen(to));
}

/* Removes the case directory. */
/* What the run printed on standard output; the caller frees it. */
static inline char *run_read_stdout(const run_case *rc)
{
	char path[400];
	char *text = calloc(1, 65536);
	FILE *f;
	size_t n;

	ck_assert_ptr_nonnull(text);
	snprintf(path, sizeof(path), "%s/stdout.txt", rc->dir);
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	n = fread(text, 1, 65535, f);
	text[n] = '\0';
	fclose(f);
	return text;
}

static inline void run_case_cleanup(run_case *rc)
{
	char cmd[400];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", rc->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", rc->dir);
}

/*
 * Writes a profile for n devices. groups_yaml is the "groups:" list,
 * swap_yaml the "swap:" section; before and after name files under
 * profiles/policies.
 */
static inline void run_profile_text(char *buf, size_t len, const char *name, int devices,
				    const char *propagation, const char *certificates,
				    const char *groups_yaml, const char *before, const char *after,
				    const char *swap_yaml, const char *probe_interval,
				    const char *observe_timeout)
{
	const char *src = run_env("POLICYLAG_SOURCE_DIR");
	int n = snprintf(buf, len,
			 "name: %s\n"
			 "target:\n"
			 "  kind: simulator\n"
			 "  simulator:\n"
			 "    propagation: \"%s\"\n"
			 "    refresh_phase: connect\n"
			 "    quotas:\n"
			 "      attach_detach_policy: 200/s\n"
			 "      create_certificate_from_csr: 200/s\n"
			 "      policy_write: 100/s\n"
			 "fleet:\n"
			 "  devices: %d\n"
			 "  certificates: %s\n"
			 "  connect_rate: 100/s\n"
			 "  worker_devices: 10\n"
			 "groups:\n%s"
			 "policies:\n"
			 "  before: [%s/profiles/policies/%s]\n"
			 "  after: [%s/profiles/policies/%s]\n"
			 "swap:\n%s"
			 "probe:\n"
			 "  kind: echo\n"
			 "  interval: %s\n"
			 "timing:\n"
			 "  settle: 1s\n"
			 "  observe_timeout: %s\n"
			 "  drain: 1s\n",
			 name, propagation, devices, certificates, groups_yaml, src, before, src,
			 after, swap_yaml, probe_interval, observe_timeout);

	ck_assert(n > 0 && (size_t)n < len);
}

#endif
