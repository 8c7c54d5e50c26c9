"""The study's figures: W1 and the bound against ε and T, the bound's shape, memorisation."""

from __future__ import annotations

import numpy as np

from ..common import Study
from .settings import GEOMETRIES

STYLE = {
    "exact": ("C0", "exact score"),
    "perturbed": ("C1", "exact + M(1+‖x‖)/σ_t² error"),
    "network": ("C2", "trained network"),
}


def _plt():
    from ...report import pyplot

    return pyplot()


def _band(ax, x, rows, color, label, style="o-"):
    """Mean over seeds (markers) with every seed's curve (thin)."""
    arr = np.asarray(rows, dtype=float)
    for r in arr:
        ax.plot(x, r, "-", color=color, alpha=0.25, lw=0.8)
    ax.plot(x, arr.mean(axis=0), style, color=color, label=label)


def _window(ax, log10_values, top: float = 3.0) -> None:
    """Log10 values on a linear axis, cut at ``top``: the surrogate bound spans thousands of
    decades at small ε (10^21700 at ε = 10⁻⁵), which would flatten everything else, so the
    axis shows the decades where it compares with W1 and says how far off it goes."""
    finite = [v for v in log10_values if v is not None and np.isfinite(v)]
    if not finite or max(finite) <= top:
        return
    ax.set_ylim(min(min(finite), -1.5) - 0.25, top)
    ax.annotate(
        f"↑ off the chart: the bound reaches 10^{max(finite):.0f}",
        xy=(0.02, 0.97),
        xycoords="axes fraction",
        va="top",
        fontsize=8,
    )


def figure_eps(study: Study, cfg: dict, per_seed: list[dict]) -> None:
    """W1 and the surrogate bound against ε, per geometry and score."""
    plt = _plt()
    eps = cfg["eps"]
    fig, axes = plt.subplots(2, 2, figsize=(12, 8), squeeze=False)
    for j, geo in enumerate(GEOMETRIES):
        top, bottom = axes[:, j]
        names = [k for k in STYLE if k in per_seed[0][geo]]
        for name in names:
            color, label = STYLE[name]
            _band(top, eps, [s[geo][name]["w1"] for s in per_seed], color, label)
            _band(
                bottom,
                eps,
                [s[geo][name]["log10_bound"] for s in per_seed],
                color,
                f"bound, {label}",
                "s-",
            )
            _band(bottom, eps, [np.log10(s[geo][name]["w1"]) for s in per_seed], color, None, "o--")
        _band(
            top,
            eps,
            [s[geo]["w1_p_eps"] for s in per_seed],
            "k",
            "W1(π, p_ε): early stopping",
            "--",
        )
        top.axhline(
            np.mean([np.mean(s[geo]["floors"]) for s in per_seed]),
            color="gray",
            ls=":",
            label="W1 floor (n samples)",
        )
        for ax in (top, bottom):
            ax.set_xscale("log")
            ax.set_xlabel("early-stopping time ε")
            ax.grid(alpha=0.3)
        top.set_yscale("log")
        top.set_ylabel("W1(samples, law)")
        top.set_title(f"{geo} in R^{cfg['dim']}, T = {cfg['T']:g} ({len(per_seed)} seeds)")
        bottom.set_ylabel("log10 of: surrogate bound (solid), W1 (dashed)")
        _window(bottom, [v for s in per_seed for k in names for v in s[geo][k]["log10_bound"]])
    axes[0, 0].legend(fontsize=8)
    axes[1, 0].legend(fontsize=7)
    fig.tight_layout()
    study.figure(fig, "w1_vs_eps")


def figure_T(study: Study, cfg: dict, per_seed: list[dict]) -> None:
    """W1 against T on π_n, σ-geometric and uniform grids."""
    plt = _plt()
    Ts = cfg["T_grid"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    for ax, kind in zip(axes, ("geometric", "uniform"), strict=True):
        _band(
            ax, Ts, [s["empirical"]["T_sweep"][kind]["w1"] for s in per_seed], "C0", "exact score"
        )
        ax.axhline(
            np.mean([np.mean(s["empirical"]["floors_T"]) for s in per_seed]),
            color="gray",
            ls=":",
            label="floor: n draws of π_n",
        )
        ax.set_xscale("log")
        ax.set_xlabel("horizon T")
        ax.set_ylabel("W1(samples, π_n)")
        ax.grid(alpha=0.3)
        what = "σ-geometric grid" if kind == "geometric" else "uniform grid, δ = (T − ε)/K"
        ax.set_title(f"π_n, ε = {cfg['eps_T_sweep']:g} ({what})")
        ax.legend(fontsize=8)
    fig.tight_layout()
    study.figure(fig, "w1_vs_T")


def figure_bound_shape(study: Study, shape: dict) -> None:
    """The surrogate bound against ε, and against T at two ε."""
    plt = _plt()
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    a.plot(shape["eps"], shape["log10_bound"], "-", color="C0")
    a.axvline(shape["eps_star"], color="gray", ls=":", label=f"ε* = {shape['eps_star']:.3g}")
    a.set_xscale("log")
    a.set_xlabel("ε")
    a.set_ylabel(f"log10 bound (exact score, T = {shape['T_eps']:g})")
    _window(a, shape["log10_bound"])
    a.legend()
    b.plot(shape["T"], shape["log10_bound_T"], "o-", color="C0", label=f"ε = {shape['eps_T']:g}")
    b2 = b.twinx()
    star = [(T, v) for T, v in zip(shape["T"], shape["log10_bound_T_at_eps_star"], strict=True)]
    star = [p for p in star if p[1] is not None]
    b2.plot([p[0] for p in star], [p[1] for p in star], "s--", color="C3")
    b2.set_ylabel(f"log10 bound at ε* = {shape['eps_star']:.3g} (dashed)", color="C3")
    b.set_xscale("log")
    b.set_xlabel("T")
    b.set_ylabel(f"log10 bound at ε = {shape['eps_T']:g} (solid)")
    for ax in (a, b):
        ax.grid(alpha=0.3)
    fig.suptitle("The surrogate bound (ours, docs/theory.md §9.5) on the circle")
    fig.tight_layout()
    study.figure(fig, "bound_shape")


def figure_memorisation(study: Study, cfg: dict, per_seed: list[dict], first: dict) -> None:
    """Memorised fraction and d₁/d₂ against ε, and the first seed's samples."""
    plt = _plt()
    fig, axes = plt.subplots(1, 4, figsize=(18, 4.2))
    mem_eps = cfg["memorisation_eps"]
    for name in ("exact", "network"):
        color, label = STYLE[name]
        rows = [s["empirical"]["memorisation"][name] for s in per_seed]
        _band(axes[0], mem_eps, [r["memorised_fraction"] for r in rows], color, label)
        _band(axes[1], mem_eps, [r["nn_ratio_mean"] for r in rows], color, label)
    axes[0].set_ylabel("memorised fraction")
    axes[1].set_ylabel("mean d₁/d₂ (nearest / 2nd nearest)")
    for ax in axes[:2]:
        ax.set_xscale("log")
        ax.set_xlabel("ε")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    plane = np.asarray(first["points_plane"])
    for ax, name in zip(axes[2:], ("exact", "network"), strict=True):
        xy = np.asarray(first[name]["samples_plane"])
        ax.scatter(xy[:, 0], xy[:, 1], s=3, alpha=0.4, color=STYLE[name][0], label="samples")
        ax.scatter(plane[:, 0], plane[:, 1], s=30, marker="x", color="k", label="training points")
        ax.set_aspect("equal")
        ax.set_title(f"{STYLE[name][1]}, ε = {min(mem_eps):g} (first seed)")
        ax.legend(fontsize=7, loc="center")
    fig.tight_layout()
    study.figure(fig, "memorisation")
