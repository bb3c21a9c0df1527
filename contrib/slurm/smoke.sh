#!/bin/bash
# smoke.sh - checks that minicluster.sh gives a working Slurm: starts a
# mini-cluster in a fresh directory, runs srun, sbatch and salloc jobs with
# GPUs, stops it and checks that none of its processes is left.
#
#   contrib/slurm/smoke.sh [DIR]      (default: a new directory under /tmp)
#
# Exits 0 when all passed, 1 on a failure, 77 (automake's SKIP) when this
# machine cannot run the cluster (not root, or Slurm/munge not installed:
# contrib/slurm/install-slurm-deps.sh installs them).

# The jobs' commands are single-quoted on purpose: they expand on the node.
# shellcheck disable=SC2016
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd -P)
MC=$HERE/minicluster.sh

skip() {
	echo "smoke: SKIP: $*"
	exit 77
}
[ "$(id -u)" -eq 0 ] || skip "needs root"
for c in slurmctld slurmd srun sbatch salloc munged; do
	command -v "$c" >/dev/null || skip "$c not installed (contrib/slurm/install-slurm-deps.sh)"
done

DIR=${1:-$(mktemp -d /tmp/spoke-minicluster.XXXXXX)}
failed=0
passed=0
check() {
	local what=$1 got=$2 want=$3
	if [ "$got" = "$want" ]; then
		echo "smoke: ok: $what"
		passed=$((passed + 1))
	else
		echo "smoke: FAIL: $what"
		echo "  want: $want" | tr '\n' ' '
		echo
		echo "  got:  $got" | tr '\n' ' '
		echo
		failed=$((failed + 1))
	fi
}
cleanup() { "$MC" stop "$DIR" >/dev/null 2>&1 || true; }
trap cleanup EXIT

"$MC" start "$DIR"
# shellcheck source=/dev/null
. "$DIR/env"

# Every srun/sbatch below is bounded: a hung cluster fails, not hangs.
got=$(timeout 60 srun -N3 -n3 --gpus-per-node=2 \
	bash -c 'echo $SLURMD_NODENAME $CUDA_VISIBLE_DEVICES' | sort)
check "srun -N3 --gpus-per-node=2" "$got" "$(printf 'n1 0,1\nn2 0,1\nn3 0,1')"

got=$(timeout 60 srun -N1 -n1 --gres=gpu:3 bash -c 'echo $CUDA_VISIBLE_DEVICES')
check "srun --gres=gpu:3" "$got" "0,1,2"

out=$DIR/smoke-batch.out
jid=$(sbatch --parsable -N2 --ntasks-per-node=4 --gpus-per-node=4 -o "$out" \
	--wrap 'srun --gpu-bind=single:1 bash -c "echo \$SLURMD_NODENAME \$CUDA_VISIBLE_DEVICES"')
for ((i = 0; i < 120; i++)); do
	[ -n "$(squeue -h -j "$jid" 2>/dev/null)" ] || break
	sleep 0.5
done
got=$(sort "$out" 2>/dev/null || true)
check "sbatch -N2 --gpus-per-node=4, one GPU per task" "$got" \
	"$(printf 'n1 %s\n' 0 1 2 3; printf 'n2 %s\n' 0 1 2; printf 'n2 3')"

got=$(timeout 60 salloc -N3 --gpus-per-node=8 \
	srun bash -c 'echo $SLURMD_NODENAME $CUDA_VISIBLE_DEVICES' 2>/dev/null | sort)
check "salloc -N3 --gpus-per-node=8" "$got" \
	"$(printf 'n%s 0,1,2,3,4,5,6,7\n' 1 2; printf 'n3 0,1,2,3,4,5,6,7')"

"$MC" stop "$DIR"
# The daemons name DIR on their command lines (pgrep leaves itself out).
left=$(pgrep -af -- "$DIR/(slurm.conf|munge)" || true)
check "nothing of the cluster left running" "$left" ""

echo "smoke: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
