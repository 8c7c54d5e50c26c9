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
from scorelab import SampleResult, registry
from scorelab.config import build, build_target, parse_config
from scorelab.grids import TimeGrid
from scorelab.oracles import pf_ode_exact
from scorelab.processes import VP
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


def test_a_plugin_sampler_inherits_the_final_step_the_nfe_and_per_sample_noise():
    """A plugin sampler written as one function, with an option named like DDIM's ``eta`` but
    of another type (a string), and no code for the final step, the NFE or the seeding: run by
    ``scorelab.generate`` it gets all three. ``final="denoise"`` adds Tweedie's step (NFE + 1,
    the samples being the target's closed-form denoiser of the samples that stop at t_N, drawn
    with the same noise); the NFE is counted, not taken from the plugin; the same seed gives
    the same sample whatever the batch size. Its ``eta="start"`` is Euler–Maruyama with the
    score at the step's start: the built-in sampler's samples to 1e-12."""

    @scorelab.register("sampler", "reverse_euler")
    def reverse_euler(score, process, grid, x, *, noise=None, callback=None, eta: str = "start"):
        """Euler–Maruyama on the reverse SDE, the score at the step's start or end (``eta``)."""
        from scorelab.noise import normal_like

        times = grid.times(process).tolist()
        for t0, t1 in itertools.pairwise(times):
            tau, h = (t0 if eta == "start" else t1), t0 - t1
            f, g2 = float(process.drift_coef(tau)), float(process.diffusion2(tau))
            x = x * (1 - h * f) + h * g2 * score(x, tau)
            x = x + math.sqrt(h * g2) * normal_like(noise, x)
        return SampleResult(x, nfe=-1)  # whatever it says, the caller counts

    try:
        assert registry.entry("sampler", "reverse_euler").parameters == {"eta": "start"}
        assert registry.entry("sampler", "ddim").parameters["eta"] == 0.0
        process = VP(LinearBeta())
        target = Gaussian([1.0, -0.5], [0.5, 2.0])

        def run(final="none", n=300, batch_size=None, **options):
            grid = scorelab.TimeGrid("uniform", steps=20, final=final)
            return scorelab.generate(
                target.score_model(process),
                process,
                (2,),
                sampler=options.pop("sampler", "reverse_euler"),
                grid=grid,
                n=n,
                seed=7,
                batch_size=batch_size,
                dtype=F64,
                **options,
            )

        stop, down = run(), run(final="denoise")
        assert (stop.nfe, down.nfe) == (20, 21)
        t_last = float(scorelab.TimeGrid("uniform", steps=20).times(process)[-1])
        tweedie = target.denoise(stop.samples, t_last, process)
        assert torch.allclose(down.samples, tweedie, rtol=1e-12, atol=1e-12)
        batches = [run(n=2500, batch_size=b).samples for b in (1024, 2048, None)]
        assert torch.equal(batches[0], batches[1]) and torch.equal(batches[0], batches[2])
        assert torch.equal(batches[0][:300], stop.samples)
        builtin = run(final="denoise", sampler="euler_maruyama")
        assert torch.allclose(down.samples, builtin.samples, rtol=1e-12, atol=1e-12)
        assert not torch.allclose(run(eta="end").samples, stop.samples, atol=1e-3)
    finally:
        registry.unregister("sampler", "reverse_euler")


def test_a_plugin_sampler_from_the_cli_takes_the_final_step(tmp_path):
    """The same kind of plugin reached through the config and the CLI (in process, its option
    left at its default): ``sampler.grid.final=denoise`` costs one NFE more (25 steps, then
    26 NFE), and the samples are the target's exact denoiser of those that stop at t_N."""
    from typer.testing import CliRunner

    from scorelab.cli import app
    from scorelab.storage import load_samples

    @scorelab.register("sampler", "flow_euler")
    def flow_euler(score, process, grid, x, *, noise=None, callback=None, eta: str = "start"):
        """Euler on the probability-flow ODE (``eta`` is not used)."""
        times = grid.times(process).tolist()
        for t0, t1 in itertools.pairwise(times):
            f, g2 = float(process.drift_coef(t0)), float(process.diffusion2(t0))
            x = x - (t0 - t1) * (f * x - 0.5 * g2 * score(x, t0))
        return x

    try:
        config = ROOT / "configs" / "quickstart.yaml"
        samples = {}
        for final in ("none", "denoise"):
            sets = ["score.kind=exact", "sampler.kind=flow_euler", "sampler.n=64"]
            sets += [f"sampler.grid.final={final}", "sampler.dtype=float64"]
            out = tmp_path / f"{final}.npz"
            res = CliRunner().invoke(
                app,
                [
                    "sample",
                    str(config),
                    *[a for x in sets for a in ("--set", x)],
                    "--out",
                    str(out),
                ],
            )
            assert res.exit_code == 0, res.output
            assert f"NFE {25 + (final == 'denoise')}" in res.output
            samples[final] = torch.as_tensor(load_samples(out)[0])
        target, process = build(scorelab.load_config(config, ["score.kind=exact"]))
        t_last = float(TimeGrid("edm", steps=25).times(process)[-1])
        tweedie = target.denoise(samples["none"], t_last, process)
        assert torch.allclose(samples["denoise"], tweedie, rtol=1e-10, atol=1e-10)
    finally:
        registry.unregister("sampler", "flow_euler")


def test_what_a_plugin_sampler_returns_is_checked_and_its_model_faces_count():
    """A plugin may call the model's other faces (here a denoiser's D(x̂, σ)); each call counts
    as one NFE. A result that is not samples shaped like x is a clear error."""
    from scorelab.interfaces import from_denoiser
    from scorelab.interop import exact_denoiser

    @scorelab.register("sampler", "one_shot")
    def one_shot(score, process, grid, x, *, noise=None, callback=None):
        """D(x̂, σ_0) in one step: the denoiser's estimate at the grid's first level."""
        sigma = float(grid.noise_levels(process)[0])
        return score.denoiser(x / float(process.scale(grid.times(process)[0])), sigma)

    @scorelab.register("sampler", "bad_shape")
    def bad_shape(score, process, grid, x, *, noise=None, callback=None):
        """Returns one sample too few."""
        return x[1:]

    try:
        process = VP(LinearBeta())
        target = Gaussian([1.0, -0.5], [0.5, 2.0])
        model = from_denoiser(exact_denoiser(target).fn, process)
        x = torch.randn(8, 2, generator=torch.Generator().manual_seed(0), dtype=F64)
        grid = TimeGrid("uniform", steps=4, final="denoise")
        res = scorelab.integrate("one_shot", model, process, grid, x)
        assert res.nfe == 2  # the denoiser face once, then the final step
        t0 = float(grid.times(process)[0])
        first = target.denoise(x, t0, process)
        last = float(grid.times(process)[-1])
        assert torch.allclose(res.samples, target.denoise(first, last, process), atol=1e-10)
        with pytest.raises(scorelab.InvalidParameter, match="'bad_shape' must return"):
            scorelab.integrate("bad_shape", model, process, grid, x)
    finally:
        registry.unregister("sampler", "one_shot")
        registry.unregister("sampler", "bad_shape")


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
            margin_rule="a tolerance of 0.02 on the slope, ten times its Monte Carlo error",
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
import torch

import scorelab


@scorelab.register("sampler", "euler_again")
def euler_again(score, process, grid, x, *, noise=None, callback=None):
    """Euler on the probability-flow ODE dx/dt = f x − ½ g² s, written out."""
    times = grid.times(process).tolist()
    for k in range(len(times) - 1):
        t, h = times[k], times[k] - times[k + 1]
        f, g2 = float(process.drift_coef(t)), float(process.diffusion2(t))
        x = torch.add(x, torch.add(f * x, score(x, t), alpha=-0.5 * g2), alpha=-h)
        if callback is not None:
            callback(k, times[k + 1], x, x)
    return x  # generate counts the NFE and takes the final step to σ = 0
'''


def test_a_plugin_sampler_runs_from_the_cli_bit_for_bit(tmp_path):
    """The README's example as a user runs it: the plugin's sampler in a fresh `scorelab`
    process, against the built-in sampler run here (the CLI in process), down to σ = 0: the
    plugin has no code for the final step, the caller takes it."""
    from typer.testing import CliRunner

    from scorelab.cli import app

    (tmp_path / "myplug.py").write_text(textwrap.dedent(PLUGIN))
    env = {"SCORELAB_PLUGINS": "myplug", "PYTHONPATH": str(tmp_path)}
    config = str(ROOT / "configs" / "quickstart.yaml")

    def args(kind: str) -> list[str]:
        sets = [
            "score.kind=exact",
            f"sampler.kind={kind}",
            "sampler.n=300",
            "sampler.grid.final=denoise",
        ]
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
    plugin = np.load(tmp_path / "euler_again.npz")
    builtin = np.load(tmp_path / "ode_euler.npz")
    assert np.array_equal(plugin["samples"], builtin["samples"])
    assert "NFE 26" in res.stdout  # 25 steps and the final one


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


# --------------------------------------------------------------------------------------------
# One plugin module, three components with their own parameters, through the real CLI
# --------------------------------------------------------------------------------------------

THREE = """
import itertools
import torch
import scorelab

@scorelab.register("sampler", "labelled_euler")
def labelled_euler(score, process, grid, x, *, noise=None, callback=None, eta: str = "fast"):
    '''Probability-flow Euler; eta is a label (DDIM's eta is a number).'''
    if eta not in ("fast", "turbo"):
        raise ValueError(eta)
    for t0, t1 in itertools.pairwise(grid.times(process).tolist()):
        f, g2 = float(process.drift_coef(t0)), float(process.diffusion2(t0))
        x = x - (t0 - t1) * (f * x - 0.5 * g2 * score(x, t0))
    return x

@scorelab.register("grid", "power", space="t")
def power(u, hi, lo, p: float = 3.0):
    '''t from t_max down to t_min as (1 - u)^p.'''
    return lo + (hi - lo) * (1 - u) ** p

@scorelab.register("noise", "capped")
def capped(process, n, generator=None, cap: float = 5.0):
    '''t uniform on [t_min, min(cap, T)].'''
    u = torch.rand(n, generator=generator, dtype=torch.float64)
    return process.t_min + (min(cap, process.T) - process.t_min) * u
"""


def test_a_plugin_module_of_three_components_reaches_list_set_and_the_final_step(tmp_path):
    """A sampler with an option named like DDIM's but of another type, a grid with its own
    parameter and a noise law with its own parameter: each is listed with its parameter, each
    parameter is set from ``--set`` in a fresh process, and the sampler, which has no code for
    it, takes the final step to σ = 0 (one more NFE; the samples are the exact denoiser's of
    those that stop at t_N, computed here)."""
    (tmp_path / "three.py").write_text(textwrap.dedent(THREE))
    env = {"SCORELAB_PLUGINS": "three", "PYTHONPATH": str(tmp_path)}
    listed = _cli(["list", "--json"], tmp_path, env)
    assert listed.returncode == 0, listed.stderr
    groups = json.loads(listed.stdout)
    assert groups["sampler"]["labelled_euler"] == {"eta": "fast"}
    assert groups["grid"]["power"] == {"p": 3.0}
    assert groups["noise"]["capped"] == {"cap": 5.0}

    config = str(ROOT / "configs" / "quickstart.yaml")
    common = ["score.kind=exact", "sampler.kind=labelled_euler", "sampler.eta=turbo"]
    common += ["sampler.grid.kind=power", "sampler.grid.p=2.0", "sampler.steps=12"]
    common += ["sampler.n=64", "sampler.dtype=float64", "train.noise.kind=capped"]
    common += ["train.noise.cap=0.3"]
    out = {}
    for final in ("none", "denoise"):
        sets = [*common, f"sampler.grid.final={final}"]
        out[final] = tmp_path / f"{final}.npz"
        args = ["sample", config, *[a for s in sets for a in ("--set", s)], "--out", out[final]]
        res = _cli([str(a) for a in args], tmp_path, env)
        assert res.returncode == 0, res.stderr
        assert f"NFE {12 + (final == 'denoise')}" in res.stdout
    bad = _cli(["check", config, "--set", "sampler.kind=ddim", "--set", "sampler.eta=turbo"],
               tmp_path, env)  # fmt: skip
    assert bad.returncode == 2 and "sampler.eta" in bad.stderr

    target, process = build(scorelab.load_config(config, ["score.kind=exact"]))
    u = torch.linspace(0, 1, 13, dtype=F64)
    t_last = float(process.t_min + (process.T - process.t_min) * (1 - u[-1]) ** 2)
    stopped = torch.as_tensor(np.load(out["none"])["samples"])
    expected = target.denoise(stopped, t_last, process)
    got = torch.as_tensor(np.load(out["denoise"])["samples"])
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)
