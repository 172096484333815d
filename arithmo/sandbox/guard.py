"""The audit-hook tripwire installed in each sandboxed child, last, after everything it may use is imported.

A tripwire, not a wall: CPython's docs say audit hooks cannot sandbox hostile code (native code, or a
function reached without an audited call, gets past them). It turns the common ways a model-written program
reaches outside itself (subprocess, os.system, os.fork, sockets, ctypes, writing files elsewhere) into a clear
PermissionError naming what was refused; the kernel layers (rlimits, uid, namespaces) hold behind it.
Loaded by path by the zygote (`child.py`); stdlib only.
"""

import os
import sys
import types

# Audit events (docs.python.org/3/library/audit_events.html) refused in the child: process creation,
# signals to other processes, network, native code, raising limits.
REFUSED_EVENTS = {
    "os.system": "running a shell", "os.exec": "exec", "os.posix_spawn": "spawning a process",
    "os.spawn": "spawning a process", "os.fork": "forking", "os.forkpty": "forking", "pty.spawn": "spawning",
    "subprocess.Popen": "starting a subprocess", "os.kill": "signalling a process",
    "os.killpg": "signalling a process group", "signal.pthread_kill": "signalling a thread",
    "resource.setrlimit": "changing resource limits", "resource.prlimit": "changing resource limits",
    "os.startfile": "starting a file", "webbrowser.open": "opening a browser",
    # the usual first step of switching this hook off from Python: finding its closure through the collector
    "gc.get_objects": "walking the heap", "gc.get_referrers": "walking the heap",
    "gc.get_referents": "walking the heap",
}
REFUSED_PREFIXES = {"socket.": "network access", "ctypes.": "loading or calling native code",
                    "syslog.": "talking to the system log"}
REFUSED_IMPORTS = {"_socket": "network access", "socket": "network access",
                   "_posixsubprocess": "spawning a process", "_ctypes": "native code",
                   "multiprocessing": "starting processes", "_multiprocessing": "starting processes"}
# Events whose arguments name paths that get modified: (event, indices of path arguments).
PATH_EVENTS = {"os.remove": (0,), "os.rmdir": (0,), "os.mkdir": (0,), "os.rename": (0, 1), "os.chmod": (0,),
               "os.chown": (0,), "os.link": (0, 1), "os.symlink": (1,), "os.truncate": (0,), "os.utime": (0,),
               "os.chflags": (0,), "os.setxattr": (0,), "os.removexattr": (0,), "shutil.rmtree": (0,),
               "shutil.move": (1,), "shutil.copyfile": (1,), "shutil.copytree": (1,)}
# A function's attributes whose change rewrites what it does (audit event "object.__setattr__", raised by
# CPython's funcobject.c setters for exactly these): refused, so no function, the hook included, is rewritten.
FROZEN_FUNCTION_ATTRIBUTES = frozenset(("__code__", "__defaults__", "__kwdefaults__"))
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def loaded_refused_modules() -> tuple[str, ...]:
    """Modules already imported (by the zygote itself, e.g. socket; by sympy, _posixsubprocess) that a
    program's `import` must not find cached. Listed once in the zygote: scanning sys.modules in each child
    wrote the reference counts of ~2,000 names, copying ~450 pages per program (1.4 ms, measured here)."""
    return tuple(name for name in sys.modules if name.partition(".")[0] in REFUSED_IMPORTS)


def _hook(event, args, refused, prefixes, imports, path_events, write_flags, write_modes, roots, lstat,
          readlink, getcwd, fspath, decode, join, isinstance, len, bool, type, str_type, int_type, bytes_type,
          error, os_error, base_exception, repr, function_type, frozen_attributes):
    """The audit hook's code. Every value it uses is a parameter bound once by `make_hook` (defaults of a
    function made with empty globals): it reads no global, no builtin and no closure cell, and keeps no state
    between calls. Every parameter is immutable and holds only immutable values: frozensets, tuples of
    (name, reason) pairs, exact str and int, built-in functions and types. Issue 24, twice: a per-thread
    re-entrancy set could be joined through the hook's frame; then read-only mappings (mappingproxy) leaked
    the dict under them to `proxy == obj` with a custom `__eq__` (the comparison hands the dict to the other
    side), and the cleared dict let gc.get_referrers find this function and rewrite its `__defaults__`. So no
    dict or mapping is reachable from here, and rewriting a function's `__code__`, `__defaults__` or
    `__kwdefaults__` is refused (audit event "object.__setattr__"). Paths are resolved here with the built-in
    lstat/readlink/getcwd, not os.path.realpath, whose Python helpers a program could replace; names are
    copied to exact `str` (join) first, so a str subclass cannot lie through its own methods.
    Raises `error` (PermissionError) to refuse."""
    event = join("", (event,))
    for name, reason in refused:  # a tuple of pairs: ~20 exact-str comparisons, no mapping to leak
        if event == name:
            raise error("sandbox refused " + event + " (" + reason + ")")
    for prefix, reason in prefixes:
        if event.startswith(prefix):
            raise error("sandbox refused " + event + " (" + reason + ")")
    if event == "object.__setattr__":  # (object, attribute name, value)
        if type(args[0]) is function_type and isinstance(args[1], str_type) and \
                join("", (args[1],)) in frozen_attributes:
            raise error("sandbox refused setting a function's " + join("", (args[1],)) +
                        " (rewriting a function in place)")
        return
    if event == "import":
        name = join("", (args[0],)) if isinstance(args[0], str_type) else ""
        top = name.partition(".")[0]
        for module, reason in imports:
            if top == module:
                raise error("sandbox refused import " + name + " (" + reason + ")")
        return
    if event == "open":
        mode, flags = args[1], args[2]
        writes = bool(flags & write_flags) if type(flags) is int_type else False
        if isinstance(mode, str_type):
            for letter in write_modes:
                if letter in join("", (mode,)):
                    writes = True
        if not writes or args[0] is None:
            return
        indices, what = (0,), "writing"
    else:
        indices = ()
        for name, positions in path_events:
            if event == name:
                indices = positions
        if not indices:
            return
        what = event + " on"
    for index in indices:
        if index >= len(args) or args[index] is None or isinstance(args[index], int_type):
            continue  # an already-open descriptor (stdout, a pipe): nothing new is opened
        shown = args[index]
        try:
            shown_text = repr(shown)
        except base_exception:  # a path object whose repr fails
            shown_text = "(a path)"
        try:
            path = fspath(shown)  # the built-in os.fspath; bytes decoded as os.fsdecode does (PEP 383)
            path = join("", (decode(path, "utf-8", "surrogateescape") if isinstance(path, bytes_type) else path,))
            if not path.startswith("/"):
                path = getcwd() + "/" + path
        except base_exception as failure:  # a path we cannot read is refused, never waved through
            raise error("sandbox refused " + what + " a path it cannot read (" + type(failure).__name__ + ")")
        # the real location: every symlink on the way followed, "." and ".." applied (a missing tail is kept)
        pending, parts, hops = path.split("/")[::-1], [], 0
        while pending:
            part = pending.pop()
            if part == "" or part == ".":
                continue
            if part == "..":
                if parts:
                    parts.pop()
                continue
            candidate = "/" + "/".join(parts + [part])
            try:
                is_link = (lstat(candidate).st_mode & 0o170000) == 0o120000
            except os_error:
                is_link = False
            if not is_link:
                parts.append(part)
                continue
            hops += 1
            if hops > 40:  # ELOOP, as the kernel counts
                raise error("sandbox refused " + what + " " + shown_text + ": too many symbolic links")
            target = readlink(candidate)
            if target.startswith("/"):
                parts = []
            pending.extend(target.split("/")[::-1])
        real = "/" + "/".join(parts)
        inside = False
        for root in roots:
            if real == root or real.startswith(root + "/"):
                inside = True
        if not inside:
            raise error("sandbox refused " + what + " " + shown_text + " outside the working directory")


def install_guard(workdir: str, *more_writable: str, hide: tuple[str, ...] = (), hook=None) -> None:
    """Refuse process creation, network, native code and writes outside `workdir` and `more_writable`
    (in the jail: the program's /tmp and /dev/shm, which live in its own tmpfs). An audit-hook tripwire.
    `hide`: module names to drop from sys.modules first (`loaded_refused_modules()`), so importing them
    again meets the import check. `hook`: `make_hook(workdir, *more_writable)` made beforehand (the zygote
    makes it once where the folders never change: the jail)."""
    for name in hide:
        sys.modules.pop(name, None)
    sys.addaudithook(hook or make_hook(workdir, *more_writable))


def make_hook(*writable: str):
    """The audit hook (`_hook` with every value it uses bound) for programs that may write in `writable`.
    Only immutable values are bound (see `_hook`); the caller keeps no reference to it once installed."""
    roots = tuple("".join((os.path.realpath(folder),)) for folder in writable)
    return types.FunctionType(_hook.__code__, {"__builtins__": {}}, "sandbox_audit_hook", (
        tuple(REFUSED_EVENTS.items()), tuple(REFUSED_PREFIXES.items()), tuple(REFUSED_IMPORTS.items()),
        tuple(PATH_EVENTS.items()), WRITE_FLAGS, "wax+", roots, os.lstat, os.readlink, os.getcwd, os.fspath,
        bytes.decode, str.join, isinstance, len, bool, type, str, int, bytes, PermissionError, OSError,
        BaseException, repr, types.FunctionType, FROZEN_FUNCTION_ATTRIBUTES))
