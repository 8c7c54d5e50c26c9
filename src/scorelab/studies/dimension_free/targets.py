"""The two families of Gaussian tilts: four modes in a plane (complexity fixed in d) and the
bimodal product (2^d modes), with coupled samplers: the same draws in the same order, so the
families agree in (x₁, x₂) and are identical at d = 2.
"""

from __future__ import annotations

import math

import torch

from ...targets import GaussianMixture, GaussianTilt, TiltedGMM
from .settings import A


def _signs_and_noise(n: int, dim: int, generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The draws both families' samplers make, in the same order: one sign per coordinate and
    one standard Gaussian vector (so that the families are coupled, docstring)."""
    signs = 2.0 * torch.randint(0, 2, (n, dim), generator=generator) - 1.0
    z = torch.randn(n, dim, generator=generator, dtype=torch.float64)
    return signs.to(torch.float64), z


class BimodalProduct(GaussianTilt):
    """⊗_i (½N(−a, 1) + ½N(a, 1)) as a Gaussian tilt, f(x) = Σ_i log cosh(a x_i) − d a²/2
    (Z_f = 1). Its complexity grows with d: f is a sum of d ridge functions. Under any linear
    process each coordinate stays a two-mode mixture, ½N(±m a, m² + s²), so the score is closed
    form; the inherited Mehler oracle (``mehler_score``) cross-checks it."""

    kind = "bimodal_product"
    has_density = True

    def __init__(self, dim: int, a: float = A, **mehler):
        self.a = float(a)
        super().__init__(self.log_tilt, dim, **mehler)

    def log_tilt(self, x: torch.Tensor) -> torch.Tensor:
        return _log_cosh(self.a * x).sum(1) - 0.5 * x.shape[1] * self.a**2

    def _score(self, x, m, v):
        c = m * m + v
        return (-x + m * self.a * torch.tanh(m * self.a * x / c)) / c

    def _log_prob_t(self, x, m, v):
        c, mu = m * m + v, m * self.a
        per = (
            -(x * x + mu * mu) / (2 * c) + _log_cosh(mu * x / c) - 0.5 * torch.log(2 * math.pi * c)
        )
        return per.sum(1)

    def _sample(self, n, generator):
        signs, z = _signs_and_noise(n, self.dim, generator)
        return self.a * signs + z


class SquareTilt(TiltedGMM):
    """Four equal modes N(μ_k, I) at (±a, ±a, 0, …, 0): complexity fixed whatever d is. Its
    sampler makes the same draws as ``BimodalProduct``'s (the mode is the signs of the first two
    coordinates), so the two families are coupled: identical at d = 2, equal in (x₁, x₂)."""

    def __init__(self, dim: int, a: float = A):
        corners = torch.tensor([[a, a], [a, -a], [-a, a], [-a, -a]], dtype=torch.float64)
        means = torch.zeros(4, dim, dtype=torch.float64)
        means[:, :2] = corners
        super().__init__(torch.full((4,), 0.25, dtype=torch.float64), means)
        self.a = float(a)

    def _sample(self, n, generator):
        signs, z = _signs_and_noise(n, self.dim, generator)
        z[:, :2] += self.a * signs[:, :2]
        return z


def _log_cosh(y: torch.Tensor) -> torch.Tensor:
    """log cosh y without overflow."""
    y = y.abs()
    return y + torch.log1p(torch.exp(-2 * y)) - math.log(2.0)


def square_tilt(dim: int, a: float = A) -> SquareTilt:
    return SquareTilt(dim, a)


def make_target(family: str, dim: int):
    return square_tilt(dim) if family == "fixed" else BimodalProduct(dim)


def axis_marginal() -> GaussianMixture:
    """The law of x₁ (and of x₂) under both families: ½N(−a, 1) + ½N(a, 1)."""
    return GaussianMixture([0.5, 0.5], [[-A], [A]], 1.0)
