"""How run_v0/ was made: a run directory written by scorelab before component sections
(commit ace8a65: ``train.p_mean``/``p_std``/``fp`` fixed fields, one flat ``sampler`` and
``network`` section, ``sampler.grid.rho`` on every grid). Run with that version's sources
first on the path:

    PYTHONPATH=<ace8a65>/src python tests/snapshots/run_v0/make.py tests/snapshots/run_v0

It trains 4 steps (the run directory kept here; no lr decay, so no step depends on
``train.steps``), then trains the same config 6 steps
uninterrupted elsewhere and keeps that run's metrics as ``uninterrupted_6.jsonl``: the losses
that a resume of this directory to step 6 must reproduce bit for bit."""

import shutil
import sys
import tempfile
from pathlib import Path

import torch

from scorelab import pipeline
from scorelab.config import parse_config

CONFIG = {
    "seed": 3,
    "target": {"kind": "gmm", "preset": "ring8"},
    "process": {"kind": "vp", "schedule": {"kind": "cosine"}},
    "network": {"kind": "mlp", "width": 16, "depth": 2, "sigma_data": 1.0},
    "train": {
        "steps": 4,
        "batch_size": 32,
        "warmup": 1,
        "decay": "none",  # the learning rate does not depend on train.steps
        "log_every": 1,
        "checkpoint_every": 2,
        "loss": "fp_dsm",
        "fp": {"alpha": 0.3, "points": "perturbed"},
        "noise": "lognormal",
        "p_mean": -1.0,
        "p_std": 1.1,
        "weighting": "edm",
    },
    "sampler": {
        "kind": "ddim",
        "eta": 0.5,
        "steps": 5,
        "n": 64,
        "grid": {"kind": "edm", "rho": 5.0},
    },
    "run": {"samplers": [{"kind": "euler_maruyama", "grid": {"kind": "uniform"}}]},
}

if __name__ == "__main__":
    torch.set_num_threads(1)
    out = Path(sys.argv[1])
    for name in ("config.yaml", "checkpoint.safetensors", "metrics.jsonl"):
        (out / name).unlink(missing_ok=True)
    pipeline.train(parse_config(CONFIG), out)
    with tempfile.TemporaryDirectory() as tmp:
        six = {**CONFIG, "train": {**CONFIG["train"], "steps": 6}}
        pipeline.train(parse_config(six), tmp)
        shutil.copy(Path(tmp) / "metrics.jsonl", out / "uninterrupted_6.jsonl")
