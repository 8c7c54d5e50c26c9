"""Configuration: the schema built from the registries (``schema``), earlier spellings
translated (``legacy``), reading YAML and ``--set`` overrides (``io``), and building components
from validated sections (``build``).

Imports run one way: ``legacy`` and ``schema`` know only the registry; ``io`` reads into the
schema; ``build`` sits above the components it builds.
"""

from .build import (
    build,
    build_grid,
    build_process,
    build_schedule,
    build_score,
    build_target,
    sampler_options,
)
from .io import apply_overrides, dump_yaml, load_config, load_yaml
from .legacy import ConfigDeprecationWarning
from .schema import (
    RunConfig,
    ScoreConfig,
    compared_sampler,
    config_model,
    current,
    format_validation_error,
    params_of,
    parse_config,
    train_config,
)

_DYNAMIC = {"Config", "TrainConfig"}


def __getattr__(name: str):
    # models built from the registries: always those of what is registered now
    if name in _DYNAMIC:
        from . import schema

        return getattr(schema, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ConfigDeprecationWarning",
    "RunConfig",
    "ScoreConfig",
    "TrainConfig",
    "apply_overrides",
    "build",
    "build_grid",
    "build_process",
    "build_schedule",
    "build_score",
    "build_target",
    "compared_sampler",
    "config_model",
    "current",
    "dump_yaml",
    "format_validation_error",
    "load_config",
    "load_yaml",
    "params_of",
    "parse_config",
    "sampler_options",
    "train_config",
]
