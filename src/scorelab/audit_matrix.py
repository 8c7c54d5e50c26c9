"""The conformance matrix (``scorelab audit diffusers:all``): every scheduler class the
installed diffusers exports that samples, × its main options, one certificate per
configuration, run as cells on the sweep engine; a table (CSV, self-contained HTML, and a
terminal table) of which configurations pass, which checks fail for the others, and the
fitted order of accuracy beside the nominal one.

The classes are found in diffusers' exports, not in a list kept here: a class named
``*Scheduler`` with ``set_timesteps`` and ``step(model_output, timestep, sample, …)`` that
builds with its defaults and steps a float latent. Every other exported scheduler class is
listed in the table's "excluded" part with the reason. Inverse schedulers (``*Inverse*``) are
certified as maps from the target law to the prior law.

The options are read from each class: an option of ``MAIN_OPTIONS`` present in the class's
``__init__`` is varied one at a time away from its default — a boolean to its negation, a
string through the values of its ``Literal[…]`` annotation (``DOMAINS`` where a release does
not annotate it), a number through ``DOMAINS``. Each configuration is the class's default
plus one changed option, so a failing row names the option that breaks it.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Sequence
from dataclasses import dataclass

# the options varied by the matrix, in the order they are tried
MAIN_OPTIONS = (
    "timestep_spacing",
    "use_karras_sigmas",
    "use_exponential_sigmas",
    "use_beta_sigmas",
    "final_sigmas_type",
    "solver_order",
    "lower_order_final",
    "algorithm_type",
    "solver_type",
    "prediction_type",
    "rescale_betas_zero_snr",
    "shift",
    "sigma_schedule",
    "stochastic_sampling",
)
# values of an option where the class's signature does not list them (no Literal annotation,
# or a number); only values other than the class's default are tried
DOMAINS = {
    "timestep_spacing": ("linspace", "leading", "trailing"),
    "final_sigmas_type": ("zero", "sigma_min"),
    "prediction_type": ("epsilon", "v_prediction", "sample"),
    "solver_order": (1, 2, 3),
    "shift": (1.0, 3.0),
}
# prediction types an exact model can be given in; others (a flow velocity on a ᾱ table,
# learned variances) need a configuration the matrix does not build
DRIVEN_PREDICTIONS = frozenset(DOMAINS["prediction_type"])
# options whose other values need more than one change to be meaningful
NEEDS_ANOTHER_OPTION = {"algorithm_type": {"deis", "data_prediction", "noise_prediction"}}
FLOAT_LATENT = (1, 4, 8, 8)  # what a pipeline's step sees: a float image latent


@dataclass
class Excluded:
    """An exported scheduler class that the matrix does not certify, and why."""

    name: str
    reason: str


def _step_parameters(cls) -> list[inspect.Parameter]:
    return list(inspect.signature(cls.step).parameters.values())[1:]


def _required(params) -> list[str]:
    """The parameters among ``params`` that have no default (``*args``/``**kw`` aside)."""
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [p.name for p in params if p.default is inspect.Parameter.empty and p.kind in named]


def _structural_reason(name: str, cls) -> str | None:
    """Why ``cls`` is not a sampler the matrix can drive, from its API alone (None: it is)."""
    if not isinstance(cls, type):
        return "not a class"
    for attr in ("set_timesteps", "step"):
        if not callable(getattr(cls, attr, None)):
            return f"has no {attr}()"
    params = _step_parameters(cls)
    first = [p.name for p in params[:3]]
    if first != ["model_output", "timestep", "sample"]:
        return f"step({', '.join(first)}, …) is not step(model_output, timestep, sample, …)"
    needed = _required(params[3:])
    if needed:
        return f"step() needs {', '.join(needed)} (not a sampler of a noise law alone)"
    needed = _required(list(inspect.signature(cls.__init__).parameters.values())[1:])
    if needed:
        return f"needs {', '.join(needed)} to be built"
    return None


def _steps_a_latent(cls) -> str | None:
    """None when the class, built with its defaults, takes four steps on a float latent with
    a zero model output (what any sampler of a Gaussian law does); else the reason."""
    import torch

    try:
        sch = cls()
        sch.set_timesteps(4)
        x = torch.zeros(FLOAT_LATENT)
        for t in list(sch.timesteps)[:4]:
            out = sch.step(torch.zeros(FLOAT_LATENT), t, x)
            x = out[0] if isinstance(out, tuple) else out.prev_sample
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            return "step() does not return a float sample"
    except ImportError as exc:
        return f"needs an optional package: {str(exc).strip().splitlines()[0]}"
    except Exception as exc:
        return f"does not step a float latent with its defaults ({type(exc).__name__}: {exc})"[:240]
    return None


def exported_schedulers(module=None) -> tuple[list[str], list[Excluded]]:
    """(the sampling scheduler classes ``module`` — diffusers — exports, the other exported
    ``*Scheduler`` classes with why they are left out), each sorted by name."""
    if module is None:
        import diffusers as module
    found, excluded = [], []
    for name in sorted(n for n in dir(module) if n.endswith("Scheduler")):
        if name.startswith("Flax"):
            excluded.append(Excluded(name, "a JAX (Flax) class"))
            continue
        try:
            cls = getattr(module, name)
            reason = _structural_reason(name, cls) or _steps_a_latent(cls)
        except ImportError as exc:  # a class whose optional dependency is missing
            reason = f"needs an optional package: {str(exc).strip().splitlines()[0]}"
        if reason is None:
            found.append(name)
        else:
            excluded.append(Excluded(name, reason))
    return found, excluded


def _literal_values(annotation) -> tuple | None:
    """The values of a ``Literal[…]`` annotation (also inside ``Optional``), else None."""
    if typing.get_origin(annotation) is typing.Literal:
        return typing.get_args(annotation)
    for arg in typing.get_args(annotation):
        values = _literal_values(arg)
        if values is not None:
            return values
    return None


def option_values(cls, options: Sequence[str] = MAIN_OPTIONS) -> dict[str, list]:
    """For each of ``options`` in the class's ``__init__``: the values other than its
    default that the matrix tries (read from the signature; ``DOMAINS`` where it is silent)."""
    params = inspect.signature(cls.__init__).parameters
    out = {}
    for opt in options:
        p = params.get(opt)
        if p is None or p.default is inspect.Parameter.empty:
            continue
        default = p.default
        if isinstance(default, bool):
            values = [not default]
        else:
            domain = _literal_values(p.annotation) or DOMAINS.get(opt, ())
            values = [v for v in domain if v != default and v is not None]
        if opt == "prediction_type":
            values = [v for v in values if v in DRIVEN_PREDICTIONS]
        values = [v for v in values if v not in NEEDS_ANOTHER_OPTION.get(opt, ())]
        if values:
            out[opt] = values
    return out


def configurations(cls, options: Sequence[str] = MAIN_OPTIONS) -> list[dict]:
    """The default configuration ({}) and each one-option change of it."""
    configs = [{}]
    for opt, values in option_values(cls, options).items():
        configs.extend({opt: v} for v in values)
    return configs


def label(config: dict) -> str:
    """How the table names a configuration: "default" or "option=value"."""
    if not config:
        return "default"
    return ", ".join(f"{k}={v}" for k, v in config.items())
