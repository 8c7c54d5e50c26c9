"""The data sets (the ring; the 8×8 digits, dequantised) and processes (Song's VP and VE), built
through the configuration schema as a run's config would be.
"""

from __future__ import annotations

import torch

from ...config import build, parse_config
from ...likelihood import dequantise
from ...models import resolve_sigma_data
from ...targets import Target
from .settings import DIGIT_LEVELS

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
    """The target, process and σ_data of a (data set, process), as a config builds them."""
    cfg = parse_config(
        {
            "target": DATA[data]["target"],
            "process": process_config(data, process),
            "network": {"kind": "mlp", "parameterisation": "eps"},
            "seed": seed,
        }
    )
    target, proc = build(cfg)
    if data == "digits":
        target = DequantisedDigits(target.data)
    return target, proc, resolve_sigma_data(cfg, target)
