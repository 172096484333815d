"""The program sandbox: the only way model-written Python runs in arithmo (PoT, TIR, data verification, the app).

Public face (everything else in this package is its machinery):

    Sandbox(workers=2)            a pool of warm jailed workers; .run(codes, timeout_s, **limits)
    run_program(code) / run_programs(codes)   one shared pool; ExecResult per program, in input order
    ExecResult                    stdout, error (one line or None), timed_out, value_from; every string valid
                                  UTF-8 (lone surrogates from a program become U+FFFD)
    SandboxError                  no sandbox can start here (or a closed session is used)
    sandbox_layers()              which containment layers run on this machine (for run records)
    Sandbox.session(...) -> Session   one jailed interpreter per solution, for tool-integrated reasoning

Sessions (stable API, issue 24; `session.py`):

    with Sandbox(workers=2) as box:
        with box.session(timeout_s=5.0, cpu_s=60, memory_mb=512, max_output_bytes=65536) as s:
            r = s.run(code)                                 # -> ExecResult, like one program
            r = s.run(code, timeout_s=2.0, max_output_bytes=4096)   # this block's own limits
            s.alive                                         # False once a block ended it, or after close()
            s.ended                                         # None, or why it ended (one line)

- State persists across `run` calls: variables, imports, functions, files in its folder, and random
  generators (seeded freshly once, when the session starts). The answer rules of a program (last bare
  expression, an uncalled solution() defined in that block) apply to each block.
- Each block has its own wall clock (`timeout_s`) and output cap (`max_output_bytes`), per call or the
  session's defaults. `cpu_s` bounds the CPU seconds of the session's whole life; between blocks its process
  is stopped (SIGSTOP), so nothing it left running uses CPU while the model writes.
- A timeout, output over the cap, a crash (a signal, os._exit, the CPU limit) ends that session only: that
  block's ExecResult error says why and ends with "; the session ended (its variables are gone)"
  (timed_out=True for a timeout); later `run` calls return an ExecResult whose error says it had ended. An
  exception inside a block (ZeroDivisionError, SystemExit, a refused import) is only that block's error.
- No session sees another's state: each is its own process with its own uid, its own tmpfs (its own mount
  namespace) in the jail, every layer of a program on (seccomp, rlimits, audit hook), max_processes=1.
- `close()` (or leaving the `with`) kills its process and frees its memory and files; `Sandbox.close()` closes
  every session still open. One thread at a time per Session; different sessions may run in different threads.
- Raises: ValueError/TypeError for bad limits or arguments, SandboxError if the session cannot start or is
  used after close().

Rooms: pool.py (Sandbox, the shared pool), session.py (Session and its host zygote), worker.py (one worker
process and its wire protocol), jail.py (choosing bubblewrap or the unshare fallback), child.py (the zygote
inside the jail that forks one process per program or session) with child_setup.py, fs.py, seccomp.py,
guard.py and runner.py, which the zygote loads by path. docs/sandbox.md lists each layer and the test that
shows it.
"""

from arithmo.sandbox.pool import Sandbox, run_program, run_programs, sandbox_layers
from arithmo.sandbox.session import Session
from arithmo.sandbox.worker import ExecResult, SandboxError

__all__ = ["ExecResult", "Sandbox", "SandboxError", "Session", "run_program", "run_programs", "sandbox_layers"]
