"""LoRA projections that share one input, as one autograd function (q/k/v from the same hidden state;
o_proj alone), over a frozen base weight that may be 4-bit.

For each projection i with frozen W_i (out_i, in), LoRA A_i (r, in), B_i (out_i, r), scale s_i:
    y_i = x W_i^T + b_i + s_i (x A_i^T) B_i^T                     (one matmul + one addmm, no temporaries)
Backward, with dy_i the gradient of y_i:
    dx    = sum_i dy_i W_i + s_i (dy_i B_i) A_i
    dA_i  = s_i (dy_i B_i)^T x           dB_i = s_i dy_i^T (x A_i^T)
Only x and the (tokens x r) products x A_i^T are saved; W_i is dequantised again in the backward instead
of being kept. The matmuls run in x's compute dtype (autocast's when on); A and B stay in their own
(usually fp32) dtype as parameters and are cast per call.
peft's LoRA layers are recognised by their attributes (base_layer, lora_A, lora_B, scaling, ...), so
this module imports neither peft nor, until a 4-bit weight is met, bitsandbytes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .runtime import compute_dtype


@dataclass(frozen=True)
class LoraProjection:
    """One projection the fused functions can run: a frozen base layer plus an optional LoRA pair."""

    base: nn.Module
    bias: torch.Tensor | None
    lora_a: torch.Tensor | None
    lora_b: torch.Tensor | None
    scale: float


def dense_weight(base: nn.Module, dtype: torch.dtype) -> torch.Tensor:
    """The (out, in) weight of `base` in `dtype`, dequantised when it is a bitsandbytes 4-bit weight."""
    weight = base.weight
    quant_state = getattr(weight, "quant_state", None)
    if quant_state is None:
        return weight.to(dtype)
    # The model was loaded 4-bit, so bitsandbytes is installed and already imported by whoever loaded it.
    from bitsandbytes.functional import dequantize_4bit

    return dequantize_4bit(weight.data, quant_state).to(dtype)


def _has_hooks(module: nn.Module) -> bool:
    return bool(module._forward_hooks or module._forward_pre_hooks)


def _frozen_base(module: nn.Module) -> tuple[nn.Module | None, str]:
    weight = getattr(module, "weight", None)
    if not isinstance(weight, torch.Tensor) or getattr(module, "in_features", None) is None:
        return None, f"{type(module).__name__} is not a linear layer"
    if weight.requires_grad:
        return None, "base weight is trainable"
    bias = getattr(module, "bias", None)
    if bias is not None and bias.requires_grad:
        return None, "base bias is trainable"
    if _has_hooks(module):
        return None, "forward hooks on the base layer"
    if getattr(weight, "quant_state", None) is None and weight.dim() != 2:
        return None, f"base weight of {type(module).__name__} is neither dense 2-D nor 4-bit"
    return module, ""


def projection_of(module: nn.Module) -> tuple[LoraProjection | None, str]:
    """(projection, "") when the fused functions can compute `module(x)` exactly, else (None, reason)."""
    if _has_hooks(module):
        return None, "forward hooks on the layer"
    if not hasattr(module, "lora_A"):
        base, reason = _frozen_base(module)
        if base is None:
            return None, reason
        return LoraProjection(base, base.bias, None, None, 1.0), ""
    if module.disable_adapters or module.merged:
        return None, "adapters disabled or merged"
    adapters = [name for name in module.active_adapters if name in module.lora_A]
    if len(adapters) != 1:
        return None, f"{len(adapters)} active adapters (fusing needs exactly one)"
    name = adapters[0]
    if module.use_dora.get(name, False) or name in getattr(module, "lora_variant", {}):
        return None, "a LoRA variant (DoRA, ...) is active"
    dropout = module.lora_dropout[name]
    if not isinstance(dropout, nn.Identity) and not (dropout.p == 0 or not module.training):
        return None, "LoRA dropout > 0 while training"
    if module.lora_B[name].bias is not None:
        return None, "LoRA B has a bias"
    base, reason = _frozen_base(module.base_layer)
    if base is None:
        return None, reason
    return LoraProjection(base, base.bias, module.lora_A[name].weight, module.lora_B[name].weight,
                          float(module.scaling[name])), ""


def project(x: torch.Tensor, proj: LoraProjection, lora_a, lora_b) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(x W^T + b + s (x A^T) B^T, x A^T) for 2-D x in its own dtype; the second is None without LoRA."""
    out = x @ dense_weight(proj.base, x.dtype).t()
    if proj.bias is not None:
        out += proj.bias.to(x.dtype)
    if lora_a is None:
        return out, None
    x_a = x @ lora_a.to(x.dtype).t()
    out.addmm_(x_a, lora_b.to(x.dtype).t(), alpha=proj.scale)
    return out, x_a


def project_backward(d_out: torch.Tensor, x: torch.Tensor, x_a: torch.Tensor | None, proj: LoraProjection,
                     lora_a, lora_b, dx: torch.Tensor | None) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Add d_out's share of dx into `dx` (when given) and return (dA, dB) in the parameters' dtypes."""
    if dx is not None:
        dx.addmm_(d_out, dense_weight(proj.base, d_out.dtype))
    if lora_a is None:
        return None, None
    d_out_b = (d_out @ lora_b.to(d_out.dtype)).mul_(proj.scale)  # (tokens, r), already scaled
    if dx is not None:
        dx.addmm_(d_out_b, lora_a.to(d_out.dtype))
    return (d_out_b.t() @ x).to(lora_a.dtype), (d_out.t() @ x_a).mul_(proj.scale).to(lora_b.dtype)


class LoraProjectionsFunction(torch.autograd.Function):
    """y_i = LoRA_i(x) for projections sharing x (2-D, compute dtype). Inputs: x, projections, A_0, B_0, ..."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, projections: tuple[LoraProjection, ...], *lora_weights):
        outs, x_as = [], []
        for i, proj in enumerate(projections):
            out, x_a = project(x, proj, lora_weights[2 * i], lora_weights[2 * i + 1])
            outs.append(out)
            x_as.append(x_a)
        ctx.projections = projections
        ctx.has_lora = [x_a is not None for x_a in x_as]
        ctx.save_for_backward(x, *[t for t in x_as if t is not None], *[w for w in lora_weights if w is not None])
        return tuple(outs)

    @staticmethod
    def backward(ctx, *d_outs):
        saved = list(ctx.saved_tensors)
        x = saved.pop(0)
        n_lora = sum(ctx.has_lora)
        x_as, weights = saved[:n_lora], saved[n_lora:]
        need_dx = ctx.needs_input_grad[0]
        dx = torch.zeros_like(x) if need_dx else None
        lora_grads: list[torch.Tensor | None] = []
        for proj, has_lora, d_out in zip(ctx.projections, ctx.has_lora, d_outs):
            lora_a = weights.pop(0) if has_lora else None
            lora_b = weights.pop(0) if has_lora else None
            x_a = x_as.pop(0) if has_lora else None
            if d_out is None:
                lora_grads += [None, None]
                continue
            lora_grads += project_backward(d_out.to(x.dtype), x, x_a, proj, lora_a, lora_b, dx)
        return (dx, None, *lora_grads)


def lora_weights_of(projections: list[LoraProjection]) -> list[torch.Tensor | None]:
    return [w for p in projections for w in (p.lora_a, p.lora_b)]


def lora_projections(x: torch.Tensor, projections: list[LoraProjection]) -> tuple[torch.Tensor, ...]:
    """Every projection of x (..., in): a tuple of (..., out_i) tensors in x's compute dtype."""
    dtype = compute_dtype(x)
    x2 = x.reshape(-1, x.shape[-1]).to(dtype)
    outs = LoraProjectionsFunction.apply(x2, tuple(projections), *lora_weights_of(projections))
    return tuple(out.view(*x.shape[:-1], out.shape[-1]) for out in outs)
