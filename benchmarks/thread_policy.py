"""Thread policy under contention: training steps per second with torch's default threads and
with scorelab's policy (one thread for the quickstart MLP), idle and beside busy processes.

The quickstart's network and batch (MLP 128×3 on the 8-mode ring, batch 512), trained for
``--steps`` steps in a fresh subprocess per measurement (so each starts from torch's default
thread count); the contention is ``--busy`` pure-Python spinning processes started by this
script. Goal (issue 18): under contention, the policy keeps ≥ 0.5 × its idle step rate.

    python benchmarks/thread_policy.py [--steps 600] [--busy 3]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import subprocess
import sys

CHILD = r"""
import sys, time, torch
from scorelab import threads
from scorelab.config import parse_config
from scorelab.pipeline import make_trainer
from scorelab.quickstart import DEFAULTS
policy = sys.argv[1] == "policy"
steps = int(sys.argv[2])
if not policy:
    import os
    os.environ["SCORELAB_THREADS"] = str(torch.get_num_threads())  # torch's own default
cfg = dict(DEFAULTS)
cfg["train"] = {**DEFAULTS["train"], "steps": steps, "log_every": steps}
trainer, _ = make_trainer(parse_config(cfg), None)
t0 = time.perf_counter()
for _ in range(steps):
    trainer.train_step()
print(steps / (time.perf_counter() - t0), torch.get_num_threads())
"""


def _spin(stop) -> None:
    x = 0
    while not stop.is_set():
        x = (x * 31 + 7) % 1_000_003


def _rate(mode: str, steps: int) -> tuple[float, int]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(steps)], capture_output=True, text=True, check=True
    ).stdout.split()
    return float(out[0]), int(out[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--busy", type=int, default=3)
    args = parser.parse_args()
    rates = {}
    for mode in ("default", "policy"):
        rates[f"{mode}, idle"] = _rate(mode, args.steps)
    stop = mp.Event()
    spinners = [mp.Process(target=_spin, args=(stop,)) for _ in range(args.busy)]
    for p in spinners:
        p.start()
    try:
        for mode in ("default", "policy"):
            rates[f"{mode}, {args.busy} busy"] = _rate(mode, args.steps)
    finally:
        stop.set()
        for p in spinners:
            p.join()
    busy = f"{args.busy} busy"
    result = {
        "steps_per_s": {k: round(v[0], 1) for k, v in rates.items()},
        "threads": {k: v[1] for k, v in rates.items()},
        "policy_busy_over_idle": rates[f"policy, {busy}"][0] / rates["policy, idle"][0],
        "default_busy_over_idle": rates[f"default, {busy}"][0] / rates["default, idle"][0],
        "goal": "policy_busy_over_idle ≥ 0.5",
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
