"""`python -m arithmo.grpo --preset smollm2_135m_cpu [key=value ...]`: GRPO on arithmo's grader and sandbox.

Group Relative Policy Optimization (Shao et al. 2024, DeepSeekMath, sec. 4.1): for each training question the
model samples `num_generations` completions, each is rewarded, and a completion's advantage is its reward minus
its group's mean (divided by the group's std), so no value model is needed. TRL's GRPOTrainer (trl 1.14.2) runs
the loop; arithmo supplies the model, the prompts and the rewards.

The recipe reads top to bottom:
  1. resolve the config, the run folder and the engine (QLoRA on GPU, LoRA on CPU: arithmo.model)
  2. load the training questions with their gold answers (arithmo.benchmarks); an item whose gold the grader
     cannot read is excluded and counted, never rewarded (arithmo.rewards.gold_problem)
  3. load the model with fresh LoRA adapters, or continue an SFT run's adapter (`init`)
  4. render the prompts as evaluation does (render_eval; a PoT question gets a hint phrase), in the ids
     generation uses (one BOS: `trl_prompt`)
  5. rewards: correctness by the strict grader (CoT) or by sandbox execution + grader (PoT), an optional format
     reward; the sandbox pool starts once for the run (arithmo.rewards.Rewards)
  6. train with GRPOTrainer (use_vllm=False; bf16 only on a GPU that has it): reward, accuracy and the failure
     shares go to train_log.jsonl every logging step and to the progress bar
  7. save the adapter and summary.json (reward and accuracy at the first and last logged steps, step time,
     verdict counts, peak GPU memory)

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
from arithmo.config import ConfigError, field, preset_resolver, recipe_main, save_config
from arithmo.io import DataError
from arithmo.runs import GRPO_CONFIG, RunFolder
from arithmo.resume import GRPO_MAY_CHANGE, check_resume, finished_summary, last_checkpoint, whole_run_loss
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
    beta: float = field(0.0, help="KL coefficient against the starting policy; 0 (TRL's default, as DAPO and "
                                  "Dr. GRPO) loads no reference model")
    epsilon: float = field(0.2, help="PPO clipping range of the probability ratio")
    loss_type: Literal["grpo", "dr_grpo", "dapo", "bnpo"] = field("dapo", help="token-loss aggregation (TRL's; "
                                                                              "dapo: TRL's default)")
    scale_rewards: Literal["group", "batch", "none"] = field("group", help="divide advantages by the group's std "
                                                                          "(group), the batch's, or not at all")
    mask_truncated_completions: bool = field(False, help="leave completions cut at max_completion_length out of "
                                                         "the loss (DAPO)")
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
        if self.temperature <= 0 or not 0 < self.top_p <= 1 or min(self.format_weight, self.beta) < 0 \
                or not self.styles:
            raise ConfigError(f"expected temperature > 0 (got {self.temperature}), top_p in (0, 1] ({self.top_p}), "
                              f"format_weight >= 0 ({self.format_weight}), beta >= 0 ({self.beta}), at least one of "
                              f"styles cot, pot ({self.styles})")
        if self.benchmark not in NAMES or (self.benchmark == "file" and self.path is None):
            raise ConfigError(f"benchmark: expected one of {', '.join(NAMES)}, got {self.benchmark!r} (benchmark=file "
                              f"needs path=<EvalItem .jsonl/.json/.parquet file>, got path={self.path!r})")
        if self.resume and self.overwrite:
            raise ConfigError("resume=true and overwrite=true contradict each other; pass one of them")


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
        """The progress bar with the batch's reward and accuracy beside the loss."""

        def on_log(self, args, state, control, logs=None, **kwargs):
            if self.bar is not None and logs and "reward" in logs:
                shown = {"reward": logs.get("reward"), "acc": logs.get("accuracy"), "loss": logs.get("loss")}
                self.bar.set_postfix({k: f"{v:.3f}" for k, v in shown.items() if isinstance(v, (int, float))})

    interrupt = SaveOnInterrupt()
    return [JsonlLogger(run.train_log), RewardBar(), interrupt, IntervalsFromArgs()], interrupt


def build_trainer(model: Any, tokenizer: Any, dataset: Any, rewards: Any, cfg: GRPOTrainConfig, run: RunFolder):
    """TRL's GRPOTrainer configured from `cfg`, with arithmo's log, progress bar and Ctrl-C handling."""
    import importlib.util

    import torch
    from transformers.trainer_callback import PrinterCallback, ProgressCallback
    from trl import GRPOConfig, GRPOTrainer

    from arithmo.trainlog import trainer_arguments

    cuda = torch.cuda.is_available()
    tensorboard = importlib.util.find_spec("tensorboard") is not None
    if tensorboard:
        os.environ.setdefault("TENSORBOARD_LOGGING_DIR", str(run.tensorboard))
    args = GRPOConfig(
        **trainer_arguments(cfg, run, cuda),
        num_generations=cfg.num_generations,
        max_completion_length=cfg.max_completion_length,
        temperature=cfg.temperature,
        top_p=cfg.top_p,
        top_k=0,  # temperature + nucleus only, as arithmo.generate samples
        beta=cfg.beta,
        epsilon=cfg.epsilon,
        loss_type=cfg.loss_type,
        scale_rewards=cfg.scale_rewards,
        mask_truncated_completions=cfg.mask_truncated_completions,
        reward_weights=rewards.weights,
        use_vllm=False,
        report_to=["tensorboard"] if tensorboard else [],
        log_completions=False,
    )
    callbacks, interrupt = _callbacks(run)
    trainer = GRPOTrainer(model=model, reward_funcs=rewards.funcs, args=args, train_dataset=dataset,
                          processing_class=tokenizer, callbacks=callbacks)
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    trainer.create_model_card = lambda *args, **kwargs: None  # TRL's names no base for a local model; ours below
    return trainer, interrupt


# ----------------------------------------------------------------------------------------------
# the recipe


def grpo(cfg: GRPOTrainConfig) -> dict[str, Any]:
    """Run GRPO as configured; returns the summary also written to <run>/summary.json."""
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
        print(f"[grpo] {run.root} already finished step {finished['steps']} ({resume_from}); nothing to train. "
              "Raise max_steps to train further, or overwrite=true to start over.", flush=True)
        return finished
    if run.root.exists() and cfg.overwrite:
        shutil.rmtree(run.root)
    elif last_checkpoint(run) and not cfg.resume:
        raise GRPOError(f"{run.root} already holds checkpoints: pass resume=true to continue it, overwrite=true to "
                        "start over, or name=<new name>")
    run.root.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run.root / CONFIG)  # on a resume, differs from the saved one only in honoured keys
    if resume_from:
        from arithmo.trainlog import truncate_train_log

        truncate_train_log(run.train_log, int(Path(resume_from).name.rsplit("-", 1)[-1]))  # trained again

    # 2. questions; golds the grader cannot read are excluded, counted -------------------------
    items = load_items(cfg.benchmark, path=cfg.path, hub=cfg.hub, config=cfg.config, split=cfg.split, n=cfg.n)
    problems = {item["id"]: gold_problem(item["answer"], cfg.grade_timeout_s) for item in items}
    excluded = {item_id: why for item_id, why in problems.items() if why is not None}
    kept = [item for item in items if problems[item["id"]] is None]
    print(f"[grpo] {len(kept)} of {len(items)} questions; {len(excluded)} excluded (the grader cannot read their "
          f"gold answer" + (f"; first: {', '.join(list(excluded)[:5])})" if excluded else ")"), flush=True)
    if not kept:
        raise GRPOError(f"no question of {cfg.benchmark} ({cfg.path or cfg.split}) has a gold answer the grader reads")
    manifest = {"questions": {"source": source_of(cfg.benchmark, path=cfg.path, hub=cfg.hub, config=cfg.config,
                                                  split=cfg.split), "n": len(items), "used": len(kept),
                              "excluded_unreadable_gold": excluded}, "styles": cfg.styles}
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
    print(f"[grpo] engine={loaded.engine}: {loaded.reason}" + (f"; training on from {adapter}" if adapter else ""),
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
                      tokenizer=loaded.tokenizer, stop=stop_strings(loaded.tokenizer, m.template))

    # 6. train -------------------------------------------------------------------------------
    try:
        trainer, interrupt = build_trainer(loaded.model, loaded.tokenizer, dataset, rewards, cfg, run)
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
    if interrupt.interrupted:
        print(f"[grpo] stopped by Ctrl-C; checkpoint saved in {last_checkpoint(run)}; continue with resume=true",
              flush=True)

    # 7. save ----------------------------------------------------------------------------------
    trainer.save_model(str(run.adapter))
    loaded.tokenizer.save_pretrained(str(run.adapter))
    from arithmo.trainlog import read_train_log, write_summary

    curve = [row for row in read_train_log(run.train_log) if "reward" in row] if run.train_log.is_file() else []
    steps = max(trainer.state.global_step, 1)
    resumed_at = int(Path(resume_from).name.rsplit("-", 1)[-1]) if resume_from else 0
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
    if resumed_at:
        summary.update(resumed_from_step=resumed_at, train_loss_steps=loss_steps)
    if memory_plan:
        summary["memory_plan"] = memory_plan  # predicted; write_summary adds the measured peak beside it
    write_summary(run, summary)
    from arithmo.trainlog import write_model_card

    write_model_card(run.adapter, base_model=m.name, method="GRPO", summary=summary, run_name=run.root.name)
    first, last = summary["first"] or {}, summary["last"] or {}
    print(f"[grpo] done: {summary['steps']} steps in {summary['seconds']} s ({summary['seconds_per_step']} s/step); "
          f"reward {first.get('reward')} -> {last.get('reward')}, accuracy {first.get('accuracy')} -> "
          f"{last.get('accuracy')}; verdicts {summary['verdicts']}; adapter in {summary['adapter']}", flush=True)
    return summary


# ----------------------------------------------------------------------------------------------
# CLI


resolve_preset = preset_resolver(PRESETS)  # a YAML path or a preset name (without .yaml)


def main(argv: list[str] | None = None) -> int:
    def errors():
        from arithmo.model import ModelError  # imports torch: after --help has had its chance to exit

        return GRPOError, TrainError, ModelError, DataError

    return recipe_main(argv, prog="python -m arithmo.grpo", cls=GRPOTrainConfig, run=grpo, errors=errors,
                       presets=PRESETS, example="smollm2_135m_cpu",
                       description="GRPO (TRL's GRPOTrainer) rewarded by arithmo's grader and PoT sandbox.")


if __name__ == "__main__":
    sys.exit(main())
