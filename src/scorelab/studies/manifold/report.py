"""The report's sections: the setting, each sweep's figure and table."""

from __future__ import annotations

from ..common import Study
from .figures import figure_bound_shape, figure_eps, figure_memorisation, figure_T
from .settings import SCORES


def eps_tables(study: Study, cfg: dict, mean: dict) -> None:
    """Per geometry, W1 and the bound against ε (means over seeds)."""
    eps = cfg["eps"]
    for geo, sw in mean["eps_sweep"].items():
        names = [k for k in SCORES if k in sw]
        study.text(f"{geo}: means over seeds (W1 floor of {cfg['n']} samples {sw['floor']:.3f})")
        header = ["ε", "W1(π, p_ε)"] + [f"W1 {k}" for k in names]
        header += [f"log10 bound {k}" for k in names]
        rows = [
            [e, sw["w1_p_eps"][i]]
            + [sw[k]["w1"][i] for k in names]
            + [sw[k]["log10_bound"][i] for k in names]
            for i, e in enumerate(eps)
        ]
        study.table(header, rows)


def report_sections(study, cfg, per_seed, shape, mean) -> None:
    """The setting, and each sweep's text, figure and table."""
    study.section("Setting")
    study.text(
        f"OU process dX = −X dt + √2 dB (VP, β ≡ {cfg['beta']:g}); laws: the uniform circle and "
        f"2-sphere of radius 1 embedded in R^{cfg['dim']} by a random isometry (D = 2), and the "
        f"empirical measure of {cfg['n_train']} points drawn from the circle (new points for each "
        f"seed). Sampler: Euler–Maruyama on the reverse SDE from N(0, I), {cfg['steps']} steps, "
        f"{cfg['n']} samples; W1 exact (POT) against a reference sample of the law (or π_n's "
        f"atoms). The network: MLP 128×3, ε-parameterised, DSM with EDM's log-normal σ, "
        f"{cfg['train_steps']} steps. Seeds {[s['seed'] for s in per_seed]}; within a seed every "
        "arm shares the reference sample, the points and the sampler's noise."
    )
    study.section("W1 against the early-stopping time ε")
    study.text(
        f"T = {cfg['T']:g}, grid geometric in σ on [ε, T]. The perturbed score adds "
        f"M(1 + ‖x‖)/σ_t² · e (M = {cfg['perturbation_M']:g}, e a unit vector of the manifold's "
        "plane). The bound (lower panels) is our surrogate of docs/theory.md §9.5, not the "
        "paper's theorem. Thin lines: each seed; markers: the mean."
    )
    figure_eps(study, cfg, per_seed)
    eps_tables(study, cfg, mean)
    study.section("W1 against the horizon T")
    study.text(
        f"Empirical measure of {cfg['n_train']} circle points, exact score, ε = "
        f"{cfg['eps_T_sweep']:g}, {cfg['steps']} steps, {cfg['n_emp']} samples, W1 to π_n's "
        "atoms. On the rotation-invariant circle itself the prior error is nearly invisible (p_T "
        "and N(0, I) give the same uniform angle); π_n has atoms whose weights the prior "
        "mismatch gets wrong."
    )
    figure_T(study, cfg, per_seed)
    study.table(
        ["T", "W1 σ-geometric", "W1 uniform"],
        [
            [T, mean["T_sweep"]["geometric"][i], mean["T_sweep"]["uniform"][i]]
            for i, T in enumerate(cfg["T_grid"])
        ],
    )
    study.section("The surrogate bound's shape")
    figure_bound_shape(study, shape)
    study.section("Memorisation")
    study.text(
        f"{cfg['n_train']} training points; memorised fraction = share of samples within ⅓ of "
        "the training points' median nearest-neighbour distance; d₁/d₂ = distance to the nearest "
        "over the second-nearest training point. W1(π_n, π) = "
        f"{mean['memorisation']['w1_train_population']:.3f} (mean over seeds)."
    )
    figure_memorisation(study, cfg, per_seed, per_seed[0]["empirical"]["memorisation"])
    header = ["score", "ε", "memorised fraction", "mean d₁/d₂", "d₁/d₂ < ⅓", "W1 to π_n", "W1 to π"]
    rows = []
    for name in ("exact", "network"):
        r = mean["memorisation"][name]
        for i, e in enumerate(cfg["memorisation_eps"]):
            rows.append(
                [
                    name,
                    e,
                    r["memorised_fraction"][i],
                    r["nn_ratio_mean"][i],
                    r["nn_ratio_below_third"][i],
                    r["w1_train"][i],
                    r["w1_population"][i],
                ]
            )
    study.table(header, rows)
