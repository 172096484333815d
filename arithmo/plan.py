"""Will it fit? Predicted peak GPU memory of a QLoRA/LoRA SFT or GRPO run, from the model's config.json alone.

    arithmo plan --preset mistral7b_qlora [key=value ...] [--gpu-gb 24] [--json]
    python -m arithmo.plan --preset grpo/qwen25math7b_qlora micro_batch_size=4

A preset is a train preset name (arithmo/configs/train), `grpo/<name>` (arithmo/configs/grpo), or a YAML path
(a GRPO config is recognised by its `num_generations`). `key=value` overrides are the recipe's keys; the
planner's own knobs are `plan.<knob>=value` (see PLAN_KNOBS). No weights are read: the architecture comes from
a local folder's config.json, the Hugging Face cache, or KNOWN_ARCHITECTURES (each entry cites its config.json).

The formula (bytes; T = tokens per micro-batch = B x S, L layers, h hidden, i intermediate, V vocabulary,
q = heads x head_dim, kv = kv_heads x head_dim, c = compute-dtype bytes, R = residual-stream bytes):

  static      base weights: every decoder linear in NF4 = 0.5 B/param + its block constants (blocks of 64:
              one fp32 absmax = 4/64 B/param; with double quantisation an 8-bit absmax plus one fp32 per 256
              blocks = 1/64 + 4/16384 B/param; Dettmers et al. 2023, QLoRA, sec. 3), or c B/param unquantised;
              embeddings and lm_head (once when tied) in the embedding dtype; norms.
              LoRA: r x (in + out) per adapted linear, kept in fp32 (peft casts adapters to fp32 by default,
              `autocast_adapter_dtype`); gradients fp32 of the same size; AdamW state 8 B/param (32-bit) or
              2 B/param + one fp32 absmax per 256 values (bitsandbytes' blockwise 8-bit; Dettmers et al. 2022).
  workspace   4-bit matmuls de-quantise one weight at a time: the largest decoder linear in compute dtype.
              A model with a sliding window shorter than S gets a materialised (B, 1, S, S) boolean mask that
              SDPA turns into a compute-dtype bias: B x S^2 x (1 + c) bytes (transformers' sdpa mask path).
  activations per token and the phase where they peak (each engine's saved tensors, counted in ENGINES):
              checkpoints  L x R x h on the GPU (0 when offloaded to host; everything of every layer without
                           checkpointing);
              layer phase  one layer's saved tensors while it recomputes + its backward's temporaries
                           (the MLP's three intermediates' gradients and the residual stream's gradients);
              loss phase   the logits and loss: `full` (transformers' ForCausalLMLoss: compute-dtype logits, a
                           fp32 log-softmax, its incoming gradient and its outgoing one: (c + 12) x V per
                           token), `chunked` (TRL's chunked_nll, 256 tokens at a time), `fused` (Liger's /
                           arithmo's fused linear cross-entropy: no logits beyond one chunk), `unsloth`
                           (compute-dtype logits, gradient written in place).
              peak = checkpoints + max(layer phase, loss phase).
  allocator   PyTorch's caching allocator keeps freed blocks: reserved = allocated + PHI x transient, where
              transient is everything above the static part. Two values per allocator (ALLOCATORS): `phi` when
              memory is plentiful (what torch.cuda.max_memory_reserved reports) and `phi_cap` when it is not
              (near the limit it frees cached blocks and retries before failing, so only the unreleasable part
              counts). `fits` and the largest shapes use phi_cap; `peak_reserved_gib` uses phi.
  context     the CUDA context and kernels live outside the allocator: CUDA_CONTEXT_GIB on top.
  MoE         a mixture-of-experts layer holds all its experts' weights (resident whichever are routed to) and
              a token's activations pass its num_experts_per_tok experts plus any shared MLP (Arch docstring);
              attention the formula does not model (multi-head latent attention, linear attention) is refused.
  GRPO        two phases, the larger wins: the rollout (TRL generates micro_batch x grad_accum completions in
              one generate call: a KV cache of G x (P + C) x L x 2 x kv x c bytes plus the prefill's MLP
              intermediates for G x P tokens; P is plan.prompt_length, default DEFAULT_PROMPT_TOKENS) and the update (B completions of P + C tokens, with logits,
              their temperature-scaled copy and their gradient, 3 x c x V, for the C completion tokens). A
              colocated vLLM reserves its share of the card up front (`plan.rollout=vllm`).

Calibration, and where each constant comes from, is in ENGINES and ALLOCATORS; docs/measurements.md ("Memory
planner") compares the planner with every measured row (tests/test_plan.py requires 15%).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arithmo.config import prog_name

GiB = float(1 << 30)
CONFIGS = Path(__file__).parent / "configs"

# CUDA context (driver state, cuBLAS/cuDNN handles, the loaded kernels) sits outside torch's allocator. ~0.5 GiB
# is the usual size with lazy module loading on Hopper-class cards; not measured in this repository yet
# (bench/gpu_acceptance.py measures it as mem_get_info's used memory minus torch's reserved).
CUDA_CONTEXT_GIB = 0.5


class PlanError(ValueError):
    """The planner cannot predict this configuration; the message names the key or file and what it expected."""


# ----------------------------------------------------------------------------------------------
# architectures


@dataclass(frozen=True)
class Arch:
    """The shape of a decoder-only transformer: what the memory formula needs from config.json.

    A mixture-of-experts model has `moe_layers` layers whose MLP is `experts` routed experts of width
    `expert_intermediate` (all resident on the GPU) of which `experts_per_tok` run per token, plus a shared MLP of
    width `shared_intermediate` that every token runs (0: none); its other layers are dense of width
    `intermediate`."""

    name: str
    source: str
    model_type: str
    vocab: int
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    tied: bool
    max_positions: int | None
    sliding_window: int | None
    experts: int = 0
    experts_per_tok: int = 0
    expert_intermediate: int = 0
    shared_intermediate: int = 0
    moe_layers: int = 0

    def linears(self) -> dict[str, tuple[int, int]]:
        """(in, out) features of each decoder linear of a dense layer, by module name (Llama/Mistral/Qwen2 names)."""
        q, kv, h, i = self.heads * self.head_dim, self.kv_heads * self.head_dim, self.hidden, self.intermediate
        return {"q_proj": (h, q), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (q, h),
                "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}

    @property
    def dense_layers(self) -> int:
        return self.layers - self.moe_layers

    def attention_params(self) -> int:
        q, kv, h = self.heads * self.head_dim, self.kv_heads * self.head_dim, self.hidden
        return 2 * h * q + 2 * h * kv

    def decoder_linear_params(self) -> int:
        """Every decoder weight matrix: attention of every layer, the dense MLPs, and in each MoE layer all its
        experts (every expert is resident whichever are routed to), the shared MLP and the router."""
        h = self.hidden
        moe = self.experts * 3 * h * self.expert_intermediate + 3 * h * self.shared_intermediate + h * self.experts
        return self.layers * self.attention_params() + self.dense_layers * 3 * h * self.intermediate \
            + self.moe_layers * moe

    def active_intermediate(self) -> int:
        """The widest MLP a token passes through: a dense layer's, or a MoE layer's routed experts + shared MLP."""
        moe = self.experts_per_tok * self.expert_intermediate + self.shared_intermediate
        return max(self.intermediate if self.dense_layers else 0, moe if self.moe_layers else 0)

    def embedding_params(self) -> int:
        return self.vocab * self.hidden * (1 if self.tied else 2)

    def kv_bytes_per_token(self, c: int) -> int:
        """KV cache bytes per token: keys and values of every layer (Pope et al. 2022, sec. 2)."""
        return self.layers * 2 * self.kv_heads * self.head_dim * c


_REQUIRED = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads")
# attention variants whose cache and projections the formula does not model: their config.json keys
MLA_KEYS = ("kv_lora_rank", "q_lora_rank", "qk_rope_head_dim", "qk_nope_head_dim")


def _config_int(text: dict, key: str, source: str, minimum: int = 1) -> int | None:
    """config.json's integer `key` (None when absent or null); PlanError for a string, bool, float or too small."""
    value = text.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise PlanError(f"{source}: {key}: expected an integer >= {minimum}, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise PlanError(f"{source}: {key}: expected an integer >= {minimum}, got {value}")
    return value


def _config_bool(text: dict, key: str, source: str, default: bool) -> bool:
    value = text.get(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise PlanError(f"{source}: {key}: expected true or false, got {value!r} ({type(value).__name__})")
    return value


def arch_from_config(config: Any, source: str, name: str = "") -> Arch:
    """An Arch from a config.json mapping (transformers' PretrainedConfig fields; a multimodal config's
    `text_config`). PlanError naming `source` and the key: missing or wrongly typed fields (a string, bool or
    float where an integer belongs, non-positive sizes, heads not a multiple of the KV heads), and attention
    variants the formula does not model (multi-head latent attention, linear attention, encoder-decoder)."""
    if not isinstance(config, dict):
        raise PlanError(f"{source}: expected a JSON object, got {type(config).__name__}")
    text = config.get("text_config") if isinstance(config.get("text_config"), dict) else config
    missing = [key for key in _REQUIRED if text.get(key) is None]
    if missing:
        raise PlanError(f"{source}: missing {', '.join(missing)} (the planner needs {', '.join(_REQUIRED)} from a "
                        f"decoder-only model's config.json)")
    size = {key: _config_int(text, key, source) for key in _REQUIRED}
    mla = [key for key in MLA_KEYS if text.get(key) is not None]
    if mla:
        raise PlanError(f"{source}: unsupported attention: multi-head latent attention ({', '.join(mla)}; "
                        f"DeepSeek-V2/V3 style) is not modelled by the planner (its KV cache and projections differ)")
    layer_types = text.get("layer_types")
    if isinstance(layer_types, list) and any(kind not in ("full_attention", "sliding_attention")
                                             for kind in layer_types):
        odd = sorted({str(kind) for kind in layer_types} - {"full_attention", "sliding_attention"})
        raise PlanError(f"{source}: unsupported layer_types {', '.join(odd)}: the planner models softmax attention "
                        "(full or sliding window) only")
    if config.get("is_encoder_decoder") is True:
        raise PlanError(f"{source}: unsupported: an encoder-decoder model (the planner models decoder-only ones)")
    heads = size["num_attention_heads"]
    kv_heads = _config_int(text, "num_key_value_heads", source) or heads
    if heads % kv_heads:
        raise PlanError(f"{source}: num_attention_heads={heads} is not a multiple of num_key_value_heads={kv_heads}")
    head_dim = _config_int(text, "head_dim", source) or size["hidden_size"] // heads
    use_window = _config_bool(text, "use_sliding_window", source, True)  # Qwen2 carries a window it does not use
    window = _config_int(text, "sliding_window", source)
    # mixture of experts: Mixtral num_local_experts; Qwen2/3-MoE, OLMoE num_experts; DeepSeek n_routed_experts
    expert_keys = [k for k in ("num_local_experts", "num_experts", "n_routed_experts") if text.get(k) is not None]
    experts = _config_int(text, expert_keys[0], source) if expert_keys else 0
    moe: dict[str, int] = {}
    if experts and experts > 1:
        per_tok = _config_int(text, "num_experts_per_tok", source)
        if per_tok is None or per_tok > experts:
            raise PlanError(f"{source}: num_experts_per_tok: expected an integer in 1..{experts} ({expert_keys[0]}="
                            f"{experts}), got {text.get('num_experts_per_tok')!r}")
        width = _config_int(text, "moe_intermediate_size", source) or size["intermediate_size"]
        shared = _config_int(text, "shared_expert_intermediate_size", source) or 0  # Qwen2-MoE: one shared MLP
        n_shared = _config_int(text, "n_shared_experts", source, minimum=0) or 0  # DeepSeek: n of expert width
        shared += n_shared * width
        first_dense = _config_int(text, "first_k_dense_replace", source, minimum=0) or 0
        step = _config_int(text, "decoder_sparse_step", source) or 1
        mlp_only = text.get("mlp_only_layers") or []
        if not isinstance(mlp_only, list) or any(isinstance(x, bool) or not isinstance(x, int) for x in mlp_only):
            raise PlanError(f"{source}: mlp_only_layers: expected a list of layer indices, got {mlp_only!r}")
        layers = size["num_hidden_layers"]
        moe_layers = sum(1 for idx in range(layers)
                         if idx >= first_dense and (idx + 1) % step == 0 and idx not in mlp_only)
        moe = dict(experts=experts, experts_per_tok=per_tok, expert_intermediate=width, shared_intermediate=shared,
                   moe_layers=moe_layers)
    return Arch(name=name or str(text.get("_name_or_path") or source), source=source,
                model_type=str(text.get("model_type", "?")), vocab=size["vocab_size"], hidden=size["hidden_size"],
                intermediate=size["intermediate_size"], layers=size["num_hidden_layers"], heads=heads,
                kv_heads=kv_heads, head_dim=head_dim, tied=_config_bool(text, "tie_word_embeddings", source, False),
                max_positions=_config_int(text, "max_position_embeddings", source),
                sliding_window=window if use_window else None, **moe)


# config.json fields of the models the presets name, copied from each model's published config.json on the
# Hugging Face hub (the source named in each entry), so planning works offline without the weights.
KNOWN_ARCHITECTURES: dict[str, dict[str, Any]] = {
    "mistralai/Mistral-7B-v0.1": {
        "_source": "huggingface.co/mistralai/Mistral-7B-v0.1/blob/main/config.json",
        "model_type": "mistral", "vocab_size": 32000, "hidden_size": 4096, "intermediate_size": 14336,
        "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
        "max_position_embeddings": 32768, "sliding_window": 4096, "tie_word_embeddings": False},
    "Qwen/Qwen2.5-Math-7B": {
        "_source": "huggingface.co/Qwen/Qwen2.5-Math-7B/blob/main/config.json",
        "model_type": "qwen2", "vocab_size": 152064, "hidden_size": 3584, "intermediate_size": 18944,
        "num_hidden_layers": 28, "num_attention_heads": 28, "num_key_value_heads": 4,
        "max_position_embeddings": 4096, "sliding_window": 4096, "use_sliding_window": False,
        "tie_word_embeddings": False},
    # Qwen2.5-Math-7B distilled on DeepSeek-R1's traces with its context extended to 128K (the long-CoT presets)
    "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B": {
        "_source": "huggingface.co/deepseek-ai/DeepSeek-R1-Distill-Qwen-7B/blob/main/config.json",
        "model_type": "qwen2", "vocab_size": 152064, "hidden_size": 3584, "intermediate_size": 18944,
        "num_hidden_layers": 28, "num_attention_heads": 28, "num_key_value_heads": 4,
        "max_position_embeddings": 131072, "sliding_window": 4096, "use_sliding_window": False,
        "tie_word_embeddings": False},
    "HuggingFaceTB/SmolLM2-135M-Instruct": {
        "_source": "huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct/blob/main/config.json (134.5M parameters, "
                   "as docs/measurements.md counts for the embedded GGUF copy)",
        "model_type": "llama", "vocab_size": 49152, "hidden_size": 576, "intermediate_size": 1536,
        "num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3,
        "max_position_embeddings": 8192, "tie_word_embeddings": True},
    "meta-llama/Meta-Llama-3-8B": {
        "_source": "huggingface.co/meta-llama/Meta-Llama-3-8B/blob/main/config.json",
        "model_type": "llama", "vocab_size": 128256, "hidden_size": 4096, "intermediate_size": 14336,
        "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
        "max_position_embeddings": 8192, "tie_word_embeddings": False},
}
# arithmo.model's embedded alias -> the hub model it is a GGUF copy of
ALIASES = {"smollm2-135m-instruct": "HuggingFaceTB/SmolLM2-135M-Instruct"}


def _hub_cache_config(repo_id: str) -> Path | None:
    """config.json of `repo_id` in the local Hugging Face cache, if a snapshot holds one."""
    root = Path(os.environ.get("HF_HUB_CACHE") or Path(os.environ.get("HF_HOME", Path.home() / ".cache" /
                                                                       "huggingface")) / "hub")
    snapshots = root / f"models--{repo_id.replace('/', '--')}" / "snapshots"
    found = sorted(snapshots.glob("*/config.json")) if snapshots.is_dir() else []
    return found[-1] if found else None


def _read_config_json(path: Path) -> Any:
    """The parsed config.json at `path`; PlanError naming the file when it is a folder, unreadable, not UTF-8 or
    not JSON (NaN/Infinity included: RFC 8259 has no such numbers)."""
    def no_constants(word: str) -> Any:
        raise ValueError(f"{word} is not a JSON number")
    try:
        text = path.read_text(encoding="utf-8")
    except IsADirectoryError:
        raise PlanError(f"{path}: expected a config.json file, found a folder") from None
    except UnicodeDecodeError as err:
        raise PlanError(f"{path}: not UTF-8 text (byte {err.start}); config.json is UTF-8 JSON") from None
    except OSError as err:
        raise PlanError(f"{path}: cannot read: {err.strerror or err}") from None
    try:
        return json.loads(text, parse_constant=no_constants)
    except (json.JSONDecodeError, ValueError) as err:
        raise PlanError(f"{path}: not valid JSON: {err}") from None


def find_arch(name: str) -> Arch:
    """The architecture of `name`: a local folder's config.json (or a config.json path), an embedded alias,
    a hub id in the local cache or in KNOWN_ARCHITECTURES. PlanError says where it looked otherwise."""
    name = str(name)
    path = Path(name).expanduser()
    candidates = [path] if path.name == "config.json" else [path / "config.json"]
    if path.suffix == ".gguf":
        candidates = [path.parent / "config.json"]
    for candidate in candidates:
        if candidate.exists():
            return arch_from_config(_read_config_json(candidate), str(candidate), name)
    repo_id = ALIASES.get(name, name)
    cached = _hub_cache_config(repo_id) if repo_id.count("/") == 1 else None
    if cached is not None:
        return arch_from_config(_read_config_json(cached), str(cached), name)
    if repo_id in KNOWN_ARCHITECTURES:
        entry = dict(KNOWN_ARCHITECTURES[repo_id])
        return arch_from_config(entry, entry.pop("_source"), name)
    raise PlanError(f"model {name!r}: no config.json found (looked for {candidates[0]}, the Hugging Face cache "
                    f"and the built-in table: {', '.join(KNOWN_ARCHITECTURES)}); pass a local folder holding its "
                    f"config.json (the weights are not needed)")


# ----------------------------------------------------------------------------------------------
# engines and allocators: the calibrated constants


@dataclass(frozen=True)
class Engine:
    """How an engine stores one decoder layer's activations, per token (bytes = coefficients x sizes).

    norm:        saved per RMSNorm, in units of h x R (input, output) and h x 4 (a fp32 normalised copy)
    rope_copies: copies of q and k that RoPE keeps (HF's rotate_half keeps the rotated halves)
    mlp_saved:   MLP intermediates of width i kept for backward (gate, up, act(gate), product)
    mlp_backward: MLP intermediates alive during its backward (gradients, recomputed products)
    offload:     checkpoints go to pinned host memory (default when gradient checkpointing is on)
    loss:        the loss path it uses in arithmo's training recipe
    allocator:   its allocator setting (ALLOCATORS)
    """

    norm_r: float
    norm_fp32: float
    rope_copies: int
    mlp_saved: int
    mlp_backward: int
    offload: bool
    loss: str
    allocator: str
    source: str


# The saved-tensor counts follow each implementation's autograd graph; they were written down from the code
# paths named in `source`, not fitted. They reproduce the measured per-token growth of docs/measurements.md:
# HF stack 1.00 MiB/token at the loss (checkpoints 512 KiB with fp32 embeddings + (2 + 12) x 32000 B of
# logits), unsloth 0.27 MiB/token measured vs 0.24 predicted (tests/test_plan.py prints both).
ENGINES: dict[str, Engine] = {
    # transformers' LlamaRMSNorm saves its fp32 upcast and the normalised product; HF RoPE keeps rotate_half's
    # q and k; SiLU and the product keep gate, up, act(gate) and act*up.
    "hf": Engine(norm_r=2, norm_fp32=1, rope_copies=2, mlp_saved=4, mlp_backward=3, offload=False,
                 loss="chunked", allocator="default",
                 source="transformers 5.17 modeling_llama/mistral + peft LoRA + bitsandbytes Linear4bit"),
    # Liger-Kernel 0.8.5: RMSNorm keeps input and rstd, RoPE works in place, SwiGLU keeps gate and up (the
    # product is down_proj's input); its fused linear cross-entropy never holds the logits.
    "liger": Engine(norm_r=2, norm_fp32=0, rope_copies=0, mlp_saved=3, mlp_backward=3, offload=False,
                    loss="fused", allocator="default",
                    source="Liger-Kernel 0.8.5 rms_norm, rope, swiglu, fused_linear_cross_entropy"),
    # arithmo.kernels: fused LoRA MLP / QKV autograd functions keep X, gate and up and recompute the product in
    # backward (lora_mlp.py); checkpoints offloaded (checkpoint.py); expandable segments (model.prepare_engine).
    "kernels": Engine(norm_r=2, norm_fp32=0, rope_copies=0, mlp_saved=2, mlp_backward=4, offload=True,
                      loss="chunked", allocator="expandable",
                      source="arithmo/kernels (lora_mlp.py, lora_linear.py, checkpoint.py)"),
    # unsloth: the same fused LoRA MLP/QKV scheme, use_gradient_checkpointing="unsloth" (offloaded), its own
    # cross-entropy (compute-dtype logits, gradient in place).
    "unsloth": Engine(norm_r=2, norm_fp32=0, rope_copies=0, mlp_saved=2, mlp_backward=4, offload=True,
                      loss="unsloth", allocator="default",
                      source="unsloth 2026.10 fast_lora (LoRA_MLP, LoRA_QKV), offloaded gradient checkpointing"),
}


@dataclass(frozen=True)
class Allocator:
    phi: float      # (reserved - allocated) / transient, memory plentiful
    phi_cap: float  # the same near a memory cap, where cached blocks are freed before an allocation fails
    source: str


ALLOCATORS: dict[tuple[str, str], Allocator] = {
    # HF stack rows of docs/measurements.md (2048x4, 4096x1, 8192x1): (reserved - allocated) / (allocated - the
    # predicted static part) = 0.41, 0.33, 0.38 -> 0.37. Near the cap: 16,384 tokens fit with expandable
    # segments but not without (>= 0.055 unreleasable) and 14,336 fit (<= 0.21); unsloth's 45,056 fit (<= 0.09).
    ("default", "hf"): Allocator(0.37, 0.075, "measured HF stack rows (H100, 2026-11-22)"),
    # Liger patches the same transformers checkpointing: its allocation pattern, only reserved was measured.
    ("default", "liger"): Allocator(0.37, 0.075, "as hf (reserved only was measured for Liger)"),
    # unsloth rows: 0.16, 0.16, 0.17 -> 0.16; near the cap as above.
    ("default", "unsloth"): Allocator(0.16, 0.075, "measured unsloth rows (H100, 2026-11-22)"),
    ("default", "kernels"): Allocator(0.37, 0.075, "as hf (same transformers checkpointing), unmeasured"),
    # expandable_segments maps 2 MiB pages into one growing segment: freed pages are reused whatever the next
    # size, so little is stranded. Bracketed by the HF stack: 16,384 fits and 18,432 does not at 22 GiB.
    ("expandable", "*"): Allocator(0.03, 0.02, "expandable segments: HF stack and Liger longest-sequence rows"),
}


def allocator_for(allocator: str, engine: str) -> Allocator:
    if allocator == "expandable":
        return ALLOCATORS[("expandable", "*")]
    return ALLOCATORS[("default", engine)]


OPTIMIZERS = {  # optimizer name (transformers' optim names) -> state bytes per trainable parameter
    "adamw_torch": 8.0, "adamw_torch_fused": 8.0, "adamw_hf": 8.0, "adamw_32bit": 8.0, "paged_adamw_32bit": 8.0,
    "adamw_bnb_8bit": 2.0 + 8 / 256, "adamw_8bit": 2.0 + 8 / 256, "paged_adamw_8bit": 2.0 + 8 / 256,
    "adafactor": 0.1, "sgd": 0.0, "lion_8bit": 1.0 + 4 / 256, "lion_32bit": 4.0,
}
LOSSES = ("full", "chunked", "fused", "unsloth")
TRL_CHUNK_TOKENS = 256  # trl/trainer/sft_trainer.py _CHUNKED_LM_HEAD_CHUNK_SIZE (trl 1.14.2)
FUSED_CHUNK_BYTES = 256 << 20  # arithmo/kernels/cross_entropy.py DEFAULT_CHUNK_BYTES; Liger's is comparable


# ----------------------------------------------------------------------------------------------
# one setup


@dataclass
class Setup:
    """Everything the formula needs besides the architecture; one micro-batch shape."""

    engine: str = "hf"
    load_in_4bit: bool = True
    double_quant: bool = True
    compute_bytes: int = 2
    embed_bytes: int | None = None   # None: compute dtype (arithmo.model); 4: peft's prepare_model_for_kbit_training
    lora_r: int = 16
    targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    lora_dropout: float = 0.0
    optimizer: str = "adamw_bnb_8bit"
    gradient_checkpointing: bool = True
    offload: bool | None = None      # None: the engine's default
    loss: str | None = None          # None: the engine's loss in the recipe
    allocator: str | None = None     # None: the engine's
    micro_batch: int = 1
    seq_len: int = 1024
    # GRPO (None: SFT)
    grpo: bool = False
    prompt_len: int = 0
    completion_len: int = 0
    generation_batch: int = 0
    rollout: str = "hf"
    vllm_share: float = 0.3
    num_generations: int = 0         # GRPO group size: completions per rollout stay a multiple of it

    def validate(self) -> None:
        if self.engine not in ENGINES:
            raise PlanError(f"engine: expected one of {', '.join(ENGINES)}, got {self.engine!r}")
        if self.optimizer not in OPTIMIZERS:
            raise PlanError(f"optimizer: the planner knows {', '.join(sorted(OPTIMIZERS))}; got {self.optimizer!r}")
        if self.loss is not None and self.loss not in LOSSES:
            raise PlanError(f"plan.loss: expected one of {', '.join(LOSSES)}, got {self.loss!r}")
        if self.allocator not in (None, "default", "expandable"):
            raise PlanError(f"plan.allocator: expected default or expandable, got {self.allocator!r}")
        if self.rollout not in ("hf", "vllm"):
            raise PlanError(f"plan.rollout: expected hf or vllm, got {self.rollout!r}")
        for key in ("micro_batch", "seq_len", "lora_r", "compute_bytes"):
            if getattr(self, key) < 1:
                raise PlanError(f"{key}: expected >= 1, got {getattr(self, key)}")
        if self.grpo and (self.prompt_len < 1 or self.completion_len < 1):
            raise PlanError(f"GRPO: expected prompt and completion lengths >= 1, got {self.prompt_len} and "
                            f"{self.completion_len}")
        if not (isinstance(self.vllm_share, (int, float)) and 0 < self.vllm_share < 1):
            raise PlanError(f"plan.vllm_share: expected a fraction of the card in (0, 1), got {self.vllm_share!r}")


@dataclass
class Plan:
    """A prediction: parts in GiB (they add up to peak_reserved_gib + cuda_context), and what it needs."""

    parts: dict[str, float]
    peak_reserved_gib: float       # what torch.cuda.max_memory_reserved would report
    required_gib: float            # what the card must hold: allocated + unreleasable cache + CUDA context
    phase: str                     # where the peak is
    notes: list[str]
    static_gib: float
    transient_gib: float

    def fits(self, gpu_gib: float) -> bool:
        return self.required_gib <= gpu_gib


def _layer_bytes(arch: Arch, s: Setup, eng: Engine, c: int, r_bytes: int, i: int, moe: bool) -> tuple[float, float]:
    """(saved, backward temporaries) of one decoder layer whose token passes MLPs of total width `i`, bytes per
    token. A MoE layer (`moe`) also keeps the router's fp32 logits and softmax and the hidden states gathered for,
    and returned by, each of its experts_per_tok experts (transformers' MoE blocks: index_select per expert)."""
    h = arch.hidden
    q, kv = arch.heads * arch.head_dim, arch.kv_heads * arch.head_dim
    # a fp32-upcasting norm copies a narrower input to fp32 first; a residual wider than c is cast for the matmuls
    fp32_copies = eng.norm_fp32 + (1 if eng.norm_fp32 and r_bytes < 4 else 0)
    norms = 2 * (eng.norm_r * r_bytes * h + fp32_copies * 4 * h + (c * h if r_bytes != c else 0))
    attention = c * (q + 2 * kv) + eng.rope_copies * c * (q + kv) + c * q  # q, k, v; RoPE copies; SDPA output
    linears = arch.linears()
    lora = sum(s.lora_r * c + (c * linears[t][0] if s.lora_dropout > 0 else 0) for t in s.targets if t in linears)
    routing = (2 * 4 * arch.experts + 2 * arch.experts_per_tok * c * h) if moe else 0
    saved = norms + attention + eng.mlp_saved * c * i + lora + routing
    backward = eng.mlp_backward * c * i + 2 * r_bytes * h + routing
    return saved, backward


def _loss_bytes(arch: Arch, loss: str, c: int, r_bytes: int, tokens: int) -> float:
    """Bytes of the logits and loss at their peak for `tokens` labelled tokens."""
    v, h = arch.vocab, arch.hidden
    if loss == "full":      # compute-dtype logits + fp32 log_softmax + its gradient in and out
        return tokens * (c + 12) * v
    if loss == "unsloth":   # compute-dtype logits, gradient written in place, fp32 logsumexp per row
        return tokens * (c * v + 4)
    if loss == "chunked":   # sorted hidden copy + its gradient; one 256-token chunk recomputed in backward
        return tokens * 2 * c * h + min(tokens, TRL_CHUNK_TOKENS) * (c + 16) * v
    # fused: the gradient of the hidden states is computed in the forward; one chunk of fp32 logits
    return tokens * r_bytes * h + min(tokens * 4 * v, FUSED_CHUNK_BYTES)


def estimate(arch: Arch, s: Setup) -> Plan:
    """Predict the peak memory of one training (or GRPO) step of `s` on `arch`. Raises PlanError on bad knobs."""
    s.validate()
    eng = ENGINES[s.engine]
    c = s.compute_bytes
    embed_bytes = s.embed_bytes or c
    r_bytes = max(c, embed_bytes)  # the residual stream takes the embeddings' dtype (fp32 ones promote it)
    offload = eng.offload if s.offload is None else s.offload
    loss = s.loss or eng.loss
    alloc = allocator_for(s.allocator or eng.allocator, s.engine)
    notes: list[str] = []
    linears = arch.linears()
    if arch.moe_layers:
        notes.append(f"mixture of experts: {arch.moe_layers} layers of {arch.experts} experts (width "
                     f"{arch.expert_intermediate}) all resident; {arch.experts_per_tok} routed"
                     + (f" + a shared MLP of width {arch.shared_intermediate}" if arch.shared_intermediate else "")
                     + " per token; experts counted in the base-weight format, LoRA on attention and shared MLPs")
    unknown = [t for t in s.targets if t not in linears]
    if unknown:
        raise PlanError(f"model.target_modules: {', '.join(unknown)} are not decoder linears of this family "
                        f"({', '.join(linears)}; or all-linear)")

    # static ------------------------------------------------------------------------------------
    n_linear = arch.decoder_linear_params()
    if s.load_in_4bit:
        per_param = 0.5 + (1 / 64 + 4 / (64 * 256) if s.double_quant else 4 / 64)
    else:
        per_param = c
    base = n_linear * per_param + arch.embedding_params() * embed_bytes + (2 * arch.layers + 1) * arch.hidden * 4
    # LoRA adapts nn.Linear modules: attention in every layer, the MLP of dense layers and a MoE layer's shared
    # MLP; routed experts are 3-D parameters in transformers >= 5 that target_modules does not match
    mlp_layers_width = arch.dense_layers * arch.intermediate + arch.moe_layers * arch.shared_intermediate
    n_lora = 0
    for t in s.targets:
        fan_in, fan_out = linears[t]
        if t in ("gate_proj", "up_proj", "down_proj"):
            n_lora += s.lora_r * (arch.hidden * (arch.dense_layers + (arch.moe_layers if arch.shared_intermediate
                                                                          else 0)) + mlp_layers_width)
        else:
            n_lora += arch.layers * s.lora_r * (fan_in + fan_out)
    lora, grads, optim = n_lora * 4, n_lora * 4, n_lora * OPTIMIZERS[s.optimizer]
    static = base + lora + grads + optim

    # the training step ---------------------------------------------------------------------------
    batch, seq = s.micro_batch, s.seq_len
    tokens = batch * seq
    kinds = ([(arch.intermediate, False)] * (arch.dense_layers > 0)
             + [(arch.experts_per_tok * arch.expert_intermediate + arch.shared_intermediate, True)] * (arch.moe_layers > 0))
    per_kind = [_layer_bytes(arch, s, eng, c, r_bytes, width, moe) for width, moe in kinds]
    saved, backward = max(per_kind, key=lambda sb: sb[0] + sb[1])  # the layer whose recompute + backward peaks
    saved_all_layers = sum(sb[0] * (arch.moe_layers if moe else arch.dense_layers)
                           for sb, (_, moe) in zip(per_kind, kinds))
    if s.gradient_checkpointing:
        checkpoints = 0.0 if offload else tokens * arch.layers * r_bytes * arch.hidden
        layer_phase = tokens * (saved + backward + (r_bytes * arch.hidden if offload else 0))
    else:
        checkpoints = tokens * saved_all_layers
        layer_phase = tokens * backward
        if offload:
            notes.append("plan.offload=true without gradient checkpointing: nothing to offload")
    hidden_out = tokens * 2 * r_bytes * arch.hidden  # the final norm's input and output
    if s.grpo:
        # TRL keeps logits only for the completion (logits_to_keep): logits, /temperature copy, gradient
        loss_phase = batch * s.completion_len * 3 * c * arch.vocab + hidden_out
    else:
        loss_phase = _loss_bytes(arch, loss, c, r_bytes, tokens) + hidden_out
    widest = max([a * b for a, b in linears.values()] + [arch.hidden * 2 * arch.expert_intermediate])
    workspace = widest * c if s.load_in_4bit else 0.0
    if arch.sliding_window and seq > arch.sliding_window:
        workspace += batch * seq * seq * (1 + c)
        notes.append(f"sequence {seq} > sliding window {arch.sliding_window}: a {batch}x{seq}x{seq} attention mask "
                     "is materialised (grows with the square of the length)")
    train_activations = checkpoints + max(layer_phase, loss_phase) - (loss_phase if loss_phase > layer_phase else 0)
    train_logits = loss_phase if loss_phase > layer_phase else 0.0
    train_transient = checkpoints + max(layer_phase, loss_phase) + workspace
    phase = ("backward through the loss" if loss_phase > layer_phase else "backward through a decoder layer")

    parts = {"base_weights": base, "lora_weights": lora, "lora_grads": grads, "optimizer_state": optim,
             "activations": train_activations, "logits_loss": train_logits, "workspace": workspace}
    transient = train_transient
    if s.grpo:
        g = s.generation_batch or batch
        kv = g * (s.prompt_len + s.completion_len) * arch.kv_bytes_per_token(c)
        # prefill of the whole generation batch at once: one layer's MLP intermediates (gate, up, product)
        prefill = g * s.prompt_len * (3 * c * arch.active_intermediate() + c * (2 * arch.hidden))
        decode_logits = g * arch.vocab * 4 * 2
        rollout = kv + prefill + decode_logits + workspace
        parts["rollout_kv_cache"] = 0.0
        parts["rollout_engine_share"] = 0.0
        if s.rollout == "vllm":
            notes.append("vLLM colocated: its share of the card (weights, KV cache) is reserved up front; the "
                         "planner adds plan.vllm_share x the card")
        elif rollout > train_transient:
            parts.update(activations=prefill, logits_loss=decode_logits, rollout_kv_cache=kv)
            transient, phase = rollout, f"rollout: {g} completions' KV cache"
        notes.append(f"GRPO rollout {rollout / GiB:.2f} GiB (KV {kv / GiB:.2f}) vs update {train_transient / GiB:.2f} "
                     "GiB: the larger is the peak")
    overhead = alloc.phi * transient
    parts["allocator_overhead"] = overhead
    parts["cuda_context"] = CUDA_CONTEXT_GIB * GiB
    parts = {k: v / GiB for k, v in parts.items()}
    peak_reserved = (static + transient + overhead) / GiB
    share = 0.0
    if s.grpo and s.rollout == "vllm":
        share = s.vllm_share  # in units of the card: resolved by the caller that knows the card
    required = (static + transient * (1 + alloc.phi_cap)) / GiB + CUDA_CONTEXT_GIB
    plan = Plan(parts=parts, peak_reserved_gib=peak_reserved, required_gib=required, phase=phase, notes=notes,
                static_gib=static / GiB, transient_gib=transient / GiB)
    plan.vllm_share = share  # type: ignore[attr-defined]
    return plan


def with_card(plan: Plan, gpu_gib: float) -> Plan:
    """Add a colocated vLLM's share of a `gpu_gib` card to the plan (no-op without one)."""
    share = getattr(plan, "vllm_share", 0.0)
    if share:
        plan.parts["rollout_engine_share"] = share * gpu_gib
        plan.peak_reserved_gib += share * gpu_gib
        plan.required_gib += share * gpu_gib
        plan.vllm_share = 0.0  # type: ignore[attr-defined]
    return plan


def fits(arch: Arch, s: Setup, gpu_gib: float, context: bool = True) -> bool:
    """Whether `s` fits a card (or a `set_per_process_memory_fraction` cap when context=False) of gpu_gib."""
    plan = with_card(estimate(arch, s), gpu_gib)
    need = plan.required_gib - (0 if context else CUDA_CONTEXT_GIB)
    return need <= gpu_gib


def _at_micro(s: Setup, b: int) -> Setup:
    """`s` at micro-batch b with grad_accum unchanged (GRPO: the generation batch micro x accum scales alike)."""
    scaled = dataclasses.replace(s, micro_batch=b)
    if s.grpo and s.generation_batch:
        scaled.generation_batch = s.generation_batch // s.micro_batch * b
    return scaled


def largest_micro_batch(arch: Arch, s: Setup, gpu_gib: float, limit: int = 4096, context: bool = True) -> int:
    """The largest micro-batch, grad_accum unchanged, whose config fits; 0 when not even the smallest does. GRPO:
    only micro-batches whose micro x accum completions are whole groups of num_generations count (the config
    arithmo.grpo accepts), so the answer is >= micro_batch exactly when `fits` says the config fits."""
    unit = 1
    if s.grpo and s.num_generations and s.generation_batch:
        accum = max(s.generation_batch // s.micro_batch, 1)
        unit = s.num_generations // math.gcd(accum, s.num_generations)
    best, b = 0, 1
    while b <= limit and fits(arch, _at_micro(s, b), gpu_gib, context):
        best, b = b, b * 2
    lo, hi = best, min(b, limit + 1)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(arch, _at_micro(s, mid), gpu_gib, context) else (lo, mid)
    return lo // unit * unit  # the peak grows with the micro-batch: the largest whole-group one below still fits


def exceeds_positions(arch: Arch, s: Setup) -> str | None:
    """A sentence when the sequence (GRPO: prompt + completion) is longer than the model's max_position_embeddings,
    None otherwise (or when config.json does not say). Memory may fit; the positions past the limit were never
    trained (RoPE extrapolation) and the recipe would cut or refuse them."""
    if arch.max_positions is None or s.seq_len <= arch.max_positions:
        return None
    what = (f"prompt {s.prompt_len} + completion {s.completion_len} = {s.seq_len} tokens" if s.grpo
            else f"model.max_seq_length={s.seq_len}")
    return (f"{what} is longer than the model's max_position_embeddings={arch.max_positions}; the longest-length "
            f"answers are capped there")


def position_limit(arch: Arch, s: Setup) -> int | None:
    """The longest seq_len (GRPO: completion length after the prompt) the model's max_position_embeddings allows;
    None when config.json does not say."""
    if arch.max_positions is None:
        return None
    return arch.max_positions - (s.prompt_len if s.grpo else 0)


def largest_seq_len(arch: Arch, s: Setup, gpu_gib: float, step: int = 1, limit: int | None = None,
                    context: bool = True) -> int:
    """The longest sequence (GRPO: completion length) at this micro-batch that fits, a multiple of `step` (1: the
    exact length, by binary search over 1..limit); 0 when not even `step` tokens do. `limit` defaults to the
    model's max_position_embeddings (GRPO: less the prompt), 2^20 when config.json does not say."""
    if limit is None:
        limit = position_limit(arch, s)
        limit = (1 << 20) if limit is None else limit

    def at(n: int) -> Setup:
        if s.grpo:
            return dataclasses.replace(s, completion_len=n, seq_len=s.prompt_len + n)
        return dataclasses.replace(s, seq_len=n)
    if limit < step or not fits(arch, at(step), gpu_gib, context):
        return 0
    lo, hi = 1, limit // step + 1  # in steps: lo fits, hi does not (or is past the limit)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(arch, at(mid * step), gpu_gib, context) else (lo, mid)
    return lo * step


# ----------------------------------------------------------------------------------------------
# from a recipe config


# GRPO prompt tokens when plan.prompt_length is not given: 512 covers GSM8K's questions (<= 755 characters, about
# 200 tokens) in a chat template with a PoT hint, and MATH's long ones; a prompt's length is not a config field
# (the completion length is), so it must not be derived from model.max_seq_length
DEFAULT_PROMPT_TOKENS = 512


# planner-only knobs: plan.<knob>=value on the command line
PLAN_KNOBS = {
    "engine": "hf | liger | kernels | unsloth (overrides the resolved model.engine; liger = HF + Liger-Kernel)",
    "double_quant": "NF4 double quantisation (arithmo.model always uses it): true | false",
    "embed_dtype": "embeddings and lm_head: compute (arithmo.model) | float32 (peft's prepare_model_for_kbit_training)",
    "offload": "gradient checkpoints in host memory: true | false (default: the engine's)",
    "loss": "full | chunked | fused | unsloth (default: the engine's in the recipe)",
    "allocator": "default | expandable (PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True)",
    "prompt_length": f"GRPO prompt tokens (default {DEFAULT_PROMPT_TOKENS}: GSM8K/MATH questions in a chat "
                     "template fit; set it to your longest prompt)",
    "rollout": "GRPO rollouts: hf (model.generate) | vllm (colocated); default: the config's rollout",
    "vllm_share": "colocated vLLM's gpu_memory_utilization (default: the config's vllm_gpu_memory_utilization, 0.3)",
}


def resolve_engine(engine: str) -> tuple[str, str]:
    """`auto` as arithmo.model.pick_engine resolves it on a CUDA machine with this machine's packages."""
    import importlib.util

    if engine != "auto":
        return engine, "requested"
    if importlib.util.find_spec("unsloth") is not None:
        return "unsloth", "auto: unsloth is installed"
    if importlib.util.find_spec("triton") is not None:
        return "kernels", "auto: triton without unsloth (arithmo's kernels)"
    return "hf", "auto: neither unsloth nor triton installed"


def _targets(targets: list[str]) -> tuple[str, ...]:
    if targets == ["all-linear"] or targets == "all-linear":
        return ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    return tuple(targets)


def _bool(value: Any, key: str) -> bool:
    if isinstance(value, bool):
        return value
    raise PlanError(f"plan.{key}: expected true or false, got {value!r}")


def _knob_int(value: Any, key: str) -> int:
    """A positive integer knob; PlanError for text, booleans, fractions and values < 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise PlanError(f"plan.{key}: expected an integer >= 1, got {value!r}")
    return value


def _knob_fraction(value: Any, key: str) -> float:
    """A fraction strictly between 0 and 1; PlanError for text, booleans, NaN and values outside (0, 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise PlanError(f"plan.{key}: expected a fraction in (0, 1), got {value!r}")
    return float(value)


def _knob_choice(value: Any, key: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise PlanError(f"plan.{key}: expected one of {', '.join(choices)}, got {value!r}")
    return value




def setup_from_config(cfg: Any, knobs: dict[str, Any] | None = None) -> tuple[Arch, Setup, list[str]]:
    """(architecture, setup, notes) for a TrainConfig or GRPOTrainConfig and plan.<knob> values."""
    knobs = dict(knobs or {})
    knobs_in = set(knobs)
    unknown = sorted(set(knobs) - set(PLAN_KNOBS))
    if unknown:
        raise PlanError(f"unknown planner knob(s) {', '.join('plan.' + k for k in unknown)}; known: "
                        f"{', '.join('plan.' + k for k in PLAN_KNOBS)}")
    m = cfg.model
    arch = find_arch(m.name)
    notes = [f"architecture of {m.name} from {arch.source}"]
    requested = knobs.pop("engine", None)
    if requested is not None:
        _knob_choice(requested, "engine", tuple(ENGINES))
    engine, why = resolve_engine(requested or m.engine)
    if engine not in ENGINES:
        raise PlanError(f"model.engine: expected one of {', '.join(ENGINES)}, got {engine!r}")
    if why != "requested":
        notes.append(f"engine {engine} ({why})")
    dtype = m.dtype
    compute = 4 if dtype in ("float32", "fp32") else 2
    embed = _knob_choice(knobs.pop("embed_dtype", "compute"), "embed_dtype", ("compute", "float32"))
    grpo = hasattr(cfg, "num_generations")
    s = Setup(engine=engine, load_in_4bit=True if m.load_in_4bit is None else bool(m.load_in_4bit),
              double_quant=_bool(knobs.pop("double_quant", True), "double_quant"), compute_bytes=compute,
              embed_bytes=4 if embed == "float32" else None, lora_r=m.lora_r, targets=_targets(m.target_modules),
              lora_dropout=m.lora_dropout, gradient_checkpointing=m.gradient_checkpointing,
              micro_batch=cfg.micro_batch_size, seq_len=m.max_seq_length)
    optimizer = cfg.optimizer if cfg.optimizer != "auto" else "adamw_bnb_8bit"  # auto on CUDA (train._optimizer)
    s.optimizer = optimizer
    if "offload" in knobs:
        s.offload = _bool(knobs.pop("offload"), "offload")
    s.loss = _knob_choice(knobs.pop("loss"), "loss", LOSSES) if "loss" in knobs else None
    s.allocator = (_knob_choice(knobs.pop("allocator"), "allocator", ("default", "expandable"))
                   if "allocator" in knobs else None)
    if grpo:
        s.grpo = True
        s.completion_len = cfg.max_completion_length
        s.prompt_len = _knob_int(knobs.pop("prompt_length", DEFAULT_PROMPT_TOKENS), "prompt_length")
        s.seq_len = s.prompt_len + s.completion_len
        s.generation_batch = cfg.micro_batch_size * cfg.grad_accum  # TRL: steps_per_generation = grad_accum
        s.num_generations = cfg.num_generations
        s.rollout = _knob_choice(knobs.pop("rollout", getattr(cfg, "rollout", "hf")), "rollout", ("hf", "vllm"))
        s.vllm_share = _knob_fraction(knobs.pop("vllm_share", getattr(cfg, "vllm_gpu_memory_utilization", 0.3)),
                                      "vllm_share")
        if "prompt_length" not in knobs_in:
            notes.append(f"GRPO prompt length {s.prompt_len} tokens (plan.prompt_length; default "
                         f"{DEFAULT_PROMPT_TOKENS})")
    else:
        for key in ("prompt_length", "rollout", "vllm_share"):
            if key in knobs:
                raise PlanError(f"plan.{key} applies to GRPO configs only")
    beyond = exceeds_positions(arch, s)
    if beyond:
        notes.append(beyond)
    if m.load_in_4bit is False and dtype in ("float32", "fp32"):
        notes.append("a CPU preset (fp32, no 4-bit): the figures say what it would take on a GPU as configured")
    return arch, s, notes


def load_any_config(preset: str | None, overrides: list[str]) -> tuple[Any, dict[str, Any]]:
    """(TrainConfig or GRPOTrainConfig, plan knobs) from a preset name/path and key=value overrides."""
    from arithmo.config import load_config, parse_override

    knobs, rest = {}, []
    for text in overrides:
        if text.startswith("plan."):
            parts, value = parse_override(text)
            knobs[".".join(parts[1:])] = value
        else:
            rest.append(text)
    kind, path = _preset_path(preset)
    if kind == "grpo":
        return _load_grpo_plan(path, rest), knobs
    return load_config(_train_config_class(), path, rest), knobs


@dataclasses.dataclass
class GRPOPlanConfig:
    """The keys of a GRPO config (arithmo.grpo.GRPOTrainConfig: same names, defaults and whole-group rule) that
    decide its memory. The planner reads GRPO presets into this, not into the recipe's class, so that it never
    imports a recipe (arithmo.grpo calls the planner). auto_fit and training_plan take either class."""

    model: Any = None
    micro_batch_size: int = 8
    grad_accum: int = 1
    num_generations: int = 8
    max_completion_length: int = 512
    optimizer: str = "auto"
    rollout: str = "hf"                       # hf | vllm (arithmo.rollout: its share of the card)
    vllm_gpu_memory_utilization: float = 0.3

    def validate(self) -> None:
        """GRPOTrainConfig.validate's rules for these keys; ConfigError naming the key otherwise."""
        from arithmo.config import ConfigError

        for key in ("micro_batch_size", "grad_accum", "num_generations", "max_completion_length"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{key}: expected an integer >= 1, got {value!r}")
        if self.num_generations < 2:
            raise ConfigError("num_generations: GRPO's baseline is the group mean; expected >= 2 completions")
        if (self.micro_batch_size * self.grad_accum) % self.num_generations:
            raise ConfigError(f"micro_batch_size x grad_accum = {self.micro_batch_size * self.grad_accum} "
                              f"completions per step must be a multiple of num_generations={self.num_generations} "
                              "(whole groups per step)")


def _load_grpo_plan(path: Path | None, overrides: list[str]) -> GRPOPlanConfig:
    """A GRPOPlanConfig from a GRPO preset and overrides: the keys the planner reads are type-checked (the model
    section as arithmo.settings.ModelConfig); the recipe's other keys (benchmark, rewards, schedule) do not change
    memory and are left to the recipe, and a plan note lists the overridden ones."""
    import yaml

    from arithmo.config import ConfigError, from_dict, parse_override
    from arithmo.settings import ModelConfig

    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML: {err}") from err
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a mapping of keys at the top level")
    names = {f.name for f in dataclasses.fields(GRPOPlanConfig)}
    tree = {key: copy.deepcopy(value) for key, value in data.items() if key in names}
    skipped = []
    for text in overrides:
        parts, value = parse_override(text)
        if parts[0] not in names:
            skipped.append(text)
            continue
        node = tree
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{'.'.join(parts)}: {part} is not a section")
        node[parts[-1]] = value
    model = from_dict(ModelConfig, tree.pop("model", None) or {}, prefix="model.")
    cfg = from_dict(GRPOPlanConfig, {**tree, "model": None})
    cfg.model = model
    cfg.validate()
    cfg.not_planned = skipped  # type: ignore[attr-defined]  # report() names them in a note
    return cfg


def _train_config_class() -> type:
    """TrainConfig (arithmo.settings: below the recipes, so the planner never imports train.py)."""
    from arithmo.settings import TrainConfig

    return TrainConfig


def _preset_path(preset: str | None) -> tuple[str, Path | None]:
    from arithmo.config import find_preset

    if preset is None:
        return "train", None
    text = str(preset)
    if Path(text).is_file():
        import yaml

        try:
            data = yaml.safe_load(Path(text).read_text(encoding="utf-8")) or {}
        except UnicodeDecodeError as err:
            raise PlanError(f"{text}: not UTF-8 text (byte {err.start}); a preset is UTF-8 YAML") from None
        except yaml.YAMLError as err:
            raise PlanError(f"{text}: not valid YAML: {err}") from err
        return ("grpo" if isinstance(data, dict) and "num_generations" in data else "train"), Path(text)
    if "/" in text and text.split("/", 1)[0] in ("train", "grpo"):
        kind, name = text.split("/", 1)
        return kind, find_preset(name, CONFIGS / kind)
    return "train", find_preset(text, CONFIGS / "train")


def all_presets() -> list[str]:
    """Every train and GRPO preset, as the names `--preset` takes."""
    return ([p.stem for p in sorted((CONFIGS / "train").glob("*.yaml"))]
            + [f"grpo/{p.stem}" for p in sorted((CONFIGS / "grpo").glob("*.yaml"))])


# ----------------------------------------------------------------------------------------------
# auto_fit


def offload_engine_available() -> bool:
    """Whether arithmo's kernels engine (offloaded gradient checkpoints) can run here: it needs triton."""
    import importlib.util

    return importlib.util.find_spec("triton") is not None


def now_static(arch: Arch, s: Setup) -> float:
    """GiB of the part that does not depend on the batch or length (weights, adapters, gradients, optimizer)."""
    return estimate(arch, s).static_gib


def _divisors_desc(n: int, at_most: int) -> list[int]:
    return [d for d in range(min(n, at_most), 0, -1) if n % d == 0]


def auto_fit(cfg: Any, gpu_gib: float, knobs: dict[str, Any] | None = None) -> tuple[Any, list[str]]:
    """A copy of `cfg` changed so its predicted need fits `gpu_gib`, and the reasons, one line per decision.

    Order (cheapest in speed first; each step is kept only if needed):
      1. as configured, if it fits;
      2. gradient checkpointing on (recompute each layer in backward);
      3. offload: an engine that keeps checkpoints on the GPU (hf, liger) is switched to engine=kernels, which
         keeps them in pinned host memory, when triton is installed (`offload_engine_available`);
      4. halve micro_batch_size, doubling grad_accum: micro x accum (the effective batch) stays the same;
      5. GRPO only: the rollout generates all micro x accum completions in one call (TRL's generation batch), so
         when its KV cache is the peak no split of micro x accum helps: fewer questions per step (whole groups of
         num_generations), the largest generation batch that fits. The effective batch shrinks; the reason says
         by how much (the learning rate is not rescaled).
    When nothing fits, the last reason says "still does not fit" and names the longest max_seq_length (GRPO:
    max_completion_length) that would at the smallest batch, capped at the model's positions. Raises PlanError
    for a config the planner cannot read.
    """
    knobs = dict(knobs or {})
    new = copy.deepcopy(cfg)
    reasons: list[str] = []
    grpo = hasattr(cfg, "num_generations")

    def need(c: Any) -> tuple[float, Arch, Setup]:
        arch, s, _ = setup_from_config(c, knobs)
        return with_card(estimate(arch, s), gpu_gib).required_gib, arch, s

    def shape(c: Any) -> str:
        return f"micro_batch_size={c.micro_batch_size}, grad_accum={c.grad_accum}"

    first, arch, s = need(new)
    if first <= gpu_gib:
        return new, [f"fits as configured: predicted {first:.1f} GiB of {gpu_gib:.1f} GiB ({shape(new)})"]
    reasons.append(f"as configured it needs {first:.1f} GiB, more than the {gpu_gib:.1f} GiB card")
    if not new.model.gradient_checkpointing:
        new.model.gradient_checkpointing = True
        now, arch, s = need(new)
        reasons.append(f"checkpointing: gradient_checkpointing=true, recompute layers in backward ({now:.1f} GiB)")
        if now <= gpu_gib:
            return new, reasons
    if not ENGINES[s.engine].offload and knobs.get("offload") is not True:
        if offload_engine_available():
            was = s.engine
            new.model.engine = "kernels"
            knobs.pop("engine", None)
            now, arch, s = need(new)
            reasons.append(f"offload: engine={was} keeps checkpoints on the GPU; engine=kernels keeps them in host "
                           f"memory ({now:.1f} GiB)")
            if now <= gpu_gib:
                return new, reasons
        else:
            reasons.append(f"offload: not available (engine={s.engine} keeps checkpoints on the GPU; engine=kernels "
                           "needs triton, not installed)")
    effective = new.micro_batch_size * new.grad_accum
    start_micro = new.micro_batch_size
    while new.micro_batch_size > 1:
        micro = _divisors_desc(effective, new.micro_batch_size // 2)[0]
        new.micro_batch_size, new.grad_accum = micro, effective // micro
        now, arch, s = need(new)
        reasons.append(f"{shape(new)} (effective batch {effective} kept): {now:.1f} GiB")
        if now <= gpu_gib:
            return new, reasons
    if grpo:
        group = new.num_generations
        for questions in range(effective // group - 1, 0, -1):
            generation = questions * group
            for micro in _divisors_desc(generation, start_micro):
                new.micro_batch_size, new.grad_accum = micro, generation // micro
                now, arch, s = need(new)
                if now <= gpu_gib:
                    reasons.append(f"generation batch {generation} completions ({questions} questions x {group}) "
                                   f"instead of {effective}: the rollout generates micro x accum completions at "
                                   f"once; {shape(new)}: {now:.1f} GiB. The effective batch is now {generation} "
                                   f"(was {effective}); consider scaling lr")
                    return new, reasons
        new.micro_batch_size, new.grad_accum = 1, group  # the smallest: one question's group per step
        now, arch, s = need(new)
        reasons.append(f"not even one question's {group} completions per step fit ({shape(new)}: {now:.1f} GiB)")
    longest = largest_seq_len(arch, s, gpu_gib)
    what = "max_completion_length" if s.grpo else "model.max_seq_length"
    smallest = f"one question's {s.num_generations} completions" if s.grpo else "micro_batch_size=1"
    reasons.append(f"still does not fit at {smallest}; the longest {what} that fits is {longest}"
                   + (f" (not even one token: {now_static(arch, s):.1f} GiB of weights, adapters and optimizer "
                      "state" + (f" and the {s.prompt_len}-token prompts' rollout (plan.prompt_length)" if s.grpo
                                 else "") + " leave too little)" if not longest else ""))
    return new, reasons


def training_plan(cfg: Any, say: Any = print) -> tuple[Any, dict[str, Any] | None]:
    """The training recipe's hook: (config to train, memory plan for summary.json, or None without CUDA).

    On a CUDA GPU it predicts the peak for `cfg` on the card it finds (total memory of the current device) and,
    with `model.auto_fit`, first applies `auto_fit` and prints each decision. The plan holds
    predicted_peak_reserved_gib, predicted_required_gib, gpu_gib and the auto_fit reasons; the recipe's
    summary.json then has the measured `peak_reserved_gib` beside it. A model the planner cannot read gives
    {"plan_error": why} and training goes on as configured.
    """
    import torch

    tag = "[grpo]" if hasattr(cfg, "num_generations") else "[train]"
    wants_fit = bool(getattr(cfg.model, "auto_fit", False))
    if not torch.cuda.is_available():
        if wants_fit:
            say(f"{tag} model.auto_fit: no CUDA GPU here, nothing to fit; training as configured", flush=True)
        return cfg, None
    gpu_gib = torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory / GiB
    reasons: list[str] = []
    try:
        if wants_fit:
            cfg, reasons = auto_fit(cfg, gpu_gib)
            for reason in reasons:
                say(f"{tag} auto_fit ({gpu_gib:.1f} GiB card): {reason}", flush=True)
        arch, s, _ = setup_from_config(cfg)
        predicted = with_card(estimate(arch, s), gpu_gib)
    except PlanError as err:
        say(f"{tag} memory plan unavailable: {err}", flush=True)
        return cfg, {"plan_error": str(err)}
    return cfg, {"predicted_peak_reserved_gib": round(predicted.peak_reserved_gib, 2),
                 "predicted_required_gib": round(predicted.required_gib, 2), "gpu_gib": round(gpu_gib, 2),
                 "engine": s.engine, "auto_fit": reasons}


# ----------------------------------------------------------------------------------------------
# output


PART_LABELS = {
    "base_weights": "base weights", "lora_weights": "LoRA weights (fp32)", "lora_grads": "LoRA gradients (fp32)",
    "optimizer_state": "optimizer state", "activations": "activations", "logits_loss": "logits and loss",
    "workspace": "de-quantised weight + attention mask", "rollout_kv_cache": "rollout KV cache",
    "rollout_engine_share": "rollout engine share (vLLM)", "allocator_overhead": "allocator cache (fragmentation)",
    "cuda_context": "CUDA context",
}


def describe_setup(arch: Arch, s: Setup) -> str:
    eng = ENGINES[s.engine]
    quant = ("NF4 + double quant" if s.double_quant else "NF4") if s.load_in_4bit else f"{8 * s.compute_bytes}-bit"
    offload = eng.offload if s.offload is None else s.offload
    ckpt = ("checkpointing, offloaded" if offload else "checkpointing") if s.gradient_checkpointing else \
        "no checkpointing"
    shape = (f"{s.micro_batch} x ({s.prompt_len} prompt + {s.completion_len} completion), {s.generation_batch} "
             f"completions per rollout" if s.grpo else f"{s.micro_batch} x {s.seq_len} tokens")
    return (f"{arch.name} ({arch.model_type}, {arch.layers} layers, hidden {arch.hidden}, vocab {arch.vocab}); "
            f"engine {s.engine}; {quant}; LoRA r={s.lora_r} on {len(s.targets)} module kinds; {s.optimizer}; "
            f"{ckpt}; loss {s.loss or eng.loss}; {shape}")


def report(preset: str | None, overrides: list[str], gpu_gib: float) -> dict[str, Any]:
    """The planner's answer for a preset: {peak_reserved_gib, required_gib, parts, fits, ...}."""
    cfg, knobs = load_any_config(preset, overrides)
    arch, s, notes = setup_from_config(cfg, knobs)
    plan = with_card(estimate(arch, s), gpu_gib)
    result = {
        "peak_reserved_gib": round(plan.peak_reserved_gib, 2),
        "required_gib": round(plan.required_gib, 2),
        "parts": {k: round(v, 3) for k, v in plan.parts.items()},
        "fits": plan.fits(gpu_gib),
        "gpu_gib": gpu_gib,
        "phase": plan.phase,
        "largest_micro_batch": largest_micro_batch(arch, s, gpu_gib),
        ("largest_completion_length" if s.grpo else "largest_seq_len"): largest_seq_len(arch, s, gpu_gib),
        "max_position_embeddings": arch.max_positions,
        "exceeds_max_positions": exceeds_positions(arch, s) is not None,
        "setup": describe_setup(arch, s),
        "notes": notes + plan.notes,
    }
    if getattr(cfg, "not_planned", None):
        result["notes"].append(f"overrides that do not change memory, not checked here (the recipe checks them): "
                               f"{', '.join(cfg.not_planned)}")
    return result


def format_report(result: dict[str, Any]) -> str:
    lines = [result["setup"], ""]
    width = max(len(label) for label in PART_LABELS.values())
    for key, value in result["parts"].items():
        lines.append(f"  {PART_LABELS.get(key, key):<{width}}  {value:7.2f} GiB")
    lines.append(f"  {'peak reserved (torch)':<{width}}  {result['peak_reserved_gib']:7.2f} GiB   (peak: "
                 f"{result['phase']})")
    lines.append(f"  {'needs on the card':<{width}}  {result['required_gib']:7.2f} GiB   (allocated + unreleasable "
                 f"cache + CUDA context)")
    verdict = "fits" if result["fits"] else "does NOT fit"
    if result.get("exceeds_max_positions"):
        lines += ["", f"warning: the sequence is longer than the model's max_position_embeddings="
                      f"{result['max_position_embeddings']}: the memory verdict below is for the length asked; the "
                      f"longest-length answer is capped at the model's positions"]
    seq_key = "largest_completion_length" if "largest_completion_length" in result else "largest_seq_len"
    lines += ["", f"{verdict} a {result['gpu_gib']:g} GiB card; largest micro-batch that fits: "
              f"{result['largest_micro_batch']}; longest {seq_key.removeprefix('largest_').replace('_', ' ')} at this "
              f"micro-batch: {result[seq_key]}"]
    lines += [f"note: {note}" for note in result["notes"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=prog_name("plan"), formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Predict the peak GPU memory of a training or GRPO config from the model's config.json.",
        epilog="presets: " + ", ".join(all_presets()) + "\n\nplanner knobs (plan.<knob>=value):\n"
        + "\n".join(f"  plan.{k}: {v}" for k, v in PLAN_KNOBS.items()))
    parser.add_argument("--preset", help="train preset name, grpo/<name>, or a YAML path")
    parser.add_argument("overrides", nargs="*", help="key=value overrides of the recipe, plan.<knob>=value")
    parser.add_argument("--gpu-gb", type=float, default=24.0, help="GPU memory in GiB (default 24)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    from arithmo.config import SYSTEM_ERRORS, ConfigError, error_line

    if not math.isfinite(args.gpu_gb) or args.gpu_gb <= 0:
        print(f"error: --gpu-gb: expected a finite number of GiB > 0, got {args.gpu_gb}", file=sys.stderr)
        return 2
    try:
        result = report(args.preset, args.overrides, args.gpu_gb)
        # strict JSON: a NaN or infinity (which json.dumps would write as bare NaN/Infinity) is refused
        text = json.dumps(result, indent=2, allow_nan=False) if args.json else format_report(result)
    except (PlanError, ConfigError, *SYSTEM_ERRORS) as err:
        print(error_line(err), file=sys.stderr)
        return 2
    except ValueError as err:  # allow_nan=False: a non-finite figure from a knob the checks missed
        print(f"error: the plan holds a non-finite number ({err}); check the plan.* knobs", file=sys.stderr)
        return 2
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
