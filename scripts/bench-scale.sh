#!/usr/bin/env bash
# Scale benchmark, run by `make bench` (scripts/bench.sh): profiles/scale-10k.yaml
# with 10,000 keep-connection devices against the embedded simulator on
# loopback. Reports the time to connect every device, the harness's memory
# per device (peak of coordinator plus worker RSS and PSS, the simulator
# excluded), and the measurement error against the simulator's ground truth.
#
#   BENCH_DEVICES=N      run N devices instead of 10,000 (for a quick check)
#   BENCH_OUT=DIR        keep the run directory there (default: a temporary one)
#   BENCH_CONNECT_RATE=R override fleet.connect_rate, e.g. 100/s on a busy machine
#
# The run is bounded: the profile's timeouts end it, and the whole script
# stops after BENCH_TIMEOUT seconds (default 900).
#
# The devices share one certificate (distinct client ids).
# BENCH_CERTIFICATES=per-device creates one certificate per device through
# the simulator's control plane instead. The provisioning quotas are off
# either way.
set -uo pipefail

src=${POLICYLAG_SOURCE_DIR:-$(pwd)}
bin=${POLICYLAG_BIN:-$src/build/policylag}
devices=${BENCH_DEVICES:-10000}
connect_rate=${BENCH_CONNECT_RATE:-}
certificates=${BENCH_CERTIFICATES:-shared}
timeout_s=${BENCH_TIMEOUT:-900}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/policylag-bench.XXXXXX")
out=${BENCH_OUT:-$tmp/run}
trap 'rm -rf "$tmp"' EXIT

sets=(
	--set "fleet.devices=$devices"
	--set "fleet.certificates=$certificates"
	--set target.simulator.quotas.create_certificate_from_csr=0
	--set target.simulator.quotas.attach_detach_policy=0
	--set target.simulator.quotas.policy_write=0
)
if [[ -n $connect_rate ]]; then
	sets+=(--set "fleet.connect_rate=$connect_rate")
fi

# Sums the RSS and the PSS (KiB) of the coordinator (the child of `timeout`)
# and of its children except the broker, that is the workers. RSS counts the
# shared library pages once per process. PSS (proportional set size, from
# /proc/PID/smaps_rollup) divides them among the processes that map them.
harness_mem() {
	local coordinator pid comm rss_total=0 pss_total=0 rss pss
	coordinator=$(ps -o pid= --ppid "$1" 2>/dev/null | head -n 1 | tr -d ' ')
	[[ -z $coordinator ]] && { echo "0 0"; return; }
	while read -r pid comm; do
		[[ $comm == mosquitto ]] && continue
		read -r rss pss < <(awk '/^Rss:/ { r = $2 } /^Pss:/ { p = $2 }
			END { print r + 0, p + 0 }' "/proc/$pid/smaps_rollup" 2>/dev/null)
		rss_total=$((rss_total + ${rss:-0}))
		pss_total=$((pss_total + ${pss:-0}))
	done < <(ps -o pid=,comm= -p "$coordinator" 2>/dev/null; ps -o pid=,comm= --ppid "$coordinator" 2>/dev/null)
	echo "$rss_total $pss_total"
}

start=$(date +%s)
timeout --signal=INT --kill-after=30 "$timeout_s" \
	"$bin" run "$src/profiles/scale-10k.yaml" "${sets[@]}" --out "$out" --progress log \
	>"$tmp/stdout" 2>"$tmp/stderr" &
pid=$!
peak=0
peak_pss=0
while kill -0 "$pid" 2>/dev/null; do
	read -r rss pss < <(harness_mem "$pid")
	((rss > peak)) && peak=$rss
	((pss > peak_pss)) && peak_pss=$pss
	sleep 2
done
wait "$pid"
status=$?
elapsed=$(($(date +%s) - start))

if [[ ! -f $out/samples.csv ]]; then
	echo "bench-scale: the run wrote no samples.csv (exit status $status); its log follows" >&2
	tail -n 40 "$tmp/stderr" >&2
	exit 1
fi

# Time to connect: from the connect phase to the last device's first CONNACK.
connect_s=$(awk -F'"t_ns":' '
	/"type":"phase","phase":"connect"/ { split($2, a, ","); t0 = a[1] }
	/"type":"phase","phase":"settle"/ { done = 1 }
	/"type":"connect",/ && !done { split($2, a, ","); if (a[1] > last) last = a[1] }
	END { if (t0 != "") printf "%.1f", (last - t0) / 1e9 }' "$out/events.jsonl")
connected=$(grep -c '"type":"connect",' "$out/events.jsonl")

# Measurement error against the ground truth, over rows that have it.
read -r rows effective censored truth mean_ms max_ms < <(awk -F, '
	NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
	{ rows++ }
	$col["censored"] == "0" { effective++ }
	$col["censored"] == "1" { censored++ }
	$col["truth_error_ns"] != "" {
		e = $col["truth_error_ns"]; if (e < 0) e = -e
		n++; sum += e; if (e > max) max = e
	}
	END { printf "%d %d %d %d %.1f %.1f\n", rows, effective, censored, n,
	      n ? sum / n / 1e6 : 0, max / 1e6 }' "$out/samples.csv")

echo "command: policylag run profiles/scale-10k.yaml --set fleet.devices=$devices" \
	"--set fleet.certificates=$certificates (provisioning quotas off)"
echo "exit status: $status, wall time ${elapsed} s"
echo "devices: $devices; connect events: $connected; rows: $rows (effective $effective," \
	"censored $censored)"
echo "time to connect all devices: ${connect_s} s"
echo "harness peak RSS: $((peak / 1024)) MiB, $((peak * 1024 / (devices > 0 ? devices : 1))) bytes per device"
echo "harness peak PSS: $((peak_pss / 1024)) MiB, $((peak_pss * 1024 / (devices > 0 ? devices : 1))) bytes per device"
echo "measurement error vs ground truth ($truth rows): mean ${mean_ms} ms, max ${max_ms} ms"
grep -E 'connected [0-9]+ of|certificates ready' "$tmp/stderr" | sed 's/^/log: /'
exit $((status == 0 || status == 1 ? 0 : 1))
