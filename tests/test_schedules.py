"""Schedules against independent truth: scipy quadrature, finite differences, closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.integrate import quad

from scorelab import schedules as sch
from scorelab.errors import InvalidParameter

BETA_SCHEDULES = [
    sch.LinearBeta(),
    sch.LinearBeta(beta_min=0.0, beta_max=5.0, T=2.0),
    sch.ParametricBeta(a=4.0),
    sch.ParametricBeta(a=-10.0),
    sch.ParametricBeta(a=50.0),
    sch.ParametricBeta(a=-50.0),
    sch.ParametricBeta(a=1e-9),
    sch.ParametricBeta(a=0.0),
    sch.CosineBeta(clip_max=None),
    sch.CosineBeta(clip_max=20.0, T=2.0, variance=2.0),
    sch.ConstantBeta(2.0, T=3.0),
    sch.CallableBeta(lambda t: 0.1 + 19.9 * t**2),
]


def _quad(f, t):
    val, _ = quad(f, 0.0, t, epsabs=0.0, epsrel=1e-13, limit=500)
    return val


@pytest.mark.parametrize("s", BETA_SCHEDULES, ids=repr)
def test_beta_integrals_match_quadrature(s):
    beta = lambda u: float(s.beta(torch.tensor(u, dtype=torch.float64)))  # noqa: E731
    for t in [1e-5 * s.T, 0.1 * s.T, 0.5 * s.T, 0.9 * s.T]:
        B = float(s.integral(torch.tensor(t, dtype=torch.float64)))
        B2 = float(s.integral_sq(torch.tensor(t, dtype=torch.float64)))
        assert B == pytest.approx(_quad(beta, t), rel=1e-8)
        assert B2 == pytest.approx(_quad(lambda u: beta(u) ** 2, t), rel=1e-8)


@pytest.mark.parametrize("s", BETA_SCHEDULES, ids=repr)
def test_inverse_integral(s):
    t = torch.tensor([0.0, 1e-7, 1e-3, 0.2, 0.7, 0.99], dtype=torch.float64) * s.T
    back = s.inverse_integral(s.integral(t))
    assert torch.allclose(back, t, rtol=1e-9, atol=1e-14 * s.T)


@pytest.mark.parametrize("a", [-50.0, -10.0, -1.0, 0.0, 1e-7, 3.0, 10.0, 50.0])
def test_parametric_endpoints_and_stability(a):
    s = sch.ParametricBeta(a=a, beta_min=0.1, beta_max=20.0)
    for dtype in (torch.float32, torch.float64):
        t = torch.linspace(0, 1, 101, dtype=dtype)
        b = s.beta(t)
        assert b.dtype == dtype
        assert torch.isfinite(b).all() and torch.isfinite(s.integral(t)).all()
        assert torch.all(b[1:] >= b[:-1] - 1e-6)  # non-decreasing
        assert float(b[0]) == pytest.approx(0.1, rel=1e-6)
        assert float(b[-1]) == pytest.approx(20.0, rel=1e-6)


def test_parametric_continuous_through_zero():
    """First order in a (T = 1, Δ = β_max − β_min): β_a − β_lin = Δ·a·t(t−1)/2 and
    B_a − B_lin = Δ·a·(t³/3 − t²/2)/2, derived by hand from the Taylor expansion of e^{at}."""
    t = torch.linspace(0, 1, 11, dtype=torch.float64)
    ref = sch.LinearBeta()
    delta = 19.9
    for a in (1e-9, -1e-9, 1e-6, -1e-6):
        s = sch.ParametricBeta(a=a)
        d_beta = (s.beta(t) - ref.beta(t)) / a
        d_int = (s.integral(t) - ref.integral(t)) / a
        assert torch.allclose(d_beta, delta * t * (t - 1) / 2, atol=1e-5)
        assert torch.allclose(d_int, delta * (t**3 / 3 - t**2 / 2) / 2, atol=1e-5)
        assert torch.allclose(s.integral_sq(t), ref.integral_sq(t), rtol=1e-5)
    exact_zero = sch.ParametricBeta(a=0.0)
    for name in ("beta", "integral", "integral_sq"):
        assert torch.allclose(getattr(exact_zero, name)(t), getattr(ref, name)(t), rtol=1e-14)


def test_parametric_convexity_sign():
    t = torch.linspace(0, 1, 101, dtype=torch.float64)
    for a, sign in ((5.0, 1), (-5.0, -1)):
        b = sch.ParametricBeta(a=a).beta(t)
        second = b[2:] - 2 * b[1:-1] + b[:-2]
        assert torch.all(sign * second > 0)


def test_cosine_matches_nichol_dhariwal_and_beta0():
    s = sch.CosineBeta(s=0.021122, clip_max=None)
    assert float(s.beta(0.0)) == pytest.approx(0.1, rel=1e-3)  # docs/theory.md §2.1
    t = torch.linspace(0, 0.99, 50, dtype=torch.float64)
    theta = lambda u: math.pi / 2 * (0.021122 + u) / 1.021122  # noqa: E731
    m_expected = torch.cos(theta(t)) / math.cos(theta(0.0))
    # under VP with σ∞ = 1, m = exp(−B/2)
    assert torch.allclose(torch.exp(-s.integral(t) / 2), m_expected, rtol=1e-12)
    assert math.isinf(float(s.integral(1.0)))  # B(T) = ∞ without clipping
    assert float(s.beta(torch.tensor(1.0, dtype=torch.float32))) == math.inf


def test_cosine_clip_continuity():
    s = sch.CosineBeta(clip_max=20.0)
    t = torch.linspace(0, 1, 2001, dtype=torch.float64)
    b = s.beta(t)
    assert float(b.max()) == pytest.approx(20.0)
    B = s.integral(t)
    assert torch.all(B[1:] > B[:-1])
    # B' = β across the kink, by central differences
    h = 1e-6
    for u in (0.5, s._t_clip, 0.99):
        fd = (s.integral(u + h) - s.integral(u - h)) / (2 * h)
        assert float(fd) == pytest.approx(float(s.beta(u)), rel=1e-4)


def test_callable_beta_quadrature_accuracy():
    exact = sch.ParametricBeta(a=3.0)
    user = sch.CallableBeta(exact.beta)
    t = torch.tensor([1e-6, 1e-4, 0.01, 0.3, 0.77, 1.0], dtype=torch.float64)
    assert torch.allclose(user.integral(t), exact.integral(t), rtol=1e-8, atol=0)
    assert torch.allclose(user.integral_sq(t), exact.integral_sq(t), rtol=1e-8, atol=0)
    assert torch.allclose(user.inverse_integral(exact.integral(t)), t, rtol=1e-8)


SIGMA_SCHEDULES = [
    sch.GeometricSigma(),
    sch.GeometricSigma(0.002, 80.0, T=2.0),
    sch.EDMSigma(),
    sch.EDMVPSigma(),
    sch.CallableSigma(lambda t: 0.02 * torch.exp(3.0 * t) + t),
]


@pytest.mark.parametrize("s", SIGMA_SCHEDULES, ids=repr)
def test_sigma_schedules(s):
    T = s.T
    t = torch.tensor([1e-8, 1e-4, 0.1, 0.5, 0.9, 1.0], dtype=torch.float64) * T
    sig = s.sigma(t)
    s0 = float(s.sigma(0.0))
    assert torch.allclose(s.increment(t), sig**2 - s0**2, rtol=1e-6, atol=1e-12 * T)
    # dσ²/dt by central differences
    h = 1e-6 * T
    tc = t.clamp(min=2 * h, max=T - 2 * h)
    fd = (s.sigma(tc + h) ** 2 - s.sigma(tc - h) ** 2) / (2 * h)
    assert torch.allclose(s.increment_rate(tc), fd, rtol=1e-5)
    assert torch.allclose(s.t_of_increment(s.increment(t)), t, rtol=1e-9)
    assert torch.allclose(s.t_of_sigma(sig), t, rtol=1e-6)


def test_bad_schedule_parameters_name_the_field():
    cases = [
        (lambda: sch.LinearBeta(beta_min=-1.0), "beta_min"),
        (lambda: sch.LinearBeta(beta_min=5.0, beta_max=1.0), "beta_max"),
        (lambda: sch.ParametricBeta(a=400.0), "a"),
        (lambda: sch.CosineBeta(clip_max=0.01), "clip_max"),
        (lambda: sch.GeometricSigma(sigma_min=1.0, sigma_max=0.5), "sigma_max"),
        (lambda: sch.CallableBeta(lambda t: -t - 1), "beta"),
        (lambda: sch.CallableSigma(lambda t: 1 - t), "sigma"),
        (lambda: sch.ConstantBeta(beta=float("nan")), "beta"),
    ]
    for make, field in cases:
        with pytest.raises(InvalidParameter) as info:
            make()
        assert info.value.field == field


def test_inverse_out_of_range_is_refused():
    with pytest.raises(InvalidParameter, match="sigma"):
        sch.LinearBeta().inverse_integral(1e6)
    with pytest.raises(InvalidParameter, match="sigma"):
        sch.GeometricSigma().t_of_sigma(1e4)


def test_float32_inputs_keep_their_dtype():
    t = torch.linspace(0, 1, 5, dtype=torch.float32)
    for s in [*BETA_SCHEDULES[:4], *SIGMA_SCHEDULES[:3]]:
        fn = s.beta if isinstance(s, sch.BetaSchedule) else s.sigma
        assert fn(t * s.T).dtype == torch.float32


def test_phi_functions_against_series_and_closed_form():
    from scorelab._tensor import phi

    x = torch.tensor([-30.0, -1.0, -0.09, -1e-8, 0.0, 1e-8, 0.05, 0.2, 5.0], dtype=torch.float64)
    import mpmath as mp

    mp.mp.dps = 40
    for k in (1, 2, 3):
        got = phi(k, x)
        for xi, gi in zip(x.tolist(), got.tolist(), strict=True):
            xm = mp.mpf(xi)
            if xi == 0:
                ref = mp.mpf(1) / mp.factorial(k)
            else:
                ref = (mp.e**xm - sum(xm**j / mp.factorial(j) for j in range(k))) / xm**k
            assert gi == pytest.approx(float(ref), rel=1e-13)
    assert np.isfinite(phi(3, torch.tensor([100.0], dtype=torch.float64)).item())


def test_the_cosine_default_is_the_same_in_python_and_in_a_config():
    from scorelab.config import build_schedule

    t = torch.linspace(0, 1, 101, dtype=torch.float64)
    direct, configured = sch.CosineBeta(), build_schedule({"kind": "cosine"})
    assert direct.clip_max == configured.clip_max == sch.COSINE_CLIP
    torch.testing.assert_close(direct.beta(t), configured.beta(t), rtol=0, atol=0)
    torch.testing.assert_close(direct.integral(t), configured.integral(t), rtol=0, atol=0)
    # the cap: β(T) = 20 and B(T) finite; the exact schedule stays available explicitly
    assert float(direct.beta(1.0)) == pytest.approx(20.0) and math.isfinite(direct.integral(1.0))
    exact = build_schedule({"kind": "cosine", "clip_max": None})
    assert math.isinf(float(exact.beta(1.0))) and exact.infinite_from()[0] == 1.0
    assert direct.infinite_from() is None


def test_a_grid_explains_an_infinite_rate_from_the_schedules_own_word():
    """A schedule says where its β is infinite (``infinite_from``); the grid's refusal quotes
    the schedule's fix, whatever the schedule's name."""
    from scorelab.grids import TimeGrid
    from scorelab.processes import VP

    class Hyperbolic(sch.BetaSchedule):
        """β(t) = q/(T − t): infinite at T."""

        kind = "hyperbolic"

        def beta(self, t):
            return 0.5 / (self.T - torch.as_tensor(t, dtype=torch.float64))

        def integral(self, t):
            return -0.5 * torch.log1p(-torch.as_tensor(t, dtype=torch.float64) / self.T)

        def integral_sq(self, t):
            t = torch.as_tensor(t, dtype=torch.float64)
            return 0.25 * (1 / (self.T - t) - 1 / self.T)

        def infinite_from(self):
            return self.T, "lower q below its pole"

    with pytest.raises(InvalidParameter, match="lower q below its pole, or set a grid t_max < 1"):
        TimeGrid("uniform", 10).times(VP(Hyperbolic()))
    with pytest.raises(InvalidParameter, match="set the schedule's clip_max"):
        TimeGrid("uniform", 10).times(VP(sch.CosineBeta(clip_max=None)))
