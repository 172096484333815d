"""The one place that knows each evaluation benchmark: hub id, configs, split, columns, how the gold is read.

    items = load_items("gsm8k", path="gsm8k_test.jsonl", n=50)      # a local file in GSM8K's own schema
    items = load_items("math")                                      # the hub: all 7 MATH subjects, test split
    questions, source = load_questions("math500")                   # what decontamination compares against

`BENCHMARKS` is a table with one small row function per benchmark, the way `arithmo.data.adapters` does
sources. Evaluation (`arithmo.eval`), decontamination (`arithmo.data.decontaminate`) and the app's example
questions (`arithmo.app.files`) load benchmarks through it by name; a custom file stays possible (`file`:
EvalItem records, or any benchmark's schema at a local `path`). `tests/test_hub_schemas.py` checks every hub
id, config, split and column named here, in recipes and in presets against the datasets' cards.

Gold answers:
- GSM8K (`question`, `answer`): the text after the last `####` (Cobbe et al. 2021 end every solution with
  `#### <number>`), thousands separators removed ("2,125" -> "2125"). MetaMath's eval copy (`query`,
  `response`) holds the same content and is read too.
- MATH (`problem`, `solution`, `level`, `type`): the last `\\boxed{}` of the solution, found by
  arithmo.grading's extraction; meta keeps level and type.
- MATH-500 (`problem`, `solution`, `answer`, `subject`, `level` 1-5, `unique_id`): `answer`; meta level as
  "Level N" (MATH's spelling, so by-level tables line up) and type = subject.
- SVAMP (`ID`, `Body`, `Question`, `Answer`, `Type`): question = Body + " " + Question.
- GSM8K-Platinum (`question`, `answer`, `cleaning_status`): as GSM8K; the cleaning status goes into meta.
- MGSM zh (`question`, `answer_number`): gold = answer_number.
- CMATH (`id`, `grade`, `question`, `golden`): gold = golden; level = "Grade N".
- AIME 2024 (`id`, `problem`, `solution`, `answer`, `url`, `year`): gold = answer as an integer ("033" -> "33");
  the part (AIME I / II) from the url is the type. Maxwell-Jia's copy (`ID`, `Problem`, `Answer`) is read too.
- AIME 2025 (`question`, `answer`; configs AIME2025-I and AIME2025-II, read one after the other): as AIME 2024.
- AMC 2023 (`id`, `question`, `answer` a float, `url`): gold = answer without a needless '.0'.
- OlympiadBench, English text-only open-ended maths (`id`, `question`, `final_answer` a list, `is_multiple_answer`,
  `unit`, `answer_type`, `subfield`, ...): gold = the final answers without their `$...$`, joined by ", " when
  there are several; the unit, the answer type and whether several answers are expected go into meta, the
  subfield is the type.
- Minerva Math (`question`, `answer`): gold = answer; a copy with only `solution` gives its last \\boxed{}.
- GSM-Plus (`question`, `solution`, `answer`, `perturbation_type`, `seed_question`, ...): gold = answer (thousands
  separators removed; the critical-thinking rows' gold is "None", as released); the perturbation is the type.
- Math401 (`question`, `answer`; the original file's `query`, `response`): the expression and its value as
  released (decimals to 4 places, e.g. "0.7400"). Its own accuracy rule is a comparison option
  (`meta["compare"]`, below): Yuan et al. 2023's scorer counts a prediction correct "if the difference between
  the decoded number and the target number is less than 1e-3" (github.com/GanjinZero/math401-llm, README,
  "Metric / Accuracy"), so 16/83 and 0.19277 answer the gold 0.1928.
- Math23K (`id`, `original_text`, `segmented_text`, `equation`, `ans`): question = original_text, gold = ans.
- file: EvalItem records (`id`, `question`, `answer`, optional `meta` and `benchmark`).
A row without a needed field is a DataError naming the file, the line and the field.

Comparison options: a benchmark whose own scorer accepts more than arithmo.grading's equality puts
`{"abs_tol": x}` in an item's `meta["compare"]`; evaluation grades the item correct when `is_equivalent` says so
or when both answers are numbers within x of each other (`within_tolerance`). Math401 sets it for every item
(1e-3, its scorer's rule); OlympiadBench for the items whose `error` field gives a precision (its judge accepts
a numeric answer within that error). Other benchmarks set nothing, so their verdicts do not change.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arithmo.io import DataError, read_file_rows, read_hub_rows
from arithmo.records import EvalItem

# A row function: (row, where, index, name) -> EvalItem; `name` is what results are filed under.
RowToItem = Callable[[dict, str, int, str], EvalItem]


@dataclass(frozen=True)
class Benchmark:
    """One benchmark: where it lives on the hub and how one of its rows becomes an EvalItem."""

    name: str
    hub: str
    configs: tuple[str | None, ...]  # read one after another (MATH: one config per subject); None: default
    split: str
    columns: tuple[str, ...]  # the hub columns the row function reads (checked against the card in tests)
    card: str  # the dataset card the schema was transcribed from
    to_item: RowToItem


# ----------------------------------------------------------------------------------------------
# field helpers


def _field(row: dict, where: str, names: tuple[str, ...], benchmark: str) -> Any:
    """The first of `names` present in `row` (not null), or a DataError naming the row and field."""
    for name in names:
        if row.get(name) is not None:
            return row[name]
    wanted = " or ".join(f"'{n}'" for n in names)
    if any(name in row for name in names):
        raise DataError(f"{where}: {benchmark} row has {wanted} empty (null)")
    raise DataError(f"{where}: {benchmark} row has no {wanted} field (fields present: {', '.join(sorted(row))})")


def _text(row: dict, where: str, names: tuple[str, ...], benchmark: str, allow_empty: bool = False) -> str:
    value = _field(row, where, names, benchmark)
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise DataError(f"{where}: field '{names[0]}' should be text, got {type(value).__name__}")
    if not str(value).strip() and not allow_empty:  # a blank question; a blank gold is the caller's to judge
        raise DataError(f"{where}: {benchmark} row has an empty '{names[0]}'")
    return str(value).strip()


def _item_id(name: str, key: Any, index: int) -> str:
    return f"{name}/{key}" if key is not None else f"{name}/{index:05d}"


def gsm8k_gold(solution: str, where: str) -> str:
    """The number after the last `####` of a GSM8K solution, without thousands separators."""
    if "####" not in solution:
        raise DataError(f"{where}: GSM8K answer has no '#### <number>' final line: {solution[-80:]!r}")
    return solution.rsplit("####", 1)[1].strip().replace(",", "")


def math_gold(solution: str, where: str) -> str:
    """The last `\\boxed{...}` (or `\\fbox{...}`) of a MATH solution, via arithmo.grading."""
    from arithmo.grading import extract_answer

    answer = extract_answer(solution, mode="strict")
    if answer is None or ("\\boxed" not in solution and "\\fbox" not in solution):
        raise DataError(f"{where}: MATH solution has no \\boxed{{...}} answer: {solution[-80:]!r}")
    return answer


def _level(value: Any) -> str:
    """MATH writes 'Level 3'; MATH-500 writes 3. One spelling, so by-level tables line up."""
    return f"Level {value}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def _number_text(value: Any) -> str:
    """SVAMP answers are floats (8.0): as text without a needless '.0'."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return str(int(value))
    return str(value).strip()


# ----------------------------------------------------------------------------------------------
# one row function per benchmark


def gsm8k_item(row: dict, where: str, index: int, name: str) -> EvalItem:
    question = _text(row, where, ("question", "query"), "gsm8k")
    gold = gsm8k_gold(_text(row, where, ("answer", "response"), "gsm8k"), where)
    return {"id": f"{name}/{index:05d}", "benchmark": name, "question": question, "answer": gold, "meta": {}}


def math_item(row: dict, where: str, index: int, name: str) -> EvalItem:
    question = _text(row, where, ("problem",), "math")
    gold = math_gold(_text(row, where, ("solution",), "math"), where)
    meta = {"level": _level(_field(row, where, ("level",), "math")),
            "type": _text(row, where, ("type", "subject"), "math")}
    return {"id": _item_id(name, row.get("unique_id") or row.get("idx"), index), "benchmark": name,
            "question": question, "answer": gold, "meta": meta}


def math500_item(row: dict, where: str, index: int, name: str) -> EvalItem:
    question = _text(row, where, ("problem",), "math500")
    if row.get("answer") is not None:
        gold = _text(row, where, ("answer",), "math500", allow_empty=True)
    else:  # a MATH-schema file named as math500: the boxed answer of the solution
        gold = math_gold(_text(row, where, ("solution",), "math500"), where)
    meta = {"level": _level(_field(row, where, ("level",), "math500")),
            "type": _text(row, where, ("subject", "type"), "math500")}
    return {"id": _item_id(name, row.get("unique_id"), index), "benchmark": name, "question": question,
            "answer": gold, "meta": meta}


def svamp_item(row: dict, where: str, index: int, name: str) -> EvalItem:
    if row.get("question_concat") is not None:
        question = _text(row, where, ("question_concat",), "svamp")
    else:
        body = _text(row, where, ("Body",), "svamp")
        question = f"{body.rstrip()} {_text(row, where, ('Question',), 'svamp')}"
    gold = _number_text(_field(row, where, ("Answer",), "svamp"))
    meta = {"type": str(row["Type"]).strip()} if row.get("Type") is not None else {}
    return {"id": _item_id(name, row.get("ID"), index), "benchmark": name, "question": question, "answer": gold,
            "meta": meta}


def gsm8k_platinum_item(row: dict, where: str, index: int, name: str) -> EvalItem:
    """GSM8K-Platinum: GSM8K's schema plus `cleaning_status` (consensus, verified, revised), kept in meta."""
    item = gsm8k_item(row, where, index, name)
    item["meta"] = {"cleaning_status": str(row["cleaning_status"])} if row.get("cleaning_status") else {}
    return item


def mgsm_item(row: dict, where: str, index: int, name: str) -> EvalItem:
    """MGSM: the gold is `answer_number` (the test split's `answer` column is empty; the 8 train rows hold a
    worked solution there)."""
    question = _text(row, where, ("question",), "mgsm")
    gold = _number_text(_field(row, where, ("answer_number",), "mgsm"))
    return {"id": f"{name}/{index:05d}", "benchmark": name, "question": question, "answer": gold, "meta": {}}


def cmath_item(row: dict, where: str, index: int, name: str) -> EvalItem:
    """CMATH: `question` and its `golden` answer; the school grade (1-6) is the level."""
    question = _text(row, where, ("question",), "cmath")
    gold = _text(row, where, ("golden",), "cmath", allow_empty=True)
    meta = {"level": f"Grade {row['grade']}"} if row.get("grade") is not None else {}
    return {"id": _item_id(name, row.get("id"), index), "benchmark": name, "question": question, "answer": gold,
            "meta": meta}


def _integer_text(value: Any, where: str, benchmark: str) -> str:
    """AIME golds are integers 0-999, written "033" on some copies and as ints on others: one spelling."""
    text = _number_text(value)
    if text.isdigit():
        return str(int(text))
    if not text:
        return text  # a blank gold is kept as read (RFT/GRPO exclude it and count it)
    raise DataError(f"{where}: {benchmark} answer should be an integer (AIME answers are 0-999), got {text!r}")


# "2024_AIME_I_Problems/Problem_1" and "2024_AIME_II_..." in AoPS wiki addresses: the part of the contest.
_AIME_PART = re.compile(r"AIME_(I{1,2})_")


def aime_item(row: dict, where: str, index: int, name: str) -> EvalItem:
    """AIME 2024 / 2025 rows: `problem` (H4's copy), `question` (OpenCompass's) or `Problem` (Maxwell-Jia's)."""
    question = _text(row, where, ("problem", "question", "Problem"), name)
    gold = _integer_text(_field(row, where, ("answer", "Answer"), name), where, name)
    part = _AIME_PART.search(str(row.get("url") or row.get("ID") or ""))
    meta = {"type": f"AIME {part.group(1)}"} if part else {}
    return {"id": _item_id(name, row.get("id", row.get("ID")), index), "benchmark": name, "question": question,
            "answer": gold, "meta": meta}


def amc_item(row: dict, where: str, index: int, name: str) -> EvalItem:
    """AMC 2023: `question` (math-ai's copy; `problem` on AI-MO's) and a float `answer` (27.0 -> "27")."""
    question = _text(row, where, ("question", "problem"), name)
    gold = _number_text(_field(row, where, ("answer",), name))
    return {"id": _item_id(name, row.get("id"), index), "benchmark": name, "question": question, "answer": gold,
            "meta": {}}


def _strip_dollars(text: str) -> str:
    """"$x=1$" -> "x=1": OlympiadBench writes each final answer as inline LaTeX."""
    text = text.strip()
    while len(text) >= 2 and text.startswith("$") and text.endswith("$"):
        text = text[1:-1].strip()
    return text


MATH401_ABS_TOL = 1e-3  # Math401's scorer: |prediction - target| < 1e-3 (math401-llm README, "Metric / Accuracy")


def within_tolerance(pred: str | None, gold: str, compare: dict | None, timeout_s: float = 2.0) -> bool:
    """Whether `pred` and `gold` are numbers (constants arithmo.grading reads: 0.1928, 16/83, \\sqrt{2}) within
    `compare["abs_tol"]` of each other; False without an option, an answer, or a number on either side. Bounded by
    `timeout_s` like the grader's symbolic comparisons (arithmo.deadline)."""
    if pred is None or not compare or compare.get("abs_tol") is None:
        return False
    from arithmo.deadline import DeadlineExceeded, call_with_deadline

    try:
        return bool(call_with_deadline(_numbers_within, (pred, gold, float(compare["abs_tol"])), timeout_s))
    except DeadlineExceeded:
        return False


def _numbers_within(pred: str, gold: str, abs_tol: float) -> bool:
    import sympy

    from arithmo.grading import normalize_answer
    from arithmo.grading.symbolic import NotConvertible, to_sympy

    values = []
    for text in (pred, gold):
        try:
            expr = to_sympy(normalize_answer(text))
        except NotConvertible:
            return False
        if expr.free_symbols or not expr.is_number:
            return False
        value = sympy.N(expr, 30)
        real, imag = value.as_real_imag()
        if imag != 0 or not real.is_finite:
            return False
        values.append(real)
    return bool(abs(values[0] - values[1]) <= abs_tol)


def _olympiad_tolerance(error: Any, where: str, name: str) -> float | None:
    """OlympiadBench's `error` (a precision such as "1e-2"; several answers: comma-separated, the largest is
    used) as a number; None when absent. A value that is not a number is a DataError naming the row."""
    if error in (None, ""):
        return None
    try:
        values = [float(part) for part in str(error).split(",") if part.strip()]
    except ValueError as err:
        raise DataError(f"{where}: {name} field 'error' should be a precision such as 1e-2, got {error!r}") from err
    return max(values) if values else None


def _strip_inline_math(text: str) -> str:
    """"$x=1$" -> "x=1" and "$\\frac{1}{2}$, $3$" -> "\\frac{1}{2}, 3": every `$` of inline formulas goes (a
    dollar amount would be written \\$, which is kept)."""
    text = _strip_dollars(text)
    return re.sub(r"(?<!\\)\$", "", text).strip() if "$" in text else text


def olympiadbench_item(row: dict, where: str, index: int, name: str) -> EvalItem:
    """OlympiadBench: the final answers (a list) without `$`, joined by ", " when there are several. A final
    answer written as several inline formulas ("$\\frac{1}{2}$, $3$") loses every `$`. Its `error` field (a
    numeric answer's allowed error, used by OlympiadBench's judge) is kept in meta and becomes the item's
    comparison option."""
    question = _text(row, where, ("question", "problem"), name)
    final = _field(row, where, ("final_answer", "answer"), name)
    answers = final if isinstance(final, (list, tuple)) else [final]
    if not all(isinstance(a, (str, int, float)) and not isinstance(a, bool) for a in answers):
        raise DataError(f"{where}: {name} field 'final_answer' should be a list of text answers, got {final!r}")
    gold = ", ".join(text for text in (_strip_inline_math(str(a)) for a in answers) if text)
    meta: dict[str, Any] = {}
    if row.get("subfield"):
        meta["type"] = str(row["subfield"])
    for key in ("unit", "answer_type", "is_multiple_answer", "error"):
        if row.get(key) not in (None, ""):
            meta[key] = row[key]
    tolerance = _olympiad_tolerance(row.get("error"), where, name)
    if tolerance is not None:
        meta["compare"] = {"abs_tol": tolerance}
    return {"id": _item_id(name, row.get("id"), index), "benchmark": name, "question": question, "answer": gold,
            "meta": meta}


def minerva_item(row: dict, where: str, index: int, name: str) -> EvalItem:
    """Minerva Math (OCWCourses): `question` and `answer`; a copy with only a `solution` gives its last box."""
    question = _text(row, where, ("question", "problem"), name)
    if row.get("answer") is not None:
        gold = _text(row, where, ("answer",), name, allow_empty=True)
    else:
        gold = math_gold(_text(row, where, ("solution",), name), where)
    return {"id": _item_id(name, row.get("idx", row.get("id")), index), "benchmark": name, "question": question,
            "answer": gold, "meta": {}}


_DIGIT_GROUPS = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?")


def gsm_plus_item(row: dict, where: str, index: int, name: str) -> EvalItem:
    """GSM-Plus: the perturbed `question` and its `answer`; the perturbation type is the type."""
    question = _text(row, where, ("question",), name)
    gold = _text(row, where, ("answer",), name, allow_empty=True)
    if _DIGIT_GROUPS.fullmatch(gold):  # "12,000" -> "12000", as GSM8K's golds; "1, 2" (a list) is left alone
        gold = gold.replace(",", "")
    meta = {"type": str(row["perturbation_type"])} if row.get("perturbation_type") else {}
    return {"id": f"{name}/{index:05d}", "benchmark": name, "question": question, "answer": gold, "meta": meta}


def math401_item(row: dict, where: str, index: int, name: str) -> EvalItem:
    """Math401: an expression ("5+2=") and its value; the hub copy's `question`/`answer` or the original
    file's `query`/`response`."""
    question = _text(row, where, ("question", "query"), name)
    gold = _number_text(_field(row, where, ("answer", "response"), name))
    return {"id": f"{name}/{index:05d}", "benchmark": name, "question": question, "answer": gold,
            "meta": {"compare": {"abs_tol": MATH401_ABS_TOL}}}


# Math23K writes a mixed number as 3(1/2) (3 1/2 = 3.5, its equation x=3+(1/2)); read literally it is 3 * 1/2.
_MATH23K_MIXED = re.compile(r"^(-?)(\d+)\((\d+)/(\d+)\)$")


def math23k_gold(answer: str) -> str:
    """Math23K's `ans` as arithmo writes it: a mixed number `3(1/2)` becomes `3\\frac{1}{2}` (MATH's spelling,
    which the grader reads as 3 + 1/2); anything else as released."""
    match = _MATH23K_MIXED.match(answer.strip())
    if not match:
        return answer
    sign, whole, numerator, denominator = match.groups()
    return f"{sign}{whole}\\frac{{{numerator}}}{{{denominator}}}"


def math23k_item(row: dict, where: str, index: int, name: str) -> EvalItem:
    """Math23K: `original_text` (the unsegmented Chinese problem) and its answer `ans` (`math23k_gold`)."""
    question = _text(row, where, ("original_text", "segmented_text"), name)
    gold = math23k_gold(_number_text(_field(row, where, ("ans",), name)))
    return {"id": _item_id(name, row.get("id"), index), "benchmark": name, "question": question, "answer": gold,
            "meta": {}}


def file_item(row: dict, where: str, index: int, name: str) -> EvalItem:
    item_id = _text(row, where, ("id",), "EvalItem")
    question = _text(row, where, ("question",), "EvalItem")
    # an empty gold is kept as read: RFT and GRPO exclude such items and count them (a reward must never come
    # from an unreadable gold); grading one in evaluation is an error (is_equivalent refuses an empty gold)
    gold = _text(row, where, ("answer",), "EvalItem", allow_empty=True)
    meta = row.get("meta") or {}
    if not isinstance(meta, dict):
        raise DataError(f"{where}: field 'meta' should be a mapping, got {type(meta).__name__}")
    return {"id": item_id, "benchmark": str(row.get("benchmark") or name), "question": question, "answer": gold,
            "meta": dict(meta)}


# hendrycks/competition_math was taken down from the hub; EleutherAI/hendrycks_math is the same 12,500
# problems split into one config per subject, and has no config that holds them all.
MATH_SUBJECTS = ("algebra", "counting_and_probability", "geometry", "intermediate_algebra", "number_theory",
                 "prealgebra", "precalculus")

BENCHMARKS: dict[str, Benchmark] = {
    "gsm8k": Benchmark("gsm8k", "openai/gsm8k", ("main",), "test", ("question", "answer"),
                       "https://huggingface.co/datasets/openai/gsm8k", gsm8k_item),
    "math": Benchmark("math", "EleutherAI/hendrycks_math", MATH_SUBJECTS, "test",
                      ("problem", "solution", "level", "type"),
                      "https://huggingface.co/datasets/EleutherAI/hendrycks_math", math_item),
    "math500": Benchmark("math500", "HuggingFaceH4/MATH-500", (None,), "test",
                         ("problem", "answer", "level", "subject", "unique_id"),
                         "https://huggingface.co/datasets/HuggingFaceH4/MATH-500", math500_item),
    "svamp": Benchmark("svamp", "ChilleD/SVAMP", (None,), "test", ("ID", "Body", "Question", "Answer", "Type"),
                       "https://huggingface.co/datasets/ChilleD/SVAMP", svamp_item),
    # GSM8K's test relabelled, ambiguous questions removed (1,209 of 1,319 kept; Vendrow et al. 2025).
    "gsm8k_platinum": Benchmark("gsm8k_platinum", "madrylab/gsm8k-platinum", ("main",), "test",
                                ("question", "answer", "cleaning_status"),
                                "https://huggingface.co/datasets/madrylab/gsm8k-platinum", gsm8k_platinum_item),
    # MGSM's Chinese split (250 GSM8K test questions translated; Shi et al. 2022), as DeepSeekMath reports it.
    "mgsm_zh": Benchmark("mgsm_zh", "juletxara/mgsm", ("zh",), "test", ("question", "answer_number"),
                         "https://huggingface.co/datasets/juletxara/mgsm", mgsm_item),
    # CMATH (Wei et al. 2023): Chinese elementary-school word problems, grades 1-6 (cmath_test.jsonl -> test).
    "cmath": Benchmark("cmath", "weitianwen/cmath", (None,), "test", ("question", "golden", "grade", "id"),
                       "https://huggingface.co/datasets/weitianwen/cmath", cmath_item),
    # --- 2026's reasoning-model sets (issue 26) ---
    # AIME 2024 I and II, 30 problems (a single `train` split on the hub).
    "aime24": Benchmark("aime24", "HuggingFaceH4/aime_2024", (None,), "train", ("id", "problem", "answer", "url"),
                        "https://huggingface.co/datasets/HuggingFaceH4/aime_2024", aime_item),
    # AIME 2025 I and II, 15 problems each, one config per part.
    "aime25": Benchmark("aime25", "opencompass/AIME2025", ("AIME2025-I", "AIME2025-II"), "test",
                        ("question", "answer"), "https://huggingface.co/datasets/opencompass/AIME2025", aime_item),
    # AMC 12 2023, the 40 problems Qwen2.5-Math, SimpleRL-Zoo and Oat report.
    "amc23": Benchmark("amc23", "math-ai/amc23", (None,), "test", ("id", "question", "answer"),
                       "https://huggingface.co/datasets/math-ai/amc23", amc_item),
    # OlympiadBench (He et al. 2024): the English, text-only, open-ended maths competition subset (675 problems).
    "olympiadbench": Benchmark("olympiadbench", "Hothan/OlympiadBench", ("OE_TO_maths_en_COMP",), "train",
                               ("id", "question", "final_answer", "is_multiple_answer", "unit", "answer_type",
                                "subfield"),
                               "https://huggingface.co/datasets/Hothan/OlympiadBench", olympiadbench_item),
    # Minerva's OCWCourses problems (Lewkowycz et al. 2022), 272 undergraduate science questions.
    "minerva_math": Benchmark("minerva_math", "math-ai/minervamath", (None,), "test", ("question", "answer"),
                              "https://huggingface.co/datasets/math-ai/minervamath", minerva_item),
    # GSM-Plus (Li et al. 2024): 8 perturbations of each GSM8K test question, 10,552 rows (testmini: 2,400).
    "gsm_plus": Benchmark("gsm_plus", "qintongli/GSM-Plus", (None,), "test",
                          ("question", "answer", "perturbation_type"),
                          "https://huggingface.co/datasets/qintongli/GSM-Plus", gsm_plus_item),
    # Math401 (Yuan et al. 2023, "How well do LLMs perform in arithmetic tasks?"): 401 expressions; the hub copy
    # keeps the released file's rows in order under `question`/`answer` (train split).
    "math401": Benchmark("math401", "tfshaman/Math401_test", (None,), "train", ("question", "answer"),
                         "https://huggingface.co/datasets/tfshaman/Math401_test", math401_item),
    # Math23K (Wang et al. 2017): Chinese elementary word problems; the 1,000-problem test split.
    "math23k": Benchmark("math23k", "Gxg/Math23K", (None,), "test", ("id", "original_text", "ans"),
                         "https://huggingface.co/datasets/Gxg/Math23K", math23k_item),
}
NAMES = (*BENCHMARKS, "file")  # `file`: EvalItem records from a local path


def get(name: str) -> Benchmark:
    """The benchmark called `name`, or a DataError listing the known ones."""
    if name not in BENCHMARKS:
        raise DataError(f"unknown benchmark {name!r}; expected one of {', '.join(NAMES)}")
    return BENCHMARKS[name]


def benchmark_name(benchmark: str, path: str | None) -> str:
    """The name results are filed under: the benchmark, or for `file` the file's stem."""
    return Path(path).stem if benchmark == "file" and path else benchmark


def source_of(benchmark: str, *, path: str | Path | None = None, hub: str | None = None,
              config: str | None = None, split: str | None = None) -> dict[str, Any]:
    """Where `load_items` reads from, as a manifest record: {path} or {hub, configs, split}."""
    if path is not None:
        return {"path": str(path)}
    if benchmark == "file":  # EvalItem records: a local file, or a hub dataset in that schema
        if hub is None:
            raise DataError("benchmark=file needs `path` (an EvalItem .jsonl/.json/.parquet file)")
        return {"hub": hub, "configs": [config], "split": split or "test"}
    spec = get(benchmark)
    configs = [config] if (hub is not None or config is not None) else list(spec.configs)
    return {"hub": hub or spec.hub, "configs": configs, "split": split or spec.split}


def _rows(benchmark: str, path: str | Path | None, hub: str | None, config: str | None,
          split: str | None) -> Iterator[tuple[str, dict]]:
    """(where, row) pairs from the local file, or from the hub (the benchmark's defaults fill what is unset)."""
    if path is not None:
        yield from read_file_rows(Path(path).expanduser())
        return
    source = source_of(benchmark, hub=hub, config=config, split=split)
    for one in source["configs"]:
        yield from read_hub_rows(source["hub"], one, source["split"])


def load_items(benchmark: str, *, path: str | Path | None = None, hub: str | None = None,
               config: str | None = None, split: str | None = None, n: int | None = None) -> list[EvalItem]:
    """The first `n` (all when None) items of a benchmark, from `path` when given, else from the hub.

    Raises DataError for an unknown benchmark, a missing file, a row without a needed field, duplicate ids
    (predictions are matched and resumed by id) or no items at all.
    """
    if benchmark not in NAMES:
        raise DataError(f"unknown benchmark {benchmark!r}; expected one of {', '.join(NAMES)}")
    if n is not None and n <= 0:
        raise DataError(f"n: expected a positive number of items (or null for all), got {n}")
    if path is not None and not Path(path).expanduser().is_file():
        what = "is a folder, not a" if Path(path).expanduser().is_dir() else "not found: expected a"
        raise DataError(f"{path}: {what} benchmark file (.jsonl, .json or .parquet)")
    to_item = file_item if benchmark == "file" else BENCHMARKS[benchmark].to_item
    name = benchmark_name(benchmark, str(path) if path is not None else None)
    items: list[EvalItem] = []
    seen: dict[str, str] = {}
    for index, (where, row) in enumerate(_rows(benchmark, path, hub, config, split)):
        if n is not None and len(items) >= n:
            break
        item = to_item(row, where, index, name)
        if item["id"] in seen:
            raise DataError(f"{where}: duplicate item id {item['id']!r} (first at {seen[item['id']]}); "
                            "ids must be unique so predictions can be matched and resumed")
        seen[item["id"]] = where
        items.append(item)
    if not items:
        where = path or source_of(benchmark, hub=hub, config=config, split=split)["hub"]
        raise DataError(f"benchmark {name}: no items read from {where}")
    return items


def load_questions(benchmark: str, *, path: str | Path | None = None, hub: str | None = None,
                   config: str | None = None, split: str | None = None) -> tuple[list[str], dict[str, Any]]:
    """(every question of the benchmark, where they came from): what decontamination compares against."""
    items = load_items(benchmark, path=path, hub=hub, config=config, split=split)
    return [item["question"] for item in items], source_of(benchmark, path=path, hub=hub, config=config,
                                                           split=split)
