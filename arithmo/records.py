"""The records that pass between stages (docs/design.md, "Records"): plain dicts, JSONL on disk.

These TypedDicts are the stage contracts; adapters, training and evaluation read and write exactly
these keys.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

try:
    from typing import NotRequired
except ImportError:  # Python 3.10
    from typing_extensions import NotRequired

Style = Literal["cot", "pot", "tir"]  # tir: text with code blocks and their output blocks


class MathExample(TypedDict):
    """What a source adapter yields: one problem with one solution, before any formatting."""

    id: str  # "<source>/<row index>", e.g. "metamathqa/000123"; unique within a build
    source: str  # the recipe's name for the source, e.g. "metamathqa"
    question: str
    solution: str  # CoT text, or a Python program for PoT
    style: Style
    answer: str | None  # the final answer when the source states one
    meta: dict[str, Any]  # source-specific extras (MetaMathQA type, Lila dataset, MathInstruct path ...)
    # long chain-of-thought sources: the reasoning trace (the text inside the think block, without its tags);
    # `solution` is then the answer written after the block (arithmo.data.reasoning)
    reasoning: NotRequired[str]


class SFTRecord(TypedDict):
    """What training consumes (TRL's prompt-completion form); loss is on the completion only.

    `prompt` is the user's turn as text (question, plus a PoT hint for PoT rows); the chat or
    plain template is applied at training time by `arithmo.prompts.render_sft`.
    """

    id: str
    source: str
    style: Style
    prompt: str
    completion: str  # with `reasoning`: the answer after the think block
    reasoning: NotRequired[str]  # long CoT: rendered in the template's think block (arithmo.thinking)


class EvalItem(TypedDict):
    id: str
    benchmark: str
    question: str
    answer: str
    meta: dict[str, Any]  # MATH keeps "level" and "type"


class ExecRecord(TypedDict):
    stdout: str
    error: str | None
    timed_out: bool


class Prediction(TypedDict):
    id: str
    benchmark: str
    style: str
    prompt: str
    completion: str
    program: str | None
    exec: ExecRecord | None
    extracted: str | None
    correct: bool
    # written by arithmo.eval beside the contract's keys
    sample: NotRequired[int | None]  # None for the greedy completion, 0..k-1 for maj@k samples
    gold: NotRequired[str]
    extracted_flexible: NotRequired[str | None]  # with the last-number fallback
    correct_flexible: NotRequired[bool]
    answer_source: NotRequired[str | None]  # hybrid: "pot", "cot", or None when neither answered
    fallback: NotRequired[dict | None]  # hybrid: the CoT prompt and completion when the program failed


class GroupScore(TypedDict):
    n: int
    correct: int
    accuracy: float


class MajK(TypedDict):
    k: int
    temperature: float | None
    accuracy: float
    correct: int
    no_answer_rate: float


class Disagreement(TypedDict):
    """One item where math-verify's verdict differs from arithmo's (arithmo.evaluation.second_opinion)."""

    id: str
    extracted: str | None  # arithmo's answer (for PoT the program's), as both graders saw it
    gold: str
    arithmo: bool
    math_verify: bool
    note: NotRequired[str]  # why math-verify gave no verdict: it ran past its time limit or failed


class MathVerifyOpinion(TypedDict):
    """math-verify's verdicts on the greedy answers; version None and `skipped` when it is not installed."""

    version: str | None
    correct: int | None
    compared: int  # items with an answer, handed to math-verify
    no_answer: int  # items without one: wrong for both graders
    timed_out: int  # ran past timeout_s: counted wrong, as math-verify answers a timeout
    failed: int  # the grading worker process failed: counted wrong
    timeout_s: float
    disagreements: int | None
    disagreement_items: list[Disagreement]
    skipped: NotRequired[str]  # why it did not run, and how to install it


Interval = list[float]  # [low, high], 0..1: a 95% Wilson score interval (arithmo.evaluation.intervals)


class Intervals(TypedDict):
    """metrics.json's `ci95`: the 95% Wilson interval of every accuracy (None where that accuracy is None)."""

    method: str
    accuracy: Interval
    accuracy_flexible: Interval | None
    accuracy_math_verify: Interval | None
    maj_k: Interval | None
    by_level: dict[str, Interval]
    by_type: dict[str, Interval]


class SeedSpread(TypedDict):
    """maj@k over several sampling seeds (EvalConfig.seeds): each seed's score, their mean and spread."""

    seeds: list[int]
    k: int
    n: int
    accuracy: list[float]  # per seed, in the order of `seeds`
    correct: list[int]
    ci95: list[Interval]
    mean: float
    std: float | None  # sample standard deviation (n - 1); None with one seed
    min: float
    max: float
    folders: list[str]  # each seed's eval folder: the first is this one, the others <output_dir>_seed<s>


class Metrics(TypedDict):
    """metrics.json of one evaluation (`arithmo.evaluation.metrics.compute_metrics`, then `arithmo.eval`).

    Rates are shares of all `n` items (0..1): a missing answer or a crashed program counts as wrong.
    Read one with `arithmo.runs.read_metrics`.
    """

    benchmark: str
    style: str
    n: int
    accuracy: float  # strict answers of the greedy completions
    accuracy_flexible: float  # with the last-number fallback
    accuracy_math_verify: float | None  # math-verify's verdict on the same greedy answers; None: not installed
    maj_k: MajK | None
    no_answer_rate: float
    exec_error_rate: float | None  # PoT/hybrid only
    exec_timeout_rate: float | None
    by_level: dict[str, GroupScore]
    by_type: dict[str, GroupScore]
    grader_version: str
    correct: int
    missing_predictions: int
    math_verify: MathVerifyOpinion
    ci95: Intervals
    maj_k_seeds: NotRequired[SeedSpread]  # with seeds=[...]
    no_program_rate: NotRequired[float]  # PoT/hybrid
    cot_fallback_rate: NotRequired[float]  # hybrid
    model: NotRequired[str]
    adapter: NotRequired[str | None]
    config_hash: NotRequired[str]
    engine: NotRequired[str]
    seconds: NotRequired[float]


def _required(record: type) -> tuple[str, ...]:
    """The keys every record of a TypedDict holds, in order (annotations are strings here: NotRequired is read
    from the text, since TypedDict cannot see it through `from __future__ import annotations`)."""
    return tuple(key for key, kind in record.__annotations__.items()
                 if not getattr(kind, "__forward_arg__", str(kind)).startswith("NotRequired"))


SFT_KEYS = _required(SFTRecord)  # optional: reasoning
EXAMPLE_KEYS = _required(MathExample)
