"""A diffusers scheduler's exact error beside scorelab's samplers on the same noise levels.

The scheduler is run by its pipelines' loop (``interop.run_scheduler``) with the target's exact
model — the ε (or v, x₀, EDM's F) that the target's exact denoiser gives at the σ the
scheduler assigns to each call — so what is measured is the sampling algorithm's own error,
the model being perfect.

For a Gaussian target the exact ε is affine in x, so every scheduler step is affine in the
sample and in the noise it draws: the whole run is x_out = M x_T + c + Σ_k N_k z_k. The audit
reads (M, c, N_k) off the scheduler itself by probing it on one batch — the zero input, the
unit vectors, and each noise draw replaced by unit vectors (diffusers' ``randn_tensor`` is
intercepted) — and checks the map on a random input (a scheduler that clips or thresholds is
not affine: it is then measured by Monte Carlo). The output law is N(c, s_T² M Mᵀ + Σ N_k N_kᵀ)
with s_T the scheduler's ``init_noise_sigma``, and KL(π_data ‖ π̂) and W2 follow in closed form
(docs/theory.md §5.1 and §8.4). For other targets (mixtures) n samples are drawn and W2 and
MMD are reported with their finite-sample floors and bootstrap CIs (``metrics.evaluate``).

scorelab's own samplers (by default those registered with ``audit_default=True``: DDIM,
DPM-Solver++(2M), Heun) are run on the same noise levels (the σ's of the scheduler's model
calls, then σ = 0) under the matching process (``interop.scheduler_process``), with the same
probes; any sampler registered as ``deterministic`` and batch-invariant may be asked for.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from ..errors import InvalidParameter
from ..flow_interop import is_flow_scheduler
from ..grids import TimeGrid
from ..interfaces import from_denoiser
from ..interop import (
    exact_denoiser,
    is_edm_scheduler,
    load_scheduler,
    run_scheduler,
    scheduler_process,
)
from ..registry import entries, entry
from ..samplers import integrate
from ..velocity import exact_velocity
from .driver import IMAGE_OPTIONS
from .law import (
    AffineLaw,
    NotAffine,
    count_draws,
    gaussian_error,
    intercept_noise,
    monte_carlo,
    probe_affine,
)

F64 = torch.float64


def comparable() -> tuple[str, ...]:
    """The samplers an audit can run beside a scheduler: registered as ``deterministic`` (no
    noise drawn with their default options) and batch-invariant, so their law is read by
    probing, as the scheduler's is."""
    return tuple(
        name
        for name, e in entries("sampler").items()
        if e.meta.get("deterministic") and e.meta.get("batch_invariant", True)
    )


def default_samplers() -> tuple[str, ...]:
    """The samplers an audit runs unless told otherwise: those registered with
    ``audit_default=True`` (the counterparts of diffusers' common schedulers)."""
    return tuple(n for n in comparable() if entries("sampler")[n].meta.get("audit_default"))


@dataclass
class AuditRow:
    steps: int
    nfe: int
    kl: float | None
    w2: float | None
    mmd: float | None = None
    method: str = "closed_form"
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        out = {"steps": self.steps, "nfe": self.nfe, "kl": _num(self.kl), "w2": _num(self.w2)}
        if self.method != "closed_form":
            out["mmd"] = _num(self.mmd)
        out["method"] = self.method
        out.update(self.extra)
        return out


def _num(v):
    return None if v is None or not math.isfinite(v) else float(v)


@dataclass
class Audit:
    scheduler: str
    target: str
    rows: list[AuditRow]
    scorelab: dict[str, list[AuditRow]]
    config: dict
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "scheduler": self.scheduler,
            "target": self.target,
            "scheduler_config": self.config,
            "rows": [r.to_json() for r in self.rows],
            "scorelab": {k: [r.to_json() for r in v] for k, v in self.scorelab.items()},
            "notes": self.notes,
        }


def _gaussian_error(target, law: AffineLaw, input_std: float) -> tuple[float, float]:
    return gaussian_error(target, *law.output(input_std))


def _run_fn(scheduler, model, steps: int, step_kwargs: dict, event_shape):
    """run(x_flat, noise) for the probes: the scheduler's loop on x reshaped to the event."""

    def run(x, noise):
        with intercept_noise(scheduler, noise):
            res = run_scheduler(
                scheduler,
                model,
                x.reshape(x.shape[0], *event_shape),
                steps,
                step_kwargs=step_kwargs,
            )
        run.nfe, run.sigmas = res.nfe, res.sigmas
        return res.samples.reshape(x.shape[0], -1)

    run.nfe, run.sigmas = 0, []
    return run


def audit(
    scheduler: str,
    target,
    steps: Sequence[int],
    *,
    scheduler_config: dict | None = None,
    step_kwargs: dict | None = None,
    samplers: Sequence[str] | None = None,
    n_mc: int = 2000,
    seed: int = 0,
) -> Audit:
    """Audit ``scheduler`` ("diffusers:CLASS") on ``target`` at each number of steps, beside
    scorelab's ``samplers`` (default: ``default_samplers()``; any of ``comparable()``)."""
    if not getattr(target, "has_score", False):
        raise InvalidParameter(
            "target", "needs an exact score (a target with a known law)", target.kind
        )
    steps = [int(n) for n in steps]
    samplers = default_samplers() if samplers is None else tuple(samplers)
    for name in samplers:
        if name not in comparable():
            raise InvalidParameter(
                "samplers", "are deterministic scorelab samplers", name, ", ".join(comparable())
            )
    if not steps or min(steps) < 1:
        raise InvalidParameter("steps", "must be positive integers", steps)
    probe = load_scheduler(scheduler)
    defaults = {k: v for k, v in IMAGE_OPTIONS.items() if k in probe.config}
    config = {**defaults, **(scheduler_config or {})}
    step_kwargs = dict(step_kwargs or {})
    model = exact_denoiser(target)
    event_shape = tuple(target.event_shape)
    d = target.dim
    gaussian = target.gaussian_moments() is not None
    notes = []
    if is_flow_scheduler(probe):  # rectified flow from t = 1: the exact velocity, t-space ODEs
        model = exact_velocity(target, scheduler_process(probe))
        in_sigma = {name for name in samplers if entry("sampler", name).meta.get("sigma_space")}
        dropped = [name for name in samplers if name in in_sigma]
        samplers = [name for name in samplers if name not in in_sigma]
        if dropped:
            notes.append(
                f"{', '.join(dropped)} omitted: a flow-matching scheduler starts at t = 1, where "
                "the noise level σ/α is infinite; scorelab's t-space ODE samplers start there"
            )
    if defaults:
        notes.append(
            "image-range options off by default (targets are not images in [−1, 1]): "
            + ", ".join(f"{k}={v}" for k, v in defaults.items())
        )
    rows, by_sampler = [], {name: [] for name in samplers}
    for n in steps:
        sch = load_scheduler(scheduler, config)
        sch.set_timesteps(n)
        input_std = float(getattr(sch, "init_noise_sigma", 1.0))  # flow schedulers: N(0, I)
        run = _run_fn(sch, model, n, step_kwargs, event_shape)
        row = None
        if gaussian:
            try:
                law = probe_affine(run, d, count_draws(run, d))
                kl, w2 = _gaussian_error(target, law, input_std)
                row = AuditRow(n, run.nfe, kl, w2, extra={"noise_draws": law.draws})
            except NotAffine as exc:
                notes.append(f"{n} steps: {exc}; measured by Monte Carlo")
        if row is None:
            g = torch.Generator().manual_seed(seed)
            x = input_std * torch.randn(n_mc, *event_shape, generator=g, dtype=F64)
            kw = dict(step_kwargs)
            if "generator" in inspect.signature(sch.step).parameters:
                kw.setdefault("generator", torch.Generator().manual_seed(seed + 1))
            res = run_scheduler(load_scheduler(scheduler, config), model, x, n, step_kwargs=kw)
            mc = monte_carlo(target, res.samples, seed)
            row = AuditRow(n, res.nfe, None, mc.pop("w2"), mc.pop("mmd"), "monte_carlo", extra=mc)
            run.sigmas = res.sigmas
        rows.append(row)
        levels = sorted({s for s in run.sigmas if s > 0}, reverse=True)
        for name in samplers:
            by_sampler[name].append(
                _scorelab_row(name, target, sch, levels, n, gaussian, n_mc, seed)
            )
    return Audit(
        scheduler, getattr(target, "kind", type(target).__name__), rows, by_sampler, config, notes
    )


def _scorelab_row(name, target, scheduler, levels, n, gaussian, n_mc, seed) -> AuditRow:
    """scorelab's sampler ``name`` on the scheduler's levels, then σ = 0."""
    process = scheduler_process(scheduler)
    if is_flow_scheduler(scheduler):  # the levels are rectified flow's times
        grid = torch.tensor([*levels, 0.0], dtype=F64)
        model = exact_velocity(target, process)
    else:
        top = float(process.sigma(process.T))
        grid = TimeGrid(sigmas=[*[min(s, top) for s in levels], 0.0])
        model = from_denoiser(exact_denoiser(target).fn, process)
    shape = tuple(target.event_shape)
    # the scheduler's starting law, in the sampler's variable (x_t for VP, x̂ for EDM's)
    input_std = float(scheduler.init_noise_sigma) if is_edm_scheduler(scheduler) else 1.0
    nfe = [0]

    def run(x, noise):
        res = integrate(name, model, process, grid, x.reshape(x.shape[0], *shape))
        nfe[0] = res.nfe
        return res.samples.reshape(x.shape[0], -1)

    if gaussian:
        law = probe_affine(run, target.dim, 0)
        kl, w2 = _gaussian_error(target, law, input_std)
        return AuditRow(n, nfe[0], kl, w2)
    g = torch.Generator().manual_seed(seed)
    x = input_std * torch.randn(n_mc, target.dim, generator=g, dtype=F64)
    mc = monte_carlo(target, run(x, None).reshape(n_mc, *shape), seed)
    return AuditRow(n, nfe[0], None, mc.pop("w2"), mc.pop("mmd"), "monte_carlo", extra=mc)


def figure(result: Audit, path) -> None:
    """Error against NFE: the scheduler beside scorelab's samplers (log–log)."""
    from ..report import pyplot

    plt = pyplot()

    keys = ["kl", "w2"] if any(r.kl is not None for r in result.rows) else ["w2", "mmd"]
    fig, axes = plt.subplots(1, len(keys), figsize=(5.2 * len(keys), 4.0))
    for ax, key in zip(axes, keys, strict=True):
        series = {result.scheduler.split(":")[-1]: result.rows}
        series.update({f"scorelab {k}": v for k, v in result.scorelab.items()})
        for i, (label, rows) in enumerate(series.items()):
            pts = [(r.nfe, getattr(r, key)) for r in rows if getattr(r, key) not in (None, 0)]
            pts = [(a, b) for a, b in pts if b is not None and math.isfinite(b) and b > 0]
            if pts:
                xs, ys = zip(*pts, strict=True)
                ax.loglog(xs, ys, "o-" if i == 0 else "s--", lw=2.2 if i == 0 else 1.2, label=label)
        ax.set_xlabel("NFE (model evaluations)")
        ax.set_ylabel({"kl": "KL(π_data ‖ π̂)", "w2": "W2", "mmd": "MMD"}[key])
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"{result.scheduler} on {result.target}: exact error")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


__all__ = [
    "Audit",
    "AuditRow",
    "NotAffine",
    "audit",
    "comparable",
    "default_samplers",
    "figure",
    "probe_affine",
]
