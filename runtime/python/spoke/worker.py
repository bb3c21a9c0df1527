"""spoke-worker-python: a worker process that serves an actor written in Python.

The agent starts it like any worker program (spoke_spawn_opts.program),
with CUDA_VISIBLE_DEVICES already set, so a framework imported by the actor
sees only the actor's GPUs.  main() gives libspoke a module loader
(spoke_worker_set_loader) and calls spoke_worker_main(): the C worker reads
its spawn information from the agent, hands the spawn's module string to the
loader, which imports the Python module and registers its @spoke.actor
classes (spoke.server), then runs the type's init (the class's __init__)
and serves calls.  ctypes releases the GIL while the C loop waits; the
callbacks (methods, init, cancels) take it.

Where the module spec travels: in the spawn's module field
(spoke_spawn_opts.module, a job file's `python:`), which already goes from
the client through the hub and the agent to the worker, per spawn, with no
change to the protocol: an environment variable would be the agent's, the
same for every actor of the node, and argv is the agent's too.  Its syntax:

    package.module:Class    that class (decorated with @spoke.actor)
    package.module          every @spoke.actor class defined in the module

Modules are found on sys.path: $PYTHONPATH (spoke-launch puts the job
file's directory first there), then Python's own.
"""

import ast
import ctypes
import importlib
import os
import re
import sys

_SPEC = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*(:[A-Za-z_]\w*)?$")

__all__ = ["parse_spec", "type_of", "load", "main"]


def parse_spec(spec):
    """'pkg.mod:Class' as ('pkg.mod', 'Class'), 'pkg.mod' as ('pkg.mod', None);
    ValueError for anything else."""
    if not isinstance(spec, str) or not _SPEC.match(spec):
        raise ValueError("%r is not a Python actor (expected package.module:Class, or "
                         "package.module)" % (spec,))
    mod, _, cls = spec.partition(":")
    return mod, cls or None


def _source_of(mod, path):
    parts = mod.split(".")
    for d in path:
        base = os.path.join(d or ".", *parts)
        for f in (base + ".py", os.path.join(base, "__init__.py")):
            if os.path.isfile(f):
                return f
    return None


def _decorator_type(node):
    for d in node.decorator_list:
        if not isinstance(d, ast.Call):
            continue
        f = d.func
        named = (isinstance(f, ast.Attribute) and f.attr == "actor") or \
                (isinstance(f, ast.Name) and f.id == "actor")
        if named and d.args and isinstance(d.args[0], ast.Constant) and \
                isinstance(d.args[0].value, str):
            return d.args[0].value
    return None


def type_of(spec, path=None):
    """The actor type name of 'pkg.mod:Class', read from the @spoke.actor
    decorator in the module's source without importing it (no side effects,
    no GPU framework loaded): spoke-launch and Client.spawn ask it when no
    type is given.  ValueError says why it cannot be read."""
    mod, cls = parse_spec(spec)
    if cls is None:
        raise ValueError("%s names no class: give package.module:Class (or the type)" % spec)
    path = sys.path if path is None else path
    src = _source_of(mod, path)
    if src is None:
        raise ValueError("module %s not found (looked in %s)" % (mod, ", ".join(
            p or "." for p in path[:8]) + (", ..." if len(path) > 8 else "")))
    try:
        with open(src, "rb") as f:
            tree = ast.parse(f.read(), src)
    except (OSError, SyntaxError, ValueError) as e:
        raise ValueError("%s: %s" % (src, e)) from None
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == cls:
            name = _decorator_type(node)
            if name is None:
                raise ValueError("%s: class %s has no @spoke.actor(\"Type\") with a string "
                                 "literal (give the type explicitly)" % (src, cls))
            return name
    raise ValueError("%s: no class %s at the top of the module" % (src, cls))


def load(modules):
    """Imports the actor spec(s) of a spawn's module string (',' between
    several) and registers their classes; the type names registered."""
    from . import server
    names = []
    for spec in modules.split(","):
        mod, cls = parse_spec(spec.strip())
        try:
            m = importlib.import_module(mod)
        except Exception as e:
            raise ImportError("cannot import %s: %s: %s (sys.path: %s)" % (
                mod, type(e).__name__, e, os.pathsep.join(sys.path))) from e
        if cls is None:
            found = server.classes_in(m)
            if not found:
                raise ValueError("module %s (%s) defines no @spoke.actor class"
                                 % (mod, getattr(m, "__file__", "?")))
        else:
            c = getattr(m, cls, None)
            if c is None:
                raise ValueError("module %s (%s) has no %s" % (mod, getattr(m, "__file__", "?"),
                                                              cls))
            found = [c]
        for c in found:
            names.append(server.register(c))
    return names


_LOADER_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t)


def _loader(modules, msg, cap):
    text = modules.decode("utf-8", "replace") if modules else ""
    try:
        if not text:
            raise ValueError("no Python actor given: spawn with module=\"package.module:Class\" "
                             "(a job file's python:)")
        load(text)
        return 0
    except BaseException as e:
        import traceback
        traceback.print_exc()
        out = ("spoke-worker-python: %s: %s" % (type(e).__name__, e)).encode("utf-8", "replace")
        out = out[:cap - 1] + b"\0"
        ctypes.memmove(msg, out, len(out))
        return -1


_USAGE = """Usage: spoke-worker-python
       spoke-worker-python --type package.module:Class
The Spoke worker for actors written in Python (see spoke-worker-python(1)).
spoke-agent starts it, one per actor, with the actor's module in the spawn
(spoke_spawn_opts.module = "package.module:Class", a job file's python:);
it is not meant to be run by hand.  --type prints the actor type that the
class's @spoke.actor decorator names, read from its source without importing
it (modules are found on $PYTHONPATH).
"""


def main(argv=None):
    argv = sys.argv if argv is None else argv
    if len(argv) == 3 and argv[1] == "--type":
        try:
            print(type_of(argv[2]))
            return 0
        except ValueError as e:
            sys.stderr.write("spoke-worker-python: %s\n" % e)
            return 2
    if len(argv) > 1 or not os.environ.get("SPOKE_WORKER_FD"):
        sys.stderr.write(_USAGE)
        return 0 if argv[1:] in (["-h"], ["--help"]) else 2
    from . import _lib
    lib = _lib.lib
    loader = _LOADER_FN(_loader)
    lib.spoke_worker_set_loader.argtypes = [_LOADER_FN]
    lib.spoke_worker_set_loader.restype = None
    lib.spoke_worker_set_loader(loader)
    lib.spoke_worker_main.argtypes = [ctypes.c_int, ctypes.POINTER(ctypes.c_char_p)]
    lib.spoke_worker_main.restype = ctypes.c_int
    args = (ctypes.c_char_p * 2)(b"spoke-worker-python", None)
    rc = lib.spoke_worker_main(1, args)
    sys.stdout.flush()
    sys.stderr.flush()
    return rc
