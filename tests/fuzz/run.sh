#!/bin/sh
# run.sh - runs libFuzzer targets one after the other, each for
# $FUZZ_SECONDS (default 60), and prints one line of figures each.
#
#   run.sh FUZZDIR SEEDDIR TARGET...
#
# FUZZDIR is make fuzz's build (_build/fuzz): the targets are
# FUZZDIR/build/tests/fuzz/fuzz_TARGET; what a run adds to the corpus goes
# to FUZZDIR/corpus/TARGET (the seeds in SEEDDIR/TARGET are only read); a
# crash's input to FUZZDIR/crashes/TARGET-*, its log to FUZZDIR/logs.
# Exit status: 0 if no target crashed, leaked, timed out or broke a
# property, else 1.
set -u
dir=$1
seeds=$2
shift 2
seconds=${FUZZ_SECONDS:-60}
status=0
mkdir -p "$dir/crashes" "$dir/logs"
printf '%-18s %10s %8s %6s %6s %s\n' target execs exec/s cov ft result
for t in "$@"; do
	bin=$dir/build/tests/fuzz/fuzz_$t
	log=$dir/logs/$t.log
	mkdir -p "$dir/corpus/$t"
	# -timeout: an input that takes 10 s is a hang; -rss_limit_mb: one
	# that needs 2 GiB, or one allocation of 256 MiB, is a memory bomb.  All
	# are crashes.
	"$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=256 -max_len=4096 \
		-print_final_stats=1 -artifact_prefix="$dir/crashes/$t-" \
		"$dir/corpus/$t" "$seeds/$t" >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
	last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -1)
	cov=$(echo "$last" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
	ft=$(echo "$last" | sed -n 's/.*ft: \([0-9]*\).*/\1/p')
	result=ok
	if [ $rc -ne 0 ]; then
		result="FAILED (exit $rc): $log"
		status=1
	fi
	printf '%-18s %10s %8s %6s %6s %s\n' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" \
		"${ft:-?}" "$result"
	if [ $rc -ne 0 ]; then
		grep -E 'ERROR|SUMMARY|property broken|Test unit written' "$log" | head -20
	fi
done
exit $status
