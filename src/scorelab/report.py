"""Figures (PNG) and a self-contained HTML report (images embedded as base64) for a run.

The building blocks — ``save_figure``, ``table_html``, ``Report`` — are shared with the studies;
``write_run_report`` assembles the report of ``scorelab run``.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
from pathlib import Path

import torch

from .display import ratio
from .storage import atomic_write


def pyplot():
    """matplotlib's pyplot for figures written to files: the Agg backend (no window, no GUI
    toolkit) — except inside a Jupyter kernel, whose inline backend is left alone so that the
    user's own figures still show after a scorelab call."""
    import sys

    import matplotlib

    if "ipykernel" not in sys.modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


_plt = pyplot  # the name the report and budget views use


def save_figure(fig, path: Path) -> Path:
    """Write a matplotlib figure to PNG (atomically) and close it."""
    plt = _plt()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)
    return path


def fmt(v, digits: int = 4) -> str:
    """A table cell as HTML: numbers to ``digits`` significant digits (non-finite: "—"),
    ``HTML`` as it is, anything else escaped with its maths rendered (``maths``)."""
    if v is None:
        return "—"
    if isinstance(v, HTML):
        return str(v)
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if not math.isfinite(v):
            return "—"
        return f"{v:.{digits}g}".replace("-", "−")
    if isinstance(v, int):
        return str(v).replace("-", "−")
    return maths(str(v))


class HTML(str):
    """A fragment that is already HTML (not escaped again); ``num=True`` aligns it right."""

    num = False

    def __new__(cls, text: str, num: bool = False):
        obj = super().__new__(cls, text)
        obj.num = num
        return obj


_SUP = re.compile(
    r"\^\{([^{}]*)\}"
    r"|\^([−+\-]?\d+(?:\.\d+)?)(?![A-Za-z0-9])"  # a number: 10^0.35, 10^-4
    r"|\^([A-Za-z0-9α-ωΑ-Ω−+-])(?![A-Za-z0-9])"
)
_SUB = re.compile(
    r"_\{([^{}]*)\}"
    r"|(?<=(?<![A-Za-z0-9_])[A-Za-zα-ωΑ-Ω⊗∑∏])_(min|max|data|[A-Za-z0-9α-ω])(?![A-Za-z0-9_])"
)


def maths(text: str) -> str:
    """Escaped HTML of ``text`` with its TeX-like maths rendered offline: ``e^{−ε}`` and
    ``R^d`` as superscripts, ``σ_{k+1}`` and ``γ_d`` (a single letter's index) as
    subscripts. Identifiers such as ``kl_knn`` or ``n_boot`` are left as they are."""
    out = html.escape(text, quote=False)
    out = _SUP.sub(lambda m: f"<sup>{next(g for g in m.groups() if g is not None)}</sup>", out)
    out = _SUB.sub(
        lambda m: f"<sub>{m.group(1) if m.group(1) is not None else m.group(2)}</sub>", out
    )
    return out


_NUMERIC = re.compile(r"^[\[\(]?\s*[−+\-]?[\d.]+(e[−+\-]?\d+)?\s*(×|%)?")


def _numeric(v) -> bool:
    """Whether a cell holds a number (aligned right): numbers, "—", and formatted numbers or
    intervals ("0.12", "[0.1, 0.2]", "1.3×")."""
    if isinstance(v, HTML):
        return v.num
    if v is None or isinstance(v, int | float):
        return True
    t = str(v).strip()
    return t in ("—", "") or (
        bool(_NUMERIC.match(t)) and len(t) < 40 and " " not in t.strip("[]").replace(", ", ",")
    )


def table_html(header: list[str], rows: list[list], cls: str | None = None) -> str:
    """A table: numbers aligned right (tabular figures), text left; wide tables scroll inside
    the page rather than widening it."""
    head = "".join(f"<th>{maths(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{fmt(c)}</td>' if _numeric(c) else f"<td>{fmt(c)}</td>" for c in row
        )
        + "</tr>"
        for row in rows
    )
    attr = f' class="{cls}"' if cls else ""
    return (
        f'<div class="scroll"><table{attr}><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


_CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222;
line-height:1.45}
h1{font-size:1.6em} h2{font-size:1.25em;margin-top:1.8em;border-bottom:1px solid #ddd}
h3{font-size:1.05em;margin:1.2em 0 .3em}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f4f4f4} td.num{text-align:right;font-variant-numeric:tabular-nums;
white-space:nowrap}
img{max-width:100%;border:1px solid #eee;margin:.4em 0} .note{color:#555;font-size:.9em}
pre{background:#f7f7f7;padding:.6em;overflow-x:auto;font-size:.85em}
.ok{color:#1a7f37;font-weight:bold} .no{color:#c62828;font-weight:bold}
.maybe{color:#8a6d00;font-weight:bold} .below{color:#1f5fa8;font-weight:bold}
.ok,.no,.maybe,.below{white-space:nowrap}
.headline{border:2px solid #2b6cb0;border-radius:6px;background:#f3f8fd;padding:.6em 1em;
margin:1em 0} .headline h2{margin-top:.2em;border:none} .headline table{background:#fff}
.headline p{margin:.4em 0}
details{margin:.6em 0} summary{cursor:pointer;color:#2b6cb0}
"""


class Report:
    """An HTML page built section by section; ``write`` embeds every image."""

    def __init__(self, title: str):
        self.title = title
        self.parts: list[str] = []

    def heading(self, text: str) -> None:
        self.parts.append(f"<h2>{maths(text)}</h2>")

    def text(self, text: str, cls: str | None = None) -> None:
        attr = f' class="{cls}"' if cls else ""
        self.parts.append(f"<p{attr}>{maths(text)}</p>")

    def raw(self, fragment: str) -> None:
        self.parts.append(fragment)

    def table(self, header: list[str], rows: list[list]) -> None:
        self.parts.append(table_html(header, rows))

    def image(self, path: Path, alt: str = "") -> None:
        self.parts.append(image_html(path, alt))

    def code(self, text: str) -> None:
        self.parts.append(f"<pre>{html.escape(text)}</pre>")

    def headline(self, title: str, fragment: str) -> None:
        """A highlighted box (the result first): ``fragment`` is HTML."""
        self.parts.append(f'<div class="headline"><h2>{maths(title)}</h2>{fragment}</div>')

    def details(self, summary: str, fragment: str) -> None:
        """A folded section: ``summary`` shown, ``fragment`` (HTML) on a click."""
        self.parts.append(f"<details><summary>{maths(summary)}</summary>{fragment}</details>")

    def write(self, path: Path) -> Path:
        page = (
            f"<!doctype html><html><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{html.escape(self.title)}</title><style>{_CSS}</style></head><body>"
            f"<h1>{maths(self.title)}</h1>" + "\n".join(self.parts) + "</body></html>"
        )
        return atomic_write(path, lambda tmp: Path(tmp).write_text(page, encoding="utf-8"))


def image_html(path: Path, alt: str = "") -> str:
    """An <img> with the PNG embedded (base64), so the page needs nothing else."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt or Path(path).name)}">'


# --- figures of a run -----------------------------------------------------------------------
def loss_figure(records: list[dict], path: Path) -> Path:
    plt = _plt()
    from matplotlib.ticker import FuncFormatter, LogLocator

    fig, ax = plt.subplots(figsize=(6.4, 3.6), constrained_layout=True)
    steps = [r["step"] for r in records]
    losses = [r["loss"] for r in records]
    ax.plot(steps, losses, color="tab:blue", alpha=0.35, lw=1, label="loss at the logged step")
    k = max(1, len(losses) // 20)  # a running mean over ~5 % of the log
    smooth = [sum(losses[max(0, i - k + 1) : i + 1]) / len(losses[max(0, i - k + 1) : i + 1])
              for i in range(len(losses))]  # fmt: skip
    ax.plot(steps, smooth, color="tab:blue", lw=1.8, label=f"running mean of {k}")
    positive = [v for v in losses if v > 0]
    if positive and len(positive) == len(losses) and max(positive) / min(positive) > 20:
        ax.set_yscale("log")  # several decades: log axis with plain numbers
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    ax.legend(fontsize=8, loc="upper right")
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
    ref = panels[0][1].detach().double()
    reference_range = (float(ref.min()), float(ref.max()))  # one grey scale for every panel
    fig, axes = plt.subplots(
        1, len(panels), figsize=(3.2 * len(panels), 3.4), constrained_layout=True, squeeze=False
    )
    for ax, (name, pts) in zip(axes[0], panels, strict=True):
        imgs = pts[: k * k].detach().cpu().double()
        n = imgs.shape[0]
        side = round(imgs[0].numel() ** 0.5)
        imgs = imgs.reshape(n, side, side)
        # a thin light-grey gap (NaN) between the images, not thick black lines
        grid = torch.full((k * (side + 1) - 1, k * (side + 1) - 1), math.nan, dtype=torch.float64)
        for i in range(n):
            r, c = divmod(i, k)
            grid[r * (side + 1) : r * (side + 1) + side, c * (side + 1) : c * (side + 1) + side] = (
                imgs[i]
            )
        cmap = plt.get_cmap("gray_r").copy()
        cmap.set_bad("#d9d9d9")
        lo, hi = float(reference_range[0]), float(reference_range[1])
        ax.imshow(grid.numpy(), cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")
        ax.set_title(name, fontsize=10)
        ax.axis("off")
    return save_figure(fig, path)


@torch.no_grad()
def plot_samples(x: torch.Tensor, path: Path, target=None, title: str = "", dims: int = 4) -> Path:
    """A figure of samples (``scorelab plot``): for 2-D points a scatter over the target's
    density (or a target sample, in grey, where the density is not known); for images a
    grid; otherwise a pair plot of the first ``dims`` coordinates (histograms on the
    diagonal), samples in blue over a target sample in grey."""
    plt = _plt()
    x = x.detach().cpu().double()
    n = x.shape[0]
    shape = tuple(target.event_shape) if target is not None else tuple(x.shape[1:])
    flat = x.reshape(n, -1)
    D = flat.shape[1]
    is_image = len(shape) >= 2 or (len(shape) == 1 and D in (64, 784))
    g = torch.Generator().manual_seed(0)
    ref = None
    if target is not None:
        try:
            ref = target.sample(min(n, 4000), g, dtype=torch.float64).reshape(-1, D)
        except Exception:  # a target that cannot be sampled: the samples alone
            ref = None
    if is_image:
        panels = [("samples", x)] if ref is None else [("target", ref), ("samples", x)]
        return _image_grids(panels, path)
    if D == 1:
        fig, ax = plt.subplots(figsize=(5.5, 3.6), constrained_layout=True)
        if ref is not None:
            ax.hist(ref[:, 0], bins=60, density=True, color="lightgray", label="target")
        ax.hist(flat[:, 0], bins=60, density=True, histtype="step", color="tab:blue", lw=1.5,
                label="samples")  # fmt: skip
        ax.legend(fontsize=8)
    elif D == 2:
        fig, ax = plt.subplots(figsize=(5.4, 5.2), constrained_layout=True)
        both = flat if ref is None else torch.cat([flat, ref])
        lo = torch.quantile(both, 0.001, dim=0) - 0.3
        hi = torch.quantile(both, 0.999, dim=0) + 0.3
        if target is not None and target.has_density:
            gx = torch.linspace(float(lo[0]), float(hi[0]), 160, dtype=torch.float64)
            gy = torch.linspace(float(lo[1]), float(hi[1]), 160, dtype=torch.float64)
            fx, fy = torch.meshgrid(gx, gy, indexing="xy")
            logp = target.log_prob(torch.stack([fx.reshape(-1), fy.reshape(-1)], 1))
            ax.contourf(fx.numpy(), fy.numpy(), logp.exp().reshape(fx.shape).numpy(), levels=12,
                        cmap="Greys", alpha=0.6)  # fmt: skip
        elif ref is not None:
            ax.scatter(ref[:, 0], ref[:, 1], s=2, c="lightgray", label="target")
        pts = flat[:4000]
        ax.scatter(pts[:, 0], pts[:, 1], s=3, c="tab:blue", alpha=0.6, label="samples")
        ax.set_xlim(float(lo[0]), float(hi[0]))
        ax.set_ylim(float(lo[1]), float(hi[1]))
        ax.set_aspect("equal")
    else:
        k = min(int(dims), D)
        fig, axes = plt.subplots(k, k, figsize=(2.2 * k, 2.2 * k), constrained_layout=True,
                                 squeeze=False)  # fmt: skip
        pts = flat[:2000]
        for i in range(k):
            for j in range(k):
                ax = axes[i][j]
                if i == j:
                    if ref is not None:
                        ax.hist(ref[:, i], bins=40, density=True, color="lightgray")
                    ax.hist(pts[:, i], bins=40, density=True, histtype="step", color="tab:blue")
                else:
                    if ref is not None:
                        r = ref[:2000]
                        ax.scatter(r[:, j], r[:, i], s=1, c="lightgray")
                    ax.scatter(pts[:, j], pts[:, i], s=1, c="tab:blue", alpha=0.5)
                if i == k - 1:
                    ax.set_xlabel(f"x{j + 1}", fontsize=8)
                if j == 0:
                    ax.set_ylabel(f"x{i + 1}", fontsize=8)
                ax.tick_params(labelsize=6)
        title = (title + "; " if title else "") + f"first {k} of {D} coordinates"
    what = "samples (blue)" + ("" if target is None else " over the target (grey)")
    fig.suptitle(f"{title}: {what}" if title else what, fontsize=9)
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
        if target.has_score:  # exact below (wide, black), the model on top (narrow, red)
            _quiver(ax, arrows, target.score(arrows, t, process), "black", width=0.009, alpha=0.5)
        _quiver(ax, arrows, s_model, "tab:red", width=0.004, alpha=0.95)
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
        ax.set_title(f"t = {t:.3g} (σ = {float(process.sigma(t)):.3g})", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(
        "score field: model (red, on top) vs exact (wide grey-black); exact density p_t (blue)",
        fontsize=9,
    )
    return save_figure(fig, path)


def _quiver(ax, at, vec, color, width=0.004, alpha=0.75):
    v = vec / (1 + vec.norm(dim=1, keepdim=True))  # bounded arrows: direction is what matters
    # a fixed scale, so that the two fields' arrows are comparable in length
    ax.quiver(at[:, 0], at[:, 1], v[:, 0], v[:, 1], color=color, alpha=alpha, width=width,
              scale=26, scale_units="width", angles="xy")  # fmt: skip


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
    """The relative residual ρ(t) (left, dimensionless) and E‖ε‖²/D (right, in the units of
    ∂_t s) against σ(t) with 95% bands, one curve per labelled ``diagnose`` result."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), constrained_layout=True)
    for label, d in diagnostics.items():
        prof = d["fpe_profile"]
        sig = [p["sigma"] for p in prof]
        for ax, key, ci in zip(axes, ("relative", "value"), ("relative_ci", "ci"), strict=True):
            line = ax.loglog(sig, [max(p[key], 1e-30) for p in prof], "o-", label=label)[0]
            lo = [max(p[ci][0], 1e-30) for p in prof]
            ax.fill_between(sig, lo, [p[ci][1] for p in prof], color=line.get_color(), alpha=0.2)
    axes[0].axhline(1.0, color="grey", lw=0.8, ls="--")
    axes[0].set_ylabel("ρ = E‖ε‖² / E(‖∂ₜs‖² + ‖∇φ‖²)")
    axes[0].set_title("relative residual (0 exact, 1 unrelated sides)", fontsize=9)
    axes[1].set_ylabel("E‖ε(x,t)‖²/D, x ~ p_t")
    axes[1].set_title("absolute residual (units of ∂ₜs)", fontsize=9)
    for ax in axes:
        ax.set_xlabel("σ(t)")
        ax.legend(fontsize=8)
    fig.suptitle(title)
    return fig


def diagnostics_table(d: dict) -> str:
    exact = d.get("nll_exact")
    rows = [
        [
            "FPE relative residual ρ, mean over t (0 = exact score, 1 = the equation's two "
            "sides unrelated)",
            d["fpe_relative_residual"]["value"],
            _ci(d["fpe_relative_residual"]["ci"]),
        ],
        [
            "FPE residual E‖ε‖²/D, mean over t (units of ∂ₜs; dominated by the smallest σ)",
            d["fpe_residual"]["value"],
            _ci(d["fpe_residual"]["ci"]),
        ],
        ["non-conservativity ‖J−Jᵀ‖²/‖J‖²", d["conservativity"]["value"], "—"],
        [f"PF-ODE NLL, nats (NFE {d['nll']['nfe']})", d["nll"]["value"], _ci(d["nll"]["ci"])],
    ]
    if exact is not None:
        rows.append([f"exact NLL of {exact['of']}, nats", exact["value"], "—"])
    return table_html(["diagnostic", "value", "95% CI"], rows)


# --- the run report -------------------------------------------------------------------------
# what each bound family bounds, and the metric of the samples measured beside it
BOUNDS = {
    "kl": ("paper A: KL, VP", "KL(target ‖ samples)", "kl_knn_reverse"),
    "w2": ("paper A: W2, VP, Gaussian target", "W2(target, samples)", "w2"),
    "ve": ("paper C: KL, VE/EDM", "KL(target ‖ samples)", "kl_knn_reverse"),
    "w1_manifold": ("paper E: W1, compact support", "W1(target, samples)", "w1"),
}

CI_EXCLUDES_NOTE = (
    "† The interval does not contain the value. These are basic (bias-corrected) bootstrap "
    "intervals, [2·value − q97.5, 2·value − q2.5] of the resampled metric: when resampling "
    "inflates a metric (duplicated points make TV, W2 or MMD of a resample larger), the "
    "interval moves below the value, and excluding it says the value itself is biased "
    "upward by about the same amount. Compare the interval, rather than the value, with "
    "the floor."
)
RATIO_NOTE = (
    "* No ratio: the floor is ≤ 0. MMD² and the kNN KL estimators are unbiased or "
    "bias-corrected, so between two target samples they scatter around 0 and may be "
    "negative; compare the value and its interval with the floor directly."
)


def ci_excludes(value, ci) -> bool:
    return value is not None and ci is not None and not (ci[0] <= value <= ci[1])


def metric_rows(js: dict) -> tuple[list[list], set[str]]:
    """Rows (metric, value, 95 % CI, floor, value / floor) of an evaluation's JSON and the
    footnotes they need ("ci", "ratio")."""
    rows, notes = [], set()
    for name, v in js.items():
        if name == "_skipped":
            continue
        ci = _ci(v["ci"])
        if ci_excludes(v["value"], v["ci"]):
            ci, _ = HTML(f"{ci} †", num=True), notes.add("ci")
        r = ratio(v["value"], v["floor"])
        if r is None and v["value"] is not None and v["floor"] is not None:
            cell, _ = HTML("—*", num=True), notes.add("ratio")
        else:
            cell = None if r is None else HTML(f"{r:.2f}×", num=True)
        rows.append([name, v["value"], ci, v["floor"], cell])
    return rows, notes


def _headline(cfg, result, trainer, records) -> str:
    n = cfg.sampler.n
    loss = ""
    if records:
        tail = [r["loss"] for r in records[-max(1, len(records) // 10) :]]
        loss = f", final loss {sum(tail) / len(tail):.3g} (mean of the last {len(tail)} logs)"
    resumed = getattr(trainer, "resumed_from", 0) or 0
    how = (
        f"in {result.train_seconds:.1f} s"
        if not resumed
        else f"(resumed at step {resumed}; {result.train_seconds:.1f} s in this run)"
    )
    parts = [
        f"<p>Trained {trainer.step} steps {how}{loss}; each sampler "
        f"drew n = {n} samples, measured against the exact target. The <b>floor</b> is the "
        "same metric between two independent target samples of size n: a sampler at its floor "
        "is as close to the target as n samples can show.</p>"
    ]
    rows = []
    for o in result.outcomes:
        js = o.evaluation.to_json()
        w2, nll = js.get("w2"), js.get("nll")
        row = [HTML(f"<b>{html.escape(o.sampler)}</b>"), o.nfe, HTML(f"{o.seconds:.2f} s", True)]
        if w2 is not None:
            r = ratio(w2["value"], w2["floor"])
            at_floor = w2["ci"] is not None and w2["ci"][0] <= w2["floor"]
            reading = (
                "at the floor (its CI reaches it)"
                if at_floor
                else (f"{r:.2g}× the floor" if r is not None else "—")
            )
            row += [w2["value"], w2["floor"], None if r is None else HTML(f"{r:.2f}×", True)]
            row.append(reading)
        if nll is not None:
            row += [nll["value"], nll["floor"]]
        rows.append(row)
    header = ["sampler", "NFE", "time"]
    if any(o.evaluation.to_json().get("w2") for o in result.outcomes):
        header += ["W2", "W2 floor", "W2 / floor", "reading"]
    if any(o.evaluation.to_json().get("nll") for o in result.outcomes):
        header += ["NLL (nats)", "NLL of target samples"]
    parts.append(table_html(header, rows))
    d = result.diagnostics
    if d and d.get("fpe_relative_residual"):
        rel = d["fpe_relative_residual"]
        parts.append(
            f"<p>Score Fokker–Planck relative residual ρ (mean over t): {fmt(rel['value'])} "
            f"[{fmt(rel['ci'][0])}, {fmt(rel['ci'][1])}] — 0 for an exact score, 1 when the "
            "equation's two sides are unrelated (docs/theory.md §7.3).</p>"
        )
    if d and d.get("nll_exact"):
        parts.append(
            f"<p>Likelihood of the trained model (PF-ODE, NFE {d['nll']['nfe']}): "
            f"{fmt(d['nll']['value'])} nats [{fmt(d['nll']['ci'][0])}, {fmt(d['nll']['ci'][1])}]"
            f" against the exact {fmt(d['nll_exact']['value'])} nats.</p>"
        )
    return "".join(parts)


def config_differences(cfg, skip: tuple[str, ...] = ()) -> list[list]:
    """[key, value, default] for every key whose value differs from the default config of
    the same target kind (keys the defaults do not have show "—" as their default)."""
    from .config import parse_config

    data = cfg.model_dump(mode="json")
    try:
        base = parse_config({"target": {"kind": cfg.target.kind}}).model_dump(mode="json")
    except Exception:  # a target with required parameters: take the run's target as is
        base = parse_config({"target": data["target"]}).model_dump(mode="json")
    ours, theirs = _flatten(data), _flatten(base)
    rows = []
    for key, value in ours.items():
        if key.split(".")[0] in skip:
            continue
        if key not in theirs and value is None:
            continue
        default = theirs.get(key, "—")
        if value != default:
            rows.append([key, _yaml_value(value), _yaml_value(default)])
    return rows


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _yaml_value(v) -> str:
    if isinstance(v, str):
        return v
    return json.dumps(v, ensure_ascii=False)


def write_run_report(cfg, result, trainer, model) -> Path:
    """Figures and report.html of a finished ``scorelab run``: the result first (W2 against
    its floor per sampler), then the samples, every metric, training, the score, the bounds
    beside what was measured, the diagnostics and the config's differences from the
    defaults."""
    run_dir = Path(result.run_dir)
    records = _read_jsonl(run_dir / "metrics.jsonl")
    rep = Report(f"scorelab run — {cfg.target.kind} under {cfg.process.kind}")
    rep.headline("Result", _headline(cfg, result, trainer, records))

    rep.heading("Samples")
    g = torch.Generator().manual_seed(cfg.seed + 1)
    reference = trainer.target.sample(cfg.sampler.n, g, dtype=torch.float64)
    rep.image(
        samples_figure(
            {o.sampler: o.samples for o in result.outcomes}, reference, run_dir / "samples.png"
        )
    )

    rep.heading("Metrics")
    rep.text(
        "95 % bootstrap intervals; floor: the metric between two target samples of the same "
        "size; value / floor near 1 means the samples are as close as n points can show.",
        "note",
    )
    footnotes: set[str] = set()
    for o in result.outcomes:
        rep.raw(f"<h3>{html.escape(o.sampler)} — NFE {o.nfe}, {o.seconds:.2f} s</h3>")
        js = o.evaluation.to_json()
        rows, notes = metric_rows(js)
        footnotes |= notes
        rep.table(["metric", "value", "95 % CI", "floor", "value / floor"], rows)
        if js["_skipped"]:
            rep.text(
                "skipped: " + "; ".join(f"{k} ({v})" for k, v in js["_skipped"].items()), "note"
            )
        how = [[r.name, r.note] for r in o.evaluation.results if r.note]
        if how:
            rep.details("how each metric was computed", table_html(["metric", "method"], how))
    if "ci" in footnotes:
        rep.text(CI_EXCLUDES_NOTE, "note")
    if "ratio" in footnotes:
        rep.text(RATIO_NOTE, "note")

    if records:
        rep.heading("Training loss")
        rep.image(loss_figure(records, run_dir / "loss.png"))
    if trainer.target.event_shape == (2,):
        rep.heading("Score field")
        rep.image(field_figure(model, trainer.target, trainer.process, run_dir / "field.png"))
    if result.score_error:
        rep.heading("Score error against the exact score")
        rep.image(score_error_figure(result.score_error, run_dir / "score_error.png"))
    if result.bounds:
        rep.heading("Theoretical bounds beside the measured error")
        rep.raw(bounds_html(result.bounds, getattr(result, "bounds_measured", None) or {}))
    for heading, fragment in getattr(result, "sections", None) or []:  # e.g. the error budget
        rep.heading(heading)
        rep.raw(fragment)
    if result.diagnostics:
        rep.heading("Fokker–Planck diagnostics (paper D)")
        rep.raw(diagnostics_table(result.diagnostics))
        fig = residual_profile_figure({"trained model": result.diagnostics})
        rep.image(save_figure(fig, run_dir / "fpe_residual.png"))

    rep.heading("Configuration")
    import yaml

    diff = config_differences(cfg, skip=("score",))
    rep.text(
        "What differs from the defaults (the score is the trained network; σ_data, when not "
        "set, is estimated from the data):",
        "note",
    )
    rep.table(["key", "value", "default"], diff)
    rep.details(
        "the full resolved config (config.yaml)",
        f"<pre>{html.escape(yaml.safe_dump(cfg.model_dump(mode='json'), sort_keys=False))}</pre>",
    )
    return rep.write(run_dir / "report.html")


def bounds_html(bounds: dict, measured: dict) -> str:
    """One row per bound: what it bounds, its terms, its total, and the measured value of
    the main sampler's samples beside it; refusals with their reason (left-aligned)."""
    rows = []
    for family, terms in bounds.items():
        title, what, _ = BOUNDS.get(family, (family, "", None))
        if "refused" in terms:
            rows.append([title, what, HTML(f"<i>refused:</i> {maths(str(terms['refused']))}"),
                         None, None])  # fmt: skip
            continue
        parts = ", ".join(f"{k} {fmt(v)}" for k, v in terms.items() if k != "total")
        m = measured.get(family)
        seen = None
        if m is not None and m.get("value") is not None:
            seen = HTML(f"{fmt(m['value'])} {_ci(m.get('ci'))}", num=True)
        rows.append([title, what, HTML(parts), terms.get("total"), seen])
    note = (
        '<p class="note">Measured: the main sampler\'s samples (kNN estimate of '
        "KL(target ‖ samples), exact-OT W2 or W1, with 95 % CI). The bounds hold for the "
        "schemes of their papers with N = sampler.steps steps and ε measured from the "
        "trained model where the exact score is known, so a measured value far below the "
        "bound is expected; above it would be a finding.</p>"
    )
    return table_html(["bound", "of", "terms", "total", "measured [95 % CI]"], rows) + note


def _ci(ci):
    return "—" if ci is None else f"[{fmt(ci[0])}, {fmt(ci[1])}]"


def _read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
