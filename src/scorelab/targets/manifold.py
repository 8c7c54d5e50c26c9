"""Laws on low-dimensional manifolds (paper E, De Bortoli): a circle, a 2-sphere and a
Gaussian on a linear subspace, embedded in R^d by a random isometry Q (d×k, QᵀQ = I).

Their noised scores are exact in closed form; no quadrature is needed. Write a = Qᵀx (the
in-manifold coordinates) and κ = m r ‖a‖ / s². Integrating N(x; m r Q u, s² I) over the uniform
law of u:
  * circle:  ∫ e^{κ cos θ} dθ/2π = I₀(κ)       → E[u | x] = (I₁/I₀)(κ) â
  * sphere:  ∫ e^{κ⟨u, â⟩} dσ(u) = sinh κ / κ   → E[u | x] = (coth κ − 1/κ) â
so the Tweedie denoiser is r·ρ(κ)·Q â and the score (m·D − x)/s². Accuracy is that of the
special functions (torch's i0e/i1e, ~1e-15 relative); near κ = 0, Taylor series keep them exact.
The subspace Gaussian is a Gaussian with singular covariance (see ``gaussian.py``).
"""

from __future__ import annotations

import math

import torch

from .._tensor import as_float64
from ..errors import InvalidParameter
from ..registry import register
from .base import Target
from .gaussian import GaussianMixture, parse_mean


def random_isometry(dim: int, k: int, seed: int = 0) -> torch.Tensor:
    """A d×d orthogonal matrix whose first k columns span a uniformly random k-plane
    (the identity when d = k, so that the natural embedding is kept)."""
    if int(dim) < int(k):
        raise InvalidParameter("dim", f"must be ≥ {k} (the manifold's ambient dimension)", dim)
    if dim == k:
        return torch.eye(dim, dtype=torch.float64)
    g = torch.Generator().manual_seed(int(seed))
    q, r = torch.linalg.qr(torch.randn(dim, dim, generator=g, dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r))[None, :]


class _SphereLike(Target):
    """Uniform law on a sphere S^{k−1} of radius r inside a k-plane of R^d."""

    has_score = True
    singular = True
    k: int = 2

    def __init__(self, dim: int, radius: float = 1.0, basis_seed: int = 0):
        if not (radius > 0 and math.isfinite(radius)):
            raise InvalidParameter("radius", "must be > 0", radius)
        self.basis = random_isometry(int(dim), self.k, basis_seed)[:, : self.k]  # [d, k]
        super().__init__((int(dim),))
        self.radius = float(radius)

    def diameter(self) -> float:
        return 2 * self.radius

    def second_moment(self) -> float:
        return self.radius**2

    def mean_norm(self) -> float:
        return self.radius

    def support_dimension(self) -> int:
        return self.k - 1

    def _sample(self, n, generator):
        u = torch.randn(n, self.k, generator=generator, dtype=torch.float64)
        u = u / u.norm(dim=1, keepdim=True)
        return self.radius * u @ self.basis.T

    def _kappa(self, x, m, v):
        Q = self.param("basis", x)
        a = x @ Q
        norm_a = a.norm(dim=1, keepdim=True)
        return a, norm_a, m * self.radius * norm_a / v, Q

    def _denoise(self, x, m, v):
        a, _, kappa, Q = self._kappa(x, m, v)
        # r·ρ(κ)·â = r·(ρ(κ)/κ)·(m r/s²)·a, finite at a = 0
        return (self.radius * self._rho_over_kappa(kappa) * (m * self.radius / v) * a) @ Q.T

    def _log_prob_t(self, x, m, v):
        _, _, kappa, _ = self._kappa(x, m, v)
        vv = v.reshape(-1) if v.ndim else v
        mm = m.reshape(-1) if m.ndim else m
        quad = ((x**2).sum(1) + (mm * self.radius) ** 2) / (2 * vv)
        return (
            -quad + self._log_mgf(kappa.reshape(-1)) - 0.5 * self.dim * torch.log(2 * math.pi * vv)
        )

    def _rho_over_kappa(self, kappa):  # pragma: no cover - abstract
        raise NotImplementedError

    def _log_mgf(self, kappa):  # pragma: no cover - abstract
        raise NotImplementedError


@register("target", "circle")
class Circle(_SphereLike):
    """Uniform law on a circle of radius r, embedded in R^d (d ≥ 2) by a random isometry."""

    kind = "circle"
    k = 2

    def __init__(self, dim: int = 2, radius: float = 1.0, basis_seed: int = 0):
        super().__init__(dim, radius, basis_seed)

    def _rho_over_kappa(self, kappa):
        # I₁(κ)/(κ I₀(κ)); the exponentially scaled Bessel functions do not overflow.
        small = kappa < 1e-4
        ks = torch.where(small, torch.ones_like(kappa), kappa)
        direct = torch.special.i1e(ks) / (ks * torch.special.i0e(ks))
        return torch.where(small, 0.5 - kappa**2 / 16, direct)

    def _log_mgf(self, kappa):
        return torch.log(torch.special.i0e(kappa)) + kappa


@register("target", "sphere")
class Sphere(_SphereLike):
    """Uniform law on the 2-sphere of radius r, embedded in R^d (d ≥ 3) by a random isometry."""

    kind = "sphere"
    k = 3

    def __init__(self, dim: int = 3, radius: float = 1.0, basis_seed: int = 0):
        super().__init__(dim, radius, basis_seed)

    def _rho_over_kappa(self, kappa):
        # (coth κ − 1/κ)/κ; its Taylor series where the difference cancels.
        small = kappa < 0.05
        ks = torch.where(small, torch.ones_like(kappa), kappa)
        direct = (1 / torch.tanh(ks) - 1 / ks) / ks
        k2 = kappa**2
        series = 1 / 3 - k2 / 45 + 2 * k2**2 / 945 - k2**3 / 4725 + 2 * k2**4 / 93555
        return torch.where(small, series, direct)

    def _log_mgf(self, kappa):
        # log(sinh κ / κ) = κ + log(1 − e^{−2κ}) − log(2κ)
        small = kappa < 0.05
        ks = torch.where(small, torch.ones_like(kappa), kappa)
        direct = ks + torch.log(-torch.expm1(-2 * ks)) - torch.log(2 * ks)
        k2 = kappa**2
        series = k2 / 6 - k2**2 / 180 + k2**3 / 2835
        return torch.where(small, series, direct)


@register("target", "subspace")
class Subspace(GaussianMixture):
    """N(Q μ, Q diag(variances) Qᵀ) on a random k-dimensional linear subspace of R^d: a Gaussian
    with singular covariance, so its noised score is exact for every t > 0."""

    kind = "subspace"

    def __init__(
        self,
        dim: int = 3,
        k: int = 1,
        variances: float | list[float] = 1.0,
        mean: float | list[float] = 0.0,
        basis_seed: int = 0,
    ):
        if not 1 <= int(k) <= int(dim):
            raise InvalidParameter("k", f"must lie in [1, dim = {dim}]", k)
        dim, k = int(dim), int(k)
        U = random_isometry(dim, k, basis_seed)
        var = as_float64(variances, "variances")
        var = var.expand(k).clone() if var.ndim == 0 else var
        if var.ndim != 1 or var.shape[0] != k:
            raise InvalidParameter("variances", f"must be a number or {k} numbers", variances)
        if not bool((var > 0).all()) or not bool(torch.isfinite(var).all()):
            raise InvalidParameter("variances", "must be finite and > 0", variances)
        mu = U[:, :k] @ parse_mean("mean", mean, k)
        lams = torch.cat([var, torch.zeros(dim - k, dtype=torch.float64)])
        self._set_components(torch.ones(1, dtype=torch.float64), mu[None], lams[None], U[None])
        self.k = k
        self.basis = U[:, :k]
