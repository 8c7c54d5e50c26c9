"""What one cell does, in whichever process runs it: an ordinary run directory.

``run_cell`` is the only function the executors ship to workers. It sets one torch thread
(cells are small; a sweep's parallelism is across cells), runs the job into the cell's
directory, and records the outcome in ``cell.json`` (written atomically at the start, as
"running", and at the end, as "done" or "failed" with the error) — so a cell interrupted by
a dead worker is seen as unfinished and run again.
"""

from __future__ import annotations

import json
import math
import time
import traceback
from pathlib import Path
from typing import Any

import torch

from ..storage import write_json

CELL_FILE = "cell.json"


def read_cell(cell_dir: Path) -> dict | None:
    """The recorded state of a cell, or None when it never started (or the record is
    unreadable, which counts as unfinished)."""
    try:
        return json.loads((cell_dir / CELL_FILE).read_text())
    except (OSError, ValueError):
        return None


def _recorded(cell_dir: str, record: dict, work, key: str) -> dict:
    """Run ``work(out)`` single-threaded with the cell's record kept in ``cell.json``:
    "running" before, then "done" (its value under ``key``) or "failed" with the error, and
    the wall time. A cell's failure is its result; the sweep goes on."""
    from ..errors import ScorelabError

    torch.set_num_threads(1)
    out = Path(cell_dir)
    out.mkdir(parents=True, exist_ok=True)
    record = {**record, "status": "running", "seconds": None}
    write_json(out / CELL_FILE, record)
    t0 = time.perf_counter()
    try:
        record.update({"status": "done", key: work(out)})
    except Exception as exc:
        record.update(
            status="failed",
            error=f"{type(exc).__name__}: {exc}",
            traceback=None if isinstance(exc, ScorelabError) else traceback.format_exc(),
        )
    record["seconds"] = time.perf_counter() - t0
    write_json(out / CELL_FILE, record)
    return record


def run_cell(job: str, config: dict, cell_dir: str, info: dict) -> dict:
    """Run ``job`` on ``config`` into ``cell_dir``; return (and record) the cell's outcome:
    ``{status, seconds, metrics, error}`` plus ``info`` (grid values, seed)."""
    return _recorded(
        cell_dir, {**info, "job": job, "metrics": {}}, lambda out: JOBS[job](config, out), "metrics"
    )


def _cfg(config: dict):
    from ..config import parse_config

    return parse_config(config)


def _sample_job(config: dict, out: Path) -> dict:
    """``scorelab sample`` then ``scorelab evaluate``: samples.npz and evaluation.json."""
    from ..config import build, build_score, dump_yaml
    from ..pipeline import evaluate_with, sample_with
    from ..storage import save_samples

    cfg = _cfg(config)
    (out / "config.yaml").write_text(dump_yaml(cfg))
    target, process = build(cfg)
    score = build_score(cfg, target, process)
    gen = sample_with(cfg, cfg.sampler, score, process, target.event_shape)
    save_samples(out / "samples.npz", gen.samples, config=config, nfe=gen.nfe, seconds=gen.seconds)
    ev = evaluate_with(cfg, gen.samples, target)
    write_json(out / "evaluation.json", ev.to_json())
    return {"nfe": gen.nfe, **_evaluation_metrics(ev.to_json())}


def _run_job(config: dict, out: Path) -> dict:
    """``scorelab run``: train, sample every sampler, evaluate, bounds, report."""
    from ..pipeline import run

    result = run(_cfg(config), out, progress=False, log=lambda msg: None)
    metrics: dict[str, Any] = {"train_seconds": result.train_seconds}
    for i, o in enumerate(result.outcomes):
        prefix = "" if i == 0 else f"{o.sampler}/"
        metrics.update(_evaluation_metrics(o.evaluation.to_json(), prefix))
        metrics[f"{prefix}nfe"] = o.nfe
    return metrics


def _bound_job(config: dict, out: Path) -> dict:
    """``scorelab bound``: every bound of the configuration (bounds.json)."""
    from ..bounds import all_bounds
    from ..config import build

    cfg = _cfg(config)
    target, process = build(cfg)
    bounds = all_bounds(
        target, process, cfg.sampler.steps, generator=torch.Generator().manual_seed(cfg.seed)
    )
    write_json(out / "bounds.json", bounds)
    return _numbers(bounds)


def _budget_job(config: dict, out: Path) -> dict:
    """``scorelab run``'s training (resumed where the cell has a checkpoint), then
    ``scorelab budget`` of the trained model: budget.json and budget.png."""
    from ..budget.source import BUDGET_JSON, budget_of, flat, write
    from ..models import load_score_model
    from ..pipeline import train
    from ..training import CHECKPOINT

    cfg = _cfg(config)
    trainer, cfg = train(cfg, out, resume=(out / CHECKPOINT).is_file(), log=lambda msg: None)
    target, process = trainer.target, trainer.process
    model = load_score_model(out / CHECKPOINT, process, dtype=getattr(torch, cfg.sampler.dtype))
    result = budget_of(cfg, target, process, model)
    write(result, out / BUDGET_JSON)
    return flat(result.to_json())


def _evaluation_metrics(ev: dict, prefix: str = "") -> dict:
    out = {}
    for name, r in ev.items():
        if name.startswith("_"):
            continue
        out[f"{prefix}{name}"] = r["value"]
        out[f"{prefix}{name}_floor"] = r["floor"]
        if r.get("ci") is not None:
            out[f"{prefix}{name}_ci_lo"], out[f"{prefix}{name}_ci_hi"] = r["ci"]
    return out


def _numbers(tree: Any, prefix: str = "") -> dict:
    """The finite numbers of a nested mapping, keyed by dotted path."""
    out = {}
    if isinstance(tree, dict):
        for k, v in tree.items():
            out.update(_numbers(v, f"{prefix}{k}."))
    elif isinstance(tree, bool):
        pass
    elif isinstance(tree, int | float) and math.isfinite(tree):
        out[prefix.rstrip(".")] = float(tree)
    return out


JOBS = {"run": _run_job, "sample": _sample_job, "bound": _bound_job, "budget": _budget_job}


def run_function(module: str, name: str, kwargs: dict, cell_dir: str, info: dict) -> dict:
    """A study's cell: ``module.name(**kwargs)`` (a top-level function of JSON-able
    arguments returning JSON-able results), recorded in ``cell.json`` like a sweep's cell."""
    import importlib

    def work(out: Path):
        return getattr(importlib.import_module(module), name)(**kwargs)

    return _recorded(cell_dir, info, work, "result")
