"""The claims on the bounds themselves: they hold, the contracted W2 mixing term still bounds the
exact mixing error, the bound-tuned schedule beats the linear one, and our trained networks'
W2 bound matches the authors' trained-network bound.
"""

from __future__ import annotations

import math

import numpy as np

from ...verdicts import Margin, paired_noise_margin
from ..common import Study
from .claims import (
    EXACT_SIGN,
    RECIPE,
    WHERE_FIG_BOUNDS,
    WHERE_FIG_EXACT,
    WHERE_KL_THM,
    WHERE_W2_THM,
    per_seed_text,
)
from .settings import SAMPLERS, SHORT

# the W2 bound at N = 100 with the authors' trained networks, read from their figure
# (docs/theory.md §11.1): trained schedule label → value ("tuned": the bound's minimum, a ≈ 4).
# The KL bound's values (6.08 / 6.04 / 6.76) are not compared: its E3 term is 6.00 for every
# a (every β_a ends at β_max), so a match says nothing about the schedule.
PAPER_W2_BOUND_N100 = {"a=-10": 117.0, "a=0": 47.0, "tuned": 28.5, "a=10": 46.0}

PAPER_BOUND_TOL = Margin(
    math.log(1.1),
    "tolerance 10 % (|log ratio| < log 1.1), the one this comparison used before it was made "
    "like for like: the authors' values are read to 2–3 significant digits (≤ 2 %), the rest "
    "allows for the two training recipes, which move the bound's score-error term ε·T·β(T)",
)

# a recipe difference from the authors' that the claims over every schedule include
COSINE_CLIPPED = (
    "among the schedules, the cosine schedule clipped at β_max (ours, so that β(T) = β_max as "
    "for every β_a)"
)

BOUND_SIGN = Margin(
    0.0,
    "the sign alone decides: the claim is that no measured error exceeds its bound; the "
    "Monte Carlo noise of the measured errors is in the interval over seeds",
)


def claim_bounds_hold(study: Study, gauss: dict, mg: dict, trained: dict) -> None:
    """The KL and W2 bounds lie above every measured error: exactly with the exact score on
    the Gaussian, and over seeds for MG25 and the trained networks."""
    exact = []
    for s in SAMPLERS:
        for N, b in gauss["bounds"].items():
            for metric in ("kl", "w2"):
                for lab, val in gauss["exact"][s][N][metric].items():
                    exact.append(val / b[metric][lab])
    study.exact_claim(
        "bounds-hold-exact-score",
        "The KL and W2 bounds are upper bounds on the error of the exact score's N-step law on "
        "the Gaussian target: the largest ratio error/bound over every schedule, N, sampler and "
        "metric stays below 1 (effect = that ratio − 1).",
        source="paper",
        where=f"{WHERE_KL_THM}; {WHERE_W2_THM}; {COSINE_CLIPPED}",
        value=max(exact) - 1.0,
        direction="less",
        margin=EXACT_SIGN,
        measured=f"largest error/bound {max(exact):.3g} over {len(exact)} (schedule, N, sampler, "
        "metric) cells.",
    )
    a, mg_max, tr_max = [], [], []
    for cell, rows in zip(mg["per_seed"], trained["per_seed"], strict=True):
        m = max(
            cell["exact"][s][N]["knn_kl"][lab] / cell["kl_bound"][N][lab]
            for s in SAMPLERS
            for N in cell["kl_bound"]
            for lab in cell["kl_bound"][N]
        )
        t = max(
            max(r[s]["kl"] / r["kl_bound"], r[s]["w2"] / r["w2_bound"])
            for r in rows.values()
            for s in SAMPLERS
        )
        mg_max.append(m)
        tr_max.append(t)
        a.append(max(m, t) - 1.0)
    study.claim(
        "bounds-hold-measured",
        "The KL and W2 bounds are upper bounds on measured errors: the largest ratio "
        "measured/bound per seed stays below 1 (KL for MG25 with the exact score, a target "
        "with finite relative Fisher information; KL and W2 for the trained networks on the "
        "Gaussian, with their measured score error; effect = that ratio − 1).",
        source="paper",
        where=f"{WHERE_KL_THM}; {WHERE_W2_THM}",
        a=a,
        direction="less",
        margin=BOUND_SIGN,
        measured=(
            f"largest measured/bound: MG25 kNN KL / KL bound {per_seed_text(mg_max)}; trained "
            f"networks {per_seed_text(tr_max)}."
        ),
    )


def claim_contraction(study: Study, gauss: dict) -> None:
    """The contracted W2 mixing term still bounds the exact mixing error (the contraction
    tightening the term is a closed-form identity, C_t > 0 when Σ ≺ σ∞² I: a unit test)."""
    mx = gauss["mixing"]
    labs = gauss["schedules"]
    gain = {k: mx["w2_bound_mixing_no_contraction"][k] / mx["w2_bound_mixing"][k] for k in labs}
    slack = {k: mx["w2_bound_mixing"][k] / mx["exact_w2"][k] for k in labs}
    study.exact_claim(
        "contracted-mixing-term-bounds",
        "The W2 bound's mixing term, tightened by the backward contraction exp(−∫C_t β), "
        "still bounds the exact mixing error — the W2 error of the continuous-time reverse SDE "
        "with the exact score, the only error left as N → ∞ — for every schedule (Gaussian; "
        "effect = the smallest log(term / exact error)).",
        source="paper",
        where=f"{WHERE_W2_THM}; the paper's finding that the contraction tightens the mixing "
        f"term; {COSINE_CLIPPED}",
        value=min(math.log(slack[k]) for k in labs),
        direction="greater",
        margin=EXACT_SIGN,
        measured=(
            f"Over {len(labs)} schedules: contracted term / exact continuous-time W2 "
            f"{min(slack.values()):.3g}–{max(slack.values()):.3g}×; the contraction tightens "
            f"the term by {min(gain.values()):.3g}–{max(gain.values()):.3g}× (an identity here: "
            "C_t > 0 because Σ = 0.5 I ≺ σ∞² I)."
        ),
    )


def claim_tuned_beats_linear(study: Study, tuning: dict, trained: dict) -> None:
    """The W2-bound-tuned a* beats the linear schedule: exactly, and with trained networks."""
    texts, worst = [], -math.inf
    for N, row in tuning.items():
        for s in SAMPLERS:
            r = row[s]
            worst = max(
                worst,
                math.log(r["kl_tuned"] / r["kl_linear"]),
                math.log(r["w2_tuned"] / r["w2_linear"]),
            )
            texts.append(
                f"N={N} {SHORT[s]} (a*={row['a']:.2f}): KL {r['kl_tuned']:.4f} vs "
                f"{r['kl_linear']:.4f}, W2 {r['w2_tuned']:.4f} vs {r['w2_linear']:.4f}"
            )
    study.exact_claim(
        "tuned-beats-linear-exact",
        "The schedule a* minimising the W2 bound beats the linear schedule (a = 0) in measured "
        "KL and W2 (Gaussian, exact score, every N and both samplers; effect = the largest log "
        "ratio a*/linear).",
        source="paper",
        where=f"{WHERE_FIG_BOUNDS}; {WHERE_FIG_EXACT} (a ≈ 4 below a = 0); the bound-based "
        "tuning of the schedule (arXiv v1)",
        value=worst,
        direction="less",
        margin=EXACT_SIGN,
        measured="; ".join(texts) + ".",
        paper_value="W2 bound 28.5 at a ≈ 4 against 47 at a = 0 (N = 100)",
    )
    for metric, name in (("kl", "KL"), ("w2", "W2")):
        per_sampler = {
            s: [r["tuned"][s][metric] - r["a=0"][s][metric] for r in trained["per_seed"]]
            for s in SAMPLERS
        }
        a = [max(per_sampler[s][i] for s in SAMPLERS) for i in range(len(study.seeds))]
        again = [
            max(r["tuned"]["second_draw"][s][metric] - r["a=0"]["second_draw"][s][metric]
                for s in SAMPLERS)
            for r in trained["per_seed"]
        ]  # fmt: skip
        margin = paired_noise_margin(a, again, what=f"{name}(a*) − {name}(a=0)")
        text = "; ".join(
            f"{SHORT[s]}: {name}(a*) − {name}(a=0) = {np.mean(v):.5f} ({per_seed_text(v)})"
            for s, v in per_sampler.items()
        )
        study.claim(
            f"tuned-beats-linear-trained-{metric}",
            f"With trained networks (N = {trained['N']}), the tuned schedule (a* = "
            f"{trained['a_tuned']:.2f}) beats the linear one in fitted-Gaussian {name} by more "
            f"than the noise of that paired difference, for both samplers (paired per seed: "
            f"the same initial network, training draws, prior draws and sampling noise; "
            f"effect = the larger difference).",
            source="paper",
            where=f"{WHERE_FIG_BOUNDS}; {RECIPE}",
            a=a,
            direction="less",
            margin=margin,
            measured=(
                f"{text}; margin {margin.value:.5f} ({margin.rule}; the samples redrawn, "
                f"n = {trained['n_samples']})."
            ),
            paper_value=(
                "the trained network's KL is minimal at a ≈ 4"
                if metric == "kl"
                else "empirical W2 smallest at a ≈ 4 (≈ 0.048)"
            ),
        )


def claim_paper_bounds(study: Study, trained: dict) -> None:
    """Our trained networks' W2 bound at N = 100 against the authors' trained-network bound
    (like for like: both with a trained network's measured score error)."""
    labs = [k for k in PAPER_W2_BOUND_N100 if k in trained["schedules"]]
    a = [
        max(abs(math.log(rows[k]["w2_bound"] / PAPER_W2_BOUND_N100[k])) for k in labs)
        for rows in trained["per_seed"]
    ]
    texts = [
        f"{k}: {np.mean([rows[k]['w2_bound'] for rows in trained['per_seed']]):.4g} "
        f"(paper ≈ {PAPER_W2_BOUND_N100[k]:g})"
        for k in labs
    ]
    study.claim(
        "paper-w2-bound-trained-n100",
        "Our trained networks' W2 bound at N = 100 reproduces the authors' trained-network W2 "
        "bound within 10 % at each schedule both have (a = −10, 0, 10 and the bound's minimiser "
        "a* ≈ 4; effect = the largest |log(ours / theirs)| per seed).",
        source="paper",
        where=f"{WHERE_FIG_BOUNDS}; {RECIPE}",
        a=a,
        direction="within",
        margin=PAPER_BOUND_TOL,
        measured="mean over seeds: " + "; ".join(texts) + f"; {per_seed_text(a)}.",
        paper_value=", ".join(f"W2 bound {k} ≈ {v:g}" for k, v in PAPER_W2_BOUND_N100.items()),
    )
