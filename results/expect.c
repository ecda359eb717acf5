/*
 * Expectation parser and evaluator. The grammar is in expect.h.
 */
#include "results/expect.h"

#include <assert.h>
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/parse.h"
#include "results/summary.h"

#define EXPECT_NAME_MAX SUMMARY_NAME_MAX

typedef enum expect_op { OP_LT, OP_LE, OP_GT, OP_GE, OP_EQ, OP_NE } expect_op;

typedef enum operand_kind { OPERAND_GROUP, OPERAND_COMPARE, OPERAND_THROTTLED, OPERAND_ERRORS }
	operand_kind;

typedef enum value_kind { VALUE_TIME, VALUE_COUNT, VALUE_RATIO } value_kind;

/* A metric name with its kind; quantile metrics name their index and bound. */
typedef struct metric_def {
	const char *name;
	value_kind kind;
	int id;
} metric_def;

enum {
	M_N, M_EFFECTIVE, M_CENSORED, M_CENSORED_RATIO, M_CONNECTS, M_CONNECT_FAILURES,
	M_THROTTLED, M_ERRORS, M_UNMEASURED, M_EXCLUDED, M_MIN, M_MEAN, M_MAX, M_QUANTILE /* + 3 * index + bound */
};
enum { C_P, C_LOGRANK_P, C_MW_P, C_CLIFF, C_SHIFT, C_SHIFT_LO, C_SHIFT_HI };
enum { T_CONNECT, T_SUBSCRIBE, T_PUBLISH, T_CONTROL, T_TOTAL };

static const metric_def group_metrics[] = {
	{ "n", VALUE_COUNT, M_N },
	{ "effective", VALUE_COUNT, M_EFFECTIVE },
	{ "censored", VALUE_COUNT, M_CENSORED },
	{ "censored_ratio", VALUE_RATIO, M_CENSORED_RATIO },
	{ "connects", VALUE_COUNT, M_CONNECTS },
	{ "connect_failures", VALUE_COUNT, M_CONNECT_FAILURES },
	{ "throttled", VALUE_COUNT, M_THROTTLED },
	{ "errors", VALUE_COUNT, M_ERRORS },
	{ "unmeasured", VALUE_COUNT, M_UNMEASURED },
	{ "excluded", VALUE_COUNT, M_EXCLUDED },
	{ "min", VALUE_TIME, M_MIN },
	{ "mean", VALUE_TIME, M_MEAN },
	{ "max", VALUE_TIME, M_MAX },
	{ "p50", VALUE_TIME, M_QUANTILE + 0 }, { "p50_lo", VALUE_TIME, M_QUANTILE + 1 },
	{ "p50_hi", VALUE_TIME, M_QUANTILE + 2 },
	{ "p90", VALUE_TIME, M_QUANTILE + 3 }, { "p90_lo", VALUE_TIME, M_QUANTILE + 4 },
	{ "p90_hi", VALUE_TIME, M_QUANTILE + 5 },
	{ "p95", VALUE_TIME, M_QUANTILE + 6 }, { "p95_lo", VALUE_TIME, M_QUANTILE + 7 },
	{ "p95_hi", VALUE_TIME, M_QUANTILE + 8 },
	{ "p99", VALUE_TIME, M_QUANTILE + 9 }, { "p99_lo", VALUE_TIME, M_QUANTILE + 10 },
	{ "p99_hi", VALUE_TIME, M_QUANTILE + 11 },
	{ NULL, VALUE_COUNT, 0 }
};

static const metric_def compare_metrics[] = {
	{ "p", VALUE_RATIO, C_P },
	{ "logrank_p", VALUE_RATIO, C_LOGRANK_P },
	{ "mw_p", VALUE_RATIO, C_MW_P },
	{ "cliff_delta", VALUE_RATIO, C_CLIFF },
	{ "shift", VALUE_TIME, C_SHIFT },
	{ "shift_lo", VALUE_TIME, C_SHIFT_LO },
	{ "shift_hi", VALUE_TIME, C_SHIFT_HI },
	{ NULL, VALUE_COUNT, 0 }
};

static const metric_def throttle_metrics[] = {
	{ "connect", VALUE_COUNT, T_CONNECT },
	{ "subscribe", VALUE_COUNT, T_SUBSCRIBE },
	{ "publish", VALUE_COUNT, T_PUBLISH },
	{ "control", VALUE_COUNT, T_CONTROL },
	{ "total", VALUE_COUNT, T_TOTAL },
	{ NULL, VALUE_COUNT, 0 }
};

static const metric_def error_metrics[] = {
	{ "total", VALUE_COUNT, 0 },
	{ NULL, VALUE_COUNT, 0 }
};

struct expect_expr {
	char *text;
	operand_kind kind;
	char group_a[EXPECT_NAME_MAX];
	char group_b[EXPECT_NAME_MAX];
	size_t column_a, column_b; /* 0-based offsets of the group names in text */
	const metric_def *metric;
	expect_op op;
	double literal;         /* seconds for time metrics, a fraction for percentages */
	char literal_text[64];  /* as written, for messages */
};

static const char *const op_names[] = { "<", "<=", ">", ">=", "==", "!=" };

/* ---- parser ---- */

typedef struct parser {
	const char *text;
	size_t pos;
	pl_errmsg *e;
	size_t *column;
} parser;

static pl_err parse_fail(parser *p, size_t pos, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static pl_err parse_fail(parser *p, size_t pos, const char *fmt, ...)
{
	va_list ap;

	if (p->column != NULL)
		*p->column = pos;
	if (p->e != NULL) {
		va_start(ap, fmt);
		vsnprintf(p->e->msg, sizeof(p->e->msg), fmt, ap);
		va_end(ap);
	}
	return PL_ERR_PARSE;
}

static void skip_space(parser *p)
{
	while (isspace((unsigned char)p->text[p->pos]))
		p->pos++;
}

/* Group names, with ':' for the per-direction groups such as "reconnect:revoke". */
static int is_name_char(char c)
{
	return isalnum((unsigned char)c) || c == '_' || c == '-' || c == ':';
}

/* Reads [A-Za-z0-9_:-]+ into buf (what names it in messages). */
static pl_err parse_name(parser *p, char *buf, size_t len, const char *what)
{
	size_t start;

	skip_space(p);
	start = p->pos;
	while (is_name_char(p->text[p->pos]))
		p->pos++;
	if (p->pos == start)
		return parse_fail(p, start, "expected %s", what);
	if (p->pos - start >= len)
		return parse_fail(p, start, "%s is too long", what);
	memcpy(buf, p->text + start, p->pos - start);
	buf[p->pos - start] = '\0';
	return PL_OK;
}

static pl_err expect_char(parser *p, char c, const char *what)
{
	skip_space(p);
	if (p->text[p->pos] != c)
		return parse_fail(p, p->pos, "expected %s", what);
	p->pos++;
	return PL_OK;
}

static pl_err parse_metric(parser *p, const metric_def *table, const metric_def **out)
{
	char name[64];
	size_t start;
	pl_err err = expect_char(p, '.', "'.' and a metric name");

	if (err != PL_OK)
		return err;
	skip_space(p);
	start = p->pos;
	err = parse_name(p, name, sizeof(name), "a metric name");
	if (err != PL_OK)
		return err;
	for (const metric_def *m = table; m->name != NULL; m++) {
		if (strcmp(m->name, name) == 0) {
			*out = m;
			return PL_OK;
		}
	}
	/* List the accepted names so the user can fix the profile without the docs. */
	char list[256] = "";
	size_t used = 0;
	for (const metric_def *m = table; m->name != NULL && used < sizeof(list); m++)
		used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s",
					 m == table ? "" : " ", m->name);
	return parse_fail(p, start, "unknown metric '%s'; expected one of: %s", name, list);
}

static pl_err parse_operand(parser *p, expect_expr *x)
{
	char first[EXPECT_NAME_MAX];
	pl_err err = parse_name(p, first, sizeof(first), "a group name, compare(...), throttled or errors");

	if (err != PL_OK)
		return err;
	x->column_a = p->pos - strlen(first);
	skip_space(p);
	if (strcmp(first, "compare") == 0 && p->text[p->pos] == '(') {
		x->kind = OPERAND_COMPARE;
		p->pos++;
		err = parse_name(p, x->group_a, sizeof(x->group_a), "a group name");
		x->column_a = p->pos - strlen(x->group_a);
		if (err == PL_OK)
			err = expect_char(p, ',', "',' between the two group names");
		if (err == PL_OK)
			err = parse_name(p, x->group_b, sizeof(x->group_b), "a second group name");
		x->column_b = p->pos - strlen(x->group_b);
		if (err == PL_OK)
			err = expect_char(p, ')', "')' after the second group name");
		return err == PL_OK ? parse_metric(p, compare_metrics, &x->metric) : err;
	}
	if (strcmp(first, "throttled") == 0) {
		x->kind = OPERAND_THROTTLED;
		return parse_metric(p, throttle_metrics, &x->metric);
	}
	if (strcmp(first, "errors") == 0) {
		x->kind = OPERAND_ERRORS;
		return parse_metric(p, error_metrics, &x->metric);
	}
	x->kind = OPERAND_GROUP;
	memcpy(x->group_a, first, sizeof(first));
	return parse_metric(p, group_metrics, &x->metric);
}

static pl_err parse_op(parser *p, expect_op *out)
{
	/* Two-character operators first so "<=" is not read as "<". */
	static const expect_op order[] = { OP_LE, OP_GE, OP_EQ, OP_NE, OP_LT, OP_GT };

	skip_space(p);
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		const char *name = op_names[order[i]];
		if (strncmp(p->text + p->pos, name, strlen(name)) == 0) {
			p->pos += strlen(name);
			*out = order[i];
			return PL_OK;
		}
	}
	return parse_fail(p, p->pos, "expected a comparison operator (< <= > >= == !=)");
}

static pl_err parse_literal(parser *p, expect_expr *x)
{
	size_t start, len;
	pl_errmsg why;
	pl_err err;
	int64_t ns;

	skip_space(p);
	start = p->pos;
	while (p->text[p->pos] != '\0' && !isspace((unsigned char)p->text[p->pos]))
		p->pos++;
	len = p->pos - start;
	if (len == 0)
		return parse_fail(p, start, "expected a value after the operator");
	if (len >= sizeof(x->literal_text))
		return parse_fail(p, start, "value is too long");
	memcpy(x->literal_text, p->text + start, len);
	x->literal_text[len] = '\0';

	if (x->metric->kind == VALUE_TIME) {
		err = pl_parse_duration(x->literal_text, INT64_MIN + 1, INT64_MAX, &ns, &why);
		x->literal = (double)ns / (double)PL_NS_PER_S;
	} else if (x->literal_text[len - 1] == '%') {
		err = pl_parse_percent(x->literal_text, &x->literal, &why);
		if (err == PL_OK && x->metric->kind == VALUE_COUNT)
			return parse_fail(p, start, "'%s' is a percentage, but the metric is a count",
					  x->literal_text);
	} else {
		err = pl_parse_double(x->literal_text, -1e300, 1e300, &x->literal, &why);
	}
	if (err != PL_OK)
		return parse_fail(p, start, "%s", why.msg);
	return PL_OK;
}

pl_err expect_parse(expect_expr **out, const char *text, size_t *column, pl_errmsg *e)
{
	parser p = { .text = text, .pos = 0, .e = e, .column = column };
	expect_expr *x;
	pl_err err;

	assert(out != NULL);
	assert(text != NULL);
	*out = NULL;
	x = calloc(1, sizeof(*x));
	if (x == NULL)
		return pl_errmsg_set(e, PL_ERR_NOMEM, "expectation: out of memory");
	err = parse_operand(&p, x);
	if (err == PL_OK)
		err = parse_op(&p, &x->op);
	if (err == PL_OK)
		err = parse_literal(&p, x);
	if (err == PL_OK) {
		skip_space(&p);
		if (text[p.pos] != '\0')
			err = parse_fail(&p, p.pos, "unexpected text after the value: '%s'", text + p.pos);
	}
	if (err == PL_OK) {
		x->text = strdup(text);
		if (x->text == NULL)
			err = pl_errmsg_set(e, PL_ERR_NOMEM, "expectation: out of memory");
	}
	if (err != PL_OK) {
		expect_free(x);
		return err;
	}
	*out = x;
	return PL_OK;
}

void expect_free(expect_expr *x)
{
	if (x == NULL)
		return;
	free(x->text);
	free(x);
}

const char *expect_text(const expect_expr *x)
{
	return x->text;
}

size_t expect_group_count(const expect_expr *x)
{
	switch (x->kind) {
	case OPERAND_GROUP:
		return 1;
	case OPERAND_COMPARE:
		return 2;
	default:
		return 0;
	}
}

const char *expect_group_name(const expect_expr *x, size_t i, size_t *column)
{
	assert(i < expect_group_count(x));
	if (column != NULL)
		*column = i == 0 ? x->column_a : x->column_b;
	return i == 0 ? x->group_a : x->group_b;
}

/* ---- evaluation ---- */

static double group_value(const summary_group *g, int id)
{
	const stats_group *st = &g->stats;

	if (id >= M_QUANTILE) {
		const stats_estimate *q = &st->quantile[(id - M_QUANTILE) / 3];
		int bound = (id - M_QUANTILE) % 3;
		if (bound == 1)
			return q->lo;
		if (bound == 2)
			return q->hi;
		return q->value;
	}
	switch (id) {
	case M_N: return (double)st->n;
	case M_EFFECTIVE: return (double)st->n_effect;
	case M_CENSORED: return (double)st->n_censored;
	case M_CENSORED_RATIO: return st->n ? (double)st->n_censored / (double)st->n : NAN;
	case M_CONNECTS: return (double)g->connects;
	case M_CONNECT_FAILURES: return (double)g->connect_failures;
	case M_THROTTLED: return (double)g->throttled;
	case M_ERRORS: return (double)g->errors;
	case M_UNMEASURED: return (double)g->n_unmeasured;
	case M_EXCLUDED: return (double)g->n_excluded;
	case M_MIN: return st->min;
	case M_MEAN: return st->mean;
	case M_MAX: return st->max;
	default: return NAN;
	}
}

/* Value of a comparison metric for a - b, whichever order the summary stored. */
static double compare_value(const summary_pair *pair, int swapped, int id)
{
	const stats_comparison *c = &pair->cmp;
	double sign = swapped ? -1 : 1;

	switch (id) {
	case C_P:
	case C_LOGRANK_P: return c->logrank.p;
	case C_MW_P: return c->mann_whitney.p;
	case C_CLIFF: return sign * c->cliff_delta;
	case C_SHIFT: return sign * c->shift.value;
	case C_SHIFT_LO: return swapped ? -c->shift.hi : c->shift.lo;
	case C_SHIFT_HI: return swapped ? -c->shift.lo : c->shift.hi;
	default: return NAN;
	}
}

static double throttle_value(const summary *s, int id)
{
	if (!s->have_events)
		return NAN;
	switch (id) {
	case T_CONNECT: return (double)s->events_throttle_connect;
	case T_SUBSCRIBE: return (double)s->events_throttle_subscribe;
	case T_PUBLISH: return (double)s->events_throttle_publish;
	case T_CONTROL: return (double)s->events_throttle_control;
	default:
		return (double)(s->events_throttle_connect + s->events_throttle_subscribe +
				s->events_throttle_publish + s->events_throttle_control +
				s->events_throttle_other);
	}
}

static int compare_holds(double actual, expect_op op, double literal)
{
	switch (op) {
	case OP_LT: return actual < literal;
	case OP_LE: return actual <= literal;
	case OP_GT: return actual > literal;
	case OP_GE: return actual >= literal;
	case OP_EQ: return actual == literal;
	case OP_NE: return actual != literal;
	}
	return 0;
}

/*
 * Finds the operand's value. Returns 0, or 1 after writing into why (len
 * bytes) the reason that there is no value.
 */
static int operand_value(const expect_expr *x, const summary *s, double *out, char *why,
			 size_t len)
{
	const summary_pair *pair;
	const summary_group *g;
	int swapped = 0;

	switch (x->kind) {
	case OPERAND_GROUP:
		g = summary_find_group(s, x->group_a);
		if (g == NULL) {
			snprintf(why, len, "group '%s' not found in the run", x->group_a);
			return 1;
		}
		*out = group_value(g, x->metric->id);
		return 0;
	case OPERAND_COMPARE:
		pair = summary_find_pair(s, x->group_a, x->group_b, &swapped);
		if (pair == NULL) {
			snprintf(why, len, "no comparison of '%s' and '%s' in the run (both must be "
					   "device groups, or the same direction of two groups)",
				 x->group_a, x->group_b);
			return 1;
		}
		*out = compare_value(pair, swapped, x->metric->id);
		return 0;
	case OPERAND_THROTTLED:
	case OPERAND_ERRORS:
		if (!s->have_events) {
			snprintf(why, len, "the run has no events.jsonl to count from");
			return 1;
		}
		*out = x->kind == OPERAND_ERRORS ? (double)s->events_error
						 : throttle_value(s, x->metric->id);
		return 0;
	}
	snprintf(why, len, "unknown operand");
	return 1;
}

static void format_value(char *buf, size_t len, value_kind kind, double v)
{
	if (isnan(v))
		snprintf(buf, len, "unknown");
	else if (kind == VALUE_TIME)
		snprintf(buf, len, "%.6g s", v);
	else
		snprintf(buf, len, "%.6g", v);
}

pl_err expect_evaluate(const expect_expr *x, const summary *s, expect_result *out)
{
	char shown[64];
	double actual = NAN;

	if (x == NULL || s == NULL || out == NULL)
		return PL_ERR_INVALID;
	memset(out, 0, sizeof(*out));
	out->actual = NAN;
	if (operand_value(x, s, &actual, out->message, sizeof(out->message)))
		return PL_OK;
	out->actual = actual;
	format_value(shown, sizeof(shown), x->metric->kind, actual);
	if (isnan(actual)) {
		snprintf(out->message, sizeof(out->message),
			 "value unknown: the Kaplan-Meier curve never reaches it (too many censored "
			 "devices) or the group has no data");
		return PL_OK;
	}
	out->passed = compare_holds(actual, x->op, x->literal);
	snprintf(out->message, sizeof(out->message), "value %s, expected %s %s", shown,
		 op_names[x->op], x->literal_text);
	return PL_OK;
}
