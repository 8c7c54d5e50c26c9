"""The budget drawn and written: the figure (stacked bars, measured beside each bound, per
part, log scale), the report's section and the sweep's figure."""

from __future__ import annotations

import html
import math
from collections import defaultdict
from pathlib import Path

from ..report import HTML, _plt, fmt, image_html, save_figure, table_html
from .chain import LABELS, PARTS, REMAINDER

METRIC_NAMES = {"w2": "W2", "kl": "KL (nats)", "w1": "W1"}
COLOURS = {
    "score": "#d62728",
    "discretisation": "#1f77b4",
    "prior": "#2ca02c",
    "early_stopping": "#9467bd",
    REMAINDER: "#9e9e9e",
}


def _bars(data: dict, metric: str) -> list[tuple[str, dict[str, float], float | None]]:
    """(label, {part: value}, total) of the measured budget and of every bound of this
    metric."""
    m = data["metrics"][metric]
    parts = {p: m["parts"][p]["value"] for p in (*PARTS, REMAINDER)}
    bars = [("measured", parts, m["total"]["value"])]
    for row in data.get("bounds", []):
        if row["metric"] == metric:
            terms = {p: v["term"] for p, v in row["parts"].items()}
            bars.append((row["title"].split(":")[0], terms, row["total"]["term"]))
    return bars


def _panel(ax, data: dict, metric: str) -> None:
    bars = _bars(data, metric)
    positive = [v for _, b, _ in bars for v in b.values() if v is not None and v > 0]
    if not positive:
        ax.text(0.5, 0.5, "no positive part", ha="center", transform=ax.transAxes)
        return
    base = min(positive) / 3
    hidden = []
    for i, (label, parts, total) in enumerate(bars):
        bottom = base
        # ascending within a bar: on a log axis the small parts stay visible at the bottom
        for part, v in sorted(parts.items(), key=lambda kv: (kv[1] is None, kv[1] or 0)):
            if v is None or v <= 0:
                if label == "measured" and v is not None and v < 0:
                    hidden.append(f"{LABELS[part]} {v:.2g}")
                continue
            ax.bar(i, v, bottom=bottom, color=COLOURS[part], width=0.6, edgecolor="white")
            bottom += v
        if total is not None:
            ax.text(i, bottom, f"total {total:.3g}", ha="center", va="bottom", fontsize=7)
    ax.set_yscale("log")
    ax.set_xticks(range(len(bars)), [b[0] for b in bars], fontsize=8)
    ax.set_ylabel(data["metrics"][metric].get("label", metric))
    ax.set_title(data["metrics"][metric].get("label", metric), fontsize=9)
    ax.margins(y=0.15)
    if hidden:  # a log axis cannot show them: named under the panel
        ax.set_xlabel("negative (not drawn): " + "; ".join(hidden), fontsize=6, wrap=True)


def figure(data: dict, path: Path, title: str = "") -> Path:
    """One panel per metric: the measured parts stacked beside each bound's terms for the
    same parts (log scale; within a bar the parts are stacked from the smallest)."""
    plt = _plt()
    metrics = list(data["metrics"])
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.6 * len(metrics) + 1.4, 3.8))
    axes = [axes] if len(metrics) == 1 else list(axes)
    for ax, metric in zip(axes, metrics, strict=True):
        _panel(ax, data, metric)
    handles = [plt.Rectangle((0, 0), 1, 1, color=COLOURS[p]) for p in (*PARTS, REMAINDER)]
    fig.legend(handles, [LABELS[p] for p in (*PARTS, REMAINDER)], loc="center right", fontsize=8)
    order = " → ".join(LABELS[p] for p in data["order"])
    fig.suptitle(
        title or f"error budget ({data['method'].replace('_', ' ')}; order {order})", fontsize=9
    )
    fig.tight_layout(rect=(0, 0, 0.82, 1))
    return save_figure(fig, Path(path))


# --- the report's section -------------------------------------------------------------------


def _ci(entry: dict, closed: bool) -> str:
    if closed or entry.get("ci") is None:
        return ""
    lo, hi = entry["ci"]
    return f" [{fmt(lo)}, {fmt(hi)}]"


def metric_table(data: dict, metric: str) -> str:
    """Rows: the parts, the remainder and the total; columns: measured [95 % CI], then each
    bound's matching term and term / measured."""
    closed = data["method"] == "closed_form"
    m = data["metrics"][metric]
    rows_b = [r for r in data.get("bounds", []) if r["metric"] == metric]
    header = ["part", "measured" + ("" if closed else " [95 % CI]")]
    for r in rows_b:
        header += [f"{r['title']}: term", "term / measured"]
    rows = []
    for part in (*PARTS, REMAINDER, "total"):
        entry = m["total"] if part == "total" else m["parts"][part]
        label = "total" if part == "total" else LABELS[part]
        if part in data.get("folded", {}):
            label += " *"
        row = [HTML(f"<b>{label}</b>") if part == "total" else label]
        row.append(HTML(fmt(entry["value"]) + _ci(entry, closed), num=True))
        for r in rows_b:
            cell = r["total"] if part == "total" else r["parts"].get(part)
            if cell is None:
                row += [None, None]
                continue
            rat = cell["ratio"]
            row += [cell["term"], None if rat is None else HTML(f"{rat:.3g}×", num=True)]
        rows.append(row)
    return table_html(header, rows)


def section_html(data: dict, image: Path | None = None) -> str:
    """The report's section: what was swapped, one table per metric, the figure, the folded
    parts, the reference's residual, the interactions and the notes."""
    order = " → ".join(LABELS[p] for p in data["order"])
    parts = [
        f"<p>The measured error split by swapping one piece at a time for its exact "
        f"counterpart, every random draw held fixed (order: {html.escape(order)}). Each part "
        "is the drop in error its swap gives; the parts and the remainder sum to the total. "
        "Beside each part, the term of every bound that applies to it, and their ratio.</p>"
    ]
    for metric in data["metrics"]:
        parts.append(f"<h3>{html.escape(data['metrics'][metric].get('label', metric))}</h3>")
        parts.append(metric_table(data, metric))
    if image is not None:
        parts.append(image_html(Path(image), "error budget"))
    parts.append(_details(data))
    return "".join(parts)


def _details(data: dict) -> str:
    items = []
    for part, why in data.get("folded", {}).items():
        items.append(f"* {LABELS[part]}: not swapped — {why}")
    ref = data.get("reference") or {}
    res = ref.get("residual")
    if res:
        txt = ", ".join(f"{k} {fmt(v['value'])}{_ci(v, False)}" for k, v in res.items())
        items.append(
            f"resolved reference: {ref.get('limit')}; its residual (half as fine minus it): {txt}"
        )
    elif ref.get("limit"):
        items.append(f"resolved reference: {ref['limit'].replace('_', ' ')} in closed form")
    inter = data.get("interactions")
    if inter:
        for metric, per in inter.items():
            txt = ", ".join(f"{LABELS[p]} {fmt(v, 3)}" for p, v in per.items())
            items.append(f"interactions ({metric}): {txt}")
    for metric, why in data.get("omitted", {}).items():
        items.append(f"{metric} omitted: {why}")
    for fam, why in data.get("refused_bounds", {}).items():
        items.append(f"bound {fam} does not apply: {why}")
    items += data.get("notes", [])
    body = "".join(f"<li>{html.escape(t)}</li>" for t in items)
    return f'<ul class="note">{body}</ul>'


# --- the sweep's figure -----------------------------------------------------------------------


def sweep_figure(table: list[dict], keys: list[str], path: Path) -> Path | None:
    """Every part (and the remainder) against each swept key — sampler.steps drawn as NFE —
    one row per metric, one colour per part and one line style per value of the other keys,
    with the parts' 95 % intervals (mean over seeds), on a symmetric log scale (parts may be
    negative): where the score part overtakes the discretisation part, more sampler steps
    stop helping."""
    done = [r for r in table if r.get("status") == "done"]
    metrics = [m for m in ("w2", "kl", "w1") if any(f"{m}_total" in r for r in done)]
    if not done or not keys or not metrics:
        return None
    plt = _plt()
    fig, axes = plt.subplots(
        len(metrics), len(keys), figsize=(5.0 * len(keys) + 1.6, 3.4 * len(metrics)), squeeze=False
    )
    for row, metric in zip(axes, metrics, strict=True):
        for ax, key in zip(row, keys, strict=True):
            _sweep_axes(plt, ax, done, keys, key, metric)
    handles = [plt.Line2D([], [], color=COLOURS[p], lw=6) for p in (*PARTS, REMAINDER)]
    fig.legend(handles, [LABELS[p] for p in (*PARTS, REMAINDER)], loc="center right", fontsize=7)
    fig.suptitle("error budget against the swept keys (95 % intervals)", fontsize=9)
    fig.tight_layout(rect=(0, 0, 0.86, 1))
    return save_figure(fig, Path(path))


def _sweep_axes(plt, ax, done, keys, key, metric) -> None:
    styles = ["-", "--", ":", "-."]
    values = [
        abs(v)
        for r in done
        for p in (*PARTS, REMAINDER)
        if (v := _mean([r], f"{metric}_{p}")) is not None and v != 0
    ]
    labels = _sweep_panel(ax, done, keys, key, metric, styles)
    if values:  # parts below this are drawn on a linear stretch around 0
        lin = max(min(values), 1e-4 * max(values))
        ax.set_yscale("symlog", linthresh=lin, linscale=0.5)
        ax.set_yticks([t for t in ax.get_yticks() if t == 0 or abs(t) > 1.5 * lin])
    ax.axhline(0.0, color="black", lw=0.5)
    if len(labels) > 1:
        lines = [plt.Line2D([], [], color="black", ls=styles[j % 4]) for j in range(len(labels))]
        ax.legend(lines, labels, fontsize=6, loc="lower left")


def _sweep_panel(ax, done, keys, key, metric, styles) -> list[str]:
    """One panel (``scorelab.figures.metric_panel``, the sweeps' panel): the parts against
    ``key``, one colour per part and one line style per value of the other keys, each with
    its 95 % interval (the mean over seeds of the cells' paired intervals); returns the line
    styles' labels."""
    from ..figures import Series, metric_panel

    others = [k for k in keys if k != key]
    xname = "nfe" if key == "sampler.steps" else key
    groups = defaultdict(lambda: defaultdict(list))
    for r in done:
        groups[tuple(r.get(k) for k in others)][r.get(xname, r.get(key))].append(r)
    order = sorted(groups, key=lambda g: tuple((not isinstance(v, int | float), v) for v in g))
    series = []
    for j, by_x in enumerate(groups[g] for g in order):
        for part in (*PARTS, REMAINDER):
            col = f"{metric}_{part}"
            points, intervals = {}, {}
            for x, rows in by_x.items():
                lo, hi = _mean(rows, f"{col}_ci_lo"), _mean(rows, f"{col}_ci_hi")
                vals = [r[col] for r in rows if isinstance(r.get(col), int | float)]
                if not vals or lo is None or hi is None:
                    break
                points[x], intervals[x] = vals, (lo, hi)
            else:
                series.append(
                    Series(f"{LABELS[part]} {j}", points, intervals, COLOURS[part], styles[j % 4])
                )
    label = f"{METRIC_NAMES.get(metric, metric)} part"
    metric_panel(ax, series, key="NFE" if xname == "nfe" else key, metric=label, yscale="symlog")
    return [
        ", ".join(f"{k}={v}" for k, v in zip(others, g, strict=True)) or "all cells" for g in order
    ]


def _mean(rows: list[dict], key: str) -> float | None:
    vals = [r[key] for r in rows if isinstance(r.get(key), int | float) and math.isfinite(r[key])]
    return sum(vals) / len(vals) if vals else None
