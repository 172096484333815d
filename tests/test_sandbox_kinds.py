"""Issue 24, one test per kind that got through the v2 sandbox, and the two benign programs that broke.
Each test failed before its fix (noted per test). Tables are (input, expected) rows with the pitfall named,
with "must NOT" rows (what the fix must leave alone) beside the positive ones. `jail` is the shared
two-worker pool of tests/conftest.py; where a kernel layer is claimed, the audit hook is off.
"""

import fcntl
import json
import os
import sys

import pytest

from arithmo.sandbox import ExecResult, Sandbox
from arithmo.sandbox import worker as _worker


def run(box, code: str, timeout_s: float = 5.0, **limits) -> ExecResult:
    return box.run([code], timeout_s, **limits)[0]


def utf8_everywhere(result: ExecResult) -> None:
    for text in (result.stdout, result.error or ""):
        text.encode("utf-8")  # raises UnicodeEncodeError for a lone surrogate


# kind 1: invalid Unicode crossing into arithmo ----------------------------------------------------------

UNICODE_ROWS = [
    # (program, expected stdout, expected error) -- every string valid UTF-8, by one rule (lone surrogate -> U+FFFD)
    ('"42" + chr(0xDCFF)', "42\ufffd\n", None),                            # the value, through the status
    ("raise ValueError('bad ' + chr(0xD800))", "", "ValueError: bad \ufffd"),  # an exception message
    ("print('x' + chr(0xDFFF))", "x\\udfff\n", None),                      # printed: stdout escapes it (unchanged rule)
    ("import sys\nsys.exit('no ' + chr(0xDC80))", "", "SystemExit: no \ufffd"),  # an exit message
    ("def solution():\n    return chr(0xD83D)", "\ufffd\n", "__none__"),   # a PAL value: a high surrogate alone
    ("[chr(0xDC00), 'a']", "['\\udc00', 'a']\n", None),                    # repr escapes it already: unchanged
    # must NOT change: valid text, including astral characters, U+FFFD itself and NUL
    ('"café " + chr(0x1F600)', "café \U0001F600\n", None),
    ('"\ufffd already"', "\ufffd already\n", None),
    ("'a\\x00b'", "a\x00b\n", None),
    ("raise ValueError('é ok')", "", "ValueError: é ok"),
]


@pytest.mark.parametrize("code, stdout, error", UNICODE_ROWS)
def test_every_string_from_a_program_is_valid_utf8(jail, code, stdout, error):
    # Failed before: '42\udcff' came back intact and store.append_lines raised UnicodeEncodeError.
    result = run(jail, code)
    utf8_everywhere(result)
    assert result.stdout == stdout
    assert result.error == (None if error == "__none__" else error)


@pytest.mark.parametrize("built, expected", [
    (ExecResult("a\udcffb", "E: \ud800", False), ("a\ufffdb", "E: \ufffd")),   # built anywhere: the same rule
    (ExecResult("\ud83d\ude00", None, False), ("\ufffd\ufffd", None)),        # two lone halves stay two
    (ExecResult("plain", None, True), ("plain", None)),                        # must NOT: ASCII untouched
    (ExecResult("\U0001F600 é", "é", False), ("\U0001F600 é", "é")),          # must NOT: valid non-ASCII
])
def test_exec_result_applies_the_rule_wherever_it_is_made(built, expected):
    assert (built.stdout, built.error) == expected


def test_such_results_go_through_every_writer(jail, tmp_path):
    """Predictions (evaluation's store), RFT samples and the app: each writes what the sandbox returned."""
    from arithmo.app.session import DemoSession, describe_execution
    from arithmo.evaluation.scoring import _exec_record
    from arithmo.evaluation.store import append_lines
    from arithmo.rft.sampling import _append, read_rounds

    programs = ['"42" + chr(0xDCFF)', "raise ValueError('bad ' + chr(0xD800))",
                "import sys\nsys.stderr.write(chr(0xDCFF))\nsys.exit(3)", "print(chr(0xD800) + '7')"]
    results = jail.run(programs, timeout_s=5.0)
    rows = [{"id": str(i), "exec": _exec_record(r), "program": code} for i, (r, code) in
            enumerate(zip(results, programs))]
    predictions = tmp_path / "predictions.jsonl"
    append_lines(predictions, rows)  # raised UnicodeEncodeError before
    assert next(json.loads(line)["exec"]["stdout"] for line in predictions.read_text("utf-8").splitlines()) == "42\ufffd\n"
    samples = tmp_path / "samples.jsonl"
    _append(samples, [{"id": "q", "style": "pot", "round": 0, "samples": [{"exec": r["exec"]} for r in rows]}])
    rounds, truncated = read_rounds(samples)
    assert truncated == 0 and rounds["q|pot"][0][1]["exec"]["error"] == "ValueError: bad \ufffd"
    session = DemoSession(generator=None, sandbox=jail)
    for code, result in zip(programs, results):
        describe_execution(result).encode("utf-8")
        session.run_user_program(code).encode("utf-8")  # what the app shows (and gradio sends as JSON)


# kind 2: kernel objects that outlive the program -------------------------------------------------------

SYSV_CREATE = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
def call(name, *args):
    result = getattr(libc, name)(*args)
    return 'created' if result >= 0 else os.strerror(ctypes.get_errno())
print('sem', call('semget', 0x2424, 250, 0o1666))
print('shm', call('shmget', 0x2425, 4096, 0o1666))
print('msg', call('msgget', 0x2426, 0o1666))
print('semop', call('semop', 0, None, 0))
print('shmat', call('shmat', 0, None, 0))
print('mq', call('mq_open', b'/arithmo', 0o100 | 2, 0o666, None))
"""
SYSV_LIST = ("rows = []\nfor kind in ('sem', 'shm', 'msg'):\n"
             "    rows += open('/proc/sysvipc/' + kind).read().splitlines()[1:]\nprint(rows)")


@pytest.mark.parametrize("use_jail", [True, False])
def test_sysv_ipc_is_refused_and_nothing_survives_the_program(use_jail):
    # Failed before: semget created 250 semaphores that the next program of the worker listed.
    with Sandbox(workers=1, jail=use_jail) as box:
        created, listed = box.run([SYSV_CREATE, SYSV_LIST], timeout_s=10.0, audit_hook=False)
        refused = "Operation not permitted"
        assert created.stdout.splitlines() == [f"{name} {refused}" for name in
                                               ("sem", "shm", "msg", "semop", "shmat", "mq")], created
        if use_jail:  # the fallback shares the host's IPC namespace: other software's objects may be listed
            assert listed.stdout == "[]\n", listed
        else:
            assert "0x2424" not in listed.stdout and "9252" not in listed.stdout  # 0x2424 in decimal


# kind 3: a limit verdict decided by a race ----------------------------------------------------------------

STDERR_RACE = ("import fcntl, os\nprint(42, flush=True)\nfcntl.fcntl(2, 1031, 1 << 20)  # F_SETPIPE_SZ\n"
               "os.write(2, b'e' * 600_000)\nos._exit(0)")


def test_stderr_past_the_limit_is_the_same_verdict_whoever_wins_the_race(jail):
    # Failed before: in 1-33% of runs the program ended before the kill and got error=None (graded correct).
    results = jail.run([STDERR_RACE] * 40, timeout_s=5.0)
    assert {r.error for r in results} == {"killed: output limit (65536 bytes on stderr)"}
    assert all(r.stdout == "42\n" and not r.timed_out for r in results)


RACE_ROWS = [
    # (stdout bytes, stdout total, stderr total, expected error) with killed_for None: the program exited first
    (b"42\n", 3, 600_000, "killed: output limit (100 bytes on stderr)"),   # the case
    (b"42\n", 3, 101, "killed: output limit (100 bytes on stderr)"),       # one byte past is past
    (b"x" * 100, 5000, 0, "killed: output limit (100 bytes on stdout)"),   # stdout: as before
    (b"42\n", 3, 100, None),                                               # must NOT: exactly the cap
    (b"42\n", 3, 0, None),                                                 # must NOT: nothing on stderr
]


@pytest.mark.parametrize("out, out_total, err_total, error", RACE_ROWS)
def test_build_result_rechecks_both_streams_after_exit(out, out_total, err_total, error):
    request = {"max_output_bytes": 100, "timeout_s": 5.0}
    reply = {"wait_status": 0, "killed_for": None}
    status = json.dumps({"error": None, "value": None, "value_from": None}).encode()
    assert _worker.build_result(reply, out, out_total, b"e", status, request, err_total).error == error


# kind 4: channels between concurrent programs through the shared read-only runtime -----------------------

CHANNELS = """
import ctypes, fcntl, os, struct
libc = ctypes.CDLL(None, use_errno=True)
shared = os.__file__                      # a file of the runtime every jail (and the host) reads
fd = os.open(shared, os.O_RDONLY)
dirfd = os.open(os.path.dirname(shared), os.O_RDONLY)
lock = struct.pack('hhqqi', fcntl.F_WRLCK, 0, 0, 0, 0)
def attempt(name, action):
    try:
        result = action()
        if isinstance(result, int) and result < 0:
            print(name, os.strerror(ctypes.get_errno()))
        else:
            print(name, 'allowed')
    except OSError as failure:
        print(name, os.strerror(failure.errno))
attempt('flock', lambda: fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB))
attempt('lockf', lambda: fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB))
attempt('getlk', lambda: fcntl.fcntl(fd, fcntl.F_GETLK, lock))
attempt('ofd_getlk', lambda: fcntl.fcntl(fd, 36, lock))
attempt('ofd_setlk', lambda: fcntl.fcntl(fd, 37, struct.pack('hhqqi', fcntl.F_RDLCK, 0, 0, 0, 0)))
attempt('lease', lambda: fcntl.fcntl(fd, 1025))
attempt('dnotify', lambda: fcntl.fcntl(dirfd, 1026, 0x1))
attempt('inotify', lambda: libc.inotify_init1(0))
attempt('fanotify', lambda: libc.fanotify_init(0x40, 0))
attempt('preadv2_nowait', lambda: os.preadv(fd, [bytearray(16)], 0, os.RWF_NOWAIT))
# must NOT be refused: ordinary descriptor work
attempt('getfl', lambda: fcntl.fcntl(fd, fcntl.F_GETFL))
attempt('setfd', lambda: fcntl.fcntl(fd, fcntl.F_SETFD, fcntl.FD_CLOEXEC))
attempt('dupfd', lambda: fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10))
attempt('pipe_size', lambda: fcntl.fcntl(os.pipe()[1], 1031, 1 << 16))
attempt('preadv', lambda: os.preadv(fd, [bytearray(16)], 0))
attempt('read', lambda: os.pread(fd, 16, 0) and 0)
"""
CHANNEL_ROWS = {"flock": "Operation not permitted", "lockf": "Operation not permitted",
                "getlk": "Operation not permitted", "ofd_getlk": "Operation not permitted",
                "ofd_setlk": "Operation not permitted", "lease": "Operation not permitted",
                "dnotify": "Operation not permitted", "inotify": "Operation not permitted",
                "fanotify": "Operation not permitted",
                "preadv2_nowait": "Operation not supported",  # ENOSYS: glibc's preadv fallback refuses the flag
                "getfl": "allowed", "setfd": "allowed", "dupfd": "allowed", "pipe_size": "allowed",
                "preadv": "allowed", "read": "allowed"}


def test_locks_and_watches_on_shared_files_are_refused(jail):
    # Failed before: flock and F_GETLK on a library file passed bits between jails; inotify saw others' opens.
    result = run(jail, CHANNELS, audit_hook=False)
    assert dict(line.split(" ", 1) for line in result.stdout.splitlines()) == CHANNEL_ROWS, result


def test_a_lock_the_host_holds_on_the_runtime_is_invisible(jail):
    """The channel end to end: the host (standing in for another jail) holds an exclusive lock on a file of the
    runtime; the program's probe, which saw it before (EAGAIN), is refused without learning anything."""
    probe = ("import fcntl, os\nfd = os.open(os.__file__, os.O_RDONLY)\n"
             "try:\n    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)\n    print('free')\n"
             "except OSError as e:\n    print(os.strerror(e.errno))")
    with open(os.__file__, "rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        try:
            locked = run(jail, probe, audit_hook=False)
        finally:
            fcntl.flock(held.fileno(), fcntl.LOCK_UN)
    free = run(jail, probe, audit_hook=False)
    assert locked.stdout == free.stdout == "Operation not permitted\n"


# kind 5: switching the audit hook off through its own frame ---------------------------------------------

DEFEAT = """
import os, posixpath, sys, threading
def refusal(action):
    try:
        action()
    except PermissionError as refused:
        return refused
hook_frames = []
tb = refusal(lambda: __import__('socket')).__traceback__
while tb is not None:
    if tb.tb_frame.f_code.co_filename != '<program>':
        hook_frames.append(tb.tb_frame)
    tb = tb.tb_next
me = threading.get_ident()
for frame in hook_frames:
    for value in list(frame.f_locals.values()) + list(frame.f_globals.values()):
        if isinstance(value, set):
            value.add(me)                       # the v2 defeat: join the hook's re-entrancy set
        elif isinstance(value, (dict, list)):
            value.clear()
        for cell in (getattr(value, '__closure__', None) if not isinstance(value, type) else None) or ():
            try:
                cell.cell_contents = ('/',) if isinstance(cell.cell_contents, tuple) else (lambda *a, **k: None)
            except Exception:
                pass
    frame.f_globals['isinstance'] = lambda *a: False
os.path.realpath = posixpath.realpath = lambda path, **k: '/box/work/x'
posixpath._joinrealpath = lambda *a: ('/box/work/x', True)
os.fsdecode = lambda path: '/box/work/x'
print(len(hook_frames) > 0)
for name, action in (('import', lambda: __import__('socket')), ('system', lambda: os.system('true')),
                     ('write', lambda: open('/sandbox/site/arithmo-pwned', 'w')),
                     ('rename', lambda: os.rename('/box/work', '/sandbox/x'))):
    refused = refusal(action)
    print(name, 'refused by the hook' if refused and 'sandbox refused' in str(refused) else 'NOT refused')
"""


def test_the_audit_hook_cannot_be_switched_off_through_its_frame(jail):
    # Failed before: after joining the hook's re-entrancy set, `import socket` went through.
    result = run(jail, DEFEAT)
    assert result.stdout.splitlines() == ["True", "import refused by the hook", "system refused by the hook",
                                          "write refused by the hook", "rename refused by the hook"], result


def test_the_hook_reads_no_global_builtin_or_closure():
    """What makes the above hold: the hook's code loads no name a program could rebind."""
    import dis

    from arithmo.sandbox import guard

    loads = {i.opname for i in dis.get_instructions(guard._hook)}
    assert not loads & {"LOAD_GLOBAL", "LOAD_NAME", "LOAD_DEREF", "LOAD_CLOSURE", "STORE_GLOBAL"}


# benign programs that must work ---------------------------------------------------------------------------

VALUE_ROWS = [
    # (program, expected stdout or error) at the default 64 KiB output cap
    ("'7' * 25_000", "7" * 25_000 + "\n"),                              # the 25 KB value
    ("'7' * 65_536", "7" * 65_536 + "\n"),                              # exactly the cap
    ("'é' * 30_000", "é" * 30_000 + "\n"),                              # 60 KB of UTF-8
    ("'\\x01' * 60_000", "\x01" * 60_000 + "\n"),                       # JSON escapes each byte into six
    ("list(range(5000))", str(list(range(5000))) + "\n"),               # a long list's str()
    ("def solution():\n    return '9' * 30_000", "9" * 30_000 + "\n"),  # a PAL value
    # must NOT pass: past the cap is an error, as a printed flood would be
    ("'7' * 65_537", "the last expression value is longer than the output limit (65536 bytes)"),
    ("'é' * 40_000", "the last expression value is longer than the output limit (65536 bytes)"),
    ("raise ValueError('v' * 100_000)", "ValueError: " + "v" * 485 + "..."),  # a long error is cut, not killed
]


@pytest.mark.parametrize("code, expected", VALUE_ROWS)
def test_a_value_under_the_output_cap_is_returned(jail, code, expected):
    result = run(jail, code, timeout_s=10.0)
    assert (result.stdout if result.error is None else result.error) == expected


LAMBDIFY_ROWS = [
    ("import sympy as sp\nx = sp.symbols('x')\nprint(sp.lambdify(x, x**2 + 1, 'numpy')(3))", "10"),  # the issue's
    (("import sympy as sp, numpy as np\nx, y = sp.symbols('x y')\nf = sp.lambdify((x, y), sp.sqrt(x) * y, 'numpy')\n"
     "print(f(np.array([1.0, 4.0]), 2.0).tolist())"), "[2.0, 4.0]"),
    ("import sympy as sp\nx = sp.symbols('x')\nprint(sp.lambdify(x, sp.sin(x), modules=['numpy', 'sympy'])(0))", "0.0"),
    ("import sympy as sp\nx = sp.symbols('x')\nprint(sp.lambdify(x, x / 3, 'math')(6))", "2.0"),
    ("import sympy as sp\nx = sp.symbols('x')\nprint(sp.lambdify(x, x + 1)(1))", "2"),
    ("import numpy as np\nnp.testing.assert_allclose(0.1 + 0.2, 0.3)\nprint('close')", "close"),
]
NOT_OPENED = [
    # must NOT open: after lambdify loaded numpy.testing and numpy.ctypeslib, network and native code stay shut
    ("import socket", "PermissionError: sandbox refused import socket (network access)"),
    (("import numpy.ctypeslib as c, sysconfig\n"
     "c.load_library('libm.so.6', '/usr/lib/' + sysconfig.get_config_var('MULTIARCH'))"),
     "PermissionError: sandbox refused ctypes.dlopen"),
    ("import ctypes\nctypes.CDLL('libm.so.6')", "PermissionError: sandbox refused ctypes.dlopen"),
]


@pytest.mark.parametrize("code, printed", LAMBDIFY_ROWS)
def test_lambdify_works_in_the_jail(jail, code, printed):
    assert run(jail, code, timeout_s=10.0) == ExecResult(printed + "\n", None, False)


@pytest.mark.parametrize("code, error", NOT_OPENED)
def test_lambdify_opens_neither_network_nor_native_loading(jail, code, error):
    result = run(jail, "import sympy as sp\nsp.lambdify(sp.Symbol('x'), 1, 'numpy')\n" + code)
    assert result.error is not None and result.error.startswith(error), result


def test_with_the_hook_off_the_network_namespace_still_holds_after_lambdify(jail):
    code = ("import sympy as sp, sys\nsp.lambdify(sp.Symbol('x'), 1, 'numpy')\n"
            "socket = next(m.socket for m in list(sys.modules.values()) if getattr(m, 'socket', None) and "
            "hasattr(m.socket, 'create_connection'))\n"
            "try:\n    socket.create_connection(('1.1.1.1', 53), timeout=2)\n    print('connected')\n"
            "except OSError as e:\n    print(type(e).__name__)")
    # PermissionError: seccomp refuses socket() itself since issue 24's review (before: OSError, no route)
    assert run(jail, code, audit_hook=False).stdout == "PermissionError\n"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
