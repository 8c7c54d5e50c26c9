"""The velocity face (scorelab.velocity): exact conversions between velocity, denoiser, ε, score
and diffusers' flow output; the exact velocity of every registered target with an exact score
against independent truth (the mixture's conditional velocities in closed form, the sphere's
and circle's by quadrature, a Gaussian's flow map by finite differences, and the continuity
equation ∂_t log p_t + ∇·(p_t v)/p_t = 0 by finite differences in t), all in float64; and the
samplers drive a velocity model without a score call."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch

from scorelab import oracles, registry
from scorelab.config import build_target
from scorelab.grids import TimeGrid
from scorelab.interpolants import RectifiedFlow, Trigonometric
from scorelab.models import from_velocity
from scorelab.processes import EDM, VP
from scorelab.samplers import heun, ode_euler
from scorelab.schedules import LinearBeta
from scorelab.targets import Gaussian
from scorelab.velocity import (
    coefficients,
    denoised_from_velocity,
    eps_from_velocity,
    exact_velocity,
    flow_from_velocity,
    native_velocity,
    score_from_velocity,
    velocity_from_denoised,
    velocity_from_eps,
    velocity_from_flow,
    velocity_from_score,
)

F64 = torch.float64
RF, TRIG = RectifiedFlow(), Trigonometric()
PROCESSES = [("rectified_flow", RF), ("trigonometric", TRIG)]
# targets whose defaults need a setting to build
EXAMPLES = {
    "gmm": {"preset": "ring8"},
    "empirical": {"source": {"kind": "gmm", "preset": "ring8"}, "n": 40},
}


def exact_targets():
    out = []
    for name, e in registry.entries("target").items():
        if getattr(e.obj, "has_score", False):
            out.append((name, build_target({"kind": name, **EXAMPLES.get(name, {})}, seed=3)))
    return out


TARGETS = exact_targets()


def _points(target, n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = target.sample(n, g, dtype=F64)
    return x + 0.5 * torch.randn(x.shape, generator=g, dtype=F64)


def _coef(process, t):
    return [float(c) for c in coefficients(process, t)]


# --------------------------------------------------------------------------------------------
# independent truths
# --------------------------------------------------------------------------------------------


def mixture_velocity(target, process, x, t):
    """Σ_k r_k(x) E[α̇X₀ + σ̇ε | x, k], each term the Gaussian conditional velocity
    α̇μ + (α̇αΣ + σ̇σI)(α²Σ + σ²I)⁻¹(x − αμ), from the mixture's parameters."""
    w, means, covs = (v.to(F64) for v in target.gaussian_mixture())
    a, s, da, ds = _coef(process, t)
    eye = torch.eye(x.shape[1], dtype=F64)
    logr, vk = [], []
    for k in range(w.shape[0]):
        C = a**2 * covs[k] + s**2 * eye
        y = x - a * means[k]
        sol = torch.linalg.solve(C, y.T).T
        logr.append(math.log(w[k]) - 0.5 * (y * sol).sum(1) - 0.5 * torch.logdet(2 * math.pi * C))
        vk.append(da * means[k] + sol @ (da * a * covs[k] + ds * s * eye).T)
    r = torch.softmax(torch.stack(logr, 1), 1)
    return torch.einsum("bk,kbd->bd", r, torch.stack(vk))


def empirical_velocity(target, process, x, t):
    """Σ_i r_i(x)(α̇ x_i + σ̇ (x − α x_i)/σ), r_i ∝ exp(−‖x − α x_i‖²/2σ²)."""
    pts = target.finite_points().to(F64)
    a, s, da, ds = _coef(process, t)
    d2 = ((x[:, None, :] - a * pts[None]) ** 2).sum(-1)
    r = torch.softmax(-d2 / (2 * s**2), 1)
    D = r @ pts
    return da * D + ds * (x - a * D) / s


def sphere_velocity(target, process, x, t):
    """The posterior of the point u on the sphere (radius r, in the span Q) given x is von
    Mises–Fisher, ∝ exp(κ ⟨u, â⟩) with κ = α r ‖Qᵀx‖/σ²; E[u] = E[c] â with c = ⟨u, â⟩ of
    density ∝ e^{κc}(1 − c²)^{(k−3)/2} on [−1, 1], integrated by Gauss–Legendre (k = 3) or by
    the trapezoid rule in the angle (circle, k = 2)."""
    Q = target.basis.to(F64)
    k, rad = Q.shape[1], float(target.radius)
    a, s, da, ds = _coef(process, t)
    proj = x @ Q
    norm = proj.norm(dim=1, keepdim=True)
    kappa = (a * rad * norm / s**2).reshape(-1, 1)
    if k == 2:
        theta = torch.linspace(0, 2 * math.pi, 4001, dtype=F64)[:-1]
        c = torch.cos(theta)[None]
        logw = kappa * c
    else:
        nodes, wts = _gauss_legendre(600)
        c = nodes[None]
        logw = kappa * c + torch.log(wts)[None]
        logw = logw + 0.5 * (k - 3) * torch.log1p(-(c**2))
    p = torch.softmax(logw, 1)
    mean_c = (p * c).sum(1, keepdim=True)
    D = rad * mean_c * (proj / norm) @ Q.T
    return da * D + ds * (x - a * D) / s


@functools.cache
def _gauss_legendre(n: int):
    nodes, wts = np.polynomial.legendre.leggauss(n)
    return torch.tensor(nodes, dtype=F64), torch.tensor(wts, dtype=F64)


def continuity_residual(target, process, field, x, t, h=1e-3):
    """∂_t log p_t(x) + ∇·v + v·∇log p_t (0 for the velocity that transports p_t), with ∂_t by
    a sixth-order central difference and ∇·v by autograd."""
    c = [1 / 60, -3 / 20, 3 / 4, 0.0, -3 / 4, 3 / 20, -1 / 60]
    dlogp = sum(
        ck * target.log_prob_t(x, t + (3 - j) * h, process) / h for j, ck in enumerate(c) if ck
    )
    xl = x.clone().requires_grad_(True)
    v = field(xl, t)
    div = sum(
        torch.autograd.grad(v[:, i].sum(), xl, retain_graph=True)[0][:, i]
        for i in range(x.shape[1])
    )
    score = target.score(x, t, process)
    return dlogp + div.detach() + (v.detach() * score).sum(1)


# --------------------------------------------------------------------------------------------
# tests
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("pname,process", [*PROCESSES, ("vp", VP(LinearBeta())), ("edm", EDM())])
def test_conversions_are_exact_inverses(pname, process):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(8, 3, generator=g, dtype=F64)
    v = torch.randn(8, 3, generator=g, dtype=F64)
    T = process.T
    for t in [0.2 * T, 0.5 * T, 0.9 * T]:
        D = denoised_from_velocity(process, x, t, v)
        eps = eps_from_velocity(process, x, t, v)
        score = score_from_velocity(process, x, t, v)
        m, s = float(process.scale(t)), float(process.std(t))
        assert torch.allclose(m * D + s * eps, x, rtol=1e-13, atol=1e-13)  # x = α D + σ ε
        assert torch.allclose(score, -eps / s, rtol=1e-13)
        for back in (
            velocity_from_denoised(process, x, t, D),
            velocity_from_eps(process, x, t, eps),
            velocity_from_score(process, x, t, score),
            velocity_from_flow(process, x, t, flow_from_velocity(process, x, t, v)),
        ):
            assert torch.allclose(back, v, rtol=1e-11, atol=1e-11)
        # the velocity is the PF-ODE drift f x − ½ g² ∇log p_t
        f, g2 = float(process.drift_coef(t)), float(process.diffusion2(t))
        assert torch.allclose(f * x - 0.5 * g2 * score, v, rtol=1e-11, atol=1e-11)


def test_diffusers_flow_output_is_the_rectified_flow_velocity():
    g = torch.Generator().manual_seed(2)
    x, u = torch.randn(5, 2, generator=g, dtype=F64), torch.randn(5, 2, generator=g, dtype=F64)
    for t in [0.0, 0.3, 1.0]:
        assert torch.equal(velocity_from_flow(RF, x, t, u), u)
        assert torch.allclose(denoised_from_velocity(RF, x, t, u), x - t * u, atol=1e-15)
    model = from_velocity(lambda x, t: u, TRIG, convention="flow")
    # trigonometric: v = [(α̇ + σ̇) x + (ασ̇ − σα̇) u]/(α + σ), written out
    t = 0.4
    a, s = math.cos(math.pi * t / 2), math.sin(math.pi * t / 2)
    da, ds = -math.pi / 2 * s, math.pi / 2 * a
    want = ((da + ds) * x + (a * ds - s * da) * u) / (a + s)
    assert torch.allclose(model.velocity(x, t), want, rtol=1e-14)


@pytest.mark.parametrize("pname,process", PROCESSES)
@pytest.mark.parametrize("tname,target", TARGETS, ids=[n for n, _ in TARGETS])
def test_exact_velocity_matches_closed_forms(tname, target, pname, process):
    """Every registered target with an exact score, to 1e-10 in float64, at t up to 1."""
    x = _points(target)
    V = exact_velocity(target, process)
    if target.gaussian_mixture() is not None:
        truth = mixture_velocity
    elif target.finite_points() is not None:
        truth = empirical_velocity
    elif hasattr(target, "basis") and hasattr(target, "radius"):
        truth = sphere_velocity
    else:
        pytest.fail(f"no independent velocity for target '{tname}': add one here")
    for t in [0.1, 0.5, 0.9, 1.0]:
        got, want = V.velocity(x, t), truth(target, process, x, t)
        scale = 1.0 + float(want.abs().max())
        assert float((got - want).abs().max()) <= 1e-10 * scale, (t, got, want)


@pytest.mark.parametrize("pname,process", PROCESSES)
@pytest.mark.parametrize("tname,target", TARGETS, ids=[n for n, _ in TARGETS])
def test_exact_velocity_satisfies_the_continuity_equation(tname, target, pname, process):
    """∂_t log p_t + ∇·v + v·∇log p_t = 0, with ∂_t by finite differences: the velocity
    transports the noised marginals (a sixth-order stencil, h = 10⁻³: error ≲ 10⁻¹⁰)."""
    x = _points(target, n=4, seed=5)
    V = exact_velocity(target, process)
    for t in [0.2, 0.5, 0.8]:
        res = continuity_residual(target, process, V.velocity, x, t)
        scale = 1.0 + float(target.log_prob_t(x, t, process).abs().max())
        assert float(res.abs().max()) <= 1e-9 * scale, (t, res)


@pytest.mark.parametrize("pname,process", [*PROCESSES, ("vp", VP(LinearBeta()))])
def test_gaussian_velocity_is_the_derivative_of_the_exact_flow_map(pname, process):
    """d/dt of the exact PF-ODE map x_t = α μ + √(V_t/V_s)(x_s − α_s μ) (oracles.pf_ode_exact)
    by a sixth-order central difference, at points moved along the flow."""
    lam, mu = np.array([1.0, 0.25]), np.array([1.0, -0.5])
    target = Gaussian(mean=mu.tolist(), cov=lam.tolist())
    V = exact_velocity(target, process)
    xs = _points(target, n=5).numpy()
    h, c = 1e-3, [1 / 60, -3 / 20, 3 / 4, 0.0, -3 / 4, 3 / 20, -1 / 60]
    for t in [0.2, 0.5, 0.9]:
        x_t = oracles.pf_ode_exact(process, 0.5, t, lam, mu, xs)
        fd = sum(
            ck * oracles.pf_ode_exact(process, 0.5, t + (3 - j) * h, lam, mu, xs) / h
            for j, ck in enumerate(c)
            if ck
        )
        got = V.velocity(torch.tensor(x_t), t).numpy()
        assert np.abs(got - fd).max() <= 1e-10 * (1 + np.abs(fd).max()), (t, got, fd)


@pytest.mark.parametrize("sampler", [ode_euler, heun])
def test_samplers_drive_a_velocity_model_without_a_score(sampler):
    """A velocity model is integrated through its velocity: the callable is called once per
    NFE, and the result equals the same run on the model's score where both are finite."""
    target = Gaussian(mean=[1.0, -0.5], cov=[1.0, 0.25])
    V = exact_velocity(target, RF)
    calls = []

    def velocity(x, t):
        calls.append(t)
        return V.velocity(x, t)

    model = from_velocity(velocity, RF)
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(0), dtype=F64)
    grid = TimeGrid("uniform", steps=8, t_max=0.99)
    out = sampler(model, RF, grid, x)
    assert out.nfe == len(calls)
    via_score = sampler(target.score_model(RF), RF, grid, x)
    assert torch.allclose(out.x, via_score.x, rtol=1e-12, atol=1e-12)
    assert native_velocity(target.score_model(RF), RF, x, 0.5) is None  # a score stays a score


def test_exact_velocity_is_finite_at_both_ends():
    target = build_target({"kind": "gmm", "preset": "ring8"})
    x = _points(target)
    for process in (RF, TRIG):
        V = exact_velocity(target, process)
        for t in (0.0, 1.0):
            assert bool(torch.isfinite(V.velocity(x, t)).all())
        # at t = 1 (α = 0) the velocity is α̇ E[X₀] + σ̇ x
        _, _, da, ds = _coef(process, 1.0)
        mean = target.moments()[0].to(F64)
        assert torch.allclose(V.velocity(x, 1.0), da * mean + ds * x, atol=1e-12)
