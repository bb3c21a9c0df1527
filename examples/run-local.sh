#!/bin/bash
# run-local.sh - runs the example job on this machine, no Slurm needed:
# a hub and one agent (with 8 GPUs: the real ones if any, else ids 0-7 for
# the demo), then the driver and the 1x8 gang example; tears everything down
# on exit.  Run from the build directory: examples/run-local.sh
set -euo pipefail
build=${SPOKE_BUILDDIR:-$(cd "$(dirname "$0")/.." && pwd)}
work=$(mktemp -d /tmp/spoke-local.XXXXXX)
pids=()
cleanup() {
	local rc=$?
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
	exit $rc
}
trap cleanup EXIT INT TERM

export SPOKE_TOKEN_FILE=$work/token SPOKE_LOG=${SPOKE_LOG:-warn}
"$build/spoke-hub" --listen 127.0.0.1:0 --address-file "$work/hub" --token-file "$work/token" &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/hub" ] && break; sleep 0.05; done
[ -s "$work/hub" ] || { echo "run-local: the hub did not start" >&2; exit 1; }
SPOKE_HUB=$(cat "$work/hub")
export SPOKE_HUB

gpus=0-7
real=$(find /dev -maxdepth 1 -name 'nvidia[0-9]*' -printf '%f\n' 2>/dev/null | sed 's/nvidia//' | sort -n | paste -sd,)
[ -z "$real" ] || gpus=$real
"$build/spoke-agent" --node local --gpus "$gpus" --ready-file "$work/agent-ready" \
	--module "$build/examples/.libs/hello.so:$build/examples/.libs/complex_task.so" &
pids+=($!)
for _ in $(seq 100); do [ -e "$work/agent-ready" ] && break; sleep 0.05; done
[ -e "$work/agent-ready" ] || { echo "run-local: the agent did not register" >&2; exit 1; }

echo "== driver"
"$build/examples/driver"
echo "== gang 1x8"
"$build/examples/gang" 1 8
