"""Choosing a schedule by minimising a bound: paper A's β_a over a, EDM's ρ over ρ.

Both scan a coarse grid first (the bounds need not be unimodal), then refine around the best
grid point with scipy's bounded scalar minimiser; the returned optimum is never worse than the
best grid point. ``tune(family, …)`` is what ``scorelab tune-schedule`` calls: each family
(``FAMILIES``) checks that the config's process is one it applies to, by the process's family
and its schedule's parameters rather than by their names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.optimize import minimize_scalar

from ..display import Column, Table, Tabular
from ..errors import InvalidParameter
from ..grids import TimeGrid
from ..processes import VP, families, members
from ..registry import entries
from ..schedules import ParametricBeta
from .assumptions import check_positive_int
from .paper_a import kl_bound, w2_bound
from .paper_c import ve_terms


@dataclass(frozen=True)
class TuneResult(Tabular):
    """A bound minimised over one parameter of a schedule family (``tune``, ``tune_parametric``,
    ``tune_edm_rho``).

    Attributes:
        parameter: ``"a"`` (paper A's β_a) or ``"rho"`` (EDM's ρ).
        best: The minimising value.
        value: The bound at ``best``.
        reference: The parameter's usual value (a = 0, the linear schedule; ρ = 7).
        value_at_reference: The bound there, to compare.
        grid: The scanned values.
        grid_values: The bound at each scanned value.

    Shown in Jupyter and Rich as a table (``scorelab.display``); ``to_dict()`` and
    ``to_frame()`` give its rows.
    """

    parameter: str  # "a" or "rho"
    best: float
    value: float  # the bound at the optimum
    reference: float  # the parameter's reference value (a = 0, ρ = 7)
    value_at_reference: float
    grid: list = field(default_factory=list)
    grid_values: list = field(default_factory=list)

    def as_dict(self) -> dict:
        """Every field (JSON-ready)."""
        return {
            "parameter": self.parameter,
            "best": self.best,
            "value": self.value,
            "reference": self.reference,
            "value_at_reference": self.value_at_reference,
            "grid": list(self.grid),
            "grid_values": list(self.grid_values),
        }

    def to_dict(self) -> dict:
        return self.as_dict()

    def _table(self) -> Table:
        title = (
            f"{self.parameter}: best {self.best:.4g} (bound {self.value:.4g}); reference "
            f"{self.reference:.4g} (bound {self.value_at_reference:.4g})"
        )
        cols = [
            Column(self.parameter, key="parameter"),
            Column("bound"),
            Column("", "text", "mark"),
        ]
        grid = zip(self.grid, self.grid_values, strict=True)
        points = {float(p): (float(v), "") for p, v in grid}
        points[float(self.reference)] = (self.value_at_reference, "reference")
        points[float(self.best)] = (self.value, "best")
        rows = [[p, v, mark] for p, (v, mark) in sorted(points.items())]
        return Table(
            title, cols, rows, ["the grid searched, the refined optimum and the reference"]
        )


def _check_range(name: str, rng, lo_min: float = -math.inf) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in rng)
    except (TypeError, ValueError):
        raise InvalidParameter(name, "must be a pair (low, high)", rng) from None
    if not (lo_min <= lo < hi and math.isfinite(hi)):
        raise InvalidParameter(name, f"must satisfy {lo_min:g} ≤ low < high < ∞", rng)
    return lo, hi


def _minimise(f, lo: float, hi: float, n_grid: int):
    grid = np.linspace(lo, hi, n_grid)
    vals = np.array([f(x) for x in grid])
    i = int(np.argmin(vals))
    a, b = grid[max(i - 1, 0)], grid[min(i + 1, n_grid - 1)]
    res = minimize_scalar(f, bounds=(a, b), method="bounded", options={"xatol": 1e-4})
    best, val = (float(res.x), float(res.fun)) if res.fun <= vals[i] else (grid[i], vals[i])
    return float(best), float(val), grid, vals


def tune_parametric(
    target,
    beta_min: float = 0.1,
    beta_max: float = 20.0,
    T: float = 1.0,
    sigma_inf: float = 1.0,
    N: int = 100,
    bound: str = "kl",
    a_range=(-10.0, 10.0),
    n_grid: int = 21,
    score_error: float = 0.0,
    score_model=None,
    n_mc: int = 500,
    seed: int = 0,
) -> TuneResult:
    """Minimise paper A's ``bound`` ("kl" or "w2") total over a for β_a (ParametricBeta).

    With a ``score_model`` the Monte Carlo score error uses the same seed at every a (common
    random numbers), so the objective is a smooth function of a.
    """
    if bound not in ("kl", "w2"):
        raise InvalidParameter("bound", "is not a tunable bound", bound, "kl, w2")
    lo, hi = _check_range("a_range", a_range)
    n_grid = check_positive_int("n_grid", n_grid, 3)
    N = check_positive_int("N", N)

    def f(a: float) -> float:
        proc = VP(ParametricBeta(a, beta_min, beta_max, T), sigma_inf, t_min=0.0)
        gen = torch.Generator().manual_seed(seed)
        fn = kl_bound if bound == "kl" else w2_bound
        kw = {"score_error": score_error, "score_model": score_model, "n_mc": n_mc}
        return fn(target, proc, N, generator=gen, **kw).total

    best, val, grid, vals = _minimise(f, lo, hi, n_grid)
    return TuneResult("a", best, val, 0.0, f(0.0), grid.tolist(), vals.tolist())


def tune_edm_rho(
    target,
    process,
    N: int,
    rho_range=(1.0, 20.0),
    n_grid: int = 20,
    score_error=0.0,
    normalized_score_error=0.0,
) -> TuneResult:
    """Minimise paper C's VE total E_I + E_D + E_S over ρ of EDM's grid with N steps from the
    process's T down to its t_min (σ_min > 0)."""
    lo, hi = _check_range("rho_range", rho_range, lo_min=1e-6)
    n_grid = check_positive_int("n_grid", n_grid, 3)
    N = check_positive_int("N", N)

    def f(rho: float) -> float:
        times = TimeGrid("edm", steps=N, rho=rho).times(process)
        return ve_terms(target, process, times, score_error, normalized_score_error).total

    best, val, grid, vals = _minimise(f, lo, hi, n_grid)
    return TuneResult("rho", best, val, 7.0, f(7.0), grid.tolist(), vals.tolist())


_PAPER_A_KEYS = ("beta_min", "beta_max")


def paper_a_member(process) -> ParametricBeta:
    """The member β_a of paper A's family that a VP process's schedule is (a linear schedule is
    a = 0): a schedule with β_min and β_max whose β agrees with β_a at 17 points. Anything else
    is refused, naming the processes and schedules that qualify."""
    schedule = getattr(process, "schedule", None)
    ref = None
    if "vp" in families(process) and all(hasattr(schedule, k) for k in _PAPER_A_KEYS):
        ref = ParametricBeta(
            getattr(schedule, "a", 0.0), schedule.beta_min, schedule.beta_max, schedule.T
        )
        t = torch.linspace(0.0, schedule.T, 17, dtype=torch.float64)
        if not torch.allclose(schedule.beta(t), ref.beta(t), rtol=1e-10, atol=1e-12):
            ref = None
    if ref is None:
        qualifying = [
            n
            for n, e in entries("schedule").items()
            if e.meta.get("family") == "beta" and set(_PAPER_A_KEYS) <= set(e.parameters)
        ]
        raise InvalidParameter(
            "process",
            "must be vp (a process of the vp family) with a schedule of paper A's family β_a "
            "for --family parametric",
            f"{getattr(process, 'kind', '?')}/{getattr(schedule, 'kind', '?')}",
            f"process {', '.join(members('vp'))} with schedule {', '.join(qualifying)}",
        )
    return ref


def _tune_parametric(target, process, N, bound, score_error, seed) -> TuneResult:
    if bound not in ("kl", "w2"):
        raise InvalidParameter("--bound", "is not a bound of paper A", bound, "kl, w2")
    member = paper_a_member(process)
    return tune_parametric(
        target,
        member.beta_min,
        member.beta_max,
        process.T,
        process.sigma_inf,
        N,
        bound=bound,
        score_error=score_error,
        seed=seed,
    )


def _tune_edm(target, process, N, bound, score_error, seed) -> TuneResult:
    if "ve" not in families(process):
        raise InvalidParameter(
            "process",
            "must be variance exploding for --family edm (paper C's bound)",
            getattr(process, "kind", "?"),
            ", ".join(members("ve")),
        )
    return tune_edm_rho(target, process, N, score_error=score_error)


#: the schedule families ``tune`` minimises a bound over: paper A's β_a over a (VP), the ρ of
#: EDM's grid (variance exploding)
FAMILIES = {"parametric": _tune_parametric, "edm": _tune_edm}


def tune(
    family: str,
    target,
    process,
    N: int,
    *,
    bound: str = "kl",
    score_error: float = 0.0,
    seed: int = 0,
) -> TuneResult:
    """Minimise a bound over ``family``'s parameter for sampling ``target`` with ``process``
    in N steps (``bound``: paper A's "kl" or "w2" for the parametric family)."""
    if family not in FAMILIES:
        raise InvalidParameter("--family", "is not a schedule family", family, ", ".join(FAMILIES))
    return FAMILIES[family](target, process, N, bound, score_error, seed)
