"""``add_noise`` in the middle of a run (inpainting's re-noising): a pipeline that starts at
``set_begin_index(k)`` and, after each step, noises the known region to the next timestep
calls ``add_noise`` while the scheduler's step index has moved past k. The noise it adds must
then be the exact forward marginal at the timestep it is given — the index the scheduler reads
is its current step, not the one it began at. The ``add_noise`` check probes before any step,
where the two agree; this one probes after steps.
"""

from __future__ import annotations

import torch

from .checks import LEVEL_TOL, Check, _coefficient_error, _expected_coefficients, _failure, _noised
from .driver import Driver
from .levels import LevelRun

STEPS_TAKEN = 2  # steps between the begin index and the re-noising


def check_add_noise_mid_run(driver: Driver, run: LevelRun | None) -> Check:
    """``set_begin_index(k)``, ``STEPS_TAKEN`` steps (any model output advances the index),
    then ``add_noise`` at the next timestep against the exact marginal there."""
    cid = "add_noise_mid_run"
    if not hasattr(driver.cls, "set_begin_index") or not hasattr(driver.cls, "add_noise"):
        return Check(cid, None, "the class has no set_begin_index or no add_noise")
    if run is None or len(run.calls) < 2 * STEPS_TAKEN + 2:
        return Check(cid, None, "no run long enough could be read on a point mass")
    k = len(run.calls) // 2
    j = k + STEPS_TAKEN
    try:
        sch = driver.fresh(run.steps)
        sch.set_begin_index(k)
        x = torch.zeros(2, 1)
        for t in sch.timesteps[k:j]:
            out = sch.step(torch.zeros_like(x), t, x)
            x = out.prev_sample if hasattr(out, "prev_sample") else out[0]
        c = run.calls[j]
        err = _coefficient_error(_noised(sch, c.timestep), _expected_coefficients(driver, c))
    except Exception as exc:
        return _failure(cid, exc)
    detail = (
        f"set_begin_index({k}), {STEPS_TAKEN} steps, add_noise at timestep {c.timestep:g}: "
        f"relative error {err:.2e} (exact marginal: noise level {c.expected:.5g})"
    )
    return Check(cid, err <= LEVEL_TOL, detail)


__all__ = ["check_add_noise_mid_run"]
