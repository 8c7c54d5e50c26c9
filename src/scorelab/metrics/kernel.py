"""Maximum mean discrepancy with a sum of RBF kernels, unbiased, with a permutation test.

k(x, y) = Σ_h exp(−‖x − y‖²/(2h²)) over bandwidths h = s · median pairwise distance (scales
s = 0.25, 0.5, 1, 2, 4 by default). The unbiased estimator

    MMD²_u = 1/(n(n−1)) Σ_{i≠j} k(x_i, x_j) + 1/(m(m−1)) Σ_{i≠j} k(y_i, y_j) − 2/(nm) Σ k(x_i, y_j)

has expectation MMD² (0 when the laws agree), so it can be negative. The permutation p-value
is (1 + #{permuted statistic ≥ observed})/(1 + n_permutations).
"""

from __future__ import annotations

import torch

from ..errors import InvalidParameter
from ._checks import as_points, positive_int, same_dim, subsample

DEFAULT_SCALES = (0.25, 0.5, 1.0, 2.0, 4.0)
MAX_POINTS_MMD = 2000


def median_distance(x: torch.Tensor, max_points: int = 1000) -> float:
    """Median pairwise Euclidean distance among the first ``max_points`` rows of x."""
    z = x[:max_points]
    d = torch.pdist(z)
    med = float(d.median()) if d.numel() else 0.0
    return med if med > 0 else 1.0


def bandwidths_for(y: torch.Tensor, scales=DEFAULT_SCALES) -> list[float]:
    """The RBF bandwidths scales × median distance of y (the reference sample)."""
    med = median_distance(y)
    return [float(s) * med for s in scales]


def rbf_kernel(x: torch.Tensor, y: torch.Tensor, bandwidths) -> torch.Tensor:
    d2 = torch.cdist(x, y).pow_(2)
    K = torch.zeros_like(d2)
    for h in bandwidths:  # in place: one n×m temporary, not one per bandwidth
        K += torch.exp_(d2.div(-2 * h * h))
    return K


def mmd2_from_blocks(Kxx: torch.Tensor, Kxy: torch.Tensor, Kyy: torch.Tensor) -> torch.Tensor:
    """Unbiased MMD² from the kernel blocks ``[n, n]``, ``[n, m]`` and ``[m, m]``."""
    n, m = Kxy.shape
    sxx = (Kxx.sum() - Kxx.diagonal().sum()) / (n * (n - 1))
    syy = (Kyy.sum() - Kyy.diagonal().sum()) / (m * (m - 1))
    return sxx + syy - 2 * Kxy.mean()


def mmd2_from_kernel(K: torch.Tensor, n: int) -> torch.Tensor:
    """Unbiased MMD² from the pooled kernel matrix ``[n+m, n+m]`` with x first."""
    return mmd2_from_blocks(K[:n, :n], K[:n, n:], K[n:, n:])


def permutation_pvalue(
    K: torch.Tensor, n: int, stat: float, n_permutations: int, generator
) -> float:
    """(1 + #{permuted MMD² ≥ stat})/(1 + n_permutations) on the pooled kernel ``K``."""
    n_perm = positive_int("n_permutations", n_permutations)
    exceed = 0
    for _ in range(n_perm):
        p = torch.randperm(K.shape[0], generator=generator)
        exceed += float(mmd2_from_kernel(K[p][:, p], n)) >= stat
    return (1 + exceed) / (1 + n_perm)


def _check_bandwidths(bandwidths) -> list[float]:
    try:
        hs = [float(h) for h in bandwidths]
    except (TypeError, ValueError):
        raise InvalidParameter("bandwidths", "must be a list of numbers > 0", bandwidths) from None
    if not hs or any(not (h > 0) for h in hs):
        raise InvalidParameter("bandwidths", "must be a non-empty list of numbers > 0", bandwidths)
    return hs


def mmd2(
    x,
    y,
    bandwidths=None,
    *,
    max_points: int | None = MAX_POINTS_MMD,
    n_permutations: int = 0,
    generator: torch.Generator | None = None,
) -> tuple[float, float | None]:
    """(MMD²_u, permutation p-value or None) between x ``[n, ...]`` and y ``[m, ...]``.

    ``bandwidths=None`` uses ``bandwidths_for(y)``; pass them explicitly to compare several
    pairs on the same kernel. Each side needs at least 2 points."""
    x = as_points(x, "x", min_n=2)
    y = as_points(y, "y", min_n=2)
    same_dim(x, y)
    if max_points is not None:
        positive_int("max_points", max_points, 2)
    x, y = subsample(x, max_points, generator), subsample(y, max_points, generator)
    hs = bandwidths_for(y) if bandwidths is None else _check_bandwidths(bandwidths)
    z = torch.cat([x, y])
    K = rbf_kernel(z, z, hs)
    n = x.shape[0]
    stat = float(mmd2_from_kernel(K, n))
    if not n_permutations:
        return stat, None
    return stat, permutation_pvalue(K, n, stat, n_permutations, generator)
