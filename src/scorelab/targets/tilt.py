"""Gaussian tilts (paper B, Cole & Lu): p(x) ∝ exp(f(x))·γ_d(x), with γ_d = N(0, I).

Under a process whose stationary law is γ_d (VP with σ∞ = 1, any β), p_t = γ_d · P_t h₀ with
h₀ = e^f/Z and the Mehler semigroup P_t h(x) = E[h(m x + s Z)], s² = 1 − m². Hence
(docs/theory.md §3.4)

    ∇log p_t(x) = −x + (m/s) E[Z e^{f(Y)}] / E[e^{f(Y)}],   Y = m x + s Z,

a Monte Carlo score oracle for any f, needing no ∇f. ``TiltedGMM`` is the closed-form member
of the family (f a log-sum-exp of affine maps = an identity-covariance mixture).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .._tensor import Time, as_float64
from ..errors import InvalidParameter
from ..processes import ForwardProcess
from ..registry import ParamsModel, register
from .base import NotAvailable, Target
from .gaussian import GaussianMixture, random_means

LogTilt = Callable[[torch.Tensor], torch.Tensor]


class GaussianTilt(Target):
    """p ∝ exp(f)·γ_d for a user log-relative density f: ``[N, D] → [N]``.

    The score is the Mehler Monte Carlo estimate (``n_mc`` draws, seeded by ``seed``, so the
    same call gives the same number); ``mehler_score`` also returns its standard error. With
    ``shift`` (default) half the draws are importance-sampled around s·∇f(m x) (f must then be
    differentiable by autograd); ``shift=False`` gives the plain estimator of docs/theory.md §3.4.
    ``form`` picks the estimator of ∇log h_t: "stein", (m/s)·E[Z e^f]/E[e^f], needs no ∇f;
    "gradient", m·E[∇f(Y) e^f]/E[e^f], needs autograd of f but has no 1/s factor, so it stays
    accurate as t → 0. The standard error is the delta-method one; it is trustworthy when the
    weights are not heavy-tailed, which the shift helps with.
    Sampling is sampling-importance-resampling from γ_d with ``pool`` candidates per draw:
    approximate, and refused when the effective sample size falls below ``min_ess``.
    """

    kind = "tilt"
    has_score = True

    def __init__(
        self,
        f: LogTilt,
        dim: int,
        *,
        n_mc: int = 4096,
        seed: int = 0,
        pool: int = 1024,
        min_ess: float = 0.01,
        shift: bool = True,
        form: str = "gradient",
    ):
        if int(dim) < 1:
            raise InvalidParameter("dim", "must be ≥ 1", dim)
        super().__init__((int(dim),))
        self.f = f
        self.n_mc, self.seed, self.pool, self.min_ess = int(n_mc), int(seed), int(pool), min_ess
        self.shift = bool(shift)
        if form not in ("stein", "gradient"):
            raise InvalidParameter("form", "is not a Mehler estimator", form, "stein, gradient")
        self.form = form

    def mehler_score(
        self,
        x: torch.Tensor,
        t: Time,
        process: ForwardProcess,
        n_mc: int | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(score estimate, its standard error), both shaped like x.

        The standard error is the delta-method one of the self-normalised ratio
        E[Z w]/E[w]: √(Σ_i w̄_i² (Z_i − R)²)·m/s with normalised weights w̄.
        """
        flat, m, v = self._prepare(x, t, process, "mehler_score")
        n_mc = int(n_mc or self.n_mc)
        if generator is None:
            generator = torch.Generator(device=flat.device).manual_seed(self.seed)
        est, err = self._mehler(flat, m, v, n_mc, generator)
        return est.reshape(x.shape), err.reshape(x.shape)

    def _mehler(self, x, m, v, n_mc, generator):
        if bool(((m**2 + v) - 1).abs().max() > 1e-6):
            raise InvalidParameter(
                "process",
                "the Mehler score needs a process whose stationary law is N(0, I)",
                "m² + s² ≠ 1",
                "vp with sigma_inf = 1 (any β-schedule)",
            )
        B, D = x.shape
        s = torch.sqrt(v)
        scores, errors = [], []
        step = max(1, (1 << 22) // (n_mc * D))
        for i in range(0, B, step):
            xi = x[i : i + step]
            mi = m if m.ndim == 0 else m[i : i + step]
            si = s if s.ndim == 0 else s[i : i + step]
            m3 = mi if mi.ndim == 0 else mi[:, :, None]
            s3 = si if si.ndim == 0 else si[:, :, None]
            # Defensive importance sampling: half the draws from N(0, I), half from N(c, I) with
            # c = s∇f(m x), weighted by the balance heuristic, e^{f(Y)}·φ(z)/q(z). The shifted half
            # is exact for affine f and tames the lognormal tails of e^{f}; the unshifted half
            # keeps the weights within 2× of the plain estimator's when f is multimodal.
            z = torch.randn(
                xi.shape[0], n_mc, D, generator=generator, dtype=x.dtype, device=x.device
            )
            if self.shift:
                c = self._shift(mi * xi, si)[:, None, :]
                z = torch.cat([z[:, : n_mc // 2], z[:, n_mc // 2 :] + c], dim=1)
            y = m3 * xi[:, None, :] + s3 * z
            if self.form == "gradient":
                fy, grad = self._f_and_grad(y.reshape(-1, D))
                logw, q = fy.reshape(xi.shape[0], n_mc), grad.reshape(z.shape)
                factor = mi
            else:
                logw, q = self.f(y.reshape(-1, D)).reshape(xi.shape[0], n_mc), z
                factor = mi / si
            if self.shift:
                log_ratio = (c * z).sum(-1) - 0.5 * (c**2).sum(-1)  # log φ(z − c)/φ(z)
                logw = logw - torch.logaddexp(torch.zeros_like(log_ratio), log_ratio)
            w = torch.softmax(logw, dim=1)[:, :, None]
            ratio = (w * q).sum(1)
            se = torch.sqrt((w**2 * (q - ratio[:, None, :]) ** 2).sum(1))
            scores.append(-xi + factor * ratio)
            errors.append(factor * se)
        return torch.cat(scores), torch.cat(errors)

    def _f_and_grad(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """f(y) and ∇f(y) by autograd."""
        with torch.enable_grad():
            yy = y.detach().clone().requires_grad_(True)
            fy = self.f(yy)
            (grad,) = torch.autograd.grad(fy.sum(), yy)
        return fy.detach(), grad.detach()

    def _shift(self, y: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """s·∇f(y) (``[B, D]``)."""
        return s * self._f_and_grad(y)[1]

    def _score(self, x, m, v):
        g = torch.Generator(device=x.device).manual_seed(self.seed)
        return self._mehler(x, m, v, self.n_mc, g)[0]

    def _sample(self, n, generator):
        cand = torch.randn(n, self.pool, self.dim, generator=generator, dtype=torch.float64)
        logw = self.f(cand.reshape(-1, self.dim)).reshape(n, self.pool)
        w = torch.softmax(logw, dim=1)
        ess = 1.0 / (w**2).sum(1) / self.pool
        if float(ess.mean()) < self.min_ess:
            raise NotAvailable(
                f"sampling the tilt by resampling from N(0, I) is unreliable here (relative "
                f"effective sample size {float(ess.mean()):.3g} < min_ess = {self.min_ess}); "
                "raise `pool` or use a closed-form target"
            )
        idx = torch.multinomial(w, 1, generator=generator)[:, 0]
        return cand[torch.arange(n), idx]


class TiltedGMMConfig(ParamsModel):
    """Σ w_k N(μ_k, I) as a Gaussian tilt (paper B); means given, or K random of norm radius."""

    dim: int = 2
    weights: list[float] | None = None
    means: list[list[float]] | None = None
    n_components: int = 4
    radius: float = 3.0
    seed: int | None = None


@register("target", "tilted_gmm", config=TiltedGMMConfig)
class TiltedGMM(GaussianMixture):
    """Σ_k w_k N(μ_k, I) seen as a Gaussian tilt with f(x) = log Σ_k w_k exp(⟨μ_k, x⟩ − ‖μ_k‖²/2).

    Its noised score is closed form under every linear process (it is a Gaussian mixture);
    ``as_tilt()`` gives the same law through the generic Mehler oracle, to cross-check.
    """

    kind = "tilted_gmm"

    @classmethod
    def from_config(cls, cfg: TiltedGMMConfig, seed: int = 0) -> TiltedGMM:
        if cfg.means is None:
            if cfg.weights is not None:
                raise InvalidParameter("weights", "need explicit means", cfg.weights)
            s = seed if cfg.seed is None else cfg.seed
            return cls.random(cfg.dim, cfg.n_components, cfg.radius, s)
        means = as_float64(cfg.means, "means")
        K = len(cfg.means)
        if K == 0:
            raise InvalidParameter("means", "must be a non-empty list of mean vectors", [])
        w = cfg.weights if cfg.weights is not None else [1 / K] * K
        if "dim" in cfg.given() and means.ndim == 2 and means.shape[1] != cfg.dim:
            raise InvalidParameter("dim", f"disagrees with the means ({means.shape[1]})", cfg.dim)
        return cls(w, means)

    def __init__(self, weights, means):
        super().__init__(weights, means, 1.0, _fields=("weights", "means", "covs"))

    @classmethod
    def random(
        cls, dim: int, n_components: int = 4, radius: float = 3.0, seed: int = 0
    ) -> TiltedGMM:
        """K equal-weight modes with ‖μ_k‖ = radius in random directions (paper B's setting:
        the complexity of f depends on K and the radius, not on d)."""
        means = random_means(n_components, dim, radius, seed)
        K = means.shape[0]
        return cls(torch.full((K,), 1 / K, dtype=torch.float64), means)

    def f(self, x: torch.Tensor) -> torch.Tensor:
        """The log-relative density log(dp/dγ_d), ``[N, D] → [N]``."""
        mu = self.param("means", x)
        logits = x @ mu.T - 0.5 * (mu**2).sum(1)[None] + self.param("log_weights", x)[None]
        return torch.logsumexp(logits, dim=1)

    def lipschitz_constant(self) -> float:
        """max_k ‖μ_k‖, the Lipschitz constant of f (independent of d)."""
        return float(self.means.norm(dim=1).max())

    def as_tilt(self, **kwargs) -> GaussianTilt:
        return GaussianTilt(self.f, self.dim, **kwargs)
