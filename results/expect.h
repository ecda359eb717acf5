/*
 * Expectations: small comparisons over a run's summary, checked after the
 * run and reported as JUnit test cases. Grammar (whitespace is free):
 *
 *   expectation := operand OP literal
 *   operand     := GROUP "." METRIC
 *                | "compare(" GROUP "," GROUP ")" "." CMETRIC
 *                | "throttled" "." KIND      (throttle events: connect,
 *                                             subscribe, publish, control
 *                                             (the policy API), total)
 *                | "errors" "." "total"
 *   OP          := "<" | "<=" | ">" | ">=" | "==" | "!="
 *   literal     := number with a duration unit (ns us ms s m h) for time
 *                  metrics, a plain number or a percentage for the others
 *
 * GROUP is a device group name ([A-Za-z0-9_-]+), "all" for every device, or
 * "NAME:grant" / "NAME:revoke" for one direction of a group (present when a
 * run swaps in both directions).
 * METRIC: time metrics p50 p90 p95 p99 min mean max and p50_lo p50_hi (...
 * the confidence limits of each quantile); counts n effective censored
 * unmeasured excluded connects connect_failures throttled errors; ratio
 * censored_ratio. n counts devices with a latency that are not excluded.
 * unmeasured counts rows without a latency. excluded counts rows whose
 * measurement a disconnect not about authorization confounded.
 * CMETRIC: p (log-rank p-value), logrank_p, mw_p, cliff_delta, and the time
 * metrics shift, shift_lo, shift_hi (Hodges-Lehmann, first group minus
 * second). Examples: "reconnect.p99 < 30s", "keep.censored == 0",
 * "compare(reconnect, keep).p < 0.001", "throttled.connect == 0".
 *
 * A quantile that the Kaplan-Meier curve never reaches (too many censored
 * devices) is unknown, and a comparison with an unknown value fails.
 */
#ifndef PL_EXPECT_H
#define PL_EXPECT_H

#include <stddef.h>

#include "common/error.h"

struct summary;

/* A parsed expectation. Immutable after parsing, so it may be shared between threads. */
typedef struct expect_expr expect_expr;

/*
 * Parses text. On error returns PL_ERR_PARSE, sets *column to the 0-based
 * byte offset in text where the problem is, and fills e with a message
 * without a position (the profile loader adds "file:line:column: ").
 * column may be NULL.
 */
pl_err expect_parse(expect_expr **out, const char *text, size_t *column, pl_errmsg *e);
void expect_free(expect_expr *x);
/* The text as given to expect_parse. */
const char *expect_text(const expect_expr *x);

/*
 * Group names the expectation refers to, for the profile loader to check
 * against the profile: 1 for "G.metric", 2 for "compare(A, B).metric", 0
 * otherwise. A name may be "all" or end in ":grant" or ":revoke".
 */
size_t expect_group_count(const expect_expr *x);
/* Group i (< expect_group_count) and its 0-based column in the text (column may be NULL). */
const char *expect_group_name(const expect_expr *x, size_t i, size_t *column);

/* Outcome of one expectation. */
typedef struct expect_result {
	int passed;
	double actual;      /* the operand's value (seconds for times); NaN if unknown */
	char message[256];  /* "reconnect.p99 = 12.3s, expected < 30s" or why it failed */
} expect_result;

/*
 * Evaluates x over a summary. An unknown group or an unknown value is a
 * failed expectation with a message, not an error; the return value is
 * PL_OK unless the arguments are invalid.
 */
pl_err expect_evaluate(const expect_expr *x, const struct summary *s, expect_result *out);

#endif
