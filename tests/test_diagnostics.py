"""Paper D's diagnostics end to end: ``diagnose`` on exact and perturbed scores, the
FP-regularised loss through the config → trainer path, and ``scorelab diagnose``."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from scorelab.cli import app
from scorelab.config import load_config
from scorelab.diagnostics import diagnose
from scorelab.errors import InvalidParameter
from scorelab.fokker_planck import fp_dsm_loss
from scorelab.pipeline import make_trainer
from scorelab.processes import VP
from scorelab.schedules import CosineBeta
from scorelab.targets import ring8

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
runner = CliRunner()


@pytest.fixture(scope="module")
def setting():
    return ring8(), VP(CosineBeta(clip_max=20.0))


def test_exact_score_has_no_residual_and_is_conservative_and_its_nll_is_exact(setting):
    target, process = setting
    d = diagnose(target.score_model(process), target, process, n_residual=64, n_nll=128,
                 n_conservativity=32, rtol=1e-6, atol=1e-6)  # fmt: skip
    # float64 round-off only: the exact mixture score solves the score FPE identically
    assert d["fpe_residual"]["value"] < 1e-20
    assert all(p["value"] < 1e-18 for p in d["fpe_profile"])
    assert d["conservativity"]["value"] < 1e-20
    # same points, same quantity (−log p_{t_min}): the PF-ODE is exact up to its tolerance
    assert d["nll_exact"]["of"] == "p_t_min"
    assert abs(d["nll"]["value"] - d["nll_exact"]["value"]) < 1e-3


def test_a_rotated_score_has_a_residual_and_is_not_conservative(setting):
    target, process = setting
    exact = target.score_model(process)

    def rotated(x, t):  # adds a divergence-free rotation: not a gradient field
        return exact(x, t) + 0.3 * torch.stack([-x[:, 1], x[:, 0]], 1)

    d = diagnose(rotated, target, process, n_residual=64, n_nll=64, n_conservativity=32)
    assert d["fpe_residual"]["ci"][0] > 0.1
    # exact Jacobian is J_s + 0.3·R with R antisymmetric: ‖J−Jᵀ‖² = 4·0.09·2 = 0.72 per point
    assert d["conservativity"]["value"] > 1e-2
    assert abs(d["nll"]["value"] - d["nll_exact"]["value"]) > 1e-2


def test_the_fp_config_section_maps_onto_the_loss_keywords():
    cfg = load_config(CONFIGS / "quickstart.yaml", ["train.loss=fp_dsm", "train.loss.alpha=0.5"])
    options = cfg.train.loss_options()
    accepted = set(inspect.signature(fp_dsm_loss).parameters)
    assert set(options) <= accepted
    assert options["alpha"] == 0.5 and options["fp_weighting"] == "likelihood"


def test_fp_dsm_trains_through_the_config_path(tmp_path):
    cfg = load_config(
        CONFIGS / "quickstart.yaml",
        ["train.loss=fp_dsm", "train.steps=5", "train.batch_size=32", "network.width=16"],
    )
    trainer, _ = make_trainer(cfg, tmp_path)
    losses = [trainer.train_step()[0] for _ in range(5)]
    assert all(torch.isfinite(torch.tensor(losses)))
    grads = [p.grad for p in trainer.params if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_compile_is_refused_with_the_fp_loss():
    cfg = load_config(CONFIGS / "quickstart.yaml", ["train.loss=fp_dsm", "train.compile=true"])
    with pytest.raises(InvalidParameter, match=r"train\.compile"):
        make_trainer(cfg, None)


def test_cli_diagnose_a_config_and_a_run_directory(tmp_path):
    res = runner.invoke(app, ["diagnose", str(CONFIGS / "quickstart.yaml"), "--json", "--n", "32"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    assert d["fpe_residual"]["value"] < 1e-20  # the quickstart config's score is exact

    run_dir = tmp_path / "run"
    sets = ["train.steps=10", "train.batch_size=32", "network.width=16"]
    res = runner.invoke(
        app,
        ["train", str(CONFIGS / "quickstart.yaml"), "--out", str(run_dir)]
        + [a for s in sets for a in ("--set", s)],
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["diagnose", str(run_dir), "--n", "32"])
    assert res.exit_code == 0, res.output
    assert "FPE residual" in res.output and "PF-ODE NLL" in res.output
    res = runner.invoke(app, ["diagnose", str(CONFIGS / "quickstart.yaml"), "--n", "1"])
    assert res.exit_code != 0 and "--n" in res.output
