"""test_actors.py - actors written in Python (runtime/python/spoke/server.py,
served by spoke-worker-python), called from a Python driver: run by
tests/python/run.sh as the driver of a spoke-launch --local job whose
workers find tests/python/pyactors on $PYTHONPATH.  Each test spawns the
actors it calls (client.spawn(..., python="pyactors.basic:Probe"))."""

import itertools
import os
import struct
import threading
import time
import unittest

import spoke
import spoke.worker
from pyactors import basic
from pyactors.basic import (ARGS, ASYNC_COUNT, ASYNC_FAIL, BAD_REPLY, BLOCK, COUNT, CRASH,
                            ECHO, ENDLESS, FAIL, FAIL_CODE, GPUS, NONE, PID, SLEEP, STATS)

_names = itertools.count()
SPEC = "pyactors.basic:Probe"


def wait_for(what, fn, timeout=10.0):
    """Polls fn() until it is true (bounded); its last value."""
    end = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() > end:
            return v
        time.sleep(0.02)


def actor_processes(name):
    """Pids of the processes whose environment says SPOKE_ACTOR=name."""
    key = b"SPOKE_ACTOR=" + name.encode() + b"\0"
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/environ" % pid, "rb") as f:
                if key in f.read() + b"\0":
                    found.append(int(pid))
        except OSError:
            pass
    return found


class Job(unittest.TestCase):
    def setUp(self):
        self.client = spoke.Client(timeout=30)
        self.spawned = []

    def tearDown(self):
        for name in self.spawned:
            try:
                self.client.kill(name)
            except spoke.Error:
                pass
        self.client.close()

    def spawn(self, spec=SPEC, args=b"", gpus=0, type=None):
        name = "pya-%d-%d" % (os.getpid(), next(_names))
        self.client.spawn(type, name, args=args, gpus=gpus, python=spec)
        self.spawned.append(name)
        a = self.client.actor(name)
        self.addCleanup(a.close)
        return name, a

    def stats(self, a):
        return tuple(int(x) for x in a.call(STATS).split())


class TestPlain(Job):
    def test_echo_args_and_none(self):
        _, a = self.spawn(args=b"model=tiny")
        for n in (0, 1, 64, 4096, 1 << 20):
            data = os.urandom(n)
            self.assertEqual(a.call(ECHO, data), data)
        self.assertEqual(a.call(ARGS), b"model=tiny")
        self.assertEqual(a.call(NONE, b"x"), b"")

    def test_type_from_the_decorator_or_given(self):
        self.assertEqual(spoke.worker.type_of(SPEC), "PyProbe")
        _, a = self.spawn(type="PyProbe")
        self.assertEqual(a.call(ECHO, b"hi"), b"hi")
        with self.assertRaises(spoke.NoType) as cm:
            self.spawn(type="NotPyProbe")
        self.assertIn("NotPyProbe", cm.exception.message)
        self.assertIn("PyProbe", cm.exception.message)  # what the worker knows

    def test_gpus_are_set_before_python_starts(self):
        _, a = self.spawn(gpus=2)
        gpus = a.call(GPUS).decode()
        self.assertEqual(len(gpus.split(",")), 2, gpus)

    def test_16_threads_and_async_calls(self):
        _, a = self.spawn()
        errors = []

        def run(k):
            try:
                for i in range(50):
                    d = b"%d-%d" % (k, i)
                    if a.call(ECHO, d) != d:
                        errors.append("thread %d call %d: wrong reply" % (k, i))
            except Exception as e:  # noqa: BLE001 (reported below)
                errors.append(repr(e))
        threads = [threading.Thread(target=run, args=(k,)) for k in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])
        futs = [a.call_async(ECHO, b"%d" % i) for i in range(64)]
        self.assertEqual([f.result(10) for f in futs], [b"%d" % i for i in range(64)])

    def test_exception_fails_the_call_and_the_worker_goes_on(self):
        _, a = self.spawn()
        with self.assertRaises(spoke.MethodError) as cm:
            a.call(FAIL, b"abc")
        e = cm.exception
        self.assertIn("method fail of actor", e.message)
        self.assertIn("ValueError: bad request b'abc'", e.message)
        self.assertEqual(e.status, spoke.MethodError.code)
        with self.assertRaises(spoke.MethodError) as cm:
            a.call(FAIL_CODE, b"8 GPUs")
        self.assertEqual(cm.exception.status, spoke.NoResources.code)
        self.assertIn("NoResources", cm.exception.message)
        self.assertIn("no room for 8 GPUs", cm.exception.message)
        with self.assertRaises(spoke.MethodError) as cm:
            a.call(BAD_REPLY)
        self.assertIn("TypeError", cm.exception.message)
        self.assertIn("not a bytes-like object", cm.exception.message)
        with self.assertRaises(spoke.NoMethod):
            a.call(99)
        self.assertEqual(a.call(ECHO, b"still here"), b"still here")

    def test_max_concurrency_runs_4_at_once_never_5(self):
        _, a = self.spawn(spec="pyactors.basic:Conc")
        out = []
        threads = [threading.Thread(target=lambda: out.append(a.call(1, b"300")))
                   for _ in range(8)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        self.assertEqual(out, [b"napped"] * 8)
        self.assertEqual(a.call(2), b"4")
        self.assertLess(time.monotonic() - t0, 2.4 - 0.1)  # not 8 x 0.3 s one at a time

    def test_a_request_kept_past_its_method_is_released_not_read(self):
        _, a = self.spawn()
        a.call(basic.KEEP_REQ, b"x" * 1000)
        with self.assertRaises(spoke.MethodError) as cm:
            a.call(basic.READ_KEPT)
        self.assertIn("ValueError", cm.exception.message)
        self.assertIn("released", cm.exception.message)

    def test_crash_is_a_dead_actor(self):
        name, a = self.spawn()
        pid = struct.unpack("<I", a.call(PID))[0]
        with self.assertRaises(spoke.DeadActor):
            a.call(CRASH, timeout=10)
        with self.assertRaises((spoke.DeadActor, spoke.NoActor)):
            a.call(ECHO, b"x", timeout=10)
        self.assertTrue(wait_for("pid gone", lambda: not os.path.exists("/proc/%d" % pid)))

    def test_signal_is_a_dead_actor(self):
        _, a = self.spawn()
        pid = struct.unpack("<I", a.call(PID))[0]
        os.kill(pid, 9)
        with self.assertRaises(spoke.DeadActor):
            a.call(ECHO, b"x", timeout=10)


class TestInit(Job):
    def test_exception_in_init_fails_the_spawn_and_nothing_runs(self):
        free = {n.name: n.free_gpus for n in self.client.nodes()}
        name = "pya-bad-%d" % os.getpid()
        with self.assertRaises(spoke.SpawnError) as cm:
            self.client.spawn(None, name, args=b"/nowhere", gpus=1,
                              python="pyactors.basic:BadInit")
        msg = cm.exception.message
        self.assertIn("init of %s (PyBadInit) failed" % name, msg)
        self.assertIn("RuntimeError: no model at b'/nowhere'", msg)
        with self.assertRaises((spoke.NoActor, spoke.DeadActor)):  # "failed to start"
            self.client.actor(name)
        self.assertEqual(wait_for("worker gone", lambda: not actor_processes(name)), True)
        self.assertEqual({n.name: n.free_gpus for n in self.client.nodes()}, free)

    def test_bad_specs(self):
        for spec, words in [("pyactors.nosuch:X", "cannot import pyactors.nosuch"),
                            ("pyactors.basic:Nope", "has no Nope")]:
            with self.assertRaises(spoke.Error) as cm:
                self.client.spawn("PyProbe", "pya-spec-%d" % next(_names), python=spec)
            self.assertIn(words, cm.exception.message)
        for spec in ("not a spec", "a:b:c", "", "pkg.:X"):
            with self.assertRaises(spoke.InvalidArgument):
                self.client.spawn(None, "pya-x", python=spec)
        with self.assertRaises(spoke.InvalidArgument) as cm:
            self.client.spawn(None, "pya-x", python="pyactors.nosuch:X")
        self.assertIn("not found", cm.exception.message)
        with self.assertRaises(spoke.InvalidArgument):
            self.client.spawn(None, "pya-x", python=SPEC, module="x.so")


class TestStreams(Job):
    def test_generator_streams_its_yields(self):
        _, a = self.spawn()
        self.assertEqual(list(a.stream(COUNT, b"100")), [b"%d" % i for i in range(100)])
        self.assertEqual(list(a.stream(COUNT, b"0")), [])
        self.assertEqual(list(a.stream(basic.CHUNKS, struct.pack("<III", 300, 16, 0))),
                         [bytes(16)] * 300)
        # called without a stream: the chunks joined
        self.assertEqual(a.call(COUNT, b"12"), b"".join(b"%d" % i for i in range(12)))

    def test_async_generator_streams(self):
        _, a = self.spawn()
        self.assertEqual(list(a.stream(ASYNC_COUNT, b"50")), [b"a%d" % i for i in range(50)])

    def test_cancel_closes_the_generator(self):
        _, a = self.spawn()
        s = a.stream(ENDLESS)
        got = [next(s) for _ in range(5)]
        self.assertEqual(got, [b"chunk %d" % i for i in range(5)])
        s.cancel()
        self.assertEqual(wait_for("closed", lambda: self.stats(a)[0] == 1), True)
        self.assertEqual(a.call(ECHO, b"after"), b"after")

    def test_stream_of_a_crashing_actor(self):
        _, a = self.spawn()
        s = a.stream(ENDLESS)
        next(s)
        a2 = self.client.actor(a.name)
        self.addCleanup(a2.close)
        with self.assertRaises(spoke.DeadActor):
            a2.call(CRASH, timeout=10)
        with self.assertRaises(spoke.DeadActor):
            for _ in range(100000):
                next(s)
        s.close()


class TestAsync(Job):
    def test_async_method_is_a_deferred_reply(self):
        _, a = self.spawn()
        # pipelined on one connection: kept calls are answered in order
        futs = [a.call_async(SLEEP, b"%d" % (50 - i * 10)) for i in range(5)]
        self.assertEqual([f.result(10) for f in futs],
                         [b"slept %d" % (50 - i * 10) for i in range(5)])
        # calls from other threads run side by side on the asyncio loop
        t0 = time.monotonic()
        out = []
        threads = [threading.Thread(target=lambda: out.append(a.call(SLEEP, b"300")))
                   for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        self.assertEqual(out, [b"slept 300"] * 6)
        self.assertLess(time.monotonic() - t0, 1.5)  # not 6 x 0.3 s

    def test_cancel_cancels_the_task(self):
        _, a = self.spawn()
        f = a.call_async(SLEEP, b"10000")
        time.sleep(0.2)
        f.cancel()
        with self.assertRaises(spoke.Cancelled):
            f.result(5)
        self.assertEqual(wait_for("cancelled", lambda: self.stats(a)[1] == 1), True)

    def test_deadline_cancels_the_task(self):
        _, a = self.spawn()
        t0 = time.monotonic()
        with self.assertRaises(spoke.Timeout):
            a.call(SLEEP, b"10000", timeout=0.3)
        self.assertLess(time.monotonic() - t0, 3)
        self.assertEqual(wait_for("cancelled", lambda: self.stats(a)[1] == 1), True)

    def test_async_exception(self):
        _, a = self.spawn()
        with self.assertRaises(spoke.MethodError) as cm:
            a.call(ASYNC_FAIL)
        self.assertIn("KeyError: 'no such prompt'", cm.exception.message)
        self.assertEqual(a.call(SLEEP, b"1"), b"slept 1")

    def test_plain_method_blocks_only_its_own_loop(self):
        _, a = self.spawn()
        self.assertEqual(a.call(BLOCK, b"50"), b"blocked")


class TestDecorators(unittest.TestCase):
    def test_bad_uses(self):
        with self.assertRaises(ValueError):
            spoke.actor("")
        with self.assertRaises(ValueError):
            spoke.actor("x" * 64)
        with self.assertRaises(ValueError):
            spoke.method(-1)
        with self.assertRaises(ValueError):
            spoke.actor("T", max_concurrency=-1)

        @spoke.actor("TwoOnes")
        class Two:
            @spoke.method(1)
            def a(self, req):
                return b""

            @spoke.method(1)
            def b(self, req):
                return b""
        with self.assertRaises(TypeError) as cm:
            spoke.server.methods_of(Two)
        self.assertIn("method id 1 is both", str(cm.exception))
        self.assertEqual([m[0] for m in spoke.server.methods_of(basic.Probe)],
                         list(range(1, 20)))


if __name__ == "__main__":
    unittest.main(verbosity=2)
