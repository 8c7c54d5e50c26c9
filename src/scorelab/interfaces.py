"""Model interfaces: a model given as a score, a denoiser or an ε-predictor, in all three faces.

Three conventions are in use (docs/theory.md §3.1 and §6.5; docs/interop.md):

* **score** ``s(x, t) = ∇log p_t(x)`` in the process's time t (scorelab's samplers, score_sde);
* **denoiser** ``D(x̂, σ) = E[X₀ | X̂ = x̂]`` in EDM's scaled variable x̂ = x/m at the noise level
  σ (k-diffusion's model contract; σ is passed as a ``[B]`` tensor, as k-diffusion does);
* **ε-predictor** ``ε(x, t) = E[Z | X_t = x]`` with x = m x₀ + s z (DDPM, diffusers).

They are tied by Tweedie's formula, with m = m(t), s = s(t), σ = s/m:

    D = (x + s² s_θ)/m,   s_θ = (m D − x)/s² = −ε/s,   ε = (x − m D)/s.

A ``Model`` wraps one of them under a process and offers all three: it is called like a score
model (``model(x, t)``, so every sampler and every metric accepts it) and has ``score``,
``denoise`` (E[X₀ | X_t = x] in process time), ``denoiser`` (k-diffusion's D(x̂, σ)) and
``eps``. The σ-space samplers (DDIM, DPM-Solver++(2M), EDM's stochastic sampler) call a
model's own denoiser directly when it has one (``prediction == "denoiser"``): no conversion
D → score → D, which loses digits at small σ. Trained scorelab networks
(``parameterisations.ScoreNetwork``) carry the same faces.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ._tensor import Time, as_tensor, per_example
from .errors import InvalidParameter
from .processes import ForwardProcess

PREDICTIONS = ("score", "denoiser", "eps")


def _per_example(v: Time, x: torch.Tensor) -> torch.Tensor:
    """A scalar or ``[B]`` time/noise level as a ``[B]`` float64 tensor."""
    v = as_tensor(v).to(device=x.device)
    if v.ndim == 0:
        v = v.expand(x.shape[0])
    if v.ndim != 1 or v.shape[0] != x.shape[0]:
        raise InvalidParameter(
            "t", f"must be a scalar or have shape [{x.shape[0]}]", tuple(v.shape)
        )
    return v.to(torch.float64)


class Model:
    """A model under ``process`` in all three conventions (see the module's docstring).

    Subclasses implement the face they are given (``prediction``); the others follow by
    Tweedie's formula. Coefficients are computed per example in float64 and cast to x's dtype.
    """

    prediction: str = "score"

    def __init__(self, process: ForwardProcess):
        if not isinstance(process, ForwardProcess):
            raise InvalidParameter("process", "must be a ForwardProcess", type(process).__name__)
        self.process = process

    # --- coefficients ------------------------------------------------------------------------
    def _mv(self, x: torch.Tensor, t: Time):
        """m, s², s at t, shaped to broadcast against x."""
        t = _per_example(t, x)
        m, v = self.process.scale(t), self.process.variance(t)
        return per_example(m, x), per_example(v, x), per_example(torch.sqrt(v), x)

    def _t_of_sigma(self, xh: torch.Tensor, sigma: Time) -> torch.Tensor:
        return self.process.t_of_sigma(_per_example(sigma, xh))

    # --- the three faces ---------------------------------------------------------------------
    def __call__(self, x: torch.Tensor, t: Time) -> torch.Tensor:
        return self.score(x, t)

    def score(self, x: torch.Tensor, t: Time) -> torch.Tensor:
        """∇ₓ log p_t(x) as the model estimates it."""
        m, v, _ = self._mv(x, t)
        return (m * self.denoise(x, t) - x) / v

    def denoise(self, x: torch.Tensor, t: Time) -> torch.Tensor:
        """E[X₀ | X_t = x] in process time."""
        m, v, _ = self._mv(x, t)
        return (x + v * self.score(x, t)) / m

    def eps(self, x: torch.Tensor, t: Time) -> torch.Tensor:
        """E[Z | X_t = x], the noise x = m x₀ + s z carries."""
        _, _, s = self._mv(x, t)
        return -s * self.score(x, t)

    def denoiser(self, xh: torch.Tensor, sigma: Time) -> torch.Tensor:
        """k-diffusion's D(x̂, σ): E[X₀ | X̂ = x̂] at the noise level σ, x̂ = x/m."""
        t = self._t_of_sigma(xh, sigma)
        m = per_example(self.process.scale(t), xh)
        return self.denoise(m * xh, t)


class ScoreFunction(Model):
    """A score model ``score(x, t)`` (any callable) with the other faces."""

    prediction = "score"

    def __init__(self, fn: Callable, process: ForwardProcess):
        super().__init__(process)
        self.fn = fn

    def score(self, x, t):
        return self.fn(x, t)


class Denoiser(Model):
    """A denoiser ``D(x̂, σ)`` in k-diffusion's convention (x̂ = x/m, σ a ``[B]`` tensor)."""

    prediction = "denoiser"

    def __init__(self, fn: Callable, process: ForwardProcess):
        super().__init__(process)
        self.fn = fn

    def denoiser(self, xh, sigma):
        return self.fn(xh, _per_example(sigma, xh).to(xh.dtype))

    def denoise(self, x, t):
        t = _per_example(t, x)
        m = per_example(self.process.scale(t), x)
        return self.denoiser(x / m, self.process.sigma(t))


class NoisePredictor(Model):
    """An ε-predictor ``ε(x, t)`` in the process's time (x = m x₀ + s z)."""

    prediction = "eps"

    def __init__(self, fn: Callable, process: ForwardProcess):
        super().__init__(process)
        self.fn = fn

    def eps(self, x, t):
        return self.fn(x, t)

    def score(self, x, t):
        _, _, s = self._mv(x, t)
        return -self.eps(x, t) / s

    def denoise(self, x, t):
        m, _, s = self._mv(x, t)
        return (x - s * self.eps(x, t)) / m


class _Network(Model):
    """A trained ``ScoreNetwork``, whose parameterisation says which face is native."""

    def __init__(self, net, process: ForwardProcess):
        super().__init__(process)
        self.net = net
        self.prediction = net.prediction

    def score(self, x, t):
        return self.net(x, t)

    def denoise(self, x, t):
        return self.net.denoise(x, t)


def from_score(score: Callable, process: ForwardProcess) -> Model:
    """A score model ``score(x, t)`` under ``process`` as a ``Model``."""
    return ScoreFunction(score, process)


def from_denoiser(denoiser: Callable, process: ForwardProcess | None = None) -> Model:
    """A denoiser ``D(x̂, σ)`` (k-diffusion's convention) as a ``Model``. Without a process,
    EDM's (σ(t) = t, m = 1, σ ≤ 80), which is the process k-diffusion's samplers assume; pass
    e.g. ``EDM(EDMSigma(sigma_max=...))`` for larger σ's, or the VP/DDPM process the model was
    trained under (x̂ = x/m then)."""
    if process is None:
        from .processes import EDM

        process = EDM()
    return Denoiser(denoiser, process)


def from_eps(eps: Callable, process: ForwardProcess) -> Model:
    """An ε-predictor ``ε(x, t)`` in ``process``'s time as a ``Model`` (for diffusers' models,
    whose time is a timestep, see ``scorelab.interop.from_diffusers``)."""
    return NoisePredictor(eps, process)


def as_model(model, process: ForwardProcess) -> Model:
    """Any model as a ``Model``: a ``Model`` as it is, a trained ``ScoreNetwork`` with its
    native face, any other callable as a score model."""
    if isinstance(model, Model):
        return model
    if hasattr(model, "prediction") and hasattr(model, "denoise"):
        return _Network(model, process)
    if not callable(model):
        raise InvalidParameter("model", "must be callable as score(x, t)", type(model).__name__)
    return ScoreFunction(model, process)


__all__ = [
    "PREDICTIONS",
    "Denoiser",
    "Model",
    "NoisePredictor",
    "ScoreFunction",
    "as_model",
    "from_denoiser",
    "from_eps",
    "from_score",
]
