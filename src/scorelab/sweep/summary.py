"""A sweep's summary: one row per cell (summary.csv, summary.json) and a report: the best cell
per metric against its floor, then every metric against every swept key in one grid of panels
(``scorelab.figures``: per-seed points, an interval over seeds within the metric's range, log
axes for counts and scales), then the table of cells."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from ..storage import atomic_write, write_json

_SUFFIXES = ("_floor", "_ci_lo", "_ci_hi")


def rows(outcome) -> list[dict]:
    """One flat row per cell, in the sweep's order: swept values, seed, status, wall time,
    every metric (value, floor, CI), error, the cell's hash."""
    out = []
    for cell in outcome.cells:
        rec = outcome.records.get(cell.key) or {}
        row = {**cell.values, "seed": cell.seed, "status": rec.get("status", "missing")}
        row["seconds"] = rec.get("seconds")
        row.update(rec.get("metrics") or {})
        row["error"] = rec.get("error")
        row["cell"] = cell.key
        out.append(row)
    return out


def write_summary(outcome, spec: dict) -> dict[str, Path]:
    table = rows(outcome)
    columns: list[str] = []
    for row in table:
        columns += [k for k in row if k not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for row in table:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    out = outcome.out_dir
    paths = {
        "csv": atomic_write(out / "summary.csv", lambda tmp: Path(tmp).write_text(buf.getvalue())),
        "json": write_json(out / "summary.json", {**spec, "cells": table}),
    }
    keys = list(outcome.cells[0].values) if outcome.cells else []
    paths["report"] = _report(outcome, table, keys, spec)
    return paths


def seed_ci(values: list[float]) -> tuple[float, float, float]:
    """Mean and a 95 % Student-t interval over seeds (the interval is the mean alone for one
    seed)."""
    from scipy import stats

    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, mean, mean
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
    return mean, mean - half, mean + half


def _metric_names(table: list[dict], keys: list[str]) -> list[str]:
    skip = {*keys, "seed", "status", "seconds", "error", "cell"}
    names = []
    for row in table:
        for k, v in row.items():
            if k in skip or k.endswith(_SUFFIXES) or k in names:
                continue
            if isinstance(v, int | float) and not isinstance(v, bool):
                names.append(k)
    return names


def _report(outcome, table: list[dict], keys: list[str], spec: dict) -> Path:
    from ..figures import sweep_figure
    from ..report import Report

    rep = Report(f"scorelab sweep — {len(table)} cells")
    counts = outcome.counts()
    seeds = sorted({c.seed for c in outcome.cells})
    rep.text(
        f"job {spec.get('job', '?')}; swept {', '.join(keys) or 'nothing'}; seeds "
        f"{seeds}; {counts.get('done', 0)} done, "
        f"{counts.get('failed', 0)} failed, {counts.get('running', 0) + counts.get('missing', 0)} "
        "unfinished."
    )
    done = [r for r in table if r["status"] == "done"]
    metrics = _metric_names(done, keys)
    measured = measured_metrics(done, keys)
    lead = lead_table(done, keys, measured)
    if lead is not None:
        rep.heading("Best cell per metric")
        rep.raw(lead)
    if spec.get("job") == "budget":  # every part against every swept key, in one figure
        from ..budget.view import sweep_figure as budget_figure

        fig = budget_figure(table, keys, outcome.out_dir / "figures" / "budget.png")
        if fig is not None:
            rep.heading("Error budget")
            rep.image(fig, "error budget against the swept keys")
    fig = sweep_figure(done, keys, measured, outcome.out_dir / "figures" / "metrics.png")
    if fig is not None:
        rep.heading("Metrics against the swept keys")
        rep.image(fig, "every metric against every swept key")
        rep.text(_figure_caption(len(seeds)), "note")
    header = [*keys, "seed", "status", "seconds", *metrics[:8], "error"]
    body = [[r.get(h) for h in header] for r in table]
    rep.heading("Cells")
    rep.table(header, body)
    return rep.write(outcome.out_dir / "report.html")


def _figure_caption(seeds: int) -> str:
    from ..figures import FEW_SEEDS

    points = (
        f" With fewer than {FEW_SEEDS} seeds every seed's value is drawn (hollow circles) "
        "beside the centre (squares)."
        if seeds < FEW_SEEDS
        else ""
    )
    return (
        f"Centre over the {seeds} seed(s) with its 95 % Student-t interval (band). For a metric "
        "that cannot be negative (its registered range starts at 0) the interval is a t "
        "interval of log(value), centred on the geometric mean, so it never crosses 0; "
        "otherwise the arithmetic mean with its t interval, clipped to the metric's range."
        f"{points} Dashed: the finite-sample floor (two target samples). Keys that are counts "
        "or scales (steps, NFE, α, σ, …) and values spanning a decade are on log axes."
    )


def lead_table(done: list[dict], keys: list[str], metrics: list[str]) -> str | None:
    """The lead table's HTML: per metric its best cell against the floor (None: no metric
    was measured)."""
    from ..figures import lead_rows
    from ..report import HTML, fmt, table_html

    rows = lead_rows(done, keys, metrics)
    if not rows:
        return None
    header = ["metric", "best cell", "centre [95 % CI]", "floor", "centre / floor", "seeds",
              "best is", "runner-up outside the CI", "interval"]  # fmt: skip
    body = [
        [r["metric"], r["best"],
         HTML(f"{fmt(r['centre'])} [{fmt(r['ci'][0])}, {fmt(r['ci'][1])}]", num=True),
         r["floor"], None if r["ratio"] is None else HTML(f"{r['ratio']:.3g}×", num=True),
         r["seeds"], r["direction"], _separated(r), r["interval"]]
        for r in rows
    ]  # fmt: skip
    return table_html(header, body)


def _separated(r: dict) -> str:
    if r["separated"] is None:
        return "—"
    return f"{'yes' if r['separated'] else 'no'} ({r['runner_up']})"


def measured_metrics(table: list[dict], keys: list[str]) -> list[str]:
    """The metrics of the finished cells, without the columns of what a cell cost."""
    done = [r for r in table if r.get("status") == "done"]
    return [m for m in _metric_names(done, keys) if not _is_cost(m)]


def _is_cost(name: str) -> bool:
    """Columns that say what a cell cost, not how good it is (no best cell)."""
    return name.rsplit("/", 1)[-1] in ("nfe", "train_seconds")


__all__ = ["lead_table", "measured_metrics", "rows", "seed_ci", "write_summary"]
