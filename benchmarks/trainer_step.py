"""Trainer overhead: one ``Trainer.train_step`` / one step of a minimal hand-written DSM loop.

Both train the quickstart's network (MLP width 128, depth 3, ε-parameterised, on the ring8
mixture under VP cosine) with the same batch and AdamW; the hand loop draws x₀, t, z, forms
x_t, computes the s²-weighted DSM loss inline, clips the gradient norm, steps the optimiser and
updates an EMA of the weights (one fused lerp) — nothing else. The trainer adds what a real run
needs on top: the noise distribution and weighting machinery, warm-up and cosine learning rate,
the per-step seeded noise stream, the non-finite guard and the logging bookkeeping. The two are
run in alternating blocks so both see the same machine state; the reported ratio is the median
of the paired block ratios. Goal: ≤ 1.05 (issue 18). Also reported: the quickstart network's
steps per second.

    python benchmarks/trainer_step.py [--batch 512] [--block 200] [--repeats 7] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from scorelab.config import parse_config
from scorelab.pipeline import make_trainer
from scorelab.quickstart import DEFAULTS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--block", type=int, default=200, help="steps per timed block")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    cfg = dict(DEFAULTS)
    cfg["train"] = {**DEFAULTS["train"], "batch_size": args.batch, "weighting": "s2"}
    cfg["train"]["noise"] = "uniform_t"
    trainer, _ = make_trainer(parse_config(cfg), None)
    target, process = trainer.target, trainer.process

    hand_model, _ = make_trainer(parse_config(cfg), None)
    model = hand_model.model  # same architecture and initial weights
    opt = torch.optim.AdamW(model.parameters(), lr=trainer.train.lr)
    g = torch.Generator().manual_seed(0)
    params = list(model.parameters())
    ema = [p.detach().clone() for p in params]

    def hand_step() -> None:
        x0 = target.sample(args.batch, g, dtype=torch.float32)
        t = process.t_min + (process.T - process.t_min) * torch.rand(args.batch, generator=g)
        z = torch.randn(x0.shape, generator=g)
        m = process.scale(t).float()[:, None]
        s = process.std(t).float()[:, None]
        xt = m * x0 + s * z
        loss = (s**2 * (model(xt, t) + z / s) ** 2).sum(1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        with torch.no_grad():
            torch._foreach_lerp_(ema, [p.detach() for p in params], 0.01)

    def timed(step) -> float:
        t0 = time.perf_counter()
        for _ in range(args.block):
            step()
        return time.perf_counter() - t0

    timed(hand_step), timed(trainer.train_step)  # warm-up
    ratios, hand_times, trainer_times = [], [], []
    for _ in range(args.repeats):
        h = timed(hand_step)
        tr = timed(trainer.train_step)
        ratios.append(tr / h)
        hand_times.append(h / args.block)
        trainer_times.append(tr / args.block)
    result = {
        "batch": args.batch,
        "threads": args.threads,
        "ratio_median": statistics.median(ratios),
        "ratios": ratios,
        "hand_step_ms": 1e3 * statistics.median(hand_times),
        "trainer_step_ms": 1e3 * statistics.median(trainer_times),
        "quickstart_steps_per_s": 1.0 / statistics.median(trainer_times),
    }
    print(f"hand-written DSM step: {result['hand_step_ms']:.3f} ms")
    print(f"Trainer.train_step:    {result['trainer_step_ms']:.3f} ms")
    print(
        f"ratio (median of {args.repeats} paired blocks): "
        f"{result['ratio_median']:.3f}  (goal ≤ 1.05)"
    )
    print(
        f"quickstart network: {result['quickstart_steps_per_s']:.0f} steps/s at batch {args.batch}"
    )
    out = Path(__file__).parent / "results" / "trainer_step.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
