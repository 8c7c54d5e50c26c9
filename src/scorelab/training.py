"""The training loop: a score model fitted by a score-matching loss, resumable to the bit.

One explicit ``torch.Generator`` drives the data, the training times and the noise; its state is
saved with the parameters, the EMA copy and the optimiser state in a safetensors checkpoint
(written atomically; no pickle is ever loaded), so a run stopped and resumed ends where an
uninterrupted run ends. Ctrl-C writes a checkpoint before leaving.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from .errors import InvalidParameter, ScorelabError
from .losses import LOSSES
from .processes import ForwardProcess
from .storage import atomic_write
from .targets import Target


@dataclass
class TrainSettings:
    steps: int = 2000
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 0.0
    warmup: int = 100
    decay: str = "cosine"  # or "none"
    grad_clip: float | None = 1.0
    ema_decay: float = 0.999
    loss: str = "dsm"
    noise: str = "uniform_t"
    weighting: str = "s2"
    sigma_data: float = 0.5
    p_mean: float = -1.2
    p_std: float = 1.2
    n_train: int | None = None  # None: fresh target samples every step
    dtype: str = "float32"
    log_every: int = 50
    checkpoint_every: int = 500
    seed: int = 0

    def __post_init__(self):
        for name in ("steps", "batch_size", "log_every", "checkpoint_every"):
            if int(getattr(self, name)) < 1:
                raise InvalidParameter(name, "must be ≥ 1", getattr(self, name))
        if not self.lr > 0:
            raise InvalidParameter("lr", "must be > 0", self.lr)
        if not 0 <= self.ema_decay < 1:
            raise InvalidParameter("ema_decay", "must lie in [0, 1)", self.ema_decay)
        if self.decay not in ("cosine", "none"):
            raise InvalidParameter("decay", "is not a schedule", self.decay, "cosine, none")
        if self.loss not in LOSSES:
            raise InvalidParameter("loss", "is not a loss", self.loss, ", ".join(LOSSES))
        if self.dtype not in ("float32", "float64"):
            raise InvalidParameter("dtype", "is not supported", self.dtype, "float32, float64")

    def lr_at(self, step: int) -> float:
        """Linear warm-up, then cosine decay to 0 (or constant)."""
        warm = min(1.0, (step + 1) / max(1, self.warmup))
        if self.decay == "none":
            return self.lr * warm
        progress = min(1.0, step / max(1, self.steps))
        return self.lr * warm * 0.5 * (1 + math.cos(math.pi * progress))


@dataclass
class TrainResult:
    step: int
    losses: list[float]
    seconds: float


class Trainer:
    """Fits ``model`` (a score model ``model(x, t)``, e.g. a ``ScoreNetwork``) to ``target``."""

    def __init__(
        self,
        model: nn.Module,
        target: Target,
        process: ForwardProcess,
        settings: TrainSettings,
        run_dir: str | Path | None = None,
    ):
        self.model, self.target, self.process, self.s = model, target, process, settings
        self.dtype = getattr(torch, settings.dtype)
        self.model.to(self.dtype)
        self.ema = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.opt = torch.optim.AdamW(
            self.params, lr=settings.lr, weight_decay=settings.weight_decay
        )
        self.gen = torch.Generator().manual_seed(settings.seed)
        self.step = 0
        self.run_dir = None if run_dir is None else Path(run_dir)
        self.data = None
        if settings.n_train is not None:
            self.data = target.sample(settings.n_train, self.gen, dtype=self.dtype)

    # --- one step -------------------------------------------------------------------------
    def _batch(self) -> torch.Tensor:
        b = self.s.batch_size
        if self.data is None:
            return self.target.sample(b, self.gen, dtype=self.dtype)
        idx = torch.randint(0, self.data.shape[0], (b,), generator=self.gen)
        return self.data[idx]

    def _loss(self, x0: torch.Tensor) -> torch.Tensor:
        s = self.s
        kw = dict(noise=s.noise, weighting=s.weighting, sigma_data=s.sigma_data)
        if s.loss == "esm":
            return LOSSES["esm"](
                self.model,
                x0,
                self.process,
                self.gen,
                exact_score=self.target.score_model(self.process),
                **kw,
            )
        return LOSSES["dsm"](
            self.model, x0, self.process, self.gen, p_mean=s.p_mean, p_std=s.p_std, **kw
        )

    def train_step(self) -> tuple[float, float]:
        lr = self.s.lr_at(self.step)
        for group in self.opt.param_groups:
            group["lr"] = lr
        loss = self._loss(self._batch()).mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        clip = self.s.grad_clip if self.s.grad_clip is not None else float("inf")
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.params, clip))
        self.opt.step()
        with torch.no_grad():
            d = self.s.ema_decay
            for k, v in self.model.state_dict().items():
                if v.is_floating_point():
                    self.ema[k].mul_(d).add_(v.detach(), alpha=1 - d)
                else:
                    self.ema[k].copy_(v)
        self.step += 1
        return float(loss.detach()), grad_norm

    # --- the loop ---------------------------------------------------------------------------
    def fit(
        self, progress: bool = False, on_log: Callable[[dict], None] | None = None
    ) -> TrainResult:
        losses, t0, last = [], time.perf_counter(), time.perf_counter()
        bar = _progress(progress, self.s.steps, self.step)
        try:
            while self.step < self.s.steps:
                loss, gnorm = self.train_step()
                losses.append(loss)
                if not math.isfinite(loss):
                    raise ScorelabError(
                        f"training diverged at step {self.step} (loss {loss}); lower the "
                        "learning rate or check the data scale"
                    )
                if self.step % self.s.log_every == 0 or self.step == self.s.steps:
                    now = time.perf_counter()
                    record = {
                        "step": self.step,
                        "loss": loss,
                        "lr": self.s.lr_at(self.step - 1),
                        "grad_norm": gnorm,
                        "it_s": self.s.log_every / max(now - last, 1e-9),
                    }
                    last = now
                    self._log(record)
                    if on_log is not None:
                        on_log(record)
                if self.run_dir is not None and self.step % self.s.checkpoint_every == 0:
                    self.save()
                if bar is not None:
                    bar.update(bar.task_ids[0], completed=self.step, description=f"loss {loss:.4g}")
        except KeyboardInterrupt:
            if self.run_dir is not None:
                self.save()
            raise
        finally:
            if bar is not None:
                bar.stop()
        if self.run_dir is not None:
            self.save()
        return TrainResult(self.step, losses, time.perf_counter() - t0)

    def _log(self, record: dict) -> None:
        if self.run_dir is None:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with open(self.run_dir / "metrics.jsonl", "a") as fh:
            fh.write(json.dumps(record) + "\n")

    # --- checkpoints ------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        if self.run_dir is None:
            raise InvalidParameter("run_dir", "is needed to save or resume", None)
        return self.run_dir / "checkpoint.safetensors"

    def save(self) -> Path:
        """Parameters, EMA, optimiser state, step and RNG state, written atomically."""
        tensors = {
            f"model.{k}": v.detach().contiguous() for k, v in self.model.state_dict().items()
        }
        tensors.update({f"ema.{k}": v.contiguous() for k, v in self.ema.items()})
        state = self.opt.state_dict()["state"]
        for i, st in state.items():
            for name, value in st.items():
                tensors[f"opt.{i}.{name}"] = torch.as_tensor(value).contiguous()
        tensors["rng"] = self.gen.get_state()
        if self.data is not None:
            tensors["data"] = self.data.contiguous()
        meta = {"step": str(self.step), "settings": json.dumps(asdict(self.s))}
        return atomic_write(self.checkpoint_path, lambda tmp: save_file(tensors, str(tmp), meta))

    def resume(self) -> None:
        """Continue from the run directory's checkpoint (exactly where it stopped)."""
        path = self.checkpoint_path
        if not path.is_file():
            raise InvalidParameter("resume", "found no checkpoint in the run directory", str(path))
        tensors = load_file(str(path))
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
        model_sd = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
        try:
            self.model.load_state_dict(model_sd)
        except RuntimeError as exc:
            raise InvalidParameter(
                "checkpoint", f"does not fit this network ({str(exc).splitlines()[0]})", str(path)
            ) from None
        self.ema = {k[4:]: v for k, v in tensors.items() if k.startswith("ema.")}
        opt_state: dict = {}
        for k, v in tensors.items():
            if k.startswith("opt."):
                _, i, name = k.split(".", 2)
                opt_state.setdefault(int(i), {})[name] = v
        sd = self.opt.state_dict()
        sd["state"] = opt_state
        self.opt.load_state_dict(sd)
        self.gen.set_state(tensors["rng"])
        if "data" in tensors:
            self.data = tensors["data"]
        self.step = int(meta.get("step", 0))


def load_model_weights(model: nn.Module, path: str | Path, use_ema: bool = True) -> nn.Module:
    """Load a checkpoint's (EMA) weights into ``model`` (safetensors only; no pickle)."""
    path = Path(path)
    if not path.is_file():
        raise InvalidParameter("score.path", "file not found", str(path))
    tensors = load_file(str(path))
    prefix = "ema." if use_ema else "model."
    sd = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
    try:
        model.load_state_dict(sd)
    except RuntimeError as exc:
        raise InvalidParameter(
            "score.path",
            f"is a checkpoint of another architecture ({str(exc).splitlines()[0]})",
            str(path),
        ) from None
    return model


def _progress(enabled: bool, total: int, done: int):
    if not enabled:
        return None
    from rich.progress import BarColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

    bar = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        "{task.completed}/{task.total} steps",
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    bar.add_task("training", total=total, completed=done)
    bar.start()
    return bar
