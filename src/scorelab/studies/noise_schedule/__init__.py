"""Study ``noise-schedule`` (paper A, Strasman et al.; docs/theory.md §11.1): how the shape of
the noise schedule β_a(t) = β_min + (β_max − β_min)(e^{at} − 1)/(e^{aT} − 1) changes the error
of the sampled law, beside paper A's KL and W2 bounds.

Three parts, each on paper A's settings (σ∞ = 1, T = 1, β_min = 0.1, β_max = 20, N uniform
steps down to t = 0, Euler–Maruyama at the right end point as in the authors' figures, and
the exponential integrator):

1. **Gaussian N(𝟙, 0.5 I) in d = 10 with the exact score.** KL(π_data ‖ π̂_N) and W2 are exact
   (the sampler's output law is Gaussian, docs/theory.md §5.1, ``oracles.sampler_moments``) for
   every a, the cosine schedule and N ∈ {25, 50, 100}; beside them the KL bound (E1 + E3,
   E2 = 0) and the W2 bound, and the a that minimises the W2 bound (``tune_parametric``). No
   random draw: computed once, the same for every seed.
2. **MG25 with the exact score** (from the authors' code, not the paper's findings: our
   extrapolation), by Monte Carlo, per seed: kNN KL(π_data ‖ samples) and sliced W2 against one
   reference sample shared by every schedule, N and sampler, with the same prior draws and
   noise for every arm; the estimator's floor from independent reference draws; the KL bound.
3. **Trained networks** (paper A's residual MLP, explicit score matching against the exact
   Gaussian score), per seed and schedule, with common random numbers across schedules (the
   same initial weights, training draws, prior draws and sampling noise): fitted-Gaussian KL
   and W2 beside both bounds with the measured score error.

A claim on part 1 is a closed form: ``study.exact_claim`` decides it once (no interval, no
seed count). A claim on parts 2–3 is decided by ``study.claim`` over the study's seeds from the
paired difference per seed; a "worse/better" claim's margin is the noise of that paired
difference — the difference evaluated again on an independent reference (MG25) or evaluation
(trained) draw with the arms shared (``verdicts.paired_noise_margin``); a tolerance claim's
margin is its stated tolerance (docs/studies/protocol.md).
"""

from __future__ import annotations

from ...bounds import tune_parametric
from ..common import Study
from .bound_claims import (
    claim_bounds_hold,
    claim_contraction,
    claim_paper_bounds,
    claim_tuned_beats_linear,
)
from .cells import mg25_part, trained_part
from .claims import (
    claim_bound_tracks,
    claim_falls_with_n,
    claim_gaussian_shape,
    claim_kl_bound_tracks,
    claim_mg25_shape,
    claim_paper_values,
)
from .figures import figure_schedules
from .gaussian import gaussian_part, tuning_part
from .report import report_gaussian, report_mg25, report_trained
from .settings import BETA_MAX, BETA_MIN, FULL, QUICK, SIGMA_INF, T, gaussian_target, settings_json

NAME = "noise-schedule"

TITLE = "Noise schedules: the error of β_a against a, beside paper A's KL and W2 bounds"

PAPER = (
    "Strasman, Ocello, Boyer, Le Corff, Lemaire — An analysis of the noise schedule for "
    "score-based generative models (arXiv 2402.04650, TMLR 2025)"
)


def run(study: Study) -> None:
    """The setting, the three parts, the claims on them, then the report's sections."""
    st = QUICK if study.quick else FULL
    study.section("Setting")
    study.text(
        f"VP with σ∞ = {SIGMA_INF:g}, T = {T:g}, β_a(t) = β_min + (β_max − β_min)(e^{{at}} − 1)/"
        f"(e^{{aT}} − 1), β_min = {BETA_MIN}, β_max = {BETA_MAX}; the cosine schedule (s = "
        f"0.021122) clipped at β_max. Uniform steps h = T/N down to t = 0. a-grid: "
        f"{', '.join(f'{a:g}' for a in st.a_grid)}. Seeds {study.seeds}: the closed-form "
        "Gaussian part has no random draw; MG25 and the trained networks are run per seed."
    )
    figure_schedules(study, st)
    gauss = gaussian_part(st, study.log)
    tuning = tuning_part(st, gauss)
    mg = mg25_part(study, st)
    # the trained networks use the a minimising the W2 bound at their N
    if str(st.train_N) in tuning:
        a_star = tuning[str(st.train_N)]["a"]
    else:
        a_star = tune_parametric(
            gaussian_target(), BETA_MIN, BETA_MAX, T, SIGMA_INF, N=st.train_N, bound="w2"
        ).best
    trained = trained_part(study, st, a_star)
    study.results.update(
        {
            "mode": "quick" if study.quick else "full",
            "settings": settings_json(st),
            "gaussian": gauss,
            "tuning": tuning,
            "mg25": mg,
            "trained": trained,
        }
    )
    claim_falls_with_n(study, gauss, mg)
    claim_gaussian_shape(study, gauss)
    claim_mg25_shape(study, mg)
    claim_bound_tracks(study, gauss, tuning)
    claim_kl_bound_tracks(study, gauss, trained)
    claim_bounds_hold(study, gauss, mg, trained)
    claim_contraction(study, gauss)
    claim_tuned_beats_linear(study, tuning, trained)
    claim_paper_values(study, gauss)
    claim_paper_bounds(study, trained)
    report_gaussian(study, gauss, tuning)
    report_mg25(study, mg)
    report_trained(study, trained, gauss)
