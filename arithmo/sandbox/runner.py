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


def exact_text(text) -> str:
    """An exact `str` copy of a str or str subclass, made without calling any of its methods: `str.join` of a
    one-element tuple copies the characters (a subclass's `__str__`, `encode`, `__len__`, `__getitem__` or
    `strip` are never consulted). Everything the runner measures or cuts goes through this first (issue 24: a
    str subclass whose `encode()` returned b"" passed the value's size check)."""
    return "".join((text,))


def _cut(line) -> str:
    """`line` as exact text, at most MAX_ERROR_CHARS characters (type-exact operations only)."""
    line = str.strip(exact_text(line))
    return line if len(line) <= MAX_ERROR_CHARS else line[:MAX_ERROR_CHARS - 3] + "..."


def _last_line() -> str:
    try:  # the exception's __str__ is the program's code: whatever it returns is cut here, type-exactly
        return _cut(traceback.format_exception_only(*sys.exc_info()[:2])[-1])
    except BaseException:  # noqa: BLE001 - a message that is not text, or a failure formatting it
        return "an exception whose message cannot be shown"


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
        code = stop.code
        if code is None or (type(code) in (int, bool) and code == 0):
            return _report(None)
        try:  # the code may be any object: only an exact int (or bool) is shown as an exit code
            error = f"exit code {code}" if type(code) in (int, bool) else f"SystemExit: {code}"
        except BaseException:  # noqa: BLE001 - a code whose str() fails (or is too long to print)
            error = "SystemExit: (its code cannot be shown)"
        return _report(error)
    except MemoryError:
        return _report(f"memory limit ({memory_mb} MiB): {_last_line()}")
    except SyntaxError as bad:
        line = bad.lineno if type(bad.lineno) is int else "?"  # a raised SyntaxError's lineno may be any object
        return _report(f"{_last_line()} (line {line})")
    except BaseException:  # noqa: BLE001 - any exception in untrusted code is its result, reported
        return _report(_last_line())
    if found is None:
        return _report(None)
    try:
        # type(), not isinstance(): an object can claim str as its __class__
        text = exact_text(found if issubclass(type(found), str) else str(found))
    except BaseException:  # noqa: BLE001 - e.g. int too large to print (ValueError, 4300-digit limit)
        return _report(f"{_last_line()} (turning the {value_from} value into text)")
    # Measured with type-exact operations on the exact copy: str.encode, never the value's own encode().
    if len(str.encode(text, "utf-8", "backslashreplace")) > max_value_bytes:  # as a printed flood: no answer
        return _report(f"the {value_from} value is longer than the output limit ({max_value_bytes} bytes)")
    return {"error": None, "value": text, "value_from": value_from}


def _report(error) -> dict:
    """A result without a value; `error` (None or text built from the program's objects) exact and cut."""
    return {"error": None if error is None else _cut(error), "value": None, "value_from": None}
