"""Completions -> graded predictions for the three styles, and majority voting.

- `cot`: the completion is graded by `extract_answer` twice, strict (the `The answer is:` line or a
  `\\boxed{}`) and flexible (also a last-number fallback); `correct` is the strict one.
- `pot`: `extract_program` takes the program out of the completion, the sandbox pool runs it
  (`arithmo.grading.execute.run_programs`, the only way model-written code runs) and its printed output
  is the answer. A completion without a program, a crash or a timeout has no answer and is wrong.
- `hybrid`: PoT first; when the program is missing, fails, times out or prints nothing usable, a CoT
  completion for the same question answers instead. This is MAmmoTH's hybrid decoding (Yue et al. 2023,
  "MAmmoTH", sec. 2.4: "if the program fails to execute or gives no output, fall back to CoT").

One prediction line per item per sample (DESIGN.md "Prediction"), with these additions: `sample` (null for
the greedy completion, 0..k-1 for the sampled ones), `gold`, `extracted_flexible`, `correct_flexible`,
and for hybrid `answer_source` ("pot" | "cot" | null) and `fallback` (the CoT prompt and completion, or null).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from arithmo.prompts import render_eval

STYLES = ("cot", "pot", "hybrid")

# A program that prints in a loop until its timeout can fill megabytes; the line keeps the start (the
# answer is read from the full output before this cut).
MAX_STORED_STDOUT = 4096

# `complete(prompts, num_samples, sampled)` -> num_samples completions per prompt (greedy when not sampled).
Complete = Callable[[list[str], int, bool], list[list[str]]]
# `run(programs)` -> one ExecResult per program, in order (arithmo.grading.execute's sandbox).
RunPrograms = Callable[[list[str]], list[Any]]


def _grading():
    # arithmo.grading imports sympy (~1 s); loaded when grading starts, not when arithmo.eval is imported.
    import arithmo.grading as grading

    return grading


def grade_answer(extracted: str | None, gold: str, timeout_s: float) -> bool:
    """Whether an extracted answer matches the gold answer (a missing answer is wrong)."""
    return extracted is not None and bool(_grading().is_equivalent(extracted, gold, timeout_s=timeout_s))


def _base(item: dict, style: str, sample: int | None, prompt: str, completion: str) -> dict[str, Any]:
    return {"id": item["id"], "benchmark": item["benchmark"], "style": style, "sample": sample, "prompt": prompt,
            "completion": completion, "program": None, "exec": None, "extracted": None, "correct": False,
            "extracted_flexible": None, "correct_flexible": False, "gold": item["answer"]}


def grade_cot_line(line: dict[str, Any], completion: str, gold: str, grade_timeout_s: float) -> None:
    """Fill the strict and flexible answers of a CoT completion into `line`."""
    grading = _grading()
    strict = grading.extract_answer(completion, mode="strict")
    flexible = grading.extract_answer(completion, mode="flexible")
    line["extracted"] = strict
    line["correct"] = grade_answer(strict, gold, grade_timeout_s)
    line["extracted_flexible"] = flexible
    line["correct_flexible"] = (line["correct"] if flexible == strict
                                else grade_answer(flexible, gold, grade_timeout_s))


def _exec_record(result: Any) -> dict[str, Any]:
    record = dict(result.to_record())
    stdout = record.get("stdout") or ""
    if len(stdout) > MAX_STORED_STDOUT:
        record["stdout"] = stdout[:MAX_STORED_STDOUT] + f"\n[... {len(stdout) - MAX_STORED_STDOUT} more characters]"
    return record


def grade_programs(lines: list[dict[str, Any]], *, run: RunPrograms, grade_timeout_s: float) -> None:
    """Extract, run (all at once, through `run`: the sandbox pool) and grade the programs of PoT `lines`."""
    grading = _grading()
    for line in lines:
        line["program"] = grading.extract_program(line["completion"])
    runnable = [line for line in lines if line["program"] is not None]
    results = run([line["program"] for line in runnable]) if runnable else []
    if len(results) != len(runnable):
        raise RuntimeError(f"the sandbox returned {len(results)} results for {len(runnable)} programs")
    for line, result in zip(runnable, results):
        line["exec"] = _exec_record(result)
        if result.error is None and not result.timed_out:
            answer = grading.answer_from_output(result.stdout)
            line["extracted"] = line["extracted_flexible"] = answer
            line["correct"] = line["correct_flexible"] = grade_answer(answer, line["gold"], grade_timeout_s)


def predict(items: list[dict], style: str, complete: Complete, samples: list[int | None], *, tokenizer: Any,
            template: str, pot_hint: str, run: RunPrograms | None, grade_timeout_s: float) -> list[dict[str, Any]]:
    """Graded prediction lines, one per item per entry of `samples` ([None] = the greedy completion,
    [0..k-1] = k sampled ones), grouped by item."""
    if style not in STYLES:
        raise ValueError(f"style: expected one of {', '.join(STYLES)}, got {style!r}")
    sampled = samples != [None]
    first = "cot" if style == "cot" else "pot"
    prompts = [render_eval(item["question"], first, tokenizer, template, hint=pot_hint) for item in items]
    completions = complete(prompts, len(samples), sampled)
    lines, line_items = [], []
    for item, prompt, texts in zip(items, prompts, completions):
        for sample, completion in zip(samples, texts):
            lines.append(_base(item, style, sample, prompt, completion))
            line_items.append(item)
    if style == "cot":
        for line, item in zip(lines, line_items):
            grade_cot_line(line, line["completion"], item["answer"], grade_timeout_s)
        return lines
    if run is None:
        raise ValueError(f"style={style} runs programs: pass `run` (a sandbox runner)")
    grade_programs(lines, run=run, grade_timeout_s=grade_timeout_s)
    if style == "pot":
        return lines
    for line in lines:
        line["answer_source"] = "pot" if line["extracted"] is not None else None
        line["fallback"] = None
    failed = [(line, item) for line, item in zip(lines, line_items) if line["extracted"] is None]
    if failed:
        cot_prompts = [render_eval(item["question"], "cot", tokenizer, template) for _, item in failed]
        cot_completions = complete(cot_prompts, 1, sampled)
        for (line, item), prompt, texts in zip(failed, cot_prompts, cot_completions):
            graded: dict[str, Any] = {}
            grade_cot_line(graded, texts[0], item["answer"], grade_timeout_s)
            line.update(graded)
            line["fallback"] = {"prompt": prompt, "completion": texts[0]}
            line["answer_source"] = "cot" if graded["extracted"] is not None else None
    return lines


def majority_vote(answers: list[str | None], *, timeout_s: float = 2.0) -> str | None:
    """The most common answer, with equivalent answers ("0.5", "1/2") pooled; ties go to the earliest.

    Missing answers do not vote; with none left the vote has no answer. An answer joins a group when its
    normalized text equals the group's (cheap), else when arithmo.grading finds it equivalent to the
    group's first answer.
    """
    grading = _grading()
    groups: list[list[Any]] = []  # [first answer, its normalized text, votes]
    for answer in answers:
        if answer is None:
            continue
        key = grading.normalize_answer(answer)
        for group in groups:
            if key == group[1] or grading.is_equivalent(answer, group[0], timeout_s=timeout_s):
                group[2] += 1
                break
        else:
            groups.append([answer, key, 1])
    if not groups:
        return None
    best = max(range(len(groups)), key=lambda index: (groups[index][2], -index))
    return groups[best][0]
