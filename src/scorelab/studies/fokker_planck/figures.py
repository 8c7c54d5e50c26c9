"""The study's figures: the relative residual profile per arm and the paired effects against α;
the ‖x‖ profile along the PF-ODE per arm (escaping trajectories)."""

from __future__ import annotations

from ...verdicts import mean_ci
from ..common import Study
from .aggregate import log10


def figure_alpha_sweep(study: Study, data: str, process: str, cells: list[dict]) -> None:
    """The residual profile per arm, and the paired FP − DSM effects against α."""
    from ...report import pyplot

    plt = pyplot()

    fig = plt.figure(figsize=(13, 5))
    grid = fig.add_gridspec(2, 4)
    ax0 = fig.add_subplot(grid[:, :2])

    def mean_profile(rows):
        sig = [p["sigma"] for p in rows[0]["profile"]]
        logs = [[log10(r["profile"][j]["relative"]) for r in rows] for j in range(len(sig))]
        return sig, [10 ** (sum(v) / len(v)) for v in logs]

    ax0.loglog(*mean_profile([c["dsm"] for c in cells]), "k-o", label="DSM (g², uniform t)")
    for i, row in enumerate(cells[0]["fp"]):
        ax0.loglog(
            *mean_profile([c["fp"][i] for c in cells]), "-o", ms=3,
            label=f"DSM + FP, α = {row['alpha']:.2g}",
        )  # fmt: skip
    ax0.set_xlabel("σ(t)")
    ax0.set_ylabel("relative residual ρ (geometric mean over seeds)")
    ax0.set_title(f"relative score-FPE residual, {data}, {process.upper()}")
    ax0.legend(fontsize=7)

    alphas = [r["alpha"] for r in cells[0]["fp"]]
    panels = (
        ("relative", "Δ log10 ρ", lambda f, d, k: log10(f[k]) - log10(d[k])),
        ("nll", "median Δ NLL, held out (nats)", lambda f, d, k: f["nll_diff"]["median"][0]),
        ("conservativity", "Δ log10 NC", lambda f, d, k: log10(f[k]) - log10(d[k])),
        ("w2", "Δ W2", lambda f, d, k: f[k] - d[k]),
    )
    for k, (key, label, diff) in enumerate(panels):
        ax = fig.add_subplot(grid[k // 2, 2 + k % 2])
        vals, err = [], [[], []]
        for i in range(len(alphas)):
            m, lo, hi = mean_ci([diff(c["fp"][i], c["dsm"], key) for c in cells])
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


def figure_trajectories(study: Study, data: str, process: str, cells: list[dict]) -> None:
    """Median and maximum over the held-out points of ‖x(σ)‖/(√D·scale) along the PF-ODE, per
    arm (seeds pooled: the median of the per-seed medians, the largest maximum): ≈ 1 for a
    flow that keeps its points on p_t, growing without bound where the field is unstable."""
    from ...report import pyplot

    plt = pyplot()

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharex=True)
    arms = [("DSM", [c["dsm"] for c in cells])] + [
        (f"DSM + FP, α = {row['alpha']:.2g}", [c["fp"][i] for c in cells])
        for i, row in enumerate(cells[0]["fp"])
    ]
    for label, rows in arms:
        sig = [p["sigma"] for p in rows[0]["trajectory"]]
        n = len(sig)
        med = [sorted(r["trajectory"][j]["median"] for r in rows)[len(rows) // 2]
               for j in range(n)]  # fmt: skip
        top = [max(r["trajectory"][j]["max"] for r in rows) for j in range(n)]
        axes[0].loglog(sig, med, "-o", ms=3, label=label)
        axes[1].loglog(sig, top, "-o", ms=3, label=label)
    for ax, what in zip(axes, ("median", "max"), strict=True):
        ax.axhline(1.0, color="grey", lw=0.8, ls="--")
        ax.set_xlabel("σ(t)")
        ax.set_ylabel(f"{what} ‖x(σ)‖ / (√D·scale)")
        ax.set_title(f"{what} over held-out points, PF-ODE from the data", fontsize=9)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"PF-ODE trajectories, {data}, {process.upper()} (scale² = m²·E x₀² + s²)",
                 fontsize=9)  # fmt: skip
    fig.tight_layout()
    study.figure(fig, f"fp_{data}_{process}_trajectories")
    plt.close(fig)
