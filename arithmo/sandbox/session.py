"""Sessions: one jailed interpreter per solution, for tool-integrated reasoning (TIR), where a solution's code
blocks build on each other (ToRA, Gou et al. 2024; Qwen2.5-Math's TIR: each block runs in the state the
earlier blocks left, like notebook cells).

    with box.session(timeout_s=5.0, memory_mb=512) as s:      # box: a Sandbox
        r = s.run("import sympy as sp\\nx = sp.symbols('x')\\nroots = sp.solve(x**2 - 4, x)")
        r = s.run("print(roots)")                             # ExecResult(stdout='[-2, 2]\\n', ...)
        s.run("while True: pass", timeout_s=1.0)              # ExecResult(error='timed out after 1 s; the
        s.alive, s.ended                                      #   session ended ...', timed_out=True); False, why

How: a Sandbox keeps one extra zygote (in its own jail, like a worker) that only hosts sessions. Per session it
forks one process with its own uid, its own PID namespace (PID 2 under an init of its own), mount namespace,
/proc and tmpfs (the jail) or host folder (the fallback), every limit and layer of a program (rlimits, seccomp, no child processes, the audit hook), and
hands the evaluator its pidfd. The evaluator then talks to the session directly over a socketpair: per block,
a memfd with the code and three fresh pipes (stdout, stderr, status), read here with the block's caps, with
the block's wall clock, exactly as for one program (worker.py). Between blocks the session is stopped
(SIGSTOP), so a thread it left running uses no CPU while the model writes the next block.
"""

from __future__ import annotations

import json
import math
import os
import selectors
import signal
import socket
import threading
import time

from arithmo.sandbox import jail as _jail
from arithmo.sandbox.worker import (
    DRAIN_S,
    READ_CHUNK,
    STARTUP_TIMEOUT_S,
    STDERR_TAIL_BYTES,
    ExecResult,
    SandboxError,
    Worker,
    _describe_exit,
    build_result,
    one_line,
    status_cap,
)

HOST_REPLY_S = 30.0  # the session host forks and answers at once; generous for a loaded machine
ENDED = "; the session ended (its variables are gone)"


class SessionHost:
    """The zygote that hosts sessions (one per Sandbox, started on the first session). Thread-safe."""

    def __init__(self, jail: _jail.Jail) -> None:
        self.worker = Worker(jail)
        self._lock = threading.Lock()
        self._next = 0

    def _ask(self, message: dict, fds: list[int] = ()) -> tuple[dict | None, list[int]]:
        """One request and its answer on the control socket (the caller holds the lock)."""
        socket.send_fds(self.worker.control, [json.dumps(message).encode()], list(fds))
        with selectors.DefaultSelector() as selector:
            selector.register(self.worker.control, selectors.EVENT_READ)
            if not selector.select(HOST_REPLY_S):
                return None, []
        data, got, _, _ = socket.recv_fds(self.worker.control, 1 << 16, 2)
        return (json.loads(data) if data else None), got

    def open(self, request: dict) -> tuple[int, int, socket.socket]:
        """(session id, pidfd of its process, our end of its socket). Raises SandboxError if it cannot start."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with self._lock:
            worker = self.worker
            if worker.process is not None and worker.process.poll() is not None:
                worker._restart("the session host had died")
            if worker.process is None:
                worker.start()
            self._next += 1
            number = self._next
            try:
                reply, fds = self._ask({"session": number, **request}, [theirs.fileno()])
            except OSError as failure:
                reply, fds = {"error": f"the session host is gone ({failure})"}, []
            finally:
                theirs.close()
        if reply is None or "pid" not in reply or len(fds) != 1:
            for fd in fds:
                os.close(fd)
            ours.close()
            why = (reply or {}).get("error") or "no answer from the session host"
            if reply is None:
                with self._lock:
                    self.worker._restart(f"the session host {why}")
            raise SandboxError(f"could not start a sandbox session: {why}")
        return number, fds[0], ours

    def reap(self, number: int) -> int | None:
        """Kill (if needed) and reap session `number`'s process; its wait status (None when unknown)."""
        with self._lock:
            if self.worker.control is None:
                return None
            try:
                reply, fds = self._ask({"reap": number})
            except OSError:
                return None
            for fd in fds:
                os.close(fd)
        return None if reply is None else reply.get("wait_status")

    def close(self) -> None:
        with self._lock:
            self.worker.close()


class Session:
    """One jailed interpreter that keeps its state across `run` calls (variables, imports, random generators).

    Made by `Sandbox.session(...)`; use it as a context manager or call `close()` (an unclosed session lives,
    stopped, until its Sandbox closes). One thread at a time.
    `alive`: True until a block ends it (timeout, output over its cap, a crash, CPU time) or it is closed.
    `ended`: None while alive, else why it ended (one line). Closing kills its process and frees its memory
    and files (its tmpfs is in its own mount namespace, gone with its process).
    """

    def __init__(self, host: SessionHost, request: dict, on_close=None) -> None:
        self._host, self._request, self._on_close = host, request, on_close
        self._number, self._pidfd, self._channel = host.open(request)
        self._blocks, self._closed = 0, False
        self.ended: str | None = None
        ready = self._receive_ready(time.monotonic() + STARTUP_TIMEOUT_S)
        if ready != {"ready": True}:
            why = ready.get("error") if isinstance(ready, dict) else None
            self.close()
            raise SandboxError(f"the sandbox session did not start: {one_line(str(why or 'no answer'))}")

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def _receive_ready(self, deadline: float):
        with selectors.DefaultSelector() as selector:
            selector.register(self._channel, selectors.EVENT_READ)
            if not selector.select(max(0.0, deadline - time.monotonic())):
                return None
        try:
            return json.loads(self._channel.recv(4096) or b"null")
        except (OSError, ValueError):
            return None

    @property
    def alive(self) -> bool:
        return not self._closed and self.ended is None

    def _signal(self, number: int) -> None:
        try:
            signal.pidfd_send_signal(self._pidfd, number)
        except ProcessLookupError:
            pass

    def run(self, code: str, timeout_s: float | None = None, max_output_bytes: int | None = None) -> ExecResult:
        """Run one block in this session's interpreter; its own wall clock (`timeout_s`, default the
        session's) and output cap (`max_output_bytes`, default the session's). ExecResult as for a program
        (the last-expression and solution() answer rules apply per block). A timeout, an output flood or a
        crash ends the session: the result's error says so, and later blocks get an error saying it ended.
        Raises SandboxError when the session is closed, TypeError/ValueError for bad arguments."""
        if self._closed:
            raise SandboxError("this sandbox session is closed")
        if not isinstance(code, str):
            raise TypeError(f"code must be a str (a Python block), got {type(code).__name__}")
        timeout_s = self._request["timeout_s"] if timeout_s is None else timeout_s
        cap = self._request["max_output_bytes"] if max_output_bytes is None else max_output_bytes
        if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not 0 < timeout_s < math.inf:
            raise ValueError(f"timeout_s must be a positive finite number of seconds, got {timeout_s!r}")
        if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
            raise ValueError(f"max_output_bytes must be an int >= 1, got {cap!r}")
        if self.ended is not None:
            return ExecResult("", f"the sandbox session had already ended ({self.ended}); its state is gone", False)
        self._blocks += 1
        request = {**self._request, "timeout_s": float(timeout_s), "max_output_bytes": cap}
        payload = code.encode("utf-8", errors="surrogatepass")
        program = os.memfd_create("arithmo-block", os.MFD_CLOEXEC)
        pipes = [os.pipe() for _ in range(3)]
        try:
            written = 0
            while written < len(payload):
                written += os.write(program, payload[written:])
            self._signal(signal.SIGCONT)
            header = {"block": self._blocks, "code_bytes": len(payload), "max_output_bytes": cap}
            socket.send_fds(self._channel, [json.dumps(header).encode()], [program, *(w for _, w in pipes)])
        except OSError:  # its socket is gone: the process died while idle, or on SIGCONT (a pending signal)
            for read_end, _ in pipes:
                os.close(read_end)
            # why=None: its wait status says how (an exit code, a signal), as when it dies during a block; on a
            # loaded machine a pending signal's handler can end it before the block is even sent
            return self._end(request, "", b"", None)
        finally:
            os.close(program)
            for _, write_end in pipes:
                os.close(write_end)
        try:
            return self._collect(request, [r for r, _ in pipes])
        except OSError as failure:  # whatever the session's death did to our ends: a result, never a raise
            return self._end(request, "", b"", f"the session's process was gone ({failure.strerror or failure})")

    def _collect(self, request: dict, read_ends: list[int]) -> ExecResult:
        out_r, err_r, status_r = read_ends
        cap, status_limit = request["max_output_bytes"], status_cap(request)
        buffers = {fd: bytearray() for fd in read_ends}
        totals = dict.fromkeys(read_ends, 0)
        done = died = False
        killed_for = None
        deadline = time.monotonic() + request["timeout_s"]
        selector = selectors.DefaultSelector()
        for fd in (*read_ends, self._pidfd):
            selector.register(fd, selectors.EVENT_READ)
        selector.register(self._channel, selectors.EVENT_READ)
        try:
            while killed_for is None and not ((done or died) and
                                              not any(fd in selector.get_map() for fd in read_ends)):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    if not (done or died):
                        killed_for = "timeout"
                    break
                for key, _ in selector.select(remaining):
                    if key.fileobj is self._channel:
                        try:  # only b"done" means anything; the block may forge it
                            message = self._channel.recv(64)
                        except OSError:  # ECONNRESET: it died with our block unread (a pending signal on SIGCONT)
                            message = b""
                        if message == b"done" or not message:
                            done = done or message == b"done"
                            selector.unregister(self._channel)
                            if not done:
                                died = True  # its end of the socket closed: the process is ending
                            deadline = min(deadline, time.monotonic() + DRAIN_S)
                        continue
                    if key.fd == self._pidfd:
                        died = True
                        selector.unregister(self._pidfd)
                        deadline = min(deadline, time.monotonic() + DRAIN_S)
                        continue
                    chunk = os.read(key.fd, READ_CHUNK)
                    if not chunk:
                        selector.unregister(key.fd)
                        continue
                    totals[key.fd] += len(chunk)
                    buffer = buffers[key.fd]
                    limit = {out_r: cap, err_r: STDERR_TAIL_BYTES, status_r: status_limit + 1}[key.fd]
                    if key.fd == err_r:
                        buffer += chunk
                        del buffer[:-limit]
                    elif len(buffer) < limit:
                        buffer += chunk[: limit - len(buffer)]
                    if key.fd in (out_r, err_r) and totals[key.fd] > cap:
                        killed_for = "output"
                    elif key.fd == status_r and totals[key.fd] > status_limit:
                        killed_for = "status"
            open_pipes = [fd for fd in read_ends if fd in selector.get_map()]
        finally:
            selector.close()
            for fd in read_ends:
                os.close(fd)
        stdout_cut = bytes(buffers[out_r][:cap]).decode("utf-8", errors="replace")
        if killed_for == "timeout":
            return self._end(request, stdout_cut, buffers[err_r], f"timed out after {request['timeout_s']:g} s",
                             timed_out=True)
        if killed_for is not None:
            verdict = build_result({"killed_for": killed_for, "wait_status": 0}, buffers[out_r], totals[out_r],
                                   buffers[err_r], buffers[status_r], request, totals[err_r])
            return self._end(request, verdict.stdout, buffers[err_r], verdict.error)
        if died or not done:
            return self._end(request, stdout_cut, buffers[err_r], None)
        result = build_result({"killed_for": None, "wait_status": 0}, buffers[out_r], totals[out_r], buffers[err_r],
                              buffers[status_r], request, totals[err_r])
        if result.error is not None and result.error.startswith("killed:"):  # a cap passed as the block ended
            return self._end(request, result.stdout, buffers[err_r], result.error)
        if open_pipes:  # a thread it started kept the block's output open after the block ended
            return self._end(request, result.stdout, buffers[err_r],
                             "a thread kept the block's output open after the block ended")
        self._signal(signal.SIGSTOP)  # no CPU between blocks: a thread it left running waits for the next one
        return result

    def _end(self, request: dict, stdout: str, err: bytes, why: str | None, timed_out: bool = False) -> ExecResult:
        """Kill and reap the session's process; the block's result says why the session ended."""
        self._signal(signal.SIGKILL)
        wait_status = self._host.reap(self._number)
        self._number = None
        if why is None:  # it died by itself: a signal (a limit, a crash) or an exit
            if wait_status is None:
                why = "the session's process ended"
            elif os.WIFEXITED(wait_status):
                why = f"the session's process exited ({_describe_exit(wait_status, err, request) or 'exit code 0'})"
            else:
                why = _describe_exit(wait_status, err, request)
        self.ended = one_line(why)
        return ExecResult(stdout, one_line(why + ENDED), timed_out)

    def close(self) -> None:
        """Kill the session's process and free everything it held. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._channel.close()
        self._signal(signal.SIGKILL)
        if self._number is not None:
            self._host.reap(self._number)
            self._number = None
        os.close(self._pidfd)
        if self.ended is None:
            self.ended = "closed"
        if self._on_close is not None:
            self._on_close(self)  # the Sandbox keeps open sessions (to close them with it) until here
