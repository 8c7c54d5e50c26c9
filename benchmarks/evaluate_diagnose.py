"""`evaluate` and `diagnose`, the previous way against the current one, as ratios measured in
one run (issue 18, items 2 and 3).

evaluate: the default metrics of ``evaluate`` on the quickstart's 2000 samples, each metric
timed with the per-resample loops it used before (kept below as ``_old_*``: one POT solve per
Sinkhorn and exact-OT resample, every kernel block recomputed, every sliced resample sorted
again) and as now, on the same samples and generator seed; the report gives per-metric and
total times, the ratio old/new, and both values and CIs side by side.

diagnose: ``diagnostics.diagnose`` on the quickstart run and on a digits run, each in a fresh
process (the thread pool and the peak resident memory are per process): "old" is the same code
with torch's default threads (what ``scorelab diagnose`` ran with) and no chunking, "new" the
current code; reported: wall time, ratio, peak RSS (ru_maxrss) and the values.

Both run with one torch thread where the comparison allows (``torch.set_num_threads(1)``;
the old diagnose keeps torch's default, that being the old behaviour), so that ratios stay
meaningful on a busy machine.

    python benchmarks/evaluate_diagnose.py [--run QUICKSTART_RUN] [--digits-run DIGITS_RUN]
        [--skip-diagnose] [--skip-evaluate] [--json OUT.json]

Without --run, a quickstart run is trained into a temporary directory (≈ 1 min); without
--digits-run, a 20-step digits run (the timing and memory of diagnose depend on the network's
size, not on how well it is trained).
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


# --- evaluate: the previous per-resample implementations -----------------------------------


def _old_exact_ot(c, p):
    from scorelab.metrics import transport
    from scorelab.metrics._checks import basic_ci, bootstrap_counts, subsample

    xs, ys = subsample(c.x, c.max_points, c.g), subsample(c.y, c.max_points, c.g)
    y2s = subsample(c.y2, c.max_points, c.g)
    M = transport.cost_matrix(xs, ys, p)
    u = lambda k: np.full(k, 1.0 / k)  # noqa: E731
    value = transport.emd_cost(u(len(xs)), u(len(ys)), M) ** (1 / p)
    floor = transport.emd_cost(u(len(y2s)), u(len(ys)), transport.cost_matrix(y2s, ys, p))
    boot = []
    for counts in bootstrap_counts(len(xs), c.n_boot_ot, c.g):
        keep = torch.nonzero(counts).reshape(-1).numpy()
        w = counts[keep].numpy()
        boot.append(transport.emd_cost(w / w.sum(), u(len(ys)), M[keep]) ** (1 / p))
    return value, floor ** (1 / p), basic_ci(value, boot)


def _old_sinkhorn(c):
    from scorelab.metrics import transport
    from scorelab.metrics._checks import basic_ci, bootstrap_counts, subsample

    mp = min(c.max_points, transport.MAX_POINTS_SINKHORN)
    xs, ys, y2s = (subsample(z, mp, c.g) for z in (c.x, c.y, c.y2))
    eps = transport.default_eps(c.y)
    cost = transport.cost_matrix
    Myy, Mxy, Mxx = cost(ys, ys), cost(xs, ys), cost(xs, xs)
    u = lambda k: np.full(k, 1.0 / k)  # noqa: E731
    ot = transport.entropic_ot  # POT, one problem per call

    def div(a, b, Mab, Maa, Mbb):
        return ot(a, b, Mab, eps) - 0.5 * ot(a, a, Maa, eps) - 0.5 * ot(b, b, Mbb, eps)

    value = div(u(len(xs)), u(len(ys)), Mxy, Mxx, Myy)
    floor = div(u(len(y2s)), u(len(ys)), cost(y2s, ys), cost(y2s, y2s), Myy)
    ob = ot(u(len(ys)), u(len(ys)), Myy, eps)
    boot = []
    for counts in bootstrap_counts(len(xs), c.n_boot_ot, c.g):
        keep = torch.nonzero(counts).reshape(-1).numpy()
        a = counts[keep].numpy() / float(counts.sum())
        boot.append(
            ot(a, u(len(ys)), Mxy[keep], eps)
            - 0.5 * ot(a, a, Mxx[np.ix_(keep, keep)], eps)
            - 0.5 * ob
        )
    return value, floor, basic_ci(value, boot)


def _old_sliced(c):
    from scorelab.metrics import transport
    from scorelab.metrics._checks import basic_ci

    th = transport.random_directions(c.D, 256, c.g)
    f = lambda z: transport.sliced_w2(z, c.y, projections=th)  # noqa: E731
    boot = [f(c.x[i]) for i in c.boot_index(c.n_boot_ot)]
    v = f(c.x)
    return v, f(c.y2), basic_ci(v, boot)


def _old_mmd(c):
    from scorelab.metrics import kernel
    from scorelab.metrics._checks import bootstrap_counts, percentile_ci, subsample

    xs, ys, y2s = (subsample(z, c.max_points, c.g) for z in (c.x, c.y, c.y2))
    hs = kernel.bandwidths_for(ys)
    value, _ = kernel.mmd2(xs, ys, hs, max_points=None, n_permutations=0, generator=c.g)
    floor, _ = kernel.mmd2(y2s, ys, hs, max_points=None)
    n, m = xs.shape[0], ys.shape[0]
    Kxx, Kxy = kernel.rbf_kernel(xs, xs, hs), kernel.rbf_kernel(xs, ys, hs)
    Kyy = kernel.rbf_kernel(ys, ys, hs)
    syy = (Kyy.sum() - Kyy.diagonal().sum()) / (m * (m - 1))
    C = bootstrap_counts(n, c.n_boot, c.g)
    sq = (C**2).sum(1)
    sxx = (((C @ Kxx) * C).sum(1) - sq * Kxx.diagonal()[0]) / (n * n - sq)
    sxy = (C @ Kxy).sum(1) / (n * m)
    return value, floor, percentile_ci((sxx + syy - 2 * sxy).tolist())


OLD = {
    "w1": lambda c: _old_exact_ot(c, 1),
    "w2": lambda c: _old_exact_ot(c, 2),
    "sliced_w2": _old_sliced,
    "sinkhorn": _old_sinkhorn,
    "mmd": _old_mmd,
}


def bench_evaluate(run: Path) -> dict:
    from scorelab import registry
    from scorelab.config import build_target, load_config
    from scorelab.metrics import MetricContext, assess, metric_names, spec_of, transport
    from scorelab.metrics import evaluate as run_evaluate  # noqa: F401 (registers the metrics)
    from scorelab.targets import load_array

    torch.set_num_threads(1)
    transport._ot()  # POT's import (≈ 1 s) is paid by old and new alike: not timed
    cfg = load_config(run / "config.yaml")
    target = build_target(cfg.target.model_dump(), seed=0)
    x = load_array(run / "samples-heun.npz", None, field="samples").double()
    n = x.shape[0]
    rows, total_old, total_new = [], 0.0, 0.0
    pool = ThreadPoolExecutor(1)
    entries = registry.entries("metric")
    for name in metric_names(default_only=True):
        e = entries[name]
        if spec_of(e).why_not(target, x.shape[1]) is not None:
            continue

        def context():  # evaluate's own context: y, y2, then the metric's draws
            g = torch.Generator().manual_seed(0)
            y = target.sample(n, g, dtype=torch.float64).reshape(n, -1)
            y2 = target.sample(n, g, dtype=torch.float64).reshape(n, -1)
            # one worker thread, as evaluate gives on one torch thread
            return MetricContext(x, y, y2, target, g, 200, 25, 2000, 0, pool=pool)

        c = context()
        t0 = time.perf_counter()
        new = assess(e, c)
        t_new = time.perf_counter() - t0
        row = {"metric": name, "new_s": t_new, "new": [new.value, new.floor, list(new.ci)]}
        if name in OLD:
            c = context()
            t0 = time.perf_counter()
            old = OLD[name](c)
            t_old = time.perf_counter() - t0
            row.update(old_s=t_old, old=[old[0], old[1], list(old[2])], ratio=t_old / t_new)
        else:
            t_old = t_new  # unchanged
        total_old += t_old
        total_new += t_new
        rows.append(row)
        print(json.dumps(row), flush=True)
    out = {"rows": rows, "old_s": total_old, "new_s": total_new, "ratio": total_old / total_new}
    print(f"evaluate: old {total_old:.2f} s, new {total_new:.2f} s, ratio {out['ratio']:.1f}×")
    return out


# --- diagnose --------------------------------------------------------------------------------


def _diagnose_child(run: str, mode: str) -> None:
    """One diagnose in this process; prints a JSON line. Modes: "old" — the calls diagnose
    made before (no chunking, shared ODE steps, error_norm="max") under torch's default
    threads, as `scorelab diagnose` ran them; "old-1t" the same on one thread; "new" the
    current code (its thread policy); "new-1t" the current code on one thread."""
    import contextlib
    import os

    from scorelab import diagnostics
    from scorelab.config import build, load_config
    from scorelab.models import load_score_model
    from scorelab.training import CHECKPOINT

    if mode.endswith("-1t"):
        os.environ["SCORELAB_THREADS"] = "1"
        torch.set_num_threads(1)
    if mode.startswith("old"):
        diagnostics.threads.scoped = lambda *a, **k: contextlib.nullcontext()
        for name in ("residual_profile", "conservativity", "pf_ode_nll"):
            f = getattr(diagnostics, name)

            def old_call(*a, _f=f, **k):
                k.pop("batch_size", None)
                if "error_norm" in k:
                    k["error_norm"] = "max"
                return _f(*a, **k)

            setattr(diagnostics, name, old_call)
    cfg = load_config(Path(run) / "config.yaml")
    target, process = build(cfg)
    score = load_score_model(Path(run) / CHECKPOINT, process, dtype=torch.float64)
    t0 = time.perf_counter()
    d = diagnostics.diagnose(score, target, process, seed=cfg.seed)
    wall = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    keep = {k: d[k]["value"] for k in ("fpe_residual", "conservativity", "nll")}
    print(json.dumps({"mode": mode, "seconds": wall, "peak_rss_mb": rss, **keep}))


def bench_diagnose(run: Path, label: str, modes: list[str]) -> dict:
    res = {}
    for mode in modes:
        proc = subprocess.run(
            [sys.executable, __file__, "--child", str(run), mode],
            capture_output=True,
            text=True,
            check=True,
        )
        res[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
        print(label, json.dumps(res[mode]), flush=True)
    for old in modes:
        for new in modes:
            if old.startswith("old") and new.startswith("new"):
                r = res[old]["seconds"] / res[new]["seconds"]
                res[f"ratio {old}/{new}"] = r
                print(
                    f"diagnose {label}: {old} {res[old]['seconds']:.1f} s, "
                    f"{res[old]['peak_rss_mb']:.0f} MB; {new} {res[new]['seconds']:.1f} s, "
                    f"{res[new]['peak_rss_mb']:.0f} MB; ratio {r:.1f}×"
                )
    return res


def _train(config: str, out: Path, sets: list[str]) -> Path:
    args = [sys.executable, "-m", "scorelab", "--quiet"]
    if config == "quickstart":
        args += ["quickstart", "--out", str(out)]
    else:
        args += ["train", str(ROOT / "configs" / config), "--out", str(out)]
    for s in sets:
        args += ["--set", s]
    subprocess.run(args, check=True)
    return out


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--child":  # one diagnose, in its own process
        _diagnose_child(sys.argv[2], sys.argv[3])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="a quickstart run directory")
    parser.add_argument("--digits-run", type=Path, help="a digits run directory")
    parser.add_argument("--skip-evaluate", action="store_true")
    parser.add_argument("--skip-diagnose", action="store_true")
    parser.add_argument("--skip-digits", action="store_true")
    parser.add_argument(
        "--modes",
        type=lambda v: v.split(","),
        default=["old", "old-1t", "new"],
        help="diagnose configurations, comma-separated: old, old-1t, new, new-1t",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = args.run or _train("quickstart", Path(tmp) / "qs", [])
        out = {}
        if not args.skip_evaluate:
            out["evaluate"] = bench_evaluate(run)
        if not args.skip_diagnose:
            out["diagnose_quickstart"] = bench_diagnose(run, "quickstart", args.modes)
            if not args.skip_digits:
                digits = args.digits_run or _train(
                    "digits.yaml",
                    Path(tmp) / "digits",
                    ["train.steps=20", "train.checkpoint_every=20"],
                )
                out["diagnose_digits"] = bench_diagnose(digits, "digits", args.modes)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, default=float))
    if math.isfinite(out.get("evaluate", {}).get("ratio", math.nan)):
        print(f"evaluate ratio {out['evaluate']['ratio']:.1f}×")


if __name__ == "__main__":
    main()
