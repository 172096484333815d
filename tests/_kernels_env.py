"""Shared set-up for the kernel tests: Triton's interpreter on CPU, tolerance tables, gradient helpers.

Import this module before anything that imports triton: the interpreter is chosen when a kernel is
decorated (TRITON_INTERPRET, read by triton.jit), so the variable must be set first.
"""

import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")  # ~250x slower than torch: CPU shapes stay small

triton = pytest.importorskip("triton", reason="the kernels need the `triton` package (pip install triton)")

ON_GPU = torch.cuda.is_available()
DEVICE = torch.device("cuda" if ON_GPU else "cpu")
DTYPES = [torch.float32, torch.bfloat16, torch.float16]

# (rtol, atol) for a kernel against reference.py run in the SAME dtype.
# fp32: both compute in fp32 and differ only in summation order, ~1e-6 relative for sums of <= 4K terms.
# bf16: an 8-bit significand, one rounding = 2^-8 relative (0.0039); the kernel keeps fp32 intermediates
#   where torch rounds after each op, so the two differ by up to ~3 roundings: 1.6e-2 relative.
# fp16: an 11-bit significand, one rounding = 2^-11 (0.00049); ~3 roundings plus fp16's smaller range of
#   well-conditioned values: 2e-3 relative.
TOLERANCES = {
    torch.float32: (1e-5, 1e-5),
    torch.bfloat16: (1.6e-2, 1.6e-2),
    torch.float16: (2e-3, 2e-3),
}


@pytest.fixture(scope="module")
def single_threaded_torch():
    """One intra-op thread while a kernel test module runs, restored afterwards.

    These tensors are tiny; on the shared 2-core machines torch's thread pool under contention made a
    10-step tiny-model run take 3.3 s instead of 0.26 s (measured), which would mark the tests slow.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def close(actual: torch.Tensor, expected: torch.Tensor, dtype: torch.dtype, what: str, scale: float = 1.0) -> None:
    """assert_close elementwise with the dtype's tolerances (times `scale`)."""
    rtol, atol = TOLERANCES[dtype]
    torch.testing.assert_close(actual.float(), expected.float(), rtol=rtol * scale, atol=atol * scale,
                               msg=lambda m: f"{what} ({dtype}): {m}")


def close_in_norm(actual: torch.Tensor, expected: torch.Tensor, dtype: torch.dtype, what: str) -> None:
    """For a gradient that sums over many rows (a weight's or a table's): relative L2 error <= 2 rtol.

    Elementwise checks of such sums measure the reference's own rounding where terms cancel (torch rounds
    every bf16 product before summing; the kernels accumulate in fp32), so the error is bounded against
    the whole gradient's magnitude instead; 2 rtol because both sides round.
    """
    assert actual.shape == expected.shape, f"{what}: shape {tuple(actual.shape)} vs {tuple(expected.shape)}"
    rtol, _ = TOLERANCES[dtype]
    error = (actual.double() - expected.double()).norm() / expected.double().norm().clamp_min(1e-30)
    assert error <= 2 * rtol, f"{what} ({dtype}): relative L2 error {error:.3g} > {2 * rtol:.3g}"


def run_with_grads(fn, inputs: list[torch.Tensor], seed: int = 7):
    """Call fn on fresh leaf copies of `inputs`, backpropagate fixed random cotangents through every output.

    Returns (outputs, input gradients): gradients are None for inputs that do not require grad.
    """
    leaves = [t.detach().clone().requires_grad_(t.requires_grad) for t in inputs]
    outputs = fn(*leaves)
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    cotangents = [torch.randn(o.shape, generator=gen).to(device=o.device, dtype=o.dtype) for o in outputs]
    torch.autograd.backward(outputs, cotangents)
    return [o.detach() for o in outputs], [leaf.grad for leaf in leaves]


def randn(*shape, dtype=torch.float32, scale: float = 1.0, requires_grad: bool = True, seed: int = 0):
    gen = torch.Generator(device="cpu").manual_seed(seed)
    t = (torch.randn(shape, generator=gen) * scale).to(device=DEVICE, dtype=dtype)
    return t.requires_grad_(requires_grad)
