"""Study `design-space` (paper C): the quick mode end to end, checked against independent facts.

The quick mode runs once (module fixture); the checks cover the claims' schema (id, source,
where naming the paper's statement for a `paper` claim, verdict, seeds, paired effect with CI
or `exact`), that each claim's effect is the paired difference of the per-seed numbers it
reports and its margin the noise of that difference (recomputed from the second reference
draw and the second evaluation points), that the regime checkpoints are chosen by the measured
E_S share as documented (and a claim whose regime was not reached is inconclusive), the bound's
ranking table recomputed, and the numbers against closed forms (paper C's E_I for the ring,
E_D's ordering and decrease in N — the identity that E_D + E_I is lower on the geometric grid,
tested here rather than claimed — E_S = 0 for the exact score, the position of EDM's weighting
bump). A full rerun for determinism is marked slow; a short training run checks determinism
cheaply.
"""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
import torch

from scorelab.grids import TimeGrid
from scorelab.studies import run_study
from scorelab.studies.design_space import cells as ds_cells
from scorelab.studies.design_space import error_terms
from scorelab.studies.design_space import settings as ds
from scorelab.verdicts import paired_effect

from .helpers.results import (
    check_claim,
    check_exact_claim,
    check_provenance,
    four_way,
    paired_interval,
)

pytestmark = pytest.mark.studies

FIGURES = ("weights", "training", "score_error", "grids", "samples")
CLAIMS = {
    "weighting-bell": "extrapolation",
    "training-converges": "extrapolation",
    "score-error-edm-vs-song": "extrapolation",
    "score-error-weighting": "extrapolation",
    "score-error-es18": "extrapolation",
    "grid-well": "extrapolation",
    "grid-well-n400": "extrapolation",
    "grid-under": "extrapolation",
    "grid-small-n-under": "extrapolation",
    "grid-exact-small-n": "extrapolation",
    "bound-es-favours-edm": "paper",
    "samples-edm-vs-song": "extrapolation",
}


def _paired_noise(d_ref, d_other) -> float:
    """The noise of a paired difference from two evaluations that share everything but the
    reference draw: their difference has variance 2s², so s = RMS(change)/√2."""
    change = np.subtract(d_ref, d_other)
    return float(np.sqrt(np.mean(change**2) / 2))


def _w2_margin(cells, ka: str, kb: str) -> float:
    return _paired_noise(*([c[k][ka] - c[k][kb] for c in cells] for k in ("w2", "w2_other_ref")))


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("studies")
    run_study("design-space", out, quick=True, seed=0)
    folder = out / "design-space"
    return folder, json.loads((folder / "results.json").read_text())


def _claims(data) -> dict:
    return {c["id"]: c for c in data["claims"]}


def test_outputs_and_sigma_data(quick):
    """The report and figures are written, and σ_data, estimated from 10 000 ring points, is
    the ring's closed form √(r²/2 + std²) (each coordinate of r(cos θ, sin θ) + std·z has that
    standard deviation) to Monte Carlo precision: its standard error is ≈ 0.0013, so 0.01 is
    ≈ 8 of them."""
    folder, data = quick
    assert data["study"] == "design-space" and data["quick"] is True
    assert data["seeds"] == [0, 1]
    res = data["results"]
    exact = math.sqrt(ds.RING_RADIUS**2 / 2 + ds.RING_STD**2)
    assert res["settings"]["sigma_data"] == pytest.approx(exact, abs=0.01)
    html = (folder / "report.html").read_text()
    assert html.count("data:image/png;base64") >= len(FIGURES)
    for name in FIGURES:
        assert (folder / f"{name}.png").stat().st_size > 1000


def _mid_log(profile: dict, sigmas: np.ndarray, mid: list[float]) -> tuple[float, float]:
    """The mean of ln c(σ) over the claims' σ-range and its standard error."""
    keep = (sigmas >= mid[0]) & (sigmas <= mid[1])
    c, se = np.asarray(profile["normalised"])[keep], np.asarray(profile["rel_se"])[keep]
    return float(np.log(c).mean()), float(np.sqrt(np.sum(se**2)) / keep.sum())


def test_every_claim_is_its_evidence_recomputed(quick):
    """Each claim's effect, interval, margin and verdict recomputed from the per-seed numbers
    in results.json with a second implementation of the paired t-interval, the paired-noise
    margin and the four-outcome rule (and the study's override: a regime not reached is
    inconclusive); the seed-free weighting claim is exact; every claim's provenance is
    checked."""
    _, data = quick
    res, claims, cells = data["results"], _claims(data), data["results"]["seeds"]
    s = res["settings"]
    assert set(claims) == set(CLAIMS) and len(data["claims"]) == len(CLAIMS)
    assert all(claims[cid]["source"] == source for cid, source in CLAIMS.items())
    for c in data["claims"]:
        check_provenance(c)
    # the weighting: EDM's total weight per unit ln σ is p_LN(ln σ)(1 + σ²/σ_d²) (theory §6.6)
    ls = np.linspace(math.log(s["sigma_min"]), math.log(s["sigma_max"]), 401)
    w = np.exp(-0.5 * ((ls + 1.2) / 1.2) ** 2) * (1 + np.exp(2 * ls) / s["sigma_data"] ** 2)
    bell = min(w.max() / w[0], w.max() / w[-1])
    assert res["weighting"]["edm_peak_over_ends"] == pytest.approx(bell, rel=1e-9)
    check_exact_claim(claims["weighting-bell"], math.log10(bell), direction="greater", margin=1)
    # training: the excess of each design's own objective, end over start
    worst = [
        max(c["training"][k]["excess"][-1] / c["training"][k]["excess"][0] for k in ds.DESIGNS)
        for c in cells
    ]
    check_claim(
        claims["training-converges"],
        [math.log(v) for v in worst],
        direction="less",
        margin=math.log(2),
    )
    _check_score_error_claims(claims, cells, s)
    _check_sampling_claims(claims, cells, s)


def _check_score_error_claims(claims: dict, cells: list[dict], s: dict) -> None:
    """Score error in the mid σ-range and E_S on EDM's N = 18 grid; the margins from the
    second set of evaluation points."""
    sigmas = np.exp(np.linspace(math.log(s["sigma_min"]), math.log(s["sigma_max"]), s["n_profile"]))

    def mid(c, draw, key):
        return _mid_log(c[draw][key], sigmas, s["mid_range"])[0]

    for other, cid in (
        ("song", "score-error-edm-vs-song"),
        ("song_precond", "score-error-weighting"),
    ):
        a, b = [mid(c, "profile", other) for c in cells], [mid(c, "profile", "edm") for c in cells]
        d_other = [mid(c, "profile_other", other) - mid(c, "profile_other", "edm") for c in cells]
        margin = _paired_noise(np.subtract(a, b), d_other)
        check_claim(claims[cid], a, b, direction="greater", margin=margin)
    es = {k: [c["terms"][f"{k}_final/edm/18"] for c in cells] for k in ("edm", "song_precond")}
    a, b = ([math.log(r["E_S"]) for r in es[k]] for k in ("edm", "song_precond"))
    d_other = [
        math.log(x["E_S_other_draw"]) - math.log(y["E_S_other_draw"])
        for x, y in zip(es["edm"], es["song_precond"], strict=True)
    ]
    margin = _paired_noise(np.subtract(a, b), d_other)
    check_claim(claims["score-error-es18"], a, b, direction="less", margin=margin)


def _check_sampling_claims(claims: dict, cells: list[dict], s: dict) -> None:
    """W2 on the two grids, paired per seed, the margin the noise of the paired difference
    against the second reference sample; E_S's preference for EDM's grid."""
    nc, ns = s["n_compare"], s["n_small"]
    for cid, ck, nn, better, other in _grid_claims(nc, ns):
        ka, kb = f"{ck}/{better}/{nn}", f"{ck}/{other}/{nn}"
        a, b = [c["w2"][ka] for c in cells], [c["w2"][kb] for c in cells]
        if ck in ("well", "under"):
            reached = all(c["checkpoints"][ck]["met"] for c in cells)
        elif ck == "final":  # well trained at this N: E_S < 10 % of the bound on both grids
            shares = [c["terms"][f"final/{g}/{nn}"]["share"] for c in cells for g in ds.GRIDS]
            reached = max(shares) < ds.WELL_SHARE
        else:
            reached = True
        check_claim(
            claims[cid], a, b, direction="less", margin=_w2_margin(cells, ka, kb),
            verdict=None if reached else "inconclusive",
        )  # fmt: skip
    es = [{g: c["terms"][f"under/{g}/{nc}"] for g in ds.GRIDS} for c in cells]
    a, b = ([math.log(r[g]["E_S"]) for r in es] for g in ds.GRIDS)
    d_other = [math.log(r["edm"]["E_S_other_draw"] / r["geometric"]["E_S_other_draw"]) for r in es]
    margin = _paired_noise(np.subtract(a, b), d_other)
    check_claim(claims["bound-es-favours-edm"], a, b, direction="less", margin=margin)
    ka, kb = f"final/edm/{ns}", f"song_final/edm/{ns}"
    a, b = [c["w2"][ka] for c in cells], [c["w2"][kb] for c in cells]
    check_claim(
        claims["samples-edm-vs-song"], a, b, direction="less", margin=_w2_margin(cells, ka, kb)
    )


def _grid_claims(nc: int, ns: int) -> tuple:
    """(id, checkpoint, N, the grid claimed better, the other grid) of every grid claim."""
    return (
        ("grid-well", "final", ns, "geometric", "edm"),
        ("grid-well-n400", "well", nc, "geometric", "edm"),
        ("grid-under", "under", nc, "edm", "geometric"),
        ("grid-small-n-under", "under", ns, "edm", "geometric"),
        ("grid-exact-small-n", "exact", ns, "geometric", "edm"),
    )


def test_bound_against_measured_table(quick):
    """The bound's ranking of the grids recomputed from the terms (exact score: E_I + E_D
    alone), the measured W2 difference of its preferred grid with its interval, margin and
    verdict; the exact score is sampled at every N of the scan."""
    _, data = quick
    res, cells = data["results"], data["results"]["seeds"]
    rows = res["bound_vs_measured"]
    ns = res["settings"]["share_ns"]
    assert [(r["checkpoint"], r["N"]) for r in rows if r["checkpoint"] == "exact"] == [
        ("exact", n) for n in ns
    ]
    for r in rows:
        ck, n = r["checkpoint"], r["N"]
        if ck == "exact":
            exact = {g: res["exact_terms"][f"{g}/{n}"] for g in ds.GRIDS}
            tot = {g: [t["E_I"] + t["E_D"]] for g, t in exact.items()}
        else:
            tot = {g: [c["terms"][f"{ck}/{g}/{n}"]["total"] for c in cells] for g in ds.GRIDS}
        ratio = float(np.mean(np.divide(tot["edm"], tot["geometric"])))
        pref = "geometric" if ratio > 1 else "edm"
        rel = ratio - 1 if ratio > 1 else 1 / ratio - 1
        assert r["bound_prefers"] == pref and r["bound_rel_difference"] == pytest.approx(rel)
        other = "edm" if pref == "geometric" else "geometric"
        ka, kb = f"{ck}/{pref}/{n}", f"{ck}/{other}/{n}"
        value, lo, hi = paired_interval([c["w2"][ka] for c in cells], [c["w2"][kb] for c in cells])
        eff = r["w2_preferred_minus_other"]
        assert eff["value"] == pytest.approx(value) and eff["ci"] == pytest.approx([lo, hi])
        margin = _w2_margin(cells, ka, kb)
        assert r["margin"] == pytest.approx(margin, rel=1e-9)
        assert r["verdict"] == four_way(lo, hi, "less", margin)
        mean_w2 = np.mean([c["w2"][k] for c in cells for k in (ka, kb)])
        assert r["resolvable"] == (rel >= 3 * margin / mean_w2)
    # E_D alone ranks the geometric grid first at every N (docs/theory.md §9.3)
    assert all(r["bound_prefers"] == "geometric" for r in rows if r["checkpoint"] == "exact")


def test_grid_claims_are_paired_w2_differences(quick):
    _, data = quick
    claims, res = _claims(data), data["results"]
    s = res["settings"]
    cells = res["seeds"]
    for cid, ck, n, better, other in _grid_claims(s["n_compare"], s["n_small"]):
        a = [c["w2"][f"{ck}/{better}/{n}"] for c in cells]
        b = [c["w2"][f"{ck}/{other}/{n}"] for c in cells]
        eff = paired_effect(a, b)
        assert claims[cid]["effect"]["value"] == pytest.approx(eff.value, rel=1e-9)
        assert claims[cid]["effect"]["ci"] == pytest.approx(list(eff.ci), rel=1e-9)
        assert "two independent reference draws" in claims[cid]["margin"]["rule"]
    # the floor (shown beside the W2 values, no longer a margin), from independent pairs
    floor = res["w2_floor"]
    assert len(floor["values"]) == 2 * s["n_floor"]
    assert floor["sd"] == pytest.approx(float(np.std(floor["values"], ddof=1)))
    # the second reference sample is an independent draw: every W2 moves a little
    for c in cells:
        assert set(c["w2"]) == set(c["w2_other_ref"])
        assert all(c["w2"][k] != c["w2_other_ref"][k] for k in c["w2"])


def test_checkpoints_are_chosen_by_the_e_s_share(quick):
    _, data = quick
    res = data["results"]
    s = res["settings"]
    nc = s["n_compare"]
    claims = _claims(data)
    for cell in res["seeds"]:
        scan, chosen = cell["scan"], cell["checkpoints"]
        worst = np.maximum(scan["share"][f"edm/{nc}"], scan["share"][f"geometric/{nc}"])
        least = np.minimum(scan["share"][f"edm/{nc}"], scan["share"][f"geometric/{nc}"])
        well, under = chosen["well"], chosen["under"]
        # well: the first checkpoint below 10 % on both grids (else the lowest, flagged)
        ok = np.flatnonzero(worst < ds.WELL_SHARE)
        assert well["met"] == bool(ok.size)
        assert well["index"] == (ok[0] if ok.size else int(np.argmin(worst)))
        # under: the last checkpoint above 50 % on both grids (else the highest, flagged)
        ok = np.flatnonzero(least > ds.UNDER_SHARE)
        assert under["met"] == bool(ok.size)
        assert under["index"] == (ok[-1] if ok.size else int(np.argmax(least)))
        for ck in (well, under):
            assert ck["step"] == scan["step"][ck["index"]]
            for g in ds.GRIDS:
                assert ck["share"][g] == pytest.approx(scan["share"][f"{g}/{nc}"][ck["index"]])
                assert cell["terms"][f"{'well' if ck is well else 'under'}/{g}/{nc}"][
                    "share"
                ] == pytest.approx(ck["share"][g])
        # training lowers the E_S share at every N, and at small N E_D dominates throughout
        for key, shares in scan["share"].items():
            assert shares[-1] < shares[0], key
        assert max(scan["share"][f"geometric/{s['n_small']}"]) < ds.WELL_SHARE
    for cid, which in (("grid-well-n400", "well"), ("grid-under", "under")):
        if not all(c["checkpoints"][which]["met"] for c in res["seeds"]):
            assert claims[cid]["verdict"] == "inconclusive"
            assert claims[cid]["measured"].startswith("Regime not reached")


def test_terms_against_closed_forms(quick):
    _, data = quick
    res = data["results"]
    terms, ns = res["exact_terms"], res["settings"]["share_ns"]
    # E_I for a mixture: the second-moment bound E‖X₀‖²/(2σ_max²) with E‖X₀‖² = r² + 2 std²
    e_i = (ds.RING_RADIUS**2 + 2 * ds.RING_STD**2) / (2 * ds.SIGMA_MAX**2)
    for grid in ds.GRIDS:
        ed = [terms[f"{grid}/{n}"]["E_D"] for n in ns]
        assert all(a > b for a, b in itertools.pairwise(ed))  # decreasing in N
        for n in ns:
            row = terms[f"{grid}/{n}"]
            assert row["E_S"] == 0.0 and row["share"] == 0.0
            assert row["E_I"] == pytest.approx(e_i, rel=1e-9)
            assert row["total"] == pytest.approx(row["E_I"] + row["E_D"])
    for n in ns:  # docs/theory.md §9.3: EDM's ρ-grid has the larger E_D at every finite ρ
        geo, edm = terms[f"geometric/{n}"], terms[f"edm/{n}"]
        assert geo["E_D_log"] < edm["E_D_log"] and geo["E_D"] < edm["E_D"]
        # the log form of a geometric grid is exactly N·d·(2 ln(σ_max/σ_min)/N)²
        assert geo["E_D_log"] == pytest.approx(
            2 * (2 * math.log(ds.SIGMA_MAX / ds.SIGMA_MIN)) ** 2 / n
        )
    for cell in res["seeds"]:
        for key, row in cell["terms"].items():
            assert row["E_S"] > 0, key
            assert row["share"] == pytest.approx(row["E_S"] / row["total"])


def test_grid_terms_interpolate_a_constant_profile():
    # a constant normalised error c gives E_S = c Σ_k (1 − σ_{k+1}²/σ_k²) (docs/theory.md §9.3)
    s = ds.QUICK
    target, process = ds.ring_target(), ds.train_process()
    for kind in ds.GRIDS:
        row = error_terms.grid_terms(target, process, kind, 18, [0.3] * s.n_profile, s)
        sig = ds.grid_sigmas(process, TimeGrid(kind, 18))
        assert row["E_S"] == pytest.approx(0.3 * np.sum(1 - sig[1:] ** 2 / sig[:-1] ** 2))


def test_pick_rules():
    sh = [
        {"edm": a, "geometric": b}
        for a, b in ((0.7, 0.8), (0.6, 0.4), (0.09, 0.2), (0.05, 0.08), (0.02, 0.03))
    ]
    assert ds_cells.pick_checkpoint(sh, "well") == (3, True)
    assert ds_cells.pick_checkpoint(sh, "under") == (0, True)
    high = [{"edm": 0.3, "geometric": 0.4}, {"edm": 0.2, "geometric": 0.3}]
    assert ds_cells.pick_checkpoint(high, "well") == (1, False)
    assert ds_cells.pick_checkpoint(high, "under") == (0, False)


def test_score_error_and_samples(quick):
    _, data = quick
    res = data["results"]
    ns = res["settings"]["n_small"]
    for cell in res["seeds"]:
        # training improves the samples; the exact score is near the floor at small N
        for g in ds.GRIDS:
            assert cell["w2"][f"final/{g}/{ns}"] < cell["w2"][f"under/{g}/{ns}"]
            assert cell["w2"][f"exact/{g}/{ns}"] < 2 * res["w2_floor"]["mean"]
        assert len(cell["profile"]["edm"]["normalised"]) == res["settings"]["n_profile"]
    ratios = res["score_error"]["mid_ratio_over_edm"]
    claims = _claims(data)
    for other, cid in (
        ("song", "score-error-edm-vs-song"),
        ("song_precond", "score-error-weighting"),
    ):
        assert claims[cid]["effect"]["value"] == pytest.approx(np.mean(np.log(ratios[other])))


def test_weighting_bump_where_theory_puts_it(quick):
    _, data = quick
    w = data["results"]["weighting"]
    # p_LN(ln σ)(1 + σ²/σ_d²): the dominant bump is centred at −1.2 + 2·1.2² = 1.68
    assert abs(math.log(w["edm_peak_sigma"]) - 1.68) < 0.05
    assert w["song_max_over_min"] == pytest.approx(1.0)


def test_sampling_process_is_the_frozen_score_ve_step():
    proc = ds.sampling_process()
    t = torch.tensor([1e-4, 0.3, 10.0, 6000.0], dtype=torch.float64)
    # σ² = t and g² = 1: Euler–Maruyama's h g² is exactly σ_k² − σ_{k+1}²
    assert torch.allclose(proc.variance(t), t, rtol=1e-12)
    assert torch.allclose(proc.diffusion2(t), torch.ones_like(t), rtol=1e-9)
    grid = TimeGrid("edm", 10)
    assert np.allclose(
        ds.grid_sigmas(proc, grid), ds.grid_sigmas(ds.train_process(), grid), rtol=1e-9
    )


def test_training_is_deterministic_for_a_seed():
    s = ds.Settings(
        steps=20,
        batch_size=32,
        width=16,
        depth=2,
        lr=2e-3,
        ema_half_life=5.0,
        scan_every=10,
        n_eval=64,
        n_err=32,
        n_profile=5,
        n_samples=64,
        n_floor=2,
    )
    target, process = ds.ring_target(), ds.train_process()
    streams = {k: i + 1 for i, k in enumerate(ds_cells.STREAMS)}
    runs = [ds_cells.train_design("edm", target, process, s, 0.5, streams, True) for _ in range(2)]
    (_m1, c1, st1), (_m2, c2, st2) = runs
    assert c1 == c2 and c1["step"] == [0, 10, 20] and len(st1) == 3
    for a, b in zip(st1, st2, strict=True):
        assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_quick_mode_is_deterministic(quick, tmp_path):
    _, first = quick
    run_study("design-space", tmp_path, quick=True, seed=0)
    second = json.loads((tmp_path / "design-space" / "results.json").read_text())
    assert first["results"] == second["results"]
