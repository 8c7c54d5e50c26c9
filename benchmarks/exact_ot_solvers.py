"""Exact OT between two equal-size uniform clouds is an assignment problem: the solvers that
exist for it, timed against POT's network simplex (what ``evaluate``'s W1/W2 use) in one run.

For n points per side with uniform weights, the optimal coupling can be taken to be a
permutation (Birkhoff), so ``scipy.optimize.linear_sum_assignment`` (a shortest augmenting
path solver), ``lap.lapjv`` and ``lapjv.lapjv`` (Jonker–Volgenant, packages not required by
scorelab: timed where installed) give the same cost as ``ot.emd2``. Each solver runs on the
same cost matrices — a run's samples (``--samples``, e.g. the quickstart's
``samples-heun.npz``) or, by default, a target sample scaled by 1.05 — against a sample of
the quickstart's target, for W1 (cost ‖x − y‖) and W2 (‖x − y‖²); the solvers alternate
within each repeat so that a busy machine slows them alike. Reported per (n, p, solver): the
median time, its ratio to POT's in the same run, and the largest |cost − POT's cost|.

    python benchmarks/exact_ot_solvers.py [--n 500 1000 2000] [--repeats 3]
        [--samples RUN/samples-heun.npz] [--skip lapjv] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import time

import numpy as np
import torch


def _pot(M: np.ndarray) -> float:
    import ot

    n, m = M.shape
    return float(ot.emd2(np.full(n, 1 / n), np.full(m, 1 / m), M, numItermax=1_000_000_000))


def _scipy(M: np.ndarray) -> float:
    from scipy.optimize import linear_sum_assignment

    r, c = linear_sum_assignment(M)
    return float(M[r, c].sum() / len(r))


def _lap(M: np.ndarray) -> float:
    import lap

    _, x, _ = lap.lapjv(M, extend_cost=False)
    return float(M[np.arange(len(x)), x].sum() / len(x))


def _lapjv(M: np.ndarray) -> float:
    import lapjv

    rows, _, _ = lapjv.lapjv(M, force_doubles=True)
    return float(M[np.arange(len(rows)), rows].sum() / len(rows))


SOLVERS = {"pot": ("ot", _pot), "scipy": ("scipy", _scipy), "lap": ("lap", _lap)}
SOLVERS["lapjv"] = ("lapjv", _lapjv)


def _clouds(n: int, samples: str | None, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    from scorelab.config import build_target

    target = build_target({"kind": "gmm", "preset": "ring8", "radius": 2.0, "std": 0.2})
    g = torch.Generator().manual_seed(seed)
    y = target.sample(n, g, dtype=torch.float64)
    if samples:
        x = torch.from_numpy(np.load(samples)["samples"]).double()[:n]
    else:
        x = target.sample(n, g, dtype=torch.float64) * 1.05
    return x, y


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[500, 1000, 2000])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--samples", default=None)
    ap.add_argument("--skip", nargs="*", default=[])
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    from scorelab.metrics import transport

    solvers = {
        k: f
        for k, (module, f) in SOLVERS.items()
        if k not in args.skip and importlib.util.find_spec(module) is not None
    }
    for f in solvers.values():  # imports out of the timings
        f(np.ones((2, 2)))
    rows = []
    for n in args.n:
        x, y = _clouds(n, args.samples, 0)
        for p in (1, 2):
            M = transport.cost_matrix(x, y, p)
            times = {k: [] for k in solvers}
            values = {k: [] for k in solvers}
            for _ in range(args.repeats):
                for k, f in solvers.items():
                    t0 = time.perf_counter()
                    values[k].append(f(M))
                    times[k].append(time.perf_counter() - t0)
            base = statistics.median(times["pot"])
            for k in solvers:
                row = {
                    "n": n,
                    "p": p,
                    "solver": k,
                    "median_s": statistics.median(times[k]),
                    "ratio_to_pot": statistics.median(times[k]) / base,
                    "max_abs_diff": max(abs(v - values["pot"][0]) for v in values[k]),
                }
                rows.append(row)
                print(json.dumps(row), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
