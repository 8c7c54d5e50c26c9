"""The training loop: a score model fitted by a score-matching loss, resumable to the bit.

One explicit ``torch.Generator`` drives the data, the training times and the noise; its state is
saved with the parameters, the EMA copy and the optimiser state in a safetensors checkpoint
(written atomically; no pickle is ever loaded), so a run stopped and resumed ends where an
uninterrupted run ends. SIGINT (Ctrl-C) and SIGTERM stop the loop at the next step boundary
and write a checkpoint there (``scorelab.interrupts``); a non-finite loss or gradient stops
training before the optimiser step, keeping the last good checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from .distributed import World
from .errors import Interrupted, InvalidParameter, NonFinite
from .interrupts import StopSignals
from .losses import configured, sample_times
from .processes import ForwardProcess
from .progress import tracker
from .registry import entries, entry
from .seeding import step_seed
from .storage import atomic_write
from .targets import Target

if TYPE_CHECKING:
    from pydantic import BaseModel as TrainConfig  # the train section (config.schema)


# parameter dtype and autocast dtype per setting
DTYPES = {
    "float32": (torch.float32, None),
    "float64": (torch.float64, None),
    "bfloat16": (torch.float32, torch.bfloat16),
}


def resolve_device(name: str, field: str = "train.device") -> torch.device:
    """A torch device from "cpu", "cuda", "cuda:K" or "auto" (``field`` names the setting
    in the error)."""
    if name != "auto" and not (name == "cpu" or name.startswith("cuda")):
        raise InvalidParameter(field, "is not a device", name, "cpu, cuda, auto")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InvalidParameter(field, "CUDA is not available here", name, "cpu, auto")
    return torch.device(name)


def check_loss_needs(train: TrainConfig, loss, target: Target) -> None:
    """Refuse a setting that the loss's registered needs rule out: ``train.compile`` with a
    loss that differentiates through the model's derivatives (``needs_create_graph``:
    compiled graphs do not support double backward), a target without an exact score with a
    loss that needs one (``needs_exact_score``)."""
    if train.compile and loss.meta.get("needs_create_graph"):
        raise InvalidParameter(
            "train.compile",
            f"is not supported with loss '{loss.name}' (it differentiates the model's "
            "derivatives with create_graph, which compiled graphs do not support)",
            True,
            "false",
        )
    if loss.meta.get("needs_exact_score") and not target.has_score:
        plain = [n for n, e in entries("loss").items() if not e.meta.get("needs_exact_score")]
        raise InvalidParameter(
            "train.loss",
            f"'{loss.name}' needs a target with an exact score; '{target.kind}' has none",
            loss.name,
            ", ".join(plain),
        )


@dataclass
class TrainResult:
    """What ``Trainer.fit`` returns.

    Attributes:
        step: The step reached (``train.steps``).
        losses: The loss of every step of this call (this rank's).
        seconds: The wall time of this call.
    """

    step: int
    losses: list[float]
    seconds: float


def train_config(train: TrainConfig | Mapping | None = None) -> TrainConfig:
    """A validated ``train`` section from a section model, a mapping of its keys (errors name
    the key, ``train.lr``), or None (every default)."""
    from .config.schema import train_config as validated

    return validated(train)


class Trainer:
    """Fits ``model`` (a score model ``model(x, t)``, e.g. a ``ScoreNetwork``) to ``target``
    as the ``train`` section of a config says (a ``TrainConfig`` or a mapping of its keys).

    ``seed`` seeds the generator of the data, times and noise (and, with the step and rank, the
    loss's own draws). ``sigma_data`` is the σ_data of the loss weighting (λ_EDM); None takes
    the model's own (a ``ScoreNetwork``'s), else 0.5. ``metadata`` (e.g. the resolved config)
    is stored in every checkpoint, so a checkpoint says how to rebuild its network. Under
    torchrun every rank runs a Trainer; only rank 0 writes.
    """

    def __init__(
        self,
        model: nn.Module,
        target: Target,
        process: ForwardProcess,
        train: TrainConfig | Mapping | None = None,
        run_dir: str | Path | None = None,
        *,
        seed: int,
        sigma_data: float | None = None,
        metadata: dict | None = None,
        world: World | None = None,
    ):
        train = train_config(train)
        loss = entry("loss", train.loss.kind)
        check_loss_needs(train, loss, target)
        if sigma_data is None:
            sigma_data = getattr(model, "sigma_data", 0.5)
        self.model, self.target, self.process, self.train = model, target, process, train
        self.seed, self.sigma_data = int(seed), float(sigma_data)
        self.loss_fn, self.loss_entry = loss.obj, loss
        self.noise = configured("noise", train.noise, "train.noise")
        self.weighting = configured("weighting", train.weighting, "train.weighting")
        self.device = resolve_device(train.device)
        self.world = world or World.from_env(str(self.device))
        if self.world.distributed and self.device.type == "cuda":
            self.device = torch.device("cuda", self.world.local_rank)
        self.dtype, self.autocast = DTYPES[train.dtype]
        self.model.to(device=self.device, dtype=self.dtype)
        self.world.broadcast_parameters(self.model)
        self.forward = torch.compile(model) if train.compile else model
        self.ema = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self._ema_pairs = None  # (ema, live) tensor lists, built on first use
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.opt = torch.optim.AdamW(self.params, lr=train.lr, weight_decay=train.weight_decay)
        # The data generator is identical on every rank: each draws the global batch and keeps
        # its slice. Randomness inside a loss (e.g. the FP term's probes) comes from a generator
        # reseeded per (step, rank), so it needs no saved state.
        self.gen = torch.Generator().manual_seed(self.seed)
        self.loss_gen = torch.Generator()
        self.step = 0
        self.resumed_from = 0  # the step ``resume`` found (0: a fresh run)
        self.run_dir = None if run_dir is None else Path(run_dir)
        self._saved_step: int | None = None  # the step of the last checkpoint written or read
        self._in_step = False
        self.metadata = dict(metadata or {})
        self.data = None
        if train.n_train is not None:
            self.data = target.sample(train.n_train, self.gen, dtype=self.dtype)
        self._loss_kw = self._loss_keywords()

    # --- one step -------------------------------------------------------------------------
    def _loss_keywords(self) -> dict:
        """What the loss receives besides the batch: the noise law and weighting, σ_data, the
        loss's own parameters and, for a loss that asks for it, the target's exact score."""
        kw = dict(
            noise=self.noise,
            weighting=self.weighting,
            sigma_data=self.sigma_data,
            **self.train.loss_options(),
        )
        if self.loss_entry.meta.get("needs_exact_score"):
            kw["exact_score"] = self.target.score_model(self.process)
        return kw

    def _batch(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The global batch (x₀, t, z) from the shared generator, then this rank's slice."""
        b = self.train.batch_size
        if self.data is None:
            x0 = self.target.sample(b, self.gen, dtype=self.dtype)
        else:
            x0 = self.data[torch.randint(0, self.data.shape[0], (b,), generator=self.gen)]
        t = sample_times(self.process, b, self.gen, self.noise)
        z = torch.randn(x0.shape, generator=self.gen, dtype=self.dtype)
        part = self.world.local_slice(b)
        return tuple(v[part].to(self.device) for v in (x0, t, z))

    def train_step(self) -> tuple[float, float]:
        """One optimiser step on a fresh batch (learning rate from the schedule, optional clipping,
        then the EMA update); returns (loss, gradient norm).
        """
        lr = self.train.lr_at(self.step)
        for group in self.opt.param_groups:
            group["lr"] = lr
        x0, t, z = self._batch()
        self.loss_gen.manual_seed(step_seed(self.seed, self.step, self.world.rank))
        with self._autocast():
            per_example = self.loss_fn(
                self.forward, x0, self.process, self.loss_gen, t=t, z=z, **self._loss_kw
            )
        loss = per_example.float().mean() if self.autocast else per_example.mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.world.average_gradients(self.params)
        clip = self.train.grad_clip if self.train.grad_clip is not None else float("inf")
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.params, clip))
        value = float(loss.detach())
        if not (math.isfinite(value) and math.isfinite(grad_norm)):
            # before the optimiser step: parameters, EMA and optimiser state stay as they were
            # (the averaged gradient norm is the same on every rank, so all ranks stop here)
            raise NonFinite(self._diverged_message(value, grad_norm))
        self.opt.step()
        self._update_ema()
        self.step += 1
        return value, grad_norm

    def _autocast(self):
        # no autocast context at all when it is off: entering a disabled one costs ~2 % of a
        # small network's step on the CPU
        if not self.autocast:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast)

    def _diverged_message(self, loss: float, grad_norm: float) -> str:
        what = f"the loss is {loss}" if not math.isfinite(loss) else "the loss is finite"
        msg = (
            f"training diverged at step {self.step + 1}: {what} and the gradient norm is "
            f"{grad_norm}; stopped before the optimiser step"
        )
        if self.run_dir is not None:
            if self._saved_step is not None:
                msg += (
                    f"; the last good checkpoint (step {self._saved_step}) is kept in "
                    f"{self.checkpoint_path}"
                )
            else:
                msg += "; no checkpoint was written"
        return msg + "; lower train.lr, set train.grad_clip, or check the data's scale"

    @torch.no_grad()
    def _update_ema(self) -> None:
        """ema ← d·ema + (1 − d)·θ, as one fused lerp over all floating tensors (a per-tensor
        Python loop over ``state_dict()`` cost ~15 % of a step for small networks)."""
        if self._ema_pairs is None:
            live = self.model.state_dict(keep_vars=True)
            self._ema_pairs = (
                [self.ema[k] for k, v in live.items() if v.is_floating_point()],
                [v.detach() for v in live.values() if v.is_floating_point()],
                [(self.ema[k], v) for k, v in live.items() if not v.is_floating_point()],
            )
        ema, live, other = self._ema_pairs
        torch._foreach_lerp_(ema, live, 1.0 - self.train.ema_at(self.step))
        for e, v in other:
            e.copy_(v)

    # --- the loop ---------------------------------------------------------------------------
    def fit(
        self, progress: bool = False, on_log: Callable[[dict], None] | None = None
    ) -> TrainResult:
        """Train from the current step to ``train.steps``: log every ``log_every`` steps (to
        ``metrics.jsonl`` and ``on_log``), checkpoint every ``checkpoint_every`` steps and at the
        end (atomically). On SIGINT/SIGTERM it stops at the next step boundary, writes a
        checkpoint and raises ``Interrupted`` (``resume()`` continues bit for bit); ``progress``
        shows a bar on stderr.
        """
        losses, t0, last = [], time.perf_counter(), time.perf_counter()
        last_step = self.step
        c = self.train
        bar = tracker(progress and self.world.is_main, c.steps, "training", "steps", done=self.step)
        # SIGINT/SIGTERM stop the loop at the next step boundary, after a checkpoint; a
        # second one stops at once, keeping the last checkpoint (scorelab.interrupts)
        stop = StopSignals()
        self._in_step = False
        try:
            stop.__enter__()
            while self.step < c.steps:
                self._in_step = True
                loss, gnorm = self.train_step()
                self._in_step = False
                losses.append(loss)
                if self.step % c.log_every == 0 or self.step == c.steps:
                    now = time.perf_counter()
                    record = {
                        "step": self.step,
                        "loss": self.world.mean(loss),
                        "lr": c.lr_at(self.step - 1),
                        "grad_norm": gnorm,
                        "it_s": (self.step - last_step) / max(now - last, 1e-9),
                    }
                    last, last_step = now, self.step
                    self._log(record)
                    if on_log is not None:
                        on_log(record)
                if self.run_dir is not None and self.step % c.checkpoint_every == 0:
                    self.save()
                bar.update(self.step, info=f"loss {loss:.4g}")
                if self._stop_requested(stop):
                    where = ""
                    if self.run_dir is not None:
                        where = f"; checkpoint written: {self.save()} (continue with --resume)"
                    raise Interrupted(
                        f"{stop.name}: stopped after step {self.step} of {c.steps}{where}",
                        stop.requested,
                    )
        except Interrupted:
            raise
        except KeyboardInterrupt:
            # at a step boundary (raised by a callback, or between steps) the state is whole
            # and is saved; in the middle of a step it is not, and the last checkpoint stays
            if self.run_dir is not None and not self._in_step:
                self.save()
            raise
        finally:
            stop.__exit__(None, None, None)
            bar.close()
        if self.run_dir is not None:
            self.save()
        return TrainResult(self.step, losses, time.perf_counter() - t0)

    def _stop_requested(self, stop: StopSignals) -> bool:
        """Whether any rank received SIGINT/SIGTERM (all ranks stop at the same step)."""
        if not self.world.distributed:
            return stop.requested is not None
        flag = self.world.mean(0.0 if stop.requested is None else 1.0)
        if flag > 0 and stop.requested is None:
            import signal

            stop.requested = int(signal.SIGTERM)
        return flag > 0

    def _log(self, record: dict) -> None:
        if self.run_dir is None or not self.world.is_main:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with open(self.run_dir / "metrics.jsonl", "a") as fh:
            fh.write(json.dumps(record) + "\n")

    # --- checkpoints ------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        if self.run_dir is None:
            raise InvalidParameter("run_dir", "is needed to save or resume", None)
        return self.run_dir / CHECKPOINT

    def save(self) -> Path:
        """Parameters, EMA, optimiser state, step and RNG state, written atomically (rank 0)."""
        path = self.checkpoint_path
        if self.world.is_main:
            tensors = {
                f"model.{k}": v.detach().cpu().contiguous()
                for k, v in self.model.state_dict().items()
            }
            tensors.update({f"ema.{k}": v.cpu().contiguous() for k, v in self.ema.items()})
            state = self.opt.state_dict()["state"]
            for i, st in state.items():
                for name, value in st.items():
                    tensors[f"opt.{i}.{name}"] = torch.as_tensor(value).cpu().contiguous()
            tensors["rng"] = self.gen.get_state()
            if self.data is not None:
                tensors["data"] = self.data.contiguous()
            meta = {
                "step": str(self.step),
                "settings": json.dumps(
                    {
                        **self.train.model_dump(mode="json"),
                        "seed": self.seed,
                        "sigma_data": self.sigma_data,
                    }
                ),
                **{k: json.dumps(v) for k, v in self.metadata.items()},
            }
            self.run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write(path, lambda tmp: save_file(tensors, str(tmp), meta))
        self._saved_step = self.step
        self.world.barrier()
        return path

    def resume(self) -> None:
        """Continue from the run directory's checkpoint (exactly where it stopped)."""
        path = self.checkpoint_path
        if not path.is_file():
            raise InvalidParameter("resume", "found no checkpoint in the run directory", str(path))
        tensors, meta = read_checkpoint(path)
        step = _checkpoint_step(meta, path)
        model_sd = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
        _load_state(self.model, model_sd, path, "checkpoint")
        try:
            ema = {k[4:]: v.to(self.device) for k, v in tensors.items() if k.startswith("ema.")}
            live = self.model.state_dict()
            if set(ema) != set(live) or any(ema[k].shape != v.shape for k, v in live.items()):
                raise ValueError("its EMA weights do not match its model weights")
            rng = tensors.get("rng")
            if rng is None or rng.dtype != torch.uint8:
                raise ValueError("it holds no generator state ('rng')")
            opt_state: dict = {}
            for k, v in tensors.items():
                if k.startswith("opt."):
                    _, i, name = k.split(".", 2)
                    opt_state.setdefault(int(i), {})[name] = v.to(self.device)
            sd = self.opt.state_dict()
            sd["state"] = opt_state
            self.opt.load_state_dict(sd)
            self.gen.set_state(rng)
        except (KeyError, ValueError, TypeError, RuntimeError, IndexError) as exc:
            raise InvalidParameter(
                "--resume",
                f"the checkpoint is damaged or not a scorelab training checkpoint ({exc})",
                str(path),
            ) from None
        self.ema = ema
        self._ema_pairs = None
        if "data" in tensors:
            self.data = tensors["data"]
        self.step = self.resumed_from = self._saved_step = step


CHECKPOINT = "checkpoint.safetensors"


def _checkpoint_step(meta: dict, path: Path) -> int:
    text = meta.get("step", "0")
    try:
        step = int(text)
    except (TypeError, ValueError):
        step = -1
    if step < 0:
        raise InvalidParameter(
            "--resume",
            f"the checkpoint's metadata is malformed (step {text!r}, not a count of steps)",
            str(path),
        )
    return step


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """A checkpoint's tensors and metadata (safetensors: no pickle is ever loaded)."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT
    if not path.is_file():
        raise InvalidParameter("score.path", "no checkpoint found there", str(path))
    try:
        tensors = load_file(str(path))
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
    except Exception as exc:  # safetensors raises its own error types for foreign files
        raise InvalidParameter(
            "score.path", f"is not a safetensors checkpoint ({exc})", str(path)
        ) from None
    return tensors, meta


def _load_state(model: nn.Module, state: dict, path: Path, field_name: str) -> None:
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        detail = lines[1] if len(lines) > 1 else lines[0]
        raise InvalidParameter(
            field_name,
            f"is a checkpoint of another architecture ({detail[:160]})",
            str(path),
        ) from None


def load_model_weights(model: nn.Module, path: str | Path, use_ema: bool = True) -> nn.Module:
    """Load a checkpoint's (EMA) weights into ``model`` (safetensors only; no pickle)."""
    tensors, _ = read_checkpoint(path)
    prefix = "ema." if use_ema else "model."
    sd = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
    _load_state(model, sd, Path(path), "score.path")
    return model
