"""Patch arithmo's kernels into ONE model instance, and take them out again.

Nothing is patched at import time and no class or module global changes: `apply_kernels` sets instance
attributes (`forward` of each RMSNorm, attention, MLP and the ForCausalLM; optionally each decoder
layer's checkpointing function), the pattern Liger-Kernel's `_apply_liger_kernel_to_instance` uses.
Every attribute's previous state is recorded on the model, and `revert_kernels` puts each one back
(deleting the ones that did not exist), so the model computes exactly what it did before.
Supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM (transformers 5.17), bare or inside a
peft PeftModel, with nn.Linear or bitsandbytes Linear4bit layers, LoRA or not.
"""

from __future__ import annotations

import types
from collections import Counter

from torch import nn

from .runtime import interpreter_enabled, triton_installed

SUPPORTED_FAMILIES = ("llama", "mistral", "qwen2")
_RECORD = "_arithmo_kernel_patches"  # attribute on the ForCausalLM: [(module, attribute, previous value)]
_MISSING = object()


def _causal_lm(model: nn.Module) -> nn.Module:
    """The transformers ForCausalLM inside `model` (itself, or under peft's PeftModel -> LoraModel)."""
    from transformers import PreTrainedModel

    inner = model
    for _ in range(3):  # PeftModel -> LoraModel -> ForCausalLM (peft forwards attribute lookups downwards)
        if isinstance(inner, PreTrainedModel):
            break
        if callable(getattr(type(inner), "get_base_model", None)):
            inner = inner.get_base_model()
        elif isinstance(inner.__dict__.get("_modules", {}).get("model"), nn.Module):
            inner = inner.model
    model_type = getattr(getattr(inner, "config", None), "model_type", None)
    if model_type not in SUPPORTED_FAMILIES:
        raise ValueError(f"apply_kernels: model_type {model_type!r} ({type(inner).__name__}) is not supported; "
                         f"supported: {', '.join(SUPPORTED_FAMILIES)}")
    if not (hasattr(inner, "lm_head") and hasattr(getattr(inner, "model", None), "layers")):
        raise ValueError(f"apply_kernels: {type(inner).__name__} is not a ForCausalLM with model.layers and lm_head")
    return inner


def _forward_attribute(module: nn.Module) -> str:
    # accelerate's hooks (device_map dispatch) move the real forward to `_old_forward`
    return "_old_forward" if "_old_forward" in module.__dict__ else "forward"


class _Patcher:
    def __init__(self):
        self.records: list[tuple[nn.Module, str, object]] = []

    def set(self, module: nn.Module, attribute: str, value) -> None:
        self.records.append((module, attribute, module.__dict__.get(attribute, _MISSING)))
        setattr(module, attribute, value)

    def set_forward(self, module: nn.Module, function) -> None:
        self.set(module, _forward_attribute(module), types.MethodType(function, module))


def _backend() -> str:
    import torch

    if torch.cuda.is_available():
        return "triton (cuda)"
    return "triton (interpreter)" if interpreter_enabled() else "pytorch reference (no CUDA, TRITON_INTERPRET unset)"


def apply_kernels(model: nn.Module, *, rms_norm: bool = True, rope: bool = True, swiglu: bool = True,
                  cross_entropy: bool = True, lora_mlp: bool = True, lora_attention: bool = True,
                  offload_checkpoints: bool = False) -> dict:
    """Patch arithmo's kernels into this one model instance; returns what was patched.

    rms_norm: Triton RMSNorm for every RMSNorm. rope: Triton RoPE inside attention. swiglu: Triton SiLU*up
    where the MLP is not fused. cross_entropy: in training with labels, the fused linear + cross-entropy
    loss (outputs.logits is then None). lora_mlp / lora_attention: one autograd function per MLP and per
    q/k/v (and o) over frozen, possibly 4-bit, base weights with LoRA. offload_checkpoints: checkpoint every
    decoder layer with its input parked in pinned host memory (checkpoint.py).
    The result counts patched modules per kernel and, under "not_fused", why some projections cannot be
    fused right now (they then run their own forward).
    """
    if not triton_installed():
        raise RuntimeError("apply_kernels needs the `triton` package (CUDA builds of torch bring it; "
                           "on CPU: pip install triton and set TRITON_INTERPRET=1)")
    from . import layers  # imports triton: only here, never at `import arithmo`

    causal_lm = _causal_lm(model)
    if _RECORD in causal_lm.__dict__:
        raise RuntimeError(f"apply_kernels: kernels are already applied to this {type(causal_lm).__name__}; "
                           "call revert_kernels(model) first")
    family = causal_lm.config.model_type
    decoder = causal_lm.model
    patcher = _Patcher()
    report: dict = {"family": family, "backend": _backend(), "rms_norm": 0, "rope": 0, "lora_attention": 0,
                    "swiglu": 0, "lora_mlp": 0, "cross_entropy": 0, "offload_checkpoints": 0}
    not_fused: Counter = Counter()
    swiglu_act = getattr(causal_lm.config, "hidden_act", None) in layers.SWIGLU_ACTIVATIONS

    if rms_norm:
        for module in decoder.modules():
            if type(module).__name__.endswith("RMSNorm") and hasattr(module, "variance_epsilon"):
                patcher.set_forward(module, layers.rms_norm_forward)
                report["rms_norm"] += 1
    for layer in decoder.layers:
        attn, mlp = layer.self_attn, layer.mlp
        if rope or lora_attention:
            patcher.set_forward(attn, layers.make_attention_forward(family, rope, lora_attention))
            report["rope"] += int(rope)
            if lora_attention:
                for group in ([attn.q_proj, attn.k_proj, attn.v_proj], [attn.o_proj]):
                    projections, reason = layers.fusable(group)
                    report["lora_attention"] += int(projections is not None)
                    not_fused.update([f"attention: {reason}"] if projections is None else [])
        fuse_mlp = lora_mlp and swiglu_act
        if (swiglu and swiglu_act) or fuse_mlp:
            patcher.set_forward(mlp, layers.make_mlp_forward(swiglu and swiglu_act, fuse_mlp))
            if fuse_mlp:
                projections, reason = layers.fusable([mlp.gate_proj, mlp.up_proj, mlp.down_proj])
                report["lora_mlp"] += int(projections is not None)
                not_fused.update([f"mlp: {reason}"] if projections is None else [])
            report["swiglu"] += int(swiglu and swiglu_act)
        if offload_checkpoints:
            from .checkpoint import offloaded_checkpoint

            patcher.set(layer, "gradient_checkpointing", True)
            patcher.set(layer, "_gradient_checkpointing_func", offloaded_checkpoint)
            report["offload_checkpoints"] += 1
    if not swiglu_act and (swiglu or lora_mlp):
        not_fused[f"mlp: hidden_act {causal_lm.config.hidden_act!r} is not SiLU"] += len(decoder.layers)
    if cross_entropy:
        if layers.lm_head_fusable(causal_lm.lm_head):
            original = getattr(causal_lm, _forward_attribute(causal_lm))
            patcher.set_forward(causal_lm, layers.make_causal_lm_forward(original))
            report["cross_entropy"] = 1
        else:
            not_fused[f"cross_entropy: lm_head is {type(causal_lm.lm_head).__name__}, not a plain Linear"] += 1
    report["not_fused"] = dict(not_fused)
    patcher.set(causal_lm, _RECORD, patcher.records)
    return report


def revert_kernels(model: nn.Module) -> int:
    """Undo `apply_kernels` on this model: every patched attribute back as it was. Returns how many."""
    causal_lm = _causal_lm(model)
    records = causal_lm.__dict__.get(_RECORD)
    if records is None:
        raise RuntimeError(f"revert_kernels: no kernels are applied to this {type(causal_lm).__name__}")
    for module, attribute, previous in reversed(records):
        if previous is _MISSING:
            delattr(module, attribute)
        else:
            setattr(module, attribute, previous)
    return len(records) - 1  # the record list itself is not a kernel


def applied_kernels(model: nn.Module) -> bool:
    """Whether `apply_kernels` is in effect on this model."""
    return _RECORD in _causal_lm(model).__dict__
