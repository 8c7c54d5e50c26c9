"""Exact Gaussian-mixture score cost against one matrix product of the same size.

MG25 (K = 25 modes, d = 2) at 10⁶ points: the time of ``target.score(x, t, process)`` divided
by the time of one product x @ W with W of shape [d, K] (the [N, K] logits a mixture needs),
both measured here, in the same run, as the median of several repetitions. Reports the ratio
for float32 and float64, one time for the batch and one time per example.

    python benchmarks/gmm_score.py [--n 1000000] [--repeats 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from scorelab import schedules as sch
from scorelab.processes import VP
from scorelab.targets import mg25


def median_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    target = mg25(dim=2)
    process = VP(sch.LinearBeta())
    g = torch.Generator().manual_seed(0)
    rows = []
    for dtype in (torch.float32, torch.float64):
        x = target.sample(args.n, g, dtype=dtype)
        W = torch.randn(2, target.n_components, generator=g, dtype=dtype)
        base = median_time(lambda x=x, W=W: x @ W, args.repeats)
        per_example = torch.rand(args.n, generator=g, dtype=dtype)
        for label, t in (("scalar t", 0.3), ("per-example t", per_example)):
            cost = median_time(lambda x=x, t=t: target.score(x, t, process), args.repeats)
            rows.append(
                {
                    "dtype": str(dtype).removeprefix("torch."),
                    "time": label,
                    "score_s": cost,
                    "matmul_s": base,
                    "ratio": cost / base,
                }
            )
    print(f"MG25 exact score, n = {args.n}, threads = {torch.get_num_threads()}")
    print(f"{'dtype':8} {'time':14} {'score (s)':>10} {'matmul (s)':>11} {'ratio':>8}")
    for r in rows:
        print(
            f"{r['dtype']:8} {r['time']:14} {r['score_s']:10.4f} {r['matmul_s']:11.5f}"
            f" {r['ratio']:8.1f}"
        )
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
