"""The build's decontamination stage: run the checks, count them, write `contamination.md`.

    drop, summary, report = decontaminate(examples, cfg.decontaminate, cfg.base_dir, recipe="tiny")

`summary` goes into manifest.json under `decontamination`: per benchmark its source, size, and how many
training rows matched by each check (exact / ngram / near), by source; `report` is the Markdown written
beside the manifest, with the matched pairs and the closest kept pairs side by side so a person can judge
the threshold. Both are deterministic: same inputs, same bytes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np

from arithmo.data.decontaminate import (CHECKS, NONE, REPORT_FLOOR, Matches, benchmarks_for, match_benchmarks,
                                        prepare)
from arithmo.data.normalize import RULES, normalize_text
from arithmo.data.recipe import DecontamConfig

_CELL = 360  # characters of a question shown in a table cell; the rest is elided with its length


def _original_norm(example: dict) -> str:
    original = example["meta"].get("original_question") or ""
    if not original or original == example["question"]:
        return ""  # nothing beyond the question itself, which is checked anyway
    return normalize_text(original)


def decontaminate(examples: list[dict], cfg: DecontamConfig, base_dir: str, recipe: str,
                  log: Callable[[str], None] = print) -> tuple[np.ndarray, dict[str, Any], str]:
    """(drop mask over `examples`, manifest summary, contamination.md text).

    `examples` carry `question_norm` (normalised by the build). Raises DataError when a required benchmark
    cannot be loaded. All rows at once; the build streams them through a `Decontaminator`.
    """
    checker = Decontaminator(cfg, base_dir, recipe, log)
    drop = checker.check(examples)
    summary, report = checker.finish()
    return drop, summary, report


class _Pairs:
    """The report's pairs of one kind: the first `k` by `sort` (similarity, row id), kept as rows arrive
    without holding every pair (a contaminated mix can match many rows)."""

    def __init__(self, k: int, descending: bool):
        self.k, self.sign, self.count, self.rows = k, -1.0 if descending else 1.0, 0, []

    def add(self, row: tuple) -> None:  # (similarity, id, check, via_original, numbers_differ, test_index, text)
        self.count += 1
        if not self.k:
            return
        self.rows.append(row)
        if len(self.rows) > 4 * self.k + 1000:
            self.rows = self.first()

    def first(self) -> list[tuple]:
        return sorted(self.rows, key=lambda r: (self.sign * r[0], r[1]))[:self.k]


class Decontaminator:
    """The decontamination stage over rows that arrive a chunk at a time (the build streams them).

        checker = Decontaminator(cfg.decontaminate, cfg.base_dir, cfg.name, log)
        drop = checker.check(chunk)          # per chunk: bool mask, True = contaminated
        summary, report = checker.finish()   # manifest entry and contamination.md

    Every row's verdict depends on that row alone (`match_benchmarks`), so the chunking changes nothing; what
    is kept across chunks is counts and the report's top pairs (at most a few times `report_pairs` rows).
    Raises DataError when a required benchmark cannot be loaded.
    """

    def __init__(self, cfg: DecontamConfig, base_dir: str, recipe: str, log: Callable[[str], None] = print):
        self.cfg, self.recipe, self.rows, self.dropped = cfg, recipe, 0, 0
        self.summary: dict[str, Any] = {"enabled": cfg.enabled, "ngram": cfg.ngram,
                                        "near_threshold": cfg.near_threshold if cfg.near else None,
                                        "normalisation": [name for name, _, _ in RULES], "report": "contamination.md"}
        self.active = bool(cfg.enabled and cfg.benchmarks)
        self.benchmarks, self.record, self.hits = [], {}, Counter()
        if not self.active:
            return
        self.benchmarks, self.record = benchmarks_for(cfg.benchmarks, base_dir, cfg.ngram)
        for name, entry in self.record.items():
            if "skipped" in entry:  # required: false -- said on screen as well as in the manifest
                log(f"[data] WARNING: decontamination against {name} skipped ({entry['skipped']})")
        self.prepared = prepare(self.benchmarks, cfg.near)
        self.state = {bench.name: {"by_check": Counter(), "matched": 0, "via": 0, "differ": 0, "by_source": {},
                                   "closest": 0.0, "matched_pairs": _Pairs(cfg.report_pairs, False),
                                   "kept_pairs": _Pairs(cfg.report_pairs, True)} for bench in self.benchmarks}

    def check(self, examples: list[dict]) -> np.ndarray:
        """Drop mask over `examples` (each with `question_norm`); counts and report pairs are accumulated."""
        self.rows += len(examples)
        drop = np.zeros(len(examples), dtype=bool)
        if not self.active or not self.benchmarks or not examples:
            return drop
        cfg = self.cfg
        matches = match_benchmarks([e["question_norm"] for e in examples], [_original_norm(e) for e in examples],
                                   self.benchmarks, cfg.ngram, cfg.near_threshold if cfg.near else None,
                                   self.prepared)
        first: list[str | None] = [None] * len(examples)
        for bench in self.benchmarks:
            m, state = matches[bench.name], self.state[bench.name]
            matched = m.check != NONE
            for i in np.nonzero(matched & ~drop)[0].tolist():
                first[i] = bench.name
            drop |= matched
            for code, check in enumerate(CHECKS, start=1):
                state["by_check"][check] += int((m.check == code).sum())
            state["matched"] += int(matched.sum())
            state["via"] += int((matched & m.via_original).sum())
            state["differ"] += int(m.numbers_differ.sum())
            state["closest"] = max(state["closest"], float(m.similarity[~matched].max(initial=0.0)))
            for i in np.nonzero(matched)[0].tolist():
                state["by_source"].setdefault(examples[i]["source"], Counter())[CHECKS[m.check[i] - 1]] += 1
                state["matched_pairs"].add(_pair(examples[i], m, i))
            for i in np.nonzero(~matched & (m.test_index >= 0))[0].tolist():
                state["kept_pairs"].add(_pair(examples[i], m, i))
        for example, name in zip(examples, first):
            if name is not None:
                self.hits[f"{example['source']}<-{name}"] += 1
        self.dropped += int(drop.sum())
        return drop

    def finish(self) -> tuple[dict[str, Any], str]:
        """(manifest summary, contamination.md text) over every row checked."""
        summary, cfg = self.summary, self.cfg
        if not self.active:
            why = "disabled by the recipe" if not cfg.enabled else "the recipe names no benchmarks"
            summary["benchmarks"] = {}
            return summary, _header(self.recipe, summary, self.rows) + f"\nDecontamination {why}: no row was checked.\n"
        for bench in self.benchmarks:
            state = self.state[bench.name]
            self.record[bench.name].update({
                "rows_matched": state["matched"], "by_check": {check: state["by_check"][check] for check in CHECKS},
                "via_original_question": state["via"], "near_kept_numbers_differ": state["differ"],
                "by_source": {s: dict(sorted(c.items())) for s, c in sorted(state["by_source"].items())},
                "closest_kept": round(state["closest"], 3)})
        summary.update({"benchmarks": self.record, "rows_checked": self.rows, "rows_dropped": self.dropped,
                        "hits": dict(sorted(self.hits.items()))})
        report = _header(self.recipe, summary, self.rows) + _tables(self.benchmarks, self.state, self.record, cfg)
        return summary, report


def _pair(example: dict, m: Matches, i: int) -> tuple:
    via = bool(m.via_original[i])
    text = example["meta"].get("original_question") if via else example["question"]
    return (float(m.similarity[i]), example["id"], int(m.check[i]), via, bool(m.numbers_differ[i]),
            int(m.test_index[i]), text)


# ---------------------------------------------------------------------------------------------------------
# contamination.md


def _cell(text: str) -> str:
    text = " ".join(text.split())
    if len(text) > _CELL:
        text = f"{text[:_CELL]}… ({len(text)} chars)"
    return text.replace("|", "\\|")


def _header(recipe: str, summary: dict, rows: int) -> str:
    near = (f"word-set Jaccard >= {summary['near_threshold']}" if summary["near_threshold"] is not None
            else "off")
    rules = ", ".join(summary["normalisation"])
    return (f"# Contamination report: {recipe}\n\n"
            f"Training questions checked against each evaluation set after normalisation ({rules}; "
            "`arithmo/data/normalize.py`). Checks, strongest first: **exact** (equal normalised text), "
            f"**ngram** (a shared word {summary['ngram']}-gram), **near** ({near}, and every number of the test "
            "question in the training question). A MetaMathQA row is also checked by the question it was "
            f"rewritten from. Rows checked: {rows:,}. J below is the word-set Jaccard of the pair.\n")


def _tables(benchmarks: list, state: dict, record: dict, cfg: DecontamConfig) -> str:
    lines = ["", "| benchmark | test questions | exact | ngram | near | rows dropped | closest kept (J) |",
             "|---|---|---|---|---|---|---|"]
    for name, entry in record.items():
        if "skipped" in entry:
            lines.append(f"| {name} | skipped: {_cell(entry['skipped'])} | | | | | |")
            continue
        c = entry["by_check"]
        lines.append(f"| {name} | {entry['questions']:,} | {c['exact']:,} | {c['ngram']:,} | {c['near']:,} | "
                     f"{entry['rows_matched']:,} | {entry['closest_kept']:.3f} |")
    lines.append("\nA row matching several benchmarks counts under each; it is dropped once.")
    for bench in benchmarks:
        lines += _pairs(bench, state[bench.name], record[bench.name], cfg)
    return "\n".join(lines) + "\n"


def _pair_rows(bench, pairs: list[tuple]) -> list[str]:
    out = ["| J | check | training row | training question | test question |", "|---|---|---|---|---|"]
    for similarity, row_id, check_code, via_original, numbers_differ, test_index, text in pairs:
        via = " (its original question)" if via_original else ""
        check = (CHECKS[check_code - 1] if check_code != NONE
                 else "kept: a test number is missing" if numbers_differ else "kept")
        out.append(f"| {similarity:.3f} | {check} | `{row_id}`{via} | {_cell(text)} | "
                   f"{_cell(bench.questions[test_index])} |")
    return out


def _pairs(bench, state: dict, entry: dict, cfg: DecontamConfig) -> list[str]:
    k = cfg.report_pairs
    lines = [f"\n## {bench.name}\n", f"{entry['rows_matched']:,} training rows matched "
             f"({', '.join(f'{c} {n:,}' for c, n in entry['by_check'].items())}); by source: "
             + (", ".join(f"{s} {dict(c)}" for s, c in entry["by_source"].items()) or "none") + "."]
    matched, kept = state["matched_pairs"], state["kept_pairs"]
    if matched.count and k:
        # The least similar matches first: those are the ones a person should check for false positives.
        lines += [f"\n### Matched, least similar first ({min(k, matched.count)} of {matched.count:,})\n"]
        lines += _pair_rows(bench, matched.first())
    if k:
        floor = min(REPORT_FLOOR, cfg.near_threshold)
        lines.append(f"\n### Closest kept pairs (Jaccard >= {floor})\n")
        if kept.count:
            lines += _pair_rows(bench, kept.first())
        else:
            lines.append("None: no kept training question is that close to a test question.")
    near = entry["by_check"]["near"]
    if cfg.near and near:
        lines.append(f"\n{near:,} rows matched only by the near check (Jaccard >= {cfg.near_threshold}).")
    return lines
