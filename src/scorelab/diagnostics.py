"""Paper D's diagnostics of a score model in one call (``scorelab diagnose``, run reports).

* ``fpe_relative_residual``: the dimensionless relative residual ρ(t) = E‖ε‖² / E(‖∂_t s‖² +
  ‖∇_x φ‖²) of the score FPE (0 for an exact score, 1 when the equation's two sides are
  uncorrelated, at most 2; docs/theory.md §7.3), averaged over a grid of times spread evenly in
  log σ, with its interval from the per-time delta-method ones — the number to read;
* ``fpe_profile``: per time, E_{x~p_t}‖ε(x, t)‖²/D of the score-FPE residual (``value``, with
  a 95% interval) and ρ(t) (``relative``, with ``relative_ci``); ``fpe_residual``: the mean of
  E‖ε‖²/D over that grid (it carries the units of ∂_t s and is dominated by the smallest σ),
  its interval from the per-time ones (independent draws at each t).
* ``conservativity``: NC = E‖J − Jᵀ‖²_F / E‖J‖²_F of x ↦ s(x, t), averaged over the same
  times (exact Jacobians for D ≤ ``EXACT_MAX_DIM``, probe pairs above).
* ``nll``: the mean PF-ODE negative log-likelihood (nats) of target samples — of p_{t_min},
  the law the sampler's early-stopped output approximates — by dopri5 with a step size per
  example (``error_norm="per_example"``: each example held to the tolerance, ≈ 0.6× the score
  evaluations of shared steps on the quickstart; exact trace for small D, Hutchinson above),
  with the NFE (batched score calls); ``nll_exact``: where the target's noised marginals are
  known in closed form, the exact −E log p_{t_min}(x) at the same points, else −E log p₀(x)
  where the target has a density, else None.

Every draw comes from one generator seeded by ``seed``. The work runs under the thread policy
of ``scorelab.threads`` (the caller's setting restored afterwards) and in chunks of
``CHUNK_ELEMENTS`` / D examples, which bound the memory of the autograd graphs and change no
value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from . import registry, threads
from .divergence import conservativity
from .fokker_planck import residual_profile
from .likelihood import pf_ode_nll
from .processes import ForwardProcess
from .progress import tracker
from .targets import Target

EXACT_MAX_DIM = 16  # exact divergences/Jacobians up to this event size, probes above
# examples × event size per autograd graph: the residual's double backward through the
# digits U-Net (8×8) on its 512 points at once peaked at 4.75 GB resident, in chunks of 16
# at 0.58 GB, and ran 20 % faster (2-D events: 512 at once, as before). No value changes.
CHUNK_ELEMENTS = 1 << 10
Z95 = 1.959963984540054


def log_sigma_times(process: ForwardProcess, k: int = 12) -> list[float]:
    """k times spread evenly in log σ between the process's ends (σ capped at 10³)."""
    lo, hi = float(process.sigma(process.t_min)), float(process.sigma(process.T))
    hi = min(hi, 1e3)
    sig = torch.logspace(math.log10(max(lo, 1e-4)), math.log10(hi), k, dtype=torch.float64)
    return [float(process.t_of_sigma(s)) for s in sig]


def _network_kind(score) -> str | None:
    """The registered name of a score network's architecture ("mlp", "unet", …), else None."""
    net = getattr(score, "network", None)
    for name, e in registry.entries("network").items():
        if isinstance(e.obj, type) and isinstance(net, e.obj):
            return name
    return None


def _interval(mean: float, half: float) -> list[float]:
    return [mean - half, mean + half]


def diagnose(
    score,
    target: Target,
    process: ForwardProcess,
    *,
    times: Sequence[float] | None = None,
    n_residual: int = 512,
    n_conservativity: int = 256,
    n_nll: int = 512,
    rtol: float = 1e-5,
    atol: float = 1e-5,
    n_probes: int = 4,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
    progress: bool | str = False,
) -> dict:
    """The JSON-able diagnostics of ``score(x, t)`` against ``target`` (see the module
    docstring for each field); ``progress`` shows the parts done (``scorelab.progress``): the
    residual and the conservativity time by time, then the likelihood."""
    g = torch.Generator().manual_seed(seed)
    small = target.dim <= EXACT_MAX_DIM
    times = list(times) if times is not None else log_sigma_times(process, 8)
    bar = tracker(progress, 2 * len(times) + 1, "diagnosing", "parts")
    # the thread policy of training and sampling (scorelab.threads; SCORELAB_THREADS and
    # --threads override it): torch's default of every core stalls small networks on a busy
    # machine (docs/performance.md has the measurements)
    try:
        with threads.scoped(_network_kind(score), target.event_shape):
            return _diagnose(
                score, target, process, times, n_residual, n_conservativity, n_nll, rtol,
                atol, n_probes, g, dtype, small, bar,
            )  # fmt: skip
    finally:
        bar.close()


def _diagnose(
    score, target, process, times, n_residual, n_conservativity, n_nll, rtol, atol, n_probes,
    g, dtype, small, bar,
) -> dict:  # fmt: skip
    bs = max(8, CHUNK_ELEMENTS // target.dim)
    profile = []
    for t in times:  # one time at a time: the same draws as one call over all times
        bar.update(len(profile), info=f"FPE residual at t = {t:.3g}")
        profile += residual_profile(
            score, process, target, [t], n=n_residual, generator=g, dtype=dtype,
            div="exact" if small else "hutchinson", n_probes=n_probes, batch_size=bs,
        )  # fmt: skip
    k = len(profile)
    residual = sum(p.mean for p in profile) / k
    half = math.sqrt(sum(p.half_width**2 for p in profile)) / k
    relative = sum(p.relative for p in profile) / k
    rel_half = math.sqrt(sum(p.relative_half_width**2 for p in profile)) / k

    ratios = []
    for t in times:
        bar.update(len(times) + len(ratios), info=f"conservativity at t = {t:.3g}")
        x0 = target.sample(n_conservativity, g, dtype=dtype)
        x = process.perturb(x0, t, torch.randn(x0.shape, generator=g, dtype=dtype))
        nc = conservativity(
            lambda y, t=t: score(y, torch.full((y.shape[0],), t, dtype=dtype)), x,
            method="exact" if small else "probes", n_probes=n_probes, generator=g,
            batch_size=bs,
        )  # fmt: skip
        ratios.append(nc.ratio)

    bar.update(2 * len(times), info="PF-ODE likelihood")
    x0 = target.sample(n_nll, g, dtype=dtype)
    res = pf_ode_nll(
        score, process, x0, rtol=rtol, atol=atol, trace="exact" if small else "hutchinson",
        n_probes=1, generator=g, batch_size=bs, error_norm="per_example",
    )  # fmt: skip
    nll = res.nll.double()
    div = "exact" if small else f"hutchinson ({n_probes} probes)"
    out = {
        "fpe_relative_residual": {
            "value": relative,
            "ci": _interval(relative, rel_half),
            "div": div,
        },
        "fpe_residual": {"value": residual, "ci": _interval(residual, half), "div": div},
        "fpe_profile": [
            {
                "t": p.t,
                "sigma": float(process.sigma(p.t)),
                "value": p.mean,
                "ci": [p.lo, p.hi],
                "relative": p.relative,
                "relative_ci": _interval(p.relative, p.relative_half_width),
            }
            for p in profile
        ],
        "conservativity": {
            "value": sum(ratios) / len(ratios),
            "per_time": [{"t": t, "value": r} for t, r in zip(times, ratios, strict=True)],
            "method": "exact" if small else f"probes ({n_probes} pairs)",
        },
        "nll": {
            "value": float(nll.mean()),
            "ci": _interval(float(nll.mean()), Z95 * float(nll.std()) / math.sqrt(n_nll)),
            "nfe": res.nfe,
            "t_min": res.t_min,
            "n": n_nll,
        },
        "nll_exact": _exact_nll(target, process, x0, res.t_min),
    }
    bar.update(2 * len(times) + 1, info="")
    return out


def _exact_nll(target: Target, process: ForwardProcess, x0: torch.Tensor, t_min: float):
    if target.has_score:  # closed-form noised marginals: the same quantity as the PF-ODE's
        return {
            "value": float(-target.log_prob_t(x0, t_min, process).double().mean()),
            "of": "p_t_min",
        }
    if target.has_density:
        return {"value": float(-target.log_prob(x0).double().mean()), "of": "p_0"}
    return None
