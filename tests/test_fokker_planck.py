"""Score Fokker–Planck machinery (docs/theory.md §7) against closed forms.

* divergence / Jacobian / conservativity of linear fields (known by hand) and of exact scores;
* Hutchinson estimates unbiased (mean over many probes within a few standard errors);
* the FPE residual of exact Gaussian and mixture scores is 0 for VP (linear, clipped cosine),
  VE (geometric) and sub-VP, by exact AD in t and (to a looser, stated tolerance) by finite
  differences, whose error is second order; it is clearly positive for perturbed scores, and
  ≈ 0 for the exact score of a *different* Gaussian too (docs/theory.md §7.4: zero residual ≠
  right law);
* the regulariser has finite, nonzero parameter gradients for every option and is ≈ 0 for the
  exact score; fp_dsm_loss reduces to dsm_loss at α = 0.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import nn

from scorelab import schedules as sch
from scorelab.divergence import (
    conservativity,
    divergence,
    hutchinson_divergence,
    jacobian,
    sample_probes,
)
from scorelab.errors import InvalidParameter
from scorelab.fokker_planck import (
    _batch_norm_per_example,
    fp_dsm_loss,
    fp_regulariser,
    fpe_residual,
    residual_parts,
    residual_profile,
)
from scorelab.losses import dsm_loss
from scorelab.parameterisations import ScoreNetwork
from scorelab.processes import VE, VP, SubVP
from scorelab.targets import Gaussian, GaussianMixture, ring8

F64 = torch.float64

PROCESSES = [
    ("vp-linear", VP(sch.LinearBeta())),
    ("vp-cosine-clip", VP(sch.CosineBeta(clip_max=30.0))),
    ("ve-geometric", VE(sch.GeometricSigma())),
    ("subvp-linear", SubVP(sch.LinearBeta())),
]
MIX3 = GaussianMixture(
    [0.3, 0.7],
    [[1.0, 0.0, -1.0], [-0.5, 1.0, 0.5]],
    [
        [[1.0, 0.4, 0.1], [0.4, 0.6, -0.2], [0.1, -0.2, 0.9]],
        [[0.3, -0.1, 0.0], [-0.1, 0.5, 0.2], [0.0, 0.2, 0.4]],
    ],
)
TARGETS = [
    ("ring8", ring8()),
    ("gauss2-full", Gaussian([0.3, -1.0], [[1.0, 0.5], [0.5, 2.0]])),
    ("mix3-full", MIX3),
]


def _points(target, process, t, n, seed):
    g = torch.Generator().manual_seed(seed)
    x0 = target.sample(n, g, dtype=F64)
    return process.perturb(x0, t, torch.randn(x0.shape, generator=g, dtype=F64))


def _linear_field(A):
    return lambda x: x.reshape(x.shape[0], -1) @ A.T


A3 = torch.tensor([[1.0, 2.0, 0.0], [-1.0, 0.5, 3.0], [0.5, -2.0, -1.0]], dtype=F64)


# --------------------------------------------------------------------------------------------
# divergence, Jacobian, conservativity
# --------------------------------------------------------------------------------------------


def test_jacobian_and_divergence_of_linear_field_are_exact():
    x = torch.randn(5, 3, dtype=F64)
    J = jacobian(_linear_field(A3), x)
    assert J.shape == (5, 3, 3)
    torch.testing.assert_close(J, A3.expand(5, 3, 3), rtol=0, atol=1e-14)
    div = divergence(_linear_field(A3), x)
    torch.testing.assert_close(div, torch.full((5,), float(A3.trace()), dtype=F64))


def test_divergence_is_shape_agnostic():
    # a 4-D field on images [B, 1, 2, 2]: F(x) = A·vec(x), reshaped back
    A = torch.randn(4, 4, dtype=F64, generator=torch.Generator().manual_seed(0))

    def field(x):
        return (x.reshape(x.shape[0], -1) @ A.T).reshape(x.shape)

    x = torch.randn(3, 1, 2, 2, dtype=F64)
    assert torch.allclose(divergence(field, x), torch.full((3,), float(A.trace()), dtype=F64))
    est = hutchinson_divergence(field, x, n_probes=3, generator=torch.Generator().manual_seed(1))
    assert est.samples.shape == (3, 3) and est.estimate.shape == (3,)


def test_divergences_are_differentiable_in_parameters_with_create_graph():
    # F(x) = w·x² elementwise: ∇·F = 2w Σ x_i, so d(∇·F)/dw = 2 Σ x_i (exact and Hutchinson)
    w = torch.tensor(1.5, dtype=F64, requires_grad=True)
    x = torch.randn(4, 3, dtype=F64)
    exact = divergence(lambda y: w * y**2, x, create_graph=True)
    (g,) = torch.autograd.grad(exact.sum(), w)
    assert float(g) == pytest.approx(2 * float(x.sum()))
    est = hutchinson_divergence(
        lambda y: w * y**2, x, n_probes=2, generator=torch.Generator().manual_seed(0),
        create_graph=True,
    )  # fmt: skip
    torch.testing.assert_close(est.estimate, exact)  # Rademacher is exact for diagonal J
    assert est.estimate.requires_grad
    assert not divergence(lambda y: w * y**2, x).requires_grad


def test_exact_divergence_of_gaussian_score_is_minus_trace_of_inverse_covariance():
    target, process, t = TARGETS[1][1], VP(sch.LinearBeta()), 0.3
    x = _points(target, process, t, 7, 0)
    m, v = float(process.scale(t)), float(process.variance(t))
    A = m**2 * torch.tensor([[1.0, 0.5], [0.5, 2.0]], dtype=F64) + v * torch.eye(2, dtype=F64)
    div = divergence(lambda y: target.score(y, t, process), x)
    expected = -float(torch.trace(torch.linalg.inv(A)))
    torch.testing.assert_close(div, torch.full((7,), expected, dtype=F64))


@pytest.mark.parametrize("probe", ["rademacher", "gaussian"])
def test_hutchinson_divergence_is_unbiased(probe):
    # one probe per row on 4 points each repeated 2500 times: 10⁴ probes per point
    target, process, t = ring8(), VP(sch.LinearBeta()), 0.1
    x = _points(target, process, t, 4, 1)
    field = target.score_model(process)
    exact = divergence(lambda y: field(y, t), x)
    reps = 2500
    est = hutchinson_divergence(
        lambda y: field(y, t), x.repeat(reps, 1), generator=torch.Generator().manual_seed(2),
        probe=probe,
    )  # fmt: skip
    per = est.estimate.reshape(reps, 4)
    mean, se = per.mean(0), per.std(0) / math.sqrt(reps)
    assert bool(((mean - exact).abs() < 4 * se + 1e-12).all()), (mean, exact, se)
    # and its variance is the textbook one: 2Σ_{i≠j}J_ij² (Rademacher), 2‖J‖²_F (Gaussian)
    J = jacobian(lambda y: field(y, t), x)
    off = J.pow(2).sum((1, 2)) - J.diagonal(dim1=1, dim2=2).pow(2).sum(1)
    var = 2 * off if probe == "rademacher" else 2 * J.pow(2).sum((1, 2))
    torch.testing.assert_close(per.var(0), var, rtol=0.2, atol=0)


def test_hutchinson_stderr_over_probes():
    x = torch.randn(6, 3, dtype=F64)
    est = hutchinson_divergence(
        _linear_field(A3), x, n_probes=50, generator=torch.Generator().manual_seed(0)
    )
    assert est.n_probes == 50
    assert torch.allclose(est.estimate, est.samples.mean(1))
    assert bool((est.stderr() > 0).all())
    one = hutchinson_divergence(_linear_field(A3), x, generator=torch.Generator().manual_seed(0))
    assert bool(torch.isnan(one.stderr()).all())


def test_probes_have_identity_second_moment():
    g = torch.Generator().manual_seed(0)
    for kind in ("rademacher", "gaussian"):
        v = sample_probes(20000, (3,), kind, g, F64)
        cov = v.T @ v / v.shape[0]
        assert torch.allclose(cov, torch.eye(3, dtype=F64), atol=0.05)
    assert set(sample_probes(100, (4,), "rademacher", g, F64).unique().tolist()) == {-1.0, 1.0}
    with pytest.raises(InvalidParameter):
        sample_probes(1, (2,), "uniform", g)


def test_conservativity_of_gradient_field_is_zero():
    target, process = MIX3, VP(sch.LinearBeta())
    x = _points(target, process, 0.2, 16, 3)
    res = conservativity(lambda y: target.score(y, 0.2, process), x)
    assert res.ratio < 1e-12 and res.method == "exact"
    probe = conservativity(
        lambda y: target.score(y, 0.2, process), x, method="probes", n_probes=8,
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    assert probe.ratio < 1e-12  # uᵀJv = vᵀJu exactly when J is symmetric


def test_conservativity_of_linear_field_matches_hand_value():
    # J = A3: ‖A − Aᵀ‖²_F by hand: A − Aᵀ has entries ±3, ±(−0.5), ±5 off the diagonal
    skew_sq = 2 * (3.0**2 + 0.5**2 + 5.0**2)
    norm_sq = float((A3**2).sum())
    x = torch.randn(10, 3, dtype=F64)
    res = conservativity(_linear_field(A3), x)
    assert res.ratio == pytest.approx(skew_sq / norm_sq, rel=1e-12)
    assert res.antisymmetric_fraction == pytest.approx(0.25 * skew_sq / norm_sq, rel=1e-12)
    # a rotation field s(x) = R x (R antisymmetric) has NC = 4, the maximum
    R = torch.tensor([[0.0, -1.0], [1.0, 0.0]], dtype=F64)
    assert conservativity(_linear_field(R), torch.randn(4, 2, dtype=F64)).ratio == 4.0


@pytest.mark.parametrize("probe", ["rademacher", "gaussian"])
def test_probe_conservativity_is_unbiased(probe):
    n = 4000
    x = torch.randn(n, 3, dtype=F64)
    res = conservativity(
        _linear_field(A3), x, method="probes", n_probes=2, probe=probe,
        generator=torch.Generator().manual_seed(5),
    )  # fmt: skip
    skew_sq = 2 * (3.0**2 + 0.5**2 + 5.0**2)
    norm_sq = float((A3**2).sum())
    for est, exact in ((res.numerator, skew_sq), (res.denominator, norm_sq)):
        se = float(est.std()) / math.sqrt(n)
        assert abs(float(est.mean()) - exact) < 4 * se
    assert abs(res.ratio - skew_sq / norm_sq) < 4 * res.stderr
    assert res.stderr < 0.05 * res.ratio


def test_conservativity_rejects_unknown_method():
    with pytest.raises(InvalidParameter):
        conservativity(_linear_field(A3), torch.randn(2, 3, dtype=F64), method="svd")


# --------------------------------------------------------------------------------------------
# the residual
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tname,target", TARGETS, ids=[n for n, _ in TARGETS])
@pytest.mark.parametrize("pname,process", PROCESSES, ids=[n for n, _ in PROCESSES])
def test_residual_of_exact_score_is_zero(pname, tname, target, process):
    score = target.score_model(process)
    for t in (0.01, 0.2, 0.6, 0.95):
        t = t * process.T
        x = _points(target, process, t, 32, 7)
        parts = residual_parts(score, process, x, t)
        scale = 1.0 + float(parts.dsdt.abs().max())  # |∂_t s| reaches ~10² near t = 0
        eps = parts.residual
        assert float(eps.abs().max()) < 1e-10 * scale, (t, float(eps.abs().max()), scale)
        # second-order finite difference in t (ε_mach^{1/3}·t step): ~1e-7 relative
        fd = fpe_residual(score, process, x, t, dt="fd")
        assert float(fd.abs().max()) < 1e-6 * scale, (t, float(fd.abs().max()), scale)


def test_residual_has_the_shape_of_x_and_handles_images_and_one_time_per_example():
    target, process = TARGETS[2][1], VP(sch.LinearBeta())
    # MIX3 has 3 coordinates; present them as [B, 3, 1] "images"
    score = target.score_model(process)

    def img_score(x, t):
        return score(x.reshape(x.shape[0], 3), t).reshape(x.shape)

    t = torch.linspace(0.05, 0.9, 8, dtype=F64)
    x = _points(target, process, t, 8, 0).reshape(8, 3, 1)
    eps = fpe_residual(img_score, process, x, t)
    assert eps.shape == x.shape
    assert float(eps.abs().max()) < 1e-9


@pytest.mark.parametrize("pname,process", PROCESSES, ids=[n for n, _ in PROCESSES])
def test_residual_of_perturbed_scores_is_clearly_positive(pname, process):
    target = ring8()
    exact = target.score_model(process)
    perturbed = {
        "plus_0.3x": lambda x, t: exact(x, t) + 0.3 * x,
        "times_1.1": lambda x, t: 1.1 * exact(x, t),
    }
    for t in (0.1 * process.T, 0.5 * process.T):
        x = _points(target, process, t, 64, 4)
        base = float(fpe_residual(exact, process, x, t).pow(2).mean())
        for name, s in perturbed.items():
            eps = fpe_residual(s, process, x, t)
            parts = residual_parts(s, process, x, t)
            size = float(parts.rhs.pow(2).mean()) + float(parts.dsdt.pow(2).mean())
            val = float(eps.pow(2).mean())
            assert val > 1e-3 * size and val > 1e8 * base, (name, t, val, size, base)


def test_exact_score_of_a_wrong_gaussian_also_has_zero_residual():
    # docs/theory.md §7.4: every Gaussian's score solves the same PDE; evaluate the wrong model
    # where the *true* (ring8) marginal puts its points
    process, truth = VP(sch.LinearBeta()), ring8()
    wrong = Gaussian([1.5, -0.5], [[0.3, 0.1], [0.1, 2.0]])
    for t in (0.05, 0.4):
        x = _points(truth, process, t, 64, 9)
        eps = fpe_residual(wrong.score_model(process), process, x, t)
        parts = residual_parts(wrong.score_model(process), process, x, t)
        assert float(eps.abs().max()) < 1e-10 * (1 + float(parts.dsdt.abs().max()))
        # and yet it is far from the true score there
        gap = (wrong.score(x, t, process) - truth.score(x, t, process)).pow(2).mean()
        assert float(gap) > 0.1


def test_finite_difference_in_t_is_second_order():
    target, process, t = MIX3, VP(sch.LinearBeta()), 0.3
    score = target.score_model(process)
    x = _points(target, process, t, 16, 2)
    exact = residual_parts(score, process, x, t).dsdt
    errs = [
        float((residual_parts(score, process, x, t, dt="fd", fd_step=h).dsdt - exact).abs().max())
        for h in (2e-2, 1e-2, 5e-3)
    ]
    for a, b in itertools.pairwise(errs):
        assert 3.5 < a / b < 4.5, errs
    # near T the stencil turns backward (one-sided, still second order) instead of passing T
    tT = torch.full((16,), process.T * (1 - 1e-4), dtype=F64)
    near = residual_parts(score, process, x, tT, dt="fd").residual
    assert float(near.abs().max()) < 1e-6


def test_hutchinson_residual_is_unbiased():
    target, process, t = ring8(), VP(sch.LinearBeta()), 0.15
    score = target.score_model(process)
    x = _points(target, process, t, 3, 11)
    reps = 3000
    exact_rhs = residual_parts(score, process, x, t).rhs
    parts = residual_parts(
        score, process, x.repeat(reps, 1), t, div="hutchinson",
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    per = parts.rhs.reshape(reps, 3, 2)
    mean, se = per.mean(0), per.std(0) / math.sqrt(reps)
    assert bool(((mean - exact_rhs).abs() < 4 * se + 1e-9).all()), (mean, exact_rhs, se)
    # the Hutchinson ∂_t s (double-backward trick) is exact, not an estimate
    exact_dsdt = residual_parts(score, process, x, t).dsdt
    torch.testing.assert_close(parts.dsdt.reshape(reps, 3, 2)[0], exact_dsdt)


def test_residual_profile_reports_means_and_intervals():
    target, process = ring8(), VP(sch.LinearBeta())
    g = torch.Generator().manual_seed(0)
    score = target.score_model(process)
    exact = residual_profile(score, process, target, [0.05, 0.5], 128, g, dtype=F64)
    assert [p.t for p in exact] == [0.05, 0.5]
    assert all(p.mean < 1e-20 and p.n == 128 for p in exact)
    f32 = residual_profile(score, process, target, [0.05, 0.5], 128, g)  # float32 round-off
    assert all(p.mean < 1e-6 for p in f32)

    def bad(x, t):
        return target.score(x, t, process) + 0.3 * x

    prof = residual_profile(bad, process, target, [0.05, 0.5], 256, g, dtype=F64, batch_size=100)
    for p in prof:
        assert p.mean > 0 and 0 < p.half_width < p.mean and p.lo < p.mean < p.hi
    # a sampler callable and a data tensor work too
    data = target.sample(300, g)
    assert len(residual_profile(bad, process, data, [0.3], 64, g)) == 1
    assert len(residual_profile(bad, process, lambda n, gen: target.sample(n, gen), [0.3], 64, g))


def test_residual_options_are_validated():
    target, process = ring8(), VP(sch.LinearBeta())
    x = target.sample(4, torch.Generator().manual_seed(0), dtype=F64)
    score = target.score_model(process)
    with pytest.raises(InvalidParameter):
        fpe_residual(score, process, x, 0.3, dt="backward")
    with pytest.raises(InvalidParameter):
        fpe_residual(score, process, x, 0.3, div="trace")
    with pytest.raises(InvalidParameter):
        fpe_residual(score, process, x, 2.0)
    with pytest.raises(InvalidParameter):
        fpe_residual(score, process, x, torch.rand(3, dtype=F64))


# --------------------------------------------------------------------------------------------
# the regulariser
# --------------------------------------------------------------------------------------------


class TinyNet(nn.Module):
    """(x, c) → like x: an MLP on [x, c] with SiLU."""

    def __init__(self, dim=2, width=16, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.l1 = nn.Linear(dim + 1, width)
        self.l2 = nn.Linear(width, width)
        self.l3 = nn.Linear(width, dim)

    def forward(self, x, c):
        c = c.expand(x.shape[0]) if c.ndim == 0 else c
        h = nn.functional.silu(self.l1(torch.cat([x, c[:, None].to(x.dtype)], 1)))
        return self.l3(nn.functional.silu(self.l2(h)))


def _model(process, kind="edm"):
    return ScoreNetwork(TinyNet().double(), process, kind, sigma_data=1.4)


@pytest.mark.parametrize("div", ["exact", "hutchinson"])
@pytest.mark.parametrize("weighting", ["likelihood", "convention", "constant"])
@pytest.mark.parametrize("points", ["perturbed", "data", "box"])
def test_regulariser_gradient_is_finite_and_nonzero(div, weighting, points):
    process = VP(sch.CosineBeta(clip_max=20.0))
    model = _model(process)
    g = torch.Generator().manual_seed(0)
    x0 = ring8().sample(16, g, dtype=F64)
    term = fp_regulariser(
        model, x0, process, g, weighting=weighting, points=points, div=div, scalar_beta=0.01
    )
    assert term.shape == (16,) and bool(torch.isfinite(term).all()) and bool((term > 0).all())
    term.mean().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(gr is not None and bool(torch.isfinite(gr).all()) for gr in grads)
    assert sum(float(gr.abs().sum()) for gr in grads) > 0


def test_regulariser_fd_route_has_gradients_too():
    process = VE(sch.GeometricSigma(sigma_max=10.0))
    model = _model(process, "score")
    g = torch.Generator().manual_seed(1)
    x0 = ring8().sample(8, g, dtype=F64)
    term = fp_regulariser(model, x0, process, g, dt="fd", div="hutchinson", n_probes=2)
    term.mean().backward()
    assert all(bool(torch.isfinite(p.grad).all()) for p in model.parameters())


@pytest.mark.parametrize("points", ["perturbed", "data", "box"])
def test_regulariser_of_exact_score_is_zero(points):
    process, target = SubVP(sch.LinearBeta()), MIX3
    g = torch.Generator().manual_seed(3)
    x0 = target.sample(32, g, dtype=F64)
    term = fp_regulariser(
        target.score_model(process), x0, process, g, points=points, weighting="constant"
    )
    assert float(term.detach().abs().max()) < 1e-12


def test_regulariser_weights():
    """α·w(t)·‖ε‖²/D against a closed form. For N(0, σ₀²I) under VP (σ∞ = 1, linear β) the
    model s = s* + c·x is linear, s = −k(t)x with k = 1/v − c, v = m²σ₀² + 1 − m². With
    f = −β/2, g² = β: φ = ½β(−kD + (k² − k)‖x‖²), so ∇φ = β(k² − k)x and
    ε = ∂ₜs − ∇φ = −(k′ + βk² − βk)x, k′ = βm²(σ₀² − 1)/v² (ε = 0 at c = 0). The weights
    are β (likelihood), s² = 1 − m² (convention) and 1 (constant)."""
    s0sq, c, bmin, bmax = 0.5, 0.3, 0.1, 20.0
    process, target = VP(sch.LinearBeta(bmin, bmax)), Gaussian(0.0, s0sq, dim=2)
    x0 = target.sample(8, torch.Generator().manual_seed(0), dtype=F64)
    t = torch.linspace(0.1, 0.9, 8, dtype=F64)
    z = torch.randn(8, 2, dtype=F64, generator=torch.Generator().manual_seed(1))

    def bad(x, tt):
        return target.score(x, tt, process) + c * x

    beta = bmin + (bmax - bmin) * t
    m2 = torch.exp(-(bmin * t + 0.5 * (bmax - bmin) * t**2))
    v = m2 * s0sq + 1 - m2
    k = 1 / v - c
    dk = beta * m2 * (s0sq - 1) / v**2
    x = m2.sqrt()[:, None] * x0 + (1 - m2).sqrt()[:, None] * z
    eps = -(dk + beta * k**2 - beta * k)[:, None] * x
    weights = {"likelihood": beta, "convention": 1 - m2, "constant": torch.ones_like(t)}
    for name, w in weights.items():
        for alpha in (0.15, 0.4):
            got = fp_regulariser(bad, x0, process, weighting=name, t=t, z=z, alpha=alpha)
            expected = alpha * w * eps.pow(2).mean(1)
            torch.testing.assert_close(got, expected, rtol=1e-10, atol=0)


def test_scalar_term_has_the_value_and_gradient_of_the_batch_norm():
    phi = torch.randn(10, dtype=F64, requires_grad=True)
    per = _batch_norm_per_example(phi)
    assert float(per.detach().mean()) == pytest.approx(float(phi.detach().norm()))
    (g1,) = torch.autograd.grad(per.mean(), phi)
    (g2,) = torch.autograd.grad(phi.norm(), phi)
    torch.testing.assert_close(g1, g2)


def test_fp_dsm_loss_is_dsm_plus_regulariser():
    process, target = VP(sch.LinearBeta()), ring8()
    model = _model(process)
    g = torch.Generator().manual_seed(0)
    x0 = target.sample(16, g, dtype=F64)
    t = torch.rand(16, dtype=F64, generator=g) * 0.9 + 0.05
    z = torch.randn(16, 2, dtype=F64, generator=g)
    dsm = dsm_loss(model, x0, process, t=t, z=z, weighting="g2")
    zero = fp_dsm_loss(model, x0, process, t=t, z=z, weighting="g2", alpha=0.0)
    torch.testing.assert_close(zero, dsm)
    both = fp_dsm_loss(model, x0, process, t=t, z=z, weighting="g2", alpha=0.15)
    reg = fp_regulariser(model, x0, process, t=t, z=z, alpha=0.15)
    torch.testing.assert_close(both, dsm + reg)
    both.mean().backward()
    assert all(bool(torch.isfinite(p.grad).all()) for p in model.parameters())


def test_fp_dsm_loss_with_its_own_points():
    process, target = VE(sch.GeometricSigma(sigma_max=10.0)), ring8()
    model = _model(process)
    g = torch.Generator().manual_seed(0)
    x0 = target.sample(8, g, dtype=F64)
    loss = fp_dsm_loss(
        model, x0, process, g, share_points=False, div="hutchinson", fp_weighting="convention",
        noise="lognormal",
    )  # fmt: skip
    assert loss.shape == (8,) and bool(torch.isfinite(loss).all())
    loss.mean().backward()
    with pytest.raises(InvalidParameter):
        fp_dsm_loss(model, x0, process, g, fp_weighting="g")
    with pytest.raises(InvalidParameter):
        fp_dsm_loss(model, x0, process, g, points="grid")
    with pytest.raises(InvalidParameter):
        fp_dsm_loss(model, x0, process, g, alpha=-1.0)
