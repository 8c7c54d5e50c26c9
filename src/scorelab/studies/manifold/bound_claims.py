"""The claims on the surrogate bound (ours, docs/theory.md §9.5): it lies above every measured
W1, its shape in ε and T, and whether its optimal ε predicts the measured one.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from ..common import Study
from .claims import fmt_list
from .settings import GEOMETRIES


def claim_bound_above_w1(study: Study, cfg: dict, ps: list[dict], noise: dict) -> None:
    """7: the surrogate bound lies above every measured W1."""
    geos = list(GEOMETRIES)
    m_T = noise["empirical_T"]["margin"]
    # 7. the surrogate bound lies above the measured W1 (ours)
    gaps, margins, where_min = [], [], []
    for s in ps:
        best = (math.inf, "", 1.0, 0.0)
        for g in geos:
            for name in ("exact", "perturbed", "network"):
                if name in s[g]:
                    for b, w in zip(s[g][name]["log10_bound"], s[g][name]["w1"], strict=True):
                        best = min(
                            best, (b - math.log10(w), f"{g}/{name}/ε", w, noise[g]["margin"])
                        )
        for kind, row in s["empirical"]["T_sweep"].items():
            for b, w in zip(row["log10_bound"], row["w1"], strict=True):
                best = min(best, (b - math.log10(w), f"empirical/{kind}/T", w, m_T))
        gaps.append(best[0])
        margins.append(math.log10(1 + best[3] / best[2]))
        where_min.append(best[1])
    study.claim(
        "surrogate-bound-above-w1",
        "The surrogate bound (docs/theory.md §9.5, ours) lies above every measured W1 (for the "
        "network, with err(u) estimated by √MSE against the exact score).",
        source="extrapolation",
        where="ours: the surrogate bound of docs/theory.md §9.5 (synchronous coupling and "
        "Gronwall with Popoviciu's covariance bound), not the paper's constants",
        a=gaps,
        direction="greater",
        margin=max(margins),
        margin_rule="log10(1 + 2 floor sd / W1) at the tightest setting of each seed, the "
        "largest over seeds: the bound must clear a W1 lifted by twice its reference noise",
        measured=f"min over settings of log10(bound/W1) per seed: {fmt_list(gaps)} (at "
        + ", ".join(where_min)
        + f"); margin log10(1 + noise margin/W1) = {max(margins):.3g}",
    )


def claims_bound_shape(study: Study, cfg: dict, ps: list[dict], shape: dict) -> None:
    """8–9: the bound blows up as ε → 0 with an interior optimum, and (does not) decrease in T."""
    Ts = cfg["T_grid"]
    # 8–9. the bound's shape (deterministic: the same value for every seed)
    b = shape["log10_bound"]
    i = int(np.argmin(b))
    rise = min(b[0] - b[i], b[-1] - b[i])
    study.exact_claim(
        "surrogate-bound-blows-up-with-optimal-eps",
        "The surrogate bound (ours) blows up as ε → 0 (Λ ≈ e^{D²/(8ε)}) and has an optimal ε "
        "inside [10⁻⁴, 2] (exact score, circle, σ-geometric grid; deterministic).",
        source="extrapolation",
        where="ours: docs/theory.md §9.5 (the e^{κ/ε} of the theorem as read, §9.4); a closed "
        "form that does not depend on the seed",
        value=rise,
        direction="greater",
        margin=0.0,
        margin_rule="the sign alone decides: a closed form has no noise, and any rise from ε* "
        "to both ends is an interior optimum",
        measured=f"log10 bound {b[0]:.1f} at ε = {shape['eps'][0]:g}, minimum {b[i]:.3g} at "
        f"ε* = {shape['eps_star']:.3g}, {b[-1]:.3g} at ε = {shape['eps'][-1]:g}; the smaller "
        f"rise from ε* to an end is {rise:.3g} (closed form: no noise)",
    )
    curves = []
    for at, values in (
        (shape["eps_T"], shape["log10_bound_T"]),
        (shape["eps_star"], shape["log10_bound_T_at_eps_star"]),
    ):
        v = [x for x in values if x is not None]
        curves.append((at, v))
    worst = max(y - x for _, v in curves for x, y in itertools.pairwise(v))
    study.exact_claim(
        "surrogate-bound-decreases-in-T",
        "The surrogate bound (ours) decreases in T at a fixed ε (docs/theory.md §9.5's "
        "prediction; exact score, circle, σ-geometric grid with a fixed number of steps; "
        "deterministic).",
        source="extrapolation",
        where="ours: docs/theory.md §9.5 (the e^{−T} term of the theorem as read, §9.4); a "
        "closed form that does not depend on the seed",
        value=worst,
        direction="less",
        margin=0.0,
        margin_rule="the sign alone decides: a closed form has no noise, and any increase "
        "between consecutive T contradicts a decrease",
        measured="; ".join(f"at ε = {at:.3g}: log10 bound {fmt_list(v, 4)}" for at, v in curves)
        + f" along T = {fmt_list(Ts, 2)}; largest increase {worst:.3g} (Λ(ε, T) grows with T "
        "while ℓ(u) > 0, and the discretisation term grows with T at a fixed number of steps)",
    )


def claim_bound_predicts_eps(study: Study, cfg: dict, ps: list[dict], shape: dict) -> None:
    """10: the bound's ε* against the measured best ε of the perturbed score."""
    eps = cfg["eps"]
    geos = list(GEOMETRIES)
    # 10. the bound's ε* against the measured best ε of the perturbed score (ours)
    logs = {
        g: [
            math.log10(eps[int(np.argmin(s[g]["perturbed"]["w1"]))] / shape["eps_star"]) for s in ps
        ]
        for g in geos
    }
    study.claim(
        "surrogate-bound-predicts-best-eps",
        "The surrogate bound's optimal ε* predicts, within a factor 10, the ε at which the "
        "measured W1 is best for the score error of the assumed size.",
        source="extrapolation",
        where="ours: docs/theory.md §9.5 used as a tuning rule",
        a=[float(np.mean([logs[g][k] for g in geos])) for k in range(len(ps))],
        direction="within",
        margin=1.0,
        margin_rule="tolerance δ = one decade, fixed with the claim: a tuning rule is useful if "
        "it finds the best ε within a factor 10 (the ε grid is ≈ half-decade spaced)",
        measured=f"ε* = {shape['eps_star']:.3g}; log10(best ε / ε*) per seed "
        + ", ".join(f"{g} {fmt_list(v)}" for g, v in logs.items())
        + "; mean over geometries; tolerance 1 decade",
    )
