"""The step ladder: the exact law of a scheduler run at each number of steps, the fitted order
of accuracy, and the limit error.

At each N the run's law is read by probing (``law.probe_affine``) on a Gaussian target, or
measured by samples otherwise. The discretisation error is separated from what does not
vanish as N grows (the limit error: prior mismatch, a final σ that is not 0, a wrong last
step) without knowing the limit: between successive rungs N_k < N_{k+1} of a method of order
p, the laws differ by W2(π̂_{N_k}, π̂_{N_{k+1}}) ≈ K (N_k^{−p} − N_{k+1}^{−p}), whatever the
limit error, so p̂ is the slope of that model fitted to the successive differences (a linear
regression of log W2 on log N on a doubling ladder). W2 is fitted, not KL: W2 is first order in
the error of the law's mean and covariance, so it falls like N^{−p}; KL is second order and
falls like N^{−2p}. The limit law is then Richardson's extrapolation of the last two rungs'
means and covariances, and its KL and W2 against the target are the limit error.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from ..interop import exact_denoiser
from ..velocity import exact_velocity
from .driver import (
    Driver,
    NonFinite,
    StepsRefused,
    init_noise_sigma,
    internal_level,
    model_output,
)
from .law import (
    NotAffine,
    count_draws,
    gaussian_error,
    intercept_noise,
    law_distance,
    monte_carlo,
    probe_affine,
)

F64 = torch.float64
DEFAULT_STEPS = (5, 10, 20, 40, 80, 160, 320)
# a W2 difference below this fraction of the target's scale is float32 round-off, not error
ROUNDOFF = 2e-6
FIT_POINTS = 3  # the fit uses the last (largest-N) usable differences: the asymptotic regime


@dataclass
class Rung:
    """One number of steps: its law (Gaussian targets) or samples' errors, or why not."""

    steps: int
    nfe: int = 0
    kl: float | None = None
    w2: float | None = None
    draws: int = 0
    method: str = "closed_form"
    mean: torch.Tensor | None = None
    cov: torch.Tensor | None = None
    extra: dict = field(default_factory=dict)
    refused: str | None = None
    error: str | None = None
    disc_w2: float | None = None

    @property
    def measured(self) -> bool:
        return self.refused is None and self.error is None and self.w2 is not None

    def to_json(self) -> dict:
        out = {"steps": self.steps, "nfe": self.nfe, "kl": _num(self.kl), "w2": _num(self.w2)}
        out["discretisation_w2"] = _num(self.disc_w2)
        out["method"] = self.method
        if self.method == "closed_form":
            out["noise_draws"] = self.draws
        out.update(self.extra)
        if self.refused:
            out["refused"] = self.refused
        if self.error:
            out["error"] = self.error
        return out


def _num(v):
    return None if v is None or not math.isfinite(v) else float(v)


def is_inverse(sch) -> bool:
    """Whether the scheduler's timesteps increase: an inversion (data → noise)."""
    ts = getattr(sch, "timesteps", None)
    return ts is not None and len(ts) > 1 and float(ts[-1]) > float(ts[0])


def exact_output(target, driver: Driver):
    """The target's exact model as the scheduler's model, at the level it computes with."""
    if driver.flow:
        from ..flow_interop import flow_scheduler_process

        model = exact_velocity(target, flow_scheduler_process())
    else:
        model = exact_denoiser(target, sigma_max=1e30)  # IPNDM starts at σ = tan(π/2)

    def output(sch, inp, t, i):
        return model_output(model, sch, inp, internal_level(sch, t, i), driver.flow)

    return output


def reference(target, inverse: bool):
    """The law a run should produce: the target's, or N(0, I) for an inversion."""
    mu, cov = target.gaussian_moments()
    if inverse:
        return torch.zeros_like(mu), torch.eye(len(mu), dtype=F64)
    return mu, cov


def _start(sch, target, inverse: bool):
    d = target.dim
    if inverse:  # an inversion starts on the data
        return target.gaussian_moments()
    s = init_noise_sigma(sch)
    return torch.zeros(d, dtype=F64), s**2 * torch.eye(d, dtype=F64)


def gaussian_rung(driver: Driver, target, steps: int, overrides=None, step_kwargs=None) -> Rung:
    """The exact law after ``steps`` steps (the scheduler's affine map read by probing)."""
    overrides = dict(overrides or {})
    shape = tuple(target.event_shape)
    output = exact_output(target, driver)
    nfe = [0]

    def run(x, noise):
        sch = driver.fresh(steps, **overrides)
        record = []
        with intercept_noise(sch, noise):
            out = driver.run(sch, x.reshape(x.shape[0], *shape), output, step_kwargs, record)
        nfe[0] = len(record)
        return out.reshape(x.shape[0], -1)

    probe = driver.fresh(steps, **overrides)
    inverse = is_inverse(probe)
    law = probe_affine(run, target.dim, count_draws(run, target.dim))
    mean, cov = law.push(*_start(probe, target, inverse))
    ref = reference(target, inverse)
    kl, w2 = gaussian_error(ref, mean, cov)
    return Rung(steps, nfe[0], kl, w2, law.draws, mean=mean, cov=cov)


def sample_rung(driver: Driver, target, steps: int, n: int, seed: int, step_kwargs=None) -> Rung:
    """W2 and MMD of n samples (with floors and CIs), for targets with no closed form."""
    sch = driver.fresh(steps)
    g = torch.Generator().manual_seed(seed)
    x = init_noise_sigma(sch) * torch.randn(n, *target.event_shape, generator=g, dtype=F64)
    kw = dict(step_kwargs or {})
    if driver.accepts_generator():
        kw.setdefault("generator", torch.Generator().manual_seed(seed + 1))
    record = []
    out = driver.run(sch, x, exact_output(target, driver), kw, record)
    mc = monte_carlo(target, out, seed)
    return Rung(steps, len(record), None, mc.pop("w2"), method="monte_carlo", extra=mc)


def measure(driver: Driver, target, steps: int, *, n: int, seed: int) -> Rung:
    """One rung, with a refusal or an exception of the scheduler recorded, never raised."""
    try:
        if target.gaussian_moments() is not None:
            try:
                return gaussian_rung(driver, target, steps)
            except NotAffine as exc:
                rung = sample_rung(driver, target, steps, n, seed)
                rung.extra["note"] = f"{exc}; measured by samples"
                return rung
        return sample_rung(driver, target, steps, n, seed)
    except StepsRefused as exc:
        return Rung(steps, refused=str(exc))
    except NonFinite as exc:
        return Rung(steps, error=str(exc))
    except Exception as exc:  # the scheduler's own failure is a finding, not a crash
        return Rung(steps, error=f"{type(exc).__name__}: {exc}")


def successive_differences(rungs: Sequence[Rung]) -> list[tuple[int, int, float]]:
    """(N_k, N_{k+1}, W2 between their laws) for successive measured Gaussian rungs."""
    done = [r for r in rungs if r.measured and r.mean is not None]
    return [
        (a.steps, b.steps, law_distance((a.mean, a.cov), (b.mean, b.cov)))
        for a, b in itertools.pairwise(done)
    ]


def _regress(xs: list[float], ys: list[float]) -> tuple[float, float | None]:
    """Least-squares slope and its 95% half-width (Student t; None with two points)."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    if n < 3:
        return slope, None
    resid = [y - my - slope * (x - mx) for x, y in zip(xs, ys, strict=True)]
    se = math.sqrt(sum(r * r for r in resid) / (n - 2) / sxx)
    from scipy.stats import t as student

    return slope, float(student.ppf(0.975, n - 2)) * se


def fit_order(diffs: list[tuple[int, int, float]], scale: float) -> dict | None:
    """p̂ from W2(π̂_{N_k}, π̂_{N_{k+1}}) ≈ K (N_k^{−p} − N_{k+1}^{−p}): the differences above
    the float32 round-off (``ROUNDOFF`` × the target's scale), the last ``FIT_POINTS`` of them;
    log(difference) − log(1 − (N_k/N_{k+1})^p) is regressed on log N_k (twice, p from the
    previous pass; exact on a doubling ladder). None with fewer than two usable points."""
    usable = [(a, b, e) for a, b, e in diffs if e > ROUNDOFF * scale]
    pts = usable[-FIT_POINTS:]
    if len(pts) < 2:
        return None
    p, half = 1.0, None
    for _ in range(3):
        xs = [math.log(a) for a, _, _ in pts]
        ys = [math.log(e) - math.log(max(1 - (a / b) ** p, 1e-12)) for a, b, e in pts]
        slope, half = _regress(xs, ys)
        p = max(-slope, 1e-3)
    ci = None if half is None else [p - half, p + half]
    return {
        "value": p,
        "ci": ci,
        "fit_range": [pts[0][0], pts[-1][1]],
        "points": [{"steps": a, "next": b, "w2_difference": e} for a, b, e in pts],
    }


def extrapolate(rungs: Sequence[Rung], p: float):
    """Richardson's limit law from the last two measured Gaussian rungs, order p."""
    done = [r for r in rungs if r.measured and r.mean is not None]
    if len(done) < 2:
        return None
    a, b = done[-2], done[-1]
    f = 1.0 / ((b.steps / a.steps) ** p - 1.0)
    mean = b.mean + f * (b.mean - a.mean)
    cov = b.cov + f * (b.cov - a.cov)
    vals, vecs = torch.linalg.eigh(0.5 * (cov + cov.T))
    cov = vecs @ torch.diag(vals.clamp(min=0)) @ vecs.T
    return mean, cov


__all__ = [
    "DEFAULT_STEPS",
    "Rung",
    "exact_output",
    "extrapolate",
    "fit_order",
    "gaussian_rung",
    "is_inverse",
    "measure",
    "reference",
    "sample_rung",
    "successive_differences",
]
