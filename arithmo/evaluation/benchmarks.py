"""Benchmark loaders: rows of GSM8K, MATH, MATH-500, SVAMP or an EvalItem file -> EvalItem records.

    items = load_items("gsm8k", path="../shared/data/gsm8k/test_first300.jsonl", n=50)

Every benchmark has a hub id by default (below) and can instead be a local .jsonl/.json/.parquet file in
the benchmark's own schema. These loaders are the only code that knows each benchmark's column names:
- GSM8K (`question`, `answer`): gold = the text after the last `####` (Cobbe et al. 2021 end every
  solution with `#### <number>`), thousands separators removed ("2,125" -> "2125"). MetaMath's eval copy
  (`query`, `response`) is the same content and is read too.
- MATH (`problem`, `solution`, `level`, `type`): gold = the last `\\boxed{}` of the solution, found by
  arithmo.grading's extraction; meta keeps level and type.
- MATH-500 (`problem`, `solution`, `answer`, `subject`, `level` 1-5, `unique_id`): gold = `answer`; meta
  level as "Level N" (MATH's spelling, so by-level tables line up) and type = subject.
- SVAMP (`Body`, `Question`, `Answer`, `Type`, `ID`): question = Body + " " + Question.
- file: EvalItem records (`id`, `question`, `answer`, optional `meta` and `benchmark`).
A row without a needed field is a DataError naming the file, the line and the field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arithmo.data.sources import DataError, read_file_rows, read_hub_rows
from arithmo.records import EvalItem


@dataclass(frozen=True)
class HubSource:
    hub: str
    config: str | None
    split: str
    configs: tuple[str, ...] = ()  # several hub configs read one after another (per-subject datasets)


# hendrycks/competition_math was taken down from the hub; EleutherAI/hendrycks_math is the same 12,500
# problems split into one config per subject.
MATH_SUBJECTS = ("algebra", "counting_and_probability", "geometry", "intermediate_algebra", "number_theory",
                 "prealgebra", "precalculus")
HUB_DEFAULTS: dict[str, HubSource] = {
    "gsm8k": HubSource("openai/gsm8k", "main", "test"),
    "math": HubSource("EleutherAI/hendrycks_math", None, "test", configs=MATH_SUBJECTS),
    "math500": HubSource("HuggingFaceH4/MATH-500", None, "test"),
    "svamp": HubSource("ChilleD/SVAMP", None, "test"),
}
BENCHMARKS = (*HUB_DEFAULTS, "file")


def _field(row: dict, where: str, names: tuple[str, ...], benchmark: str) -> Any:
    """The first of `names` present in `row` (not null), or a DataError naming the row and field."""
    for name in names:
        if row.get(name) is not None:
            return row[name]
    wanted = " or ".join(f"'{n}'" for n in names)
    raise DataError(f"{where}: {benchmark} row has no {wanted} field (fields present: {', '.join(sorted(row))})")


def _text(row: dict, where: str, names: tuple[str, ...], benchmark: str) -> str:
    value = _field(row, where, names, benchmark)
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise DataError(f"{where}: field '{names[0]}' should be text, got {type(value).__name__}")
    return str(value).strip()


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


def row_to_item(benchmark: str, where: str, row: dict, index: int, name: str) -> EvalItem:
    """One source row as an EvalItem. `name` is the benchmark name recorded on the item."""
    if benchmark == "gsm8k":
        question = _text(row, where, ("question", "query"), benchmark)
        gold = gsm8k_gold(_text(row, where, ("answer", "response"), benchmark), where)
        return {"id": f"{name}/{index:05d}", "benchmark": name, "question": question, "answer": gold, "meta": {}}
    if benchmark in ("math", "math500"):
        question = _text(row, where, ("problem",), benchmark)
        if benchmark == "math500" and row.get("answer") is not None:
            gold = _text(row, where, ("answer",), benchmark)
        else:
            gold = math_gold(_text(row, where, ("solution",), benchmark), where)
        meta = {"level": _level(_field(row, where, ("level",), benchmark)),
                "type": _text(row, where, ("type", "subject"), benchmark)}
        key = row.get("unique_id") or row.get("idx")
        item_id = f"{name}/{key}" if key is not None else f"{name}/{index:05d}"
        return {"id": item_id, "benchmark": name, "question": question, "answer": gold, "meta": meta}
    if benchmark == "svamp":
        if row.get("question_concat") is not None:
            question = _text(row, where, ("question_concat",), benchmark)
        else:
            body = _text(row, where, ("Body",), benchmark)
            question = f"{body.rstrip()} {_text(row, where, ('Question',), benchmark)}"
        gold = _number_text(_field(row, where, ("Answer",), benchmark))
        meta = {"type": str(row["Type"]).strip()} if row.get("Type") is not None else {}
        key = row.get("ID")
        item_id = f"{name}/{key}" if key is not None else f"{name}/{index:05d}"
        return {"id": item_id, "benchmark": name, "question": question, "answer": gold, "meta": meta}
    if benchmark == "file":
        item_id = _text(row, where, ("id",), "EvalItem")
        question = _text(row, where, ("question",), "EvalItem")
        gold = _text(row, where, ("answer",), "EvalItem")
        meta = row.get("meta") or {}
        if not isinstance(meta, dict):
            raise DataError(f"{where}: field 'meta' should be a mapping, got {type(meta).__name__}")
        return {"id": item_id, "benchmark": str(row.get("benchmark") or name), "question": question,
                "answer": gold, "meta": dict(meta)}
    raise DataError(f"unknown benchmark {benchmark!r}; expected one of {', '.join(BENCHMARKS)}")


def benchmark_name(benchmark: str, path: str | None) -> str:
    """The name results are filed under: the benchmark, or for `file` the file's stem."""
    return Path(path).stem if benchmark == "file" and path else benchmark


def _rows(benchmark: str, path: str | None, hub: str | None, config: str | None, split: str | None):
    """(where, row) pairs from the local file, or from the hub (the benchmark's defaults fill what is unset)."""
    if path is not None:
        yield from read_file_rows(Path(path).expanduser())
        return
    if benchmark == "file" and hub is None:
        raise DataError("benchmark=file needs `path` (an EvalItem .jsonl/.json/.parquet file)")
    default = HUB_DEFAULTS.get(benchmark, HubSource(hub or "", None, "test"))
    split = split or default.split
    if hub is not None or config is not None:  # the user's hub id and/or config, as given
        yield from read_hub_rows(hub or default.hub, config, split)
        return
    for one in default.configs or (default.config,):
        yield from read_hub_rows(default.hub, one, split)


def load_items(benchmark: str, *, path: str | None = None, hub: str | None = None, config: str | None = None,
               split: str | None = None, n: int | None = None) -> list[EvalItem]:
    """The first `n` (all when None) items of a benchmark, from `path` when given, else from the hub."""
    if benchmark not in BENCHMARKS:
        raise DataError(f"unknown benchmark {benchmark!r}; expected one of {', '.join(BENCHMARKS)}")
    if n is not None and n <= 0:
        raise DataError(f"n: expected a positive number of items (or null for all), got {n}")
    if path is not None and not Path(path).expanduser().is_file():
        raise DataError(f"{path}: benchmark file not found")
    name = benchmark_name(benchmark, path)
    items: list[EvalItem] = []
    seen: dict[str, str] = {}
    for index, (where, row) in enumerate(_rows(benchmark, path, hub, config, split)):
        if n is not None and len(items) >= n:
            break
        item = row_to_item(benchmark, where, row, index, name)
        if item["id"] in seen:
            raise DataError(f"{where}: duplicate item id {item['id']!r} (first at {seen[item['id']]}); "
                            "ids must be unique so predictions can be matched and resumed")
        seen[item["id"]] = where
        items.append(item)
    if not items:
        raise DataError(f"benchmark {name}: no items read from {path or hub or HUB_DEFAULTS[benchmark].hub}")
    return items
