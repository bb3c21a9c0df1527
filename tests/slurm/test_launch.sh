#!/bin/bash
# test_launch.sh - spoke-launch end to end on a real Slurm: starts a fresh
# mini-cluster (contrib/slurm/minicluster.sh: three nodes n1-n3 on this
# host, eight fake GPUs each) with the build tree's SPANK plugin and the
# source tree's cli_filter.lua, and runs Spoke jobs through sbatch and
# salloc: a 3x2 gang with actors on every node whose driver calls them all
# and whose exit status becomes the job's; an agent killed mid-job; a driver
# that crashes; two jobs at once; a bad job file; scancel;
# spoke-launch --salloc; and the shipped examples/sbatch scripts.  After
# each job nothing of it may be left on any node: no process whose
# environment names the job's log directory (SPOKE_LOG_DIR; every node is
# on this host, so /proc shows them all).
#
#   SPOKE_BUILDDIR=. SPOKE_SRCDIR=. tests/slurm/test_launch.sh
#
# Prints `ok - NAME` or `not ok - NAME: reason` per case, `# ` lines with
# figures (time from spoke-launch's start to the driver's first call), then
# one line `Checks: N, Failures: F, Errors: 0`.  Exits 0 when all passed, 1 on
# a failure (the temporary directory, with the cluster's and the jobs' logs,
# is then kept and named), 77 (automake's SKIP) when this machine cannot
# run the cluster or spoke-launch or the plugin was not built.
# SPOKE_TEST_KEEP=1 keeps the directory always.

# Commands in single quotes are meant to expand in the job, not here.
# shellcheck disable=SC2016
set -u

# shellcheck source=tests/slurm/lib.sh
. "$(dirname "$0")/lib.sh"
slurm_test_setup spoke-launch-test scancel timeout
LAUNCH=$BUILDDIR/spoke-launch
HELLO=$BUILDDIR/examples/.libs/hello.so
TASK=$BUILDDIR/examples/.libs/complex_task.so
DRIVER=$BUILDDIR/examples/driver
FIRST_CALL=$BUILDDIR/tests/bench/first-call # optional: the timing figure
[ -x "$LAUNCH" ] || skip "spoke-launch was not built ($LAUNCH missing; configure found no libyaml?)"
for f in "$BUILDDIR/spoke-hub" "$BUILDDIR/spoke-agent" "$BUILDDIR/spoke-worker" "$DRIVER"; do
	[ -x "$f" ] || skip "$f was not built"
done
for f in "$HELLO" "$TASK"; do
	[ -f "$f" ] || skip "$f was not built"
done

# A `make check` run inside a Spoke job must not talk to that job's hub
# (slurm_test_setup saw to Slurm's variables: --salloc finds no allocation).
unset SPOKE_HUB SPOKE_TOKEN SPOKE_TOKEN_FILE SPOKE_JOB SPOKE_LOG_DIR SPOKE_NODE SPOKE_GPUS \
	SPOKE_LAUNCH_T0_US SPOKE_BINDIR SPOKE_WORKER

TO=30 # seconds any one job or client command may take

# job_procs DIR: the pids of processes whose environment has
# SPOKE_LOG_DIR=DIR (DIR*, a prefix, with a trailing *): a job's hub,
# agents, actors, driver and whatever they started.
job_procs() {
	local pat=$1
	case $pat in
	*\*)
		pat=${pat%\*}
		grep -lzE "^SPOKE_LOG_DIR=${pat//./\\.}" /proc/[0-9]*/environ 2>/dev/null
		;;
	*) grep -lzxF "SPOKE_LOG_DIR=$pat" /proc/[0-9]*/environ 2>/dev/null ;;
	esac | cut -d/ -f3
}

# kill_leftovers: whatever of this test's jobs still runs (cleanup only).
# shellcheck disable=SC2317 # run by the trap
kill_leftovers() {
	local p
	for p in $(job_procs "$T/*"); do
		[ "$p" != $$ ] && kill -KILL "$p" 2>/dev/null
	done
}

# shellcheck disable=SC2317 # run by the trap
cleanup() {
	trap - EXIT INT TERM
	stop_cluster || echo "# stopping the cluster failed; see $T/stop.log"
	kill_leftovers
	if [ "$nfail" -gt 0 ] || [ "${SPOKE_TEST_KEEP:-}" = 1 ]; then
		echo "# kept $T (cluster logs in $CL/log, jobs' output in $T/*.out, their logs in $T/spoke-logs)"
	else
		rm -rf "$T"
	fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# finish: stops the cluster, then prints the summary line that CI sums;
# the exit status follows the failures.
finish() {
	local left
	check_cluster_stopped
	left=$(job_procs "$T/*" | tr '\n' ' ')
	if [ -z "$left" ]; then
		ok "no process of any job of this test is left"
	else
		left=${left% }
		ps -o pid,ppid,args -p "${left// /,}" >"$T/left.ps" 2>&1
		not_ok "no process of any job of this test is left" "left: $left" "$T/left.ps"
	fi
	echo "# $((SECONDS - t_start)) s"
	echo "Checks: $nchecks, Failures: $nfail, Errors: 0"
	[ "$nfail" -eq 0 ]
	exit
}

# ---- the cluster ------------------------------------------------------------
start_cluster

# ---- helpers ------------------------------------------------------------------
# jobfile NAME DRIVER: $T/NAME.yaml, a 3x2 gang with two Hello actors on
# each node (hello-0..5) and the TaskActor module, and DRIVER.
jobfile() {
	cat >"$T/$1.yaml" <<EOF
name: $1
gang: 3x2
timeouts:
  agents: 20s
  spawn: 20s
  shutdown: 2s
actors:
  - name: hello
    type: Hello
    module: $HELLO
    per_node: 2
modules: [$TASK]
driver: $2
EOF
}

# script NAME BODY: an executable shell script $T/NAME.
script() {
	printf '#!/bin/sh\n%s\n' "$2" >"$T/$1"
	chmod +x "$T/$1"
}

# wait_job JOBID: until the job has ended (at most TO seconds); prints its
# end state and exit code, e.g. "COMPLETED 0:0".
wait_job() {
	local info state end=$((SECONDS + TO))
	while :; do
		info=$(scontrol -o show job "$1" 2>/dev/null)
		state=$(grep -o 'JobState=[A-Z_]*' <<<"$info")
		state=${state#JobState=}
		case $state in
		PENDING | CONFIGURING | RUNNING | COMPLETING | SUSPENDED | '') ;;
		*)
			echo "$state $(grep -o ' ExitCode=[0-9:]*' <<<"$info" | cut -d= -f2)"
			return
			;;
		esac
		if [ "$SECONDS" -ge "$end" ]; then
			scancel "$1" 2>/dev/null
			echo "TIMEOUT(${state:-unknown}) -"
			return
		fi
		sleep 0.2
	done
}

# submit NAME ARGS...: sbatch ARGS with the job's output in $T/NAME.out and
# its working directory $T (the launcher's logs: $T/spoke-logs/...); sets
# JOB (empty when sbatch failed; its stderr is in $T/NAME.sberr).
JOB='' JOB_END=''
submit() {
	local name=$1 out
	shift
	rm -f "$T/$name.out"
	out=$(timeout "$TO" sbatch --parsable --job-name="$name" --output="$T/$name.out" \
		--chdir="$T" "$@" 2>"$T/$name.sberr")
	JOB=${out%%;*}
	[ -n "$JOB" ]
}

# run_job NAME ARGS...: submit, then wait for the end: sets JOB and
# JOB_END ("COMPLETED 0:0" when all went well, "sbatch failed" if it did).
run_job() {
	if submit "$@"; then
		JOB_END=$(wait_job "$JOB")
	else
		JOB_END="sbatch failed"
	fi
}

# logdir_of OUTPUT: the job's log directory, as spoke-launch said.
logdir_of() {
	sed -n 's/^spoke-launch: job .*, logs in //p' "$1" | head -n 1
}

# gone DIR SECONDS: waits until no process of the job with log directory
# DIR is left (at most SECONDS); fails otherwise, with `ps` of the rest in
# $T/left.ps.  Sets GONE_MS: how long it waited.
GONE_MS=0
gone() {
	local dir=$1 t0 end left
	t0=$(date +%s%N)
	end=$((SECONDS + $2))
	while :; do
		left=$(job_procs "$dir" | tr '\n' ' ')
		GONE_MS=$((($(date +%s%N) - t0) / 1000000))
		[ -n "$left" ] || return 0
		if [ "$SECONDS" -ge "$end" ]; then
			left=${left% }
		ps -o pid,ppid,args -p "${left// /,}" >"$T/left.ps" 2>&1
			return 1
		fi
		sleep 0.1
	done
}

# wait_file FILE: until it exists (at most TO seconds).
wait_file() {
	local end=$((SECONDS + TO))
	while [ ! -e "$1" ]; do
		[ "$SECONDS" -lt "$end" ] || return 1
		sleep 0.05
	done
}

# nodes_greeted OUTPUT: the nodes named in the Hello actors' greetings.
nodes_greeted() {
	sed -n 's/^hello-[0-9]*: .* on \(n[0-9]*\), GPUs.*/\1/p' "$1" | sort -u | tr '\n' ' '
}

# check_ran NAME OUTPUT WANT_END WANT_STOP: the job ended WANT_END (e.g.
# "COMPLETED 0:0"); the driver's six calls reached actors on n1, n2 and
# n3; the launcher's last line is "stopped: WANT_STOP"; nothing is left.
check_ran() {
	local name=$1 out=$2 dir
	dir=$(logdir_of "$out")
	if [ "$JOB_END" != "$3" ]; then
		not_ok "$name" "job $JOB ended $JOB_END, want $3" "$out" "${out%.out}.sberr"
	elif [ "$(nodes_greeted "$out")" != "n1 n2 n3 " ]; then
		not_ok "$name" "actors answered from nodes '$(nodes_greeted "$out")', want n1 n2 n3" "$out"
	elif ! grep -qx 'driver: 6 Hello actors answered' "$out" ||
		! grep -qx 'driver: all calls succeeded' "$out"; then
		not_ok "$name" "the driver's calls did not all succeed" "$out"
	elif [ "$(grep '^spoke-launch: stopped: ' "$out" | tail -n 1)" != "spoke-launch: stopped: $4" ]; then
		not_ok "$name" "no last line 'stopped: $4'" "$out"
	elif [ -z "$dir" ] || ! gone "$dir" 10; then
		not_ok "$name" "processes of the job left 10 s after it ended (log dir '$dir')" "$T/left.ps" "$out"
	else
		ok "$name"
	fi
}

# A driver that calls every actor (examples/driver), then exits with $1.
script drive0.sh "\"$DRIVER\" || exit 1; exit 0"
script drive3.sh "\"$DRIVER\" || exit 1; exit 3"
# A driver that says it runs, then sleeps in a child process (killing the
# shell alone would leave the sleep behind).
script sleeper.sh 'touch "$SPOKE_LOG_DIR/driver.started"; sleep 60; exit 0'
# A driver that calls the actors, starts a child, then crashes.
script crash.sh "\"$DRIVER\" >/dev/null || exit 1; sleep 60 & kill -9 \$\$"

jobfile ok0 "$T/drive0.sh"
jobfile ok3 "$T/drive3.sh"
jobfile sleepy "$T/sleeper.sh"
jobfile crash "$T/crash.sh"

# ---- 1. a 3-node job from sbatch; the driver's exit status is the job's -------
cat >"$T/ok0.sbatch" <<EOF
#!/bin/bash
#SBATCH --spoke-gang=3x2
exec "$LAUNCH" "$T/ok0.yaml"
EOF
run_job ok0 "$T/ok0.sbatch"
check_ran "#SBATCH --spoke-gang=3x2, exec spoke-launch: actors on n1 n2 n3 answer the driver, job COMPLETED 0:0" \
	"$T/ok0.out" "COMPLETED 0:0" "the driver exited with status 0"
# A driver that ends normally ends the agents normally: no srun errors.
if grep -q '^srun: error' "$T/ok0.out"; then
	not_ok "a job that ends normally has no srun errors in its output" "see below" "$T/ok0.out"
else
	ok "a job that ends normally has no srun errors in its output"
fi
sed -n 's/^spoke-launch: running .* (\([0-9]*\) ms after start)$/# sbatch 3x2: spoke-launch start to driver running: \1 ms/p' "$T/ok0.out"

printf '#!/bin/bash\nexec "%s" "%s"\n' "$LAUNCH" "$T/ok3.yaml" >"$T/ok3.sbatch"
run_job ok3 --spoke-gang=3x2 "$T/ok3.sbatch"
check_ran "sbatch --spoke-gang=3x2 script: a driver exiting 3 makes the job's ExitCode=3:0" \
	"$T/ok3.out" "FAILED 3:0" "the driver exited with status 3"

# The figure: from spoke-launch's start to the driver's first completed
# call (tests/bench/first-call compares against SPOKE_LAUNCH_T0_US).
if [ -x "$FIRST_CALL" ]; then
	jobfile first "$FIRST_CALL"
	printf '#!/bin/bash\nexec "%s" "%s"\n' "$LAUNCH" "$T/first.yaml" >"$T/first.sbatch"
	run_job first --spoke-gang=3x2 "$T/first.sbatch"
	if [ "$JOB_END" = "COMPLETED 0:0" ] && grep -q '^first call completed' "$T/first.out"; then
		sed -n -e 's/^spoke-launch: running .* (\([0-9]*\) ms after start)$/# sbatch 3x2: spoke-launch start to driver running: \1 ms/p' \
			-e 's/^first call completed \([0-9.]*\) ms.*/# sbatch 3x2: spoke-launch start to the first call completed: \1 ms/p' "$T/first.out"
	else
		echo "# the timing job $JOB ended $JOB_END; no figure"
	fi
fi

# ---- 2. an agent killed mid-job ---------------------------------------------------
# agent_dies NAME SIGNAL NODE WANT: a job whose driver sleeps; once it runs,
# SIGNAL to its agent on NODE.  The job must end FAILED 1:0 with a last line
# "stopped: ..." that names "the agent on NODE" and contains WANT, and
# nothing of it may be left.
agent_dies() {
	local name=$1 sig=$2 node=$3 want=$4 dir='' victim='' p stop
	JOB=''
	if submit "dies$sig" --spoke-gang=3x2 --wrap "exec '$LAUNCH' '$T/sleepy.yaml'"; then
		dir=$T/spoke-logs/sleepy-$JOB
		wait_file "$dir/driver.started"
	fi
	for p in $(job_procs "$dir"); do
		[ "$(cat "/proc/$p/comm" 2>/dev/null)" = spoke-agent ] || continue
		if tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "SLURMD_NODENAME=$node"; then
			victim=$p
		fi
	done
	if [ -z "$JOB" ]; then
		not_ok "$name" "sbatch failed" "$T/dies$sig.sberr"
		return
	elif [ -z "$victim" ]; then
		not_ok "$name" "no agent of job $JOB on $node found" "$T/dies$sig.out"
		scancel "$JOB"
		return
	fi
	kill "-$sig" "$victim"
	JOB_END=$(wait_job "$JOB")
	stop=$(grep '^spoke-launch: stopped: ' "$T/dies$sig.out" | tail -n 1)
	if [ "$JOB_END" != "FAILED 1:0" ]; then
		not_ok "$name" "job $JOB ended $JOB_END, want FAILED 1:0" "$T/dies$sig.out"
	elif [ -z "$stop" ]; then
		not_ok "$name" "no line 'spoke-launch: stopped: ...'" "$T/dies$sig.out"
	elif ! grep -qF "the agent on $node " <<<"$stop" || ! grep -qF "$want" <<<"$stop"; then
		not_ok "$name" "'$stop' does not name the agent on $node, '$want'" "$T/dies$sig.out"
	elif ! gone "$dir" 10; then
		not_ok "$name" "processes of the job left 10 s after it ended" "$T/left.ps" "$T/dies$sig.out"
	else
		ok "$name (${stop#spoke-launch: })"
	fi
}
agent_dies "an agent killed (-9) mid-job ends the job with exit 1, naming its node; nothing is left" \
	KILL n2 "died (signal 9)"
agent_dies "an agent stopped (SIGTERM, exit 0) mid-job ends the job too, naming its node" \
	TERM n3 "left the hub"

# ---- 3. a driver that crashes ---------------------------------------------------
run_job crash --spoke-gang=3x2 --wrap "exec '$LAUNCH' '$T/crash.yaml'"
dir=$(logdir_of "$T/crash.out")
name="a driver that crashes (kill -9, a child of its own running) ends the job with 137, nothing left"
if [ "$JOB_END" != "FAILED 137:0" ]; then
	not_ok "$name" "job $JOB ended $JOB_END, want FAILED 137:0" "$T/crash.out"
elif ! grep -q '^spoke-launch: stopped: the driver was killed by signal 9' "$T/crash.out"; then
	not_ok "$name" "no line 'stopped: the driver was killed by signal 9'" "$T/crash.out"
elif [ -z "$dir" ] || ! gone "$dir" 10; then
	not_ok "$name" "processes of the job left 10 s after it ended" "$T/left.ps" "$T/crash.out"
else
	ok "$name"
fi

# ---- 4. two jobs at once ------------------------------------------------------------
# Each driver keeps the token it was given (the job's is removed when the
# job ends), waits until both jobs' drivers run, then calls its actors.
script pair.sh "cp \"\$SPOKE_TOKEN_FILE\" \"\$SPOKE_LOG_DIR.token\" || exit 8
touch \"$T/pair.\$SLURM_JOB_ID\"
i=0
while [ \"\$(ls \"$T\" | grep -c '^pair\\.')\" -lt 2 ]; do
	i=\$((i + 1)); [ \$i -lt 300 ] || { echo 'pair.sh: the other job never ran' >&2; exit 9; }
	sleep 0.1
done
exec \"$DRIVER\""
jobfile pair "$T/pair.sh"
name="two jobs at once: their own hubs and tokens, both succeed"
submit pairA --spoke-gang=3x2 --wrap "exec '$LAUNCH' '$T/pair.yaml'"
ja=$JOB
submit pairB --spoke-gang=3x2 --wrap "exec '$LAUNCH' '$T/pair.yaml'"
jb=$JOB
ea=$([ -n "$ja" ] && wait_job "$ja")
eb=$([ -n "$jb" ] && wait_job "$jb")
da=$(logdir_of "$T/pairA.out")
db=$(logdir_of "$T/pairB.out")
ha=$(sed -n 's/^spoke-launch: hub at \([^ ]*\) .*/\1/p' "$T/pairA.out")
hb=$(sed -n 's/^spoke-launch: hub at \([^ ]*\) .*/\1/p' "$T/pairB.out")
if [ -z "$ja" ] || [ -z "$jb" ]; then
	not_ok "$name" "sbatch failed" "$T/pairA.sberr" "$T/pairB.sberr"
elif [ "$ea" != "COMPLETED 0:0" ] || [ "$eb" != "COMPLETED 0:0" ]; then
	not_ok "$name" "jobs $ja and $jb ended '$ea' and '$eb'" "$T/pairA.out" "$T/pairB.out"
elif [ -z "$ha" ] || [ "$ha" = "$hb" ]; then
	not_ok "$name" "hub addresses '$ha' and '$hb'" "$T/pairA.out" "$T/pairB.out"
elif [ -z "$da" ] || [ "$da" = "$db" ] || ! [ -s "$da.token" ] || cmp -s "$da.token" "$db.token"; then
	not_ok "$name" "log directories '$da' and '$db': not each with its own token"
elif ! grep -qx 'driver: 6 Hello actors answered' "$T/pairA.out" ||
	! grep -qx 'driver: 6 Hello actors answered' "$T/pairB.out" ||
	[ "$(nodes_greeted "$T/pairA.out")" != "n1 n2 n3 " ] ||
	[ "$(nodes_greeted "$T/pairB.out")" != "n1 n2 n3 " ]; then
	not_ok "$name" "a driver did not reach its six actors on n1-n3" "$T/pairA.out" "$T/pairB.out"
elif ! gone "$da" 10 || ! gone "$db" 10; then
	not_ok "$name" "processes of the jobs left 10 s after they ended" "$T/left.ps"
else
	ok "$name ($ha, $hb)"
fi

# ---- 5. bad job files --------------------------------------------------------------
printf 'name: bad\ngang: 3x2\nactors: [\n  - name: h\n' >"$T/syntax.yaml"
printf 'name: bad\ngang: 3x2\nactors:\n  - name: h\n    type: Hello\n    modul: x.so\n' >"$T/typo.yaml"
for f in "syntax:4:3: did not find expected node content" "typo:6:5: unknown key 'modul'"; do
	base=${f%%:*}
	run_job "$base" --spoke-gang=3x2 --wrap "exec '$LAUNCH' '$T/$base.yaml'"
	name="a bad job file ($base) is reported with line and column; the job ends with exit 2"
	want="spoke-launch: $T/$base.yaml:${f#*:}"
	if [ "$JOB_END" != "FAILED 2:0" ]; then
		not_ok "$name" "job $JOB ended $JOB_END, want FAILED 2:0" "$T/$base.out"
	elif ! grep -qF -- "$want" "$T/$base.out"; then
		not_ok "$name" "no line '$want'" "$T/$base.out"
	elif [ -d "$T/spoke-logs/bad-$JOB" ]; then
		not_ok "$name" "it made a log directory; it should start nothing" "$T/$base.out"
	else
		ok "$name"
	fi
done

# ---- 6. scancel -----------------------------------------------------------------------
name="scancel of a running job tears everything down within seconds"
dir=''
if submit cancel --spoke-gang=3x2 --wrap "exec '$LAUNCH' '$T/sleepy.yaml'"; then
	dir=$T/spoke-logs/sleepy-$JOB
	wait_file "$dir/driver.started"
fi
if [ -z "$JOB" ]; then
	not_ok "$name" "sbatch failed" "$T/cancel.sberr"
elif [ ! -e "$dir/driver.started" ]; then
	not_ok "$name" "the driver of job $JOB never ran" "$T/cancel.out"
	scancel "$JOB"
elif [ "$(job_procs "$dir" | wc -l)" -lt 10 ]; then
	# hub, srun, 3 agents, 6 actors, the driver
	not_ok "$name" "only $(job_procs "$dir" | wc -l) processes of job $JOB run before scancel" "$T/cancel.out"
	scancel "$JOB"
else
	scancel "$JOB"
	if ! gone "$dir" 10; then
		not_ok "$name" "processes left 10 s after scancel" "$T/left.ps" "$T/cancel.out"
	else
		ms=$GONE_MS
		JOB_END=$(wait_job "$JOB")
		if [ "${JOB_END%% *}" != CANCELLED ]; then
			not_ok "$name" "job $JOB ended $JOB_END, want CANCELLED" "$T/cancel.out"
		else
			ok "$name (all gone $ms ms after scancel)"
		fi
	fi
fi

# ---- 6b. scancel while the actors' inits run (a model that loads for a minute) --------
name="scancel while actors initialise tears everything down within seconds, only logs left"
SLOW=$BUILDDIR/tests/harness/.libs/testactor.so
cat >"$T/slowinit.yaml" <<EOF
name: slowinit
gang: 3x2
timeouts:
  spawn: 2m
  shutdown: 2s
actors:
  - name: slow
    type: Slow
    module: $SLOW
    per_node: 2
    args: "60000"
driver: $T/sleeper.sh
EOF
dir=''
if [ ! -f "$SLOW" ]; then
	not_ok "$name" "$SLOW was not built (make check builds it)"
elif submit slowinit --spoke-gang=3x2 --wrap "exec '$LAUNCH' '$T/slowinit.yaml'"; then
	dir=$T/spoke-logs/slowinit-$JOB
	end=$((SECONDS + TO))
	while ! job_procs "$dir" | xargs -r -I{} cat /proc/{}/cmdline 2>/dev/null | tr '\0' '\n' |
		grep -q 'spoke-worker$' && [ "$SECONDS" -lt "$end" ]; do
		sleep 0.1
	done
	scancel "$JOB"
	if ! gone "$dir" 10; then
		not_ok "$name" "processes left 10 s after scancel" "$T/left.ps" "$T/slowinit.out"
	elif [ "$GONE_MS" -gt 5000 ]; then
		not_ok "$name" "the job took $GONE_MS ms to go" "$T/slowinit.out"
	elif [ -n "$(find "$dir" -mindepth 1 ! -name '*.log' ! -name '*.exit' -printf '%f ')" ]; then
		not_ok "$name" "more than logs in $dir: $(find "$dir" -mindepth 1 ! -name '*.log' ! -name '*.exit' -printf '%f ')" "$T/slowinit.out"
	elif [ -e "$dir/driver.started" ]; then
		not_ok "$name" "the driver ran: the inits did not take long" "$T/slowinit.out"
	else
		ok "$name (all gone $GONE_MS ms after scancel)"
	fi
else
	not_ok "$name" "sbatch failed" "$T/slowinit.sberr"
fi

# ---- 7. spoke-launch --salloc ---------------------------------------------------------------
name="spoke-launch --salloc (no allocation yet) runs the job through salloc; the driver's 3 comes back"
(cd "$T" && timeout "$TO" "$LAUNCH" --salloc "$T/ok3.yaml" </dev/null >"$T/salloc.out" 2>&1)
rc=$?
JOB=$(sed -n 's/^salloc: Granted job allocation \([0-9]*\)$/\1/p' "$T/salloc.out")
JOB_END=$([ -n "$JOB" ] && wait_job "$JOB")
if [ -z "$JOB" ] || [ "$rc" -ne 3 ]; then
	not_ok "$name" "exit status $rc, allocation '$JOB'" "$T/salloc.out"
elif ! grep -q '^spoke-launch: asking Slurm for spoke-gang=3x2' "$T/salloc.out" ||
	! grep -q "^spoke-launch: job ok3: in Slurm allocation, logs in $T/spoke-logs/ok3-$JOB\$" "$T/salloc.out"; then
	not_ok "$name" "it did not say that it asks Slurm, or did not run in allocation $JOB" "$T/salloc.out"
else
	check_ran "$name" "$T/salloc.out" "FAILED 3:0" "the driver exited with status 3"
fi

# ---- 8. the shipped examples/sbatch scripts, as a user runs them -----------------------
# From a tree laid out like the source tree (examples/*.yaml, with the
# build's modules and drivers beside them), spoke-launch in PATH:
#     sbatch examples/sbatch/NAME.sbatch
EX=$T/ex
mkdir -p "$EX/examples"
cp "$SRCDIR"/examples/*.yaml "$EX/examples/"
for f in .libs driver gang; do
	ln -s "$BUILDDIR/examples/$f" "$EX/examples/$f"
done
for sb in "$SRCDIR"/examples/sbatch/*.sbatch; do
	base=$(basename "$sb" .sbatch)
	gang=$(sed -n 's/^#SBATCH --spoke-gang=\([0-9]*\)x\([0-9]*\).*/\1 \2/p' "$sb")
	want_nodes=${gang% *}
	want_hellos=$((want_nodes * ${gang#* }))
	name="sbatch examples/sbatch/$base.sbatch: $want_hellos Hello actors on $want_nodes nodes and task-0 answer, job COMPLETED 0:0, only logs left"
	cd "$EX" || exit 1
	PATH=$BUILDDIR:$PATH run_job "ex-$base" "$sb"
	cd "$T" || exit 1
	out=$T/ex-$base.out
	dir=$(logdir_of "$out")
	greeted=$(nodes_greeted "$out" | wc -w)
	if [ "$JOB_END" != "COMPLETED 0:0" ]; then
		not_ok "$name" "job $JOB ended $JOB_END" "$out" "$T/ex-$base.sberr"
	elif ! grep -qx "driver: $want_hellos Hello actors answered" "$out" ||
		! grep -q '^task-0 result: id=666 name=ZeroCopyCheck values=2 sum=3.0$' "$out" ||
		! grep -qx 'driver: all calls succeeded' "$out"; then
		not_ok "$name" "the driver's calls did not all succeed" "$out"
	elif [ "$greeted" -ne "$want_nodes" ]; then
		not_ok "$name" "actors answered from $greeted nodes ($(nodes_greeted "$out")), want $want_nodes" "$out"
	elif [ -z "$dir" ] || ! gone "$dir" 10; then
		not_ok "$name" "processes of the job left 10 s after it ended (log dir '$dir')" "$T/left.ps" "$out"
	elif [ -n "$(find "$dir" -mindepth 1 ! -name '*.log' ! -name '*.exit' -printf '%f ')" ]; then
		not_ok "$name" "more than logs left in $dir: $(find "$dir" -mindepth 1 ! -name '*.log' ! -name '*.exit' -printf '%f ')" "$out"
	else
		ok "$name"
	fi
done

finish
