"""Single-process and ``torchrun`` (DDP) training share one code path; this module holds what differs: which
process this is, which device it trains on, the process group, and wrapping a network for gradient all-reduce.
Every rank trains on its shard of the clips; rank 0 alone writes files (``Dist.main``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from .config import TrainError

__all__ = ["Dist", "all_reduce_mean", "dist_from_env", "init_process_group", "pick_device", "unwrap", "wrap"]


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def on(self) -> bool:
        return self.world > 1


def dist_from_env() -> Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    return Dist(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))


def unwrap(m: nn.Module) -> nn.Module:
    return m.module if isinstance(m, nn.parallel.DistributedDataParallel) else m


def pick_device(name: str, d: Dist) -> torch.device:
    # Not pipeline.pick_device: training's `auto` skips MPS on purpose (3D transposed convolutions are
    # not reliably supported there), and under DDP each process takes its local rank's GPU.
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise TrainError(f"--device {name!r}: {e}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise TrainError("--device cuda: no CUDA device is available here")
        if d.on or device.index is None:
            device = torch.device("cuda", d.local_rank if d.on else torch.cuda.current_device())
        torch.cuda.set_device(device)
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise TrainError("--device mps: MPS is not available here")
    return device


def init_process_group(device: str, d: Dist) -> None:
    """Join the ``torchrun`` process group (once): NCCL for CUDA devices, Gloo otherwise."""
    if not d.on or dist.is_initialized():
        return
    cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    dist.init_process_group(backend="nccl" if cuda else "gloo")


def wrap(m: nn.Module, device: torch.device, d: Dist) -> nn.Module:
    """``m`` under DistributedDataParallel when there are several processes (once); ``m`` itself otherwise."""
    if not d.on or isinstance(m, nn.parallel.DistributedDataParallel):
        return m
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(m, device_ids=ids)


def all_reduce_mean(vec: torch.Tensor, d: Dist) -> torch.Tensor:
    """The mean of ``vec`` over all processes (in place): every rank logs and checks the same losses."""
    if d.on:
        dist.all_reduce(vec)
        vec /= d.world
    return vec
