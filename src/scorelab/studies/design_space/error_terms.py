"""The score-error profile c(σ) = σ² E‖s_θ − ∇log p_σ‖², paper C's bound terms E_I, E_D, E_S
on a grid from it (docs/theory.md §9.3), and each design's effective training weight.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ...bounds.paper_c import ve_terms
from ...grids import TimeGrid
from ...losses import weight
from ...metrics.score_error import score_error_profile
from .settings import (
    DESIGNS,
    MID_RANGE,
    SIGMA_MAX,
    SIGMA_MIN,
    Settings,
    grid_sigmas,
    profile_sigmas,
)


# --- training weights (docs/theory.md §6.6) ---------------------------------------------------
def effective_weights(process, log_sigma: np.ndarray, sigma_data: float) -> dict[str, np.ndarray]:
    """Total weight on the normalised loss ‖σ s_θ + z‖² per unit of ln σ: the noise density of
    ln σ times λ/σ² (λ from ``losses.weight``, which multiplies ‖s_θ + z/σ‖²)."""
    sig = torch.as_tensor(np.exp(log_sigma), dtype=torch.float64)
    t = process.t_of_sigma(sig)
    lo, hi = math.log(SIGMA_MIN), math.log(SIGMA_MAX)
    out = {}
    for key, d in DESIGNS.items():
        lam = weight(process, t, d.weighting, sigma_data).numpy() / sig.numpy() ** 2
        if d.noise == "lognormal":
            dens = np.exp(-0.5 * ((log_sigma + 1.2) / 1.2) ** 2) / (1.2 * math.sqrt(2 * math.pi))
        else:
            dens = np.full_like(log_sigma, 1.0 / (hi - lo))
        out[key] = dens * lam
    return out


# --- score error and paper C's terms ----------------------------------------------------------
def normalised_profile(model, target, process, s: Settings, seed: int) -> tuple[list, list]:
    """c(σ) = σ² E‖s_θ − ∇log p_σ‖² on ``profile_sigmas`` and the relative standard error of
    each value (the Monte Carlo noise of ``s.n_err`` points; the same points for every model
    given ``seed``)."""
    sig = profile_sigmas(s.n_profile)
    times = process.t_of_sigma(torch.as_tensor(sig, dtype=torch.float64)).tolist()
    rows = score_error_profile(
        model,
        target,
        process,
        times,
        n=s.n_err,
        generator=torch.Generator().manual_seed(seed),
        dtype=torch.float32,
    )
    c = [r["weighted"] for r in rows]
    rel_se = [(r["mse_ci"][1] - r["mse"]) / 1.96 / r["mse"] if r["mse"] > 0 else 0.0 for r in rows]
    return c, rel_se


def on_grid(values, grid_sigmas: np.ndarray) -> np.ndarray:
    """A profile's values at a grid's σ_k (k < N), interpolated in (ln σ, ln value)."""
    v = np.maximum(np.asarray(values, dtype=np.float64), 1e-300)
    x = np.log(profile_sigmas(v.shape[0]))
    return np.exp(np.interp(np.log(grid_sigmas[:-1]), x, np.log(v)))


def grid_terms(target, process, kind: str, n: int, c, s: Settings) -> dict:
    """Paper C's E_I, E_D (ratio and log forms), E_S and total on the ``kind`` grid with ``n``
    steps, with e_k from the normalised profile ``c`` (None: the exact score, E_S = 0), and the
    share of E_S in the total."""
    grid = TimeGrid(kind, n, rho=s.rho)
    sig = grid_sigmas(process, grid)
    err = 0.0 if c is None else on_grid(c, sig).tolist()
    t = ve_terms(target, process, grid.times(process), normalized_score_error=err)
    return {
        "E_I": t.initialization,
        "E_D": t.discretization,
        "E_D_log": t.discretization_log,
        "E_S": t.score,
        "total": t.total,
        "share": t.score / t.total,
    }


def es_log_se(c, rel_se, process, kind: str, n: int, s: Settings) -> float:
    """The relative standard error of E_S (= the standard error of ln E_S) from the profile's."""
    sig = grid_sigmas(process, TimeGrid(kind, n, rho=s.rho))
    w = 1 - sig[1:] ** 2 / sig[:-1] ** 2
    ck = on_grid(c, sig)
    rk = on_grid(np.maximum(rel_se, 1e-12), sig)
    return float(math.sqrt(np.sum((w * ck * rk) ** 2)) / np.sum(w * ck))


def mid_log(c, rel_se) -> tuple[float, float]:
    """Mean of ln c(σ) over MID_RANGE and its standard error."""
    sig = profile_sigmas(len(c))
    mid = (sig >= MID_RANGE[0]) & (sig <= MID_RANGE[1])
    lc = np.log(np.asarray(c)[mid])
    se = np.asarray(rel_se)[mid]
    return float(lc.mean()), float(math.sqrt(np.sum(se**2)) / mid.sum())
