"""What produced a set of predictions: the model's identity, the adapter's weights, backend, dtype, template.

    record = provenance(model="runs/demo/..", adapter="runs/demo/adapter", backend="hf", dtype="float32",
                        load_in_4bit=False, template="auto", grader_version="arithmo-grader-2")
    generation, grading = differences(saved, record)   # ["adapter: sha256 1f2e.. -> 9a0b.."], ["grader_version: .."]

`arithmo.eval` writes the record to `provenance.json` beside `predictions.jsonl` and into `metrics.json`. A
resume compares the saved record with the current one: any difference in what GENERATES the completions
(the `generation` keys) refuses, naming it; a difference only in the grader re-grades the saved completions
without generating again. Settings such as max_new_tokens or the PoT hint are covered by eval's config hash.

Identities:
- a hub id: `{hub, revision}`, the commit of the snapshot in the local Hugging Face cache (None when the model
  is not cached yet: it is then identified by the same id on both sides);
- a local folder or file (an embedded alias resolves to its GGUF file): `{path, sha256}` over the files'
  bytes (weights, config, tokenizer), cached by (size, mtime) in `<arithmo cache>/hashes.json` so a 14 GB
  folder is read once, not at every evaluation;
- an adapter: `{path, sha256}` of its folder (adapter_model.safetensors and adapter_config.json).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

# A change in any of these means the saved completions came from another generator: never mixed.
GENERATION_KEYS = ("model", "adapter", "backend", "dtype", "load_in_4bit", "template")
GRADING_KEYS = ("grader_version",)
# Files of a model or adapter folder that decide its outputs (README files and the like do not).
_MODEL_SUFFIXES = (".safetensors", ".bin", ".gguf", ".json", ".model", ".txt", ".jinja", ".py", ".tiktoken")


def _hash_cache_file() -> Path:
    from arithmo.model import cache_dir

    return cache_dir() / "hashes.json"


def file_sha256(path: Path) -> str:
    """sha256 of one file, remembered by (resolved path, size, mtime_ns) so unchanged files are read once."""
    path = Path(path).resolve()
    stat = path.stat()
    key = f"{path}|{stat.st_size}|{stat.st_mtime_ns}"
    cache_file = _hash_cache_file()
    try:
        cache = json.loads(cache_file.read_text()) if cache_file.is_file() else {}
    except (OSError, json.JSONDecodeError):
        cache = {}  # a damaged cache only costs a re-read
    if key in cache:
        return cache[key]
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    cache[key] = digest.hexdigest()
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        partial = cache_file.with_name(f"{cache_file.name}.{os.getpid()}.partial")
        partial.write_text(json.dumps(cache))
        os.replace(partial, cache_file)
    except OSError:
        pass  # a read-only cache folder: the hash is still right, only not remembered
    return cache[key]


def folder_sha256(folder: Path) -> str:
    """One sha256 over (relative name, file sha256) of every file in `folder` that decides a model's outputs."""
    digest = hashlib.sha256()
    files = sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix in _MODEL_SUFFIXES
                   and ".cache" not in p.parts)
    for path in files:
        digest.update(f"{path.relative_to(folder).as_posix()}\0{file_sha256(path)}\n".encode())
    return digest.hexdigest()


def hub_revision(hub_id: str) -> str | None:
    """The commit of `hub_id`'s snapshot in the local Hugging Face cache, or None when it is not cached."""
    from huggingface_hub import snapshot_download

    try:
        folder = snapshot_download(hub_id, local_files_only=True)
    except (OSError, ValueError):  # not cached (LocalEntryNotFoundError is both), or not a valid repo id
        return None
    return Path(folder).name


def model_identity(name: str) -> dict[str, Any]:
    """{hub, revision} for a hub id; {path, sha256} for a local folder, file or embedded alias."""
    from arithmo.model import resolve_model_path

    folder, gguf_file = resolve_model_path(name)
    if gguf_file is not None:
        path = Path(folder) / gguf_file
        return {"name": name, "path": str(path), "sha256": file_sha256(path)}
    if Path(folder).is_dir():
        return {"name": name, "path": str(Path(folder).resolve()), "sha256": folder_sha256(Path(folder))}
    return {"name": name, "hub": folder, "revision": hub_revision(folder)}


def adapter_identity(adapter: str | None) -> dict[str, Any] | None:
    """{path, sha256} of a PEFT adapter folder (its weights and config), or None without an adapter."""
    if adapter is None:
        return None
    return {"path": str(Path(adapter).resolve()), "sha256": folder_sha256(Path(adapter))}


def provenance(*, model: str, adapter: str | None, backend: str, dtype: str, load_in_4bit: bool | None,
               template: str, grader_version: str, engine: str | None = None) -> dict[str, Any]:
    """The record of what generates and grades predictions. `dtype` and `load_in_4bit` are resolved here
    the way arithmo.model resolves them (auto: bf16 and 4-bit on CUDA, fp32 and 16/32-bit on CPU)."""
    import torch

    cuda = torch.cuda.is_available()
    if dtype == "auto":
        dtype = ("bfloat16" if torch.cuda.is_bf16_supported() else "float16") if cuda else "float32"
    return {"model": model_identity(model), "adapter": adapter_identity(adapter), "backend": backend,
            "dtype": dtype, "load_in_4bit": cuda if load_in_4bit is None else bool(load_in_4bit),
            "template": template, "grader_version": grader_version, "engine": engine}


def _identity_text(value: Any) -> str:
    if isinstance(value, dict):
        if "sha256" in value:
            return f"{value.get('path')} sha256 {value['sha256'][:12]}"
        if "hub" in value:
            return f"{value['hub']}@{value.get('revision') or 'uncached'}"
    return repr(value)


def _same(key: str, old: Any, new: Any) -> bool:
    if key in ("model", "adapter") and isinstance(old, dict) and isinstance(new, dict):
        # the identity is the content (or hub id + revision), not the path it was read from
        fields = ("sha256",) if "sha256" in old or "sha256" in new else ("hub", "revision")
        return all(old.get(f) == new.get(f) for f in fields)
    return old == new


def differences(saved: dict[str, Any], current: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(changes in what generates, changes in what grades), each as `key: old -> new` lines."""
    generation = [f"{key}: {_identity_text(saved.get(key))} -> {_identity_text(current.get(key))}"
                  for key in GENERATION_KEYS if not _same(key, saved.get(key), current.get(key))]
    grading = [f"{key}: {saved.get(key)!r} -> {current.get(key)!r}"
               for key in GRADING_KEYS if saved.get(key) != current.get(key)]
    return generation, grading


class ResumeRefused(ValueError):
    """Saved outputs were made with other settings or by another generator; the message says what differs."""


def changed_settings(old: dict[str, Any], new: dict[str, Any], ignored: tuple[str, ...]) -> list[str]:
    """`key: old -> new` for every setting that differs, but the `ignored` ones (which do not change what a saved
    line holds)."""
    return [f"{key}: {old.get(key)!r} -> {value!r}" for key, value in new.items()
            if key not in ignored and old.get(key) != value]


def check_saved_generator(store: Path, record: dict[str, Any], *, what: str, fix: str) -> list[str]:
    """Refuse to resume `store` (predictions or RFT samples) unless the provenance file beside it shows the same
    generator as `record`; returns the grading differences (non-empty: re-grade the saved lines).

    An empty or missing `store` passes. Raises ResumeRefused when the provenance file is missing, unreadable (a
    half-written file, after a crash or a full disk, proves nothing) or names another model, adapter or
    generation setting. `what` names the saved lines ("predictions"), `fix` says what to do instead.
    """
    if not store.is_file() or not store.read_text().strip():
        return []
    saved_file = store.parent / "provenance.json"
    if not saved_file.is_file():
        raise ResumeRefused(f"{store} has no provenance.json beside it, so what generated it cannot be checked "
                            f"(it predates arithmo recording it); {fix}")
    try:
        saved = json.loads(saved_file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        saved = err
    if not isinstance(saved, dict):
        raise ResumeRefused(f"{saved_file} cannot be read as a provenance record ({saved}), so what generated "
                            f"{store} cannot be checked; {fix}")
    generation, grading = differences(saved, record)
    if generation:
        raise ResumeRefused(f"{store.parent} holds {what} made with another model, adapter or generation setting "
                            f"({'; '.join(generation)}); they would be mixed with new ones. {fix[0].upper()}{fix[1:]}")
    return grading
