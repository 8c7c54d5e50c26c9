"""Closed forms between Gaussians and the fitted-Gaussian metrics of paper A.

KL(N₁‖N₂) = ½[tr(Σ₂⁻¹Σ₁) + (μ₂−μ₁)ᵀΣ₂⁻¹(μ₂−μ₁) − d + ln det Σ₂ − ln det Σ₁] and
W₂² = ‖μ₁−μ₂‖² + tr(Σ₁ + Σ₂ − 2(Σ₁^{1/2}Σ₂Σ₁^{1/2})^{1/2}) (Bures), in float64.

Fitted-Gaussian KL, KL(π ‖ N(μ̂, Σ̂)) with the unbiased covariance of n samples of π = N(μ, Σ),
has the small-sample bias E ≈ d(d+3)/(4n) (d/(2n) from the mean, d(d+1)/(4n) from the
covariance), to first order in 1/n.
"""

from __future__ import annotations

import math

import torch

from ..errors import InvalidParameter
from ._checks import as_points

F64 = torch.float64


def _mean_cov(mu, cov, field: str) -> tuple[torch.Tensor, torch.Tensor]:
    mu = torch.as_tensor(mu, dtype=F64).reshape(-1)
    cov = torch.as_tensor(cov, dtype=F64)
    d = mu.shape[0]
    if cov.ndim == 0:
        cov = cov * torch.eye(d, dtype=F64)
    elif cov.ndim == 1:
        cov = torch.diag(cov)
    if tuple(cov.shape) != (d, d):
        raise InvalidParameter(
            f"cov{field}", f"must be {d}×{d} to match mean{field}", tuple(cov.shape)
        )
    if not (bool(torch.isfinite(mu).all()) and bool(torch.isfinite(cov).all())):
        raise InvalidParameter(f"mean{field}/cov{field}", "must be finite")
    return mu, 0.5 * (cov + cov.T)


def _psd_sqrt(a: torch.Tensor) -> torch.Tensor:
    lam, U = torch.linalg.eigh(a)
    return (U * lam.clamp(min=0).sqrt()) @ U.T


def kl_gaussians(mu1, cov1, mu2, cov2) -> float:
    """KL(N(μ₁, Σ₁) ‖ N(μ₂, Σ₂)) in nats."""
    mu1, cov1 = _mean_cov(mu1, cov1, "1")
    mu2, cov2 = _mean_cov(mu2, cov2, "2")
    if mu1.shape != mu2.shape:
        raise InvalidParameter("mean2", f"must have dimension {mu1.shape[0]}", tuple(mu2.shape))
    L2, info2 = torch.linalg.cholesky_ex(cov2)
    L1, info1 = torch.linalg.cholesky_ex(cov1)
    if int(info1) or int(info2):
        raise InvalidParameter("cov", "must be positive definite for the KL divergence")
    d = mu1.shape[0]
    A = torch.linalg.solve_triangular(L2, L1, upper=False)  # L2⁻¹L1: tr(Σ2⁻¹Σ1) = ‖A‖²
    b = torch.linalg.solve_triangular(L2, (mu2 - mu1)[:, None], upper=False)
    logdet = 2 * (torch.log(torch.diagonal(L2)).sum() - torch.log(torch.diagonal(L1)).sum())
    return float(0.5 * ((A**2).sum() + (b**2).sum() - d + logdet))


def w2_gaussians(mu1, cov1, mu2, cov2) -> float:
    """W₂(N(μ₁, Σ₁), N(μ₂, Σ₂)) (the distance, not its square); Σ may be singular."""
    mu1, cov1 = _mean_cov(mu1, cov1, "1")
    mu2, cov2 = _mean_cov(mu2, cov2, "2")
    if mu1.shape != mu2.shape:
        raise InvalidParameter("mean2", f"must have dimension {mu1.shape[0]}", tuple(mu2.shape))
    s1 = _psd_sqrt(cov1)
    cross = torch.linalg.eigvalsh(s1 @ cov2 @ s1).clamp(min=0).sqrt().sum()
    w2sq = ((mu1 - mu2) ** 2).sum() + torch.trace(cov1) + torch.trace(cov2) - 2 * cross
    return math.sqrt(max(float(w2sq), 0.0))


def fit_gaussian(x, field: str = "samples") -> tuple[torch.Tensor, torch.Tensor]:
    """Sample mean and unbiased covariance (``[D]``, ``[D, D]``) of ``x`` ``[n, ...]``."""
    x = as_points(x, field, min_n=2)
    mu = x.mean(0)
    xc = x - mu
    return mu, xc.T @ xc / (x.shape[0] - 1)


def kl_gaussian_fit(samples, mean, cov) -> float:
    """KL(N(mean, cov) ‖ N(μ̂, Σ̂)) with (μ̂, Σ̂) fitted to ``samples`` (paper A's metric for a
    Gaussian target). Needs n ≥ D + 2 samples so that Σ̂ is invertible; bias ≈ d(d+3)/(4n)."""
    mu, cov = _mean_cov(mean, cov, "")
    x = as_points(samples, "samples", dim=mu.shape[0], min_n=mu.shape[0] + 2)
    m, c = fit_gaussian(x)
    return kl_gaussians(mu, cov, m, c)


def w2_gaussian_fit(samples, mean, cov) -> float:
    """Bures W₂ between N(mean, cov) and the Gaussian fitted to ``samples``."""
    mu, cov = _mean_cov(mean, cov, "")
    x = as_points(samples, "samples", dim=mu.shape[0], min_n=2)
    m, c = fit_gaussian(x)
    return w2_gaussians(mu, cov, m, c)


def gaussian_entropy(cov) -> float:
    """Differential entropy ½ ln det(2πe Σ) of N(·, Σ)."""
    cov = torch.as_tensor(cov, dtype=F64)
    d = cov.shape[0]
    return float(0.5 * (d * math.log(2 * math.pi * math.e) + torch.linalg.slogdet(cov)[1]))
