"""Rewards for GRPO (and verdicts for RFT) from arithmo's own grader and sandbox.

    rewards = Rewards(run=lambda codes: box.run(codes, timeout_s=5.0), format_weight=0.1)
    trainer = GRPOTrainer(..., reward_funcs=rewards.funcs, args=GRPOConfig(reward_weights=rewards.weights))

A completion is graded by evaluation's own rules (`arithmo.evaluation.scoring`, the only copy): CoT by the
strict answer (`grade_cot_line`: the `The answer is:` line or a `\\boxed{}`), PoT by extracting the program,
running it in the sandbox and reading its printout (`grade_programs`). Each completion gets one verdict:

| verdict          | correctness | format | why |
|------------------|-------------|--------|-----|
| correct          | 1.0         | 1.0    | the strict answer, or the program's printout, equals the gold |
| wrong            | 0.0         | 1.0    | an answer in the expected place, not the gold's |
| no_answer        | 0.0         | 0.0    | CoT: no `The answer is:` line or box; PoT: ran, printed no answer |
| no_program       | 0.0         | 0.0    | PoT: no Python program in the completion |
| exec_error       | 0.0         | 0.0    | PoT: the program raised in the sandbox |
| timeout          | 0.0         | 0.0    | PoT: ran past program_timeout_s (a loop): the sandbox killed it |
| unreadable_gold  | None        | None   | the gold answer cannot be read by our grader: the item is excluded |

`None` is TRL's "not applicable": GRPOTrainer turns it into NaN, leaves it out of the group baseline and gives
the completion zero advantage (trl 1.14.2 `_generate_and_score_completions`). An unreadable gold is never
rewarded 1.0: open-r1's first `accuracy_reward` (huggingface/open-r1, src/open_r1/rewards.py, early 2025) gave
1.0 "to skip this example" when math-verify could not parse the gold, which rewards every completion of that
question alike and, with per-group std scaling, still logs a perfect reward. The GRPO recipe also drops such
items before training, counted by reason (`gold_problem`).

Overlong shaping (optional, `overlong_buffer` > 0): a third reward, DAPO's soft overlong punishment
(`overlong_penalty`, arXiv 2503.14476 eq. 13), 0 up to `max_completion_length - overlong_buffer` tokens, then
falling linearly to `-overlong_penalty` at the limit.

Time limits off the main thread: TRL calls synchronous reward functions on the thread that runs the training
loop. Programs always run in the sandbox's worker processes with a wall-clock limit, from any thread. A
symbolic comparison is bounded by arithmo.deadline: SIGALRM on the main thread only (`_can_use_alarm`
checks the thread and that no other timer is running), and on any other thread (a notebook worker, TRL's
async reward loop, a Gradio handler) its long-lived worker process, killed at the limit. Nothing here sets a
signal; `tests/test_grpo_rewards.py` grades from a second thread and checks the worker process ran it.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# verdict -> (correctness reward, format reward); None = excluded (see the table in the module doc)
REWARDS: dict[str, tuple[float | None, float | None]] = {
    "correct": (1.0, 1.0),
    "wrong": (0.0, 1.0),
    "no_answer": (0.0, 0.0),
    "no_program": (0.0, 0.0),
    "exec_error": (0.0, 0.0),
    "timeout": (0.0, 0.0),
    "unreadable_gold": (None, None),
}

RunPrograms = Callable[[list[str]], list[Any]]


@dataclass
class Verdict:
    """How one completion was graded: `reason` is a key of REWARDS; `answer` the extracted (or printed) answer;
    `program` and `exec` (stdout, error, timed_out) for PoT."""

    reason: str
    answer: str | None = None
    program: str | None = None
    exec: dict | None = None

    @property
    def correct(self) -> bool | None:
        """True or False; None when the item is excluded (its gold cannot be read)."""
        value = REWARDS[self.reason][0]
        return None if value is None else value == 1.0


@functools.lru_cache(maxsize=65536)
def gold_problem(gold: Any, grade_timeout_s: float = 2.0) -> str | None:
    """Why a gold answer cannot be graded against (a short phrase), or None when it can.

    A gold is readable when it is non-empty text that the grader reads back from a perfect completion: a CoT
    completion ending `The answer is: <gold>` must be graded correct. Anything else (None, a number instead of
    text, an empty or whitespace string, text the extractor cannot take back) would either crash grading or
    make every completion of the question equally wrong, so the item is excluded instead.
    """
    from arithmo.evaluation.scoring import grade_answer, read_cot
    from arithmo.prompts import ANSWER_PREFIX

    if not isinstance(gold, str):
        return f"the gold answer is {type(gold).__name__}, not text"
    if not gold.strip():
        return "the gold answer is empty"
    strict, _ = read_cot(f"{ANSWER_PREFIX}{gold}", gold)
    if strict is None:
        return "the grader reads no answer from 'The answer is: <gold>'"
    if not grade_answer(strict, gold, grade_timeout_s):
        return f"the grader does not take its own reading {strict!r} of the gold as equal to it"
    return None


def grade_completions(completions: list[str], golds: list[Any], styles: list[str], *, run: RunPrograms | None,
                      grade_timeout_s: float = 2.0, prompts: list[Any] | None = None) -> list[Verdict]:
    """One Verdict per completion (same order), by evaluation's scoring rules.

    `prompts` (the generation prompts, when known): a CoT completion after a prompt that opened the think block
    (R1-distill templates) is read as starting inside it, as evaluation reads it: no reward for an answer inside
    unfinished reasoning.

    `styles[i]` is "cot" or "pot"; PoT programs of the whole batch run at once through `run` (a sandbox pool:
    `Sandbox.run` with its timeout). Raises ValueError for lists of different lengths, an unknown style, or PoT
    completions without `run`.
    """
    from arithmo.evaluation.scoring import grade_cot_line, grade_programs

    if not len(completions) == len(golds) == len(styles):
        raise ValueError(f"grade_completions: {len(completions)} completions, {len(golds)} golds and "
                         f"{len(styles)} styles: expected one of each per completion")
    unknown = sorted(set(styles) - {"cot", "pot"})
    if unknown:
        raise ValueError(f"grade_completions: style must be 'cot' or 'pot', got {unknown}")
    verdicts: list[Verdict | None] = [None] * len(completions)
    pot_lines, pot_index = [], []
    for index, (completion, gold, style) in enumerate(zip(completions, golds, styles)):
        if gold_problem(gold, grade_timeout_s) is not None:
            verdicts[index] = Verdict("unreadable_gold")
        elif style == "cot":
            line: dict[str, Any] = {}
            prompt = prompts[index] if prompts is not None and isinstance(prompts[index], str) else ""
            grade_cot_line(line, completion, gold, grade_timeout_s, prompt)
            reason = "correct" if line["correct"] else ("no_answer" if line["extracted"] is None else "wrong")
            verdicts[index] = Verdict(reason, answer=line["extracted"])
        else:
            pot_lines.append({"completion": completion, "gold": gold, "program": None, "exec": None,
                              "extracted": None, "correct": False})
            pot_index.append(index)
    if pot_lines:
        if run is None:
            raise ValueError("grade_completions: PoT completions need `run` (a sandbox runner)")
        grade_programs(pot_lines, run=run, grade_timeout_s=grade_timeout_s)
        for index, line in zip(pot_index, pot_lines):
            verdicts[index] = Verdict(_pot_reason(line), answer=line["extracted"], program=line["program"],
                                      exec=line["exec"])
    return verdicts  # type: ignore[return-value]


def _pot_reason(line: dict[str, Any]) -> str:
    if line["program"] is None:
        return "no_program"
    if line["exec"]["timed_out"]:
        return "timeout"
    if line["exec"]["error"]:
        return "exec_error"
    if line["extracted"] is None:
        return "no_answer"
    return "correct" if line["correct"] else "wrong"


def overlong_penalty(length: int, max_length: int, buffer: int, penalty: float = 1.0) -> float:
    """DAPO's soft overlong punishment (Yu et al. 2025, arXiv 2503.14476, sec. 3.4, eq. 13), our code: a reward
    term of 0 for a completion of at most `max_length - buffer` tokens, falling linearly to `-penalty` at
    `max_length` tokens, and `-penalty` beyond (a completion cut at the limit reaches it: its answer never came).

    `length`, `max_length`, `buffer` in tokens; `buffer` 0 turns it off (always 0.0). Raises ValueError for a
    negative length or penalty, or a buffer outside [0, max_length).
    """
    if length < 0 or penalty < 0 or not 0 <= buffer < max_length:
        raise ValueError(f"overlong_penalty: expected length >= 0 (got {length}), penalty >= 0 ({penalty}) and "
                         f"0 <= buffer < max_length ({buffer}, {max_length})")
    start = max_length - buffer
    if buffer == 0 or length <= start:
        return 0.0
    if length >= max_length:
        return -penalty
    return -penalty * (length - start) / buffer


class Rewards:
    """TRL reward functions on arithmo's grader: `correct` (1/0/None) and, with format_weight > 0, `format`.

    `funcs` and `weights` go to GRPOTrainer and GRPOConfig.reward_weights. Both functions read the dataset's
    `answer` and `style` columns. A batch is graded once (the two functions share the verdicts). With a
    `tokenizer`, completions are decoded again from `completion_ids` without tokenization clean-up (as
    arithmo.generate does: it would turn `x = 5 .` into `x = 5.`), and cut at `stop` strings as evaluation cuts
    them. Each batch also logs, through TRL's `log_metric`: accuracy (of graded completions), the share of
    each failure verdict, and the number of excluded completions.
    """

    def __init__(self, *, run: RunPrograms | None, grade_timeout_s: float = 2.0, format_weight: float = 0.0,
                 tokenizer: Any = None, stop: list[str] | None = None, max_completion_length: int = 0,
                 overlong_buffer: int = 0, overlong_penalty: float = 1.0) -> None:
        if format_weight < 0:
            raise ValueError(f"format_weight: expected >= 0, got {format_weight}")
        if overlong_buffer and not 0 < overlong_buffer < max_completion_length:
            raise ValueError(f"overlong_buffer: expected 0 (off) or 1 .. max_completion_length - 1 = "
                             f"{max_completion_length - 1}, got {overlong_buffer}")
        self.max_completion_length = max_completion_length
        self.overlong_buffer = overlong_buffer
        self.overlong_penalty = overlong_penalty
        self.run = run
        self.grade_timeout_s = grade_timeout_s
        self.format_weight = format_weight
        self.tokenizer = tokenizer
        self.stop = stop or []
        self.totals: Counter[str] = Counter()  # verdicts over the whole run
        self._last: tuple[tuple, list[Verdict]] | None = None

    @property
    def funcs(self) -> list[Callable[..., list[float | None]]]:
        return ([self.correct] + ([self.format] if self.format_weight > 0 else [])
                + ([self.overlong] if self.overlong_buffer > 0 else []))

    @property
    def weights(self) -> list[float]:
        # the overlong term carries its size in overlong_penalty: weight 1
        return [1.0] + ([self.format_weight] if self.format_weight > 0 else []) + \
            ([1.0] if self.overlong_buffer > 0 else [])

    def texts(self, completions: list[Any], completion_ids: list[list[int]] | None) -> list[str]:
        from arithmo.generate import cut_at_stop

        if self.tokenizer is not None and completion_ids is not None:
            texts = [self.tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
                     for ids in completion_ids]
        else:
            texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]  # conversational: last turn
        return [cut_at_stop(text, self.stop) for text in texts]

    def verdicts(self, completions: list[Any], answer: list[Any], style: list[str],
                 completion_ids: list[list[int]] | None = None, reuse: bool = False,
                 prompts: list[Any] | None = None) -> list[Verdict]:
        """The batch's verdicts. `reuse`: take the verdicts `correct` just gave this same batch (TRL calls the
        reward functions one after another on one batch), and grade only when they are not for this batch."""
        texts = self.texts(completions, completion_ids)
        key = (tuple(texts), tuple(map(str, answer)), tuple(style))
        if reuse and self._last is not None and self._last[0] == key:
            last, self._last = self._last[1], None
            return last
        verdicts = grade_completions(texts, list(answer), list(style), run=self.run,
                                     grade_timeout_s=self.grade_timeout_s, prompts=prompts)
        self._last = (key, verdicts)
        return verdicts

    def correct(self, prompts: list, completions: list, answer: list, style: list, completion_ids=None,
                log_metric: Callable | None = None, **_: Any) -> list[float | None]:
        """1.0 for a correct answer, 0.0 otherwise, None for an item whose gold cannot be read."""
        verdicts = self.verdicts(completions, answer, style, completion_ids, prompts=prompts)
        counts = Counter(v.reason for v in verdicts)
        self.totals.update(counts)
        if log_metric is not None:
            graded = len(verdicts) - counts["unreadable_gold"]
            if graded:
                log_metric("accuracy", counts["correct"] / graded)
                for reason in ("no_answer", "no_program", "exec_error", "timeout"):
                    log_metric(f"{reason}_rate", counts[reason] / graded)
            log_metric("excluded", float(counts["unreadable_gold"]))
        return [REWARDS[v.reason][0] for v in verdicts]

    def format(self, prompts: list, completions: list, answer: list, style: list, completion_ids=None,
               log_metric: Callable | None = None, **_: Any) -> list[float | None]:
        """1.0 when the answer sits where the grader looks (an answer line; a program that ran and printed)."""
        return [REWARDS[v.reason][1]
                for v in self.verdicts(completions, answer, style, completion_ids, reuse=True, prompts=prompts)]

    def overlong(self, prompts: list, completions: list, completion_ids: list[list[int]] | None = None,
                 log_metric: Callable | None = None, **_: Any) -> list[float | None]:
        """DAPO's soft overlong punishment on each completion's token count (`overlong_penalty`): 0 or below.
        Logs the share of completions it punished (`overlong_rate`)."""
        if completion_ids is None:
            raise ValueError("overlong reward: needs completion_ids (TRL passes them) to count tokens")
        values = [overlong_penalty(len(ids), self.max_completion_length, self.overlong_buffer, self.overlong_penalty)
                  for ids in completion_ids]
        if log_metric is not None and values:
            log_metric("overlong_rate", sum(v < 0 for v in values) / len(values))
        return values
