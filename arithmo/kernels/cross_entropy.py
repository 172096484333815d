"""Fused linear + cross-entropy: the loss of `hidden @ W.T` without ever holding the full logits.

Per row with logits z (length V) and target y, in fp32:
    lse  = log(sum_j exp(z_j))        (online max/sum over blocks of the vocabulary: one read)
    loss = lse - z_y
    dz   = softmax(z) - onehot(y)     (a second read; written over z in place)
Rows whose target is `ignore_index` (-100: prompt tokens, padding) are dropped before any matmul, so a
prompt-heavy batch costs only its completion tokens. The kept rows go through in chunks of
`chunk_rows` (default: as many as fit `chunk_bytes` of logits, 256 MiB), and the gradients are
computed during the forward, while each chunk's logits exist:
    dhidden[rows] = dz @ W              dW += dz^T @ hidden[rows]         db += sum_rows dz
so memory is one chunk of logits plus dhidden (the size of hidden) instead of N x V logits in fp32
(a 150K vocabulary at 8K tokens: 4.9 GB). The loss is sum(loss) / D with D = the number of kept rows
(mean) or `num_items_in_batch`; backward scales the stored gradients by grad_output / D.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from . import reference
from .runtime import compute_dtype, next_power_of_2, use_triton

DEFAULT_CHUNK_BYTES = 256 << 20


@triton.jit
def _cross_entropy_rows_kernel(LOGITS, stride_row, TARGETS, LOSS, n_rows, n_cols, BLOCK_ROWS: tl.constexpr,
                               BLOCK: tl.constexpr, WRITE_GRAD: tl.constexpr):
    rows = tl.program_id(0).to(tl.int64) * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)
    row_mask = rows < n_rows
    row_ptr = LOGITS + rows * stride_row
    target = tl.load(TARGETS + rows, mask=row_mask, other=0)
    target_logit = tl.load(row_ptr + target, mask=row_mask, other=0.0).to(tl.float32)
    m = tl.full([BLOCK_ROWS], float("-inf"), tl.float32)
    d = tl.zeros([BLOCK_ROWS], tl.float32)
    for start in range(0, n_cols, BLOCK):
        cols = start + tl.arange(0, BLOCK)
        mask = row_mask[:, None] & (cols < n_cols)[None, :]
        z = tl.load(row_ptr[:, None] + cols[None, :], mask=mask, other=float("-inf")).to(tl.float32)
        m_new = tl.maximum(m, tl.max(z, axis=1))
        m_new = tl.where(row_mask, m_new, 0.0)  # rows past the end: keep exp() finite
        d = d * tl.exp(m - m_new) + tl.sum(tl.exp(z - m_new[:, None]), axis=1)
        m = m_new
    lse = m + tl.log(tl.where(row_mask, d, 1.0))
    tl.store(LOSS + rows, lse - target_logit, mask=row_mask)
    if WRITE_GRAD:
        for start in range(0, n_cols, BLOCK):
            cols = start + tl.arange(0, BLOCK)
            mask = row_mask[:, None] & (cols < n_cols)[None, :]
            ptrs = row_ptr[:, None] + cols[None, :]
            z = tl.load(ptrs, mask=mask, other=0.0).to(tl.float32)
            grad = tl.exp(z - lse[:, None])
            grad = tl.where(cols[None, :] == target[:, None], grad - 1.0, grad)
            tl.store(ptrs, grad.to(LOGITS.dtype.element_ty), mask=mask)


def cross_entropy_rows(logits: torch.Tensor, targets: torch.Tensor, write_grad: bool) -> torch.Tensor:
    """Per-row loss (fp32) of a (rows, V) logits block; with write_grad, softmax - onehot replaces logits."""
    if logits.stride(-1) != 1:
        raise ValueError("cross_entropy_rows: logits must be contiguous along the vocabulary")
    n_rows, n_cols = logits.shape
    losses = torch.empty(n_rows, dtype=torch.float32, device=logits.device)
    block = min(next_power_of_2(n_cols), 4096)
    block_rows = max(1, min(16, 4096 // next_power_of_2(n_cols)))  # several rows only for small vocabularies
    if n_rows:
        _cross_entropy_rows_kernel[(triton.cdiv(n_rows, block_rows),)](
            logits, logits.stride(0), targets, losses, n_rows, n_cols, BLOCK_ROWS=block_rows, BLOCK=block,
            WRITE_GRAD=write_grad, num_warps=8 if block * block_rows >= 2048 else 4)
    return losses


class FusedLinearCrossEntropyFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, denominator, ignore_index: int, chunk_rows: int):
        need_dh, need_dw, need_db = ctx.needs_input_grad[:3]
        vocab = weight.shape[0]
        kept = (targets != ignore_index).nonzero().squeeze(1)
        kept_targets = targets.index_select(0, kept)
        if kept.numel():
            low, high = torch.aminmax(kept_targets)
            if int(low) < 0 or int(high) >= vocab:
                raise ValueError(f"fused_linear_cross_entropy: targets must lie in [0, {vocab}) or equal "
                                 f"ignore_index={ignore_index}; found values from {int(low)} to {int(high)}")
        grad_hidden = torch.zeros_like(hidden) if need_dh else None
        grad_weight = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device) if need_dw else None
        grad_bias = torch.zeros(vocab, dtype=torch.float32, device=weight.device) if need_db else None
        loss_sum = torch.zeros((), dtype=torch.float32, device=hidden.device)
        for start in range(0, kept.numel(), chunk_rows):
            rows = kept[start:start + chunk_rows]
            hidden_rows = hidden.index_select(0, rows)
            logits = hidden_rows @ weight.t()
            if bias is not None:
                logits += bias
            loss_sum += cross_entropy_rows(logits, kept_targets[start:start + chunk_rows],
                                           write_grad=need_dh or need_dw or need_db).sum()
            if need_dh:
                grad_hidden.index_copy_(0, rows, logits @ weight)
            if need_dw:
                grad_weight += logits.t() @ hidden_rows
            if need_db:
                grad_bias += logits.float().sum(0)
        ctx.grads = (grad_hidden, grad_weight, grad_bias)
        ctx.dtypes = (hidden.dtype, weight.dtype, None if bias is None else bias.dtype)
        ctx.save_for_backward(denominator)
        return loss_sum / denominator

    @staticmethod
    def backward(ctx, grad_loss):
        (denominator,) = ctx.saved_tensors
        scale = grad_loss / denominator
        grads = [None if g is None else (g * scale).to(dtype) for g, dtype in zip(ctx.grads, ctx.dtypes)]
        ctx.grads = None
        return grads[0], grads[1], grads[2], None, None, None, None


def fused_linear_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                               bias: torch.Tensor | None = None, ignore_index: int = reference.IGNORE_INDEX,
                               num_items_in_batch: torch.Tensor | int | None = None,
                               chunk_rows: int | None = None, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> torch.Tensor:
    """Cross-entropy of `hidden @ weight.T (+ bias)` against `targets`; hidden (..., H), targets (...).

    Semantics of transformers' ForCausalLMLoss on already-shifted targets (mean over non-ignored rows,
    or sum / num_items_in_batch). The matmul runs in autocast's dtype when autocast is on, else in
    hidden's dtype, as `lm_head` would.
    """
    if hidden.shape[:-1] != targets.shape:
        raise ValueError(f"fused_linear_cross_entropy: hidden {tuple(hidden.shape)} and targets "
                         f"{tuple(targets.shape)} must agree on all but hidden's last dimension")
    if weight.dim() != 2 or weight.shape[1] != hidden.shape[-1]:
        raise ValueError(f"fused_linear_cross_entropy: weight must be (vocab, {hidden.shape[-1]}); "
                         f"got {tuple(weight.shape)}")
    dtype = compute_dtype(hidden)
    hidden = hidden.reshape(-1, hidden.shape[-1]).to(dtype)
    targets = targets.reshape(-1)
    weight = weight.to(dtype)
    bias = None if bias is None else bias.to(dtype)
    if not use_triton(hidden):
        return reference.fused_linear_cross_entropy(hidden, weight, targets, bias, ignore_index, num_items_in_batch)
    if num_items_in_batch is None:
        denominator = (targets != ignore_index).sum().to(torch.float32)
    else:
        denominator = torch.as_tensor(num_items_in_batch, device=hidden.device).to(torch.float32)
    if chunk_rows is None:
        chunk_rows = max(1, chunk_bytes // (weight.shape[0] * weight.element_size()))
    return FusedLinearCrossEntropyFunction.apply(hidden, weight, bias, targets.long(), denominator, ignore_index,
                                                 chunk_rows)
