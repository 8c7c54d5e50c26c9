"""Gaussians and Gaussian mixtures with exact noised scores (docs/theory.md §3.2–3.3).

Every component is kept in its eigenbasis, Σ_k = U_k diag(λ_k) U_kᵀ (U_k = I for isotropic and
diagonal covariances), so that the noised covariance C_k = m²Σ_k + s²I is diagonal there:
c = m²λ + s². Score, Tweedie denoiser and log-density then cost one rotation each way, work
with one time per example, and are finite for singular Σ as long as s > 0 (the subspace law).
Responsibilities use log-sum-exp, so the score is correct 1e4 standard deviations from every
mode and as t → 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
from pydantic import field_validator

from .._tensor import as_float64
from ..errors import InvalidParameter, require_positive
from ..registry import ParamsModel, register
from .base import Target

Number = float
Vector = list[float]
Matrix = list[list[float]]

CovSpec = float | Sequence[float] | Sequence[Sequence[float]] | torch.Tensor

# Work in chunks of at most this many B·K·D elements so memory stays bounded for large batches.
_CHUNK_ELEMENTS = 1 << 22


def parse_mean(field: str, mean, dim: int) -> torch.Tensor:
    """A scalar (broadcast) or a length-``dim`` list, as a float64 vector."""
    mu = as_float64(mean, field)
    if mu.ndim == 0:
        mu = mu.expand(dim).clone()
    if mu.ndim != 1 or mu.shape[0] != dim:
        raise InvalidParameter(field, f"must be a number or a list of {dim} numbers", mean)
    if not bool(torch.isfinite(mu).all()):
        raise InvalidParameter(field, "must be finite", mean)
    return mu


def parse_cov(
    field: str, cov: CovSpec, dim: int, *, allow_singular: bool = False
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A covariance given as a scalar (isotropic), a vector (diagonal) or a matrix (full), as
    its eigenvalues λ (``[D]``) and eigenvectors U (``[D, D]``, None when axis-aligned)."""
    c = as_float64(cov, field)
    need = "≥ 0" if allow_singular else "> 0"
    if not bool(torch.isfinite(c).all()):
        raise InvalidParameter(field, "must be finite", cov)
    if c.ndim == 0:
        lam, U = c.expand(dim).clone(), None
    elif c.ndim == 1:
        if c.shape[0] != dim:
            raise InvalidParameter(field, f"as a diagonal must have {dim} entries", cov)
        lam, U = c.clone(), None
    elif c.ndim == 2:
        if tuple(c.shape) != (dim, dim):
            raise InvalidParameter(field, f"as a matrix must be {dim}×{dim}", tuple(c.shape))
        scale = float(c.abs().max()) or 1.0
        if float((c - c.T).abs().max()) > 1e-10 * scale:
            raise InvalidParameter(field, "must be symmetric", cov)
        lam, U = torch.linalg.eigh(0.5 * (c + c.T))
        # eigh's round-off can make exact zeros slightly negative
        lam = torch.where(lam.abs() <= 1e-13 * scale, torch.zeros_like(lam), lam)
        bad = lam < 0 if allow_singular else lam <= 0
        if bool(bad.any()):
            what = "positive semi-definite" if allow_singular else "positive definite"
            raise InvalidParameter(
                field, f"must be {what} (smallest eigenvalue {float(lam.min()):.3g})", cov
            )
        return lam, U
    else:
        raise InvalidParameter(field, "must be a number, a list or a matrix", cov)
    bad = lam < 0 if allow_singular else lam <= 0
    if bool(bad.any()):
        raise InvalidParameter(field, f"variances must be {need}", cov)
    return lam, U


def ragged(value) -> str | None:
    """Why nested lists are not a rectangular array (rows of unequal length at some depth),
    or None where they are (or are not lists at all)."""
    if not isinstance(value, list) or not all(isinstance(v, list) for v in value):
        return None
    lengths = [len(v) for v in value]
    if len(set(lengths)) > 1:
        return f"must have rows of equal length (got row lengths {lengths})"
    return next((why for why in map(ragged, value) if why is not None), None)


def _rectangular(value, what: str = ""):
    why = ragged(value)
    if why is not None:
        raise ValueError(f"{what}{why}")
    return value


class GMMConfig(ParamsModel):
    """Gaussian mixture: explicit weights/means/covs, or a preset (ring8, mg25, random)."""

    preset: Literal["ring8", "mg25", "random"] | None = None
    dim: int | None = None
    weights: Vector | None = None
    means: Matrix | None = None
    covs: Number | list[Number | Vector | Matrix] | None = None
    n_components: int | None = None
    radius: float | None = None
    std: float | None = None
    seed: int | None = None

    @field_validator("means", mode="before")
    @classmethod
    def _components(cls, value):
        if isinstance(value, list) and not value:
            raise ValueError("must be a non-empty list of mean vectors (one per component)")
        return _rectangular(value)

    @field_validator("covs", mode="before")
    @classmethod
    def _covariances(cls, value):
        if isinstance(value, list):
            for k, cov in enumerate(value):
                _rectangular(cov, f"component {k}'s covariance: ")
        return value


# the keys each preset takes
_PRESET_KEYS = {
    "ring8": {"radius", "std"},
    "mg25": {"dim", "std"},
    "random": {"n_components", "dim", "radius", "std", "seed"},
}


@register("target", "gmm", config=GMMConfig)
class GaussianMixture(Target):
    """Σ_k w_k N(μ_k, Σ_k) with exact noised score, denoiser and log-density under any
    linear forward process."""

    kind = "gmm"
    has_density = True
    has_score = True

    @classmethod
    def from_config(cls, cfg: GMMConfig, seed: int = 0) -> GaussianMixture:
        """Explicit components, or a preset (``seed`` seeds the random preset when the config
        gives no seed of its own)."""
        given = cfg.given() - {"kind", "preset"}
        if cfg.preset is None:
            if cfg.means is None:
                raise InvalidParameter(
                    "means",
                    "are required (or choose a preset)",
                    None,
                    "a list of mean vectors, or preset: ring8|mg25|random",
                )
            extra = sorted(given & {"n_components", "radius", "std", "seed"})
            if extra:
                value = getattr(cfg, extra[0])
                raise InvalidParameter(extra[0], "only applies with a preset", value)
            K = len(cfg.means)
            w = cfg.weights if cfg.weights is not None else [1 / K] * K
            gmm = cls(w, cfg.means, 1.0 if cfg.covs is None else cfg.covs)
            if cfg.dim is not None and cfg.dim != gmm.dim:
                raise InvalidParameter("dim", f"disagrees with the means ({gmm.dim})", cfg.dim)
            return gmm
        bad = sorted(given - _PRESET_KEYS[cfg.preset])
        if bad:
            raise InvalidParameter(
                bad[0],
                f"does not apply to preset '{cfg.preset}'",
                getattr(cfg, bad[0]),
                ", ".join(sorted(_PRESET_KEYS[cfg.preset])),
            )
        kw = {k: getattr(cfg, k) for k in given}
        if cfg.preset == "ring8":
            return ring8(**kw)
        if cfg.preset == "mg25":
            return mg25(**kw)
        kw.setdefault("seed", seed)
        return random_gmm(**kw)

    def __init__(
        self,
        weights: Sequence[float] | torch.Tensor,
        means: Sequence[Sequence[float]] | torch.Tensor,
        covs: CovSpec | Sequence[CovSpec] = 1.0,
        *,
        allow_singular: bool = False,
        _fields: tuple[str, str, str] = ("weights", "means", "covs"),
    ):
        f_w, f_mu, f_cov = _fields
        mu = as_float64(means, f_mu)
        if mu.ndim != 2 or mu.shape[0] == 0:
            raise InvalidParameter(f_mu, "must be a non-empty list of mean vectors", means)
        if not bool(torch.isfinite(mu).all()):
            raise InvalidParameter(f_mu, "must be finite", means)
        K, D = mu.shape
        w = as_float64(weights, f_w)
        if w.ndim != 1 or w.shape[0] != K:
            raise InvalidParameter(f_w, f"must have one weight per component ({K})", weights)
        if bool((w < 0).any()) or not bool(torch.isfinite(w).all()):
            raise InvalidParameter(f_w, "must be finite and ≥ 0", weights)
        if abs(float(w.sum()) - 1.0) > 1e-6:
            raise InvalidParameter(
                f_w, f"must sum to 1 (they sum to {float(w.sum()):.6g})", weights
            )
        specs = self._split_covs(f_cov, covs, K)
        lams, Us = [], []
        for k, spec in enumerate(specs):
            field = f_cov if K == 1 else f"{f_cov}[{k}]"
            lam, U = parse_cov(field, spec, D, allow_singular=allow_singular)
            lams.append(lam)
            Us.append(U)
        if all(U is None for U in Us):
            U_all = None
        else:
            eye = torch.eye(D, dtype=torch.float64)
            U_all = torch.stack([eye if U is None else U for U in Us])
        self._set_components(w / w.sum(), mu, torch.stack(lams), U_all)

    def _set_components(self, weights, means, lams, U) -> None:
        """Install components given in eigen-form: λ ``[K, D]`` ≥ 0, U ``[K, D, D]`` or None."""
        Target.__init__(self, (means.shape[1],))
        self.weights, self.means, self.lams, self.U = weights, means, lams, U
        self.log_weights = torch.log(weights)
        self.has_density = bool((lams > 0).all())
        self.singular = not self.has_density

    @staticmethod
    def _split_covs(field: str, covs, K: int) -> list:
        if isinstance(covs, (int, float)) or (isinstance(covs, torch.Tensor) and covs.ndim == 0):
            return [covs] * K
        if isinstance(covs, torch.Tensor):
            covs = list(covs)
        if not isinstance(covs, Sequence) or len(covs) != K:
            raise InvalidParameter(
                field,
                f"must be one number (shared) or a list of {K} per-component covariances",
                covs,
            )
        return list(covs)

    @property
    def n_components(self) -> int:
        return self.means.shape[0]

    def mean(self) -> torch.Tensor:
        """E[X] (float64)."""
        return self.weights @ self.means

    def covariance(self) -> torch.Tensor:
        """Cov[X] (float64)."""
        mu = self.mean()
        covs = self._component_covs()
        second = (
            self.weights[:, None, None] * (covs + self.means[:, :, None] * self.means[:, None, :])
        ).sum(0)
        return second - mu[:, None] * mu[None, :]

    def _component_covs(self) -> torch.Tensor:
        if self.U is None:
            return torch.diag_embed(self.lams)
        return self.U @ torch.diag_embed(self.lams) @ self.U.transpose(1, 2)

    # --- what the law is known to be (see Target) ------------------------------------------
    def moments(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.mean(), self.covariance()

    def gaussian_moments(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        return self.moments() if self.n_components == 1 else None

    def gaussian_mixture(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.weights, self.means, self._component_covs()

    def second_moment(self) -> float:
        """tr Cov[X] + ‖E[X]‖²."""
        return float(torch.trace(self.covariance()) + (self.mean() ** 2).sum())

    def support_dimension(self) -> int:
        """The largest rank of a component's covariance (k for the subspace law)."""
        return int((self.lams > 0).sum(1).max())

    # --- sampling --------------------------------------------------------------------------
    def _sample(self, n, generator):
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        z = torch.randn(n, self.dim, generator=generator, dtype=torch.float64)
        y = z * torch.sqrt(self.lams[k])
        if self.U is not None:
            y = torch.einsum("bkd,bd->bk", self.U[k], y)
        return self.means[k] + y

    # --- exact noised quantities -------------------------------------------------------------
    def _components(self, x, m, v):
        """In each component's eigenbasis: w = C_k⁻¹ y with y = U_kᵀ(x − mμ_k) (``[B, K, D]``,
        c = m²λ_k + s² on the diagonal) and the log-responsibilities ``[B, K]``."""
        mu, lam = self.param("means", x), self.param("lams", x)
        m3 = m if m.ndim == 0 else m[:, :, None]
        v3 = v if v.ndim == 0 else v[:, :, None]
        y = x[:, None, :] - m3 * mu[None]
        if self.U is not None:
            y = torch.einsum("bkd,kde->bke", y, self.param("U", x))
        c = m3**2 * lam[None] + v3  # [1, K, D] for one time, [B, K, D] for one per example
        w = y / c
        log_det = torch.log(c).sum(-1) + self.dim * math.log(2 * math.pi)
        log_r = self.param("log_weights", x)[None] - 0.5 * ((y * w).sum(-1) + log_det)
        return w, log_r

    def _chunked(self, fn, x, m, v):
        step = max(1, _CHUNK_ELEMENTS // (self.n_components * self.dim))
        if x.shape[0] <= step:
            return fn(x, m, v)
        outs = []
        for i in range(0, x.shape[0], step):
            sl = slice(i, i + step)
            outs.append(fn(x[sl], m if m.ndim == 0 else m[sl], v if v.ndim == 0 else v[sl]))
        return torch.cat(outs)

    def _rotate_back(self, y, x):
        return y if self.U is None else torch.einsum("bke,kde->bkd", y, self.param("U", x))

    def _score(self, x, m, v):
        def fn(x, m, v):
            w, log_r = self._components(x, m, v)
            r = torch.softmax(log_r, dim=1)
            return -torch.einsum("bk,bkd->bd", r, self._rotate_back(w, x))

        return self._chunked(fn, x, m, v)

    def _denoise(self, x, m, v):
        # E[X0 | x] = Σ_k r_k (μ_k + m Σ_k C_k⁻¹ (x − mμ_k)), with Σ_k C_k⁻¹ = U diag(λ/c) Uᵀ
        def fn(x, m, v):
            w, log_r = self._components(x, m, v)
            r = torch.softmax(log_r, dim=1)
            m3 = m if m.ndim == 0 else m[:, :, None]
            shift = self._rotate_back(m3 * self.param("lams", x)[None] * w, x)
            return r @ self.param("means", x) + torch.einsum("bk,bkd->bd", r, shift)

        return self._chunked(fn, x, m, v)

    def _log_prob_t(self, x, m, v):
        return self._chunked(
            lambda x, m, v: torch.logsumexp(self._components(x, m, v)[1], 1), x, m, v
        )

    def __repr__(self):
        return f"{type(self).__name__}(K={self.n_components}, dim={self.dim})"


class GaussianConfig(ParamsModel):
    """N(mean, cov); cov a number (isotropic), a list (diagonal) or a matrix (full)."""

    dim: int | None = None
    mean: Number | Vector = 0.0
    cov: Number | Vector | Matrix = 1.0

    @field_validator("mean", "cov", mode="before")
    @classmethod
    def _not_ragged(cls, value):
        return _rectangular(value)


@register("target", "gaussian", config=GaussianConfig)
class Gaussian(GaussianMixture):
    """N(μ, Σ) with Σ isotropic (a number), diagonal (a list) or full (a matrix)."""

    kind = "gaussian"

    def __init__(self, mean=0.0, cov: CovSpec = 1.0, dim: int | None = None):
        dim = _infer_dim(dim, mean, cov)
        mu = parse_mean("mean", mean, dim)
        parse_cov("cov", cov, dim)  # validate with the user's field name
        super().__init__([1.0], mu[None], [cov], _fields=("weights", "mean", "cov"))

    def mean(self) -> torch.Tensor:
        return self.means[0]


def _infer_dim(dim, mean, cov) -> int:
    sizes = []
    for field, value in (("mean", mean), ("cov", cov)):
        t = as_float64(value, field)
        if t.ndim >= 1:
            sizes.append(t.shape[0])
    if dim is not None:
        dim = int(dim)
        if dim < 1:
            raise InvalidParameter("dim", "must be ≥ 1", dim)
        for s in sizes:
            if s != dim:
                raise InvalidParameter("dim", f"disagrees with the size of mean/cov ({s})", dim)
        return dim
    if sizes:
        return sizes[0]
    return 2


# --- presets ---------------------------------------------------------------------------------


def ring8(radius: float = 2.0, std: float = 0.2) -> GaussianMixture:
    """Eight equal Gaussians N(·, std² I) evenly spaced on a circle in the plane."""
    require_positive("radius", radius)
    require_positive("std", std)
    angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
    means = radius * torch.stack([torch.cos(angles), torch.sin(angles)], 1)
    return GaussianMixture(torch.full((8,), 1 / 8, dtype=torch.float64), means, std**2)


def mg25(dim: int = 2, std: float = 0.1, std_rest: float = math.sqrt(0.1)) -> GaussianMixture:
    """Paper A's MG25: 25 equal Gaussians centred on {−2, …, 2}² in the first two coordinates
    (0 elsewhere), covariance diag(std², std², std_rest², …) = diag(0.01, 0.01, 0.1, …)."""
    if int(dim) < 2:
        raise InvalidParameter("dim", "must be ≥ 2 for the mg25 preset", dim)
    require_positive("std", std)
    require_positive("std_rest", std_rest)
    grid = torch.arange(-2, 3, dtype=torch.float64)
    xy = torch.cartesian_prod(grid, grid)
    means = torch.zeros(25, dim, dtype=torch.float64)
    means[:, :2] = xy
    diag = [std**2] * 2 + [std_rest**2] * (dim - 2)
    return GaussianMixture(torch.full((25,), 1 / 25, dtype=torch.float64), means, [diag] * 25)


def random_means(n_components: int, dim: int, radius: float, seed: int) -> torch.Tensor:
    """K means of norm ``radius`` in uniformly random directions (seeded)."""
    if int(n_components) < 1:
        raise InvalidParameter("n_components", "must be ≥ 1", n_components)
    if int(dim) < 1:
        raise InvalidParameter("dim", "must be ≥ 1", dim)
    require_positive("radius", radius, allow_zero=True)
    g = torch.Generator().manual_seed(int(seed))
    z = torch.randn(int(n_components), int(dim), generator=g, dtype=torch.float64)
    return radius * z / z.norm(dim=1, keepdim=True)


def random_gmm(
    n_components: int = 8, dim: int = 2, radius: float = 3.0, std: float = 1.0, seed: int = 0
) -> GaussianMixture:
    """K equal Gaussians N(μ_k, std² I) with ‖μ_k‖ = radius in random directions."""
    require_positive("std", std)
    means = random_means(n_components, dim, radius, seed)
    K = means.shape[0]
    return GaussianMixture(torch.full((K,), 1 / K, dtype=torch.float64), means, std**2)
