"""The report's sections: per (data set, process), the figure and the α sweep's table; the EDM
weighted extra.
"""

from __future__ import annotations

from ..common import Study
from .figures import figure_alpha_sweep


def report_sections(study: Study, by: dict, runs: dict, sweep: list[dict], extras: dict) -> None:
    """Per (data set, process): α*, the tolerances, the figure and the sweep's table."""
    for (data, process), cells in by.items():
        study.section(f"{data}, {process.upper()}: residual profile and paired effects over α")
        run_ = runs[f"{data}/{process}"]
        study.text(
            f"α* = {run_['alpha_star']:.4g} (the published 0.15 in scorelab's normalisation), "
            f"calibrated α = {run_['calibrated_alpha']:.3g}; W2 floor "
            f"{run_['w2_floor']['value']:.4f} (tolerance {run_['w2_tolerance']:.4f}); NLL "
            f"tolerance {run_['nll_tolerance']:.3g} nats."
        )
        figure_alpha_sweep(study, data, process, cells)
        rows = []
        for r in sweep:
            if (r["data"], r["process"]) != (data, process):
                continue
            rows.append(
                [
                    f"{r['alpha']:.3g}",
                    f"{r['loss_ratio']['value']:.3g}",
                    f"{r['dsm']['residual']['value']:.3g} → {r['fp']['residual']['value']:.3g}",
                    f"{r['dsm']['nll']['value']:.4f} → {r['fp']['nll']['value']:.4f}",
                    f"{r['dsm']['conservativity']['value']:.3g} → "
                    f"{r['fp']['conservativity']['value']:.3g}",
                    f"{r['dsm']['w2']['value']:.4f} → {r['fp']['w2']['value']:.4f}",
                ]
            )
        study.table(["α", "FP/DSM at start", "residual DSM → FP", "NLL (nats)", "NC", "W2"], rows)
    if extras:
        study.section("Extra (ours, not the paper's): continuation with EDM weighting")
        study.table(
            ["run", "α", "Δ NLL (nats)", "Δ log10 residual"],
            [
                [k, f"{v['alpha']:.3g}", f"{v['delta_nll']['value']:.4f}",
                 f"{v['log10_residual_ratio']['value']:.3g}"]
                for k, v in extras.items()
            ],
        )  # fmt: skip
