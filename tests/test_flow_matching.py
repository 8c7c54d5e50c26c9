"""Conditional flow matching (scorelab.flow_matching): the CFM loss equals DSM with the weighting
λ = g⁴/4 example by example on the same draws; its minimum on a Gaussian is the closed-form
conditional variance; SD3's logit-normal time law against its distribution function; the
time reparameterisations (SD3's shift, Flux's dynamic shift) against their formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from scorelab.config import build_target
from scorelab.flow_matching import cfm_loss, dsm_weighting_of_cfm, logit_normal, ot_cfm_loss
from scorelab.interpolants import RectifiedFlow, Trigonometric
from scorelab.losses import dsm_loss, sample_times
from scorelab.processes import EDM, VP
from scorelab.registry import entry
from scorelab.schedules import LinearBeta
from scorelab.targets import Gaussian
from scorelab.time_shift import exponential, flux_mu, linear, reparameterise, shift
from scorelab.velocity import exact_velocity, from_velocity

F64 = torch.float64
RF = RectifiedFlow()
PROCESSES = [
    ("rectified_flow", RF),
    ("trigonometric", Trigonometric()),
    ("vp", VP(LinearBeta())),
    ("edm", EDM()),
]
RING = build_target({"kind": "gmm", "preset": "ring8"})


def _draws(process, n=512, seed=0):
    g = torch.Generator().manual_seed(seed)
    x0 = RING.sample(n, g, dtype=F64)
    t = process.t_min + (process.T - process.t_min) * (
        0.01 + 0.98 * torch.rand(n, generator=g, dtype=F64)
    )
    z = torch.randn(n, 2, generator=g, dtype=F64)
    return x0, t, z


def _imperfect(process):
    V = exact_velocity(RING, process)
    return from_velocity(lambda x, t: V.velocity(x, t) + 0.3 * torch.sin(2 * x), process)


@pytest.mark.parametrize("name,process", PROCESSES, ids=[n for n, _ in PROCESSES])
def test_cfm_is_dsm_with_the_weighting_g4_over_4(name, process):
    x0, t, z = _draws(process)
    model = _imperfect(process)
    cfm = cfm_loss(model, x0, process, t=t, z=z)
    dsm = dsm_loss(model, x0, process, t=t, z=z, weighting="cfm")
    assert float(((cfm - dsm).abs() / dsm.abs()).max()) <= 1e-10

    # with a weighting λ on the velocity: DSM with λ g⁴/4
    def lam(process, tt, var, sigma_data):
        return 1.0 + tt**2

    cfm_w = cfm_loss(model, x0, process, t=t, z=z, weighting=lam)
    dsm_w = dsm_loss(model, x0, process, t=t, z=z, weighting=dsm_weighting_of_cfm(lam))
    assert float(((cfm_w - dsm_w).abs() / dsm_w.abs()).max()) <= 1e-10


def test_the_cfm_weighting_on_rectified_flow_is_the_squared_noise_level():
    t = torch.tensor([0.1, 0.5, 0.9], dtype=F64)
    lam = entry("weighting", "cfm").obj(RF, t, RF.variance(t), 0.5)
    assert torch.allclose(lam, (t / (1 - t)) ** 2, rtol=1e-14)
    assert torch.allclose(lam, RF.sigma(t) ** 2, rtol=1e-14)


@pytest.mark.parametrize("name,process", PROCESSES[:2], ids=["rectified_flow", "trigonometric"])
def test_cfm_at_the_exact_velocity_is_the_conditional_variance(name, process):
    """E ℓ_CFM(v*) = Σ_d Var(α̇X₀ + σ̇ε | X_t) = Σ_d (α̇σ − σ̇α)² λ_d/(α²λ_d + σ²) on N(μ, Λ):
    Monte Carlo at fixed t (n = 2·10⁵, 5 standard errors)."""
    lam, mu = np.array([1.0, 0.25]), np.array([1.0, -0.5])
    target = Gaussian(mean=mu.tolist(), cov=lam.tolist())
    V = exact_velocity(target, process)
    n, g = 200_000, torch.Generator().manual_seed(1)
    x0 = target.sample(n, g, dtype=F64)
    for t in (0.3, 0.8):
        loss = cfm_loss(V, x0, process, g, t=torch.full((n,), t, dtype=F64))
        a, s, da, ds = (float(c) for c in process.coefficients(t))
        want = float(np.sum((da * s - ds * a) ** 2 * lam / (a**2 * lam + s**2)))
        se = float(loss.std()) / math.sqrt(n)
        assert abs(float(loss.mean()) - want) <= 5 * se, (t, float(loss.mean()), want)


def test_ot_cfm_is_cfm_on_the_optimally_repaired_noise():
    """OT-CFM is CFM with the noise re-paired by the batch's optimal assignment, checked
    against scipy's Hungarian solver (an independent exact solver)."""
    from scipy.optimize import linear_sum_assignment

    x0, t, z = _draws(RF, n=128, seed=2)
    model = _imperfect(RF)
    cost = torch.cdist(x0, z).pow(2).numpy()
    rows, cols = linear_sum_assignment(cost)
    repaired = z[torch.as_tensor(cols[np.argsort(rows)])]
    want = cfm_loss(model, x0, RF, t=t, z=repaired)
    assert torch.allclose(ot_cfm_loss(model, x0, RF, t=t, z=z), want, rtol=1e-14)
    assert torch.allclose(cfm_loss(model, x0, RF, t=t, z=z, coupling="minibatch_ot"), want)
    assert not torch.allclose(cfm_loss(model, x0, RF, t=t, z=z), want)


def test_cfm_trains_through_the_trainer_contract():
    """The loss takes the trainer's call: (model, x0, process, generator, *, t, z, noise,
    weighting, sigma_data) and returns one value per example."""
    x0, t, z = _draws(RF, n=32)
    out = cfm_loss(
        _imperfect(RF),
        x0,
        RF,
        torch.Generator(),
        t=t,
        z=z,
        noise="logit_normal",
        weighting="none",
        sigma_data=0.5,
    )
    assert out.shape == (32,) and bool(torch.isfinite(out).all())


@pytest.mark.parametrize("m,s,sh", [(0.0, 1.0, 1.0), (0.5, 0.8, 1.0), (0.0, 1.0, 3.0)])
def test_logit_normal_has_its_distribution(m, s, sh):
    """P(t ≤ u) = Φ((logit(shift⁻¹(u)) − m)/s): Kolmogorov–Smirnov on 2·10⁴ draws."""
    g = torch.Generator().manual_seed(4)
    t = logit_normal(RF, 20_000, g, logit_mean=m, logit_std=s, shift=sh).numpy()

    def cdf(u):
        w = reparameterise(torch.as_tensor(u, dtype=F64), "shift", inverse=True, shift=sh).numpy()
        return stats.norm.cdf((np.log(w) - np.log1p(-w) - m) / s)

    assert stats.kstest(t, cdf).pvalue > 1e-3
    via = sample_times(RF, 100, torch.Generator().manual_seed(4), "logit_normal")
    assert float(via.min()) >= RF.t_min and float(via.max()) <= 1.0


def test_shift_is_sd3s_formula_and_scales_the_noise_level():
    t = torch.linspace(0, 1, 101, dtype=F64)
    for s in (0.5, 1.0, 3.0, 7.5):
        got = shift(t, s)
        assert torch.allclose(got, s * t / (1 + (s - 1) * t), rtol=0, atol=1e-15)
        inner = t[1:-1]
        assert torch.allclose(RF.sigma(shift(inner, s)), s * RF.sigma(inner), rtol=1e-12)
        back = reparameterise(got, "shift", inverse=True, shift=s)
        assert torch.allclose(back, t, atol=1e-15)
    # shifts compose by multiplying s
    assert torch.allclose(shift(shift(t, 3.0), 3.0), shift(t, 9.0), atol=1e-15)


def test_dynamic_shifts_are_the_shift_at_exponent_one_and_invert():
    t = torch.linspace(0, 1, 101, dtype=F64)
    for mu in (0.5, 1.15):
        assert torch.allclose(exponential(t, mu), shift(t, math.exp(mu)), atol=1e-15)
        assert torch.allclose(linear(t, mu + 1.0), shift(t, mu + 1.0), atol=1e-15)
    for kind, params in (
        ("exponential", {"mu": 0.9, "exponent": 1.7}),
        ("linear", {"mu": 2.0, "exponent": 0.6}),
    ):
        tt = t[1:-1]
        back = reparameterise(reparameterise(tt, kind, **params), kind, inverse=True, **params)
        assert torch.allclose(back, tt, atol=1e-13)
    # Flux's μ: 0.5 at 256 latent tokens, 1.15 at 4096, linear between
    assert flux_mu(256) == pytest.approx(0.5) and flux_mu(4096) == pytest.approx(1.15)
    assert flux_mu(2176) == pytest.approx(0.825)
