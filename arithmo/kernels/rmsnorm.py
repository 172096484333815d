"""RMSNorm as one Triton kernel per direction.

Forward, per row x of length H (statistics in fp32, as transformers' LlamaRMSNorm):
    rstd = 1 / sqrt(mean(x^2) + eps)
    xhat = round_to(x.dtype, x * rstd)              # LlamaRMSNorm rounds before scaling
    y    = w * xhat                                 # in the promoted dtype of (w, x)
Backward, with g = dy * w (fp32) and xhat = x * rstd:
    dx = rstd * (g - xhat * mean(g * xhat))
    dw = sum over rows of dy * xhat                 # only when w requires grad
One program normalises a tile of rows (1 row of a 4096-wide model, 64 rows of a 64-wide one). The
forward saves x and the per-row rstd (4 bytes a row). The backward runs a fixed number of programs
(`runtime.persistent_programs`) that walk their rows tile by tile; dw is summed per program into an
fp32 partial row, then over programs with torch.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from . import reference
from .runtime import next_power_of_2, num_warps_for, persistent_programs, use_triton


@triton.jit
def _rms_norm_forward_kernel(X, W, Y, RSTD, stride_x, stride_y, n_rows, n_cols, eps,
                             BLOCK_ROWS: tl.constexpr, BLOCK: tl.constexpr):
    rows = tl.program_id(0).to(tl.int64) * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)
    cols = tl.arange(0, BLOCK)
    row_mask = rows < n_rows
    mask = row_mask[:, None] & (cols[None, :] < n_cols)
    x = tl.load(X + rows[:, None] * stride_x + cols[None, :], mask=mask, other=0.0).to(tl.float32)
    rstd = 1.0 / tl.sqrt(tl.sum(x * x, axis=1) / n_cols + eps)
    tl.store(RSTD + rows, rstd, mask=row_mask)
    xhat = (x * rstd[:, None]).to(X.dtype.element_ty).to(tl.float32)
    w = tl.load(W + cols, mask=cols < n_cols, other=0.0).to(tl.float32)
    tl.store(Y + rows[:, None] * stride_y + cols[None, :], (w[None, :] * xhat).to(Y.dtype.element_ty), mask=mask)


@triton.jit
def _rms_norm_backward_kernel(DY, X, W, RSTD, DX, DW_PARTIAL, stride_dy, stride_x, stride_dx, n_rows, n_cols,
                              rows_per_program, BLOCK_ROWS: tl.constexpr, BLOCK: tl.constexpr,
                              HAS_DW: tl.constexpr):
    pid = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    col_mask = cols < n_cols
    w = tl.load(W + cols, mask=col_mask, other=0.0).to(tl.float32)
    dw = tl.zeros([BLOCK], dtype=tl.float32)
    row_start = pid * rows_per_program
    row_end = tl.minimum(row_start + rows_per_program, n_rows)
    for tile in range(row_start, row_end, BLOCK_ROWS):
        rows = (tile + tl.arange(0, BLOCK_ROWS)).to(tl.int64)
        row_mask = rows < row_end
        mask = row_mask[:, None] & col_mask[None, :]
        dy = tl.load(DY + rows[:, None] * stride_dy + cols[None, :], mask=mask, other=0.0).to(tl.float32)
        x = tl.load(X + rows[:, None] * stride_x + cols[None, :], mask=mask, other=0.0).to(tl.float32)
        rstd = tl.load(RSTD + rows, mask=row_mask, other=0.0)
        xhat = x * rstd[:, None]
        g = dy * w[None, :]
        dx = rstd[:, None] * (g - xhat * (tl.sum(g * xhat, axis=1) / n_cols)[:, None])
        tl.store(DX + rows[:, None] * stride_dx + cols[None, :], dx.to(DX.dtype.element_ty), mask=mask)
        if HAS_DW:
            dw += tl.sum(dy * xhat.to(X.dtype.element_ty).to(tl.float32), axis=0)
    if HAS_DW:
        tl.store(DW_PARTIAL + pid * n_cols + cols, dw, mask=col_mask)


def _tile(n_cols: int) -> tuple[int, int]:
    """(BLOCK, BLOCK_ROWS): a row's power-of-two block and how many rows one program takes (~4K elements)."""
    block = next_power_of_2(n_cols)
    return block, max(1, min(64, 4096 // block))


def _as_rows(t: torch.Tensor) -> torch.Tensor:
    rows = t.reshape(-1, t.shape[-1])
    return rows if rows.stride(-1) == 1 else rows.contiguous()


def rms_norm_forward(x: torch.Tensor, weight: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Launch the forward kernel: returns (y with x's shape, rstd per row in fp32)."""
    x_rows = _as_rows(x)
    n_rows, n_cols = x_rows.shape
    y = torch.empty((n_rows, n_cols), dtype=torch.result_type(weight, x), device=x.device)
    rstd = torch.empty(n_rows, dtype=torch.float32, device=x.device)
    block, block_rows = _tile(n_cols)
    if n_rows:
        _rms_norm_forward_kernel[(triton.cdiv(n_rows, block_rows),)](
            x_rows, weight, y, rstd, x_rows.stride(0), y.stride(0), n_rows, n_cols, eps,
            BLOCK_ROWS=block_rows, BLOCK=block, num_warps=num_warps_for(block * block_rows))
    return y.view(x.shape), rstd


def rms_norm_backward(dy: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, rstd: torch.Tensor,
                      need_dw: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Launch the backward kernel: returns (dx in x's dtype, dw in w's dtype or None)."""
    x_rows = _as_rows(x)
    dy_rows = _as_rows(dy)
    n_rows, n_cols = x_rows.shape
    dx = torch.empty_like(x_rows)
    block, block_rows = _tile(n_cols)
    programs = persistent_programs(x.device, triton.cdiv(n_rows, block_rows))
    rows_per_program = triton.cdiv(triton.cdiv(n_rows, programs), block_rows) * block_rows
    dw_partial = torch.empty((programs, n_cols) if need_dw else (1,), dtype=torch.float32, device=x.device)
    if n_rows:
        _rms_norm_backward_kernel[(programs,)](
            dy_rows, x_rows, weight, rstd, dx, dw_partial, dy_rows.stride(0), x_rows.stride(0), dx.stride(0),
            n_rows, n_cols, rows_per_program, BLOCK_ROWS=block_rows, BLOCK=block, HAS_DW=need_dw,
            num_warps=num_warps_for(block * block_rows))
    dw = None
    if need_dw:
        dw = (dw_partial.sum(0) if n_rows else torch.zeros(n_cols, device=x.device)).to(weight.dtype)
    return dx.view(x.shape), dw


class RMSNormFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
        y, rstd = rms_norm_forward(x, weight, eps)
        ctx.save_for_backward(x, weight, rstd)
        return y

    @staticmethod
    def backward(ctx, dy: torch.Tensor):
        x, weight, rstd = ctx.saved_tensors
        dx, dw = rms_norm_backward(dy, x, weight, rstd, need_dw=ctx.needs_input_grad[1])
        return (dx if ctx.needs_input_grad[0] else None), dw, None


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """RMSNorm over the last dimension of x, LlamaRMSNorm's semantics; Triton where it can run."""
    if x.shape[-1] != weight.shape[0]:
        raise ValueError(f"rms_norm: x's last dimension is {x.shape[-1]} but weight has {weight.shape[0]} entries")
    if not use_triton(x):
        return reference.rms_norm(x, weight, eps)
    return RMSNormFunction.apply(x, weight, eps)
