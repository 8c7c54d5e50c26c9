"""Input checks shared by every metric: samples as a float64 ``[n, D]`` tensor, finite, of the
right shape and size, or an ``InvalidParameter`` that names the argument."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from ..errors import InvalidParameter


def as_points(
    x,
    field: str = "samples",
    *,
    event_shape: tuple[int, ...] | None = None,
    dim: int | None = None,
    min_n: int = 1,
) -> torch.Tensor:
    """``x`` (tensor or array, ``[n, *event_shape]``) as a float64 ``[n, D]`` tensor."""
    if isinstance(x, np.ndarray):
        if not np.issubdtype(x.dtype, np.number):
            raise InvalidParameter(field, "must hold numbers", x.dtype, "a float array")
        x = torch.from_numpy(np.ascontiguousarray(x))
    if not isinstance(x, torch.Tensor):
        raise InvalidParameter(field, "must be a tensor or an array", type(x).__name__)
    if x.is_complex():
        raise InvalidParameter(field, "must be real", x.dtype)
    x = x.detach().to("cpu", torch.float64)
    if x.ndim == 1 and event_shape in (None, (1,)) and dim in (None, 1):
        x = x[:, None]
    if x.ndim < 2:
        raise InvalidParameter(field, "must have shape [n, ...] (one row per example)", x.shape)
    if event_shape is not None and tuple(x.shape[1:]) != tuple(event_shape):
        D = int(np.prod(event_shape))
        if tuple(x.shape[1:]) != (D,):
            raise InvalidParameter(
                field,
                "has the wrong shape for the target",
                tuple(x.shape),
                f"[n, {', '.join(map(str, event_shape))}] or [n, {D}]",
            )
    x = x.reshape(x.shape[0], -1)
    if dim is not None and x.shape[1] != dim:
        raise InvalidParameter(field, "has the wrong dimension", tuple(x.shape), f"[n, {dim}]")
    if x.shape[0] < min_n:
        raise InvalidParameter(
            field, "has too few points for this metric", x.shape[0], f"at least {min_n}"
        )
    finite = torch.isfinite(x)
    if not bool(finite.all()):
        bad = int((~finite).any(1).sum())
        raise InvalidParameter(
            field,
            f"holds NaN or inf in {bad} of its {x.shape[0]} rows",
            tuple(x.shape),
            "finite values only",
        )
    return x


def same_dim(x: torch.Tensor, y: torch.Tensor, fx: str = "x", fy: str = "y") -> None:
    if x.shape[1] != y.shape[1]:
        raise InvalidParameter(
            fy, f"must have the same dimension as {fx} ({x.shape[1]})", tuple(y.shape)
        )


def positive_int(field: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InvalidParameter(field, f"must be an integer ≥ {minimum}", value)
    return int(value)


def positive_float(field: str, value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InvalidParameter(field, "must be a number > 0", value) from None
    if not (v > 0 and np.isfinite(v)):
        raise InvalidParameter(field, "must be a finite number > 0", value)
    return v


def subsample(
    x: torch.Tensor, max_points: int | None, generator: torch.Generator | None
) -> torch.Tensor:
    """At most ``max_points`` rows drawn without replacement (all rows if fewer)."""
    if max_points is None or x.shape[0] <= max_points:
        return x
    idx = torch.randperm(x.shape[0], generator=generator)[:max_points]
    return x[idx]


def bootstrap_counts(n: int, n_boot: int, generator: torch.Generator | None) -> torch.Tensor:
    """``[n_boot, n]`` multiplicities of a resample with replacement of n points."""
    idx = torch.randint(0, n, (n_boot, n), generator=generator)
    counts = torch.zeros(n_boot, n, dtype=torch.float64)
    counts.scatter_add_(1, idx, torch.ones_like(idx, dtype=torch.float64))
    return counts


def linearised_resamples(
    theta: float,
    linear,
    solve: Callable[[list[int]], Sequence[float]],
    k: int,
    level: float = 0.95,
) -> np.ndarray:
    """Bootstrap replicates of a statistic θ(w) convex in the resample weights w (an exact OT
    cost as a function of one marginal) from its linearisation at every resample and exact
    solves at k of them: a control variate (Davison & Hinkley 1997, §9.3).

    ``linear`` ``[B]``: L_b = ⟨f, w_b − w⟩ with f an optimal dual potential, so that θ(w_b) =
    θ + L_b + D_b with a convexity gap D_b ≥ 0 (weak duality); D is the resampling bias
    that the basic interval removes, and it varies with L. ``solve([b, …])`` gives θ(w_b)
    exactly for each listed resample (in one call, so that they may be solved side by side);
    it is called for the k resamples whose L ranks next to the interval's two quantiles (k/2
    each side: what the interval reads), D is regressed on L over those (D ≈ α + βL), and
    every other resample gets θ + L_b + max(0, α + βL_b + e_b), e_b cycling through the k
    residuals (scaled by √(k/(k−2)) for the two fitted parameters). Measured on the
    quickstart's W1 and W2 against 400 exact resamples (300 draws of 200 resamples), k = 6 put
    the interval's ends as close to the exact bootstrap's as 25 exact resamples did, or
    closer: RMS
    error 0.006/0.005 (W1, lower/upper end) and 0.006/0.011 (W2) against 0.011/0.006 and
    0.019/0.011, half-widths 0.035 and 0.063."""
    L = np.asarray(linear, dtype=np.float64)
    B = L.size
    k = max(3, min(int(k), B))
    order = np.argsort(L, kind="stable")
    r = min(max(round((1 - level) / 2 * B), 0), B - 1)
    h = k // 2
    start = min(max(r - h // 2, 0), B - k + h)
    low = order[start : start + h]
    high = order[::-1][start : start + k - h]
    chosen = np.unique(np.concatenate([low, high]))
    T = np.asarray(solve([int(b) for b in chosen]), dtype=np.float64)
    D = T - theta - L[chosen]
    m = chosen.size
    if m >= 3 and np.ptp(L[chosen]) > 0:
        beta, alpha = np.polyfit(L[chosen], D, 1)
        resid = (D - alpha - beta * L[chosen]) * np.sqrt(m / (m - 2))
    else:
        beta, alpha, resid = 0.0, float(D.mean()), D - D.mean()
    gap = alpha + beta * L + resid[np.arange(B) % m]
    out = theta + L + np.maximum(gap, 0.0)
    out[chosen] = T
    return out


def percentile_ci(values, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of bootstrap replicates."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return (float("nan"), float("nan"))
    a = (1 - level) / 2
    return (float(np.quantile(v, a)), float(np.quantile(v, 1 - a)))


def basic_ci(value: float, values, level: float = 0.95) -> tuple[float, float]:
    """Basic (reverse-percentile) bootstrap interval [2θ̂ − q_hi, 2θ̂ − q_lo]: removes, to
    first order, the upward bias that resampling with replacement gives OT-type distances."""
    lo, hi = percentile_ci(values, level)
    return (2 * value - hi, 2 * value - lo)
