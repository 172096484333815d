"""The forwards `apply_kernels` installs on one model's modules (Llama, Mistral, Qwen2 in transformers 5.17).

Each replacement computes what the module's own forward computes (modeling_llama.py and its Mistral and
Qwen2 copies), with the kernels swapped in. Whether a LoRA projection can be fused is decided on every
call (`projection_of`), so peft's `disable_adapter()`, `set_adapter()`, merging or dropout > 0 fall back to
the modules' own forwards instead of computing something else.
"""

from __future__ import annotations

import sys
import weakref
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from transformers.modeling_outputs import CausalLMOutputWithPast
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

from .cross_entropy import fused_linear_cross_entropy
from .lora_linear import LoraProjection, lora_projections, projection_of
from .lora_mlp import lora_mlp
from .reference import IGNORE_INDEX
from .rmsnorm import rms_norm
from .rope import rope
from .swiglu import swiglu

# What each family passes to the attention function beyond Llama's arguments (modeling_mistral.py and
# modeling_qwen2.py mark it "main diff with Llama").
SLIDING_WINDOW_KWARGS: dict[str, Callable[[nn.Module], dict]] = {
    "llama": lambda attn: {},
    "mistral": lambda attn: {"sliding_window": getattr(attn.config, "sliding_window", None)},
    "qwen2": lambda attn: {"sliding_window": attn.sliding_window},
}
SWIGLU_ACTIVATIONS = ("silu", "swish")  # ACT2FN names whose function is x * sigmoid(x)


def fusable(modules: list[nn.Module]) -> tuple[list[LoraProjection] | None, str]:
    """The projections of `modules` when every one can be fused, else (None, the first reason)."""
    projections = []
    for module in modules:
        projection, reason = projection_of(module)
        if projection is None:
            return None, reason
        projections.append(projection)
    return projections, ""


class _CausalMaskCheck:
    """Whether a boolean attention mask is exactly the causal (lower-triangular) pattern, cached per mask.

    transformers 5.17 builds a (T x T) mask for a sliding-window model once kv_length >= sliding_window
    (masking_utils._ignore_causal_mask_sdpa), although at kv_length == window the window excludes nothing
    (q - kv < window always holds). A mask then keeps SDPA off its flash kernel. When the mask IS plain
    causal, dropping it and letting SDPA use is_causal computes the same attention. The check (one
    comparison, one host sync) runs once per mask tensor: every layer and the recompute share it.
    """

    mask_ref: weakref.ReferenceType | None = None  # a weak reference: a freed mask can never match
    version = -1
    result = False

    @classmethod
    def is_plain_causal(cls, mask: torch.Tensor) -> bool:
        if cls.mask_ref is None or cls.mask_ref() is not mask or mask._version != cls.version:
            q_len, kv_len = mask.shape[-2:]
            causal = torch.ones(q_len, kv_len, dtype=torch.bool, device=mask.device).tril()
            cls.mask_ref, cls.version = weakref.ref(mask), mask._version
            cls.result = bool(torch.equal(mask, causal.expand_as(mask)))
        return cls.result


def _maybe_drop_causal_mask(attention_mask, query, key, sliding_window):
    """None for a mask that only re-states causality within the window (see _CausalMaskCheck), else the mask."""
    if (attention_mask is None or attention_mask.dtype != torch.bool or sliding_window is None
            or attention_mask.dim() != 4 or query.shape[2] != key.shape[2] or key.shape[2] > sliding_window):
        return attention_mask
    return None if _CausalMaskCheck.is_plain_causal(attention_mask) else attention_mask


def rms_norm_forward(self: nn.Module, hidden_states: torch.Tensor) -> torch.Tensor:
    return rms_norm(hidden_states, self.weight, self.variance_epsilon)


def make_attention_forward(family: str, use_rope: bool, fuse_lora: bool) -> Callable:
    """A forward for the family's attention module: fused q/k/v and o projections, Triton RoPE."""
    sliding_window_kwargs = SLIDING_WINDOW_KWARGS[family]

    def attention_forward(self, hidden_states, position_embeddings=None, attention_mask=None,
                          past_key_values=None, **kwargs):
        modeling = sys.modules[type(self).__module__]
        input_shape = hidden_states.shape[:-1]
        hidden_shape = (*input_shape, -1, self.head_dim)
        qkv, _ = fusable([self.q_proj, self.k_proj, self.v_proj]) if fuse_lora else (None, "")
        if qkv is not None:
            query, key, value = lora_projections(hidden_states, qkv)
        else:
            query, key, value = self.q_proj(hidden_states), self.k_proj(hidden_states), self.v_proj(hidden_states)
        query = query.view(hidden_shape).transpose(1, 2)
        key = key.view(hidden_shape).transpose(1, 2)
        value = value.view(hidden_shape).transpose(1, 2)
        cos, sin = position_embeddings
        if use_rope:
            query, key = rope(query, key, cos, sin)
        else:
            query, key = modeling.apply_rotary_pos_emb(query, key, cos, sin)
        if past_key_values is not None:
            key, value = past_key_values.update(key, value, self.layer_idx)
        attention_interface = ALL_ATTENTION_FUNCTIONS.get_interface(self.config._attn_implementation,
                                                                    modeling.eager_attention_forward)
        window = sliding_window_kwargs(self)
        if self.config._attn_implementation == "sdpa":
            attention_mask = _maybe_drop_causal_mask(attention_mask, query, key, window.get("sliding_window"))
        attn_output, attn_weights = attention_interface(
            self, query, key, value, attention_mask,
            dropout=0.0 if not self.training else self.attention_dropout, scaling=self.scaling,
            **window, **kwargs)
        attn_output = attn_output.reshape(*input_shape, -1).contiguous()
        o_proj, _ = fusable([self.o_proj]) if fuse_lora else (None, "")
        if o_proj is not None:
            (attn_output,) = lora_projections(attn_output, o_proj)
        else:
            attn_output = self.o_proj(attn_output)
        return attn_output, attn_weights

    return attention_forward


def make_mlp_forward(use_swiglu: bool, fuse_lora: bool) -> Callable:
    """A forward for a SwiGLU MLP: the fused LoRA MLP when it applies, else the Triton activation."""

    def mlp_forward(self, x):
        if fuse_lora:
            projections, _ = fusable([self.gate_proj, self.up_proj, self.down_proj])
            if projections is not None:
                return lora_mlp(x, *projections)
        gate, up = self.gate_proj(x), self.up_proj(x)
        activated = swiglu(gate, up) if use_swiglu and gate.dtype == up.dtype else self.act_fn(gate) * up
        return self.down_proj(activated)

    return mlp_forward


def lm_head_fusable(lm_head: nn.Module) -> bool:
    """A plain dense Linear (not LoRA-wrapped, not quantised, no hooks): what the fused loss reads."""
    return (type(lm_head) is nn.Linear and not lm_head._forward_hooks and not lm_head._forward_pre_hooks)


def make_causal_lm_forward(original: Callable) -> Callable:
    """A ForCausalLM forward whose training loss never materialises the logits (they come back as None).

    `original` (the unpatched forward, bound) serves every call that needs logits: eval mode, no labels,
    `logits_to_keep`, or an lm_head the fused loss cannot read.
    """

    def causal_lm_forward(self, input_ids=None, attention_mask=None, position_ids=None, past_key_values=None,
                          inputs_embeds=None, labels=None, use_cache=None, logits_to_keep=0, **kwargs):
        shift_labels = kwargs.get("shift_labels")
        wants_loss = labels is not None or shift_labels is not None
        if not (self.training and wants_loss and isinstance(logits_to_keep, int) and logits_to_keep == 0
                and lm_head_fusable(self.lm_head)):
            return original(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                            past_key_values=past_key_values, inputs_embeds=inputs_embeds, labels=labels,
                            use_cache=use_cache, logits_to_keep=logits_to_keep, **kwargs)
        kwargs.pop("shift_labels", None)
        num_items_in_batch = kwargs.pop("num_items_in_batch", None)
        ignore_index = kwargs.pop("ignore_index", IGNORE_INDEX)
        return_dict = kwargs.pop("return_dict", None)
        outputs = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                             past_key_values=past_key_values, inputs_embeds=inputs_embeds, use_cache=use_cache,
                             **kwargs)
        hidden = outputs.last_hidden_state
        if shift_labels is None:  # tokens < n predict n, as transformers' ForCausalLMLoss
            shift_labels = F.pad(labels, (0, 1), value=ignore_index)[..., 1:]
        loss = fused_linear_cross_entropy(hidden, self.lm_head.weight, shift_labels.to(hidden.device),
                                          bias=self.lm_head.bias, ignore_index=ignore_index,
                                          num_items_in_batch=num_items_in_batch)
        result = CausalLMOutputWithPast(loss=loss, logits=None, past_key_values=outputs.past_key_values,
                                        hidden_states=outputs.hidden_states, attentions=outputs.attentions)
        return result.to_tuple() if return_dict is False else result

    return causal_lm_forward
