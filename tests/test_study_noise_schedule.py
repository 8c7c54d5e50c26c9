"""The noise-schedule study (paper A): its quick mode end to end, the protocol of its claims
(seeds, paired effects, provenance), and its numbers against independent truth (closed forms,
Monte Carlo of the sampler, the bounds' own inequalities)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from scorelab.grids import TimeGrid
from scorelab.metrics import kl_gaussians, w2_gaussians
from scorelab.sampling import generate
from scorelab.studies import run_study
from scorelab.studies.noise_schedule import cells, gaussian
from scorelab.studies.noise_schedule import settings as ns
from scorelab.verdicts import VERDICTS

from .helpers.results import numbers

pytestmark = pytest.mark.studies

SAMPLERS = ("euler_maruyama", "exponential_integrator")
CLAIMS = {
    # id: (source, exact)
    "discretisation-falls-with-n": ("paper", True),
    "mg25-falls-with-n": ("extrapolation", False),
    "gaussian-moderate-near-optimal": ("paper", True),
    "gaussian-extremes-worse": ("paper", True),
    "mg25-concave-worse": ("extrapolation", False),
    "mg25-convex-worse": ("extrapolation", False),
    "w2-bound-tracks-w2": ("paper", True),
    "kl-bound-tracks-trained-kl": ("paper", False),
    "bounds-hold": ("paper", False),
    "contraction-tightens": ("paper", True),
    "tuned-beats-linear-exact": ("paper", True),
    "tuned-beats-linear-trained-kl": ("paper", False),
    "tuned-beats-linear-trained-w2": ("paper", False),
    "paper-kl-n25": ("paper", True),
    "paper-bounds-n100": ("paper", True),
}


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("studies")
    (study,) = run_study("noise-schedule", out, quick=True, seed=0)
    folder = out / "noise-schedule"
    return study, folder, json.loads((folder / "results.json").read_text())


def _claims(payload) -> dict:
    return {c["id"]: c for c in payload["claims"]}


# --- the contract -----------------------------------------------------------------------------
def test_results_have_the_documented_fields(quick):
    _, _, payload = quick
    assert payload["study"] == "noise-schedule" and payload["quick"] is True
    assert payload["seeds"] == [0, 1]
    res = payload["results"]
    assert set(res) == {"mode", "settings", "gaussian", "tuning", "mg25", "trained", "claim_rules"}
    g = res["gaussian"]
    for key in ("dim", "mean", "cov", "schedules", "a_grid", "exact", "discretisation"):
        assert key in g
    assert set(g["mixing"]) == {
        "w2_bound_mixing",
        "w2_bound_mixing_no_contraction",
        "exact_kl",
        "exact_w2",
    }
    assert g["schedules"][-1] == "cosine" and len(g["schedules"]) == len(g["a_grid"]) + 1
    for s in SAMPLERS:
        assert set(g["exact"][s]) == {"25", "50", "100"}
        for N in ("25", "50", "100"):
            for metric in ("kl", "w2"):
                assert set(g["exact"][s][N][metric]) == set(g["schedules"])
    for row in res["tuning"].values():
        assert {"a", "w2_bound_tuned", "w2_bound_linear", *SAMPLERS} <= set(row)
    mg = res["mg25"]
    assert {"dim", "n", "schedules", "seeds", "noise", "per_seed", "mean"} <= set(mg)
    assert len(mg["per_seed"]) == 2
    for cell in mg["per_seed"]:
        assert set(cell) == {"floor", "exact", "kl_bound"}
        assert len(cell["floor"]["knn_kl"]) == ns.QUICK.mg25_floor_reps
        assert set(cell["exact"][SAMPLERS[0]]["25"]["knn_kl"]) == set(mg["schedules"])
    tr = res["trained"]
    assert tr["schedules"] == ["a=0", "a=10", "tuned"] and len(tr["per_seed"]) == 2
    for rows in [*tr["per_seed"], tr["mean"]]:
        assert set(rows) == set(tr["schedules"])
        for row in rows.values():
            assert {"kl_bound", "kl_bound_E2", "w2_bound", "epsilon", "epsilon_kl"} <= set(row)
            for s in SAMPLERS:
                assert set(row[s]) == {"kl", "w2"}
    assert len(tr["kl_tuned_with_linear_epsilon"]) == 2
    assert set(res["claim_rules"]) == set(CLAIMS)


def test_results_are_finite_numbers(quick):
    _, _, payload = quick
    values = list(numbers(payload["results"]))
    assert len(values) > 300
    assert all(math.isfinite(v) for v in values)


def test_report_and_figures(quick):
    _, folder, _ = quick
    html = (folder / "report.html").read_text()
    assert html.count("data:image/png;base64") == 4
    for name in ("schedules", "gaussian_error_and_bound_vs_a", "mg25_error_and_bound_vs_a"):
        assert (folder / f"{name}.png").stat().st_size > 1000
    assert (folder / "trained_error_and_bound_vs_a.png").exists()
    assert "Strasman" in html and "extrapolation" in html


# --- the protocol ------------------------------------------------------------------------------
def test_claims_follow_the_protocol(quick):
    """Every claim: an id, a source with where, a three-way verdict over the 2 quick seeds and
    a paired effect whose interval contains it; MG25 is labelled an extrapolation; the paper's
    own numbers are given where it has them."""
    _, _, payload = quick
    claims = payload["claims"]
    assert [c["id"] for c in claims] == list(CLAIMS)
    for c in claims:
        source, exact = CLAIMS[c["id"]]
        assert c["source"] == source and c["where"] and c["statement"] and c["measured"]
        assert c["verdict"] in VERDICTS and c["seeds"] == 2
        lo, hi = c["effect"]["ci"]
        assert lo <= c["effect"]["value"] <= hi
        if exact:  # identical per-seed values: a zero-width interval, said in `measured`
            assert lo == hi and c["measured"].startswith("Exact")
        if source == "extrapolation":
            assert "MG25" in c["where"] and "authors' code" in c["where"]
    by = _claims(payload)
    assert "117" in by["paper-bounds-n100"]["paper_value"]
    assert "28.5" in by["paper-bounds-n100"]["paper_value"]
    assert "0.32" in by["paper-kl-n25"]["paper_value"]


def test_exact_claims_hold(quick):
    """The closed-form claims do not depend on the seeds: they hold in every mode."""
    _, _, payload = quick
    by = _claims(payload)
    for cid, (_, exact) in CLAIMS.items():
        if exact:
            assert by[cid]["verdict"] == "holds", cid
    # and MG25's concave end is far worse than a = 4 (the one MG25 verdict quick mode decides)
    assert by["mg25-concave-worse"]["verdict"] == "holds"


def test_effects_are_the_paired_differences_in_the_results(quick):
    """The claims' effects are recomputed from the per-seed results, and their margins are the
    metrics' noise as stored."""
    _, _, payload = quick
    res, by = payload["results"], _claims(payload)
    mg, tr, rules = res["mg25"], res["trained"], res["claim_rules"]
    # MG25: kNN KL(a=−10) − kNN KL(a=4), the smaller over samplers, per seed
    per_seed = [
        min(
            c["exact"][s]["25"]["knn_kl"]["a=-10"] - c["exact"][s]["25"]["knn_kl"]["a=4"]
            for s in SAMPLERS
        )
        for c in mg["per_seed"]
    ]
    assert by["mg25-concave-worse"]["effect"]["value"] == pytest.approx(np.mean(per_seed))
    floors = [v for c in mg["per_seed"] for v in c["floor"]["knn_kl"]]
    assert mg["noise"]["knn_kl"] == pytest.approx(math.sqrt(np.mean(np.square(floors))))
    assert rules["mg25-concave-worse"]["margin"] == pytest.approx(mg["noise"]["knn_kl"])
    # trained: KL(a*) − KL(a=0), the larger over samplers, per seed (same draws for both)
    per_seed = [
        max(r["tuned"][s]["kl"] - r["a=0"][s]["kl"] for s in SAMPLERS) for r in tr["per_seed"]
    ]
    assert by["tuned-beats-linear-trained-kl"]["effect"]["value"] == pytest.approx(
        np.mean(per_seed)
    )
    kl_floor = [v for f in tr["floor"] for v in f["kl"]]
    assert tr["noise"]["kl"] == pytest.approx(np.std(kl_floor, ddof=1))
    assert rules["tuned-beats-linear-trained-kl"]["margin"] == pytest.approx(tr["noise"]["kl"])
    # the fitted-Gaussian KL floor sits near its first-order bias d(d+3)/(4n)
    assert np.mean(kl_floor) == pytest.approx(tr["fit_bias_kl"], rel=0.3)


def test_trained_networks_are_trained(quick):
    """Quick-mode networks are small but not broken: their fitted KL is far below the KL
    bound and within a few times the floor."""
    _, _, payload = quick
    tr = payload["results"]["trained"]
    for rows in tr["per_seed"]:
        for row in rows.values():
            for s in SAMPLERS:
                assert row[s]["kl"] < 0.1 * row["kl_bound"]
                assert row[s]["kl"] < 0.2


def test_a_trained_cell_is_deterministic():
    """The trained cell repeats bit for bit from its seeds (so the schedules of a seed share
    their draws exactly)."""
    kw = {
        "steps": 5,
        "lr": 1e-3,
        "width": 16,
        "n": 64,
        "N": 10,
        "n_mc": 8,
        "init_seed": 1,
        "data_seed": 2,
        "sampling_seed": 3,
        "mc_seed": 4,
    }
    assert cells.trained_cell(spec=0.0, **kw) == cells.trained_cell(spec=0.0, **kw)


# --- the numbers against independent truth ----------------------------------------------------
def test_exact_errors_match_the_library_metrics_and_the_sampler(quick):
    """The study's closed-form error equals the matrix KL/W2 of the oracle law, and the oracle
    law is what the sampler draws (Monte Carlo, float64, exact score)."""
    _, _, payload = quick
    g = payload["results"]["gaussian"]
    proc = ns.make_process(4.0)
    mean, var = gaussian.output_law(proc, "exponential_integrator", 25)
    mu = np.full(ns.D, ns.MU)
    kl = kl_gaussians(mu, ns.LAM, np.full(ns.D, mean), var)
    w2 = w2_gaussians(mu, ns.LAM, np.full(ns.D, mean), var)
    assert g["exact"]["exponential_integrator"]["25"]["kl"]["a=4"] == pytest.approx(kl, rel=1e-6)
    assert g["exact"]["exponential_integrator"]["25"]["w2"]["a=4"] == pytest.approx(w2, rel=1e-6)
    target = ns.gaussian_target()
    x = generate(
        target.score_model(proc),
        proc,
        (ns.D,),
        sampler="exponential_integrator",
        grid=TimeGrid("uniform", steps=25, t_min=0.0),
        n=20_000,
        seed=3,
        dtype=torch.float64,
    ).samples
    n = x.numel()
    assert float(x.mean()) == pytest.approx(mean, abs=4 * math.sqrt(var / n))
    assert float(x.var()) == pytest.approx(var, abs=4 * var * math.sqrt(2 / n))


def test_exact_error_falls_with_n_and_bounds_hold(quick):
    _, _, payload = quick
    g = payload["results"]["gaussian"]
    for s in SAMPLERS:
        for lab in g["schedules"]:
            disc = [g["discretisation"][s][N]["w2"][lab] for N in ("25", "50", "100")]
            assert disc[0] > disc[1] > disc[2]
            for N in ("25", "50", "100"):
                assert g["bounds"][N]["kl"][lab] >= g["exact"][s][N]["kl"][lab]
                assert g["bounds"][N]["w2"][lab] >= g["exact"][s][N]["w2"][lab]
    # the continuous-time limit is the only error left as N → ∞: it lies below every N
    for lab in g["schedules"]:
        assert g["mixing"]["exact_w2"][lab] <= g["mixing"]["w2_bound_mixing"][lab]


def test_paper_values_and_tuning(quick):
    """Exact-score KL at N = 25 is the authors' (docs/theory.md §11.1) and the W2-bound optimum
    sits near a = 4 (docs/bounds.md: a = 4.05 at N = 100)."""
    _, _, payload = quick
    res = payload["results"]
    em = res["gaussian"]["exact"]["euler_maruyama"]["25"]["kl"]
    ei = res["gaussian"]["exact"]["exponential_integrator"]["25"]["kl"]
    assert em["a=-10"] == pytest.approx(0.12, abs=0.02)
    assert ei["a=-10"] == pytest.approx(0.32, abs=0.02)
    assert ei["a=0"] == pytest.approx(0.06, abs=0.01)
    assert res["tuning"]["100"]["a"] == pytest.approx(4.05, abs=0.05)
    for row in res["tuning"].values():
        assert row["w2_bound_tuned"] <= row["w2_bound_linear"]
        for s in SAMPLERS:
            assert row[s]["kl_tuned"] < row[s]["kl_linear"]


def test_exact_gaussian_part_is_deterministic(quick):
    """The closed-form part does not depend on any random draw: recomputing it gives the same
    numbers bit for bit (the full rerun is the slow test below)."""
    _, _, payload = quick
    again = gaussian.gaussian_part(ns.QUICK, lambda msg: None)
    assert json.loads(json.dumps(again)) == payload["results"]["gaussian"]


@pytest.mark.slow
def test_quick_mode_is_deterministic(quick, tmp_path):
    _, _, payload = quick
    run_study("noise-schedule", tmp_path, quick=True, seed=0)
    again = json.loads((tmp_path / "noise-schedule" / "results.json").read_text())
    assert again["results"] == payload["results"]
    assert again["claims"] == payload["claims"]
