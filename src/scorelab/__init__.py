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

__all__ = [
    "EDM",
    "VE",
    "VP",
    "Config",
    "ConfigError",
    "ForwardProcess",
    "InvalidParameter",
    "ScorelabError",
    "SubVP",
    "__version__",
    "build",
    "build_process",
    "build_schedule",
    "build_target",
    "load_config",
]
