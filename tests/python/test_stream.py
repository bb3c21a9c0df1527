"""test_stream.py - streams and cancellation in the Python binding
(spoke.Stream, Future.cancel), run by tests/python/run.sh as the driver of a
spoke-launch --local job whose module offers the "Keeper" test actor
(tests/harness/kept_actor.c, method ids in tests/harness/kept.h).  The
transport is $SPOKE_TRANSPORT's (run.sh runs this file over each)."""

import asyncio
import itertools
import os
import struct
import threading
import time
import unittest

import spoke
from spoke import stream as _stream

# tests/harness/kept.h
KEEP_FOREVER, KEEP_CANCELLED, KEEP_GENERATE = 44, 45, 47
KEEP_STREAM, KEEP_STREAM_STATS, KEEP_BURST = 52, 53, 55

_names = itertools.count()


def chunk_ok(chunk, i, size):
    """KEEP_STREAM's chunk i: u32 i, then size - 4 bytes of i & 0xff."""
    return len(chunk) == size and struct.unpack_from("<I", chunk)[0] == i and \
        chunk[4:] == bytes([i & 0xFF]) * (size - 4)


def poll(fn, want, seconds=5.0):
    """fn() until it returns want (or seconds pass); its last value."""
    deadline = time.monotonic() + seconds
    got = fn()
    while got != want and time.monotonic() < deadline:
        time.sleep(0.01)
        got = fn()
    return got


class Job(unittest.TestCase):
    """A client and a fresh Keeper per test (its counters start at 0)."""

    def setUp(self):
        self.client = spoke.Client(timeout=20)
        self.name = "pystream-%d-%d" % (os.getpid(), next(_names))
        self.client.spawn("Keeper", self.name)
        self.a = self.client.actor(self.name)

    def tearDown(self):
        self.a.close()
        try:
            self.client.kill(self.name)
        except spoke.Error:
            pass
        self.client.close()

    def stream_stats(self):
        """KEEP_STREAM_STATS: (EAGAINs, streams that saw their cancel,
        the last refused emit's code)."""
        return struct.unpack("<IIi", self.a.call(KEEP_STREAM_STATS))

    def cancels_seen(self):
        return struct.unpack("<Ii", self.a.call(KEEP_CANCELLED))[0]


class TestStream(Job):
    def test_chunks_in_order(self):
        n, size = 200, 64
        with self.a.stream(KEEP_STREAM, struct.pack("<III", n, size, 1000)) as s:
            got = list(s)
        self.assertEqual(len(got), n)
        for i, c in enumerate(got):
            self.assertTrue(chunk_ok(c, i, size), "chunk %d: %r" % (i, c[:8]))
        self.assertTrue(s.closed)
        # the end is the end, again: and the handle goes on calling
        with self.a.stream(KEEP_BURST, struct.pack("<II", 3, 8)) as s:
            self.assertEqual([struct.unpack_from("<I", c)[0] for c in s], [0, 1, 2])
            self.assertEqual(list(s), [])
        self.assertEqual(self.stream_stats()[1], 0)  # nothing was cancelled

    def test_a_chunk_larger_than_the_buffer(self):
        sizes = (100, _stream.FIRST_CAP + 1, 300000, 50)
        for size in sizes:
            with self.a.stream(KEEP_STREAM, struct.pack("<III", 3, size, 1000)) as s:
                got = list(s)
            self.assertEqual(len(got), 3, "size %d" % size)
            for i, c in enumerate(got):
                self.assertTrue(chunk_ok(c, i, size), "size %d chunk %d" % (size, i))
        # the buffer grew once, kept the chunk, and nothing ran twice
        s = self.a.stream(KEEP_STREAM, struct.pack("<III", 2, 200000, 1000))
        first = next(s)
        self.assertEqual(s._cap, 200000)
        self.assertTrue(chunk_ok(first, 0, 200000))
        self.assertTrue(chunk_ok(next(s), 1, 200000))
        with self.assertRaises(StopIteration):
            next(s)
        s.close()

    def test_method_error_ends_the_stream(self):
        # size < 4: KEEP_STREAM refuses the request (-EINVAL)
        s = self.a.stream(KEEP_STREAM, struct.pack("<III", 1, 2, 0))
        with self.assertRaises(spoke.MethodError) as cm:
            next(s)
        self.assertEqual(cm.exception.status, -22)
        with self.assertRaises(spoke.MethodError):  # the same again
            next(s)
        s.close()
        with self.assertRaises(spoke.NoMethod):
            list(self.a.stream(999))
        with self.assertRaises(spoke.InvalidArgument):
            self.a.stream(-1)
        with self.assertRaises(spoke.InvalidArgument):
            self.a.stream(KEEP_STREAM, b"", timeout=0)

    def test_timeout_of_a_chunk(self):
        # KEEP_FOREVER as a stream: no chunk ever; each read times out and
        # the stream goes on until it is closed (the actor sees the cancel)
        s = self.a.stream(KEEP_FOREVER, timeout=0.05)
        for _ in range(2):
            t0 = time.monotonic()
            with self.assertRaises(spoke.Timeout):
                next(s)
            self.assertLess(time.monotonic() - t0, 2)
        s.close()
        self.assertEqual(poll(self.cancels_seen, 1), 1)

    def test_break_cancels(self):
        n = 100000  # far more than flow control lets through unread
        for i, c in enumerate(self.a.stream(KEEP_STREAM, struct.pack("<III", n, 16, 5000))):
            self.assertTrue(chunk_ok(c, i, 16))
            if i == 10:
                break  # the stream is garbage now: cancelled
        self.assertEqual(poll(lambda: self.stream_stats()[1], 1), 1)
        self.assertEqual(self.stream_stats()[2], -1024)  # the emit saw SPOKE_ECANCELED
        # cancel() then reads: spoke.Cancelled, which is also concurrent's
        s = self.a.stream(KEEP_STREAM, struct.pack("<III", n, 16, 5000))
        self.assertTrue(chunk_ok(next(s), 0, 16))
        s.cancel()
        with self.assertRaises(spoke.Cancelled) as cm:
            next(s)
        self.assertEqual(cm.exception.name, "SPOKE_ECANCELED")
        import concurrent.futures
        self.assertIsInstance(cm.exception, concurrent.futures.CancelledError)
        s.close()
        s.close()
        self.assertEqual(poll(lambda: self.stream_stats()[1], 2), 2)
        # a finished stream stays finished after a cancel
        s = self.a.stream(KEEP_BURST, struct.pack("<II", 2, 8))
        self.assertEqual(len(list(s)), 2)
        s.cancel()
        self.assertEqual(list(s), [])

    def test_cancel_from_another_thread_during_a_read(self):
        s = self.a.stream(KEEP_GENERATE, struct.pack("<I", 100000), timeout=5)
        got = []
        err = []

        def reader():
            try:
                for c in s:  # 4-byte tokens (the last chunk is 8 bytes)
                    got.append(c)
            except spoke.Cancelled as e:
                err.append(e)

        t = threading.Thread(target=reader)
        t.start()
        poll(lambda: len(got) > 20, True)
        t0 = time.monotonic()
        s.cancel()
        self.assertLess(time.monotonic() - t0, 0.5)  # at once
        t.join(10)
        self.assertFalse(t.is_alive())
        self.assertEqual(len(err), 1)
        self.assertEqual([struct.unpack("<I", c)[0] for c in got], list(range(len(got))))
        s.close()
        self.assertEqual(self.a.call(KEEP_STREAM_STATS)[:0], b"")  # the handle still works

    def test_async_for(self):
        n = 50

        async def main():
            got = []
            async for c in self.a.stream(KEEP_STREAM, struct.pack("<III", n, 32, 1000)):
                got.append(c)
            # the loop runs while a chunk is awaited
            ticks = 0

            async def ticker():
                nonlocal ticks
                while True:
                    await asyncio.sleep(0.005)
                    ticks += 1

            t = asyncio.ensure_future(ticker())
            async with self.a.stream(KEEP_GENERATE, struct.pack("<I", 100)) as s:
                # a token a step (u32), then the reply: u32 steps, u32 peak
                tokens = [c async for c in s]
            t.cancel()
            return got, tokens, ticks

        got, tokens, ticks = asyncio.run(main())
        self.assertEqual(len(got), n)
        self.assertTrue(all(chunk_ok(c, i, 32) for i, c in enumerate(got)))
        self.assertEqual([struct.unpack("<I", c)[0] for c in tokens[:-1]], list(range(100)))
        self.assertEqual(struct.unpack("<I", tokens[-1][:4])[0], 100)
        self.assertGreater(ticks, 3)

    def test_cancelling_the_task_cancels_the_stream(self):
        async def consume(s, seen):
            async for c in s:
                seen.append(c)

        async def main():
            s = self.a.stream(KEEP_STREAM, struct.pack("<III", 1000000, 16, 5000))
            seen = []
            task = asyncio.ensure_future(consume(s, seen))
            while len(seen) < 5:
                await asyncio.sleep(0.001)
            task.cancel()
            with self.assertRaises(asyncio.CancelledError):
                await task
            return s, seen

        s, seen = asyncio.run(main())
        self.assertTrue(all(chunk_ok(c, i, 16) for i, c in enumerate(seen)))
        self.assertEqual(poll(lambda: self.stream_stats()[1], 1), 1)
        with self.assertRaises(spoke.Cancelled):
            next(s)
        s.close()

    def test_16_threads_streaming(self):
        errors = []

        def worker(k):
            try:
                for r in range(3):
                    n, size = 50 + k, 8 + 4 * k
                    got = list(self.a.stream(KEEP_STREAM, struct.pack("<III", n, size, 5000),
                                             timeout=20))
                    if len(got) != n or not all(chunk_ok(c, i, size)
                                                for i, c in enumerate(got)):
                        errors.append("thread %d round %d: %d chunks" % (k, r, len(got)))
            except Exception as e:  # reported below
                errors.append("thread %d: %r" % (k, e))

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertFalse(any(t.is_alive() for t in threads), "threads still running")
        self.assertEqual(errors, [])

    def test_closing_the_handle_under_a_stream(self):
        s = self.a.stream(KEEP_STREAM, struct.pack("<III", 100000, 16, 5000))
        next(s)
        self.a.close()
        with self.assertRaises(spoke.Closed):
            next(s)
        s.close()


class TestFutureCancel(Job):
    def test_cancel_is_seen_by_the_actor(self):
        f = self.a.call_async(KEEP_FOREVER)
        t0 = time.monotonic()
        self.assertTrue(f.cancel())
        self.assertLess(time.monotonic() - t0, 0.5)
        self.assertTrue(f.done() and f.cancelled())
        with self.assertRaises(spoke.Cancelled):
            f.result(timeout=1)
        self.assertIsInstance(f.exception(), spoke.Cancelled)
        self.assertEqual(poll(self.cancels_seen, 1), 1)
        self.assertFalse(f.cancel())  # complete: stays as it is
        # a completed future is not cancelled
        g = self.a.call_async(KEEP_CANCELLED)
        self.assertEqual(len(g.result(timeout=5)), 8)
        self.assertFalse(g.cancel())
        self.assertFalse(g.cancelled())
        # many: the first is kept when its cancel comes (the actor sees it);
        # those behind it on the connection are cancelled before their
        # methods run, and never run (no cancel to see); the connection
        # goes on
        fs = [self.a.call_async(KEEP_FOREVER) for _ in range(10)]
        for f in fs:
            f.cancel()
        seen = poll(self.cancels_seen, 2)
        self.assertGreaterEqual(seen, 2)
        self.assertLessEqual(seen, 11)
        self.assertTrue(all(f.cancelled() for f in fs))
        self.assertEqual(len(self.a.call_async(KEEP_CANCELLED).result(timeout=5)), 8)
        self.assertEqual(self.a.call(KEEP_STREAM_STATS)[:0], b"")

    def test_cancelling_a_task_that_awaits_a_future(self):
        # The task's wait runs in an executor, in libspoke's wait, which
        # holds the connection until its timeout: the cancel is left to it
        # (Future.cancel), so this handle's client waits 2 s at most.
        short = spoke.Client(timeout=2)
        self.addCleanup(short.close)
        a = short.actor(self.name)
        self.addCleanup(a.close)

        async def main():
            f = a.call_async(KEEP_FOREVER)
            task = asyncio.ensure_future(_await(f))
            await asyncio.sleep(0.05)
            t0 = time.monotonic()
            task.cancel()
            with self.assertRaises(asyncio.CancelledError):
                await task
            return f, time.monotonic() - t0

        async def _await(f):
            return await f

        f, took = asyncio.run(main())
        self.assertLess(took, 0.5)
        with self.assertRaises(spoke.Cancelled):
            f.result(timeout=10)  # the running wait ends it (see Future.cancel)
        self.assertTrue(f.cancelled())
        self.assertEqual(a.call(KEEP_STREAM_STATS, timeout=5)[:0], b"")


if __name__ == "__main__":
    unittest.main(verbosity=2)
