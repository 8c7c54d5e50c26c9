"""The report's sections: per (data set, process), the figures, the α sweep's table, the start
ratio on the symmetric calibration grid and the escaped PF-ODE trajectories per arm; the EDM
weighted extra.
"""

from __future__ import annotations

from ..common import Study
from .figures import figure_alpha_sweep, figure_trajectories


def report_sections(study: Study, by: dict, runs: dict, sweep: list[dict], extras: dict) -> None:
    """Per (data set, process): α*, the tolerances, the figures and the tables."""
    for (data, process), cells in by.items():
        study.section(f"{data}, {process.upper()}: relative residual and paired effects over α")
        run_ = runs[f"{data}/{process}"]
        carried = "an inferred" if process == "ve" else "the published"
        study.text(
            f"α* = {run_['alpha_star']:.4g} ({carried} 0.15 in scorelab's normalisation), "
            f"calibrated α = {run_['calibrated_alpha']:.3g}; W2 floor "
            f"{run_['w2_floor']['value']:.4f} (tolerance {run_['w2_tolerance']:.4f}); NLL "
            f"tolerance {run_['nll_tolerance']:.3g} nats. NLL effects are medians over "
            "held-out points of the per-point paired differences."
        )
        figure_alpha_sweep(study, data, process, cells)
        study.table(
            ["α", "FP/DSM at start", "ρ DSM → FP", "median Δ NLL", "mean Δ NLL", "NC", "W2"],
            [_sweep_row(r) for r in sweep if (r["data"], r["process"]) == (data, process)],
        )
        study.text("Start FP/DSM loss ratio (geometric mean over seeds) around the published α:")
        study.table(
            ["α / α*", "α", "FP/DSM at start"],
            [[f"{c['alpha_over_paper']:g}", f"{c['alpha']:.3g}", f"{c['loss_ratio']['value']:.3g}"]
             for c in run_["calibration"]],
        )  # fmt: skip
        _escape_section(study, data, process, cells)
    if extras:
        study.section("Extra (ours, not the paper's): continuation with EDM weighting")
        study.table(
            ["run", "α", "Δ NLL mean (nats)", "Δ NLL median (nats)", "Δ log10 ρ"],
            [
                [k, f"{v['alpha']:.3g}", f"{v['delta_nll']['value']:.4f}",
                 f"{v['delta_nll_median']['value']:.4f}",
                 f"{v['log10_relative_residual_ratio']['value']:.3g}"]
                for k, v in extras.items()
            ],
        )  # fmt: skip


def _sweep_row(r: dict) -> list[str]:
    d = r["difference"]
    return [
        f"{r['alpha']:.3g}",
        f"{r['loss_ratio']['value']:.3g}",
        f"{r['dsm']['relative']['value']:.3g} → {r['fp']['relative']['value']:.3g}",
        f"{d['nll_median']['value']:+.4f}",
        f"{d['nll_mean']['value']:+.4g}",
        f"{r['dsm']['conservativity']['value']:.3g} → {r['fp']['conservativity']['value']:.3g}",
        f"{r['dsm']['w2']['value']:.4f} → {r['fp']['w2']['value']:.4f}",
    ]


def _escape_section(study: Study, data: str, process: str, cells: list[dict]) -> None:
    """Per arm and seed: the fraction of held-out points whose PF-ODE end point has
    ‖x_T‖²/(D σ_T²) above the threshold, the largest such value and the worst points."""
    threshold = cells[0]["dsm"]["escape"]["threshold"]
    study.text(
        f"Escaped PF-ODE trajectories: held-out points with ‖x_T‖²/(D σ_T²) > {threshold:g} "
        "(≈ 1 under the prior), and ‖x(σ)‖ along the flow (figure)."
    )
    figure_trajectories(study, data, process, cells)
    rows = []
    for seed, c in enumerate(cells):
        for label, r in [("DSM", c["dsm"])] + [(f"FP α = {f['alpha']:.2g}", f) for f in c["fp"]]:
            e = r["escape"]
            worst = ", ".join(f"#{w['index']}: q {w['q']:.3g}, NLL {w['nll']:.4g}"
                              for w in e["worst"])  # fmt: skip
            rows.append([str(seed), label, f"{e['fraction']:.3g}", f"{e['max_q']:.3g}",
                         worst or "—"])  # fmt: skip
    study.table(["seed #", "arm", "escaped fraction", "largest q", "worst points"], rows)
