"""The claims on the bounds themselves: they hold, the contraction tightens the W2 mixing term, the
bound-tuned schedule beats the linear one, and the bounds' values match the paper's figure.
"""

from __future__ import annotations

import math

import numpy as np

from ..common import Study
from .claims import (
    EXACT,
    WHERE_FIG_BOUNDS,
    WHERE_KL_THM,
    WHERE_W2_THM,
    claim_with_rule,
    per_seed_text,
    same_for_every_seed,
)
from .settings import SAMPLERS, SHORT, grid_values

# the bounds at N = 100 read from the authors' figure (docs/theory.md §11.1): (label, a, value),
# a = None for the minimum over a; theirs include a measured score error, ours the exact score
PAPER_BOUNDS_N100 = {
    "kl": [("a=-10", -10, 6.08), ("a=0", 0, 6.04), ("a=10", 10, 6.76)],
    "w2": [("a=-10", -10, 117.0), ("a=0", 0, 47.0), ("minimum", None, 28.5), ("a=10", 10, 46.0)],
}

PAPER_BOUND_TOL = 0.1


def claim_bounds_hold(study: Study, gauss: dict, mg: dict, trained: dict) -> None:
    """The KL and W2 bounds lie above every measured error (exact score, MG25, trained)."""
    exact = []
    for s in SAMPLERS:
        for N, b in gauss["bounds"].items():
            for metric in ("kl", "w2"):
                for lab, val in gauss["exact"][s][N][metric].items():
                    exact.append(val / b[metric][lab])
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
        a.append(max(max(exact), m, t))
    claim_with_rule(
        study,
        "bounds-hold",
        "The KL and W2 bounds are upper bounds on the measured error: the largest ratio "
        "measured/bound stays below 1 (KL for any target with finite relative Fisher "
        "information, here the Gaussian and MG25; W2 for the strongly log-concave Gaussian; "
        "exact score and trained networks with the measured score error; effect = that "
        "ratio − 1).",
        source="paper",
        where=f"{WHERE_KL_THM}; {WHERE_W2_THM}",
        a=a,
        b=[1.0] * len(a),
        direction="less",
        margin=0.0,
        measured=(
            f"largest measured/bound: Gaussian exact score {max(exact):.3g} (exact); MG25 "
            f"kNN KL / KL bound {per_seed_text(mg_max)}; trained networks {per_seed_text(tr_max)}."
        ),
    )


def claim_contraction(study: Study, gauss: dict) -> None:
    """The backward contraction tightens the W2 mixing term and still bounds the exact one."""
    mx = gauss["mixing"]
    labs = gauss["schedules"]
    gain = {k: mx["w2_bound_mixing_no_contraction"][k] / mx["w2_bound_mixing"][k] for k in labs}
    slack = {k: mx["w2_bound_mixing"][k] / mx["exact_w2"][k] for k in labs}
    effect = min(min(math.log(gain[k]), math.log(slack[k])) for k in labs)
    claim_with_rule(
        study,
        "contraction-tightens",
        "The backward-contraction factor exp(−∫C_t β) tightens the W2 mixing term for every "
        "schedule, and the tightened term still bounds the exact mixing error of the "
        "continuous-time reverse SDE (effect = the smallest of the log gains and log slacks).",
        source="paper",
        where=WHERE_W2_THM + " (headline: the contraction tightens the mixing term)",
        a=same_for_every_seed(study, effect),
        direction="greater",
        margin=0.0,
        measured=(
            f"{EXACT} Over {len(labs)} schedules: gain from the contraction "
            f"{min(gain.values()):.3g}–{max(gain.values()):.3g}×; contracted term / exact "
            f"continuous-time W2 {min(slack.values()):.3g}–{max(slack.values()):.3g}×."
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
    claim_with_rule(
        study,
        "tuned-beats-linear-exact",
        "The schedule a* minimising the W2 bound beats the linear schedule (a = 0) in measured "
        "KL and W2 (Gaussian, exact score, every N and both samplers; effect = the largest log "
        "ratio a*/linear).",
        source="paper",
        where=WHERE_FIG_BOUNDS + "; the bound-based tuning of the schedule (arXiv v1)",
        a=same_for_every_seed(study, worst),
        direction="less",
        margin=0.0,
        measured=f"{EXACT} " + "; ".join(texts) + ".",
        paper_value="W2 bound 28.5 at a ≈ 4 against 47 at a = 0 (N = 100)",
    )
    noise = trained["noise"]
    for metric, name in (("kl", "KL"), ("w2", "W2")):
        per_sampler = {
            s: [r["tuned"][s][metric] - r["a=0"][s][metric] for r in trained["per_seed"]]
            for s in SAMPLERS
        }
        a = [max(per_sampler[s][i] for s in SAMPLERS) for i in range(len(study.seeds))]
        text = "; ".join(
            f"{SHORT[s]}: {name}(a*) − {name}(a=0) = {np.mean(v):.5f} ({per_seed_text(v)})"
            for s, v in per_sampler.items()
        )
        claim_with_rule(
            study,
            f"tuned-beats-linear-trained-{metric}",
            f"With trained networks (N = {trained['N']}), the tuned schedule (a* = "
            f"{trained['a_tuned']:.2f}) beats the linear one in fitted-Gaussian {name} by more "
            f"than the metric's noise, for both samplers (paired per seed: the same initial "
            f"network, training draws, prior draws and sampling noise; effect = the larger "
            f"difference).",
            source="paper",
            where=WHERE_FIG_BOUNDS,
            a=a,
            direction="less",
            margin=noise[metric],
            measured=(
                f"{text}; margin = the {name} floor's spread over independent target draws "
                f"at n = {trained['n_samples']}: {noise[metric]:.5f}."
            ),
            paper_value=(
                "the trained network's KL is minimal at a ≈ 4"
                if metric == "kl"
                else "empirical W2 smallest at a ≈ 4 (≈ 0.048)"
            ),
        )


def claim_paper_bounds(study: Study, gauss: dict, tuning: dict) -> None:
    """The bounds at N = 100 match the values read from the authors' figure."""
    if "100" not in gauss["bounds"]:
        return
    texts, worst, paper = [], 0.0, []
    for metric, refs in PAPER_BOUNDS_N100.items():
        vals = grid_values(gauss["bounds"]["100"][metric])
        for name, a, ref in refs:
            if a is None:
                ours = tuning["100"]["w2_bound_tuned"]
            elif float(a) in vals:
                ours = vals[float(a)]
            else:
                continue
            worst = max(worst, abs(ours - ref) / (PAPER_BOUND_TOL * ref))
            texts.append(f"{metric.upper()} {name}: {ours:.4g} (paper ≈ {ref:g})")
            paper.append(f"{metric.upper()} {name} ≈ {ref:g}")
    claim_with_rule(
        study,
        "paper-bounds-n100",
        f"Paper A's bound values at N = 100 are reproduced within {PAPER_BOUND_TOL:.0%} (the "
        "authors' include a trained network's score error, ours the exact score, so ours "
        "should sit slightly below; effect = the largest deviation in units of the tolerance).",
        source="paper",
        where=WHERE_FIG_BOUNDS,
        a=same_for_every_seed(study, worst),
        direction="within",
        margin=1.0,
        measured=f"{EXACT} " + "; ".join(texts) + ".",
        paper_value=", ".join(paper),
    )
