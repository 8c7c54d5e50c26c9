"""Metrics against independent truth: closed forms between Gaussians, torch.distributions,
scipy's optimal assignment, brute-force sums, quadrature, normal CDFs and Monte Carlo."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import ot
import pytest
import torch
from scipy import integrate, linalg, optimize, stats

from scorelab.config import build_target
from scorelab.errors import InvalidParameter
from scorelab.metrics import (
    digits_classifier,
    entropy,
    evaluate,
    frechet_distance,
    kl_gaussian_fit,
    kl_gaussians,
    knn_kl,
    mean_nll,
    memorised_fraction,
    mmd2,
    nn_ratio,
    sinkhorn_divergence,
    sliced_w2,
    tv_histogram,
    tv_projections,
    w1,
    w2,
    w2_gaussian_fit,
    w2_gaussians,
)
from scorelab.metrics.density import HistogramGrid
from scorelab.metrics.kernel import bandwidths_for
from scorelab.targets import Empirical, Gaussian, GaussianMixture, digits, ring8

F64 = torch.float64
COV1 = torch.tensor([[1.0, 0.3, 0.0], [0.3, 0.5, 0.1], [0.0, 0.1, 0.8]], dtype=F64)
COV2 = torch.tensor([[0.7, -0.2, 0.1], [-0.2, 1.2, 0.0], [0.1, 0.0, 0.4]], dtype=F64)
MU1 = torch.tensor([0.0, 1.0, -0.5], dtype=F64)
MU2 = torch.tensor([0.5, 0.0, 0.3], dtype=F64)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def mvn(mu, cov, n, seed):
    L = torch.linalg.cholesky(cov)
    return mu + torch.randn(n, mu.shape[0], generator=gen(seed), dtype=F64) @ L.T


# --- closed forms ------------------------------------------------------------------------------


def test_kl_gaussians_matches_torch_distributions():
    p = torch.distributions.MultivariateNormal(MU1, COV1)
    q = torch.distributions.MultivariateNormal(MU2, COV2)
    assert kl_gaussians(MU1, COV1, MU2, COV2) == pytest.approx(
        float(torch.distributions.kl_divergence(p, q)), rel=1e-10
    )
    assert kl_gaussians(MU1, COV1, MU1, COV1) == pytest.approx(0.0, abs=1e-12)


def test_w2_gaussians_against_scipy_sqrtm_and_1d_formula():
    s1 = linalg.sqrtm(COV1.numpy())
    cross = np.real(linalg.sqrtm(s1 @ COV2.numpy() @ s1))
    ref = float(((MU1 - MU2) ** 2).sum()) + np.trace(COV1.numpy() + COV2.numpy() - 2 * cross)
    assert w2_gaussians(MU1, COV1, MU2, COV2) == pytest.approx(math.sqrt(ref), rel=1e-9)
    # 1-D: W2 = sqrt((m1 − m2)² + (s1 − s2)²)
    assert w2_gaussians([1.0], [[4.0]], [-0.5], [[0.25]]) == pytest.approx(
        math.sqrt(1.5**2 + 1.5**2), rel=1e-12
    )


def test_fitted_gaussian_metrics_converge_to_closed_forms():
    truth_kl = kl_gaussians(MU1, COV1, MU2, COV2)
    truth_w2 = w2_gaussians(MU1, COV1, MU2, COV2)
    errs = []
    for n in (300, 200_000):
        x = mvn(MU2, COV2, n, seed=n)
        errs.append(
            (
                abs(kl_gaussian_fit(x, MU1, COV1) - truth_kl),
                abs(w2_gaussian_fit(x, MU1, COV1) - truth_w2),
            )
        )
    # sampling error of the moments is O(n^{-1/2}): ~0.003 at n = 2·10⁵
    assert errs[1][0] < 0.02 and errs[1][1] < 0.01
    assert errs[1][0] < errs[0][0] and errs[1][1] < errs[0][1]


def test_fitted_gaussian_kl_bias_is_d_d_plus_3_over_4n():
    d, n, reps = 3, 400, 300
    vals = [kl_gaussian_fit(mvn(MU1, COV1, n, seed=1000 + r), MU1, COV1) for r in range(reps)]
    mean, se = np.mean(vals), np.std(vals) / math.sqrt(reps)
    assert abs(mean - d * (d + 3) / (4 * n)) < 4 * se + 0.1 * d * (d + 3) / (4 * n)


# --- optimal transport ---------------------------------------------------------------------


def test_exact_w1_w2_equal_optimal_assignment():
    x = torch.randn(70, 3, generator=gen(1), dtype=F64)
    y = torch.randn(70, 3, generator=gen(2), dtype=F64) * 1.5 + 0.4
    for p, fn in ((1, w1), (2, w2)):
        C = torch.cdist(x, y).numpy() ** p
        r, c = optimize.linear_sum_assignment(C)
        assert fn(x, y) == pytest.approx(C[r, c].mean() ** (1 / p), rel=1e-10)


def test_exact_w2_converges_to_gaussian_closed_form():
    mu, cov = (
        torch.tensor([2.0, -1.0], dtype=F64),
        torch.tensor([[1.0, 0.4], [0.4, 0.6]], dtype=F64),
    )
    truth = w2_gaussians(torch.zeros(2, dtype=F64), torch.eye(2, dtype=F64), mu, cov)
    err = []
    for n in (100, 3000):
        x = torch.randn(n, 2, generator=gen(n), dtype=F64)
        y = mvn(mu, cov, n, seed=n + 1)
        err.append(abs(w2(x, y) - truth))
    assert err[1] < 0.05 * truth and err[1] < err[0]


def test_subsampling_above_max_points_is_seeded_and_close():
    x = torch.randn(1500, 2, generator=gen(3), dtype=F64)
    y = torch.randn(1500, 2, generator=gen(4), dtype=F64) + 2.0
    a = w2(x, y, max_points=500, generator=gen(0))
    assert a == w2(x, y, max_points=500, generator=gen(0))
    assert a == pytest.approx(w2(x, y), rel=0.05)


def test_sliced_w2_against_closed_form_and_pot():
    d = 5
    x = torch.randn(20000, d, generator=gen(5), dtype=F64)
    y = 0.5 * torch.randn(20000, d, generator=gen(6), dtype=F64) + 1.0
    # SW2² between N(0, I) and N(1, 0.25 I): E(θᵀΔμ)² + (1 − 0.5)² = ‖Δμ‖²/d + 0.25
    truth = math.sqrt(d / d + 0.25)
    assert sliced_w2(x, y, 2000, generator=gen(0)) == pytest.approx(truth, rel=0.02)
    # unequal sizes through the merged quantile grid, against POT with the same directions
    th = torch.randn(d, 40, generator=gen(7), dtype=F64)
    th = th / th.norm(dim=0)
    xs, ys = x[:300], y[:170]
    ref = ot.sliced_wasserstein_distance(xs.numpy(), ys.numpy(), projections=th.numpy(), p=2)
    assert sliced_w2(xs, ys, projections=th) == pytest.approx(float(ref), rel=1e-7)


def test_sinkhorn_divergence_zero_on_itself_and_close_to_w2_for_small_eps():
    x = torch.randn(120, 2, generator=gen(8), dtype=F64)
    y = torch.randn(120, 2, generator=gen(9), dtype=F64) + torch.tensor([3.0, 0.0], dtype=F64)
    assert sinkhorn_divergence(x, x, eps=0.1) == pytest.approx(0.0, abs=1e-6)
    w2sq = w2(x, y) ** 2
    s = sinkhorn_divergence(x, y, eps=0.05)
    assert 0 < s and s == pytest.approx(w2sq, rel=0.05)
    assert sinkhorn_divergence(x, y + 1.0, eps=0.05) > s


# --- MMD ----------------------------------------------------------------------------------------


def test_mmd_unbiased_matches_brute_force():
    x = torch.randn(25, 2, generator=gen(10), dtype=F64)
    y = torch.randn(31, 2, generator=gen(11), dtype=F64) + 0.3
    hs = [0.5, 1.0, 2.0]

    def k(a, b):
        return sum(math.exp(-float(((a - b) ** 2).sum()) / (2 * h * h)) for h in hs)

    n, m = len(x), len(y)
    sxx = sum(k(x[i], x[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    syy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    sxy = sum(k(x[i], y[j]) for i in range(n) for j in range(m)) / (n * m)
    assert mmd2(x, y, hs)[0] == pytest.approx(sxx + syy - 2 * sxy, rel=1e-10)


def test_w2_and_mmd_of_same_law_lie_within_their_floors():
    target = ring8()
    n = 300
    floors_w2, floors_mmd = [], []
    ref = target.sample(n, gen(100), dtype=F64)
    hs = bandwidths_for(ref)
    for r in range(12):
        a = target.sample(n, gen(200 + r), dtype=F64)
        floors_w2.append(w2(a, ref))
        floors_mmd.append(mmd2(a, ref, hs)[0])
    same = target.sample(n, gen(999), dtype=F64)
    moved = same + torch.tensor([1.0, 0.0], dtype=F64)
    for fn, floors in (
        (lambda z: w2(z, ref), floors_w2),
        (lambda z: mmd2(z, ref, hs)[0], floors_mmd),
    ):
        mu, sd = np.mean(floors), np.std(floors)
        assert abs(fn(same) - mu) < 4 * sd  # within the floor's spread
        assert fn(moved) > mu + 5 * sd  # a real difference is far outside it


def test_mmd_permutation_pvalue_is_calibrated_and_separates_laws():
    # same law: p-values ~ U(0, 1), so about 5 % fall below 0.05 (binomial(40, 0.05): ≤ 6)
    pvals = []
    for r in range(40):
        x = torch.randn(80, 2, generator=gen(300 + r), dtype=F64)
        y = torch.randn(80, 2, generator=gen(400 + r), dtype=F64)
        pvals.append(mmd2(x, y, n_permutations=100, generator=gen(r))[1])
    assert sum(p < 0.05 for p in pvals) <= 6 and 0.35 < np.mean(pvals) < 0.65
    x = torch.randn(150, 2, generator=gen(12), dtype=F64)
    y = torch.randn(150, 2, generator=gen(14), dtype=F64)
    assert mmd2(x + 0.8, y, n_permutations=200, generator=gen(0))[1] <= 1 / 201 + 1e-12


# --- kNN KL ---------------------------------------------------------------------------------------


def test_knn_kl_against_gaussian_closed_form_both_directions():
    mu_p, cov_p = torch.zeros(2, dtype=F64), torch.tensor([[1.0, 0.3], [0.3, 0.8]], dtype=F64)
    mu_q = torch.tensor([0.6, -0.3], dtype=F64)
    cov_q = torch.tensor([[1.2, 0.0], [0.0, 0.9]], dtype=F64)
    x, y = mvn(mu_p, cov_p, 6000, 20), mvn(mu_q, cov_q, 6000, 21)
    # KL = 0.271 and 0.442 nats; the estimator's s.d. at n = 6000 is about 0.02
    assert knn_kl(x, y) == pytest.approx(kl_gaussians(mu_p, cov_p, mu_q, cov_q), abs=0.06)
    assert knn_kl(y, x) == pytest.approx(kl_gaussians(mu_q, cov_q, mu_p, cov_p), abs=0.06)
    assert abs(knn_kl(x, mvn(mu_p, cov_p, 6000, 22))) < 0.06  # same law: 0


# --- density metrics ------------------------------------------------------------------------


def test_nll_and_entropy_against_exact_and_quadrature():
    g = Gaussian(mean=[1.0, 2.0], cov=[[1.0, 0.5], [0.5, 2.0]])
    h_exact = 0.5 * (2 * math.log(2 * math.pi * math.e) + math.log(1.75))
    assert entropy(g)[0] == pytest.approx(h_exact, rel=1e-12)
    nll, se = mean_nll(g.sample(20000, gen(30), dtype=F64), g)
    assert abs(nll - h_exact) < 4 * se
    # a 1-D mixture: entropy by Monte Carlo against scipy quadrature
    gm = GaussianMixture([0.3, 0.7], [[-2.0], [1.0]], [0.25, 1.0])

    def p(t):
        return 0.3 * stats.norm.pdf(t, -2, 0.5) + 0.7 * stats.norm.pdf(t, 1, 1)

    h_quad = integrate.quad(lambda t: -p(t) * math.log(p(t)), -15, 15, limit=200)[0]
    h_mc, h_se = entropy(gm, 40000, gen(31))
    assert abs(h_mc - h_quad) < 4 * h_se


def test_histogram_cell_masses_match_normal_cdf():
    g = Gaussian(mean=[0.5, -1.0], cov=[0.8, 1.5])
    grid = HistogramGrid(g, 12, torch.tensor([[-3.0, 4.0], [-5.0, 3.0]], dtype=F64), sub=16)
    e0, e1 = np.linspace(-3, 4, 13), np.linspace(-5, 3, 13)
    m0 = np.diff(stats.norm.cdf(e0, 0.5, math.sqrt(0.8)))
    m1 = np.diff(stats.norm.cdf(e1, -1.0, math.sqrt(1.5)))
    assert np.allclose(grid.masses.numpy(), np.outer(m0, m1).reshape(-1), atol=2e-5)
    assert grid.outside == pytest.approx(1 - np.outer(m0, m1).sum(), abs=1e-4)


def test_histogram_tv_of_known_law_goes_to_zero_at_the_predicted_rate():
    target = ring8()
    ref = target.sample(20000, gen(40), dtype=F64).reshape(20000, -1)
    grid = HistogramGrid.around(target, 20, ref)
    q = torch.cat([grid.masses, torch.tensor([grid.outside], dtype=F64)]).numpy()
    tvs = []
    for n in (1000, 100_000):
        tv = grid.tv(target.sample(n, gen(n), dtype=F64))
        # E TV ≈ ½ Σ E|p̂_c − q_c| ≈ ½ Σ √(2 q_c(1 − q_c)/(π n)) (normal approximation)
        predicted = 0.5 * np.sum(np.sqrt(2 * q * (1 - q) / (math.pi * n)))
        assert tv == pytest.approx(predicted, rel=0.2)
        tvs.append(tv)
    assert tvs[1] < tvs[0] / 5
    moved = target.sample(100_000, gen(41), dtype=F64) + 0.3
    assert tv_histogram(moved, target, 20, generator=gen(40)) > 10 * tvs[1]


def test_projection_tv_exact_for_mixtures_agrees_with_sample_masses():
    target = GaussianMixture([0.5, 0.5], [[0.0, 0, 0, 0], [2.0, 1, 0, -1]], 0.5)
    x = target.sample(4000, gen(50), dtype=F64)
    exact = tv_projections(x, target, generator=gen(1))
    small = tv_projections(x[:400], target, generator=gen(1))
    assert exact < small  # the floor shrinks with n
    # the same quantity with sample-estimated masses: a target without the mixture fast path
    emp = Empirical(target.sample(200_000, gen(51), dtype=F64))
    assert tv_projections(x, emp, generator=gen(1)) == pytest.approx(exact, abs=0.01)
    assert tv_projections(x + 0.5, target, generator=gen(1)) > 5 * exact


# --- memorisation, features -----------------------------------------------------------------------


def test_memorisation_detects_copies_and_new_points():
    law = Gaussian(mean=0.0, cov=1.0, dim=4)
    train = law.sample(500, gen(60), dtype=F64)
    copies = train[:200] + 1e-4 * torch.randn(200, 4, generator=gen(61), dtype=F64)
    fresh = law.sample(200, gen(62), dtype=F64)
    assert memorised_fraction(copies, train) == 1.0
    assert memorised_fraction(fresh, train) < 0.05
    assert nn_ratio(copies, train)[1] == 1.0 and nn_ratio(fresh, train)[0] > 0.5


def test_digits_classifier_and_frechet_distance():
    clf = digits_classifier(0)
    assert clf.test_accuracy > 0.9
    data = digits().data
    fa = clf.features(data[:900])
    fb = clf.features(data[900:])
    noise = clf.features(torch.rand(900, 1, 8, 8, generator=gen(70), dtype=F64) * 2 - 1)
    # the FID formula with scipy's sqrtm as independent truth
    ma, mb = fa.mean(0).numpy(), fb.mean(0).numpy()
    ca, cb = np.cov(fa.numpy().T), np.cov(fb.numpy().T)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sqrtm warns on the near-singular product
        cross = np.real(linalg.sqrtm(ca @ cb))
    ref = np.sum((ma - mb) ** 2) + np.trace(ca + cb - 2 * cross)
    assert frechet_distance(fa, fb) == pytest.approx(ref, rel=1e-6)
    assert frechet_distance(noise, fb) > 10 * frechet_distance(fa, fb)


# --- evaluate -----------------------------------------------------------------------------------


def test_evaluate_gaussian_table_json_floor_and_ci():
    target = build_target({"kind": "gaussian", "dim": 2, "mean": 1.0, "cov": 0.5})
    x = target.sample(400, gen(80), dtype=F64) + 0.4
    ev = evaluate(x, target, n_boot=50, generator=gen(0), n_boot_ot=10)
    js = ev.to_json()
    assert set(js) - {"_skipped"} == {r.name for r in ev.results}
    assert {"kl_gaussian", "w2", "sliced_w2", "sinkhorn", "mmd", "kl_knn", "nll", "tv"} <= set(js)
    assert set(js["_skipped"]) == {"memorised", "nn_ratio", "fd_digits"}
    json.dumps(js)
    for name in ("kl_gaussian", "w2", "mmd", "nll", "tv", "kl_knn"):
        r = js[name]
        assert set(r) == {"value", "floor", "ci"}
        lo, hi = r["ci"]
        assert lo <= r["value"] <= hi  # the shifted samples are far from their floors
        assert r["value"] > r["floor"]
    # kl_gaussian against the closed form of the fitted Gaussian, and its floor ≈ bias
    mu, cov = target.mean(), target.covariance()
    assert js["kl_gaussian"]["value"] == pytest.approx(kl_gaussian_fit(x, mu, cov), rel=1e-12)
    assert "kl_gaussian" in ev.table() and "skipped" in ev.table()


def test_evaluate_empirical_target_reports_memorisation():
    train = torch.randn(300, 3, generator=gen(90), dtype=F64)
    ev = evaluate(train[:100], Empirical(train), n_boot=20, n_boot_ot=10, generator=gen(0))
    assert ev["memorised"].value == 1.0 and ev["nn_ratio"].value == 0.0
    assert {s.name for s in ev.skipped} >= {"kl_knn", "nll", "tv", "kl_gaussian"}


def test_evaluate_flattens_images():
    target = digits()
    x = target.sample(60, gen(91), dtype=F64)
    ev = evaluate(x, target, ["fd_digits", "mmd"], n_boot=20, generator=gen(0))
    assert ev["fd_digits"].value > 0 and ev["fd_digits"].ci is not None
    ev2 = evaluate(x.reshape(60, 64), target, ["mmd"], n_boot=20, generator=gen(0))
    assert ev2["mmd"].value == ev["mmd"].value


@pytest.mark.parametrize(
    ("samples", "metrics", "field", "words"),
    [
        (torch.zeros(50, 3), None, "samples", "wrong shape"),
        (torch.full((50, 2), float("nan")), None, "samples", "NaN"),
        (torch.zeros(1, 2), None, "samples", "too few"),
        (torch.randn(50, 2, generator=gen(0)), ["fid"], "metrics", "unknown"),
    ],
)
def test_evaluate_clear_errors(samples, metrics, field, words):
    target = ring8()
    with pytest.raises(InvalidParameter) as exc:
        evaluate(samples, target, metrics, n_boot=10, n_boot_ot=10)
    assert exc.value.field == field and words in str(exc.value)


def test_evaluate_too_few_points_for_a_requested_metric():
    target = Gaussian(mean=0.0, cov=1.0, dim=4)
    x = target.sample(5, gen(1), dtype=F64)  # the fitted covariance needs n ≥ d + 2 = 6
    with pytest.raises(InvalidParameter, match="too few points for kl_gaussian") as exc:
        evaluate(x, target, ["kl_gaussian"], n_boot=10)
    assert "at least 6" in str(exc.value)
    ev = evaluate(x, target, None, n_boot=10)
    assert "kl_gaussian" in {s.name for s in ev.skipped}  # skipped, with the reason, by default


def test_metric_functions_clear_errors():
    x = torch.randn(10, 2, generator=gen(0), dtype=F64)
    with pytest.raises(InvalidParameter, match="y: must have the same dimension"):
        w2(x, torch.zeros(10, 3))
    with pytest.raises(InvalidParameter, match="too few"):
        knn_kl(x[:3], x, k=5)
    with pytest.raises(InvalidParameter, match="k: must be an integer"):
        knn_kl(x, x, k=0)
    with pytest.raises(InvalidParameter, match="duplicated"):
        knn_kl(torch.cat([x, x]), x)
    with pytest.raises(InvalidParameter, match="p: is not supported"):
        from scorelab.metrics import wasserstein

        wasserstein(x, x, p=3)
    with pytest.raises(InvalidParameter, match="d ≤ 2"):
        tv_histogram(torch.zeros(5, 3), Gaussian(dim=3))
    with pytest.raises(InvalidParameter, match="no known density"):
        mean_nll(torch.zeros(5, 64), digits(flatten=True))
    with pytest.raises(InvalidParameter, match="too few"):
        kl_gaussian_fit(x[:3], MU1[:2], COV1[:2, :2])


def test_cli_json(tmp_path):
    from typer.testing import CliRunner

    from scorelab.cli import app

    target = ring8()
    path = tmp_path / "s.npz"
    np.savez(path, samples=target.sample(200, gen(95), dtype=F64).numpy())
    args = [
        "evaluate",
        str(path),
        "--target",
        "{kind: gmm, preset: ring8}",
        "--json",
        "--n-boot",
        "20",
        "--n-boot-ot",
        "10",
        "--metrics",
        "w2,mmd,tv,kl_gaussian",
    ]
    runner = CliRunner()
    out = runner.invoke(app, args)
    assert out.exit_code == 0, out.output
    js = json.loads(out.output)
    assert set(js) == {"w2", "mmd", "tv", "_skipped"}
    assert "Gaussian target" in js["_skipped"]["kl_gaussian"]
    assert len(js["w2"]["ci"]) == 2
    bad = runner.invoke(app, [*args[:3], "{kind: nope}"])
    assert bad.exit_code == 2 and "error" in bad.output and "Traceback" not in bad.output
