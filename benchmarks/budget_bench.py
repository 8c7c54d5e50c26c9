"""`scorelab budget` on the quickstart run: wall time end to end, and the paired intervals
checked against an exact paired bootstrap.

1. Wall time: ``scorelab budget RUN`` in a fresh process (imports, loading, every arm, every
   metric, the figure), ``--repeats`` times; the median and every time are reported. The
   target is ≤ 20 s on 2 cores.
2. The closed form: ``scorelab budget configs/paper_a_gaussian_d10.yaml`` the same way.
3. Coverage (``--seeds K``, 0 to skip): the budget again with K seeds (new prior draws,
   noise, x₀ and reference sample; the same trained model): per part and metric, the spread
   of the value over seeds beside the intervals' half-width / t, and how many of the K
   intervals contain the mean over seeds (the part's expectation, up to its own error
   sd/√K).

    python benchmarks/budget_bench.py [--run QUICKSTART_RUN] [--repeats 3] [--seeds 16]
        [--first-seed 100] [--json OUT.json]

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


def coverage(run: Path, seeds: int, first: int) -> dict:
    """The budget's parts over ``seeds`` seeds: spread of the values against the intervals'
    widths, and how often an interval contains the mean over seeds."""
    import torch
    from scipy import stats

    from scorelab.budget.chain import PARTS, REMAINDER
    from scorelab.budget.samples import GROUPS
    from scorelab.budget.source import budget_of, load

    torch.set_num_threads(1)
    cfg, target, process, model, bounds = load(run)
    runs = [
        budget_of(cfg, target, process, model, seed=first + k, bounds=bounds).metrics
        for k in range(seeds)
    ]
    t = float(stats.t.ppf(0.975, GROUPS - 1))
    out: dict = {}
    for metric in runs[0]:
        for part in (*PARTS, REMAINDER, "total"):
            entries = [
                m[metric]["total"] if part == "total" else m[metric]["parts"][part] for m in runs
            ]
            v = np.array([e["value"] for e in entries])
            ci = np.array([e["ci"] for e in entries])
            mean = float(v.mean())
            out[f"{metric}/{part}"] = {
                "mean": mean,
                "sd_over_seeds": float(v.std(ddof=1)),
                "halfwidth_over_t": float(((ci[:, 1] - ci[:, 0]) / 2 / t).mean()),
                "covers_mean": int(((ci[:, 0] <= mean) & (mean <= ci[:, 1])).sum()),
                "seeds": seeds,
            }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", type=Path, default=None)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seeds", type=int, default=16)
    ap.add_argument("--first-seed", type=int, default=100)
    ap.add_argument("--skip-wall", action="store_true")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        run = args.run or _quickstart(tmp)
        result = {"cpus": os.cpu_count(), "load_before": os.getloadavg()}
        if not args.skip_wall:
            result["wall"] = wall_times(run, tmp, args.repeats)
        if args.seeds:
            result["coverage"] = coverage(run, args.seeds, args.first_seed)
        result["load_after"] = os.getloadavg()
    for what, w in result.get("wall", {}).items():
        runs = ", ".join(f"{t:.1f}" for t in w["runs_s"])
        print(f"scorelab budget ({what}): median {w['median_s']:.1f} s ({runs})")
    if "coverage" in result:
        print("parts over seeds: mean, sd over seeds, interval half-width / t, coverage")
    for part, c in result.get("coverage", {}).items():
        print(
            f"  {part:22s} {c['mean']:+.5f}  {c['sd_over_seeds']:.5f}  "
            f"{c['halfwidth_over_t']:.5f}  {c['covers_mean']}/{c['seeds']}"
        )
    print(f"load average before/after: {result['load_before']}, {result['load_after']}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
