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

import argparse
import json
import logging
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from arithmo import distributed
from arithmo.config import ConfigError, describe, field, find_preset, load_config, save_config
from arithmo.io import DataError, read_file_rows
from arithmo.runs import RunFolder

PRESETS = Path(__file__).parent / "configs" / "train"
log = logging.getLogger("arithmo.train")


class TrainError(RuntimeError):
    """A training run cannot start or continue as configured; the message says what to change."""


# report_to's trackers: the module each needs (the pyproject.toml extra of the same name installs it).
TRACKERS = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow", "trackio": "trackio"}


@dataclass
class ModelConfig:
    name: str = field("smollm2-135m-instruct", help="hub id, local folder, .gguf file or embedded alias")
    engine: Literal["auto", "unsloth", "kernels", "hf"] = field("auto", help="training engine (docs/design.md)")
    load_in_4bit: bool | None = field(None, help="4-bit NF4 base weights (QLoRA); null: exactly when CUDA is present")
    dtype: str = field("auto", help="compute dtype: auto (bf16 on CUDA, fp32 on CPU), float32, bfloat16, float16")
    max_seq_length: int = field(1024, help="longest training sequence in tokens (longer rows: see long_rows)")
    lora_r: int = field(16, help="LoRA rank")
    lora_alpha: int = field(16, help="LoRA alpha (scale = alpha / r)")
    lora_dropout: float = field(0.0, help="LoRA dropout (0 lets unsloth use its fast path)")
    target_modules: list[str] = field(default_factory=lambda: ["all-linear"],
                                      help="modules to adapt; ['all-linear'] = every linear layer but lm_head")
    gradient_checkpointing: bool = field(True, help="recompute activations in backward to save memory")
    template: Literal["auto", "plain", "chat"] = field("auto", help="prompt template (arithmo.prompts)")
    chat_template: str | None = field(None, help="replace the tokenizer's chat template: chatml, llama3, mistral, "
                                      "alpaca (arithmo.model.CHAT_TEMPLATES) or a .jinja file; for base models "
                                      "that have none (then template=auto uses it)")


@dataclass
class TrainConfig:
    name: str = field("demo", help="run name: the run folder is <output_dir>/<name>")
    output_dir: str = field("runs", help="folder that holds run folders")
    data: str = field("data_recipes/tiny.yaml", help="a built data folder (train.jsonl, val.jsonl, manifest.json) "
                      "or a recipe YAML to build into <run>/data")
    data_overrides: list[str] = field(default_factory=list, help="key=value overrides for a recipe YAML")
    styles: list[Literal["cot", "pot", "tir"]] = field(default_factory=lambda: ["cot", "pot", "tir"],
                                                      help="row styles to train on (tir: tool-integrated reasoning)")
    max_train_rows: int | None = field(None, help="use at most this many training rows (after the style filter)")
    model: ModelConfig = field(default_factory=ModelConfig, help="model and LoRA")
    epochs: float = field(3.0, help="passes over the training rows (ignored when max_steps > 0)")
    max_steps: int = field(-1, help="optimizer steps to run; -1: as many as `epochs` take")
    micro_batch_size: int = field(4, help="sequences per forward pass")
    grad_accum: int = field(4, help="micro-batches per optimizer step (effective batch = micro x accum)")
    lr: float = field(2e-4, help="peak learning rate")
    lr_scheduler: str = field("cosine", help="transformers scheduler name: cosine, linear, constant_with_warmup ...")
    warmup_ratio: float = field(0.03, help="share of steps spent warming the learning rate up")
    weight_decay: float = field(0.0, help="AdamW weight decay")
    max_grad_norm: float = field(1.0, help="gradient clipping")
    optimizer: str = field("auto", help="auto (8-bit AdamW on CUDA, AdamW on CPU) or a transformers optim name")
    packing: bool = field(False, help="pack rows into max_seq_length sequences (no attention across rows)")
    long_rows: Literal["drop", "truncate", "error"] = field(
        "drop", help="rows longer than model.max_seq_length tokens: drop them (counted per source), truncate them "
                     "(the model then learns answers without their end), or stop with an error naming them")
    seed: int = field(42, help="seed for LoRA init, data order and dropout")
    save_steps: int = field(50, help="checkpoint every N optimizer steps (and at the end)")
    save_total_limit: int = field(2, help="checkpoints kept")
    logging_steps: int = field(5, help="log loss and tokens/s every N steps")
    resume: bool = field(False, help="continue from the run folder's last checkpoint (same data order and "
                                     "schedule); a run that already finished what is asked does nothing")
    overwrite: bool = field(False, help="delete an existing run folder of the same name first")
    report_to: str = field("auto", help="trackers, comma-separated: tensorboard, wandb, mlflow, trackio; none; auto "
                                        "(tensorboard when installed). Each is an extra: pip install 'arithmo[wandb]'")

    def validate(self) -> None:
        for key in ("micro_batch_size", "grad_accum", "save_steps", "logging_steps"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key}: expected >= 1, got {getattr(self, key)}")
        if self.max_steps <= 0 and self.epochs <= 0:
            raise ConfigError("epochs: expected > 0 when max_steps is not set")
        if not self.styles:
            raise ConfigError("styles: expected at least one of cot, pot, tir")
        trackers = [name.strip() for name in self.report_to.split(",")]
        unknown = [name for name in trackers if name not in TRACKERS and name not in ("auto", "none")]
        if unknown or not all(trackers) or (len(trackers) > 1 and {"auto", "none"} & set(trackers)):
            raise ConfigError(f"report_to: expected auto, none, or a comma-separated list of {', '.join(TRACKERS)}, "
                              f"got {self.report_to!r}")
        if self.resume and self.overwrite:
            raise ConfigError("resume=true and overwrite=true contradict each other: resume continues the run "
                              "folder's last checkpoint, overwrite deletes it; pass one of them")


# ----------------------------------------------------------------------------------------------
# data


def read_sft_file(path: Path) -> list[dict]:
    """SFT records from a JSONL file; a line that is not a record names the file, line and key."""
    rows = []
    try:
        for where, row in read_file_rows(path):
            for key in ("prompt", "completion", "style"):
                if not isinstance(row.get(key), str) or not row[key].strip():
                    raise TrainError(f"{where}: missing or empty '{key}' (SFT records need "
                                     f"id, source, style, prompt, completion)")
            rows.append(row)
    except DataError as err:
        raise TrainError(str(err)) from err
    return rows


def load_training_data(data: str, run: RunFolder, overrides: list[str]) -> tuple[list[dict], list[dict], dict]:
    """(train rows, val rows, manifest) from a built folder, or from a recipe YAML built into <run>/data."""
    path = Path(data)
    if path.suffix in (".yaml", ".yml"):
        from arithmo.data import build_from_recipe

        if not path.is_file():
            raise TrainError(f"data recipe not found: {path}")
        build_from_recipe(path, run.data, overrides, log=lambda line: log.info(line))
        path = run.data
    if not (path / "train.jsonl").is_file():
        raise TrainError(f"{path} is not a built data folder: expected train.jsonl (build one with "
                         f"python -m arithmo.data build RECIPE --out {path})")
    train_rows = read_sft_file(path / "train.jsonl")
    if not train_rows:
        raise TrainError(f"{path / 'train.jsonl'} holds no rows")
    val_rows = read_sft_file(path / "val.jsonl") if (path / "val.jsonl").is_file() else []
    manifest = json.loads((path / "manifest.json").read_text()) if (path / "manifest.json").is_file() else {}
    return train_rows, val_rows, manifest


def select_rows(rows: list[dict], styles: list[str], max_rows: int | None) -> list[dict]:
    chosen = [r for r in rows if r["style"] in styles]
    return chosen[:max_rows] if max_rows else chosen


def render_dataset(rows: list[dict], tokenizer: Any, template: str, max_seq_length: int | None = None,
                   long_rows: str = "drop") -> tuple[Any, dict[str, Any]]:
    """(a datasets.Dataset of {input_ids, completion_mask}, the long-row report) for SFT records.

    Rows are rendered by the function evaluation uses (`render_sft`: the completion ends with the end-of-turn
    token generation stops on) and tokenized here with the BOS rule generation uses (`tokenize_sft`), so TRL
    receives ids and does not re-tokenize (it would add a second BOS to templates that write one, and append
    the tokenizer's eos instead of the template's end of turn). A row longer than `max_seq_length` is dropped,
    truncated or an error (TrainError naming the first ones), by `long_rows`; the report counts them per
    source: {policy, max_seq_length, over_limit: {source: n}, rows, longest}.
    """
    from datasets import Dataset

    from arithmo.prompts import render_sft, tir_output_spans, tokenize_sft

    kept, over, longest = [], {}, 0
    for row in rows:
        rendered = render_sft(row, tokenizer, template)
        # TIR: the interpreter's output blocks are masked like the prompt (the model does not predict them)
        spans = tir_output_spans(rendered["completion"]) if row.get("style") == "tir" else ()
        ids, mask = tokenize_sft(rendered, tokenizer, spans)
        longest = max(longest, len(ids))
        if max_seq_length is not None and len(ids) > max_seq_length:
            over.setdefault(row.get("source", "?"), []).append(row.get("id", "?"))
            if long_rows == "drop":
                continue
            ids, mask = ids[:max_seq_length], mask[:max_seq_length]
        kept.append({"input_ids": ids, "completion_mask": mask})
    report = {"policy": long_rows, "max_seq_length": max_seq_length, "rows": len(rows),
              "over_limit": {source: len(ids) for source, ids in sorted(over.items())}, "longest": longest}
    if over and long_rows == "error":
        first = [row_id for ids in over.values() for row_id in ids][:5]
        raise TrainError(f"{sum(report['over_limit'].values())} rows are longer than model.max_seq_length="
                         f"{max_seq_length} tokens (per source: {report['over_limit']}; first: {', '.join(first)}; "
                         f"longest {longest}): raise model.max_seq_length, or long_rows=drop|truncate")
    if not kept:
        raise TrainError(f"every row is longer than model.max_seq_length={max_seq_length} tokens (longest "
                         f"{longest}): raise model.max_seq_length")
    return Dataset.from_list(kept), report


# ----------------------------------------------------------------------------------------------
# trainer


def _optimizer(name: str, cuda: bool) -> str:
    if name != "auto":
        return name
    if cuda:
        # 8-bit AdamW (bitsandbytes AdamW8bit): the QLoRA setup measured in docs/measurements.md.
        return "adamw_bnb_8bit"
    return "adamw_torch"


_open_wandb_runs: list = []  # the W&B run tracker_callbacks started last in this process (a notebook trains again)


def tracker_callbacks(report_to: str, run: RunFolder) -> tuple[list, list[str]]:
    """(transformers callbacks, tracker names) for `report_to`, each writing to this run only.

    transformers' own wiring leaks across two `train()` calls in one process (a notebook): TensorBoard takes its
    folder from TENSORBOARD_LOGGING_DIR, which a first run would leave set, and W&B logs into whatever run is
    still open. So TensorBoard gets <run>/tensorboard explicitly, and W&B a run of its own in <run>/wandb (the
    previous one this function started is finished first; one the user opened stays in use). W&B without network:
    WANDB_MODE=offline. trackio keeps its projects in TRACKIO_DIR (default ~/.cache/huggingface/trackio); mlflow
    follows MLFLOW_TRACKING_URI. Raises TrainError naming the extra when a tracker is not installed.
    """
    import importlib.util

    names = [name.strip() for name in report_to.split(",")]
    if names == ["auto"]:  # TensorBoard when it is installed, as before report_to existed
        names = ["tensorboard"] if importlib.util.find_spec("tensorboard") else []
    names = [name for name in names if name != "none"]
    for name in names:
        if importlib.util.find_spec(TRACKERS[name]) is None:
            raise TrainError(f"report_to={name}: {TRACKERS[name]} is not installed; pip install 'arithmo[{name}]'")
    callbacks = []
    if "tensorboard" in names:
        from transformers.integrations import TensorBoardCallback

        board = TensorBoardCallback()
        board.logging_dir = str(run.tensorboard)  # read in on_train_begin; wins over the environment
        callbacks.append(board)
    if "wandb" in names:
        from transformers.integrations import WandbCallback

        class RunWandb(WandbCallback):
            def setup(self, args, state, model, **kwargs):
                if state.is_world_process_zero:
                    if any(opened is self._wandb.run for opened in _open_wandb_runs):
                        self._wandb.finish()
                        _open_wandb_runs.clear()
                    if self._wandb.run is None:
                        run.root.mkdir(parents=True, exist_ok=True)
                        _open_wandb_runs.append(self._wandb.init(
                            project=os.getenv("WANDB_PROJECT", "arithmo"), name=args.run_name, dir=str(run.root)))
                super().setup(args, state, model, **kwargs)

        callbacks.append(RunWandb())
    if "mlflow" in names:
        from transformers.integrations import MLflowCallback

        callbacks.append(MLflowCallback())
    if "trackio" in names:
        from transformers.integrations import TrackioCallback

        callbacks.append(TrackioCallback())  # local unless TrainingArguments.trackio_space_id is set
    return callbacks, names


def build_trainer(model: Any, tokenizer: Any, train_ds, val_ds, cfg: TrainConfig, run: RunFolder):
    """TRL's SFTTrainer configured from `cfg`, with arithmo's log, progress bar and Ctrl-C handling."""
    import torch
    from transformers.trainer_callback import PrinterCallback, ProgressCallback
    from trl import SFTConfig, SFTTrainer

    from arithmo.trainlog import JsonlLogger, ProgressBar, SaveOnInterrupt

    cuda = torch.cuda.is_available()
    bf16 = cuda and torch.cuda.is_bf16_supported() and cfg.model.dtype in ("auto", "bfloat16", "bf16")
    trackers, tracker_names = tracker_callbacks(cfg.report_to, run)
    log.info("reporting to: %s", ", ".join(tracker_names) or "no tracker")
    args = SFTConfig(
        output_dir=str(run.checkpoints),
        per_device_train_batch_size=cfg.micro_batch_size,
        per_device_eval_batch_size=cfg.micro_batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        learning_rate=cfg.lr,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=cfg.warmup_ratio,  # transformers 5 reads a float < 1 as a share of the steps
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm,
        optim=_optimizer(cfg.optimizer, cuda),
        seed=cfg.seed,
        data_seed=cfg.seed,
        bf16=bf16,
        fp16=cuda and not bf16 and cfg.model.dtype in ("auto", "float16", "fp16"),
        max_length=cfg.model.max_seq_length,
        packing=cfg.packing,
        completion_only_loss=True,  # the loss never sees prompt tokens
        gradient_checkpointing=False,  # load_model already set it up (unsloth has its own)
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        logging_steps=cfg.logging_steps,
        logging_first_step=True,
        include_num_input_tokens_seen="non_padding",
        report_to=[],  # the trackers come as callbacks of this run (tracker_callbacks)
        run_name=cfg.name,
        project=os.getenv("TRACKIO_PROJECT", "arithmo"),  # trackio's project
        eval_strategy="no",
        dataloader_num_workers=0,
        dataloader_pin_memory=cuda,
        dataset_num_proc=None,
        disable_tqdm=True,  # our ProgressBar shows loss and tokens/s
        # Data parallel (torchrun / accelerate launch): on CPU, accelerate takes the multi-process path only with
        # use_cpu (else it runs each rank alone: "process group is initialized, but parallel_mode !=
        # DISTRIBUTED"), over gloo. LoRA leaves most parameters frozen: no unused-parameter search.
        use_cpu=not cuda,
        ddp_backend=None if cuda or not distributed.world_size() > 1 else "gloo",
        ddp_find_unused_parameters=False,
    )
    interrupt = SaveOnInterrupt()
    trainer = SFTTrainer(model=model, args=args, train_dataset=train_ds, eval_dataset=val_ds,
                         processing_class=tokenizer,
                         callbacks=[JsonlLogger(run.train_log), ProgressBar(), interrupt, *trackers])
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    return trainer, interrupt


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
    from arithmo.runs import RunError, read_run_config

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
    from arithmo.runs import RunError, read_run_config

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


def _oom_advice(cfg: TrainConfig) -> str:
    return (f"out of GPU memory at max_seq_length={cfg.model.max_seq_length}, micro_batch_size="
            f"{cfg.micro_batch_size}. Try, in order: micro_batch_size={max(1, cfg.micro_batch_size // 2)} "
            f"grad_accum={cfg.grad_accum * 2} (same effective batch); model.gradient_checkpointing=true; "
            f"model.max_seq_length={cfg.model.max_seq_length // 2}; model.engine=unsloth or kernels.")


# ----------------------------------------------------------------------------------------------
# the recipe


def train(cfg: TrainConfig) -> dict[str, Any]:
    """Train one run as configured; returns the summary also written to <run>/summary.json."""
    import torch

    from arithmo.model import load_model

    # 1. engine, run folder and resolved config ----------------------------------------------
    from arithmo.model import prepare_engine

    prepare_engine(cfg.model.engine, cfg.model.load_in_4bit)  # unsloth must be imported before trl/peft
    rank, world = distributed.start()  # torchrun / accelerate launch: one process per GPU (gloo on CPU)
    main_rank = rank == 0
    say = print if main_rank else (lambda *args, **kwargs: None)  # rank 0 speaks and writes the run folder
    run = RunFolder.of(cfg.output_dir, cfg.name)
    run_dir = run.root
    resume_from = last_checkpoint(run) if cfg.resume else None
    finished = finished_summary(run, resume_from, cfg) if resume_from else None
    if finished is not None:
        say(f"[train] {run_dir} already finished: step {finished['steps']} of its schedule "
            f"({resume_from}); nothing to train, summary kept. To train longer, start a new run with the larger "
            f"budget (name=<new name>, or overwrite=true).", flush=True)
        distributed.finish()
        return finished
    if resume_from:
        check_same_schedule(run, resume_from, cfg)
    elif cfg.resume:
        say(f"[train] resume=true, but {run.checkpoints} holds no checkpoint: starting a new run", flush=True)
    if last_checkpoint(run) and not cfg.resume and not cfg.overwrite:
        raise TrainError(f"{run_dir} already holds checkpoints: pass resume=true to continue it, "
                         f"overwrite=true to start over, or name=<new name>")
    if main_rank:
        if run_dir.exists() and cfg.overwrite:
            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, run.config)

    # 2. data: rank 0 builds a recipe YAML, the other ranks wait and read the same rows ---------
    if main_rank:
        train_rows, val_rows, manifest = load_training_data(cfg.data, run, cfg.data_overrides)
    distributed.barrier()
    if not main_rank:
        built = run.data if Path(cfg.data).suffix in (".yaml", ".yml") else Path(cfg.data)
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
    manifest["training"] = {"long_rows": long_report, "world_size": world}
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
    if interrupt.interrupted:
        say(f"[train] stopped by Ctrl-C; checkpoint saved in {last_checkpoint(run)}; continue with "
              f"resume=true", flush=True)

    # 6. save ---------------------------------------------------------------------------------
    trainer.save_model(str(run.adapter))  # rank 0 writes it (the Trainer checks)
    if main_rank:
        loaded.tokenizer.save_pretrained(str(run.adapter))
    val_loss = trainer.evaluate()["eval_loss"] if val_ds is not None and not interrupt.interrupted else None
    state = trainer.state
    summary = {
        "run": str(run_dir), "engine": loaded.engine, "model": m.name, "steps": state.global_step,
        "train_loss": result.training_loss, "val_loss": val_loss, "tokens_seen": int(state.num_input_tokens_seen),
        "tokens_per_s": round(state.num_input_tokens_seen / max(seconds, 1e-9), 1), "seconds": round(seconds, 1),
        "interrupted": interrupt.interrupted, "adapter": str(run.adapter), "rows": len(train_ds),
        "long_rows": long_report, "world_size": world,
    }
    if torch.cuda.is_available():
        summary["peak_reserved_gib"] = round(torch.cuda.max_memory_reserved() / 2**30, 2)
    if main_rank:
        run.summary.write_text(json.dumps(summary, indent=2) + "\n")
    distributed.finish()
    loss_text = "n/a" if val_loss is None or math.isnan(val_loss) else f"{val_loss:.4f}"
    say(f"[train] done: {summary['steps']} steps in {summary['seconds']} s, train loss "
          f"{summary['train_loss']:.4f}, val loss {loss_text}, {summary['tokens_per_s']:,} tokens/s; "
          f"adapter in {summary['adapter']}", flush=True)
    return summary


# ----------------------------------------------------------------------------------------------
# CLI


def resolve_preset(preset: str | None) -> Path | None:
    """A preset is a YAML path or the name of one in arithmo/configs/train/ (without .yaml)."""
    return None if preset is None else find_preset(preset, PRESETS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m arithmo.train", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="QLoRA/LoRA SFT of a causal LM on a data recipe (loss on completions only).",
        epilog="keys (override with key=value; dotted for nested, e.g. model.lora_r=32):\n"
        + "\n".join(describe(TrainConfig)))
    parser.add_argument("--preset", help="YAML preset path or name in arithmo/configs/train/, e.g. smollm2_135m_cpu")
    parser.add_argument("overrides", nargs="*", help="key=value overrides")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="[%(name)s] %(message)s")
    logging.getLogger("arithmo").setLevel(logging.INFO)  # ours at INFO; libraries' chatter stays out
    from arithmo.model import ModelError

    try:
        cfg = load_config(TrainConfig, resolve_preset(args.preset), args.overrides)
        train(cfg)
    except (ConfigError, TrainError, ModelError, DataError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
