"""predictions.jsonl on disk: append as items finish, and resume from what an earlier run wrote.

An item is done when the file holds all its lines: the greedy one and, with maj@k, samples 0..k-1. A rerun
keeps done items, redoes items with only some of their lines (an interrupted write), drops a last line cut
short by a crash, and keeps lines of items outside the current set (another `n`) untouched.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable
from typing import Any

from arithmo.io import DataError, read_saved_lines


@dataclass
class Resumed:
    lines: list[dict[str, Any]] = field(default_factory=list)  # lines of done items in the current set
    done_ids: set[str] = field(default_factory=set)
    redo_items: int = 0  # items with only some of their lines: their lines were dropped, they run again
    truncated_lines: int = 0  # a last line cut short by a crash (0 or 1)
    other_lines: int = 0  # lines of items not in the current set: kept in the file, not counted


def expected_samples(k: int) -> set[int | None]:
    """The `sample` values an item needs: None (greedy) and, for maj@k, 0..k-1."""
    return {None} | (set(range(k)) if k > 1 else set())


def read_lines(path: Path) -> tuple[list[dict[str, Any]], int]:
    """The JSON lines of `path` and how many trailing lines were cut short (a crash mid-write)."""
    numbered, truncated = read_saved_lines(path, "move it away or rerun with resume=false")
    for number, row in numbered:
        if "id" not in row or "sample" not in row:
            raise DataError(f"{path}:{number}: not a prediction line (needs 'id' and 'sample')")
    return [row for _, row in numbered], truncated


def resume_from(path: Path, item_ids: list[str], style: str, k: int) -> Resumed:
    """Read an earlier run's predictions; rewrite the file with only the lines worth keeping."""
    result = Resumed()
    if not path.is_file():
        return result
    rows, result.truncated_lines = read_lines(path)
    wanted = set(item_ids)
    by_item: dict[str, dict[Any, dict]] = defaultdict(dict)
    keep_other: list[dict] = []
    for number, row in enumerate(rows, 1):
        if row.get("style") != style:
            raise DataError(f"{path}: line {number} has style {row.get('style')!r}, this run is {style!r}; "
                            "use another output_dir or resume=false")
        if row["id"] in wanted:
            by_item[row["id"]][row["sample"]] = row
        else:
            keep_other.append(row)
    need = expected_samples(k)
    for item_id in item_ids:
        found = by_item.get(item_id)
        if not found:
            continue
        if need <= set(found):
            result.done_ids.add(item_id)
            result.lines.extend(found[s] for s in sorted(need, key=lambda s: -1 if s is None else s))
        else:
            result.redo_items += 1
    result.other_lines = len(keep_other)
    if result.redo_items or result.truncated_lines or len(result.lines) + len(keep_other) != len(rows):
        write_lines(path, keep_other + result.lines)
    return result


def regrade_file(path: Path, item_ids: list[str], version: str, force: bool,
                 regrade: Callable[[list[dict[str, Any]]], tuple[list[dict[str, Any]], set[str]]]) -> tuple[int, int]:
    """Re-grade the lines of `item_ids` that an older grader scored (all of them with `force`) through
    `regrade` (arithmo.evaluation.scoring.regrade with the golds and a sandbox bound); returns (lines
    re-graded, items dropped to be generated again). Lines of other items are kept as they are: each line
    records its grader_version, so they are re-graded when their items are evaluated."""
    if not path.is_file():
        return 0, 0
    rows, _ = read_lines(path)  # a cut-short last line is dropped here, as resume_from would
    wanted = set(item_ids)
    stale = [row for row in rows if row["id"] in wanted and (force or row.get("grader_version") != version)]
    if not stale:
        return 0, 0
    fresh, redo = regrade(stale)
    by_key = {(row["id"], row["sample"]): row for row in fresh}
    write_lines(path, [by_key.get((row["id"], row["sample"]), row) for row in rows if row["id"] not in redo])
    return len(stale), len(redo)


def pending_ids(path: Path, item_ids: list[str], style: str, k: int) -> list[str]:
    """The ids of `item_ids` that predictions.jsonl does not hold in full (read only; nothing rewritten)."""
    if not path.is_file():
        return list(item_ids)
    rows, _ = read_lines(path)
    found: dict[str, set] = defaultdict(set)
    for row in rows:
        if row.get("style") == style:
            found[row["id"]].add(row["sample"])
    need = expected_samples(k)
    return [item_id for item_id in item_ids if not need <= found.get(item_id, set())]


def write_lines(path: Path, rows: list[dict[str, Any]]) -> None:
    """Replace `path` with `rows` atomically (a crash leaves the old file or the new one, never half)."""
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(partial, path)


def append_lines(path: Path, rows: list[dict[str, Any]]) -> None:
    """Append `rows` and flush them to disk, so an interrupted run keeps every finished item."""
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
        handle.flush()
        os.fsync(handle.fileno())


def write_in_item_order(path: Path, item_ids: list[str]) -> None:
    """Rewrite `path` with its lines in item order (each item's greedy line, then its samples 0..k-1), so two
    runs of the same evaluation give files that diff line by line whatever order the lines were generated in
    (data-parallel shards, a multi-process launch, a resumed run). Lines of other items keep their order, last.
    Written to a temporary file and moved into place: a crash leaves the old file whole."""
    if not path.is_file():
        return
    lines, _ = read_lines(path)
    order = {item_id: index for index, item_id in enumerate(item_ids)}
    ranked = sorted(range(len(lines)), key=lambda i: (
        order.get(lines[i]["id"], len(order)), -1 if lines[i]["sample"] is None else lines[i]["sample"],
        i if lines[i]["id"] not in order else 0))
    partial = path.with_name(path.name + ".partial")
    partial.write_text("".join(json.dumps(lines[i], ensure_ascii=False) + "\n" for i in ranked), encoding="utf-8")
    os.replace(partial, path)
