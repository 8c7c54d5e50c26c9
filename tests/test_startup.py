"""The CLI starts without torch where it need not load it (issue 18: `--help`, `list`), and
the snapshot `scorelab list` reads in its place equals the live registries."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from scorelab import manifest

HEAVY = ("torch", "matplotlib", "ot", "sklearn", "scipy")


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SCORELAB_PLUGINS"}
    env["COLUMNS"] = "100"
    return env


def _modules_after(argv: list[str]) -> tuple[set[str], str]:
    """The heavy modules loaded by running ``scorelab ARGV`` in a fresh interpreter, and its
    output."""
    code = (
        "import sys\n"
        "from scorelab.cli import app\n"
        "try:\n"
        f"    app({argv!r})\n"
        "except SystemExit as e:\n"
        "    assert not e.code, e.code\n"
        f"print('LOADED', [m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_clean_env(), timeout=120
    )
    assert res.returncode == 0, res.stderr
    last = res.stdout.strip().splitlines()[-1]
    assert last.startswith("LOADED"), res.stdout
    return set(eval(last[len("LOADED") :])), res.stdout


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["--version"], ["list"], ["list", "sampler", "--json"], ["study", "--help"]],
    ids=lambda a: " ".join(a),
)
def test_cli_answers_without_torch(argv):
    loaded, output = _modules_after(argv)
    assert loaded == set(), f"scorelab {' '.join(argv)} imported {sorted(loaded)}"
    assert output.strip()


def test_manifest_equals_the_live_registries():
    """`scorelab list` reads manifest.json; it must be what the registries hold (regenerate
    with `python -m scorelab.manifest` after adding or changing a built-in)."""
    code = "import json; from scorelab import manifest; print(json.dumps(manifest.live()))"
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_clean_env(), timeout=120
    )
    assert res.returncode == 0, res.stderr
    live = json.loads(res.stdout)
    stored = json.loads(manifest.PATH.read_text(encoding="utf-8"))
    for group in live:
        assert list(stored[group]) == list(live[group]), f"{group}: kinds differ"
        for kind in live[group]:
            assert stored[group][kind] == live[group][kind], f"{group}/{kind} differs"
    assert set(stored) == set(live)


def test_a_foreign_plugin_makes_list_read_the_live_registries(monkeypatch):
    monkeypatch.setenv("SCORELAB_PLUGINS", "some_plugin")
    assert manifest.foreign_plugins()
    monkeypatch.delenv("SCORELAB_PLUGINS")
    assert not manifest.foreign_plugins()  # scorelab's own entry point (the studies) is not
