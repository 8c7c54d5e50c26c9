"""The claims on training: EDM's weight is bell-shaped, every design converges, and EDM's design
trains a lower score error than Song's.
"""

from __future__ import annotations

import math

import numpy as np

from ...verdicts import paired_noise_margin
from ..common import Study
from .error_terms import mid_log
from .settings import DESIGNS, MID_RANGE


def training_claims(study: Study, cells: list[dict]) -> None:
    """Every design's own objective converges (its excess falls by more than 2×)."""
    worst = [max(c["training"][k]["excess_final_over_initial"] for k in DESIGNS) for c in cells]
    per = {k: [c["training"][k]["excess_final_over_initial"] for c in cells] for k in DESIGNS}
    study.claim(
        "training-converges",
        "Training drives each design's own objective to its minimum: the excess of the DSM "
        "loss over its floor falls by more than 2× for every design",
        source="extrapolation",
        where="the training theorem (exponential convergence of gradient descent on the "
        "empirical DSM loss); here AdamW on fresh minibatches, not full-batch GD, and the "
        "rate is not tested",
        a=[math.log(v) for v in worst],
        direction="less",
        margin=math.log(2),
        margin_rule="the claim's own threshold, fixed with it: the excess must fall by more "
        "than 2× (ln 2 on the log scale) for the objective to count as driven to its minimum",
        measured="excess end/start per design, mean over seeds: "
        + ", ".join(f"{k} {np.mean(v):.3g}" for k, v in per.items())
        + " (effect: ln of the worst design's ratio, margin ln 2)",
    )


def score_error_claims(study: Study, cells: list[dict]) -> None:
    """EDM's design trains a lower score error than Song's (mid σ-range, and E_S). The margins
    are the noise of each claim's paired difference: the same networks' errors re-evaluated on
    a second, independent set of evaluation points."""
    edm = [mid_log(**_prof(c, "edm")) for c in cells]
    edm_other = [mid_log(**_prof(c, "edm", "profile_other")) for c in cells]
    ratios = {}
    for other, cid, what, where in (
        (
            "song",
            "score-error-edm-vs-song",
            "EDM's design (log-normal σ, λ_EDM and preconditioning) trains a lower score "
            "error than Song's VE (log-uniform σ, 1/σ², ε-prediction)",
            "abstract (the preferred training noise distribution and weighting agree "
            "qualitatively with EDM's); read as a lower score error where EDM's noise "
            "distribution puts its mass, at equal budget — the comparison, and the "
            "preconditioning it includes, are ours",
        ),
        (
            "song_precond",
            "score-error-weighting",
            "EDM's noise distribution and weighting alone (the same preconditioning) train a "
            "lower score error than log-uniform σ with 1/σ²",
            "abstract (the preferred training noise distribution and weighting agree "
            "qualitatively with EDM's); the per-σ comparison at equal budget is ours",
        ),
    ):
        oth = [mid_log(**_prof(c, other)) for c in cells]
        oth_other = [mid_log(**_prof(c, other, "profile_other")) for c in cells]
        margin = paired_noise_margin(
            [a[0] - b[0] for a, b in zip(oth, edm, strict=True)],
            [a[0] - b[0] for a, b in zip(oth_other, edm_other, strict=True)],
            what="the log ratio of the mid-range score errors (a second set of evaluation "
            "points, the networks shared)",
        )
        r = [math.exp(a[0] - b[0]) for a, b in zip(oth, edm, strict=True)]
        ratios[other] = r
        study.claim(
            cid,
            f"{what} in the σ-range that matters, σ ∈ [{MID_RANGE[0]}, {MID_RANGE[1]}] (the "
            "geometric mean of the normalised error σ² E‖s_θ − ∇log p_σ‖² there, final "
            "checkpoints)",
            source="extrapolation",
            where=where,
            a=[a[0] for a in oth],
            b=[b[0] for b in edm],
            direction="greater",
            margin=margin,
            measured=f"{other}/EDM geometric-mean ratio per seed "
            + ", ".join(f"{v:.3g}" for v in r)
            + f" (effect: ln of the ratio; margin {margin.value:.3g}, the paired noise of "
            "that log ratio)",
        )
    study.results["score_error"] = {"mid_ratio_over_edm": ratios}
    claim_es18(study, cells)


def claim_es18(study: Study, cells: list[dict]) -> None:
    """EDM's p(σ) and λ against log-uniform σ with 1/σ², through E_S on EDM's N = 18 grid."""
    es = {
        k: [c["terms"][f"{k}_final/edm/18"] for c in cells] for k in DESIGNS
    }  # E_S as EDM's N = 18 sampler weighs the error
    d_ref, d_other = (
        [math.log(a[key]) - math.log(b[key]) for a, b in zip(es["edm"], es["song_precond"],
                                                            strict=True)]
        for key in ("E_S", "E_S_other_draw")
    )  # fmt: skip
    margin = paired_noise_margin(
        d_ref, d_other, what="ln E_S(edm) − ln E_S(song_precond) (a second set of evaluation "
        "points, the networks shared)"
    )  # fmt: skip
    study.claim(
        "score-error-es18",
        "At equal budget EDM's noise distribution and weighting give a lower E_S (the score "
        "error as EDM's ρ = 7, N = 18 sampler weighs it) than log-uniform σ with 1/σ² under "
        "the same preconditioning",
        source="extrapolation",
        where="abstract (training preference agrees with EDM's), read through the sampling "
        "bound's E_S term; ours",
        a=[math.log(r["E_S"]) for r in es["edm"]],
        b=[math.log(r["E_S"]) for r in es["song_precond"]],
        direction="less",
        margin=margin,
        measured="E_S on the EDM N = 18 grid, mean over seeds: "
        + ", ".join(f"{k} {np.mean([r['E_S'] for r in v]):.4g}" for k, v in es.items())
        + f" (effect: ln E_S(edm) − ln E_S(song_precond); margin {margin.value:.3g}, its "
        "paired noise)",
    )
    study.results["score_error"]["e_s_edm18"] = {k: [r["E_S"] for r in v] for k, v in es.items()}


def _prof(cell: dict, key: str, draw: str = "profile") -> dict:
    p = cell[draw][key]
    return {"c": p["normalised"], "rel_se": p["rel_se"]}


def claim_weighting_bell(study: Study, ls: np.ndarray, w: dict[str, np.ndarray]) -> None:
    """EDM's total training weight ``w`` on the ln σ grid ``ls`` is bell-shaped, Song's flat
    (closed form: the same value for every seed)."""
    edm = w["edm"]
    peak = int(np.argmax(edm))
    # bell: the weight falls by ≥ 10× from its maximum towards both ends of the σ range
    bell_ratio = float(min(edm[peak] / edm[0], edm[peak] / edm[-1]))
    flat_ratio = float(w["song"].max() / w["song"].min())
    study.results["weighting"] = {
        "edm_peak_sigma": float(math.exp(ls[peak])),
        "edm_peak_over_ends": bell_ratio,
        "song_max_over_min": flat_ratio,
    }
    study.exact_claim(
        "weighting-bell",
        "EDM's total training weight (noise density × λ, on the normalised loss) is "
        "bell-shaped in ln σ: it falls by more than 10× from its peak to both ends of "
        "[σ_min, σ_max]; Song's VE weight is flat",
        source="extrapolation",
        where="abstract (the preferred noise distribution and weighting agree qualitatively "
        "with EDM's); the bell shape is computed from EDM's published p(σ) and λ "
        "(docs/theory.md §6.6), a closed form that does not depend on the seed",
        value=math.log10(bell_ratio),
        direction="greater",
        margin=1.0,
        margin_rule="the claim's own threshold, fixed with it: 'bell-shaped' is read as a fall "
        "of more than one decade (log10 ratio > 1) from the peak to both ends",
        measured=f"EDM peak at σ = {math.exp(ls[peak]):.3g}, falling {bell_ratio:.3g}× to the "
        f"range ends (log10 {math.log10(bell_ratio):.3g}, exact); Song max/min = "
        f"{flat_ratio:.3g}",
    )
