"""Spoke from Python: a driver's side of a job, over libspoke with ctypes.

    import spoke
    with spoke.Client() as c:                    # $SPOKE_HUB, the job's token
        with c.actor("hello-0") as a:
            print(a.call(1, b"hi"))              # bytes in, bytes out
            fut = a.call_async(1, b"x")          # pipelined: many in flight
            print(fut.result(timeout=5))         # or: await fut
            fut.cancel()                         # spoke.Cancelled, the actor told
            for chunk in a.stream(2, b"prompt"): # a streamed reply, chunk by chunk
                print(chunk)                     # (async for, too)

Actors in Python: @spoke.actor("Type") on a class, @spoke.method(ID) on its
methods, served by spoke-worker-python (see spoke.server, spoke.worker).

Errors are spoke.Error with .code, .name and .message, one subclass per
code (spoke.DeadActor, spoke.Timeout, spoke.NoMethod, spoke.MethodError with
.status, spoke.Cancelled...).  The library is libspoke: $SPOKE_LIBRARY, else the installed
one, else a build tree's (see spoke._lib).
"""

from ._lib import lib as _clib, path as library_path
from .errors import *  # noqa: F401,F403 (the error classes)
from .errors import __all__ as _errors_all
from .actor import Actor, Future
from .stream import Stream
from .client import Client, Ticket, Slot, Node
from .server import actor, method

__version__ = _clib.spoke_version().decode()

__all__ = ["Client", "Actor", "Future", "Stream", "Ticket", "Slot", "Node",
           "library_path", "version", "actor", "method"] + _errors_all


def version():
    """The version of the libspoke that was loaded."""
    return _clib.spoke_version().decode()
