"""Forward processes: the linear SDE dX = f(t) X dt + g(t) dW and its Gaussian marginals.

X_t | X_0 ~ N(m(t) X_0, s(t)² I). Everything downstream (targets' exact scores, samplers,
losses, bounds) talks to a process only through m, s, f, g², σ = s/m and its inverse, so a
sampler written once runs on every process (the EDM view: x_t = m(t)·(x_0 + σ(t)·z)).

Coefficient methods take ``t`` as a Python number (computed in float64) or a tensor (scalar or
``[B]``, one time per example) and return a tensor of the same shape and dtype.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch

from ._tensor import Time, as_tensor, check_time, per_example
from .errors import InvalidParameter
from .registry import entries, register
from .schedules import BetaSchedule, EDMSigma, EDMVPSigma, SigmaSchedule


def _schedules_of(family: str) -> str:
    """The registered schedules of a family ("beta" or "sigma"), for error messages."""
    found = [n for n, e in entries("schedule").items() if e.meta.get("family") == family]
    return ", ".join(found)


class ForwardProcess(ABC):
    """A linear forward SDE dX = f(t) X dt + g(t) dW on [0, T] with an early-stopping time
    ``t_min``; its marginals X_t | X_0 ~ N(m(t) X_0, s(t)² I) are exact (docs/theory.md §1.1).

    Units: every method takes the process's own time t (a float, or one per example as a
    ``[B]`` tensor), not the noise level. σ(t) = s(t)/m(t) is the noise level of the scaled
    variable x/m (EDM's σ); ``sigma`` and its exact inverse ``t_of_sigma`` convert between the
    two. Tensors are batch-first, ``[B, ...]`` with any trailing shape.

    ``kind`` is the registered name; ``is_a`` names the families it also belongs to (EDM's
    process is a VE process, DDPM's chain a VP one), so that samplers and bounds derived for a
    family apply to its members (``families``).
    """

    kind: str = "process"
    is_a: tuple[str, ...] = ()

    def __init__(self, T: float, t_min: float):
        self.T = float(T)
        t_min = float(t_min)
        if not (0.0 <= t_min < self.T):
            raise InvalidParameter("t_min", "must lie in [0, T)", t_min, f"[0, {self.T:g})")
        self.t_min = t_min

    # --- marginal coefficients -------------------------------------------------------------
    @abstractmethod
    def log_scale(self, t: Time) -> torch.Tensor:
        """log m(t) = ∫₀ᵗ f."""

    @abstractmethod
    def variance(self, t: Time) -> torch.Tensor:
        """s(t)², the variance of X_t given X_0."""

    @abstractmethod
    def sigma(self, t: Time) -> torch.Tensor:
        """The noise level σ(t) = s(t)/m(t) (x_t/m = x_0 + σ z)."""

    @abstractmethod
    def t_of_sigma(self, sigma: Time) -> torch.Tensor:
        """The exact inverse of ``sigma``."""

    @abstractmethod
    def drift_coef(self, t: Time) -> torch.Tensor:
        """f(t), the linear drift coefficient."""

    @abstractmethod
    def diffusion2(self, t: Time) -> torch.Tensor:
        """g(t)²."""

    @property
    @abstractmethod
    def prior_std(self) -> float:
        """Standard deviation of the isotropic Gaussian prior that sampling starts from."""

    def scale(self, t: Time) -> torch.Tensor:
        """m(t)."""
        return torch.exp(self.log_scale(t))

    def std(self, t: Time) -> torch.Tensor:
        """s(t)."""
        return torch.sqrt(self.variance(t))

    # --- on tensors -------------------------------------------------------------------------
    def drift(self, x: torch.Tensor, t: Time) -> torch.Tensor:
        """f(t)·x for x of shape ``[B, ...]``."""
        return per_example(self.drift_coef(as_tensor(t, like=x)), x) * x

    def perturb(self, x0: torch.Tensor, t: Time, noise: torch.Tensor) -> torch.Tensor:
        """m(t)·x0 + s(t)·noise (the reparametrised marginal draw)."""
        t = as_tensor(t, like=x0)
        return per_example(self.scale(t), x0) * x0 + per_example(self.std(t), x0) * noise

    def sample_marginal(
        self, x0: torch.Tensor, t: Time, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """A draw of X_t given X_0 = x0 (t scalar or one per example)."""
        t = as_tensor(t, like=x0)
        check_time(t, self.T)
        noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=x0.device)
        return self.perturb(x0, t, noise)

    def prior_sample(
        self,
        shape: tuple[int, ...],
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> torch.Tensor:
        """Draws from the prior N(0, prior_std² I) of the given shape ``[B, ...]``."""
        return self.prior_std * torch.randn(shape, generator=generator, dtype=dtype, device=device)

    def prior_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Log-density of the prior at each example of x (``[B, ...]`` → ``[B]``)."""
        flat = x.reshape(x.shape[0], -1)
        d = flat.shape[1]
        v = self.prior_std**2
        return -0.5 * (flat**2).sum(1) / v - 0.5 * d * math.log(2 * math.pi * v)

    def params(self) -> dict:
        """The constructor's parameters, as ``repr`` and configs show them."""
        return {"T": self.T, "t_min": self.t_min}

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({inner})"


def _schedules_of(family: str) -> str:
    """The registered schedules of a family ("beta" or "sigma"), for error messages."""
    return ", ".join(n for n, e in entries("schedule").items() if e.meta.get("family") == family)


def families(process) -> frozenset[str]:
    """The process's kind and the families it belongs to (``ForwardProcess.is_a``); a process
    class answers as its instances do."""
    return frozenset({getattr(process, "kind", None), *getattr(process, "is_a", ())}) - {None}


def members(family: str) -> tuple[str, ...]:
    """The registered processes of a family (``families``), for error messages."""
    return tuple(n for n, e in entries("process").items() if family in families(e.obj))


@register("process", "vp", schedules="beta", default_schedule="linear")
class VP(ForwardProcess):
    """Variance preserving with stationary variance σ∞² (paper A):
    f = −β/(2σ∞²), g² = β, m = exp(−B/(2σ∞²)), s² = σ∞²(1 − m²)."""

    kind = "vp"

    def __init__(self, schedule: BetaSchedule, sigma_inf: float = 1.0, t_min: float = 1e-3):
        if not isinstance(schedule, BetaSchedule):
            raise InvalidParameter(
                "schedule",
                f"process '{self.kind}' needs a β-schedule",
                type(schedule).__name__,
                _schedules_of("beta"),
            )
        super().__init__(schedule.T, t_min)
        self.schedule = schedule
        self.sigma_inf = float(sigma_inf)
        if not (self.sigma_inf > 0 and math.isfinite(self.sigma_inf)):
            raise InvalidParameter("sigma_inf", "must be > 0", sigma_inf)
        self._v = self.sigma_inf**2

    def _A(self, t: Time) -> torch.Tensor:
        """A(t) = B(t)/(2σ∞²), so that m = e^{−A}."""
        return self.schedule.integral(t) / (2 * self._v)

    def log_scale(self, t):
        return -self._A(t)

    def variance(self, t):
        # A ≥ 0, so |expm1(−2A)| = 1 − m² exactly (and never the −0.0 that B(0) = −0.0 gives)
        return self._v * torch.abs(torch.expm1(-2 * self._A(t)))

    def sigma(self, t):
        return self.sigma_inf * torch.sqrt(torch.abs(torch.expm1(2 * self._A(t))))

    def t_of_sigma(self, sigma):
        sigma = as_tensor(sigma)
        return self.schedule.inverse_integral(self._v * torch.log1p(sigma**2 / self._v))

    def drift_coef(self, t):
        return -self.schedule.beta(t) / (2 * self._v)

    def diffusion2(self, t):
        return self.schedule.beta(t)

    @property
    def prior_std(self):
        return self.sigma_inf

    def params(self):
        return {"schedule": self.schedule, "sigma_inf": self.sigma_inf, **super().params()}


@register("process", "subvp", schedules="beta", default_schedule="linear")
class SubVP(VP):
    """Song's sub-VP, with stationary variance σ∞² (σ∞ = 1 is Song's):
    f = −β/(2σ∞²), g² = β(1 − e^{−2B/σ∞²}), m = exp(−B/(2σ∞²)), s = σ∞(1 − m²)."""

    kind = "subvp"

    def variance(self, t):
        return self._v * torch.expm1(-2 * self._A(t)) ** 2

    def std(self, t):
        return self.sigma_inf * torch.abs(torch.expm1(-2 * self._A(t)))

    def sigma(self, t):
        # s/m = σ∞(e^{A} − e^{−A}) = 2σ∞ sinh(A)
        return 2 * self.sigma_inf * torch.abs(torch.sinh(self._A(t)))

    def t_of_sigma(self, sigma):
        sigma = as_tensor(sigma)
        A = torch.asinh(sigma / (2 * self.sigma_inf))
        return self.schedule.inverse_integral(2 * self._v * A)

    def diffusion2(self, t):
        return -self.schedule.beta(t) * torch.expm1(-4 * self._A(t))


@register(
    "process", "ve", schedules="sigma", default_schedule="geometric", default_grid="geometric"
)
class VE(ForwardProcess):
    """Variance exploding: f = 0, g² = dσ²/dt, X_t = X_0 + √(σ(t)² − σ(0)²)·Z.

    The default stopping time is where the noise level reaches the schedule's σ_min.
    """

    kind = "ve"

    def __init__(self, schedule: SigmaSchedule, t_min: float | None = None):
        if not isinstance(schedule, SigmaSchedule):
            raise InvalidParameter(
                "schedule",
                f"process '{self.kind}' needs a σ-schedule",
                type(schedule).__name__,
                _schedules_of("sigma"),
            )
        self.schedule = schedule
        if t_min is None:
            t_min = self._default_t_min(schedule)
        super().__init__(schedule.T, t_min)

    @staticmethod
    def _default_t_min(schedule: SigmaSchedule) -> float:
        sigma_min = getattr(schedule, "sigma_min", None)
        if sigma_min is not None:
            return float(schedule.t_of_increment(torch.tensor(sigma_min**2, dtype=torch.float64)))
        if isinstance(schedule, EDMVPSigma):
            return 1e-3  # EDM's ε_s for its VP reference
        return 0.0

    def log_scale(self, t):
        return torch.zeros_like(as_tensor(t))

    def variance(self, t):
        return self.schedule.increment(t)

    def sigma(self, t):
        return torch.sqrt(self.schedule.increment(t))

    def t_of_sigma(self, sigma):
        sigma = as_tensor(sigma)
        return self.schedule.t_of_increment(sigma**2)

    def drift_coef(self, t):
        return torch.zeros_like(as_tensor(t))

    def diffusion2(self, t):
        return self.schedule.increment_rate(t)

    @property
    def prior_std(self):
        return float(self.std(self.T))

    def params(self):
        return {"schedule": self.schedule, **super().params()}


@register("process", "edm", schedules="sigma", default_schedule="edm", default_grid="edm")
class EDM(VE):
    """EDM (Karras et al.): variance exploding on σ(t) = t, T = σ_max, stopping at σ_min."""

    kind = "edm"
    is_a = ("ve",)  # variance exploding: VE's samplers and paper C's bounds apply

    def __init__(self, schedule: SigmaSchedule | None = None, t_min: float | None = None):
        super().__init__(schedule if schedule is not None else EDMSigma(), t_min)
