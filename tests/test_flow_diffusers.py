"""scorelab's rectified flow against diffusers' flow-matching schedulers on the same σ's.

``FlowMatchEulerDiscreteScheduler`` and ``FlowMatchHeunDiscreteScheduler`` keep their σ table
in float32 and round the state to float32 in every ``step`` (``sample.to(torch.float32)``).
The float64 comparisons therefore cast the σ table to float64 (the same values) and drive
``step`` on a zero sample, which returns the step's increment (the step is x + increment, an
identity in the sample, which is checked); the state is then advanced in float64. The
unmodified float32 runs agree to float32 round-off (``F32_RTOL``).
"""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("diffusers")
from diffusers import FlowMatchEulerDiscreteScheduler, FlowMatchHeunDiscreteScheduler

from scorelab.config import build_target
from scorelab.grids import TimeGrid
from scorelab.interop import run_scheduler, scheduler_process
from scorelab.interpolants import RectifiedFlow
from scorelab.samplers import heun, ode_euler
from scorelab.time_shift import exponential, shift
from scorelab.velocity import exact_velocity, from_velocity

F64 = torch.float64
F32_RTOL = 5e-6
RF = RectifiedFlow()
TARGET = build_target({"kind": "gmm", "preset": "ring8"})
V = exact_velocity(TARGET, RF)


def _x(n=64, seed=0, dtype=F64):
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _euler(shift_=1.0, steps=28, **config):
    sch = FlowMatchEulerDiscreteScheduler(shift=shift_, **config)
    return sch


def _drive_increments(sch, x, stages=1):
    """diffusers' step in float64: the state advanced by step(model output, t, 0); with Heun
    the second stage's increment replaces the first's (it restarts from the stage's start)."""
    sch.sigmas = sch.sigmas.to(F64)
    start = x
    for i, t in enumerate(sch.timesteps):
        sigma = float(sch.sigmas[i if sch.step_index is None else sch.step_index])
        inc = sch.step(V.velocity(x, sigma), t, torch.zeros_like(x)).prev_sample
        x = start + inc
        if stages == 1 or sch.state_in_first_order:  # a whole step is done
            start = x
    return x


@pytest.mark.parametrize("shift_", [1.0, 3.0])
def test_ode_euler_on_rectified_flow_is_flow_match_euler(shift_):
    sch = _euler(shift_)
    sch.set_timesteps(28)
    times = sch.sigmas.to(F64)  # 28 levels, then 0
    x0 = _x()
    # the step is x + increment: checked on a float32-exact sample
    xf = x0.to(torch.float32).to(F64)
    v = V.velocity(xf, float(times[0]))
    full = sch.step(v, sch.timesteps[0], xf).prev_sample
    sch._step_index = None
    inc = sch.step(v, sch.timesteps[0], torch.zeros_like(xf)).prev_sample
    assert torch.allclose(full, xf + inc, rtol=1e-15, atol=0)
    sch.set_timesteps(28)
    ref = _drive_increments(sch, x0)
    ours = ode_euler(V, RF, times, x0)
    assert ours.nfe == 28
    assert float((ours.x - ref).abs().max()) <= 1e-10 * float(ref.abs().max())


@pytest.mark.parametrize("shift_", [1.0, 3.0])
def test_heun_on_rectified_flow_is_flow_match_heun(shift_):
    sch = FlowMatchHeunDiscreteScheduler(shift=shift_)
    sch.set_timesteps(12)
    levels = torch.cat([sch.sigmas[:1], sch.sigmas[1:-1:2], sch.sigmas[-1:]]).to(F64)
    x0 = _x(seed=1)
    ref = _drive_increments(sch, x0, stages=2)
    ours = heun(V, RF, levels, x0)
    assert ours.nfe == len(sch.timesteps) == 2 * 12 - 1
    assert float((ours.x - ref).abs().max()) <= 1e-10 * float(ref.abs().max())


@pytest.mark.parametrize(
    "make,sampler,kw",
    [
        (lambda: FlowMatchEulerDiscreteScheduler(shift=3.0), ode_euler, None),
        (lambda: FlowMatchHeunDiscreteScheduler(shift=3.0), heun, None),
        (
            lambda: FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True),
            ode_euler,
            {"mu": 0.8},
        ),
    ],
    ids=["euler-shift3", "heun-shift3", "euler-dynamic"],
)
def test_interop_drives_the_unmodified_schedulers_to_float32_round_off(make, sampler, kw):
    """``interop.run_scheduler`` with a scorelab model (float32 state inside diffusers)."""
    sch = make()
    x0 = _x(seed=2)
    run = run_scheduler(sch, V, x0, 10, timestep_kwargs=kw)
    assert isinstance(scheduler_process(sch), RectifiedFlow)
    levels = [*sorted(set(run.sigmas), reverse=True), 0.0]
    ours = sampler(V, RF, torch.tensor(levels, dtype=F64), x0)
    assert ours.nfe == run.nfe
    scale = float(ours.x.abs().max()) + 1.0
    assert float((run.x - ours.x).abs().max()) <= F32_RTOL * scale


def test_diffusers_sigmas_shift_the_lower_end_twice():
    """SD3's formula σ' = sσ/(1 + (s − 1)σ) on diffusers' linspace: the σ's are
    shift(linspace(1, shift(1/1000), N)) — the table's σ_min is shifted already — so the last
    non-zero σ is the 1/1000 shifted by s² (shifts compose by multiplying s), not by s."""
    n = 28
    for s in (1.0, 3.0, 6.0):
        sch = _euler(s)
        sch.set_timesteps(n)
        got = sch.sigmas[:-1].to(F64)
        low = float(shift(torch.tensor(1e-3, dtype=F64), s))
        diffusers_rule = shift(torch.linspace(1.0, low, n, dtype=F64), s)
        paper_on_uniform = shift(torch.linspace(1.0, 1e-3, n, dtype=F64), s)
        assert float((got - diffusers_rule).abs().max()) <= 1e-7
        assert float(got[-1]) == pytest.approx(float(shift(torch.tensor(1e-3), s * s)), rel=1e-6)
        if s > 1:
            assert float((got - paper_on_uniform).abs().max()) > 1e-3
    # dynamic shifting (Flux) shifts once: exponential(linspace(1, 1/1000, N)) with e^μ
    sch = _euler(use_dynamic_shifting=True)
    sch.set_timesteps(n, mu=0.8)
    want = exponential(torch.linspace(1.0, 1e-3, n, dtype=F64), mu=0.8)
    assert float((sch.sigmas[:-1].to(F64) - want).abs().max()) <= 1e-7


@pytest.mark.parametrize("s", [1.0, 3.0])
def test_the_shifted_grid_gives_diffusers_nodes(s):
    """``TimeGrid('shifted')`` (shift 3, the default) and ``time_shift.shifted_times``: the
    same nodes as diffusers given its last σ; N levels and σ = 0 are N steps."""
    sch = _euler(s)
    sch.set_timesteps(20)
    want = sch.sigmas.to(F64)
    from scorelab.time_shift import shifted_times

    got = shifted_times(19, shift=s, t_max=1.0, t_min=float(want[-2]))
    assert float((got - want).abs().max()) <= 1e-7
    if s == 3.0:
        grid = TimeGrid("shifted", steps=19, t_min=float(want[-2]), final="denoise")
        assert float((grid.times(RF) - want[:-1]).abs().max()) <= 1e-7


def test_a_flow_convention_model_is_what_the_scheduler_calls():
    """A model given in diffusers' convention (ε − x₀) through ``from_velocity(...,
    convention="flow")`` samples like the velocity it is, on rectified flow."""
    model = from_velocity(lambda x, t: V.velocity(x, t), RF, convention="flow")
    x0 = _x(seed=3)
    times = torch.tensor([1.0, 0.6, 0.3, 0.1, 0.0], dtype=F64)
    assert torch.equal(ode_euler(model, RF, times, x0).x, ode_euler(V, RF, times, x0).x)


def test_a_model_under_another_process_is_read_through_its_denoiser():
    """u = ε − x₀ at the scheduler's σ = t from a VP model's denoiser at σ/α = t/(1 − t):
    the rectified-flow velocity; at t = 1 (σ/α = ∞) it is refused with the reason."""
    from scorelab.errors import InvalidParameter
    from scorelab.flow_interop import flow_model_output
    from scorelab.interfaces import as_model
    from scorelab.processes import VP
    from scorelab.schedules import LinearBeta

    vp = VP(LinearBeta())
    model = as_model(TARGET.score_model(vp), vp)
    x = _x(seed=4)
    for t in (0.2, 0.6):
        assert torch.allclose(flow_model_output(model, x, t), V.velocity(x, t), rtol=1e-10)
    with pytest.raises(InvalidParameter, match="σ = 1"):
        flow_model_output(model, x, 1.0)


def test_audit_runs_a_flow_scheduler_beside_scorelabs_ode_samplers():
    """`scorelab audit` on FlowMatchEuler: its exact error (affine map read off by probes)
    equals ode_euler's on the same times to float32 round-off; σ-space samplers are omitted
    with the reason."""
    from scorelab.audit import audit

    target = build_target({"kind": "gaussian", "dim": 3, "mean": 1.0, "cov": [0.5, 0.1, 2.0]})
    res = audit(
        "diffusers:FlowMatchEulerDiscreteScheduler",
        target,
        [6],
        scheduler_config={"shift": 3.0},
        samplers=["ode_euler", "heun", "ddim"],
    )
    (row,) = res.rows
    (ours,) = res.scorelab["ode_euler"]
    assert row.nfe == ours.nfe == 6
    assert ours.kl == pytest.approx(row.kl, rel=1e-4) and ours.w2 == pytest.approx(row.w2, rel=1e-4)
    assert "ddim" not in res.scorelab and any("ddim omitted" in n for n in res.notes)
