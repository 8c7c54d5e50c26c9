"""The noise-schedule study (paper A): its quick mode end to end, the protocol of its claims
(seeds, paired effects, provenance), and its numbers against independent truth (closed forms,
Monte Carlo of the sampler, the bounds' own inequalities)."""

from __future__ import annotations

import itertools
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

from .helpers.results import check_claim

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


def _grid(values: dict) -> dict[float, float]:
    """A results row keyed by schedule label, as {a: value} without the cosine schedule."""
    return {float(k.split("=")[1]): v for k, v in values.items() if k != "cosine"}


def _exact_evidence(res: dict) -> dict[str, tuple[float, str, float]]:
    """The closed-form claims' values recomputed from the stored exact errors, bounds and
    tuning: id → (value, direction, margin)."""
    g, tuning = res["gaussian"], res["tuning"]
    Ns = sorted(g["bounds"], key=int)
    near = math.log(1.5)
    worst_ratio = max(
        b / a
        for s in SAMPLERS
        for metric in ("kl", "w2")
        for lab in g["schedules"]
        for a, b in itertools.pairwise([g["discretisation"][s][N][metric][lab] for N in Ns])
    )
    nears, worses = [], []
    for s in SAMPLERS:
        for metric in ("kl", "w2"):
            v = _grid(g["exact"][s][Ns[0]][metric])
            mid = min(v[a] for a in v if 2 <= a <= 5)
            nears.append(math.log(mid / min(v.values())))
            worses.append(math.log(min(v[min(v)], v[max(v)]) / mid))
    tracks = max(
        row[s]["w2_tuned"] / min(*g["exact"][s][N]["w2"].values(), row[s]["w2_tuned"])
        for N, row in tuning.items()
        for s in SAMPLERS
    )
    mx = g["mixing"]
    contraction = min(
        min(
            math.log(mx["w2_bound_mixing_no_contraction"][k] / mx["w2_bound_mixing"][k]),
            math.log(mx["w2_bound_mixing"][k] / mx["exact_w2"][k]),
        )
        for k in g["schedules"]
    )
    tuned = max(
        math.log(row[s][f"{m}_tuned"] / row[s][f"{m}_linear"])
        for row in tuning.values()
        for s in SAMPLERS
        for m in ("kl", "w2")
    )
    # the paper's figures as docs/theory.md §11.1 reads them, with the reading tolerances
    kl25 = {
        "euler_maruyama": [((-10, -10), 0.12), ((0, 0), 0.02), ((4, 6), 0.01), ((10, 10), 0.04)],
        "exponential_integrator": [
            ((-10, -10), 0.32), ((0, 0), 0.06), ((3, 5), 0.03), ((10, 10), 0.08)
        ],
    }  # fmt: skip
    paper_kl = max(
        abs(min(v for a, v in _grid(g["exact"][s]["25"]["kl"]).items() if lo <= a <= hi) - ref)
        / max(0.3 * ref, 0.01)
        for s, refs in kl25.items()
        for (lo, hi), ref in refs
    )
    b100 = {m: _grid(g["bounds"]["100"][m]) for m in ("kl", "w2")}
    bounds100 = [(b100["kl"][-10], 6.08), (b100["kl"][0], 6.04), (b100["kl"][10], 6.76)]
    bounds100 += [(b100["w2"][-10], 117.0), (b100["w2"][0], 47.0), (b100["w2"][10], 46.0)]
    bounds100 += [(tuning["100"]["w2_bound_tuned"], 28.5)]
    paper_bounds = max(abs(ours - ref) / (0.1 * ref) for ours, ref in bounds100)
    return {
        "discretisation-falls-with-n": (worst_ratio - 1, "less", 0.0),
        "gaussian-moderate-near-optimal": (max(nears), "within", near),
        "gaussian-extremes-worse": (min(worses), "greater", near),
        "w2-bound-tracks-w2": (math.log(tracks), "within", near),
        "contraction-tightens": (contraction, "greater", 0.0),
        "tuned-beats-linear-exact": (tuned, "less", 0.0),
        "paper-kl-n25": (paper_kl, "within", 1.0),
        "paper-bounds-n100": (paper_bounds, "within", 1.0),
    }


def _seed_evidence(res: dict) -> dict[str, tuple[list, list | None, str, float]]:
    """The Monte Carlo claims' per-seed evidence recomputed from the stored per-seed cells:
    id → (a, b, direction, margin)."""
    g, mg, tr = res["gaussian"], res["mg25"], res["trained"]
    knn = mg["noise"]["knn_kl"]
    Ns = sorted(mg["per_seed"][0]["kl_bound"], key=int)

    def mean_knn(cell, N):
        return np.mean([v for s in SAMPLERS for v in cell["exact"][s][N]["knn_kl"].values()])

    def end_minus_mid(end):
        return [
            min(c["exact"][s][Ns[0]]["knn_kl"][end] - c["exact"][s][Ns[0]]["knn_kl"]["a=4"]
                for s in SAMPLERS)
            for c in mg["per_seed"]
        ]  # fmt: skip

    def kl_tracks(rows):
        at = min(rows, key=lambda k: rows[k]["kl_bound"])
        return max(
            math.log(rows[at][s]["kl"] / min(r[s]["kl"] for r in rows.values())) for s in SAMPLERS
        )

    exact_ratio = max(
        val / g["bounds"][N][m][lab]
        for s in SAMPLERS
        for N in g["bounds"]
        for m in ("kl", "w2")
        for lab, val in g["exact"][s][N][m].items()
    )
    held = [
        max(
            exact_ratio,
            max(c["exact"][s][N]["knn_kl"][lab] / c["kl_bound"][N][lab]
                for s in SAMPLERS for N in c["kl_bound"] for lab in c["kl_bound"][N]),
            max(max(r[s]["kl"] / r["kl_bound"], r[s]["w2"] / r["w2_bound"])
                for r in rows.values() for s in SAMPLERS),
        )
        for c, rows in zip(mg["per_seed"], tr["per_seed"], strict=True)
    ]  # fmt: skip

    def tuned_minus_linear(m):
        return [max(r["tuned"][s][m] - r["a=0"][s][m] for s in SAMPLERS) for r in tr["per_seed"]]

    ones = [1.0] * len(held)
    return {
        "mg25-falls-with-n": (
            [mean_knn(c, Ns[-1]) for c in mg["per_seed"]],
            [mean_knn(c, Ns[0]) for c in mg["per_seed"]],
            "less",
            knn,
        ),
        "mg25-concave-worse": (end_minus_mid("a=-10"), None, "greater", knn),
        "mg25-convex-worse": (end_minus_mid("a=10"), None, "greater", knn),
        "kl-bound-tracks-trained-kl": (
            [kl_tracks(rows) for rows in tr["per_seed"]],
            None,
            "within",
            math.log(1.5),
        ),
        "bounds-hold": (held, ones, "less", 0.0),
        "tuned-beats-linear-trained-kl": (
            tuned_minus_linear("kl"),
            None,
            "less",
            tr["noise"]["kl"],
        ),
        "tuned-beats-linear-trained-w2": (
            tuned_minus_linear("w2"),
            None,
            "less",
            tr["noise"]["w2"],
        ),
    }


def test_every_claim_is_its_evidence_recomputed(quick):
    """Each claim's effect, interval and verdict, recomputed from the numbers results.json
    stores (the closed-form values, the per-seed cells) with a second implementation of the
    paired t-interval and the three-way rule; the rule recorded beside it agrees."""
    _, _, payload = quick
    res, by = payload["results"], _claims(payload)
    n = len(payload["seeds"])
    evidence = {
        cid: ([value] * n, None, direction, margin)
        for cid, (value, direction, margin) in _exact_evidence(res).items()
    } | _seed_evidence(res)
    assert set(evidence) == set(CLAIMS)
    for cid, (a, b, direction, margin) in evidence.items():
        check_claim(by[cid], a, b, direction=direction, margin=margin)
        rule = res["claim_rules"][cid]
        assert rule["direction"] == direction and rule["margin"] == pytest.approx(margin), cid


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
