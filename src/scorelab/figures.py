"""The figure of a metric against a swept key, one code for sweeps, budgets and audits.

:func:`metric_panel` draws one panel — one or more series of a metric against a key, with the
finite-sample floor — and decides what a reader of a paper expects:

* **the axis scale** (:func:`axis_scale`): log where the key is a count or a scale (steps,
  NFE, n, α, σ, training steps, learning rates — read from its name), or where its values are
  positive and span a decade or more; linear otherwise; categorical for text;
* **the interval over seeds** (:func:`seed_interval`): a Student-t interval that respects the
  metric's range (``value_range`` of its registration): for a metric bounded below whose
  values all lie above the bound, a t interval of log(value − bound), so it never crosses the
  bound; otherwise the t interval clipped to the range, with the reason;
* **few seeds**: below :data:`FEW_SEEDS` seeds every seed's value is drawn as a point beside
  the centre line, so two or three seeds are seen as what they are.

:func:`lead_rows` picks the best cell per metric (by its registration's ``lower_is_better``;
closest to the floor where neither direction is better) against the floor, and
:func:`sweep_figure` lays the panels of every metric × swept key out in a grid.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

#: fewer seeds than this: every seed's value is drawn as a point
FEW_SEEDS = 5
#: the keys whose values are counts or scales (the last dotted part of the key), drawn on a log
#: axis: steps, NFE, sample counts, α, σ, learning rates, sizes
SCALE_KEY = re.compile(
    r"(?:^|_)(?:steps|nfe|n|alpha|α|sigma|σ|lr|learning_rate|batch_size|epochs|iterations|"
    r"width|hidden|dim|samples)(?:_\w+)?$|^(?:n|d)$|^n_\w+$"
)
#: positive values spanning this ratio or more are drawn on a log axis, whatever the key
DECADE = 10.0


def axis_scale(key: str, values: Sequence) -> str:
    """ "log", "linear" or "category" for a swept key's values (see the module)."""
    if not values or not all(_is_number(v) for v in values):
        return "category"
    xs = [float(v) for v in values]
    if min(xs) <= 0:
        return "linear"
    name = key.rsplit(".", 1)[-1]
    if len(set(xs)) >= 2 and (SCALE_KEY.search(name) or max(xs) / min(xs) >= DECADE):
        return "log"
    return "linear"


def _is_number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


@dataclass(frozen=True)
class Interval:
    """The centre of a metric's per-seed values and its 95 % interval; ``method`` says how
    it was made ("t", "t on log(value − lower)", "t, clipped at …", "one seed")."""

    centre: float
    lo: float
    hi: float
    method: str
    seeds: int


def seed_interval(
    values: Sequence[float],
    value_range: tuple[float | None, float | None] = (None, None),
    level: float = 0.95,
) -> Interval:
    """The 95 % interval over seeds of a metric with range ``value_range`` (see the module).

    Values all above a lower bound L: the t interval of log(v − L) mapped back, centred on
    L + the geometric mean of v − L; otherwise the arithmetic mean and its t interval, clipped
    to the range. One seed: the value, with no width."""
    from scipy import stats

    xs = [float(v) for v in values if _is_number(v)]
    n = len(xs)
    if n == 0:
        raise ValueError("no finite values")
    lower, upper = value_range
    if n == 1:
        return Interval(xs[0], xs[0], xs[0], "one seed", 1)
    t = float(stats.t.ppf(0.5 + level / 2, n - 1))
    if lower is not None and min(xs) > lower:
        logs = [math.log(v - lower) for v in xs]
        m = sum(logs) / n
        half = t * _sd(logs) / math.sqrt(n)
        lo, hi = lower + math.exp(m - half), lower + math.exp(m + half)
        method = "t on log(value)" if lower == 0 else f"t on log(value − {lower:g})"
        if upper is not None and hi > upper:
            hi, method = upper, method + f", clipped at {upper:g}"
        return Interval(lower + math.exp(m), lo, hi, method, n)
    mean = sum(xs) / n
    half = t * _sd(xs) / math.sqrt(n)
    lo, hi, method = mean - half, mean + half, "t"
    if lower is not None and lo < lower:
        lo, method = lower, f"t, clipped at {lower:g} (the metric's lower bound)"
    if upper is not None and hi > upper:
        hi, method = upper, method + f", clipped at {upper:g} (its upper bound)"
    return Interval(mean, lo, hi, method, n)


def _sd(xs: Sequence[float]) -> float:
    m = sum(xs) / len(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


# --- what the registry knows of a metric --------------------------------------------------------


def metric_meta(name: str) -> tuple[tuple[float | None, float | None], bool | None]:
    """(value_range, lower_is_better) of a registered metric; a name with a prefix
    ("heun/w2") is its last part; an unregistered name: no range, lower is better."""
    from . import registry
    from .metrics.contract import spec_of

    base = name.rsplit("/", 1)[-1]
    entry = registry.entries("metric").get(base)
    if entry is None:
        return (None, None), True
    spec = spec_of(entry)
    return tuple(spec.value_range), spec.lower_is_better


# --- one panel --------------------------------------------------------------------------------


@dataclass
class Series:
    """One line of a panel: per x, the per-seed values (``points``) or, where the interval
    was computed elsewhere (a bootstrap), one value with ``intervals[x] = (lo, hi)``."""

    label: str
    points: Mapping[object, Sequence[float]]
    intervals: Mapping[object, tuple[float, float]] | None = None
    color: str | None = None
    style: str = "-"


@dataclass
class Panel:
    """What :func:`metric_panel` drew: the axis scales and each series' intervals."""

    xscale: str
    yscale: str
    intervals: dict[str, dict[object, Interval]] = field(default_factory=dict)


def metric_panel(
    ax,
    series: Sequence[Series],
    *,
    key: str,
    metric: str,
    floor: Mapping[object, float] | None = None,
    value_range: tuple[float | None, float | None] = (None, None),
    xscale: str | None = None,
    yscale: str | None = None,
    title: str | None = None,
) -> Panel:
    """Draw ``metric`` against ``key`` on the matplotlib axes ``ax``: per series the centre
    over seeds with its interval (:func:`seed_interval`, or the series' own ``intervals``),
    every seed as a point when there are fewer than ``FEW_SEEDS``, and the floor dashed.

    ``xscale`` (default :func:`axis_scale`) and ``yscale`` ("log" by default where every
    value and interval end is positive and they span a decade; "symlog" for parts that may
    be negative; else "linear") may be forced. Returns the scales and the intervals drawn."""
    xs_all = sorted({x for s in series for x in s.points}, key=_order)
    xscale = xscale or axis_scale(key, xs_all)
    pos = {x: (i if xscale == "category" else float(x)) for i, x in enumerate(xs_all)}
    out = Panel(xscale, "linear")
    drawn: list[float] = []
    for j, s in enumerate(series):
        # an x without a finite value (a KL that is infinite, a metric not measured) is left out
        xs = sorted((x for x in s.points if any(_is_number(v) for v in s.points[x])), key=_order)
        if not xs:
            continue
        ivs = {x: _interval(s, x, value_range) for x in xs}
        out.intervals[s.label] = ivs
        px = [pos[x] for x in xs]
        color = s.color or f"C{j}"
        ax.fill_between(
            px, [ivs[x].lo for x in xs], [ivs[x].hi for x in xs], color=color, alpha=0.15, lw=0
        )
        ax.plot(px, [ivs[x].centre for x in xs], ls=s.style, marker="s", ms=3.5, color=color,
                label=s.label)  # fmt: skip
        few = max(len(s.points[x]) for x in xs) < FEW_SEEDS
        for x in xs:
            vals = [float(v) for v in s.points[x] if _is_number(v)]
            if few and len(vals) > 1:
                ax.plot([pos[x]] * len(vals), vals, ls="none", marker="o", ms=5, mfc="none",
                        mew=0.9, color=color, alpha=0.9)  # fmt: skip
            drawn += [*vals, ivs[x].lo, ivs[x].hi]
    if floor:
        fx = sorted((x for x in floor if x in pos), key=_order)
        ax.plot([pos[x] for x in fx], [floor[x] for x in fx], "k--", lw=1,
                label="finite-sample floor")  # fmt: skip
        drawn += [floor[x] for x in fx]
    out.yscale = yscale or _value_scale(drawn)
    _axes(ax, out, xs_all, pos, key, metric, title)
    return out


def _interval(s: Series, x, value_range) -> Interval:
    vals = [float(v) for v in s.points[x] if _is_number(v)]
    if s.intervals is not None and x in s.intervals:
        lo, hi = s.intervals[x]
        centre = sum(vals) / len(vals)
        return Interval(centre, float(lo), float(hi), "given", len(vals))
    return seed_interval(vals, value_range)


def _value_scale(values: Sequence[float]) -> str:
    vals = [v for v in values if _is_number(v)]
    if vals and min(vals) > 0 and max(vals) / min(vals) >= DECADE:
        return "log"
    return "linear"


def _axes(ax, out: Panel, xs_all, pos, key: str, metric: str, title: str | None) -> None:
    if out.yscale == "symlog":
        ax.axhline(0.0, color="black", lw=0.5)
    elif out.yscale == "log":
        ax.set_yscale("log")
    if out.xscale == "log":
        ax.set_xscale("log")
        ax.minorticks_off()
    ax.set_xticks([pos[x] for x in xs_all], [_tick(x) for x in xs_all])
    ax.set_xlabel(key + (" (log)" if out.xscale == "log" else ""))
    ax.set_ylabel(metric + (" (log)" if out.yscale == "log" else ""))
    ax.grid(alpha=0.25, lw=0.5)
    if title:
        ax.set_title(title, fontsize=9)


def _order(x):
    return (0, float(x), "") if _is_number(x) else (1, 0.0, str(x))


def _tick(x) -> str:
    return f"{x:g}" if _is_number(x) else str(x)


# --- a sweep's table ---------------------------------------------------------------------------


def by_cell(rows: Sequence[dict], keys: Sequence[str], column: str) -> dict[tuple, list[float]]:
    """The finite values of ``column`` per combination of the swept keys' values (over
    seeds), among the rows whose status is "done"."""
    out: dict[tuple, list[float]] = defaultdict(list)
    for r in rows:
        v = r.get(column)
        if r.get("status", "done") == "done" and _is_number(v):
            out[tuple(r.get(k) for k in keys)].append(float(v))
    return out


def lead_rows(
    rows: Sequence[dict],
    keys: Sequence[str],
    metrics: Sequence[str],
    meta: Callable[[str], tuple] = metric_meta,
) -> list[dict]:
    """Per metric, its best cell: the swept values whose centre over seeds is lowest (or
    highest, or closest to the floor, by the metric's ``lower_is_better``), with the
    interval, the floor's mean over those seeds, centre / floor, the seeds, the runner-up
    cell and whether the best cell's interval excludes the runner-up's centre
    (``separated``; None with one cell)."""
    from .display import ratio

    out = []
    for metric in metrics:
        value_range, lower_is_better = meta(metric)
        cells = by_cell(rows, keys, metric)
        floors = by_cell(rows, keys, f"{metric}_floor")
        if not cells:
            continue
        ivs = {c: seed_interval(v, value_range) for c, v in cells.items()}
        fl = {c: sum(floors[c]) / len(floors[c]) for c in cells if floors.get(c)}

        def score(c, ivs=ivs, fl=fl, lib=lower_is_better):
            if lib is None:
                return abs(ivs[c].centre - fl[c]) if c in fl else math.inf
            return ivs[c].centre if lib else -ivs[c].centre

        ranked = sorted(cells, key=lambda c: (score(c), _order(c[0]) if c else 0))
        best = ranked[0]
        iv, f = ivs[best], fl.get(best)
        second = ranked[1] if len(ranked) > 1 else None
        separated = None if second is None else not iv.lo <= ivs[second].centre <= iv.hi
        out.append({
            "metric": metric,
            "best": ", ".join(f"{k}={v}" for k, v in zip(keys, best, strict=True)) or "—",
            "values": dict(zip(keys, best, strict=True)),
            "centre": iv.centre, "ci": (iv.lo, iv.hi), "interval": iv.method,
            "floor": f, "ratio": ratio(iv.centre, f), "seeds": iv.seeds,
            "direction": {True: "lower", False: "higher", None: "closest to the floor"}[
                lower_is_better],
            "runner_up": None if second is None else ", ".join(
                f"{k}={v}" for k, v in zip(keys, second, strict=True)),
            "separated": separated,
        })  # fmt: skip
    return out


def sweep_panels(
    rows: Sequence[dict], keys: Sequence[str], metric: str, key: str
) -> tuple[list[Series], dict]:
    """The series of ``metric`` against ``key`` (one per combination of the other keys) and
    the floor's mean per value of ``key``."""
    others = [k for k in keys if k != key]
    lower = metric_meta(metric)[0][0]
    centre = "mean over seeds" if lower is None else "geometric mean over seeds"
    series: dict[str, dict] = defaultdict(lambda: defaultdict(list))
    floors: dict = defaultdict(list)
    for r in rows:
        v = r.get(metric)
        if r.get("status", "done") != "done" or not _is_number(v):
            continue
        label = ", ".join(f"{k}={r.get(k)}" for k in others) or centre
        series[label][r.get(key)].append(float(v))
        f = r.get(f"{metric}_floor")
        if _is_number(f):
            floors[r.get(key)].append(float(f))
    fmean = {x: sum(v) / len(v) for x, v in floors.items()}
    return [Series(lab, dict(pts)) for lab, pts in series.items()], fmean


def panel_grid(n: int, ncols: int = 3, size: tuple[float, float] = (4.0, 3.0)):
    """A figure of ``n`` panels in rows of ``ncols`` (fewer when n is smaller); returns
    (figure, the n axes); the unused axes are hidden."""
    from .report import _plt

    plt = _plt()
    ncols = max(1, min(ncols, n))
    nrows = max(1, math.ceil(n / ncols))
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False
    )
    flat = [a for row in axes for a in row]
    for a in flat[n:]:
        a.set_visible(False)
    return fig, flat[:n]


def sweep_figure(
    rows: Sequence[dict], keys: Sequence[str], metrics: Sequence[str], path: Path, ncols: int = 3
) -> Path | None:
    """Every metric against every swept key, one panel each in a grid of ``ncols`` columns,
    lettered (a), (b), …; returns the PNG's path (None: nothing to draw)."""
    from .report import save_figure

    pairs = [(m, k) for m in metrics for k in keys if by_cell(rows, [k], m)]
    if not pairs:
        return None
    fig, axes = panel_grid(len(pairs), ncols)
    for i, (ax, (metric, key)) in enumerate(zip(axes, pairs, strict=True)):
        series, floor = sweep_panels(rows, keys, metric, key)
        value_range, _ = metric_meta(metric)
        metric_panel(ax, series, key=key, metric=metric, floor=floor, value_range=value_range,
                     title=f"({_letter(i)}) {metric}")  # fmt: skip
        if len(series) > 1 or floor:
            ax.legend(fontsize=6)
    fig.tight_layout()
    return save_figure(fig, Path(path))


def _letter(i: int) -> str:
    return chr(ord("a") + i) if i < 26 else str(i + 1)


__all__ = [
    "FEW_SEEDS",
    "Interval",
    "Panel",
    "Series",
    "axis_scale",
    "by_cell",
    "lead_rows",
    "metric_meta",
    "metric_panel",
    "panel_grid",
    "seed_interval",
    "sweep_figure",
    "sweep_panels",
]
