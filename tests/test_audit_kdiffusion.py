"""k-diffusion's samplers through the certificate. k-diffusion does not import beside this
project's torch, so the adapter is exercised on a STAND-IN module
(``tests/helpers/kdiffusion_standin.py``: Euler, DPM-Solver++(2M) and Euler ancestral with
k-diffusion's documented signature); the test of the real module skips where it is absent.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from scorelab.audit.kdiffusion import certify_kdiffusion
from scorelab.config import build_target
from scorelab.errors import InvalidParameter
from tests.helpers import kdiffusion_standin as standin

TARGET = {"kind": "gaussian", "dim": 1, "mean": 0.5, "cov": 0.09}
LADDER = (10, 20, 40, 80, 160)


@pytest.fixture(scope="module")
def target():
    return build_target(TARGET)


def euler_law(n: int, mean: float, var: float) -> tuple[float, float]:
    """(mean, variance) after Euler on dx/dσ = (x − D)/σ along k-diffusion's Karras σ's, D the
    exact denoiser of N(mean, var): D(x, σ) = mean + var/(var + σ²)(x − mean); x ~ N(0, σ₀²)."""
    sig = standin.get_sigmas_karras(n, 0.002, 80.0, 7.0).tolist()
    a, b = 1.0, 0.0  # x = a x_T + b
    for s, s_next in itertools.pairwise(sig):
        k = var / (var + s * s)  # D = k x + (1 − k) mean
        slope_a, slope_b = (1 - k) / s, -(1 - k) * mean / s
        step = s_next - s
        a, b = a + slope_a * a * step, b + (slope_a * b + slope_b) * step
    return b, a * a * sig[0] ** 2


def test_euler_s_exact_error_is_the_closed_form(target):
    cert = certify_kdiffusion("kdiffusion:sample_euler", target, steps=LADDER, module=standin)
    for rung in cert.ladder:
        m, v = euler_law(rung.steps, 0.5, 0.09)
        want = 0.5 * (0.09 / v + (m - 0.5) ** 2 / v - 1 + math.log(v / 0.09))
        assert rung.kl == pytest.approx(want, rel=1e-6), rung.steps


@pytest.mark.parametrize(("name", "order"), [("sample_euler", 1), ("sample_dpmpp_2m", 2)])
def test_the_fitted_order_is_the_method_s(target, name, order):
    cert = certify_kdiffusion(f"kdiffusion:{name}", target, steps=LADDER, module=standin)
    assert cert.fitted_order["value"] == pytest.approx(order, abs=0.2)
    assert cert.passed, [c for c in cert.checks if c.passed is False]


def test_an_ancestral_sampler_s_noise_is_read_through_its_noise_sampler(target):
    # weak order 1 shows from N ≈ 40 on (the fit's last three differences)
    steps = (*LADDER, 320, 640)
    cert = certify_kdiffusion(
        "kdiffusion:sample_euler_ancestral", target, steps=steps, module=standin
    )
    assert cert.check("noise_read_exactly").passed
    assert cert.check("generator").passed
    assert all(r.draws == r.steps - 1 for r in cert.ladder)  # one draw per step but the last
    assert cert.fitted_order["value"] == pytest.approx(1.0, abs=0.2)
    assert cert.passed


class WrongLevel:
    """A broken stand-in: Euler that tells its model the next σ instead of the current one."""

    get_sigmas_karras = staticmethod(standin.get_sigmas_karras)

    @staticmethod
    def sample_euler(model, x, sigmas, extra_args=None, callback=None, disable=None):
        shifted = torch.cat([sigmas[1:-1], sigmas[-2:-1]])  # σ_{i+1}, the last σ repeated
        told = []

        def lying(xx, s, **kw):
            told.append(s)
            return model(xx, shifted[len(told) - 1] * torch.ones_like(s))

        return standin.sample_euler(lying, x, sigmas, extra_args, callback, disable)


def test_a_model_told_the_wrong_noise_level_fails_the_level_check(target):
    cert = certify_kdiffusion("kdiffusion:sample_euler", target, steps=LADDER, module=WrongLevel)
    assert cert.check("timestep_noise_level").passed is False
    assert not cert.passed


def test_bad_input_names_what_is_wrong(target):
    with pytest.raises(InvalidParameter, match="sample_dpmpp_2m"):
        certify_kdiffusion("kdiffusion:sample_nothing", target, module=standin)
    with pytest.raises(InvalidParameter, match="churn"):
        certify_kdiffusion(
            "kdiffusion:sample_euler", target, module=standin, sampler_kwargs={"churn": 1}
        )


def test_the_real_k_diffusion_where_it_imports(target):
    try:
        import k_diffusion.sampling as real
    except Exception as exc:  # absent, or its torchvision does not match this torch
        pytest.skip(f"k-diffusion does not import here ({type(exc).__name__}: {exc})")
    cert = certify_kdiffusion("kdiffusion:sample_dpmpp_2m", target, steps=LADDER, module=real)
    assert cert.fitted_order["value"] == pytest.approx(2.0, abs=0.2)
