"""How noisy the quickstart's headline "W2 = r × floor" is: the ratio's distribution over seeds
for the trained network of a quickstart run and, as the baseline measured in the same run, for
the target's exact score (a perfect score model) with the same samplers, grids and n.

Each seed draws n = 2000 samples and evaluates W2 with its floor (W2 between two independent
target samples of the same size) exactly as `scorelab quickstart` does. If the trained model's
ratios are distributed like the exact score's, a single run's ratio above 1 is the floor's own
noise (on the 8-mode ring it is dominated by the random number of points per mode), not error.

    scorelab quickstart --out runs/qs
    python benchmarks/quickstart_floor_ratio.py --run runs/qs [--seeds 10]
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import numpy as np
import torch

from scorelab.config import (
    apply_overrides,
    build,
    build_grid,
    build_score,
    parse_config,
    sampler_options,
)
from scorelab.metrics import evaluate
from scorelab.quickstart import DEFAULTS
from scorelab.sampling import generate

SAMPLERS = {"heun": ("heun", 25, "edm"), "euler_maruyama": ("euler_maruyama", 100, "uniform")}


def ratios(score_keys: list[str], sampler: tuple, seeds: int) -> np.ndarray:
    kind, steps, grid = sampler
    out = []
    for seed in range(seeds):
        sets = [f"seed={seed}", f"sampler.kind={kind}", f"sampler.steps={steps}"]
        sets.append(f"sampler.grid.kind={grid}")
        cfg = parse_config(apply_overrides(DEFAULTS, [*score_keys, *sets]))
        target, process = build(cfg)
        score = build_score(cfg, target, process)
        gen = generate(
            score, process, target.event_shape, sampler=kind, grid=build_grid(cfg.sampler),
            n=cfg.sampler.n, seed=seed, batch_size=cfg.sampler.n, dtype=torch.float32,
            **sampler_options(cfg.sampler),
        )  # fmt: skip
        ev = evaluate(
            gen.samples, target, ["w2"], n_boot=10, n_boot_ot=10,
            generator=torch.Generator().manual_seed(seed),
        )  # fmt: skip
        (w2,) = ev.results
        out.append(w2.value / w2.floor)
    return np.array(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="a `scorelab quickstart` run")
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    rows = {}
    for name, sampler in SAMPLERS.items():
        for label, keys in (
            ("exact score", ["score.kind=exact"]),
            ("trained", ["score.kind=checkpoint", f"score.path={args.run}"]),
        ):
            r = ratios(keys, sampler, args.seeds)
            rows[f"{name} / {label}"] = {
                "mean": r.mean(), "sd": r.std(ddof=1), "min": r.min(), "max": r.max(),
                "above_1.3": int((r > 1.3).sum()), "ratios": r.tolist(),
            }  # fmt: skip
            print(
                f"{name:15s} {label:12s} W2/floor over {args.seeds} seeds: mean {r.mean():.2f} "
                f"sd {r.std(ddof=1):.2f} [{r.min():.2f}, {r.max():.2f}], > 1.3 in "
                f"{(r > 1.3).sum()}/{args.seeds}",
                flush=True,
            )
    out = Path(__file__).parent / "results" / "quickstart_floor_ratio.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(rows, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
