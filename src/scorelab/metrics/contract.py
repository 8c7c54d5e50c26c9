"""A metric is ``value(x, y) -> float`` plus metadata; ``assess`` gives every metric its floor
and its CI.

A registered metric is a function of two sample sets, ``x`` (the generated samples, ``[n, D]``
float64) and ``y`` (a target sample of the same size), that returns a number. Its keyword
arguments without defaults are supplied by ``evaluate``: those named in the registration's
``context`` (``context=("target",)``) from the ``MetricContext``, and those that its
``options`` hook computes once per evaluation (random directions, kernel bandwidths, the
target's moments). Everything else ``evaluate`` needs is metadata, the registration's
keywords (``MetricSpec``).

The one generic wrapper, ``assess``, then computes for every metric, built-in or plugin:

* **value**: ``value(x, y)``;
* **floor**: ``value(y2, y)``, the same metric between two independent target samples of the
  size of ``x`` (for a metric against a closed form, which ignores ``y``: the metric of one
  target sample), the finite-sample bias of the estimator;
* **CI (95 %)**: a bootstrap over resamples of ``x`` with ``y`` held fixed, percentile or
  basic (bias-corrected) as the metadata says, ``value(x[i], y)`` per resample of row indices
  ``i``; or an analytic interval that the metric supplies.

A metric that duplicated points would bias (kNN, OT), or that can solve all resamples at once
(batched Sinkhorn, linearised exact OT), supplies a fast path (``resample``): a function of the
context and the ``Resamples`` (index and multiplicity forms of the same draws) that returns the
value and the replicates together. The draws of every metric come from the context's
generator, in a fixed order: the subsampling to ``max_points``, then ``options``, then the
resamples (drawn when first read), then whatever the note reads.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import torch

from .. import registry
from ..display import Column, Table, Tabular, ratio
from ..errors import ScorelabError
from ..targets import Target
from ._checks import basic_ci, percentile_ci, subsample

CI_KINDS = ("percentile", "basic")
RESAMPLE_COUNTS = ("n_boot", "n_boot_ot")


#: the columns of a metric's row, as the command line prints them
METRIC_COLUMNS = [
    Column("metric", "text"),
    Column("value"),
    Column("95% CI", "interval", "ci"),
    Column("floor"),
    Column("value / floor", "ratio", "ratio"),
]


@dataclass
class MetricResult(Tabular):
    """One metric's reading of a sample set.

    Attributes:
        name: The metric's registered name.
        value: The metric between the samples and a target sample of the same size (an
            estimate of the distance between the laws; MMD² is unbiased and may be < 0).
        floor: The same metric between two independent target samples of that size: what a
            perfect sampler scores at this n.
        ci: A 95 % confidence interval for ``value`` (a bootstrap over the samples), or None
            where the metric has none.
        note: How the value, floor and CI were computed.

    Shown in Jupyter and Rich as a table (``scorelab.display``); ``to_dict()`` and
    ``to_frame()`` give its rows.
    """

    name: str
    value: float
    floor: float
    ci: tuple[float, float] | None
    note: str = ""

    def row(self) -> list:
        """(metric, value, CI, floor, value / floor): the row of ``METRIC_COLUMNS``."""
        return [self.name, self.value, self.ci, self.floor, ratio(self.value, self.floor)]

    def to_json(self) -> dict:
        """``{"name", "value", "floor", "ci": [lo, hi] | None, "note"}`` (non-finite: None)."""
        ci = None if self.ci is None else [_finite(self.ci[0]), _finite(self.ci[1])]
        return {
            "name": self.name, "value": _finite(self.value), "floor": _finite(self.floor),
            "ci": ci, "note": self.note,
        }  # fmt: skip

    def _table(self) -> Table:
        return Table(self.name, METRIC_COLUMNS, [self.row()], [self.note] if self.note else [])


def _finite(v) -> float | None:
    return float(v) if v is not None and math.isfinite(v) else None


@dataclass
class MetricContext:
    """What ``evaluate`` hands a metric's hooks: the samples, two independent target samples
    of the same size (the reference ``y`` and the floor's ``y2``; inside ``assess`` all three
    subsampled to the metric's ``max_points``), the whole reference sample, the target, the
    generator that drives every random draw, and ``evaluate``'s settings."""

    x: torch.Tensor  # samples [n, D], float64
    y: torch.Tensor  # target sample [n, D] (reference)
    y2: torch.Tensor  # independent target sample [n, D] (for floors)
    target: Target
    g: torch.Generator
    n_boot: int  # bootstrap resamples for the CIs
    n_boot_ot: int  # ... for the Sinkhorn and sliced-W2 CIs
    max_points: int  # cap per side of exact OT and MMD
    n_permutations: int  # MMD permutation test size (0: none)
    n_exact_ot: int = 6  # resamples solved exactly by the exact W1/W2 CIs
    workers: int = 1  # threads for independent exact OT solves
    reference: torch.Tensor | None = None  # the whole reference sample (y before subsampling)
    pool: Executor | None = None  # `workers` threads for solves that release the GIL

    def __post_init__(self):
        if self.reference is None:
            self.reference = self.y

    @property
    def n(self) -> int:
        return self.x.shape[0]

    @property
    def D(self) -> int:
        return self.x.shape[1]

    def boot_index(self, B: int) -> torch.Tensor:
        """``[B, n]`` row indices of B resamples of the samples with replacement."""
        return torch.randint(0, self.n, (B, self.n), generator=self.g)


class Resamples:
    """B bootstrap resamples of n points with replacement, drawn from the generator when
    first read: as row indices (``index``, ``[B, n]``) or as multiplicities (``counts``,
    ``[B, n]`` float64, the same draws). A fast path that draws something else first
    (MMD's permutation test) reads them after it, so the order of draws is its own."""

    def __init__(self, n: int, B: int, generator: torch.Generator):
        self.n, self.B, self._g = n, B, generator

    @functools.cached_property
    def index(self) -> torch.Tensor:
        return torch.randint(0, self.n, (self.B, self.n), generator=self._g)

    @functools.cached_property
    def counts(self) -> torch.Tensor:
        idx = self.index
        counts = torch.zeros(self.B, self.n, dtype=torch.float64)
        return counts.scatter_add_(1, idx, torch.ones_like(idx, dtype=torch.float64))


@dataclass(frozen=True)
class MetricSpec:
    """A metric's metadata: its registration keywords, with their defaults.

    Applicability: ``min_n`` (the fewest samples, a number or a function of the dimension d),
    ``needs`` (``(target, d) -> reason | None``), ``needs_density`` (the target's exact
    log-density), ``default`` (run when no metrics are named).
    Meaning: ``lower_is_better`` (True, False, or None: closest to the floor is best),
    ``value_range`` ((lo, hi), None where unbounded).
    Floor and CI: ``floor`` (whether the floor applies), ``ci`` ("percentile", "basic", or a
    function ``(x, y, **kw) -> (lo, hi)``: an analytic interval), ``resamples`` (which of
    evaluate's counts sets B: "n_boot" or "n_boot_ot"), ``max_points`` (cap per side: False,
    True for evaluate's ``max_points``, or a number, capped by it too).
    Hooks: ``options`` (``(context) -> {keyword: value}``), ``resample`` (the fast path
    ``(context, resamples, **kw) -> (value, replicates[, note keywords])``),
    ``concurrent_floor`` (the floor runs on the context's pool beside the value: for solvers
    that release the GIL), ``note`` (a string, or ``(context, **kw) -> str``; default: what
    the floor and CI are)."""

    min_n: int | Callable[[int], int] = 1
    needs: Callable[[Target, int], str | None] | None = None
    needs_density: bool = False
    default: bool = True
    lower_is_better: bool | None = True
    value_range: tuple[float | None, float | None] = (None, None)
    floor: bool = True
    ci: str | Callable[..., tuple[float, float]] = "percentile"
    resamples: str = "n_boot"
    max_points: bool | int = False
    options: Callable[[MetricContext], Mapping[str, Any]] | None = None
    resample: Callable[..., tuple] | None = None
    concurrent_floor: bool = False
    note: str | Callable[..., str] | None = None

    def min_samples(self, d: int) -> int:
        return int(self.min_n(d) if callable(self.min_n) else self.min_n)

    def why_not(self, target: Target, d: int) -> str | None:
        """Why the metric does not apply to ``target`` in dimension d (None: it applies)."""
        if self.needs_density and not target.has_density:
            return f"target '{target.kind}' has no known density"
        return None if self.needs is None else self.needs(target, d)


_FIELDS = tuple(f.name for f in dataclasses.fields(MetricSpec))


def spec_of(e: registry.Entry) -> MetricSpec:
    """The metadata of a registered metric, checked: unknown keywords and values are errors
    that name the metric."""
    unknown = sorted(set(e.meta) - set(_FIELDS))
    if unknown:
        raise ScorelabError(
            f"metric '{e.name}': unknown registration keyword {unknown[0]!r}; "
            f"allowed: {', '.join(_FIELDS)}"
        )
    spec = MetricSpec(**e.meta)
    problem = _bad_value(spec)
    if problem is not None:
        raise ScorelabError(f"metric '{e.name}': {problem}")
    _check_value_function(e)
    return spec


def _bad_value(spec: MetricSpec) -> str | None:
    if not callable(spec.ci) and spec.ci not in CI_KINDS:
        return f"ci={spec.ci!r}; allowed: {', '.join(CI_KINDS)} or a function"
    if spec.resamples not in RESAMPLE_COUNTS:
        return f"resamples={spec.resamples!r}; allowed: {', '.join(RESAMPLE_COUNTS)}"
    mp = spec.max_points
    if not isinstance(mp, bool) and not (isinstance(mp, int) and mp >= 2):
        return f"max_points={mp!r}; allowed: True, False or an integer ≥ 2"
    if spec.lower_is_better not in (True, False, None):
        return f"lower_is_better={spec.lower_is_better!r}; allowed: True, False, None"
    return None


def _check_value_function(e: registry.Entry) -> None:
    try:
        params = list(inspect.signature(e.obj).parameters.values())
    except (TypeError, ValueError):
        return
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(positional) < 2 and not any(p.kind == p.VAR_POSITIONAL for p in params):
        raise ScorelabError(
            f"metric '{e.name}' takes {len(positional)} positional argument(s); a metric is "
            "value(x, y) -> float, x the samples and y a target sample (docs/metrics.md, "
            "'Adding a metric')"
        )


def assess(e: registry.Entry, c: MetricContext) -> MetricResult:
    """The registered metric ``e`` on the context: value, floor and CI (see the module)."""
    spec = spec_of(e)
    c = _subsampled(c, spec)
    kw = {name: getattr(c, name) for name in e.context}
    if spec.options is not None:
        kw.update(spec.options(c))
    value_of = functools.partial(_number, e.obj, kw)
    floor_job = None
    if spec.floor and spec.concurrent_floor and c.pool is not None:
        floor_job = c.pool.submit(value_of, c.y2, c.y)
    value, ci, details = _value_and_ci(spec, value_of, c, kw)
    if not spec.floor:
        floor = math.nan
    else:
        floor = floor_job.result() if floor_job is not None else value_of(c.y2, c.y)
    if callable(spec.note):
        note = spec.note(c, **kw, **details)
    else:
        note = spec.note if spec.note is not None else _generic_note(spec, c)
    return MetricResult(e.name, value, floor, ci, note)


def _number(f: Callable, kw: Mapping[str, Any], x: torch.Tensor, y: torch.Tensor) -> float:
    return float(f(x, y, **kw))


def _subsampled(c: MetricContext, spec: MetricSpec) -> MetricContext:
    """The context with x, y and y2 drawn down to the metric's cap per side, in that order."""
    if spec.max_points is False:
        return c
    cap = c.max_points if spec.max_points is True else min(int(spec.max_points), c.max_points)
    x, y, y2 = (subsample(z, cap, c.g) for z in (c.x, c.y, c.y2))
    return dataclasses.replace(c, x=x, y=y, y2=y2, reference=c.reference)


def _value_and_ci(
    spec: MetricSpec, value_of: Callable, c: MetricContext, kw: Mapping[str, Any]
) -> tuple[float, tuple[float, float] | None, Mapping[str, Any]]:
    if callable(spec.ci):  # analytic interval: no resamples
        lo, hi = spec.ci(c.x, c.y, **kw)
        return value_of(c.x, c.y), (float(lo), float(hi)), {}
    R = Resamples(c.n, getattr(c, spec.resamples), c.g)
    details: Mapping[str, Any] = {}
    if spec.resample is not None:
        out = spec.resample(c, R, **kw)
        value, replicates = float(out[0]), out[1]
        if len(out) > 2:
            details = out[2]
    else:
        replicates = [value_of(c.x[i], c.y) for i in R.index]
        value = value_of(c.x, c.y)
    ci = basic_ci(value, replicates) if spec.ci == "basic" else percentile_ci(replicates)
    return value, ci, details


def ci_text(spec: MetricSpec, c: MetricContext) -> str:
    """ "CI: <kind> bootstrap, B resamples of the samples" for a bootstrap interval."""
    kind = "basic (bias-corrected)" if spec.ci == "basic" else "percentile"
    return f"CI: {kind} bootstrap, {getattr(c, spec.resamples)} resamples of the samples"


def _generic_note(spec: MetricSpec, c: MetricContext) -> str:
    floor = "floor: two target samples" if spec.floor else "no floor"
    ci = "CI: analytic" if callable(spec.ci) else ci_text(spec, c)
    return f"{floor}; {ci}"
