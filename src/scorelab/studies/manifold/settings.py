"""The manifold study's setting: the laws (a circle and a 2-sphere in R^8, and an empirical
measure of circle points), the OU process, and the quick and full sizes.
"""

from __future__ import annotations

import math

from ...processes import VP
from ...schedules import ConstantBeta
from ...targets import Circle, Sphere

LOG10 = math.log(10.0)

GEOMETRIES = {"circle": Circle, "sphere": Sphere}

# the scores of the ε sweep, in the order of the results, tables and figures
SCORES = ("exact", "perturbed", "network")


def settings_for(quick: bool) -> dict:
    """The study's numbers (all in results.json under ``settings``)."""
    common = {
        "dim": 8,  # ambient dimension (configs/manifold_circle.yaml)
        "beta": 2.0,  # OU: dX = −X dt + √2 dB
        "T": 5.0,  # horizon of the ε sweep
        "T_max": 8.0,
        "perturbation_M": 0.05,  # score error M(1 + ‖x‖)/σ_t² (the paper's assumption, as read)
        "eps_mid": 1e-3,  # the interior ε of the "optimal ε" claims (fixed in advance)
        "eps_far": 1e-2,  # the large ε of the early-stopping claim
        "eps_T_sweep": 1e-3,
        "T_short": 0.05,  # the horizon claim: W1 at T_short against T_long
        "T_long": 3.0,
        "T_uniform": [1.0, 8.0],  # the uniform-grid claim: W1 at the second against the first
        "n_train": 32,  # points of the empirical measure
        "memorisation_eps": [1e-5, 1e-4, 1e-3, 1e-2],
        "floor_draws": 4,  # independent floor draws per seed and law (the metrics' noise)
    }
    if quick:
        return common | {
            "n": 800,
            "n_emp": 1000,
            "steps": 100,
            "eps": [1e-5, 1e-3, 1e-2, 0.3],
            "T_grid": [0.05, 1.0, 3.0, 8.0],
            "train_steps": 800,
            "network_geometries": 1,  # circle only
            "profile_n": 400,
        }
    return common | {
        "n": 2000,
        "n_emp": 2000,
        "steps": 200,
        "eps": [1e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3],
        "T_grid": [0.05, 0.1, 0.3, 1.0, 2.0, 3.0, 5.0, 8.0],
        "train_steps": 4000,
        "network_geometries": 2,  # circle and sphere
        "profile_n": 2000,
    }


def make_process(cfg: dict) -> VP:
    t_min = min(cfg["eps"] + cfg["memorisation_eps"] + [cfg["eps_T_sweep"]])
    return VP(ConstantBeta(cfg["beta"], T=cfg["T_max"]), t_min=t_min)
