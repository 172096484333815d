"""What the demo reads from disk: example questions (real GSM8K/MATH rows) and evaluation results.

    examples, where = load_examples()                 # ../shared/data when present, else a few of our own
    found = find_metrics("runs")                      # {"demo": [runs/demo/eval/heldout_pot/metrics.json, ...]}
    results, problems = load_metrics(found["demo"])   # a file that is not a metrics.json is a problem, not a crash
    overview, by_level, by_type = metrics_tables(results)

Pure functions; `app.py` shows what they return.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arithmo.data.sources import read_file_rows

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"  # real GSM8K/MATH rows beside the checkout; never copied in
TINY_HELDOUT = REPO / "data_recipes" / "tiny" / "heldout.jsonl"  # EvalItems written by data_recipes/make_tiny.py

# ----------------------------------------------------------------------------------------------
# examples


@dataclass(frozen=True)
class Example:
    question: str
    answer: str  # the reference answer (GSM8K: after '####'; MATH: the last \boxed{})
    label: str  # where it comes from, shown beside the example


# Written for this project, used only when ../shared/data is absent: two word problems and two MATH-style
# ones, with answers worked by hand.
FALLBACK_EXAMPLES = (
    Example("A baker makes 24 muffins and sells 3 boxes of 6 muffins. How many muffins are left?", "6",
            "arithmo (fallback)"),
    Example("Mia reads 15 pages a day for 2 weeks. How many pages does she read?", "210", "arithmo (fallback)"),
    Example("What is the sum of the solutions of $x^2 - 7x + 10 = 0$?", "7", "arithmo (fallback)"),
    Example("Express $\\frac{3}{8} + \\frac{1}{4}$ as a common fraction.", "\\frac{5}{8}", "arithmo (fallback)"),
)


def load_examples(data_dir: str | Path | None = None, per_benchmark: int = 4, max_chars: int = 300,
                  max_level: int = 3, heldout_path: str | Path | None = None) -> tuple[list[Example], str]:
    """(examples, a line saying where they came from): two rows of the tiny held-out set, then the first
    GSM8K test rows and short MATH rows of level <= max_level from different subjects, from `data_dir`
    (default ../shared/data); without it, `FALLBACK_EXAMPLES` instead of GSM8K and MATH.

    A row that cannot be read is a ValueError naming the file and line.
    """
    from arithmo.evaluation.benchmarks import gsm8k_gold, math_gold

    examples: list[Example] = []
    # The CPU demo's held-out word problems first (written by this project): the demo adapter learned
    # their kind, so they show what training changed.
    heldout = Path(heldout_path) if heldout_path is not None else TINY_HELDOUT
    if heldout.is_file():
        for number, row in _jsonl(heldout):
            if number > 2:
                break
            examples.append(Example(_text(row, "question", heldout, number), _text(row, "answer", heldout, number),
                                    f"tiny held-out #{number}"))
    folder = Path(data_dir) if data_dir is not None else SHARED_DATA
    gsm8k, math = folder / "gsm8k" / "test_first300.jsonl", folder / "math" / "test_dev500.jsonl"
    if not gsm8k.is_file() or not math.is_file():
        return examples + list(FALLBACK_EXAMPLES), f"built-in examples ({gsm8k} or {math} is absent)"
    for number, row in _jsonl(gsm8k):
        if number > per_benchmark:
            break
        solution = _text(row, "answer", gsm8k, number)
        examples.append(Example(_text(row, "question", gsm8k, number), gsm8k_gold(solution, f"{gsm8k}:{number}"),
                                f"GSM8K test #{number}"))
    subjects: set[str] = set()
    for number, row in _jsonl(math):
        if len(subjects) >= per_benchmark:
            break
        problem, subject = _text(row, "problem", math, number), _text(row, "type", math, number)
        level = _text(row, "level", math, number).removeprefix("Level ")
        if subject in subjects or len(problem) > max_chars or not (level.isdigit() and int(level) <= max_level):
            continue  # one per subject, short enough to read at a glance, not the hardest levels
        subjects.add(subject)
        solution = _text(row, "solution", math, number)
        examples.append(Example(problem, math_gold(solution, f"{math}:{number}"), f"MATH {subject}, Level {level}"))
    return examples, f"real rows from {folder} (GSM8K test, MATH test dev-500)"


def _jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, row) pairs; a bad line raises DataError (a ValueError) naming the file and line."""
    for where, row in read_file_rows(path):
        yield int(where.rsplit(":", 1)[1]), row


def _text(row: dict, key: str, path: Path, number: int) -> str:
    value = row.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{path}:{number}: expected a non-empty text field '{key}' "
                         f"(fields present: {', '.join(sorted(row))})")
    return value.strip()


# ----------------------------------------------------------------------------------------------
# evaluation results

REQUIRED_KEYS = ("benchmark", "style", "n", "accuracy")  # DESIGN.md "metrics.json": the ones every table needs
OVERVIEW_HEADERS = ["eval", "benchmark", "style", "n", "accuracy %", "flexible %", "maj@k %", "no answer %",
                    "exec error %", "timeout %", "model", "adapter"]
LEVEL_HEADERS = ["eval", "level", "n", "correct", "accuracy %"]
TYPE_HEADERS = ["eval", "type", "n", "correct", "accuracy %"]


def find_metrics(runs_dir: str | Path) -> dict[str, list[Path]]:
    """{run: its metrics.json files} under `runs_dir`, sorted.

    A training run's results sit in runs/<name>/eval/<benchmark>_<style>/metrics.json (run "<name>");
    an evaluation without a run in runs/eval/<model>/<benchmark>_<style>/metrics.json (run "eval/<model>").
    """
    root = Path(runs_dir)
    found: dict[str, list[Path]] = {}
    if not root.is_dir():
        return found
    for path in sorted(root.rglob("metrics.json")):
        parent = path.parent.parent
        run = parent.parent if parent.name == "eval" else parent
        label = run.relative_to(root).as_posix() if run != root else "."
        found.setdefault(label, []).append(path)
    return dict(sorted(found.items()))


def _percent(value: Any) -> float | None:
    return None if value is None else round(100 * float(value), 1)


def load_metrics(paths: list[Path]) -> tuple[list[dict], list[str]]:
    """(metrics dicts, problems): each readable metrics.json gains `_eval` (run/folder name) and `_path`;
    each file that is not one is a problem line naming the file and what is wrong, so none is dropped
    silently."""
    results, problems = [], []
    for path in paths:
        try:
            metrics = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            problems.append(f"{path}: cannot be read as JSON ({err})")
            continue
        if not isinstance(metrics, dict):
            problems.append(f"{path}: expected a JSON object (an arithmo metrics.json), got {type(metrics).__name__}")
            continue
        missing = [key for key in REQUIRED_KEYS if key not in metrics]
        if missing:
            problems.append(f"{path}: no {', '.join(repr(k) for k in missing)} (expected an arithmo metrics.json "
                            f"with {', '.join(REQUIRED_KEYS)})")
            continue
        accuracy = metrics["accuracy"]
        if not isinstance(accuracy, (int, float)) or isinstance(accuracy, bool) or not 0 <= accuracy <= 1 \
                or math.isnan(accuracy):
            problems.append(f"{path}: 'accuracy' should be a number from 0 to 1, got {accuracy!r}")
            continue
        path = Path(path)
        run_folder = path.parent.parent.parent if path.parent.parent.name == "eval" else path.parent.parent
        metrics["_eval"] = f"{run_folder.name}/{path.parent.name}"
        metrics["_path"] = str(path)
        results.append(metrics)
    return results, problems


def metrics_tables(results: list[dict]) -> tuple[list[list[Any]], list[list[Any]], list[list[Any]]]:
    """(overview, by level, by type) rows, headers OVERVIEW_HEADERS, LEVEL_HEADERS, TYPE_HEADERS; rates in %."""
    overview, levels, types = [], [], []
    for metrics in results:
        maj = metrics.get("maj_k") or {}
        overview.append([metrics["_eval"], metrics["benchmark"], metrics["style"], metrics["n"],
                         _percent(metrics["accuracy"]), _percent(metrics.get("accuracy_flexible")),
                         _percent(maj.get("accuracy")), _percent(metrics.get("no_answer_rate")),
                         _percent(metrics.get("exec_error_rate")), _percent(metrics.get("exec_timeout_rate")),
                         metrics.get("model") or "", metrics.get("adapter") or ""])
        for key, rows in (("by_level", levels), ("by_type", types)):
            for group, numbers in (metrics.get(key) or {}).items():
                rows.append([metrics["_eval"], group, numbers.get("n"), numbers.get("correct"),
                             _percent(numbers.get("accuracy"))])
    return overview, levels, types
