#!/bin/bash
# launch-bench.sh - time from starting spoke-launch to the driver's first
# completed call (a 1x8 gang of Hello actors, then one call), with
# --local; and on the Slurm mini-cluster (3 nodes x 2 GPUs) when run as
# root with Slurm installed.  Prints the median of several runs.  Not a
# test: it prints figures.
set -u
build=${SPOKE_BUILDDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
src=${SPOKE_SRCDIR:-$build}
runs=${RUNS:-7}
work=$(mktemp -d /tmp/spoke-launch-bench.XXXXXX)
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT

median() { sort -n | awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)]; else print "n/a" }'; }

cat >"$work/local.yaml" <<YAML
name: bench
gang: 1x8
actors:
  - name: hello
    type: Hello
    module: $build/examples/.libs/hello.so
    per_node: 8
driver: $build/tests/bench/first-call
YAML
for _ in $(seq "$runs"); do
	"$build/spoke-launch" --local --log-dir "$work/logs" "$work/local.yaml" 2>/dev/null |
		sed -n 's/^first call completed \([0-9.]*\) ms.*/\1/p'
done >"$work/local.ms"
printf 'spoke-launch --local, 1x8 gang -> first call  median %s ms over %d runs (target < 100 ms)\n' \
	"$(median <"$work/local.ms")" "$runs"

if [ "$(id -u)" -ne 0 ] || ! command -v slurmctld >/dev/null; then
	echo "mini-cluster figure skipped: needs root and Slurm"
	exit 0
fi
mc=$src/contrib/slurm/minicluster.sh
printf 'required %s/spank/.libs/spoke_spank.so\n' "$build" >"$work/plugstack.conf"
"$mc" start "$work/mc" --plugstack "$work/plugstack.conf" --cli-filter "$src/contrib/cli_filter.lua" >/dev/null ||
	{ echo "mini-cluster did not start"; exit 0; }
trap '"$mc" stop "$work/mc" >/dev/null 2>&1; rm -rf "$work"' EXIT
# shellcheck disable=SC1091
. "$work/mc/env"
sed -e 's/gang: 1x8/gang: 3x2/' -e 's/per_node: 8/per_node: 2/' "$work/local.yaml" >"$work/slurm.yaml"
for _ in $(seq "$runs"); do
	timeout 60 salloc --spoke-gang=3x2 "$build/spoke-launch" --log-dir "$work/slogs" "$work/slurm.yaml" 2>/dev/null |
		sed -n 's/^first call completed \([0-9.]*\) ms.*/\1/p'
done >"$work/slurm.ms"
printf 'spoke-launch in a 3-node allocation, 3x2 gang -> first call  median %s ms over %d runs\n' \
	"$(median <"$work/slurm.ms")" "$runs"
