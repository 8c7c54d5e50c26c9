"""Shared fixtures: one process of every kind, with the schedules that stress them."""

from __future__ import annotations

import os

import pytest
import torch

from scorelab import schedules as sch
from scorelab.processes import EDM, VE, VP, SubVP

if os.environ.get("PYTEST_XDIST_WORKER"):
    # One intra-op thread per xdist worker: k workers × k threads oversubscribe the cores,
    # which slowed small-network training by an order of magnitude on a loaded machine.
    torch.set_num_threads(1)


def _beta_callable(t):
    return 0.1 + 19.9 * t**2


def _sigma_callable(t):
    return 0.02 * torch.exp(3.0 * t) + t


def all_processes():
    """(id, process) pairs covering every process kind and schedule family."""
    return [
        ("vp-linear", VP(sch.LinearBeta())),
        ("vp-linear-sinf1.5", VP(sch.LinearBeta(), sigma_inf=1.5)),
        ("vp-param-a4", VP(sch.ParametricBeta(a=4.0))),
        ("vp-param-a-7", VP(sch.ParametricBeta(a=-7.0))),
        ("vp-cosine", VP(sch.CosineBeta(clip_max=None))),
        ("vp-cosine-clip-sinf2", VP(sch.CosineBeta(clip_max=30.0, variance=4.0), sigma_inf=2.0)),
        ("vp-constant-ou", VP(sch.ConstantBeta(2.0, T=3.0))),
        ("vp-callable", VP(sch.CallableBeta(_beta_callable))),
        ("subvp-linear", SubVP(sch.LinearBeta())),
        (
            "subvp-cosine-sinf0.7",
            SubVP(sch.CosineBeta(clip_max=50.0, variance=0.49), sigma_inf=0.7),
        ),
        ("ve-geometric", VE(sch.GeometricSigma())),
        ("ve-edm_vp", VE(sch.EDMVPSigma())),
        ("ve-callable", VE(sch.CallableSigma(_sigma_callable))),
        ("edm", EDM()),
    ]


PROCESSES = all_processes()
PROCESS_IDS = [name for name, _ in PROCESSES]


@pytest.fixture(params=PROCESSES, ids=PROCESS_IDS)
def process(request):
    return request.param[1]


def interior_times(process, n=7):
    """Times spread over (0, T), log-spaced near 0, avoiding the singular end of cosine."""
    T = process.T
    small = [1e-6 * T, 1e-3 * T]
    return torch.tensor(
        small + [T * u for u in torch.linspace(0.05, 0.95, n - 2).tolist()], dtype=torch.float64
    )
