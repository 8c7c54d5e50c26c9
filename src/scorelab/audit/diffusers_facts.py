"""Facts about diffusers' scheduler classes that their public API does not state, in one place:
the nominal order of accuracy of each class (for its configuration), the options that must
change a run's law, the end noise level a configuration asks for, and what an exact model
means for the consistency-model schedulers.

Orders are those of the deterministic ODE solvers in the papers the classes implement (Euler
1, Heun 2, DPM-Solver/DEIS their ``solver_order``, UniPC its ``solver_order`` + 1); for a
stochastic scheduler driven by the exact score they are the weak order (order in the law) of
its SDE discretisation. A class
missing here has no nominal order: its fitted order is reported, not checked.
"""

from __future__ import annotations

import math

from ..errors import InvalidParameter


def _config_order(key: str, default: int):
    return lambda config, step_kwargs: int(config.get(key, default))


# class name → order, or a function (config, step kwargs) → order
NOMINAL_ORDERS = {
    "DDIMScheduler": 1,
    "DDIMParallelScheduler": 1,
    "DDIMInverseScheduler": 1,
    "DDPMScheduler": 1,
    "DDPMParallelScheduler": 1,
    "EulerDiscreteScheduler": 1,
    "EulerAncestralDiscreteScheduler": 1,
    "EDMEulerScheduler": 1,
    "FlowMatchEulerDiscreteScheduler": 1,
    "HeunDiscreteScheduler": 2,
    "FlowMatchHeunDiscreteScheduler": 2,
    "KDPM2DiscreteScheduler": 2,
    "IPNDMScheduler": 4,
    "LMSDiscreteScheduler": lambda config, step_kwargs: int(step_kwargs.get("order", 4)),
    "DPMSolverMultistepScheduler": _config_order("solver_order", 2),
    "DPMSolverMultistepInverseScheduler": _config_order("solver_order", 2),
    "DPMSolverSinglestepScheduler": _config_order("solver_order", 2),
    "EDMDPMSolverMultistepScheduler": _config_order("solver_order", 2),
    "DEISMultistepScheduler": _config_order("solver_order", 2),
    # UniPC-p: the UniC corrector raises the predictor's order p by one (Zhao et al. 2023,
    # Theorem 3.3); measured 3.0 for p = 2 and 4.0 for p = 3, and 3.0 for p = 3 with the
    # corrector disabled at every step
    "UniPCMultistepScheduler": lambda config, step_kwargs: int(config.get("solver_order", 2)) + 1,
}

SIGMA_SCHEDULES = ("use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas")


def _spacing_used(config: dict) -> bool:
    """A σ schedule (Karras, exponential, beta) replaces the spaced timesteps' σ's."""
    return not any(config.get(k) for k in (*SIGMA_SCHEDULES, "use_flow_sigmas"))


def _always(config: dict) -> bool:
    return True


# option → (the other value to try, whether the option is in use for this configuration):
# options that must change the law of a run when changed
OPTION_ALTERNATIVES = {
    "solver_order": (lambda v: 2 if int(v) == 1 else 1, _always),
    "use_karras_sigmas": (lambda v: not v, _always),
    "shift": (lambda v: 1.0 if float(v) != 1.0 else 3.0, _always),
    "timestep_spacing": (lambda v: "trailing" if v != "trailing" else "linspace", _spacing_used),
}

# what driving a consistency-model scheduler with the target's exact model measures
CONSISTENCY_NOTE = (
    "a consistency model's network approximates the probability-flow ODE's end point "
    "f(x_t, t), not the posterior mean E[x₀ | x_t]; driven with the exact denoiser the "
    "scheduler is multistep 'denoise, then re-noise' sampling with the posterior mean, whose "
    "law does not converge to the target as steps grow (its last output is a posterior mean, "
    "of covariance Σ(Σ + σ²)⁻¹Σ), so no order is certified"
)
CONSISTENCY_SCHEDULERS = frozenset(
    {"LCMScheduler", "TCDScheduler", "CMStochasticIterativeScheduler"}
)

# schedulers whose timestep is not an index into an ᾱ table: timestep → noise level σ
TIMESTEP_LEVELS = {
    # the improved PNDM of v-diffusion: state cos(φ) x₀ + sin(φ) ε, φ = π t / 2, t ∈ [0, 1]
    "IPNDMScheduler": lambda t: math.tan(math.pi * min(float(t), 1.0) / 2),
}


# schedulers whose model output is not their config's prediction_type (they have none)
MODEL_OUTPUTS = {
    # v-diffusion's convention: the step forms ε = σ x + α v from the model's v
    "IPNDMScheduler": "v_prediction",
}


def family(cls) -> str:
    """The name of the diffusers class a scheduler class is or derives from (a subclass
    inherits its parent's facts)."""
    for k in cls.__mro__:
        if k.__module__.startswith("diffusers."):
            return k.__name__
    return cls.__name__


def nominal_order(name: str, config: dict, step_kwargs: dict) -> int | None:
    """The order of accuracy the class claims for this configuration, or None."""
    if name in CONSISTENCY_SCHEDULERS:
        return None
    rule = NOMINAL_ORDERS.get(name)
    if rule is None or isinstance(rule, int):
        return rule
    try:
        return rule(config, step_kwargs)
    except (TypeError, ValueError) as exc:
        raise InvalidParameter("--scheduler-config", f"gives no order ({exc})", config) from None


def expected_end_is_min(config: dict) -> bool:
    """Whether the configuration asks the run to end at the smallest training noise level
    rather than at σ = 0 (``final_sigmas_type='sigma_min'``, ``set_alpha_to_one=False``)."""
    return config.get("final_sigmas_type") == "sigma_min" or config.get("set_alpha_to_one") is False


__all__ = [
    "CONSISTENCY_NOTE",
    "CONSISTENCY_SCHEDULERS",
    "MODEL_OUTPUTS",
    "NOMINAL_ORDERS",
    "OPTION_ALTERNATIVES",
    "TIMESTEP_LEVELS",
    "expected_end_is_min",
    "family",
    "nominal_order",
]
