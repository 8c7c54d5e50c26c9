"""Interpolant processes (rectified flow, trigonometric, any registered (α, σ) pair): the process
contract checked against independent truth — the linear SDE's moment equations by finite
differences, the marginal law by Monte Carlo, the exact inverse t(σ) — plus config errors,
grids that start at t = 1, and the bounds that refuse with their reason."""

from __future__ import annotations

import math

import pytest
import torch

from scorelab import registry
from scorelab.bounds import all_bounds
from scorelab.config import build_process
from scorelab.errors import InvalidParameter, ScorelabError
from scorelab.grids import TimeGrid
from scorelab.interpolants import GeneralInterpolant, InterpolantPair, RectifiedFlow, Trigonometric
from scorelab.targets import Gaussian

F64 = torch.float64


class QuadraticPair(InterpolantPair):
    """α = 1 − t², σ = t: a pair with no closed-form derivative or inverse given, so the
    process runs on the generic autograd derivatives and the Newton inverse."""

    kind = "quadratic_test"

    def alpha(self, t):
        return 1.0 - t**2

    def sigma(self, t):
        return t * 1.0


def processes():
    return [
        ("rectified_flow", RectifiedFlow()),
        ("trigonometric", Trigonometric()),
        ("quadratic", GeneralInterpolant(QuadraticPair())),
    ]


PROCS = processes()
IDS = [n for n, _ in PROCS]
CLOSED = {  # (α, σ, α̇, σ̇) written out for each pair
    "rectified_flow": lambda t: (1 - t, t, -1.0, 1.0),
    "trigonometric": lambda t: (
        math.cos(math.pi * t / 2),
        math.sin(math.pi * t / 2),
        -math.pi / 2 * math.sin(math.pi * t / 2),
        math.pi / 2 * math.cos(math.pi * t / 2),
    ),
    "quadratic": lambda t: (1 - t**2, t, -2 * t, 1.0),
}
TIMES = [0.0, 0.01, 0.3, 0.5, 0.77, 0.99]


@pytest.mark.parametrize("name,p", PROCS, ids=IDS)
def test_coefficients_are_the_pair(name, p):
    for t in TIMES:
        a, s, da, ds = CLOSED[name](t)
        assert float(p.scale(t)) == pytest.approx(a, abs=1e-15)
        assert float(p.std(t)) == pytest.approx(s, abs=1e-15)
        assert float(p.variance(t)) == pytest.approx(s * s, abs=1e-15)
        got = [float(c) for c in p.coefficients(t)]
        assert got == pytest.approx([a, s, da, ds], abs=1e-13)
        if t > 0:
            assert float(p.sigma(t)) == pytest.approx(s / a, rel=1e-13)
    assert p.T == 1.0 and p.prior_std == 1.0
    assert float(p.scale(1.0)) == 0.0 and float(p.std(1.0)) == 1.0  # the prior is exact at T


@pytest.mark.parametrize("name,p", PROCS, ids=IDS)
def test_t_of_sigma_is_the_exact_inverse(name, p):
    t = torch.tensor([0.0, 1e-6, 0.01, 0.3, 0.5, 0.9, 0.999, 1.0], dtype=F64)
    back = p.t_of_sigma(p.sigma(t))
    assert float((back - t).abs().max()) <= 1e-14
    assert float(p.t_of_sigma(torch.tensor(math.inf, dtype=F64))) == 1.0


@pytest.mark.parametrize("name,p", PROCS, ids=IDS)
def test_drift_and_diffusion_satisfy_the_moment_equations(name, p):
    """The linear SDE dX = f X dt + g dW has dm/dt = f m and d(s²)/dt = 2 f s² + g²: checked
    against the pair's m and s by a fourth-order central difference."""
    h = 1e-4

    def d(fn, t):
        return (-fn(t + 2 * h) + 8 * fn(t + h) - 8 * fn(t - h) + fn(t - 2 * h)) / (12 * h)

    for t in [0.05, 0.3, 0.5, 0.8, 0.95]:
        m, v = float(p.scale(t)), float(p.variance(t))
        f, g2 = float(p.drift_coef(t)), float(p.diffusion2(t))
        assert d(lambda u: float(p.scale(u)), t) == pytest.approx(f * m, rel=1e-9)
        assert d(lambda u: float(p.variance(u)), t) == pytest.approx(2 * f * v + g2, rel=1e-9)


@pytest.mark.parametrize("name,p", PROCS, ids=IDS)
def test_marginal_draws_have_the_interpolant_law(name, p):
    """x_t = α x₀ + σ ε by Monte Carlo: mean α x₀, standard deviation σ (n = 2·10⁵, 5 sd)."""
    n, x0 = 200_000, torch.tensor([[1.5, -2.0]], dtype=F64)
    g = torch.Generator().manual_seed(0)
    for t in [0.2, 0.7]:
        a, s, _, _ = CLOSED[name](t)
        xt = p.sample_marginal(x0.expand(n, 2), t, g)
        assert torch.allclose(xt.mean(0), a * x0[0], atol=5 * s / math.sqrt(n))
        assert torch.allclose(xt.std(0), torch.full((2,), s, dtype=F64), rtol=5 / math.sqrt(n))


def test_configs_build_interpolants_and_refuse_what_does_not_fit():
    assert isinstance(build_process({"kind": "rectified_flow"}), RectifiedFlow)
    assert isinstance(build_process({"kind": "trigonometric"}), Trigonometric)
    gen = build_process({"kind": "interpolant", "schedule": {"kind": "trigonometric"}})
    assert gen.kind == "interpolant" and gen.schedule.kind == "trigonometric"
    bad = [
        ({"kind": "rectified_flow", "schedule": {"kind": "linear"}}, "needs an interpolant"),
        ({"kind": "vp", "schedule": {"kind": "rectified_flow"}}, "needs a β-schedule"),
        ({"kind": "rectified_flow", "schedule": {"kind": "trigonometric"}}, "has its own pair"),
        ({"kind": "rectified_flow", "T": 2.0}, "t ∈ [0, 1]"),
        ({"kind": "rectified_flow", "sigma_inf": 2.0}, "sigma_inf"),
    ]
    for cfg, words in bad:
        with pytest.raises(ScorelabError, match=words.replace("[", r"\[").replace("]", r"\]")):
            build_process(cfg)


def test_a_pair_that_is_not_a_forward_process_is_refused():
    class Backwards(InterpolantPair):
        def alpha(self, t):
            return t + 0.0

        def sigma(self, t):
            return 1.0 - t

    class NotMonotone(InterpolantPair):
        def alpha(self, t):
            return 1.0 - 0.5 * t

        def sigma(self, t):
            return torch.sin(3 * math.pi * t) ** 2 + t * 1e-3

    with pytest.raises(InvalidParameter, match="α\\(0\\) = 1"):
        Backwards()
    with pytest.raises(InvalidParameter, match="increasing"):
        NotMonotone()
    with pytest.raises(InvalidParameter, match="interpolant pair"):
        GeneralInterpolant(schedule="rectified_flow")


def test_a_registered_pair_is_a_process_from_yaml():
    @registry.register("schedule", "quadratic_test", family="interpolant", context=("T",))
    class Registered(QuadraticPair):
        pass

    try:
        p = build_process({"kind": "interpolant", "schedule": {"kind": "quadratic_test"}})
        assert float(p.drift_coef(0.5)) == pytest.approx(-2 * 0.5 / 0.75, rel=1e-12)
    finally:
        registry.unregister("schedule", "quadratic_test")


def test_grids_start_at_t_1_in_t_and_below_it_in_sigma():
    rf = RectifiedFlow()
    t = TimeGrid("uniform", steps=4).times(rf)
    assert t.tolist() == pytest.approx([1.0, 0.75025, 0.5005, 0.25075, 0.001])
    with pytest.raises(InvalidParameter, match="t_max < 1"):
        TimeGrid("edm", steps=4).times(rf)
    s = TimeGrid("edm", steps=4, t_max=0.99).times(rf)
    assert float(s[0]) == 0.99 and bool((s[1:] < s[:-1]).all())


@pytest.mark.parametrize("name,p", PROCS[:2], ids=IDS[:2])
def test_bounds_refuse_interpolants_with_their_reason(name, p):
    out = all_bounds(Gaussian(mean=[0.0, 0.0], cov=1.0), p, N=10)
    assert set(out) == {"kl", "w2", "ve", "w1_manifold"}
    for family, terms in out.items():
        assert "refused" in terms, family
        assert p.kind in terms["refused"]
