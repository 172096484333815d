"""The export command line: `python -m arithmo.export SOURCE --out DIR [options]` (also `arithmo export`)."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from arithmo.config import SYSTEM_ERRORS, error_line, prog_name
from arithmo.export import ExportError
from arithmo.export.gguf import GGUF_QUANTS
from arithmo.export.merge import BASE_WEIGHTS

EXAMPLES = """examples:
  python -m arithmo.export runs/mistral7b_arithmo --out merged/arithmo-7b                 # 16-bit safetensors
  python -m arithmo.export runs/mistral7b_arithmo --out gguf/arithmo-7b --format gguf     # q8_0 GGUF + Modelfile
  python -m arithmo.export runs/demo --out gguf/demo --format gguf --quant f16 --keep-hf
  python -m arithmo.export smollm2-135m-instruct --out gguf/smollm2 --format gguf         # a model, no adapter
  python -m arithmo.export runs/mistral7b_arithmo --out merged/x --measure-merge          # GPU: both merges' distance
  python -m arithmo.export runs/demo --out merged/demo --push-to-hub me/arithmo-demo       # then upload the folder

--base: dequantized = dequant(NF4 W4) + LoRA delta, the model a QLoRA adapter was trained as; original = the
16-bit W + delta (what peft and unsloth merge into); auto = dequantized for 4-bit runs, original for 16-bit ones.
--quant: """ + "; ".join(f"{k}: {v}" for k, v in GGUF_QUANTS.items())


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog_name("export"), epilog=EXAMPLES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     description="Merge a LoRA adapter into 16-bit weights; write safetensors or GGUF "
                                                 "(with an Ollama Modelfile); optionally push to the Hugging Face Hub.")
    parser.add_argument("source", help="run folder (runs/<name>) or PEFT adapter folder; with --format gguf also a "
                                       "model without adapter (folder, .gguf file or embedded alias)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--format", default="safetensors", choices=["safetensors", "gguf"], help="what to write")
    parser.add_argument("--quant", default="q8_0", choices=list(GGUF_QUANTS), help="GGUF type (default q8_0)")
    parser.add_argument("--model", help="base model (default: the run's config.yaml, else the adapter's config)")
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"],
                        help="dtype of the merged weights (the GGUF converter reads these)")
    parser.add_argument("--base", default="auto", choices=list(BASE_WEIGHTS), help="base weights of the merge")
    parser.add_argument("--name", help="GGUF file and model name (default: the run's or folder's name)")
    parser.add_argument("--keep-hf", action="store_true", help="gguf: keep the merged safetensors in OUT/hf")
    parser.add_argument("--measure-merge", action="store_true",
                        help="GPU: compare both merges' logits with the 4-bit+adapter model; writes "
                             "OUT/merge_distance.json and exports nothing")
    parser.add_argument("--push-to-hub", metavar="REPO_ID", help="upload OUT to this Hub model repository")
    parser.add_argument("--hub-private", action="store_true", help="create the Hub repository private")
    parser.add_argument("--hub-token", help="Hub token (default: HF_TOKEN, or the one `hf auth login` saved)")
    return parser


def _adapter_of(source: str) -> Path | None:
    from arithmo.runs import RunError, find_adapter

    try:
        return find_adapter(source)
    except RunError:
        return None


def _name_and_template(source: str, adapter_dir: Path | None) -> tuple[str, str]:
    """(default export name, prompt template): the run's when the adapter is a run's, else the folder's name."""
    from arithmo.runs import read_run_config, run_of_adapter

    run = run_of_adapter(adapter_dir) if adapter_dir is not None else None
    if run is not None:
        return run.root.name, read_run_config(run).model.template
    path = Path(source)
    return (path.stem if path.suffix == ".gguf" else path.name or source), "auto"


def export(args: argparse.Namespace) -> dict:
    """Do what the parsed command line asks; returns the record also written to OUT/arithmo_export.json."""
    from arithmo.export.gguf import export_gguf
    from arithmo.export.merge import measure_merge, merge_adapter

    out = Path(args.out)
    if out.exists() and not out.is_dir():  # before minutes of loading a 7B, not after
        raise ExportError(f"--out {out}: is a file, expected a folder to write the export into")
    adapter_dir = _adapter_of(args.source)
    if args.measure_merge:
        if adapter_dir is None:
            raise ExportError(f"--measure-merge: {args.source} holds no adapter (a run folder or PEFT adapter folder)")
        result = measure_merge(args.source, model=args.model)
        out.mkdir(parents=True, exist_ok=True)
        (out / "merge_distance.json").write_text(json.dumps(result, indent=2) + "\n")
        return result
    if args.format == "safetensors":
        if adapter_dir is None:
            raise ExportError(f"{args.source} holds no trained adapter (adapter_config.json) to merge: expected a "
                              "run folder or a PEFT adapter folder (to convert a model without one: --format gguf)")
        merge_adapter(args.source, out, model=args.model, dtype=args.dtype, base_weights=args.base)
        return json.loads((out / "arithmo_export.json").read_text())
    name, template = _name_and_template(args.source, adapter_dir)
    name = args.name or name
    if adapter_dir is not None:
        model_dir = out / "hf"
        merge_adapter(args.source, model_dir, model=args.model, dtype=args.dtype, base_weights=args.base)
        record = {"merge": json.loads((model_dir / "arithmo_export.json").read_text())}
    else:
        from arithmo.model import plain_model_folder

        model_dir = Path(plain_model_folder(args.source))
        record = {"model": args.source, "model_folder": str(model_dir)}
    out.mkdir(parents=True, exist_ok=True)
    record.update(export_gguf(model_dir, out, quant=args.quant, name=name, template=template))
    if adapter_dir is not None and not args.keep_hf:
        shutil.rmtree(model_dir)
    (out / "arithmo_export.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
    return record


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.format != "gguf" and (args.quant != "q8_0" or args.keep_hf or args.name):
        print("error: --quant, --keep-hf and --name apply to --format gguf", file=sys.stderr)
        return 2
    from arithmo.export.hub import push_to_hub
    from arithmo.model import ModelError

    try:
        record = export(args)
        if args.measure_merge:
            for kind in ("dequantized", "original"):
                d = record[kind]
                print(f"[export] {kind:>11}: max |dlogit| {d['max_abs']:.4g}, mean |dlogit| {d['mean_abs']:.4g}, "
                      f"KL {d['kl']:.3g} nats, top-1 agreement {d['top1']:.4f} ({d['tokens']} tokens)")
            print(f"[export] from {record['reference']}; written to {Path(args.out) / 'merge_distance.json'}")
            return 0
        if args.format == "gguf":
            for note in record["notes"]:
                print(f"[export] note: {note}")
            print(f"[export] {record['file']} ({record['quant']}, {record['converter']}) and {record['modelfile']}: "
                  f"ollama create <name> -f {record['modelfile']}")
        else:
            print(f"[export] merged model in {args.out} ({record['dtype']}, base weights {record['base_weights']}: "
                  f"{record['base_weights_reason']}); load it with AutoModelForCausalLM.from_pretrained('{args.out}')")
        if args.push_to_hub:
            url = push_to_hub(args.out, args.push_to_hub, token=args.hub_token, private=args.hub_private)
            print(f"[export] pushed {args.out} to {args.push_to_hub}: {url}")
    except (ExportError, ModelError, *SYSTEM_ERRORS) as err:
        print(error_line(err), file=sys.stderr)
        return 2
    return 0
