"""SwiGLU, the gated activation of Llama/Mistral/Qwen2 MLPs, as elementwise Triton kernels.

Forward (sigma = sigmoid, in fp32; silu rounded to the input dtype before the product, as
transformers computes act_fn(gate) * up in two ops):
    a = round_to(dtype, g * sigma(g));   h = a * u
Backward, with dh the gradient of h:
    du = dh * silu(g)
    dg = dh * u * sigma(g) * (1 + g * (1 - sigma(g)))          (d silu / dg)
`swiglu_backward_inplace` is the form the LoRA MLP uses: it reads (dh, g, u) and writes h over dh,
dg over g and du over u, so the backward needs no new (tokens x intermediate) buffers.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from . import reference
from .runtime import use_triton

BLOCK = 1024  # elements per program: 8 per thread at 4 warps


@triton.jit
def _swiglu_forward_kernel(G, U, H, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    g = tl.load(G + offs, mask=mask, other=0.0).to(tl.float32)
    u = tl.load(U + offs, mask=mask, other=0.0).to(tl.float32)
    a = (g * tl.sigmoid(g)).to(G.dtype.element_ty).to(tl.float32)
    tl.store(H + offs, (a * u).to(H.dtype.element_ty), mask=mask)


@triton.jit
def _swiglu_backward_kernel(DH, G, U, H_OUT, DG, DU, n, BLOCK: tl.constexpr, STORE_H: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    dh = tl.load(DH + offs, mask=mask, other=0.0).to(tl.float32)
    g = tl.load(G + offs, mask=mask, other=0.0).to(tl.float32)
    u = tl.load(U + offs, mask=mask, other=0.0).to(tl.float32)
    sig = tl.sigmoid(g)
    silu = g * sig
    if STORE_H:
        tl.store(H_OUT + offs, (silu.to(G.dtype.element_ty).to(tl.float32) * u).to(H_OUT.dtype.element_ty), mask=mask)
    tl.store(DG + offs, (dh * u * sig * (1.0 + g * (1.0 - sig))).to(DG.dtype.element_ty), mask=mask)
    tl.store(DU + offs, (dh * silu).to(DU.dtype.element_ty), mask=mask)


def _grid(n: int) -> tuple[int]:
    return (triton.cdiv(n, BLOCK),)


def swiglu_forward(gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """h = silu(gate) * up, no autograd; the reference where no kernel can run."""
    if not use_triton(gate):
        return reference.swiglu(gate, up)
    gate, up = gate.contiguous(), up.contiguous()
    h = torch.empty_like(gate)
    if gate.numel():
        _swiglu_forward_kernel[_grid(gate.numel())](gate, up, h, gate.numel(), BLOCK=BLOCK, num_warps=4)
    return h


def swiglu_backward(dh: torch.Tensor, gate: torch.Tensor, up: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(dg, du) into new buffers; dh, gate, up unchanged."""
    dh, gate, up = dh.contiguous(), gate.contiguous(), up.contiguous()
    dg, du = torch.empty_like(gate), torch.empty_like(up)
    if gate.numel():
        _swiglu_backward_kernel[_grid(gate.numel())](dh, gate, up, dh, dg, du, gate.numel(), BLOCK=BLOCK,
                                                     STORE_H=False, num_warps=4)
    return dg, du


def swiglu_backward_inplace(dh: torch.Tensor, gate: torch.Tensor, up: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Overwrite dh with h = silu(g) * u, gate with dg and up with du; returns (h, dg, du) (the same buffers).

    All three must be contiguous, of one shape, and owned by the caller (the LoRA MLP's saved activations).
    """
    if not (dh.is_contiguous() and gate.is_contiguous() and up.is_contiguous()):
        raise ValueError("swiglu_backward_inplace: dh, gate and up must be contiguous")
    if dh.shape != gate.shape or up.shape != gate.shape:
        raise ValueError(f"swiglu_backward_inplace: shapes differ: dh {tuple(dh.shape)}, gate {tuple(gate.shape)}, "
                         f"up {tuple(up.shape)}")
    if not use_triton(gate):
        g32, u32, dh32 = gate.float(), up.float(), dh.float()
        sig = torch.sigmoid(g32)
        silu = g32 * sig
        dh.copy_(silu.to(gate.dtype).float() * u32)
        gate.copy_(dh32 * u32 * sig * (1.0 + g32 * (1.0 - sig)))
        up.copy_(dh32 * silu)
        return dh, gate, up
    if gate.numel():
        _swiglu_backward_kernel[_grid(gate.numel())](dh, gate, up, dh, gate, up, gate.numel(), BLOCK=BLOCK,
                                                     STORE_H=True, num_warps=4)
    return dh, gate, up


class SwiGLUFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(gate, up)
        return swiglu_forward(gate, up)

    @staticmethod
    def backward(ctx, dh: torch.Tensor):
        gate, up = ctx.saved_tensors
        dg, du = swiglu_backward(dh, gate, up)
        return (dg if ctx.needs_input_grad[0] else None), (du if ctx.needs_input_grad[1] else None)


def swiglu(gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """silu(gate) * up; Triton where it can run."""
    if gate.shape != up.shape or gate.dtype != up.dtype:
        raise ValueError(f"swiglu: gate and up must share shape and dtype; got {tuple(gate.shape)} {gate.dtype} and "
                         f"{tuple(up.shape)} {up.dtype}")
    if not use_triton(gate):
        return reference.swiglu(gate, up)
    return SwiGLUFunction.apply(gate, up)
