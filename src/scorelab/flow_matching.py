"""Conditional flow matching: the loss, the DSM weighting it equals, and SD3's logit-normal
time law (docs/theory.md §14.3).

For x_t = α x₀ + σ z the conditional velocity is α̇ x₀ + σ̇ z and the loss is

    ℓ_CFM(x₀, t, z) = λ(t) ‖v_θ(x_t, t) − (α̇ x₀ + σ̇ z)‖².

Writing v_θ through the model's score (``scorelab.velocity``),
v_θ − (α̇ x₀ + σ̇ z) = −½ g² (s_θ + z/σ) with ½ g² = σσ̇ − (α̇/α)σ², so

    ‖v_θ − (α̇ x₀ + σ̇ z)‖² = (g⁴/4) ‖s_θ(x_t, t) + z/σ‖²:

CFM with λ is DSM (``losses.dsm_loss``) with the weighting λ·g⁴/4; plain CFM (λ = 1) is DSM
with the registered weighting ``cfm``, λ = g⁴/4, which on rectified flow is t²/(1 − t)² =
(σ/α)², the squared noise level (EDM's λ(σ)‖D_θ − x₀‖² with λ = 1/t²). The losses share
``dsm_loss``'s call contract, so the trainer runs them as it runs DSM; ``coupling`` re-pairs
the batch's noise with its data (``scorelab.couplings``) before x_t is formed.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ._tensor import per_example
from .couplings import couple
from .losses import NoiseLaw, Spec, Weighting, perturbed_batch, sample_times, weight
from .processes import ForwardProcess
from .registry import register
from .time_shift import reparameterise
from .velocity import coefficients, velocity_of


@register("weighting", "cfm")
def cfm(process: ForwardProcess, t, var, sigma_data: float) -> torch.Tensor:
    """λ = g(t)⁴/4: DSM with this weighting is conditional flow matching (λ = 1 on the
    velocity); (σ/α)² on rectified flow."""
    return 0.25 * process.diffusion2(t) ** 2


@register("noise", "logit_normal")
def logit_normal(
    process: ForwardProcess,
    n: int,
    generator=None,
    logit_mean: float = 0.0,
    logit_std: float = 1.0,
    shift: float = 1.0,
) -> torch.Tensor:
    """SD3's time law: t/T = sigmoid(u), u ~ N(logit_mean, logit_std²), then the resolution
    shift t ↦ s t/(1 + (s − 1) t) (1: none)."""
    u = logit_mean + logit_std * torch.randn(n, generator=generator, dtype=torch.float64)
    t = reparameterise(torch.sigmoid(u), "shift", shift=shift)
    return process.T * t


@register("loss", "cfm")
def cfm_loss(
    model: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x0: torch.Tensor,
    process: ForwardProcess,
    generator: torch.Generator | None = None,
    *,
    noise: Spec | NoiseLaw = "uniform_t",
    weighting: Spec | Weighting = "none",
    sigma_data: float = 0.5,
    t: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    coupling: str = "independent",
) -> torch.Tensor:
    """Per-example conditional flow matching λ(t)‖v_θ(x_t, t) − (α̇ x₀ + σ̇ z)‖² ``[B]``
    (``t`` and ``z`` may be given; ``weighting`` is λ on the velocity residual, "none" = 1)."""
    n = x0.shape[0]
    if t is None:
        t = sample_times(process, n, generator, noise)
    if z is None:
        z = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=x0.device)
    z = couple(coupling, x0, z)
    t, z, var, xt = perturbed_batch(process, x0, None, noise, t, z)
    shape = (n,) + (1,) * (x0.ndim - 1)
    _, _, da, ds = (c.to(x0.dtype).reshape(shape).to(x0.device) for c in coefficients(process, t))
    v = velocity_of(model, process, xt, t.to(x0.dtype).to(x0.device))
    lam = weight(process, t, weighting, sigma_data, var=var).to(x0.dtype).to(x0.device)
    return lam * (v - (da * x0 + ds * z)).reshape(n, -1).pow(2).sum(1)


@register("loss", "ot_cfm")
def ot_cfm_loss(
    model,
    x0: torch.Tensor,
    process: ForwardProcess,
    generator: torch.Generator | None = None,
    *,
    noise: Spec | NoiseLaw = "uniform_t",
    weighting: Spec | Weighting = "none",
    sigma_data: float = 0.5,
    t: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    coupling: str = "minibatch_ot",
) -> torch.Tensor:
    """Conditional flow matching with the mini-batch optimal-transport coupling (OT-CFM)."""
    return cfm_loss(
        model,
        x0,
        process,
        generator,
        noise=noise,
        weighting=weighting,
        sigma_data=sigma_data,
        t=t,
        z=z,
        coupling=coupling,
    )


def dsm_weighting_of_cfm(lam: Weighting | None = None) -> Weighting:
    """The DSM weighting λ·g⁴/4 that makes ``dsm_loss`` equal ``cfm_loss`` with the velocity
    weighting λ (a weighting of the registered signature; None: λ = 1)."""

    def w(process, t, var, sigma_data):
        base = 0.25 * process.diffusion2(t) ** 2
        if lam is None:
            return base
        return torch.as_tensor(lam(process, t, var, sigma_data), dtype=base.dtype) * base

    return w


# --- the flow parameterisation of trained networks -----------------------------------------


def flow_conditioning(m: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """c = 4τ − 2 with τ = s/(m + s) = σ/(1 + σ) ∈ [0, 1] (τ = t on rectified flow): a
    function of σ alone, like ¼ ln σ, but finite at σ = ∞ (t = 1), where flow samplers start."""
    return 4.0 * s / (m + s) - 2.0


def _flow_output(network, x, m, s):
    return network(x, flow_conditioning(m, s).to(x.dtype))


def _flow_velocity(network, x, m, s, dm, ds):
    """The native velocity of a 'flow' network (m, s, ṁ, ṡ per example, ``[B]``):
    v = [(α̇ + σ̇) x + (ασ̇ − σα̇) u]/(α + σ)."""
    u = _flow_output(network, x, m, s)
    m, s, dm, ds = (per_example(c, x) for c in (m, s, dm, ds))
    return ((dm + ds) * x + (m * ds - s * dm) * u) / (m + s)


@register("parameterisation", "flow", predicts="denoiser", velocity=_flow_velocity)
def flow(network, x, m, v, sigma, sigma_data):
    """diffusers' flow-matching output u = F(x, c) = ε − x₀ (SD3, Flux; the rectified-flow
    velocity), c = 4s/(m + s) − 2; D = (x − s u)/(m + s)."""
    s = torch.sqrt(v)
    u = _flow_output(network, x, m, s)
    return (x - per_example(s, x) * u) / per_example(m + s, x)


__all__ = [
    "cfm",
    "cfm_loss",
    "dsm_weighting_of_cfm",
    "flow",
    "flow_conditioning",
    "logit_normal",
    "ot_cfm_loss",
]
