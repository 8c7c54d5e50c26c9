"""Studies: each paper's claims reproduced in one command (``scorelab study NAME``).

Each study lives in its own module (see :mod:`.common` for the contract) and writes
``results.json``, PNG figures and ``report.html`` into ``OUT/NAME/``.

The studies are registered in the registry group ``study``, each as a light runner
``run(out_dir, *, quick, seed, log, progress) -> Study`` that imports its module only when it
runs. The core package never imports this one: it is declared as a plugin of scorelab itself
(entry point ``scorelab.plugins: studies``), so the registry loads it on its first look-up and
``scorelab study NAME`` finds the studies there, as it finds any other package's.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InvalidParameter
from ..registry import entries, register

if TYPE_CHECKING:
    from .common import Study

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
        "fokker_planck_study",
        "Paper D: DSM against DSM + the score Fokker–Planck regulariser",
    ),
    "manifold": (
        "manifold",
        "Paper E: W1 under the manifold hypothesis, early stopping and memorisation",
    ),
}
STUDIES: dict[str, str] = {name: module for name, (module, _) in _BUILTIN.items()}


def _runner(name: str, module: str, doc: str) -> Callable[..., Study]:
    def run(
        out_dir: str | Path,
        *,
        quick: bool = False,
        seed: int = 0,
        log: Callable[[str], None] = lambda msg: None,
        progress: bool = False,
    ) -> Study:
        from .common import timed_run

        mod = importlib.import_module(f".{module}", __name__)
        return timed_run(mod, Path(out_dir), quick, seed, log, progress)

    run.__name__ = f"run_{module}"
    run.__qualname__ = f"run_{module}"
    run.__doc__ = f"{doc}.\n\nWrites results.json, figures and report.html into out_dir."
    return run


for _name, (_module, _doc) in _BUILTIN.items():
    register("study", _name, module=f"{__name__}.{_module}")(_runner(_name, _module, _doc))


def run_study(
    name: str,
    out: str | Path = "studies",
    *,
    quick: bool = False,
    seed: int = 0,
    log: Callable[[str], None] = lambda msg: None,
    progress: bool = False,
) -> list[Study]:
    """Run the registered study ``name`` (or ``"all"`` of them) into ``out/<name>/``; returns
    the finished studies."""
    registered = entries("study")
    names = list(registered) if name == "all" else [name]
    for n in names:
        if n not in registered:
            allowed = ", ".join([*registered, "all"])
            raise InvalidParameter("study", "unknown study", name, allowed)
    done = []
    for n in names:
        log(f"study {n} ({'quick' if quick else 'full'} mode)")
        run = registered[n].obj
        done.append(run(Path(out) / n, quick=quick, seed=seed, log=log, progress=progress))
    return done
