#!/usr/bin/env bash
# Runs every benchmark program given as an argument (build/tests/bench_*),
# then the scale benchmark script if present, and prints the machine they ran
# on, so the figures can be copied into docs/benchmarks.md with their context.
set -uo pipefail

echo "== machine"
lscpu | grep -E '^(Model name|CPU\(s\)|Thread|Core)' || true
grep MemTotal /proc/meminfo || true
echo "kernel: $(uname -r)"
echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo

status=0
for program in "$@"; do
	echo "== $(basename "$program")"
	if ! "$program"; then
		echo "$(basename "$program") failed" >&2
		status=1
	fi
	echo
done

if [[ -x scripts/bench-scale.sh && -z "${BENCH_SKIP_SCALE:-}" ]]; then
	echo "== scale (scripts/bench-scale.sh; BENCH_SKIP_SCALE=1 skips it)"
	bash scripts/bench-scale.sh || status=1
fi
exit $status
