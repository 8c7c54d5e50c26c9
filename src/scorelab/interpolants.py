"""Interpolant processes: x_t = α_t x₀ + σ_t ε on t ∈ [0, 1] (rectified flow, trigonometric,
any registered (α, σ) pair) as forward processes (docs/theory.md §14.1).

A Gaussian interpolant is a linear forward SDE in disguise: with m = α and s = σ,

    f = α̇/α,    g² = 2σσ̇ − 2(α̇/α)σ² = 2σ(ασ̇ − σα̇)/α,

has the marginals N(α_t x₀, σ_t² I), so every sampler, metric and oracle written in terms of
(m, s, f, g²) applies unchanged. The noise level of scorelab's samplers is σ_t/α_t (EDM's
view x/m = x₀ + (σ/α) z); its inverse t(σ) is exact. At t = 1 the rectified-flow and
trigonometric pairs have α = 0: the prior N(0, I) is exact there (no prior mismatch), while
f, g² and σ/α are infinite. The velocity v = α̇ x̂₀ + σ̇ ε̂ stays finite, so the t-space ODE
samplers start at t = 1 with a model whose velocity or denoiser is native
(``scorelab.velocity.native_velocity``); samplers written in σ = σ_t/α_t (DDIM, DPM-Solver++,
EDM's stochastic sampler), the reverse SDE and σ-spaced grids need a grid ``t_max < 1``.

A pair is a registered "schedule" of the family "interpolant": ``alpha(t)`` and ``sigma(t)``
on [0, 1] with α(0) = 1, σ(0) = 0 and σ/α increasing. Its derivatives default to autograd and
the inverse of σ/α to a safeguarded Newton solve (``schedules.invert_increasing``, exact to
float64 round-off); the built-in pairs give all of them in closed form.
"""

from __future__ import annotations

import math

import torch

from ._tensor import Time, as_tensor
from .errors import InvalidParameter
from .processes import ForwardProcess
from .registry import entries, register
from .schedules import invert_increasing

F64 = torch.float64


def _f64(t: Time) -> tuple[torch.Tensor, torch.dtype]:
    t = as_tensor(t)
    return t.to(F64), t.dtype


class InterpolantPair:
    """The coefficients (α_t, σ_t) of x_t = α_t x₀ + σ_t ε on [0, 1].

    Subclasses give ``alpha`` and ``sigma`` (float64 tensors in, float64 out); the derivatives
    and the inverse of the ratio σ/α have generic defaults that subclasses override with closed
    forms."""

    kind: str = "pair"
    T: float = 1.0

    def __init__(self, T: float = 1.0):
        if not math.isclose(float(T), 1.0):
            raise InvalidParameter(
                "T", "is fixed: an interpolant lives on t ∈ [0, 1]", T, "1 (or leave T unset)"
            )
        self._check()

    # --- the pair -----------------------------------------------------------------------------
    def alpha(self, t: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def sigma(self, t: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def alpha_dot(self, t: torch.Tensor) -> torch.Tensor:
        """dα/dt (autograd unless a subclass gives it in closed form)."""
        return _derivative(self.alpha, t)

    def sigma_dot(self, t: torch.Tensor) -> torch.Tensor:
        """dσ/dt (autograd unless a subclass gives it in closed form)."""
        return _derivative(self.sigma, t)

    def ratio(self, t: torch.Tensor) -> torch.Tensor:
        """σ_t/α_t, scorelab's noise level (∞ where α = 0)."""
        return self.sigma(t) / self.alpha(t)

    def t_of_ratio(self, r: torch.Tensor) -> torch.Tensor:
        """The inverse of ``ratio`` (r = ∞ ↦ the time where α = 0, else 1)."""
        r = r.to(F64)
        top = float(self.ratio(torch.tensor(1.0, dtype=F64)))
        finite = torch.where(torch.isfinite(r), r, torch.zeros_like(r)).clamp(min=0.0)

        def dratio(t):
            a, s = self.alpha(t), self.sigma(t)
            return (a * self.sigma_dot(t) - s * self.alpha_dot(t)) / a**2

        t = invert_increasing(self.ratio, dratio, finite.clamp(max=top), 0.0, 1.0)
        return torch.where(torch.isfinite(r) & (r < top), t, torch.ones_like(r))

    # --- checks -------------------------------------------------------------------------------
    def _check(self) -> None:
        """α(0) = 1, σ(0) = 0, α > 0 on [0, 1), σ > 0 on (0, 1] and σ/α increasing: the
        conditions under which x_t is a forward process from the data (t = 0) to noise."""
        t = torch.linspace(0.0, 1.0, 1001, dtype=F64)
        a, s = self.alpha(t), self.sigma(t)
        if not (abs(float(a[0]) - 1.0) <= 1e-12 and abs(float(s[0])) <= 1e-12):
            raise InvalidParameter(
                "schedule", "needs α(0) = 1 and σ(0) = 0", (float(a[0]), float(s[0]))
            )
        if not (bool((a[:-1] > 0).all()) and float(a[-1]) >= 0 and bool((s[1:] > 0).all())):
            raise InvalidParameter("schedule", "needs α > 0 on [0, 1) and σ > 0 on (0, 1]", None)
        r = s[:-1] / a[:-1]
        if not bool((r[1:] > r[:-1]).all()):
            raise InvalidParameter("schedule", "needs σ/α strictly increasing in t", None)

    def params(self) -> dict:
        return {}

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({inner})"


def _derivative(fn, t: torch.Tensor) -> torch.Tensor:
    """d fn/dt elementwise by autograd (fn acts elementwise on t)."""
    with torch.enable_grad():
        tt = t.detach().to(F64).clone().requires_grad_(True)
        (g,) = torch.autograd.grad(fn(tt).sum(), tt)
    return g


def members(family: str) -> list[str]:
    """The registered schedules of ``family`` (the interpolant pairs)."""
    return [n for n, e in entries("schedule").items() if e.meta.get("family") == family]


@register("schedule", "rectified_flow", family="interpolant", context=("T",))
class RectifiedFlowPair(InterpolantPair):
    """Rectified flow / conditional OT path: α = 1 − t, σ = t (σ/α = t/(1 − t))."""

    kind = "rectified_flow"

    def alpha(self, t):
        return 1.0 - t

    def sigma(self, t):
        return t.clone()

    def alpha_dot(self, t):
        return -torch.ones_like(t)

    def sigma_dot(self, t):
        return torch.ones_like(t)

    def t_of_ratio(self, r):
        r = r.to(F64)
        # t = r/(1 + r), written 1/(1 + 1/r) so that r = ∞ gives 1 and r = 0 gives 0
        return torch.where(r > 1, 1.0 / (1.0 + 1.0 / r), r / (1.0 + r))


@register("schedule", "trigonometric", family="interpolant", context=("T",))
class TrigonometricPair(InterpolantPair):
    """The trigonometric (variance-preserving) path: α = cos(πt/2), σ = sin(πt/2)."""

    kind = "trigonometric"

    def alpha(self, t):
        return torch.sin(0.5 * math.pi * (1.0 - t))  # cos(πt/2), exactly 0 at t = 1

    def sigma(self, t):
        return torch.sin(0.5 * math.pi * t)

    def alpha_dot(self, t):
        return -0.5 * math.pi * self.sigma(t)

    def sigma_dot(self, t):
        return 0.5 * math.pi * self.alpha(t)

    def ratio(self, t):
        return self.sigma(t) / self.alpha(t)

    def t_of_ratio(self, r):
        return torch.atan(r.to(F64)) / (0.5 * math.pi)


class Interpolant(ForwardProcess):
    """x_t = α_t x₀ + σ_t ε for a pair (α, σ) on [0, 1] as a forward process: m = α, s = σ,
    f = α̇/α, g² = 2σ(ασ̇ − σα̇)/α, prior N(0, σ(1)² I) (exact where α(1) = 0).

    ``regular_velocity_at_T`` tells the time grid that t-space ODE samplers may start at t = 1
    even where σ/α, f and g² are infinite there (the velocity is finite)."""

    kind = "interpolant"
    family = "interpolant"
    default_pair: type[InterpolantPair] = RectifiedFlowPair

    def __init__(self, schedule: InterpolantPair | None = None, t_min: float | None = None):
        schedule = self.default_pair() if schedule is None else schedule
        if not isinstance(schedule, InterpolantPair):
            raise InvalidParameter(
                "schedule",
                f"process '{self.kind}' needs an interpolant pair (α, σ)",
                type(schedule).__name__,
                ", ".join(members("interpolant")) + ", or a registered InterpolantPair",
            )
        self._check_pair(schedule)
        self.schedule = schedule
        super().__init__(1.0, 1e-3 if t_min is None else t_min)
        self.regular_velocity_at_T = float(schedule.alpha(torch.tensor(1.0, dtype=F64))) == 0.0

    def _check_pair(self, pair: InterpolantPair) -> None:
        """A process named after its pair takes that pair only."""

    # --- the process contract -----------------------------------------------------------------
    def scale(self, t):
        t, dtype = _f64(t)
        return self.schedule.alpha(t).to(dtype)

    def log_scale(self, t):
        t, dtype = _f64(t)
        return torch.log(self.schedule.alpha(t)).to(dtype)

    def std(self, t):
        t, dtype = _f64(t)
        return self.schedule.sigma(t).to(dtype)

    def variance(self, t):
        t, dtype = _f64(t)
        return (self.schedule.sigma(t) ** 2).to(dtype)

    def sigma(self, t):
        t, dtype = _f64(t)
        return self.schedule.ratio(t).to(dtype)

    def t_of_sigma(self, sigma):
        s, dtype = _f64(sigma)
        return self.schedule.t_of_ratio(s).to(dtype)

    def drift_coef(self, t):
        t, dtype = _f64(t)
        return (self.schedule.alpha_dot(t) / self.schedule.alpha(t)).to(dtype)

    def diffusion2(self, t):
        t, dtype = _f64(t)
        p = self.schedule
        a, s = p.alpha(t), p.sigma(t)
        return (2 * s * (a * p.sigma_dot(t) - s * p.alpha_dot(t)) / a).to(dtype)

    @property
    def prior_std(self) -> float:
        return float(self.schedule.sigma(torch.tensor(1.0, dtype=F64)))

    # --- the interpolant's own coefficients ---------------------------------------------------
    def coefficients(self, t: Time) -> tuple[torch.Tensor, ...]:
        """(α, σ, α̇, σ̇) at t, float64."""
        t, _ = _f64(t)
        p = self.schedule
        return p.alpha(t), p.sigma(t), p.alpha_dot(t), p.sigma_dot(t)

    def params(self):
        return {"schedule": self.schedule, "t_min": self.t_min}


@register("process", "interpolant", schedules="interpolant", default_schedule="rectified_flow")
class GeneralInterpolant(Interpolant):
    """x_t = α_t x₀ + σ_t ε for any registered interpolant pair (schedule family 'interpolant')
    on t ∈ [0, 1]."""


class _NamedInterpolant(Interpolant):
    def _check_pair(self, pair):
        if type(pair) is not self.default_pair:
            raise InvalidParameter(
                "schedule.kind",
                f"process '{self.kind}' has its own pair; use process 'interpolant' for others",
                getattr(pair, "kind", type(pair).__name__),
                self.default_pair.kind,
            )


@register("process", "rectified_flow", schedules="interpolant", default_schedule="rectified_flow")
class RectifiedFlow(_NamedInterpolant):
    """Rectified flow (Liu et al.; Lipman et al.'s OT path; SD3, Flux): x_t = (1 − t) x₀ + t ε
    on t ∈ [0, 1], exact prior N(0, I) at t = 1."""

    kind = "rectified_flow"
    default_pair = RectifiedFlowPair


@register("process", "trigonometric", schedules="interpolant", default_schedule="trigonometric")
class Trigonometric(_NamedInterpolant):
    """The trigonometric interpolant x_t = cos(πt/2) x₀ + sin(πt/2) ε on t ∈ [0, 1] (a VP
    process in another clock), exact prior N(0, I) at t = 1."""

    kind = "trigonometric"
    default_pair = TrigonometricPair


def is_interpolant(process) -> bool:
    """Whether ``process`` is an interpolant (exact (α, σ, α̇, σ̇) from its pair)."""
    return isinstance(process, Interpolant)


__all__ = [
    "GeneralInterpolant",
    "Interpolant",
    "InterpolantPair",
    "RectifiedFlow",
    "RectifiedFlowPair",
    "Trigonometric",
    "TrigonometricPair",
    "is_interpolant",
]
