"""``certify``: the conformance certificate of one scheduler configuration on a target — the
step ladder with the exact KL and W2, the fitted order beside the nominal one, the limit
error, and the checks (docs/audit.md)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ..errors import InvalidParameter
from .certificate import Certificate
from .checks import (
    Check,
    check_add_noise,
    check_api,
    check_generator,
    check_noise_read,
    check_options,
    check_order,
    check_prediction_types,
    check_runs,
    check_sequence,
    check_timestep_levels,
    last_level_shrinks,
)
from .diffusers_facts import (
    CONSISTENCY_NOTE,
    CONSISTENCY_SCHEDULERS,
    first_order_final,
    nominal_order,
)
from .driver import IMAGE_OPTIONS, Driver, MissingDependency, StepsRefused, init_noise_sigma
from .ladder import (
    DEFAULT_STEPS,
    extrapolate,
    fit_order,
    is_inverse,
    measure,
    reference,
    successive_differences,
)
from .law import law_distance
from .levels import NoLevels, level_run
from .limit import exact_limit, fixed_last_step, limit_report
from .renoise import check_add_noise_mid_run

MAX_STEPS = 10_000
# the law at the largest N is the exact limit's to within this many last differences (the
# larger of the last two: a solver whose order pattern depends on N — DPM-Solver singlestep's
# order list — has a ladder that is not smooth in N, and its last difference can undershoot;
# a run whose order falls toward 1 through its last step leaves a remainder ≈ one difference,
# more while the ladder is still curved: 3 differences cover both)
LIMIT_SLACK = 3.0


def parse_steps(steps) -> list[int]:
    """Step counts from a sequence or "5,10,20": integers in 1…MAX_STEPS, increasing."""
    items = steps.split(",") if isinstance(steps, str) else list(steps)
    try:
        values = [int(str(v).strip()) for v in items if str(v).strip()]
    except ValueError:
        values = None
    if not values or any(v < 1 or v > MAX_STEPS for v in values):
        raise InvalidParameter(
            "--steps", f"must be comma-separated integers in 1…{MAX_STEPS}", steps
        )
    return sorted(set(values))


def _target_name(target) -> str:
    return str(getattr(target, "kind", type(target).__name__))


def _scale(target) -> float:
    mu, cov = target.gaussian_moments()
    return math.sqrt(float(torch.trace(cov)) + float(mu @ mu))


def _bare(spec, target, checks, notes=()) -> Certificate:
    name = spec if isinstance(spec, str) else getattr(spec, "__name__", type(spec).__name__)
    return Certificate(str(name), {}, _target_name(target), None, [], None, {}, checks, list(notes))


def _level_runs(driver: Driver, rungs) -> tuple[list, Check | None]:
    runs = []
    for r in rungs:
        if r.refused:
            continue
        try:
            runs.append(level_run(driver, r.steps))
        except (NoLevels, StepsRefused) as exc:
            return [], Check("timestep_noise_level", None, str(exc))
        except Exception as exc:  # the scheduler failed on a point mass
            return [], Check("timestep_noise_level", False, f"{type(exc).__name__}: {exc}")
    return runs, None


def _check_limit(rungs, runs, target, start_std, diffs, scale, deterministic) -> Check:
    """A deterministic run's law at the largest N is its exact limit (the ODE transport of
    its start, and a last step of fixed size if it has one) up to its discretisation
    error."""
    done = [r for r in rungs if r.measured and r.mean is not None]
    run = runs[-1] if runs else None
    if deterministic is None:
        return Check("limit_explained", None, "an inversion's limit: inverse_reaches_prior")
    if not deterministic or run is None or not done or not run.calls:
        why = "the limit of a stochastic run depends on the noise it injects"
        return Check("limit_explained", None, why if not deterministic else "no exact law")
    last = done[-1]
    fixed = fixed_last_step(runs)
    gap = law_distance((last.mean, last.cov), exact_limit(run, target, start_std, fixed))
    last_step = f", fixed last step from σ {fixed:.3g}" if fixed else ""
    slack = LIMIT_SLACK * max((e for _, _, e in diffs[-2:]), default=0.0) + 1e-4 * scale
    return Check(
        "limit_explained",
        gap <= slack,
        f"{last.steps} steps: W2 to the exact limit (prior mismatch and final σ "
        f"{run.end_sigma:.3g}{last_step}) is {gap:.3e}, allowed {slack:.3e}",
    )


def _check_inverse(limit: dict, target, scale: float) -> Check:
    """An inversion maps the target's law to the prior N(0, I): its limit law's W2 to the
    prior is at most 5% of the target's scale (the terminal-SNR mismatch of diffusers' tables,
    √ᾱ_T ‖μ‖ ≈ 0.006 ‖μ‖ for the linear β table, is far below)."""
    w2 = limit.get("w2")
    if w2 is None:
        return Check("inverse_reaches_prior", None, "no limit law")
    allowed = 0.05 * scale
    return Check(
        "inverse_reaches_prior",
        w2 <= allowed,
        f"W2 between the extrapolated output law and N(0, I): {w2:.3e} (allowed {allowed:.3e})",
    )


def certify(
    spec,
    target,
    *,
    scheduler_config: dict | None = None,
    step_kwargs: dict | None = None,
    steps: Sequence[int] | str = DEFAULT_STEPS,
    n: int = 2000,
    seed: int = 0,
) -> Certificate:
    """The certificate of ``spec`` ("diffusers:CLASS", a scheduler class or an instance) with
    ``scheduler_config`` and ``step_kwargs`` on ``target``, over the ladder ``steps``; ``n``
    samples per rung where the target has no closed form."""
    counts = parse_steps(steps)
    if not getattr(target, "has_score", False):
        raise InvalidParameter(
            "--target", "needs an exact score (a target with a known law)", _target_name(target)
        )
    if int(n) < 2:
        raise InvalidParameter("--n", "must be an integer ≥ 2", n)
    try:
        driver = Driver(spec, scheduler_config, step_kwargs)
    except MissingDependency as exc:
        return _bare(spec, target, [Check("loads", None, f"not installed: {exc}")])
    if driver.missing:
        return _bare(driver.name, target, [check_api(driver)])
    return _certify(driver, target, counts, int(n), seed)


# long: the certificate's parts in order, each one call; splitting would only pass state around
def _certify(driver: Driver, target, counts: list[int], n: int, seed: int) -> Certificate:
    gaussian = target.gaussian_moments() is not None
    rungs = [measure(driver, target, s, n=n, seed=seed) for s in counts]
    nominal = nominal_order(driver.family, driver.config, driver.step_kwargs)
    notes = []
    if driver.family in CONSISTENCY_SCHEDULERS:
        notes.append(CONSISTENCY_NOTE)
    image = {k: v for k, v in IMAGE_OPTIONS.items() if k in driver.config}
    if image:
        notes.append("image-range options off unless given (targets are not images in [−1, 1])")
    checks = [check_api(driver), check_runs(rungs)]
    measured = [r for r in rungs if r.measured]
    probe = driver.fresh(measured[-1].steps) if measured else None
    inverse = probe is not None and is_inverse(probe)
    scale = _scale(target) if gaussian else 1.0
    diffs = successive_differences(rungs) if gaussian else []
    fit = fit_order(diffs, scale) if gaussian else None
    runs, level_problem = _level_runs(driver, rungs)
    limit, start_std = {}, init_noise_sigma(probe) if probe is not None else 1.0
    if gaussian and measured:
        p = fit["value"] if fit else (nominal or 1)
        limit_law = extrapolate(rungs, p)
        for r in measured:
            if limit_law is not None and r.mean is not None:
                r.disc_w2 = law_distance((r.mean, r.cov), limit_law)
        limit = limit_report(limit_law, reference(target, inverse), runs, target, start_std)
    if probe is not None:
        checks.append(check_sequence(runs, driver.config, inverse, probe))
        checks.append(level_problem or check_timestep_levels(runs, probe))
        checks.append(check_add_noise(driver, runs[len(runs) // 2] if runs else None))
        checks.append(check_add_noise_mid_run(driver, runs[len(runs) // 2] if runs else None))
    if gaussian and measured:
        mid = next((r.steps for r in measured if r.steps >= 10), measured[-1].steps)
        draws = max(r.draws for r in measured)
        checks += [
            check_order(
                fit,
                nominal,
                gaussian,
                first_order_final(driver.family, driver.config) and last_level_shrinks(runs),
            ),
            check_prediction_types(driver, target, mid, scale),
            check_options(driver, target, mid, scale),
            check_generator(driver, target, mid, draws),
            check_noise_read(driver, target, mid, draws),
            _check_limit(
                rungs, runs, target, start_std, diffs, scale, None if inverse else draws == 0
            ),
        ]
        if inverse:
            checks.append(_check_inverse(limit, target, scale))
    elif not gaussian:
        checks.append(check_order(fit, nominal, gaussian))
    if driver.family in CONSISTENCY_SCHEDULERS:
        checks = [c if c.id != "order" else Check("order", None, CONSISTENCY_NOTE) for c in checks]
    return Certificate(
        f"diffusers:{driver.name}",
        driver.config,
        _target_name(target),
        nominal,
        rungs,
        fit,
        limit,
        checks,
        notes,
        driver.step_kwargs,
        certifiable=driver.family not in CONSISTENCY_SCHEDULERS,
    )


__all__ = ["MAX_STEPS", "certify", "parse_steps"]
