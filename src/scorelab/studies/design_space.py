"""Study ``design-space`` (paper C, Wang, He & Tao 2024; docs/theory.md §11.3): EDM's training
design (log-normal σ, λ_EDM, preconditioning) against Song's VE (log-uniform σ, i.e. uniform t
on the geometric schedule, weight 1/σ², noise prediction), then sampling with {EDM ρ = 7,
geometric} grids × N ∈ {10, 18, 50} from a well-trained and an under-trained checkpoint, with
paper C's E_I/E_D/E_S split beside the measured W2.

Setting: the 8-Gaussian ring scaled to σ_data = 0.5 (radius 0.7, component std 0.07), whose
noised scores are exact; both designs train the same MLP on the same σ range [0.002, 80] with
equal budgets (AdamW, the library's Trainer); the under-trained checkpoint is the same run's EMA
at 10 % of the steps. Sampling is paper C's scheme, the reverse VE SDE with the score frozen on
each step, x' = x + (σ_k² − σ_{k+1}²) s + √(σ_k² − σ_{k+1}²) z: exactly Euler–Maruyama on a VE
process whose variance is linear in time, σ(t) = √t, which is what we run (the networks
condition on ¼ ln σ, so they are sampled under that process unchanged).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

from ..bounds.paper_c import ve_terms
from ..grids import TimeGrid
from ..losses import dsm_loss, esm_loss, weight
from ..metrics.score_error import score_error_profile
from ..metrics.transport import w2
from ..parameterisations import ScoreNetwork, estimate_sigma_data
from ..processes import EDM, VE
from ..schedules import CallableSigma, EDMSigma
from ..targets import ring8
from .common import Study, draw_samples, ema_copy, score_trainer

NAME = "design-space"
TITLE = "The design space of diffusion models: EDM against Song's VE, training and sampling"
PAPER = (
    "Wang, He & Tao, Evaluating the design space of diffusion-based generative models "
    "(NeurIPS 2024; docs/theory.md §11.3)"
)

SIGMA_MIN, SIGMA_MAX = 0.002, 80.0
RING_RADIUS, RING_STD = 0.7, 0.07  # σ_data = √(r²/2 + std²) ≈ 0.5, as in docs/theory.md §11.3
GRIDS = ("edm", "geometric")
CHECKPOINTS = ("well", "under")
# σ-range "that matters" for the per-σ comparison: EDM's log-normal mass (e^{−1.2 ± 1.2}) up to
# a few σ_data, where the data's structure is being formed.
MID_RANGE = (0.1, 2.5)


@dataclass(frozen=True)
class Design:
    """A training design: parameterisation, noise distribution of σ, loss weighting."""

    label: str
    parameterisation: str
    noise: str
    weighting: str


DESIGNS = {
    "edm": Design("EDM (log-normal σ, λ_EDM, preconditioned)", "edm", "lognormal", "edm"),
    "song": Design("Song VE (log-uniform σ, 1/σ², ε-prediction)", "eps", "loguniform", "s2"),
    # Song's noise distribution and weighting under EDM's preconditioning: isolates what paper
    # C's training analysis is about (p(σ) and λ), apart from the parameterisation.
    "song_precond": Design("log-uniform σ, 1/σ², EDM-preconditioned", "edm", "loguniform", "s2"),
}
COLORS = {"edm": "C0", "song": "C1", "song_precond": "C2"}


@dataclass(frozen=True)
class Settings:
    steps: int
    batch_size: int
    width: int
    depth: int
    lr: float
    early_fraction: float  # the under-trained checkpoint: this fraction of the steps
    ema_half_life: float
    log_every: int
    n_eval: int  # fixed batch on which the training objective's excess is tracked
    n_err: int  # points per σ for score errors
    n_profile: int  # σ values in the per-σ profile
    n_samples: int
    steps_n: tuple[int, ...] = (10, 18, 50)
    rho: float = 7.0


FULL = Settings(
    steps=4000,
    batch_size=512,
    width=128,
    depth=3,
    lr=2e-3,
    early_fraction=0.1,
    ema_half_life=200.0,
    log_every=100,
    n_eval=4096,
    n_err=4000,
    n_profile=33,
    n_samples=4000,
)
QUICK = dataclasses.replace(
    FULL, steps=600, batch_size=256, ema_half_life=30.0, log_every=50, n_eval=1024,
    n_err=1000, n_profile=17, n_samples=1000,
)  # fmt: skip


def settings_for(quick: bool) -> Settings:
    return QUICK if quick else FULL


# --- the setting ------------------------------------------------------------------------------
def _target():
    return ring8(RING_RADIUS, RING_STD)


def _train_process():
    return EDM(EDMSigma(SIGMA_MIN, SIGMA_MAX))


def _sampling_process():
    """VE with σ(t) = √t: Euler–Maruyama on it is paper C's frozen-score VE step exactly."""
    schedule = CallableSigma(torch.sqrt, T=SIGMA_MAX**2)
    return VE(schedule, t_min=SIGMA_MIN**2)


def _sigmas(process, grid: TimeGrid) -> np.ndarray:
    return process.sigma(grid.times(process)).numpy()


# --- training weights (docs/theory.md §6.6) ---------------------------------------------------
def effective_weights(process, log_sigma: np.ndarray, sigma_data: float) -> dict[str, np.ndarray]:
    """Total weight on the normalised loss ‖σ s_θ + z‖² per unit of ln σ: the noise density of
    ln σ times λ/σ² (λ from ``losses.weight``, which multiplies ‖s_θ + z/σ‖²)."""
    sig = torch.as_tensor(np.exp(log_sigma), dtype=torch.float64)
    t = process.t_of_sigma(sig)
    lo, hi = math.log(SIGMA_MIN), math.log(SIGMA_MAX)
    out = {}
    for key, d in DESIGNS.items():
        lam = weight(process, t, d.weighting, sigma_data).numpy() / sig.numpy() ** 2
        if d.noise == "lognormal":
            dens = np.exp(-0.5 * ((log_sigma + 1.2) / 1.2) ** 2) / (1.2 * math.sqrt(2 * math.pi))
        else:
            dens = np.full_like(log_sigma, 1.0 / (hi - lo))
        out[key] = dens * lam
    return out


def _weights_part(study: Study, process, sigma_data: float) -> None:
    ls = np.linspace(math.log(SIGMA_MIN), math.log(SIGMA_MAX), 401)
    w = effective_weights(process, ls, sigma_data)
    edm = w["edm"]
    peak = int(np.argmax(edm))
    # bell: the weight falls by ≥ 10× from its maximum towards both ends of the σ range
    bell_ratio = float(min(edm[peak] / edm[0], edm[peak] / edm[-1]))
    flat_ratio = float(w["song"].max() / w["song"].min())
    study.results["weighting"] = {
        "edm_peak_sigma": float(math.exp(ls[peak])),
        "edm_peak_over_ends": bell_ratio,
        "song_max_over_min": flat_ratio,
    }
    study.claim(
        "EDM's total weighting (noise density × λ, on the normalised loss) is bell-shaped in "
        "ln σ, Song's VE weighting is flat (docs/theory.md §6.6)",
        f"EDM peak at σ = {math.exp(ls[peak]):.3g}, falling {bell_ratio:.3g}× to the range ends; "
        f"Song max/min = {flat_ratio:.3g}",
        bell_ratio > 10 and flat_ratio < 1.01,
    )
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.4))
    for key in ("edm", "song"):  # song_precond trains with Song's weights
        ax.plot(ls / math.log(10), w[key] / w[key].max(), label=DESIGNS[key].label)
    ax.set_xlabel("log10 σ")
    ax.set_ylabel("total weight (max = 1)")
    ax.set_title("Training weight per unit ln σ")
    ax.legend(fontsize=8)
    fig.tight_layout()
    study.section("Training weights")
    study.text(
        "The weight each design puts on the normalised error ‖σ s_θ + z‖² per unit of ln σ. "
        "EDM's is a mixture of two Gaussian bumps (docs/theory.md §6.6); Song's is flat."
    )
    study.figure(fig, "weights")


# --- training ---------------------------------------------------------------------------------
@dataclass
class Trained:
    design: str
    well: ScoreNetwork  # EMA weights at the end
    under: ScoreNetwork  # EMA weights at early_fraction of the steps
    curve: dict


def _eval_batch(process, target, design: Design, n: int, gen: torch.Generator):
    from ..losses import sample_times

    x0 = target.sample(n, gen, dtype=torch.float32)
    t = sample_times(process, n, gen, design.noise)
    z = torch.randn(x0.shape, generator=gen, dtype=torch.float32)
    return x0, t, z


def _common_es(model, target, process, s: Settings, gen_seed: int) -> float:
    """E_S on the EDM ρ-grid with N = 18: the score error as sampling weighs it."""
    times = TimeGrid("edm", 18, rho=s.rho).times(process)
    rows = score_error_profile(
        model,
        target,
        process,
        times[:-1].tolist(),
        n=min(s.n_err, 500),
        generator=torch.Generator().manual_seed(gen_seed),
        dtype=torch.float32,
    )
    sig = process.sigma(times).numpy()
    mse = np.array([r["mse"] for r in rows])
    return float(np.sum((sig[:-1] ** 2 - sig[1:] ** 2) * mse))


def train_design(study: Study, key: str, target, process, s: Settings, sigma_data: float):
    d = DESIGNS[key]
    early = max(1, round(s.early_fraction * s.steps))
    train = {
        "steps": s.steps,
        "batch_size": s.batch_size,
        "lr": s.lr,
        "noise": d.noise,
        "weighting": d.weighting,
        "ema_half_life": s.ema_half_life,
        "warmup": max(10, s.steps // 20),
        # log at the early step as well, so that its EMA is captured exactly there
        "log_every": math.gcd(s.log_every, early),
    }
    trainer = score_trainer(
        target,
        process,
        network={"kind": "mlp", "width": s.width, "depth": s.depth},
        parameterisation=d.parameterisation,
        sigma_data=sigma_data,
        train=train,
        # the same initial weights and data stream for every design
        seed=study.seed_for("train"),
        init_seed=study.seed_for("init"),
    )
    x0, t, z = _eval_batch(process, target, d, s.n_eval, study.generator("eval_batch"))
    kw = dict(noise=d.noise, weighting=d.weighting, sigma_data=sigma_data, t=t, z=z)
    exact = target.score_model(process)
    with torch.no_grad():
        floor = float(dsm_loss(exact, x0, process, **kw).mean())
    curve = {"step": [], "excess": [], "e_s": []}
    snap: dict = {}

    def record(step: int) -> None:
        with torch.no_grad():
            ex = float(esm_loss(trainer.model, x0, process, exact_score=exact, **kw).mean())
        curve["step"].append(step)
        curve["excess"].append(ex)
        curve["e_s"].append(_common_es(trainer.model, target, process, s, study.seed_for("e_s")))

    def on_log(rec: dict) -> None:
        record(rec["step"])
        if rec["step"] == early:
            snap["under"] = ema_copy(trainer)

    record(0)
    result = trainer.fit(on_log=lambda rec: on_log(rec) if _keep(rec["step"], s, early) else None)
    well = ema_copy(trainer)
    losses = np.asarray(result.losses)
    window = max(1, s.steps // 50)
    smooth = np.convolve(losses, np.ones(window) / window, mode="valid")[::window]
    curve.update(
        loss_smoothed=smooth.tolist(),
        loss_window=window,
        loss_floor=floor,
        seconds=result.seconds,
        early_step=early,
    )
    return Trained(key, well, snap["under"], curve)


def _keep(step: int, s: Settings, early: int) -> bool:
    return step % s.log_every == 0 or step == early or step == s.steps


def _training_part(study: Study, trained: dict[str, Trained], s: Settings) -> None:
    res = {}
    for key, tr in trained.items():
        c = tr.curve
        exc = np.asarray(c["excess"])
        res[key] = {
            "step": c["step"],
            "excess": c["excess"],
            "excess_final_over_initial": float(exc[-1] / exc[0]),
            "e_s_edm18": c["e_s"],
            "loss_smoothed": c["loss_smoothed"],
            "loss_window": c["loss_window"],
            "loss_floor": c["loss_floor"],
            "early_step": c["early_step"],
        }
    study.results["training"] = res
    ratios = {k: res[k]["excess_final_over_initial"] for k in res}
    study.claim(
        "Training converges: gradient-based training drives the DSM loss to its minimum "
        "(paper C: exponential convergence of GD on the empirical DSM loss)",
        "excess of each design's own objective over its floor, end/start: "
        + ", ".join(f"{k} {v:.3g}" for k, v in ratios.items())
        + " (AdamW on fresh minibatches, not full-batch GD)",
        all(v < 0.5 for v in ratios.values()),
    )
    es_end = {k: res[k]["e_s_edm18"][-1] for k in res}
    study.claim(
        "At equal budget, EDM's noise distribution and weighting train a score that is better "
        "where sampling needs it (paper C: the preferred design agrees with EDM)",
        "E_S on the EDM N = 18 grid after training: "
        + ", ".join(f"{k} {v:.4g}" for k, v in es_end.items()),
        all(es_end["edm"] < v for k, v in es_end.items() if k != "edm"),
    )
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for key, r in res.items():
        x = (np.arange(len(r["loss_smoothed"])) + 0.5) * r["loss_window"]
        (line,) = axes[0].plot(x, r["loss_smoothed"], label=DESIGNS[key].label)
        axes[0].axhline(r["loss_floor"], color=line.get_color(), ls="--", lw=0.8)
        axes[1].semilogy(r["step"], np.asarray(r["excess"]) / r["excess"][0], label=key)
        axes[2].semilogy(r["step"], r["e_s_edm18"], label=key)
    axes[0].set_title("training loss (dashed: its floor)")
    axes[1].set_title("excess of own objective / initial")
    axes[2].set_title("E_S on the EDM N=18 grid")
    for ax in axes:
        ax.set_xlabel("step")
    axes[0].legend(fontsize=7)
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    study.section("Training")
    study.text(
        "Left: minibatch training loss (moving average) of each design in its own units with "
        "its floor, the exact-score DSM loss on a fixed batch. Middle: the excess of the "
        "design's own objective, λ E‖s_θ − ∇log p‖² under its noise distribution, on that "
        "fixed batch, relative to the start. Right: a common yardstick, E_S on the EDM ρ = 7, "
        f"N = 18 grid. Under-trained checkpoint: step {res['edm']['early_step']} of {s.steps}. "
        "Training wall time: "
        + ", ".join(f"{k} {tr.curve['seconds']:.1f} s" for k, tr in trained.items())
        + "."
    )
    study.figure(fig, "training")


# --- per-σ score error ------------------------------------------------------------------------
def _profile(model, target, process, sigmas: np.ndarray, s: Settings, seed: int) -> list[dict]:
    times = process.t_of_sigma(torch.as_tensor(sigmas, dtype=torch.float64)).tolist()
    return score_error_profile(
        model,
        target,
        process,
        times,
        n=s.n_err,
        generator=torch.Generator().manual_seed(seed),
        dtype=torch.float32,
    )


def _profile_part(study: Study, trained: dict[str, Trained], target, process, s: Settings):
    sigmas = np.exp(np.linspace(math.log(SIGMA_MIN), math.log(SIGMA_MAX), s.n_profile))
    res: dict = {"sigma": sigmas.tolist()}
    for key, tr in trained.items():
        res[key] = {}
        for ck in CHECKPOINTS:
            rows = _profile(getattr(tr, ck), target, process, sigmas, s, study.seed_for("profile"))
            res[key][ck] = {
                "normalised": [r["weighted"] for r in rows],
                "relative": [r["relative"] for r in rows],
            }
    mid = (sigmas >= MID_RANGE[0]) & (sigmas <= MID_RANGE[1])
    ratio = {}
    for other in ("song", "song_precond"):
        ratio[other] = {}
        for ck in CHECKPOINTS:
            e = np.asarray(res["edm"][ck]["normalised"])
            g = np.asarray(res[other][ck]["normalised"])
            ratio[other][ck] = {
                "mid": float(np.exp(np.mean(np.log(g[mid] / e[mid])))),
                "outside": float(np.exp(np.mean(np.log(g[~mid] / e[~mid])))),
            }
    res["other_over_edm_geomean"] = ratio
    res["mid_range"] = list(MID_RANGE)
    study.results["score_error"] = res
    for other, what in (
        ("song", "EDM's design (noise distribution, weighting and preconditioning)"),
        ("song_precond", "EDM's noise distribution and weighting alone (same preconditioning)"),
    ):
        r = ratio[other]
        study.claim(
            f"{what} gives a lower score error than {other} in the σ-range that matters "
            f"(σ ∈ [{MID_RANGE[0]}, {MID_RANGE[1]}], where EDM's log-normal puts its mass)",
            f"geometric mean of {other}/EDM normalised error σ²E‖Δs‖² there: well-trained "
            f"{r['well']['mid']:.3g}, under-trained {r['under']['mid']:.3g} (outside the "
            f"range: {r['well']['outside']:.3g}, {r['under']['outside']:.3g})",
            r["well"]["mid"] > 1,
        )
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
    styles = {"well": "-", "under": ":"}
    for ax, field in zip(axes, ("normalised", "relative"), strict=True):
        for key in trained:
            for ck in CHECKPOINTS:
                ax.loglog(
                    sigmas,
                    res[key][ck][field],
                    styles[ck],
                    color=COLORS[key],
                    label=f"{key}, {ck}-trained",
                )
        ax.axvspan(*MID_RANGE, color="0.9", zorder=0)
        ax.set_xlabel("σ")
    axes[0].set_title("normalised score error σ² E‖s_θ − ∇log p_σ‖²")
    axes[1].set_title("relative error E‖Δs‖² / E‖∇log p_σ‖²")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    study.section("Score error per σ")
    study.text(
        "Error of each design's EMA network against the exact score of the noised ring, per "
        f"noise level ({s.n_err} points each); the grey band is the σ-range compared in the claim."
    )
    study.figure(fig, "score_error")


# --- sampling and the E_I/E_D/E_S table -------------------------------------------------------
def _sample_w2(score, sproc, grid: TimeGrid, s: Settings, seed: int, ref: torch.Tensor):
    x = draw_samples(
        score, sproc, (2,), sampler="euler_maruyama", grid=grid, n=s.n_samples, seed=seed
    )
    return w2(x, ref), x


def _terms(model, target, process, grid: TimeGrid, s: Settings, seed: int, exact: bool):
    times = grid.times(process)
    if exact:
        err = 0.0
    else:
        rows = score_error_profile(
            model,
            target,
            process,
            times[:-1].tolist(),
            n=s.n_err,
            generator=torch.Generator().manual_seed(seed),
            dtype=torch.float32,
        )
        err = [r["mse"] for r in rows]
    terms = ve_terms(target, process, times, score_error=err)
    return {
        "E_I": terms.initialization,
        "E_D": terms.discretization,
        "E_D_log": terms.discretization_log,
        "E_S": terms.score,
        "total": terms.total,
    }


def _sampling_part(study: Study, trained, target, process, s: Settings, sigma_data: float):
    sproc = _sampling_process()
    ref = target.sample(s.n_samples, study.generator("reference"), dtype=torch.float64)
    ref2 = target.sample(s.n_samples, study.generator("floor"), dtype=torch.float64)
    floor = w2(ref, ref2)
    seed = study.seed_for("sampling")  # common random numbers across every configuration
    models = {"exact": {"exact": target.score_model(sproc)}}
    for key, tr in trained.items():
        models[key] = {
            ck: ScoreNetwork(getattr(tr, ck).network, sproc, tr.well.kind, sigma_data)
            for ck in CHECKPOINTS
        }
    res: dict = {"w2_floor": floor}
    scatter = {}
    for key, cks in models.items():
        res[key] = {}
        for ck, score in cks.items():
            res[key][ck] = {}
            net_model = None if key == "exact" else getattr(trained[key], ck)
            for kind in GRIDS:
                res[key][ck][kind] = {}
                for n in s.steps_n:
                    grid = TimeGrid(kind, n, rho=s.rho)
                    with torch.no_grad():
                        dist, x = _sample_w2(score, sproc, grid, s, seed, ref)
                    row = _terms(
                        net_model, target, process, grid, s, study.seed_for("terms"), key == "exact"
                    )
                    row["w2"] = dist
                    res[key][ck][kind][str(n)] = row
                    if n == min(s.steps_n) and ck in ("well", "exact"):
                        scatter[(key, kind)] = x
    study.results["sampling"] = res
    _sampling_claims(study, res, s)
    _sampling_figures(study, res, s, scatter, ref)
    _sampling_table(study, res, s)


def _w2(res, key, ck, kind, n) -> float:
    return res[key][ck][kind][str(n)]["w2"]


def _sampling_claims(study: Study, res: dict, s: Settings) -> None:
    ns = s.steps_n
    # Grid comparison per checkpoint, design by design. A W2 at or below the floor (two target
    # samples of the same size) cannot rank anything: a slightly contracted sample can even
    # beat a fresh target sample there. So only N where both grids' W2 exceed the floor count.
    floor = res["w2_floor"]
    verdicts = {}
    for ck, expect in (("well", "geometric"), ("under", "edm")):
        agree, decided, parts = 0, 0, []
        for k in DESIGNS:
            ok = [n for n in ns if min(_w2(res, k, ck, g, n) for g in GRIDS) > floor]
            wins = sum(_w2(res, k, ck, expect, n) < _w2(res, k, ck, _other(expect), n) for n in ok)
            if ok:
                decided += 1
                agree += wins > len(ok) / 2
            parts.append(
                f"{k}: {expect} wins {wins}/{len(ok)} ("
                + ", ".join(
                    f"N={n} edm {_w2(res, k, ck, 'edm', n):.3f} / geo "
                    f"{_w2(res, k, ck, 'geometric', n):.3f}"
                    for n in ns
                )
                + ")"
            )
        verdicts[ck] = {"designs_agreeing": agree, "designs_decided": decided}
        when = "well trained" if ck == "well" else "under-trained"
        study.claim(
            f"When the score is {when}, the "
            + ("geometric (Song) grid" if expect == "geometric" else "EDM ρ = 7 grid")
            + " gives better samples (paper C's conclusion)",
            f"W2, counting N where both grids are above the floor {floor:.3f}; designs agreeing "
            f"{agree}/{decided}. " + "; ".join(parts),
            # quick mode's W2 (few samples) cannot resolve grid differences of ~0.01
            None if study.quick or decided == 0 else agree > decided / 2,
        )
    study.results["sampling"]["grid_verdicts"] = verdicts
    exact_wins = sum(
        _w2(res, "exact", "exact", "geometric", n) < _w2(res, "exact", "exact", "edm", n)
        for n in ns
    )
    study.results["sampling"]["exact_geometric_wins"] = exact_wins
    # E_D + E_I against E_S: which grid each favours (Table 2's split)
    ed_geo = all(
        res["exact"]["exact"]["geometric"][str(n)]["E_D"]
        < res["exact"]["exact"]["edm"][str(n)]["E_D"]
        for n in ns
    )
    es_edm = [
        res[k][ck]["edm"][str(n)]["E_S"] < res[k][ck]["geometric"][str(n)]["E_S"]
        for k in DESIGNS
        for ck in CHECKPOINTS
        for n in ns
    ]
    study.claim(
        "E_D + E_I favour the geometric grid, E_S favours EDM's (the split of paper C's Table 2)",
        f"E_D(geometric) < E_D(EDM) at every N: {ed_geo}; E_S(EDM) < E_S(geometric) in "
        f"{sum(es_edm)}/{len(es_edm)} (design, checkpoint, N); with the exact score the "
        f"geometric grid has the lower W2 at {exact_wins}/{len(ns)} N",
        ed_geo and sum(es_edm) > len(es_edm) / 2,
    )
    # training error against the grid: how much of the W2 moves with the grid, per checkpoint
    spread = {}
    for ck in CHECKPOINTS:
        grid_gap = np.mean(
            [
                abs(_w2(res, k, ck, "edm", n) - _w2(res, k, ck, "geometric", n))
                for k in DESIGNS
                for n in ns
            ]
        )
        share = np.mean(
            [
                res[k][ck][g][str(n)]["E_S"] / res[k][ck][g][str(n)]["total"]
                for k in DESIGNS
                for g in GRIDS
                for n in ns
            ]
        )
        spread[ck] = {"mean_grid_gap_w2": float(grid_gap), "mean_E_S_share": float(share)}
    study.results["sampling"]["grid_vs_training"] = spread
    ck_gap = np.mean(
        [
            abs(_w2(res, k, "under", g, n) - _w2(res, k, "well", g, n))
            for k in DESIGNS
            for g in GRIDS
            for n in ns
        ]
    )
    study.results["sampling"]["mean_checkpoint_gap_w2"] = float(ck_gap)
    study.claim(
        "With an under-trained score the training error dominates: the grid matters less than "
        "the training (E_S's share of the bound grows)",
        f"mean |W2(edm) − W2(geo)|: well {spread['well']['mean_grid_gap_w2']:.3f}, under "
        f"{spread['under']['mean_grid_gap_w2']:.3f}; mean |W2(under) − W2(well)| {ck_gap:.3f}; "
        f"E_S/total: well {spread['well']['mean_E_S_share']:.3g}, under "
        f"{spread['under']['mean_E_S_share']:.3g}",
        ck_gap > spread["under"]["mean_grid_gap_w2"]
        and spread["under"]["mean_E_S_share"] > spread["well"]["mean_E_S_share"],
    )
    # design at small N: the EDM-against-Song comparison; song_precond is the control
    # that tells the preconditioning from p(σ) and λ
    n0 = min(ns)
    better = [_w2(res, "edm", "well", g, n0) < _w2(res, "song", "well", g, n0) for g in GRIDS]
    study.claim(
        f"EDM's training design gives better samples than Song's VE at small N (N = {n0}, "
        "well-trained)",
        "W2 EDM vs Song: "
        + ", ".join(
            f"{g} grid {_w2(res, 'edm', 'well', g, n0):.3f} vs "
            f"{_w2(res, 'song', 'well', g, n0):.3f}"
            for g in GRIDS
        )
        + "; control with EDM's preconditioning but Song's p(σ), λ: "
        + ", ".join(f"{g} grid {_w2(res, 'song_precond', 'well', g, n0):.3f}" for g in GRIDS),
        all(better),
    )


def _other(kind: str) -> str:
    return "edm" if kind == "geometric" else "geometric"


def _sampling_figures(study: Study, res: dict, s: Settings, scatter: dict, ref) -> None:
    plt = _plt()
    ns = list(s.steps_n)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
    for ax, ck in zip(axes, CHECKPOINTS, strict=True):
        for g, ls in (("edm", "-"), ("geometric", "--")):
            for key, color in COLORS.items():
                ax.plot(
                    ns,
                    [_w2(res, key, ck, g, n) for n in ns],
                    ls,
                    marker="o",
                    color=color,
                    label=f"{key} design, {g} grid",
                )
            ax.plot(
                ns,
                [_w2(res, "exact", "exact", g, n) for n in ns],
                ls,
                color="k",
                lw=0.8,
                label=f"exact score, {g} grid",
            )
        ax.axhline(res["w2_floor"], color="0.5", ls=":", label="W2 floor (two target samples)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(ns, [str(n) for n in ns])
        ax.xaxis.set_minor_formatter("")
        ax.set_xlabel("N (steps)")
        ax.set_title(f"{ck}-trained checkpoint")
    axes[0].set_ylabel("W2(samples, target)")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    study.section("Sampling")
    study.text(
        "Paper C's sampler (reverse VE SDE, score frozen on each step) from N(0, 80² I) down to "
        f"σ_min = {SIGMA_MIN}, {s.n_samples} samples with the same noise for every "
        "configuration; W2 is exact OT against a fixed target sample."
    )
    study.figure(fig, "w2_vs_n")
    n0 = min(s.steps_n)
    fig, axes = plt.subplots(
        len(GRIDS), len(DESIGNS), figsize=(3.2 * len(DESIGNS), 6.4), sharex=True, sharey=True
    )
    for i, kind in enumerate(GRIDS):
        for j, key in enumerate(DESIGNS):
            ax, x = axes[i, j], scatter[(key, kind)]
            ax.scatter(ref[:, 0], ref[:, 1], s=1, color="0.8")
            ax.scatter(x[:, 0], x[:, 1], s=1, color=COLORS[key])
            ax.set_title(f"{key}, {kind} grid, N={n0}", fontsize=9)
            ax.set_xlim(-1.3, 1.3)
            ax.set_ylim(-1.3, 1.3)
            ax.set_aspect("equal")
    fig.tight_layout()
    study.figure(fig, "samples")


def _sampling_table(study: Study, res: dict, s: Settings) -> None:
    header = ["score", "checkpoint", "grid", "N", "E_I", "E_D", "E_D (log)", "E_S", "total", "W2"]
    rows = []
    for key, cks in res.items():
        if not isinstance(cks, dict) or key not in ("exact", *DESIGNS):
            continue
        for ck, grids in cks.items():
            for g, by_n in grids.items():
                for n, r in by_n.items():
                    rows.append(
                        [key, ck, g, n]
                        + [_fmt(r[f]) for f in ("E_I", "E_D", "E_D_log", "E_S", "total", "w2")]
                    )
    study.section("E_I / E_D / E_S")
    study.text(
        "Paper C's proxies (docs/theory.md §9.3; bounds/paper_c.py): E_I ≤ E‖X₀‖²/(2σ_max²) (the "
        "ring is not Gaussian, so the second-moment bound), E_D = d Σ (σ_k²/σ_{k+1}² − 1)² "
        "(and its log form), E_S = Σ (σ_k² − σ_{k+1}²) E‖s_θ − ∇log p‖² at the grid's σ_k; "
        "total = E_I + E_D + E_S. They are proxies of a KL bound, not predictions of W2."
    )
    study.table(header, rows)


def _fmt(v: float) -> str:
    return f"{v:.4g}"


def _plt():
    import matplotlib

    matplotlib.use("Agg")  # as report.py does: figures are only ever written to files
    import matplotlib.pyplot as plt

    return plt


# --- the study --------------------------------------------------------------------------------
def run(study: Study) -> None:
    s = settings_for(study.quick)
    target, process = _target(), _train_process()
    sigma_data = estimate_sigma_data(
        target.sample(10_000, study.generator("sigma_data"), torch.float64)
    )
    study.results["settings"] = {
        **{k: v for k, v in asdict(s).items() if k != "steps_n"},
        "steps_n": list(s.steps_n),
        "sigma_min": SIGMA_MIN,
        "sigma_max": SIGMA_MAX,
        "ring_radius": RING_RADIUS,
        "ring_std": RING_STD,
        "sigma_data": sigma_data,
    }
    _weights_part(study, process, sigma_data)
    trained = {}
    for key in DESIGNS:
        study.log(f"training the {key} design ({s.steps} steps)")
        trained[key] = train_design(study, key, target, process, s, sigma_data)
    _training_part(study, trained, s)
    _profile_part(study, trained, target, process, s)
    study.log("sampling")
    _sampling_part(study, trained, target, process, s, sigma_data)
