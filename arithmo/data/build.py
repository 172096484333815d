"""Build a training mix from a recipe: read -> adapt -> format -> decontaminate -> dedup -> verify ->
prompt transforms -> split -> write `train.jsonl`, `val.jsonl`, `manifest.json` and `contamination.md`
(token-length percentiles per source too, when the recipe names a tokenizer).

Every input row ends in exactly one place: an output row, or a drop reason counted per source, and the
manifest checks `rows_in == rows_out + dropped` for each source. The same inputs and seed give
byte-identical files: all randomness is drawn per row from (seed, row id).
"""

from __future__ import annotations

import json
import random
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable

from arithmo import __version__
from arithmo.config import load_config, to_dict
from arithmo.data.contamination import decontaminate
from arithmo.data.dedup import exact_duplicates, near_duplicates
from arithmo.data.reasoning import think_tag_reason, trace_stats
from arithmo.data.recipe import DataConfig
from arithmo.data.sources import Ledger, read_source
from arithmo.data.textsim import normalize_text
from arithmo.data.transforms import ensure_print, format_cot_answer, maybe_lowercase
from arithmo.io import DataError
from arithmo.data.verify import verify_tir
from arithmo.prompts import add_pot_hint, add_tir_instruction, stable_rng, strip_pot_trigger
from arithmo.records import MathExample, SFTRecord


def _keep(examples: list, drop_mask, reason: str, ledger: _Ledger) -> list:
    kept = []
    for example, dropped in zip(examples, drop_mask):
        if dropped:
            ledger.drop(example["source"], reason)
        else:
            kept.append(example)
    return kept


def _git_sha() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=10, check=False)
    except OSError:
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
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


class _DedupSolutions:
    """The solution text dedup compares, per example (a sequence, made on access so no second copy of every trace
    is held): the normalised solution, or for a reasoning row (long CoT) the normalised trace, a NUL, then the
    normalised answer. Comparing the answer alone would make every trace of a problem a duplicate of its first."""

    def __init__(self, examples: list[dict]):
        self.examples = examples

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> str:
        example = self.examples[index]
        if example.get("reasoning"):
            return f"{normalize_text(example['reasoning'])}\x00{example['solution_norm']}"
        return example["solution_norm"]

    def __iter__(self):
        return (self[i] for i in range(len(self)))


def build(cfg: DataConfig, out_dir: str | Path, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Build the mix described by `cfg` into `out_dir`; returns the manifest.

    Writes train.jsonl, val.jsonl, manifest.json and contamination.md. Raises DataError for unusable input
    (a missing file or column, a required benchmark that cannot be loaded, a tokenizer that cannot load).
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out}: is a file, expected a folder to write train.jsonl, val.jsonl and "
                        "manifest.json into (name a new or existing folder)")
    out.mkdir(parents=True, exist_ok=True)
    names = [s.name for s in cfg.sources]
    if not names:
        raise DataError("the recipe lists no sources")
    ledger, actions, stage_seconds = Ledger(names), Counter(), {}
    clock = time.perf_counter()

    def stage(name: str, rows: int) -> None:
        nonlocal clock
        now = time.perf_counter()
        stage_seconds[name] = round(now - clock, 2)
        clock = now
        log(f"[data] {name:<12} {rows:>9,} rows  {stage_seconds[name]:7.2f}s")

    # ---- 1. read and adapt every source, in priority order
    examples, inputs = [], []
    for src in cfg.sources:
        rows, record = read_source(src, cfg.base_dir, ledger, actions)
        examples.extend(rows)
        inputs.append(record)
    stage("read", len(examples))

    # ---- 2. answer format: CoT ends with "The answer is: X"; PoT programs print their result
    formatted = []
    for example in examples:
        if example.get("reasoning") and think_tag_reason(example["reasoning"], example["solution"]):
            # Training refuses such a row (arithmo.thinking); every adapter drops them, and this catches any other
            # source of records with a trace, counted, before a run starts.
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
        formatted.append(example)
    examples = formatted
    stage("format", len(examples))

    # ---- 3. decontaminate against the evaluation sets (exact, n-gram, near); contamination.md
    drop, decontam, report = decontaminate(examples, cfg.decontaminate, cfg.base_dir, cfg.name, log)
    examples = _keep(examples, drop, "contaminated", ledger)
    stage("decontam", len(examples))

    # ---- 4. dedup: exact, then near-duplicate question with near-identical solution. A reasoning row's solution
    # is its trace and its answer (_DedupSolutions): distinct traces of one problem that end in the same answer
    # (per_problem=all) are distinct rows, not duplicates.
    if cfg.dedup.exact:
        mask = exact_duplicates([e["question_norm"] for e in examples], _DedupSolutions(examples))
        examples = _keep(examples, mask, "duplicate", ledger)
    stage("dedup_exact", len(examples))
    if cfg.dedup.near:
        mask = near_duplicates([e["question_norm"] for e in examples], _DedupSolutions(examples),
                               cfg.dedup.threshold, cfg.dedup.solution_threshold, cfg.dedup.num_perm,
                               cfg.dedup.bands, seed=cfg.seed)
        examples = _keep(examples, mask, "near_duplicate", ledger)
    for example in examples:  # free the normalised copies (~1 KB a row at 700K rows)
        del example["question_norm"], example["solution_norm"]
    stage("dedup_near", len(examples))

    # ---- 5. optional PoT verification, and TIR re-execution, in the sandbox
    if cfg.transforms.verify_pot:
        examples = _verify_pot(examples, cfg, ledger, actions)
    stage("verify_pot", len(examples))
    if cfg.transforms.verify_tir and any(e["style"] == "tir" for e in examples):
        examples = verify_tir(examples, timeout_s=cfg.transforms.program_timeout_s,
                              workers=cfg.transforms.verify_workers, counts=actions,
                              drop=lambda example, reason: ledger.drop(example["source"], reason))
    stage("verify_tir", len(examples))

    # ---- 6. prompts: lowercasing share, PoT hint phrases; render SFT records
    records: list[SFTRecord] = []
    for example in examples:
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
        records.append(record)

    # ---- 7. split and write
    order = list(range(len(records)))
    random.Random(cfg.seed).shuffle(order)
    n_val = int(round(cfg.val_size * len(records))) if cfg.val_size < 1 else min(int(cfg.val_size), len(records))
    val = [records[i] for i in order[:n_val]]
    train = [records[i] for i in order[n_val:]]
    if not train:  # a build with nothing to train on is an error, never an empty train.jsonl and exit 0
        rows_in = sum(ledger.rows_in.values())
        dropped = Counter()
        for per_source in ledger.dropped.values():
            dropped.update(per_source)
        if not records:
            raise DataError(f"nothing to train on: the sources gave {rows_in} rows"
                            + (f" and every one was dropped ({dict(sorted(dropped.items()))})" if rows_in else
                               " (an empty input? check each source's path/hub, splits and max_rows)"))
        raise DataError(f"nothing to train on: val_size={cfg.val_size:g} puts {n_val} of the {len(records)} rows "
                        f"kept into validation; expected val_size below {len(records)} rows (or a share < 1, "
                        f"e.g. val_size=0.1 for {max(1, round(0.1 * len(records)))} rows)")
    _write_jsonl(out / "train.jsonl", train)
    _write_jsonl(out / "val.jsonl", val)
    (out / "contamination.md").write_text(report, encoding="utf-8")
    stage("write", len(records))

    # ---- 7b. token lengths per source, when the recipe names a tokenizer (to choose max_seq_length)
    lengths = None
    if cfg.tokenizer:
        from arithmo.data.token_lengths import token_lengths

        lengths = token_lengths(records, cfg.tokenizer)
        for source, entry in lengths["by_source"].items():
            log(f"[data] tokens {source}: total p50 {entry['total']['p50']}, p99 {entry['total']['p99']}, "
                f"max {entry['total']['max']}; over 1024: {entry['over']['1024']}, over 2048: {entry['over']['2048']}"
                + (f"; traces p50 {entry['reasoning']['p50']}, p99 {entry['reasoning']['p99']}, over 16384 "
                   f"{entry['over']['16384']}" if "reasoning" in entry else ""))
        stage("tokens", len(records))

    # ---- 8. manifest: every input row accounted for
    out_by_source = {n: Counter() for n in names}
    for record in records:
        out_by_source[record["source"]][record["style"]] += 1
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
        "totals": {"rows_in": sum(ledger.rows_in.values()), "rows_out": len(records),
                   "train": len(train), "val": len(val), "dropped": dict(sorted(total_dropped.items())),
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
    traces = trace_stats(records)
    if traces:  # long chain-of-thought sources: how many rows carry a trace, and how long the traces are
        manifest["reasoning"] = traces
    if not balanced:
        raise AssertionError(f"row accounting does not balance: {json.dumps(sources, indent=1)}")
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    manifest["stage_seconds"] = stage_seconds  # returned for benchmarks; not written (outputs stay identical)
    return manifest


def build_from_recipe(recipe: str | Path, out_dir: str | Path, overrides: list[str] | None = None,
                      log: Callable[[str], None] = print) -> dict[str, Any]:
    """Resolve a recipe YAML (+ `key=value` overrides) and build it; relative paths are the recipe's."""
    cfg = load_config(DataConfig, recipe, overrides)
    if not cfg.base_dir:
        cfg.base_dir = str(Path(recipe).resolve().parent)
    return build(cfg, out_dir, log=log)
