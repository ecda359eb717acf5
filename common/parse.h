/*
 * Checked parsers for values that come from users: command-line options,
 * profile keys and simulator settings.
 *
 * Each parser accepts the whole string or nothing: leading or trailing
 * garbage, an empty string, overflow and values outside [min, max] are
 * errors, and the message names the value and what was expected. On error
 * *out is left unchanged.
 */
#ifndef PL_PARSE_H
#define PL_PARSE_H

#include <stdint.h>

#include "common/error.h"

/* Decimal integer with optional sign. */
pl_err pl_parse_int64(const char *text, int64_t min, int64_t max, int64_t *out, pl_errmsg *e);

/* Decimal unsigned integer; a leading '-' or '+' is rejected. */
pl_err pl_parse_uint64(const char *text, uint64_t min, uint64_t max, uint64_t *out,
		       pl_errmsg *e);

/* Finite decimal number ("0.5", "1e-3"); NaN and infinities are rejected. */
pl_err pl_parse_double(const char *text, double min, double max, double *out, pl_errmsg *e);

/*
 * Duration with a unit: ns, us, ms, s, m, h (for example "250ms", "10s",
 * "8m", "1.5h"). A plain "0" is accepted; any other number needs a unit.
 * The number is decimal without an exponent ("1e3s" is invalid).
 * The result is in nanoseconds and must lie in [min_ns, max_ns].
 */
pl_err pl_parse_duration(const char *text, int64_t min_ns, int64_t max_ns, int64_t *out_ns,
			 pl_errmsg *e);

/*
 * Size in bytes with an optional unit: B, kB/MB/GB (powers of 1000) or
 * KiB/MiB/GiB (powers of 1024), for example "128KiB", "4096", "1.5MB".
 * Fractional results are rejected.
 */
pl_err pl_parse_size(const char *text, uint64_t min, uint64_t max, uint64_t *out, pl_errmsg *e);

/* Percentage "0%".."100%" (decimals allowed) as a fraction in [0, 1]. */
pl_err pl_parse_percent(const char *text, double *out_fraction, pl_errmsg *e);

/*
 * Percentage from "0%" up to max_percent (which may exceed 100, for growth
 * such as "200%"), as a fraction: "250%" gives 2.5.
 */
pl_err pl_parse_percent_max(const char *text, double max_percent, double *out_fraction,
			    pl_errmsg *e);

/* "true"/"false", "yes"/"no", "on"/"off" (lowercase). */
pl_err pl_parse_bool(const char *text, int *out, pl_errmsg *e);

/*
 * Formats a duration for people: "250ms", "10s", "8m 0s", "1h 2m". Uses the
 * largest unit that keeps the value exact to the millisecond.
 */
void pl_format_duration(int64_t ns, char *buf, unsigned long len);

#endif
