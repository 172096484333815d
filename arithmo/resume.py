"""Resuming a run folder: its last checkpoint, whether it already finished, what a resume may change (a table;
every other setting must equal the run's saved config), and the whole run's training loss."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Mapping

from arithmo.config import ConfigError, load_config, to_dict
from arithmo.runs import RunError, RunFolder, read_run_config
from arithmo.settings import TrainConfig, TrainError


def last_checkpoint(run: RunFolder) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    folder = run.checkpoints
    return get_last_checkpoint(str(folder)) if folder.is_dir() else None


def finished_summary(run: RunFolder, checkpoint: str, cfg: TrainConfig) -> dict | None:
    """The summary of a run whose last checkpoint already finished what `cfg` asks, else None.

    Finished means: summary.json was written at the end of an uninterrupted run, the checkpoint's step is the
    last step of its schedule (trainer_state.json), and the step budget asked now is the one that run had
    (the same max_steps, or the same epochs). Resuming such a run again would train past its schedule
    (transformers starts one more step) and overwrite the summary.
    """
    state_file = Path(checkpoint) / "trainer_state.json"
    if not run.summary.is_file() or not state_file.is_file():
        return None
    summary = json.loads(run.summary.read_text())
    state = json.loads(state_file.read_text())
    if summary.get("interrupted") or state.get("global_step", 0) < state.get("max_steps", 0):
        return None
    if summary.get("steps") != state["global_step"]:
        return None  # the summary is from another part of the run's history
    if cfg.max_steps > 0:
        return summary if state["global_step"] >= cfg.max_steps else None
    try:
        before = read_run_config(run)  # what the finished run was asked (config.yaml is rewritten later)
    except RunError:
        return None
    return summary if before.max_steps <= 0 and before.epochs == cfg.epochs else None


# ----------------------------------------------------------------------------------------------
# what a resume may change: a table; every other setting is compared with the run's saved config

# The keys a resumed SFT run honours exactly, and why. Everything else (learning rate, batch shape, data, model,
# LoRA, seed, schedule ...) is restored from the checkpoint or fixes the data order, so a changed value would be
# silently ignored (lr comes back from the scheduler's state) or would change what the saved steps meant
# (micro_batch_size reorders the data): resume_differences lists it and the resume is refused.
SFT_MAY_CHANGE: dict[str, str] = {
    "name": "names the run folder being resumed",
    "output_dir": "names the run folder being resumed",
    "resume": "says to resume",
    "overwrite": "contradicts resume (refused by validate)",
    "logging_steps": "applied from the first resumed step (trainlog.IntervalsFromArgs)",
    "save_steps": "applied from the first resumed step (trainlog.IntervalsFromArgs)",
    "save_total_limit": "read at each checkpoint rotation",
    "report_to": "the trackers are this session's callbacks",
    # The data is compared by content instead (data_fingerprint, check_same_launch): the same rows under another
    # path or from a recipe with other overrides that build them are the same run; other rows are refused.
    "data": "compared by content: train.jsonl + val.jsonl must hold the bytes the run trained on",
    "data_overrides": "compared by content with data",
}
# GRPO: the same, the number of sandbox processes (the same programs get the same verdicts), and how much of the
# card the vLLM engine holds and whether it sleeps (memory and time only: the same engine samples the same way).
# The settings that choose the questions (source, n, curriculum) are compared by what they choose
# (questions_fingerprint): the same questions from a copy of the file resume, other ones are refused.
# Every other GRPO key (loss, rollout backend, dynamic sampling, overlong shaping) is refused on change.
_BY_QUESTIONS = "compared by content: the questions (ids, texts, golds) trained on must be the same"
GRPO_MAY_CHANGE: dict[str, str] = {
    **SFT_MAY_CHANGE, "workers": "sandbox processes; verdicts do not depend on it",
    "vllm_gpu_memory_utilization": "the vLLM engine's memory share (another card)",
    "vllm_sleep": "whether the engine sleeps between rollouts (memory, not samples)",
    **{key: _BY_QUESTIONS for key in ("benchmark", "path", "hub", "config", "split", "n", "curriculum",
                                      "min_pass_rate", "max_pass_rate", "curriculum_unmatched")}}
# Keys whose change would also leave the restored learning-rate schedule planned for another budget.
SCHEDULE_KEYS = ("max_steps", "epochs", "lr", "lr_scheduler", "warmup_ratio")


# Settings that name a file or folder: compared by what they name, not by their text ("./data/tiny" and
# "data/tiny" are one folder). The training data is compared by content besides (data_fingerprint): a folder
# rebuilt with other rows under the same path is other data.
PATH_KEYS = ("data", "model.name", "model.chat_template", "questions", "path")


def _same_target(first: Any, second: Any) -> bool:
    """Whether two path settings name one existing file or folder (resolved against the current directory)."""
    if not isinstance(first, str) or not isinstance(second, str):
        return False
    one, two = Path(first).expanduser(), Path(second).expanduser()
    try:
        return one.exists() and two.exists() and os.path.samefile(one, two)
    except OSError:
        return False


def data_fingerprint(folder: str | Path) -> str:
    """sha256 (hex) over a built data folder's train.jsonl and val.jsonl bytes (a missing val.jsonl counts as
    absent): what a run trained on, whatever path named it. Streams the files in 1 MiB blocks."""
    digest = hashlib.sha256()
    for name in ("train.jsonl", "val.jsonl"):
        file = Path(folder) / name
        digest.update(f"{name}:{file.is_file()}\n".encode())
        if file.is_file():
            with file.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()


# What a run records about its launch in manifest.json's "training" section, checked on resume beside the
# settings: each key, and what it means in a refusal.
LAUNCH_FACTS = {
    "world_size": "processes (data-parallel ranks: the effective batch and each rank's rows depend on it)",
    "data_sha256": "training data content (sha256 of train.jsonl + val.jsonl)",
    "questions_sha256": "GRPO questions (sha256 of the ids, questions and golds trained on, after the curriculum)",
}


def questions_fingerprint(items: list[dict]) -> str:
    """sha256 (hex) over the (id, question, gold) of GRPO's training questions in order: an edited questions file
    under the same path, another curriculum or another n gives another fingerprint."""
    digest = hashlib.sha256()
    for item in items:
        digest.update(json.dumps([item["id"], item["question"], item["answer"]], ensure_ascii=False).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def check_same_launch(run_manifest: Path, now: Mapping[str, Any], fix: str) -> list[str]:
    """Refuse (TrainError) a resume whose launch facts (`now`: keys of LAUNCH_FACTS) differ from those the run
    recorded in `run_manifest`'s "training" section, naming each with both values. Returns the facts the run did
    not record (a run folder from before this check), which cannot be compared: the caller says so."""
    try:
        recorded = json.loads(run_manifest.read_text(encoding="utf-8")).get("training") or {}
    except (OSError, ValueError, AttributeError):
        recorded = {}
    unknown = [key for key in now if key not in recorded]
    changed = [f"{LAUNCH_FACTS[key]}: {recorded[key]!r} -> {value!r}" for key, value in now.items()
               if key in recorded and recorded[key] != value]
    if changed:
        raise TrainError(f"resume=true continues the run recorded in {run_manifest}, but {'; '.join(changed)}. "
                         f"{fix}")
    return unknown


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        flat: dict[str, Any] = {}
        for key, value in tree.items():
            flat.update(_flatten(value, f"{prefix}{key}."))
        return flat
    return {prefix.rstrip("."): tree}


def resume_differences(saved: dict[str, Any], asked: dict[str, Any], may_change: Mapping[str, str]) -> list[str]:
    """`key: saved -> asked` for every dotted key (nested mappings flattened: model.lora_r) whose value differs,
    but the keys of `may_change` (and their children) and the PATH_KEYS that name one existing file two ways. A
    key only one side has counts as differing (None on the other side)."""
    old, new = _flatten(saved), _flatten(asked)
    changed = []
    for key in list(old) + [k for k in new if k not in old]:
        if key in may_change or key.split(".")[0] in may_change:
            continue
        if key in PATH_KEYS and _same_target(old.get(key), new.get(key)):
            continue  # one file or folder named two ways
        if old.get(key) != new.get(key):
            changed.append(f"{key}: {old.get(key)!r} -> {new.get(key)!r}")
    return changed


def check_resume(checkpoint: str, saved_config: Path, cls: type, cfg: Any, may_change: Mapping[str, str]) -> None:
    """TrainError unless `cfg` asks for exactly what the run at `checkpoint` was trained with, but the keys of
    `may_change`; the message names every key that differs with both values (from `saved_config`, the run's
    config file, and the checkpoint's own step budget in trainer_state.json).

    Called before the run rewrites `saved_config`, so a refused resume leaves it describing what ran, and an
    accepted one writes only changes that are honoured.
    """
    if not saved_config.is_file():
        raise TrainError(f"resume=true: {checkpoint} has no {saved_config} beside it, so what it was trained with "
                         "cannot be checked; start a new run (name=<new name>, or overwrite=true)")
    try:
        saved = load_config(cls, saved_config)
    except ConfigError as err:
        raise TrainError(f"resume=true: {saved_config} cannot be read back ({err}); start a new run "
                         "(name=<new name>, or overwrite=true)") from err
    changed = resume_differences(to_dict(saved), to_dict(cfg), may_change)
    state_file = Path(checkpoint) / "trainer_state.json"
    planned = json.loads(state_file.read_text()).get("max_steps") if state_file.is_file() else None
    if cfg.max_steps > 0 and planned and cfg.max_steps != planned and not any(c.startswith("max_steps:")
                                                                            for c in changed):
        changed.append(f"max_steps: {planned} (the checkpoint's schedule) -> {cfg.max_steps}")
    if not changed:
        return
    schedule = [c for c in changed if c.split(":")[0] in SCHEDULE_KEYS]
    why = (f" The checkpoint restores its learning-rate schedule (planned for {planned} steps): the resumed steps "
           "would train at the rate the old schedule reached, not the one asked." if schedule else "")
    raise TrainError(f"resume=true continues {checkpoint} exactly as it was trained, but {len(changed)} "
                     f"setting{'s differ' if len(changed) > 1 else ' differs'} from {saved_config}: "
                     f"{'; '.join(changed)}.{why} A resume may change only "
                     f"{', '.join(sorted(k for k in may_change if k in to_dict(cfg)))}. Put "
                     "the others back, or start a new run with them (name=<new name>, or overwrite=true)")


def whole_run_loss(log_rows: list[dict], resumed_at: int, session_loss: float, steps: int) -> tuple[float, int]:
    """(mean training loss per optimizer step over the whole run, steps it covers).

    transformers' `training_loss` divides this session's summed loss by the global step, so after a resume it
    counts the steps before the checkpoint with loss 0. The steps up to `resumed_at` are read back from
    train_log.jsonl instead: each logged `loss` is the mean over the steps since the previous logged one
    (transformers Trainer._maybe_log_save_evaluate), so loss x gap sums them. A step the log does not cover (a
    checkpoint saved between two log lines by an older version) is left out of the mean and the count.
    """
    if resumed_at <= 0:
        return session_loss, steps
    before, previous = 0.0, 0
    covered = 0
    for row in sorted((r for r in log_rows if "loss" in r and r["step"] <= resumed_at), key=lambda r: r["step"]):
        gap = row["step"] - previous
        before += row["loss"] * gap
        covered += gap
        previous = row["step"]
    session_steps = steps - resumed_at
    total = before + session_loss * steps  # session_loss * steps: this session's summed loss
    counted = covered + session_steps
    return (total / counted if counted else session_loss), counted
