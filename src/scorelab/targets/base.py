"""The Target contract: a data law, and — where known — the exact score of its noised marginals.

Under a linear forward process the noised marginal depends on the process only through
(m(t), s(t)²), so a target implements its formulas once, on flat ``[B, D]`` tensors, as
functions of (m, v = s²); this base class does the rest: dtype/device, the time check, one time
per example, and reshaping for any event shape (vectors and images alike).
"""

from __future__ import annotations

from abc import ABC

import torch

from .._tensor import Time, as_tensor, check_time
from ..errors import InvalidParameter, ScorelabError
from ..processes import ForwardProcess
from ..protocols import ScoreModel


class NotAvailable(ScorelabError, NotImplementedError):
    """The target does not know this quantity (e.g. the density of a dataset)."""


class IncompleteTarget(ScorelabError, TypeError):
    """A ``Target`` subclass that claims what it does not implement (raised when the class is
    defined, not when it is first used)."""


# Every method has a default (or says NotAvailable), so nothing is abstract in the ABC sense
# and the base itself is the law that knows nothing; the rule a subclass can break is checked
# when it is defined (``__init_subclass__``).
class Target(ABC):  # noqa: B024
    """A distribution on R^{event_shape} (the base class that meets ``protocols.TargetLike``).

    What is exact: a target with ``has_score`` (Gaussians, mixtures, the closed-form tilts,
    the laws on manifolds, empirical measures) gives the exact ``score``, ``denoise`` and
    ``log_prob_t`` of its noised marginal under any process; a dataset without a density
    only ``sample``s. Paper B's Mehler score for a general tilt (``GaussianTilt``) is a Monte
    Carlo estimate with its standard error.

    Subclasses implement ``_sample`` and, where known, the flat-tensor formulas ``_score``,
    ``_denoise`` and ``_log_prob_t`` of the noised marginal as functions of (x, m, v) with
    x ``[B, D]`` and m, v either 0-d or ``[B, 1]``. Each of ``_score`` and ``_denoise`` has a
    default through the other (Tweedie's formula), so a class with ``has_score = True`` must
    implement at least one: one that implements neither is refused when it is defined.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.has_score and cls._score is Target._score and cls._denoise is Target._denoise:
            raise IncompleteTarget(
                f"target class {cls.__module__}.{cls.__qualname__}: has_score = True, but it "
                "implements neither _score(x, m, v) nor _denoise(x, m, v); implement one (the "
                "other follows by Tweedie's formula), or set has_score = False"
            )

    kind: str = "target"
    #: whether ``log_prob`` (a Lebesgue density at t = 0) exists
    has_density: bool = False
    #: whether the exact noised score is known
    has_score: bool = False
    #: supported on a null set (manifold, points): the noised quantities need s(t) > 0
    singular: bool = False

    def __init__(self, event_shape: tuple[int, ...]):
        self.event_shape = tuple(int(s) for s in event_shape)
        self._cache: dict = {}

    @property
    def dim(self) -> int:
        """D, the number of coordinates of one example."""
        n = 1
        for s in self.event_shape:
            n *= s
        return n

    # --- sampling ------------------------------------------------------------------------
    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> torch.Tensor:
        """n independent draws, shape ``[n, *event_shape]``."""
        if int(n) < 0:
            raise InvalidParameter("n", "must be ≥ 0", n)
        x = self._sample(int(n), generator)
        return x.reshape(int(n), *self.event_shape).to(dtype=dtype, device=device)

    def _sample(self, n: int, generator: torch.Generator | None) -> torch.Tensor:
        raise NotAvailable(f"target '{self.kind}' cannot be sampled")

    # --- density and score --------------------------------------------------------------
    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Log-density of the data law at each example, ``[B]``."""
        if not self.has_density:
            raise NotAvailable(
                f"target '{self.kind}' has no known Lebesgue density"
                + (" (it lives on a null set)" if self.singular else "")
            )
        flat = self._flatten(x)
        one = torch.ones((), dtype=flat.dtype, device=flat.device)
        return self._log_prob_t(flat, one, torch.zeros_like(one))

    def score(self, x: torch.Tensor, t: Time, process: ForwardProcess) -> torch.Tensor:
        """∇ₓ log p_t(x), the exact score of the noised marginal (same shape as x)."""
        flat, m, v = self._prepare(x, t, process, "score")
        return self._score(flat, m, v).reshape(x.shape)

    def denoise(self, x: torch.Tensor, t: Time, process: ForwardProcess) -> torch.Tensor:
        """Tweedie's denoiser E[X₀ | X_t = x] = (x + s² ∇log p_t(x))/m (same shape as x)."""
        flat, m, v = self._prepare(x, t, process, "denoise")
        return self._denoise(flat, m, v).reshape(x.shape)

    def log_prob_t(self, x: torch.Tensor, t: Time, process: ForwardProcess) -> torch.Tensor:
        """log p_t(x) of the noised marginal, ``[B]``."""
        flat, m, v = self._prepare(x, t, process, "log_prob_t")
        return self._log_prob_t(flat, m, v)

    def score_model(self, process: ForwardProcess) -> ScoreModel:
        """The exact score as a score model ``score(x, t)`` (what samplers consume)."""
        return lambda x, t: self.score(x, t, process)

    # Defaults that derive one formula from another; targets override what they know better.
    def _score(self, x, m, v):
        return (m * self._denoise(x, m, v) - x) / v

    def _denoise(self, x, m, v):
        return (x + v * self._score(x, m, v)) / m

    def _log_prob_t(self, x, m, v):
        raise NotAvailable(f"target '{self.kind}' has no closed-form noised density")

    # --- what the law is known to be --------------------------------------------------------
    # Metrics and bounds ask these instead of testing the target's type; each returns None
    # when the target does not know the answer (the caller then estimates it, or refuses).
    # Tensors are flat (``[D]``, ``[D, D]``, ``[n, D]``) and float64.

    def second_moment(self) -> float | None:
        """E‖X‖², exact; None when unknown (estimate it from samples)."""
        return None

    def mean_norm(self) -> float | None:
        """E‖X‖, exact; None when unknown (√E‖X‖² bounds it, by Jensen)."""
        return None

    def diameter(self) -> float | None:
        """diam(supp), the largest distance between two support points; None when the
        support is not known to be bounded."""
        return None

    def support_dimension(self) -> int | None:
        """The intrinsic dimension of the support: D for a law with a density, 1 for a
        circle, 0 for finitely many points; None when unknown."""
        return self.dim if self.has_density else None

    def moments(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(E[X] ``[D]``, Cov[X] ``[D, D]``), exact; None when unknown."""
        return None

    def gaussian_moments(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(mean ``[D]``, covariance ``[D, D]``) when the law is one Gaussian (possibly
        degenerate: check ``has_density``), else None."""
        return None

    def gaussian_mixture(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
        """(weights ``[K]``, means ``[K, D]``, covariances ``[K, D, D]``) when the law is a
        finite Gaussian mixture, else None."""
        return None

    def finite_points(self) -> torch.Tensor | None:
        """The points ``[n, D]`` of a law uniform on finitely many examples (a data set, an
        empirical measure), else None."""
        return None

    def is_finite(self) -> bool:
        """Whether the law is uniform on finitely many examples (``finite_points``)."""
        return self.finite_points() is not None

    # --- plumbing --------------------------------------------------------------------------
    def _flatten(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise InvalidParameter("x", "must be a floating-point tensor", type(x).__name__)
        if tuple(x.shape[1:]) != self.event_shape:
            raise InvalidParameter(
                "x",
                "has the wrong shape for this target",
                tuple(x.shape),
                f"[B, {', '.join(map(str, self.event_shape))}]",
            )
        return x.reshape(x.shape[0], -1)

    def _prepare(self, x: torch.Tensor, t: Time, process: ForwardProcess, what: str):
        if not self.has_score:
            raise NotAvailable(
                f"target '{self.kind}' has no exact score; train a model on its samples"
            )
        flat = self._flatten(x)
        t = as_tensor(t, like=flat)
        check_time(t, process.T)
        if t.ndim == 1 and t.shape[0] != flat.shape[0]:
            raise InvalidParameter("t", "must be a scalar or one time per example", tuple(t.shape))
        m = process.scale(t).to(flat.dtype)
        v = process.variance(t).to(flat.dtype)
        if t.ndim == 1:
            m, v = m[:, None], v[:, None]
        if self.singular and bool((v <= 0).any()):
            raise InvalidParameter(
                "t",
                f"must be > 0 for {what} of target '{self.kind}', which has no density "
                "at t = 0 (s(t) = 0)",
                float(t.min()),
            )
        return flat, m, v

    def param(self, name: str, like: torch.Tensor) -> torch.Tensor:
        """A stored float64 parameter cast (and cached) for ``like``'s dtype and device."""
        key = (name, like.dtype, like.device)
        if key not in self._cache:
            self._cache[key] = getattr(self, name).to(dtype=like.dtype, device=like.device)
        return self._cache[key]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(event_shape={self.event_shape})"
