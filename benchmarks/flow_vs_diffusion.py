"""Rectified flow against VP-cosine and EDM: exact error against NFE under the exact score, and
a trained comparison at an equal budget with paired confidence intervals over seeds.

Part 1 (exact, no sampling noise): on N(μ, Λ) in d = 8 (eigenvalues log-spaced in
[0.05, 4], means ±1), the output law of Euler and Heun with the exact score is Gaussian and
known in closed form (``scorelab.oracles.sampler_moments`` for VP and EDM, the velocity-form
``scorelab.flow_sampling.sampler_moments`` for rectified flow, which starts at t = 1 where f and
g² are infinite). Each design uses its standard grid — rectified flow uniform in t (diffusers'
FlowMatchEuler with shift 1) and shifted by 3 (SD3), VP-cosine (clip_max 20) uniform in t,
EDM ρ = 7 in σ on [0.002, 80] — each ending with the step to t = 0, from its own prior
(exact for rectified flow; N(0, 1) against p_T for VP, N(0, 80²) for EDM). KL(target ‖ output)
and W2 in closed form, at NFE ≈ 5 … 200.

Part 2 (trained, equal budget): the 8-mode ring, the same MLP (width 128, depth 3), steps,
batch and learning rate for three recipes — rectified flow trained by CFM (logit-normal t,
'flow' output), VP-cosine by DSM (the quickstart's recipe: ε output, log-normal σ, λ_EDM),
EDM by DSM (EDM's recipe) — each sampled with Heun at 49-50 NFE from the same per-sample
noise, W2 against the same reference sample (its floor is shared), per seed. Paired
differences RF − VP and RF − EDM with 95 % t intervals over seeds (``scorelab.verdicts``), and
each recipe's trained − exact-score W2 (the same sampler, grid, noise and reference: what the
training leaves), paired the same way.

    python benchmarks/flow_vs_diffusion.py [--seeds 3] [--steps 1500] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
from pathlib import Path

import numpy as np
import torch

from scorelab import flow_sampling, oracles
from scorelab.config import build_grid, build_process, build_target, parse_config
from scorelab.grids import TimeGrid
from scorelab.metrics.gaussian import kl_gaussians, w2_gaussians
from scorelab.sampling import generate
from scorelab.velocity import exact_velocity
from scorelab.verdicts import mean_ci, paired_effect

F64 = torch.float64
D = 8
LAM = np.logspace(math.log10(0.05), math.log10(4.0), D)
MU = np.where(np.arange(D) % 2 == 0, 1.0, -1.0)
STEPS = (3, 5, 10, 25, 50, 100)  # steps, the last one to t = 0 included

DESIGNS = {
    "rectified_flow": {"process": {"kind": "rectified_flow"}, "grid": ("uniform", {})},
    "rectified_flow_shift3": {
        "process": {"kind": "rectified_flow"},
        "grid": ("shifted", {}),
    },
    "vp_cosine": {
        "process": {"kind": "vp", "schedule": {"kind": "cosine", "clip_max": 20.0}},
        "grid": ("uniform", {}),
    },
    "edm": {"process": {"kind": "edm"}, "grid": ("edm", {})},
}


# --------------------------------------------------------------------------------------------
# part 1: exact error against NFE
# --------------------------------------------------------------------------------------------


def _times(design: dict, process, steps: int) -> list[float]:
    kind, params = design["grid"]
    grid = TimeGrid(kind, steps=steps - 1, **params)
    return [*grid.times(process).tolist(), 0.0]


def _law(name: str, process, kind: str, times: list[float]):
    if name.startswith("rectified_flow"):
        return flow_sampling.sampler_moments(kind, process, times, LAM, MU)
    return oracles.sampler_moments(kind, process, times, LAM, MU)


def exact_table() -> list[dict]:
    rows = []
    for name, design in DESIGNS.items():
        process = build_process(design["process"])
        for kind in ("ode_euler", "heun"):
            for steps in STEPS:
                times = _times(design, process, steps)
                mean, var = _law(name, process, kind, times)
                nfe = steps if kind == "ode_euler" else 2 * steps - 1
                kl = kl_gaussians(MU, np.diag(LAM), mean, np.diag(var))
                w2 = w2_gaussians(mean, np.diag(var), MU, np.diag(LAM))
                rows.append({"design": name, "sampler": kind, "nfe": nfe, "kl": kl, "w2": w2})
    return rows


# --------------------------------------------------------------------------------------------
# part 2: trained at an equal budget
# --------------------------------------------------------------------------------------------

RING = {"kind": "gmm", "preset": "ring8", "radius": 2.0, "std": 0.2}
NETWORK = {"kind": "mlp", "width": 128, "depth": 3}
RECIPES = {
    "rectified_flow": {
        "process": {"kind": "rectified_flow"},
        "network": {**NETWORK, "parameterisation": "flow"},
        "train": {"loss": "cfm", "noise": "logit_normal", "weighting": "none"},
        "sampler": {"kind": "heun", "steps": 25, "grid": {"kind": "uniform", "t_min": 0.0}},
    },
    "vp_cosine": {
        "process": {"kind": "vp", "schedule": {"kind": "cosine", "clip_max": 20.0}},
        "network": {**NETWORK, "parameterisation": "eps"},
        "train": {"loss": "dsm", "noise": "lognormal", "weighting": "edm"},
        "sampler": {"kind": "heun", "steps": 25, "grid": {"kind": "edm"}},
    },
    "edm": {
        "process": {"kind": "edm"},
        "network": {**NETWORK, "parameterisation": "edm"},
        "train": {"loss": "dsm", "noise": "lognormal", "weighting": "edm"},
        "sampler": {"kind": "heun", "steps": 25, "grid": {"kind": "edm"}},
    },
}


def _config(recipe: dict, seed: int, steps: int, n: int) -> dict:
    train = {
        "steps": steps,
        "batch_size": 512,
        "lr": 0.003,
        "warmup": 100,
        "ema_half_life": 200,
        "log_every": 100,
        "checkpoint_every": steps,
        **recipe["train"],
    }
    return {
        "seed": seed,
        "target": RING,
        "process": recipe["process"],
        "network": recipe["network"],
        "train": train,
        "sampler": {**recipe["sampler"], "n": n},
        "run": {"metrics": ["w2"], "n_boot": 10, "bounds": False, "diagnose": False},
    }


def _w2(outcome) -> tuple[float, float]:
    m = next(r for r in outcome.evaluation.results if r.name == "w2")
    return float(m.value), float(m.floor)


def _exact_w2(cfg, seed: int) -> float:
    """W2 of the exact score with the recipe's sampler, grid, seed and reference sample."""
    from scorelab.config import build_score
    from scorelab.pipeline import evaluate_with

    target, process = build_target(cfg.target, cfg.seed), build_process(cfg.process)
    score = build_score(cfg, target, process)
    if process.kind == "rectified_flow":
        score = exact_velocity(target, process)
    g = generate(
        score,
        process,
        target.event_shape,
        sampler=cfg.sampler.kind,
        grid=build_grid(cfg.sampler),
        n=cfg.sampler.n,
        seed=seed,
    )
    ev = evaluate_with(cfg, g.samples, target)
    return next(float(r.value) for r in ev.results if r.name == "w2")


def trained_table(seeds: int, steps: int, n: int) -> dict:
    from scorelab.pipeline import run

    per = {name: {"w2": [], "floor": [], "nfe": None, "exact": []} for name in RECIPES}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(seeds):
            for name, recipe in RECIPES.items():
                cfg = parse_config(_config(recipe, seed, steps, n))
                result = run(cfg, Path(tmp) / f"{name}-{seed}", progress=False, log=lambda *_: None)
                w2, floor = _w2(result.outcomes[0])
                per[name]["w2"].append(w2)
                per[name]["floor"].append(floor)
                per[name]["nfe"] = result.outcomes[0].nfe
                per[name]["exact"].append(_exact_w2(cfg, seed))
    out = {"per_design": {}, "paired": {}}
    for name, d in per.items():
        mean, lo, hi = mean_ci(d["w2"])
        ratio = np.array(d["w2"]) / np.array(d["floor"])
        out["per_design"][name] = {
            "nfe": d["nfe"],
            "w2": d["w2"],
            "w2_mean_ci": [mean, lo, hi],
            "ratio_to_floor": ratio.tolist(),
            "exact_score_w2": d["exact"],
            "floor": d["floor"],
        }
    for other in ("vp_cosine", "edm"):
        eff = paired_effect(per["rectified_flow"]["w2"], per[other]["w2"])
        out["paired"][f"rectified_flow - {other}"] = eff.to_json()
    for name, d in per.items():  # the training's share: trained − exact score, same draws
        out["paired"][f"{name}: trained - exact"] = paired_effect(d["w2"], d["exact"]).to_json()
    return out


# --------------------------------------------------------------------------------------------


def _print_exact(rows: list[dict]) -> None:
    print("\nexact score, N(μ, Λ) in d = 8: KL(target ‖ output) / W2")
    print(f"{'design':24s} {'sampler':9s} {'NFE':>5s} {'KL':>9s} {'W2':>9s}")
    for r in rows:
        print(f"{r['design']:24s} {r['sampler']:9s} {r['nfe']:5d} {r['kl']:9.3g} {r['w2']:9.3g}")


def _r(values) -> list[float]:
    return [round(v, 4) for v in values]


def _print_trained(res: dict) -> None:
    print("\ntrained, equal budget, ring8, Heun:")
    for name, d in res["per_design"].items():
        m, lo, hi = d["w2_mean_ci"]
        print(
            f"{name:16s} NFE {d['nfe']:3d}  W2 {m:.4f} [{lo:.4f}, {hi:.4f}]  "
            f"per seed {_r(d['w2'])}  exact score {_r(d['exact_score_w2'])}  floor {_r(d['floor'])}"
        )
    for k, e in res["paired"].items():
        print(
            f"{k}: {e['value']:+.4f} [{e['ci'][0]:+.4f}, {e['ci'][1]:+.4f}] over {e['seeds']} seeds"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=1500, help="training steps per design")
    parser.add_argument("--n", type=int, default=2000, help="samples per design and seed")
    parser.add_argument("--skip-trained", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = exact_table()
    _print_exact(rows)
    result = {"exact": rows}
    if not args.skip_trained:
        result["trained"] = trained_table(args.seeds, args.steps, args.n)
        _print_trained(result["trained"])
    path = args.out / "flow_vs_diffusion.json"
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
