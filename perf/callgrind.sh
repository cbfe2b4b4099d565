#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Count the instructions of the hot path (submit, lease, ack; 64 B payload,
# one process, no contention) with callgrind, per task and per call.
#   perf/callgrind.sh [BUILD_DIR] [ROUNDS]
# Prints "submit N", "lease N", "ack N", "total N": instructions per task
# with one task per call, then the same with batches of 64 (tq_submit_batch,
# tq_lease of 64, and 64 tq_ack calls) as "b64-submit" ... "b64-total".
set -euo pipefail
build=${1:-build}
rounds=${2:-200000}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# count PREFIX BATCH SUBMIT_FN: one callgrind run, per-task inclusive counts.
count() {
	local prefix=$1 batch=$2 submit=$3 ack=$4 r=$(( rounds / $2 )) tasks
	tasks=$(( r * batch ))
	valgrind --tool=callgrind --callgrind-out-file="$out/cg.out" \
		"$build/perf/tq-hotpath" "$r" "$batch" 2>"$out/log" || { cat "$out/log"; exit 1; }
	callgrind_annotate --inclusive=yes "$out/cg.out" 2>/dev/null >"$out/ann"
	: >"$out/per"
	for fn in "$submit" tq_lease "$ack"; do
		# A function's inclusive count is listed once per source file
		# its code comes from (handle.h, ring.h, ... when inlined), and
		# once more for the whole without an object name: the largest.
		ir=$(grep -E ":${fn}( |\$)" "$out/ann" | grep -v "=>" |
			awk '{gsub(",","",$1); if ($1 + 0 > m) m = $1 + 0} END {print m + 0}')
		name=${fn#tq_}
		name=${name%_batch}
		printf '%-10s %s\n' "$prefix$name" "$(( ${ir:-0} / tasks ))" >>"$out/per"
	done
	cat "$out/per"
	awk -v p="$prefix" '{s += $2} END {printf "%-10s %d\n", p "total", s}' "$out/per"
}
count "" 1 tq_submit tq_ack
count "b64-" 64 tq_submit_batch tq_ack_batch
