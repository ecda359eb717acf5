/* Unit tests for common/: errors, logger, clocks and the checked parsers. */
#include <check.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "common/parse.h"

START_TEST(test_error_strerror_every_code)
{
	for (int code = 0; code < PL_ERR__COUNT; code++) {
		const char *text = pl_strerror((pl_err)code);

		ck_assert_ptr_nonnull(text);
		ck_assert_int_gt((int)strlen(text), 0);
		ck_assert_str_ne(text, "unknown error");
	}
	ck_assert_str_eq(pl_strerror(PL_ERR__COUNT), "unknown error");
	ck_assert_str_eq(pl_strerror((pl_err)-1), "unknown error");
}
END_TEST

START_TEST(test_error_errmsg_set_and_prefix)
{
	pl_errmsg e = { "" };

	ck_assert_int_eq(pl_errmsg_set(&e, PL_ERR_IO, "read %s: %d", "x.yaml", 5), PL_ERR_IO);
	ck_assert_str_eq(e.msg, "read x.yaml: 5");
	pl_errmsg_prefix(&e, "profile %s", "p");
	ck_assert_str_eq(e.msg, "profile p: read x.yaml: 5");
	pl_errmsg_clear(&e);
	ck_assert_str_eq(e.msg, "");
	pl_errmsg_prefix(&e, "only");
	ck_assert_str_eq(e.msg, "only");
}
END_TEST

START_TEST(test_error_errmsg_null_is_noop)
{
	ck_assert_int_eq(pl_errmsg_set(NULL, PL_ERR_RANGE, "x"), PL_ERR_RANGE);
	pl_errmsg_prefix(NULL, "x");
	pl_errmsg_clear(NULL);
}
END_TEST

START_TEST(test_error_errmsg_truncates_long_message)
{
	pl_errmsg e;
	char long_text[2 * PL_ERRMSG_MAX];

	memset(long_text, 'a', sizeof(long_text) - 1);
	long_text[sizeof(long_text) - 1] = '\0';
	pl_errmsg_set(&e, PL_ERR_INVALID, "%s", long_text);
	ck_assert_uint_eq(strlen(e.msg), PL_ERRMSG_MAX - 1);
}
END_TEST

/* Captures what the logger writes through a pipe. */
static void capture_log(pl_log_level threshold, void (*emit)(void), char *out, size_t len)
{
	int fds[2];
	ssize_t n;

	ck_assert_int_eq(pipe(fds), 0);
	pl_log_set_fd(fds[1]);
	pl_log_set_level(threshold);
	emit();
	close(fds[1]);
	n = read(fds[0], out, len - 1);
	out[n < 0 ? 0 : n] = '\0';
	close(fds[0]);
	pl_log_set_fd(2);
	pl_log_set_level(PL_LOG_INFO);
}

static int formatted_count;

static const char *count_formatting(void)
{
	formatted_count++;
	return "value";
}

static void emit_info_and_debug(void)
{
	PL_INFO("test", "hello %d", 42);
	PL_DEBUG("test", "hidden %s", count_formatting());
}

START_TEST(test_log_line_has_level_component_message)
{
	char out[1024];

	formatted_count = 0;
	capture_log(PL_LOG_INFO, emit_info_and_debug, out, sizeof(out));
	ck_assert_ptr_nonnull(strstr(out, "info  [test] hello 42\n"));
	ck_assert_ptr_null(strstr(out, "hidden"));
	/* The level is checked before the arguments are evaluated. */
	ck_assert_int_eq(formatted_count, 0);
	/* Lines start with an RFC 3339 UTC timestamp. */
	ck_assert_int_eq(out[4], '-');
	ck_assert_int_eq(out[10], 'T');
	ck_assert_int_eq(out[23], 'Z');
}
END_TEST

START_TEST(test_log_debug_enabled)
{
	char out[1024];

	formatted_count = 0;
	capture_log(PL_LOG_DEBUG, emit_info_and_debug, out, sizeof(out));
	ck_assert_ptr_nonnull(strstr(out, "debug [test] hidden value\n"));
	ck_assert_int_eq(formatted_count, 1);
}
END_TEST

static void emit_long(void)
{
	char text[4096];

	memset(text, 'x', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	PL_ERROR("test", "%s", text);
}

START_TEST(test_log_long_line_truncated_with_newline)
{
	char out[8192];
	size_t len;

	capture_log(PL_LOG_ERROR, emit_long, out, sizeof(out));
	len = strlen(out);
	ck_assert_uint_le(len, 2048);
	ck_assert_int_eq(out[len - 1], '\n');
	ck_assert_ptr_nonnull(strstr(out, "...\n"));
}
END_TEST

START_TEST(test_log_level_parse)
{
	pl_log_level level = PL_LOG_INFO;
	pl_errmsg e = { "" };

	ck_assert_int_eq(pl_log_level_parse("debug", &level, &e), PL_OK);
	ck_assert_int_eq(level, PL_LOG_DEBUG);
	ck_assert_int_eq(pl_log_level_parse("error", &level, &e), PL_OK);
	ck_assert_int_eq(level, PL_LOG_ERROR);
	ck_assert_int_eq(pl_log_level_parse("verbose", &level, &e), PL_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(e.msg, "'verbose'"));
	ck_assert_int_eq(level, PL_LOG_ERROR);
}
END_TEST

START_TEST(test_clock_monotonic_advances)
{
	int64_t a = pl_mono_ns();
	int64_t b;

	pl_sleep_ns(2 * PL_NS_PER_MS);
	b = pl_mono_ns();
	ck_assert_int_ge(b - a, 2 * PL_NS_PER_MS);
}
END_TEST

START_TEST(test_clock_wall_format)
{
	char buf[32];

	/* 2026-12-04T21:30:00.123Z is 1796419800 s after the Unix epoch. */
	pl_wall_format(INT64_C(1796419800) * PL_NS_PER_S + 123 * PL_NS_PER_MS, buf, sizeof(buf));
	ck_assert_str_eq(buf, "2026-12-04T21:30:00.123Z");
	pl_wall_format(0, buf, sizeof(buf));
	ck_assert_str_eq(buf, "1970-01-01T00:00:00.000Z");
}
END_TEST

START_TEST(test_clock_mono_to_wall)
{
	ck_assert_int_eq(pl_mono_to_wall(150, 100, 1000), 1050);
	ck_assert_int_eq(pl_mono_to_wall(50, 100, 1000), 950);
}
END_TEST

START_TEST(test_parse_int64_valid)
{
	int64_t v = 0;

	ck_assert_int_eq(pl_parse_int64("42", 0, 100, &v, NULL), PL_OK);
	ck_assert_int_eq(v, 42);
	ck_assert_int_eq(pl_parse_int64("-7", -10, 10, &v, NULL), PL_OK);
	ck_assert_int_eq(v, -7);
	ck_assert_int_eq(pl_parse_int64("9223372036854775807", 0, INT64_MAX, &v, NULL), PL_OK);
	ck_assert_int_eq(v, INT64_MAX);
}
END_TEST

START_TEST(test_parse_int64_rejects_garbage)
{
	static const char *const bad[] = { "", " 1", "1 ", "1x", "x1", "0x10", "1.5", "--1" };
	int64_t v = 99;
	pl_errmsg e;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(pl_parse_int64(bad[i], INT64_MIN, INT64_MAX, &v, &e), PL_ERR_INVALID);
		ck_assert_int_eq(v, 99);
	}
	pl_parse_int64("1x", 0, 10, &v, &e);
	ck_assert_str_eq(e.msg, "invalid integer '1x'");
}
END_TEST

START_TEST(test_parse_int64_overflow_and_range)
{
	int64_t v = 99;
	pl_errmsg e;

	ck_assert_int_eq(pl_parse_int64("9223372036854775808", INT64_MIN, INT64_MAX, &v, &e),
			 PL_ERR_RANGE);
	ck_assert_int_eq(pl_parse_int64("101", 0, 100, &v, &e), PL_ERR_RANGE);
	ck_assert_str_eq(e.msg, "integer '101' is out of range: expected 0 to 100");
	ck_assert_int_eq(pl_parse_int64("-1", 0, 100, &v, &e), PL_ERR_RANGE);
	ck_assert_int_eq(v, 99);
}
END_TEST

START_TEST(test_parse_uint64_rejects_sign)
{
	uint64_t v = 5;
	pl_errmsg e;

	ck_assert_int_eq(pl_parse_uint64("-1", 0, UINT64_MAX, &v, &e), PL_ERR_INVALID);
	ck_assert_int_eq(pl_parse_uint64("+1", 0, UINT64_MAX, &v, &e), PL_ERR_INVALID);
	ck_assert_int_eq(pl_parse_uint64("18446744073709551616", 0, UINT64_MAX, &v, &e),
			 PL_ERR_RANGE);
	ck_assert_int_eq(pl_parse_uint64("18446744073709551615", 0, UINT64_MAX, &v, &e), PL_OK);
	ck_assert_uint_eq(v, UINT64_MAX);
}
END_TEST

START_TEST(test_parse_double_valid_and_invalid)
{
	double v = 0;
	pl_errmsg e;

	ck_assert_int_eq(pl_parse_double("0.5", 0, 1, &v, &e), PL_OK);
	ck_assert_double_eq(v, 0.5);
	ck_assert_int_eq(pl_parse_double("1e-3", 0, 1, &v, &e), PL_OK);
	ck_assert_double_eq(v, 0.001);
	ck_assert_int_eq(pl_parse_double("nan", -1e9, 1e9, &v, &e), PL_ERR_INVALID);
	ck_assert_int_eq(pl_parse_double("inf", -1e9, 1e9, &v, &e), PL_ERR_INVALID);
	ck_assert_int_eq(pl_parse_double("0x1p3", -1e9, 1e9, &v, &e), PL_ERR_INVALID);
	ck_assert_int_eq(pl_parse_double("1e400", -1e9, 1e9, &v, &e), PL_ERR_RANGE);
	ck_assert_int_eq(pl_parse_double("2", 0, 1, &v, &e), PL_ERR_RANGE);
	ck_assert_int_eq(pl_parse_double("0.5s", 0, 1, &v, &e), PL_ERR_INVALID);
}
END_TEST

START_TEST(test_parse_duration_units)
{
	static const struct {
		const char *text;
		int64_t ns;
	} cases[] = {
		{ "250ms", 250 * PL_NS_PER_MS },
		{ "10s", 10 * PL_NS_PER_S },
		{ "8m", 480 * PL_NS_PER_S },
		{ "1h", 3600 * PL_NS_PER_S },
		{ "1.5s", 1500 * PL_NS_PER_MS },
		{ "20us", 20 * PL_NS_PER_US },
		{ "7ns", 7 },
		{ "0", 0 },
	};
	int64_t v;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ck_assert_int_eq(pl_parse_duration(cases[i].text, 0, INT64_MAX, &v, NULL), PL_OK);
		ck_assert_int_eq(v, cases[i].ns);
	}
}
END_TEST

START_TEST(test_parse_duration_rejects_garbage)
{
	static const char *const bad[] = { "", "10", "10q", "s", "ms10", "10 s", " 10s", "1.5ns",
					   "-", "10S" };
	int64_t v = 3;
	pl_errmsg e;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(pl_parse_duration(bad[i], 0, INT64_MAX, &v, &e) == PL_ERR_INVALID,
			      "'%s' was accepted", bad[i]);
		ck_assert_int_eq(v, 3);
	}
	pl_parse_duration("10", 0, INT64_MAX, &v, &e);
	ck_assert_ptr_nonnull(strstr(e.msg, "missing unit"));
	ck_assert_ptr_nonnull(strstr(e.msg, "'10s'"));
	pl_parse_duration("10q", 0, INT64_MAX, &v, &e);
	ck_assert_ptr_nonnull(strstr(e.msg, "unknown unit 'q'"));
}
END_TEST

START_TEST(test_parse_duration_range_and_overflow)
{
	int64_t v = 3;
	pl_errmsg e;

	ck_assert_int_eq(pl_parse_duration("-1s", 0, INT64_MAX, &v, &e), PL_ERR_RANGE);
	ck_assert_int_eq(pl_parse_duration("10000000000h", 0, INT64_MAX, &v, &e), PL_ERR_RANGE);
	ck_assert_int_eq(pl_parse_duration("2h", 0, 3600 * PL_NS_PER_S, &v, &e), PL_ERR_RANGE);
	ck_assert_str_eq(e.msg, "duration '2h' is out of range: expected 0s to 1h 0m");
	ck_assert_int_eq(v, 3);
}
END_TEST

START_TEST(test_parse_size_units)
{
	uint64_t v = 0;
	pl_errmsg e;

	ck_assert_int_eq(pl_parse_size("128KiB", 0, UINT64_MAX, &v, &e), PL_OK);
	ck_assert_uint_eq(v, 131072);
	ck_assert_int_eq(pl_parse_size("1.5MB", 0, UINT64_MAX, &v, &e), PL_OK);
	ck_assert_uint_eq(v, 1500000);
	ck_assert_int_eq(pl_parse_size("4096", 0, UINT64_MAX, &v, &e), PL_OK);
	ck_assert_uint_eq(v, 4096);
	ck_assert_int_eq(pl_parse_size("2GiB", 0, UINT64_MAX, &v, &e), PL_OK);
	ck_assert_uint_eq(v, UINT64_C(2147483648));
	ck_assert_int_eq(pl_parse_size("1.5B", 0, UINT64_MAX, &v, &e), PL_ERR_INVALID);
	ck_assert_int_eq(pl_parse_size("10XB", 0, UINT64_MAX, &v, &e), PL_ERR_INVALID);
	ck_assert_int_eq(pl_parse_size("-1KiB", 0, UINT64_MAX, &v, &e), PL_ERR_RANGE);
	ck_assert_int_eq(pl_parse_size("129KiB", 0, 131072, &v, &e), PL_ERR_RANGE);
	ck_assert_ptr_nonnull(strstr(e.msg, "'129KiB'"));
}
END_TEST

START_TEST(test_parse_percent)
{
	double v = 0;
	pl_errmsg e;

	ck_assert_int_eq(pl_parse_percent("25%", &v, &e), PL_OK);
	ck_assert_double_eq(v, 0.25);
	ck_assert_int_eq(pl_parse_percent("12.5%", &v, &e), PL_OK);
	ck_assert_double_eq(v, 0.125);
	ck_assert_int_eq(pl_parse_percent("100%", &v, &e), PL_OK);
	ck_assert_double_eq(v, 1.0);
	ck_assert_int_eq(pl_parse_percent("25", &v, &e), PL_ERR_INVALID);
	ck_assert_int_eq(pl_parse_percent("25 %", &v, &e), PL_ERR_INVALID);
	ck_assert_int_eq(pl_parse_percent("101%", &v, &e), PL_ERR_RANGE);
	ck_assert_int_eq(pl_parse_percent("-1%", &v, &e), PL_ERR_RANGE);
	ck_assert_str_eq(e.msg, "percentage '-1%' is out of range: expected 0% to 100%");
}
END_TEST

START_TEST(test_parse_percent_above_hundred)
{
	double v = 0;
	pl_errmsg e;

	ck_assert_int_eq(pl_parse_percent_max("250%", 1000.0, &v, &e), PL_OK);
	ck_assert_double_eq(v, 2.5);
	ck_assert_int_eq(pl_parse_percent_max("1001%", 1000.0, &v, &e), PL_ERR_RANGE);
	ck_assert_str_eq(e.msg, "percentage '1001%' is out of range: expected 0% to 1000%");
	ck_assert_double_eq(v, 2.5);
}
END_TEST

START_TEST(test_parse_bool)
{
	int v = -1;
	pl_errmsg e;

	ck_assert_int_eq(pl_parse_bool("true", &v, &e), PL_OK);
	ck_assert_int_eq(v, 1);
	ck_assert_int_eq(pl_parse_bool("off", &v, &e), PL_OK);
	ck_assert_int_eq(v, 0);
	ck_assert_int_eq(pl_parse_bool("True", &v, &e), PL_ERR_INVALID);
	ck_assert_int_eq(pl_parse_bool("1", &v, &e), PL_ERR_INVALID);
	ck_assert_int_eq(v, 0);
}
END_TEST

START_TEST(test_parse_format_duration)
{
	char buf[32];

	pl_format_duration(250 * PL_NS_PER_MS, buf, sizeof(buf));
	ck_assert_str_eq(buf, "250ms");
	pl_format_duration(10 * PL_NS_PER_S, buf, sizeof(buf));
	ck_assert_str_eq(buf, "10s");
	pl_format_duration(481 * PL_NS_PER_S, buf, sizeof(buf));
	ck_assert_str_eq(buf, "8m 1s");
	pl_format_duration(3720 * PL_NS_PER_S, buf, sizeof(buf));
	ck_assert_str_eq(buf, "1h 2m");
	pl_format_duration(1500 * PL_NS_PER_US, buf, sizeof(buf));
	ck_assert_str_eq(buf, "1.500ms");
	pl_format_duration(-2 * PL_NS_PER_S, buf, sizeof(buf));
	ck_assert_str_eq(buf, "-2s");
}
END_TEST

static Suite *common_suite(void)
{
	Suite *s = suite_create("common");
	TCase *errors = tcase_create("error");
	TCase *logging = tcase_create("log");
	TCase *clocks = tcase_create("clock");
	TCase *parsers = tcase_create("parse");

	tcase_add_test(errors, test_error_strerror_every_code);
	tcase_add_test(errors, test_error_errmsg_set_and_prefix);
	tcase_add_test(errors, test_error_errmsg_null_is_noop);
	tcase_add_test(errors, test_error_errmsg_truncates_long_message);
	tcase_add_test(logging, test_log_line_has_level_component_message);
	tcase_add_test(logging, test_log_debug_enabled);
	tcase_add_test(logging, test_log_long_line_truncated_with_newline);
	tcase_add_test(logging, test_log_level_parse);
	tcase_add_test(clocks, test_clock_monotonic_advances);
	tcase_add_test(clocks, test_clock_wall_format);
	tcase_add_test(clocks, test_clock_mono_to_wall);
	tcase_add_test(parsers, test_parse_int64_valid);
	tcase_add_test(parsers, test_parse_int64_rejects_garbage);
	tcase_add_test(parsers, test_parse_int64_overflow_and_range);
	tcase_add_test(parsers, test_parse_uint64_rejects_sign);
	tcase_add_test(parsers, test_parse_double_valid_and_invalid);
	tcase_add_test(parsers, test_parse_duration_units);
	tcase_add_test(parsers, test_parse_duration_rejects_garbage);
	tcase_add_test(parsers, test_parse_duration_range_and_overflow);
	tcase_add_test(parsers, test_parse_size_units);
	tcase_add_test(parsers, test_parse_percent);
	tcase_add_test(parsers, test_parse_percent_above_hundred);
	tcase_add_test(parsers, test_parse_bool);
	tcase_add_test(parsers, test_parse_format_duration);
	suite_add_tcase(s, errors);
	suite_add_tcase(s, logging);
	suite_add_tcase(s, clocks);
	suite_add_tcase(s, parsers);
	return s;
}

int main(void)
{
	SRunner *runner = srunner_create(common_suite());
	int failed;

	srunner_run_all(runner, CK_NORMAL);
	failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
