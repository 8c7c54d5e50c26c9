"""The contracts a component meets, as ``typing.Protocol``s, and the result a sampler returns.

A protocol is structural: anything with the right call signature meets it, without inheriting
from it (a lambda is a ``ScoreModel``). They are what type checkers and readers go by; the
registry does not check them at run time. The one base class that does check is
``scorelab.targets.Target``, an abstract base class that meets ``TargetLike`` and refuses,
when a subclass is defined, one that claims an exact score but gives no formula for it.

This module imports nothing of scorelab but ``display`` (which imports nothing of scorelab):
every component module may import it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch

from .display import Column, Table, Tabular, frame

#: a time or noise level: a number, a 0-d tensor or one value per example (``[B]``)
TimeLike = torch.Tensor | float


@runtime_checkable
class ScoreModel(Protocol):
    """``score(x, t) -> ∇ₓ log p_t(x)``, shaped like x ``[B, ...]``; t a number or ``[B]``.

    Exact targets (``target.score_model(process)``), trained networks and the models of
    ``scorelab.interfaces`` (given as a score, a denoiser or an ε-predictor) all meet it."""

    def __call__(self, x: torch.Tensor, t: TimeLike, /) -> torch.Tensor: ...


class StepCallback(Protocol):
    """``callback(step, t, x, denoised)``: called after each step of a sampler, with the step's
    index (0, 1, …), the time it reached, the samples and their denoised estimate."""

    def __call__(self, step: int, t: float, x: torch.Tensor, denoised: torch.Tensor, /) -> Any: ...


@dataclass
class SampleResult(Tabular):
    """Samples and what they cost: the one result type of samplers, ``integrate`` and
    ``generate``.

    Attributes:
        samples: ``[n, *event_shape]``, in the dtype and on the device they were drawn.
        nfe: Score-model evaluations of one run (one call on the whole batch counts once).
        seconds: The wall time where ``generate`` measured it, else None.

    In Jupyter and Rich it shows as a table of its size, NFE, time and per-coordinate mean and
    standard deviation (the first eight coordinates); ``to_frame()`` is one row per sample,
    one column per coordinate (``x0``, ``x1``, …); ``to_dict()`` holds the cost and the
    samples as nested lists. ``x`` is another name for ``samples`` (the name samplers used
    before the two result types were merged), kept for existing code.
    """

    samples: torch.Tensor
    nfe: int
    seconds: float | None = None

    @property
    def x(self) -> torch.Tensor:
        """Deprecated name of ``samples``."""
        return self.samples

    @x.setter
    def x(self, value: torch.Tensor) -> None:
        self.samples = value

    def _flat(self) -> torch.Tensor:
        s = self.samples.detach().to("cpu", torch.float64)
        return s.reshape(s.shape[0], -1) if s.ndim > 1 else s.reshape(-1, 1)

    def _table(self) -> Table:
        flat = self._flat()
        cols = [Column("coordinate", "text"), Column("mean"), Column("std")]
        rows = [
            [f"x{j}", float(flat[:, j].mean()), float(flat[:, j].std()) if len(flat) > 1 else None]
            for j in range(min(flat.shape[1], 8))
        ]
        shape = "×".join(str(k) for k in self.samples.shape)
        cost = f"NFE {self.nfe}" + ("" if self.seconds is None else f", {self.seconds:.3g} s")
        notes = [] if flat.shape[1] <= 8 else [f"first 8 of {flat.shape[1]} coordinates"]
        return Table(f"{shape} samples, {cost}", cols, rows, notes)

    def to_dict(self) -> dict:
        return {
            "nfe": self.nfe, "seconds": self.seconds, "shape": list(self.samples.shape),
            "samples": self.samples.detach().cpu().tolist(),
        }  # fmt: skip

    def to_frame(self):
        flat = self._flat()
        names = [f"x{j}" for j in range(flat.shape[1])]
        return frame([dict(zip(names, row, strict=True)) for row in flat.tolist()], names)


class Sampler(Protocol):
    """``sampler(score, process, grid, x, *, noise=None, callback=None, **options)``: the
    samples reached from ``x`` (drawn at the grid's first level) on the decreasing ``grid``.

    It returns a ``SampleResult`` or just the samples (a tensor shaped like x). Run through
    ``scorelab.integrate`` or ``scorelab.generate``, the caller counts the NFE, takes the final
    step to σ = 0 that ``grid.final == "denoise"`` asks for (unless the sampler is registered
    with ``own_final_step=True``), and ``noise`` holds per-sample streams: see
    ``scorelab.samplers`` for the whole contract."""

    def __call__(
        self,
        score: ScoreModel,
        process: Any,
        grid: Any,
        x: torch.Tensor,
        /,
        *,
        noise: Any = None,
        callback: StepCallback | None = None,
        **options: Any,
    ) -> SampleResult | torch.Tensor: ...


class Metric(Protocol):
    """``metric(x, y) -> value``: how far samples x ``[n, ...]`` are from draws y ``[m, ...]``
    of the target (0 when the laws agree). Its finite-sample floor and confidence interval
    come from ``scorelab.evaluate``, not from the metric."""

    def __call__(self, x: torch.Tensor, y: torch.Tensor, /) -> float | torch.Tensor: ...


@runtime_checkable
class TargetLike(Protocol):
    """A data law on R^{event_shape}: draws, and — where known (``has_score``,
    ``has_density``) — the exact score and denoiser of its noised marginals under a process,
    and its log-density. ``scorelab.targets.Target`` is the base class that meets it."""

    event_shape: tuple[int, ...]
    has_score: bool
    has_density: bool

    @property
    def dim(self) -> int: ...

    def sample(
        self, n: int, generator: torch.Generator | None = None, *args: Any, **kwargs: Any
    ) -> torch.Tensor: ...

    def score(self, x: torch.Tensor, t: TimeLike, process: Any) -> torch.Tensor: ...

    def denoise(self, x: torch.Tensor, t: TimeLike, process: Any) -> torch.Tensor: ...

    def log_prob(self, x: torch.Tensor) -> torch.Tensor: ...


__all__ = [
    "Metric",
    "SampleResult",
    "Sampler",
    "ScoreModel",
    "StepCallback",
    "TargetLike",
    "TimeLike",
]
