"""The noise-schedule study's setting: paper A's diffusion and Gaussian target, the samplers, the
quick and full sizes, and the schedules β_a (and cosine) keyed by their labels.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from ...grids import TimeGrid
from ...processes import VP
from ...schedules import CosineBeta, ParametricBeta
from ...targets import Gaussian

# paper A's diffusion (docs/theory.md §11.1)
SIGMA_INF, T, BETA_MIN, BETA_MAX = 1.0, 1.0, 0.1, 20.0

# paper A's Gaussian target: N(μ𝟙, λ I) in d = 10
D, MU, LAM = 10, 1.0, 0.5

COSINE = "cosine"

# samplers and their options: Euler–Maruyama at the right end point (the authors' figures)
SAMPLERS = {"euler_maruyama": {"eval_point": "right"}, "exponential_integrator": {}}

SHORT = {"euler_maruyama": "EM", "exponential_integrator": "EI"}

# networks are trained on [t_min, T] and sampled down to t = 0
TRAIN_T_MIN = 1e-3

# the moderately convex schedule the MG25 contrasts use (paper A's optimum, a ≈ 4)
A_MID = 4.0


@dataclass(frozen=True)
class Settings:
    a_grid: tuple[float, ...]  # the Gaussian exact-score scan (closed form)
    steps: tuple[int, ...]  # N
    mg25_a: tuple[float, ...]  # must contain A_MID, −10 and 10
    mg25_steps: tuple[int, ...]
    mg25_n: int  # samples per configuration (and reference points)
    mg25_floor_reps: int  # independent reference draws for the kNN floor
    train_a: tuple[float, ...]  # one trained network per value and seed (plus the tuned a)
    train_steps: int
    train_lr: float
    train_width: int
    train_n: int  # samples drawn from each trained network
    train_N: int  # sampler steps for the trained networks
    n_mc: int  # Monte Carlo draws per time for the measured score error in the bounds
    fit_floor_reps: int  # independent target draws per seed for the fitted-Gaussian floor


QUICK = Settings(
    a_grid=(-10, -5, 0, 2, 4, 6, 10),
    steps=(25, 50, 100),
    mg25_a=(-10, 0, 4, 10),
    mg25_steps=(25, 100),
    mg25_n=1000,
    mg25_floor_reps=4,
    train_a=(0, 10),
    train_steps=300,
    train_lr=1e-2,  # 300 steps at 1e-3 left the a = 0 network far off (fitted KL ≈ 5)
    train_width=64,
    train_n=2000,
    train_N=100,
    n_mc=100,
    fit_floor_reps=8,
)

FULL = Settings(
    a_grid=tuple(range(-10, 11)),
    steps=(25, 50, 100),
    mg25_a=(-10, -6, -2, 0, 2, 4, 6, 10),
    mg25_steps=(25, 50, 100),
    mg25_n=5000,
    mg25_floor_reps=4,
    train_a=(-10, -4, 0, 2, 6, 10),
    train_steps=3000,
    train_lr=1e-3,
    train_width=256,
    train_n=10_000,
    train_N=100,
    n_mc=500,
    fit_floor_reps=8,
)


# --- schedules -------------------------------------------------------------------------------
def label(spec) -> str:
    return COSINE if spec == COSINE else f"a={float(spec):g}"


def make_process(spec, t_min: float = 0.0) -> VP:
    """VP with paper A's β_a (``spec`` a number) or the cosine schedule clipped at β_max, so
    that β(T) = β_max as for every β_a (B(T) stays finite and E3 is the same)."""
    if spec == COSINE:
        schedule = CosineBeta(clip_max=BETA_MAX, T=T, variance=SIGMA_INF**2)
    else:
        schedule = ParametricBeta(float(spec), BETA_MIN, BETA_MAX, T)
    return VP(schedule, SIGMA_INF, t_min=t_min)


def uniform_times(process: VP, N: int) -> torch.Tensor:
    return TimeGrid("uniform", steps=N, t_min=0.0).times(process)


def gaussian_target() -> Gaussian:
    return Gaussian(MU, LAM, dim=D)


def grid_values(d: dict) -> dict[float, float]:
    return {float(k.split("=")[1]): v for k, v in d.items() if k != COSINE}


def n_keys(d: dict) -> list[str]:
    """The N keys of a results dict, in increasing N."""
    return sorted(d, key=int)


def settings_json(st: Settings) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(st).items()}
