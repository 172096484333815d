"""Merge a LoRA adapter into plain 16-bit weights, from the base weights the adapter was trained against.

A QLoRA adapter learnt its update on top of the de-quantised NF4 weights dequant(W4), not the original 16-bit
W: the model it was trained as computes (dequant(W4) + s·B·A)x. Two merges are offered (`base_weights`):

| base_weights | merged weight | what it reproduces |
|---|---|---|
| `dequantized` | dequant(W4) + s·B·A | the 4-bit+adapter model itself, up to the rounding of the sum (QLoRA runs) |
| `original` | W + s·B·A | the adapter moved onto weights it never saw (peft's merge_and_unload on a 16-bit base, which unsloth's save_pretrained_merged also does) |
| `auto` | `dequantized` for a run trained on 4-bit weights, else `original` | (a 16-bit LoRA run's W is what it trained on) |

`dequantized` is the default for QLoRA runs because it is the closer one: `original` differs from the trained model
by the NF4 rounding error of every linear layer, `dequantized` only by one rounding of the sum to the export dtype.
Measured on CPU (2026-11-29, bitsandbytes 0.50.2 NF4 with double quantisation, fp32 compute; SmolLM2-135M-Instruct
with a random r=4 adapter on all seven projections; 132 tokens of two chat-formatted math answers), distance from
the 4-bit+adapter model's logits (up to 44.4): dequantized max 9.6e-5, KL ~0, top-1 agreement 100%; original max
22.8, mean 2.37, KL 0.32 nats, top-1 agreement 73.5%. `measure_merge` reports the same on a GPU for a real run (the
7B measurement is owed: `python -m arithmo.export RUN --out DIR --measure-merge`).
The merged weight is computed in fp32 (W, or dequant(W4), plus the peft delta) and rounded once to `dtype`.

Loading goes through `arithmo.model.load_model` (the only module that imports peft and bitsandbytes), so the
4-bit weights are made exactly as training made them; `model.dequantize()` is transformers' own inverse.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from arithmo.export import ExportError
from arithmo.runs import RunError, adapter_info, find_adapter, read_run_config, run_of_adapter

BASE_WEIGHTS = ("auto", "dequantized", "original")

# Short math texts (question + worked answer) written for this project: the prompts `measure_merge` compares
# logits on, rendered with the run's own template.
MEASURE_TEXTS = (
    ("Ana buys 3 notebooks at $4 each and a pen for $2. How much does she spend?",
     "The notebooks cost 3 * 4 = 12 dollars. With the pen she spends 12 + 2 = 14 dollars.\nThe answer is: 14"),
    ("A train travels 180 km in 2.5 hours. What is its average speed in km/h?",
     "Its speed is 180 / 2.5 = 72 km/h.\nThe answer is: 72"),
    ("What is the remainder when 2^10 is divided by 7?",
     "2^3 = 8 leaves 1, so 2^9 leaves 1 and 2^10 leaves 2.\nThe answer is: 2"),
    ("Solve for x: 5x - 7 = 3x + 9.",
     "Subtract 3x and add 7: 2x = 16, so x = 8.\nThe answer is: 8"),
)


def _base_model_name(adapter_dir: Path) -> str:
    """The base model of an adapter: its run's config.yaml, else the adapter's own config."""
    run = run_of_adapter(adapter_dir)
    if run is not None:
        return read_run_config(run).model.name
    name = adapter_info(adapter_dir).base_model
    if name:
        return name
    raise ExportError(f"cannot tell the base model of {adapter_dir}: pass --model")


def trained_on_4bit(adapter_dir: Path) -> tuple[bool | None, str]:
    """(whether the adapter's run trained on NF4 weights, the evidence); None when nothing says.

    Rules, in order: the run's config.yaml `model.load_in_4bit` true or false; when it is null (4-bit exactly
    when CUDA was present: arithmo.model.load_model), summary.json's `peak_reserved_gib`, which train.py writes
    only when CUDA was available; an adapter outside a run folder says nothing.
    """
    run = run_of_adapter(adapter_dir)
    if run is None:
        return None, f"{adapter_dir} is not inside a run folder (no config.yaml beside it)"
    flag = read_run_config(run).model.load_in_4bit
    if flag is not None:
        return flag, f"{run.config}: model.load_in_4bit={str(flag).lower()}"
    if not run.summary.is_file():
        return None, f"{run.config}: model.load_in_4bit=null and {run.summary} is absent"
    cuda = "peak_reserved_gib" in json.loads(run.summary.read_text(encoding="utf-8"))
    return cuda, (f"{run.config}: model.load_in_4bit=null and {run.summary} says the run "
                  f"{'had' if cuda else 'did not have'} CUDA (null means 4-bit exactly when CUDA is present)")


def resolve_base_weights(choice: str, adapter_dir: Path) -> tuple[str, str]:
    """(`dequantized` or `original`, why) for a `base_weights` choice; `auto` follows trained_on_4bit."""
    if choice not in BASE_WEIGHTS:
        raise ExportError(f"base weights: expected one of {', '.join(BASE_WEIGHTS)}, got {choice!r}")
    if choice != "auto":
        return choice, "requested"
    quantized, evidence = trained_on_4bit(adapter_dir)
    if quantized is None:
        raise ExportError(f"cannot tell whether {adapter_dir} was trained on 4-bit weights ({evidence}): pass "
                          f"--base dequantized (a QLoRA adapter) or --base original (a 16-bit LoRA adapter)")
    return ("dequantized" if quantized else "original"), evidence


def check_adapter(adapter_dir: Path) -> None:
    """Refuse adapters whose merge is more than W + s·B·A: other peft methods, DoRA, fully trained modules."""
    config = json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))
    if config.get("peft_type", "LORA") != "LORA":
        raise ExportError(f"{adapter_dir}/adapter_config.json: peft_type={config.get('peft_type')!r}; "
                          "arithmo merges LoRA adapters only")
    if config.get("use_dora"):
        raise ExportError(f"{adapter_dir}/adapter_config.json: use_dora=true; a DoRA merge rescales W, which "
                          "arithmo's merge does not do")
    if config.get("modules_to_save"):
        raise ExportError(f"{adapter_dir}/adapter_config.json: modules_to_save={config['modules_to_save']}; "
                          "arithmo's merge adds LoRA deltas only")


def merge_lora(model: Any, dtype: Any) -> Any:
    """The plain transformers model of a peft LoRA `model`, each adapted weight = base + delta, in `dtype`.

    The base is the layer's weight as loaded: 16-bit W, or NF4 W4 de-quantised by transformers' `dequantize()`
    (bitsandbytes' dequantize_4bit, the values the 4-bit forward multiplies by). The delta is peft's
    `get_delta_weight` (s·B·A, fan-in/fan-out and per-module scaling handled by peft); the sum is made in fp32
    and rounded once. `model` is consumed (peft's `unload()` strips the LoRA layers in place).
    """
    import torch

    deltas = {}
    for name, module in model.named_modules():
        if not (hasattr(module, "get_delta_weight") and hasattr(module, "base_layer")):
            continue
        active = [a for a in module.active_adapters if a in getattr(module, "lora_A", {})]
        if active:
            deltas[name] = sum(module.get_delta_weight(a).detach().float() for a in active)
    if not deltas:
        raise ExportError("the adapter adapts no layer of this model (no LoRA module is active)")
    base = model.unload()
    if getattr(base, "hf_quantizer", None) is not None:
        base.dequantize(dtype=dtype)  # transformers' inverse of its bitsandbytes loading; drops quantization_config
    prefix = "base_model.model."
    with torch.no_grad():
        for name, delta in deltas.items():
            layer = base.get_submodule(name.removeprefix(prefix))
            merged = layer.weight.detach().float() + delta.to(layer.weight.device)
            layer.weight = torch.nn.Parameter(merged.to(dtype), requires_grad=False)
    return base.to(dtype)


def _load_with_adapter(base: str, adapter_dir: Path, weights: str, dtype: str, train_dtype: str) -> Any:
    """The base model as `weights` asks (4-bit exactly as training loaded it, or 16-bit) with the adapter."""
    import torch

    from arithmo.model import ModelError, load_model

    if weights == "dequantized" and not torch.cuda.is_available():
        raise ExportError("--base dequantized re-creates the 4-bit weights the adapter trained on, and "
                          "arithmo.model.load_model makes 4-bit weights only on a CUDA GPU: export on a GPU "
                          "machine, or pass --base original (the 16-bit base; further from the trained model)")
    try:
        if weights == "dequantized":  # quantised from the run's dtype, as training did
            return load_model(base, engine="hf", adapter=str(adapter_dir), load_in_4bit=True, dtype=train_dtype)
        # On CPU the merge runs in fp32 and merge_lora casts the result to `dtype`: the same bf16 file, the sum
        # W + s*B*A rounded once, and no "bf16 is slow on CPU" warning for a load that computes nothing.
        load_dtype = dtype if torch.cuda.is_available() else "float32"
        return load_model(base, engine="hf", adapter=str(adapter_dir), load_in_4bit=False, dtype=load_dtype)
    except ModelError as err:
        raise ExportError(str(err)) from err


def _adapter_and_base(adapter: str | Path, model: str | None) -> tuple[Path, str, str]:
    """(adapter folder, base model, the run's training dtype) of a run folder or an adapter folder."""
    try:
        adapter_dir = find_adapter(adapter)
        base = model or _base_model_name(adapter_dir)
        run = run_of_adapter(adapter_dir)
        train_dtype = read_run_config(run).model.dtype if run is not None else "auto"
    except RunError as err:
        raise ExportError(str(err)) from err
    check_adapter(adapter_dir)
    return adapter_dir, base, train_dtype


def merge_adapter(adapter: str | Path, out_dir: str | Path, *, model: str | None = None,
                  dtype: str = "bfloat16", base_weights: str = "auto") -> Path:
    """Merge `adapter` (a PEFT folder, or a run folder holding adapter/) into its base model; save to `out_dir`.

    `base_weights`: auto | dequantized | original (this module's table). `dtype`: bfloat16 | float16 | float32,
    the merged weights' dtype. Writes safetensors, the tokenizer (with the run's chat template) and
    `arithmo_export.json` (base, adapter, base weights and why, dtype); returns `out_dir`. Raises ExportError.
    """
    import torch

    from arithmo.model import _dtype

    adapter_dir, base, train_dtype = _adapter_and_base(adapter, model)
    weights, why = resolve_base_weights(base_weights, adapter_dir)
    loaded = _load_with_adapter(base, adapter_dir, weights, dtype, train_dtype)
    merged = merge_lora(loaded.model, _dtype(dtype))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(out, safe_serialization=True)
    loaded.tokenizer.save_pretrained(out)
    dtype_name = str(next(merged.parameters()).dtype).removeprefix("torch.")
    (out / "arithmo_export.json").write_text(json.dumps(
        {"base_model": base, "adapter": str(adapter_dir), "base_weights": weights, "base_weights_reason": why,
         "dtype": dtype_name, "torch": torch.__version__}, indent=2) + "\n")
    _write_merged_card(adapter_dir, base, out)
    return out


def _write_merged_card(adapter_dir: Path, base: str, out: Path) -> None:
    """The merged folder's README.md (trainlog.write_model_card, merged): the run's name, method and figures from
    its summary.json and the adapter's card, or what the adapter folder alone says."""
    from arithmo.trainlog import write_model_card

    run = run_of_adapter(adapter_dir)
    summary: dict = {}
    if run is not None and run.summary.is_file():
        try:
            summary = json.loads(run.summary.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            summary = {}
    card = adapter_dir / "README.md"
    tags = card.read_text(encoding="utf-8", errors="replace").split("---")[1] if card.is_file() else ""
    method = "GRPO" if "\n- grpo" in tags else "SFT"
    write_model_card(out, base_model=base, method=method, summary=summary if isinstance(summary, dict) else {},
                     run_name=(run.root if run is not None else adapter_dir).name, merged=True)


# ----------------------------------------------------------------------------------------------
# how far a merged model is from the model the adapter was trained as


def logit_distance(reference: Any, other: Any) -> dict[str, float]:
    """How far `other`'s logits are from `reference`'s, both [tokens, vocab] (any leading batch dims).

    max_abs / mean_abs: |difference| of the logits; kl: mean over tokens of KL(p_ref || p_other) in nats;
    top1: the share of tokens where both put their largest logit on the same token.
    """
    import torch

    ref = reference.detach().float().reshape(-1, reference.shape[-1])
    oth = other.detach().float().reshape(-1, other.shape[-1])
    diff = (ref - oth).abs()
    log_ref, log_oth = torch.log_softmax(ref, -1), torch.log_softmax(oth, -1)
    kl = (log_ref.exp() * (log_ref - log_oth)).sum(-1)
    return {"max_abs": diff.max().item(), "mean_abs": diff.mean().item(), "kl": kl.mean().item(),
            "top1": (ref.argmax(-1) == oth.argmax(-1)).float().mean().item(), "tokens": ref.shape[0]}


def measure_merge(adapter: str | Path, *, model: str | None = None) -> dict[str, Any]:
    """Both merges' logit distances from the 4-bit+adapter model on MEASURE_TEXTS (needs a CUDA GPU).

    Returns {"reference": ..., "texts": n, "dequantized": logit_distance, "original": logit_distance}; the
    merged models run in the run's dtype, as they would be used.
    """
    import torch

    from arithmo.model import _dtype
    from arithmo.prompts import render_sft, tokenize_sft

    adapter_dir, base, train_dtype = _adapter_and_base(adapter, model)
    run = run_of_adapter(adapter_dir)
    template = read_run_config(run).model.template if run is not None else "auto"
    reference = _load_with_adapter(base, adapter_dir, "dequantized", train_dtype, train_dtype)
    tokenizer, device = reference.tokenizer, next(reference.model.parameters()).device
    batches = [torch.tensor([tokenize_sft(render_sft({"prompt": q, "completion": a}, tokenizer, template),
                                          tokenizer)[0]], device=device) for q, a in MEASURE_TEXTS]

    def logits_of(net: Any) -> Any:
        with torch.no_grad():
            return torch.cat([net(input_ids=ids).logits[0].float().cpu() for ids in batches])

    expected = logits_of(reference.model)
    result: dict[str, Any] = {"reference": f"{base} in 4 bits ({train_dtype}) + {adapter_dir}",
                              "texts": len(batches)}
    result["dequantized"] = logit_distance(expected, logits_of(merge_lora(reference.model, _dtype(train_dtype))))
    del reference
    torch.cuda.empty_cache()
    original = _load_with_adapter(base, adapter_dir, "original", train_dtype, train_dtype)
    result["original"] = logit_distance(expected, logits_of(merge_lora(original.model, _dtype(train_dtype))))
    return result
