#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Count the instructions of the hot path (submit, lease, ack; 64 B payload,
# one process, no contention) with callgrind, per task and per call.
#   perf/callgrind.sh [BUILD_DIR] [ROUNDS]
# Prints "submit N", "lease N", "ack N", "total N" instructions per task.
set -euo pipefail
build=${1:-build}
rounds=${2:-200000}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
valgrind --tool=callgrind --callgrind-out-file="$out/cg.out" \
	"$build/perf/tq-hotpath" "$rounds" 2>"$out/log" || { cat "$out/log"; exit 1; }
callgrind_annotate --inclusive=yes "$out/cg.out" 2>/dev/null >"$out/ann"
for fn in tq_submit tq_lease tq_ack; do
	ir=$(grep -E "[^_]${fn} " "$out/ann" | grep -v "'" | head -1 | awk '{gsub(",","",$1); print $1}')
	printf '%-7s %s\n' "${fn#tq_}" "$(( ${ir:-0} / rounds ))"
done | tee "$out/per"
awk '{s += $2} END {print "total  ", s}' "$out/per"
