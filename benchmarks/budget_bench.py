"""`scorelab budget` on the quickstart run: wall time end to end, and the paired intervals
checked against an exact paired bootstrap.

1. Wall time: ``scorelab budget RUN`` in a fresh process (imports, loading, every arm, every
   metric, the figure), ``--repeats`` times; the median and every time are reported. The
   target is ≤ 20 s on 2 cores.
2. The closed form: ``scorelab budget configs/paper_a_gaussian_d10.yaml`` the same way.
3. Intervals (``--exact-resamples B``, 0 to skip): the budget's intervals read the optimal
   plan of each arm once (a resample takes each sample with its partner); here the same links
   are bootstrapped exactly — B resamples of the sample indices, the same in every arm and in
   the reference, each arm's W2 solved again by POT on every resample — and both intervals
   are printed side by side for every link.
4. Coverage (``--seeds K``, 0 to skip): the budget again with K seeds (new prior draws, noise,
   x₀ and reference sample; the same trained model): per part, the spread of the value over
   seeds beside the intervals' half-width / 1.96, and how many of the K intervals contain the
   mean over seeds (the part's expectation up to its own small error).

    python benchmarks/budget_bench.py [--run QUICKSTART_RUN] [--repeats 3]
        [--exact-resamples 30] [--seeds 20] [--json OUT.json]

Without --run, the quickstart is trained into a temporary directory (≈ 1 min).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _scorelab(*args: str) -> float:
    """Wall time of one `scorelab` command in a fresh process."""
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "scorelab", *args],
        check=True,
        stdout=subprocess.DEVNULL,
        env={**os.environ, "SCORELAB_PROGRESS_SECONDS": "1000"},
    )
    return time.perf_counter() - t0


def _quickstart(where: Path) -> Path:
    run = where / "quickstart"
    subprocess.run(
        [sys.executable, "-m", "scorelab", "quickstart", "--out", str(run), "--no-progress"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return run


def wall_times(run: Path, out: Path, repeats: int) -> dict:
    times = {"quickstart": [], "paper_a": []}
    for _ in range(repeats):
        times["quickstart"].append(_scorelab("budget", str(run), "--out", str(out / "q.json")))
        config = str(ROOT / "configs" / "paper_a_gaussian_d10.yaml")
        times["paper_a"].append(_scorelab("budget", config, "--out", str(out / "a.json")))
    return {k: {"median_s": statistics.median(v), "runs_s": v} for k, v in times.items()}


def exact_intervals(run: Path, resamples: int) -> dict:
    """Plan-read intervals of the budget beside an exact paired bootstrap of the same links."""
    import ot
    import torch

    from scorelab.budget.chain import chain, fold
    from scorelab.budget.core import _folded, _setting
    from scorelab.budget.samples import PairedMetrics, SampleArms
    from scorelab.budget.source import budget_of, load
    from scorelab.config import build_grid, sampler_options

    torch.set_num_threads(1)
    cfg, target, process, model, bounds = load(run)
    budget = budget_of(cfg, target, process, model, bounds=bounds)
    sc = cfg.sampler
    s = _setting(target, process, score=model, sampler=sc.kind, grid=build_grid(sc),
                 params=sampler_options(sc), n=sc.n, seed=cfg.seed,
                 dtype=getattr(torch, sc.dtype), batch_size=sc.batch_size, refine=budget.settings["refine"],
                 n_boot=200)  # fmt: skip
    arms = SampleArms(s)
    folded = _folded(s)
    order = budget.order
    xs = [arms.samples(fold(a, folded)).numpy() for a in chain(order)]
    y = arms.reference.numpy()
    paired = PairedMetrics(arms.reference, target, resamples, cfg.seed + 1)
    n = y.shape[0]
    a = np.full(n, 1.0 / n)
    reps = np.zeros((len(xs), resamples))
    t0 = time.perf_counter()
    for b, idx in enumerate(paired.idx.numpy()):
        for k, x in enumerate(xs):
            reps[k, b] = np.sqrt(ot.emd2(a, a, ot.dist(x[idx], y[idx]), numItermax=10**9))
    seconds = time.perf_counter() - t0
    out = {"exact_resamples": resamples, "exact_seconds": seconds, "links": {}}
    w2 = budget.metrics["w2"]["parts"]
    for k, part in enumerate(order):
        d = reps[k] - reps[k + 1]
        out["links"][part] = {
            "value": w2[part]["value"],
            "plan_ci": w2[part]["ci"],
            "exact_ci": [float(np.quantile(d, 0.025)), float(np.quantile(d, 0.975))],
        }
    out["links"]["remainder"] = {
        "value": w2["remainder"]["value"],
        "plan_ci": w2["remainder"]["ci"],
        "exact_ci": [float(np.quantile(reps[-1], 0.025)), float(np.quantile(reps[-1], 0.975))],
    }
    return out


def coverage(run: Path, seeds: int) -> dict:
    """The budget's W2 parts over ``seeds`` seeds: spread of the values against the
    intervals' widths, and how often an interval contains the mean over seeds."""
    import torch

    from scorelab.budget.chain import PARTS, REMAINDER
    from scorelab.budget.source import budget_of, load

    torch.set_num_threads(1)
    cfg, target, process, model, bounds = load(run)
    rows = []
    for seed in range(seeds):
        b = budget_of(cfg, target, process, model, seed=seed, bounds=bounds)
        rows.append(b.metrics["w2"]["parts"])
    out = {}
    for part in (*PARTS, REMAINDER):
        v = np.array([r[part]["value"] for r in rows])
        ci = np.array([r[part]["ci"] for r in rows])
        mean = float(v.mean())
        out[part] = {
            "mean": mean,
            "sd_over_seeds": float(v.std(ddof=1)),
            "ci_halfwidth_over_1.96": float(((ci[:, 1] - ci[:, 0]) / 2 / 1.96).mean()),
            "covers_mean": int(((ci[:, 0] <= mean) & (mean <= ci[:, 1])).sum()),
            "seeds": seeds,
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", type=Path, default=None)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--exact-resamples", type=int, default=30)
    ap.add_argument("--seeds", type=int, default=0)
    ap.add_argument("--skip-wall", action="store_true")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        run = args.run or _quickstart(tmp)
        result = {"cpus": os.cpu_count(), "load_before": os.getloadavg()}
        if not args.skip_wall:
            result["wall"] = wall_times(run, tmp, args.repeats)
        if args.exact_resamples:
            result["intervals"] = exact_intervals(run, args.exact_resamples)
        if args.seeds:
            result["coverage"] = coverage(run, args.seeds)
        result["load_after"] = os.getloadavg()
    for what, w in result.get("wall", {}).items():
        runs = ", ".join(f"{t:.1f}" for t in w["runs_s"])
        print(f"scorelab budget ({what}): median {w['median_s']:.1f} s ({runs})")
    if "intervals" in result:
        iv = result["intervals"]
        print(f"W2 links, plan-read vs exact paired bootstrap ({iv['exact_resamples']} exact "
              f"resamples per arm, {iv['exact_seconds']:.0f} s):")  # fmt: skip
        for part, v in iv["links"].items():
            p, e = v["plan_ci"], v["exact_ci"]
            print(f"  {part:15s} {v['value']:+.5f}  plan [{p[0]:+.5f}, {p[1]:+.5f}]  "
                  f"exact [{e[0]:+.5f}, {e[1]:+.5f}]")  # fmt: skip
    for part, c in result.get("coverage", {}).items():
        print(f"  {part:15s} mean {c['mean']:+.5f}  sd over seeds {c['sd_over_seeds']:.5f}  "
              f"CI half-width/1.96 {c['ci_halfwidth_over_1.96']:.5f}  "
              f"covers the mean {c['covers_mean']}/{c['seeds']}")  # fmt: skip
    print(f"load average before/after: {result['load_before']}, {result['load_after']}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
