"""basic.py - Python actor types of the tests: PyProbe (every kind of
method), PySlow (the "Slow" protocol of tests/harness/probe.h: echo 1,
nap 5, for the C call_driver), PyConc (max_concurrency 4), PyBadInit (an
__init__ that raises)."""

import asyncio
import os
import struct
import threading
import time

import spoke

# method ids of PyProbe
ECHO, ARGS, FAIL, FAIL_CODE, CRASH, COUNT, ENDLESS, SLEEP, STATS, ASYNC_FAIL, PID, GPUS, \
    ASYNC_COUNT, NONE, BAD_REPLY, BLOCK, CHUNKS, KEEP_REQ, READ_KEPT = range(1, 20)


@spoke.actor("PyProbe")
class Probe:
    def __init__(self, args: bytes):
        self.args = args
        self.lock = threading.Lock()
        self.gen_closed = 0        # generators closed before their end
        self.async_cancelled = 0   # async methods cancelled

    @spoke.method(ECHO)
    def echo(self, req: memoryview):
        return req                 # the request's own memory, packed as the reply

    @spoke.method(ARGS)
    def init_args(self, req):
        return self.args

    @spoke.method(FAIL)
    def fail(self, req):
        raise ValueError("bad request %r" % bytes(req))

    @spoke.method(FAIL_CODE)
    def fail_code(self, req):
        raise spoke.NoResources(-1009, "no room for %s" % bytes(req).decode())

    @spoke.method(CRASH)
    def crash(self, req):
        os._exit(3)

    @spoke.method(COUNT)
    def count(self, req):
        for i in range(int(bytes(req))):
            yield b"%d" % i

    @spoke.method(ENDLESS)
    def endless(self, req):
        try:
            i = 0
            while True:
                yield b"chunk %d" % i
                i += 1
                time.sleep(0.001)
        finally:
            with self.lock:
                self.gen_closed += 1

    @spoke.method(SLEEP)
    async def sleep(self, req):
        try:
            await asyncio.sleep(int(bytes(req)) / 1000)
        except asyncio.CancelledError:
            with self.lock:
                self.async_cancelled += 1
            raise
        return b"slept " + bytes(req)

    @spoke.method(STATS)
    def stats(self, req):
        return b"%d %d" % (self.gen_closed, self.async_cancelled)

    @spoke.method(ASYNC_FAIL)
    async def async_fail(self, req):
        await asyncio.sleep(0)
        raise KeyError("no such prompt")

    @spoke.method(PID)
    def pid(self, req):
        return struct.pack("<I", os.getpid())

    @spoke.method(GPUS)
    def gpus(self, req):
        return os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>").encode()

    @spoke.method(ASYNC_COUNT)
    async def async_count(self, req):
        for i in range(int(bytes(req))):
            await asyncio.sleep(0)
            yield b"a%d" % i

    @spoke.method(NONE)
    def none(self, req):
        return None

    @spoke.method(BAD_REPLY)
    def bad_reply(self, req):
        return 42

    @spoke.method(CHUNKS)
    def chunks(self, req):  # u32 n, u32 size (, u32 ignored): n chunks of size bytes
        n, size = struct.unpack_from("<II", req)
        chunk = bytes(size)
        for _ in range(n):
            yield chunk

    @spoke.method(KEEP_REQ)
    def keep_req(self, req):  # keeps the view past its method (a mistake)
        self.saved = req
        return b""

    @spoke.method(READ_KEPT)
    def read_kept(self, req):
        return bytes(self.saved)

    @spoke.method(BLOCK)
    def block(self, req):  # a plain method holding the worker's loop a while
        time.sleep(int(bytes(req)) / 1000)
        return b"blocked"


@spoke.actor("PySlow")
class Slow:
    """tests/harness/probe.h's Slow: echo (1) and nap (5, u32 ms)."""

    def __init__(self, args):
        pass

    @spoke.method(1)
    def echo(self, req):
        return req

    @spoke.method(5)
    def nap(self, req):
        (ms,) = struct.unpack("<I", req[:4])
        time.sleep(ms / 1000)
        return struct.pack("<I", ms)


@spoke.actor("PyConc", max_concurrency=4)
class Conc:
    """max_concurrency 4: naps (1, ms) on the worker's threads; peak (2)
    says how many ran at once at most."""

    def __init__(self, args):
        self.lock = threading.Lock()
        self.running = 0
        self.peak = 0

    @spoke.method(1)
    def nap(self, req):
        with self.lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        time.sleep(int(bytes(req)) / 1000)  # the GIL is released meanwhile
        with self.lock:
            self.running -= 1
        return b"napped"

    @spoke.method(2)
    def get_peak(self, req):
        return b"%d" % self.peak


@spoke.actor("PyBadInit")
class BadInit:
    def __init__(self, args):
        raise RuntimeError("no model at %r" % args)
