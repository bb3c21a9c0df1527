"""Any buffer-protocol object as a (pointer, length) for the C API, no copy.

``bytes`` go straight through ctypes (its char pointer).  Everything else
(bytearray, memoryview, array.array, mmap, a NumPy array, read-only or
writable) is borrowed with Python's own PyObject_GetBuffer and released with
PyBuffer_Release once the C call returned: no copy, and the object cannot be
resized meanwhile.  Only a buffer that is not contiguous in memory (a strided
NumPy slice, say) is copied once, for requests; as a reply buffer it is
refused.
"""

import ctypes
import mmap
import os

__all__ = ["Borrowed", "borrow", "ReplyBuf"]

_PyBUF_SIMPLE = 0
_PyBUF_WRITABLE = 0x0001


class _PyBuffer(ctypes.Structure):
    # Py_buffer, unchanged since Python 3.0 and part of the stable ABI since 3.11.
    _fields_ = [
        ("buf", ctypes.c_void_p),
        ("obj", ctypes.c_void_p),
        ("len", ctypes.c_ssize_t),
        ("itemsize", ctypes.c_ssize_t),
        ("readonly", ctypes.c_int),
        ("ndim", ctypes.c_int),
        ("format", ctypes.c_char_p),
        ("shape", ctypes.c_void_p),
        ("strides", ctypes.c_void_p),
        ("suboffsets", ctypes.c_void_p),
        ("internal", ctypes.c_void_p),
    ]


try:
    _api = ctypes.pythonapi  # a PyDLL: called with the GIL held
    _get = _api.PyObject_GetBuffer
    _get.argtypes = [ctypes.py_object, ctypes.POINTER(_PyBuffer), ctypes.c_int]
    _get.restype = ctypes.c_int
    _release = _api.PyBuffer_Release
    _release.argtypes = [ctypes.POINTER(_PyBuffer)]
    _release.restype = None
except AttributeError:  # not CPython: ctypes' from_buffer, and one copy for read-only data
    _get = None


class Borrowed:
    """A borrowed buffer: ``.ptr`` (an int, or the bytes object itself) and
    ``.len``; ``release()`` (or the with-block's end) gives it back."""

    __slots__ = ("ptr", "len", "_view", "_keep")

    def __init__(self, ptr, length, view=None, keep=None):
        self.ptr = ptr
        self.len = length
        self._view = view
        self._keep = keep

    def release(self):
        if self._view is not None:
            _release(ctypes.byref(self._view))
            self._view = None
        self._keep = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


_EMPTY = Borrowed(None, 0)


def borrow(obj, what, writable=False):
    """Borrows obj's memory.  what names the argument in errors
    ("data", "out_buffer").  A request (writable False) of None is empty."""
    if not writable:
        if obj is None:
            return _EMPTY
        if type(obj) is bytes:
            return Borrowed(obj, len(obj)) if obj else _EMPTY
    if isinstance(obj, str):
        raise TypeError("spoke: %s is a str: pass bytes (e.g. %s.encode())" % (what, what))
    if _get is not None:
        view = _PyBuffer()
        try:
            _get(obj, ctypes.byref(view), _PyBUF_WRITABLE if writable else _PyBUF_SIMPLE)
        except BufferError as e:
            if writable:
                raise TypeError("spoke: %s (%s) is not a writable contiguous buffer: %s"
                                % (what, type(obj).__name__, e)) from None
            return _copied(obj, what)
        except TypeError:
            raise TypeError("spoke: %s (%s) does not support the buffer protocol"
                            % (what, type(obj).__name__)) from None
        return Borrowed(view.buf, view.len, view)
    # Not CPython: ctypes can borrow writable memory only.
    try:
        mv = memoryview(obj)
    except TypeError:
        raise TypeError("spoke: %s (%s) does not support the buffer protocol"
                        % (what, type(obj).__name__)) from None
    if not mv.contiguous:
        if writable:
            raise TypeError("spoke: %s is not contiguous" % what)
        return _copied(obj, what)
    mv = mv.cast("B")
    if mv.readonly:
        if writable:
            raise TypeError("spoke: %s (%s) is read-only" % (what, type(obj).__name__))
        data = mv.tobytes()
        return Borrowed(data, len(data))
    arr = (ctypes.c_char * mv.nbytes).from_buffer(mv)
    return Borrowed(ctypes.addressof(arr), mv.nbytes, keep=arr)


def _copied(obj, what):
    try:
        data = memoryview(obj).tobytes()
    except TypeError:
        raise TypeError("spoke: %s (%s) does not support the buffer protocol"
                        % (what, type(obj).__name__)) from None
    return Borrowed(data, len(data)) if data else _EMPTY


# --- reply buffers -------------------------------------------------------------

_TRIM = 1 << 20  # after a reply larger than this, its pages go back to the kernel


def _max_msg():
    """$SPOKE_MAX_MSG (bytes, optional K/M/G suffix) as the library reads
    it, else its default of 64 MiB; a bad value is the C client's to
    report (spoke_client_open fails naming it)."""
    text = os.environ.get("SPOKE_MAX_MSG", "").strip()
    mult = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    try:
        if text and text[-1].lower() in mult:
            n = int(text[:-1]) * mult[text[-1].lower()]
        else:
            n = int(text) if text else 64 << 20
    except ValueError:
        n = 64 << 20
    return min(max(n, 4 << 10), 1 << 30)


class ReplyBuf:
    """Room for the largest reply the protocol allows ($SPOKE_MAX_MSG, 64
    MiB by default), as anonymous memory that the kernel maps only where a
    reply is written: a small reply costs a page, so a reply never fails
    for want of room (SPOKE_ENOSPC) and a method never runs twice to make
    room for one.  Pages of a large reply are given back once it is copied
    out."""

    __slots__ = ("cap", "addr", "_mm", "_arr")

    def __init__(self, cap=None):
        self.cap = _max_msg() if cap is None else cap
        self._mm = mmap.mmap(-1, self.cap)
        self._arr = (ctypes.c_char * self.cap).from_buffer(self._mm)
        self.addr = ctypes.addressof(self._arr)

    def take(self, n):
        """The first n bytes, as bytes."""
        data = ctypes.string_at(self.addr, n)
        if n > _TRIM:
            self._mm.madvise(mmap.MADV_DONTNEED, 0, (n + mmap.PAGESIZE - 1) & -mmap.PAGESIZE)
        return data
