"""One seed of the study (a cell of ``Study.map``): the three designs' training, the EDM design's
checkpoint scan by E_S share, the chosen checkpoints and the W2 of every sampling configuration.
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from ...grids import TimeGrid
from ...losses import dsm_loss, esm_loss, sample_times
from ...metrics.transport import w2
from ...parameterisations import ScoreNetwork
from ..common import draw_samples, ema_copy, score_trainer
from .error_terms import es_log_se, grid_terms, normalised_profile
from .settings import (
    DESIGNS,
    GRIDS,
    UNDER_SHARE,
    WELL_SHARE,
    Settings,
    ring_target,
    sampling_process,
    settings_from,
    train_process,
)


def train_design(
    key: str, target, process, s: Settings, sigma_data: float, streams: dict, scan: bool
):
    """Train one design; returns (final EMA model, curve, EMA state dicts at the scan steps)."""
    d = DESIGNS[key]
    train = {
        "steps": s.steps,
        "batch_size": s.batch_size,
        "lr": s.lr,
        "noise": d.noise,
        "weighting": d.weighting,
        "ema_half_life": s.ema_half_life,
        "warmup": max(10, s.steps // 20),
        "log_every": s.steps,
    }
    trainer = score_trainer(
        target,
        process,
        network={"kind": "mlp", "width": s.width, "depth": s.depth},
        parameterisation=d.parameterisation,
        sigma_data=sigma_data,
        train=train,
        # the same initial weights and data stream for every design of a seed
        seed=streams["train"],
        init_seed=streams["init"],
    )
    gen = torch.Generator().manual_seed(streams["eval_batch"])
    x0 = target.sample(s.n_eval, gen, dtype=torch.float32)
    t = sample_times(process, s.n_eval, gen, d.noise)
    z = torch.randn(x0.shape, generator=gen, dtype=torch.float32)
    kw = dict(noise=d.noise, weighting=d.weighting, sigma_data=sigma_data, t=t, z=z)
    exact = target.score_model(process)
    with torch.no_grad():
        floor = float(dsm_loss(exact, x0, process, **kw).mean())
    curve: dict = {"step": [], "excess": []}
    states = []
    losses = []
    while True:
        if trainer.step % s.scan_every == 0 or trainer.step == s.steps:
            with torch.no_grad():
                ex = float(esm_loss(trainer.model, x0, process, exact_score=exact, **kw).mean())
            curve["step"].append(trainer.step)
            curve["excess"].append(ex)
            if scan:
                states.append(copy.deepcopy(trainer.ema))
        if trainer.step >= s.steps:
            break
        losses.append(trainer.train_step()[0])
    window = max(1, s.steps // 50)
    smooth = np.convolve(np.asarray(losses), np.ones(window) / window, mode="valid")[::window]
    curve.update(loss_smoothed=smooth.tolist(), loss_window=window, loss_floor=floor)
    return ema_copy(trainer), curve, states


def pick_checkpoint(shares: list[dict], which: str) -> tuple[int, bool]:
    """Index of the well-trained (first with E_S < WELL_SHARE of the bound on both grids) or
    under-trained (last with E_S > UNDER_SHARE on both) checkpoint, and whether the criterion
    is met; when no checkpoint meets it, the closest one (lowest / highest share)."""
    if which == "well":
        worst = [max(sh[g] for g in GRIDS) for sh in shares]
        ok = [i for i, v in enumerate(worst) if v < WELL_SHARE]
        return (ok[0], True) if ok else (int(np.argmin(worst)), False)
    least = [min(sh[g] for g in GRIDS) for sh in shares]
    ok = [i for i, v in enumerate(least) if v > UNDER_SHARE]
    return (ok[-1], True) if ok else (int(np.argmax(least)), False)


def seed_cell(seed: int, settings: dict, streams: dict, sigma_data: float) -> dict:
    """Everything one seed measures (a cell of ``Study.map``): the three designs' training,
    the EDM design's checkpoint scan, the score-error profiles, the chosen checkpoints and the
    W2 of every sampling configuration against this seed's reference sample."""
    torch.set_num_threads(1)
    s = settings_from(settings)
    target, process = ring_target(), train_process()
    # profile_other: the same networks' score errors on a second, independent set of evaluation
    # points (the paired-noise margins of the score-error claims)
    out: dict = {"seed": seed, "training": {}, "profile": {}, "profile_other": {}}
    finals, states = _train_designs(out, target, process, s, sigma_data, streams)
    models = _scan_checkpoints(out, finals["edm"], states, target, process, s, streams)
    out["terms"] = _sampled_terms(out, target, process, s)
    _sample(out, target, finals, models, s, sigma_data, streams)
    return out


def _train_designs(out: dict, target, process, s: Settings, sigma_data: float, streams: dict):
    """Train every design (the same initial weights and data), record its curve and final
    score-error profile in ``out``; returns the final models and the EDM design's EMA states at
    the scan steps."""
    finals = {}
    states: list = []
    for key in DESIGNS:
        scan = key == "edm"
        model, curve, st = train_design(key, target, process, s, sigma_data, streams, scan)
        exc = curve["excess"]
        curve["excess_final_over_initial"] = exc[-1] / exc[0]
        out["training"][key] = curve
        finals[key] = model
        if key == "edm":
            states = st
        c, se = normalised_profile(model, target, process, s, streams["profile"])
        out["profile"][key] = {"normalised": c, "rel_se": se}
        c, se = normalised_profile(model, target, process, s, streams["profile_other"])
        out["profile_other"][key] = {"normalised": c, "rel_se": se}
    return finals, states


def _scan_checkpoints(out: dict, final, states: list, target, process, s: Settings, streams):
    """The EDM design's scan (E_S share of the bound per checkpoint, grid and N) and the well-
    and under-trained checkpoints it picks; returns the EDM models to sample (final, well,
    under)."""
    probe = copy.deepcopy(final)
    scan: dict = {"step": out["training"]["edm"]["step"], "share": {}, "e_s": {}}
    profiles = []
    for state in states:
        probe.load_state_dict(state)
        profiles.append(normalised_profile(probe, target, process, s, streams["profile"]))
    for n in s.share_ns:
        for kind in GRIDS:
            rows = [grid_terms(target, process, kind, n, c, s) for c, _ in profiles]
            scan["share"][f"{kind}/{n}"] = [r["share"] for r in rows]
            scan["e_s"][f"{kind}/{n}"] = [r["E_S"] for r in rows]
    out["scan"] = scan
    shares = [
        {g: scan["share"][f"{g}/{s.n_compare}"][i] for g in GRIDS} for i in range(len(states))
    ]
    chosen = {}
    models = {"final": final}
    for which in ("well", "under"):
        i, met = pick_checkpoint(shares, which)
        chosen[which] = {"index": i, "step": scan["step"][i], "met": met, "share": shares[i]}
        m = copy.deepcopy(final)
        m.load_state_dict(states[i])
        models[which] = m.eval()
        out["profile"][f"edm_{which}"] = {
            "normalised": profiles[i][0],
            "rel_se": profiles[i][1],
        }
    c, se = normalised_profile(models["under"], target, process, s, streams["profile_other"])
    out["profile_other"]["edm_under"] = {"normalised": c, "rel_se": se}
    chosen["final"] = {"step": s.steps}
    out["checkpoints"] = chosen
    return models


def _sampled_terms(out: dict, target, process, s: Settings) -> dict:
    """Paper C's terms of every sampled configuration (E_S from the chosen checkpoints'
    profiles), and of each design's final network on EDM's N = 18 grid."""
    prof = {ck: out["profile"][f"edm_{ck}"]["normalised"] for ck in ("well", "under")}
    prof["final"] = out["profile"]["edm"]["normalised"]
    terms: dict = {}
    other = out["profile_other"]
    for ck, c in prof.items():
        for n in (s.n_compare, s.n_small):
            for kind in GRIDS:
                terms[f"{ck}/{kind}/{n}"] = grid_terms(target, process, kind, n, c, s)
    for kind in GRIDS:  # E_S of the under-trained checkpoint on the second evaluation points
        row = grid_terms(target, process, kind, s.n_compare, other["edm_under"]["normalised"], s)
        terms[f"under/{kind}/{s.n_compare}"]["E_S_other_draw"] = row["E_S"]
    for n in (18,):
        for key in DESIGNS:
            c, se = out["profile"][key]["normalised"], out["profile"][key]["rel_se"]
            row = grid_terms(target, process, "edm", n, c, s)
            row["log_se"] = es_log_se(c, se, process, "edm", n, s)
            row["E_S_other_draw"] = grid_terms(
                target, process, "edm", n, other[key]["normalised"], s
            )["E_S"]
            terms[f"{key}_final/edm/{n}"] = row
    return terms


def _sample(out: dict, target, finals: dict, models: dict, s: Settings, sigma_data, streams):
    """The W2 floor, and the W2 of every sampling configuration against the seed's reference
    sample and against a second, independent one (the paired-noise margins); one prior draw
    and noise stream for every configuration of the seed (common random numbers)."""
    sproc = sampling_process()
    ref, ref_other = (
        target.sample(s.n_samples, torch.Generator().manual_seed(streams[k]), dtype=torch.float64)
        for k in ("reference", "reference_other")
    )
    floor_gen = torch.Generator().manual_seed(streams["floor"])
    out["floor"] = [
        w2(
            target.sample(s.n_samples, floor_gen, dtype=torch.float64),
            target.sample(s.n_samples, floor_gen, dtype=torch.float64),
        )
        for _ in range(s.n_floor)
    ]
    scores = {ck: ScoreNetwork(m.network, sproc, m.kind, sigma_data) for ck, m in models.items()}
    scores["exact"] = target.score_model(sproc)
    song = finals["song"]
    scores["song_final"] = ScoreNetwork(song.network, sproc, song.kind, sigma_data)
    configs = [(ck, g, s.n_compare) for ck in ("well", "under") for g in GRIDS]
    configs += [(ck, g, s.n_small) for ck in ("final", "under") for g in GRIDS]
    configs += [("exact", g, n) for n in s.share_ns for g in GRIDS]
    configs += [("song_final", "edm", s.n_small)]
    out["w2"], out["w2_other_ref"] = {}, {}
    scatter = {}
    for ck, kind, n in configs:
        with torch.no_grad():
            x = draw_samples(
                scores[ck],
                sproc,
                (2,),
                sampler="euler_maruyama",
                grid=TimeGrid(kind, n, rho=s.rho),
                n=s.n_samples,
                seed=streams["sampling"],
            )
        out["w2"][f"{ck}/{kind}/{n}"] = w2(x, ref)
        out["w2_other_ref"][f"{ck}/{kind}/{n}"] = w2(x, ref_other)
        if n == s.n_small and ck in ("final", "under"):
            scatter[f"{ck}/{kind}"] = x[:400].tolist()
    out["scatter"] = {"reference": ref[:400].tolist(), **scatter}
    return out


STREAMS = (
    "train",
    "init",
    "eval_batch",
    "profile",
    "profile_other",
    "reference",
    "reference_other",
    "floor",
    "sampling",
)
