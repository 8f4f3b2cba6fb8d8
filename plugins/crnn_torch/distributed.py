"""A training process's place in a torchrun job, and the few collectives the trainer runs itself.

Under torchrun (RANK and WORLD_SIZE set) the trainer joins the process group here; DDP all-reduces
the gradients, and the helpers below keep the ranks' other decisions and state equal. Alone, each
helper is a no-op on the local values.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn


@dataclass(frozen=True)
class DistInfo:
    """This process's place in a torchrun job (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(use_cuda: bool) -> DistInfo:
    """Join the torchrun job described by RANK / WORLD_SIZE / LOCAL_RANK (nccl on CUDA, gloo on CPU)."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return DistInfo()
    info = DistInfo(
        int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0))
    )
    if info.enabled and not torch.distributed.is_initialized():
        if use_cuda:
            torch.cuda.set_device(info.local_rank)
        torch.distributed.init_process_group("nccl" if use_cuda else "gloo")
    return info


def any_rank(dist: DistInfo, device: torch.device, *flags: bool) -> list[bool]:
    """Each flag OR-ed over all ranks (one small all-reduce), so ranks take the same decisions."""
    if not dist.enabled:
        return list(flags)
    t = torch.tensor([float(f) for f in flags], device=device)
    torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
    return [bool(v) for v in t.tolist()]


def average_buffers(model: nn.Module, dist: DistInfo) -> None:
    """Average BatchNorm running statistics over the ranks (collective; no-op alone).

    DDP keeps parameters equal but each rank updates its running statistics from its own batches;
    the average estimates them from all the data and leaves every rank with the same model.
    """
    if not dist.enabled:
        return
    with torch.no_grad():
        for buf in model.buffers():
            if buf.is_floating_point():
                torch.distributed.all_reduce(buf)
                buf.div_(dist.world)


def gather_objects(obj: Any, dist: DistInfo) -> list[Any]:
    """Every rank's ``obj``, in rank order (collective; ``[obj]`` alone)."""
    if not dist.enabled:
        return [obj]
    gathered: list[Any] = [None] * dist.world
    torch.distributed.all_gather_object(gathered, obj)
    return gathered
