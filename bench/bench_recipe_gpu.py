"""The real training recipe (`arithmo.train.train`) on a random-initialised Mistral-7B architecture,
4-bit QLoRA, once per engine, side by side in one run: peak memory and tokens/s, as ratios to the HF stack.

    python bench/bench_recipe_gpu.py --model-dir /tmp/m7b --engines hf,unsloth --steps 10

Random weights cost the same memory and time as real ones (docs/measurements.md). Each engine runs in
its own process so one engine's patches and allocator state cannot leak into another's figures. The
anchor table in docs/measurements.md was measured with a plain loop, not the recipe: compare ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))


def make_mistral_7b(out_dir: Path) -> None:
    """Random Mistral-7B-v0.1 architecture in bf16 plus a small local tokenizer (vocab ids < 32000)."""
    import torch
    from transformers import MistralConfig, MistralForCausalLM

    from _shared import make_tokenizer

    if (out_dir / "config.json").is_file():
        return
    tokenizer = make_tokenizer(out_dir, chat_template=False)
    # Mistral-7B-v0.1's published config.json
    config = MistralConfig(vocab_size=32000, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                           num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=32768,
                           rms_norm_eps=1e-5, rope_theta=10000.0, sliding_window=4096, tie_word_embeddings=False,
                           bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                           pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    start = time.time()
    with torch.device("cuda"):
        model = MistralForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(out_dir, max_shard_size="5GB")
    print(f"[bench] random Mistral-7B written to {out_dir} in {time.time() - start:.0f} s", flush=True)


def run_engine(engine: str, model_dir: Path, work: Path, steps: int, seq: int, batch: int) -> dict:
    """One recipe run in a child process; returns its summary plus the steady-state tokens/s."""
    from arithmo.trainlog import read_train_log

    run_name = f"bench_{engine}"
    args = [f"name={run_name}", f"output_dir={work}", "data=data_recipes/tiny.yaml", "overwrite=true",
            f"model.name={model_dir}", f"model.engine={engine}", "model.load_in_4bit=true",
            "model.dtype=bfloat16", f"model.max_seq_length={seq}", "model.lora_r=16", "model.lora_alpha=16",
            "packing=true", f"micro_batch_size={batch}", "grad_accum=1", f"max_steps={steps}",
            f"save_steps={steps}", "logging_steps=1", "optimizer=adamw_bnb_8bit", "model.template=plain"]
    start = time.time()
    proc = subprocess.run([sys.executable, "-m", "arithmo.train", *args], cwd=REPO, capture_output=True,
                          text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    (work / f"{run_name}.log").write_text(proc.stdout + "\n" + proc.stderr)
    if proc.returncode != 0:
        return {"engine": engine, "error": proc.stderr[-2000:]}
    summary = json.loads((work / run_name / "summary.json").read_text())
    rows = [r for r in read_train_log(work / run_name / "train_log.jsonl") if "loss" in r]
    steady = [r["tokens_per_s"] for r in rows[len(rows) // 3:]]  # the first third compiles and warms up
    summary["steady_tokens_per_s"] = round(statistics.median(steady), 1) if steady else None
    summary["wall_s"] = round(time.time() - start, 1)
    summary["losses"] = [round(r["loss"], 4) for r in rows]
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", default="/tmp/m7b")
    parser.add_argument("--work", default="/tmp/bench_recipe")
    parser.add_argument("--engines", default="hf,unsloth")
    parser.add_argument("--steps", type=int, default=24)
    parser.add_argument("--seq", type=int, default=2048)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--results", default=None, help="append JSON lines here")
    args = parser.parse_args()

    model_dir, work = Path(args.model_dir), Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    make_mistral_7b(model_dir)
    results = []
    for engine in args.engines.split(","):
        result = run_engine(engine, model_dir, work, args.steps, args.seq, args.batch)
        results.append(result)
        print(json.dumps(result), flush=True)
        if args.results:
            with open(args.results, "a") as handle:
                handle.write(json.dumps({"shape": f"{args.batch}x{args.seq}", **result}) + "\n")
    base = next((r for r in results if r.get("engine") == "hf" and "error" not in r), None)
    print(f"\nrecipe, random Mistral-7B, 4-bit NF4, LoRA r=16 all linear, packed {args.batch}x{args.seq}")
    print(f"{'engine':<10}{'peak reserved GiB':>20}{'steady tok/s':>15}{'tok/s vs hf':>13}{'memory vs hf':>14}")
    for r in results:
        if "error" in r:
            print(f"{r['engine']:<10} failed: {r['error'].splitlines()[-1] if r['error'] else '?'}")
            continue
        speed = r["steady_tokens_per_s"] / base["steady_tokens_per_s"] if base else float("nan")
        memory = r.get("peak_reserved_gib", 0) / base["peak_reserved_gib"] if base else float("nan")
        print(f"{r['engine']:<10}{r.get('peak_reserved_gib', 0):>20.2f}{r['steady_tokens_per_s']:>15,.0f}"
              f"{speed:>12.2f}x{memory:>13.2f}x")


if __name__ == "__main__":
    main()
