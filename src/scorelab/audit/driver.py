"""Driving any diffusers scheduler through its public API only (``set_timesteps``,
``timesteps``, ``sigmas`` where present, ``scale_model_input``, ``init_noise_sigma``,
``step``, ``add_noise``/``scale_noise``, ``config``), with the exact model of a target.

Every attribute is read behind a guard, so a release or class that lacks one gives a reason
(``Driver.missing``) rather than a crash. Two noise levels matter for a model call at
timestep t: the one the scheduler computes with (``internal_level``: its ``sigmas`` entry
where it keeps a table) and the one a network trained on the scheduler's table reads from t
(``timestep_level``: the ᾱ table, EDM's c_noise inverted, a flow scheduler's t/T). The
ladder's exact model is evaluated at the first, so that what is measured is the algorithm;
the conformance checks compare the two with the level the input really has.
"""

from __future__ import annotations

import copy
import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import InvalidParameter
from ..flow_interop import flow_model_output, is_flow_scheduler
from ..interop import is_edm_scheduler, scheduler_class, scheduler_model_output
from .diffusers_facts import MODEL_OUTPUTS, TIMESTEP_LEVELS, family

F64 = torch.float64
# image-range clipping and dynamic thresholding assume data in [−1, 1]: off unless asked for
IMAGE_OPTIONS = {"clip_sample": False, "thresholding": False}
REQUIRED_API = ("set_timesteps", "step")


class StepsRefused(Exception):
    """``set_timesteps(n)`` refused the number of steps (a limit of the class)."""


class NonFinite(Exception):
    """A step returned a non-finite sample."""


@dataclass
class Call:
    """One model call of a run: its timestep, the state before the step, the model input,
    the state after the step, and whether a full step (all its stages) is then complete."""

    timestep: float
    state: torch.Tensor
    inp: torch.Tensor
    after: torch.Tensor
    complete: bool
    table_sigma: float | None = None  # the scheduler's own σ for the call, where it keeps one


def _resolve_class(spec):
    """A scheduler class and its base configuration from "diffusers:CLASS", a class or an
    instance."""
    if not isinstance(spec, str):
        if isinstance(spec, type):
            return spec, spec.__name__, {}
        base = {k: v for k, v in dict(spec.config).items() if not k.startswith("_")}
        return type(spec), type(spec).__name__, base
    try:
        cls, name = scheduler_class(spec)
    except ImportError as exc:  # a class whose optional dependency is missing
        raise MissingDependency(str(exc).strip().splitlines()[0]) from None
    return cls, name, {}


class MissingDependency(Exception):
    """The scheduler class needs an optional package that is not installed."""


def _check_keys(given: dict, allowed, option: str, what: str) -> None:
    for key in given:
        if key not in allowed:
            raise InvalidParameter(option, f"is not an option of {what}", key, ", ".join(allowed))


def _trial(cls, overrides: dict, given: dict, name: str) -> None:
    """A configuration value that only ``set_timesteps`` rejects is still the user's error:
    ``set_timesteps(2)`` with it fails where it succeeds with the class's defaults."""
    try:
        cls(**overrides).set_timesteps(2)
    except Exception as exc:
        try:
            cls().set_timesteps(2)
        except Exception:
            return  # the class fails on its own: a finding of the certificate
        raise InvalidParameter(
            "--scheduler-config", f"is not accepted by {name} ({exc})", given
        ) from None


class Driver:
    """A scheduler class with a configuration and step keywords, validated once."""

    def __init__(self, spec, scheduler_config: dict | None = None, step_kwargs=None):
        self.cls, self.name, base = _resolve_class(spec)
        self.family = family(self.cls)
        params = inspect.signature(self.cls.__init__).parameters
        accepts_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
        given = dict(scheduler_config or {})
        if not accepts_any:
            _check_keys(given, [k for k in params if k != "self"], "--scheduler-config", self.name)
        defaults = {k: v for k, v in IMAGE_OPTIONS.items() if k in params}
        self.overrides = {**defaults, **base, **given}
        self.missing = [a for a in REQUIRED_API if not callable(getattr(self.cls, a, None))]
        self.step_kwargs = dict(step_kwargs or {})
        if not self.missing:
            step_params = inspect.signature(self.cls.step).parameters
            if not any(p.kind is p.VAR_KEYWORD for p in step_params.values()):
                allowed = [
                    k
                    for k in step_params
                    if k not in ("self", "model_output", "timestep", "sample")
                ]
                _check_keys(self.step_kwargs, allowed, "--step-kwarg", f"{self.name}.step")
        try:
            probe = self.cls(**self.overrides)
        except Exception as exc:  # the class rejects a value of its configuration
            raise InvalidParameter(
                "--scheduler-config", f"is not accepted by {self.name} ({exc})", given
            ) from None
        if given and not self.missing:
            _trial(self.cls, self.overrides, given, self.name)
        self.config = {k: v for k, v in dict(probe.config).items() if not k.startswith("_")}
        self.flow = is_flow_scheduler(probe)
        self.edm = is_edm_scheduler(probe)

    def make(self, **overrides):
        """A new instance (configuration plus ``overrides``)."""
        return self.cls(**{**self.overrides, **overrides})

    def fresh(self, steps: int, **overrides):
        """A new instance with ``set_timesteps(steps)``; ``StepsRefused`` if it refuses."""
        sch = self.make(**overrides)
        try:
            sch.set_timesteps(int(steps))
        except (ValueError, AssertionError) as exc:
            raise StepsRefused(
                f"set_timesteps({steps}) raised {type(exc).__name__}: {exc}"
            ) from None
        return sch

    def accepts_generator(self) -> bool:
        return not self.missing and "generator" in inspect.signature(self.cls.step).parameters

    def run(self, sch, x, output: Callable, step_kwargs=None, record: list | None = None):
        """The pipelines' loop: ``scale_model_input``, the model, ``step``, for every
        timestep; ``record`` (a list) receives a ``Call`` per model call."""
        kw = {**self.step_kwargs, **(step_kwargs or {})}
        for i, t in enumerate(sch.timesteps):
            inp = sch.scale_model_input(x, t) if hasattr(sch, "scale_model_input") else x
            own = table_sigma(sch, i) if record is not None else None
            out = output(sch, inp, t, i).to(inp.dtype)
            res = sch.step(out, t, x, **kw)
            new = res.prev_sample if hasattr(res, "prev_sample") else res[0]
            if not torch.isfinite(new).all():
                raise NonFinite(f"step {i} (timestep {float(t):g}) returned a non-finite sample")
            if record is not None:
                done = bool(getattr(sch, "state_in_first_order", True))
                record.append(Call(float(t), x, inp, new, done, own))
            x = new
        return x


def init_noise_sigma(sch) -> float:
    """The scale of the pipelines' starting noise (1 where the scheduler does not say)."""
    return float(getattr(sch, "init_noise_sigma", 1.0))


def timestep_level(sch, t) -> float | None:
    """The noise level a network trained on the scheduler's table reads from timestep t:
    σ = √((1 − ᾱ)/ᾱ) (interpolated between integer timesteps), EDM's c_noise inverted, or a
    flow scheduler's own t/T (its flow σ, not a noise level); None if it cannot be told."""
    t = float(t)
    if is_flow_scheduler(sch):
        return t / float(sch.config.num_train_timesteps)
    rule = TIMESTEP_LEVELS.get(family(type(sch)))
    if rule is not None:
        return rule(t)
    if is_edm_scheduler(sch) and hasattr(sch, "precondition_noise"):
        grid = torch.logspace(-8, 8, 4001, dtype=F64)
        c = sch.precondition_noise(grid.to(torch.float32)).to(F64).reshape(-1)
        return float(np.exp(np.interp(t, c.numpy(), grid.log().numpy())))
    abar = getattr(sch, "alphas_cumprod", None)
    if abar is None:
        return None
    table = ((1 - abar.to(F64)) / abar.to(F64)).sqrt().numpy()
    return float(np.interp(t, np.arange(len(table)), table))


def table_sigma(sch, i: int) -> float | None:
    """The scheduler's own σ for its i-th call where it keeps a ``sigmas`` table (read before
    ``step`` advances its index); None where its level is only its timestep's."""
    sig = getattr(sch, "sigmas", None)
    if not isinstance(sig, torch.Tensor) or sig.numel() == 0:
        return None
    idx = getattr(sch, "step_index", None)
    idx = i if idx is None else idx
    return float(sig[idx]) if 0 <= idx < sig.numel() else None


def internal_level(sch, t, i: int) -> float | None:
    """The noise level the scheduler computes its i-th call with: its ``sigmas`` entry at
    ``step_index`` where it keeps a table, else that of the timestep."""
    sig = getattr(sch, "sigmas", None)
    if isinstance(sig, torch.Tensor) and sig.numel() > 0:
        idx = getattr(sch, "step_index", None)
        return float(sig[i if idx is None else idx])
    return timestep_level(sch, t)


def noise_level(level: float, flow: bool) -> float:
    """A scheduler's level as a noise level σ (x = a(x₀ + σ z)): a flow σ s is s/(1 − s)."""
    if not flow:
        return level
    return math.inf if level >= 1 else level / (1 - level)


class PointMass:
    """The exact denoiser of a point mass at x0 (one per batch row): D(x̂, σ) = x0."""

    def __init__(self, x0: torch.Tensor):
        self.x0 = x0

    def denoiser(self, x, sigma):
        return self.x0.to(x.dtype).expand_as(x)


def model_output(model, sch, inp, level: float, flow: bool):
    """What the scheduler expects from its model at its level, from ``model.denoiser``: ε, v
    or x₀ of the DDPM family (its ``prediction_type``, or ``MODEL_OUTPUTS``), EDM's F, or, for
    a flow scheduler, u = ε − x₀ (a rectified-flow ``Model``'s velocity; (x − x₀)/s for a
    point mass)."""
    if flow:
        if isinstance(model, PointMass):
            return (inp - model.x0.to(inp.dtype)) / level if level > 0 else torch.zeros_like(inp)
        return flow_model_output(model, inp, level)
    kind = MODEL_OUTPUTS.get(family(type(sch)))
    if kind is None or is_edm_scheduler(sch):
        return scheduler_model_output(sch, model, inp, level)
    alpha = 1 / math.sqrt(1 + level**2)  # the input is α(x₀ + σ z)
    sig_t = level * alpha
    D = model.denoiser(inp / alpha, level)
    eps = (inp - alpha * D) / sig_t
    return {"epsilon": eps, "v_prediction": alpha * eps - sig_t * D, "sample": D}[kind]


def copy_of(sch):
    return copy.deepcopy(sch)


__all__ = [
    "Call",
    "Driver",
    "MissingDependency",
    "NonFinite",
    "PointMass",
    "StepsRefused",
    "init_noise_sigma",
    "internal_level",
    "model_output",
    "noise_level",
    "timestep_level",
]
