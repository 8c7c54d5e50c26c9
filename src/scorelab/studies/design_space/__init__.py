"""Study ``design-space`` (paper C, Wang, He & Tao 2024; docs/theory.md §11.3): EDM's training
design (log-normal σ, λ_EDM, preconditioning) against Song's VE (log-uniform σ, i.e. uniform t
on the geometric schedule, weight 1/σ², noise prediction); then EDM's ρ = 7 grid against the
geometric grid for a well-trained and an under-trained score, the two regimes being defined as
the paper defines them: by the share of the score error E_S in its bound E_I + E_D + E_S.

Setting: the 8-Gaussian ring scaled to σ_data = 0.5 (radius 0.7, component std 0.07), whose
noised scores are exact; the designs train the same MLP from the same initial weights on the
same data stream over σ ∈ [0.002, 80] with equal budgets (AdamW, the library's Trainer). Along
the EDM design's training the study measures, at every checkpoint, the normalised score error
profile c(σ) = σ² E‖s_θ − ∇log p_σ‖² and from it E_S on each grid; the well-trained checkpoint
is the first whose E_S is < 10 % of the bound on both grids at N = N_cmp, the under-trained one
the last whose E_S is > 50 % (docs/studies/design_space.md). Sampling is paper C's scheme, the
reverse VE SDE with the score frozen on each step, x' = x + (σ_k² − σ_{k+1}²) s +
√(σ_k² − σ_{k+1}²) z: exactly Euler–Maruyama on a VE process whose variance is linear in time,
σ(t) = √t, which is what we run (the networks condition on ¼ ln σ, so they are sampled under
that process unchanged).

Every claim is decided over the study's seeds (docs/studies/protocol.md). One seed is one cell
(:func:`seed_cell`): its own initial network, data stream, reference samples, floor samples and
sampling noise, all shared by the arms compared within it (common random numbers). A "better
than" claim's margin is the noise of its paired difference: the same samples' W2 against a
second, independent reference sample, or the same networks' score errors on a second set of
evaluation points. Paper C's regime conclusion is about what its bound prefers, so the grid
claims are tested where the bound's predicted difference between the grids is resolvable (small
N) as well as where the E_S share defines the regimes (N = 400), and the bound's ranking is set
beside the measured one for every sampled configuration (``results.bound_vs_measured``).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ...parameterisations import estimate_sigma_data
from ..common import Study
from .cells import STREAMS, seed_cell
from .claims import claim_weighting_bell, score_error_claims, training_claims
from .error_terms import effective_weights, grid_terms
from .figures import figure_weights, figures
from .grid_claims import sampling_claims
from .report import bound_table, terms_table
from .settings import (
    GRIDS,
    MID_RANGE,
    RING_RADIUS,
    RING_STD,
    SIGMA_MAX,
    SIGMA_MIN,
    UNDER_SHARE,
    WELL_SHARE,
    ring_target,
    settings_for,
    settings_json,
    train_process,
)

NAME = "design-space"

TITLE = "The design space of diffusion models: EDM against Song's VE, training and sampling"

PAPER = (
    "Wang, He & Tao, Evaluating the design space of diffusion-based generative models "
    "(NeurIPS 2024; docs/theory.md §11.3)"
)


def run(study: Study) -> None:
    """σ_data and the training weights, one cell per seed, the exact terms and the W2 floor,
    then the claims, figures and table."""
    s = settings_for(study.quick)
    target, process = ring_target(), train_process()
    sigma_data = estimate_sigma_data(
        target.sample(10_000, study.generator("sigma_data"), torch.float64)
    )
    study.results["settings"] = {
        **settings_json(s),
        "sigma_min": SIGMA_MIN,
        "sigma_max": SIGMA_MAX,
        "ring_radius": RING_RADIUS,
        "ring_std": RING_STD,
        "sigma_data": sigma_data,
        "well_share": WELL_SHARE,
        "under_share": UNDER_SHARE,
        "mid_range": list(MID_RANGE),
    }
    ls = np.linspace(math.log(SIGMA_MIN), math.log(SIGMA_MAX), 401)
    w = effective_weights(process, ls, sigma_data)
    claim_weighting_bell(study, ls, w)
    figure_weights(study, ls, w)
    items = [
        {
            "seed": seed,
            "settings": settings_json(s),
            "streams": {k: study.seed_for(k, seed) for k in STREAMS},
            "sigma_data": sigma_data,
        }
        for seed in study.seeds
    ]
    study.log(f"{len(items)} seeds: training, checkpoint scan, sampling")
    cells = study.map(seed_cell, items)
    exact_terms = {
        f"{kind}/{n}": grid_terms(target, process, kind, n, None, s)
        for n in s.share_ns
        for kind in GRIDS
    }
    floors = [v for c in cells for v in c["floor"]]
    floor_sd = float(np.std(floors, ddof=1))  # shown beside the W2 values, not a margin
    study.results["exact_terms"] = exact_terms
    study.results["w2_floor"] = {"values": floors, "mean": float(np.mean(floors)), "sd": floor_sd}
    study.results["seeds"] = [{k: v for k, v in c.items() if k != "scatter"} for c in cells]
    training_claims(study, cells)
    score_error_claims(study, cells)
    sampling_claims(study, cells, s, exact_terms)
    figures(study, cells, s, floor_sd)
    terms_table(study, cells, s, exact_terms)
    bound_table(study, study.results["bound_vs_measured"])
