"""No hand-kept lists of component names in the core: the registry answers (its metadata).

The source of ``src/scorelab`` (the studies aside: they choose components by name on purpose)
is read as Python and searched for three shapes a name list takes, each with at least two
names registered in the same group:

* a tuple, list or set of string literals that are all registered names (``_PREDICTORS =
  ("euler_maruyama", …)``, ``kind in ("ve", "edm")``);
* a string that enumerates registered names, as an error message's allowed values do
  (``"linear, parametric, cosine, constant, callable"``); docstrings are prose and are skipped;
* a function comparing a value with several registered names of one group (an if/elif on
  sampler names).

Lists of metric names are selections of what to measure (``run.metrics``), not facts about the
metrics, so literal lists of metric names are allowed. The test first checks that it catches
each of the lists that the registry metadata replaced, planted in a scratch module.
"""

from __future__ import annotations

import ast
import re
import textwrap
from pathlib import Path

from scorelab.registry import GROUPS, names

SRC = Path(__file__).resolve().parents[1] / "src" / "scorelab"
# component names by group (the studies' names are commands, not components of the core)
NAMES = {g: frozenset(names(g)) for g in GROUPS if g != "study"}
# a literal list of metric names is a choice of what to measure
SELECTIONS = frozenset({"metric"})

# Lists left in code that another change owns, each with what replaces it; an entry that no
# longer matches anything fails the test, so the list only shrinks.
PENDING = {}
# Names that are not a list of components, though they look like one: kept, with why.
NOT_LISTS = {
    ("cli.py", "text", ("edm", "parametric")): (
        "tune-schedule's --family values are the tuners of bounds.tuning.FAMILIES (named after "
        "a schedule and a grid); the help is static text, read without importing torch"
    ),
}


def _docstrings(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                out.add(id(body[0].value))
    return out


def _strings(nodes) -> list[str]:
    return [n.value for n in nodes if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def _named(strings, exclude=frozenset()) -> list[tuple[str, tuple[str, ...]]]:
    """(group, names) for each group holding at least two distinct of ``strings``."""
    out = []
    for group, registered in NAMES.items():
        hit = {s for s in strings if s in registered}
        if group not in exclude and len(hit) >= 2:
            out.append((group, tuple(sorted(hit))))
    return out


def find_name_lists(source: str) -> list[tuple[int, str, tuple[str, ...]]]:
    """(line, shape, names) of every name list in ``source``."""
    tree = ast.parse(source)
    docs = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            strings = _strings(node.elts)
            if len(strings) == len(node.elts):
                for _, hit in _named(strings, SELECTIONS):
                    if len(hit) == len(set(strings)):
                        found.append((node.lineno, "literal", hit))
        elif (
            isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs
        ):
            words = [w.strip() for w in re.split(r"[,;:()]|\band\b|\bor\b", node.value)]
            if len(words) >= 2:
                for _, hit in _named([w for w in words if re.fullmatch(r"[\w-]+", w)]):
                    found.append((node.lineno, "text", hit))
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            compared = set()
            for sub in ast.walk(node):
                if isinstance(sub, ast.Compare):
                    compared.update(_strings([sub.left, *sub.comparators]))
                    for c in sub.comparators:
                        if isinstance(c, ast.Tuple | ast.List | ast.Set):
                            compared.update(_strings(c.elts))
            for _, hit in _named(compared):
                found.append((node.lineno, f"compare:{node.name}", hit))
    return found


def test_the_search_finds_the_lists_the_registry_replaced():
    """The lists that metadata replaced (sampler oracles, pc's predictors, the audit's
    samplers, the VE family in the bounds, tune-schedule's schedules, a schedule error's
    allowed values), planted again, are each found."""
    planted = textwrap.dedent(
        """
        PREDICTORS = ("euler_maruyama", "exponential_integrator", "ode_euler", "ddim")
        COMPARABLE = ["ddim", "dpmpp_2m", "heun"]

        def step_map(kind):
            if kind == "euler_maruyama":
                return 1
            if kind == "exponential_integrator":
                return 2

        def refuse(process, schedule):
            if schedule not in {"linear", "parametric"}:
                raise ValueError("allowed: linear, parametric, cosine, constant, callable")

        def bounds(process):
            return process.kind in ("ve", "edm")
        """
    )
    found = {(shape, hit) for _, shape, hit in find_name_lists(planted)}
    expected = {
        ("literal", ("ddim", "euler_maruyama", "exponential_integrator", "ode_euler")),
        ("literal", ("ddim", "dpmpp_2m", "heun")),
        ("compare:step_map", ("euler_maruyama", "exponential_integrator")),
        ("literal", ("linear", "parametric")),
        ("compare:refuse", ("linear", "parametric")),
        ("text", ("callable", "constant", "cosine", "linear", "parametric")),
        ("literal", ("edm", "ve")),
        ("compare:bounds", ("edm", "ve")),
    }
    assert expected <= found, expected - found
    # and what is not a list of component names is not found: a docstring, a selection of
    # metrics, a single name, words that are not names
    quiet = textwrap.dedent(
        '''
        def f(kind):
            """Samplers such as heun, ddim and dpmpp_2m."""
            metrics = ["w2", "mmd"]
            return kind == "heun" or kind in ("left", "right")
        '''
    )
    assert find_name_lists(quiet) == []


def test_no_component_name_lists_in_the_core():
    found, seen = [], set()
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel.startswith("studies/"):
            continue
        for line, shape, hit in find_name_lists(path.read_text(encoding="utf-8")):
            key = (rel, shape, hit)
            if key in PENDING or key in NOT_LISTS:
                seen.add(key)
            else:
                found.append(f"{rel}:{line}: {shape} {', '.join(hit)}")
    assert not found, "component names listed by hand (ask the registry):\n" + "\n".join(found)
    stale = (set(PENDING) | set(NOT_LISTS)) - seen
    assert not stale, f"entries that no longer match anything: {sorted(stale)}"
