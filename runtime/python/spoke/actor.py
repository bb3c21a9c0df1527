"""Calling an actor: spoke.Actor (spoke_actor) and spoke.Future (spoke_future).

An Actor is safe to use from many threads at once, like the C handle: each
synchronous call runs on its caller's thread, with the GIL released while it
waits, on a connection of its own from the handle's pool.
"""

import asyncio
import concurrent.futures
import ctypes
import threading

from . import _lib
from ._buffers import ReplyBuf, borrow
from .errors import Cancelled, Closed, Error, InvalidArgument, NoSpace, Timeout, raise_last
from . import stream as _stream
from ._util import timeout_ms

lib = _lib.lib
_spoke_call = lib.spoke_call
_spoke_call_async = lib.spoke_call_async
_spoke_future_wait = lib.spoke_future_wait
_string_at = ctypes.string_at
_byref = ctypes.byref

ENOSPC = -1014
ECLOSED = -1020
ECANCELED = -1024

#: Reply buffers of call_async() kept for reuse, per handle.
POOL_MAX = 64

__all__ = ["Actor", "Future"]


class _Guard:
    """Counts the calls running on a handle so that close() waits for them:
    the C handle must not be closed under a call.  Each call is bounded by
    its own timeout, so the wait in close() is too."""

    __slots__ = ("cond", "users", "closed", "finished")

    def __init__(self):
        self.cond = threading.Condition(threading.Lock())
        self.users = 0
        self.closed = False
        self.finished = threading.Event()  # set once the C handle is closed

    def try_enter(self):
        """Enters unless closed: then waits until the close is over."""
        with self.cond:
            if not self.closed:
                self.users += 1
                return True
        self.finished.wait()
        return False

    def enter(self, what):
        with self.cond:
            if self.closed:
                raise Closed(ECLOSED, "%s: the handle was closed" % what)
            self.users += 1

    def leave(self):
        with self.cond:
            self.users -= 1
            if self.users == 0 and self.closed:
                self.cond.notify_all()

    def close(self):
        """Marks it closed; returns False if it was already."""
        with self.cond:
            if self.closed:
                return False
            self.closed = True
            while self.users:
                self.cond.wait()
            return True


class _ThreadBuf(threading.local):
    """Each thread's reply buffer for call(), whatever the handle: room for
    any reply (a thread makes one synchronous call at a time)."""

    def __init__(self):
        self.reply = ReplyBuf()
        self.n = ctypes.c_size_t(0)


_thread_buf = _ThreadBuf()


_executor = None
_executor_lock = threading.Lock()


def _wait_executor():
    """The threads that wait for futures awaited from asyncio (started on
    the first await; the synchronous path starts none)."""
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=32, thread_name_prefix="spoke-wait")
        return _executor


class Actor:
    """A handle for calling one actor (``client.actor(name)``).

    ``with client.actor("x") as a:`` closes it at the block's end; it is
    also closed when garbage-collected.  Closing completes every future
    still in flight with spoke.Closed, after the calls running in other
    threads have returned."""

    def __init__(self, client, name, handle):
        self._client = client  # the C client lives while a handle does
        self._h = handle
        self.name = name
        self._guard = _Guard()
        self._inflight = set()  # futures whose memory the C handle may still write
        self._pool = []         # ReplyBufs of finished call_async()s, reused

    # -- life ---------------------------------------------------------------
    def close(self):
        """Closes the handle (again: nothing)."""
        guard = getattr(self, "_guard", None)
        if guard is None or not guard.close():
            return
        lib.spoke_actor_close(self._h)
        self._h = None
        guard.finished.set()
        self._inflight.clear()  # each completed with SPOKE_ECLOSED
        self._pool = []
        self._client._forget(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    @property
    def closed(self):
        return self._guard.closed

    def __repr__(self):
        return "<spoke.Actor %r%s>" % (self.name, " closed" if self.closed else "")

    # -- settings -----------------------------------------------------------
    @property
    def transport(self):
        """"shm", "rdma" or "tcp"."""
        self._guard.enter("transport")
        try:
            return lib.spoke_actor_transport(self._h).decode()
        finally:
            self._guard.leave()

    def use_transport(self, name, timeout=None):
        """Moves the handle to transport name ("shm", "rdma", "tcp") now."""
        ms = timeout_ms(timeout, "timeout")
        self._guard.enter("use_transport")
        try:
            rc = lib.spoke_actor_use_transport(self._h, name.encode(), ms)
            if rc < 0:
                raise_last(rc, "use_transport(%r)" % name)
        finally:
            self._guard.leave()

    def set_poll(self, poll_us):
        """Spins this long (microseconds) on a reply before sleeping; 0 blocks."""
        if not isinstance(poll_us, int) or poll_us < 0:
            raise InvalidArgument(-1016, "set_poll: poll_us=%r: expected an int >= 0" % (poll_us,))
        self._guard.enter("set_poll")
        try:
            lib.spoke_actor_set_poll(self._h, poll_us)
        finally:
            self._guard.leave()

    # -- calls --------------------------------------------------------------
    def call(self, method, data=b"", timeout=None):
        """Calls method with data (any buffer: bytes, bytearray, memoryview,
        a NumPy array..., passed without a copy) and returns the reply as
        bytes.  timeout in seconds (None: the client's default).

        The reply is received into a buffer of the calling thread with room
        for the largest message the protocol allows ($SPOKE_MAX_MSG), in
        memory the kernel maps only where the reply lands: no reply is too
        large, and no method runs twice to make room.  One copy makes the
        bytes; call_into() writes into a buffer of yours instead."""
        if type(method) is not int or not 0 <= method <= 0xFFFFFFFF:
            raise _bad_method(method)
        ms = 0 if timeout is None else timeout_ms(timeout, "timeout")
        if type(data) is bytes:
            ptr, n, req = data, len(data), None
        else:
            req = borrow(data, "data")
            ptr, n = req.ptr, req.len
        guard = self._guard
        guard.enter("call")
        try:
            tb = _thread_buf
            rb = tb.reply
            rc = _spoke_call(self._h, method, ptr, n, rb.addr, rb.cap, _byref(tb.n), ms)
            if rc < 0:
                _raise_call(rc, method, tb.n.value, rb.cap)
            return rb.take(tb.n.value)
        finally:
            guard.leave()
            if req is not None:
                req.release()

    def call_into(self, method, data, out_buffer, timeout=None):
        """Calls method and writes its reply into out_buffer (any writable
        contiguous buffer: bytearray, memoryview, a NumPy array...); returns
        the reply's length.  A reply larger than the buffer is spoke.NoSpace
        (its .reply_len says how large)."""
        if type(method) is not int or not 0 <= method <= 0xFFFFFFFF:
            raise _bad_method(method)
        ms = 0 if timeout is None else timeout_ms(timeout, "timeout")
        req = borrow(data, "data")
        try:
            out = borrow(out_buffer, "out_buffer", writable=True)
        except BaseException:
            req.release()
            raise
        n = ctypes.c_size_t(0)
        guard = self._guard
        guard.enter("call_into")
        try:
            rc = _spoke_call(self._h, method, req.ptr, req.len, out.ptr, out.len, _byref(n), ms)
            if rc < 0:
                _raise_call(rc, method, n.value, out.len)
            return n.value
        finally:
            guard.leave()
            out.release()
            req.release()

    def call_async(self, method, data=b"", reply_cap=None):
        """Sends a call on the handle's pipelined connection and returns a
        spoke.Future at once; many may be in flight.  The request is not
        needed once this returns.  The reply goes into a buffer with room
        for any reply (as call()'s), kept for reuse; reply_cap (bytes)
        gives a plain buffer of that size instead, and a larger reply fails
        the future with spoke.NoSpace."""
        if type(method) is not int or not 0 <= method <= 0xFFFFFFFF:
            raise _bad_method(method)
        if reply_cap is None:
            pool = self._pool
            buf = pool.pop() if pool else ReplyBuf()
            addr, cap = buf.addr, buf.cap
        else:
            if isinstance(reply_cap, bool) or not isinstance(reply_cap, int) or reply_cap < 0:
                raise InvalidArgument(-1016, "call_async: reply_cap=%r: expected an int >= 0"
                                      % (reply_cap,))
            cap = reply_cap
            buf = ctypes.create_string_buffer(cap) if cap else None
            addr = buf
        fut = Future(self, method, buf, cap)
        req = borrow(data, "data")
        guard = self._guard
        guard.enter("call_async")
        try:
            # In flight from here: its memory stays referenced by the handle
            # until a wait completes it or the handle closes.
            self._inflight.add(fut)
            rc = _spoke_call_async(self._h, method, req.ptr, req.len, addr, cap, _byref(fut._f))
            if rc < 0:
                self._inflight.discard(fut)
                fut._fail_now(rc)
        finally:
            guard.leave()
            req.release()
        return fut

    def stream(self, method, data=b"", timeout=None):
        """Calls method as a stream and returns a spoke.Stream of its reply's
        chunks (bytes, in order) once the request went out.  timeout
        (seconds; None: the client's default) bounds the start and each
        chunk's wait.  Iterate it (``for`` or ``async for``); leaving early,
        close(), cancel() or garbage collection cancels the call."""
        if type(method) is not int or not 0 <= method <= 0xFFFFFFFF:
            raise _bad_method(method)
        return _stream.start(self, method, data, timeout)

    # called by a Future once it is complete
    def _done(self, fut, buf):
        self._inflight.discard(fut)
        if type(buf) is ReplyBuf and len(self._pool) < POOL_MAX and not self._guard.closed:
            self._pool.append(buf)


def _bad_method(method):
    return InvalidArgument(-1016, "method=%r: expected an int from 0 to 2**32-1" % (method,))


def _raise_call(rc, method, reply_len, cap):
    if rc == ENOSPC:
        e = NoSpace(rc, "call of method %s: a reply of %d bytes does not fit the %d-byte "
                    "buffer" % (method, reply_len, cap))
        e.reply_len = reply_len
        raise e
    raise_last(rc, "call of method %s" % method)


class Future:
    """One call_async() in flight: ``.result(timeout)``, ``.done()``, and
    ``await fut`` from asyncio.

    result(timeout) waits (None: the client's default timeout) and returns
    the reply as bytes, or raises the call's spoke.Error.  As in C, a wait
    that times out gives the call up: the future completes with
    spoke.Timeout and its reply, when it comes, is dropped.  A future may be
    waited from any thread, several times: each gets the same outcome."""

    __slots__ = ("_actor", "method", "_f", "_buf", "_cap", "_lock", "_done", "_value",
                 "_exc", "_cancel", "__weakref__")

    def __init__(self, actor, method, buf, cap):
        self._actor = actor
        self.method = method
        self._f = _lib.Future()
        self._buf = buf
        self._cap = cap
        self._lock = threading.Lock()
        self._done = False
        self._value = None
        self._exc = None
        self._cancel = False

    def _fail_now(self, rc):
        # spoke_call_async failed: f is complete with rc (message in errmsg)
        try:
            raise_last(rc, "call_async of method %s" % self.method)
        except Error as e:
            self._exc = e
        self._done = True
        self._actor._done(self, self._buf)
        self._buf = None

    def done(self):
        """True once the call completed: its reply (or error) is here and
        result() returns at once."""
        return self._done or bool(self._f.done_)

    def result(self, timeout=None):
        if not self._done:
            self._wait(timeout)
        if self._exc is not None:
            raise self._exc
        return self._value

    def exception(self, timeout=None):
        """The call's spoke.Error, or None if it succeeded."""
        if not self._done:
            self._wait(timeout)
        return self._exc

    def cancel(self):
        """Cancels the call: returns at once, True if it was in flight (the
        future completes with spoke.Cancelled, its reply is dropped when it
        comes, and the actor is told: spoke_call_cancelled() of its kept
        call), False if it had completed.

        While another thread waits for this future (an asyncio task's
        await, say), the cancel is left to that wait: it completes with
        spoke.Cancelled when its C wait returns (a reply or its timeout),
        and the actor is not told (libspoke's wait holds the connection;
        spoke_future_cancel would only wait for it)."""
        if self._done:
            return False
        if not self._lock.acquire(blocking=False):
            self._cancel = True
            return not (self._done and not isinstance(self._exc, Cancelled))
        guard = self._actor._guard
        try:
            if self._done:
                return False
            entered = guard.try_enter()
            try:
                # May wait for another future's wait on the same handle to
                # end its turn (libspoke's pipelined connection).
                lib.spoke_future_cancel(_byref(self._f))
            finally:
                if entered:
                    guard.leave()
            if self._f.done_ and self._f.status != ECANCELED:
                # completed before the cancel: keep its outcome
                self._finish(0 if self._f.status >= 0 else self._f.status)
                return False
            self._exc = Cancelled(ECANCELED, "call_async of method %s: cancelled" % self.method)
            self._done = True
            self._actor._done(self, self._buf)
            self._buf = None
            return True
        finally:
            self._lock.release()

    def cancelled(self):
        """True if the future completed by cancel()."""
        return self._done and isinstance(self._exc, Cancelled)

    def _finish(self, rc):
        """Takes a completed C future's outcome (rc: its status)."""
        if rc < 0:
            if rc == ENOSPC:
                n = self._f.reply_len
                e = NoSpace(rc, "call_async of method %s: a reply of %d bytes does not "
                            "fit reply_cap=%d" % (self.method, n, self._cap))
                e.reply_len = n
                self._exc = e
            else:
                try:
                    raise_last(rc, "call_async of method %s" % self.method)
                except Error as e:
                    self._exc = e
        else:
            buf = self._buf
            n = self._f.reply_len
            self._value = buf.take(n) if type(buf) is ReplyBuf else _string_at(buf, n)
        self._done = True
        self._actor._done(self, self._buf)
        self._buf = None

    def _wait(self, timeout):
        ms = 0 if timeout is None else timeout_ms(timeout, "timeout")
        # Another thread may be waiting: wait for it no longer than our own
        # timeout (its own wait is bounded by its timeout).
        if not self._lock.acquire(timeout=-1 if timeout is None else timeout):
            raise Timeout(-1010, "result: another thread's wait for method %s's reply did "
                          "not end within timeout=%r s" % (self.method, timeout))
        guard = self._actor._guard
        entered = False
        try:
            if self._done:
                return
            # A wait counts as a call on the handle, which close() waits
            # for; after the close the future is complete (SPOKE_ECLOSED)
            # and the wait reads only the future.
            entered = guard.try_enter()
            rc = _spoke_future_wait(_byref(self._f), ms)
            if entered:
                guard.leave()
                entered = False
            if self._cancel:  # cancel() came while this wait ran
                self._exc = Cancelled(ECANCELED, "call_async of method %s: cancelled "
                                      "while a wait ran" % self.method)
                self._done = True
                self._actor._done(self, self._buf)
                self._buf = None
            else:
                self._finish(rc)
        finally:
            if entered:
                guard.leave()
            self._lock.release()

    def __await__(self):
        if self._done:
            return self._outcome_now().__await__()
        return self._awaited().__await__()

    async def _awaited(self):
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(_wait_executor(), self.result)
        except asyncio.CancelledError:
            self.cancel()  # the task awaiting it was cancelled: so is the call
            raise

    async def _outcome_now(self):
        return self.result()

    def __repr__(self):
        state = "done" if self.done() else "in flight"
        return "<spoke.Future method %s %s>" % (self.method, state)

