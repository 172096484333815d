"""Rotary position embedding (RoPE) for q and k in one Triton kernel per direction.

With x = [x1, x2] split in halves along the head dimension D, and cos = [c1, c2], sin = [s1, s2] the
(B, T, D) tables the rotary module produces (transformers: cat(freqs, freqs), so c1 = c2, s1 = s2):
    forward:  o1 = x1*c1 - x2*s1          o2 = x2*c2 + x1*s2        (= x*cos + rotate_half(x)*sin)
    backward: dx1 = d1*c1 + d2*s2         dx2 = d2*c2 - d1*s1       (the transposed rotation)
so the backward is the forward kernel run with (s1, s2) replaced by (-s2, -s1). One program rotates a
tile of (token, head) rows (64 rows at head_dim 128), reading each row's cos/sin from the table; q and k
are two launches. q and k may be any strided view (the attention's transpose(1, 2) of a (B, T, H, D)
projection); outputs are written in (B, T, H, D) memory and returned as the same (B, H, T, D) view.
The tables come from the rotary module under no_grad; if they do require grad, dcos/dsin are computed
with torch from the reference formula (sum over heads of d_out * x and d_out * rotate_half(x)).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from . import reference
from .runtime import next_power_of_2, use_triton


@triton.jit
def _rope_kernel(X, OUT, COS, SIN, n_rows, n_heads, seq_len, half, sx_b, sx_h, sx_t, so_b, so_h, so_t, sc_b, sc_t,
                 BLOCK_ROWS: tl.constexpr, BLOCK_HALF: tl.constexpr, BACKWARD: tl.constexpr):
    # row = (b * seq_len + t) * n_heads + h: one head vector of one token
    rows = tl.program_id(0).to(tl.int64) * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)
    row_mask = rows < n_rows
    head = rows % n_heads
    token = rows // n_heads
    t = token % seq_len
    b = token // seq_len
    dims = tl.arange(0, BLOCK_HALF)
    mask = row_mask[:, None] & (dims < half)[None, :]
    table = (b * sc_b + t * sc_t)[:, None] + dims[None, :]
    c1 = tl.load(COS + table, mask=mask, other=0.0).to(tl.float32)
    c2 = tl.load(COS + table + half, mask=mask, other=0.0).to(tl.float32)
    s1 = tl.load(SIN + table, mask=mask, other=0.0).to(tl.float32)
    s2 = tl.load(SIN + table + half, mask=mask, other=0.0).to(tl.float32)
    if BACKWARD:
        s1, s2 = -s2, -s1
    x_ptr = X + (b * sx_b + head * sx_h + t * sx_t)[:, None] + dims[None, :]
    o_ptr = OUT + (b * so_b + head * so_h + t * so_t)[:, None] + dims[None, :]
    x1 = tl.load(x_ptr, mask=mask, other=0.0).to(tl.float32)
    x2 = tl.load(x_ptr + half, mask=mask, other=0.0).to(tl.float32)
    tl.store(o_ptr, (x1 * c1 - x2 * s1).to(OUT.dtype.element_ty), mask=mask)
    tl.store(o_ptr + half, (x2 * c2 + x1 * s2).to(OUT.dtype.element_ty), mask=mask)


def _table_strides(table: torch.Tensor, batch: int) -> tuple[int, int]:
    if table.stride(-1) != 1:
        raise ValueError("rope: cos/sin must be contiguous along the head dimension")
    batch_stride = 0 if table.shape[0] == 1 and batch != 1 else table.stride(0)
    return batch_stride, table.stride(1)


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, sc_b: int, sc_t: int,
            backward: bool) -> torch.Tensor:
    batch, n_heads, seq_len, head_dim = x.shape
    if x.stride(-1) != 1:
        x = x.contiguous()
    out = torch.empty((batch, seq_len, n_heads, head_dim), dtype=x.dtype, device=x.device).transpose(1, 2)
    n_rows = batch * seq_len * n_heads
    half = head_dim // 2
    block_half = next_power_of_2(half)
    block_rows = max(1, min(256, 4096 // block_half))  # ~4K elements of each half per program
    if n_rows:
        _rope_kernel[(triton.cdiv(n_rows, block_rows),)](
            x, out, cos, sin, n_rows, n_heads, seq_len, half, x.stride(0), x.stride(1), x.stride(2),
            out.stride(0), out.stride(1), out.stride(2), sc_b, sc_t,
            BLOCK_ROWS=block_rows, BLOCK_HALF=block_half, BACKWARD=backward, num_warps=4)
    return out


def rope_launch(q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                backward: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate q (B, Hq, T, D) and k (B, Hk, T, D) by the (B or 1, T, D) tables; new (B, H, T, D) views."""
    if cos.stride() != sin.stride():
        cos, sin = cos.contiguous(), sin.contiguous()
    sc_b, sc_t = _table_strides(cos, q.shape[0])
    return _rotate(q, cos, sin, sc_b, sc_t, backward), _rotate(k, cos, sin, sc_b, sc_t, backward)


class RoPEFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, cos, sin):
        q_out, k_out = rope_launch(q, k, cos, sin, backward=False)
        table_grad = ctx.needs_input_grad[2] or ctx.needs_input_grad[3]
        ctx.save_for_backward(cos, sin, *((q, k) if table_grad else ()))
        return q_out, k_out

    @staticmethod
    def backward(ctx, dq_out, dk_out):
        cos, sin = ctx.saved_tensors[:2]
        dq, dk = rope_launch(dq_out, dk_out, cos, sin, backward=True)
        dcos = dsin = None
        if ctx.needs_input_grad[2] or ctx.needs_input_grad[3]:
            q, k = ctx.saved_tensors[2:]
            with torch.enable_grad():
                cos_ = cos.detach().requires_grad_(True)
                sin_ = sin.detach().requires_grad_(True)
                q_ref, k_ref = reference.rope(q.detach(), k.detach(), cos_, sin_)
                dcos, dsin = torch.autograd.grad((q_ref, k_ref), (cos_, sin_), (dq_out, dk_out))
        return dq, dk, dcos, dsin


def rope(q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """transformers' apply_rotary_pos_emb(q, k, cos, sin) (unsqueeze_dim=1); Triton where it can run."""
    if q.dim() != 4 or k.dim() != 4 or cos.dim() != 3 or sin.shape != cos.shape:
        raise ValueError(f"rope: expected q (B, Hq, T, D), k (B, Hk, T, D), cos/sin (B, T, D); got q "
                         f"{tuple(q.shape)}, k {tuple(k.shape)}, cos {tuple(cos.shape)}, sin {tuple(sin.shape)}")
    if q.shape[-1] % 2 or q.shape[-1] != cos.shape[-1] or k.shape[-1] != q.shape[-1]:
        raise ValueError(f"rope: head dimension must be even and equal in q, k, cos; got {q.shape[-1]}, "
                         f"{k.shape[-1]}, {cos.shape[-1]}")
    if not use_triton(q) or cos.shape[0] not in (1, q.shape[0]) or cos.shape[1] != q.shape[2]:
        return reference.rope(q, k, cos, sin)
    return RoPEFunction.apply(q, k, cos, sin)
