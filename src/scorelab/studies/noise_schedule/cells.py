"""Parts 2 and 3, one cell per seed (and schedule): MG25 with the exact score by Monte Carlo, and
trained networks with common random numbers across schedules.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ...bounds import kl_bound, tune_parametric, w2_bound
from ...grids import TimeGrid
from ...metrics import kl_gaussian_fit, knn_kl, sliced_w2, w2_gaussian_fit
from ...seeding import derive_seed
from ...targets import mg25
from ..common import Study, draw_samples, train_score_model
from .settings import (
    BETA_MAX,
    BETA_MIN,
    COSINE,
    LAM,
    MU,
    SAMPLERS,
    SIGMA_INF,
    TRAIN_T_MIN,
    D,
    Settings,
    T,
    gaussian_target,
    label,
    make_process,
)


# --- part 2: MG25, exact score, Monte Carlo (one cell per seed) --------------------------------
def uniform_grid(N: int) -> TimeGrid:
    return TimeGrid("uniform", steps=N, t_min=0.0)


def mg25_cell(
    specs: list,
    steps: list[int],
    n: int,
    floor_reps: int,
    data_seed: int,
    reference_seed: int,
    projection_seed: int,
    sampling_seed: int,
    bound_seed: int,
) -> dict:
    """One seed of part 2. Every arm (schedule, N, sampler) is compared with the same
    reference sample ``data`` and the same 64 projections, and draws its prior and noise from
    the same ``sampling_seed`` (common random numbers). ``floor``: the metrics between
    ``data`` and ``floor_reps`` independent reference samples of the same size.
    ``second_reference``: every arm's kNN KL against the first of those independent samples
    instead of ``data`` (the arms' samples shared) — how much a claim's paired difference moves
    when only the reference is redrawn fixes its margin (``verdicts.paired_noise_margin``)."""
    target = mg25()
    dim = target.event_shape[0]
    data = target.sample(n, torch.Generator().manual_seed(data_seed), dtype=torch.float64)
    ref = torch.Generator().manual_seed(reference_seed)
    fresh = [target.sample(n, ref, dtype=torch.float64) for _ in range(floor_reps)]
    proj = torch.Generator().manual_seed(projection_seed)
    directions = torch.randn(dim, 64, generator=proj, dtype=torch.float64)
    directions /= directions.norm(dim=0, keepdim=True)
    floor = {
        "knn_kl": [knn_kl(data, f) for f in fresh],
        "sliced_w2": [sliced_w2(f, data, projections=directions) for f in fresh],
    }
    res = {s: {str(N): {"knn_kl": {}, "sliced_w2": {}} for N in steps} for s in SAMPLERS}
    second = {s: {str(N): {} for N in steps} for s in SAMPLERS}
    kl_b = {str(N): {} for N in steps}
    for spec in specs:
        proc, lab = make_process(spec), label(spec)
        score = target.score_model(proc)
        for N in steps:
            for s, opts in SAMPLERS.items():
                x = draw_samples(
                    score,
                    proc,
                    (dim,),
                    sampler=s,
                    grid=uniform_grid(N),
                    n=n,
                    seed=sampling_seed,
                    dtype=torch.float64,
                    **opts,
                )
                res[s][str(N)]["knn_kl"][lab] = knn_kl(data, x)
                second[s][str(N)][lab] = knn_kl(fresh[0], x)
                res[s][str(N)]["sliced_w2"][lab] = sliced_w2(x, data, projections=directions)
            gen = torch.Generator().manual_seed(bound_seed)
            kl_b[str(N)][lab] = kl_bound(target, proc, N, generator=gen, n_mc=n).total
    return {"floor": floor, "exact": res, "second_reference": second, "kl_bound": kl_b}


def mg25_part(study: Study, st: Settings) -> dict:
    """Part 2 over the study's seeds, with the kNN KL's noise (its floor's RMS)."""
    specs = [*st.mg25_a, COSINE]
    items = [
        {
            "specs": specs,
            "steps": list(st.mg25_steps),
            "n": st.mg25_n,
            "floor_reps": st.mg25_floor_reps,
            "data_seed": study.seed_for("mg25", "data", seed),
            "reference_seed": study.seed_for("mg25", "reference", seed),
            "projection_seed": study.seed_for("mg25", "projections", seed),
            "sampling_seed": study.seed_for("mg25", "sampling", seed),
            "bound_seed": study.seed_for("mg25", "kl_bound", seed),
        }
        for seed in study.seeds
    ]
    per_seed = study.map(mg25_cell, items)
    study.log(f"noise-schedule: MG25, {len(per_seed)} seeds")
    floors = {
        m: [v for cell in per_seed for v in cell["floor"][m]] for m in ("knn_kl", "sliced_w2")
    }
    return {
        "dim": mg25().event_shape[0],
        "n": st.mg25_n,
        "schedules": [label(s) for s in specs],
        "seeds": study.seeds,
        # the kNN estimator's noise: the RMS of its value between two samples of the same law
        "noise": {"knn_kl": _rms(floors["knn_kl"]), "sliced_w2": _rms(floors["sliced_w2"])},
        "per_seed": per_seed,
        "mean": mean_tree(per_seed),
    }


def _rms(values) -> float:
    return float(np.sqrt(np.mean(np.square(values))))


def mean_tree(trees: list):
    """The element-wise mean of identically shaped nested dicts/lists of numbers."""
    first = trees[0]
    if isinstance(first, dict):
        return {k: mean_tree([t[k] for t in trees]) for k in first}
    if isinstance(first, list):
        return [mean_tree([t[i] for t in trees]) for i in range(len(first))]
    return float(np.mean(trees))


# --- part 3: trained networks (one cell per seed and schedule) ---------------------------------
def trained_cell(
    spec,
    steps: int,
    lr: float,
    width: int,
    n: int,
    N: int,
    n_mc: int,
    init_seed: int,
    data_seed: int,
    sampling_seed: int,
    mc_seed: int,
    second_sampling_seed: int,
) -> dict:
    """Paper A's residual MLP trained by ESM (weighting s²) under schedule ``spec`` (EMA
    weights), then: fitted-Gaussian KL and W2 of each sampler's samples, and both bounds with
    the measured score error. The seeds are shared by every schedule of a seed: the same
    initial weights, training draws (x₀, t, z), prior draws and sampling noise, and the same
    Monte Carlo draws in the bounds. ``second_draw``: the fitted metrics of a second,
    independent set of samples (``second_sampling_seed``, also shared by every schedule of a
    seed) — how much a paired difference between schedules moves when only the evaluation
    draw is redrawn fixes its margin (``verdicts.paired_noise_margin``)."""
    target = gaussian_target()
    train = {
        "steps": steps,
        "batch_size": 256,
        "lr": lr,
        "warmup": min(100, steps // 10),
        "ema_half_life": max(10.0, steps / 20),
        "loss": "esm",
        "weighting": "s2",
        "log_every": steps,
        "checkpoint_every": steps,
    }
    model = train_score_model(
        target,
        make_process(spec, t_min=TRAIN_T_MIN),
        network={"kind": "resmlp", "width": width, "blocks": 3},
        parameterisation="score",
        sigma_data=1.0,
        train=train,
        seed=data_seed,
        init_seed=init_seed,
    ).model
    proc = make_process(spec)
    out = {}
    mu, cov = torch.full((D,), MU), torch.tensor(LAM)
    out["second_draw"] = {}
    for s, opts in SAMPLERS.items():
        for seed, into in ((sampling_seed, out), (second_sampling_seed, out["second_draw"])):
            x = draw_samples(
                model, proc, (D,), sampler=s, grid=uniform_grid(N), n=n, seed=seed, **opts
            )
            into[s] = {"kl": kl_gaussian_fit(x, mu, cov), "w2": w2_gaussian_fit(x, mu, cov)}
    kb = kl_bound(
        target, proc, N, score_model=model, n_mc=n_mc,
        generator=torch.Generator().manual_seed(derive_seed(mc_seed, "kl_bound")),
    )  # fmt: skip
    wb = w2_bound(
        target, proc, N, score_model=model, n_mc=n_mc,
        generator=torch.Generator().manual_seed(derive_seed(mc_seed, "w2_bound")),
    )  # fmt: skip
    out["kl_bound"], out["kl_bound_E2"] = kb.total, kb.approximation
    out["w2_bound"], out["epsilon"] = wb.total, wb.epsilon
    # the effective uniform L² score error of the KL bound: E2 = ε² B(T)
    out["epsilon_kl"] = math.sqrt(kb.approximation / kb.B_T)
    return out


def fit_floor(n: int, reps: int, seed: int) -> dict:
    """The fitted-Gaussian KL and W2 of ``reps`` independent samples of n points of the target
    itself: the metrics' floor, whose spread is their noise at this n."""
    target, g = gaussian_target(), torch.Generator().manual_seed(seed)
    mu, cov = torch.full((D,), MU), torch.tensor(LAM)
    xs = [target.sample(n, g, dtype=torch.float64) for _ in range(reps)]
    return {
        "kl": [kl_gaussian_fit(x, mu, cov) for x in xs],
        "w2": [w2_gaussian_fit(x, mu, cov) for x in xs],
    }


def trained_part(study: Study, st: Settings, a_tuned: float) -> dict:
    """Part 3 over the study's seeds and schedules, with the fitted metrics' floors."""
    specs = [*st.train_a, a_tuned]
    labels = [*(label(s) for s in st.train_a), "tuned"]
    items = [
        {
            "spec": spec,
            "steps": st.train_steps,
            "lr": st.train_lr,
            "width": st.train_width,
            "n": st.train_n,
            "N": st.train_N,
            "n_mc": st.n_mc,
            # common random numbers: every schedule of a seed shares these
            "init_seed": study.seed_for("trained", "init", seed),
            "data_seed": study.seed_for("trained", "data", seed),
            "sampling_seed": study.seed_for("trained", "sampling", seed),
            "mc_seed": study.seed_for("trained", "bounds", seed),
            "second_sampling_seed": study.seed_for("trained", "second sampling", seed),
        }
        for seed in study.seeds
        for spec in specs
    ]
    cells = study.map(trained_cell, items)
    k = len(specs)
    per_seed = [
        dict(zip(labels, cells[i * k : (i + 1) * k], strict=True)) for i in range(len(study.seeds))
    ]
    study.log(f"noise-schedule: {len(cells)} trained networks")
    floors = [
        fit_floor(st.train_n, st.fit_floor_reps, study.seed_for("trained", "floor", seed))
        for seed in study.seeds
    ]
    target = gaussian_target()
    kl_tune = []
    for rows in per_seed:
        eps = rows["a=0"]["epsilon_kl"]
        res = tune_parametric(
            target, BETA_MIN, BETA_MAX, T, SIGMA_INF, N=st.train_N, bound="kl", score_error=eps
        )
        kl_tune.append(
            {
                "epsilon": eps,
                "a": res.best,
                "kl_bound_tuned": res.value,
                "kl_bound_linear": res.value_at_reference,
            }
        )
    return {
        "schedules": labels,
        "a_values": [float(s) for s in specs],
        "a_tuned": a_tuned,
        "N": st.train_N,
        "n_samples": st.train_n,
        "train_steps": st.train_steps,
        "lr": st.train_lr,
        "width": st.train_width,
        "seeds": study.seeds,
        "fit_bias_kl": D * (D + 3) / (4 * st.train_n),
        "floor": floors,
        # the fitted metrics' noise at this n: the spread of their floor over independent draws
        "noise": {
            m: float(np.std([v for f in floors for v in f[m]], ddof=1)) for m in ("kl", "w2")
        },
        "per_seed": per_seed,
        "mean": mean_tree(per_seed),
        "kl_tuned_with_linear_epsilon": kl_tune,
    }
