"""Noise schedules: β(t) for variance-preserving processes, σ(t) for variance-exploding ones.

Every schedule lives on [0, T] and is vectorised over tensors of any shape, dtype and device.
Internally each formula is evaluated in float64 and cast back to the input's dtype: the
schedules are scalars-per-example, so the cost is nil, and it keeps the closed forms exact near
the places where float32 breaks (cos θ at T for the cosine schedule, e^{aT} for β_a, t → 0).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable

import numpy as np
import torch

from ._tensor import Time, as_tensor, phi
from .errors import InvalidParameter, require_positive
from .registry import ParamsModel, import_callable, register

TensorFn = Callable[[torch.Tensor], torch.Tensor]


def _f64(fn):
    """Run a float64 implementation and cast the result back to the input's dtype."""

    def wrapper(self, t: Time) -> torch.Tensor:
        t = as_tensor(t)
        out = fn(self, t.to(torch.float64))
        return out.to(t.dtype)

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


def invert_increasing(
    F: TensorFn, dF: TensorFn, y: torch.Tensor, lo: float, hi: float, *, iters: int = 200
) -> torch.Tensor:
    """Solve F(x) = y for an increasing F on [lo, hi], elementwise, in float64.

    Newton's method safeguarded by bisection: every step keeps a bracket, so it converges even
    where dF vanishes (β_min = 0) and is quadratic elsewhere. Written by hand because
    scipy.optimize works on numpy scalars one root at a time and we need a batched torch solve.
    """
    y = y.to(torch.float64)
    a = torch.full_like(y, lo)
    b = torch.full_like(y, hi)
    x = 0.5 * (a + b)
    for _ in range(iters):
        fx = F(x) - y
        done = fx == 0
        a = torch.where(fx < 0, x, a)
        b = torch.where(fx > 0, x, b)
        step = fx / dF(x)
        xn = x - step
        bad = ~((xn > a) & (xn < b)) & ~done
        xn = torch.where(bad, 0.5 * (a + b), xn)
        xn = torch.where(done, x, xn)
        moved = (xn - x).abs()
        x = xn
        if bool((moved <= 4e-16 * (1.0 + x.abs())).all()):
            break
    return x


# --------------------------------------------------------------------------------------------
# β-schedules (variance preserving: f = −β/(2σ∞²), g² = β)
# --------------------------------------------------------------------------------------------


class BetaSchedule(ABC):
    """A positive rate β(t) on [0, T] with B(t) = ∫₀ᵗ β and ∫₀ᵗ β² (for the error bounds)."""

    kind: str = "beta"

    def __init__(self, T: float = 1.0):
        self.T = require_positive("T", T)

    @abstractmethod
    def beta(self, t: Time) -> torch.Tensor:
        """β(t)."""

    @abstractmethod
    def integral(self, t: Time) -> torch.Tensor:
        """B(t) = ∫₀ᵗ β(u) du."""

    @abstractmethod
    def integral_sq(self, t: Time) -> torch.Tensor:
        """∫₀ᵗ β(u)² du."""

    def inverse_integral(self, b: Time) -> torch.Tensor:
        """The t in [0, T] with B(t) = b (numerical by default; closed forms override)."""
        b = as_tensor(b)
        total = float(self.integral(self.T))
        self._check_integral_range(b, total)
        t = invert_increasing(self.integral, self.beta, b.to(torch.float64), 0.0, self.T)
        return t.to(b.dtype)

    def _check_integral_range(self, b: torch.Tensor, total: float) -> None:
        if b.numel() and not (float(b.min()) >= 0 and float(b.max()) <= total * (1 + 1e-12)):
            raise InvalidParameter(
                "sigma",
                "is beyond the noise level the process reaches at T",
                float(b.max()),
                f"B in [0, {total:g}]",
            )

    def infinite_from(self) -> tuple[float, str] | None:
        """Where β becomes infinite, and the setting of this schedule that avoids it, as
        (t, fix); None where β is finite on [0, T]. Grids and samplers read it to explain a
        process that cannot start at T."""
        return None

    def params(self) -> dict:
        """The constructor's parameters, as ``repr`` and configs show them."""
        return {"T": self.T}

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({inner})"


@register("schedule", "linear", family="beta", context=("T", "variance"))
class LinearBeta(BetaSchedule):
    """Song's VP: β(t) = β_min + (β_max − β_min) t/T."""

    kind = "linear"

    def __init__(self, beta_min: float = 0.1, beta_max: float = 20.0, T: float = 1.0):
        super().__init__(T)
        self.beta_min = require_positive("beta_min", beta_min, allow_zero=True)
        self.beta_max = require_positive("beta_max", beta_max)
        if self.beta_max < self.beta_min:
            raise InvalidParameter("beta_max", "must be ≥ beta_min", beta_max, f"≥ {beta_min}")
        self._k = (self.beta_max - self.beta_min) / self.T

    @_f64
    def beta(self, t):
        return self.beta_min + self._k * t

    @_f64
    def integral(self, t):
        return self.beta_min * t + 0.5 * self._k * t**2

    @_f64
    def integral_sq(self, t):
        a, k = self.beta_min, self._k
        return a**2 * t + a * k * t**2 + k**2 * t**3 / 3.0

    def inverse_integral(self, b):
        b = as_tensor(b)
        self._check_integral_range(b, float(self.integral(self.T)))
        b64 = b.to(torch.float64)
        # Root of (k/2) t² + β_min t − b = 0 in the form that does not cancel.
        den = self.beta_min + torch.sqrt(self.beta_min**2 + 2.0 * self._k * b64)
        t = torch.where(b64 > 0, 2.0 * b64 / torch.where(den > 0, den, 1.0), 0.0)
        return t.to(b.dtype)

    def params(self):
        return {"beta_min": self.beta_min, "beta_max": self.beta_max, "T": self.T}


@register("schedule", "parametric", family="beta", context=("T", "variance"))
class ParametricBeta(BetaSchedule):
    """Paper A's family β_a(t) = β_min + (β_max − β_min)(e^{at} − 1)/(e^{aT} − 1).

    Convex for a > 0, concave for a < 0, linear at a = 0; β(0) = β_min and β(T) = β_max for
    every a. Written through φ_k (see ``_tensor.phi``) so that it is continuous through a = 0
    and stable for |a·T| up to 300.
    """

    kind = "parametric"

    def __init__(
        self, a: float = 0.0, beta_min: float = 0.1, beta_max: float = 20.0, T: float = 1.0
    ):
        super().__init__(T)
        self.a = float(a)
        if not (math.isfinite(self.a) and abs(self.a * self.T) <= 300):
            raise InvalidParameter("a", "must satisfy |a·T| ≤ 300", a)
        self.beta_min = require_positive("beta_min", beta_min, allow_zero=True)
        self.beta_max = require_positive("beta_max", beta_max)
        if self.beta_max < self.beta_min:
            raise InvalidParameter("beta_max", "must be ≥ beta_min", beta_max, f"≥ {beta_min}")
        self._delta = self.beta_max - self.beta_min
        self._phi1_aT = float(phi(1, torch.tensor(self.a * self.T, dtype=torch.float64)))

    @_f64
    def beta(self, t):
        # (e^{at} − 1)/(e^{aT} − 1) = t φ1(at) / (T φ1(aT))
        return self.beta_min + self._delta * t * phi(1, self.a * t) / (self.T * self._phi1_aT)

    @_f64
    def integral(self, t):
        # ∫₀ᵗ (e^{au} − 1) du / (e^{aT} − 1) = t² φ2(at) / (T φ1(aT))
        return self.beta_min * t + self._delta * t**2 * phi(2, self.a * t) / (
            self.T * self._phi1_aT
        )

    @_f64
    def integral_sq(self, t):
        a, T, d, b0 = self.a, self.T, self._delta, self.beta_min
        int_u = t**2 * phi(2, a * t) / (T * self._phi1_aT)
        # ∫₀ᵗ (e^{au} − 1)² du / (e^{aT} − 1)² = 2t³(2φ3(2at) − φ3(at)) / (T² φ1(aT)²)
        int_u2 = 2 * t**3 * (2 * phi(3, 2 * a * t) - phi(3, a * t)) / (T * self._phi1_aT) ** 2
        return b0**2 * t + 2 * b0 * d * int_u + d**2 * int_u2

    def params(self):
        return {"a": self.a, "beta_min": self.beta_min, "beta_max": self.beta_max, "T": self.T}


COSINE_CLIP = 20.0  # the default cap on the cosine schedule's β (the quickstart's)


@register("schedule", "cosine", family="beta", context=("T", "variance"))
class CosineBeta(BetaSchedule):
    """Nichol–Dhariwal's cosine schedule in VP form (paper A's ``beta_cosine``), β capped at
    ``clip_max`` (default 20, so that it samples out of the box).

    With θ_t = (π/2)(s + t/T)/(s + 1): β(t) = v·π/(T(s+1))·tan θ_t and
    B(t) = −2v·log(cos θ_t / cos θ_0), so that m(t) = cos θ_t / cos θ_0 for a VP process whose
    stationary variance is v (the builder passes σ∞² as ``variance``). With the cap β stays
    finite and B(T) < ∞; ``clip_max=None`` (``clip_max: null`` in a config) is the exact
    schedule, B(T) = ∞ (m(T) = 0 exactly) and β(T) = ∞, which samplers refuse to start from.
    ``CosineBeta()`` and a config's ``{kind: cosine}`` are the same schedule.
    """

    kind = "cosine"

    def __init__(
        self,
        s: float = 0.021122,
        clip_max: float | None = COSINE_CLIP,
        T: float = 1.0,
        variance: float = 1.0,
    ):
        super().__init__(T)
        self.s = require_positive("s", s)
        self.variance = require_positive("variance", variance)
        self._k = math.pi / (2 * self.T * (self.s + 1))  # dθ/dt
        self._c = 2 * self.variance * self._k  # β = c tan θ
        self._theta0 = self._k * self.s * self.T
        self.clip_max = None if clip_max is None else require_positive("clip_max", clip_max)
        self._t_clip = math.inf
        if self.clip_max is not None:
            beta0 = self._c * math.tan(self._theta0)
            if self.clip_max <= beta0:
                raise InvalidParameter("clip_max", "must exceed β(0)", clip_max, f"> {beta0:.6g}")
            theta_c = math.atan(self.clip_max / self._c)
            self._t_clip = theta_c / self._k - self.s * self.T

    def infinite_from(self) -> tuple[float, str] | None:
        if self.clip_max is not None:
            return None
        return self.T, "set the schedule's clip_max (e.g. 20)"

    def _cos_theta(self, t):
        # cos θ_t = sin(π/2 − θ_t), written so that it is exactly 0 at t = T.
        return torch.sin(self._k * (self.T - t))

    def _raw_integral(self, t):
        return (
            -2 * self.variance * (torch.log(self._cos_theta(t)) - math.log(math.cos(self._theta0)))
        )

    def _raw_integral_sq(self, t):
        theta = self._k * (self.s * self.T + t)
        tan = torch.sin(theta) / self._cos_theta(t)
        return self._c**2 / self._k * (tan - theta - math.tan(self._theta0) + self._theta0)

    @_f64
    def beta(self, t):
        theta = self._k * (self.s * self.T + t)
        raw = self._c * torch.sin(theta) / self._cos_theta(t)
        return raw if self.clip_max is None else torch.clamp(raw, max=self.clip_max)

    @_f64
    def integral(self, t):
        if self.clip_max is None:
            return self._raw_integral(t)
        tc = torch.clamp(t, max=self._t_clip)
        return self._raw_integral(tc) + self.clip_max * torch.clamp(t - self._t_clip, min=0)

    @_f64
    def integral_sq(self, t):
        if self.clip_max is None:
            return self._raw_integral_sq(t)
        tc = torch.clamp(t, max=self._t_clip)
        return self._raw_integral_sq(tc) + self.clip_max**2 * torch.clamp(t - self._t_clip, min=0)

    def inverse_integral(self, b):
        b = as_tensor(b)
        self._check_integral_range(b, float(self.integral(self.T)))
        b64 = b.to(torch.float64)
        if self.clip_max is not None:
            b_clip = float(self._raw_integral(torch.tensor(min(self._t_clip, self.T))))
            over = torch.clamp(b64 - b_clip, min=0)
            b64 = torch.clamp(b64, max=b_clip)
        # cos θ_t = cos θ_0 · exp(−b / (2v))  ⇒  T − t = asin(cos θ_t)/k
        cos_t = math.cos(self._theta0) * torch.exp(-b64 / (2 * self.variance))
        t = self.T - torch.asin(cos_t) / self._k
        if self.clip_max is not None:
            t = t + over / self.clip_max
        return t.clamp(0, self.T).to(b.dtype)

    def params(self):
        return {"s": self.s, "clip_max": self.clip_max, "T": self.T, "variance": self.variance}


@register("schedule", "constant", family="beta", context=("T", "variance"))
class ConstantBeta(BetaSchedule):
    """β(t) = β (the Ornstein–Uhlenbeck process of papers B and E is β = 2)."""

    kind = "constant"

    def __init__(self, beta: float = 1.0, T: float = 1.0):
        super().__init__(T)
        self.beta_value = require_positive("beta", beta)

    @_f64
    def beta(self, t):
        return torch.full_like(t, self.beta_value)

    @_f64
    def integral(self, t):
        return self.beta_value * t

    @_f64
    def integral_sq(self, t):
        return self.beta_value**2 * t

    def inverse_integral(self, b):
        b = as_tensor(b)
        self._check_integral_range(b, float(self.integral(self.T)))
        return b / self.beta_value

    def params(self):
        return {"beta": self.beta_value, "T": self.T}


class _HermiteTable:
    """A cached antiderivative of a positive integrand on [0, T].

    Gauss–Legendre quadrature (8 nodes) on ``n`` panels gives the antiderivative at the panel
    edges; between edges it is the cubic Hermite interpolant whose slopes are the integrand
    itself, so a query costs no new integrand evaluations. Error ≲ h⁴·max|f'''|/384 (h = T/n),
    far below 1e-8 relative for smooth f with the default n = 4096.
    """

    def __init__(self, f: TensorFn, T: float, n: int = 4096):
        self.T, self.n, self.h = T, n, T / n
        nodes, weights = np.polynomial.legendre.leggauss(8)
        edges = torch.linspace(0.0, T, n + 1, dtype=torch.float64)
        mids = 0.5 * (edges[1:] + edges[:-1])
        x = mids[:, None] + 0.5 * self.h * torch.from_numpy(nodes)[None, :]
        fx = f(x.reshape(-1)).reshape(x.shape)
        panel = 0.5 * self.h * (fx * torch.from_numpy(weights)[None, :]).sum(1)
        self.F = torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumsum(panel, 0)])
        self.dF = f(edges)

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        t = t.clamp(0.0, self.T)
        j = torch.clamp((t / self.h).floor().long(), 0, self.n - 1)
        u = t / self.h - j
        F0, F1 = self.F.to(t.device)[j], self.F.to(t.device)[j + 1]
        d0, d1 = self.dF.to(t.device)[j] * self.h, self.dF.to(t.device)[j + 1] * self.h
        u2, u3 = u * u, u * u * u
        return (
            (2 * u3 - 3 * u2 + 1) * F0
            + (u3 - 2 * u2 + u) * d0
            + (-2 * u3 + 3 * u2) * F1
            + (u3 - u2) * d1
        )


def _call_user(fn: TensorFn, t: torch.Tensor, name: str) -> torch.Tensor:
    try:
        out = fn(t)
        out = torch.as_tensor(out, dtype=torch.float64, device=t.device)
        return out.expand_as(t) if out.shape != t.shape else out
    except Exception as exc:  # the user's function: its failure is a bad input, not our bug
        what = getattr(fn, "__qualname__", None) or type(fn).__name__
        raise InvalidParameter(
            name,
            f"the function {what} failed on a float64 tensor of times "
            f"({type(exc).__name__}: {exc})",
            None,
            "a vectorised torch function of t",
        ) from None


class CallableScheduleConfig(ParamsModel):
    """A user's schedule function, 'package.module:function', vectorised over float64 tensors."""

    function: str


@register("schedule", "callable", config=CallableScheduleConfig, family="beta")
class CallableBeta(BetaSchedule):
    """A user-supplied β(t) (a vectorised torch function); B and ∫β² by cached quadrature."""

    kind = "callable"

    @classmethod
    def from_config(cls, cfg, T: float | None = None, **_) -> CallableBeta:
        return cls(import_callable(cfg.function, "function"), 1.0 if T is None else T)

    def __init__(self, beta: TensorFn, T: float = 1.0, n_panels: int = 4096):
        super().__init__(T)
        self.fn = beta
        grid = torch.linspace(0.0, self.T, 1025, dtype=torch.float64)
        values = _call_user(beta, grid, "beta")
        if not bool(torch.isfinite(values).all()) or bool((values < 0).any()):
            raise InvalidParameter("beta", "must be finite and ≥ 0 on [0, T]", "a callable")
        if not float(values.max()) > 0:
            raise InvalidParameter("beta", "must be positive somewhere on [0, T]", "a callable")
        self._B = _HermiteTable(lambda t: _call_user(beta, t, "beta"), self.T, n_panels)
        self._B2 = _HermiteTable(lambda t: _call_user(beta, t, "beta") ** 2, self.T, n_panels)

    @_f64
    def beta(self, t):
        return _call_user(self.fn, t, "beta")

    @_f64
    def integral(self, t):
        return self._B(t)

    @_f64
    def integral_sq(self, t):
        return self._B2(t)

    def params(self):
        return {"beta": getattr(self.fn, "__name__", repr(self.fn)), "T": self.T}


# --------------------------------------------------------------------------------------------
# σ-schedules (variance exploding: X_t = X_0 + noise with variance σ(t)² − σ(0)²)
# --------------------------------------------------------------------------------------------


class SigmaSchedule(ABC):
    """An increasing noise level σ(t) on [0, T].

    A VE process started from the data at t = 0 has variance σ(t)² − σ(0)² (``increment``),
    which equals σ(t)² for the schedules with σ(0) = 0 (EDM, EDM-VP) and is within σ_min² of it
    for the geometric one. ``increment`` and its inverse are closed forms so that both stay
    accurate as t → 0.
    """

    kind: str = "sigma"

    def __init__(self, T: float):
        self.T = require_positive("T", T)

    @abstractmethod
    def sigma(self, t: Time) -> torch.Tensor:
        """σ(t)."""

    @abstractmethod
    def increment(self, t: Time) -> torch.Tensor:
        """σ(t)² − σ(0)²: the forward variance accumulated since t = 0."""

    @abstractmethod
    def increment_rate(self, t: Time) -> torch.Tensor:
        """d σ(t)²/dt = g(t)², the VE diffusion coefficient."""

    @abstractmethod
    def t_of_increment(self, v: Time) -> torch.Tensor:
        """The t with σ(t)² − σ(0)² = v."""

    def t_of_sigma(self, sigma: Time) -> torch.Tensor:
        """The t with σ(t) = sigma."""
        sigma = as_tensor(sigma)
        s0 = float(self.sigma(0.0))
        return self.t_of_increment(sigma**2 - s0**2)

    def _check_increment_range(self, v: torch.Tensor) -> None:
        total = float(self.increment(self.T))
        if v.numel() and not (
            float(v.min()) >= -1e-12 * total and float(v.max()) <= total * (1 + 1e-12)
        ):
            raise InvalidParameter(
                "sigma",
                "is beyond the range of noise levels of the schedule",
                float(v.max()),
                f"σ² − σ(0)² in [0, {total:g}]",
            )

    def params(self) -> dict:
        return {"T": self.T}

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({inner})"


@register("schedule", "geometric", family="sigma", context=("T", "variance"))
class GeometricSigma(SigmaSchedule):
    """Song's VE: σ(t) = σ_min (σ_max/σ_min)^{t/T}."""

    kind = "geometric"

    def __init__(self, sigma_min: float = 0.01, sigma_max: float = 50.0, T: float = 1.0):
        super().__init__(T)
        self.sigma_min = require_positive("sigma_min", sigma_min)
        self.sigma_max = require_positive("sigma_max", sigma_max)
        if self.sigma_max <= self.sigma_min:
            raise InvalidParameter(
                "sigma_max", "must exceed sigma_min", sigma_max, f"> {sigma_min}"
            )
        self._r = math.log(self.sigma_max / self.sigma_min) / self.T  # d log σ / dt

    @_f64
    def sigma(self, t):
        return self.sigma_min * torch.exp(self._r * t)

    @_f64
    def increment(self, t):
        return self.sigma_min**2 * torch.expm1(2 * self._r * t)

    @_f64
    def increment_rate(self, t):
        return 2 * self._r * self.sigma_min**2 * torch.exp(2 * self._r * t)

    def t_of_increment(self, v):
        v = as_tensor(v)
        self._check_increment_range(v)
        v64 = v.to(torch.float64).clamp(min=0)
        return (torch.log1p(v64 / self.sigma_min**2) / (2 * self._r)).to(v.dtype)

    def params(self):
        return {"sigma_min": self.sigma_min, "sigma_max": self.sigma_max, "T": self.T}


@register("schedule", "edm", family="sigma", horizon="sigma_max", context=("T", "variance"))
class EDMSigma(SigmaSchedule):
    """EDM: σ(t) = t on [0, σ_max] (so T = σ_max); σ_min is the usual stopping level."""

    kind = "edm"

    def __init__(self, sigma_min: float = 0.002, sigma_max: float = 80.0):
        super().__init__(require_positive("sigma_max", sigma_max))
        self.sigma_min = require_positive("sigma_min", sigma_min)
        if self.sigma_max <= self.sigma_min:
            raise InvalidParameter(
                "sigma_max", "must exceed sigma_min", sigma_max, f"> {sigma_min}"
            )

    @property
    def sigma_max(self) -> float:
        return self.T

    @_f64
    def sigma(self, t):
        return t.clone()

    @_f64
    def increment(self, t):
        return t**2

    @_f64
    def increment_rate(self, t):
        return 2 * t

    def t_of_increment(self, v):
        v = as_tensor(v)
        self._check_increment_range(v)
        return torch.sqrt(v.clamp(min=0))

    def t_of_sigma(self, sigma):
        sigma = as_tensor(sigma)
        self._check_increment_range(sigma**2)
        return sigma.clone()

    def params(self):
        return {"sigma_min": self.sigma_min, "sigma_max": self.sigma_max}


@register("schedule", "edm_vp", family="sigma", context=("T", "variance"))
class EDMVPSigma(SigmaSchedule):
    """EDM's VP noise level σ(t) = √(exp(½β_d t² + β_min t) − 1) (the σ of Song's linear VP
    with β(t) = β_min + β_d t)."""

    kind = "edm_vp"

    def __init__(self, beta_d: float = 19.9, beta_min: float = 0.1, T: float = 1.0):
        super().__init__(T)
        self.beta_d = require_positive("beta_d", beta_d, allow_zero=True)
        self.beta_min = require_positive("beta_min", beta_min, allow_zero=True)
        if self.beta_d == 0 and self.beta_min == 0:
            raise InvalidParameter("beta_d", "and beta_min cannot both be 0", 0.0)

    def _q(self, t):
        return 0.5 * self.beta_d * t**2 + self.beta_min * t

    @_f64
    def sigma(self, t):
        return torch.sqrt(torch.expm1(self._q(t)))

    @_f64
    def increment(self, t):
        return torch.expm1(self._q(t))

    @_f64
    def increment_rate(self, t):
        return (self.beta_d * t + self.beta_min) * torch.exp(self._q(t))

    def t_of_increment(self, v):
        v = as_tensor(v)
        self._check_increment_range(v)
        q = torch.log1p(v.to(torch.float64).clamp(min=0))
        den = self.beta_min + torch.sqrt(self.beta_min**2 + 2 * self.beta_d * q)
        t = torch.where(q > 0, 2 * q / torch.where(den > 0, den, 1.0), 0.0)
        return t.to(v.dtype)

    def params(self):
        return {"beta_d": self.beta_d, "beta_min": self.beta_min, "T": self.T}


@register("schedule", "sigma_callable", config=CallableScheduleConfig, family="sigma")
class CallableSigma(SigmaSchedule):
    """A user-supplied increasing σ(t) (vectorised torch function, differentiable in t); the
    rate dσ²/dt by autograd and the inverse by safeguarded Newton."""

    kind = "sigma_callable"

    @classmethod
    def from_config(cls, cfg, T: float | None = None, **_) -> CallableSigma:
        return cls(import_callable(cfg.function, "function"), 1.0 if T is None else T)

    def __init__(self, sigma: TensorFn, T: float = 1.0):
        super().__init__(T)
        self.fn = sigma
        grid = torch.linspace(0.0, self.T, 1025, dtype=torch.float64)
        values = _call_user(sigma, grid, "sigma")
        if not bool(torch.isfinite(values).all()) or bool((values < 0).any()):
            raise InvalidParameter("sigma", "must be finite and ≥ 0 on [0, T]", "a callable")
        if not bool((values[1:] > values[:-1]).all()):
            raise InvalidParameter("sigma", "must be increasing on [0, T]", "a callable")
        self._s0 = float(values[0])

    @_f64
    def sigma(self, t):
        return _call_user(self.fn, t, "sigma")

    @_f64
    def increment(self, t):
        return _call_user(self.fn, t, "sigma") ** 2 - self._s0**2

    @_f64
    def increment_rate(self, t):
        with torch.enable_grad():
            tt = t.detach().clone().requires_grad_(True)
            s2 = _call_user(self.fn, tt, "sigma") ** 2
            (grad,) = torch.autograd.grad(s2.sum(), tt)
        return grad

    def t_of_increment(self, v):
        v = as_tensor(v)
        self._check_increment_range(v)
        t = invert_increasing(self.increment, self.increment_rate, v.to(torch.float64), 0.0, self.T)
        return t.to(v.dtype)

    def params(self):
        return {"sigma": getattr(self.fn, "__name__", repr(self.fn)), "T": self.T}


BETA_SCHEDULES: dict[str, type[BetaSchedule]] = {
    c.kind: c for c in (LinearBeta, ParametricBeta, CosineBeta, ConstantBeta, CallableBeta)
}
SIGMA_SCHEDULES: dict[str, type[SigmaSchedule]] = {
    c.kind: c for c in (GeometricSigma, EDMSigma, EDMVPSigma, CallableSigma)
}
