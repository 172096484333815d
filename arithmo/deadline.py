"""Run a function with a hard time limit: SIGALRM on the main thread, a killable worker process elsewhere.

Why not a thread with a deadline: a Python thread cannot be stopped, so a sympy `simplify` that runs
for minutes would keep a core busy after its caller gave up. Measured on the 2-core dev machine with
bench/compare_math_verify.py (one comparison, x(x+1)^2 vs x^3+2x^2+x, 0.89 ms when called directly):

- main thread, `signal.setitimer`: no measurable cost (0.89 ms, ratio 1.00), and a 0.5 s limit
  stopped a runaway `expand` after 0.502 s. The timer re-fires every 0.1 s after the limit, because
  sympy sometimes catches broad exceptions and would swallow one interrupt.
- other threads (where signals cannot be used) and a main thread whose SIGALRM timer is already in
  use by someone else (never disturbed): one long-lived worker subprocess. Its first call costs
  0.30-0.50 s (a fresh interpreter importing sympy; two runs); later calls 1.06 ms (ratio 1.19:
  pickling over a pipe); a 0.5 s limit returned after 0.51 s, the worker killed, and the next call
  starts a new one.
  Calls from several threads share the worker one at a time.

Neither can interrupt one long C-level operation (a GMP power with a billion digits): symbolic.py
refuses such expressions before evaluating them.
"""

from __future__ import annotations

import atexit
import os
import select
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Callable

from arithmo.deadline_worker import receive, send

# After the first interrupt, fire again this often until the call returns (see the module doc).
_REFIRE_INTERVAL_S = 0.1
# `-c` rather than `-m arithmo.deadline_worker`: the package imports deadline_worker first, and runpy warns
# when a module it is asked to run is already imported.
_WORKER_COMMAND = "import sys; from arithmo.deadline_worker import worker_main; worker_main(sys.argv[1:])"
# A fresh interpreter importing sympy takes ~0.3 s here; 60 s leaves room for a loaded machine.
_STARTUP_LIMIT_S = 60.0


class DeadlineExceeded(BaseException):
    """Raised when a call runs past its time limit.

    A BaseException (like KeyboardInterrupt), because it interrupts arbitrary library code, and
    `except Exception` blocks inside sympy must not swallow it.
    """


def _can_use_alarm() -> bool:
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        return False
    delay, _interval = signal.getitimer(signal.ITIMER_REAL)
    return delay == 0.0  # someone else's timer is running: leave it alone


def _raise_deadline(signum, frame):
    raise DeadlineExceeded("time limit reached")


def _call_with_alarm(function: Callable, args: tuple, timeout_s: float) -> Any:
    previous_handler = signal.signal(signal.SIGALRM, _raise_deadline)
    try:
        signal.setitimer(signal.ITIMER_REAL, timeout_s, _REFIRE_INTERVAL_S)
        try:
            return function(*args)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0.0)
    finally:
        signal.signal(signal.SIGALRM, previous_handler)


def _readable_within(stream, timeout_s: float) -> bool:
    ready, _, _ = select.select([stream], [], [], timeout_s)
    return bool(ready)


class _WorkerProcess:
    """One worker process, started on first use, killed and forgotten when a call runs out of time.

    It is a plain `python -c` subprocess (_WORKER_COMMAND) rather than a multiprocessing 'spawn'
    child: spawn re-imports the caller's __main__ module, which re-runs any script without an
    `if __name__ == "__main__"` guard (and fails outright for `python - < script`).
    """

    def __init__(self, preload: tuple[str, ...]) -> None:
        self._preload = preload
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self.starts = 0

    def _start(self) -> None:
        package_root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
        self._process = subprocess.Popen(
            [sys.executable, "-c", _WORKER_COMMAND, *self._preload],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        self.starts += 1
        # Start-up (a fresh interpreter importing sympy, ~0.3 s here) is not part of any call's limit.
        try:
            ready = (_readable_within(self._process.stdout, _STARTUP_LIMIT_S)
                     and receive(self._process.stdout)[0] == "ready")
        except EOFError:  # it exited: an import failed (its stderr, shared with ours, says why)
            ready = False
        if not ready:
            self.stop()
            raise RuntimeError(f"the grading worker process did not start within {_STARTUP_LIMIT_S} s")

    def stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=5)
            self._process.stdin.close()
            self._process.stdout.close()
        self._process = None

    def call(self, function: Callable, args: tuple, timeout_s: float) -> Any:
        with self._lock:
            if self._process is None or self._process.poll() is not None:
                self.stop()
                self._start()
            try:
                send(self._process.stdin, (function, args))
                if not _readable_within(self._process.stdout, timeout_s):
                    self.stop()
                    raise DeadlineExceeded(f"time limit of {timeout_s} s reached in the worker process")
                status, value = receive(self._process.stdout)
            except (EOFError, BrokenPipeError) as error:
                self.stop()
                raise RuntimeError("the grading worker process died during a call") from error
        if status == "error":
            raise RuntimeError(f"the grading worker process failed: {value}")
        return value


_WORKER = _WorkerProcess(preload=("arithmo.grading.symbolic",))
atexit.register(_WORKER.stop)


def call_with_deadline(function: Callable, args: tuple, timeout_s: float) -> Any:
    """`function(*args)`, or DeadlineExceeded when it runs longer than `timeout_s` seconds.

    In a worker process `function` and `args` must be picklable (a module-level function).
    """
    if not timeout_s > 0:
        raise ValueError(f"timeout_s must be a positive number of seconds, got {timeout_s!r}")
    if _can_use_alarm():
        return _call_with_alarm(function, args, timeout_s)
    return _WORKER.call(function, args, timeout_s)


def worker_starts() -> int:
    """How many worker processes were started in this process (1 + one per timed-out call there)."""
    return _WORKER.starts
