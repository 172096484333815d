"""The LoRA-aware SwiGLU MLP as one autograd function: down(silu(gate(x)) * up(x)), each projection a
frozen (possibly 4-bit) base weight plus LoRA (see lora_linear.py for the per-projection algebra).

Forward, for x (tokens, H):
    g = x Wg^T + sg (x Ag^T) Bg^T          u = x Wu^T + su (x Au^T) Bu^T        (one addmm each for LoRA)
    h = silu(g) * u                                                              (Triton swiglu)
    y = h Wd^T + sd (h Ad^T) Bd^T
Saved: x, g, u and the (tokens x r) products x Ag^T, x Au^T. Not saved: h (recomputed in the backward by
the same kernel that differentiates it) and every dequantised weight. Backward, with dy:
    dh  = dy Wd + sd (dy Bd) Ad
    h, dg, du = swiglu_backward_inplace(dh, g, u)          (h over dh, dg over g, du over u: no new buffers)
    dAd = sd (dy Bd)^T h       dBd = sd dy^T (h Ad^T)
    dx  = dg Wg + sg (dg Bg) Ag + du Wu + su (du Bu) Au
    dAg = sg (dg Bg)^T x       dBg = sg dg^T (x Ag^T)      (and likewise for up)
Compared with peft's per-layer path this keeps 3 (tokens x intermediate) tensors alive instead of ~7 and
skips peft's result.clone(), the LoRA branch's separate scale and add kernels.
"""

from __future__ import annotations

import torch

from .lora_linear import LoraProjection, dense_weight, lora_weights_of, project, project_backward
from .runtime import compute_dtype
from .swiglu import swiglu_backward_inplace, swiglu_forward


class LoraMLPFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, gate: LoraProjection, up: LoraProjection, down: LoraProjection,
                gate_a, gate_b, up_a, up_b, down_a, down_b):
        g, x_ga = project(x, gate, gate_a, gate_b)
        u, x_ua = project(x, up, up_a, up_b)
        y, _ = project(swiglu_forward(g, u), down, down_a, down_b)
        ctx.projections = (gate, up, down)
        ctx.lora = (gate_a, gate_b, up_a, up_b, down_a, down_b)  # parameters: alive as long as the model
        ctx.save_for_backward(x, g, u, x_ga, x_ua)
        return y

    @staticmethod
    def backward(ctx, dy):
        x, g, u, x_ga, x_ua = ctx.saved_tensors
        gate, up, down = ctx.projections
        gate_a, gate_b, up_a, up_b, down_a, down_b = ctx.lora
        dy = dy.to(x.dtype)
        dh = dy @ dense_weight(down.base, x.dtype)
        dy_bd = None
        if down_a is not None:
            dy_bd = (dy @ down_b.to(x.dtype)).mul_(down.scale)
            dh.addmm_(dy_bd, down_a.to(x.dtype))
        # g and u are saved tensors no one else reads after this point: reuse them for dg and du.
        h, dg, du = swiglu_backward_inplace(dh, g, u)
        d_down_a = d_down_b = None
        if down_a is not None:
            d_down_a = (dy_bd.t() @ h).to(down_a.dtype)
            d_down_b = (dy.t() @ (h @ down_a.to(x.dtype).t())).mul_(down.scale).to(down_b.dtype)
        del h
        dx = torch.zeros_like(x) if ctx.needs_input_grad[0] else None
        d_gate_a, d_gate_b = project_backward(dg, x, x_ga, gate, gate_a, gate_b, dx)
        d_up_a, d_up_b = project_backward(du, x, x_ua, up, up_a, up_b, dx)
        return dx, None, None, None, d_gate_a, d_gate_b, d_up_a, d_up_b, d_down_a, d_down_b


def lora_mlp(x: torch.Tensor, gate: LoraProjection, up: LoraProjection, down: LoraProjection) -> torch.Tensor:
    """down(silu(gate(x)) * up(x)) for x (..., H), in x's compute dtype; one autograd node."""
    x2 = x.reshape(-1, x.shape[-1]).to(compute_dtype(x))
    y = LoraMLPFunction.apply(x2, gate, up, down, *lora_weights_of([gate, up, down]))
    return y.view(*x.shape[:-1], y.shape[-1])
