"""Results as tables: compact HTML in Jupyter, Rich tables in a terminal, plain data for pandas.

A result class inherits :class:`Tabular` and supplies one method, ``_table()``, returning a
:class:`Table` (a title, its columns, its rows of plain values and its notes). It then gets

* ``_repr_html_()``: a self-contained HTML table (inline styles, no external CSS, every text
  escaped), what Jupyter shows for the object;
* ``__rich__()``: a ``rich.table.Table``, what ``rich.print`` and a Rich console show;
* ``to_dict()``: JSON-able data (a class with ``to_json`` returns that; else the table's rows);
* ``to_frame()``: a pandas DataFrame of the rows (pandas is imported here only, and its absence
  is one line naming the ``frames`` extra).

Cells read as the command line prints them: numbers to four significant digits, an interval as
``[lo, hi]``, the ratio to the floor as ``1.23×``, and a verdict in its colour (holds green,
below margin blue, fails red, inconclusive amber). In a frame an interval column becomes two
columns, ``<key>_lo`` and ``<key>_hi``.

This module imports nothing of scorelab (``protocols`` uses it) and Rich only when rendering.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

#: a verdict's colour (HTML, Rich) and mark, the reading of the study reports
VERDICT_STYLES = {
    "holds": ("#1a7f37", "green", "✓"),
    "below margin": ("#1f5fa8", "blue", "≈"),
    "fails": ("#c62828", "red", "✗"),
    "inconclusive": ("#8a6d00", "yellow", "?"),
    # the outcomes of a certificate's checks read in the same colours
    "passed": ("#1a7f37", "green", "✓"),
    "failed": ("#c62828", "red", "✗"),
    "skipped": ("#8a6d00", "yellow", "–"),
}


def verdict_style(verdict: str) -> tuple[str, str, str]:
    """(HTML colour, Rich colour, mark) of a verdict; "below_margin" reads as "below margin";
    an unknown verdict is uncoloured."""
    return VERDICT_STYLES.get(str(verdict).replace("_", " "), ("inherit", "default", ""))


def ratio(value, floor) -> float | None:
    """value / floor, where it means something: a positive floor and a value ≥ 0."""
    if value is None or floor is None or not (floor > 0) or value < 0:
        return None
    if not (math.isfinite(value) and math.isfinite(floor)):
        return None
    return value / floor


@dataclass(frozen=True)
class Column:
    """A column: its header, its key in ``to_frame`` (default: the header) and its kind —
    "text", "num", "interval" (a (lo, hi) pair), "ratio" (value / floor) or "verdict"."""

    header: str
    kind: str = "num"
    key: str | None = None

    @property
    def name(self) -> str:
        return self.key or self.header


@dataclass
class Table:
    """What a result shows: a title, columns, rows (one list of plain values per row, in the
    columns' order) and notes (one line each)."""

    title: str
    columns: list[Column]
    rows: list[list[Any]]
    notes: list[str] = field(default_factory=list)

    def records(self) -> list[dict[str, Any]]:
        """The rows as dicts keyed by the columns' keys, an interval split into two keys."""
        out = []
        for row in self.rows:
            rec: dict[str, Any] = {}
            for col, v in zip(self.columns, row, strict=True):
                if col.kind == "interval":
                    lo, hi = (None, None) if v is None else v
                    rec[f"{col.name}_lo"], rec[f"{col.name}_hi"] = _plain(lo), _plain(hi)
                else:
                    rec[col.name] = _plain(v)
            out.append(rec)
        return out


def _plain(v):
    """A cell as plain data: floats (non-finite: None), ints, strings, bools."""
    if v is None or isinstance(v, bool | int | str):
        return v
    if hasattr(v, "item") and getattr(v, "ndim", 0) == 0:
        v = v.item()
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    return v


def text(v, kind: str = "num") -> str:
    """A cell as the command line prints it (plain text)."""
    if v is None:
        return "—"
    if kind == "interval":
        return f"[{text(v[0])}, {text(v[1])}]"
    if kind == "ratio":
        return "—" if v is None else f"{v:.3g}×"
    if kind == "verdict":
        mark = verdict_style(v)[2]
        return f"{mark} {v}".strip()
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.4g}" if math.isfinite(v) else "—"
    return str(v)


_TABLE = "border-collapse:collapse;font-size:0.9em;margin:0.3em 0"
_CELL = "border:1px solid #ccc;padding:0.2em 0.6em;"
_NUM = "text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap;"


def table_html(t: Table) -> str:
    """The table as self-contained HTML (inline styles; every text escaped)."""
    head = "".join(
        f'<th style="{_CELL}background:#f4f4f4;text-align:left">{html.escape(c.header)}</th>'
        for c in t.columns
    )
    body = []
    for row in t.rows:
        cells = []
        for col, v in zip(t.columns, row, strict=True):
            style = _CELL + ("" if col.kind in ("text", "verdict") else _NUM)
            if col.kind == "verdict" and v is not None:
                style += f"color:{verdict_style(v)[0]};font-weight:bold;white-space:nowrap;"
            cells.append(f'<td style="{style}">{html.escape(text(v, col.kind))}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    notes = "".join(
        f'<div style="color:#555;font-size:0.85em">{html.escape(n)}</div>' for n in t.notes
    )
    title = f'<div style="font-weight:bold;padding:0.2em 0">{html.escape(t.title)}</div>'
    return (
        f'<div>{title}<table style="{_TABLE}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>{notes}</div>"
    )


def table_rich(t: Table):
    """The table as a ``rich.table.Table`` (notes as its caption)."""
    from rich.table import Table as RichTable
    from rich.text import Text

    out = RichTable(
        title=t.title, title_justify="left", caption="\n".join(t.notes) or None,
        caption_justify="left",
    )  # fmt: skip
    for col in t.columns:
        out.add_column(col.header, justify="left" if col.kind in ("text", "verdict") else "right")
    for row in t.rows:
        cells = []
        for col, v in zip(t.columns, row, strict=True):
            style = verdict_style(v)[1] if col.kind == "verdict" and v is not None else ""
            cells.append(Text(text(v, col.kind), style=f"bold {style}" if style else ""))
        out.add_row(*cells)
    return out


class Tabular:
    """The mixin: a class that defines ``_table() -> Table`` gets ``_repr_html_``,
    ``__rich__``, ``to_dict`` and ``to_frame`` (see the module)."""

    def _table(self) -> Table:  # pragma: no cover - every user defines it
        raise NotImplementedError

    def _repr_html_(self) -> str:
        return table_html(self._table())

    def __rich__(self):
        return table_rich(self._table())

    def to_dict(self) -> dict:
        """The result as JSON-able data: ``to_json()`` where the class has one, else
        ``{"title", "rows"}`` with the table's rows as records."""
        to_json = getattr(self, "to_json", None)
        if callable(to_json):
            return to_json()
        t = self._table()
        return {"title": t.title, "rows": t.records()}

    def to_frame(self):
        """A pandas DataFrame: one row per table row, the columns' keys as its columns (an
        interval as ``<key>_lo`` and ``<key>_hi``)."""
        return frame(self._table().records())


def frame(records: Sequence[dict], columns: Sequence[str] | None = None):
    """``pandas.DataFrame(records)``, or one line naming the extra that installs pandas."""
    try:
        import pandas as pd
    except ImportError:
        raise ImportError(
            "to_frame needs pandas: pip install 'scorelab[frames]' (or pip install pandas)"
        ) from None
    return pd.DataFrame(list(records), columns=list(columns) if columns is not None else None)


__all__ = [
    "VERDICT_STYLES",
    "Column",
    "Table",
    "Tabular",
    "frame",
    "ratio",
    "table_html",
    "table_rich",
    "text",
    "verdict_style",
]
