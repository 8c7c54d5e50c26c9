"""The error budget on samples: every arm drawn through ``sampling.generate`` with common
random numbers, every metric paired (docs/budget.md).

Coupling. Sample i of every arm starts from the same standard-normal draw z_i (the run's own
per-sample stream): the run's prior is prior_std·z_i, the exact marginal m_T x₀ᵢ + s_T z_i with
one target draw x₀ᵢ per sample, fixed across arms. Arms on the same grid also share every
noise increment (the same streams, step for step); on a refined grid the increments are new.
So the run's arm reproduces the run's own samples, and arms that differ in one piece differ
only through that piece.

Pairing. Every arm is measured against the same reference sample Y of the target (the run's
evaluation draws the same Y, so the total equals the run's W2). Intervals: the n sample
indices are split into G disjoint groups (the same in every arm and in Y); as every draw is
per sample, each group is an independent replicate of the whole chain at size n/G, and the
spread of a quantity over the groups gives its interval (``chain.Estimate``). Each group costs
one small exact OT solve per arm. Resampling the indices instead (a bootstrap, with the plan
held fixed or solved again) gave intervals 2–4× too narrow on the quickstart: a W2 near its
finite-sample floor moves with the global matching of modes, which resamples do not redraw.
"""

from __future__ import annotations

import dataclasses
import warnings
from itertools import pairwise

import numpy as np
import torch

from .. import threads
from ..errors import InvalidParameter, ScorelabError
from ..grids import TimeGrid
from ..metrics.builtin import KNN_MAX_DIM
from ..metrics.gaussian import kl_gaussian_fit
from ..metrics.knn import knn_kl_terms
from ..sampling import generate, sampler_parameters
from .chain import Arm, Estimate, describe

F64 = torch.float64
#: the factor by which a resolved adaptive solver's tolerances are tightened
TIGHTEN = 100.0
#: disjoint groups of the samples whose spread gives the intervals (docs/budget.md)
GROUPS = 5


def refined(grid: TimeGrid, factor: int) -> TimeGrid:
    """The grid with ``factor`` times as many steps between the same end points; every node
    of the run's grid is a node of it (the spacings are functions of equispaced u). A σ list
    is refined geometrically between its levels."""
    if grid.sigmas is None:
        return dataclasses.replace(grid, steps=grid.steps * factor)
    s = np.asarray(grid.sigmas, dtype=np.float64)
    u = np.arange(factor) / factor
    levels = [a * (b / a) ** u for a, b in pairwise(s)]
    fine = [*np.concatenate(levels).tolist(), float(s[-1])]
    return TimeGrid(sigmas=tuple(fine), final=grid.final)


class SampleArms:
    """Draws the arms' samples (cached per arm and refinement)."""

    def __init__(self, setting, log=None):
        self.s = setting
        self.log = log or (lambda msg: None)
        self._cache: dict = {}
        g = torch.Generator().manual_seed(setting.seed)
        n, shape = setting.n, setting.target.event_shape
        # the run's evaluation draws its reference first from the same seed
        self.reference = setting.target.sample(n, g, dtype=F64).reshape(n, -1)
        self.x0 = setting.target.sample(n, g, dtype=F64).reshape(n, *shape)

    def grid(self, arm: Arm, refine: int) -> TimeGrid:
        g = self.s.grid
        if "discretisation" in arm:
            g = refined(g, refine)
        if "early_stopping" in arm:
            g = dataclasses.replace(g, t_min=self.s.t_zero)
        return g

    def params(self, arm: Arm) -> dict:
        params = dict(self.s.params)
        if "discretisation" in arm:
            defaults = sampler_parameters(self.s.sampler)
            for key in ("rtol", "atol"):  # an adaptive solver: resolved by its tolerances
                if key in defaults and defaults[key] is not None:
                    params[key] = float(params.get(key) or defaults[key]) / TIGHTEN
        return params

    def prior(self, arm: Arm, grid: TimeGrid):
        if "prior" not in arm:
            return None
        t0 = float(grid.times(self.s.process)[0])
        m, s = float(self.s.process.scale(t0)), float(self.s.process.std(t0))
        x0 = self.x0
        return lambda z, rows: m * x0[rows].to(device=z.device, dtype=z.dtype) + s * z

    def samples(self, arm: Arm, refine: int | None = None) -> torch.Tensor:
        """The arm's n samples as float64 ``[n, D]``."""
        refine = self.s.refine if refine is None else refine
        key = (arm, refine if "discretisation" in arm else None)
        if key not in self._cache:
            grid = self.grid(arm, refine)
            score = self.s.exact if ("score" in arm or self.s.model is None) else self.s.model
            gen = generate(
                score,
                self.s.process,
                self.s.target.event_shape,
                sampler=self.s.sampler,
                grid=grid,
                n=self.s.n,
                seed=self.s.seed,
                batch_size=self.s.batch_size,
                dtype=self.s.dtype,
                prior=self.prior(arm, grid),
                **self.params(arm),
            )
            self.log(f"  {describe(arm)}: NFE {gen.nfe}, {gen.seconds:.2f} s")
            self._cache[key] = (gen.samples.detach().cpu().to(F64).reshape(self.s.n, -1), gen.nfe)
        return self._cache[key][0]

    def nfe(self, arm: Arm) -> int:
        self.samples(arm)
        return self._cache[(arm, self.s.refine if "discretisation" in arm else None)][1]


# --- the paired metrics -----------------------------------------------------------------------


def kl_kind(target) -> tuple[str | None, str]:
    """Which KL estimator applies to samples of ``target`` ("gaussian_fit", "knn" or None)
    and what it is (or why there is none)."""
    if target.gaussian_moments() is not None and target.has_density:
        return "gaussian_fit", "KL(target ‖ Gaussian fitted to the samples), closed form"
    d = int(np.prod(target.event_shape))
    if getattr(target, "singular", False) or target.is_finite() or not target.has_density:
        return None, f"target '{target.kind}' has no density, so KL(target ‖ samples) is infinite"
    if d > KNN_MAX_DIM:
        return None, f"d = {d} > {KNN_MAX_DIM}: the kNN KL estimator is unreliable there"
    return "knn", "KL(target ‖ samples), Wang–Kulkarni–Verdú kNN estimator (k = 1)"


class PairedMetrics:
    """W2 (and W1, KL) of any arm's samples against the shared reference, on all n samples
    and on each of G disjoint groups of the sample indices (the same groups for every arm)."""

    def __init__(self, reference: torch.Tensor, target, groups: int):
        self.y = reference
        n = reference.shape[0]
        self.target = target
        self.kl, _ = kl_kind(target)
        self.blocks = [slice(k * n // groups, (k + 1) * n // groups) for k in range(groups)]

    def _grouped(self, f, x: torch.Tensor) -> Estimate:
        # no groups (too few samples): an empty array, so the interval is unknown (None)
        groups = np.array([f(x[b], self.y[b]) for b in self.blocks], dtype=np.float64)
        return Estimate(f(x, self.y), groups)

    def transport(self, x: torch.Tensor, p: int) -> Estimate:
        """Exact W_p by the network simplex (POT)."""
        return self._grouped(lambda a, b: exact_wp(a, b, p), x)

    def divergence(self, x: torch.Tensor) -> Estimate:
        if self.kl == "gaussian_fit":
            mean, cov = self.target.gaussian_moments()
            return self._grouped(lambda a, b: kl_gaussian_fit(a, mean, cov), x)
        return self._grouped(lambda a, b: knn_kl_terms_mean(b, a), x)

    def submit(self, pool, x: torch.Tensor, metrics: list[str]) -> dict:
        """Every metric of one arm's samples, as futures of ``pool`` (POT's solver and the
        kNN queries release the GIL: they run beside the next arm's sampling)."""
        jobs = {
            "w2": (self.transport, x, 2),
            "w1": (self.transport, x, 1),
            "kl": (self.divergence, x),
        }
        return {m: pool.submit(*jobs[m]) for m in metrics}


def exact_wp(x: torch.Tensor, y: torch.Tensor, p: int) -> float:
    """Exact W_p between two equal-size clouds (POT's network simplex)."""
    import ot

    n = x.shape[0]
    a = np.full(n, 1.0 / n)
    M = torch.cdist(x, y).pow(p).numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cost, log = ot.emd2(a, a, M, numItermax=1_000_000_000, log=True)
    if log.get("warning"):
        raise ScorelabError(f"exact OT did not converge ({log['warning']})")
    return max(float(cost), 0.0) ** (1.0 / p)


def knn_kl_terms_mean(y: torch.Tensor, x: torch.Tensor) -> float:
    """KL(target ‖ samples) by the kNN estimator (k = 1), y the target's points."""
    terms, const = knn_kl_terms(y, x, 1)
    return float(terms.mean() + const)


def groups_for(n: int, d: int, kl: str | None) -> int:
    """How many disjoint groups the n samples are split into for the intervals: up to
    ``GROUPS``, each of at least 20 points (d + 2 for a fitted Gaussian); 0: too few."""
    least = max(20, d + 2) if kl == "gaussian_fit" else 20
    g = min(GROUPS, n // least)
    return g if g >= 2 else 0


def workers() -> int:
    """Threads for the metrics: what torch is allowed, or SCORELAB_THREADS; at least 2, so
    that one solves while the other samples."""
    return max(2, threads.requested() or torch.get_num_threads())


MAX_N = 20_000  # one n × n float64 cost matrix per arm and solve: 3.2 GB at 20000


def check_n(n, field: str = "n") -> int:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 10:
        raise InvalidParameter(field, "must be an integer ≥ 10", n)
    if n > MAX_N:
        raise InvalidParameter(
            field,
            "is too large for exact optimal transport (one n × n cost matrix per arm)",
            n,
            f"at most {MAX_N}",
        )
    return int(n)
