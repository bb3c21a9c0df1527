#!/bin/bash
# test_faults.sh - fault injection: SPOKE_FAULT_JOBS (default 50)
# spoke-launch --local jobs, each killing one random process of its own (the
# hub, the agent, a worker, the driver or the launcher) at a random moment
# (from start-up, actors' inits included, to calls in full flow) with a
# random signal.  The driver (tests/launcher/call_driver) calls without
# pause, each call with a deadline, on two actors synchronously, on one
# asynchronously and on the hub, and says how each of its threads ended.
# After each job:
#   - spoke-launch ended (within 10 s of the kill), with 128+N if it was
#     the one that got signal N (SIGTERM, SIGINT, SIGKILL: under ASan a
#     SIGSEGV or SIGABRT ends a process with status 1);
#   - every call that failed did so within its deadline (+ 250 ms) and with
#     a specific error: SPOKE_EDEAD (the actor or its connection died),
#     SPOKE_EHUB (the hub is gone) or SPOKE_ENOACTOR (it is no more); no
#     reply was wrong; and the driver reported, unless it was the one
#     killed by the signal, or never started;
#   - no process of the job is left (neither one whose environment names
#     the job's log directory, nor one whose command line does);
#   - nothing but logs is left in the job's log directory (the token file
#     goes, also when spoke-launch itself was killed: with SIGKILL its
#     janitor removes it).
# The seed is printed; SPOKE_FAULT_SEED=N replays a run.  Half a second a
# job or so.  The jobs' files are kept after a failure, or with
# SPOKE_TEST_KEEP=1.
set -u
build=$SPOKE_BUILDDIR
launch=$build/spoke-launch
slow=$build/tests/harness/.libs/testactor.so
driver=$build/tests/launcher/call_driver
jobs=${SPOKE_FAULT_JOBS:-50}
seed=${SPOKE_FAULT_SEED:-$(($(date +%s%N) % 1000000))}
RANDOM=$seed
echo "# seed $seed (replay: SPOKE_FAULT_SEED=$seed $0)"
for f in "$launch" "$slow" "$driver"; do
	[ -e "$f" ] || { echo "SKIP: $f was not built"; exit 77; }
done
work=$(mktemp -d /tmp/spoke-faults.XXXXXX)
checks=0 failures=0 all_failed=0 slowest=0
kinds=(hub agent worker driver launcher)
signals=(KILL TERM INT SEGV ABRT)
TIMEOUT_MS=1500 # each call's deadline
SLACK_MS=250    # how late a failed call may come back (a loaded 2-core machine)

# job_procs DIR: pids of processes of the job whose log directory is DIR.
job_procs() {
	grep -lzxF "SPOKE_LOG_DIR=$1" /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3
	pgrep -f -- "--log-dir $1 " # the launcher and its janitor
}
# shellcheck disable=SC2317 # run by the trap
cleanup() {
	local d
	for d in "$work"/j*/; do job_procs "${d%/}"; done | xargs -r kill -9 2>/dev/null
	if [ "$failures" -gt 0 ] || [ "${SPOKE_TEST_KEEP:-}" = 1 ]; then
		echo "# kept $work (job N: jN.yaml, jN.out, logs in jN/)"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT

# target KIND DIR LAUNCHER: the pid of the job's process of KIND (a random
# worker of two), once it runs: 5 s at most.  The launcher once it said
# where its logs go: before its main() (exec, the sanitizers' start) it
# cannot handle a signal, and a background job of a script starts with
# SIGINT ignored.
target() {
	local kind=$1 dir=$2 p pids _
	for _ in $(seq 250); do
		if [ "$kind" = launcher ]; then
			grep -q "^spoke-launch: job .*, logs in " "$dir.out" && echo "$3" && return 0
			kill -0 "$3" 2>/dev/null || return 1
			sleep 0.02
			continue
		fi
		pids=()
		while read -r p; do
			case $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null) in
			"$build/spoke-$kind "* | "$build/tests/launcher/call_$kind "*) pids+=("$p") ;;
			esac
		done < <(grep -lzxF "SPOKE_LOG_DIR=$dir" /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3)
		if [ ${#pids[@]} -gt 0 ]; then
			echo "${pids[$((RANDOM % ${#pids[@]}))]}"
			return 0
		fi
		kill -0 "$3" 2>/dev/null || return 1
		sleep 0.02
	done
	return 1
}

# check_calls OUT: the driver's thread lines; prints what is wrong.
check_calls() {
	awk -v slack=$SLACK_MS '
	function field(name) { # the value of " name=VALUE" on the line
		if (!match($0, " " name "=[-0-9.]+")) return "?"
		return substr($0, RSTART + length(name) + 2, RLENGTH - length(name) - 2)
	}
	/^thread [^ ]*: ok=[0-9]* end=/ {
		n++
		if ($4 == "end=stopped") next
		if ($4 == "end=corrupt") { print "a wrong reply: " $0; next }
		rc = field("rc"); ms = field("ms"); to = field("timeout")
		if (ms + 0 > to + slack) print "a call took " ms " ms, its deadline was " to " ms: " $0
		if (rc != -1007 && rc != -1021 && rc != -1005) print "not a specific error: " $0
		if (ms + 0 > slowest) slowest = ms + 0
		failed++
	}
	END { print "threads " n + 0; print "failed " failed + 0 " " slowest + 0 }' "$1"
}

for i in $(seq "$jobs"); do
	kind=${kinds[$((RANDOM % ${#kinds[@]}))]}
	sig=${signals[$((RANDOM % ${#signals[@]}))]}
	delay=$((RANDOM % 800))
	init=$((RANDOM % 300))
	dir=$work/j$i
	cat >"$dir.yaml" <<YAML
name: fault-$i
timeouts:
  agents: 10s
  spawn: 10s
  shutdown: 1s
actors:
  - name: slow
    type: Slow
    module: $slow
    count: 2
    args: "$init"
driver: [$driver, -t, "$TIMEOUT_MS", -r, "3000", slow-0, slow-1]
YAML
	"$launch" --local --log-dir "$dir" "$dir.yaml" >"$dir.out" 2>&1 &
	pid=$!
	sleep "$(printf '0.%03d' $delay)"
	victim=$(target "$kind" "$dir" $pid)
	[ -n "$victim" ] && kill -"$sig" "$victim" 2>/dev/null
	t0=$(date +%s%N)
	rc=hung
	for _ in $(seq 500); do
		kill -0 $pid 2>/dev/null || break
		sleep 0.02
	done
	if kill -0 $pid 2>/dev/null; then
		kill -KILL $pid
		{ wait $pid; } 2>/dev/null
	else
		{ wait $pid; } 2>/dev/null # no "Killed" notice from bash
		rc=$?
	fi
	end_ms=$((($(date +%s%N) - t0) / 1000000))
	# What stops after the launcher (its janitor, after a SIGKILL of it) has
	# the shutdown timeout to do so.
	for _ in $(seq 100); do
		left=$(job_procs "$dir" | tr '\n' ' ')
		files=$(find "$dir" -mindepth 1 ! -name '*.log' -printf '%f ' 2>/dev/null)
		[ -z "$left$files" ] && break
		sleep 0.02
	done
	calls=$(check_calls "$dir.out")
	threads=$(sed -n 's/^threads //p' <<<"$calls")
	read -r n_failed ms_failed < <(sed -n 's/^failed //p' <<<"$calls")
	all_failed=$((all_failed + n_failed))
	[ "${ms_failed%.*}" -gt "${slowest%.*}" ] && slowest=$ms_failed
	wrong=$(grep -v '^threads \|^failed ' <<<"$calls")
	# The driver reports unless the signal killed it, or the job was stopped
	# before it started (said "driver: started", its signal handlers set),
	# or its launcher died (and its output with it);
	# a driver that could not reach the hub (killed as it started) reports
	# that one failure, which check_calls holds to a specific error.
	case "$kind $sig" in
	"driver KILL" | "driver SEGV" | "driver ABRT" | "launcher "*) want_threads="0 4" ;;
	*) if grep -q "^driver: started" "$dir.out"; then want_threads=4; else want_threads="0 4"; fi ;;
	esac
	grep -q "^thread main: ok=0 end=error" "$dir.out" && want_threads=1
	what="job $i: $kind${victim:+ (pid $victim)} SIG$sig at ${delay} ms (init ${init} ms): spoke-launch $rc after ${end_ms} ms, $threads driver threads reported"
	checks=$((checks + 1))
	if [ -z "$victim" ]; then
		why="no $kind to kill"
	elif [ "$rc" = hung ]; then
		why="spoke-launch still ran 10 s after the kill"
	elif [ "$kind" = launcher ] && [[ $sig =~ ^(TERM|INT|KILL)$ ]] &&
		[ "$rc" -ne $((128 + $(kill -l "$sig"))) ]; then
		why="spoke-launch exited $rc, want 128+SIG$sig"
	elif [ -n "$wrong" ]; then
		why=$wrong
	elif ! grep -qw -- "$threads" <<<"$want_threads"; then
		why="the driver reported $threads threads, want $want_threads"
	elif [ -n "$left" ]; then
		why="processes left: $(ps -o pid=,args= -p "${left// /,}" 2>/dev/null | tr '\n' ';')"
	elif [ -n "$files" ]; then
		why="more than logs left in the log directory: $files"
	else
		echo "ok - $what"
		continue
	fi
	failures=$((failures + 1))
	echo "not ok - $what: $why"
	sed 's/^/#   /' "$dir.out"
done
echo "# $all_failed calls failed (each thread stops at its first), the slowest after $slowest ms"
echo "# seed $seed, $SECONDS s"
echo "Checks: $checks, Failures: $failures, Errors: 0"
[ $failures -eq 0 ]
