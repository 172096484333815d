"""Each Triton kernel against its pure-PyTorch definition (arithmo/kernels/reference.py): the output and
EVERY input gradient, in fp32/bf16/fp16, on odd shapes and non-power-of-two hidden sizes.

On CPU the kernels run in Triton's interpreter (TRITON_INTERPRET=1, set by _kernels_env), so shapes are
small; on a CUDA machine the same tests run natively, plus the `gpu`-marked model-sized shapes.
"""

import pytest
import torch
from _kernels_env import DEVICE, DTYPES, ON_GPU, close, close_in_norm, randn, run_with_grads, single_threaded_torch

from arithmo.kernels import reference
from arithmo.kernels.cross_entropy import fused_linear_cross_entropy
from arithmo.kernels.rmsnorm import rms_norm
from arithmo.kernels.rope import rope
from arithmo.kernels.swiglu import swiglu, swiglu_backward_inplace

pytestmark = pytest.mark.usefixtures(single_threaded_torch.__name__)

gpu = pytest.mark.gpu
needs_cuda = pytest.mark.skipif(not ON_GPU, reason="model-sized shape: run natively on a CUDA machine")


def _check_all(kernel, ref, inputs, dtype, what, summed_grads=()):
    """Outputs and every input gradient; gradients listed in `summed_grads` sum over rows (close_in_norm)."""
    (outs, grads), (ref_outs, ref_grads) = run_with_grads(kernel, inputs), run_with_grads(ref, inputs)
    for i, (o, r) in enumerate(zip(outs, ref_outs)):
        assert o.dtype == r.dtype and o.shape == r.shape, f"{what} output {i}: {o.dtype}{tuple(o.shape)} vs " \
                                                          f"{r.dtype}{tuple(r.shape)}"
        close(o, r, dtype, f"{what} output {i}")
    for i, (g, r) in enumerate(zip(grads, ref_grads)):
        assert (g is None) == (r is None), f"{what}: gradient {i} present in only one of kernel/reference"
        if g is not None and i in summed_grads:
            close_in_norm(g, r, dtype, f"{what} grad of input {i}")
        elif g is not None:
            close(g, r, dtype, f"{what} grad of input {i}")


# ----------------------------------------------------------------------------------------- RMSNorm
RMS_SHAPES = [(5, 123, 123), (3, 64), (2, 7, 1000)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", RMS_SHAPES)
def test_rms_norm_matches_reference(shape, dtype):
    x = randn(*shape, dtype=dtype)
    weight = randn(shape[-1], dtype=dtype, seed=1) * 0.5 + 1.0
    weight = weight.detach().requires_grad_()
    _check_all(lambda x, w: rms_norm(x, w, 1e-6), lambda x, w: reference.rms_norm(x, w, 1e-6), [x, weight],
               dtype, f"rms_norm{shape}", summed_grads=(1,))


def test_rms_norm_fp32_weight_on_bf16_input_promotes_like_transformers():
    # prepare_model_for_kbit_training keeps norms in fp32 while activations are bf16: output is fp32
    x = randn(4, 96, dtype=torch.bfloat16)
    weight = randn(96, seed=3)
    _check_all(lambda x, w: rms_norm(x, w, 1e-5), lambda x, w: reference.rms_norm(x, w, 1e-5), [x, weight],
               torch.bfloat16, "rms_norm fp32 weight", summed_grads=(1,))


def test_rms_norm_frozen_weight_and_strided_input():
    base = randn(6, 2, 80, requires_grad=False)
    x = base[:, 1, :].detach().requires_grad_()  # rows 160 elements apart
    weight = randn(80, seed=2, requires_grad=False)
    (out,), (dx, dw) = run_with_grads(lambda x, w: rms_norm(x, w, 1e-6), [x, weight])
    (ref,), (ref_dx, _) = run_with_grads(lambda x, w: reference.rms_norm(x, w, 1e-6), [x, weight])
    assert dw is None
    close(out, ref, torch.float32, "rms_norm strided")
    close(dx, ref_dx, torch.float32, "rms_norm strided dx")


def test_rms_norm_rejects_mismatched_weight():
    with pytest.raises(ValueError, match="last dimension is 8 but weight has 7"):
        rms_norm(randn(2, 8), randn(7), 1e-6)


@gpu
@needs_cuda
@pytest.mark.parametrize("shape", [(4, 2048, 4096), (1, 1000, 3584)])
def test_rms_norm_model_sized(shape):
    x = randn(*shape, dtype=torch.bfloat16)
    weight = (randn(shape[-1], dtype=torch.bfloat16, seed=1) * 0.1 + 1).detach().requires_grad_()
    _check_all(lambda x, w: rms_norm(x, w, 1e-5), lambda x, w: reference.rms_norm(x, w, 1e-5), [x, weight],
               torch.bfloat16, f"rms_norm{shape}", summed_grads=(1,))


# ----------------------------------------------------------------------------------------- RoPE
def _rope_tables(batch, seq, dim, seed=5, dtype=torch.float32):
    """cos/sin as LlamaRotaryEmbedding builds them (cat(freqs, freqs)), with random positions."""
    gen = torch.Generator().manual_seed(seed)
    positions = torch.randint(0, 4096, (batch, seq), generator=gen).float()
    inv_freq = 1.0 / (10000 ** (torch.arange(0, dim, 2).float() / dim))
    freqs = positions[..., None] * inv_freq
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos().to(DEVICE, dtype), emb.sin().to(DEVICE, dtype)


ROPE_CASES = [  # (batch, q heads, k heads, seq, head dim, table batch)
    (2, 5, 3, 7, 12, 2),
    (3, 4, 2, 9, 6, 1),  # one table row set broadcast over the batch, as position_ids (1, T) gives
    (1, 6, 6, 5, 34, 1),  # head_dim / 2 = 17: not a power of two
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ROPE_CASES)
def test_rope_matches_reference_including_cos_sin_grads(case, dtype):
    batch, hq, hk, seq, dim, table_batch = case
    # q and k as the attention builds them: a (B, T, H, D) projection viewed as (B, H, T, D)
    q = randn(batch, seq, hq, dim, dtype=dtype).transpose(1, 2).detach().requires_grad_()
    k = randn(batch, seq, hk, dim, dtype=dtype, seed=1).transpose(1, 2).detach().requires_grad_()
    cos, sin = _rope_tables(table_batch, seq, dim, dtype=dtype)
    _check_all(rope, reference.rope, [q, k, cos.requires_grad_(), sin.requires_grad_()], dtype,
               f"rope{case}", summed_grads=(2, 3))


def test_rope_without_table_grads_and_shape_errors():
    q, k = randn(1, 2, 4, 8), randn(1, 1, 4, 8, seed=1)
    cos, sin = _rope_tables(1, 4, 8)
    (qo, ko), (dq, dk, dcos, dsin) = run_with_grads(rope, [q, k, cos, sin])
    (rq, rk), (rdq, rdk, _, _) = run_with_grads(reference.rope, [q, k, cos, sin])
    assert dcos is None and dsin is None
    for a, b, what in [(qo, rq, "q"), (ko, rk, "k"), (dq, rdq, "dq"), (dk, rdk, "dk")]:
        close(a, b, torch.float32, f"rope {what}")
    with pytest.raises(ValueError, match="head dimension must be even"):
        rope(randn(1, 2, 4, 7), randn(1, 1, 4, 7), randn(1, 4, 7), randn(1, 4, 7))
    with pytest.raises(ValueError, match=r"expected q \(B, Hq, T, D\)"):
        rope(randn(2, 4, 8), k, cos, sin)


@gpu
@needs_cuda
def test_rope_model_sized():
    q = randn(2, 2048, 32, 128, dtype=torch.bfloat16).transpose(1, 2).detach().requires_grad_()
    k = randn(2, 2048, 8, 128, dtype=torch.bfloat16, seed=1).transpose(1, 2).detach().requires_grad_()
    cos, sin = _rope_tables(1, 2048, 128, dtype=torch.bfloat16)
    _check_all(rope, reference.rope, [q, k, cos, sin], torch.bfloat16, "rope model-sized")


# ----------------------------------------------------------------------------------------- SwiGLU
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(5, 123, 123), (3, 1000), (7,)])
def test_swiglu_matches_reference(shape, dtype):
    gate, up = randn(*shape, dtype=dtype, scale=3.0), randn(*shape, dtype=dtype, seed=1)
    _check_all(swiglu, reference.swiglu, [gate, up], dtype, f"swiglu{shape}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_swiglu_backward_inplace_overwrites_with_h_dg_du(dtype):
    gate, up, dh = (randn(4, 77, dtype=dtype, scale=3.0, requires_grad=False, seed=s) for s in (0, 1, 2))
    (h,), (dg, du) = run_with_grads(reference.swiglu, [gate.requires_grad_(), up.requires_grad_()], seed=9)
    gen = torch.Generator().manual_seed(9)
    dh = torch.randn(gate.shape, generator=gen).to(DEVICE, dtype)  # the cotangent run_with_grads used
    buffers = [dh.clone(), gate.detach().clone(), up.detach().clone()]
    out = swiglu_backward_inplace(*buffers)
    assert all(o.data_ptr() == b.data_ptr() for o, b in zip(out, buffers)), "results must reuse the buffers"
    for got, want, what in zip(out, (h, dg, du), ("h", "dg", "du")):
        close(got, want, dtype, f"swiglu_backward_inplace {what}")


def test_swiglu_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match="share shape and dtype"):
        swiglu(randn(3, 4), randn(3, 5))


@gpu
@needs_cuda
def test_swiglu_model_sized():
    gate, up = randn(8192, 14336, dtype=torch.bfloat16, scale=2.0), randn(8192, 14336, dtype=torch.bfloat16, seed=1)
    _check_all(swiglu, reference.swiglu, [gate, up], torch.bfloat16, "swiglu model-sized")


# ----------------------------------------------------------------------------------------- fused linear CE
def _targets(shape, vocab, ignored_fraction, seed=3):
    gen = torch.Generator().manual_seed(seed)
    targets = torch.randint(0, vocab, shape, generator=gen)
    targets[torch.rand(shape, generator=gen) < ignored_fraction] = reference.IGNORE_INDEX
    return targets.to(DEVICE)


CE_CASES = [  # (hidden shape, vocab, chunk_rows, bias)
    ((3, 37, 48), 301, 17, True),  # chunks that do not divide the kept rows; a bias
    ((64, 40), 1000, None, False),  # default chunking; vocabulary not a power of two
    ((5, 9, 24), 5000, 8, False),  # vocabulary larger than one 4096 block
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CE_CASES)
def test_fused_linear_cross_entropy_matches_reference(case, dtype):
    shape, vocab, chunk_rows, with_bias = case
    hidden = randn(*shape, dtype=dtype)
    weight = randn(vocab, shape[-1], dtype=dtype, scale=0.2, seed=1)
    bias = randn(vocab, dtype=dtype, seed=2) if with_bias else None
    targets = _targets(shape[:-1], vocab, ignored_fraction=0.3)
    inputs = [hidden, weight] + ([bias] if with_bias else [])

    def kernel(h, w, b=None):
        return fused_linear_cross_entropy(h, w, targets, bias=b, chunk_rows=chunk_rows)

    def ref(h, w, b=None):
        return reference.fused_linear_cross_entropy(h.reshape(-1, h.shape[-1]), w, targets.reshape(-1), b)

    _check_all(kernel, ref, inputs, dtype, f"fused CE{case}", summed_grads=(1, 2))


def test_fused_linear_cross_entropy_num_items_and_frozen_weight():
    hidden, weight = randn(2, 11, 16), randn(50, 16, scale=0.3, seed=1, requires_grad=False)
    targets = _targets((2, 11), 50, 0.5)
    for n_items in (7, torch.tensor(13, device=DEVICE)):
        (loss,), (dh, dw) = run_with_grads(
            lambda h, w: fused_linear_cross_entropy(h, w, targets, num_items_in_batch=n_items), [hidden, weight])
        (ref,), (rdh, _) = run_with_grads(
            lambda h, w: reference.fused_linear_cross_entropy(h.reshape(-1, 16), w, targets.reshape(-1),
                                                              num_items_in_batch=n_items), [hidden, weight])
        assert dw is None
        close(loss, ref, torch.float32, f"loss / {n_items}")
        close(dh, rdh, torch.float32, f"dhidden / {n_items}")


def test_fused_linear_cross_entropy_all_ignored_is_nan_like_torch_and_bad_targets_raise():
    hidden, weight = randn(4, 8), randn(10, 8, seed=1)
    ignored = torch.full((4,), reference.IGNORE_INDEX, device=DEVICE)
    assert torch.isnan(fused_linear_cross_entropy(hidden, weight, ignored))
    assert torch.isnan(reference.fused_linear_cross_entropy(hidden, weight, ignored))
    with pytest.raises(ValueError, match=r"targets must lie in \[0, 10\).*from 0 to 12"):
        fused_linear_cross_entropy(hidden, weight, torch.tensor([0, 3, 12, -100], device=DEVICE))
    with pytest.raises(ValueError, match="must agree"):
        fused_linear_cross_entropy(hidden, weight, torch.zeros(5, dtype=torch.long, device=DEVICE))


@gpu
@needs_cuda
@pytest.mark.parametrize("vocab", [32000, 152064])
def test_fused_linear_cross_entropy_model_sized(vocab):
    hidden = randn(4096, 1024, dtype=torch.bfloat16)
    weight = randn(vocab, 1024, dtype=torch.bfloat16, scale=0.05, seed=1)
    targets = _targets((4096,), vocab, 0.3)
    torch.cuda.reset_peak_memory_stats()
    start = torch.cuda.memory_allocated()
    (loss,), (dh, dw) = run_with_grads(lambda h, w: fused_linear_cross_entropy(h, w, targets), [hidden, weight])
    peak = torch.cuda.max_memory_allocated() - start
    (ref,), (rdh, rdw) = run_with_grads(lambda h, w: reference.fused_linear_cross_entropy(h, w, targets),
                                        [hidden, weight])
    close(loss, ref, torch.bfloat16, "loss")
    close(dh, rdh, torch.bfloat16, "dhidden")
    close_in_norm(dw, rdw, torch.bfloat16, "dweight")
    full_logits_fp32 = 4096 * vocab * 4
    assert peak < full_logits_fp32, f"fused CE peaked at {peak / 2**20:.0f} MiB, above fp32 logits' " \
                                    f"{full_logits_fp32 / 2**20:.0f} MiB"
