#!/usr/bin/env bash
# `make demo`: runs profiles/seed-verification.yaml, the background
# experiment at scale, on the embedded simulator (about two minutes), prints
# the result table and the summary's verdict, and prints where the report is.
#
# make demo sets POLICYLAG_BIN and POLICYLAG_SOURCE_DIR; run by hand from
# the checkout it uses build/policylag. DEMO_OUT chooses the run directory.
set -uo pipefail

src=${POLICYLAG_SOURCE_DIR:-$(pwd)}
bin=${POLICYLAG_BIN:-$src/build/policylag}
profile=$src/profiles/seed-verification.yaml
out=${DEMO_OUT:-$src/runs/demo-$(date -u +%Y%m%dT%H%M%SZ)}

if [[ ! -x $bin ]]; then
	echo "demo: $bin not found; run 'make' first" >&2
	exit 3
fi

echo "demo: running $profile on the embedded simulator (about two minutes)"
echo "demo: Ctrl-C stops the run and keeps what it measured so far"
echo
"$bin" run "$profile" --out "$out"
status=$?

echo
if [[ -f $out/summary.json ]]; then
	verdict=$(sed -n 's/^  "verdict": "\(.*\)",\{0,1\}$/\1/p' "$out/summary.json" | head -n 1)
	if [[ -n $verdict ]]; then
		echo "verdict: $verdict"
	fi
fi
if [[ -f $out/report.html ]]; then
	echo "report:  $out/report.html (open it in a browser)"
fi
case $status in
0) echo "demo: every expectation of the profile held" ;;
1) echo "demo: the run finished but an expectation failed (see $out/junit.xml)" ;;
*) echo "demo: the run did not finish (exit status $status); see $out/run.json" ;;
esac
exit $status
