"""The conformance checks of a certificate, each a small function returning a ``Check``:
``{id, passed, detail}`` with ``passed`` True, False, or None where the check does not apply
(with the reason in ``detail``). An exception raised by the scheduler inside a check is a
failed check, never an error of the audit. What each check means: docs/audit.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..flow_interop import is_flow_scheduler
from ..interop import is_edm_scheduler
from .diffusers_facts import OPTION_ALTERNATIVES, TIMESTEP_LEVELS, expected_end_is_min, family
from .driver import Driver, StepsRefused, init_noise_sigma, timestep_level
from .ladder import exact_output, gaussian_rung
from .law import NotAffine, law_distance
from .levels import LevelRun

F64 = torch.float64
# a network reading timestep t sees its input's noise level within 2%: the interpolations of
# the σ table between integer timesteps (linear in σ or in log σ) differ by less than 1%
LEVEL_TOL = 0.02
# the widest fit interval (half-width) that may count as agreeing with the nominal order
ORDER_HALF_WIDTH = 0.5
# a timestep rounded to the nearest integer is at most ½ from the exact (fractional) one; the
# slack covers float32 tables. An off-by-one previous timestep is 1 away.
TIMESTEP_TOL = 0.55
# a step is of zero length when the state's noise level moves by less than this, relatively
ZERO_STEP = 1e-6
# the end of a run to σ = 0 leaves a noise level below this (float32 round-off of the state)
END_ZERO = 1e-4
# the same law to float32 round-off: W2 between two runs' laws below this × the target scale
SAME_LAW = 1e-4
# the fitted order within this of the nominal one: the pre-asymptotic bias of the last
# rungs of a doubling ladder is below 0.1 for the solvers of the table (docs/audit.md)
ORDER_TOL = 0.2
PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")


@dataclass
class Check:
    id: str
    passed: bool | None
    detail: str

    def to_json(self) -> dict:
        return {"id": self.id, "passed": self.passed, "detail": self.detail}


def _failure(cid: str, exc: Exception) -> Check:
    return Check(cid, False, f"the scheduler raised {type(exc).__name__}: {exc}")


def check_api(driver: Driver) -> Check:
    if driver.missing:
        return Check(
            "public_api",
            None,
            f"{driver.name} has no {', '.join(driver.missing)}: it is not driven by the "
            "pipelines' loop (set_timesteps, scale_model_input, step), so nothing is certified",
        )
    return Check("public_api", True, "set_timesteps and step present")


def check_runs(rungs) -> Check:
    errors = [f"{r.steps} steps: {r.error}" for r in rungs if r.error]
    refused = [f"{r.steps} steps: {r.refused}" for r in rungs if r.refused]
    if errors:
        return Check("runs", False, "; ".join(errors))
    if len(refused) == len(rungs):
        return Check("runs", None, "every step count refused: " + "; ".join(refused))
    note = f" (refused, a limit of the class: {'; '.join(refused)})" if refused else ""
    return Check("runs", True, f"every run finite{note}")


def _levels_detail(run: LevelRun) -> list[float]:
    """The state's noise level after each complete step, the start first."""
    return [run.start_sigma] + [c.after for c in run.calls if c.complete]


def check_sequence(runs: list[LevelRun], config: dict, inverse: bool, sch) -> Check:
    """The noise levels of the state after each complete step: strictly monotone, no step of
    zero length, ending at σ = 0 or at the smallest training level if the config asks so."""
    if not runs:
        return Check("sigma_sequence", None, "no run could be read on a point mass")
    for run in runs:
        levels = _levels_detail(run)
        for k in range(1, len(levels)):
            a, b = levels[k - 1], levels[k]
            hi, lo = (b, a) if inverse else (a, b)
            if not (math.isinf(hi) and math.isfinite(lo)) and not hi - lo > ZERO_STEP * hi:
                kind = "zero-length" if abs(b - a) <= ZERO_STEP * max(a, b, 1e-12) else "backward"
                return Check(
                    "sigma_sequence",
                    False,
                    f"{run.steps} steps: step {k} is {kind} (noise level {a:.6g} → {b:.6g})",
                )
        if not inverse:
            bad = _end_mismatch(run, config, sch)
            if bad:
                return Check("sigma_sequence", False, bad)
    return Check(
        "sigma_sequence",
        True,
        f"strictly {'increasing' if inverse else 'decreasing'} levels, ends as configured "
        f"(step counts {', '.join(str(r.steps) for r in runs)})",
    )


def _end_mismatch(run: LevelRun, config: dict, sch) -> str | None:
    end = run.end_sigma
    if expected_end_is_min(config):  # EDM's σ_min is its config's, others' their table's
        want = float(config["sigma_min"]) if is_edm_scheduler(sch) else timestep_level(sch, 0)
        if want is None or abs(math.log(max(end, 1e-300) / want)) <= LEVEL_TOL:
            return None
        return f"{run.steps} steps: ends at noise level {end:.4g}, the config asks σ_min {want:.4g}"
    if end <= END_ZERO:
        return None
    return f"{run.steps} steps: ends at noise level {end:.4g}, not 0"


def _level_deviation(c) -> float:
    if math.isinf(c.expected) and math.isinf(c.sigma_in):
        return 0.0
    if c.expected <= 0 or c.sigma_in <= 0:
        return 0.0 if c.expected == c.sigma_in else math.inf
    return abs(math.log(c.sigma_in / c.expected))


def _timestep_table(sch):
    """The σ of each integer timestep, for a scheduler whose model reads integer timesteps
    off a trained table (ᾱ): None for continuous-time ones (EDM, flow, own level rules)."""
    if is_flow_scheduler(sch) or is_edm_scheduler(sch):
        return None
    if TIMESTEP_LEVELS.get(family(type(sch))) is not None:
        return None
    abar = getattr(sch, "alphas_cumprod", None)
    if not isinstance(abar, torch.Tensor) or abar.numel() < 2:
        return None
    table = ((1 - abar.to(F64)) / abar.to(F64)).sqrt().numpy()
    return table if np.all(np.diff(table) > 0) else None


def _timestep_offset(table, c, sigma: float | None = None) -> float:
    """How many integer timesteps the call's timestep is from the level ``sigma`` (default:
    its input's) — the table inverted, linear between integers as ``driver.timestep_level``
    reads it; a level beyond the table's ends reads as its nearest end, the closest a network
    trained on the table can be told."""
    sigma = c.sigma_in if sigma is None else sigma
    if not (0 < sigma < math.inf):
        return math.inf
    tau = float(np.interp(sigma, table, np.arange(len(table), dtype=np.float64)))
    return abs(float(c.timestep) - tau)


def _rounded(table, c) -> bool:
    """The call is told the nearest integer timestep to its input's level, or — for a
    scheduler that keeps its own σ table (Karras-type σ's) — to its own σ for the call: the
    input then sits where the earlier rounded calls put it, which no integer timestep could
    have avoided."""
    if _timestep_offset(table, c) <= TIMESTEP_TOL:
        return True
    own = c.table_sigma
    return own is not None and _timestep_offset(table, c, own) <= TIMESTEP_TOL


def check_timestep_levels(runs: list[LevelRun], sch=None) -> Check:
    """Every model call's timestep reads the noise level its input has. The first call out
    of tolerance is reported (later ones may follow from it: a model told the wrong level
    moves the state to a wrong one), with the largest deviation.

    A network trained on an integer timestep table can only be told integers: a call whose
    timestep is the nearest integer to its input's level (within ``TIMESTEP_TOL`` of the
    exact, fractional one) is consistent to the interface's resolution — diffusers rounds the
    timesteps of Karras-type σ's so, and a σ that far from the table's is then a property of
    the model interface, not of the scheduler. An off-by-one timestep is a whole step away."""
    if not runs:
        return Check("timestep_noise_level", None, "no run could be read on a point mass")
    table = _timestep_table(sch) if sch is not None else None
    worst, first, rounded = 0.0, None, 0
    for run in runs:
        for i, c in enumerate(run.calls):
            dev = _level_deviation(c)
            if dev > LEVEL_TOL and table is not None and _rounded(table, c):
                rounded += 1
                continue
            worst = max(worst, dev)
            if dev > LEVEL_TOL and first is None:
                first = (run, i, c, dev)
    if first is None:
        text = f"largest |log σ_input/σ_timestep| = {worst:.2e}"
        if rounded:
            text += (
                f"; {rounded} call(s) told the nearest integer timestep to their level (within "
                f"{TIMESTEP_TOL} of the exact one): consistent to the table's resolution, the "
                "rounding's effect on the law is in the ladder"
            )
        return Check("timestep_noise_level", True, text)
    run, i, c, dev = first
    detail = (
        f"{run.steps} steps, call {i}: timestep {c.timestep:g} reads noise level "
        f"{c.expected:.5g}, the model input is at {c.sigma_in:.5g} (|log ratio| {dev:.3g} > "
        f"{LEVEL_TOL}; largest {worst:.3g})"
    )
    if table is not None:
        detail += f"; {_timestep_offset(table, c):.3g} timesteps from the input's own level"
    return Check("timestep_noise_level", False, detail)


def _law(driver: Driver, target, steps: int, overrides=None, step_kwargs=None):
    rung = gaussian_rung(driver, target, steps, overrides, step_kwargs)
    return rung.mean, rung.cov


def check_prediction_types(driver: Driver, target, steps: int, scale: float) -> Check:
    """Each prediction type the class accepts, driven by the exact model of that type, gives
    the law of ε-prediction."""
    if "prediction_type" not in driver.config or driver.flow:
        return Check("prediction_types", None, "the class has no prediction_type option")
    laws, refused = {}, []
    for kind in PREDICTION_TYPES:
        try:
            laws[kind] = _law(driver, target, steps, {"prediction_type": kind})
        except (ValueError, NotImplementedError, StepsRefused) as exc:
            refused.append(f"{kind} ({type(exc).__name__})")
        except NotAffine as exc:
            return Check("prediction_types", None, f"not readable exactly: {exc}")
        except Exception as exc:
            return _failure("prediction_types", exc)
    if len(laws) < 2:
        return Check("prediction_types", None, f"one prediction type accepted; refused: {refused}")
    base_kind = next(iter(laws))
    diffs = {k: law_distance(laws[base_kind], v) for k, v in laws.items() if k != base_kind}
    bad = {k: v for k, v in diffs.items() if v > SAME_LAW * scale}
    text = ", ".join(f"{k}: W2 {v:.2e}" for k, v in diffs.items())
    note = f"; refused: {', '.join(refused)}" if refused else ""
    return Check(
        "prediction_types",
        not bad,
        f"{steps} steps, W2 to the {base_kind} law — {text}{note}",
    )


def last_level_shrinks(runs: list[LevelRun]) -> bool:
    """Whether the last model call's noise level falls as N grows (halves or more over the
    ladder), as it does with evenly spaced timesteps; σ schedules with a fixed σ_min keep it."""
    ends = [r.calls[-1].sigma_in for r in runs if r.calls]
    return len(ends) >= 2 and 0 < ends[-1] < 0.5 * ends[0]


def check_order(
    fit: dict | None, nominal: int | None, gaussian: bool, first_order_last: bool = False
) -> Check:
    """The fitted order is the nominal one within ``ORDER_TOL``. A run whose last step into
    σ = 0 is first order, from a level that shrinks with N (local error ∝ σ_last² ∝ 1/N), is
    first order as a whole in the limit, while its other steps keep the solver's order: its
    fitted order over a finite ladder lies between 1 and the nominal one, and that is what
    the check asks of it (the detail says so)."""
    if nominal is None:
        return Check("order", None, "no nominal order for this class")
    if not gaussian:
        return Check("order", None, "orders are certified on Gaussian targets (exact laws)")
    if fit is None:
        return Check("order", None, "fewer than two successive differences above round-off")
    p = fit["value"]
    span = f"fitted {p:.2f} over N = {fit['fit_range'][0]}…{fit['fit_range'][1]}"
    if first_order_last and nominal > 1:
        why = (
            f"{span}; the last step into σ = 0 is first order from a level that shrinks with "
            f"N, so the run tends to order 1 while its other steps have order {nominal}: "
            f"expected between 1 and {nominal} (tolerance ±{ORDER_TOL})"
        )
        if 1 - ORDER_TOL <= p <= nominal + ORDER_TOL:
            return Check("order", True, why)
        if p > nominal:  # above the solver's order: judged by the fit's interval
            return _order_by_interval(fit, nominal, why)
        return Check("order", False, why)
    if abs(p - nominal) <= ORDER_TOL:
        return Check("order", True, f"{span}, nominal {nominal} (tolerance ±{ORDER_TOL})")
    return _order_by_interval(fit, nominal, span)


def _order_by_interval(fit: dict, nominal: int, span: str) -> Check:
    """p̂ outside the tolerance: a curved log-log ladder (ancestral samplers approach their
    order slowly) is judged by the fit's interval — consistent with the nominal order when
    the interval reaches nominal ± tolerance and is narrow enough to mean something
    (half-width ≤ ``ORDER_HALF_WIDTH``), not resolved when it is wider; a straight ladder of
    another slope (an ignored order switch) has a narrow interval away from it and fails."""
    ci = fit.get("ci")
    text = (
        span
        if "nominal" in span or "expected" in span
        else (f"{span}, nominal {nominal} (tolerance ±{ORDER_TOL})")
    )
    if not ci:
        return Check("order", False, text)
    lo, hi = ci
    reaches = lo <= nominal + ORDER_TOL and hi >= nominal - ORDER_TOL
    text += f"; fit interval [{lo:.2f}, {hi:.2f}]"
    if not reaches:
        return Check("order", False, text)
    if (hi - lo) / 2 <= ORDER_HALF_WIDTH:
        return Check("order", True, text + ": consistent with the nominal order")
    return Check("order", None, text + ": too wide to decide (a longer ladder resolves it)")


def check_options(driver: Driver, target, steps: int, scale: float) -> Check:
    """Options that must change the law (an order switch, a σ schedule) do change it."""
    tried, same = [], []
    for key, (other, in_use) in OPTION_ALTERNATIVES.items():
        if key not in driver.config or not in_use(driver.config):
            continue
        alt = other(driver.config[key])
        try:
            base = _law(driver, target, steps)
            changed = _law(driver, target, steps, {key: alt})
        except (ValueError, NotImplementedError, ImportError, StepsRefused) as exc:
            tried.append(f"{key}={alt!r} refused ({type(exc).__name__})")
            continue
        except NotAffine as exc:
            return Check("options_change_result", None, f"not readable exactly: {exc}")
        except Exception as exc:
            return _failure("options_change_result", exc)
        w2 = law_distance(base, changed)
        tried.append(f"{key}={alt!r}: W2 {w2:.2e}")
        if w2 <= SAME_LAW * scale:
            same.append(key)
    if not tried:
        return Check("options_change_result", None, "no option of the table applies")
    if same:
        return Check(
            "options_change_result",
            False,
            f"changing {', '.join(same)} leaves the law unchanged ({'; '.join(tried)})",
        )
    return Check("options_change_result", True, "; ".join(tried))


def _real_run(
    driver: Driver, target, steps: int, seed: int | None, intercept: bool, fill: float = 0.0
):
    """A run on fixed starting points with a real generator (or none); ``intercept``: every
    draw through randn_tensor replaced by ``fill``."""
    from .law import intercept_noise

    sch = driver.fresh(steps)
    g = torch.Generator().manual_seed(1234)
    x = init_noise_sigma(sch) * torch.randn(4, *target.event_shape, generator=g, dtype=F64)
    kw = {} if seed is None else {"generator": torch.Generator().manual_seed(seed)}
    if intercept:
        with intercept_noise(sch, lambda k, shape: torch.full(shape, fill, dtype=F64)):
            return driver.run(sch, x, exact_output(target, driver), kw)
    return driver.run(sch, x, exact_output(target, driver), kw)


def check_generator(driver: Driver, target, steps: int, draws: int) -> Check:
    """A stochastic scheduler: the same generator gives the same samples, another generator
    other samples."""
    if draws == 0:  # none through randn_tensor; noise drawn elsewhere shows in two runs
        seed = 1 if driver.accepts_generator() else None
        try:
            same = torch.equal(*(_real_run(driver, target, steps, seed, False) for _ in "ab"))
        except Exception as exc:
            return _failure("generator", exc)
        if same:
            return Check("generator", None, "the scheduler draws no noise")
    if not driver.accepts_generator():
        return Check("generator", None, "step takes no generator")
    try:
        a = _real_run(driver, target, steps, 1, False)
        b = _real_run(driver, target, steps, 1, False)
        c = _real_run(driver, target, steps, 2, False)
    except Exception as exc:
        return _failure("generator", exc)
    same, differ = torch.equal(a, b), not torch.allclose(a, c)
    if same and not differ:  # drawn, but multiplied by 0 (Euler's noise with s_churn = 0)?
        try:
            inert = torch.equal(*(_real_run(driver, target, steps, 1, True, f) for f in (0, 1)))
        except Exception as exc:
            return _failure("generator", exc)
        if inert:
            why = "the scheduler draws noise that does not enter its samples"
            return Check("generator", None, why)
    if same and differ:
        return Check("generator", True, "reproducible with a generator, different across two")
    what = [] if same else ["one generator gives different samples"]
    if not differ:
        what.append("two generators give the same samples (the generator is ignored)")
    return Check("generator", False, "; ".join(what))


def check_noise_read(driver: Driver, target, steps: int, draws: int) -> Check:
    """All the noise a run draws goes through diffusers' ``randn_tensor``, so that its law
    is read exactly: with the draws intercepted, two generators give the same samples."""
    try:
        seeds = (1, 2) if driver.accepts_generator() else (None, None)
        a = _real_run(driver, target, steps, seeds[0], True)
        b = _real_run(driver, target, steps, seeds[1], True)
    except Exception as exc:
        return _failure("noise_read_exactly", exc)
    if torch.equal(a, b):
        return Check("noise_read_exactly", True, f"{draws} draws per run, all through randn_tensor")
    return Check(
        "noise_read_exactly",
        False,
        "the run draws noise outside diffusers' randn_tensor: its law is not read exactly",
    )


def _expected_coefficients(driver: Driver, c) -> tuple[float, float]:
    """(a, b) of the exact forward marginal a x₀ + b ε at a call's timestep, in the state
    convention its model input reveals (``LevelCall.scale``)."""
    if driver.flow:
        s = c.expected / (1 + c.expected) if math.isfinite(c.expected) else 1.0
        return 1.0 - s, s
    if driver.edm:
        return 1.0, c.expected
    alpha = 1.0 / math.sqrt(1.0 + c.expected**2)
    return alpha / c.scale, alpha * c.expected / c.scale


def _noised(sch, t) -> tuple[float, float]:
    x0 = torch.tensor([[1.0], [0.0]], dtype=torch.float32)
    e = torch.tensor([[0.0], [1.0]], dtype=torch.float32)
    ts = torch.tensor([t], dtype=sch.timesteps.dtype)  # one timestep, as pipelines pass it
    if hasattr(sch, "add_noise"):
        out = sch.add_noise(x0, e, ts)
    else:
        out = sch.scale_noise(x0, ts, e)
    return float(out[0, 0]), float(out[1, 0])


def _coefficient_error(got, want) -> float:
    return max(abs(g - w) for g, w in zip(got, want, strict=True)) / (abs(want[0]) + abs(want[1]))


def check_add_noise(driver: Driver, run: LevelRun | None) -> Check:
    """``add_noise`` (``scale_noise``) is the exact forward marginal at every timestep the
    run uses, and after ``set_begin_index`` (image-to-image) at the timestep it starts from."""
    if not (hasattr(driver.cls, "add_noise") or hasattr(driver.cls, "scale_noise")):
        return Check("add_noise", None, "the class has neither add_noise nor scale_noise")
    if run is None or not run.calls:
        return Check("add_noise", None, "no run could be read on a point mass")
    try:
        worst, at = 0.0, None
        for c in run.calls:
            err = _coefficient_error(
                _noised(driver.fresh(run.steps), c.timestep), _expected_coefficients(driver, c)
            )
            if err > worst:
                worst, at = err, c
        text = f"largest relative error {worst:.2e}"
        if hasattr(driver.cls, "set_begin_index"):
            k = len(run.calls) // 2
            sch = driver.fresh(run.steps)
            sch.set_begin_index(k)
            c = run.calls[k]
            err = _coefficient_error(_noised(sch, c.timestep), _expected_coefficients(driver, c))
            text += f"; after set_begin_index({k}): {err:.2e}"
            if err > worst:
                worst, at = err, c
    except Exception as exc:
        return _failure("add_noise", exc)
    if worst <= LEVEL_TOL:
        return Check("add_noise", True, text)
    return Check(
        "add_noise",
        False,
        f"{text}, at timestep {at.timestep:g} (exact marginal: noise level {at.expected:.5g})",
    )


__all__ = [
    "Check",
    "check_add_noise",
    "check_api",
    "check_generator",
    "check_noise_read",
    "check_options",
    "check_order",
    "check_prediction_types",
    "check_runs",
    "check_sequence",
    "check_timestep_levels",
]
