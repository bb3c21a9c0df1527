"""A streamed reply: spoke.Stream (spoke_stream), from ``actor.stream()``.

    with actor.stream(GENERATE, prompt) as s:
        for chunk in s:              # bytes, in order; ends at SPOKE_EOF
            ...
    async for chunk in actor.stream(GENERATE, prompt):   # off the event loop
        ...

Leaving the loop early (break, an exception), close(), cancel(), or the
stream being garbage-collected cancels it: the actor sees its call
cancelled (spoke_call_cancelled, spoke_stream_emit's SPOKE_ECANCELED).

Each chunk is read into a buffer of the stream's (4 KiB at first) and
copied out as bytes; a larger chunk makes the C library say its size
(SPOKE_ENOSPC, the chunk kept), the buffer grows to it, and the same chunk
is read again: nothing is lost or runs twice.  The GIL is released while a
read waits.

Threads: reads are taken in turn (one at a time, in order).  cancel() and
close() return at once from any thread; while another thread's read is
waiting in the C library, they take effect when that read returns (with
its chunk, or at its timeout): libspoke's spoke_stream_cancel must not run
under a spoke_stream_next of the same stream.
"""

import asyncio
import ctypes
import threading

from . import _lib
from .errors import Cancelled, raise_last
from ._util import timeout_ms

lib = _lib.lib
_next = lib.spoke_stream_next
_byref = ctypes.byref

ENOSPC = -1014
ECANCELED = -1024
EOF = -1026

#: The first size of a stream's chunk buffer (it grows to the largest chunk).
FIRST_CAP = 4096

_CANCEL, _CLOSE = 1, 2
_END = object()  # what _read returns at the end of the stream

__all__ = ["Stream"]


class Stream:
    """The chunks of one stream call, as an iterator of bytes (and an async
    iterator).  ``next`` waits up to ``timeout`` (seconds, from
    actor.stream(); None: the client's default) for each chunk: a chunk that
    does not come in time is spoke.Timeout and the stream goes on.  The
    method's failure is raised as its spoke.Error (spoke.MethodError...),
    again by every later read; a cancelled stream raises spoke.Cancelled."""

    def __init__(self, actor, method, handle, timeout):
        self._actor = actor  # the C handle outlives its streams' reads
        self.method = method
        self._s = handle
        self._ms = timeout
        self._buf = ctypes.create_string_buffer(FIRST_CAP)
        self._cap = FIRST_CAP
        self._n = ctypes.c_size_t(0)
        self._read_lock = threading.Lock()   # one read at a time
        self._state = threading.Lock()       # guards _reading, _pending, _s
        self._reading = False
        self._pending = 0
        self._ended = False  # SPOKE_EOF came

    # -- reading -------------------------------------------------------------
    def _read(self):
        """The next chunk as bytes, or _END; raises the stream's error."""
        with self._read_lock:
            with self._state:
                if self._s is None:
                    raise Cancelled(ECANCELED, "stream of method %s: closed" % self.method)
                if self._pending and not self._ended:
                    lib.spoke_stream_cancel(self._s)
                self._reading = True
            try:
                rc = self._read_c()
            finally:
                with self._state:
                    self._reading = False
                    pending = self._pending
            if pending:
                with self._state:
                    if rc != EOF:
                        lib.spoke_stream_cancel(self._s)  # no read runs now
                    if pending & _CLOSE:
                        self._free()
                if rc != EOF:
                    raise Cancelled(ECANCELED, "stream of method %s: cancelled" % self.method)
            if rc == 0:
                return ctypes.string_at(self._buf, self._n.value)
            if rc == EOF:
                self._ended = True
                return _END
            raise_last(rc, "stream of method %s" % self.method)

    def _read_c(self):
        guard = self._actor._guard
        entered = guard.try_enter()  # a close of the handle waits for this read
        try:
            while True:
                rc = _next(self._s, self._buf, self._cap, _byref(self._n), self._ms)
                if rc != ENOSPC:
                    return rc
                # The chunk is larger than the buffer: it waits, kept, for
                # a read with room.
                self._cap = self._n.value
                self._buf = ctypes.create_string_buffer(self._cap)
        finally:
            if entered:
                guard.leave()

    def __iter__(self):
        return self

    def __next__(self):
        chunk = self._read()
        if chunk is _END:
            raise StopIteration
        return chunk

    def __aiter__(self):
        return self

    async def __anext__(self):
        from .actor import _wait_executor
        loop = asyncio.get_running_loop()
        try:
            chunk = await loop.run_in_executor(_wait_executor(), self._read)
        except asyncio.CancelledError:
            self.cancel()  # the read running in the executor ends it
            raise
        if chunk is _END:
            raise StopAsyncIteration
        return chunk

    # -- ending it -------------------------------------------------------------
    def cancel(self):
        """Gives the stream up: the actor sees its call cancelled, and later
        reads raise spoke.Cancelled.  A stream that ended stays ended."""
        self._end_with(_CANCEL)

    def close(self):
        """Cancels the stream if it has not ended, and frees it (again:
        nothing)."""
        self._end_with(_CANCEL | _CLOSE)

    def _end_with(self, what):
        state = getattr(self, "_state", None)
        if state is None:
            return
        with state:
            if self._s is None:
                return
            self._pending |= what
            if self._reading:
                return  # the read ends it when it returns
            if what & _CLOSE:
                self._free()
            elif not self._ended:
                lib.spoke_stream_cancel(self._s)

    def _free(self):
        lib.spoke_stream_close(self._s)  # cancels it if it has not ended
        self._s = None
        self._buf = None
        self._cap = 0

    @property
    def closed(self):
        return self._s is None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self):
        state = "closed" if self._s is None else "ended" if self._ended else "open"
        return "<spoke.Stream method %s %s>" % (self.method, state)


def start(actor, method, data, timeout):
    """actor.stream(): spoke_call_stream under the handle's guard."""
    from ._buffers import borrow
    ms = 0 if timeout is None else timeout_ms(timeout, "timeout")
    req = borrow(data, "data")
    out = ctypes.c_void_p()
    guard = actor._guard
    guard.enter("stream")
    try:
        rc = lib.spoke_call_stream(actor._h, method, req.ptr, req.len, _byref(out), ms)
        if rc < 0:
            raise_last(rc, "stream of method %s" % method)
    finally:
        guard.leave()
        req.release()
    return Stream(actor, method, out.value, ms)
