#!/usr/bin/env bash
# Runs the Check test programs given as arguments and prints each program's
# Check summary, then one closing line "N passed, N failed" over all of them.
#
#   tests/run-tests.sh FILTER PROGRAM...
# FILTER (may be empty) keeps only programs whose name contains it.
# Each program gets CK_DEFAULT_TIMEOUT from the environment (default 120 s per test).
set -uo pipefail

filter=$1
shift
export CK_DEFAULT_TIMEOUT=${CK_DEFAULT_TIMEOUT:-120}
export CK_VERBOSITY=${CK_VERBOSITY:-normal}

passed=0
failed=0
failed_programs=()
log_dir=$(mktemp -d "${TMPDIR:-/tmp}/policylag-tests.XXXXXX")
trap 'rm -rf "$log_dir"' EXIT

for program in "$@"; do
	name=$(basename "$program")
	if [[ -n "$filter" && "$name" != *"$filter"* ]]; then
		continue
	fi
	start=$(date +%s)
	"$program" >"$log_dir/$name.log" 2>&1
	status=$?
	elapsed=$(($(date +%s) - start))
	summary=$(grep -E '^[0-9]+%: Checks: [0-9]+' "$log_dir/$name.log" | tail -n 1)
	if [[ -z "$summary" ]]; then
		echo "$name: no Check summary (exit status $status); its output follows"
		cat "$log_dir/$name.log"
		failed=$((failed + 1))
		failed_programs+=("$name")
		continue
	fi
	checks=$(sed -E 's/.*Checks: ([0-9]+).*/\1/' <<<"$summary")
	bad=$(sed -E 's/.*Failures: ([0-9]+), Errors: ([0-9]+).*/\1 + \2/' <<<"$summary")
	bad=$((bad))
	passed=$((passed + checks - bad))
	failed=$((failed + bad))
	printf '%-34s %s (%ds)\n' "$name" "$summary" "$elapsed"
	if [[ $status -ne 0 || $bad -ne 0 ]]; then
		failed_programs+=("$name")
		grep -vE '^(Running suite|[0-9]+%: Checks)' "$log_dir/$name.log" | tail -n 60
	fi
done

echo
if [[ ${#failed_programs[@]} -gt 0 ]]; then
	echo "failing test programs: ${failed_programs[*]}"
fi
echo "$passed passed, $failed failed"
[[ $failed -eq 0 && ${#failed_programs[@]} -eq 0 ]]
