"""Sampler overhead: wall time / (NFE × one score evaluation), measured in the same run.

MG25 (2-D, 25 modes) with its exact score, 10⁵ samples in one batch, 50-step EDM grid. The
denominator is NFE score evaluations made by a minimal loop (x ← x + c·s(x, t) over the same
times), run right before each sampler run so both see the same machine state; the reported
overhead is the median of the paired ratios over the repeats. (Timing one call on a fixed x
repeatedly is not a fair baseline: it ran up to 20% faster or slower than evaluations on an
evolving x.) Goal: ≤ 1.10.

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
from scorelab.registry import names
from scorelab.sampling import generate
from scorelab.targets import mg25

SAMPLERS = names("sampler")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    target, process = mg25(), VP(sch.LinearBeta())
    score = target.score_model(process)
    grid = TimeGrid("edm", steps=args.steps)
    x = process.prior_sample((args.n, 2), torch.Generator().manual_seed(0))
    ts = grid.times(process).tolist()

    def baseline(nfe: int) -> float:
        """nfe score evaluations on an evolving batch: the cost a sampler cannot avoid."""
        y = x.clone()
        t0 = time.perf_counter()
        for i in range(nfe):
            y = y + 1e-3 * score(y, ts[i % (len(ts) - 1)])
        return time.perf_counter() - t0

    rows = []
    for kind in SAMPLERS:
        ratios, walls, evals, nfe = [], [], [], 0
        for _ in range(args.repeats):
            res = generate(score, process, (2,), sampler=kind, grid=grid, n=args.n, seed=0)
            nfe = res.nfe
            base = baseline(nfe)
            res = generate(score, process, (2,), sampler=kind, grid=grid, n=args.n, seed=0)
            ratios.append(res.seconds / base)
            walls.append(res.seconds)
            evals.append(base / nfe)
        overhead = statistics.median(ratios)
        wall, per_eval = statistics.median(walls), statistics.median(evals)
        rows.append(
            {
                "sampler": kind,
                "nfe": nfe,
                "wall_s": wall,
                "score_eval_s": per_eval,
                "overhead": overhead,
                "overhead_range": [min(ratios), max(ratios)],
            }
        )
        print(
            f"{kind:24s} NFE {nfe:4d}  wall {wall:7.3f} s  eval {per_eval * 1e3:6.2f} ms  "
            f"overhead {overhead:5.3f}  (range {min(ratios):.3f}–{max(ratios):.3f})",
            flush=True,
        )
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
