"""The velocity face of a model: v(x, t) = E[α̇ X₀ + σ̇ ε | X_t = x], the probability-flow
velocity of x_t = α x₀ + σ ε, with exact conversions to and from the other faces
(docs/theory.md §14.2).

With (α, σ) = (m(t), s(t)) of the process and D = E[X₀ | x], ε̂ = E[ε | x], ∇log p_t = −ε̂/σ:

    v  = α̇ D + σ̇ ε̂ = f x − ½ g² ∇log p_t,
    D  = (σ̇ x − σ v)/(ασ̇ − σα̇),       ε̂ = (α v − α̇ x)/(ασ̇ − σα̇),

and ασ̇ − σα̇ = α² d(σ/α)/dt > 0. diffusers' flow-matching convention (SD3, Flux) has the model
predict u = ε̂ − D, which is the velocity of rectified flow (α = 1 − t, σ = t); for any process

    D = (x − σu)/(α + σ),  ε̂ = (x + αu)/(α + σ),  v = [(α̇ + σ̇) x + (ασ̇ − σα̇) u]/(α + σ).

On an interpolant (``scorelab.interpolants``) (α, σ, α̇, σ̇) are the pair's own closed forms;
on any other process α̇ = f m and σ̇ = (½g² + f s²)/s, so the velocity face exists everywhere
(it is the PF-ODE drift). ``from_velocity`` wraps a velocity model; ``exact_velocity`` gives
the exact field of any target with an exact score; ``native_velocity`` is what the t-space
ODE samplers and the PF-ODE likelihood ask first, so a velocity model is integrated without a
detour through the score (which is singular where α = 0, at t = 1 of rectified flow).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ._tensor import Time, as_tensor, per_example
from .errors import InvalidParameter
from .interfaces import Model, _per_example
from .interpolants import is_interpolant
from .processes import ForwardProcess
from .registry import entry

F64 = torch.float64
CONVENTIONS = ("velocity", "flow")


DIFFUSIONS = ("sigma", "g2", "constant")


def diffusion_coefficient(process: ForwardProcess, t: float, kind: str, eta: float) -> float:
    """w(t): η σ_t ("sigma"), η g²(t) ("g2") or η ("constant")."""
    if kind == "sigma":
        return eta * float(process.std(t))
    if kind == "g2":
        return eta * float(process.diffusion2(t))
    if kind == "constant":
        return float(eta)
    raise InvalidParameter(
        "diffusion", "is not a diffusion coefficient", kind, ", ".join(DIFFUSIONS)
    )


def coefficients(process: ForwardProcess, t: Time) -> tuple[torch.Tensor, ...]:
    """(α, σ, α̇, σ̇) at t in float64: an interpolant's closed forms, else α = m, σ = s,
    α̇ = f m, σ̇ = (½g² + f s²)/s (infinite at s = 0)."""
    t = as_tensor(t).to(F64)
    if is_interpolant(process):
        return process.coefficients(t)
    m, s = process.scale(t).to(F64), process.std(t).to(F64)
    f, g2 = process.drift_coef(t).to(F64), process.diffusion2(t).to(F64)
    return m, s, f * m, (0.5 * g2 + f * s**2) / s


def _shaped(process: ForwardProcess, x: torch.Tensor, t: Time) -> tuple[torch.Tensor, ...]:
    """(α, σ, α̇, σ̇) per example, shaped to broadcast against x and in x's dtype."""
    t = _per_example(t, x) if as_tensor(t).ndim else as_tensor(t).to(F64)
    return tuple(per_example(c, x) for c in coefficients(process, t))


# --- conversions (x, t, one face) → another face -------------------------------------------


def velocity_from_denoised(process, x, t, denoised):
    """v = α̇ D + σ̇ (x − α D)/σ (finite at α = 0; needs σ > 0)."""
    a, s, da, ds = _shaped(process, x, t)
    return da * denoised + ds * (x - a * denoised) / s


def velocity_from_eps(process, x, t, eps):
    """v = α̇ (x − σ ε̂)/α + σ̇ ε̂ (needs α > 0)."""
    a, s, da, ds = _shaped(process, x, t)
    return da * (x - s * eps) / a + ds * eps


def velocity_from_score(process, x, t, score):
    """v = f x − ½ g² ∇log p_t = α̇ D − σ̇ σ ∇log p_t with D = (x + σ² ∇log p_t)/α (needs
    α > 0)."""
    a, s, da, ds = _shaped(process, x, t)
    return da * (x + s**2 * score) / a - ds * s * score


def denoised_from_velocity(process, x, t, v):
    """D = (σ̇ x − σ v)/(ασ̇ − σα̇)."""
    a, s, da, ds = _shaped(process, x, t)
    return (ds * x - s * v) / (a * ds - s * da)


def eps_from_velocity(process, x, t, v):
    """ε̂ = (α v − α̇ x)/(ασ̇ − σα̇)."""
    a, s, da, ds = _shaped(process, x, t)
    return (a * v - da * x) / (a * ds - s * da)


def score_from_velocity(process, x, t, v):
    """∇log p_t = −ε̂/σ (needs σ > 0)."""
    _, s, _, _ = _shaped(process, x, t)
    return -eps_from_velocity(process, x, t, v) / s


def velocity_from_flow(process, x, t, u):
    """The velocity of a model in diffusers' flow convention u = ε̂ − D:
    v = [(α̇ + σ̇) x + (ασ̇ − σα̇) u]/(α + σ) (= u for rectified flow)."""
    a, s, da, ds = _shaped(process, x, t)
    return ((da + ds) * x + (a * ds - s * da) * u) / (a + s)


def flow_from_velocity(process, x, t, v):
    """diffusers' flow-convention output u = ε̂ − D of a velocity v (= v for rectified flow)."""
    return eps_from_velocity(process, x, t, v) - denoised_from_velocity(process, x, t, v)


# --- models ------------------------------------------------------------------------------------


class VelocityModel(Model):
    """A velocity model ``v(x, t)`` in the process's time with every other face
    (``scorelab.interfaces``): ``velocity`` is native, ``denoise``, ``eps`` and ``score``
    are the exact conversions above. ``convention="flow"``: the callable returns diffusers'
    u = ε̂ − D instead (the rectified-flow velocity)."""

    prediction = "velocity"

    def __init__(self, fn: Callable, process: ForwardProcess, convention: str = "velocity"):
        super().__init__(process)
        if convention not in CONVENTIONS:
            raise InvalidParameter(
                "convention", "is not a velocity convention", convention, ", ".join(CONVENTIONS)
            )
        self.fn, self.convention = fn, convention

    def velocity(self, x: torch.Tensor, t: Time) -> torch.Tensor:
        """v(x, t) = E[α̇ X₀ + σ̇ ε | X_t = x]."""
        out = self.fn(x, t)
        if self.convention == "flow":
            return velocity_from_flow(self.process, x, t, out)
        return out

    def denoise(self, x, t):
        return denoised_from_velocity(self.process, x, t, self.velocity(x, t))

    def eps(self, x, t):
        return eps_from_velocity(self.process, x, t, self.velocity(x, t))

    def score(self, x, t):
        return score_from_velocity(self.process, x, t, self.velocity(x, t))


def from_velocity(fn: Callable, process: ForwardProcess, convention: str = "velocity") -> Model:
    """A velocity model ``fn(x, t)`` under ``process`` as a ``Model`` (sampled without
    conversion by the t-space ODE samplers). ``convention="flow"`` for a model that returns
    diffusers' ε − x₀ (SD3, Flux: ``FlowMatchEulerDiscreteScheduler``'s model output)."""
    return VelocityModel(fn, process, convention)


class ExactVelocity(VelocityModel):
    """A target's exact velocity v = α̇ D − σ̇ σ ∇log p_t, with its exact denoiser and score
    as the other faces (finite at α = 0 and, for a target with a density, at σ = 0)."""

    def __init__(self, target, process: ForwardProcess):
        super().__init__(self._field, process)
        self.target = target

    def _field(self, x, t):
        _, s, da, ds = _shaped(self.process, x, t)
        D = self.target.denoise(x, t, self.process)
        return da * D - ds * s * self.target.score(x, t, self.process)

    def denoise(self, x, t):
        return self.target.denoise(x, t, self.process)

    def score(self, x, t):
        return self.target.score(x, t, self.process)

    def eps(self, x, t):
        _, s, _, _ = _shaped(self.process, x, t)
        return -s * self.score(x, t)


def exact_velocity(target, process: ForwardProcess) -> ExactVelocity:
    """The exact probability-flow velocity of ``target`` under ``process`` as a ``Model``."""
    if not getattr(target, "has_score", False):
        raise InvalidParameter(
            "target", "has no exact score, so no exact velocity", getattr(target, "kind", None)
        )
    return ExactVelocity(target, process)


# --- trained networks -----------------------------------------------------------------------


def _network_velocity(model, x: torch.Tensor, t: Time) -> torch.Tensor | None:
    """A trained network's native velocity, where its parameterisation has one."""
    kind = getattr(model, "kind", None)
    if not (hasattr(model, "network") and hasattr(model, "_predicts") and isinstance(kind, str)):
        return None
    fn = entry("parameterisation", kind).meta.get("velocity")
    if fn is None:
        return None
    p = next(model.network.parameters(), None)
    dtype = x.dtype if p is None else p.dtype
    xx = x.to(dtype)
    tt = _per_example(t, x)
    a, s, da, ds = (c.to(dtype) for c in coefficients(model.process, tt))
    return fn(model.network, xx, a, s, da, ds).to(x.dtype)


def native_velocity(model, process: ForwardProcess, x: torch.Tensor, t: Time):
    """The velocity from a model's native face, or None where only the score is native (the
    caller then uses f x − ½ g² s as before): a velocity model's own; a trained network whose
    parameterisation has a velocity ('flow'); on an interpolant, a denoiser-native model's
    v = α̇ D + σ̇ (x − αD)/σ, finite where α = 0."""
    if getattr(model, "prediction", None) == "velocity" and hasattr(model, "velocity"):
        return model.velocity(x, t)
    v = _network_velocity(model, x, t)
    if v is not None:
        return v
    if is_interpolant(process) and getattr(model, "prediction", None) == "denoiser":
        return velocity_from_denoised(process, x, t, model.denoise(x, t))
    return None


def has_native_velocity(model, process: ForwardProcess) -> bool:
    """Whether ``native_velocity`` answers for this model and process."""
    if getattr(model, "prediction", None) == "velocity" and hasattr(model, "velocity"):
        return True
    kind = getattr(model, "kind", None)
    if hasattr(model, "network") and hasattr(model, "_predicts") and isinstance(kind, str):
        if entry("parameterisation", kind).meta.get("velocity") is not None:
            return True
    return is_interpolant(process) and getattr(model, "prediction", None) == "denoiser"


def velocity_of(model, process: ForwardProcess, x: torch.Tensor, t: Time) -> torch.Tensor:
    """The model's velocity at (x, t): native where it can be, else f x − ½ g² s from its
    score (``model(x, t)``)."""
    v = native_velocity(model, process, x, t)
    if v is not None:
        return v
    return velocity_from_score(process, x, t, model(x, t))


__all__ = [
    "CONVENTIONS",
    "ExactVelocity",
    "VelocityModel",
    "coefficients",
    "denoised_from_velocity",
    "eps_from_velocity",
    "exact_velocity",
    "flow_from_velocity",
    "from_velocity",
    "has_native_velocity",
    "native_velocity",
    "score_from_velocity",
    "velocity_from_denoised",
    "velocity_from_eps",
    "velocity_from_flow",
    "velocity_from_score",
    "velocity_of",
]
