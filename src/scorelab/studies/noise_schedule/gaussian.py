"""Part 1: the Gaussian target with the exact score, in closed form (the sampler's output law is
Gaussian), and the a* that minimises the W2 bound. No random draw: the same for every seed.
"""

from __future__ import annotations

import math

from ...bounds import kl_bound, tune_parametric, w2_bound
from ...oracles import reverse_sde_exact, sampler_moments
from ...processes import VP
from .settings import (
    BETA_MAX,
    BETA_MIN,
    COSINE,
    LAM,
    MU,
    SAMPLERS,
    SIGMA_INF,
    D,
    Settings,
    T,
    gaussian_target,
    label,
    make_process,
    uniform_times,
)


# --- part 1: Gaussian, exact score, closed form ---------------------------------------------
def output_law(process: VP, sampler: str, N: int) -> tuple[float, float]:
    """Mean and variance (per direction) of the sampler's exact output law: every direction
    of the isotropic target evolves alike, so one direction suffices."""
    mean, var = sampler_moments(
        sampler, process, uniform_times(process, N), [LAM], [MU], **SAMPLERS[sampler]
    )
    return float(mean[0]), float(var[0])


def continuous_law(process: VP) -> tuple[float, float]:
    """The same for the continuous-time reverse SDE with the exact score started from
    N(0, σ∞² I), the limit N → ∞ (docs/theory.md §5.3)."""
    mean, var = reverse_sde_exact(process, process.T, 0.0, [LAM], [MU])
    return float(mean[0]), float(var[0])


def gaussian_errors(m1: float, v1: float, m2: float, v2: float) -> tuple[float, float]:
    """KL(N(m1 𝟙, v1 I) ‖ N(m2 𝟙, v2 I)) and W2 between them, written per direction (d times
    the 1-D value): the matrix forms of ``metrics.gaussian`` cancel catastrophically at the
    tiny errors of the continuous-time mixing term (≈ 1e-8), these do not."""
    x = v1 / v2 - 1
    # x − log(1 + x) without cancellation for small x
    f = x * x / 2 - x**3 / 3 + x**4 / 4 if abs(x) < 1e-4 else x - math.log1p(x)
    kl = 0.5 * D * (f + (m1 - m2) ** 2 / v2)
    w2 = math.sqrt(D * ((m1 - m2) ** 2 + (math.sqrt(v1) - math.sqrt(v2)) ** 2))
    return kl, w2


def exact_errors(process: VP, sampler: str, N: int) -> tuple[float, float]:
    """(KL(π_data ‖ π̂_N), W2(π_data, π̂_N)) with the exact score."""
    return gaussian_errors(MU, LAM, *output_law(process, sampler, N))


def gaussian_part(st: Settings, log) -> dict:
    """Part 1: exact errors, discretisation errors, bounds and mixing terms per schedule."""
    target = gaussian_target()
    specs = [*st.a_grid, COSINE]

    def table():
        return {s: {str(N): {"kl": {}, "w2": {}} for N in st.steps} for s in SAMPLERS}

    exact, discretisation = table(), table()
    bounds = {str(N): {"kl": {}, "w2": {}} for N in st.steps}
    keys = ("w2_bound_mixing", "w2_bound_mixing_no_contraction", "exact_kl", "exact_w2")
    mixing = {k: {} for k in keys}
    for spec in specs:
        proc, lab = make_process(spec), label(spec)
        limit = continuous_law(proc)
        mixing["exact_kl"][lab], mixing["exact_w2"][lab] = gaussian_errors(MU, LAM, *limit)
        for N in st.steps:
            for s in SAMPLERS:
                law = output_law(proc, s, N)
                cell, disc = exact[s][str(N)], discretisation[s][str(N)]
                cell["kl"][lab], cell["w2"][lab] = gaussian_errors(MU, LAM, *law)
                disc["kl"][lab], disc["w2"][lab] = gaussian_errors(*limit, *law)
            bounds[str(N)]["kl"][lab] = kl_bound(target, proc, N).total
            bounds[str(N)]["w2"][lab] = w2_bound(target, proc, N).total
        wb = w2_bound(target, proc, max(st.steps))
        B_T = float(proc.schedule.integral(proc.T))
        mixing["w2_bound_mixing"][lab] = wb.mixing
        mixing["w2_bound_mixing_no_contraction"][lab] = wb.w2_stationary * math.exp(
            -B_T / SIGMA_INF**2
        )
    log(f"noise-schedule: Gaussian exact errors for {len(specs)} schedules")
    return {
        "dim": D,
        "mean": MU,
        "cov": LAM,
        "schedules": [label(s) for s in specs],
        "a_grid": [float(a) for a in st.a_grid],
        "exact": exact,
        "discretisation": discretisation,
        "bounds": bounds,
        "mixing": mixing,
    }


def tuning_part(st: Settings, gauss: dict) -> dict:
    """a* minimising the exact-score W2 bound for each N, and the exact errors at a* against
    the linear schedule (a = 0)."""
    target = gaussian_target()
    out = {}
    for N in st.steps:
        res = tune_parametric(target, BETA_MIN, BETA_MAX, T, SIGMA_INF, N=N, bound="w2")
        tuned, linear = make_process(res.best), make_process(0.0)
        row = {
            "a": res.best,
            "w2_bound_tuned": res.value,
            "w2_bound_linear": res.value_at_reference,
        }
        for s in SAMPLERS:
            kl_t, w2_t = exact_errors(tuned, s, N)
            kl_0, w2_0 = exact_errors(linear, s, N)
            row[s] = {"kl_tuned": kl_t, "kl_linear": kl_0, "w2_tuned": w2_t, "w2_linear": w2_0}
            # the best a of the scanned grid by the measured error, for reference
            kls = gauss["exact"][s][str(N)]["kl"]
            grid_kl = {k: v for k, v in kls.items() if k != COSINE}
            best = min(grid_kl, key=grid_kl.get)
            row[s]["grid_best_a"] = float(best.split("=")[1])
            row[s]["grid_best_kl"] = grid_kl[best]
        out[str(N)] = row
    return out
