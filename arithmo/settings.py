"""The training settings that several stages read: ModelConfig and TrainConfig (SFT), and the rules on them.

`runs.read_run_config` reads a run folder's config.yaml back into a TrainConfig; train, grpo, rft, eval, export
and the app ask it. These classes live below the recipes so that the run folder never imports a recipe.
Every field is typed, defaulted and documented (arithmo.config's rules); `--help` prints them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from arithmo.config import ConfigError, field


class TrainError(RuntimeError):
    """A training run cannot start or continue as configured; the message says what to change."""


# report_to's trackers: the module each needs (the pyproject.toml extra of the same name installs it).
TRACKERS = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow", "trackio": "trackio"}


@dataclass
class ModelConfig:
    name: str = field("smollm2-135m-instruct", help="hub id, local folder, .gguf file or embedded alias")
    engine: Literal["auto", "unsloth", "kernels", "hf"] = field("auto", help="training engine (docs/design.md)")
    load_in_4bit: bool | None = field(None, help="4-bit NF4 base weights (QLoRA); null: exactly when CUDA is present")
    dtype: Literal["auto", "float32", "bfloat16", "float16", "fp32", "bf16", "fp16"] = field(
        "auto", help="compute dtype: auto (bf16 on CUDA, fp32 on CPU), float32, bfloat16, float16 (or fp32, bf16, "
                     "fp16); checked before anything loads")
    max_seq_length: int = field(1024, help="longest training sequence in tokens (longer rows: see long_rows)")
    lora_r: int = field(16, help="LoRA rank")
    lora_alpha: int = field(16, help="LoRA alpha (scale = alpha / r)")
    lora_dropout: float = field(0.0, help="LoRA dropout (0 lets unsloth use its fast path)")
    target_modules: list[str] = field(default_factory=lambda: ["all-linear"],
                                      help="modules to adapt; ['all-linear'] = every linear layer but lm_head")
    gradient_checkpointing: bool = field(True, help="recompute activations in backward to save memory")
    auto_fit: bool = field(False, help="on a GPU, pick micro_batch_size, grad_accum, checkpointing and offload so the "
                           "predicted peak fits the card (arithmo.plan.auto_fit): SFT keeps the effective "
                           "batch; GRPO keeps whole groups and shrinks the generation batch last, saying so")
    template: Literal["auto", "plain", "chat"] = field("auto", help="prompt template (arithmo.prompts)")
    chat_template: str | None = field(None, help="replace the tokenizer's chat template: chatml, llama3, mistral, "
                                      "alpaca (arithmo.model.CHAT_TEMPLATES) or a .jinja file; for base models "
                                      "that have none (then template=auto uses it)")


    def validate(self) -> None:
        # peft and torch would raise these only after the model loaded, as a traceback (issue 31)
        if self.max_seq_length < 1:
            raise ConfigError(f"model.max_seq_length: expected >= 1 tokens, got {self.max_seq_length}")
        if self.lora_r < 1:
            raise ConfigError(f"model.lora_r: expected a LoRA rank >= 1, got {self.lora_r}")
        if not self.lora_alpha > 0:  # scale = alpha / r: 0 trains adapters that change nothing
            raise ConfigError(f"model.lora_alpha: expected > 0 (the LoRA scale is alpha / r), got {self.lora_alpha}")
        if not 0 <= self.lora_dropout < 1:
            raise ConfigError(f"model.lora_dropout: expected a probability in [0, 1), got {self.lora_dropout}")


def check_optimizer_settings(cfg) -> None:
    """ConfigError for an optimizer setting that cannot train: lr not > 0 (0 leaves the adapter at its init, a
    negative rate climbs the loss; torch raises only when the optimizer is built), warmup_ratio outside [0, 1],
    negative weight decay or gradient-norm bound. Shared by the SFT and GRPO configs (same field names)."""
    import math

    if not (math.isfinite(cfg.lr) and cfg.lr > 0):
        raise ConfigError(f"lr: expected a learning rate > 0, got {cfg.lr}")
    if not 0 <= cfg.warmup_ratio <= 1:
        raise ConfigError(f"warmup_ratio: expected a share of steps in [0, 1], got {cfg.warmup_ratio}")
    if cfg.weight_decay < 0:
        raise ConfigError(f"weight_decay: expected >= 0, got {cfg.weight_decay}")
    if cfg.max_grad_norm < 0:
        raise ConfigError(f"max_grad_norm: expected >= 0 (0: no clipping), got {cfg.max_grad_norm}")


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
        check_optimizer_settings(self)
        if self.save_total_limit < 1:
            raise ConfigError(f"save_total_limit: expected >= 1 checkpoint kept, got {self.save_total_limit}")
        if self.max_train_rows is not None and self.max_train_rows < 1:
            raise ConfigError(f"max_train_rows: expected >= 1 (or null for all rows), got {self.max_train_rows}")
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


def optimizer_name(name: str, cuda: bool) -> str:
    """The transformers `optim` name for `optimizer` (auto: 8-bit AdamW on CUDA, AdamW on CPU)."""
    if name != "auto":
        return name
    if cuda:
        # 8-bit AdamW (bitsandbytes AdamW8bit): the QLoRA setup measured in docs/measurements.md.
        return "adamw_bnb_8bit"
    return "adamw_torch"
