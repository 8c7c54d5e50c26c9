"""From the cells to results.json: the per-seed curves against d, their means, the floors, each
metric's noise, the log growths and the Mehler check.
"""

from __future__ import annotations

import math

import numpy as np

from .settings import FAMILIES, METRICS, RADIUS, A, Settings, settings_json


def log_growth(values: list[float]) -> float:
    """log(value at the largest d / value at the smallest d)."""
    return math.log(values[-1] / values[0])


def mean_over_seeds(values) -> float | list:
    """The mean over seeds of numbers, or element-wise of equal-length lists."""
    if isinstance(values[0], list):
        return [float(np.mean(v)) for v in zip(*values, strict=True)]
    return float(np.mean(values))


def per_seed_curves(seeds: list[int], dims: list[int], cells: list[dict], index: dict) -> list:
    """Per seed and family, each cell quantity as a curve over d (the d = 2 cell shared)."""
    per_seed = []
    for seed in seeds:
        entry = {}
        for fam in FAMILIES:
            cs = [cells[index[seed, "fixed" if d == 2 else fam, d]] for d in dims]
            entry[fam] = {k: [c[k] for c in cs] for k in cs[0]}
        per_seed.append(entry)
    return per_seed


def results(seeds: list[int], s: Settings, cells, per_seed, floors, gaps) -> dict:
    """results.json's content: the curves (means and per seed), floors, noise, growths and the
    Mehler check."""
    dims = list(s.dims)
    res: dict = {
        "dims": dims,
        "settings": {**settings_json(s), "radius": RADIUS, "a": A},
        "seeds": seeds,
    }
    for fam in FAMILIES:
        keys = per_seed[0][fam]
        res[fam] = {
            k: [mean_over_seeds([r[fam][k][i] for r in per_seed]) for i in range(len(dims))]
            for k in keys
        }
    res["per_seed"] = per_seed
    pooled = {m: [v for f in floors for v in f[m]] for m in ("tv_axes", "w2_plane")}
    res["floors"] = {m: float(np.mean(v)) for m, v in pooled.items()}
    res["floor_draws"] = floors
    # each metric's own noise on the log scale: the spread of log(floor) over independent
    # draws for the sample metrics; the Monte Carlo half-width of the MSE for the score errors
    mc_noise = math.log1p(max(c["mse_rel_halfwidth"] for c in cells))
    res["noise"] = {
        "relative_mean": mc_noise,
        "tilt_relative_mean": mc_noise,
        **{m: float(np.std(np.log(v), ddof=1)) for m, v in pooled.items()},
    }
    res["log_growth"] = {
        fam: {k: [log_growth(r[fam][k]) for r in per_seed] for k in (*METRICS, "sliced_w2")}
        for fam in FAMILIES
    }
    # the same log growths on the cells' second, independent evaluation (the margins' noise)
    res["log_growth_second"] = {
        fam: {k: [log_growth(r[fam][f"second_{k}"]) for r in per_seed] for k in METRICS}
        for fam in FAMILIES
    }
    res["growth"] = {
        fam: {k: math.exp(float(np.mean(v))) for k, v in res["log_growth"][fam].items()}
        for fam in FAMILIES
    }
    res["mehler_check"] = mehler_check(gaps, len(seeds))
    return res


def mehler_check(gaps: list[dict], n_seeds: int) -> dict:
    """The Mehler cells' gaps per seed, and the standardised gap z pooled over a seed's two
    checks (z ≈ 1 when the gap is Monte Carlo noise alone)."""
    pairs = [(gaps[2 * i], gaps[2 * i + 1]) for i in range(n_seeds)]
    return {
        "fixed_d8": [a["gap"] for a, _ in pairs],
        "control_d2": [b["gap"] for _, b in pairs],
        "z": [
            math.sqrt((a["sq_error"] + b["sq_error"]) / (a["sq_se"] + b["sq_se"])) for a, b in pairs
        ],
        "control_d8": gaps[-1]["gap"],
        "control_d8_z": math.sqrt(gaps[-1]["sq_error"] / gaps[-1]["sq_se"]),
    }
