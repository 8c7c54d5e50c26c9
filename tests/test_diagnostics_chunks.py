"""Chunked evaluation in the diagnostics: the residual profile, the conservativity
and the PF-ODE NLL give the same numbers in batches as at once (the batches bound memory
only), and ``diagnose`` leaves the caller's thread count as it found it."""

from __future__ import annotations

import pytest
import torch

from scorelab.diagnostics import diagnose
from scorelab.divergence import conservativity
from scorelab.fokker_planck import residual_profile
from scorelab.likelihood import pf_ode_nll
from scorelab.processes import VP
from scorelab.schedules import CosineBeta
from scorelab.targets import ring8

F64 = torch.float64


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def setting():
    # the ring's exact score plus a time-dependent field that is not a gradient, so that
    # the residual, the non-conservativity and the NLL error are all non-zero
    target = ring8()
    process = VP(CosineBeta(clip_max=20.0))
    exact = target.score_model(process)
    W = torch.randn(2, 2, generator=gen(0), dtype=F64)

    def score(x, t):
        return exact(x, t) + 0.2 * torch.tanh(x @ W) * (1 + t[:, None])

    return target, process, score


def test_residual_profile_is_the_same_in_batches(setting):
    target, process, score = setting
    kw = dict(n=96, dtype=F64, div="hutchinson", n_probes=3)
    whole = residual_profile(score, process, target, [0.1, 0.6], generator=gen(1), **kw)
    parts = residual_profile(
        score, process, target, [0.1, 0.6], generator=gen(1), batch_size=10, **kw
    )
    for a, b in zip(whole, parts, strict=True):
        assert b.mean == pytest.approx(a.mean, rel=1e-12)
        assert b.half_width == pytest.approx(a.half_width, rel=1e-10)


@pytest.mark.parametrize("method", ["exact", "probes"])
def test_conservativity_is_the_same_in_batches(setting, method):
    target, process, score = setting
    x = process.perturb(
        target.sample(70, gen(2), dtype=F64), 0.3, torch.randn(70, 2, generator=gen(3), dtype=F64)
    )

    def field(y):
        return score(y, torch.full((y.shape[0],), 0.3, dtype=F64))

    whole = conservativity(field, x, method=method, n_probes=4, generator=gen(4))
    parts = conservativity(field, x, method=method, n_probes=4, generator=gen(4), batch_size=16)
    assert whole.ratio > 1e-3
    assert parts.ratio == pytest.approx(whole.ratio, rel=1e-12)
    assert torch.allclose(parts.numerator, whole.numerator, rtol=1e-12, atol=0)


@pytest.mark.parametrize(
    ("trace", "norm"), [("exact", "max"), ("hutchinson", "max"), ("hutchinson", "per_example")]
)
def test_pf_ode_nll_is_the_same_in_batches(setting, trace, norm):
    target, process, score = setting
    x = target.sample(40, gen(5), dtype=F64)
    kw = dict(rtol=1e-4, atol=1e-4, trace=trace, n_probes=2, t_min=0.05, error_norm=norm)
    whole = pf_ode_nll(score, process, x, generator=gen(6), **kw)
    parts = pf_ode_nll(score, process, x, generator=gen(6), batch_size=7, **kw)
    assert parts.nfe == whole.nfe
    assert torch.allclose(parts.nll, whole.nll, rtol=1e-10, atol=1e-12)


def test_diagnose_restores_the_callers_threads(setting):
    target, process, score = setting
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        d = diagnose(score, target, process, n_residual=16, n_conservativity=8, n_nll=8,
                     times=[0.5], rtol=1e-4, atol=1e-4)  # fmt: skip
        assert torch.get_num_threads() == 2
        assert d["nll"]["nfe"] > 0 and d["conservativity"]["value"] > 0
    finally:
        torch.set_num_threads(before)
