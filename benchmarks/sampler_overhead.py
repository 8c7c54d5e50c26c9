"""Sampler overhead: wall time / (NFE × one score evaluation), measured in the same run.

MG25 (2-D, 25 modes) with its exact score, 10⁵ samples in one batch, 50-step EDM grid. The
denominator is the median time of one exact-score call on a batch of the same size; the ratio
says how much a sampler adds beyond its score evaluations (goal ≤ 1.10).

    python benchmarks/sampler_overhead.py [--n 100000] [--steps 50] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from scorelab import schedules as sch
from scorelab.grids import TimeGrid
from scorelab.processes import VP
from scorelab.samplers import SAMPLERS
from scorelab.sampling import generate
from scorelab.targets import mg25


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    target, process = mg25(), VP(sch.LinearBeta())
    score = target.score_model(process)
    grid = TimeGrid("edm", steps=args.steps)
    x = target.sample(args.n, torch.Generator().manual_seed(0))
    ts = grid.times(process).tolist()

    def one_eval():
        times = []
        for t in ts[: min(len(ts), 20)]:
            t0 = time.perf_counter()
            score(x, t)
            times.append(time.perf_counter() - t0)
        return statistics.median(times)

    rows = []
    for kind in SAMPLERS:
        walls, evals, nfe = [], [], 0
        for _ in range(args.repeats):
            evals.append(one_eval())
            res = generate(score, process, (2,), sampler=kind, grid=grid, n=args.n, seed=0)
            walls.append(res.seconds)
            nfe = res.nfe
            evals.append(one_eval())
        wall, per_eval = statistics.median(walls), statistics.median(evals)
        rows.append({"sampler": kind, "nfe": nfe, "wall_s": wall, "score_eval_s": per_eval,
                     "overhead": wall / (nfe * per_eval)})
        print(f"{kind:24s} NFE {nfe:4d}  wall {wall:7.3f} s  eval {per_eval * 1e3:6.2f} ms  "
              f"overhead {wall / (nfe * per_eval):5.3f}", flush=True)
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
