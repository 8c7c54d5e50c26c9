"""What a sweep is: a base config, grids of values for dotted keys, seeds — and the cells.

A cell is one resolved config (the base with the cell's overrides and seed) and a job. Its
identity is the hash of the resolved config and the job, so a cell's directory
``DIR/cells/<hash>/`` is found again by any later run of the same sweep (resume), by a sweep
that shares cells with it, and on any machine.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from ..config.io import apply_overrides, parse_value
from ..config.schema import parse_config
from ..errors import ConfigError, InvalidParameter

JOBS = ("run", "sample", "bound", "budget")


@dataclass(frozen=True)
class Cell:
    """One point of the sweep: its swept values, its seed, its job and resolved config."""

    values: dict[str, Any]
    seed: int
    job: str
    config: dict = field(repr=False)  # the resolved config, JSON-ready

    @property
    def key(self) -> str:
        """The cell's identity: a hash of the job and the resolved config."""
        text = json.dumps({"job": self.job, "config": self.config}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def label(self) -> str:
        parts = [f"{k}={_short(v)}" for k, v in self.values.items()]
        return ", ".join([*parts, f"seed={self.seed}"])


def parse_grid(item: str) -> tuple[str, list[Any]]:
    """``KEY=V1,V2,...`` (each value read as YAML, like ``--set``) or ``KEY=START:STOP:STEP``
    (a range, STOP included when a step lands on it)."""
    if "=" not in item:
        raise InvalidParameter("--grid", "expected KEY=V1,V2,... or KEY=START:STOP:STEP", item)
    key, raw = (s.strip() for s in item.split("=", 1))
    if not key or any(not p for p in key.split(".")):
        raise InvalidParameter("--grid", "has an empty key", item)
    if raw.count(":") == 2 and "{" not in raw and "[" not in raw:
        return key, _range(item, raw)
    values = [_yaml_value(item, v) for v in _split_top(raw)]
    if not values:
        raise InvalidParameter("--grid", "gives no values", item)
    return key, values


def _range(item: str, raw: str) -> list[float | int]:
    try:
        start, stop, step = (float(p) for p in raw.split(":"))
    except ValueError:
        raise InvalidParameter(
            "--grid", "a range must be START:STOP:STEP with numbers", item
        ) from None
    if not (math.isfinite(start) and math.isfinite(stop) and math.isfinite(step)) or step == 0:
        raise InvalidParameter("--grid", "a range needs finite numbers and a step ≠ 0", item)
    if (stop - start) / step < 0:
        raise InvalidParameter("--grid", "the step goes away from STOP", item)
    n = math.floor((stop - start) / step + 1e-9) + 1
    if n > 10_000:
        raise InvalidParameter("--grid", f"gives {n} values; at most 10000 per key", item)
    values = [start + i * step for i in range(n)]
    as_int = all(float(p).is_integer() for p in (start, step))
    return [int(v) for v in values] if as_int else [round(v, 12) for v in values]


def _split_top(raw: str) -> list[str]:
    """Split on commas outside brackets (so a value may be a YAML list or mapping)."""
    parts, depth, cur = [], 0, []
    for ch in raw:
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


def _yaml_value(item: str, text: str) -> Any:
    try:
        return parse_value(text)
    except yaml.YAMLError as exc:
        raise InvalidParameter(
            "--grid", f"value {text!r} is not valid YAML ({exc})", item
        ) from None


def _short(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def cells(
    base: Mapping,
    grids: Sequence[tuple[str, list[Any]]],
    seeds: Sequence[int],
    job: str,
    overrides: Sequence[str] = (),
) -> list[Cell]:
    """The cartesian product of the grids × seeds, each validated as a full config (a bad
    value is reported with its cell before anything runs)."""
    if job not in JOBS:
        raise InvalidParameter("--job", "is not a sweep job", job, ", ".join(JOBS))
    keys = [k for k, _ in grids]
    if len(set(keys)) != len(keys):
        raise InvalidParameter("--grid", "names a key twice", ", ".join(keys))
    if not seeds:
        raise InvalidParameter("--seeds", "gives no seed", list(seeds))
    data = apply_overrides(base, overrides)
    out, seen = [], {}
    for combo in itertools.product(*(v for _, v in grids)):
        values = dict(zip(keys, combo, strict=True))
        for seed in seeds:
            cfg_data = _set_all(data, values)
            cfg_data["seed"] = int(seed)
            try:
                cfg = parse_config(cfg_data)
            except ConfigError as exc:
                where = ", ".join(f"{k}={_short(v)}" for k, v in values.items())
                raise ConfigError(f"cell {where}: {exc}") from None
            cell = Cell(values, int(seed), job, cfg.model_dump(mode="json"))
            if cell.key in seen:
                raise InvalidParameter(
                    "--grid",
                    f"cells {seen[cell.key]} and {cell.label()} resolve to the same config",
                    None,
                )
            seen[cell.key] = cell.label()
            out.append(cell)
    return out


def _set_all(data: Mapping, values: Mapping[str, Any]) -> dict:
    out = json.loads(json.dumps(data))  # a deep copy of plain data
    for key, value in values.items():
        node = out
        parts = key.split(".")
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise InvalidParameter(
                    "--grid", f"{'.'.join(parts[: i + 1])} is a value, not a section", key
                )
            node = child
        node[parts[-1]] = value
    return out
