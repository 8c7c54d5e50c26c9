"""What every study shares: a :class:`Study` context that collects results, claim verdicts,
figures and report sections, and writes ``results.json`` and a self-contained ``report.html``.

A study module defines ``NAME``, ``TITLE``, ``PAPER`` and ``run(study: Study) -> None``; it
fills ``study.results`` (JSON-able, finite numbers), adds one :meth:`Study.claim` per claim of
the paper it tests, and figures/sections for the report. Everything random is drawn from
streams named by keys under ``study.seed`` (``study.generator("mg25", "data")``, or
``study.seed_for(...)`` where a function takes an integer seed; both ``seeding.derive_seed`` of
the seed, the study's name and the keys), so a study is deterministic for a seed and its
streams are independent; ``study.quick`` selects the CI-sized mode (≤ 2 min on 2 cores).

The studies train and sample through the same two helpers: :func:`train_score_model` (a
registered network wrapped by its parameterisation, fitted by the library's ``Trainer``, its
EMA or live weights returned frozen) and :func:`draw_samples` (a sampler's samples in float64).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from ..config.schema import TrainConfig
from ..grids import TimeGrid
from ..networks import build_network
from ..parameterisations import ScoreNetwork
from ..processes import ForwardProcess
from ..report import Report, save_figure
from ..sampling import generate
from ..seeding import derive_seed
from ..storage import write_json
from ..targets import Target
from ..training import Trainer, TrainResult


@dataclass
class Claim:
    """One claim of the paper, what we measured, and whether it holds here (None: not
    decidable in this mode)."""

    claim: str
    measured: str
    holds: bool | None

    def to_json(self) -> dict:
        return {"claim": self.claim, "measured": self.measured, "holds": self.holds}


@dataclass
class Study:
    name: str
    title: str
    paper: str
    out_dir: Path
    quick: bool = False
    seed: int = 0
    log: Callable[[str], None] = lambda msg: None
    progress: bool = False
    results: dict[str, Any] = field(default_factory=dict)
    claims: list[Claim] = field(default_factory=list)
    sections: list[tuple[str, list[tuple[str, Any]]]] = field(default_factory=list)

    def __post_init__(self):
        self.out_dir = Path(self.out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)

    # --- randomness ---------------------------------------------------------------------
    def seed_for(self, *keys: int | str) -> int:
        """The seed of the study's stream named by ``keys`` (``derive_seed(seed, name,
        *keys)``): independent streams for the study's parts."""
        return derive_seed(self.seed, self.name, *keys)

    def generator(self, *keys: int | str) -> torch.Generator:
        """A CPU generator seeded by ``seed_for(*keys)``."""
        return torch.Generator().manual_seed(self.seed_for(*keys))

    # --- content --------------------------------------------------------------------------
    def claim(self, claim: str, measured: str, holds: bool | None) -> None:
        self.claims.append(Claim(claim, measured, None if holds is None else bool(holds)))

    def section(self, heading: str) -> None:
        self.sections.append((heading, []))

    def _add(self, kind: str, payload) -> None:
        if not self.sections:
            self.section("Results")
        self.sections[-1][1].append((kind, payload))

    def text(self, text: str) -> None:
        self._add("text", text)

    def table(self, header: list[str], rows: list[list]) -> None:
        self._add("table", (header, rows))

    def figure(self, fig, name: str) -> Path:
        """Save a matplotlib figure as ``<out>/<name>.png`` and show it in the report."""
        path = save_figure(fig, self.out_dir / f"{name}.png")
        self._add("image", path)
        return path

    # --- output ---------------------------------------------------------------------------
    def write(self, seconds: float) -> Path:
        payload = {
            "study": self.name,
            "paper": self.paper,
            "quick": self.quick,
            "seed": self.seed,
            "seconds": round(seconds, 2),
            "claims": [c.to_json() for c in self.claims],
            "results": _finite(self.results, "results"),
        }
        write_json(self.out_dir / "results.json", payload)
        report = Report(f"{self.title} — scorelab study '{self.name}'")
        mode = "quick" if self.quick else "full"
        report.text(f"{self.paper}. Mode: {mode}, seed {self.seed}, {seconds:.1f} s.", "note")
        report.heading("Claims")
        report.raw(_claims_html(self.claims))
        for heading, items in self.sections:
            report.heading(heading)
            for kind, payload_ in items:
                if kind == "text":
                    report.text(payload_)
                elif kind == "table":
                    report.table(*payload_)
                else:
                    report.image(payload_)
        return report.write(self.out_dir / "report.html")


def _claims_html(claims: list[Claim]) -> str:
    import html

    rows = []
    for c in claims:
        verdict = {True: '<span class="ok">yes</span>', False: '<span class="no">no</span>'}.get(
            c.holds, "not decided"
        )
        rows.append(
            f"<tr><td>{html.escape(c.claim)}</td><td>{html.escape(c.measured)}</td>"
            f"<td>{verdict}</td></tr>"
        )
    return (
        "<table><thead><tr><th>claim</th><th>measured</th><th>holds here?</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _finite(obj, where: str):
    """Convert tensors/numpy scalars to plain floats and refuse NaN/inf (results.json promises
    finite numbers; None marks a value that was not measured)."""
    if isinstance(obj, dict):
        return {str(k): _finite(v, f"{where}.{k}") for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, torch.Tensor):
        obj = obj.item() if obj.numel() == 1 else obj.tolist()
        return _finite(obj, where)
    if hasattr(obj, "item") and not isinstance(obj, str | bool | int | float):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        raise ValueError(f"study result {where} is not finite: {obj}")
    return obj


@contextmanager
def one_thread():
    """One intra-op thread, the caller's setting restored afterwards. Studies run small
    networks and small tensors, for which a second thread buys nothing, and on a busy 2-core
    machine (CI beside test workers) threads spinning against each other made training steps
    and small matmuls 20–70× slower (measured by three of the studies' authors)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


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


def timed_run(module, out_dir: Path, quick: bool, seed: int, log, progress) -> Study:
    study = Study(
        module.NAME,
        module.TITLE,
        module.PAPER,
        out_dir,
        quick=quick,
        seed=seed,
        log=log,
        progress=progress,
    )
    start = time.perf_counter()
    with one_thread():
        module.run(study)
    study.write(time.perf_counter() - start)
    return study
