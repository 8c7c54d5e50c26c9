"""scorelab: score-based generative models as swappable, tested components.

The entry points a user meets first::

    import scorelab
    target = scorelab.build_target({"kind": "gmm", "preset": "ring8"})
    process = scorelab.build_process({"kind": "vp", "schedule": {"kind": "cosine"}})
    x = target.sample(1000)
    s = target.score(process.sample_marginal(x, 0.5), 0.5, process)
"""

# The built-in components register themselves when their modules are imported; the metrics
# (POT, scikit-learn) when the metric group is first looked up.
from . import (  # noqa: F401 (imported for their registrations)
    ddpm,
    fokker_planck,
    grids,
    losses,
    networks,
    parameterisations,
    samplers,
    schedules,
)
from .config import build, build_process, build_schedule, build_target, config_model, load_config
from .errors import ConfigError, InvalidParameter, ScorelabError
from .processes import EDM, VE, VP, ForwardProcess, SubVP
from .registry import entries, entry, get, names, provide, register
from .targets import Target

provide("metric", "scorelab.metrics")

__version__ = "0.1.0"

_LAZY = {"evaluate", "Evaluation", "MetricResult"}  # metrics pull in POT and scikit-learn


def __getattr__(name: str):
    if name in _LAZY:
        from . import metrics

        return getattr(metrics, name)
    if name == "Config":  # built from the registries: the model of what is registered now
        return config_model()
    raise AttributeError(f"module 'scorelab' has no attribute {name!r}")


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
    "ScorelabError",
    "SubVP",
    "Target",
    "__version__",
    "build",
    "build_process",
    "build_schedule",
    "build_target",
    "config_model",
    "entries",
    "entry",
    "evaluate",
    "get",
    "load_config",
    "names",
    "register",
]
