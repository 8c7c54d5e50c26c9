"""Paper D (Lai et al. 2023, FP-Diffusion; docs/theory.md §7, §11.4): DSM against DSM + the
score Fokker–Planck regulariser, in the published pairing, with α swept.

For each data set (the 8-Gaussian ring, d = 2; scikit-learn's 8×8 digits, d = 64, uniformly
dequantised), each process (Song's VP, linear β ∈ [0.1, 20]; Song's VE, geometric σ from 0.01
to σ_max ≈ the data's diameter) and each seed, one MLP (ε-parameterised on the ring,
EDM-preconditioned on the digits, whose VE inputs reach σ√D ≈ 80) is pre-trained by DSM
with Score-SDE's recipe (uniform t, weighting s², the checkpoints paper D fine-tunes), then
**continued from that checkpoint for the same number of steps on the same data, times and
noise** (common random numbers):

* the DSM arm with likelihood-weighted DSM (weighting g², uniform t), paper D's fine-tuning
  objective without the regulariser;
* one DSM + FP arm per α: the same DSM term plus α·g²‖ε‖²/D on the DSM term's own perturbed
  points (the published default pairing, ``fp_dsm`` with ``weighting=g2``,
  ``noise=uniform_t``, ``fp.weighting=likelihood``, ``points=perturbed``).

α is swept over 10⁻²…10² × α* (to 10³ on digits × VE), where α* is the published α = 0.15
carried over to scorelab's normalisation (:func:`paper_equivalent_alpha`, docs/theory.md §7.5):
the published VP recipe averages the DSM term over dimensions and divides ‖ε‖² by D², ours sums
and divides by D — the same ratio, so α* = 0.15; the VE configuration takes half the sum, so
α* = 2·0.15/D — inferred, since the authors' release cannot run FP under VE (docs/theory.md §7.5).
Before fine-tuning, the FP/DSM loss ratio of the checkpoint is measured per α on one shared
batch; the "calibrated" α is the grid value whose ratio is closest to 1 (chosen from that ratio
alone, never from the outcomes).

Every arm of a seed is evaluated on the same points, each measure twice on independent draws
(the first decides the claims, the second fixes their paired-noise margins): the relative
score-FPE residual ρ(t) = E‖ε‖²/E(‖∂_t s‖² + ‖∇φ‖²) on 8 times spread in log σ (summary: its
mean over the grid; E‖ε‖²/D beside it), conservativity NC = E‖J − Jᵀ‖²/E‖J‖² (same grid), the
PF-ODE NLL (dopri5; nats, and bits/dim for digits) per point on held-out target points (the
ring's own law; 500 digits never trained on), whose per-point paired differences FP − DSM are
summarised per seed by their median (the mean stored beside it), the escaped end points
(‖x_T‖²/(D σ_T²) > 10) and the ‖x‖ profile along the PF-ODE, and W2 of Heun samples (same
prior draws) against one shared target reference sample; W2's floor is that of independent
target samples against the same reference. An EDM-weighted pair (log-normal σ, EDM weighting;
the study's earlier recipe, ours, not the paper's) is reported beside the ring in full mode.

Quick mode: the ring under VP, α ∈ {α*, 10⁻²α*}, 2 seeds. Full mode: both data sets, both
processes, five α, 5 seeds.
"""

from __future__ import annotations

from ..common import Study
from .aggregate import edm_extra_summary, run_summary, sweep_rows, w2_tolerance
from .cells import cell_items, fp_cell
from .claims import add_claims
from .report import report_sections
from .settings import settings_for, settings_json

NAME = "fokker-planck"

TITLE = "Score Fokker–Planck regularisation: DSM against DSM + FP (published pairing, α swept)"

PAPER = "Lai et al. 2023, FP-Diffusion (paper D)"


def run(study: Study) -> None:
    """One cell per (data set, process, seed); per (data set, process) the α sweep, the run's
    summary and claims; then the results and the report."""
    st = settings_for(study.quick)
    combos = [(d, p) for d in st["data"] for p in st["processes"]]
    items = cell_items(study, combos)
    study.log(f"fokker-planck: {len(items)} cells (data × process × seed)")
    results = study.map(fp_cell, items)
    by = {c: [r for it, r in zip(items, results, strict=True) if (it["data"], it["process"]) == c]
          for c in combos}  # fmt: skip
    sweep, runs, extras = [], {}, {}
    for (data, process), cells in by.items():
        seeds = [it["seed"] for it in items if (it["data"], it["process"]) == (data, process)]
        w2_sd, w2_margin = w2_tolerance(cells)
        sweep += sweep_rows(data, process, cells)
        runs[f"{data}/{process}"] = run_summary(cells, seeds, w2_sd, w2_margin)
        if "edm_extra" in cells[0]:
            extras[f"{data}/{process}"] = edm_extra_summary(cells)
        add_claims(study, data, process, cells, w2_margin)
    study.results = {
        "settings": settings_json(st),
        "alpha_sweep": sweep,
        "runs": runs,
        "edm_extra": extras,
    }
    report_sections(study, by, runs, sweep, extras)
