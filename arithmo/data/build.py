"""Build a training mix from a recipe: read -> adapt -> format -> decontaminate -> dedup -> verify ->
prompt transforms -> split -> write `train.jsonl`, `val.jsonl`, `manifest.json` and `contamination.md`
(token-length percentiles per source too, when the recipe names a tokenizer).

Every input row ends in exactly one place: an output row, or a drop reason counted per source, and the
manifest checks `rows_in == rows_out + dropped` for each source. The same inputs and seed give
byte-identical files: all randomness is drawn per row from (seed, row id).
"""

from __future__ import annotations

import errno
import json
import os
import random
import re
import shutil
import subprocess
import tempfile
import time
from array import array
from collections import Counter
from pathlib import Path
from typing import Any, Callable

from arithmo import __version__
from arithmo.config import ConfigError, load_config, to_dict
from arithmo.data.contamination import Decontaminator
from arithmo.data.dedup import DIGEST_ROW, StreamingNearDedup, digest_records, exact_duplicates_on_disk
from arithmo.data.reasoning import think_tag_reason, trace_stats_from
from arithmo.data.recipe import DataConfig
from arithmo.data.sources import Ledger, iter_source
from arithmo.data.spill import BlobSpill, Partitions, RecordSpill, digests
from arithmo.data.textsim import normalize_text
from arithmo.data.transforms import ensure_print, format_cot_answer, maybe_lowercase
from arithmo.io import DataError
from arithmo.data.verify import verify_tir
from arithmo.prompts import add_pot_hint, add_tir_instruction, stable_rng, strip_pot_trigger
from arithmo.records import MathExample

import numpy as np


def _git_sha() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=10, check=False)
    except OSError:
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _write_jsonl(path: Path, records: BlobSpill, order) -> None:
    """Write the records at `order` (indices into the spill), in that order, via a temporary file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb", buffering=1 << 20) as handle:
        for index in order:
            handle.write(records.get(index))
    tmp.replace(path)


def _verify_pot(examples: list[MathExample], cfg: DataConfig, ledger: Ledger, counts: Counter) -> list:
    """Run PoT programs in the sandbox; drop those that fail, give no answer, or disagree with the answer.

    A program's answer is read by evaluation's rule (`arithmo.evaluation.scoring.program_answer`), so a row
    is kept exactly when `python -m arithmo.eval` would read the same answer from the same program.
    """
    from arithmo.evaluation.scoring import grade_answer, program_answer
    from arithmo.sandbox import run_programs

    pot = [e for e in examples if e["style"] == "pot"]
    results = run_programs([e["solution"] for e in pot], timeout_s=cfg.transforms.program_timeout_s,
                           workers=cfg.transforms.verify_workers)
    bad: set[str] = set()
    for example, result in zip(pot, results):
        answer = program_answer(result)
        if result.timed_out:
            reason = "pot_timeout"
        elif answer is None:  # it raised, or printed nothing an answer can be read from
            reason = "pot_failed"
        elif example["answer"] is not None and not grade_answer(answer, example["answer"]):
            reason = "pot_wrong_answer"
        else:
            counts["pot_verified"] += 1
            continue
        ledger.drop(example["source"], reason)
        bad.add(example["id"])
    return [e for e in examples if e["id"] not in bad]


def _dedup_solution(example: dict) -> str:
    """The solution text dedup compares: the normalised solution, or for a reasoning row (long CoT) the
    normalised trace, a NUL, then the normalised answer. Comparing the answer alone would make every trace of
    a problem a duplicate of its first."""
    if example.get("reasoning"):
        return f"{normalize_text(example['reasoning'])}\x00{example['solution_norm']}"
    return example["solution_norm"]


# Rows formatted and decontaminated together: at most this many, or this many characters of text (long
# traces), so a chunk stays a few tens of MB whatever the rows' length.
CHUNK_ROWS, CHUNK_CHARS = 50_000, 24 << 20
_STYLES = ("cot", "pot", "tir")


class _Timer:
    """Seconds per stage, accumulated: the streamed stages (read, format, decontam) interleave."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.clock = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = self.seconds.get(name, 0.0) + now - self.clock
        self.clock = now


def build(cfg: DataConfig, out_dir: str | Path, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Build the mix described by `cfg` into `out_dir`; returns the manifest.

    Writes train.jsonl, val.jsonl, manifest.json and contamination.md. Raises DataError for unusable input
    (a missing file or column, a required benchmark that cannot be loaded, a tokenizer that cannot load).

    Streaming (issue 30): rows go from the readers through formatting and decontamination, a chunk at a time,
    into spill files in a temporary folder inside `out_dir`, `.arithmo-build-<pid>-*` (removed at the end and on
    any exception; one left by a killed build is removed by the next build into `out_dir`, `sweep_scratch`;
    it needs ~3-4x the input's size free there with the outputs, and a full disk is a DataError naming
    `out_dir`); dedup groups fingerprints
    from partition files; records are rendered one at a time and the shuffled split is written by reading
    each record back from its offset. Memory held per input row: ~30 bytes of NumPy/array state; rows, traces
    and fingerprints are on disk. The files are the bytes the all-in-memory build wrote (tests/test_data_identity.py).
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out}: is a file, expected a folder to write train.jsonl, val.jsonl and "
                        "manifest.json into (name a new or existing folder)")
    out.mkdir(parents=True, exist_ok=True)
    names = [s.name for s in cfg.sources]
    if not names:
        raise DataError("the recipe lists no sources")
    sweep_scratch(out, log)
    try:
        with tempfile.TemporaryDirectory(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-", dir=out) as tmp:
            return _build(cfg, out, Path(tmp), names, log)
    except OSError as err:
        if err.errno != errno.ENOSPC:
            raise
        # The bare "[Errno 28] No space left on device" names no path: say which disk filled and what it needs.
        where = f" (writing {err.filename})" if err.filename else ""
        size = _local_input_bytes(cfg)
        need = (f" (local inputs here: {size / 1e6:,.0f} MB, so ~{3 * size / 1e6:,.0f}-{4 * size / 1e6:,.0f} MB)"
                if size else "")
        raise DataError(f"--out {out}: no space left on device{where}; a build writes its scratch files under "
                        f"--out and needs about 3-4x its input's size free there, the outputs included{need} "
                        f"(docs/measurements.md, data at scale); free space or name another --out") from err


def _local_input_bytes(cfg: DataConfig) -> int:
    """Bytes of the recipe's local source files (hub sources are not counted): what a full-disk error sizes."""
    from arithmo.io import resolve_path

    total = 0
    for src in cfg.sources:
        if src.path is not None:
            try:
                total += resolve_path(src.path, cfg.base_dir).stat().st_size
            except OSError:
                pass
    return total


# Scratch folders are `.arithmo-build-<pid>-<random>` inside --out: a build stopped by SIGKILL (or a power cut)
# cannot remove its own, so the next build into that folder removes those whose process is gone.
SCRATCH_PREFIX = ".arithmo-build-"
_SCRATCH = re.compile(r"\.arithmo-build-(\d+)-[A-Za-z0-9_]+")
_LEGACY = re.compile(r"\.arithmo-build-[A-Za-z0-9_]{8}")  # tempfile's 8 characters, before the pid was in the name
LEGACY_SCRATCH_AGE_S = 24 * 3600


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    except OverflowError:  # not a pid this system can have
        return False
    return True


def sweep_scratch(out: Path, log: Callable[[str], None] = print, now: float | None = None) -> list[str]:
    """Remove scratch folders in `out` left by builds that died; returns the names removed.

    Removed: `.arithmo-build-<pid>-*` whose pid is not a running process (a build running into the same --out
    keeps its own), and a scratch folder without a pid (written before the pid was in the name) last modified
    over LEGACY_SCRATCH_AGE_S (1 day) ago. Not removed: anything else, including a folder whose pid has been
    reused by another process since (it goes once that process ends). The pid is this machine's: two machines
    building into one shared (NFS) folder at once could remove each other's scratch.
    """
    removed = []
    now = time.time() if now is None else now
    for entry in sorted(out.iterdir()) if out.is_dir() else []:
        if not entry.is_dir() or entry.is_symlink():
            continue
        match = _SCRATCH.fullmatch(entry.name)
        if match:
            stale = not _pid_alive(int(match.group(1)))
        elif _LEGACY.fullmatch(entry.name):
            try:
                stale = now - entry.stat().st_mtime > LEGACY_SCRATCH_AGE_S
            except FileNotFoundError:
                continue
        else:
            continue
        if stale:
            shutil.rmtree(entry, ignore_errors=True)
            if not entry.exists():
                removed.append(entry.name)
                log(f"[data] removed {entry}: scratch of a build that was stopped before it finished")
    return removed


def _build(cfg: DataConfig, out: Path, tmp: Path, names: list[str], log: Callable[[str], None]) -> dict[str, Any]:
    ledger, actions, timer = Ledger(names), Counter(), _Timer()
    source_index = {name: k for k, name in enumerate(names)}
    stage_rows: dict[str, int] = {}

    def stage(name: str, rows: int) -> None:
        timer.lap(name)
        stage_rows[name] = rows
        log(f"[data] {name:<12} {rows:>9,} rows  {timer.seconds[name]:7.2f}s")

    # ---- 1-3. read and adapt every source in priority order; answer format; decontaminate -- a chunk at a time.
    # Rows that survive go to the spills: the example (pickled), its normalised question (for near dedup), its
    # dedup solution text (read back by offset), and two 16-byte digests into partition files.
    checker = Decontaminator(cfg.decontaminate, cfg.base_dir, cfg.name, log)
    examples_spill = RecordSpill(tmp / "examples.pkl")
    questions_file = open(tmp / "questions.txt", "w", encoding="utf-8", newline="\n", buffering=1 << 20)
    solutions = BlobSpill(tmp / "solutions.bin")
    exact_parts = Partitions(tmp, "exact", DIGEST_ROW)
    question_parts = Partitions(tmp, "question", DIGEST_ROW)
    source_of, style_of = array("H"), array("B")  # per surviving row: its source's and style's index
    counts = {"read": 0, "format": 0}
    chunk: list[dict] = []
    chunk_chars = 0

    def flush() -> None:
        nonlocal chunk_chars
        if not chunk:
            return
        timer.lap("format")
        drop = checker.check(chunk)
        timer.lap("decontam")
        kept = []
        for example, dropped in zip(chunk, drop.tolist()):
            if dropped:
                ledger.drop(example["source"], "contaminated")
                continue
            question_norm, solution = example.pop("question_norm"), _dedup_solution(example)
            del example["solution_norm"]
            kept.append((question_norm, solution))
            examples_spill.append(example)
            source_of.append(source_index[example["source"]])
            style_of.append(_STYLES.index(example["style"]) if example["style"] in _STYLES else 255)
            questions_file.write(question_norm + "\n")
            solutions.append(solution.encode("utf-8"))
        if kept:
            rows = np.arange(len(source_of) - len(kept), len(source_of), dtype=np.int64)
            pair = digests([f"{q}\x00{sol}".encode() for q, sol in kept])
            exact_parts.add(digest_records(pair, rows), pair[:, 0] >> np.uint64(40))
            question = digests([q.encode() for q, _ in kept])
            question_parts.add(digest_records(question, rows), question[:, 0] >> np.uint64(40))
        chunk.clear()
        chunk_chars = 0
        timer.lap("spill")

    inputs = []
    for src in cfg.sources:
        record: dict = {}
        stream = iter_source(src, cfg.base_dir, ledger, actions, record)
        while True:
            example = next(stream, None)
            timer.lap("read")
            if example is None:
                break
            counts["read"] += 1
            # ---- 2. answer format: CoT ends with "The answer is: X"; PoT programs print their result
            if example.get("reasoning") and think_tag_reason(example["reasoning"], example["solution"]):
                # Training refuses such a row (arithmo.thinking); every adapter drops them, and this catches any
                # other source of records with a trace, counted, before a run starts.
                ledger.drop(example["source"], "trace_nested_think")
                continue
            if example["style"] == "cot" and cfg.transforms.answer_format:
                completion, answer, action = format_cot_answer(example["solution"], example["answer"])
                actions[f"answer_{action}"] += 1
                if action == "no_answer" and cfg.transforms.require_answer:
                    ledger.drop(example["source"], "no_answer")
                    continue
                example["solution"], example["answer"] = completion, answer or example["answer"]
            elif example["style"] == "pot" and cfg.transforms.ensure_print:
                example["solution"], action = ensure_print(example["solution"])
                actions[f"program_{action}"] += 1
            # Normalised once here; decontamination and both dedup passes compare these.
            example["question_norm"] = normalize_text(example["question"])
            example["solution_norm"] = normalize_text(example["solution"])
            counts["format"] += 1
            timer.lap("format")
            chunk.append(example)
            chunk_chars += len(example["question"]) + len(example["solution"]) + len(example.get("reasoning") or "")
            if len(chunk) >= CHUNK_ROWS or chunk_chars >= CHUNK_CHARS:
                flush()
        inputs.append(record)
    timer.lap("format")
    flush()
    examples_spill.close()
    questions_file.close()
    exact_parts.close()
    question_parts.close()
    n = len(source_of)
    decontam, report = checker.finish()
    for name, rows in (("read", counts["read"]), ("format", counts["format"]), ("decontam", n)):
        log(f"[data] {name:<12} {rows:>9,} rows  {timer.seconds.get(name, 0.0):7.2f}s")
        stage_rows[name] = rows
    timer.seconds["decontam"] = timer.seconds.get("decontam", 0.0) + timer.seconds.pop("spill", 0.0)

    # ---- 4. dedup: exact, then near-duplicate question with near-identical solution. A reasoning row's solution
    # is its trace and its answer (_dedup_solution): distinct traces of one problem that end in the same answer
    # (per_problem=all) are distinct rows, not duplicates.
    alive = np.ones(n, dtype=bool)
    if cfg.dedup.exact:
        duplicate = exact_duplicates_on_disk(exact_parts, n)
        _count_drops(duplicate, source_of, names, "duplicate", ledger)
        alive &= ~duplicate
        del duplicate
    for path in exact_parts.paths:
        path.unlink()
    stage("dedup_exact", int(alive.sum()))
    if cfg.dedup.near:
        near = StreamingNearDedup(tmp, cfg.dedup.threshold, cfg.dedup.solution_threshold, cfg.dedup.num_perm,
                                  cfg.dedup.bands, seed=cfg.seed).run(
            n, alive, question_parts, lambda: (line.rstrip("\n") for line in open(tmp / "questions.txt",
                                                                                    encoding="utf-8", newline="\n")),
            solutions)
        _count_drops(near & alive, source_of, names, "near_duplicate", ledger)
        alive &= ~near
        del near
    solutions.close()
    stage("dedup_near", int(alive.sum()))

    # ---- 5. optional PoT verification, and TIR re-execution, in the sandbox (the rows of those styles only)
    styles = np.frombuffer(style_of, dtype=np.uint8)
    failed: set[str] = set()
    pot_code, tir_code = _STYLES.index("pot"), _STYLES.index("tir")
    if cfg.transforms.verify_pot and np.any(alive & (styles == pot_code)):
        pot = _alive_rows(examples_spill, alive, styles == pot_code)
        failed |= {e["id"] for e in pot} - {e["id"] for e in _verify_pot(pot, cfg, ledger, actions)}
        del pot
    stage("verify_pot", int(alive.sum()) - len(failed))
    if cfg.transforms.verify_tir and np.any(alive & (styles == tir_code)):
        tir = _alive_rows(examples_spill, alive, styles == tir_code)
        kept_tir = verify_tir(tir, timeout_s=cfg.transforms.program_timeout_s,
                              workers=cfg.transforms.verify_workers, counts=actions,
                              drop=lambda example, reason: ledger.drop(example["source"], reason))
        failed |= {e["id"] for e in tir} - {e["id"] for e in kept_tir}
        del tir, kept_tir
    stage("verify_tir", int(alive.sum()) - len(failed))

    # ---- 6. prompts: lowercasing share, PoT hint phrases; render SFT records, one at a time, to a spill
    records = BlobSpill(tmp / "records.jsonl")
    out_by_source = {name: Counter() for name in names}
    traces: dict[str, array] = {}
    for p, example in enumerate(examples_spill):
        if not alive[p] or example["id"] in failed:
            continue
        record = _render(example, cfg, actions)
        out_by_source[record["source"]][record["style"]] += 1
        if record.get("reasoning"):
            traces.setdefault(record["source"], array("q")).append(len(record["reasoning"]))
        records.append((json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))
    del alive, styles, source_of, style_of
    n_records = len(records)

    # ---- 7. split and write. The permutation is random.Random(seed).shuffle of range(n_records), on an int64
    # array (8 bytes a row) instead of a list of ints (~36): the same draws, so the same order as before.
    order = array("q", range(n_records))
    random.Random(cfg.seed).shuffle(order)
    n_val = int(round(cfg.val_size * n_records)) if cfg.val_size < 1 else min(int(cfg.val_size), n_records)
    if n_records - n_val <= 0:  # a build with nothing to train on is an error, never an empty train.jsonl and exit 0
        rows_in = sum(ledger.rows_in.values())
        dropped = Counter()
        for per_source in ledger.dropped.values():
            dropped.update(per_source)
        if not n_records:
            raise DataError(f"nothing to train on: the sources gave {rows_in} rows"
                            + (f" and every one was dropped ({dict(sorted(dropped.items()))})" if rows_in else
                               " (an empty input? check each source's path/hub, splits and max_rows)"))
        raise DataError(f"nothing to train on: val_size={cfg.val_size:g} puts {n_val} of the {n_records} rows "
                        f"kept into validation; expected val_size below {n_records} rows (or a share < 1, "
                        f"e.g. val_size=0.1 for {max(1, round(0.1 * n_records))} rows)")
    _write_jsonl(out / "val.jsonl", records, order[:n_val])
    _write_jsonl(out / "train.jsonl", records, order[n_val:])
    del order
    (out / "contamination.md").write_text(report, encoding="utf-8")
    stage("write", n_records)

    # ---- 7b. token lengths per source, when the recipe names a tokenizer (to choose max_seq_length)
    lengths = None
    if cfg.tokenizer:
        from arithmo.data.token_lengths import token_lengths

        lengths = token_lengths((json.loads(line) for line in records), cfg.tokenizer)
        for source, entry in lengths["by_source"].items():
            log(f"[data] tokens {source}: total p50 {entry['total']['p50']}, p99 {entry['total']['p99']}, "
                f"max {entry['total']['max']}; over 1024: {entry['over']['1024']}, over 2048: {entry['over']['2048']}"
                + (f"; traces p50 {entry['reasoning']['p50']}, p99 {entry['reasoning']['p99']}, over 16384 "
                   f"{entry['over']['16384']}" if "reasoning" in entry else ""))
        stage("tokens", n_records)
    records.close()

    # ---- 8. manifest: every input row accounted for
    sources, balanced = {}, True
    for name in names:
        rows_out = sum(out_by_source[name].values())
        dropped = dict(sorted(ledger.dropped[name].items()))
        ok = ledger.rows_in[name] == rows_out + sum(dropped.values())
        balanced &= ok
        sources[name] = {"rows_in": ledger.rows_in[name], "rows_out": rows_out,
                         "out_by_style": dict(sorted(out_by_source[name].items())),
                         "dropped": dropped, "balanced": ok}
    total_dropped = Counter()
    for name in names:
        total_dropped.update(ledger.dropped[name])
    manifest = {
        "recipe": cfg.name,
        "seed": cfg.seed,
        "git_sha": _git_sha(),
        "arithmo_version": __version__,
        "inputs": inputs,
        "sources": sources,
        "totals": {"rows_in": sum(ledger.rows_in.values()), "rows_out": n_records,
                   "train": n_records - n_val, "val": n_val, "dropped": dict(sorted(total_dropped.items())),
                   "balanced": balanced},
        "transforms": {"actions": dict(sorted(actions.items()))},
        "decontamination": decontam,
        "config": to_dict(cfg),
    }
    if actions["pot_verified"] or actions["tir_blocks_run"] or any(
            reason.startswith(("pot_", "tir_")) for reason in total_dropped):
        from arithmo.sandbox import sandbox_layers

        manifest["sandbox"] = sandbox_layers()  # which layers ran the rows' code (the jail, or the fallback)
    if lengths is not None:
        manifest["token_lengths"] = lengths
    trace_summary = trace_stats_from(traces, {s: sum(c.values()) for s, c in out_by_source.items()})
    if trace_summary:  # long chain-of-thought sources: how many rows carry a trace, and how long the traces are
        manifest["reasoning"] = trace_summary
    if not balanced:
        raise AssertionError(f"row accounting does not balance: {json.dumps(sources, indent=1)}")
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    # returned for benchmarks; not written (outputs stay identical)
    manifest["stage_seconds"] = {k: round(v, 2) for k, v in timer.seconds.items()}
    manifest["stage_rows"] = stage_rows
    return manifest


def _count_drops(mask: np.ndarray, source_of: array, names: list[str], reason: str, ledger: Ledger) -> None:
    per_source = np.bincount(np.frombuffer(source_of, dtype=np.uint16)[mask], minlength=len(names))
    for k, count in enumerate(per_source.tolist()):
        if count:
            ledger.drop(names[k], reason, count)


def _alive_rows(spill: RecordSpill, alive: np.ndarray, wanted: np.ndarray) -> list[dict]:
    """The surviving rows of one style (the ones the sandbox re-runs), read back from the spill."""
    take = alive & wanted
    return [example for p, example in enumerate(spill) if take[p]]


def _render(example: dict, cfg: DataConfig, actions: Counter) -> dict:
    """One SFT record: the lowercasing share, PoT hint phrases, the TIR instruction; randomness per row id."""
    question, had_trigger = example["question"], False
    if example["style"] == "pot" and cfg.transforms.pot_hints:
        question, had_trigger = strip_pot_trigger(question)
    question, lowered = maybe_lowercase(question, cfg.transforms.lowercase_share,
                                        stable_rng(cfg.seed, "lower:" + example["id"]))
    actions["lowercased"] += lowered
    if example["style"] == "pot" and cfg.transforms.pot_hints:
        # The hint keeps its case; a replaced trigger and a fresh hint are counted apart.
        question = add_pot_hint(question, stable_rng(cfg.seed, "hint:" + example["id"]))
        actions["trigger_replaced" if had_trigger else "hint_added"] += 1
    if example["style"] == "tir" and cfg.transforms.tir_instruction:
        question = add_tir_instruction(question)  # as style=tir evaluation prompts it
        actions["tir_instruction_added"] += 1
    record = {"id": example["id"], "source": example["source"], "style": example["style"],
              "prompt": question, "completion": example["solution"]}
    if example.get("reasoning"):  # long CoT: the trace, rendered into the think block at training time
        record["reasoning"] = example["reasoning"]
    return record


def build_from_recipe(recipe: str | Path, out_dir: str | Path, overrides: list[str] | None = None,
                      log: Callable[[str], None] = print) -> dict[str, Any]:
    """Resolve a recipe YAML (+ `key=value` overrides) and build it; relative paths are the recipe's."""
    if not Path(recipe).is_file():  # load_config would call it a preset
        raise ConfigError(f"recipe not found: {recipe}" + (" (a folder; expected a recipe YAML file)"
                                                            if Path(recipe).is_dir() else ""))
    cfg = load_config(DataConfig, recipe, overrides)
    if not cfg.base_dir:
        cfg.base_dir = str(Path(recipe).resolve().parent)
    return build(cfg, out_dir, log=log)
