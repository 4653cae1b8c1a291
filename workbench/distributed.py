"""One process's place in a ``torchrun`` job: (rank, world size, device).

Under ``torchrun`` (``WORLD_SIZE`` > 1) the process group is started once, NCCL on CUDA and gloo
on CPU; each process takes the GPU of its ``LOCAL_RANK`` when there are GPUs. A plain run is
rank 0 of 1, on the first GPU or the CPU. Both trainers (injection, the decompiler's meta-model)
use it, so the same command runs on a laptop, 2 CPU processes or a GPU node.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def process_place() -> tuple[int, int, torch.device]:
    """(rank, world size, device) of this process, starting the process group under ``torchrun``."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    rank = dist.get_rank() if world > 1 else 0
    if torch.cuda.is_available():
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    return rank, world, device
