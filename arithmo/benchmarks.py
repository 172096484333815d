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
- file: EvalItem records (`id`, `question`, `answer`, optional `meta` and `benchmark`).
A row without a needed field is a DataError naming the file, the line and the field.
"""

from __future__ import annotations

import math
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
