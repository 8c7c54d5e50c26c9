"""Samplers: pure functions turning a score model into samples, and ``integrate``, which runs
any of them under one contract.

**The sampler contract.** A sampler is one function

    sampler(score, process, grid, x, *, noise=None, callback=None, **options)
        -> SampleResult | tensor like x

registered with ``@scorelab.register("sampler", NAME, **metadata)``; its keyword options
become the config's ``sampler.<option>`` keys. It steps ``x`` (drawn at the grid's first level)
down the decreasing grid, where

* ``score(x, t)`` is a score model (``protocols.ScoreModel``): ``target.score_model(process)``,
  a trained network, or a ``scorelab.interfaces.Model`` given as a score, a denoiser D(x̂, σ)
  or an ε-predictor, whose faces (``denoise``, ``denoiser``, ``eps``) it may also call;
* ``grid`` is a ``TimeGrid``: its times (``grid.times(process)``) and noise levels
  (``grid.noise_levels(process)``, the given σ list or σ(t)); the steps/levels convention is
  stated once in ``scorelab.grids``;
* ``noise`` is a ``SampleNoise`` (per-sample streams), a ``torch.Generator`` or None; draw
  standard normals like x with ``scorelab.noise.normal_like(noise, x)``, and the same seed
  gives the same sample whatever the batch size;
* ``callback(step, t, x, denoised)`` is called after each step.

**What the caller owns.** ``integrate(sampler, score, process, grid, x, …)`` — and
``scorelab.generate``, which calls it per chunk — wraps the model so that every evaluation
counts one NFE (for the whole batch), and takes the final step to σ = 0 that
``grid.final == "denoise"`` asks for: Tweedie's x ← E[X₀ | X_{t_N} = x] (one more NFE, and a
last callback). A sampler therefore never sees ``final="denoise"`` unless it is registered
with ``own_final_step=True``, meaning its algorithm defines that step itself (EDM's churn on
the last level, DDIM's and DPM-Solver++'s step to σ = 0). The NFE reported is the count, not
what the sampler says.

**Metadata** a sampler may register, read by the rest of the code instead of name lists:
``oracle`` (its exact one-step law on a Gaussian target, a function of ``scorelab.oracles``, or
None), ``velocity_oracle`` (the same law written through the exact velocity, finite at t = 1 of
an interpolant), ``sigma_space`` (it steps in EDM's scaled variables with σ as time, so it
cannot start where σ is infinite), ``processes`` (the process families it is derived for),
``own_final_step``,
``deterministic`` (no noise drawn with its default options), ``batch_invariant`` (False when
one sample depends on its batch, as dopri5's shared step sizes make it), ``predictor`` (usable
as ``pc``'s predictor) and ``audit_default`` (run beside a scheduler by ``scorelab audit``).

The built-ins are step functions run by one private loop (``_run_steps``); anything a step
carries to the next (DPM-Solver++'s previous denoised estimate) travels in an explicit
``memory`` dict, never in hidden state. Called directly (not through ``integrate``), a built-in
takes the final step itself, so its output is the same either way.

Two parametrisations are used, each where it is exact or standard:
* the reverse SDE and the probability-flow ODE dx/dt = f x − ½ g² s in the process's time t
  (Euler–Maruyama, the exponential integrator, ODE Euler/Heun/RK4/dopri5; Heun in t is EDM's
  Algorithm 1 written through m(t) and σ(t));
* EDM's scaled variables x̂ = x/m with the noise level σ as time, in which the flow
  dx̂/dσ = (x̂ − D)/σ is the same for every process (EDM's stochastic sampler, DDIM,
  DPM-Solver++(2M)); here D(x, t) = (x + s² ∇log p_t(x))/m is Tweedie's denoiser.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Callable
from typing import Any, Literal

import torch

from . import oracles
from .errors import InvalidParameter
from .grids import TimeGrid
from .interfaces import Denoiser
from .noise import normal_like
from .processes import ForwardProcess, families, members
from .protocols import SampleResult, ScoreModel
from .registry import entries, entry, get, register
from .velocity import denoised_from_velocity, has_native_velocity, native_velocity


class _Counted:
    """A model that counts its evaluations (one call on the whole batch = one NFE).

    It is called like the model (``score(x, t)``) and passes on the model's other attributes;
    its faces ``score``, ``denoise``, ``denoiser`` and ``eps`` count too. A model whose native
    face is a denoiser (``prediction == "denoiser"``: an ``interfaces.Denoiser``, or a trained
    network with EDM's parameterisation) is asked for its denoiser directly by ``denoised``;
    any other model's denoiser is Tweedie's (x + s² s_θ)/m."""

    _FACES = frozenset({"score", "denoise", "denoiser", "eps"})

    def __init__(self, model: ScoreModel):
        self.model, self.calls = model, 0
        self.sigma_native = isinstance(model, Denoiser)  # D(x̂, σ) at any σ, no t needed
        self.native = self.sigma_native or getattr(model, "prediction", "score") in (
            "denoiser",
            "velocity",
        )

    def __call__(self, x, t):
        self.calls += 1
        return self.model(x, t)

    def __getattr__(self, name: str):
        if name == "model":  # not set yet (a copy being made)
            raise AttributeError(name)
        value = getattr(self.model, name)
        if name not in self._FACES or not callable(value):
            return value

        def face(*args, **kwargs):
            self.calls += 1
            return value(*args, **kwargs)

        return face

    def velocity(self, process: ForwardProcess, x, t: float):
        """The PF-ODE velocity from the model's native face (a velocity model, a 'flow'
        network, a denoiser on an interpolant: ``scorelab.velocity.native_velocity``), or
        None where the score is the native face."""
        if not has_native_velocity(self.model, process):
            return None
        self.calls += 1
        return native_velocity(self.model, process, x, t)

    def denoised(self, process: ForwardProcess, x, t: float, sigma: float | None = None):
        """E[X₀ | X_t = x] (and the score, where it was computed): the model's own denoiser
        (at the level ``sigma`` when given, else σ(t)), or Tweedie D = (x + s² ∇log p_t)/m."""
        if self.sigma_native:
            self.calls += 1
            m = float(process.scale(t))
            return self.model.denoiser(
                x / m, float(process.sigma(t)) if sigma is None else sigma
            ), None
        if self.native:
            self.calls += 1
            return self.model.denoise(x, t), None
        s = self(x, t)
        return (x + float(process.variance(t)) * s) / float(process.scale(t)), s

    def denoise_scaled(self, process: ForwardProcess, xh, sigma: float):
        """D(x̂, σ) at a level that need not be on the grid (EDM's raised level σ̂)."""
        if self.sigma_native:
            self.calls += 1
            return self.model.denoiser(xh, sigma)
        t = float(process.t_of_sigma(torch.tensor(sigma, dtype=torch.float64)))
        return self.denoised(process, float(process.scale(t)) * xh, t)[0]


def _counting(score) -> _Counted:
    """``score`` as a counting model; one that already counts is used as it is, so that a
    sampler calling another (``pc``'s predictor, a plugin wrapping a built-in) adds to the
    same count."""
    return score if isinstance(score, _Counted) else _Counted(score)


def _noise(noise, noise_sampler, x, sigma: float, sigma_next: float) -> torch.Tensor:
    """A standard-normal draw like x: the ``noise_sampler(σ, σ')`` hook when given, else from
    ``noise`` (per-sample streams, a generator or the global one)."""
    if noise_sampler is None:
        return normal_like(noise, x)
    z = noise_sampler(sigma, sigma_next)
    if not isinstance(z, torch.Tensor) or z.shape != x.shape:
        raise InvalidParameter(
            "noise_sampler",
            "must return a tensor shaped like x",
            tuple(getattr(z, "shape", ())),
            str(tuple(x.shape)),
        )
    return z.to(dtype=x.dtype, device=x.device)


def _sigmas(process: ForwardProcess, noise_sampler, t0: float, t1: float) -> tuple[float, float]:
    """σ(t0), σ(t1) for a noise sampler (not computed when there is none)."""
    if noise_sampler is None:
        return 0.0, 0.0
    return float(process.sigma(t0)), float(process.sigma(t1))


def _level(memory: dict, t: float, computed: float) -> float:
    """The noise level of the grid node t: the grid's own σ where it gave one (a σ list), else
    σ(t) as computed."""
    return memory.get("sigma", {}).get(t, computed)


def _coef(process: ForwardProcess, t: float) -> dict[str, float]:
    return {
        "m": float(process.scale(t)),
        "sigma": float(process.sigma(t)),
        "var": float(process.variance(t)),
        "f": float(process.drift_coef(t)),
        "g2": float(process.diffusion2(t)),
    }


def _grid(grid: TimeGrid | torch.Tensor, process: ForwardProcess):
    """(times, the grid's own σ's or None, final step)."""
    if isinstance(grid, TimeGrid):
        given = list(grid.sigmas) if grid.sigmas is not None else None
        return grid.times(process).tolist(), given, grid.final
    t = torch.as_tensor(grid, dtype=torch.float64)
    if t.ndim != 1 or t.numel() < 2 or bool((t[1:] >= t[:-1]).any()):
        raise InvalidParameter(
            "grid", "must be a decreasing sequence of at least two times", tuple(t.shape)
        )
    return t.tolist(), None, "none"


def _times(grid: TimeGrid | torch.Tensor, process: ForwardProcess) -> tuple[list[float], str]:
    times, _, final = _grid(grid, process)
    return times, final


def _final_step(model: _Counted, process, x, t_last: float, callback, step: int):
    """Tweedie's step from t_N to σ = 0: x ← E[X₀ | X_{t_N} = x] (one NFE), then the last
    callback, numbered ``step``."""
    x, _ = model.denoised(process, x, t_last)
    if callback is not None:
        callback(step, 0.0, x, x)
    return x


def _run_steps(
    step, score, process, grid, x, noise, callback, memory=None, sigma_space=False
) -> SampleResult:
    """Run a built-in's ``step`` over the grid. A σ-space sampler (``sigma_space``) sees the
    grid's own σ's (``_level``) and takes the final step to σ = 0 itself, as its algorithm
    defines it (EDM's churn on the last level, DPM-Solver++'s order); the others end with
    Tweedie's step (which ``integrate`` takes instead, asking the sampler for none)."""
    times, given, final = _grid(grid, process)
    counted = _counting(score)
    memory = {} if memory is None else memory
    if sigma_space:
        memory["sigma"] = dict(zip(times, given, strict=True)) if given else {}
        if final == "denoise" and times[-1] > 0:
            times, final = [*times, 0.0], "none"
            memory["sigma"][0.0] = 0.0
    n = len(times) - 1
    for k in range(n):
        # steps return the denoised estimate lazily: it costs passes over x that only a
        # callback needs
        x, denoised = step(counted, process, x, times[k], times[k + 1], noise, memory, k, n)
        if callback is not None:
            callback(k, times[k + 1], x, denoised())
    if final == "denoise":
        x = _final_step(counted, process, x, times[-1], callback, n)
    return SampleResult(x, counted.calls)


def _resolve(sampler) -> tuple[Callable, bool]:
    """(the sampler function, whether it takes the final step to σ = 0 itself) of a
    registered name or a function (registered or not)."""
    if isinstance(sampler, str):
        e = entry("sampler", sampler)
        return e.obj, bool(e.meta.get("own_final_step"))
    if not callable(sampler):
        raise InvalidParameter(
            "sampler", "must be a registered sampler's name or a function", type(sampler).__name__
        )
    for e in entries("sampler").values():
        if e.obj is sampler:
            return sampler, bool(e.meta.get("own_final_step"))
    return sampler, False


def integrate(
    sampler: str | Callable,
    score: ScoreModel,
    process: ForwardProcess,
    grid: TimeGrid | torch.Tensor,
    x: torch.Tensor,
    *,
    noise=None,
    callback=None,
    **options: Any,
) -> SampleResult:
    """Run ``sampler`` from the batch ``x`` (at the grid's first time) down ``grid``: one batch,
    no chunking or seeding (``scorelab.generate`` adds those).

    This owns what every sampler shares: the NFE count, the final step to σ = 0 that
    ``grid.final == "denoise"`` asks for (Tweedie's, unless the sampler is registered with
    ``own_final_step=True``) and its callback. See the module's docstring for the contract a
    sampler meets.

    Args:
        sampler: A registered sampler name or any function with the sampler contract
            ``(score, process, grid, x, noise=, callback=) -> x``.
        score: The score model ``s(x, t)`` in the process's time t.
        process: The forward process.
        grid: A ``TimeGrid`` or the decreasing times themselves (a 1-D tensor of t's).
        x: The starting batch ``[B, *event_shape]``, e.g. ``process.prior_sample(shape)``.
        noise: The noise source of stochastic samplers (``scorelab.noise``; default: fresh
            draws from torch's global generator).
        callback: ``callback(k, t_next, x, denoised)`` after every step.
        **options: The sampler's own parameters.

    Returns:
        A ``SampleResult`` with the final batch and the NFE (``seconds`` is None).

    Examples:
        >>> import torch, scorelab
        >>> target = scorelab.build_target({"kind": "gmm", "preset": "ring8"})
        >>> cosine = {"kind": "cosine", "clip_max": 20.0}
        >>> process = scorelab.build_process({"kind": "vp", "schedule": cosine})
        >>> x_T = process.prior_sample((500, 2), torch.Generator().manual_seed(0))
        >>> out = scorelab.integrate("heun", target.score_model(process), process,
        ...                          scorelab.TimeGrid("edm", steps=10), x_T)
        >>> tuple(out.samples.shape), out.nfe
        ((500, 2), 20)
    """
    fn, own_final = _resolve(sampler)
    times, _, final = _grid(grid, process)
    model = _counting(score)
    tweedie = final == "denoise" and not own_final
    inner = dataclasses.replace(grid, final="none") if tweedie else grid
    calls = [0]  # the callbacks the sampler made: the final step is numbered after them

    def counted_callback(k, t, xk, denoised):
        calls[0] += 1
        callback(k, t, xk, denoised)

    out = fn(
        model,
        process,
        inner,
        x,
        noise=noise,
        callback=None if callback is None else counted_callback,
        **options,
    )
    y = out.samples if isinstance(out, SampleResult) else out
    if not isinstance(y, torch.Tensor) or y.shape != x.shape:
        raise InvalidParameter(
            "sampler",
            f"'{getattr(fn, '__name__', fn)}' must return a SampleResult or a tensor shaped like x",
            tuple(getattr(y, "shape", ())) or type(y).__name__,
            str(tuple(x.shape)),
        )
    if tweedie:
        y = _final_step(model, process, y, times[-1], callback, calls[0])
    return SampleResult(y, model.calls)


# --------------------------------------------------------------------------------------------
# reverse SDE
# --------------------------------------------------------------------------------------------


@register("sampler", "euler_maruyama", oracle=oracles.euler_maruyama, predictor=True)
def euler_maruyama(
    score,
    process,
    grid,
    x,
    *,
    noise=None,
    callback=None,
    noise_sampler=None,
    eval_point: Literal["left", "right"] = "left",
):
    """Euler–Maruyama for the reverse SDE dx = [f x − g² s] dt + g dW̄ (t decreasing):
    x' = x + h[−f(τ) x + g²(τ) s(x, τ)] + √(h g²(τ)) z, with τ the step's start (``left``) or
    end (``right``, paper A's code) (docs/theory.md §4.1). Grid: N steps through N + 1 levels,
    plus Tweedie's step with ``final="denoise"`` (``scorelab.grids``)."""
    if eval_point not in ("left", "right"):
        raise InvalidParameter(
            "eval_point", "is not an evaluation point", eval_point, "left, right"
        )

    def step(score, process, x, t0, t1, noise, memory, k, n):
        tau = t0 if eval_point == "left" else t1
        c, h = _coef(process, tau), t0 - t1
        s = score(x, tau)
        out = torch.add(x * (1 - h * c["f"]), s, alpha=h * c["g2"])
        z = _noise(noise, noise_sampler, x, *_sigmas(process, noise_sampler, t0, t1))
        out.add_(z, alpha=math.sqrt(h * c["g2"]))
        return out, lambda: (x + c["var"] * s) / c["m"]

    return _run_steps(step, score, process, grid, x, noise, callback)


@register(
    "sampler",
    "exponential_integrator",
    processes=("vp",),
    oracle=oracles.exponential_integrator,
    predictor=True,
)
def exponential_integrator(
    score, process, grid, x, *, noise=None, callback=None, noise_sampler=None
):
    """Paper A's exponential integrator for VP: the linear part solved exactly, the score frozen
    at the step's start. With Δ = A(t_k) − A(t_{k+1}), A = B/(2σ∞²):
    x' = e^Δ x + 2σ∞² (e^Δ − 1) s(x, t_k) + σ∞ √(e^{2Δ} − 1) z  (docs/theory.md §4.2). Also for
    the ddpm process, a VP (docs/theory.md §1.4). Grid: N steps through N + 1 levels, plus
    Tweedie's step with ``final="denoise"`` (``scorelab.grids``)."""
    if "vp" not in families(process):
        raise InvalidParameter(
            "sampler",
            "exponential_integrator is derived for the VP process",
            process.kind,
            ", ".join(members("vp")),
        )
    v = process.sigma_inf**2

    def step(score, process, x, t0, t1, noise, memory, k, n):
        delta = float((process.schedule.integral(t0) - process.schedule.integral(t1)) / (2 * v))
        if not math.isfinite(delta):
            raise InvalidParameter(
                "grid",
                "starts where B(t) is infinite (cosine without clip_max); set clip_max or "
                "a grid t_max < T",
                t0,
            )
        s = score(x, t0)
        out = torch.add(x * math.exp(delta), s, alpha=2 * v * math.expm1(delta))
        z = _noise(noise, noise_sampler, x, *_sigmas(process, noise_sampler, t0, t1))
        out.add_(z, alpha=math.sqrt(v * math.expm1(2 * delta)))
        c = _coef(process, t0)
        return out, lambda: (x + c["var"] * s) / c["m"]

    return _run_steps(step, score, process, grid, x, noise, callback)


# --------------------------------------------------------------------------------------------
# probability-flow ODE in t
# --------------------------------------------------------------------------------------------


def _flow(score, process, x, t):
    """dx/dt = f x − ½ g² s(x, t), and the denoised estimate (lazily); a model with a native
    velocity is asked for it directly (finite where α = 0, at t = 1 of rectified flow)."""
    v = score.velocity(process, x, t) if isinstance(score, _Counted) else None
    if v is not None:
        return v, lambda: denoised_from_velocity(process, x, t, v)
    c = _coef(process, t)
    s = score(x, t)
    return torch.add(x * c["f"], s, alpha=-0.5 * c["g2"]), lambda: (x + c["var"] * s) / c["m"]


@register(
    "sampler",
    "ode_euler",
    oracle=oracles.ode_euler,
    velocity_oracle=oracles.velocity_ode_euler,
    deterministic=True,
    predictor=True,
)
def ode_euler(score, process, grid, x, *, noise=None, callback=None):
    """Euler on the probability-flow ODE in t (docs/theory.md §4.3). Grid: N steps through N + 1
    levels, plus Tweedie's step with ``final="denoise"`` (``scorelab.grids``). On EDM's process
    (σ = t) this is k-diffusion's ``sample_euler``."""

    def step(score, process, x, t0, t1, noise, memory, k, n):
        d, den = _flow(score, process, x, t0)
        return torch.add(x, d, alpha=-(t0 - t1)), den

    return _run_steps(step, score, process, grid, x, noise, callback)


@register(
    "sampler",
    "heun",
    oracle=oracles.heun,
    velocity_oracle=oracles.velocity_heun,
    deterministic=True,
    audit_default=True,
)
def heun(score, process, grid, x, *, noise=None, callback=None):
    """Heun's method on the PF-ODE in t (EDM Algorithm 1): the trapezoidal correction is skipped
    on a step that ends at t = 0 (docs/theory.md §4.3). Grid: N steps through N + 1 levels (2 NFE
    each), plus Tweedie's step with ``final="denoise"`` (1 NFE) (``scorelab.grids``). On EDM's
    process this is k-diffusion's ``sample_heun`` without churn."""

    def step(score, process, x, t0, t1, noise, memory, k, n):
        h = t0 - t1
        d0, den = _flow(score, process, x, t0)
        euler = torch.add(x, d0, alpha=-h)
        if t1 <= 0:
            return euler, den
        d1, den = _flow(score, process, euler, t1)
        return torch.add(x, d0.add_(d1), alpha=-0.5 * h), den

    return _run_steps(step, score, process, grid, x, noise, callback)


@register("sampler", "rk4", oracle=None, deterministic=True)
def rk4(score, process, grid, x, *, noise=None, callback=None):
    """Classical fourth-order Runge–Kutta on the PF-ODE in t (4 NFE a step). Grid: N steps
    through N + 1 levels, plus Tweedie's step with ``final="denoise"`` (``scorelab.grids``)."""

    def step(score, process, x, t0, t1, noise, memory, k, n):
        h, tm = t0 - t1, 0.5 * (t0 + t1)
        k1, den = _flow(score, process, x, t0)
        k2, _ = _flow(score, process, x - 0.5 * h * k1, tm)
        k3, _ = _flow(score, process, x - 0.5 * h * k2, tm)
        k4, _ = _flow(score, process, x - h * k3, t1)
        return x - h / 6 * (k1 + 2 * k2 + 2 * k3 + k4), den

    return _run_steps(step, score, process, grid, x, noise, callback)


DOPRI5_MAX_STEPS = 2_000  # adaptive steps before dopri5 gives up (tolerances beyond reach)


@register("sampler", "dopri5", oracle=None, deterministic=True, batch_invariant=False)
def dopri5(score, process, grid, x, *, noise=None, callback=None, rtol=1e-5, atol=1e-5):
    """Adaptive Dormand–Prince through torchdiffeq from the grid's first time to its last (the
    intermediate grid times are not used; ``final="denoise"`` adds Tweedie's step). Its step
    sizes are chosen for the whole batch, so results agree across batch sizes only up to the
    tolerances."""
    from torchdiffeq import odeint

    for name, tol in (("rtol", rtol), ("atol", atol)):
        if not (isinstance(tol, int | float) and math.isfinite(tol) and tol >= 0):
            raise InvalidParameter(name, "must be a finite number ≥ 0", tol, "e.g. 1e-5")
    if rtol == 0 and atol == 0:
        raise InvalidParameter(
            "rtol",
            "and atol are both 0: no step could meet the tolerance",
            rtol,
            "rtol or atol > 0",
        )
    times, final = _times(grid, process)
    counted = _counting(score)

    lo, hi = min(times[0], times[-1]), max(times[0], times[-1])

    def rhs(t, y):
        # torchdiffeq's first-step heuristic may probe outside the interval: clamp there
        return _flow(counted, process, y, min(max(float(t), lo), hi))[0]

    span = torch.tensor([times[0], times[-1]], dtype=x.dtype, device=x.device)
    try:
        out = odeint(
            rhs,
            x,
            span,
            method="dopri5",
            rtol=rtol,
            atol=atol,
            options={"max_num_steps": DOPRI5_MAX_STEPS},
        )[-1]
    except AssertionError as exc:  # torchdiffeq's way of giving up
        if "max_num_steps" not in str(exc):
            raise
        raise InvalidParameter(
            "rtol",
            f"and atol ({rtol:g}, {atol:g}) are too tight for {str(x.dtype)[6:]}: dopri5 gave "
            f"up after {DOPRI5_MAX_STEPS} steps",
            rtol,
            "looser tolerances (the default is 1e-5), or sampler.dtype float64",
        ) from None
    if callback is not None:
        callback(0, times[-1], out, out)  # dopri5 has no per-step denoised estimate
    if final == "denoise":
        out = _final_step(counted, process, out, times[-1], callback, 1)
    return SampleResult(out, counted.calls)


# --------------------------------------------------------------------------------------------
# samplers in EDM's scaled variables (x̂ = x/m, time = σ)
# --------------------------------------------------------------------------------------------


@register(
    "sampler",
    "edm_stochastic",
    oracle=None,
    deterministic=True,
    own_final_step=True,
    sigma_space=True,
)
def edm_stochastic(
    score,
    process,
    grid,
    x,
    *,
    noise=None,
    callback=None,
    noise_sampler=None,
    s_churn=0.0,
    s_min=0.0,
    s_max=float("inf"),
    s_noise=1.0,
):
    """EDM's Algorithm 2 (docs/theory.md §4.4): on each level σ_i ∈ [S_min, S_max], raise it to
    σ̂ = σ_i(1 + γ), γ = min(S_churn/N, √2 − 1), adding √(σ̂² − σ_i²)·S_noise·z, then a Heun
    step in σ down to the next level (Euler on the step to σ = 0, which lands on D(x̂, σ̂)).

    N is the number of steps taken: with ``final="denoise"`` the step to σ = 0 is one of them
    and also churns, as in EDM's Algorithm 2 and k-diffusion's ``sample_heun`` (N = len(sigmas)
    − 1). Our choice: σ̂ is capped at σ(T) for a score model, which is defined on [0, T] only;
    a denoiser D(x̂, σ) (``interfaces.from_denoiser``) is called at σ̂ uncapped, as in EDM.
    Grid: N steps through N + 1 levels, plus the step to σ = 0 with ``final="denoise"``
    (``scorelab.grids``); 2 NFE a step, 1 on the step to σ = 0.
    """
    sigma_top = float(process.sigma(process.T))

    def step(score, process, x, t0, t1, noise, memory, k, n):
        c0, c1 = _coef(process, t0), _coef(process, t1)
        s0, s1 = _level(memory, t0, c0["sigma"]), _level(memory, t1, c1["sigma"])
        xh = x / c0["m"]
        gamma = min(s_churn / n, math.sqrt(2) - 1) if s_min <= s0 <= s_max else 0.0
        s_hat = s0 * (1 + gamma)
        if not score.sigma_native:
            s_hat = min(s_hat, sigma_top)
        if s_hat > s0:
            z = _noise(noise, noise_sampler, xh, s0, s1)
            xh = xh + math.sqrt(s_hat**2 - s0**2) * s_noise * z
        d_hat = score.denoise_scaled(process, xh, s_hat)
        if s1 <= 0:  # Euler from σ̂ to 0: x̂ + (0 − σ̂)(x̂ − D)/σ̂ = D
            return c1["m"] * d_hat, lambda: d_hat
        d = (xh - d_hat) / s_hat
        nxt = xh + (s1 - s_hat) * d
        d1 = (nxt - score.denoised(process, c1["m"] * nxt, t1, s1)[0]) / s1
        nxt = xh + (s1 - s_hat) * 0.5 * (d + d1)
        return c1["m"] * nxt, lambda: d_hat

    return _run_steps(step, score, process, grid, x, noise, callback, sigma_space=True)


@register(
    "sampler",
    "ddim",
    oracle=oracles.ddim,
    deterministic=True,
    own_final_step=True,
    sigma_space=True,
    predictor=True,
    audit_default=True,
)
def ddim(score, process, grid, x, *, noise=None, callback=None, noise_sampler=None, eta=0.0):
    """DDIM in σ form (docs/theory.md §4.4): x̂' = D + √(σ'² − c²) ε̂ + c z with ε̂ = (x̂ − D)/σ
    and c² = η² σ'²(σ² − σ'²)/σ² (for VP this is DDIM's σ_η; η = 0 is Euler in σ). On the ddpm
    process at integer timesteps it is diffusers' ``DDIMScheduler`` step for step. Grid: N steps
    through N + 1 levels, plus the step to σ = 0 (which returns D) with ``final="denoise"``
    (``scorelab.grids``); 1 NFE a step."""
    if eta < 0:
        raise InvalidParameter("eta", "must be ≥ 0", eta)

    def step(score, process, x, t0, t1, noise, memory, k, n):
        c0, c1 = _coef(process, t0), _coef(process, t1)
        s0, s1 = _level(memory, t0, c0["sigma"]), _level(memory, t1, c1["sigma"])
        D, _ = score.denoised(process, x, t0, s0)
        eps = (x / c0["m"] - D) / s0
        c2 = eta**2 * s1**2 * (s0**2 - s1**2) / s0**2
        out = D + math.sqrt(max(s1**2 - c2, 0.0)) * eps
        if c2 > 0:
            out = out + math.sqrt(c2) * _noise(noise, noise_sampler, x, s0, s1)
        return c1["m"] * out, lambda: D

    return _run_steps(step, score, process, grid, x, noise, callback, sigma_space=True)


@register(
    "sampler",
    "dpmpp_2m",
    oracle=None,
    deterministic=True,
    own_final_step=True,
    sigma_space=True,
    audit_default=True,
)
def dpmpp_2m(score, process, grid, x, *, noise=None, callback=None, lower_order_final=True):
    """DPM-Solver++(2M) (multistep, data prediction) in λ = −log σ (docs/theory.md §4.4). The
    first step is first order (no earlier D); a step to σ = 0 returns D, the method's limit.

    ``lower_order_final`` takes the last step of the run at first order. With
    ``final="denoise"`` that last step is the one to σ = 0, so every other step keeps second
    order: the paper's Algorithm 2, k-diffusion's ``sample_dpmpp_2m`` and diffusers'
    ``DPMSolverMultistepScheduler`` (solver_order 2, final_sigmas_type "zero"). With
    ``final="none"`` the run ends at σ_N > 0 and the step to it is first order: our choice,
    for the stability diffusers buys by lowering the order below 15 steps; set
    ``lower_order_final=False`` for the paper's second-order last step. Grid: N steps through
    N + 1 levels, plus the step to σ = 0 with ``final="denoise"`` (``scorelab.grids``); 1 NFE a
    step."""

    def step(score, process, x, t0, t1, noise, memory, k, n):
        c0, c1 = _coef(process, t0), _coef(process, t1)
        s0, s1 = _level(memory, t0, c0["sigma"]), _level(memory, t1, c1["sigma"])
        D, _ = score.denoised(process, x, t0, s0)
        xh = x / c0["m"]
        if s1 <= 0:
            out = D
        else:
            h = math.log(s0 / s1)
            prev = memory.get("denoised")
            first_order = prev is None or (lower_order_final and k == n - 1)
            if first_order:
                d_eff = D
            else:
                r = memory["h"] / h
                d_eff = (1 + 1 / (2 * r)) * D - (1 / (2 * r)) * prev
            out = (s1 / s0) * xh - math.expm1(-h) * d_eff
            memory["h"] = h
        memory["denoised"] = D
        return c1["m"] * out, lambda: D

    return _run_steps(step, score, process, grid, x, noise, callback, memory={}, sigma_space=True)


# --------------------------------------------------------------------------------------------
# predictor–corrector
# --------------------------------------------------------------------------------------------


def predictors() -> tuple[str, ...]:
    """The samplers registered with ``predictor=True``: those ``pc`` may take a step of."""
    return tuple(name for name, e in entries("sampler").items() if e.meta.get("predictor"))


@register("sampler", "pc", oracle=None)
def pc(
    score,
    process,
    grid,
    x,
    *,
    noise=None,
    callback=None,
    noise_sampler=None,
    predictor: str = "euler_maruyama",
    snr: float = 0.16,
    n_corrector: int = 1,
    step: Literal["typical", "batch"] = "typical",
):
    """Predictor–corrector (Song et al.): at each time, ``n_corrector`` Langevin steps
    x ← x + ε s + √(2ε) z, then one predictor step.

    Song's step ε = 2 (snr ‖z‖/‖s‖)² uses norms averaged over the batch (``step="batch"``), so a
    sample then depends on its batch. The default ``step="typical"`` replaces ‖z‖/‖s‖ by its
    typical value s(t) (‖z‖ ≈ √D, ‖∇log p_t‖ ≈ √D/s(t) at high noise): ε = 2 (snr·s(t))², the
    same for every sample, which keeps per-sample seeding exact and was as accurate in our
    Gaussian checks. (Per-sample norms are unstable in low dimension: ‖s‖ → 0 at a mode.)

    The predictor is any sampler registered with ``predictor=True`` (``predictors()``). Grid: N
    predictor steps through N + 1 levels (n_corrector + 1 NFE each), plus Tweedie's step with
    ``final="denoise"`` (``scorelab.grids``). A ``noise_sampler`` is asked for the Langevin
    noise as ``noise_sampler(σ, σ)`` and passed on to a predictor that takes one.
    """
    if predictor not in predictors():
        raise InvalidParameter(
            "predictor", "is not a predictor", predictor, ", ".join(predictors())
        )
    if not snr > 0:
        raise InvalidParameter("snr", "must be > 0", snr)
    if int(n_corrector) < 0:
        raise InvalidParameter("n_corrector", "must be ≥ 0", n_corrector)
    if step not in ("typical", "batch"):
        raise InvalidParameter("step", "is not a Langevin step rule", step, "typical, batch")
    times, final = _times(grid, process)
    counted = _counting(score)
    pred = get("sampler", predictor)
    takes_hook = "noise_sampler" in inspect.signature(pred).parameters
    hook = {"noise_sampler": noise_sampler} if noise_sampler is not None and takes_hook else {}

    def rms(v):
        return v.reshape(v.shape[0], -1).norm(dim=1).mean()

    for k in range(len(times) - 1):
        t0 = times[k]
        for _ in range(int(n_corrector)):
            s = counted(x, t0)
            if noise_sampler is None:
                z = normal_like(noise, x)
            else:
                z = _noise(noise, noise_sampler, x, *_sigmas(process, noise_sampler, t0, t0))
            if step == "typical":
                eps = 2 * (snr * float(process.std(t0))) ** 2
            else:
                eps = float(2 * (snr * rms(z) / rms(s).clamp(min=1e-30)) ** 2)
            x = x + eps * s + math.sqrt(2 * eps) * z
        pair = torch.tensor([t0, times[k + 1]], dtype=torch.float64)
        x = integrate(pred, counted, process, pair, x, noise=noise, **hook).samples
        if callback is not None:
            callback(k, times[k + 1], x, x)
    if final == "denoise":
        x = _final_step(counted, process, x, times[-1], callback, len(times) - 1)
    return SampleResult(x, counted.calls)
