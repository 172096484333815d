"""Data parallelism under `torchrun` / `accelerate launch`: which process this is, and the one process group.

    rank, world = start()        # reads RANK / LOCAL_RANK / WORLD_SIZE; joins the group when WORLD_SIZE > 1
    if is_main(): ...            # rank 0 writes the run folder
    barrier()                    # the others wait for it
    finish()                     # leave the group at the end

Plain data parallelism (each process holds the whole 4-bit base on its own device; only LoRA gradients are
all-reduced, by transformers' Trainer through accelerate): the process group is `nccl` on CUDA (one GPU per
process: `torch.cuda.set_device(LOCAL_RANK)`, so `load_model`'s `device_map={"": current device}` puts each
copy on its own GPU) and `gloo` on CPU. Launchers set the environment; a plain `python -m arithmo.train` is one
process and none of this runs.
"""

from __future__ import annotations

import os


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def start() -> tuple[int, int]:
    """(rank, world size); joins the process group when launched with more than one process."""
    import torch
    import torch.distributed as dist

    if world_size() > 1 and not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        else:
            # accelerate names each CPU rank's device "cpu:<rank>", and transformers' Trainer resumes the optimizer
            # with map_location=that device, which torch.load refuses ("don't know how to restore data location
            # of torch.storage.UntypedStorage (tagged with cpu:0)", accelerate 1.15 / transformers 5.17): plain "cpu".
            os.environ.setdefault("ACCELERATE_TORCH_DEVICE", "cpu")
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    return rank(), world_size()


def barrier() -> None:
    """Wait for every process (nothing to wait for with one)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def finish() -> None:
    """Leave the process group (after a last barrier), so a launch ends cleanly on every rank."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
