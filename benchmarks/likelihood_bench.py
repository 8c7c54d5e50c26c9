"""PF-ODE likelihood: ``likelihood.pf_ode_nll`` against a score_sde-style implementation.

Ring8 (2-D, 8 modes) with its exact score under Song's VP (linear β), n points drawn from the
target, t_min = 1e-5 (score_sde's ε), float32, CPU, rtol = atol = 1e-5 for both:

* ``ours``: ``pf_ode_nll`` — torchdiffeq dopri5 on torch tensors, exact trace (two
  vector–Jacobian products per evaluation, sharing the score's forward pass), once with the
  batch-RMS error norm that scipy (hence score_sde) uses — the like-for-like comparison — and
  once with the library's default max norm (every example held to the tolerance);
* ``score_sde``: the structure of score_sde's ``likelihood.py`` (also FP-Diffusion's), written
  out here: ``scipy.integrate.solve_ivp`` RK45 on the flattened float64 numpy state, converting
  to float32 torch and back at every call; the drift and the divergence evaluated by separate
  calls (the divergence re-evaluates the drift under autograd); exact trace in d = 2 by one
  ``autograd.grad`` per coordinate (score_sde itself uses one Hutchinson probe).

Reported: wall time, NFE, the time ratio, and the NLL agreement between the two and with the
exact −log p_{t_min}(x) of the mixture (which also contains the prior mismatch at T).

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
    parser.add_argument("--t-min", type=float, default=1e-5)
    parser.add_argument("--out", type=Path, default=RESULTS / "likelihood_bench.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    process = VP(sch.LinearBeta(), t_min=args.t_min)
    target = ring8()
    score = target.score_model(process)
    x = target.sample(args.n, torch.Generator().manual_seed(0))
    exact = -target.log_prob_t(x.double(), args.t_min, process).float()

    runs = {
        "ours_rms": lambda: pf_ode_nll(
            score, process, x, rtol=args.tol, atol=args.tol, t_min=args.t_min, error_norm="rms"
        ),
        "ours_max": lambda: pf_ode_nll(
            score, process, x, rtol=args.tol, atol=args.tol, t_min=args.t_min, error_norm="max"
        ),
        "score_sde": lambda: score_sde_nll(score, process, x, args.tol, args.tol, args.t_min),
    }
    walls = {k: [] for k in runs}
    out = {}
    for _ in range(args.repeats):  # interleaved, so that all see the same machine state
        for k, fn in runs.items():
            t0 = time.perf_counter()
            r = fn()
            walls[k].append(time.perf_counter() - t0)
            out[k] = (r.nll, r.nfe) if k != "score_sde" else r
    wall = {k: statistics.median(v) for k, v in walls.items()}
    nll = {k: v[0] for k, v in out.items()}
    nfe = {k: v[1] for k, v in out.items()}
    row = {
        "n": args.n,
        "dim": 2,
        "dtype": "float32",
        "rtol": args.tol,
        "atol": args.tol,
        "t_min": args.t_min,
        "wall_s": wall,
        "nfe": nfe,
        "speedup_rms": wall["score_sde"] / wall["ours_rms"],
        "speedup_max": wall["score_sde"] / wall["ours_max"],
        "per_eval_ms": {k: 1e3 * wall[k] / nfe[k] for k in runs},
        "mean_nll": {**{k: float(v.mean()) for k, v in nll.items()}, "exact": float(exact.mean())},
        "max_abs_err_vs_exact": {k: float((v - exact).abs().max()) for k, v in nll.items()},
        "max_abs_diff_ours_rms_vs_score_sde": float(
            (nll["ours_rms"] - nll["score_sde"]).abs().max()
        ),
        "mean_diff_ours_rms_vs_score_sde": float((nll["ours_rms"] - nll["score_sde"]).mean()),
    }
    print(f"{'':10s} {'wall s':>8} {'NFE':>5} {'ms/eval':>8} {'mean NLL':>10} {'max|Δexact|':>12}")
    for k in runs:
        print(
            f"{k:10s} {wall[k]:8.3f} {nfe[k]:5d} {row['per_eval_ms'][k]:8.2f} "
            f"{row['mean_nll'][k]:10.5f} {row['max_abs_err_vs_exact'][k]:12.2e}"
        )
    print(
        f"exact mean NLL {row['mean_nll']['exact']:.5f}; speed-up over score_sde "
        f"{row['speedup_rms']:.2f}× (same RMS norm), {row['speedup_max']:.2f}× (max norm); "
        f"max |ours_rms − score_sde| {row['max_abs_diff_ours_rms_vs_score_sde']:.2e} nats"
    )
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
