/*
 * summary.json and junit.xml writers, and summary_finish_run.
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "results/report_html.h"
#include "results/report_svg.h"
#include "results/run.h"
#include "results/summary.h"

/* JSON number, or null for NaN and infinities (JSON has no NaN). */
static json_t *number(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

static json_t *estimate_json(const stats_estimate *est)
{
	return json_pack("{s:o, s:o, s:o}", "value", number(est->value), "lo", number(est->lo),
			 "hi", number(est->hi));
}

static json_t *group_json(const summary_group *g)
{
	static const char *const names[STATS_NQUANTILES] = { "p50", "p90", "p95", "p99" };
	const stats_group *st = &g->stats;
	json_t *q = json_object();
	json_t *reasons = json_object();
	json_t *o;

	for (size_t i = 0; i < STATS_NQUANTILES; i++)
		json_object_set_new(q, names[i], estimate_json(&st->quantile[i]));
	for (size_t i = 0; i < g->n_excluded_reasons; i++)
		json_object_set_new(reasons, g->excluded_reasons[i].name,
				    json_integer((json_int_t)g->excluded_reasons[i].count));
	o = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:o, s:o, s:o, s:o, s:I, s:I, s:I, s:I,"
			 " s:I, s:I, s:o, s:o}",
			 "name", g->name, "strategy", g->strategy,
			 "n", (json_int_t)st->n, "effective", (json_int_t)st->n_effect,
			 "censored", (json_int_t)st->n_censored,
			 "unmeasured", (json_int_t)g->n_unmeasured,
			 "excluded", (json_int_t)g->n_excluded,
			 "min_s", number(st->min), "mean_s", number(st->mean),
			 "max_s", number(st->max), "quantiles_s", q,
			 "attempts", (json_int_t)g->attempts, "connects", (json_int_t)g->connects,
			 "connect_failures", (json_int_t)g->connect_failures,
			 "throttled", (json_int_t)g->throttled, "errors", (json_int_t)g->errors,
			 "truth_rows", (json_int_t)g->n_truth,
			 "truth_error_mean_s", number(g->truth_error_mean),
			 "truth_error_max_s", number(g->truth_error_max));
	if (o != NULL)
		json_object_set_new(o, "excluded_reasons", reasons);
	else
		json_decref(reasons);
	return o;
}

static json_t *pair_json(const summary *s, const summary_pair *p)
{
	const stats_comparison *c = &p->cmp;
	json_t *logrank = json_pack("{s:o, s:o, s:[oo], s:[oo]}", "chisq", number(c->logrank.chisq),
				    "p", number(c->logrank.p), "observed",
				    number(c->logrank.observed[0]), number(c->logrank.observed[1]),
				    "expected", number(c->logrank.expected[0]),
				    number(c->logrank.expected[1]));
	json_t *mw = json_pack("{s:o, s:o, s:o, s:b}", "u", number(c->mann_whitney.u), "z",
			       number(c->mann_whitney.z), "p", number(c->mann_whitney.p), "exact",
			       c->mann_whitney.exact);

	return json_pack("{s:s, s:s, s:o, s:o, s:o, s:o, s:s}", "a", s->groups[p->a].name, "b",
			 s->groups[p->b].name, "logrank", logrank, "mann_whitney", mw,
			 "hodges_lehmann_shift_s", estimate_json(&c->shift), "cliff_delta",
			 number(c->cliff_delta), "verdict", p->verdict);
}

static json_t *events_json(const summary *s)
{
	if (!s->have_events)
		return json_null();
	return json_pack("{s:I, s:I, s:I, s:I, s:{s:I, s:I, s:I, s:I, s:I}}",
			 "connect", (json_int_t)s->events_connect,
			 "disconnect", (json_int_t)s->events_disconnect,
			 "swap", (json_int_t)s->events_swap, "error", (json_int_t)s->events_error,
			 "throttle", "connect", (json_int_t)s->events_throttle_connect,
			 "subscribe", (json_int_t)s->events_throttle_subscribe,
			 "publish", (json_int_t)s->events_throttle_publish,
			 "control", (json_int_t)s->events_throttle_control,
			 "other", (json_int_t)s->events_throttle_other);
}

static json_t *summary_json(const summary *s)
{
	json_t *root = json_object();
	json_t *groups = json_array(), *pairs = json_array(), *checks = json_array();

	for (size_t i = 0; i < s->ngroups; i++)
		json_array_append_new(groups, group_json(&s->groups[i]));
	for (size_t i = 0; i < s->npairs; i++)
		json_array_append_new(pairs, pair_json(s, &s->pairs[i]));
	for (size_t i = 0; i < s->nchecks; i++)
		json_array_append_new(checks, json_pack("{s:s, s:b, s:o, s:s}", "text",
						       s->checks[i].text, "passed",
						       s->checks[i].result.passed, "actual",
						       number(s->checks[i].result.actual), "message",
						       s->checks[i].result.message));
	json_object_set_new(root, "format", json_integer(1));
	if (s->run != NULL)
		json_object_set(root, "run", (json_t *)s->run->json);
	json_object_set_new(root, "confidence_level", json_real(s->level));
	json_object_set_new(root, "verdict", json_string(s->verdict));
	json_object_set_new(root, "groups", groups);
	json_object_set_new(root, "comparisons", pairs);
	json_object_set_new(root, "events", events_json(s));
	json_object_set_new(root, "expectations", checks);
	json_object_set_new(root, "expectations_failed", json_integer((json_int_t)s->nchecks_failed));
	return root;
}

pl_err summary_write_json(const summary *s, const char *path, pl_errmsg *e)
{
	json_t *root = summary_json(s);
	pl_err err;

	if (root == NULL)
		return pl_errmsg_set(e, PL_ERR_NOMEM, "summary.json: out of memory");
	err = run_json_write(root, path, e);
	json_decref(root);
	return err;
}

pl_err summary_write_junit(const summary *s, const char *path, pl_errmsg *e)
{
	const char *profile = s->run != NULL ? s->run->profile_name : "run";
	FILE *f = fopen(path, "w");

	if (f == NULL)
		return pl_errmsg_set(e, PL_ERR_IO, "cannot create %s: %s", path, strerror(errno));
	fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n", f);
	fprintf(f, "  <testsuite name=\"policylag.");
	report_html_escape(f, profile);
	fprintf(f, "\" tests=\"%zu\" failures=\"%zu\" errors=\"0\">\n", s->nchecks, s->nchecks_failed);
	for (size_t i = 0; i < s->nchecks; i++) {
		const summary_check *c = &s->checks[i];
		fputs("    <testcase classname=\"policylag.expectations\" name=\"", f);
		report_html_escape(f, c->text);
		fputs("\">\n", f);
		if (!c->result.passed) {
			fputs("      <failure message=\"", f);
			report_html_escape(f, c->result.message);
			fputs("\"/>\n", f);
		} else {
			fputs("      <system-out>", f);
			report_html_escape(f, c->result.message);
			fputs("</system-out>\n", f);
		}
		fputs("    </testcase>\n", f);
	}
	fputs("  </testsuite>\n</testsuites>\n", f);
	if (ferror(f) | (fclose(f) != 0))
		return pl_errmsg_set(e, PL_ERR_IO, "writing %s failed: %s", path, strerror(errno));
	return PL_OK;
}

pl_err summary_write_all(const summary *s, const char *run_dir, pl_errmsg *e)
{
	static const char *const names[] = { "summary.json", "junit.xml", "report.html" };
	char path[4096];
	pl_err err = PL_OK;

	for (size_t i = 0; i < 3 && err == PL_OK; i++) {
		err = run_path(path, sizeof(path), run_dir, names[i], e);
		if (err != PL_OK)
			break;
		if (i == 0)
			err = summary_write_json(s, path, e);
		else if (i == 1)
			err = summary_write_junit(s, path, e);
		else
			err = report_html_write(s, path, e);
	}
	return err;
}

pl_err summary_finish_run(const char *run_dir, const char *const *expectations,
			  size_t nexpectations, size_t *failed_expectations, pl_errmsg *e)
{
	summary *s = NULL;
	pl_err err = summary_build(&s, run_dir, expectations, nexpectations, e);

	if (err != PL_OK)
		return err;
	err = summary_write_all(s, run_dir, e);
	if (failed_expectations != NULL)
		*failed_expectations = s->nchecks_failed;
	summary_free(s);
	return err;
}
