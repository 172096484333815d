"""`python -m arithmo.train --preset mistral7b_qlora [key=value ...]`: QLoRA SFT on a built recipe.

The recipe reads top to bottom:
  1. resolve the config (dataclass defaults < preset YAML < key=value overrides) and the run folder
  2. load the data: a built recipe folder, or a recipe YAML that is built first
  3. load the model (arithmo.model.load_model: unsloth | kernels | hf) with fresh LoRA adapters
  4. render every record to prompt/completion text (the same function evaluation uses)
  5. train with TRL's SFTTrainer: loss on the completion only, optional packing without cross-sample
     attention, checkpoints every N steps, resume from the last one, Ctrl-C saves a checkpoint
  6. save the adapter, the log and the summary

Run folder (its layout is arithmo/runs.py's): runs/<name>/{config.yaml, manifest.json, data/, checkpoints/,
adapter/, train_log.jsonl, summary.json}.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from arithmo import distributed
from arithmo.config import Stopped, preset_resolver, prog_name, recipe_main, save_config
from arithmo.io import DataError
from arithmo.resume import (SFT_MAY_CHANGE, check_resume, check_same_launch, data_fingerprint, finished_summary,
                            last_checkpoint, whole_run_loss)
from arithmo.runs import RunFolder
from arithmo.settings import TrainConfig, TrainError
from arithmo.sft import load_training_data, render_dataset, select_rows
from arithmo.tracking import tracker_callbacks

PRESETS = Path(__file__).parent / "configs" / "train"
log = logging.getLogger("arithmo.train")


# ----------------------------------------------------------------------------------------------
# the trainer


def build_trainer(model: Any, tokenizer: Any, train_ds, val_ds, cfg: TrainConfig, run: RunFolder):
    """TRL's SFTTrainer configured from `cfg`, with arithmo's log, progress bar and Ctrl-C handling."""
    import torch
    from transformers.trainer_callback import PrinterCallback, ProgressCallback
    from trl import SFTConfig, SFTTrainer

    from arithmo.trainlog import IntervalsFromArgs, JsonlLogger, ProgressBar, SaveOnInterrupt, trainer_arguments

    cuda = torch.cuda.is_available()
    trackers, tracker_names = tracker_callbacks(cfg.report_to, run)
    log.info("reporting to: %s", ", ".join(tracker_names) or "no tracker")
    args = SFTConfig(
        **trainer_arguments(cfg, run, cuda),
        per_device_eval_batch_size=cfg.micro_batch_size,
        num_train_epochs=cfg.epochs,
        max_length=cfg.model.max_seq_length,
        packing=cfg.packing,
        completion_only_loss=True,  # the loss never sees prompt tokens
        include_num_input_tokens_seen="non_padding",
        report_to=[],  # the trackers come as callbacks of this run (tracker_callbacks)
        project=os.getenv("TRACKIO_PROJECT", "arithmo"),  # trackio's project
        eval_strategy="no",
        dataset_num_proc=None,
        # Data parallel (torchrun / accelerate launch): on CPU, accelerate takes the multi-process path only with
        # use_cpu (else it runs each rank alone: "process group is initialized, but parallel_mode !=
        # DISTRIBUTED"), over gloo. LoRA leaves most parameters frozen: no unused-parameter search.
        use_cpu=not cuda,
        ddp_backend=None if cuda or not distributed.world_size() > 1 else "gloo",
        ddp_find_unused_parameters=False,
    )
    interrupt = SaveOnInterrupt()
    # TRL's dataset preparation maps (labels, truncation, fully masked rows) draw six progress bars that finish at
    # once for any set this kit trains on; render_dataset already printed what they count
    import datasets

    datasets.disable_progress_bars()
    try:
        trainer = SFTTrainer(model=model, args=args, train_dataset=train_ds, eval_dataset=val_ds,
                             processing_class=tokenizer, callbacks=[JsonlLogger(run.train_log), ProgressBar(), interrupt,
                                                                    IntervalsFromArgs(), *trackers])
    finally:
        datasets.enable_progress_bars()
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    trainer.create_model_card = lambda *args, **kwargs: None  # TRL's names no base for a local model; ours below
    return trainer, interrupt


def _step_of(checkpoint: str) -> int:
    """checkpoints/checkpoint-12 -> 12 (transformers' folder name)."""
    return int(Path(checkpoint).name.rsplit("-", 1)[-1])


def _tokens_at(checkpoint: str | None) -> int:
    """Input tokens the run had seen at `checkpoint` (its trainer_state.json), 0 for none: what a resumed session
    did not train itself."""
    if not checkpoint:
        return 0
    try:
        return int(json.loads((Path(checkpoint) / "trainer_state.json").read_text()).get("num_input_tokens_seen") or 0)
    except (OSError, ValueError):
        return 0


def _oom_advice(cfg: TrainConfig) -> str:
    return (f"out of GPU memory at max_seq_length={cfg.model.max_seq_length}, micro_batch_size="
            f"{cfg.micro_batch_size}. Try, in order: micro_batch_size={max(1, cfg.micro_batch_size // 2)} "
            f"grad_accum={cfg.grad_accum * 2} (same effective batch); model.gradient_checkpointing=true; "
            f"model.max_seq_length={cfg.model.max_seq_length // 2}; model.engine=unsloth or kernels.")


# ----------------------------------------------------------------------------------------------
# the recipe


def train(cfg: TrainConfig) -> dict[str, Any]:
    """Train one run as configured; returns the summary also written to <run>/summary.json."""
    # transformers (and torch) load here, not when `--help` or a settings error is all that is asked
    from arithmo.trainlog import read_train_log, truncate_train_log, write_summary

    import torch

    from arithmo.model import load_model

    # 1. engine, run folder and resolved config ----------------------------------------------
    from arithmo.model import prepare_engine
    from arithmo.plan import training_plan

    cfg, memory_plan = training_plan(cfg)  # GPU: predicted peak; model.auto_fit: shapes chosen to fit the card
    prepare_engine(cfg.model.engine, cfg.model.load_in_4bit)  # unsloth must be imported before trl/peft
    rank, world = distributed.start()  # torchrun / accelerate launch: one process per GPU (gloo on CPU)
    main_rank = rank == 0
    say = print if main_rank else (lambda *args, **kwargs: None)  # rank 0 speaks and writes the run folder
    run = RunFolder.of(cfg.output_dir, cfg.name)
    run_dir = run.root
    resume_from = last_checkpoint(run) if cfg.resume else None
    refit = "Launch it as it was, or start a new run (name=<new name>, or overwrite=true)"
    unrecorded: list[str] = []
    if resume_from:  # every setting as the checkpoint was trained, but the few SFT_MAY_CHANGE honours
        check_resume(resume_from, run.config, TrainConfig, cfg, SFT_MAY_CHANGE)
        unrecorded += check_same_launch(run.manifest, {"world_size": world}, refit)
    finished = finished_summary(run, resume_from, cfg) if resume_from else None
    if finished is not None:
        say(f"[train] {run_dir} already finished: step {finished['steps']} of its schedule "
            f"({resume_from}); nothing to train, summary kept. To train longer, start a new run with the larger "
            f"budget (name=<new name>, or overwrite=true).", flush=True)
        distributed.finish()
        return finished
    if cfg.resume and not resume_from:
        say(f"[train] resume=true, but {run.checkpoints} holds no checkpoint: starting a new run", flush=True)
    if last_checkpoint(run) and not cfg.resume and not cfg.overwrite:
        raise TrainError(f"{run_dir} already holds checkpoints: pass resume=true to continue it, "
                         f"overwrite=true to start over, or name=<new name>")
    if main_rank:
        if run_dir.exists() and cfg.overwrite:
            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)

    # 2. data: rank 0 builds a recipe YAML, the other ranks wait and read the same rows ---------
    # A resume must train on the bytes the run trained on: a recipe is rebuilt beside <run>/data and compared by
    # content (data_fingerprint), so that a refused resume leaves the run's data, config.yaml and log as they were.
    recipe = Path(cfg.data).suffix in (".yaml", ".yml")
    staging = run.root / "data.resume-check" if resume_from and recipe else None
    fingerprint = None
    if main_rank:
        if staging is not None and staging.exists():
            shutil.rmtree(staging)
        try:
            train_rows, val_rows, manifest = load_training_data(cfg.data, run, cfg.data_overrides, into=staging)
            fingerprint = data_fingerprint(staging or (run.data if recipe else Path(cfg.data)))
            if resume_from:
                unrecorded += check_same_launch(run.manifest, {"data_sha256": fingerprint}, refit)
        finally:
            if staging is not None and staging.exists():
                shutil.rmtree(staging)  # the same rows as <run>/data, or refused
        if unrecorded:
            say(f"[train] note: {run.manifest} records no {', '.join(unrecorded)} (a run folder from an older "
                "arithmo): not compared on this resume", flush=True)
        save_config(cfg, run.config)  # on a resume, differs from the saved one only in honoured keys
        if resume_from:
            truncate_train_log(run.train_log, _step_of(resume_from))  # those steps are trained again
    distributed.barrier()
    if not main_rank:
        built = run.data if recipe else Path(cfg.data)
        train_rows, val_rows, manifest = load_training_data(str(built), run, [])
    train_rows = select_rows(train_rows, cfg.styles, cfg.max_train_rows)
    val_rows = select_rows(val_rows, cfg.styles, None)
    if not train_rows:
        raise TrainError(f"no training rows of style {cfg.styles} in {cfg.data}")

    # 3. model --------------------------------------------------------------------------------
    m = cfg.model
    targets = "all-linear" if m.target_modules == ["all-linear"] else m.target_modules
    loaded = load_model(m.name, engine=m.engine, trainable=True, load_in_4bit=m.load_in_4bit, dtype=m.dtype,
                        max_seq_length=m.max_seq_length, lora_r=m.lora_r, lora_alpha=m.lora_alpha,
                        lora_dropout=m.lora_dropout, target_modules=targets,
                        gradient_checkpointing=m.gradient_checkpointing, seed=cfg.seed,
                        chat_template=m.chat_template)
    say(f"[train] engine={loaded.engine}: {loaded.reason}", flush=True)

    # 4. render and tokenize; rows over max_seq_length are counted and handled by long_rows -----
    train_ds, long_report = render_dataset(train_rows, loaded.tokenizer, m.template, m.max_seq_length,
                                           cfg.long_rows)
    val_ds, val_report = (render_dataset(val_rows, loaded.tokenizer, m.template, m.max_seq_length, cfg.long_rows)
                          if val_rows else (None, None))
    long_report["val_over_limit"] = val_report["over_limit"] if val_report else {}
    over = sum(long_report["over_limit"].values())
    say(f"[train] rows over max_seq_length={m.max_seq_length} tokens: {over} of {len(train_rows)}"
          + (f" ({', '.join(f'{k} {v}' for k, v in long_report['over_limit'].items())}; "
             f"{'dropped' if cfg.long_rows == 'drop' else 'truncated'}; longest {long_report['longest']})"
             if over else f" (longest {long_report['longest']})"), flush=True)
    manifest["training"] = {"long_rows": long_report, "world_size": world, "data_sha256": fingerprint}
    if main_rank:
        run.manifest.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")

    # 5. train --------------------------------------------------------------------------------
    trainer, interrupt = build_trainer(loaded.model, loaded.tokenizer, train_ds, val_ds, cfg, run)
    steps_note = f"{cfg.max_steps} steps" if cfg.max_steps > 0 else f"{cfg.epochs:g} epochs"
    batch = (f"{cfg.micro_batch_size * cfg.grad_accum * world} (micro {cfg.micro_batch_size} x accum "
             f"{cfg.grad_accum} x {world} processes)" if world > 1 else f"{cfg.micro_batch_size * cfg.grad_accum}")
    say(f"[train] {len(train_ds)} rows ({'+'.join(cfg.styles)}), {steps_note}, effective batch {batch}; "
        f"run folder {run_dir}" + (f"; resuming from {resume_from}" if resume_from else ""), flush=True)
    start = time.perf_counter()
    try:
        result = trainer.train(resume_from_checkpoint=resume_from)
    except torch.OutOfMemoryError as err:
        raise TrainError(_oom_advice(cfg)) from err
    seconds = time.perf_counter() - start

    # 6. save ---------------------------------------------------------------------------------
    trainer.save_model(str(run.adapter))  # rank 0 writes it (the Trainer checks)
    if main_rank:
        loaded.tokenizer.save_pretrained(str(run.adapter))
    val_loss = trainer.evaluate()["eval_loss"] if val_ds is not None and not interrupt.interrupted else None
    state = trainer.state
    resumed_at = _step_of(resume_from) if resume_from else 0
    log_rows = read_train_log(run.train_log) if main_rank and run.train_log.is_file() else []
    train_loss, loss_steps = whole_run_loss(log_rows, resumed_at, result.training_loss, state.global_step)
    summary = {
        "run": str(run_dir), "engine": loaded.engine, "model": m.name, "steps": state.global_step,
        "train_loss": train_loss, "val_loss": val_loss, "tokens_seen": int(state.num_input_tokens_seen),
        # this session's speed: its tokens over its seconds (tokens_seen is the whole run's after a resume)
        "tokens_per_s": round((state.num_input_tokens_seen - _tokens_at(resume_from)) / max(seconds, 1e-9), 1),
        "seconds": round(seconds, 1),
        "interrupted": interrupt.interrupted, "adapter": str(run.adapter), "rows": len(train_ds),
        "long_rows": long_report, "world_size": world,
    }
    if resumed_at:  # the whole run's loss: the logged steps before the checkpoint and this session's
        summary.update(resumed_from_step=resumed_at, train_loss_steps=loss_steps)
    if memory_plan:
        summary["memory_plan"] = memory_plan  # predicted; write_summary adds the measured peak beside it
    if main_rank:
        write_summary(run, summary)
        from arithmo.trainlog import write_model_card

        write_model_card(run.adapter, base_model=m.name, method="SFT", summary=summary, run_name=run_dir.name)
    distributed.finish()
    if interrupt.interrupted:  # no "done": the adapter is of step N of the schedule; exit 130 (config.Stopped)
        raise Stopped(f"[train] stopped by Ctrl-C at step {state.global_step}; checkpoint saved in "
                      f"{last_checkpoint(run)} and the adapter so far in {run.adapter}; continue with resume=true")
    loss_text = "n/a" if val_loss is None or math.isnan(val_loss) else f"{val_loss:.4f}"
    session = f" ({summary['steps'] - resumed_at} this session)" if resumed_at else ""
    say(f"[train] done: {summary['steps']} steps{session} in {summary['seconds']} s, train loss "
          f"{summary['train_loss']:.4f}, val loss {loss_text}, {summary['tokens_per_s']:,} tokens/s; "
          f"adapter in {summary['adapter']}", flush=True)
    return summary


# ----------------------------------------------------------------------------------------------
# CLI


resolve_preset = preset_resolver(PRESETS)  # a YAML path or a preset name (without .yaml)


def main(argv: list[str] | None = None) -> int:
    def errors():
        from arithmo.model import ModelError  # imports torch: after --help has had its chance to exit

        return TrainError, ModelError, DataError

    return recipe_main(argv, prog=prog_name("train"), cls=TrainConfig, run=train, errors=errors,
                       presets=PRESETS, example="smollm2_135m_cpu",
                       description="QLoRA/LoRA SFT of a causal LM on a data recipe (loss on completions only).")


if __name__ == "__main__":
    sys.exit(main())
