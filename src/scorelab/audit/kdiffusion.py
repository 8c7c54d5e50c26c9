"""k-diffusion's samplers through the certificate (``scorelab audit kdiffusion:NAME``).

A k-diffusion sampler is one function ``sample_X(model, x, sigmas, extra_args=None,
callback=None, disable=None, …)`` that integrates from x ~ N(0, σ₀² I) along the σ's it is
given, calling a denoiser ``model(x, σ) → D`` on EDM's variable x = x₀ + σ z. The adapter
gives it the target's exact denoiser and k-diffusion's own Karras σ's
(``get_sigmas_karras(n, σ_min, σ_max, ρ)``, EDM's defaults 0.002, 80, 7), so what is
measured is the sampler. Where the sampler takes ``noise_sampler`` (k-diffusion's hook for
the noise it injects) the probes supply that noise, and the law of every run is read exactly,
as a diffusers scheduler's is (``law.probe_affine``); noise drawn otherwise is measured by
samples.

The checks keep the certificate's meaning: ``runs`` (finite), ``sigma_sequence`` (the σ's
decrease to 0, and the sampler calls its model at levels in (0, σ₀], not increasing),
``timestep_noise_level`` (on a point mass, D ≡ 0, the state's exact noise level at every call
equals the σ the model is told), ``order`` (against ``NOMINAL_ORDERS``: k-diffusion states no
order, so the table gives those of the published methods), ``generator`` (the same seed gives
the same samples, two seeds different ones), ``noise_read_exactly`` and ``limit_explained``
(a deterministic sampler's law at the largest N is the exact ODE transport of its start, up to
its discretisation error; docs/audit.md).
"""

from __future__ import annotations

import importlib
import inspect
import itertools
import math
from collections.abc import Sequence

import torch

from ..errors import InvalidParameter
from .certificate import Certificate
from .certify import LIMIT_SLACK, parse_steps
from .checks import LEVEL_TOL, Check, check_order, check_runs
from .ladder import DEFAULT_STEPS, Rung, extrapolate, fit_order, successive_differences
from .law import NotAffine, count_draws, gaussian_error, law_distance, monte_carlo, probe_affine

F64 = torch.float64
MODULE = "k_diffusion.sampling"
SIGNATURE = ["model", "x", "sigmas"]
# the order of accuracy of the published method (weak order, in law, for the ancestral ones)
NOMINAL_ORDERS = {
    "sample_euler": 1,
    "sample_euler_ancestral": 1,
    "sample_heun": 2,
    "sample_dpm_2": 2,
    "sample_dpmpp_2m": 2,
    "sample_lms": "order",  # its ``order`` keyword (4 by default)
}
EDM_SIGMAS = {"sigma_min": 0.002, "sigma_max": 80.0, "rho": 7.0}


class KSampler:
    """A k-diffusion sampler function with its keywords, σ's and exact model."""

    def __init__(self, spec: str, module=None, sampler_kwargs: dict | None = None, **sigmas):
        self.name = spec.split(":", 1)[1] if spec.startswith("kdiffusion:") else spec
        if module is None:
            try:
                module = importlib.import_module(MODULE)
            except Exception as exc:  # not installed, or its dependencies do not import
                raise InvalidParameter(
                    "scheduler",
                    f"needs k-diffusion importable here ({type(exc).__name__}: {exc})",
                    spec,
                ) from None
        self.module = module
        self.fn = getattr(module, self.name, None)
        names = sorted(n for n in dir(module) if n.startswith("sample_"))
        if not callable(self.fn):
            raise InvalidParameter(
                "scheduler", "is not a k-diffusion sampler", spec, ", ".join(names)
            )
        self.params = inspect.signature(self.fn).parameters
        self.kwargs = dict(sampler_kwargs or {})
        unknown = [k for k in self.kwargs if k not in self.params or k in SIGNATURE]
        if unknown:
            raise InvalidParameter(
                "--step-kwarg", f"is not a keyword of {self.name}", unknown, ", ".join(self.params)
            )
        self.sigma_args = {**EDM_SIGMAS, **sigmas}

    @property
    def documented(self) -> bool:
        return list(self.params)[:3] == SIGNATURE

    @property
    def takes_noise(self) -> bool:
        return "noise_sampler" in self.params

    def sigmas(self, n: int) -> torch.Tensor:
        a = self.sigma_args
        get = getattr(self.module, "get_sigmas_karras", None)
        if get is not None:
            return get(n, a["sigma_min"], a["sigma_max"], a["rho"]).to(F64)
        ramp = torch.linspace(0, 1, n, dtype=F64)
        lo, hi = a["sigma_min"] ** (1 / a["rho"]), a["sigma_max"] ** (1 / a["rho"])
        return torch.cat([(hi + ramp * (lo - hi)) ** a["rho"], torch.zeros(1, dtype=F64)])

    def nominal(self) -> int | None:
        rule = NOMINAL_ORDERS.get(self.name)
        if rule == "order":
            default = self.params["order"].default if "order" in self.params else 4
            return int(self.kwargs.get("order", default))
        return rule

    def run(self, x, denoiser, n: int, noise=None, record: list | None = None):
        """The sampler over n steps from x; ``noise(k, shape)`` feeds its noise_sampler."""
        calls = [0]

        def model(xx, sigma, **extra):
            s = float(sigma.flatten()[0]) if isinstance(sigma, torch.Tensor) else float(sigma)
            if record is not None:
                record.append((s, xx.detach().clone()))
            return denoiser(xx, s)

        kw = dict(self.kwargs)
        if noise is not None and self.takes_noise:

            def noise_sampler(sigma, sigma_next):
                z = noise(calls[0], tuple(x.shape))
                calls[0] += 1
                return z

            kw["noise_sampler"] = noise_sampler
        out = self.fn(model, x, self.sigmas(n), extra_args={}, callback=None, disable=True, **kw)
        if not torch.isfinite(out).all():
            raise FloatingPointError(f"{n} steps: the sampler returned a non-finite sample")
        return out


def _denoiser(target):
    from ..interop import exact_denoiser

    model = exact_denoiser(target)
    return lambda x, sigma: model.denoiser(x, sigma)


def _rung(ks: KSampler, target, n: int, seed: int, n_mc: int) -> Rung:
    """The law after n steps: read by probing where every noise draw is supplied, else
    measured by samples; a failure of the sampler is the rung's error."""
    shape, d = tuple(target.event_shape), target.dim
    den, s0 = _denoiser(target), float(ks.sigmas(n)[0])
    record = []

    def run(x, noise):
        record.clear()
        return ks.run(x.reshape(x.shape[0], *shape), den, n, noise, record).reshape(x.shape[0], -1)

    try:
        try:
            law = probe_affine(run, d, count_draws(run, d))
            mean, cov = law.push(torch.zeros(d, dtype=F64), s0**2 * torch.eye(d, dtype=F64))
            kl, w2 = gaussian_error(target, mean, cov)
            return Rung(n, len(record), kl, w2, law.draws, mean=mean, cov=cov)
        except NotAffine as exc:
            torch.manual_seed(seed)
            x = s0 * torch.randn(
                n_mc, *shape, generator=torch.Generator().manual_seed(seed), dtype=F64
            )
            mc = monte_carlo(target, ks.run(x, den, n, None, record), seed)
            rung = Rung(n, len(record), None, mc.pop("w2"), method="monte_carlo", extra=mc)
            rung.extra["note"] = f"{exc}; measured by samples"
            return rung
    except Exception as exc:  # the sampler's own failure is a finding, not a crash
        return Rung(n, error=f"{type(exc).__name__}: {exc}")


def _point_mass_levels(ks: KSampler, n: int) -> list[tuple[float, float]]:
    """(σ the model is told, the state's exact noise level) at every call, on a point mass at
    0 (D ≡ 0): the state is b z + Σ_k n_k ζ_k, read by probing in one dimension."""
    record = []

    def run(x, noise):
        record.clear()
        return ks.run(x, lambda xx, s: torch.zeros_like(xx), n, noise, record)

    draws = count_draws(run, 1)
    law = probe_affine(run, 1, draws)  # checks the run is linear
    s0 = float(ks.sigmas(n)[0])
    probes = torch.zeros(1 + draws, 1, dtype=F64)
    probes[0, 0] = s0
    probes[1:, 0] = 0.0
    if law.draws:

        def noise(k, shape):
            z = torch.zeros(1 + draws, 1, dtype=F64)
            z[1 + k, 0] = 1.0
            return z.reshape(shape)
    else:
        noise = None
    run(probes, noise)
    return [(s, float(x.reshape(1 + draws, -1)[:, 0].norm())) for s, x in record]


def check_sequence(ks: KSampler, counts: Sequence[int]) -> Check:
    """The σ's decrease strictly to 0, and the model is called at levels in (0, σ₀] that
    never increase."""
    bad = []
    for n in counts:
        s = ks.sigmas(n)
        if not bool((s[1:] < s[:-1]).all()) or float(s[-1]) != 0.0:
            bad.append(f"{n} steps: σ's {[round(float(v), 6) for v in s[-3:]]} at the end")
            continue
        try:
            levels = [sigma for sigma, _ in _point_mass_levels(ks, n)]
        except Exception as exc:
            return Check("sigma_sequence", None, f"not read on a point mass: {exc}")
        top = float(s[0]) * (1 + 1e-12)
        rising = [i for i, (a, b) in enumerate(itertools.pairwise(levels)) if b > a]
        outside = [v for v in levels if not 0 < v <= top]
        if rising or outside:
            bad.append(f"{n} steps: model calls at {levels[:6]}… (rising at {rising[:3]})")
    if bad:
        return Check("sigma_sequence", False, "; ".join(bad))
    return Check(
        "sigma_sequence", True, f"σ's decrease to 0, calls in (0, σ₀] (N = {list(counts)})"
    )


def check_levels(ks: KSampler, counts: Sequence[int]) -> Check:
    """On a point mass the state's noise level at every call is the σ the model is told."""
    worst = (0.0, None)
    for n in counts:
        try:
            pairs = _point_mass_levels(ks, n)
        except NotAffine as exc:
            return Check("timestep_noise_level", None, f"not read exactly on a point mass: {exc}")
        except Exception as exc:
            return Check("timestep_noise_level", False, f"{type(exc).__name__}: {exc}")
        for i, (told, level) in enumerate(pairs):
            gap = abs(math.log(level / told)) if level > 0 and told > 0 else math.inf
            if gap > worst[0]:
                worst = (
                    gap,
                    f"{n} steps, call {i}: told σ {told:.6g}, the input is at {level:.6g}",
                )
    if worst[0] > LEVEL_TOL:
        return Check("timestep_noise_level", False, f"{worst[1]} (|log ratio| {worst[0]:.3g})")
    return Check("timestep_noise_level", True, f"largest |log σ_input/σ_told| = {worst[0]:.3g}")


def check_generator(ks: KSampler, target, n: int) -> Check:
    """The same seed gives the same samples and two seeds different ones (k-diffusion draws
    from torch's global generator, or from the noise_sampler a caller seeds)."""
    den = _denoiser(target)
    x = torch.randn(4, *target.event_shape, generator=torch.Generator().manual_seed(7), dtype=F64)

    def sample(seed):
        torch.manual_seed(seed)
        return ks.run(float(ks.sigmas(n)[0]) * x, den, n)

    try:
        a, b, c = sample(1), sample(1), sample(2)
    except Exception as exc:
        return Check("generator", False, f"the sampler raised {type(exc).__name__}: {exc}")
    if torch.equal(a, c):
        return Check("generator", None, "the sampler draws no noise")
    if torch.equal(a, b):
        return Check("generator", True, "reproducible with a seed, different across two")
    return Check("generator", False, "one seed gives different samples")


def check_limit(ks: KSampler, rungs, target, diffs, scale: float) -> tuple[Check, dict]:
    """The largest N's law against the exact ODE transport of the start N(0, σ₀² I) from σ₀
    to 0: R = U diag(√(λ/(λ + σ₀²))) Uᵀ maps x − μ (docs/theory.md)."""
    done = [r for r in rungs if r.measured and r.mean is not None]
    if not done:
        return Check("limit_explained", None, "no exact law"), {}
    mu, cov = target.gaussian_moments()
    lam, U = torch.linalg.eigh(cov)
    s0 = float(ks.sigmas(done[-1].steps)[0])
    R = U @ torch.diag(torch.sqrt(lam.clamp(min=0) / (lam.clamp(min=0) + s0**2))) @ U.T
    exact = (mu - R @ mu, s0**2 * R @ R.T)
    limit = {"exact_limit_w2": gaussian_error(target, *exact)[1]}
    if any(r.draws for r in done):
        return Check(
            "limit_explained", None, "the limit of a stochastic run depends on its noise"
        ), limit
    gap = law_distance((done[-1].mean, done[-1].cov), exact)
    slack = LIMIT_SLACK * (diffs[-1][2] if diffs else 0.0) + 1e-4 * scale
    return Check(
        "limit_explained",
        gap <= slack,
        f"{done[-1].steps} steps: W2 to the exact limit (prior mismatch at σ₀ {s0:g}) is "
        f"{gap:.3e}, allowed {slack:.3e}",
    ), limit


def certify_kdiffusion(
    spec: str,
    target,
    *,
    steps: Sequence[int] | str = DEFAULT_STEPS,
    sampler_kwargs: dict | None = None,
    module=None,
    n: int = 2000,
    seed: int = 0,
    **sigmas,
) -> Certificate:
    """The certificate of the k-diffusion sampler ``spec`` ("kdiffusion:sample_X") with
    ``sampler_kwargs`` on ``target``, over the ladder ``steps``; ``module`` replaces
    ``k_diffusion.sampling`` (a stand-in with the same functions), ``sigmas`` the Karras
    σ's parameters (sigma_min, sigma_max, rho)."""
    counts = parse_steps(steps)
    if not getattr(target, "has_score", False):
        raise InvalidParameter("--target", "needs an exact score (a target with a known law)", spec)
    ks = KSampler(spec, module, sampler_kwargs, **sigmas)
    name = f"kdiffusion:{ks.name}"
    if not ks.documented:
        why = f"{ks.name}{tuple(ks.params)} is not sample_X(model, x, sigmas, …)"
        return Certificate(
            name, ks.kwargs, target.kind, None, [], None, {}, [Check("public_api", None, why)]
        )
    gaussian = target.gaussian_moments() is not None
    rungs = [_rung(ks, target, c, seed, n) for c in counts]
    nominal = ks.nominal()
    checks = [Check("public_api", True, "sample_X(model, x, sigmas, …)"), check_runs(rungs)]
    fit, limit = None, {}
    if gaussian:
        mu, cov = target.gaussian_moments()
        scale = math.sqrt(float(torch.trace(cov)) + float(mu @ mu))
        diffs = successive_differences(rungs)
        fit = fit_order(diffs, scale)
        limit_law = extrapolate(rungs, fit["value"] if fit else (nominal or 1))
        if limit_law is not None:
            kl, w2 = gaussian_error(target, *limit_law)
            limit = {"kl": kl if math.isfinite(kl) else None, "w2": w2}
        limit_check, exact = check_limit(ks, rungs, target, diffs, scale)
        limit.update(exact)
    mid = next((c for c in counts if c >= 10), counts[-1])
    checks += [
        check_sequence(ks, counts),
        check_levels(ks, counts),
        check_order(fit, nominal, gaussian),
        check_generator(ks, target, mid),
        _check_noise_read(ks, rungs),
    ]
    if gaussian:
        checks.append(limit_check)
    notes = [f"σ's: k-diffusion's Karras schedule {ks.sigma_args}"]
    return Certificate(name, ks.kwargs, target.kind, nominal, rungs, fit, limit, checks, notes)


def _check_noise_read(ks: KSampler, rungs) -> Check:
    read = [r for r in rungs if r.measured and r.method == "closed_form"]
    if not read:
        return Check(
            "noise_read_exactly", False, "the law is measured by samples, not read exactly"
        )
    draws = max(r.draws for r in read)
    if draws == 0:
        return Check("noise_read_exactly", True, "no noise drawn: the law is read exactly")
    return Check("noise_read_exactly", True, f"{draws} draws per run, all through noise_sampler")


__all__ = ["NOMINAL_ORDERS", "KSampler", "certify_kdiffusion"]
