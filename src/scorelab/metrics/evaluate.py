"""``evaluate``: every metric that applies, each with its finite-sample floor and a CI.

A metric is a registered ``value(x, y)`` with metadata (``contract.MetricSpec``); the one
generic wrapper ``contract.assess`` gives each its floor (the metric between two independent
target samples of the size of ``samples``) and its CI (a bootstrap over resamples of the
samples, or the metric's analytic interval). ``evaluate`` draws the two target samples, runs
the registered metrics that apply in registration order (the built-ins of ``builtin`` first)
and collects the results; see docs/metrics.md, "Adding a metric".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import torch

from .. import registry, threads
from ..display import Table, Tabular
from ..errors import InvalidParameter
from ..progress import tracker
from ..targets import NotAvailable, Target
from . import builtin  # noqa: F401  (registers the built-in metrics, in order)
from ._checks import as_points, positive_int
from .contract import METRIC_COLUMNS, MetricContext, MetricResult, assess, spec_of

F64 = torch.float64
MAX_ABS = 1e100  # larger values overflow the squared distances of OT, MMD and kNN


def __getattr__(name: str):
    if name == "METRICS":  # computed: plugins and users register metrics after this import
        return metric_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def metric_names(default_only: bool = False) -> tuple[str, ...]:
    """The registered metrics, in registration order (``default_only``: those that
    ``evaluate`` runs when no metrics are named)."""
    return tuple(
        nm
        for nm, e in registry.entries("metric").items()
        if not default_only or e.meta.get("default", True)
    )


def check_metric_names(metrics: Sequence[str] | str, field: str = "metrics") -> list[str]:
    """``metrics`` (a name or a list of names) as a list, or ``InvalidParameter`` naming the
    first unknown one and listing the registered metrics."""
    names = [metrics] if isinstance(metrics, str) else list(metrics)
    known = metric_names()
    for nm in names:
        if nm not in known:
            raise InvalidParameter(field, "names an unknown metric", nm, ", ".join(known))
    return names


@dataclass
class Skipped:
    name: str
    reason: str


@dataclass
class Evaluation(Tabular):
    """The result of ``evaluate``: one ``MetricResult`` per metric that applied, and the
    metrics that did not with their reasons.

    ``ev["w2"]`` and ``"w2" in ev`` look a metric up by name; ``str(ev)`` (``table()``) is a
    plain-text table with the notes; ``to_json()`` is ``{name: {"value", "floor", "ci"}}``.

    Attributes:
        results: The metrics, in the order they were computed.
        skipped: The metrics that did not apply (``Skipped(name, reason)``).
        n: The number of samples evaluated.
        target: The target's kind.

    Shown in Jupyter and Rich as a table (``scorelab.display``); ``to_dict()`` and
    ``to_frame()`` give its rows.
    """

    results: list[MetricResult] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    n: int = 0
    target: str = ""

    def __getitem__(self, name: str) -> MetricResult:
        for r in self.results:
            if r.name == name:
                return r
        raise KeyError(name)

    def __contains__(self, name: str) -> bool:
        return any(r.name == name for r in self.results)

    def to_json(self) -> dict:
        """``{name: {"value", "floor", "ci": [lo, hi] | None}, "_skipped": {name: reason}}``."""
        out: dict = {}
        for r in self.results:
            out[r.name] = {
                "value": _num(r.value),
                "floor": _num(r.floor),
                "ci": None if r.ci is None else [_num(r.ci[0]), _num(r.ci[1])],
            }
        out["_skipped"] = {s.name: s.reason for s in self.skipped}
        return out

    def _table(self) -> Table:
        notes = [f"skipped {s.name}: {s.reason}" for s in self.skipped]
        if any(r.floor <= 0 for r in self.results):
            notes.insert(0, "value / floor: — where the floor is ≤ 0 (an unbiased estimator such "
                         "as MMD² scatters around 0 between two target samples)")  # fmt: skip
        title = f"{self.n} samples vs target '{self.target}'"
        return Table(title, METRIC_COLUMNS, [r.row() for r in self.results], notes)

    def table(self) -> str:
        """A plain-text table, then the notes and the skipped metrics with their reasons."""
        rows = [("metric", "value", "floor", "95% CI")]
        for r in self.results:
            ci = "—" if r.ci is None else f"[{r.ci[0]:.4g}, {r.ci[1]:.4g}]"
            rows.append((r.name, f"{r.value:.4g}", f"{r.floor:.4g}", ci))
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        lines = [f"{self.n} samples vs target '{self.target}'"]
        for j, row in enumerate(rows):
            lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
            if j == 0:
                lines.append("  ".join("-" * w for w in widths))
        notes = [f"  {r.name}: {r.note}" for r in self.results if r.note]
        if notes:
            lines += ["", "notes:", *notes]
        if self.skipped:
            lines += ["", "skipped:", *(f"  {s.name}: {s.reason}" for s in self.skipped)]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def _num(v: float) -> float | None:
    return float(v) if v is not None and math.isfinite(v) else None


def evaluate(
    samples,
    target: Target,
    metrics: Sequence[str] | str | None = None,
    n_boot: int = 200,
    generator: torch.Generator | None = None,
    max_points: int = 2000,
    *,
    n_boot_ot: int = 25,
    n_exact_ot: int = 6,
    n_permutations: int = 0,
    progress: bool | str = False,
) -> Evaluation:
    """Every requested metric between ``samples`` and ``target``, each with its finite-sample
    floor and a confidence interval.

    What is exact and what is estimated: each metric's value is computed exactly on the
    samples against a fresh target sample of the same size (e.g. exact optimal transport for
    W1/W2), so it is a finite-sample *estimate* of the distance between the laws. The floor is
    the same metric between two independent target samples of that size — what a perfect
    sampler would score — and the CI is a bootstrap over resamples of ``samples``. A value
    near its floor means the samples cannot be told from the target by that metric at this n.

    Args:
        samples: ``[n, *event_shape]`` (or ``[n, D]``), e.g. ``result.samples``.
        target: The law to compare with; it draws the reference samples (and, for NLL and the
            Gaussian-fit metrics, gives its exact density or moments).
        metrics: Names (``scorelab list metric``) or one name; default: every registered
            default metric that applies to the target, in registration order.
        n_boot: Bootstrap resamples for the CIs.
        generator: Drives every random draw (default: seeded with 0).
        max_points: Caps each side of exact OT and MMD (Sinkhorn: min(max_points, 2000)).
        n_boot_ot: Bootstrap resamples for the Sinkhorn and sliced-W2 CIs (solved together, one
            batch each).
        n_exact_ot: The exact W1/W2 CIs linearise ``n_boot`` resamples by the optimal dual
            potential and solve this many (≥ 3) of them exactly (``_checks.linearised_resamples``).
        n_permutations: When > 0, adds the MMD permutation p-value to its note.
        progress: Show the metrics done (``scorelab.progress``).

    Returns:
        An ``Evaluation``: ``ev["w2"]`` is a ``MetricResult`` (value, floor, ci, note); a
        metric that does not apply is in ``ev.skipped`` with the reason.

    Raises:
        InvalidParameter: An unknown metric, or an explicitly requested one with too few
            samples.

    Examples:
        >>> import scorelab
        >>> target = scorelab.build_target({"kind": "gmm", "preset": "ring8"})
        >>> cosine = {"kind": "cosine", "clip_max": 20.0}
        >>> process = scorelab.build_process({"kind": "vp", "schedule": cosine})
        >>> grid = scorelab.TimeGrid("edm", steps=25)
        >>> score = target.score_model(process)  # the exact score
        >>> result = scorelab.generate(score, process, target.event_shape, sampler="heun",
        ...                            grid=grid, n=2000)
        >>> ev = scorelab.evaluate(result.samples, target, ["w2", "mmd"])
        >>> w2 = ev["w2"]
        >>> w2.floor < w2.value < 2 * w2.floor   # within twice what a perfect sampler scores
        True
    """
    x = _checked_samples(samples, target)
    settings = {
        "n_boot": positive_int("n_boot", n_boot, 10),
        "n_boot_ot": positive_int("n_boot_ot", n_boot_ot, 10),
        "max_points": positive_int("max_points", max_points, 2),
        "n_permutations": positive_int("n_permutations", n_permutations, 0),
        "n_exact_ot": positive_int("n_exact_ot", n_exact_ot, 3),
    }
    explicit = metrics is not None
    names = (
        list(metric_names(default_only=True)) if metrics is None else check_metric_names(metrics)
    )
    registered = registry.entries("metric")
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    n = x.shape[0]
    try:
        y = target.sample(n, g, dtype=F64).reshape(n, -1)
        y2 = target.sample(n, g, dtype=F64).reshape(n, -1)
    except NotAvailable as exc:
        raise InvalidParameter("target", f"cannot be sampled ({exc})", target.kind) from None
    # threads for POT's exact solves (OS threads, outside torch's pool): what the caller
    # allows torch, or SCORELAB_THREADS / --threads
    workers = threads.requested() or torch.get_num_threads()
    ev = Evaluation(n=n, target=target.kind)
    bar = tracker(progress, len(names), "evaluating", "metrics")
    try:
        # torch's work under the thread policy (scorelab.threads: one thread for non-image
        # events): with torch's default of every core, the batched Sinkhorn's small
        # elementwise steps stalled on a busy 2-core machine
        with threads.scoped(None, target.event_shape), ThreadPoolExecutor(workers) as pool:
            c = MetricContext(x, y, y2, target, g, **settings, workers=workers, pool=pool)
            for nm in names:
                bar.update(len(ev.results) + len(ev.skipped), info=f"computing {nm}")
                _run_metric(ev, registered[nm], c, explicit)
    finally:
        bar.update(len(names), info="")
        bar.close()
    return ev


def _checked_samples(samples, target: Target) -> torch.Tensor:
    if not isinstance(target, Target):
        raise InvalidParameter("target", "must be a scorelab Target", type(target).__name__)
    x = as_points(samples, "samples", event_shape=target.event_shape, min_n=2)
    big = float(x.abs().max())
    if big > MAX_ABS:
        raise InvalidParameter(
            "samples",
            f"hold values as large as {big:.3g}: the metrics' squared distances would overflow "
            "float64 (the samples have likely diverged)",
            tuple(x.shape),
            f"|x| ≤ {MAX_ABS:.0e}",
        )
    return x


def _run_metric(ev: Evaluation, e: registry.Entry, c: MetricContext, explicit: bool) -> None:
    """One metric into ``ev`` (a result, or the reason it was skipped)."""
    spec = spec_of(e)
    reason = spec.why_not(c.target, c.D)
    need = spec.min_samples(c.D)
    if reason is None and c.n < need:
        if explicit:
            raise InvalidParameter(
                "samples", f"has too few points for {e.name}", c.n, f"at least {need}"
            )
        reason = f"needs at least {need} samples (got {c.n})"
    if reason is not None:
        ev.skipped.append(Skipped(e.name, reason))
        return
    try:
        ev.results.append(assess(e, c))
    except InvalidParameter as exc:  # e.g. duplicated samples for the kNN estimator
        ev.skipped.append(Skipped(e.name, str(exc)))
