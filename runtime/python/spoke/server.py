"""Actors in Python: @spoke.actor on a class, @spoke.method on its methods.

    import spoke

    @spoke.actor("Decoder")
    class Decoder:
        def __init__(self, args: bytes):       # the spawn's arguments
            self.scale = int(args or b"1")

        @spoke.method(1)
        def step(self, req: memoryview) -> bytes:
            return bytes(req) * self.scale      # the reply (bytes-like or None)

        @spoke.method(2)
        def tokens(self, req):                  # a generator: a stream
            for i in range(int(bytes(req))):
                yield b"%d" % i                 # one chunk each (spoke_stream_emit)

        @spoke.method(3)
        async def generate(self, req):          # async def: a deferred reply
            await asyncio.sleep(0.01)           # on the worker's asyncio loop
            return b"done"

A worker program, spoke-worker-python, imports the class's module and
serves it (see spoke.worker); the C API underneath is spoke/actor.h:

- ``__init__(self, args)`` is the type's init: the spawn is acknowledged
  once it returned; an exception fails the spawn with its type and text.
- A plain method runs on the worker's loop (or, with max_concurrency > 1,
  on one of its threads) with the GIL held; its request is a memoryview of
  the runtime's receive buffer, valid only until it returns (copy it with
  bytes(req) to keep it).  It returns a bytes-like object (or None: an
  empty reply), packed straight into the reply buffer.
- An exception fails the call: the caller gets spoke.MethodError, whose
  message is "method NAME of actor X failed: TYPE: TEXT" and whose status
  is the exception's code if it is a spoke.Error, else SPOKE_EMETHOD.  The
  worker goes on serving.
- A generator method keeps its call (spoke_call_defer) and runs on a thread
  of its own: each yield is a chunk of a stream (spoke_stream_emit, waiting
  up to the call's deadline, else EMIT_TIMEOUT_S, for a reader that falls
  behind); its end finishes the call.  A cancelled stream closes the
  generator (GeneratorExit at its yield).  Called without a stream
  (actor.call), its chunks are joined into one reply.
- An ``async def`` method keeps its call and runs as a task of the
  worker's asyncio loop (a thread of its own): its return value is the
  reply (spoke_call_finish).  A cancelled call (spoke_future_cancel, the
  caller gone, its deadline passed) cancels the task.
"""

import asyncio
import ctypes
import inspect
import os
import sys
import threading
import time
import traceback

from . import _lib
from .errors import Error

lib = _lib.lib

__all__ = ["actor", "method", "EMIT_TIMEOUT_S"]

SPOKE_EMETHOD = -1017
SPOKE_ECANCELED = -1024
SPOKE_EAGAIN = -1025
SPOKE_ETIMEDOUT = -1010
SPOKE_ESPAWN = -1015
#: How long a generator's yield waits for a reader that fell behind, when
#: its call has no deadline.
EMIT_TIMEOUT_S = 30

_TYPES = {}  # class -> its type name, for the worker to find


def actor(name, max_concurrency=0):
    """Class decorator: the class is the actor type `name` (at most 63
    bytes).  max_concurrency: how many of its plain methods may run at once
    on the worker's threads (spoke_actor_type.max_concurrency; 0 or 1: one
    at a time on the worker's loop)."""
    if not isinstance(name, str) or not name or len(name.encode()) >= 64:
        raise ValueError("spoke.actor(%r): expected a type name of 1 to 63 bytes" % (name,))
    if isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int) or \
            not 0 <= max_concurrency <= 1024:
        raise ValueError("spoke.actor(%r, max_concurrency=%r): expected an int from 0 to 1024"
                         % (name, max_concurrency))

    def wrap(cls):
        if not isinstance(cls, type):
            raise TypeError("spoke.actor(%r) decorates a class, not %r" % (name, cls))
        cls._spoke_type = name
        cls._spoke_max_concurrency = max_concurrency
        _TYPES[cls] = name
        return cls
    return wrap


def method(id, name=None):
    """Method decorator: this method answers method id (0 to 2**32-1) of the
    actor; name (default: the function's) is what errors call it."""
    if isinstance(id, bool) or not isinstance(id, int) or not 0 <= id < 2**32:
        raise ValueError("spoke.method(%r): expected a method id from 0 to 2**32-1" % (id,))

    def wrap(fn):
        if not callable(fn):
            raise TypeError("spoke.method(%d) decorates a function, not %r" % (id, fn))
        fn._spoke_method = (id, name or fn.__name__)
        return fn
    return wrap


def methods_of(cls):
    """The class's (id, name, function), by id; TypeError on an id used twice."""
    found = {}
    for attr in dir(cls):
        fn = inspect.getattr_static(cls, attr)
        m = getattr(fn, "_spoke_method", None)
        if m is None:
            continue
        if m[0] in found:
            raise TypeError("actor %s: method id %d is both %s and %s"
                            % (cls._spoke_type, m[0], found[m[0]][1], m[1]))
        found[m[0]] = (m[0], m[1], fn)
    return [found[k] for k in sorted(found)]


# ---- the C side: spoke_actor_type and its callbacks ------------------------

_View = _lib.View
_BufP = ctypes.POINTER(_lib.SpkBuf)
METHOD_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(_View), _BufP)
INIT_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(_View))
FINI_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
CANCEL_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)


class _Method(ctypes.Structure):
    _fields_ = [("id", ctypes.c_uint32), ("name", ctypes.c_char_p), ("fn", METHOD_FN)]


class _ActorType(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("state_size", ctypes.c_size_t),
        ("init", INIT_FN),
        ("fini", FINI_FN),
        ("methods", ctypes.POINTER(_Method)),
        ("n_methods", ctypes.c_size_t),
        ("max_concurrency", ctypes.c_uint),
    ]


_p = ctypes.c_void_p
for _name, _res, _args in [
        ("spoke_actor_type_register", ctypes.c_int, [ctypes.POINTER(_ActorType)]),
        ("spoke_method_fail", ctypes.c_int, [_BufP, ctypes.c_int, ctypes.c_char_p]),
        ("spoke_call_defer", _p, [_BufP]),
        ("spoke_call_request", _View, [_p]),
        ("spoke_call_finish", ctypes.c_int, [_p, ctypes.c_int, _p, ctypes.c_size_t]),
        ("spoke_call_deadline", ctypes.c_int64, [_p]),
        ("spoke_call_cancelled", ctypes.c_int, [_p]),
        ("spoke_call_on_cancel", None, [_p, CANCEL_FN, _p]),
        ("spoke_call_is_stream", ctypes.c_int, [_p]),
        ("spoke_stream_emit", ctypes.c_int, [_p, _p, ctypes.c_size_t, ctypes.c_int])]:
    _f = getattr(lib, _name)
    _f.restype = _res
    _f.argtypes = _args

_put_raw = lib.spoke_buf_put_raw
_fail = lib.spoke_method_fail
_finish = lib.spoke_call_finish
_emit = lib.spoke_stream_emit
_EMPTY = memoryview(b"")
_clock_gettime = time.clock_gettime
_CLOCK_MONOTONIC = time.CLOCK_MONOTONIC


def _request(data, length):
    """A memoryview of length bytes at data (no copy)."""
    if not length:
        return _EMPTY
    return memoryview((ctypes.c_char * length).from_address(data)).cast("B")


def _release(mv):
    """Ends a request view once its memory goes back to the runtime: a use
    after that raises ValueError instead of reading freed memory (a slice
    the method kept holds it open: its business)."""
    if mv is not None and mv is not _EMPTY:
        try:
            mv.release()
        except BufferError:
            pass


def _describe(e):
    text = str(e)
    return "%s: %s" % (type(e).__name__, text) if text else type(e).__name__


def _status_of(e):
    if isinstance(e, Error) and isinstance(e.code, int) and e.code < 0:
        return e.code
    return SPOKE_EMETHOD


def _log_exception(what):
    sys.stderr.write("spoke-worker-python: %s:\n%s" % (what, traceback.format_exc()))
    sys.stderr.flush()


def _reply_bytes(result, what):
    """The bytes-like result of a method (None: empty) as (object, length)."""
    if result is None:
        return b"", 0
    if isinstance(result, bytes):
        return result, len(result)
    try:
        mv = memoryview(result)
    except TypeError:
        raise TypeError("%s returned %s, not a bytes-like object or None"
                        % (what, type(result).__name__)) from None
    if not mv.c_contiguous:
        mv = memoryview(mv.tobytes())
    mv = mv.cast("B")
    if mv.readonly:
        return mv.tobytes(), mv.nbytes
    return mv, mv.nbytes


def _addr(obj, length):
    """A pointer argument for length bytes of a bytes object or a writable
    memoryview (kept alive by the caller)."""
    if isinstance(obj, bytes) or not length:
        return obj if length else None
    return ctypes.addressof(ctypes.c_char.from_buffer(obj))


class _Kept:
    """A kept call of an async method or a generator."""

    __slots__ = ("ctx", "task", "cancelled", "key")

    def __init__(self, ctx):
        self.ctx = ctx
        self.task = None
        self.cancelled = False
        self.key = None


class _Server:
    """The one actor of this worker process: its type, instance and loop."""

    def __init__(self):
        self.cls = None
        self.instance = None
        self.keep = []        # the ctypes objects C holds pointers to
        self.kept = {}        # key -> _Kept (async calls, for their cancel)
        self.next_key = 1
        self.lock = threading.Lock()
        self.aloop = None     # the asyncio loop, on a thread of its own
        self.athread = None
        self.cancel_cb = CANCEL_FN(self._on_cancel)

    # -- registration -------------------------------------------------------
    def register(self, cls):
        name = cls._spoke_type
        ms = methods_of(cls)
        table = (_Method * max(len(ms), 1))()
        fns = []
        for i, (mid, mname, fn) in enumerate(ms):
            c = METHOD_FN(self._make_method(cls, mname, fn))
            fns.append(c)
            table[i].id = mid
            table[i].name = mname.encode()
            table[i].fn = c
        t = _ActorType()
        t.name = name.encode()
        t.state_size = 0
        t.init = INIT_FN(lambda state, args, cls=cls: self._init(cls, args))
        t.fini = FINI_FN(self._fini)
        t.methods = table
        t.n_methods = len(ms)
        t.max_concurrency = cls._spoke_max_concurrency
        rc = lib.spoke_actor_type_register(ctypes.byref(t))
        if rc < 0:
            raise Error(rc, "registering actor type %s (%s): %s" % (
                name, cls.__qualname__, (lib.spoke_errmsg() or b"").decode("utf-8", "replace")))
        self.keep += [t, table, fns, t.init, t.fini]
        if any(inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn)
               for _, _, fn in ms):
            self._start_asyncio()
        return name

    def _start_asyncio(self):
        if self.aloop is not None:
            return
        self.aloop = asyncio.new_event_loop()
        ready = threading.Event()

        def run():
            asyncio.set_event_loop(self.aloop)
            self.aloop.call_soon(ready.set)
            self.aloop.run_forever()
        self.athread = threading.Thread(target=run, name="spoke-asyncio", daemon=True)
        self.athread.start()
        ready.wait(10)

    # -- init and fini ------------------------------------------------------
    def _init(self, cls, args):
        try:
            a = args.contents
            self.cls = cls
            self.instance = cls(ctypes.string_at(a.data, a.len) if a.len else b"")
            return 0
        except BaseException as e:
            _log_exception("%s.__init__ failed" % cls.__qualname__)
            code = e.code if isinstance(e, Error) and e.code < 0 else SPOKE_ESPAWN
            return _fail(None, code, b"%s: %s", cls.__qualname__.encode(),
                         _describe(e).encode("utf-8", "replace"))

    def _fini(self, state):
        try:
            if self.aloop is not None:
                self.aloop.call_soon_threadsafe(self.aloop.stop)
                self.athread.join(2)
            self.instance = None
        except BaseException:
            _log_exception("fini")

    # -- methods ------------------------------------------------------------
    def _make_method(self, cls, mname, fn):
        what = "%s.%s" % (cls.__qualname__, fn.__name__)
        if inspect.isgeneratorfunction(fn):
            return lambda state, req, reply: self._generator(fn, what, req, reply)
        if inspect.iscoroutinefunction(fn):
            return lambda state, req, reply: self._async(fn, what, req, reply)
        if inspect.isasyncgenfunction(fn):
            return lambda state, req, reply: self._async(fn, what, req, reply, agen=True)
        server = self

        def plain(state, req, reply):
            mv = None
            try:
                r = req.contents
                mv = _request(r.data, r.len)
                out, n = _reply_bytes(fn(server.instance, mv), what)
                if n and _put_raw(reply, _addr(out, n), n) < 0:
                    return _fail(reply, -12, b"%s", b"the reply could not be packed")
                return 0
            except BaseException as e:
                _log_exception(what)
                return _fail(reply, _status_of(e), b"%s", _describe(e).encode("utf-8", "replace"))
            finally:
                _release(mv)
        return plain

    def _keep_call(self, reply, what):
        ctx = lib.spoke_call_defer(reply)
        if not ctx:
            msg = (lib.spoke_errmsg() or b"").decode("utf-8", "replace")
            raise RuntimeError("%s: cannot keep the call: %s" % (what, msg))
        return ctx

    def _finish(self, ctx, result, what):
        out, n = _reply_bytes(result, what)
        return _finish(ctx, 0, _addr(out, n), n)

    def _finish_error(self, ctx, e):
        msg = _describe(e).encode("utf-8", "replace")
        return _finish(ctx, _status_of(e), msg, len(msg))

    # generators: a thread of their own per call
    def _generator(self, fn, what, req, reply):
        try:
            ctx = self._keep_call(reply, what)
        except BaseException as e:
            _log_exception(what)
            return _fail(reply, _status_of(e), b"%s", _describe(e).encode("utf-8", "replace"))
        threading.Thread(target=self._run_generator, args=(ctx, fn, what),
                         name="spoke-stream", daemon=True).start()
        return 0

    @staticmethod
    def _kept_request(ctx):
        v = lib.spoke_call_request(ctx)
        return _request(v.data, v.len)

    def _emit_timeout_ms(self, ctx):
        deadline = lib.spoke_call_deadline(ctx)
        if not deadline:
            return EMIT_TIMEOUT_S * 1000
        left = deadline // 1000 - int(_monotonic_ms())
        return max(1, min(left, 2**31 - 1))

    def _run_generator(self, ctx, fn, what):
        req = self._kept_request(ctx)
        try:
            self._stream_generator(ctx, fn(self.instance, req), what)
        except BaseException as e:  # the generator function's own call failed
            _log_exception(what)
            self._finish_error(ctx, e)
        finally:
            _release(req)  # its memory is the kept call's, given back now

    def _stream_generator(self, ctx, gen, what):
        streaming = lib.spoke_call_is_stream(ctx)
        joined = [] if not streaming else None
        deadline = lib.spoke_call_deadline(ctx)  # us, CLOCK_MONOTONIC; 0: none
        wait_ms = EMIT_TIMEOUT_S * 1000
        try:
            for chunk in gen:
                if chunk.__class__ is bytes:  # the common case, no conversion
                    out, n = chunk, len(chunk)
                else:
                    out, n = _reply_bytes(chunk, what)
                if not streaming:
                    joined.append(bytes(out[:n]) if not isinstance(out, bytes) else out)
                    continue
                if deadline:
                    wait_ms = max(1, min(deadline // 1000 - int(_monotonic_ms()), 2**31 - 1))
                rc = _emit(ctx, out if n else None, n, wait_ms) if out.__class__ is bytes \
                    else _emit(ctx, _addr(out, n), n, wait_ms)
                if rc == 0:
                    continue
                if rc == SPOKE_ECANCELED:
                    gen.close()
                    _finish(ctx, 0, None, 0)  # cancelled: gives the context back
                    return
                gen.close()
                msg = (lib.spoke_errmsg() or b"").decode("utf-8", "replace")
                if rc == SPOKE_EAGAIN:
                    msg = "the reader fell behind: %s" % msg
                self._finish_error(ctx, Error(rc, msg))
                return
            self._finish(ctx, b"".join(joined) if joined is not None else None, what)
        except BaseException as e:
            _log_exception(what)
            self._finish_error(ctx, e)

    # async def: tasks of the asyncio loop
    def _async(self, fn, what, req, reply, agen=False):
        try:
            ctx = self._keep_call(reply, what)
        except BaseException as e:
            _log_exception(what)
            return _fail(reply, _status_of(e), b"%s", _describe(e).encode("utf-8", "replace"))
        k = _Kept(ctx)
        with self.lock:
            k.key = self.next_key
            self.next_key += 1
            self.kept[k.key] = k
        self.aloop.call_soon_threadsafe(self._start_task, k, fn, what, agen)
        # After the task's start in the loop's queue: a cancel finds k.task.
        lib.spoke_call_on_cancel(ctx, self.cancel_cb, k.key)
        return 0

    def _start_task(self, k, fn, what, agen):
        k.task = self.aloop.create_task(self._serve_task(k, fn, what, agen))
        if k.cancelled:
            k.task.cancel()

    async def _serve_task(self, k, fn, what, agen):
        ctx = k.ctx
        req = None
        try:
            req = self._kept_request(ctx)
            if agen:
                await self._serve_agen(k, fn(self.instance, req), what)
                return
            result = await fn(self.instance, req)
            self._finish(ctx, result, what)
        except asyncio.CancelledError:
            # The call was cancelled (its finish sends nothing), or the
            # method's own code cancelled its task: that fails the call.
            self._finish_error(ctx, Error(SPOKE_ECANCELED, "%s was cancelled" % what))
        except BaseException as e:
            _log_exception(what)
            self._finish_error(ctx, e)
        finally:
            _release(req)
            with self.lock:
                self.kept.pop(k.key, None)

    async def _serve_agen(self, k, agen, what):
        ctx = k.ctx
        streaming = lib.spoke_call_is_stream(ctx)
        joined = []
        try:
            async for chunk in agen:
                out, n = _reply_bytes(chunk, what)
                if not streaming:
                    joined.append(bytes(out[:n]) if not isinstance(out, bytes) else out)
                    continue
                # On the asyncio thread: no blocking wait, a sleep instead.
                waited = 0.0
                limit = self._emit_timeout_ms(ctx) / 1000
                while True:
                    rc = _emit(ctx, _addr(out, n), n, 0)
                    if rc != SPOKE_EAGAIN or waited >= limit:
                        break
                    await asyncio.sleep(0.001)
                    waited += 0.001
                if rc == SPOKE_ECANCELED:
                    raise asyncio.CancelledError()
                if rc < 0:
                    raise Error(rc, (lib.spoke_errmsg() or b"").decode("utf-8", "replace"))
        finally:
            await agen.aclose()
        self._finish(ctx, b"".join(joined), what)

    def _on_cancel(self, ctx, arg):
        # On the worker's loop thread: the task is cancelled on its own.
        try:
            with self.lock:
                k = self.kept.get(arg or 0)
            if k is not None and self.aloop is not None:
                self.aloop.call_soon_threadsafe(self._cancel_task, k)
        except BaseException:
            _log_exception("cancel")

    @staticmethod
    def _cancel_task(k):
        k.cancelled = True
        if k.task is not None:
            k.task.cancel()


def _monotonic_ms():
    return _clock_gettime(_CLOCK_MONOTONIC) * 1000.0


SERVER = _Server()


def register(cls):
    """Registers a decorated class as an actor type of this process (the
    worker does it for the classes it imports); returns its type name."""
    if cls not in _TYPES:
        raise TypeError("%s.%s is not an actor class (decorate it with @spoke.actor)"
                        % (cls.__module__, cls.__qualname__))
    return SERVER.register(cls)


def classes_in(module):
    """The @spoke.actor classes defined in module."""
    return [c for c in vars(module).values()
            if isinstance(c, type) and c in _TYPES and c.__module__ == module.__name__]
