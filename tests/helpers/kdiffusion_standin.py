"""A STAND-IN for ``k_diffusion.sampling``, for tests only: k-diffusion itself does not import
beside this project's torch (its torchvision dependency). Three samplers written here from
their published algorithms, with k-diffusion's documented signature
``sample_X(model, x, sigmas, extra_args=None, callback=None, disable=None, ...)``, so that
the adapter is exercised exactly as it calls the real module:

* ``sample_euler``: Euler on the probability-flow ODE dx/dσ = (x − D(x, σ))/σ (order 1);
* ``sample_dpmpp_2m``: DPM-Solver++(2M) in λ = −log σ (order 2);
* ``sample_euler_ancestral``: Euler to σ_down, then fresh noise of variance σ_up², drawn by
  ``noise_sampler(σ, σ_next)`` (k-diffusion's hook) when given, else ``torch.randn_like``.

``get_sigmas_karras`` is EDM's ρ-schedule with a final 0, as k-diffusion's.
"""

from __future__ import annotations

import math

import torch


def get_sigmas_karras(n, sigma_min, sigma_max, rho=7.0, device="cpu"):
    ramp = torch.linspace(0, 1, n, dtype=torch.float64)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    sigmas = (hi + ramp * (lo - hi)) ** rho
    return torch.cat([sigmas, sigmas.new_zeros(1)]).to(device)


def _sigma_batch(x, sigma):
    return sigma * x.new_ones([x.shape[0]])


def sample_euler(model, x, sigmas, extra_args=None, callback=None, disable=None):
    extra_args = {} if extra_args is None else extra_args
    for i in range(len(sigmas) - 1):
        denoised = model(x, _sigma_batch(x, sigmas[i]), **extra_args)
        d = (x - denoised) / sigmas[i]
        if callback is not None:
            callback({"x": x, "i": i, "sigma": sigmas[i], "denoised": denoised})
        x = x + d * (sigmas[i + 1] - sigmas[i])
    return x


def sample_dpmpp_2m(model, x, sigmas, extra_args=None, callback=None, disable=None):
    extra_args = {} if extra_args is None else extra_args
    old = None
    for i in range(len(sigmas) - 1):
        denoised = model(x, _sigma_batch(x, sigmas[i]), **extra_args)
        if callback is not None:
            callback({"x": x, "i": i, "sigma": sigmas[i], "denoised": denoised})
        s, s_next = float(sigmas[i]), float(sigmas[i + 1])
        if s_next == 0:
            x = denoised
        else:
            h = math.log(s) - math.log(s_next)
            if old is None:
                d = denoised
            else:
                h_last = math.log(float(sigmas[i - 1])) - math.log(s)
                r = h_last / h
                d = (1 + 1 / (2 * r)) * denoised - (1 / (2 * r)) * old
            x = (s_next / s) * x - math.expm1(-h) * d
        old = denoised
    return x


def sample_euler_ancestral(
    model, x, sigmas, extra_args=None, callback=None, disable=None, eta=1.0, noise_sampler=None
):
    extra_args = {} if extra_args is None else extra_args
    if noise_sampler is None:

        def noise_sampler(sigma, sigma_next):
            return torch.randn_like(x)

    for i in range(len(sigmas) - 1):
        denoised = model(x, _sigma_batch(x, sigmas[i]), **extra_args)
        if callback is not None:
            callback({"x": x, "i": i, "sigma": sigmas[i], "denoised": denoised})
        s, s_next = float(sigmas[i]), float(sigmas[i + 1])
        up = min(s_next, eta * math.sqrt(max(s_next**2 * (s**2 - s_next**2) / s**2, 0.0)))
        down = math.sqrt(s_next**2 - up**2)
        x = x + (x - denoised) / s * (down - s)
        if s_next > 0:
            x = x + noise_sampler(sigmas[i], sigmas[i + 1]) * up
    return x
