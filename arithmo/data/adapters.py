"""Source adapters: the only code that knows each source's column names (docs/design.md, "Records").

An adapter turns one raw row into the fields of a MathExample, or names why the row is unusable.
A row missing a column the adapter needs is not "unusable": it means the file is not in the schema
the recipe claims, so it raises DataError naming the row and the column.

Schemas (from the datasets' cards on the hub):
- MetaMathQA (meta-math/MetaMathQA): query, response, type, original_question; every response ends in
  "The answer is: X". `type` is e.g. GSM_AnsAug, GSM_Rephrased, GSM_SV, GSM_FOBAR, MATH_AnsAug.
- MathInstruct (TIGER-Lab/MathInstruct): instruction, output, source; `source` is the file it came
  from, e.g. "data/CoT/gsm_rft.json" or "data/PoT/mathqa.json" -- the folder says CoT or PoT.
- Lila (allenai/lila, configs per task plus `iid` and `ood`): input, output_program, output_answer,
  split, dataset; every row is a program (PoT).
- DART-Math (hkust-nlp/dart-math-hard, hkust-nlp/dart-math-uniform): query, response; CoT responses by
  DeepSeekMath-7B-RL to GSM8K/MATH train queries, several per hard query on purpose (Tong et al. 2024).
- OpenMathInstruct-2 (nvidia/OpenMathInstruct-2; splits train, train_1M, train_2M, train_5M): problem,
  generated_solution, expected_answer, problem_source (gsm8k, math, augmented_gsm8k, augmented_math).
- NuminaMath-CoT (AI-MO/NuminaMath-CoT): source, problem, solution, messages (the same pair as a chat).
- GSM8K train (openai/gsm8k, config main): question, answer (ends "#### <number>").
- MATH train (EleutherAI/hendrycks_math, one config per subject): problem, level, type, solution (\\boxed).
The generic formats a user brings from other kits (chat messages, alpaca, TRL prompt-completion) are in
`arithmo.data.formats` and registered here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from arithmo.io import DataError

Mapped = dict[str, Any]  # question, solution, style, answer, meta


def _require(row: dict, keys: tuple[str, ...], where: str, adapter: str) -> None:
    missing = [k for k in keys if k not in row]
    if missing:
        present = ", ".join(sorted(map(str, row))) or "none"
        raise DataError(
            f"{where}: missing field(s) {', '.join(repr(k) for k in missing)} for the {adapter} schema "
            f"(fields present: {present})"
        )


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _skip_reason(question: str, solution: str) -> str | None:
    if not question:
        return "empty_question"
    if not solution:
        return "empty_solution"
    return None


def adapt_metamathqa(row: dict, where: str) -> Mapped | str:
    _require(row, ("query", "response"), where, "MetaMathQA")
    question, solution = _text(row["query"]), _text(row["response"])
    reason = _skip_reason(question, solution)
    if reason:
        return reason
    meta = {"type": _text(row.get("type")), "original_question": _text(row.get("original_question"))}
    return {"question": question, "solution": solution, "style": "cot", "answer": None, "meta": meta}


def mathinstruct_style(source_path: str) -> str:
    """MathInstruct's `source` is a path like data/PoT/mathqa.json; the folder names the style."""
    parts = [p.lower() for p in source_path.replace("\\", "/").split("/")]
    return "pot" if "pot" in parts else "cot"


def adapt_mathinstruct(row: dict, where: str) -> Mapped | str:
    _require(row, ("instruction", "output", "source"), where, "MathInstruct")
    question, solution = _text(row["instruction"]), _text(row["output"])
    reason = _skip_reason(question, solution)
    if reason:
        return reason
    path = _text(row["source"])
    return {"question": question, "solution": solution, "style": mathinstruct_style(path),
            "answer": None, "meta": {"path": path}}


def adapt_lila(row: dict, where: str) -> Mapped | str:
    _require(row, ("input", "output_program"), where, "Lila")
    question, program = _text(row["input"]), _text(row["output_program"])
    reason = _skip_reason(question, program)
    if reason:
        return reason
    answer = _text(row.get("output_answer")) or None
    meta = {"dataset": _text(row.get("dataset")), "split": _text(row.get("split"))}
    return {"question": question, "solution": program, "style": "pot", "answer": answer, "meta": meta}


def _cot(question: str, solution: str, answer: str | None = None, meta: dict | None = None) -> Mapped | str:
    reason = _skip_reason(question, solution)
    if reason:
        return reason
    return {"question": question, "solution": solution, "style": "cot", "answer": answer, "meta": meta or {}}


def adapt_dart_math(row: dict, where: str) -> Mapped | str:
    _require(row, ("query", "response"), where, "DART-Math")
    return _cot(_text(row["query"]), _text(row["response"]))


def adapt_openmath2(row: dict, where: str) -> Mapped | str:
    _require(row, ("problem", "generated_solution"), where, "OpenMathInstruct-2")
    # expected_answer: the reference answer for GSM8K/MATH problems, the majority vote for augmented ones
    # (the card); kept as the row's answer unless the solution's own final answer is extracted.
    return _cot(_text(row["problem"]), _text(row["generated_solution"]), _text(row.get("expected_answer")) or None,
                {"problem_source": _text(row.get("problem_source"))})


def adapt_numinamath(row: dict, where: str) -> Mapped | str:
    _require(row, ("problem", "solution"), where, "NuminaMath-CoT")
    # `messages` repeats problem and solution as a user/assistant pair; the plain columns are read.
    return _cot(_text(row["problem"]), _text(row["solution"]), meta={"source": _text(row.get("source"))})


def adapt_numinamath_tir(row: dict, where: str) -> Mapped | str:
    """NuminaMath-TIR: `problem`, and a `solution` that interleaves text, ```python blocks and their recorded
    ```output blocks, ending in a boxed answer (style tir; `messages` repeats the pair and is not read)."""
    _require(row, ("problem", "solution"), where, "NuminaMath-TIR")
    question, solution = _text(row["problem"]), _text(row["solution"])
    reason = _skip_reason(question, solution)
    if reason:
        return reason
    if "```python" not in solution:
        return "tir_no_code"  # a solution without a code block is not tool-integrated
    return {"question": question, "solution": solution, "style": "tir", "answer": None, "meta": {}}


def adapt_gsm8k(row: dict, where: str) -> Mapped | str:
    _require(row, ("question", "answer"), where, "GSM8K")
    return _cot(_text(row["question"]), _text(row["answer"]))  # the "#### X" tail is folded by transforms


def adapt_math(row: dict, where: str) -> Mapped | str:
    _require(row, ("problem", "solution"), where, "MATH")
    meta = {"level": _text(row.get("level")), "type": _text(row.get("type"))}
    return _cot(_text(row["problem"]), _text(row["solution"]), meta=meta)


ADAPTERS: dict[str, Callable[[dict, str], Mapped | str]] = {
    "metamathqa": adapt_metamathqa,
    "mathinstruct": adapt_mathinstruct,
    "lila": adapt_lila,
    "dart_math": adapt_dart_math,
    "openmath2": adapt_openmath2,
    "numinamath": adapt_numinamath,
    "numinamath_tir": adapt_numinamath_tir,
    "gsm8k_train": adapt_gsm8k,
    "math_train": adapt_math,
}

# Every column each adapter reads (required or not): tests/test_hub_schemas.py checks them against the cards.
COLUMNS: dict[str, tuple[str, ...]] = {
    "metamathqa": ("query", "response", "type", "original_question"),
    "mathinstruct": ("instruction", "output", "source"),
    "lila": ("input", "output_program", "output_answer", "dataset", "split"),
    "dart_math": ("query", "response"),
    "openmath2": ("problem", "generated_solution", "expected_answer", "problem_source"),
    "numinamath": ("source", "problem", "solution"),
    "numinamath_tir": ("problem", "solution"),
    "gsm8k_train": ("question", "answer"),
    "math_train": ("problem", "solution", "level", "type"),
}

# The generic formats: their columns depend on the kit that wrote them (messages/conversations, role/from ...).
from arithmo.data.formats import FORMATS  # noqa: E402  (formats.py imports the helpers above)

ADAPTERS.update(FORMATS)
COLUMNS.update({name: () for name in FORMATS})

# Local Lila files hold all splits in one file: the `split` column selects rows.
SPLIT_COLUMN = {"lila": "split"}
