"""The study's figures and their report sections: training weights, training and the E_S
share, the score error per σ, the grid comparisons and the samples.
"""

from __future__ import annotations

import math

import numpy as np

from ..common import Study
from .settings import (
    DESIGNS,
    GRIDS,
    MID_RANGE,
    SIGMA_MIN,
    UNDER_SHARE,
    WELL_SHARE,
    Settings,
    profile_sigmas,
)

COLORS = {"edm": "C0", "song": "C1", "song_precond": "C2"}


def figures(study: Study, cells: list[dict], s: Settings, floor_sd: float) -> None:
    """The report's figures after the training weights, each in its section."""
    figure_training(study, cells, s)
    figure_score_error(study, cells[0], s)
    figure_grids(study, cells, s, floor_sd)
    figure_samples(study, cells[0], s)


def figure_weights(study: Study, ls: np.ndarray, w: dict[str, np.ndarray]) -> None:
    """The weight each design puts on the normalised error per unit of ln σ."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.4))
    for key in ("edm", "song"):  # song_precond trains with Song's weights
        ax.plot(ls / math.log(10), w[key] / w[key].max(), label=DESIGNS[key].label)
    ax.set_xlabel("log10 σ")
    ax.set_ylabel("total weight (max = 1)")
    ax.set_title("Training weight per unit ln σ")
    ax.legend(fontsize=8)
    fig.tight_layout()
    study.section("Training weights")
    study.text(
        "The weight each design puts on the normalised error ‖σ s_θ + z‖² per unit of ln σ. "
        "EDM's is a mixture of two Gaussian bumps (docs/theory.md §6.6); Song's is flat."
    )
    study.figure(fig, "weights")


def figure_training(study: Study, cells: list[dict], s: Settings) -> None:
    """Training: loss, excess, E_S share along the EDM design's training."""
    plt = pyplot()
    first = cells[0]
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    for key in DESIGNS:
        r = first["training"][key]
        x = (np.arange(len(r["loss_smoothed"])) + 0.5) * r["loss_window"]
        (line,) = axes[0].plot(x, r["loss_smoothed"], label=DESIGNS[key].label)
        axes[0].axhline(r["loss_floor"], color=line.get_color(), ls="--", lw=0.8)
        axes[1].semilogy(r["step"], np.asarray(r["excess"]) / r["excess"][0], label=key)
    ax = axes[2]
    for i, c in enumerate(cells):
        sc = c["scan"]
        for n, ls in ((s.n_compare, "-"), (s.n_small, ":")):
            for g, color in (("edm", "C0"), ("geometric", "C3")):
                ax.plot(
                    sc["step"],
                    sc["share"][f"{g}/{n}"],
                    ls,
                    color=color,
                    lw=0.8,
                    label=f"{g} grid, N = {n}" if i == 0 else None,
                )
        for which, marker in (("well", "o"), ("under", "s")):
            ck = c["checkpoints"][which]
            ax.plot(
                [ck["step"]],
                [ck["share"]["geometric"]],
                marker,
                color="k",
                ms=4,
                label=f"{which}-trained checkpoint" if i == 0 else None,
            )
    for v in (WELL_SHARE, UNDER_SHARE):
        ax.axhline(v, color="0.5", lw=0.8, ls="--")
    ax.set_yscale("log")
    ax.set_ylim(1e-5, 1)
    axes[0].set_title("training loss (dashed: its floor), first seed")
    axes[1].set_title("excess of own objective / initial")
    ax.set_title("EDM design: E_S / (E_I + E_D + E_S)")
    for a in axes:
        a.set_xlabel("step")
    axes[0].legend(fontsize=7)
    axes[1].legend(fontsize=8)
    ax.legend(fontsize=7)
    fig.tight_layout()
    study.section("Training and the E_S share")
    study.text(
        "Left: minibatch training loss (moving average) of each design in its own units with "
        "its floor, the exact-score DSM loss on a fixed batch. Middle: the excess of the "
        "design's own objective on that batch, relative to the start. Right: the share of E_S "
        "in paper C's bound along the EDM design's training, every seed, on both grids at "
        f"N = {s.n_compare} (solid) and N = {s.n_small} (dotted); the dashed lines are the "
        f"regime thresholds {WELL_SHARE:.0%} and {UNDER_SHARE:.0%}; the markers the chosen "
        "checkpoints (their geometric-grid share)."
    )
    study.figure(fig, "training")


def figure_score_error(study: Study, first: dict, s: Settings) -> None:
    """The score error per σ of each design (first seed)."""
    plt = pyplot()
    sig = profile_sigmas(s.n_profile)
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    for key, ls, label in (
        ("edm", "-", "edm, final"),
        ("edm_under", ":", "edm, under-trained"),
        ("song", "-", "song, final"),
        ("song_precond", "-", "song_precond, final"),
    ):
        color = COLORS[key.split("_under")[0]]
        ax.loglog(sig, first["profile"][key]["normalised"], ls, color=color, label=label)
    ax.axvspan(*MID_RANGE, color="0.9", zorder=0)
    ax.set_xlabel("σ")
    ax.set_title("normalised score error σ² E‖s_θ − ∇log p_σ‖² (first seed)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    study.section("Score error per σ")
    study.text(
        "Error of each design's EMA network against the exact score of the noised ring, per "
        f"noise level ({s.n_err} points each, the same points for every network); the grey "
        "band is the σ-range of the score-error claims."
    )
    study.figure(fig, "score_error")


def figure_grids(study: Study, cells: list[dict], s: Settings, floor_sd: float) -> None:
    """The grid comparisons, paired per seed."""
    plt = pyplot()
    panels = (
        ("final", s.n_small),
        ("under", s.n_small),
        ("well", s.n_compare),
        ("under", s.n_compare),
    )
    floor = float(np.mean([v for c in cells for v in c["floor"]]))
    fig, axes = plt.subplots(1, len(panels), figsize=(3.3 * len(panels), 3.6))
    for ax, (ck, n) in zip(axes, panels, strict=True):
        for c in cells:
            ax.plot([0, 1], [c["w2"][f"{ck}/{g}/{n}"] for g in GRIDS], "o-", lw=0.8, ms=3)
            if f"exact/edm/{n}" in c["w2"]:
                exact = [c["w2"][f"exact/{g}/{n}"] for g in GRIDS]
                ax.plot([0, 1], exact, "x--", color="0.5", lw=0.6)
        ax.axhspan(floor - floor_sd, floor + floor_sd, color="0.9", zorder=0)
        ax.set_xticks([0, 1], ["EDM ρ=7", "geometric"])
        ax.set_xlim(-0.3, 1.3)
        reached = ck == "final" or all(c["checkpoints"][ck]["met"] for c in cells)
        note = "" if reached else " (not reached)"
        ax.set_title(f"{ck} checkpoint, N = {n}{note}", fontsize=9)
    axes[0].set_ylabel("W2(samples, reference)")
    fig.tight_layout()
    study.section("Sampling: EDM's grid against the geometric grid")
    study.text(
        "Paper C's sampler (reverse VE SDE, score frozen on each step) from N(0, 80² I) down "
        f"to σ_min = {SIGMA_MIN}, {s.n_samples} samples. Each line is one seed: the same "
        "reference sample, prior draws and noise on both grids. Grey crosses: the exact "
        "score; grey band: the W2 floor (two independent target samples) ± its spread."
    )
    study.figure(fig, "grids")


def figure_samples(study: Study, first: dict, s: Settings) -> None:
    """Samples at small N (first seed)."""
    plt = pyplot()
    sc = first["scatter"]
    ref = np.asarray(sc["reference"])
    fig, axes = plt.subplots(2, 2, figsize=(6.4, 6.4), sharex=True, sharey=True)
    for i, ck in enumerate(("final", "under")):
        for j, g in enumerate(GRIDS):
            ax, x = axes[i, j], np.asarray(sc[f"{ck}/{g}"])
            ax.scatter(ref[:, 0], ref[:, 1], s=1, color="0.8")
            ax.scatter(x[:, 0], x[:, 1], s=1, color="C0")
            ax.set_title(f"{ck} checkpoint, {g} grid, N={s.n_small}", fontsize=8)
            ax.set_xlim(-1.3, 1.3)
            ax.set_ylim(-1.3, 1.3)
            ax.set_aspect("equal")
    fig.tight_layout()
    study.figure(fig, "samples")


def pyplot():
    """pyplot for the study's figures (``report.pyplot``: Agg, a notebook's backend kept)."""
    from ...report import pyplot as report_pyplot

    return report_pyplot()
