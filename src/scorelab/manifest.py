"""What ``scorelab list`` shows, without importing torch: a snapshot of the built-in
registrations (``manifest.json`` beside this file), used only while it is fresh.

Listing the live registries imports every component module, and with them torch (≈ 1.5 s of a
2-second command). The snapshot holds, per group and kind, the parameters with their defaults
and the first sentence of the docstring, and the fingerprint of the code it was made from: a
hash of the package's version and of the source of every module of the package (what
registers a component, what its configuration model and docstring say, and how the registry
reads them can each live in any of them).

``listing`` reads the snapshot only when its fingerprint is the current code's, no foreign
plugin is configured (``SCORELAB_PLUGINS`` empty and no other package's ``scorelab.plugins``
entry point) and the process has registered nothing of its own yet; otherwise the live
registries answer, and a stale snapshot is rewritten from them where the package directory
is writable, so that the next ``list`` is fast again. A new built-in is therefore listed at
once, with no second file to edit (``tests/test_startup.py``). ``python -m scorelab.manifest``
rewrites the snapshot; ``--check`` exits 1 when it is stale.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from .groups import GROUPS, PLUGIN_ENV, PLUGIN_GROUP

PATH = Path(__file__).with_name("manifest.json")
PACKAGE = Path(__file__).parent
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


def fingerprint(package: Path = PACKAGE) -> str:
    """A hash of the package's version and of every ``.py`` file under ``package`` (path and
    content, in path order): it changes whenever the code that the listing comes from may."""
    from . import __version__

    h = hashlib.sha256(f"scorelab {__version__}\n".encode())
    files = sorted(p for p in package.rglob("*.py") if "__pycache__" not in p.parts)
    for p in files:
        h.update(p.relative_to(package).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest() if files else ""


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


def stored(path: Path = PATH) -> dict[str, Any] | None:
    """The snapshot file's content ({"fingerprint", "listing"}), or None if unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    ok = isinstance(data, dict) and isinstance(data.get("listing"), dict)
    return data if ok else None


def fresh(path: Path = PATH) -> bool:
    """Whether the snapshot was made from the current code."""
    data = stored(path)
    return data is not None and data.get("fingerprint") == fingerprint() != ""


def _registries_in_use() -> bool:
    """Whether this process has registered components already: it may hold registrations of
    its own (a script's, a test's), which only the live registries show, and it has paid
    most of their imports."""
    return getattr(sys.modules.get(f"{__package__}.registry"), "_version", 0) > 0


def listing() -> dict[str, dict[str, dict[str, Any]]]:
    """The snapshot where it can stand for the registries, else the live registries (and the
    snapshot rewritten from them when it was only stale)."""
    if foreign_plugins() or _registries_in_use():
        return live()
    current = fingerprint()
    data = stored()
    if data is not None and current and data.get("fingerprint") == current:
        return data["listing"]
    known = live()
    if current:
        try:
            write(PATH, known, current)
        except OSError:  # a read-only installation: the live registries answer each time
            pass
    return known


def write(path: Path = PATH, known: dict | None = None, current: str | None = None) -> None:
    """Write the snapshot (atomically: concurrent writers leave one whole file)."""
    data = {
        "fingerprint": fingerprint() if current is None else current,
        "listing": live() if known is None else known,
    }
    text = json.dumps(data, indent=1, ensure_ascii=False, sort_keys=False) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=".manifest-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide it from other users
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: list[str]) -> int:
    if argv[:1] == ["--check"]:
        ok = fresh()
        print(f"{PATH}: {'fresh' if ok else 'stale (python -m scorelab.manifest rewrites it)'}")
        return 0 if ok else 1
    write()
    print(f"wrote {PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
