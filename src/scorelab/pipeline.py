"""The main job: train → sample → evaluate → bounds → report, in one run directory.

A run directory holds everything a run produced:

    config.yaml               the resolved config (σ_data filled in)
    metrics.jsonl             step, loss, lr, grad_norm, it/s
    checkpoint.safetensors    model, EMA, optimiser, step, RNG state, and the config
    resumes.jsonl             one line per --resume: the step, the changed keys, what allowed them
    .scorelab.lock            while a process writes here (PID, host, start, command)
    samples-<sampler>.npz     samples with their metadata (NFE, wall time)
    evaluation.json           the main sampler's metrics (the shape of `scorelab evaluate --json`)
    evaluation-<sampler>.json the same for every compared sampler
    score_error.json          the score error against the exact score over t (when known)
    bounds.json               the theoretical bounds with the measured score error (when known)
    budget.json, budget.png   the main sampler's error budget (when the exact score is known)
    diagnostics.json          FPE residual and profile, conservativity, PF-ODE NLL (paper D)
    summary.json              the headline numbers
    *.png, report.html        figures and the self-contained report

Each stage is a plain function, so notebooks can call them one by one.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml
from pydantic import BaseModel as Config  # a config model of scorelab.config.config_model()

from . import threads
from .config import build, build_grid, compared_sampler, sampler_options
from .display import Column, Table, Tabular
from .errors import InvalidParameter
from .models import build_model, load_score_model, resolve_sigma_data
from .preflight import check, check_resume, stored_config
from .rundir import RunLock, record_resume, trim_metrics
from .sampling import generate
from .storage import atomic_write, save_samples, write_json
from .training import CHECKPOINT, Trainer


def make_trainer(cfg: Config, run_dir: str | Path | None) -> tuple[Trainer, Config]:
    """The trainer of a config and the resolved config (σ_data filled in), which every
    checkpoint stores."""
    target, process = build(cfg)
    threads.apply(cfg.network.kind, target.event_shape)  # one thread for small networks
    sigma_data = resolve_sigma_data(cfg, target)
    cfg = cfg.model_copy(deep=True)
    cfg.network.sigma_data = sigma_data
    model = build_model(cfg, target.event_shape, process)
    metadata = {
        "config": cfg.model_dump(mode="json"),
        "event_shape": list(target.event_shape),
    }
    trainer = Trainer(
        model,
        target,
        process,
        cfg.train,
        run_dir,
        seed=cfg.seed,
        sigma_data=sigma_data,
        metadata=metadata,
    )
    return trainer, cfg


def train(
    cfg: Config,
    run_dir: str | Path,
    resume: bool = False,
    progress: bool = False,
    on_log=None,
    *,
    allow_changes: Sequence[str] = (),
    log=None,
) -> tuple[Trainer, Config]:
    """Train (or continue training) the config's model into ``run_dir``.

    The run directory is locked for the call (one writer; ``scorelab.rundir``). A resume is
    refused when the config differs from the checkpoint's in keys that change the training,
    unless they are named in ``allow_changes``; each resume is recorded in resumes.jsonl."""
    run_dir = Path(run_dir)
    with _lock(run_dir, log):
        check(cfg, ("train",))
        if resume:
            cfg = _keep_trained_sigma_data(cfg, run_dir)
        trainer, cfg = make_trainer(cfg, run_dir)
        record = None
        if resume:
            if (run_dir / CHECKPOINT).is_file():  # else resume() says there is none
                record = check_resume(cfg, run_dir, allow_changes)
            trainer.resume()
        elif allow_changes:
            raise InvalidParameter("--allow-changes", "applies only with --resume", None)
        elif (run_dir / CHECKPOINT).exists():
            raise InvalidParameter(
                "--out",
                "already holds a checkpoint; pass --resume to continue it or choose another "
                "directory",
                str(run_dir),
            )
        if trainer.world.is_main:
            if record is not None:
                dropped = trim_metrics(run_dir / "metrics.jsonl", trainer.step)
                record_resume(run_dir, {"step": trainer.step, **record, "metrics_dropped": dropped})
            resolved = yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
            atomic_write(run_dir / "config.yaml", lambda tmp: Path(tmp).write_text(resolved))
        trainer.fit(progress=progress, on_log=on_log)
    return trainer, cfg


def _keep_trained_sigma_data(cfg: Config, run_dir: Path) -> Config:
    """A resumed network keeps the σ_data it was trained with unless the config sets one (it
    is estimated from the seed's draws, so it would otherwise follow a changed seed)."""
    if cfg.network.sigma_data is not None:
        return cfg
    stored = stored_config(run_dir) or {}
    value = (stored.get("network") or {}).get("sigma_data")
    if not isinstance(value, int | float) or not value > 0:
        return cfg
    cfg = cfg.model_copy(deep=True)
    cfg.network.sigma_data = float(value)
    return cfg


def _lock(run_dir: Path, log=None):
    """The run directory's one-writer lock (rank 0 only under torchrun)."""
    if int(os.environ.get("RANK", "0") or 0) != 0:
        return contextlib.nullcontext()
    return RunLock(run_dir, log)


# --- the whole run --------------------------------------------------------------------------
@dataclass
class SamplerOutcome:
    sampler: str
    samples: torch.Tensor
    nfe: int
    seconds: float
    evaluation: object  # metrics.Evaluation


@dataclass
class RunOutcome(Tabular):
    """What ``run`` made: per sampler its samples, cost and evaluation, and the bounds,
    budget and report. Shown (Jupyter, Rich) as the command line's summary — per sampler
    and metric the value, 95 % CI, floor and value / floor — with the same rows in
    ``to_frame()``; ``to_dict()`` is those rows with the run's paths and times."""

    run_dir: Path
    train_seconds: float
    outcomes: list[SamplerOutcome] = field(default_factory=list)
    score_error: list[dict] | None = None
    bounds: dict | None = None
    diagnostics: dict | None = None
    report: Path | None = None
    seconds: float = 0.0
    bounds_measured: dict | None = None  # per bound family: the measured metric beside it
    budget: dict | None = None  # the error budget of the main sampler (budget.json)
    sections: list[tuple[str, str]] = field(default_factory=list)  # extra report sections

    def _table(self) -> Table:
        from .metrics.contract import METRIC_COLUMNS

        cols = [Column("sampler", "text"), Column("NFE", key="nfe"), *METRIC_COLUMNS]
        rows = [[o.sampler, o.nfe, *r.row()] for o in self.outcomes for r in o.evaluation.results]
        title = f"run {self.run_dir}: training {self.train_seconds:.1f} s, whole run "
        return Table(title + f"{self.seconds:.1f} s", cols, rows)

    def to_dict(self) -> dict:
        report = None if self.report is None else str(self.report)
        return {
            "run_dir": str(self.run_dir), "report": report,
            "train_seconds": self.train_seconds, "seconds": self.seconds,
            "metrics": self._table().records(),
        }  # fmt: skip


def sample_with(cfg: Config, sc, model, process, event_shape, progress=False, device=None):
    """``sc.n`` samples of the sampler ``sc`` (seeded by the run's seed) on ``device``."""
    return generate(
        model,
        process,
        event_shape,
        sampler=sc.kind,
        grid=build_grid(sc),
        n=sc.n,
        seed=cfg.seed,
        batch_size=sc.batch_size,
        dtype=getattr(torch, sc.dtype),
        device=device,
        progress=progress,
        **sampler_options(sc),
    )


def evaluate_with(cfg: Config, samples: torch.Tensor, target, progress: bool = False):
    """The config's evaluation (``run.metrics`` with its bootstrap settings) of ``samples``,
    seeded by the run's seed."""
    from .metrics import evaluate

    return evaluate(
        samples,
        target,
        cfg.run.metrics,
        n_boot=cfg.run.n_boot,
        n_boot_ot=cfg.run.n_boot_ot,
        max_points=cfg.run.max_points,
        generator=torch.Generator().manual_seed(cfg.seed),
        progress=progress,
    )


def run(
    cfg: Config,
    run_dir: str | Path,
    *,
    resume: bool = False,
    progress: bool = False,
    log=print,
    allow_changes: Sequence[str] = (),
) -> RunOutcome:
    """train → sample (every sampler) → evaluate → score error → bounds → report, with the
    run directory locked throughout and everything checked before training starts
    (``scorelab.preflight``); ``allow_changes`` as for ``train``."""
    with _lock(Path(run_dir), log):
        check(cfg, ("train", "sample", "evaluate"))
        return _run(
            cfg, run_dir, resume=resume, progress=progress, log=log, allow_changes=allow_changes
        )


def _run(
    cfg: Config,
    run_dir: str | Path,
    *,
    resume: bool = False,
    progress: bool = False,
    log=print,
    allow_changes: Sequence[str] = (),
) -> RunOutcome:
    """train → sample (every sampler) → evaluate → score error → bounds → report.

    Sampling runs on the training device (``train.device``); metrics, the score error, the
    bounds and the diagnostics on the CPU in the sampler's dtype (float64 for diagnostics)."""
    from .diagnostics import diagnose, log_sigma_times
    from .metrics.score_error import score_error_profile

    t_start = time.perf_counter()
    run_dir = Path(run_dir)
    trainer, cfg = train(
        cfg, run_dir, resume=resume, progress=progress, allow_changes=allow_changes, log=log
    )
    if not trainer.world.is_main:  # only rank 0 samples, evaluates and writes
        return RunOutcome(run_dir, 0.0)
    if resume and trainer.resumed_from >= cfg.train.steps:
        log(
            f"nothing to train: the checkpoint is already at step {trainer.resumed_from} of "
            f"{cfg.train.steps}"
        )
    train_seconds = time.perf_counter() - t_start
    target, process = trainer.target, trainer.process
    model = load_score_model(run_dir / CHECKPOINT, process, dtype=getattr(torch, cfg.sampler.dtype))
    device = trainer.device
    model.to(device)
    result = RunOutcome(run_dir, train_seconds)
    result.outcomes = _sample_all(cfg, run_dir, model, target, process, device, progress, log)
    model.to("cpu")
    if target.has_score:
        log("score error against the exact score")
        times = log_sigma_times(process)
        result.score_error = score_error_profile(
            model, target, process, times, n=2000, generator=torch.Generator().manual_seed(1)
        )
        write_json(run_dir / "score_error.json", result.score_error)
    if cfg.run.bounds:
        log("bounds, with the score error measured from the trained model")
        result.bounds = _bounds(cfg, target, process, model)
        write_json(run_dir / "bounds.json", result.bounds)
        result.bounds_measured = measured_for_bounds(cfg, result, target)
    if target.has_score:
        log("error budget: score, discretisation, prior and early-stopping parts")
        _budget(cfg, result, target, process, model, log)
    if cfg.run.diagnose:
        log("diagnostics: FPE residual, conservativity, PF-ODE likelihood")
        result.diagnostics = diagnose(model, target, process, seed=cfg.seed, progress=progress)
        write_json(run_dir / "diagnostics.json", result.diagnostics)
    write_json(run_dir / "summary.json", summary(result))
    from .report import write_run_report

    log("figures and report")

    result.report = write_run_report(cfg, result, trainer, model)
    result.seconds = time.perf_counter() - t_start
    return result


def _sample_all(cfg: Config, run_dir: Path, model, target, process, device, progress, log):
    """Every configured sampler's samples (on ``device``, falling back to the CPU), written
    with their evaluation; the main sampler's evaluation is also evaluation.json."""
    outcomes = []
    samplers = [cfg.sampler] + [compared_sampler(cfg, i) for i in range(len(cfg.run.samplers))]
    for i, sc in enumerate(samplers):
        kind = sc.kind if sc.kind not in [s.kind for s in samplers[:i]] else f"{sc.kind}-{i}"
        on = "" if device.type == "cpu" else f" on {device}"
        log(f"sampling {sc.n} points with {sc.kind} ({sc.steps} steps){on}")
        try:
            gen = sample_with(cfg, sc, model, process, target.event_shape, progress, device)
        except RuntimeError as exc:  # a component not yet device-clean: the CPU still works
            if device.type == "cpu":
                raise
            log(f"sampling on {device} failed ({str(exc)[:120]}); sampling on the CPU instead")
            device = torch.device("cpu")
            model.to(device)
            gen = sample_with(cfg, sc, model, process, target.event_shape, progress, device)
        gen.samples = gen.samples.cpu()
        save_samples(
            run_dir / f"samples-{kind}.npz",
            gen.samples,
            config=cfg.model_dump(mode="json"),
            sampler=sc.model_dump(mode="json"),
            nfe=gen.nfe,
            seconds=gen.seconds,
        )
        ev = evaluate_with(cfg, gen.samples, target, progress)
        write_json(run_dir / f"evaluation-{kind}.json", ev.to_json())
        if i == 0:
            write_json(run_dir / "evaluation.json", ev.to_json())
        outcomes.append(SamplerOutcome(kind, gen.samples, gen.nfe, gen.seconds, ev))
    return outcomes


def _bounds(cfg: Config, target, process, model) -> dict:
    """All bounds with ε measured from the trained model (where the target's score is known)."""
    from .bounds import all_bounds

    score_model = model if target.has_score else None
    return all_bounds(
        target,
        process,
        cfg.sampler.steps,
        score_model=score_model,
        generator=torch.Generator().manual_seed(cfg.seed),
    )


def _budget(cfg: Config, result: RunOutcome, target, process, model, log) -> None:
    """The main sampler's error budget into budget.json, budget.png and a report section
    (``scorelab.budget``); a budget that cannot be made is reported and skipped."""
    from .budget.source import BUDGET_JSON, budget_of, write
    from .budget.view import section_html
    from .errors import ScorelabError

    try:
        b = budget_of(cfg, target, process, model, bounds=result.bounds or {})
    except ScorelabError as exc:
        log(f"error budget skipped: {exc}")
        return
    _, png = write(b, result.run_dir / BUDGET_JSON)
    result.budget = b.to_json()
    result.sections.append(("Error budget", section_html(result.budget, png)))


def measured_for_bounds(cfg: Config, result: RunOutcome, target) -> dict:
    """For each bound that was not refused, the metric it bounds measured on the main
    sampler's samples (``{family: {"metric", "value", "floor", "ci"}}``): KL(target ‖ samples)
    by the kNN estimator, W2 or W1 by exact OT (taken from the evaluation when it has them)."""
    from .metrics import evaluate
    from .report import BOUNDS

    if not result.outcomes or not result.bounds:
        return {}
    main = result.outcomes[0]
    wanted = {
        fam: BOUNDS[fam][2]
        for fam, terms in result.bounds.items()
        if fam in BOUNDS and "refused" not in terms
    }
    have = main.evaluation.to_json()
    missing = sorted({m for m in wanted.values() if m not in have})
    if missing:
        try:
            extra = evaluate(
                main.samples,
                target,
                missing,
                n_boot=cfg.run.n_boot,
                n_boot_ot=cfg.run.n_boot_ot,
                max_points=cfg.run.max_points,
                generator=torch.Generator().manual_seed(cfg.seed),
            ).to_json()
            have = {**extra, **have}
        except InvalidParameter:  # too few samples for the estimator: nothing to show
            pass
    return {fam: {"metric": m, **have[m]} for fam, m in wanted.items() if m in have}


def summary(result: RunOutcome) -> dict:
    out = {"train_seconds": result.train_seconds, "samplers": {}}
    if result.bounds_measured:
        out["bounds_measured"] = result.bounds_measured
    if result.budget:
        out["budget"] = {
            m: {p: v["value"] for p, v in d["parts"].items()}
            for m, d in result.budget["metrics"].items()
        }
    for o in result.outcomes:
        js = o.evaluation.to_json()
        out["samplers"][o.sampler] = {
            "nfe": o.nfe,
            "seconds": o.seconds,
            **{k: v for k, v in js.items() if k != "_skipped"},
        }
    return out
