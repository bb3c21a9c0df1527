"""test_client.py - the Python binding's client side (runtime/python/spoke),
run by tests/python/run.sh as the driver of a spoke-launch --local job: one
agent with 8 GPUs that offers the harness's actor module (the Probe type,
tests/harness/test_actor.c), $SPOKE_HUB and the job's token in the
environment.  Each test spawns the actors it calls."""

import array
import asyncio
import ctypes
import itertools
import os
import struct
import threading
import time
import unittest

import spoke
from spoke import _buffers

# tests/harness/probe.h
ECHO, GPUS, PID, CRASH, NAP, FAIL, FILL, SUM, SINK = 1, 2, 3, 4, 5, 6, 7, 8, 9
FAIL_WITH = 20

EINVAL = -1016
_names = itertools.count()


def probe_byte(seed, i):
    return (seed + i * 131 + (i >> 12)) & 0xFF


def fill_expected(n, seed, start=0):
    """Bytes start..n-1 of the Probe's fill method's reply."""
    return bytes(probe_byte(seed, i) for i in range(start, n))


def probe_sum(data):
    h = 1469598103934665603
    for b in data:
        h = ((h ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h


class Job(unittest.TestCase):
    """A client to the job for every test, and actors it spawns (killed at
    the end)."""

    def setUp(self):
        self.client = spoke.Client(timeout=20)
        self.spawned = []

    def tearDown(self):
        for name in self.spawned:
            try:
                self.client.kill(name)
            except spoke.Error:
                pass
        self.client.close()

    def probe(self, gpus=0):
        name = "py-%d-%d" % (os.getpid(), next(_names))
        self.client.spawn("Probe", name, gpus=gpus)
        self.spawned.append(name)
        return name

    def actor(self, gpus=0):
        a = self.client.actor(self.probe(gpus))
        self.addCleanup(a.close)
        return a


class TestCalls(Job):
    def test_echo_from_every_kind_of_buffer(self):
        a = self.actor()
        payload = bytes(range(256)) * 4
        self.assertEqual(a.call(ECHO, payload), payload)
        self.assertEqual(a.call(ECHO, bytearray(payload)), payload)
        self.assertEqual(a.call(ECHO, memoryview(payload)), payload)
        self.assertEqual(a.call(ECHO, memoryview(payload)[10:20]), payload[10:20])
        self.assertEqual(a.call(ECHO, memoryview(bytearray(payload))[5:]), payload[5:])
        ints = array.array("I", [1, 2, 3])
        self.assertEqual(a.call(ECHO, ints), ints.tobytes())
        strided = memoryview(payload)[::2]  # not contiguous: copied once
        self.assertEqual(a.call(ECHO, strided), payload[::2])
        self.assertEqual(a.call(ECHO), b"")
        self.assertEqual(a.call(ECHO, b""), b"")
        self.assertEqual(a.call(SUM, payload), struct.pack("<Q", probe_sum(payload)))
        self.assertEqual(a.call(SINK, bytes(1 << 20)), struct.pack("<I", 1 << 20))

    def test_requests_are_not_copied(self):
        # the pointer handed to C is the object's own memory
        ba = bytearray(b"0123456789")
        with _buffers.borrow(ba, "data") as b:
            self.assertEqual(b.ptr, ctypes.addressof((ctypes.c_char * 10).from_buffer(ba)))
            self.assertEqual(b.len, 10)
        data = b"abcdefghij" * 10
        base = ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p).value
        with _buffers.borrow(memoryview(data)[7:], "data") as b:  # read-only slice
            self.assertEqual((b.ptr, b.len), (base + 7, len(data) - 7))
        self.assertIs(_buffers.borrow(data, "data").ptr, data)

    def test_replies_of_any_size(self):
        a = self.actor()
        big = a.call_async(FILL, struct.pack("<IB", 5 << 20, 9))  # no reply_cap needed
        self.assertEqual(big.result(timeout=20)[-100:], fill_expected(5 << 20, 9, (5 << 20) - 100))
        for n in (0, 1, 65536, 65537, 3 << 20, 100):
            req = struct.pack("<IB", n, 7)
            reply = a.call(FILL, req)
            self.assertEqual(len(reply), n)
            self.assertEqual(reply[:300], fill_expected(min(n, 300), 7))
            self.assertEqual(reply[-3:], fill_expected(n, 7, max(n - 3, 0)))

    def test_call_into(self):
        a = self.actor()
        out = bytearray(1000)
        n = a.call_into(FILL, struct.pack("<IB", 600, 3), out)
        self.assertEqual(n, 600)
        self.assertEqual(bytes(out[:600]), fill_expected(600, 3))
        mv = memoryview(out)[100:200]
        self.assertEqual(a.call_into(ECHO, b"x" * 100, mv), 100)
        self.assertEqual(bytes(out[100:200]), b"x" * 100)
        arr = array.array("d", [0.0] * 4)
        self.assertEqual(a.call_into(ECHO, struct.pack("<4d", 1, 2, 3, 4), arr), 32)
        self.assertEqual(list(arr), [1.0, 2.0, 3.0, 4.0])
        # too small: SPOKE_ENOSPC, saying how large the reply is
        with self.assertRaises(spoke.NoSpace) as cm:
            a.call_into(FILL, struct.pack("<IB", 5000, 3), bytearray(10))
        self.assertEqual(cm.exception.reply_len, 5000)
        self.assertEqual(cm.exception.name, "SPOKE_ENOSPC")
        self.assertIn("5000", str(cm.exception))
        with self.assertRaises(TypeError) as cm:
            a.call_into(ECHO, b"x", b"read-only bytes")
        self.assertIn("out_buffer", str(cm.exception))
        # the handle still works
        self.assertEqual(a.call(ECHO, b"after"), b"after")

    def test_call_async(self):
        a = self.actor()
        futs = [a.call_async(ECHO, b"%d" % i) for i in range(200)]
        for i, f in enumerate(futs):
            self.assertEqual(f.result(timeout=10), b"%d" % i)
            self.assertTrue(f.done())
            self.assertEqual(f.result(), b"%d" % i)  # the same outcome again
        f = a.call_async(FILL, struct.pack("<IB", 100000, 1), reply_cap=200000)
        self.assertEqual(f.result(), fill_expected(100000, 1))
        f = a.call_async(FILL, struct.pack("<IB", 100, 1), reply_cap=10)
        with self.assertRaises(spoke.NoSpace) as cm:
            f.result()
        self.assertEqual(cm.exception.reply_len, 100)
        self.assertIsInstance(f.exception(), spoke.NoSpace)
        # a future given up by a wait that times out
        f = a.call_async(NAP, struct.pack("<I", 800))
        t0 = time.monotonic()
        with self.assertRaises(spoke.Timeout):
            f.result(timeout=0.1)
        self.assertLess(time.monotonic() - t0, 0.6)
        self.assertTrue(f.done())
        with self.assertRaises(spoke.Timeout):
            f.result()
        self.assertEqual(a.call(ECHO, b"later", timeout=5), b"later")

    def test_dropped_futures_stay_alive_until_done(self):
        a = self.actor()
        for i in range(50):
            a.call_async(ECHO, b"fire and forget %d" % i)  # never waited
        self.assertEqual(a.call_async(ECHO, b"last").result(timeout=10), b"last")

    def test_asyncio(self):
        a = self.actor()

        async def main():
            one = await a.call_async(ECHO, b"one")
            many = await asyncio.gather(*(a.call_async(ECHO, b"%d" % i) for i in range(64)))
            # the loop keeps running while a call waits
            ticks = 0

            async def ticker():
                nonlocal ticks
                while True:
                    await asyncio.sleep(0.01)
                    ticks += 1

            t = asyncio.ensure_future(ticker())
            napped = await a.call_async(NAP, struct.pack("<I", 300))
            t.cancel()
            done = a.call_async(ECHO, b"ready")
            done.result()
            again = await done  # a complete future is awaitable too
            return one, many, napped, ticks, again

        one, many, napped, ticks, again = asyncio.run(main())
        self.assertEqual(one, b"one")
        self.assertEqual(many, [b"%d" % i for i in range(64)])
        self.assertEqual(napped, struct.pack("<I", 300))
        self.assertGreater(ticks, 5)
        self.assertEqual(again, b"ready")

        async def failing():
            await a.call_async(999)

        with self.assertRaises(spoke.NoMethod):
            asyncio.run(failing())

    def test_16_threads_on_one_handle(self):
        a = self.actor()
        errors = []

        def worker(k):
            try:
                for i in range(200):
                    msg = b"thread %d call %d " % (k, i) + bytes([k]) * (i % 50)
                    if i % 3 == 0:
                        got = a.call_async(ECHO, msg).result(timeout=10)
                    elif i % 3 == 1:
                        out = bytearray(len(msg))
                        a.call_into(ECHO, msg, out, timeout=10)
                        got = bytes(out)
                    else:
                        got = a.call(ECHO, msg, timeout=10)
                    if got != msg:
                        errors.append("thread %d call %d: %r" % (k, i, got))
            except Exception as e:  # reported below
                errors.append("thread %d: %r" % (k, e))

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertFalse(any(t.is_alive() for t in threads), "threads still running")
        self.assertEqual(errors, [])

    def test_the_gil_is_released_while_a_call_waits(self):
        # Four actors nap 400 ms each, called from four threads: the naps
        # overlap only if each thread lets go of the GIL while it waits.
        actors = [self.actor() for _ in range(4)]
        for a in actors:
            a.call(ECHO, b"warm")  # connected
        t0 = time.monotonic()
        threads = [threading.Thread(target=a.call, args=(NAP, struct.pack("<I", 400)))
                   for a in actors]
        for t in threads:
            t.start()
        # meanwhile this thread runs Python code
        spins = 0
        while any(t.is_alive() for t in threads) and time.monotonic() - t0 < 10:
            spins += 1
        for t in threads:
            t.join(10)
        elapsed = time.monotonic() - t0
        self.assertLess(elapsed, 1.2, "4 naps of 0.4 s took %.2f s: calls hold the GIL" % elapsed)
        self.assertGreater(spins, 1000)


class TestErrors(Job):
    def test_error_attributes(self):
        e = spoke.Error(-1007)
        self.assertEqual((e.code, e.name), (-1007, "SPOKE_EDEAD"))
        self.assertIn("dead", e.message)
        self.assertEqual(str(e), "SPOKE_EDEAD: " + e.message)
        self.assertIs(spoke.errors.error_class(-1007), spoke.DeadActor)
        self.assertEqual(spoke.Error(-111).name, "ECONNREFUSED")
        for cls, base in ((spoke.Timeout, TimeoutError), (spoke.InvalidArgument, ValueError),
                          (spoke.NoActor, LookupError), (spoke.AuthError, PermissionError),
                          (spoke.HubError, ConnectionError)):
            self.assertTrue(issubclass(cls, spoke.Error) and issubclass(cls, base), cls)
        import pickle
        m = pickle.loads(pickle.dumps(spoke.MethodError(-1017, "m", -5)))
        self.assertEqual((type(m), m.status, m.message), (spoke.MethodError, -5, "m"))

    def test_library_not_found(self):
        import subprocess
        import sys
        env = dict(os.environ, SPOKE_LIBRARY="/nonexistent/libspoke.so")
        out = subprocess.run([sys.executable, "-c", "import spoke"], env=env,
                             capture_output=True, text=True, timeout=60)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("SPOKE_LIBRARY=/nonexistent/libspoke.so: no such file", out.stderr)
        self.assertTrue(spoke.library_path)

    def test_dead_actor(self):
        a = self.actor()
        with self.assertRaises(spoke.DeadActor) as cm:
            a.call(CRASH)
        self.assertEqual(cm.exception.code, -1007)
        self.assertTrue(cm.exception.message)
        with self.assertRaises(spoke.DeadActor):
            a.call(ECHO, b"again")
        with self.assertRaises(spoke.DeadActor):
            a.call_async(ECHO, b"async").result(timeout=5)

    def test_timeout(self):
        a = self.actor()
        t0 = time.monotonic()
        with self.assertRaises(spoke.Timeout) as cm:
            a.call(NAP, struct.pack("<I", 1000), timeout=0.2)
        self.assertLess(time.monotonic() - t0, 0.8)
        self.assertIsInstance(cm.exception, TimeoutError)
        self.assertEqual(cm.exception.name, "SPOKE_ETIMEDOUT")
        time.sleep(1)
        self.assertEqual(a.call(ECHO, b"on", timeout=5), b"on")

    def test_no_method(self):
        a = self.actor()
        with self.assertRaises(spoke.NoMethod) as cm:
            a.call(999)
        self.assertIn("999", cm.exception.message)

    def test_method_error_and_its_status(self):
        a = self.actor()
        with self.assertRaises(spoke.MethodError) as cm:
            a.call(FAIL)
        e = cm.exception
        self.assertEqual((e.code, e.name, e.status, e.status_name),
                         (-1017, "SPOKE_EMETHOD", EINVAL, "SPOKE_EINVAL"))
        self.assertIn("fail", e.message)
        with self.assertRaises(spoke.MethodError) as cm:
            a.call(FAIL_WITH, struct.pack("<i", -5) + b"prompt of 9 tokens is over 4")
        self.assertEqual(cm.exception.status, -5)
        self.assertEqual(cm.exception.status_name, "EIO")
        self.assertIn("prompt of 9 tokens is over 4", cm.exception.message)
        with self.assertRaises(spoke.MethodError) as cm:
            a.call_async(FAIL_WITH, struct.pack("<i", -1007)).result(timeout=5)
        self.assertEqual(cm.exception.status, -1007)  # not a dead actor
        self.assertEqual(a.call(ECHO, b"alive"), b"alive")

    def test_bad_hub(self):
        with self.assertRaises(spoke.HubError) as cm:
            spoke.Client(hub="127.0.0.1:1", timeout=2)
        self.assertIn("127.0.0.1:1", cm.exception.message)
        with self.assertRaises(spoke.Error) as cm:
            spoke.Client(hub="no-such-host.invalid:5000", timeout=2)
        self.assertIn("no-such-host.invalid", cm.exception.message)
        with self.assertRaises(spoke.InvalidArgument) as cm:
            spoke.Client(timeout=-1)
        self.assertIn("timeout=-1", str(cm.exception))

    def test_missing_or_wrong_token(self):
        saved = {k: os.environ.pop(k) for k in ("SPOKE_TOKEN", "SPOKE_TOKEN_FILE")
                 if k in os.environ}
        try:
            with self.assertRaises(spoke.AuthError) as cm:
                spoke.Client(timeout=5)
            self.assertEqual(cm.exception.name, "SPOKE_EAUTH")
            self.assertTrue(cm.exception.message)
            with self.assertRaises(spoke.AuthError):
                spoke.Client(token="not-the-job-token", timeout=5)
            hub = os.environ.pop("SPOKE_HUB")
            try:
                with self.assertRaises(spoke.NoHub):
                    spoke.Client(token="x")
            finally:
                os.environ["SPOKE_HUB"] = hub
        finally:
            os.environ.update(saved)

    def test_no_actor_no_type_exists_bad_spawn(self):
        with self.assertRaises(spoke.NoActor):
            self.client.actor("py-nobody")
        with self.assertRaises(spoke.NoType):
            self.client.spawn("NoSuchType", "py-x-%d" % os.getpid())
        name = self.probe()
        with self.assertRaises(spoke.Exists):
            self.client.spawn("Probe", name)
        with self.assertRaises(spoke.Error) as cm:  # Probe's init refuses b"\x01"
            self.client.spawn("Probe", "py-refused-%d" % os.getpid(), args=b"\x01")
        self.assertIn(cm.exception.code, (-1015, EINVAL))
        with self.assertRaises(spoke.InvalidArgument):
            self.client.spawn("Probe", "bad name")
        with self.assertRaises(TypeError):
            self.client.spawn("Probe", "py-y", args="a str")

    def test_bad_arguments(self):
        a = self.actor()
        for bad in (0, -1, "1", float("nan")):
            with self.assertRaises(spoke.InvalidArgument) as cm:
                a.call(ECHO, b"", timeout=bad)
            self.assertIn("timeout=", str(cm.exception))
        with self.assertRaises(TypeError) as cm:
            a.call(ECHO, "text")
        self.assertIn("data", str(cm.exception))
        with self.assertRaises(TypeError):
            a.call(ECHO, 12345)
        for bad in (-1, 2**32, "1", 1.0):
            for call in (a.call, a.call_async):
                with self.assertRaises(spoke.InvalidArgument) as cm:
                    call(bad)
                self.assertIn("method=", str(cm.exception))


class TestClient(Job):
    def test_nodes(self):
        nodes = self.client.nodes()
        self.assertEqual(len(nodes), 1)
        self.assertEqual(nodes[0].gpus, 8)
        self.assertTrue(nodes[0].name)
        before = nodes[0].free_gpus
        name = self.probe(gpus=2)
        self.assertEqual(self.client.nodes()[0].free_gpus, before - 2)
        self.client.kill(name)
        self.spawned.remove(name)
        deadline = time.monotonic() + 5
        while self.client.nodes()[0].free_gpus != before and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.client.nodes()[0].free_gpus, before)

    def test_kill(self):
        name = self.probe()
        a = self.client.actor(name)
        self.assertEqual(a.call(ECHO, b"x"), b"x")
        self.client.kill(name)
        self.spawned.remove(name)
        # the worker stops soon after the hub answered: the handle's calls
        # then fail as a dead actor's
        deadline = time.monotonic() + 5
        with self.assertRaises(spoke.DeadActor):
            while time.monotonic() < deadline:
                self.assertEqual(a.call(ECHO, b"x"), b"x")
                time.sleep(0.01)
        a.close()
        # the hub remembers why it died
        with self.assertRaises(spoke.DeadActor) as cm:
            self.client.actor(name)
        self.assertIn("killed by a client", cm.exception.message)
        with self.assertRaises(spoke.DeadActor):
            self.client.kill(name)
        with self.assertRaises(spoke.NoActor) as cm:
            self.client.kill("py-never-spawned")
        self.assertIn("py-never-spawned", cm.exception.message)

    def test_restart(self):
        """An actor spawned with max_restarts comes back after a crash on
        the same GPU; the same handle reaches it; past the max it is dead."""
        name = "py-%d-%d" % (os.getpid(), next(_names))
        self.client.spawn("Probe", name, gpus=1, max_restarts=1, restart_backoff=0.1)
        self.spawned.append(name)
        a = self.client.actor(name)
        self.addCleanup(a.close)
        gpus = a.call(GPUS)
        pid = struct.unpack("<I", a.call(PID))[0]
        with self.assertRaises(spoke.DeadActor):
            a.call(CRASH)
        new = struct.unpack("<I", a.call(PID))[0]  # waits while it restarts
        self.assertNotEqual(new, pid)
        self.assertEqual(a.call(GPUS), gpus)
        with self.assertRaises(spoke.DeadActor):
            a.call(CRASH)
        with self.assertRaises(spoke.DeadActor) as cm:
            a.call(PID)
        self.assertIn("after 1 restarts", cm.exception.message)
        for bad in (-1, 1.5, "1"):
            with self.assertRaises(spoke.InvalidArgument):
                self.client.spawn("Probe", name + "-bad", max_restarts=bad)
        with self.assertRaises(spoke.InvalidArgument):
            self.client.spawn("Probe", name + "-bad", max_restarts=70000)

    def test_gang(self):
        free = self.client.nodes()[0].free_gpus
        t = self.client.gang_allocate(1, 4, gpus=1)
        self.assertEqual(len(t.slots), 4)
        self.assertEqual([s.rank for s in t.slots], [0, 1, 2, 3])
        self.assertEqual([s.local_rank for s in t.slots], [0, 1, 2, 3])
        self.assertEqual({s.node_rank for s in t.slots}, {0})
        gpus = [s.gpus for s in t.slots]
        self.assertTrue(all(len(g) == 1 for g in gpus))
        self.assertEqual(len({g[0] for g in gpus}), 4)
        self.assertEqual(self.client.nodes()[0].free_gpus, free - 4)
        names = ["py-gang-%d-%d" % (os.getpid(), s.rank) for s in t.slots]
        for s, n in zip(t.slots, names):
            t.launch(s.rank, "Probe", n)
        for s, n in zip(t.slots, names):
            with self.client.actor(n) as a:
                self.assertEqual(a.call(GPUS), str(s.gpus[0]).encode())
        with self.assertRaises(spoke.Error):
            t.launch(9, "Probe", "py-out-of-range")
        t.release()
        self.assertTrue(t.released)
        self.assertEqual(self.client.nodes()[0].free_gpus, free)
        with self.assertRaises(spoke.DeadActor):  # stopped with the ticket
            self.client.actor(names[0])
        with self.assertRaises(spoke.NoTicket):
            t.release()
        with self.assertRaises(spoke.NoTicket):
            t.launch(0, "Probe", "py-late")

    def test_gang_no_resources(self):
        with self.assertRaises(spoke.NoResources) as cm:
            self.client.gang_allocate(1, 9, gpus=1)
        self.assertTrue(cm.exception.message)
        with self.assertRaises(spoke.NoResources):
            self.client.gang_allocate(2, 1, gpus=1, strict=True)  # one node only
        with self.assertRaises(spoke.InvalidArgument):
            self.client.gang_allocate(0, 1)

    def test_context_managers(self):
        free = self.client.nodes()[0].free_gpus
        with spoke.Client() as c:
            with c.gang_allocate(1, 2, gpus=1) as t:
                t.launch(0, "Probe", "py-cm-%d" % os.getpid())
                self.assertEqual(c.nodes()[0].free_gpus, free - 2)
            self.assertTrue(t.released)
            self.assertEqual(c.nodes()[0].free_gpus, free)
            name = self.probe()
            with c.actor(name) as a:
                self.assertEqual(a.call(ECHO, b"in"), b"in")
            self.assertTrue(a.closed)
            with self.assertRaises(spoke.Closed):
                a.call(ECHO, b"out")
            kept = c.actor(name)
            inflight = kept.call_async(NAP, struct.pack("<I", 300))
            t2 = c.gang_allocate(1, 1, gpus=1)
        self.assertTrue(c.closed and kept.closed and t2.released)
        with self.assertRaises(spoke.Closed):
            inflight.result(timeout=5)  # completed by the close
        with self.assertRaises(spoke.Closed):
            c.nodes()
        with self.assertRaises(spoke.Closed):
            c.actor(name)
        deadline = time.monotonic() + 5  # the hub released t2 with the client
        while self.client.nodes()[0].free_gpus != free and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.client.nodes()[0].free_gpus, free)
        c.close()  # again: nothing

    def test_closing_under_calls_from_other_threads(self):
        a = self.client.actor(self.probe())
        results = []

        def caller():
            try:
                while True:
                    a.call(ECHO, b"x")
            except spoke.Closed:
                results.append("closed")
            except Exception as e:
                results.append(repr(e))

        threads = [threading.Thread(target=caller) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.2)
        a.close()
        for t in threads:
            t.join(10)
        self.assertEqual(results, ["closed"] * 4)


    def test_close_waits_for_a_future_being_waited(self):
        a = self.client.actor(self.probe())
        f = a.call_async(NAP, struct.pack("<I", 300))
        got = []

        def waiter():
            try:
                got.append(f.result(timeout=5))
            except Exception as e:
                got.append(e)

        t = threading.Thread(target=waiter)
        t.start()
        time.sleep(0.05)
        a.close()  # after the wait in the other thread received its reply
        t.join(10)
        self.assertEqual(got, [struct.pack("<I", 300)])
        self.assertEqual(f.result(), struct.pack("<I", 300))
        with self.assertRaises(spoke.Closed):
            a.call_async(ECHO, b"x")

if __name__ == "__main__":
    unittest.main(verbosity=2)
