"""spoke.Error and one subclass per code of spoke/errors.h.

Every failure of the C API comes back as an instance of the subclass of its
code, carrying the code (negative), its name and the message the C library
left in spoke_errmsg() for the failing thread.  A code that is a negative
errno (-ECONNREFUSED, say) is a plain spoke.Error named after the errno.
"""

import concurrent.futures as _cf
import errno as _errno

from ._lib import lib

__all__ = [
    "Error", "ProtocolError", "VersionMismatch", "AuthError", "TooBig", "NoActor",
    "NoMethod", "DeadActor", "NoType", "NoResources", "Timeout", "NoTicket", "Exists",
    "Short", "NoSpace", "SpawnError", "InvalidArgument", "MethodError", "NoHub",
    "RdmaError", "Closed", "HubError", "SelfCall", "TransportError", "Cancelled", "Again",
    "error_class",
    "raise_last",
]


class Error(Exception):
    """A Spoke failure: ``.code`` (negative), ``.name`` ("SPOKE_EDEAD",
    "ECONNREFUSED") and ``.message`` (spoke_errmsg(), else spoke_strerror())."""

    code = None  # the subclass's own code
    name = "SPOKE_E?"

    def __init__(self, code, message=None):
        code = int(code)
        if not message:
            message = lib.spoke_strerror(code).decode("utf-8", "replace")
        super().__init__(code, message)
        self.code = code
        self.name = code_name(code)
        self.message = message

    def __str__(self):
        return "%s: %s" % (self.name, self.message)

    def __reduce__(self):
        return (type(self), (self.code, self.message))


class MethodError(Error):
    """The actor's method itself failed (SPOKE_EMETHOD); ``.status`` is its
    own return code (spoke_method_status()), ``.status_name`` its name."""

    def __init__(self, code, message=None, status=0):
        super().__init__(code, message)
        self.status = int(status)
        self.status_name = code_name(self.status) if self.status else ""

    def __reduce__(self):
        return (type(self), (self.code, self.message, self.status))


# code, constant name, class name, extra base classes
_TABLE = [
    (-1001, "SPOKE_EPROTO", "ProtocolError", ()),
    (-1002, "SPOKE_EVERSION", "VersionMismatch", ()),
    (-1003, "SPOKE_EAUTH", "AuthError", (PermissionError,)),
    (-1004, "SPOKE_ETOOBIG", "TooBig", ()),
    (-1005, "SPOKE_ENOACTOR", "NoActor", (LookupError,)),
    (-1006, "SPOKE_ENOMETHOD", "NoMethod", (LookupError,)),
    (-1007, "SPOKE_EDEAD", "DeadActor", ()),
    (-1008, "SPOKE_ENOTYPE", "NoType", (LookupError,)),
    (-1009, "SPOKE_ENORES", "NoResources", ()),
    (-1010, "SPOKE_ETIMEDOUT", "Timeout", (TimeoutError,)),
    (-1011, "SPOKE_ENOTICKET", "NoTicket", (LookupError,)),
    (-1012, "SPOKE_EEXIST", "Exists", ()),
    (-1013, "SPOKE_ESHORT", "Short", ()),
    (-1014, "SPOKE_ENOSPC", "NoSpace", ()),
    (-1015, "SPOKE_ESPAWN", "SpawnError", ()),
    (-1016, "SPOKE_EINVAL", "InvalidArgument", (ValueError,)),
    (-1017, "SPOKE_EMETHOD", "MethodError", None),
    (-1018, "SPOKE_ENOHUB", "NoHub", ()),
    (-1019, "SPOKE_ERDMA", "RdmaError", ()),
    (-1020, "SPOKE_ECLOSED", "Closed", ()),
    (-1021, "SPOKE_EHUB", "HubError", (ConnectionError,)),
    (-1022, "SPOKE_ESELF", "SelfCall", ()),
    (-1023, "SPOKE_ETRANSPORT", "TransportError", ()),
    # Also concurrent.futures' CancelledError (an Exception, not asyncio's
    # BaseException): ``except CancelledError`` around result() catches it.
    (-1024, "SPOKE_ECANCELED", "Cancelled", (_cf.CancelledError,)),
    (-1025, "SPOKE_EAGAIN", "Again", ()),
]


_BY_CODE = {}
_NAMES = {}
for _code, _cname, _pyname, _bases in _TABLE:
    if _bases is None:
        _cls = MethodError
    else:
        _cls = type(_pyname, (Error,) + _bases,
                    {"__doc__": "%s (%d): %s." % (_cname, _code,
                                                   lib.spoke_strerror(_code).decode())})
        globals()[_pyname] = _cls
    _cls.code = _code
    _cls.name = _cname
    _BY_CODE[_code] = _cls
    _NAMES[_code] = _cname
del _code, _cname, _pyname, _bases, _cls
# SPOKE_EOF (-1026), the end of a stream, is never raised: iteration ends.
_NAMES[-1026] = "SPOKE_EOF"


def code_name(code):
    """"SPOKE_EDEAD" for -1007, "ECONNREFUSED" for -errno, "OK" for 0."""
    if code == 0:
        return "OK"
    if code in _NAMES:
        return _NAMES[code]
    return _errno.errorcode.get(-code, "E%d" % code)


def error_class(code):
    """The class that stands for code (spoke.Error for an unknown one)."""
    return _BY_CODE.get(code, Error)


def raise_last(code, what=None):
    """Raises the error of code with the calling thread's spoke_errmsg()."""
    msg = lib.spoke_errmsg()
    msg = msg.decode("utf-8", "replace") if msg else ""
    if what and not msg:
        msg = "%s: %s" % (what, lib.spoke_strerror(code).decode("utf-8", "replace"))
    if code == -1017:
        raise MethodError(code, msg, lib.spoke_method_status())
    raise _BY_CODE.get(code, Error)(code, msg)
