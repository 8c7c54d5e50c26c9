"""The study's figures: error and bound against a, for the Gaussian, MG25 and trained networks."""

from __future__ import annotations

import torch

from ..common import Study
from .settings import COSINE, SAMPLERS, SHORT, D, Settings, T, grid_values, make_process, n_keys


def _xy(values: dict, cos_x: float):
    grid = grid_values(values)
    xs = sorted(grid)
    return xs, [grid[a] for a in xs], cos_x, values.get(COSINE)


def _plot_curves(ax, series: list[tuple[str, dict, dict]], cos_x: float, a_mark=None):
    for name, values, style in series:
        xs, ys, cx, cy = _xy(values, cos_x)
        (line,) = ax.plot(xs, ys, label=name, **style)
        if cy is not None:
            ax.plot([cx], [cy], marker="*", ms=10, ls="none", color=line.get_color())
    if a_mark is not None:
        ax.axvline(a_mark, color="grey", ls=":", lw=1)
    ax.set_yscale("log")
    lo, hi = ax.get_ylim()  # headroom above the top curve (often a bound) for the legend
    ax.set_ylim(lo, hi * (hi / lo) ** 0.3)
    ticks = [-10, -5, 0, 5, 10]
    ax.set_xticks([*ticks, cos_x], [*map(str, ticks), "cos"])
    ax.set_xlabel("a  (★ = cosine schedule)")
    ax.grid(alpha=0.3)


_COLORS = {25: "tab:red", 50: "tab:orange", 100: "tab:blue"}

_LS = {"euler_maruyama": "-", "exponential_integrator": "--"}

_SAMPLER_COLOR = {"euler_maruyama": "C0", "exponential_integrator": "C1"}


def figure_gaussian(study: Study, gauss: dict, tuning: dict) -> None:
    """Gaussian: exact-score KL and W2, and both bounds, against a."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    a_star = tuning[n_keys(tuning)[-1]]["a"]
    for row, metric in enumerate(("kl", "w2")):
        series = [
            (
                f"{SHORT[s]} N={N}",
                gauss["exact"][s][N][metric],
                {"color": _COLORS.get(int(N)), "ls": _LS[s], "marker": "."},
            )
            for s in SAMPLERS
            for N in gauss["exact"][s]
        ]
        _plot_curves(axes[row, 0], series, 12, a_star)
        axes[row, 0].set_ylabel(f"measured {metric.upper()} (exact score)")
        bseries = [
            (
                f"bound N={N}",
                gauss["bounds"][N][metric],
                {"color": _COLORS.get(int(N)), "marker": "."},
            )
            for N in gauss["bounds"]
        ]
        _plot_curves(axes[row, 1], bseries, 12, a_star)
        axes[row, 1].set_ylabel(f"paper A's {metric.upper()} bound")
    axes[0, 0].legend(fontsize=7, ncol=2)
    axes[0, 1].legend(fontsize=7)
    fig.suptitle(
        f"Gaussian N(𝟙, 0.5 I), d = {D}: exact-score error and bound against a "
        f"(dotted: a* = {a_star:.2f}, the W2-bound optimum at N = {n_keys(tuning)[-1]})"
    )
    fig.tight_layout()
    study.figure(fig, "gaussian_error_and_bound_vs_a")


def figure_mg25(study: Study, mg: dict) -> None:
    """MG25: kNN KL and sliced W2 (mean over seeds), and the KL bound, against a."""
    import matplotlib.pyplot as plt

    m = mg["mean"]  # the mean over seeds
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    for ax, metric in zip(axes[:2], ("knn_kl", "sliced_w2"), strict=True):
        series = [
            (
                f"{SHORT[s]} N={N}",
                m["exact"][s][N][metric],
                {"color": _COLORS.get(int(N)), "ls": _LS[s], "marker": "."},
            )
            for s in SAMPLERS
            for N in m["exact"][s]
        ]
        _plot_curves(ax, series, 12)
        if metric == "knn_kl":  # the kNN KL estimate may dip below 0 near its floor
            ax.set_yscale("symlog", linthresh=0.01)
            ax.autoscale(axis="y")  # the log-axis limits (and headroom) do not apply here
        ax.axhline(mg["noise"][metric], color="k", lw=1, ls=":", label="noise (floor RMS)")
        ax.set_ylabel(metric.replace("_", " "))
    axes[0].legend(fontsize=7, ncol=2)
    bseries = [
        (f"KL bound N={N}", m["kl_bound"][N], {"color": _COLORS.get(int(N))}) for N in m["kl_bound"]
    ]
    _plot_curves(axes[2], bseries, 12)
    axes[2].set_ylabel("paper A's KL bound")
    axes[2].legend(fontsize=7)
    fig.suptitle(
        f"MG25 (d = {mg['dim']}, n = {mg['n']}, mean over {len(mg['seeds'])} seeds): "
        "exact-score error and KL bound against a"
    )
    fig.tight_layout()
    study.figure(fig, "mg25_error_and_bound_vs_a")


def figure_trained(study: Study, trained: dict, gauss: dict) -> None:
    """Trained networks: fitted KL and W2 and the bounds against a, beside the exact score."""
    import matplotlib.pyplot as plt

    rows = trained["mean"]  # the mean over seeds
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    N = str(trained["N"])
    for ax, metric in zip(axes, ("kl", "w2"), strict=True):
        meas = {k: v for k, v in rows.items() if k != "tuned"}
        series = [
            (
                f"trained {SHORT[s]}",
                {k: v[s][metric] for k, v in meas.items()},
                {"ls": _LS[s], "marker": "o", "color": _SAMPLER_COLOR[s]},
            )
            for s in SAMPLERS
        ]
        series += [
            (
                f"exact score {SHORT[s]}",
                gauss["exact"][s][N][metric],
                {"ls": _LS[s], "color": "grey"},
            )
            for s in SAMPLERS
        ]
        series.append(
            (
                f"{metric.upper()} bound (measured score error)",
                {k: v[f"{metric}_bound"] for k, v in meas.items()},
                {"color": "k", "marker": "s"},
            )
        )
        _plot_curves(ax, series, 12, trained["a_tuned"])
        tuned = rows["tuned"]
        for s in SAMPLERS:
            ax.plot([trained["a_tuned"]], [tuned[s][metric]], marker="D", color=_SAMPLER_COLOR[s])
        ax.plot([trained["a_tuned"]], [tuned[f"{metric}_bound"]], marker="D", color="k")
        ax.set_ylabel(metric.upper())
        ax.legend(fontsize=7)
    fig.suptitle(
        f"Trained networks (ESM, {trained['train_steps']} steps, width {trained['width']}), "
        f"N = {trained['N']}, n = {trained['n_samples']}, mean over {len(trained['seeds'])} "
        "seeds (◆ = tuned a*)"
    )
    fig.tight_layout()
    study.figure(fig, "trained_error_and_bound_vs_a")


def figure_schedules(study: Study, st: Settings) -> None:
    """The schedules β_a(t) of the a-grid and the clipped cosine."""
    import matplotlib.pyplot as plt

    t = torch.linspace(0, T, 201, dtype=torch.float64)
    fig, ax = plt.subplots(figsize=(6, 4))
    cmap = plt.get_cmap("coolwarm")
    for a in st.a_grid:
        beta = make_process(a).schedule.beta(t)
        ax.plot(
            t,
            beta,
            color=cmap((a + 10) / 20),
            lw=1,
            label=f"a={a:g}" if a in (-10, 0, 10) else None,
        )
    ax.plot(t, make_process(COSINE).schedule.beta(t), color="k", ls="--", label="cosine (clip 20)")
    ax.set_xlabel("t")
    ax.set_ylabel("β(t)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    study.figure(fig, "schedules")
