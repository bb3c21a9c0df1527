#!/bin/bash
# test_local.sh - spoke-launch --local, no Slurm: exit codes, teardown on
# driver exit, crash, signal and agent death, signals while an actor's init
# runs, the launcher killed outright, two jobs at once, bad job files with
# line and column (every mistake), and the shell mode.
set -u
build=$SPOKE_BUILDDIR
launch=$build/spoke-launch
hello=$build/examples/.libs/hello.so
slow=$build/tests/harness/.libs/testactor.so
task=$build/examples/.libs/complex_task.so
work=$(mktemp -d /tmp/spoke-launch-test.XXXXXX)
checks=0 failures=0

ok() { checks=$((checks + 1)); echo "ok - $1"; }
not_ok() { checks=$((checks + 1)); failures=$((failures + 1)); echo "not ok - $1: $2"; }
# Processes of this test's jobs (other tests run beside it): hubs, agents,
# actors, drivers, all those whose job log directory (SPOKE_LOG_DIR) is
# under $work.
ours() {
	local p
	for p in $(ps -e -o pid=); do
		if tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -q "^SPOKE_LOG_DIR=$work"; then
			echo "$p"
		fi
	done
}
leftovers() { ours | wc -l; }
trap 'ours | xargs -r kill -9; rm -rf "$work"' EXIT
job() { # job NAME DRIVER [extra yaml]: writes $work/NAME.yaml
	cat >"$work/$1.yaml" <<YAML
name: $1
gang: 1x2
timeouts:
  shutdown: 2s
actors:
  - name: hello
    type: Hello
    module: $hello
    per_node: 2
modules: [$task]
driver: $2
${3:-}
YAML
}

# 1. The driver's exit status is the job's; the driver sees the job.
job exit7 "sh -c 'test -n \"\$SPOKE_HUB\" && test -r \"\$SPOKE_TOKEN_FILE\" && exit 7'"
out=$("$launch" --local --log-dir "$work/l1" "$work/exit7.yaml" 2>&1)
rc=$?
if [ $rc -eq 7 ] && grep -q "agents 1/1 registered" <<<"$out" &&
	grep -q "stopped: the driver exited with status 7" <<<"$out"; then
	ok "driver exit status 7 comes back, with progress and reason"
else
	not_ok "driver exit status" "rc=$rc: $out"
fi
if [ "$(leftovers)" -eq 0 ]; then
	ok "nothing left after the driver exits"
else
	not_ok "leftovers after exit" "$(leftovers) processes"
fi

# 2. Calls from the driver reach the job's actors, also when the user's
# environment holds another job's token.
job calls "$build/examples/driver"
out=$(SPOKE_TOKEN=another-jobs-token "$launch" --local --log-dir "$work/l2" "$work/calls.yaml" 2>&1)
rc=$?
if [ $rc -eq 0 ] && grep -q "driver: 2 Hello actors answered" <<<"$out"; then
	ok "driver calls the job's actors (a stale SPOKE_TOKEN does not get in the way)"
else
	not_ok "driver calls" "rc=$rc: $out"
fi

# 3. A driver that crashes leaves nothing behind.
job crash "sh -c 'kill -9 \$\$'"
out=$("$launch" --local --log-dir "$work/l3" "$work/crash.yaml" 2>&1)
rc=$?
if [ $rc -eq 137 ] && [ "$(leftovers)" -eq 0 ]; then
	ok "a crashing driver: status 137, nothing left"
else
	not_ok "crashing driver" "rc=$rc leftovers=$(leftovers): $out"
fi

# 4. SIGTERM (scancel) ends the job within seconds, saying why.
job sleepy "sleep 60"
"$launch" --local --log-dir "$work/l4" "$work/sleepy.yaml" >"$work/l4.out" 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q "running sleep" "$work/l4.out" 2>/dev/null && break; sleep 0.05; done
start=$(date +%s%N)
kill -TERM $pid
wait $pid
rc=$?
ms=$((($(date +%s%N) - start) / 1000000))
if [ $rc -eq 143 ] && [ $ms -lt 5000 ] && grep -q "stopped: interrupted by signal 15" "$work/l4.out" &&
	[ "$(leftovers)" -eq 0 ]; then
	ok "SIGTERM stops the job in ${ms} ms"
else
	not_ok "SIGTERM" "rc=$rc ms=$ms leftovers=$(leftovers): $(cat "$work/l4.out")"
fi

# 4b. Ctrl-C and SIGTERM while an actor's init runs (a model that loads for
# a minute, within a spawn timeout of two): the job stops within 2 s, with
# 128+N, and leaves neither a process nor anything but logs.
only_logs() { # only_logs DIR: what DIR holds besides *.log
	find "$1" -mindepth 1 ! -name '*.log' -printf '%f '
}
# wait_for KIND DIR: the pid of the job's spoke-KIND, once it runs (5 s at most)
wait_for() {
	local p _
	for _ in $(seq 250); do
		for p in $(pgrep -f "^$build/spoke-$1"); do
			if tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -q "^SPOKE_LOG_DIR=$2\$"; then
				echo "$p"
				return 0
			fi
		done
		sleep 0.02
	done
	return 1
}
# wait_bounded PID SECONDS: waits for child PID, at most SECONDS; its status
# in $rc, or "hung" (and PID killed) if it was still running.
wait_bounded() {
	local _
	for _ in $(seq $(($2 * 50))); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.02
	done
	if kill -0 "$1" 2>/dev/null; then
		kill -KILL "$1"
		wait "$1" 2>/dev/null
		rc=hung
	else
		wait "$1"
		rc=$?
	fi
}
for how in INT:count TERM:per_node; do
	sig=${how%:*} group=${how#*:}
	cat >"$work/init-$sig.yaml" <<YAML
name: init-$sig
gang: 1x2
timeouts:
  spawn: 2m
  shutdown: 2s
actors:
  - name: slow
    type: Slow
    module: $slow
    $group: 2
    args: "60000"
driver: sleep 60
YAML
	"$launch" --local --log-dir "$work/i-$sig" "$work/init-$sig.yaml" >"$work/i-$sig.out" 2>&1 &
	pid=$!
	worker=$(wait_for worker "$work/i-$sig")
	start=$(date +%s%N)
	kill -"$sig" $pid
	wait_bounded $pid 5
	ms=$((($(date +%s%N) - start) / 1000000))
	want=$((128 + $(kill -l "$sig")))
	if [ -n "$worker" ] && [ "$rc" = $want ] && [ $ms -lt 2000 ] &&
		grep -q "stopped: interrupted by signal $(kill -l "$sig")" "$work/i-$sig.out" &&
		[ "$(leftovers)" -eq 0 ] && [ -z "$(only_logs "$work/i-$sig")" ]; then
		ok "SIG$sig during an actor's init ($group): status $rc in ${ms} ms, nothing left"
	else
		not_ok "SIG$sig during init ($group)" "worker=$worker rc=$rc (want $want) ms=$ms leftovers=$(leftovers) files=$(only_logs "$work/i-$sig"): $(cat "$work/i-$sig.out")"
	fi
done

# 4c. The launcher killed outright (SIGKILL: no teardown of its own) while
# the driver runs: the job's processes stop and its token file goes.
"$launch" --local --log-dir "$work/k9" "$work/sleepy.yaml" >"$work/k9.out" 2>&1 &
pid=$!
wait_for worker "$work/k9" >/dev/null
for _ in $(seq 100); do grep -q "running sleep" "$work/k9.out" 2>/dev/null && break; sleep 0.05; done
kill -KILL $pid
wait_bounded $pid 5
for _ in $(seq 150); do
	[ "$(leftovers)" -eq 0 ] && [ -z "$(only_logs "$work/k9")" ] && break
	sleep 0.02
done
if [ "$(leftovers)" -eq 0 ] && [ -z "$(only_logs "$work/k9")" ]; then
	ok "spoke-launch killed with SIGKILL: the job's processes stop, only logs stay"
else
	not_ok "SIGKILL of spoke-launch" "leftovers=$(leftovers) files=$(only_logs "$work/k9"): $(cat "$work/k9.out")"
fi

# 5. An agent killed mid-job ends the job with a message.
"$launch" --local --log-dir "$work/l5" "$work/sleepy.yaml" >"$work/l5.out" 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q "running sleep" "$work/l5.out" 2>/dev/null && break; sleep 0.05; done
agent=""
for p in $(pgrep -f "^$build/spoke-agent"); do
	tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -q "^SPOKE_LOG_DIR=$work/l5" && agent=$p
done
[ -n "$agent" ] && kill -9 "$agent"
wait $pid
rc=$?
if [ -n "$agent" ] && [ $rc -eq 1 ] && grep -q "stopped: the agent died (signal 9)" "$work/l5.out" &&
	[ "$(leftovers)" -eq 0 ]; then
	ok "a killed agent ends the job with a message"
else
	not_ok "killed agent" "agent=$agent rc=$rc leftovers=$(leftovers): $(cat "$work/l5.out")"
fi

# 6. Two jobs at once: each driver reaches its own actors only.
job twin "sh -c 'cp \"\$SPOKE_TOKEN_FILE\" \"\$SPOKE_LOG_DIR.token\" && exec $build/examples/driver'"
"$launch" --local --log-dir "$work/l6a" "$work/twin.yaml" >"$work/l6a.out" 2>&1 &
a=$!
"$launch" --local --log-dir "$work/l6b" "$work/twin.yaml" >"$work/l6b.out" 2>&1 &
b=$!
wait $a; ra=$?
wait $b; rb=$?
ha=$(sed -n 's/.*hub at //p' "$work/l6a.out" | cut -d' ' -f1)
hb=$(sed -n 's/.*hub at //p' "$work/l6b.out" | cut -d' ' -f1)
if [ $ra -eq 0 ] && [ $rb -eq 0 ] && [ -n "$ha" ] && [ "$ha" != "$hb" ] &&
	[ -s "$work/l6a.token" ] && [ -s "$work/l6b.token" ] &&
	! cmp -s "$work/l6a.token" "$work/l6b.token"; then
	ok "two jobs at once: own hubs ($ha, $hb), own tokens, both succeed"
else
	not_ok "two jobs" "ra=$ra rb=$rb ha=$ha hb=$hb"
fi

# 7. Bad job files: file:line:column, exit 2, nothing started.
printf 'name: bad\ngang: 1x2\nactors:\n  - name: h\n    type: Hello\n    modul: x.so\n' >"$work/bad.yaml"
out=$("$launch" --local --log-dir "$work/l7" "$work/bad.yaml" 2>&1)
rc=$?
if [ $rc -eq 2 ] && grep -q "bad.yaml:6:5: unknown key 'modul'" <<<"$out" && [ ! -e "$work/l7" ]; then
	ok "a YAML typo is reported with line and column"
else
	not_ok "bad job file" "rc=$rc: $out"
fi
printf 'name: bad\ngang: 2x8:3\n' >"$work/bad2.yaml"
out=$("$launch" --check "$work/bad2.yaml" 2>&1)
rc=$?
if [ $rc -eq 2 ] && grep -q "bad2.yaml:2:7:.*8 GPUs per node do not divide into actors of 3 GPUs" <<<"$out"; then
	ok "a bad gang is reported with line and column"
else
	not_ok "bad gang" "rc=$rc: $out"
fi
printf 'name: bad\ngang: 0x8\nactors:\n  - name: h\n    type: Hello\n    modul: x.so\n' >"$work/bad3.yaml"
out=$("$launch" --local --log-dir "$work/l7c" "$work/bad3.yaml" 2>&1)
rc=$?
if [ $rc -eq 2 ] && [ ! -e "$work/l7c" ] && [ "$(wc -l <<<"$out")" -eq 3 ] &&
	grep -q "^spoke-launch: .*bad3.yaml:2:7: gang '0x8': a gang needs at least 1 node" <<<"$out" &&
	grep -q "^spoke-launch: .*bad3.yaml:6:5: unknown key 'modul'" <<<"$out" &&
	grep -q "^spoke-launch: .*bad3.yaml:4:5: actor group 'h' has none of module, program and python" <<<"$out"; then
	ok "every mistake of a job file is reported, one line each, nothing started"
else
	not_ok "every mistake" "rc=$rc: $out"
fi
if "$launch" --check "$SPOKE_SRCDIR/examples/job.yaml" >/dev/null 2>&1; then
	ok "examples/job.yaml checks"
else
	not_ok "examples/job.yaml" "--check failed"
fi

# 8. No driver: a shell, whose status is the job's.
printf 'name: sh\nactors:\n  - name: hello\n    type: Hello\n    module: %s\n' "$hello" >"$work/shell.yaml"
# shellcheck disable=SC2016
out=$(echo 'test -n "$SPOKE_HUB" && exit 3' | SHELL=/bin/sh "$launch" --local --log-dir "$work/l8" "$work/shell.yaml" 2>&1)
rc=$?
if [ $rc -eq 3 ] && grep -q "no driver: starting /bin/sh" <<<"$out"; then
	ok "no driver: a shell inside the job"
else
	not_ok "shell" "rc=$rc: $out"
fi

# 9. An actor that cannot start stops the launch with its reason.
job notype "true" ""
sed -i 's/type: Hello/type: Nope/' "$work/notype.yaml"
out=$("$launch" --local --log-dir "$work/l9" "$work/notype.yaml" 2>&1)
rc=$?
if [ $rc -eq 1 ] && grep -q "unknown actor type 'Nope'" <<<"$out" && [ "$(leftovers)" -eq 0 ]; then
	ok "an unknown actor type stops the launch with its reason"
else
	not_ok "unknown type" "rc=$rc: $out"
fi

echo "Checks: $checks, Failures: $failures, Errors: 0"
[ $failures -eq 0 ]
