"""The main job end to end: `train`, `sample` from a checkpoint, `run` and its report, the
data-parallel trainer under torchrun, and clear errors on bad runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

import scorelab
from scorelab.cli import app
from scorelab.config import load_config, parse_config
from scorelab.errors import ConfigError, InvalidParameter
from scorelab.pipeline import load_score_model, make_trainer
from scorelab.processes import VP
from scorelab.schedules import LinearBeta

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
WORKER = Path(__file__).resolve().parent / "helpers" / "ddp_worker.py"
runner = CliRunner()

SMALL = [
    "train.steps=30",
    "train.batch_size=64",
    "train.log_every=10",
    "train.checkpoint_every=10",
    "network.width=32",
    "sampler.n=300",
    "sampler.steps=10",
]


def _sets(items):
    return [arg for item in items for arg in ("--set", item)]


def test_train_then_sample_from_the_checkpoint(tmp_path):
    """`scorelab train`, then `scorelab sample` from its checkpoint: the samples are what the
    Python API draws from the same checkpoint with the same settings, bit for bit."""
    run_dir = tmp_path / "run"
    res = runner.invoke(
        app, ["train", str(CONFIGS / "quickstart.yaml"), "--out", str(run_dir), *_sets(SMALL)]
    )
    assert res.exit_code == 0, res.output
    for name in ("config.yaml", "metrics.jsonl", "checkpoint.safetensors"):
        assert (run_dir / name).is_file(), name
    records = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [10, 20, 30]
    assert set(records[0]) == {"step", "loss", "lr", "grad_norm", "it_s"}
    resolved = load_config(run_dir / "config.yaml")
    assert resolved.network.sigma_data is not None  # estimated from the data and recorded

    out = tmp_path / "s.npz"
    res = runner.invoke(
        app,
        [
            "sample",
            str(CONFIGS / "quickstart.yaml"),
            "--out",
            str(out),
            *_sets(["score.kind=checkpoint", f"score.path={run_dir}", *SMALL]),
        ],
    )
    assert res.exit_code == 0, res.output
    with np.load(out) as z:
        x = z["samples"]
    assert x.shape == (300, 2) and np.isfinite(x).all()
    # the same draw in a script: the checkpoint's network, the config's sampler written out
    # (Heun, 10 steps on EDM's grid, no final step: 20 NFE), the run's seed
    process = scorelab.build_process({"kind": "vp", "schedule": {"kind": "cosine", "clip_max": 20}})
    model = load_score_model(run_dir, process)
    grid = scorelab.TimeGrid("edm", steps=10)
    again = scorelab.generate(model, process, (2,), sampler="heun", grid=grid, n=300, seed=0)
    assert again.nfe == 20 and "NFE 20" in res.output
    assert np.array_equal(x, again.samples.numpy())


def test_checkpoint_model_is_the_trained_ema_network(tmp_path):
    cfg = load_config(CONFIGS / "quickstart.yaml", SMALL)
    trainer, resolved = make_trainer(cfg, tmp_path)
    trainer.fit()
    model = load_score_model(tmp_path, trainer.process)
    x = torch.randn(16, 2)
    t = torch.full((16,), 0.3)
    # load the EMA weights into the trainer's own network: the same function
    trainer.model.load_state_dict(trainer.ema)
    with torch.no_grad():
        assert torch.allclose(model(x, t), trainer.model(x, t), atol=1e-6)
    assert resolved.network.sigma_data == pytest.approx(trainer.sigma_data)


def test_bad_runs_fail_clearly(tmp_path):
    with pytest.raises(ConfigError, match=r"score\.path"):
        parse_config({"score": {"kind": "checkpoint"}})
    res = runner.invoke(
        app,
        [
            "sample",
            str(CONFIGS / "quickstart.yaml"),
            "--set",
            "score.kind=checkpoint",
            "--set",
            f"score.path={tmp_path / 'nowhere'}",
        ],
    )
    assert res.exit_code == 2 and "score.path" in res.output and "no checkpoint" in res.output
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(InvalidParameter, match="not a safetensors checkpoint"):
        load_score_model(junk, VP(LinearBeta()))
    # resume with another network: the checkpoint does not fit
    run_dir = tmp_path / "run"
    args = ["train", str(CONFIGS / "quickstart.yaml"), "--out", str(run_dir), *_sets(SMALL)]
    assert runner.invoke(app, args).exit_code == 0
    res = runner.invoke(app, [*args, "--resume", "--set", "network.width=48"])
    assert res.exit_code == 2 and "network.width: 32 → 48" in res.output  # key and both values
    res = runner.invoke(
        app, [*args, "--resume", "--set", "network.width=48", "--allow-changes", "network.width"]
    )
    assert res.exit_code == 2 and "another architecture" in res.output
    res = runner.invoke(app, args)  # a second fresh run into the same directory
    assert res.exit_code == 2 and "--resume" in res.output
    res = runner.invoke(app, [*args[:4], "--set", "train.loss=nope"])
    assert res.exit_code == 2 and "train.loss" in res.output and "dsm" in res.output


def test_run_writes_evaluation_bounds_and_a_self_contained_report(tmp_path):
    sets = [
        *SMALL,
        "run.metrics=[w2, mmd]",
        "run.n_boot=10",
        "run.n_boot_ot=10",
        "run.samplers=[euler_maruyama]",
    ]
    res = runner.invoke(
        app, ["run", str(CONFIGS / "quickstart.yaml"), "--out", str(tmp_path), *_sets(sets)]
    )
    assert res.exit_code == 0, res.output
    ev = json.loads((tmp_path / "evaluation.json").read_text())
    assert set(ev) == {"w2", "mmd", "_skipped"}
    assert set(ev["w2"]) == {"value", "floor", "ci"} and ev["w2"]["value"] > 0
    assert (tmp_path / "evaluation-euler_maruyama.json").is_file()
    assert (tmp_path / "samples-heun.npz").is_file()
    bounds = json.loads((tmp_path / "bounds.json").read_text())
    assert set(bounds) == {"kl", "w2", "ve", "w1_manifold"}
    profile = json.loads((tmp_path / "score_error.json").read_text())
    assert len(profile) >= 5 and all(r["mse"] >= 0 for r in profile)
    diag = json.loads((tmp_path / "diagnostics.json").read_text())
    assert {"fpe_residual", "fpe_profile", "conservativity", "nll", "nll_exact"} <= set(diag)
    assert diag["fpe_residual"]["value"] > 0 and diag["nll"]["nfe"] > 0
    pngs = ("loss.png", "samples.png", "field.png", "score_error.png", "fpe_residual.png")
    for png in (*pngs, "budget.png"):
        assert (tmp_path / png).stat().st_size > 5000, png
    html = (tmp_path / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 6 and 'src="http' not in html
    assert "Fokker–Planck diagnostics" in html
    assert "report:" in res.output


def _torchrun(args, cwd):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    return subprocess.run(
        [*cmd, *args], cwd=cwd, capture_output=True, text=True, timeout=240, check=False
    )


DDP_SETS = [
    "seed=5",
    "train.steps=12",
    "train.batch_size=32",
    "train.dtype=float64",
    "train.warmup=2",
    "network.width=16",
    "network.sigma_data=1.0",
]


def test_two_ranks_train_exactly_like_one_process_on_the_global_batch(tmp_path):
    res = _torchrun([str(WORKER), str(tmp_path), *DDP_SETS], tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    r0, r1 = (load_file(str(tmp_path / f"rank{r}.safetensors")) for r in (0, 1))
    # The one-process reference trains here, as the worker does when run alone (no torchrun):
    # the same config, seed and steps, without a third interpreter starting up (≈ 4 s).
    trainer = make_trainer(load_config(None, DDP_SETS), None)[0]
    assert not trainer.world.distributed
    start = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
    trainer.fit()
    one = {k: v.detach() for k, v in trainer.model.state_dict().items()}
    one.update({f"ema.{k}": v for k, v in trainer.ema.items()})
    trainer.world.close()
    moved = 0.0
    for k, v in one.items():
        assert torch.equal(r0[k], r1[k]), k  # identical across ranks, bit for bit
        assert torch.allclose(r0[k], v, rtol=0, atol=1e-10), k  # = one process, global batch
        if not k.startswith("ema."):
            moved = max(moved, float((v - start[k]).abs().max()))
    assert moved > 1e-3  # training did change the parameters


@pytest.mark.slow
def test_torchrun_cli_train_writes_one_run_directory(tmp_path):
    res = _torchrun(
        [
            "-m",
            "scorelab",
            "train",
            str(CONFIGS / "quickstart.yaml"),
            "--out",
            "run",
            *_sets(SMALL),
        ],
        tmp_path,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 3  # written once, by rank 0
