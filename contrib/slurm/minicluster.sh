#!/bin/bash
# minicluster.sh - a real Slurm mini-cluster on loopback, for Spoke's tests.
#
#   minicluster.sh start DIR [--plugstack FILE] [--cli-filter FILE] [--conf LINE]...
#   minicluster.sh stop DIR
#   minicluster.sh status DIR
#
# start: one munged, one slurmctld and three slurmd (n1, n2, n3: Debian's
# slurmd is built with multiple-slurmd support, so all three run on this
# host, each on its own loopback port), each node with 16 CPUs and eight fake
# GPUs, in one default partition "main".  Everything (config, munge key and
# socket, state, spool, logs, pid files, fake devices) lives under DIR;
# nothing is written outside it.  Waits until sinfo shows the three nodes
# idle, then writes DIR/env, a file for tests to source:
#
#   export SLURM_CONF=DIR/slurm.conf        # how sbatch/srun/sinfo find the cluster
#   export MINICLUSTER_DIR=DIR
#   export MINICLUSTER_MUNGE_SOCKET=DIR/munge/munge.sock   # for munge -S / unmunge -S
#   export MINICLUSTER_LOG_DIR=DIR/log      # slurmctld.log, slurmd-nK.log, munged.log
#   export MINICLUSTER_PARTITION=main       # the default partition, all three nodes
#   export MINICLUSTER_NODES=n[1-3]
#   export MINICLUSTER_CPUS_PER_NODE=16
#   export MINICLUSTER_GPUS_PER_NODE=8
#
# and prints the same lines.  Options of start:
#   --plugstack FILE   PlugStackConfig= FILE (SPANK plugins); else an empty DIR/plugstack.conf
#   --cli-filter FILE  copies FILE to DIR/cli_filter.lua, sets CliFilterPlugins=cli_filter/lua
#                      (Slurm reads cli_filter.lua from slurm.conf's directory)
#   --conf LINE        appends LINE to slurm.conf (may be repeated)
# Environment: MINICLUSTER_TIMEOUT (seconds to wait for idle nodes, default 60),
# MINICLUSTER_PORT_BASE (first of four TCP ports; default: a free range found
# from a hash of DIR), MINICLUSTER_KEEP_ON_FAILURE=1 (leave daemons running
# when start fails, for debugging).
#
# stop: cancels the cluster's jobs, stops every daemon by its pid file, then
# kills whatever slurmstepd (and its tasks) or daemon of this cluster is left,
# and checks that nothing is.  status: which daemons run, and sinfo.
#
# Must run as root: slurmd starts jobs as their user, and the fake GPUs are
# made with mknod.  Fake GPUs are character devices (c 1 3, like /dev/null)
# because Slurm refuses regular files as GRES File=.  Slurm then sets
# CUDA_VISIBLE_DEVICES per step from --gpus-per-node / --gres=gpu:N / --gpus.
set -euo pipefail

readonly NODES=(n1 n2 n3)
readonly NODE_RANGE="n[1-3]"
readonly GPUS_PER_NODE=8
readonly CPUS_PER_NODE=16
readonly PARTITION=main
PROG=$(basename "$0")
readonly PROG

say() { printf '%s: %s\n' "$PROG" "$*"; }
err() { printf '%s: error: %s\n' "$PROG" "$*" >&2; }
die() {
	err "$*"
	exit 1
}

usage() {
	cat >&2 <<EOF
usage: $PROG start DIR [--plugstack FILE] [--cli-filter FILE] [--conf LINE]...
       $PROG stop DIR
       $PROG status DIR
EOF
	exit 2
}

# The layout of DIR; set by set_paths.
DIR='' CONF='' GRES_CONF='' MUNGE_DIR='' MUNGE_SOCK='' MUNGE_KEY='' MUNGE_PID=''
LOG_DIR='' RUN_DIR='' STATE_DIR='' SPOOL_DIR='' DEV_DIR='' ENV_FILE='' PORT_BASE=''

# set_paths DIR COMMAND: DIR must be absolute for slurm.conf, and without blanks,
# which slurm.conf cannot quote.
set_paths() {
	[ -n "$1" ] || usage
	case $1 in
	*[[:space:]]*) die "DIR must not contain blanks: '$1'" ;;
	esac
	if [ "$2" = start ]; then
		mkdir -p "$1"
	elif [ ! -d "$1" ]; then
		die "no directory $1"
	fi
	DIR=$(cd "$1" && pwd -P)
	CONF=$DIR/slurm.conf
	GRES_CONF=$DIR/gres.conf
	MUNGE_DIR=$DIR/munge
	MUNGE_SOCK=$MUNGE_DIR/munge.sock
	MUNGE_KEY=$MUNGE_DIR/munge.key
	MUNGE_PID=$MUNGE_DIR/munged.pid
	LOG_DIR=$DIR/log
	RUN_DIR=$DIR/run
	STATE_DIR=$DIR/state
	SPOOL_DIR=$DIR/spool
	DEV_DIR=$DIR/dev
	ENV_FILE=$DIR/env
}

# Slurm client commands of this cluster.
sl() { SLURM_CONF=$CONF "$@"; }

ctld_pidfile() { echo "$RUN_DIR/slurmctld.pid"; }
slurmd_pidfile() { echo "$RUN_DIR/slurmd-$1.pid"; }

# alive PID: whether the process runs.  A zombie does not: killed daemons
# are orphans, and this container's pid 1 may be slow to reap them, while
# kill -0 still succeeds on a zombie.
alive() {
	local line rest
	read -r line 2>/dev/null <"/proc/$1/stat" || return 1
	rest=${line##*) }
	[ "${rest%% *}" != Z ]
}

# pid_of FILE: the pid in FILE if that process is alive, else nothing.
pid_of() {
	local pid
	[ -s "$1" ] || return 0
	pid=$(tr -dc '0-9' <"$1")
	if [ -n "$pid" ] && alive "$pid"; then
		echo "$pid"
	fi
}

all_pidfiles() {
	local n
	echo "$MUNGE_PID"
	ctld_pidfile
	for n in "${NODES[@]}"; do slurmd_pidfile "$n"; done
}

# port_in_use PORT: whether any TCP socket (v4 or v6, any state) has it.
port_in_use() {
	local hex
	hex=$(printf ':%04X ' "$1")
	cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk '{print $2 " "}' | grep -qF "$hex"
}

# pick_ports: sets PORT_BASE to the first of four free ports: slurmctld,
# then one per slurmd.  Starts from a hash of DIR so that two clusters
# started at once (parallel tests) rarely race for the same range.
pick_ports() {
	local base tries p ok
	if [ -n "${MINICLUSTER_PORT_BASE:-}" ]; then
		PORT_BASE=$MINICLUSTER_PORT_BASE
		return
	fi
	base=$((17000 + ($(printf '%s' "$DIR" | cksum | cut -d' ' -f1) % 1000) * 10))
	for ((tries = 0; tries < 200; tries++)); do
		ok=1
		for ((p = base; p < base + 4; p++)); do
			if port_in_use "$p"; then
				ok=
				break
			fi
		done
		if [ -n "$ok" ]; then
			PORT_BASE=$base
			return
		fi
		base=$((base + 10))
		[ "$base" -lt 27000 ] || base=17000
	done
	die "no four free TCP ports found between 17000 and 27000"
}

# make_dirs: a fresh cluster each start; only our own subdirectories of DIR
# are cleared.  munged refuses a socket directory that others can write to,
# and warns unless all may search every directory on the socket's path
# (clients of any user connect), DIR included: mktemp -d makes it 0700.
make_dirs() {
	rm -rf "$STATE_DIR" "$SPOOL_DIR" "$RUN_DIR" "$LOG_DIR" "$MUNGE_DIR" "$DEV_DIR"
	mkdir -p "$STATE_DIR" "$RUN_DIR" "$LOG_DIR" "$DEV_DIR"
	mkdir -m 0711 "$MUNGE_DIR"
	local n
	for n in "${NODES[@]}"; do mkdir -p "$SPOOL_DIR/$n"; done
	chmod 0755 "$DIR"
}

# make_gpus: eight character devices shared by the three nodes (each slurmd
# only hands out its own node's GRES, so sharing the files is harmless).
make_gpus() {
	local k
	for ((k = 0; k < GPUS_PER_NODE; k++)); do
		mknod "$DEV_DIR/nvidia$k" c 1 3
	done
}

# write_conf PLUGSTACK CLIFILTER EXTRA...: slurm.conf and gres.conf.
write_conf() {
	local plugstack=$1 clifilter=$2 host line
	shift 2
	host=$(hostname)
	{
		cat <<EOF
# Written by contrib/slurm/minicluster.sh; regenerated at every start.
ClusterName=spoke-mini
SlurmctldHost=$host
SlurmctldAddr=127.0.0.1
SlurmctldPort=$PORT_BASE
SlurmUser=root
SlurmdUser=root
# munged runs with its own socket under DIR; daemons and client commands
# (all reading this file through SLURM_CONF) find it here.
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCK
CredType=cred/munge
StateSaveLocation=$STATE_DIR
SlurmdSpoolDir=$SPOOL_DIR/%n
SlurmctldPidFile=$(ctld_pidfile)
SlurmdPidFile=$RUN_DIR/slurmd-%n.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
# No systemd and no usable cgroup hierarchy in a container: track processes
# by parentage, no task binding, no accounting.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
# The default (/bin/mail) is absent and slurmctld logs an error for it.
MailProg=/bin/true
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
# Schedule a batch job when it comes, not up to 3 s later (the default), so
# that a test's sbatch and the sruns after it see a predictable order.
SchedulerParameters=batch_sched_delay=0
GresTypes=gpu
PlugStackConfig=$plugstack
# The nodes' CPU count comes from this file, not from the (small) machine,
# so that a node can run one task per GPU.
SlurmdParameters=config_overrides
ReturnToService=2
# Short timeouts: tests want failures and cancellations to show fast.
KillWait=2
MinJobAge=60
InactiveLimit=0
SlurmdTimeout=60
MessageTimeout=10
NodeName=$NODE_RANGE NodeHostname=$host NodeAddr=127.0.0.1 Port=[$((PORT_BASE + 1))-$((PORT_BASE + 3))] CPUs=$CPUS_PER_NODE Boards=1 SocketsPerBoard=1 CoresPerSocket=$CPUS_PER_NODE ThreadsPerCore=1 RealMemory=8192 Gres=gpu:$GPUS_PER_NODE State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE_RANGE Default=YES MaxTime=INFINITE State=UP
EOF
		if [ -n "$clifilter" ]; then
			echo "CliFilterPlugins=cli_filter/lua"
		fi
		for line in "$@"; do echo "$line"; done
	} >"$CONF"
	cat >"$GRES_CONF" <<EOF
# Written by contrib/slurm/minicluster.sh.  Fake GPUs: character devices.
AutoDetect=off
NodeName=$NODE_RANGE Name=gpu File=$DEV_DIR/nvidia[0-$((GPUS_PER_NODE - 1))]
EOF
}

write_env() {
	cat >"$ENV_FILE" <<EOF
export SLURM_CONF=$CONF
export MINICLUSTER_DIR=$DIR
export MINICLUSTER_MUNGE_SOCKET=$MUNGE_SOCK
export MINICLUSTER_LOG_DIR=$LOG_DIR
export MINICLUSTER_PARTITION=$PARTITION
export MINICLUSTER_NODES=$NODE_RANGE
export MINICLUSTER_CPUS_PER_NODE=$CPUS_PER_NODE
export MINICLUSTER_GPUS_PER_NODE=$GPUS_PER_NODE
EOF
}

start_munged() {
	mungekey --create --keyfile="$MUNGE_KEY" >/dev/null
	chmod 0400 "$MUNGE_KEY"
	# --force: munged would refuse a stale socket left by a killed one.
	munged --force --socket="$MUNGE_SOCK" --key-file="$MUNGE_KEY" \
		--pid-file="$MUNGE_PID" --log-file="$LOG_DIR/munged.log" \
		--seed-file="$MUNGE_DIR/munged.seed" --num-threads=2
	# munge's own round trip proves the socket answers before Slurm uses it.
	local i
	for ((i = 0; i < 50; i++)); do
		if munge -S "$MUNGE_SOCK" -n 2>/dev/null | unmunge -S "$MUNGE_SOCK" >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.1
	done
	fail "munged does not answer on $MUNGE_SOCK" "$LOG_DIR/munged.log"
}

start_slurm() {
	local n
	# -c: no state recovered from an earlier run in this DIR.
	SLURM_CONF=$CONF slurmctld -c -f "$CONF" ||
		fail "slurmctld did not start" "$LOG_DIR/slurmctld.log"
	for n in "${NODES[@]}"; do
		SLURM_CONF=$CONF slurmd -f "$CONF" -N "$n" ||
			fail "slurmd -N $n did not start" "$LOG_DIR/slurmd-$n.log"
	done
}

# daemon_dead PIDFILE SECONDS: whether the daemon that writes PIDFILE has
# died.  A daemonized Slurm daemon writes its pid file a moment after the
# command returns, so a missing one only counts after a few seconds.
daemon_dead() {
	if [ -s "$1" ]; then
		[ -z "$(pid_of "$1")" ]
	else
		[ "$2" -ge 5 ]
	fi
}

# wait_idle: until sinfo shows every node idle, with a progress line every
# few seconds and a timeout.
wait_idle() {
	local timeout=${MINICLUSTER_TIMEOUT:-60} start now states idle last=-1 n
	start=$SECONDS
	while :; do
		states=$(sl sinfo -h -N -o '%N %t' 2>/dev/null | sort -u || true)
		idle=$(printf '%s\n' "$states" | awk '$2 == "idle"' | wc -l)
		[ "$idle" -eq "${#NODES[@]}" ] && return 0
		# A node that registered as invalid or drained will not turn idle:
		# say so now rather than at the timeout.
		if printf '%s\n' "$states" | awk '$2 ~ /^(inval|drain|drng|down)/ {bad = 1} END {exit !bad}'; then
			err "nodes will not turn idle: $(printf '%s' "$states" | tr '\n' ' ')"
			fail "a node registered in a bad state" "$LOG_DIR/slurmctld.log"
		fi
		now=$((SECONDS - start))
		if [ "$now" -ge "$timeout" ]; then
			err "nodes not idle after ${timeout}s: $(printf '%s' "$states" | tr '\n' ' ')"
			fail "timed out" "$LOG_DIR/slurmctld.log" \
				"${NODES[@]/#/$LOG_DIR/slurmd-}"
		fi
		if [ $((now / 5)) -ne "$last" ]; then
			last=$((now / 5))
			say "waiting for idle nodes (${now}s): $(printf '%s' "${states:-no answer}" | tr '\n' ' ')"
		fi
		# Each daemon must still be alive; a dead one will never register.
		if daemon_dead "$(ctld_pidfile)" "$now"; then
			fail "slurmctld died" "$LOG_DIR/slurmctld.log"
		fi
		for n in "${NODES[@]}"; do
			if daemon_dead "$(slurmd_pidfile "$n")" "$now"; then
				fail "slurmd -N $n died" "$LOG_DIR/slurmd-$n.log" "$LOG_DIR/slurmctld.log"
			fi
		done
		sleep 0.3
	done
}

# fail MESSAGE LOG...: says what failed, where the logs are and the tail of
# the relevant ones, then stops what was started (unless asked not to).
fail() {
	local msg=$1 f
	shift
	err "$msg"
	err "logs are in $LOG_DIR (config: $CONF)"
	for f in "$@"; do
		case $f in *.log) ;; *) f=$f.log ;; esac
		[ -f "$f" ] || continue
		echo "---- tail of $f" >&2
		tail -n 25 "$f" >&2
	done
	if [ "${MINICLUSTER_KEEP_ON_FAILURE:-}" != 1 ]; then
		do_stop >&2 || true
	else
		err "MINICLUSTER_KEEP_ON_FAILURE=1: daemons left running; '$PROG stop $DIR' stops them"
	fi
	exit 1
}

do_start() {
	local plugstack='' clifilter='' extra=() f t0
	while [ $# -gt 0 ]; do
		case $1 in
		--plugstack)
			[ $# -ge 2 ] || usage
			plugstack=$2
			shift 2
			;;
		--cli-filter)
			[ $# -ge 2 ] || usage
			clifilter=$2
			shift 2
			;;
		--conf)
			[ $# -ge 2 ] || usage
			extra+=("$2")
			shift 2
			;;
		*) usage ;;
		esac
	done
	[ "$(id -u)" -eq 0 ] || die "must run as root (slurmd, mknod)"
	for f in munged mungekey munge unmunge slurmctld slurmd sinfo; do
		command -v "$f" >/dev/null ||
			die "$f not found; contrib/slurm/install-slurm-deps.sh installs it"
	done
	for f in $(all_pidfiles); do
		[ -z "$(pid_of "$f")" ] ||
			die "a cluster already runs in $DIR ($f); '$PROG stop $DIR' first"
	done
	# Daemons read these after chdir: make them absolute.
	if [ -n "$plugstack" ]; then
		[ -f "$plugstack" ] || die "no plugstack file $plugstack"
		plugstack=$(cd "$(dirname "$plugstack")" && pwd -P)/$(basename "$plugstack")
	fi
	if [ -n "$clifilter" ]; then
		[ -f "$clifilter" ] || die "no cli_filter file $clifilter"
	fi
	t0=$SECONDS

	make_dirs
	if [ -z "$plugstack" ]; then
		plugstack=$DIR/plugstack.conf
		: >"$plugstack"
	fi
	rm -f "$DIR/cli_filter.lua"
	if [ -n "$clifilter" ]; then
		cp "$clifilter" "$DIR/cli_filter.lua"
	fi
	make_gpus
	pick_ports
	write_conf "$plugstack" "$clifilter" ${extra[@]+"${extra[@]}"}
	say "starting in $DIR (slurmctld port $PORT_BASE, slurmd ports $((PORT_BASE + 1))-$((PORT_BASE + 3)))"
	start_munged
	start_slurm
	wait_idle
	write_env
	say "up in $((SECONDS - t0))s: ${#NODES[@]} nodes x $GPUS_PER_NODE GPUs; logs in $LOG_DIR"
	cat "$ENV_FILE"
}

# dir_pids: processes of this cluster that pid files may not name: any
# slurmctld/slurmscriptd/slurmd/slurmstepd/munged with a file or directory
# under DIR open (slurmstepd keeps its node's log file open).
dir_pids() {
	local p comm fd
	for p in /proc/[0-9]*; do
		read -r comm 2>/dev/null <"$p/comm" || continue
		case $comm in slurmctld | slurmscriptd | slurmd | slurmstepd | munged) ;; *) continue ;; esac
		for fd in "$p"/cwd "$p"/fd/*; do
			case $(readlink "$fd" 2>/dev/null) in
			"$DIR"/*)
				echo "${p#/proc/}"
				break
				;;
			esac
		done
	done
}

# descendants PID...: every process below the given ones (job tasks under a
# slurmstepd), from one pass over /proc with shell builtins rather than a
# command per process.
descendants() {
	local -A kids=()
	local f line rest ppid p todo=("$@")
	for f in /proc/[0-9]*/stat; do
		read -r line 2>/dev/null <"$f" || continue
		rest=${line##*) }      # after "pid (comm) ", comm may hold blanks
		rest=${rest#* }        # drop the state letter
		ppid=${rest%% *}
		p=${f#/proc/}
		kids[$ppid]+=" ${p%/stat}"
	done
	while [ "${#todo[@]}" -gt 0 ]; do
		p=${todo[0]}
		todo=("${todo[@]:1}")
		for f in ${kids[$p]-}; do
			echo "$f"
			todo+=("$f")
		done
	done
}

# wait_gone SECONDS PID...: whether all are gone within SECONDS.
wait_gone() {
	local deadline=$((SECONDS + $1)) p still
	shift
	while :; do
		still=
		for p in "$@"; do
			if alive "$p"; then still=1; fi
		done
		[ -n "$still" ] || return 0
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.2
	done
}

# Every pid that stop signalled.
SIGNALLED=()

# wait_reaped SECONDS PID...: the daemons were orphans, so their zombies
# wait for pid 1, which in this container reaps only every few seconds.
# Waiting for that (bounded; a zombie runs nothing) spares a test that looks
# with pgrep right after stop a false alarm.
wait_reaped() {
	local deadline=$((SECONDS + $1)) p left
	shift
	while :; do
		left=
		for p in "$@"; do
			if [ -e "/proc/$p" ]; then left=1; fi
		done
		[ -n "$left" ] || return 0
		[ "$SECONDS" -lt "$deadline" ] || return 0
		sleep 0.2
	done
}

# stop_pidfiles FILE...: TERM to each live pid named, KILL after 10 s.
stop_pidfiles() {
	local f pid pids=()
	for f in "$@"; do
		pid=$(pid_of "$f")
		[ -n "$pid" ] || continue
		pids+=("$pid")
		kill -TERM "$pid" 2>/dev/null || true
	done
	[ "${#pids[@]}" -gt 0 ] || return 0
	SIGNALLED+=("${pids[@]}")
	if ! wait_gone 10 "${pids[@]}"; then
		say "killing ${pids[*]}: still there 10 s after SIGTERM"
		for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
		wait_gone 5 "${pids[@]}" || true
	fi
}

do_stop() {
	local f pid left=() stray
	[ -f "$CONF" ] || { say "no cluster in $DIR"; return 0; }
	# Jobs first, while the controller can still end them cleanly.
	if [ -n "$(pid_of "$(ctld_pidfile)")" ]; then
		# timeout: a client retries a hung controller for many seconds.
		sl timeout 5 scancel --full --quiet --user=root >/dev/null 2>&1 || true
		sl timeout 5 scancel --quiet --user=root >/dev/null 2>&1 || true
		for ((f = 0; f < 25; f++)); do
			[ -n "$(sl timeout 5 squeue -h -t R,CG 2>/dev/null || true)" ] || break
			sleep 0.2
		done
	fi
	# Slurm daemons before munged: they need it to say goodbye.
	local slurm_files=()
	mapfile -t slurm_files < <(all_pidfiles | grep -vxF "$MUNGE_PID")
	stop_pidfiles "${slurm_files[@]}"
	stop_pidfiles "$MUNGE_PID"
	# What pid files do not name: steps of jobs that did not end, and their
	# tasks, or a daemon whose pid file is gone.
	mapfile -t stray < <(dir_pids)
	if [ "${#stray[@]}" -gt 0 ]; then
		mapfile -t left < <(descendants "${stray[@]}")
		say "killing leftover processes: ${stray[*]} ${left[*]}"
		SIGNALLED+=("${stray[@]}" ${left[@]+"${left[@]}"})
		for pid in "${stray[@]}" ${left[@]+"${left[@]}"}; do kill -KILL "$pid" 2>/dev/null || true; done
		wait_gone 5 "${stray[@]}" ${left[@]+"${left[@]}"} || true
	fi
	mapfile -t stray < <(dir_pids)
	if [ "${#stray[@]}" -gt 0 ]; then
		err "still running: ${stray[*]}"
		return 1
	fi
	wait_reaped 10 ${SIGNALLED[@]+"${SIGNALLED[@]}"}
	rm -f "$MUNGE_SOCK" "$ENV_FILE"
	say "stopped"
}

do_status() {
	local f pid running=0 total=0
	for f in $(all_pidfiles); do
		total=$((total + 1))
		pid=$(pid_of "$f")
		if [ -n "$pid" ]; then
			running=$((running + 1))
			say "$(basename "$f" .pid): running (pid $pid)"
		else
			say "$(basename "$f" .pid): not running"
		fi
	done
	if [ -n "$(pid_of "$(ctld_pidfile)")" ]; then
		sl sinfo -N -o '%N %P %t %G' || true
	fi
	[ "$running" -eq "$total" ]
}

main() {
	[ $# -ge 2 ] || usage
	local cmd=$1
	set_paths "$2" "$cmd"
	shift 2
	case $cmd in
	start) do_start "$@" ;;
	stop)
		[ $# -eq 0 ] || usage
		do_stop
		;;
	status)
		[ $# -eq 0 ] || usage
		do_status
		;;
	*) usage ;;
	esac
}

main "$@"
