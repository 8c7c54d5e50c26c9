"""scorelab: score-based generative models as swappable, tested components.

The entry points a user meets first, all at the top level::

    import scorelab
    target = scorelab.build_target({"kind": "gmm", "preset": "ring8"})
    process = scorelab.build_process({"kind": "vp", "schedule": {"kind": "cosine"}})
    x = target.sample(1000)
    s = target.score(process.sample_marginal(x, 0.5), 0.5, process)
    result = scorelab.generate(target.score_model(process), process, target.event_shape,
                               sampler="heun", grid=scorelab.TimeGrid("edm", steps=25), n=2000)
    print(scorelab.evaluate(result.samples, target, ["w2", "mmd"]))

Importing the package imports neither torch nor pydantic nor the components: the names below
load on first use (PEP 562), and each registry group imports the modules that define its
built-ins on its first look-up (``scorelab.groups.BUILTINS``). ``scorelab --help`` and
``scorelab list`` stay instant.
"""

from __future__ import annotations

import importlib

from .errors import ConfigError, InvalidParameter, ScorelabError

__version__ = "0.1.0"

_LAZY = {
    "entries": "registry",
    "entry": "registry",
    "get": "registry",
    "names": "registry",
    "provide": "registry",
    "register": "registry",
    "build": "config",
    "build_grid": "config",
    "build_process": "config",
    "build_schedule": "config",
    "build_score": "config",
    "build_target": "config",
    "config_model": "config",
    "load_config": "config",
    "EDM": "processes",
    "VE": "processes",
    "VP": "processes",
    "SubVP": "processes",
    "ForwardProcess": "processes",
    "Target": "targets",
    "TimeGrid": "grids",
    "generate": "sampling",
    "integrate": "samplers",
    "SampleResult": "protocols",
    "load_score_model": "models",
    "evaluate": "metrics",
    "Evaluation": "metrics",
    "MetricResult": "metrics",
}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    if name == "Config":  # built from the registries: the model of what is registered now
        from .config import config_model

        return config_model()
    raise AttributeError(f"module 'scorelab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | {"Config"})


__all__ = [
    "EDM",
    "VE",
    "VP",
    "Config",
    "ConfigError",
    "Evaluation",
    "ForwardProcess",
    "InvalidParameter",
    "MetricResult",
    "SampleResult",
    "ScorelabError",
    "SubVP",
    "Target",
    "TimeGrid",
    "__version__",
    "build",
    "build_grid",
    "build_process",
    "build_schedule",
    "build_score",
    "build_target",
    "config_model",
    "entries",
    "entry",
    "evaluate",
    "generate",
    "get",
    "integrate",
    "load_config",
    "load_score_model",
    "names",
    "register",
]
