"""scorelab: score-based generative models as swappable, tested components.

The entry points a user meets first::

    import scorelab
    target = scorelab.build_target({"kind": "gmm", "preset": "ring8"})
    process = scorelab.build_process({"kind": "vp", "schedule": {"kind": "cosine"}})
    x = target.sample(1000)
    s = target.score(process.sample_marginal(x, 0.5), 0.5, process)
"""

from .config import Config, build, build_process, build_schedule, build_target, load_config
from .errors import ConfigError, InvalidParameter, ScorelabError
from .processes import EDM, VE, VP, ForwardProcess, SubVP

__version__ = "0.1.0"

_LAZY = {"evaluate", "Evaluation", "MetricResult"}  # metrics pull in POT and scikit-learn


def __getattr__(name: str):
    if name in _LAZY:
        from . import metrics

        return getattr(metrics, name)
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
    "__version__",
    "build",
    "build_process",
    "build_schedule",
    "build_target",
    "evaluate",
    "load_config",
]
