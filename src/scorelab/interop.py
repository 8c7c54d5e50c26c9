"""Adapters to k-diffusion and diffusers (docs/interop.md). Neither library is imported here:
their objects are used through their documented call signatures, so this module needs neither
to import, and nothing is ever downloaded.

* ``to_kdiffusion(model, process)``: a scorelab model as a k-diffusion denoiser
  ``model(x, sigma) -> denoised`` (σ a ``[B]`` tensor), for k-diffusion's samplers;
  ``interfaces.from_denoiser`` goes the other way.
* ``from_diffusers(unet, process)``: an ε-model with diffusers' signature
  ``unet(x, timestep) -> .sample`` (a ``UNet2DModel`` built locally, say) as a scorelab
  ``Model`` on the ddpm process (timestep k ↔ time t = k + 1, docs/theory.md §1.4), usable
  wherever a score model is (sampling, ``evaluate``, ``diagnose``, ``bound``).
* ``run_scheduler(scheduler, model, x)``: any diffusers ``SchedulerMixin`` driven by a scorelab
  model, the loop of diffusers' pipelines (``scale_model_input``, the model, ``step``), with
  the model's output in the scheduler's own convention (ε, v or x₀ of the DDPM family, EDM's
  preconditioned F for ``EDM*`` schedulers) at the noise level the scheduler assigns to the
  step.
* ``exact_denoiser(target)``: a target's exact D(x̂, σ) at every σ > 0 (no time horizon).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ._tensor import per_example
from .ddpm import DDPM
from .errors import InvalidParameter
from .flow_interop import flow_model_output, flow_scheduler_process, is_flow_scheduler
from .interfaces import Model, NoisePredictor, _per_example, as_model, from_denoiser
from .processes import EDM, ForwardProcess
from .protocols import SampleResult
from .schedules import EDMSigma

# --------------------------------------------------------------------------------------------
# k-diffusion
# --------------------------------------------------------------------------------------------


class KDiffusionDenoiser:
    """A scorelab model as k-diffusion's denoiser: ``self(x, sigma, **extra) -> D(x, σ)``.

    x is k-diffusion's sample, EDM's scaled x̂ = x/m; σ a ``[B]`` tensor (or a number). Extra
    keyword arguments (k-diffusion's ``extra_args``) are ignored."""

    def __init__(self, model, process: ForwardProcess):
        self.model = as_model(model, process)

    def __call__(self, x: torch.Tensor, sigma, **extra) -> torch.Tensor:
        return self.model.denoiser(x, sigma)


def to_kdiffusion(model, process: ForwardProcess) -> KDiffusionDenoiser:
    """A scorelab model (score, denoiser, ε, or a trained network) under ``process`` as a
    k-diffusion denoiser; k-diffusion's σ's must lie in the process's range."""
    return KDiffusionDenoiser(model, process)


def exact_denoiser(target, sigma_max: float = 1e6) -> Model:
    """The target's exact denoiser D(x̂, σ) = E[X₀ | X₀ + σZ = x̂] as a ``Model`` (docs/theory.md
    §3.1), for σ up to ``sigma_max``; its process is EDM's (m = 1, σ(t) = t)."""
    big = EDM(EDMSigma(sigma_min=1e-12, sigma_max=float(sigma_max)))
    return from_denoiser(lambda xh, sigma: target.denoise(xh, sigma, big), big)


# --------------------------------------------------------------------------------------------
# diffusers' models
# --------------------------------------------------------------------------------------------


class DiffusersModel(NoisePredictor):
    """A diffusers model (``model(x, timestep)`` returning a tensor or an output with
    ``.sample``) on the ddpm process; its ``prediction_type`` ("epsilon", "v_prediction",
    "sample") is converted to ε."""

    def __init__(
        self,
        net,
        process: DDPM,
        prediction_type: str = "epsilon",
        event_shape: tuple[int, ...] | None = None,
    ):
        if prediction_type not in ("epsilon", "v_prediction", "sample"):
            raise InvalidParameter(
                "prediction_type",
                "is not one of diffusers' prediction types",
                prediction_type,
                "epsilon, v_prediction, sample",
            )
        if not isinstance(process, DDPM):
            raise InvalidParameter(
                "process", "must be the ddpm process of the model's β table", type(process).__name__
            )
        super().__init__(self._eps, process)
        self.net, self.prediction_type = net, prediction_type
        self.event_shape = None if event_shape is None else tuple(int(v) for v in event_shape)

    def _eps(self, x: torch.Tensor, t) -> torch.Tensor:
        t = _per_example(t, x)
        inp = x if self.event_shape is None else x.reshape(x.shape[0], *self.event_shape)
        out = self.net(inp, DDPM.timestep_of_time(t).to(x.dtype))
        out = getattr(out, "sample", out)
        if isinstance(out, tuple):
            out = out[0]
        out = out.reshape(x.shape)
        if self.prediction_type == "epsilon":
            return out
        alpha = per_example(self.process.scale(t), x)
        sig = per_example(self.process.std(t), x)
        if self.prediction_type == "v_prediction":  # v = α ε − σ_t x₀, x = α x₀ + σ_t ε
            return alpha * out + sig * x
        return (x - alpha * out) / sig  # x₀ prediction


def from_diffusers(
    net,
    process: DDPM | None = None,
    prediction_type: str = "epsilon",
    event_shape: tuple[int, ...] | None = None,
) -> DiffusersModel:
    """A diffusers ε-model (``UNet2DModel`` and the like: ``net(x, timestep).sample``) as a
    scorelab model on ``process`` (default: diffusers' default linear β table, 1000 steps). At
    time t it is called with the timestep t − 1, fractional between integer times.
    ``event_shape`` is the network's shape of one example when the target's is another (a flat
    target of 16 coordinates for a 1×4×4 UNet, say)."""
    return DiffusersModel(net, DDPM() if process is None else process, prediction_type, event_shape)


# --------------------------------------------------------------------------------------------
# driving a diffusers scheduler
# --------------------------------------------------------------------------------------------


@dataclass
class SchedulerRun(SampleResult):
    """What ``run_scheduler`` returns: a ``SampleResult`` (the samples, the number of model
    calls) with the noise level of each call."""

    sigmas: list[float] = field(default_factory=list)


def is_edm_scheduler(scheduler) -> bool:
    """Whether the scheduler uses EDM's preconditioning (``EDMEulerScheduler``,
    ``EDMDPMSolverMultistepScheduler``): its model sees c_in x̂ and returns F with
    D = c_skip x̂ + c_out F."""
    return hasattr(scheduler, "precondition_outputs")


def step_sigma(scheduler, timestep, i: int) -> float:
    """The noise level σ (x = α(x₀ + σz)) the scheduler assigns to its i-th model call: its
    ``sigmas[step_index]`` where it keeps a σ table, else √((1 − ᾱ)/ᾱ) at the timestep."""
    sig = getattr(scheduler, "sigmas", None)
    if isinstance(sig, torch.Tensor) and sig.numel() > 0:
        idx = getattr(scheduler, "step_index", None)
        return float(sig[i if idx is None else idx])
    abar = float(scheduler.alphas_cumprod[int(timestep)])
    return math.sqrt((1 - abar) / abar)


def scheduler_model_output(scheduler, model: Model, inp: torch.Tensor, sigma: float):
    """The output the scheduler expects from its model for the model input ``inp`` at the
    noise level σ, computed from the scorelab model's denoiser D(x̂, σ)."""
    if is_edm_scheduler(scheduler):
        sd = float(scheduler.config.sigma_data)
        xh = inp * math.sqrt(sigma**2 + sd**2)  # the input is c_in x̂, c_in = 1/√(σ² + σ_d²)
        D = model.denoiser(xh, sigma)
        skip = scheduler.precondition_outputs(xh, torch.zeros_like(xh), sigma)  # c_skip x̂
        c_out = scheduler.precondition_outputs(
            torch.zeros_like(xh[:1]), torch.ones_like(xh[:1]), sigma
        )
        return (D - skip) / c_out
    alpha = 1 / math.sqrt(1 + sigma**2)  # diffusers' √ᾱ; the input is x_t = √ᾱ (x₀ + σz)
    sig_t = sigma * alpha
    D = model.denoiser(inp / alpha, sigma)
    eps = (inp - alpha * D) / sig_t
    kind = getattr(scheduler.config, "prediction_type", "epsilon")
    if kind == "epsilon":
        return eps
    if kind == "v_prediction":
        return alpha * eps - sig_t * D
    if kind == "sample":
        return D
    raise InvalidParameter(
        "prediction_type", "is not supported", kind, "epsilon, v_prediction, sample"
    )


def run_scheduler(
    scheduler,
    model,
    x: torch.Tensor,
    steps: int | None = None,
    *,
    process: ForwardProcess | None = None,
    step_kwargs: dict | Callable[[int, object], dict] | None = None,
    callback: Callable | None = None,
    timestep_kwargs: dict | None = None,
) -> SchedulerRun:
    """Run a diffusers scheduler the way its pipelines do, with a scorelab model.

    ``x`` is the initial sample (a pipeline's ``randn · scheduler.init_noise_sigma``);
    ``steps`` calls ``set_timesteps(steps)`` (None: the timesteps already set). The model is a
    ``Model`` or anything ``as_model`` accepts under ``process``; it is asked for its denoiser
    at the σ the scheduler assigns to each call (``step_sigma``), so a scheduler that rounds
    its timesteps (Karras σ's) still gets the model at the σ it computes with. ``step_kwargs``
    (a dict, or a function of (i, timestep)) go to ``step`` (``eta``, ``generator``,
    ``variance_noise``, …), ``timestep_kwargs`` to ``set_timesteps`` (``mu`` for dynamic
    shifting). A flow-matching scheduler (``flow_interop.is_flow_scheduler``) gets the model's
    ε − x₀ at its σ = t of rectified flow (the default process then)."""
    flow = is_flow_scheduler(scheduler)  # rectified-flow state, ε − x₀ output
    if not isinstance(model, Model):
        if process is None and flow:
            process = flow_scheduler_process(scheduler)
        if process is None:
            raise InvalidParameter("process", "is needed to read a score model's denoiser", None)
        model = as_model(model, process)
    if steps is not None:
        scheduler.set_timesteps(int(steps), **(timestep_kwargs or {}))
    sigmas = []
    for i, t in enumerate(scheduler.timesteps):
        inp = scheduler.scale_model_input(x, t) if not flow else x
        sigma = step_sigma(scheduler, t, i)
        if flow:
            out = flow_model_output(model, inp, sigma).to(inp.dtype)
        else:
            out = scheduler_model_output(scheduler, model, inp, sigma).to(inp.dtype)
        sigmas.append(sigma)
        kw = step_kwargs(i, t) if callable(step_kwargs) else dict(step_kwargs or {})
        x = scheduler.step(out, t, x, **kw).prev_sample
        if callback is not None:
            callback(i, t, x)
    return SchedulerRun(x, len(sigmas), sigmas=sigmas)


def scheduler_process(scheduler) -> ForwardProcess:
    """The scorelab process of a scheduler's noise levels: the ddpm process of its own ᾱ table
    (DDPM family, state x_t = √ᾱ(x₀ + σz)), EDM's (EDM family, state x̂ = x₀ + σz), or
    rectified flow (flow-matching family, t = its σ)."""
    if is_flow_scheduler(scheduler):
        return flow_scheduler_process(scheduler)
    if is_edm_scheduler(scheduler):
        cfg = scheduler.config
        return EDM(EDMSigma(sigma_min=float(cfg.sigma_min), sigma_max=float(cfg.sigma_max)))
    abar = getattr(scheduler, "alphas_cumprod", None)
    if abar is None:
        raise InvalidParameter(
            "scheduler",
            "has neither an ᾱ table nor EDM's preconditioning",
            type(scheduler).__name__,
        )
    return DDPM.from_alphas_cumprod(abar)


def scheduler_class(spec: str) -> tuple[type, str]:
    """``diffusers:CLASS`` (or ``CLASS``) → the scheduler class and its name. An ImportError
    raised by diffusers for a class whose optional dependency is missing propagates."""
    name = spec.split(":", 1)[1] if spec.startswith("diffusers:") else spec
    try:
        import diffusers
    except ImportError as exc:
        raise InvalidParameter(
            "scheduler", "needs diffusers (pip install 'scorelab[diffusers]')", spec
        ) from exc
    cls = getattr(diffusers, name, None)
    if not (isinstance(cls, type) and hasattr(cls, "set_timesteps")):
        raise InvalidParameter("scheduler", "is not a diffusers scheduler class", name)
    return cls, name


def load_scheduler(spec: str, config: dict | None = None):
    """``diffusers:CLASS`` (or ``CLASS``) with config overrides → a scheduler instance."""
    cls, name = scheduler_class(spec)
    try:
        return cls(**(config or {}))
    except TypeError as exc:
        raise InvalidParameter(
            "scheduler-config", f"is not accepted by {name} ({exc})", config
        ) from None


__all__ = [
    "DiffusersModel",
    "KDiffusionDenoiser",
    "SchedulerRun",
    "exact_denoiser",
    "from_diffusers",
    "is_edm_scheduler",
    "load_scheduler",
    "run_scheduler",
    "scheduler_class",
    "scheduler_model_output",
    "scheduler_process",
    "step_sigma",
    "to_kdiffusion",
]
