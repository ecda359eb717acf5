/* Unit tests for the table-driven command line in harness/cli.c. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "common/parse.h"
#include "harness/cli.h"

enum { OPT_COUNT = 1, OPT_INTERVAL, OPT_VERBOSE };

static const cli_option test_options[] = {
	{ OPT_COUNT, "count", 'n', "N", "Number of devices.", "10" },
	{ OPT_INTERVAL, "interval", 0, "DURATION", "Probe interval, with a unit.", "1s" },
	{ OPT_VERBOSE, "verbose", 'v', NULL, "Print more.", NULL },
	CLI_OPTIONS_END,
};

static const cli_command test_command = {
	"probe", "probe [options] TARGET", "Test command.", NULL, test_options, NULL, NULL, NULL,
};

struct parsed {
	int64_t count;
	int64_t interval_ns;
	int verbose;
};

static pl_err on_test_option(void *ctx, int id, const char *value, pl_errmsg *e)
{
	struct parsed *p = ctx;

	switch (id) {
	case OPT_COUNT:
		return pl_parse_int64(value, 1, 1000, &p->count, e);
	case OPT_INTERVAL:
		return pl_parse_duration(value, 1, INT64_MAX, &p->interval_ns, e);
	case OPT_VERBOSE:
		p->verbose++;
		return PL_OK;
	default:
		return PL_ERR_INTERNAL;
	}
}

static pl_err parse_args(int argc, char **argv, struct parsed *p, int *first, int *help,
			 pl_errmsg *e)
{
	memset(p, 0, sizeof(*p));
	return cli_parse(&test_command, argc, argv, on_test_option, p, first, help, e);
}

START_TEST(test_cli_parse_long_and_short)
{
	char *argv[] = { "probe", "--count", "5", "-v", "--interval=250ms", "target", NULL };
	struct parsed p;
	int first = 0;
	int help = 0;
	pl_errmsg e = { "" };

	ck_assert_int_eq(parse_args(6, argv, &p, &first, &help, &e), PL_OK);
	ck_assert_int_eq(p.count, 5);
	ck_assert_int_eq(p.verbose, 1);
	ck_assert_int_eq(p.interval_ns, 250000000);
	ck_assert_int_eq(first, 5);
	ck_assert_str_eq(argv[first], "target");
	ck_assert_int_eq(help, 0);
}
END_TEST

START_TEST(test_cli_parse_options_after_operand)
{
	char *argv[] = { "probe", "target", "--count", "9", "-v", NULL };
	struct parsed p;
	int first = 0;
	int help = 0;
	pl_errmsg e = { "" };

	ck_assert_int_eq(parse_args(5, argv, &p, &first, &help, &e), PL_OK);
	ck_assert_int_eq(p.count, 9);
	ck_assert_int_eq(p.verbose, 1);
	ck_assert_int_eq(first, 4);
	ck_assert_str_eq(argv[first], "target");
}
END_TEST

START_TEST(test_cli_parse_short_with_value)
{
	char *argv[] = { "probe", "-n", "7", "target", NULL };
	struct parsed p;
	int first = 0;
	int help = 0;
	pl_errmsg e = { "" };

	ck_assert_int_eq(parse_args(4, argv, &p, &first, &help, &e), PL_OK);
	ck_assert_int_eq(p.count, 7);
	ck_assert_int_eq(first, 3);
}
END_TEST

START_TEST(test_cli_parse_unknown_option)
{
	char *argv[] = { "probe", "--colour", "target", NULL };
	struct parsed p;
	int first = 0;
	int help = 0;
	pl_errmsg e = { "" };

	ck_assert_int_eq(parse_args(3, argv, &p, &first, &help, &e), PL_ERR_INVALID);
	ck_assert_str_eq(e.msg, "unknown option '--colour'");
}
END_TEST

START_TEST(test_cli_parse_missing_value)
{
	char *argv[] = { "probe", "--count", NULL };
	struct parsed p;
	int first = 0;
	int help = 0;
	pl_errmsg e = { "" };

	ck_assert_int_eq(parse_args(2, argv, &p, &first, &help, &e), PL_ERR_INVALID);
	ck_assert_str_eq(e.msg, "option '--count' requires a value");
}
END_TEST

START_TEST(test_cli_parse_bad_value_names_it)
{
	char *argv[] = { "probe", "--interval", "10", "target", NULL };
	struct parsed p;
	int first = 0;
	int help = 0;
	pl_errmsg e = { "" };

	ck_assert_int_eq(parse_args(4, argv, &p, &first, &help, &e), PL_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(e.msg, "'10'"));
	ck_assert_ptr_nonnull(strstr(e.msg, "missing unit"));
}
END_TEST

START_TEST(test_cli_parse_out_of_range)
{
	char *argv[] = { "probe", "-n", "0", NULL };
	struct parsed p;
	int first = 0;
	int help = 0;
	pl_errmsg e = { "" };

	ck_assert_int_eq(parse_args(3, argv, &p, &first, &help, &e), PL_ERR_RANGE);
	ck_assert_ptr_nonnull(strstr(e.msg, "expected 1 to 1000"));
}
END_TEST

/* Runs the built policylag with args, returning its exit status and stdout+stderr. */
static int run_policylag(const char *args, char *out, size_t len)
{
	const char *bin = getenv("POLICYLAG_BIN");
	char command[1024];
	FILE *pipe;
	size_t n;
	int status;

	ck_assert_msg(bin != NULL, "POLICYLAG_BIN is not set; run the tests with 'make check'");
	snprintf(command, sizeof(command), "'%s' %s 2>&1", bin, args);
	pipe = popen(command, "r");
	ck_assert_ptr_nonnull(pipe);
	n = fread(out, 1, len - 1, pipe);
	out[n] = '\0';
	status = pclose(pipe);
	ck_assert(WIFEXITED(status));
	return WEXITSTATUS(status);
}

START_TEST(test_cli_help_lists_sections)
{
	char out[16384];

	ck_assert_int_eq(run_policylag("--help", out, sizeof(out)), 0);
	ck_assert_ptr_nonnull(strstr(out, "Usage: policylag"));
	ck_assert_ptr_nonnull(strstr(out, "Commands:"));
	ck_assert_ptr_nonnull(strstr(out, "--log-level LEVEL"));
	ck_assert_ptr_nonnull(strstr(out, "(default: info)"));
	ck_assert_ptr_nonnull(strstr(out, "Exit status:"));
	for (size_t i = 0; cli_commands[i] != NULL; i++)
		ck_assert_ptr_nonnull(strstr(out, cli_commands[i]->name));
}
END_TEST

START_TEST(test_cli_version)
{
	char out[1024];

	ck_assert_int_eq(run_policylag("--version", out, sizeof(out)), 0);
	ck_assert_int_eq(strncmp(out, "policylag ", 10), 0);
}
END_TEST

START_TEST(test_cli_usage_errors_exit_2)
{
	char out[4096];

	ck_assert_int_eq(run_policylag("", out, sizeof(out)), 2);
	ck_assert_ptr_nonnull(strstr(out, "missing command"));
	ck_assert_int_eq(run_policylag("no-such-command", out, sizeof(out)), 2);
	ck_assert_ptr_nonnull(strstr(out, "unknown command 'no-such-command'"));
	ck_assert_int_eq(run_policylag("--log-level loud", out, sizeof(out)), 2);
	ck_assert_ptr_nonnull(strstr(out, "invalid log level 'loud'"));
	ck_assert_int_eq(run_policylag("--bogus", out, sizeof(out)), 2);
	ck_assert_ptr_nonnull(strstr(out, "unknown option '--bogus'"));
}
END_TEST

START_TEST(test_cli_every_command_has_help)
{
	char out[16384];
	char args[128];

	for (size_t i = 0; cli_commands[i] != NULL; i++) {
		snprintf(args, sizeof(args), "%s --help", cli_commands[i]->name);
		ck_assert_int_eq(run_policylag(args, out, sizeof(out)), 0);
		ck_assert_ptr_nonnull(strstr(out, "Usage: policylag "));
		ck_assert_ptr_nonnull(strstr(out, "Options:"));
	}
}
END_TEST

/* A state directory for `policylag sim` runs that must not start mosquitto. */
static void sim_state_dir(char *buf, size_t len)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(buf, len, "%s/check_cli_sim_XXXXXX", tmp != NULL ? tmp : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(buf));
}

static void remove_dir(const char *dir)
{
	char command[600];

	snprintf(command, sizeof(command), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(command), 0);
}

START_TEST(test_cli_sim_invalid_propagation_exit_2)
{
	char out[4096];
	char dir[512];
	char args[1024];

	sim_state_dir(dir, sizeof(dir));
	snprintf(args, sizeof(args), "sim --state-dir '%s' --propagation bogus", dir);
	ck_assert_int_eq(run_policylag(args, out, sizeof(out)), 2);
	ck_assert_ptr_nonnull(strstr(out, "plugin option propagation=bogus"));
	ck_assert_ptr_null(strstr(out, "mqtt_endpoint"));
	remove_dir(dir);
}
END_TEST

/* A missing plugin is reported before the simulator writes its CA into the state directory. */
START_TEST(test_cli_sim_missing_plugin_first)
{
	char out[4096];
	char dir[512], state[600];
	char args[1024];
	struct stat st;

	sim_state_dir(dir, sizeof(dir));
	snprintf(state, sizeof(state), "%s/state", dir);
	snprintf(args, sizeof(args), "sim --state-dir '%s' --plugin /nonexistent.so", state);
	ck_assert_int_eq(run_policylag(args, out, sizeof(out)), 2);
	ck_assert_msg(strstr(out, "--plugin /nonexistent.so: No such file or directory") != NULL,
		      "%s", out);
	ck_assert_int_ne(stat(state, &st), 0);
	remove_dir(dir);
}
END_TEST

START_TEST(test_cli_sim_unknown_option_exit_2)
{
	char out[4096];
	char dir[512];
	char args[1024];

	sim_state_dir(dir, sizeof(dir));
	snprintf(args, sizeof(args), "sim --state-dir '%s' -o nokey=1", dir);
	ck_assert_int_eq(run_policylag(args, out, sizeof(out)), 2);
	ck_assert_ptr_nonnull(strstr(out, "plugin option nokey=1: unknown option"));
	remove_dir(dir);
}
END_TEST

START_TEST(test_cli_sim_invalid_module_options_exit_2)
{
	static const struct {
		const char *option;
		const char *named;
	} cases[] = {
		{ "-o api_account_id=12", "plugin option api_account_id=12" },
		{ "-o rule_response_qos=2", "plugin option rule_response_qos=2" },
		{ "-o topic_max_bytes=-1", "plugin option topic_max_bytes=-1" },
		{ "--refresh-phase sometimes", "plugin option refresh_phase=sometimes" },
		{ "-o 'bad key=x'", "plugin option bad key=x: invalid key" },
		{ "-o api_throttle_attachpolicy=5", "plugin option api_throttle_attachpolicy=5" },
	};
	char out[4096];
	char dir[512];
	char args[1024];

	sim_state_dir(dir, sizeof(dir));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(args, sizeof(args), "sim --state-dir '%s' %s", dir, cases[i].option);
		ck_assert_int_eq(run_policylag(args, out, sizeof(out)), 2);
		ck_assert_msg(strstr(out, cases[i].named) != NULL, "%s: output %s", cases[i].option,
			      out);
	}
	remove_dir(dir);
}
END_TEST

START_TEST(test_cli_sim_conflicting_arguments_exit_2)
{
	static const struct {
		const char *arguments;
		const char *named;
	} cases[] = {
		{ "--no-api --api-port 5", "--no-api and --api-port conflict" },
		{ "--api-port 5 --no-api", "--no-api and --api-port conflict" },
		{ "extra", "unexpected argument 'extra'" },
	};
	char out[4096];
	char dir[512];
	char args[1024];

	sim_state_dir(dir, sizeof(dir));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(args, sizeof(args), "sim --state-dir '%s' %s --mosquitto '%s/none'", dir,
			 cases[i].arguments, dir);
		ck_assert_int_eq(run_policylag(args, out, sizeof(out)), 2);
		ck_assert_msg(strstr(out, cases[i].named) != NULL, "%s: output %s",
			      cases[i].arguments, out);
	}
	remove_dir(dir);
}
END_TEST

/* Valid options pass the check and fail only at starting a missing broker. */
START_TEST(test_cli_sim_valid_options_reach_start)
{
	char out[4096];
	char dir[512];
	char args[1024];

	sim_state_dir(dir, sizeof(dir));
	snprintf(args, sizeof(args),
		 "sim --state-dir '%s' --no-api --propagation ttl:30s -o "
		 "publish_rate_per_connection=off -o api_throttle=false -o rule_once=true "
		 "-o api_throttle_AttachPolicy=200 "
		 "--mosquitto '%s/no-such-mosquitto'",
		 dir, dir);
	ck_assert_int_eq(run_policylag(args, out, sizeof(out)), 3);
	ck_assert_ptr_null(strstr(out, "plugin option"));
	remove_dir(dir);
}
END_TEST

static Suite *cli_suite(void)
{
	Suite *s = suite_create("cli");
	TCase *parsing = tcase_create("parse");
	TCase *program = tcase_create("program");

	tcase_add_test(parsing, test_cli_parse_long_and_short);
	tcase_add_test(parsing, test_cli_parse_short_with_value);
	tcase_add_test(parsing, test_cli_parse_options_after_operand);
	tcase_add_test(parsing, test_cli_parse_unknown_option);
	tcase_add_test(parsing, test_cli_parse_missing_value);
	tcase_add_test(parsing, test_cli_parse_bad_value_names_it);
	tcase_add_test(parsing, test_cli_parse_out_of_range);
	tcase_add_test(program, test_cli_help_lists_sections);
	tcase_add_test(program, test_cli_version);
	tcase_add_test(program, test_cli_usage_errors_exit_2);
	tcase_add_test(program, test_cli_every_command_has_help);
	tcase_add_test(program, test_cli_sim_invalid_propagation_exit_2);
	tcase_add_test(program, test_cli_sim_missing_plugin_first);
	tcase_add_test(program, test_cli_sim_unknown_option_exit_2);
	tcase_add_test(program, test_cli_sim_invalid_module_options_exit_2);
	tcase_add_test(program, test_cli_sim_valid_options_reach_start);
	tcase_add_test(program, test_cli_sim_conflicting_arguments_exit_2);
	suite_add_tcase(s, parsing);
	suite_add_tcase(s, program);
	return s;
}

int main(void)
{
	SRunner *runner = srunner_create(cli_suite());
	int failed;

	srunner_run_all(runner, CK_NORMAL);
	failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
