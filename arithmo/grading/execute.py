"""Run model-written Python (program-of-thought answers) in a sandbox, never with a bare `exec`.

Each program runs in its own freshly forked process with CPU, memory, file-size, process-count and open-file
limits, a wall-clock timeout that kills its whole process group, a fresh working directory (deleted after),
no stdin, capped output, a minimal environment, an unprivileged uid when we are root, and an audit hook that
refuses subprocesses, sockets, native code and writes outside its directory. The processes are forked by a
"zygote" (`_sandbox_child.py`) that imported sympy/numpy once, and the zygote itself runs inside a new PID and
network namespace (`unshare`) where the machine allows it. `sandbox_layers()` says which layers are active;
docs/sandbox.md says what each contains and what none of them do.
"""

from __future__ import annotations

import atexit
import json
import math
import os
import selectors
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

__all__ = ["ExecResult", "Sandbox", "SandboxError", "run_program", "run_programs", "sandbox_layers"]

ZYGOTE_SCRIPT = Path(__file__).with_name("_sandbox_child.py")
DEFAULT_LIMITS = {"memory_mb": 512, "max_output_bytes": 65536, "max_file_bytes": 1 << 20, "max_processes": 4,
                  "audit_hook": True}
STARTUP_TIMEOUT_S = 120.0  # the zygote imports sympy + numpy: ~0.6 s measured here; generous for loaded CI
REPLY_GRACE_S = 30.0  # on top of a program's timeout: the zygote's own kill, reap and temp-dir removal
# unshare(1) candidates, strongest first: as root a PID + network namespace; otherwise the same inside a user
# namespace (unprivileged user namespaces may be disabled: then no jail). --kill-child: if unshare dies, the
# zygote (PID 1 of the namespace) dies, and the kernel kills everything else in the namespace.
JAILS = (["--net", "--pid", "--fork", "--kill-child"],
         ["--user", "--map-root-user", "--net", "--pid", "--fork", "--kill-child"])


class SandboxError(RuntimeError):
    """The sandbox itself could not run (not a program's failure, which is an ExecResult)."""


@dataclass(frozen=True)
class ExecResult:
    """What one program did: its captured (capped) stdout, a one-line error or None, and whether it timed out."""

    stdout: str
    error: str | None
    timed_out: bool

    def to_record(self) -> dict:
        """The DESIGN.md ExecRecord: {stdout, error, timed_out}."""
        return {"stdout": self.stdout, "error": self.error, "timed_out": self.timed_out}


def _check_limits(timeout_s: float, limits: dict) -> dict:
    unknown = sorted(set(limits) - set(DEFAULT_LIMITS))
    if unknown:
        raise TypeError(f"unknown sandbox limit(s) {unknown}; expected some of {sorted(DEFAULT_LIMITS)}")
    merged = {**DEFAULT_LIMITS, **limits}
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not 0 < timeout_s < math.inf:
        raise ValueError(f"timeout_s must be a positive finite number of seconds, got {timeout_s!r}")
    minimum = {"memory_mb": 16, "max_output_bytes": 1, "max_file_bytes": 0, "max_processes": 1}
    for key, low in minimum.items():
        value = merged[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"sandbox limit {key} must be an int >= {low}, got {value!r}")
    if not isinstance(merged["audit_hook"], bool):
        raise ValueError(f"sandbox option audit_hook must be a bool, got {merged['audit_hook']!r}")
    return {"timeout_s": float(timeout_s), **{k: merged[k] for k in minimum}, "audit": merged["audit_hook"]}


def _check_workers(workers: int | None) -> int:
    count = (os.cpu_count() or 1) if workers is None else workers
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"workers must be a positive int or None, got {workers!r}")
    return count


@lru_cache(maxsize=1)
def _jail() -> tuple[list[str], str]:
    """The unshare prefix that works on this machine (tried once per process) and a line saying which."""
    unshare = shutil.which("unshare") or ("/usr/bin/unshare" if os.path.exists("/usr/bin/unshare") else None)
    if unshare is None:
        return [], "no jail: unshare(1) not found"
    failures = []
    for flags in JAILS:
        if "--user" not in flags and os.geteuid() != 0:
            continue  # PID/network namespaces without a user namespace need root
        try:
            probe = subprocess.run([unshare, *flags, "--", sys.executable, "-I", "-c",
                                    "import os; raise SystemExit(os.getpid() != 1)"],
                                   stdin=subprocess.DEVNULL, capture_output=True, timeout=30, env=_zygote_env("/"))
        except (OSError, subprocess.TimeoutExpired) as failure:
            failures.append(f"{' '.join(flags)}: {failure}")
            continue
        if probe.returncode == 0:
            return [unshare, *flags, "--"], f"unshare {' '.join(flags)}"
        failures.append(f"{' '.join(flags)}: {probe.stderr.decode(errors='replace').strip() or probe.returncode}")
    return [], "no jail: " + "; ".join(failures)


def _zygote_env(home: str) -> dict:
    # Nothing of the caller's environment (tokens, keys) reaches programs; one BLAS thread each, so a program
    # gets one core and RLIMIT_NPROC is not spent on threads.
    return {"PATH": "/usr/bin:/bin", "HOME": home, "LANG": "C.UTF-8", "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


class _Worker:
    """One zygote process (inside the jail) and the pipes to talk to it; used by one thread at a time."""

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None
        self.workroot: str | None = None
        self.layers: dict = {}
        self._pending = b""
        self._stderr = None

    def start(self) -> None:
        prefix, jail = _jail()
        self.workroot = tempfile.mkdtemp(prefix="arithmo-sandbox-")
        os.chmod(self.workroot, 0o711)  # programs (another uid) must reach their own directory inside
        self._stderr = tempfile.TemporaryFile()
        self._pending = b""
        try:
            self.process = subprocess.Popen([*prefix, sys.executable, "-I", str(ZYGOTE_SCRIPT), self.workroot],
                                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
                                            env=_zygote_env(self.workroot), start_new_session=True)
        except OSError as failure:
            self.close()
            raise SandboxError(f"could not start the sandbox zygote ({jail}): {failure}") from failure
        line = self._read_line(time.monotonic() + STARTUP_TIMEOUT_S)
        if line is None:
            details = self._stderr_tail()
            self.close()
            raise SandboxError(f"the sandbox zygote did not start ({jail}): {details}")
        ready = json.loads(line)
        self.layers = {"jail": jail, "network_namespace": "--net" in prefix,
                       "user_namespace": "--user" in prefix, **{k: v for k, v in ready.items() if k != "ready"}}

    def run(self, request: dict) -> ExecResult:
        if self.process is not None and self.process.poll() is not None:
            self.close()  # died between programs (killed from outside): not this program's doing, start afresh
        if self.process is None:
            self.start()
        try:
            self.process.stdin.write(json.dumps(request).encode() + b"\n")
            self.process.stdin.flush()
        except OSError as failure:  # BrokenPipeError included
            return self._lost(f"could not take the program: {failure}", timed_out=False)
        line = self._read_line(time.monotonic() + request["timeout_s"] + REPLY_GRACE_S)
        if line is None:
            alive = self.process.poll() is None
            return self._lost("did not answer in time" if alive else "died", timed_out=alive)
        reply = json.loads(line)
        return ExecResult(stdout=reply["stdout"], error=reply["error"], timed_out=reply["timed_out"])

    def _lost(self, what: str, timed_out: bool) -> ExecResult:
        """The zygote failed (not the program): kill it and its namespace; the next run starts a fresh one."""
        details = self._stderr_tail()
        self.close()
        return ExecResult(stdout="", error=f"sandbox worker {what}; restarted" + (f" ({details})" if details else ""),
                          timed_out=timed_out)

    def _read_line(self, deadline: float) -> bytes | None:
        """The next protocol line, or None on EOF or past `deadline` (reads raw: no buffering to hang on)."""
        fd = self.process.stdout.fileno()
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not selector.select(remaining):
                    return None
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    return None
                self._pending += chunk
        line, _, self._pending = self._pending.partition(b"\n")
        return line

    def _stderr_tail(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace").strip()[-2000:]

    def close(self) -> None:
        if self.process is not None:
            try:
                self.process.stdin.close()  # EOF: the zygote finishes and exits by itself
                self.process.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()  # unshare --kill-child takes the zygote and its namespace with it
                self.process.wait()
            self.process.stdout.close()
            self.process = None
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        if self.workroot is not None:
            shutil.rmtree(self.workroot, ignore_errors=True)  # what a killed zygote could not delete itself
            self.workroot = None


class Sandbox:
    """A pool of `workers` zygotes; reuse one across many `run` calls to pay the start-up (~0.6 s) once.

    Use as a context manager, or call `close()`: it ends the zygotes and removes their temporary folders.
    """

    def __init__(self, workers: int | None = None) -> None:
        if not sys.platform.startswith("linux"):
            raise SandboxError(f"the PoT sandbox needs Linux (rlimits, pidfd, namespaces); this is {sys.platform}")
        self._idle = [_Worker() for _ in range(_check_workers(workers))]
        self._lock = threading.Lock()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    @property
    def workers(self) -> int:
        return len(self._idle)

    def layers(self) -> dict:
        """Which containment layers the zygotes run with (starts one zygote if none has started yet)."""
        with self._lock:
            worker = self._idle[0]
            if worker.process is None:
                worker.start()
            return dict(worker.layers)

    def run(self, codes: list[str], timeout_s: float = 5.0, **limits) -> list[ExecResult]:
        """Run every program, up to `workers` at once; results in input order."""
        request = _check_limits(timeout_s, limits)
        if not isinstance(codes, (list, tuple)):
            raise TypeError(f"codes must be a list of str, got {type(codes).__name__}")
        for index, code in enumerate(codes):
            if not isinstance(code, str):
                raise TypeError(f"codes[{index}] must be a str (a Python program), got {type(code).__name__}")
        results: list[ExecResult | None] = [None] * len(codes)
        with self._lock:  # one run at a time owns the workers
            tasks = iter(range(len(codes)))
            tasks_lock = threading.Lock()

            def drain(worker: _Worker) -> None:
                while True:
                    with tasks_lock:
                        index = next(tasks, None)
                    if index is None:
                        return
                    results[index] = worker.run({**request, "code": codes[index]})

            used = self._idle[:max(1, min(len(self._idle), len(codes)))]
            if len(used) == 1:
                drain(used[0])
            else:
                with ThreadPoolExecutor(len(used), thread_name_prefix="sandbox") as pool:
                    for future in [pool.submit(drain, worker) for worker in used]:
                        future.result()  # a SandboxError (zygote cannot start) surfaces here
        return results

    def close(self) -> None:
        for worker in self._idle:
            worker.close()


def run_programs(codes: list[str], timeout_s: float = 5.0, workers: int | None = None, **limits) -> list[ExecResult]:
    """Run many programs in the sandbox, `workers` at a time (default: CPU count); results in input order.

    `limits`: memory_mb, max_output_bytes, max_file_bytes, max_processes, audit_hook (as in `run_program`).
    One program's crash, timeout or flood is its own ExecResult and never loses the others.
    """
    _check_limits(timeout_s, limits)
    count = _check_workers(workers)
    if not codes:
        return []
    with Sandbox(workers=min(count, len(codes))) as sandbox:
        return sandbox.run(codes, timeout_s, **limits)


_shared: Sandbox | None = None
_shared_lock = threading.Lock()


def _shared_sandbox() -> Sandbox:
    """One zygote kept for `run_program`, so a loop of single calls pays the start-up once."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Sandbox(workers=1)
            atexit.register(_shared.close)
        return _shared


def run_program(code: str, timeout_s: float = 5.0, *, memory_mb: int = 512, max_output_bytes: int = 65536,
                max_file_bytes: int = 1 << 20, max_processes: int = 4, audit_hook: bool = True) -> ExecResult:
    """Run one program in a fresh sandboxed process and return what it printed.

    timeout_s: wall-clock limit (the whole process group is killed); CPU time is capped at timeout_s + 2 s.
    memory_mb: address space the program may add on top of the preloaded libraries (RLIMIT_AS).
    max_output_bytes: stdout (or stderr) beyond this kills the program; stdout ends with "[output truncated]".
    max_file_bytes: largest file it may write in its working directory (RLIMIT_FSIZE).
    max_processes: processes + threads its uid may hold (RLIMIT_NPROC; enforced when the uid drop is active).
    audit_hook: False switches off the audit-hook tripwire (for testing the kernel layers beneath it).
    """
    return _shared_sandbox().run([code], timeout_s, memory_mb=memory_mb, max_output_bytes=max_output_bytes,
                                 max_file_bytes=max_file_bytes, max_processes=max_processes,
                                 audit_hook=audit_hook)[0]


def sandbox_layers() -> dict:
    """Which containment layers are active on this machine (jail, namespaces, uid drop...), for run records."""
    return _shared_sandbox().layers()
