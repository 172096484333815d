"""One GRPO step with each rollout backend, side by side in one run: transformers `generate` (rollout=hf, the
anchor) and the colocated vLLM engine serving the adapter as a LoRA request (rollout=vllm, arithmo.rollout).

    .venv-vllm/bin/python bench/bench_grpo_rollout.py [--steps 3] [--questions 4] [--completion 128]  # CPU
    python bench/bench_grpo_rollout.py --preset qwen25math7b_qlora --steps 3 init=null ...            # GPU

Each backend runs `python -m arithmo.grpo` in its own process on the same questions (the real GSM8K training
rows beside the checkout, or the preset's), the same seed and the same settings, with the real grader. Read
from each run's train_log.jsonl: TRL's step_time and arithmo's rollout_s (generation, weight sync included) per
step; the first step is reported apart (it pays vLLM's first LoRA load and the allocator's warm-up), the others
by their median. Printed: a table with the ratio of each figure to the hf anchor, the vLLM engine's own load,
sync and generate seconds, and, on a GPU, the peak memory the card reported (nvidia-smi, polled every 0.5 s:
the engine's process included) beside the trainer's own peak (summary.json).

    python bench/bench_grpo_rollout.py --merge-check      # CPU (bitsandbytes NF4 works on CPU), main .venv

What TRL's own vLLM sync would do to a 4-bit base instead (trl 1.14.2 merges the adapter into the base weights,
pushes them, and unmerges, every step): SmolLM2 loaded in NF4, a LoRA with B drawn at the size of one step's
update on layer 0's 7 projections, then merge_adapter + unmerge_adapter, timed, and the base weights compared before and after (de-quantised):
the change is the rounding that accumulates step after step (huggingface/trl#3466). arithmo.rollout never merges.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GSM8K_TRAIN = REPO.parent / "shared" / "data" / "gsm8k" / "train_first500.jsonl"


class GpuPeak:
    """The largest memory.used (MiB) nvidia-smi reports while the block runs; None without nvidia-smi."""

    def __init__(self) -> None:
        self.peak: int | None = None
        self._stop = threading.Event()
        self._thread = None

    def __enter__(self):
        if shutil.which("nvidia-smi"):
            self._thread = threading.Thread(target=self._poll, daemon=True)
            self._thread.start()
        return self

    def _poll(self) -> None:
        while not self._stop.is_set():
            out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                                 capture_output=True, text=True).stdout.split()
            if out:
                self.peak = max(self.peak or 0, int(out[0]))
            time.sleep(0.5)

    def __exit__(self, *exc):
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def run(backend: str, args, out: Path) -> dict:
    overrides = [f"rollout={backend}", f"max_steps={args.steps}", f"output_dir={out}", f"name={backend}",
                 "overwrite=true", f"save_steps={args.steps}", f"seed={args.seed}"]
    if args.preset == "smollm2_135m_cpu":
        overrides += ["init=null", "benchmark=gsm8k", f"path={GSM8K_TRAIN}", f"n={args.questions * args.steps * 2}",
                      f"max_completion_length={args.completion}", "num_generations=4",
                      f"micro_batch_size={4 * args.questions}", "grad_accum=1", "model.max_seq_length=512"]
    overrides += args.overrides
    env = dict(os.environ, PYTHONPATH=str(REPO), VLLM_CPU_KVCACHE_SPACE=os.environ.get("VLLM_CPU_KVCACHE_SPACE", "2"))
    started = time.perf_counter()
    with GpuPeak() as gpu:
        done = subprocess.run([sys.executable, "-m", "arithmo.grpo", "--preset", args.preset, *overrides], env=env,
                              capture_output=True, text=True, cwd=REPO)
    if done.returncode:
        sys.exit(f"rollout={backend} failed:\n{done.stderr[-3000:]}")
    folder = out / backend
    rows = [json.loads(line) for line in (folder / "train_log.jsonl").read_text().splitlines()]
    rows = [r for r in rows if "step_time" in r]
    summary = json.loads((folder / "summary.json").read_text())
    later = rows[1:] or rows
    return {"first_step": rows[0]["step_time"], "step": statistics.median(r["step_time"] for r in later),
            "rollout": statistics.median(r["rollout_s"] for r in later), "first_rollout": rows[0]["rollout_s"],
            "tokens": statistics.median(r["completions/mean_length"] for r in later),
            "wall": time.perf_counter() - started, "engine": summary.get("rollout", {}),
            "trainer_peak_gib": summary.get("peak_reserved_gib"),
            "card_peak_mib": gpu.peak, "steps": len(rows)}


def merge_check(rounds: int = 3) -> None:
    """Time TRL's merge/unmerge sync on an NF4 base and measure what it leaves in the base weights."""
    import torch
    from bitsandbytes.functional import dequantize_4bit
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    from arithmo.model import plain_model_folder

    quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                               bnb_4bit_compute_dtype=torch.float32)
    model = AutoModelForCausalLM.from_pretrained(plain_model_folder("smollm2-135m-instruct"), quantization_config=quant,
                                                 device_map="cpu", dtype=torch.float32)
    # the first decoder layer's 7 projections only: bitsandbytes' CPU de/re-quantisation takes seconds per module
    # under load (all 210 did not finish in 15 minutes), and each module is rounded the same way
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, layers_to_transform=[0], target_modules=[
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]))
    torch.manual_seed(0)

    def base_weights():
        out = {}
        for name, module in model.named_modules():
            weight = getattr(getattr(module, "base_layer", None), "weight", None)
            if weight is not None and hasattr(weight, "quant_state"):
                out[name] = dequantize_4bit(weight.data, weight.quant_state).float().clone()
        return out

    before = base_weights()
    drift, seconds = [], []
    for _ in range(rounds):  # one round = one training step's sync: B moves by about lr (2e-5 .. 1e-3)
        with torch.no_grad():
            for name, parameter in model.named_parameters():
                if "lora_B" in name:
                    parameter.add_(torch.randn_like(parameter) * 1e-3)
        start = time.perf_counter()
        model.merge_adapter()
        model.unmerge_adapter()
        seconds.append(time.perf_counter() - start)
        after = base_weights()
        drift.append(max((after[k] - before[k]).abs().max().item() for k in before))
    changed = sum(int((base_weights()[k] != before[k]).sum()) for k in before)
    total = sum(t.numel() for t in before.values())
    print(f"merge+unmerge into NF4 (SmolLM2-135M layer 0's 7 projections, LoRA r=16), {rounds} syncs: "
          f"{statistics.median(seconds):.2f} s each; base weights changed after them: {changed} of {total} "
          f"({100 * changed / total:.1f}%), largest change after each sync {[f'{d:.2e}' for d in drift]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="smollm2_135m_cpu")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--questions", type=int, default=4, help="questions per step (CPU preset), 4 samples each")
    parser.add_argument("--completion", type=int, default=128, help="max_completion_length (CPU preset)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--merge-check", action="store_true", help="only time TRL's merge sync on an NF4 base")
    parser.add_argument("overrides", nargs="*", help="key=value for python -m arithmo.grpo")
    args = parser.parse_args()
    if args.merge_check:
        merge_check()
        return 0
    if args.preset == "smollm2_135m_cpu" and not GSM8K_TRAIN.is_file():
        sys.exit(f"real rows not found: {GSM8K_TRAIN} is absent")
    out = Path(tempfile.mkdtemp(prefix="bench_grpo_"))
    results = {backend: run(backend, args, out) for backend in ("hf", "vllm")}
    shutil.rmtree(out, ignore_errors=True)
    hf = results["hf"]
    print(f"GRPO step, preset {args.preset}, {args.steps} steps, overrides {args.overrides or '-'}")
    print(f"{'rollout':<8}{'step s':>9}{'x hf':>7}{'rollout s':>11}{'x hf':>7}{'train s':>9}{'1st step s':>12}"
          f"{'tokens':>8}{'card MiB':>10}")
    for name, r in results.items():
        train = r["step"] - r["rollout"]
        print(f"{name:<8}{r['step']:>9.1f}{hf['step'] / r['step']:>7.2f}{r['rollout']:>11.1f}"
              f"{hf['rollout'] / r['rollout']:>7.2f}{train:>9.1f}{r['first_step']:>12.1f}{r['tokens']:>8.0f}"
              f"{r['card_peak_mib'] if r['card_peak_mib'] is not None else '-':>10}")
    engine = results["vllm"]["engine"]
    seconds = engine.get("seconds", {})
    rollouts = max(engine.get("rollouts", 1), 1)
    print(f"vllm engine: load {seconds.get('load', 0):.1f} s (once), sync {seconds.get('sync', 0) / rollouts:.2f} "
          f"s/step (adapter {engine.get('adapter_bytes', 0) / 2**20:.1f} MiB saved and loaded as a LoRA request), "
          f"generate {seconds.get('generate', 0) / rollouts:.1f} s/step, {engine.get('sleep')}; trainer peak "
          f"{results['vllm']['trainer_peak_gib']} GiB (hf run {hf['trainer_peak_gib']} GiB)")
    print("x hf: how many times faster than the hf anchor (its seconds / this one's), medians of steps 2..N")
    return 0


if __name__ == "__main__":
    sys.exit(main())
