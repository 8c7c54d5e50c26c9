"""Paper E (De Bortoli 2022): diffusion models under the manifold hypothesis, measured in W1.

Laws supported on a compact set (a circle and a 2-sphere embedded in R^d, and an empirical
measure π_n of n points drawn from the circle), the OU process dX = −X dt + √2 dB (VP with
β ≡ 2), and the Euler–Maruyama discretisation of the reverse SDE run from N(0, I) at T down to ε
(early stopping). Every claim is decided over the study's seeds (docs/studies/protocol.md):
each seed is an independent replicate of everything random (reference samples, training
points, networks, sampler noise), and inside a seed the compared arms share that randomness
(common random numbers), so the evidence is the paired difference per seed.

1. **W1 against ε** (T fixed, a grid geometric in σ so that the steps near ε are resolved) on
   the circle and the sphere with three scores: the exact score, the exact score plus an error
   of exactly the size the paper is read to assume, M(1 + ‖x‖)/σ_t² along a fixed unit vector
   (docs/theory.md §9.4), and a trained network. All ε and all scores of a seed share the
   reference sample and the sampler's noise. Beside each: the surrogate bound of docs/theory.md
   §9.5 (ours) with err(u) measured.
2. **W1 against T** (ε fixed) on π_n, exact score, W1 to π_n itself (its atoms: no reference
   noise): a grid geometric in σ (the prior error e^{−T} against the rest) and a uniform grid
   with a fixed number of steps (the step δ = (T − ε)/K grows with T).
3. **The surrogate bound's shape** (deterministic): on a fine ε grid and along T.
4. **Memorisation** (docs/theory.md §3.6): the exact score of π_n and a network trained on the
   same points, sampled with the same noise: memorised fraction, d₁/d₂, W1 to π_n and to the
   population π.

W1 is exact (POT's network simplex). A "better than" claim's margin is the noise of its paired
difference: the same samples' W1 against a second, independent reference sample (or population
sample), or — where the reference is exact (π_n's atoms) — the difference re-evaluated on a
second sampler draw shared by both arms. The finite-sample floor (``floor_draws`` independent
draws per seed) sets the tolerances of the equivalence claims.
"""

from __future__ import annotations

from ...targets import Circle
from ..common import Study
from .bound_claims import claim_bound_above_w1, claim_bound_predicts_eps, claims_bound_shape
from .cells import cell, cell_items
from .claims import (
    claims_exact_score,
    claims_horizon,
    claims_memorisation_exact,
    claims_memorisation_network,
    claims_optimal_eps,
)
from .report import report_sections
from .settings import GEOMETRIES, make_process, settings_for
from .summaries import noise_summary, summary
from .surrogate_bound import bound_shape

NAME = "manifold"

TITLE = "Convergence under the manifold hypothesis: W1, early stopping and memorisation"

PAPER = (
    "De Bortoli, Convergence of denoising diffusion models under the manifold hypothesis "
    "(TMLR 2022, arXiv 2208.05314), paper E, docs/theory.md §11.5"
)


def run(study: Study) -> None:
    """The mode's settings (recorded in the results), then the study."""
    cfg = settings_for(study.quick)
    study.results["settings"] = dict(cfg)
    _run(study, cfg)


def _run(study: Study, cfg: dict) -> None:
    """The cells, the noise and the bound's shape, then the claims, the report and the
    results."""
    study.log(f"manifold: {len(study.seeds)} seeds × (circle, sphere, empirical) cells")
    items = cell_items(study, cfg)
    outs = study.map(cell, items)
    per_seed, it = [], iter(outs)
    for s in study.seeds:
        row = {"seed": s}
        for part in (*GEOMETRIES, "empirical"):
            row[part] = next(it)
        per_seed.append(row)

    noise = {g: noise_summary([s[g]["floors"] for s in per_seed]) for g in GEOMETRIES} | {
        "empirical_T": noise_summary([s["empirical"]["floors_T"] for s in per_seed]),
        "empirical_memorisation": noise_summary(
            [s["empirical"]["floors_memorisation"] for s in per_seed]
        ),
    }
    shape = bound_shape(cfg, Circle(cfg["dim"]), make_process(cfg))
    add_claims(study, cfg, per_seed, shape, noise)

    mean = summary(cfg, per_seed)
    report_sections(study, cfg, per_seed, shape, mean)
    for s in per_seed:  # the figure's samples are not results
        mem = s["empirical"]["memorisation"]
        mem.pop("points_plane", None)
        for name in ("exact", "network"):
            mem[name].pop("samples_plane", None)
    study.results |= {
        "noise": noise,
        "bound_shape": shape,
        "mean": mean,
        "per_seed": per_seed,
    }


def add_claims(study: Study, cfg: dict, per_seed: list[dict], shape: dict, noise: dict) -> None:
    """Every claim, in the order of the report (numbered as in the claim modules)."""
    claims_exact_score(study, cfg, per_seed, noise)
    claims_optimal_eps(study, cfg, per_seed, noise)
    claims_horizon(study, cfg, per_seed, noise)
    claim_bound_above_w1(study, cfg, per_seed, noise)
    claims_bound_shape(study, cfg, per_seed, shape)
    claim_bound_predicts_eps(study, cfg, per_seed, shape)
    claims_memorisation_exact(study, cfg, per_seed, noise)
    claims_memorisation_network(study, cfg, per_seed, noise)
