"""The audit-hook tripwire installed in each sandboxed child, last, after everything it may use is imported.

A tripwire, not a wall: CPython's docs say audit hooks cannot sandbox hostile code (native code, or a
function reached without an audited call, gets past them). It turns the common ways a model-written program
reaches outside itself (subprocess, os.system, os.fork, sockets, ctypes, writing files elsewhere) into a clear
PermissionError naming what was refused; the kernel layers (rlimits, uid, namespaces) hold behind it.
Loaded by path by the zygote (`child.py`); stdlib only.
"""

import _thread
import os
import sys

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
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def loaded_refused_modules() -> tuple[str, ...]:
    """Modules already imported (by the zygote itself, e.g. socket; by sympy, _posixsubprocess) that a
    program's `import` must not find cached. Listed once in the zygote: scanning sys.modules in each child
    wrote the reference counts of ~2,000 names, copying ~450 pages per program (1.4 ms, measured here)."""
    return tuple(name for name in sys.modules if name.partition(".")[0] in REFUSED_IMPORTS)


def install_guard(workdir: str, *more_writable: str, hide: tuple[str, ...] = ()) -> None:
    """Refuse process creation, network, native code and writes outside `workdir` and `more_writable`
    (in the jail: the program's /tmp and /dev/shm, which live in its own tmpfs). An audit-hook tripwire.
    `hide`: module names to drop from sys.modules first (`loaded_refused_modules()`), so importing them
    again meets the import check."""
    roots = tuple(os.path.realpath(folder) for folder in (workdir, *more_writable))
    realpath, fsdecode, sep = os.path.realpath, os.fsdecode, os.sep  # bound now, not looked up per event
    # Re-entrancy guard, per thread: realpath() below may raise audit events of its own. Per thread, or one
    # thread's check in progress (realpath releases the GIL) would wave another thread's event through.
    busy: set[int] = set()

    def inside(path) -> bool:
        if isinstance(path, int):  # an already-open descriptor (stdout, a pipe): nothing new is opened
            return True
        try:
            real = realpath(fsdecode(path))
        except OSError as failure:  # e.g. getcwd() fails past PATH_MAX deep: refuse rather than guess
            refuse(f"writing {path!r}: its location cannot be resolved ({failure})")
        return any(real == root or real.startswith(root + sep) for root in roots)

    def refuse(what: str) -> None:
        raise PermissionError(f"sandbox refused {what}")

    def hook(event: str, args: tuple) -> None:
        thread = _thread.get_ident()
        if thread in busy:
            return
        busy.add(thread)
        try:
            if event in REFUSED_EVENTS:
                refuse(f"{event} ({REFUSED_EVENTS[event]})")
            for prefix, reason in REFUSED_PREFIXES.items():
                if event.startswith(prefix):
                    refuse(f"{event} ({reason})")
            if event == "import" and args[0].partition(".")[0] in REFUSED_IMPORTS:
                refuse(f"import {args[0]} ({REFUSED_IMPORTS[args[0].partition('.')[0]]})")
            if event == "open":
                path, mode, flags = args
                writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or bool(flags & WRITE_FLAGS)
                if writes and path is not None and not inside(path):
                    refuse(f"writing {path!r} outside the working directory")
            elif event in PATH_EVENTS:
                for index in PATH_EVENTS[event]:
                    if index < len(args) and args[index] is not None and not inside(args[index]):
                        refuse(f"{event} on {args[index]!r} outside the working directory")
        finally:
            busy.discard(thread)

    for name in hide:
        sys.modules.pop(name, None)
    sys.addaudithook(hook)
