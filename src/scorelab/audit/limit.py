"""The limit error of a run on a Gaussian target, and what explains it.

What does not vanish as N grows is the exact transport of the run's starting law from its
first noise level σ_a to its last σ_b: the probability-flow ODE maps x̂ − μ to
R (x̂ − μ) with R = U diag(√((λ_j + σ_b²)/(λ_j + σ_a²))) Uᵀ for Σ = U diag(λ) Uᵀ
(docs/theory.md, "Reading a scheduler's exact law"), so a start N(0, s² I) that is not the
forward marginal N(μ, Σ + σ_a² I) (prior mismatch, terminal SNR) and a last level σ_b > 0
each leave an error that the closed form gives exactly. A deterministic scheduler whose law
at the largest N is farther from this exact limit than its discretisation error has a limit
error of its own (a wrong last step, say).
"""

from __future__ import annotations

import math

import torch

from .law import gaussian_error, law_distance
from .levels import LevelRun

F64 = torch.float64


# a run ends at σ = 0 when its last level is below this (float32 round-off of the state)
END_ZERO = 1e-4


def last_positive_level(run: LevelRun) -> float | None:
    """The last noise level above ``END_ZERO`` that the run's state reaches."""
    levels = [run.start_sigma] + [c.after for c in run.calls if c.complete]
    positive = [v for v in levels if v > END_ZERO]
    return positive[-1] if positive else None


def fixed_last_step(runs: list[LevelRun]) -> float | None:
    """σ_f when the last step, σ_f → 0, keeps its size as N grows (the two largest N end
    from the same level): it is then part of the limit, not of the discretisation error."""
    if len(runs) < 2 or runs[-1].end_sigma > END_ZERO:
        return None
    a, b = last_positive_level(runs[-2]), last_positive_level(runs[-1])
    if a is None or b is None or abs(a - b) > 1e-6 * a or not math.isfinite(b):
        return None
    return b


def exact_limit(run: LevelRun, target, start_std: float, fixed_last: float | None = None):
    """The law (mean, covariance, in the scheduler's state) of the exact ODE transport of the
    start N(0, start_std² I) from the run's first level to its last; with ``fixed_last`` =
    σ_f, to σ_f and then one denoising step x̂ ↦ D(x̂, σ_f) (every first-order step to σ = 0
    is one)."""
    mu, cov = target.gaussian_moments()
    lam, U = torch.linalg.eigh(cov)
    a_start, sigma_a = run.start[0], run.start_sigma
    sigma_b, a_end = run.end_sigma, run.end_scale
    if fixed_last is not None:
        sigma_b = fixed_last
    if a_start == 0 or not math.isfinite(sigma_a):  # a start at pure noise is exact
        mean, out = mu, cov + sigma_b**2 * torch.eye(len(mu), dtype=F64)
    else:
        ratio = torch.sqrt((lam + sigma_b**2) / (lam + sigma_a**2))
        R = U @ torch.diag(ratio) @ U.T
        m0 = torch.zeros_like(mu)
        s0 = (start_std / a_start) ** 2 * torch.eye(len(mu), dtype=F64)
        mean, out = mu + R @ (m0 - mu), R @ s0 @ R.T
    if fixed_last is not None:  # D(x̂, σ_f) = μ + Σ(Σ + σ_f²)⁻¹(x̂ − μ)
        G = U @ torch.diag(lam / (lam + fixed_last**2)) @ U.T
        mean, out = mu + G @ (mean - mu), G @ out @ G.T
    return a_end * mean, a_end**2 * out


def start_mismatch(run: LevelRun, target, start_std: float) -> float:
    """W2 between the start N(0, s² I) and the forward marginal at the first level (state)."""
    mu, cov = target.gaussian_moments()
    a, b = run.start
    d = len(mu)
    marginal = (a * mu, a**2 * cov + b**2 * torch.eye(d, dtype=F64))
    return law_distance(
        (torch.zeros(d, dtype=F64), start_std**2 * torch.eye(d, dtype=F64)), marginal
    )


def limit_report(limit_law, reference, runs: list[LevelRun], target, start_std) -> dict:
    """The limit error (KL, W2 of the extrapolated law) and its explanation: the start's
    mismatch, the final σ, a fixed last step, and the W2 of the exact limit they give."""
    run = runs[-1] if runs else None
    out = {"kl": None, "w2": None}
    if limit_law is not None:
        kl, w2 = gaussian_error(reference, *limit_law)
        out = {"kl": kl if math.isfinite(kl) else None, "w2": w2}
    if run is not None and run.calls:
        out["final_sigma"] = run.end_sigma
        out["start_sigma"] = run.start_sigma
        out["start_mismatch_w2"] = start_mismatch(run, target, start_std)
        fixed = fixed_last_step(runs)
        out["fixed_last_step_sigma"] = fixed
        exact = exact_limit(run, target, start_std, fixed)
        out["exact_limit_w2"] = gaussian_error(reference, *exact)[1]
    return out


__all__ = [
    "END_ZERO",
    "exact_limit",
    "fixed_last_step",
    "last_positive_level",
    "limit_report",
    "start_mismatch",
]
