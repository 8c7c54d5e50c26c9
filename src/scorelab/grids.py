"""Time grids: the decreasing times t_0 = t_max > t_1 > … > t_N = t_min a sampler steps through.

Grids are specified in t or in the noise level σ(t) = s/m and always returned as times (σ-spaced
grids are mapped back with the process's exact ``t_of_sigma``), so every grid works with every
process and every sampler. ``final="denoise"`` asks the sampler for a last step from t_min to
t = 0, σ = 0 (x ← E[X₀ | X_{t_min}], one more model evaluation).

Steps and levels — the one convention, stated here and cited by every sampler:

* ``TimeGrid(steps=N)`` is N steps through the N + 1 non-zero noise levels t_0 > … > t_N;
  ``final="denoise"`` adds a step from t_N to σ = 0: N + 1 steps in all. NFE per step is the
  sampler's (1 for Euler, DDIM, DPM-Solver++(2M); 2 for Heun, except a step that ends at σ = 0).
* ``TimeGrid(sigmas=[σ_0, …, σ_{n−1}, 0])`` is k-diffusion's and diffusers' convention: n
  non-zero levels then σ = 0, i.e. n steps, the last one to σ = 0 (a trailing 0 means
  ``final="denoise"``). Without the trailing 0 the run stops at σ_{n−1} (n − 1 steps).
* ``TimeGrid.karras(n, σ_min, σ_max, ρ)`` is k-diffusion's ``get_sigmas_karras(n, …)``: n levels
  and the final 0, n steps. So k-diffusion's and diffusers' ``n`` (``num_inference_steps``) is
  ``TimeGrid(steps=n − 1, final="denoise")`` here, not ``TimeGrid(steps=n)``.

(docs/theory.md §2.3; the conventions of both libraries side by side in docs/interop.md.)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import torch
from pydantic import Field

from .errors import InvalidParameter
from .processes import ForwardProcess
from .registry import entries, entry, names, register

FINAL_STEPS = ("none", "denoise")


# Grid spacings: u ∈ [0, 1] (N + 1 equispaced values) → the grid from ``hi`` down to ``lo``,
# in t (``space="t"``) or in σ (``space="sigma"``, mapped back by the process's t_of_sigma).
# ``log=True`` spacings need lo > 0. A spacing's keyword parameters (edm's ``rho``) are its
# own: ``TimeGrid(kind, ..., **params)`` and the config's ``sampler.grid`` section pass them.


@register("grid", "uniform", space="t")
def uniform(u: torch.Tensor, hi: float, lo: float) -> torch.Tensor:
    """Uniform in t."""
    return hi + u * (lo - hi)


@register("grid", "edm", space="sigma")
def edm(
    u: torch.Tensor, hi: float, lo: float, rho: Annotated[float, Field(gt=0)] = 7.0
) -> torch.Tensor:
    """EDM's ρ-polynomial in σ: (σ_max^{1/ρ} + u(σ_min^{1/ρ} − σ_max^{1/ρ}))^ρ."""
    a, b = hi ** (1 / rho), lo ** (1 / rho)
    return (a + u * (b - a)) ** rho


@register("grid", "geometric", space="sigma", log=True)
def geometric(u: torch.Tensor, hi: float, lo: float) -> torch.Tensor:
    """Geometric in σ (uniform in log σ)."""
    return torch.exp(math.log(hi) + u * (math.log(lo) - math.log(hi)))


@register("grid", "logsnr", space="sigma", log=True)
def logsnr(u: torch.Tensor, hi: float, lo: float) -> torch.Tensor:
    """Uniform in log SNR = −2 log σ: the same nodes as geometric."""
    return geometric(u, hi, lo)


@register("grid", "quadratic", space="t")
def quadratic(u: torch.Tensor, hi: float, lo: float) -> torch.Tensor:
    """Quadratic in t, dense near t_min."""
    return lo + (hi - lo) * (1 - u) ** 2


@dataclass(frozen=True, init=False)
class TimeGrid:
    """The decreasing times t_0 = t_max > t_1 > … > t_N = t_min a sampler steps through, in the
    process's time t; ``times(process)`` gives them (float64), spaced as ``kind`` says.

    Args:
        kind: A registered spacing: ``uniform`` (in t), ``edm`` (ρ-polynomial in σ),
            ``geometric`` (in σ), ``logsnr`` (uniform in log SNR = −2 log σ, hence the same nodes
            as geometric), ``quadratic`` (in t, dense near t_min), ``shifted`` (SD3's shift).
        steps: N, the number of steps through N + 1 times (k-diffusion's and diffusers' "10
            steps" are ten levels and ten steps, the last to σ = 0: see the module's docstring).
        t_min: The last time (default: the process's ``t_min``).
        t_max: The first time (default: the process's ``T``).
        final: ``"none"``, or ``"denoise"`` for one more step, to σ = 0 (Tweedie's denoiser
            unless the sampler takes its own).
        sigmas: The noise levels themselves (k-diffusion's σ list; a trailing 0 means
            ``final="denoise"``); kind, steps, t_min, t_max and the spacing's parameters are
            then unused.
        **params: The spacing's own parameters (``TimeGrid("edm", 50, rho=5.0)``), checked
            against its registered signature; ``params`` holds them with their defaults filled
            in, as sorted (name, value) pairs, and each reads as an attribute (``grid.rho``). A
            parameter of another registered spacing is ignored (code that switches between
            spacings may pass ``rho`` to all of them); a name no spacing takes is an error.

    Examples:
        >>> import scorelab
        >>> cosine = {"kind": "cosine", "clip_max": 20.0}
        >>> process = scorelab.build_process({"kind": "vp", "schedule": cosine})
        >>> grid = scorelab.TimeGrid("edm", steps=10)
        >>> times = grid.times(process)
        >>> len(times), float(times[0]) == process.T, float(times[-1]) == process.t_min
        (11, True, True)
    """

    kind: str = "uniform"
    steps: int = 100
    t_min: float | None = None  # None: the process's t_min
    t_max: float | None = None  # None: the process's T
    final: str = "none"
    sigmas: tuple[float, ...] | None = None
    params: tuple[tuple[str, Any], ...] = ()

    def __init__(
        self,
        kind: str = "uniform",
        steps: int = 100,
        t_min: float | None = None,
        t_max: float | None = None,
        final: str = "none",
        sigmas: tuple[float, ...] | None = None,
        **params: Any,
    ):
        for name, value in (
            ("kind", kind), ("steps", steps), ("t_min", t_min), ("t_max", t_max),
            ("final", final), ("sigmas", sigmas),
        ):  # fmt: skip
            object.__setattr__(self, name, value)
        if self.kind not in names("grid"):
            allowed = ", ".join(names("grid"))
            raise InvalidParameter("kind", "is not a time grid", self.kind, allowed)
        # dataclasses.replace passes the filled-in pairs back as ``params``
        given = {**dict(params.pop("params", None) or ()), **params}
        object.__setattr__(self, "params", spacing_params(self.kind, given))
        if self.sigmas is not None:
            self._set_sigmas()
        elif int(self.steps) < 1:
            raise InvalidParameter("steps", "must be ≥ 1", self.steps)
        if self.final not in FINAL_STEPS:
            raise InvalidParameter(
                "final", "is not a final step", self.final, ", ".join(FINAL_STEPS)
            )

    def __getattr__(self, name: str) -> Any:
        # the spacing's parameters read as attributes (grid.rho of an edm grid)
        if name != "params":
            for key, value in self.params:
                if key == name:
                    return value
        raise AttributeError(f"{type(self).__name__} of kind {self.kind!r} has no {name!r}")

    def _set_sigmas(self) -> None:
        s = torch.as_tensor(self.sigmas, dtype=torch.float64).reshape(-1)
        if s.numel() < 1 or not bool(torch.isfinite(s).all()):
            raise InvalidParameter("sigmas", "must be a non-empty list of finite numbers", None)
        levels, final = s, self.final
        if float(s[-1]) == 0.0:
            levels, final = s[:-1], "denoise"
        if levels.numel() < 1:
            raise InvalidParameter("sigmas", "need at least one non-zero level", list(self.sigmas))
        if bool((levels <= 0).any()) or bool((levels[1:] >= levels[:-1]).any()):
            raise InvalidParameter(
                "sigmas",
                "must be positive and strictly decreasing (with an optional trailing 0)",
                list(self.sigmas),
            )
        if final not in FINAL_STEPS:
            raise InvalidParameter("final", "is not a final step", final, ", ".join(FINAL_STEPS))
        object.__setattr__(self, "sigmas", tuple(float(v) for v in levels))
        object.__setattr__(self, "final", final)
        object.__setattr__(self, "steps", int(levels.numel()) - 1)

    @classmethod
    def karras(
        cls, n: int, sigma_min: float, sigma_max: float, rho: float = 7.0, final: str = "denoise"
    ) -> TimeGrid:
        """EDM's ρ-spaced noise levels as k-diffusion's ``get_sigmas_karras(n, σ_min, σ_max, ρ)``
        builds them (the same formula, in float64): n levels from σ_max down to σ_min, then
        σ = 0 (``final="none"`` drops the last step)."""
        if int(n) < 1:
            raise InvalidParameter("n", "must be ≥ 1", n)
        if not 0 < sigma_min < sigma_max:
            raise InvalidParameter("sigma_min", "must satisfy 0 < sigma_min < sigma_max", sigma_min)
        ramp = torch.linspace(0, 1, int(n), dtype=torch.float64)
        min_inv_rho, max_inv_rho = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
        sigmas = (max_inv_rho + ramp * (min_inv_rho - max_inv_rho)) ** rho
        return cls(sigmas=tuple(sigmas.tolist()), final=final)

    @property
    def n_steps(self) -> int:
        """Steps in all (the final step to σ = 0 included)."""
        return int(self.steps) + (1 if self.final == "denoise" else 0)

    def noise_levels(self, process: ForwardProcess) -> torch.Tensor:
        """The N + 1 non-zero noise levels σ_0 > … > σ_N (float64): the given ``sigmas``, or
        σ(t) at the grid's times."""
        if self.sigmas is not None:
            return torch.tensor(self.sigmas, dtype=torch.float64)
        return process.sigma(self.times(process))

    def times(self, process: ForwardProcess) -> torch.Tensor:
        """The N + 1 decreasing times (float64)."""
        if self.sigmas is not None:
            return self._times_of_sigmas(process)
        t_max = process.T if self.t_max is None else float(self.t_max)
        t_min = process.t_min if self.t_min is None else float(self.t_min)
        if not 0 <= t_min < t_max <= process.T * (1 + 1e-12):
            raise InvalidParameter(
                "t_min",
                "and t_max must satisfy 0 ≤ t_min < t_max ≤ T",
                (t_min, t_max),
                f"T = {process.T:g}",
            )
        coefs = (process.sigma(t_max), process.diffusion2(t_max), process.drift_coef(t_max))
        spacing = entry("grid", self.kind)
        # an interpolant whose α vanishes at T (rectified flow) starts a grid spaced in t (or a
        # σ-spacing that takes σ = ∞) there: σ, f and g² are infinite at T but the velocity the
        # ODE samplers integrate is finite
        flow_start = (
            getattr(process, "regular_velocity_at_T", False)
            and t_max >= process.T
            and (spacing.meta.get("space", "t") == "t" or spacing.meta.get("infinite_sigma"))
        )
        if not flow_start and not all(math.isfinite(float(c)) for c in coefs):
            raise InvalidParameter("t_max", _infinite_at(process, t_max, coefs), t_max)
        n = int(self.steps)
        u = torch.linspace(0.0, 1.0, n + 1, dtype=torch.float64)
        extra = dict(self.params)
        if spacing.meta.get("space", "t") == "t":
            t = spacing.obj(u, t_max, t_min, **extra)
        else:
            s_max, s_min = float(process.sigma(t_max)), float(process.sigma(t_min))
            if spacing.meta.get("log") and s_min <= 0:
                raise InvalidParameter(
                    "t_min", f"must be > 0 for a grid spaced in log σ ('{self.kind}')", t_min
                )
            t = process.t_of_sigma(spacing.obj(u, s_max, s_min, **extra).clamp(min=0.0))
        t[0], t[-1] = t_max, t_min  # exact end points despite round-off
        if bool((t[1:] >= t[:-1]).any()):
            raise InvalidParameter(
                "steps", "give repeated times: the grid is finer than float64 resolves here", n
            )
        return t

    def _times_of_sigmas(self, process: ForwardProcess) -> torch.Tensor:
        sig = torch.tensor(self.sigmas, dtype=torch.float64)
        top = float(process.sigma(process.T))
        if float(sig[0]) > top * (1 + 1e-6):  # float32 round-off of σ(T) is clamped
            raise InvalidParameter(
                "sigmas",
                f"start above the process's largest noise level σ(T) = {top:g}; use a process "
                "that reaches it (e.g. EDM(EDMSigma(sigma_max=...)), or the ddpm process of the "
                "model's own β table)",
                float(sig[0]),
            )
        t = process.t_of_sigma(sig.clamp(max=top))
        if bool((t[1:] >= t[:-1]).any()):
            raise InvalidParameter(
                "sigmas", "give repeated times: levels closer than float64 resolves", None
            )
        return t


def spacing_params(kind: str, params: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    """The parameters of spacing ``kind`` from ``params`` (validated by its registered
    signature, defaults filled in), as sorted (name, value) pairs; those of other spacings are
    left out, a name that no spacing takes is an error."""
    spacing = entry("grid", kind)
    accepted = spacing.parameters
    others = {p for e in entries("grid").values() for p in e.parameters}
    unknown = sorted(set(params) - set(accepted) - others)
    if unknown:
        raise InvalidParameter(
            unknown[0],
            f"is not a parameter of grid '{kind}'",
            params[unknown[0]],
            ", ".join(accepted) or "none",
        )
    own = spacing.validate({k: v for k, v in params.items() if k in accepted})
    return tuple(sorted((k, getattr(own, k)) for k in accepted))


def _infinite_at(process: ForwardProcess, t_max: float, coefs) -> str:
    """Why the process cannot start at t_max, naming the coefficient that is infinite and
    the fix that applies to this schedule (the schedule says where its rate is infinite)."""
    names = ("σ(t_max)", "g²(t_max)", "f(t_max)")
    bad = ", ".join(f"{nm} = {float(c):g}" for nm, c in zip(names, coefs, strict=True))
    schedule = getattr(process, "schedule", None)
    kind = getattr(schedule, "kind", type(schedule).__name__)
    msg = f"is where the process's coefficients are infinite ({bad}; schedule '{kind}')"
    if getattr(process, "regular_velocity_at_T", False):
        in_t = [
            name
            for name, e in entries("grid").items()
            if e.meta.get("space", "t") == "t" or e.meta.get("infinite_sigma")
        ]
        return msg + (
            "; on an interpolant a grid spaced in σ must start below t = 1: set a grid "
            f"t_max < 1, or use a grid that may start there ({', '.join(in_t)})"
        )
    singular = getattr(schedule, "infinite_from", lambda: None)()
    if singular is not None and t_max >= singular[0]:
        t_inf, fix = singular
        return msg + (
            f"; the '{kind}' schedule's β is infinite from t = {t_inf:g} on: {fix}, or set a "
            f"grid t_max < {t_inf:g}"
        )
    if not math.isfinite(float(coefs[0])) and math.isfinite(float(coefs[1])):
        return msg + (
            "; the signal m(t) = exp(−½∫β) underflows to 0 in float64 (∫β ≳ 1490): lower "
            "the schedule's β (e.g. beta_max), or set a grid t_max < T"
        )
    return msg + "; lower the schedule's rates or set a grid t_max < T"
