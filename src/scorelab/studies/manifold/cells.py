"""The study's cells, one per (seed, law), run through ``Study.map``: the ε sweep of W1 on the
circle and the sphere with three scores, and the T sweep and memorisation on the empirical
measure; and the scores, network and sampler they use.
"""

from __future__ import annotations

import torch

from ...grids import TimeGrid
from ...metrics.memorisation import memorised_fraction, nn_ratio
from ...metrics.transport import w1
from ...parameterisations import estimate_sigma_data
from ...targets import Circle, Empirical
from ..common import Study, draw_samples, train_score_model
from .settings import GEOMETRIES, make_process
from .surrogate_bound import bound_log10, err_integrals


# --- scores -------------------------------------------------------------------------------------
def perturbed_score(target, process, M: float):
    """The exact score plus M(1 + ‖x‖)/σ_t² along a fixed unit vector e of the manifold's plane:
    an error exactly at the size of the paper's assumption (σ_t² = 1 − e^{−2t} = s(t)²). Along
    the manifold nothing pulls the samples back, so its effect grows like M log(1/ε)."""
    exact = target.score_model(process)
    e = target.basis[:, 0]

    def score(x, t):
        v = process.variance(torch.as_tensor(t, dtype=x.dtype))
        v = v.reshape(-1, 1) if v.ndim else v
        size = M * (1 + x.norm(dim=1, keepdim=True)) / v
        return exact(x, t) + size * e.to(x.dtype)

    return score


def train_network(target, process, steps: int, seed: int):
    """A small MLP (ε-parameterised, EDM's log-normal σ) fitted by DSM; the live weights are
    returned (an EMA of 0.999 still carries ~20 % of the zero-output init after 1500 steps).
    Returns the model (frozen) and its mean loss over the last 10 % of steps."""
    sigma_data = estimate_sigma_data(target.sample(4096, torch.Generator().manual_seed(seed)))
    train = {
        "steps": steps,
        "batch_size": 256,
        "lr": 2e-3,
        "noise": "lognormal",
        "log_every": 10**9,
        "checkpoint_every": 10**9,
    }
    fitted = train_score_model(
        target,
        process,
        network={"kind": "mlp"},
        parameterisation="eps",
        sigma_data=sigma_data,
        train=train,
        seed=seed,
        weights="live",
    )
    return fitted.model, fitted.tail_loss()


# --- sampling and W1 ----------------------------------------------------------------------------
def draw(score, process, dim: int, grid: TimeGrid, n: int, seed: int, dtype) -> torch.Tensor:
    """n Euler–Maruyama samples of the reverse SDE on ``grid`` (float64 out)."""
    return draw_samples(
        score, process, (dim,), sampler="euler_maruyama", grid=grid, n=n, seed=seed, dtype=dtype
    )


def exact_w1(x, y) -> float:
    return w1(x, y, max_points=None)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


# --- the cells: one seed's work on one law (run through Study.map) ------------------------------
def manifold_cell(geometry: str, cfg: dict, streams: dict, network: bool) -> dict:
    """One seed on the circle or the sphere: the ε sweep of W1 for each score (all sharing the
    reference sample and the sampler's noise), the early-stopping reference W1(π, p_ε), the
    floor draws and the bound. ``streams`` holds the seed's named stream seeds."""
    target = GEOMETRIES[geometry](cfg["dim"])
    process = make_process(cfg)
    n, T, d, f64 = cfg["n"], cfg["T"], cfg["dim"], torch.float64
    ref = target.sample(n, _gen(streams["reference"]), dtype=f64)
    ref2 = target.sample(n, _gen(streams["floor"]), dtype=f64)
    floors = [exact_w1(ref, ref2)]
    g = _gen(streams["floor_extra"])
    for _ in range(cfg["floor_draws"] - 1):
        floors.append(exact_w1(target.sample(n, g, dtype=f64), target.sample(n, g, dtype=f64)))
    out: dict = {"floors": floors, "w1_p_eps": []}
    for eps in cfg["eps"]:  # the same forward noise at every ε
        p_eps = process.sample_marginal(ref2, eps, _gen(streams["p_eps"]))
        out["w1_p_eps"].append(exact_w1(p_eps, ref))
    scores = {
        "exact": (target.score_model(process), f64),
        "perturbed": (perturbed_score(target, process, cfg["perturbation_M"]), f64),
    }
    if network:
        model, loss = train_network(target, process, cfg["train_steps"], streams["network"])
        scores["network"] = (model, torch.float32)
        out["final_loss"] = loss
    for name, (score, dtype) in scores.items():
        # w1_other_ref: the same samples against the second reference draw (paired noise)
        row: dict = {"w1": [], "w1_other_ref": [], "log10_bound": [], "bound_terms": []}
        integrals = [0.0] * len(cfg["eps"])
        if name != "exact":
            integrals = err_integrals(
                score, target, process, cfg["eps"], T, cfg["profile_n"], streams["score_error"]
            )
        for eps, integral in zip(cfg["eps"], integrals, strict=True):
            grid = TimeGrid("geometric", steps=cfg["steps"], t_min=eps, t_max=T)
            x = draw(score, process, d, grid, n, streams["sampling"], dtype)
            row["w1"].append(exact_w1(x, ref))
            row["w1_other_ref"].append(exact_w1(x, ref2))
            terms = bound_log10(target, grid.times(process), integral)
            row["log10_bound"].append(terms["log10_total"])
            row["bound_terms"].append(terms)
        row["score_error_integral"] = integrals
        out[name] = row
    return out


def empirical_cell(cfg: dict, streams: dict, figure: bool) -> dict:
    """One seed on the empirical measure π_n of ``n_train`` circle points: the T sweep (exact
    score, W1 to π_n's atoms) and memorisation (exact score and a network trained on the same
    points, sampled with the same noise)."""
    circle = Circle(cfg["dim"])
    process = make_process(cfg)
    d, n, n_emp, f64 = cfg["dim"], cfg["n"], cfg["n_emp"], torch.float64
    pts = circle.sample(cfg["n_train"], _gen(streams["points"]), dtype=f64)
    emp = Empirical(pts)
    g = _gen(streams["floor"])
    floors_T = [exact_w1(emp.sample(n_emp, g, dtype=f64), pts) for _ in range(cfg["floor_draws"])]
    floors_mem = [exact_w1(emp.sample(n, g, dtype=f64), pts) for _ in range(cfg["floor_draws"])]
    exact = emp.score_model(process)
    out: dict = {"floors_T": floors_T, "floors_memorisation": floors_mem, "T_sweep": {}}
    eps = cfg["eps_T_sweep"]
    for kind in ("geometric", "uniform"):
        # w1_other_draw: a second sampler draw, shared by every T (the paired noise; W1 is to
        # π_n's atoms, so the samples are the only noise)
        row: dict = {"w1": [], "w1_other_draw": [], "log10_bound": []}
        for T in cfg["T_grid"]:
            grid = TimeGrid(kind, steps=cfg["steps"], t_min=eps, t_max=T)
            for key, stream in (("w1", "sampling_T"), ("w1_other_draw", "sampling_T_other")):
                x = draw(exact, process, d, grid, n_emp, streams[stream], f64)
                row[key].append(exact_w1(x, pts))
            row["log10_bound"].append(bound_log10(emp, grid.times(process), 0.0)["log10_total"])
        out["T_sweep"][kind] = row

    model, loss = train_network(emp, process, cfg["train_steps"], streams["network"])
    out["final_loss"] = loss
    pop = circle.sample(n, _gen(streams["population"]), dtype=f64)
    pop_other = circle.sample(n, _gen(streams["population_other"]), dtype=f64)
    mem: dict = {
        "w1_train_population": exact_w1(pts, pop),
        "w1_train_population_other": exact_w1(pts, pop_other),
    }
    eps_min = min(cfg["memorisation_eps"])
    for name, (score, dtype) in {"exact": (exact, f64), "network": (model, torch.float32)}.items():
        row = {k: [] for k in ("memorised_fraction", "nn_ratio_mean", "nn_ratio_below_third")}
        row |= {"w1_train": [], "w1_population": [], "w1_population_other": []}
        for e in cfg["memorisation_eps"]:
            grid = TimeGrid("geometric", steps=cfg["steps"], t_min=e, t_max=cfg["T"])
            x = draw(score, process, d, grid, n, streams["sampling_memorisation"], dtype)
            if figure and e == eps_min:  # the plane of the circle, for the figure only
                row["samples_plane"] = (x @ circle.basis.to(f64)).tolist()
            mean, below = nn_ratio(x, pts)
            row["memorised_fraction"].append(memorised_fraction(x, pts))
            row["nn_ratio_mean"].append(mean)
            row["nn_ratio_below_third"].append(below)
            row["w1_train"].append(exact_w1(x, pts))
            row["w1_population"].append(exact_w1(x, pop))
            row["w1_population_other"].append(exact_w1(x, pop_other))
        mem[name] = row
    if figure:
        mem["points_plane"] = (pts @ circle.basis.to(f64)).tolist()
    out["memorisation"] = mem
    return out


def cell(part: str, cfg: dict, streams: dict, network: bool = False, figure: bool = False):
    """The study's cell function (top level, JSON in and out, for ``Study.map``)."""
    if part == "empirical":
        return empirical_cell(cfg, streams, figure)
    return manifold_cell(part, cfg, streams, network)


MANIFOLD_STREAMS = (
    "reference",
    "floor",
    "floor_extra",
    "p_eps",
    "sampling",
    "score_error",
    "network",
)

EMPIRICAL_STREAMS = (
    "points",
    "floor",
    "sampling_T",
    "sampling_T_other",
    "network",
    "population",
    "population_other",
    "sampling_memorisation",
)


def cell_items(study: Study, cfg: dict) -> list[dict]:
    """One item per (seed, law): streams named by (stream, law, seed) under the study seed."""
    items = []
    for k, s in enumerate(study.seeds):
        for j, geo in enumerate(GEOMETRIES):
            streams = {key: study.seed_for(key, geo, s) for key in MANIFOLD_STREAMS}
            items.append(
                {
                    "part": geo,
                    "cfg": cfg,
                    "streams": streams,
                    "network": j < cfg["network_geometries"],
                }
            )
        streams = {key: study.seed_for(key, "empirical", s) for key in EMPIRICAL_STREAMS}
        items.append({"part": "empirical", "cfg": cfg, "streams": streams, "figure": k == 0})
    return items
