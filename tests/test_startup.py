"""The CLI starts without torch where it need not load it (`--help`, `list`), and the snapshot
`scorelab list` reads in its place is never stale: it equals the live registries while its
fingerprint is the code's, and a built-in added to the source is listed at once."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import scorelab
from scorelab import manifest

HEAVY = ("torch", "matplotlib", "ot", "sklearn", "scipy")


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SCORELAB_PLUGINS"}
    env["COLUMNS"] = "100"
    return env


def _modules_after(argv: list[str], pythonpath: Path | None = None) -> tuple[set[str], str]:
    """The heavy modules loaded by running ``scorelab ARGV`` in a fresh interpreter (with
    ``pythonpath`` first on the path), and its output."""
    code = (
        "import sys\n"
        "from scorelab.cli import app\n"
        "try:\n"
        f"    app({argv!r})\n"
        "except SystemExit as e:\n"
        "    assert not e.code, e.code\n"
        f"print('LOADED', [m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    env = _clean_env()
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert res.returncode == 0, res.stderr
    last = res.stdout.strip().splitlines()[-1]
    assert last.startswith("LOADED"), res.stdout
    return set(eval(last[len("LOADED") :])), res.stdout


@pytest.fixture(scope="module")
def fresh_snapshot():
    """The snapshot regenerated where the code has changed since it was written (what a
    first `scorelab list` does too), in a clean interpreter: registrations of the tests'
    own never reach it."""
    if not manifest.fresh():
        res = subprocess.run(
            [sys.executable, "-m", "scorelab.manifest"],
            capture_output=True,
            text=True,
            env=_clean_env(),
            timeout=300,
        )
        assert res.returncode == 0, res.stderr
    assert manifest.fresh()


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["--version"], ["list"], ["list", "sampler", "--json"], ["study", "--help"]],
    ids=lambda a: " ".join(a),
)
def test_cli_answers_without_torch(argv, fresh_snapshot):
    loaded, output = _modules_after(argv)
    assert loaded == set(), f"scorelab {' '.join(argv)} imported {sorted(loaded)}"
    assert output.strip()


def test_a_fresh_snapshot_equals_the_live_registries(fresh_snapshot):
    """While its fingerprint is the code's, the snapshot `scorelab list` reads is what the
    registries hold."""
    code = "import json; from scorelab import manifest; print(json.dumps(manifest.live()))"
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_clean_env(), timeout=300
    )
    assert res.returncode == 0, res.stderr
    live = json.loads(res.stdout)
    stored = manifest.stored()
    assert stored is not None and stored["fingerprint"] == manifest.fingerprint()
    for group in live:
        assert list(stored["listing"][group]) == list(live[group]), f"{group}: kinds differ"
        for kind in live[group]:
            assert stored["listing"][group][kind] == live[group][kind], f"{group}/{kind} differs"
    assert set(stored["listing"]) == set(live)


def _add_a_sampler(source: str, new: str) -> str:
    """``source`` (samplers.py) with its first registered sampler registered a second time,
    as ``new``: its decorator repeated under the new name, nothing else touched."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        for dec in getattr(node, "decorator_list", []):
            is_sampler = (
                isinstance(dec, ast.Call)
                and len(dec.args) >= 2
                and isinstance(dec.args[0], ast.Constant)
                and dec.args[0].value == "sampler"
            )
            if is_sampler:
                lines = source.splitlines(keepends=True)
                text = ast.get_source_segment(source, dec)
                copy = text.replace(repr(dec.args[1].value), repr(new), 1)
                copy = copy.replace(f'"{dec.args[1].value}"', f'"{new}"', 1)
                at = dec.lineno - 1
                indent = lines[at][: len(lines[at]) - len(lines[at].lstrip())]
                return "".join([*lines[:at], f"{indent}@{copy}\n", *lines[at:]])
    raise AssertionError("samplers.py registers no sampler")


def test_a_new_built_in_is_listed_without_touching_a_second_file(tmp_path):
    """A copy of the package with one more sampler registered in samplers.py (and no other
    file changed): `scorelab list sampler` lists it, the snapshot being stale; the snapshot
    is rewritten then, and the next `list` lists it from the snapshot, without torch."""
    package = Path(scorelab.__file__).parent
    copy = tmp_path / "scorelab"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__"))
    before = manifest.fingerprint(copy)
    samplers = copy / "samplers.py"
    samplers.write_text(_add_a_sampler(samplers.read_text("utf-8"), "copied_sampler"), "utf-8")
    assert manifest.fingerprint(copy) != before

    loaded, output = _modules_after(["list", "sampler", "--json"], pythonpath=tmp_path)
    assert "copied_sampler" in json.loads(output[: output.rindex("LOADED")])["sampler"]
    assert "torch" in loaded  # stale: the live registries answered

    rewritten = json.loads((copy / "manifest.json").read_text("utf-8"))
    assert rewritten["fingerprint"] == manifest.fingerprint(copy)
    assert "copied_sampler" in rewritten["listing"]["sampler"]
    loaded, output = _modules_after(["list", "sampler", "--json"], pythonpath=tmp_path)
    assert "copied_sampler" in json.loads(output[: output.rindex("LOADED")])["sampler"]
    assert loaded == set()  # fresh again: read from the snapshot


def test_registrations_of_this_process_are_listed(fresh_snapshot):
    """A process that registered a component of its own (a script, a test) lists it: the
    live registries answer there, and the snapshot is left as it is."""
    from scorelab import registry

    before = manifest.stored()

    @registry.register("metric", "listed_here")
    def listed_here(x, y):
        """A metric registered in this process."""
        return 0.0

    try:
        assert "listed_here" in manifest.listing()["metric"]
    finally:
        registry.unregister("metric", "listed_here")
    assert manifest.stored() == before


def test_a_foreign_plugin_makes_list_read_the_live_registries(monkeypatch):
    monkeypatch.setenv("SCORELAB_PLUGINS", "some_plugin")
    assert manifest.foreign_plugins()
    monkeypatch.delenv("SCORELAB_PLUGINS")
    assert not manifest.foreign_plugins()  # scorelab's own entry point (the studies) is not
