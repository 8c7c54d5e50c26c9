"""Theoretical error bounds of papers A (KL, W2 for VP), C (VE split) and E (manifold W1).

Every bound raises :class:`AssumptionFailed` when its hypotheses fail; :func:`all_bounds`
collects every applicable bound for one (target, process, N) into a JSON-ready dict, with
``{"refused": reason}`` where a bound does not apply. See docs/bounds.md.
"""

from __future__ import annotations

import math

import torch

from ..grids import TimeGrid
from ..processes import ForwardProcess, families, members
from ..registry import entries
from ..targets.base import NotAvailable
from .assumptions import AssumptionFailed, Estimate, check_nonneg, check_positive_int
from .paper_a import (
    KLBound,
    W2Bound,
    kl_bound,
    kl_to_stationary,
    relative_fisher,
    score_mse,
    w2_bound,
)
from .paper_c import (
    VETerms,
    ed_asymptotic_edm,
    ed_asymptotic_geometric,
    ed_discrete,
    ve_terms,
)
from .paper_e import W1ManifoldBound, log_amplification, manifold_w1_bound
from .tuning import TuneResult, tune, tune_edm_rho, tune_parametric

__all__ = [
    "AssumptionFailed",
    "Estimate",
    "KLBound",
    "TuneResult",
    "VETerms",
    "W1ManifoldBound",
    "W2Bound",
    "all_bounds",
    "ed_asymptotic_edm",
    "ed_asymptotic_geometric",
    "ed_discrete",
    "kl_bound",
    "kl_to_stationary",
    "log_amplification",
    "manifold_w1_bound",
    "relative_fisher",
    "score_mse",
    "tune",
    "tune_edm_rho",
    "tune_parametric",
    "ve_terms",
    "w2_bound",
]


def _refused(reason: str) -> dict:
    return {"refused": reason}


def _run(fn) -> dict:
    try:
        return fn()
    except AssumptionFailed as e:
        return _refused(e.reason)
    except NotAvailable as e:
        return _refused(str(e))


def _default_grid(process: ForwardProcess) -> str:
    """The grid spacing a process registered as its ``default_grid`` (geometric in σ if none)."""
    e = entries("process").get(getattr(process, "kind", None))
    return (e.meta.get("default_grid") if e is not None else None) or "geometric"


def _is_ou(process: ForwardProcess) -> bool:
    if "vp" not in families(process) or abs(process.sigma_inf - 1.0) > 1e-12:
        return False
    beta = process.schedule.beta(torch.linspace(0.0, process.T, 101, dtype=torch.float64))
    return bool(((beta - 2.0).abs() <= 1e-12).all())


def all_bounds(
    target,
    process: ForwardProcess,
    N: int,
    score_model=None,
    score_error: float = 0.0,
    grid: TimeGrid | None = None,
    eps: float | None = None,
    contraction: bool = True,
    n_mc: int = 500,
    generator=None,
) -> dict:
    """Every bound for sampling ``target`` with ``process`` in N steps, as a JSON-ready dict
    ``{"kl": {...}, "w2": {...}, "ve": {...}, "w1_manifold": {...}}``: each entry holds the
    term names with their values, or ``{"refused": reason}`` where the bound's assumptions do
    not hold (e.g. paper C's terms for a VP process).

    Args:
        target: The data law.
        process: The forward process.
        N: The number of steps.
        score_model: Measures the score error by Monte Carlo where the target's exact score is
            known (paper A's E2 and ε; paper C's e_k at each σ_k).
        score_error: ε, a uniform L² bound on the score error (paper A's ε, E2 = ε² B(T); paper
            C's e_k = ε²; paper E's err ≤ ε).
        grid: Paper C's σ-grid (default: the process's registered ``default_grid`` — EDM's
            ρ = 7 for the EDM process — and geometric in σ otherwise) down to the process's
            t_min. Paper A's bounds use N uniform steps from T to 0.
        eps: Paper E's early-stopping time (default: the process's t_min); paper E's bound uses
            N uniform steps on [eps, T].
        contraction: Paper A's E1 with the log-Sobolev contraction.
        n_mc: Monte Carlo draws per time for a measured score error.
        generator: Drives the Monte Carlo draws.

    Examples:
        >>> import scorelab
        >>> from scorelab import bounds
        >>> target = scorelab.build_target({"kind": "gaussian", "dim": 10, "mean": 1.0, "cov": 0.5})
        >>> linear = {"kind": "parametric", "a": 0.0}  # paper A's β_a at a = 0
        >>> process = scorelab.build_process({"kind": "vp", "schedule": linear})
        >>> every = bounds.all_bounds(target, process, 100)
        >>> round(every["kl"]["total"], 5), "refused" in every["ve"]
        (6.00026, True)
    """
    N = check_positive_int("N", N)
    eps_score = check_nonneg("score_error", score_error)
    out: dict = {}
    out["kl"] = _run(
        lambda: kl_bound(
            target, process, N, score_model, contraction, n_mc, generator, eps_score
        ).terms()
    )
    out["w2"] = _run(
        lambda: w2_bound(target, process, N, eps_score, score_model, n_mc, generator).terms()
    )
    if "ve" in families(process):

        def ve():
            g = grid or TimeGrid(_default_grid(process), steps=N)
            times = g.times(process)
            err = eps_score**2
            if score_model is not None:
                err = score_mse(target, process, times[:-1], score_model, n_mc, generator)
            return ve_terms(target, process, times, err).terms()

        out["ve"] = _run(ve)
    else:
        out["ve"] = _refused(
            "paper C's terms are for variance-exploding processes "
            f"({', '.join(members('ve'))}); got '{process.kind}'"
        )
    if _is_ou(process):
        e = process.t_min if eps is None else float(eps)

        def w1():
            if not e > 0:
                raise AssumptionFailed("w1_manifold", "needs early stopping at eps > 0")
            b = manifold_w1_bound(target, e, process.T, N, eps_score)
            return {k: (v if math.isfinite(v) else None) for k, v in b.terms().items()}

        out["w1_manifold"] = _run(w1)
    else:
        out["w1_manifold"] = _refused(
            "paper E's surrogate is for the OU process (VP with constant β = 2 and σ∞ = 1); "
            f"got a '{process.kind}' process with another schedule or σ∞"
        )
    return out
