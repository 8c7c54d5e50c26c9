"""`scorelab budget`, the run report's budget section and the sweep job `budget`, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from scorelab.budget import PARTS
from scorelab.budget.chain import REMAINDER
from scorelab.cli import app

from .test_pipeline import SMALL as PIPELINE_SMALL

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
runner = CliRunner()

# the pipeline tests' small run, one sampler and one metric, no diagnostics
SMALL = [*PIPELINE_SMALL, "run.samplers=[]", "run.metrics=[w2]", "run.diagnose=false"]


def _sets(items):
    return [arg for item in items for arg in ("--set", item)]


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("budget") / "run"
    res = runner.invoke(
        app, ["run", str(CONFIGS / "quickstart.yaml"), "--out", str(run_dir), *_sets(SMALL)]
    )
    assert res.exit_code == 0, res.output
    return run_dir


def _sums(data):
    for metric, m in data["metrics"].items():
        parts = sum(m["parts"][p]["value"] for p in (*PARTS, REMAINDER))
        assert parts == pytest.approx(m["total"]["value"], rel=1e-9, abs=1e-12), metric


def test_a_run_reports_its_budget(small_run):
    """`scorelab run` writes budget.json and budget.png, a report section with the bound
    terms beside the parts, and the parts in summary.json; the total is the run's own W2 (the
    same reference sample as the run's evaluation)."""
    data = json.loads((small_run / "budget.json").read_text())
    assert (small_run / "budget.png").stat().st_size > 0
    assert data["method"] == "samples"
    _sums(data)
    evaluation = json.loads((small_run / "evaluation.json").read_text())
    assert data["metrics"]["w2"]["total"]["value"] == pytest.approx(evaluation["w2"]["value"])
    report = (small_run / "report.html").read_text()
    assert "Error budget" in report and "paper A: KL (VP)" in report
    summary = json.loads((small_run / "summary.json").read_text())
    assert set(summary["budget"]["w2"]) == {*PARTS, REMAINDER}


def test_budget_of_a_run_directory(small_run, tmp_path):
    """The total is exact W2 between the run's samples (drawn again from the checkpoint) and
    the reference draw, computed here by POT; the paired interval of every part is finite."""
    from scorelab.config import build, load_config
    from scorelab.metrics import w2
    from scorelab.models import load_score_model
    from scorelab.pipeline import sample_with

    out = tmp_path / "b.json"
    res = runner.invoke(
        app, ["budget", str(small_run), "--n", "200", "--refine", "2", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert "error budget: W2" in res.output and "95 % CI" in res.output
    data = json.loads(out.read_text())
    assert out.with_suffix(".png").is_file()
    assert data["settings"]["n"] == 200 and data["settings"]["refine"] == 2
    _sums(data)
    for p in (*PARTS, REMAINDER):
        lo, hi = data["metrics"]["w2"]["parts"][p]["ci"]
        assert lo <= hi
    cfg = load_config(small_run / "config.yaml", ["sampler.n=200"])
    target, process = build(cfg)
    model = load_score_model(small_run / "checkpoint.safetensors", process)
    x = sample_with(cfg, cfg.sampler, model, process, target.event_shape).samples
    y = target.sample(200, torch.Generator().manual_seed(cfg.seed), dtype=torch.float64)
    assert data["metrics"]["w2"]["total"]["value"] == pytest.approx(w2(x, y), rel=1e-9)


def test_budget_of_a_config_in_closed_form(tmp_path):
    out = tmp_path / "paper_a.json"
    res = runner.invoke(
        app, ["budget", str(CONFIGS / "paper_a_gaussian_d10.yaml"), "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert "closed form" in res.output and "paper A: W2" in res.output
    data = json.loads(out.read_text())
    assert data["method"] == "closed_form"
    assert data["metrics"]["w2"]["parts"]["score"]["value"] == 0.0
    assert data["interactions"] is not None
    _sums(data)
    res = runner.invoke(
        app, ["budget", str(CONFIGS / "paper_a_gaussian_d10.yaml"), "--out", str(out), "--json"]
    )
    assert res.exit_code == 0 and json.loads(res.output)["method"] == "closed_form"


@pytest.mark.parametrize(
    "args, field",
    [
        (["--order", "score,prior"], "--order"),
        (["--order", "score,discretisation,prior,stopping"], "--order"),
        (["--n", "3"], "--n"),
        (["--refine", "1"], "--refine"),
        (["--seed", "-1"], "--seed"),
        (["--out", "budget.txt"], "--out"),
    ],
)
def test_bad_options_are_named(args, field, tmp_path):
    res = runner.invoke(app, ["budget", str(CONFIGS / "paper_a_gaussian_d10.yaml"), *args])
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: {field}"), res.output


def test_a_source_that_is_not_a_run_is_named(tmp_path):
    res = runner.invoke(app, ["budget", str(tmp_path / "missing")])
    assert res.exit_code == 2 and "error: CONFIG|RUN_DIR" in res.output, res.output
    res = runner.invoke(app, ["budget", str(tmp_path)])
    assert res.exit_code == 2 and "error: RUN_DIR: has no config.yaml" in res.output, res.output


def test_the_sweep_job_budget(tmp_path):
    """A cell of `--job budget` trains and measures the budget; the sweep's report gets the
    budget against the swept keys in one figure."""
    import yaml

    from scorelab.config.io import apply_overrides
    from scorelab.sweep import cells, run_sweep

    base = apply_overrides(yaml.safe_load((CONFIGS / "quickstart.yaml").read_text()), SMALL)
    todo = cells(base, [("sampler.steps", [4, 8])], [0], "budget", ["sampler.n=150"])
    assert [c.job for c in todo] == ["budget", "budget"]
    result = run_sweep(
        todo,
        tmp_path / "sweep",
        workers=1,
        progress=False,
        log=lambda m: None,
        spec={"job": "budget"},
    )
    assert result.counts() == {"done": 2}, result.records
    for rec in result.records.values():
        m = rec["metrics"]
        assert {"nfe", "w2_total", "w2_score", "w2_score_ci_lo", "w2_discretisation"} <= set(m)
    assert (tmp_path / "sweep" / "figures" / "budget.png").is_file()
    assert "Error budget" in (tmp_path / "sweep" / "report.html").read_text()
