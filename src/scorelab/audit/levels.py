"""The noise level of every model call's input, read exactly on a point-mass target.

With the target a point mass at x₀ the exact denoiser is D = x₀ at every noise level, and a
consistent scheduler keeps its state on the line x = A x₀ + B e + Σ_k C_k z_k (e the starting
noise, z_k the noise it draws): the run is linear in (x₀, e, z). Probing one batch — x₀ = 1,
e = 1, each z_k = 1, and a random check row — reads A, B, C_k at every call, before and after
each step, and the input's noise level is σ = √(B² + Σ C_k²)/|A|, exactly, whatever the
discretisation error (every consistent step is exact on a point mass). The model is evaluated,
as a network is, at the level its timestep reads in the scheduler's table
(``driver.timestep_level``), and the run starts exactly on the forward marginal at the first
call's level, in the scheduler's state convention (the scale read from ``scale_model_input``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .driver import (
    Driver,
    PointMass,
    copy_of,
    init_noise_sigma,
    model_output,
    noise_level,
    timestep_level,
)
from .law import intercept_noise

F64 = torch.float64


class NoLevels(Exception):
    """The scheduler's timesteps cannot be read as noise levels."""


@dataclass
class LevelCall:
    timestep: float
    expected: float  # the noise level the timestep reads
    sigma_in: float  # the noise level of the model input
    scale: float  # model input / state (scale_model_input's factor)
    state: tuple[float, float]  # (A, noise norm) of the state before the step
    after: float  # the noise level of the state after the step
    after_scale: float  # A after the step
    complete: bool


@dataclass
class LevelRun:
    steps: int
    start: tuple[float, float]  # (a, b) of the starting state a x₀ + b e
    start_sigma: float
    calls: list[LevelCall]
    init_noise_sigma: float

    @property
    def end_sigma(self) -> float:
        return self.calls[-1].after if self.calls else math.nan

    @property
    def end_scale(self) -> float:
        return self.calls[-1].after_scale if self.calls else math.nan


def _coefficients(v: torch.Tensor, draws: int, check: torch.Tensor) -> tuple[float, float]:
    """(A, √(B² + Σ C²)) of a batch ``v`` [2 + draws + 1]; linearity checked on the last row."""
    v = v.reshape(-1).to(F64)
    pred = (v[: 2 + draws] * check).sum()
    if abs(float(pred - v[-1])) > 1e-3 * (float(v.abs().max()) + 1e-12):
        raise NoLevels("the run is not linear on a point mass (clipping or thresholding?)")
    return float(v[0]), float(v[1 : 2 + draws].norm())


def _level(a: float, b: float) -> float:
    return math.inf if a == 0 else b / abs(a)


def start_state(driver: Driver, sch) -> tuple[float, float, float]:
    """(a, b, σ): the forward marginal's state a (x₀ + σ e)·… at the first timestep, in the
    scheduler's convention: rectified flow (1 − s) x₀ + s e, EDM's x₀ + σ e, otherwise the
    state whose ``scale_model_input`` is α(x₀ + σ e), α = 1/√(1 + σ²)."""
    t0 = sch.timesteps[0]
    level = timestep_level(sch, t0)
    if level is None:
        raise NoLevels(f"{type(sch).__name__}'s timesteps are not indices into an ᾱ table")
    if driver.flow:
        return 1.0 - level, level, noise_level(level, True)
    if driver.edm:
        return 1.0, level, level
    k = 1.0
    if hasattr(sch, "scale_model_input"):
        one = torch.ones(1, dtype=F64)
        k = float(copy_of(sch).scale_model_input(one, t0).reshape(-1)[0])
    alpha = 1.0 / math.sqrt(1.0 + level**2)
    return alpha / k, alpha * level / k, level


def level_run(driver: Driver, steps: int, overrides=None) -> LevelRun:
    """The noise levels of a run of ``steps`` steps on a point-mass target."""
    overrides = dict(overrides or {})
    sch = driver.fresh(steps, **overrides)
    a, b, sigma0 = start_state(driver, sch)
    draws = [0]

    def zeros(k, shape):
        draws[0] += 1
        return torch.zeros(shape, dtype=F64)

    with intercept_noise(sch, zeros):
        x0 = torch.zeros(1, 1, dtype=F64)
        driver.run(sch, x0, _point_mass_output(driver, PointMass(x0)))
    g = torch.Generator().manual_seed(7)
    check = torch.randn(2 + draws[0], generator=g, dtype=F64)
    rows = 3 + draws[0]
    x0, e = torch.zeros(rows, 1, dtype=F64), torch.zeros(rows, 1, dtype=F64)
    x0[0], e[1], x0[-1], e[-1] = 1.0, 1.0, check[0], check[1]

    def noise(k, shape):
        z = torch.zeros(rows, 1, dtype=F64)
        z[2 + k], z[-1] = 1.0, check[2 + k]
        return z.reshape(shape)

    sch = driver.fresh(steps, **overrides)
    record = []
    with intercept_noise(sch, noise):
        driver.run(sch, a * x0 + b * e, _point_mass_output(driver, PointMass(x0)), None, record)
    calls = []
    for c in record:
        sa, sb = _coefficients(c.state, draws[0], check)
        ia, ib = _coefficients(c.inp, draws[0], check)
        na, nb = _coefficients(c.after, draws[0], check)
        expected = noise_level(timestep_level(sch, c.timestep), driver.flow)
        scale = (abs(ia) + ib) / max(abs(sa) + sb, 1e-300)
        calls.append(
            LevelCall(
                c.timestep,
                expected,
                _level(ia, ib),
                scale,
                (sa, sb),
                _level(na, nb),
                na,
                c.complete,
            )
        )
    return LevelRun(steps, (a, b), sigma0, calls, init_noise_sigma(sch))


def _point_mass_output(driver: Driver, model: PointMass):
    """The exact point-mass model, at the level the call's timestep reads."""

    def output(sch, inp, t, i):
        return model_output(model, sch, inp, timestep_level(sch, t), driver.flow)

    return output


__all__ = ["LevelCall", "LevelRun", "NoLevels", "level_run", "start_state"]
