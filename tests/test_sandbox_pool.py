"""Issue 12, kind 6: one program must not break the pool. Whatever a program does (a 3,000-level tree, a
real-time signal, a forged or nested status report, a segfault) costs at most itself, or one worker restart
(a dead or hung worker, a failed cleanup), never the batch; errors stay one line of text and `timed_out` is
true only for timeouts. The other kinds are in test_sandbox_jail.py.
"""

import os
import select
import sys
import threading
import time

import pytest

psutil = pytest.importorskip("psutil", reason="psutil is needed to kill a jail from outside")

from arithmo.sandbox import jail as _jail  # noqa: E402
from arithmo.sandbox import ExecResult, Sandbox  # noqa: E402


def run(box, code: str, timeout_s: float = 5.0, **limits) -> ExecResult:
    return box.run([code], timeout_s, **limits)[0]


DEEP = "import os\nfor _ in range(3000):\n    os.mkdir('d')\n    os.chdir('d')\nprint('deep')"


@pytest.mark.parametrize("use_jail", [True, pytest.param(False, marks=pytest.mark.slow)])  # the host disk: 5-12 s
def test_a_3000_level_tree_costs_nothing_but_itself(jail, use_jail):
    with Sandbox(workers=1, jail=use_jail) as box:
        results = box.run(["print(1)", DEEP, "print(2)"], timeout_s=20.0, max_files=4000, audit_hook=False)
        assert [r.stdout for r in results] == ["1\n", "deep\n", "2\n"] and box.restarts == []
        for worker in box._idle + box._lean:  # DEEP imports only os: it ran in the lean worker
            if worker.workroot is not None:  # the fallback's folder on the host disk
                assert os.listdir(worker.workroot) == []  # removed, iteratively, after the program


def test_signals_and_forged_status_reports_are_reported_as_what_they_are(jail):
    codes = ["import os, signal\nos.kill(os.getpid(), signal.SIGRTMIN + 3)",
             "import os\nos.write(3, b'[' * 10000)\nos._exit(0)",
             "import os\nos.write(3, b'[' * 500000)\nos._exit(0)",  # past 6 x the output cap + 32 KiB
             "import os\nos.write(3, b'{\"error\": {\"a\": 1}}')\nos._exit(0)",
             "import os, json\nos.write(3, json.dumps({'error': 'one\\ntwo'}).encode())\nos._exit(0)",
             "import ctypes\nctypes.string_at(0)",
             "import os\nos.kill(os.getpid(), 9)",
             "print('still fine')"]
    results = jail.run(codes, timeout_s=5.0, audit_hook=False)
    unreadable = "the program wrote to the sandbox's status channel (descriptor 3): its result is unreadable"
    assert [r.error for r in results] == [
        "killed by signal SIGRTMIN+3", unreadable, "killed: wrote too much on the sandbox's status channel",
        unreadable, "one two", "killed by signal SIGSEGV (memory limit or stack overflow?)",
        "killed by signal SIGKILL", None]
    assert not any(r.timed_out for r in results) and results[-1].stdout == "still fine\n"
    assert jail.restarts == []


def test_a_worker_killed_mid_program_is_a_crash_not_a_timeout(jail):
    with Sandbox(workers=1, jail=True) as box:
        box.start()
        zygote_jail = box._lean[0].process.pid  # the program imports only the stdlib: the lean worker runs it

        def kill_soon():
            time.sleep(0.5)
            psutil.Process(zygote_jail).kill()

        killer = threading.Thread(target=kill_soon)
        killer.start()
        crashed = run(box, "import time\ntime.sleep(5)", timeout_s=8.0)
        killer.join()
        assert crashed.error.startswith("sandbox worker died while running the program; restarted")
        assert not crashed.timed_out and len(box.restarts) == 1
        assert run(box, "print('next')").stdout == "next\n"


# a fake zygote (speaks the protocol, runs nothing) to show how the pool takes a failed cleanup or a hang

FAKE_ZYGOTE = r'''
import json, os, socket, sys, time
config = json.loads(sys.argv[1])
control = socket.socket(fileno=config["control_fd"])
control.send(json.dumps({"ready": True, "pid_namespace": False}).encode())
while True:
    data, fds, _, _ = socket.recv_fds(control, 65536, 8)
    if not data:
        break
    request = json.loads(data)
    code = os.pread(fds[0], request["code_bytes"], 0).decode()
    if code == "hang":
        time.sleep(60)
    if code == "die":
        os._exit(1)
    os.write(fds[1], f"ran {code}\n".encode())
    for fd in fds:
        os.close(fd)
    bad = code == "bad cleanup"
    control.send(json.dumps({"seq": request["run"], "wait_status": 0, "killed_for": None,
                             "cleanup_error": "could not remove its folder: test" if bad else None,
                             "restart": bad}).encode())
'''


@pytest.fixture
def fake_pool(tmp_path, monkeypatch):
    script = tmp_path / "fake_zygote.py"
    script.write_text(FAKE_ZYGOTE)
    fake = _jail.Jail("host", (), (sys.executable, "-I"), str(script), "fake zygote (test)", {})
    monkeypatch.setattr(_jail, "choose", lambda _asked=None: fake)
    monkeypatch.setattr("arithmo.sandbox.worker.REPLY_GRACE_S", 0.5)
    with Sandbox(workers=1) as box:
        yield box


def test_a_failed_cleanup_costs_one_restart_never_the_batch(fake_pool):
    results = fake_pool.run(["a", "bad cleanup", "b"], timeout_s=1.0)
    assert [r.stdout for r in results] == ["ran a\n", "ran bad cleanup\n", "ran b\n"]
    assert fake_pool.restarts == ["cleanup after a program failed: could not remove its folder: test"]


def test_a_hung_or_dead_worker_is_reported_as_a_crash(fake_pool):
    hung, after, dead, last = fake_pool.run(["hang", "x", "die", "y"], timeout_s=0.5)
    assert hung == ExecResult("", "sandbox worker did not answer within 1 s; restarted", False)
    assert dead == ExecResult("", "sandbox worker died while running the program; restarted", False)
    assert after.stdout == "ran x\n" and last.stdout == "ran y\n" and len(fake_pool.restarts) == 2


def test_a_forked_evaluator_can_start_its_own_pool(jail):
    """A forked child (datasets' num_proc, a web server's workers) has no spawner thread: it makes its own."""
    assert run(jail, "print(1)").stdout == "1\n"  # the parent's spawner thread exists now
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - reports through the pipe
        try:
            with Sandbox(workers=1, jail=True) as box:
                os.write(write_end, box.run(["print(6 * 7)"], timeout_s=5.0)[0].stdout.encode())
        finally:
            os._exit(0)
    os.close(write_end)
    ready, _, _ = select.select([read_end], [], [], 60.0)  # bounded: a hung child fails the test, not the suite
    printed = os.read(read_end, 100).decode() if ready else "no answer in 60 s"
    os.close(read_end)
    if not ready:
        os.kill(pid, 9)
    os.waitpid(pid, 0)
    assert printed == "42\n"


def test_programs_that_could_import_a_big_library_are_forked_from_the_full_zygote(jail):
    """Routing must never break a benign program: one that builds its import at run time goes to the zygote
    that preloaded sympy, and works; the lean and the full zygote print the same."""
    from arithmo.sandbox.worker import wants_lean

    hidden = "mod = getattr(__builtins__, '__imp' + 'ort__')('sym' + 'py')\nprint(mod.factorint(360))"
    plain = "import sympy\nprint(sympy.factorint(360))"
    lean = "print({2: 3, 3: 2, 5: 1})"
    assert not wants_lean(hidden) and not wants_lean(plain) and wants_lean(lean)
    results = jail.run([hidden, plain, lean], timeout_s=20.0)
    assert [r.stdout for r in results] == ["{2: 3, 3: 2, 5: 1}\n"] * 3, results
