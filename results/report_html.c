/*
 * report.html writer. Every chart is inline SVG, so the page works offline
 * and prints; no scripts and no external resources.
 */
#include "results/report_html.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "results/report_svg.h"
#include "results/run.h"
#include "results/summary.h"

/* Points per curve: enough for a 760-pixel-wide chart, whatever the number of devices. */
#define CURVE_POINTS 400
#define HISTOGRAM_BINS 60
#define SLOWEST_ROWS 20
/* Bins of the per-second event chart; wider bins above this many seconds. */
#define EVENT_BINS_MAX 600

static const char css[] =
	"body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1a1a1a;"
	"max-width:1000px;margin:24px auto;padding:0 16px}"
	"h1{font-size:24px;margin:0 0 8px}h2{font-size:19px;margin:28px 0 8px;"
	"border-bottom:1px solid #ccc;padding-bottom:4px}"
	".verdict{font-size:18px;background:#eef5fb;border-left:5px solid #0072B2;padding:12px 16px}"
	".fail{color:#b00020;font-weight:600}.pass{color:#1b7a3a;font-weight:600}"
	"table{border-collapse:collapse;margin:8px 0;font-size:13px}"
	"th,td{border:1px solid #ccc;padding:3px 6px;text-align:right;vertical-align:top;white-space:nowrap}"
	"td.w{white-space:normal}"
	"th{background:#f3f3f3}td.l,th.l{text-align:left}"
	".chart{width:100%;max-width:760px;height:auto;display:block}"
	".grid{stroke:#e3e3e3;stroke-width:1}.frame{fill:none;stroke:#888}"
	".tick{font-size:11px;fill:#333}.axis{font-size:13px;fill:#111}.legend{font-size:12px;fill:#111}"
	".note{color:#555;font-size:13px}"
	"@media print{body{max-width:none;margin:0}.chart,table{page-break-inside:avoid}"
	".verdict{background:none}}";

/* Device groups come first in the summary; their count is what the charts show. */
static size_t device_group_count(const summary *s)
{
	return s->samples != NULL ? s->samples->ngroups : 0;
}

static void put_seconds(FILE *f, double v)
{
	char buf[32];

	summary_format_seconds(buf, sizeof(buf), v);
	fputs(buf, f);
}

static void put_estimate(FILE *f, const stats_estimate *est)
{
	put_seconds(f, est->value);
	if (!isnan(est->value)) {
		fputs("<br><span class=\"note\">", f);
		put_seconds(f, est->lo);
		fputs(" &ndash; ", f);
		put_seconds(f, est->hi);
		fputs("</span>", f);
	}
}

/* ---- verdict, expectations, tables ---- */

static void write_verdict(FILE *f, const summary *s)
{
	fputs("<p class=\"verdict\">", f);
	report_html_escape(f, s->verdict);
	fputs("</p>\n", f);
	if (s->nchecks == 0)
		return;
	fprintf(f, "<h2>Expectations: %zu of %zu passed</h2>\n<table><tr><th class=\"l\">expectation"
		   "</th><th class=\"l\">result</th><th class=\"l\">detail</th></tr>\n",
		s->nchecks - s->nchecks_failed, s->nchecks);
	for (size_t i = 0; i < s->nchecks; i++) {
		const summary_check *c = &s->checks[i];
		fputs("<tr><td class=\"l\"><code>", f);
		report_html_escape(f, c->text);
		fprintf(f, "</code></td><td class=\"l %s\">%s</td><td class=\"l w\">",
			c->result.passed ? "pass" : "fail", c->result.passed ? "passed" : "FAILED");
		report_html_escape(f, c->result.message);
		fputs("</td></tr>\n", f);
	}
	fputs("</table>\n", f);
}

static void write_group_row(FILE *f, const summary_group *g)
{
	const stats_group *st = &g->stats;

	fputs("<tr><td class=\"l\">", f);
	report_html_escape(f, g->name);
	fputs("</td><td class=\"l w\">", f);
	report_html_escape(f, g->strategy);
	fprintf(f, "</td><td>%zu</td><td>%zu</td><td>%zu</td>", st->n, st->n_effect, st->n_censored);
	for (size_t q = 0; q < STATS_NQUANTILES; q++) {
		fputs("<td>", f);
		put_estimate(f, &st->quantile[q]);
		fputs("</td>", f);
	}
	fputs("<td>", f);
	put_seconds(f, st->min);
	fputs(" / ", f);
	put_seconds(f, st->mean);
	fputs("<br>", f);
	put_seconds(f, st->max);
	fputs("</td></tr>\n", f);
}

static void write_activity_row(FILE *f, const summary_group *g)
{
	fputs("<tr><td class=\"l\">", f);
	report_html_escape(f, g->name);
	fprintf(f, "</td><td>%zu</td><td>%zu</td><td>%" PRIu64 "</td><td>%" PRIu64 "</td><td>%"
		   PRIu64 "</td><td>%" PRIu64 "</td><td>%" PRIu64 "</td><td>%zu</td><td>",
		g->n_unmeasured, g->n_excluded, g->attempts, g->connects, g->connect_failures,
		g->throttled, g->errors, g->n_truth);
	put_seconds(f, g->truth_error_mean);
	fputs("</td><td>", f);
	put_seconds(f, g->truth_error_max);
	fputs("</td></tr>\n", f);
}

/* Lifecycle events published while the observer was disconnected are lost. */
static void write_observer_gap(FILE *f, const summary *s)
{
	char text[256];

	if (s->run == NULL || !s->run->observer_outage_after_swap)
		return;
	run_observer_gap_text(text, sizeof(text), s->run->observer_outages,
			      s->run->observer_outage_ns);
	fprintf(f, "<p class=\"note\"><strong>Warning:</strong> %s.</p>\n", text);
}

static void write_groups(FILE *f, const summary *s)
{
	fprintf(f, "<h2>Groups</h2>\n<p class=\"note\">Time from the policy swap to its effect. "
		   "Quantiles are Kaplan-Meier estimates with %.0f%% Brookmeyer-Crowley intervals "
		   "below them; min, mean and max are over devices that saw the change; censored devices "
		   "did not see it before the observation timeout. \"unknown\": the curve never reaches "
		   "that quantile.</p>\n",
		s->level * 100);
	fputs("<table><tr><th class=\"l\">group</th><th class=\"l\">strategy</th><th>devices</th>"
	      "<th>effective</th><th>censored</th><th>p50</th><th>p90</th><th>p95</th><th>p99</th>"
	      "<th>min / mean<br>max</th></tr>\n",
	      f);
	for (size_t i = 0; i < s->ngroups; i++)
		write_group_row(f, &s->groups[i]);
	fputs("</table>\n<p class=\"note\">Device activity, summed over the devices of each group. "
	      "Rows without latency (the device was never measured) are left out of the statistics, "
	      "and so are excluded rows: devices disconnected after the swap for a reason other "
	      "than authorization (for example SERVER_INITIATED_DISCONNECT), whose new connection "
	      "took the new policy at once. "
	      "The truth error is the measured effect time minus the time the simulator's policy "
	      "cache really refreshed (simulator runs only).</p>\n",
	      f);
	fputs("<table><tr><th class=\"l\">group</th><th>rows without latency</th><th>excluded</th>"
	      "<th>attempts</th><th>connects</th>"
	      "<th>connect failures</th><th>throttled</th><th>errors</th><th>rows with truth</th>"
	      "<th>mean |truth error|</th><th>max |truth error|</th></tr>\n",
	      f);
	for (size_t i = 0; i < s->ngroups; i++)
		write_activity_row(f, &s->groups[i]);
	fputs("</table>\n", f);
	write_observer_gap(f, s);
}

static void write_pairs(FILE *f, const summary *s)
{
	char p[32];

	if (s->npairs == 0)
		return;
	fputs("<h2>Comparisons</h2>\n<table><tr><th class=\"l\">a</th><th class=\"l\">b</th>"
	      "<th>log-rank</th><th>Mann-Whitney</th><th>shift a &minus; b (Hodges-Lehmann)</th>"
	      "<th>Cliff's &delta;</th></tr>\n",
	      f);
	for (size_t i = 0; i < s->npairs; i++) {
		const summary_pair *pair = &s->pairs[i];
		fputs("<tr><td class=\"l\">", f);
		report_html_escape(f, s->groups[pair->a].name);
		fputs("</td><td class=\"l\">", f);
		report_html_escape(f, s->groups[pair->b].name);
		summary_format_p(p, sizeof(p), pair->cmp.logrank.p);
		fprintf(f, "</td><td>&chi;&sup2; %.3g, %s</td>", pair->cmp.logrank.chisq, p);
		summary_format_p(p, sizeof(p), pair->cmp.mann_whitney.p);
		fprintf(f, "<td>U %.6g, %s%s</td><td>", pair->cmp.mann_whitney.u, p,
			pair->cmp.mann_whitney.exact ? " (exact)" : "");
		put_estimate(f, &pair->cmp.shift);
		fprintf(f, "</td><td>%.3f</td></tr>\n", pair->cmp.cliff_delta);
	}
	fputs("</table>\n<ul>\n", f);
	for (size_t i = 0; i < s->npairs; i++) {
		fputs("<li>", f);
		report_html_escape(f, s->pairs[i].verdict);
		fputs("</li>\n", f);
	}
	fputs("</ul>\n", f);
}

/* ---- charts ---- */

static const char *color(size_t i)
{
	return report_svg_colors[i % REPORT_SVG_NCOLORS];
}

/* Largest value (observed or censored) over the device groups. */
static double latency_max(const summary *s)
{
	double max = 0;

	for (size_t i = 0; i < device_group_count(s); i++) {
		const stats_sample *sm = s->groups[i].sample;
		size_t n = stats_sample_count(sm);
		if (n > 0 && stats_sample_value(sm, n - 1) > max)
			max = stats_sample_value(sm, n - 1);
	}
	return max;
}

/* Smallest positive value over the device groups, or 0 when there is none. */
static double latency_min_positive(const summary *s)
{
	double min = 0;

	for (size_t i = 0; i < device_group_count(s); i++) {
		const stats_sample *sm = s->groups[i].sample;
		for (size_t k = 0; k < stats_sample_count(sm); k++) {
			double v = stats_sample_value(sm, k);
			if (v > 0) {
				if (min == 0 || v < min)
					min = v;
				break;
			}
		}
	}
	return min;
}

/* Time axis of a Kaplan-Meier chart: [x_min, x_max], linear or logarithmic. */
typedef struct km_axis {
	double x_min, x_max;
	int log_x;
} km_axis;

/* Sample time k of CURVE_POINTS, evenly spaced on the axis' scale. */
static double km_grid(const km_axis *axis, size_t k)
{
	double frac = (double)k / CURVE_POINTS;

	if (axis->log_x)
		return axis->x_min * pow(axis->x_max / axis->x_min, frac);
	return axis->x_min + (axis->x_max - axis->x_min) * frac;
}

/*
 * Copies a Kaplan-Meier curve into x/surv/lo/hi, starting at (0, 1). A long
 * curve is sampled at CURVE_POINTS evenly spaced times instead, which keeps
 * the page small; the sampled curve still steps at the right pixel.
 */
static size_t km_points(const stats_km *km, const km_axis *axis, double *x, double *surv,
			double *lo, double *hi)
{
	size_t nsteps = stats_km_nsteps(km), n = 1, j = 0;
	stats_km_step prev = { .surv = 1, .lo = 1, .hi = 1 };

	x[0] = 0;
	surv[0] = lo[0] = hi[0] = 1;
	for (size_t k = 0; k < (nsteps <= CURVE_POINTS ? nsteps : CURVE_POINTS + 1); k++) {
		if (nsteps <= CURVE_POINTS) {
			prev = *stats_km_step_at(km, k);
			x[n] = prev.t;
		} else {
			x[n] = km_grid(axis, k);
			while (j < nsteps && stats_km_step_at(km, j)->t <= x[n])
				prev = *stats_km_step_at(km, j++);
		}
		surv[n] = prev.surv;
		lo[n] = prev.lo;
		hi[n] = prev.hi;
		n++;
	}
	return n;
}

static void km_chart(FILE *f, const summary *s, const km_axis *axis, double *buf, size_t cap)
{
	report_svg p = { .log_x = axis->log_x };
	char label[SUMMARY_NAME_MAX + 32];

	report_svg_begin(&p, f, "Kaplan-Meier survival curves", axis->x_min, axis->x_max, 0, 1,
			 axis->log_x ? "time since the swap (s, logarithmic)" : "time since the swap (s)",
			 "fraction of devices without the change");
	for (size_t g = 0; g < device_group_count(s); g++) {
		const stats_km *km = s->groups[g].km;
		size_t n = km_points(km, axis, buf, buf + cap, buf + 2 * cap, buf + 3 * cap);
		report_svg_band(&p, buf, buf + 2 * cap, buf + 3 * cap, n, color(g));
		report_svg_line(&p, buf, buf + cap, n, 1, color(g), 0);
		snprintf(label, sizeof(label), "%s (%zu censored)", s->groups[g].name,
			 s->groups[g].stats.n_censored);
		report_svg_legend(&p, label, color(g), 0);
	}
	report_svg_end(&p);
}

/* Curves that span more than this ratio of times also get a chart with a log time axis. */
#define KM_LOG_SPAN 20

static void write_km_chart(FILE *f, const summary *s)
{
	size_t cap = CURVE_POINTS + 2;
	double *buf = malloc(4 * cap * sizeof(double));
	km_axis linear = { 0, latency_max(s), 0 };
	km_axis logarithmic = { latency_min_positive(s), latency_max(s), 1 };

	if (buf == NULL)
		return;
	fputs("<h2>Kaplan-Meier: devices not yet on the new policy</h2>\n", f);
	km_chart(f, s, &linear, buf, cap);
	if (logarithmic.x_min > 0 && logarithmic.x_max > KM_LOG_SPAN * logarithmic.x_min) {
		/* The axis starts at the decade below the first effect, where every curve is 1. */
		logarithmic.x_min = pow(10, floor(log10(logarithmic.x_min)));
		km_chart(f, s, &logarithmic, buf, cap);
	}
	fprintf(f, "<p class=\"note\">Shaded: pointwise %.0f%% confidence band (Greenwood variance, "
		   "log scale). A curve that stays above 0 at the right edge means devices never saw the "
		   "change before the timeout.</p>\n",
		s->level * 100);
	free(buf);
}

static void write_histogram(FILE *f, const summary *s)
{
	double x_max = 0, y_max = 0;
	size_t ngroups = device_group_count(s);
	double *counts = calloc(ngroups * HISTOGRAM_BINS + 1, sizeof(double));
	double x[HISTOGRAM_BINS + 1], y[HISTOGRAM_BINS + 1];
	report_svg p = { .log_x = 0 };

	if (counts == NULL)
		return;
	for (size_t g = 0; g < ngroups; g++)
		if (s->groups[g].stats.n_effect > 0 && s->groups[g].stats.max > x_max)
			x_max = s->groups[g].stats.max;
	if (x_max <= 0)
		x_max = 1;
	for (size_t g = 0; g < ngroups; g++) {
		const stats_sample *sm = s->groups[g].sample;
		for (size_t i = 0; i < stats_sample_count(sm); i++) {
			if (stats_sample_censored(sm, i))
				continue;
			size_t bin = (size_t)(stats_sample_value(sm, i) / x_max * HISTOGRAM_BINS);
			if (bin >= HISTOGRAM_BINS)
				bin = HISTOGRAM_BINS - 1;
			double *c = &counts[g * HISTOGRAM_BINS + bin];
			*c += 1;
			if (*c > y_max)
				y_max = *c;
		}
	}
	fputs("<h2>Latency histogram (devices that saw the change)</h2>\n", f);
	report_svg_begin(&p, f, "Latency histogram", 0, x_max, 0, y_max > 0 ? y_max : 1,
			 "latency (s)", "devices per bin");
	for (size_t g = 0; g < ngroups; g++) {
		for (size_t b = 0; b <= HISTOGRAM_BINS; b++) {
			x[b] = x_max * (double)b / HISTOGRAM_BINS;
			y[b] = counts[g * HISTOGRAM_BINS + (b < HISTOGRAM_BINS ? b : b - 1)];
		}
		/* Steps start at each bin's left edge: draw y[b] from x[b] to x[b + 1]. */
		report_svg_line(&p, x, y, HISTOGRAM_BINS + 1, 1, color(g), g % 2 == 1);
		report_svg_legend(&p, s->groups[g].name, color(g), g % 2 == 1);
	}
	report_svg_end(&p);
	fprintf(f, "<p class=\"note\">%d bins of %.3g s each. Censored devices are not shown.</p>\n",
		HISTOGRAM_BINS, x_max / HISTOGRAM_BINS);
	free(counts);
}

/*
 * Start of each swap: the earliest t_swap_start_ns among its rows. Swap
 * indexes beyond the table fall back to the row's own t_swap_ns.
 */
#define SWAP_INDEX_MAX 256

static void swap_starts(const run_samples *rs, int64_t *start)
{
	for (size_t i = 0; i < SWAP_INDEX_MAX; i++)
		start[i] = RUN_UNKNOWN;
	for (size_t i = 0; i < rs->nrows; i++) {
		const run_sample *r = &rs->rows[i];
		if (r->swap_index < 0 || r->swap_index >= SWAP_INDEX_MAX ||
		    r->t_swap_start_ns == RUN_UNKNOWN)
			continue;
		int64_t *slot = &start[r->swap_index];
		if (*slot == RUN_UNKNOWN || r->t_swap_start_ns < *slot)
			*slot = r->t_swap_start_ns;
	}
}

/* Seconds from the start of the row's swap to its effect, or NaN. */
static double effect_since_swap(const run_sample *r, const int64_t *start)
{
	int64_t origin = RUN_UNKNOWN;

	if (r->censored || r->t_effect_ns == RUN_UNKNOWN)
		return NAN;
	if (r->swap_index >= 0 && r->swap_index < SWAP_INDEX_MAX)
		origin = start[r->swap_index];
	if (origin == RUN_UNKNOWN)
		origin = r->t_swap_ns;
	if (origin == RUN_UNKNOWN)
		return NAN;
	return (double)(r->t_effect_ns - origin) / (double)PL_NS_PER_S;
}

/*
 * Cumulative effects of group g at the CURVE_POINTS + 1 times x_max * k /
 * CURVE_POINTS: a histogram of the effect times, summed up (no sorting).
 */
static void group_effect_curve(const summary *s, size_t g, const int64_t *start, double x_max,
			       double *y)
{
	const run_samples *rs = s->samples;

	memset(y, 0, (CURVE_POINTS + 1) * sizeof(*y));
	for (size_t i = 0; i < rs->nrows; i++) {
		if (rs->rows[i].group != g)
			continue;
		double t = effect_since_swap(&rs->rows[i], start);
		if (isnan(t))
			continue;
		/* An effect at t counts from the first sample time >= t. */
		double pos = x_max > 0 ? ceil(t / x_max * CURVE_POINTS) : 0;
		pos = fmin(fmax(pos, 0), CURVE_POINTS);
		y[(size_t)pos] += 1;
	}
	for (size_t k = 1; k <= CURVE_POINTS; k++)
		y[k] += y[k - 1];
}

static void write_effects_chart(FILE *f, const summary *s)
{
	const run_samples *rs = s->samples;
	int64_t start[SWAP_INDEX_MAX];
	double x[CURVE_POINTS + 1], y[CURVE_POINTS + 1], x_max = 0, y_max = 1;
	report_svg p = { .log_x = 0 };

	swap_starts(rs, start);
	for (size_t i = 0; i < rs->nrows; i++) {
		double t = effect_since_swap(&rs->rows[i], start);
		if (!isnan(t) && t > x_max)
			x_max = t;
	}
	for (size_t g = 0; g < device_group_count(s); g++)
		if ((double)s->groups[g].stats.n > y_max)
			y_max = (double)s->groups[g].stats.n;
	fputs("<h2>Effects over time since the swap</h2>\n", f);
	report_svg_begin(&p, f, "Cumulative effects since the swap started", 0, x_max, 0, y_max,
			 "time since the swap started (s)", "devices that saw the change");
	for (size_t g = 0; g < device_group_count(s); g++) {
		for (size_t k = 0; k <= CURVE_POINTS; k++)
			x[k] = x_max * (double)k / CURVE_POINTS;
		group_effect_curve(s, g, start, x_max, y);
		report_svg_line(&p, x, y, CURVE_POINTS + 1, 1, color(g), 0);
		report_svg_legend(&p, s->groups[g].name, color(g), 0);
	}
	report_svg_end(&p);
	fputs("<p class=\"note\">Counted from the moment the swap started (the first device's swap), "
	      "so the time the swap itself takes to roll out is included; the latency charts above "
	      "count from each device's own swap time.</p>\n",
	      f);
}

/* Event rate series drawn in the per-second chart. */
static const struct {
	run_event_type type;
	const char *label;
} rate_series[] = {
	{ RUN_EVENT_CONNECT, "connects" },
	{ RUN_EVENT_THROTTLE, "throttles" },
	{ RUN_EVENT_ERROR, "errors" },
	{ RUN_EVENT_DISCONNECT, "disconnects" },
};
#define NRATES (sizeof(rate_series) / sizeof(rate_series[0]))

static void event_range(const run_events *ev, int64_t *t0, int64_t *t1)
{
	*t0 = ev->items[0].t_ns;
	*t1 = ev->items[0].t_ns;
	for (size_t i = 1; i < ev->count; i++) {
		if (ev->items[i].t_ns < *t0)
			*t0 = ev->items[i].t_ns;
		if (ev->items[i].t_ns > *t1)
			*t1 = ev->items[i].t_ns;
	}
}

static void write_rates_chart(FILE *f, const summary *s)
{
	const run_events *ev = s->events;
	int64_t t0, t1;
	/* Up to EVENT_BINS_MAX + 1 bins, plus the point that closes the last step. */
	double rates[NRATES][EVENT_BINS_MAX + 2] = { { 0 } }, x[EVENT_BINS_MAX + 2], y_max = 1;
	report_svg p = { .log_x = 0 };

	fputs("<h2>Connects, throttles and errors per second</h2>\n", f);
	if (ev == NULL || ev->count == 0) {
		fputs("<p class=\"note\">The run has no events.jsonl, or it is empty.</p>\n", f);
		return;
	}
	event_range(ev, &t0, &t1);
	double span = (double)(t1 - t0) / (double)PL_NS_PER_S;
	double width = fmax(1.0, ceil(span / EVENT_BINS_MAX));
	size_t nbins = (size_t)(span / width) + 1;
	for (size_t i = 0; i < ev->count; i++) {
		size_t bin = (size_t)((double)(ev->items[i].t_ns - t0) / (double)PL_NS_PER_S / width);
		for (size_t r = 0; r < NRATES && bin < nbins; r++)
			if (rate_series[r].type == ev->items[i].type)
				rates[r][bin] += 1 / width;
	}
	for (size_t r = 0; r < NRATES; r++)
		for (size_t b = 0; b < nbins; b++)
			y_max = fmax(y_max, rates[r][b]);
	for (size_t b = 0; b <= nbins; b++)
		x[b] = (double)b * width;
	report_svg_begin(&p, f, "Events per second", 0, (double)nbins * width, 0, y_max,
			 "time since the first event (s)", "events per second");
	for (size_t i = 0; i < ev->count; i++)
		if (ev->items[i].type == RUN_EVENT_SWAP)
			report_svg_marker(&p, (double)(ev->items[i].t_ns - t0) / (double)PL_NS_PER_S, "swap");
	for (size_t r = 0; r < NRATES; r++) {
		rates[r][nbins] = rates[r][nbins - 1];
		report_svg_line(&p, x, rates[r], nbins + 1, 1, color(r), r == 3);
		report_svg_legend(&p, rate_series[r].label, color(r), r == 3);
	}
	report_svg_end(&p);
	fprintf(f, "<p class=\"note\">Bins of %.0f s; dotted vertical lines mark swaps.</p>\n", width);
}

/* ---- tables from samples and run.json ---- */

/* Censored rows rank as slowest, then by latency. */
static int slower(const run_sample *a, const run_sample *b)
{
	if (a->censored != b->censored)
		return a->censored > b->censored;
	return a->latency_ns > b->latency_ns;
}

/* Indexes of the SLOWEST_ROWS slowest rows, slowest first; one pass with insertion. */
static size_t slowest_rows(const run_samples *rs, size_t *top)
{
	size_t n = 0;

	for (size_t i = 0; i < rs->nrows; i++) {
		if (n == SLOWEST_ROWS && !slower(&rs->rows[i], &rs->rows[top[n - 1]]))
			continue;
		size_t pos = n < SLOWEST_ROWS ? n++ : n - 1;
		while (pos > 0 && slower(&rs->rows[i], &rs->rows[top[pos - 1]])) {
			top[pos] = top[pos - 1];
			pos--;
		}
		top[pos] = i;
	}
	return n;
}

static void write_slowest(FILE *f, const summary *s)
{
	const run_samples *rs = s->samples;
	size_t top[SLOWEST_ROWS];
	size_t n = slowest_rows(rs, top);

	fprintf(f, "<h2>Slowest devices (%zu of %zu rows)</h2>\n", n, rs->nrows);
	fputs("<table><tr><th class=\"l\">device</th><th class=\"l\">group</th><th class=\"l\">"
	      "direction</th><th>swap</th><th>latency</th><th class=\"l\">state</th><th>attempts</th>"
	      "<th>connects</th><th>throttled</th><th>errors</th><th>worker</th></tr>\n",
	      f);
	for (size_t i = 0; i < n; i++) {
		const run_sample *r = &rs->rows[top[i]];
		fputs("<tr><td class=\"l\">", f);
		report_html_escape(f, r->device);
		fputs("</td><td class=\"l\">", f);
		report_html_escape(f, rs->groups[r->group].name);
		fprintf(f, "</td><td class=\"l\">%s</td><td>%" PRId64 "</td><td>",
			r->direction == RUN_REVOKE ? "revoke" : "grant", r->swap_index);
		put_seconds(f, (double)r->latency_ns / (double)PL_NS_PER_S);
		fprintf(f, "</td><td class=\"l\">%s</td>",
			r->censored ? "censored (no effect before the timeout)" : "effective");
		const int64_t counts[] = { r->attempts, r->connects, r->throttled, r->errors, r->worker };
		for (size_t c = 0; c < 5; c++) {
			if (counts[c] == RUN_UNKNOWN)
				fputs("<td></td>", f);
			else
				fprintf(f, "<td>%" PRId64 "</td>", counts[c]);
		}
		fputs("</tr>\n", f);
	}
	fputs("</table>\n", f);
}

static void meta_row(FILE *f, const char *key, const char *value)
{
	fputs("<tr><th class=\"l\">", f);
	report_html_escape(f, key);
	fputs("</th><td class=\"l\">", f);
	report_html_escape(f, value);
	fputs("</td></tr>\n", f);
}

static void write_metadata(FILE *f, const summary *s)
{
	const run_info *ri = s->run;
	char buf[64];

	fputs("<h2>Run</h2>\n<table>\n", f);
	if (ri != NULL) {
		meta_row(f, "profile", ri->profile_name);
		meta_row(f, "profile hash", ri->profile_hash);
		meta_row(f, "run id", ri->run_id);
		snprintf(buf, sizeof(buf), "%" PRId64 "/%" PRId64, ri->shard_index, ri->shard_count);
		meta_row(f, "shard", buf);
		meta_row(f, "target", ri->target);
		meta_row(f, "started", ri->start_wall);
		meta_row(f, "ended", ri->end_wall);
		meta_row(f, "status", ri->status);
		if (ri->reason[0] != '\0')
			meta_row(f, "reason", ri->reason);
		meta_row(f, "tool version", ri->tool_version);
	}
	snprintf(buf, sizeof(buf), "%zu", s->samples->nrows);
	meta_row(f, "samples", buf);
	snprintf(buf, sizeof(buf), "%zu", s->events != NULL ? s->events->count : 0);
	meta_row(f, "events", buf);
	fputs("</table>\n", f);
}

static void write_page(FILE *f, const summary *s)
{
	const char *profile = s->run != NULL ? s->run->profile_name : "run";

	fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
	      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
	      "<title>policylag report: ",
	      f);
	report_html_escape(f, profile);
	fprintf(f, "</title>\n<style>%s</style></head><body>\n<h1>policylag report: ", css);
	report_html_escape(f, profile);
	fputs("</h1>\n", f);
	write_verdict(f, s);
	write_groups(f, s);
	write_pairs(f, s);
	write_km_chart(f, s);
	write_histogram(f, s);
	write_effects_chart(f, s);
	write_rates_chart(f, s);
	write_slowest(f, s);
	write_metadata(f, s);
	fputs("</body></html>\n", f);
}

pl_err report_html_write(const summary *s, const char *path, pl_errmsg *e)
{
	FILE *f = fopen(path, "w");

	if (f == NULL)
		return pl_errmsg_set(e, PL_ERR_IO, "cannot create %s: %s", path, strerror(errno));
	write_page(f, s);
	if (ferror(f) | (fclose(f) != 0))
		return pl_errmsg_set(e, PL_ERR_IO, "writing %s failed: %s", path, strerror(errno));
	return PL_OK;
}
