#!/bin/bash
# smoke.sh - checks that vm.sh gives a working rxe (Soft-RoCE) device: boots
# the VM once (and once more, empty, to time the boot), and runs inside it
#
#   ibv_devices, ibv_devinfo     the device is there and its port ACTIVE
#   rping server + client        rdma_cm connection set-up, SEND, RDMA READ/WRITE
#   ib_send_lat server + client  64 B SEND ping-pong, 500 iterations (latency)
#   ib_write_bw server + client  1 MiB RDMA WRITEs, 100 iterations (bandwidth)
#
# each server and client in the same VM, over $RXE_ADDR, and prints their key
# figures.  Figures under TCG measure qemu's emulation, not a network.
#
#   contrib/rxe/smoke.sh [VM.SH RUN OPTIONS]     (e.g. --cpus 1, --mode vm)
#
# Exits 0 when all passed, 1 on a failure, 77 (automake's SKIP) when vm.sh
# cannot run here (contrib/rxe/install-rxe-deps.sh installs what it needs).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd -P)
SELF=$HERE/$(basename "$0")

# --- inside the VM (or natively on an rxe host), run by vm.sh --------------------
inside() {
	local failed=0 passed=0 dev=$RXE_DEV addr=$RXE_ADDR log=/tmp/smoke.$$ sp rc i line t0 ms
	local s_lat=64 n_lat=500 s_bw=1048576 n_bw=100
	mkdir -p "$log"
	ok() {
		echo "smoke: ok: $*"
		passed=$((passed + 1))
	}
	bad() {
		echo "smoke: FAIL: $*"
		failed=$((failed + 1))
	}
	show() { sed 's/^/    /' "$@"; }
	# shellcheck source=contrib/rxe/perftest.sh
	. "$HERE/perftest.sh" # wait_port, perftest_pair
	echo "smoke: inside: $(uname -r), $dev on $RXE_NETDEV ($addr), $(nproc) cpus, RXE_VM=$RXE_VM"

	# 1. ibv_devices / ibv_devinfo
	if ibv_devices >"$log/devices" 2>&1 && grep -qw "$dev" "$log/devices"; then
		ok "ibv_devices lists $dev"
	else
		bad "ibv_devices does not list $dev"
		show "$log/devices"
	fi
	if ibv_devinfo -d "$dev" >"$log/devinfo" 2>&1 && grep -q 'state:.*PORT_ACTIVE' "$log/devinfo"; then
		ok "ibv_devinfo: port 1 $(awk '/transport:/ { t = $2 } /link_layer:/ { l = $2 }
			/active_mtu:/ { m = $2 } END { printf "ACTIVE, transport %s, link layer %s, active MTU %s", t, l, m }' "$log/devinfo")"
	else
		bad "ibv_devinfo -d $dev: port not ACTIVE"
		show "$log/devinfo"
	fi

	# 2. rping: rdma_cm connect, then 10 rounds of SEND + RDMA READ + WRITE.
	# No port to wait for (rdma_cm listens in the kernel): retry the client.
	timeout 60 rping -s -a "$addr" -C 10 -v >"$log/rping-s" 2>&1 &
	sp=$!
	sleep 0.5
	for ((i = 1; i <= 5; i++)); do
		rc=0
		t0=$(date +%s%N)
		timeout 30 rping -c -a "$addr" -C 10 -v >"$log/rping-c" 2>&1 || rc=$?
		[ "$rc" -ne 0 ] || break
		sleep 1
	done
	ms=$((($(date +%s%N) - t0) / 1000000))
	wait "$sp" || rc=$?
	if [ "$rc" -eq 0 ] && [ "$(grep -c '^ping data: rdma-ping-' "$log/rping-c")" -eq 10 ]; then
		ok "rping: 10 pings over $dev ($addr), client run $ms ms (try $i)"
	else
		bad "rping (rc $rc)"
		show "$log/rping-s" "$log/rping-c"
	fi

	# 3. ib_send_lat, 64 B.  Result line: bytes iters t_min t_max t_typical
	# t_avg t_stdev 99% 99.9% (usec).
	rc=0
	perftest_pair 120 "$dev" "$addr" "$log/lat" ib_send_lat -s "$s_lat" -n "$n_lat" || rc=$?
	line=$(awk -v s="$s_lat" '$1 == s && NF >= 9' "$log/lat" 2>/dev/null || true)
	if [ "$rc" -eq 0 ] && [ -n "$line" ]; then
		# shellcheck disable=SC2086 # word splitting wanted
		set -- $line
		ok "ib_send_lat ${1} B x ${2}: typical ${5} us, avg ${6} us, min ${3} us, 99% ${8} us, max ${4} us"
	else
		bad "ib_send_lat (rc $rc)"
		show "$log/lat-s" "$log/lat" 2>/dev/null || true
	fi

	# 4. ib_write_bw, 1 MiB.  Result line: bytes iters BW-peak BW-avg (MB/s) Mpps.
	rc=0
	perftest_pair 120 "$dev" "$addr" "$log/bw" ib_write_bw -s "$s_bw" -n "$n_bw" || rc=$?
	line=$(awk -v s="$s_bw" '$1 == s && NF >= 5' "$log/bw" 2>/dev/null || true)
	if [ "$rc" -eq 0 ] && [ -n "$line" ]; then
		# shellcheck disable=SC2086
		set -- $line
		ok "ib_write_bw ${1} B x ${2}: average ${4} MB/s, peak ${3} MB/s"
	else
		bad "ib_write_bw (rc $rc)"
		show "$log/bw-s" "$log/bw" 2>/dev/null || true
	fi

	rm -rf "$log"
	echo "smoke: inside: $passed passed, $failed failed"
	[ "$failed" -eq 0 ]
}

if [ "${1:-}" = --inside ]; then
	inside
	exit
fi

# --- on the host ------------------------------------------------------------------
VM=$HERE/vm.sh
rc=0
how=$("$VM" check "$@" 2>&1) || rc=$?
echo "$how"
if [ "$rc" -ne 0 ]; then
	echo "smoke: SKIP: vm.sh cannot run here"
	exit 77
fi
# Fetch and build first (a no-op once cached), so that the timing below is a
# boot, not a download.  Natively there is nothing to build.
case $how in
*natively*) ;;
*) "$VM" prepare >/dev/null ;;
esac

# An empty run first: the time from vm.sh's start to its end, boot, rxe
# set-up and power-off included.
t0=$(date +%s%N)
"$VM" run -q "$@" -- true
t1=$(date +%s%N)
boot_ms=$(((t1 - t0) / 1000000))

rc=0
"$VM" run --timeout 300 "$@" -- "$SELF" --inside || rc=$?
echo "smoke: an empty vm.sh run (boot, rxe set-up, power-off): $((boot_ms / 1000)).$(printf '%03d' $((boot_ms % 1000))) s"
if [ "$rc" -eq 0 ]; then
	echo "smoke: all passed"
	exit 0
fi
echo "smoke: FAILED (exit $rc)"
exit 1
