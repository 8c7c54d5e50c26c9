"""The budget of a run directory (its checkpoint, with the run's sampler, grid, n and seed) or
of a config (its score: the target's exact score unless it names a checkpoint), and the files
it writes: budget.json and budget.png."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import torch

from ..errors import InvalidParameter
from ..storage import write_json
from .core import REFINE, Budget, error_budget

BUDGET_JSON = "budget.json"
BUDGET_PNG = "budget.png"


def _stored_bounds(run_dir: Path) -> dict | None:
    """The run's own bounds.json (same N and measured score error), when it has one."""
    path = run_dir / "bounds.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def load(source: Path, overrides: list[str] | None = None):
    """(config, target, process, score model or None for the exact score, bounds or None) of
    a run directory or a config file."""
    from ..config import build, build_score, load_config

    source = Path(source)
    if source.is_dir():
        if not (source / "config.yaml").is_file():
            raise InvalidParameter(
                "RUN_DIR", "has no config.yaml: not a scorelab run directory", str(source)
            )
        from ..models import load_score_model
        from ..training import CHECKPOINT

        if not (source / CHECKPOINT).is_file():
            raise InvalidParameter(
                "RUN_DIR", f"has no {CHECKPOINT}: train it first (scorelab run)", str(source)
            )
        cfg = load_config(source / "config.yaml", overrides or [])
        target, process = build(cfg)
        dtype = getattr(torch, cfg.sampler.dtype)
        model = load_score_model(source / CHECKPOINT, process, dtype=dtype)
        return cfg, target, process, model, _stored_bounds(source)
    if not source.is_file():
        raise InvalidParameter(
            "CONFIG|RUN_DIR", "is neither a run directory nor a file", str(source)
        )
    cfg = load_config(source, overrides or [])
    target, process = build(cfg)
    score = build_score(cfg, target, process) if cfg.score.kind == "checkpoint" else None
    return cfg, target, process, score, None


def budget_of(
    cfg,
    target,
    process,
    score,
    *,
    n: int | None = None,
    seed: int | None = None,
    order=None,
    refine: int = REFINE,
    bounds: dict | None = None,
    interactions: bool | None = None,
    log: Callable[[str], None] | None = None,
) -> Budget:
    """``error_budget`` with the config's main sampler, grid, options, seed and dtype, and n
    the config's sampler.n capped at run.max_points (the evaluation's cap for exact OT)."""
    from ..config import build_grid, sampler_options

    sc = cfg.sampler
    return error_budget(
        target,
        process,
        score=score,
        sampler=sc.kind,
        grid=build_grid(sc),
        params=sampler_options(sc),
        n=min(sc.n, cfg.run.max_points) if n is None else n,
        seed=cfg.seed if seed is None else seed,
        order=order,
        dtype=getattr(torch, sc.dtype),
        batch_size=sc.batch_size,
        refine=refine,
        bounds=bounds,
        interactions=interactions,
        log=log,
    )


def write(budget: Budget, json_path: Path, title: str = "") -> tuple[Path, Path]:
    """budget.json and, beside it, the figure (same name, .png)."""
    from .view import figure

    json_path = Path(json_path)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    data = budget.to_json()
    write_json(json_path, data)
    png = figure(data, json_path.with_suffix(".png"), title)
    return json_path, png


def flat(data: dict) -> dict[str, float]:
    """The budget as flat numbers for a sweep's summary: ``{metric}_{part}`` with
    ``_ci_lo``/``_ci_hi``, ``{metric}_total``, and the run's ``nfe``."""
    out: dict[str, float] = {}
    if data["settings"].get("nfe") is not None:
        out["nfe"] = data["settings"]["nfe"]
    for metric, m in data["metrics"].items():
        for part, e in [("total", m["total"]), *m["parts"].items()]:
            out[f"{metric}_{part}"] = e["value"]
            if e["ci"] is not None:
                out[f"{metric}_{part}_ci_lo"], out[f"{metric}_{part}_ci_hi"] = e["ci"]
    return out
