"""Resuming a run folder: its last checkpoint, whether it already finished, what a resume may change (a table;
every other setting must equal the run's saved config), and the whole run's training loss."""

from __future__ import annotations

import json
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
}
# GRPO: the same, and the number of sandbox processes (the same programs get the same verdicts).
GRPO_MAY_CHANGE: dict[str, str] = {**SFT_MAY_CHANGE, "workers": "sandbox processes; verdicts do not depend on it"}
# Keys whose change would also leave the restored learning-rate schedule planned for another budget.
SCHEDULE_KEYS = ("max_steps", "epochs", "lr", "lr_scheduler", "warmup_ratio")


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        flat: dict[str, Any] = {}
        for key, value in tree.items():
            flat.update(_flatten(value, f"{prefix}{key}."))
        return flat
    return {prefix.rstrip("."): tree}


def resume_differences(saved: dict[str, Any], asked: dict[str, Any], may_change: Mapping[str, str]) -> list[str]:
    """`key: saved -> asked` for every dotted key (nested mappings flattened: model.lora_r) whose value differs,
    but the keys of `may_change` (and their children). A key only one side has counts as differing (None on the
    other side)."""
    old, new = _flatten(saved), _flatten(asked)
    changed = []
    for key in list(old) + [k for k in new if k not in old]:
        if key in may_change or key.split(".")[0] in may_change:
            continue
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
                     f"{'; '.join(changed)}.{why} A resume may change only {', '.join(sorted(may_change))}. Put "
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
