"""The study's figure: the residual profile per arm and the paired effects against α."""

from __future__ import annotations

from ...verdicts import mean_ci
from ..common import Study
from .aggregate import log10


def figure_alpha_sweep(study: Study, data: str, process: str, cells: list[dict]) -> None:
    """The residual profile per arm, and the paired FP − DSM effects against α."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(13, 5))
    grid = fig.add_gridspec(2, 4)
    ax0 = fig.add_subplot(grid[:, :2])

    def mean_profile(rows):
        sig = [p["sigma"] for p in rows[0]["profile"]]
        logs = [[log10(r["profile"][j]["value"]) for r in rows] for j in range(len(sig))]
        return sig, [10 ** (sum(v) / len(v)) for v in logs]

    ax0.loglog(*mean_profile([c["dsm"] for c in cells]), "k-o", label="DSM (g², uniform t)")
    for i, row in enumerate(cells[0]["fp"]):
        ax0.loglog(
            *mean_profile([c["fp"][i] for c in cells]), "-o", ms=3,
            label=f"DSM + FP, α = {row['alpha']:.2g}",
        )  # fmt: skip
    ax0.set_xlabel("σ(t)")
    ax0.set_ylabel("E‖ε‖²/D (geometric mean over seeds)")
    ax0.set_title(f"score-FPE residual, {data}, {process.upper()}")
    ax0.legend(fontsize=7)

    alphas = [r["alpha"] for r in cells[0]["fp"]]
    panels = (
        ("residual", "Δ log10 residual", log10),
        ("nll", "Δ NLL (nats)", float),
        ("conservativity", "Δ log10 NC", log10),
        ("w2", "Δ W2", float),
    )
    for k, (key, label, tr) in enumerate(panels):
        ax = fig.add_subplot(grid[k // 2, 2 + k % 2])
        vals, err = [], [[], []]
        for i in range(len(alphas)):
            m, lo, hi = mean_ci([tr(c["fp"][i][key]) - tr(c["dsm"][key]) for c in cells])
            vals.append(m)
            err[0].append(m - lo)
            err[1].append(hi - m)
        ax.errorbar(alphas, vals, yerr=err, marker="o", capsize=3)
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xscale("log")
        ax.set_title(label + " (FP − DSM)", fontsize=9)
        ax.tick_params(labelsize=7)
        if k >= 2:
            ax.set_xlabel("α (scorelab's normalisation)", fontsize=8)
    fig.suptitle("mean over seeds, 95 % t-intervals", fontsize=8, x=0.75)
    fig.tight_layout()
    study.figure(fig, f"fp_{data}_{process}")
    plt.close(fig)
