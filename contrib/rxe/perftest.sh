# shellcheck shell=bash
# perftest.sh - sourced by contrib/rxe/smoke.sh and tests/bench/rxe-bench.sh:
# runs one of perftest's tools (ib_send_lat, ib_write_bw...) as a server and
# a client on the same rxe device, as both scripts need it.

# perftest servers listen on TCP 18515 for their out-of-band exchange:
# a client started before that fails, so wait for the port (<= 20 s).
wait_port() {
	local i
	for ((i = 0; i < 200; i++)); do
		ss -Hltn "sport = :$1" 2>/dev/null | grep -q . && return 0
		sleep 0.1
	done
	return 1
}

# perftest_pair SECONDS DEV ADDR OUT TOOL ARGS...: the server in the
# background, then the client to ADDR, each limited to SECONDS; their output
# goes to OUT-s and OUT.  Returns 0, or the status of what failed (the
# server's, if both did).
perftest_pair() {
	local secs=$1 dev=$2 addr=$3 out=$4 tool=$5 sp rc=0
	shift 5
	timeout "$secs" "$tool" -d "$dev" "$@" -F >"$out-s" 2>&1 &
	sp=$!
	wait_port 18515 || rc=1
	[ "$rc" -ne 0 ] || timeout "$secs" "$tool" -d "$dev" "$@" -F "$addr" >"$out" 2>&1 || rc=$?
	wait "$sp" || rc=$?
	return "$rc"
}
