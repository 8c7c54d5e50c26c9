"""The built-in metrics, each a registered ``value(x, y)`` with its metadata (``contract.assess``).

``evaluate`` runs them in this order. Most supply a fast path for their bootstrap replicates
(``resample``): the per-point terms of kNN KL and the memorisation scores resampled with the
neighbour sets fixed, every Sinkhorn resample as a column of one batched solve, sliced W2 from
sorted projections repeated by multiplicity, MMD from kernel blocks computed once, and exact
W1/W2 linearised by the optimal dual potential with the resamples at the interval's ends solved
exactly (``_checks.linearised_resamples``). See docs/metrics.md for the estimators.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from ..registry import register
from ..targets import Target
from . import density, gaussian, kernel, knn, memorisation, transport
from ._checks import linearised_resamples
from .contract import MetricContext, Resamples
from .features import digits_classifier, frechet_distance

F64 = torch.float64
KNN_MAX_DIM = 16
KNN_K = 1
N_REFERENCE = 20000
SLICED_DIRECTIONS = 256
TV_DIRECTIONS = 32


def _uniform(k: int) -> np.ndarray:
    return np.full(k, 1.0 / k)


def _boot_note(B: int, basic: bool = False) -> str:
    kind = "basic (bias-corrected)" if basic else "percentile"
    return f"CI: {kind} bootstrap, {B} resamples of the samples"


# --- applicability: the metrics' `needs` ----------------------------------------------------


def _gaussian_moments(t: Target) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(μ, Σ) of a non-degenerate Gaussian target, else None."""
    return t.gaussian_moments() if t.has_density else None


def _gaussian(t: Target, d: int) -> str | None:
    if _gaussian_moments(t) is None:
        return "needs a Gaussian target (closed-form KL to the fitted Gaussian)"
    return None


def _density_for_knn(t: Target, d: int) -> str | None:
    if t.singular or t.is_finite():
        return f"target '{t.kind}' has no density (kNN KL needs one)"
    if d > KNN_MAX_DIM:
        return f"d = {d} > {KNN_MAX_DIM}: the kNN KL estimator is unreliable there"
    return None


def _at_most_2d(t: Target, d: int) -> str | None:
    return f"d = {d} > 2: the histogram TV needs d ≤ 2 (see tv_proj)" if d > 2 else None


def _training_points(t: Target, d: int) -> str | None:
    if not t.is_finite():
        return "needs an empirical or finite-dataset target (training points)"
    return None


def _digits(t: Target, d: int) -> str | None:
    return None if t.kind == "digits" else "only for the digits data set"


# --- Gaussian fits --------------------------------------------------------------------------


def _kl_gaussian_note(c: MetricContext, **kw) -> str:
    bias = c.D * (c.D + 3) / (4 * c.n)
    return (
        f"KL(target ‖ N fitted to samples), nats; small-sample bias ≈ d(d+3)/(4n) = {bias:.3g}; "
        f"floor: one target sample; {_boot_note(c.n_boot)}"
    )


@register(
    "metric",
    "kl_gaussian",
    min_n=lambda d: d + 2,
    needs=_gaussian,
    value_range=(0.0, None),
    options=lambda c: dict(zip(("mean", "cov"), _gaussian_moments(c.target), strict=True)),
    note=_kl_gaussian_note,
)
def kl_gaussian(x, y, mean, cov) -> float:
    """KL(target ‖ the Gaussian fitted to the samples), closed form for a Gaussian target."""
    return gaussian.kl_gaussian_fit(x, mean, cov)


def _moments_source(t: Target) -> str:
    if t.moments() is not None:
        return "exact target moments"
    if t.finite_points() is not None:
        return "moments of the training points"
    return f"target moments from {N_REFERENCE} draws"


def _target_moments(c: MetricContext) -> dict:
    """The target's mean and covariance: exact, of the training points, or from draws."""
    t = c.target
    moments = t.moments()
    if moments is None:
        train = t.finite_points()
        if train is None:
            train = t.sample(N_REFERENCE, c.g, dtype=F64).reshape(N_REFERENCE, -1)
        moments = gaussian.fit_gaussian(train)
    return {"mean": moments[0], "cov": moments[1]}


@register(
    "metric",
    "w2_gaussian",
    min_n=2,
    value_range=(0.0, None),
    ci="basic",
    options=_target_moments,
    note=lambda c, **kw: (
        f"Bures W2 between the Gaussian fits ({_moments_source(c.target)}); floor: one target "
        f"sample; {_boot_note(c.n_boot, True)}"
    ),
)
def w2_gaussian(x, y, mean, cov) -> float:
    """Bures W2 between the Gaussian fits of the samples and of the target."""
    return gaussian.w2_gaussian_fit(x, mean, cov)


# --- optimal transport ----------------------------------------------------------------------


def _wp(x: torch.Tensor, y: torch.Tensor, p: int) -> float:
    cost = transport.emd_cost(_uniform(len(x)), _uniform(len(y)), transport.cost_matrix(x, y, p))
    return cost ** (1 / p)


def _exact_ot_resamples(c: MetricContext, R: Resamples, p: int) -> tuple[float, np.ndarray]:
    """Exact W_p and its bootstrap replicates. The cost is convex in the weights of x, and the
    optimal dual potential f linearises it: every resample gets cost + ⟨f, w − a⟩, and
    n_exact_ot of them (those at the interval's ends) are solved exactly to fit the convexity
    gap, the resampling bias that the basic interval removes. The exact solves run side by
    side on the context's pool (POT's network simplex releases the GIL)."""
    M = transport.cost_matrix(c.x, c.y, p)
    a, b = _uniform(c.n), _uniform(len(c.y))
    W = R.counts.numpy() / c.n
    k = min(c.n_exact_ot, R.B)

    def one(i: int) -> float:
        keep = W[i] > 0
        return transport.emd_cost(W[i][keep], b, M[keep])

    def solve(idx: list[int]) -> list[float]:
        return list(c.pool.map(one, idx)) if c.pool is not None else [one(i) for i in idx]

    cost, f = transport.emd_cost_and_potential(a, b, M)
    boot = linearised_resamples(cost, (W - a) @ f, solve, k)
    return cost ** (1 / p), np.maximum(boot, 0.0) ** (1 / p)


def _exact_ot_note(c: MetricContext, **kw) -> str:
    sub = f"subsampled to {c.max_points} per side; " if len(c.reference) > c.max_points else ""
    k = min(c.n_exact_ot, c.n_boot)
    return (
        f"exact OT (POT emd2); {sub}CI: basic (bias-corrected) bootstrap, {c.n_boot} resamples "
        f"of the samples linearised by the optimal dual potential, the {k} at the interval's "
        "ends solved exactly to correct for the convexity gap"
    )


_EXACT_OT = dict(
    value_range=(0.0, None),
    ci="basic",
    max_points=True,
    concurrent_floor=True,
    note=_exact_ot_note,
)


@register("metric", "w1", resample=functools.partial(_exact_ot_resamples, p=1), **_EXACT_OT)
def w1(x, y) -> float:
    """Exact W1 between the samples and a target sample (optimal transport)."""
    return _wp(x, y, 1)


@register("metric", "w2", resample=functools.partial(_exact_ot_resamples, p=2), **_EXACT_OT)
def w2(x, y) -> float:
    """Exact W2 between the samples and a target sample (optimal transport)."""
    return _wp(x, y, 2)


def _sliced_resamples(c: MetricContext, R: Resamples, projections) -> tuple[float, list]:
    value = sliced_w2(c.x, c.y, projections)
    return value, transport.sliced_w2_resamples(c.x, c.y, projections, R.counts)


@register(
    "metric",
    "sliced_w2",
    value_range=(0.0, None),
    ci="basic",
    resamples="n_boot_ot",
    options=lambda c: {"projections": transport.random_directions(c.D, SLICED_DIRECTIONS, c.g)},
    resample=_sliced_resamples,
    note=lambda c, **kw: f"{SLICED_DIRECTIONS} random directions; {_boot_note(c.n_boot_ot, True)}",
)
def sliced_w2(x, y, projections) -> float:
    """Sliced W2 over 256 random directions."""
    return transport.sliced_w2(x, y, projections=projections)


def _sinkhorn_resamples(c: MetricContext, R: Resamples, eps: float) -> tuple[float, list]:
    """The value and every resample together: the resamples are weight vectors on the same
    points, solved as the columns of one batched Sinkhorn per cost matrix
    (``transport.entropic_ot_many``); OT_ε(b, b) is shared by all."""
    cost = transport.cost_matrix
    counts = R.counts.numpy()
    a = np.concatenate([_uniform(c.n)[:, None], (counts / counts.sum(1, keepdims=True)).T], 1)
    b = _uniform(len(c.y))
    oxy = transport.entropic_ot_many(cost(c.x, c.y), a, b, eps)
    oxx = transport.entropic_ot_many(cost(c.x, c.x), a, None, eps)
    ob = transport.entropic_ot_many(cost(c.y, c.y), b, None, eps)[0]
    s = oxy - 0.5 * oxx - 0.5 * ob
    return float(s[0]), s[1:].tolist()


def _sinkhorn_note(c: MetricContext, eps: float) -> str:
    mp = min(c.max_points, transport.MAX_POINTS_SINKHORN)
    sub = f"subsampled to {mp} per side; " if len(c.reference) > mp else ""
    return (
        f"debiased Sinkhorn divergence, squared-Euclidean cost, ε = {eps:.3g} "
        f"(0.05 × 2 tr Cov(target)); {sub}{_boot_note(c.n_boot_ot, True)}"
    )


@register(
    "metric",
    "sinkhorn",
    min_n=2,
    value_range=(0.0, None),
    ci="basic",
    resamples="n_boot_ot",
    max_points=transport.MAX_POINTS_SINKHORN,
    # ε from the whole reference sample, so that value and floor share it
    options=lambda c: {"eps": transport.default_eps(c.reference)},
    resample=_sinkhorn_resamples,
    note=_sinkhorn_note,
)
def sinkhorn(x, y, eps) -> float:
    """Debiased Sinkhorn divergence, squared-Euclidean cost."""
    cost = transport.cost_matrix
    a, b = _uniform(len(x)), _uniform(len(y))
    return transport.sinkhorn_from_costs(a, b, cost(x, y), cost(x, x), cost(y, y), eps)


# --- kernel and density metrics -------------------------------------------------------------


def _mmd_resamples(c: MetricContext, R: Resamples, bandwidths) -> tuple[float, list, dict]:
    """Each kernel block once: value, permutation test and resamples all read them (the
    permutations are drawn before the resamples)."""
    n, m = len(c.x), len(c.y)
    Kxx, Kxy, Kyy = (
        kernel.rbf_kernel(a, b, bandwidths) for a, b in ((c.x, c.x), (c.x, c.y), (c.y, c.y))
    )
    syy = (Kyy.sum() - Kyy.diagonal().sum()) / (m * (m - 1))
    value = float(kernel.mmd2_from_blocks(Kxx, Kxy, Kyy))
    pvalue = None
    if c.n_permutations:
        K = torch.cat([torch.cat([Kxx, Kxy], 1), torch.cat([Kxy.T, Kyy], 1)])
        pvalue = kernel.permutation_pvalue(K, n, value, c.n_permutations, c.g)
    C = R.counts  # [B, n]
    sq = (C**2).sum(1)
    sxx = (((C @ Kxx) * C).sum(1) - sq * Kxx.diagonal()[0]) / (n * n - sq)
    sxy = (C @ Kxy).sum(1) / (n * m)
    return value, (sxx + syy - 2 * sxy).tolist(), {"pvalue": pvalue}


def _mmd_note(c: MetricContext, bandwidths, pvalue=None) -> str:
    note = (
        "unbiased MMD² (may be < 0), sum of RBF kernels at "
        f"{', '.join(f'{h:.3g}' for h in bandwidths)} (0.25–4 × median distance)"
    )
    if pvalue is not None:
        note += f"; permutation p-value {pvalue:.3g} ({c.n_permutations} permutations)"
    return note + f"; {_boot_note(c.n_boot)} (pairs of copies excluded)"


@register(
    "metric",
    "mmd",
    min_n=2,
    max_points=True,
    options=lambda c: {"bandwidths": kernel.bandwidths_for(c.y)},
    resample=_mmd_resamples,
    note=_mmd_note,
)
def mmd(x, y, bandwidths) -> float:
    """Unbiased MMD² with a sum of RBF kernels."""
    K = functools.partial(kernel.rbf_kernel, bandwidths=bandwidths)
    return float(kernel.mmd2_from_blocks(K(x, x), K(x, y), K(y, y)))


def _knn_resamples(c: MetricContext, R: Resamples, reverse: bool) -> tuple[float, np.ndarray]:
    """The bootstrap of the per-point terms, neighbour sets held fixed (a resample with
    duplicated points would have zero neighbour distances)."""
    terms, const = (
        knn.knn_kl_terms(c.y, c.x, KNN_K) if reverse else knn.knn_kl_terms(c.x, c.y, KNN_K)
    )
    return float(terms.mean() + const), terms[R.index.numpy()].mean(1) + const


def _knn_note(c: MetricContext, reverse: bool) -> str:
    what = "KL(target ‖ samples)" if reverse else "KL(samples ‖ target)"
    return (
        f"{what}, Wang–Kulkarni–Verdú k = {KNN_K}, nats; CI: bootstrap of the per-point "
        f"terms with neighbour sets held fixed ({c.n_boot} resamples; approximate)"
    )


def _register_knn(name: str, reverse: bool):
    return register(
        "metric",
        name,
        min_n=KNN_K + 1,
        needs=_density_for_knn,
        lower_is_better=True,
        resample=functools.partial(_knn_resamples, reverse=reverse),
        note=functools.partial(_knn_note, reverse=reverse),
    )


@_register_knn("kl_knn", reverse=False)
def kl_knn(x, y) -> float:
    """KL(samples ‖ target), k-nearest-neighbour estimator."""
    return knn.knn_kl(x, y, KNN_K)


@_register_knn("kl_knn_reverse", reverse=True)
def kl_knn_reverse(x, y) -> float:
    """KL(target ‖ samples), k-nearest-neighbour estimator."""
    return knn.knn_kl(y, x, KNN_K)


def _nll_interval(x, y, target) -> tuple[float, float]:
    value, se = density.mean_nll(x, target)
    return value - 1.96 * se, value + 1.96 * se


def _nll_note(c: MetricContext, target) -> str:
    h, hse = density.entropy(target, N_REFERENCE, c.g)
    how = "exact" if hse == 0 else f"± {hse:.2g}, Monte Carlo on {N_REFERENCE} draws"
    return (
        f"mean −log p(samples), nats; target entropy H = {h:.4g} ({how}); floor: one target "
        "sample; CI: analytic, mean ± 1.96 s.e."
    )


@register(
    "metric",
    "nll",
    context=("target",),
    min_n=2,
    needs_density=True,
    lower_is_better=None,  # its floor, the entropy, is what samples of the target give
    ci=_nll_interval,
    note=_nll_note,
)
def nll(x, y, target) -> float:
    """Mean −log p(samples) under the target, beside the target's entropy."""
    return density.mean_nll(x, target)[0]


def _reference(c: MetricContext) -> torch.Tensor:
    return c.target.sample(N_REFERENCE, c.g, dtype=F64).reshape(N_REFERENCE, -1)


def _histogram_grid(c: MetricContext) -> dict:
    bins = int(min(60, max(5, (c.n / 10) ** (1 / c.D))))
    return {"grid": density.HistogramGrid.around(c.target, bins, _reference(c))}


def _tv_resamples(c: MetricContext, R: Resamples, grid) -> tuple[float, list]:
    cells = grid.cells(c.x)
    idx = R.index
    counts = torch.zeros(R.B, grid.bins**grid.D + 1, dtype=F64).scatter_add_(
        1, cells[idx], torch.ones(idx.shape, dtype=F64)
    )
    return grid.tv(c.x), grid.tv_from_counts(counts).tolist()


@register(
    "metric",
    "tv",
    needs_density=True,
    needs=_at_most_2d,
    value_range=(0.0, 1.0),
    ci="basic",
    options=_histogram_grid,
    resample=_tv_resamples,
    note=lambda c, grid: (
        f"histogram TV on {grid.bins}^{c.D} cells, cell masses by 8^{c.D}-point quadrature; "
        + _boot_note(c.n_boot, True)
    ),
)
def tv(x, y, grid) -> float:
    """Histogram total variation (d ≤ 2)."""
    return grid.tv(x)


def _projected_histograms(c: MetricContext) -> dict:
    bins = int(min(50, max(5, math.sqrt(c.n) / 2)))
    th = transport.random_directions(c.D, TV_DIRECTIONS, c.g)
    return {"histograms": density.ProjectedHistograms(c.target, th, bins, _reference(c))}


def _tv_proj_note(c: MetricContext, histograms) -> str:
    how = "exact 1-D mixture" if histograms.exact else f"{N_REFERENCE} target draws"
    return (
        f"mean TV of {TV_DIRECTIONS} random 1-D projections, {histograms.bins} equal-mass "
        f"cells, target cell masses from {how}; {_boot_note(c.n_boot, True)}"
    )


@register(
    "metric",
    "tv_proj",
    value_range=(0.0, 1.0),
    ci="basic",
    options=_projected_histograms,
    resample=lambda c, R, histograms: (
        tv_proj(c.x, c.y, histograms),
        histograms.tv(c.x, R.counts).tolist(),
    ),
    note=_tv_proj_note,
)
def tv_proj(x, y, histograms) -> float:
    """Mean total variation of 32 random 1-D projections."""
    return float(histograms.tv(x)[0])


# --- memorisation ---------------------------------------------------------------------------


def _training_set(c: MetricContext) -> dict:
    train = c.target.finite_points()
    return {"train": train, "radius": memorisation.default_radius(train)}


def _hits(x, train, radius) -> np.ndarray:
    return (memorisation.nn_distances(x, train)[:, 0] <= radius).astype(np.float64)


@register(
    "metric",
    "memorised",
    needs=_training_points,
    value_range=(0.0, 1.0),
    options=_training_set,
    resample=lambda c, R, train, radius: _per_point(_hits(c.x, train, radius), R),
    note=lambda c, train, radius: (
        f"fraction of samples within r = {radius:.3g} (⅓ median NN spacing of the training "
        f"points) of a training point; floor: target draws are training points; "
        f"{_boot_note(c.n_boot)}"
    ),
)
def memorised(x, y, train, radius) -> float:
    """Fraction of samples that copy a training point."""
    return float(_hits(x, train, radius).mean())


def _per_point(terms: np.ndarray, R: Resamples) -> tuple[float, np.ndarray]:
    """A mean of per-point terms and its replicates (the terms resampled)."""
    return float(terms.mean()), terms[R.index.numpy()].mean(1)


def _ratios(x, train) -> np.ndarray:
    d = memorisation.nn_distances(x, train)
    return d[:, 0] / np.maximum(d[:, 1], np.finfo(np.float64).tiny)


@register(
    "metric",
    "nn_ratio",
    needs=_training_points,
    lower_is_better=False,  # near 0: copies of training points
    value_range=(0.0, 1.0),
    options=lambda c: {"train": c.target.finite_points()},
    resample=lambda c, R, train: _per_point(_ratios(c.x, train), R),
    note=lambda c, train: (
        "mean d1/d2 to the two nearest distinct training points; fraction < 1/3: "
        f"{float(np.mean(_ratios(c.x, train) < 1 / 3)):.3g}; {_boot_note(c.n_boot)}"
    ),
)
def nn_ratio(x, y, train) -> float:
    """Mean d1/d2 to the two nearest training points (near 0: copies)."""
    return float(_ratios(x, train).mean())


# --- features -------------------------------------------------------------------------------


def _fd_resamples(c: MetricContext, R: Resamples, classifier) -> tuple[float, list]:
    fx, fy = classifier.features(c.x), classifier.features(c.y)
    return frechet_distance(fx, fy), [frechet_distance(fx[i], fy) for i in R.index]


@register(
    "metric",
    "fd_digits",
    min_n=2,
    needs=_digits,
    value_range=(0.0, None),
    ci="basic",
    options=lambda c: {"classifier": digits_classifier(0)},
    resample=_fd_resamples,
    note=lambda c, classifier: (
        "Fréchet distance in the 32-d penultimate features of a small MLP trained on the "
        f"digits (test accuracy {classifier.test_accuracy:.3f}); NOT Inception FID; "
        + _boot_note(c.n_boot, True)
    ),
)
def fd_digits(x, y, classifier) -> float:
    """Fréchet distance in the features of a small digits classifier."""
    return frechet_distance(classifier.features(x), classifier.features(y))
