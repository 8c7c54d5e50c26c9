"""The README's main job on embedded defaults (first version).

A 2-D Gaussian mixture pushed through a VP process with the cosine schedule: samples of the
noised marginals at several times, drawn over the exact density p_t and score field, and the
sample moments checked against the exact ones. The training issue turns this into the full
train → sample → evaluate → report pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from .config import build_process, build_target

TIMES = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0)

DEFAULTS = {
    "seed": 0,
    "target": {"kind": "gmm", "preset": "ring8"},
    "process": {"kind": "vp", "schedule": {"kind": "cosine"}},
    "n": 4000,
}


@dataclass
class MarginalRow:
    t: float
    m: float
    s: float
    sample_var: float
    exact_var: float
    mean_log_p: float


def run(out: Path) -> tuple[list[MarginalRow], Path]:
    """Draw the marginals, check their variance, plot them; returns the table and the PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    target = build_target(DEFAULTS["target"])
    process = build_process(DEFAULTS["process"])
    g = torch.Generator().manual_seed(DEFAULTS["seed"])
    x0 = target.sample(DEFAULTS["n"], g, dtype=torch.float64)
    cov0 = target.covariance()

    lim = 3.5
    grid = torch.linspace(-lim, lim, 121, dtype=torch.float64)
    gx, gy = torch.meshgrid(grid, grid, indexing="xy")
    pts = torch.stack([gx.reshape(-1), gy.reshape(-1)], 1)
    coarse = torch.linspace(-lim, lim, 15, dtype=torch.float64)
    cx, cy = torch.meshgrid(coarse, coarse, indexing="xy")
    arrows = torch.stack([cx.reshape(-1), cy.reshape(-1)], 1)

    fig, axes = plt.subplots(
        1, len(TIMES), figsize=(3.2 * len(TIMES), 3.4), constrained_layout=True
    )
    rows = []
    for ax, t in zip(axes, TIMES, strict=True):
        xt = process.sample_marginal(x0, t, g)
        m, s = float(process.scale(t)), float(process.std(t))
        exact_var = float(torch.trace(m**2 * cov0) / 2 + s**2)
        rows.append(
            MarginalRow(
                t,
                m,
                s,
                float(xt.var(0).mean()),
                exact_var,
                float(target.log_prob_t(xt, t, process).mean()),
            )
        )
        logp = target.log_prob_t(pts, t, process).reshape(gx.shape)
        ax.contourf(gx.numpy(), gy.numpy(), logp.exp().numpy(), levels=20, cmap="Blues")
        ax.scatter(xt[:800, 0].numpy(), xt[:800, 1].numpy(), s=2, c="k", alpha=0.5)
        sc = target.score(arrows, t, process)
        sc = sc / (1 + sc.norm(dim=1, keepdim=True))  # bounded arrows; direction is what matters
        ax.quiver(
            arrows[:, 0].numpy(),
            arrows[:, 1].numpy(),
            sc[:, 0].numpy(),
            sc[:, 1].numpy(),
            color="tab:red",
            alpha=0.7,
            width=0.004,
        )
        ax.set_title(f"t = {t:g}   m = {m:.2f}, s = {s:.2f}", fontsize=9)
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(
        "ring8 mixture under VP (cosine): exact p_t (blue), samples (black), exact score (red)"
    )
    png = out / "marginals.png"
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return rows, png
