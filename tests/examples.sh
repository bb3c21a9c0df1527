#!/bin/bash
# examples.sh - runs every example job (examples/*.yaml) that fits this
# machine with spoke-launch --local and checks what it printed: every Hello
# actor of the 1x8 gang answers with its own GPU, the ComplexTask round
# trip, the API gang example, 64 token streams from one batching engine
# (8 of them cancelled midway); under SPOKE_TRANSPORT=rdma (make
# check-rxe), that the calls went over RDMA.  A job whose gang needs more than one node
# (two-nodes.yaml) is only checked here: it runs, with the sbatch scripts
# of examples/sbatch/, on the Slurm mini-cluster (tests/slurm/test_launch.sh).
# Every sbatch script must name a job file that exists and checks.  After
# each job only its logs may be left in its log directory.
set -u
build=$SPOKE_BUILDDIR
src=$SPOKE_SRCDIR
launch=$build/spoke-launch
logs=$(mktemp -d /tmp/spoke-examples.XXXXXX)
copies=()
trap 'rm -rf "$logs" "${copies[@]}"' EXIT
fail() {
	echo "FAIL: $*"
	exit 1
}

# job_of NAME: sets job to the path of example job NAME.yaml to run: paths
# in a job file are relative to it, so out of tree a copy goes beside the
# build's examples (removed at exit: not in a subshell, so that copies
# keeps it).
job_of() {
	job=$build/examples/$1.yaml
	if [ ! -e "$job" ]; then
		job=$build/examples/$1.yaml.test.yaml
		cp "$src/examples/$1.yaml" "$job"
		copies+=("$job")
	fi
}

# What each example must print besides its exit status 0.
check_job() {
	local out=$1 n u
	grep -q "driver: 8 Hello actors answered" <<<"$out" || fail "job: Hello actors"
	grep -q "task-0 result: id=666 name=ZeroCopyCheck values=2 sum=3.0" <<<"$out" ||
		fail "job: ComplexTask"
	n=$(grep -c "^hello-[0-7]: Hello from Spoke! .*(CUDA_VISIBLE_DEVICES=[0-9]*, over \(tcp\|rdma\|shm\))$" <<<"$out")
	u=$(grep "^hello-" <<<"$out" | sed 's/.*=//' | sort -u | wc -l)
	if [ "$n" -ne 8 ] || [ "$u" -ne 8 ]; then
		fail "job: $n Hello actors answered, with $u distinct GPU sets"
	fi
	# On one machine, auto means shared memory.
	if [ "${SPOKE_TRANSPORT:-auto}" = auto ] && [ "$(grep -c ', over shm)$' <<<"$out")" -ne 8 ]; then
		fail "SPOKE_TRANSPORT=auto on one machine, but not every Hello actor answered over shm"
	fi
	# make check-rxe runs this again with SPOKE_TRANSPORT=rdma, on rxe.
	if [ "${SPOKE_TRANSPORT:-auto}" = rdma ] && [ "$(grep -c ', over rdma)$' <<<"$out")" -ne 8 ]; then
		fail "SPOKE_TRANSPORT=rdma, but not every Hello actor answered over RDMA"
	fi
}
check_gang() {
	grep -q "gang: every actor sees its own GPUs" <<<"$1" || fail "gang example"
}
check_tokens() {
	grep -q "tokens: 56 streams complete and in order, 8 cancelled midway" <<<"$1" ||
		fail "tokens example: streams"
	grep -q "it finished 56 and saw 8 cancels" <<<"$1" || fail "tokens example: the engine"
}

ran=0
for yaml in "$src"/examples/*.yaml; do
	name=$(basename "$yaml" .yaml)
	job_of "$name"
	nodes=$(sed -n 's/^gang: *\([0-9]*\)[xX].*/\1/p' "$job")
	if [ "${nodes:-1}" -gt 1 ]; then
		"$launch" --check "$job" >/dev/null || fail "$name.yaml does not check"
		echo "# $name.yaml: a ${nodes}-node gang; checked here, run on the Slurm mini-cluster"
		continue
	fi
	out=$("$launch" --local --log-dir "$logs/$name" "$job" 2>&1)
	rc=$?
	echo "$out"
	[ $rc -eq 0 ] || fail "spoke-launch $name.yaml exited $rc"
	case $name in
	job) check_job "$out" ;;
	gang) check_gang "$out" ;;
	tokens) check_tokens "$out" ;;
	*) fail "examples/$name.yaml: add what it must print to tests/examples.sh" ;;
	esac
	left=$(find "$logs/$name" -mindepth 1 ! -name '*.log' -printf '%f ')
	[ -z "$left" ] || fail "$name.yaml left more than logs: $left"
	ran=$((ran + 1))
done
[ $ran -ge 2 ] || fail "only $ran example jobs ran"

for sb in "$src"/examples/sbatch/*; do
	job=$(sed -n 's/^exec spoke-launch \(.*\.yaml\)$/\1/p' "$sb")
	if [ -z "$job" ] || [ ! -f "$src/$job" ]; then
		fail "$(basename "$sb") names no job file of examples/"
	fi
	grep -q "^#SBATCH --spoke-gang=" "$sb" || fail "$(basename "$sb") asks for no gang"
	"$launch" --check "$src/$job" >/dev/null || fail "$(basename "$sb"): $job does not check"
done
echo "PASS: examples ($ran jobs run here; sbatch scripts checked)"
