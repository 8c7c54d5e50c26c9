"""The discrete-time DDPM chain as a process: a β table (diffusers' names) and exact marginals.

DDPM (Ho et al. 2020) noises data by a chain of N steps with variances β_0, …, β_{N−1}:
q(x_k | x_0) = N(√ᾱ_k x_0, (1 − ᾱ_k) I), ᾱ_k = Π_{i≤k} (1 − β_i), k = 0, …, N − 1 being
diffusers' "timestep". scorelab embeds the chain in continuous time as the VP SDE (σ∞ = 1)
whose rate is constant between integer times (docs/theory.md §1.4):

    β̃(t) = −ln(1 − β_⌊t⌋) on [⌊t⌋, ⌊t⌋ + 1),   B(k) = −ln ᾱ_{k−1},   m(t)² = e^{−B(t)},

so that at the integer time t = k + 1 the marginal is exactly DDPM's q(x_k | x_0) (t = 0 is
the data). Between integers ln ᾱ is linear in t. Everything that works through (m, s²) — the
targets' exact scores, denoisers and log-densities, the Gaussian oracles, paper A's bounds (β̃
is non-decreasing for diffusers' tables) and every sampler — works on it unchanged. A sampler
in continuous time integrates this SDE (it does not run DDPM's ancestral chain); the σ-space
samplers on the σ's of integer times (``DDPM.sigmas_at_timesteps``) are DDIM and DPM-Solver on
the DDPM chain.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch

from ._tensor import Time, as_tensor
from .errors import InvalidParameter
from .processes import VP
from .registry import register
from .schedules import BetaSchedule

BETA_TABLES = ("linear", "scaled_linear", "squaredcos_cap_v2")


def beta_table(
    kind: str = "linear",
    num_train_timesteps: int = 1000,
    beta_start: float = 0.0001,
    beta_end: float = 0.02,
) -> torch.Tensor:
    """diffusers' named β tables, in float64 (diffusers builds them in float32):
    ``linear`` (linspace(β_start, β_end, N)), ``scaled_linear`` (linspace(√β_start, √β_end,
    N)²) and ``squaredcos_cap_v2`` (Nichol & Dhariwal's cosine ᾱ(u) = cos²((u + 0.008)/1.008 ·
    π/2), β_i = min(1 − ᾱ((i + 1)/N)/ᾱ(i/N), 0.999))."""
    n = int(num_train_timesteps)
    if n < 2:
        raise InvalidParameter("num_train_timesteps", "must be ≥ 2", num_train_timesteps)
    if kind == "linear":
        return torch.linspace(beta_start, beta_end, n, dtype=torch.float64)
    if kind == "scaled_linear":
        return torch.linspace(beta_start**0.5, beta_end**0.5, n, dtype=torch.float64) ** 2
    if kind == "squaredcos_cap_v2":

        def abar(u: float) -> float:
            return math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2

        return torch.tensor(
            [min(1 - abar((i + 1) / n) / abar(i / n), 0.999) for i in range(n)],
            dtype=torch.float64,
        )
    raise InvalidParameter("beta_schedule", "is not a β table", kind, ", ".join(BETA_TABLES))


@register("schedule", "discrete", family="beta", fixed_horizon=True)
class DiscreteBeta(BetaSchedule):
    """DDPM's β table as a rate constant between integer times: β̃(t) = −ln(1 − β_⌊t⌋) on
    [0, N], so that B(k + 1) = −ln ᾱ_k (docs/theory.md §1.4). T = N, the number of training
    timesteps. ``betas`` or ``alphas_cumprod`` give the table itself (a model's own, e.g. a
    diffusers scheduler's); otherwise ``beta_schedule`` names one of diffusers' tables."""

    kind = "discrete"

    def __init__(
        self,
        beta_schedule: Literal["linear", "scaled_linear", "squaredcos_cap_v2"] = "linear",
        beta_start: float = 0.0001,
        beta_end: float = 0.02,
        num_train_timesteps: int = 1000,
        betas: list[float] | None = None,
        alphas_cumprod: list[float] | None = None,
    ):
        if betas is not None and alphas_cumprod is not None:
            raise InvalidParameter("betas", "and alphas_cumprod cannot both be given", None)
        if alphas_cumprod is not None:
            abar = torch.as_tensor(alphas_cumprod, dtype=torch.float64).reshape(-1)
            if abar.numel() < 2 or not bool(((abar > 0) & (abar < 1)).all()):
                raise InvalidParameter(
                    "alphas_cumprod", "must hold at least two values in (0, 1)", None
                )
            if bool((abar[1:] >= abar[:-1]).any()):
                raise InvalidParameter("alphas_cumprod", "must be decreasing", None)
            knots = -torch.log(abar)
            source = {"alphas_cumprod": abar.tolist()}
        else:
            if betas is not None:
                b = torch.as_tensor(betas, dtype=torch.float64).reshape(-1)
                source = {"betas": b.tolist()}
            else:
                b = beta_table(beta_schedule, num_train_timesteps, beta_start, beta_end)
                source = {
                    "beta_schedule": beta_schedule,
                    "beta_start": beta_start,
                    "beta_end": beta_end,
                    "num_train_timesteps": int(num_train_timesteps),
                }
            if b.numel() < 2 or not bool(((b > 0) & (b < 1)).all()):
                raise InvalidParameter("betas", "must hold at least two values in (0, 1)", None)
            knots = torch.cumsum(-torch.log1p(-b), 0)  # B(k + 1) = Σ_{i≤k} −ln(1 − β_i)
        super().__init__(float(knots.numel()))
        self._source = source
        self._B = torch.cat([torch.zeros(1, dtype=torch.float64), knots])  # B at t = 0 … N
        self._rate = self._B[1:] - self._B[:-1]  # β̃ on [k, k + 1)
        if bool((self._rate <= 0).any()):
            raise InvalidParameter("betas", "must give a strictly decreasing ᾱ", None)
        self._B2 = torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumsum(self._rate**2, 0)])

    @property
    def alphas_cumprod(self) -> torch.Tensor:
        """ᾱ_k = e^{−B(k + 1)}, k = 0 … N − 1 (float64)."""
        return torch.exp(-self._B[1:])

    def _split(self, t: torch.Tensor):
        t64 = t.to(torch.float64)
        k = torch.clamp(torch.floor(t64), 0, self.T - 1).to(torch.long)
        return t64, k, t64 - k.to(torch.float64)

    def beta(self, t: Time) -> torch.Tensor:
        t = as_tensor(t)
        _, k, _ = self._split(t)
        return self._rate[k].to(t.dtype)

    def integral(self, t: Time) -> torch.Tensor:
        t = as_tensor(t)
        _, k, frac = self._split(t)
        return (self._B[k] + frac * self._rate[k]).to(t.dtype)

    def integral_sq(self, t: Time) -> torch.Tensor:
        t = as_tensor(t)
        _, k, frac = self._split(t)
        return (self._B2[k] + frac * self._rate[k] ** 2).to(t.dtype)

    def inverse_integral(self, b: Time) -> torch.Tensor:
        b = as_tensor(b)
        self._check_integral_range(b, float(self._B[-1]))
        b64 = b.to(torch.float64).clamp(min=0.0)
        k = torch.clamp(torch.searchsorted(self._B, b64, right=True) - 1, 0, int(self.T) - 1)
        t = k.to(torch.float64) + (b64 - self._B[k]) / self._rate[k]
        return t.clamp(max=self.T).to(b.dtype)

    def params(self) -> dict:
        if "alphas_cumprod" in self._source or "betas" in self._source:
            return {"T": self.T, "table": "given"}
        return dict(self._source)


@register("process", "ddpm", schedules="beta", default_schedule="discrete", default_t_min=1.0)
class DDPM(VP):
    """DDPM's discrete chain as the VP SDE with a piecewise-constant rate (σ∞ = 1): at the
    integer time t = k + 1 its marginal is q(x_k | x_0) of diffusers' timestep k
    (docs/theory.md §1.4). The default ``t_min = 1`` is timestep 0."""

    kind = "ddpm"
    is_a = ("vp",)  # a VP process: samplers and bounds derived for VP apply

    def __init__(
        self, schedule: DiscreteBeta | None = None, sigma_inf: float = 1.0, t_min: float = 1.0
    ):
        schedule = DiscreteBeta() if schedule is None else schedule
        if not isinstance(schedule, DiscreteBeta):
            raise InvalidParameter(
                "schedule",
                "process 'ddpm' needs a β table (schedule kind 'discrete')",
                type(schedule).__name__,
                "discrete",
            )
        if float(sigma_inf) != 1.0:
            raise InvalidParameter("sigma_inf", "is 1 for the DDPM chain", sigma_inf, "1")
        super().__init__(schedule, 1.0, t_min)

    @classmethod
    def from_alphas_cumprod(cls, alphas_cumprod: Sequence[float] | torch.Tensor, t_min=1.0):
        """The chain of a given ᾱ table (e.g. ``scheduler.alphas_cumprod`` of diffusers, whose
        float32 values are then used exactly)."""
        a = torch.as_tensor(alphas_cumprod).to(torch.float64).reshape(-1)
        return cls(DiscreteBeta(alphas_cumprod=a.tolist()), t_min=t_min)

    @property
    def alphas_cumprod(self) -> torch.Tensor:
        return self.schedule.alphas_cumprod

    @staticmethod
    def time_of_timestep(timestep: Time) -> torch.Tensor:
        """The process time t = k + 1 of diffusers' timestep k."""
        return as_tensor(timestep).to(torch.float64) + 1.0

    @staticmethod
    def timestep_of_time(t: Time) -> torch.Tensor:
        """diffusers' timestep k = t − 1 of the process time t."""
        return as_tensor(t).to(torch.float64) - 1.0

    def sigmas_at_timesteps(self, timesteps) -> torch.Tensor:
        """σ_k = √((1 − ᾱ_k)/ᾱ_k) at integer timesteps (float64)."""
        k = torch.as_tensor(timesteps).to(torch.long)
        return torch.sqrt(torch.expm1(self.schedule._B[k + 1]))


__all__ = ["BETA_TABLES", "DDPM", "DiscreteBeta", "beta_table"]
