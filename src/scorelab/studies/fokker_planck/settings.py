"""The Fokker–Planck study's setting: the published α carried over to scorelab's normalisation,
the tolerances, and the quick and full sizes of pre-training, fine-tuning and evaluation.
"""

from __future__ import annotations

PAPER_ALPHA = 0.15  # configs/default_cifar10_configs.py of the published code

DIGIT_LEVELS = 17  # the digits hold the integers 0…16

# "likelihood not harmed": the FP arm's NLL may exceed the DSM arm's by less than this, per
# dimension (0.02 nats on the ring, 0.64 nats = 0.0144 bits/dim on the digits)
NLL_TOLERANCE_PER_DIM = 0.01

# an escaped PF-ODE trajectory: its end point has ‖x_T‖²/(D·σ_T²) above this, σ_T the prior's
# standard deviation. Under the prior that statistic is χ²_D/D: P(χ²_D/D > 10) is e⁻¹⁰ ≈
# 4.5·10⁻⁵ for D = 2 and below 10⁻⁴⁰ for D = 64, so a flagged point is not the prior's tail
# (a threshold of 4 would flag 1.8 % of the prior's own draws at D = 2)
ESCAPE_THRESHOLD = 10.0
ESCAPE_WORST = 5  # the worst escaped points listed per arm

# the digits' held-out split: this many images never seen in training (a fixed permutation,
# seeded below), from which the two independent NLL draws are disjoint halves
HELD_OUT_DIGITS = 500
SPLIT_SEED = 20230101

Z95 = 1.959963984540054

EXACT_MAX_DIM = 16  # exact divergences and Jacobians up to this dimension, probes above


def paper_equivalent_alpha(process: str, dim: int, alpha: float = PAPER_ALPHA) -> float:
    """The α of scorelab's ``fp_dsm`` (α·g²‖ε‖²/D beside g²‖s_θ + z/s‖² summed over
    dimensions) that weighs the regulariser against the DSM term as the published recipe's α
    does (docs/theory.md §7.5). The published per-example loss is c·g²‖r‖² + α·g²‖ε‖²/D²
    with c = 1/D for VP (``reduce_mean = True`` in its VP configs) and c = ½ for VE
    (``reduce_mean = False``: half the sum); divided by c (Adam is invariant to a constant
    factor) it is ours with α' = α/(cD): α for VP, whatever D, and 2α/D for VE."""
    if process == "vp":
        return float(alpha)
    if process == "ve":
        return 2.0 * float(alpha) / int(dim)
    raise ValueError(f"process must be 'vp' or 've', got {process!r}")


def settings_for(quick: bool) -> dict:
    """The study's sizes. ``pretrain`` is the DSM checkpoint's training, ``finetune`` the
    continuation shared by every arm (only the loss differs)."""
    pretrain = {"lr": 3e-3, "warmup": 100, "ema_half_life": 100, "noise": "uniform_t",
                "weighting": "s2"}  # fmt: skip
    return {
        "data": ["ring"] if quick else ["ring", "digits"],
        "processes": ["vp"] if quick else ["vp", "ve"],
        # α / α*: two decades either side of the published α in full mode (where the FP/DSM
        # ratio at α* is ≈ 0.01, as on digits × VE, ratio ≈ 1 lies 100× above it)
        "alpha_factors": [1.0, 1e-2] if quick else [1.0, 1e-2, 1e-1, 1e1, 1e2],
        # beyond the grid where the start ratio at 10²α* is still far below 1: the digits × VE
        # checkpoints start at FP/DSM ≈ 0.002 at α*, so a ratio of 1 lies ≈ 500α* above
        "extra_alpha_factors": {} if quick else {"digits/ve": [1e3]},
        "edm_extra": not quick,
        "ring": {
            "parameterisation": "eps",  # Score-SDE's noise prediction
            "pretrain": {**pretrain, "steps": 800 if quick else 3000,
                         "batch_size": 256 if quick else 512},
            "finetune": {"steps": 150 if quick else 1000, "batch_size": 256, "lr": 5e-4,
                         "warmup": 20, "decay": "none",
                         "ema_half_life": 15 if quick else 100},
            "div": "exact", "n_ratio": 1024 if quick else 4096,
            "n_residual": 128 if quick else 512, "n_conservativity": 64 if quick else 256,
            "n_nll": 200 if quick else 1000, "nll_tol": 1e-5, "n_trajectory": 200,
            "n_samples": 1000 if quick else 2000, "sampler_steps": 25,
            "n_floor": 2 if quick else 4,
        },
        "digits": {
            # EDM's preconditioning (the MLP's input scaled to unit variance) at lr 10⁻³: an
            # ε-MLP fed the unscaled VE input (‖x‖ ≈ σ√D, up to 80), a larger lr or a 3×
            # longer pre-training let held-out PF-ODE trajectories escape (the study page,
            # "The digits network")
            "parameterisation": "edm",
            "pretrain": {**pretrain, "steps": 4000, "batch_size": 256, "lr": 1e-3},
            "finetune": {"steps": 600, "batch_size": 128, "lr": 5e-4, "warmup": 20,
                         "decay": "none", "ema_half_life": 60},
            "div": "hutchinson", "n_ratio": 1024, "n_residual": 256, "n_conservativity": 128,
            "n_nll": HELD_OUT_DIGITS // 2, "nll_tol": 1e-4, "n_trajectory": 250,
            "n_samples": 1500, "sampler_steps": 25, "n_floor": 4,
        },
    }  # fmt: skip


SETTINGS_KEYS = ("data", "processes", "alpha_factors", "extra_alpha_factors", "edm_extra")


def alpha_factors(st: dict, data: str, process: str) -> list[float]:
    """The α / α* fine-tuned for a (data set, process): the shared grid and its extension."""
    return [*st["alpha_factors"], *st["extra_alpha_factors"].get(f"{data}/{process}", [])]


def settings_json(st: dict) -> dict:
    """The sizes of the data sets run, the recipes and the tolerances (results.json)."""
    return {
        **{k: st[k] for k in SETTINGS_KEYS},
        **{d: st[d] for d in st["data"]},
        "paper_alpha": PAPER_ALPHA,
        "nll_tolerance_per_dim": NLL_TOLERANCE_PER_DIM,
        "escape_threshold": ESCAPE_THRESHOLD,
        "held_out_digits": HELD_OUT_DIGITS,
        "nll_statistic": "median of the per-point paired differences (FP − DSM) per seed",
        "pretrain_recipe": "DSM, uniform t, weighting s² (Score-SDE's)",
        "finetune_recipe": "DSM weighting g², uniform t (+ α·g²‖ε‖²/D on the same points)",
    }
