/*
 * report, compare and merge on run directories written by the test, driven
 * through the policylag binary; the report is rendered in headless Chromium.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "results/run.h"
#include "results/summary.h"

static char work_dir[256];

static void setup(void)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(work_dir, sizeof(work_dir), "%s/policylag-report.XXXXXX", tmp ? tmp : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(work_dir));
}

static void teardown(void)
{
	char *argv[] = { "rm", "-rf", work_dir, NULL };
	pid_t pid = fork();

	if (pid == 0) {
		execvp("rm", argv);
		_exit(127);
	}
	waitpid(pid, NULL, 0);
}

static void path_in(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Formats a path below the test's work directory. */
static void path_in(char *buf, size_t len, const char *fmt, ...)
{
	char rel[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rel, sizeof(rel), fmt, ap);
	va_end(ap);
	snprintf(buf, len, "%s/%s", work_dir, rel);
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	ck_assert_msg(f != NULL, "cannot create %s: %s", path, strerror(errno));
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
}

static char *read_text(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long len;

	ck_assert_msg(f != NULL, "cannot open %s: %s", path, strerror(errno));
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = calloc(1, (size_t)len + 1);
	ck_assert_ptr_nonnull(buf);
	ck_assert_uint_eq(fread(buf, 1, (size_t)len, f), (size_t)len);
	fclose(f);
	return buf;
}

static size_t count_of(const char *text, const char *needle)
{
	size_t n = 0;

	for (const char *p = strstr(text, needle); p != NULL; p = strstr(p + 1, needle))
		n++;
	return n;
}

/*
 * Writes DIR/run.json and DIR/samples.csv: groups "fast" (latency k * scale_fast
 * seconds for k = 1..n) and "slow" (k * 10 * scale_fast), device names with the
 * given prefix. expectations is a JSON array text.
 */
static void make_run(const char *name, const char *hash, const char *shard, long anchor_wall,
		     const char *prefix, int n, double scale_fast, const char *expectations)
{
	char dir[512], path[600], line[512];
	FILE *f;

	path_in(dir, sizeof(dir), "%s", name);
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	snprintf(path, sizeof(path), "%s/run.json", dir);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "{\"tool_version\": \"test\", \"profile_name\": \"unit\", \"profile_hash\": \"%s\","
		   " \"run_id\": \"%s\", \"shard\": \"%s\", \"target\": \"simulator\","
		   " \"start_wall\": \"2026-12-04T21:00:00.000Z\", \"end_wall\": \"2026-12-04T21:10:00.000Z\","
		   " \"anchor_mono_ns\": 1000, \"anchor_wall_ns\": %ld, \"status\": \"completed\","
		   " \"reason\": \"\", \"expectations\": %s}\n",
		hash, name, shard, anchor_wall, expectations);
	fclose(f);
	snprintf(path, sizeof(path), "%s/samples.csv", dir);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	for (size_t c = 0; run_samples_columns[c] != NULL; c++)
		fprintf(f, "%s%s", c ? "," : "", run_samples_columns[c]);
	fputc('\n', f);
	for (int g = 0; g < 2; g++) {
		for (int k = 1; k <= n; k++) {
			long long lat = (long long)(k * scale_fast * (g ? 10 : 1) * 1e9);
			snprintf(line, sizeof(line),
				 "%s-%s-%d,client-%d,%s,%s,grant,0,cert-%d,%d,0,%d000000,%lld,%lld,0,"
				 "1,1,0,%d,0,,,\n",
				 prefix, g ? "slow" : "fast", k, k, g ? "slow" : "fast",
				 g ? "keep-connection" : "reconnect-per-attempt", k, k % 3, k,
				 k * 1000000LL + lat, lat, g);
			fputs(line, f);
		}
	}
	fclose(f);
	snprintf(path, sizeof(path), "%s/events.jsonl", dir);
	write_text(path, "{\"t_ns\": 0, \"type\": \"swap\", \"swap_index\": 0}\n"
			 "{\"t_ns\": 1000000, \"type\": \"connect\", \"device\": \"a\"}\n"
			 "{\"t_ns\": 2500000000, \"type\": \"throttle\", \"op\": \"connect\"}\n"
			 "{\"t_ns\": 3000000000, \"type\": \"error\", \"message\": \"x\"}\n");
}

/* Runs policylag with the NULL-terminated args; output goes to WORK/out.txt. */
static int policylag_args(const char *const *args)
{
	const char *bin = getenv("POLICYLAG_BIN");
	char *argv[32], out[512];
	int argc = 0, status;
	pid_t pid;

	ck_assert_msg(bin != NULL, "POLICYLAG_BIN is not set; run through make check");
	argv[argc++] = (char *)bin;
	for (size_t i = 0; args[i] != NULL && argc < 31; i++)
		argv[argc++] = (char *)args[i];
	argv[argc] = NULL;
	path_in(out, sizeof(out), "out.txt");
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		dup2(fd, 1);
		dup2(fd, 2);
		execv(bin, argv);
		_exit(127);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	return WEXITSTATUS(status);
}

#define policylag(...) policylag_args((const char *const[]){ __VA_ARGS__, NULL })

static char *output(void)
{
	char out[512];

	path_in(out, sizeof(out), "out.txt");
	return read_text(out);
}

static json_t *load_json(const char *rel)
{
	char path[512];
	json_error_t jerr;
	json_t *root;

	path_in(path, sizeof(path), "%s", rel);
	root = json_load_file(path, 0, &jerr);
	ck_assert_msg(root != NULL, "%s: %s", path, jerr.text);
	return root;
}

static const char default_expectations[] =
	"[\"fast.p50 < 30s\", \"slow.p50 < 30s\", \"compare(fast, slow).p < 0.001\","
	" \"throttled.connect == 1\"]";

START_TEST(test_report_writes_outputs)
{
	char dir[512];
	json_t *root, *groups, *fast;
	char *junit, *html, *path_junit = malloc(600), *path_html = malloc(600);

	make_run("run", "h1", "1/1", 0, "d", 20, 1.0, default_expectations);
	path_in(dir, sizeof(dir), "run");
	ck_assert_int_eq(policylag("report", dir), 1);

	root = load_json("run/summary.json");
	groups = json_object_get(root, "groups");
	ck_assert_uint_eq(json_array_size(groups), 3); /* fast, slow, all */
	fast = json_array_get(groups, 0);
	ck_assert_str_eq(json_string_value(json_object_get(fast, "name")), "fast");
	ck_assert_int_eq(json_integer_value(json_object_get(fast, "n")), 20);
	/* S(t) is exactly 0.5 from 10 s to 11 s, so the median is 10.5 s. */
	ck_assert_double_eq_tol(
		json_real_value(json_object_get(
			json_object_get(json_object_get(fast, "quantiles_s"), "p50"), "value")),
		10.5, 1e-9);
	ck_assert_int_eq(json_integer_value(json_object_get(root, "expectations_failed")), 1);
	ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(root, "verdict")),
				     "fast saw the change"));
	json_decref(root);

	snprintf(path_junit, 600, "%s/junit.xml", dir);
	junit = read_text(path_junit);
	ck_assert_uint_eq(count_of(junit, "<testcase "), 4);
	ck_assert_uint_eq(count_of(junit, "<failure "), 1);
	ck_assert_ptr_nonnull(strstr(junit, "failures=\"1\""));
	snprintf(path_html, 600, "%s/report.html", dir);
	html = read_text(path_html);
	ck_assert_uint_ge(count_of(html, "<svg "), 4);
	ck_assert_uint_eq(count_of(html, "<script"), 0);
	/* The only URL is the SVG namespace name, which is never fetched. */
	ck_assert_uint_eq(count_of(html, "http"), count_of(html, "http://www.w3.org/2000/svg"));
	ck_assert_uint_eq(count_of(html, "src="), 0);
	free(junit);
	free(html);
	free(path_junit);
	free(path_html);
}
END_TEST

START_TEST(test_report_expect_option_passes)
{
	char dir[512];

	make_run("run", "h1", "1/1", 0, "d", 10, 1.0, default_expectations);
	path_in(dir, sizeof(dir), "run");
	ck_assert_int_eq(policylag("report", dir, "--expect", "fast.censored == 0", "-q"), 0);
}
END_TEST

START_TEST(test_report_bad_row_names_line)
{
	char dir[512], path[600];
	char *out;

	make_run("run", "h1", "1/1", 0, "d", 3, 1.0, "[]");
	path_in(dir, sizeof(dir), "run");
	snprintf(path, sizeof(path), "%s/samples.csv", dir);
	char *csv = read_text(path);
	char *second = strchr(strchr(csv, '\n') + 1, '\n') + 1; /* start of line 3 */
	char *grant = strstr(second, "grant");
	memcpy(grant, "grunt", 5);
	write_text(path, csv);
	free(csv);

	ck_assert_int_eq(policylag("report", dir), 3);
	out = output();
	ck_assert_ptr_nonnull(strstr(out, "samples.csv:3: field direction"));
	free(out);
}
END_TEST

START_TEST(test_report_bad_event_names_line)
{
	char dir[512], path[600];
	char *out;

	make_run("run", "h1", "1/1", 0, "d", 3, 1.0, "[]");
	path_in(dir, sizeof(dir), "run");
	snprintf(path, sizeof(path), "%s/events.jsonl", dir);
	write_text(path, "{\"t_ns\": 1, \"type\": \"connect\"}\n{\"t_ns\": \"soon\", \"type\": \"swap\"}\n");

	ck_assert_int_eq(policylag("report", dir), 3);
	out = output();
	ck_assert_ptr_nonnull(strstr(out, "events.jsonl:2: expected an object with integer \"t_ns\""));
	free(out);
}
END_TEST

START_TEST(test_report_events_span_600s)
{
	/* 600 s of events at 1 s per bin fill every bin of the events chart. */
	char dir[512], path[600];

	make_run("run", "h1", "1/1", 0, "d", 3, 1.0, "[]");
	path_in(dir, sizeof(dir), "run");
	snprintf(path, sizeof(path), "%s/events.jsonl", dir);
	write_text(path, "{\"t_ns\": 0, \"type\": \"connect\"}\n"
			 "{\"t_ns\": 600000000000, \"type\": \"connect\"}\n");

	ck_assert_int_eq(policylag("report", dir, "-q"), 0);
}
END_TEST

START_TEST(test_report_counts_unmeasured_rows)
{
	/* A device with no latency (never measured) is counted but left out of the statistics. */
	char dir[512], path[600];
	FILE *f;

	make_run("run", "h1", "1/1", 0, "d", 3, 1.0, "[]");
	path_in(dir, sizeof(dir), "run");
	snprintf(path, sizeof(path), "%s/samples.csv", dir);
	f = fopen(path, "a");
	ck_assert_ptr_nonnull(f);
	fputs("lost,client-lost,fast,reconnect-per-attempt,grant,0,,0,,,,,0,0,0,3,0,1,,,\n", f);
	fclose(f);

	ck_assert_int_eq(policylag("report", dir, "-q", "--expect", "fast.unmeasured == 1",
				   "--expect", "fast.n == 3", "--expect", "fast.connect_failures == 3"),
			 0);
}
END_TEST

/* Appends one line to DIR/samples.csv. */
static void append_row(const char *dir, const char *row)
{
	char path[600];
	FILE *f;

	snprintf(path, sizeof(path), "%s/samples.csv", dir);
	f = fopen(path, "a");
	ck_assert_ptr_nonnull(f);
	fputs(row, f);
	ck_assert_int_eq(fclose(f), 0);
}

START_TEST(test_report_rejects_repeated_row)
{
	char dir[512];
	char *out;

	/* Lines 2 to 7 are the six devices, and line 8 repeats d-fast-2's row for swap 0. */
	make_run("run", "h1", "1/1", 0, "d", 3, 1.0, "[]");
	path_in(dir, sizeof(dir), "run");
	append_row(dir, "d-fast-2,client-2,fast,reconnect-per-attempt,grant,0,cert-2,2,0,2000000,"
			"2002000000,2000000000,0,1,1,0,0,0,,,\n");

	ck_assert_int_eq(policylag("report", dir), 3);
	out = output();
	ck_assert_msg(strstr(out, "samples.csv:8: device 'd-fast-2' has a second row for "
				  "swap_index 0 (the first is on line 3)") != NULL,
		      "output: %s", out);
	free(out);
}
END_TEST

START_TEST(test_report_accepts_device_per_swap)
{
	char dir[512];

	/* The same device in a second swap is a new row, not a repeat. */
	make_run("run", "h1", "1/1", 0, "d", 3, 1.0, "[]");
	path_in(dir, sizeof(dir), "run");
	append_row(dir, "d-fast-2,client-2,fast,reconnect-per-attempt,revoke,1,cert-2,2,0,2000000,"
			"2002000000,2000000000,0,1,1,0,0,0,,,\n");

	ck_assert_int_eq(policylag("report", dir, "-q", "--expect", "fast.n == 4"), 0);
}
END_TEST

START_TEST(test_report_accepts_negative_latency)
{
	char dir[512];

	/*
	 * The effect can arrive before the swap's last call returns (t_swap), so a
	 * latency of -3 ms is a measurement, not a broken row.
	 */
	make_run("run", "h1", "1/1", 0, "d", 3, 1.0, "[]");
	path_in(dir, sizeof(dir), "run");
	append_row(dir, "d-early,client-early,fast,reconnect-per-attempt,grant,0,cert-early,0,0,"
			"2000000,-1000000,-3000000,0,1,1,0,0,0,,,\n");

	ck_assert_int_eq(policylag("report", dir, "-q", "--expect", "fast.n == 4"), 0);
}
END_TEST

START_TEST(test_report_rejects_group_with_space)
{
	char dir[512];
	char *out;

	make_run("run", "h1", "1/1", 0, "d", 3, 1.0, "[]");
	path_in(dir, sizeof(dir), "run");
	append_row(dir, "d-extra,client-9,fast lane,reconnect-per-attempt,grant,0,cert-9,0,0,"
			"2000000,2002000000,2000000000,0,1,1,0,0,0,,,\n");

	ck_assert_int_eq(policylag("report", dir), 3);
	out = output();
	ck_assert_msg(strstr(out, "samples.csv:8: field group: invalid name 'fast lane'") != NULL,
		      "output: %s", out);
	free(out);
}
END_TEST

START_TEST(test_report_rejects_reserved_group)
{
	char dir[512];
	char *out;

	make_run("run", "h1", "1/1", 0, "d", 3, 1.0, "[]");
	path_in(dir, sizeof(dir), "run");
	append_row(dir, "d-extra,client-9,all,reconnect-per-attempt,grant,0,cert-9,0,0,"
			"2000000,2002000000,2000000000,0,1,1,0,0,0,,,\n");

	ck_assert_int_eq(policylag("report", dir), 3);
	out = output();
	ck_assert_msg(strstr(out, "samples.csv:8: field group: the name 'all' is reserved") != NULL,
		      "output: %s", out);
	free(out);
}
END_TEST

/* Writes a samples.csv at path with the header of every column but "excluded", then rows. */
static void write_old_samples(const char *path, const char *rows)
{
	char csv[2048];
	size_t used = 0;

	for (size_t c = 0; run_samples_columns[c] != NULL; c++) {
		if (strcmp(run_samples_columns[c], "excluded") == 0)
			continue;
		used += (size_t)snprintf(csv + used, sizeof(csv) - used, "%s%s", c ? "," : "",
					 run_samples_columns[c]);
	}
	snprintf(csv + used, sizeof(csv) - used, "\n%s", rows);
	write_text(path, csv);
}

START_TEST(test_report_reads_file_without_excluded)
{
	char path[512];
	run_samples *rs = NULL;
	pl_errmsg e = { "" };

	path_in(path, sizeof(path), "samples.csv");
	write_old_samples(path, "d1,c1,g,keep-connection,grant,0,,0,0,0,5,5,0,1,1,0,0,0,,\n");

	ck_assert_msg(run_samples_read(&rs, path, &e) == PL_OK, "%s", e.msg);
	ck_assert_uint_eq(rs->nrows, 1);
	ck_assert_str_eq(rs->rows[0].excluded, "");
	ck_assert_int_eq(rs->rows[0].latency_ns, 5);
	run_samples_free(rs);
}
END_TEST

START_TEST(test_report_reads_excluded_column)
{
	char path[512], copy[512];
	run_samples *rs = NULL, *again = NULL;
	pl_errmsg e = { "" };
	char csv[2048];
	size_t used = 0;

	/* The columns in another order: "excluded" first. */
	used += (size_t)snprintf(csv, sizeof(csv), "excluded");
	for (size_t c = 0; run_samples_columns[c] != NULL; c++)
		if (strcmp(run_samples_columns[c], "excluded") != 0)
			used += (size_t)snprintf(csv + used, sizeof(csv) - used, ",%s",
						 run_samples_columns[c]);
	snprintf(csv + used, sizeof(csv) - used,
		 "\nSERVER_INITIATED_DISCONNECT,d1,c1,g,keep-connection,grant,0,,0,0,0,5,5,0,2,2,0,0,0,,\n"
		 ",d2,c2,g,keep-connection,grant,0,,0,0,0,9,9,0,1,1,0,0,0,,\n");
	path_in(path, sizeof(path), "samples.csv");
	write_text(path, csv);

	ck_assert_msg(run_samples_read(&rs, path, &e) == PL_OK, "%s", e.msg);
	ck_assert_uint_eq(rs->nrows, 2);
	ck_assert_str_eq(rs->rows[0].excluded, "SERVER_INITIATED_DISCONNECT");
	ck_assert_str_eq(rs->rows[1].excluded, "");
	/* The writer keeps the column: a round trip reads the same reasons. */
	path_in(copy, sizeof(copy), "copy.csv");
	ck_assert_msg(run_samples_write(rs, copy, &e) == PL_OK, "%s", e.msg);
	ck_assert_msg(run_samples_read(&again, copy, &e) == PL_OK, "%s", e.msg);
	ck_assert_str_eq(again->rows[0].excluded, "SERVER_INITIATED_DISCONNECT");
	ck_assert_str_eq(again->rows[1].excluded, "");
	run_samples_free(rs);
	run_samples_free(again);
}
END_TEST

/* Writes samples.csv with a header of every column, prefix before it, and rows. */
static void write_samples(const char *path, const char *prefix, const char *rows)
{
	char csv[4096];
	size_t used = (size_t)snprintf(csv, sizeof(csv), "%s", prefix);

	for (size_t c = 0; run_samples_columns[c] != NULL; c++)
		used += (size_t)snprintf(csv + used, sizeof(csv) - used, "%s%s", c ? "," : "",
					 run_samples_columns[c]);
	snprintf(csv + used, sizeof(csv) - used, "\n%s", rows);
	write_text(path, csv);
}

START_TEST(test_report_rejects_bad_excluded)
{
	static const char *const bad[] = { " ", "FOO,\"bar", "server_initiated", "AUTH-ERROR" };
	char path[512], rows[512];
	run_samples *rs = NULL;
	pl_errmsg e = { "" };

	path_in(path, sizeof(path), "samples.csv");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		/* Quoted, so that commas and quotes stay in the one field. */
		snprintf(rows, sizeof(rows),
			 "d1,c1,g,keep-connection,grant,0,,0,0,0,5,5,0,1,1,0,0,0,,,\"%s\"\n",
			 strcmp(bad[i], "FOO,\"bar") == 0 ? "FOO,\"\"bar" : bad[i]);
		write_samples(path, "", rows);
		ck_assert_int_eq(run_samples_read(&rs, path, &e), PL_ERR_PARSE);
		ck_assert_ptr_null(rs);
		ck_assert_msg(strstr(e.msg, "samples.csv:2: field excluded") != NULL, "%s", e.msg);
	}
}
END_TEST

START_TEST(test_report_rejects_repeated_column)
{
	char path[512];
	run_samples *rs = NULL;
	pl_errmsg e = { "" };

	path_in(path, sizeof(path), "samples.csv");
	write_samples(path, "device,", "");
	ck_assert_int_eq(run_samples_read(&rs, path, &e), PL_ERR_PARSE);
	ck_assert_msg(strstr(e.msg, "samples.csv:1: header repeats column 'device'") != NULL,
		      "%s", e.msg);
}
END_TEST

/* Spreadsheet programs start a UTF-8 file with a byte order mark, which is skipped. */
START_TEST(test_report_skips_byte_order_mark)
{
	char path[512];
	run_samples *rs = NULL;
	pl_errmsg e = { "" };

	path_in(path, sizeof(path), "samples.csv");
	write_samples(path, "\xEF\xBB\xBF",
		      "d1,c1,g,keep-connection,grant,0,,0,0,0,5,5,0,1,1,0,0,0,,,CONNECTION_LOST\n");
	ck_assert_msg(run_samples_read(&rs, path, &e) == PL_OK, "%s", e.msg);
	ck_assert_uint_eq(rs->nrows, 1);
	ck_assert_str_eq(rs->rows[0].device, "d1");
	ck_assert_str_eq(rs->rows[0].excluded, "CONNECTION_LOST");
	run_samples_free(rs);
}
END_TEST

/* Replaces the first occurrence of from in the text file at path with to. */
static void replace_in_file(const char *path, const char *from, const char *to)
{
	char *text = read_text(path);
	char *at = strstr(text, from);
	char *edited;
	size_t len;

	ck_assert_msg(at != NULL, "%s has no '%s'", path, from);
	len = strlen(text) - strlen(from) + strlen(to) + 1;
	edited = malloc(len);
	ck_assert_ptr_nonnull(edited);
	snprintf(edited, len, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
	write_text(path, edited);
	free(edited);
	free(text);
}

START_TEST(test_report_rejects_real_anchor)
{
	char dir[512], path[600];
	run_info *ri = NULL;
	pl_errmsg e = { "" };

	make_run("run", "h1", "1/1", 1000, "d", 2, 1.0, "[]");
	path_in(dir, sizeof(dir), "run");
	snprintf(path, sizeof(path), "%s/run.json", dir);
	replace_in_file(path, "\"anchor_wall_ns\": 1000,", "\"anchor_wall_ns\": 1e30,");

	ck_assert_int_eq(run_info_read(&ri, path, &e), PL_ERR_PARSE);
	ck_assert_msg(strstr(e.msg, "run.json") != NULL, "%s", e.msg);
	ck_assert_msg(strstr(e.msg, "anchor_wall_ns") != NULL, "%s", e.msg);
	ck_assert_int_eq(policylag("report", dir), 3);
}
END_TEST

/* Writes a run whose run.json has the given "observer" object, reports it and returns report.html. */
static char *report_with_observer(const char *observer)
{
	char dir[512], path[600], with[512];

	make_run("run", "h1", "1/1", 1000, "d", 2, 1.0, "[]");
	path_in(dir, sizeof(dir), "run");
	snprintf(path, sizeof(path), "%s/run.json", dir);
	snprintf(with, sizeof(with), "\"reason\": \"\", \"observer\": %s,", observer);
	replace_in_file(path, "\"reason\": \"\",", with);

	ck_assert_int_eq(policylag("report", dir), 0);
	snprintf(path, sizeof(path), "%s/report.html", dir);
	return read_text(path);
}

START_TEST(test_report_warns_observer_outage)
{
	char *html = report_with_observer("{\"status\": \"ready\", \"outages\": 2, "
					  "\"outage_ns\": 3500000000, \"outage_after_swap\": true}");

	ck_assert_msg(strstr(html, "disconnected after the swap (2 outages, 3.5 s in all), so "
				   "excluded counts may be incomplete") != NULL,
		      "no observer warning in report.html");
	free(html);
	html = output();
	ck_assert_msg(strstr(html, "warning: the lifecycle observer was disconnected") != NULL,
		      "no observer warning in the output:\n%s", html);
	free(html);
}
END_TEST

/* An outage that ended before the swap lost no event that could exclude a device. */
START_TEST(test_report_no_outage_no_warning)
{
	char *html = report_with_observer("{\"status\": \"ready\", \"outages\": 1, "
					  "\"outage_ns\": 1000000000, \"outage_after_swap\": false}");

	ck_assert_ptr_null(strstr(html, "excluded counts may be incomplete"));
	free(html);
	html = output();
	ck_assert_ptr_null(strstr(html, "excluded counts may be incomplete"));
	free(html);
}
END_TEST

START_TEST(test_report_counts_excluded_rows)
{
	/* An excluded device is counted per group and left out of n and the quantiles. */
	char dir[512], path[600];
	json_t *root, *fast, *all;
	FILE *f;

	make_run("run", "h1", "1/1", 0, "d", 3, 1.0, "[]");
	path_in(dir, sizeof(dir), "run");
	snprintf(path, sizeof(path), "%s/samples.csv", dir);
	f = fopen(path, "a");
	ck_assert_ptr_nonnull(f);
	/* Latency 0.001 s would be the fastest of the group if it counted. */
	fputs("early,client-early,fast,reconnect-per-attempt,grant,0,,0,0,0,1000000,1000000,0,"
	      "2,2,0,0,0,,,SERVER_INITIATED_DISCONNECT\n", f);
	fclose(f);

	ck_assert_int_eq(policylag("report", dir, "-q", "--expect", "fast.excluded == 1",
				   "--expect", "fast.n == 3", "--expect", "fast.min == 1s",
				   "--expect", "slow.excluded == 0"),
			 0);
	root = load_json("run/summary.json");
	fast = json_array_get(json_object_get(root, "groups"), 0);
	all = json_array_get(json_object_get(root, "groups"), 2);
	ck_assert_str_eq(json_string_value(json_object_get(fast, "name")), "fast");
	ck_assert_int_eq(json_integer_value(json_object_get(fast, "excluded")), 1);
	ck_assert_int_eq(json_integer_value(json_object_get(fast, "n")), 3);
	ck_assert_int_eq(json_integer_value(json_object_get(
				 json_object_get(fast, "excluded_reasons"), "SERVER_INITIATED_DISCONNECT")),
			 1);
	ck_assert_int_eq(json_integer_value(json_object_get(all, "excluded")), 1);
	ck_assert_int_eq(json_integer_value(json_object_get(all, "n")), 6);
	json_decref(root);
}
END_TEST

START_TEST(test_report_excluded_reasons_overflow)
{
	/* More distinct reasons than the table holds: the rest are counted as OTHER. */
	run_samples *rs = NULL;
	summary *s = NULL;
	pl_errmsg e = { "" };
	char reason[32], device[32];
	const summary_group *g;
	size_t total = 0, other = 0;

	ck_assert_int_eq(run_samples_create(&rs, &e), PL_OK);
	for (int i = 0; i < SUMMARY_REASONS_MAX + 4; i++) {
		run_sample row;

		memset(&row, 0, sizeof(row));
		snprintf(device, sizeof(device), "d%d", i);
		snprintf(reason, sizeof(reason), "REASON_%d", i);
		row.device = device;
		row.excluded = reason;
		row.latency_ns = 1000000000LL;
		row.truth_effect_ns = row.truth_error_ns = RUN_UNKNOWN;
		ck_assert_int_eq(run_samples_append(rs, &row, "g", "keep-connection", &e), PL_OK);
	}
	ck_assert_msg(summary_build_from(&s, NULL, rs, NULL, NULL, 0, &e) == PL_OK, "%s", e.msg);
	g = summary_find_group(s, "g");
	ck_assert_ptr_nonnull(g);
	ck_assert_uint_eq(g->n_excluded, SUMMARY_REASONS_MAX + 4);
	ck_assert_uint_eq(g->n_excluded_reasons, SUMMARY_REASONS_MAX);
	for (size_t i = 0; i < g->n_excluded_reasons; i++) {
		total += g->excluded_reasons[i].count;
		if (strcmp(g->excluded_reasons[i].name, "OTHER") == 0)
			other = g->excluded_reasons[i].count;
	}
	ck_assert_uint_eq(total, SUMMARY_REASONS_MAX + 4);
	ck_assert_uint_eq(other, 5);
	ck_assert_uint_eq(g->stats.n, 0);
	summary_free(s);
}
END_TEST

START_TEST(test_report_missing_run_json)
{
	char dir[512], path[600];
	char *out;

	make_run("run", "h1", "1/1", 0, "d", 3, 1.0, "[]");
	path_in(dir, sizeof(dir), "run");
	snprintf(path, sizeof(path), "%s/run.json", dir);
	ck_assert_int_eq(unlink(path), 0);

	ck_assert_int_eq(policylag("report", dir), 3);
	out = output();
	ck_assert_ptr_nonnull(strstr(out, "run.json"));
	free(out);
}
END_TEST

/* A malformed --expect is a usage error and leaves the run's files alone. */
START_TEST(test_report_invalid_expect_exit_2)
{
	char dir[512], path[600];
	struct stat before, after;
	char *out;

	make_run("run", "h1", "1/1", 0, "d", 3, 1.0, "[]");
	path_in(dir, sizeof(dir), "run");
	ck_assert_int_eq(policylag("report", dir), 0);
	snprintf(path, sizeof(path), "%s/summary.json", dir);
	ck_assert_int_eq(stat(path, &before), 0);

	ck_assert_int_eq(policylag("report", dir, "--expect", "d.p99 <"), 2);
	out = output();
	ck_assert_ptr_nonnull(strstr(out, "--expect 'd.p99 <': column 8:"));
	free(out);
	ck_assert_int_eq(stat(path, &after), 0);
	ck_assert_int_eq(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
	ck_assert_int_eq(after.st_mtim.tv_sec, before.st_mtim.tv_sec);
}
END_TEST

START_TEST(test_report_reads_quoted_fields)
{
	char path[512];
	run_samples *rs = NULL;
	pl_errmsg e = { "" };
	char csv[1024];
	size_t used = 0;

	for (size_t c = 0; run_samples_columns[c] != NULL; c++)
		used += (size_t)snprintf(csv + used, sizeof(csv) - used, "%s%s", c ? "," : "",
					 run_samples_columns[c]);
	snprintf(csv + used, sizeof(csv) - used,
		 "\r\n\"dev,\"\"1\"\"\nx\",c1,g,s,revoke,2,,0,,,,5000,1,,,,,,,-7,\r\n");
	path_in(path, sizeof(path), "samples.csv");
	write_text(path, csv);

	ck_assert_msg(run_samples_read(&rs, path, &e) == PL_OK, "%s", e.msg);
	ck_assert_uint_eq(rs->nrows, 1);
	ck_assert_str_eq(rs->rows[0].device, "dev,\"1\"\nx");
	ck_assert_int_eq(rs->rows[0].direction, RUN_REVOKE);
	ck_assert_int_eq(rs->rows[0].censored, 1);
	ck_assert(rs->rows[0].t_effect_ns == RUN_UNKNOWN);
	ck_assert_int_eq(rs->rows[0].truth_error_ns, -7);
	run_samples_free(rs);
}
END_TEST

START_TEST(test_report_compare_threshold)
{
	char a[512], b[512], json_path[512];
	json_t *root;

	make_run("a", "h1", "1/1", 0, "d", 20, 1.0, "[]");
	make_run("b", "h1", "1/1", 0, "d", 20, 1.5, "[]");
	path_in(a, sizeof(a), "a");
	path_in(b, sizeof(b), "b");
	path_in(json_path, sizeof(json_path), "cmp.json");

	ck_assert_int_eq(policylag("compare", a, b, "--max-p50-increase", "10%", "--json",
				   json_path), 1);
	ck_assert_int_eq(policylag("compare", a, b, "--max-p50-increase", "60%"), 0);
	ck_assert_int_eq(policylag("compare", a, a, "--min-logrank-p", "0.05"), 0);
	root = load_json("cmp.json");
	ck_assert_uint_ge(json_array_size(json_object_get(root, "groups")), 2);
	json_t *fast = json_array_get(json_object_get(root, "groups"), 0);
	/* Medians 10.5 s and 15.75 s: +50%. */
	ck_assert_double_eq_tol(json_real_value(json_object_get(fast, "p50_change")), 0.5, 1e-9);
	ck_assert_uint_eq(json_array_size(json_object_get(fast, "crossed")), 1);
	json_decref(root);
	ck_assert_int_eq(policylag("compare", a), 2);
}
END_TEST

START_TEST(test_report_compare_missing_groups_cross)
{
	char a[512], empty[512];

	/* B has a header and no samples, so none of A's groups is left in B. */
	make_run("a", "h1", "1/1", 0, "d", 20, 1.0, "[]");
	make_run("empty", "h1", "1/1", 0, "d", 0, 1.0, "[]");
	path_in(a, sizeof(a), "a");
	path_in(empty, sizeof(empty), "empty");
	ck_assert_int_eq(policylag("compare", a, empty, "--max-p50-increase", "10%"), 1);
	ck_assert_int_eq(policylag("compare", a, empty), 0);
}
END_TEST

START_TEST(test_report_merge_shards)
{
	char s1[512], s2[512], out[512];
	json_t *root;

	make_run("s1", "h1", "1/2", 1000, "x", 10, 1.0, "[\"all.n == 40\"]");
	make_run("s2", "h1", "2/2", 5000, "y", 10, 1.0, "[\"all.n == 40\"]");
	path_in(s1, sizeof(s1), "s1");
	path_in(s2, sizeof(s2), "s2");
	path_in(out, sizeof(out), "merged");

	ck_assert_int_eq(policylag("merge", s1, s2, "--out", out), 0);
	root = load_json("merged/summary.json");
	json_t *all = json_array_get(json_object_get(root, "groups"), 2);
	ck_assert_str_eq(json_string_value(json_object_get(all, "name")), "all");
	ck_assert_int_eq(json_integer_value(json_object_get(all, "n")), 40);
	ck_assert_int_eq(json_integer_value(json_object_get(root, "expectations_failed")), 0);
	json_decref(root);
	root = load_json("merged/run.json");
	ck_assert_str_eq(json_string_value(json_object_get(root, "shard")), "1/1");
	ck_assert_uint_eq(json_array_size(json_object_get(root, "merged_from")), 2);
	json_decref(root);
	/* A second merge into the same directory would overwrite a run. */
	ck_assert_int_eq(policylag("merge", s1, s2, "--out", out), 3);
}
END_TEST

START_TEST(test_report_merge_warns_missing_shard)
{
	char s1[512], s3[512], out[512];
	char *text;

	make_run("s1", "h1", "1/3", 1000, "x", 3, 1.0, "[]");
	make_run("s3", "h1", "3/3", 1000, "z", 3, 1.0, "[]");
	path_in(s1, sizeof(s1), "s1");
	path_in(s3, sizeof(s3), "s3");
	path_in(out, sizeof(out), "merged");

	ck_assert_int_eq(policylag("merge", s1, s3, "--out", out, "-q"), 0);
	text = output();
	ck_assert_msg(strstr(text, "warning: shards missing of 3: 2;") != NULL, "%s", text);
	ck_assert_msg(strstr(text, "covers 2 of 3 shards") != NULL, "%s", text);
	/* -q leaves only the warning. */
	ck_assert_msg(strstr(text, "merged 2 shards") == NULL, "%s", text);
	free(text);
}
END_TEST

START_TEST(test_report_merge_complete_no_warning)
{
	char s1[512], s2[512], out[512];
	char *text;

	make_run("s1", "h1", "1/2", 1000, "x", 3, 1.0, "[]");
	make_run("s2", "h1", "2/2", 1000, "y", 3, 1.0, "[]");
	path_in(s1, sizeof(s1), "s1");
	path_in(s2, sizeof(s2), "s2");
	path_in(out, sizeof(out), "merged");

	ck_assert_int_eq(policylag("merge", s1, s2, "--out", out), 0);
	text = output();
	ck_assert_msg(strstr(text, "warning") == NULL, "%s", text);
	ck_assert_msg(strstr(text, "merged 2 shards") != NULL, "%s", text);
	free(text);
}
END_TEST

START_TEST(test_report_merge_rejects_two_outs)
{
	char s1[512], out[512], other[512];
	char *text;

	make_run("s1", "h1", "1/1", 1000, "x", 3, 1.0, "[]");
	path_in(s1, sizeof(s1), "s1");
	path_in(out, sizeof(out), "merged");
	path_in(other, sizeof(other), "other");

	ck_assert_int_eq(policylag("merge", s1, "--out", out, "--out", other), 2);
	text = output();
	ck_assert_msg(strstr(text, "--out given twice") != NULL, "%s", text);
	free(text);
}
END_TEST

START_TEST(test_report_merge_events_time_order)
{
	/* Shard 2's anchor is 1 s after shard 1's, so its times move by +1 s. Shard
	 * files need not be in time order, and equal times go in shard order
	 * whatever the order on the command line. */
	static const struct {
		long long t_ns;
		int shard;
		const char *type;
	} expected[] = {
		{ 0, 1, "swap" },	     { 500000000, 2, "connect" },
		{ 1000000000, 1, "error" },  { 1000000000, 2, "swap" },
		{ 1500000000, 1, "connect" }, { 3000000000, 2, "error" },
		{ 4000000000, 1, "throttle" },
	};
	char s1[512], s2[512], out[512], path[600];
	char *text, *line;
	size_t n = 0;

	make_run("s1", "h1", "1/2", 1000000000, "x", 3, 1.0, "[]");
	make_run("s2", "h1", "2/2", 2000000000, "y", 3, 1.0, "[]");
	path_in(s1, sizeof(s1), "s1");
	path_in(s2, sizeof(s2), "s2");
	path_in(out, sizeof(out), "merged");
	snprintf(path, sizeof(path), "%s/events.jsonl", s1);
	write_text(path, "{\"t_ns\": 4000000000, \"type\": \"throttle\", \"op\": \"connect\"}\n"
			 "{\"t_ns\": 0, \"type\": \"swap\", \"swap_index\": 0}\n"
			 "\n"
			 "{\"t_ns\": 1500000000, \"type\": \"connect\", \"device\": \"x-fast-1\"}\n"
			 "{\"t_ns\": 1000000000, \"type\": \"error\", \"message\": \"m\"}\n");
	snprintf(path, sizeof(path), "%s/events.jsonl", s2);
	write_text(path, "{\"t_ns\": 0, \"type\": \"swap\", \"swap_index\": 0}\n"
			 "{\"t_ns\": -500000000, \"type\": \"connect\", \"device\": \"y-fast-1\"}\n"
			 "{\"t_ns\": 2000000000, \"type\": \"error\", \"message\": \"m\"}\n");

	ck_assert_int_eq(policylag("merge", s2, s1, "--out", out), 0);
	snprintf(path, sizeof(path), "%s/events.jsonl", out);
	text = read_text(path);
	for (line = text; *line != '\0'; n++) {
		char *end = strchr(line, '\n');
		json_error_t jerr;
		json_t *obj;

		ck_assert_msg(end != NULL, "line %zu has no line break", n + 1);
		*end = '\0';
		obj = json_loads(line, 0, &jerr);

		ck_assert_msg(obj != NULL, "line %zu: %s", n + 1, jerr.text);
		ck_assert_uint_lt(n, sizeof(expected) / sizeof(expected[0]));
		ck_assert_int_eq(json_integer_value(json_object_get(obj, "t_ns")), expected[n].t_ns);
		ck_assert_int_eq(json_integer_value(json_object_get(obj, "shard")), expected[n].shard);
		ck_assert_str_eq(json_string_value(json_object_get(obj, "type")), expected[n].type);
		json_decref(obj);
		line = end + 1;
	}
	ck_assert_uint_eq(n, sizeof(expected) / sizeof(expected[0]));
	free(text);
}
END_TEST

/* The merged files list the shards by index, whatever the command line's order. */
START_TEST(test_report_merge_orders_by_shard)
{
	char s1[512], s2[512], out[512], path[600];
	json_t *root, *from;
	char *text, *row;

	make_run("s1", "h1", "1/2", 1000, "x", 3, 1.0, "[]");
	make_run("s2", "h1", "2/2", 5000, "y", 3, 1.0, "[]");
	path_in(s1, sizeof(s1), "s1");
	path_in(s2, sizeof(s2), "s2");
	path_in(out, sizeof(out), "merged");

	ck_assert_int_eq(policylag("merge", s2, s1, "--out", out), 0);
	root = load_json("merged/run.json");
	from = json_object_get(root, "merged_from");
	ck_assert_uint_eq(json_array_size(from), 2);
	ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(from, 0), "shard")), 1);
	ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(from, 1), "shard")), 2);
	json_decref(root);
	snprintf(path, sizeof(path), "%s/samples.csv", out);
	text = read_text(path);
	row = strchr(text, '\n');
	ck_assert_ptr_nonnull(row);
	ck_assert_msg(row[1] == 'x', "first row is not from shard 1: %.40s", row + 1);
	free(text);
}
END_TEST

START_TEST(test_report_merge_rejects_profiles)
{
	char s1[512], s2[512], out[512];
	char *text;

	make_run("s1", "h1", "1/2", 0, "x", 5, 1.0, "[]");
	make_run("s2", "h2", "2/2", 0, "y", 5, 1.0, "[]");
	path_in(s1, sizeof(s1), "s1");
	path_in(s2, sizeof(s2), "s2");
	path_in(out, sizeof(out), "merged");

	ck_assert_int_eq(policylag("merge", s1, s2, "--out", out), 2);
	text = output();
	ck_assert_ptr_nonnull(strstr(text, "different profiles"));
	free(text);
}
END_TEST

START_TEST(test_report_merge_rejects_overlap)
{
	char s1[512], s2[512], out[512];
	char *text;

	make_run("s1", "h1", "1/2", 0, "same", 5, 1.0, "[]");
	make_run("s2", "h1", "2/2", 0, "same", 5, 1.0, "[]");
	path_in(s1, sizeof(s1), "s1");
	path_in(s2, sizeof(s2), "s2");
	path_in(out, sizeof(out), "merged");

	ck_assert_int_eq(policylag("merge", s1, s2, "--out", out), 2);
	text = output();
	ck_assert_ptr_nonnull(strstr(text, "is in both"));
	free(text);
}
END_TEST

/*
 * Merge aligns shards by their wall-clock anchors. A shard without one would
 * count as the earliest, and every other shard's times would move by the
 * whole epoch (about 1.8e18 ns).
 */
START_TEST(test_report_merge_rejects_missing_anchor)
{
	char s1[512], s2[512], out[512];
	char *text;

	make_run("s1", "h1", "1/2", 1796432034000000000L, "x", 3, 1.0, "[]");
	make_run("s2", "h1", "2/2", 0, "y", 3, 1.0, "[]");
	path_in(s1, sizeof(s1), "s1");
	path_in(s2, sizeof(s2), "s2");
	path_in(out, sizeof(out), "merged");

	ck_assert_int_eq(policylag("merge", s1, s2, "--out", out), 2);
	text = output();
	ck_assert_ptr_nonnull(strstr(text, "anchor_wall_ns"));
	ck_assert_ptr_nonnull(strstr(text, s2));
	free(text);
}
END_TEST

/* Runs argv with stdout and stderr into log; returns the exit status. */
static int run_logged(char *const argv[], const char *log)
{
	int status;
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		dup2(fd, 1);
		dup2(fd, 2);
		execvp(argv[0], argv);
		_exit(127);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static void require_chromium(void)
{
	const char *src = getenv("POLICYLAG_SOURCE_DIR");
	char script[512], log[512];

	ck_assert_msg(src != NULL, "POLICYLAG_SOURCE_DIR is not set; run through make check");
	snprintf(script, sizeof(script), "%s/scripts/install-deps.sh", src);
	path_in(log, sizeof(log), "install.log");
	char *argv[] = { "bash", script, "--extra", "chromium", NULL };
	if (run_logged(argv, log) != 0) {
		char *text = read_text(log);
		ck_abort_msg("chromium is required for this test and could not be installed with "
			     "'scripts/install-deps.sh --extra chromium': %s", text);
	}
}

/* Headless Chromium on url with one extra argument (--screenshot=... or --dump-dom). */
static int chromium(const char *url, const char *extra, const char *log)
{
	char profile[600], user_data[700];

	path_in(profile, sizeof(profile), "chromium-profile-%ld", (long)random());
	snprintf(user_data, sizeof(user_data), "--user-data-dir=%s", profile);
	char *argv[] = { "timeout", "120", "chromium", "--headless", "--no-sandbox",
			 "--disable-gpu", "--disable-background-networking",
			 "--disable-component-update", "--disable-sync", "--no-first-run",
			 "--enable-logging=stderr", "--v=0", "--window-size=1000,2600",
			 user_data, (char *)extra, (char *)url, NULL };
	return run_logged(argv, log);
}

static long file_size(const char *path)
{
	struct stat st;

	ck_assert_msg(stat(path, &st) == 0, "%s: %s", path, strerror(errno));
	return (long)st.st_size;
}

START_TEST(test_report_renders_in_chromium)
{
	char dir[512], url[600], blank_url[600], blank[512], shot[512], blank_shot[512], log[512];
	char arg[600];
	char *text;

	require_chromium();
	make_run("run", "h1", "1/1", 0, "d", 50, 1.0, default_expectations);
	path_in(dir, sizeof(dir), "run");
	ck_assert_int_eq(policylag("report", dir, "-q"), 1);
	snprintf(url, sizeof(url), "file://%s/report.html", dir);
	path_in(blank, sizeof(blank), "blank.html");
	write_text(blank, "<!DOCTYPE html><html><head><title>blank</title></head><body></body></html>");
	snprintf(blank_url, sizeof(blank_url), "file://%s", blank);
	path_in(shot, sizeof(shot), "report.png");
	path_in(blank_shot, sizeof(blank_shot), "blank.png");
	path_in(log, sizeof(log), "chromium.log");

	snprintf(arg, sizeof(arg), "--screenshot=%s", shot);
	ck_assert_int_eq(chromium(url, arg, log), 0);
	text = read_text(log);
	ck_assert_msg(strstr(text, "CONSOLE") == NULL, "console messages while rendering: %s", text);
	free(text);
	snprintf(arg, sizeof(arg), "--screenshot=%s", blank_shot);
	ck_assert_int_eq(chromium(blank_url, arg, log), 0);
	/* A rendered page compresses far worse than an empty white one of the same size. */
	ck_assert_msg(file_size(shot) > 5 * file_size(blank_shot),
		      "screenshot %ld bytes, empty page %ld bytes: the report looks blank",
		      file_size(shot), file_size(blank_shot));

	ck_assert_int_eq(chromium(url, "--dump-dom", log), 0);
	text = read_text(log);
	ck_assert_uint_ge(count_of(text, "<svg "), 4);
	ck_assert_ptr_nonnull(strstr(text, "Kaplan-Meier"));
	ck_assert_ptr_null(strstr(text, "CONSOLE"));
	free(text);
}
END_TEST

static Suite *report_suite(void)
{
	Suite *s = suite_create("report");
	TCase *tc = tcase_create("files");
	TCase *browser = tcase_create("chromium");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_report_writes_outputs);
	tcase_add_test(tc, test_report_expect_option_passes);
	tcase_add_test(tc, test_report_bad_row_names_line);
	tcase_add_test(tc, test_report_bad_event_names_line);
	tcase_add_test(tc, test_report_events_span_600s);
	tcase_add_test(tc, test_report_counts_unmeasured_rows);
	tcase_add_test(tc, test_report_rejects_repeated_row);
	tcase_add_test(tc, test_report_accepts_device_per_swap);
	tcase_add_test(tc, test_report_accepts_negative_latency);
	tcase_add_test(tc, test_report_rejects_group_with_space);
	tcase_add_test(tc, test_report_rejects_reserved_group);
	tcase_add_test(tc, test_report_reads_file_without_excluded);
	tcase_add_test(tc, test_report_reads_excluded_column);
	tcase_add_test(tc, test_report_rejects_bad_excluded);
	tcase_add_test(tc, test_report_rejects_repeated_column);
	tcase_add_test(tc, test_report_skips_byte_order_mark);
	tcase_add_test(tc, test_report_rejects_real_anchor);
	tcase_add_test(tc, test_report_warns_observer_outage);
	tcase_add_test(tc, test_report_no_outage_no_warning);
	tcase_add_test(tc, test_report_counts_excluded_rows);
	tcase_add_test(tc, test_report_excluded_reasons_overflow);
	tcase_add_test(tc, test_report_missing_run_json);
	tcase_add_test(tc, test_report_invalid_expect_exit_2);
	tcase_add_test(tc, test_report_reads_quoted_fields);
	tcase_add_test(tc, test_report_compare_threshold);
	tcase_add_test(tc, test_report_compare_missing_groups_cross);
	tcase_add_test(tc, test_report_merge_shards);
	tcase_add_test(tc, test_report_merge_warns_missing_shard);
	tcase_add_test(tc, test_report_merge_complete_no_warning);
	tcase_add_test(tc, test_report_merge_rejects_two_outs);
	tcase_add_test(tc, test_report_merge_events_time_order);
	tcase_add_test(tc, test_report_merge_rejects_profiles);
	tcase_add_test(tc, test_report_merge_orders_by_shard);
	tcase_add_test(tc, test_report_merge_rejects_overlap);
	tcase_add_test(tc, test_report_merge_rejects_missing_anchor);
	suite_add_tcase(s, tc);
	/* Installing chromium on first use can take minutes. */
	tcase_set_timeout(browser, 600);
	tcase_add_checked_fixture(browser, setup, teardown);
	tcase_add_test(browser, test_report_renders_in_chromium);
	suite_add_tcase(s, browser);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(report_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
