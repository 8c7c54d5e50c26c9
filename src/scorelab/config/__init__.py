"""Configuration: the schema built from the registries (``schema``), reading YAML and
``--set`` overrides (``io``), and building components from validated sections (``build``).

Imports run one way: ``schema`` knows only the registry; ``io`` reads into the schema;
``build`` sits above the components it builds.
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
from .schema import (
    FPConfig,
    GridConfig,
    RunConfig,
    ScoreConfig,
    TrainConfig,
    compared_sampler,
    config_model,
    current,
    format_validation_error,
    parse_config,
)

_DYNAMIC = {"Config", "ProcessConfig", "SamplerConfig", "NetworkConfig"}


def __getattr__(name: str):
    # models built from the registries: always those of what is registered now
    if name in _DYNAMIC:
        from . import schema

        return getattr(schema, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "FPConfig",
    "GridConfig",
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
    "parse_config",
    "sampler_options",
]
