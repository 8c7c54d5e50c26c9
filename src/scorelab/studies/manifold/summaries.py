"""Aggregates over seeds: the metrics' floors (level and pooled within-seed spread) and the
means of every curve that the tables and docs quote.
"""

from __future__ import annotations

import math

import numpy as np

from .settings import GEOMETRIES, SCORES


# --- noise --------------------------------------------------------------------------------------
def pooled_sd(draws_per_seed: list[list[float]]) -> float:
    """The within-seed standard deviation pooled over seeds (each seed's law may differ, e.g.
    π_n's points)."""
    var = [np.var(v, ddof=1) for v in draws_per_seed if len(v) > 1]
    return float(math.sqrt(np.mean(var))) if var else 0.0


def noise_summary(draws_per_seed: list[list[float]]) -> dict:
    """The floor's level and spread, and twice the spread (``margin``): the tolerance of the
    bound-above-W1 claim. "Better than" claims take their margins from the noise of their own
    paired difference instead (``claims.eps_margin``, ``claims.t_margin``)."""
    sd = pooled_sd(draws_per_seed)
    return {
        "floor_mean": float(np.mean([np.mean(v) for v in draws_per_seed])),
        "floor_sd": sd,
        "margin": 2 * sd,
    }


# --- report tables (means over seeds) ----------------------------------------------------------
def mean_over_seeds(rows) -> list[float]:
    return np.asarray(rows, dtype=float).mean(axis=0).tolist()


def summary(cfg: dict, per_seed: list[dict]) -> dict:
    """Means over seeds of the curves (what the tables and docs quote)."""
    out: dict = {"eps_sweep": {}, "T_sweep": {}, "memorisation": {}}
    for geo in GEOMETRIES:
        row = {
            "floor": float(np.mean([np.mean(s[geo]["floors"]) for s in per_seed])),
            "w1_p_eps": mean_over_seeds([s[geo]["w1_p_eps"] for s in per_seed]),
        }
        for name in SCORES:
            if name in per_seed[0][geo]:
                row[name] = {
                    k: mean_over_seeds([s[geo][name][k] for s in per_seed])
                    for k in ("w1", "log10_bound")
                }
        out["eps_sweep"][geo] = row
    for kind in ("geometric", "uniform"):
        out["T_sweep"][kind] = mean_over_seeds(
            [s["empirical"]["T_sweep"][kind]["w1"] for s in per_seed]
        )
    mems = [s["empirical"]["memorisation"] for s in per_seed]
    out["memorisation"]["w1_train_population"] = float(
        np.mean([m["w1_train_population"] for m in mems])
    )
    for name in ("exact", "network"):
        out["memorisation"][name] = {
            k: mean_over_seeds([m[name][k] for m in mems])
            for k in (
                "memorised_fraction",
                "nn_ratio_mean",
                "nn_ratio_below_third",
                "w1_train",
                "w1_population",
            )
        }
    return out
