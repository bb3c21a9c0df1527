"""spoke.Client (spoke_client): the hub's side of a job, and gang tickets."""

import collections
import ctypes
import os
import shutil
import weakref

from . import _lib
from ._buffers import borrow
from ._util import count_arg, name_arg, timeout_ms
from .actor import Actor, _Guard
from .errors import Closed, InvalidArgument, NoTicket, raise_last

lib = _lib.lib

ECLOSED = -1020
EINVAL = -1016
ENOTICKET = -1011

__all__ = ["Client", "Ticket", "Slot", "Node"]

#: A gang slot: global rank, gang node (rank // per_node), local rank in it
#: (rank % per_node), the node it is placed on, and its GPU ids.
Slot = collections.namedtuple("Slot", "rank node_rank local_rank node gpus")
#: A live node: its name, the GPUs its agent offers, those not reserved.
Node = collections.namedtuple("Node", "name gpus free_gpus")


def _poll_arg(poll_us, what):
    if poll_us is None:
        return -1
    if isinstance(poll_us, bool) or not isinstance(poll_us, int) or poll_us < 0:
        raise InvalidArgument(EINVAL, "%s=%r: expected an int >= 0 (microseconds), or None "
                              "for $SPOKE_POLL_US" % (what, poll_us))
    return poll_us


def worker_python():
    """The path of spoke-worker-python for a spawn's program:
    $SPOKE_WORKER_PYTHON, else beside the package in a build tree (make's
    link `spoke`), else where make install put it, else on $PATH."""
    env = os.environ.get("SPOKE_WORKER_PYTHON")
    if env:
        return env
    here = os.path.dirname(os.path.abspath(__file__))
    cands = [os.path.join(os.path.dirname(here), "spoke-worker-python")]
    try:
        from . import _paths
        cands.append(os.path.join(getattr(_paths, "BINDIR", ""), "spoke-worker-python"))
    except ImportError:
        pass
    for c in cands:
        if os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    found = shutil.which("spoke-worker-python")
    if found:
        return found
    raise InvalidArgument(EINVAL, "spoke-worker-python not found (tried %s and $PATH): set "
                          "SPOKE_WORKER_PYTHON to its path" % ", ".join(cands))


def _python_actor(type, python, module, program):
    """type, module and program of a spawn of the Python actor python
    ("package.module:Class"): the type from its decorator if None."""
    from . import worker
    if module is not None or program is not None:
        raise InvalidArgument(EINVAL, "python=%r: give module and program only for C actors"
                              % (python,))
    try:
        worker.parse_spec(python)
        if type is None:
            type = worker.type_of(python)
    except ValueError as e:
        raise InvalidArgument(EINVAL, "python=%r: %s" % (python, e)) from None
    return type, python, worker_python()


def _spawn_opts(module, program, gpus, timeout, poll_us, max_restarts=0, restart_backoff=0):
    o = _lib.SpawnOpts()
    o.module = None if module is None else name_arg(module, "module")
    o.program = None if program is None else name_arg(program, "program")
    o.res.gpus = count_arg(gpus, "gpus")
    o.res.cpus = 0
    o.poll_us = _poll_arg(poll_us, "poll_us")
    o.timeout_ms = timeout_ms(timeout, "timeout")
    o.max_restarts = count_arg(max_restarts, "max_restarts")
    o.restart_backoff_ms = timeout_ms(restart_backoff, "restart_backoff") \
        if restart_backoff != 0 else 0
    return o


class Client:
    """A connection to the job's hub (spoke_client_open).

    hub ("host:port"), token and timeout (seconds, the default of every
    blocking call) default to the environment like the C client: $SPOKE_HUB,
    $SPOKE_TOKEN or the file $SPOKE_TOKEN_FILE, $SPOKE_TIMEOUT_MS (else 10 s).
    poll_us: spin this long on a reply before sleeping (None: $SPOKE_POLL_US
    or 0).  ``with spoke.Client() as c:`` closes it at the block's end, with
    the tickets it holds (the hub stops their actors) and the actor handles
    opened from it."""

    def __init__(self, hub=None, token=None, timeout=None, poll_us=None):
        opts = _lib.ClientOpts()
        opts.hub = None if hub is None else name_arg(hub, "hub")
        opts.token = None if token is None else name_arg(token, "token")
        opts.timeout_ms = timeout_ms(timeout, "timeout")
        opts.poll_us = _poll_arg(poll_us, "poll_us")
        self._guard = _Guard()
        self._actors = weakref.WeakSet()
        self._tickets = weakref.WeakSet()
        h = ctypes.c_void_p()
        rc = lib.spoke_client_open(ctypes.byref(h), ctypes.byref(opts))
        if rc < 0:
            self._h = None
            self._guard.closed = True
            raise_last(rc, "Client")
        self._h = h

    # -- life ---------------------------------------------------------------
    def close(self):
        """Closes the actor handles opened from it, then the connection to
        the hub: its gang tickets are released (their actors stop).  Again:
        nothing."""
        guard = getattr(self, "_guard", None)
        if guard is None or guard.closed:
            return
        for a in list(self._actors):
            a.close()
        if not guard.close():
            return
        for t in list(self._tickets):
            t._gone()
        lib.spoke_client_close(self._h)

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

    def _enter(self, what):
        self._guard.enter(what)
        return self._h

    def _forget(self, actor):
        self._actors.discard(actor)

    # -- the hub ------------------------------------------------------------
    def nodes(self, timeout=None):
        """The live nodes, as a list of spoke.Node(name, gpus, free_gpus)."""
        ms = timeout_ms(timeout, "timeout")
        cap = 16
        while True:
            arr = (_lib.NodeInfo * cap)()
            h = self._enter("nodes")
            try:
                n = lib.spoke_nodes(h, arr, cap, ms)
                if n < 0:
                    raise_last(n, "nodes")
            finally:
                self._guard.leave()
            if n <= cap:
                return [Node(arr[i].name.decode("utf-8", "replace"), arr[i].n_gpus,
                             arr[i].free_gpus) for i in range(n)]
            cap = n

    def spawn(self, type, name, args=b"", module=None, program=None, gpus=0, timeout=None,
              poll_us=None, python=None, max_restarts=0, restart_backoff=0):
        """Starts actor name of type (from the agent's modules, from module,
        or linked into program) on a node with gpus free GPUs; returns once
        its init returned.  args: bytes for its init.  python:
        "package.module:Class", an actor written in Python, served by
        spoke-worker-python (the module found on the worker's $PYTHONPATH;
        type None: the one its @spoke.actor decorator names, read from the
        source found on this process's sys.path).  max_restarts: how often
        its agent restarts it when it dies, after restart_backoff seconds
        (spoke_spawn_opts)."""
        if python is not None:
            type, module, program = _python_actor(type, python, module, program)
        t = name_arg(type, "type")
        n = name_arg(name, "name")
        o = _spawn_opts(module, program, gpus, timeout, poll_us, max_restarts,
                        restart_backoff)
        with borrow(args, "args") as a:
            h = self._enter("spawn")
            try:
                rc = lib.spoke_spawn(h, t, n, a.ptr, a.len, ctypes.byref(o))
            finally:
                self._guard.leave()
        if rc < 0:
            raise_last(rc, "spawn %s" % name)

    def kill(self, name, timeout=None):
        """Stops actor name (spawned or launched)."""
        n = name_arg(name, "name")
        ms = timeout_ms(timeout, "timeout")
        h = self._enter("kill")
        try:
            rc = lib.spoke_kill(h, n, ms)
        finally:
            self._guard.leave()
        if rc < 0:
            raise_last(rc, "kill %s" % name)

    def actor(self, name, timeout=None):
        """A spoke.Actor for calling actor name (spoke.NoActor if none)."""
        n = name_arg(name, "name")
        ms = timeout_ms(timeout, "timeout")
        out = ctypes.c_void_p()
        h = self._enter("actor")
        try:
            rc = lib.spoke_actor_open(h, n, ctypes.byref(out), ms)
        finally:
            self._guard.leave()
        if rc < 0:
            raise_last(rc, "actor %s" % name)
        a = Actor(self, n.decode("utf-8", "replace"), out)
        self._actors.add(a)
        return a

    def gang_allocate(self, nodes, per_node, gpus=1, strict=True, timeout=None):
        """Phase one of a gang: reserves nodes x per_node slots of gpus GPUs
        each, all or nothing (spoke.NoResources).  strict: each gang node on
        a node of its own.  Returns a spoke.Ticket."""
        count_arg(nodes, "nodes", 1)
        count_arg(per_node, "per_node", 1)
        res = _lib.Resources(count_arg(gpus, "gpus"), 0)
        ms = timeout_ms(timeout, "timeout")
        out = ctypes.c_void_p()
        h = self._enter("gang_allocate")
        try:
            rc = lib.spoke_gang_allocate(h, nodes, per_node, ctypes.byref(res),
                                         1 if strict else 0, ctypes.byref(out), ms)
        finally:
            self._guard.leave()
        if rc < 0:
            raise_last(rc, "gang_allocate(%d, %d)" % (nodes, per_node))
        t = Ticket(self, out)
        self._tickets.add(t)
        return t

    def __repr__(self):
        return "<spoke.Client%s>" % (" closed" if self.closed else "")


class Ticket:
    """A gang's reservation (spoke_ticket): ``.id``, ``.slots`` (a tuple of
    spoke.Slot, by rank); launch() starts an actor in a slot, release()
    stops them all and frees the slots.  ``with client.gang_allocate(...)
    as t:`` releases it at the block's end."""

    def __init__(self, client, ptr):
        self._client = client
        self._ptr = ptr
        head = _lib.TicketHead.from_address(ptr.value)
        self.id = head.id
        arr = (_lib.Slot * head.n_slots).from_address(ptr.value + _lib.SLOTS_OFFSET)
        self.slots = tuple(Slot(s.rank, s.node_rank, s.local_rank,
                                s.node.decode("utf-8", "replace"),
                                tuple(s.gpus[i] for i in range(s.n_gpus))) for s in arr)
        self.released = False

    def __len__(self):
        return len(self.slots)

    def _gone(self):  # the client closed: the C ticket is freed
        self.released = True
        self._ptr = None

    def _held(self, what):
        if self.released:
            raise NoTicket(ENOTICKET, "%s: gang ticket %d was released already" % (what, self.id))
        return self._client._enter(what)

    def launch(self, rank, type, name, args=b"", module=None, program=None, timeout=None,
               poll_us=None, python=None, max_restarts=0, restart_backoff=0):
        """Phase two: starts actor name of type in slot rank, pinned to the
        slot's GPUs (python, max_restarts, restart_backoff: as in
        Client.spawn)."""
        if python is not None:
            type, module, program = _python_actor(type, python, module, program)
        count_arg(rank, "rank")
        t = name_arg(type, "type")
        n = name_arg(name, "name")
        o = _spawn_opts(module, program, 0, timeout, poll_us, max_restarts, restart_backoff)
        with borrow(args, "args") as a:
            h = self._held("launch")
            try:
                rc = lib.spoke_gang_launch(h, self._ptr, rank, t, n, a.ptr, a.len,
                                           ctypes.byref(o))
            finally:
                self._client._guard.leave()
        if rc < 0:
            raise_last(rc, "launch %s in rank %d of ticket %d" % (name, rank, self.id))

    def release(self, timeout=None):
        """Stops the ticket's actors and frees its slots.  Again:
        spoke.NoTicket."""
        ms = timeout_ms(timeout, "timeout")
        h = self._held("release")
        try:
            rc = lib.spoke_gang_release(h, self._ptr, ms)
            if rc == 0 or rc == ENOTICKET:  # the C ticket is freed
                self._gone()
        finally:
            self._client._guard.leave()
        if rc < 0:
            raise_last(rc, "release of ticket %d" % self.id)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if not self.released and not self._client.closed:
            self.release()

    def __repr__(self):
        return "<spoke.Ticket %d: %d slots%s>" % (self.id, len(self.slots),
                                                   " released" if self.released else "")
