"""The error budget in closed form: a Gaussian target, its exact score and a sampler with a
Gaussian oracle (docs/theory.md §5, §13).

Every arm's output law is then Gaussian and diagonal in the eigenbasis of the target's
covariance, so each arm's KL(target ‖ output) and W2 are exact:

* the run's discretisation: the sampler's exact moment recursion (``oracles.sampler_moments``)
  on the run's grid, started from the arm's prior law;
* the resolved reference: the continuous-time law from the same prior law — the exact
  probability-flow map (``oracles.pf_ode_exact``) for a deterministic sampler, the reverse SDE
  in closed form (``oracles.reverse_sde_exact``) for a stochastic sampler that converges to it
  (checked on two fine grids), else the sampler's own recursion on a fine grid, with the
  difference to a grid half as fine reported as the reference's residual;
* the prior: N(0, prior_std²) or the exact marginal N(m_T μ, m_T² λ + s_T²) at the grid's
  first time;
* early stopping: the end time t_min, or t = 0 exactly;
* a final Tweedie step (``grid.final == "denoise"``) is the affine map x ↦ (m λ x + s² μ)/v at
  the end time (DDIM's step to σ = 0 is the same map).
"""

from __future__ import annotations

import dataclasses
import math
from itertools import pairwise

import numpy as np
import torch

from .. import oracles
from ..errors import InvalidParameter
from ..grids import TimeGrid
from ..metrics.gaussian import kl_gaussians
from .chain import Arm, Estimate

#: steps of the fine grids (× the run's) that decide a stochastic sampler's limit
LIMIT_CHECK = (4, 8)
#: an order-1 scheme halves its error when its grid is twice as fine; more than this
#: fraction left means the sampler converges to another law than the reverse SDE
HALVING = 0.75


def _coefs(process, t: float) -> tuple[float, float]:
    return float(process.scale(t)), float(process.variance(t))


def oracle_reason(kind: str, process, grid: TimeGrid, params: dict) -> str | None:
    """None when ``kind`` has a Gaussian oracle for these parameters, else why not."""
    t = grid.times(process).tolist()
    try:
        oracles.step_map(kind, process, t[0], t[1], np.ones(1), np.zeros(1), **params)
    except InvalidParameter as exc:
        return f"sampler '{kind}' {exc.problem}"
    except TypeError as exc:
        return f"the Gaussian oracle of '{kind}' does not take these options ({exc})"
    return None


class GaussianArms:
    """The exact output law and error of every arm, for a Gaussian target N(μ, Σ)."""

    def __init__(self, target, process, sampler: str, grid: TimeGrid, params: dict, refine: int):
        mean, cov = target.gaussian_moments()
        lam, U = np.linalg.eigh(cov.numpy().astype(np.float64))
        mu = U.T @ mean.numpy().astype(np.float64)
        # directions with the same (λ, μ) evolve alike: each distinct one is computed once
        # (an isotropic target is one direction, whose quadratures then run once, not d times)
        pairs, self.expand = np.unique(np.stack([lam, mu], 1), axis=0, return_inverse=True)
        self.expand = self.expand.reshape(-1)
        self.lam, self.mu = pairs[:, 0].copy(), pairs[:, 1].copy()
        self.process, self.sampler, self.grid = process, sampler, grid
        self.params, self.refine = dict(params), int(refine)
        self.times = grid.times(process).tolist()
        self.zero_times = _times_to_zero(grid, process)
        self.limit, self.residual = self._limit()

    # --- laws -------------------------------------------------------------------------------
    def prior(self, exact: bool) -> tuple[np.ndarray, np.ndarray]:
        if not exact:
            v = self.process.prior_std**2
            return np.zeros_like(self.lam), np.full_like(self.lam, v)
        m, s2 = _coefs(self.process, self.times[0])
        return m * self.mu, m**2 * self.lam + s2

    def law(self, arm: Arm) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance per eigen-direction of the arm's output."""
        mean0, var0 = self.prior("prior" in arm)
        to_zero = "early_stopping" in arm
        if "discretisation" in arm:
            end = 0.0 if to_zero else self.times[-1]
            mean, var = self.continuous(mean0, var0, end)
        else:
            times = self.zero_times if to_zero else self.times
            mean, var = self.recursion(times, mean0, var0)
            end = times[-1]
        return self.final(mean, var, end)

    def recursion(self, times, mean0, var0):
        return oracles.sampler_moments(
            self.sampler, self.process, times, self.lam, self.mu, mean0, var0, **self.params
        )

    def continuous(self, mean0, var0, end: float):
        t0 = self.times[0]
        if self.limit == "pf_ode":
            f = lambda x: oracles.pf_ode_exact(self.process, t0, end, self.lam, self.mu, x)  # noqa: E731
            slope = f(np.ones_like(self.lam)) - f(np.zeros_like(self.lam))
            return f(mean0), slope**2 * var0
        if self.limit == "reverse_sde":
            return oracles.reverse_sde_exact(self.process, t0, end, self.lam, self.mu, mean0, var0)
        fine = dataclasses.replace(self.grid, steps=self.grid.steps * self.refine, t_min=end)
        return self.recursion(_safe_times(fine, self.process), mean0, var0)

    def final(self, mean, var, end: float):
        """The final Tweedie step x ↦ E[X₀ | X_end = x] when the grid asks for one."""
        if self.grid.final != "denoise":
            return mean, var
        m, s2 = _coefs(self.process, end)
        v = m**2 * self.lam + s2
        M, c = m * self.lam / v, s2 * self.mu / v
        return M * mean + c, M**2 * var

    # --- errors -----------------------------------------------------------------------------
    def error(self, arm: Arm) -> dict[str, Estimate]:
        """W2 and KL(target ‖ output). Both laws are diagonal in the same basis, so W2² is
        Σ (mean − μ)² + (√var − √λ)² per direction: the Bures form (``w2_gaussians``) takes a
        square root of a round-off-sized difference near W2 = 0 and keeps only half the
        digits there."""
        e = self.expand
        mean, var = (v[e] for v in self.law(arm))
        lam, mu = self.lam[e], self.mu[e]
        w2 = math.sqrt(float(np.sum((mean - mu) ** 2 + (np.sqrt(var) - np.sqrt(lam)) ** 2)))
        return {"w2": Estimate(w2), "kl": Estimate(kl_gaussians(mu, lam, mean, var))}

    # --- which continuous law the sampler converges to ---------------------------------------
    def _limit(self) -> tuple[str, dict | None]:
        """("pf_ode" | "reverse_sde" | "fine_grid", residual of the reference or None)."""
        t = self.times
        q = [
            oracles.step_map(self.sampler, self.process, a, b, self.lam, self.mu, **self.params)[2]
            for a, b in pairwise(t)
        ]
        if all(np.all(np.asarray(v) == 0) for v in q):
            return "pf_ode", None
        # from a law far from p_T (one s.d. off in the mean, 3× the variance), where every
        # limit other than the reverse SDE differs from it at order 1
        m, s2 = _coefs(self.process, t[0])
        v = m**2 * self.lam + s2
        mean0, var0 = m * self.mu + np.sqrt(v), 3 * v
        sde = oracles.reverse_sde_exact(self.process, t[0], t[-1], self.lam, self.mu, mean0, var0)
        gaps = []
        for r in LIMIT_CHECK:
            g = dataclasses.replace(self.grid, steps=self.grid.steps * r)
            mean, var = self.recursion(g.times(self.process).tolist(), mean0, var0)
            gaps.append(float(np.abs(mean - sde[0]).max() + np.abs(var - sde[1]).max()))
        if gaps[1] <= HALVING * gaps[0] or gaps[1] < 1e-12:
            return "reverse_sde", None
        return "fine_grid", {"refine": self.refine, "half": max(1, self.refine // 2)}

    def reference_residual(self, arm: Arm) -> dict[str, float] | None:
        """Error of the fine-grid reference at half the refinement minus at the full one (None
        for a closed-form limit, which has no residual)."""
        if self.limit != "fine_grid":
            return None
        full = self.error(arm)
        keep = self.refine
        self.refine = max(1, keep // 2)
        try:
            half = self.error(arm)
        finally:
            self.refine = keep
        return {k: half[k].value - full[k].value for k in full}


def _times_to_zero(grid: TimeGrid, process) -> list[float]:
    """The run's grid with the same number of steps ending at t = 0, or, where the grid's
    spacing cannot reach 0 in float64, at ``early_stop_time``."""
    return _safe_times(dataclasses.replace(grid, t_min=0.0), process)


def _safe_times(grid: TimeGrid, process) -> list[float]:
    try:
        return grid.times(process).tolist()
    except InvalidParameter:
        if grid.t_min != 0.0:
            raise
        return dataclasses.replace(grid, t_min=early_stop_time(process)).times(process).tolist()


#: "t → 0" on samples (and for grids that cannot reach 0): the time where σ is this many times
#: below σ(t_min)
ZERO_FACTOR = 1e3


def early_stop_time(process, t_min: float | None = None) -> float:
    """The time at which σ is ``ZERO_FACTOR`` times below σ(t_min) (t_min: the process's)."""
    t_min = process.t_min if t_min is None else float(t_min)
    if t_min <= 0:
        return 0.0
    sigma = float(process.sigma(t_min)) / ZERO_FACTOR
    t = float(process.t_of_sigma(torch.tensor(sigma, dtype=torch.float64)))
    return t if math.isfinite(t) and 0 <= t < t_min else 0.0
