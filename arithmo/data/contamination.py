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

from arithmo.data.decontaminate import (CHECKS, NEAR, NONE, REPORT_FLOOR, Matches, benchmarks_for,
                                        match_benchmarks)
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
    cannot be loaded.
    """
    summary: dict[str, Any] = {"enabled": cfg.enabled, "ngram": cfg.ngram,
                               "near_threshold": cfg.near_threshold if cfg.near else None,
                               "normalisation": [name for name, _, _ in RULES], "report": "contamination.md"}
    drop = np.zeros(len(examples), dtype=bool)
    if not cfg.enabled or not cfg.benchmarks:
        why = "disabled by the recipe" if not cfg.enabled else "the recipe names no benchmarks"
        summary["benchmarks"] = {}
        return drop, summary, _header(recipe, summary, len(examples)) + f"\nDecontamination {why}: no row was checked.\n"
    benchmarks, record = benchmarks_for(cfg.benchmarks, base_dir, cfg.ngram)
    for name, entry in record.items():
        if "skipped" in entry:  # required: false -- said on screen as well as in the manifest
            log(f"[data] WARNING: decontamination against {name} skipped ({entry['skipped']})")
    matches = match_benchmarks([e["question_norm"] for e in examples], [_original_norm(e) for e in examples],
                               benchmarks, cfg.ngram, cfg.near_threshold if cfg.near else None)
    hits: Counter = Counter()
    first: list[str | None] = [None] * len(examples)
    for bench in benchmarks:
        m = matches[bench.name]
        matched = m.check != NONE
        for i in np.nonzero(matched & ~drop)[0].tolist():
            first[i] = bench.name
        drop |= matched
        by_check = {check: int((m.check == code).sum()) for code, check in enumerate(CHECKS, start=1)}
        by_source: dict[str, Counter] = {}
        for i in np.nonzero(matched)[0].tolist():
            by_source.setdefault(examples[i]["source"], Counter())[CHECKS[m.check[i] - 1]] += 1
        record[bench.name].update({
            "rows_matched": int(matched.sum()), "by_check": by_check,
            "via_original_question": int((matched & m.via_original).sum()),
            "near_kept_numbers_differ": int(m.numbers_differ.sum()),
            "by_source": {s: dict(sorted(c.items())) for s, c in sorted(by_source.items())},
            "closest_kept": round(float(m.similarity[~matched].max(initial=0.0)), 3)})
    for example, name in zip(examples, first):
        if name is not None:
            hits[f"{example['source']}<-{name}"] += 1
    summary.update({"benchmarks": record, "rows_checked": len(examples), "rows_dropped": int(drop.sum()),
                    "hits": dict(sorted(hits.items()))})
    report = _header(recipe, summary, len(examples)) + _tables(examples, benchmarks, matches, record, cfg)
    return drop, summary, report


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


def _tables(examples: list[dict], benchmarks: list, matches: dict[str, Matches], record: dict,
            cfg: DecontamConfig) -> str:
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
        lines += _pairs(examples, bench, matches[bench.name], record[bench.name], cfg)
    return "\n".join(lines) + "\n"


def _pair_rows(examples, bench, m: Matches, indices: list[int]) -> list[str]:
    out = ["| J | check | training row | training question | test question |", "|---|---|---|---|---|"]
    for i in indices:
        example = examples[i]
        text = example["meta"].get("original_question") if m.via_original[i] else example["question"]
        via = " (its original question)" if m.via_original[i] else ""
        check = (CHECKS[m.check[i] - 1] if m.check[i] != NONE
                 else "kept: a test number is missing" if m.numbers_differ[i] else "kept")
        out.append(f"| {m.similarity[i]:.3f} | {check} | `{example['id']}`{via} | {_cell(text)} | "
                   f"{_cell(bench.questions[m.test_index[i]])} |")
    return out


def _pairs(examples, bench, m: Matches, entry: dict, cfg: DecontamConfig) -> list[str]:
    k = cfg.report_pairs
    lines = [f"\n## {bench.name}\n", f"{entry['rows_matched']:,} training rows matched "
             f"({', '.join(f'{c} {n:,}' for c, n in entry['by_check'].items())}); by source: "
             + (", ".join(f"{s} {dict(c)}" for s, c in entry["by_source"].items()) or "none") + "."]
    matched = np.nonzero(m.check != NONE)[0]
    if len(matched) and k:
        # The least similar matches first: those are the ones a person should check for false positives.
        order = sorted(matched.tolist(), key=lambda i: (float(m.similarity[i]), examples[i]["id"]))
        lines += [f"\n### Matched, least similar first ({min(k, len(order))} of {len(order):,})\n"]
        lines += _pair_rows(examples, bench, m, order[:k])
    kept = np.nonzero((m.check == NONE) & (m.test_index >= 0))[0]
    if k:
        floor = min(REPORT_FLOOR, cfg.near_threshold)
        lines.append(f"\n### Closest kept pairs (Jaccard >= {floor})\n")
        if len(kept):
            order = sorted(kept.tolist(), key=lambda i: (-float(m.similarity[i]), examples[i]["id"]))
            lines += _pair_rows(examples, bench, m, order[:k])
        else:
            lines.append("None: no kept training question is that close to a test question.")
    near = int((m.check == NEAR).sum())
    if cfg.near and near:
        lines.append(f"\n{near:,} rows matched only by the near check (Jaccard >= {cfg.near_threshold}).")
    return lines
