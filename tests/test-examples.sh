#!/bin/bash
# SPDX-License-Identifier: MIT
#
# test-examples.sh - what `meson install` puts in place works for a program
# outside the tree: install the build into a temporary DESTDIR, check that
# every file is there (libraries, headers, tq.pc, programs, a man page for
# every TQ_API function, the unit), build examples/producer.c and
# examples/worker.c with `cc` against the installed library through
# pkg-config (shared, then static with --static; and with examples/Makefile),
# run them on a unique segment, check that the worker processed every task
# the producer submitted and that it stops on SIGTERM; run the unit's
# ExecStart command line (with --once) and verify the unit with
# systemd-analyze when there is one.
#
# usage: test-examples.sh SRCDIR BUILDDIR
# Exit 0 pass, 1 fail, 77 skip. Everything it makes (DESTDIR, binaries,
# the segment) goes away on exit.
set -u -o pipefail

src=$(cd "$1" && pwd) || exit 1
build=$(cd "$2" && pwd) || exit 1
N=${TQ_EXAMPLES_TASKS:-200}

fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $*" >&2; exit 77; }
note() { echo "-- $*"; }

meson=${MESON:-meson}
command -v "$meson" >/dev/null || skip "meson is not on PATH (set MESON)"
command -v python3 >/dev/null || skip "python3 is needed to read meson's introspection"
command -v pkg-config >/dev/null || skip "pkg-config is not installed"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tq-examples.XXXXXX") || fail "mktemp"
seg="/tq-examples-$$-$RANDOM"
inst=tq-unit-$$-$RANDOM      # the unit's instance: segment /$inst
pids=()
# shellcheck disable=SC2317  # called by the trap
cleanup() {
	# pids holds the examples still running (their timeout(1) wrappers),
	# never one already reaped. TERM first: timeout passes it on.
	if [ ${#pids[@]} -gt 0 ]; then
		kill -TERM "${pids[@]}" 2>/dev/null
		sleep 0.2
		kill -KILL "${pids[@]}" 2>/dev/null
	fi
	rm -f "/dev/shm/${seg#/}" "/dev/shm/$inst"
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# --- what the build installs, and where --------------------------------
# One line each: prefix, libdir, includedir, bindir, mandir, b_sanitize.
"$meson" introspect --buildoptions "$build" | python3 -c '
import json, sys
opts = {o["name"]: o["value"] for o in json.load(sys.stdin)}
for k in ["prefix", "libdir", "includedir", "bindir", "mandir", "b_sanitize"]:
    v = opts[k]
    print(",".join(v) if isinstance(v, list) else v)' >"$tmp/options" ||
	fail "meson introspect --buildoptions $build"
{ read -r prefix && read -r libdir && read -r includedir && read -r bindir &&
	read -r mandir && read -r sanitize; } <"$tmp/options" || fail "cannot read the build options"
case $libdir in /*) ;; *) libdir=$prefix/$libdir ;; esac
case $includedir in /*) ;; *) includedir=$prefix/$includedir ;; esac
case $bindir in /*) ;; *) bindir=$prefix/$bindir ;; esac
case $mandir in /*) ;; *) mandir=$prefix/$mandir ;; esac

dest=$tmp/dest
note "meson install --destdir $dest"
"$meson" install -C "$build" --no-rebuild --destdir "$dest" >"$tmp/install.log" 2>&1 ||
	{ cat "$tmp/install.log"; fail "meson install"; }

# Every kind of file, where a packager expects it.
for h in "$src"/include/tq/*.h; do
	[ -e "$dest$includedir/tq/${h##*/}" ] || fail "public header tq/${h##*/} is not installed"
done
for f in "$libdir/libtq.so" "$libdir/libtq.so.0" "$libdir/libtq.a" \
	 "$includedir/tq/tq.h" "$includedir/tq/version.h" "$libdir/pkgconfig/tq.pc" \
	 "$bindir/tq" "$bindir/tqd" "$bindir/tq-demo" \
	 "$mandir/man1/tq.1" "$mandir/man1/tq-demo.1" "$mandir/man7/tq.7" \
	 "$mandir/man8/tqd.8" "$mandir/man3/tq_create.3"; do
	[ -e "$dest$f" ] || fail "$f is not installed"
done
[ -L "$dest$libdir/libtq.so" ] || fail "libtq.so is not a link to the versioned library"
soname=$(readelf -d "$dest$libdir/libtq.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = libtq.so.0 ] || fail "soname is '$soname', not libtq.so.0"
# The shared library exports the map's symbols only.
if command -v nm >/dev/null; then
	leaked=$(nm -D --defined-only "$dest$libdir/libtq.so" | awk '$2 ~ /[TDBR]/ && $3 !~ /^tq_/ {print $3}')
	[ -z "$leaked" ] || fail "libtq.so exports non-API symbols: $leaked"
fi
# A man page for every function (links included) and each program built.
funcs=$(sed -n 's/^[[:space:]]*TQ_API[^(]*[^A-Za-z0-9_]\([A-Za-z_][A-Za-z0-9_]*\)[[:space:]]*(.*/\1/p' \
	"$src"/include/tq/*.h)
[ -n "$funcs" ] || fail "no TQ_API function found in include/tq"
for fn in $funcs; do
	[ -e "$dest$mandir/man3/$fn.3" ] || fail "man3/$fn.3 is not installed (or a dangling link)"
done
if [ -x "$build/tools/tqtop" ]; then
	[ -e "$dest$bindir/tqtop" ] || fail "tqtop is built but not installed"
	[ -e "$dest$mandir/man1/tqtop.1" ] || fail "tqtop.1 is not installed"
fi
unit=$(find "$dest" -name 'tqd@.service' | head -n 1)
[ -n "$unit" ] || fail "tqd@.service is not installed"
grep -q "^ExecStart=$bindir/tqd " "$unit" || fail "tqd@.service does not run $bindir/tqd"
note "installed: $(find "$dest" -type f -o -type l | wc -l) files, unit ${unit#"$dest"}"

# --- pkg-config, pointed into the DESTDIR ------------------------------
export PKG_CONFIG_PATH=$dest$libdir/pkgconfig PKG_CONFIG_LIBDIR=$dest$libdir/pkgconfig
export PKG_CONFIG_SYSROOT_DIR=$dest
pkg-config --exists tq || fail "pkg-config does not find tq"
version=$(pkg-config --modversion tq)
grep -q "TQ_VERSION \"$version\"" "$dest$includedir/tq/version.h" ||
	fail "tq.pc says version $version, version.h does not"
if ! { cflags=$(pkg-config --cflags tq) && libs=$(pkg-config --libs tq) &&
	slibs=$(pkg-config --static --libs tq); }; then
	fail "pkg-config --cflags/--libs tq"
fi
note "cflags: $cflags"
note "libs: $libs; static: $slibs"
case " $cflags " in *" -I$dest$includedir "*) ;; *) fail "--cflags does not point into the DESTDIR" ;; esac
case " $libs " in *" -L$dest$libdir "*"-ltq "*) ;; *) fail "--libs does not give -L<destdir> -ltq" ;; esac
case " $slibs " in *" -pthread "*) ;; *) fail "--static --libs lacks -pthread (Libs.private)" ;; esac

# --- build the examples -------------------------------------------------
CC=${CC:-cc}
san=()
if [ -n "$sanitize" ] && [ "$sanitize" != none ]; then
	# libtq is instrumented: link the examples with the same compiler and
	# runtime. Sanitizers do not link statically; libtq.a alone is then.
	CC=$("$meson" introspect --targets "$build" | python3 -c '
import json, sys
for t in json.load(sys.stdin):
    for s in t.get("target_sources", []):
        if s.get("language") == "c":
            print(s["compiler"][0]); sys.exit(0)')
	san=(-fsanitize="$sanitize")
	[ "$sanitize" = thread ] || san+=(-fno-omit-frame-pointer)
fi
command -v "$CC" >/dev/null || skip "no C compiler '$CC'"
warn=(-std=c11 -Wall -Wextra -Wpedantic -Werror)
mkdir -p "$tmp/bin"
for p in producer worker; do
	# shellcheck disable=SC2086  # pkg-config output is meant to be split
	"$CC" "${warn[@]}" "${san[@]}" $cflags -o "$tmp/bin/$p" "$src/examples/$p.c" $libs ||
		fail "$CC $p.c \$(pkg-config --cflags --libs tq)"
	if [ ${#san[@]} -eq 0 ]; then
		# shellcheck disable=SC2086
		"$CC" "${warn[@]}" -static $cflags -o "$tmp/bin/$p-static" "$src/examples/$p.c" $slibs ||
			fail "$CC -static $p.c \$(pkg-config --static --cflags --libs tq)"
	else
		# shellcheck disable=SC2086
		"$CC" "${warn[@]}" "${san[@]}" $cflags -o "$tmp/bin/$p-static" "$src/examples/$p.c" \
			${slibs/-ltq/-l:libtq.a} || fail "$CC $p.c with libtq.a"
	fi
	readelf -d "$tmp/bin/$p-static" | grep -q 'NEEDED.*libtq' && fail "$p-static needs libtq.so"
done
# The Makefile newcomers copy builds them too (with the same compiler).
if command -v make >/dev/null; then
	mkdir -p "$tmp/make" || fail "mkdir"
	cp "$src/examples/producer.c" "$src/examples/worker.c" "$src/examples/Makefile" \
		"$tmp/make/" || fail "copying examples/"
	make -s -C "$tmp/make" CC="$CC" CFLAGS="-O2 ${san[*]}" >"$tmp/make.log" 2>&1 ||
		{ cat "$tmp/make.log"; fail "make -C examples"; }
	for p in producer worker; do
		[ -x "$tmp/make/$p" ] || fail "make -C examples did not build $p"
	done
fi
libtq_path=$(LD_LIBRARY_PATH=$dest$libdir ldd "$tmp/bin/worker" | awk '/libtq\.so/ {print $3}')
[ "$libtq_path" = "$dest$libdir/libtq.so.0" ] ||
	fail "worker loads libtq from '$libtq_path', not from the DESTDIR"

# --- run them ------------------------------------------------------------
# run_pair SUFFIX TASKS: a worker for TASKS tasks, then a producer of TASKS;
# every submitted ID must be processed once.
run_pair() {
	local sfx=$1 n=$2 wpid rc
	timeout 60 "$tmp/bin/worker$sfx" -s "$seg" -q ex -n "$n" >"$tmp/worker$sfx.out" 2>&1 &
	wpid=$!
	pids+=("$wpid")
	timeout 60 "$tmp/bin/producer$sfx" -s "$seg" -q ex -n "$n" >"$tmp/producer$sfx.out" 2>&1 ||
		{ cat "$tmp/producer$sfx.out"; fail "producer$sfx exited $?"; }
	wait "$wpid"
	rc=$?
	pids=()
	[ "$rc" -eq 0 ] || { cat "$tmp/worker$sfx.out"; fail "worker$sfx exited $rc"; }
	sed -n 's/^submitted \([0-9]*\) .*/\1/p' "$tmp/producer$sfx.out" | sort >"$tmp/sub$sfx"
	sed -n 's/^processed \([0-9]*\) .*/\1/p' "$tmp/worker$sfx.out" | sort >"$tmp/done$sfx"
	[ "$(wc -l <"$tmp/sub$sfx")" -eq "$n" ] || fail "producer$sfx submitted $(wc -l <"$tmp/sub$sfx") of $n"
	cmp -s "$tmp/sub$sfx" "$tmp/done$sfx" ||
		fail "worker$sfx processed $(wc -l <"$tmp/done$sfx") tasks, not the $n submitted: $(diff "$tmp/sub$sfx" "$tmp/done$sfx" | head -5)"
	grep -q "^worker: $n tasks done$" "$tmp/worker$sfx.out" || fail "worker$sfx did not report $n tasks"
	note "$sfx${sfx:+ }examples: $n tasks submitted and processed"
}
export LD_LIBRARY_PATH=$dest$libdir
run_pair "" "$N"
run_pair -static "$N"

# A worker with no task limit stops on SIGTERM, promptly, with status 0.
# --foreground: timeout(1) passes our SIGTERM to the worker alone. Without
# it, timeout also signals its process group and sends SIGCONT, and a
# SIGCONT that reaches a sanitizer build while LeakSanitizer stops it at
# exit to scan for leaks can leave that scan waiting forever.
timeout --foreground -k 5 30 "$tmp/bin/worker" -s "$seg" -q ex >"$tmp/term.out" 2>&1 &
wpid=$!
pids+=("$wpid")
# Once it is attached (its handler is set by then): the CLI sees 2 processes.
for _ in $(seq 1 200); do
	"$dest$bindir/tq" --segment "$seg" stats 2>/dev/null | grep -q ' 2 processes attached' && break
	sleep 0.05
done
kill -TERM "$wpid"
wait "$wpid"
rc=$?
pids=()
[ "$rc" -eq 0 ] || { cat "$tmp/term.out"; fail "worker exited $rc on SIGTERM (124: it did not stop)"; }
grep -q '^worker: 0 tasks done$' "$tmp/term.out" || fail "worker on SIGTERM: $(cat "$tmp/term.out")"
note "worker stops on SIGTERM"

# The installed CLI reads the same segment: nothing left, then it is removed.
"$dest$bindir/tq" --segment "$seg" stats --queue ex >"$tmp/stats.out" 2>&1 ||
	{ cat "$tmp/stats.out"; fail "installed tq stats"; }
"$dest$bindir/tq" --segment "$seg" destroy || fail "installed tq destroy"
[ ! -e "/dev/shm/${seg#/}" ] || fail "segment $seg still exists after tq destroy"

# --- the systemd unit ------------------------------------------------------
# Its command line works: ExecStart, with the instance a unique name, the
# journal in the temporary directory and --once, creates the segment.
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
cmd=${exec_start//\/var\/lib\/tq\/%i/$tmp\/state\/%i}
cmd=${cmd//%i/$inst}
cmd=${cmd//\$TQD_OPTS/}
read -r -a argv <<<"$cmd"
argv[0]=$dest${argv[0]}
seg2=/$inst
timeout 30 "${argv[@]}" --once >"$tmp/unit-run.out" 2>&1 ||
	{ cat "$tmp/unit-run.out"; fail "the unit's command line: ${argv[*]} --once"; }
"$dest$bindir/tq" --segment "$seg2" destroy || fail "tq destroy $seg2"
note "the unit's ExecStart runs: ${cmd#"$bindir"/}"

if command -v systemd-analyze >/dev/null; then
	# verify checks that ExecStart's program exists: point it into the DESTDIR.
	mkdir -p "$tmp/unit"
	sed "s|^ExecStart=$bindir/tqd |ExecStart=$dest$bindir/tqd |" "$unit" >"$tmp/unit/tqd@ex.service"
	if ! systemd-analyze verify --man=no "$tmp/unit/tqd@ex.service" >"$tmp/verify.out" 2>&1 ||
		[ -s "$tmp/verify.out" ]; then
		cat "$tmp/verify.out"
		fail "systemd-analyze verify tqd@.service"
	fi
	note "systemd-analyze verify: tqd@.service is clean"
else
	note "systemd-analyze is not installed: the unit is not verified"
fi
echo "PASS: install, pkg-config, examples (shared and static), SIGTERM, unit"
exit 0
