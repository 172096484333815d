"""Generation throughput on CPU: vLLM's CPU build against batched transformers, on the same 100 GSM8K test
questions with SmolLM2-135M-Instruct (the embedded model), greedy, chat template, in one run:

    .venv-vllm/bin/python bench/bench_generate.py [--items 100] [--max-new-tokens 128]   # after make test-vllm

Each backend is loaded once and warmed up on 4 questions; the timed part is generating every item
(`arithmo.generate.generate`, the path `python -m arithmo.eval` uses). Printed: items/s and output tokens/s for
each, their ratio, and how many greedy completions are identical. The questions come from the real GSM8K rows
beside the checkout (the script stops, saying so, when they are absent).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GSM8K = REPO.parent / "shared" / "data" / "gsm8k" / "test_first300.jsonl"


def timed(model, tokenizer, prompts, args) -> tuple[list[str], float]:
    from arithmo.generate import generate

    generate(model, tokenizer, prompts[:4], max_new_tokens=args.max_new_tokens, batch_size=args.batch_size)
    started = time.perf_counter()
    out = generate(model, tokenizer, prompts, max_new_tokens=args.max_new_tokens, batch_size=args.batch_size)
    return [choices[0] for choices in out], time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=16, help="transformers batch size")
    args = parser.parse_args()
    if not GSM8K.is_file():
        sys.exit(f"real rows not found: {GSM8K} is absent")
    from arithmo.generate import load_vllm
    from arithmo.model import load_model, plain_model_folder
    from arithmo.prompts import render_eval

    questions = [json.loads(line)["question"] for line in GSM8K.read_text().splitlines()[: args.items]]
    loaded = load_model("smollm2-135m-instruct", engine="hf", load_in_4bit=False, dtype="float32")
    prompts = [render_eval(q, "cot", loaded.tokenizer, "chat") for q in questions]
    hf_texts, hf_seconds = timed(loaded.model, loaded.tokenizer, prompts, args)
    engine = load_vllm(plain_model_folder("smollm2-135m-instruct"), dtype="float32")
    vllm_texts, vllm_seconds = timed(engine, None, prompts, args)
    tokens = {name: sum(len(loaded.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)
              for name, texts in (("hf", hf_texts), ("vllm", vllm_texts))}
    same = sum(a == b for a, b in zip(hf_texts, vllm_texts))
    print(f"{'backend':<28}{'items/s':>10}{'output tok/s':>14}")
    print(f"{'transformers (batch ' + str(args.batch_size) + ')':<28}{len(prompts) / hf_seconds:>10.2f}"
          f"{tokens['hf'] / hf_seconds:>14.1f}")
    print(f"{'vLLM CPU':<28}{len(prompts) / vllm_seconds:>10.2f}{tokens['vllm'] / vllm_seconds:>14.1f}")
    print(f"vLLM / transformers: x{hf_seconds / vllm_seconds:.2f} items/s; identical greedy completions "
          f"{same}/{len(prompts)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
