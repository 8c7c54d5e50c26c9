"""Error bounds of papers A, C, E against hand-derivable values, closed forms, exact sampler
laws (oracles) and independent quadrature."""

from __future__ import annotations

import math
from itertools import pairwise

import numpy as np
import pytest
import torch
from scipy.integrate import quad

from scorelab.bounds import (
    AssumptionFailed,
    all_bounds,
    ed_asymptotic_edm,
    ed_asymptotic_geometric,
    ed_discrete,
    kl_bound,
    kl_to_stationary,
    log_amplification,
    manifold_w1_bound,
    relative_fisher,
    tune_edm_rho,
    tune_parametric,
    ve_terms,
    w2_bound,
)
from scorelab.bounds.paper_a import w2_integrals
from scorelab.errors import InvalidParameter
from scorelab.grids import TimeGrid
from scorelab.metrics.gaussian import kl_gaussians, w2_gaussians
from scorelab.oracles import sampler_moments
from scorelab.processes import EDM, VE, VP
from scorelab.schedules import ConstantBeta, CosineBeta, GeometricSigma, ParametricBeta
from scorelab.targets import Circle, Empirical, Gaussian, GaussianMixture, Sphere

D, MU, LAM = 10, 1.0, 0.5
A_GRID = (-10.0, -5.0, 0.0, 5.0, 10.0)
N_GRID = (25, 50, 100)


def paper_a_target():
    return Gaussian(MU, LAM, dim=D)


def vp(a: float, sigma_inf: float = 1.0) -> VP:
    return VP(ParametricBeta(a, 0.1, 20.0, 1.0), sigma_inf, t_min=0.0)


def kl_iso_hand(d, mu, lam, s2):
    """(d/2)[λ/σ² + ‖μ‖²/(dσ²) − 1 − ln(λ/σ²)] for N(μ𝟙, λI) vs N(0, σ²I) (docs/theory.md §8.4)."""
    return 0.5 * d * (lam / s2 + mu**2 / s2 - 1 - math.log(lam / s2))


# --- paper A: KL ------------------------------------------------------------------------------


@pytest.mark.parametrize(("N", "expected"), [(100, 6.0), (25, 24.0), (4, 187.5)])
def test_e3_hand_value_and_independent_of_a(N, expected):
    # I = (tr Σ + ‖μ‖²) − 2d + tr Σ⁻¹ = (5 + 10) − 20 + 20 = 15; hβ(T) = 20/N;
    # E3 = 2hβ max(hβ/4, 1)·15: N = 100 → 6, N = 25 → 24, N = 4 (hβ = 5) → 2·5·1.25·15
    tg = paper_a_target()
    assert relative_fisher(tg).value == pytest.approx(15.0, rel=1e-12)
    e3 = [kl_bound(tg, vp(a), N).discretization for a in A_GRID]
    np.testing.assert_allclose(e3, expected, rtol=1e-12)


def test_e1_hand_value_and_decreases_as_integral_grows():
    tg = paper_a_target()
    kl0 = kl_iso_hand(D, MU, LAM, 1.0)
    assert kl_to_stationary(tg).value == pytest.approx(kl0, rel=1e-12)
    rows = []
    for a in np.linspace(-10, 10, 9):
        p = vp(a)
        B_T = quad(lambda t, p=p: float(p.schedule.beta(t)), 0, 1, epsrel=1e-12)[0]
        b = kl_bound(tg, p, 50)
        weak = kl_bound(tg, p, 50, contraction=False).mixing
        assert b.mixing == pytest.approx(kl0 * math.exp(-B_T), rel=1e-8)
        assert weak == pytest.approx(kl0 * math.exp(-B_T / 2), rel=1e-8)
        rows.append((B_T, b.mixing))
    rows.sort()
    e1 = [r[1] for r in rows]
    assert all(x > y for x, y in pairwise(e1))


def test_stationary_target_has_zero_mixing_and_discretisation():
    s = 1.5
    tg = Gaussian(0.0, s**2, dim=4)
    p = VP(ParametricBeta(3.0, 0.1, 20.0, 1.0), s, t_min=0.0)
    assert relative_fisher(tg, s).value == pytest.approx(0.0, abs=1e-12)
    b = kl_bound(tg, p, 20)
    assert b.mixing == pytest.approx(0.0, abs=1e-12)
    assert b.discretization == pytest.approx(0.0, abs=1e-12)
    assert b.total == pytest.approx(0.0, abs=1e-12)
    w = w2_bound(tg, p, 20)
    assert w.mixing == pytest.approx(0.0, abs=1e-12)
    assert w.int_C_beta == pytest.approx(0.0, abs=1e-12)  # C_t ≡ 0 when Σ = σ²I
    assert w.time_regularity == pytest.approx(0.0, abs=1e-12)  # κ1 = κ2 = 0


def test_relative_fisher_and_kl_monte_carlo_match_closed_forms():
    tg = Gaussian([0.5, -1.0, 2.0], [0.3, 1.2, 2.0])
    gen = torch.Generator().manual_seed(1)
    for fn in (relative_fisher, kl_to_stationary):
        exact = fn(tg, 1.3)
        mc = fn(tg, 1.3, n_mc=20000, generator=gen, method="monte_carlo")
        assert exact.method == "closed_form" and mc.method == "monte_carlo"
        assert mc.stderr > 0
        assert abs(mc.value - exact.value) < 4 * mc.stderr


def test_kl_mixture_uses_monte_carlo_and_is_finite():
    tg = GaussianMixture([0.5, 0.5], [[-1.0, 0.0], [1.0, 0.0]], 0.3)
    b = kl_bound(tg, vp(0.0), 50, generator=torch.Generator().manual_seed(0))
    assert b.fisher.method == "monte_carlo" and b.kl_stationary.method == "monte_carlo"
    assert b.total > 0 and math.isfinite(b.total)


def test_approximation_term_for_a_shifted_score_is_exact():
    # s_θ = ∇log p + δ ⇒ E‖s_θ − ∇log p‖² = ‖δ‖² at every t, and Σ_k ΔB_k = B(T):
    # E2 = ‖δ‖² B(T); the W2 ε is ‖δ‖
    tg = paper_a_target()
    p = vp(2.0)
    delta = torch.linspace(-0.2, 0.3, D, dtype=torch.float64)

    def model(x, t):
        return tg.score(x, t, p) + delta

    exact = kl_bound(tg, p, 20, score_model=tg.score_model(p), n_mc=64)
    assert exact.approximation == 0.0
    shifted = kl_bound(tg, p, 20, score_model=model, n_mc=64)
    B_T = float(p.schedule.integral(1.0))
    assert shifted.approximation == pytest.approx(float((delta**2).sum()) * B_T, rel=1e-10)
    via_eps = kl_bound(tg, p, 20, score_error=float(delta.norm()))
    assert via_eps.approximation == pytest.approx(shifted.approximation, rel=1e-10)
    w = w2_bound(tg, p, 20, score_model=model, n_mc=64)
    assert w.epsilon == pytest.approx(float(delta.norm()), rel=1e-10)
    assert w.score_error == pytest.approx(float(delta.norm()) * 1.0 * 20.0, rel=1e-10)


def test_approximation_term_weights_each_step_at_its_left_time():
    # s_θ = ∇log p + t·δ: E‖Δ‖² = t²‖δ‖², so E2 = ‖δ‖² Σ_k [B(T−t_k) − B(T−t_{k+1})](T−t_k)²
    tg = paper_a_target()
    p = vp(-3.0)
    delta = torch.full((D,), 0.1, dtype=torch.float64)
    N = 8

    def model(x, t):
        return tg.score(x, t, p) + float(t) * delta

    r = [1.0 - k / N for k in range(N + 1)]
    B = [float(p.schedule.integral(u)) for u in r]
    hand = float((delta**2).sum()) * sum((B[k] - B[k + 1]) * r[k] ** 2 for k in range(N))
    got = kl_bound(tg, p, N, score_model=model, n_mc=16).approximation
    assert got == pytest.approx(hand, rel=1e-10)


def _exact_sampler_law(p, N, kind):
    times = TimeGrid("uniform", steps=N, t_min=0.0).times(p)
    lam = np.full(D, LAM)
    mu = np.full(D, MU)
    params = {"eval_point": "right"} if kind == "euler_maruyama" else {}
    return sampler_moments(kind, p, times, lam, mu, **params)


@pytest.mark.parametrize("kind", ["exponential_integrator", "euler_maruyama"])
def test_kl_and_w2_bounds_dominate_exact_score_error(kind):
    tg = paper_a_target()
    mu, cov = np.full(D, MU), np.full(D, LAM)
    for a in A_GRID:
        p = vp(a)
        for N in N_GRID:
            mean, var = _exact_sampler_law(p, N, kind)
            kl = kl_gaussians(mu, cov, mean, var)
            w2 = w2_gaussians(mu, cov, mean, var)
            assert kl > 0 and w2 > 0
            assert kl_bound(tg, p, N).total >= kl, (a, N)
            assert w2_bound(tg, p, N).total >= w2, (a, N)


def test_w2_trapezoid_integrals_match_quad():
    tg = Gaussian([1.0, -0.5, 0.2], [0.4, 0.9, 2.5])
    s = 1.2
    p = VP(ParametricBeta(5.0, 0.1, 20.0, 1.0), s, t_min=0.0)
    v, N = s**2, 10
    C0, L0 = 1 / 2.5, 1 / 0.4

    def m2(t):
        return math.exp(-float(p.schedule.integral(t)) / v)

    def beta(t):
        return float(p.schedule.beta(t))

    def C(t):
        return (1 / (m2(t) / C0 + v * (1 - m2(t))) - 1 / v) * beta(t)

    def L(t):
        sm = v * (1 - m2(t))
        return (min(1 / sm if sm > 0 else math.inf, L0 / m2(t)) - 1 / v) * beta(t)

    int_C, calL = w2_integrals(tg, p, N, n_sub=64)
    assert int_C == pytest.approx(quad(C, 0, 1, epsrel=1e-12, limit=200)[0], rel=1e-4)
    ref = [quad(L, j / N, (j + 1) / N, epsrel=1e-12, limit=200)[0] for j in range(N)]
    np.testing.assert_allclose(calL, ref, rtol=1e-4)


# --- refusals and the summary -------------------------------------------------------------------


def test_refusals_are_clear():
    mix = GaussianMixture([0.5, 0.5], [[-1.0, 0.0], [1.0, 0.0]], 0.3)
    with pytest.raises(AssumptionFailed, match="not log-concave"):
        w2_bound(mix, vp(0.0), 50)
    with pytest.raises(AssumptionFailed, match="VP process"):
        kl_bound(paper_a_target(), VE(GeometricSigma()), 50)
    cos = VP(CosineBeta(clip_max=None), t_min=0.0)
    with pytest.raises(AssumptionFailed, match="clip_max"):
        kl_bound(Gaussian(0.0, 0.5, dim=2), cos, 50)
    clipped = VP(CosineBeta(clip_max=20.0), t_min=0.0)
    assert math.isfinite(kl_bound(Gaussian(0.0, 0.5, dim=2), clipped, 50).total)
    with pytest.raises(AssumptionFailed, match="no Lebesgue density"):
        kl_bound(Circle(2), vp(0.0), 50)
    with pytest.raises(AssumptionFailed, match="variance-exploding"):
        ve_terms(paper_a_target(), vp(0.0), torch.linspace(1, 0.1, 5, dtype=torch.float64))
    with pytest.raises(InvalidParameter, match="N"):
        kl_bound(paper_a_target(), vp(0.0), 0)
    with pytest.raises(InvalidParameter, match="score_error"):
        w2_bound(paper_a_target(), vp(0.0), 10, score_error=-1.0)


def test_all_bounds_shape_and_refusals():
    keys = {
        "kl": {"mixing", "approximation", "discretization", "total"},
        "w2": {"mixing", "approx_discretization", "score_error", "time_regularity", "total"},
        "ve": {"initialization", "discretization", "discretization_log", "score", "total"},
    }
    out = all_bounds(paper_a_target(), vp(0.0), 100)
    assert set(out) == {"kl", "w2", "ve", "w1_manifold"}
    assert set(out["kl"]) == keys["kl"] and set(out["w2"]) == keys["w2"]
    assert out["kl"]["total"] == pytest.approx(kl_bound(paper_a_target(), vp(0.0), 100).total)
    assert set(out["ve"]) == {"refused"} and set(out["w1_manifold"]) == {"refused"}
    mix = GaussianMixture([0.5, 0.5], [[-1.0, 0.0], [1.0, 0.0]], 0.3)
    out = all_bounds(mix, EDM(), 18)
    assert set(out["ve"]) == keys["ve"]
    assert "VP" in out["kl"]["refused"] and "VP" in out["w2"]["refused"]
    ou = VP(ConstantBeta(2.0, T=5.0), 1.0, t_min=0.1)
    out = all_bounds(Sphere(3), ou, 500)
    assert out["w1_manifold"]["total"] == pytest.approx(
        manifold_w1_bound(Sphere(3), 0.1, 5.0, 500).total
    )
    assert "density" in out["kl"]["refused"] and "density" in out["w2"]["refused"]


# --- paper C ------------------------------------------------------------------------------------


def test_ve_terms_hand_values():
    lam, d = 0.25, 8
    tg = Gaussian(0.0, lam, dim=d)
    p = VE(GeometricSigma(0.01, 5.0))
    times = TimeGrid("geometric", steps=20).times(p)
    r = ve_terms(tg, p, times, score_error=0.3)
    s2 = 5.0**2 - 0.01**2  # the VE process's noise variance at T is σ(T)² − σ(0)²
    ratio = (lam + s2) / s2
    assert r.initialization == pytest.approx(0.5 * d * (ratio - 1 - math.log(ratio)), rel=1e-8)
    assert r.initialization <= d * lam / (2 * s2)  # the convexity bound used for non-Gaussians
    sig = p.sigma(times).numpy()
    assert r.score == pytest.approx(0.3 * (sig[0] ** 2 - sig[-1] ** 2), rel=1e-12)
    # geometric grid: every ratio is r = (σ_0/σ_N)^{1/N}
    q = (sig[0] / sig[-1]) ** (1 / 20)
    assert r.discretization == pytest.approx(d * 20 * (q**2 - 1) ** 2, rel=1e-10)
    assert r.discretization_log == pytest.approx(d * 20 * (2 * math.log(q)) ** 2, rel=1e-10)
    emp = Empirical(torch.tensor([[1.0, 2.0], [3.0, -1.0]]))
    r = ve_terms(emp, p, times)
    assert r.initialization == pytest.approx((5.0 + 10.0) / 2 / (2 * s2), rel=1e-12)


def test_ed_converges_to_asymptotics():
    d, smin, smax = 3, 0.002, 80.0
    geo = VE(GeometricSigma(smin, smax))
    edm = EDM()
    cases = [(geo, "geometric", None)] + [(edm, "edm", rho) for rho in (3.0, 7.0)]
    for proc, kind, rho in cases:
        errs = []
        for N in (100, 1000, 10000):
            grid = TimeGrid(kind, steps=N, rho=rho or 7.0).times(proc)
            ed = ed_discrete(proc.sigma(grid).numpy(), d)
            ref = (
                ed_asymptotic_geometric(d, smin, smax, N)
                if rho is None
                else ed_asymptotic_edm(d, smin, smax, N, rho)
            )
            errs.append(abs(ed / ref - 1))
        assert errs[0] > errs[1] > errs[2] and errs[2] < 0.03, (kind, rho, errs)


def test_edm_discretisation_exceeds_geometric():
    d, smin, smax = 3, 0.002, 80.0
    geo = ed_asymptotic_geometric(d, smin, smax, 100)
    vals = [ed_asymptotic_edm(d, smin, smax, 100, rho) for rho in (0.5, 1, 3, 7, 20, 100, 1e4)]
    assert all(v > geo for v in vals)
    assert all(x > y for x, y in pairwise(vals))  # decreasing in ρ
    assert vals[-1] == pytest.approx(geo, rel=1e-6)  # → geometric as ρ → ∞
    geo_p = VE(GeometricSigma(smin, smax))
    e_geo = ed_discrete(geo_p.sigma(TimeGrid("geometric", steps=2000).times(geo_p)).numpy(), d)
    for rho in (1.0, 7.0, 30.0):
        times = TimeGrid("edm", steps=2000, rho=rho).times(EDM())
        assert ed_discrete(EDM().sigma(times).numpy(), d) > e_geo


def test_tune_edm_rho_never_worse_than_its_grid():
    tg = Gaussian(0.0, 0.25, dim=4)
    res = tune_edm_rho(tg, EDM(), 30, normalized_score_error=2.0, n_grid=10)
    assert res.value <= min(res.grid_values) + 1e-12
    assert 1.0 <= res.best <= 20.0
    times = TimeGrid("edm", steps=30, rho=res.best).times(EDM())
    assert ve_terms(tg, EDM(), times, normalized_score_error=2.0).total == pytest.approx(
        res.value, rel=1e-10
    )


# --- paper E ------------------------------------------------------------------------------------


def test_amplification_grows_like_exp_d2_over_8eps():
    Dm = 2.0
    errs = [abs(e * log_amplification(e, 3.0, Dm) - Dm**2 / 8) for e in (1e-2, 1e-3, 1e-4)]
    assert errs[0] > errs[1] > errs[2] and errs[2] < 2e-3
    # quadrature vs an independent trapezoid on a fine log grid
    u = np.geomspace(1e-2, 3.0, 200001)
    s2 = 1 - np.exp(-2 * u)
    ell = np.maximum(1 - 2 / s2 + np.exp(-2 * u) * Dm**2 / (2 * s2**2), 0.0)
    trap = float(np.sum(0.5 * (ell[1:] + ell[:-1]) * np.diff(u)))
    assert log_amplification(1e-2, 3.0, Dm) == pytest.approx(trap, rel=1e-6)


def test_w1_bound_blows_up_decreases_in_T_and_has_interior_optimum():
    circle = Circle(2, radius=1.0)
    eps_grid = np.geomspace(0.01, 2.0, 25)
    tot = np.array([manifold_w1_bound(circle, e, 5.0, 1000).total for e in eps_grid])
    i = int(np.argmin(tot))
    assert 0 < i < len(eps_grid) - 1
    assert tot[0] > 1e6 * tot[i] and tot[-1] > tot[i]
    assert all(x > y for x, y in pairwise(tot[: i + 1]))
    Ts = (1.0, 2.0, 3.0, 5.0, 8.0)
    by_T = [manifold_w1_bound(circle, 0.1, T, int(500 * T)) for T in Ts]
    assert all(a.total > b.total for a, b in pairwise(by_T))
    # hand values of the two moment terms: E‖X₀‖ = r = 1, d = 2
    b = by_T[0]
    assert b.initialization == pytest.approx(
        math.exp(-1.0) + (1 - math.sqrt(1 - math.exp(-2.0))) * math.sqrt(2), rel=1e-12
    )
    assert b.early_stopping == pytest.approx(
        1 - math.exp(-0.1) + math.sqrt(1 - math.exp(-0.2)) * math.sqrt(2), rel=1e-12
    )
    with pytest.raises(AssumptionFailed, match="compactly supported"):
        manifold_w1_bound(paper_a_target(), 0.1, 5.0, 100)


# --- tuning ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("bound", "score_error"), [("w2", 0.0), ("kl", 0.05)])
def test_tune_parametric_beats_linear_and_grid(bound, score_error):
    tg = paper_a_target()
    res = tune_parametric(tg, N=100, bound=bound, score_error=score_error, n_grid=11)
    assert res.value <= res.value_at_reference + 1e-12
    assert res.value <= min(res.grid_values) + 1e-12
    fn = kl_bound if bound == "kl" else w2_bound
    assert fn(tg, vp(res.best), 100, score_error=score_error).total == pytest.approx(res.value)
    assert fn(tg, vp(0.0), 100, score_error=score_error).total == pytest.approx(
        res.value_at_reference
    )
    assert -10 < res.best < 10  # both bounds trade mixing against the other terms


def test_tune_asks_the_process_family_and_the_schedule_not_their_names():
    """``tune`` (what tune-schedule calls) takes a VP-family process whose schedule is a member
    of β_a — a linear schedule is a = 0 and gives the same optimum as β_a written as such — and
    refuses the rest, listing what the registry says qualifies; ``edm`` takes the VE family
    (EDM's process is one) and refuses VP."""
    from scorelab.bounds import tune
    from scorelab.ddpm import DDPM
    from scorelab.processes import SubVP
    from scorelab.schedules import LinearBeta

    tg = paper_a_target()
    linear = tune("parametric", tg, VP(LinearBeta(0.1, 20.0)), 50, bound="w2")
    direct = tune_parametric(tg, 0.1, 20.0, N=50, bound="w2")
    assert linear.best == pytest.approx(direct.best) and linear.value == pytest.approx(direct.value)
    for process in (VP(CosineBeta(clip_max=20.0)), SubVP(LinearBeta()), DDPM(), EDM()):
        with pytest.raises(
            InvalidParameter,
            match=r"must be vp.*allowed: process vp, ddpm with "
            r"schedule linear, parametric",
        ):
            tune("parametric", tg, process, 50)
    with pytest.raises(InvalidParameter, match=r"must be variance exploding.*allowed: ve, edm"):
        tune("edm", tg, VP(LinearBeta()), 50)
    assert tune("edm", Gaussian(0.0, 0.25, dim=4), EDM(), 20).parameter == "rho"
    with pytest.raises(InvalidParameter, match=r"--family.*allowed: parametric, edm"):
        tune("cosine", tg, VP(LinearBeta()), 50)
