"""The data sets (the ring; the 8×8 digits, dequantised) and processes (Song's VP and VE), built
through the configuration schema as a run's config would be.
"""

from __future__ import annotations

import torch

from ...config import build, parse_config
from ...likelihood import dequantise
from ...models import resolve_sigma_data
from ...targets import Target
from .settings import DIGIT_LEVELS, HELD_OUT_DIGITS, SPLIT_SEED

DATA = {
    "ring": {
        "target": {"kind": "gmm", "preset": "ring8", "radius": 2.0, "std": 0.2},
        "network": {"kind": "mlp", "width": 128, "depth": 3},
        "sigma_max": 5.0,  # ≈ the largest distance between two data points (Song's rule)
    },
    "digits": {
        "target": {"kind": "digits", "flatten": True},
        "network": {"kind": "mlp", "width": 256, "depth": 3},
        "sigma_max": 10.0,  # the largest distance between two images is 9.6
    },
}


class HeldOut:
    """The evaluation points of a data set, never trained on: the ring's own law (training
    draws come from other streams), or the digits' held-out images. ``draw(k, n, g)`` is the
    k-th of two independent draws of n points (k = 0 the claims' draw, k = 1 the one that fixes
    the paired-noise margins): fresh samples of the ring; the k-th disjoint block of n held-out
    digits, dequantised with ``g``."""

    def __init__(self, target: Target, rows: torch.Tensor | None = None):
        self.target = target
        self.rows = rows

    def draw(self, k: int, n: int, generator: torch.Generator) -> torch.Tensor:
        if self.rows is None:
            return self.target.sample(n, generator, dtype=torch.float64)
        if (k + 1) * n > self.rows.shape[0]:
            raise ValueError(f"draw {k} of {n} points needs {(k + 1) * n} held-out rows")
        block = self.rows[k * n : (k + 1) * n]
        x = dequantise(block, generator, data_range="[-1,1]", levels=DIGIT_LEVELS)
        return x.to(torch.float64)


def split_digits(data: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The digits' training rows and the HELD_OUT_DIGITS held-out rows: a fixed permutation
    (seeded SPLIT_SEED, the same for every seed and run), so that no evaluation image was
    trained on."""
    perm = torch.randperm(data.shape[0], generator=torch.Generator().manual_seed(SPLIT_SEED))
    return data[perm[HELD_OUT_DIGITS:]], data[perm[:HELD_OUT_DIGITS]]


class DequantisedDigits(Target):
    """The digits data set, each draw dequantised with fresh uniform noise (continuous data
    whose NLL bounds the discrete one)."""

    kind = "digits_dequantised"

    def __init__(self, data: torch.Tensor):
        super().__init__(tuple(data.shape[1:]))
        self.data = data

    def _sample(self, n, generator):
        rows = self.data[torch.randint(0, self.data.shape[0], (n,), generator=generator)]
        return dequantise(rows, generator, data_range="[-1,1]", levels=DIGIT_LEVELS)


def process_config(data: str, process: str) -> dict:
    if process == "vp":
        return {"kind": "vp", "schedule": {"kind": "linear", "beta_min": 0.1, "beta_max": 20.0}}
    return {
        "kind": "ve",
        "schedule": {"kind": "geometric", "sigma_min": 0.01, "sigma_max": DATA[data]["sigma_max"]},
    }


def build_setting(data: str, process: str, seed: int):
    """The training target, the held-out points, the process and σ_data of a (data set,
    process), as a config builds them (the digits split into training and held-out images)."""
    cfg = parse_config(
        {
            "target": DATA[data]["target"],
            "process": process_config(data, process),
            "network": {"kind": "mlp", "parameterisation": "eps"},
            "seed": seed,
        }
    )
    target, proc = build(cfg)
    if data != "digits":
        return target, HeldOut(target), proc, resolve_sigma_data(cfg, target)
    train, held = split_digits(target.data)
    target = DequantisedDigits(train)
    return target, HeldOut(DequantisedDigits(held), held), proc, resolve_sigma_data(cfg, target)
