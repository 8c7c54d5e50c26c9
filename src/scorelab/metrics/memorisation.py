"""Memorisation of a finite training set (paper E): how many generated samples are copies.

* ``memorised_fraction``: the fraction of samples within ``radius`` of a training point;
  the default radius is ⅓ of the median nearest-neighbour distance among the (distinct)
  training points, i.e. much closer than training points are to each other.
* ``nn_ratio``: per sample, d₁/d₂ with d₁ ≤ d₂ the distances to its two nearest distinct
  training points; near 0 for copies, O(1) for new points. Reports the mean ratio and the
  fraction below ⅓ (the usual memorisation criterion).
"""

from __future__ import annotations

import numpy as np

from ..errors import InvalidParameter
from ._checks import as_points, positive_float
from .knn import kdtree


def _train(train) -> np.ndarray:
    t = as_points(train, "train", min_n=2).numpy()
    t = np.unique(t, axis=0)
    if t.shape[0] < 2:
        raise InvalidParameter("train", "needs at least 2 distinct points", t.shape[0])
    return t


def default_radius(train) -> float:
    """⅓ × the median distance from a training point to its nearest other training point."""
    t = _train(train)
    d = kdtree()(t).query(t, k=2, workers=-1)[0][:, 1]
    return float(np.median(d)) / 3.0


def nn_distances(samples, train) -> np.ndarray:
    """``[n, 2]`` distances from each sample to its two nearest distinct training points."""
    t = _train(train)
    x = as_points(samples, "samples", dim=t.shape[1], min_n=1).numpy()
    return kdtree()(t).query(x, k=2, workers=-1)[0]


def memorised_fraction(samples, train, radius: float | None = None) -> float:
    """Fraction of samples within ``radius`` (default ``default_radius``) of a training point."""
    r = default_radius(train) if radius is None else positive_float("radius", radius)
    return float(np.mean(nn_distances(samples, train)[:, 0] <= r))


def nn_ratio(samples, train) -> tuple[float, float]:
    """(mean of d₁/d₂, fraction of samples with d₁/d₂ < ⅓)."""
    d = nn_distances(samples, train)
    ratio = d[:, 0] / np.maximum(d[:, 1], np.finfo(np.float64).tiny)
    return float(ratio.mean()), float(np.mean(ratio < 1 / 3))
