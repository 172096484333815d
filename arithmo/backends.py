"""Which generation backend an evaluation or RFT run uses, and loading the model for it.

`pick_backend(cfg)` chooses transformers or vLLM (and says why); `load_for_eval(cfg, backend)` loads the model and
tokenizer: on vLLM with the context evaluation needs (`vllm_context`) and the adapter's own chat template, as
load_model applies it on the transformers path. `cfg` is an EvalConfig or an RFTConfig (the same keys).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class BackendError(RuntimeError):
    """The settings ask for a backend that cannot honour them; the message says which and what to drop."""


def pick_backend(cfg: Any) -> tuple[str, str]:
    """(hf | vllm, why). auto picks vLLM only when it is installed, a GPU is present and the settings are ones
    vLLM honours (it has no 4-bit bitsandbytes path here and does not use arithmo's engines); backend=vllm with
    such settings is a BackendError saying which."""
    import torch

    from arithmo.generate import vllm_available

    conflicts = []
    if cfg.load_in_4bit:
        conflicts.append("load_in_4bit=true (vLLM serves the 16-bit base with the adapter as a LoRA)")
    if cfg.engine not in ("auto", "hf"):
        conflicts.append(f"engine={cfg.engine} (a transformers engine; vLLM runs its own)")
    if cfg.backend == "vllm":
        if conflicts:
            raise BackendError(f"backend=vllm does not honour {'; '.join(conflicts)}: drop them, or use backend=hf")
        return "vllm", "requested"
    if cfg.backend == "hf":
        return "hf", "requested"
    if not vllm_available():
        return "hf", "vLLM is not installed (pip install 'arithmo[vllm]')"
    if not torch.cuda.is_available():
        return "hf", "no CUDA GPU (vLLM's CPU build runs only when asked: backend=vllm)"
    if conflicts:
        return "hf", f"vLLM installed, but it would ignore {'; '.join(conflicts)}"
    return "vllm", "vLLM installed and a CUDA GPU present"


# Tokens reserved for the prompt beside max_new_tokens when max_model_len is not set: a GSM8K/MATH prompt with a chat
# template is under 600 tokens. TIR adds up to max_tool_calls output blocks of at most MAX_TOOL_OUTPUT_CHARS
# characters, counted at one token a character (digits are about that in SmolLM2's and Qwen's tokenizers).
PROMPT_ROOM_TOKENS = 2048


def model_context(folder: str) -> int | None:
    """The model's own context (max_position_embeddings, else max_seq_len / n_positions) from its config: a local
    folder's config.json, else the hub id's config through transformers (its cache); None when unreadable."""
    try:
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(folder)
    except Exception:  # noqa: BLE001 -- offline without a cached config, or not a transformers model: unknown
        config = None
    if config is None:
        path = Path(folder) / "config.json"
        try:
            values = json.loads(path.read_text()) if path.is_file() else {}
        except (OSError, ValueError):
            values = {}
    else:
        values = config.to_dict()
        values.update(values.get("text_config") or {})
    for key in ("max_position_embeddings", "max_seq_len", "n_positions", "seq_length"):
        if isinstance(values.get(key), int) and values[key] > 0:
            return values[key]
    return None


def vllm_context(cfg: Any, folder: str) -> int:
    """max_model_len for vLLM: `cfg.max_model_len`, else max_new_tokens + PROMPT_ROOM_TOKENS (+ TIR's output
    blocks), never above the model's own context (`model_context`; vLLM refuses a longer max_model_len)."""
    asked = getattr(cfg, "max_model_len", None)
    if asked:
        return int(asked)
    from arithmo.prompts import MAX_TOOL_OUTPUT_CHARS

    need = cfg.max_new_tokens + PROMPT_ROOM_TOKENS
    if getattr(cfg, "style", None) == "tir":
        need += getattr(cfg, "max_tool_calls", 0) * (MAX_TOOL_OUTPUT_CHARS + 64)  # + fences and the cut note
    own = model_context(folder)
    return min(need, own) if own else need


def load_for_eval(cfg: Any, backend: str):
    """(model, tokenizer, engine description) for generation on `backend` (pick_backend)."""
    if backend == "vllm":
        from arithmo.generate import load_vllm
        from arithmo.model import plain_model_folder

        from arithmo.model import adapter_chat_template, set_chat_template

        # vLLM reads a folder or hub id; a GGUF model (the embedded alias) is served from its plain fp32 copy.
        folder = plain_model_folder(cfg.model)
        context = vllm_context(cfg, folder)
        engine = load_vllm(folder, cfg.adapter, seed=cfg.seed, dtype=cfg.dtype, max_model_len=context)
        tokenizer = engine.llm.get_tokenizer()
        # The chat template the adapter was trained with (a run's model.chat_template, saved beside the adapter)
        # replaces the base model's, as load_model does on the transformers path: prompts and stops then agree.
        saved = adapter_chat_template(cfg.adapter) if cfg.adapter else None
        if saved is not None and saved != getattr(tokenizer, "chat_template", None):
            set_chat_template(tokenizer, saved, f"saved in {cfg.adapter}")
        lora = f", max_lora_rank {engine.max_lora_rank}" if engine.max_lora_rank else ""
        return engine, tokenizer, f"vllm ({cfg.dtype}, max_model_len {context}{lora})"
    from arithmo.model import load_model

    loaded = load_model(cfg.model, engine=cfg.engine, adapter=cfg.adapter, trainable=False,
                        load_in_4bit=cfg.load_in_4bit, dtype=cfg.dtype)
    return loaded.model, loaded.tokenizer, f"{loaded.engine} ({loaded.reason})"
