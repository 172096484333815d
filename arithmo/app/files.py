"""What the app reads from disk: example questions (benchmark rows) and evaluation results.

    examples, where = load_examples({"gsm8k": "gsm8k_test.jsonl", "math": None})  # a file, or None: the hub
    examples, where = load_examples()                  # the tiny held-out set and a few of our own
    found = find_metrics("runs")                       # {"demo": [runs/demo/eval/heldout_pot/metrics.json, ...]}
    results, problems = load_metrics(found["demo"])    # a file that is not a metrics.json is a problem, not a crash
    overview, by_level, by_type = metrics_tables(results)
    intervals = interval_table(results)                # every accuracy with its 95% Wilson interval
    figure = results_figure(results)                   # the same as bars with error bars (arithmo.report)

Benchmark rows are read through `arithmo.benchmarks` (the gold answer as evaluation reads it) and results
through `arithmo.runs`. Pure functions; `app.py` shows what they return.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arithmo.benchmarks import load_items
from arithmo.runs import RunError, eval_label, find_metrics, read_metrics

REPO = Path(__file__).resolve().parents[2]
TINY_HELDOUT = REPO / "data_recipes" / "tiny" / "heldout.jsonl"  # EvalItems written by data_recipes/make_tiny.py

__all__ = ["Example", "FALLBACK_EXAMPLES", "find_metrics", "interval_table", "load_examples", "load_metrics",
           "metrics_tables", "results_figure", "seed_notes"]

# ----------------------------------------------------------------------------------------------
# examples


@dataclass(frozen=True)
class Example:
    question: str
    answer: str  # the reference answer, as evaluation reads it (GSM8K: after '####'; MATH: the last \boxed{})
    label: str  # where it comes from, shown beside the example


# Written for this project, used when no benchmark file is given: two word problems and two MATH-style
# ones, with answers worked by hand.
FALLBACK_EXAMPLES = (
    Example("A baker makes 24 muffins and sells 3 boxes of 6 muffins. How many muffins are left?", "6",
            "arithmo (fallback)"),
    Example("Mia reads 15 pages a day for 2 weeks. How many pages does she read?", "210", "arithmo (fallback)"),
    Example("What is the sum of the solutions of $x^2 - 7x + 10 = 0$?", "7", "arithmo (fallback)"),
    Example("Express $\\frac{3}{8} + \\frac{1}{4}$ as a common fraction.", "\\frac{5}{8}", "arithmo (fallback)"),
)
LABELS = {"gsm8k": "GSM8K test", "math": "MATH", "math500": "MATH-500", "svamp": "SVAMP test"}
BY_SUBJECT = ("math", "math500")  # benchmarks with subjects and levels: one short example per subject


def load_examples(benchmarks: dict[str, str | Path | None] | None = None, per_benchmark: int = 4,
                  max_chars: int = 300, max_level: int = 3,
                  heldout_path: str | Path | None = None) -> tuple[list[Example], str]:
    """(examples, a line saying where they came from): two rows of the tiny held-out set, then for each of
    `benchmarks` ({name: a local file in its schema, or None for the hub}) its first `per_benchmark` rows;
    for MATH-like benchmarks short problems (<= max_chars) of level <= max_level, one per subject. Without
    benchmarks, `FALLBACK_EXAMPLES` instead.

    Raises DataError (a ValueError) naming the file, line and field of a row that cannot be read.
    """
    examples: list[Example] = []
    # The CPU demo's held-out word problems first (written by this project): the demo adapter learned
    # their kind, so they show what training changed.
    heldout = Path(heldout_path) if heldout_path is not None else TINY_HELDOUT
    if heldout.is_file():
        for number, item in enumerate(load_items("file", path=heldout, n=2), 1):
            examples.append(Example(item["question"], item["answer"], f"tiny held-out #{number}"))
    if not benchmarks:
        return examples + list(FALLBACK_EXAMPLES), "built-in examples (start the app with --examples to use " \
                                                    "benchmark rows)"
    for name, path in benchmarks.items():
        label = LABELS.get(name, name)
        if name not in BY_SUBJECT:
            for number, item in enumerate(load_items(name, path=path, n=per_benchmark), 1):
                examples.append(Example(item["question"], item["answer"], f"{label} #{number}"))
            continue
        subjects: set[str] = set()
        for item in load_items(name, path=path):
            if len(subjects) >= per_benchmark:
                break
            subject, level = item["meta"].get("type", ""), str(item["meta"].get("level", "")).removeprefix("Level ")
            if subject in subjects or len(item["question"]) > max_chars or not (level.isdigit()
                                                                                 and int(level) <= max_level):
                continue  # one per subject, short enough to read at a glance, not the hardest levels
            subjects.add(subject)
            examples.append(Example(item["question"], item["answer"], f"{label} {subject}, Level {level}"))
    where = ", ".join(f"{name} ({path if path is not None else 'hub'})" for name, path in benchmarks.items())
    return examples, f"benchmark rows: {where}"


# ----------------------------------------------------------------------------------------------
# evaluation results

OVERVIEW_HEADERS = ["eval", "benchmark", "style", "n", "accuracy %", "flexible %", "maj@k %", "no answer %",
                    "exec error %", "timeout %", "model", "adapter"]
LEVEL_HEADERS = ["eval", "level", "n", "correct", "accuracy %"]
TYPE_HEADERS = ["eval", "type", "n", "correct", "accuracy %"]
INTERVAL_HEADERS = ["eval", "accuracy", "group", "n", "accuracy %", "95% low %", "95% high %"]


def _percent(value: Any) -> float | None:
    return None if value is None else round(100 * float(value), 1)


def load_metrics(paths: list[Path]) -> tuple[list[dict], list[str]]:
    """(metrics dicts, problems): each readable metrics.json (arithmo.runs.read_metrics) gains `_eval`
    (run/folder name) and `_path`; each file that is not one is a problem line naming the file and what is
    wrong, so none is dropped silently."""
    results, problems = [], []
    for path in paths:
        try:
            metrics: dict[str, Any] = dict(read_metrics(path))
        except RunError as err:
            problems.append(str(err))
            continue
        metrics["_eval"] = eval_label(path)
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


def interval_table(results: list[dict]) -> list[list[Any]]:
    """Rows (INTERVAL_HEADERS) of every accuracy of each result with its 95% Wilson interval, in %: strict,
    flexible, math-verify, maj@k, avg@k (its interval a bootstrap over items), then each level and type group. metrics.json's `ci95`, or the same computed
    from the counts for files written before it (arithmo.evaluation.intervals)."""
    from arithmo.evaluation.intervals import intervals_of

    rows = []
    for metrics in results:
        ci = intervals_of(metrics)
        maj = metrics.get("maj_k") or {}
        overall = [("strict", metrics["accuracy"], ci["accuracy"]),
                   ("flexible", metrics.get("accuracy_flexible"), ci["accuracy_flexible"]),
                   ("math-verify", metrics.get("accuracy_math_verify"), ci["accuracy_math_verify"]),
                   (f"maj@{maj.get('k')}", maj.get("accuracy"), ci["maj_k"])]
        avg = metrics.get("avg_k") or {}  # k samples per item: their mean, interval bootstrapped over items
        if avg.get("accuracy") is not None:
            overall.append((f"avg@{avg['k']}", avg["accuracy"], avg.get("ci95") or [None, None]))
        for name, value, bounds in overall:
            if value is not None:
                rows.append([metrics["_eval"], name, "all", metrics["n"], _percent(value), *map(_percent, bounds)])
        for key, kind in (("by_level", "level"), ("by_type", "type")):
            for group, numbers in (metrics.get(key) or {}).items():
                bounds = ci[key].get(group) or [None, None]
                rows.append([metrics["_eval"], f"strict, by {kind}", group, numbers.get("n"),
                             _percent(numbers.get("accuracy")), *map(_percent, bounds)])
    return rows


def seed_notes(results: list[dict]) -> list[str]:
    """One line per result evaluated over several seeds: maj@k's mean, std, min and max across them."""
    from arithmo.evaluation.metrics import format_seeds

    return [f"{metrics['_eval']}: {format_seeds(metrics['maj_k_seeds'])}" for metrics in results
            if metrics.get("maj_k_seeds")]


def results_figure(results: list[dict]):
    """A matplotlib Figure of the results side by side (overall, by level, by type) with their 95% intervals
    as error bars (arithmo.report.compare_figure), labelled by eval; None without results."""
    from arithmo.report import compare_figure

    return compare_figure(results, labels=[metrics["_eval"] for metrics in results]) if results else None
