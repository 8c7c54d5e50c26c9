"""A stochastic sampler for interpolants with a chosen diffusion coefficient, and the exact laws
of the flow samplers on a Gaussian written in velocity form, finite at t = 1 (docs/theory.md
§14.6).

For any w(t) ≥ 0 the reverse-time SDE

    dx = [v(x, t) − ½ w(t) ∇log p_t(x)] dt + √w(t) dW̄        (t decreasing)

has the marginals p_t of the interpolant (Albergo, Boffi & Vanden-Eijnden; SiT): w = 0 is the
probability-flow ODE, w = g² the reverse SDE of the equivalent linear SDE (Euler–Maruyama's),
and w = η σ_t (SiT's choice) stays finite at t = 1, where g² of rectified flow is not.
``interpolant_sde`` is Euler–Maruyama on it, the velocity and the score read from one model
call (whichever face is native, ``scorelab.velocity``).

Exact laws. On N(μ, Λ) (per eigen-direction λ, mean μ) the exact velocity is affine,
v = a x + b with a = (α̇αλ + σσ̇)/(α²λ + σ²), b = α̇μ − aαμ, finite where α = 0; the score is
−(x − αμ)/(α²λ + σ²). So each step is x' = M x + c + √q z, and ``step_map`` gives (M, c, q) for
ode_euler, heun and interpolant_sde in this form — equal to ``oracles.step_map`` (which uses
f and g²) wherever both are finite, and defined at t = 1 too.
"""

from __future__ import annotations

import math
from itertools import pairwise
from typing import Literal

import numpy as np

from . import oracles
from .errors import InvalidParameter
from .noise import normal_like
from .processes import ForwardProcess
from .registry import register
from .samplers import _Counted, _run_steps
from .velocity import (
    DIFFUSIONS,
    denoised_from_velocity,
    diffusion_coefficient,
    score_from_velocity,
    velocity_from_score,
)


def _velocity_and_score(counted: _Counted, process, x, t):
    """v and ∇log p_t at (x, t) from one model call, from whichever face is native."""
    v = counted.velocity(process, x, t)
    if v is None:
        s = counted(x, t)
        return velocity_from_score(process, x, t, s), s
    return v, score_from_velocity(process, x, t, v)


@register(
    "sampler", "interpolant_sde", oracle=None, velocity_oracle=oracles.velocity_interpolant_sde
)
def interpolant_sde(
    score,
    process,
    grid,
    x,
    *,
    noise=None,
    callback=None,
    diffusion: Literal["sigma", "g2", "constant"] = "sigma",
    eta: float = 1.0,
):
    """Euler–Maruyama on the reverse-time SDE dx = [v − ½ w ∇log p_t] dt + √w dW̄ with the
    chosen diffusion w(t) = η σ_t, η g²(t) or η (docs/theory.md §14.6): the marginals are the
    interpolant's for every w, and w = η σ_t is finite at t = 1. Grid: N steps through N + 1
    levels (1 NFE each), plus Tweedie's step with ``final="denoise"`` (``scorelab.grids``)."""
    if diffusion not in DIFFUSIONS:
        raise InvalidParameter(
            "diffusion", "is not a diffusion coefficient", diffusion, ", ".join(DIFFUSIONS)
        )
    if not (math.isfinite(eta) and eta >= 0):
        raise InvalidParameter("eta", "must be a finite number ≥ 0", eta)

    def step(counted, process, x, t0, t1, noise, memory, k, n):
        h = t0 - t1
        w = diffusion_coefficient(process, t0, diffusion, eta)
        v, s = _velocity_and_score(counted, process, x, t0)
        out = x - h * (v - 0.5 * w * s)
        if w > 0:
            out = out + math.sqrt(h * w) * normal_like(noise, x)
        return out, lambda: denoised_from_velocity(process, x, t0, v)

    return _run_steps(step, score, process, grid, x, noise, callback)


# --------------------------------------------------------------------------------------------
# exact laws on a Gaussian, in velocity form
# --------------------------------------------------------------------------------------------


def step_map(kind: str, process: ForwardProcess, t0: float, t1: float, lam, mu, **params):
    """(M, c, q) of one step from t0 to t1 < t0 of sampler ``kind`` with the exact velocity of
    directions with variances λ and means μ: the map it registered as its ``velocity_oracle``
    (``oracles``; finite at t = 1 of an interpolant, where the score-form maps are not)."""
    return oracles.step_map(kind, process, t0, t1, lam, mu, form="velocity", **params)


def sampler_moments(kind, process, times, lam, mu, mean0=0.0, var0=None, **params):
    """Mean and variance per direction of the output of ``kind`` on the decreasing ``times``
    (a step to t = 0 included, as the samplers take it) started from N(mean0, var0) (default:
    the process's prior)."""
    lam = np.asarray(lam, dtype=np.float64)
    mean = np.broadcast_to(np.asarray(mean0, dtype=np.float64), lam.shape).copy()
    var = np.full_like(lam, process.prior_std**2 if var0 is None else var0)
    for t0, t1 in pairwise(float(u) for u in times):
        M, c, q = step_map(kind, process, t0, t1, lam, mu, **params)
        mean, var = M * mean + c, M**2 * var + q
    return mean, var


__all__ = [
    "DIFFUSIONS",
    "diffusion_coefficient",
    "interpolant_sde",
    "sampler_moments",
    "step_map",
]
