#!/bin/bash
# run.sh - the C++ binding (include/spoke/spoke.hpp) on a live job:
#  1. the original Spoke README's examples (examples/cpp: gang.cpp, call.cpp
#     and the MyActor module), each under spoke-launch --local with its job
#     file; they name the hub 127.0.0.1:8888, so these two jobs hold a lock
#     (and are skipped, saying so, when something else listens there);
#  2. tests/cpp/errors as the driver of a job of its own: serializers,
#     calls, callAsync, gangs, and every error path as a spoke::Error with
#     the right code (a dead actor, a missing one, a bad gang...);
#  3. tests/cpp/streams (spoke::Stream, Future::cancel) against the
#     harness's Keeper actor, over each transport of
#     $SPOKE_CPP_STREAM_TRANSPORTS (default: shm tcp).
# Building a C++ program against an installed Spoke, with pkg-config and
# CMake, is tests/install.sh's.  Skips (77) where configure found no C++17
# compiler, or without the launcher.
set -u
build=$SPOKE_BUILDDIR
src=$SPOKE_SRCDIR
launch=$build/spoke-launch
[ -x "$build/tests/cpp/errors" ] && [ -e "$build/examples/cpp/.libs/my_actor.so" ] || {
	echo "SKIP: the C++ binding's examples are not built (configure found no C++17 compiler)"
	exit 77
}
[ -x "$launch" ] || { echo "SKIP: spoke-launch is not built (libyaml missing)"; exit 77; }
tmp=$(mktemp -d /tmp/spoke-cpp.XXXXXX)
copies=()
trap 'rm -rf "$tmp" "${copies[@]}"' EXIT
fail() {
	echo "FAIL: $*"
	exit 1
}

# job_of NAME: the path of examples/cpp/NAME.yaml beside the built examples
# (paths in a job file are relative to it): a copy out of tree.
job_of() {
	job=$build/examples/cpp/$1.yaml
	if [ ! -e "$job" ]; then
		job=$build/examples/cpp/$1.yaml.test.yaml
		cp "$src/examples/cpp/$1.yaml" "$job"
		copies+=("$job")
	fi
}

# 1. The seed's examples, on the port they name.
port_busy() { (exec 3<>/dev/tcp/127.0.0.1/8888) 2>/dev/null; }
exec 9>/tmp/spoke-cpp-examples-8888.lock
if ! flock -w 300 9; then
	echo "# SKIP examples: another run held 127.0.0.1:8888 for 5 minutes"
elif port_busy; then
	echo "# SKIP examples: something else listens on 127.0.0.1:8888, the hub port they name"
else
	job_of gang
	out=$("$launch" --local --log-dir "$tmp/gang" "$job" 2>&1)
	rc=$?
	echo "$out"
	[ $rc -eq 0 ] || fail "spoke-launch examples/cpp/gang.yaml exited $rc"
	n=$(grep -c "worker_[0-7]" "$tmp"/gang/hub.log 2>/dev/null)
	echo "# gang: $n hub log lines name worker_0..7"
	for i in 0 1 2 3 4 5 6 7; do
		grep -q "worker_$i\b" "$tmp"/gang/*.log || fail "gang.cpp: no worker_$i in the job's logs"
	done

	job_of call
	out=$("$launch" --local --log-dir "$tmp/call" "$job" 2>&1)
	rc=$?
	echo "$out"
	[ $rc -eq 0 ] || fail "spoke-launch examples/cpp/call.yaml exited $rc"
	grep -q "^Result: id=666 name=ZeroCopyCheck values=2 sum=3.0 by actor_instance_1$" <<<"$out" ||
		fail "call.cpp: no ComplexTask result"
fi
flock -u 9

# 2. Every path of the binding, from a job of its own (any free port).
cat >"$tmp/errors.yaml" <<EOF
name: cpp-errors
gang: 1x8
timeouts:
  spawn: 30s
modules: [$build/examples/cpp/.libs/my_actor.so]
driver: $build/tests/cpp/errors
EOF
out=$("$launch" --local --log-dir "$tmp/errors" "$tmp/errors.yaml" 2>&1)
rc=$?
echo "$out"
grep -q "^not ok" <<<"$out" && fail "tests/cpp/errors: $(grep -c '^not ok' <<<"$out") checks failed"
[ $rc -eq 0 ] || fail "tests/cpp/errors exited $rc"
n=$(grep -c "^ok " <<<"$out")
[ "$n" -ge 30 ] || fail "tests/cpp/errors: only $n checks ran"

# 3. Streams and cancel, against Keeper (tests/harness/kept_actor.c).
module=$build/tests/harness/.libs/testactor.so
[ -e "$module" ] || fail "$module is not built (make check builds it)"
ns=0
for tr in ${SPOKE_CPP_STREAM_TRANSPORTS:-shm tcp}; do
	cat >"$tmp/streams.yaml" <<EOF
name: cpp-streams
gang: 1x8
timeouts:
  spawn: 30s
modules: [$module]
driver: $build/tests/cpp/streams
EOF
	out=$(SPOKE_TRANSPORT=$tr timeout 300 "$launch" --local --log-dir "$tmp/streams-$tr" \
		"$tmp/streams.yaml" 2>&1)
	rc=$?
	echo "# tests/cpp/streams over $tr"
	echo "$out"
	grep -q "^not ok" <<<"$out" &&
		fail "tests/cpp/streams over $tr: $(grep -c '^not ok' <<<"$out") checks failed"
	[ $rc -eq 0 ] || fail "tests/cpp/streams over $tr exited $rc"
	k=$(grep -c "^ok " <<<"$out")
	[ "$k" -ge 18 ] || fail "tests/cpp/streams over $tr: only $k checks ran"
	ns=$((ns + k))
done
echo "PASS: C++ binding: seed examples, $n checks of tests/cpp/errors, $ns of tests/cpp/streams"
