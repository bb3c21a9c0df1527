#!/bin/bash
# test_restart.sh - restart: in a job file (spoke-launch --local).  A group
# with restart: {max: 1, backoff_ms: 200}: its actor's worker, killed, comes
# back (a new pid, the same name; spoke-status shows restarts 1, the hub's
# log says so); killed again, past its max, it stays dead and the job goes
# on (the driver ends it, status 0).  The same with end_job: true: the
# second death ends the job within seconds, status 1, saying which actor.
set -u
build=$SPOKE_BUILDDIR
launch=$build/spoke-launch
status=$build/spoke-status
probe=$build/tests/harness/.libs/testactor.so
[ -x "$launch" ] || { echo "SKIP: no spoke-launch in this build (libyaml)"; exit 77; }
work=$(mktemp -d /tmp/spoke-restart-test.XXXXXX)
checks=0 failures=0
ok() { checks=$((checks + 1)); echo "ok - $1"; }
not_ok() { checks=$((checks + 1)); failures=$((failures + 1)); echo "not ok - $1: $2"; }
trap 'pkill -9 -f -- "--log-dir $work/" 2>/dev/null; rm -rf "$work"' EXIT

# The driver: kills phoenix-0's worker, waits for its restart, kills it
# again, then waits (a job that goes on) until told to stop by the file
# $work/stop or 20 s.
cat >"$work/drive.sh" <<SH
#!/bin/bash
worker() { # the pid of phoenix-0's worker of this job, if one runs
	grep -lzx "SPOKE_ACTOR=phoenix-0" /proc/[0-9]*/environ 2>/dev/null |
		while read -r f; do
			d=\${f%/environ}
			grep -qzx "SPOKE_LOG_DIR=\$SPOKE_LOG_DIR" "\$f" && echo "\${d#/proc/}"
		done | head -1
}
first=\$(worker)
[ -n "\$first" ] || { echo "no worker"; exit 3; }
echo "first \$first"
kill -9 "\$first"
for _ in \$(seq 500); do
	second=\$(worker)
	[ -n "\$second" ] && [ "\$second" != "\$first" ] && break
	sleep 0.01
done
echo "second \$second"
for _ in \$(seq 500); do
	"$status" --json >"\$1.json" 2>&1 && grep -q '"restarts": 1' "\$1.json" &&
		grep -q '"state": "running"' "\$1.json" && break
	sleep 0.01
done
kill -9 "\$second"
for _ in \$(seq 2000); do
	[ -e "$work/stop" ] && exit 0
	sleep 0.01
done
exit 0
SH
chmod +x "$work/drive.sh"

job() { # job NAME END_JOB
	cat >"$work/$1.yaml" <<YAML
name: $1
actors:
  - name: phoenix
    type: Probe
    module: $probe
    gpus: 1
    restart: {max: 1, backoff_ms: 200, end_job: $2}
driver: ./drive.sh $work/$1
YAML
}

# 1. The job goes on: after the second death the driver still runs; it
# ends the job itself.
job goes false
t0=$(date +%s%N)
"$launch" --local --gpus 0,1 --log-dir "$work/goes-logs" "$work/goes.yaml" >"$work/goes.out" 2>&1 &
lpid=$!
for _ in $(seq 1000); do
	grep -q "no restarts left" "$work/goes-logs/agent-local.log" 2>/dev/null && break
	sleep 0.01
done
sleep 1
if kill -0 $lpid 2>/dev/null; then ok "past its restarts, the actor is dead and the job goes on"
else not_ok "job goes on" "$(cat "$work/goes.out")"; fi
touch "$work/stop"
wait $lpid
rc=$?
[ $rc -eq 0 ] && ok "the driver ended the job: status 0" || not_ok "status" "$rc: $(cat "$work/goes.out")"
rm -f "$work/stop"
first=$(sed -n 's/^first //p' "$work/goes.out")
second=$(sed -n 's/^second //p' "$work/goes.out")
if [ -n "$first" ] && [ -n "$second" ] && [ "$first" != "$second" ]; then
	ok "the killed worker came back as a new process ($first, then $second)"
else
	not_ok "restart" "first '$first' second '$second': $(cat "$work/goes.out")"
fi
if grep -q '"name": "phoenix-0"' "$work/goes.json" && grep -q '"restarts": 1' "$work/goes.json"; then
	ok "spoke-status --json: phoenix-0 running, restarts 1"
else
	not_ok "spoke-status" "$(cat "$work/goes.json")"
fi
if grep -q "actor phoenix-0 on local .*: restart 1 of 1" "$work/goes-logs/hub.log" &&
	grep -q "restarted (1 of 1)" "$work/goes-logs/hub.log" &&
	grep -q "after 1 restarts" "$work/goes-logs/hub.log"; then
	ok "the hub logged the death, the restart and the death for good"
else
	not_ok "hub log" "$(grep phoenix "$work/goes-logs/hub.log")"
fi

# 2. end_job: true: the second death ends the job.
job ends true
t0=$(date +%s%N)
"$launch" --local --gpus 0,1 --log-dir "$work/ends-logs" "$work/ends.yaml" >"$work/ends.out" 2>&1
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
[ $rc -eq 1 ] && ok "end_job: the job ended with status 1" || not_ok "end_job status" "$rc: $(cat "$work/ends.out")"
if grep -q "stopped: actor phoenix-0 (group phoenix, restart: max 1, end_job: true) died for good" "$work/ends.out"; then
	ok "spoke-launch said which actor ended the job"
else
	not_ok "end_job message" "$(cat "$work/ends.out")"
fi
[ $ms -lt 15000 ] && ok "the job ended in $ms ms, without waiting for its driver" ||
	not_ok "end_job time" "$ms ms"
if pgrep -f -- "$work/ends-logs" >/dev/null; then
	not_ok "leftovers" "$(pgrep -af -- "$work/ends-logs")"
else
	ok "no process of the job is left"
fi

echo "# $checks checks, $failures failed"
[ $failures -eq 0 ]
