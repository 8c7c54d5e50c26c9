"""Aggregates over seeds: means and 95 % t-intervals (geometric for quantities spanning decades),
the paired FP − DSM effects, the calibrated α (and the start ratio on a grid symmetric around
the published α) and the W2 tolerance.
"""

from __future__ import annotations

import math

from ...verdicts import mean_ci
from .settings import NLL_TOLERANCE_PER_DIM, Z95


def summary(values) -> dict:
    """Mean over seeds and its 95 % t-interval."""
    mean, lo, hi = mean_ci(list(values))
    return {"value": mean, "ci": [lo, hi]}


def geometric_summary(values) -> dict:
    """Geometric mean over seeds of a positive quantity spanning decades (residual, NC, the
    loss ratio) and the 95 % t-interval of its log, mapped back: never below zero."""
    mean, lo, hi = (min(max(v, -300.0), 300.0) for v in mean_ci([log10(v) for v in values]))
    return {"value": 10**mean, "ci": [10**lo, 10**hi], "aggregate": "geometric"}


def paired_summary(cells: list[dict], i: int) -> dict:
    """The paired effects DSM + FP − DSM per seed at the i-th α, with their 95 % intervals:
    the median (the claims' statistic) and the mean of the per-point NLL differences on the
    held-out draw, log10 ratios of the relative residual, the absolute residual and NC, and
    the W2 difference."""
    pairs = [(c["fp"][i], c["dsm"]) for c in cells]

    def log_ratio(key):
        return summary(log10(f[key]) - log10(d[key]) for f, d in pairs)

    return {
        "nll_median": summary(f["nll_diff"]["median"][0] for f, _ in pairs),
        "nll_mean": summary(f["nll_diff"]["mean"][0] for f, _ in pairs),
        "log10_relative_residual": log_ratio("relative"),
        "log10_residual": log_ratio("residual"),
        "log10_conservativity": log_ratio("conservativity"),
        "w2": summary(f["w2"] - d["w2"] for f, d in pairs),
    }


def arm_summary(rows: list[dict]) -> dict:
    out = {k: summary(r[k] for r in rows) for k in ("nll", "nll_median", "w2")}
    out.update(
        {k: geometric_summary(r[k] for r in rows) for k in ("relative", "residual",
                                                             "conservativity")}
    )  # fmt: skip
    out["escaped_fraction"] = summary(r["escape"]["fraction"] for r in rows)
    for k in ("bits_per_dim", "bits_per_dim_median", "nll_exact"):
        if k in rows[0]:
            out[k] = summary(r[k] for r in rows)
    return out


def log10(x: float) -> float:
    return math.log10(max(float(x), 1e-300))


def small_t_excess(profile: list[dict]) -> float:
    """log10 of (largest relative residual ρ in the lowest third of the σ grid) / (largest
    elsewhere)."""
    values = [p["relative"] for p in sorted(profile, key=lambda p: p["sigma"])]
    k = math.ceil(len(values) / 3)
    return log10(max(values[:k])) - log10(max(values[k:]))


def calibrated_index(cells: list[dict]) -> int:
    """The α grid index whose start FP/DSM ratio (mean of log10 over seeds) is nearest 1."""
    factors = [r["factor"] for r in cells[0]["fp"]]
    logs = [
        sum(log10(c["unit_ratio"] * c["alpha_star"] * f) for c in cells) / len(cells)
        for f in factors
    ]
    return min(range(len(factors)), key=lambda i: abs(logs[i]))


def paper_index(cells: list[dict]) -> int:
    """The α grid index of the published α carried over (α / α* = 1)."""
    return [r["factor"] for r in cells[0]["fp"]].index(1.0)


def calibration_rows(cells: list[dict]) -> list[dict]:
    """The start FP/DSM ratio (geometric mean over seeds) at α*·10^k, k = −4…4: the ratio is
    α times the checkpoint's unit ratio, so the calibration is read on a grid symmetric around
    the published α, wider than the fine-tuned one."""
    alpha_star = cells[0]["alpha_star"]
    return [
        {"alpha_over_paper": 10.0**k, "alpha": alpha_star * 10.0**k,
         "loss_ratio": geometric_summary(c["unit_ratio"] * alpha_star * 10.0**k for c in cells)}
        for k in range(-4, 5)
    ]  # fmt: skip


def w2_tolerance(cells: list[dict]) -> tuple[float, float]:
    """The pooled within-seed spread of independent target samples' W2 to the shared
    reference, and the tolerance 1.96·√2 × it (the 95 % range of the difference of two such
    samples)."""
    ss, dof = 0.0, 0
    for c in cells:
        f = c["w2_floors"]
        m = sum(f) / len(f)
        ss += sum((v - m) ** 2 for v in f)
        dof += len(f) - 1
    sd = math.sqrt(ss / max(dof, 1))
    return sd, Z95 * math.sqrt(2.0) * sd


def sweep_rows(data: str, process: str, cells: list[dict]) -> list[dict]:
    """One row per α: both arms' summaries over seeds, the start loss ratio and the paired
    effects."""
    dsm = arm_summary([c["dsm"] for c in cells])
    rows = []
    for i, row in enumerate(cells[0]["fp"]):
        fp_rows = [c["fp"][i] for c in cells]
        rows.append(
            {
                "data": data,
                "process": process,
                "alpha": row["alpha"],
                "alpha_over_paper": row["factor"],
                "loss_ratio": geometric_summary(c["unit_ratio"] * row["alpha"] for c in cells),
                "dsm": dsm,
                "fp": arm_summary(fp_rows),
                "difference": paired_summary(cells, i),
            }
        )
    return rows


def run_summary(cells: list[dict], seeds: list[int], w2_sd: float, w2_margin: float) -> dict:
    """A (data set, process)'s α*, calibrated α, tolerances, W2 floor and every seed's rows."""
    cal = calibrated_index(cells)
    return {
        "dim": cells[0]["dim"],
        "alpha_star": cells[0]["alpha_star"],
        "calibrated_alpha": cells[0]["fp"][cal]["alpha"],
        "calibration": calibration_rows(cells),
        "nll_tolerance": NLL_TOLERANCE_PER_DIM * cells[0]["dim"],
        "w2_floor": summary(sum(c["w2_floors"]) / len(c["w2_floors"]) for c in cells),
        "w2_floor_sd": w2_sd,
        "w2_tolerance": w2_margin,
        "seeds": [
            {
                "seed": seed,
                "unit_ratio": c["unit_ratio"],
                "pretrain_seconds": c["pretrain_seconds"],
                "w2_floors": c["w2_floors"],
                "dsm": c["dsm"],
                "fp": c["fp"],
            }
            for seed, c in zip(seeds, cells, strict=True)
        ],
    }


def edm_extra_summary(cells: list[dict]) -> dict:
    """The EDM-weighted pair (ours, full mode): both arms and their paired differences."""
    e = [c["edm_extra"] for c in cells]
    return {
        "alpha": e[0]["alpha"],
        "dsm": arm_summary([x["dsm"] for x in e]),
        "fp": arm_summary([x["fp"] for x in e]),
        "delta_nll": summary(x["fp"]["nll"] - x["dsm"]["nll"] for x in e),
        "delta_nll_median": summary(x["fp"]["nll_median"] - x["dsm"]["nll_median"] for x in e),
        "log10_relative_residual_ratio": summary(
            log10(x["fp"]["relative"]) - log10(x["dsm"]["relative"]) for x in e
        ),
    }
