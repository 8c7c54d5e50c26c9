"""``error_budget``: the measured error of a sampling setup split into score, discretisation,
prior and early-stopping parts, each with a paired interval, beside every bound's matching
term (docs/budget.md; the decomposition: docs/theory.md §13)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from .. import threads
from ..display import Column, Table, Tabular
from ..errors import InvalidParameter
from ..grids import TimeGrid
from ..seeding import check_seed
from . import terms
from .chain import (
    LABELS,
    PARTS,
    REMAINDER,
    SWAPS,
    Arm,
    chain,
    fold,
    interaction,
    links,
    parse_order,
)
from .exact import GaussianArms, early_stop_time, oracle_reason
from .samples import PairedMetrics, SampleArms, check_n, groups_for, kl_kind, workers

METRIC_LABELS = {"w2": "W2", "kl": "KL (nats)", "w1": "W1"}
#: how many times finer the resolved reference's grid is: a second-order sampler's error
#: then falls 64×, a first-order one's 8×, and the reference's residual (against a grid half
#: as fine) says how much is left
REFINE = 8


@dataclass
class Setting:
    """Everything an arm needs: the run's pieces and the exact ones."""

    target: object
    process: object
    model: object | None  # the score under test; None: the target's exact score
    exact: object | None  # the target's exact score model (None: it has none)
    sampler: str
    grid: TimeGrid
    params: dict
    n: int
    seed: int
    dtype: torch.dtype
    batch_size: int | None
    refine: int
    t_zero: float


@dataclass
class Budget(Tabular):
    """The result: per metric the total, the parts with their intervals and the arms; the
    folded parts with their reasons; the bounds' terms beside the parts; the settings.

    Shown (Jupyter, Rich) as one row per metric and part — measured value, 95 % interval,
    and each bound's matching term with term / measured — as ``scorelab budget`` prints it;
    ``to_dict()`` is ``to_json()``."""

    method: str  # "closed_form" or "samples"
    order: tuple[str, ...]
    metrics: dict
    folded: dict
    omitted: dict
    bounds: list[dict]
    refused: dict
    reference: dict
    interactions: dict | None
    settings: dict
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def part(self, metric: str, part: str) -> float:
        """The value of one part (``"score"``, …) of one metric (``"w2"``, ``"kl"``)."""
        return self.metrics[metric]["parts"][part]["value"]

    def _table(self) -> Table:
        titles = list(dict.fromkeys(b["title"].split(":")[0] for b in self.bounds))
        cols = [Column("metric", "text"), Column("part", "text"), Column("measured"),
                Column("95% CI", "interval", "ci")]  # fmt: skip
        for j, title in enumerate(titles):
            cols += [Column(f"{title}: term", key=f"bound{j}_term"),
                     Column("term / measured", "ratio", f"bound{j}_ratio")]  # fmt: skip
        rows = []
        for metric, m in self.metrics.items():
            for part in (*PARTS, REMAINDER, "total"):
                entry = m["total"] if part == "total" else m["parts"][part]
                label = "total" if part == "total" else LABELS[part]
                row = [m.get("label", metric), label, entry["value"], entry.get("ci")]
                for title in titles:
                    row += self._bound_cell(metric, part, title)
                rows.append(row)
        notes = [f"{LABELS[p]} not swapped: {why}" for p, why in self.folded.items()]
        notes += [f"{m} omitted: {why}" for m, why in self.omitted.items()]
        return Table(f"error budget ({self.method.replace('_', ' ')})", cols, rows, notes)

    def _bound_cell(self, metric: str, part: str, title: str) -> list:
        for b in self.bounds:
            if b["metric"] == metric and b["title"].split(":")[0] == title:
                cell = b["total"] if part == "total" else b["parts"].get(part)
                return [None, None] if cell is None else [cell["term"], cell["ratio"]]
        return [None, None]

    def to_json(self) -> dict:
        """The budget as written to ``budget.json`` (JSON-ready)."""
        return {
            "method": self.method,
            "order": list(self.order),
            "swaps": {p: SWAPS[p] for p in PARTS},
            "metrics": self.metrics,
            "folded": self.folded,
            "omitted": self.omitted,
            "bounds": self.bounds,
            "refused_bounds": self.refused,
            "reference": self.reference,
            "interactions": self.interactions,
            "settings": self.settings,
            "notes": self.notes,
            "seconds": self.seconds,
        }


def _folded(s: Setting) -> dict[str, str]:
    """The parts whose swap cannot be made or changes nothing, with the reason."""
    out = {}
    if s.exact is None:
        out["score"] = f"target '{s.target.kind}' has no exact score to swap in"
    elif s.model is None:
        out["score"] = "the score is already the target's exact score"
    if not s.target.has_density or getattr(s.target, "singular", False):
        out["early_stopping"] = (
            f"target '{s.target.kind}' has no density: its score is singular at t = 0, so "
            "the early-stopping error stays in the remainder"
        )
    elif s.grid.sigmas is not None:
        out["early_stopping"] = "the grid is a list of noise levels, which fixes where it ends"
    elif float(s.grid.times(s.process)[-1]) <= 0:
        out["early_stopping"] = "the run already ends at t = 0"
    return out


def _closed_form_reason(s: Setting) -> str | None:
    if s.model is not None:
        return "the score under test is not the target's exact score"
    if s.target.gaussian_moments() is None or not s.target.has_density:
        return f"target '{s.target.kind}' is not a Gaussian"
    return oracle_reason(s.sampler, s.process, s.grid, s.params)


def _metrics_on_samples(s: Setting, bounds: dict | None) -> tuple[list[str], dict]:
    metrics, omitted = ["w2"], {}
    kind, why = kl_kind(s.target)
    d = int(np.prod(s.target.event_shape))
    if kind is None:
        omitted["kl"] = why
    elif kind == "gaussian_fit" and s.n < d + 2:
        omitted["kl"] = f"the fitted Gaussian needs n ≥ d + 2 = {d + 2} samples"
    else:
        metrics.append("kl")
    w1 = (bounds or {}).get("w1_manifold", {})
    if w1 and "refused" not in w1:
        metrics.append("w1")
    return metrics, omitted


def _arms_needed(orders: Sequence[tuple[str, ...]], folded: dict) -> list[Arm]:
    seen: list[Arm] = []
    for order in orders:
        for arm in chain(order):
            a = fold(arm, folded)
            if a not in seen:
                seen.append(a)
    return seen


def _first_resolved(order: tuple[str, ...], folded: dict) -> Arm:
    return next(fold(a, folded) for a in chain(order) if "discretisation" in a)


def _chains(orders, values, folded, metrics) -> tuple[dict, dict | None]:
    main = {m: links(orders[0], {a: v[m] for a, v in values.items()}, folded) for m in metrics}
    if len(orders) < 2:
        return main, None
    other = {m: links(orders[1], {a: v[m] for a, v in values.items()}, folded) for m in metrics}
    return main, {m: interaction(main[m], other[m]) for m in metrics}


def _closed_form(s: Setting, orders, folded, log) -> tuple[dict, dict, dict]:
    log("closed form: Gaussian target, exact score, the sampler's exact law")
    g = GaussianArms(s.target, s.process, s.sampler, s.grid, s.params, s.refine)
    values = {arm: g.error(arm) for arm in _arms_needed(orders, folded)}
    residual = g.reference_residual(_first_resolved(orders[0], folded))
    reference = {
        "limit": g.limit,
        "residual": None
        if residual is None
        else {m: {"value": v, "ci": [v, v]} for m, v in residual.items()},
    }
    return values, reference, {"metrics": ["w2", "kl"], "omitted": {}}


def _on_samples(s: Setting, orders, folded, bounds, log) -> tuple[dict, dict, dict]:
    from concurrent.futures import ThreadPoolExecutor

    metrics, omitted = _metrics_on_samples(s, bounds)
    arms = SampleArms(s, log)
    needed = _arms_needed(orders, folded)
    first = _first_resolved(orders[0], folded)
    half = max(1, s.refine // 2)
    log(
        f"{len(needed) + 1} arms of {s.n} samples ({s.sampler}, {s.grid.steps} steps), "
        f"each measured ({', '.join(metrics)}) against one reference sample"
    )
    d = int(np.prod(s.target.event_shape))
    paired = PairedMetrics(arms.reference, s.target, groups_for(s.n, d, kl_kind(s.target)[0]))
    with ThreadPoolExecutor(workers()) as pool:
        futures = {a: paired.submit(pool, arms.samples(a), metrics) for a in needed}
        futures["half"] = paired.submit(pool, arms.samples(first, refine=half), metrics)
        values = {a: {m: f.result() for m, f in fs.items()} for a, fs in futures.items()}
    half_values = values.pop("half")
    residual = {m: half_values[m].minus(values[first][m]) for m in metrics}
    reference = {
        "limit": f"the same sampler on a grid {s.refine}× finer",
        "residual": residual,
        "residual_of": f"the grid {half}× finer",
    }
    info = {"metrics": metrics, "omitted": omitted, "nfe": arms.nfe(Arm())}
    info["groups"] = len(paired.blocks)
    return values, reference, info


def error_budget(
    target,
    process,
    *,
    score=None,
    sampler: str = "heun",
    grid: TimeGrid | None = None,
    params: dict | None = None,
    n: int = 2000,
    seed: int = 0,
    order: str | Sequence[str] | None = None,
    dtype: torch.dtype = torch.float32,
    batch_size: int | None = None,
    refine: int = REFINE,
    bounds: dict | None = None,
    interactions: bool | None = None,
    log: Callable[[str], None] | None = None,
) -> Budget:
    """The error budget of sampling ``target`` under ``process`` with ``sampler`` on ``grid``:
    the measured error (W2, and KL where defined) split into score, discretisation, prior and
    early-stopping parts (docs/budget.md).

    Each part is found by swapping one piece for its exact counterpart along ``order`` — the
    score for the target's exact score, the N-step sampler for the continuous-time law, the
    prior for the exact marginal p_T, stopping at t_min for running on to t = 0 — with every
    random draw held fixed. On a Gaussian target with the exact score and a sampler with a
    Gaussian oracle every part is exact (closed form); otherwise each is estimated on ``n``
    samples per arm with a paired 95 % interval (from disjoint groups of the samples,
    ``samples.GROUPS``).

    Args:
        target: The data law (its exact score is the score part's reference).
        process: The forward process.
        score: The score model under test (None: the target's exact score, so the score part
            is 0).
        sampler: A registered sampler.
        grid: The sampler's time grid.
        params: The sampler's own parameters.
        n: Samples per arm when not in closed form.
        seed: Seeds every draw.
        order: The order of the swaps (default: score, discretisation, prior, early_stopping).
        dtype: The samples' dtype.
        batch_size: Samples per chunk.
        refine: How many times finer the resolved reference's grid is, on samples (and for a
            sampler whose limit has no closed form).
        bounds: ``bounds.all_bounds``' result to put beside the parts (computed when None).
        interactions: Also run the reversed order and report each part's difference (default:
            in closed form only).
        log: Receives progress lines.

    Returns:
        A ``Budget``: per metric the total, the parts with their intervals and the arms, and
        the bounds' terms beside the parts.

    Examples:
        Paper A's Gaussian, exact score, 25 steps of the exponential integrator (closed form):

        >>> import scorelab
        >>> from scorelab.budget import error_budget
        >>> target = scorelab.build_target({"kind": "gaussian", "dim": 10, "mean": 1.0, "cov": 0.5})
        >>> linear = {"kind": "parametric", "a": 0.0}  # paper A's β_a at a = 0
        >>> process = scorelab.build_process({"kind": "vp", "schedule": linear})
        >>> b = error_budget(target, process, sampler="exponential_integrator",
        ...                  grid=scorelab.TimeGrid("uniform", steps=25))
        >>> b.method, round(b.metrics["w2"]["parts"]["discretisation"]["value"], 4)
        ('closed_form', 0.1793)
    """
    t_start = time.perf_counter()
    s = _setting(
        target,
        process,
        score=score,
        sampler=sampler,
        grid=grid,
        params=params,
        n=n,
        seed=seed,
        dtype=dtype,
        batch_size=batch_size,
        refine=refine,
    )
    main = parse_order(order)
    with threads.scoped(None, target.event_shape):  # one thread for small events
        budget = _budget(s, main, bounds, interactions, log or (lambda msg: None))
    budget.seconds = time.perf_counter() - t_start
    return budget


def _budget(s: Setting, main: tuple[str, ...], bounds, interactions, log) -> Budget:
    folded = _folded(s)
    closed = _closed_form_reason(s)
    if interactions is None:
        interactions = closed is None
    orders = [main, tuple(reversed(main))] if interactions else [main]
    if bounds is None:
        bounds = _bounds(s)
    if closed is None:
        values, reference, info = _closed_form(s, orders, folded, log)
    else:
        values, reference, info = _on_samples(s, orders, folded, bounds, log)
    metrics, inter = _chains(orders, values, folded, info["metrics"])
    for m in metrics:
        metrics[m]["label"] = METRIC_LABELS[m]
    rows, refused = terms.beside(bounds, metrics)
    return Budget(
        method="closed_form" if closed is None else "samples",
        order=main,
        metrics=metrics,
        folded=folded,
        omitted=info["omitted"],
        bounds=rows,
        refused=refused,
        reference=reference,
        interactions=inter,
        settings=_settings(s, info, closed),
        notes=_notes(s, closed, interactions),
    )


def _setting(target, process, **kw) -> Setting:
    """The checked setting (every bad value named by its argument)."""
    from ..sampling import get_sampler

    get_sampler(kw["sampler"], process)  # an unknown or inapplicable sampler, by name
    v = kw["refine"]
    if isinstance(v, bool) or not isinstance(v, int) or v < 2:
        raise InvalidParameter("refine", "must be an integer ≥ 2", v)
    grid = kw.pop("grid") or TimeGrid()
    return Setting(
        target=target,
        process=process,
        model=kw.pop("score"),
        exact=target.score_model(process) if target.has_score else None,
        grid=grid,
        params=dict(kw.pop("params") or {}),
        n=check_n(kw.pop("n")),
        seed=check_seed(kw.pop("seed")),
        t_zero=early_stop_time(process, float(grid.times(process)[-1])),
        **kw,
    )


def _bounds(s: Setting) -> dict:
    from ..bounds import all_bounds

    model = s.model if (s.model is not None and s.target.has_score) else None
    return all_bounds(
        s.target,
        s.process,
        s.grid.steps,
        score_model=model,
        generator=torch.Generator().manual_seed(s.seed),
    )


def _settings(s: Setting, info: dict, closed: str | None) -> dict:
    times = s.grid.times(s.process)
    return {
        "sampler": s.sampler,
        "params": s.params,
        "steps": int(s.grid.steps),
        "grid": s.grid.kind if s.grid.sigmas is None else "sigmas",
        "final": s.grid.final,
        "t_max": float(times[0]),
        "t_min": float(times[-1]),
        "t_zero": 0.0 if closed is None else s.t_zero,
        "refine": s.refine,
        "n": s.n,
        "seed": s.seed,
        "groups": info.get("groups"),
        "nfe": info.get("nfe"),
        "score": "exact" if s.model is None else "model",
        "why_not_closed_form": closed,
    }


def _notes(s: Setting, closed: str | None, interactions: bool) -> list[str]:
    notes = []
    if closed is None:
        notes.append(
            "Closed form: every arm's output law is Gaussian; its KL(target ‖ output) and W2 "
            "are exact, so the parts have no sampling error (their intervals are points)."
        )
    else:
        notes.append(
            f"On samples ({closed}): {s.n} samples per arm, coupled through the same prior "
            "draw z of each sample (and the same noise on the same grid); every arm against "
            "one reference sample; 95 % intervals from the spread over disjoint groups of the "
            "samples (independent replicates of the chain): t·sd/√G for an arm's error, "
            "t·sd for a part (a difference of coupled arms, whose spread shrinks little with n)."
        )
        notes.append(
            f"t → 0 on samples is t = {s.t_zero:.3g}, where σ is 1000× below σ(t_min): the "
            "error left below it is inside the remainder."
        )
    if interactions:
        notes.append(
            "Interactions: each part in this order minus the same part in the reversed order."
        )
    return notes
