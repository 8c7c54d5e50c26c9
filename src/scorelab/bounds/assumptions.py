"""What the bounds share: the refusal error, target introspection and quadrature helpers.

A bound is a theorem: it holds only under its assumptions. When they fail (a mixture is not
log-concave, a manifold law has no density, a VE process is not paper A's VP), the bound
functions raise :class:`AssumptionFailed` with the reason instead of returning a number.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np
import torch

from ..display import Column, Table, Tabular
from ..errors import InvalidParameter, ScorelabError
from ..processes import VP, ForwardProcess

F64 = torch.float64


class AssumptionFailed(ScorelabError):
    """A bound's hypothesis does not hold for this target/process: no number is returned."""

    def __init__(self, bound: str, reason: str):
        self.bound = bound
        self.reason = reason
        super().__init__(f"{bound} bound refused: {reason}")


class BoundTable(Tabular):
    """What a bound's result shows (``scorelab.display``): one row per term of ``terms()``
    with its share of the total, the other numbers (step size, constants, estimates) in the
    note; ``to_dict()`` is ``as_dict()``. ``TITLE`` names the bound."""

    TITLE = "bound"

    def as_dict(self) -> dict:
        return asdict(self)

    def to_dict(self) -> dict:
        return self.as_dict()

    def _table(self) -> Table:
        terms = self.terms()
        total = terms.get("total")
        rows = []
        for name, v in terms.items():
            share = v / total if total and math.isfinite(total) and name != "total" else None
            rows.append([name, v, share])
        cols = [Column("term", "text"), Column("value"), Column("share of total", key="share")]
        others = []
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name in terms:
                continue
            v = v.value if isinstance(v, Estimate) else v
            others.append(f"{f.name} = {v:.4g}" if isinstance(v, float) else f"{f.name} = {v}")
        return Table(self.TITLE, cols, rows, ["; ".join(others)] if others else [])


@dataclass(frozen=True)
class Estimate:
    """A value with its Monte Carlo standard error (0 for a closed form)."""

    value: float
    stderr: float
    method: str  # "closed_form" or "monte_carlo"


@dataclass(frozen=True)
class GaussianParams:
    mean: np.ndarray  # [D]
    cov: np.ndarray  # [D, D]
    eigvals: np.ndarray  # [D], ascending


def gaussian_params(target) -> GaussianParams | None:
    """(μ, Σ, eig Σ) when ``target`` is a single non-degenerate Gaussian, else None."""
    moments = target.gaussian_moments()
    if moments is None or not target.has_density:
        return None
    mean, cov = moments[0].numpy().copy(), moments[1].numpy()
    return GaussianParams(mean, cov, np.linalg.eigvalsh(cov))


def check_positive_int(field: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or int(value) != value or int(value) < minimum:
        raise InvalidParameter(field, f"must be an integer ≥ {minimum}", value)
    return int(value)


def check_nonneg(field: str, value) -> float:
    v = float(value)
    if not (math.isfinite(v) and v >= 0):
        raise InvalidParameter(field, "must be a finite number ≥ 0", value)
    return v


def generator_or_default(generator: torch.Generator | None, seed: int = 0) -> torch.Generator:
    return generator if generator is not None else torch.Generator().manual_seed(seed)


def require_vp(process: ForwardProcess, bound: str) -> tuple[float, float]:
    """Paper A's setting: a VP process with a finite, non-decreasing β. Returns (B(T), β(T))."""
    if not isinstance(process, VP) or "vp" not in (process.kind, *getattr(process, "is_a", ())):
        raise AssumptionFailed(
            bound,
            f"paper A's bounds are for the VP process f = −β/(2σ∞²), g² = β; got a "
            f"'{process.kind}' process",
        )
    T = process.T
    B_T = float(process.schedule.integral(T))
    beta_T = float(process.schedule.beta(T))
    if not (math.isfinite(B_T) and math.isfinite(beta_T)):
        raise AssumptionFailed(
            bound,
            "B(T) = ∫β or β(T) is infinite (a cosine schedule without clip_max); set the "
            "schedule's clip_max",
        )
    t = torch.linspace(0.0, T, 2001, dtype=F64)
    beta = process.schedule.beta(t)
    if bool((beta <= 0).any()):
        raise AssumptionFailed(bound, "β must be positive on [0, T]")
    if bool((beta[1:] < beta[:-1] - 1e-10 * float(beta.abs().max())).any()):
        raise AssumptionFailed(bound, "β must be non-decreasing (the bound uses sup β = β(T))")
    return B_T, beta_T


def second_moment(target, n_mc: int = 4096, generator=None) -> Estimate:
    """E‖X₀‖²: exact where the target knows it (``Target.second_moment``: Gaussian mixtures,
    spheres, empirical measures), else Monte Carlo."""
    exact = target.second_moment()
    if exact is not None:
        return Estimate(float(exact), 0.0, "closed_form")
    x = target.sample(n_mc, generator_or_default(generator), dtype=F64).reshape(n_mc, -1)
    sq = (x**2).sum(1)
    return Estimate(float(sq.mean()), float(sq.std() / math.sqrt(n_mc)), "monte_carlo")


def first_moment(target, n_mc: int = 4096, generator=None) -> float:
    """E‖X₀‖: exact where the target knows it (``Target.mean_norm``: centred spheres,
    empirical measures), else √E‖X₀‖², its upper bound by Jensen."""
    exact = target.mean_norm()
    if exact is not None:
        return float(exact)
    return math.sqrt(second_moment(target, n_mc, generator).value)


def diameter(target) -> float:
    """diam(supp π) for a target known to be compactly supported (``Target.diameter``:
    circles, spheres, empirical measures — for more than 4096 points an upper bound);
    AssumptionFailed otherwise."""
    D = target.diameter()
    if D is not None:
        return float(D)
    raise AssumptionFailed(
        "w1_manifold",
        f"target '{getattr(target, 'kind', type(target).__name__)}' is not known to be "
        "compactly supported (no finite diameter); pass the diameter explicitly",
    )


def trapezoid(y: np.ndarray, x: np.ndarray) -> float:
    return float(np.sum(0.5 * (y[1:] + y[:-1]) * np.diff(x)))
