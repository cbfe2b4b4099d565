#!/bin/sh
# SPDX-License-Identifier: MIT
#
# run-spin.sh - check one Promela model of tests/models with spin, as a test.
#
#   tests/run-spin.sh [--expect pass|fail] MODEL.pml [-DNAME[=VALUE]...]
#
# Generates the verifier (spin -a, with the -D options given), compiles it
# for a safety search (assertions and invalid end states: cc -DSAFETY, with
# -DCOLLAPSE state compression, which is lossless), runs an exhaustive
# search, and prints the figures. --expect pass (the default) fails on any
# error or on a search cut short by the depth bound; --expect fail
# (mutants, known bugs) fails unless spin finds an error, and prints it.
# docs/models.md describes the models. Needs spin (Debian package `spin`)
# and a C compiler; without spin the test fails, saying so.
set -eu

expect=pass
if [ "${1:-}" = "--expect" ]; then
	expect=$2
	shift 2
fi
if [ $# -lt 1 ]; then
	echo "usage: $0 [--expect pass|fail] MODEL.pml [-DNAME[=VALUE]...]" >&2
	exit 2
fi
model=$1
shift
case $model in
/*) ;;
*) model=$(pwd)/$model ;;
esac
[ -f "$model" ] || { echo "run-spin: no model $model" >&2; exit 2; }

if ! command -v spin >/dev/null 2>&1; then
	echo "run-spin: spin is not installed: the model tests need it." >&2
	echo "run-spin: install it with: apt-get install -y spin" >&2
	exit 1
fi
cc=${CC_FOR_SPIN:-cc}
command -v "$cc" >/dev/null 2>&1 || cc=gcc

dir=$(mktemp -d "${TMPDIR:-/tmp}/tq-spin.XXXXXX")
trap 'rm -rf "$dir"' EXIT
trap 'exit 1' INT TERM HUP
# The model and what it includes, copied: spin and pan write next to them.
cp "$(dirname "$model")"/*.pml "$dir"/
cd "$dir"

name=$(basename "$model")
model=$name
echo "run-spin: $name $* (expect $expect)"
t0=$(date +%s)
if ! spin "$@" -a "$model" >spin.out 2>&1; then
	cat spin.out >&2
	echo "run-spin: spin -a failed" >&2
	exit 1
fi
# Quick compile for mutants (they stop at the first error); the full
# searches are worth -O2.
opt=-O2
[ "$expect" = fail ] && opt=-O1
if ! "$cc" $opt -w -DSAFETY -DCOLLAPSE -o pan pan.c >cc.out 2>&1; then
	cat cc.out >&2
	echo "run-spin: compiling the verifier failed" >&2
	exit 1
fi
# -m: search depth bound (steps); -w22: hash table of 4 Mi slots to start.
./pan -m200000 -w22 >pan.out 2>&1 || true
t1=$(date +%s)

errors=$(sed -n 's/.*errors: \([0-9][0-9]*\).*/\1/p' pan.out | head -n 1)
states=$(sed -n 's/^ *\([0-9.e+]*\) states, stored.*/\1/p' pan.out | head -n 1)
depth=$(sed -n 's/.*depth reached \([0-9]*\).*/\1/p' pan.out | head -n 1)
mem=$(sed -n 's/^ *\([0-9.]*\).*total actual memory usage.*/\1/p' pan.out | head -n 1)
echo "run-spin: $name: errors ${errors:-?}, ${states:-?} states, depth ${depth:-?}," \
     "${mem:-?} MB, $((t1 - t0)) s in all"

if [ -z "$errors" ]; then
	cat pan.out >&2
	echo "run-spin: the verifier did not finish" >&2
	exit 1
fi
if grep -q "max search depth too small" pan.out; then
	cat pan.out >&2
	echo "run-spin: the search was cut short by the depth bound" >&2
	exit 1
fi

show_error() {
	grep -E "assertion violated|invalid end state|pan:[0-9]+:" pan.out | head -n 3
	if [ -f "$name.trail" ]; then
		echo "run-spin: the counterexample's last steps, bookkeeping and the final check left out (spin -t -p $name):"
		spin "$@" -t -p "$model" 2>&1 | grep -E "^ *[0-9]+:[[:space:]]+proc" |
			grep -vE ":init:|tries|assert\(\(tries|\[\(1\)\]|\[else\]| = 0\]$" | tail -n 40
	fi
}

if [ "$expect" = pass ]; then
	if [ "$errors" != 0 ]; then
		show_error "$@" >&2
		echo "run-spin: FAIL: spin found an error in $name" >&2
		exit 1
	fi
	echo "run-spin: ok"
else
	if [ "$errors" = 0 ]; then
		echo "run-spin: FAIL: spin found no error in $name $*, one was expected" >&2
		exit 1
	fi
	show_error "$@"
	echo "run-spin: ok: spin found the expected error"
fi
