"""Top-level cell functions for the sweep engine's tests (workers import them by name)."""

from __future__ import annotations

import torch


def noisy_mean(seed: int, n: int, scale: float) -> dict:
    """The mean of n draws of N(0, scale²) from the cell's own seed."""
    g = torch.Generator().manual_seed(seed)
    x = scale * torch.randn(n, generator=g, dtype=torch.float64)
    return {"mean": float(x.mean()), "var": float(x.var())}


def fails_for_negative(value: float) -> dict:
    if value < 0:
        raise ValueError(f"negative value {value}")
    return {"value": value}
