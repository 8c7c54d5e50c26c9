"""k-nearest-neighbour KL estimator of Wang, Kulkarni and Verdú (2009).

With x₁..x_n ~ P, y₁..y_m ~ Q in R^d, ρ_k(i) the distance from x_i to its k-th neighbour
among the other x's and ν_k(i) the distance to its k-th neighbour among the y's,

    D̂(P‖Q) = (d/n) Σ_i log(ν_k(i)/ρ_k(i)) + log(m/(n−1)),

consistent for fixed k as n, m → ∞ for laws with densities. Neighbours by scipy's cKDTree.
Default k = 1 (the original estimator): larger k lowers the variance but, measured on 2-D
Gaussians, biases D̂(Q‖P) low by ~0.05–0.1 nats when Q puts mass in P's tails.
Ties (ρ = 0, duplicated points) make it undefined: it raises.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import InvalidParameter
from ._checks import as_points, positive_int, same_dim


def kdtree():
    from scipy.spatial import cKDTree  # imported on first use (scipy.spatial is slow to import)

    return cKDTree


def knn_kl_terms(x, y, k: int = 1) -> tuple[np.ndarray, float]:
    """Per-point terms d·log(ν_k/ρ_k) (``[n]``) and the constant log(m/(n−1)): their mean plus
    the constant is D̂(P‖Q)."""
    k = positive_int("k", k)
    x = as_points(x, "x", min_n=k + 1)
    y = as_points(y, "y", min_n=k)
    same_dim(x, y)
    xn, yn = x.numpy(), y.numpy()
    n, m, d = xn.shape[0], yn.shape[0], xn.shape[1]
    rho = kdtree()(xn).query(xn, k=k + 1, workers=-1)[0][:, k]
    nu = kdtree()(yn).query(xn, k=k, workers=-1)[0]
    nu = nu if nu.ndim == 1 else nu[:, k - 1]
    if np.any(rho <= 0):
        raise InvalidParameter(
            "x",
            f"has duplicated points ({int(np.sum(rho <= 0))} with a zero {k}-NN distance); "
            "the kNN KL estimator needs a law with a density",
            tuple(x.shape),
        )
    nu = np.maximum(nu, np.finfo(np.float64).tiny)
    return d * np.log(nu / rho), math.log(m / (n - 1))


def knn_kl(x, y, k: int = 1) -> float:
    """D̂(P‖Q) from x ~ P ``[n, ...]`` and y ~ Q ``[m, ...]`` (nats)."""
    terms, const = knn_kl_terms(x, y, k)
    return float(terms.mean() + const)
