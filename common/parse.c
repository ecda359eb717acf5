#include "common/parse.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static pl_err reject_empty(const char *text, const char *what, pl_errmsg *e)
{
	if (text == NULL || text[0] == '\0')
		return pl_errmsg_set(e, PL_ERR_INVALID, "missing %s: the value is empty", what);
	if (is_space(text[0]))
		return pl_errmsg_set(e, PL_ERR_INVALID, "invalid %s '%s': leading whitespace",
				     what, text);
	return PL_OK;
}

pl_err pl_parse_int64(const char *text, int64_t min, int64_t max, int64_t *out, pl_errmsg *e)
{
	char *end;
	long long v;
	pl_err rc = reject_empty(text, "integer", e);

	if (rc != PL_OK)
		return rc;
	errno = 0;
	v = strtoll(text, &end, 10);
	if (end == text || *end != '\0')
		return pl_errmsg_set(e, PL_ERR_INVALID, "invalid integer '%s'", text);
	if (errno == ERANGE || v < min || v > max)
		return pl_errmsg_set(e, PL_ERR_RANGE,
				     "integer '%s' is out of range: expected %lld to %lld", text,
				     (long long)min, (long long)max);
	*out = (int64_t)v;
	return PL_OK;
}

pl_err pl_parse_uint64(const char *text, uint64_t min, uint64_t max, uint64_t *out,
		       pl_errmsg *e)
{
	char *end;
	unsigned long long v;
	pl_err rc = reject_empty(text, "unsigned integer", e);

	if (rc != PL_OK)
		return rc;
	if (text[0] == '-' || text[0] == '+')
		return pl_errmsg_set(e, PL_ERR_INVALID,
				     "invalid unsigned integer '%s': no sign allowed", text);
	errno = 0;
	v = strtoull(text, &end, 10);
	if (end == text || *end != '\0')
		return pl_errmsg_set(e, PL_ERR_INVALID, "invalid unsigned integer '%s'", text);
	if (errno == ERANGE || v < min || v > max)
		return pl_errmsg_set(e, PL_ERR_RANGE,
				     "integer '%s' is out of range: expected %llu to %llu", text,
				     (unsigned long long)min, (unsigned long long)max);
	*out = (uint64_t)v;
	return PL_OK;
}

/* Parses a leading finite decimal number; *end points past it. */
static pl_err parse_number_prefix(const char *text, const char *what, double *out, char **end,
				  pl_errmsg *e)
{
	pl_err rc = reject_empty(text, what, e);

	if (rc != PL_OK)
		return rc;
	/* strtod also accepts "inf", "nan" and hex floats; users never mean those. */
	if (!(text[0] == '-' || text[0] == '+' || text[0] == '.' ||
	      (text[0] >= '0' && text[0] <= '9')))
		return pl_errmsg_set(e, PL_ERR_INVALID, "invalid %s '%s': expected a number", what,
				     text);
	if (strchr(text, 'x') != NULL || strchr(text, 'X') != NULL)
		return pl_errmsg_set(e, PL_ERR_INVALID, "invalid %s '%s': expected a decimal number",
				     what, text);
	errno = 0;
	*out = strtod(text, end);
	if (*end == text)
		return pl_errmsg_set(e, PL_ERR_INVALID, "invalid %s '%s': expected a number", what,
				     text);
	if (errno == ERANGE || !isfinite(*out))
		return pl_errmsg_set(e, PL_ERR_RANGE, "%s '%s' is out of range", what, text);
	return PL_OK;
}

pl_err pl_parse_double(const char *text, double min, double max, double *out, pl_errmsg *e)
{
	char *end;
	double v;
	pl_err rc = parse_number_prefix(text, "number", &v, &end, e);

	if (rc != PL_OK)
		return rc;
	if (*end != '\0')
		return pl_errmsg_set(e, PL_ERR_INVALID, "invalid number '%s'", text);
	if (v < min || v > max)
		return pl_errmsg_set(e, PL_ERR_RANGE, "number '%s' is out of range: expected %g to %g",
				     text, min, max);
	*out = v;
	return PL_OK;
}

struct unit {
	const char *name;
	double scale;
};

static const struct unit duration_units[] = {
	{ "ns", 1.0 }, { "us", 1e3 }, { "ms", 1e6 }, { "s", 1e9 }, { "m", 60e9 }, { "h", 3600e9 },
};

static const struct unit size_units[] = {
	{ "B", 1.0 },	       { "kB", 1e3 },		{ "KB", 1e3 },		 { "MB", 1e6 },
	{ "GB", 1e9 },	       { "KiB", 1024.0 },	{ "MiB", 1048576.0 },	 { "GiB", 1073741824.0 },
};

static const struct unit *find_unit(const struct unit *units, size_t count, const char *name)
{
	for (size_t i = 0; i < count; i++)
		if (strcmp(units[i].name, name) == 0)
			return &units[i];
	return NULL;
}

/* Rejects a duration written with an exponent, suggesting the same value in decimal. */
static pl_err reject_exponent(const char *text, double v, const char *unit, pl_errmsg *e)
{
	char decimal[64];
	size_t len;

	snprintf(decimal, sizeof(decimal), "%.9f", v);
	len = strlen(decimal);
	while (len > 0 && decimal[len - 1] == '0')
		decimal[--len] = '\0';
	if (len > 0 && decimal[len - 1] == '.')
		decimal[--len] = '\0';
	return pl_errmsg_set(e, PL_ERR_INVALID,
			     "invalid duration '%s': exponents are not accepted; write '%s%s'", text,
			     decimal, unit);
}

pl_err pl_parse_duration(const char *text, int64_t min_ns, int64_t max_ns, int64_t *out_ns,
			 pl_errmsg *e)
{
	char *end;
	double v;
	double ns;
	const struct unit *u;
	char min_text[32];
	char max_text[32];
	pl_err rc = parse_number_prefix(text, "duration", &v, &end, e);

	if (rc != PL_OK)
		return rc;
	/* strtod reads "1e3"; a duration is a decimal number with a unit. */
	if (memchr(text, 'e', (size_t)(end - text)) != NULL ||
	    memchr(text, 'E', (size_t)(end - text)) != NULL)
		return reject_exponent(text, v, end, e);
	if (*end == '\0') {
		if (v != 0.0)
			return pl_errmsg_set(e, PL_ERR_INVALID,
					     "invalid duration '%s': missing unit (ns, us, ms, s, m or h), for example '%ss'",
					     text, text);
		u = &duration_units[0];
	} else {
		u = find_unit(duration_units, sizeof(duration_units) / sizeof(duration_units[0]),
			      end);
		if (u == NULL)
			return pl_errmsg_set(e, PL_ERR_INVALID,
					     "invalid duration '%s': unknown unit '%s' (expected ns, us, ms, s, m or h)",
					     text, end);
	}
	ns = v * u->scale;
	pl_format_duration(min_ns, min_text, sizeof(min_text));
	pl_format_duration(max_ns, max_text, sizeof(max_text));
	if (ns < (double)min_ns || ns > (double)max_ns || ns >= 9.2e18)
		return pl_errmsg_set(e, PL_ERR_RANGE, "duration '%s' is out of range: expected %s to %s",
				     text, min_text, max_text);
	if (ns != floor(ns))
		return pl_errmsg_set(e, PL_ERR_INVALID,
				     "invalid duration '%s': finer than one nanosecond", text);
	*out_ns = (int64_t)ns;
	return PL_OK;
}

pl_err pl_parse_size(const char *text, uint64_t min, uint64_t max, uint64_t *out, pl_errmsg *e)
{
	char *end;
	double v;
	double bytes;
	const struct unit *u = &size_units[0];
	pl_err rc = parse_number_prefix(text, "size", &v, &end, e);

	if (rc != PL_OK)
		return rc;
	if (text[0] == '-')
		return pl_errmsg_set(e, PL_ERR_RANGE, "size '%s' is negative", text);
	if (*end != '\0') {
		u = find_unit(size_units, sizeof(size_units) / sizeof(size_units[0]), end);
		if (u == NULL)
			return pl_errmsg_set(e, PL_ERR_INVALID,
					     "invalid size '%s': unknown unit '%s' (expected B, kB, MB, GB, KiB, MiB or GiB)",
					     text, end);
	}
	bytes = v * u->scale;
	if (bytes != floor(bytes))
		return pl_errmsg_set(e, PL_ERR_INVALID, "invalid size '%s': not a whole number of bytes",
				     text);
	if (bytes < (double)min || bytes > (double)max || bytes >= 1.8e19)
		return pl_errmsg_set(e, PL_ERR_RANGE,
				     "size '%s' is out of range: expected %llu to %llu bytes", text,
				     (unsigned long long)min, (unsigned long long)max);
	*out = (uint64_t)bytes;
	return PL_OK;
}

pl_err pl_parse_percent(const char *text, double *out_fraction, pl_errmsg *e)
{
	return pl_parse_percent_max(text, 100.0, out_fraction, e);
}

pl_err pl_parse_percent_max(const char *text, double max_percent, double *out_fraction,
			    pl_errmsg *e)
{
	char *end;
	double v;
	pl_err rc = parse_number_prefix(text, "percentage", &v, &end, e);

	if (rc != PL_OK)
		return rc;
	if (strcmp(end, "%") != 0)
		return pl_errmsg_set(e, PL_ERR_INVALID,
				     "invalid percentage '%s': expected a number followed by '%%', for example '25%%'",
				     text);
	if (v < 0.0 || v > max_percent)
		return pl_errmsg_set(e, PL_ERR_RANGE,
				     "percentage '%s' is out of range: expected 0%% to %g%%", text,
				     max_percent);
	*out_fraction = v / 100.0;
	return PL_OK;
}

pl_err pl_parse_bool(const char *text, int *out, pl_errmsg *e)
{
	static const char *const truthy[] = { "true", "yes", "on" };
	static const char *const falsy[] = { "false", "no", "off" };

	if (text == NULL)
		return pl_errmsg_set(e, PL_ERR_INVALID, "missing boolean");
	for (size_t i = 0; i < 3; i++) {
		if (strcmp(text, truthy[i]) == 0) {
			*out = 1;
			return PL_OK;
		}
		if (strcmp(text, falsy[i]) == 0) {
			*out = 0;
			return PL_OK;
		}
	}
	return pl_errmsg_set(e, PL_ERR_INVALID, "invalid boolean '%s': expected true or false", text);
}

void pl_format_duration(int64_t ns, char *buf, unsigned long len)
{
	int64_t abs_ns = ns < 0 ? -ns : ns;
	const char *sign = ns < 0 ? "-" : "";

	if (abs_ns == 0)
		snprintf(buf, len, "0s");
	else if (abs_ns % PL_NS_PER_MS != 0 && abs_ns < PL_NS_PER_S)
		snprintf(buf, len, "%s%.3fms", sign, (double)abs_ns / 1e6);
	else if (abs_ns < PL_NS_PER_S)
		snprintf(buf, len, "%s%lldms", sign, (long long)(abs_ns / PL_NS_PER_MS));
	else if (abs_ns < 60 * PL_NS_PER_S || abs_ns % PL_NS_PER_S != 0)
		snprintf(buf, len, "%s%gs", sign, (double)abs_ns / 1e9);
	else if (abs_ns < 3600 * PL_NS_PER_S)
		snprintf(buf, len, "%s%lldm %llds", sign, (long long)(abs_ns / (60 * PL_NS_PER_S)),
			 (long long)(abs_ns / PL_NS_PER_S % 60));
	else
		snprintf(buf, len, "%s%lldh %lldm", sign, (long long)(abs_ns / (3600 * PL_NS_PER_S)),
			 (long long)(abs_ns / (60 * PL_NS_PER_S) % 60));
}
