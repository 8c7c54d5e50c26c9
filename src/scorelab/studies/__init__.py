"""Studies: each paper's claims reproduced in one command (``scorelab study NAME``).

Each study is a package (see :mod:`.common` for the contract): ``settings`` (the paper's
setting and the quick and full sizes), ``cells`` (the work run through ``Study.map``), the
claims, the figures and the report's sections, with ``run(study)`` in its ``__init__``. It
writes ``results.json``, PNG figures and ``report.html`` into ``OUT/NAME/``.

The studies are registered in the registry group ``study``, each as a light function
``run(study)`` that imports its package only when it runs (and takes the title and paper from
it). The core package never imports this one: it is the provider of the ``study`` group
(``groups.BUILTINS``), imported when that group is first looked up, so looking up a sampler,
metric or target loads no study; ``scorelab study NAME`` (``scorelab.study.run_study``) finds
the studies there, as it finds any other package's.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..registry import register
from ..study import run_study

if TYPE_CHECKING:
    from ..study import Study

# study name → (module, what it reproduces); the module is imported when the study runs, so
# loading this package (every registry look-up does) stays cheap and `scorelab --help` fast.
_BUILTIN: dict[str, tuple[str, str]] = {
    "noise-schedule": (
        "noise_schedule",
        "Paper A: the error of the noise schedule β_a against a, beside the KL and W2 bounds",
    ),
    "dimension-free": (
        "dimension_free",
        "Paper B: a Gaussian tilt of fixed complexity is learned at a dimension-free rate",
    ),
    "design-space": (
        "design_space",
        "Paper C: EDM's training and sampling design against Song's VE",
    ),
    "fokker-planck": (
        "fokker_planck",
        "Paper D: DSM against DSM + the score Fokker–Planck regulariser",
    ),
    "manifold": (
        "manifold",
        "Paper E: W1 under the manifold hypothesis, early stopping and memorisation",
    ),
}
STUDIES: dict[str, str] = {name: module for name, (module, _) in _BUILTIN.items()}


def _runner(module: str, doc: str) -> Callable[[Study], None]:
    def run(study: Study) -> None:
        mod = importlib.import_module(f".{module}", __name__)
        study.title, study.paper = mod.TITLE, mod.PAPER
        mod.run(study)

    run.__name__ = f"run_{module}"
    run.__qualname__ = f"run_{module}"
    run.__doc__ = f"{doc}.\n\nThe study of :mod:`scorelab.studies.{module}`."
    return run


for _name, (_module, _doc) in _BUILTIN.items():
    register("study", _name, module=f"{__name__}.{_module}")(_runner(_module, _doc))

__all__ = ["STUDIES", "run_study"]
