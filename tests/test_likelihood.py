"""PF-ODE likelihood against exact densities (docs/theory.md §8.1, §8.2), bits/dim by hand.

The ODE starts at t_min, so its NLL is that of p_{t_min}, which exact targets know in closed
form (``log_prob_t``); with the exact end density log p_T as the prior, the only error left is
the solver's.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from scorelab import schedules as sch
from scorelab.errors import InvalidParameter, NonFinite
from scorelab.likelihood import bits_per_dim, dequantise, pf_ode_nll
from scorelab.processes import VE, VP, SubVP
from scorelab.targets import Gaussian, GaussianMixture, ring8

F64 = torch.float64
MIX3 = GaussianMixture(
    [0.3, 0.7],
    [[1.0, 0.0, -1.0], [-0.5, 1.0, 0.5]],
    [
        [[1.0, 0.4, 0.1], [0.4, 0.6, -0.2], [0.1, -0.2, 0.9]],
        [[0.3, -0.1, 0.0], [-0.1, 0.5, 0.2], [0.0, 0.2, 0.4]],
    ],
)


def _exact_end(target, process):
    return lambda z: target.log_prob_t(z, process.T, process)


@pytest.mark.parametrize(
    "name,target,process",
    [
        ("ring8-vp", ring8(), VP(sch.LinearBeta())),
        ("mix3-subvp", MIX3, SubVP(sch.LinearBeta())),
        ("gauss-ve", Gaussian([0.3, -1.0], [[1.0, 0.5], [0.5, 2.0]]), VE(sch.GeometricSigma())),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
@pytest.mark.parametrize("error_norm", ["max", "per_example"])
def test_nll_of_exact_score_matches_exact_density(name, target, process, error_norm):
    t_min = 1e-3
    x = target.sample(24, torch.Generator().manual_seed(0), dtype=F64)
    res = pf_ode_nll(
        target.score_model(process), process, x, rtol=1e-8, atol=1e-8, t_min=t_min,
        prior=_exact_end(target, process), error_norm=error_norm,
    )  # fmt: skip
    exact = -target.log_prob_t(x, t_min, process)
    assert float((res.nll - exact).abs().max()) < 1e-3
    assert res.nfe > 0 and res.t_min == t_min and res.T == process.T
    torch.testing.assert_close(res.nll, -(res.prior_log_prob + res.delta_log_prob))


def test_nll_with_the_process_prior_for_a_centred_mixture():
    # ring8 is centred, so p_T is N(0, I) to ~1e-4 nats under Song's VP: the default prior works
    target, process = ring8(), VP(sch.LinearBeta())
    x = target.sample(32, torch.Generator().manual_seed(1), dtype=F64)
    res = pf_ode_nll(target.score_model(process), process, x, rtol=1e-7, atol=1e-7)
    exact = -target.log_prob_t(x, process.t_min, process)
    assert float((res.nll - exact).abs().max()) < 1e-3


def test_hutchinson_nll_is_unbiased():
    # 4 points, each repeated 400 times with its own probe, fixed-step RK4: the trajectory does
    # not depend on the probes, so E[NLL_hutch] equals the exact-trace NLL on the same grid
    target, process = MIX3, VP(sch.LinearBeta())
    x = target.sample(4, torch.Generator().manual_seed(2), dtype=F64)
    score = target.score_model(process)
    exact = pf_ode_nll(score, process, x, method="rk4", steps=10)
    reps = 400
    for probe in ("rademacher", "gaussian"):
        hut = pf_ode_nll(
            score, process, x.repeat(reps, 1), method="rk4", steps=10, trace="hutchinson",
            probe=probe, generator=torch.Generator().manual_seed(3),
        )  # fmt: skip
        per = hut.nll.reshape(reps, 4)
        mean, se = per.mean(0), per.std(0) / math.sqrt(reps)
        assert bool(((mean - exact.nll).abs() < 4 * se).all()), (probe, mean, exact.nll, se)
        assert bool((se > 0).all())
    # more probes per point: smaller spread, same mean
    four = pf_ode_nll(
        score, process, x.repeat(reps, 1), method="rk4", steps=10, trace="hutchinson",
        n_probes=4, generator=torch.Generator().manual_seed(4),
    )  # fmt: skip
    assert float(four.nll.reshape(reps, 4).std(0).mean()) < float(per.std(0).mean())


def test_fixed_step_solvers_converge_to_the_adaptive_result():
    target, process = MIX3, VP(sch.LinearBeta())
    x = target.sample(8, torch.Generator().manual_seed(5), dtype=F64)
    score = target.score_model(process)
    ref = pf_ode_nll(score, process, x, rtol=1e-10, atol=1e-10, t_min=1e-2).nll
    errs = {}
    for method, steps in (("rk4", (10, 20, 40)), ("heun", (20, 40, 80))):
        e = []
        for n in steps:
            res = pf_ode_nll(score, process, x, method=method, steps=n, t_min=1e-2)
            e.append(float((res.nll - ref).abs().max()))
            assert res.nfe == n * (4 if method == "rk4" else 2)
        errs[method] = e
        assert e[0] > e[1] > e[2], (method, e)
    assert errs["rk4"][-1] < 1e-5
    # fourth and second order: halving the step divides the error by ≈ 16 and ≈ 4
    assert 10 < errs["rk4"][1] / errs["rk4"][2] < 20
    assert 3.5 < errs["heun"][1] / errs["heun"][2] < 5


def test_error_norms_and_dtypes():
    target, process = ring8(), VP(sch.LinearBeta())
    x = target.sample(200, torch.Generator().manual_seed(6))
    score = target.score_model(process)
    exact = -target.log_prob_t(x.double(), process.t_min, process)
    rms = pf_ode_nll(score, process, x, rtol=1e-4, atol=1e-4, error_norm="rms")
    mx = pf_ode_nll(score, process, x, rtol=1e-4, atol=1e-4)  # default "max"
    assert rms.nll.dtype == torch.float32 and rms.x_T.shape == x.shape
    # the max norm holds every example to the tolerance, the batch RMS only on average
    assert mx.nfe > rms.nfe
    err_rms = float((rms.nll.double() - exact).abs().max())
    err_max = float((mx.nll.double() - exact).abs().max())
    assert err_max < err_rms and err_max < 5e-3


def test_per_example_steps_meet_the_exact_nll_with_fewer_evaluations():
    # the benchmark's setting (benchmarks/likelihood_bench.py) on 1000 points: ring8, Song's VP,
    # t_min = 1e-5, float32, the default rtol = atol = 1e-5 and the process's own prior (whose
    # mismatch with p_T, ≤ 3.6e-4 nats here, is part of the error). Sharing the steps holds every
    # example to the step the hardest one needs at each time; with its own steps an example
    # stops refining once its own error is within tolerance. Measured: max norm 146 calls of
    # 1000 examples, 2.5e-4 nats at worst; per example 122 calls, 76.6 evaluations per example,
    # 4.9e-4 nats at worst.
    target, process = ring8(), VP(sch.LinearBeta(), t_min=1e-5)
    x = target.sample(1000, torch.Generator().manual_seed(10))
    exact = -target.log_prob_t(x.double(), process.t_min, process)
    score = target.score_model(process)
    shared = pf_ode_nll(score, process, x)
    own = pf_ode_nll(score, process, x, error_norm="per_example")
    assert own.nll.dtype == torch.float32 and own.x_T.shape == x.shape
    err_own = float((own.nll.double() - exact).abs().max())
    err_shared = float((shared.nll.double() - exact).abs().max())
    assert err_own < 1e-3 and err_shared < 1e-3, (err_own, err_shared)
    assert shared.nfe_per_example == shared.nfe
    assert own.nfe < shared.nfe and own.nfe_per_example < 0.65 * shared.nfe, (own, shared.nfe)
    torch.testing.assert_close(own.nll, -(own.prior_log_prob + own.delta_log_prob))


def test_per_example_solver_with_each_tableau_hutchinson_and_images():
    target, process = ring8(), VP(sch.LinearBeta())
    score = target.score_model(process)
    x = target.sample(8, torch.Generator().manual_seed(11), dtype=F64)
    ref = pf_ode_nll(score, process, x, rtol=1e-10, atol=1e-10, t_min=1e-2).nll
    # dopri8 skips the divergence at four stages of thirteen; adaptive Heun has no FSAL stage
    for method, tol, bound in (("dopri8", 1e-6, 1e-6), ("adaptive_heun", 1e-4, 2e-3)):
        res = pf_ode_nll(
            score, process, x, method=method, rtol=tol, atol=tol, t_min=1e-2,
            error_norm="per_example",
        )  # fmt: skip
        assert float((res.nll - ref).abs().max()) < bound, method
        assert res.nfe_per_example <= res.nfe
    # Hutchinson: each example keeps its own probes when the batch thins out, so the solve
    # agrees with the shared-step one on the same probes (a different ODE from the exact trace's)
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    kw = {"trace": "hutchinson", "rtol": 1e-8, "atol": 1e-8, "t_min": 1e-2}
    a = pf_ode_nll(score, process, x, generator=g(), **kw)
    b = pf_ode_nll(score, process, x, generator=g(), error_norm="per_example", **kw)
    torch.testing.assert_close(b.nll, a.nll, rtol=0, atol=1e-6)
    assert float((a.nll - ref).abs().max()) > 1e-3  # the probes do change the answer

    def img_score(y, t):
        return score(y.reshape(y.shape[0], 2), t).reshape(y.shape)

    flat = pf_ode_nll(score, process, x, error_norm="per_example")
    img = pf_ode_nll(img_score, process, x.reshape(8, 1, 2, 1), error_norm="per_example")
    assert img.x_T.shape == (8, 1, 2, 1)
    torch.testing.assert_close(img.nll, flat.nll)


def test_per_example_solver_stops_on_a_non_finite_score():
    target, process = ring8(), VP(sch.LinearBeta())
    score = target.score_model(process)
    x = target.sample(4, torch.Generator().manual_seed(12), dtype=F64)

    def late_nan(y, t):
        return torch.where(t[:, None] > 0.1, float("nan"), score(y, t))

    with pytest.raises(NonFinite, match="underflow"):
        pf_ode_nll(late_nan, process, x, error_norm="per_example")
    with pytest.raises(NonFinite, match="not finite"):
        pf_ode_nll(lambda y, t: score(y, t) * math.nan, process, x, error_norm="per_example")


def test_image_shaped_input():
    target, process = MIX3, VP(sch.LinearBeta())
    score = target.score_model(process)

    def img_score(x, t):
        return score(x.reshape(x.shape[0], 3), t).reshape(x.shape)

    x = target.sample(6, torch.Generator().manual_seed(7), dtype=F64)
    flat = pf_ode_nll(score, process, x, method="rk4", steps=10)
    img = pf_ode_nll(img_score, process, x.reshape(6, 1, 3, 1), method="rk4", steps=10)
    assert img.x_T.shape == (6, 1, 3, 1) and img.dim == 3
    torch.testing.assert_close(img.nll, flat.nll)


def test_invalid_arguments():
    target, process = ring8(), VP(sch.LinearBeta())
    score = target.score_model(process)
    x = target.sample(2, torch.Generator().manual_seed(0), dtype=F64)
    for kw in (
        {"method": "rk45"},
        {"trace": "sketch"},
        {"error_norm": "l1"},
        {"t_min": 1.5},
        {"method": "rk4", "steps": 0},
        {"rtol": 0.0},
    ):
        with pytest.raises(InvalidParameter):
            pf_ode_nll(score, process, x, **kw)
    with pytest.raises(InvalidParameter):  # β(T) = ∞ for the unclipped cosine schedule
        pf_ode_nll(score, VP(sch.CosineBeta(clip_max=None)), x)


# --------------------------------------------------------------------------------------------
# bits per dimension and dequantisation
# --------------------------------------------------------------------------------------------


def test_bits_per_dim_offsets_by_hand():
    D = 5
    nll = torch.tensor([3 * D * math.log(2)])  # 3 bits per dimension of continuous density
    assert float(bits_per_dim(nll, D, data_range=None)) == pytest.approx(3.0)
    assert float(bits_per_dim(nll, D, data_range="[0,1]")) == pytest.approx(11.0)
    assert float(bits_per_dim(nll, D, data_range="[-1,1]")) == pytest.approx(10.0)
    # the uniform density on the data cube is the uniform law on the 256 levels: 8 bits
    assert float(bits_per_dim(0.0, D, data_range="[0,1]")) == pytest.approx(8.0)
    # on [−1, 1]^D the uniform density is 2^{−D}, nll = D ln 2: again 8 bits
    assert float(bits_per_dim(D * math.log(2), D, data_range="[-1,1]")) == pytest.approx(8.0)
    assert float(bits_per_dim(0.0, D, data_range="[0,1]", levels=16)) == pytest.approx(4.0)
    with pytest.raises(InvalidParameter):
        bits_per_dim(nll, D, data_range="[0,255]")


@pytest.mark.parametrize(("data_range", "lo", "hi"), [("[0,1]", 0.0, 1.0), ("[-1,1]", -1.0, 1.0)])
def test_bits_per_dim_of_a_result(data_range, lo, hi):
    """Bits per dimension of 8-bit data against the exact discrete NLL −log₂ P(k)/D. The model
    is the exact score of a Gaussian target, so its law is the Gaussian p_{t_min}; a cell k of
    the 256-level grid then has P(k) = Π_d [Φ(b_d) − Φ(a_d)] (scipy's normal CDF at the
    standardised cell edges). At cell centres the two differ by the density's curvature over a
    cell, the solver's error and the prior mismatch KL(p_T ‖ π) (β_max = 40 makes m(T) ≈ e⁻¹⁰):
    each below 3·10⁻⁵ bits here (rk4, 200 steps), so the tolerance is 10⁻⁴ bits."""
    from scipy.stats import norm

    width = (hi - lo) / 256
    mean = lo + (hi - lo) * torch.tensor([0.5, 0.4], dtype=F64)
    var = ((hi - lo) * 0.1) ** 2 * torch.tensor([1.0, 2.0], dtype=F64)
    target, process = Gaussian(mean.tolist(), var.tolist()), VP(sch.LinearBeta(0.1, 40.0))
    k = torch.tensor([[128, 102], [100, 130], [150, 90], [110, 70]], dtype=F64)
    res = pf_ode_nll(
        target.score_model(process), process, lo + (k + 0.5) * width, method="rk4", steps=200
    )
    m, v = float(process.scale(process.t_min)), float(process.variance(process.t_min))
    centre, sd = (m * mean).numpy(), (m**2 * var + v).sqrt().numpy()
    a = (lo + k.numpy() * width - centre) / sd
    b = (lo + (k.numpy() + 1) * width - centre) / sd
    log_p = torch.as_tensor(norm.logcdf(b) + np.log1p(-norm.cdf(a) / norm.cdf(b))).sum(1)
    exact_bits = -log_p / (2 * math.log(2))
    assert torch.allclose(res.bits_per_dim(data_range), exact_bits, atol=1e-4, rtol=0)


def test_dequantise():
    g = torch.Generator().manual_seed(0)
    k = torch.arange(256, dtype=torch.uint8).repeat(4)
    y = dequantise(k, g)
    assert y.dtype == torch.float32
    assert bool(((y >= k / 256) & (y < (k.double() + 1) / 256)).all())
    assert torch.equal(torch.floor(y.double() * 256).long(), k.long())
    # from torchvision-style floats k/255, and to [−1, 1)
    y2 = dequantise(k.double() / 255, g, data_range="[0,1]")
    assert torch.equal(torch.floor(y2 * 256).long(), k.long())
    y3 = dequantise(2 * k.double() / 255 - 1, g, data_range="[-1,1]")
    assert bool((y3 >= -1).all() and (y3 < 1).all())
    assert torch.equal(torch.floor((y3 + 1) / 2 * 256).long(), k.long())
    # uniform within each cell: the fractional parts have mean ½
    frac = y2 * 256 - k.double()
    assert abs(float(frac.mean()) - 0.5) < 0.05
    with pytest.raises(InvalidParameter):
        dequantise(torch.tensor([1.5]), g)
    with pytest.raises(InvalidParameter):
        dequantise(k, g, data_range="[0,255]")
