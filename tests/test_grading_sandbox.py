"""The PoT sandbox: every limit shown holding, with the audit hook on and (where a kernel layer sits beneath
it) with the hook switched off, so each layer is tested on its own. `sandbox` is the default pool (the
bubblewrap jail where it runs, as in CI); `fallback` is the host-mode pool used where bubblewrap cannot run.
The attacks of issue 12, one test per kind, are in test_sandbox_jail.py.
"""

import os
import signal
import socket
import sys
import time

import pytest

psutil = pytest.importorskip("psutil", reason="psutil is needed to look for stray processes")

from arithmo.sandbox import jail as _jail  # noqa: E402
from arithmo.sandbox import ExecResult, Sandbox, run_program, run_programs  # noqa: E402


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(workers=1) as box:
        box.start()  # both zygotes now: "no new descendants" checks then count programs only
        yield box


@pytest.fixture(scope="module")
def layers(sandbox):
    return sandbox.layers()


@pytest.fixture(scope="module")
def fallback():
    """The fallback pool: the zygote on the host (in `unshare --net --pid` where allowed), no mount namespace."""
    with Sandbox(workers=1, jail=False) as box:
        yield box, box.layers()


@pytest.fixture
def bare(monkeypatch):
    """The weakest fallback: no namespaces at all (no bubblewrap and no unshare)."""
    jail = _jail.Jail("host", (), (sys.executable, "-I"), str(_jail.HERE / "child.py"),
                      "fallback: no namespaces (switched off by the test)",
                      {"network_namespace": False, "user_namespace": False, "mount_namespace": False})
    monkeypatch.setattr(_jail, "choose", lambda _asked=None: jail)
    with Sandbox(workers=1) as box:
        box.start()  # both zygotes (the lean one too), so the tests' "no new descendants" counts programs only
        layers = box.layers()
        assert layers["jail"] == "fallback: no namespaces (switched off by the test)" and not layers["pid_namespace"]
        yield box, layers


def run(sandbox, code: str, timeout_s: float = 3.0, **limits) -> ExecResult:
    return sandbox.run([code], timeout_s, **limits)[0]


def descendants() -> set[int]:
    return {child.pid for child in psutil.Process().children(recursive=True)}


def processes_of_uid(uid: int) -> list[int]:
    return [p.pid for p in psutil.process_iter(["uids"]) if p.info["uids"] and p.info["uids"].real == uid]


def test_normal_programs_print_the_right_answers(sandbox):
    programs = {
        "import math\nprint(math.comb(10, 3) + math.isqrt(50))": "127",
        "from fractions import Fraction\nprint(Fraction(1, 3) + Fraction(1, 6))": "1/2",
        "from sympy import *\nx = symbols('x')\nprint(solve(x**2 - 5*x + 6, x))": "[2, 3]",
        "import sympy\nx = sympy.Symbol('x')\nprint(sympy.integrate(x**2, (x, 0, 3)))": "9",
        "import numpy as np\nprint(int(np.arange(1, 101).sum()))": "5050",
        "print('π ≈', round(3.14159, 2))": "π ≈ 3.14",
        "def f(n):\n    return 1 if n < 2 else n * f(n - 1)\nif __name__ == '__main__':\n    print(f(10))": "3628800",
    }
    for code, expected in programs.items():
        result = run(sandbox, code)
        assert result == ExecResult(stdout=expected + "\n", error=None, timed_out=False), code
        assert result.to_record() == {"stdout": expected + "\n", "error": None, "timed_out": False}


def test_infinite_loop_times_out_and_its_process_group_is_gone(sandbox, layers):
    run(sandbox, "pass")  # the zygote is up: anything new after the run would be a leftover
    before = descendants()
    start = time.monotonic()
    result = run(sandbox, "import os\nprint(os.getuid(), flush=True)\nwhile True:\n    pass", timeout_s=1.0)
    elapsed = time.monotonic() - start
    assert result.timed_out and result.error == "timed out after 1 s"
    assert 1.0 <= elapsed < 2.5
    uid = int(result.stdout)
    assert descendants() == before
    if layers["uid_drop"]:
        assert uid != 0 and processes_of_uid(uid) == []


def test_sleeping_program_is_stopped_by_the_wall_clock(sandbox):
    result = run(sandbox, "import time\nprint('start', flush=True)\ntime.sleep(60)", timeout_s=0.5)
    assert result.timed_out and result.stdout == "start\n"


@pytest.mark.parametrize("code", ["blocks = []\nwhile True:\n    blocks.append(bytearray(50 * 2**20))",
                                  "import numpy as np\nprint(np.ones(10**9).sum())"])
def test_memory_bomb_is_stopped_with_an_error_naming_memory(sandbox, code):
    result = run(sandbox, code, memory_mb=256)
    assert not result.timed_out and result.error.startswith("memory limit (256 MiB): ")
    assert "MemoryError" in result.error or "Unable to allocate" in result.error


STORM = ("import os, time\nborn = 0\nfor _ in range(50):\n    try:\n        pid = os.fork()\n"
         "    except OSError as refused:\n        print('refused:', refused)\n        break\n"
         "    if pid == 0:\n        time.sleep(60)\n        os._exit(0)\n    born += 1\n"
         "print('born', born, os.getuid())")


@pytest.mark.parametrize("audit_hook", [True, False])
def test_fork_storm_is_contained_and_leaves_no_process(sandbox, layers, audit_hook):
    run(sandbox, "pass")
    before = descendants()
    result = run(sandbox, STORM, audit_hook=audit_hook)  # default max_processes=1: no child processes
    assert result.error is None, result
    lines = result.stdout.splitlines()
    born, uid = (int(v) for v in lines[-1].split()[1:])
    if audit_hook:
        assert lines[0] == "refused: sandbox refused os.fork (forking)" and born == 0
    elif layers["seccomp"].startswith("on"):  # the kernel refuses the clone itself
        assert lines[0] == "refused: [Errno 1] Operation not permitted" and born == 0
    assert descendants() == before
    assert processes_of_uid(uid) == []


def test_with_max_processes_the_uid_limit_caps_a_fork_storm(sandbox, layers):
    if not layers["uid_drop"]:
        pytest.skip("RLIMIT_NPROC is only enforced for a non-root uid")
    before = descendants()
    result = run(sandbox, STORM, max_processes=4, audit_hook=False)
    lines = result.stdout.splitlines()
    born, uid = (int(v) for v in lines[-1].split()[1:])
    # RLIMIT_NPROC = 4 tasks for the program's uid: itself and three children, then EAGAIN
    assert lines[0].startswith("refused: [Errno 11]") and born == 3
    assert descendants() == before and processes_of_uid(uid) == []


def test_threads_count_against_the_process_limit(sandbox, layers):
    if not layers["uid_drop"]:
        pytest.skip("RLIMIT_NPROC is only enforced for a non-root uid")
    code = ("import threading, time\nstarted = 0\nfor _ in range({n}):\n    try:\n"
            "        threading.Thread(target=time.sleep, args=(0.5,), daemon=True).start()\n"
            "    except RuntimeError:\n        break\n    started += 1\nprint(started)")
    assert run(sandbox, code.format(n=10), max_processes=3).stdout == "2\n"
    assert run(sandbox, code.format(n=10), max_threads=5).stdout == "5\n"  # max_processes=1: threads apart


def test_output_flood_is_capped_and_says_so(sandbox):
    result = run(sandbox, "while True:\n    print('9' * 1000)", max_output_bytes=10_000)
    assert result.error == "killed: output limit (10000 bytes on stdout)" and not result.timed_out
    assert result.stdout.endswith("\n[output truncated]")
    assert len(result.stdout) == 10_000 + len("\n[output truncated]")
    result = run(sandbox, "import sys\nprint('kept')\nwhile True:\n    sys.stderr.write('e' * 1000)",
                 max_output_bytes=10_000)
    assert result == ExecResult("kept\n", "killed: output limit (10000 bytes on stderr)", False)


@pytest.mark.parametrize("audit_hook", [True, False])
def test_host_files_cannot_be_written(sandbox, layers, tmp_path, audit_hook):
    target = tmp_path / "escaped.txt"
    result = run(sandbox, f"open({str(target)!r}, 'w').write('pwned')", audit_hook=audit_hook)
    if layers["mount_namespace"]:  # the host folder does not exist in the jail
        assert result.error == f"FileNotFoundError: [Errno 2] No such file or directory: {str(target)!r}"
    assert not target.exists() and result.error is not None


@pytest.mark.parametrize("audit_hook", [True, False])
def test_fallback_refuses_writes_outside_the_working_directory(fallback, tmp_path, audit_hook):
    box, layers = fallback
    if not audit_hook and not layers["uid_drop"]:
        pytest.skip("without the uid drop only the audit hook refuses writes")
    target = tmp_path / "escaped.txt"
    result = run(box, f"open({str(target)!r}, 'w').write('pwned')", audit_hook=audit_hook)
    expected = (f"PermissionError: sandbox refused writing {str(target)!r} outside the working directory" if audit_hook
                else f"PermissionError: [Errno 13] Permission denied: {str(target)!r}")
    assert result.error == expected
    assert not target.exists()


def test_fallback_links_and_renames_do_not_carry_writes_out(fallback, tmp_path):
    box, _ = fallback
    outside = tmp_path / "victim.txt"
    outside.write_text("original")
    via_symlink = f"import os\nos.symlink({str(outside)!r}, 'link')\nopen('link', 'w').write('pwned')"
    assert run(box, via_symlink).error == (
        "PermissionError: sandbox refused writing 'link' outside the working directory")
    via_hardlink = f"import os\nos.link({str(outside)!r}, 'hard')"
    assert run(box, via_hardlink).error.startswith("PermissionError: sandbox refused os.link on ")
    rename_out = f"open('x', 'w').write('x')\nimport os\nos.rename('x', {str(tmp_path / 'moved')!r})"
    assert run(box, rename_out).error.startswith("PermissionError: sandbox refused os.rename on ")
    assert outside.read_text() == "original" and not (tmp_path / "moved").exists()


def test_files_inside_the_working_directory_work_and_are_size_capped(sandbox):
    code = "with open('notes.txt', 'w') as f:\n    f.write('abc')\nprint(open('notes.txt').read())"
    assert run(sandbox, code).stdout == "abc\n"
    result = run(sandbox, "with open('big.bin', 'wb') as f:\n    f.write(bytes(5000))", max_file_bytes=4096)
    assert result.error == "OSError: [Errno 27] File too large"


def test_fallback_sweeps_world_writable_leftovers(fallback):
    box, layers = fallback
    if not layers["uid_drop"]:
        pytest.skip("the sweep finds leftovers by the program's uid")
    name = f"/tmp/arithmo-sandbox-test-{os.getpid()}"
    result = run(box, f"open({name!r}, 'w').write('x')\nprint('wrote')", audit_hook=False)
    assert result.stdout == "wrote\n" and not os.path.exists(name)


@pytest.mark.parametrize("audit_hook", [True, False])
def test_socket_to_a_local_listener_is_refused(sandbox, layers, audit_hook):
    if not audit_hook and not layers["network_namespace"]:
        pytest.skip(f"no network namespace on this machine ({layers['jail']})")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(0.2)
        port = listener.getsockname()[1]
        code = f"import socket\ns = socket.socket()\ns.settimeout(1)\nprint(s.connect_ex(('127.0.0.1', {port})))"
        result = run(sandbox, code, audit_hook=audit_hook)
        if audit_hook:
            assert result.error == "PermissionError: sandbox refused import socket (network access)"
        elif layers["seccomp"].startswith("on"):  # seccomp refuses socket() for every family (issue 24)
            assert result.error == "PermissionError: [Errno 1] Operation not permitted"
        else:  # a fresh network namespace has no interface up: ENETUNREACH
            assert result.error is None and int(result.stdout) != 0
        with pytest.raises(socket.timeout):
            listener.accept()


def test_subprocesses_and_shells_are_refused(sandbox):
    result = run(sandbox, "import subprocess\nsubprocess.run(['echo', 'hi'])")
    assert result.error == "PermissionError: sandbox refused subprocess.Popen (starting a subprocess)"
    assert result.stdout == ""
    result = run(sandbox, "import os\nprint(os.system('echo hi'))")
    assert result.error == "PermissionError: sandbox refused os.system (running a shell)"
    result = run(sandbox, "import ctypes\nctypes.CDLL(None).getpid()")
    assert result.error == "PermissionError: sandbox refused ctypes.dlopen (loading or calling native code)"


@pytest.mark.parametrize("audit_hook", [True, False])
def test_killing_the_parent_does_not_hurt_the_evaluator(sandbox, audit_hook):
    received = []
    previous = signal.signal(signal.SIGUSR1, lambda *_: received.append(True))
    try:
        code = ("import os, signal\n"
                f"for pid, sig in (({os.getpid()}, signal.SIGUSR1), (os.getppid(), 9), (1, 9)):\n"
                "    try:\n        os.kill(pid, sig)\n        print('sent')\n"
                "    except OSError as refused:\n        print(type(refused).__name__)")
        result = run(sandbox, code, audit_hook=audit_hook)
        time.sleep(0.05)
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert result.error is None and "sent" not in result.stdout
    assert received == []
    assert run(sandbox, "print(6 * 7)").stdout == "42\n"  # the zygote survived


def test_stdin_is_empty_env_is_minimal_and_the_working_directory_starts_empty(sandbox):
    code = ("import os, sys\nprint(repr(sys.stdin.read()))\nprint(sorted(os.environ))\n"
            "print(os.getcwd())\nprint(len(os.listdir('.')))\nopen('left.txt', 'w').write('x')")
    for _ in range(2):  # the second run must not see the first one's file
        lines = run(sandbox, code).stdout.splitlines()
        assert lines[0] == "''"
        assert lines[1] == str(sorted(["HOME", "LANG", "MKL_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                       "PATH", "TMPDIR"]))
        assert lines[3] == "0" and (lines[2].startswith("/box/") or not os.path.exists(lines[2]))


def test_syntax_errors_exceptions_and_exit_codes_are_reported(sandbox):
    assert run(sandbox, "print(1 +)").error == "SyntaxError: invalid syntax (line 1)"
    assert run(sandbox, "print('a')\n1 / 0").error == "ZeroDivisionError: division by zero"
    assert run(sandbox, "import sys\nsys.exit(3)").error == "exit code 3"
    assert run(sandbox, "import sys\nprint('ok')\nsys.exit(0)") == ExecResult("ok\n", None, False)
    assert run(sandbox, "import os\nos._exit(5)").error == "exit code 5"
    assert run(sandbox, "raise ValueError('two\\nlines')").error == "ValueError: two lines"  # one line always


def test_without_namespaces_the_uid_layers_still_contain_forks_and_kills(bare):
    box, layers = bare
    if not layers["uid_drop"]:
        pytest.skip("no namespaces and no uid drop (not root): only the audit hook is left")
    before = descendants()
    storm = ("import os, time\nborn = 0\nfor _ in range(50):\n    try:\n        pid = os.fork()\n"
             "    except OSError:\n        break\n    if pid == 0:\n        os.setsid()\n        time.sleep(60)\n"
             "        os._exit(0)\n    born += 1\nprint(born, os.getuid())")
    result = run(box, storm, max_processes=4, audit_hook=False)
    born, uid = (int(v) for v in result.stdout.split())
    assert result.error is None and born == 3  # children that left the process group are still found by uid
    assert processes_of_uid(uid) == [] and descendants() == before
    kill = f"import os\ntry:\n    os.kill({os.getpid()}, 9)\nexcept OSError as refused:\n    print(refused.errno)"
    assert run(box, kill, audit_hook=False).stdout == "1\n"  # EPERM: another uid, no CAP_KILL
    result = run(box, "while True:\n    pass", timeout_s=0.5)
    assert result.timed_out and descendants() == before


def test_a_zygote_killed_from_outside_is_replaced(sandbox):
    run(sandbox, "pass")
    for process in psutil.Process().children(recursive=False):
        if any(word in part for part in process.cmdline() for word in ("bwrap", "unshare", "child.py")):
            process.kill()  # bwrap --die-with-parent / unshare --kill-child take the zygote and its jail along
    time.sleep(0.1)
    assert run(sandbox, "print('back')").stdout == "back\n"


def test_run_programs_keeps_order_with_a_mix_of_good_and_bad():
    codes = ["print(1)", "while True:\n    pass", "print(2)", "1/0", "print('x' * 100)", "import os\nos.fork()",
             "print(3)"]
    # 3 s, not 1: on a loaded 2-core machine a 1 s limit can stop the output-limit program before its limit fires
    results = run_programs(codes, timeout_s=3.0, workers=2, max_output_bytes=50)
    assert [r.stdout for r in results] == ["1\n", "", "2\n", "", "x" * 50 + "\n[output truncated]", "", "3\n"]
    assert [r.timed_out for r in results] == [False, True, False, False, False, False, False]
    assert [r.error for r in results] == [None, "timed out after 3 s", None, "ZeroDivisionError: division by zero",
                                          "killed: output limit (50 bytes on stdout)",
                                          "PermissionError: sandbox refused os.fork (forking)", None]
    assert run_programs([]) == []


def test_run_program_reuses_one_zygote():
    assert run_program("print(sum(range(10)))") == ExecResult("45\n", None, False)
    assert run_program("print(max(3, 4))", timeout_s=2.0, memory_mb=128).stdout == "4\n"


def test_bad_arguments_name_what_was_expected():
    with pytest.raises(TypeError, match=r"codes\[1\] must be a str"):
        run_programs(["print(1)", 7])
    with pytest.raises(TypeError, match="unknown sandbox limit"):
        run_programs(["print(1)"], memory=5)
    with pytest.raises(ValueError, match="timeout_s must be a positive finite number"):
        run_program("print(1)", timeout_s=0)
    with pytest.raises(ValueError, match="memory_mb must be an int >= 16"):
        run_program("print(1)", memory_mb=1.5)
    with pytest.raises(ValueError, match="disk_mb must be an int >= 1"):
        run_program("print(1)", disk_mb=0)
    with pytest.raises(ValueError, match="workers must be a positive int"):
        Sandbox(workers=0)
    with pytest.raises(ValueError, match="workers must be a positive int or None, got 0"):
        run_programs(["print(1)"], workers=0)
