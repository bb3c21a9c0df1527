"""py-bench.py - what the Python binding adds to a call (not a test).

Run by `make bench` through tests/python/run.sh, as the driver of a
spoke-launch --local job offering the Probe actor type.  It spawns one Probe
actor and measures, in alternating rounds so that drift in the machine's
load hits both sides alike, the 64-byte echo call

  - from C (tests/bench/py-bench-ref, a process of its own, same actor);
  - from Python: actor.call() (bytes in, bytes out) and actor.call_into()
    (into a caller's bytearray);

each in blocking mode (poll_us 0) and polling mode (poll_us 200), and then
the rate of pipelined call_async() (a window of 64) from Python.  Prints the
medians and the difference Python - C per call; the issue's target is at
most 10 us added in polling mode (reported as PASS or MISS, not failed).

Environment: SPOKE_BUILDDIR (the build tree), PY_BENCH_CALLS (calls per
round, default 20000), PY_BENCH_ROUNDS (default 5).
"""

import os
import statistics
import subprocess
import sys
import time

import spoke

ECHO = 1
CALLS = int(os.environ.get("PY_BENCH_CALLS", "20000"))
ROUNDS = int(os.environ.get("PY_BENCH_ROUNDS", "5"))
REF = os.path.join(os.environ["SPOKE_BUILDDIR"], "tests", "bench", "py-bench-ref")


def c_round(name, poll_us):
    out = subprocess.run([REF, name, str(CALLS), str(poll_us)], capture_output=True,
                         text=True, timeout=300)
    if out.returncode != 0:
        sys.exit("py-bench: %s exited %d: %s" % (REF, out.returncode, out.stderr.strip()))
    return float(out.stdout.split()[1])


def py_round(a, fn):
    for _ in range(200):
        fn()
    t0 = time.perf_counter()
    for _ in range(CALLS):
        fn()
    return (time.perf_counter() - t0) * 1e6 / CALLS


def async_rate(a, window=64):
    n = CALLS * 2
    req = b"x" * 64
    t0 = time.perf_counter()
    inflight = []
    for i in range(n):
        inflight.append(a.call_async(ECHO, req))
        if len(inflight) == window:
            for f in inflight:
                f.result()
            inflight = []
    for f in inflight:
        f.result()
    return n / (time.perf_counter() - t0)


def main():
    name = "py-bench-%d" % os.getpid()
    with spoke.Client() as c:
        c.spawn("Probe", name)
        try:
            with c.actor(name) as a:
                req = b"x" * 64
                out = bytearray(128)
                assert a.call(ECHO, req) == req
                rows = []
                for mode, poll in (("blocking", 0), ("polling", 200)):
                    a.set_poll(poll)
                    cs, calls, intos = [], [], []
                    for _ in range(ROUNDS):
                        cs.append(c_round(name, poll))
                        calls.append(py_round(a, lambda: a.call(ECHO, req)))
                        intos.append(py_round(a, lambda: a.call_into(ECHO, req, out)))
                    rows.append((mode, statistics.median(cs), statistics.median(calls),
                                 statistics.median(intos)))
                a.set_poll(0)
                rate = statistics.median(async_rate(a) for _ in range(3))
        finally:
            c.kill(name)
    print("py-bench: 64 B echo call, %d calls x %d rounds, medians (us per call)"
          % (CALLS, ROUNDS))
    print("%-9s %8s %12s %8s %14s %8s" % ("mode", "C", "Py call()", "+us", "Py call_into",
                                           "+us"))
    for mode, cu, pu, iu in rows:
        print("%-9s %8.2f %12.2f %8.2f %14.2f %8.2f" % (mode, cu, pu, pu - cu, iu, iu - cu))
    poll = rows[1]
    added = poll[2] - poll[1]
    print("py-bench: call_async pipelined (window 64, blocking): %.0f calls/s" % rate)
    print("py-bench: polling mode, Python adds %.2f us per call: %s (target <= 10 us)"
          % (added, "PASS" if added <= 10 else "MISS"))


if __name__ == "__main__":
    main()
