"""Data parallelism across processes started by torchrun (gloo on CPU, NCCL on CUDA).

``torchrun --nproc_per_node=K -m scorelab train CONFIG`` sets RANK / WORLD_SIZE / LOCAL_RANK;
``World.from_env`` joins the process group when they are present and is a one-process world
otherwise, so the trainer has a single code path.

Every rank draws the same global batch from the same seeded generator and trains on its own
slice; gradients are averaged with one all-reduce after the backward pass. Doing the all-reduce
by hand rather than through ``DistributedDataParallel``'s reducer hooks is deliberate: the
Fokker–Planck regulariser differentiates through ``torch.autograd.grad(create_graph=True)`` and
``torch.func`` transforms, which DDP's hooks do not support, and at the model sizes this library
targets the lost overlap of communication with the backward pass is immaterial. The result is
the same arithmetic as one process on the global batch (up to the summation order of the
all-reduce).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from .errors import InvalidParameter


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    device: str = "cpu"

    @property
    def is_main(self) -> bool:
        """Only the main rank writes files and shows progress."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @classmethod
    def from_env(cls, device: str = "cpu") -> World:
        """Join torchrun's process group if its variables are set; else a one-process world."""
        size = int(os.environ.get("WORLD_SIZE", "1"))
        if size <= 1:
            return cls(device=device)
        rank = int(os.environ["RANK"])
        local = int(os.environ.get("LOCAL_RANK", rank))
        if not dist.is_initialized():
            backend = "nccl" if device.startswith("cuda") else "gloo"
            dist.init_process_group(backend=backend)
        return cls(rank, size, local, device)

    def local_slice(self, batch_size: int) -> slice:
        """This rank's share of a global batch (equal shares, so averaged gradients are exact)."""
        if batch_size % self.size:
            raise InvalidParameter(
                "train.batch_size",
                f"must be divisible by the number of processes ({self.size})",
                batch_size,
            )
        per = batch_size // self.size
        return slice(self.rank * per, (self.rank + 1) * per)

    def broadcast_parameters(self, module: torch.nn.Module) -> None:
        """Start every rank from rank 0's weights."""
        if not self.distributed:
            return
        for tensor in module.state_dict().values():
            dist.broadcast(tensor.data, src=0)

    def average_gradients(self, params: list[torch.Tensor]) -> None:
        """Mean of the ranks' gradients, in one flat all-reduce."""
        if not self.distributed:
            return
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        flat /= self.size
        offset = 0
        for p, g in zip(params, grads, strict=True):
            n = g.numel()
            chunk = flat[offset : offset + n].view_as(g)
            if p.grad is None:
                p.grad = chunk.clone()
            else:
                p.grad.copy_(chunk)
            offset += n

    def mean(self, value: float) -> float:
        """The mean of a scalar over the ranks (for logging the global loss)."""
        if not self.distributed:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return float(t) / self.size

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def close(self) -> None:
        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()
