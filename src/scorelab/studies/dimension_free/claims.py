"""The claims: the fixed family's errors stay flat in d, the control's grow more, and the Mehler
oracle agrees with the closed forms; every claim an extrapolation of the theorem.
"""

from __future__ import annotations

import math

from ..common import Study
from .settings import METRICS

FLAT = 2.0  # "does not grow": the error at the largest d is at most this multiple of d = 2's

NAMES = {
    "relative_mean": "relative score error E‖s_θ − s‖²/E‖s‖² (mean over t)",
    "tilt_relative_mean": "error relative to the tilt's score, E‖s_θ − s‖²/E‖∇log h_t‖² "
    "(mean over t)",
    "tv_axes": "TV of the 1-D marginals on e₁, e₂ (the same law ½N(±a, 1) in both families)",
    "w2_plane": "W2 of the projection on (x₁, x₂) (the same four-mode square in both families)",
}

SHORT_ID = {
    "relative_mean": "relative-score-error",
    "tilt_relative_mean": "tilt-relative-error",
    "tv_axes": "tv-axes",
    "w2_plane": "w2-plane",
}

NOISE_TEXT = {
    "relative_mean": "the largest relative 95 % half-width of the Monte Carlo MSE",
    "tilt_relative_mean": "the largest relative 95 % half-width of the Monte Carlo MSE",
    "tv_axes": "the standard deviation of log TV over independent exact samples",
    "w2_plane": "the standard deviation of log W2 over independent exact samples",
}

MEHLER_Z = 2.0  # "up to its own Monte Carlo error": z below this

THEOREM = (
    "Cole & Lu (ICLR 2024), abstract and main result: TV(p̂, p₀) → 0 at a rate in n that does "
    "not depend on d, for empirical score matching with networks of bounded path norm"
)

OPERATIONALISATION = (
    "estimator: an MLP with weight decay at a fixed budget (our operationalisation of the "
    "theorem's path-norm-bounded estimator)"
)

WHERE = {
    "relative_mean": f"{THEOREM}; extended to the relative score error; {OPERATIONALISATION}",
    "tilt_relative_mean": (
        "our stricter reading (the error relative to the non-Gaussian part of the score) of "
        f"{THEOREM}; {OPERATIONALISATION}"
    ),
    "tv_axes": f"{THEOREM} (the TV of the law bounds that of its marginals); {OPERATIONALISATION}",
    "w2_plane": f"{THEOREM}; extended to the W2 of a projection; {OPERATIONALISATION}",
}

CONTROL_WHERE = (
    "our control, outside the theorem (a tilt whose complexity grows with d), showing that the "
    f"setup detects a d-dependence; {OPERATIONALISATION}"
)


def claim_with_rule(study: Study, id: str, statement: str, **kw) -> None:
    """``study.claim`` that also records the claim's direction and margin in the results
    (``claim_rules``), so that a reader of results.json sees the rule behind the verdict."""
    rules = study.results.setdefault("claim_rules", {})
    rules[id] = {"direction": kw["direction"], "margin": float(kw.get("margin", 0.0))}
    study.claim(id, statement, **kw)


def per_seed_text(values) -> str:
    return ", ".join(f"{v:.3g}" for v in values)


def add_claims(study: Study, res: dict) -> None:
    """Per metric: the fixed family stays flat in d, the control grows more; then the oracle."""
    dims = res["dims"]
    span = f"d = {dims[0]} → {dims[-1]}"
    lg = res["log_growth"]
    for metric in METRICS:
        g_f, g_c = lg["fixed"][metric], lg["control"][metric]
        margin = res["noise"][metric]
        f_vals = [r["fixed"][metric] for r in res["per_seed"]]
        c_vals = [r["control"][metric] for r in res["per_seed"]]
        text_f = "; ".join(
            f"seed {i}: {v[0]:.3g} → {v[-1]:.3g} (×{math.exp(g):.2f})"
            for i, (v, g) in enumerate(zip(f_vals, g_f, strict=True))
        )
        text_c = "; ".join(
            f"seed {i}: {v[0]:.3g} → {v[-1]:.3g} (×{math.exp(g):.2f})"
            for i, (v, g) in enumerate(zip(c_vals, g_c, strict=True))
        )
        floor = ""
        if metric in res["floors"]:
            floor = f"; floor at this n {res['floors'][metric]:.3g}"
        claim_with_rule(
            study,
            f"{SHORT_ID[metric]}-fixed-flat",
            f"With equal n, network and budget, the fixed-complexity tilt's {NAMES[metric]} does "
            f"not grow by more than ×{FLAT:g} from {span} (effect = log growth − log {FLAT:g}, "
            "per seed).",
            source="extrapolation",
            where=WHERE[metric],
            a=g_f,
            b=[math.log(FLAT)] * len(g_f),
            direction="less",
            margin=0.0,
            measured=f"fixed, {span}: {text_f}{floor}.",
        )
        claim_with_rule(
            study,
            f"{SHORT_ID[metric]}-control-grows",
            f"The control's (2^d modes) {NAMES[metric]} grows more than the fixed family's, by "
            f"more than the metric's noise (×{math.exp(margin):.3g}): effect = log "
            "growth(control) − log growth(fixed) "
            f"over {span}, paired per seed (the two share the d = {dims[0]} cell, so this is "
            f"log(control / fixed) at d = {dims[-1]}, the same initial network and draws).",
            source="extrapolation",
            where=CONTROL_WHERE,
            a=g_c,
            b=g_f,
            direction="greater",
            margin=margin,
            measured=(
                f"control, {span}: {text_c}; margin = the metric's log-scale noise {margin:.3g} "
                f"({NOISE_TEXT[metric]})."
            ),
        )
    claim_mehler_oracle(study, res)


def claim_mehler_oracle(study: Study, res: dict) -> None:
    """The Mehler oracle agrees with both closed forms up to its own Monte Carlo error."""
    mc = res["mehler_check"]
    claim_with_rule(
        study,
        "mehler-oracle",
        "The Mehler identity ∇log p_t = −x + m E[∇f(Y) e^{f(Y)}]/E[e^{f(Y)}] gives the score of "
        f"a Gaussian tilt: its Monte Carlo estimate ({res['settings']['n_mc']} draws per point, "
        f"{res['settings']['mehler_points']} points) agrees with both closed forms "
        "(fixed family at d = 8, control at d = 2) up to its own Monte Carlo error — the "
        "standardised gap z = ‖mc − exact‖/‖SE‖ (delta-method SE, pooled over both checks, "
        f"per seed) is below {MEHLER_Z:g}; z ≈ 1 when the gap is Monte Carlo noise alone.",
        source="extrapolation",
        where=(
            "our oracle (docs/theory.md §3.4), built on the paper's setting p_t = γ_d·P_t h₀; the "
            "Monte Carlo forms are not in the paper"
        ),
        a=mc["z"],
        direction="within",
        margin=MEHLER_Z,
        measured=(
            f"z per seed {per_seed_text(mc['z'])}; relative L² gaps at t = 0.5: fixed (d = 8) "
            f"{per_seed_text(mc['fixed_d8'])}, control (d = 2) "
            f"{per_seed_text(mc['control_d2'])}; the "
            f"control at d = 8 (first seed): gap {mc['control_d8']:.2e}, z "
            f"{mc['control_d8_z']:.3g} — e^f's weights are heavy-tailed there (a symptom of "
            "its growing complexity), so plain Monte Carlo needs far more draws, and its error "
            "estimate says so."
        ),
    )
