"""Rejection sampling: draw solutions per (question, style), grade them, keep the correct distinct ones.

    rounds = sample_tasks(tasks, complete=..., grade=..., k=4, store=out / "samples.jsonl")
    records, accounts = select_solutions(tasks, rounds)

Two stopping rules (`stop_reason`):
- fixed (min_correct=None): one round of k samples per task, as in Yuan et al. 2023, Algorithm 1 (RFT).
- difficulty-aware (min_correct=m, max_trials=t): rounds of k samples until the task has m correct samples or
  t samples in all, so hard questions get more trials instead of fewer kept solutions: DART-Math's "Uniform"
  strategy (Tong et al. 2024, sec. 3: sample each query until it has k_u correct responses, or a trial cap).
  Correct samples are counted before de-duplication, as DART counts correct responses.

Every round of every task is appended to `samples.jsonl` as soon as it is graded (one line: id, style, round,
samples with completion, verdict, answer, program, exec), so an interrupted run resumes from the rounds it has:
`read_rounds` keeps them, and only the rounds still due are sampled. Selection is recomputed from that file
every time, so a finished run rewrites the same data folder.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arithmo.io import DataError, read_saved_lines
from arithmo.prompts import stable_rng
from arithmo.rewards import REWARDS, Verdict
from arithmo.rft.dedup import solution_key, wrong_equations

# (prompts, samples per prompt, seed) -> that many completions per prompt
Complete = Callable[[list[str], int, int], list[list[str]]]
# (completions, golds, styles) -> one Verdict each (arithmo.rewards.grade_completions with a sandbox)
Grade = Callable[[list[str], list[str], list[str]], list[Verdict]]

# Why sampling a task stopped.
STOP_REASONS = {
    "k_samples": "fixed mode: its k samples were drawn (Yuan et al. 2023)",
    "min_correct": "difficulty-aware: it reached min_correct correct samples (DART-Math Uniform)",
    "max_trials": "difficulty-aware: max_trials samples drawn before min_correct were correct",
    "unreadable_gold": "not sampled: the grader cannot read its gold answer (arithmo.rewards.gold_problem)",
}
FAILURES = tuple(reason for reason in REWARDS if reason not in ("correct", "unreadable_gold"))
# Why a correct sample is not kept: its arithmetic is wrong on the way (CoT), or it repeats a kept solution.
AFTER_CORRECT = ("wrong_equation", "duplicate")


class RFTError(RuntimeError):
    """Rejection sampling cannot run or continue as configured; the message says what to change."""


@dataclass
class Task:
    """One question in one style: `prompt` is the user's turn (the question; for PoT with its hint phrase),
    what the model is asked and what the SFT record's prompt will be."""

    item: dict
    style: str
    prompt: str
    gold_problem: str | None = None  # why the gold cannot be read (then the task is not sampled)

    @property
    def key(self) -> str:
        return f"{self.item['id']}|{self.style}"


def stop_reason(rounds: list[list[dict]], k: int, min_correct: int | None, max_trials: int | None) -> str | None:
    """Why the task with these graded rounds is done, or None when another round is due."""
    if min_correct is None:
        return "k_samples" if rounds else None
    samples = [sample for batch in rounds for sample in batch]
    if sum(sample["reason"] == "correct" for sample in samples) >= min_correct:
        return "min_correct"
    if max_trials is not None and len(samples) + k > max_trials:
        return "max_trials"
    return None


def check_budget(k: int, min_correct: int | None, max_trials: int | None) -> None:
    """Raise RFTError unless k, min_correct and max_trials make whole rounds that can reach min_correct."""
    if k < 1:
        raise RFTError(f"k: expected >= 1 samples per round, got {k}")
    if min_correct is None:
        if max_trials is not None:
            raise RFTError("max_trials is set without min_correct: the fixed mode draws k samples once; set "
                           "min_correct to sample difficulty-aware, or max_trials=null")
        return
    if min_correct < 1:
        raise RFTError(f"min_correct: expected >= 1 (or null for the fixed mode), got {min_correct}")
    if max_trials is None or max_trials < k or max_trials % k:
        raise RFTError(f"max_trials: the difficulty-aware mode needs a cap that is a multiple of k={k} (rounds of "
                       f"k samples), got {max_trials}")


# ----------------------------------------------------------------------------------------------
# samples.jsonl


def read_rounds(path: Path) -> tuple[dict[str, list[list[dict]]], int]:
    """({task key: its rounds in order}, 1 when a last line was cut short by a crash and dropped, else 0).

    Raises DataError naming the file and line for a damaged line elsewhere, or rounds out of order.
    """
    rounds: dict[str, list[list[dict]]] = {}
    if not path.is_file():
        return rounds, 0
    numbered, truncated = read_saved_lines(path, "move the file away or resume=false")  # a cut last round: redone
    for number, row in numbered:
        if not isinstance(row, dict) or not {"id", "style", "round", "samples"} <= set(row):
            raise DataError(f"{path}:{number}: not an RFT round (needs id, style, round, samples)")
        done = rounds.setdefault(f"{row['id']}|{row['style']}", [])
        if row["round"] != len(done):
            raise DataError(f"{path}:{number}: round {row['round']} of {row['id']} ({row['style']}) follows "
                            f"{len(done)} earlier rounds; the file is damaged: move it away or resume=false")
        done.append(row["samples"])
    if truncated:
        path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for _, row in numbered), encoding="utf-8")
    return rounds, truncated


def _append(path: Path, rows: list[dict]) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


# ----------------------------------------------------------------------------------------------
# sampling


def sample_tasks(tasks: list[Task], *, complete: Complete, grade: Grade, k: int, store: Path,
                 min_correct: int | None = None, max_trials: int | None = None, seed: int = 0,
                 chunk: int = 64, progress: bool = False) -> dict[str, list[list[dict]]]:
    """Sample every task until `stop_reason` says it is done; returns {task key: rounds}, also in `store`.

    Rounds already in `store` count (resume); tasks whose gold cannot be read are never sampled. Tasks go in
    chunks of `chunk`: each round generates k completions for every task of the chunk still due, grades them
    all at once (PoT programs run together in the sandbox) and appends one line per task.
    """
    check_budget(k, min_correct, max_trials)
    rounds, _ = read_rounds(store)
    due = [t for t in tasks if t.gold_problem is None and stop_reason(rounds.get(t.key, []), k, min_correct,
                                                                      max_trials) is None]
    started, drawn, saved_lines = time.perf_counter(), 0, 0
    if progress and due:
        print(f"[rft] {len(tasks) - len(due)}/{len(tasks)} tasks already done; sampling {len(due)} in chunks of "
              f"{min(chunk, len(due))} tasks, each round saved to {store} as it ends", file=sys.stderr, flush=True)
    try:
        for start in range(0, len(due), chunk):
            drawn, saved_lines = _sample_chunk(due[start:start + chunk], rounds, complete, grade, k, store,
                                               min_correct, max_trials, seed, drawn, saved_lines,
                                               progress=progress)
            if progress:
                done = min(start + chunk, len(due))
                print(f"[rft] {done}/{len(due)} tasks sampled ({drawn} samples, "
                      f"{drawn / max(time.perf_counter() - started, 1e-9):.2f} samples/s)", file=sys.stderr,
                      flush=True)
    except KeyboardInterrupt:
        # Ctrl-C: every finished round is on disk; the round being generated is dropped and drawn again on resume
        where = (f"{saved_lines} round line(s) saved in {store} this session; run the same command again "
                 "(resume=true) to continue from there" if saved_lines else
                 f"nothing saved this session (the first round was still generating; {store} unchanged)")
        print(f"\n[rft] Ctrl-C: {where}", file=sys.stderr, flush=True)
        raise
    return rounds


def _sample_chunk(active: list[Task], rounds: dict[str, list[list[dict]]], complete: Complete, grade: Grade, k: int,
                  store: Path, min_correct: int | None, max_trials: int | None, seed: int, drawn: int,
                  saved_lines: int, progress: bool) -> tuple[int, int]:
    """Rounds for one chunk of tasks until each is done (sample_tasks); returns the updated (samples drawn, round
    lines saved)."""
    while active:
        round_numbers = [len(rounds.get(t.key, [])) for t in active]
        # A seed per (chunk, round) from its first task, not a counter: a resumed run draws the same
        # seeds for the same chunks (batched sampling also depends on which prompts share a batch).
        round_seed = stable_rng(seed, f"{active[0].key}/{round_numbers[0]}").randrange(2**31)
        completions = complete([t.prompt for t in active], k, round_seed)
        if len(completions) != len(active) or any(len(c) != k for c in completions):
            raise RFTError(f"the generator returned {[len(c) for c in completions]} completions for "
                           f"{len(active)} prompts, expected {k} each")
        flat = [text for texts in completions for text in texts]
        verdicts = grade(flat, [t.item["answer"] for t in active for _ in range(k)],
                         [t.style for t in active for _ in range(k)])
        lines = []
        for index, (task, number) in enumerate(zip(active, round_numbers)):
            samples = [{"completion": text, "reason": v.reason, "answer": v.answer, "program": v.program,
                        "exec": v.exec}
                       for text, v in zip(flat[index * k:(index + 1) * k], verdicts[index * k:(index + 1) * k])]
            rounds.setdefault(task.key, []).append(samples)
            lines.append({"id": task.item["id"], "style": task.style, "round": number, "samples": samples})
        _append(store, lines)
        drawn += len(flat)
        saved_lines += len(lines)
        active = [t for t in active if stop_reason(rounds[t.key], k, min_correct, max_trials) is None]
        if progress and active:
            print(f"[rft]   round {round_numbers[0] + 1} of this chunk saved; {len(active)} task(s) still "
                  "due another round", file=sys.stderr, flush=True)
    return drawn, saved_lines


# ----------------------------------------------------------------------------------------------
# selection and accounting


def select_solutions(tasks: list[Task], rounds: dict[str, list[list[dict]]], *, k: int,
                     min_correct: int | None = None, max_trials: int | None = None,
                     known: dict[tuple[str, str], set] | None = None,
                     check_equations: bool = True) -> tuple[list[dict], list[dict]]:
    """(SFT records of the kept solutions, one account per task), in task order.

    A sample is kept when its verdict is `correct`, its own equations hold (CoT, with `check_equations`:
    `arithmo.rft.dedup.wrong_equations`), and its solution key (`arithmo.rft.dedup.solution_key`) is new for its
    question and style: new against earlier samples, and against `known` keys ({(question, style): keys of the
    original data's solutions}, by question text, when the output mixes in the original data). Every task's
    account balances: sampled = correct + each failure; correct = kept + wrong_equation + duplicate (checked).
    """
    records, accounts = [], []
    for task in tasks:
        task_rounds = rounds.get(task.key, [])
        account: dict[str, Any] = {"id": task.item["id"], "style": task.style, "rounds": len(task_rounds),
                                   "sampled": 0, "correct": 0, "kept": 0,
                                   "dropped": {reason: 0 for reason in (*FAILURES, *AFTER_CORRECT)}}
        if task.gold_problem is not None:
            account.update(stopped="unreadable_gold", gold_problem=task.gold_problem)
            accounts.append(account)
            continue
        seen = set((known or {}).get((task.item["question"], task.style), set()))
        for number, samples in enumerate(task_rounds):
            for index, sample in enumerate(samples):
                account["sampled"] += 1
                if sample["reason"] != "correct":
                    account["dropped"][sample["reason"]] += 1
                    continue
                account["correct"] += 1
                if check_equations and task.style == "cot" and wrong_equations(sample["completion"]):
                    account["dropped"]["wrong_equation"] += 1
                    continue
                key = solution_key(task.style, sample["completion"], sample.get("program"))
                if key in seen:
                    account["dropped"]["duplicate"] += 1
                    continue
                seen.add(key)
                account["kept"] += 1
                records.append({"id": f"rft/{task.item['id']}/{task.style}/{number}.{index}", "source": "rft",
                                "style": task.style, "prompt": task.prompt,
                                "completion": sample["completion"].strip()})
        account["stopped"] = stop_reason(task_rounds, k, min_correct, max_trials) or "unfinished"
        failures = sum(account["dropped"][reason] for reason in FAILURES)
        if account["sampled"] != account["correct"] + failures or \
                account["correct"] != account["kept"] + sum(account["dropped"][r] for r in AFTER_CORRECT):
            raise RFTError(f"internal error: the account of {task.key} does not balance: {account}")
        accounts.append(account)
    return records, accounts


def totals(accounts: list[dict]) -> dict[str, Any]:
    """Totals over the task accounts, overall and per style, with the balance they must satisfy."""
    def add(group: list[dict]) -> dict[str, Any]:
        dropped = Counter()
        for account in group:
            dropped.update(account["dropped"])
        return {"tasks": len(group), "sampled": sum(a["sampled"] for a in group),
                "correct": sum(a["correct"] for a in group), "kept": sum(a["kept"] for a in group),
                "tasks_with_kept": sum(a["kept"] > 0 for a in group),
                "dropped": {reason: dropped[reason] for reason in (*FAILURES, *AFTER_CORRECT)},
                "stopped": dict(sorted(Counter(a["stopped"] for a in group).items()))}

    styles = sorted({a["style"] for a in accounts})
    return {**add(accounts), "by_style": {style: add([a for a in accounts if a["style"] == style])
                                          for style in styles}}
