"""Score-matching losses, per example (the trainer reduces).

Denoising score matching in its generic form (docs/theory.md §6.1):

    ℓ(x₀, t, z) = λ(t) ‖s_θ(m x₀ + s z, t) + z/s‖²,

with t drawn from a noise distribution and λ a weighting. Every weighting is written in this
form, so that all of them share one code path; in particular EDM's λ_EDM(σ)‖D_θ − x₀‖² equals
λ_EDM(σ)·σ²s²·‖s_θ + z/s‖² because D = (x + s² s_θ)/m and s = mσ, and the 1/σ² weighting of
EDM's VE/VP losses is therefore the "convention" weight s².

Noise distributions: ``uniform_t`` on [t_min, T]; ``lognormal`` σ (its parameters ``p_mean``,
``p_std``) and ``loguniform`` σ on [σ(t_min), σ(T)], mapped to t by the process's exact inverse
(σ outside the process's range is clamped to it).

One signature each, for registered and user-written ones alike:

* a noise law is ``law(process, n, generator, **params) → n times``;
* a weighting is ``weighting(process, t, var, sigma_data, **params) → λ(t)`` (var = s(t)²).

Wherever a loss takes ``noise`` or ``weighting`` it accepts a registered kind (``"lognormal"``),
a section ``{"kind": "lognormal", "p_mean": -1.0}`` (a config's ``train.noise``) or a callable
of that signature; a callable of another shape is refused with the signature it needs.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

import torch
from pydantic import BaseModel, Field

from .errors import InvalidParameter
from .processes import ForwardProcess
from .registry import entries, entry, register

NoiseLaw = Callable[..., torch.Tensor]  # (process, n, generator, **params) → [n] times
Weighting = Callable[..., torch.Tensor]  # (process, t, var, sigma_data, **params) → λ(t)
Spec = str | Mapping[str, Any] | BaseModel  # a registered kind, or {kind, **params}

# the positional arguments of each group's callables (then its own keyword parameters)
ARGUMENTS = {
    "noise": ("process", "n", "generator"),
    "weighting": ("process", "t", "var", "sigma_data"),
}
SIGNATURES = {
    "noise": "(process, n, generator, **params) → n times",
    "weighting": "(process, t, var, sigma_data, **params) → λ(t)",
}


@dataclass(frozen=True)
class Configured:
    """A noise law or weighting with its parameters bound: called with the group's positional
    arguments only. ``name`` is the registered kind, or the callable's name."""

    fn: Callable[..., Any]
    params: Mapping[str, Any] = field(default_factory=dict)
    name: str = ""

    def __call__(self, *args: Any) -> Any:
        return self.fn(*args, **self.params)


def configured(group: str, spec: Spec | Callable | Configured, field: str | None = None):
    """The ``group`` ("noise" or "weighting") component that ``spec`` names, its parameters
    validated and bound: a registered kind, ``{kind, **params}`` (or its config section), or a
    callable of the group's signature (``SIGNATURES``)."""
    field = field or group
    if isinstance(spec, Configured):
        return spec
    if isinstance(spec, str):
        spec = {"kind": spec}
    elif isinstance(spec, BaseModel):
        spec = spec.model_dump()
    if isinstance(spec, Mapping):
        params = dict(spec)
        kind = params.pop("kind", None)
        if kind not in entries(group):
            raise InvalidParameter(
                f"{field}.kind",
                f"is not a registered {group}" if kind is not None else "is missing",
                kind,
                ", ".join(entries(group)),
            )
        e = entry(group, kind)
        own = e.validate(params, field)
        return Configured(e.obj, {k: getattr(own, k) for k in e.parameters}, kind)
    if callable(spec):
        _check_shape(group, spec, field)
        return Configured(spec, {}, getattr(spec, "__name__", type(spec).__name__))
    raise InvalidParameter(
        field,
        f"must name a {group} kind, give {{kind, ...}}, or be a callable {SIGNATURES[group]}",
        spec,
        ", ".join(entries(group)),
    )


def _check_shape(group: str, fn: Callable, field: str) -> None:
    """Refuse a callable that cannot take the group's positional arguments."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # a builtin without a signature: trust it
        return
    try:
        sig.bind(*ARGUMENTS[group])
    except TypeError:
        name = getattr(fn, "__name__", type(fn).__name__)
        raise InvalidParameter(
            field,
            f"is a callable {name}{sig}, but a {group} callable takes {SIGNATURES[group]}",
        ) from None


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
    process: ForwardProcess,
    n: int,
    generator=None,
    p_mean: float = -1.2,
    p_std: Annotated[float, Field(gt=0)] = 1.2,
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
    noise: Spec | NoiseLaw | Configured = "uniform_t",
) -> torch.Tensor:
    """n training times (float64) from a noise law: a registered kind, ``{kind, **params}``
    or a callable ``(process, n, generator)`` (see the module's docstring)."""
    law = configured("noise", noise)
    t = torch.as_tensor(law(process, n, generator), dtype=torch.float64)
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
    kind: Spec | Weighting | Configured = "s2",
    sigma_data: float = 0.5,
    var: torch.Tensor | None = None,
) -> torch.Tensor:
    """λ(t) multiplying ‖s_θ + z/s‖² (see the module docstring for the conversions), from a
    registered weighting, ``{kind, **params}`` or a callable ``(process, t, var, sigma_data)``;
    ``var`` = s(t)² when the caller has it already."""
    fn = configured("weighting", kind)
    lam = fn(process, t, process.variance(t) if var is None else var, sigma_data)
    if not isinstance(lam, torch.Tensor):
        lam = torch.as_tensor(lam, dtype=t.dtype)
    if lam.shape not in ((), t.shape):
        raise InvalidParameter(
            "weighting", f"'{fn.name}' must give one λ per time", tuple(lam.shape), str(t.shape)
        )
    return lam


# Losses: (score_model, x0, process, generator, *, noise, weighting, sigma_data, t, z, <own
# parameters>) → per-example loss [B]. The keywords up to z are the trainer's to supply
# (registry.CALL_ARGUMENTS); the rest are the loss's parameters, set in its config section
# (``train.loss: {kind: fp_dsm, alpha: 0.5}``). Metadata the trainer and ``scorelab check``
# read: ``needs_exact_score`` (the trainer passes the target's exact score as
# ``exact_score``), ``needs_create_graph`` (the loss differentiates through derivatives of
# the model, so ``train.compile`` cannot apply).


@register("loss", "dsm")
def dsm_loss(
    score_model: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x0: torch.Tensor,
    process: ForwardProcess,
    generator: torch.Generator | None = None,
    *,
    noise: Spec | NoiseLaw = "uniform_t",
    weighting: Spec | Weighting = "s2",
    sigma_data: float = 0.5,
    t: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-example denoising score-matching loss ``[B]`` (``t`` and ``z`` may be given)."""
    t, z, var, xt = perturbed_batch(process, x0, generator, noise, t, z)
    lam = weight(process, t, weighting, sigma_data, var=var).to(x0.dtype).to(x0.device)
    return denoising_error(score_model(xt, t.to(x0.dtype).to(x0.device)), z, var, lam)


def perturbed_batch(
    process: ForwardProcess,
    x0: torch.Tensor,
    generator: torch.Generator | None = None,
    noise: Spec | NoiseLaw = "uniform_t",
    t: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
):
    """The DSM term's draw: (t, z, s(t)², x_t = m x₀ + s z), drawing t (float64, ``[B]``)
    from ``noise`` and z where they are not given."""
    n = x0.shape[0]
    if t is None:
        t = sample_times(process, n, generator, noise)
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


@register("loss", "esm", needs_exact_score=True)
def esm_loss(
    score_model,
    x0: torch.Tensor,
    process: ForwardProcess,
    generator: torch.Generator | None = None,
    *,
    exact_score,
    noise: Spec | NoiseLaw = "uniform_t",
    weighting: Spec | Weighting = "s2",
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
