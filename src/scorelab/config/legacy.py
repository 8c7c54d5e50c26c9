"""Configs in the earlier spelling, translated to the sections of the current schema.

Earlier configs had fixed fields where a component's parameters now live in its own section:

* ``train.p_mean`` / ``train.p_std`` → the ``lognormal`` noise law's parameters
  (``train.noise: {kind: lognormal, p_mean: …, p_std: …}``);
* ``train.fp: {alpha, weighting, points, div, n_probes, scalar_beta}`` → the ``fp_dsm`` loss's
  parameters (``train.loss: {kind: fp_dsm, alpha: …, fp_weighting: …}``);
* ``sampler`` and ``network`` as one flat section holding every kind's options (null where
  unset) → only the chosen kind's options;
* ``sampler.grid.rho`` on every grid → a parameter of the ``edm`` grid only.

Each translation is reported in one ``ConfigDeprecationWarning`` line naming the new spelling.
A value the old code ignored (p_mean with another noise law, fp with another loss, rho on
another grid) is dropped when it is the old default (every saved config.yaml wrote them out)
and refused otherwise, with the new spelling: it is unclear what was meant. Run directories
written by earlier versions therefore load for resume and sampling unchanged.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

from .. import registry
from ..errors import ConfigError
from ..registry import DEFAULT_KINDS, SECTION_KEYS


class ConfigDeprecationWarning(FutureWarning):
    """A config used an earlier spelling, translated to the current one (shown by default)."""


# the defaults of the earlier fixed fields: a saved config wrote them out whatever the kind
OLD_NOISE = {"p_mean": -1.2, "p_std": 1.2}
OLD_FP = {
    "alpha": 0.15,
    "weighting": "likelihood",
    "points": "perturbed",
    "div": "exact",
    "n_probes": 1,
    "scalar_beta": 0.0,
}
OLD_RHO = 7.0


def translate(data: Mapping) -> dict:
    """``data`` with earlier spellings translated (a copy); one warning lists what changed.
    Raises ``ConfigError`` where the old keys cannot be placed unambiguously."""
    out = _copy(data)
    notes: list[str] = []
    train = out.get("train")
    if isinstance(train, dict):
        _noise_parameters(train, notes)
        _fp_section(train, notes)
    for group in ("sampler", "network"):
        section = out.get(group)
        if isinstance(section, dict):
            dropped = _drop_nulls(section, group)
            if dropped:
                notes.append(f"{group}: {len(dropped)} null keys of other {group} kinds dropped")
    sampler = out.get("sampler")
    if isinstance(sampler, dict):
        _grid_rho(sampler.get("grid"), "sampler.grid", notes)
    run = out.get("run")
    if isinstance(run, dict) and isinstance(run.get("samplers"), list):
        for i, entry in enumerate(run["samplers"]):
            if isinstance(entry, dict):
                _grid_rho(entry.get("grid"), f"run.samplers.{i}.grid", notes)
    if notes:
        warnings.warn(
            "config: earlier spelling translated: " + "; ".join(notes),
            ConfigDeprecationWarning,
            stacklevel=3,
        )
    return out


def drop_nulls(section: dict, group: str) -> dict:
    """``section`` without the null keys that meant "this option is unset" in the earlier
    flat sections: options of other kinds, and the kind's own whose default is not null."""
    out = dict(section)
    _drop_nulls(out, group)
    return out


def _drop_nulls(section: dict, group: str) -> list[str]:
    """Drop them in place; returns the dropped keys that belong to other kinds."""
    kind = section.get("kind", DEFAULT_KINDS[group])
    if not isinstance(kind, str) or kind not in registry.names(group):
        return []  # the schema reports the kind
    own = registry.entry(group, kind).parameters
    others = []
    for key in [k for k, v in section.items() if v is None and k not in SECTION_KEYS[group]]:
        if key not in own:
            others.append(key)
            del section[key]
        elif own[key] is not None:
            del section[key]
    return sorted(others)


def _section(value: Any, default: str) -> dict | None:
    """A section given as a kind name or a mapping, as a mapping (None: neither)."""
    if value is None:
        return {"kind": default}
    if isinstance(value, str):
        return {"kind": value}
    return dict(value) if isinstance(value, Mapping) else None


def _kind_takes(group: str, section: dict | None, keys) -> bool:
    if section is None or section.get("kind") not in registry.names(group):
        return False
    params = registry.entry(group, section["kind"]).parameters
    return all(k in params for k in keys)


def _merge(section: dict, moved: dict, where: str, new: str) -> dict:
    for key, value in moved.items():
        if key in section and section[key] != value:
            raise ConfigError(
                f"{where}: given twice, differently ({value!r} here and {section[key]!r} in "
                f"{new}.{key}); write it once, as {new}.{key}"
            )
    return {**moved, **section}


def _noise_parameters(train: dict, notes: list[str]) -> None:
    """train.p_mean / p_std → the noise law's parameters."""
    moved = {k: train.pop(k) for k in ("p_mean", "p_std") if k in train}
    if not moved:
        return
    names = ", ".join(f"train.{k}" for k in moved)
    noise = _section(train.get("noise"), "uniform_t")
    if _kind_takes("noise", noise, moved):
        train["noise"] = _merge(noise, moved, f"train.{next(iter(moved))}", "train.noise")
        notes.append(f"{names} → train.noise.{{{', '.join(moved)}}}")
        return
    kind = noise.get("kind") if noise else None
    if all(OLD_NOISE[k] == v for k, v in moved.items()):
        notes.append(f"{names} dropped (lognormal's parameters; noise {kind!r} takes none)")
        return
    raise ConfigError(
        f"train.{next(iter(moved))}: is now a parameter of the noise law, and noise {kind!r} "
        "takes none; write train.noise: {kind: lognormal, "
        + ", ".join(f"{k}: {v}" for k, v in moved.items())
        + "}"
    )


def _fp_section(train: dict, notes: list[str]) -> None:
    """train.fp → the fp_dsm loss's parameters (its ``weighting`` named ``fp_weighting``)."""
    if "fp" not in train:
        return
    fp = train.pop("fp")
    if fp is None:
        return
    if not isinstance(fp, Mapping):
        raise ConfigError(
            "train.fp: is now the parameters of loss fp_dsm; write train.loss: "
            "{kind: fp_dsm, alpha: 0.15, fp_weighting: likelihood, ...}"
        )
    moved = {("fp_weighting" if k == "weighting" else k): v for k, v in fp.items()}
    loss = _section(train.get("loss"), "dsm")
    if _kind_takes("loss", loss, moved):
        train["loss"] = _merge(loss, moved, "train.fp", "train.loss")
        notes.append("train.fp → train.loss's parameters (fp.weighting → fp_weighting)")
        return
    kind = loss.get("kind") if loss else None
    if all(OLD_FP.get(k, object()) == v for k, v in fp.items()):
        notes.append(f"train.fp dropped (fp_dsm's parameters; loss {kind!r} takes none)")
        return
    given = ", ".join(f"{k}: {v}" for k, v in moved.items())
    raise ConfigError(
        f"train.fp: is now the parameters of loss fp_dsm, and loss {kind!r} takes none of "
        f"them; write train.loss: {{kind: fp_dsm, {given}}}"
    )


def _grid_rho(grid: Any, where: str, notes: list[str]) -> None:
    """rho on a grid whose spacing takes none: dropped when it is the old default."""
    if not isinstance(grid, dict) or "rho" not in grid:
        return
    kind = grid.get("kind", DEFAULT_KINDS["grid"])
    if kind not in registry.names("grid") or "rho" in registry.entry("grid", kind).parameters:
        return
    if grid["rho"] == OLD_RHO:
        del grid["rho"]
        notes.append(f"{where}.rho dropped (the edm grid's parameter; grid {kind!r} takes none)")


def _copy(data: Any) -> Any:
    if isinstance(data, Mapping):
        return {k: _copy(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_copy(v) for v in data]
    return data
