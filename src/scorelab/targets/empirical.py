"""The empirical measure (1/n) Σ δ_{x_i} and its exact noised score (docs/theory.md §3.6).

p_t = (1/n) Σ_i N(m x_i, s² I), so ∇log p_t(x) = (m Σ_i w_i x_i − x)/s² with
w = softmax_i(−‖x − m x_i‖²/(2s²)), and E[X₀ | X_t = x] = Σ_i w_i x_i. Run to t → 0 with this
score, a sampler reproduces the training points: memorisation (paper E).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch

from .._tensor import as_float64
from ..errors import InvalidParameter
from ..registry import ParamsModel, entry, register
from .base import Target
from .files import load_array


class EmpiricalConfig(ParamsModel):
    """The empirical measure of points given inline, in a file, or n draws from a source."""

    kind: Literal["empirical"] = "empirical"
    points: list[list[float]] | None = None
    path: str | None = None
    key: str | None = None
    # any target's config: the schema resolves the union of registered targets here
    source: TargetConfig | None = None
    n: int | None = None
    seed: int | None = None


TargetConfig = Any  # rebound to the union of registered targets by the config schema

_CHUNK_ELEMENTS = 1 << 23


@register("target", "empirical", config=EmpiricalConfig)
class Empirical(Target):
    """Uniform law on the rows of ``points`` (``[n, ...]``, any event shape)."""

    kind = "empirical"
    has_score = True
    singular = True

    @classmethod
    def from_config(cls, cfg: EmpiricalConfig, seed: int = 0) -> Empirical:
        sources = [n for n in ("points", "path", "source") if getattr(cfg, n) is not None]
        if len(sources) != 1:
            raise InvalidParameter(
                "points",
                "give exactly one of points, path or source",
                sources or None,
                "points: [[...], ...] | path: FILE | source: {kind: ...} with n",
            )
        if cfg.points is not None:
            return cls(torch.as_tensor(cfg.points, dtype=torch.float64))
        if cfg.path is not None:
            data = load_array(cfg.path, cfg.key)
            return cls(data if cfg.n is None else data[: cfg.n])
        if cfg.n is None or cfg.n < 1:
            raise InvalidParameter("n", "is required with source and must be ≥ 1", cfg.n)
        s = seed if cfg.seed is None else cfg.seed
        try:
            src = entry("target", cfg.source.kind).build(cfg.source, seed=s)
        except InvalidParameter as exc:
            raise exc.at("source") from None
        return cls(src.sample(cfg.n, torch.Generator().manual_seed(s), dtype=torch.float64))

    def __init__(self, points: torch.Tensor):
        pts = as_float64(points, "points")
        if pts.ndim == 1:
            pts = pts[:, None]
        if pts.ndim < 2 or pts.shape[0] == 0:
            raise InvalidParameter(
                "points", "must be a non-empty array of shape [n, ...]", tuple(pts.shape)
            )
        if not bool(torch.isfinite(pts).all()):
            raise InvalidParameter("points", "must be finite (found NaN or inf)", tuple(pts.shape))
        super().__init__(tuple(pts.shape[1:]))
        self.points = pts.reshape(pts.shape[0], -1)
        self.sq_norms = (self.points**2).sum(1)

    @property
    def n_points(self) -> int:
        return self.points.shape[0]

    # --- what the law is known to be (see Target) ------------------------------------------
    def finite_points(self) -> torch.Tensor:
        return self.points

    def second_moment(self) -> float:
        return float(self.sq_norms.mean())

    def mean_norm(self) -> float:
        return float(self.sq_norms.sqrt().mean())

    def diameter(self) -> float:
        """The largest pairwise distance; with more than 4096 points, 2·max‖x_i − x̄‖ (an
        upper bound, without the n² distance matrix)."""
        pts = self.points
        if pts.shape[0] <= 4096:
            return float(torch.cdist(pts, pts).max())
        return 2 * float((pts - pts.mean(0)).norm(dim=1).max())

    def support_dimension(self) -> int:
        return 0

    def _sample(self, n, generator):
        idx = torch.randint(0, self.n_points, (n,), generator=generator)
        return self.points[idx]

    def _sq_dist(self, x, m):
        """‖x − m x_i‖² ``[B, n]`` through one matrix product (m is 0-d or ``[B, 1]``)."""
        pts, sq = self.param("points", x), self.param("sq_norms", x)
        d2 = (x**2).sum(1, keepdim=True) - 2 * m * (x @ pts.T) + m**2 * sq[None]
        return d2.clamp(min=0)

    def _chunks(self, x, m, v):
        step = max(1, _CHUNK_ELEMENTS // self.n_points)
        for i in range(0, x.shape[0], step):
            sl = slice(i, i + step)
            yield x[sl], (m if m.ndim == 0 else m[sl]), (v if v.ndim == 0 else v[sl])

    def _denoise(self, x, m, v):
        out = []
        for xc, mc, vc in self._chunks(x, m, v):
            d2 = self._sq_dist(xc, mc)
            # Subtracting the nearest distance first keeps the softmax exact as s → 0.
            logits = -(d2 - d2.min(1, keepdim=True).values) / (2 * vc)
            out.append(torch.softmax(logits, 1) @ self.param("points", x))
        return torch.cat(out)

    def _log_prob_t(self, x, m, v):
        out = []
        D = self.dim
        for xc, mc, vc in self._chunks(x, m, v):
            d2 = self._sq_dist(xc, mc)
            lse = torch.logsumexp(-d2 / (2 * vc), 1)
            vv = vc.reshape(-1) if vc.ndim else vc
            out.append(lse - math.log(self.n_points) - 0.5 * D * torch.log(2 * math.pi * vv))
        return torch.cat(out)

    def __repr__(self):
        return f"Empirical(n={self.n_points}, event_shape={self.event_shape})"
