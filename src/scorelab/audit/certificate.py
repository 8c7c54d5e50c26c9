"""The conformance certificate of one scheduler configuration: JSON, and a self-contained
HTML page with its figure embedded (error against N on log–log axes, the fitted and the
nominal slopes). How to read it: docs/audit.md.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from dataclasses import dataclass, field

from ..display import Column, Table, Tabular
from .checks import Check
from .ladder import Rung

#: a certificate's rows in Jupyter and Rich: one per check
CHECK_COLUMNS = [
    Column("check", "text", "id"),
    Column("result", "verdict"),
    Column("detail", "text"),
]


@dataclass
class Certificate(Tabular):
    """The certificate of one scheduler configuration on one target: the step ladder's exact
    errors, the fitted and nominal orders, the limit error and the checks
    (``{id, passed, detail}``; ``passed`` None for a skipped check). ``to_json()`` and
    ``to_html()`` are its files; in Jupyter and Rich it is the table of its checks with the
    ladder and the order as notes, and ``to_frame()`` gives one row per check."""

    scheduler: str
    config: dict
    target: str
    nominal_order: int | None
    ladder: list[Rung]
    fitted_order: dict | None
    limit_error: dict
    checks: list[Check]
    notes: list[str] = field(default_factory=list)
    step_kwargs: dict = field(default_factory=dict)
    certifiable: bool = True  # False where the exact model is not what the class expects

    @property
    def passed(self) -> bool:
        """No check failed and at least one passed (a certificate that certifies nothing,
        every check skipped, does not pass), for a class the exact model can certify."""
        states = [c.passed for c in self.checks]
        return self.certifiable and False not in states and True in states

    def check(self, cid: str) -> Check | None:
        return next((c for c in self.checks if c.id == cid), None)

    def failed(self) -> list[str]:
        return [c.id for c in self.checks if c.passed is False]

    def to_json(self) -> dict:
        return {
            "scheduler": self.scheduler,
            "config": _jsonable(self.config),
            "step_kwargs": _jsonable(self.step_kwargs),
            "target": self.target,
            "nominal_order": self.nominal_order,
            "ladder": [r.to_json() for r in self.ladder],
            "fitted_order": self.fitted_order,
            "limit_error": {k: _num(v) for k, v in self.limit_error.items()},
            "checks": [c.to_json() for c in self.checks],
            "notes": self.notes,
            "certifiable": self.certifiable,
            "passed": self.passed,
        }

    def to_html(self) -> str:
        return render_html(self)

    def _table(self) -> Table:
        result = {True: "passed", False: "failed", None: "skipped"}
        rows = [[c.id, result[c.passed], c.detail] for c in self.checks]
        ladder = ", ".join(f"N={r.steps}: W2 {_g(r.w2)}" for r in self.ladder if r.w2 is not None)
        fit = self.fitted_order
        order = "—" if not fit else f"{fit['value']:.2f}"
        notes = [
            f"{'PASSED' if self.passed else 'FAILED'}; fitted order {order}, nominal "
            f"{self.nominal_order if self.nominal_order is not None else '—'}",
            f"ladder: {ladder}" if ladder else "no exact ladder",
            *self.notes,
        ]
        return Table(f"{self.scheduler} on {self.target}: certificate", CHECK_COLUMNS, rows, notes)


def _num(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _jsonable(d: dict) -> dict:
    return json.loads(json.dumps(d, default=str))


def figure_png(cert: Certificate) -> bytes:
    """Error against N (log–log): W2 to the target and to the extrapolated limit law — drawn
    by the panel code of sweeps and budgets (``scorelab.figures.metric_panel``; exact values,
    so no band) — W2 between successive rungs (the fit's points), the fitted slope and the
    nominal slope."""
    from ..report import pyplot

    plt = pyplot()

    from ..figures import Series, metric_panel

    fig, ax = plt.subplots(figsize=(6.0, 4.2))
    series = []
    for label, values in (
        ("W2 to the target", [(r.steps, r.w2) for r in cert.ladder]),
        ("W2 to the limit law", [(r.steps, r.disc_w2) for r in cert.ladder]),
    ):
        pts = {n: v for n, v in values if v and v > 0 and math.isfinite(v)}
        if pts:
            exact = {n: (v, v) for n, v in pts.items()}
            series.append(Series(label, {n: [v] for n, v in pts.items()}, exact))
    if series:
        metric_panel(ax, series, key="steps", metric="W2", value_range=(0.0, None),
                     xscale="log", yscale="log")  # fmt: skip
    fit = cert.fitted_order
    if fit:
        xs = [p["steps"] for p in fit["points"]]
        ys = [p["w2_difference"] for p in fit["points"]]
        ax.loglog(xs, ys, "s", color="k", label="W2 between successive N (fit)")
        x0, y0 = xs[-1], ys[-1]
        span = [xs[0] / 2, xs[-1] * 2]
        ax.loglog(span, [y0 * (x / x0) ** -fit["value"] for x in span], "--",
                  label=f"fitted slope −{fit['value']:.2f}")  # fmt: skip
        if cert.nominal_order:
            ax.loglog(span, [y0 * (x / x0) ** -cert.nominal_order for x in span], ":",
                      label=f"nominal slope −{cert.nominal_order}")  # fmt: skip
    lim = cert.limit_error.get("w2")
    if lim:
        ax.axhline(lim, color="grey", lw=1, label=f"limit error {lim:.2e}")
    ax.set_xlabel("steps N")
    ax.set_ylabel("W2")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"{cert.scheduler} on {cert.target}", fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def _g(v) -> str:
    return "—" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.4g}"


def render_html(cert: Certificate) -> str:
    """One self-contained page: verdict, ladder, order, limit error, checks, figure."""
    e = html.escape
    verdict = "PASSED" if cert.passed else "NOT PASSED"
    colour = {True: "#1a7f37", False: "#cf222e", None: "#6e7781"}
    rows = "".join(
        f"<tr><td>{r.steps}</td><td>{r.nfe}</td><td>{_g(r.kl)}</td><td>{_g(r.w2)}</td>"
        f"<td>{_g(r.disc_w2)}</td><td>{e(r.error or r.refused or '')}</td></tr>"
        for r in cert.ladder
    )
    checks = "".join(
        f"<tr><td>{e(c.id)}</td><td style='color:{colour[c.passed]}'>"
        f"{ {True: 'pass', False: 'FAIL', None: 'skipped'}[c.passed] }</td>"
        f"<td>{e(c.detail)}</td></tr>"
        for c in cert.checks
    )
    fit = cert.fitted_order
    order = "—" if not fit else f"{fit['value']:.3f} (95% CI {fit['ci']}, N = {fit['fit_range']})"
    limit = ", ".join(f"{k}: {_g(v)}" for k, v in cert.limit_error.items())
    png = base64.b64encode(figure_png(cert)).decode()
    notes = "".join(f"<li>{e(n)}</li>" for n in cert.notes)
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>Certificate: {e(cert.scheduler)}</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}
td,th{{border-bottom:1px solid #ddd;padding:3px 8px;text-align:left}}</style></head><body>
<h1>{e(cert.scheduler)} — <span style="color:{colour[cert.passed]}">{verdict}</span></h1>
<p>target {e(cert.target)}; config <code>{e(json.dumps(_jsonable(cert.config)))}</code>;
step keywords <code>{e(json.dumps(_jsonable(cert.step_kwargs)))}</code></p>
<h2>Order of accuracy</h2><p>fitted {e(order)}; nominal {cert.nominal_order}</p>
<h2>Limit error</h2><p>{e(limit)}</p>
<h2>Ladder</h2><table><tr><th>N</th><th>NFE</th><th>KL</th><th>W2</th>
<th>W2 to the limit</th><th></th></tr>{rows}</table>
<h2>Checks</h2><table>{checks}</table>
<img alt="error against N" src="data:image/png;base64,{png}">
<ul>{notes}</ul></body></html>"""


__all__ = ["Certificate", "figure_png", "render_html"]
