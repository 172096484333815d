"""Pure-PyTorch definitions of every kernel: the oracle the tests compare against, and the fallback each
functional op runs when no Triton kernel can (a CPU tensor without `TRITON_INTERPRET=1`).

Each function is written the way transformers 5.17 computes the same thing (modeling_llama.py,
loss/loss_utils.py, peft 0.21's lora.Linear), dtype casts included, so "matches the reference" means
"matches what the unpatched model computes".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100  # transformers' and torch's default ignore_index for cross-entropy labels


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """LlamaRMSNorm: normalise in fp32, round back to x's dtype, then scale (result dtype follows promotion)."""
    input_dtype = x.dtype
    x32 = x.to(torch.float32)
    variance = x32.pow(2).mean(-1, keepdim=True)
    x32 = x32 * torch.rsqrt(variance + eps)
    return weight * x32.to(input_dtype)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def rope(q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """apply_rotary_pos_emb with unsqueeze_dim=1: q (B, Hq, T, D), k (B, Hk, T, D), cos/sin (B, T, D)."""
    cos = cos.unsqueeze(1)
    sin = sin.unsqueeze(1)
    return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin


def swiglu(gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """LlamaMLP's act_fn(gate_proj(x)) * up_proj(x) with act_fn = SiLU."""
    return F.silu(gate) * up


def fused_linear_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                               bias: torch.Tensor | None = None, ignore_index: int = IGNORE_INDEX,
                               num_items_in_batch: torch.Tensor | int | None = None) -> torch.Tensor:
    """Cross-entropy of `hidden @ weight.T (+ bias)` against `targets`, rows whose target is ignored skipped.

    hidden (N, H), weight (V, H), targets (N,). As transformers' ForCausalLMLoss: logits in the matmul's
    dtype, upcast to fp32 for the loss; the mean runs over non-ignored rows, or the sum is divided by
    `num_items_in_batch` when given (gradient accumulation).
    """
    logits = F.linear(hidden, weight, bias).float()
    if num_items_in_batch is None:
        return F.cross_entropy(logits, targets, ignore_index=ignore_index, reduction="mean")
    loss = F.cross_entropy(logits, targets, ignore_index=ignore_index, reduction="sum")
    if torch.is_tensor(num_items_in_batch):
        num_items_in_batch = num_items_in_batch.to(loss.device)
    return loss / num_items_in_batch


def lora_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                lora_a: torch.Tensor | None, lora_b: torch.Tensor | None, scale: float) -> torch.Tensor:
    """peft's LoRA Linear: x W^T + b + scale * (x A^T) B^T; weight (out, in), A (r, in), B (out, r)."""
    out = F.linear(x, weight, bias)
    if lora_a is None:
        return out
    return out + F.linear(F.linear(x, lora_a.to(x.dtype)), lora_b.to(x.dtype)) * scale


def lora_mlp(x: torch.Tensor, gate: tuple, up: tuple, down: tuple) -> torch.Tensor:
    """LlamaMLP with LoRA on each projection: down(silu(gate(x)) * up(x)).

    gate, up, down: (weight, bias, lora_a, lora_b, scale) tuples as `lora_linear` takes them.
    """
    return lora_linear(swiglu(lora_linear(x, *gate), lora_linear(x, *up)), *down)
