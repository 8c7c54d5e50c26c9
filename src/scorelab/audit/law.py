"""The exact law of a scheduler run on a Gaussian target, read by probing.

With the target's exact model, the model output of a Gaussian target is affine in the model
input, so every scheduler step is affine in the sample and in the noise it draws: the whole run
is x_out = M x_in + c + Σ_k N_k z_k. ``probe_affine`` reads (M, c, N_k) off the scheduler
itself on one batch — the zero input, the unit vectors, and each noise draw replaced by unit
vectors (diffusers' ``randn_tensor`` is intercepted) — and checks the map on a random input (a
run that clips or thresholds is not affine and raises ``NotAffine``). The output law of an
input law N(m, S) is then N(M m + c, M S Mᵀ + Σ_k N_k N_kᵀ), and KL and W2 against the target
follow in closed form (docs/theory.md §5.1, §8.4 and "Reading a scheduler's exact law").
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..errors import InvalidParameter

F64 = torch.float64


class NotAffine(Exception):
    """The run is not an affine map of its input and noise (clipping, thresholding)."""


@dataclass
class AffineLaw:
    """x_out = M x_in + c + Σ_k N_k z_k, flat ``[D]`` / ``[D, D]`` float64."""

    M: torch.Tensor
    c: torch.Tensor
    Q: torch.Tensor  # Σ_k N_k N_kᵀ
    draws: int

    def output(self, input_std: float) -> tuple[torch.Tensor, torch.Tensor]:
        """The output law (mean, covariance) of the input law N(0, input_std² I)."""
        cov = input_std**2 * self.M @ self.M.T + self.Q
        return self.c, 0.5 * (cov + cov.T)

    def push(self, mean: torch.Tensor, cov: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The output law (mean, covariance) of the input law N(mean, cov)."""
        out = self.M @ cov @ self.M.T + self.Q
        return self.M @ mean + self.c, 0.5 * (out + out.T)


@contextlib.contextmanager
def intercept_noise(scheduler, supply: Callable[[int, tuple], torch.Tensor]):
    """Replace diffusers' ``randn_tensor`` in the modules of the scheduler's class and of the
    classes it derives from by ``supply(k, shape)``; yields a one-element list counting the
    draws."""
    modules = {sys.modules.get(k.__module__) for k in type(scheduler).__mro__}
    originals = {m: m.randn_tensor for m in modules if hasattr(m, "randn_tensor")}
    calls = [0]

    def fake(shape, *args, dtype=None, device=None, **kwargs):
        z = supply(calls[0], tuple(shape))
        calls[0] += 1
        return z.to(dtype=dtype or z.dtype, device=device)

    for module in originals:
        module.randn_tensor = fake
    try:
        yield calls
    finally:
        for module, original in originals.items():
            module.randn_tensor = original


def probe_affine(run: Callable, d: int, draws: int, noise_plan=None, rtol: float = 1e-4):
    """(M, c, Q) of a run ``run(x [B, d], noise(k, shape)) -> [B, d]`` with ``draws`` noise
    draws, from one batch of 1 + d + draws·d + 1 probes; the last probe (a random input and
    random noise) checks that the map is affine."""
    g = torch.Generator().manual_seed(12345)
    B = 1 + d + draws * d + 1
    x = torch.zeros(B, d, dtype=F64)
    x[1 : 1 + d] = torch.eye(d, dtype=F64)
    x[-1] = torch.randn(d, generator=g, dtype=F64)
    check_noise = torch.randn(max(draws, 1), d, generator=g, dtype=F64)

    def noise(k: int, shape: tuple) -> torch.Tensor:
        if k >= draws:
            raise NotAffine(f"the run drew more noise than counted ({k + 1} > {draws})")
        z = torch.zeros(B, d, dtype=F64)
        lo = 1 + d + k * d
        z[lo : lo + d] = torch.eye(d, dtype=F64)
        z[-1] = check_noise[k]
        return z.reshape(shape)

    out = run(x, noise).reshape(B, d).to(F64)
    c = out[0]
    M = (out[1 : 1 + d] - c).T
    N = [(out[1 + d + k * d : 1 + d + (k + 1) * d] - c).T for k in range(draws)]
    Q = sum((n @ n.T for n in N), torch.zeros(d, d, dtype=F64))
    pred = (
        M @ x[-1]
        + c
        + sum((N[k] @ check_noise[k] for k in range(draws)), torch.zeros(d, dtype=F64))
    )
    scale = float(out.abs().max()) + 1.0
    err = float((pred - out[-1]).abs().max())
    if not math.isfinite(err) or err > rtol * scale:
        raise NotAffine(f"the run is not affine in its input (mismatch {err:.2e})")
    return AffineLaw(M, c, Q, draws)


def count_draws(run: Callable, d: int) -> int:
    """How many times the run draws noise (one probe, the noise replaced by zeros)."""
    count = [0]

    def noise(k, shape):
        count[0] += 1
        return torch.zeros(shape, dtype=F64)

    run(torch.zeros(1, d, dtype=F64), noise)
    return count[0]


def gaussian_error(reference, mean: torch.Tensor, cov: torch.Tensor) -> tuple[float, float]:
    """KL(π_ref ‖ N(mean, cov)) and W2 between them; ``reference`` is a Gaussian target or its
    (mean, covariance)."""
    from ..metrics.gaussian import kl_gaussians, w2_gaussians

    mu, sigma = reference if isinstance(reference, tuple) else reference.gaussian_moments()
    try:
        kl = kl_gaussians(mu, sigma, mean, cov)
    except InvalidParameter:  # a singular target or output law: KL is infinite
        kl = float("inf")
    return kl, w2_gaussians(mu, sigma, mean, cov)


def law_distance(a: tuple, b: tuple) -> float:
    """W2 between two Gaussian laws given as (mean, covariance)."""
    from ..metrics.gaussian import w2_gaussians

    return w2_gaussians(a[0], a[1], b[0], b[1])


def monte_carlo(target, samples: torch.Tensor, seed: int) -> dict:
    """W2 and MMD of samples against the target, with floors and bootstrap CIs."""
    from ..metrics import evaluate

    ev = evaluate(
        samples, target, ["w2", "mmd"], n_boot=100, generator=torch.Generator().manual_seed(seed)
    )
    out = {}
    for name in ("w2", "mmd"):
        r = ev[name]
        out[name] = r.value
        out[f"{name}_floor"] = r.floor
        out[f"{name}_ci"] = list(r.ci) if r.ci is not None else None
    return out


__all__ = [
    "AffineLaw",
    "NotAffine",
    "count_draws",
    "gaussian_error",
    "intercept_noise",
    "law_distance",
    "monte_carlo",
    "probe_affine",
]
