#!/bin/bash
# examples.sh - runs the example job (examples/run-local.sh) and checks what
# it printed: the driver's calls and the 1x8 gang's disjoint GPUs.
set -u
out=$("$SPOKE_SRCDIR/examples/run-local.sh" 2>&1)
rc=$?
echo "$out"
[ $rc -eq 0 ] || { echo "FAIL: run-local.sh exited $rc"; exit 1; }
grep -q "driver: all calls succeeded" <<<"$out" || { echo "FAIL: driver"; exit 1; }
grep -q "task-1 result: id=666 name=ZeroCopyCheck values=2 sum=3.0" <<<"$out" || { echo "FAIL: ComplexTask"; exit 1; }
n=$(grep -c "^rank [0-7] on local (local rank [0-7]): CUDA_VISIBLE_DEVICES=[0-9]*$" <<<"$out")
u=$(grep "^rank " <<<"$out" | sed 's/.*=//' | sort -u | wc -l)
if [ "$n" -ne 8 ] || [ "$u" -ne 8 ]; then
	echo "FAIL: gang saw $n ranks, $u distinct GPU sets"
	exit 1
fi
echo "PASS: examples"
