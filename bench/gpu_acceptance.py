"""Everything arithmo still owes on a GPU, measured in one call (<= 8 minutes on one H100/H200):

    python bench/gpu_acceptance.py --out /tmp/acceptance            # on the GPU machine
    python bench/gpu_acceptance.py --tiny --out /tmp/acceptance     # CPU dry run at tiny shapes (the tests run it)

Parts, each guarded: a missing package or device makes that part report "skipped: <why>", an exception
"failed: <error>", and the run goes on; a part that would start past the time budget is skipped too.
  planner   the memory planner (arithmo/plan.py) against the measured peak reserved memory of a plain training
            loop (4-bit, LoRA r=16, arithmo.model's hf engine) at three shapes
  engines   tokens/s and peak memory of the engines hf, hf + Liger, kernels and unsloth inside the training recipe
            (arithmo.train, one child process each), as ratios to hf measured in the same run, and the planner's
            prediction beside each peak (the open question: unsloth at 0.81x hf's tokens/s in the recipe)
  merge     the dequantised merge of the 4-bit hf run and its logit distance (arithmo.export.merge.measure_merge)
  vllm      vLLM serving the 4-bit-trained adapter (LoRARequest) on the base model
  grpo      two GRPO steps (arithmo.grpo) on the same model, with the planner's prediction
The model is a random-initialised Mistral-7B-v0.1 architecture (random weights cost the same memory and time as
real ones; docs/measurements.md), or with --tiny a 2-layer Mistral made in-process (no hub). Results: one JSON
line per part in <out>/results.jsonl and a table on stdout; `--tiny` on CPU sets TRITON_INTERPRET=1.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
GiB = float(1 << 30)


def cuda() -> bool:
    import torch

    return torch.cuda.is_available()


class Skip(Exception):
    """A part cannot run here; the message says why."""


# ----------------------------------------------------------------------------------------------
# the model


def make_model(out_dir: Path, tiny: bool) -> Path:
    """A random Mistral (7B architecture, or tiny) with a small local tokenizer, saved to out_dir once."""
    import torch
    from transformers import MistralConfig, MistralForCausalLM

    from _shared import make_tokenizer

    if (out_dir / "config.json").is_file():
        return out_dir
    tokenizer = make_tokenizer(out_dir, chat_template=True)
    ids = dict(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
               pad_token_id=tokenizer.pad_token_id)
    if tiny:
        config = MistralConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                               num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                               sliding_window=4096, tie_word_embeddings=False, **ids)
    else:  # Mistral-7B-v0.1's published config.json
        config = MistralConfig(vocab_size=32000, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                               num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=32768,
                               rms_norm_eps=1e-5, rope_theta=10000.0, sliding_window=4096,
                               tie_word_embeddings=False, **ids)
    torch.manual_seed(0)
    device = "cuda" if cuda() else "cpu"
    with torch.device(device):
        model = MistralForCausalLM(config).to(torch.bfloat16 if device == "cuda" else torch.float32)
    model.save_pretrained(out_dir, max_shard_size="5GB")
    del model
    gc.collect()
    return out_dir


def common_overrides(model_dir: Path, tiny: bool) -> list[str]:
    gpu = cuda()
    return [f"model.name={model_dir}", f"model.load_in_4bit={'true' if gpu else 'false'}",
            f"model.dtype={'bfloat16' if gpu else 'float32'}", "model.lora_r=16", "model.lora_alpha=16",
            "model.template=chat", f"optimizer={'adamw_bnb_8bit' if gpu else 'adamw_torch'}"]


# ----------------------------------------------------------------------------------------------
# parts


def part_planner(ctx: dict) -> dict:
    """A plain loop (loss from the model, labels = ids) at three shapes; measured vs predicted peak reserved."""
    import torch

    from arithmo import plan
    from arithmo.model import load_model

    gpu = cuda()
    shapes = [(1, 32), (2, 32), (1, 64)] if ctx["tiny"] else [(4, 2048), (1, 4096), (1, 8192)]
    loaded = load_model(str(ctx["model_dir"]), engine="hf", trainable=True, load_in_4bit=gpu,
                        dtype="bfloat16" if gpu else "float32", max_seq_length=max(s for _, s in shapes),
                        lora_r=16, lora_alpha=16, gradient_checkpointing=True)
    model = loaded.model
    params = [p for p in model.parameters() if p.requires_grad]
    if gpu:
        import bitsandbytes as bnb

        optimizer = bnb.optim.AdamW8bit(params, lr=1e-4)
    else:
        optimizer = torch.optim.AdamW(params, lr=1e-4)
    arch = plan.find_arch(str(ctx["model_dir"]))
    vocab = arch.vocab
    rows = []
    for batch, seq in shapes:
        setup = plan.Setup(engine="hf", load_in_4bit=gpu, compute_bytes=2 if gpu else 4, lora_r=16,
                           optimizer="adamw_bnb_8bit" if gpu else "adamw_torch", loss="full", micro_batch=batch,
                           seq_len=seq)
        predicted = plan.estimate(arch, setup)
        if gpu:
            gc.collect()
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        device = next(model.parameters()).device
        start = time.perf_counter()
        for _ in range(3):
            ids = torch.randint(0, vocab, (batch, seq), device=device)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=gpu):
                loss = model(input_ids=ids, labels=ids).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        seconds = time.perf_counter() - start
        measured = round(torch.cuda.max_memory_reserved() / GiB, 3) if gpu else None
        row = {"shape": f"{batch}x{seq}", "predicted_reserved_gib": round(predicted.peak_reserved_gib, 3),
               "measured_reserved_gib": measured, "tokens_per_s": round(3 * batch * seq / seconds, 1),
               "loss_finite": bool(torch.isfinite(loss).item())}
        if measured:
            row["predicted_over_measured"] = round(predicted.peak_reserved_gib / measured, 3)
            free, total = torch.cuda.mem_get_info()
            row["cuda_context_gib_estimate"] = round((total - free - torch.cuda.memory_reserved()) / GiB, 3)
        rows.append(row)
    del model, optimizer, loaded
    gc.collect()
    if gpu:
        torch.cuda.empty_cache()
    return {"rows": rows, "note": None if gpu else "no CUDA: the loop ran, memory is not measured on CPU"}


# The Liger patch the engine child applies, and the loss path the planner is told it uses: one source for both.
# The fused linear cross-entropy stays off: arithmo's recipe computes its own loss (TRL's chunked NLL), which a
# patched model forward would not reach, so the prediction uses the hf engine's recipe loss.
LIGER_PATCH = dict(rope=True, rms_norm=True, swiglu=True, cross_entropy=False, fused_linear_cross_entropy=False)


def liger_loss() -> str:
    """The planner's loss for the Liger child: `fused` exactly when LIGER_PATCH turns the fused loss on."""
    from arithmo import plan

    return "fused" if LIGER_PATCH["fused_linear_cross_entropy"] else plan.ENGINES["hf"].loss


RECIPE_CHILD = r"""
import sys
sys.path.insert(0, {repo!r})
if {liger!r}:
    import liger_kernel.transformers as lk
    lk.apply_liger_kernel_to_mistral(**{patch!r})
from arithmo.train import main
sys.exit(main({argv!r}))
"""


def part_engines(ctx: dict) -> dict:
    """Each engine in the training recipe, one child process each; ratios to hf from this same run."""
    from arithmo import plan

    from _shared import write_sft_folder

    gpu, tiny = cuda(), ctx["tiny"]
    data = write_sft_folder(ctx["out"] / "sft_data", n_train=16 if tiny else 256, n_val=2)
    seq, batch, steps = (64, 2, 2) if tiny else (2048, 2, 8)
    results = {}
    for name in ("hf", "liger", "kernels", "unsloth"):
        if time.time() > ctx["deadline"]:
            results[name] = {"status": "skipped: time budget"}
            continue
        engine = "hf" if name == "liger" else name
        if engine in ("kernels", "unsloth") and not gpu:
            results[name] = {"status": f"skipped: engine {engine} needs CUDA"}
            continue
        if name == "liger" and importlib.util.find_spec("liger_kernel") is None:
            results[name] = {"status": "skipped: liger_kernel not installed (pip install liger-kernel)"}
            continue
        if name == "unsloth" and importlib.util.find_spec("unsloth") is None:
            results[name] = {"status": "skipped: unsloth not installed (pip install 'arithmo[gpu]')"}
            continue
        argv = common_overrides(ctx["model_dir"], tiny) + [
            f"name=acc_{name}", f"output_dir={ctx['out'] / 'runs'}", f"data={data}", "overwrite=true",
            f"model.engine={engine}", f"model.max_seq_length={seq}", "packing=true", f"micro_batch_size={batch}",
            "grad_accum=1", f"max_steps={steps}", f"save_steps={steps}", "logging_steps=1", "report_to=none"]
        proc = subprocess.run([sys.executable, "-c", RECIPE_CHILD.format(repo=str(REPO), liger=name == "liger",
                                                                         patch=LIGER_PATCH, argv=argv)],
                              cwd=REPO, capture_output=True, text=True, timeout=max(30, ctx["deadline"] - time.time()))
        (ctx["out"] / f"engine_{name}.log").write_text(proc.stdout + "\n" + proc.stderr)
        if proc.returncode != 0:
            results[name] = {"status": f"failed: {(proc.stderr.strip().splitlines() or ['?'])[-1][:300]}"}
            continue
        summary = json.loads((ctx["out"] / "runs" / f"acc_{name}" / "summary.json").read_text())
        cfg, knobs = plan.load_any_config(None, argv)
        knobs = dict(knobs, engine=name, **({"loss": liger_loss()} if name == "liger" else {}))
        arch, setup, _ = plan.setup_from_config(cfg, knobs)
        results[name] = {"status": "ok", "tokens_per_s": summary.get("tokens_per_s"),
                         "peak_reserved_gib": summary.get("peak_reserved_gib"),
                         "predicted_reserved_gib": round(plan.estimate(arch, setup).peak_reserved_gib, 3),
                         "adapter": summary.get("adapter")}
    base = results.get("hf", {})
    for name, row in results.items():
        if row.get("status") == "ok" and base.get("status") == "ok":
            row["tokens_per_s_vs_hf"] = round(row["tokens_per_s"] / max(base["tokens_per_s"], 1e-9), 3)
            if row.get("peak_reserved_gib") and base.get("peak_reserved_gib"):
                row["memory_vs_hf"] = round(row["peak_reserved_gib"] / base["peak_reserved_gib"], 3)
    ctx["hf_adapter"] = base.get("adapter")
    return {"shape": f"{batch}x{seq} packed, {steps} steps", "engines": results}


def part_merge(ctx: dict) -> dict:
    if not cuda():
        raise Skip("the 4-bit reference model needs CUDA (bitsandbytes NF4 training runs on GPU only)")
    if not ctx.get("hf_adapter"):
        raise Skip("no 4-bit hf run to merge (the engines part did not produce one)")
    from arithmo.export.merge import measure_merge

    return measure_merge(ctx["hf_adapter"], model=str(ctx["model_dir"]))


def part_vllm(ctx: dict) -> dict:
    if importlib.util.find_spec("vllm") is None:
        raise Skip("vllm not installed (its GPU wheels exceed what the device machine can carry)")
    if not ctx.get("hf_adapter"):
        raise Skip("no adapter from the engines part")
    from vllm import LLM, SamplingParams
    from vllm.lora.request import LoRARequest

    start = time.time()
    llm = LLM(model=str(ctx["model_dir"]), enable_lora=True, max_lora_rank=16, max_model_len=512,
              enforce_eager=True, gpu_memory_utilization=0.5,
              **({"quantization": "bitsandbytes"} if cuda() else {"dtype": "float32"}))
    loaded = time.time() - start
    outputs = llm.generate(["Sam has 3 apples and gets 5 more. How many apples?"] * 8,
                           SamplingParams(max_tokens=32, temperature=0.0),
                           lora_request=LoRARequest("acc", 1, ctx["hf_adapter"]))
    tokens = sum(len(o.outputs[0].token_ids) for o in outputs)
    return {"load_s": round(loaded, 1), "completions": len(outputs), "output_tokens": tokens,
            "seconds": round(time.time() - start - loaded, 2)}


def part_grpo(ctx: dict) -> dict:
    import torch

    from arithmo import plan
    from arithmo.config import load_config
    from arithmo.grpo import GRPOTrainConfig, grpo

    tiny, gpu = ctx["tiny"], cuda()
    items = [{"id": f"q{i}", "question": f"Sam has {i} apples and gets 3 more. How many apples?",
              "answer": str(i + 3)} for i in range(8)]
    path = ctx["out"] / "grpo_questions.jsonl"
    path.write_text("".join(json.dumps(item) + "\n" for item in items))
    overrides = common_overrides(ctx["model_dir"], tiny) + [
        f"output_dir={ctx['out'] / 'runs'}", "name=acc_grpo", "overwrite=true", "model.engine=hf",
        "model.max_seq_length=" + ("128" if tiny else "512"), "benchmark=file", f"path={path}",
        "num_generations=4", "micro_batch_size=4", "grad_accum=1",
        "max_completion_length=" + ("8" if tiny else "128"), "max_steps=2", "save_steps=2", "workers=1"]
    cfg = load_config(GRPOTrainConfig, None, overrides)
    arch, setup, _ = plan.setup_from_config(cfg, {"engine": "hf"})
    predicted = plan.estimate(arch, setup).peak_reserved_gib
    if gpu:
        torch.cuda.reset_peak_memory_stats()
    summary = grpo(cfg)
    return {"steps": summary["steps"], "seconds_per_step": summary["seconds_per_step"],
            "peak_reserved_gib": summary.get("peak_reserved_gib"), "predicted_reserved_gib": round(predicted, 3),
            "verdicts": summary["verdicts"]}


PARTS = {"planner": part_planner, "engines": part_engines, "merge": part_merge, "vllm": part_vllm,
         "grpo": part_grpo}


# ----------------------------------------------------------------------------------------------
# driver


def run(out: Path, tiny: bool, budget_s: float, parts: list[str], model_dir: Path | None = None) -> dict:
    """Run `parts` in order; returns {part: {"status": ok | skipped: why | failed: error, ...}}."""
    out.mkdir(parents=True, exist_ok=True)
    if tiny and not cuda():
        os.environ.setdefault("TRITON_INTERPRET", "1")
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        raise SystemExit(f"unknown part(s) {', '.join(unknown)}; expected some of {', '.join(PARTS)}")
    started = time.time()
    ctx = {"out": out, "tiny": tiny, "deadline": started + budget_s}
    results: dict[str, dict] = {}
    # the random model (14.5 GB at 7B) goes to a temporary folder outside `out`, removed at the end: `out` is what
    # comes back from the GPU machine and holds only results, logs and the small adapters
    scratch = None if model_dir else Path(tempfile.mkdtemp(prefix="arithmo_acceptance_model_", dir=scratch_root(out)))
    try:
        try:
            ctx["model_dir"] = make_model(model_dir or scratch / ("tiny_mistral" if tiny else "mistral7b"), tiny)
        except Exception as err:  # noqa: BLE001 - every part needs the model: report and stop
            results["model"] = {"status": f"failed: {type(err).__name__}: {err}"}
            return results
        results["model"] = {"status": "ok", "dir": str(ctx["model_dir"]), "temporary": scratch is not None,
                            "seconds": round(time.time() - started, 1)}
        run_parts(ctx, parts, results)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    results["total_seconds"] = {"status": "ok", "seconds": round(time.time() - started, 1)}
    return results


def scratch_root(out: Path) -> str | None:
    """Where the temporary model goes: the system's temp folder, unless that lies inside `out` (TMPDIR under
    $OUT); then the folder holding `out`. Never under `out`."""
    tmp = Path(tempfile.gettempdir()).resolve()
    resolved = out.resolve()
    if tmp == resolved or tmp.is_relative_to(resolved):
        return str(resolved.parent)
    return str(tmp)


def run_parts(ctx: dict, parts: list[str], results: dict) -> None:
    out = ctx["out"]
    for name in parts:
        t0 = time.time()
        if t0 > ctx["deadline"]:
            results[name] = {"status": "skipped: time budget"}
            continue
        try:
            results[name] = {"status": "ok", **PARTS[name](ctx)}
        except Skip as why:
            results[name] = {"status": f"skipped: {why}"}
        except Exception as err:  # noqa: BLE001 - one broken part must not hide the others' figures
            results[name] = {"status": f"failed: {type(err).__name__}: {str(err)[:500]}",
                             "traceback": traceback.format_exc()[-2000:]}
        results[name]["seconds"] = round(time.time() - t0, 1)
        with open(out / "results.jsonl", "a") as handle:
            handle.write(json.dumps({"part": name, **results[name]}, default=str) + "\n")


def format_table(results: dict) -> str:
    lines = ["part       status"]
    for name, row in results.items():
        lines.append(f"{name:<10} {row.get('status')} ({row.get('seconds', '?')} s)")
    planner = results.get("planner", {})
    for r in planner.get("rows", []):
        lines.append(f"  planner {r['shape']:>9}: predicted {r['predicted_reserved_gib']:.2f} GiB, measured "
                     f"{r['measured_reserved_gib'] if r['measured_reserved_gib'] is not None else 'n/a'}")
    for name, r in results.get("engines", {}).get("engines", {}).items():
        if r.get("status") == "ok":
            lines.append(f"  engine {name:<8} {r['tokens_per_s']} tok/s ({r.get('tokens_per_s_vs_hf', '?')}x hf), "
                         f"peak {r.get('peak_reserved_gib')} GiB, predicted {r['predicted_reserved_gib']} GiB")
        else:
            lines.append(f"  engine {name:<8} {r['status']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.environ.get("OUT", "/tmp/gpu_acceptance"))
    parser.add_argument("--tiny", action="store_true", help="a 2-layer Mistral: the CPU dry run")
    parser.add_argument("--budget-s", type=float, default=450.0, help="parts that would start later are skipped")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {', '.join(PARTS)}")
    parser.add_argument("--model-dir", default=None, help="reuse a model folder made earlier")
    args = parser.parse_args(argv)
    results = run(Path(args.out), args.tiny, args.budget_s, args.parts.split(","),
                  Path(args.model_dir) if args.model_dir else None)
    (Path(args.out) / "summary.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(format_table(results))
    return 0 if all(not str(r.get("status", "")).startswith("failed") for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
