#!/usr/bin/env python3
"""QLoRA training speed and memory: the HF stack, arithmo's `kernels` engine and unsloth side by side.

    python bench/bench_train.py --quick            CPU smoke run: tiny Mistral (4-bit when bitsandbytes is
                                                   installed), kernels under Triton's interpreter
    python bench/bench_train.py run --out DIR      GPU: random-init Mistral-7B architecture, every stack at
          [--stacks kernels,unsloth,hf] [--shapes 4x2048,1x4096] [--maxseq kernels] [--deadline 480]
    python bench/bench_train.py table FILE         the table of an earlier run's results.jsonl

`run` saves the model once (bf16, random weights cost what real ones do), then runs ONE PROCESS PER STACK
(unsloth patches transformers globally on import), each loading it its own way, training with the same
plain loop (random token ids, labels = inputs, autocast bf16, bitsandbytes AdamW8bit), and prints tokens/s
and peak reserved memory with ratios to unsloth and to the HF stack. Stacks:
  hf       transformers + peft + bitsandbytes NF4 (double quant, bf16 compute), prepare_model_for_kbit_training,
           LoRA r=16 alpha=16 on all linear layers, gradient checkpointing (non-reentrant)
  kernels  the same 4-bit model and LoRA, base weights frozen in bf16 (no fp32 upcast of norms/embeddings/
           lm_head), arithmo.kernels.apply_kernels(offload_checkpoints=True), expandable CUDA segments
  unsloth  FastLanguageModel 4-bit + get_peft_model(use_gradient_checkpointing="unsloth")
Anchors (docs/measurements.md "GPU anchors", H100, same architecture and loop): HF 5,750 tok/s / 15.4 GiB at 4x2048 and
4,650 / 10.2 at 1x4096; unsloth 10,860 / 6.7 and 9,650 / 5.6; longest seq in 22 GiB: HF 14,336, unsloth 45,056.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

GiB = float(1 << 30)
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
ANCHORS = {  # (stack, batch, seq) -> (tokens/s, reserved GiB): docs/measurements.md "GPU anchors", medians of two runs
    ("hf", 4, 2048): (5750, 15.38), ("hf", 1, 4096): (4650, 10.23),
    ("unsloth", 4, 2048): (10860, 6.69), ("unsloth", 1, 4096): (9650, 5.56),
}
ANCHOR_MAXSEQ = {"hf": 14336, "unsloth": 45056}


def emit(results: str | None, record: dict) -> None:
    record = {**record, "t_unix": round(time.time(), 1)}
    line = json.dumps(record, default=str)
    print("RESULT " + line, flush=True)
    if results:
        with open(results, "a") as f:
            f.write(line + "\n")


# ------------------------------------------------------------------------------------------ the model
def model_config(arch: str):
    from transformers import MistralConfig

    if arch == "mistral7b":  # mistralai/Mistral-7B-v0.1's config.json
        return MistralConfig(vocab_size=32000, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                             num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=32768,
                             rms_norm_eps=1e-5, rope_theta=10000.0, sliding_window=4096, tie_word_embeddings=False,
                             bos_token_id=1, eos_token_id=2, pad_token_id=3)
    if arch == "tiny":  # CPU smoke run; hidden 64 = one bitsandbytes 4-bit block
        return MistralConfig(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                             sliding_window=4096, tie_word_embeddings=False, bos_token_id=1, eos_token_id=2,
                             pad_token_id=3)
    raise SystemExit(f"unknown --arch {arch!r}: mistral7b or tiny")


def word_tokenizer(vocab_size: int):
    """A whitespace word-level tokenizer over w4..wN: unsloth loads one from the model folder."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(["<unk>", "<s>", "</s>", "<pad>"])}
    vocab.update({f"w{i}": i for i in range(len(vocab), vocab_size)})
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                   pad_token="<pad>", model_max_length=1 << 20)


def make_model(arch: str, out: str, device: str) -> dict:
    import torch
    from transformers import AutoModelForCausalLM

    t0 = time.time()
    torch.manual_seed(0)
    config = model_config(arch)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16 if device == "cuda" else torch.float32)
    model.save_pretrained(out, max_shard_size="5GB")
    word_tokenizer(config.vocab_size).save_pretrained(out)
    return {"phase": "make", "arch": arch, "dir": out, "seconds": round(time.time() - t0, 1),
            "n_params": sum(p.numel() for p in model.parameters())}


# ------------------------------------------------------------------------------------------ the stacks
def load_stack(stack: str, model_dir: str, max_seq: int, device: str):
    """(model, info) for one stack; every base weight frozen, LoRA r=16 alpha=16 on all linear layers."""
    import torch

    cuda = device == "cuda"
    info: dict = {}
    t0 = time.time()
    if stack == "unsloth":
        from unsloth import FastLanguageModel

        model, _ = FastLanguageModel.from_pretrained(model_name=model_dir, max_seq_length=max_seq,
                                                     load_in_4bit=True, dtype=torch.bfloat16)
        model = FastLanguageModel.get_peft_model(model, r=16, lora_alpha=16, lora_dropout=0, bias="none",
                                                 target_modules=TARGETS, use_gradient_checkpointing="unsloth",
                                                 random_state=3407, max_seq_length=max_seq)
    else:
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModelForCausalLM

        quant = None
        if cuda or _bitsandbytes_installed():
            from transformers import BitsAndBytesConfig

            quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                       bnb_4bit_compute_dtype=torch.bfloat16 if cuda else torch.float32)
        info["four_bit"] = quant is not None
        model = AutoModelForCausalLM.from_pretrained(
            model_dir, quantization_config=quant, dtype=torch.bfloat16 if cuda else torch.float32,
            device_map={"": 0} if cuda else "cpu", attn_implementation="sdpa", local_files_only=True)
        model.config.use_cache = False
        if stack == "hf":
            from peft import prepare_model_for_kbit_training

            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True,
                                                    gradient_checkpointing_kwargs={"use_reentrant": False})
        else:
            model.requires_grad_(False)  # bf16 stays bf16: the fp32 upcast is what doubles HF's activations
        lora = LoraConfig(r=16, lora_alpha=16, lora_dropout=0.0, bias="none", target_modules=TARGETS,
                          task_type="CAUSAL_LM")
        model = get_peft_model(model, lora)
        if stack == "kernels":
            from arithmo.kernels import apply_kernels

            info["apply_kernels"] = apply_kernels(model, offload_checkpoints=True)
    model.train()
    info["load_s"] = round(time.time() - t0, 1)
    info["trainable_params"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if cuda:
        info["mem_after_load_GiB"] = round(torch.cuda.memory_allocated() / GiB, 3)
    return model, info


def _bitsandbytes_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("bitsandbytes") is not None


def make_optimizer(model, device: str):
    params = [p for p in model.parameters() if p.requires_grad]
    if device == "cuda" or _bitsandbytes_installed():
        import bitsandbytes as bnb

        return bnb.optim.AdamW8bit(params, lr=2e-4, weight_decay=0.0)
    import torch

    return torch.optim.AdamW(params, lr=2e-4, weight_decay=0.0)


def one_step(model, optimizer, ids, device: str) -> float:
    import torch

    with torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda"):
        loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss.detach().item()


def is_oom(error: BaseException) -> bool:
    import torch

    return isinstance(error, torch.OutOfMemoryError) or "out of memory" in str(error).lower()


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def cmd_worker(args) -> None:
    """One stack: load, then per shape a fresh optimizer, warm-up steps, timed steps (median)."""
    if args.stack == "unsloth":
        import unsloth  # noqa: F401  (before transformers, as unsloth requires)
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    shapes = [tuple(int(v) for v in s.split("x")) for s in args.shapes.split(",")]
    model, info = load_stack(args.stack, args.model, max(s for _, s in shapes), device)
    base = {"phase": "train", "stack": args.stack, "device": torch.cuda.get_device_name(0) if device == "cuda"
            else "cpu", "alloc_conf": os.environ.get("PYTORCH_CUDA_ALLOC_CONF", "")}
    emit(args.results, {**base, "event": "loaded", **info})
    vocab = model.config.vocab_size
    gen = torch.Generator(device=device).manual_seed(1234)
    for batch, seq in shapes:
        record = {**base, "batch": batch, "seq": seq}
        optimizer = None
        try:
            gc.collect()
            if device == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
            optimizer = make_optimizer(model, device)
            times, losses = [], []
            for step in range(args.warmup + args.steps):
                ids = torch.randint(0, vocab, (batch, seq), device=device, generator=gen)
                _sync(device)
                t0 = time.perf_counter()
                losses.append(one_step(model, optimizer, ids, device))
                _sync(device)
                if step >= args.warmup:
                    times.append(time.perf_counter() - t0)
            median = statistics.median(times)
            record.update(ok=True, tokens_per_s=round(batch * seq / median, 1), step_s=round(median, 4),
                          step_s_min=round(min(times), 4), step_s_max=round(max(times), 4),
                          loss_first=round(losses[0], 4), loss_last=round(losses[-1], 4),
                          loss_finite=all(math.isfinite(v) for v in losses), timed_steps=len(times))
        except Exception as error:  # noqa: BLE001  (recorded: an OOM or a crash is a result)
            record.update(ok=False, oom=is_oom(error), error=f"{type(error).__name__}: {str(error)[:1500]}",
                          traceback=traceback.format_exc()[-2500:])
        if device == "cuda":
            record.update(peak_alloc_GiB=round(torch.cuda.max_memory_allocated() / GiB, 3),
                          peak_reserved_GiB=round(torch.cuda.max_memory_reserved() / GiB, 3))
        emit(args.results, record)
        del optimizer
        model.zero_grad(set_to_none=True)


def cmd_maxseq(args) -> None:
    """Longest sequence at batch 1 that trains one step under a memory cap: probe up, then down."""
    if args.stack == "unsloth":
        import unsloth  # noqa: F401
    import torch

    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.set_per_process_memory_fraction(args.cap_gib * GiB / total, 0)
    started = time.time()
    model, info = load_stack(args.stack, args.model, max(args.probes), "cuda")
    optimizer = make_optimizer(model, "cuda")
    gen = torch.Generator(device="cuda").manual_seed(99)
    base = {"phase": "maxseq", "stack": args.stack, "cap_GiB": args.cap_gib,
            "alloc_conf": os.environ.get("PYTORCH_CUDA_ALLOC_CONF", "")}
    ok, failed = [], []
    for seq in args.probes:
        if time.time() - started > args.time_budget:
            break
        if (ok and seq < max(ok)) or (failed and seq > min(failed)):
            continue
        t0 = time.time()
        record = {**base, "event": "probe", "seq": seq}
        try:
            gc.collect()
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            ids = torch.randint(0, model.config.vocab_size, (1, seq), device="cuda", generator=gen)
            record["loss"] = round(one_step(model, optimizer, ids, "cuda"), 4)
            torch.cuda.synchronize()
            record["ok"] = True
            ok.append(seq)
        except Exception as error:  # noqa: BLE001
            record.update(ok=False, oom=is_oom(error), error=f"{type(error).__name__}: {str(error)[:400]}")
            failed.append(seq)
            model.zero_grad(set_to_none=True)
            optimizer.zero_grad(set_to_none=True)
        record.update(seconds=round(time.time() - t0, 1),
                      peak_reserved_GiB=round(torch.cuda.max_memory_reserved() / GiB, 3))
        emit(args.results, record)
    emit(args.results, {**base, "event": "summary", "max_ok_seq": max(ok, default=None),
                        "first_fail_seq": min(failed, default=None), "probed": ok + failed, **info})


# ------------------------------------------------------------------------------------------ driver
def _child(args_list: list[str], timeout: float, env: dict | None = None) -> int:
    command = [sys.executable, os.path.abspath(__file__), *args_list]
    print(f"\n>>> {' '.join(command)}  (timeout {timeout:.0f}s)", flush=True)
    try:
        return subprocess.run(command, timeout=timeout, env=env).returncode
    except subprocess.TimeoutExpired:
        print(f">>> timed out after {timeout:.0f}s", flush=True)
        return 124


def cmd_run(args) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = str(out / "results.jsonl")
    started = time.time()

    def left() -> float:
        return args.deadline - (time.time() - started)

    model_dir = args.model
    if not model_dir:
        model_dir = os.path.join(tempfile.gettempdir(), f"arithmo_bench_{args.arch}")
        if not Path(model_dir, "config.json").is_file():
            _child(["make", "--arch", args.arch, "--model", model_dir, "--results", results], timeout=left())
    common = ["--model", model_dir, "--results", results, "--shapes", args.shapes,
              "--steps", str(args.steps), "--warmup", str(args.warmup)]
    for stack in [s for s in args.stacks.split(",") if s]:
        if left() < args.min_stack_s:
            emit(results, {"phase": "skipped", "stack": stack, "left_s": round(left())})
            continue
        env = dict(os.environ)
        if stack == "kernels":  # one of the engine's memory tricks: no fragmentation across sequence lengths
            env["PYTORCH_CUDA_ALLOC_CONF"] = "expandable_segments:True"
        if args.quick and stack == "kernels":
            env["TRITON_INTERPRET"] = "1"
        rc = _child(["worker", "--stack", stack, *common], timeout=left() - 5, env=env)
        emit(results, {"phase": "worker_done", "stack": stack, "rc": rc})
    for stack in [s for s in args.maxseq.split(",") if s]:
        if left() < args.min_stack_s:
            emit(results, {"phase": "skipped", "what": f"maxseq {stack}", "left_s": round(left())})
            continue
        env = dict(os.environ, PYTORCH_CUDA_ALLOC_CONF="expandable_segments:True")
        budget = max(30.0, left() - 60)
        _child(["maxseq", "--stack", stack, "--model", model_dir, "--results", results,
                "--time-budget", str(budget)], timeout=left() - 5, env=env)
    print_table(results)


def print_table(results: str) -> None:
    records = [json.loads(line) for line in open(results) if line.strip()]
    rows = {(r["stack"], r["batch"], r["seq"]): r for r in records if r.get("phase") == "train" and "batch" in r}
    print("\nshape   stack     tokens/s  reserved GiB   tok/s vs unsloth  mem vs unsloth   tok/s vs hf  mem vs hf")
    for batch, seq in sorted({(b, s) for _, b, s in rows}, key=lambda k: -k[0]):
        for stack in ("hf", "kernels", "unsloth"):
            r = rows.get((stack, batch, seq))
            if r is None:
                continue
            if not r.get("ok"):
                print(f"{batch}x{seq:<6} {stack:<8}  FAILED: {r.get('error', '')[:90]}")
                continue

            def ratio(other: str, key: str) -> str:
                o = rows.get((other, batch, seq))
                if not o or not o.get("ok") or not o.get(key) or r.get(key) is None:
                    return "-"
                return f"{r[key] / o[key]:.2f}x"

            print(f"{batch}x{seq:<6} {stack:<8} {r['tokens_per_s']:>9.0f} {r.get('peak_reserved_GiB') or 0:>13.2f}"
                  f" {ratio('unsloth', 'tokens_per_s'):>18} {ratio('unsloth', 'peak_reserved_GiB'):>15}"
                  f" {ratio('hf', 'tokens_per_s'):>13} {ratio('hf', 'peak_reserved_GiB'):>10}")
            anchor = ANCHORS.get((stack, batch, seq))
            if anchor:
                print(f"{'':16}(anchor {anchor[0]} tok/s, {anchor[1]} GiB: docs/measurements.md)")
    for r in records:
        if r.get("phase") == "maxseq" and r.get("event") == "summary":
            print(f"longest seq @ {r['cap_GiB']} GiB, batch 1: {r['stack']} {r['max_ok_seq']} (first failure "
                  f"{r['first_fail_seq']}; probed {r['probed']}); anchors: HF {ANCHOR_MAXSEQ['hf']}, "
                  f"unsloth {ANCHOR_MAXSEQ['unsloth']}")
        if r.get("event") == "loaded" and "apply_kernels" in r:
            print(f"apply_kernels: {r['apply_kernels']}")
        if r.get("phase") in ("skipped",) or (r.get("phase") == "worker_done" and r.get("rc")):
            print(f"note: {r}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CPU smoke run of `run` on a tiny model")
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run")
    run.add_argument("--out", default="bench_out")
    run.add_argument("--arch", default="mistral7b")
    run.add_argument("--model", default="", help="an existing model folder (default: make one under /tmp)")
    run.add_argument("--stacks", default="kernels,unsloth,hf")
    run.add_argument("--shapes", default="4x2048,1x4096")
    run.add_argument("--steps", type=int, default=6)
    run.add_argument("--warmup", type=int, default=3)
    run.add_argument("--maxseq", default="", help="stacks to search the longest sequence for (22 GiB cap)")
    run.add_argument("--deadline", type=float, default=480.0, help="seconds for the whole run")
    run.add_argument("--min-stack-s", type=float, default=45.0, help="skip a stack when less is left")
    run.set_defaults(quick=False)
    make = sub.add_parser("make")
    make.add_argument("--arch", default="mistral7b")
    make.add_argument("--model", required=True)
    make.add_argument("--results", default=None)
    for name in ("worker", "maxseq"):
        p = sub.add_parser(name)
        p.add_argument("--stack", choices=["hf", "kernels", "unsloth"], required=True)
        p.add_argument("--model", required=True)
        p.add_argument("--results", default=None)
        p.add_argument("--shapes", default="4x2048,1x4096")
        p.add_argument("--steps", type=int, default=6)
        p.add_argument("--warmup", type=int, default=3)
        p.add_argument("--cap-gib", type=float, default=22.0)
        p.add_argument("--probes", type=lambda s: [int(v) for v in s.split(",")],
                       default=[45056, 53248, 61440, 69632, 40960, 36864, 32768])
        p.add_argument("--time-budget", type=float, default=150.0)
    table = sub.add_parser("table")
    table.add_argument("file")
    args = parser.parse_args(argv)
    if args.quick and args.command in (None, "run"):
        out = tempfile.mkdtemp(prefix="arithmo_bench_quick_")
        model_dir = os.path.join(out, "model")
        emit(None, make_model("tiny", model_dir, "cpu"))
        args = parser.parse_args(["run", "--out", out, "--model", model_dir, "--stacks", "hf,kernels",
                                  "--shapes", "2x64", "--steps", "2", "--warmup", "1", "--deadline", "600",
                                  "--min-stack-s", "1"])
        args.quick = True
    if args.command == "make":
        emit(args.results, make_model(args.arch, args.model, "cuda"))
    elif args.command == "worker":
        cmd_worker(args)
    elif args.command == "maxseq":
        cmd_maxseq(args)
    elif args.command == "run":
        cmd_run(args)
    elif args.command == "table":
        print_table(args.file)
    else:
        parser.print_help()


if __name__ == "__main__":
    main()
