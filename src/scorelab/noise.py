"""Per-sample random streams: a sample's noise depends on (seed, its index), never on the batch.

Samples are grouped in fixed blocks of indices [b·B, (b+1)·B); block b owns one torch
Generator seeded from (seed, b). Every draw takes one ``randn(B, ...)`` from each block's
generator and keeps the rows the batch covers, so sample i receives the same numbers whether it
is drawn alone, in a batch of 7 or in one of 10⁶, as long as batches start on a block boundary
(the driver guarantees it). torch's own generator does the drawing; only the bookkeeping is ours
(torch has no counter-based CPU generator keyed by sample index).
"""

from __future__ import annotations

import torch

from .errors import InvalidParameter

DEFAULT_BLOCK = 1024


def _block_seed(seed: int, block: int) -> int:
    # SplitMix64 of (seed, block): well-spread 63-bit seeds for neighbouring blocks.
    z = int(seed) * 0x9E3779B97F4A7C15 + int(block) * 0xBF58476D1CE4E5B9 + 0x94D049BB133111EB
    z &= (1 << 64) - 1
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & ((1 << 64) - 1)
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & ((1 << 64) - 1)
    return (z ^ (z >> 31)) & ((1 << 63) - 1)


class SampleNoise:
    """Standard-normal draws for samples ``start … start + n − 1``, one stream per sample."""

    def __init__(
        self,
        seed: int,
        start: int,
        n: int,
        event_shape: tuple[int, ...],
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
        block: int = DEFAULT_BLOCK,
    ):
        if start % block:
            raise InvalidParameter("start", f"must be a multiple of the block size {block}", start)
        self.n, self.event_shape, self.dtype, self.device = n, tuple(event_shape), dtype, device
        self.block = block
        first, last = start // block, (start + n - 1) // block
        self.generators = [
            torch.Generator().manual_seed(_block_seed(seed, b)) for b in range(first, last + 1)
        ]

    def __call__(self) -> torch.Tensor:
        """The next standard-normal draw, shape ``[n, *event_shape]``.

        Drawn on the CPU (so the numbers do not depend on the device) in the sampling dtype,
        straight into one buffer (no per-block concatenation: this keeps the cost within a few
        per cent of one plain ``randn``)."""
        buf = torch.empty(len(self.generators) * self.block, *self.event_shape, dtype=self.dtype)
        for i, g in enumerate(self.generators):
            torch.randn(
                self.block,
                *self.event_shape,
                generator=g,
                out=buf[i * self.block : (i + 1) * self.block],
            )
        return buf[: self.n].to(device=self.device)


def normal_like(noise, x: torch.Tensor) -> torch.Tensor:
    """A standard-normal tensor like x from a ``SampleNoise``, a ``torch.Generator`` or None."""
    if isinstance(noise, SampleNoise):
        z = noise()
        if z.shape != x.shape:
            raise InvalidParameter(
                "noise", "does not match the batch", tuple(z.shape), str(tuple(x.shape))
            )
        return z
    return torch.randn(x.shape, generator=noise, dtype=x.dtype, device=x.device)
