#include "harness/progress.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/parse.h"

/* The in-place line is redrawn at most this often. */
#define PROGRESS_TTY_INTERVAL_NS (250 * PL_NS_PER_MS)

struct progress {
	FILE *stream;
	int tty;
	int line_open; /* an in-place line is on screen without a newline */
	int64_t interval_ns;
	int64_t start_ns;
	int64_t last_ns;
};

pl_err progress_create(progress **out, FILE *stream, int tty, int64_t log_interval_ns,
		       int64_t start_ns)
{
	progress *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return PL_ERR_NOMEM;
	p->stream = stream;
	p->tty = tty;
	p->interval_ns = tty ? PROGRESS_TTY_INTERVAL_NS : log_interval_ns;
	p->start_ns = start_ns;
	p->last_ns = INT64_MIN / 2;
	*out = p;
	return PL_OK;
}

void progress_free(progress *p)
{
	if (p == NULL)
		return;
	progress_end_line(p);
	free(p);
}

void progress_update(progress *p, const progress_counts *c, int64_t now_ns, int force)
{
	char elapsed[32];
	char rate[32] = "";

	if (!force && now_ns - p->last_ns < p->interval_ns)
		return;
	if (c->connect_rate > 0)
		snprintf(rate, sizeof(rate), "  rate %.4g/s", c->connect_rate);
	p->last_ns = now_ns;
	pl_format_duration((now_ns - p->start_ns) / PL_NS_PER_S * PL_NS_PER_S, elapsed,
			   sizeof(elapsed));
	fprintf(p->stream,
		"%s%-7s connected %llu/%llu  subscribed %llu  swapped %llu  effective %llu"
		"  censored %llu  errors %llu%s  elapsed %s%s",
		p->tty ? "\r\033[K" : "", c->phase, (unsigned long long)c->connected,
		(unsigned long long)c->devices, (unsigned long long)c->subscribed,
		(unsigned long long)c->swapped, (unsigned long long)c->effective,
		(unsigned long long)c->censored, (unsigned long long)c->errors, rate, elapsed,
		p->tty ? "" : "\n");
	p->line_open = p->tty;
	fflush(p->stream);
}

void progress_end_line(progress *p)
{
	if (p == NULL || !p->line_open)
		return;
	fputc('\n', p->stream);
	fflush(p->stream);
	p->line_open = 0;
}

int progress_quantile(const int64_t *sorted, size_t neffective, size_t ndevices, double p,
		      int64_t *out)
{
	size_t rank;

	if (ndevices == 0)
		return 0;
	rank = (size_t)ceil(p * (double)ndevices);
	if (rank < 1)
		rank = 1;
	if (rank > neffective)
		return 0;
	*out = sorted[rank - 1];
	return 1;
}

static int compare_int64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a;
	int64_t y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/*
 * Formats one table cell: the quantile, or ">bound" when it falls on a
 * censored device. The bound is rounded down so that it stays a lower bound.
 */
static void format_cell(char *buf, size_t len, const progress_row *r, double p)
{
	int64_t v;

	if (r->devices == 0) {
		snprintf(buf, len, "-");
	} else if (progress_quantile(r->latencies, r->effective, r->devices, p, &v)) {
		snprintf(buf, len, "%.3fs", (double)v / (double)PL_NS_PER_S);
	} else {
		snprintf(buf, len, ">%llds", (long long)(r->censor_ns / PL_NS_PER_S));
	}
}

void progress_print_table(FILE *stream, progress_row *rows, size_t nrows)
{
	static const double levels[] = { 0.50, 0.90, 0.99 };
	size_t width = 5;

	for (size_t i = 0; i < nrows; i++)
		if (strlen(rows[i].group) > width)
			width = strlen(rows[i].group);
	fprintf(stream, "%-*s %8s %9s %8s %8s %10s %10s %10s %10s\n", (int)width, "group",
		"devices", "effective", "censored", "excluded", "p50", "p90", "p99", "max");
	for (size_t i = 0; i < nrows; i++) {
		progress_row *r = &rows[i];
		char cells[4][32];

		qsort(r->latencies, r->effective, sizeof(int64_t), compare_int64);
		for (size_t q = 0; q < 3; q++)
			format_cell(cells[q], sizeof(cells[q]), r, levels[q]);
		format_cell(cells[3], sizeof(cells[3]), r, 1.0);
		fprintf(stream, "%-*s %8zu %9zu %8zu %8zu %10s %10s %10s %10s\n", (int)width,
			r->group, r->devices, r->effective, r->censored, r->excluded, cells[0],
			cells[1], cells[2], cells[3]);
	}
}
