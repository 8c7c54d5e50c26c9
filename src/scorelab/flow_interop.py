"""diffusers' flow-matching schedulers (``FlowMatchEulerDiscreteScheduler``,
``FlowMatchHeunDiscreteScheduler``: SD3, Flux): what ``interop.run_scheduler`` needs to drive
them with a scorelab model (docs/interop.md, "Flow matching").

Their state is rectified flow's x_t = (1 − t) x₀ + t ε with t = the scheduler's σ (here "flow
σ", not scorelab's noise level σ/α = t/(1 − t)), their model returns u = ε − x₀, which is the
rectified-flow velocity, and their steps are Euler's and Heun's in t (Heun: EDM's Algorithm 1,
first order on the step to 0). So ``scorelab.interpolants.RectifiedFlow`` with ``ode_euler`` or
``heun`` on the times t_i = the scheduler's σ_i is the same algorithm (tested to 1e-10 in
float64). Two differences a user meets:

* the schedulers round the state to float32 in every ``step`` (``sample.to(torch.float32)``),
  so a float64 run agrees with scorelab's to float32 round-off only;
* with a static ``shift`` s the σ's are s-shifted from a linspace whose lower end is already
  the shifted training σ_min, so the last non-zero σ is shifted twice: shift_{s²}(1/1000)
  (0.00893 for s = 3, not 0.00299). ``TimeGrid("shifted", t_min=...)`` reproduces the nodes
  given that last σ; dynamic shifting (Flux, ``mu``) shifts once.
"""

from __future__ import annotations

import torch

from .errors import InvalidParameter
from .interfaces import Model
from .interpolants import RectifiedFlow, RectifiedFlowPair, is_interpolant
from .processes import ForwardProcess
from .velocity import velocity_of


def is_flow_scheduler(scheduler) -> bool:
    """Whether ``scheduler`` is one of diffusers' flow-matching schedulers (rectified-flow
    state, model output ε − x₀)."""
    config = getattr(scheduler, "config", None)
    return hasattr(scheduler, "scale_noise") and hasattr(config, "shift")


def flow_scheduler_process(scheduler=None) -> RectifiedFlow:
    """The scorelab process of a flow-matching scheduler: rectified flow, t = its σ."""
    return RectifiedFlow(t_min=1e-6)


def _is_rectified_flow(process: ForwardProcess) -> bool:
    return is_interpolant(process) and type(process.schedule) is RectifiedFlowPair


def flow_model_output(model: Model, x: torch.Tensor, t: float) -> torch.Tensor:
    """The output a flow-matching scheduler expects at its σ = t: u = ε − x₀ (the rectified-flow
    velocity). A model under rectified flow gives its velocity (finite at t = 1); a model under
    another process is read through its denoiser at the noise level t/(1 − t), so t < 1."""
    if _is_rectified_flow(model.process):
        return velocity_of(model, model.process, x, t)
    if not t < 1:
        raise InvalidParameter(
            "model",
            "is not a rectified-flow model and cannot be read at the scheduler's σ = 1; give a "
            "model under scorelab.interpolants.RectifiedFlow",
            t,
        )
    D = model.denoiser(x / (1.0 - t), t / (1.0 - t))
    return (x - D) / t


__all__ = [
    "flow_model_output",
    "flow_scheduler_process",
    "is_flow_scheduler",
]
