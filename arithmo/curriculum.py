"""A curriculum by pass rate: keep the training questions the model solves sometimes, not never or always.

    rates = read_pass_rates("runs/rft_round1", styles=["cot"])     # or an evaluation folder
    kept, report = select_by_pass_rate(items, rates, 0.1, 0.9, unmatched="drop")

A group of completions that are all right or all wrong gets no advantage in GRPO, so questions the model always
or never solves spend rollouts for nothing (DAPO, arXiv 2503.14476 sec. 3.2, filters such groups during
training; open-r1 and DART-Math (Tong et al. 2024, arXiv 2407.13690) pick questions by pass rate before it).
A question's pass rate is correct / graded samples over the files' samples of the styles GRPO trains.

Sources (`read_pass_rates`, the format is recognised line by line):
- RFT (arithmo.rft): `<out>/samples.jsonl`, one line per round: {id, style, round, samples: [{reason, ...}]};
  a sample is correct when its verdict (`reason`) is "correct"; `unreadable_gold` samples are not graded.
- evaluation (arithmo.eval): `<folder>/predictions.jsonl`, one line per item and sample: {id, style, correct,
  gold, ...}.
A folder is searched for samples.jsonl, then predictions.jsonl (one of them, directly inside it).

Matching (`select_by_pass_rate`): by the question's `id` exactly as the benchmark loader writes it (both
recipes write the loader's ids), and, where the file has a gold answer (predictions), by that gold too, after
whitespace is collapsed: the same id with another gold names another question (a different split or version of
the data), counted as `gold_mismatch` and not matched. Questions without a rate are `unmatched`, dropped or kept
as asked, and counted; file lines for questions not being trained are counted as `extra`.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from arithmo.io import DataError

MAX_LINE_BYTES = 1 << 24  # a samples line holds k completions and programs; 16 MiB is far above any real one


@dataclass
class PassRates:
    """Per question id: graded samples, correct ones, and the gold the file saw (None when it has none)."""

    source: str
    kind: str  # "rft" | "eval"
    graded: dict[str, int] = field(default_factory=dict)
    correct: dict[str, int] = field(default_factory=dict)
    golds: dict[str, str | None] = field(default_factory=dict)
    other_styles: int = 0  # lines (rounds) of styles GRPO does not train, not counted
    ungraded: int = 0  # samples whose gold the grader could not read

    def rate(self, item_id: str) -> float | None:
        graded = self.graded.get(item_id, 0)
        return self.correct.get(item_id, 0) / graded if graded else None


def _find_file(path: Path) -> Path:
    if path.is_file():
        return path
    if path.is_dir():
        for name in ("samples.jsonl", "predictions.jsonl"):
            if (path / name).is_file():
                return path / name
        raise DataError(f"curriculum={path}: the folder has neither samples.jsonl (an RFT output folder) nor "
                        "predictions.jsonl (an evaluation folder)")
    raise DataError(f"curriculum={path}: no such file or folder")


def _norm(text: Any) -> str:
    return " ".join(str(text).split())


def read_pass_rates(path: str | Path, styles: list[str]) -> PassRates:
    """Pass rates per question id from an RFT or evaluation file or folder, counting samples of `styles` only.

    Raises DataError naming the file and line for a line that is not JSON, too long, or of neither format, and for
    a file holding no line of `styles`.
    """
    file = _find_file(Path(path))
    rates: PassRates | None = None
    wanted = set(styles)
    with open(file, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            if len(raw) > MAX_LINE_BYTES:
                raise DataError(f"{file}:{number}: line of {len(raw)} bytes, over the {MAX_LINE_BYTES}-byte cap")
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as err:
                raise DataError(f"{file}:{number}: not a JSON line ({err})") from err
            if not isinstance(row, dict) or "id" not in row or "style" not in row:
                raise DataError(f"{file}:{number}: expected an RFT round (id, style, samples) or an evaluation "
                                "prediction (id, style, correct)")
            kind = "rft" if "samples" in row else ("eval" if "correct" in row else None)
            if kind is None or (rates is not None and kind != rates.kind):
                raise DataError(f"{file}:{number}: expected "
                                + ("an RFT round (id, style, samples) or an evaluation prediction (id, style, correct)"
                                   if rates is None else f"a line like the file's first ({rates.kind})"))
            if rates is None:
                rates = PassRates(source=str(file), kind=kind)
            if row["style"] not in wanted:
                rates.other_styles += 1
                continue
            item_id = str(row["id"])
            if kind == "rft":
                samples = row["samples"]
                if not isinstance(samples, list) or not all(isinstance(s, dict) and "reason" in s for s in samples):
                    raise DataError(f"{file}:{number}: samples: expected a list of {{reason, ...}}")
                graded = [s for s in samples if s["reason"] != "unreadable_gold"]
                rates.ungraded += len(samples) - len(graded)
                rates.graded[item_id] = rates.graded.get(item_id, 0) + len(graded)
                rates.correct[item_id] = rates.correct.get(item_id, 0) + sum(s["reason"] == "correct" for s in graded)
                rates.golds.setdefault(item_id, None)
            else:
                if not isinstance(row["correct"], bool):
                    raise DataError(f"{file}:{number}: correct: expected true or false, got {row['correct']!r}")
                rates.graded[item_id] = rates.graded.get(item_id, 0) + 1
                rates.correct[item_id] = rates.correct.get(item_id, 0) + row["correct"]
                gold = row.get("gold")
                rates.golds.setdefault(item_id, None if gold is None else _norm(gold))
    if rates is None or not rates.graded:
        raise DataError(f"{file}: no graded sample of style {', '.join(styles)} (the styles GRPO trains)")
    return rates


def select_by_pass_rate(items: list[dict], rates: PassRates, min_rate: float, max_rate: float,
                        unmatched: str = "drop") -> tuple[list[dict], dict[str, Any]]:
    """(the items kept, a manifest record). Kept: items whose rate r has min_rate <= r <= max_rate, and unmatched
    items when `unmatched` is "keep". The record holds the bounds, counts (kept, below, above, unmatched,
    gold_mismatch, extra file ids), a histogram of the matched rates in tenths, each item's rate, and the first
    ids of each dropped kind. Raises ValueError for bounds outside [0, 1] or min_rate > max_rate.
    """
    if not 0 <= min_rate <= max_rate <= 1 or unmatched not in ("drop", "keep"):
        raise ValueError(f"select_by_pass_rate: expected 0 <= min_rate <= max_rate <= 1 and unmatched drop|keep, got "
                         f"{min_rate}, {max_rate}, {unmatched!r}")
    kept: list[dict] = []
    why: dict[str, list[str]] = defaultdict(list)
    item_rates: dict[str, float | None] = {}
    histogram = [0] * 10
    for item in items:
        item_id = str(item["id"])
        rate = rates.rate(item_id)
        gold = rates.golds.get(item_id)
        if rate is not None and gold is not None and gold != _norm(item.get("answer")):
            why["gold_mismatch"].append(item_id)
            rate = None
        elif rate is None:
            why["unmatched"].append(item_id)
        item_rates[item_id] = rate
        if rate is None:
            if unmatched == "keep":
                kept.append(item)
            continue
        histogram[min(int(rate * 10), 9)] += 1
        if rate < min_rate:
            why["below_min"].append(item_id)
        elif rate > max_rate:
            why["above_max"].append(item_id)
        else:
            kept.append(item)
    trained = {str(item["id"]) for item in items}
    extra = sum(1 for item_id in rates.graded if item_id not in trained)
    record = {
        "source": rates.source, "kind": rates.kind, "min_pass_rate": min_rate, "max_pass_rate": max_rate,
        "unmatched_policy": unmatched, "matched_by": "id" + (" and gold" if rates.kind == "eval" else ""),
        "questions": len(items), "kept": len(kept),
        "counts": {kind: len(why[kind]) for kind in ("below_min", "above_max", "unmatched", "gold_mismatch")},
        "file_ids_not_trained": extra, "file_lines_other_styles": rates.other_styles,
        "file_samples_ungraded": rates.ungraded,
        "rate_histogram_tenths": histogram,
        "first_ids": {kind: ids[:5] for kind, ids in why.items() if ids},
        "rates": item_rates,
    }
    return kept, record
