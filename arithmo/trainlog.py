"""What a training run (SFT and GRPO alike) shows and keeps: the trainer arguments both recipes share, a progress
bar with loss, tokens/s and ETA, `train_log.jsonl`, a Ctrl-C that saves a checkpoint before it stops, and
summary.json. Plain `transformers.TrainerCallback`s, added to one trainer by `arithmo.train` or `arithmo.grpo`.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm
from transformers import TrainerCallback


class JsonlLogger(TrainerCallback):
    """Appends one JSON line per logging step: step, epoch, loss, lr, grad norm, tokens seen, tokens/s.

    A resumed run appends to the same file; readers keep the last line per step.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self._t0 = time.perf_counter()
        self._last = (self._t0, 0)  # (time, tokens seen) at the previous log line

    def on_train_begin(self, args, state, control, **kwargs):
        self._t0 = time.perf_counter()
        self._last = (self._t0, state.num_input_tokens_seen or 0)

    def on_log(self, args, state, control, logs: dict[str, Any] | None = None, **kwargs):
        if not logs or not state.is_world_process_zero:  # data parallel: rank 0 writes the run folder
            return
        now, tokens = time.perf_counter(), int(state.num_input_tokens_seen or 0)
        rate = (tokens - self._last[1]) / max(now - self._last[0], 1e-9)
        self._last = (now, tokens)
        row = {"step": state.global_step, "epoch": round(state.epoch or 0.0, 4)}
        row.update({k: v for k, v in logs.items() if isinstance(v, (int, float))})
        row.update({"tokens_seen": tokens, "tokens_per_s": round(rate, 1),
                    "elapsed_s": round(now - self._t0, 2)})
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")
        state.arithmo_tokens_per_s = rate  # read by the progress bar


class ProgressBar(TrainerCallback):
    """tqdm over optimizer steps; the postfix shows the last loss and tokens/s, tqdm shows the ETA."""

    def __init__(self):
        self.bar = None

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.bar = tqdm(total=state.max_steps, initial=state.global_step, desc="train", unit="step",
                            dynamic_ncols=True)

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.bar is not None and logs and "loss" in logs:
            rate = getattr(state, "arithmo_tokens_per_s", 0.0)
            self.bar.set_postfix(loss=f"{logs['loss']:.4f}", tok_s=f"{rate:,.0f}")

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


# A launcher (torchrun, accelerate launch) forwards the SIGINT it receives to every rank; a terminal's Ctrl-C
# reaches the launcher and the ranks at once, so each rank gets the same keypress twice within milliseconds
# (torch.distributed.elastic: the agent's SignalException handler closes the workers with the signal it got).
# SIGINTs this close to the first are that keypress, not a second one asking to abort.
SAME_KEYPRESS_S = 2.0


def launched() -> bool:
    """Whether a launcher that forwards signals started this process (torchrun / accelerate launch set these)."""
    import os

    return "TORCHELASTIC_RUN_ID" in os.environ or "LOCAL_RANK" in os.environ


def _rng_states() -> dict:
    """Every random state a checkpoint saves (transformers' _save_rng_state: Python, NumPy, torch CPU and CUDA)."""
    import random

    import numpy as np
    import torch

    return {"python": random.getstate(), "numpy": np.random.get_state(), "cpu": torch.random.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def _set_rng_states(states: dict) -> None:
    import random

    import numpy as np
    import torch

    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.random.set_rng_state(states["cpu"])
    if states["cuda"] is not None:
        torch.cuda.set_rng_state_all(states["cuda"])


class SaveOnInterrupt(TrainerCallback):
    """The first Ctrl-C asks the trainer to log, save a checkpoint and stop at the end of the current step, on
    every rank at the same step; a second Ctrl-C interrupts at once (Python's default). Under a launcher, the copy
    of the same Ctrl-C the launcher forwards (within SAME_KEYPRESS_S of the first) is not a second one.

    Under a launcher the ranks stop at the next micro-batch instead: torchrun kills its workers 30 s after it
    forwards the signal (--shutdown-timeout, TORCH_ELASTIC_SHUTDOWN_TIMEOUT), and a 7B's optimizer step of 64
    micro-batches takes longer. The checkpoint then holds the last whole step: the weights, optimizer and schedule
    are untouched until a step ends, the partial gradients are dropped, and the random states are put back to those
    the step began with, so the resumed run trains that step as an unbroken one would."""

    def __init__(self):
        self.interrupted = False
        self._previous = None
        self._first = 0.0
        self._step_rng: dict | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        try:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread (e.g. a notebook worker): leave SIGINT alone
            self._previous = None

    def _handle(self, signum, frame):
        now = time.monotonic()
        if self.interrupted:
            if launched() and now - self._first < SAME_KEYPRESS_S:
                return  # the launcher's forwarded copy of the keypress already handled
            raise KeyboardInterrupt
        self.interrupted = True
        self._first = now
        if os.environ.get("RANK", "0") == "0":  # every rank saves; one line says so (was printed per rank)
            print(f"\nCtrl-C: saving a checkpoint {'of the last whole step' if launched() else 'after this step'} "
                  f"(press again{' after 2 s' if launched() else ''} to abort without saving)", flush=True)

    def _agreed(self, args) -> bool:
        import torch.distributed as dist

        interrupted = self.interrupted
        if dist.is_available() and dist.is_initialized():
            # Data parallel: a Ctrl-C reaches the ranks at different steps; they agree to stop at the same one
            # (saving is collective: a rank that stopped alone would leave the others waiting forever). Every
            # micro-batch of every rank makes this one call (on_substep_end or on_step_end), so they pair up.
            import torch

            flag = torch.tensor([int(interrupted)], device=args.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            interrupted = bool(flag.item())
        return interrupted

    def on_step_begin(self, args, state, control, **kwargs):
        if launched():
            self._step_rng = _rng_states()

    def on_substep_end(self, args, state, control, **kwargs):
        if not launched() or not self._agreed(args):
            return control
        self.interrupted = True
        if self._step_rng is not None:
            _set_rng_states(self._step_rng)  # the checkpoint holds the states the unfinished step began with
        control.should_save = True  # saved after the loop: checkpoint-<the last whole step>
        control.should_training_stop = True
        return control

    def on_step_end(self, args, state, control, **kwargs):
        interrupted = self._agreed(args)
        if interrupted:
            self.interrupted = True
            control.should_save = True
            control.should_log = True  # the loss of the steps since the last log line (whole_run_loss reads it)
            control.should_training_stop = True
        return control

    def on_train_end(self, args, state, control, **kwargs):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None


class IntervalsFromArgs(TrainerCallback):
    """Make a resumed run honour the logging and saving intervals asked now, and log at every checkpoint.

    transformers restores `logging_steps` and `save_steps` from the checkpoint's trainer_state.json (and only
    warns that they differ), so a resume with logging_steps=10 would go on logging at the old interval; this sets
    them from the arguments at the start of every session (arithmo.resume.SFT_MAY_CHANGE lists them as changeable).
    A log line at each save makes the log cover every step up to a checkpoint, so a resumed run can report the
    whole run's loss (arithmo.resume.whole_run_loss).
    """

    def on_train_begin(self, args, state, control, **kwargs):
        state.logging_steps = args.logging_steps
        state.save_steps = args.save_steps

    def on_step_end(self, args, state, control, **kwargs):
        if control.should_save:
            control.should_log = True
        return control


def truncate_train_log(path: str | Path, step: int) -> int:
    """Drop the lines past `step` (steps a killed run logged after its last checkpoint, trained again by the
    resume); returns how many were dropped."""
    path = Path(path)
    if not path.is_file():
        return 0
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [line for line in lines if line.strip() and json.loads(line).get("step", 0) <= step]
    if len(kept) != len(lines):
        path.write_text("".join(kept), encoding="utf-8")
    return len(lines) - len(kept)


def read_train_log(path: str | Path) -> list[dict]:
    """The log's rows, the last one per step (a resumed run re-logs the steps after its checkpoint)."""
    by_step: dict[tuple[int, bool], dict] = {}
    for line in open(path, encoding="utf-8"):
        row = json.loads(line)
        # a step can have a training-loss line and a final summary line (train_runtime ...): keep both kinds
        by_step[(row["step"], "loss" in row)] = row
    return [by_step[k] for k in sorted(by_step)]


def trainer_arguments(cfg: Any, run: Any, cuda: bool) -> dict[str, Any]:
    """The TrainingArguments keywords that SFTConfig and GRPOConfig share, from a TrainConfig or GRPOTrainConfig
    (`cfg`) and its RunFolder. bf16 only on a GPU that has it: bf16 is ~27x slower than fp32 on these CPUs
    (docs/measurements.md)."""
    import torch

    from arithmo.settings import optimizer_name

    bf16 = cuda and torch.cuda.is_bf16_supported() and cfg.model.dtype in ("auto", "bfloat16", "bf16")
    return dict(
        output_dir=str(run.checkpoints),
        per_device_train_batch_size=cfg.micro_batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        max_steps=cfg.max_steps,
        learning_rate=cfg.lr,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=cfg.warmup_ratio,  # transformers 5 reads a float < 1 as a share of the steps
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm,
        optim=optimizer_name(cfg.optimizer, cuda),
        seed=cfg.seed,
        data_seed=cfg.seed,
        bf16=bf16,
        fp16=cuda and not bf16 and cfg.model.dtype in ("auto", "float16", "fp16"),
        gradient_checkpointing=False,  # load_model already set it up (unsloth has its own)
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        logging_steps=cfg.logging_steps,
        logging_first_step=True,
        run_name=cfg.name,
        dataloader_num_workers=0,
        dataloader_pin_memory=cuda,
        disable_tqdm=True,  # our ProgressBar shows loss, tokens/s (and GRPO's reward)
    )


def write_summary(run: Any, summary: dict[str, Any]) -> dict[str, Any]:
    """Add the CUDA peaks (GiB) when a GPU ran, write <run>/summary.json, return the summary."""
    import torch

    if torch.cuda.is_available():
        summary.update(peak_allocated_gib=round(torch.cuda.max_memory_allocated() / 2**30, 2),
                       peak_reserved_gib=round(torch.cuda.max_memory_reserved() / 2**30, 2))
    run.summary.write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def hub_base_model(name: str) -> str | None:
    """The hub id a model card may name as `base_model`: a hub id as given, the embedded alias's source model
    (smollm2-135m-instruct: HuggingFaceTB/SmolLM2-135M-Instruct), None for a local folder or file (a card must
    not point the hub at a path on this machine: TRL's then read "fine-tuned version of [None]")."""
    from pathlib import Path as _Path

    known = {"smollm2-135m-instruct": "HuggingFaceTB/SmolLM2-135M-Instruct"}
    if name in known:
        return known[name]
    if name.startswith((".", "/", "~")) or _Path(name).expanduser().exists() or name.count("/") != 1:
        return None
    return name


def write_model_card(folder: str | Path, *, base_model: str, method: str, summary: dict[str, Any],
                     run_name: str, merged: bool = False) -> Path:
    """README.md in an adapter folder (or, `merged`, in a folder of weights with the adapter merged in): YAML front
    matter the hub reads (base_model only when it is a hub id; library peft for an adapter, transformers for merged
    weights with base_model_relation finetune, the hub's term for a model trained from its base) and what was
    trained how, from summary.json's figures. Replaces peft's template card ("[More Information Needed]"
    throughout; "fine-tuned version of [None]" for a local base)."""
    folder = Path(folder)
    hub_id = hub_base_model(base_model)
    front = ["---", f"library_name: {'transformers' if merged else 'peft'}", "pipeline_tag: text-generation",
             "tags:", "- arithmo", "- lora", f"- {method.lower()}", "- math"] + \
        ([f"base_model: {hub_id}"] + (["base_model_relation: finetune"] if merged else []) if hub_id else []) + \
        ["---", ""]
    loss = summary.get("train_loss")
    figures = [f"- steps: {summary.get('steps')}" + (" (interrupted)" if summary.get("interrupted") else ""),
               f"- training loss (mean over the run's steps): {loss:.4f}" if isinstance(loss, (int, float)) else "",
               f"- validation loss: {summary['val_loss']:.4f}" if isinstance(summary.get("val_loss"), float) else "",
               f"- engine: {summary.get('engine')}"]
    base_text = f"[{hub_id}](https://huggingface.co/{hub_id})" if hub_id else f"the local model `{base_model}`"
    if merged:
        head = [f"# {run_name}: merged weights for math word problems", "",
                f"{base_text} with a LoRA adapter trained with arithmo ({method}) merged into its weights (plain "
                "transformers loads it; no peft needed).", ""]
        use = ["## Use", "", "```bash", "python -m arithmo.eval --preset gsm8k_cot model=<this folder>", "```", ""]
    else:
        head = [f"# {run_name}: a LoRA adapter for math word problems", "",
                f"A LoRA adapter trained with arithmo ({method}) on top of {base_text}.", ""]
        use = ["## Use", "", "```bash",
               f"python -m arithmo.eval --preset gsm8k_cot model={hub_id or base_model} adapter=<this folder>",
               "python -m arithmo.export <this folder> --out merged/   # 16-bit weights with the adapter merged in",
               "```", ""]
    body = [*head, "## Training", "", *[line for line in figures if line], "", *use]
    path = folder / "README.md"
    path.write_text("\n".join(front + body), encoding="utf-8")
    return path
