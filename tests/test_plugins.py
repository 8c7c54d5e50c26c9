"""Adding components: worked examples that are themselves tests (docs/architecture.md).

Each example is one decorated definition; nothing else in scorelab changes, and the component
is at once reachable from the Python API, the YAML schema, ``--set`` and ``scorelab list``.
The plugin examples run the real CLI in a fresh process, as a user would.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

import scorelab
from scorelab import registry
from scorelab.config import build, build_target, parse_config
from scorelab.grids import TimeGrid
from scorelab.oracles import pf_ode_exact
from scorelab.processes import VP
from scorelab.samplers import SampleResult
from scorelab.schedules import LinearBeta
from scorelab.targets import Empirical, Gaussian, Target

ROOT = Path(__file__).resolve().parents[1]
F64 = torch.float64


def _cli(args: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    full = {**os.environ, **env}
    return subprocess.run(
        [sys.executable, "-m", "scorelab", *args],
        cwd=cwd,
        env=full,
        capture_output=True,
        text=True,
        timeout=300,
    )


# --------------------------------------------------------------------------------------------
# How to add a sampler
# --------------------------------------------------------------------------------------------


def test_add_a_sampler():
    """A second-order (midpoint) probability-flow sampler in one decorated function; its
    error against the exact PF-ODE map of a Gaussian target falls 4× per halving of h."""

    @scorelab.register("sampler", "pf_midpoint")
    def pf_midpoint(score, process, grid, x, *, noise=None, callback=None):
        """Explicit midpoint rule for the probability-flow ODE dx/dt = f x − ½ g² s."""

        def flow(x, t):
            return float(process.drift_coef(t)) * x - 0.5 * float(process.diffusion2(t)) * score(
                x, t
            )

        times = grid.times(process).tolist()
        for t0, t1 in itertools.pairwise(times):
            h = t1 - t0
            x = x + h * flow(x + 0.5 * h * flow(x, t0), t0 + 0.5 * h)
        return SampleResult(x, 2 * (len(times) - 1))

    try:
        process = VP(LinearBeta(0.1, 20.0))
        lam, mu = np.array([0.5, 2.0]), np.array([1.0, -1.0])
        target = Gaussian(mu.tolist(), lam.tolist())
        x_T = 3 * torch.randn(64, 2, generator=torch.Generator().manual_seed(0), dtype=F64)
        truth = pf_ode_exact(process, process.T, 0.05, lam, mu, x_T.numpy())
        sampler = scorelab.get("sampler", "pf_midpoint")  # what the CLI and generate call
        errors = []
        for n in (20, 40, 80):
            grid = TimeGrid("uniform", steps=n, t_min=0.05)
            res = sampler(target.score_model(process), process, grid, x_T)
            assert res.nfe == 2 * n
            errors.append(float(np.abs(res.x.numpy() - truth).max()))
        # second order: each halving of the step divides the error by ≈ 4 (3 < ratio < 5)
        for coarse, fine in itertools.pairwise(errors):
            assert 3.0 < coarse / fine < 5.0, errors
        # the registry made it a config kind, with the same validation as the built-ins
        cfg = parse_config({"sampler": {"kind": "pf_midpoint", "steps": 10}})
        assert cfg.sampler.kind == "pf_midpoint"
        assert registry.entry("sampler", "pf_midpoint").parameters == {}
    finally:
        registry.unregister("sampler", "pf_midpoint")
    with pytest.raises(scorelab.ConfigError, match="pf_midpoint"):
        parse_config({"sampler": {"kind": "pf_midpoint"}})  # gone again


# --------------------------------------------------------------------------------------------
# How to add a target
# --------------------------------------------------------------------------------------------


def test_add_a_target():
    """Two atoms ±a·u (u the unit diagonal) with the closed-form noised score
    s = (m a u tanh(m a ⟨u, x⟩ / s²) − x)/s², checked against the empirical-measure target
    on the same two points (an independent implementation)."""

    @scorelab.register("target", "two_atoms")
    class TwoAtoms(Target):
        """Uniform on the two points ±a·(1, …, 1)/√dim."""

        kind = "two_atoms"
        has_score = True
        singular = True

        def __init__(self, dim: int = 2, a: float = 1.5):
            super().__init__((int(dim),))
            self.u = torch.full((int(dim),), 1 / math.sqrt(dim), dtype=F64)
            self.a = float(a)

        def _sample(self, n, generator):
            sign = torch.randint(0, 2, (n, 1), generator=generator).to(F64) * 2 - 1
            return sign * self.a * self.u

        def _score(self, x, m, v):
            u = self.u.to(x)
            proj = (x @ u)[:, None]
            return (m * self.a * u * torch.tanh(m * self.a * proj / v) - x) / v

    try:
        cfg = parse_config({"target": {"kind": "two_atoms", "dim": 3, "a": 2.0}})
        target, process = build(cfg)
        atoms = torch.stack([2.0 * target.u, -2.0 * target.u])
        reference = Empirical(atoms)
        x = torch.randn(200, 3, generator=torch.Generator().manual_seed(1), dtype=F64)
        for t in (0.05, 0.3, 0.9):
            ours, ref = target.score(x, t, process), reference.score(x, t, process)
            assert torch.allclose(ours, ref, rtol=1e-10, atol=1e-10)
        # a bad parameter is a config error that names the key and lists the allowed ones
        with pytest.raises(scorelab.ConfigError, match=r"target\.b: unknown key"):
            build_target({"kind": "two_atoms", "b": 1.0})
    finally:
        registry.unregister("target", "two_atoms")


# --------------------------------------------------------------------------------------------
# How to add a study
# --------------------------------------------------------------------------------------------


@pytest.mark.studies  # runs scorelab.studies (run_study), if only a one-claim study of its own
def test_add_a_study(tmp_path):
    """A study is a function filling a Study; registered, it runs like the paper studies."""
    from scorelab.studies import run_study

    @scorelab.register("study", "tweedie-check")
    def tweedie_check(study):
        """Tweedie's denoiser of a Gaussian is linear: check E[X₀ | X_t] by regression."""
        target = Gaussian([0.0], [2.0])
        process = VP(LinearBeta())
        t = 0.4
        m, v = float(process.scale(t)), float(process.variance(t))
        exact = m * 2.0 / (m * m * 2.0 + v)
        errors = []
        for seed in study.seeds:
            g = study.generator("seed", seed)
            x0 = target.sample(20000, g, dtype=F64)
            xt = process.sample_marginal(x0, t, generator=g)
            errors.append(float((xt * x0).mean() / (xt * xt).mean()) - exact)
        study.claim(
            "slope",
            "the regression slope of X₀ on X_t is Tweedie's m·λ/(m²λ + s²)",
            source="extrapolation",
            where="a textbook identity, not a paper's claim",
            a=errors,
            direction="within",
            margin=0.02,
        )

    try:
        done = run_study("tweedie-check", tmp_path, quick=True, seed=0)
        results = json.loads((tmp_path / "tweedie-check" / "results.json").read_text())
        assert done[0].claims[0].verdict == "holds", done[0].claims
        claim = results["claims"][0]
        assert claim["verdict"] == "holds" and claim["seeds"] == 2
        assert claim["effect"]["ci"][0] > -0.02 and claim["effect"]["ci"][1] < 0.02
    finally:
        registry.unregister("study", "tweedie-check")


# --------------------------------------------------------------------------------------------
# Plugins: a module named in SCORELAB_PLUGINS, or an entry point of another package
# --------------------------------------------------------------------------------------------

PLUGIN = '''
import scorelab

@scorelab.register("sampler", "euler_again")
def euler_again(score, process, grid, x, *, noise=None, callback=None):
    """The probability-flow Euler sampler, reached through the registry."""
    sampler = scorelab.get("sampler", "ode_euler")
    return sampler(score, process, grid, x, noise=noise, callback=callback)
'''


def test_a_plugin_sampler_runs_from_the_cli_bit_for_bit(tmp_path):
    """The README's example as a user runs it: the plugin's sampler in a fresh `scorelab`
    process, against the built-in sampler run here (the CLI in process)."""
    from typer.testing import CliRunner

    from scorelab.cli import app

    (tmp_path / "myplug.py").write_text(textwrap.dedent(PLUGIN))
    env = {"SCORELAB_PLUGINS": "myplug", "PYTHONPATH": str(tmp_path)}
    config = str(ROOT / "configs" / "quickstart.yaml")

    def args(kind: str) -> list[str]:
        sets = ["score.kind=exact", f"sampler.kind={kind}", "sampler.n=300"]
        return [
            "sample",
            config,
            *[a for x in sets for a in ("--set", x)],
            "--out",
            str(tmp_path / f"{kind}.npz"),
        ]

    res = _cli([*args("euler_again")], tmp_path, env)
    assert res.returncode == 0, res.stderr
    ref = CliRunner().invoke(app, args("ode_euler"))
    assert ref.exit_code == 0, ref.output
    plugin = np.load(tmp_path / "euler_again.npz")["samples"]
    assert np.array_equal(plugin, np.load(tmp_path / "ode_euler.npz")["samples"])


def test_a_plugin_that_fails_to_import_is_a_clear_error(tmp_path):
    res = _cli(["list", "sampler"], tmp_path, {"SCORELAB_PLUGINS": "no_such_module_xyz"})
    assert res.returncode == 2
    assert "SCORELAB_PLUGINS" in res.stderr and "no_such_module_xyz" in res.stderr
    assert "Traceback" not in res.stderr


def test_an_entry_point_plugin_is_loaded(tmp_path):
    """Another installed package declares [project.entry-points."scorelab.plugins"]."""
    (tmp_path / "fakeplug_mod.py").write_text(
        "import scorelab\n"
        "@scorelab.register('weighting', 'half')\n"
        "def half(process, t, var, sigma_data):\n"
        "    '''λ = ½ s².'''\n"
        "    return 0.5 * var\n"
    )
    dist = tmp_path / "fakeplug-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fakeplug\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[scorelab.plugins]\nfakeplug = fakeplug_mod\n")
    res = _cli(["list", "weighting", "--json"], tmp_path, {"PYTHONPATH": str(tmp_path)})
    assert res.returncode == 0, res.stderr
    assert "half" in json.loads(res.stdout)["weighting"]


def test_list_json_has_every_group_with_defaults():
    from typer.testing import CliRunner

    from scorelab.cli import app

    res = CliRunner().invoke(app, ["list", "--json"])
    assert res.exit_code == 0, res.output
    listing = json.loads(res.stdout)
    assert set(listing) == set(registry.GROUPS)
    assert all(listing[g] for g in registry.GROUPS), {g: len(v) for g, v in listing.items()}
    assert listing["schedule"]["linear"] == {"beta_min": 0.1, "beta_max": 20.0}
    assert listing["sampler"]["ddim"]["eta"] == 0.0
    assert listing["grid"]["edm"] == {"rho": 7.0}
