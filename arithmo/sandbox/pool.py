"""Run model-written Python (program-of-thought answers) in a sandbox, never with a bare `exec`.

Where bubblewrap runs (`jail.py`), each worker is a jail that sees only a read-only Python runtime with the
stdlib, sympy, mpmath and numpy; inside it a "zygote" (`child.py`) that imported those once forks
one fresh process per program. That process gets its own mount namespace with a size-limited tmpfs as its
working directory, /tmp and /dev/shm; an unprivileged uid; CPU, address-space, file-size, task and
open-file limits; a seccomp filter (no new processes, no exec, no memory outside RLIMIT_AS); a wall-clock
timeout; capped output; and an audit-hook tripwire. Where bubblewrap cannot run, the zygote runs on the host
with the older layers (a warning says so once). `sandbox_layers()` says which layers ran; docs/sandbox.md
says what each contains and what none of them do.

    run_program("print(6 * 7)")                       # ExecResult(stdout='42\\n', error=None, timed_out=False)
    run_programs(codes, timeout_s=5.0, workers=2)     # input order; one crash never loses the others
    with Sandbox(workers=2) as box:                    # keep the warm workers across many calls
        box.run(codes, timeout_s=5.0, memory_mb=512)
"""

from __future__ import annotations

import atexit
import math
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

from arithmo.sandbox import jail as _jail
from arithmo.sandbox.session import Session, SessionHost
from arithmo.sandbox.worker import ExecResult, SandboxError, Worker, one_line, wants_lean

__all__ = ["DEFAULT_LIMITS", "ExecResult", "Sandbox", "SandboxError", "run_program", "run_programs",
           "sandbox_layers"]

# memory_mb: address space a program may add to the preloaded libraries (RLIMIT_AS), threads included.
# disk_mb / max_files: its tmpfs (working directory, /tmp, /dev/shm): bytes and files, all together.
# max_processes: 1 = no child processes (seccomp), threads allowed up to max_threads; N > 1 = N tasks
#   (processes and threads together, RLIMIT_NPROC, as before).
DEFAULT_LIMITS = {"memory_mb": 512, "max_output_bytes": 65536, "max_file_bytes": 1 << 20, "max_processes": 1,
                  "max_threads": 64, "disk_mb": 16, "max_files": 1024, "audit_hook": True}
_MINIMUM = {"memory_mb": 16, "max_output_bytes": 1, "max_file_bytes": 0, "max_processes": 1, "max_threads": 0,
            "disk_mb": 1, "max_files": 1}


def _check_limits(timeout_s: float, limits: dict) -> dict:
    unknown = sorted(set(limits) - set(DEFAULT_LIMITS))
    if unknown:
        raise TypeError(f"unknown sandbox limit(s) {unknown}; expected some of {sorted(DEFAULT_LIMITS)}")
    merged = {**DEFAULT_LIMITS, **limits}
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not 0 < timeout_s < math.inf:
        raise ValueError(f"timeout_s must be a positive finite number of seconds, got {timeout_s!r}")
    for key, low in _MINIMUM.items():
        value = merged[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"sandbox limit {key} must be an int >= {low}, got {value!r}")
    if not isinstance(merged["audit_hook"], bool):
        raise ValueError(f"sandbox option audit_hook must be a bool, got {merged['audit_hook']!r}")
    return {"timeout_s": float(timeout_s), **{k: merged[k] for k in _MINIMUM}, "audit": merged["audit_hook"]}


def _check_workers(workers: int | None) -> int:
    count = (os.cpu_count() or 1) if workers is None else workers
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"workers must be a positive int or None, got {workers!r}")
    return count


class Sandbox:
    """A pool of `workers` warm sandbox workers; reuse one across many `run` calls to pay start-up once.

    jail: None (default) = bubblewrap where it runs, else the fallback layers with a warning; True = bubblewrap
    or SandboxError; False = the fallback layers (for comparisons and tests). Use as a context manager, or call
    `close()`: it ends the workers and removes their temporary folders.
    Raises SandboxError off Linux, ValueError for a bad `workers`.
    """

    def __init__(self, workers: int | None = None, *, jail: bool | None = None) -> None:
        if not sys.platform.startswith("linux"):
            raise SandboxError(f"the PoT sandbox needs Linux (rlimits, pidfd, namespaces); this is {sys.platform}")
        count = _check_workers(workers)
        try:
            chosen = _jail.choose(jail)
        except RuntimeError as failure:
            raise SandboxError(str(failure)) from failure
        self._idle = [Worker(chosen) for _ in range(count)]
        # Beside each worker, a lean one in its own jail (stdlib preloaded only; started on its first program):
        # programs that name no big library run there, at a fraction of the fork and exit cost (worker.wants_lean).
        self._lean = [Worker(chosen, lean=True) for _ in range(count)]
        self._lock = threading.Lock()
        self._chosen = chosen
        self._session_host: SessionHost | None = None  # started on the first session()
        self._sessions: set[Session] = set()  # open ones (a session removes itself when closed)
        self._sessions_lock = threading.Lock()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    @property
    def workers(self) -> int:
        return len(self._idle)

    @property
    def restarts(self) -> list[str]:
        """Why workers were restarted so far (a dead or hung zygote, a failed cleanup), one line each."""
        return [why for worker in self._idle + self._lean for why in worker.restarts]

    def start(self) -> None:
        """Start every worker now (they start together; otherwise each starts on its first program)."""
        with self._lock:
            idle = [worker for worker in self._idle + self._lean if worker.process is None]
            for worker in idle:
                worker.launch()
            for worker in idle:
                worker.wait_ready()

    def layers(self) -> dict:
        """Which containment layers the workers run with (starts one worker if none has started yet)."""
        with self._lock:
            worker = self._idle[0]
            if worker.process is None:
                worker.start()
            return {**worker.layers, "lean_zygote": "programs that import only the stdlib run in a jail of "
                    "their own with the same layers, forked from a zygote that preloaded the stdlib only"}

    def run(self, codes: list[str], timeout_s: float = 5.0, **limits) -> list[ExecResult]:
        """Run every program, up to `workers` at once; results in input order. `limits`: see `run_program`."""
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

            def drain(pair: tuple[Worker, Worker]) -> None:
                while True:
                    with tasks_lock:
                        index = next(tasks, None)
                    if index is None:
                        return
                    worker = pair[1] if wants_lean(codes[index]) else pair[0]
                    try:
                        results[index] = worker.run(request, codes[index])
                    except SandboxError:
                        raise  # a zygote that cannot start: every program would fail
                    except Exception as failure:  # noqa: BLE001 - our bug must cost one program, not the batch
                        worker._restart(f"unexpected {type(failure).__name__}: {failure}")
                        results[index] = ExecResult("", one_line(f"sandbox failure: {type(failure).__name__}: "
                                                                 f"{failure}; worker restarted"), False)

            used = list(zip(self._idle, self._lean))[:max(1, min(len(self._idle), len(codes)))]
            if len(used) == 1:
                drain(used[0])
            else:
                with ThreadPoolExecutor(len(used), thread_name_prefix="sandbox") as pool:
                    for future in [pool.submit(drain, worker) for worker in used]:
                        future.result()  # a SandboxError (zygote cannot start) surfaces here
        return results

    def session(self, timeout_s: float = 5.0, *, cpu_s: float = 60.0, **limits) -> Session:
        """A jailed interpreter that keeps its state across blocks, for tool-integrated reasoning (TIR).

        timeout_s: each block's wall clock (default; `Session.run(code, timeout_s=...)` sets one per block).
        cpu_s: CPU seconds for the session's whole life (RLIMIT_CPU), however many blocks it runs.
        limits: as for `run` (memory_mb, max_output_bytes per block by default, disk_mb, max_files,
            max_file_bytes, max_threads, audit_hook); max_processes must stay 1 (a session runs threads only).
        Returns a started `Session` (use it as a context manager). Sessions run beside `run()`'s workers, in a
        zygote of their own; any number may be open at once (each one process, copy-on-write from it).
        Raises ValueError/TypeError for bad limits, SandboxError when the session cannot start.
        """
        request = _check_limits(timeout_s, limits)
        if request["max_processes"] != 1:
            raise ValueError("a sandbox session runs one process (threads allowed): max_processes must be 1, "
                             f"got {request['max_processes']}")
        if isinstance(cpu_s, bool) or not isinstance(cpu_s, (int, float)) or not 1 <= cpu_s < math.inf:
            raise ValueError(f"cpu_s must be a finite number of seconds >= 1, got {cpu_s!r}")
        request["cpu_s"] = math.ceil(cpu_s)
        with self._sessions_lock:
            if self._session_host is None:
                self._session_host = SessionHost(self._chosen)
            host = self._session_host
        session = Session(host, request, on_close=self._forget_session)
        with self._sessions_lock:
            self._sessions.add(session)
        return session

    def _forget_session(self, session: Session) -> None:
        with self._sessions_lock:
            self._sessions.discard(session)

    def close(self) -> None:
        """End the workers and every open session; remove their temporary folders."""
        with self._sessions_lock:
            sessions, host, self._session_host = list(self._sessions), self._session_host, None
        for session in sessions:
            session.close()
        if host is not None:
            host.close()
        for worker in self._idle + self._lean:
            worker.close()


def run_programs(codes: list[str], timeout_s: float = 5.0, workers: int | None = None, **limits) -> list[ExecResult]:
    """Run many programs in the sandbox, `workers` at a time (default: CPU count); results in input order.

    `limits`: as in `run_program`. One program's crash, timeout or flood is its own ExecResult and never
    loses the others.
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
    """One worker kept for `run_program`, so a loop of single calls pays the start-up once."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Sandbox(workers=1)
            atexit.register(_shared.close)
        return _shared


def run_program(code: str, timeout_s: float = 5.0, *, memory_mb: int = 512, max_output_bytes: int = 65536,
                max_file_bytes: int = 1 << 20, max_processes: int = 1, max_threads: int = 64, disk_mb: int = 16,
                max_files: int = 1024, audit_hook: bool = True) -> ExecResult:
    """Run one program in a fresh sandboxed process and return what it printed.

    timeout_s: wall-clock limit (the whole process group is killed); CPU time is capped at timeout_s + 2 s.
    memory_mb: address space the program may add on top of the preloaded libraries (RLIMIT_AS; threads share it).
    max_output_bytes: stdout (or stderr) beyond this kills the program; stdout ends with "[output truncated]".
    max_file_bytes: largest file it may write (RLIMIT_FSIZE).
    max_processes: 1 (default): it cannot create processes (seccomp), only threads (at most max_threads,
        RLIMIT_NPROC where the uid drop is active). N > 1: N tasks, processes and threads together.
    disk_mb, max_files: size and file count of its tmpfs (working directory, /tmp, /dev/shm) in the jail.
    audit_hook: False switches off the audit-hook tripwire (for testing the kernel layers beneath it).
    Raises ValueError/TypeError for bad limits, SandboxError when no sandbox can start here.
    """
    return _shared_sandbox().run([code], timeout_s, memory_mb=memory_mb, max_output_bytes=max_output_bytes,
                                 max_file_bytes=max_file_bytes, max_processes=max_processes,
                                 max_threads=max_threads, disk_mb=disk_mb, max_files=max_files,
                                 audit_hook=audit_hook)[0]


def sandbox_layers() -> dict:
    """Which containment layers run on this machine, as JSON-able data for run records (metrics.json, manifests).

    Keys include "jail" (e.g. "bubblewrap 0.8.0 (root)" or "fallback: unshare --net --pid ..."),
    "mount_namespace", "network_namespace", "pid_namespace", "filesystem", "privileges", "uid_drop",
    "seccomp", "preloaded", "missing". Starts the shared worker if it is not running.
    """
    return _shared_sandbox().layers()
