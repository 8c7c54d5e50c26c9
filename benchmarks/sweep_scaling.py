"""Sweep engine: parallel speed-up and per-cell overhead, measured in one run.

Eight exact-score sample+evaluate cells (the quickstart's ring8 mixture under VP cosine, Heun,
W2 and MMD with bootstrap CIs), run

1. directly, one after another, by calling ``run_cell`` in this process (the baseline);
2. through the engine's local executor with 1 worker;
3. through the engine's local executor with 2 workers.

Reported: wall(2 workers) / wall(1 worker) (goal ≤ 0.6 on 2 cores) and the engine's overhead
per cell, (wall(1 worker) − wall(direct)) / cells (goal ≤ 0.3 s): pool start-up, shipping the
config, the cell records and the summary. Each executor run starts from an empty directory, so
nothing is cached.

    python benchmarks/sweep_scaling.py [--cells 8] [--n 2000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from scorelab.quickstart import DEFAULTS
from scorelab.sweep import cells, run_sweep
from scorelab.sweep.engine import cell_dir
from scorelab.sweep.jobs import run_cell


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=8)
    parser.add_argument("--n", type=int, default=2000, help="samples per cell")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)

    base = {
        **DEFAULTS,
        "score": {"kind": "exact"},
        "sampler": {**DEFAULTS["sampler"], "n": args.n},
        "run": {"metrics": ["w2", "mmd"], "n_boot": 50, "n_boot_ot": 10},
    }
    todo = cells(base, [], list(range(args.cells)), "sample")

    def quiet(msg: str) -> None:
        pass

    walls: dict[str, list[float]] = {"direct": [], "1 worker": [], "2 workers": []}
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            for c in todo:
                info = {"key": c.key, "values": c.values, "seed": c.seed}
                run_cell(c.job, c.config, str(cell_dir(Path(tmp), c)), info)
            walls["direct"].append(time.perf_counter() - t0)
        for workers, name in ((1, "1 worker"), (2, "2 workers")):
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                run_sweep(todo, tmp, workers=workers, log=quiet)
                walls[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in walls.items()}
    result = {
        "cells": args.cells,
        "samples_per_cell": args.n,
        "wall_s": med,
        "speedup_ratio_2_over_1": med["2 workers"] / med["1 worker"],
        "overhead_per_cell_s": (med["1 worker"] - med["direct"]) / args.cells,
        "goals": {"speedup_ratio_2_over_1": "≤ 0.6", "overhead_per_cell_s": "≤ 0.3"},
    }
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
