"""The study's cells, run through ``Study.map``: one (family, d, seed) trained and measured, the
metrics' floors from exact samples, and the Mehler oracle's check against the closed forms.
"""

from __future__ import annotations

import torch

from ...grids import TimeGrid
from ...metrics import sliced_w2, tv_projections, w2
from ...metrics.score_error import score_error_profile
from ...networks import count_parameters
from ...processes import VP
from ...seeding import derive_seed
from ..common import Study, draw_samples, train_score_model
from .settings import FAMILIES, QUICK, Settings, ou_process, settings_from, settings_json
from .targets import axis_marginal, make_target, square_tilt


# --- one (family, d) cell ----------------------------------------------------------------------
def train_model(target, process: VP, s: Settings, seed: int, init_seed: int | None = None):
    """The same MLP and budget in every d, fitted by DSM on n_train fixed points; returns the
    EMA model and the mean loss over the last tenth of the steps."""
    train = {
        "steps": s.steps,
        "batch_size": s.batch_size,
        "lr": s.lr,
        "weight_decay": s.weight_decay,
        "warmup": max(1, s.steps // 20),
        "ema_half_life": max(1.0, s.steps / 20),
        "noise": "lognormal",
        "weighting": "edm",
        "n_train": s.n_train,
        "log_every": s.steps,
        "checkpoint_every": s.steps,
    }
    # σ_data = 1 (the reference γ_d): an untrained network is then exactly the score −x of γ_d
    fitted = train_score_model(
        target,
        process,
        network={"kind": "mlp", "width": s.width, "depth": s.depth},
        parameterisation="edm",
        sigma_data=1.0,
        train=train,
        seed=seed,
        init_seed=init_seed,
    )
    return fitted.model, fitted.tail_loss()


@torch.no_grad()
def tilt_norm(target, process: VP, t: float, n: int, generator: torch.Generator) -> float:
    """E_{p_t}‖∇log p_t(x) + x‖²: the part of the score beyond γ_d's, ∇log h_t (Mehler)."""
    x = process.sample_marginal(target.sample(n, generator, dtype=torch.float64), t, generator)
    return float((target.score(x, t, process) + x).pow(2).sum(1).mean())


def score_errors(model, target, process: VP, s: Settings, g: torch.Generator) -> dict:
    """Relative score error per t (and its mean over t), the MSE, the MSE relative to the
    tilt's own score ∇log h_t, and the Monte Carlo noise of the MSE (relative half-width)."""
    rows = score_error_profile(model, target, process, s.times, n=s.n_eval, generator=g)
    tilt = [tilt_norm(target, process, t, s.n_eval, g) for t in s.times]
    rel = [r["relative"] for r in rows]
    tilt_rel = [r["mse"] / h for r, h in zip(rows, tilt, strict=True)]
    # the untrained network is −x, whose error is ∇log h_t: its relative error is the baseline
    base = [h * r["relative"] / r["mse"] for r, h in zip(rows, tilt, strict=True)]
    return {
        "relative": rel,
        "baseline_relative_mean": sum(base) / len(base),
        "relative_mean": sum(rel) / len(rel),
        "mse": [r["mse"] for r in rows],
        "mse_rel_halfwidth": max((r["mse_ci"][1] - r["mse"]) / r["mse"] for r in rows),
        "tilt_relative": tilt_rel,
        "tilt_relative_mean": sum(tilt_rel) / len(tilt_rel),
    }


def axes_tv(samples: torch.Tensor, tv_seed: int, bins: int = 20) -> float:
    """Mean TV of the 1-D marginals of x₁ and x₂ against ½N(±a, 1), with exact cell masses;
    the cells come from ``tv_seed``, so every arm of a seed is binned alike."""
    marginal = axis_marginal()
    tvs = []
    for j in (0, 1):
        g = torch.Generator().manual_seed(tv_seed)
        tvs.append(tv_projections(samples[:, j : j + 1], marginal, 1, bins, generator=g))
    return sum(tvs) / 2


def reference_plane(n: int, seed: int) -> torch.Tensor:
    """A sample of the four-mode square in (x₁, x₂): the projected law of both families in
    every d, so one reference serves every arm of a seed."""
    return square_tilt(2).sample(n, torch.Generator().manual_seed(seed), dtype=torch.float64)


def dimension_free_cell(
    family: str,
    dim: int,
    settings: dict,
    init_seed: int,
    train_seed: int,
    sampling_seed: int,
    metrics_seed: int,
    reference_seed: int,
    tv_seed: int,
    second_seed: int,
) -> dict:
    """Train one model on one target and measure everything. The two families at the same
    seed and d get the same seeds (common random numbers, module docstring). The ``second_*``
    values measure the same model again on an independent evaluation (evaluation points,
    samples, TV cells and 2-D reference, all drawn from ``second_seed``, shared by the two
    families): how much a paired difference moves when only its evaluation is redrawn fixes
    the margin of a "grows more" claim (``verdicts.paired_noise_margin``)."""
    s = settings_from(settings)
    process = ou_process(s)
    target = make_target(family, dim)
    model, final_loss = train_model(target, process, s, train_seed, init_seed)
    g = torch.Generator().manual_seed(metrics_seed)
    out = {"final_loss": final_loss, "parameters": count_parameters(model)}
    out.update(score_errors(model, target, process, s, g))
    grid = TimeGrid("edm", steps=s.sampler_steps)
    samples = draw_samples(
        model,
        process,
        (dim,),
        sampler="exponential_integrator",
        grid=grid,
        n=s.n_gen,
        seed=sampling_seed,
    )
    ref = reference_plane(s.n_gen, reference_seed)
    out["tv_axes"] = axes_tv(samples, tv_seed)
    out["w2_plane"] = w2(samples[:, :2], ref, generator=g)
    full = target.sample(s.n_gen, g, dtype=torch.float64)
    other = target.sample(s.n_gen, g, dtype=torch.float64)
    out["sliced_w2"] = sliced_w2(samples, full, generator=g)
    out["sliced_w2_floor"] = sliced_w2(other, full, generator=g)
    out.update(second_evaluation(model, target, process, s, dim, second_seed))
    return out


def second_evaluation(model, target, process: VP, s: Settings, dim: int, seed: int) -> dict:
    """The cell's score errors and sample metrics on an independent evaluation draw."""
    g = torch.Generator().manual_seed(derive_seed(seed, "metrics"))
    errors = score_errors(model, target, process, s, g)
    samples = draw_samples(
        model,
        process,
        (dim,),
        sampler="exponential_integrator",
        grid=TimeGrid("edm", steps=s.sampler_steps),
        n=s.n_gen,
        seed=derive_seed(seed, "sampling"),
    )
    ref = reference_plane(s.n_gen, derive_seed(seed, "reference"))
    return {
        "second_relative_mean": errors["relative_mean"],
        "second_tilt_relative_mean": errors["tilt_relative_mean"],
        "second_tv_axes": axes_tv(samples, derive_seed(seed, "tv")),
        "second_w2_plane": w2(samples[:, :2], ref, generator=g),
    }


def floor_cell(settings: dict, reference_seed: int, floor_seed: int, tv_seed: int) -> dict:
    """The projected metrics of exact target samples, ``floor_reps`` independent draws of
    n_gen points: TV of the axis marginals, and W2 of the plane against the seed's shared
    reference. Their spread is the metrics' noise at this n."""
    s = settings_from(settings)
    ref = reference_plane(s.n_gen, reference_seed)
    g = torch.Generator().manual_seed(floor_seed)
    tv, w = [], []
    for _ in range(s.floor_reps):
        x = square_tilt(2).sample(s.n_gen, g, dtype=torch.float64)
        tv.append(axes_tv(x, tv_seed))
        w.append(w2(x, ref, generator=g))
    return {"tv_axes": tv, "w2_plane": w}


# --- oracle check --------------------------------------------------------------------------------
def mehler_cell(family: str, dim: int, n_mc: int, points: int, seed: int) -> dict:
    """The generic Mehler Monte Carlo score of the tilt (docs/theory.md §3.4) against the closed
    form, at t = 0.5 on ``points`` points of p_t (OU of the quick settings): the relative L²
    gap, and the sums behind the standardised gap z = ‖mc − exact‖/‖SE‖ with the oracle's own
    delta-method standard error (z ≈ 1 when the gap is Monte Carlo noise alone)."""
    process = ou_process(QUICK)
    g = torch.Generator().manual_seed(seed)
    target = make_target(family, dim)
    tilt = target.as_tilt(n_mc=n_mc) if family == "fixed" else target
    x = process.sample_marginal(target.sample(points, g, dtype=torch.float64), 0.5, g)
    exact = target.score(x, 0.5, process)
    mc, se = tilt.mehler_score(x, 0.5, process, n_mc=n_mc, generator=g)
    sq = float((mc - exact).pow(2).sum())
    return {
        "gap": (sq / float(exact.pow(2).sum())) ** 0.5,
        "sq_error": sq,
        "sq_se": float(se.pow(2).sum()),
    }


# --- the cells' items: the streams of each cell, named under the study's seed ----------------
def cell_items(study: Study, s: Settings) -> tuple[list[dict], dict]:
    """One item per (seed, family, d), and the index of each (seed, family, d) among them: at
    d = 2 the families are the same law with the same draws, so one cell serves both."""
    sj = settings_json(s)
    items, index = [], {}
    for seed in study.seeds:
        for dim in s.dims:
            for fam in ("fixed",) if dim == 2 else FAMILIES:
                index[seed, fam, dim] = len(items)
                items.append(
                    {
                        "family": fam,
                        "dim": dim,
                        "settings": sj,
                        # common random numbers: both families at (seed, d) share these
                        "init_seed": study.seed_for("init", seed, dim),
                        "train_seed": study.seed_for("train", seed, dim),
                        "sampling_seed": study.seed_for("sampling", seed, dim),
                        "metrics_seed": study.seed_for("metrics", seed, dim),
                        "reference_seed": study.seed_for("reference", seed),
                        "tv_seed": study.seed_for("tv", seed),
                        "second_seed": study.seed_for("second evaluation", seed, dim),
                    }
                )
    return items, index


def floor_items(study: Study, s: Settings) -> list[dict]:
    """One floor cell per seed, sharing the seed's reference sample and TV cells."""
    return [
        {
            "settings": settings_json(s),
            "reference_seed": study.seed_for("reference", seed),
            "floor_seed": study.seed_for("floor", seed),
            "tv_seed": study.seed_for("tv", seed),
        }
        for seed in study.seeds
    ]


def mehler_items(study: Study, s: Settings) -> list[dict]:
    """Per seed the fixed family at d = 8 and the control at d = 2; then the control at d = 8,
    once: e^f's variance under γ_d grows like (e^{a²}/2)^d, so the plain Monte Carlo oracle
    needs exponentially many draws there."""
    items = [
        {
            "family": fam,
            "dim": dim,
            "n_mc": s.n_mc,
            "points": s.mehler_points,
            "seed": study.seed_for("mehler", seed, fam, dim),
        }
        for seed in study.seeds
        for fam, dim in (("fixed", 8), ("control", 2))
    ]
    items.append(
        {
            "family": "control",
            "dim": 8,
            "n_mc": s.n_mc,
            "points": s.mehler_points,
            "seed": study.seed_for("mehler", "d8"),
        }
    )
    return items
