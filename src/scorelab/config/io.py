"""Reading configurations: YAML files and ``--set key.path=value`` overrides."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from ..errors import ConfigError
from ..safeyaml import MAX_BYTES, safe_load
from .schema import SECTION_FIELDS, parse_config


def load_yaml(path: str | Path) -> dict:
    """A config file's mapping (UTF-8 YAML within ``scorelab.safeyaml``'s limits)."""
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"config: {path} is a directory; allowed: a YAML config file")
    if not p.exists():
        raise ConfigError(f"config: file not found: {path}")
    if not p.is_file():
        raise ConfigError(f"config: {path} is not a regular file; allowed: a YAML config file")
    try:
        size = p.stat().st_size
        if size > MAX_BYTES:
            raise ConfigError(f"config: {path} is {size} bytes; allowed: at most {MAX_BYTES}")
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"config: {path} cannot be read ({exc.strerror or exc})") from None
    data = safe_load(raw, f"config: {path}") or {}
    if not isinstance(data, dict):
        raise ConfigError(f"config: {path} must hold a mapping of keys, not {type(data).__name__}")
    return data


def parse_value(text: str):
    """A command-line value read as YAML, except that numbers YAML 1.1 leaves as strings
    (``1e-3``, ``.5e2``) are numbers."""
    value = safe_load(text, "value")
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value
        return int(number) if value.strip().lstrip("+-").isdigit() else number
    return value


def apply_overrides(data: Mapping, overrides: Sequence[str]) -> dict:
    """Apply ``a.b.c=value`` overrides (values parsed as YAML: numbers, lists, null…)."""
    out = _deepcopy(data)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(
                f"--set {_short(item)}: expected KEY=VALUE, e.g. process.schedule.a=4"
            )
        key, raw = item.split("=", 1)
        parts = [p for p in key.strip().split(".") if p]
        if not parts:
            raise ConfigError(f"--set {_short(item)}: empty key")
        try:
            value = parse_value(raw) if raw.strip() else None
        except ConfigError as exc:
            raise ConfigError(f"--set {_short(item)}: {str(exc).removeprefix('value: ')}") from None
        node = out
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if isinstance(child, str) and part in SECTION_FIELDS:  # `loss: dsm` is {kind: dsm}
                child = node[part] = {"kind": child}
            if not isinstance(child, dict):
                where = ".".join(parts[: i + 1])
                raise ConfigError(f"--set {_short(item)}: {where} is a value, not a section")
            node = child
        node[parts[-1]] = value
    return out


def _short(item: str, limit: int = 80) -> str:
    text = repr(item)
    return text if len(text) <= limit else text[: limit - 4] + "...'"


def _deepcopy(data: Any) -> Any:
    if isinstance(data, Mapping):
        return {k: _deepcopy(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_deepcopy(v) for v in data]
    return data


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> BaseModel:
    """A validated run config from a YAML file, with ``--set``-style overrides applied.

    Args:
        path: The YAML file (None: every default).
        overrides: ``"a.b.c=value"`` strings, the values read as YAML
            (``"process.schedule.a=4"``, ``"run.metrics=[w2,mmd]"``).

    Raises:
        ConfigError: Every problem at once, each naming its key.

    Examples:
        >>> import scorelab
        >>> cfg = scorelab.load_config(None, ["sampler.steps=10"])  # the defaults, and one change
        >>> cfg.sampler.steps
        10
    """
    data = load_yaml(path) if path is not None else {}
    return parse_config(apply_overrides(data, overrides))


def dump_yaml(cfg: BaseModel) -> str:
    """A config as YAML that reads back as the same config."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
