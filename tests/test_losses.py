"""Losses and parameterisations against closed forms: the DSM minimum d/s² − tr A⁻¹
(docs/theory.md §6.2), EDM's weighting in its own (denoiser) form, EDM's c-functions, and
wrappers that must reproduce the exact score when the network outputs the exact quantity it
is meant to predict."""

from __future__ import annotations

import math

import pytest
import torch

from scorelab import schedules as sch
from scorelab.errors import InvalidParameter
from scorelab.losses import dsm_loss, esm_loss, sample_times
from scorelab.parameterisations import ScoreNetwork, edm_coefficients, estimate_sigma_data
from scorelab.processes import EDM, VE, VP
from scorelab.targets import Gaussian, ring8

F64 = torch.float64
COV = [[1.0, 0.4, 0.1], [0.4, 0.6, -0.2], [0.1, -0.2, 0.9]]
TARGET = Gaussian(mean=[1.0, 0.0, -1.0], cov=COV)


@pytest.mark.parametrize(
    "process", [VP(sch.LinearBeta()), VE(sch.GeometricSigma()), EDM()], ids=["vp", "ve", "edm"]
)
def test_dsm_with_exact_score_reaches_its_closed_form_minimum(process):
    n = 200_000
    g = torch.Generator().manual_seed(0)
    t = 0.2 * process.T
    x0 = TARGET.sample(n, g, dtype=F64)
    z = torch.randn(n, 3, generator=g, dtype=F64)
    ts = torch.full((n,), t, dtype=F64)
    exact = TARGET.score_model(process)
    loss = dsm_loss(exact, x0, process, t=ts, z=z, weighting="none")
    m, s2 = float(process.scale(t)), float(process.variance(t))
    A = m**2 * torch.tensor(COV, dtype=F64) + s2 * torch.eye(3, dtype=F64)
    expected = 3 / s2 - float(torch.trace(torch.linalg.inv(A)))
    se = float(loss.std()) / math.sqrt(n)
    assert abs(float(loss.mean()) - expected) < 5 * se
    # a score off by a constant δ raises it by ‖δ‖² (the cross term vanishes by Tweedie)
    delta = torch.tensor([0.3, -0.2, 0.1], dtype=F64)
    worse = dsm_loss(lambda x, tt: exact(x, tt) + delta, x0, process, t=ts, z=z, weighting="none")
    gap = worse - loss
    assert abs(float(gap.mean()) - float(delta @ delta)) < 5 * float(gap.std()) / math.sqrt(n)


def test_edm_and_inverse_sigma2_weightings_match_the_denoiser_form():
    process, sd = EDM(), 0.5
    g = torch.Generator().manual_seed(1)
    x0 = ring8().sample(64, g, dtype=F64)
    z = torch.randn(64, 2, generator=g, dtype=F64)
    t = sample_times(process, 64, g, "lognormal")
    model = lambda x, tt: -x / (1 + tt[:, None] ** 2) + 0.1 * torch.sin(x)  # noqa: E731
    x = x0 + t[:, None] * z
    D = x + t[:, None] ** 2 * model(x, t)  # VE/EDM: D = x + σ² s
    sq = ((D - x0) ** 2).sum(1)
    lam_edm = (t**2 + sd**2) / (t * sd) ** 2
    ours = dsm_loss(model, x0, process, t=t, z=z, weighting="edm", sigma_data=sd)
    assert torch.allclose(ours, lam_edm * sq, rtol=1e-12)
    inv = dsm_loss(model, x0, process, t=t, z=z, weighting="s2")
    assert torch.allclose(inv, sq / t**2, rtol=1e-12)


def test_edm_coefficients_are_edms():
    sigma = torch.tensor([1.0, 0.002, 80.0], dtype=F64)
    c_skip, c_out, c_in, c_noise = edm_coefficients(sigma, 0.5)
    assert float(c_skip[0]) == pytest.approx(0.25 / 1.25)
    assert float(c_out[0]) == pytest.approx(0.5 / math.sqrt(1.25))
    assert float(c_in[0]) == pytest.approx(1 / math.sqrt(1.25))
    assert float(c_noise[0]) == 0.0 and float(c_noise[2]) == pytest.approx(math.log(80) / 4)
    # D = c_skip x + c_out F is an exact identity at σ → 0 (D → x) and σ → ∞ (D → c_out F)
    assert float(c_skip[1]) == pytest.approx(1.0, abs=2e-5)


class _Oracle(torch.nn.Module):
    """A 'network' that outputs exactly what its parameterisation asks for, from the exact
    target: the wrapper must then give back the exact score."""

    def __init__(self, kind, process, sd=0.5):
        super().__init__()
        self.kind, self.process, self.sd = kind, process, sd

    def forward(self, inp, c_noise):
        sigma = torch.exp(4 * c_noise)
        t = self.process.t_of_sigma(sigma)
        m = self.process.scale(t)[:, None]
        s = self.process.std(t)[:, None]
        if self.kind == "edm":
            c_skip, c_out, c_in, _ = edm_coefficients(sigma, self.sd)
            xh = inp / c_in[:, None]
            D = TARGET.denoise(m * xh, t, self.process)
            return (D - c_skip[:, None] * xh) / c_out[:, None]
        score = TARGET.score(inp, t, self.process)
        if self.kind == "score":
            return score
        if self.kind == "eps":
            return -s * score
        return TARGET.denoise(inp, t, self.process)


@pytest.mark.parametrize("kind", ["score", "eps", "x0", "edm"])
@pytest.mark.parametrize("process", [VP(sch.CosineBeta(clip_max=20.0)), EDM()], ids=["vp", "edm"])
def test_parameterisations_recover_the_exact_score(kind, process):
    wrapper = ScoreNetwork(_Oracle(kind, process), process, kind, sigma_data=0.5)
    g = torch.Generator().manual_seed(2)
    x0 = TARGET.sample(16, g, dtype=F64)
    t = (torch.rand(16, generator=g, dtype=F64) * 0.9 + 0.05) * process.T
    x = process.sample_marginal(x0, t, g)
    assert torch.allclose(wrapper(x, t), TARGET.score(x, t, process), rtol=1e-8, atol=1e-8)
    assert torch.allclose(
        wrapper.denoise(x, t), TARGET.denoise(x, t, process), rtol=1e-8, atol=1e-8
    )


def test_noise_distributions():
    process = EDM()
    g = torch.Generator().manual_seed(3)
    t = sample_times(process, 100_000, g, "lognormal")
    log_sigma = torch.log(process.sigma(t))
    assert float(log_sigma.mean()) == pytest.approx(-1.2, abs=0.02)
    assert float(log_sigma.std()) == pytest.approx(1.2, abs=0.02)
    t = sample_times(process, 100_000, g, "loguniform")
    ls = torch.log(process.sigma(t))
    lo, hi = math.log(0.002), math.log(80.0)
    assert float(ls.min()) >= lo - 1e-9 and float(ls.max()) <= hi + 1e-9
    assert float(ls.mean()) == pytest.approx((lo + hi) / 2, abs=0.03)
    u = sample_times(VP(sch.LinearBeta()), 100_000, g, "uniform_t")
    assert float(u.min()) >= 1e-3 and float(u.mean()) == pytest.approx(0.5005, abs=0.005)
    with pytest.raises(InvalidParameter, match="noise"):
        sample_times(process, 4, g, "gamma")


def test_lognormal_parameters_come_from_its_section():
    process = EDM()
    g = torch.Generator().manual_seed(7)
    t = sample_times(process, 100_000, g, {"kind": "lognormal", "p_mean": -0.4, "p_std": 0.6})
    log_sigma = torch.log(process.sigma(t))
    # N(−0.4, 0.6²) well inside [ln 0.002, ln 80]: the clamp does not bite; 5 standard errors
    assert abs(float(log_sigma.mean()) + 0.4) < 5 * 0.6 / math.sqrt(100_000)
    assert float(log_sigma.std()) == pytest.approx(0.6, rel=0.01)
    with pytest.raises(InvalidParameter, match=r"noise\.p_std: Input should be greater than 0"):
        sample_times(process, 4, g, {"kind": "lognormal", "p_std": 0})
    with pytest.raises(InvalidParameter, match=r"noise\.cap: is not a parameter of noise"):
        sample_times(process, 4, g, {"kind": "lognormal", "cap": 1})


def test_user_and_registered_noise_laws_and_weightings_share_one_signature():
    """A user's noise law is called like a registered one, (process, n, generator), and a
    user's weighting like a registered one, (process, t, var, sigma_data): the same draws and
    weights as the built-ins they restate; a callable of another shape is refused with the
    signature it needs."""
    process = VP(sch.LinearBeta())

    def my_uniform(process, n, generator):
        u = torch.rand(n, generator=generator, dtype=torch.float64)
        return process.t_min + (process.T - process.t_min) * u

    def my_s2(process, t, var, sigma_data):
        return process.std(t) ** 2

    g = torch.Generator
    torch.testing.assert_close(
        sample_times(process, 64, g().manual_seed(1), my_uniform),
        sample_times(process, 64, g().manual_seed(1), "uniform_t"),
        rtol=0,
        atol=0,
    )
    x0 = TARGET.sample(64, g().manual_seed(2), dtype=F64)
    exact = TARGET.score_model(process)
    mine = dsm_loss(exact, x0, process, g().manual_seed(3), noise=my_uniform, weighting=my_s2)
    ours = dsm_loss(exact, x0, process, g().manual_seed(3), noise="uniform_t", weighting="s2")
    torch.testing.assert_close(mine, ours, rtol=1e-12, atol=0)
    with pytest.raises(InvalidParameter, match=r"takes \(process, n, generator, \*\*params\)"):
        sample_times(process, 4, None, lambda n, generator: torch.rand(n))
    with pytest.raises(InvalidParameter, match=r"takes \(process, t, var, sigma_data"):
        dsm_loss(exact, x0, process, noise=my_uniform, weighting=lambda t: t)


def test_esm_of_the_exact_score_is_zero_and_sigma_data_estimate():
    process = VP(sch.LinearBeta())
    exact = TARGET.score_model(process)
    x0 = TARGET.sample(32, torch.Generator().manual_seed(4), dtype=F64)
    loss = esm_loss(exact, x0, process, torch.Generator().manual_seed(5), exact_score=exact)
    assert float(loss.abs().max()) == 0.0
    data = 0.7 * torch.randn(100_000, 4, generator=torch.Generator().manual_seed(6), dtype=F64)
    assert estimate_sigma_data(data) == pytest.approx(0.7, rel=0.01)
    with pytest.raises(InvalidParameter, match="parameterisation"):
        ScoreNetwork(torch.nn.Identity(), process, "v")
