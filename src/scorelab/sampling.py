"""Drawing n samples: chunks of bounded size, per-sample noise streams, NFE and wall time.

``generate`` is what the CLI and the pipeline call. Sample i's prior draw and every noise
increment come from its own stream (``noise.SampleNoise``), so the same seed gives the same
sample whatever ``batch_size`` is (batches are rounded to whole noise blocks).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from .errors import InvalidParameter
from .grids import TimeGrid
from .noise import DEFAULT_BLOCK, SampleNoise
from .processes import ForwardProcess
from .progress import tracker
from .registry import entry
from .samplers import ScoreModel


@dataclass
class Generated:
    samples: torch.Tensor
    nfe: int
    seconds: float


def sampler_parameters(kind: str) -> dict[str, object]:
    """The keyword parameters (and defaults) a registered sampler accepts."""
    return entry("sampler", kind).parameters


def get_sampler(kind: str, process: ForwardProcess | None = None):
    """The registered sampler ``kind``, checked against the processes it applies to."""
    e = entry("sampler", kind)
    allowed = e.meta.get("processes")
    kinds = {getattr(process, "kind", None), *getattr(process, "is_a", ())}
    if process is not None and allowed and not kinds & set(allowed):
        raise InvalidParameter(
            "sampler.kind",
            f"'{kind}' is derived for the {', '.join(allowed)} process only; "
            f"this process is '{process.kind}'",
            kind,
        )
    return e.obj


@torch.no_grad()
def generate(
    score: ScoreModel,
    process: ForwardProcess,
    event_shape: tuple[int, ...],
    *,
    sampler: str = "heun",
    grid: TimeGrid | None = None,
    n: int = 1000,
    seed: int = 0,
    batch_size: int | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
    progress: bool = False,
    **params,
) -> Generated:
    """n samples of ``sampler`` on ``grid`` from the process's prior, in chunks."""
    fn = get_sampler(sampler, process)
    unknown = set(params) - set(sampler_parameters(sampler))
    if unknown:
        name = sorted(unknown)[0]
        raise InvalidParameter(
            name,
            f"is not a parameter of sampler '{sampler}'",
            params[name],
            ", ".join(sampler_parameters(sampler)) or "none",
        )
    if int(n) < 1:
        raise InvalidParameter("n", "must be ≥ 1", n)
    grid = grid or TimeGrid()
    block = DEFAULT_BLOCK
    batch = int(n) if batch_size is None else int(batch_size)
    if batch < 1:
        raise InvalidParameter("batch_size", "must be ≥ 1", batch_size)
    batch = max(block, (batch + block - 1) // block * block)  # whole noise blocks
    starts = list(range(0, int(n), batch))
    out, nfe = [], 0
    t0 = time.perf_counter()
    # progress in samples, advanced after every step of every batch
    bar = tracker(progress, int(n), "sampling", "samples")
    steps = max(1, grid.n_steps)
    try:
        for start in starts:
            size = min(batch, int(n) - start)
            noise = SampleNoise(
                seed, start, size, event_shape, dtype=dtype, device=device, block=block
            )
            x = process.prior_std * noise()
            kw = dict(params)
            if progress:
                kw["callback"] = lambda k, *_, s=start, b=size: bar.update(
                    s + b * min(1.0, (k + 1) / steps)
                )
            res = fn(score, process, grid, x, noise=noise, **kw)
            out.append(res.x)
            nfe = res.nfe
            bar.update(start + size)
    finally:
        bar.close()
    return Generated(torch.cat(out), nfe, time.perf_counter() - t0)
