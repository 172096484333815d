"""Data-parallel evaluation: split the pending items over N processes (one per GPU when there are N), each
writing its own predictions, then fold them into the one predictions.jsonl.

    run_shards(values, out, pending_items, processes=2)   # values: the resolved EvalConfig as a mapping

Each shard is a `python -m arithmo.eval` process with its own output folder `<out>/shards/<i>/` that evaluates
an EvalItem file of its items (ids, benchmark names, golds and meta kept), so it resumes on its own after a
crash; `fold_shards` appends every finished shard line to `<out>/predictions.jsonl` (before new shards start,
and after they end) and removes the shard folders. Metrics are computed once, by the parent, over all items:
greedy predictions are the same as an unsharded run's (batches hold other prompts, which fp32 greedy decoding
does not notice; tests/test_eval_shards.py); maj@k samples are seeded per chunk, so they differ, as they do
after a resume.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from arithmo.evaluation.store import append_lines, read_lines
from arithmo.runs import PREDICTIONS

SHARDS = "shards"


class ShardError(RuntimeError):
    """A shard process failed; the message holds its exit status and the end of its error output."""


def fold_shards(out: Path) -> int:
    """Append the lines of every shard folder under `out` to out/predictions.jsonl; remove the folders.
    Returns the number of lines folded in. A line cut short by a killed shard is dropped (its item redone)."""
    root = out / SHARDS
    if not root.is_dir():
        return 0
    folded = 0
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        predictions = folder / PREDICTIONS
        if predictions.is_file():
            lines, _ = read_lines(predictions)
            append_lines(out / PREDICTIONS, lines)
            folded += len(lines)
    shutil.rmtree(root)
    return folded


def discard_shards(out: Path) -> None:
    """Remove shard folders without folding them in (a run that starts over)."""
    shutil.rmtree(out / SHARDS, ignore_errors=True)


def _child_env(index: int, processes: int) -> dict[str, str]:
    import torch

    env = dict(os.environ)
    if torch.cuda.is_available() and torch.cuda.device_count() >= processes:
        env["CUDA_VISIBLE_DEVICES"] = str(index)  # one GPU each
    else:  # processes share the CPU cores (or one GPU): split the threads instead of oversubscribing them
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // processes)))
    repo = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = repo + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def run_shards(values: dict[str, Any], out: Path, items: list[dict], processes: int) -> None:
    """Evaluate `items` in `processes` shard processes (item i goes to shard i % processes), then fold their
    predictions into out/predictions.jsonl. Raises ShardError naming the shard that failed (finished shard
    lines are folded in first, so a rerun continues)."""
    root = out / SHARDS
    launched = []
    for index in range(min(processes, len(items))):
        folder = root / str(index)
        folder.mkdir(parents=True, exist_ok=True)
        part = items[index::processes]
        (folder / "items.jsonl").write_text("".join(json.dumps(item, ensure_ascii=False) + "\n" for item in part))
        child = {**values, "benchmark": "file", "path": str(folder / "items.jsonl"), "hub": None, "config": None,
                 "split": None, "n": None, "output_dir": str(folder), "data_parallel": 1, "plot": False,
                 "resume": True, "regrade": False}
        (folder / "request.yaml").write_text(yaml.safe_dump(child, sort_keys=False, allow_unicode=True))
        log = open(folder / "stderr.log", "w", encoding="utf-8")  # a file, not a pipe: a chatty shard never blocks
        process = subprocess.Popen([sys.executable, "-m", "arithmo.eval", "--preset", str(folder / "request.yaml")],
                                   env=_child_env(index, processes), stdout=subprocess.DEVNULL, stderr=log)
        launched.append((index, process, log, folder))
    failures = []
    for index, process, log, folder in launched:
        process.wait()
        log.close()
        if process.returncode != 0:
            errors = (folder / "stderr.log").read_text(encoding="utf-8", errors="replace").strip()
            failures.append(f"shard {index} exited with {process.returncode}: {errors[-1500:]}")
    fold_shards(out)
    if failures:
        raise ShardError("; ".join(failures))
