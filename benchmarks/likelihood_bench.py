"""PF-ODE likelihood: ``likelihood.pf_ode_nll`` against a score_sde-style implementation.

Ring8 (2-D, 8 modes) with its exact score under Song's VP (linear β), n points drawn from the
target, t_min = 1e-5 (score_sde's ε), float32, CPU, rtol = atol = 1e-5 unless said:

* ``ours_rms``, ``ours_max``: ``pf_ode_nll`` with torchdiffeq's dopri5 on torch tensors, exact
  trace (two vector–Jacobian products per evaluation, sharing the score's forward pass), the
  batch sharing its steps: once with the batch-RMS error norm that scipy (hence score_sde) uses
  — the like-for-like comparison — and once with the library's default max norm (the step is
  the one the hardest example needs at that time);
* ``ours_per_ex``: ``pf_ode_nll(error_norm="per_example")`` — the same dopri5 tableau with one
  step size and error test per example, only unfinished examples evaluated, and no divergence
  at dopri5's zero-weight second stage;
* ``score_sde``: the structure of score_sde's ``likelihood.py`` (also FP-Diffusion's), written
  out here: ``scipy.integrate.solve_ivp`` RK45 on the flattened float64 numpy state, converting
  to float32 torch and back at every call; the drift and the divergence evaluated by separate
  calls (the divergence re-evaluates the drift under autograd); exact trace in d = 2 by one
  ``autograd.grad`` per coordinate (score_sde itself uses one Hutchinson probe);
* ``score_sde_tight``: the same at rtol = atol = ``--tight-tol`` (1e-6), the tolerance at which
  its worst example comes within 1e-3 nats of the exact value (at 1e-5 it is ≈ 1e-2 off):
  the baseline at equal error.

All run interleaved, ``--repeats`` times (median wall time), in one process. Reported: wall
time, NFE (batched score calls), score evaluations per example, the time ratio of each
baseline to each of ours, and each NLL's max and mean |error| against the exact
−log p_{t_min}(x) of the mixture (which also contains the prior mismatch at T, ≤ 3.6e-4 nats
here).

    python benchmarks/likelihood_bench.py [--n 10000] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from scipy import integrate

from scorelab import schedules as sch
from scorelab.likelihood import pf_ode_nll
from scorelab.processes import VP
from scorelab.targets import ring8

RESULTS = Path(__file__).parent / "results"


def score_sde_nll(score, process, data: torch.Tensor, rtol: float, atol: float, eps: float):
    """−log p_eps(x) the way score_sde computes it (per-example, nats) and the NFE."""
    shape = data.shape
    B = shape[0]

    def drift_fn(x, t):
        f = process.drift_coef(t).to(x.dtype)[:, None]
        g2 = process.diffusion2(t).to(x.dtype)[:, None]
        return f * x - 0.5 * g2 * score(x, t)

    def div_fn(x, t):
        with torch.enable_grad():
            x = x.clone().requires_grad_(True)
            out = drift_fn(x, t)
            div = torch.zeros(B, dtype=x.dtype)
            for i in range(shape[1]):
                (g,) = torch.autograd.grad(out[:, i].sum(), x, retain_graph=i < shape[1] - 1)
                div = div + g[:, i]
        return div

    def ode_func(t, y):
        sample = torch.from_numpy(y[:-B].reshape(shape)).to(torch.float32)
        vec_t = torch.ones(B) * t
        drift = drift_fn(sample, vec_t).detach().cpu().numpy().reshape(-1)
        logp_grad = div_fn(sample, vec_t).detach().cpu().numpy().reshape(-1)
        return np.concatenate([drift, logp_grad], axis=0)

    with torch.no_grad():
        init = np.concatenate([data.cpu().numpy().reshape(-1), np.zeros(B)], axis=0)
        sol = integrate.solve_ivp(
            ode_func, (eps, process.T), init, rtol=rtol, atol=atol, method="RK45"
        )
        zp = sol.y[:, -1]
        z = torch.from_numpy(zp[:-B].reshape(shape)).to(torch.float32)
        delta = torch.from_numpy(zp[-B:]).to(torch.float32)
        prior = process.prior_log_prob(z)
    return -(prior + delta), int(sol.nfev)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--tol", type=float, default=1e-5)
    parser.add_argument("--tight-tol", type=float, default=1e-6, help="0: no score_sde_tight")
    parser.add_argument("--t-min", type=float, default=1e-5)
    parser.add_argument("--out", type=Path, default=RESULTS / "likelihood_bench.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    process = VP(sch.LinearBeta(), t_min=args.t_min)
    target = ring8()
    score = target.score_model(process)
    x = target.sample(args.n, torch.Generator().manual_seed(0))
    exact = -target.log_prob_t(x.double(), args.t_min, process)

    def ours(norm):
        def run():
            r = pf_ode_nll(
                score, process, x, rtol=args.tol, atol=args.tol, t_min=args.t_min,
                error_norm=norm,
            )  # fmt: skip
            return r.nll, r.nfe, r.nfe_per_example

        return run

    def theirs(tol):
        def run():
            nll, nfe = score_sde_nll(score, process, x, tol, tol, args.t_min)
            return nll, nfe, float(nfe)

        return run

    runs = {
        "ours_rms": ours("rms"),
        "ours_max": ours("max"),
        "ours_per_ex": ours("per_example"),
        "score_sde": theirs(args.tol),
    }
    if args.tight_tol > 0:
        runs["score_sde_tight"] = theirs(args.tight_tol)
    walls = {k: [] for k in runs}
    out = {}
    for _ in range(args.repeats):  # interleaved, so that all see the same machine state
        for k, fn in runs.items():
            t0 = time.perf_counter()
            out[k] = fn()
            walls[k].append(time.perf_counter() - t0)
    wall = {k: statistics.median(v) for k, v in walls.items()}
    nll = {k: v[0] for k, v in out.items()}
    nfe = {k: v[1] for k, v in out.items()}
    per_ex = {k: v[2] for k, v in out.items()}
    err = {k: (v.double() - exact).abs() for k, v in nll.items()}
    baselines = [k for k in runs if k.startswith("score_sde")]
    mine = [k for k in runs if k.startswith("ours")]
    row = {
        "n": args.n,
        "dim": 2,
        "dtype": "float32",
        "rtol": args.tol,
        "atol": args.tol,
        "tight_tol": args.tight_tol,
        "t_min": args.t_min,
        "wall_s": wall,
        "walls_s": walls,
        "nfe": nfe,
        "evals_per_example": per_ex,
        "speedup": {f"{b}/{k}": wall[b] / wall[k] for b in baselines for k in mine},
        "ms_per_1e4_evals": {k: 1e3 * wall[k] / per_ex[k] * 1e4 / args.n for k in runs},
        "mean_nll": {**{k: float(v.mean()) for k, v in nll.items()}, "exact": float(exact.mean())},
        "max_abs_err_vs_exact": {k: float(v.max()) for k, v in err.items()},
        "mean_abs_err_vs_exact": {k: float(v.mean()) for k, v in err.items()},
        "max_abs_diff_ours_rms_vs_score_sde": float(
            (nll["ours_rms"] - nll["score_sde"]).abs().max()
        ),
    }
    print(
        f"{'':16s} {'wall s':>7} {'NFE':>5} {'evals/ex':>8} {'ms/1e4 ev':>9} "
        f"{'max|Δexact|':>11} {'mean|Δexact|':>12}"
    )
    for k in runs:
        print(
            f"{k:16s} {wall[k]:7.3f} {nfe[k]:5d} {per_ex[k]:8.1f} "
            f"{row['ms_per_1e4_evals'][k]:9.2f} {row['max_abs_err_vs_exact'][k]:11.2e} "
            f"{row['mean_abs_err_vs_exact'][k]:12.2e}"
        )
    print(f"exact mean NLL {row['mean_nll']['exact']:.5f}; speed-ups (baseline time / ours):")
    for b in baselines:
        print(f"  {b:16s} " + "  ".join(f"{k} {wall[b] / wall[k]:5.2f}×" for k in mine))
    meta = {
        "torch": torch.__version__,
        "threads": args.threads,
        "machine": platform.machine(),
        "device": "cpu",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "rows": [row]}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
