"""`python -m arithmo.export runs/<name> --out DIR`: merge a LoRA adapter into 16-bit safetensors.

The merged folder loads with plain transformers (`AutoModelForCausalLM.from_pretrained(DIR)`), no peft.
A QLoRA run trained against 4-bit weights; merging into those 4-bit weights would round the LoRA update
away, so the base is re-loaded in 16 bits (bf16, or fp16/fp32 by `dtype=`) and the adapter merged there —
the usual practice (e.g. peft's merge_and_unload on a 16-bit base, as unsloth's save_pretrained_merged does).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from arithmo.runs import RunError, adapter_info, find_adapter, read_run_config, run_of_adapter


class ExportError(RuntimeError):
    pass


def _base_model_name(adapter_dir: Path) -> str:
    """The base model of an adapter: its run's config.yaml, else the adapter's own config."""
    run = run_of_adapter(adapter_dir)
    if run is not None:
        return read_run_config(run).model.name
    name = adapter_info(adapter_dir).base_model
    if name:
        return name
    raise ExportError(f"cannot tell the base model of {adapter_dir}: pass --model")


def merge_adapter(adapter: str | Path, out_dir: str | Path, *, model: str | None = None,
                  dtype: str = "bfloat16") -> Path:
    """Merge `adapter` (a PEFT folder, or a run folder holding adapter/) into `model`; save to `out_dir`."""
    import torch

    from arithmo.model import load_model

    try:
        adapter_dir = find_adapter(adapter)
        base = model or _base_model_name(adapter_dir)
    except RunError as err:
        raise ExportError(str(err)) from err
    loaded = load_model(base, engine="hf", adapter=str(adapter_dir), load_in_4bit=False, dtype=dtype)
    merged = loaded.model.merge_and_unload()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(out, safe_serialization=True)
    loaded.tokenizer.save_pretrained(out)
    dtype_name = str(next(merged.parameters()).dtype).removeprefix("torch.")
    (out / "arithmo_export.json").write_text(json.dumps(
        {"base_model": base, "adapter": str(adapter_dir), "dtype": dtype_name,
         "torch": torch.__version__}, indent=2) + "\n")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m arithmo.export",
                                     description="Merge a LoRA adapter into 16-bit safetensors.")
    parser.add_argument("adapter", help="run folder (runs/<name>) or PEFT adapter folder")
    parser.add_argument("--out", required=True, help="folder for the merged model")
    parser.add_argument("--model", help="base model (default: the run's config.yaml)")
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"],
                        help="dtype of the merged weights")
    args = parser.parse_args(argv)
    from arithmo.model import ModelError

    try:
        out = merge_adapter(args.adapter, args.out, model=args.model, dtype=args.dtype)
    except (ExportError, ModelError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"[export] merged model in {out} ({args.dtype}); load it with "
          f"AutoModelForCausalLM.from_pretrained('{out}')")
    return 0


if __name__ == "__main__":
    sys.exit(main())
