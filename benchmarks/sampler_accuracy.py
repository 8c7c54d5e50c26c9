"""Accuracy per cost: W2 to the target beside its finite-sample floor, for every sampler at
NFE ∈ {10, 20, 50, 100, 200}, with the exact score of MG25 (2-D, 25 modes, std 0.1).

W2 is exact optimal transport (POT's emd) between n generated points and n fresh target
points; the floor is the same W2 between two independent target samples of size n (mean over
``--floor-pairs`` pairs, with its spread). Writes a JSON table and a log–log plot of W2
against NFE to ``--out``.

    python benchmarks/sampler_accuracy.py [--n 2000] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import ot
import torch

from scorelab import schedules as sch
from scorelab.grids import TimeGrid
from scorelab.processes import VP
from scorelab.registry import names
from scorelab.sampling import generate
from scorelab.targets import mg25

SAMPLERS = names("sampler")

NFES = (10, 20, 50, 100, 200)
# score evaluations per step (pc: one corrector + one predictor step)
COST = {"heun": 2, "edm_stochastic": 2, "pc": 2, "rk4": 4}
DOPRI_TOL = {10: 3e-1, 20: 1e-1, 50: 1e-2, 100: 1e-3, 200: 1e-4}


def w2(a: np.ndarray, b: np.ndarray) -> float:
    cost = ot.dist(a, b)  # squared Euclidean
    return math.sqrt(ot.emd2(ot.unif(len(a)), ot.unif(len(b)), cost, numItermax=10**7))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--floor-pairs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    target, process = mg25(), VP(sch.LinearBeta())
    score = target.score_model(process)
    g = torch.Generator().manual_seed(123)
    reference = target.sample(args.n, g, dtype=torch.float64).numpy()
    floors = [
        w2(
            target.sample(args.n, g, dtype=torch.float64).numpy(),
            target.sample(args.n, g, dtype=torch.float64).numpy(),
        )
        for _ in range(args.floor_pairs)
    ]
    floor, floor_sd = float(np.mean(floors)), float(np.std(floors))
    print(f"floor W2 (n = {args.n}): {floor:.4f} ± {floor_sd:.4f}", flush=True)

    rows = []
    for kind in SAMPLERS:
        for nfe in NFES:
            params = {}
            if kind == "dopri5":
                params = {"rtol": DOPRI_TOL[nfe], "atol": DOPRI_TOL[nfe]}
                steps = 1
            else:
                steps = max(1, nfe // COST.get(kind, 1))
            grid = TimeGrid("edm", steps=steps)
            res = generate(
                score,
                process,
                (2,),
                sampler=kind,
                grid=grid,
                n=args.n,
                seed=7,
                dtype=torch.float64,
                **params,
            )
            value = w2(res.samples.numpy(), reference)
            rows.append(
                {
                    "sampler": kind,
                    "target_nfe": nfe,
                    "nfe": res.nfe,
                    "w2": value,
                    "ratio_to_floor": value / floor,
                }
            )
            print(
                f"{kind:24s} NFE {res.nfe:4d}  W2 {value:.4f}  ({value / floor:5.2f}× floor)",
                flush=True,
            )

    best = min((r for r in rows if r["nfe"] <= 20), key=lambda r: r["ratio_to_floor"])
    print(
        f"best at ≤ 20 NFE: {best['sampler']} with NFE {best['nfe']}: "
        f"{best['ratio_to_floor']:.2f}× floor (goal ≤ 1.10)"
    )
    (args.out / "sampler_accuracy.json").write_text(
        json.dumps({"floor": floor, "floor_sd": floor_sd, "n": args.n, "rows": rows}, indent=1)
    )

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), constrained_layout=True)
    for kind in SAMPLERS:
        pts = sorted((r["nfe"], r["w2"]) for r in rows if r["sampler"] == kind)
        ax.plot(*zip(*pts, strict=True), marker="o", ms=3, label=kind)
    ax.axhspan(floor - floor_sd, floor + floor_sd, color="grey", alpha=0.3)
    ax.axhline(floor, color="k", ls="--", lw=1, label=f"floor (n = {args.n})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("score evaluations (NFE)")
    ax.set_ylabel("W2 to MG25")
    ax.set_title("Exact-score sampling of MG25 under VP (EDM ρ = 7 grid)")
    ax.legend(fontsize=7, ncol=2)
    fig.savefig(args.out / "sampler_accuracy.png", dpi=120)
    print(f"plot: {args.out / 'sampler_accuracy.png'}")


if __name__ == "__main__":
    main()
