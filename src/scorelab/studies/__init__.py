"""Studies: each paper's claims reproduced in one command (``scorelab study NAME``).

Each study lives in its own module (see :mod:`.common` for the contract) and writes
``results.json``, PNG figures and ``report.html`` into ``OUT/NAME/``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

from ..errors import InvalidParameter
from .common import Study, timed_run

# study name → module; imported on demand, so `scorelab --help` stays fast.
STUDIES: dict[str, str] = {
    "noise-schedule": "noise_schedule",
    "dimension-free": "dimension_free",
    "design-space": "design_space",
    "fokker-planck": "fokker_planck_study",
    "manifold": "manifold",
}


def run_study(
    name: str,
    out: str | Path = "studies",
    *,
    quick: bool = False,
    seed: int = 0,
    log: Callable[[str], None] = lambda msg: None,
    progress: bool = False,
) -> list[Study]:
    """Run study ``name`` (or ``"all"``) into ``out/<name>/``; returns the finished studies."""
    names = list(STUDIES) if name == "all" else [name]
    for n in names:
        if n not in STUDIES:
            raise InvalidParameter("study", "unknown study", name, ", ".join([*STUDIES, "all"]))
    done = []
    for n in names:
        module = importlib.import_module(f".{STUDIES[n]}", __name__)
        log(f"study {n} ({'quick' if quick else 'full'} mode)")
        done.append(timed_run(module, Path(out) / n, quick, seed, log, progress))
    return done
