"""One cell per (data set, process, seed): a DSM checkpoint, its continuation by DSM and by
DSM + FP at each α on the same data, times and noise, and every arm evaluated on the same
points.
"""

from __future__ import annotations

import math

import torch

from ...diagnostics import log_sigma_times
from ...divergence import conservativity
from ...fokker_planck import fp_regulariser, residual_profile
from ...grids import TimeGrid
from ...likelihood import bits_per_dim, pf_ode_nll
from ...losses import dsm_loss, sample_times
from ...metrics.transport import w2
from ..common import Study, draw_samples, train_score_model
from .data import DATA, DequantisedDigits, build_setting
from .settings import DIGIT_LEVELS, EXACT_MAX_DIM, paper_equivalent_alpha, settings_for

STREAMS = ("init", "pretrain", "ratio", "finetune", "eval", "sampler", "reference", "floor")


def start_ratio(model, target, process, size: dict, seed: int) -> float:
    """E[g²‖ε‖²/D] / E[g²‖s_θ + z/s‖²] of the checkpoint on one batch (uniform t, the DSM
    term's own perturbed points): the FP/DSM loss ratio at the start of fine-tuning per unit
    α (the ratio at α is α times it)."""
    g = torch.Generator().manual_seed(seed)
    n = size["n_ratio"]
    x0 = target.sample(n, g)
    t = sample_times(process, n, g, "uniform_t")
    z = torch.randn(x0.shape, generator=g)
    dsm = dsm_loss(model, x0, process, g, weighting="g2", t=t, z=z).detach().double()
    fp = (
        fp_regulariser(
            model, x0, process, g, alpha=1.0, weighting="likelihood", div=size["div"], t=t, z=z
        )
        .detach()
        .double()
    )
    return float(fp.mean() / dsm.mean())


def evaluate_arm(model, target, process, size: dict, seeds: dict, reference: torch.Tensor) -> dict:
    """The arm's residual profile, conservativity, PF-ODE NLL and W2 — on the same points,
    probes and prior draws for every arm of a seed (generators seeded alike)."""
    small = target.dim <= EXACT_MAX_DIM
    model.double()
    g = torch.Generator().manual_seed(seeds["eval"])
    times = log_sigma_times(process, 8)
    profile = residual_profile(
        model, process, target, times, n=size["n_residual"], generator=g, dtype=torch.float64,
        div="exact" if small else "hutchinson", n_probes=1 if small else 4,
    )  # fmt: skip
    residual = sum(p.mean for p in profile) / len(profile)
    residual_hw = math.sqrt(sum(p.half_width**2 for p in profile)) / len(profile)
    ratios, ses = [], []
    for t in times:
        x0 = target.sample(size["n_conservativity"], g, dtype=torch.float64)
        x = process.perturb(x0, t, torch.randn(x0.shape, generator=g, dtype=torch.float64))
        tt = torch.full((x.shape[0],), t, dtype=torch.float64)
        nc = conservativity(
            lambda y, tt=tt: model(y, tt), x, method="exact" if small else "probes",
            n_probes=4, generator=g,
        )  # fmt: skip
        ratios.append(nc.ratio)
        ses.append(nc.stderr)
    x0 = target.sample(size["n_nll"], g, dtype=torch.float64)
    res = pf_ode_nll(
        model, process, x0, rtol=size["nll_tol"], atol=size["nll_tol"],
        trace="exact" if small else "hutchinson", n_probes=1, generator=g,
    )  # fmt: skip
    nll = res.nll.double()
    model.float()
    samples = draw_samples(
        model, process, target.event_shape, sampler="heun",
        grid=TimeGrid(kind="edm", steps=size["sampler_steps"]), n=size["n_samples"],
        seed=seeds["sampler"],
    )  # fmt: skip
    out = {
        "residual": residual,
        "residual_hw": residual_hw,
        "profile": [
            {"t": p.t, "sigma": float(process.sigma(p.t)), "value": p.mean} for p in profile
        ],
        "conservativity": sum(ratios) / len(ratios),
        "conservativity_se": math.sqrt(sum(s**2 for s in ses)) / len(ses),
        "nll": float(nll.mean()),
        "nll_se": float(nll.std()) / math.sqrt(nll.numel()),
        "nll_nfe": res.nfe,
        "w2": w2(samples.reshape(samples.shape[0], -1), reference, max_points=None),
    }
    if target.has_score:  # closed-form noised marginals: the exact NLL at the same points
        out["nll_exact"] = float(-target.log_prob_t(x0, res.t_min, process).double().mean())
    if isinstance(target, DequantisedDigits):
        out["bits_per_dim"] = float(
            bits_per_dim(out["nll"], target.dim, data_range="[-1,1]", levels=DIGIT_LEVELS)
        )
    return out


def fp_cell(data: str, process: str, seed: int, quick: bool, streams: dict) -> dict:
    """Pre-train one DSM checkpoint, continue it with each arm, evaluate every arm (a study
    cell: JSON-able arguments and result)."""
    st = settings_for(quick)
    size = st[data]
    target, proc, sigma_data = build_setting(data, process, streams["pretrain"])
    dim = target.dim
    network = DATA[data]["network"]
    common = {"network": network, "parameterisation": "eps", "sigma_data": sigma_data}
    pre = train_score_model(
        target, proc, train=size["pretrain"], seed=streams["pretrain"],
        init_seed=streams["init"], **common,
    )  # fmt: skip
    start = {k: v.clone() for k, v in pre.trainer.ema.items()}
    unit_ratio = start_ratio(pre.model, target, proc, size, streams["ratio"])

    ref_gen = torch.Generator().manual_seed(streams["reference"])
    n = size["n_samples"]
    reference = target.sample(n, ref_gen, dtype=torch.float64).reshape(n, -1)
    floor_gen = torch.Generator().manual_seed(streams["floor"])
    floors = [
        w2(target.sample(n, floor_gen, dtype=torch.float64).reshape(n, -1), reference,
           max_points=None)
        for _ in range(size["n_floor"])
    ]  # fmt: skip

    def arm(loss: str, alpha: float = 0.0, **train) -> dict:
        """Continue the checkpoint with ``loss`` (same data, times, noise) and evaluate it."""
        cfg = {**size["finetune"], "loss": loss, "noise": "uniform_t", "weighting": "g2",
               **train}  # fmt: skip
        if loss == "fp_dsm":
            cfg["loss"] = {"kind": "fp_dsm", "alpha": alpha, "fp_weighting": "likelihood",
                           "points": "perturbed", "div": size["div"], "n_probes": 1}  # fmt: skip
        fitted = train_score_model(
            target, proc, train=cfg, seed=streams["finetune"], start=start, **common
        )
        row = evaluate_arm(fitted.model, target, proc, size, streams, reference)
        row["seconds"] = fitted.result.seconds
        return row

    alpha_star = paper_equivalent_alpha(process, dim)
    out = {
        "dim": dim,
        "sigma_data": sigma_data,
        "alpha_star": alpha_star,
        "unit_ratio": unit_ratio,
        "pretrain_seconds": pre.result.seconds,
        "w2_floors": floors,
        "dsm": arm("dsm"),
        "fp": [
            {"alpha": alpha_star * f, "factor": f, **arm("fp_dsm", alpha_star * f)}
            for f in st["alpha_factors"]
        ],
    }
    if st["edm_extra"] and data == "ring":
        edm = {"noise": "lognormal", "weighting": "edm"}
        out["edm_extra"] = {
            "alpha": alpha_star,
            "dsm": arm("dsm", **edm),
            "fp": arm("fp_dsm", alpha_star, **edm),
        }
    return out


def cell_items(study: Study, combos: list[tuple[str, str]]) -> list[dict]:
    """One item per (data set, process, seed), its streams named under the study's seed."""
    return [
        {
            "data": d,
            "process": p,
            "seed": s,
            "quick": study.quick,
            "streams": {k: study.seed_for(k, d, p, s) for k in STREAMS},
        }
        for d, p in combos
        for s in study.seeds
    ]
