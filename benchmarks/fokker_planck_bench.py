"""Cost of an FP-regularised training step relative to a plain DSM step.

One step = loss forward + backward + AdamW update, on ``scorelab.networks.MLP`` (width 128,
3 hidden SiLU layers, sinusoidal time embedding; a local MLP of the same shape if that module is
missing) wrapped as a score model, batch 256, VP linear schedule, float32, CPU, ``--threads``
torch threads (default 1: on a shared machine two threads made timings swing by 10×). The
steps are timed interleaved in every round so that all see the same machine state:

* ``dsm``: ``losses.dsm_loss`` (likelihood weighting);
* ``ours``: ``fokker_planck.fp_dsm_loss`` (α = 0.15, likelihood weighting, evaluated at the
  DSM points): exact divergence in d = 2, Hutchinson (1 Rademacher probe) in d = 64, exact
  ∂_t s by AD (``dt="forward"``);
* ``ours_alt``: the other natural setting — d = 2: Hutchinson with 1 probe (like for like with
  the published recipe); d = 64: Hutchinson with ∂_t s by finite differences (``dt="fd"``);
* ``published``: the recipe of the FP-Diffusion code written out here (sony/fp-diffusion
  ``losses.py``/``sde_lib.py``/``diff.py``): DSM, then a fresh score evaluation, Hutchinson
  with 1 Gaussian probe by ``autograd.grad(create_graph=True)``, ∇φ by a second
  ``autograd.grad(create_graph=True)`` (third-order autograd once the training backward runs)
  and the asymmetric second-order finite difference in t (hs = 1e-3, hd = 5e-4).

Reported: median wall time per step over the rounds and the ratios to DSM. Goal: ours ≤ 4×
DSM in d = 2.

    python benchmarks/fokker_planck_bench.py [--dims 2 64] [--rounds 100] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch
from torch import nn

from scorelab import schedules as sch
from scorelab.fokker_planck import fp_dsm_loss
from scorelab.losses import dsm_loss, sample_times
from scorelab.parameterisations import ScoreNetwork
from scorelab.processes import VP

RESULTS = Path(__file__).parent / "results"


class _MLP(nn.Module):
    """(x, c_noise) → like x: an MLP on [x, c] with SiLU (fallback when scorelab.networks
    does not provide one)."""

    def __init__(self, dim: int, width: int = 128, depth: int = 3):
        super().__init__()
        layers, d_in = [], dim + 1
        for _ in range(depth):
            layers += [nn.Linear(d_in, width), nn.SiLU()]
            d_in = width
        layers.append(nn.Linear(width, dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x, c):
        c = c.expand(x.shape[0]) if c.ndim == 0 else c
        return self.net(torch.cat([x, c[:, None].to(x.dtype)], 1))


def make_network(dim: int, width: int) -> tuple[nn.Module, str]:
    try:  # the library's MLP
        from scorelab.networks import MLP

        return MLP((dim,), width=width, depth=3), f"scorelab.networks.MLP(width={width})"
    except ImportError:
        return _MLP(dim, width), f"benchmark _MLP (width {width}, 3 hidden layers, SiLU)"


def published_fp_loss(model, x0, process, gen, alpha=0.15, hs=1e-3, hd=5e-4):
    """DSM + α·(vector FP term) exactly as the FP-Diffusion code computes it (scalar term off,
    likelihood weighting, m = 2, normalised by D²)."""
    B = x0.shape[0]
    t = sample_times(process, B, gen).to(x0.dtype)
    z = torch.randn(x0.shape, generator=gen, dtype=x0.dtype)
    std = process.std(t)[:, None]
    xt = process.scale(t)[:, None] * x0 + std * z
    g2 = process.diffusion2(t)
    f = process.drift_coef(t)
    dsm = g2 * (model(xt, t) + z / std).pow(2).sum(1)
    x = xt.detach().requires_grad_(True)
    s = model(x, t)
    eps = torch.randn(x.shape, generator=gen, dtype=x.dtype)  # hutch_div: its own evaluation
    (g,) = torch.autograd.grad((model(x, t) * eps).sum(), x, create_graph=True)
    div = (g * eps).sum(1)
    phi = 0.5 * g2 * (div + s.pow(2).sum(1)) - f * (x * s).sum(1)
    (rhs,) = torch.autograd.grad(phi.sum(), x, create_graph=True)
    num = hs**2 * model(x, t + hd) + (hd**2 - hs**2) * model(x, t) - hd**2 * model(x, t - hs)
    dsdt = num / (hs * hd * (hd + hs))
    vec = g2 * (dsdt - rhs).pow(2).sum(1) / x.shape[1] ** 2
    return dsm + alpha * vec


def run(dim: int, rounds: int, batch: int, width: int) -> dict:
    torch.manual_seed(0)
    process = VP(sch.LinearBeta())
    net, net_name = make_network(dim, width)
    model = ScoreNetwork(net, process, "score")
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    gen = torch.Generator().manual_seed(1)
    div = "exact" if dim <= 8 else "hutchinson"

    def dsm(x0):
        return dsm_loss(model, x0, process, gen, weighting="g2")

    def ours(x0):
        return fp_dsm_loss(model, x0, process, gen, weighting="g2", alpha=0.15, div=div)

    alt = {"div": "hutchinson"} if div == "exact" else {"div": "hutchinson", "dt": "fd"}

    def ours_alt(x0):
        return fp_dsm_loss(model, x0, process, gen, weighting="g2", alpha=0.15, **alt)

    def published(x0):
        return published_fp_loss(model, x0, process, gen)

    steps = {"dsm": dsm, "ours": ours, "ours_alt": ours_alt, "published": published}

    def step(fn) -> float:
        x0 = torch.randn(batch, dim, generator=gen)
        t0 = time.perf_counter()
        loss = fn(x0).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return time.perf_counter() - t0

    for fn in steps.values():  # warm-up
        for _ in range(3):
            step(fn)
    times = {k: [] for k in steps}
    for _ in range(rounds):
        for k, fn in steps.items():
            times[k].append(step(fn))
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "dim": dim,
        "batch": batch,
        "width": width,
        "network": net_name,
        "ours": {"div": div, "dt": "forward"},
        "ours_alt": {"dt": "forward", **alt},
        "step_s": med,
        "ratio_to_dsm": {k: med[k] / med["dsm"] for k in steps},
        "published_over_ours": med["published"] / med["ours"],
        "published_over_ours_alt": med["published"] / med["ours_alt"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", type=int, nargs="+", default=[2, 64])
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS / "fokker_planck_bench.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = [run(d, args.rounds, args.batch, args.width) for d in args.dims]
    print(f"{'d':>4} {'step':>10} {'setting':>24} {'ms':>8} {'× DSM':>7}")
    for r in rows:
        for k, ms in r["step_s"].items():
            setting = {
                "dsm": "g² weighting",
                "ours": f"div={r['ours']['div']}, dt=forward",
                "ours_alt": f"div=hutchinson, dt={r['ours_alt']['dt']}",
                "published": "hutch-1, 3rd-order AD, FD",
            }[k]
            print(
                f"{r['dim']:>4} {k:>10} {setting:>24} {ms * 1e3:8.2f} {r['ratio_to_dsm'][k]:7.2f}"
            )
    meta = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "dtype": "float32",
        "device": "cpu",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
