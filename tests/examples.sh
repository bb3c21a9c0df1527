#!/bin/bash
# examples.sh - runs the example jobs with spoke-launch --local and checks
# what they printed: every Hello actor of the 1x8 gang answers with its own
# GPU, the ComplexTask round trip, and the API gang example; under
# SPOKE_TRANSPORT=rdma (make check-rxe), that the calls went over RDMA.
set -u
build=$SPOKE_BUILDDIR
# Paths in a job file are relative to it: run copies beside the build's
# examples (the same place in an in-tree build).
for f in job.yaml gang.yaml; do
	[ -e "$build/examples/$f" ] || cp "$SPOKE_SRCDIR/examples/$f" "$build/examples/$f.test.yaml"
done
job=$build/examples/job.yaml
[ -e "$build/examples/job.yaml.test.yaml" ] && job=$build/examples/job.yaml.test.yaml
gang=$build/examples/gang.yaml
[ -e "$build/examples/gang.yaml.test.yaml" ] && gang=$build/examples/gang.yaml.test.yaml
logs=$(mktemp -d /tmp/spoke-examples.XXXXXX)
trap 'rm -rf "$logs" "$build"/examples/*.test.yaml' EXIT

out=$("$build/spoke-launch" --local --log-dir "$logs/job" "$job" 2>&1)
rc=$?
echo "$out"
[ $rc -eq 0 ] || { echo "FAIL: spoke-launch job.yaml exited $rc"; exit 1; }
grep -q "driver: 8 Hello actors answered" <<<"$out" || { echo "FAIL: Hello actors"; exit 1; }
grep -q "task-0 result: id=666 name=ZeroCopyCheck values=2 sum=3.0" <<<"$out" ||
	{ echo "FAIL: ComplexTask"; exit 1; }
n=$(grep -c "^hello-[0-7]: Hello from Spoke! .*(CUDA_VISIBLE_DEVICES=[0-9]*, over \(tcp\|rdma\))$" <<<"$out")
u=$(grep "^hello-" <<<"$out" | sed 's/.*=//' | sort -u | wc -l)
if [ "$n" -ne 8 ] || [ "$u" -ne 8 ]; then
	echo "FAIL: $n Hello actors answered, with $u distinct GPU sets"
	exit 1
fi
# make check-rxe runs this again with SPOKE_TRANSPORT=rdma, on rxe.
if [ "${SPOKE_TRANSPORT:-auto}" = rdma ] && [ "$(grep -c ', over rdma)$' <<<"$out")" -ne 8 ]; then
	echo "FAIL: SPOKE_TRANSPORT=rdma, but not every Hello actor answered over RDMA"
	exit 1
fi

out=$("$build/spoke-launch" --local --log-dir "$logs/gang" "$gang" 2>&1)
rc=$?
echo "$out"
[ $rc -eq 0 ] || { echo "FAIL: spoke-launch gang.yaml exited $rc"; exit 1; }
grep -q "gang: every actor sees its own GPUs" <<<"$out" || { echo "FAIL: gang example"; exit 1; }
echo "PASS: examples"
