"""The dimension-free study (paper B): quick mode end to end, and its oracles."""

from __future__ import annotations

import json
import math

import pytest
import torch

from scorelab.studies import dimension_free as df
from scorelab.studies import run_study

from .helpers.results import numbers

pytestmark = pytest.mark.studies

FAMILY_FIELDS = (
    "relative",
    "relative_mean",
    "baseline_relative_mean",
    "tilt_relative",
    "tilt_relative_mean",
    "mse",
    "tv_axes",
    "w2_plane",
    "sliced_w2",
    "sliced_w2_floor",
    "final_loss",
    "parameters",
)


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("studies")
    run_study("dimension-free", out, quick=True, seed=0)
    d = out / "dimension-free"
    return d, json.loads((d / "results.json").read_text())


def test_results_fields_are_finite(quick):
    _, payload = quick
    res = payload["results"]
    assert payload["study"] == "dimension-free" and payload["quick"] is True
    assert res["dims"] == [2, 8, 32, 128]
    for fam in df.FAMILIES:
        for key in FAMILY_FIELDS:
            assert len(res[fam][key]) == len(res["dims"]), (fam, key)
        for key in df.METRICS:
            assert key in res["growth"][fam]
    for key in ("tv_axes", "w2_plane"):
        assert res["floors"][key] > 0
    assert set(res["mehler_check"]) == {"fixed_d8", "control_d2", "control_d8"}
    assert all(math.isfinite(x) for x in numbers(res))


def test_report_figures_and_claims(quick):
    d, payload = quick
    html = (d / "report.html").read_text()
    assert "data:image/png;base64" in html
    for name in ("score_error_vs_d.png", "sample_metrics_vs_d.png"):
        assert (d / name).stat().st_size > 1000
    assert len(payload["claims"]) == 5
    assert all(c["holds"] in (True, False, None) for c in payload["claims"])


def test_measured_errors_are_consistent(quick):
    _, payload = quick
    res = payload["results"]
    for fam in df.FAMILIES:
        r = res[fam]
        # training learned something: better than the untrained network −x in every d
        assert all(t < 1 for t in r["tilt_relative_mean"])
        pairs = zip(r["relative_mean"], r["baseline_relative_mean"], strict=True)
        assert all(a < b for a, b in pairs)
        # the growth ratios are what the per-d numbers say
        assert res["growth"][fam]["tv_axes"] == pytest.approx(r["tv_axes"][-1] / r["tv_axes"][0])
    # the fixed family's untrained baseline is diluted like 1/d; the control's is not
    base_f, base_c = (
        res["fixed"]["baseline_relative_mean"],
        res["control"]["baseline_relative_mean"],
    )
    assert base_f[-1] < 0.1 * base_f[0]
    assert base_c[-1] == pytest.approx(base_c[0], rel=0.2)
    # the oracle check the claim rests on
    assert res["mehler_check"]["fixed_d8"] < 0.02


def test_targets_agree_at_d2_and_on_the_plane():
    """Both families have the same law on (x₁, x₂); at d = 2 they are the same law."""
    process = df.ou_process(df.QUICK)
    x = torch.randn(64, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 3
    for t in (0.01, 0.3, 2.0):
        a = df.square_tilt(2).score(x, t, process)
        b = df.BimodalProduct(2).score(x, t, process)
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
        la = df.square_tilt(2).log_prob_t(x, t, process)
        lb = df.BimodalProduct(2).log_prob_t(x, t, process)
        torch.testing.assert_close(la, lb, rtol=1e-10, atol=1e-10)


def test_control_score_is_the_gradient_of_its_log_density():
    process = df.ou_process(df.QUICK)
    target = df.BimodalProduct(16)
    g = torch.Generator().manual_seed(1)
    x = process.sample_marginal(target.sample(32, g, dtype=torch.float64), 0.2, g)
    x.requires_grad_(True)
    (grad,) = torch.autograd.grad(target.log_prob_t(x, 0.2, process).sum(), x)
    torch.testing.assert_close(grad, target.score(x.detach(), 0.2, process))
    # and its tilt is normalised: log p = f + log γ_d at t = 0
    y = target.sample(8, g, dtype=torch.float64)
    gauss = -0.5 * (y**2).sum(1) - 8 * math.log(2 * math.pi)
    torch.testing.assert_close(target.log_prob(y), target.log_tilt(y) + gauss)


def test_control_sampling_matches_its_moments():
    target = df.BimodalProduct(4)
    x = target.sample(40_000, torch.Generator().manual_seed(2), dtype=torch.float64)
    # each coordinate: mean 0, variance 1 + a²
    assert float(x.mean(0).abs().max()) < 0.05
    assert float((x.var(0) - (1 + df.A**2)).abs().max()) < 0.15


def test_growth_and_verdict_rule():
    assert df.growth([0.1, 0.2, 0.4]) == pytest.approx(4.0)


def test_a_cell_is_deterministic():
    """Training, score errors, sampling and metrics of one (family, d) cell repeat bit for bit."""
    from dataclasses import replace

    s = replace(df.QUICK, dims=(8,), steps=20, n_train=256, n_eval=100, n_gen=200, sampler_steps=5)
    process = df.ou_process(s)
    runs = [
        df.run_cell("control", 8, s, 3, process, torch.Generator().manual_seed(4)) for _ in range(2)
    ]
    assert runs[0] == runs[1]


@pytest.mark.slow
def test_quick_mode_is_deterministic(quick, tmp_path):
    _, first = quick
    run_study("dimension-free", tmp_path, quick=True, seed=0)
    again = json.loads((tmp_path / "dimension-free" / "results.json").read_text())
    assert again["results"] == first["results"]
    assert again["claims"] == first["claims"]
