"""Paper A (Strasman et al., TMLR 2025): computable KL and W2 bounds for VP diffusions.

Setting (docs/theory.md §9.1): dX = −β/(2σ²) X dt + √β dB with stationary law π∞ = N(0, σ² I)
(σ = σ∞), sampled backwards on the uniform grid t_k = k h, h = T/N (the authors' code uses
h = 1/N, which assumes T = 1; we use h = T/N).

KL(π_data ‖ π̂_N) ≤ E1 + E2 + E3 with
    E1 = KL(π_data ‖ π∞) e^{−B(T)/σ²}                   (e^{−B(T)/(2σ²)} without contraction)
    E2 = Σ_k [B(T − t_k) − B(T − t_{k+1})] E‖s_θ − ∇log p‖²(T − t_k)
    E3 = 2 h β(T) max(h β(T)/(4σ²), 1) I(π_data | π∞).

W2(π_data, π̂_N) ≤ mixing + approx_discretization + score_error + time_regularity
(docs/theory.md §9.2), for C_0-strongly log-concave, L_0-smooth data (here: Gaussian data,
C_0 = 1/λ_max, L_0 = 1/λ_min).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import InvalidParameter
from ..metrics.gaussian import kl_gaussians, w2_gaussians
from ..processes import VP
from ..schedules import ConstantBeta
from .assumptions import (
    F64,
    AssumptionFailed,
    BoundTable,
    Estimate,
    check_nonneg,
    check_positive_int,
    gaussian_params,
    generator_or_default,
    require_vp,
    second_moment,
    trapezoid,
)

#: trapezoid sub-intervals per sampler step for the W2 integrals (∫C_t β, ℒ_k)
W2_SUBSTEPS = 64


def _target_name(target) -> str:
    return getattr(target, "kind", type(target).__name__)


def _require_density(target, bound: str) -> None:
    if not getattr(target, "has_density", False):
        raise AssumptionFailed(
            bound,
            f"target '{_target_name(target)}' has no Lebesgue density (e.g. it lives on a "
            "manifold or a finite set), so KL(π_data ‖ π∞) and the relative Fisher "
            "information are infinite",
        )


def _data_score(target, x: torch.Tensor, sigma_inf: float) -> torch.Tensor:
    """∇log π_data(x) at t = 0: the target's exact score, or autograd of its log-density."""
    if getattr(target, "has_score", False) and not getattr(target, "singular", False):
        proc = VP(ConstantBeta(1.0), sigma_inf=sigma_inf, t_min=0.0)
        return target.score(x, 0.0, proc)
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(target.log_prob(x).sum(), x)
    return grad


def _check_method(method: str) -> str:
    if method not in ("auto", "closed_form", "monte_carlo"):
        raise InvalidParameter("method", "is not known", method, "auto, closed_form, monte_carlo")
    return method


def relative_fisher(
    target, sigma_inf: float = 1.0, n_mc: int = 4000, generator=None, method: str = "auto"
) -> Estimate:
    """I(π_data | N(0, σ²I)) = E‖∇log π_data(X) + X/σ²‖².

    Closed form for a Gaussian, (tr Σ + ‖μ‖²)/σ⁴ − 2d/σ² + tr Σ⁻¹; Monte Carlo (mean ± s.e.
    of n_mc draws) for any other target with a density (or when ``method="monte_carlo"``).
    """
    sigma_inf = float(sigma_inf)
    if not (sigma_inf > 0 and math.isfinite(sigma_inf)):
        raise InvalidParameter("sigma_inf", "must be > 0", sigma_inf)
    n_mc = check_positive_int("n_mc", n_mc, 2)
    _require_density(target, "kl")
    g = gaussian_params(target)
    v = sigma_inf**2
    if _check_method(method) == "closed_form" and g is None:
        raise InvalidParameter("method", "closed_form needs a Gaussian target", method)
    if g is not None and method != "monte_carlo":
        d = g.mean.shape[0]
        val = (np.trace(g.cov) + g.mean @ g.mean) / v**2 - 2 * d / v + np.sum(1 / g.eigvals)
        return Estimate(float(val), 0.0, "closed_form")
    x = target.sample(n_mc, generator_or_default(generator), dtype=F64)
    r = (_data_score(target, x, sigma_inf) + x / v).reshape(n_mc, -1)
    sq = (r**2).sum(1)
    return Estimate(float(sq.mean()), float(sq.std() / math.sqrt(n_mc)), "monte_carlo")


def kl_to_stationary(
    target, sigma_inf: float = 1.0, n_mc: int = 4000, generator=None, method: str = "auto"
) -> Estimate:
    """KL(π_data ‖ N(0, σ²I)): closed form for a Gaussian (docs/theory.md §8.4), else Monte Carlo of
    E[log π_data(X) − log N(X; 0, σ²I)]."""
    sigma_inf = float(sigma_inf)
    if not (sigma_inf > 0 and math.isfinite(sigma_inf)):
        raise InvalidParameter("sigma_inf", "must be > 0", sigma_inf)
    n_mc = check_positive_int("n_mc", n_mc, 2)
    _require_density(target, "kl")
    g = gaussian_params(target)
    v = sigma_inf**2
    if _check_method(method) == "closed_form" and g is None:
        raise InvalidParameter("method", "closed_form needs a Gaussian target", method)
    if g is not None and method != "monte_carlo":
        d = g.mean.shape[0]
        return Estimate(kl_gaussians(g.mean, g.cov, np.zeros(d), v), 0.0, "closed_form")
    x = target.sample(n_mc, generator_or_default(generator), dtype=F64)
    flat = x.reshape(n_mc, -1)
    d = flat.shape[1]
    log_ref = -0.5 * (flat**2).sum(1) / v - 0.5 * d * math.log(2 * math.pi * v)
    diff = target.log_prob(x).to(F64) - log_ref
    return Estimate(float(diff.mean()), float(diff.std() / math.sqrt(n_mc)), "monte_carlo")


def score_mse(target, process, times, score_model, n_mc: int = 500, generator=None):
    """E‖s_θ(X_t, t) − ∇log p_t(X_t)‖² at each forward time t (Monte Carlo over n_mc marginal
    draws X_t = m x₀ + s z; the target's exact score is the reference). Returns an array."""
    if not getattr(target, "has_score", False):
        raise AssumptionFailed(
            "score error",
            f"target '{_target_name(target)}' has no exact score to measure the model against; "
            "pass score_error instead",
        )
    n_mc = check_positive_int("n_mc", n_mc, 1)
    gen = generator_or_default(generator)
    out = []
    for t in times:
        x0 = target.sample(n_mc, gen, dtype=F64)
        xt = process.sample_marginal(x0, float(t), generator=gen)
        with torch.no_grad():
            diff = score_model(xt, float(t)).to(F64) - target.score(xt, float(t), process)
        out.append(float((diff.reshape(n_mc, -1) ** 2).sum(1).mean()))
    return np.array(out)


@dataclass(frozen=True)
class KLBound(BoundTable):
    """Paper A's KL bound: its three terms and what they were computed from.

    Attributes:
        mixing: E1 = KL(π_data ‖ π∞) e^{−B(T)/σ²}.
        approximation: E2, the score error's term (0 for the exact score).
        discretization: E3 = 2hβ(T) max(hβ(T)/(4σ²), 1) I(π_data | π∞).
        total: E1 + E2 + E3.
        kl_stationary: KL(π_data ‖ π∞), an ``Estimate`` (closed form or Monte Carlo with its
            standard error).
        fisher: I(π_data | π∞), an ``Estimate``.
        h: The step T/N.
        B_T: B(T) = ∫₀ᵀ β.
        beta_T: β(T), the sup of β.

    Shown in Jupyter and Rich as a table (``scorelab.display``); ``to_dict()`` and
    ``to_frame()`` give its rows.
    """

    TITLE = "paper A's KL bound"

    mixing: float
    approximation: float
    discretization: float
    total: float
    kl_stationary: Estimate
    fisher: Estimate
    h: float
    B_T: float
    beta_T: float

    def terms(self) -> dict:
        """The bound's terms and total, by name (what ``all_bounds`` reports)."""
        return {k: getattr(self, k) for k in ("mixing", "approximation", "discretization", "total")}


def kl_bound(
    target,
    process,
    N: int,
    score_model=None,
    contraction: bool = True,
    n_mc: int = 500,
    generator=None,
    score_error: float = 0.0,
) -> KLBound:
    r"""Paper A's KL bound for N uniform steps of size h = T/N from T to 0 (docs/theory.md §9.1):

    \[
    \begin{aligned}
    \mathrm{KL}(\pi_{\rm data}\,\|\,\hat\pi_N) \le{}&
    \underbrace{\mathrm{KL}(\pi_{\rm data}\,\|\,\pi_\infty)\,
      e^{-B(T)/\sigma^2}}_{E_1\ \text{mixing}}
    + \underbrace{\varepsilon^2 B(T)}_{E_2\ \text{approximation}}\\
    &+ \underbrace{2h\beta(T)\max\Big(\frac{h\beta(T)}{4\sigma^2}, 1\Big)
      I(\pi_{\rm data}\mid\pi_\infty)}_{E_3\ \text{discretisation}}
    \end{aligned}
    \]

    with σ = σ∞ and B(T) = ∫₀ᵀ β. KL(π_data ‖ π∞) and the relative Fisher information I are
    closed forms for a Gaussian target and Monte Carlo estimates (with their standard errors
    in the result) otherwise. The process's ``t_min`` is ignored: the bound is for sampling
    down to t = 0.

    Args:
        target: A target with a Lebesgue density (not a manifold or empirical law).
        process: A VP process with a finite, non-decreasing β.
        N: The number of uniform steps.
        score_model: When given, E2 is measured by Monte Carlo (``n_mc`` draws per step, the
            target's exact score as the reference) instead of ε²·B(T).
        contraction: Use the log-Sobolev contraction e^{−B(T)/σ²} in E1 (False: the older
            e^{−B(T)/(2σ²)}).
        n_mc: Monte Carlo draws per time for a measured E2.
        generator: Drives the Monte Carlo draws.
        score_error: ε, a uniform L² bound sup_t (E‖s_θ − ∇log p_t‖²)^{1/2} (0: the exact
            score).

    Returns:
        A ``KLBound`` with the terms ``mixing`` (E1), ``approximation`` (E2),
        ``discretization`` (E3), ``total``, and the estimates they used.

    Raises:
        AssumptionFailed: A non-VP process, an infinite or decreasing β, or a target without
            a density; the message gives the reason.

    Examples:
        Paper A's Gaussian N(1, 0.5 I) in d = 10 with the linear schedule, exact score:

        >>> import scorelab
        >>> from scorelab import bounds
        >>> target = scorelab.build_target({"kind": "gaussian", "dim": 10, "mean": 1.0, "cov": 0.5})
        >>> linear = {"kind": "parametric", "a": 0.0}  # paper A's β_a at a = 0
        >>> process = scorelab.build_process({"kind": "vp", "schedule": linear})
        >>> b = bounds.kl_bound(target, process, N=100)
        >>> round(b.discretization, 3), round(b.total, 5)
        (6.0, 6.00026)
    """
    N = check_positive_int("N", N)
    eps = check_nonneg("score_error", score_error)
    B_T, beta_T = require_vp(process, "kl")
    v = process.sigma_inf**2
    T = process.T
    h = T / N
    kl0 = kl_to_stationary(target, process.sigma_inf, max(n_mc, 4000), generator)
    fisher = relative_fisher(target, process.sigma_inf, max(n_mc, 4000), generator)
    rate = 1.0 / v if contraction else 1.0 / (2 * v)
    e1 = kl0.value * math.exp(-B_T * rate)
    if score_model is None:
        e2 = eps**2 * B_T
    else:
        t_back = T - h * np.arange(N + 1)  # T − t_k, k = 0..N
        t_back[-1] = 0.0
        B = process.schedule.integral(torch.as_tensor(t_back, dtype=F64)).numpy()
        w = B[:-1] - B[1:]
        e2 = float(w @ score_mse(target, process, t_back[:-1], score_model, n_mc, generator))
    e3 = 2 * h * beta_T * max(h * beta_T / (4 * v), 1.0) * fisher.value
    return KLBound(e1, e2, e3, e1 + e2 + e3, kl0, fisher, h, B_T, beta_T)


# --- W2 -------------------------------------------------------------------------------------


def _require_log_concave(target):
    g = gaussian_params(target)
    if g is not None:
        return g
    name = _target_name(target)
    mixture = target.gaussian_mixture()
    if mixture is not None and mixture[0].shape[0] > 1:
        why = (
            f"target '{name}' is a Gaussian mixture, which is not log-concave in general, so "
            "the strong log-concavity constant C_0 > 0 the W2 bound needs does not exist"
        )
    elif getattr(target, "singular", False) or not getattr(target, "has_density", True):
        why = (
            f"target '{name}' has no density (singular support): it is neither strongly "
            "log-concave nor L_0-smooth"
        )
    else:
        why = (
            f"target '{name}': strong log-concavity (C_0) and smoothness (L_0) are only "
            "certified for Gaussian targets"
        )
    raise AssumptionFailed("w2", why)


def w2_integrals(target, process, N: int, n_sub: int = W2_SUBSTEPS):
    """(∫₀ᵀ C_t β(t) dt, [ℒ_j]_{j<N}) by the trapezoid rule, n_sub sub-intervals per step;
    ℒ_j = ∫_{jh}^{(j+1)h} L_t β(t) dt on forward step j (ℒ_k of backward step k = N−1−k)."""
    g = _require_log_concave(target)
    N = check_positive_int("N", N)
    n_sub = check_positive_int("n_sub", n_sub)
    v = process.sigma_inf**2
    C0, L0 = 1 / g.eigvals[-1], 1 / g.eigvals[0]
    t = torch.linspace(0.0, process.T, N * n_sub + 1, dtype=F64)
    m2 = (process.scale(t) ** 2).numpy()
    s2 = process.variance(t).numpy()
    beta = process.schedule.beta(t).numpy()
    C = 1 / (m2 / C0 + s2) - 1 / v
    with np.errstate(divide="ignore"):
        L = np.minimum(np.where(s2 > 0, 1 / np.where(s2 > 0, s2, 1), np.inf), L0 / m2) - 1 / v
    tt = t.numpy()
    int_C = trapezoid(C * beta, tt)
    y = (L * beta)[:-1].reshape(N, n_sub), (L * beta)[1:].reshape(N, n_sub)
    dt = np.diff(tt).reshape(N, n_sub)
    calL = (0.5 * (y[0] + y[1]) * dt).sum(1)
    return int_C, calL


def time_lipschitz(target, process, N: int) -> float:
    """ℓ̄ = max_k max(κ1_k, κ2_k) (docs/theory.md §9.2), maximised over all eigenvalues λ of Σ
    (the authors use λ_min(Σ); both agree for isotropic Σ, and the max is the conservative
    choice)."""
    g = _require_log_concave(target)
    v = process.sigma_inf**2
    t = torch.linspace(0.0, process.T, N + 1, dtype=F64)
    m = process.scale(t).numpy()[:, None]
    beta1 = process.schedule.beta(t).numpy()[1:, None]
    lam = g.eigvals[None, :]
    mk, mk1 = m[:-1], m[1:]
    den = np.abs((v + mk**2 * (lam - v)) * (v + mk1**2 * (lam - v)))
    k1 = beta1 * mk**2 * np.abs(lam - v) / (v * den)
    mu_norm = float(np.linalg.norm(g.mean))
    k2 = mu_norm * beta1 * mk * np.abs(mk * mk1 * (lam - v) - v) / (2 * v * den)
    return float(max(k1.max(), k2.max()))


@dataclass(frozen=True)
class W2Bound(BoundTable):
    """Paper A's W2 bound: its four terms and the constants they used (docs/theory.md §9.2).

    Attributes:
        mixing: W2(π_data, π∞) exp(−B(T)/σ² − ∫ C_t β).
        approx_discretization: B̄ Σ_k ℒ_k (M₂ + 2ℒ_k).
        score_error: ε T β(T).
        time_regularity: ℓ̄ h T β(T) (1 + 2B̄).
        total: The sum of the four.
        epsilon: The score error ε used.
        w2_stationary: W2(π_data, π∞).
        int_C_beta: ∫₀ᵀ C_t β(t) dt.
        B_bar: B̄ = √(E‖X₀‖² + σ²d).
        M2: M₂ = √(2hβ(T))/σ + hβ(T)/(2σ²).
        ell_bar: ℓ̄, the time-Lipschitz constant of the score.
        h: The step T/N.

    Shown in Jupyter and Rich as a table (``scorelab.display``); ``to_dict()`` and
    ``to_frame()`` give its rows.
    """

    TITLE = "paper A's W2 bound"

    mixing: float
    approx_discretization: float
    score_error: float
    time_regularity: float
    total: float
    epsilon: float
    w2_stationary: float
    int_C_beta: float
    B_bar: float
    M2: float
    ell_bar: float
    h: float

    def terms(self) -> dict:
        """The bound's terms and total, by name (what ``all_bounds`` reports)."""
        keys = ("mixing", "approx_discretization", "score_error", "time_regularity", "total")
        return {k: getattr(self, k) for k in keys}


def w2_bound(
    target,
    process,
    N: int,
    score_error: float = 0.0,
    score_model=None,
    n_mc: int = 500,
    generator=None,
    n_sub: int = W2_SUBSTEPS,
) -> W2Bound:
    r"""Paper A's W2 bound (docs/theory.md §9.2) for a Gaussian target under a VP process, N
    uniform steps:

    \[
    \begin{aligned}
    W_2(\pi_{\rm data}, \hat\pi_N) \le{}& W_2(\pi_{\rm data}, \pi_\infty)\,
    e^{-B(T)/\sigma^2 - \int_0^T C_t \beta(t)\,dt}
    + \bar B \sum_k \mathcal L_k (M_2 + 2\mathcal L_k)\\
    &+ \varepsilon\, T \beta(T) + \bar\ell\, h\, T \beta(T) (1 + 2\bar B).
    \end{aligned}
    \]

    Its assumptions (strong log-concavity and smoothness of π_data) are certified only for
    Gaussian targets, with C₀ = 1/λ_max(Σ) and L₀ = 1/λ_min(Σ); every term is then computed,
    the integrals by the trapezoid rule with ``n_sub`` sub-intervals per step.

    Args:
        target: A Gaussian target.
        process: A VP process with a finite, non-decreasing β.
        N: The number of uniform steps.
        score_error: ε, a uniform L² bound on the score error (0: the exact score).
        score_model: When given, ε = max_k √E‖s_θ − ∇log p‖²(T − t_k), measured by Monte Carlo.
        n_mc: Monte Carlo draws per time for a measured ε.
        generator: Drives the Monte Carlo draws.
        n_sub: Trapezoid sub-intervals per step.

    Returns:
        A ``W2Bound`` with the terms ``mixing``, ``approx_discretization``, ``score_error``,
        ``time_regularity`` and ``total``, and the constants they used.

    Raises:
        AssumptionFailed: A non-Gaussian target (mixtures are not log-concave), a non-VP
            process or an infinite schedule.

    Examples:
        >>> import scorelab
        >>> from scorelab import bounds
        >>> target = scorelab.build_target({"kind": "gaussian", "dim": 10, "mean": 1.0, "cov": 0.5})
        >>> linear = {"kind": "parametric", "a": 0.0}  # paper A's β_a at a = 0
        >>> process = scorelab.build_process({"kind": "vp", "schedule": linear})
        >>> round(bounds.w2_bound(target, process, N=100).total, 2)
        44.49
    """
    N = check_positive_int("N", N)
    eps = check_nonneg("score_error", score_error)
    B_T, beta_T = require_vp(process, "w2")
    g = _require_log_concave(target)
    v = process.sigma_inf**2
    T = process.T
    h = T / N
    d = g.mean.shape[0]
    w2_0 = w2_gaussians(g.mean, g.cov, np.zeros(d), v)
    int_C, calL = w2_integrals(target, process, N, n_sub)
    mixing = w2_0 * math.exp(-B_T / v - int_C)
    M2 = math.sqrt(2 * h * beta_T) / process.sigma_inf + h * beta_T / (2 * v)
    B_bar = math.sqrt(second_moment(target).value + v * d)
    approx_disc = B_bar * float(np.sum(calL * (M2 + 2 * calL)))
    if score_model is not None:
        t_back = T - h * np.arange(N)
        eps = math.sqrt(
            float(score_mse(target, process, t_back, score_model, n_mc, generator).max())
        )
    score_term = eps * T * beta_T
    ell_bar = time_lipschitz(target, process, N)
    time_reg = ell_bar * h * T * beta_T * (1 + 2 * B_bar)
    total = mixing + approx_disc + score_term + time_reg
    return W2Bound(
        mixing, approx_disc, score_term, time_reg, total, eps, w2_0, int_C, B_bar, M2, ell_bar, h
    )
