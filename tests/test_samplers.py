"""Samplers against exact truth: the Gaussian recursions of docs/theory.md §5 (oracles module),
the exact probability-flow map, convergence orders, per-sample seeding and finiteness."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from scorelab import oracles
from scorelab import schedules as sch
from scorelab.errors import InvalidParameter
from scorelab.grids import TimeGrid
from scorelab.processes import EDM, VE, VP, SubVP
from scorelab.registry import entries, names
from scorelab.sampling import generate
from scorelab.targets import Gaussian, ring8

SAMPLERS = {name: e.obj for name, e in entries("sampler").items()}

F64 = torch.float64
LAM = np.array([0.5, 0.05, 2.0])
MU = np.array([1.0, -0.5, 0.3])
TARGET = Gaussian(mean=MU.tolist(), cov=LAM.tolist())

PROCS = {
    "vp": VP(sch.LinearBeta()),
    "subvp": SubVP(sch.LinearBeta()),
    "ve": VE(sch.GeometricSigma(0.01, 20.0)),
    "edm": EDM(),
    "vp-cosine": VP(sch.CosineBeta(clip_max=50.0), sigma_inf=1.3),
}


def _run(kind, proc, grid, n, seed=1, **params):
    return generate(
        TARGET.score_model(proc),
        proc,
        (3,),
        sampler=kind,
        grid=grid,
        n=n,
        seed=seed,
        dtype=F64,
        **params,
    )


@pytest.mark.parametrize(
    ("kind", "proc", "params"),
    [
        ("euler_maruyama", "vp", {}),
        ("euler_maruyama", "vp", {"eval_point": "right"}),
        ("euler_maruyama", "ve", {}),
        ("euler_maruyama", "edm", {"eval_point": "right"}),
        ("euler_maruyama", "subvp", {}),
        ("exponential_integrator", "vp", {}),
        ("exponential_integrator", "vp-cosine", {}),
        ("ddim", "vp", {"eta": 1.0}),
        ("ddim", "edm", {"eta": 0.5}),
    ],
)
def test_stochastic_samplers_match_exact_gaussian_recursions(kind, proc, params):
    """10⁵ samples: mean and variance per direction within 5 Monte Carlo standard errors."""
    p = PROCS[proc]
    grid = TimeGrid("edm" if proc == "edm" else "uniform", steps=20)
    x = _run(kind, p, grid, 100_000, **params).samples.numpy()
    mean, var = oracles.sampler_moments(kind, p, grid.times(p), LAM, MU, **params)
    n = x.shape[0]
    assert np.all(np.abs(x.mean(0) - mean) < 5 * np.sqrt(var / n))
    assert np.all(np.abs(x.var(0) - var) < 5 * var * np.sqrt(2 / n))
    # and the discrete law differs from the target by more than Monte Carlo noise would hide
    # only when the grid is coarse: the recursion is not the target law itself
    assert np.all(np.isfinite(mean)) and np.all(var > 0)


@pytest.mark.parametrize("proc", list(PROCS))
@pytest.mark.parametrize(("kind", "params"), [("ode_euler", {}), ("heun", {}), ("ddim", {})])
def test_deterministic_samplers_equal_their_exact_affine_maps(kind, proc, params):
    p = PROCS[proc]
    grid = TimeGrid("edm", steps=12)
    g = torch.Generator().manual_seed(0)
    xT = p.prior_std * torch.randn(50, 3, generator=g, dtype=F64)
    res = SAMPLERS[kind](TARGET.score_model(p), p, grid, xT, **params)
    M, c = oracles.affine_flow(kind, p, grid.times(p), LAM, MU, **params)
    assert np.allclose(res.x.numpy(), M * xT.numpy() + c, rtol=1e-10, atol=1e-10)
    assert res.nfe == (24 if kind == "heun" else 12)


def test_oracles_agree_with_the_continuous_limits():
    """Two independent derivations: the discrete recursions converge to the continuous exact
    laws (reverse SDE by quadrature; PF-ODE flow map) as the grid is refined."""
    p = VP(sch.LinearBeta())
    times = TimeGrid("uniform", steps=4000).times(p)
    mean, var = oracles.sampler_moments("euler_maruyama", p, times, LAM, MU)
    mean_c, var_c = oracles.reverse_sde_exact(p, p.T, p.t_min, LAM, MU)
    assert np.allclose(mean, mean_c, atol=3e-3) and np.allclose(var, var_c, rtol=3e-3)
    M, c = oracles.affine_flow("heun", p, TimeGrid("uniform", steps=1600).times(p), LAM, MU)
    x = np.array([0.3, -1.0, 2.0])
    assert np.allclose(M * x + c, oracles.pf_ode_exact(p, p.T, p.t_min, LAM, MU, x), atol=5e-6)
    # with exact score and continuous time, the reverse SDE from the exact marginal at T lands
    # on the exact marginal at t_min
    m_T, v_T = float(p.scale(p.T)), float(p.variance(p.T))
    mean_x, var_x = oracles.reverse_sde_exact(
        p, p.T, p.t_min, LAM, MU, m_T * MU, m_T**2 * LAM + v_T
    )
    m1, v1 = float(p.scale(p.t_min)), float(p.variance(p.t_min))
    assert np.allclose(mean_x, m1 * MU, atol=1e-10) and np.allclose(var_x, m1**2 * LAM + v1)


@pytest.mark.parametrize(
    ("kind", "order", "steps"),
    [
        ("ode_euler", 1, (40, 80, 160, 320)),
        ("heun", 2, (40, 80, 160, 320)),
        ("dpmpp_2m", 2, (40, 80, 160, 320)),
        ("rk4", 4, (10, 20, 40, 80)),
    ],
)
def test_convergence_orders_on_the_gaussian_flow(kind, order, steps):
    p = VP(sch.LinearBeta(), t_min=0.05)
    g = torch.Generator().manual_seed(0)
    xT = torch.randn(20, 3, generator=g, dtype=F64)
    exact = oracles.pf_ode_exact(p, p.T, p.t_min, LAM, MU, xT.numpy())
    errors = []
    for n in steps:
        res = SAMPLERS[kind](TARGET.score_model(p), p, TimeGrid("uniform", steps=n), xT)
        errors.append(float(np.abs(res.x.numpy() - exact).max()))
    slope = -np.polyfit(np.log(steps), np.log(errors), 1)[0]
    assert abs(slope - order) < 0.2, (errors, slope)


@pytest.mark.parametrize("kind", sorted(set(SAMPLERS) - {"dopri5"}))
def test_same_seed_same_sample_whatever_the_batch_size(kind):
    p = PROCS["vp"] if kind == "exponential_integrator" else PROCS["edm"]
    grid = TimeGrid("edm", steps=6)
    runs = [_run(kind, p, grid, 700, seed=3, batch_size=b).samples for b in (256, 512, None)]
    assert torch.equal(runs[0], runs[1]) and torch.equal(runs[0], runs[2])
    sub = _run(kind, p, grid, 300, seed=3).samples
    assert torch.equal(sub, runs[0][:300])
    other = _run(kind, p, grid, 300, seed=4).samples
    assert not torch.equal(sub, other)


def test_dopri5_reaches_the_exact_flow_and_reports_nfe():
    p = VE(sch.GeometricSigma(0.01, 20.0))
    xT = torch.randn(10, 3, generator=torch.Generator().manual_seed(0), dtype=F64) * 20
    res = SAMPLERS["dopri5"](TARGET.score_model(p), p, TimeGrid(steps=1), xT, rtol=1e-8, atol=1e-8)
    exact = oracles.pf_ode_exact(p, p.T, p.t_min, LAM, MU, xT.numpy())
    assert np.allclose(res.x.numpy(), exact, atol=1e-5)
    assert res.nfe > 10


def test_edm_stochastic_and_pc_sample_the_target_with_many_steps():
    """With fine grids both land near the exact law at t_min (tolerance = MC noise + the
    discretisation, measured loose on purpose)."""
    p = EDM()
    m1v = float(p.variance(p.t_min))
    for kind, params, steps in (
        ("edm_stochastic", {"s_churn": 40.0}, 64),
        ("pc", {"predictor": "euler_maruyama", "snr": 0.16}, 100),
    ):
        x = _run(kind, p, TimeGrid("edm", steps=steps), 20_000, **params).samples.numpy()
        assert np.allclose(x.mean(0), MU, atol=0.05), kind
        assert np.allclose(x.var(0), LAM + m1v, rtol=0.08), kind


@pytest.mark.parametrize("proc", list(PROCS))
@pytest.mark.parametrize("grid_kind", names("grid"))
def test_every_sampler_is_finite_down_to_sigma_zero(proc, grid_kind):
    p = PROCS[proc]
    target = ring8()
    score = target.score_model(p)
    grid = TimeGrid(grid_kind, steps=6, final="denoise")
    for kind, fn in SAMPLERS.items():
        if kind == "exponential_integrator" and p.kind != "vp":
            continue
        x = p.prior_sample((64, 2), torch.Generator().manual_seed(0), dtype=torch.float32)
        out = fn(score, p, grid, x, noise=torch.Generator().manual_seed(1))
        assert torch.isfinite(out.x).all(), (kind, grid_kind, proc)


def test_callback_sees_every_step():
    p, seen = PROCS["vp"], []
    grid = TimeGrid("uniform", steps=5, final="denoise")
    x = torch.randn(4, 3, dtype=F64)
    SAMPLERS["heun"](
        TARGET.score_model(p),
        p,
        grid,
        x,
        callback=lambda k, t, x, d: seen.append((k, t, x.shape, d.shape)),
    )
    assert [s[0] for s in seen] == [0, 1, 2, 3, 4, 5] and seen[-1][1] == 0.0


def test_grids():
    p = VP(sch.LinearBeta())
    for kind in names("grid"):
        t = TimeGrid(kind, steps=10).times(p)
        assert tuple(t.shape) == (11,) and float(t[0]) == 1.0 and float(t[-1]) == p.t_min
        assert torch.all(t[1:] < t[:-1])
    s = p.sigma(TimeGrid("edm", steps=10, rho=7.0).times(p))
    rho_spaced = s ** (1 / 7)
    assert torch.allclose(
        rho_spaced[1:] - rho_spaced[:-1], (rho_spaced[1] - rho_spaced[0]).expand(10), rtol=1e-8
    )
    geo = p.sigma(TimeGrid("geometric", steps=10).times(p))
    assert torch.allclose(geo[1:] / geo[:-1], (geo[1] / geo[0]).expand(10), rtol=1e-8)
    assert torch.allclose(
        TimeGrid("logsnr", steps=10).times(p), TimeGrid("geometric", steps=10).times(p)
    )
    for kind in names("grid"):
        with pytest.raises(InvalidParameter, match="coefficients are infinite"):
            TimeGrid(kind).times(VP(sch.CosineBeta(clip_max=None)))
    assert TimeGrid("uniform", t_max=0.99).times(VP(sch.CosineBeta(clip_max=None))).isfinite().all()
    with pytest.raises(InvalidParameter, match="must be > 0"):
        TimeGrid("geometric", t_min=0.0).times(p)


def test_bad_sampler_inputs():
    p = PROCS["ve"]
    with pytest.raises(InvalidParameter, match="derived for the vp process"):
        _run("exponential_integrator", p, TimeGrid(steps=3), 10)
    with pytest.raises(InvalidParameter, match="is not a registered sampler"):
        _run("euler", p, TimeGrid(steps=3), 10)
    with pytest.raises(InvalidParameter, match="eta: is not a parameter of sampler 'heun'"):
        _run("heun", p, TimeGrid(steps=3), 10, eta=1.0)
    with pytest.raises(InvalidParameter, match="eval_point"):
        _run("euler_maruyama", p, TimeGrid(steps=3), 10, eval_point="middle")
    assert math.isfinite(_run("euler_maruyama", p, TimeGrid(steps=3), 10).samples.sum())
