"""Components from validated configs: each registry entry builds its own kind.

The builders here only add what a section knows beyond one component: a process passes its
horizon and stationary variance to its schedule, a target gets the run's seed, a sampler's
options are checked against the sampler. Errors name the full key (``process.schedule.a``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
from pydantic import BaseModel

from .. import registry
from ..errors import InvalidParameter
from ..grids import TimeGrid
from ..processes import ForwardProcess
from ..targets import Target
from .schema import current, params_of, parse_config, validate_section


def _with_prefix(prefix: str, fn: Callable, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except InvalidParameter as exc:
        raise exc.at(prefix) from None


def build_schedule(cfg: Any, T: float | None = None, variance: float = 1.0):
    """A schedule object from its config (T = the process horizon, default 1; the edm
    schedule takes its horizon from sigma_max)."""
    cfg = validate_section(cfg, current().schedules, "schedule")
    entry = registry.entry("schedule", cfg.kind)
    return entry.build(cfg, T=1.0 if T is None else T, variance=variance)


def build_process(cfg: Mapping | BaseModel) -> ForwardProcess:
    """A forward process from its config section ``{kind: vp|subvp|ve|edm|…, T, t_min,
    sigma_inf, schedule, <the process's own parameters>}``.

    Times are the process's own t ∈ [t_min, T]; ``process.sigma(t)`` = s(t)/m(t) is the noise
    level and ``process.t_of_sigma`` its exact inverse.

    Raises:
        ConfigError: A bad key or value, named.

    Examples:
        >>> import scorelab
        >>> vp = scorelab.build_process({"kind": "vp", "schedule": {"kind": "cosine"}})
        >>> vp.kind, vp.T
        ('vp', 1.0)
    """
    cfg = validate_section(cfg, current().sections["process"], "process", default="vp")
    return _with_prefix("process", _build_process, cfg)


def _family(kind: str) -> tuple[str, ...]:
    return tuple(n for n, e in registry.entries("schedule").items() if e.meta.get("family") == kind)


def _build_process(cfg: BaseModel) -> ForwardProcess:
    entry = registry.entry("process", cfg.kind)
    family, skind = entry.meta.get("schedules", "beta"), cfg.schedule.kind
    if registry.entry("schedule", skind).meta.get("family") != family:
        word = {"beta": "a β", "sigma": "a σ"}
        other = registry.entry("schedule", skind).meta.get("family", "other")
        raise InvalidParameter(
            "schedule.kind",
            f"is {word.get(other, 'an ' + other)}-schedule; process '{cfg.kind}' needs "
            f"{word.get(family, 'an ' + family)}-schedule",
            skind,
            ", ".join(_family(family)),
        )
    if family == "beta":
        if not (cfg.sigma_inf > 0 and math.isfinite(cfg.sigma_inf)):
            raise InvalidParameter("sigma_inf", "must be > 0", cfg.sigma_inf)
        schedule = _with_prefix("schedule", build_schedule, cfg.schedule, cfg.T, cfg.sigma_inf**2)
        if registry.entry("schedule", skind).meta.get("fixed_horizon") and cfg.T is not None:
            if not math.isclose(cfg.T, schedule.T):  # a β table fixes T = its length
                raise InvalidParameter(
                    "T", f"is fixed by the '{skind}' schedule's table", cfg.T, f"{schedule.T:g}"
                )
        t_min = entry.meta.get("default_t_min", 1e-3) if cfg.t_min is None else cfg.t_min
        return entry.obj(schedule, sigma_inf=cfg.sigma_inf, t_min=t_min, **params_of(cfg))
    horizon = registry.entry("schedule", skind).meta.get("horizon")  # a parameter that is T
    if horizon and cfg.T is not None and not math.isclose(cfg.T, getattr(cfg.schedule, horizon)):
        raise InvalidParameter(
            "T",
            f"must equal schedule.{horizon} for the {skind} schedule (its horizon)",
            cfg.T,
            f"{getattr(cfg.schedule, horizon)} (or leave T unset)",
        )
    if "sigma_inf" in cfg.given():
        beta = [
            n for n, e in registry.entries("process").items() if e.meta.get("schedules") == "beta"
        ]
        words = ", ".join(beta[:-1]) + " and " + beta[-1] if len(beta) > 1 else "".join(beta)
        raise InvalidParameter(
            "sigma_inf", f"applies to {words}, not to '{cfg.kind}'", cfg.sigma_inf
        )
    schedule = _with_prefix("schedule", build_schedule, cfg.schedule, cfg.T)
    return entry.obj(schedule, t_min=cfg.t_min, **params_of(cfg))


def build_target(cfg: Mapping | Any, seed: int = 0) -> Target:
    """A target from its config section ``{kind: ..., <parameters>}``.

    Args:
        cfg: A mapping (``{"kind": "gmm", "preset": "ring8"}``) or a validated section;
            ``scorelab list target`` shows every kind with its parameters.
        seed: Seeds random presets (``random`` mixtures, subsets of a dataset) when the config
            gives no seed of its own.

    Returns:
        A ``Target``: ``sample``, and where the law is known the exact ``score``,
        ``denoise``, ``log_prob`` and ``log_prob_t`` of its noised marginals under any process.

    Raises:
        ConfigError: A bad key or value, named (``target.cov: must be positive definite``).

    Examples:
        >>> import scorelab
        >>> target = scorelab.build_target({"kind": "gaussian", "dim": 10, "mean": 1.0, "cov": 0.5})
        >>> target.event_shape, target.has_score
        ((10,), True)
    """
    cfg = validate_section(cfg, current().targets, "target")
    entry = registry.entry("target", cfg.kind)
    try:
        return _with_prefix("target", entry.build, cfg, seed=seed)
    except (MemoryError, RuntimeError) as exc:
        text = str(exc)
        if not isinstance(exc, MemoryError) and not any(
            k in text for k in ("can't allocate memory", "bad_alloc", "out of memory")
        ):
            raise
        sizes = {k: v for k, v in cfg.model_dump().items() if k in _SIZE_KEYS and v is not None}
        raise InvalidParameter(
            "target",
            f"is too large to build in this machine's memory ({text.splitlines()[0][-120:]})",
            sizes or cfg.kind,
            "smaller sizes (dim, n_components, n)",
        ) from None


_SIZE_KEYS = ("dim", "n_components", "n", "k")


def build(cfg: BaseModel) -> tuple[Target, ForwardProcess]:
    """Target and process of a validated config."""
    return build_target(cfg.target, cfg.seed), build_process(cfg.process)


def build_grid(cfg: BaseModel) -> TimeGrid:
    """The time grid of a ``sampler`` section (its ``grid`` with the sampler's ``steps``)."""
    g = cfg.grid
    sigmas = tuple(g.sigmas) if g.sigmas is not None else None
    return _with_prefix(
        "sampler.grid",
        TimeGrid,
        g.kind,
        cfg.steps,
        g.t_min,
        g.t_max,
        g.final,
        sigmas,
        **params_of(g),
    )


def sampler_options(cfg: BaseModel) -> dict[str, Any]:
    """The sampler's own options from a ``sampler`` section (validated against its kind by
    the schema), as keywords of the sampler."""
    return params_of(cfg)


def build_score(cfg: BaseModel, target: Target, process: ForwardProcess):
    """The score model a config names: the target's exact score, or a trained checkpoint's
    network (rebuilt from the config stored in the checkpoint) under this config's process."""
    if cfg.score.kind == "checkpoint":
        dtype = getattr(torch, cfg.sampler.dtype)
        from ..models import load_score_model  # models reads configs: imported on use

        return load_score_model(cfg.score.path, process, use_ema=cfg.score.use_ema, dtype=dtype)
    if not target.has_score:
        exact = [n for n, e in registry.entries("target").items() if _has_score(e)]
        raise InvalidParameter(
            "score.kind",
            f"'exact' needs a target with an exact score; '{target.kind}' has none",
            cfg.score.kind,
            f"a target with a known law ({', '.join(exact)}), or checkpoint (with score.path)",
        )
    if getattr(process, "regular_velocity_at_T", False):
        from ..velocity import exact_velocity  # the exact velocity is finite at t = 1

        return exact_velocity(target, process)
    return target.score_model(process)


def _has_score(entry: registry.Entry) -> bool:
    return bool(getattr(entry.obj, "has_score", False))


__all__ = [
    "build",
    "build_grid",
    "build_process",
    "build_schedule",
    "build_score",
    "build_target",
    "parse_config",
    "sampler_options",
]
