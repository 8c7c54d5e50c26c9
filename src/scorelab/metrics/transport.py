"""Optimal transport: exact W₁/W₂ and the debiased Sinkhorn divergence through POT, and sliced
W₂ by sorting.

* ``wasserstein``: ``ot.emd2`` (network simplex) with uniform weights on both point clouds and
  cost ‖x−y‖^p; each side is subsampled without replacement to ``max_points`` (default 5000,
  about 6 s and 400 MB for 5000×5000) with the caller's generator.
* ``sinkhorn_divergence``: S_ε(a, b) = OT_ε(a, b) − ½OT_ε(a, a) − ½OT_ε(b, b) with squared
  Euclidean cost, where OT_ε = ⟨P, C⟩ + ε KL(P ‖ a⊗b) is the full entropic objective at the
  Sinkhorn plan P (``entropic_ot_batch``, which solves many weight vectors on one cost matrix
  at once; ``entropic_ot``, i.e. ``ot.sinkhorn`` with the exact plan or the log-domain solver,
  where its kernel under/overflows).
* ``sliced_w2``: √(E_θ W₂²(θᵀx, θᵀy)) over uniform directions θ, each 1-D W₂ exact from sorted
  projections (unequal sizes through the merged quantile grid). Written here in torch because
  ``ot.sliced_wasserstein_distance`` takes ~90 s for 10⁶ points in d = 64 with 50 directions;
  the tests check both agree.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch

from ..errors import InvalidParameter, ScorelabError
from ._checks import as_points, positive_float, positive_int, same_dim, subsample

MAX_POINTS_EXACT = 5000
MAX_POINTS_SINKHORN = 2000
_SLICE_ELEMENTS = 1 << 24


def _ot():
    """POT, imported on first use: it costs ~1 s, which every process importing the metrics
    (a sweep's workers, `scorelab sample`) would pay otherwise."""
    import ot

    return ot


def cost_matrix(x: torch.Tensor, y: torch.Tensor, p: int = 2) -> np.ndarray:
    """‖x_i − y_j‖^p as a float64 numpy array ``[n, m]``."""
    d2 = torch.cdist(x, y).pow(2) if p == 2 else torch.cdist(x, y).pow(p)
    return d2.numpy()


def emd_cost(a: np.ndarray, b: np.ndarray, M: np.ndarray) -> float:
    """min_P ⟨P, M⟩ over couplings of the weights a, b (exact, network simplex)."""
    if not np.all(np.isfinite(M)):
        raise InvalidParameter(
            "samples",
            "are so far apart that their squared distances overflow float64",
            f"max |x − y|² = {float(np.max(M)):g}",
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # POT warns, then says so in the log as well
        value, log = _ot().emd2(a, b, M, numItermax=1_000_000_000, log=True)
    if log.get("warning"):
        raise ScorelabError(f"exact OT did not converge ({log['warning']})")
    return float(value)


def emd_cost_and_potential(a: np.ndarray, b: np.ndarray, M: np.ndarray) -> tuple[float, np.ndarray]:
    """``emd_cost`` and an optimal dual potential f of the first marginal (``[n]``): with its
    partner g, f_i + g_j ≤ M_ij everywhere and ⟨f, a⟩ + ⟨g, b⟩ = the cost, so that for every
    other a′, min_P ⟨P, M⟩ over couplings of (a′, b) ≥ cost + ⟨f, a′ − a⟩ (weak duality)."""
    if not np.all(np.isfinite(M)):
        emd_cost(a, b, M)  # raises the overflow error
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value, log = _ot().emd2(a, b, M, numItermax=1_000_000_000, log=True, center_dual=True)
    if log.get("warning"):
        raise ScorelabError(f"exact OT did not converge ({log['warning']})")
    return float(value), np.asarray(log["u"], dtype=np.float64)


def _emd_plan(a: np.ndarray, b: np.ndarray, M: np.ndarray) -> np.ndarray | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plan, log = _ot().emd(a, b, M, numItermax=1_000_000_000, log=True)
    return None if log.get("warning") else plan


# The plain Sinkhorn kernel e^{−M/ε} underflows when the points are far apart relative to ε;
# OT_ε then differs from exact OT by at most ε·log min(n, m) (the KL term of any coupling of a
# and b is at most min(H(a), H(b))). Where that is below this fraction of the exact cost, the
# exact plan stands in for the Sinkhorn plan (seconds) instead of the log-domain solver
# (minutes when the points are far apart).
EXACT_FALLBACK_REL = 1e-2
LOG_DOMAIN_ITERATIONS = 1000


def _check_p(p) -> int:
    if p not in (1, 2):
        raise InvalidParameter("p", "is not supported", p, "1 or 2")
    return int(p)


def _pair(x, y, min_n: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    x = as_points(x, "x", min_n=min_n)
    y = as_points(y, "y", min_n=min_n)
    same_dim(x, y)
    return x, y


def wasserstein(
    x,
    y,
    p: int = 2,
    *,
    max_points: int | None = MAX_POINTS_EXACT,
    generator: torch.Generator | None = None,
) -> float:
    """Exact W_p (p = 1 or 2) between the empirical measures of ``x`` ``[n, ...]`` and ``y``
    ``[m, ...]``; each side is subsampled without replacement above ``max_points``."""
    p = _check_p(p)
    x, y = _pair(x, y)
    if max_points is not None:
        positive_int("max_points", max_points)
    x, y = subsample(x, max_points, generator), subsample(y, max_points, generator)
    a = np.full(x.shape[0], 1.0 / x.shape[0])
    b = np.full(y.shape[0], 1.0 / y.shape[0])
    return emd_cost(a, b, cost_matrix(x, y, p)) ** (1.0 / p)


def w1(x, y, **kw) -> float:
    """Exact W₁ (Euclidean cost); see ``wasserstein``."""
    return wasserstein(x, y, 1, **kw)


def w2(x, y, **kw) -> float:
    """Exact W₂ (squared Euclidean cost, then the square root); see ``wasserstein``."""
    return wasserstein(x, y, 2, **kw)


# --- entropic OT -------------------------------------------------------------------------------


def entropic_ot(a: np.ndarray, b: np.ndarray, M: np.ndarray, eps: float) -> float:
    """OT_ε(a, b) = ⟨P, M⟩ + ε KL(P ‖ a⊗b) at the Sinkhorn plan P."""
    plan = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with np.errstate(all="ignore"):
            P = _ot().sinkhorn(a, b, M, eps, method="sinkhorn", numItermax=3000, stopThr=1e-6)
    if np.all(np.isfinite(P)) and abs(P.sum() - 1) < 1e-6:
        err = np.abs(P.sum(1) - a).sum() + np.abs(P.sum(0) - b).sum()
        if err < 1e-4:
            plan = P
    if plan is None:  # K = e^{−M/ε} underflowed
        exact = _emd_plan(a, b, M)
        cost = float(np.sum(exact * M)) if exact is not None else math.inf
        bound = eps * math.log(max(2, min(len(a), len(b))))
        if exact is not None and bound <= EXACT_FALLBACK_REL * cost:
            warnings.warn(
                f"Sinkhorn: ε = {eps:.3g} is tiny beside the transport cost {cost:.3g}; the "
                f"exact OT plan is used (OT_ε within ε·log n = {bound:.3g} of it)",
                stacklevel=2,
            )
            plan = exact
        else:  # the (slower) log-domain solver, with a cap on its iterations
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                Pt = _ot().sinkhorn(
                    torch.from_numpy(a),
                    torch.from_numpy(b),
                    torch.from_numpy(M),
                    eps,
                    method="sinkhorn_log",
                    numItermax=LOG_DOMAIN_ITERATIONS,
                    stopThr=1e-9,
                )
            plan = Pt.numpy()
            if any("converge" in str(w.message) for w in caught):
                warnings.warn(
                    f"Sinkhorn: the log-domain solver stopped after {LOG_DOMAIN_ITERATIONS} "
                    "iterations without converging; the value is approximate",
                    stacklevel=2,
                )
    pos = plan > 0
    ab = np.outer(a, b)
    kl = float(np.sum(plan[pos] * np.log(plan[pos] / ab[pos])))
    return float(np.sum(plan * M)) + eps * kl


# --- batched Sinkhorn on a shared kernel ----------------------------------------------------
#
# The bootstrap of the Sinkhorn divergence solves OT_ε(a_b, b) and OT_ε(a_b, a_b) for 25
# resamples a_b of the same points: the cost matrix is shared, only the weights change. POT
# solves one problem per call, with matrix–vector products; here all the weight vectors are
# the columns of one matrix, so each Sinkhorn step is one matrix–matrix product (BLAS-3, ≈ 3×
# cheaper per problem at 26 columns). Two standard accelerations cut the number of steps:
#
# * OT_ε(a, b), a ≠ b: over-relaxed Sinkhorn (Thibault, Chizat, Dossal & Papadakis 2017,
#   "Overrelaxed Sinkhorn–Knopp algorithm for regularized optimal transport"), u ←
#   u^{1−ω}(a/Kv)^ω with ω = 2/(1 + √(1 − ρ)) from the rate ρ of plain steps (measured on the
#   quickstart: 60–70 steps instead of 330–420), falling back to plain steps (ω = 1, which
#   converge from any start) as soon as the error fails to fall; most steps in float32, the
#   last ones (and the test) in float64;
# * OT_ε(a, a): the symmetric fixed point u = a/(Ku) with averaging in log space, u ←
#   √(u · a/(Ku)) (Knight 2008; Feydy et al. 2019, "Interpolating between optimal transport and
#   MMD"): ≈ 20 steps instead of ≈ 360.
#
# Both stop on the same criterion as ``entropic_ot`` (each column's marginal error, here in
# L1 rather than POT's L2, so at least as tight). Where the kernel under/overflows (points
# far apart beside ε) or a column does not converge, they return None and the callers fall
# back to ``entropic_ot`` one problem at a time.

SINKHORN_TOL = 1e-6
SINKHORN_MAX_ITER = 3000
_CHECK_EVERY = 10
_MAX_OMEGA = 1.9


def _ot_value(K, u, v, a, b, eps: float) -> torch.Tensor:
    """OT_ε = ⟨P, M⟩ + ε KL(P ‖ a⊗b) at P = diag(u) K diag(v), per column. With log P_ij =
    log u_i + log v_j − M_ij/ε this is ε[Σ_i r_i log(u_i/a_i) + Σ_j c_j log(v_j/b_j)], r and c
    the plan's own marginals (exact for P, converged or not; zero weights drop out)."""

    def half(w, s, m):
        pos = m > 0
        return torch.where(pos, w * torch.log(torch.where(pos, s / m, 1.0)), 0.0).sum(0)

    r, c = u * (K @ v), v * (K.T @ u)
    return eps * (half(r, u, a) + half(c, v, b))


def _finite(*ts) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in ts)


def entropic_ot_batch(
    M: torch.Tensor,
    a: torch.Tensor,
    b: torch.Tensor | None,
    eps: float,
    *,
    tol: float = SINKHORN_TOL,
    max_iter: int = SINKHORN_MAX_ITER,
) -> np.ndarray | None:
    """OT_ε(a_k, b_k) for the columns of ``a`` ``[n, k]`` and ``b`` ``[m, k]`` (or ``[m]``, the
    same for every column) on one cost matrix ``M`` ``[n, m]``; ``b=None``: the symmetric
    OT_ε(a_k, a_k) (M square). Weights may be zero. None where the fast path fails (kernel
    under/overflow, no convergence): use ``entropic_ot`` then."""
    M = torch.as_tensor(M, dtype=torch.float64)
    a = torch.as_tensor(a, dtype=torch.float64)
    a = a[:, None] if a.ndim == 1 else a
    with np.errstate(all="ignore"):
        K = torch.exp(-M / eps)
        if b is None:
            u = _symmetric_scaling(K, a, tol, max_iter)
            if u is None:
                return None
            out = _ot_value(K, u, u, a, a, eps)
        else:
            b = torch.as_tensor(b, dtype=torch.float64)
            b = (b[:, None] if b.ndim == 1 else b).expand(M.shape[1], a.shape[1])
            uv = _overrelaxed_scalings(K, a, b, tol, max_iter)
            if uv is None:
                return None
            out = _ot_value(K, *uv, a, b, eps)
    return out.numpy() if _finite(out) else None


def _symmetric_scaling(K, a, tol, max_iter):
    pos = a > 0
    u = a.clone()
    for _ in range(max_iter):
        Ku = K @ u  # the error of u and its next step both read it
        err = float((u * Ku - a).abs().sum(0).max())
        if not math.isfinite(err):
            return None
        if err < tol:
            return u
        u = torch.where(pos, torch.sqrt(u * a / Ku), 0.0)
    return None


def _overrelaxed_scalings(K, a, b, tol, max_iter):
    # the products in float32 first (≈ 3× cheaper on CPU) down to 10·tol, then in float64
    # from there: the float64 steps alone decide convergence, float32 only shortens the way
    first = _overrelaxed(K.float(), a.float(), b.float(), 10 * tol, max_iter, None, None)
    if first is not None:
        out = _overrelaxed(K, a, b, tol, max_iter, first[0].double(), first[2])
        if out is not None:
            return out[:2]
    out = _overrelaxed(K, a, b, tol, max_iter, None, None)
    return None if out is None else out[:2]


def _overrelaxed(K, a, b, tol, max_iter, u0, omega):
    """Over-relaxed Sinkhorn from the scaling u0 (None: ones) with the relaxation ``omega``
    (None: estimated from the first plain steps); (u, v, ω) once every column's marginal error
    is below tol, None where it does not get there (non-finite values, plain steps that do not
    lower the error — float32's floor —, or max_iter). The error of (u, v) is read off the
    product Kv that the next step needs anyway, so it is tested at every step."""
    pos_a, pos_b = a > 0, b > 0
    u = torch.where(pos_a, 1.0, 0.0).to(a.dtype) if u0 is None else u0
    v = torch.where(pos_b, b / (K.T @ u), 0.0)
    w = 1.0 if omega is None else omega
    errs = []
    for it in range(max_iter):
        Kv = K @ v
        err = float((u * Kv - a).abs().sum(0).max())  # NaN or inf where u, v or Kv are
        if not math.isfinite(err):
            return None
        if err < tol:
            return u, v, w
        errs.append(err)
        # progress is judged over _CHECK_EVERY steps (over-relaxed ones can rise in between)
        if it and it % _CHECK_EVERY == 0:
            if err >= errs[-1 - _CHECK_EVERY]:
                if w == 1.0:
                    return None  # plain steps never raise the error: this is round-off
                w = 1.0  # not contracting: plain Sinkhorn steps from here
            elif omega is None and w == 1.0 and it == 2 * _CHECK_EVERY:
                # rate of the plain steps → the over-relaxation that is optimal for it
                rho = (err / errs[-1 - _CHECK_EVERY]) ** (1 / _CHECK_EVERY)
                w = min(_MAX_OMEGA, 2 / (1 + math.sqrt(1 - rho)))
        if w == 1.0:
            u = torch.where(pos_a, a / Kv, 0.0)
            v = torch.where(pos_b, b / (K.T @ u), 0.0)
        else:
            u = torch.where(pos_a, u.pow(1 - w) * (a / Kv).pow(w), 0.0)
            v = torch.where(pos_b, v.pow(1 - w) * (b / (K.T @ u)).pow(w), 0.0)
    return None


def entropic_ot_many(M: np.ndarray, a: np.ndarray, b: np.ndarray | None, eps: float) -> np.ndarray:
    """``entropic_ot_batch``, falling back column by column to ``entropic_ot`` where it fails
    (b=None: the symmetric problems)."""
    out = entropic_ot_batch(
        torch.from_numpy(np.asarray(M)),
        torch.from_numpy(a),
        (None if b is None else torch.from_numpy(b)),
        eps,
    )
    if out is not None:
        return out
    a2 = a[:, None] if a.ndim == 1 else a
    vals = []
    for k in range(a2.shape[1]):
        ak = a2[:, k]
        keep = ak > 0
        if b is None:
            vals.append(entropic_ot(ak[keep], ak[keep], M[np.ix_(keep, keep)], eps))
        else:
            bk = b if b.ndim == 1 else b[:, k]
            vals.append(entropic_ot(ak[keep], bk, M[keep], eps))
    return np.asarray(vals)


def default_eps(y: torch.Tensor, rel: float = 0.05) -> float:
    """ε = rel × the mean squared distance between two independent draws of y's law
    (= 2 tr Cov(y)), so the blur scales with the data."""
    return max(rel * 2.0 * float(y.var(0).sum()), 1e-12)


def sinkhorn_divergence(
    x,
    y,
    eps: float | None = None,
    *,
    max_points: int | None = MAX_POINTS_SINKHORN,
    generator: torch.Generator | None = None,
) -> float:
    """Debiased Sinkhorn divergence S_ε (squared-Euclidean cost, units of distance²);
    ``eps=None`` uses ``default_eps(y)``."""
    x, y = _pair(x, y, min_n=2)
    eps = default_eps(y) if eps is None else positive_float("eps", eps)
    if max_points is not None:
        positive_int("max_points", max_points, 2)
    x, y = subsample(x, max_points, generator), subsample(y, max_points, generator)
    a = np.full(x.shape[0], 1.0 / x.shape[0])
    b = np.full(y.shape[0], 1.0 / y.shape[0])
    return sinkhorn_from_costs(a, b, cost_matrix(x, y), cost_matrix(x, x), cost_matrix(y, y), eps)


def sinkhorn_from_costs(a, b, Mxy, Mxx, Myy, eps: float) -> float:
    return float(
        entropic_ot_many(Mxy, a, b, eps)[0]
        - 0.5 * entropic_ot_many(Mxx, a, None, eps)[0]
        - 0.5 * entropic_ot_many(Myy, b, None, eps)[0]
    )


# --- sliced W2 ------------------------------------------------------------------------------


def random_directions(
    dim: int, n_projections: int, generator: torch.Generator | None
) -> torch.Tensor:
    """``[dim, n_projections]`` unit vectors, uniform on the sphere."""
    th = torch.randn(dim, n_projections, generator=generator, dtype=torch.float64)
    return th / th.norm(dim=0, keepdim=True)


def _w2sq_sorted(xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
    """W₂² per row between sorted 1-D samples ``[P, n]`` and ``[P, m]`` (uniform weights)."""
    n, m = xs.shape[1], ys.shape[1]
    if n == m:
        return ((xs - ys) ** 2).mean(1)
    u = torch.cat(
        [torch.arange(1, n + 1, dtype=torch.float64) / n, torch.arange(1, m + 1) / m]
    ).unique()
    du = torch.diff(u, prepend=u.new_zeros(1))
    mid = u - du / 2
    ix = (mid * n).floor().long().clamp(max=n - 1)
    iy = (mid * m).floor().long().clamp(max=m - 1)
    return (du * (xs[:, ix] - ys[:, iy]) ** 2).sum(1)


def sliced_w2(
    x,
    y,
    n_projections: int = 256,
    *,
    generator: torch.Generator | None = None,
    projections: torch.Tensor | None = None,
    dtype: torch.dtype = torch.float64,
) -> float:
    """Sliced W₂ = √(mean over directions of the exact 1-D W₂²). Directions are drawn with
    ``generator`` unless given as ``projections`` ``[D, P]``. ``dtype=torch.float32`` halves
    memory and time for very large inputs."""
    x, y = _pair(x, y)
    D = x.shape[1]
    if projections is None:
        positive_int("n_projections", n_projections)
        projections = random_directions(D, n_projections, generator)
    else:
        projections = torch.as_tensor(projections, dtype=torch.float64)
        if projections.ndim != 2 or projections.shape[0] != D:
            raise InvalidParameter("projections", f"must have shape [{D}, P]", projections.shape)
    P = projections.shape[1]
    step = max(1, _SLICE_ELEMENTS // max(x.shape[0], y.shape[0]))
    xd, yd, th = x.to(dtype), y.to(dtype), projections.to(dtype)
    total = 0.0
    for i in range(0, P, step):
        t = th[:, i : i + step].T.contiguous()  # [p, D]: projections as contiguous rows
        xs = torch.sort(t @ xd.T, dim=1).values.double()
        ys = torch.sort(t @ yd.T, dim=1).values.double()
        total += float(_w2sq_sorted(xs, ys).sum())
    return math.sqrt(max(total / P, 0.0))


def sliced_w2_resamples(
    x: torch.Tensor, y: torch.Tensor, projections: torch.Tensor, counts: torch.Tensor
) -> list[float]:
    """``sliced_w2`` between each bootstrap resample of x, given as multiplicities ``counts``
    ``[B, n]`` (``_checks.bootstrap_counts``), and y, on the given directions. x and y are
    projected and sorted once per chunk of directions: a resample's sorted projections are
    x's sorted projections repeated by their multiplicities (no sort per resample)."""
    th = projections.to(torch.float64)
    P = th.shape[1]
    c = counts.numpy().astype(np.int64)
    step = max(1, _SLICE_ELEMENTS // max(x.shape[0], y.shape[0], int(c[0].sum())))
    totals = np.zeros(c.shape[0])
    for i in range(0, P, step):
        t = th[:, i : i + step].T.contiguous()
        px = (t @ x.T).numpy()
        order = np.argsort(px, axis=1)  # numpy's sort: ≈ 3× torch's on CPU here
        sx = np.take_along_axis(px, order, 1).ravel()
        ys = torch.from_numpy(np.sort((t @ y.T).numpy(), axis=1))
        for b in range(c.shape[0]):
            xs = np.repeat(sx, c[b][order].ravel()).reshape(t.shape[0], -1)
            totals[b] += float(_w2sq_sorted(torch.from_numpy(xs), ys).sum())
    return [math.sqrt(max(v / P, 0.0)) for v in totals]
