# lib.sh - what the Slurm tests share (sourced, after `set -u`): the checks
# that decide a skip, the paths, a fresh temporary directory, the TAP-like
# ok / not_ok lines, and starting and stopping the mini-cluster.  Each test
# defines its own cleanup (its trap) and finish (its summary), which use
# stop_cluster and check_cluster_stopped from here.
# shellcheck shell=bash

# shellcheck disable=SC2034 # read by the tests' finish
t_start=$SECONDS
nchecks=0
nfail=0
started=''

skip() {
	echo "SKIP: $*"
	exit 77
}

# slurm_test_setup PREFIX COMMAND...: skips (77) unless root, the commands,
# the plugin and the cluster scripts are there; sets SRCDIR, BUILDDIR,
# PLUGIN, MC, FILTER, and T (a new directory /tmp/PREFIX.XXXXXX), CL (the
# cluster's directory in it) and PLUGSTACK; leaves no Slurm variable of an
# enclosing job behind, so that nothing talks to that job's cluster.
slurm_test_setup() {
	local prefix=$1 c here v
	shift
	[ "$(id -u)" -eq 0 ] ||
		skip "needs root (slurmd starts jobs as their user; fake GPUs need mknod)"
	for c in slurmctld slurmd munged sbatch salloc srun scontrol squeue "$@"; do
		command -v "$c" >/dev/null ||
			skip "$c not installed (contrib/slurm/install-slurm-deps.sh installs Slurm and munge)"
	done
	here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
	SRCDIR=$(cd "${SPOKE_SRCDIR:-$here/../..}" 2>/dev/null && pwd -P) ||
		skip "no source directory ${SPOKE_SRCDIR:-}"
	BUILDDIR=$(cd "${SPOKE_BUILDDIR:-$SRCDIR}" 2>/dev/null && pwd -P) ||
		skip "no build directory ${SPOKE_BUILDDIR:-}"
	PLUGIN=$BUILDDIR/spank/.libs/spoke_spank.so
	MC=$SRCDIR/contrib/slurm/minicluster.sh
	FILTER=$SRCDIR/contrib/cli_filter.lua
	[ -f "$PLUGIN" ] ||
		skip "the plugin was not built ($PLUGIN missing; configure found no slurm/spank.h?)"
	if [ ! -x "$MC" ] || [ ! -f "$FILTER" ]; then skip "$MC or $FILTER missing"; fi
	while read -r v; do
		unset "$v"
	done < <(env | sed -n 's/^\(\(SLURM\|SBATCH\|SALLOC\|SRUN\)_[A-Za-z0-9_]*\)=.*/\1/p')
	T=$(mktemp -d "/tmp/$prefix.XXXXXX") || { echo "cannot make a temporary directory"; exit 1; }
	# munged wants every directory on its socket's path searchable by all.
	chmod 0755 "$T"
	CL=$T/cluster
	PLUGSTACK=$T/plugstack.conf
}

ok() {
	nchecks=$((nchecks + 1))
	echo "ok - $1"
}

# not_ok NAME REASON [FILE...]: the files (a command's output) follow, indented.
not_ok() {
	local f
	nchecks=$((nchecks + 1))
	nfail=$((nfail + 1))
	echo "not ok - $1: $2"
	shift 2
	for f in "$@"; do
		[ -e "$f" ] || continue
		if [ -f "$f" ] && [ ! -s "$f" ]; then continue; fi
		echo "#   --- $f:"
		head -n 30 "$f" | sed 's/^/#   /'
	done
}

# stop_cluster: stops it (once); fails when something of it is left.
stop_cluster() {
	[ -n "$started" ] || return 0
	started=''
	"$MC" stop "$CL" >"$T/stop.log" 2>&1 &&
		! pgrep -f -- "$CL/(slurm.conf|munge)" >/dev/null
}

# check_cluster_stopped: stops a started cluster as a case of its own.
check_cluster_stopped() {
	[ -n "$started" ] || return 0
	if stop_cluster; then
		ok "mini-cluster stops, nothing of it left"
	else
		not_ok "mini-cluster stops, nothing of it left" "see below" "$T/stop.log" \
			<(pgrep -af -- "$CL/(slurm.conf|munge)")
	fi
}

# start_cluster: the mini-cluster with the build's plugin and the source's
# cli_filter, its environment sourced, and $T the current directory (any
# file a job writes by default lands there); on failure the test's finish.
start_cluster() {
	echo "required $PLUGIN" >"$PLUGSTACK"
	started=1 # from here on, stop it whatever happens
	if ! "$MC" start "$CL" --plugstack "$PLUGSTACK" --cli-filter "$FILTER" >"$T/start.log" 2>&1; then
		not_ok "mini-cluster starts" "minicluster.sh start failed" "$T/start.log"
		finish
	fi
	# shellcheck source=/dev/null
	. "$CL/env"
	cd "$T" || exit 1
	ok "mini-cluster starts ($(grep -o 'up in [0-9]*s' "$T/start.log"))"
}
