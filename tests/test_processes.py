"""Forward processes against independent truth: ODE solves of the marginal equations
(m' = f m, (s²)' = 2 f s² + g²) and Monte Carlo of a fine Euler–Maruyama simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

from scorelab import schedules as sch
from scorelab.errors import InvalidParameter
from scorelab.processes import EDM, VE, VP, SubVP

from .conftest import interior_times


def test_marginal_coefficients_solve_their_odes(process):
    f = lambda t: float(process.drift_coef(torch.tensor(t, dtype=torch.float64)))  # noqa: E731
    g2 = lambda t: float(process.diffusion2(torch.tensor(t, dtype=torch.float64)))  # noqa: E731

    def rhs(t, y):
        m, v = y
        return [f(t) * m, 2 * f(t) * v + g2(t)]

    times = interior_times(process).numpy()
    sol = solve_ivp(
        rhs,
        (0.0, float(times[-1])),
        [1.0, 0.0],
        t_eval=times,
        rtol=1e-12,
        atol=1e-14,
        method="DOP853",
    )
    m_ode, v_ode = sol.y
    t = torch.from_numpy(times)
    assert np.allclose(process.scale(t).numpy(), m_ode, rtol=1e-8, atol=1e-12)
    scale = max(1.0, float(process.variance(t).max()))
    assert np.allclose(process.variance(t).numpy(), v_ode, rtol=1e-7, atol=1e-12 * scale)


def test_boundary_values_and_monotonicity(process):
    """docs/theory.md §5.4: m(0) = 1, s(0) = 0, m non-increasing, s increasing."""
    assert float(process.scale(0.0)) == 1.0
    assert float(process.std(0.0)) == 0.0
    assert float(process.sigma(0.0)) == 0.0
    t = torch.linspace(0, process.T, 200, dtype=torch.float64)
    m, s = process.scale(t), process.std(t)
    assert torch.all(m[1:] <= m[:-1]) and torch.all(s[1:] > s[:-1])
    assert torch.isfinite(s).all() and not torch.isnan(process.sigma(t)).any()


def test_sigma_is_std_over_scale_and_inverts_exactly(process):
    t = interior_times(process)
    sig = process.sigma(t)
    assert torch.allclose(sig, process.std(t) / process.scale(t), rtol=1e-10)
    assert torch.allclose(process.t_of_sigma(sig), t, rtol=1e-9, atol=0)


def _simulate_forward(processes, x0: float, n: int, steps: int, seed: int):
    """Euler–Maruyama of dX = f X dt + g dW from X_0 = x0 (the independent truth), one row per
    process. Every row is driven by the same N(0, 1) draws, as separate runs from the same
    seed would be, so the draws, most of the cost, are made once for all rows."""
    g = torch.Generator().manual_seed(seed)
    x = torch.full((len(processes), n), x0, dtype=torch.float64)
    grid = torch.stack([torch.linspace(0, p.T, steps + 1, dtype=torch.float64) for p in processes])
    f = torch.stack([p.drift_coef(row) for p, row in zip(processes, grid, strict=True)])
    g2 = torch.stack([p.diffusion2(row) for p, row in zip(processes, grid, strict=True)])
    f, g2, h = f[:, :, None], g2[:, :, None], torch.diff(grid, dim=1)[:, :, None]
    for k in range(steps):
        noise = torch.randn(n, generator=g, dtype=torch.float64)
        x = x + f[:, k] * x * h[:, k] + (g2[:, k] * h[:, k]).sqrt() * noise
    return x


MARGINAL_CASES = {
    "vp": lambda: VP(sch.LinearBeta(), sigma_inf=1.5),
    "subvp": lambda: SubVP(sch.ParametricBeta(a=2.0)),
    "ve": lambda: VE(sch.GeometricSigma(sigma_min=0.01, sigma_max=5.0)),
    "edm": lambda: EDM(sch.EDMSigma(sigma_max=3.0)),
}
MARGINAL_N, MARGINAL_X0 = 20_000, 1.3


@pytest.fixture(scope="module")
def forward_simulations():
    """{case: (process, X_T)}, simulated together (once per module and xdist worker)."""
    processes = [make() for make in MARGINAL_CASES.values()]
    # 5 000 Euler steps (was 10 000; half the cost): the scheme's own O(h) variance bias, from
    # its exact moment recursion, is ≤ 1.3e-3·v for these four (VE the largest), inside the
    # 2e-3·v allowance of the test; n, hence the 4-standard-error power, is unchanged.
    x = _simulate_forward(processes, MARGINAL_X0, MARGINAL_N, steps=5_000, seed=1)
    return dict(zip(MARGINAL_CASES, zip(processes, x, strict=True), strict=True))


@pytest.mark.parametrize("case", list(MARGINAL_CASES))
def test_marginal_moments_match_euler_maruyama(case, forward_simulations):
    process, x = forward_simulations[case]
    n, x0 = MARGINAL_N, MARGINAL_X0
    m, v = float(process.scale(process.T)), float(process.variance(process.T))
    se_mean, se_var = math.sqrt(v / n), v * math.sqrt(2 / n)
    assert abs(float(x.mean()) - m * x0) < 4 * se_mean
    assert abs(float(x.var()) - v) < 4 * se_var + 2e-3 * v  # + the O(h) Euler bias


def test_perturb_images_and_per_example_times():
    process = VP(sch.CosineBeta(clip_max=20.0))
    x0 = torch.randn(4, 3, 5, 5, dtype=torch.float64)
    noise = torch.randn_like(x0)
    t = torch.tensor([0.0, 0.2, 0.5, 1.0], dtype=torch.float64)
    xt = process.perturb(x0, t, noise)
    for i in range(4):
        expected = process.scale(t[i]) * x0[i] + process.std(t[i]) * noise[i]
        assert torch.allclose(xt[i], expected, rtol=1e-14)
    assert torch.allclose(process.drift(x0, t)[2], process.drift_coef(t[2]) * x0[2])


def test_sample_marginal_refuses_times_outside_the_interval():
    process = VP(sch.LinearBeta())
    with pytest.raises(InvalidParameter, match=r"t: is outside"):
        process.sample_marginal(torch.zeros(3, 2), 1.5)
    with pytest.raises(InvalidParameter, match="t"):
        process.sample_marginal(torch.zeros(3, 2), torch.tensor([0.1, -0.2, 0.3]))


def test_prior_log_prob_against_torch_distributions(process):
    x = torch.randn(6, 3, dtype=torch.float64) * 2
    std = torch.tensor(process.prior_std, dtype=torch.float64)
    ref = torch.distributions.Normal(torch.zeros_like(std), std).log_prob(x).sum(1)
    assert torch.allclose(process.prior_log_prob(x), ref, rtol=1e-12)
    g = torch.Generator().manual_seed(0)
    draws = process.prior_sample((40_000, 1), g, dtype=torch.float64)
    assert float(draws.std()) == pytest.approx(process.prior_std, rel=0.02)


def test_vp_prior_is_the_marginal_at_T_for_cosine():
    process = VP(sch.CosineBeta(clip_max=None), sigma_inf=2.0)
    assert float(process.scale(1.0)) == 0.0
    assert float(process.std(1.0)) == pytest.approx(2.0)


def test_process_rejects_mismatched_schedule():
    with pytest.raises(InvalidParameter, match="β-schedule"):
        VP(sch.GeometricSigma())
    with pytest.raises(InvalidParameter, match="σ-schedule"):
        VE(sch.LinearBeta())
    with pytest.raises(InvalidParameter, match="t_min"):
        VP(sch.LinearBeta(), t_min=2.0)


def test_edm_default_stopping_time_is_sigma_min():
    assert EDM().t_min == pytest.approx(0.002)
    ve = VE(sch.GeometricSigma(0.01, 50.0))
    assert float(ve.sigma(ve.t_min)) == pytest.approx(0.01, rel=1e-12)
