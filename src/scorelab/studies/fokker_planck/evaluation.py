"""One arm of a seed evaluated on held-out points, twice: the relative score-FPE residual and
conservativity on two independent draws of p_t, the PF-ODE NLL per point on two independent
held-out draws (the claims use the first; the second fixes the paired-noise margins), the
escaped trajectories of the first draw, the ‖x‖ profile along the PF-ODE, and W2 of Heun
samples against the shared reference. Every arm of a seed sees the same draws (generators
seeded alike).
"""

from __future__ import annotations

import math

import torch

from ...diagnostics import log_sigma_times
from ...divergence import conservativity
from ...fokker_planck import residual_profile
from ...grids import TimeGrid
from ...likelihood import bits_per_dim, pf_ode_nll
from ...metrics.transport import w2
from ..common import draw_samples
from .data import HeldOut
from .settings import DIGIT_LEVELS, ESCAPE_THRESHOLD, ESCAPE_WORST, EXACT_MAX_DIM

N_TIMES = 8  # the residual's and NC's grid, spread evenly in log σ
N_TRAJECTORY_TIMES = 12  # where the PF-ODE's ‖x‖ profile is read


def field_checks(model, law, process, size: dict, g: torch.Generator) -> dict:
    """The relative residual ρ(t) and E‖ε‖²/D on the log-σ grid (summaries: their means over
    the grid), and NC = E‖J − Jᵀ‖²/E‖J‖² at the same times, on one draw of each p_t."""
    small = law.dim <= EXACT_MAX_DIM
    times = log_sigma_times(process, N_TIMES)
    profile = residual_profile(
        model, process, law, times, n=size["n_residual"], generator=g, dtype=torch.float64,
        div="exact" if small else "hutchinson", n_probes=1 if small else 4,
    )  # fmt: skip
    k = len(profile)
    ratios, ses = [], []
    for t in times:
        x0 = law.sample(size["n_conservativity"], g, dtype=torch.float64)
        x = process.perturb(x0, t, torch.randn(x0.shape, generator=g, dtype=torch.float64))
        tt = torch.full((x.shape[0],), t, dtype=torch.float64)
        nc = conservativity(
            lambda y, tt=tt: model(y, tt), x, method="exact" if small else "probes",
            n_probes=4, generator=g,
        )  # fmt: skip
        ratios.append(nc.ratio)
        ses.append(nc.stderr)
    return {
        "relative": sum(p.relative for p in profile) / k,
        "relative_hw": math.sqrt(sum(p.relative_half_width**2 for p in profile)) / k,
        "residual": sum(p.mean for p in profile) / k,
        "residual_hw": math.sqrt(sum(p.half_width**2 for p in profile)) / k,
        "profile": [
            {
                "t": p.t,
                "sigma": float(process.sigma(p.t)),
                "value": p.mean,
                "relative": p.relative,
            }
            for p in profile
        ],
        "conservativity": sum(ratios) / len(ratios),
        "conservativity_se": math.sqrt(sum(s**2 for s in ses)) / len(ses),
    }


def escape_summary(x_T: torch.Tensor, nll: torch.Tensor, process) -> dict:
    """The PF-ODE end points far outside the prior: q = ‖x_T‖²/(D σ_T²) above
    ESCAPE_THRESHOLD (σ_T the prior's standard deviation; q ~ χ²_D/D under the prior), their
    fraction, the largest q, and the worst points (index in the draw, q, NLL)."""
    flat = x_T.reshape(x_T.shape[0], -1).double()
    q = flat.pow(2).mean(1) / process.prior_std**2
    escaped = (q > ESCAPE_THRESHOLD).nonzero().flatten()
    order = escaped[torch.argsort(q[escaped], descending=True)][:ESCAPE_WORST]
    return {
        "threshold": ESCAPE_THRESHOLD,
        "fraction": float(escaped.numel()) / q.numel(),
        "max_q": float(q.max()),
        "worst": [{"index": int(i), "q": float(q[i]), "nll": float(nll[i])} for i in order],
    }


def trajectory_profile(model, process, x0: torch.Tensor, rtol: float) -> list[dict]:
    """The PF-ODE dx/dt = f x − ½g² s_θ integrated from the points x0 at t_min (dopri5), and
    ‖x(t)‖/(√D·scale(t)) read at times spread in log σ: its median and maximum over the points.
    scale(t)² = m(t)²·v + s(t)², v the points' mean square per coordinate, is the marginal's
    second moment per coordinate, so a flow that keeps its points on p_t reads ≈ 1 at every t
    (under VE at σ ≫ the data's scale it is ‖x‖/(σ√D)); an escaping flow grows without bound."""
    from torchdiffeq import odeint

    B = x0.shape[0]
    flat = x0.reshape(B, -1).double()
    D = flat.shape[1]
    v = float(flat.pow(2).mean())
    times = log_sigma_times(process, N_TRAJECTORY_TIMES)
    ts = torch.tensor(times, dtype=torch.float64)

    def field(t, x):
        # dopri5's initial-step heuristic may probe beyond T: continue the field constantly
        t = t.clamp(max=process.T)
        tt = t.expand(B)
        s = model(x.reshape(x0.shape), tt).reshape(B, -1)
        return process.drift_coef(t) * x - 0.5 * process.diffusion2(t) * s

    with torch.no_grad():
        xs = odeint(field, flat, ts, rtol=rtol, atol=rtol, method="dopri5")
    out = []
    for t, x in zip(times, xs, strict=True):
        tt = torch.tensor(t, dtype=torch.float64)
        scale = math.sqrt(float(process.scale(tt)) ** 2 * v + float(process.variance(tt)))
        r = x.norm(dim=1) / (math.sqrt(D) * scale)
        out.append({"t": t, "sigma": float(process.sigma(tt)), "median": float(r.median()),
                    "max": float(r.max())})  # fmt: skip
    return out


def held_out_nll(model, process, held: HeldOut, size: dict, seeds: dict) -> list[dict]:
    """Per draw k ∈ {0, 1}: the PF-ODE NLL of each of n held-out points (nats, dopri5, exact
    trace up to EXACT_MAX_DIM, one Hutchinson probe above), with the points and end points."""
    out = []
    for k in (0, 1):
        g = torch.Generator().manual_seed(seeds[("nll", "nll2")[k]])
        x0 = held.draw(k, size["n_nll"], g)
        res = pf_ode_nll(
            model, process, x0, rtol=size["nll_tol"], atol=size["nll_tol"],
            trace="exact" if x0[0].numel() <= EXACT_MAX_DIM else "hutchinson", n_probes=1,
            generator=g,
        )  # fmt: skip
        out.append({"x0": x0, "nll": res.nll.double(), "x_T": res.x_T, "nfe": res.nfe,
                    "t_min": res.t_min})  # fmt: skip
    return out


def evaluate_arm(
    model, held: HeldOut, process, size: dict, seeds: dict, reference: torch.Tensor
) -> tuple[dict, list[torch.Tensor]]:
    """The arm's JSON row, and its per-point NLLs on the two held-out draws (for the paired
    differences, kept out of the row)."""
    law = held.target
    model.double()
    row = field_checks(model, law, process, size, torch.Generator().manual_seed(seeds["eval"]))
    again = field_checks(model, law, process, size, torch.Generator().manual_seed(seeds["eval2"]))
    row["redraw"] = {k: again[k] for k in ("relative", "conservativity", "profile")}
    draws = held_out_nll(model, process, held, size, seeds)
    nll = draws[0]["nll"]
    row.update(
        nll=float(nll.mean()), nll_median=float(nll.median()),
        nll_se=float(nll.std()) / math.sqrt(nll.numel()), nll_nfe=draws[0]["nfe"],
        escape=escape_summary(draws[0]["x_T"], nll, process),
        trajectory=trajectory_profile(
            model, process, draws[0]["x0"][: size["n_trajectory"]], size["nll_tol"]
        ),
    )  # fmt: skip
    model.float()
    samples = draw_samples(
        model, process, law.event_shape, sampler="heun",
        grid=TimeGrid(kind="edm", steps=size["sampler_steps"]), n=size["n_samples"],
        seed=seeds["sampler"],
    )  # fmt: skip
    row["w2"] = w2(samples.reshape(samples.shape[0], -1), reference, max_points=None)
    if law.has_score:  # closed-form noised marginals: the exact NLL at the same points
        x0, t_min = draws[0]["x0"], draws[0]["t_min"]
        row["nll_exact"] = float(-law.log_prob_t(x0, t_min, process).double().mean())
    if held.rows is not None:  # the dequantised digits: bits/dim of the mean and the median
        for key in ("nll", "nll_median"):
            row[key.replace("nll", "bits_per_dim")] = float(
                bits_per_dim(row[key], law.dim, data_range="[-1,1]", levels=DIGIT_LEVELS)
            )
    return row, [d["nll"] for d in draws]
