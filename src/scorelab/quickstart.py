"""The README's main job on embedded defaults.

A small MLP learns the score of a 2-D Gaussian mixture (the 8-mode ring) under a VP process with
the cosine schedule by denoising score matching; it is sampled with a deterministic (Heun
probability-flow ODE) and a stochastic (Euler–Maruyama) sampler, every sample set is measured
against the exact target with its finite-sample floor, and a report is written. The same run is
``scorelab run configs/quickstart.yaml``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .config import apply_overrides, parse_config
from .pipeline import RunOutcome
from .pipeline import run as run_pipeline

DEFAULTS = {
    "seed": 0,
    "target": {"kind": "gmm", "preset": "ring8", "radius": 2.0, "std": 0.2},
    "process": {"kind": "vp", "schedule": {"kind": "cosine", "clip_max": 20.0}},
    "network": {"kind": "mlp", "parameterisation": "eps", "width": 128, "depth": 3},
    "train": {
        "steps": 3000,
        "batch_size": 512,
        "lr": 3e-3,
        "warmup": 100,
        "noise": "lognormal",
        "weighting": "edm",
        "ema_half_life": 200,
        "log_every": 50,
        "checkpoint_every": 1000,
    },
    "sampler": {"kind": "heun", "steps": 25, "n": 2000, "grid": {"kind": "edm"}},
    "run": {
        "samplers": [{"kind": "euler_maruyama", "steps": 100, "grid": {"kind": "uniform"}}],
        "metrics": ["w2", "sliced_w2", "mmd", "kl_knn", "nll", "tv"],
        "n_boot": 100,
    },
}


def run(out: Path, progress: bool = False, log=print, overrides: Sequence[str] = ()) -> RunOutcome:
    """Train, sample, evaluate and report into ``out`` (``overrides``: ``--set`` strings such
    as ``seed=1`` or ``train.device=cuda``)."""
    cfg = parse_config(apply_overrides(DEFAULTS, list(overrides)))
    return run_pipeline(cfg, out, progress=progress, log=log)
