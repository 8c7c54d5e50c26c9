"""Configs in the earlier spelling (fixed ``p_mean``/``p_std``/``fp`` fields, flat ``sampler``
and ``network`` sections, ``rho`` on every grid) still load, translated with a note, or are
refused with the new spelling where the translation would be a guess. A run directory written
by the earlier code (tests/snapshots/run_v0, see its make.py) resumes to that code's own
numbers and samples."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from scorelab import pipeline
from scorelab.cli import app
from scorelab.config import ConfigDeprecationWarning, load_config, parse_config
from scorelab.errors import ConfigError

RUN_V0 = Path(__file__).resolve().parent / "snapshots" / "run_v0"

# the config of run_v0 (make.py) in the current spelling
NEW_SPELLING = {
    "seed": 3,
    "target": {"kind": "gmm", "preset": "ring8"},
    "process": {"kind": "vp", "schedule": {"kind": "cosine"}},
    "network": {"kind": "mlp", "width": 16, "depth": 2, "sigma_data": 1.0},
    "train": {
        "steps": 6,
        "batch_size": 32,
        "warmup": 1,
        "decay": "none",
        "log_every": 1,
        "checkpoint_every": 2,
        "loss": {"kind": "fp_dsm", "alpha": 0.3, "points": "perturbed"},
        "noise": {"kind": "lognormal", "p_mean": -1.0, "p_std": 1.1},
        "weighting": "edm",
    },
    "sampler": {"kind": "ddim", "eta": 0.5, "steps": 5, "n": 64, "grid": {"kind": "edm", "rho": 5}},
    "run": {"samplers": [{"kind": "euler_maruyama", "grid": {"kind": "uniform"}}]},
}


def _metrics(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # the fixture's numbers were made with one thread
    return before


def test_a_config_yaml_of_the_earlier_code_reads_as_its_new_spelling():
    with pytest.warns(ConfigDeprecationWarning) as record:
        old = load_config(RUN_V0 / "config.yaml", ["train.steps=6"])
    note = str(record[0].message)
    assert "train.p_mean, train.p_std → train.noise" in note and "train.fp → train.loss" in note
    assert old == parse_config(NEW_SPELLING)
    assert old.train.loss.fp_weighting == "likelihood" and old.sampler.grid.rho == 5.0


def test_a_run_of_the_earlier_code_resumes_to_its_own_numbers(tmp_path):
    """The earlier code trained 4 steps into run_v0 and, separately, 6 steps uninterrupted:
    this code resumes run_v0 (its config.yaml and checkpoint in the old spelling) to step 6
    and gives the same losses and gradient norms, bit for bit; a fresh 6-step run of the
    config in the new spelling gives them too."""
    run = tmp_path / "run"
    shutil.copytree(RUN_V0, run)
    expected = _metrics(RUN_V0 / "uninterrupted_6.jsonl")
    before = _one_thread()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConfigDeprecationWarning)
            cfg = load_config(run / "config.yaml", ["train.steps=6"])
            pipeline.train(cfg, run, resume=True, allow_changes=["train.steps"])
        pipeline.train(parse_config(NEW_SPELLING), tmp_path / "fresh")
    finally:
        torch.set_num_threads(before)
    for got in (_metrics(run / "metrics.jsonl"), _metrics(tmp_path / "fresh" / "metrics.jsonl")):
        assert [r["step"] for r in got] == [1, 2, 3, 4, 5, 6]
        assert [r["loss"] for r in got] == [r["loss"] for r in expected]
        assert [r["grad_norm"] for r in got] == [r["grad_norm"] for r in expected]


def test_a_run_of_the_earlier_code_samples_from_its_checkpoint(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(RUN_V0, run)
    out = tmp_path / "x.npz"
    sets = ["score.kind=checkpoint", f"score.path={run}", "sampler.n=16"]
    args = ["sample", str(run / "config.yaml"), "--out", str(out)]
    result = CliRunner().invoke(app, [*args, *(a for s in sets for a in ("--set", s))])
    assert result.exit_code == 0, result.output
    assert out.is_file() and "NFE" in result.output


def test_old_keys_that_applied_to_nothing_are_dropped_when_they_are_the_old_defaults():
    old = {
        "train": {"noise": "uniform_t", "p_mean": -1.2, "p_std": 1.2, "fp": {"alpha": 0.15}},
        "sampler": {"kind": "heun", "eta": None, "grid": {"kind": "uniform", "rho": 7.0}},
        "network": {"kind": "mlp", "blocks": None, "width": 32, "depth": None},
    }
    with pytest.warns(ConfigDeprecationWarning, match="dropped"):
        cfg = parse_config(old)
    assert cfg == parse_config(
        {"sampler": {"kind": "heun"}, "network": {"kind": "mlp", "width": 32}}
    )
    assert cfg.network.depth == 3  # null meant "the network's default"


@pytest.mark.parametrize(
    ("train", "expected"),
    [
        (
            {"noise": "uniform_t", "p_mean": -0.5},
            "train.p_mean: is now a parameter of the noise law, and noise 'uniform_t' takes "
            "none; write train.noise: {kind: lognormal, p_mean: -0.5}",
        ),
        (
            {"loss": "dsm", "fp": {"alpha": 0.4}},
            "train.fp: is now the parameters of loss fp_dsm, and loss 'dsm' takes none of them; "
            "write train.loss: {kind: fp_dsm, alpha: 0.4}",
        ),
        (
            {"noise": {"kind": "lognormal", "p_mean": -1.0}, "p_mean": -0.5},
            "train.p_mean: given twice, differently (-0.5 here and -1.0 in train.noise.p_mean)",
        ),
    ],
)
def test_ambiguous_old_keys_are_refused_with_the_new_spelling(train, expected):
    with pytest.raises(ConfigError) as info:
        parse_config({"train": train})
    assert expected in str(info.value)


def test_a_trainer_given_the_old_mapping_translates_it():
    from scorelab.training import train_config

    with pytest.warns(ConfigDeprecationWarning):
        tc = train_config({"loss": "fp_dsm", "fp": {"alpha": 0.5, "weighting": "constant"}})
    assert (tc.loss.alpha, tc.loss.fp_weighting) == (0.5, "constant")
