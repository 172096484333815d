"""The program sandbox: the only way model-written Python runs in arithmo (PoT, TIR, data verification, the app).

Public face (everything else in this package is its machinery):

    Sandbox(workers=2)            a pool of warm jailed workers; .run(codes, timeout_s, **limits)
    run_program(code) / run_programs(codes)   one shared pool; ExecResult per program, in input order
    ExecResult                    stdout, error (one line or None), timed_out, value
    SandboxError                  no sandbox can start here (or a bad limit)
    sandbox_layers()              which containment layers run on this machine (for run records)

Rooms: pool.py (Sandbox, the shared pool), worker.py (one worker process and its wire protocol), jail.py
(choosing bubblewrap or the unshare fallback), child.py (the zygote inside the jail that forks one process
per program) with child_setup.py, fs.py, seccomp.py, guard.py and runner.py, which the zygote loads by path.
docs/sandbox.md lists each layer and the test that shows it.
"""

from arithmo.sandbox.pool import Sandbox, run_program, run_programs, sandbox_layers
from arithmo.sandbox.worker import ExecResult, SandboxError

__all__ = ["ExecResult", "Sandbox", "SandboxError", "run_program", "run_programs", "sandbox_layers"]
