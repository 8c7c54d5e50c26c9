"""``add_noise`` in the middle of a run (inpainting's re-noising), on a deliberately broken
subclass: diffusers 0.27.0–0.27.1's Euler, which noised to the begin index's level after
steps had been taken."""

from __future__ import annotations

import pytest

diffusers = pytest.importorskip("diffusers")

from scorelab.audit.driver import Driver  # noqa: E402
from scorelab.audit.levels import level_run  # noqa: E402
from scorelab.audit.renoise import check_add_noise_mid_run  # noqa: E402


class BeginIndexEuler(diffusers.EulerDiscreteScheduler):
    """add_noise at the begin index's σ whatever the timestep, once a begin index is set."""

    def add_noise(self, original_samples, noise, timesteps):
        if self.begin_index is None:
            return super().add_noise(original_samples, noise, timesteps)
        sigma = self.sigmas[self.begin_index].to(original_samples.dtype)
        return original_samples + noise * sigma


def test_noising_to_the_begin_index_after_steps_fails_and_the_parent_passes():
    broken = check_add_noise_mid_run(
        Driver(BeginIndexEuler), level_run(Driver(BeginIndexEuler), 20)
    )
    parent = Driver(diffusers.EulerDiscreteScheduler)
    good = check_add_noise_mid_run(parent, level_run(parent, 20))
    assert broken.passed is False and good.passed is True
    # two steps of 20 from the middle: the begin index's σ is far from the one asked for
    assert float(broken.detail.split("relative error ")[1].split()[0]) > 0.1
    assert float(good.detail.split("relative error ")[1].split()[0]) < 1e-5


def test_a_class_without_begin_index_is_skipped_with_the_reason():
    if hasattr(diffusers.DDIMScheduler, "set_begin_index"):
        pytest.skip("this diffusers' DDIM has set_begin_index")
    d = Driver(diffusers.DDIMScheduler)
    check = check_add_noise_mid_run(d, level_run(d, 20))
    assert check.passed is None and "set_begin_index" in check.detail
