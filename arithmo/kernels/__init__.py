"""arithmo's Triton kernels for QLoRA training, and `apply_kernels` / `revert_kernels` for one model.

Layout: reference.py (pure PyTorch: the oracle and the CPU fallback), one file per op (rmsnorm, rope,
swiglu, cross_entropy, lora_linear, lora_mlp), checkpoint.py (offloaded gradient checkpointing),
layers.py (the forwards that use them), patch.py (instance patching). Names resolve lazily: importing
this package imports neither triton nor transformers' modeling code.
"""

from __future__ import annotations

import importlib

# The ops live in their modules (`from arithmo.kernels.rope import rope`): a package attribute named like
# a submodule would be replaced by that submodule as soon as it is imported.
_EXPORTS = {
    "apply_kernels": "patch",
    "revert_kernels": "patch",
    "applied_kernels": "patch",
    "SUPPORTED_FAMILIES": "patch",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
