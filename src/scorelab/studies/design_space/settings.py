"""The design-space study's setting: the ring scaled to σ_data = 0.5, EDM's training process and
the frozen-score VE sampling process, the three training designs, the regimes' E_S shares and
the quick and full sizes.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

from ...grids import TimeGrid
from ...processes import EDM, VE
from ...schedules import CallableSigma, EDMSigma
from ...targets import ring8

SIGMA_MIN, SIGMA_MAX = 0.002, 80.0

RING_RADIUS, RING_STD = 0.7, 0.07  # σ_data = √(r²/2 + std²) ≈ 0.5, as in docs/theory.md §11.3

GRIDS = ("edm", "geometric")

# σ-range "that matters" for the per-σ comparison: EDM's log-normal mass (e^{−1.2 ± 1.2}) up to
# a few σ_data, where the data's structure is being formed.
MID_RANGE = (0.1, 2.5)

# the regimes of paper C's conclusion, as shares of E_S in the bound E_I + E_D + E_S
WELL_SHARE, UNDER_SHARE = 0.10, 0.50

SCORE_DESIGNS = ("song", "song_precond")  # compared with "edm"


@dataclass(frozen=True)
class Design:
    """A training design: parameterisation, noise distribution of σ, loss weighting."""

    label: str
    parameterisation: str
    noise: str
    weighting: str


DESIGNS = {
    "edm": Design("EDM (log-normal σ, λ_EDM, preconditioned)", "edm", "lognormal", "edm"),
    "song": Design("Song VE (log-uniform σ, 1/σ², ε-prediction)", "eps", "loguniform", "s2"),
    # Song's noise distribution and weighting under EDM's preconditioning: isolates what paper
    # C's training analysis is about (p(σ) and λ), apart from the parameterisation.
    "song_precond": Design("log-uniform σ, 1/σ², EDM-preconditioned", "edm", "loguniform", "s2"),
}


@dataclass(frozen=True)
class Settings:
    steps: int
    batch_size: int
    width: int
    depth: int
    lr: float
    ema_half_life: float
    scan_every: int  # checkpoints of the scan: every this many steps (and step 0)
    n_eval: int  # fixed batch on which the training objective's excess is tracked
    n_err: int  # points per σ for score errors
    n_profile: int  # σ values of the score-error profile (log-spaced over [σ_min, σ_max])
    n_samples: int  # samples per sampling configuration, and the reference sample's size
    n_floor: int  # independent pairs of target samples per seed for the W2 floor's spread
    n_compare: int = 400  # N of the regime-defined grid claims (E_S can dominate there)
    n_small: int = 10  # N of the small-N grid claims (E_D dominates the bound there)
    # N at which the scan is reported and the exact score is sampled on both grids (the bound's
    # ranking of the grids against the measured one, at every N)
    share_ns: tuple[int, ...] = (10, 18, 50, 100, 200, 400)
    rho: float = 7.0


FULL = Settings(
    steps=8000,
    batch_size=512,
    width=128,
    depth=3,
    lr=2e-3,
    ema_half_life=200.0,
    scan_every=200,
    n_eval=4096,
    n_err=2000,
    n_profile=41,
    n_samples=4000,
    n_floor=4,
)

QUICK = dataclasses.replace(
    FULL, steps=500, batch_size=256, ema_half_life=30.0, scan_every=50, n_eval=1024, n_err=500,
    n_samples=1000, n_floor=3,
)  # fmt: skip


def settings_for(quick: bool) -> Settings:
    return QUICK if quick else FULL


def settings_json(s: Settings) -> dict:
    out = asdict(s)
    out["share_ns"] = list(s.share_ns)
    return out


def settings_from(d: dict) -> Settings:
    return Settings(**{**d, "share_ns": tuple(d["share_ns"])})


# --- the setting ------------------------------------------------------------------------------
def ring_target():
    return ring8(RING_RADIUS, RING_STD)


def train_process():
    return EDM(EDMSigma(SIGMA_MIN, SIGMA_MAX))


def sampling_process():
    """VE with σ(t) = √t: Euler–Maruyama on it is paper C's frozen-score VE step exactly."""
    schedule = CallableSigma(torch.sqrt, T=SIGMA_MAX**2)
    return VE(schedule, t_min=SIGMA_MIN**2)


def grid_sigmas(process, grid: TimeGrid) -> np.ndarray:
    return process.sigma(grid.times(process)).numpy()


def profile_sigmas(n_profile: int) -> np.ndarray:
    """The σ values of the score-error profile: ``n_profile`` log-spaced over [σ_min, σ_max]."""
    return np.exp(np.linspace(math.log(SIGMA_MIN), math.log(SIGMA_MAX), n_profile))
