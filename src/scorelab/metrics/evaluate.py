"""``evaluate``: every metric that applies, each with its finite-sample floor and a CI.

floor: the same metric between two independent target samples of the size of ``samples``
(for metrics against a closed form, kl_gaussian, w2_gaussian and nll: the metric of one target
sample of that size). CI: percentile bootstrap over resamples of the generated samples (the
resample enters as multiplicities, so OT and MMD never see duplicated points; for exact W1/W2,
resamples linearised by the optimal dual potential with the convexity gap solved exactly at
the interval's ends, ``_checks.linearised_resamples``), or analytic (nll: mean ± 1.96 s.e.);
each result's ``note`` says which.

Each metric is one function ``(MetricContext) -> MetricResult`` registered in the "metric"
registry (``scorelab.registry``), with the metadata ``evaluate`` reads:

* ``min_n``: the fewest samples it works with, a number or a function of the dimension d
  (default 1);
* ``needs``: a function ``(target, d) -> reason | None`` that says why the metric does not
  apply to a target (default: it applies to every target);
* ``default``: whether ``evaluate`` runs it when no metrics are named (default True).

``evaluate`` runs the registered metrics in registration order; see docs/metrics.md,
"Adding a metric".
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import torch

from .. import registry, threads
from ..errors import InvalidParameter
from ..progress import tracker
from ..registry import register
from ..targets import NotAvailable, Target
from . import density, gaussian, kernel, knn, memorisation, transport
from ._checks import (
    as_points,
    basic_ci,
    bootstrap_counts,
    linearised_resamples,
    percentile_ci,
    positive_int,
    subsample,
)
from .features import digits_classifier, frechet_distance

F64 = torch.float64
KNN_MAX_DIM = 16
KNN_K = 1
N_REFERENCE = 20000
MAX_ABS = 1e100  # larger values overflow the squared distances of OT, MMD and kNN


def __getattr__(name: str):
    if name == "METRICS":  # computed: plugins and users register metrics after this import
        return metric_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def metric_names(default_only: bool = False) -> tuple[str, ...]:
    """The registered metrics, in registration order (``default_only``: those that
    ``evaluate`` runs when no metrics are named)."""
    return tuple(
        nm
        for nm, e in registry.entries("metric").items()
        if not default_only or e.meta.get("default", True)
    )


def check_metric_names(metrics: Sequence[str] | str, field: str = "metrics") -> list[str]:
    """``metrics`` (a name or a list of names) as a list, or ``InvalidParameter`` naming the
    first unknown one and listing the registered metrics."""
    names = [metrics] if isinstance(metrics, str) else list(metrics)
    known = metric_names()
    for nm in names:
        if nm not in known:
            raise InvalidParameter(field, "names an unknown metric", nm, ", ".join(known))
    return names


@dataclass
class MetricResult:
    name: str
    value: float
    floor: float
    ci: tuple[float, float] | None
    note: str = ""


@dataclass
class Skipped:
    name: str
    reason: str


@dataclass
class Evaluation:
    results: list[MetricResult] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    n: int = 0
    target: str = ""

    def __getitem__(self, name: str) -> MetricResult:
        for r in self.results:
            if r.name == name:
                return r
        raise KeyError(name)

    def __contains__(self, name: str) -> bool:
        return any(r.name == name for r in self.results)

    def to_json(self) -> dict:
        """``{name: {"value", "floor", "ci": [lo, hi] | None}, "_skipped": {name: reason}}``."""
        out: dict = {}
        for r in self.results:
            out[r.name] = {
                "value": _num(r.value),
                "floor": _num(r.floor),
                "ci": None if r.ci is None else [_num(r.ci[0]), _num(r.ci[1])],
            }
        out["_skipped"] = {s.name: s.reason for s in self.skipped}
        return out

    def table(self) -> str:
        """A plain-text table, then the notes and the skipped metrics with their reasons."""
        rows = [("metric", "value", "floor", "95% CI")]
        for r in self.results:
            ci = "—" if r.ci is None else f"[{r.ci[0]:.4g}, {r.ci[1]:.4g}]"
            rows.append((r.name, f"{r.value:.4g}", f"{r.floor:.4g}", ci))
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        lines = [f"{self.n} samples vs target '{self.target}'"]
        for j, row in enumerate(rows):
            lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
            if j == 0:
                lines.append("  ".join("-" * w for w in widths))
        notes = [f"  {r.name}: {r.note}" for r in self.results if r.note]
        if notes:
            lines += ["", "notes:", *notes]
        if self.skipped:
            lines += ["", "skipped:", *(f"  {s.name}: {s.reason}" for s in self.skipped)]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def _num(v: float) -> float | None:
    return float(v) if v is not None and math.isfinite(v) else None


@dataclass
class MetricContext:
    """What a metric function sees: the samples, two independent target samples of the same
    size (the reference, and the floor's), the target, the generator that drives every random
    draw, and ``evaluate``'s settings."""

    x: torch.Tensor  # samples [n, D], float64
    y: torch.Tensor  # target sample [n, D] (reference)
    y2: torch.Tensor  # independent target sample [n, D] (for floors)
    target: Target
    g: torch.Generator
    n_boot: int  # bootstrap resamples for the CIs
    n_boot_ot: int  # ... for the Sinkhorn and sliced-W2 CIs
    max_points: int  # cap per side of exact OT and MMD
    n_permutations: int  # MMD permutation test size (0: none)
    n_exact_ot: int = 6  # resamples solved exactly by the exact W1/W2 CIs
    workers: int = 1  # threads for independent exact OT solves

    @property
    def n(self) -> int:
        return self.x.shape[0]

    @property
    def D(self) -> int:
        return self.x.shape[1]

    def boot_index(self, B: int) -> torch.Tensor:
        """``[B, n]`` row indices of B resamples of the samples with replacement."""
        return torch.randint(0, self.n, (B, self.n), generator=self.g)


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


def _density(t: Target, d: int) -> str | None:
    return None if t.has_density else f"target '{t.kind}' has no known density"


def _density_in_2d(t: Target, d: int) -> str | None:
    if not t.has_density:
        return f"target '{t.kind}' has no known density"
    if d > 2:
        return f"d = {d} > 2: the histogram TV needs d ≤ 2 (see tv_proj)"
    return None


def _training_points(t: Target, d: int) -> str | None:
    if not t.is_finite():
        return "needs an empirical or finite-dataset target (training points)"
    return None


def _digits(t: Target, d: int) -> str | None:
    return None if t.kind == "digits" else "only for the digits data set"


def _why_not(e: registry.Entry, c: MetricContext) -> str | None:
    needs = e.meta.get("needs")
    return None if needs is None else needs(c.target, c.D)


def _min_n(e: registry.Entry, d: int) -> int:
    m = e.meta.get("min_n", 1)
    return int(m(d) if callable(m) else m)


# --- the metrics ----------------------------------------------------------------------------


def _boot_note(B: int, basic: bool = False) -> str:
    kind = "basic (bias-corrected)" if basic else "percentile"
    return f"CI: {kind} bootstrap, {B} resamples of the samples"


@register("metric", "kl_gaussian", min_n=lambda d: d + 2, needs=_gaussian)
def _m_kl_gaussian(c: MetricContext) -> MetricResult:
    """KL(target ‖ the Gaussian fitted to the samples), closed form for a Gaussian target."""
    mu, cov = _gaussian_moments(c.target)
    f = lambda z: gaussian.kl_gaussian_fit(z, mu, cov)  # noqa: E731
    boot = [f(c.x[i]) for i in c.boot_index(c.n_boot)]
    bias = c.D * (c.D + 3) / (4 * c.n)
    note = (
        f"KL(target ‖ N fitted to samples), nats; small-sample bias ≈ d(d+3)/(4n) = {bias:.3g}; "
        f"floor: one target sample; {_boot_note(c.n_boot)}"
    )
    return MetricResult("kl_gaussian", f(c.x), f(c.y2), percentile_ci(boot), note)


def _target_moments(c: MetricContext) -> tuple[torch.Tensor, torch.Tensor, str]:
    t = c.target
    moments = t.moments()
    if moments is not None:
        return *moments, "exact target moments"
    train = t.finite_points()
    if train is not None:
        m, v = gaussian.fit_gaussian(train)
        return m, v, "moments of the training points"
    ref = t.sample(N_REFERENCE, c.g, dtype=F64).reshape(N_REFERENCE, -1)
    m, v = gaussian.fit_gaussian(ref)
    return m, v, f"target moments from {N_REFERENCE} draws"


@register("metric", "w2_gaussian", min_n=2)
def _m_w2_gaussian(c: MetricContext) -> MetricResult:
    """Bures W2 between the Gaussian fits of the samples and of the target."""
    mu, cov, how = _target_moments(c)
    f = lambda z: gaussian.w2_gaussian_fit(z, mu, cov)  # noqa: E731
    boot = [f(c.x[i]) for i in c.boot_index(c.n_boot)]
    note = f"Bures W2 between the Gaussian fits ({how}); floor: one target sample; " + _boot_note(
        c.n_boot, True
    )
    v = f(c.x)
    return MetricResult("w2_gaussian", v, f(c.y2), basic_ci(v, boot), note)


def _exact_ot(c: MetricContext, p: int) -> MetricResult:
    xs, ys = subsample(c.x, c.max_points, c.g), subsample(c.y, c.max_points, c.g)
    y2s = subsample(c.y2, c.max_points, c.g)
    M = transport.cost_matrix(xs, ys, p)
    u = lambda k: np.full(k, 1.0 / k)  # noqa: E731
    a, b = u(len(xs)), u(len(ys))
    # One network-simplex solve per resample made these CIs cost seconds each. The cost is
    # convex in the weights of xs, and the optimal dual potential f linearises it: every
    # resample gets cost + ⟨f, w − a⟩, and n_exact_ot of them are solved exactly to fit the
    # convexity gap (the resampling bias) that the basic interval removes
    W = bootstrap_counts(len(xs), c.n_boot, c.g).numpy() / len(xs)
    k = min(c.n_exact_ot, c.n_boot)

    def one(i: int) -> float:
        keep = W[i] > 0
        return transport.emd_cost(W[i][keep], b, M[keep])

    # POT's network simplex releases the GIL: independent solves run side by side (value and
    # floor, then the exact resamples; 2 threads: 2× on an idle 2-core machine)
    with ThreadPoolExecutor(max(1, c.workers)) as pool:
        floor_job = pool.submit(
            transport.emd_cost, u(len(y2s)), b, transport.cost_matrix(y2s, ys, p)
        )
        cost, f = transport.emd_cost_and_potential(a, b, M)
        boot = linearised_resamples(cost, (W - a) @ f, lambda idx: list(pool.map(one, idx)), k)
        floor = floor_job.result()
    boot = np.maximum(boot, 0.0) ** (1 / p)
    value = cost ** (1 / p)
    sub = f"subsampled to {c.max_points} per side; " if c.n > c.max_points else ""
    note = (
        f"exact OT (POT emd2); {sub}CI: basic (bias-corrected) bootstrap, {c.n_boot} resamples "
        f"of the samples linearised by the optimal dual potential, the {k} at the interval's "
        "ends solved exactly to correct for the convexity gap"
    )
    return MetricResult(f"w{p}", value, floor ** (1 / p), basic_ci(value, boot), note)


@register("metric", "w1")
def _m_w1(c: MetricContext) -> MetricResult:
    """Exact W1 between the samples and a target sample (optimal transport)."""
    return _exact_ot(c, 1)


@register("metric", "w2")
def _m_w2(c: MetricContext) -> MetricResult:
    """Exact W2 between the samples and a target sample (optimal transport)."""
    return _exact_ot(c, 2)


@register("metric", "sliced_w2")
def _m_sliced(c: MetricContext) -> MetricResult:
    """Sliced W2 over 256 random directions."""
    th = transport.random_directions(c.D, 256, c.g)
    f = lambda z: transport.sliced_w2(z, c.y, projections=th)  # noqa: E731
    counts = bootstrap_counts(c.n, c.n_boot_ot, c.g)  # the draws of boot_index, as counts
    boot = transport.sliced_w2_resamples(c.x, c.y, th, counts)
    note = f"256 random directions; {_boot_note(c.n_boot_ot, True)}"
    v = f(c.x)
    return MetricResult("sliced_w2", v, f(c.y2), basic_ci(v, boot), note)


@register("metric", "sinkhorn", min_n=2)
def _m_sinkhorn(c: MetricContext) -> MetricResult:
    """Debiased Sinkhorn divergence, squared-Euclidean cost."""
    mp = min(c.max_points, transport.MAX_POINTS_SINKHORN)
    xs, ys, y2s = (subsample(z, mp, c.g) for z in (c.x, c.y, c.y2))
    eps = transport.default_eps(c.y)
    u = lambda k: np.full(k, 1.0 / k)  # noqa: E731
    cost = transport.cost_matrix
    # the resamples are weight vectors on the same points (bootstrap_counts): the value and
    # every resample solve together, as the columns of one batched Sinkhorn per cost matrix
    # (transport.entropic_ot_many); OT_ε(b, b) is shared by value, floor and resamples
    counts = bootstrap_counts(len(xs), c.n_boot_ot, c.g).numpy()
    a = np.concatenate([u(len(xs))[:, None], (counts / counts.sum(1, keepdims=True)).T], 1)
    oxy = transport.entropic_ot_many(cost(xs, ys), a, u(len(ys)), eps)
    oxx = transport.entropic_ot_many(cost(xs, xs), a, None, eps)
    ob = transport.entropic_ot_many(cost(ys, ys), u(len(ys)), None, eps)[0]
    o2y = transport.entropic_ot_many(cost(y2s, ys), u(len(y2s)), u(len(ys)), eps)[0]
    o22 = transport.entropic_ot_many(cost(y2s, y2s), u(len(y2s)), None, eps)[0]
    s = oxy - 0.5 * oxx - 0.5 * ob
    value, boot = float(s[0]), s[1:].tolist()
    floor = float(o2y - 0.5 * o22 - 0.5 * ob)
    sub = f"subsampled to {mp} per side; " if c.n > mp else ""
    note = (
        f"debiased Sinkhorn divergence, squared-Euclidean cost, ε = {eps:.3g} "
        f"(0.05 × 2 tr Cov(target)); {sub}{_boot_note(c.n_boot_ot, True)}"
    )
    return MetricResult("sinkhorn", value, floor, basic_ci(value, boot), note)


@register("metric", "mmd", min_n=2)
def _m_mmd(c: MetricContext) -> MetricResult:
    """Unbiased MMD² with a sum of RBF kernels."""
    xs, ys, y2s = (subsample(z, c.max_points, c.g) for z in (c.x, c.y, c.y2))
    hs = kernel.bandwidths_for(ys)
    n, m = xs.shape[0], ys.shape[0]
    # each kernel block once: value, floor, permutations and resamples all read these
    Kxx, Kxy, Kyy = (kernel.rbf_kernel(a, b, hs) for a, b in ((xs, xs), (xs, ys), (ys, ys)))
    syy = (Kyy.sum() - Kyy.diagonal().sum()) / (m * (m - 1))
    value = float(kernel.mmd2_from_blocks(Kxx, Kxy, Kyy))
    pval = None
    if c.n_permutations:
        K = torch.cat([torch.cat([Kxx, Kxy], 1), torch.cat([Kxy.T, Kyy], 1)])
        pval = kernel.permutation_pvalue(K, n, value, c.n_permutations, c.g)
    K22 = kernel.rbf_kernel(y2s, y2s, hs)
    floor = float(kernel.mmd2_from_blocks(K22, kernel.rbf_kernel(y2s, ys, hs), Kyy))
    del K22
    C = bootstrap_counts(n, c.n_boot, c.g)  # [B, n]
    sq = (C**2).sum(1)
    sxx = (((C @ Kxx) * C).sum(1) - sq * Kxx.diagonal()[0]) / (n * n - sq)
    sxy = (C @ Kxy).sum(1) / (n * m)
    boot = (sxx + syy - 2 * sxy).tolist()
    note = (
        "unbiased MMD² (may be < 0), sum of RBF kernels at "
        f"{', '.join(f'{h:.3g}' for h in hs)} (0.25–4 × median distance)"
    )
    if pval is not None:
        note += f"; permutation p-value {pval:.3g} ({c.n_permutations} permutations)"
    note += f"; {_boot_note(c.n_boot)} (pairs of copies excluded)"
    return MetricResult("mmd", value, floor, percentile_ci(boot), note)


def _knn_kl(c: MetricContext, reverse: bool) -> MetricResult:
    if reverse:
        terms, const = knn.knn_kl_terms(c.y, c.x, KNN_K)
        floor = knn.knn_kl(c.y, c.y2, KNN_K)
    else:
        terms, const = knn.knn_kl_terms(c.x, c.y, KNN_K)
        floor = knn.knn_kl(c.y2, c.y, KNN_K)
    idx = c.boot_index(c.n_boot).numpy()
    boot = terms[idx].mean(1) + const
    what = "KL(target ‖ samples)" if reverse else "KL(samples ‖ target)"
    note = (
        f"{what}, Wang–Kulkarni–Verdú k = {KNN_K}, nats; CI: bootstrap of the per-point "
        f"terms with neighbour sets held fixed ({c.n_boot} resamples; approximate)"
    )
    name = "kl_knn_reverse" if reverse else "kl_knn"
    return MetricResult(name, float(terms.mean() + const), floor, percentile_ci(boot), note)


@register("metric", "kl_knn", min_n=KNN_K + 1, needs=_density_for_knn)
def _m_kl_knn(c: MetricContext) -> MetricResult:
    """KL(samples ‖ target), k-nearest-neighbour estimator."""
    return _knn_kl(c, reverse=False)


@register("metric", "kl_knn_reverse", min_n=KNN_K + 1, needs=_density_for_knn)
def _m_kl_knn_reverse(c: MetricContext) -> MetricResult:
    """KL(target ‖ samples), k-nearest-neighbour estimator."""
    return _knn_kl(c, reverse=True)


@register("metric", "nll", min_n=2, needs=_density)
def _m_nll(c: MetricContext) -> MetricResult:
    """Mean −log p(samples) under the target, beside the target's entropy."""
    value, se = density.mean_nll(c.x, c.target)
    floor, _ = density.mean_nll(c.y2, c.target)
    h, hse = density.entropy(c.target, N_REFERENCE, c.g)
    how = "exact" if hse == 0 else f"± {hse:.2g}, Monte Carlo on {N_REFERENCE} draws"
    note = (
        f"mean −log p(samples), nats; target entropy H = {h:.4g} ({how}); floor: one target "
        "sample; CI: analytic, mean ± 1.96 s.e."
    )
    return MetricResult("nll", value, floor, (value - 1.96 * se, value + 1.96 * se), note)


@register("metric", "tv", needs=_density_in_2d)
def _m_tv(c: MetricContext) -> MetricResult:
    """Histogram total variation (d ≤ 2)."""
    bins = int(min(60, max(5, (c.n / 10) ** (1 / c.D))))
    ref = c.target.sample(N_REFERENCE, c.g, dtype=F64).reshape(N_REFERENCE, -1)
    grid = density.HistogramGrid.around(c.target, bins, ref)
    cells = grid.cells(c.x)
    K = grid.bins**grid.D + 1
    value = grid.tv(c.x)
    idx = c.boot_index(c.n_boot)
    counts = torch.zeros(c.n_boot, K, dtype=F64).scatter_add_(
        1, cells[idx], torch.ones(idx.shape, dtype=F64)
    )
    boot = grid.tv_from_counts(counts).tolist()
    note = (
        f"histogram TV on {bins}^{c.D} cells, cell masses by 8^{c.D}-point quadrature; "
        + _boot_note(c.n_boot, True)
    )
    return MetricResult("tv", value, grid.tv(c.y2), basic_ci(value, boot), note)


@register("metric", "tv_proj")
def _m_tv_proj(c: MetricContext) -> MetricResult:
    """Mean total variation of 32 random 1-D projections."""
    P = 32
    bins = int(min(50, max(5, math.sqrt(c.n) / 2)))
    th = transport.random_directions(c.D, P, c.g)
    ref = c.target.sample(N_REFERENCE, c.g, dtype=F64).reshape(N_REFERENCE, -1)
    ph = density.ProjectedHistograms(c.target, th, bins, ref)
    value, floor = float(ph.tv(c.x)[0]), float(ph.tv(c.y2)[0])
    boot = ph.tv(c.x, bootstrap_counts(c.n, c.n_boot, c.g)).tolist()
    how = "exact 1-D mixture" if ph.exact else f"{N_REFERENCE} target draws"
    note = (
        f"mean TV of {P} random 1-D projections, {bins} equal-mass cells, target cell masses "
        f"from {how}; {_boot_note(c.n_boot, True)}"
    )
    return MetricResult("tv_proj", value, floor, basic_ci(value, boot), note)


@register("metric", "memorised", needs=_training_points)
def _m_memorised(c: MetricContext) -> MetricResult:
    """Fraction of samples that copy a training point."""
    train = c.target.finite_points()
    r = memorisation.default_radius(train)
    hit = (memorisation.nn_distances(c.x, train)[:, 0] <= r).astype(np.float64)
    floor = memorisation.memorised_fraction(c.y2, train, r)
    boot = hit[c.boot_index(c.n_boot).numpy()].mean(1)
    note = (
        f"fraction of samples within r = {r:.3g} (⅓ median NN spacing of the training points) "
        f"of a training point; floor: target draws are training points; {_boot_note(c.n_boot)}"
    )
    return MetricResult("memorised", float(hit.mean()), floor, percentile_ci(boot), note)


@register("metric", "nn_ratio", needs=_training_points)
def _m_nn_ratio(c: MetricContext) -> MetricResult:
    """Mean d1/d2 to the two nearest training points (near 0: copies)."""
    train = c.target.finite_points()
    d = memorisation.nn_distances(c.x, train)
    ratio = d[:, 0] / np.maximum(d[:, 1], np.finfo(np.float64).tiny)
    floor, _ = memorisation.nn_ratio(c.y2, train)
    boot = ratio[c.boot_index(c.n_boot).numpy()].mean(1)
    note = (
        f"mean d1/d2 to the two nearest distinct training points; fraction < 1/3: "
        f"{float(np.mean(ratio < 1 / 3)):.3g}; {_boot_note(c.n_boot)}"
    )
    return MetricResult("nn_ratio", float(ratio.mean()), floor, percentile_ci(boot), note)


@register("metric", "fd_digits", min_n=2, needs=_digits)
def _m_fd_digits(c: MetricContext) -> MetricResult:
    """Fréchet distance in the features of a small digits classifier."""
    clf = digits_classifier(0)
    fx, fy, fy2 = clf.features(c.x), clf.features(c.y), clf.features(c.y2)
    boot = [frechet_distance(fx[i], fy) for i in c.boot_index(c.n_boot)]
    note = (
        "Fréchet distance in the 32-d penultimate features of a small MLP trained on the "
        f"digits (test accuracy {clf.test_accuracy:.3f}); NOT Inception FID; "
        + _boot_note(c.n_boot, True)
    )
    v = frechet_distance(fx, fy)
    return MetricResult("fd_digits", v, frechet_distance(fy2, fy), basic_ci(v, boot), note)


def evaluate(
    samples,
    target: Target,
    metrics: Sequence[str] | str | None = None,
    n_boot: int = 200,
    generator: torch.Generator | None = None,
    max_points: int = 2000,
    *,
    n_boot_ot: int = 25,
    n_exact_ot: int = 6,
    n_permutations: int = 0,
    progress: bool | str = False,
) -> Evaluation:
    """Every requested metric (default: every registered default metric that applies, in
    registration order) with floor and CI.

    ``samples`` ``[n, *event_shape]`` (or ``[n, D]``); ``max_points`` caps each side of exact
    OT and MMD (Sinkhorn: min(max_points, 2000)); ``n_boot_ot`` is the number of bootstrap
    resamples for the Sinkhorn and sliced-W2 CIs (solved together, one batch each); the exact
    W1/W2 CIs linearise ``n_boot`` resamples by the optimal dual potential and solve
    ``n_exact_ot`` (≥ 3) of them exactly (``_checks.linearised_resamples``);
    ``n_permutations`` > 0 adds the MMD permutation p-value to its note. ``generator``
    (default: seeded with 0) drives every random draw; ``progress`` shows the metrics done
    (``scorelab.progress``). A metric that does not apply is reported in ``skipped`` with the
    reason; an explicitly requested one with too few samples raises ``InvalidParameter``.
    """
    if not isinstance(target, Target):
        raise InvalidParameter("target", "must be a scorelab Target", type(target).__name__)
    x = as_points(samples, "samples", event_shape=target.event_shape, min_n=2)
    big = float(x.abs().max())
    if big > MAX_ABS:
        raise InvalidParameter(
            "samples",
            f"hold values as large as {big:.3g}: the metrics' squared distances would overflow "
            "float64 (the samples have likely diverged)",
            tuple(x.shape),
            f"|x| ≤ {MAX_ABS:.0e}",
        )
    n_boot = positive_int("n_boot", n_boot, 10)
    n_boot_ot = positive_int("n_boot_ot", n_boot_ot, 10)
    n_exact_ot = positive_int("n_exact_ot", n_exact_ot, 3)
    max_points = positive_int("max_points", max_points, 2)
    n_permutations = positive_int("n_permutations", n_permutations, 0)
    explicit = metrics is not None
    names = (
        list(metric_names(default_only=True)) if metrics is None else check_metric_names(metrics)
    )
    registered = registry.entries("metric")
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    n = x.shape[0]
    try:
        y = target.sample(n, g, dtype=F64).reshape(n, -1)
        y2 = target.sample(n, g, dtype=F64).reshape(n, -1)
    except NotAvailable as exc:
        raise InvalidParameter("target", f"cannot be sampled ({exc})", target.kind) from None
    # threads for POT's exact solves (OS threads, outside torch's pool): what the caller
    # allows torch, or SCORELAB_THREADS / --threads
    workers = threads.requested() or torch.get_num_threads()
    c = MetricContext(
        x, y, y2, target, g, n_boot, n_boot_ot, max_points, n_permutations, n_exact_ot, workers
    )
    ev = Evaluation(n=n, target=target.kind)
    bar = tracker(progress, len(names), "evaluating", "metrics")
    try:
        # torch's work under the thread policy (scorelab.threads: one thread for non-image
        # events): with torch's default of every core, the batched Sinkhorn's small
        # elementwise steps stalled on a busy 2-core machine (1.4 s one run, 12.9 s the next;
        # 1.9 s on one thread)
        with threads.scoped(None, target.event_shape):
            for nm in names:
                bar.update(len(ev.results) + len(ev.skipped), info=f"computing {nm}")
                _run_metric(ev, registered[nm], nm, c, explicit)
    finally:
        bar.update(len(names), info="")
        bar.close()
    return ev


def _run_metric(ev: Evaluation, e, nm: str, c: MetricContext, explicit: bool) -> None:
    """One metric into ``ev`` (a result, or the reason it was skipped)."""
    n = c.n
    reason = _why_not(e, c)
    need = _min_n(e, c.D)
    if reason is None and n < need:
        if explicit:
            raise InvalidParameter("samples", f"has too few points for {nm}", n, f"at least {need}")
        reason = f"needs at least {need} samples (got {n})"
    if reason is not None:
        ev.skipped.append(Skipped(nm, reason))
        return
    try:
        result = e.obj(c)
    except InvalidParameter as exc:  # e.g. duplicated samples for the kNN estimator
        ev.skipped.append(Skipped(nm, str(exc)))
        return
    # the registered name is the metric's name, whatever the function wrote
    ev.results.append(result if result.name == nm else dataclasses.replace(result, name=nm))
