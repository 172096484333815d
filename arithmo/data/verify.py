"""Build-time checks that run a row's code in the sandbox (never in this process).

- PoT (`verify_pot`): the program's answer, read by evaluation's rule (`arithmo.evaluation.scoring.program_answer`),
  must exist and equal the row's stated answer.
- TIR (`verify_tir`): a tool-integrated solution records each code block's output in an ```output block; every
  block is run again (after the solution's earlier blocks, as `style=tir` evaluation runs them,
  `arithmo.evaluation.tir.program_for`) and what it shows now must match what the row recorded: the same text
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


def verify_tir(examples: list[dict], *, timeout_s: float, workers: int | None, drop: Any,
               counts: Counter) -> list[dict]:
    """The TIR examples whose every recorded output the code reproduces; `drop(example, reason)` is called for
    the others. Blocks run round by round: round i runs every row's i-th block (with its earlier blocks)."""
    from arithmo.evaluation.tir import program_for, shown_output
    from arithmo.sandbox import run_programs

    tir = [e for e in examples if e["style"] == "tir"]
    blocks = {e["id"]: tir_blocks(e["solution"]) for e in tir}
    bad: dict[str, str] = {e["id"]: "tir_no_code" for e in tir if not blocks[e["id"]]}
    done: dict[str, list[str]] = {e["id"]: [] for e in tir}
    for round_index in range(max((len(b) for b in blocks.values()), default=0)):
        todo = [e for e in tir if e["id"] not in bad and round_index < len(blocks[e["id"]])]
        if not todo:
            break
        programs = [program_for(done[e["id"]], blocks[e["id"]][round_index][0]) for e in todo]
        for example, result in zip(todo, run_programs(programs, timeout_s=timeout_s, workers=workers)):
            code, recorded = blocks[example["id"]][round_index]
            if result.timed_out:
                bad[example["id"]] = "tir_timeout"
            elif not _same_output(recorded, shown_output(result)):
                bad[example["id"]] = "tir_output_mismatch"
            elif result.error is None:
                done[example["id"]].append(code)
            counts["tir_blocks_run"] += 1
    kept = []
    for example in examples:
        if example["id"] in bad:
            drop(example, bad[example["id"]])
        else:
            counts["tir_verified"] += example["style"] == "tir"
            kept.append(example)
    return kept
