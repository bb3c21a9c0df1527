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

Then, in the same run and the same way:
  - the 64-byte call through the C++ binding (tests/bench/cpp-bench-ref,
    spoke.hpp's call<std::vector<uint8_t>>) next to C's (target: within
    noise);
  - the same call from C to an actor written in Python (PyProbe of
    tests/python/pyactors, served by spoke-worker-python) next to the C
    Probe: what a Python actor adds;
  - chunks per second of a 10,000-chunk stream of 16 B from a C actor
    (the harness's Keeper, a thread emitting) and from a Python generator
    method (PyProbe's chunks), each read from C and from Python.

Environment: SPOKE_BUILDDIR (the build tree), PY_BENCH_CALLS (calls per
round, default 20000), PY_BENCH_ROUNDS (default 5).
"""

import os
import statistics
import struct
import subprocess
import sys
import time

import spoke

ECHO = 1
CALLS = int(os.environ.get("PY_BENCH_CALLS", "20000"))
ROUNDS = int(os.environ.get("PY_BENCH_ROUNDS", "5"))
REF = os.path.join(os.environ["SPOKE_BUILDDIR"], "tests", "bench", "py-bench-ref")
CPP_REF = os.path.join(os.environ["SPOKE_BUILDDIR"], "tests", "bench", "cpp-bench-ref")
CHUNKS = 10000
KEEP_STREAM = 52     # tests/harness/kept.h
PY_CHUNKS = 17       # tests/python/pyactors/basic.py


def c_round(name, poll_us, ref=REF):
    out = subprocess.run([ref, name, str(CALLS), str(poll_us)], capture_output=True,
                         text=True, timeout=300)
    if out.returncode != 0:
        sys.exit("py-bench: %s exited %d: %s" % (ref, out.returncode, out.stderr.strip()))
    return float(out.stdout.split()[1])


def c_stream(name, method):
    out = subprocess.run([REF, "--stream", name, str(method), str(CHUNKS)],
                         capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        sys.exit("py-bench: %s --stream exited %d: %s" % (REF, out.returncode,
                                                          out.stderr.strip()))
    return float(out.stdout.split()[1])


def py_stream(a, method):
    req = struct.pack("<III", CHUNKS, 16, 1000)
    t0 = time.perf_counter()
    n = 0
    for chunk in a.stream(method, req):
        n += 1
    if n != CHUNKS:
        sys.exit("py-bench: a stream of %d chunks, not %d" % (n, CHUNKS))
    return CHUNKS / (time.perf_counter() - t0)


def pair(label, fa, fb, rounds=ROUNDS):
    """Medians of fa() and fb(), in alternating rounds."""
    xs, ys = [], []
    for _ in range(rounds):
        xs.append(fa())
        ys.append(fb())
    return statistics.median(xs), statistics.median(ys)


def more(c, probe):
    """The C++ binding, a Python actor and streams, next to their C
    baselines (printed as they come)."""
    print("py-bench: C++ binding (spoke.hpp) against C, 64 B echo, us per call")
    if os.path.exists(CPP_REF):
        for mode, poll in (("blocking", 0), ("polling", 200)):
            cu, xu = pair(mode, lambda: c_round(probe, poll), lambda: c_round(probe, poll, CPP_REF))
            print("  %-9s C %7.2f   C++ %7.2f   C++ - C %+6.2f us (%+.1f%%)"
                  % (mode, cu, xu, xu - cu, (xu - cu) * 100 / cu))
    else:
        print("  skipped: %s not built (no C++17 compiler)" % CPP_REF)
    py = "py-bench-py-%d" % os.getpid()
    keeper = "py-bench-keeper-%d" % os.getpid()
    c.spawn(None, py, python="pyactors.basic:Probe")
    c.spawn("Keeper", keeper)
    try:
        print("py-bench: an actor in Python (spoke-worker-python) against one in C, "
              "64 B echo from C, us per call")
        with c.actor(py) as pa, c.actor(keeper) as ka:
            assert pa.call(ECHO, b"x" * 64) == b"x" * 64
            for mode, poll in (("blocking", 0), ("polling", 200)):
                cu, pu = pair(mode, lambda: c_round(probe, poll), lambda: c_round(py, poll))
                print("  %-9s C actor %7.2f   Python actor %7.2f   Python adds %+6.2f us"
                      % (mode, cu, pu, pu - cu))
            print("py-bench: a stream of %d chunks of 16 B, chunks/s (medians of %d)"
                  % (CHUNKS, ROUNDS))
            cc, cp = pair("C reader", lambda: c_stream(keeper, KEEP_STREAM),
                          lambda: c_stream(py, PY_CHUNKS))
            pc, pp = pair("Py reader", lambda: py_stream(ka, KEEP_STREAM),
                          lambda: py_stream(pa, PY_CHUNKS))
            print("  %-16s %12s %16s" % ("reader", "C actor", "Python actor"))
            print("  %-16s %12.0f %16.0f   (Python/C %.2fx)" % ("C", cc, cp, cp / cc))
            print("  %-16s %12.0f %16.0f   (Python/C %.2fx)" % ("Python", pc, pp, pp / pc))
    finally:
        c.kill(py)
        c.kill(keeper)


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
            report(rows, rate)
            more(c, name)
        finally:
            c.kill(name)


def report(rows, rate):
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
