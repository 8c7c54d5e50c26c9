"""What ``scorelab list`` shows, without importing torch: a snapshot of the built-in
registrations (``manifest.json`` beside this file).

Listing the live registries imports every component module, and with them torch (≈ 1.5 s of a
2-second command). The snapshot holds, per group and kind, the parameters with their defaults
and the first sentence of the docstring — nothing else. It is used only when no foreign plugin
is configured (``SCORELAB_PLUGINS`` empty and no other package's ``scorelab.plugins`` entry
point); otherwise the live registries answer. ``tests/test_manifest.py`` fails when the snapshot
differs from the live registries; regenerate it with ``python -m scorelab.manifest``.
"""

from __future__ import annotations

import inspect
import json
import math
import os
from pathlib import Path
from typing import Any

from .groups import GROUPS, PLUGIN_ENV, PLUGIN_GROUP

PATH = Path(__file__).with_name("manifest.json")
OWN_DISTRIBUTION = "scorelab"


def json_default(value: Any) -> Any:
    """A parameter's default as JSON: numbers, strings, lists and null as they are; inf as
    "inf"; a required parameter as "required"; anything else as its repr."""
    if value is inspect.Parameter.empty:
        return "required"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [json_default(v) for v in value]
    return repr(value)


def default_text(value: Any) -> str:
    return "required" if value is inspect.Parameter.empty else repr(value)


def live() -> dict[str, dict[str, dict[str, Any]]]:
    """{group: {kind: {"parameters": {name: JSON default}, "text": "k=v, …", "doc": …}}} from
    the registries (imports every component module and the plugins)."""
    from . import registry

    return {
        group: {
            name: {
                "parameters": {k: json_default(v) for k, v in e.parameters.items()},
                "text": ", ".join(f"{k}={default_text(v)}" for k, v in e.parameters.items()),
                "doc": e.doc,
            }
            for name, e in registry.entries(group).items()
        }
        for group in GROUPS
    }


def foreign_plugins() -> bool:
    """Whether a plugin other than scorelab's own is configured (it may register anything)."""
    if os.environ.get(PLUGIN_ENV, "").strip():
        return True
    from importlib.metadata import entry_points

    for ep in entry_points(group=PLUGIN_GROUP):
        dist = getattr(ep, "dist", None)
        if dist is None or dist.metadata["Name"] != OWN_DISTRIBUTION:
            return True
    return False


def listing() -> dict[str, dict[str, dict[str, Any]]]:
    """The snapshot where it can stand for the registries, else the live registries."""
    if not foreign_plugins() and PATH.is_file():
        return json.loads(PATH.read_text(encoding="utf-8"))
    return live()


def write(path: Path = PATH) -> None:
    path.write_text(
        json.dumps(live(), indent=1, ensure_ascii=False, sort_keys=False) + "\n", encoding="utf-8"
    )


if __name__ == "__main__":
    write()
    print(f"wrote {PATH}")
