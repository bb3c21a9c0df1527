#!/bin/bash
# test_status.sh - spoke-status on a live job (spoke-launch --local): after
# a known number of calls, its counts (JSON, text, Prometheus) are those
# calls, from inside the job (the driver's environment) and from outside it
# (--log-dir); a caller without the job's token gets nothing and changes
# nothing; --watch ends on SIGTERM within a second with status 0; -o
# replaces a file; SPOKE_STATS_MS=0 counts nothing and a bad value fails the
# spawn.  The Prometheus output is parsed by prometheus_client's
# own parser (Debian's python3-prometheus-client): without it, exit 77.
set -u
build=$SPOKE_BUILDDIR
launch=$build/spoke-launch
status=$build/spoke-status
probe=$build/tests/harness/.libs/testactor.so
calls=$build/tests/launcher/status_calls
py=
for p in python3 /usr/bin/python3; do
	if "$p" -c 'import prometheus_client.parser' 2>/dev/null; then py=$p; break; fi
done
if [ -z "$py" ]; then
	echo "SKIP: no python3 with prometheus_client (Debian: python3-prometheus-client)"
	exit 77
fi
[ -x "$launch" ] || { echo "SKIP: no spoke-launch in this build (libyaml)"; exit 77; }
work=$(mktemp -d /tmp/spoke-status-test.XXXXXX)
checks=0 failures=0
ok() { checks=$((checks + 1)); echo "ok - $1"; }
not_ok() { checks=$((checks + 1)); failures=$((failures + 1)); echo "not ok - $1: $2"; }
lpid=
trap '[ -n "$lpid" ] && kill -9 $lpid 2>/dev/null; rm -rf "$work"' EXIT

# The calls the driver makes (an honest count: the test compares with these).
ECHOES=$((30 + RANDOM % 20)) BYTES=$((64 + RANDOM % 100)) FAILS=$((2 + RANDOM % 5)) NAPS=3 NAP_MS=20
# Kept calls: deferred (Keeper) and on an actor's threads (Conc4).
KECHOES=$((5 + RANDOM % 10)) KFAILS=$((1 + RANDOM % 3)) CECHOES=$((5 + RANDOM % 10))
cat >"$work/drive.sh" <<SH
#!/bin/sh
"$calls" p-0 $ECHOES $BYTES $FAILS $NAPS $NAP_MS >"$work/calls.out" 2>&1 || exit 3
# The Probe's calls go over shared memory (same node), the Keeper's over
# TCP, the Conc4's over either: every transport's calls are counted.
SPOKE_TRANSPORT=tcp "$calls" --kept k-0 $KECHOES $BYTES $KFAILS 2 >>"$work/calls.out" 2>&1 || exit 3
"$calls" --kept c-0 $CECHOES $BYTES 0 2 >>"$work/calls.out" 2>&1 || exit 3
# From inside the job: the driver's environment finds the hub.
i=0
# (each actor's own count: two actors' counts may be the same number)
until "$status" --json >"$work/inside.json" 2>"$work/inside.err" &&
	"$py" -c 'import json, sys
a = {x["name"]: x["calls"] for x in json.load(open(sys.argv[1]))["actors"]}
sys.exit(a.get("p-0") != $((ECHOES + FAILS + NAPS)) or a.get("k-0") != $((KECHOES + KFAILS)) or
         a.get("c-0") != $CECHOES)' "$work/inside.json"; do
	i=\$((i + 1)); [ \$i -lt 100 ] || exit 4; sleep 0.1
done
touch "$work/called"
i=0
while [ ! -e "$work/done" ] && [ \$i -lt 600 ]; do sleep 0.1; i=\$((i + 1)); done
SH
chmod +x "$work/drive.sh"
cat >"$work/st.yaml" <<YAML
name: st
gang: 1x2
timeouts:
  shutdown: 2s
actors:
  - name: p
    type: Probe
    module: $probe
    per_node: 2
  - name: k
    type: Keeper
    module: $probe
    count: 1
    gpus: 0
  - name: c
    type: Conc4
    module: $probe
    count: 1
    gpus: 0
driver: $work/drive.sh
YAML
# Workers report every 200 ms here (1 s by default).
SPOKE_STATS_MS=200 "$launch" --local --log-dir "$work/logs" "$work/st.yaml" >"$work/launch.out" 2>&1 &
lpid=$!
for _ in $(seq 600); do
	[ -e "$work/called" ] || ! kill -0 $lpid 2>/dev/null && break
	sleep 0.1
done
if [ ! -e "$work/called" ]; then
	not_ok "the job's driver made its calls and saw them counted" \
		"$(cat "$work/launch.out" "$work/calls.out" "$work/inside.err" 2>&1)"
	echo "1..$checks"; exit 1
fi

check_json() { # check_json FILE WHAT
	"$py" - "$1" $ECHOES $BYTES $FAILS $NAPS $NAP_MS $KECHOES $KFAILS $CECHOES <<'PY'
import json, sys
f, echoes, size, fails, naps, nap_ms, kechoes, kfails, cechoes = sys.argv[1], *map(int, sys.argv[2:])
s = json.load(open(f))
actors = {a["name"]: a for a in s["actors"]}
assert set(actors) == {"p-0", "p-1", "k-0", "c-0"}, actors.keys()
def eq(what, got, want):
    assert got == want, f"{what}: {got}, expected {want}"
# Kept calls count when their answer goes: deferred (Keeper), threads (Conc4).
k = {x["name"]: x for x in actors["k-0"]["methods"]}
eq("k-0 echo_later", (k["echo_later"]["calls"], k["echo_later"]["errors"],
                      k["echo_later"]["bytes_in"], k["echo_later"]["bytes_out"]),
   (kechoes, 0, kechoes * (4 + size), kechoes * size))
eq("k-0 fail_later", (k["fail_later"]["calls"], k["fail_later"]["errors"]), (kfails, kfails))
assert k["echo_later"]["p50_le_us"] >= 2000, k["echo_later"]
c = {x["name"]: x for x in actors["c-0"]["methods"]}
eq("c-0 echo_later", (c["echo_later"]["calls"], c["echo_later"]["bytes_out"]),
   (cechoes, cechoes * size))
eq("c-0 calls", actors["c-0"]["calls"], cechoes)
a, b = actors["p-0"], actors["p-1"]
m = {x["name"]: x for x in a["methods"]}
eq("p-0 calls", a["calls"], echoes + fails + naps)
eq("p-0 errors", a["errors"], fails)
eq("echo calls", m["echo"]["calls"], echoes)
eq("echo errors", m["echo"]["errors"], 0)
eq("echo bytes in", m["echo"]["bytes_in"], echoes * size)
eq("echo bytes out", m["echo"]["bytes_out"], echoes * size)
eq("fail calls", m["fail"]["calls"], fails)
eq("fail errors", m["fail"]["errors"], fails)
eq("nap calls", m["nap"]["calls"], naps)
eq("nap histogram", sum(m["nap"]["latency_buckets"]), naps)
assert m["nap"]["p50_le_us"] >= nap_ms * 1000, m["nap"]
assert m["nap"]["latency_sum_us"] >= naps * nap_ms * 1000, m["nap"]
assert m["echo"]["p50_le_us"] < m["nap"]["p50_le_us"], (m["echo"], m["nap"])
eq("p-1 calls", b["calls"], 0)
for x in (a, b):
    eq("state", x["state"], "running")
    eq("restarts", x["restarts"], 0)
    eq("gpus", len(x["gpus"]), 1)
    assert x["incarnation"] > 0 and x["pid"] > 0 and x["address"], x
assert a["incarnation"] != b["incarnation"]
eq("nodes", [(n["name"], n["gpus"], n["gpus_used"]) for n in s["nodes"]], [("local", 2, 2)])
assert s["uptime_ms"] > 0
assert (2, 2, 2) in [(t["slots"], t["launched"], t["gpus"]) for t in s["tickets"]], s["tickets"]
PY
}

# 1. Inside the job: valid JSON, and the counts are the calls made.
if err=$(check_json "$work/inside.json" 2>&1); then
	ok "inside the job (SPOKE_HUB, token file): JSON counts are the calls made"
else
	not_ok "inside the job" "$err: $(cat "$work/inside.json")"
fi

# 2. From outside it (the login node's way): --log-dir.
if "$status" --log-dir "$work/logs" --json >"$work/outside.json" 2>"$work/err" &&
	err=$(check_json "$work/outside.json" 2>&1); then
	ok "--log-dir: JSON counts are the calls made"
else
	not_ok "--log-dir JSON" "$(cat "$work/err") ${err:-}"
fi

# 2b. By Slurm job id: spoke-logs/*-JOBID under the current directory.
mkdir -p "$work/cwd/spoke-logs" && ln -s "$work/logs" "$work/cwd/spoke-logs/st-4242"
if (cd "$work/cwd" && "$status" --job 4242 --json) >"$work/byjob.json" 2>"$work/err" &&
	err=$(check_json "$work/byjob.json" 2>&1) &&
	out=$(cd "$work/cwd" && "$status" --job 4243 2>&1; echo "rc=$?") &&
	grep -q "no log directory spoke-logs/\*-4243" <<<"$out" && grep -q "rc=1$" <<<"$out"; then
	ok "--job JOBID finds spoke-logs/*-JOBID (and says so when there is none, status 1)"
else
	not_ok "--job" "$(cat "$work/err") ${err:-} ${out:-}"
fi

# 3. Text.
out=$("$status" --log-dir "$work/logs" 2>&1)
rc=$?
if [ $rc -eq 0 ] && grep -q "^hub: up .* 1 node, 4 actors, [0-9]* tickets\?$" <<<"$out" &&
	grep -Eq "^p-0 +Probe +local .* running .* $((ECHOES + FAILS + NAPS)) +$FAILS " <<<"$out" &&
	grep -Eq "^  echo +calls $ECHOES .* p50 <=[0-9.]+(us|ms)" <<<"$out" &&
	grep -Eq "^  nap +calls $NAPS .* p50 <=[0-9.]+ms" <<<"$out" &&
	grep -Eq "^local +2 +2 +0$" <<<"$out"; then
	ok "text: nodes, actors with their counts and p50/p99 per method, tickets, uptime"
else
	not_ok "text" "rc=$rc: $out"
fi

# 4. Prometheus, parsed by prometheus_client; the same counts.
if "$status" --log-dir "$work/logs" --prometheus >"$work/metrics.txt" 2>"$work/err" &&
	err=$("$py" - "$work/metrics.txt" $ECHOES $FAILS $NAPS 2>&1 <<'PY'
import sys
from prometheus_client.parser import text_string_to_metric_families
f, echoes, fails, naps = sys.argv[1], *map(int, sys.argv[2:])
fam = {m.name: m for m in text_string_to_metric_families(open(f).read())}
def value(family, suffix="", **labels):
    got = [s.value for s in fam[family].samples
           if s.name == family + suffix and all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(got) == 1, (family, labels, got)
    return got[0]
assert fam["spoke_method_calls"].type == "counter"
assert fam["spoke_method_latency_seconds"].type == "histogram"
assert value("spoke_method_calls", "_total", actor="p-0", method="echo") == echoes
assert value("spoke_method_errors", "_total", actor="p-0", method="fail") == fails
assert value("spoke_method_latency_seconds", "_count", actor="p-0", method="nap") == naps
assert value("spoke_method_latency_seconds", "_bucket", actor="p-0", method="nap", le="+Inf") == naps
assert value("spoke_method_latency_seconds", "_bucket", actor="p-0", method="nap", le="0.016384") == 0
assert value("spoke_method_calls", "_total", actor="p-1", method="echo") == 0
assert value("spoke_node_gpus_free", node="local") == 0
assert value("spoke_actors") == 4
assert value("spoke_hub_uptime_seconds") > 0
PY
); then
	ok "--prometheus: parsed by prometheus_client, the same counts"
else
	not_ok "--prometheus" "$(cat "$work/err") $err"
fi

# 5. -o replaces a file (node_exporter's textfile collector).
echo old >"$work/spoke.prom"
if "$status" --log-dir "$work/logs" --prometheus -o "$work/spoke.prom" >"$work/stdout" 2>"$work/err" &&
	[ ! -s "$work/stdout" ] && [ "$(stat -c %a "$work/spoke.prom")" = 644 ] &&
	grep -q "^spoke_method_calls_total{actor=\"p-0\",method=\"echo\"} $ECHOES$" "$work/spoke.prom" &&
	[ -z "$(find "$work" -maxdepth 1 -name 'spoke.prom?*')" ]; then
	ok "-o FILE: the output written into FILE"
else
	not_ok "-o FILE" "$(cat "$work/err" "$work/spoke.prom" 2>&1 | head -5)"
fi

# 6. Without the job's token: refused at the handshake, nothing changes.
hub=$(cat "$work/logs/hub.addr")
out=$(SPOKE_HUB=$hub SPOKE_TOKEN=not-the-token SPOKE_TOKEN_FILE= "$status" --json 2>&1)
rc=$?
"$status" --log-dir "$work/logs" --json >"$work/after.json" 2>&1
if [ $rc -eq 1 ] && ! grep -q '"actors"' <<<"$out" && grep -qi "auth\|token\|refused" <<<"$out" &&
	check_json "$work/after.json" >/dev/null 2>&1; then
	ok "a caller without the token gets nothing (status 1), the counts stay the calls made"
else
	not_ok "without the token" "rc=$rc: $out"
fi

# 7. --watch redraws until SIGTERM, then ends within a second with status 0.
"$status" --log-dir "$work/logs" --watch=1 >"$work/watch.out" 2>&1 &
wpid=$!
sleep 2.5
t0=$(date +%s%N)
kill -TERM $wpid
wait $wpid
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
rounds=$(grep -c "^hub: up" "$work/watch.out")
if [ $rc -eq 0 ] && [ $ms -lt 1000 ] && [ "$rounds" -ge 2 ]; then
	ok "--watch: $rounds rounds, SIGTERM ended it in $ms ms with status 0"
else
	not_ok "--watch" "rc=$rc ms=$ms rounds=$rounds: $(head -5 "$work/watch.out")"
fi

# 8. Bad usage: status 2 and one line.
out=$("$status" --watch=abc 2>&1)
rc=$?
out2=$("$status" --job 'x;y' 2>&1)
rc2=$?
if [ $rc -eq 2 ] && [ $rc2 -eq 2 ] && [ "$(wc -l <<<"$out")" -eq 1 ]; then
	ok "bad usage: status 2, one line ($out)"
else
	not_ok "bad usage" "rc=$rc: $out / rc=$rc2: $out2"
fi

touch "$work/done"
wait $lpid
rc=$?
lpid=
if [ $rc -eq 0 ]; then
	ok "the job ends with its driver"
else
	not_ok "the job's end" "rc=$rc: $(tail -5 "$work/launch.out")"
fi
# 9. Once the job is over: a clear failure, status 1.
out=$("$status" --log-dir "$work/logs" 2>&1)
rc=$?
if [ $rc -eq 1 ] && grep -q "no hub address" <<<"$out"; then
	ok "after the job: status 1 ($out)"
else
	not_ok "after the job" "rc=$rc: $out"
fi
# 10. SPOKE_STATS_MS=0: nothing counted, no figures; a bad value fails the
# spawn, naming the variable and the value.
cat >"$work/off.yaml" <<YAML
name: off
gang: 1x1
timeouts:
  shutdown: 2s
actors:
  - name: p
    type: Probe
    module: $probe
    per_node: 1
driver: sh -c '"$calls" p-0 5 8 0 0 0 >/dev/null && sleep 0.5 && "$status" --json >"$work/off.json"'
YAML
SPOKE_STATS_MS=0 "$launch" --local --log-dir "$work/logs-off" "$work/off.yaml" >"$work/off.out" 2>&1
rc=$?
if [ $rc -eq 0 ] && err=$("$py" -c '
import json, sys
a = json.load(open(sys.argv[1]))["actors"][0]
assert a["name"] == "p-0" and a["calls"] == 0 and a["methods"] == [] and a["figures_age_ms"] is None, a
' "$work/off.json" 2>&1); then
	ok "SPOKE_STATS_MS=0: no figures (calls 0, figures_age_ms null)"
else
	not_ok "SPOKE_STATS_MS=0" "rc=$rc: ${err:-} $(tail -3 "$work/off.out")"
fi
out=$(SPOKE_STATS_MS=abc "$launch" --local --log-dir "$work/logs-bad" "$work/off.yaml" 2>&1)
rc=$?
if [ $rc -ne 0 ] && grep -q "SPOKE_STATS_MS=abc" <<<"$out"; then
	ok "SPOKE_STATS_MS=abc fails the spawn, naming it (status $rc)"
else
	not_ok "SPOKE_STATS_MS=abc" "rc=$rc: $out"
fi
echo "1..$checks"
[ $failures -eq 0 ]
