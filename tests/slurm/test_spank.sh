#!/bin/bash
# test_spank.sh - the SPANK plugin (spoke_spank.so) and cli_filter.lua on a
# real Slurm: starts a fresh mini-cluster (contrib/slurm/minicluster.sh, three
# nodes with eight fake GPUs each) with the build tree's plugin and the
# source tree's cli_filter.lua, and checks --spoke-gang through the real
# sbatch, salloc and srun: the allocations and each task's GPUs and SPOKE_*
# variables, the batch job's inner steps, every refusal and its message,
# and the plugstack arguments.
#
#   SPOKE_BUILDDIR=. SPOKE_SRCDIR=. tests/slurm/test_spank.sh
#
# Prints `ok - NAME` or `not ok - NAME: reason` per case, then one line
# `Checks: N, Failures: F, Errors: 0`.  Exits 0 when all passed, 1 on a
# failure (the temporary directory, with the cluster's logs, is then kept
# and named), 77 (automake's SKIP) when this machine cannot run the cluster
# or the plugin was not built.  SPOKE_TEST_KEEP=1 keeps the directory always.

# Commands in single quotes are meant to expand in the job, not here.
# shellcheck disable=SC2016
set -u

# shellcheck source=tests/slurm/lib.sh
. "$(dirname "$0")/lib.sh"
slurm_test_setup spoke-spank-test nm

# shellcheck disable=SC2317 # run by the trap
cleanup() {
	trap - EXIT INT TERM
	stop_cluster || echo "# stopping the cluster failed; see $T/stop.log"
	if [ "$nfail" -gt 0 ] || [ "${SPOKE_TEST_KEEP:-}" = 1 ]; then
		echo "# kept $T (cluster logs in $CL/log)"
	else
		rm -rf "$T"
	fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# finish: stops the cluster, then prints the summary line that CI sums;
# the exit status follows the failures.
finish() {
	check_cluster_stopped
	echo "# $((SECONDS - t_start)) s"
	if [ "$nfail" -gt 0 ] && [ -d "$CL/log" ]; then
		echo "# logs: $CL/log; their last errors:"
		cat "$CL/log"/slurm*.log 2>/dev/null | grep -E 'error|spoke' | grep -v -E 'pmix|MPI' |
			sort -s -k1,1 | tail -n 15 | sed 's/^/#   /'
	fi
	echo "Checks: $nchecks, Failures: $nfail, Errors: 0"
	[ "$nfail" -eq 0 ]
	exit
}

# ---- the cluster ------------------------------------------------------------
start_cluster

# What every task prints: the fields layout_error reads.
cat >"$T/report.sh" <<'EOF'
#!/bin/sh
echo "$SLURMD_NODENAME $SLURM_LOCALID ${CUDA_VISIBLE_DEVICES:--} ${SPOKE_GPUS:--} ${SPOKE_GANG:--}" \
	"${SPOKE_NODE_RANK:--} ${SPOKE_LOCAL_RANK:--} ${SPOKE_RANK:--} $SLURM_JOB_NUM_NODES $SLURM_JOB_ID"
EOF
chmod +x "$T/report.sh"
REPORT=$T/report.sh
TO=30 # seconds any one client command may take

# layout_error FILE N G K [agent]: why the task lines in FILE are not those
# of a gang NxG:k step (N nodes, G/k tasks per node each with its own k GPUs,
# disjoint on a node; with `agent`, one task per node with all G), with the
# right SPOKE_* variables; prints nothing when they are.
layout_error() {
	local gang="$2x$3"
	[ "$4" = 1 ] || gang="$gang:$4"
	awk -v N="$2" -v G="$3" -v K="$4" -v agent="${5:-}" -v gang="$gang" '
	function bad(m) { if (!why) why = m (ended ? "" : " (line: " $0 ")") }
	BEGIN { T = agent ? 1 : G / K; P = agent ? G : K }
	{
		lines++
		if (NF != 10) { bad("malformed"); next }
		host = $1; lid = $2; cvd = $3; sg = $4; nr = $6; lr = $7; rk = $8
		if (cvd != sg) bad("CUDA_VISIBLE_DEVICES=" cvd " but SPOKE_GPUS=" sg)
		if ($5 != gang) bad("SPOKE_GANG=" $5 ", want " gang)
		if (lr != lid) bad("SPOKE_LOCAL_RANK=" lr " but SLURM_LOCALID=" lid)
		if ($9 != N) bad("SLURM_JOB_NUM_NODES=" $9 ", want " N)
		if (nr !~ /^[0-9]+$/ || nr >= N) bad("SPOKE_NODE_RANK=" nr ", want 0.." N - 1)
		if (lr !~ /^[0-9]+$/ || lr >= T) bad("SPOKE_LOCAL_RANK=" lr ", want 0.." T - 1)
		if (rk != nr * T + lr) bad("SPOKE_RANK=" rk ", want " nr * T + lr)
		if ((nr in host_of) && host_of[nr] != host) bad("node rank " nr " on two nodes")
		if ((host in rank_of) && rank_of[host] != nr) bad(host " has two node ranks")
		host_of[nr] = host; rank_of[host] = nr
		if (seen_task[nr, lr]++) bad("task " nr "/" lr " twice")
		n = split(cvd, gpu, ",")
		if (n != P) bad(n " GPUs (" cvd "), want " P)
		for (i = 1; i <= n; i++) {
			if (gpu[i] !~ /^[0-9]+$/) bad("GPU " gpu[i] " is no index")
			if (seen_gpu[host, gpu[i]]++) bad("GPU " gpu[i] " of " host " given to two tasks")
			per_node[host]++
		}
	}
	END {
		ended = 1
		if (lines != N * T) bad("got " lines " tasks, want " N * T)
		for (h in per_node) {
			nodes++
			if (per_node[h] != G) bad(h " has " per_node[h] " GPUs in use, want " G)
		}
		if (nodes != N) bad("tasks on " nodes + 0 " nodes, want " N)
		if (why) print why
	}' "$1"
}

# alloc_error JOBID N G: why job JOBID is not an allocation of N nodes with
# G GPUs each; nothing when it is.
alloc_error() {
	local info _
	# While a job completes, NumNodes counts only the nodes not done yet.
	for _ in $(seq 30); do
		info=$(scontrol -o show job "$1" 2>&1)
		case $info in *JobState=COMPLETING*) sleep 0.1 ;; *) break ;; esac
	done
	case " $info " in
	*" NumNodes=$2 "*) ;;
	*) echo "job $1: $(grep -o 'NumNodes=[^ ]*' <<<"$info"), want NumNodes=$2"; return ;;
	esac
	grep -qE "TresPerNode=(gres:)?gpu:$3( |,|$)" <<<"$info" ||
		echo "job $1: $(grep -o 'TresPerNode=[^ ]*' <<<"$info"), want gres:gpu:$3 per node"
}

# check_step NAME RC OUT ERR N G K [agent]: a step's exit status, its tasks'
# lines and its job's allocation.
check_step() {
	local name=$1 rc=$2 out=$3 err=$4 why jid
	shift 4
	if [ "$rc" -ne 0 ]; then
		not_ok "$name" "exit status $rc" "$err" "$out"
		return
	fi
	why=$(layout_error "$out" "$@")
	if [ -z "$why" ]; then
		jid=$(awk 'NR == 1 { print $10 }' "$out")
		why=$(alloc_error "$jid" "$1" "$2")
	fi
	if [ -n "$why" ]; then
		not_ok "$name" "$why" "$out" "$err"
	else
		ok "$name"
	fi
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

# submit ARGS...: sbatch ARGS (its stderr in $T/sbatch.err), then waits
# for the job; sets JOB, and JOB_END ("COMPLETED 0:0" when all went well).
# Fails when sbatch does.
JOB='' JOB_END=''
submit() {
	local out
	out=$(timeout "$TO" sbatch --parsable "$@" 2>"$T/sbatch.err")
	JOB=${out%%;*}
	[ -n "$JOB" ] || return 1
	JOB_END=$(wait_job "$JOB")
}

# ---- the plugin's exported symbols --------------------------------------------
syms=$(nm -D --defined-only "$PLUGIN" | awk '{ print $3 }' | sort | tr '\n' ' ')
want="plugin_name plugin_type plugin_version slurm_spank_init slurm_spank_init_post_opt slurm_spank_task_init spank_plugin_version "
if [ "$syms" = "$want" ]; then
	ok "the plugin exports only SPANK symbols"
else
	not_ok "the plugin exports only SPANK symbols" "exports: $syms"
fi

# ---- --help ---------------------------------------------------------------------
for c in sbatch salloc srun; do
	timeout "$TO" "$c" --help >"$T/help.out" 2>&1
	if grep -qF -- '--spoke-gang=NxG[:k]' "$T/help.out" &&
		grep -qF 'Spoke gang: N nodes with G GPUs each' "$T/help.out"; then
		ok "$c --help lists --spoke-gang with its explanation"
	else
		not_ok "$c --help lists --spoke-gang with its explanation" "not in the help" "$T/help.out"
	fi
done

# ---- allocations and each task's GPUs: srun, salloc ------------------------------
for g in 1x8 2x4 3x2:2; do
	read -r n gk <<<"${g/x/ }"
	gpn=${gk%%:*}
	k=1
	[ "$gk" = "$gpn" ] || k=${gk#*:}
	timeout "$TO" srun --spoke-gang="$g" "$REPORT" >"$T/srun.out" 2>"$T/srun.err"
	check_step "srun --spoke-gang=$g: $n node(s) x $gpn GPUs, $((gpn / k)) task(s) per node with $k own GPU(s)" \
		$? "$T/srun.out" "$T/srun.err" "$n" "$gpn" "$k"
	timeout "$TO" salloc --spoke-gang="$g" srun "$REPORT" >"$T/salloc.out" 2>"$T/salloc.err"
	check_step "salloc --spoke-gang=$g + srun: $n node(s) x $gpn GPUs, $((gpn / k)) task(s) per node" \
		$? "$T/salloc.out" "$T/salloc.err" "$n" "$gpn" "$k"
done

# ---- sbatch: an #SBATCH line, and the command line with inner steps ---------------
# batch_job SBATCH-ARGS... -- STEP-NAME FILE N G K [agent] -- ...: runs the
# batch job, then checks each of its steps: one that wrote its tasks' lines
# to FILE and its exit status to FILE.rc.  Every step is a case of its own,
# failed with the job when the job fails.
batch_job() {
	local args=() end rc
	while [ "$1" != -- ]; do
		args+=("$1")
		shift
	done
	shift
	if ! submit "${args[@]}"; then
		end="sbatch failed"
	elif [ "$JOB_END" != "COMPLETED 0:0" ]; then
		end="job $JOB ended $JOB_END"
	else
		end=
	fi
	while [ $# -gt 0 ]; do
		local step=("$1") f=$2
		shift 2
		while [ $# -gt 0 ] && [ "$1" != -- ]; do
			step+=("$1")
			shift
		done
		[ $# -eq 0 ] || shift
		if [ -n "$end" ]; then
			not_ok "${step[0]}" "$end" "$T/sbatch.err" "$T/batch.out"
		else
			rc=$(cat "$f.rc" 2>/dev/null)
			check_step "${step[0]}" "${rc:-255}" "$f" "$T/batch.out" "${step[@]:1}"
		fi
	done
}

cat >"$T/job18.sh" <<EOF
#!/bin/bash
#SBATCH --spoke-gang=1x8
#SBATCH --output=$T/batch.out
srun $REPORT >$T/b18.tasks; echo \$? >$T/b18.tasks.rc
EOF
batch_job "$T/job18.sh" -- \
	"sbatch with #SBATCH --spoke-gang=1x8: 1 node x 8 GPUs, 8 tasks with 1 GPU each" \
	"$T/b18.tasks" 1 8 1

# The agent step names its task count: the job's SLURM_NTASKS (8) would
# otherwise win over --ntasks-per-node=1, as in any Slurm job.
cat >"$T/job24.sh" <<EOF
#!/bin/bash
srun $REPORT >$T/b24.tasks; echo \$? >$T/b24.tasks.rc
srun --spoke-gang=2x4 $REPORT >$T/b24.repeat; echo \$? >$T/b24.repeat.rc
srun --ntasks-per-node=1 -n \$SLURM_JOB_NUM_NODES $REPORT >$T/b24.agent; echo \$? >$T/b24.agent.rc
srun --spoke-gang=none -N1 -n1 sh -c 'echo "helper \${SPOKE_GANG:-none}"' >$T/b24.helper 2>&1; echo \$? >$T/b24.helper.rc
EOF
batch_job --spoke-gang=2x4 --output="$T/batch.out" "$T/job24.sh" -- \
	"sbatch --spoke-gang=2x4 (command line): 2 nodes x 4 GPUs, 4 tasks per node with 1 GPU each" \
	"$T/b24.tasks" 2 4 1 -- \
	"inner srun repeating --spoke-gang=2x4 in an sbatch --spoke-gang=2x4 job" \
	"$T/b24.repeat" 2 4 1 -- \
	"agent step (srun --ntasks-per-node=1) in a 2x4 job gets the node's 4 GPUs" \
	"$T/b24.agent" 2 4 1 agent

if [ "$(cat "$T/b24.helper.rc" 2>/dev/null)" = 0 ] && grep -qx "helper none" "$T/b24.helper"; then
	ok "a helper step with --spoke-gang=none (srun -N1 -n1) runs inside a 2x4 job"
else
	not_ok "helper step --spoke-gang=none" "rc $(cat "$T/b24.helper.rc" 2>/dev/null)" "$T/b24.helper"
fi

cat >"$T/job32.sh" <<EOF
#!/bin/bash
srun $REPORT >$T/b32.tasks; echo \$? >$T/b32.tasks.rc
EOF
batch_job --spoke-gang=3x2:2 --output="$T/batch.out" "$T/job32.sh" -- \
	"sbatch --spoke-gang=3x2:2: 3 nodes x 2 GPUs, 1 task per node with both" \
	"$T/b32.tasks" 3 2 2

# ---- refusals ----------------------------------------------------------------------
# refused NAME MESSAGE CMD...: CMD fails, says MESSAGE, and runs nothing:
# the job's program would create $T/ran; sbatch must submit nothing.
refused() {
	local name=$1 msg=$2 rc
	shift 2
	rm -f "$T/ran"
	timeout "$TO" "$@" >"$T/refused.out" 2>"$T/refused.err"
	rc=$?
	if [ "$rc" -eq 0 ] || [ "$rc" -eq 124 ]; then
		not_ok "$name" "exit status $rc, want a failure" "$T/refused.err" "$T/refused.out"
	elif ! grep -qF -- "$msg" "$T/refused.err"; then
		not_ok "$name" "no message '$msg'" "$T/refused.err"
	elif [ -e "$T/ran" ] || grep -q 'Submitted\|^[0-9]' "$T/refused.out"; then
		not_ok "$name" "the job ran or was submitted anyway" "$T/refused.out"
	else
		ok "$name"
	fi
}

declare -A why_bad=(
	[0x8]="spoke: invalid --spoke-gang=0x8: a gang needs at least 1 node"
	[1x0]="spoke: invalid --spoke-gang=1x0: a gang needs at least 1 GPU per node"
	[abc]="spoke: invalid --spoke-gang=abc: want NODESxGPUS[:GPUS_PER_ACTOR], e.g. 2x8 or 2x8:2"
	[2x8:3]="spoke: invalid --spoke-gang=2x8:3: 8 GPUs per node do not divide into actors of 3 GPUs"
	[1x16]="spoke: --spoke-gang=1x16 asks for 16 GPUs per node; the largest node here has 8"
	[4x1]="spoke: --spoke-gang=4x1 asks for 4 nodes; this cluster has 3"
)
for v in 0x8 1x0 abc 2x8:3 1x16 4x1; do
	refused "srun --spoke-gang=$v refused" "${why_bad[$v]}" \
		srun --spoke-gang="$v" touch "$T/ran"
	refused "sbatch --spoke-gang=$v refused" "${why_bad[$v]}" \
		sbatch --spoke-gang="$v" --output="$T/batch.out" --wrap "touch $T/ran"
	refused "salloc --spoke-gang=$v refused" "${why_bad[$v]}" \
		salloc --spoke-gang="$v" touch "$T/ran"
done

refused "srun --spoke-gang=2x4 in a 1-node allocation refused" \
	"spoke: --spoke-gang=2x4 asks for 2 nodes; the allocation has 1" \
	salloc -N1 --gpus-per-node=2 srun --spoke-gang=2x4 touch "$T/ran"
refused "srun --spoke-gang=1x4 in an allocation of 2 GPUs per node refused" \
	"spoke: --spoke-gang=1x4 asks for 4 GPUs per node; the allocation has 2" \
	salloc -N2 --gpus-per-node=2 srun --spoke-gang=1x4 touch "$T/ran"
# Checked in the task (slurmstepd): the allocation fits, the step does not.
refused "a 1-node step of a 2x4 allocation refused in the task" \
	"spoke: --spoke-gang=2x4 asks for 2 nodes; this step has 1" \
	salloc --spoke-gang=2x4 srun -N1 -n1 touch "$T/ran"

# ---- plugstack.conf arguments ---------------------------------------------------
# Client commands read plugstack.conf through SLURM_CONF: a copy of
# slurm.conf (with cli_filter.lua beside it) names a bad one.
mkdir -p "$T/bad"
echo "required $PLUGIN bogus=1" >"$T/bad/plugstack.conf"
sed "s|^PlugStackConfig=.*|PlugStackConfig=$T/bad/plugstack.conf|" "$SLURM_CONF" >"$T/bad/slurm.conf"
cp "$CL/cli_filter.lua" "$T/bad/"
msg="spoke: plugstack.conf: unknown argument 'bogus=1' (known: gpus_per_actor=K, mismatch=error|warn)"
refused "plugstack.conf argument bogus=1 makes srun fail" "$msg" \
	env SLURM_CONF="$T/bad/slurm.conf" srun touch "$T/ran"
refused "plugstack.conf argument bogus=1 makes sbatch fail" "$msg" \
	env SLURM_CONF="$T/bad/slurm.conf" sbatch --output="$T/batch.out" --wrap "touch $T/ran"

# The steps (slurmstepd) read the cluster's own plugstack.conf at each
# step: rewriting it changes the next step.
name="mismatch=warn: a 1-node step of a 2x4 allocation runs, with a warning"
echo "required $PLUGIN mismatch=warn" >"$PLUGSTACK"
rm -f "$T/ran"
timeout "$TO" salloc --spoke-gang=2x4 srun -N1 -n1 touch "$T/ran" >"$T/warn.out" 2>"$T/warn.err"
rc=$?
warn="spoke: warning: --spoke-gang=2x4 asks for 2 nodes; this step has 1"
if [ "$rc" -ne 0 ] || [ ! -e "$T/ran" ]; then
	not_ok "$name" "exit status $rc, program ran: $([ -e "$T/ran" ] && echo yes || echo no)" "$T/warn.err"
elif ! grep -qF "$warn" "$T/warn.err"; then
	not_ok "$name" "no warning '$warn'" "$T/warn.err"
else
	ok "$name"
fi

echo "optional $PLUGIN" >"$PLUGSTACK"
timeout "$TO" srun --spoke-gang=2x4 "$REPORT" >"$T/srun.out" 2>"$T/srun.err"
check_step "loaded as optional: srun --spoke-gang=2x4" $? "$T/srun.out" "$T/srun.err" 2 4 1
refused "loaded as optional: srun --spoke-gang=abc refused" "${why_bad[abc]}" \
	srun --spoke-gang=abc touch "$T/ran"
echo "required $PLUGIN" >"$PLUGSTACK"

finish
