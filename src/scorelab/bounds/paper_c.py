"""Paper C (Wang, He, Tao, NeurIPS 2024): the VE sampling error split E_I + E_D + E_S.

Reverse VE SDE with the score frozen on each step, from N(0, σ_max² I) at σ_0 = σ_max down to
σ_N = σ_min > 0 (docs/theory.md §9.3), σ_k = σ(t_k) on the sampler's decreasing grid:

    E_I = KL(p_{σ_max} ‖ N(0, σ_max² I))      exact for a Gaussian target: KL(N(μ, Σ + σ_max² I)
                                               ‖ N(0, σ_max² I)); otherwise the convexity bound
                                               E‖X₀‖²/(2σ_max²) ≥ E_I (KL is jointly convex)
    E_D = d Σ_k (σ_k²/σ_{k+1}² − 1)²            (log form: d Σ_k (ln σ_k² − ln σ_{k+1}²)²)
    E_S = Σ_k (σ_k² − σ_{k+1}²) · e_k,          e_k = E‖s_θ − ∇log p‖² at σ_k.

These are the paper's *proxies* (structure [M], proxies [D]); total = E_I + E_D + E_S with E_D in
the ratio form. Asymptotically in N: geometric grid E_D ≈ 4d ln²(σ_max/σ_min)/N; EDM ρ-grid
E_D ≈ 4dρ²(q − 1)²/(qN), q = (σ_max/σ_min)^{1/ρ}.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import InvalidParameter
from ..metrics.gaussian import kl_gaussians
from ..processes import families, members
from .assumptions import (
    F64,
    AssumptionFailed,
    BoundTable,
    gaussian_params,
    second_moment,
)


def _check_grid_args(d, smin, smax, N) -> None:
    if int(d) != d or int(d) < 1:
        raise InvalidParameter("d", "must be an integer ≥ 1", d)
    if not (0 < smin < smax and math.isfinite(smax)):
        raise InvalidParameter("sigma_min", "must satisfy 0 < sigma_min < sigma_max", (smin, smax))
    if int(N) != N or int(N) < 1:
        raise InvalidParameter("N", "must be an integer ≥ 1", N)


def ed_asymptotic_geometric(d: int, smin: float, smax: float, N: int) -> float:
    """4 d ln²(σ_max/σ_min)/N, the large-N E_D of a geometric (Song VE) grid."""
    _check_grid_args(d, smin, smax, N)
    return 4 * d * math.log(smax / smin) ** 2 / N


def ed_asymptotic_edm(d: int, smin: float, smax: float, N: int, rho: float) -> float:
    """4 d ρ² (q − 1)²/(q N) with q = (σ_max/σ_min)^{1/ρ}, the large-N E_D of EDM's ρ-grid."""
    _check_grid_args(d, smin, smax, N)
    if not (rho > 0 and math.isfinite(rho)):
        raise InvalidParameter("rho", "must be a finite number > 0", rho)
    q = (smax / smin) ** (1 / rho)
    return 4 * d * rho**2 * (q - 1) ** 2 / (q * N)


def ed_discrete(sigmas, d: int, log_form: bool = False) -> float:
    """d Σ_k (σ_k²/σ_{k+1}² − 1)² (or d Σ_k (ln σ_k² − ln σ_{k+1}²)²) on decreasing σ_k > 0."""
    s = np.asarray(sigmas, dtype=np.float64)
    if s.ndim != 1 or s.shape[0] < 2:
        raise InvalidParameter("sigmas", "must be a 1-D grid of at least 2 noise levels", s.shape)
    if not np.all(np.isfinite(s)) or np.any(s[1:] >= s[:-1]):
        raise InvalidParameter("sigmas", "must be finite and strictly decreasing", s.tolist())
    if s[-1] <= 0:
        raise AssumptionFailed(
            "ve", "the grid ends at σ = 0: E_D needs early stopping at σ_min > 0"
        )
    if log_form:
        return float(d * np.sum((2 * np.log(s[:-1]) - 2 * np.log(s[1:])) ** 2))
    return float(d * np.sum((s[:-1] ** 2 / s[1:] ** 2 - 1) ** 2))


@dataclass(frozen=True)
class VETerms(BoundTable):
    """Paper C's error split of a VE sampler (docs/theory.md §9.3), in KL.

    Attributes:
        initialization: E_I = KL(p_{σ_max} ‖ N(0, σ_max² I)): exact for a Gaussian target, the
            bound E‖X₀‖²/(2σ_max²) otherwise (``initialization_method`` says which).
        discretization: E_D = d Σ_k (σ_k²/σ_{k+1}² − 1)², the ratio form.
        discretization_log: d Σ_k (ln σ_k² − ln σ_{k+1}²)², the log form.
        score: E_S = Σ_k (σ_k² − σ_{k+1}²) e_k for the score errors e_k.
        total: E_I + E_D + E_S.
        initialization_method: ``"closed_form"`` or ``"second_moment_bound"``.
        sigma_max: The grid's first noise level.
        sigma_min: The grid's last (early-stopping) noise level.

    Shown in Jupyter and Rich as a table (``scorelab.display``); ``to_dict()`` and
    ``to_frame()`` give its rows.
    """

    TITLE = "paper C's VE error split"

    initialization: float
    discretization: float
    discretization_log: float
    score: float
    total: float
    initialization_method: str  # "closed_form" or "second_moment_bound"
    sigma_max: float
    sigma_min: float

    def terms(self) -> dict:
        """The terms and total, by name (what ``all_bounds`` reports)."""
        keys = ("initialization", "discretization", "discretization_log", "score", "total")
        return {k: getattr(self, k) for k in keys}


ScoreErr = float | Sequence[float] | Callable[[float], float]


def _per_step(field: str, value, sig: np.ndarray) -> np.ndarray:
    n = sig.shape[0] - 1
    if callable(value):
        out = np.array([float(value(float(s))) for s in sig[:-1]])
    else:
        out = np.asarray(value, dtype=np.float64)
        if out.ndim == 0:
            out = np.full(n, float(out))
        if out.shape != (n,):
            raise InvalidParameter(field, f"must be a number or {n} numbers (one per step)", value)
    if not (np.all(np.isfinite(out)) and np.all(out >= 0)):
        raise InvalidParameter(field, "must be finite and ≥ 0", value)
    return out


def ve_terms(
    target,
    process,
    times,
    score_error: ScoreErr = 0.0,
    normalized_score_error: ScoreErr = 0.0,
    n_mc: int = 4096,
    generator=None,
) -> VETerms:
    """E_I, E_D (ratio and log forms), E_S and their total on the decreasing ``times``.

    ``score_error`` is e_k = E‖s_θ − ∇log p‖² at σ_k (a number, one per step, or a function of
    σ); ``normalized_score_error`` adds c_k/σ_k² for a normalised error c = σ² E‖Δs‖².
    """
    if "ve" not in families(process):
        raise AssumptionFailed(
            "ve",
            f"paper C's terms are for variance-exploding processes ({', '.join(members('ve'))}); "
            f"got a '{getattr(process, 'kind', type(process).__name__)}' process",
        )
    t = torch.as_tensor(times, dtype=F64).reshape(-1)
    if t.shape[0] < 2 or bool((t[1:] >= t[:-1]).any()):
        raise InvalidParameter("times", "must be a decreasing grid of at least 2 times", t.tolist())
    sig = process.sigma(t).numpy()
    d = target.dim
    e_d = ed_discrete(sig, d)
    e_d_log = ed_discrete(sig, d, log_form=True)
    smax = float(sig[0])
    g = gaussian_params(target)
    if g is not None:
        e_i = kl_gaussians(g.mean, g.cov + smax**2 * np.eye(d), np.zeros(d), smax**2)
        method = "closed_form"
    else:
        e_i = second_moment(target, n_mc, generator).value / (2 * smax**2)
        method = "second_moment_bound"
    err = _per_step("score_error", score_error, sig)
    err = err + _per_step("normalized_score_error", normalized_score_error, sig) / sig[:-1] ** 2
    e_s = float(np.sum((sig[:-1] ** 2 - sig[1:] ** 2) * err))
    return VETerms(e_i, e_d, e_d_log, e_s, e_i + e_d + e_s, method, smax, float(sig[-1]))
