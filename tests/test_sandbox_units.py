"""The sandbox's parts on their own, without starting a jail: reading a child's status and exit, the iterative
folder removal, the seccomp filter, the jail's command line and the fallback's warning. Fast (no zygote).
"""

import ctypes
import json
import os
import signal
import struct
import sys
import tempfile
import threading
import warnings
from pathlib import Path

import pytest

from arithmo.sandbox import jail as _jail, seccomp
from arithmo.sandbox.fs import remove_tree
from arithmo.sandbox.worker import ExecResult, build_result, one_line, signal_name

REQUEST = {"timeout_s": 2.0, "max_output_bytes": 8}
UNREADABLE = "the program wrote to the sandbox's status channel (descriptor 3): its result is unreadable"


def exited(code: int) -> int:
    return code << 8  # a wait status for exit(code)


def killed(number: int) -> int:
    return number  # a wait status for death by signal `number`


# (zygote reply, stdout bytes, stdout total, stderr tail, status bytes) -> ExecResult
RESULT_ROWS = [
    ({"wait_status": exited(0)}, b"42\n", 3, b"", b'{"error": null}', ExecResult("42\n", None, False)),
    # a forged status whose error is a dict must not make ExecResult.error a dict
    ({"wait_status": exited(0)}, b"", 0, b"", b'{"error": {"a": 1}}', ExecResult("", UNREADABLE, False)),
    # deeply nested JSON raises RecursionError in json.loads, not ValueError
    ({"wait_status": exited(0)}, b"", 0, b"", b"[" * 5000, ExecResult("", UNREADABLE, False)),
    # an error of several lines becomes one line
    ({"wait_status": exited(0)}, b"", 0, b"", json.dumps({"error": "a\nb"}).encode(), ExecResult("", "a b", False)),
    # a real-time signal has no signal.Signals member: ValueError in the old zygote
    ({"wait_status": killed(signal.SIGRTMIN + 3)}, b"", 0, b"", b"",
     ExecResult("", "killed by signal SIGRTMIN+3", False)),
    ({"wait_status": killed(signal.SIGSEGV)}, b"", 0, b"Fatal\n", b"",
     ExecResult("", "killed by signal SIGSEGV (memory limit or stack overflow?): Fatal", False)),
    ({"wait_status": killed(signal.SIGXCPU)}, b"", 0, b"", b"", ExecResult("", "killed: CPU time limit (4 s)", False)),
    ({"wait_status": exited(0)}, b"", 0, b"", b"", ExecResult("", None, False)),  # os._exit(0): clean, as in python
    ({"wait_status": exited(3)}, b"", 0, b"oops\n", b"", ExecResult("", "exit code 3: oops", False)),
    # timed_out only for the wall clock; a status says nothing then
    ({"wait_status": killed(9), "killed_for": "timeout"}, b"part", 4, b"", b"",
     ExecResult("part", "timed out after 2 s", True)),
    ({"wait_status": killed(9), "killed_for": "output"}, b"12345678", 20, b"", b"",
     ExecResult("12345678\n[output truncated]", "killed: output limit (8 bytes on stdout)", False)),
    ({"wait_status": killed(9), "killed_for": "output"}, b"ok", 2, b"eeee", b"",
     ExecResult("ok", "killed: output limit (8 bytes on stderr)", False)),
    ({"wait_status": killed(9), "killed_for": "status"}, b"", 0, b"", b"x" * 100,
     ExecResult("", "killed: wrote too much on the sandbox's status channel", False)),
    # the value of a program that printed nothing, and only then
    ({"wait_status": exited(0)}, b"", 0, b"", b'{"error": null, "value": "5", "value_from": "last expression"}',
     ExecResult("5\n", None, False, "last expression")),
    ({"wait_status": exited(0)}, b"7\n", 2, b"", b'{"error": null, "value": "5", "value_from": "last expression"}',
     ExecResult("7\n", None, False)),
    ({"wait_status": exited(0)}, b"", 0, b"", b'{"error": null, "value": "5", "value_from": "made up"}',
     ExecResult("", UNREADABLE, False)),  # an unknown source: not what the child writes
    # the child's own setup failure (exit 71) reports through its status
    ({"wait_status": exited(71)}, b"", 0, b"", b'{"error": "sandbox setup failed: OSError: x"}',
     ExecResult("", "sandbox setup failed: OSError: x", False)),
]


@pytest.mark.parametrize("reply, out, total, err, status, expected", RESULT_ROWS)
def test_build_result(reply, out, total, err, status, expected):
    assert build_result(reply, out, total, err, status, REQUEST) == expected


@pytest.mark.parametrize("number, name", [
    (signal.SIGSEGV, "SIGSEGV"), (signal.SIGKILL, "SIGKILL"), (signal.SIGRTMIN, "SIGRTMIN"),
    (signal.SIGRTMIN + 3, "SIGRTMIN+3"),  # no Signals member between SIGRTMIN and SIGRTMAX: ValueError before
    (signal.SIGRTMAX - 1, f"SIGRTMIN+{signal.SIGRTMAX - 1 - signal.SIGRTMIN}"),
    (200, "signal 200")])  # out of range: a number, never a crash
def test_signal_names(number, name):
    assert signal_name(number) == name


@pytest.mark.parametrize("text, line", [("a\nb", "a b"), ("  x \t y ", "x y"), ("e" * 600, "e" * 497 + "..."),
                                        ("", "")])
def test_one_line(text, line):
    assert one_line(text) == line


@pytest.fixture
def fast_tmp(tmp_path):
    """A folder on tmpfs (/dev/shm) where there is one: 3,000 levels on a loaded disk took 7 s here."""
    if not os.path.isdir("/dev/shm") or not os.access("/dev/shm", os.W_OK):
        yield tmp_path
        return
    folder = tempfile.mkdtemp(prefix="arithmo-test-", dir="/dev/shm")
    yield Path(folder)
    remove_tree(folder)


def test_remove_tree_takes_deep_and_locked_trees_and_never_follows_links(fast_tmp):
    tmp_path = fast_tmp
    root = tmp_path / "prog"
    root.mkdir()
    fd = os.open(root, os.O_RDONLY)
    for _ in range(3000):  # shutil.rmtree raised RecursionError here; full paths pass PATH_MAX
        os.mkdir("d", dir_fd=fd)
        inner = os.open("d", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = inner
    os.close(fd)
    (root / "locked").mkdir()
    (root / "locked" / "f").write_text("x")
    (root / "locked").chmod(0o000)
    (root / "readonly").mkdir()
    (root / "readonly" / "g").write_text("x")
    (root / "readonly").chmod(0o500)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    (root / "link").symlink_to(outside)
    assert remove_tree(str(root)) == 3000 + 2 + 2 + 1 + 1
    assert not root.exists() and (outside / "keep.txt").read_text() == "keep"
    assert remove_tree(str(root)) == 0  # absent: nothing to do


def test_seccomp_filter_layout():
    arch = seccomp.machine()
    if arch is None:
        pytest.skip("no seccomp table for this machine")
    program = seccomp.build_filter(arch, allow_processes=False)
    insns = [struct.unpack("=HBBI", program[i:i + 8]) for i in range(0, len(program), 8)]
    assert insns[0] == (0x20, 0, 0, 4) and insns[1][3] == seccomp.ARCHES[arch]["audit_arch"]
    assert insns[-1] == (0x06, 0, 0, seccomp.RET_ALLOW)
    numbers = seccomp.ARCHES[arch]["syscalls"]
    refused = {k for code, _, _, k in insns if code == 0x15}
    assert {numbers["execve"], numbers["memfd_create"], numbers["ptrace"], numbers["clone"]} <= refused
    with_processes = seccomp.build_filter(arch, allow_processes=True)
    assert len(with_processes) < len(program)  # no fork/vfork refusal, no clone flag check


def test_seccomp_filter_in_a_forked_child_refuses_processes_but_not_threads():
    if seccomp.machine() is None:
        pytest.skip("no seccomp table for this machine")
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        try:
            seccomp.install(ctypes.CDLL(None, use_errno=True), allow_processes=False)
            seen = []
            thread = threading.Thread(target=seen.append, args=("thread",))
            thread.start()
            thread.join()
            for name, attempt in (("fork", os.fork), ("exec", lambda: os.execv(sys.executable, [sys.executable])),
                                  ("memfd", lambda: os.memfd_create("m"))):
                try:
                    attempt()
                    seen.append(f"{name} allowed")
                except PermissionError:
                    seen.append(f"{name} refused")
            os.write(write_end, json.dumps(seen).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        seen = json.loads(pipe.read() or b"[]")
    os.waitpid(pid, 0)
    assert seen == ["thread", "fork refused", "exec refused", "memfd refused"]


def test_bwrap_command_binds_only_the_runtime_the_packages_and_the_zygote():
    prefix, python, facts = _jail.bwrap_command("/usr/bin/bwrap", root=True)
    for flag in ("--unshare-pid", "--unshare-net", "--unshare-ipc", "--die-with-parent", "--new-session",
                 "--as-pid-1", "--clearenv"):
        assert flag in prefix
    sources = [prefix[i + 1] for i, arg in enumerate(prefix) if arg == "--ro-bind"]
    repo = str(_jail.HERE.parents[1])
    from_repo = [s for s in sources if s.startswith(repo + os.sep)]
    packages = [s for s in from_repo if os.path.basename(s) in ("sympy", "mpmath", "numpy", "numpy.libs")]
    assert [s for s in from_repo if s not in packages] == [str(_jail.HERE / f) for f in _jail.ZYGOTE_FILES]

    # (the checkout itself may live anywhere, /tmp included: its own binds were checked just above)
    assert not any(s.startswith(("/etc", "/home", "/run", "/var", "/tmp")) or s in ("/", "/usr", "/root")
                   for s in sources if not s.startswith(repo + os.sep))
    assert prefix[prefix.index("--cap-drop") + 1] == "ALL" and python[1:] == ["-I", "-S"]
    # every folder above a mount point is created 0755 first (bubblewrap would copy /root's 0700)
    dirs = [prefix[i + 3] for i, arg in enumerate(prefix) if arg == "--perms" and prefix[i + 2] == "--dir"]
    assert "/sandbox" in dirs and dirs.index("/sandbox") < dirs.index("/sandbox/site")


def test_the_fallback_warns_once_and_says_why(monkeypatch):
    monkeypatch.setattr(_jail, "_bwrap", lambda: None)
    _jail.choose.cache_clear()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            first, second = _jail.choose(), _jail.choose()
        assert first is second and first.mode == "host"
        assert [str(w.message).split(";")[0] for w in caught] == [
            "arithmo sandbox: bubblewrap cannot run here: bwrap not found (Debian: apt-get install bubblewrap)"]
        assert first.layers["fallback_reason"].startswith("bubblewrap cannot run here: bwrap not found")
        with pytest.raises(RuntimeError, match="bubblewrap cannot run here: bwrap not found"):
            _jail.choose(True)
    finally:
        _jail.choose.cache_clear()  # the next test probes the real machine again


LEAN_ROWS = [
    # (program, forked from the lean zygote?) -- only speed depends on it; must NOT send a big-library program lean
    ("step0 = 48 / 2\nprint(step0)", True),                            # a GSM8K calculator program
    ("import math\nprint(math.sqrt(16))", True),                        # stdlib the lean zygote preloaded
    ("from fractions import Fraction\nimport itertools, functools", True),
    ("    import os.path", True),                                       # indented, dotted
    ("import numpy as np", False),
    ("from sympy import symbols", False),
    ("x = 1; import mpmath", False),                                    # after a semicolon: the name still shows
    ("import json, sympy", False),                                      # the second of two
    ("import pandas", False),                                           # not preloaded anywhere: the full zygote
    ("m = __import__('math')", False),                                  # an import it cannot read
    ("import importlib\nimportlib.import_module('math')", False),
    ("s = 'numpy'", False),                                             # a mention is enough (cheap and safe)
    ("exec('import ' + name)", False),                                  # imports built at run time
    ("getattr(__builtins__, 'x')", False),
    ("print(eval('2 + 3'))", False),
]


@pytest.mark.parametrize("code, lean", LEAN_ROWS)
def test_which_zygote_forks_a_program(code, lean):
    from arithmo.sandbox.worker import wants_lean

    assert wants_lean(code) is lean
