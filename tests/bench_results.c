/*
 * Benchmark: statistics and report for one million synthetic samples (two
 * groups of 500,000 devices, log-normal latencies, 2% censored at 600 s).
 * Prints "results_1m_seconds" (wall time of summary_build_from +
 * summary_write_all: statistics, comparisons, summary.json, junit.xml and
 * report.html), "results_1m_cpu_seconds" (user + system CPU time of the
 * same, which other jobs on a shared machine disturb less),
 * "results_1m_csv_read_seconds" (reading the same rows back from
 * samples.csv) and "results_1m_peak_rss_kb" (getrusage, whole process).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "common/clock.h"
#include "results/run.h"
#include "results/summary.h"

#define BENCH_ROWS 1000000

/* Standard normal from two uniforms (Box-Muller); deterministic via rand_r. */
static double normal(unsigned *seed)
{
	double u = ((double)rand_r(seed) + 1) / ((double)RAND_MAX + 2);
	double v = ((double)rand_r(seed) + 1) / ((double)RAND_MAX + 2);

	return sqrt(-2 * log(u)) * cos(2 * M_PI * v);
}

static double cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static run_samples *make_samples(void)
{
	run_samples *rs = NULL;
	pl_errmsg e;
	unsigned seed = 12345;
	char device[32];

	if (run_samples_create(&rs, &e) != PL_OK)
		return NULL;
	for (int i = 0; i < BENCH_ROWS; i++) {
		int slow = i % 2;
		double seconds = exp((slow ? log(60) : log(5)) + 0.8 * normal(&seed));
		run_sample row = { 0 };

		snprintf(device, sizeof(device), "device-%07d", i);
		row.device = row.client_id = device;
		row.cert_id = "";
		row.censored = seconds > 600 || rand_r(&seed) % 50 == 0;
		row.latency_ns = (int64_t)(fmin(seconds, 600) * 1e9);
		if (row.censored)
			row.latency_ns = 600 * PL_NS_PER_S;
		row.t_swap_start_ns = 0;
		row.t_swap_ns = (int64_t)(i / 1000) * PL_NS_PER_MS;
		row.t_effect_ns = row.censored ? RUN_UNKNOWN : row.t_swap_ns + row.latency_ns;
		row.attempts = row.connects = 1;
		row.truth_effect_ns = row.truth_error_ns = RUN_UNKNOWN;
		if (run_samples_append(rs, &row, slow ? "keep" : "reconnect",
				       slow ? "keep-connection" : "reconnect-per-attempt", &e) != PL_OK) {
			run_samples_free(rs);
			return NULL;
		}
	}
	return rs;
}

int main(void)
{
	static const char *const expectations[] = { "reconnect.p99 < 60s",
						    "compare(reconnect, keep).p < 0.001" };
	char dir[] = "/tmp/policylag-bench.XXXXXX", path[256];
	struct rusage ru;
	summary *s = NULL;
	run_samples *back = NULL;
	pl_errmsg e = { "" };
	run_samples *rs = make_samples();

	if (rs == NULL || mkdtemp(dir) == NULL) {
		fprintf(stderr, "bench_results: setup failed\n");
		return 1;
	}
	snprintf(path, sizeof(path), "%s/samples.csv", dir);
	if (run_samples_write(rs, path, &e) != PL_OK) {
		fprintf(stderr, "bench_results: %s\n", e.msg);
		return 1;
	}

	double cpu0 = cpu_seconds();
	int64_t t0 = pl_mono_ns();
	if (summary_build_from(&s, NULL, rs, NULL, expectations, 2, &e) != PL_OK ||
	    summary_write_all(s, dir, &e) != PL_OK) {
		fprintf(stderr, "bench_results: %s\n", e.msg);
		return 1;
	}
	int64_t t1 = pl_mono_ns();
	double cpu1 = cpu_seconds();
	if (run_samples_read(&back, path, &e) != PL_OK) {
		fprintf(stderr, "bench_results: %s\n", e.msg);
		return 1;
	}
	int64_t t2 = pl_mono_ns();

	getrusage(RUSAGE_SELF, &ru);
	printf("results_1m_seconds %.3f\n", (double)(t1 - t0) / 1e9);
	printf("results_1m_cpu_seconds %.3f\n", cpu1 - cpu0);
	printf("results_1m_csv_read_seconds %.3f\n", (double)(t2 - t1) / 1e9);
	printf("results_1m_peak_rss_kb %ld\n", ru.ru_maxrss);
	printf("# %s\n", s->verdict);
	run_samples_free(back);
	summary_free(s);
	/* Leave nothing behind in /tmp. */
	const char *names[] = { "samples.csv", "summary.json", "junit.xml", "report.html" };
	for (size_t i = 0; i < 4; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		remove(path);
	}
	remove(dir);
	return 0;
}
