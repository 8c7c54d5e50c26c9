"""Jacobians, divergences and conservativity of vector fields x ↦ F(x) on ``[B, *event]``.

A field is any callable ``field(x) -> like x`` that treats the examples of a batch independently
(the per-example Jacobians are then the blocks of the batch Jacobian, which is what lets one
backward pass of ``field(x)·w`` give ``Jᵀw`` for every example at once). For a score model with
time, pass ``lambda x: score(x, t)``. Everything is shape-agnostic: examples are flattened to
``[B, D]`` internally and Jacobians are ``[B, D, D]`` with ``J[b, i, j] = ∂F_i/∂x_j``.

* ``jacobian`` / ``divergence``: exact, by D vector–Jacobian products with the unit vectors
  (one backward pass each; ``chunk`` > 1 batches that many into one vectorised pass with
  ``is_grads_batched``, which helps on GPUs but was slower on CPU, hence the default 1).
  Meant for small D.
* ``hutchinson_divergence``: tr J ≈ (1/k) Σ_j v_jᵀ J v_j with probes of identity covariance
  (Rademacher ±1 — the default, lower variance — or Gaussian); it returns the per-probe
  estimates as well, so callers can form confidence intervals. Unbiased because
  E[vᵀJv] = tr(J E[vvᵀ]) = tr J.
* ``conservativity``: the non-conservativity ratio NC = E‖J − Jᵀ‖²_F / E‖J‖²_F
  (docs/theory.md §7.6). It is 0 exactly for a gradient field (J symmetric), and ¼·NC ∈ [0, 1]
  is the fraction of the Jacobian's energy in its antisymmetric part ((J − Jᵀ)/2). Exact from
  the Jacobian for small D; by probes for large D (see ``conservativity`` for why that
  estimator is unbiased).

Every function takes ``create_graph``: with it the results stay differentiable with respect
to the field's parameters (for training); without it they are detached.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .errors import InvalidParameter

Field = Callable[[torch.Tensor], torch.Tensor]

PROBES = ("rademacher", "gaussian")
CONSERVATIVITY_METHODS = ("exact", "probes")


# --------------------------------------------------------------------------------------------
# plumbing
# --------------------------------------------------------------------------------------------


def _check_x(x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.ndim < 2:
        raise InvalidParameter(
            "x",
            "must be a floating-point tensor of shape [B, *event_shape]",
            tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__,
        )


def _leaf(x: torch.Tensor) -> torch.Tensor:
    """``x`` ready for differentiation: itself if it already tracks gradients (so a caller can
    differentiate the result through x), else a fresh leaf."""
    return x if x.requires_grad else x.detach().requires_grad_(True)


def _flat_eval(field: Field, x: torch.Tensor) -> torch.Tensor:
    """field(x) flattened to ``[B, D]``, checked to be shaped like x."""
    out = field(x)
    if not isinstance(out, torch.Tensor) or out.shape != x.shape:
        raise InvalidParameter(
            "field",
            "must return a tensor shaped like its input",
            tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__,
            f"{tuple(x.shape)}",
        )
    return out.reshape(x.shape[0], -1)


def sample_probes(
    n: int,
    shape: tuple[int, ...],
    kind: str = "rademacher",
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """``n`` probe tensors of the given shape, stacked: ``[n, *shape]``, with E[vvᵀ] = I.

    Rademacher entries are ±1 with probability ½; Gaussian entries are N(0, 1)."""
    if int(n) < 1:
        raise InvalidParameter("n_probes", "must be ≥ 1", n)
    full = (int(n), *shape)
    if kind == "rademacher":
        bits = torch.randint(0, 2, full, generator=generator, device=device)
        return (2 * bits - 1).to(dtype)
    if kind == "gaussian":
        return torch.randn(full, generator=generator, dtype=dtype, device=device)
    raise InvalidParameter("probe", "is not a probe distribution", kind, ", ".join(PROBES))


def _vjps(
    out: torch.Tensor,
    x: torch.Tensor,
    cotangents: torch.Tensor,
    create_graph: bool,
    retain_graph: bool,
    chunk: int | None,
) -> torch.Tensor:
    """Jᵀw for a stack of cotangents ``[k, B, D]`` → ``[k, B, D]`` (vectorised, in chunks)."""
    k = cotangents.shape[0]
    chunk = k if chunk is None else max(1, int(chunk))
    res = []
    for i in range(0, k, chunk):
        w = cotangents[i : i + chunk]
        last = i + chunk >= k
        keep = retain_graph or create_graph or not last
        if w.shape[0] == 1:
            (g,) = torch.autograd.grad(out, x, w[0], retain_graph=keep, create_graph=create_graph)
            g = g[None]
        else:
            (g,) = torch.autograd.grad(
                out,
                x,
                w,
                retain_graph=keep,
                create_graph=create_graph,
                is_grads_batched=True,
            )
        res.append(g.reshape(w.shape[0], x.shape[0], -1))
    return torch.cat(res)


# --------------------------------------------------------------------------------------------
# Jacobian and exact divergence
# --------------------------------------------------------------------------------------------


def jacobian_and_value(
    field: Field, x: torch.Tensor, *, create_graph: bool = False, chunk: int | None = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """(J ``[B, D, D]``, F(x) ``[B, D]``) with J[b, i, j] = ∂F_i/∂x_j at each example."""
    _check_x(x)
    with torch.enable_grad():
        xl = _leaf(x)
        out = _flat_eval(field, xl)
        B, D = out.shape
        eye = torch.eye(D, dtype=out.dtype, device=out.device)
        cot = eye[:, None, :].expand(D, B, D)
        rows = _vjps(out, xl, cot, create_graph, False, chunk)  # rows[i] = Jᵀe_i = row i of J
    J = rows.permute(1, 0, 2)
    if not create_graph:
        J, out = J.detach(), out.detach()
    return J, out


def jacobian(
    field: Field, x: torch.Tensor, *, create_graph: bool = False, chunk: int | None = 1
) -> torch.Tensor:
    """The per-example Jacobian ``[B, D, D]``, J[b, i, j] = ∂F_i/∂x_j (D flattened coords)."""
    return jacobian_and_value(field, x, create_graph=create_graph, chunk=chunk)[0]


def divergence(
    field: Field, x: torch.Tensor, *, create_graph: bool = False, chunk: int | None = 1
) -> torch.Tensor:
    """The exact divergence ∇·F = tr J at each example, ``[B]`` (cost ≈ D backward passes)."""
    J = jacobian(field, x, create_graph=create_graph, chunk=chunk)
    return J.diagonal(dim1=1, dim2=2).sum(-1)


# --------------------------------------------------------------------------------------------
# Hutchinson
# --------------------------------------------------------------------------------------------


@dataclass
class HutchinsonEstimate:
    """A Hutchinson trace estimate: ``estimate`` ``[B]`` is the mean of ``samples`` ``[B, k]``
    (one unbiased estimate per probe); ``value`` is F(x) ``[B, D]`` (free by-product)."""

    estimate: torch.Tensor
    samples: torch.Tensor
    value: torch.Tensor

    @property
    def n_probes(self) -> int:
        return self.samples.shape[1]

    def stderr(self) -> torch.Tensor:
        """Per-example standard error of ``estimate`` over the probes (NaN for one probe)."""
        k = self.n_probes
        if k < 2:
            return torch.full_like(self.estimate, math.nan)
        return self.samples.std(1) / math.sqrt(k)


def hutchinson_divergence(
    field: Field,
    x: torch.Tensor,
    *,
    n_probes: int = 1,
    probe: str = "rademacher",
    generator: torch.Generator | None = None,
    probes: torch.Tensor | None = None,
    create_graph: bool = False,
    chunk: int | None = 1,
) -> HutchinsonEstimate:
    """Hutchinson's estimate of ∇·F at each example: vᵀ(Jᵀv) with ``n_probes`` probes per
    example (or the given ``probes`` ``[k, *x.shape]``), by vector–Jacobian products."""
    _check_x(x)
    if probes is None:
        probes = sample_probes(n_probes, tuple(x.shape), probe, generator, x.dtype, x.device)
    elif probes.ndim != x.ndim + 1 or tuple(probes.shape[1:]) != tuple(x.shape):
        raise InvalidParameter("probes", "must have shape [k, *x.shape]", tuple(probes.shape))
    with torch.enable_grad():
        xl = _leaf(x)
        out = _flat_eval(field, xl)
        B = out.shape[0]
        v = probes.reshape(probes.shape[0], B, -1).to(out.dtype)
        jtv = _vjps(out, xl, v, create_graph, False, chunk)
    samples = (jtv * v).sum(-1).T  # [B, k]
    if not create_graph:
        samples, out = samples.detach(), out.detach()
    return HutchinsonEstimate(samples.mean(1), samples, out)


# --------------------------------------------------------------------------------------------
# conservativity
# --------------------------------------------------------------------------------------------


@dataclass
class Conservativity:
    """Non-conservativity NC = E‖J − Jᵀ‖²_F / E‖J‖²_F of a field over a batch of points.

    ``numerator`` and ``denominator`` are per-example ``[B]``: exact ‖J − Jᵀ‖²_F and ‖J‖²_F, or
    their probe estimates (each averaged over the probe pairs, unbiased for its exact value).
    ``ratio`` is mean(numerator)/mean(denominator); ``stderr`` is its delta-method standard
    error over the examples (which includes the probe noise), NaN when it cannot be formed.
    """

    ratio: float
    stderr: float
    numerator: torch.Tensor
    denominator: torch.Tensor
    method: str

    @property
    def antisymmetric_fraction(self) -> float:
        """¼·NC = ‖(J − Jᵀ)/2‖²_F / ‖J‖²_F, in [0, 1]."""
        return 0.25 * self.ratio


def _ratio_stderr(num: torch.Tensor, den: torch.Tensor) -> tuple[float, float]:
    num, den = num.double(), den.double()
    mn, md = float(num.mean()), float(den.mean())
    ratio = mn / md if md > 0 else math.nan
    n = num.shape[0]
    if n < 2 or not md > 0:
        return ratio, math.nan
    # delta method for a ratio of means: Var ≈ Var(num − R·den)/(n·md²)
    resid = num - ratio * den
    return ratio, float(resid.std() / (math.sqrt(n) * md))


def _nc_terms(field: Field, x: torch.Tensor, uv: torch.Tensor | None, chunk) -> tuple:
    """Per-example numerator and denominator of NC: exact (``uv`` None) or from the probe
    pairs ``uv`` ``[2k, *x.shape]`` (see ``conservativity``)."""
    if uv is None:
        J = jacobian(field, x, chunk=chunk)
        return (J - J.transpose(1, 2)).pow(2).sum((1, 2)), J.pow(2).sum((1, 2))
    k = uv.shape[0] // 2
    with torch.enable_grad():
        xl = _leaf(x)
        out = _flat_eval(field, xl)
        uv = uv.reshape(2 * k, out.shape[0], -1)
        g = _vjps(out, xl, uv, False, False, chunk).detach()  # Jᵀu_j, then Jᵀv_j
    u, v, jtu, jtv = uv[:k], uv[k:], g[:k], g[k:]
    ujv = (jtu * v).sum(-1)  # uᵀJv  [k, B]
    vju = (jtv * u).sum(-1)  # vᵀJu
    num = (ujv - vju).pow(2).mean(0)
    den = 0.5 * (ujv.pow(2) + vju.pow(2)).mean(0)  # both terms are unbiased for ‖J‖²_F
    return num, den


def conservativity(
    field: Field,
    x: torch.Tensor,
    *,
    method: str = "exact",
    n_probes: int = 16,
    probe: str = "rademacher",
    generator: torch.Generator | None = None,
    chunk: int | None = 1,
    batch_size: int | None = None,
) -> Conservativity:
    """How far the field is from a gradient field, NC = E‖J − Jᵀ‖²_F / E‖J‖²_F over x.

    ``batch_size``: evaluate the field on that many examples at a time (memory; the result
    does not depend on it, the probes being drawn for the whole batch first).

    ``method="exact"`` forms each Jacobian (D backward passes; small D). ``method="probes"``
    draws ``n_probes`` independent pairs (u, v) per example, both with E[uuᵀ] = E[vvᵀ] = I, and
    uses two vector–Jacobian products per pair (Jᵀu and Jᵀv give uᵀJv = (Jᵀu)·v and
    vᵀJu = (Jᵀv)·u). With A = J − Jᵀ and u independent of v:

        E(uᵀJv − vᵀJu)² = E(uᵀAv)² = E_u[uᵀ A E[vvᵀ] Aᵀ u] = tr(AAᵀ) = ‖J − Jᵀ‖²_F,
        E(uᵀJv)² = E(vᵀJu)²        = tr(JJᵀ)                = ‖J‖²_F,

    so numerator and denominator (the mean of both squares) are each unbiased, for any probe
    law with identity second moments; their ratio of means is consistent, with an O(1/(nk))
    ratio bias.
    """
    _check_x(x)
    if method not in CONSERVATIVITY_METHODS:
        raise InvalidParameter(
            "method", "is not a conservativity method", method, ", ".join(CONSERVATIVITY_METHODS)
        )
    B = x.shape[0]
    bs = B if batch_size is None else int(batch_size)
    if bs < 1:
        raise InvalidParameter("batch_size", "must be ≥ 1", batch_size)
    uv = None
    if method == "probes":
        k = int(n_probes)
        if k < 1:
            raise InvalidParameter("n_probes", "must be ≥ 1", n_probes)
        uv = sample_probes(2 * k, tuple(x.shape), probe, generator, x.dtype, x.device)
    if bs >= B:
        parts = [_nc_terms(field, x, uv, chunk)]
    else:
        parts = [
            _nc_terms(field, x[i : i + bs], None if uv is None else uv[:, i : i + bs], chunk)
            for i in range(0, B, bs)
        ]
    num = torch.cat([p[0] for p in parts])
    den = torch.cat([p[1] for p in parts])
    ratio, se = _ratio_stderr(num, den)
    return Conservativity(ratio, se, num.detach(), den.detach(), method)
