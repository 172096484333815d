"""The sandbox's zygote: imports the allowed libraries once, then forks one fresh child per program.

Run as a script by `arithmo.sandbox.pool` (stdlib only; `-I` keeps this folder off `sys.path`, so the
sibling modules are loaded by path): `python -I [-S] child.py CONFIG_JSON`, where CONFIG is
{"mode": "jail" | "host", "control_fd": int, "workroot": str | None, "site": str | None, "probe": bool,
"lean": bool} (lean: preload the stdlib only, see LEAN_PRELOAD).
In "jail" mode it runs as PID 1 of a bubblewrap jail (see `jail.py`); in "host" mode (the fallback) on the
host, maybe inside `unshare --net --pid`.

Protocol on the control socket (AF_UNIX, SOCK_SEQPACKET: one JSON object per message):
  zygote -> parent  {"ready": true, <layers>}  or  {"ready": false, "error": "..."}
  parent -> zygote  {"run": seq, <limits>, "code_bytes": n} + 4 descriptors (SCM_RIGHTS): the program text
                    (a memfd), and the write ends of its stdout, stderr and status pipes
  parent -> zygote  {"kill": "output" | "status", "seq": seq}     (the parent saw too much output)
  zygote -> parent  {"seq": seq, "wait_status": int, "killed_for": None | "timeout" | "output" | "status",
                     "cleanup_error": None | str, "restart": bool}
Sessions (a zygote that hosts them runs no "run" requests: its clean-up would kill every session):
  parent -> zygote  {"session": id, <limits>} + 1 descriptor: the session's end of a socketpair
  zygote -> parent  {"session": id, "pid": int} + the session process's pidfd (the parent supervises it)
  parent -> zygote  {"reap": id}: kill the session's process if it still runs, reap it, drop its files
  zygote -> parent  {"reap": id, "wait_status": int | None}
  session <-> parent, on the socketpair: the session says {"ready": true} (or {"error": ...}) once; then per
  block the parent sends {"block": n, "code_bytes": n, "max_output_bytes": n} + the code's memfd and the
  write ends of the block's stdout, stderr and status pipes; the session runs the block in its one namespace,
  writes its status, closes the three pipes and answers b"done".
The zygote never reads a program's text or anything it writes: the child reads the memfd and writes into
pipes the parent reads. So no program's code or output is ever in the zygote's memory, which the next
program's process starts as a copy of.
"""

import builtins
import ctypes
import gc
import importlib.util
import json
import os
import secrets
import selectors
import signal
import socket
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
# What model-written PoT programs import (Arithmo/PoT corpora: sympy, math, numpy, fractions...), plus the
# submodules sympy/numpy load lazily on common calls (integrate, random). Imported here once; a fork shares them.
PRELOAD = ("math", "cmath", "fractions", "decimal", "statistics", "itertools", "functools", "collections", "re",
           "datetime", "random", "string", "operator", "heapq", "bisect", "numbers", "json", "copy", "typing",
           "dataclasses", "inspect", "concurrent.futures", "threading", "sympy", "mpmath", "numpy",
           "numpy.random", "sympy.integrals.manualintegrate", "sympy.integrals.risch", "sympy.integrals.heurisch")
# The lean zygote (config "lean"): the stdlib part of PRELOAD only. A program that names none of the big
# libraries (most GSM8K-style programs: arithmetic and print) is forked from it: its process copies ~10 MiB
# of page tables' worth of memory instead of ~60 MiB, which is most of a short program's cost (fork and exit).
BIG_LIBRARIES = ("sympy", "mpmath", "numpy")
LEAN_PRELOAD = tuple(name for name in PRELOAD if name.partition(".")[0] not in BIG_LIBRARIES)
# Calls typical of PoT programs, run once here: their first call imports ~20-50 more sympy modules lazily and
# fills sympy's caches (a cold `solve` took 36 ms here, a warm one 2 ms), which every forked child then shares.
WARM_UP = """
import numpy, sympy
x, y = sympy.symbols("x y")
sympy.solve([x + y - 3, x - y - 1], [x, y]), sympy.solve(x**2 - 5*x + 6, x), sympy.solveset(x**2 - 4, x)
sympy.simplify(sympy.sin(x)**2 + sympy.cos(x)**2), sympy.factor(x**2 - 1), sympy.expand((x + 1)**3)
sympy.integrate(x**2, (x, 0, 1)), sympy.diff(sympy.sin(x), x), sympy.limit(1 / x, x, sympy.oo)
sympy.nsimplify(0.5), sympy.N(sympy.pi, 20), sympy.Rational(1, 3) + 1, sympy.sqrt(8), sympy.binomial(5, 2)
sympy.summation(x, (x, 1, 10)), sympy.Matrix([[1, 2], [3, 4]]).det(), sympy.factorint(360), sympy.isprime(97)
sympy.gcd(12, 18), sympy.lcm(4, 6), sympy.floor(sympy.Rational(7, 2)), sympy.latex(x / 2)
numpy.linalg.solve([[1.0, 2.0], [3.0, 4.0]], [1.0, 1.0]), numpy.random.default_rng(0).random()
# lambdify's "numpy" namespace runs `from numpy import *`, which loads numpy.testing (its helpers import socket)
# and numpy.ctypeslib (_ctypes): loaded here, before the child's guard, so a program's lambdify finds them
# loaded and never imports a network or native-code module itself (issue 24). The same for math and mpmath.
sympy.lambdify(x, x**2 + 1, "numpy")(2.0), sympy.lambdify(x, x + 1, "math")(1.0)
sympy.lambdify(x, x + 1, "mpmath")(1.0), sympy.lambdify((x, y), x * y)(2.0, 3.0)
"""
# Linux constants (include/uapi/linux/prctl.h); Python's os module lacks them.
PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 4, 36, 38
CLONE_NEWNS, CLONE_NEWPID = 0x00020000, 0x20000000  # linux/sched.h
# Host mode: folders any uid may create files in (FHS: /tmp, /var/tmp; /dev/shm, /run/lock on Linux), swept
# after each program for entries its uid left behind, in case it got a write past the audit hook.
WORLD_WRITABLE = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")
KILL_REASONS = ("output", "status")
PROBE_REQUEST = {"timeout_s": 1.0, "memory_mb": 64, "max_file_bytes": 1024, "max_processes": 1, "max_threads": 4,
                 "disk_mb": 1, "max_files": 8, "audit": True}


def _load(name: str):
    """A sibling module of this file, loaded by path (`-I` keeps this folder off sys.path on purpose)."""
    spec = importlib.util.spec_from_file_location(name, os.path.join(HERE, name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _last_line() -> str:
    return traceback.format_exception_only(*sys.exc_info()[:2])[-1].strip()


def _jail_pid() -> int:
    """This process's PID in the jail's namespace (NSpid's first field in the jail's /proc), also when it runs
    in a namespace nested below it."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("NSpid:"):
                return int(line.split()[1])
    return os.getpid()


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class Zygote:
    def __init__(self, config: dict):
        self.mode = config["mode"]
        self.workroot = config.get("workroot")
        if config.get("site"):
            sys.path.append(config["site"])
        os.close(os.pidfd_open(os.getpid()))  # fail now, with a clear traceback, on a kernel older than 5.3
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.guard, self.runner = _load("guard"), _load("runner")
        self.seccomp, self.fs, self.setup = _load("seccomp"), _load("fs"), _load("child_setup")
        self.preloaded, self.missing, self.warm_up = [], [], "skipped (probe)"
        self.lean = bool(config.get("lean"))
        if self.lean and not config.get("probe"):
            self._preload(LEAN_PRELOAD, warm_up=False)
        elif not config.get("probe"):
            self._preload(PRELOAD, warm_up=True)
        # Objects that exist now are never collected: moving them out of the collector's reach means a
        # collection in a child does not touch (and copy, page by page) the zygote's heap. (gc.freeze's
        # documented use: "before a POSIX fork() call to make the gc copy-on-write friendly".)
        gc.freeze()
        # A random uid in [2**30, 2**31): no account owns it, and no other sandbox picks the same one, so
        # RLIMIT_NPROC counts only this zygote's programs and "kill every process of this uid" is exact.
        self.uid = 2**30 + secrets.randbelow(2**30)
        self.sessions: dict = {}  # session id -> (pid, uid, host folder or None)
        self.own_pid = os.getpid()
        self.pid_namespace = self.own_pid == 1  # PID 1 of a fresh namespace: kill(-1) reaches only our tree
        self.no_new_privs = self.libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
        self.libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)  # orphans come back to us to be killed and reaped
        # Not dumpable: /proc/<zygote>/mem and ptrace need CAP_SYS_PTRACE even for a process of the same uid
        # (a user-namespace jail runs programs as the zygote's uid). A second lock: the kernel already refuses
        # a process whose capabilities are not a superset of the zygote's (cap_ptrace_access_check).
        self.libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
        # Host mode only: if the interpreter lives somewhere an unprivileged uid cannot read (here /root is
        # 0700), the child keeps exactly one capability, CAP_DAC_READ_SEARCH. The jail binds the runtime at
        # world-readable paths instead, so there it keeps none.
        self.keep_read_search = self.mode == "host" and not all(self.setup.world_readable(p) for p in sys.path if p)
        self.privileges = "none"
        if os.geteuid() == 0 and self._probe(lambda: self.setup.drop_uid(self)) is None:
            self.privileges = "uid drop"
        elif self.mode == "jail":
            self.privileges = "capabilities dropped"  # a user namespace with one uid: drop its capabilities
        self.seccomp_state = self._probe_seccomp()
        # Built once here, so each child does as little as it can (its writes copy the zygote's pages).
        self.seccomp_filters = ((self.seccomp.prepare(False), self.seccomp.prepare(True))
                                if self.seccomp_state.startswith("on") else None)
        self.hidden_modules = self.guard.loaded_refused_modules()
        self.stdio = self.setup.make_stdio(self.runner.CountingFileIO)
        self.jail_hook = self.guard.make_hook(*self.setup.JAIL_WRITABLE) if self.mode == "jail" else None
        self.baseline_bytes = self.setup.vm_size_bytes()
        self.proc_hidden, self.pid_counter_fd = "no (host mode)", None
        if self.mode == "jail":
            self.setup.make_mounts_private(self)
            self.proc_hidden = self.setup.hide_other_processes(self)
            self.pid_counter_fd = self.setup.open_pid_counter(self)
        workdir, writable = self._prepare(PROBE_REQUEST)
        try:  # everything a program's process goes through, short of running one
            self.setup_error = self._probe(lambda: self.setup.enter(self, PROBE_REQUEST, writable))
        finally:
            self._release(workdir)

    def _preload(self, names: tuple[str, ...], warm_up: bool) -> None:
        for name in names:
            try:
                __import__(name)
                self.preloaded.append(name)
            except ImportError:
                self.missing.append(name)
        if not warm_up:
            self.warm_up = "skipped (lean zygote)"
            return
        started = time.perf_counter()
        try:
            exec(compile(WARM_UP, "<warm-up>", "exec"), {})
            self.warm_up = f"{time.perf_counter() - started:.2f} s"
        except Exception as failure:  # noqa: BLE001 - a missing library only costs speed; say so in the layers
            self.warm_up = f"failed: {type(failure).__name__}: {failure}"

    def layers(self) -> dict:
        return {"filesystem": ("read-only runtime; a fresh tmpfs per program, dropped after it"
                               if self.mode == "jail" else "host filesystem, a fresh folder per program"),
                "pid_namespace": self.pid_namespace, "privileges": self.privileges,
                "uid_drop": self.privileges == "uid drop",
                "keeps_cap_dac_read_search": self.privileges == "uid drop" and self.keep_read_search,
                "proc_hidepid": self.proc_hidden,
                "pid_counter": ("reset before each program" if self.pid_counter_fd is not None
                                else "shared by the worker's programs (ns_last_pid not writable)"),
                "no_new_privs": self.no_new_privs, "seccomp": self.seccomp_state, "preloaded": self.preloaded,
                "missing": self.missing, "warm_up": self.warm_up,
                "preloaded_address_space_mib": self.setup.vm_size_bytes() >> 20}

    # probes: each runs in a forked child, so a failure costs nothing here -------------------------------

    def _probe(self, function) -> str | None:
        """Run `function` in a forked child: None if it returned, else its error line."""
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            try:
                function()
                os._exit(0)
            except BaseException:  # noqa: BLE001 - the probe reports any failure
                os.write(write_end, _last_line().encode()[:2000])
                os._exit(1)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as pipe:
            message = pipe.read().decode(errors="replace")
        _, status = os.waitpid(pid, 0)
        return None if os.waitstatus_to_exitcode(status) == 0 else (message or f"wait status {status}")

    def _probe_seccomp(self) -> str:
        def forks_refused() -> None:
            self.seccomp.install(self.libc, allow_processes=False)
            try:
                pid = os.fork()
            except PermissionError:
                return
            if pid == 0:
                os._exit(0)
            raise RuntimeError("fork was not refused")
        failure = self._probe(forks_refused)
        return f"on ({self.seccomp.machine()} filter)" if failure is None else f"off: {failure}"

    # one program ---------------------------------------------------------------------------------------

    def serve(self, control: socket.socket) -> None:
        while True:
            message, fds = self._receive(control)
            if message is None:
                return  # the parent closed the socket: finish
            if "session" in message and len(fds) == 1:
                self.open_session(message, fds[0], control)
                continue
            if "reap" in message:
                for fd in fds:
                    os.close(fd)
                control.send(json.dumps({"reap": message["reap"], **self.reap(message["reap"])}).encode())
                continue
            if "run" not in message or len(fds) != 4:
                for fd in fds:
                    os.close(fd)
                continue  # a late kill for a program already finished
            try:
                reply = self.run(message, fds, control)
            except Exception:  # noqa: BLE001 - our own failure: report it, and let the parent start afresh
                reply = {"seq": message["run"], "zygote_error": _last_line(), "restart": True}
            control.send(json.dumps(reply).encode())
            if reply.get("restart"):
                return

    @staticmethod
    def _receive(control: socket.socket) -> tuple[dict | None, list[int]]:
        data, fds, flags, _ = socket.recv_fds(control, 1 << 16, 8)
        if not data:
            return None, fds
        if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
            raise RuntimeError("truncated control message")
        return json.loads(data), fds

    def _prepare(self, request: dict) -> tuple[str | None, list[str]]:
        """The program's writable folders: a host folder (host mode) or a fresh tmpfs (jail mode)."""
        if self.mode == "host":
            workdir = self._make_workdir()
            return workdir, [workdir]
        return None, self.setup.mount_box(self, request)

    def _release(self, workdir: str | None) -> None:
        """Drop what `_prepare` made (raises OSError if it cannot: the caller restarts the worker)."""
        if self.mode == "host":
            self.fs.remove_tree(workdir)
        else:
            self.setup.unmount_box(self)

    def run(self, request: dict, fds: list[int], control: socket.socket) -> dict:
        try:
            workdir, writable = self._prepare(request)
            sys.stdout.flush()
            sys.stderr.flush()
            self.setup.reset_pid_counter(self)
            pid = os.fork()
            if pid == 0:
                self._child(request, fds, writable)  # never returns
        finally:
            for fd in fds:
                os.close(fd)  # only the child holds the pipes now: EOF reaches the parent when it is gone
        killed_for = self._supervise(pid, request, control)
        _, wait_status = os.waitpid(pid, 0)
        cleanup_error = self._clean_up(workdir)
        return {"seq": request["run"], "wait_status": wait_status, "killed_for": killed_for,
                "cleanup_error": cleanup_error, "restart": cleanup_error is not None}

    def _supervise(self, pid: int, request: dict, control: socket.socket) -> str | None:
        """Wait for the child to end, its deadline, or the parent's kill; return why it was killed, if it was."""
        pidfd = os.pidfd_open(pid)
        deadline = time.monotonic() + request["timeout_s"]
        killed_for = None
        with selectors.DefaultSelector() as selector:
            selector.register(pidfd, selectors.EVENT_READ)
            selector.register(control, selectors.EVENT_READ)
            while killed_for is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    killed_for = "timeout"
                    break
                for key, _ in selector.select(remaining):
                    if key.fd == pidfd:
                        os.close(pidfd)
                        return None
                    message, fds = self._receive(control)
                    for fd in fds:
                        os.close(fd)
                    if message is None:
                        _kill_group(pid)
                        raise SystemExit(0)  # the parent is gone: stop (the jail dies with us)
                    if message.get("seq") == request["run"] and message.get("kill") in KILL_REASONS:
                        killed_for = message["kill"]
        os.close(pidfd)
        _kill_group(pid)
        return killed_for

    def _clean_up(self, workdir: str | None) -> str | None:
        """Kill and reap whatever the program left running, then drop its files. None when clean."""
        if self.pid_namespace:
            try:  # as PID 1 of our own namespace, kill(-1) reaches every other process in it
                os.kill(-1, signal.SIGKILL)
            except ProcessLookupError:
                pass
        elif self.privileges == "uid drop":
            helper = os.fork()
            if helper == 0:  # kill(-1) as the program's uid reaches exactly that uid's processes
                try:
                    os.setgroups([])
                    os.setgid(self.uid)
                    os.setuid(self.uid)
                    os.kill(-1, signal.SIGKILL)
                finally:
                    os._exit(0)
        problems = []
        give_up = time.monotonic() + 2.0
        while True:
            try:
                if os.waitpid(-1, os.WNOHANG) == (0, 0):
                    if time.monotonic() > give_up:
                        problems.append("processes still running after the program")
                        break
                    time.sleep(0.001)
            except ChildProcessError:
                break
        if self.mode == "host" and self.privileges == "uid drop":
            problems += self._sweep_world_writable()
        try:
            self._release(workdir)
        except OSError as failure:
            problems.append(f"could not remove its files: {failure}")
        return "; ".join(problems) or None

    def _sweep_world_writable(self) -> list[str]:
        problems = []
        for folder in WORLD_WRITABLE:
            try:
                entries = list(os.scandir(folder))
            except OSError:
                continue
            for entry in entries:
                try:
                    if entry.stat(follow_symlinks=False).st_uid == self.uid:
                        self.fs.remove_tree(entry.path)
                except OSError as failure:
                    problems.append(f"could not remove {entry.path}: {failure}")
        return problems

    def _make_workdir(self) -> str:
        workdir = tempfile.mkdtemp(prefix="prog-", dir=self.workroot)
        if self.privileges == "uid drop":
            os.chown(workdir, self.uid, self.uid)
        os.chmod(workdir, 0o700)
        return workdir

    # sessions ------------------------------------------------------------------------------------------

    def open_session(self, request: dict, channel_fd: int, control: socket.socket) -> None:
        """Fork one session process (its own uid, and in the jail its own mount namespace and tmpfs) and hand
        its pidfd to the parent, which supervises its blocks; this zygote only forks and reaps sessions."""
        uid = 2**30 + secrets.randbelow(2**30)  # its own uid: no signal, file or RLIMIT_NPROC shared with others
        workdir = None
        own_uid, self.uid = self.uid, uid
        try:
            if self.mode == "host":
                workdir = self._make_workdir()
            sys.stdout.flush()
            sys.stderr.flush()
            pid, init, status_r = self._fork_session(request, channel_fd, workdir)
        except Exception:  # noqa: BLE001 - report it; the parent says the session could not start
            os.close(channel_fd)
            control.send(json.dumps({"session": request["session"], "error": _last_line()}).encode())
            return
        finally:
            self.uid = own_uid
        os.close(channel_fd)
        self.sessions[request["session"]] = (pid, uid, workdir, init, status_r)
        pidfd = os.pidfd_open(pid)
        try:
            socket.send_fds(control, [json.dumps({"session": request["session"], "pid": pid}).encode()], [pidfd])
        finally:
            os.close(pidfd)

    def _fork_session(self, request: dict, channel_fd: int, workdir: str | None) -> tuple[int, int | None, int | None]:
        """Fork the session's process: (its PID as this zygote sees it, the PID of its namespace's init or
        None, a pipe on which that init writes the session's wait status or None).

        In the jail the session gets its own PID namespace (issue 24: sessions shared the jail's, so one
        session's thread starts showed in another's thread IDs and /proc/loadavg's last PID). A helper
        unshares it (unshare(CLONE_NEWPID) applies to the caller's children, once per process) and forks its
        init, PID 1, which forks the session, PID 2, and only waits for it: the session is not PID 1, whose
        signals the kernel filters (a default-action signal it raises at itself would be ignored). The helper
        exits at once; the init is reparented to this zygote, and when the session ends it writes its wait
        status on the pipe and exits, taking the namespace with it."""
        if self.mode != "jail":
            pid = os.fork()
            if pid == 0:
                self._session_child(request, channel_fd, workdir)  # never returns
            return pid, None, None
        read_end, write_end = os.pipe()
        status_r, status_w = os.pipe()
        helper = os.fork()
        if helper == 0:
            try:
                os.close(read_end)
                os.close(status_r)
                if self.libc.unshare(CLONE_NEWPID) != 0:
                    raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWPID)")
                init = os.fork()
                if init == 0:
                    self._session_init(request, channel_fd, workdir, write_end, status_w)  # never returns
                os._exit(0)
            except BaseException:  # noqa: BLE001 - the zygote reports it
                os.write(write_end, ("error: " + _last_line()).encode()[:2000])
                os._exit(1)
        os.close(write_end)
        os.close(status_w)
        with os.fdopen(read_end, "rb") as pipe:
            answer = pipe.read().decode(errors="replace")
        os.waitpid(helper, 0)
        pids = dict(line.split() for line in answer.splitlines() if line.startswith(("session ", "init ")))
        if not all(pids.get(k, "").isdigit() for k in ("session", "init")):
            os.close(status_r)
            raise RuntimeError(answer.strip() or "the session's helper died")
        return int(pids["session"]), int(pids["init"]), status_r

    def _session_init(self, request: dict, channel_fd: int, workdir: str | None, answer_w: int,
                      status_w: int) -> None:
        """PID 1 of a session's PID namespace: fork the session, wait for it, write its wait status, exit.
        The session and this init each write their PID as the zygote sees it ("session N", "init N") on
        `answer_w`. Runs as the zygote's copy, before any program code."""
        try:
            os.setsid()
            pid = os.fork()
            if pid == 0:
                os.close(status_w)
                os.write(answer_w, f"session {_jail_pid()}\n".encode())
                os.close(answer_w)
                self._session_child(request, channel_fd, workdir, own_pid_namespace=True)  # never returns
            os.close(channel_fd)
            os.write(answer_w, f"init {_jail_pid()}\n".encode())
            os.close(answer_w)
            _, wait_status = os.waitpid(pid, 0)
            os.write(status_w, str(wait_status).encode())
        except BaseException:  # noqa: BLE001 - the zygote reports it
            try:
                os.write(answer_w, ("error: " + _last_line()).encode()[:2000])
            except OSError:
                pass
        os._exit(0)

    def reap(self, session) -> dict:
        """Kill (if still running) and reap a session's process, then drop its files; its wait status."""
        entry = self.sessions.pop(session, None)
        if entry is None:
            return {"wait_status": None}
        pid, uid, workdir, init, status_r = entry
        try:
            os.kill(pid, signal.SIGKILL)  # a session has no child processes (seccomp): its pid is all of it
        except ProcessLookupError:
            pass
        if init is None:
            _, wait_status = os.waitpid(pid, 0)
        else:  # its init reaped it and says how it ended, then exits (reparented to us: we reap it)
            with os.fdopen(status_r, "rb") as pipe:
                answer = pipe.read(64).decode(errors="replace")
            os.waitpid(init, 0)
            wait_status = int(answer) if answer.isdigit() else None
        if workdir is not None:
            own_uid, self.uid = self.uid, uid
            try:
                if self.privileges == "uid drop":
                    self._sweep_world_writable()
                self.fs.remove_tree(workdir)
            except OSError:
                pass  # the zygote's folder is removed with the worker
            finally:
                self.uid = own_uid
        return {"wait_status": wait_status}

    def _session_child(self, request: dict, channel_fd: int, workdir: str | None,
                       own_pid_namespace: bool = False) -> None:
        try:
            os.setsid()
            for target in (0, 1, 2, 3):
                os.dup2(os.open(os.devnull, os.O_RDWR), target)
            os.dup2(channel_fd, 4)
            os.dup2(0, 5)  # /dev/null, kept to close each block's pipes with (the guard refuses opening it later)
            os.closerange(6, os.sysconf("SC_OPEN_MAX"))
            if self.mode == "jail":  # its own mount namespace: its tmpfs goes when its process does
                if self.libc.unshare(CLONE_NEWNS) != 0:
                    raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS)")
                writable = self.setup.mount_box(self, request)
                if own_pid_namespace:
                    self.setup.own_proc(self)
            else:
                writable = [workdir]
            channel = socket.socket(fileno=4)  # made before the guard, which refuses socket objects
            self.setup.enter(self, request, writable, fresh_generators=True)
        except BaseException:  # noqa: BLE001 - report the setup failure, never run a block unsupervised
            os.write(4, json.dumps({"error": "sandbox setup failed: " + _last_line()}).encode()[:4000])
            os._exit(71)
        os.write(4, b'{"ready": true}')
        namespace = {"__name__": "__main__", "__builtins__": builtins}
        null = 5
        while True:
            data, fds, _, _ = socket.recv_fds(channel, 1 << 16, 4)
            if not data:
                os._exit(0)  # the parent closed the session
            header = json.loads(data)
            code_fd, out_w, err_w, status_w = fds
            for source, target in ((out_w, 1), (err_w, 2), (status_w, 3)):
                os.dup2(source, target)
                os.close(source)
            chunks, size = [], header["code_bytes"]
            while sum(map(len, chunks)) < size:
                chunk = os.pread(code_fd, size, sum(map(len, chunks)))
                if not chunk:
                    break
                chunks.append(chunk)
            os.close(code_fd)
            code = b"".join(chunks).decode("utf-8", errors="surrogatepass")
            self.runner.CountingFileIO.written = 0
            result = self.runner.run(code, request["memory_mb"], header["max_output_bytes"], namespace,
                                     f"<block {header['block']}>")
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            except (OSError, ValueError):
                pass
            os.write(3, json.dumps(result).encode())
            for target in (1, 2, 3):
                os.dup2(null, target)  # the block's pipes close: EOF for the parent
            os.write(4, b"done")

    # inside the child ----------------------------------------------------------------------------------

    def _child(self, request: dict, fds: list[int], writable: list[str]) -> None:
        code_fd, out_w, err_w, status_w = fds
        try:
            os.setsid()  # own session and process group: one killpg reaches everything it starts
            devnull = os.open(os.devnull, os.O_RDONLY)
            for source, target in ((devnull, 0), (out_w, 1), (err_w, 2), (status_w, 3), (code_fd, 4)):
                os.dup2(source, target)
            os.closerange(5, os.sysconf("SC_OPEN_MAX"))  # the control socket and every other descriptor
            size, chunks = request["code_bytes"], []
            while sum(map(len, chunks)) < size:  # pread: the parent's write moved the shared file offset
                chunk = os.pread(4, size, sum(map(len, chunks)))
                if not chunk:
                    raise EOFError("the program text is shorter than announced")
                chunks.append(chunk)
            os.close(4)
            code = b"".join(chunks).decode("utf-8", errors="surrogatepass")
            self.setup.enter(self, request, writable, code)
        except BaseException:  # noqa: BLE001 - report the setup failure, never fall through to the program
            os.write(3, json.dumps({"error": "sandbox setup failed: " + _last_line()}).encode())
            os._exit(71)
        result = self.runner.run(code, request["memory_mb"], request["max_output_bytes"])
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.write(3, json.dumps(result).encode())
        os._exit(0)


def main() -> None:
    config = json.loads(sys.argv[1])
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # stray prints (library warnings) go nowhere
    zygote = Zygote(config)
    layers = zygote.layers()
    ready = ({"ready": True, **layers} if zygote.setup_error is None
             else {"ready": False, "error": f"a program's setup fails here: {zygote.setup_error}", **layers})
    if config.get("probe"):
        os.write(2, (json.dumps(ready) + "\n").encode())
        return
    control = socket.socket(fileno=config["control_fd"])
    control.send(json.dumps(ready).encode())
    if ready["ready"]:
        zygote.serve(control)


if __name__ == "__main__":
    main()
