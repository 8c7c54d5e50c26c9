"""Parameterisations: wrappers that turn a network's output into a score model ``score(x, t)``.

A network maps (input, c_noise) to a tensor shaped like x and never sees the process; the
wrapper supplies the conditioning and converts its output. With m = m(t), s = s(t), σ = s/m:

* ``score``: s_θ = F(x, c)                                   (the raw output is the score)
* ``eps``:   ε̂ = F(x, c),  s_θ = −ε̂ / s                       (noise prediction)
* ``x0``:    x̂₀ = F(x, c), s_θ = (m x̂₀ − x)/s²                (data prediction)
* ``edm``:   in x̂ = x/m, D = c_skip x̂ + c_out F(c_in x̂, c_noise) with EDM's
  c_skip = σ_d²/(σ² + σ_d²), c_out = σσ_d/√(σ² + σ_d²), c_in = 1/√(σ² + σ_d²), c_noise = ¼ ln σ;
  s_θ = (m D − x)/s².

Every parameterisation conditions on c = ¼ ln σ(t) (clamped to σ ∈ [1e-8, 1e8]), so a network
trained under one process sees the same conditioning scale under another.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ._tensor import Time, as_tensor, per_example
from .errors import InvalidParameter
from .processes import ForwardProcess
from .registry import entry, names, register


def edm_coefficients(sigma: torch.Tensor, sigma_data: float):
    """EDM's preconditioning (c_skip, c_out, c_in, c_noise) at noise level σ."""
    sd2 = sigma_data**2
    c_skip = sd2 / (sigma**2 + sd2)
    c_out = sigma * sigma_data / torch.sqrt(sigma**2 + sd2)
    c_in = 1 / torch.sqrt(sigma**2 + sd2)
    c_noise = 0.25 * torch.log(sigma)
    return c_skip, c_out, c_in, c_noise


def estimate_sigma_data(data: torch.Tensor) -> float:
    """σ_data: the standard deviation of the training data over all coordinates."""
    return float(data.to(torch.float64).std())


# Each parameterisation maps the network's output to the score (``predicts="score"``) or to
# the denoiser E[X₀ | X_t] (``predicts="denoiser"``), from per-example m, s², σ = s/m.


def _c(sigma: torch.Tensor) -> torch.Tensor:
    return 0.25 * torch.log(sigma)


@register("parameterisation", "score", predicts="score")
def score(network, x, m, v, sigma, sigma_data):
    """The raw output is the score: s_θ = F(x, c)."""
    return network(x, _c(sigma))


@register("parameterisation", "eps", predicts="score")
def eps(network, x, m, v, sigma, sigma_data):
    """Noise prediction: ε̂ = F(x, c), s_θ = −ε̂/s."""
    return -network(x, _c(sigma)) / per_example(torch.sqrt(v), x)


@register("parameterisation", "x0", predicts="score")
def x0(network, x, m, v, sigma, sigma_data):
    """Data prediction: x̂₀ = F(x, c), s_θ = (m x̂₀ − x)/s²."""
    return (per_example(m, x) * network(x, _c(sigma)) - x) / per_example(v, x)


@register("parameterisation", "edm", predicts="denoiser")
def edm(network, x, m, v, sigma, sigma_data):
    """EDM's preconditioned denoiser in x̂ = x/m: D = c_skip x̂ + c_out F(c_in x̂, c_noise)."""
    c_skip, c_out, c_in, c_noise = edm_coefficients(sigma, sigma_data)
    xh = x / per_example(m, x)
    out = network(per_example(c_in, x) * xh, c_noise)
    return per_example(c_skip, x) * xh + per_example(c_out, x) * out


class ScoreNetwork(nn.Module):
    """A network presented as a score model ``score(x, t)`` under ``process``."""

    def __init__(
        self,
        network: nn.Module,
        process: ForwardProcess,
        kind: str = "edm",
        sigma_data: float = 0.5,
    ):
        super().__init__()
        if kind not in names("parameterisation"):
            raise InvalidParameter(
                "parameterisation", "is not known", kind, ", ".join(names("parameterisation"))
            )
        if not (sigma_data > 0 and math.isfinite(sigma_data)):
            raise InvalidParameter("sigma_data", "must be > 0", sigma_data)
        self.network, self.process, self.kind = network, process, kind
        e = entry("parameterisation", kind)
        self._output, self._predicts = e.obj, e.meta.get("predicts", "score")
        self.sigma_data = float(sigma_data)

    def _coefficients(self, x: torch.Tensor, t: Time):
        t = as_tensor(t, like=x)
        if t.ndim == 0:
            t = t.expand(x.shape[0])
        m64, v64 = self.process.scale(t), self.process.variance(t)
        m, v = m64.to(x.dtype), v64.to(x.dtype)
        # σ = s/m from the two coefficients already at hand (one schedule integral fewer)
        sigma = (torch.sqrt(v64) / m64).to(x.dtype).clamp(1e-8, 1e8)
        return m, v, sigma

    @property
    def prediction(self) -> str:
        """The face the network gives natively (``scorelab.interfaces``): "denoiser" for EDM's
        preconditioning, "eps" for noise prediction, else "score"."""
        if self._predicts == "denoiser":
            return "denoiser"
        return "eps" if self.kind == "eps" else "score"

    def eps(self, x: torch.Tensor, t: Time) -> torch.Tensor:
        """E[Z | X_t = x] as the model estimates it: −s(t)·score (``scorelab.interfaces``)."""
        v = self.process.variance(as_tensor(t, like=x).to(torch.float64))
        return -per_example(torch.sqrt(v), x) * self(x, t)

    def denoiser(self, xh: torch.Tensor, sigma) -> torch.Tensor:
        """k-diffusion's D(x̂, σ) (x̂ = x/m, σ a number or ``[B]``): the denoiser at the time
        t(σ) of this network's process (``scorelab.interfaces``)."""
        t = self.process.t_of_sigma(as_tensor(sigma).to(torch.float64))
        m = per_example(self.process.scale(t), xh)
        return self.denoise(m * xh, t)

    def _param_dtype(self, x: torch.Tensor) -> torch.dtype:
        p = next(self.network.parameters(), None)
        return x.dtype if p is None else p.dtype

    def denoise(self, x: torch.Tensor, t: Time) -> torch.Tensor:
        """E[X₀ | X_t = x] as the model estimates it (computed in the network's dtype and
        returned in x's, so a float32 network can be compared with float64 oracles)."""
        dtype = self._param_dtype(x)
        if x.dtype != dtype:
            return self.denoise(x.to(dtype), as_tensor(t, like=x).to(dtype)).to(x.dtype)
        m, v, sigma = self._coefficients(x, t)
        out = self._output(self.network, x, m, v, sigma, self.sigma_data)
        if self._predicts == "denoiser":
            return out
        return (x + per_example(v, x) * out) / per_example(m, x)

    def forward(self, x: torch.Tensor, t: Time) -> torch.Tensor:
        """The score ∇ₓ log p_t(x) as the model estimates it (in x's dtype, see ``denoise``)."""
        dtype = self._param_dtype(x)
        if x.dtype != dtype:
            return self.forward(x.to(dtype), as_tensor(t, like=x).to(dtype)).to(x.dtype)
        m, v, sigma = self._coefficients(x, t)
        out = self._output(self.network, x, m, v, sigma, self.sigma_data)
        if self._predicts == "score":
            return out
        return (per_example(m, x) * out - x) / per_example(v, x)
