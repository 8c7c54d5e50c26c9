"""Metrics against a known density: mean NLL beside the entropy, and total variation.

* ``mean_nll``: −(1/n) Σ log p(x_i) with its standard error; its expectation under p is the
  entropy H(p) (exact for a Gaussian, Monte Carlo on fresh target draws otherwise).
* ``tv_histogram`` (d ≤ 2): ½ Σ_c |p̂_c − q_c| over the cells of a regular grid plus the mass
  outside it, with q_c = ∫_c p by the midpoint rule on a ``sub``^d sub-grid of each cell.
  For samples of p itself E[TV] ≈ ½ Σ_c √(2q_c(1−q_c)/(πn)) → 0 as n grows (the floor).
* ``tv_projections`` (any d): the mean over random directions θ of the TV between the
  histograms of θᵀx and of θᵀX, X ~ target, on cells at the target's quantiles; the cell
  masses are exact for Gaussian mixtures (θᵀX is a 1-D mixture) and estimated from a large
  target sample otherwise.
"""

from __future__ import annotations

import math

import torch

from ..errors import InvalidParameter
from ..registry import entries
from ..targets import NotAvailable, Target
from ._checks import as_points, positive_int
from .gaussian import gaussian_entropy

F64 = torch.float64


def _need_density(target: Target, what: str) -> None:
    if not target.has_density:
        raise InvalidParameter(
            "target",
            f"has no known density, which {what} needs",
            target.kind,
            ", ".join(n for n, e in entries("target").items() if getattr(e.obj, "has_density", 0)),
        )


def _log_prob(target: Target, flat: torch.Tensor) -> torch.Tensor:
    return target.log_prob(flat.reshape(flat.shape[0], *target.event_shape)).double()


def mean_nll(samples, target: Target) -> tuple[float, float]:
    """(mean −log p(x), its standard error) of ``samples`` under ``target``."""
    _need_density(target, "the NLL")
    x = as_points(samples, "samples", event_shape=target.event_shape, min_n=2)
    nll = -_log_prob(target, x)
    return float(nll.mean()), float(nll.std() / math.sqrt(nll.shape[0]))


def entropy(
    target: Target, n: int = 20000, generator: torch.Generator | None = None
) -> tuple[float, float]:
    """(H(target), standard error): exact (se 0) for a single Gaussian, else Monte Carlo of
    −log p on n fresh target draws."""
    _need_density(target, "the entropy")
    moments = target.gaussian_moments()
    if moments is not None:
        return gaussian_entropy(moments[1]), 0.0
    y = target.sample(positive_int("n", n, 2), generator, dtype=F64).reshape(n, -1)
    return mean_nll(y, target)


# --- 2-D histogram TV ----------------------------------------------------------------------


class HistogramGrid:
    """A regular grid on a box in d ≤ 2 with the target's cell masses by quadrature."""

    def __init__(self, target: Target, bins: int, bounds: torch.Tensor, sub: int = 8):
        _need_density(target, "the histogram TV")
        D = target.dim
        if D > 2:
            raise InvalidParameter("target", "must have d ≤ 2 for the histogram TV", D)
        self.bins, self.D = positive_int("bins", bins), D
        sub = positive_int("sub", sub)
        lo, hi = bounds[:, 0], bounds[:, 1]
        if not bool((hi > lo).all()):
            raise InvalidParameter("bounds", "must have lo < hi on every axis", bounds.tolist())
        self.lo, self.width = lo, (hi - lo) / self.bins
        # midpoints of the fine grid, bins·sub per axis
        k = bins * sub
        axes = [lo[i] + (torch.arange(k, dtype=F64) + 0.5) * (hi[i] - lo[i]) / k for i in range(D)]
        pts = torch.cartesian_prod(*axes).reshape(-1, D) if D == 2 else axes[0][:, None]
        dens = torch.exp(_log_prob(target, pts))
        cell_vol = float(torch.prod((hi - lo) / k))
        fine = (dens * cell_vol).reshape(*([k] * D))
        if D == 2:
            masses = fine.reshape(bins, sub, bins, sub).sum((1, 3)).reshape(-1)
        else:
            masses = fine.reshape(bins, sub).sum(1)
        self.masses = masses  # [bins^D]
        self.outside = max(0.0, 1.0 - float(masses.sum()))

    @classmethod
    def around(
        cls, target: Target, bins: int, reference: torch.Tensor, sub: int = 8, margin=0.1
    ) -> HistogramGrid:
        """A grid on the box of ``reference`` (a target sample) widened by ``margin``."""
        lo, hi = reference.min(0).values, reference.max(0).values
        pad = margin * (hi - lo).clamp(min=1e-12)
        return cls(target, bins, torch.stack([lo - pad, hi + pad], 1), sub)

    def cells(self, x: torch.Tensor) -> torch.Tensor:
        """Cell index of each row (``bins^D`` for outside the grid)."""
        idx = torch.floor((x - self.lo) / self.width).long()
        inside = ((idx >= 0) & (idx < self.bins)).all(1)
        flat = idx[:, 0] * self.bins + idx[:, 1] if self.D == 2 else idx[:, 0]
        return torch.where(inside, flat, torch.full_like(flat, self.bins**self.D))

    def tv_from_counts(self, counts: torch.Tensor) -> torch.Tensor:
        """TV for histograms ``[..., bins^D + 1]`` (last cell = outside)."""
        p = counts / counts.sum(-1, keepdim=True)
        q = torch.cat([self.masses, torch.tensor([self.outside], dtype=F64)])
        return 0.5 * (p - q).abs().sum(-1)

    def tv(self, x: torch.Tensor) -> float:
        c = torch.bincount(self.cells(x), minlength=self.bins**self.D + 1).double()
        return float(self.tv_from_counts(c))


def tv_histogram(
    samples,
    target: Target,
    bins: int = 30,
    *,
    bounds=None,
    sub: int = 8,
    generator: torch.Generator | None = None,
    n_reference: int = 20000,
) -> float:
    """Histogram TV between ``samples`` and a target of dimension ≤ 2 with a known density.
    ``bounds`` ``[[lo, hi], ...]`` defaults to the box of n_reference target draws, +10 %."""
    _need_density(target, "the histogram TV")
    x = as_points(samples, "samples", event_shape=target.event_shape, min_n=1)
    if bounds is None:
        ref = target.sample(n_reference, generator, dtype=F64).reshape(n_reference, -1)
        grid = HistogramGrid.around(target, bins, ref, sub)
    else:
        b = torch.as_tensor(bounds, dtype=F64)
        if tuple(b.shape) != (target.dim, 2):
            raise InvalidParameter("bounds", f"must have shape [{target.dim}, 2]", b.shape)
        grid = HistogramGrid(target, bins, b, sub)
    return grid.tv(x)


# --- TV of 1-D projections ----------------------------------------------------------------------


class ProjectedHistograms:
    """For P directions: cell edges at the target's quantiles and the target's cell masses."""

    def __init__(
        self,
        target: Target,
        directions: torch.Tensor,
        bins: int,
        reference: torch.Tensor,
    ):
        self.theta, self.bins = directions, positive_int("bins", bins, 2)
        proj = reference @ directions  # [N, P]
        levels = torch.arange(1, bins, dtype=F64) / bins
        self.edges = torch.quantile(proj, levels, dim=0).T.contiguous()  # [P, bins-1]
        mixture = target.gaussian_mixture()
        self.exact = mixture is not None
        if self.exact:
            self.masses = self._gmm_masses(*mixture)
        else:
            self.masses = self._counts(proj) / proj.shape[0]

    def _gmm_masses(self, weights, means, covs) -> torch.Tensor:
        th = self.theta
        mu = means @ th  # [K, P]
        var = torch.einsum("dp,kde,ep->kp", th, covs, th)
        sd = var.clamp(min=1e-300).sqrt()
        inf = torch.full((th.shape[1], 1), math.inf, dtype=F64)
        e = torch.cat([-inf, self.edges, inf], 1)  # [P, bins+1]
        cdf = torch.special.ndtr((e[None] - mu[:, :, None]) / sd[:, :, None])  # [K, P, bins+1]
        return torch.einsum("k,kpb->pb", weights, cdf.diff(dim=-1))

    def cell_index(self, x: torch.Tensor) -> torch.Tensor:
        """``[n, P]`` cell of each projected point."""
        proj = (x @ self.theta).T.contiguous()  # [P, n]
        return torch.searchsorted(self.edges, proj).T

    def _counts(self, proj: torch.Tensor) -> torch.Tensor:
        idx = torch.searchsorted(self.edges, proj.T.contiguous())  # [P, n]
        out = torch.zeros(idx.shape[0], self.bins, dtype=F64)
        return out.scatter_add_(1, idx, torch.ones_like(idx, dtype=F64))

    def tv(self, x: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        """Mean TV over directions; ``weights`` ``[B, n]`` gives one value per row."""
        idx = self.cell_index(x)  # [n, P]
        if weights is None:
            weights = torch.ones(1, x.shape[0], dtype=F64)
        tvs = []
        for j in range(idx.shape[1]):
            onehot = torch.zeros(x.shape[0], self.bins, dtype=F64)
            onehot[torch.arange(x.shape[0]), idx[:, j]] = 1.0
            h = weights @ onehot
            p = h / h.sum(1, keepdim=True)
            tvs.append(0.5 * (p - self.masses[j]).abs().sum(1))
        return torch.stack(tvs, 1).mean(1)


def tv_projections(
    samples,
    target: Target,
    n_projections: int = 32,
    bins: int = 20,
    *,
    generator: torch.Generator | None = None,
    n_reference: int = 50000,
) -> float:
    """Mean TV of 1-D projections on random directions (see module docstring)."""
    from .transport import random_directions

    x = as_points(samples, "samples", event_shape=target.event_shape, min_n=1)
    try:
        ref = target.sample(n_reference, generator, dtype=F64).reshape(n_reference, -1)
    except NotAvailable as exc:
        raise InvalidParameter("target", f"cannot be sampled ({exc})", target.kind) from None
    th = random_directions(x.shape[1], positive_int("n_projections", n_projections), generator)
    return float(ProjectedHistograms(target, th, bins, ref).tv(x)[0])
