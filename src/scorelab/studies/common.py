"""What the paper studies share: the :class:`Study` context (from :mod:`scorelab.study`, the
framework every registered study runs in) and the helpers below.

A paper study module defines ``NAME``, ``TITLE``, ``PAPER`` and ``run(study: Study) -> None``
(registered in :mod:`scorelab.studies`); it fills ``study.results`` (JSON-able, finite
numbers), adds one :meth:`Study.claim` per claim of the paper it tests, and figures/sections
for the report. Everything random is drawn from streams named by keys under ``study.seed``
(``study.generator("mg25", "data")``, or ``study.seed_for(...)`` where a function takes an
integer seed), so a study is deterministic for a seed and its streams are independent;
``study.quick`` selects the CI-sized mode (≤ 2 min on 2 cores).

The studies train and sample through the same two helpers: :func:`train_score_model` (a
registered network wrapped by its parameterisation, fitted by the library's ``Trainer``, its
EMA or live weights returned frozen) and :func:`draw_samples` (a sampler's samples in float64).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch

from ..config.schema import TrainConfig
from ..grids import TimeGrid
from ..networks import build_network
from ..parameterisations import ScoreNetwork
from ..processes import ForwardProcess
from ..sampling import generate
from ..study import Claim, Study, one_thread
from ..targets import Target
from ..training import Trainer, TrainResult

__all__ = [
    "Claim",
    "Fitted",
    "Study",
    "draw_samples",
    "ema_copy",
    "one_thread",
    "score_trainer",
    "train_score_model",
]


# --------------------------------------------------------------------------------------------
# training and sampling
# --------------------------------------------------------------------------------------------


@dataclass
class Fitted:
    """A trained score model (frozen, eval mode), its trainer and the training record."""

    model: ScoreNetwork
    trainer: Trainer
    result: TrainResult

    def tail_loss(self, parts: int = 10) -> float:
        """The mean training loss over the last 1/``parts`` of the steps (at least one)."""
        losses = self.result.losses
        tail = losses[-max(1, len(losses) // parts) :]
        return sum(tail) / len(tail)


def ema_copy(trainer: Trainer) -> ScoreNetwork:
    """A copy of the trainer's model holding its current EMA weights (eval mode)."""
    model = copy.deepcopy(trainer.model)
    model.load_state_dict(trainer.ema)
    return model.eval()


def score_trainer(
    target: Target,
    process: ForwardProcess,
    *,
    network: Mapping[str, Any],
    train: Mapping[str, Any] | TrainConfig,
    seed: int,
    init_seed: int | None = None,
    parameterisation: str = "edm",
    sigma_data: float = 1.0,
    start: Mapping[str, torch.Tensor] | None = None,
) -> Trainer:
    """The library's trainer of a fresh score model for ``target`` under ``process``.

    ``network`` is ``{"kind": <registered network>, <its parameters>}``; the network is
    wrapped by ``parameterisation`` with ``sigma_data`` (also the loss weighting's σ_data).
    Its initial weights are drawn from a generator seeded by ``init_seed`` (default: ``seed``,
    as a config's run does), unless ``start`` (a state dict) gives them; ``train`` is the
    ``train`` section (a ``TrainConfig`` or a mapping of its keys) and ``seed`` seeds the
    trainer's data, times and noise."""
    spec = dict(network)
    kind = spec.pop("kind")
    g = torch.Generator().manual_seed(seed if init_seed is None else init_seed)
    net = build_network(kind, tuple(target.event_shape), generator=g, **spec)
    model = ScoreNetwork(net, process, parameterisation, sigma_data)
    if start is not None:
        model.load_state_dict(start)
    return Trainer(model, target, process, train, seed=seed, sigma_data=sigma_data)


def train_score_model(
    target: Target,
    process: ForwardProcess,
    *,
    network: Mapping[str, Any],
    train: Mapping[str, Any] | TrainConfig,
    seed: int,
    init_seed: int | None = None,
    parameterisation: str = "edm",
    sigma_data: float = 1.0,
    start: Mapping[str, torch.Tensor] | None = None,
    weights: Literal["ema", "live"] = "ema",
    progress: bool = False,
) -> Fitted:
    """Fit a score model (see :func:`score_trainer` for the arguments). The returned model
    holds the EMA weights (``weights="ema"``) or the last ones (``"live"``), frozen and in
    eval mode."""
    trainer = score_trainer(
        target,
        process,
        network=network,
        train=train,
        seed=seed,
        init_seed=init_seed,
        parameterisation=parameterisation,
        sigma_data=sigma_data,
        start=start,
    )
    result = trainer.fit(progress=progress)
    model = trainer.model
    if weights == "ema":
        model.load_state_dict(trainer.ema)
    model.eval().requires_grad_(False)
    return Fitted(model, trainer, result)


def draw_samples(
    score,
    process: ForwardProcess,
    event_shape: Sequence[int],
    *,
    sampler: str,
    grid: TimeGrid,
    n: int,
    seed: int,
    dtype: torch.dtype = torch.float32,
    **options: Any,
) -> torch.Tensor:
    """``n`` samples of ``sampler`` on ``grid`` (computed in ``dtype``, per-sample noise from
    ``seed``), returned in float64 for the metrics."""
    out = generate(
        score,
        process,
        tuple(event_shape),
        sampler=sampler,
        grid=grid,
        n=n,
        seed=seed,
        dtype=dtype,
        **options,
    )
    return out.samples.to(torch.float64)
