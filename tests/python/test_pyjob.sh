#!/bin/bash
# test_pyjob.sh - job files with actors written in Python (python: in an
# actor group), under spoke-launch --local:
#   1. examples/python/job.yaml as shipped: Python actors, a Python driver;
#   2. a C driver (tests/launcher/call_driver: threads of sync calls and a
#      window of async calls, every reply checked) calling Python actors
#      (PySlow, tests/python/pyactors/basic.py) given by type: and without;
#   3. refusals before anything starts, with file:line:column: a class that
#      is not there, a type: that is not the decorator's; and a spawn whose
#      __init__ raises (the job stops, the message says why).
# Python's modules come from the source tree, libspoke from this build
# (SPOKE_LIBRARY); in a build with --enable-sanitizers the launcher and its
# children run with the sanitizer runtime preloaded (leak checks off), as
# Python must load it first.  Skips (77) without Python 3 or the launcher.
set -u
build=$SPOKE_BUILDDIR
src=$SPOKE_SRCDIR
launch=$build/spoke-launch
driver=$build/tests/launcher/call_driver
[ -x "$launch" ] || { echo "SKIP: spoke-launch is not built (libyaml missing)"; exit 77; }
[ -x "$build/spoke-worker-python" ] || { echo "SKIP: no spoke-worker-python (no Python 3)"; exit 77; }
[ -x "$driver" ] || { echo "FAIL: $driver is not built (make check builds it)"; exit 1; }

tmp=$(mktemp -d /tmp/spoke-pyjob.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
export PYTHONPATH=$src/runtime/python${PYTHONPATH:+:$PYTHONPATH}
export SPOKE_LIBRARY=$build/.libs/libspoke.so
export PYTHONDONTWRITEBYTECODE=1
if grep -q '^SAN_CFLAGS = .*address' "$build/Makefile"; then
	cc=$(sed -n 's/^CC = //p' "$build/Makefile")
	export LD_PRELOAD=$(${cc:-cc} -print-file-name=libasan.so)
	export ASAN_OPTIONS=detect_leaks=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}
fi
fails=0
pass() { echo "ok: $*"; }
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
run() { # run NAME JOBFILE: spoke-launch's status; its output in $tmp/NAME.out
	timeout 120 "$launch" --local --log-dir "$tmp/logs-$1" "$2" >"$tmp/$1.out" 2>&1
}
show() {
	cat "$tmp/$1.out"
	for f in "$tmp/logs-$1"/*.log; do [ -e "$f" ] && { echo "--- $f"; tail -n 20 "$f"; }; done
}

# 1. The shipped example.
run example "$src/examples/python/job.yaml"
rc=$?
if [ $rc -eq 0 ] && grep -q '^driver: ok$' "$tmp/example.out" &&
	grep -q '^decoder-1 pid [0-9]* gpus [0-9]' "$tmp/example.out"; then
	pass "examples/python/job.yaml: Python driver and actors"
else
	show example
	fail "examples/python/job.yaml exited $rc"
fi

# 2. A C driver calling Python actors.
mkdir -p "$tmp/job"
cat >"$tmp/job/slow.yaml" <<EOF
name: pyslow
gang: 1x4
env:
  PYTHONPATH: "$src/tests/python:$PYTHONPATH"
actors:
  - name: slow
    python: pyactors.basic:Slow
    count: 2
  - name: typed
    type: PySlow
    python: pyactors.basic:Slow
    count: 1
driver: [$driver, -r, "2000", -t, "5000", slow-0, slow-1, typed-0]
EOF
run cdriver "$tmp/job/slow.yaml"
rc=$?
threads=$(grep -c '^thread .* end=stopped' "$tmp/cdriver.out")
zero=$(grep -c '^thread .* ok=0 ' "$tmp/cdriver.out")
if [ $rc -eq 0 ] && [ "$threads" -ge 4 ] && [ "$zero" -eq 0 ]; then
	pass "C driver: $threads threads called Python actors, every reply right"
else
	show cdriver
	fail "C driver calling Python actors: exit $rc, $threads threads stopped cleanly, $zero made no call"
fi

# 3. Refusals.
bad() { # bad NAME STATUS TEXT YAML-GROUP: the job refused with TEXT
	printf 'name: %s\nenv:\n  PYTHONPATH: "%s"\nactors:\n%s\ndriver: /bin/true\n' \
		"$1" "$src/tests/python" "$4" >"$tmp/job/$1.yaml"
	run "$1" "$tmp/job/$1.yaml"
	rc=$?
	if [ $rc -eq "$2" ] && grep -qF -- "$3" "$tmp/$1.out"; then
		pass "$1: exit $rc, $(grep -F -- "$3" "$tmp/$1.out" | head -n 1)"
	else
		show "$1"
		fail "$1: exit $rc (expected $2 and '$3')"
	fi
}
bad nope 2 "no class Nope" "  - name: nope
    python: pyactors.basic:Nope"
[ ! -e "$tmp/logs-nope" ] && pass "nope: nothing started (no log directory)" ||
	fail "nope: the refused job made $tmp/logs-nope"
if "$launch" --check "$tmp/job/nope.yaml" >"$tmp/check.out" 2>&1; then
	fail "--check accepted a python: group whose class is not there"
elif grep -q "nope.yaml:6:13: .*no class Nope" "$tmp/check.out"; then
	pass "--check: $(head -n 1 "$tmp/check.out")"
else
	cat "$tmp/check.out"
	fail "--check of a python: group whose class is not there"
fi
"$launch" --check "$src/examples/python/job.yaml" >/dev/null 2>&1 &&
	pass "--check examples/python/job.yaml" || fail "--check examples/python/job.yaml"
bad mismatch 2 "type: Other, but pyactors.basic:Slow is @spoke.actor(\"PySlow\")" \
	"  - name: m
    type: Other
    python: pyactors.basic:Slow"
bad spec 2 "spec.yaml:6:13: python must be package.module:Class" "  - name: s
    python: pyactors/basic.py"
bad badinit 1 "RuntimeError: no model at" "  - name: b
    python: pyactors.basic:BadInit"
[ $fails -eq 0 ] || { echo "FAIL: $fails of the Python job checks"; exit 1; }
echo "PASS: Python actors in job files"
