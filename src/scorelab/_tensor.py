"""Small tensor helpers shared by every module: time handling and shape-agnostic broadcasting."""

from __future__ import annotations

import torch

from .errors import InvalidParameter

Time = float | torch.Tensor


def as_tensor(t: Time, like: torch.Tensor | None = None) -> torch.Tensor:
    """``t`` as a tensor. Python numbers become float64 (oracle precision) unless ``like`` gives
    the dtype and device."""
    if like is not None:
        return torch.as_tensor(t, dtype=like.dtype, device=like.device)
    if isinstance(t, torch.Tensor):
        return t if t.is_floating_point() else t.to(torch.get_default_dtype())
    return torch.as_tensor(t, dtype=torch.float64)


def as_float64(value, field: str) -> torch.Tensor:
    """A user's number, list or nested lists as a float64 tensor, or an ``InvalidParameter``
    naming ``field`` (ragged rows, strings, values beyond float64)."""
    try:
        return torch.as_tensor(value, dtype=torch.float64)
    except (ValueError, TypeError, RuntimeError, OverflowError):
        raise InvalidParameter(
            field,
            "must be a number or nested lists of numbers with rows of equal length",
            value,
        ) from None


def per_example(c: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Reshape a scalar or ``[B]`` coefficient so it broadcasts against ``x`` of shape
    ``[B, ...]`` (vectors and images alike)."""
    c = c.to(dtype=x.dtype, device=x.device)
    if c.ndim == 0:
        return c
    if c.ndim != 1 or c.shape[0] != x.shape[0]:
        raise InvalidParameter(
            "t", f"must be a scalar or have shape [B] = [{x.shape[0]}]", tuple(c.shape)
        )
    return c.reshape(c.shape[0], *([1] * (x.ndim - 1)))


def check_time(t: torch.Tensor, T: float, *, name: str = "t") -> None:
    """Refuse times outside [0, T] with a clear message (a small relative slack absorbs
    round-off in grids)."""
    if t.numel() == 0:
        return
    slack = 1e-9 * max(T, 1.0)
    t = t.detach()  # a time that requires grad (∂_t s by autograd) is still just checked
    lo, hi = float(t.min()), float(t.max())
    if not (lo >= -slack and hi <= T + slack):  # also catches NaN
        bad = lo if not lo >= -slack else hi
        raise InvalidParameter(name, "is outside the process's time interval", bad, f"[0, {T:g}]")


def phi(k: int, x: torch.Tensor) -> torch.Tensor:
    """The exponential-integrator functions φ_k(x) = (e^x − Σ_{j<k} x^j/j!) / x^k, k ∈ {1, 2, 3},
    continuous through x = 0 (Taylor series near 0, where the closed form cancels).

    Written by hand: torch has expm1 but no φ_k, and the schedules need them to be exact and
    continuous through a = 0 (paper A's β_a is linear at a = 0).
    """
    if k not in (1, 2, 3):
        raise ValueError("phi is implemented for k = 1, 2, 3")
    small = x.abs() < 0.1
    xs = torch.where(small, x, torch.zeros_like(x))  # keep the unused branch finite
    xl = torch.where(small, torch.ones_like(x), x)
    # Taylor series of φ_k: Σ_j x^j / (j + k)!; 9 terms give < 1e-16 relative error for |x| < 0.1.
    series = torch.zeros_like(x)
    fact = 1.0
    for j in range(k):
        fact *= j + 1  # k!
    coeffs = []
    f = fact
    for j in range(9):
        coeffs.append(1.0 / f)
        f *= j + k + 1
    for c in reversed(coeffs):
        series = series * xs + c
    if k == 1:
        direct = torch.expm1(xl) / xl
    elif k == 2:
        direct = (torch.expm1(xl) - xl) / xl**2
    else:
        direct = (torch.expm1(xl) - xl - 0.5 * xl**2) / xl**3
    return torch.where(small, series, direct)
