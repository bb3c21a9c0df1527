"""Finding and loading libspoke, and the C API's types and prototypes.

The library is looked for, in this order:

1. ``$SPOKE_LIBRARY``: the path of a libspoke shared object (the build's
   tests set it; a bad path is an ImportError naming it);
2. a build tree's ``.libs/libspoke.so``: in the directory that holds the
   package (the link ``spoke`` that ``make`` leaves at the top of the build
   tree) or three levels up (``runtime/python/spoke`` in a source tree built
   in place);
3. the installed one: ``make install`` puts ``_paths.py`` beside this file
   with the library directory, relative to the package (so that a copy
   installed under a DESTDIR finds its own) and absolute;
4. ``ctypes.util.find_library("spoke")`` (the linker's search path).

ctypes.CDLL releases the GIL around every foreign call, so a call that waits
for its reply lets the other Python threads run.
"""

import ctypes
import ctypes.util
import os

__all__ = ["lib", "path"]

NODE_NAME_MAX = 64
MAX_SLOT_GPUS = 16


class ClientOpts(ctypes.Structure):
    _fields_ = [
        ("hub", ctypes.c_char_p),
        ("token", ctypes.c_char_p),
        ("timeout_ms", ctypes.c_int),
        ("poll_us", ctypes.c_int),
    ]


class Resources(ctypes.Structure):
    _fields_ = [("gpus", ctypes.c_uint32), ("cpus", ctypes.c_uint32)]


class SpawnOpts(ctypes.Structure):
    _fields_ = [
        ("module", ctypes.c_char_p),
        ("program", ctypes.c_char_p),
        ("res", Resources),
        ("poll_us", ctypes.c_int),
        ("timeout_ms", ctypes.c_int),
        ("max_restarts", ctypes.c_uint32),
        ("restart_backoff_ms", ctypes.c_uint32),
    ]


class Slot(ctypes.Structure):
    _fields_ = [
        ("rank", ctypes.c_uint32),
        ("node_rank", ctypes.c_uint32),
        ("local_rank", ctypes.c_uint32),
        ("node", ctypes.c_char * NODE_NAME_MAX),
        ("n_gpus", ctypes.c_uint32),
        ("gpus", ctypes.c_int32 * MAX_SLOT_GPUS),
    ]


class TicketHead(ctypes.Structure):
    """struct spoke_ticket without its flexible array of slots."""

    _fields_ = [("id", ctypes.c_uint64), ("n_slots", ctypes.c_uint32)]


# Where the slots start: offsetof(spoke_ticket, slots), the end of n_slots
# rounded up to the slots' alignment (not sizeof the head: no tail padding).
_align = ctypes.alignment(Slot)
_end = TicketHead.n_slots.offset + ctypes.sizeof(ctypes.c_uint32)
SLOTS_OFFSET = (_end + _align - 1) // _align * _align


class NodeInfo(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char * NODE_NAME_MAX),
        ("n_gpus", ctypes.c_uint32),
        ("free_gpus", ctypes.c_uint32),
    ]


class Future(ctypes.Structure):
    _fields_ = [
        ("status", ctypes.c_int),
        ("reply_len", ctypes.c_size_t),
        ("reply_", ctypes.c_void_p),
        ("cap_", ctypes.c_size_t),
        ("id_", ctypes.c_uint64),
        ("method_status_", ctypes.c_int),
        ("done_", ctypes.c_int),
        ("actor_", ctypes.c_void_p),
    ]


class View(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_void_p),
        ("len", ctypes.c_size_t),
        ("pos", ctypes.c_size_t),
        ("err", ctypes.c_int),
    ]


class SpkBuf(ctypes.Structure):
    pass


SpkBuf._fields_ = [
    ("data", ctypes.c_void_p),
    ("len", ctypes.c_size_t),
    ("cap", ctypes.c_size_t),
    ("err", ctypes.c_int),
    ("grow", ctypes.c_void_p),
    ("owner", ctypes.c_void_p),
]

PACK_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(SpkBuf), ctypes.c_void_p)
UNPACK_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(View), ctypes.c_void_p)


class Serializer(ctypes.Structure):
    _fields_ = [("pack", PACK_FN), ("unpack", UNPACK_FN)]


_p = ctypes.c_void_p
_pp = ctypes.POINTER(ctypes.c_void_p)
_sz = ctypes.c_size_t
_i = ctypes.c_int
_u32 = ctypes.c_uint32
_str = ctypes.c_char_p

# name: (restype, argtypes)
_PROTOTYPES = {
    "spoke_version": (_str, []),
    "spoke_strerror": (_str, [_i]),
    "spoke_errmsg": (_str, []),
    "spoke_method_status": (_i, []),
    "spoke_client_open": (_i, [_pp, ctypes.POINTER(ClientOpts)]),
    "spoke_client_close": (None, [_p]),
    "spoke_nodes": (_i, [_p, ctypes.POINTER(NodeInfo), _sz, _i]),
    "spoke_spawn": (_i, [_p, _str, _str, _p, _sz, ctypes.POINTER(SpawnOpts)]),
    "spoke_kill": (_i, [_p, _str, _i]),
    "spoke_gang_allocate": (_i, [_p, _u32, _u32, ctypes.POINTER(Resources), _i, _pp, _i]),
    "spoke_gang_launch": (_i, [_p, _p, _u32, _str, _str, _p, _sz, ctypes.POINTER(SpawnOpts)]),
    "spoke_gang_release": (_i, [_p, _p, _i]),
    "spoke_actor_open": (_i, [_p, _str, _pp, _i]),
    "spoke_actor_close": (None, [_p]),
    "spoke_actor_set_poll": (None, [_p, _i]),
    "spoke_actor_transport": (_str, [_p]),
    "spoke_actor_use_transport": (_i, [_p, _str, _i]),
    "spoke_call": (_i, [_p, _u32, _p, _sz, _p, _sz, ctypes.POINTER(_sz), _i]),
    "spoke_call_obj": (_i, [_p, _u32, ctypes.POINTER(Serializer), _p,
                            ctypes.POINTER(Serializer), _p, _i]),
    "spoke_call_async": (_i, [_p, _u32, _p, _sz, _p, _sz, ctypes.POINTER(Future)]),
    "spoke_future_wait": (_i, [ctypes.POINTER(Future), _i]),
    "spoke_future_cancel": (_i, [ctypes.POINTER(Future)]),
    "spoke_call_stream": (_i, [_p, _u32, _p, _sz, _pp, _i]),
    "spoke_stream_next": (_i, [_p, _p, _sz, ctypes.POINTER(_sz), _i]),
    "spoke_stream_cancel": (_i, [_p]),
    "spoke_stream_close": (None, [_p]),
    "spoke_buf_put_raw": (_i, [ctypes.POINTER(SpkBuf), _p, _sz]),
}


def _paths_candidates():
    try:
        from . import _paths
    except ImportError:
        return []
    here = os.path.dirname(os.path.abspath(__file__))
    dirs = [os.path.normpath(os.path.join(here, _paths.LIBDIR_REL)), _paths.LIBDIR]
    return [os.path.join(d, "libspoke.so.1") for d in dirs] + \
           [os.path.join(d, "libspoke.so") for d in dirs]


def _candidates():
    here = os.path.dirname(os.path.abspath(__file__))
    found = [os.path.normpath(os.path.join(up, ".libs", "libspoke.so"))
             for up in (os.path.dirname(here), os.path.join(here, "..", "..", ".."))]
    return found + _paths_candidates()


def _load():
    tried = []
    env = os.environ.get("SPOKE_LIBRARY")
    if env:
        if not os.path.isfile(env):
            raise ImportError("spoke: SPOKE_LIBRARY=%s: no such file (the path of "
                              "libspoke.so)" % env)
        return _open(env), env
    for cand in _candidates():
        if os.path.isfile(cand):
            return _open(cand), cand
        tried.append(cand)
    name = ctypes.util.find_library("spoke")
    if name:
        return _open(name), name
    raise ImportError("spoke: libspoke not found: set SPOKE_LIBRARY to the path of "
                      "libspoke.so (tried %s and the linker's path)" % ", ".join(tried))


_ASAN_HINT = ("a build with --enable-sanitizers: preload the sanitizer runtime, "
              "LD_PRELOAD=$(cc -print-file-name=libasan.so), and set "
              "ASAN_OPTIONS=detect_leaks=0 for Python's own allocations")


def _needs_asan(where):
    """True if the library links AddressSanitizer's runtime and this process
    has not loaded it: loading it would abort the process."""
    try:
        with open(where, "rb") as f:
            head = f.read(1 << 18)  # .dynstr lies near the start
        if b"libasan.so" not in head:
            return False
        with open("/proc/self/maps") as m:
            return "libasan" not in m.read()
    except OSError:
        return False


class AsanMissing(ImportError):
    """libspoke needs the sanitizer runtime this process lacks; .library is
    its path (spoke-worker-python restarts itself with it preloaded)."""

    def __init__(self, where):
        super().__init__("spoke: cannot load %s: %s" % (where, _ASAN_HINT))
        self.library = where


def _open(where):
    if _needs_asan(where):
        raise AsanMissing(where)
    try:
        return ctypes.CDLL(where)
    except OSError as e:
        raise ImportError("spoke: cannot load %s: %s" % (where, e)) from e


lib, path = _load()
for _name, (_res, _args) in _PROTOTYPES.items():
    _fn = getattr(lib, _name)
    _fn.restype = _res
    _fn.argtypes = _args
