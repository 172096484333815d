"""The sandbox's zygote: imports the allowed libraries once, then forks one fresh child per program.

Run as a script (`python -I _sandbox_child.py WORKROOT`) by `arithmo.grading.execute`, usually as PID 1 of a
fresh PID + network namespace. It must stay standalone (stdlib only): `-I` keeps the script's folder off
`sys.path`. Protocol, one JSON object per line: it writes `{"ready": ...}` once, then for each request line
`{"code", "timeout_s", "memory_mb", "max_output_bytes", "max_file_bytes", "max_processes", "audit"}` on stdin
it writes `{"stdout", "error", "timed_out"}` on stdout. EOF on stdin ends it.

Each child: own session (so one killpg reaches its descendants), stdin /dev/null, stdout/stderr/status pipes
read here with caps and a wall-clock deadline, rlimits (CPU, address space, file size, processes, open files,
core), a fresh working directory, a minimal environment, an unprivileged uid when we are root (so the kernel
enforces RLIMIT_NPROC and file permissions), parent-death SIGKILL, then the audit hook of `_sandbox_guard.py`,
installed last, after everything the program may use has been imported.
"""

import builtins
import ctypes
import importlib.util
import json
import os
import random
import resource
import secrets
import selectors
import shutil
import signal
import stat
import sys
import tempfile
import time
import traceback

# What model-written PoT programs import (Arithmo/PoT corpora: sympy, math, numpy, fractions...), plus the
# submodules sympy/numpy load lazily on common calls (integrate, random). Imported here once; a fork shares them.
PRELOAD = ("math", "cmath", "fractions", "decimal", "statistics", "itertools", "functools", "collections", "re",
           "datetime", "random", "string", "operator", "heapq", "bisect", "numbers", "json", "copy", "typing",
           "dataclasses", "sympy", "mpmath", "numpy", "numpy.random", "sympy.integrals.manualintegrate",
           "sympy.integrals.risch", "sympy.integrals.heurisch")

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
"""

# Linux constants (include/uapi/linux/prctl.h, capability.h); Python's os module does not expose them.
PR_SET_PDEATHSIG, PR_SET_KEEPCAPS, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 1, 8, 36, 38
CAP_DAC_READ_SEARCH, LINUX_CAPABILITY_VERSION_3 = 2, 0x20080522
STATUS_CAP_BYTES, STDERR_TAIL_BYTES, READ_CHUNK = 16384, 4096, 65536
# Folders any uid may create files in (FHS: /tmp, /var/tmp; /dev/shm, /run/lock on Linux): swept after each
# program for entries its uid left behind, in case it got a write past the audit hook.
WORLD_WRITABLE = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")


def _load_guard():
    """`_sandbox_guard.py` beside this file, loaded by path (`-I` keeps this folder off sys.path on purpose)."""
    spec = importlib.util.spec_from_file_location("_sandbox_guard", os.path.join(os.path.dirname(__file__),
                                                                                 "_sandbox_guard.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _world_readable(folder: str) -> bool:
    """Can a user with no special rights import from `folder` (every ancestor searchable, itself listable)?"""
    path = os.path.realpath(folder)
    try:
        if not os.stat(path).st_mode & stat.S_IROTH:
            return False
        while True:
            if not os.stat(path).st_mode & stat.S_IXOTH:
                return False
            parent = os.path.dirname(path)
            if parent == path:
                return True
            path = parent
    except OSError:
        return True  # a sys.path entry that does not exist cannot block an import


class Zygote:
    def __init__(self, workroot: str):
        self.workroot = workroot
        os.close(os.pidfd_open(os.getpid()))  # fail now, with a clear traceback, on a kernel older than 5.3
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.guard = _load_guard()
        self.preloaded, self.missing = [], []
        for name in PRELOAD:
            try:
                __import__(name)
                self.preloaded.append(name)
            except ImportError:
                self.missing.append(name)
        started = time.perf_counter()
        try:
            exec(compile(WARM_UP, "<warm-up>", "exec"), {})
            self.warm_up = f"{time.perf_counter() - started:.2f} s"
        except Exception as failure:  # noqa: BLE001 - a missing library only costs speed; say so in the layers
            self.warm_up = f"failed: {type(failure).__name__}: {failure}"
        # A random uid in [2**30, 2**31): no account owns it, and no other sandbox picks the same one, so
        # RLIMIT_NPROC counts only this zygote's programs and "kill every process of this uid" is exact.
        self.uid = 2**30 + secrets.randbelow(2**30)
        self.own_pid = os.getpid()
        self.pid_namespace = self.own_pid == 1  # PID 1 of a fresh namespace: kill(-1) reaches only our tree
        self.no_new_privs = self.libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
        self.libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)  # orphans come back to us to be killed and reaped
        # Dropping to an unprivileged uid makes the kernel enforce RLIMIT_NPROC (it does not for root) and file
        # permissions. If the interpreter lives somewhere that uid cannot read (here /root is 0700), the child
        # keeps exactly one capability, CAP_DAC_READ_SEARCH (read any file: what root could anyway).
        self.keep_read_search = not all(_world_readable(p) for p in sys.path if p)
        self.uid_drop = os.geteuid() == 0 and self._probe_drop()

    def layers(self) -> dict:
        return {"pid_namespace": self.pid_namespace, "uid_drop": self.uid_drop,
                "keeps_cap_dac_read_search": self.uid_drop and self.keep_read_search,
                "no_new_privs": self.no_new_privs, "preloaded": self.preloaded, "missing": self.missing,
                "warm_up": self.warm_up, "preloaded_address_space_mib": _vm_size_bytes() >> 20}

    def _probe_drop(self) -> bool:
        pid = os.fork()
        if pid == 0:
            try:
                self._drop_privileges()
                os._exit(0)
            except BaseException:  # noqa: BLE001 - any failure means the layer is unavailable
                os._exit(1)
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status) == 0

    def _drop_privileges(self) -> None:
        if self.keep_read_search:
            if self.libc.prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), "prctl(PR_SET_KEEPCAPS)")
        os.setgroups([])
        os.setgid(self.uid)
        os.setuid(self.uid)
        if self.keep_read_search:  # capset(2): effective = permitted = {CAP_DAC_READ_SEARCH}, nothing inheritable
            header = (ctypes.c_uint32 * 2)(LINUX_CAPABILITY_VERSION_3, 0)
            data = (ctypes.c_uint32 * 6)(1 << CAP_DAC_READ_SEARCH, 1 << CAP_DAC_READ_SEARCH, 0, 0, 0, 0)
            if self.libc.capset(header, data) != 0:
                raise OSError(ctypes.get_errno(), "capset")

    def serve(self, requests, replies) -> None:
        for line in requests:
            if line.strip():
                reply = self.run(json.loads(line))
                replies.write(json.dumps(reply) + "\n")
                replies.flush()

    def run(self, request: dict) -> dict:
        workdir = tempfile.mkdtemp(prefix="prog-", dir=self.workroot)
        if self.uid_drop:
            os.chown(workdir, self.uid, self.uid)
        os.chmod(workdir, 0o700)
        pipes = [os.pipe() for _ in range(3)]  # stdout, stderr, status
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            self._child(request, workdir, [w for _, w in pipes])  # never returns
        for _, write_end in pipes:
            os.close(write_end)
        try:
            return self._collect(pid, request, [r for r, _ in pipes])
        finally:
            self._kill_leftovers(pid)
            for read_end, _ in pipes:
                os.close(read_end)
            shutil.rmtree(workdir, onerror=_force_remove)

    def _child(self, request: dict, workdir: str, write_ends: list[int]) -> None:
        out_w, err_w, status_w = write_ends
        try:
            os.setsid()  # own session and process group: one killpg reaches everything it starts
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # over RLIMIT_FSIZE: write() fails with EFBIG instead
            devnull = os.open(os.devnull, os.O_RDONLY)
            os.dup2(devnull, 0)
            os.dup2(out_w, 1)
            os.dup2(err_w, 2)
            status_fd = os.dup2(status_w, 3)
            os.closerange(4, os.sysconf("SC_OPEN_MAX"))  # the zygote's protocol pipes stay out of reach
            os.chdir(workdir)
            os.environ.clear()
            os.environ.update({"PATH": "/usr/bin:/bin", "HOME": workdir, "TMPDIR": workdir, "LANG": "C.UTF-8",
                               "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
            tempfile.tempdir = workdir
            self._set_limits(request)
            if self.uid_drop:
                self._drop_privileges()
            self.libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # set after setuid, which clears it
            if os.getppid() != self.own_pid:
                os._exit(70)  # the zygote already died: do not run unsupervised
            random.seed()  # a fresh interpreter seeds from os.urandom; a fork would copy the zygote's state
            sys.stdin = open(0, encoding="utf-8", closefd=False)
            sys.stdout = open(1, "w", buffering=1, encoding="utf-8", errors="backslashreplace", closefd=False)
            sys.stderr = open(2, "w", buffering=1, encoding="utf-8", errors="backslashreplace", closefd=False)
            sys.__stdin__, sys.__stdout__, sys.__stderr__ = sys.stdin, sys.stdout, sys.stderr
            sys.dont_write_bytecode = True
            sys.modules.pop("_posixsubprocess", None)  # so `import _posixsubprocess` meets the import check
            if request.get("audit", True):
                self.guard.install_guard(workdir)
        except BaseException:  # noqa: BLE001 - report the setup failure, never fall through to the program
            os.write(status_w, json.dumps({"error": "sandbox setup failed: " + _last_line()}).encode())
            os._exit(71)
        error = _run_program(request["code"], request["memory_mb"])
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.write(status_fd, json.dumps({"error": error}).encode())
        os._exit(0)

    def _set_limits(self, request: dict) -> None:
        cpu_s = int(request["timeout_s"]) + 2  # wall clock normally stops it first; this bounds CPU regardless
        baseline = _vm_size_bytes()  # the preloaded libraries are already mapped: the allowance comes on top
        limits = {resource.RLIMIT_CPU: (cpu_s, cpu_s + 1),
                  resource.RLIMIT_AS: (baseline + (request["memory_mb"] << 20),) * 2,
                  resource.RLIMIT_FSIZE: (request["max_file_bytes"],) * 2,
                  resource.RLIMIT_NPROC: (request["max_processes"],) * 2,
                  resource.RLIMIT_NOFILE: (64, 64),
                  resource.RLIMIT_CORE: (0, 0)}
        for kind, value in limits.items():
            resource.setrlimit(kind, value)

    def _collect(self, pid: int, request: dict, read_ends: list[int]) -> dict:
        out_r, err_r, status_r = read_ends
        cap = request["max_output_bytes"]
        buffers = {out_r: bytearray(), err_r: bytearray(), status_r: bytearray()}
        received = dict.fromkeys(read_ends, 0)  # bytes per pipe (stderr's buffer keeps only its tail)
        selector = selectors.DefaultSelector()
        for fd in read_ends:
            selector.register(fd, selectors.EVENT_READ)
        pidfd = os.pidfd_open(pid)
        selector.register(pidfd, selectors.EVENT_READ)
        deadline = time.monotonic() + request["timeout_s"]
        killed_for, exited = None, False
        while selector.get_map() and killed_for is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0 and not exited:
                killed_for = "timeout"
                break
            ready = selector.select(0 if exited else remaining)
            if not ready and exited:
                break  # the child is gone and nothing more is waiting: stray holders of the pipes are killed next
            for key, _ in ready:
                if key.fd == pidfd:
                    exited = True
                    selector.unregister(pidfd)
                    continue
                chunk = os.read(key.fd, READ_CHUNK)
                if not chunk:
                    selector.unregister(key.fd)
                    continue
                buffer = buffers[key.fd]
                buffer += chunk
                received[key.fd] += len(chunk)
                if key.fd == err_r and len(buffer) > STDERR_TAIL_BYTES:
                    del buffer[:-STDERR_TAIL_BYTES]
                if key.fd in (out_r, err_r) and received[key.fd] > cap:
                    killed_for = "output"
                    break
                if key.fd == status_r and received[key.fd] > STATUS_CAP_BYTES:
                    killed_for = "status"
                    break
        selector.close()
        os.close(pidfd)
        if killed_for is not None:
            _kill_group(pid)
        _, wait_status = os.waitpid(pid, 0)
        return _reply(buffers[out_r], buffers[err_r], buffers[status_r], wait_status, killed_for, request)

    def _kill_leftovers(self, pid: int) -> None:
        """Kill everything the program started (its group, its uid, the whole namespace) and reap it."""
        _kill_group(pid)
        if self.pid_namespace:
            try:  # as PID 1 of our own namespace, kill(-1) reaches our descendants only
                os.kill(-1, signal.SIGKILL)
            except ProcessLookupError:
                pass
        elif self.uid_drop:
            helper = os.fork()
            if helper == 0:  # kill(-1) as the program's uid reaches exactly that uid's processes
                try:
                    os.setgroups([])
                    os.setgid(self.uid)
                    os.setuid(self.uid)
                    os.kill(-1, signal.SIGKILL)
                finally:
                    os._exit(0)
        if self.uid_drop:
            self._sweep_world_writable()
        give_up = time.monotonic() + 2.0
        while time.monotonic() < give_up:
            try:
                if os.waitpid(-1, os.WNOHANG) == (0, 0):
                    time.sleep(0.001)
            except ChildProcessError:
                return
        print(f"sandbox: children still running after a program (pid {pid})", file=sys.stderr)

    def _sweep_world_writable(self) -> None:
        for folder in WORLD_WRITABLE:
            try:
                entries = list(os.scandir(folder))
            except OSError:
                continue
            for entry in entries:
                try:
                    if entry.stat(follow_symlinks=False).st_uid != self.uid:
                        continue
                    if entry.is_dir(follow_symlinks=False):
                        shutil.rmtree(entry.path, onerror=_force_remove)
                    else:
                        os.unlink(entry.path)
                except OSError as failure:
                    print(f"sandbox: could not remove {entry.path}: {failure}", file=sys.stderr)


def _run_program(code: str, memory_mb: int) -> str | None:
    """Execute `code` as __main__; return None on success, else a one-line error."""
    try:
        exec(compile(code, "<program>", "exec"), {"__name__": "__main__", "__builtins__": builtins})
    except SystemExit as stop:
        if stop.code is None or stop.code == 0:
            return None
        return f"exit code {stop.code}" if isinstance(stop.code, int) else f"SystemExit: {stop.code}"
    except MemoryError:
        return f"memory limit ({memory_mb} MiB): {_last_line()}"
    except SyntaxError as bad:
        return f"{_last_line()} (line {bad.lineno})"
    except BaseException:  # noqa: BLE001 - any exception in untrusted code is its result, reported
        return _last_line()
    return None


def _last_line() -> str:
    return traceback.format_exception_only(*sys.exc_info()[:2])[-1].strip()


def _vm_size_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize in /proc/self/status")


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _force_remove(function, path, _exc_info) -> None:
    """rmtree's error handler: a program may chmod its files read-only; make them writable and retry."""
    os.chmod(os.path.dirname(path), 0o700)
    if os.path.isdir(path) and not os.path.islink(path):
        os.chmod(path, 0o700)
        shutil.rmtree(path, onerror=_force_remove)
    else:
        function(path)


def _reply(out: bytes, err: bytes, status: bytes, wait_status: int, killed_for: str | None,
           request: dict) -> dict:
    cap = request["max_output_bytes"]
    stdout = bytes(out[:cap]).decode("utf-8", errors="replace")
    if killed_for == "timeout":
        return {"stdout": stdout, "error": f"timed out after {request['timeout_s']:g} s", "timed_out": True}
    if killed_for == "output":
        if len(out) > cap:
            return {"stdout": stdout + "\n[output truncated]", "error": f"killed: output limit ({cap} bytes on stdout)",
                    "timed_out": False}
        return {"stdout": stdout, "error": f"killed: output limit ({cap} bytes on stderr)", "timed_out": False}
    if killed_for == "status":
        return {"stdout": stdout, "error": "killed: wrote too much on the status channel", "timed_out": False}
    try:
        error = json.loads(bytes(status))["error"]
    except (ValueError, KeyError, TypeError):
        error = _describe_exit(wait_status, err, request)
    return {"stdout": stdout, "error": error, "timed_out": False}


def _describe_exit(wait_status: int, err: bytes, request: dict) -> str | None:
    """Why a child ended without a status report: a signal (a limit) or an exit code, plus its last stderr line."""
    tail = bytes(err).decode("utf-8", errors="replace").strip().splitlines()
    detail = f": {tail[-1]}" if tail else ""
    if os.WIFSIGNALED(wait_status):
        signum = os.WTERMSIG(wait_status)
        if signum == signal.SIGXCPU:
            return f"killed: CPU time limit ({int(request['timeout_s']) + 2} s){detail}"
        hint = " (memory limit or stack overflow?)" if signum in (signal.SIGSEGV, signal.SIGBUS) else ""
        return f"killed by signal {signal.Signals(signum).name}{hint}{detail}"
    code = os.waitstatus_to_exitcode(wait_status)
    return None if code == 0 else f"exit code {code}{detail}"  # os._exit(0) is a clean exit, as in python


def main() -> None:
    workroot = sys.argv[1]
    protocol_out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # stray prints (library warnings) must not corrupt the protocol
    zygote = Zygote(workroot)
    protocol_out.write(json.dumps({"ready": True, **zygote.layers()}) + "\n")
    protocol_out.flush()
    zygote.serve(sys.stdin, protocol_out)


if __name__ == "__main__":
    main()
