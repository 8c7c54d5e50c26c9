"""Aggregates over seeds: means and 95 % t-intervals (geometric for quantities spanning decades),
the paired FP − DSM effects, the calibrated α and the W2 tolerance.
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
    """The paired effects DSM + FP − DSM per seed at the i-th α: NLL and W2 differences,
    log10 ratios of the residual and NC (the claims' evidence), with their 95 % intervals."""
    pairs = [(c["fp"][i], c["dsm"]) for c in cells]
    out = {
        "nll": summary(f["nll"] - d["nll"] for f, d in pairs),
        "log10_residual": summary(log10(f["residual"]) - log10(d["residual"]) for f, d in pairs),
        "log10_conservativity": summary(
            log10(f["conservativity"]) - log10(d["conservativity"]) for f, d in pairs
        ),
        "w2": summary(f["w2"] - d["w2"] for f, d in pairs),
    }
    if "bits_per_dim" in pairs[0][1]:
        out["bits_per_dim"] = summary(f["bits_per_dim"] - d["bits_per_dim"] for f, d in pairs)
    return out


def arm_summary(rows: list[dict]) -> dict:
    out = {k: summary(r[k] for r in rows) for k in ("nll", "w2")}
    out.update({k: geometric_summary(r[k] for r in rows) for k in ("residual", "conservativity")})
    if "bits_per_dim" in rows[0]:
        out["bits_per_dim"] = summary(r["bits_per_dim"] for r in rows)
    if "nll_exact" in rows[0]:
        out["nll_exact"] = summary(r["nll_exact"] for r in rows)
    return out


def log10(x: float) -> float:
    return math.log10(max(float(x), 1e-300))


def small_t_excess(profile: list[dict]) -> float:
    """log10 of (largest residual in the lowest third of the σ grid) / (largest elsewhere)."""
    values = [p["value"] for p in sorted(profile, key=lambda p: p["sigma"])]
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
        "log10_residual_ratio": summary(
            log10(x["fp"]["residual"]) - log10(x["dsm"]["residual"]) for x in e
        ),
    }
