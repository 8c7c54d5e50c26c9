"""Score-matching losses, per example (the trainer reduces).

Denoising score matching in its generic form (docs/theory.md §6.1):

    ℓ(x₀, t, z) = λ(t) ‖s_θ(m x₀ + s z, t) + z/s‖²,

with t drawn from a noise distribution and λ a weighting. Every weighting is written in this
form, so that all of them share one code path; in particular EDM's λ_EDM(σ)‖D_θ − x₀‖² equals
λ_EDM(σ)·σ²s²·‖s_θ + z/s‖² because D = (x + s² s_θ)/m and s = mσ, and the 1/σ² weighting of
EDM's VE/VP losses is therefore the "convention" weight s².

Noise distributions: ``uniform_t`` on [t_min, T]; ``lognormal`` σ (P_mean, P_std) and
``loguniform`` σ on [σ(t_min), σ(T)], mapped to t by the process's exact inverse (σ outside the
process's range is clamped to it). A user distribution is any callable (n, generator) → t.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .errors import InvalidParameter
from .processes import ForwardProcess
from .registry import entry, get, register

TimeSampler = Callable[[int, torch.Generator | None], torch.Tensor]
Weighting = Callable[[torch.Tensor], torch.Tensor]


# --------------------------------------------------------------------------------------------
# noise distributions: (process, n, generator, **parameters) → n times in [t_min, T]
# --------------------------------------------------------------------------------------------


@register("noise", "uniform_t")
def uniform_t(process: ForwardProcess, n: int, generator=None) -> torch.Tensor:
    """t uniform on [t_min, T] (Song et al.)."""
    u = torch.rand(n, generator=generator, dtype=torch.float64)
    return process.t_min + (process.T - process.t_min) * u


def _sigma_range(process: ForwardProcess) -> tuple[float, float]:
    return float(process.sigma(process.t_min)), float(process.sigma(process.T))


def _times_of_log_sigma(process: ForwardProcess, log_sigma: torch.Tensor) -> torch.Tensor:
    s_lo, s_hi = _sigma_range(process)
    sigma = torch.exp(log_sigma).clamp(min=max(s_lo, 1e-12), max=s_hi)
    return process.t_of_sigma(sigma)


@register("noise", "lognormal")
def lognormal(
    process: ForwardProcess, n: int, generator=None, p_mean: float = -1.2, p_std: float = 1.2
) -> torch.Tensor:
    """ln σ ~ N(P_mean, P_std²) (EDM), clamped to the process's σ range."""
    log_sigma = p_mean + p_std * torch.randn(n, generator=generator, dtype=torch.float64)
    return _times_of_log_sigma(process, log_sigma)


@register("noise", "loguniform")
def loguniform(process: ForwardProcess, n: int, generator=None) -> torch.Tensor:
    """ln σ uniform on [ln σ(t_min), ln σ(T)] (Song's VE)."""
    s_lo, s_hi = _sigma_range(process)
    if not (s_lo > 0 and math.isfinite(s_hi)):
        raise InvalidParameter(
            "noise", "loguniform needs 0 < σ(t_min) and a finite σ(T)", (s_lo, s_hi)
        )
    u = torch.rand(n, generator=generator, dtype=torch.float64)
    log_sigma = math.log(s_lo) + u * (math.log(s_hi) - math.log(s_lo))
    return _times_of_log_sigma(process, log_sigma)


def sample_times(
    process: ForwardProcess,
    n: int,
    generator: torch.Generator | None = None,
    kind: str | TimeSampler = "uniform_t",
    p_mean: float = -1.2,
    p_std: float = 1.2,
) -> torch.Tensor:
    """n training times (float64) from a registered noise distribution, or a callable
    (n, generator) → t."""
    if callable(kind):
        t = torch.as_tensor(kind(n, generator), dtype=torch.float64)
    else:
        e = entry("noise", kind)
        params = {k: v for k, v in {"p_mean": p_mean, "p_std": p_std}.items() if k in e.parameters}
        t = e.obj(process, n, generator, **params)
    if t.shape != (n,):
        raise InvalidParameter("noise", "must give one time per example", tuple(t.shape), f"({n},)")
    return t.clamp(process.t_min, process.T)


# --------------------------------------------------------------------------------------------
# weightings: λ(t) multiplying ‖s_θ + z/s‖², from (process, t, var = s(t)², sigma_data)
# --------------------------------------------------------------------------------------------


@register("weighting", "s2")
def s2(process: ForwardProcess, t, var, sigma_data: float) -> torch.Tensor:
    """λ = s(t)² (Song's likelihood-free convention; EDM's 1/σ² on ‖D_θ − x₀‖² is the same)."""
    return var


@register("weighting", "g2")
def g2(process: ForwardProcess, t, var, sigma_data: float) -> torch.Tensor:
    """λ = g(t)² (likelihood weighting)."""
    return process.diffusion2(t)


@register("weighting", "edm")
def edm(process: ForwardProcess, t, var, sigma_data: float) -> torch.Tensor:
    """EDM's λ(σ) = (σ² + σ_data²)/(σ σ_data)², written on the score residual."""
    sigma2 = var / process.scale(t) ** 2
    lam = (sigma2 + sigma_data**2) / (sigma2 * sigma_data**2)
    return lam * sigma2 * var


@register("weighting", "none")
def none(process: ForwardProcess, t, var, sigma_data: float) -> torch.Tensor:
    """λ = 1 (the raw score-matching loss; heavy at small t)."""
    return torch.ones_like(t)


def weight(
    process: ForwardProcess,
    t: torch.Tensor,
    kind: str | Weighting = "s2",
    sigma_data: float = 0.5,
    var: torch.Tensor | None = None,
) -> torch.Tensor:
    """λ(t) multiplying ‖s_θ + z/s‖² (see the module docstring for the conversions);
    ``var`` = s(t)² when the caller has it already."""
    if callable(kind):
        return torch.as_tensor(kind(t), dtype=t.dtype)
    fn = get("weighting", kind)
    return fn(process, t, process.variance(t) if var is None else var, sigma_data)


@register("loss", "dsm")
def dsm_loss(
    score_model: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x0: torch.Tensor,
    process: ForwardProcess,
    generator: torch.Generator | None = None,
    *,
    noise: str | TimeSampler = "uniform_t",
    weighting: str | Weighting = "s2",
    sigma_data: float = 0.5,
    p_mean: float = -1.2,
    p_std: float = 1.2,
    t: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-example denoising score-matching loss ``[B]`` (``t`` and ``z`` may be given)."""
    t, z, var, xt = perturbed_batch(process, x0, generator, noise, p_mean, p_std, t, z)
    lam = weight(process, t, weighting, sigma_data, var=var).to(x0.dtype).to(x0.device)
    return denoising_error(score_model(xt, t.to(x0.dtype).to(x0.device)), z, var, lam)


def perturbed_batch(
    process: ForwardProcess,
    x0: torch.Tensor,
    generator: torch.Generator | None = None,
    noise: str | TimeSampler = "uniform_t",
    p_mean: float = -1.2,
    p_std: float = 1.2,
    t: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
):
    """The DSM term's draw: (t, z, s(t)², x_t = m x₀ + s z), drawing t (float64, ``[B]``)
    from ``noise`` and z where they are not given."""
    n = x0.shape[0]
    if t is None:
        t = sample_times(process, n, generator, noise, p_mean, p_std)
    t = torch.as_tensor(t, dtype=torch.float64)
    if z is None:
        z = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=x0.device)
    var = process.variance(t)
    shape = (n,) + (1,) * (x0.ndim - 1)
    s = torch.sqrt(var).to(x0.dtype).reshape(shape).to(x0.device)
    xt = process.scale(t).to(x0.dtype).reshape(shape).to(x0.device) * x0 + s * z
    return t, z, var, xt


def denoising_error(
    score: torch.Tensor, z: torch.Tensor, var: torch.Tensor, lam: torch.Tensor
) -> torch.Tensor:
    """λ(t)‖s_θ + z/s‖² per example, from the score at x_t and the draw's z and s(t)²."""
    n = z.shape[0]
    s = torch.sqrt(var).to(z.dtype).reshape((n,) + (1,) * (z.ndim - 1)).to(z.device)
    return lam * (score + z / s).reshape(n, -1).pow(2).sum(1)


@register("loss", "esm")
def esm_loss(
    score_model,
    x0: torch.Tensor,
    process: ForwardProcess,
    generator: torch.Generator | None = None,
    *,
    exact_score,
    noise: str | TimeSampler = "uniform_t",
    weighting: str | Weighting = "s2",
    sigma_data: float = 0.5,
    t: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-example explicit score matching λ(t)‖s_θ − ∇log p_t‖² against an exact score
    (paper A trains Gaussian targets this way); ``exact_score(x, t)``."""
    n = x0.shape[0]
    if t is None:
        t = sample_times(process, n, generator, noise)
    t = torch.as_tensor(t, dtype=torch.float64)
    if z is None:
        z = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=x0.device)
    xt = process.perturb(x0, t.to(x0.dtype), z)
    diff = score_model(xt, t.to(x0.dtype)) - exact_score(xt, t.to(x0.dtype))
    lam = weight(process, t, weighting, sigma_data).to(x0.dtype)
    return lam * diff.reshape(n, -1).pow(2).sum(1)
