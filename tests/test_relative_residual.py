"""The relative score-FPE residual ρ = E‖ε‖² / E(‖∂_t s‖² + ‖∇_x φ‖²): zero (to round-off or
to the finite-difference error) on exact scores, of order one on wrong ones, in [0, 2] always,
unchanged by rescaling, and what ``diagnose`` and ``scorelab diagnose`` report first."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from scorelab.cli import app
from scorelab.diagnostics import diagnose
from scorelab.fokker_planck import relative_residual, residual_parts, residual_profile
from scorelab.processes import VE, VP
from scorelab.schedules import CosineBeta, GeometricSigma, LinearBeta
from scorelab.targets import Gaussian, ring8

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
PROCESSES = {
    "vp-linear": lambda: VP(LinearBeta(0.1, 20.0)),
    "vp-cosine": lambda: VP(CosineBeta(clip_max=20.0)),
    "ve": lambda: VE(GeometricSigma(0.01, 10.0)),
}


def _points(target, process, t, n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x0 = target.sample(n, g, dtype=torch.float64)
    return process.perturb(x0, t, torch.randn(x0.shape, generator=g, dtype=torch.float64))


@pytest.mark.parametrize("name", sorted(PROCESSES))
@pytest.mark.parametrize("t", [0.02, 0.3, 0.9])
def test_exact_scores_have_zero_relative_residual(name, t):
    """The exact mixture score solves the equation: ρ is float64 round-off with the exact ∂_t
    s, and with the second-order difference quotient it is the quotient's error, O(h⁴) in ρ
    (ρ is a squared relative error) at h = ε^{1/3}·t."""
    process = PROCESSES[name]()
    target = ring8()
    score = target.score_model(process)
    x = _points(target, process, t)
    assert relative_residual(score, process, x, t) < 1e-20
    assert relative_residual(score, process, x, t, dt="fd") < 1e-12
    # and in 64 dimensions (a Gaussian with a non-diagonal covariance), exact divergence
    g = torch.Generator().manual_seed(1)
    a = torch.randn(64, 64, generator=g, dtype=torch.float64) / 8
    gauss = Gaussian(
        torch.randn(64, generator=g, dtype=torch.float64),
        a @ a.T + 0.1 * torch.eye(64, dtype=torch.float64),
    )
    x = _points(gauss, process, t, n=16)
    assert relative_residual(gauss.score_model(process), process, x, t) < 1e-20


@pytest.mark.parametrize("name", sorted(PROCESSES))
def test_wrong_scores_have_a_relative_residual_of_order_one(name):
    process = PROCESSES[name]()
    target = ring8()
    exact = target.score_model(process)

    def rotated(x, t):  # a divergence-free rotation added: not a gradient field
        return exact(x, t) + 0.3 * torch.stack([-x[:, 1], x[:, 0]], 1)

    def doubled(x, t):  # twice the score: the ‖s‖² term no longer balances
        return 2.0 * exact(x, t)

    def frozen(x, t):  # the score of one time used at every time: ∂_t s = 0
        return exact(x, torch.full_like(t, 0.5))

    for t in (0.05, 0.3):
        x = _points(target, process, t, n=256)
        for wrong in (doubled, frozen):
            assert 0.1 < relative_residual(wrong, process, x, t) <= 2.0, (wrong.__name__, t)
        # a small rotation (0.3·x against a score of order 1/σ²): small, far above round-off
        assert 1e-3 < relative_residual(rotated, process, x, t) <= 2.0
    # ∂_t s = 0 leaves only ∇φ: ρ = 1 exactly, away from the frozen time
    x = _points(target, process, 0.05, n=256)
    assert relative_residual(frozen, process, x, 0.05) == pytest.approx(1.0, abs=1e-12)


def test_the_relative_residual_is_scale_free_while_the_absolute_one_is_not():
    """The same VE experiment on data c times larger (ring radius and std ×c, σ ×c) has the
    score s_c(x, t) = s(x/c, t)/c and g_c² = c²g²: both sides of the equation, and ε, scale by
    1/c, so E‖ε‖²/D scales by c⁻² while ρ does not change — checked on a wrong score (twice
    the exact one) at the mapped points."""
    g = torch.Generator().manual_seed(0)
    x0 = ring8().sample(128, g, dtype=torch.float64)
    z = torch.randn(x0.shape, generator=g, dtype=torch.float64)
    rho, absolute = [], []
    for c in (1.0, 10.0):
        process = VE(GeometricSigma(0.01 * c, 10.0 * c))
        exact = ring8(radius=2.0 * c, std=0.2 * c).score_model(process)

        def doubled(x, t, exact=exact):
            return 2.0 * exact(x, t)

        x = process.perturb(c * x0, 0.2, z)
        rho.append(relative_residual(doubled, process, x, 0.2))
        absolute.append(float(residual_parts(doubled, process, x, 0.2).residual.pow(2).mean()))
    assert 0.1 < rho[0] < 2.0
    assert rho[1] == pytest.approx(rho[0], rel=1e-9)
    assert absolute[1] == pytest.approx(absolute[0] / 100.0, rel=1e-9)


def test_the_profile_carries_the_relative_residual_with_an_interval():
    process = PROCESSES["vp-linear"]()
    target = ring8()
    exact = target.score_model(process)

    def doubled(x, t):
        return 2.0 * exact(x, t)

    g = torch.Generator().manual_seed(0)
    prof = residual_profile(doubled, process, target, [0.05, 0.5], n=512, generator=g,
                            dtype=torch.float64)  # fmt: skip
    for p in prof:
        assert 0.05 < p.relative < 2.0 and 0 < p.relative_half_width < p.relative
        # the same points in one call: ρ is the ratio of the sums at those points
        x = _points(target, process, p.t, n=8, seed=3)
        assert 0 < relative_residual(doubled, process, x, p.t) < 2.0
    exact_prof = residual_profile(exact, process, target, [0.05, 0.5], n=64, generator=g,
                                  dtype=torch.float64)  # fmt: skip
    assert all(p.relative < 1e-20 for p in exact_prof)


def test_diagnose_reports_the_relative_residual_first():
    target, process = ring8(), PROCESSES["vp-cosine"]()
    exact = target.score_model(process)
    d = diagnose(exact, target, process, n_residual=64, n_nll=16, n_conservativity=8)
    rel = d["fpe_relative_residual"]
    assert next(iter(d)) == "fpe_relative_residual"
    assert rel["value"] < 1e-20 and rel["ci"][1] < 1e-18
    assert all(p["relative"] < 1e-20 for p in d["fpe_profile"])

    def doubled(x, t):
        return 2.0 * exact(x, t)

    d = diagnose(doubled, target, process, n_residual=128, n_nll=16, n_conservativity=8)
    rel = d["fpe_relative_residual"]
    assert 0.1 < rel["ci"][0] <= rel["value"] <= rel["ci"][1] < 2.0
    # the mean over the grid of the per-time values, as documented
    prof = d["fpe_profile"]
    assert rel["value"] == pytest.approx(sum(p["relative"] for p in prof) / len(prof))


def test_cli_diagnose_shows_the_relative_residual():
    res = CliRunner().invoke(app, ["diagnose", str(CONFIGS / "quickstart.yaml"), "--n", "16"])
    assert res.exit_code == 0, res.output
    assert "relative residual" in res.output
    res = CliRunner().invoke(
        app, ["diagnose", str(CONFIGS / "quickstart.yaml"), "--json", "--n", "16"]
    )
    assert json.loads(res.output)["fpe_relative_residual"]["value"] < 1e-20
