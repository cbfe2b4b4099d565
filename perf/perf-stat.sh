#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Hardware counters of the hot path (perf/hotpath.c: one process, N rounds
# of submit -> lease -> ack, 64 B) with `perf stat`, per round.
#   perf/perf-stat.sh [BUILD_DIR] [ROUNDS]
# Where the machine does not allow it (no perf, perf_event_paranoid, a VM
# without a PMU), says so on one line and exits 0: the callgrind counts
# (perf/callgrind.sh) are the repeatable figures.
set -euo pipefail
build=${1:-build}
rounds=${2:-2000000}
if ! command -v perf >/dev/null 2>&1; then
	echo "perf-stat: skipped: perf is not installed (apt-get install linux-perf)"
	exit 0
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
events=task-clock,instructions,cycles,branches,branch-misses,cache-misses,context-switches
if ! perf stat -x, -e "$events" -o "$out" "$build/perf/tq-hotpath" "$rounds" >/dev/null 2>&1; then
	echo "perf-stat: skipped: perf stat failed here ($(head -c 200 "$out" | tr '\n' ' '))"
	exit 0
fi
supported=0
while IFS=, read -r val unit ev _; do
	case "$val" in ''|\#*) continue ;; esac
	if [[ "$val" == "<not supported>" || "$val" == "<not counted>" ]]; then
		printf '%-18s %s\n' "$ev" "$val"
		continue
	fi
	supported=1
	awk -v v="$val" -v n="$rounds" -v e="$ev" -v u="$unit" \
		'BEGIN { if (u == "msec") printf "%-18s %16.2f %-5s %10.1f ns per round\n", e, v, u, v * 1e6 / n; else printf "%-18s %16.0f %-5s %10.2f per round\n", e, v, u, v / n }'
done <"$out"
[[ $supported == 1 ]] || echo "perf-stat: no counter is available on this machine"
