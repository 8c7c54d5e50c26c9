"""Sampling interpolants: the existing Gaussian oracles (written with m, s, f, g²) apply
unchanged to rectified flow and the trigonometric interpolant; the velocity-form oracles
extend them to t = 1; Monte Carlo agrees with both; the interpolant SDE keeps the exact
marginals; the PF-ODE likelihood of the exact velocity is the exact log-density; a network
with the 'flow' parameterisation is integrated through its native velocity."""

from __future__ import annotations

import math
from itertools import pairwise

import numpy as np
import pytest
import torch

from scorelab import flow_sampling as fs
from scorelab import oracles
from scorelab.config import build_target
from scorelab.grids import TimeGrid
from scorelab.interpolants import RectifiedFlow, Trigonometric
from scorelab.likelihood import pf_ode_nll
from scorelab.networks import build_network
from scorelab.parameterisations import ScoreNetwork
from scorelab.registry import get
from scorelab.sampling import generate
from scorelab.targets import Gaussian
from scorelab.velocity import exact_velocity, has_native_velocity, native_velocity

F64 = torch.float64
LAM, MU = np.array([1.0, 0.25]), np.array([1.0, -0.5])
TARGET = Gaussian(mean=MU.tolist(), cov=LAM.tolist())
PROCESSES = [("rectified_flow", RectifiedFlow()), ("trigonometric", Trigonometric())]
IDS = [n for n, _ in PROCESSES]


def _x(n=256, seed=0):
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(seed), dtype=F64)


def _affine(times, law):
    """(M, c) of a deterministic run from its per-step maps."""
    M, c = np.ones(2), np.zeros(2)
    for t0, t1 in pairwise(times):
        m, cc, q = law(t0, t1)
        assert np.all(q == 0)
        M, c = m * M, m * c + cc
    return M, c


@pytest.mark.parametrize("kind", ["ode_euler", "heun"])
@pytest.mark.parametrize("name,process", PROCESSES, ids=IDS)
def test_the_existing_oracle_gives_the_exact_output_law(name, process, kind):
    """oracles.affine_flow (f and g² of the process) on a grid from t = 0.99: the sampler's
    output is that affine map of its input, to 1e-12."""
    V = exact_velocity(TARGET, process)
    grid = TimeGrid("uniform", steps=12, t_max=0.99)
    times = grid.times(process).tolist()
    M, c = oracles.affine_flow(kind, process, times, LAM, MU)
    x = _x()
    out = get("sampler", kind)(V, process, grid, x).x
    want = torch.as_tensor(M) * x + torch.as_tensor(c)
    assert float((out - want).abs().max()) <= 1e-12
    # the score-model route (f x − ½ g² s) gives the same numbers where both are finite
    out_s = get("sampler", kind)(TARGET.score_model(process), process, grid, x).x
    assert float((out_s - want).abs().max()) <= 1e-12


@pytest.mark.parametrize("kind", ["ode_euler", "heun"])
@pytest.mark.parametrize("name,process", PROCESSES, ids=IDS)
def test_velocity_form_oracle_starts_at_t_1(name, process, kind):
    """From the exact prior at t = 1 (where f, g² are infinite) to t = 0: the velocity-form
    maps (flow_sampling.step_map) against the sampler, and against oracles.step_map on every
    step where the latter is finite; then Monte Carlo of the output moments."""
    V = exact_velocity(TARGET, process)
    times = [1.0, 0.8, 0.55, 0.3, 0.1, 0.02, 0.0]
    for t0, t1 in pairwise(times[1:]):
        a, b = (
            fs.step_map(kind, process, t0, t1, LAM, MU),
            oracles.step_map(kind, process, t0, t1, LAM, MU),
        )
        for u, w in zip(a, b, strict=True):
            assert np.allclose(u, w, rtol=1e-12, atol=1e-14)
    M, c = _affine(times, lambda t0, t1: fs.step_map(kind, process, t0, t1, LAM, MU))
    x = _x(40_000, seed=1)
    out = get("sampler", kind)(V, process, torch.tensor(times, dtype=F64), x).x
    assert float((out - (torch.as_tensor(M) * x + torch.as_tensor(c))).abs().max()) <= 1e-12
    mean, var = fs.sampler_moments(kind, process, times, LAM, MU)
    n = x.shape[0]
    assert np.all(np.abs(out.mean(0).numpy() - mean) <= 5 * np.sqrt(var / n))
    assert np.all(np.abs(out.var(0).numpy() / var - 1) <= 5 * math.sqrt(2 / n))


@pytest.mark.parametrize(
    "name,process,diffusion",
    [(*PROCESSES[0], "sigma"), (*PROCESSES[0], "constant"), (*PROCESSES[1], "sigma")],
    ids=["rectified_flow-sigma", "rectified_flow-constant", "trigonometric-sigma"],
)
def test_interpolant_sde_keeps_the_exact_marginals(name, process, diffusion):
    """Run from the prior at t = 1 to t = 0.4: the exact law of the run (velocity-form oracle)
    approaches the marginal N(αμ, α²λ + σ²) at first order in the step (error ratio ≈ 2 per
    halving), and Monte Carlo of the sampler matches the oracle (n = 4·10⁴, 5 standard errors)."""
    a, s, _, _ = (float(c) for c in process.coefficients(0.4))
    exact_mean, exact_var = a * MU, a**2 * LAM + s**2
    errs = []
    for steps in (20, 40, 80):
        times = np.linspace(1.0, 0.4, steps + 1)
        m, v = fs.sampler_moments("interpolant_sde", process, times, LAM, MU, diffusion=diffusion)
        errs.append(np.abs(m - exact_mean).max() + np.abs(v - exact_var).max())
    assert errs[-1] < 1e-2 and 1.6 < errs[0] / errs[1] < 2.4 and 1.6 < errs[1] / errs[2] < 2.4
    times = torch.linspace(1.0, 0.4, 21, dtype=F64)
    V = exact_velocity(TARGET, process)
    n = 40_000
    out = get("sampler", "interpolant_sde")(
        V,
        process,
        times,
        _x(n, seed=2),
        noise=torch.Generator().manual_seed(3),
        diffusion=diffusion,
    ).x
    m, v = fs.sampler_moments(
        "interpolant_sde", process, times.tolist(), LAM, MU, diffusion=diffusion
    )
    assert np.all(np.abs(out.mean(0).numpy() - m) <= 5 * np.sqrt(v / n))
    assert np.all(np.abs(out.var(0).numpy() / v - 1) <= 5 * math.sqrt(2 / n))


def test_interpolant_sde_with_g2_is_euler_maruyama():
    process = RectifiedFlow()
    for t0, t1 in ((0.9, 0.8), (0.5, 0.3)):
        a = fs.step_map("interpolant_sde", process, t0, t1, LAM, MU, diffusion="g2")
        b = oracles.step_map("euler_maruyama", process, t0, t1, LAM, MU)
        for u, w in zip(a, b, strict=True):
            assert np.allclose(u, w, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("tname", ["gaussian", "ring8"])
@pytest.mark.parametrize("name,process", PROCESSES, ids=IDS)
def test_pf_ode_nll_of_the_exact_velocity_is_the_exact_log_density(tname, name, process):
    """The PF-ODE integrated to t = 1, where the prior N(0, I) is exact: within 10⁻³ nats of
    −log p_{t_min}(x) at the default tolerances, and of −log p₀(x) from t_min = 0."""
    target = TARGET if tname == "gaussian" else build_target({"kind": "gmm", "preset": "ring8"})
    x = target.sample(12, torch.Generator().manual_seed(4), dtype=F64)
    V = exact_velocity(target, process)
    res = pf_ode_nll(V, process, x)
    assert float((res.nll + target.log_prob_t(x, process.t_min, process)).abs().max()) <= 1e-3
    res0 = pf_ode_nll(V, process, x, t_min=0.0)
    assert float((res0.nll + target.log_prob(x)).abs().max()) <= 1e-3


def test_a_flow_network_is_integrated_through_its_velocity():
    process = RectifiedFlow()
    g = torch.Generator().manual_seed(5)
    net = build_network("mlp", (2,), generator=g, width=32, depth=2)
    for p in net.parameters():  # a non-trivial function (the last layer starts at zero)
        torch.nn.init.normal_(p, 0.0, 0.3, generator=g)
    model = ScoreNetwork(net, process, "flow").double()
    x = _x(16, seed=6)
    assert has_native_velocity(model, process)
    for t in (0.0, 0.3, 1.0):
        tt = torch.full((16,), t, dtype=F64)
        u = net(x, torch.full((16,), 4.0 * t - 2.0, dtype=F64))  # c = 4τ − 2, τ = t on RF
        assert torch.allclose(native_velocity(model, process, x, tt), u, rtol=1e-14)
        assert torch.allclose(model.denoise(x, tt), x - t * u, rtol=1e-12, atol=1e-12)
    out = generate(model, process, (2,), sampler="heun", grid=TimeGrid("uniform", steps=5), n=8)
    assert bool(torch.isfinite(out.samples).all()) and out.nfe == 10


def test_stochastic_sampler_runs_from_the_exact_prior():
    process = RectifiedFlow()
    ring = build_target({"kind": "gmm", "preset": "ring8"})
    out = generate(
        exact_velocity(ring, process),
        process,
        (2,),
        sampler="interpolant_sde",
        grid=TimeGrid("uniform", steps=50, final="denoise"),
        n=64,
        seed=1,
    )
    assert bool(torch.isfinite(out.samples).all()) and out.nfe == 51
