"""The main job: train → sample → evaluate → bounds → report, in one run directory.

A run directory holds everything a run produced:

    config.yaml               the resolved config (σ_data filled in)
    metrics.jsonl             step, loss, lr, grad_norm, it/s
    checkpoint.safetensors    model, EMA, optimiser, step, RNG state, and the config
    samples-<sampler>.npz     samples with their metadata (NFE, wall time)
    evaluation.json           the main sampler's metrics (the shape of `scorelab evaluate --json`)
    evaluation-<sampler>.json the same for every compared sampler
    score_error.json          the score error against the exact score over t (when known)
    bounds.json               the theoretical bounds with the measured score error (when known)
    diagnostics.json          FPE residual and profile, conservativity, PF-ODE NLL (paper D)
    summary.json              the headline numbers
    *.png, report.html        figures and the self-contained report

Each stage is a plain function, so notebooks can call them one by one.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml

from .config import (
    Config,
    SamplerConfig,
    build,
    build_grid,
    compared_sampler,
    sampler_options,
)
from .errors import InvalidParameter
from .parameterisations import ScoreNetwork, estimate_sigma_data
from .processes import ForwardProcess
from .sampling import generate
from .storage import atomic_write, save_samples, write_json
from .targets import Target
from .training import CHECKPOINT, Trainer, TrainSettings, load_model_weights, read_checkpoint

SIGMA_DATA_SAMPLES = 10_000


# --- models ---------------------------------------------------------------------------------
def resolve_sigma_data(cfg: Config, target: Target) -> float:
    """σ_data from the config, or estimated from the training data (n_train points, or 10⁴
    fresh draws) with the run's seed."""
    if cfg.network.sigma_data is not None:
        return float(cfg.network.sigma_data)
    n = cfg.train.n_train or SIGMA_DATA_SAMPLES
    g = torch.Generator().manual_seed(cfg.seed)
    return estimate_sigma_data(target.sample(n, g, dtype=torch.float64))


def build_model(cfg: Config, event_shape: tuple[int, ...], process: ForwardProcess) -> ScoreNetwork:
    """The config's network, wrapped by its parameterisation; weights drawn from the seed.

    ``cfg.network.sigma_data`` must be resolved (see ``resolve_sigma_data``)."""
    from .networks import build_network

    net_cfg = cfg.network
    if net_cfg.sigma_data is None:
        raise InvalidParameter("network.sigma_data", "must be resolved before building", None)
    torch.manual_seed(cfg.seed)  # networks initialise from the global generator
    network = build_network(net_cfg.kind, tuple(event_shape), **net_cfg.network_params())
    return ScoreNetwork(network, process, net_cfg.parameterisation, net_cfg.sigma_data)


def train_settings(cfg: Config, sigma_data: float) -> TrainSettings:
    t = cfg.train
    options = {}
    if t.loss == "fp_dsm":
        # The FP section's keys are fp_dsm_loss's keywords, except its weighting, which is
        # named apart from the DSM term's.
        fp = t.fp.model_dump()
        options = {("fp_weighting" if k == "weighting" else k): v for k, v in fp.items()}
    return TrainSettings(
        steps=t.steps,
        batch_size=t.batch_size,
        lr=t.lr,
        weight_decay=t.weight_decay,
        warmup=t.warmup,
        decay=t.decay,
        grad_clip=t.grad_clip,
        ema_decay=t.ema_decay,
        ema_half_life=t.ema_half_life,
        ema_warmup=t.ema_warmup,
        loss=t.loss,
        noise=t.noise,
        weighting=t.weighting,
        sigma_data=sigma_data,
        p_mean=t.p_mean,
        p_std=t.p_std,
        loss_options=options,
        n_train=t.n_train,
        dtype=t.dtype,
        device=t.device,
        compile=t.compile,
        log_every=t.log_every,
        checkpoint_every=t.checkpoint_every,
        seed=cfg.seed,
    )


def make_trainer(cfg: Config, run_dir: str | Path | None) -> tuple[Trainer, Config]:
    """The trainer of a config and the resolved config (σ_data filled in), which every
    checkpoint stores."""
    target, process = build(cfg)
    sigma_data = resolve_sigma_data(cfg, target)
    cfg = cfg.model_copy(deep=True)
    cfg.network.sigma_data = sigma_data
    model = build_model(cfg, target.event_shape, process)
    metadata = {
        "config": cfg.model_dump(mode="json"),
        "event_shape": list(target.event_shape),
    }
    trainer = Trainer(
        model, target, process, train_settings(cfg, sigma_data), run_dir, metadata=metadata
    )
    return trainer, cfg


def train(
    cfg: Config, run_dir: str | Path, resume: bool = False, progress: bool = False, on_log=None
) -> tuple[Trainer, Config]:
    """Train (or continue training) the config's model into ``run_dir``."""
    run_dir = Path(run_dir)
    trainer, cfg = make_trainer(cfg, run_dir)
    if resume:
        trainer.resume()
    elif (run_dir / CHECKPOINT).exists():
        raise InvalidParameter(
            "--out",
            "already holds a checkpoint; pass --resume to continue it or choose another directory",
            str(run_dir),
        )
    if trainer.world.is_main:
        resolved = yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
        atomic_write(run_dir / "config.yaml", lambda tmp: Path(tmp).write_text(resolved))
    trainer.fit(progress=progress, on_log=on_log)
    return trainer, cfg


def load_score_model(
    path: str | Path,
    process: ForwardProcess,
    use_ema: bool = True,
    dtype: torch.dtype = torch.float32,
) -> ScoreNetwork:
    """A trained checkpoint's network as a score model under ``process`` (frozen, eval mode).

    The network is rebuilt from the config stored in the checkpoint. It conditions on
    c = ¼ ln σ(t), so it may be sampled under another process with the same σ range."""
    tensors, meta = read_checkpoint(path)
    if "config" not in meta or "event_shape" not in meta:
        raise InvalidParameter(
            "score.path", "is not a scorelab training checkpoint (no stored config)", str(path)
        )
    from .config import parse_config

    cfg = parse_config(json.loads(meta["config"]))
    model = build_model(cfg, tuple(json.loads(meta["event_shape"])), process)
    load_model_weights(model, path, use_ema=use_ema)
    model.to(dtype).eval().requires_grad_(False)
    del tensors
    return model


# --- the whole run --------------------------------------------------------------------------
@dataclass
class SamplerOutcome:
    sampler: str
    samples: torch.Tensor
    nfe: int
    seconds: float
    evaluation: object  # metrics.Evaluation


@dataclass
class RunOutcome:
    run_dir: Path
    train_seconds: float
    outcomes: list[SamplerOutcome] = field(default_factory=list)
    score_error: list[dict] | None = None
    bounds: dict | None = None
    diagnostics: dict | None = None
    report: Path | None = None
    seconds: float = 0.0


def sample_with(cfg: Config, sc: SamplerConfig, model, process, event_shape, progress=False):
    """``sc.n`` samples of the sampler ``sc`` (seeded by the run's seed)."""
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
        progress=progress,
        **sampler_options(sc),
    )


def run(
    cfg: Config,
    run_dir: str | Path,
    *,
    resume: bool = False,
    progress: bool = False,
    log=print,
) -> RunOutcome:
    """train → sample (every sampler) → evaluate → score error → bounds → report."""
    from .diagnostics import diagnose, log_sigma_times
    from .metrics import evaluate
    from .metrics.score_error import score_error_profile

    t_start = time.perf_counter()
    run_dir = Path(run_dir)
    trainer, cfg = train(cfg, run_dir, resume=resume, progress=progress)
    if not trainer.world.is_main:  # only rank 0 samples, evaluates and writes
        return RunOutcome(run_dir, 0.0)
    train_seconds = time.perf_counter() - t_start
    target, process = trainer.target, trainer.process
    model = load_score_model(run_dir / CHECKPOINT, process, dtype=getattr(torch, cfg.sampler.dtype))
    result = RunOutcome(run_dir, train_seconds)
    samplers = [cfg.sampler] + [compared_sampler(cfg, i) for i in range(len(cfg.run.samplers))]
    for i, sc in enumerate(samplers):
        kind = sc.kind if sc.kind not in [s.kind for s in samplers[:i]] else f"{sc.kind}-{i}"
        log(f"sampling {sc.n} points with {sc.kind} ({sc.steps} steps)")
        gen = sample_with(cfg, sc, model, process, target.event_shape, progress)
        save_samples(
            run_dir / f"samples-{kind}.npz",
            gen.samples,
            config=cfg.model_dump(mode="json"),
            sampler=sc.model_dump(mode="json"),
            nfe=gen.nfe,
            seconds=gen.seconds,
        )
        ev = evaluate(
            gen.samples,
            target,
            cfg.run.metrics,
            n_boot=cfg.run.n_boot,
            n_boot_ot=cfg.run.n_boot_ot,
            max_points=cfg.run.max_points,
            generator=torch.Generator().manual_seed(cfg.seed),
        )
        write_json(run_dir / f"evaluation-{kind}.json", ev.to_json())
        if i == 0:
            write_json(run_dir / "evaluation.json", ev.to_json())
        result.outcomes.append(SamplerOutcome(kind, gen.samples, gen.nfe, gen.seconds, ev))
    if target.has_score:
        times = log_sigma_times(process)
        result.score_error = score_error_profile(
            model, target, process, times, n=2000, generator=torch.Generator().manual_seed(1)
        )
        write_json(run_dir / "score_error.json", result.score_error)
    if cfg.run.bounds:
        result.bounds = _bounds(cfg, target, process, model)
        write_json(run_dir / "bounds.json", result.bounds)
    if cfg.run.diagnose:
        log("diagnostics: FPE residual, conservativity, PF-ODE likelihood")
        result.diagnostics = diagnose(model, target, process, seed=cfg.seed)
        write_json(run_dir / "diagnostics.json", result.diagnostics)
    write_json(run_dir / "summary.json", summary(result))
    from .report import write_run_report

    result.report = write_run_report(cfg, result, trainer, model)
    result.seconds = time.perf_counter() - t_start
    return result


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


def summary(result: RunOutcome) -> dict:
    out = {"train_seconds": result.train_seconds, "samplers": {}}
    for o in result.outcomes:
        js = o.evaluation.to_json()
        out["samplers"][o.sampler] = {
            "nfe": o.nfe,
            "seconds": o.seconds,
            **{k: v for k, v in js.items() if k != "_skipped"},
        }
    return out
