"""Figures (PNG) and a self-contained HTML report (images embedded as base64) for a run.

The building blocks — ``save_figure``, ``table_html``, ``Report`` — are shared with the studies;
``write_run_report`` assembles the report of ``scorelab run``.
"""

from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path

import torch

from .storage import atomic_write


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path) -> Path:
    """Write a matplotlib figure to PNG (atomically) and close it."""
    plt = _plt()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)
    return path


def fmt(v, digits: int = 4) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        if not math.isfinite(v):
            return "—"
        return f"{v:.{digits}g}"
    return html.escape(str(v))


def table_html(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{fmt(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em} h2{font-size:1.25em;margin-top:1.8em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f4f4f4} td:first-child,th:first-child{text-align:left}
img{max-width:100%;border:1px solid #eee;margin:.4em 0} .note{color:#555;font-size:.9em}
pre{background:#f7f7f7;padding:.6em;overflow-x:auto;font-size:.85em}
.ok{color:#1a7f37;font-weight:bold} .no{color:#c62828;font-weight:bold}
"""


class Report:
    """An HTML page built section by section; ``write`` embeds every image."""

    def __init__(self, title: str):
        self.title = title
        self.parts: list[str] = []

    def heading(self, text: str) -> None:
        self.parts.append(f"<h2>{html.escape(text)}</h2>")

    def text(self, text: str, cls: str | None = None) -> None:
        attr = f' class="{cls}"' if cls else ""
        self.parts.append(f"<p{attr}>{html.escape(text)}</p>")

    def raw(self, fragment: str) -> None:
        self.parts.append(fragment)

    def table(self, header: list[str], rows: list[list]) -> None:
        self.parts.append(table_html(header, rows))

    def image(self, path: Path, alt: str = "") -> None:
        data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
        self.parts.append(
            f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt or Path(path).name)}">'
        )

    def code(self, text: str) -> None:
        self.parts.append(f"<pre>{html.escape(text)}</pre>")

    def write(self, path: Path) -> Path:
        page = (
            f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(self.title)}"
            f"</title><style>{_CSS}</style></head><body><h1>{html.escape(self.title)}</h1>"
            + "\n".join(self.parts)
            + "</body></html>"
        )
        return atomic_write(path, lambda tmp: Path(tmp).write_text(page, encoding="utf-8"))


# --- figures of a run -----------------------------------------------------------------------
def loss_figure(records: list[dict], path: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 3.6), constrained_layout=True)
    steps = [r["step"] for r in records]
    ax.plot(steps, [r["loss"] for r in records], color="tab:blue", label="loss")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (batch mean)")
    ax2 = ax.twinx()
    ax2.plot(steps, [r["lr"] for r in records], color="tab:gray", ls="--", lw=1, label="lr")
    ax2.set_ylabel("learning rate", color="tab:gray")
    ax.set_title("training loss")
    return save_figure(fig, path)


def samples_figure(
    samples: dict[str, torch.Tensor], reference: torch.Tensor, path: Path, max_points: int = 2000
) -> Path:
    """Scatter (first two coordinates) of each sampler beside the target; image grids for
    image data."""
    plt = _plt()
    panels = [("target", reference), *samples.items()]
    x = reference
    if x.ndim >= 3 or (x.ndim == 2 and x.shape[1] in (64, 784) and _square(x.shape[1])):
        return _image_grids(panels, path)
    fig, axes = plt.subplots(
        1, len(panels), figsize=(3.4 * len(panels), 3.5), constrained_layout=True, squeeze=False
    )
    ref2 = reference.reshape(reference.shape[0], -1)[:max_points, :2].double()
    lo = ref2.min(0).values - 0.5
    hi = ref2.max(0).values + 0.5
    for ax, (name, pts) in zip(axes[0], panels, strict=True):
        p = pts.reshape(pts.shape[0], -1)[:max_points, :2].double().cpu()
        ax.scatter(ref2[:, 0], ref2[:, 1], s=2, c="lightgray")
        if name != "target":
            ax.scatter(p[:, 0], p[:, 1], s=2, c="tab:blue", alpha=0.6)
        ax.set_xlim(float(lo[0]), float(hi[0]))
        ax.set_ylim(float(lo[1]), float(hi[1]))
        ax.set_aspect("equal")
        ax.set_title(name, fontsize=10)
    if reference.reshape(reference.shape[0], -1).shape[1] > 2:
        fig.suptitle("first two coordinates (gray: target)", fontsize=9)
    return save_figure(fig, path)


def _square(n: int) -> bool:
    r = round(n**0.5)
    return r * r == n


def _image_grids(panels, path: Path, k: int = 8) -> Path:
    plt = _plt()
    fig, axes = plt.subplots(
        1, len(panels), figsize=(3.2 * len(panels), 3.4), constrained_layout=True, squeeze=False
    )
    for ax, (name, pts) in zip(axes[0], panels, strict=True):
        imgs = pts[: k * k].detach().cpu().double()
        n = imgs.shape[0]
        side = round(imgs[0].numel() ** 0.5)
        imgs = imgs.reshape(n, side, side)
        grid = torch.ones(k * (side + 1), k * (side + 1), dtype=torch.float64) * float(imgs.max())
        for i in range(n):
            r, c = divmod(i, k)
            grid[r * (side + 1) : r * (side + 1) + side, c * (side + 1) : c * (side + 1) + side] = (
                imgs[i]
            )
        ax.imshow(grid.numpy(), cmap="gray_r")
        ax.set_title(name, fontsize=10)
        ax.axis("off")
    return save_figure(fig, path)


@torch.no_grad()
def field_figure(model, target, process, path: Path, times=(0.05, 0.2, 0.5)) -> Path:
    """2-D: the exact density p_t (where known), the model's score field (red) and the exact
    one (black), at a few fractions of T."""
    plt = _plt()
    g = torch.Generator().manual_seed(0)
    ref = target.sample(4000, g, dtype=torch.float64)
    lim = float(ref.abs().max()) * 1.3 + 0.5
    fine = torch.linspace(-lim, lim, 101, dtype=torch.float64)
    fx, fy = torch.meshgrid(fine, fine, indexing="xy")
    pts = torch.stack([fx.reshape(-1), fy.reshape(-1)], 1)
    coarse = torch.linspace(-lim, lim, 17, dtype=torch.float64)
    cx, cy = torch.meshgrid(coarse, coarse, indexing="xy")
    arrows = torch.stack([cx.reshape(-1), cy.reshape(-1)], 1)
    fig, axes = plt.subplots(
        1, len(times), figsize=(3.6 * len(times), 3.7), constrained_layout=True, squeeze=False
    )
    dtype = next(model.parameters()).dtype
    for ax, frac in zip(axes[0], times, strict=True):
        t = process.t_min + frac * (process.T - process.t_min)
        if target.has_density:
            logp = target.log_prob_t(pts, t, process).reshape(fx.shape)
            ax.contourf(fx.numpy(), fy.numpy(), logp.exp().numpy(), levels=20, cmap="Blues")
        tt = torch.full((arrows.shape[0],), t, dtype=dtype)
        s_model = model(arrows.to(dtype), tt).double()
        _quiver(ax, arrows, s_model, "tab:red")
        if target.has_score:
            _quiver(ax, arrows, target.score(arrows, t, process), "black")
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
        ax.set_title(f"t = {t:.3g} (σ = {float(process.sigma(t)):.3g})", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("score field: model (red) vs exact (black); exact density p_t (blue)", fontsize=9)
    return save_figure(fig, path)


def _quiver(ax, at, vec, color):
    v = vec / (1 + vec.norm(dim=1, keepdim=True))  # bounded arrows: direction is what matters
    ax.quiver(at[:, 0], at[:, 1], v[:, 0], v[:, 1], color=color, alpha=0.75, width=0.004)


def score_error_figure(rows: list[dict], path: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 3.6), constrained_layout=True)
    sig = [r["sigma"] for r in rows]
    ax.loglog(sig, [r["relative"] for r in rows], "o-", label="relative E‖s_θ−s‖²/E‖s‖²")
    ax.loglog(sig, [r["weighted"] for r in rows], "s--", label="s(t)²·E‖s_θ−s‖² (DSM scale)")
    ax.set_xlabel("σ(t)")
    ax.set_ylabel("score error")
    ax.legend(fontsize=8)
    ax.set_title("score error of the trained model against the exact score")
    return save_figure(fig, path)


def residual_profile_figure(
    diagnostics: dict[str, dict], title: str = "score Fokker–Planck residual"
):
    """E‖ε‖²/D against σ(t) with 95% bands, one curve per labelled ``diagnose`` result."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 3.6), constrained_layout=True)
    for label, d in diagnostics.items():
        prof = d["fpe_profile"]
        sig = [p["sigma"] for p in prof]
        line = ax.loglog(sig, [max(p["value"], 1e-30) for p in prof], "o-", label=label)[0]
        lo = [max(p["ci"][0], 1e-30) for p in prof]
        ax.fill_between(sig, lo, [p["ci"][1] for p in prof], color=line.get_color(), alpha=0.2)
    ax.set_xlabel("σ(t)")
    ax.set_ylabel("E‖ε(x,t)‖²/D, x ~ p_t")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return fig


def diagnostics_table(d: dict) -> str:
    exact = d.get("nll_exact")
    rows = [
        ["FPE residual (mean over t)", d["fpe_residual"]["value"], _ci(d["fpe_residual"]["ci"])],
        ["non-conservativity ‖J−Jᵀ‖²/‖J‖²", d["conservativity"]["value"], "—"],
        [f"PF-ODE NLL, nats (NFE {d['nll']['nfe']})", d["nll"]["value"], _ci(d["nll"]["ci"])],
    ]
    if exact is not None:
        rows.append([f"exact NLL of {exact['of']}, nats", exact["value"], "—"])
    return table_html(["diagnostic", "value", "95% CI"], rows)


# --- the run report -------------------------------------------------------------------------
def write_run_report(cfg, result, trainer, model) -> Path:
    """Figures and report.html of a finished ``scorelab run``."""
    run_dir = Path(result.run_dir)
    rep = Report(f"scorelab run — {cfg.target.kind} under {cfg.process.kind}")
    rep.text(
        f"Trained {trainer.step} steps in {result.train_seconds:.1f} s "
        f"({cfg.network.kind} network, {cfg.network.parameterisation} parameterisation, "
        f"loss {cfg.train.loss}, noise {cfg.train.noise}, weighting {cfg.train.weighting})."
    )
    records = _read_jsonl(run_dir / "metrics.jsonl")
    if records:
        rep.heading("Training loss")
        rep.image(loss_figure(records, run_dir / "loss.png"))
    rep.heading("Samples")
    g = torch.Generator().manual_seed(cfg.seed + 1)
    reference = trainer.target.sample(cfg.sampler.n, g, dtype=torch.float64)
    rep.image(
        samples_figure(
            {o.sampler: o.samples for o in result.outcomes}, reference, run_dir / "samples.png"
        )
    )
    rep.heading("Metrics (95 % CIs; the floor is the metric between two target samples)")
    for o in result.outcomes:
        rep.raw(f"<h3>{html.escape(o.sampler)} — NFE {o.nfe}, {o.seconds:.2f} s</h3>")
        js = o.evaluation.to_json()
        rows = [
            [name, v["value"], v["floor"], _ci(v["ci"])]
            for name, v in js.items()
            if name != "_skipped"
        ]
        rep.table(["metric", "value", "floor", "95% CI"], rows)
        if js["_skipped"]:
            rep.text(
                "skipped: " + "; ".join(f"{k} ({v})" for k, v in js["_skipped"].items()), "note"
            )
    if trainer.target.event_shape == (2,):
        rep.heading("Score field")
        rep.image(field_figure(model, trainer.target, trainer.process, run_dir / "field.png"))
    if result.score_error:
        rep.heading("Score error against the exact score")
        rep.image(score_error_figure(result.score_error, run_dir / "score_error.png"))
    if result.bounds:
        rep.heading("Theoretical bounds (ε measured from the trained model where possible)")
        rows = []
        for family, terms in result.bounds.items():
            if "refused" in terms:
                rows.append([family, "refused", terms["refused"]])
                continue
            for name, value in terms.items():
                rows.append([family, name, value])
        rep.table(["bound", "term", "value"], rows)
    if result.diagnostics:
        rep.heading("Fokker–Planck diagnostics (paper D)")
        rep.raw(diagnostics_table(result.diagnostics))
        fig = residual_profile_figure({"trained model": result.diagnostics})
        rep.image(save_figure(fig, run_dir / "fpe_residual.png"))
    rep.heading("Configuration")
    import yaml

    rep.code(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
    return rep.write(run_dir / "report.html")


def _ci(ci):
    return "—" if ci is None else f"[{fmt(ci[0])}, {fmt(ci[1])}]"


def _read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
