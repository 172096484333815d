"""The LoRA-aware fused functions (lora_linear.py, lora_mlp.py) against reference.py and against peft's
own forward on real peft LoRA layers, over dense and bitsandbytes 4-bit (NF4) base weights."""

import pytest
import torch
from _kernels_env import DEVICE, DTYPES, close, close_in_norm, randn, run_with_grads, single_threaded_torch
from torch import nn

from arithmo.kernels import reference
from arithmo.kernels.lora_linear import LoraProjection, lora_projections, projection_of
from arithmo.kernels.lora_mlp import lora_mlp

pytestmark = pytest.mark.usefixtures(single_threaded_torch.__name__)

RANK = 4


def _frozen_linear(n_in, n_out, dtype, seed, bias=False):
    layer = nn.Linear(n_in, n_out, bias=bias)
    with torch.no_grad():
        layer.weight.copy_(randn(n_out, n_in, scale=n_in ** -0.5, seed=seed, requires_grad=False))
        if bias:
            layer.bias.copy_(randn(n_out, seed=seed + 100, requires_grad=False))
    return layer.to(device=randn(1).device, dtype=dtype).requires_grad_(False)


def _lora_pair(n_in, n_out, seed):
    """fp32 LoRA factors as peft keeps them, B nonzero so the LoRA branch matters."""
    return (randn(RANK, n_in, scale=0.3, seed=seed), randn(n_out, RANK, scale=0.3, seed=seed + 1))


def _matmul_close(actual, expected, dtype, what):
    """Every element is a dot product: in fp32 elementwise; in bf16/fp16 in relative L2 norm, because
    torch rounds the base and LoRA branches separately before adding while the fused addmm rounds
    once, so elements that cancel to near zero differ by a rounding of the terms, not of the result."""
    if dtype == torch.float32:
        close(actual, expected, dtype, what)
    else:
        close_in_norm(actual, expected, dtype, what)


def _as_ref(layer: nn.Linear, a, b, scale):
    return layer.weight, layer.bias, a, b, scale


@pytest.mark.parametrize("dtype", DTYPES)
def test_lora_projections_match_reference_q_k_v_with_bias(dtype):
    n_in, outs = 40, (48, 16, 16)  # q, k, v of a GQA attention; Qwen2 has q/k/v biases
    layers = [_frozen_linear(n_in, n, dtype, seed=10 * i, bias=True) for i, n in enumerate(outs)]
    pairs = [_lora_pair(n_in, n, seed=50 + 10 * i) for i, n in enumerate(outs)]
    scales = (2.0, 0.5, 1.0)
    x = randn(2, 9, n_in, dtype=dtype, seed=3)

    def fused(x, *ab):
        projections = [LoraProjection(layer, layer.bias, ab[2 * i], ab[2 * i + 1], scales[i])
                       for i, layer in enumerate(layers)]
        return lora_projections(x, projections)

    def ref(x, *ab):
        return tuple(reference.lora_linear(x, *_as_ref(layer, ab[2 * i], ab[2 * i + 1], scales[i]))
                     for i, layer in enumerate(layers))

    inputs = [x] + [t for pair in pairs for t in pair]
    (outs_k, grads_k), (outs_r, grads_r) = run_with_grads(fused, inputs), run_with_grads(ref, inputs)
    for i, (o, r) in enumerate(zip(outs_k, outs_r)):
        assert o.dtype == dtype
        _matmul_close(o, r, dtype, f"projection {i}")
    _matmul_close(grads_k[0], grads_r[0], dtype, "dx")
    for i, (g, r) in enumerate(zip(grads_k[1:], grads_r[1:])):
        assert g.dtype == torch.float32, "LoRA gradients keep the parameters' dtype"
        close_in_norm(g, r, dtype, f"LoRA factor {i}")  # dA, dB sum over every token


@pytest.mark.parametrize("dtype", DTYPES)
def test_lora_mlp_matches_reference(dtype):
    hidden, inter = 40, 72
    shapes = {"gate": (hidden, inter), "up": (hidden, inter), "down": (inter, hidden)}
    layers = {name: _frozen_linear(*shape, dtype, seed=i) for i, (name, shape) in enumerate(shapes.items())}
    pairs = [_lora_pair(*shapes[name], seed=30 + 7 * i) for i, name in enumerate(shapes)]
    scales = (2.0, 1.0, 0.5)
    x = randn(3, 11, hidden, dtype=dtype, seed=4)

    def fused(x, *ab):
        gate, up, down = (LoraProjection(layers[n], None, ab[2 * i], ab[2 * i + 1], scales[i])
                          for i, n in enumerate(shapes))
        return lora_mlp(x, gate, up, down)

    def ref(x, *ab):
        return reference.lora_mlp(x, *(_as_ref(layers[n], ab[2 * i], ab[2 * i + 1], scales[i])
                                       for i, n in enumerate(shapes)))

    inputs = [x] + [t for pair in pairs for t in pair]
    (outs_k, grads_k), (outs_r, grads_r) = run_with_grads(fused, inputs), run_with_grads(ref, inputs)
    _matmul_close(outs_k[0], outs_r[0], dtype, "mlp output")
    _matmul_close(grads_k[0], grads_r[0], dtype, "dx")
    for i, (g, r) in enumerate(zip(grads_k[1:], grads_r[1:])):
        close_in_norm(g, r, dtype, f"LoRA factor {i}")


def test_lora_mlp_without_lora_and_frozen_input():
    """Plain frozen projections (no adapter) and an input that needs no gradient: no dx is computed."""
    layers = [_frozen_linear(24, 40, torch.float32, 1), _frozen_linear(24, 40, torch.float32, 2),
              _frozen_linear(40, 24, torch.float32, 3)]
    x = randn(5, 24, requires_grad=False)
    out = lora_mlp(x, *(LoraProjection(layer, None, None, None, 1.0) for layer in layers))
    want = reference.lora_mlp(x, *((layer.weight, None, None, None, 1.0) for layer in layers))
    close(out, want, torch.float32, "mlp without LoRA")
    assert not out.requires_grad


# --------------------------------------------------------------------- real peft layers, dense and 4-bit
def _peft_mlp(four_bit: bool, dropout: float = 0.0):
    """A 1-layer tiny Llama's MLP wrapped by peft LoRA, base weights dense fp32 or bitsandbytes NF4 (CPU)."""
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=64, hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                         num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).to(DEVICE)
    if four_bit:
        pytest.importorskip("bitsandbytes", reason="bitsandbytes is needed for 4-bit base weights")
        import bitsandbytes as bnb

        mlp = model.model.layers[0].mlp
        for name in ("gate_proj", "up_proj", "down_proj"):
            dense = getattr(mlp, name)
            quantised = bnb.nn.Linear4bit(dense.in_features, dense.out_features, bias=False,
                                          compute_dtype=torch.float32, quant_type="nf4", compress_statistics=True)
            quantised.weight = bnb.nn.Params4bit(dense.weight.data.cpu().clone(), requires_grad=False,
                                                 quant_type="nf4", compress_statistics=True)
            quantised = quantised.to(DEVICE)  # quantises (on CPU too in bitsandbytes 0.50)
            setattr(mlp, name, quantised)
    model.requires_grad_(False)
    model = get_peft_model(model, LoraConfig(r=RANK, lora_alpha=8, lora_dropout=dropout,
                                             target_modules=["gate_proj", "up_proj", "down_proj"]))
    mlp = model.base_model.model.model.layers[0].mlp
    for name, param in mlp.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.05)
    return mlp


@pytest.mark.parametrize("four_bit", [False, True], ids=["dense", "nf4"])
def test_lora_mlp_equals_peft_forward_and_grads(four_bit):
    mlp = _peft_mlp(four_bit)
    projections = [projection_of(getattr(mlp, n)) for n in ("gate_proj", "up_proj", "down_proj")]
    assert all(p is not None for p, _ in projections), [reason for _, reason in projections]
    if four_bit:
        assert projections[0][0].base.weight.quant_state is not None
    lora_params = [p for n, p in mlp.named_parameters() if "lora_" in n]
    x = randn(2, 7, 64, seed=11)

    def grads_of(fn):
        mlp.zero_grad()
        x_leaf = x.detach().clone().requires_grad_()
        out = fn(x_leaf)
        out.backward(randn(*out.shape, seed=12, requires_grad=False))
        return out.detach(), x_leaf.grad, [p.grad.clone() for p in lora_params]

    fused = grads_of(lambda x: lora_mlp(x, *(p for p, _ in projections)))
    peft = grads_of(mlp)
    close(fused[0], peft[0], torch.float32, "output")
    close(fused[1], peft[1], torch.float32, "dx")
    for i, (a, b) in enumerate(zip(fused[2], peft[2])):
        close_in_norm(a, b, torch.float32, f"LoRA grad {i}")


def test_projection_of_says_why_it_cannot_fuse():
    mlp = _peft_mlp(False, dropout=0.1)
    mlp.train()
    projection, reason = projection_of(mlp.gate_proj)
    assert projection is None and reason == "LoRA dropout > 0 while training"
    mlp.eval()
    assert projection_of(mlp.gate_proj)[0] is not None, "dropout is inactive in eval mode"
    trainable = nn.Linear(4, 4)
    assert projection_of(trainable) == (None, "base weight is trainable")
    frozen = nn.Linear(4, 4).requires_grad_(False)
    frozen.register_forward_hook(lambda *args: None)
    assert projection_of(frozen) == (None, "forward hooks on the layer")
