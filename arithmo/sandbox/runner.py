"""Run one program inside its sandboxed process, and find its answer when it printed nothing (stdlib only).

Loaded by path by the zygote (`child.py`) and called in the forked child, after every limit is in
place: everything here, including the answer rules below, runs inside the sandbox, never in the evaluator.

Answer rules for programs that print nothing (applied in order; the parent uses the value only when the
program's stdout is empty):

1. The last top-level statement is a bare expression (`a + b`): that expression's value. Qwen2.5-Math's
   executor (QwenLM/Qwen2.5-Math, evaluation/python_executor.py, `auto_mode`) executes all but the last line
   and evaluates the last one when it does not print; it is also the interactive interpreter's convention.
2. A top-level `def solution()` with no required parameter: the value `solution()` returns (called again if
   the program already called it). PAL (Gao et al. 2023) programs end with `def solution(): ... return
   result`, and its runner evaluates `solution()` (reasoning-machines/pal, pal/core/interface.py, `get_answer_expr`).

A value of None gives no answer (`print(x)` as the last line returns None). The value becomes text with
`str()`, as both executors do (numpy 2's `np.float64(18.0)` becomes `18.0`, sympy's list `[2, 3]`).
"""

import ast
import builtins
import inspect
import io
import sys
import traceback

SOLUTION_NAME = "solution"
# An error line longer than this is cut here, in the child: the parent keeps 500 characters of it anyway, and
# the status channel's cap (worker.status_cap) counts on a bounded error.
MAX_ERROR_CHARS = 2000


class CountingFileIO(io.FileIO):
    """The program's stdout: counts the bytes written, so "printed nothing" is known inside the child."""

    written = 0

    def write(self, data) -> int:
        count = super().write(data)
        CountingFileIO.written += count or 0
        return count


def _last_line() -> str:
    line = traceback.format_exception_only(*sys.exc_info()[:2])[-1].strip()
    return line if len(line) <= MAX_ERROR_CHARS else line[:MAX_ERROR_CHARS - 3] + "..."


def _takes_no_arguments(function) -> bool:
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return False
    return all(p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
               for p in signature.parameters.values())


def run(code: str, memory_mb: int, max_value_bytes: int, namespace: dict | None = None,
        filename: str = "<program>") -> dict:
    """Execute `code` as __main__. Returns {"error": one line or None, "value": str or None, "value_from": ...}.

    "value" is the program's answer by the rules above when it printed nothing; "value_from" names the rule
    ("last expression" or "solution()"). `namespace`: the globals to run in (a session passes the same dict
    for every block, so variables persist; default: a fresh one). `filename`: the code's name in tracebacks;
    the solution() rule takes only a function defined by this code (a session's earlier block is not called).
    """
    if namespace is None:
        namespace = {"__name__": "__main__", "__builtins__": builtins}
    found, value_from = None, None
    try:
        tree = ast.parse(code, filename)
        last = tree.body[-1] if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        if last is None:
            exec(compile(tree, filename, "exec"), namespace)
        else:
            head = ast.Module(body=tree.body[:-1], type_ignores=[])
            exec(compile(head, filename, "exec"), namespace)
            found = eval(compile(ast.Expression(last.value), filename, "eval"), namespace)
            value_from = "last expression"
        sys.stdout.flush()
        function = namespace.get(SOLUTION_NAME)
        if (found is None and CountingFileIO.written == 0 and inspect.isfunction(function)
                and function.__code__.co_filename == filename and _takes_no_arguments(function)):
            found, value_from = function(), f"{SOLUTION_NAME}()"
    except SystemExit as stop:
        if stop.code is None or stop.code == 0:
            return {"error": None, "value": None, "value_from": None}
        try:
            error = f"exit code {stop.code}" if isinstance(stop.code, int) else f"SystemExit: {stop.code}"
        except BaseException:  # noqa: BLE001 - a code whose str() fails (or is too long to print)
            error = "SystemExit: (its code cannot be shown)"
        error = error[:MAX_ERROR_CHARS]
        return {"error": error, "value": None, "value_from": None}
    except MemoryError:
        return {"error": f"memory limit ({memory_mb} MiB): {_last_line()}", "value": None, "value_from": None}
    except SyntaxError as bad:
        return {"error": f"{_last_line()} (line {bad.lineno})", "value": None, "value_from": None}
    except BaseException:  # noqa: BLE001 - any exception in untrusted code is its result, reported
        return {"error": _last_line(), "value": None, "value_from": None}
    if found is None:
        return {"error": None, "value": None, "value_from": None}
    try:
        text = found if isinstance(found, str) else str(found)
    except BaseException:  # noqa: BLE001 - e.g. int too large to print (ValueError, 4300-digit limit)
        return {"error": f"{_last_line()} (turning the {value_from} value into text)", "value": None,
                "value_from": None}
    if len(text.encode("utf-8", errors="backslashreplace")) > max_value_bytes:  # as a printed flood: no answer
        return {"error": f"the {value_from} value is longer than the output limit ({max_value_bytes} bytes)",
                "value": None, "value_from": None}
    return {"error": None, "value": text, "value_from": value_from}
