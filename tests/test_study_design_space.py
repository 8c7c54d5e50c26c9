"""Study `design-space` (paper C): the quick mode end to end, checked against independent facts.

The quick mode runs once (module fixture); the checks compare its numbers with closed forms
(paper C's E_I for the ring, E_D's ordering and decrease in N, E_S = 0 for the exact score, the
position of EDM's weighting bump) and with sanity bounds (the exact score's samples reach the
W2 floor). A full rerun for determinism is marked slow; a short training run checks determinism
cheaply in the default run.
"""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
import torch

from scorelab.studies import design_space as ds
from scorelab.studies import run_study
from scorelab.studies.common import Study

from .helpers.results import numbers

pytestmark = pytest.mark.studies

FIGURES = ("weights", "training", "score_error", "w2_vs_n", "samples")


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("studies")
    run_study("design-space", out, quick=True, seed=0)
    folder = out / "design-space"
    return folder, json.loads((folder / "results.json").read_text())


def test_outputs_exist_and_are_finite(quick):
    folder, data = quick
    assert data["study"] == "design-space" and data["quick"] is True
    res = data["results"]
    for key in ("settings", "weighting", "training", "score_error", "sampling"):
        assert key in res
    nums = list(numbers(res))
    assert nums and all(isinstance(v, int | float) and math.isfinite(v) for v in nums)
    html = (folder / "report.html").read_text()
    assert html.count("data:image/png;base64") >= len(FIGURES)
    for name in FIGURES:
        assert (folder / f"{name}.png").stat().st_size > 1000
    assert len(data["claims"]) == 10
    for c in data["claims"]:
        assert c["claim"] and c["measured"] and c["holds"] in (True, False, None)


def test_documented_fields(quick):
    _, data = quick
    res = data["results"]
    for key in ds.DESIGNS:
        tr = res["training"][key]
        for f in ("step", "excess", "excess_final_over_initial", "e_s_edm18", "loss_floor"):
            assert f in tr
        assert len(tr["step"]) == len(tr["excess"]) == len(tr["e_s_edm18"])
        for ck in ds.CHECKPOINTS:
            prof = res["score_error"][key][ck]
            assert len(prof["normalised"]) == len(res["score_error"]["sigma"])
    samp = res["sampling"]
    for key in ("exact", *ds.DESIGNS):
        for ck in ("exact",) if key == "exact" else ds.CHECKPOINTS:
            for grid in ds.GRIDS:
                for n in data["results"]["settings"]["steps_n"]:
                    row = samp[key][ck][grid][str(n)]
                    assert set(row) == {"E_I", "E_D", "E_D_log", "E_S", "total", "w2"}


def test_terms_against_closed_forms(quick):
    _, data = quick
    samp, ns = data["results"]["sampling"], data["results"]["settings"]["steps_n"]
    # E_I for a mixture: the second-moment bound E‖X₀‖²/(2σ_max²) with E‖X₀‖² = r² + 2 std²
    e_i = (ds.RING_RADIUS**2 + 2 * ds.RING_STD**2) / (2 * ds.SIGMA_MAX**2)
    for grid in ds.GRIDS:
        ed = [samp["exact"]["exact"][grid][str(n)]["E_D"] for n in ns]
        assert all(a > b for a, b in itertools.pairwise(ed))  # decreasing in N
        for n in ns:
            row = samp["exact"]["exact"][grid][str(n)]
            assert row["E_S"] == 0.0
            assert row["E_I"] == pytest.approx(e_i, rel=1e-9)
            assert row["total"] == pytest.approx(row["E_I"] + row["E_D"] + row["E_S"])
    for n in ns:  # docs/theory.md §9.3: EDM's ρ-grid has the larger E_D at every finite ρ
        geo = samp["exact"]["exact"]["geometric"][str(n)]["E_D_log"]
        edm = samp["exact"]["exact"]["edm"][str(n)]["E_D_log"]
        assert geo < edm
        # the log form of a geometric grid is exactly N·d·(2 ln(σ_max/σ_min)/N)²
        assert geo == pytest.approx(2 * (2 * math.log(ds.SIGMA_MAX / ds.SIGMA_MIN)) ** 2 / n)
    for key in ds.DESIGNS:
        for ck in ds.CHECKPOINTS:
            assert samp[key][ck]["edm"]["18"]["E_S"] > 0


def test_weighting_bump_where_science_md_puts_it(quick):
    _, data = quick
    w = data["results"]["weighting"]
    # p_LN(ln σ)(1 + σ²/σ_d²): the dominant bump is centred at −1.2 + 2·1.2² = 1.68
    assert abs(math.log(w["edm_peak_sigma"]) - 1.68) < 0.05
    assert w["song_max_over_min"] == pytest.approx(1.0)


def test_exact_score_reaches_the_w2_floor(quick):
    _, data = quick
    samp = data["results"]["sampling"]
    floor = samp["w2_floor"]
    for grid in ds.GRIDS:
        assert samp["exact"]["exact"][grid]["50"]["w2"] < 1.5 * floor


def test_sampling_process_is_the_frozen_score_ve_step():
    proc = ds._sampling_process()
    t = torch.tensor([1e-4, 0.3, 10.0, 6000.0], dtype=torch.float64)
    # σ² = t and g² = 1: Euler–Maruyama's h g² is exactly σ_k² − σ_{k+1}²
    assert torch.allclose(proc.variance(t), t, rtol=1e-12)
    assert torch.allclose(proc.diffusion2(t), torch.ones_like(t), rtol=1e-9)
    grid = ds.TimeGrid("edm", 10)
    assert np.allclose(ds._sigmas(proc, grid), ds._sigmas(ds._train_process(), grid), rtol=1e-9)


def test_training_is_deterministic_for_a_seed(tmp_path):
    s = ds.Settings(
        steps=20,
        batch_size=32,
        width=16,
        depth=2,
        lr=2e-3,
        early_fraction=0.5,
        ema_half_life=5.0,
        log_every=10,
        n_eval=64,
        n_err=32,
        n_profile=5,
        n_samples=64,
    )
    target, process = ds._target(), ds._train_process()
    curves = []
    for _ in range(2):
        study = Study("t", "t", "t", tmp_path, quick=True, seed=3)
        tr = ds.train_design(study, "edm", target, process, s, 0.5)
        curves.append((tr.curve["excess"], tr.curve["e_s"], tr.curve["loss_smoothed"]))
    assert curves[0] == curves[1]


@pytest.mark.slow
def test_quick_mode_is_deterministic(quick, tmp_path):
    _, first = quick
    run_study("design-space", tmp_path, quick=True, seed=0)
    second = json.loads((tmp_path / "design-space" / "results.json").read_text())
    assert first["results"] == second["results"]
