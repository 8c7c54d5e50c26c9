"""One cell per (data set, process, seed): a DSM checkpoint, its continuation by DSM and by
DSM + FP at each α on the same data, times and noise, every arm evaluated on the same held-out
points (``evaluation``), and the per-point paired NLL differences FP − DSM.
"""

from __future__ import annotations

import torch

from ...fokker_planck import fp_regulariser
from ...losses import dsm_loss, sample_times
from ...metrics.transport import w2
from ..common import Study, train_score_model
from .data import DATA, build_setting
from .evaluation import evaluate_arm
from .settings import alpha_factors, paper_equivalent_alpha, settings_for

STREAMS = ("init", "pretrain", "ratio", "finetune", "eval", "eval2", "nll", "nll2", "sampler",
           "reference", "floor")  # fmt: skip


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


def fp_cell(data: str, process: str, seed: int, quick: bool, streams: dict) -> dict:
    """Pre-train one DSM checkpoint, continue it with each arm, evaluate every arm (a study
    cell: JSON-able arguments and result)."""
    st = settings_for(quick)
    size = st[data]
    target, held, proc, sigma_data = build_setting(data, process, streams["pretrain"])
    dim = target.dim
    network = DATA[data]["network"]
    common = {"network": network, "parameterisation": size["parameterisation"],
              "sigma_data": sigma_data}  # fmt: skip
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
        row, nlls = evaluate_arm(fitted.model, held, proc, size, streams, reference)
        row["seconds"] = fitted.result.seconds
        per_point.append(nlls)
        return row

    per_point: list[list[torch.Tensor]] = []  # per arm, in order: the NLLs of both draws
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
            for f in alpha_factors(st, data, process)
        ],
    }
    for row, nlls in zip(out["fp"], per_point[1:], strict=True):
        row["nll_diff"] = paired_nll_differences(nlls, per_point[0])
    if st["edm_extra"] and data == "ring":
        edm = {"noise": "lognormal", "weighting": "edm"}
        out["edm_extra"] = {
            "alpha": alpha_star,
            "dsm": arm("dsm", **edm),
            "fp": arm("fp_dsm", alpha_star, **edm),
        }
    return out


def paired_nll_differences(fp: list[torch.Tensor], dsm: list[torch.Tensor]) -> dict:
    """Per held-out draw, the mean and the median over the points of NLL(FP) − NLL(DSM) at the
    same points: the median is the claims' statistic (a few escaped trajectories, whose NLL
    is off by 10⁷ nats, cannot move it), the mean is stored beside it."""
    diffs = [f - d for f, d in zip(fp, dsm, strict=True)]
    return {
        "mean": [float(d.mean()) for d in diffs],
        "median": [float(d.median()) for d in diffs],
    }


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
