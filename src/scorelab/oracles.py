"""Exact laws of samplers run on a Gaussian target with its exact score (docs/theory.md §5).

For N(μ, Σ) diagonalise Σ; each eigen-direction (variance λ, mean μ) evolves independently.
With the exact score s = −(x − m μ)/v, v = m²λ + s², every sampler step is an affine map plus
Gaussian noise, x' = M x + c + √q z, so the law stays Gaussian and its moments follow
mean' = M·mean + c, var' = M²·var + q. The maps below are written out by hand from each
algorithm's definition (not by running the samplers), in float64 numpy, vectorised over
directions: they are the independent truth the samplers are tested against, and a quick way
for users to get the exact error of a configuration. Each sampler registers its step map as
its ``oracle`` (or ``oracle=None``); ``step_map(kind, …)`` asks the registry for it.
"""

from __future__ import annotations

import inspect
import math
from itertools import pairwise

import numpy as np

from .errors import InvalidParameter
from .processes import ForwardProcess
from .registry import entries, entry


def _c(process: ForwardProcess, t: float):
    return (
        float(process.scale(t)),
        float(process.variance(t)),
        float(process.drift_coef(t)),
        float(process.diffusion2(t)),
        float(process.sigma(t)),
    )


# One step map per sampler, each registered with its sampler (``oracle=`` in samplers.py); all
# take the directions' variances λ and means μ as float64 arrays and return (M, c, q).


def euler_maruyama(process, t0: float, t1: float, lam, mu, eval_point: str = "left"):
    """Euler–Maruyama with the score at the step's start (``left``) or end (``right``)."""
    h = t0 - t1
    tau = t0 if eval_point == "left" else t1
    m, var, f, g2, _ = _c(process, tau)
    v = m**2 * lam + var
    return 1 - h * f - h * g2 / v, h * g2 * m * mu / v, np.full_like(lam, h * g2)


def exponential_integrator(process, t0: float, t1: float, lam, mu):
    """Paper A's exponential integrator: the linear part exact, the score frozen at t0."""
    s2 = process.sigma_inf**2
    delta = float(process.schedule.integral(t0) - process.schedule.integral(t1)) / (2 * s2)
    m, var, *_ = _c(process, t0)
    v = m**2 * lam + var
    j1, j2 = 2 * s2 * math.expm1(delta), s2 * math.expm1(2 * delta)
    return math.exp(delta) - j1 / v, j1 * m * mu / v, np.full_like(lam, j2)


def _flow(process, t: float, lam, mu):
    """(a, b) of the exact-score flow dx/dt = a x + b, a = f + ½ g²/v, b = −½ g² m μ / v."""
    m, var, f, g2, _ = _c(process, t)
    v = m**2 * lam + var
    return f + 0.5 * g2 / v, -0.5 * g2 * m * mu / v


def ode_euler(process, t0: float, t1: float, lam, mu):
    """Euler on the probability-flow ODE: x' = x − h F(x, t0)."""
    h = t0 - t1
    a0, b0 = _flow(process, t0, lam, mu)
    return 1 - h * a0, -h * b0, np.zeros_like(lam)


def heun(process, t0: float, t1: float, lam, mu):
    """Heun on the probability-flow ODE, its correction skipped on a step to t = 0."""
    if t1 <= 0:
        return ode_euler(process, t0, t1, lam, mu)
    h = t0 - t1
    a0, b0 = _flow(process, t0, lam, mu)
    a1, b1 = _flow(process, t1, lam, mu)
    # x' = x − h/2 [F(x, t0) + F(x − h F(x, t0), t1)]
    M = 1 - 0.5 * h * (a0 + a1 * (1 - h * a0))
    c = -0.5 * h * (b0 + b1 - h * a1 * b0)
    return M, c, np.zeros_like(lam)


def ddim(process, t0: float, t1: float, lam, mu, eta: float = 0.0):
    """DDIM in σ form; in x̂ = x/m: x̂' − μ = [(λ + σ0 √(σ1² − c²))/(λ + σ0²)](x̂ − μ) + c z."""
    m0, _, _, _, s0 = _c(process, t0)
    m1, _, _, _, s1 = _c(process, t1)
    c2 = eta**2 * s1**2 * (s0**2 - s1**2) / s0**2
    k = (lam + s0 * math.sqrt(max(s1**2 - c2, 0.0))) / (lam + s0**2)
    # x' = m1 (μ + k (x/m0 − μ)) + m1 c z
    return m1 * k / m0, m1 * mu * (1 - k), np.full_like(lam, m1**2 * c2)


def with_oracle() -> tuple[str, ...]:
    """The samplers registered with an exact Gaussian law (``oracle=`` a step map)."""
    return tuple(n for n, e in entries("sampler").items() if e.meta.get("oracle") is not None)


def step_map(
    kind: str, process: ForwardProcess, t0: float, t1: float, lam, mu, *, form="score", **params
):
    """(M, c, q) of one step of sampler ``kind`` from t0 to t1 < t0 for directions with
    variances λ and means μ: the step map the sampler registered as its ``oracle`` (``form``
    "score"), or as its ``velocity_oracle`` ("velocity": the same map written through the
    exact velocity, finite at t = 1 of an interpolant)."""
    key = {"score": "oracle", "velocity": "velocity_oracle"}[form]
    oracle = entry("sampler", kind).meta.get(key)
    if oracle is None:
        allowed = [n for n, e in entries("sampler").items() if e.meta.get(key) is not None]
        raise InvalidParameter("kind", f"has no Gaussian {key}", kind, ", ".join(allowed))
    accepted = [
        p.name for p in inspect.signature(oracle).parameters.values() if p.default is not p.empty
    ]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise InvalidParameter(
            unknown[0],
            f"is not a parameter of the '{kind}' oracle",
            params[unknown[0]],
            ", ".join(accepted) or "none",
        )
    lam, mu = np.asarray(lam, dtype=np.float64), np.asarray(mu, dtype=np.float64)
    return oracle(process, float(t0), float(t1), lam, mu, **params)


def sampler_moments(kind, process, times, lam, mu, mean0=0.0, var0=None, **params):
    """Mean and variance, per direction, of the output of sampler ``kind`` on the decreasing
    ``times``, started from N(mean0, var0) (default: the process's prior)."""
    lam = np.asarray(lam, dtype=np.float64)
    mean = np.broadcast_to(np.asarray(mean0, dtype=np.float64), lam.shape).copy()
    var = np.full_like(lam, process.prior_std**2 if var0 is None else var0)
    t = [float(u) for u in times]
    for t0, t1 in pairwise(t):
        M, c, q = step_map(kind, process, t0, t1, lam, mu, **params)
        mean, var = M * mean + c, M**2 * var + q
    return mean, var


def affine_flow(kind, process, times, lam, mu, **params):
    """(M, c) with x_out = M x_in + c for a deterministic sampler (ode_euler, heun, ddim η=0)."""
    lam = np.asarray(lam, dtype=np.float64)
    M_tot, c_tot = np.ones_like(lam), np.zeros_like(lam)
    t = [float(u) for u in times]
    for t0, t1 in pairwise(t):
        M, c, q = step_map(kind, process, t0, t1, lam, mu, **params)
        if np.any(q != 0):
            raise InvalidParameter("kind", "is not deterministic with these parameters", kind)
        M_tot, c_tot = M * M_tot, M * c_tot + c
    return M_tot, c_tot


def pf_ode_exact(process: ForwardProcess, t_from: float, t_to: float, lam, mu, x):
    """The exact probability-flow map: x_to − m μ = √(v_to/v_from)(x_from − m μ)
    (docs/theory.md §5.3)."""
    lam, mu = np.asarray(lam, dtype=np.float64), np.asarray(mu, dtype=np.float64)
    m0, var0, *_ = _c(process, t_from)
    m1, var1, *_ = _c(process, t_to)
    v0, v1 = m0**2 * lam + var0, m1**2 * lam + var1
    return m1 * mu + np.sqrt(v1 / v0) * (np.asarray(x) - m0 * mu)


def reverse_sde_exact(process, t_from, t_to, lam, mu, mean0=0.0, var0=None):
    """Mean and variance of the continuous reverse SDE with the exact score from N(mean0, var0)
    at t_from to t_to (docs/theory.md §5.3, by quadrature of ∫ g²/v)."""
    from scipy.integrate import quad  # scipy only where a quadrature is asked for

    lam = np.asarray(lam, dtype=np.float64)
    mu = np.broadcast_to(np.asarray(mu, dtype=np.float64), lam.shape)
    a0 = np.broadcast_to(np.asarray(mean0, dtype=np.float64), lam.shape)
    b0 = np.broadcast_to(
        np.asarray(process.prior_std**2 if var0 is None else var0, dtype=np.float64), lam.shape
    )
    m0, s0, *_ = _c(process, t_from)
    m1, s1, *_ = _c(process, t_to)
    means, variances = [], []
    for la, mu_i, a, b in zip(lam.ravel(), mu.ravel(), a0.ravel(), b0.ravel(), strict=True):

        def rate(t, la=la):
            m, var, _, g2, _ = _c(process, t)
            return g2 / (m**2 * la + var)

        integral, _ = quad(rate, t_to, t_from, epsrel=1e-12, limit=400)
        v0, v1 = m0**2 * la + s0, m1**2 * la + s1
        means.append(m1 * mu_i + (a - m0 * mu_i) * math.sqrt(v1 / v0) * math.exp(-0.5 * integral))
        variances.append(v1 + (b - v0) * (v1 / v0) * math.exp(-integral))
    return np.array(means).reshape(lam.shape), np.array(variances).reshape(lam.shape)


# --------------------------------------------------------------------------------------------
# the same maps in velocity form: v = a x + b exactly, finite at t = 1 of an interpolant
# --------------------------------------------------------------------------------------------


def _affine_velocity(process: ForwardProcess, t: float, lam, mu):
    """(a, b, V) with v = a x + b the exact velocity and V = α²λ + σ² the marginal variance."""
    from .velocity import coefficients

    a_, s_, da, ds = (float(c) for c in coefficients(process, t))
    V = a_**2 * lam + s_**2
    a = (da * a_ * lam + s_ * ds) / V
    return a, da * mu - a * a_ * mu, V


def velocity_ode_euler(process, t0, t1, lam, mu):
    """Euler on dx/dt = v: x' = x − h v(x, t0)."""
    a0, b0, _ = _affine_velocity(process, t0, lam, mu)
    h = t0 - t1
    return 1 - h * a0, -h * b0, np.zeros_like(lam)


def velocity_heun(process, t0, t1, lam, mu):
    """Heun on dx/dt = v (Euler on a step that ends at t = 0)."""
    if t1 <= 0:
        return velocity_ode_euler(process, t0, t1, lam, mu)
    a0, b0, _ = _affine_velocity(process, t0, lam, mu)
    a1, b1, _ = _affine_velocity(process, t1, lam, mu)
    h = t0 - t1
    M = 1 - 0.5 * h * (a0 + a1 * (1 - h * a0))
    return M, -0.5 * h * (b0 + b1 - h * a1 * b0), np.zeros_like(lam)


def velocity_interpolant_sde(process, t0, t1, lam, mu, diffusion="sigma", eta=1.0):
    """Euler–Maruyama on dx = [v − ½ w ∇log p_t] dt + √w dW̄ with w = η σ_t, η g² or η:
    x' = x − h[a x + b + ½ w (x − αμ)/V] + √(h w) z."""
    from .velocity import coefficients, diffusion_coefficient

    a0, b0, V0 = _affine_velocity(process, t0, lam, mu)
    h = t0 - t1
    w = diffusion_coefficient(process, t0, diffusion, eta)
    alpha0 = float(coefficients(process, t0)[0])
    M = 1 - h * (a0 + 0.5 * w / V0)
    c = -h * (b0 - 0.5 * w * alpha0 * mu / V0)
    return M, c, np.full_like(lam, h * w)
