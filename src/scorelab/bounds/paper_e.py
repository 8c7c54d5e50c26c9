"""Paper E (De Bortoli, TMLR 2022): a computable surrogate W1 bound under the manifold
hypothesis (docs/theory.md §9.5), for the OU process m_t = e^{−t}, σ_t² = 1 − e^{−2t} (paper A's VP
with constant β = 2 and σ∞ = 1) and data supported on a compact set of diameter D.

Popoviciu bounds Cov[X₀ | X_t] ⪯ (D²/4) I, so the backward drift y + 2∇log p_t(y) is one-sided
Lipschitz with constant ℓ(t) = 1 − 2/σ_t² + m_t² D²/(2σ_t⁴). Synchronous coupling + Gronwall:

    W1 ≤ Λ(ε, T) [W1(p_T, N(0, I)) + ∫_ε^T 2 err(u) du + disc] + W1(π, p_ε),
    Λ(ε, T) = exp(∫_ε^T ℓ⁺(u) du)                  (≈ exp(D²/(8ε)) as ε → 0),
    W1(p_T, N(0, I)) ≤ m_T E‖X₀‖ + (1 − σ_T)√d,    W1(π, p_ε) ≤ (1 − m_ε) E‖X₀‖ + σ_ε √d,
    disc = Σ_k γ_k² ℓ⁺(u_k) (1 + E‖Y‖)              (our choice, see below),

with err(u) ≡ ``score_error`` (a uniform bound on E‖s_θ − ∇log p_u‖), so ∫ 2 err = 2ε_s (T − ε).
Choices: the grid is uniform on [ε, T] with ``steps`` steps of size γ; ℓ⁺ is taken at the
step's small-time end u_k (where it is largest); E‖Y‖ ≤ √(sup_t E‖X_t‖²) = √max(E‖X₀‖², d).
∫ℓ⁺ is integrated by adaptive quadrature in log t (scipy.integrate.quad).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
from scipy.integrate import quad

from ..errors import InvalidParameter
from .assumptions import (
    BoundTable,
    check_nonneg,
    check_positive_int,
    diameter,
    first_moment,
    second_moment,
)


def lipschitz_rate(t, D: float):
    """ℓ(t) = 1 − 2/σ_t² + m_t² D²/(2σ_t⁴) under OU (vectorised over t > 0)."""
    t = np.asarray(t, dtype=np.float64)
    s2 = -np.expm1(-2 * t)
    return 1 - 2 / s2 + np.exp(-2 * t) * D**2 / (2 * s2**2)


def log_amplification(eps: float, T: float, D: float) -> float:
    """log Λ(ε, T) = ∫_ε^T ℓ⁺(u) du (quadrature in log u; ℓ⁺'s kink is a breakpoint)."""

    def f(y):
        u = math.exp(y)
        return max(float(lipschitz_rate(u, D)), 0.0) * u

    lo, hi = math.log(eps), math.log(T)
    # ℓ decreases through 0 once; split the integral there so the kink is a breakpoint
    grid = np.exp(np.linspace(lo, hi, 2001))
    pos = lipschitz_rate(grid, D) > 0
    pts = [lo, hi]
    if pos.any() and not pos.all():
        pts = [lo, math.log(grid[np.argmin(pos)]), hi]
    total = 0.0
    for a, b in pairwise(pts):
        if b > a:
            total += quad(f, a, b, epsabs=0.0, epsrel=1e-11, limit=400)[0]
    return total


@dataclass(frozen=True)
class W1ManifoldBound(BoundTable):
    """The surrogate W1 bound for a compactly supported target (docs/theory.md §9.5, ours), for
    the OU process on [eps, T] with ``steps`` uniform steps.

    Attributes:
        amplification: Λ(ε, T) = exp ∫_ε^T ℓ⁺ (``inf`` once log Λ > 700).
        log_amplification: log Λ.
        initialization: Λ · (m_T E‖X₀‖ + (1 − σ_T)√d), the prior's term.
        score: Λ · 2 ε_s (T − ε), the score error's term.
        discretization: Λ · disc, the step-size term.
        early_stopping: (1 − m_ε) E‖X₀‖ + σ_ε √d.
        total: The sum of the four terms.
        diameter: The support's diameter D used.
        eps: The early-stopping time ε.
        T: The horizon.
        steps: The number of uniform steps.

    Shown in Jupyter and Rich as a table (``scorelab.display``); ``to_dict()`` and
    ``to_frame()`` give its rows.
    """

    TITLE = "paper E's manifold W1 bound"

    amplification: float
    log_amplification: float
    initialization: float
    score: float
    discretization: float
    early_stopping: float
    total: float
    diameter: float
    eps: float
    T: float
    steps: int

    def terms(self) -> dict:
        """The terms and total, by name (what ``all_bounds`` reports)."""
        keys = (
            "amplification",
            "log_amplification",
            "initialization",
            "score",
            "discretization",
            "early_stopping",
            "total",
        )
        return {k: getattr(self, k) for k in keys}


def manifold_w1_bound(
    target_or_diameter,
    eps: float,
    T: float,
    steps: int,
    score_error: float = 0.0,
    d: int | None = None,
    second_moment_value: float | None = None,
    first_moment_value: float | None = None,
) -> W1ManifoldBound:
    """The surrogate W1 bound of docs/theory.md §9.5.

    ``target_or_diameter`` is a compactly supported target (circle, sphere, empirical) or the
    diameter D; with a number, ``d`` and ``second_moment_value`` (E‖X₀‖²) are required and
    E‖X₀‖ defaults to √E‖X₀‖². ``score_error`` bounds E‖s_θ − ∇log p_u‖ for every u.
    """
    if isinstance(target_or_diameter, (int, float)):
        D = float(target_or_diameter)
        if not (math.isfinite(D) and D >= 0):
            raise InvalidParameter("diameter", "must be a finite number ≥ 0", target_or_diameter)
        if d is None or second_moment_value is None:
            raise InvalidParameter(
                "d", "and second_moment_value are required when a diameter is given", d
            )
        d = check_positive_int("d", d)
        M2 = check_nonneg("second_moment_value", second_moment_value)
    else:
        target = target_or_diameter
        D = diameter(target)
        d = target.dim if d is None else check_positive_int("d", d)
        M2 = second_moment(target).value if second_moment_value is None else second_moment_value
        if first_moment_value is None:
            first_moment_value = first_moment(target)
    M1 = math.sqrt(M2) if first_moment_value is None else float(first_moment_value)
    eps, T = float(eps), float(T)
    if not (0 < eps < T and math.isfinite(T)):
        raise InvalidParameter("eps", "must satisfy 0 < eps < T (early stopping)", (eps, T))
    steps = check_positive_int("steps", steps)
    err = check_nonneg("score_error", score_error)

    log_lam = log_amplification(eps, T, D)
    lam = math.exp(log_lam) if log_lam < 700 else math.inf
    m_T, s_T = math.exp(-T), math.sqrt(-math.expm1(-2 * T))
    m_e, s_e = math.exp(-eps), math.sqrt(-math.expm1(-2 * eps))
    init = m_T * M1 + (1 - s_T) * math.sqrt(d)
    early = (1 - m_e) * M1 + s_e * math.sqrt(d)
    score = 2 * err * (T - eps)
    u = np.linspace(eps, T, steps + 1)
    gamma = np.diff(u)
    ell = np.maximum(lipschitz_rate(u[:-1], D), 0.0)
    disc = float(np.sum(gamma**2 * ell)) * (1 + math.sqrt(max(M2, d)))
    inner = init + score + disc
    total = lam * inner + early if math.isfinite(lam) else math.inf
    return W1ManifoldBound(lam, log_lam, init, score, disc, early, total, D, eps, T, steps)
