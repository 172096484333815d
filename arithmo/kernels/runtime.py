"""When a Triton kernel can run, and the launch sizes the kernels share.

Triton compiles for CUDA devices; on a CPU it runs only through its interpreter, which reads
`TRITON_INTERPRET=1` when a kernel is *decorated* (triton/runtime/jit.py, 3.x), so the variable has to be
set before the kernel modules are imported. Each functional op asks `use_triton(tensor)` and otherwise
runs its pure-PyTorch definition from `reference.py`.
"""

from __future__ import annotations

import functools
import importlib.util
import os

import torch


@functools.lru_cache(maxsize=1)
def triton_installed() -> bool:
    return importlib.util.find_spec("triton") is not None


def interpreter_enabled() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "on", "yes")


def use_triton(tensor: torch.Tensor) -> bool:
    """True when a Triton kernel can take `tensor`: a CUDA tensor, or any tensor under the interpreter."""
    if not triton_installed():
        return False
    if tensor.device.type == "cuda":
        return True
    return tensor.device.type == "cpu" and interpreter_enabled()


def next_power_of_2(n: int) -> int:
    return 1 if n <= 1 else 1 << (int(n) - 1).bit_length()


def num_warps_for(block: int) -> int:
    """Warps for a row kernel whose block spans `block` elements: ~8-16 elements per thread."""
    if block >= 16384:
        return 16
    if block >= 4096:
        return 8
    if block >= 1024:
        return 4
    return 2


def persistent_programs(device: torch.device, n_rows: int) -> int:
    """Programs for a kernel that loops over rows and keeps a per-program partial sum (RMSNorm dW).

    Four programs per SM keep an H100's 132 SMs busy; the interpreter runs programs one after another,
    so there a handful suffices.
    """
    if device.type == "cuda":
        sms = torch.cuda.get_device_properties(device).multi_processor_count
        return max(1, min(n_rows, 4 * sms))
    return max(1, min(n_rows, 4))


def compute_dtype(tensor: torch.Tensor) -> torch.dtype:
    """The dtype a matmul on `tensor` runs in: autocast's when autocast is on for its device, else its own."""
    device_type = tensor.device.type
    if torch.is_autocast_enabled(device_type):
        return torch.get_autocast_dtype(device_type)
    return tensor.dtype
