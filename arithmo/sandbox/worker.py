"""The evaluator's side of one sandbox worker: start its zygote, hand it programs, read what they write.

Per program the parent makes a memfd holding the program text and three pipes (stdout, stderr, status), passes
the memfd and the pipes' write ends to the zygote over the control socket (SCM_RIGHTS) and reads the pipes
itself, with caps. The zygote forks the child, enforces the wall clock, kills on request (output over its cap)
and answers with the child's wait status. See `child.py` for the protocol.

Every way this can go wrong for one program (the zygote dies, hangs, cannot clean up) costs one worker restart
and yields an ExecResult that says so; it never raises into the batch. Only a zygote that cannot start at all
raises SandboxError (the machine cannot sandbox: every program would fail).
"""

from __future__ import annotations

import json
import os
import re
import selectors
import signal
import socket
import subprocess
import tempfile
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from arithmo.sandbox import jail as _jail
from arithmo.sandbox.fs import remove_tree

STARTUP_TIMEOUT_S = 120.0  # the zygote imports sympy + numpy: ~0.6 s measured here; generous for loaded CI
REPLY_GRACE_S = 10.0  # on top of a program's timeout: the zygote's kill, reap (<= 2 s) and cleanup
DRAIN_S = 2.0  # after the zygote's answer every writer is dead; a pipe still open after this is abandoned
STDERR_TAIL_BYTES, READ_CHUNK = 4096, 65536
# The status report carries the program's value (at most max_output_bytes of UTF-8, checked in the child) and
# an error line (cut to runner.MAX_ERROR_CHARS there), as JSON with ensure_ascii: one byte can become six
# ("\u0001"). So the channel's cap follows the output cap; one size limit, the output's, decides what the
# user sees (issue 24: a 25 KB value was killed by a fixed 16 KiB cap on this channel).
STATUS_OVERHEAD_BYTES = 8 * 4096
MAX_ERROR_CHARS = 500
VALUE_SOURCES = ("last expression", "solution()")
SETUP_FAILED_EXIT = 71  # child.py: the child could not be set up (its status says why)


# Every zygote is started from one thread that lives as long as the process: `bwrap --die-with-parent`
# (PR_SET_PDEATHSIG) fires when the *thread* that started it ends, so a jail started from a short-lived
# thread (a pool's drain thread, a web handler) would be killed with it (seen here: every jail restarted
# after each two-worker batch). Made on first use, and forgotten in a forked child (which has no threads).
_spawner: ThreadPoolExecutor | None = None
_spawner_lock = threading.Lock()


def _spawn(argv: list[str], **popen_args) -> subprocess.Popen:
    global _spawner
    with _spawner_lock:
        if _spawner is None:
            _spawner = ThreadPoolExecutor(1, thread_name_prefix="sandbox-spawner")
        spawner = _spawner
    return spawner.submit(subprocess.Popen, argv, **popen_args).result()


def _forget_spawner() -> None:
    global _spawner, _spawner_lock
    _spawner, _spawner_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_spawner)


class SandboxError(RuntimeError):
    """The sandbox itself could not run (not a program's failure, which is an ExecResult)."""


def status_cap(request: dict) -> int:
    """Bytes the status channel may carry for `request` before the program is killed for writing there."""
    return 6 * request["max_output_bytes"] + STATUS_OVERHEAD_BYTES


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def valid_text(text: str) -> str:
    """`text` with every lone surrogate (U+D800..U+DFFF, the only code points UTF-8 cannot encode) replaced
    by U+FFFD, so it encodes as UTF-8 everywhere (json.dumps(ensure_ascii=False) + a utf-8 file, gradio).
    The one rule at the sandbox boundary: ExecResult applies it to every string a program produced. Linear."""
    return text if text.isascii() else _LONE_SURROGATE.sub("\ufffd", text)


@dataclass(frozen=True)
class ExecResult:
    """What one program did.

    stdout: its captured output (capped; "[output truncated]" appended when cut). When the program printed
        nothing and ended with a bare expression or defines `solution()`, the value of that, as text plus
        a newline (see `value_from`), so `answer_from_output(result.stdout)` reads it like a printed line.
    error: None on success, else one line of text (the exception's last traceback line, a limit, a signal).
    timed_out: True only when the wall-clock limit stopped it.
    value_from: None when stdout is what the program printed; "last expression" or "solution()" when stdout
        holds that value instead (computed inside the sandbox).
    """

    stdout: str
    error: str | None
    timed_out: bool
    value_from: str | None = None

    def __post_init__(self) -> None:
        # Every string in a result is valid Unicode that UTF-8 can encode (issue 24): a program's value, its
        # exception message and its output may hold lone surrogates ("42" + chr(0xDCFF)), which would make
        # the evaluator's writers (predictions, RFT samples, the app) raise UnicodeEncodeError.
        object.__setattr__(self, "stdout", valid_text(self.stdout))
        if self.error is not None:
            object.__setattr__(self, "error", valid_text(self.error))

    def to_record(self) -> dict:
        """The ExecRecord of docs/design.md ("Records"): {stdout, error, timed_out}."""
        return {"stdout": self.stdout, "error": self.error, "timed_out": self.timed_out}


def one_line(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """`text` as one line (line breaks and runs of spaces become one space), cut to `limit` characters."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def signal_name(number: int) -> str:
    """SIGSEGV, SIGRTMIN+3, or "signal 77": real-time signals have no Signals member (ValueError)."""
    try:
        return signal.Signals(number).name
    except ValueError:
        if signal.SIGRTMIN <= number <= signal.SIGRTMAX:
            return f"SIGRTMIN+{number - signal.SIGRTMIN}"
        return f"signal {number}"


def _describe_exit(wait_status: int, err: bytes, request: dict) -> str | None:
    """Why a child ended without a usable status: a signal (a limit) or an exit code, plus its last stderr line."""
    tail = bytes(err).decode("utf-8", errors="replace").strip().splitlines()
    detail = f": {tail[-1]}" if tail else ""
    if os.WIFSIGNALED(wait_status):
        number = os.WTERMSIG(wait_status)
        if number == signal.SIGXCPU:
            cpu_s = int(request.get("cpu_s") or request["timeout_s"] + 2)  # child_setup.set_limits' rule
            return one_line(f"killed: CPU time limit ({cpu_s} s){detail}")
        hint = " (memory limit or stack overflow?)" if number in (signal.SIGSEGV, signal.SIGBUS) else ""
        return one_line(f"killed by signal {signal_name(number)}{hint}{detail}")
    code = os.waitstatus_to_exitcode(wait_status)
    return None if code == 0 else one_line(f"exit code {code}{detail}")  # os._exit(0) is a clean exit


def _parse_status(status: bytes) -> dict | None:
    """The child's status report, or None when absent or not what the child writes (the program wrote there)."""
    try:
        report = json.loads(bytes(status))
    except (ValueError, RecursionError):  # RecursionError: a deeply nested forgery
        return None
    if not isinstance(report, dict) or not isinstance(report.get("error"), (str, type(None))):
        return None
    if not isinstance(report.get("value"), (str, type(None))) or report.get("value_from") not in (None,
                                                                                                  *VALUE_SOURCES):
        return None
    return report


def build_result(reply: dict, out: bytes, out_total: int, err: bytes, status: bytes, request: dict,
                 err_total: int = 0) -> ExecResult:
    """The ExecResult of one program from the zygote's reply and what the parent read: `out` (stdout, at most
    the cap), `out_total` (bytes it wrote there), `err` (stderr's tail), `err_total`, `status` (the report)."""
    cap = request["max_output_bytes"]
    stdout = bytes(out[:cap]).decode("utf-8", errors="replace")
    killed = reply.get("killed_for")
    if killed == "timeout":
        return ExecResult(stdout, f"timed out after {request['timeout_s']:g} s", True)
    if killed == "output":
        if out_total > cap:
            return ExecResult(stdout + "\n[output truncated]", f"killed: output limit ({cap} bytes on stdout)", False)
        return ExecResult(stdout, f"killed: output limit ({cap} bytes on stderr)", False)
    # Past a limit, but it ended before the kill reached it: the same verdict as a kill, decided by what was
    # written, never by which came first (issue 24: 600 KB on stderr and an immediate exit was graded correct).
    if out_total > cap:
        return ExecResult(stdout + "\n[output truncated]", f"killed: output limit ({cap} bytes on stdout)", False)
    if err_total > cap:
        return ExecResult(stdout, f"killed: output limit ({cap} bytes on stderr)", False)
    if killed == "status" or len(status) > status_cap(request):
        return ExecResult(stdout, "killed: wrote too much on the sandbox's status channel", False)
    wait_status = reply["wait_status"]
    report = _parse_status(status) if status else None
    clean_exit = os.WIFEXITED(wait_status) and os.WEXITSTATUS(wait_status) in (0, SETUP_FAILED_EXIT)
    if report is not None and clean_exit:
        error = None if report["error"] is None else one_line(report["error"])
    elif status and clean_exit:
        error = "the program wrote to the sandbox's status channel (descriptor 3): its result is unreadable"
    else:
        error = _describe_exit(wait_status, err, request)
    if error is None and report is not None and report.get("value") is not None and out_total == 0:
        # The child measured the value already; measured again here, on the parsed JSON (exact str), because
        # the child's check runs in the program's own process, where the program can reach it (issue 24: a str
        # subclass whose encode() returned b"" passed it). Same counting as the child's (runner.run).
        if len(report["value"].encode("utf-8", "backslashreplace")) > cap:
            return ExecResult("", f"the {report['value_from']} value is longer than the output limit "
                                  f"({cap} bytes)", False)
        return ExecResult(report["value"] + "\n", None, False, report["value_from"])
    return ExecResult(stdout, error, False)


# Which zygote a program is forked from (pool.py). Both run in jails with the same layers: what a program may
# do does not depend on it. A library the lean zygote did not preload is imported after the guard, which
# refuses the helpers sympy and numpy load (subprocess, socket, ctypes): so any program whose text names
# them, imports anything else, or could build an import at run time (__import__, importlib, exec, eval,
# getattr, __builtins__, sys.modules) goes to the full zygote. Only a program that hides a big library's
# name from its own text (string building) lands in the lean one, and gets the guard's PermissionError.
LEAN_MODULES = frozenset(("math", "cmath", "fractions", "decimal", "statistics", "itertools", "functools",
                          "collections", "re", "datetime", "random", "string", "operator", "heapq", "bisect",
                          "numbers", "json", "copy", "typing", "dataclasses", "inspect", "concurrent", "threading",
                          "os", "sys", "time", "io", "abc", "enum", "types", "warnings", "__future__"))
_BIG_HINTS = ("sympy", "numpy", "mpmath", "scipy", "__import__", "importlib", "exec", "eval", "getattr",
              "__builtins__", "sys.modules", "compile")
_IMPORT = re.compile(r"^[ \t]*(?:from[ \t]+([\w.]+)[ \t]+import|import[ \t]+([\w.][\w., \t]*))", re.M)


def wants_lean(code: str) -> bool:
    """True when `code` imports nothing beyond LEAN_MODULES and names no big library (linear in len(code))."""
    if any(hint in code for hint in _BIG_HINTS):
        return False
    for match in _IMPORT.finditer(code):
        for name in (match.group(1) or match.group(2)).split(","):
            top = name.strip().split(" ")[0].partition(".")[0]
            if top and top not in LEAN_MODULES:
                return False
    return True


class Worker:
    """One zygote (in its jail) and the socket to it; used by one thread at a time."""

    def __init__(self, jail: _jail.Jail, lean: bool = False) -> None:
        self.jail = jail
        self.lean = lean  # a lean zygote (stdlib preloaded only) for programs that name no big library
        self.process: subprocess.Popen | None = None
        self.control: socket.socket | None = None
        self.workroot: str | None = None
        self.layers: dict = {}
        self.seq = 0
        self.restarts: list[str] = []  # why this worker was restarted, oldest first
        self._stderr = None

    def start(self) -> None:
        """Launch the zygote and wait until it is ready (raises SandboxError if it cannot start)."""
        self.launch()
        self.wait_ready()

    def launch(self) -> None:
        parent_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._stderr = tempfile.TemporaryFile()
        if self.jail.mode == "host":
            self.workroot = tempfile.mkdtemp(prefix="arithmo-sandbox-")
            os.chmod(self.workroot, 0o711)  # programs (another uid) must reach their own folder inside
        config = {"control_fd": child_end.fileno(), "workroot": self.workroot, "lean": self.lean,
                  "site": _jail.JAIL_SITE if self.jail.mode == "jail" else None}
        try:
            self.process = _spawn(self.jail.command(config), pass_fds=(child_end.fileno(),),
                                  stdin=subprocess.DEVNULL, stdout=self._stderr, stderr=self._stderr,
                                  env=_jail.zygote_env(), cwd="/", start_new_session=True)
        except OSError as failure:
            parent_end.close()
            self.close()
            raise SandboxError(f"could not start the sandbox zygote ({self.jail.description}): {failure}") from failure
        finally:
            child_end.close()
        self.control = parent_end

    def wait_ready(self) -> None:
        ready = self._receive(time.monotonic() + STARTUP_TIMEOUT_S)
        if not isinstance(ready, dict) or not ready.get("ready"):
            details = (ready or {}).get("error") or self._stderr_tail() or "no answer"
            self.close()
            raise SandboxError(f"the sandbox zygote did not start ({self.jail.description}): {details}")
        self.layers = {"jail": self.jail.description, **self.jail.layers,
                       **{k: v for k, v in ready.items() if k != "ready"}}

    def _receive(self, deadline: float):
        """The zygote's next message (a dict), or None on EOF, on a broken message or past `deadline`."""
        with selectors.DefaultSelector() as selector:
            selector.register(self.control, selectors.EVENT_READ)
            if not selector.select(max(0.0, deadline - time.monotonic())):
                return None
        try:
            data = self.control.recv(1 << 16)
            return json.loads(data) if data else None
        except (OSError, ValueError):
            return None

    def run(self, request: dict, code: str) -> ExecResult:
        if self.process is not None and self.process.poll() is not None:
            self._restart("the zygote had died between programs")
        if self.process is None:
            self.start()
        self.seq += 1
        payload = code.encode("utf-8", errors="surrogatepass")
        program = os.memfd_create("arithmo-program", os.MFD_CLOEXEC)
        pipes = [os.pipe() for _ in range(3)]  # stdout, stderr, status
        try:
            written = 0
            while written < len(payload):
                written += os.write(program, payload[written:])
            header = {"run": self.seq, **request, "code_bytes": len(payload)}
            socket.send_fds(self.control, [json.dumps(header).encode()], [program, *(w for _, w in pipes)])
        except OSError as failure:  # BrokenPipeError included: the zygote is gone
            for read_end, _ in pipes:
                os.close(read_end)
            return self._lost(f"could not take the program ({failure})")
        finally:
            os.close(program)
            for _, write_end in pipes:
                os.close(write_end)
        return self._collect(request, [r for r, _ in pipes])

    def _collect(self, request: dict, read_ends: list[int]) -> ExecResult:
        out_r, err_r, status_r = read_ends
        cap, status_limit = request["max_output_bytes"], status_cap(request)
        buffers = {fd: bytearray() for fd in read_ends}
        totals = dict.fromkeys(read_ends, 0)
        reply, kill_sent, lost = None, False, None
        deadline = time.monotonic() + request["timeout_s"] + REPLY_GRACE_S
        selector = selectors.DefaultSelector()
        for fd in read_ends:
            selector.register(fd, selectors.EVENT_READ)
        selector.register(self.control, selectors.EVENT_READ)
        try:
            while reply is None or len(selector.get_map()) > 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                for key, _ in selector.select(remaining):
                    if key.fileobj is self.control:
                        message = self._receive(time.monotonic())
                        if message is None:
                            lost = "died while running the program"
                            break
                        if message.get("seq") != self.seq:
                            continue
                        reply = message
                        selector.unregister(self.control)
                        deadline = time.monotonic() + DRAIN_S
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
                        del buffer[:-limit]  # keep the tail: the last line says why it failed
                    elif len(buffer) < limit:
                        buffer += chunk[: limit - len(buffer)]
                    reason = ("output" if key.fd in (out_r, err_r) and totals[key.fd] > cap else
                              "status" if key.fd == status_r and totals[key.fd] > status_limit else None)
                    if reason and not kill_sent and reply is None:
                        kill_sent = True
                        self._send({"kill": reason, "seq": self.seq})
                if lost:
                    break
        finally:
            selector.close()
            for fd in read_ends:
                os.close(fd)
        if reply is None:
            return self._lost(lost or f"did not answer within {request['timeout_s'] + REPLY_GRACE_S:g} s")
        if "zygote_error" in reply:
            return self._lost(f"failed: {reply['zygote_error']}")
        result = build_result(reply, buffers[out_r], totals[out_r], buffers[err_r], buffers[status_r], request,
                              totals[err_r])
        if reply.get("restart"):
            self._restart(f"cleanup after a program failed: {reply.get('cleanup_error')}")
        return result

    def _send(self, message: dict) -> None:
        try:
            self.control.send(json.dumps(message).encode())
        except OSError:
            pass  # the zygote is gone: the read loop sees EOF

    def _restart(self, why: str) -> None:
        """Kill this zygote (and its jail) now; the next program starts a fresh one."""
        self.restarts.append(one_line(why))
        if self.process is not None and self.process.poll() is None:
            self.process.kill()  # bwrap --die-with-parent / unshare --kill-child take the jail with it
        self.close()

    def _lost(self, what: str) -> ExecResult:
        """The zygote failed (not the program): restart it; the program's result says so."""
        details = self._stderr_tail()
        self._restart(f"the sandbox worker {what}")
        return ExecResult("", one_line(f"sandbox worker {what}; restarted" + (f" ({details})" if details else "")),
                          False)

    def _stderr_tail(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return one_line(self._stderr.read().decode(errors="replace").strip()[-1000:])

    def close(self) -> None:
        if self.control is not None:
            self.control.close()  # EOF: the zygote finishes and exits by itself
            self.control = None
        if self.process is not None:
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()  # bwrap --die-with-parent / unshare --kill-child take the jail with it
                self.process.wait()
            self.process = None
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        if self.workroot is not None:
            try:
                remove_tree(self.workroot)  # what a killed zygote could not delete itself
            except OSError as failure:
                warnings.warn(f"arithmo sandbox: could not remove {self.workroot}: {failure}", RuntimeWarning,
                              stacklevel=2)
            self.workroot = None
