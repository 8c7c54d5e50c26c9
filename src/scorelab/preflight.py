"""Checks made before a job starts: everything ``run`` will use, so that a bad key fails in a
second rather than after training (``scorelab check`` runs them all), and the comparison of a
resumed run's config with the config its checkpoint was trained with.

``check(cfg, stages)`` builds the target and process, then per stage:

* ``train``: σ_data, the network, the device, the loss's registered needs (an exact score,
  no ``compile`` with a loss that needs create_graph), the memory of the training set and of
  one batch;
* ``sample``: every sampler (the main one and ``run.samplers``): that it applies to the
  process, its grid's times, the memory of its samples (its options are the schema's);
* ``score``: the score model named by ``score`` (a checkpoint is opened and read);
* ``evaluate``: that every metric named in ``run.metrics`` can run on ``sampler.n`` samples.

``resume_changes`` lists the keys that differ between the checkpoint's config and the new
one; ``check_resume`` refuses them unless allowed (``--allow-changes``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel

from . import registry
from .config import build, build_grid, build_score, compared_sampler, parse_config
from .config import sampler_options as _sampler_options
from .errors import ConfigError, InvalidParameter, ScorelabError
from .grids import TimeGrid
from .interfaces import from_score
from .models import build_model, resolve_sigma_data
from .resources import itemsize, require_memory
from .rundir import config_changes, covered, flatten
from .samplers import integrate
from .sampling import get_sampler
from .training import CHECKPOINT, check_loss_needs, resolve_device

STAGES = ("train", "sample", "score", "evaluate")

# keys a resumed run may change freely: they do not touch the training (what is sampled and
# evaluated afterwards, how often the run logs and saves); every change is still recorded
FREE_ON_RESUME = ("sampler", "score", "run", "train.log_every", "train.checkpoint_every")


def _prefixed(prefix: str, fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except InvalidParameter as exc:
        if exc.field.startswith(prefix.split(".")[0] + "."):
            raise
        raise exc.at(prefix) from None


def samplers_of(cfg: BaseModel, compared: bool = True) -> list[tuple[str, BaseModel]]:
    """(key, sampler section) of the main sampler and of each of ``run.samplers``."""
    out = [("sampler", cfg.sampler)]
    if compared:
        out += [
            (f"run.samplers[{i}]", compared_sampler(cfg, i)) for i in range(len(cfg.run.samplers))
        ]
    return out


def check(cfg: BaseModel, stages: Iterable[str] = STAGES, *, compared: bool = True) -> list[str]:
    """Run the checks of ``stages`` on a validated config; returns one line per thing
    checked, raises the first problem (a ``ScorelabError`` naming its key)."""
    stages = tuple(stages)
    for s in stages:
        if s not in STAGES:
            raise InvalidParameter("stages", "names an unknown stage", s, ", ".join(STAGES))
    done: list[str] = []
    target, process = build(cfg)
    done.append(f"target {target!r}; process {process!r}")
    shape = tuple(target.event_shape)
    dim = math.prod(shape)
    if "train" in stages:
        done += _check_train(cfg, target, process, shape, dim)
    if "sample" in stages:
        for key, sc in samplers_of(cfg, compared):
            done.append(_check_sampler(key, sc, process, shape))
    if "score" in stages:
        if cfg.score.kind == "checkpoint":
            build_score(cfg, target, process)
            done.append(f"score: checkpoint {cfg.score.path}")
        elif "sample" in stages:
            build_score(cfg, target, process)  # the exact score needs a target that has one
            done.append("score: the target's exact score")
    if "evaluate" in stages and cfg.run.metrics:
        done.append(_check_metrics(cfg, dim, compared))
    return done


def _check_train(cfg, target, process, shape, dim) -> list[str]:
    tc = cfg.train
    resolve_device(tc.device)
    check_loss_needs(tc, registry.entry("loss", tc.loss.kind), target)
    size = itemsize(torch.float64 if tc.dtype == "float64" else torch.float32)
    if tc.n_train is not None:
        require_memory(
            tc.n_train * dim * size, "train.n_train", tc.n_train, f"{tc.n_train} training points"
        )
    # a batch: x₀, noise, x_t, the network's activations and gradients (a lower bound)
    require_memory(
        8 * tc.batch_size * dim * size, "train.batch_size", tc.batch_size, "the training batch"
    )
    resolved = cfg.model_copy(deep=True)
    resolved.network.sigma_data = resolve_sigma_data(cfg, target)
    model = _prefixed("network", build_model, resolved, shape, process)
    n_params = sum(p.numel() for p in model.parameters())
    return [
        f"network: {cfg.network.kind} ({cfg.network.parameterisation}), {n_params} parameters",
        f"train: loss {tc.loss.kind}, {tc.steps} steps of {tc.batch_size}, device {tc.device}",
    ]


def _check_sampler(key: str, sc, process, shape) -> str:
    try:
        get_sampler(sc.kind, process)
    except InvalidParameter as exc:
        raise InvalidParameter(f"{key}.kind", exc.problem, exc.value, exc.allowed) from None
    try:
        options = _sampler_options(sc)
        grid = build_grid(sc)
        _prefixed(f"{key}.grid", grid.times, process)
        _dry_run(sc.kind, process, shape, grid, options)
    except InvalidParameter as exc:
        field = key + exc.field.removeprefix("sampler")
        raise InvalidParameter(field, exc.problem, exc.value, exc.allowed) from None
    dtype = getattr(torch, sc.dtype)
    per = math.prod(shape) * itemsize(dtype)
    batch = min(sc.n, sc.batch_size or sc.n)
    require_memory(per * (2 * sc.n + 4 * batch), f"{key}.n", sc.n, f"{sc.n} samples")
    return f"{key}: {sc.kind}, {sc.steps} steps on a {sc.grid.kind} grid, n = {sc.n}"


def _dry_run(kind: str, process, shape, grid, options: dict) -> None:
    """The sampler's own checks of its option values (pc's predictor, dopri5's tolerances),
    made now rather than after training: the grid's first step, on one sample with a zero
    score. An option it refuses is named as ``sampler.<option>``."""
    model = from_score(lambda x, t: torch.zeros_like(x), process)
    # one step between the grid's first two times, spaced in t: σ is infinite at t = 1 of
    # rectified flow, so a σ list cannot say where it starts
    t0, t1 = (float(t) for t in grid.times(process)[:2])
    first = TimeGrid("uniform", steps=1, t_min=t1, t_max=t0)
    x = torch.zeros(1, *shape, dtype=torch.float64)
    try:
        integrate(kind, model, process, first, x, noise=torch.Generator().manual_seed(0), **options)
    except InvalidParameter as exc:
        field = exc.field if exc.field.startswith("sampler") else f"sampler.{exc.field}"
        raise InvalidParameter(field, exc.problem, exc.value, exc.allowed) from None


def _check_metrics(cfg, dim: int, compared: bool) -> str:
    entries = registry.entries("metric")
    for name in cfg.run.metrics:
        m = entries[name].meta.get("min_n", 1)
        need = int(m(dim) if callable(m) else m)
        for key, sc in samplers_of(cfg, compared):
            if sc.n < need:
                raise InvalidParameter(
                    f"{key}.n",
                    f"is too small for metric '{name}' in run.metrics",
                    sc.n,
                    f"at least {need}",
                )
    return f"run.metrics: {', '.join(cfg.run.metrics)}"


# --------------------------------------------------------------------------------------------
# resume
# --------------------------------------------------------------------------------------------


def stored_config(run_dir: str | Path) -> dict | None:
    """The config a run directory's checkpoint was trained with (its metadata; else the run's
    config.yaml), normalised by the current schema; None when there is none."""
    run_dir = Path(run_dir)
    raw = None
    try:
        from safetensors import safe_open

        with safe_open(str(run_dir / CHECKPOINT), framework="pt") as fh:
            text = (fh.metadata() or {}).get("config")
        raw = json.loads(text) if text else None
    except Exception:  # an unreadable checkpoint is reported when it is loaded
        raw = None
    if not isinstance(raw, dict):
        from .config import load_yaml

        try:
            raw = load_yaml(run_dir / "config.yaml")
        except ScorelabError:
            return None
    try:
        return parse_config(raw).model_dump(mode="json")
    except ConfigError:
        return raw


def resume_changes(old: dict, new: BaseModel) -> dict[str, tuple[Any, Any]]:
    return config_changes(old, new.model_dump(mode="json"))


def check_resume(
    cfg: BaseModel, run_dir: str | Path, allow_changes: Sequence[str] = ()
) -> dict[str, Any]:
    """Compare the resolved config of a resumed run with its checkpoint's; refuse changed keys
    that are neither free (``FREE_ON_RESUME``) nor in ``allow_changes``. Returns the record of
    the resume (the changes and what allowed them)."""
    allowed = _check_allowed(cfg, allow_changes)
    old = stored_config(run_dir)
    if old is None:
        return {"changes": {}, "note": "no stored config to compare with"}
    changes = resume_changes(old, cfg)
    refused = {k: v for k, v in changes.items() if not covered(k, (*FREE_ON_RESUME, *allowed))}
    if refused:
        shown = "; ".join(f"{k}: {_short(a)} → {_short(b)}" for k, (a, b) in refused.items())
        keys = ",".join(refused)
        raise InvalidParameter(
            "--resume",
            f"the config differs from the one the checkpoint was trained with in "
            f"{len(refused)} key{'s' if len(refused) > 1 else ''} ({shown}); to continue "
            f"anyway pass --allow-changes {keys} (the change is recorded in resumes.jsonl), "
            "or train into a new --out",
        )
    return {
        "changes": {k: [a, b] for k, (a, b) in changes.items()},
        "allowed": list(allowed),
    }


def _check_allowed(cfg: BaseModel, keys: Sequence[str]) -> list[str]:
    known = flatten(cfg.model_dump(mode="json"))
    out = []
    for key in keys:
        key = key.strip()
        if not key:
            continue
        if not any(k == key or k.startswith(key + ".") for k in known):
            raise InvalidParameter(
                "--allow-changes",
                "names no key of the config",
                key,
                "dotted keys such as train.steps, train.lr, seed (comma-separated)",
            )
        out.append(key)
    return out


def _short(v: Any, limit: int = 40) -> str:
    text = json.dumps(v, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


__all__ = [
    "FREE_ON_RESUME",
    "STAGES",
    "check",
    "check_resume",
    "resume_changes",
    "samplers_of",
    "stored_config",
]
