"""Time reparameterisations of flow time t ∈ [0, 1]: SD3's resolution shift and Flux's dynamic
shift, in one place, for training times (``flow_matching.logit_normal``) and sampling grids
(the ``shifted`` grid, spaced in rectified-flow time τ = σ/(1 + σ) so that it applies to every
process) (docs/theory.md §14.4).

SD3 (Esser et al. 2024, section 5.3.2) shifts the time of a rectified flow for a resolution with
more pixels by s = √(m/n):

    t' = s t / (1 + (s − 1) t).

On rectified flow σ/α = t/(1 − t), and t'/(1 − t') = s·t/(1 − t): the shift multiplies
scorelab's noise level σ by s (log-SNR −2 ln s lower at every t). Flux's "exponential"
dynamic shift t' = e^μ/(e^μ + (1/t − 1)^γ) is the same map with s = e^μ when γ = 1; diffusers'
"linear" one is μ/(μ + (1/t − 1)^γ). Each registered map fixes 0 and 1, is increasing, and
registers its inverse (``inverse=`` metadata).
"""

from __future__ import annotations

import math

import torch

from .errors import InvalidParameter, require_positive
from .registry import entry, register


def _odds_map(t: torch.Tensor, factor: float, exponent: float) -> torch.Tensor:
    """t ↦ 1/(1 + ((1/t − 1)^γ)/c): the odds (1 − t)/t raised to γ and divided by c."""
    t = torch.as_tensor(t, dtype=torch.float64) if not isinstance(t, torch.Tensor) else t
    odds = (1.0 - t) / t  # ∞ at t = 0, 0 at t = 1
    return 1.0 / (1.0 + odds**exponent / factor)


def _odds_inverse(tp: torch.Tensor, factor: float, exponent: float) -> torch.Tensor:
    tp = torch.as_tensor(tp, dtype=torch.float64) if not isinstance(tp, torch.Tensor) else tp
    odds = (factor * (1.0 - tp) / tp) ** (1.0 / exponent)
    return 1.0 / (1.0 + odds)


def _shift_map(t, s: float):
    return s * t / (1.0 + (s - 1.0) * t)


def _unshift(tp, shift: float = 3.0):
    s = require_positive("shift", shift)
    return tp / (s - (s - 1.0) * tp)


@register("reparam", "shift", inverse=_unshift)
def shift(t, shift: float = 3.0):
    """SD3's resolution shift t' = s t/(1 + (s − 1) t) (s = 3 for SD3 at 1024², 1 = none):
    the noise level σ of rectified flow times s."""
    return _shift_map(t, require_positive("shift", shift))


def _exponential_inverse(tp, mu: float = 1.15, exponent: float = 1.0):
    return _odds_inverse(tp, math.exp(mu), require_positive("exponent", exponent))


@register("reparam", "exponential", inverse=_exponential_inverse)
def exponential(t, mu: float = 1.15, exponent: float = 1.0):
    """Flux's dynamic shift (diffusers' time_shift_type "exponential"):
    t' = e^μ/(e^μ + (1/t − 1)^γ); μ from the image size (``flux_mu``); γ = 1 is the shift
    s = e^μ."""
    return _odds_map(t, math.exp(mu), require_positive("exponent", exponent))


def _linear_inverse(tp, mu: float = 3.0, exponent: float = 1.0):
    return _odds_inverse(tp, require_positive("mu", mu), require_positive("exponent", exponent))


@register("reparam", "linear", inverse=_linear_inverse)
def linear(t, mu: float = 3.0, exponent: float = 1.0):
    """diffusers' time_shift_type "linear": t' = μ/(μ + (1/t − 1)^γ) (γ = 1: the shift s = μ)."""
    return _odds_map(t, require_positive("mu", mu), require_positive("exponent", exponent))


def reparameterise(t: torch.Tensor, kind: str = "shift", inverse: bool = False, **params):
    """A registered time map (or its inverse) applied to t ∈ [0, 1]."""
    e = entry("reparam", kind)
    unknown = set(params) - set(e.parameters)
    if unknown:
        raise InvalidParameter(
            sorted(unknown)[0], f"is not a parameter of '{kind}'", None, ", ".join(e.parameters)
        )
    fn = e.meta["inverse"] if inverse else e.obj
    return fn(t, **params)


def flux_mu(
    image_seq_len: int,
    base_seq_len: int = 256,
    max_seq_len: int = 4096,
    base_shift: float = 0.5,
    max_shift: float = 1.15,
) -> float:
    """Flux's μ for an image of ``image_seq_len`` latent tokens: linear from ``base_shift`` at
    ``base_seq_len`` to ``max_shift`` at ``max_seq_len`` (diffusers' ``calculate_shift``)."""
    slope = (max_shift - base_shift) / (max_seq_len - base_seq_len)
    return image_seq_len * slope + base_shift - slope * base_seq_len


def _flow_time(sigma: torch.Tensor) -> torch.Tensor:
    """τ = σ/(1 + σ), rectified flow's time at the noise level σ (1 at σ = ∞)."""
    return 1.0 / (1.0 + 1.0 / sigma)


@register("grid", "shifted", space="sigma", infinite_sigma=True)
def shifted(u: torch.Tensor, hi: float, lo: float, shift: float = 3.0) -> torch.Tensor:
    """SD3's shifted grid: uniform in the unshifted rectified-flow time τ = σ/(1 + σ) between
    the preimages of the ends, then shifted (on rectified flow τ = t: the nodes of diffusers'
    FlowMatchEulerDiscreteScheduler when t_min is its last σ); may start at σ = ∞."""
    s = require_positive("shift", shift)
    ends = torch.tensor([hi, lo], dtype=torch.float64)
    a, b = (float(v) for v in _unshift(_flow_time(ends), s))
    tau = _shift_map(a + u * (b - a), s)
    # the round trip σ → τ → unshifted → shifted → σ is exact only up to rounding: clamp, so the
    # ends are the grid's own levels and never beyond the process's range
    return (tau / (1.0 - tau)).clamp(min=lo, max=hi)


def shifted_times(
    steps: int, shift: float = 3.0, t_max: float = 1.0, t_min: float = 1e-3, final: bool = True
) -> torch.Tensor:
    """Decreasing flow times for a sampler: ``steps`` steps from t_max to t_min on the
    ``shifted`` grid with this shift, and the step to t = 0 when ``final``."""
    if int(steps) < 1:
        raise InvalidParameter("steps", "must be ≥ 1", steps)
    if not 0 < t_min < t_max <= 1:
        raise InvalidParameter("t_min", "and t_max must satisfy 0 < t_min < t_max ≤ 1", t_min)
    u = torch.linspace(0.0, 1.0, int(steps) + 1, dtype=torch.float64)
    s = require_positive("shift", shift)
    a, b = float(_unshift(torch.tensor(t_max), s)), float(_unshift(torch.tensor(t_min), s))
    t = _shift_map(a + u * (b - a), s)
    t[0], t[-1] = t_max, t_min
    return torch.cat([t, torch.zeros(1, dtype=t.dtype)]) if final else t


__all__ = [
    "exponential",
    "flux_mu",
    "linear",
    "reparameterise",
    "shift",
    "shifted",
    "shifted_times",
]
