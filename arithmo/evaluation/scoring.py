"""Completions -> graded predictions for the three styles, and majority voting.

- `cot`: the completion is graded by `extract_answer` twice, strict (the `The answer is:` line or a
  `\\boxed{}`) and flexible (also a last-number fallback); `correct` is the strict one.
- `pot`: `extract_program` takes the program out of the completion, the sandbox pool runs it
  (`arithmo.sandbox.run_programs`, the only way model-written code runs) and its printed output
  is the answer. A completion without a program, a crash or a timeout has no answer and is wrong.
- `hybrid`: PoT first; when the program is missing, fails, times out or prints nothing usable, a CoT
  completion for the same question answers instead. This is MAmmoTH's hybrid decoding (Yue et al. 2023,
  "MAmmoTH", sec. 2.4: "if the program fails to execute or gives no output, fall back to CoT").
- `tir`: tool-integrated reasoning, `arithmo.evaluation.tir`: text and code blocks, each block run in the sandbox
  and its output appended before the model goes on; the answer is read as for CoT.
- maj@k: `pool_answers` groups equivalent answers; `majority_vote` is its first group.

These rules are the only copy: the app (`arithmo.app.session`) calls `read_cot`, `program_answer`,
`needs_cot_fallback`, `pool_answers` and `grade_answer` from here, so it scores a completion exactly as
`python -m arithmo.eval` does.

One prediction line per item per sample (docs/design.md "Records"), with these additions: `sample` (null for
the greedy completion, 0..k-1 for the sampled ones), `gold`, `grader_version`, `extracted_flexible`, `correct_flexible`,
and for hybrid `answer_source` ("pot" | "cot" | null) and `fallback` (the CoT prompt and completion, or null).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from arithmo.prompts import render_eval

STYLES = ("cot", "pot", "hybrid", "tir")

# A program that prints in a loop until its timeout can fill megabytes; the line keeps the start (the
# answer is read from the full output before this cut).
MAX_STORED_STDOUT = 4096

# `complete(prompts, num_samples, sampled)` -> num_samples completions per prompt (greedy when not sampled).
Complete = Callable[[list[str], int, bool], list[list[str]]]
# `run(programs)` -> one ExecResult per program, in order (arithmo.sandbox).
RunPrograms = Callable[[list[str]], list[Any]]


def _grading():
    # arithmo.grading imports sympy (~1 s); loaded when grading starts, not when arithmo.eval is imported.
    import arithmo.grading as grading

    return grading


def grade_answer(extracted: str | None, gold: str, grade_timeout_s: float = 2.0, compare: dict | None = None) -> bool:
    """Whether an extracted answer matches the gold answer (a missing answer is wrong). `compare`: the item's
    benchmark convention (`meta["compare"]`, arithmo.benchmarks.within_tolerance: Math401's 1e-3), also accepted."""
    if extracted is None:
        return False
    if _grading().is_equivalent(extracted, gold, grade_timeout_s=grade_timeout_s):
        return True
    if compare:
        from arithmo.benchmarks import within_tolerance

        return within_tolerance(extracted, gold, compare, grade_timeout_s)
    return False


def read_cot(completion: str, gold: str | None = None, prompt: str = "") -> tuple[str | None, str | None]:
    """(strict, flexible) answers of a chain-of-thought completion: strict is the `The answer is:` line or a
    `\\boxed{}` (what is graded); flexible also takes the last number (reported beside it). With the `gold`,
    several `\\boxed{}` answers together answer a gold that lists several (arithmo.grading.extract_answer).
    With the generation `prompt`, a completion after a prompt that opened the think block (R1-distill) is read as
    starting inside it (`arithmo.thinking.with_opened_think`): an answer inside unfinished reasoning is none."""
    from arithmo.thinking import with_opened_think

    completion = with_opened_think(prompt, completion)
    grading = _grading()
    return (grading.extract_answer(completion, mode="strict", gold=gold),
            grading.extract_answer(completion, mode="flexible", gold=gold))


def program_answer(result: Any) -> str | None:
    """The answer a program gave: read from its output when it ran to the end, None after an error or timeout."""
    if result.error is not None or result.timed_out:
        return None
    return _grading().answer_from_output(result.stdout)


def needs_cot_fallback(pot_answer: str | None) -> bool:
    """Hybrid decoding: the chain-of-thought completion answers when the program gave no answer (MAmmoTH)."""
    return pot_answer is None


def base_line(item: dict, style: str, sample: int | None, prompt: str, completion: str) -> dict[str, Any]:
    # grader_version per line: a resume re-grades exactly the lines an older grader scored (see regrade).
    line = {"id": item["id"], "benchmark": item["benchmark"], "style": style, "sample": sample, "prompt": prompt,
            "completion": completion, "program": None, "exec": None, "extracted": None, "correct": False,
            "extracted_flexible": None, "correct_flexible": False, "gold": item["answer"],
            "grader_version": _grading().GRADER_VERSION}
    compare = (item.get("meta") or {}).get("compare") or item.get("compare")
    if compare:  # the benchmark's comparison option travels with the line (a regrade reads it back)
        line["compare"] = compare
    return line


def grade_cot_line(line: dict[str, Any], completion: str, gold: str, grade_timeout_s: float,
                   prompt: str = "", compare: dict | None = None) -> None:
    """Fill the strict and flexible answers of a CoT completion into `line` (read after `prompt`: `read_cot`);
    `compare` (default: the line's own) is the item's comparison option (grade_answer)."""
    compare = compare if compare is not None else line.get("compare")
    strict, flexible = read_cot(completion, gold, prompt)
    line["extracted"] = strict
    line["correct"] = grade_answer(strict, gold, grade_timeout_s, compare)
    line["extracted_flexible"] = flexible
    line["correct_flexible"] = (line["correct"] if flexible == strict
                                else grade_answer(flexible, gold, grade_timeout_s, compare))


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
        answer = program_answer(result)
        if answer is not None:
            line["extracted"] = line["extracted_flexible"] = answer
            line["correct"] = line["correct_flexible"] = grade_answer(answer, line["gold"], grade_timeout_s,
                                                                      line.get("compare"))


def predict_text(items: list[dict], style: str, complete: Complete, samples: list[int | None], *, tokenizer: Any,
                 template: str, pot_hint: str, run: RunPrograms | None, grade_timeout_s: float) -> list[dict[str, Any]]:
    """Graded prediction lines of the one-pass styles (cot, pot, hybrid), one per item per entry of `samples`
    ([None] = the greedy completion, [0..k-1] = k sampled ones), grouped by item. TIR has its own loop
    (`arithmo.evaluation.tir`); `arithmo.evaluation.predict.predict` dispatches between them."""
    if style not in STYLES or style == "tir":
        raise ValueError(f"style: expected one of cot, pot, hybrid here, got {style!r}")
    sampled = samples != [None]
    first = "cot" if style == "cot" else "pot"
    prompts = [render_eval(item["question"], first, tokenizer, template, hint=pot_hint) for item in items]
    completions = complete(prompts, len(samples), sampled)
    lines, line_items = [], []
    for item, prompt, texts in zip(items, prompts, completions):
        for sample, completion in zip(samples, texts):
            lines.append(base_line(item, style, sample, prompt, completion))
            line_items.append(item)
    if style == "cot":
        for line, item in zip(lines, line_items):
            grade_cot_line(line, line["completion"], item["answer"], grade_timeout_s, line["prompt"])
        return lines
    if run is None:
        raise ValueError(f"style={style} runs programs: pass `run` (a sandbox runner)")
    grade_programs(lines, run=run, grade_timeout_s=grade_timeout_s)
    if style == "pot":
        return lines
    for line in lines:
        line["answer_source"] = "pot" if line["extracted"] is not None else None
        line["fallback"] = None
    failed = [(line, item) for line, item in zip(lines, line_items) if needs_cot_fallback(line["extracted"])]
    if failed:
        cot_prompts = [render_eval(item["question"], "cot", tokenizer, template) for _, item in failed]
        cot_completions = complete(cot_prompts, 1, sampled)
        for (line, item), prompt, texts in zip(failed, cot_prompts, cot_completions):
            graded: dict[str, Any] = {}
            grade_cot_line(graded, texts[0], item["answer"], grade_timeout_s, prompt, line.get("compare"))
            line.update(graded)
            line["fallback"] = {"prompt": prompt, "completion": texts[0]}
            line["answer_source"] = "cot" if graded["extracted"] is not None else None
    return lines


def pool_answers(answers: list[str | None], *, grade_timeout_s: float = 2.0) -> list[tuple[str, list[int]]]:
    """[(answer, the 1-based numbers of the samples that gave it)], most votes first, ties to the earliest group.

    Equivalent answers ("0.5", "1/2") are pooled: an answer joins a group when its normalized text equals the
    group's (cheap), else when arithmo.grading finds it equivalent to the group's first answer. Missing
    answers (None) do not vote.
    """
    grading = _grading()
    groups: list[tuple[str, str, list[int]]] = []  # (first answer, its normalized text, sample numbers)
    for number, answer in enumerate(answers, 1):
        if answer is None:
            continue
        key = grading.normalize_answer(answer)
        for first, first_key, numbers in groups:
            if key == first_key or grading.is_equivalent(answer, first, grade_timeout_s=grade_timeout_s):
                numbers.append(number)
                break
        else:
            groups.append((answer, key, [number]))
    ranked = sorted(range(len(groups)), key=lambda index: (-len(groups[index][2]), index))
    return [(groups[index][0], groups[index][2]) for index in ranked]


def majority_vote(answers: list[str | None], *, grade_timeout_s: float = 2.0) -> str | None:
    """The most common answer (`pool_answers`' first group), or None when no sample gave one."""
    pooled = pool_answers(answers, grade_timeout_s=grade_timeout_s)
    return pooled[0][0] if pooled else None


def regrade(lines: list[dict[str, Any]], golds: dict[str, str], style: str, *, run: RunPrograms | None,
            grade_timeout_s: float) -> tuple[list[dict[str, Any]], set[str]]:
    """Grade saved prediction lines again with the current grader (no generation): (regraded lines, ids of
    items that need generating again).

    CoT lines are re-read from their completion; PoT and hybrid programs are extracted and run again in the
    sandbox (a stored stdout is cut at MAX_STORED_STDOUT, so it is not re-read). A hybrid line whose program
    no longer gives an answer is graded on its saved chain-of-thought fallback; when it has none (the program
    answered before), the item must be generated again, and its id is returned.
    """
    if style not in STYLES:
        raise ValueError(f"style: expected one of {', '.join(STYLES)}, got {style!r}")
    fresh = []
    for line in lines:
        new = base_line({"id": line["id"], "benchmark": line["benchmark"], "answer": golds[line["id"]],
                         "compare": line.get("compare")}, style, line.get("sample"), line["prompt"], line["completion"])
        for key in ("answer_source", "fallback", "tokens", "finish", "truncated", "new_tokens", "stopped"):
            if key in line:  # how the completion ended does not change with the grader
                new[key] = line[key]
        fresh.append(new)
    if style == "cot":
        for line in fresh:
            grade_cot_line(line, line["completion"], line["gold"], grade_timeout_s, line["prompt"])
        return fresh, set()
    if run is None:
        raise ValueError(f"style={style} runs programs: pass `run` (a sandbox runner)")
    grade_programs(fresh, run=run, grade_timeout_s=grade_timeout_s)
    redo: set[str] = set()
    if style == "hybrid":
        for line in fresh:
            if not needs_cot_fallback(line["extracted"]):
                line["answer_source"] = "pot"
            elif line.get("fallback"):
                graded: dict[str, Any] = {}
                grade_cot_line(graded, line["fallback"]["completion"], line["gold"], grade_timeout_s,
                               line["fallback"].get("prompt") or "", line.get("compare"))
                line.update(graded)
                line["answer_source"] = "cot" if graded["extracted"] is not None else None
            else:
                line["answer_source"] = None
                redo.add(line["id"])
    return fresh, redo
