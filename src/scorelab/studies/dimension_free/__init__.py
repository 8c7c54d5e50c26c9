"""Paper B (Cole & Lu): a Gaussian tilt of fixed complexity is learned at a rate that does not
depend on the dimension; a tilt whose complexity grows with d is not.

Two families of targets p = e^f γ_d / Z (γ_d = N(0, I)), under the OU process
dX = −X dt + √2 dW (VP with β ≡ 2, stationary law γ_d), trained with the same number n of
training points, the same network (an MLP of fixed width and depth, EDM-preconditioned with
σ_data = 1 so that an untrained network is exactly the score −x of γ_d and the network learns
only the tilt) and the same budget in every d:

* **fixed complexity**: four equal modes N(μ_k, I) at the corners (±a, ±a) of a square in the
  first two coordinates (``SquareTilt``); f = log Σ_k ¼ e^{⟨μ_k, x⟩ − ‖μ_k‖²/2} is a log-sum-exp
  of four affine maps with ‖μ_k‖ = 3 whatever d is;
* **control**: the product ⊗_i (½N(−a, 1) + ½N(a, 1)), f(x) = Σ_i log cosh(a x_i) − d a²/2, a sum
  of d ridge functions (2^d modes), so the norm of the network that represents f grows with d.

At d = 2 the two targets are the same law; and in every d their marginal on (x₁, x₂) is that
same four-mode square, so the projected metrics compare like with like.

The theorem concerns an empirical score-matching estimator in a class of networks of bounded
path norm; the study's estimator is an MLP trained by AdamW with weight decay at a fixed budget
— our operationalisation, so every claim about it is labelled an extrapolation
(docs/theory.md §11.2). The two families share their randomness per seed and d (common random
numbers): the same initial network, the same training draws (the samplers are coupled — the
same signs and Gaussian draws, so the training points agree in (x₁, x₂) and are identical at
d = 2), the same prior draws and sampling noise, the same evaluation draws, the same TV cells
and the same 2-D reference sample for the projected W2. At d = 2 the two cells are therefore the
same computation, run once. Measured against d, per seed: the score error relative to the
tilt's score ∇log h_t (paper B's measure: the part of the score the network learns; the error
relative to the whole score E‖s_θ − s‖²/E‖s‖² is kept for reference, but its denominator grows
like d), the TV of the 1-D marginals on the axes e₁, e₂ (exact cell masses), the exact W2 of
the projection on (x₁, x₂), and the sliced W2 in R^d, each beside its finite-sample floor; and
the same once more on an independent evaluation of the same models, whose change fixes the
margins of the "grows more" claims.
"""

from __future__ import annotations

from ..common import Study
from .aggregate import per_seed_curves, results
from .cells import (
    cell_items,
    dimension_free_cell,
    floor_cell,
    floor_items,
    mehler_cell,
    mehler_items,
)
from .claims import add_claims
from .report import report_sections
from .settings import FULL, QUICK

NAME = "dimension-free"

TITLE = "Dimension-free learning of Gaussian tilts"

PAPER = (
    "Cole & Lu, Score-based generative models break the curse of dimensionality in learning "
    "a family of sub-Gaussian probability distributions, ICLR 2024 (arXiv 2402.08082)"
)


def run(study: Study) -> None:
    """The (family, d, seed) cells, the floors and the Mehler check, then the results, the
    claims and the report."""
    s = QUICK if study.quick else FULL
    items, index = cell_items(study, s)
    study.log(f"dimension-free: {len(items)} (family, d, seed) cells")
    cells = study.map(dimension_free_cell, items)
    per_seed = per_seed_curves(study.seeds, list(s.dims), cells, index)
    floors = study.map(floor_cell, floor_items(study, s))
    gaps = study.map(mehler_cell, mehler_items(study, s))
    res = results(study.seeds, s, cells, per_seed, floors, gaps)
    study.results.update(res)
    add_claims(study, res)
    report_sections(study, res, s)
