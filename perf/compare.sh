#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Compare a build's hot-path instruction counts (callgrind, see
# perf/callgrind.sh) with the committed baseline perf/baseline.txt.
#   perf/compare.sh [BUILD_DIR] [TOLERANCE_PERCENT] [BASELINE]
# Prints one line per call (baseline, now, change) and exits 1 when any
# count grew by more than TOLERANCE_PERCENT (default 3). Instruction counts
# do not depend on the machine's load, so this is fit for a noisy machine;
# they do depend on the compiler and build type, which the baseline names.
# Refresh the baseline with: perf/callgrind.sh BUILD > perf/baseline.txt
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-build}
tol=${2:-3}
base=${3:-$here/baseline.txt}
now=$(mktemp)
trap 'rm -f "$now"' EXIT
"$here/callgrind.sh" "$build" >"$now"
awk -v tol="$tol" '
	NR == FNR { if ($1 !~ /^#/) b[$1] = $2; next }
	$1 !~ /^#/ && ($1 in b) {
		d = b[$1] ? 100 * ($2 - b[$1]) / b[$1] : 0
		printf "%-10s baseline %5d  now %5d  %+6.1f%%%s\n", $1, b[$1], $2, d, (d > tol ? "  WORSE" : "")
		if (d > tol) bad = 1
	}
	END { exit bad }' "$base" "$now"
