"""The layering rule, checked on the source: imports only go down.

Every ``import`` in ``src/scorelab`` — at module level or inside a function — is an edge from
the importing module to the scorelab module it names. The graph must have no cycle (a module
that imports one above it, even lazily, would form one), and the core must never import the
studies, which sit on top of it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "scorelab"


def _modules() -> dict[str, Path]:
    out = {}
    for path in (SRC / PACKAGE).rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _resolve(module: str, is_package: bool, level: int, name: str | None) -> str:
    if level == 0:
        return name or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (level - 1)] if level > 1 else base
    return ".".join([*base, name] if name else base)


def import_graph() -> dict[str, set[str]]:
    """module → the scorelab modules it imports (anywhere in its source)."""
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(module, is_package, node.level, node.module)
                # `from pkg import name`: an edge to pkg.name when it is a module, else to pkg
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    targets.append(sub if sub in modules else base)
            for t in targets:
                # `import a.b.c` names the deepest scorelab module that exists
                while t and t not in modules:
                    t = t.rpartition(".")[0]
                if t and t != module and t.startswith(PACKAGE):
                    graph[module].add(t)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_sees_imports_inside_functions():
    graph = import_graph()
    # cli imports the studies' registry only inside a command; the walk must see such imports
    assert "scorelab.registry" in graph["scorelab.config.schema"]
    assert graph["scorelab.cli"], "no import found in cli.py"


def test_imports_only_go_down():
    found = cycles(import_graph())
    assert not found, "import cycles (a module imports one above it): " + "; ".join(
        " ↔ ".join(c) for c in found
    )


def test_the_core_never_imports_the_studies():
    graph = import_graph()
    offenders = {
        (m, t)
        for m, targets in graph.items()
        if not m.startswith("scorelab.studies")
        for t in targets
        if t.startswith("scorelab.studies")
    }
    assert not offenders, f"core modules importing scorelab.studies: {sorted(offenders)}"


@pytest.mark.parametrize("group", ["sampler", "target", "schedule", "metric", "study"])
def test_every_group_has_builtins(group):
    import scorelab

    assert scorelab.names(group), f"no {group} registered"


@pytest.mark.slow
def test_every_module_imports_first_in_a_fresh_interpreter():
    """The package loads its components lazily, so import order is no longer fixed by
    ``scorelab/__init__``: each module must import on its own (a cycle that an earlier import
    used to hide shows up here)."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1] / "src"
    modules = sorted(
        ".".join(p.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
        for p in (root / "scorelab").rglob("*.py")
        if p.name != "__main__.py"
    )
    code = (
        "import importlib, subprocess, sys\n"
        "bad = []\n"
        "for m in sys.argv[1:]:\n"
        "    r = subprocess.run([sys.executable, '-c', f'import {m}'], capture_output=True,"
        " text=True)\n"
        "    if r.returncode: bad.append((m, r.stderr.strip().splitlines()[-1]))\n"
        "print(bad)\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code, *modules], capture_output=True, text=True, timeout=1800
    )
    assert res.stdout.strip() == "[]", res.stdout


STUDY_MODULES = ("scorelab.studies", "scorelab.study", "scorelab.report", "scorelab.verdicts")


@pytest.mark.parametrize(
    "group,name",
    [("sampler", "heun"), ("metric", "w2"), ("target", "gaussian"), ("process", "vp")],
)
def test_a_component_look_up_loads_no_study_module(group, name):
    """The studies are the provider of the study group only: looking up a component (in a
    fresh interpreter, with no foreign plugin) leaves every study, report and verdict module
    unimported, and looking up the study group then loads the studies."""
    import os
    import subprocess
    import sys

    code = (
        "import sys, scorelab\n"
        f"assert scorelab.get({group!r}, {name!r}) is not None\n"
        f"print([m for m in sys.modules if m.startswith({STUDY_MODULES!r})])\n"
        "scorelab.names('study')\n"
        "print('scorelab.studies' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "SCORELAB_PLUGINS"}
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert res.returncode == 0, res.stderr
    loaded, studies_after = res.stdout.strip().splitlines()
    assert loaded == "[]", f"looking up {group} {name!r} imported {loaded}"
    assert studies_after == "True"


def test_parsing_a_config_loads_no_study_module():
    """The configuration schema is built from the registries, but from none of the studies: a
    config parsed in a fresh interpreter leaves the study modules unimported."""
    import os
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from scorelab.config import parse_config\n"
        "parse_config({'sampler': {'kind': 'heun'}, 'target': {'kind': 'gaussian'}})\n"
        f"print([m for m in sys.modules if m.startswith({STUDY_MODULES!r})])\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "SCORELAB_PLUGINS"}
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"
