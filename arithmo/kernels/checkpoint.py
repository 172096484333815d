"""Gradient checkpointing that keeps each layer's input in pinned host memory instead of on the GPU.

A checkpointed decoder layer normally keeps one (batch, seq, hidden) input per layer on the device:
32 layers x 8192 tokens x 4096 x 2 bytes = 2 GiB for Mistral-7B at 4 x 2048 (and 11 GiB at 45K tokens),
which is most of what grows with sequence length once the layers recompute. Here the forward copies the
input to pinned host memory on a side stream (overlapping the layer's own compute) and runs the layer
without building a graph; the backward copies it back, reruns the layer with grad, and backpropagates
through it (the reentrant scheme of torch.utils.checkpoint). While layer i runs its backward, the input
of layer i-1 is already being copied back on the side stream, so the copies hide behind compute.
The RNG state and autocast state of the forward are restored for the recompute.
Use: `apply_kernels(model, offload_checkpoints=True)` installs `offloaded_checkpoint` as each decoder
layer's `_gradient_checkpointing_func` (transformers' GradientCheckpointingLayer calls it).
"""

from __future__ import annotations

import weakref

import torch


class _CopyStreams:
    """One side stream per CUDA device for host<->device copies."""

    streams: dict[int, torch.cuda.Stream] = {}

    @classmethod
    def get(cls, device: torch.device) -> torch.cuda.Stream:
        index = device.index if device.index is not None else torch.cuda.current_device()
        if index not in cls.streams:
            cls.streams[index] = torch.cuda.Stream(device=index)
        return cls.streams[index]


class _Offloaded:
    """A layer input parked in pinned host memory, with its way back to the device."""

    def __init__(self, tensor: torch.Tensor):
        self.device = tensor.device
        self.on_device: torch.Tensor | None = None
        self.prefetched: torch.cuda.Event | None = None
        if tensor.device.type != "cuda":
            self.host, self.copied = tensor.detach(), None  # already in host memory: nothing to move
            return
        stream = _CopyStreams.get(tensor.device)
        self.host = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
        stream.wait_stream(torch.cuda.current_stream(tensor.device))
        with torch.cuda.stream(stream):
            self.host.copy_(tensor.detach(), non_blocking=True)
            self.copied = torch.cuda.Event()
            self.copied.record(stream)
        tensor.record_stream(stream)  # the device copy must outlive the transfer even if the caller drops it

    def prefetch(self) -> None:
        """Start the copy back to the device on the side stream (no-op off CUDA or when already started)."""
        if self.copied is None or self.on_device is not None:
            return
        stream = _CopyStreams.get(self.device)
        with torch.cuda.stream(stream):
            stream.wait_event(self.copied)
            self.on_device = self.host.to(self.device, non_blocking=True)
            self.prefetched = torch.cuda.Event()
            self.prefetched.record(stream)

    def restore(self) -> torch.Tensor:
        if self.copied is None:
            return self.host
        self.prefetch()
        current = torch.cuda.current_stream(self.device)
        current.wait_event(self.prefetched)
        tensor = self.on_device
        tensor.record_stream(current)
        self.on_device, self.host = None, None
        return tensor


class OffloadedCheckpointFunction(torch.autograd.Function):
    # The most recent forward's context: the next layer's forward links back to it so that its backward
    # (which runs just before this one's) can prefetch this one's input.
    _last: weakref.ReferenceType | None = None

    @staticmethod
    def forward(ctx, run_function, preserve_rng_state: bool, hidden_states: torch.Tensor, *args):
        ctx.run_function = run_function
        ctx.args = args
        ctx.device_type = hidden_states.device.type
        ctx.autocast = (torch.is_autocast_enabled(ctx.device_type), torch.get_autocast_dtype(ctx.device_type))
        ctx.rng = None
        if preserve_rng_state:
            ctx.rng = (torch.get_rng_state(),
                       torch.cuda.get_rng_state(hidden_states.device) if ctx.device_type == "cuda" else None)
        ctx.saved_input = _Offloaded(hidden_states)
        previous = OffloadedCheckpointFunction._last
        ctx.previous = previous if previous is not None and previous() is not None else None
        OffloadedCheckpointFunction._last = weakref.ref(ctx.saved_input)
        with torch.no_grad():
            out = run_function(hidden_states, *args)
        if not isinstance(out, torch.Tensor):
            raise TypeError(f"offloaded_checkpoint: the layer returned {type(out).__name__}; it must return one "
                            "tensor (transformers 5.x decoder layers do)")
        return out

    @staticmethod
    def backward(ctx, grad_out):
        if ctx.saved_input is None:
            raise RuntimeError("offloaded_checkpoint: backward ran twice through the same forward "
                               "(retain_graph is not supported: the saved input is released after one use)")
        if ctx.previous is not None and ctx.previous() is not None:
            ctx.previous().prefetch()
        hidden_states = ctx.saved_input.restore().detach().requires_grad_(True)
        ctx.saved_input = None
        devices = [hidden_states.device] if ctx.device_type == "cuda" else []
        with torch.random.fork_rng(devices=devices, enabled=ctx.rng is not None):
            if ctx.rng is not None:
                torch.set_rng_state(ctx.rng[0])
                if ctx.rng[1] is not None:
                    torch.cuda.set_rng_state(ctx.rng[1], hidden_states.device)
            with torch.enable_grad(), torch.autocast(ctx.device_type, dtype=ctx.autocast[1], enabled=ctx.autocast[0]):
                out = ctx.run_function(hidden_states, *ctx.args)
        if out.requires_grad:
            torch.autograd.backward(out, grad_out)
        return (None, None, hidden_states.grad) + (None,) * len(ctx.args)


def offloaded_checkpoint(function, hidden_states: torch.Tensor, *args, preserve_rng_state: bool = True):
    """Checkpoint `function(hidden_states, *args)` with its input parked in host memory.

    The LoRA parameters inside `function` get their gradients during the recompute in the backward.
    """
    if trainable_extras := [a for a in args if isinstance(a, torch.Tensor) and a.requires_grad]:
        raise ValueError(f"offloaded_checkpoint: {len(trainable_extras)} extra positional tensor(s) require grad; "
                         "only the first argument (the hidden states) may")
    if not torch.is_grad_enabled():
        return function(hidden_states, *args)
    if not hidden_states.requires_grad:
        # Without an input that requires grad the autograd node would not be recorded and the recompute
        # (where the LoRA weights get their gradients) would never run; the input's own gradient is dropped.
        hidden_states = hidden_states.detach().requires_grad_(True)
    return OffloadedCheckpointFunction.apply(function, preserve_rng_state, hidden_states, *args)
