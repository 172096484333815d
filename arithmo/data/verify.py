"""Build-time checks that run a row's code in the sandbox (never in this process).

- PoT (`verify_pot`): the program's answer, read by evaluation's rule (`arithmo.evaluation.scoring.program_answer`),
  must exist and equal the row's stated answer.
- TIR (`verify_tir`): a tool-integrated solution records each code block's output in an ```output block; every
  block is run again, in order, in one sandbox session per solution (as `style=tir` evaluation runs them: state
  persists from block to block, `arithmo.evaluation.tir`) and what it shows now must match what the row recorded: the same text
  after whitespace is collapsed, or, for a one-line value, an equal answer by arithmo's grader (float noise,
  `1/3` vs `0.333...`). A row whose recorded outputs the code does not reproduce teaches the model to expect
  outputs that will not come: it is dropped and counted (`tir_output_mismatch`, `tir_timeout`, `tir_no_code`).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

_CODE_THEN_OUTPUT = re.compile(r"```python\n(.*?)```\s*```output\n(.*?)```", re.DOTALL)


def tir_blocks(solution: str) -> list[tuple[str, str]]:
    """(code, recorded output) of every code block that the solution shows an output for, in order."""
    return [(code, output) for code, output in _CODE_THEN_OUTPUT.findall(solution)]


def _same_output(recorded: str, shown: str) -> bool:
    if " ".join(recorded.split()) == " ".join(shown.split()):
        return True
    recorded_lines, shown_lines = recorded.strip().splitlines(), shown.strip().splitlines()
    if len(recorded_lines) == len(shown_lines) == 1:
        from arithmo.evaluation.scoring import grade_answer

        return grade_answer(shown_lines[0].strip(), recorded_lines[0].strip())
    return False


def _replay(box: Any, blocks: list[tuple[str, str]], timeout_s: float) -> tuple[str | None, int]:
    """(why the solution fails, or None; blocks run), running its blocks in one session of `box`."""
    from arithmo.evaluation.tir import shown_output

    ran = 0
    with box.session(timeout_s=timeout_s) as session:
        for code, recorded in blocks:
            if not session.alive:  # an earlier block crashed the interpreter: later blocks lost their state
                return "tir_output_mismatch", ran
            result = session.run(code)
            ran += 1
            if result.timed_out:
                return "tir_timeout", ran
            if not _same_output(recorded, shown_output(result)):
                return "tir_output_mismatch", ran
    return None, ran


def verify_tir(examples: list[dict], *, timeout_s: float, workers: int | None, drop: Any,
               counts: Counter) -> list[dict]:
    """The TIR examples whose every recorded output the code reproduces; `drop(example, reason)` is called for
    the others. Each solution's blocks run in order in its own sandbox session; solutions run `workers` at a
    time."""
    from concurrent.futures import ThreadPoolExecutor

    from arithmo.sandbox import Sandbox

    tir = [e for e in examples if e["style"] == "tir"]
    # a long-CoT TIR row (OpenMathReasoning) runs its code inside the reasoning: the trace, then the answer
    blocks = {e["id"]: tir_blocks(e.get("reasoning", "") + "\n" + e["solution"]) for e in tir}
    bad: dict[str, str] = {e["id"]: "tir_no_code" for e in tir if not blocks[e["id"]]}
    todo = [e for e in tir if e["id"] not in bad]
    if todo:
        with Sandbox(workers=1) as box, ThreadPoolExecutor(max_workers=workers or 2) as pool:
            for example, (why, ran) in zip(todo, pool.map(lambda e: _replay(box, blocks[e["id"]], timeout_s), todo)):
                counts["tir_blocks_run"] += ran
                if why is not None:
                    bad[example["id"]] = why
    kept = []
    for example in examples:
        if example["id"] in bad:
            drop(example, bad[example["id"]])
        else:
            counts["tir_verified"] += example["style"] == "tir"
            kept.append(example)
    return kept
