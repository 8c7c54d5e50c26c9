"""Time grids: the decreasing times t_0 = t_max > t_1 > … > t_N = t_min a sampler steps through.

Grids are specified in t or in the noise level σ(t) = s/m and always returned as times (σ-spaced
grids are mapped back with the process's exact ``t_of_sigma``), so every grid works with every
process and every sampler. ``final="denoise"`` asks the sampler for a last Tweedie step from
t_min to t = 0 (x ← E[X₀ | X_{t_min}]), one more score evaluation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .errors import InvalidParameter
from .processes import ForwardProcess
from .registry import entry, names, register

FINAL_STEPS = ("none", "denoise")


# Grid spacings: u ∈ [0, 1] (N + 1 equispaced values) → the grid from ``hi`` down to ``lo``,
# in t (``space="t"``) or in σ (``space="sigma"``, mapped back by the process's t_of_sigma).
# ``log=True`` spacings need lo > 0.


@register("grid", "uniform", space="t")
def uniform(u: torch.Tensor, hi: float, lo: float) -> torch.Tensor:
    """Uniform in t."""
    return hi + u * (lo - hi)


@register("grid", "edm", space="sigma")
def edm(u: torch.Tensor, hi: float, lo: float, rho: float = 7.0) -> torch.Tensor:
    """EDM's ρ-polynomial in σ: (σ_max^{1/ρ} + u(σ_min^{1/ρ} − σ_max^{1/ρ}))^ρ."""
    a, b = hi ** (1 / rho), lo ** (1 / rho)
    return (a + u * (b - a)) ** rho


@register("grid", "geometric", space="sigma", log=True)
def geometric(u: torch.Tensor, hi: float, lo: float) -> torch.Tensor:
    """Geometric in σ (uniform in log σ)."""
    return torch.exp(math.log(hi) + u * (math.log(lo) - math.log(hi)))


@register("grid", "logsnr", space="sigma", log=True)
def logsnr(u: torch.Tensor, hi: float, lo: float) -> torch.Tensor:
    """Uniform in log SNR = −2 log σ: the same nodes as geometric."""
    return geometric(u, hi, lo)


@register("grid", "quadratic", space="t")
def quadratic(u: torch.Tensor, hi: float, lo: float) -> torch.Tensor:
    """Quadratic in t, dense near t_min."""
    return lo + (hi - lo) * (1 - u) ** 2


@dataclass(frozen=True)
class TimeGrid:
    """``kind`` is a registered spacing: uniform (in t), edm (ρ-polynomial in σ), geometric (in
    σ), logsnr (uniform in log SNR = −2 log σ, hence the same nodes as geometric), quadratic
    (in t, dense near t_min). ``steps`` = N steps through N + 1 times."""

    kind: str = "uniform"
    steps: int = 100
    t_min: float | None = None  # None: the process's t_min
    t_max: float | None = None  # None: the process's T
    rho: float = 7.0
    final: str = "none"

    def __post_init__(self):
        if self.kind not in names("grid"):
            allowed = ", ".join(names("grid"))
            raise InvalidParameter("kind", "is not a time grid", self.kind, allowed)
        if int(self.steps) < 1:
            raise InvalidParameter("steps", "must be ≥ 1", self.steps)
        if not self.rho > 0:
            raise InvalidParameter("rho", "must be > 0", self.rho)
        if self.final not in FINAL_STEPS:
            raise InvalidParameter(
                "final", "is not a final step", self.final, ", ".join(FINAL_STEPS)
            )

    def times(self, process: ForwardProcess) -> torch.Tensor:
        """The N + 1 decreasing times (float64)."""
        t_max = process.T if self.t_max is None else float(self.t_max)
        t_min = process.t_min if self.t_min is None else float(self.t_min)
        if not 0 <= t_min < t_max <= process.T * (1 + 1e-12):
            raise InvalidParameter(
                "t_min",
                "and t_max must satisfy 0 ≤ t_min < t_max ≤ T",
                (t_min, t_max),
                f"T = {process.T:g}",
            )
        coefs = (process.sigma(t_max), process.diffusion2(t_max), process.drift_coef(t_max))
        if not all(math.isfinite(float(c)) for c in coefs):
            raise InvalidParameter(
                "t_max",
                "is where the process's coefficients are infinite (a cosine schedule "
                "without clip_max has β(T) = ∞ and σ(T) = ∞); set the schedule's clip_max or a "
                "grid t_max < T",
                t_max,
            )
        n = int(self.steps)
        u = torch.linspace(0.0, 1.0, n + 1, dtype=torch.float64)
        spacing = entry("grid", self.kind)
        extra = {"rho": self.rho} if "rho" in spacing.parameters else {}
        if spacing.meta.get("space", "t") == "t":
            t = spacing.obj(u, t_max, t_min, **extra)
        else:
            s_max, s_min = float(process.sigma(t_max)), float(process.sigma(t_min))
            if spacing.meta.get("log") and s_min <= 0:
                raise InvalidParameter(
                    "t_min", f"must be > 0 for a grid spaced in log σ ('{self.kind}')", t_min
                )
            t = process.t_of_sigma(spacing.obj(u, s_max, s_min, **extra).clamp(min=0.0))
        t[0], t[-1] = t_max, t_min  # exact end points despite round-off
        if bool((t[1:] >= t[:-1]).any()):
            raise InvalidParameter(
                "steps", "give repeated times: the grid is finer than float64 resolves here", n
            )
        return t
