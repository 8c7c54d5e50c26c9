"""The conformance certificate (``scorelab.audit.certify``, ``scorelab audit``).

Deliberately broken schedulers, each a subclass of a real diffusers class with one bug of a
kind diffusers has shipped, must fail the check that names that bug while the unbroken
parent passes; the fitted orders of Euler, Heun, DPM-Solver++(2M) and UniPC are within the
tolerance of their nominal orders; the ladder's numbers equal the closed forms; every bad
input to the command is one ``error:`` line.
"""

from __future__ import annotations

import json
import math

import pytest
import torch

diffusers = pytest.importorskip("diffusers")

from diffusers.configuration_utils import FrozenDict  # noqa: E402

from scorelab import oracles  # noqa: E402
from scorelab.audit import certify  # noqa: E402
from scorelab.audit.checks import ORDER_TOL  # noqa: E402
from scorelab.audit.driver import Driver, timestep_level  # noqa: E402
from scorelab.audit.levels import level_run  # noqa: E402
from scorelab.config import build_target  # noqa: E402
from scorelab.interop import scheduler_process  # noqa: E402
from scorelab.metrics.gaussian import kl_gaussians, w2_gaussians  # noqa: E402

MU, LAM = torch.tensor([1.0, 1.0], dtype=torch.float64), torch.tensor([0.5, 2.0])
TARGET = build_target({"kind": "gaussian", "dim": 2, "mean": 1.0, "cov": [0.5, 2.0]})
SHORT = (10, 20, 40, 80)  # enough for every check but the order's asymptotics


# --------------------------------------------------------------------------------------------
# broken schedulers: one bug each, in a subclass of the real class
# --------------------------------------------------------------------------------------------


class DuplicatedLastSigma(diffusers.EulerDiscreteScheduler):
    """The last σ repeated instead of 0: the last step does nothing."""

    def set_timesteps(self, *args, **kwargs):
        super().set_timesteps(*args, **kwargs)
        self.sigmas = torch.cat([self.sigmas[:-1], self.sigmas[-2:-1]])


class IgnoredOrder(diffusers.DPMSolverMultistepScheduler):
    """solver_order=2 accepted, and every step taken at first order."""

    def multistep_dpm_solver_second_order_update(self, outputs, *args, sample=None, **kwargs):
        return self.dpm_solver_first_order_update(outputs[-1], *args, sample=sample, **kwargs)


class OffByOnePrevious(diffusers.DDIMScheduler):
    """The previous timestep one training step too low: each step lands at t − T/N − 1 while
    the next model call is told t − T/N."""

    def step(self, model_output, timestep, sample, *args, **kwargs):
        prev = int(timestep) - self.config.num_train_timesteps // self.num_inference_steps
        table = self.alphas_cumprod
        if prev >= 1:
            self.alphas_cumprod = table.clone()
            self.alphas_cumprod[prev] = table[prev - 1]
        try:
            return super().step(model_output, timestep, sample, *args, **kwargs)
        finally:
            self.alphas_cumprod = table


class VReadAsEpsilon(diffusers.DDIMScheduler):
    """prediction_type="v_prediction" accepted, and the output read as ε."""

    def step(self, *args, **kwargs):
        if self.config.prediction_type != "v_prediction":
            return super().step(*args, **kwargs)
        saved = self._internal_dict
        self._internal_dict = FrozenDict({**saved, "prediction_type": "epsilon"})
        try:
            return super().step(*args, **kwargs)
        finally:
            self._internal_dict = saved


class OwnGenerator(diffusers.EulerAncestralDiscreteScheduler):
    """The caller's generator ignored: every step draws with a fixed one."""

    def step(self, model_output, timestep, sample, generator=None, return_dict=True):
        own = torch.Generator().manual_seed(0)
        return super().step(model_output, timestep, sample, generator=own, return_dict=return_dict)


class DoubleShift(diffusers.FlowMatchEulerDiscreteScheduler):
    """The static shift applied to the σ's a second time, not to the timesteps."""

    def set_timesteps(self, *args, **kwargs):
        super().set_timesteps(*args, **kwargs)
        s, sig = self.config.shift, self.sigmas
        self.sigmas = s * sig / (1 + (s - 1) * sig)


class RaisesMidway(diffusers.DDIMScheduler):
    """A scheduler that fails inside its fourth step."""

    def step(self, model_output, timestep, sample, *args, **kwargs):
        if self.num_inference_steps >= 20 and int(timestep) < 500:
            raise RuntimeError("index out of range in the step's table")
        return super().step(model_output, timestep, sample, *args, **kwargs)


LONG = (40, 80, 160, 320)  # an ancestral sampler's order settles only beyond N = 80
BROKEN = [
    (DuplicatedLastSigma, diffusers.EulerDiscreteScheduler, {}, "sigma_sequence", SHORT),
    (
        IgnoredOrder,
        diffusers.DPMSolverMultistepScheduler,
        {"final_sigmas_type": "sigma_min"},
        "order",
        (20, 40, 80, 160),
    ),
    (OffByOnePrevious, diffusers.DDIMScheduler, {}, "timestep_noise_level", SHORT),
    (VReadAsEpsilon, diffusers.DDIMScheduler, {}, "prediction_types", SHORT),
    (OwnGenerator, diffusers.EulerAncestralDiscreteScheduler, {}, "generator", LONG),
    (
        DoubleShift,
        diffusers.FlowMatchEulerDiscreteScheduler,
        {"shift": 3.0},
        "timestep_noise_level",
        SHORT,
    ),
]


def _failed(cert) -> list[str]:
    return cert.failed()


@pytest.mark.parametrize(
    ("broken", "parent", "config", "right", "steps"),
    BROKEN,
    ids=[case[0].__name__ for case in BROKEN],
)
def test_a_broken_scheduler_fails_the_right_check_and_its_parent_passes(
    broken, parent, config, right, steps
):
    good = certify(parent, TARGET, scheduler_config=config, steps=steps)
    assert good.passed, [c.to_json() for c in good.checks if c.passed is False]
    bad = certify(broken, TARGET, scheduler_config=config, steps=steps)
    assert not bad.passed and right in _failed(bad), [c.to_json() for c in bad.checks]


def test_an_ignored_order_switch_also_fails_the_options_check():
    """solver_order 2 → 1 leaves the law of the broken class unchanged."""
    cert = certify(
        IgnoredOrder, TARGET, scheduler_config={"final_sigmas_type": "sigma_min"}, steps=SHORT
    )
    check = cert.check("options_change_result")
    assert check.passed is False and "solver_order" in check.detail


def test_an_exception_inside_the_scheduler_is_a_failed_check_not_an_error():
    cert = certify(RaisesMidway, TARGET, steps=(10, 20))
    runs = cert.check("runs")
    assert runs.passed is False and "RuntimeError" in runs.detail and "20 steps" in runs.detail
    assert cert.ladder[0].w2 is not None and cert.ladder[1].error is not None
    assert not cert.passed


def test_the_duplicated_last_sigma_ends_at_the_repeated_level():
    """The level read on a point mass is the repeated σ, exactly."""
    run = level_run(Driver(DuplicatedLastSigma), 10)
    sch = DuplicatedLastSigma()
    sch.set_timesteps(10)
    assert run.end_sigma == pytest.approx(float(sch.sigmas[-2]), rel=1e-5)


# --------------------------------------------------------------------------------------------
# orders of accuracy
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("cls", "config", "order"),
    [
        ("EulerDiscreteScheduler", {}, 1),
        ("HeunDiscreteScheduler", {}, 2),
        (
            "DPMSolverMultistepScheduler",
            {"algorithm_type": "dpmsolver++", "use_karras_sigmas": True},
            2,
        ),
        ("UniPCMultistepScheduler", {"solver_order": 3, "use_karras_sigmas": True}, 4),
        (
            "UniPCMultistepScheduler",
            {"solver_order": 3, "use_karras_sigmas": True, "disable_corrector": list(range(400))},
            3,
        ),
    ],
)
def test_fitted_order_is_the_nominal_one(cls, config, order):
    """On a Gaussian target, over the default ladder; UniPC-p with its corrector is of order
    p + 1, without it of order p."""
    cert = certify(f"diffusers:{cls}", TARGET, scheduler_config=config)
    fit = cert.fitted_order
    assert abs(fit["value"] - order) <= ORDER_TOL, fit
    assert fit["ci"][0] < fit["value"] < fit["ci"][1]
    if "disable_corrector" not in config:
        assert cert.nominal_order == order and cert.check("order").passed


@pytest.mark.slow
def test_the_default_dpm_solver_is_first_order_through_its_last_step():
    """DPM-Solver++(2M) with final_sigmas_type='zero' ends with a first-order step from a σ
    that shrinks like N^(−1/2): W2 between successive rungs falls toward N^(−1), not N^(−2),
    and the order check asks for an order between 1 and 2 (and says why); a run that ends at
    σ_min instead keeps its second order, checked against 2 alone."""
    base = {"algorithm_type": "dpmsolver++"}
    steps = (40, 80, 160, 320)
    zero = certify(
        "diffusers:DPMSolverMultistepScheduler", TARGET, scheduler_config=base, steps=steps
    )
    kept = certify(
        "diffusers:DPMSolverMultistepScheduler",
        TARGET,
        scheduler_config={**base, "final_sigmas_type": "sigma_min"},
        steps=steps,
    )
    assert zero.fitted_order["value"] < 1.6 and zero.check("order").passed
    assert "first order" in zero.check("order").detail
    assert abs(kept.fitted_order["value"] - 2) <= ORDER_TOL and kept.check("order").passed
    assert "first order" not in kept.check("order").detail


# --------------------------------------------------------------------------------------------
# numbers against closed forms
# --------------------------------------------------------------------------------------------


def test_ladder_equals_the_ddim_recursion_in_closed_form():
    """The certificate's KL and W2 for DDIMScheduler are those of the DDIM recursion of
    docs/theory.md §5.2 on the same σ's (scorelab's oracle), started from N(0, I)."""
    cert = certify("diffusers:DDIMScheduler", TARGET, steps=(4, 10))
    for rung in cert.ladder:
        s = diffusers.DDIMScheduler(clip_sample=False)
        s.alphas_cumprod = s.alphas_cumprod.double()
        s.set_timesteps(rung.steps)
        p = scheduler_process(s)
        times = [*p.t_of_sigma(p.sigmas_at_timesteps(s.timesteps)).tolist(), 0.0]
        mean, var = oracles.sampler_moments("ddim", p, times, LAM, MU)
        assert rung.kl == pytest.approx(kl_gaussians(MU, LAM, mean, var), rel=1e-4)
        assert rung.w2 == pytest.approx(w2_gaussians(MU, LAM, mean, var), rel=1e-4)


def test_levels_read_on_a_point_mass_are_the_training_table():
    """Every DDIM model input is at σ = √((1 − ᾱ_t)/ᾱ_t) of its timestep (to float32), and
    the run ends at σ = 0 (set_alpha_to_one)."""
    run = level_run(Driver("diffusers:DDIMScheduler"), 10)
    abar = diffusers.DDIMScheduler().alphas_cumprod.double()
    for call in run.calls:
        t = int(call.timestep)
        assert call.sigma_in == pytest.approx(math.sqrt((1 - abar[t]) / abar[t]), rel=1e-5)
    assert run.end_sigma < 1e-6


def test_limit_error_of_a_start_from_pure_noise_is_the_last_step_only():
    """Rectified flow starts at t = 1 on its exact marginal N(0, I): its exact limit is the
    target, up to the last step from its smallest σ; the extrapolated limit agrees with it to
    Richardson's remainder (second order in 1/N: the first-order error at N = 320 is 7e-3)."""
    cert = certify("diffusers:FlowMatchEulerDiscreteScheduler", TARGET, steps=(40, 80, 160, 320))
    lim = cert.limit_error
    assert lim["start_mismatch_w2"] == pytest.approx(0.0, abs=1e-12)
    assert lim["w2"] == pytest.approx(lim["exact_limit_w2"], abs=3e-4)
    assert lim["exact_limit_w2"] < 1e-3 and cert.check("limit_explained").passed


def test_edm_timesteps_are_read_through_c_noise():
    sch = diffusers.EDMEulerScheduler()
    sch.set_timesteps(5)
    for t, s in zip(sch.timesteps, sch.sigmas[:-1], strict=True):
        assert timestep_level(sch, t) == pytest.approx(float(s), rel=1e-4)


def test_certificate_json_and_html(tmp_path):
    cert = certify("diffusers:EulerAncestralDiscreteScheduler", TARGET, steps=SHORT)
    data = json.loads(json.dumps(cert.to_json()))
    assert {"scheduler", "config", "target", "nominal_order", "ladder", "fitted_order"} <= set(data)
    assert {"limit_error", "checks", "passed"} <= set(data)
    assert [r["steps"] for r in data["ladder"]] == list(SHORT)
    assert all(
        r["noise_draws"] == r["steps"] - 1 or r["noise_draws"] == r["steps"] for r in data["ladder"]
    )
    assert {c["id"] for c in data["checks"]} >= {"generator", "noise_read_exactly", "add_noise"}
    page = cert.to_html()
    assert page.startswith("<!doctype html>") and "data:image/png;base64," in page
    assert "<script" not in page and "http" not in page.split("data:image/png")[0]


def test_a_class_with_no_step_and_a_consistency_model_are_not_certified():
    sde = certify("diffusers:ScoreSdeVeScheduler", TARGET, steps=SHORT)
    assert not sde.passed and sde.check("public_api").passed is None
    lcm = certify("diffusers:LCMScheduler", TARGET, steps=(4, 8))
    assert not lcm.passed and not lcm.certifiable and "consistency" in lcm.notes[0]


@pytest.mark.parametrize(
    ("cls", "check", "state"),
    [
        ("FlowMatchEulerDiscreteScheduler", "runs", True),  # no init_noise_sigma: 1
        ("FlowMatchHeunDiscreteScheduler", "runs", True),
        ("IPNDMScheduler", "runs", True),  # no alphas_cumprod: its own angle table
        ("ScoreSdeVeScheduler", "public_api", None),  # no step
        ("CMStochasticIterativeScheduler", "runs", True),  # 80 > its 40 steps: refused
        ("DPMSolverSDEScheduler", "loads", None),  # torchsde, where it is missing
        ("CosineDPMSolverMultistepScheduler", "loads", None),
    ],
)
def test_schedulers_the_old_audit_crashed_on_yield_a_certificate(cls, check, state):
    try:
        import torchsde  # noqa: F401

        if check == "loads":
            pytest.skip("torchsde is installed")
    except ImportError:
        pass
    cert = certify(f"diffusers:{cls}", TARGET, steps=(5, 10, 80) if "CM" in cls else (5, 10))
    assert cert.check(check).passed is state, [c.to_json() for c in cert.checks]
    json.dumps(cert.to_json())
    if "CM" in cls:
        assert cert.ladder[-1].refused and cert.ladder[0].w2 is not None


def test_mixtures_are_measured_by_samples_with_floors():
    gmm = build_target({"kind": "gmm", "preset": "ring8"})
    cert = certify("diffusers:DDIMScheduler", gmm, steps=(5, 10), n=200)
    rung = cert.ladder[0].to_json()
    assert rung["method"] == "monte_carlo" and rung["kl"] is None
    assert rung["w2"] > 0 and rung["w2_floor"] > 0 and len(rung["w2_ci"]) == 2
    assert cert.check("order").passed is None


# --------------------------------------------------------------------------------------------
# the command
# --------------------------------------------------------------------------------------------

GAUSS = "{kind: gaussian, dim: 2, mean: 1.0, cov: [0.5, 2.0]}"


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--steps", "abc"], "--steps"),
        (["--steps", "1000000"], "--steps"),
        (["--steps", "0"], "--steps"),
        (["--scheduler-config", "no_such_key=1"], "--scheduler-config"),
        (["--scheduler-config", "timestep_spacing=sideways"], "--scheduler-config"),
        (["--scheduler-config", "beta_schedule=wobbly"], "--scheduler-config"),
        (["--scheduler-config", "novalue"], "--scheduler-config"),
        (["--step-kwarg", "no_such_kwarg=1"], "--step-kwarg"),
        (["--n", "0"], "--n"),
        (["--target", "{kind: nope}"], "target"),
        (["--target", "{kind: gaussian, dim: 0}"], "target"),
    ],
)
def test_bad_input_is_one_error_line(args, named):
    from typer.testing import CliRunner

    from scorelab.cli import app

    base = ["audit", "diffusers:DDIMScheduler", "--target", GAUSS, "--steps", "5,10"]
    if "--target" in args:
        base = base[:2] + base[4:]
    res = CliRunner().invoke(app, base + args)
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert res.exit_code == 2, res.output
    assert len(lines) == 1 and lines[0].startswith("error:") and named in lines[0], res.output


def test_unknown_scheduler_and_missing_dependency():
    from typer.testing import CliRunner

    from scorelab.cli import app

    res = CliRunner().invoke(app, ["audit", "diffusers:NoSuchScheduler", "--target", GAUSS])
    assert res.exit_code == 2 and "not a diffusers scheduler" in res.output


def test_cli_writes_the_certificate(tmp_path):
    from typer.testing import CliRunner

    from scorelab.cli import app

    res = CliRunner().invoke(
        app,
        ["audit", "diffusers:DDIMScheduler", "--target", GAUSS, "--steps", "5,10,20",
         "--out", str(tmp_path), "--json", "--samplers", "ddim"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["passed"] is True and [r["steps"] for r in data["ladder"]] == [5, 10, 20]
    for ours, theirs in zip(data["beside"]["ddim"], data["ladder"], strict=True):
        assert ours["kl"] == pytest.approx(theirs["kl"], rel=1e-5)
    assert json.loads((tmp_path / "certificate.json").read_text())["ladder"] == data["ladder"]
    assert "data:image/png;base64," in (tmp_path / "certificate.html").read_text()
    res = CliRunner().invoke(
        app, ["audit", "diffusers:DDIMScheduler", "--target", GAUSS, "--steps", "5,10"]
    )
    assert res.exit_code == 0 and "certificate:" in res.output and "PASSED" in res.output


def test_a_timestep_rounded_to_the_table_is_consistent_but_a_whole_step_off_is_not():
    """Karras σ's on an integer timestep table: diffusers tells the model the nearest integer
    timestep to each σ, so the input's level is off the told one by up to a few per cent — at
    the table's resolution, which no integer timestep could avoid; the off-by-one previous
    timestep of the broken DDIM is a whole step away and still fails."""
    from scorelab.audit.checks import TIMESTEP_TOL, _timestep_offset, _timestep_table

    cert = certify(
        "diffusers:DPMSolverMultistepScheduler",
        TARGET,
        scheduler_config={"use_karras_sigmas": True},
        steps=SHORT,
    )
    check = cert.check("timestep_noise_level")
    assert check.passed and "nearest integer timestep" in check.detail
    sch = diffusers.DDIMScheduler()
    table = _timestep_table(sch)
    abar = sch.alphas_cumprod.double()
    sigma = float(((1 - abar[500]) / abar[500]).sqrt())

    class Call:
        timestep, sigma_in = 501.0, sigma

    offset = _timestep_offset(table, Call)
    assert offset == pytest.approx(1.0, abs=1e-6) and offset > TIMESTEP_TOL


def test_a_certificate_shows_its_checks_as_a_table_in_a_notebook():
    """The HTML table holds one row per check, with its result and detail; the frame is the
    same rows."""
    cert = certify("diffusers:EulerDiscreteScheduler", TARGET, steps=SHORT)
    page = cert._repr_html_()
    assert page.startswith("<") and "<table" in page
    for c in cert.checks:
        assert c.id in page
    frame = cert.to_frame()
    assert list(frame["id"]) == [c.id for c in cert.checks]
    want = {True: "passed", False: "failed", None: "skipped"}
    assert list(frame["result"]) == [want[c.passed] for c in cert.checks]
    assert cert.to_dict() == cert.to_json()
