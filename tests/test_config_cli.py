"""Configuration and command line: every bad input gets one clear message naming the field;
good configs build the same objects as the Python API."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

import scorelab
from scorelab import schedules as sch
from scorelab.cli import app
from scorelab.config import apply_overrides, build, load_config, parse_config
from scorelab.errors import ConfigError, InvalidParameter

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
runner = CliRunner()

BAD = [
    ({"target": {"kind": "nope"}}, "target.kind: unknown kind 'nope'; allowed: gmm, gaussian"),
    ({"target": {"dim": 2}}, "target: missing 'kind'"),
    (
        {"target": {"kind": "gaussian", "covv": 1}},
        "target.covv: unknown key; allowed keys here: kind, dim, mean, cov",
    ),
    ({"target": {"kind": "gaussian", "cov": "big"}}, "target.cov: has the wrong type (got 'big')"),
    ({"target": {"kind": "gaussian", "cov": -1}}, "target.cov: variances must be > 0"),
    (
        {"target": {"kind": "gaussian", "cov": [[1, 2], [2, 1]]}},
        "target.cov: must be positive definite",
    ),
    (
        {"target": {"kind": "gmm", "means": [[0], [1]], "weights": [0.3, 0.3]}},
        "target.weights: must sum to 1",
    ),
    (
        {"target": {"kind": "gmm", "preset": "ring8", "dim": 3}},
        "target.dim: does not apply to preset 'ring8'",
    ),
    (
        {"target": {"kind": "gaussian", "cov": [[1, 0], [0]]}},
        "target.cov: must have rows of equal length (got row lengths [2, 1])",
    ),
    (
        {"target": {"kind": "gmm", "means": [], "weights": []}},
        "target.means: must be a non-empty list of mean vectors (one per component)",
    ),
    ({"target": {"kind": "file", "path": "/no/such/file.npy"}}, "target.path: file not found"),
    ({"target": {"kind": "toy2d", "name": "moon"}}, "target.name: 'moon' is not allowed"),
    (
        {"target": {"kind": "empirical", "source": {"kind": "gaussian", "x": 1}}},
        "target.source.x: unknown key",
    ),
    (
        {"process": {"kind": "vp", "schedule": {"kind": "geometric"}}},
        "process.schedule.kind: is a σ-schedule",
    ),
    ({"process": {"kind": "vp", "t_min": 2}}, "process.t_min: must lie in [0, T)"),
    ({"process": {"kind": "ve", "sigma_inf": 2}}, "process.sigma_inf: applies to vp, subvp"),
    (
        {"process": {"kind": "vp", "schedule": {"kind": "linear", "beta_min": -1}}},
        "process.schedule.beta_min: must be ≥ 0",
    ),
    (
        {"process": {"kind": "vp", "schedule": {"kind": "parametric", "a": "x"}}},
        "process.schedule.a: Input should be a valid number",
    ),
    ({"process": {"kind": "edm", "T": 5}}, "process.T: must equal schedule.sigma_max"),
    ({"process": {"kind": "xx"}}, "process.kind: unknown kind 'xx'; allowed: vp, subvp"),
    ({"seed": "abc"}, "seed: Input should be a valid integer"),
    ({"sampelr": {}}, "sampelr: unknown key; allowed keys here: seed, target, process, score"),
    ({"sampler": {"kind": "euler"}}, "sampler.kind: unknown kind 'euler'; allowed: euler_"),
    ({"sampler": {"grid": {"kind": "cosine"}}}, "sampler.grid.kind: unknown kind 'cosine'"),
    ({"sampler": {"steps": 0}}, "sampler.steps: Input should be greater than or equal to 1"),
]


@pytest.mark.parametrize(("data", "expected"), BAD, ids=[e.split(":")[0] for _, e in BAD])
def test_bad_configs_give_one_clear_message(data, expected):
    with pytest.raises((ConfigError, InvalidParameter)) as info:
        build(parse_config(data))
    assert expected in str(info.value)


@pytest.mark.parametrize(
    ("data", "expected"), BAD[:6] + BAD[8:11] + BAD[13:14], ids=lambda v: str(v)[:20]
)
def test_cli_check_reports_errors_without_traceback(tmp_path, data, expected):
    import yaml

    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    result = runner.invoke(app, ["check", str(path)])
    assert result.exit_code == 2
    assert expected in result.output.replace("\n", " ") or expected in result.output
    assert "Traceback" not in result.output


def test_cli_check_resolves_and_overrides():
    result = runner.invoke(
        app, ["check", str(CONFIGS / "paper_a_gaussian_d10.yaml"), "--set", "process.schedule.a=4"]
    )
    assert result.exit_code == 0, result.output
    # a compact summary: the keys that differ from the defaults, with their defaults
    line = next(ln for ln in result.output.splitlines() if "process.schedule.a " in ln)
    assert "4.0" in line and len(result.output.splitlines()) < 40  # not ≈ 100 lines of YAML
    args = ["check", str(CONFIGS / "paper_a_gaussian_d10.yaml"), "--set", "process.schedule.a=4"]
    full = runner.invoke(app, [*args, "--full"])
    assert full.exit_code == 0 and "a: 4.0" in full.output  # --full: the resolved YAML
    assert "ok: target" in result.output


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_are_valid(path):
    target, process = build(load_config(path))
    x = target.sample(4, torch.Generator().manual_seed(0), dtype=torch.float64)
    xt = process.sample_marginal(x, process.T / 2)
    assert xt.shape == x.shape and torch.isfinite(xt).all()
    if target.has_score:
        assert torch.isfinite(target.score(xt, process.T / 2, process)).all()


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_a_fully_written_config_reads_back_as_the_same_config(path):
    # A run's config.yaml writes every field out, nulls and defaults included.
    cfg = load_config(path)
    again = parse_config(yaml.safe_load(yaml.safe_dump(cfg.model_dump(mode="json"))))
    assert again == cfg
    (t1, p1), (t2, p2) = build(cfg), build(again)
    g = torch.Generator
    x1 = t1.sample(8, g().manual_seed(0), dtype=torch.float64)
    x2 = t2.sample(8, g().manual_seed(0), dtype=torch.float64)
    torch.testing.assert_close(x1, x2, rtol=0, atol=0)
    assert p1.T == p2.T and p1.t_min == p2.t_min


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_build_their_network_and_samplers(path):
    from scorelab.config import compared_sampler, sampler_options
    from scorelab.pipeline import build_model

    cfg = load_config(path, ["network.sigma_data=1.0"])
    target, process = build(cfg)
    model = build_model(cfg, target.event_shape, process)
    x = target.sample(3, torch.Generator().manual_seed(0))
    assert model(x, torch.full((3,), 0.5)).shape == x.shape
    sampler_options(cfg.sampler)
    for i in range(len(cfg.run.samplers)):
        sampler_options(compared_sampler(cfg, i))


def test_quickstart_config_is_the_quickstart_defaults():
    from scorelab.quickstart import DEFAULTS

    assert load_config(CONFIGS / "quickstart.yaml") == parse_config(DEFAULTS)


def test_cli_missing_config_file_and_bad_override(tmp_path):
    result = runner.invoke(app, ["check", str(tmp_path / "none.yaml")])
    assert result.exit_code == 2 and "file not found" in result.output
    good = tmp_path / "c.yaml"
    good.write_text("seed: 1\n")
    result = runner.invoke(app, ["check", str(good), "--set", "process.kind"])
    assert result.exit_code == 2 and "expected KEY=VALUE" in result.output
    bad_yaml = tmp_path / "b.yaml"
    bad_yaml.write_text("target: [1, 2\n")
    result = runner.invoke(app, ["check", str(bad_yaml)])
    assert result.exit_code == 2 and "not valid YAML" in result.output


def test_overrides_parse_yaml_values():
    out = apply_overrides(
        {"target": {"kind": "gaussian"}}, ["target.mean=[1, 2]", "target.cov=0.5", "seed=3"]
    )
    assert out == {"target": {"kind": "gaussian", "mean": [1, 2], "cov": 0.5}, "seed": 3}
    with pytest.raises(ConfigError, match="is a value, not a section"):
        apply_overrides({"seed": 1}, ["seed.x=2"])


def test_python_builders_match_direct_construction():
    p = scorelab.build_process({"kind": "vp", "sigma_inf": 2.0, "schedule": {"kind": "cosine"}})
    # a config's cosine schedule is capped at β = 20 unless it says clip_max: null
    direct = scorelab.VP(sch.CosineBeta(clip_max=sch.COSINE_CLIP, variance=4.0), sigma_inf=2.0)
    t = torch.linspace(0, 0.99, 7, dtype=torch.float64)
    assert torch.allclose(p.scale(t), direct.scale(t)) and torch.allclose(p.std(t), direct.std(t))
    # the cosine schedule under σ∞ = 2 still gives m = cos θ_t / cos θ_0
    assert float(p.scale(0.5)) == pytest.approx(
        float(scorelab.VP(sch.CosineBeta(clip_max=None)).scale(0.5))
    )
    tg = scorelab.build_target({"kind": "gmm", "preset": "random", "n_components": 3, "dim": 4})
    assert tg.n_components == 3 and tg.dim == 4
    emp = scorelab.build_target(
        {"kind": "empirical", "n": 50, "source": {"kind": "circle", "dim": 3}}, seed=2
    )
    assert emp.n_points == 50 and emp.dim == 3


def test_file_targets_from_npy_npz_csv(tmp_path):
    data = np.random.default_rng(0).normal(size=(20, 3))
    np.save(tmp_path / "a.npy", data)
    np.savez(tmp_path / "b.npz", samples=data)
    np.savetxt(tmp_path / "c.csv", data, delimiter=",", header="x,y,z", comments="")
    for name in ("a.npy", "b.npz", "c.csv"):
        t = scorelab.build_target({"kind": "file", "path": str(tmp_path / name)})
        assert torch.allclose(t.data, torch.from_numpy(data))
    np.save(tmp_path / "one.npy", data[:1])
    with pytest.raises(InvalidParameter, match=r"target\.path: holds 1 example .* at least 2"):
        scorelab.build_target({"kind": "file", "path": str(tmp_path / "one.npy")})
    np.save(tmp_path / "nan.npy", np.array([[np.nan, 1.0]]))
    with pytest.raises(InvalidParameter, match=r"target\.path: holds NaN"):
        scorelab.build_target({"kind": "file", "path": str(tmp_path / "nan.npy")})
    (tmp_path / "d.txt").write_text("1,2\n")
    with pytest.raises(InvalidParameter, match="unsupported extension"):
        scorelab.build_target({"kind": "file", "path": str(tmp_path / "d.txt")})
    np.savez(tmp_path / "e.npz", a=data, b=data)
    with pytest.raises(InvalidParameter, match=r"target\.key: names no array"):
        scorelab.build_target({"kind": "file", "path": str(tmp_path / "e.npz"), "key": "c"})


def test_cli_version_help_and_list():
    assert runner.invoke(app, ["--version"]).output.strip() == f"scorelab {scorelab.__version__}"
    assert "quickstart" in runner.invoke(app, ["--help"]).output
    out = runner.invoke(app, ["list"], terminal_width=200).output
    for kind in (
        "linear",
        "parametric",
        "cosine",
        "geometric",
        "edm_vp",
        "gaussian",
        "gmm",
        "tilted_gmm",
        "empirical",
        "circle",
        "sphere",
        "subspace",
        "toy2d",
        "digits",
        "file",
    ):
        assert kind in out


def test_quickstart_runs_the_pipeline_on_its_defaults(tmp_path, monkeypatch):
    import copy

    from scorelab import quickstart

    small = copy.deepcopy(quickstart.DEFAULTS)
    small["train"].update(steps=40, log_every=10)
    small["sampler"]["n"] = 400
    small["run"].update(n_boot=10, metrics=["w2", "nll"])
    monkeypatch.setattr(quickstart, "DEFAULTS", small)
    result = runner.invoke(app, ["quickstart", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for name in ("report.html", "evaluation.json", "loss.png", "samples.png", "field.png"):
        assert (tmp_path / name).is_file(), name
    assert "report:" in result.output and "euler_maruyama" in result.output


@pytest.mark.slow
def test_quickstart_reaches_twice_the_w2_floor(tmp_path):
    """The README's main job on its real defaults (≈ 40 s): W2 ≤ 2× its floor for both
    samplers."""
    import json

    result = runner.invoke(app, ["quickstart", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    for name, metrics in summary["samplers"].items():
        assert metrics["w2"]["value"] <= 2 * metrics["w2"]["floor"], (name, metrics["w2"])


def _sample_config(tmp_path, **sampler):
    import yaml

    cfg = {
        "seed": 5,
        "target": {"kind": "gaussian", "dim": 2, "mean": [1.0, -1.0], "cov": [0.5, 0.1]},
        "process": {"kind": "vp"},
        "sampler": {"kind": "euler_maruyama", "steps": 30, "n": 600, **sampler},
    }
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_cli_sample_writes_npz_with_metadata_and_is_batch_size_independent(tmp_path):
    from scorelab.storage import load_samples

    path = _sample_config(tmp_path, eval_point="right", dtype="float64")
    outs = []
    for batch in (256, 600):
        out = tmp_path / f"b{batch}.npz"
        result = runner.invoke(
            app, ["sample", str(path), "--out", str(out), "--set", f"sampler.batch_size={batch}"]
        )
        assert result.exit_code == 0, result.output
        assert "NFE 30" in result.output and "wall time" in result.output
        outs.append(load_samples(out))
    (x1, meta), (x2, _) = outs
    assert x1.shape == (600, 2) and np.array_equal(x1, x2)
    assert meta["nfe"] == 30 and meta["seconds"] > 0
    assert meta["config"]["sampler"]["eval_point"] == "right"
    # the samples are near the target (a coarse check; the samplers' own tests are exact)
    assert np.allclose(x1.mean(0), [1.0, -1.0], atol=0.15)


def test_cli_sample_refuses_options_of_other_samplers_and_scoreless_targets(tmp_path):
    path = _sample_config(tmp_path)
    result = runner.invoke(app, ["sample", str(path), "--set", "sampler.eta=0.5"])
    assert result.exit_code == 2
    assert "sampler.eta: does not apply to sampler 'euler_maruyama'" in result.output
    result = runner.invoke(
        app,
        ["sample", str(path), "--set", "target={kind: toy2d}", "--out", str(tmp_path / "x.npz")],
    )
    assert result.exit_code == 2 and "score.kind" in result.output
    result = runner.invoke(app, ["sample", str(path), "--out", str(tmp_path / "x.txt")])
    assert result.exit_code == 2 and "must end in .npz" in result.output


def test_cli_bound_json_contract_and_refusals():
    import json

    result = runner.invoke(
        app,
        [
            "bound",
            str(CONFIGS / "paper_a_gaussian_d10.yaml"),
            "--json",
            "--set",
            "sampler.steps=100",
            "--score-error",
            "0.1",
        ],
    )
    assert result.exit_code == 0, result.output
    js = json.loads(result.output)
    assert set(js) == {"kl", "w2", "ve", "w1_manifold"}
    assert set(js["kl"]) == {"mixing", "approximation", "discretization", "total"}
    assert set(js["w2"]) == {
        "mixing",
        "approx_discretization",
        "score_error",
        "time_regularity",
        "total",
    }
    # E3 = 2hβ(T)·max(hβ(T)/4, 1)·I with h = 0.01, β(T) = 20, I = 15 (hand value: 6)
    assert js["kl"]["discretization"] == pytest.approx(6.0, rel=1e-9)
    # ε = 0.1 enters W2 as ε·T·β(T) = 2 and KL's E2 as ε²·B(T)
    assert js["w2"]["score_error"] == pytest.approx(2.0)
    assert js["kl"]["approximation"] == pytest.approx(0.01 * (0.1 + 19.9 / 2))
    assert "refused" in js["ve"] and "refused" in js["w1_manifold"]
    mix = runner.invoke(app, ["bound", str(CONFIGS / "quickstart.yaml"), "--json"])
    assert "log-concave" in json.loads(mix.output)["w2"]["refused"]


def test_cli_tune_schedule_finds_a_better_convex_schedule():
    import json

    result = runner.invoke(
        app,
        [
            "tune-schedule",
            str(CONFIGS / "paper_a_gaussian_d10.yaml"),
            "--bound",
            "w2",
            "--json",
            "--set",
            "sampler.steps=100",
        ],
    )
    assert result.exit_code == 0, result.output
    js = json.loads(result.output)
    assert js["bound_at_best"] <= min(js["grid_values"]) + 1e-9
    assert js["bound_at_best"] < js["bound_at_default"]
    assert 0 < js["best"] < 10  # paper A: moderately convex schedules are best
    bad = runner.invoke(
        app, ["tune-schedule", str(CONFIGS / "edm_2d.yaml"), "--family", "parametric"]
    )
    assert bad.exit_code == 2 and "must be vp" in bad.output
