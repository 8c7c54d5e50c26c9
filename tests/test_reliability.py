# ruff: noqa: E501  (the table of bad inputs reads best one case per line)
"""Reliability: every bad input ends in one clear line (exit 2, never "internal
error" or a traceback), one writer per run directory, resume refuses silent config changes,
nothing non-finite is written, and code named in a config runs only when allowed.

Each class of the issue has a test here; the interruptions are in test_interruptions.py and
the property-based checks in test_properties.py.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from scorelab import registry
from scorelab import schedules as sch
from scorelab.cli import app
from scorelab.config import load_config, parse_config
from scorelab.errors import InvalidParameter, NonFinite, ScorelabError
from scorelab.grids import TimeGrid
from scorelab.pipeline import run, train
from scorelab.processes import VP
from scorelab.rundir import LOCK_NAME, RunLock
from scorelab.sampling import generate
from scorelab.storage import save_samples
from scorelab.targets import Gaussian

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]

TINY = {
    "seed": 0,
    "target": {"kind": "gmm", "preset": "ring8"},
    "process": {"kind": "vp", "schedule": {"kind": "cosine", "clip_max": 20.0}},
    "network": {"kind": "mlp", "width": 16, "depth": 1},
    "train": {"steps": 20, "batch_size": 32, "log_every": 5, "checkpoint_every": 10},
    "sampler": {"kind": "heun", "steps": 5, "n": 64},
    "run": {"metrics": ["w2"], "bounds": False, "diagnose": False, "n_boot": 10},
}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The bad files of the issue, and one trained checkpoint with variants of it."""
    d = tmp_path_factory.mktemp("bad")
    (d / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    good = d / "good.npz"
    np.savez(good, samples=np.zeros((10, 2)))
    (d / "empty.npz").write_bytes(b"")
    (d / "truncated.npz").write_bytes(good.read_bytes()[:60])
    np.save(d / "good.npy", np.zeros((10, 2)))
    (d / "truncated.npy").write_bytes((d / "good.npy").read_bytes()[:70])
    (d / "binary.yaml").write_bytes(bytes(range(256)))
    (d / "latin1.yaml").write_bytes("seed: 0\n# café\n".encode("latin-1"))
    (d / "deep.yaml").write_text("a: " + "[" * 300 + "]" * 300 + "\n")
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [{', '.join([f'*{p}'] * 10)}]\n"
        for p, c in zip("abcdefg", "bcdefgh", strict=True)
    )
    (d / "bomb.yaml").write_text(bomb)
    (d / "huge.npy").write_bytes(b"")
    np.save(d / "huge.npy", np.full((50, 2), 1e300))
    (d / "a_dir.yaml").mkdir()
    (d / "out.npz").mkdir()
    # a checkpoint, and copies with damaged metadata or weights
    run_dir = d / "run"
    train(parse_config(TINY), run_dir)
    ckpt = run_dir / "checkpoint.safetensors"
    tensors = load_file(str(ckpt))
    with safe_open(str(ckpt), framework="pt") as fh:
        meta = fh.metadata()
    variants = {
        "badjson": (tensors, {**meta, "config": "{oops"}),
        "listcfg": (tensors, {**meta, "config": "[1, 2]"}),
        "badshape": (tensors, {**meta, "event_shape": '"x"'}),
        "nan": ({k: v * float("nan") if v.is_floating_point() else v for k, v in tensors.items()}, meta),
        "huge": ({k: v * 1e30 if k.startswith("ema.") else v for k, v in tensors.items()}, meta),
        "norng": ({k: v for k, v in tensors.items() if k != "rng"}, meta),
        "badstep": (tensors, {**meta, "step": "abc"}),
    }  # fmt: skip
    for name, (t, m) in variants.items():
        (d / name).mkdir()
        (d / name / "config.yaml").write_text((run_dir / "config.yaml").read_text())
        save_file(t, str(d / name / "checkpoint.safetensors"), m)
    return d


def _cases(d: Path) -> list[tuple[str, str, list[str], str]]:
    """(class, name, CLI arguments, a phrase the message must hold)."""
    cfg = str(d / "tiny.yaml")
    ring = "{kind: gmm, preset: ring8}"

    def sample(*sets, out="s.npz"):
        args = ["sample", cfg, "--out", str(d / out), "--no-progress"]
        return args + [a for s in sets for a in ("--set", s)]

    def ckpt(name):
        return sample("score.kind=checkpoint", f"score.path={d / name}", out=f"{name}.npz")

    return [
        ("files", "empty .npz", ["evaluate", str(d / "empty.npz"), "--target", ring], "samples"),
        ("files", "truncated .npz", ["evaluate", str(d / "truncated.npz"), "--target", ring], "BadZipFile"),
        ("files", "truncated .npy", ["evaluate", str(d / "truncated.npy"), "--target", ring], "samples"),
        ("files", "binary config", ["check", str(d / "binary.yaml")], "not UTF-8"),
        ("files", "latin-1 config", ["check", str(d / "latin1.yaml")], "not UTF-8"),
        ("files", "directory as config", ["check", str(d / "a_dir.yaml")], "is a directory"),
        ("files", "ragged means", ["check", cfg, "--set", "target={kind: gmm, means: [[0, 0], [1]], weights: [0.5, 0.5]}"], "rows of equal length"),
        ("files", "empty mixture", ["check", cfg, "--set", "target={kind: gmm, means: [], weights: []}"], "non-empty"),
        ("files", "empty tilted mixture", ["check", cfg, "--set", "target={kind: tilted_gmm, means: []}"], "means"),
        ("files", "ragged covs", ["check", cfg, "--set", "target={kind: gmm, means: [[0, 0], [1, 1]], weights: [0.5, 0.5], covs: [[[1, 0], [0, 1]], [[1], [0, 1]]]}"], "covs"),
        ("files", "checkpoint config not JSON", ckpt("badjson"), "malformed metadata"),
        ("files", "checkpoint config a list", ckpt("listcfg"), "malformed metadata"),
        ("files", "checkpoint event_shape", ckpt("badshape"), "malformed metadata"),
        ("files", "checkpoint without rng", ["train", cfg, "--out", str(d / "norng"), "--resume"], "generator state"),
        ("files", "checkpoint step", ["train", cfg, "--out", str(d / "badstep"), "--resume"], "step 'abc'"),
        ("paths", "--out is a file", ["train", cfg, "--out", str(d / "good.npz")], "existing file"),
        ("paths", "--out under a file", ["train", cfg, "--out", str(d / "good.npz" / "run")], "which is a file"),
        ("paths", "--out unwritable", ["train", cfg, "--out", "/proc/scorelab-run"], "cannot be written"),
        ("paths", "sample --out a directory", sample(out="out.npz"), "names a directory"),
        ("paths", "sample --out not .npz", sample(out="s.txt"), "must end in .npz"),
        ("sizes", "sampler.n=1e13", sample("sampler.n=1e13"), "sampler.n: is too large"),
        ("sizes", "train.batch_size=1e12", ["train", cfg, "--out", str(d / "r1"), "--set", "train.batch_size=1e12"], "train.batch_size: is too large"),
        ("sizes", "train.n_train=1e12", ["train", cfg, "--out", str(d / "r2"), "--set", "train.n_train=1e12"], "train.n_train: is too large"),
        ("sizes", "target.dim=1e12", ["check", cfg, "--set", "target={kind: gaussian, dim: 1000000000000}"], "memory"),
        ("sizes", "deep YAML file", ["check", str(d / "deep.yaml")], "nested more than"),
        ("sizes", "deep --set value", ["check", cfg, "--set", "target=" + "[" * 300 + "]" * 300], "nested more than"),
        ("sizes", "YAML alias bomb", ["check", str(d / "bomb.yaml")], "aliases"),
        ("numbers", "samples near 1e300", ["evaluate", str(d / "huge.npy"), "--target", ring], "overflow"),
        ("numbers", "seed = 2^64", ["check", cfg, "--set", f"seed={2**64}"], "seed"),
        ("numbers", "--seed 2^70", ["evaluate", str(d / "good.npy"), "--target", ring, "--seed", str(2**70)], "--seed"),
        ("numbers", "dopri5 rtol = atol = 0", sample("sampler.kind=dopri5", "sampler.rtol=0", "sampler.atol=0"), "atol"),
        ("numbers", "dopri5 rtol = nan", sample("sampler.kind=dopri5", "sampler.rtol=nan"), "rtol"),
        ("misleading", "linear beta_max=1e6", ["check", cfg, "--set", "process.schedule={kind: linear, beta_max: 1e6}"], "beta_max"),
        ("markup", "[/] in a message", ["check", cfg, "--set", "target.kind='[/]'"], "'[/]'"),
        ("markup", "[n, 2] in a message", ["check", cfg, "--set", "target={kind: gaussian, mean: '[n, 2]'}"], "[n, 2]"),
        ("late", "metric needing more samples", ["check", cfg, "--set", "target={kind: gaussian, dim: 20}", "--set", "run.metrics=[kl_gaussian]", "--set", "sampler.n=5"], "kl_gaussian"),
        ("late", "VP-only sampler on VE", ["check", cfg, "--set", "process={kind: ve}", "--set", "sampler.kind=exponential_integrator"], "vp process only"),
        ("late", "bad compared sampler option", ["check", cfg, "--set", "run.samplers=[{kind: ddim, rtol: 1}]"], "run.samplers"),
        ("late", "typo in run.metrics", ["check", cfg, "--set", "run.metrics=[w3]"], "run.metrics"),
        ("code", "callable schedule", ["check", cfg, "--set", "process.schedule={kind: callable, function: 'torch:sigmoid'}"], "--allow-code"),
        ("non-finite", "NaN checkpoint", ckpt("nan"), "not finite"),
        ("non-finite", "huge checkpoint", ckpt("huge"), "NaN or inf in"),
    ]  # fmt: skip


def test_every_bad_input_gets_one_clear_line(files):
    """Each case: exit code 2 and one line 'error: …' holding the expected phrase; never an
    internal error or a traceback. Prints the count per class."""
    counts: dict[str, int] = {}
    for cls, name, args, phrase in _cases(files):
        res = runner.invoke(app, args)
        lines = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
        assert res.exit_code == 2, (name, res.exit_code, res.output[-800:])
        assert len(lines) == 1 and phrase in lines[0], (name, res.output[-800:])
        assert "internal error" not in res.output and "Traceback" not in res.output, name
        counts[cls] = counts.get(cls, 0) + 1
    assert not list(files.glob("nan.npz")) and not list(files.glob("huge.npz"))  # nothing written
    print(json.dumps(counts))


def test_far_samples_are_evaluated_in_seconds(tmp_path):
    """Samples far from the target sent the log-domain Sinkhorn solver into minutes; the exact
    plan now stands in, with a warning, when ε is negligible beside the cost."""
    far = tmp_path / "far.npy"
    np.save(far, np.random.default_rng(0).normal(size=(300, 2)) + 1e3)
    t0 = time.perf_counter()
    res = runner.invoke(
        app,
        [
            *("evaluate", str(far), "--target", "{kind: gmm, preset: ring8}", "--json"),
            *("--metrics", "sinkhorn", "--n-boot-ot", "10"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert time.perf_counter() - t0 < 120  # minutes before; seconds now
    value = json.loads(res.stdout[res.stdout.index("{") :])["sinkhorn"]["value"]
    assert value == pytest.approx(2e6, rel=0.05)  # ≈ ‖shift‖² = 2·10⁶


def test_markup_in_a_path_prints_as_text(tmp_path, files):
    out = tmp_path / "a[/]b[n, 2].npz"
    res = runner.invoke(
        app, ["sample", str(files / "tiny.yaml"), "--out", str(out), "--no-progress"]
    )
    assert res.exit_code == 0 and str(out) in res.output and out.exists()


# --- one writer per run directory ---------------------------------------------------------

HOLDER = textwrap.dedent(
    """
    import fcntl, json, os, sys, time
    fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.write(fd, json.dumps({"pid": os.getpid(), "host": os.uname().nodename}).encode())
    print("locked", flush=True)
    time.sleep(600)
    """
)


def test_a_second_writer_is_refused_with_the_holders_pid_and_a_dead_one_is_taken_over(
    tmp_path, files
):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(run_dir / LOCK_NAME)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        args = ["train", str(files / "tiny.yaml"), "--out", str(run_dir), "--no-progress"]
        res = runner.invoke(app, args)
        assert res.exit_code == 2, res.output
        assert f"in use by another scorelab process (PID {holder.pid}" in res.output
        assert not (run_dir / "checkpoint.safetensors").exists()
        assert not (run_dir / "config.yaml").exists()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    res = runner.invoke(app, args)  # the holder died (SIGKILL): its lock is stale
    assert res.exit_code == 0, res.output
    assert f"stale lock of a process that no longer runs (PID {holder.pid}" in res.output
    assert not (run_dir / LOCK_NAME).exists()  # released on exit


def test_the_lock_is_reentrant_and_released(tmp_path):
    with RunLock(tmp_path) as outer:
        with RunLock(tmp_path):
            assert (tmp_path / LOCK_NAME).exists()
        assert (tmp_path / LOCK_NAME).exists() and outer.took_over is None
    assert not (tmp_path / LOCK_NAME).exists()


@pytest.mark.slow
def test_two_train_processes_on_one_directory(tmp_path, files):
    """Two `scorelab train` processes started together on one --out: one trains, the other
    is refused naming the first one's PID."""
    cfg = dict(TINY, train={**TINY["train"], "steps": 2000})
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    cmd = [sys.executable, "-m", "scorelab", "train", str(path), "--out", str(tmp_path / "r")]
    procs = [subprocess.Popen([*cmd, "--no-progress"], stderr=subprocess.PIPE, text=True)]
    time.sleep(0.5)
    procs.append(subprocess.Popen([*cmd, "--no-progress"], stderr=subprocess.PIPE, text=True))
    results = [(p.wait(timeout=900), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    refused = next(err for code, err in results if code == 2)
    assert "in use by another scorelab process (PID" in refused


# --- resume checks the config --------------------------------------------------------------


def test_resume_refuses_changed_keys_unless_allowed_and_records_each_resume(tmp_path):
    run_dir = tmp_path / "run"
    cfg = parse_config(TINY)
    train(cfg, run_dir)
    changed = parse_config({**TINY, "seed": 1, "train": {**TINY["train"], "lr": 1e-3, "steps": 30}})
    with pytest.raises(InvalidParameter) as info:
        train(changed, run_dir, resume=True)
    msg = str(info.value)
    for key in ("seed: 0 → 1", "train.lr: 0.002 → 0.001", "train.steps: 20 → 30"):
        assert key in msg, msg
    assert "--allow-changes seed,train.lr,train.steps" in msg
    with pytest.raises(InvalidParameter, match="names no key"):
        train(changed, run_dir, resume=True, allow_changes=["train.lrr"])
    with pytest.raises(InvalidParameter, match="only with --resume"):
        train(cfg, tmp_path / "other", allow_changes=["train.steps"])
    # what is allowed goes on, and is recorded; sampling keys are free
    longer = parse_config(
        {**TINY, "train": {**TINY["train"], "steps": 30}, "sampler": {"kind": "ddim", "n": 7}}
    )
    trainer, _ = train(longer, run_dir, resume=True, allow_changes=["train.steps"])
    assert trainer.step == 30
    records = [json.loads(ln) for ln in (run_dir / "resumes.jsonl").read_text().splitlines()]
    assert len(records) == 1 and records[0]["step"] == 20
    assert records[0]["changes"]["train.steps"] == [20, 30]
    assert records[0]["changes"]["sampler.kind"] == ["heun", "ddim"]
    assert records[0]["allowed"] == ["train.steps"]
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["train"]["steps"] == 30


def test_cli_resume_with_allow_changes(tmp_path, files):
    run_dir = tmp_path / "run"
    base = ["train", str(files / "tiny.yaml"), "--out", str(run_dir), "--no-progress"]
    assert runner.invoke(app, base).exit_code == 0
    res = runner.invoke(app, [*base, "--resume", "--set", "train.steps=25"])
    assert res.exit_code == 2 and "train.steps: 20 → 25" in res.output
    res = runner.invoke(
        app, [*base, "--resume", "--set", "train.steps=25", "--allow-changes", "train.steps"]
    )
    assert res.exit_code == 0 and "resumed at step 20" in res.output, res.output


# --- the non-finite guard -------------------------------------------------------------------


def test_training_stops_on_a_non_finite_loss_and_keeps_the_last_good_checkpoint(tmp_path):
    from tests.test_training import _setup

    trainer, _, _ = _setup(tmp_path, steps=40)  # checkpoints every 10 steps
    loss_fn = trainer.loss_fn

    def loss(*args, **kwargs):
        out = loss_fn(*args, **kwargs)
        return out * float("nan") if trainer.step == 14 else out

    trainer.loss_fn = loss
    with pytest.raises(NonFinite, match=r"step 15: the loss is nan .* checkpoint \(step 10\)"):
        trainer.fit()
    assert trainer.step == 14
    assert all(bool(torch.isfinite(v).all()) for v in trainer.model.state_dict().values())
    again, _, _ = _setup(tmp_path, steps=40)
    again.resume()
    assert again.step == 10


def test_samplers_never_return_non_finite_samples():
    process = VP(sch.LinearBeta())
    target = Gaussian(dim=2)
    exact = target.score_model(process)

    def blows_up(x, t):
        s = exact(x, t)
        return s * float("inf") if float(torch.as_tensor(t).reshape(-1)[0]) < 0.5 else s

    with pytest.raises(NonFinite) as info:
        generate(blows_up, process, (2,), sampler="ddim", grid=TimeGrid(steps=10), n=50)
    msg = str(info.value)
    assert "sampler 'ddim'" in msg and "in 50 of 50 samples" in msg and "first after step" in msg
    raw = generate(
        blows_up, process, (2,), sampler="ddim", grid=TimeGrid(steps=10), n=5, check_finite=False
    )
    assert not bool(torch.isfinite(raw.samples).all())  # the opt-out returns them as they are
    with pytest.raises(NonFinite):
        save_samples(Path("never-written.npz"), raw.samples)
    assert not Path("never-written.npz").exists()


def test_run_writes_no_samples_when_a_sampler_diverges(tmp_path):
    @registry.register("sampler", "_diverging_for_test")
    def diverging(score, process, grid, x, *, noise=None, callback=None):
        from scorelab.samplers import SampleResult

        return SampleResult(x * float("nan"), 1)

    try:
        cfg = parse_config({**TINY, "run": {**TINY["run"], "samplers": ["_diverging_for_test"]}})
        with pytest.raises(NonFinite, match="_diverging_for_test"):
            run(cfg, tmp_path / "run", log=lambda m: None)
        assert (tmp_path / "run" / "samples-heun.npz").exists()
        assert not list((tmp_path / "run").glob("samples-_diverging*"))
    finally:
        registry.unregister("sampler", "_diverging_for_test")


# --- code named in a config ------------------------------------------------------------------


def test_code_named_in_a_config_runs_only_when_allowed(tmp_path, files, monkeypatch):
    monkeypatch.delenv("SCORELAB_ALLOW_CODE", raising=False)
    cfg = str(files / "tiny.yaml")
    schedule = "process.schedule={kind: callable, function: 'torch:sigmoid'}"
    res = runner.invoke(app, ["check", cfg, "--set", schedule])
    assert res.exit_code == 2
    assert "process.schedule.function: names code to import" in res.output
    assert "--allow-code" in res.output and "SCORELAB_ALLOW_CODE=1" in res.output
    res = runner.invoke(app, ["--allow-code", "check", cfg, "--set", schedule])
    assert res.exit_code == 0, res.output
    assert runner.invoke(app, ["check", cfg, "--set", schedule]).exit_code == 2  # not sticky
    monkeypatch.setenv("SCORELAB_ALLOW_CODE", "1")
    assert runner.invoke(app, ["check", cfg, "--set", schedule]).exit_code == 0
    monkeypatch.delenv("SCORELAB_ALLOW_CODE")
    # a run directory received from someone else: its config.yaml names code
    run_dir = tmp_path / "received"
    run_dir.mkdir()
    received = dict(
        TINY, process={"kind": "vp", "schedule": {"kind": "callable", "function": "os:system"}}
    )
    (run_dir / "config.yaml").write_text(yaml.safe_dump(received))
    res = runner.invoke(app, ["diagnose", str(run_dir)])
    assert res.exit_code == 2 and "names code to import" in res.output
    # the Python API passes the function itself: nothing to allow
    process = VP(sch.CallableBeta(torch.sigmoid))
    assert float(process.sigma(torch.tensor(0.5, dtype=torch.float64))) > 0


def test_allow_code_is_accepted_anywhere_on_the_command_line(files, monkeypatch):
    from scorelab.cli import main

    monkeypatch.delenv("SCORELAB_ALLOW_CODE", raising=False)
    schedule = "process.schedule={kind: callable, function: 'torch:sigmoid'}"
    argv = ["scorelab", "check", str(files / "tiny.yaml"), "--set", schedule]
    monkeypatch.setattr(sys, "argv", [*argv, "--allow-code"])
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code in (0, None)
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 2


# --- the README says which samplers are restricted ----------------------------------------


def test_the_readme_names_every_restricted_sampler_from_the_registry():
    readme = (ROOT / "README.md").read_text()
    assert 'every sampler runs on every\n  process except those marked "only"' in readme
    for name, e in registry.entries("sampler").items():
        processes = e.meta.get("processes")
        marked = re.search(rf"`{name}` \(([A-Za-z/ ,-]+) only\)", readme)
        if processes:
            assert marked, f"README: `{name}` should be marked with its processes"
            assert {p.strip().lower() for p in re.split("[/,]", marked.group(1))} == set(processes)
        else:
            assert not marked, f"README marks `{name}` as restricted; the registry does not"


def test_check_validates_what_run_uses(files):
    cfg = load_config(
        files / "tiny.yaml", ["process={kind: ve}", "run.samplers=[exponential_integrator]"]
    )
    from scorelab.preflight import check

    with pytest.raises(ScorelabError, match=r"run\.samplers\[0\]\.kind"):
        check(cfg)
    with pytest.raises(ScorelabError, match=r"run\.samplers\[0\]\.kind"):  # before training
        run(cfg, files / "never", log=lambda m: None)
    assert not (files / "never" / "checkpoint.safetensors").exists()


def test_no_pickle_is_ever_loaded():
    """Checkpoints are safetensors and arrays are read with allow_pickle=False: no call in the
    package can unpickle a file (torch.load, pickle.load(s), joblib.load, np.load without
    allow_pickle=False)."""
    import ast

    offenders = []
    for path in (ROOT / "src" / "scorelab").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            owner = getattr(node.func.value, "id", None)
            name = f"{owner}.{node.func.attr}"
            if name in ("torch.load", "pickle.load", "pickle.loads", "joblib.load"):
                offenders.append(f"{path.name}:{node.lineno} {name}")
            if name in ("np.load", "numpy.load"):
                safe = any(
                    k.arg == "allow_pickle" and getattr(k.value, "value", True) is False
                    for k in node.keywords
                )
                if not safe:
                    offenders.append(f"{path.name}:{node.lineno} {name} without allow_pickle=False")
    assert not offenders, offenders
