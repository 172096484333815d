"""Resuming a run folder: its last checkpoint, whether it already finished, what a resume must agree with."""

from __future__ import annotations

import json
from pathlib import Path

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


def check_same_schedule(run: RunFolder, checkpoint: str, cfg: TrainConfig) -> None:
    """TrainError unless `cfg` asks for the step budget the checkpoint's schedule was planned for.

    A resumed run restores the optimizer and the learning-rate scheduler: the first resumed step trains at the
    rate the old schedule had reached (0 at its end, for cosine and linear decay), so a changed max_steps or
    epochs would train at the wrong rate -- after a finished cosine schedule, at 0, leaving the weights as they
    were while the run reports the extra steps.
    """
    state_file = Path(checkpoint) / "trainer_state.json"
    if not state_file.is_file():
        return
    planned = json.loads(state_file.read_text()).get("max_steps")
    try:
        before = read_run_config(run)
    except RunError:
        before = None
    changed = []
    if cfg.max_steps > 0 and planned and cfg.max_steps != planned:
        changed.append(f"max_steps {planned} -> {cfg.max_steps}")
    if before is not None and (before.max_steps, before.epochs) != (cfg.max_steps, cfg.epochs) and not changed \
            and cfg.max_steps <= 0:
        changed.append(f"epochs {before.epochs:g} -> {cfg.epochs:g}" if before.max_steps <= 0
                       else f"max_steps {before.max_steps} -> epochs {cfg.epochs:g}")
    if changed:
        raise TrainError(f"resume=true continues {checkpoint}'s learning-rate schedule, planned for {planned} steps, "
                         f"but this run asks for another budget ({'; '.join(changed)}): the resumed steps would train "
                         "at the rate the old schedule reached. Resume with the same budget, or start a new run with "
                         "the larger one (name=<new name>, or overwrite=true)")
