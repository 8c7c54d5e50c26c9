"""The study's figures: the score errors and the sample metrics against d."""

from __future__ import annotations

import numpy as np

from ..common import Study
from .settings import FAMILIES

COLOURS = {"fixed": "tab:blue", "control": "tab:red"}

LABELS = {"fixed": "fixed complexity (4 modes in a plane)", "control": "control (2^d modes)"}


def _band(ax, dims, per_seed, fam, key, colour):
    vals = np.array([r[fam][key] for r in per_seed])
    ax.fill_between(dims, vals.min(0), vals.max(0), color=colour, alpha=0.15, lw=0)


def plot_score_error(study: Study, res: dict) -> None:
    """The relative score error, and the error relative to the tilt's, against d."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    dims = res["dims"]
    for fam in FAMILIES:
        r = res[fam]
        axes[0].plot(dims, r["relative_mean"], "o-", color=COLOURS[fam], label=LABELS[fam])
        _band(axes[0], dims, res["per_seed"], fam, "relative_mean", COLOURS[fam])
        axes[0].plot(dims, r["baseline_relative_mean"], ":", color=COLOURS[fam], alpha=0.7)
        axes[1].plot(dims, r["tilt_relative_mean"], "o-", color=COLOURS[fam], label=LABELS[fam])
        _band(axes[1], dims, res["per_seed"], fam, "tilt_relative_mean", COLOURS[fam])
    axes[0].set_ylabel("E‖s_θ − s‖² / E‖s‖²  (mean over t)")
    axes[0].set_title("relative score error (dotted: untrained network −x)")
    axes[1].set_ylabel("E‖s_θ − s‖² / E‖∇log h_t‖²  (mean over t)")
    axes[1].set_title("error relative to the tilt's score (untrained = 1)")
    axes[1].axhline(1.0, color="grey", lw=0.8, ls="--")
    for ax in axes:
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("dimension d")
        ax.legend(fontsize=8)
    fig.suptitle(f"mean over {len(res['per_seed'])} seeds (band: min–max over seeds)", fontsize=9)
    fig.tight_layout()
    study.figure(fig, "score_error_vs_d")
    plt.close(fig)


def plot_sample_metrics(study: Study, res: dict) -> None:
    """TV of the axes, W2 of the plane and sliced W2 against d, beside their floors."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    dims = res["dims"]
    panels = [
        ("tv_axes", "TV of the x₁, x₂ marginals", res["floors"]["tv_axes"]),
        ("w2_plane", "W2 of the (x₁, x₂) projection", res["floors"]["w2_plane"]),
        ("sliced_w2", "sliced W2 in R^d", None),
    ]
    for ax, (key, title, floor) in zip(axes, panels, strict=True):
        for fam in FAMILIES:
            ax.plot(dims, res[fam][key], "o-", color=COLOURS[fam], label=LABELS[fam])
            _band(ax, dims, res["per_seed"], fam, key, COLOURS[fam])
            if key == "sliced_w2":
                ax.plot(dims, res[fam]["sliced_w2_floor"], ":", color=COLOURS[fam])
        if floor is not None:
            ax.axhline(floor, color="grey", ls=":", label="floor (exact target samples)")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("dimension d")
        ax.set_title(title)
        ax.legend(fontsize=7)
    fig.tight_layout()
    study.figure(fig, "sample_metrics_vs_d")
    plt.close(fig)
