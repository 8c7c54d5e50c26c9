"""Likelihood by the probability-flow ODE, bits per dimension and uniform dequantisation.

The PF-ODE dx/dt = v(x, t) = f(t)x − ½g(t)² s(x, t) carries p_{t_min} to p_T when s is the
true score. Along a trajectory, d/dt log p_t(x(t)) = −∇·v, so integrating forward from
x(t_min) = x,

    log p_{t_min}(x) = log π(x(T)) + ∫_{t_min}^T ∇·v(x(t), t) dt,   ∇·v = D·f(t) − ½g²(t) ∇·s,

with π the process's prior. ``pf_ode_nll`` integrates [x; ∫∇·v] together and returns the
per-example NLL −log p_{t_min}(x) in nats, split into its prior and trace parts, with the number
of score evaluations (NFE).

What is measured. The ODE starts at ``t_min`` (default ``process.t_min``), not at 0, so the
result is the model's density of the *slightly noised* law p_{t_min}, exactly as score_sde and
the FP-Diffusion code report (they start at ε = 1e-5). For an exact score it equals
``target.log_prob_t(x, t_min, process)`` up to solver error and the prior mismatch
KL(p_T‖π) (negligible for the usual schedules), which is what the oracle tests check. It also
assumes p_T = π at the end, which holds approximately.

Trace: "exact" (D vector–Jacobian products per evaluation; small D) or "hutchinson" (the mean
over ``n_probes`` probes of vᵀJv, with the probes drawn once per solve and held fixed along
the trajectory, as in score_sde). The Hutchinson NLL is unbiased over the probe draws: it is
linear in the integrand, so E_v[NLL_v] is the exact-trace NLL (to solver tolerance).

Solvers: "dopri5" (default), "dopri8", "bosh3" and "adaptive_heun" are torchdiffeq's adaptive
Runge–Kutta methods (``rtol``/``atol``, by default on the largest scaled error of any example:
``error_norm``); "euler", "heun" and "rk4" (classical) are fixed-step loops on a uniform grid of
``steps`` steps. Steps are shared by the batch, except with ``error_norm="per_example"``: the
same tableaus, each example with its own step size and error test, and only the unfinished
examples evaluated (``_per_example_rk``) — the cheapest way to hold every example to the
tolerance (on 10⁴ ring8 points ≈ 0.5× the score evaluations of the shared max norm). The time
variable is the process's own t: integrating in λ = log σ or in σ (on x/m(t), the log-det
carried exactly) took more evaluations on every registered process we measured
(docs/training.md, "Likelihood"). The solve is not differentiable (the result is detached).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .divergence import sample_probes
from .errors import InvalidParameter, NonFinite
from .processes import ForwardProcess
from .protocols import ScoreModel as ScoreFn
from .velocity import has_native_velocity, native_velocity

ADAPTIVE_METHODS = ("dopri5", "dopri8", "bosh3", "adaptive_heun")
FIXED_METHODS = ("euler", "heun", "rk4")
TRACES = ("exact", "hutchinson")
DATA_RANGES = ("[0,1]", "[-1,1]")
ERROR_NORMS = ("rms", "max", "per_example")


def _max_norm(tensors) -> torch.Tensor:
    return torch.stack([t.abs().max() for t in tensors]).max()


@dataclass
class NLLResult:
    """Per-example PF-ODE likelihood of p_{t_min}.

    ``nll`` = −(``prior_log_prob`` + ``delta_log_prob``) in nats ``[B]``; ``prior_log_prob`` =
    log π(x(T)); ``delta_log_prob`` = ∫_{t_min}^T ∇·v dt; ``x_T`` the ODE's end points; ``nfe``
    the number of (batched) score calls, each with its divergence except the per-example
    solver's zero-weight stages; ``nfe_per_example`` the mean number of score evaluations per
    example — ``nfe`` when the batch shares its steps, fewer with ``error_norm="per_example"``,
    whose calls hold only the unfinished examples."""

    nll: torch.Tensor
    prior_log_prob: torch.Tensor
    delta_log_prob: torch.Tensor
    x_T: torch.Tensor
    nfe: int
    t_min: float
    T: float
    method: str
    trace: str
    nfe_per_example: float | None = None

    @property
    def dim(self) -> int:
        return int(self.x_T[0].numel())

    def bits_per_dim(self, data_range: str | None = "[-1,1]", levels: int = 256) -> torch.Tensor:
        """``bits_per_dim`` of this result's NLL (see there)."""
        return bits_per_dim(self.nll, self.dim, data_range=data_range, levels=levels)


def bits_per_dim(
    nll: torch.Tensor | float, dim: int, *, data_range: str | None = "[-1,1]", levels: int = 256
) -> torch.Tensor:
    """Bits per dimension of a continuous NLL (nats) of uniformly dequantised ``levels``-level
    data (8-bit: 256), as a bound on the discrete NLL.

    Derivation. Integer data k ∈ {0, …, L−1}^D, dequantised to y = (k + u)/L ∈ [0, 1]^D with
    u ~ U[0, 1)^D, so each k owns a cell of volume L^{−D} and P(k) = ∫_cell p(y) dy ≥
    L^{−D} exp E_u log p(y) (Jensen). Hence −log₂ P(k) ≤ E_u[−log p(y)]/ln 2 + D log₂ L, and

        bpd = nll/(D ln 2) + log₂ L              (data in [0, 1]: +8 for L = 256).

    For data in [−1, 1], x = 2y − 1 has density p_x = p_y / 2^D, so nll_y = nll_x − D ln 2 and

        bpd = nll/(D ln 2) + log₂ L − 1          (data in [−1, 1]: +7 for L = 256).

    ``data_range=None`` gives plain nll/(D ln 2) (continuous data, no offset).
    """
    if int(dim) < 1:
        raise InvalidParameter("dim", "must be ≥ 1", dim)
    if int(levels) < 2:
        raise InvalidParameter("levels", "must be ≥ 2", levels)
    nll = torch.as_tensor(nll)
    bpd = nll / (int(dim) * math.log(2))
    if data_range is None:
        return bpd
    if data_range == "[0,1]":
        return bpd + math.log2(levels)
    if data_range == "[-1,1]":
        return bpd + math.log2(levels) - 1
    raise InvalidParameter("data_range", "is not a data range", data_range, "[0,1], [-1,1]")


def dequantise(
    x: torch.Tensor,
    generator: torch.Generator | None = None,
    *,
    data_range: str = "[0,1]",
    levels: int = 256,
) -> torch.Tensor:
    """Uniform dequantisation of quantised data.

    ``x`` holds integers k ∈ {0, …, L−1} either as an integer tensor (e.g. uint8) or scaled
    the usual way: k/(L−1) for ``data_range="[0,1]"`` (torchvision's ToTensor) or
    2k/(L−1) − 1 for "[-1,1]". Returns y = (k + u)/L with u ~ U[0, 1), in [0, 1), or 2y − 1 in
    [−1, 1) — the continuous data whose NLL ``bits_per_dim`` converts (float32 unless x is
    floating).
    """
    if data_range not in DATA_RANGES:
        raise InvalidParameter("data_range", "is not a data range", data_range, "[0,1], [-1,1]")
    L = int(levels)
    if L < 2:
        raise InvalidParameter("levels", "must be ≥ 2", levels)
    if x.is_floating_point():
        dtype = x.dtype
        scaled = x.double()
        if data_range == "[-1,1]":
            scaled = (scaled + 1) / 2
        k = torch.round(scaled * (L - 1))
    else:
        dtype = torch.float32
        k = x.double()
    if bool((k < 0).any()) or bool((k > L - 1).any()):
        raise InvalidParameter("x", f"holds values outside the {L} levels of {data_range}")
    u = torch.rand(x.shape, generator=generator, dtype=torch.float64, device=x.device)
    y = (k + u) / L
    if data_range == "[-1,1]":
        y = 2 * y - 1
    return y.to(dtype)


# --------------------------------------------------------------------------------------------
# the PF-ODE
# --------------------------------------------------------------------------------------------


def _divergence_fn(F, trace: str, probes: torch.Tensor | None, batch_size: int | None = None):
    """(x_flat, t) → (s, ∇·s estimate), by vector–Jacobian products in one forward pass.

    ``idx`` (the examples that x holds, for the per-example solver) selects their probes;
    ``div=False`` evaluates the score alone (no graph) and returns None for the divergence.
    ``batch_size``: at most that many examples per forward pass and autograd graph (memory);
    the values do not depend on it, the examples being independent."""

    def fn(x: torch.Tensor, t: torch.Tensor, idx: torch.Tensor | None = None, div: bool = True):
        B = x.shape[0]
        if batch_size is None or B <= batch_size:
            return one(x, t, idx, div)
        if probes is not None and idx is None:
            idx = torch.arange(B, device=x.device)
        parts = [
            one(
                x[i : i + batch_size],
                t[i : i + batch_size],
                None if idx is None else idx[i : i + batch_size],
                div,
            )
            for i in range(0, B, batch_size)
        ]
        s = torch.cat([p[0] for p in parts])
        return s, (torch.cat([p[1] for p in parts]) if div else None)

    def one(x: torch.Tensor, t: torch.Tensor, idx: torch.Tensor | None, div: bool):
        if not div:
            return F(x, t), None
        with torch.enable_grad():
            xl = x.detach().requires_grad_(True)
            s = F(xl, t)
            dv = torch.zeros(x.shape[0], dtype=s.dtype, device=s.device)
            if trace == "exact":
                D = s.shape[1]
                for i in range(D):
                    (g,) = torch.autograd.grad(s[:, i].sum(), xl, retain_graph=i < D - 1)
                    dv = dv + g[:, i]
            else:
                pr = probes if idx is None else probes[:, idx]
                k = pr.shape[0]
                for j in range(k):
                    (g,) = torch.autograd.grad(s, xl, pr[j], retain_graph=j < k - 1)
                    dv = dv + (g * pr[j]).sum(1)
                dv = dv / k
        return s.detach(), dv.detach()

    return fn


def _field_coefficients(process: ForwardProcess, velocity: bool, dtype: torch.dtype):
    """t ↦ (f, g²) of the field f x − ½ g² F: the process's, or (0, −2) when F is the velocity
    itself (so that the field is F and its divergence F's)."""

    def coefs(t64: torch.Tensor):
        if velocity:
            return torch.zeros_like(t64).to(dtype), torch.full_like(t64, -2.0).to(dtype)
        return process.drift_coef(t64).to(dtype), process.diffusion2(t64).to(dtype)

    return coefs


def pf_ode_nll(
    score: ScoreFn,
    process: ForwardProcess,
    x: torch.Tensor,
    *,
    method: str = "dopri5",
    steps: int = 200,
    rtol: float = 1e-5,
    atol: float = 1e-5,
    trace: str = "exact",
    n_probes: int = 1,
    probe: str = "rademacher",
    generator: torch.Generator | None = None,
    t_min: float | None = None,
    prior: Callable[[torch.Tensor], torch.Tensor] | None = None,
    error_norm: str = "max",
    batch_size: int | None = None,
) -> NLLResult:
    """−log p_{t_min}(x) per example by integrating the probability-flow ODE from t_min to T.

    ``score(x, t)`` is any score model (t passed as a ``[B]`` tensor in x's dtype); ``x`` is
    ``[B, *event_shape]`` and the integration runs in x's dtype. ``method``: an adaptive
    torchdiffeq method (``rtol``, ``atol``) or a fixed-step one (``steps``). ``trace``: "exact"
    or "hutchinson" (``n_probes`` ``probe`` vectors from ``generator``, fixed along the
    trajectory). ``t_min`` defaults to ``process.t_min``; see the module docstring for what
    the number means. ``prior`` (x_T ↦ log-density ``[B]``) replaces ``process.prior_log_prob``
    at the end point — e.g. the exact log p_T of a known target, which removes the prior
    mismatch from an oracle comparison. ``error_norm`` (adaptive methods): "max" (default), the
    largest scaled local error of any coordinate of any example, so that every example's NLL
    is held to ``rtol``/``atol`` at every shared step; "rms", the RMS over the whole batch
    (torchdiffeq's and scipy's default, hence score_sde's) — fewer steps (≈ 0.6× on 10⁴ ring8
    points), but one example's error is not bounded by it (up to 1.7e-2 nats at rtol = atol =
    1e-5 there, against ≈ 4e-4 with "max"); "per_example", every example held to the same
    local test with its own steps, so that none is refined for another's sake: ≈ 0.5× the
    score evaluations of "max" there (76.5 per example against 158), at most 5.6e-4 nats off
    the exact value, calls holding only the unfinished examples at their own times (the score
    then sees batches smaller than x and one time per example). ``nfe`` counts the calls,
    ``nfe_per_example`` the evaluations per example. ``batch_size``: the score and its
    divergence are evaluated on at most that many examples at a time (bounds the memory of the
    autograd graph; the solve, its steps and the result are those of the whole batch).
    """
    # a model with a native velocity (``scorelab.velocity``) is integrated as dx/dt = v, which
    # stays finite where f and g² are not (t = 1 of rectified flow)
    velocity = has_native_velocity(score, process)
    t0, T = _checked_span(x, process, method, trace, t_min, error_norm, steps, rtol, atol, velocity)

    B = x.shape[0]
    event = tuple(x.shape[1:])
    dtype, device = x.dtype, x.device
    xf = x.detach().reshape(B, -1)
    D = xf.shape[1]
    probes = None
    if trace == "hutchinson":
        probes = sample_probes(n_probes, (B, D), probe, generator, dtype, device)

    def F(xx: torch.Tensor, tt: torch.Tensor) -> torch.Tensor:
        xs = xx.reshape(-1, *event)
        out = native_velocity(score, process, xs, tt) if velocity else score(xs, tt)
        return out.reshape(xx.shape[0], -1)

    coefs = _field_coefficients(process, velocity, dtype)

    if batch_size is not None and int(batch_size) < 1:
        raise InvalidParameter("batch_size", "must be ≥ 1", batch_size)
    div_fn = _divergence_fn(F, trace, probes, None if batch_size is None else int(batch_size))
    nfe = 0

    def rhs(t: torch.Tensor, state):
        nonlocal nfe
        nfe += 1
        xs = state[0]
        # torchdiffeq's initial-step heuristic may probe beyond T; the field is continued
        # constantly there (steps themselves are clipped to land on T, see step_t)
        t64 = t.detach().to(torch.float64).clamp(max=T)
        t = t64.to(dtype)
        f, g2 = coefs(t64)
        s, div = div_fn(xs, t.expand(B))
        return f * xs - 0.5 * g2 * s, D * f - 0.5 * g2 * div

    def field(t64: torch.Tensor, xs: torch.Tensor, idx: torch.Tensor, with_div: bool = True):
        # per-example times [b] (float64) of the examples idx, for _per_example_rk
        nonlocal nfe
        nfe += 1
        t64 = t64.clamp(max=T)
        f, g2 = coefs(t64)
        s, div = div_fn(xs, t64.to(dtype), idx, with_div)
        v = f[:, None] * xs - 0.5 * g2[:, None] * s
        return v, (None if div is None else D * f - 0.5 * g2 * div)

    state0 = (xf, torch.zeros(B, dtype=dtype, device=device))
    evals = None
    with torch.no_grad():
        if method in ADAPTIVE_METHODS and error_norm == "per_example":
            xT, delta, evals = _per_example_rk(field, xf, t0, T, method, rtol, atol)
        elif method in ADAPTIVE_METHODS:
            from torchdiffeq import odeint

            ts = torch.tensor([t0, T], dtype=dtype, device=device)
            options = {"step_t": ts[1:]}
            if error_norm == "max":
                options["norm"] = _max_norm
            sol = odeint(rhs, state0, ts, rtol=rtol, atol=atol, method=method, options=options)
            xT, delta = sol[0][-1], sol[1][-1]
        else:
            xT, delta = _fixed_steps(rhs, state0, t0, T, int(steps), method, dtype, device)
    end = process.prior_log_prob if prior is None else prior
    prior_lp = torch.as_tensor(end(xT.reshape(B, *event))).to(dtype).reshape(B)
    nll = -(prior_lp + delta)
    per_example = nfe if evals is None else evals / B
    return NLLResult(
        nll, prior_lp, delta, xT.reshape(B, *event), nfe, t0, T, method, trace, per_example
    )


def _checked_span(x, process, method, trace, t_min, error_norm, steps, rtol, atol, velocity):
    """pf_ode_nll's arguments checked (each refusal names its argument); the span
    (t_min, T) of the integration. A model with a native ``velocity`` is not refused where f and
    g² are infinite: its field dx/dt = v stays finite there."""
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.ndim < 2:
        raise InvalidParameter("x", "must be a floating-point tensor [B, *event_shape]", x)
    if method not in ADAPTIVE_METHODS + FIXED_METHODS:
        raise InvalidParameter(
            "method", "is not an ODE method", method, ", ".join(ADAPTIVE_METHODS + FIXED_METHODS)
        )
    if trace not in TRACES:
        raise InvalidParameter("trace", "is not a trace estimator", trace, ", ".join(TRACES))
    t0 = process.t_min if t_min is None else float(t_min)
    T = process.T
    if not (0 <= t0 < T):
        raise InvalidParameter("t_min", "must lie in [0, T)", t0, f"[0, {T:g})")
    if error_norm not in ERROR_NORMS:
        raise InvalidParameter("error_norm", "is not a norm", error_norm, ", ".join(ERROR_NORMS))
    if method in FIXED_METHODS and int(steps) < 1:
        raise InvalidParameter("steps", "must be ≥ 1", steps)
    for name, v in (("rtol", rtol), ("atol", atol)):
        if not (v > 0 and math.isfinite(v)):
            raise InvalidParameter(name, "must be > 0", v)
    for name, v in (("T", T), ("t_min", t0)):
        for c in () if velocity else (process.drift_coef(v), process.diffusion2(v)):
            if not math.isfinite(float(c)):
                raise InvalidParameter(
                    name, "is where the process's coefficients are infinite (clip β)", v
                )
    return t0, T


def _fixed_steps(rhs, state, t0, T, n, method, dtype, device):
    ts = torch.linspace(t0, T, n + 1, dtype=torch.float64)
    x, y = state

    def ev(t, x, y):
        return rhs(torch.as_tensor(t, dtype=dtype, device=device), (x, y))

    for i in range(n):
        a, b = float(ts[i]), float(ts[i + 1])
        h = b - a
        k1 = ev(a, x, y)
        if method == "euler":
            x, y = x + h * k1[0], y + h * k1[1]
        elif method == "heun":
            k2 = ev(b, x + h * k1[0], y + h * k1[1])
            x = x + 0.5 * h * (k1[0] + k2[0])
            y = y + 0.5 * h * (k1[1] + k2[1])
        else:  # classical RK4
            m = a + 0.5 * h
            k2 = ev(m, x + 0.5 * h * k1[0], y + 0.5 * h * k1[1])
            k3 = ev(m, x + 0.5 * h * k2[0], y + 0.5 * h * k2[1])
            k4 = ev(b, x + h * k3[0], y + h * k3[1])
            x = x + h / 6 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
            y = y + h / 6 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
    return x, y


def _per_example_rk(field, x0, t0, T, method, rtol, atol):
    """torchdiffeq's embedded Runge–Kutta ``method`` with one time, step size and error test per
    example; returns (x(T), ∫∇·v, score evaluations summed over examples).

    Each example accepts or rejects its own step on the largest scaled local error of its own
    coordinates, the log-density increment included (atol + rtol·max(|y|, |y_new|) per
    coordinate, as ``error_norm="max"`` but not shared with the batch); only unfinished examples
    are evaluated, at their own times. The log-density increment enters no stage's field, so a
    stage whose weights in the solution and in the error estimate are both zero (dopri5's
    second, dopri8's second to fifth) evaluates the score alone, without its divergence.
    Step-size rule as torchdiffeq's, per example: h ← h·min(10, max(0.2, 0.9·err^(−1/order)))
    (never below h on an accepted step); first step by the rule of Hairer, Nørsett & Wanner
    (Solving ODEs I, §II.4), which torchdiffeq also uses.
    """
    from torchdiffeq._impl.odeint import SOLVERS  # the methods' Butcher tableaus

    solver = SOLVERS[method]
    tab, order = solver.tableau, float(solver.order)
    alpha = [float(a) for a in tab.alpha]
    beta = [[float(b) for b in row] for row in tab.beta]
    c_sol = [float(c) for c in tab.c_sol]
    c_err = [float(c) for c in tab.c_error]
    fsal = c_sol[-1] == 0 and beta[-1] == c_sol[:-1]
    need = [a != 0 or b != 0 for a, b in zip(c_sol, c_err, strict=True)]
    if fsal:  # the last stage is the next step's first
        need[-1] = need[-1] or need[0]

    def comb(weights, ks):
        return sum(w * k for w, k in zip(weights, ks, strict=True) if w != 0)

    B, dtype, device = x0.shape[0], x0.dtype, x0.device
    span = T - t0
    t = torch.full((B,), t0, dtype=torch.float64, device=device)
    x = x0.clone()
    ell = torch.zeros(B, dtype=dtype, device=device)
    active = torch.arange(B, device=device)
    evals = B
    kx, kd = field(t, x, active)
    if not bool(torch.isfinite(kx).all() and torch.isfinite(kd).all()):
        raise NonFinite("per-example PF-ODE solver: the score is not finite at t_min")
    # first step, per example
    sc = atol + rtol * x.abs()
    d0 = (x / sc).abs().amax(1).double()
    d1 = torch.maximum((kx / sc).abs().amax(1), kd.abs() / atol).double()
    h0 = torch.where((d0 < 1e-5) | (d1 < 1e-5), 1e-6, 0.01 * d0 / d1).clamp(max=span)
    fx, _ = field(t + h0, x + h0.to(dtype)[:, None] * kx, active, False)
    evals += B
    d2 = ((fx - kx) / sc).abs().amax(1).double() / h0
    dm = torch.maximum(d1, d2)
    h1 = torch.where(
        dm <= 1e-15, (h0 * 1e-3).clamp(min=1e-6), (0.01 / dm.clamp(min=1e-300)) ** (1 / (order + 1))
    )
    h = torch.minimum(100 * h0, h1).clamp(max=span)
    h = torch.where(torch.isfinite(h), h, h0)  # a non-finite probe: start from h0
    while active.numel():
        ta, xa, la = t[active], x[active], ell[active]
        ha = torch.minimum(h[active], T - ta)
        hx, hl = ha.to(dtype)[:, None], ha.to(dtype)
        ks_x, ks_d = [kx[active]], [kd[active]]
        for i, (a, row) in enumerate(zip(alpha, beta, strict=True)):
            fx, fd = field(ta + a * ha, xa + hx * comb(row, ks_x), active, need[i + 1])
            ks_x.append(fx)
            ks_d.append(fd)
        evals += len(alpha) * active.numel()
        x_new = xa + hx * comb(c_sol, ks_x)
        l_new = la + hl * comb(c_sol, ks_d)
        ex = (hx * comb(c_err, ks_x)).abs() / (atol + rtol * torch.maximum(xa.abs(), x_new.abs()))
        el = (hl * comb(c_err, ks_d)).abs() / (atol + rtol * torch.maximum(la.abs(), l_new.abs()))
        err = torch.nan_to_num(torch.maximum(ex.amax(1), el).double(), nan=math.inf)
        ok = err <= 1
        fac = (0.9 * err.clamp(min=1e-10) ** (-1 / order)).clamp(max=10.0)
        fac = torch.maximum(fac, torch.where(ok, 1.0, 0.2))
        h_new = ha * fac
        if bool((~(ta + h_new > ta) & ~ok).any()):  # also a NaN step
            raise NonFinite("per-example PF-ODE solver: step size underflow (is the score finite?)")
        acc = active[ok]
        h[active] = h_new
        t[acc] = torch.where(T - ta[ok] <= ha[ok], T, ta[ok] + ha[ok])
        x[acc] = x_new[ok]
        ell[acc] = l_new[ok]
        if fsal:
            kx[acc], kd[acc] = ks_x[-1][ok], ks_d[-1][ok]
        elif acc.numel():
            kx[acc], kd[acc] = field(t[acc], x[acc], acc)
            evals += acc.numel()
        active = active[t[active] < T]
    return x, ell, evals
