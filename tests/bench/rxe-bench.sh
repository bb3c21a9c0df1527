#!/bin/bash
# rxe-bench.sh - Spoke's RDMA figures next to perftest's on the same device,
# in the same boot: run by `make bench-rxe` inside contrib/rxe/vm.sh's VM
# (or natively on a host with an rxe device and RXE_DEV / RXE_ADDR set):
#
#   ib_send_lat -s 64        server + client: SEND ping-pong latency
#   ib_write_bw -s 1 MiB     server + client: RDMA WRITE bandwidth
#   ib_write_bw -s 16 MiB
#   tests/bench/rdma-bench   Spoke calls to a Probe actor over rdma and tcp
#
# then prints a table with the ratios.  ib_send_lat reports half the round
# trip (one-way latency), so a Spoke call's round trip is set against twice
# its typical figure.  Under TCG every figure measures qemu's emulation, not
# a network: compare ratios, not absolute numbers.
#
#   SPOKE_BUILDDIR=BUILD tests/bench/rxe-bench.sh     (BUILD: default ../..)
#
# Exits 0 when every tool ran (a missed target is reported, not failed),
# 1 when one failed, 77 when there is no rxe device to run on.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd -P)
BUILD=${SPOKE_BUILDDIR:-$(cd "$HERE/../.." && pwd -P)}

if [ -z "${RXE_DEV:-}" ] || [ -z "${RXE_ADDR:-}" ]; then
	echo "rxe-bench: SKIP: RXE_DEV and RXE_ADDR are not set;" \
		"run me through contrib/rxe/vm.sh run or make bench-rxe"
	exit 77
fi

dev=$RXE_DEV
addr=$RXE_ADDR
log=/tmp/rxe-bench.$$
s_lat=64 n_lat=1000
n_bw_1=100 n_bw_16=10
mkdir -p "$log"
trap 'rm -rf "$log"' EXIT

show() { sed 's/^/    /' "$@"; }
die() {
	echo "rxe-bench: FAIL: $*"
	exit 1
}
# shellcheck source=contrib/rxe/perftest.sh
. "$HERE/../../contrib/rxe/perftest.sh" # wait_port, perftest_pair
# perftest TOOL NAME ARGS...: server in the background, client to $addr;
# the client's output in $log/NAME.
perftest() {
	local tool=$1 name=$2 rc=0
	shift 2
	perftest_pair 300 "$dev" "$addr" "$log/$name" "$tool" "$@" || rc=$?
	if [ "$rc" -ne 0 ]; then
		show "$log/$name-s" "$log/$name" 2>/dev/null || true
		die "$tool $* (rc $rc)"
	fi
}
# result SIZE MINFIELDS FILE: perftest's result line for SIZE.
result() {
	awk -v s="$1" -v n="$2" '$1 == s && NF >= n' "$3" | tail -n 1
}
# spoke TRANSPORT FIGURE [SIZE] KEY: a value from rdma-bench's output.
spoke() {
	awk -v t="$1" -v f="$2" -v s="${4:+$3}" -v k="${4:-$3}" '
		$1 == "spoke" && $2 == t && $3 == f && (s == "" || $4 == s) {
			for (i = 4; i <= NF; i++)
				if (index($i, k "=") == 1)
					v = substr($i, length(k) + 2)
		}
		END { if (v == "") exit 1; print v }' "$log/spoke"
}
calc() { awk "BEGIN { printf \"%.2f\", $* }"; }
# verdict VALUE OP LIMIT: "met" or "MISSED".
verdict() {
	awk -v v="$1" -v l="$3" -v op="$2" 'BEGIN {
		ok = op == "<=" ? v <= l : v >= l
		print ok ? "met" : "MISSED" }'
}

echo "rxe-bench: $(uname -r), $dev on ${RXE_NETDEV:-?} ($addr), $(nproc) cpus, RXE_VM=${RXE_VM:-?}"

# 1. ib_send_lat, 64 B.  Result line: bytes iters t_min t_max t_typical
# t_avg t_stdev 99% 99.9% (usec, one way).
# A typical figure of milliseconds is a scheduler tick: the two busy-polling
# ends shared a CPU (the host's CPUs are busy).  Such a run is retried, twice.
for try in 1 2 3; do
	perftest ib_send_lat lat -s "$s_lat" -n "$n_lat"
	line=$(result "$s_lat" 9 "$log/lat")
	[ -n "$line" ] || { show "$log/lat"; die "ib_send_lat printed no result"; }
	read -r _ _ _ _ lat_typ lat_avg _ lat_99 _ <<<"$line"
	echo "rxe-bench: ib_send_lat $s_lat B x $n_lat: typical $lat_typ us, avg $lat_avg us," \
		"99% $lat_99 us (one way)"
	[ "$(verdict "$lat_typ" "<=" 1000)" = met ] && break
	[ "$try" -lt 3 ] && echo "rxe-bench: ib_send_lat shared a CPU (a scheduler tick per trip); again"
done

# 2. ib_write_bw, 1 MiB and 16 MiB.  Result line: bytes iters BW-peak BW-avg
# (MB/sec, 2^20 bytes) MsgRate.
bw_avg=()
for spec in "1048576 $n_bw_1" "16777216 $n_bw_16"; do
	read -r size n <<<"$spec"
	perftest ib_write_bw "bw$size" -s "$size" -n "$n"
	line=$(result "$size" 5 "$log/bw$size")
	[ -n "$line" ] || { show "$log/bw$size"; die "ib_write_bw -s $size printed no result"; }
	read -r _ _ peak avg _ <<<"$line"
	bw_avg+=("$avg")
	echo "rxe-bench: ib_write_bw $size B x $n: average $avg MB/s, peak $peak MB/s"
done

# 3. Spoke, over rdma and tcp, on the same device's address.
rc=0
SPOKE_BUILDDIR=$BUILD SPOKE_TEST_ADDR=$addr timeout 600 \
	"$BUILD/tests/bench/rdma-bench" >"$log/spoke" 2>"$log/spoke-err" || rc=$?
sed 's/^/rxe-bench: /' "$log/spoke"
if [ "$rc" -ne 0 ]; then
	show "$log/spoke-err"
	die "rdma-bench (rc $rc)"
fi

# 4. The table.
r_med=$(spoke rdma rtt64 median_us) r_p99=$(spoke rdma rtt64 p99_us)
t_med=$(spoke tcp rtt64 median_us) t_p99=$(spoke tcp rtt64 p99_us)
rb_med=$(spoke rdma rtt64_block median_us) tb_med=$(spoke tcp rtt64_block median_us)
base=$(calc "2 * $lat_typ")
base99=$(calc "2 * $lat_99")
ratio=$(calc "$r_med / $base")

echo
echo "rxe-bench: results on $dev ($addr), RXE_VM=${RXE_VM:-?}$([ "${RXE_VM:-}" = vm ] && echo ", TCG: emulated, compare ratios")"
printf '  %-30s %14s %12s %12s %10s\n' "" "perftest" "spoke rdma" "spoke tcp" "rdma gain"
printf '  %-30s %14s %12s %12s %9sx\n' "64 B round trip, median (us)" "2 x $lat_typ" \
	"$r_med" "$t_med" "$(calc "$t_med / $r_med")"
printf '  %-30s %14s %12s %12s %9sx\n' "64 B round trip, p99 (us)" "2 x $lat_99" \
	"$r_p99" "$t_p99" "$(calc "$t_p99 / $r_p99")"
printf '  %-30s %14s %12s %12s %9sx\n' "64 B round trip, blocking (us)" "-" \
	"$rb_med" "$tb_med" "$(calc "$tb_med / $rb_med")"
i=0
bw_lines=()
for size in 1048576 16777216; do
	r=$(spoke rdma bw "$size" mibps) t=$(spoke tcp bw "$size" mibps)
	printf '  %-30s %14s %12s %12s %9sx\n' "$((size >> 20)) MiB requests (MiB/s)" \
		"${bw_avg[$i]}" "$r" "$t" "$(calc "$r / $t")"
	b=$(calc "$r / ${bw_avg[$i]}")
	bw_lines+=("$(printf '  %-52s %5s  (target >= 0.8): %s' \
		"spoke rdma / ib_write_bw, $((size >> 20)) MiB:" "$b" "$(verdict "$b" ">=" 0.8)")")
	i=$((i + 1))
done
echo
echo "  2 x ib_send_lat typical = $base us (ib_send_lat reports one way; 99%: 2 x $lat_99 = $base99 us)"
printf '  %-52s %5s  (target <= 1.5): %s\n' "spoke rdma round trip median / (2 x ib_send_lat):" \
	"$ratio" "$(verdict "$ratio" "<=" 1.5)"
printf '%s\n' "${bw_lines[@]}"
echo "rxe-bench: done"
