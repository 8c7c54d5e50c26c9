"""A sweep's summary: one row per cell (summary.csv, summary.json) and a report with, for
every metric, its mean over seeds against each swept key with a seed-CI band."""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
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
    from ..report import Report, _plt, save_figure

    rep = Report(f"scorelab sweep — {len(table)} cells")
    counts = outcome.counts()
    rep.text(
        f"job {spec.get('job', '?')}; swept {', '.join(keys) or 'nothing'}; seeds "
        f"{sorted({c.seed for c in outcome.cells})}; {counts.get('done', 0)} done, "
        f"{counts.get('failed', 0)} failed, {counts.get('running', 0) + counts.get('missing', 0)} "
        "unfinished."
    )
    done = [r for r in table if r["status"] == "done"]
    metrics = _metric_names(done, keys)
    if spec.get("job") == "budget":  # every part against every swept key, in one figure
        from ..budget.view import sweep_figure

        fig = sweep_figure(table, keys, outcome.out_dir / "figures" / "budget.png")
        if fig is not None:
            rep.heading("Error budget")
            rep.image(fig, "error budget against the swept keys")
    plt = _plt()
    for metric in metrics:
        for key in keys:
            fig, ax = plt.subplots(figsize=(5.2, 3.4))
            others = [k for k in keys if k != key]
            lines = defaultdict(lambda: defaultdict(list))
            floors = defaultdict(list)
            for r in done:
                v = r.get(metric)
                if not isinstance(v, int | float) or not math.isfinite(v):
                    continue
                label = ", ".join(f"{k}={r[k]}" for k in others)
                lines[label][r[key]].append(float(v))
                f = r.get(f"{metric}_floor")
                if isinstance(f, int | float) and math.isfinite(f):
                    floors[r[key]].append(float(f))
            numeric = all(isinstance(x, int | float) for lab in lines for x in lines[lab])
            for label, by_x in lines.items():
                xs = sorted(by_x, key=lambda x: (not numeric, x if numeric else str(x)))
                stats_ = [seed_ci(by_x[x]) for x in xs]
                pos = xs if numeric else list(range(len(xs)))
                ax.plot(pos, [s[0] for s in stats_], "o-", label=label or metric)
                ax.fill_between(pos, [s[1] for s in stats_], [s[2] for s in stats_], alpha=0.2)
                if not numeric:
                    ax.set_xticks(pos, [str(x) for x in xs])
            if floors and numeric:
                fx = sorted(floors)
                ax.plot(
                    fx,
                    [sum(floors[x]) / len(floors[x]) for x in fx],
                    "k--",
                    lw=1,
                    label="finite-sample floor",
                )
            ax.set_xlabel(key)
            ax.set_ylabel(metric)
            ax.set_title(f"{metric} against {key} (mean over seeds, 95 % CI)", fontsize=9)
            if len(lines) > 1 or floors:
                ax.legend(fontsize=7)
            fig.tight_layout()
            safe = f"{metric}-vs-{key}".replace("/", "_")
            rep.image(save_figure(fig, outcome.out_dir / "figures" / f"{safe}.png"), safe)
    header = [*keys, "seed", "status", "seconds", *metrics[:8], "error"]
    body = [[r.get(h) for h in header] for r in table]
    rep.heading("Cells")
    rep.table(header, body)
    return rep.write(outcome.out_dir / "report.html")


__all__ = ["rows", "seed_ci", "write_summary"]
