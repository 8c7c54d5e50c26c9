"""Timings of the two expensive metrics: exact W₂ (POT's network simplex) on 5000×5000 points
in d = 2, and sliced W₂ (sorting, torch) on 10⁶×10⁶ points in d = 64.

Each is timed end to end (cost matrix or projections included) as the median of --repeats
runs after one warm-up, on Gaussian samples drawn from a seeded generator.

    python benchmarks/metrics_bench.py [--n-exact 5000] [--n-sliced 1000000] [--dim 64]
        [--projections 256] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from scorelab.metrics import sliced_w2, w2


def median_time(fn, repeats: int) -> tuple[float, float]:
    value = fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-exact", type=int, default=5000)
    parser.add_argument("--n-sliced", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--projections", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    g = torch.Generator().manual_seed(0)
    rows = []

    n = args.n_exact
    x = torch.randn(n, 2, generator=g, dtype=torch.float64)
    y = torch.randn(n, 2, generator=g, dtype=torch.float64) * 0.8 + 0.5
    t, v = median_time(lambda: w2(x, y, max_points=n), args.repeats)
    rows.append({"metric": "exact w2", "n": n, "d": 2, "seconds": t, "value": v})

    n, d = args.n_sliced, args.dim
    x = torch.randn(n, d, generator=g)
    y = torch.randn(n, d, generator=g) * 0.8 + 0.5
    for dtype in (torch.float32, torch.float64):
        t, v = median_time(
            lambda dtype=dtype: sliced_w2(
                x, y, args.projections, generator=torch.Generator().manual_seed(1), dtype=dtype
            ),
            args.repeats,
        )
        rows.append(
            {
                "metric": f"sliced w2 ({args.projections} directions, "
                f"{str(dtype).removeprefix('torch.')})",
                "n": n,
                "d": d,
                "seconds": t,
                "value": v,
            }
        )
    for r in rows:
        print(f"{r['metric']:<40} n={r['n']:<8} d={r['d']:<3} {r['seconds']:8.2f} s")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
