/*
 * Run summary: groups the samples, computes statistics and comparisons,
 * evaluates expectations and writes summary.json and junit.xml.
 */
#include "results/summary.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "results/report_html.h"
#include "results/run.h"

#define SUMMARY_LEVEL 0.95
/* Comparisons with a log-rank p-value above this are reported as "no clear difference". */
#define SUMMARY_ALPHA 0.05

void summary_format_seconds(char *buf, size_t len, double seconds)
{
	double a = fabs(seconds);

	if (isnan(seconds))
		snprintf(buf, len, "unknown");
	else if (a >= 100)
		snprintf(buf, len, "%.0f s", seconds);
	else if (a >= 1)
		snprintf(buf, len, "%.3g s", seconds);
	else if (a >= 1e-3)
		snprintf(buf, len, "%.3g ms", seconds * 1e3);
	else if (a >= 1e-6)
		snprintf(buf, len, "%.3g us", seconds * 1e6);
	else if (a > 0)
		snprintf(buf, len, "%.3g ns", seconds * 1e9);
	else
		snprintf(buf, len, "0 s");
}

void summary_format_p(char *buf, size_t len, double p)
{
	if (isnan(p))
		snprintf(buf, len, "p unknown");
	else if (p < 1e-9)
		snprintf(buf, len, "p < 1e-9");
	else if (p < 1e-3)
		snprintf(buf, len, "p = %.1e", p);
	else
		snprintf(buf, len, "p = %.2g", p);
}

/* ---- groups ---- */

/* Which rows a summary group takes: one device group and/or one direction. */
typedef struct group_filter {
	size_t group;      /* SIZE_MAX for every group */
	int direction;     /* -1 for both */
} group_filter;

static int row_matches(const run_sample *row, const group_filter *f)
{
	return (f->group == SIZE_MAX || row->group == f->group) &&
	       (f->direction < 0 || (int)row->direction == f->direction);
}

static void add_counts(summary_group *g, const run_sample *row, double *truth_sum)
{
	const int64_t counts[] = { row->attempts, row->connects, row->connect_failures,
				   row->throttled, row->errors };
	uint64_t *dst[] = { &g->attempts, &g->connects, &g->connect_failures, &g->throttled,
			    &g->errors };

	for (size_t i = 0; i < 5; i++)
		if (counts[i] != RUN_UNKNOWN && counts[i] > 0)
			*dst[i] += (uint64_t)counts[i];
	if (row->truth_error_ns != RUN_UNKNOWN) {
		double err = fabs((double)row->truth_error_ns) / (double)PL_NS_PER_S;
		*truth_sum += err;
		if (g->n_truth == 0 || err > g->truth_error_max)
			g->truth_error_max = err;
		g->n_truth++;
	}
}

/* Counts one excluded row under its reason; the last entry collects reasons beyond the table. */
static void count_reason(summary_group *g, const char *reason)
{
	summary_reason *r;

	for (size_t i = 0; i < g->n_excluded_reasons; i++) {
		if (strcmp(g->excluded_reasons[i].name, reason) == 0) {
			g->excluded_reasons[i].count++;
			return;
		}
	}
	if (g->n_excluded_reasons < SUMMARY_REASONS_MAX - 1) {
		r = &g->excluded_reasons[g->n_excluded_reasons++];
		snprintf(r->name, sizeof(r->name), "%s", reason);
	} else {
		r = &g->excluded_reasons[SUMMARY_REASONS_MAX - 1];
		snprintf(r->name, sizeof(r->name), "OTHER");
		g->n_excluded_reasons = SUMMARY_REASONS_MAX;
	}
	r->count++;
}

static pl_err group_fill(summary *s, summary_group *g, const group_filter *f, pl_errmsg *e)
{
	const run_samples *rs = s->samples;
	size_t n = 0;
	double truth_sum = 0;
	double *values = malloc((rs->nrows ? rs->nrows : 1) * sizeof(*values));
	unsigned char *censored = malloc(rs->nrows ? rs->nrows : 1);
	pl_err err;

	if (values == NULL || censored == NULL) {
		err = pl_errmsg_set(e, PL_ERR_NOMEM, "summary: out of memory");
		goto free_buffers;
	}
	g->truth_error_mean = g->truth_error_max = NAN;
	for (size_t i = 0; i < rs->nrows; i++) {
		const run_sample *row = &rs->rows[i];
		if (!row_matches(row, f))
			continue;
		add_counts(g, row, &truth_sum);
		if (row->latency_ns == RUN_UNKNOWN) {
			g->n_unmeasured++;
			continue;
		}
		if (row->excluded != NULL && row->excluded[0] != '\0') {
			g->n_excluded++;
			count_reason(g, row->excluded);
			continue;
		}
		values[n] = (double)row->latency_ns / (double)PL_NS_PER_S;
		censored[n++] = (unsigned char)row->censored;
	}
	if (g->n_truth > 0)
		g->truth_error_mean = truth_sum / (double)g->n_truth;
	err = stats_sample_create(&g->sample, values, censored, n, e);
	if (err == PL_OK)
		err = stats_km_create(&g->km, g->sample, s->level, e);
	if (err == PL_OK)
		stats_group_describe(g->sample, g->km, &g->stats);
free_buffers:
	free(values);
	free(censored);
	return err;
}

static pl_err group_add(summary *s, const char *name, const char *strategy,
			const group_filter *f, pl_errmsg *e)
{
	summary_group *grown = realloc(s->groups, (s->ngroups + 1) * sizeof(*grown));

	if (grown == NULL)
		return pl_errmsg_set(e, PL_ERR_NOMEM, "summary: out of memory");
	s->groups = grown;
	summary_group *g = &grown[s->ngroups++];
	memset(g, 0, sizeof(*g));
	snprintf(g->name, sizeof(g->name), "%s", name);
	snprintf(g->strategy, sizeof(g->strategy), "%s", strategy);
	return group_fill(s, g, f, e);
}

static void directions_present(const run_samples *rs, int present[2])
{
	present[0] = present[1] = 0;
	for (size_t i = 0; i < rs->nrows; i++)
		present[rs->rows[i].direction] = 1;
}

static const char *const direction_names[] = { "grant", "revoke" };

/* Device groups, then per-direction groups when the run has both, then "all". */
static pl_err groups_build(summary *s, size_t *ndevice_groups, pl_errmsg *e)
{
	const run_samples *rs = s->samples;
	int present[2];
	pl_err err = PL_OK;
	char name[SUMMARY_NAME_MAX];

	for (size_t i = 0; i < rs->ngroups && err == PL_OK; i++) {
		group_filter f = { i, -1 };
		err = group_add(s, rs->groups[i].name, rs->groups[i].strategy, &f, e);
	}
	*ndevice_groups = s->ngroups;
	directions_present(rs, present);
	for (size_t i = 0; i < rs->ngroups && present[0] && present[1] && err == PL_OK; i++) {
		for (int d = 0; d < 2 && err == PL_OK; d++) {
			group_filter f = { i, d };
			snprintf(name, sizeof(name), "%s:%s", rs->groups[i].name, direction_names[d]);
			err = group_add(s, name, rs->groups[i].strategy, &f, e);
		}
	}
	if (err == PL_OK && rs->ngroups > 1) {
		group_filter f = { SIZE_MAX, -1 };
		err = group_add(s, "all", "", &f, e);
	}
	return err;
}

/* ---- comparisons and verdicts ---- */

static void pair_verdict(const summary *s, summary_pair *pair)
{
	const summary_group *a = &s->groups[pair->a], *b = &s->groups[pair->b];
	const stats_comparison *c = &pair->cmp;
	char shift[32], lo[32], hi[32], ma[32], mb[32], p[32];
	double sign = c->shift.value <= 0 ? 1 : -1;
	const summary_group *fast = sign > 0 ? a : b, *slow = sign > 0 ? b : a;

	summary_format_p(p, sizeof(p), c->logrank.p);
	summary_format_seconds(ma, sizeof(ma), a->stats.quantile[0].value);
	summary_format_seconds(mb, sizeof(mb), b->stats.quantile[0].value);
	summary_format_seconds(shift, sizeof(shift), fabs(c->shift.value));
	/* The interval of the shift, turned to "fast is sooner by lo-hi". */
	summary_format_seconds(lo, sizeof(lo), sign > 0 ? -c->shift.hi : c->shift.lo);
	summary_format_seconds(hi, sizeof(hi), sign > 0 ? -c->shift.lo : c->shift.hi);
	if (isnan(c->logrank.p) || isnan(c->shift.value)) {
		snprintf(pair->verdict, sizeof(pair->verdict),
			 "%s and %s cannot be compared (%zu and %zu effective devices)", a->name,
			 b->name, a->stats.n_effect, b->stats.n_effect);
	} else if (c->logrank.p >= SUMMARY_ALPHA) {
		snprintf(pair->verdict, sizeof(pair->verdict),
			 "no clear difference between %s and %s (log-rank %s; medians %s and %s)",
			 a->name, b->name, p, ma, mb);
	} else {
		snprintf(pair->verdict, sizeof(pair->verdict),
			 "%s saw the change %s sooner than %s (Hodges-Lehmann shift, %.0f%% CI %s to %s; "
			 "medians %s and %s), log-rank %s",
			 fast->name, shift, slow->name, s->level * 100, lo, hi,
			 fast == a ? ma : mb, fast == a ? mb : ma, p);
	}
}

static pl_err pairs_add(summary *s, size_t a, size_t b, pl_errmsg *e)
{
	summary_pair *grown = realloc(s->pairs, (s->npairs + 1) * sizeof(*grown));

	if (grown == NULL)
		return pl_errmsg_set(e, PL_ERR_NOMEM, "summary: out of memory");
	s->pairs = grown;
	summary_pair *pair = &grown[s->npairs++];
	memset(pair, 0, sizeof(*pair));
	pair->a = a;
	pair->b = b;
	stats_compare(s->groups[a].sample, s->groups[b].sample, s->level, &pair->cmp);
	pair_verdict(s, pair);
	return PL_OK;
}

/* Every pair of device groups, and of their same-direction subgroups. */
static pl_err pairs_build(summary *s, size_t ndevice, pl_errmsg *e)
{
	pl_err err = PL_OK;
	size_t nsplit = s->ngroups > ndevice && strcmp(s->groups[s->ngroups - 1].name, "all") == 0
				? s->ngroups - ndevice - 1
				: s->ngroups - ndevice;

	for (size_t i = 0; i < ndevice && err == PL_OK; i++)
		for (size_t j = i + 1; j < ndevice && err == PL_OK; j++)
			err = pairs_add(s, i, j, e);
	/* Split groups come in (grant, revoke) pairs per device group. */
	for (size_t i = 0; i < nsplit && err == PL_OK; i++)
		for (size_t j = i + 2; j < nsplit && err == PL_OK; j += 2)
			err = pairs_add(s, ndevice + i, ndevice + j, e);
	return err;
}

static void headline(summary *s)
{
	const summary_pair *best = NULL;

	for (size_t i = 0; i < s->npairs; i++) {
		const summary_pair *p = &s->pairs[i];
		if (!isnan(p->cmp.logrank.p) &&
		    (best == NULL || p->cmp.logrank.p < best->cmp.logrank.p))
			best = p;
	}
	if (best != NULL) {
		snprintf(s->verdict, sizeof(s->verdict), "%s", best->verdict);
		return;
	}
	if (s->ngroups == 0) {
		snprintf(s->verdict, sizeof(s->verdict), "the run has no samples");
		return;
	}
	const summary_group *g = &s->groups[0];
	char p50[32], p99[32], excluded[64] = "";

	if (g->n_excluded > 0)
		snprintf(excluded, sizeof(excluded), " (%zu more excluded)", g->n_excluded);
	summary_format_seconds(p50, sizeof(p50), g->stats.quantile[0].value);
	summary_format_seconds(p99, sizeof(p99), g->stats.quantile[3].value);
	snprintf(s->verdict, sizeof(s->verdict),
		 "%s: median %s, p99 %s; %zu of %zu devices saw the change%s", g->name, p50, p99,
		 g->stats.n_effect, g->stats.n, excluded);
}

/* ---- expectations and events ---- */

static void check_one(summary *s, summary_check *c, const char *text)
{
	expect_expr *x = NULL;
	pl_errmsg why;
	size_t column = 0;

	snprintf(c->text, sizeof(c->text), "%s", text);
	if (expect_parse(&x, text, &column, &why) != PL_OK) {
		c->result.actual = NAN;
		snprintf(c->result.message, sizeof(c->result.message),
			 "invalid expectation at column %zu: %s", column + 1, why.msg);
	} else {
		expect_evaluate(x, s, &c->result);
	}
	expect_free(x);
	if (!c->result.passed)
		s->nchecks_failed++;
}

static pl_err checks_build(summary *s, const char *const *texts, size_t n, pl_errmsg *e)
{
	if (n == 0)
		return PL_OK;
	s->checks = calloc(n, sizeof(*s->checks));
	if (s->checks == NULL)
		return pl_errmsg_set(e, PL_ERR_NOMEM, "summary: out of memory");
	s->nchecks = n;
	for (size_t i = 0; i < n; i++)
		check_one(s, &s->checks[i], texts[i]);
	return PL_OK;
}

static void events_count(summary *s)
{
	const run_events *ev = s->events;

	s->have_events = ev != NULL;
	for (size_t i = 0; ev != NULL && i < ev->count; i++) {
		const run_event *item = &ev->items[i];
		switch (item->type) {
		case RUN_EVENT_CONNECT: s->events_connect++; break;
		case RUN_EVENT_DISCONNECT: s->events_disconnect++; break;
		case RUN_EVENT_SWAP: s->events_swap++; break;
		case RUN_EVENT_ERROR: s->events_error++; break;
		case RUN_EVENT_THROTTLE:
			if (item->op == RUN_OP_CONNECT)
				s->events_throttle_connect++;
			else if (item->op == RUN_OP_SUBSCRIBE)
				s->events_throttle_subscribe++;
			else if (item->op == RUN_OP_PUBLISH)
				s->events_throttle_publish++;
			else if (item->op == RUN_OP_CONTROL)
				s->events_throttle_control++;
			else
				s->events_throttle_other++;
			break;
		default: break;
		}
	}
}

/* ---- building ---- */

pl_err summary_build_from(summary **out, run_info *info, run_samples *samples,
			  run_events *events, const char *const *expectations,
			  size_t nexpectations, pl_errmsg *e)
{
	summary *s = calloc(1, sizeof(*s));
	size_t ndevice = 0;
	pl_err err;

	assert(samples != NULL);
	*out = NULL;
	if (s == NULL) {
		run_info_free(info);
		run_samples_free(samples);
		run_events_free(events);
		return pl_errmsg_set(e, PL_ERR_NOMEM, "summary: out of memory");
	}
	s->level = SUMMARY_LEVEL;
	s->run = info;
	s->samples = samples;
	s->events = events;
	events_count(s);
	if (expectations == NULL && info != NULL) {
		expectations = (const char *const *)info->expectations;
		nexpectations = info->nexpectations;
	}
	err = groups_build(s, &ndevice, e);
	if (err == PL_OK)
		err = pairs_build(s, ndevice, e);
	if (err == PL_OK) {
		headline(s);
		err = checks_build(s, expectations, nexpectations, e);
	}
	if (err != PL_OK) {
		summary_free(s);
		return err;
	}
	*out = s;
	return PL_OK;
}

pl_err summary_build(summary **out, const char *run_dir, const char *const *expectations,
		     size_t nexpectations, pl_errmsg *e)
{
	char path[4096];
	run_info *info = NULL;
	run_samples *samples = NULL;
	run_events *events = NULL;
	pl_err err;

	*out = NULL;
	err = run_path(path, sizeof(path), run_dir, "run.json", e);
	if (err == PL_OK)
		err = run_info_read(&info, path, e);
	if (err == PL_OK)
		err = run_path(path, sizeof(path), run_dir, "samples.csv", e);
	if (err == PL_OK)
		err = run_samples_read(&samples, path, e);
	if (err == PL_OK)
		err = run_path(path, sizeof(path), run_dir, "events.jsonl", e);
	if (err == PL_OK) {
		err = run_events_read(&events, path, e);
		if (err == PL_ERR_NOT_FOUND) {
			err = PL_OK;
			pl_errmsg_clear(e);
		}
	}
	if (err != PL_OK) {
		run_info_free(info);
		run_samples_free(samples);
		return err;
	}
	return summary_build_from(out, info, samples, events, expectations, nexpectations, e);
}

void summary_free(summary *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->ngroups; i++) {
		stats_sample_free(s->groups[i].sample);
		stats_km_free(s->groups[i].km);
	}
	free(s->groups);
	free(s->pairs);
	free(s->checks);
	run_info_free(s->run);
	run_samples_free(s->samples);
	run_events_free(s->events);
	free(s);
}

const summary_group *summary_find_group(const summary *s, const char *name)
{
	for (size_t i = 0; i < s->ngroups; i++)
		if (strcmp(s->groups[i].name, name) == 0)
			return &s->groups[i];
	return NULL;
}

const summary_pair *summary_find_pair(const summary *s, const char *a, const char *b,
				      int *swapped)
{
	for (size_t i = 0; i < s->npairs; i++) {
		const char *pa = s->groups[s->pairs[i].a].name;
		const char *pb = s->groups[s->pairs[i].b].name;
		if (strcmp(pa, a) == 0 && strcmp(pb, b) == 0) {
			*swapped = 0;
			return &s->pairs[i];
		}
		if (strcmp(pa, b) == 0 && strcmp(pb, a) == 0) {
			*swapped = 1;
			return &s->pairs[i];
		}
	}
	return NULL;
}
